//! `clyra warehouse delta anchor` on a real Delta table written by deltalake 1.6.6, and
//! `clyra warehouse databricks anchor` / `clyra warehouse mlflow model-version` against the local
//! stand-in built from the documented APIs (never a live workspace).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../clyra-warehouse/tests/support/delta_py.rs"]
mod delta_py;
#[path = "../../clyra-warehouse/tests/support/databricks_standin.rs"]
mod standin;

use std::os::unix::fs::PermissionsExt as _;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn clyra() -> Command {
    let mut c = Command::cargo_bin("clyra").unwrap();
    c.env_remove("DATABRICKS_TOKEN");
    c
}

fn token_file(dir: &std::path::Path, token: &str, mode: u32) -> std::path::PathBuf {
    let f = dir.join(format!("token-{mode:o}"));
    std::fs::write(&f, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    f
}

#[test]
fn delta_anchor_of_a_real_table() {
    let dir = tempfile::tempdir().unwrap();
    let seen = delta_py::make_tables(dir.path(), &["lifecycle"]);
    let table = seen["tables"]["lifecycle"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let versions = seen["tables"]["lifecycle"]["versions"].clone();
    let out = dir.path().join("a.json");

    clyra()
        .args(["warehouse", "delta", "anchor", "--table", &table, "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("@6 ->"))
        .stdout(predicate::str::contains("rows       1 in 1 live file"));
    let bytes = std::fs::read(&out).unwrap();
    let a: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(a["format"], "clyra.warehouse.delta_anchor/v1");
    assert_eq!(a["version"], 6);
    assert_eq!(a["commit_sha256"], versions[6]["sha256"]);
    assert_eq!(a["row_count"], versions[6]["num_rows"]);
    assert_eq!(
        bytes,
        clyra_evidence::jcs::canonicalize(&bytes).unwrap(),
        "the file is canonical JSON"
    );

    // A given version, to stdout, with a Unity Catalog name.
    let o = clyra()
        .args([
            "warehouse",
            "delta",
            "anchor",
            "--table",
            &format!("file://{table}"),
        ])
        .args([
            "--version",
            "2",
            "--name",
            "Main.Sales.Orders",
            "--out",
            "-",
        ])
        .assert()
        .success();
    let a: Value = serde_json::from_slice(&o.get_output().stdout).unwrap();
    assert_eq!(a["operation"], "DELETE");
    assert_eq!(a["metrics"]["rows_deleted"], 1);
    assert_eq!(a["table"], "main.sales.orders");
    assert_eq!(a["commit_sha256"], versions[2]["sha256"]);

    // JSON report with the DEF anchors.
    let o = clyra()
        .args([
            "--format",
            "json",
            "warehouse",
            "delta",
            "anchor",
            "--table",
            &table,
        ])
        .args(["--version", "4", "--out"])
        .arg(dir.path().join("b.json"))
        .assert()
        .success();
    let r: Value = serde_json::from_slice(&o.get_output().stdout).unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["anchor"]["metrics"]["target_rows_updated"], 1);
    assert_eq!(r["def_anchors"][0]["kind"], "delta_version");
    assert!(r["def_anchors"][0]["value"]
        .as_str()
        .unwrap()
        .ends_with("@4"));

    // Errors: exit 1, nothing written, nothing overwritten.
    clyra()
        .args(["warehouse", "delta", "anchor", "--table", &table, "--out"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let missing = dir.path().join("c.json");
    clyra()
        .args([
            "warehouse",
            "delta",
            "anchor",
            "--table",
            &table,
            "--version",
            "9",
            "--out",
        ])
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("version 9")
                .and(predicate::str::contains("latest version is 6")),
        );
    assert!(!missing.exists());
    clyra()
        .args([
            "warehouse",
            "delta",
            "anchor",
            "--table",
            "s3://bucket/t",
            "--out",
        ])
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("local tables"));
}

#[test]
fn databricks_anchor_through_the_stand_in() {
    let config = standin::Config::default();
    let token = config.token.clone();
    let s = standin::StandIn::start(config);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.json");
    let args = |out: &std::path::Path| {
        let mut v: Vec<std::ffi::OsString> =
            ["warehouse", "databricks", "anchor", "--host", &s.url]
                .iter()
                .map(Into::into)
                .collect();
        for a in [
            "--warehouse-id",
            "abc123def456",
            "--table",
            "main.finance.fct_revenue",
            "--out",
        ] {
            v.push(a.into());
        }
        v.push(out.into());
        v
    };

    // Token from the environment.
    let o = clyra()
        .args(args(&out))
        .env("DATABRICKS_TOKEN", &token)
        .assert()
        .success()
        .stdout(predicate::str::contains("main.finance.fct_revenue@42"))
        .stdout(predicate::str::contains(
            "commit     null (DESCRIBE HISTORY does not return",
        ));
    let shown = String::from_utf8_lossy(&o.get_output().stdout).to_string();
    assert!(!shown.contains(&token));
    let a: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(a["source"], "describe_history");
    assert_eq!(a["commit_sha256"], Value::Null);
    assert_eq!(a["metrics"]["target_rows_inserted"], 15);

    // Token from a private file; a readable one is refused.
    let private = token_file(dir.path(), &token, 0o600);
    let out2 = dir.path().join("b.json");
    clyra()
        .args(args(&out2))
        .arg("--token-file")
        .arg(&private)
        .assert()
        .success();
    let open = token_file(dir.path(), &token, 0o644);
    clyra()
        .args(args(&dir.path().join("c.json")))
        .arg("--token-file")
        .arg(&open)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("chmod 600").and(predicate::str::contains(&token).not()));

    // No token; a wrong token (never echoed).
    clyra()
        .args(args(&dir.path().join("d.json")))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("DATABRICKS_TOKEN")
                .and(predicate::str::contains("--token-file")),
        );
    clyra()
        .args(args(&dir.path().join("e.json")))
        .env("DATABRICKS_TOKEN", "dapi-wrong-SECRET")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("UNAUTHENTICATED")
                .and(predicate::str::contains("SECRET").not()),
        );
    assert!(!dir.path().join("e.json").exists());

    // A bad table name never reaches the service.
    let before = s.requests().len();
    clyra()
        .args([
            "warehouse",
            "databricks",
            "anchor",
            "--host",
            &s.url,
            "--warehouse-id",
            "w1",
        ])
        .args(["--table", "main.finance", "--out", "-"])
        .env("DATABRICKS_TOKEN", &token)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("catalog.schema.table"));
    assert_eq!(s.requests().len(), before);
}

#[test]
fn mlflow_model_version_through_the_stand_in() {
    let config = standin::Config::default();
    let token = config.token.clone();
    let s = standin::StandIn::start(config);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    clyra()
        .args(["warehouse", "mlflow", "model-version", "--host", &s.url])
        .args(["--name", "churn", "--version", "3", "--out"])
        .arg(&out)
        .env("DATABRICKS_TOKEN", &token)
        .assert()
        .success()
        .stdout(predicate::str::contains("model version churn/3"))
        .stdout(predicate::str::contains("status     READY"));
    let m: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(m["record"]["run_id"], "0a1b2c3d4e5f40718293a4b5c6d7e8f9");
    assert_eq!(m["record"]["registry"], "workspace");
    let digest = clyra_evidence::Digest::sha256(
        &clyra_evidence::jcs::to_canonical_vec(&m["record"]).unwrap(),
    )
    .to_hex();
    assert_eq!(m["sha256"], digest);

    let o = clyra()
        .args([
            "warehouse",
            "mlflow",
            "model-version",
            "--host",
            &s.url,
            "--unity-catalog",
        ])
        .args(["--name", "main.ml.churn", "--version", "7", "--out", "-"])
        .env("DATABRICKS_TOKEN", &token)
        .assert()
        .success();
    let m: Value = serde_json::from_slice(&o.get_output().stdout).unwrap();
    assert_eq!(m["record"]["registry"], "unity_catalog");

    clyra()
        .args(["warehouse", "mlflow", "model-version", "--host", &s.url])
        .args(["--name", "churn", "--version", "99", "--out"])
        .arg(dir.path().join("n.json"))
        .env("DATABRICKS_TOKEN", &token)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("churn/99 does not exist"));
    assert!(!dir.path().join("n.json").exists());
}
