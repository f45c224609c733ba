//! `clyra warehouse doctor` and `clyra doctor` end to end: exit codes, human and JSON output, on
//! the local Postgres (throwaway databases, dropped afterwards) and Redis, and on temporary
//! installations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

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

fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A database of one test, dropped at the end.
struct Db(String);

impl Db {
    fn new() -> Self {
        let name = unique("doccli");
        pg().batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Db(name)
    }
    fn dsn(&self) -> String {
        let base = pg_url();
        let (head, _) = base.rsplit_once('/').unwrap();
        format!("{head}/{}", self.0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
        }
    }
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn finding<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id} in {v:#}"))
}

#[test]
fn healthy_run_prints_a_table_and_exits_0() {
    let db = Db::new();
    clyra()
        .args(["warehouse", "doctor", "--dsn", &db.dsn()])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "warehouse doctor: {} (Postgres)",
            db.dsn()
        )))
        .stdout(predicate::str::is_match(r"(?m)^ok +connect +connected to database").unwrap())
        .stdout(predicate::str::is_match(r"(?m)^ok +privileges\.anchor ").unwrap())
        .stdout(
            predicate::str::is_match(
                r"(?m)^warn +guards\.installed .*\n +fix: clyra warehouse install-guards --dsn ",
            )
            .unwrap(),
        )
        .stdout(predicate::str::is_match(r"(?m)^\d+ ok, \d+ warn, 0 fail, \d+ skip$").unwrap());
}

#[test]
fn json_is_stable_across_runs_apart_from_measured() {
    let db = Db::new();
    let run = || {
        let out = clyra()
            .args([
                "warehouse",
                "doctor",
                "--format",
                "json",
                "--dsn",
                &db.dsn(),
            ])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone();
        json(&out)
    };
    let (mut a, mut b) = (run(), run());
    for v in [&mut a, &mut b] {
        assert_eq!(v["platform"], "postgres");
        for f in v["findings"].as_array_mut().unwrap() {
            assert!(f["measured"].is_object(), "{f}");
            f.as_object_mut().unwrap().remove("measured");
        }
    }
    assert_eq!(a, b);
    assert!(finding(&a, "clock.skew")["fix"].is_null());
}

#[test]
fn unreachable_port_exits_2() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = clyra()
        .args(["warehouse", "doctor", "--format", "json", "--dsn"])
        .arg(format!("postgres://postgres@127.0.0.1:{port}/test"))
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["status"], "fail");
    let c = finding(&v, "connect");
    assert_eq!(c["status"], "fail");
    assert!(c["fix"].as_str().unwrap().contains("pg_isready"), "{c}");
    assert!(c["measured"]["connect_ms"].is_number());
}

#[test]
fn missing_database_suggests_createdb() {
    let name = unique("doccli_missing");
    let base = pg_url();
    let (head, _) = base.rsplit_once('/').unwrap();
    clyra()
        .args(["warehouse", "doctor", "--dsn"])
        .arg(format!("{head}/{name}"))
        .assert()
        .code(2)
        .stdout(predicate::str::contains(format!(
            "database `{name}` does not exist"
        )))
        .stdout(predicate::str::contains("fix: createdb -h "))
        .stdout(predicate::str::contains(format!("-O postgres {name}")));
}

#[test]
fn mistyped_connection_strings_get_suggestions_everywhere() {
    // The doctor.
    clyra()
        .args([
            "warehouse",
            "doctor",
            "--dsn",
            "postgress://ci:hunter2@127.0.0.1:5432/test",
        ])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "did you mean `postgres://ci:***@127.0.0.1:5432/test`?",
        ))
        .stdout(predicate::str::contains("hunter2").not());
    clyra()
        .args([
            "warehouse",
            "doctor",
            "--dsn",
            "host=127.0.0.1 dbname=test user=postgres applicaton_name=ci",
        ])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "fix: clyra warehouse doctor --dsn 'host=127.0.0.1 dbname=test user=postgres application_name=ci'",
        ));
    // Every other command that takes --dsn goes through the same parser.
    let dir = tempfile::tempdir().unwrap();
    clyra()
        .args([
            "snapshot",
            "take",
            "--dsn",
            "postgress://ci:hunter2@127.0.0.1/test",
            "--out",
        ])
        .arg(dir.path().join("s.json"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "did you mean `postgres://ci:***@127.0.0.1/test`?",
        ))
        .stderr(predicate::str::contains("hunter2").not());
    clyra()
        .args([
            "warehouse",
            "anchor",
            "--dsn",
            "host=127.0.0.1 user=postgres database=test",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`database` is not a libpq parameter; did you mean `dbname`?",
        ));
    clyra()
        .args([
            "warehouse",
            "anchor",
            "--dsn",
            "postgres://postgres@127.0.0.1:70000/test",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("port `70000` is out of range"));
    clyra()
        .args([
            "warehouse",
            "anchor",
            "--dsn",
            "postgres://postgres@127.0.0.1/test?sslmode=requre",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "did you mean `postgres://postgres@127.0.0.1/test?sslmode=require`?",
        ));
    assert!(!dir.path().join("s.json").exists());
}

#[test]
fn bigquery_is_phase_1_5_with_exit_2() {
    for dsn in [
        "bigquery://my-project/analytics",
        "https://bigquery.googleapis.com/bigquery/v2/projects/my-project",
    ] {
        let out = clyra()
            .args(["warehouse", "doctor", "--format", "json", "--dsn", dsn])
            .assert()
            .code(2)
            .get_output()
            .stdout
            .clone();
        let v = json(&out);
        assert_eq!(v["platform"], "bigquery");
        let p = finding(&v, "platform");
        assert_eq!(p["status"], "fail");
        assert!(p["message"]
            .as_str()
            .unwrap()
            .contains("Phase 1.5, not yet supported"));
    }
    // Snowflake and Databricks are reported, not failed.
    clyra()
        .args([
            "warehouse",
            "doctor",
            "--dsn",
            "https://acme-xy123.snowflakecomputing.com",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("clyra warehouse snowflake"));
}

#[test]
fn usage_errors_exit_1() {
    clyra().args(["warehouse", "doctor"]).assert().code(1);
    clyra()
        .args([
            "warehouse",
            "doctor",
            "--dsn",
            "x",
            "--connect-timeout",
            "soon",
        ])
        .assert()
        .code(1);
}

/// A temporary installation: keys, trust file, a journal with one entry, a policy.
fn install(dir: &Path) {
    let run = |args: &[&str]| {
        clyra().current_dir(dir).args(args).assert().success();
    };
    run(&["keys", "generate", "--out", "keys"]);
    run(&[
        "keys",
        "trust",
        "add",
        "--trust",
        "trust.json",
        "keys/clyra.pub",
    ]);
    clyra()
        .current_dir(dir)
        .args([
            "journal",
            "append",
            "--store",
            "sqlite:.clyra/journal",
            "--tenant",
            "acme",
            "-",
        ])
        .write_stdin(r#"{"kind": "demo.hello", "id": "e-1", "body": {"n": 1}}"#)
        .assert()
        .success();
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn installation_with_a_world_readable_key_fails_with_chmod() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path());
    chmod(&dir.path().join("keys/clyra.key"), 0o644);
    let out = clyra()
        .current_dir(dir.path())
        .args(["doctor", "--format", "json"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let k = finding(&v, "keys.file");
    assert_eq!(k["status"], "fail", "{v:#}");
    assert!(k["message"].as_str().unwrap().contains("mode 644"), "{k}");
    assert_eq!(k["fix"], "chmod 600 keys/clyra.key");
    // The defaults found the journal and the trust file.
    assert_eq!(finding(&v, "journal.store")["status"], "ok");
    let chain = finding(&v, "journal.chain");
    assert_eq!(chain["status"], "ok");
    assert!(
        chain["message"]
            .as_str()
            .unwrap()
            .contains("1 tenant, 1 entry"),
        "{chain}"
    );
    assert_eq!(finding(&v, "trust.file")["status"], "ok");
    assert_eq!(
        finding(&v, "clyra.version")["message"],
        format!("clyra {}", env!("CARGO_PKG_VERSION"))
    );

    // Paste the fix: nothing fails any more.
    let out = std::process::Command::new("sh")
        .current_dir(dir.path())
        .arg("-c")
        .arg(k["fix"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    clyra()
        .current_dir(dir.path())
        .args(["doctor"])
        .assert()
        .code(0)
        .stdout(
            predicate::str::is_match(
                r"(?m)^ok +keys\.file +`keys/clyra\.key`: ed25519 private key",
            )
            .unwrap(),
        );
}

#[test]
fn installation_problems_each_get_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path());
    // A tampered journal entry breaks the chain.
    let db = dir.path().join(".clyra/journal/journal.sqlite3");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute(
        "UPDATE clyra_entries SET entry = CAST(replace(CAST(entry AS TEXT), 'demo.hello', 'demo.HELLO') AS BLOB)",
        [],
    )
    .unwrap();
    drop(c);
    std::fs::write(dir.path().join("trust.json"), "{not json").unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "version: 4\ngenai_security:\n  detectors:\n    pii:\n      treshold: 0.5\n",
    )
    .unwrap();
    let missing = dir.path().join("nowhere");
    let out = clyra()
        .current_dir(dir.path())
        .args([
            "doctor",
            "--format",
            "json",
            "--policy",
            "policy.yaml",
            "--redis",
            "redis://127.0.0.1:1",
        ])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let chain = finding(&v, "journal.chain");
    assert_eq!(chain["status"], "fail", "{v:#}");
    assert!(chain["fix"]
        .as_str()
        .unwrap()
        .starts_with("clyra journal verify --store sqlite:.clyra/journal --tenant acme"));
    assert_eq!(finding(&v, "trust.file")["status"], "fail");
    let p = finding(&v, "policy.file");
    assert_eq!(p["status"], "fail");
    assert!(p["fix"]
        .as_str()
        .unwrap()
        .starts_with("clyra policy lint policy.yaml"));
    let r = finding(&v, "redis");
    assert_eq!(r["status"], "fail");
    assert!(r["fix"]
        .as_str()
        .unwrap()
        .starts_with("redis-cli -h 127.0.0.1 -p 1 ping"));
    // Every warn and fail has a fix.
    for f in v["findings"].as_array().unwrap() {
        if f["status"] == "warn" || f["status"] == "fail" {
            assert!(f["fix"].is_string(), "{f}");
        }
    }

    // A store that does not exist is reported, and not created.
    clyra()
        .current_dir(dir.path())
        .args(["doctor", "--store"])
        .arg(format!("sqlite:{}", missing.display()))
        .assert()
        .code(2)
        .stdout(predicate::str::contains("no journal at"));
    assert!(!missing.exists());
}

#[test]
fn installation_with_redis_and_a_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new();
    let out = clyra()
        .current_dir(dir.path())
        .env_remove("CLYRA_STORE")
        .args([
            "doctor",
            "--format",
            "json",
            "--redis",
            "redis://127.0.0.1:6379",
            "--dsn",
            &db.dsn(),
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let r = finding(&v, "redis");
    assert_eq!(
        r["status"], "ok",
        "these tests need Redis at 127.0.0.1:6379 (scripts/services.sh starts it): {r}"
    );
    assert_eq!(finding(&v, "warehouse.connect")["status"], "ok");
    assert_eq!(finding(&v, "journal.store")["status"], "skip");
    assert_eq!(finding(&v, "keys.file")["status"], "skip");
}
