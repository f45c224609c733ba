//! `clyra policy lint` and `clyra policy hash` end to end: output formats, exit codes (0 clean or
//! warnings only, 1 on any error) and located findings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn template(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../templates/policy")
        .join(name)
}

const HEAD: &str = "version: 4\nmetadata:\n  name: t\n  version: '1'\n  owners: [a@acme.example]\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn lint_clean_templates_exit_0() {
    clyra()
        .args(["policy", "lint"])
        .arg(template("complete.yaml"))
        .arg(template("genai_security.yaml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("complete.yaml: ok"))
        .stdout(predicate::str::contains("genai_security.yaml: ok"));
}

#[test]
fn lint_prints_located_findings_with_suggestions_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        &format!(
            "{HEAD}genai_security:\n  detectors:\n    pii:\n      treshold: 0.8\n    \
sentiment: {{}}\nrules:\n  - id: r\n    match: {{kind: x}}\n    when: 'acton.kind == 1'\n    \
verdict: block\n"
        ),
    );
    let name = bad.display().to_string();
    clyra()
        .args(["policy", "lint"])
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "{name}:9:7: error[P_SCHEMA] /genai_security/detectors/pii/treshold: unknown member \
`treshold` (help: did you mean `threshold`?)\n"
        )))
        .stdout(predicate::str::contains(format!(
            "{name}:10:5: error[P_UNKNOWN_DETECTOR] /genai_security/detectors/sentiment: unknown \
detector `sentiment`"
        )))
        .stdout(predicate::str::contains(format!(
            "{name}:14:11: error[P_CEL_VARIABLE] /rules/0/when: `when` names an unknown \
variable `acton` (at 1:1 of the expression) (help: did you mean `action`?)\n"
        )))
        .stdout(predicate::str::contains(format!(
            "{name}: 3 errors, 0 warnings"
        )));
}

#[test]
fn warnings_alone_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let v3 = write(
        dir.path(),
        "old.yaml",
        "version: 3\nmetadata: {name: t, version: '1', owners: [a]}\npolicy_mode: shadow\n",
    );
    clyra()
        .args(["policy", "lint"])
        .arg(&v3)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "3:1: warning[P_V3_RENAMED] /policy_mode: `policy_mode` is `mode` in version 4",
        ))
        .stdout(predicate::str::contains("old.yaml: 0 errors, 1 warning"));
}

#[test]
fn one_bad_file_among_good_ones_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yaml", &format!("{HEAD}mode: sometimes\n"));
    clyra()
        .args(["policy", "lint"])
        .arg(template("voice_compliance.yaml"))
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("voice_compliance.yaml: ok"))
        .stdout(predicate::str::contains("bad.yaml: 1 error, 0 warnings"));
}

#[test]
fn lint_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        &format!("{HEAD}mode: enforce\nmode: shadow\n"),
    );
    let out = clyra()
        .args(["--format", "json", "policy", "lint"])
        .arg(&bad)
        .arg(template("complete.yaml"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"], 1);
    assert_eq!(v["files"][0]["ok"], false);
    let d = &v["files"][0]["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "P_DUPLICATE_KEY");
    assert_eq!(d["line"], 7);
    assert_eq!(d["column"], 1);
    assert_eq!(d["pointer"], "/mode");
    assert_eq!(d["file"], bad.display().to_string());
    assert_eq!(d["suggestion"], "keep one of the two");
    assert_eq!(v["files"][1]["ok"], true);
    assert_eq!(v["files"][1]["diagnostics"], serde_json::json!([]));
}

#[test]
fn lint_reads_stdin_and_reports_unreadable_files() {
    clyra()
        .args(["policy", "lint", "-"])
        .write_stdin(format!("{HEAD}defaults: {{verdict: allow}}\n"))
        .assert()
        .success()
        .stdout("<stdin>: ok\n");
    clyra()
        .args(["policy", "lint", "/nonexistent/policy.yaml"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "/nonexistent/policy.yaml:1:1: error[P_IO]: cannot read the file",
        ));
}

#[test]
fn hash_ignores_layout_and_follows_values() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = write(
        dir.path(),
        "p.yaml",
        "# a comment\nversion: 4\nmetadata:\n  owners: [a]\n  name: p\n  version: \"1\"\n\
defaults: {verdict: block}\n",
    );
    let json = write(
        dir.path(),
        "p.json",
        "{\"defaults\": {\"verdict\": \"block\"}, \"metadata\": {\"name\": \"p\", \"version\": \
\"1\", \"owners\": [\"a\"]}, \"version\": 4}",
    );
    let changed = write(
        dir.path(),
        "q.yaml",
        "version: 4\nmetadata: {owners: [a], name: p, version: \"1\"}\ndefaults: {verdict: allow}\n",
    );
    let hash = |p: &Path| {
        let out = clyra()
            .args(["policy", "hash"])
            .arg(p)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    let a = hash(&yaml);
    assert!(a.starts_with("sha256:") && a.len() == 72, "{a:?}");
    assert_eq!(a, hash(&json));
    assert_ne!(a, hash(&changed));
    // The hash is the SHA-256 of the canonical JSON.
    let canonical = br#"{"defaults":{"verdict":"block"},"metadata":{"name":"p","owners":["a"],"version":"1"},"version":4}"#;
    let expected = clyra_evidence::digest::Digest::sha256(canonical).to_hex();
    assert_eq!(a.trim(), format!("sha256:{expected}"));

    let out = clyra()
        .args(["--format", "json", "policy", "hash"])
        .arg(&yaml)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    assert_eq!(v["hash"], a.trim());
    assert_eq!(v["version"], 4);
    assert_eq!(v["name"], "p");
    assert_eq!(v["file"], yaml.display().to_string());
}

#[test]
fn hash_refuses_invalid_policies() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        &format!("{HEAD}rules: [{{id: a}}]\n"),
    );
    clyra()
        .args(["policy", "hash"])
        .arg(&bad)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "error[P_SCHEMA] /rules/0/match: required member `match` is missing",
        ))
        .stderr(predicate::str::contains("is not a valid policy; no hash"));
    let out = clyra()
        .args(["--format", "json", "policy", "hash"])
        .arg(&bad)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["diagnostics"][0]["code"], "P_SCHEMA");
}

#[test]
fn help_has_examples() {
    for sub in ["lint", "hash"] {
        clyra()
            .args(["policy", sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"))
            .stdout(predicate::str::contains(format!("clyra policy {sub}")));
    }
}
