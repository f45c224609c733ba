//! Real Delta tables written by the `deltalake` Python package (delta-rs), through
//! `tests/interop/delta_tables.py`, for the Delta anchor tests of the library and the CLI.
//!
//! The interpreter is `CLYRA_INTEROP_PYTHON`, by default `<repo root>/.venv/bin/python`. A missing
//! interpreter or package fails the test (never skips): run `make venv` first.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn python() -> PathBuf {
    match std::env::var_os("CLYRA_INTEROP_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".venv/bin/python"),
    }
}

/// Writes `tables` under `dir` and returns what Python saw (see the script's docstring).
pub fn make_tables(dir: &Path, tables: &[&str]) -> serde_json::Value {
    let py = python();
    let script = repo_root().join("tests/interop/delta_tables.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(dir)
        .args(tables)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "interop python `{}` is not usable: {e}\nrun `make venv` from the repository root \
                 (creates .venv from tests/interop/requirements.txt: deltalake==1.6.6, pyarrow), \
                 or set CLYRA_INTEROP_PYTHON",
                py.display()
            )
        });
    assert!(
        out.status.success(),
        "{} {} failed (run `make venv` if deltalake is missing):\n{}",
        py.display(),
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "delta_tables.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
