//! `clyra snapshot take`, `clyra diff` and `clyra warehouse anchor` end to end, on the local
//! Postgres (each test in its own schema, dropped afterwards).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

fn pg_url() -> String {
    std::env::var("CLYRA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn pg() -> postgres::Client {
    let url = pg_url();
    postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
        panic!("these tests need Postgres at {url} (CLYRA_TEST_POSTGRES_URL; scripts/services.sh starts it): {e}")
    })
}

/// A schema of one test, dropped at the end.
struct Schema(String);

impl Schema {
    fn new(sql: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "wcli_{}_{nanos}_{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        pg().batch_execute(&format!(
            "CREATE SCHEMA {name}; {}",
            sql.replace("{s}", &name)
        ))
        .unwrap();
        Schema(name)
    }
    fn exec(&self, sql: &str) {
        pg().batch_execute(&sql.replace("{s}", &self.0)).unwrap();
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
        }
    }
}

fn take(s: &Schema, out: &std::path::Path, extra: &[&str]) {
    clyra()
        .args([
            "snapshot",
            "take",
            "--dsn",
            &pg_url(),
            "--schemas",
            &s.0,
            "--out",
        ])
        .arg(out)
        .args(extra)
        .assert()
        .success()
        .stdout(predicate::str::contains("relations"));
}

const BASE: &str = "CREATE TABLE {s}.customers (id int NOT NULL, name text, phone text);
    CREATE TABLE {s}.orders (id int, amount numeric(12,2));
    INSERT INTO {s}.orders SELECT g, g FROM generate_series(1, 100) g;
    CREATE VIEW {s}.v AS SELECT id FROM {s}.orders;";

#[test]
fn take_then_diff_human_json_and_exit_codes() {
    let s = Schema::new(BASE);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let counts = format!("{}.orders", s.0);
    take(&s, &a, &["--exact-counts", &counts]);
    // Unchanged: exit 0, "no changes", even with --fail-on-change.
    let b0 = dir.path().join("b0.json");
    take(&s, &b0, &["--exact-counts", &counts]);
    clyra()
        .arg("diff")
        .args([&a, &b0])
        .arg("--fail-on-change")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "no changes (3 relations compared)",
        ));
    s.exec(
        "ALTER TABLE {s}.customers RENAME COLUMN phone TO mobile;
         ALTER TABLE {s}.customers ALTER COLUMN id TYPE bigint;
         INSERT INTO {s}.orders VALUES (101, 5);
         CREATE TABLE {s}.refunds (id int);
         DROP VIEW {s}.v;",
    );
    take(&s, &b, &["--exact-counts", &counts]);
    let out = clyra().arg("diff").args([&a, &b]).assert().code(0);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let n = &s.0;
    for needle in [
        format!("~ {n}.customers"),
        "    - column phone text null (was at 3)".to_string(),
        "    + column mobile text null at 3".to_string(),
        "    ~ column id: integer -> bigint".to_string(),
        "    hint: phone dropped and mobile added at position 3, same type: renamed?".to_string(),
        format!("~ {n}.orders"),
        "    ~ exact rows 100 -> 101 (+1)".to_string(),
        format!("+ {n}.refunds  added: table, 1 column"),
        format!("- {n}.v  dropped: view, 1 column"),
        "7 changes: 1 added, 1 dropped, 2 changed, 0 unchanged".to_string(),
    ] {
        assert!(text.contains(&needle), "missing `{needle}` in:\n{text}");
    }
    clyra()
        .arg("diff")
        .args([&a, &b])
        .arg("--fail-on-change")
        .assert()
        .code(2);
    let out = clyra()
        .args(["diff", "--format", "json"])
        .args([&a, &b])
        .assert()
        .code(0);
    let j: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(j["format"], "clyra.warehouse.diff/v1");
    assert_eq!(j["changed"], true);
    assert_eq!(j["from_file"], a.display().to_string());
    assert_eq!(j["summary"]["tables_added"], 1);
    assert_eq!(j["summary"]["tables_dropped"], 1);
    let cust = j["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == format!("{n}.customers"))
        .unwrap();
    assert_eq!(cust["changes"][0]["change"], "column_dropped");
    assert_eq!(cust["hints"][0]["hint"], "possible_rename");
}

#[test]
fn diff_output_is_identical_over_100_runs() {
    let s = Schema::new(BASE);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    take(&s, &a, &[]);
    s.exec("ALTER TABLE {s}.orders ADD COLUMN note text NOT NULL DEFAULT ''; DROP TABLE {s}.customers;");
    take(&s, &b, &[]);
    for format in ["human", "json"] {
        let first = clyra()
            .args(["diff", "--format", format])
            .args([&a, &b])
            .output()
            .unwrap();
        assert!(first.status.success());
        for _ in 0..100 {
            let again = clyra()
                .args(["diff", "--format", format])
                .args([&a, &b])
                .output()
                .unwrap();
            assert_eq!(
                again.stdout, first.stdout,
                "{format} output changed between runs"
            );
        }
    }
}

#[test]
fn snapshot_to_stdout_is_the_canonical_file_alone() {
    let s = Schema::new(BASE);
    let out = clyra()
        .args([
            "snapshot",
            "take",
            "--dsn",
            &pg_url(),
            "--schemas",
            &s.0,
            "--out",
            "-",
        ])
        .assert()
        .success();
    let bytes = out.get_output().stdout.clone();
    assert!(clyra_evidence::jcs::is_canonical(&bytes).unwrap());
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["format"], "clyra.warehouse.snapshot/v1");
    assert_eq!(v["tables"].as_object().unwrap().len(), 3);
}

#[test]
fn take_refuses_bad_globs_overwrites_and_unreachable_servers() {
    let s = Schema::new(BASE);
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    clyra()
        .args([
            "snapshot",
            "take",
            "--dsn",
            &pg_url(),
            "--schemas",
            &s.0,
            "--content-hash",
        ])
        .arg(format!("{}.nothing*", s.0))
        .arg("--out")
        .arg(&a)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "--content-hash glob `{}.nothing*` matches no table in scope (3 tables in schemas {})",
            s.0, s.0
        )));
    assert!(!a.exists(), "nothing written on error");
    take(&s, &a, &[]);
    clyra()
        .args([
            "snapshot",
            "take",
            "--dsn",
            &pg_url(),
            "--schemas",
            &s.0,
            "--out",
        ])
        .arg(&a)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "already exists; refusing to overwrite",
        ));
    clyra()
        .args([
            "snapshot",
            "take",
            "--dsn",
            "postgres://ann:hunter2@127.0.0.1:1/test",
            "--out",
        ])
        .arg(dir.path().join("x.json"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot connect to Postgres at `postgres://ann:***@127.0.0.1:1/test`",
        ))
        .stderr(predicate::str::contains("hunter2").not());
    let out = clyra()
        .args([
            "snapshot",
            "take",
            "--format",
            "json",
            "--dsn",
            "postgres://127.0.0.1:1/test",
            "--out",
        ])
        .arg(dir.path().join("y.json"))
        .assert()
        .code(1);
    let j: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(j["ok"], false);
}

#[test]
fn diff_names_the_file_and_pointer_of_bad_input() {
    let s = Schema::new(BASE);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    take(&s, &good, &[]);
    let mut v: Value = serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        ("notjson.json", b"{\"format\": ".to_vec(), "`NAME`: not valid JSON: ".into()),
        ("array.json", b"[]".to_vec(), "`NAME`: not a Clyra warehouse snapshot: the document is not a JSON object".into()),
        (
            "v9.json",
            {
                let mut w = v.clone();
                w["format"] = "clyra.warehouse.snapshot/v9".into();
                serde_json::to_vec(&w).unwrap()
            },
            "`NAME`: unsupported snapshot format `clyra.warehouse.snapshot/v9` at JSON pointer `/format`".into(),
        ),
        (
            "tampered.json",
            {
                v["tables"][format!("{}.orders", s.0)]["columns"][1]["type"] = "text".into();
                serde_json::to_vec(&v).unwrap()
            },
            format!("`NAME`: invalid snapshot at JSON pointer `/tables/{}.orders/fingerprint`: does not match the columns", s.0),
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let expected = expected.replace("NAME", &path.display().to_string());
        clyra()
            .arg("diff")
            .arg(&good)
            .arg(&path)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(expected));
    }
    clyra()
        .arg("diff")
        .arg(&good)
        .arg(dir.path().join("missing.json"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read"));
    clyra().args(["diff", "-", "-"]).assert().code(1);
}

#[test]
fn lean_snapshot_flags_are_recorded() {
    let s = Schema::new(BASE);
    let out = clyra()
        .args(["snapshot", "take", "--dsn", &pg_url(), "--schemas", &s.0])
        .args(["--estimated-sizes", "--no-column-stats", "--out", "-"])
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["scope"]["sizes"], "estimated");
    assert_eq!(v["scope"]["column_stats"], false);
}

#[test]
fn anchor_command_prints_the_anchor() {
    let out = clyra()
        .args([
            "warehouse",
            "anchor",
            "--format",
            "json",
            "--dsn",
            &pg_url(),
        ])
        .assert()
        .success();
    let j: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(j["platform"], "postgres");
    assert_eq!(j["lsn_source"], "pg_current_wal_lsn");
    assert!(j["lsn"].as_str().unwrap().contains('/'));
    clyra()
        .args(["warehouse", "anchor", "--dsn", &pg_url()])
        .assert()
        .success()
        .stdout(predicate::str::contains("timeline  1"));
}

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        &["snapshot", "take", "--help"][..],
        &["diff", "--help"][..],
        &["warehouse", "anchor", "--help"][..],
    ] {
        clyra()
            .args(args)
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
}
