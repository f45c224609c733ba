//! Anchors and snapshots on a physical standby and across a promotion, on a throwaway primary and
//! streaming standby this test creates with the local Postgres binaries (`initdb`,
//! `pg_basebackup -R`), on free loopback ports, and removes afterwards. It fails, loudly, when the
//! binaries are missing (`CLYRA_TEST_PG_BIN` names their directory; default: the newest
//! `/usr/lib/postgresql/*/bin`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clyra_warehouse::anchor::{self, LsnSource};
use clyra_warehouse::snapshot::{self, Options};
use clyra_warehouse::{diff, pg};

fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CLYRA_TEST_PG_BIN") {
        return PathBuf::from(d);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.retain(|d| d.join("initdb").exists());
    dirs.sort();
    dirs.pop().unwrap_or_else(|| {
        panic!("this test needs the Postgres server binaries (initdb, pg_ctl, pg_basebackup): set CLYRA_TEST_PG_BIN")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a server binary, as `postgres` when we are root (initdb refuses root).
fn run(bin: &Path, args: &[&str]) {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        bin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A primary and its streaming standby, stopped and removed on drop.
struct Pair {
    bin: PathBuf,
    dir: tempfile::TempDir,
    primary: u16,
    standby: u16,
}

impl Pair {
    fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("clyra-standby")
            .tempdir()
            .unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let d = dir.path().to_str().unwrap().to_string();
        let (primary, standby) = (free_port(), free_port());
        let pair = Pair {
            bin,
            dir,
            primary,
            standby,
        };
        let b = |n: &str| pair.bin.join(n);
        run(
            &b("initdb"),
            &[
                "-D",
                &format!("{d}/p"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "-N",
            ],
        );
        pair.pg_ctl_start("p", primary);
        run(
            &b("pg_basebackup"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.to_string(),
                "-U",
                "postgres",
                "-D",
                &format!("{d}/s"),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        pair.pg_ctl_start("s", standby);
        pair
    }

    fn pg_ctl_start(&self, data: &str, port: u16) {
        let d = self.dir.path().display();
        run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &format!("{d}/{data}"),
                "-l",
                &format!("{d}/{data}.log"),
                "-o",
                &format!("-p {port} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off"),
                "-w",
                "start",
            ],
        );
    }

    fn url(port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }

    fn promote_standby(&self) {
        let d = self.dir.path().display();
        run(
            &self.bin.join("pg_ctl"),
            &["-D", &format!("{d}/s"), "-w", "promote"],
        );
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let d = self.dir.path().display().to_string();
        for data in ["s", "p"] {
            let mut cmd = if is_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"])
                    .arg(self.bin.join("pg_ctl"));
                c
            } else {
                Command::new(self.bin.join("pg_ctl"))
            };
            let _ = cmd
                .args([
                    "-D",
                    &format!("{d}/{data}"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ])
                .output();
        }
    }
}

#[test]
fn anchors_on_a_standby_and_after_promotion() {
    let pair = Pair::start();
    let mut primary = pg::connect(&Pair::url(pair.primary)).unwrap();
    primary
        .batch_execute(
            "CREATE SCHEMA app; CREATE TABLE app.orders (id int NOT NULL, amount int);
             INSERT INTO app.orders SELECT g, g FROM generate_series(1, 100) g; ANALYZE app.orders;",
        )
        .unwrap();
    let o = Options {
        schemas: vec!["app".into()],
        exact_counts: vec!["app.*".into()],
        ..Default::default()
    };
    let on_primary = snapshot::take(&mut primary, &o).unwrap();
    assert!(!on_primary.anchor.in_recovery);
    assert_eq!(on_primary.anchor.timeline, 1);
    let primary_lsn = on_primary.anchor.lsn_position().unwrap();

    // Wait for the standby to replay past the primary's snapshot.
    let mut standby = pg::connect(&Pair::url(pair.standby)).unwrap();
    let t0 = Instant::now();
    let a = loop {
        let a = anchor::take(&mut standby).unwrap();
        if a.lsn_position().unwrap() >= primary_lsn {
            break a;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the standby did not catch up"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(a.in_recovery);
    assert_eq!(a.lsn_source, LsnSource::PgLastWalReplayLsn);
    assert_eq!(a.system_identifier, on_primary.anchor.system_identifier);
    assert_eq!(a.timeline, 1);
    assert_eq!(a.def_anchors()[0].kind, "wal_replay_lsn");

    // A snapshot works on the standby (read-only, no transaction id) and agrees with the primary.
    let on_standby = snapshot::take(&mut standby, &o).unwrap();
    assert!(on_standby.anchor.in_recovery);
    assert_eq!(on_standby.tables["app.orders"].exact_count, Some(100));
    assert_eq!(on_standby.state_digest, on_primary.state_digest);
    let d = diff::diff(&on_primary, &on_standby);
    assert!(!d.changed);
    assert!(d.notes.is_empty(), "{:?}", d.notes);

    // Promotion: a new timeline, and the LSN is the write position again.
    pair.promote_standby();
    let t0 = Instant::now();
    let promoted = loop {
        match snapshot::take(&mut standby, &o) {
            Ok(s) if !s.anchor.in_recovery => break s,
            _ => {
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "promotion did not finish"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(promoted.anchor.timeline, 2);
    assert_eq!(promoted.anchor.lsn_source, LsnSource::PgCurrentWalLsn);
    assert_eq!(
        promoted.anchor.system_identifier,
        on_primary.anchor.system_identifier
    );
    let d = diff::diff(&on_standby, &promoted);
    assert!(!d.changed);
    assert!(
        d.notes
            .iter()
            .any(|n| n.contains("changed timeline between the snapshots (1 to 2)")),
        "{:?}",
        d.notes
    );
}
