//! `clyra replay` end to end on the local Postgres: models really run, a snapshot and a bundle
//! built with the CLI, replayed, the certificate checked with `clyra verify-envelope`.
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

/// A source schema and an analytics schema of one test, dropped at the end.
struct Shop {
    raw: String,
    an: String,
}

impl Shop {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = format!("rcli_{}_{nanos}", std::process::id());
        let shop = Shop {
            raw: format!("{p}_raw"),
            an: format!("{p}_an"),
        };
        pg().batch_execute(&format!(
            "CREATE SCHEMA {r}; CREATE SCHEMA {a};
             CREATE TABLE {r}.orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2));
             INSERT INTO {r}.orders SELECT g, 1 + g % 20, g / 4.0 FROM generate_series(1, 200) g;",
            r = shop.raw,
            a = shop.an
        ))
        .unwrap();
        shop
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE; DROP SCHEMA IF EXISTS {} CASCADE",
                self.raw, self.an
            ));
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    clyra_evidence::Digest::sha256(bytes).to_hex()
}

/// Runs two models for real, snapshots them, writes the replay input under `d/art/replay`, and
/// builds and signs `d/run.def.zip` with the CLI.
fn build(d: &Path, shop: &Shop) {
    let (r, a) = (&shop.raw, &shop.an);
    let stg = format!("select id as order_id, customer_id, amount from \"test\".\"{r}\".\"orders\" where amount > 5\n");
    let mart = format!(
        "select customer_id, count(*) as orders, sum(amount) as revenue\nfrom \"test\".\"{a}\".\"stg_orders\"\ngroup by customer_id\n"
    );
    pg().batch_execute(&format!(
        "CREATE VIEW {a}.stg_orders AS {stg}; CREATE TABLE {a}.customer_revenue AS {mart};"
    ))
    .unwrap();
    let art = d.join("art/replay");
    std::fs::create_dir_all(art.join("compiled")).unwrap();
    std::fs::write(art.join("compiled/model.shop.stg_orders.sql"), &stg).unwrap();
    std::fs::write(art.join("compiled/model.shop.customer_revenue.sql"), &mart).unwrap();
    clyra()
        .args(["snapshot", "take", "--dsn", &pg_url(), "--schemas", a])
        .args(["--content-hash", &format!("{a}.*"), "--out"])
        .arg(art.join("snapshot-after.json"))
        .assert()
        .success();
    let set = serde_json::json!({
        "format": "clyra.replay.set/v1",
        "snapshot_after": "replay/snapshot-after.json",
        "models": [
            {"unique_id": "model.shop.customer_revenue", "relation": format!("{a}.customer_revenue"),
             "materialization": "table", "compiled_sql": "replay/compiled/model.shop.customer_revenue.sql",
             "compiled_sql_sha256": sha256_hex(mart.as_bytes()), "depends_on": [format!("{a}.stg_orders")]},
            {"unique_id": "model.shop.stg_orders", "relation": format!("{a}.stg_orders"),
             "materialization": "view", "compiled_sql": "replay/compiled/model.shop.stg_orders.sql",
             "compiled_sql_sha256": sha256_hex(stg.as_bytes()), "depends_on": [format!("{r}.orders")]}
        ]
    });
    std::fs::write(
        art.join("replay.json"),
        serde_json::to_vec_pretty(&set).unwrap(),
    )
    .unwrap();
    clyra()
        .current_dir(d)
        .args(["keys", "generate", "--out", "keys"])
        .assert()
        .success();
    clyra()
        .current_dir(d)
        .args([
            "keys",
            "trust",
            "add",
            "--trust",
            "trust.json",
            "keys/clyra.pub",
        ])
        .assert()
        .success();
    std::fs::write(
        d.join("journal.ndjson"),
        "{\"ts\":\"2026-12-02T09:00:00Z\",\"kind\":\"dbt.run.started\",\"run_id\":\"r1\"}\n\
         {\"ts\":\"2026-12-02T09:00:09Z\",\"kind\":\"dbt.run.finished\",\"run_id\":\"r1\",\"status\":\"success\"}\n",
    )
    .unwrap();
    clyra()
        .current_dir(d)
        .args([
            "bundle",
            "build",
            "--kind",
            "def",
            "--journal",
            "journal.ndjson",
        ])
        .args([
            "--artifacts",
            "art",
            "--key",
            "keys/clyra.key",
            "--tenant",
            "acme",
        ])
        .args(["--environment", "test", "--out", "run.def.zip"])
        .assert()
        .success();
}

fn replay(d: &Path, bundle: &str, out: &str) -> Command {
    let mut c = clyra();
    c.current_dir(d)
        .args(["replay", "--bundle", bundle, "--trust", "trust.json"])
        .args(["--dsn", &pg_url(), "--key", "keys/clyra.key", "--out", out]);
    c
}

#[test]
fn replay_signs_a_certificate_that_verifies_and_fails_on_drift() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shop = Shop::new();
    build(d, &shop);

    replay(d, "run.def.zip", "cert.json")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("replay SUCCESS: run.def.zip"))
        .stdout(predicate::str::contains("isolation    parser+role"))
        .stdout(predicate::str::contains("(checked: gone)"))
        .stdout(predicate::str::contains("match     model.shop.stg_orders"));
    clyra()
        .current_dir(d)
        .args(["verify-envelope", "cert.json", "--trust", "trust.json"])
        .args(["--subject", "run.def.zip", "--predicate-type"])
        .arg("https://clyra.dev/replay-certificate/v1")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("VALID: cert.json"));
    // Never over an existing file.
    replay(d, "run.def.zip", "cert.json")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("refusing to overwrite"));

    // A bundle that does not verify is never replayed: exit 2, no certificate.
    let mut bytes = std::fs::read(d.join("run.def.zip")).unwrap();
    let needle = b"where amount > 5";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 15] = b'6';
    std::fs::write(d.join("tampered.zip"), &bytes).unwrap();
    replay(d, "tampered.zip", "tampered.cert.json")
        .assert()
        .code(2)
        .stdout(predicate::str::contains("INVALID: tampered.zip"))
        .stdout(predicate::str::contains("replay refused"));
    assert!(!d.join("tampered.cert.json").exists());

    // The sources changed since the run: failed, exit 2, with the reasons, still signed.
    pg().batch_execute(&format!("DELETE FROM {}.orders WHERE id = 100", shop.raw))
        .unwrap();
    let out = replay(d, "run.def.zip", "drift.cert.json")
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "failed");
    let models = doc["certificate"]["models"].as_array().unwrap();
    assert_eq!(models[0]["unique_id"], "model.shop.stg_orders");
    assert_eq!(models[0]["status"], "mismatch");
    assert!(models[0]["reasons"][0]
        .as_str()
        .unwrap()
        .starts_with("row count: recorded"));
    clyra()
        .current_dir(d)
        .args([
            "verify-envelope",
            "drift.cert.json",
            "--trust",
            "trust.json",
        ])
        .assert()
        .code(0);

    // A glob that matches no model: a usage error.
    replay(d, "run.def.zip", "none.cert.json")
        .args(["--models", "model.other.*"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("matches no model"));
}

#[test]
fn cleanup_help_and_usage() {
    clyra()
        .args(["replay", "--cleanup", "--dsn", &pg_url()])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("cleanup"));
    clyra()
        .args(["replay", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Example"))
        .stdout(predicate::str::contains("--cleanup"));
    // Without a bundle and without --cleanup: usage error, exit 1.
    clyra()
        .args(["replay", "--dsn", &pg_url()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--bundle"));
}
