//! SQL shape of Clyra's Snowflake statements, checked on fakesnow 0.12.1 (Snowflake SQL parsed by
//! sqlglot and run on DuckDB) through snowflake-connector-python 3.18.1.
//!
//! Runs `tests/interop/snowflake_fakesnow.py` (repository root) with the interpreter in
//! `CLYRA_INTEROP_PYTHON`, default `<repo root>/.venv/bin/python`. A missing interpreter or module
//! fails the test (it never skips): run `make venv` first.
//!
//! fakesnow lacks four context functions (the script defines them as macros and reports which)
//! and SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY (the script creates a table of that name with the
//! documented columns), so this checks parsing, column names, bindings, the time conversions and
//! the filters; the SQL API exchange itself is covered by the stand-in tests (`snowflake.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clyra_warehouse::snowflake::{
    is_uuid, sql_texts, QUERY_HISTORY_COLUMNS, SESSION_CONTEXT_COLUMNS,
};
use serde_json::{json, Value};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn python() -> PathBuf {
    match std::env::var_os("CLYRA_INTEROP_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".venv/bin/python"),
    }
}

fn script() -> PathBuf {
    repo_root().join("tests/interop/snowflake_fakesnow.py")
}

fn fail_install(why: &str) -> ! {
    panic!(
        "interop python `{}` is not usable: {why}\nrun `make venv` in the repository root \
         (creates .venv from tests/interop/requirements.txt: fakesnow==0.12.1, \
         snowflake-connector-python==3.18.1), or set CLYRA_INTEROP_PYTHON",
        python().display()
    )
}

fn run_script(input: &Value) -> Value {
    let py = python();
    match Command::new(&py).arg(script()).arg("check").output() {
        Err(e) => fail_install(&e.to_string()),
        Ok(o) if !o.status.success() => fail_install(String::from_utf8_lossy(&o.stderr).trim()),
        Ok(o) => {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["fakesnow"], "0.12.1", "{v}");
            assert_eq!(v["snowflake-connector-python"], "3.18.1", "{v}");
        }
    }
    let mut child = Command::new(&py)
        .arg(script())
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "snowflake_fakesnow.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn clyra_sql_runs_on_fakesnow_with_the_expected_columns() {
    let since_us = "1764547200000000"; // 2025-12-01T00:00:00Z
    let input: Vec<Value> = sql_texts()
        .into_iter()
        .map(|(name, sql, _)| {
            let bindings = match name {
                "query_history" => json!([
                    ["TEXT", "01bd2c3e-0001-a1b2-0000-00a1b2c3d001"],
                    ["TEXT", "01bd2c3e-0001-a1b2-0000-00a1b2c3d003"],
                    ["FIXED", since_us]
                ]),
                _ => json!([]),
            };
            json!({"name": name, "sql": sql, "bindings": bindings})
        })
        .collect();
    let out = run_script(&json!(input));

    // Only the functions known to be missing from fakesnow 0.12.1 were stood in for.
    let macros: Vec<&str> = out["macros"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for m in &macros {
        assert!(
            [
                "CURRENT_ACCOUNT",
                "CURRENT_REGION",
                "CURRENT_SESSION",
                "CURRENT_WAREHOUSE"
            ]
            .contains(m),
            "{m}"
        );
    }

    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), sql_texts().len());
    for (r, (name, _, columns)) in results.iter().zip(sql_texts()) {
        assert_eq!(r["name"], name);
        assert!(r.get("error").is_none(), "{name}: {}", r["error"]);
        let got: Vec<&str> = r["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(got, columns, "{name}");
        assert!(is_uuid(r["query_id"].as_str().unwrap()), "{r}");
    }

    let ctx = &results[0]["rows"];
    assert_eq!(ctx.as_array().unwrap().len(), 1);
    let v = |c: &str| {
        let i = SESSION_CONTEXT_COLUMNS
            .iter()
            .position(|x| *x == c)
            .unwrap();
        ctx[0][i].as_str().map(str::to_string)
    };
    assert_eq!(v("DATABASE_NAME").as_deref(), Some("DB1"));
    assert_eq!(v("SCHEMA_NAME").as_deref(), Some("S1"));
    let t: i64 = v("STATEMENT_TIME_US").unwrap().parse().unwrap();
    let now = jiff::Timestamp::now().as_microsecond();
    assert!(
        (now - t).abs() < 3_600_000_000,
        "STATEMENT_TIME_US {t}, now {now}"
    );

    // The id filter and the START_TIME bound both apply; the times come back as microseconds.
    let qh = results[1]["rows"].as_array().unwrap();
    assert_eq!(qh.len(), 1, "{qh:?}");
    let q = |c: &str| {
        let i = QUERY_HISTORY_COLUMNS.iter().position(|x| *x == c).unwrap();
        qh[0][i].as_str().map(str::to_string)
    };
    assert_eq!(
        q("QUERY_ID").as_deref(),
        Some("01bd2c3e-0001-a1b2-0000-00a1b2c3d001")
    );
    assert_eq!(q("START_TIME_US").as_deref(), Some("1767261600100000"));
    assert_eq!(q("END_TIME_US").as_deref(), Some("1767261602350000"));
    assert_eq!(q("ROWS_INSERTED").as_deref(), Some("120"));
    assert_eq!(q("SESSION_ID").as_deref(), Some("10923847562"));
    // QUERY_TEXT is never selected.
    assert!(!out.to_string().contains("secret literal"));
}
