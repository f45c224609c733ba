//! `clyra journal` end to end, on SQLite and on the local Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use clyra_evidence::merkle::{leaf_hash, verify_inclusion, InclusionProof};
use clyra_evidence::{jcs, Digest};
use serde_json::Value;

fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn pg_url() -> String {
    std::env::var("CLYRA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

enum Store {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Store {
    fn url(&self) -> String {
        match self {
            Store::Sqlite(d) => format!("sqlite:{}", d.path().join("j").display()),
            Store::Postgres(schema) => format!("{}?schema={schema}", pg_url()),
        }
    }
    fn delete_entry(&self, seq: u64) {
        match self {
            Store::Sqlite(d) => {
                let c = rusqlite::Connection::open(d.path().join("j/journal.sqlite3")).unwrap();
                c.execute("DELETE FROM clyra_entries WHERE seq = ?1", [seq as i64])
                    .unwrap();
            }
            Store::Postgres(schema) => {
                let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
                c.execute(
                    &format!("DELETE FROM {schema}.clyra_entries WHERE seq = $1"),
                    &[&(seq as i64)],
                )
                .unwrap();
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Store::Postgres(schema) = self {
            if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

fn postgres_store() -> Store {
    if let Err(e) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
        panic!(
            "this test needs Postgres at {} (scripts/services.sh starts it): {e}",
            pg_url()
        );
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Store::Postgres(format!("cli_{}_{nanos}", std::process::id()))
}

fn journal_round_trip(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = store.url();
    clyra()
        .args(["keys", "generate", "--out"])
        .arg(dir.path().join("keys"))
        .assert()
        .success();
    clyra()
        .args(["keys", "generate", "--name", "other", "--out"])
        .arg(dir.path().join("keys"))
        .assert()
        .success();
    let key = dir.path().join("keys/clyra.key");
    let trust = dir.path().join("trust.json");
    let other_trust = dir.path().join("other-trust.json");
    clyra()
        .args(["keys", "trust", "add", "--trust"])
        .arg(&trust)
        .arg(dir.path().join("keys/clyra.pub"))
        .assert()
        .success();
    clyra()
        .args(["keys", "trust", "add", "--trust"])
        .arg(&other_trust)
        .arg(dir.path().join("keys/other.pub"))
        .assert()
        .success();

    let events = r#"{"events": [
        {"kind": "dbt.run.started", "run": "r-1", "body": {"target": "prod"}},
        {"kind": "dbt.model.finished", "run": "r-1", "id": "m1", "body": {"rows": 10}},
        {"kind": "gateway.decision", "actor": "agent-7", "body": {"allow": true}},
        {"kind": "dbt.run.finished", "run": "r-1"}
    ]}"#;
    let out = clyra()
        .args([
            "journal", "append", "--store", &url, "--tenant", "acme", "--format", "json", "-",
        ])
        .write_stdin(events)
        .assert()
        .success();
    let receipts = json_of(&out.get_output().stdout)["receipts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(receipts.len(), 4);
    assert_eq!(receipts[3]["run_seq"], 2);

    // A bad batch writes nothing and names the member.
    clyra()
        .args([
            "journal", "append", "--store", &url, "--tenant", "acme", "-",
        ])
        .write_stdin(r#"{"events": [{"kind": "ok"}, {"kind": "ok", "colour": 1}]}"#)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("/events/1/colour"));

    clyra()
        .args([
            "journal",
            "checkpoint",
            "--store",
            &url,
            "--tenant",
            "acme",
            "--key",
        ])
        .arg(&key)
        .assert()
        .success()
        .stdout(predicates::str::starts_with("clyra/journal/acme\n4\n"));

    let out = clyra()
        .args([
            "journal", "prove", "--store", &url, "--tenant", "acme", "--seq", "2", "--format",
            "json",
        ])
        .assert()
        .success();
    let p = json_of(&out.get_output().stdout);
    let proof = InclusionProof {
        leaf_index: p["leaf_index"].as_u64().unwrap(),
        tree_size: p["tree_size"].as_u64().unwrap(),
        hashes: p["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Digest::from_hex(h.as_str().unwrap()).unwrap())
            .collect(),
    };
    let entry = jcs::canonicalize_value(&p["entry"]).unwrap();
    verify_inclusion(
        &leaf_hash(&entry),
        &proof,
        &Digest::from_hex(p["root"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(p["entry"]["actor"], "agent-7");
    assert!(p["entry"].get("body").is_none(), "hash-only by default");

    clyra()
        .args(["journal", "verify", "--store", &url, "--trust"])
        .arg(&trust)
        .assert()
        .success();
    clyra()
        .args(["journal", "verify", "--store", &url, "--trust"])
        .arg(&other_trust)
        .assert()
        .code(2)
        .stdout(predicates::str::contains("BROKEN  acme"));

    // Cut bundles: one run, and a time range; both verify offline with the trust file.
    let run_zip = dir.path().join("r-1.def.zip");
    clyra()
        .args([
            "bundle", "export", "--store", &url, "--tenant", "acme", "--run", "r-1", "--kind",
            "def", "--key",
        ])
        .arg(&key)
        .arg("--out")
        .arg(&run_zip)
        .assert()
        .success()
        .stdout(predicates::str::contains("3 entries (run chain)"));
    clyra()
        .arg("verify")
        .arg(&run_zip)
        .arg("--trust")
        .arg(&trust)
        .assert()
        .success();
    clyra()
        .arg("verify")
        .arg(&run_zip)
        .arg("--trust")
        .arg(&other_trust)
        .assert()
        .code(2);
    let day_zip = dir.path().join("day.pef.zip");
    let now = jiff::Timestamp::now();
    let hour = jiff::SignedDuration::from_hours(1);
    clyra()
        .args([
            "bundle", "export", "--store", &url, "--tenant", "acme", "--kind", "pef", "--key",
        ])
        .arg(&key)
        .args([
            "--from",
            &(now - hour).to_string(),
            "--to",
            &(now + hour).to_string(),
            "--out",
        ])
        .arg(&day_zip)
        .assert()
        .success();
    let out = clyra()
        .arg("verify")
        .arg(&day_zip)
        .arg("--trust")
        .arg(&trust)
        .args(["--format", "json"])
        .assert()
        .success();
    assert_eq!(json_of(&out.get_output().stdout)["verdict"], "valid");
    clyra()
        .args([
            "bundle", "export", "--store", &url, "--tenant", "acme", "--run", "r-1", "--kind",
            "def", "--key",
        ])
        .arg(&key)
        .arg("--out")
        .arg(&run_zip)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("already exists"));
    clyra()
        .args([
            "bundle", "export", "--store", &url, "--tenant", "acme", "--run", "nope", "--kind",
            "def", "--key",
        ])
        .arg(&key)
        .arg("--out")
        .arg(dir.path().join("nope.zip"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no entries in run nope"));
    assert!(!dir.path().join("nope.zip").exists());

    store.delete_entry(1);
    let out = clyra()
        .args(["journal", "verify", "--store", &url, "--format", "json"])
        .assert()
        .code(2);
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["verdict"], "invalid");
    assert_eq!(v["tenants"][0]["broken_at_seq"], 1);
}

#[test]
fn journal_commands_on_sqlite() {
    journal_round_trip(Store::Sqlite(tempfile::tempdir().unwrap()));
}

#[test]
fn journal_commands_on_postgres() {
    journal_round_trip(postgres_store());
}

#[test]
fn journal_store_errors_are_clear() {
    clyra()
        .args([
            "journal",
            "verify",
            "--store",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "cannot connect to Postgres at postgres://nobody@127.0.0.1:1/none",
        ));
    clyra()
        .args(["journal", "verify", "--store", "mysql://x"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "expected sqlite:DIR or postgres://",
        ));
}

#[test]
fn journal_append_redacts_configured_members() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("j").display());
    let salt = dir.path().join("salt");
    std::fs::write(&salt, b"a-redaction-salt-of-32-bytes....").unwrap();
    std::fs::set_permissions(&salt, std::fs::Permissions::from_mode(0o644)).unwrap();
    let event = r#"{"kind": "voice.call.started", "body": {"phone": "+15551234567", "campaign": "renewals"}}"#;
    let append = |extra: &[&str]| {
        let mut c = clyra();
        c.args(["journal", "append", "--store", &store, "--tenant", "acme"])
            .args(extra)
            .arg("-");
        c.write_stdin(event);
        c
    };
    let salted = [
        "--body-policy",
        "redacted",
        "--redact",
        "/phone",
        "--redaction-salt-file",
        salt.to_str().unwrap(),
    ];
    // A salt others can read is refused, and so is --redact without the redacted policy.
    append(&salted)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("chmod 600"));
    append(&["--redact", "/phone"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("--body-policy redacted"));
    std::fs::set_permissions(&salt, std::fs::Permissions::from_mode(0o600)).unwrap();
    append(&salted).assert().success();
    // No checkpoint yet: prove says so.
    clyra()
        .args([
            "journal", "prove", "--store", &store, "--tenant", "acme", "--seq", "0",
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no checkpoint"));
    let mut s = clyra_journal::open(&store).unwrap();
    let mut entry = Vec::new();
    s.scan("acme", 0, 1, &mut |e| {
        entry = e.canonical;
        Ok(())
    })
    .unwrap();
    let v = json_of(&entry);
    assert_eq!(v["body_policy"], "redacted");
    assert_eq!(v["body"]["campaign"], "renewals");
    assert!(v["body"]["phone"]["redacted_sha256"].is_string(), "{v}");
    assert!(!String::from_utf8(entry).unwrap().contains("5551234567"));
}
