//! Test helpers for `clyra run` / `clyra dbt record`: a workspace with a key and trust file, and
//! reading a bundle after `clyra verify` accepted it.
#![allow(dead_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

pub fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

/// A directory as `clyra dbt init` leaves it: .clyra/keys/clyra.key and .clyra/trust.json.
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    add_keys(dir.path());
    dir
}

/// Creates .clyra/keys/clyra.key and .clyra/trust.json in `dir`.
pub fn add_keys(dir: &Path) {
    clyra()
        .current_dir(dir)
        .args(["keys", "generate", "--out", ".clyra/keys"])
        .assert()
        .success();
    clyra()
        .current_dir(dir)
        .args([
            "keys",
            "trust",
            "add",
            "--trust",
            ".clyra/trust.json",
            "--not-before",
            "2020-01-01T00:00:00Z",
            ".clyra/keys/clyra.pub",
        ])
        .assert()
        .success();
}

/// The bundles in `dir/.clyra/bundles`, sorted.
pub fn bundles(dir: &Path) -> Vec<PathBuf> {
    bundles_in(&dir.join(".clyra/bundles"))
}

/// The files in `dir`, sorted (none when it does not exist).
pub fn bundles_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A verified bundle's contents.
pub struct Verified {
    pub path: PathBuf,
    pub predicate: Value,
    pub entries: Vec<Value>,
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl Verified {
    /// Journal entries of `kind`, bodies.
    pub fn bodies(&self, kind: &str) -> Vec<Value> {
        self.entries
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["body"].clone())
            .collect()
    }

    /// An artifact's bytes.
    pub fn artifact(&self, path: &str) -> Option<&[u8]> {
        self.files
            .get(&format!("artifacts/{path}"))
            .map(Vec::as_slice)
    }
}

/// Verifies `bundle` with `clyra verify` against `trust` (panics when it does not verify), then
/// reads it.
pub fn verify(bundle: &Path, trust: &Path) -> Verified {
    let out = clyra()
        .arg("verify")
        .arg(bundle)
        .arg("--trust")
        .arg(trust)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} must verify: {}{}",
        bundle.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    read(bundle)
}

/// Reads a bundle without verifying it.
pub fn read(bundle: &Path) -> Verified {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(bundle).unwrap()).unwrap();
    let mut files = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        files.insert(f.name().to_owned(), bytes);
    }
    let env: Value = serde_json::from_slice(&files["attestation.dsse.json"]).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    let entries = String::from_utf8(files["journal.ndjson"].clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Verified {
        path: bundle.to_path_buf(),
        predicate: statement["predicate"].clone(),
        entries,
        files,
    }
}

/// The one bundle of `dir`, verified with the trust file `clyra dbt init` writes.
pub fn only_bundle(dir: &Path) -> Verified {
    let b = bundles(dir);
    assert_eq!(b.len(), 1, "exactly one bundle expected: {b:?}");
    verify(&b[0], &dir.join(".clyra/trust.json"))
}
