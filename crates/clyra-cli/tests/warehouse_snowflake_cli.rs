//! `clyra warehouse snowflake anchor` and `reconcile` end to end, against the local Snowflake
//! SQL API stand-in (`crates/clyra-warehouse/tests/support/snowflake.rs`), never a live account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../clyra-warehouse/tests/support/snowflake.rs"]
mod standin;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use standin::{Config, StandIn, TestKey};

fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

struct Setup {
    server: StandIn,
    dir: tempfile::TempDir,
    key: PathBuf,
}

fn setup(config: impl FnOnce(&mut Config)) -> Setup {
    let k = TestKey::shared();
    let mut cfg = Config::new(k);
    config(&mut cfg);
    let dir = tempfile::tempdir().unwrap();
    let key = k.write_private(dir.path(), "rsa_key.p8");
    Setup {
        server: StandIn::start(cfg),
        dir,
        key,
    }
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, sub: &str) -> Command {
        let mut c = clyra();
        c.args([
            "warehouse",
            "snowflake",
            sub,
            "--account",
            "xy12345",
            "--user",
            "ci_bot",
        ])
        .arg("--private-key")
        .arg(&self.key)
        .args(["--base-url", &self.server.url]);
        c
    }

    fn anchor(&self, out: &Path) {
        self.cmd("anchor")
            .args(["--warehouse", "TRANSFORM_WH", "--role", "TRANSFORMER"])
            .arg("--out")
            .arg(out)
            .assert()
            .success()
            .stdout(predicate::str::contains("(provisional)"));
    }
}

fn read(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn anchor_then_reconcile_confirms() {
    let s = setup(|_| {});
    let a = s.path("a.json");
    s.anchor(&a);
    let set = read(&a);
    assert_eq!(set["format"], "clyra.warehouse.snowflake-anchors/v1");
    let anchor = &set["anchors"][0];
    assert_eq!(anchor["status"], "provisional");
    assert_eq!(anchor["warehouse"], "TRANSFORM_WH");
    let id = anchor["query_id"].as_str().unwrap().to_string();

    let r = s.path("r.json");
    let out = s
        .cmd("reconcile")
        .arg("--anchors")
        .arg(&a)
        .arg("--out")
        .arg(&r)
        .args(["--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["summary"]["confirmed"], 1);
    let got = read(&r);
    assert_eq!(got["anchors"][0]["query_id"], id.as_str());
    assert_eq!(got["anchors"][0]["status"], "confirmed");
    assert!(got["anchors"][0]["query_hash"].is_string());
    // Refuses to overwrite.
    s.cmd("reconcile")
        .arg("--anchors")
        .arg(&a)
        .arg("--out")
        .arg(&r)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("refusing to overwrite"));
}

#[test]
fn a_mismatch_exits_2_and_names_the_field() {
    let s = setup(|_| {});
    let a = s.path("a.json");
    std::fs::write(
        &a,
        include_str!("../../clyra-warehouse/tests/fixtures/snowflake/anchors-mismatch.json"),
    )
    .unwrap();
    let r = s.path("r.json");
    s.cmd("reconcile")
        .arg("--anchors")
        .arg(&a)
        .arg("--out")
        .arg(&r)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("1 confirmed, 1 mismatch"))
        .stdout(predicate::str::contains(
            "role: anchor TRANSFORMER, QUERY_HISTORY ACCOUNTADMIN",
        ));
    let got = read(&r);
    assert_eq!(got["anchors"][1]["status"], "mismatch");
    assert_eq!(
        got["anchors"][1]["reconciliation"]["mismatches"][0]["field"],
        "role"
    );
}

#[test]
fn a_young_anchor_stays_provisional_and_exits_0() {
    let s = setup(|c| c.history_lag_s = 3600);
    let a = s.path("a.json");
    s.anchor(&a);
    s.cmd("reconcile")
        .arg("--anchors")
        .arg(&a)
        .arg("--out")
        .arg(s.path("r.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains("0 mismatch, 1 provisional"))
        .stdout(predicate::str::contains("reconcile again after"));
}

#[test]
fn bad_inputs_are_refused_clearly() {
    let s = setup(|_| {});
    // A key file others can read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let open = s.path("open.p8");
        std::fs::copy(&s.key, &open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        clyra()
            .args([
                "warehouse",
                "snowflake",
                "anchor",
                "--account",
                "x",
                "--user",
                "u",
            ])
            .arg("--private-key")
            .arg(&open)
            .args(["--base-url", &s.server.url, "--out"])
            .arg(s.path("a.json"))
            .assert()
            .code(1)
            .stderr(predicate::str::contains("open.p8"));
    }
    // No credentials at all.
    clyra()
        .args([
            "warehouse",
            "snowflake",
            "anchor",
            "--account",
            "x",
            "--out",
            "a.json",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--private-key"));
    // A key for another user: refused by the server, with the fingerprint to compare.
    clyra()
        .args([
            "warehouse",
            "snowflake",
            "anchor",
            "--account",
            "xy12345",
            "--user",
            "someone_else",
        ])
        .arg("--private-key")
        .arg(&s.key)
        .args(["--base-url", &s.server.url, "--out"])
        .arg(s.path("b.json"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("390144"))
        .stderr(predicate::str::contains(TestKey::shared().fingerprint()));
    assert!(!s.path("b.json").exists());
    // A broken anchors file: the file and the JSON pointer are named.
    let bad = s.path("bad.json");
    std::fs::write(
        &bad,
        r#"{"format":"clyra.warehouse.snowflake-anchors/v1","anchors":[{"platform":"snowflake"}]}"#,
    )
    .unwrap();
    s.cmd("reconcile")
        .arg("--anchors")
        .arg(&bad)
        .arg("--out")
        .arg(s.path("r.json"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("bad.json"))
        .stderr(predicate::str::contains("/anchors/0"));
    assert!(!s.path("r.json").exists());
}

#[test]
fn oauth_works_too() {
    let s = setup(|c| c.oauth_token = Some("tok-123".into()));
    let token = s.path("token.txt");
    std::fs::write(&token, "tok-123\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    clyra()
        .args(["warehouse", "snowflake", "anchor", "--account", "xy12345"])
        .arg("--oauth-token-file")
        .arg(&token)
        .args(["--base-url", &s.server.url, "--out", "-"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"status\":\"provisional\""));
    assert_eq!(s.server.seen()[0].token_type.as_deref(), Some("OAUTH"));
}
