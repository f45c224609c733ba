#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Interop with securesystemslib 1.6.0 (Python), an independent DSSE implementation, in both
//! directions, for Ed25519 and ECDSA P-256 (plus RSA-PSS-3072 from Python to Rust).
//!
//! Runs `tests/interop/dsse_securesystemslib.py` (repository root) with the interpreter in
//! `CLYRA_INTEROP_PYTHON`, default `<repo root>/.venv/bin/python`. A missing interpreter or
//! module fails the test (it never skips): run `make venv` first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use clyra_evidence::dsse::{self, DsseError, Envelope};
use clyra_evidence::keys::{read_public_key_file, Algorithm, PrivateKey, PublicKey, Signer};
use clyra_evidence::trust::TrustStore;

const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const PAYLOAD: &[u8] = br#"{"_type":"https://in-toto.io/Statement/v1","predicate":{"rows":3},"predicateType":"https://clyra.dev/def/v1","subject":[{"digest":{"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"name":"empty.csv"}]}"#;

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
    repo_root().join("tests/interop/dsse_securesystemslib.py")
}

fn how_to_install(python: &Path, why: &str) -> String {
    format!(
        "interop python `{}` is not usable: {why}\n\
         install it from the repository root with `make venv` (creates .venv from \
         tests/interop/requirements.txt), or set CLYRA_INTEROP_PYTHON to an interpreter that \
         has securesystemslib==1.6.0 and cryptography installed",
        python.display()
    )
}

/// Fails (never skips) when the interpreter or its modules are missing.
fn ensure_python() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let py = python();
        match Command::new(&py).arg(script()).arg("check").output() {
            Err(e) => Err(how_to_install(&py, &e.to_string())),
            Ok(out) if !out.status.success() => Err(how_to_install(
                &py,
                String::from_utf8_lossy(&out.stderr).trim(),
            )),
            Ok(_) => Ok(()),
        }
    });
    if let Err(message) = ready {
        panic!("{message}");
    }
}

fn run(args: &[&str]) -> Output {
    ensure_python();
    Command::new(python())
        .arg(script())
        .args(args)
        .output()
        .unwrap()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn trust(key: &PublicKey) -> TrustStore {
    let mut t = TrustStore::new();
    t.add(
        key.clone(),
        "2020-01-01T00:00:00Z".parse().unwrap(),
        None,
        None,
    )
    .unwrap();
    t
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Writes `envelope` and `key`, runs securesystemslib's verifier, returns its output.
fn python_verify(dir: &Path, envelope: &Envelope, key: &PublicKey) -> Output {
    let env_path = dir.join("envelope.json");
    let key_path = dir.join("key.pub");
    std::fs::write(&env_path, envelope.to_json()).unwrap();
    std::fs::write(&key_path, key.to_pem()).unwrap();
    run(&[
        "verify",
        "--envelope",
        path_str(&env_path),
        "--public-key",
        path_str(&key_path),
    ])
}

fn clyra_to_securesystemslib(algorithm: Algorithm, expected_scheme: &str) {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(algorithm).unwrap();
    let envelope = dsse::sign(PAYLOAD_TYPE, PAYLOAD, &[&key as &dyn Signer]).unwrap();

    let out = python_verify(dir.path(), &envelope, key.public_key());
    assert!(
        out.status.success(),
        "securesystemslib rejected a Clyra envelope: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true);
    // Python computed the key id on its own (SHA-256 of the SPKI DER) and got ours.
    assert_eq!(report["keyid"], key.key_id().to_string());
    assert_eq!(report["scheme"], expected_scheme);
    assert_eq!(report["payload_type"], PAYLOAD_TYPE);
    assert_eq!(
        report["payload_sha256"],
        clyra_evidence::Digest::sha256(PAYLOAD).to_hex()
    );

    // The check is not vacuous: a tampered payload is rejected by securesystemslib.
    let mut tampered = envelope.clone();
    tampered.payload[2] ^= 1;
    let out = python_verify(dir.path(), &tampered, key.public_key());
    assert_eq!(out.status.code(), Some(1), "tampered envelope accepted");
}

fn securesystemslib_to_clyra(algorithm: &str, expected: Algorithm, high_s: bool) {
    let dir = tempfile::tempdir().unwrap();
    let payload_path = dir.path().join("payload.json");
    let env_path = dir.path().join("envelope.json");
    let key_path = dir.path().join("key.pub");
    std::fs::write(&payload_path, PAYLOAD).unwrap();
    let mut args = vec![
        "sign",
        "--algorithm",
        algorithm,
        "--payload-type",
        PAYLOAD_TYPE,
        "--payload-file",
        path_str(&payload_path),
        "--out-envelope",
        path_str(&env_path),
        "--out-public-key",
        path_str(&key_path),
    ];
    if high_s {
        args.push("--high-s");
    }
    let out = run(&args);
    assert!(
        out.status.success(),
        "securesystemslib failed to sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let key = read_public_key_file(&key_path).unwrap();
    assert_eq!(key.algorithm(), expected);
    let envelope = Envelope::from_json(&std::fs::read(&env_path).unwrap()).unwrap();
    // securesystemslib's keyid is its own scheme, not ours: a hint we must not rely on.
    let hint = envelope.signatures[0].keyid.clone().unwrap();
    assert_ne!(hint, key.key_id().to_string());

    if high_s {
        let sig = p256::ecdsa::Signature::from_der(&envelope.signatures[0].sig).unwrap();
        assert!(sig.normalize_s().is_some(), "expected a high-S signature");
    }

    let verified = dsse::verify(&envelope, &trust(&key), now(), 1, PAYLOAD_TYPE).unwrap();
    assert_eq!(verified.payload(), PAYLOAD);
    assert_eq!(verified.key_ids(), [key.key_id()]);

    // Not trusting the key: rejected, and the error names securesystemslib's hint.
    let other = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    assert!(matches!(
        dsse::verify(&envelope, &trust(other.public_key()), now(), 1, PAYLOAD_TYPE),
        Err(DsseError::KeyNotTrusted { keyid }) if keyid == hint
    ));
}

#[test]
fn clyra_ed25519_verified_by_securesystemslib() {
    clyra_to_securesystemslib(Algorithm::Ed25519, "ed25519");
}

#[test]
fn clyra_ecdsa_p256_verified_by_securesystemslib() {
    clyra_to_securesystemslib(Algorithm::EcdsaP256Sha256, "ecdsa-sha2-nistp256");
}

#[test]
fn clyra_ecdsa_both_s_forms_verified_by_securesystemslib() {
    // OpenSSL accepts high-S as well as low-S, the policy Clyra's verifiers follow.
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let mut envelope = dsse::sign(PAYLOAD_TYPE, PAYLOAD, &[&key as &dyn Signer]).unwrap();
    let sig = p256::ecdsa::Signature::from_der(&envelope.signatures[0].sig).unwrap();
    let (r, s) = sig.split_scalars();
    let twin = p256::ecdsa::Signature::from_scalars(p256::FieldBytes::from(*r), -*s).unwrap();
    envelope.signatures[0].sig = twin.to_der().as_bytes().to_vec();
    let out = python_verify(dir.path(), &envelope, key.public_key());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dsse::verify(&envelope, &trust(key.public_key()), now(), 1, PAYLOAD_TYPE).unwrap();
}

#[test]
fn securesystemslib_ed25519_verified_by_clyra() {
    securesystemslib_to_clyra("ed25519", Algorithm::Ed25519, false);
}

#[test]
fn securesystemslib_ecdsa_p256_high_s_verified_by_clyra() {
    securesystemslib_to_clyra("ecdsa", Algorithm::EcdsaP256Sha256, true);
}

#[test]
fn securesystemslib_rsa_pss_3072_verified_by_clyra() {
    securesystemslib_to_clyra("rsa", Algorithm::RsaPss3072Sha256, false);
}
