//! Guard overhead benchmark (release build, not part of CI): latency of small UPDATEs on a
//! guarded table against the same UPDATEs on an identical unguarded one, and of an approved
//! UPDATE above the threshold. Prints p50/p95/max over RUNS runs each (default 500) and the
//! added latency at p50 and p95.
//!
//!   guard_bench [POSTGRES_URL] [RUNS]
//!
//! Creates a database `bench_guard_<pid>` (the guard is database-wide) with two tables of
//! 100,000 rows, `plain` and `guarded`, installs the guard on `public.guarded` with
//! max_rows_affected 500 and max_percent_affected 50 (both checks run), and drops the database
//! at the end. Statements alternate between the two tables so drift hits both alike; each runs
//! in autocommit, on one reused connection. `bench/warehouse-guard.sh` runs it.

use std::time::{Duration, Instant};

use clyra_evidence::Digest;
use clyra_warehouse::guard::{self, Grant, GuardPayload, InstallOptions, Mode, Operation, Rule};
use clyra_warehouse::pg;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Cleanup {
    admin_url: String,
    db: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(mut c) = pg::connect(&self.admin_url) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95), v[v.len() - 1])
}

fn line(name: &str, v: &[Duration]) -> (Duration, Duration) {
    let (p50, p95, max) = quantiles(v.to_vec());
    println!(
        "{name:<44} p50 {:>7.3} ms  p95 {:>7.3} ms  max {:>7.3} ms  n={}",
        ms(p50),
        ms(p95),
        ms(max),
        v.len()
    );
    (p50, p95)
}

fn added(name: &str, plain: (Duration, Duration), guarded: (Duration, Duration)) {
    let d = |a: Duration, b: Duration| ms(b) - ms(a);
    println!(
        "{name:<44} p50 {:>+7.3} ms  p95 {:>+7.3} ms  (target < 5 ms added)",
        d(plain.0, guarded.0),
        d(plain.1, guarded.1)
    );
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let admin_url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(500);
    let db = format!("bench_guard_{}", std::process::id());
    pg::connect(&admin_url)?.batch_execute(&format!("CREATE DATABASE {db}"))?;
    let _cleanup = Cleanup {
        admin_url: admin_url.clone(),
        db: db.clone(),
    };
    let mut config = pg::config(&admin_url)?;
    config.dbname(&db);
    let mut c = pg::connect_with(&config, &db)?;
    c.batch_execute(
        "CREATE TABLE plain (id int PRIMARY KEY, amount int NOT NULL, note text);
         INSERT INTO plain SELECT g, g, 'row ' || g FROM generate_series(1, 100000) g;
         CREATE TABLE guarded (LIKE plain INCLUDING ALL);
         INSERT INTO guarded SELECT * FROM plain;",
    )?;
    c.batch_execute("VACUUM ANALYZE plain")?;
    c.batch_execute("VACUUM ANALYZE guarded")?;
    guard::install(
        &mut c,
        &InstallOptions {
            rules: vec![Rule {
                table_glob: "public.guarded".into(),
                max_rows: Some(500),
                max_percent: Some(50.0),
                mode: Mode::Enforce,
                checkpoint: Some("mass_dml".into()),
            }],
            ..Default::default()
        },
    )?;

    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("UPDATEs in autocommit on one connection, 100,000-row tables; {runs} runs each\n");

    let mut bench = |rows: i32| -> Result<(Vec<Duration>, Vec<Duration>)> {
        let stmt = |t: &str| {
            format!("UPDATE {t} SET amount = amount + 1 WHERE id BETWEEN $1 AND $1 + {rows} - 1")
        };
        let (sp, sg) = (c.prepare(&stmt("plain"))?, c.prepare(&stmt("guarded"))?);
        let (mut vp, mut vg) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for i in 0..runs + 20 {
            let start = i32::try_from((i * 137) % 90_000)? + 1;
            let t0 = Instant::now();
            let n = c.execute(&sp, &[&start])?;
            let t1 = Instant::now();
            let m = c.execute(&sg, &[&start])?;
            let t2 = Instant::now();
            assert_eq!((n, m), (rows as u64, rows as u64));
            if i >= 20 {
                vp.push(t1 - t0);
                vg.push(t2 - t1);
            }
        }
        Ok((vp, vg))
    };
    for rows in [1, 100] {
        let (vp, vg) = bench(rows)?;
        let p = line(&format!("UPDATE {rows} row(s), unguarded"), &vp);
        let g = line(
            &format!("UPDATE {rows} row(s), guarded (under threshold)"),
            &vg,
        );
        added(&format!("  added by the guard, {rows} row(s)"), p, g);
    }

    // Above the threshold with an approval: the grant lookup, its single-use update and the
    // audit row. One grant per run, registered beforehand.
    let rows = 1000;
    let tokens: Vec<String> = (0..runs + 20)
        .map(|i| format!("clyra-rt1.bench-{}-{i}", std::process::id()))
        .collect();
    let exp = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)).to_string();
    for (i, t) in tokens.iter().enumerate() {
        guard::register_grant(
            &mut c,
            &Grant {
                token_sha256: *Digest::sha256(t.as_bytes()).as_bytes(),
                approval_id: format!("apr_bench_{i}"),
                token_id: format!("tok_bench_{i}"),
                checkpoint: "mass_dml".into(),
                approvers: vec!["user:bench@example.com".into()],
                expires_at: exp.clone(),
                payload: GuardPayload {
                    tables: vec!["public.guarded".into()],
                    operations: vec![Operation::Update],
                    max_rows: 1000,
                },
            },
        )?;
    }
    let stmt = |t: &str| {
        format!("UPDATE {t} SET amount = amount + 1 WHERE id BETWEEN $1 AND $1 + {rows} - 1")
    };
    let (sp, sg) = (c.prepare(&stmt("plain"))?, c.prepare(&stmt("guarded"))?);
    let (mut vp, mut vg) = (Vec::new(), Vec::new());
    for (i, t) in tokens.iter().enumerate() {
        let start = i32::try_from((i * 137) % 90_000)? + 1;
        let t0 = Instant::now();
        let mut tx = c.transaction()?;
        tx.execute(&sp, &[&start])?;
        tx.commit()?;
        let t1 = Instant::now();
        let mut tx = c.transaction()?;
        tx.execute("SELECT set_config('clyra.approval', $1, true)", &[t])?;
        tx.execute(&sg, &[&start])?;
        tx.commit()?;
        let t2 = Instant::now();
        if i >= 20 {
            vp.push(t1 - t0);
            vg.push(t2 - t1);
        }
    }
    println!();
    let p = line("UPDATE 1,000 rows, unguarded (own transaction)", &vp);
    let g = line("UPDATE 1,000 rows, guarded, approved", &vg);
    added("  added by the guard and the approval", p, g);
    let st = guard::status(&mut c, 1)?;
    println!(
        "\naudit events written: {} (latest: {} rows, {})",
        c.query_one("SELECT count(*) FROM clyra_guard.events", &[])?
            .get::<_, i64>(0),
        st.recent_events.first().map_or(0, |e| e.rows),
        st.recent_events
            .first()
            .map_or("none", |e| e.decision.as_str())
    );
    Ok(())
}
