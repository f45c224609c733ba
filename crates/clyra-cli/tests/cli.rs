//! The `clyra` binary end to end: outputs, exit codes (0 ok, 1 error, 2 verification failed) and
//! error messages that say what is wrong and where.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

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

#[test]
fn canon_prints_canonical_bytes_without_newline() {
    clyra()
        .arg("canon")
        .write_stdin("{\"b\": 1.50, \"a\": [true, 1e30, \"\\u00e9\"]}")
        .assert()
        .success()
        .stdout("{\"a\":[true,1e+30,\"é\"],\"b\":1.5}");
}

#[test]
fn canon_locates_errors_with_line_column_and_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dup.json");
    std::fs::write(&f, "{\n  \"a\": {\"x\": 1,\n  \"x\": 2}\n}").unwrap();
    clyra()
        .arg("canon")
        .arg(&f)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("dup.json"))
        .stderr(predicate::str::contains(
            "duplicate key `x` at line 3, column 3 (JSON pointer `/a/x`)",
        ));
    clyra()
        .args(["canon", "-"])
        .write_stdin("[9007199254740993]")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`9007199254740993` is outside ±(2^53−1)",
        ));
}

#[test]
fn canon_json_format_reports_errors_as_json() {
    let out = clyra()
        .args(["--format", "json", "canon"])
        .write_stdin("[\"\\ud800\"]")
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    assert_eq!(v["ok"], false);
    assert!(v["error"]["causes"][1]
        .as_str()
        .unwrap()
        .contains("lone surrogate"));
}

#[test]
fn canon_ndjson_writes_one_line_per_input_line() {
    // Lines 1 and 3 canonicalize; 2 has a duplicate key, 4 is blank; no line after the final LF.
    let out = clyra()
        .args(["canon", "--ndjson", "-"])
        .write_stdin("{\"b\": 2, \"a\": 1.50}\n{\"a\":1,\"a\":2}\r\n[1e21, -0.0]\n\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("2 of 4 lines"))
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "{\"a\":1.5,\"b\":2}");
    assert_eq!(lines[2], "[1e+21,0]");
    for (i, code) in [(1, "duplicate_key"), (3, "syntax")] {
        assert!(lines[i].starts_with("{\"error\": "), "{}", lines[i]);
        let v = json_of(lines[i].as_bytes());
        assert_eq!(v["error"], code);
        assert_eq!(v["line"], i + 1);
    }
    // Every line good: exit 0, and a last line without LF still counts.
    clyra()
        .args(["canon", "--ndjson", "-"])
        .write_stdin("[2, 1]\n{}")
        .assert()
        .success()
        .stdout("[2,1]\n{}\n");
}

#[test]
fn missing_file_is_an_error_naming_it() {
    clyra()
        .args(["canon", "/nonexistent/x.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot read `/nonexistent/x.json`",
        ));
}

#[test]
fn merkle_root_matches_rfc9162_formula() {
    use clyra_evidence::Digest;
    // Three leaves: MTH = H(0x01 || H(0x01 || L0 || L1) || L2), Li = H(0x00 || di).
    let leaf = |d: &[u8]| Digest::sha256_parts(&[&[0u8], d]);
    let node = |l: Digest, r: Digest| Digest::sha256_parts(&[&[1u8], l.as_bytes(), r.as_bytes()]);
    let want = node(node(leaf(&[0x00]), leaf(&[0x10])), leaf(&[0x20, 0x21]));
    clyra()
        .args(["merkle", "root", "-"])
        .write_stdin("00\n10\n# comment\n\n2021\n")
        .assert()
        .success()
        .stdout(format!("{want}\n"));
    clyra()
        .args(["merkle", "root"])
        .write_stdin("")
        .assert()
        .success()
        .stdout("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n");
    clyra()
        .args(["merkle", "root"])
        .write_stdin("00\nzz\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("<stdin>:2: leaf `zz` is not hex"));
}

#[test]
fn merkle_prove_and_verify_round_trip_and_reject_forgeries() {
    let dir = tempfile::tempdir().unwrap();
    let leaves = dir.path().join("leaves.txt");
    std::fs::write(&leaves, "00\n10\n2021\n3031\n40414243\n").unwrap();
    let root = String::from_utf8(
        clyra()
            .args(["merkle", "root"])
            .arg(&leaves)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let root = root.trim();
    let proof = clyra()
        .args(["merkle", "prove", "inclusion", "--index", "2"])
        .arg(&leaves)
        .output()
        .unwrap();
    assert!(proof.status.success());
    let proof_path = dir.path().join("p.json");
    std::fs::write(&proof_path, &proof.stdout).unwrap();
    let verify = |leaf: &str, root: &str| {
        clyra()
            .args(["merkle", "verify", "inclusion", "--proof"])
            .arg(&proof_path)
            .args(["--leaf", leaf, "--root", root])
            .assert()
    };
    verify("2021", root)
        .success()
        .stdout(predicate::str::contains(
            "valid: leaf 2 is in the tree of size 5",
        ));
    verify("2022", root)
        .code(2)
        .stdout(predicate::str::contains("invalid"));
    let wrong_root = "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77";
    verify("2021", wrong_root).code(2);
    // A malformed argument is a usage error (exit 1), never "verification failed" (exit 2).
    verify("2021", "not-hex")
        .code(1)
        .stderr(predicate::str::contains("--root"));

    let old_root = String::from_utf8(
        clyra()
            .args(["merkle", "root"])
            .write_stdin("00\n10\n2021\n")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let old_root = old_root.trim();
    let cons = clyra()
        .args(["merkle", "prove", "consistency", "--old-size", "3"])
        .arg(&leaves)
        .output()
        .unwrap();
    assert!(cons.status.success());
    let cons_path = dir.path().join("c.json");
    std::fs::write(&cons_path, &cons.stdout).unwrap();
    let consistency = |old: &str, new: &str| {
        clyra()
            .args(["merkle", "verify", "consistency", "--proof"])
            .arg(&cons_path)
            .args(["--old-root", old, "--new-root", new])
            .assert()
    };
    consistency(old_root, root).success();
    consistency(root, root).code(2);
    consistency(old_root, wrong_root).code(2);
    // An inclusion proof is not a consistency proof.
    clyra()
        .args(["merkle", "verify", "consistency", "--proof"])
        .arg(&proof_path)
        .args(["--old-root", wrong_root, "--new-root", root])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a consistency proof"));
}

fn generate(dir: &Path, alg: &str, name: &str) {
    clyra()
        .args(["keys", "generate", "--alg", alg, "--name", name, "--out"])
        .arg(dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("key id"));
}

#[cfg(unix)]
#[test]
fn keys_generate_writes_0600_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "ed25519", "a");
    let mode = std::fs::metadata(dir.path().join("a.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let before = std::fs::read(dir.path().join("a.key")).unwrap();
    clyra()
        .args(["keys", "generate", "--name", "a", "--out"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("refus"));
    assert_eq!(
        std::fs::read(dir.path().join("a.key")).unwrap(),
        before,
        "key was overwritten"
    );
    // A private key others can read is refused.
    std::fs::set_permissions(
        dir.path().join("a.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    clyra()
        .args(["keys", "show"])
        .arg(dir.path().join("a.key"))
        .assert()
        .code(1);
}

#[test]
fn keys_show_gives_the_same_id_for_private_and_public_halves() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "ecdsa-sha2-256-nistp256", "p");
    let id = |f: &str| {
        let out = clyra()
            .args(["--format", "json", "keys", "show"])
            .arg(dir.path().join(f))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_of(&out.stdout)["keyid"].as_str().unwrap().to_owned()
    };
    let a = id("p.key");
    assert_eq!(a, id("p.pub"));
    assert_eq!(a.len(), 64);
}

/// Generates a key, trusts it, signs a statement about `model.sql`, returns the directory.
fn signed_setup(trust_window: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "ed25519", "k");
    clyra()
        .current_dir(d)
        .args(["keys", "trust", "add", "--trust", "trust.json"])
        .args(trust_window)
        .arg("k.pub")
        .assert()
        .success();
    std::fs::write(d.join("model.sql"), "select 1").unwrap();
    std::fs::write(
        d.join("predicate.json"),
        r#"{"run": {"id": "r1", "rows": 3}}"#,
    )
    .unwrap();
    clyra()
        .current_dir(d)
        .args([
            "sign",
            "--key",
            "k.key",
            "--predicate-type",
            "https://example.com/run/v1",
        ])
        .args([
            "--subject",
            "model.sql",
            "--out",
            "run.dsse.json",
            "predicate.json",
        ])
        .assert()
        .success();
    dir
}

fn verify_json(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let out = clyra()
        .current_dir(dir)
        .args([
            "--format",
            "json",
            "verify-envelope",
            "run.dsse.json",
            "--trust",
            "trust.json",
        ])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code().unwrap(), json_of(&out.stdout))
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sign_then_verify_envelope() {
    let dir = signed_setup(&[]);
    let (code, report) = verify_json(dir.path(), &["--subject", "model.sql"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["verdict"], "valid");
    assert_eq!(report["predicate_type"], "https://example.com/run/v1");
    // The subject changed after signing.
    std::fs::write(dir.path().join("model.sql"), "select 2").unwrap();
    let (code, report) = verify_json(dir.path(), &["--subject", "model.sql"]);
    assert_eq!(code, 2);
    assert_eq!(codes(&report), ["E_SUBJECT_MISMATCH"]);
    // A threshold of two distinct keys is not met by one.
    let (code, report) = verify_json(dir.path(), &["--threshold", "2"]);
    assert_eq!(code, 2);
    assert_eq!(codes(&report), ["E_THRESHOLD"]);
}

#[test]
fn tampered_envelopes_fail_with_stable_codes() {
    let dir = signed_setup(&[]);
    let path = dir.path().join("run.dsse.json");
    let original: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();

    // Payload swapped for another statement (signature no longer matches).
    let mut env = original.clone();
    let other = r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"x","subject":[{"digest":{"sha256":"00"},"name":"a"}]}"#;
    use base64::Engine as _;
    env["payload"] = Value::String(base64::engine::general_purpose::STANDARD.encode(other));
    std::fs::write(&path, env.to_string()).unwrap();
    let (code, report) = verify_json(dir.path(), &[]);
    assert_eq!((code, codes(&report)), (2, vec!["E_SIGNATURE".to_owned()]));

    // payloadType swapped: the PAE changes, so the signature fails first.
    let mut env = original.clone();
    env["payloadType"] = Value::String("application/json".into());
    std::fs::write(&path, env.to_string()).unwrap();
    let (code, report) = verify_json(dir.path(), &[]);
    assert_eq!((code, codes(&report)), (2, vec!["E_SIGNATURE".to_owned()]));

    // Not JSON at all is still a verification failure (exit 2), not a tool error.
    std::fs::write(&path, "{\"payload\": ").unwrap();
    let (code, report) = verify_json(dir.path(), &[]);
    assert_eq!((code, codes(&report)), (2, vec!["E_JSON".to_owned()]));
}

#[test]
fn untrusted_and_expired_keys_are_distinguished() {
    // Trusted only in a window that ended in 2025.
    let dir = signed_setup(&[
        "--not-before",
        "2024-01-01T00:00:00Z",
        "--not-after",
        "2025-01-01T00:00:00Z",
    ]);
    let (code, report) = verify_json(dir.path(), &[]);
    assert_eq!(
        (code, codes(&report)),
        (2, vec!["E_KEY_EXPIRED".to_owned()])
    );
    // Inside the window it verifies.
    let (code, _) = verify_json(dir.path(), &["--at", "2024-06-01T00:00:00Z"]);
    assert_eq!(code, 0);

    // A trust file holding another key.
    let other = tempfile::tempdir().unwrap();
    generate(other.path(), "ed25519", "o");
    std::fs::remove_file(dir.path().join("trust.json")).unwrap();
    clyra()
        .current_dir(dir.path())
        .args(["keys", "trust", "add", "--trust", "trust.json"])
        .arg(other.path().join("o.pub"))
        .assert()
        .success();
    let (code, report) = verify_json(dir.path(), &[]);
    assert_eq!(
        (code, codes(&report)),
        (2, vec!["E_KEY_NOT_TRUSTED".to_owned()])
    );
}

#[test]
fn unreadable_trust_file_is_exit_1() {
    let dir = signed_setup(&[]);
    std::fs::write(
        dir.path().join("trust.json"),
        "{\"version\": 1, \"keys\": [}",
    )
    .unwrap();
    clyra()
        .current_dir(dir.path())
        .args(["verify-envelope", "run.dsse.json", "--trust", "trust.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("trust file"));
}

#[test]
fn trust_add_refuses_a_duplicate_key() {
    let dir = signed_setup(&[]);
    clyra()
        .current_dir(dir.path())
        .args(["keys", "trust", "add", "--trust", "trust.json", "k.pub"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already in the trust store"));
}

#[test]
fn demo_builds_and_verifies_def_and_pef_bundles_and_can_be_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("demo");
    let out = clyra()
        .args(["--format", "json", "demo", "--dir"])
        .arg(&ws)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out.stdout);
    assert_eq!(v["journal"]["entries"], 10);
    let bundles = v["bundles"].as_array().unwrap();
    assert_eq!(bundles.len(), 2);
    assert_eq!(bundles[0]["format"], "clyra-def");
    assert_eq!(bundles[1]["format"], "clyra-pef");
    // Each bundle is one whole run of the journal: its run chain from run_seq 0.
    assert_eq!(bundles[0]["entries"], 6);
    assert_eq!(bundles[1]["entries"], 4);
    assert_eq!(bundles[1]["first_seq"], 0);
    assert!(v["journal"]["checkpoint"]
        .as_str()
        .unwrap()
        .starts_with("clyra-demo/journal/acme\n10\n"));
    // The journal the demo left behind verifies, checkpoint signature included.
    clyra()
        .args(["journal", "verify", "--store"])
        .arg(format!("sqlite:{}", ws.join("journal").display()))
        .arg("--trust")
        .arg(ws.join("trust.json"))
        .assert()
        .success();
    for b in bundles {
        assert_eq!(b["verdict"], "valid");
        // The printed command verifies again, from the files alone.
        let path = b["path"].as_str().unwrap();
        let out = clyra()
            .args(["--format", "json", "verify", path, "--trust"])
            .arg(ws.join("trust.json"))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(json_of(&out.stdout)["verdict"], "valid");
    }
    // One flipped byte anywhere in a bundle: exit 2 with a finding.
    let def = ws.join("bundles/run.def.zip");
    let mut bytes = std::fs::read(&def).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x20;
    std::fs::write(&def, &bytes).unwrap();
    clyra()
        .args(["verify"])
        .arg(&def)
        .arg("--trust")
        .arg(ws.join("trust.json"))
        .assert()
        .code(2)
        .stdout(predicate::str::contains("INVALID"));
    // Re-running replaces the demo; a foreign directory is never touched.
    clyra().args(["demo", "--dir"]).arg(&ws).assert().success();
    let foreign = dir.path().join("mine");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("precious.txt"), "x").unwrap();
    clyra()
        .args(["demo", "--dir"])
        .arg(&foreign)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not made by"));
    assert!(foreign.join("precious.txt").exists());
}

#[test]
fn bundle_build_verify_inspect_from_raw_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "ed25519", "k");
    clyra()
        .current_dir(d)
        .args(["keys", "trust", "add", "--trust", "trust.json", "k.pub"])
        .assert()
        .success();
    std::fs::write(
        d.join("events.ndjson"),
        concat!(
            r#"{"ts":"2026-11-24T09:00:00Z","kind":"dbt.run.started","run_id":"r1"}"#,
            "\n",
            r#"{"ts":"2026-11-24T09:00:01Z","kind":"warehouse.anchor","run_id":"r1","anchor":{"platform":"postgres","kind":"wal_lsn","value":"0/16B3748"}}"#,
            "\n",
            r#"{"ts":"2026-11-24T09:00:09Z","kind":"dbt.run.finished","run_id":"r1","status":"success"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::create_dir(d.join("target")).unwrap();
    std::fs::write(d.join("target/run_results.json"), r#"{"results": []}"#).unwrap();
    std::fs::write(d.join("export.csv"), "id,amount\n1,250.00\n").unwrap();
    let build = |out: &str| {
        let mut c = clyra();
        c.current_dir(d)
            .env("SOURCE_DATE_EPOCH", "1795000000")
            .args([
                "bundle",
                "build",
                "--kind",
                "def",
                "--journal",
                "events.ndjson",
                "--artifacts",
                "target",
            ])
            .args([
                "--external",
                "export.csv=s3://acme-evidence/export.csv",
                "--key",
                "k.key",
            ])
            .args(["--tenant", "acme", "--environment", "prod", "--out", out]);
        c
    };
    build("a.zip")
        .assert()
        .success()
        .stdout(predicate::str::contains("3 entries"));
    // Reproducible: the same inputs under SOURCE_DATE_EPOCH give the same bytes.
    build("b.zip").assert().success();
    assert_eq!(
        std::fs::read(d.join("a.zip")).unwrap(),
        std::fs::read(d.join("b.zip")).unwrap()
    );
    // Never over an existing file.
    build("a.zip")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("refusing to overwrite"));

    // Without the external artifact's bytes: valid, with the warning shown.
    let out = clyra()
        .current_dir(d)
        .args([
            "--format",
            "json",
            "verify",
            "a.zip",
            "--trust",
            "trust.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report = json_of(&out.stdout);
    assert_eq!(codes(&report), ["W_ARTIFACT_NOT_CHECKED"]);
    // With them: clean. With other bytes: E_ARTIFACT_MISMATCH.
    std::fs::create_dir(d.join("ext")).unwrap();
    std::fs::copy(d.join("export.csv"), d.join("ext/export.csv")).unwrap();
    let (code, report) = {
        let out = clyra()
            .current_dir(d)
            .args([
                "--format",
                "json",
                "verify",
                "a.zip",
                "--trust",
                "trust.json",
                "--artifacts",
                "ext",
            ])
            .output()
            .unwrap();
        (out.status.code().unwrap(), json_of(&out.stdout))
    };
    assert_eq!((code, codes(&report).len()), (0, 0), "{report}");
    std::fs::write(d.join("ext/export.csv"), "id,amount\n1,2500.00\n").unwrap();
    clyra()
        .current_dir(d)
        .args([
            "verify",
            "a.zip",
            "--trust",
            "trust.json",
            "--artifacts",
            "ext",
        ])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("E_ARTIFACT_MISMATCH"));
    // Problems outside the bundle are exit 1.
    clyra()
        .current_dir(d)
        .args(["verify", "missing.zip", "--trust", "trust.json"])
        .assert()
        .code(1);
    clyra()
        .current_dir(d)
        .args(["bundle", "inspect", "a.zip"])
        .assert()
        .success()
        .stdout(predicate::str::contains("postgres wal_lsn 0/16B3748"))
        .stdout(predicate::str::contains("artifacts/run_results.json"));
    // Garbage is a bundle that does not verify (2), not a tool error.
    std::fs::write(d.join("junk.zip"), "not a zip at all").unwrap();
    clyra()
        .current_dir(d)
        .args(["verify", "junk.zip", "--trust", "trust.json"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("E_ARCHIVE"));
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        vec!["canon"],
        vec!["merkle", "root"],
        vec!["merkle", "prove", "inclusion"],
        vec!["merkle", "prove", "consistency"],
        vec!["merkle", "verify", "inclusion"],
        vec!["merkle", "verify", "consistency"],
        vec!["keys", "generate"],
        vec!["keys", "show"],
        vec!["keys", "trust", "add"],
        vec!["sign"],
        vec!["verify-envelope"],
        vec!["demo"],
        vec!["bundle", "build"],
        vec!["bundle", "inspect"],
        vec!["verify"],
    ] {
        clyra()
            .args(&cmd)
            .arg("--help")
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
}
