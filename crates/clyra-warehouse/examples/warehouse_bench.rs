//! Warehouse benchmark (release build, not part of CI): snapshot latency for 100 tables on a
//! reused connection and with a new connection each time, for 1,000 tables, and diff latency for
//! two 1,000-table snapshots. Prints p50/p95/max over RUNS runs (default 50).
//!
//!   warehouse_bench [POSTGRES_URL] [RUNS] [OUT_DIR]
//!
//! Creates two schemas (`bench_wh100_<pid>`: 100 tables, 150,500 rows, analyzed;
//! `bench_wh1000_<pid>`: 1,000 small analyzed tables) and drops them at the end. With OUT_DIR,
//! writes the two 1,000-table snapshots there (`a.json`, `b.json`, one column apart) for timing
//! `clyra diff` as a process. `bench/warehouse.sh` runs it.

use std::time::{Duration, Instant};

use clyra_warehouse::snapshot::{self, Options, Snapshot};
use clyra_warehouse::{diff, pg};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Cleanup {
    url: String,
    schemas: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(mut c) = pg::connect(&self.url) {
            for s in &self.schemas {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
            }
        }
    }
}

fn stats(name: &str, mut v: Vec<Duration>, target_ms: Option<f64>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    let target = target_ms
        .map(|t| format!("  (target <= {t} ms)"))
        .unwrap_or_default();
    println!(
        "{name:<46} p50 {:>8.2} ms  p95 {:>8.2} ms  max {:>8.2} ms  n={}{target}",
        ms(at(0.5)),
        ms(at(0.95)),
        ms(v[v.len() - 1]),
        v.len()
    );
}

fn time<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<Vec<Duration>> {
    for _ in 0..3 {
        f()?;
    }
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        f()?;
        v.push(t0.elapsed());
    }
    Ok(v)
}

fn create(c: &mut pg::Client, schema: &str, n: usize, rows: usize) -> Result<()> {
    c.batch_execute(&format!("CREATE SCHEMA {schema}"))?;
    let mut start = 1;
    while start <= n {
        let end = (start + 199).min(n);
        c.batch_execute(&format!(
            "DO $$ BEGIN FOR i IN {start}..{end} LOOP
               EXECUTE format('CREATE TABLE %I.%I (id int NOT NULL, name text, amount numeric(12,2), at timestamptz)', '{schema}', 't' || i);
               EXECUTE format('INSERT INTO %I.%I SELECT g, ''n'' || g, g * 1.5, now() FROM generate_series(1, {rows}) g', '{schema}', 't' || i);
               EXECUTE format('ANALYZE %I.%I', '{schema}', 't' || i);
             END LOOP; END $$"
        ))?;
        start = end + 1;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let runs: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(50);
    let out_dir = args.get(3).map(std::path::PathBuf::from);

    let pid = std::process::id();
    let (s100, s1000) = (format!("bench_wh100_{pid}"), format!("bench_wh1000_{pid}"));
    let _cleanup = Cleanup {
        url: url.clone(),
        schemas: vec![s100.clone(), s1000.clone()],
    };
    let mut c = pg::connect(&url)?;
    let t0 = Instant::now();
    create(&mut c, &s100, 100, 1505)?;
    create(&mut c, &s1000, 1000, 10)?;
    println!(
        "setup: 100 tables x 1,505 rows and 1,000 tables x 10 rows, analyzed, in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let o100 = Options {
        schemas: vec![s100.clone()],
        ..Default::default()
    };
    let o1000 = Options {
        schemas: vec![s1000.clone()],
        ..Default::default()
    };

    let mut session = snapshot::Session::new(pg::connect(&url)?);
    let warm = time(runs, || Ok(session.take(&o100)?))?;
    stats("snapshot, 100 tables, reused connection", warm, Some(5.0));
    let unprepared = time(runs, || Ok(snapshot::take(&mut c, &o100)?))?;
    stats(
        "  same, queries not prepared (snapshot::take)",
        unprepared,
        None,
    );
    let cold = time(runs, || {
        let mut fresh = pg::connect(&url)?;
        Ok(snapshot::take(&mut fresh, &o100)?)
    })?;
    stats("snapshot, 100 tables, new connection", cold, Some(15.0));
    let connect_only = time(runs, || Ok(pg::connect(&url)?))?;
    stats("  of which connecting", connect_only, None);
    let lean100 = Options {
        sizes: snapshot::Sizes::Estimated,
        column_stats: false,
        ..o100.clone()
    };
    let lean_warm = time(runs, || Ok(session.take(&lean100)?))?;
    stats(
        "lean (--estimated-sizes --no-column-stats), reused",
        lean_warm,
        Some(5.0),
    );
    let lean_cold = time(runs, || {
        let mut fresh = pg::connect(&url)?;
        Ok(snapshot::take(&mut fresh, &lean100)?)
    })?;
    stats("lean, new connection", lean_cold, Some(15.0));
    let snap100 = snapshot::take(&mut c, &o100)?;
    let ser = time(runs, || Ok(snap100.to_canonical_json()?))?;
    stats("  + canonical JSON of it", ser, None);
    let counted = Options {
        exact_counts: vec![format!("{s100}.*")],
        ..o100.clone()
    };
    let exact = time(runs.min(20), || Ok(snapshot::take(&mut c, &counted)?))?;
    stats(
        "snapshot, 100 tables + exact counts (150,500 rows)",
        exact,
        None,
    );
    let hashed = Options {
        content_hashes: vec![format!("{s100}.*")],
        ..o100.clone()
    };
    let hash = time(runs.min(10), || Ok(snapshot::take(&mut c, &hashed)?))?;
    stats("snapshot, 100 tables + content hashes", hash, None);

    let big = time(runs, || Ok(session.take(&o1000)?))?;
    stats("snapshot, 1,000 tables, reused connection", big, None);

    let a = snapshot::take(&mut c, &o1000)?;
    c.batch_execute(&format!(
        "ALTER TABLE {s1000}.t500 ADD COLUMN extra text; DROP TABLE {s1000}.t999"
    ))?;
    let b = snapshot::take(&mut c, &o1000)?;
    let (ab, bb) = (a.to_canonical_json()?, b.to_canonical_json()?);
    println!(
        "1,000-table snapshot files: {} and {} bytes",
        ab.len(),
        bb.len()
    );
    let d = time(runs, || Ok(diff::diff(&a, &b)))?;
    stats("diff of two 1,000-table snapshots (in memory)", d, None);
    let full = time(runs, || {
        let (x, y) = (Snapshot::from_json(&ab)?, Snapshot::from_json(&bb)?);
        Ok(serde_json::to_vec(&diff::diff(&x, &y))?)
    })?;
    stats("  read + check both files + diff + JSON", full, Some(50.0));
    let dd = diff::diff(&a, &b);
    println!(
        "  (diff: {} changes in {} tables)",
        dd.summary.changes,
        dd.tables.iter().filter(|t| !t.changes.is_empty()).count()
    );
    if let Some(dir) = out_dir {
        std::fs::write(dir.join("a.json"), &ab)?;
        std::fs::write(dir.join("b.json"), &bb)?;
    }
    Ok(())
}
