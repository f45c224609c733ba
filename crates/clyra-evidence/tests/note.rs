#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Signed notes and checkpoints (`clyra_evidence::note`).
//!
//! The PeterNeumann vector is vendored from the Go reference implementation,
//! golang.org/x/mod/sumdb/note, `note_test.go` (TestSign, TestOpen): Copyright 2019 The Go
//! Authors, BSD-style license. Ed25519 is deterministic (RFC 8032), so signing its text with its
//! key must reproduce the published note byte for byte.

use base64::Engine as _;
use clyra_evidence::keys::{Algorithm, PrivateKey, PublicKey, Signer};
use clyra_evidence::note::{self, Checkpoint, NoteError, SignedNote, MAX_SIGNATURES};
use clyra_evidence::Digest;
use proptest::prelude::*;

const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const GO_SIG_LINE: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
/// `PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW`: type byte 0x01, then the key.
const GO_VKEY_B64: &str = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
/// `PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz`: 0x01, seed.
const GO_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
/// The second signer of TestOpen.
const ENOCH_SIG_LINE: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn peter_public() -> PublicKey {
    let raw = b64(GO_VKEY_B64);
    assert_eq!(raw[0], 0x01);
    let mut der = hex::decode("302a300506032b6570032100").unwrap();
    der.extend_from_slice(&raw[1..]);
    PublicKey::from_spki_der(&der).unwrap()
}

fn peter_private() -> PrivateKey {
    let raw = b64(GO_SKEY_B64);
    assert_eq!(raw[0], 0x01);
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&raw[1..]);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    PrivateKey::from_pkcs8_pem(&pem).unwrap()
}

fn go_note() -> String {
    format!("{GO_TEXT}\n{GO_SIG_LINE}")
}

#[test]
fn go_vector_key_id_signature_and_verification() {
    let public = peter_public();
    assert_eq!(
        note::ed25519_key_id("PeterNeumann", &public).unwrap(),
        [0xc7, 0x4f, 0x20, 0xa3]
    );
    let private = peter_private();
    assert_eq!(private.public_key(), &public);
    assert_eq!(
        note::sign(GO_TEXT, "PeterNeumann", &private).unwrap(),
        go_note()
    );

    let parsed = SignedNote::parse(&go_note()).unwrap();
    assert_eq!(parsed.body(), GO_TEXT);
    assert_eq!(parsed.signatures().len(), 1);
    let sig = &parsed.signatures()[0];
    assert_eq!(sig.name(), "PeterNeumann");
    assert_eq!(sig.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
    assert_eq!(sig.signature().len(), 64);
    assert_eq!(sig.line(), 4);
    assert_eq!(
        parsed.verified_by(&[("PeterNeumann", &public)]).unwrap(),
        [0]
    );
    assert_eq!(parsed.verified_by_any_name(&[&public]).unwrap(), [0]);

    // TestOpen: a second, unknown signer is ignored.
    let two = SignedNote::parse(&format!("{GO_TEXT}\n{GO_SIG_LINE}{ENOCH_SIG_LINE}")).unwrap();
    assert_eq!(two.verified_by(&[("PeterNeumann", &public)]).unwrap(), [0]);
    assert_eq!(
        two.verified_by(&[]).unwrap_err(),
        NoteError::NoTrustedSignature
    );
}

#[test]
fn go_vector_malformed_messages() {
    // TestOpen's "invalid encoded message syntax" table.
    let sig = GO_SIG_LINE;
    let bad = [
        GO_TEXT.to_owned(),
        format!("{GO_TEXT}\n"),
        format!("{GO_TEXT}\n{}", &sig[..sig.len() - 1]),
        format!("\x01{GO_TEXT}\n{sig}"),
        format!("{GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
        format!("{GO_TEXT}\n{sig}Unexpected line.\n"),
        format!("{GO_TEXT}\n{}", sig.repeat(MAX_SIGNATURES + 1)),
    ];
    for text in bad {
        assert!(SignedNote::parse(&text).is_err(), "{text:?}");
    }
    assert!(SignedNote::parse(&format!("{GO_TEXT}\n{}", sig.repeat(MAX_SIGNATURES))).is_ok());
}

#[test]
fn go_vector_invalid_signature_fails_closed() {
    // TestOpen: "ABCD" spliced into the signature of the one trusted key.
    let sig = GO_SIG_LINE;
    let text = format!("{GO_TEXT}\n{}ABCD{}", &sig[..60], &sig[60..]);
    let parsed = SignedNote::parse(&text).unwrap();
    let err = parsed
        .verified_by(&[("PeterNeumann", &peter_public())])
        .unwrap_err();
    assert!(
        matches!(err, NoteError::InvalidSignature { line: 4, ref name, .. } if name == "PeterNeumann"),
        "{err}"
    );
    // A bad line from a trusted key fails the note even when another line verifies.
    let text = format!("{GO_TEXT}\n{sig}{}ABCD{}", &sig[..60], &sig[60..]);
    let parsed = SignedNote::parse(&text).unwrap();
    assert!(matches!(
        parsed.verified_by(&[("PeterNeumann", &peter_public())]),
        Err(NoteError::InvalidSignature { line: 5, .. })
    ));
}

fn fresh() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

#[test]
fn round_trip_and_tampering() {
    let key = fresh();
    let other = fresh();
    let body = "line one\n\nline three after an empty line\n";
    let text = note::sign(body, "clyra.example/log", &key).unwrap();
    let parsed = SignedNote::parse(&text).unwrap();
    assert_eq!(parsed.body(), body);
    assert_eq!(parsed.as_str(), text);
    let trusted = [("clyra.example/log", key.public_key())];
    assert_eq!(parsed.verified_by(&trusted).unwrap(), [0]);

    // Wrong name: the line is from an unknown key, so nothing verifies.
    assert_eq!(
        parsed
            .verified_by(&[("clyra.example/other", key.public_key())])
            .unwrap_err(),
        NoteError::NoTrustedSignature
    );
    // Another key under the same name: its key ID differs, so the line is ignored.
    assert_eq!(
        parsed
            .verified_by(&[("clyra.example/log", other.public_key())])
            .unwrap_err(),
        NoteError::NoTrustedSignature
    );
    // Several trusted keys: the indices of those that signed.
    assert_eq!(
        parsed
            .verified_by(&[
                ("clyra.example/log", other.public_key()),
                ("clyra.example/log", key.public_key())
            ])
            .unwrap(),
        [1]
    );

    // A flipped body byte: the known key's line no longer verifies.
    let tampered = text.replacen("one", "One", 1);
    assert!(matches!(
        SignedNote::parse(&tampered).unwrap().verified_by(&trusted),
        Err(NoteError::InvalidSignature { .. })
    ));

    // A flipped signature byte (the last one, so the key ID still matches).
    let sig = &parsed.signatures()[0];
    let mut blob = sig.key_id().to_vec();
    blob.extend_from_slice(sig.signature());
    let last = blob.len() - 1;
    blob[last] ^= 1;
    let forged = format!(
        "{body}\n— clyra.example/log {}\n",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    assert!(matches!(
        SignedNote::parse(&forged).unwrap().verified_by(&trusted),
        Err(NoteError::InvalidSignature { .. })
    ));

    // A flipped key ID byte: the line names an unknown key and is ignored.
    blob[last] ^= 1;
    blob[0] ^= 1;
    let forged = format!(
        "{body}\n— clyra.example/log {}\n",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    assert_eq!(
        SignedNote::parse(&forged)
            .unwrap()
            .verified_by(&trusted)
            .unwrap_err(),
        NoteError::NoTrustedSignature
    );
}

#[test]
fn only_ed25519_signs() {
    let p256 = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    assert!(matches!(
        note::sign("a\n", "n", &p256),
        Err(NoteError::NotEd25519 { .. })
    ));
    assert!(matches!(
        note::ed25519_key_id("n", p256.public_key()),
        Err(NoteError::NotEd25519 { .. })
    ));
    // Non-Ed25519 trusted keys are skipped, not an error.
    let key = fresh();
    let parsed = SignedNote::parse(&note::sign("a\n", "n", &key).unwrap()).unwrap();
    assert_eq!(
        parsed
            .verified_by(&[("n", p256.public_key()), ("n", key.public_key())])
            .unwrap(),
        [1]
    );
}

#[test]
fn sign_refuses_bad_input() {
    let key = fresh();
    for (body, name) in [
        ("", "n"),
        ("no newline", "n"),
        ("tab\there\n", "n"),
        ("ok\n", ""),
        ("ok\n", "a b"),
        ("ok\n", "a+b"),
    ] {
        assert!(note::sign(body, name, &key).is_err(), "{body:?} {name:?}");
    }
}

#[test]
fn malformed_lines_name_the_line() {
    let key = fresh();
    let good = note::sign("a\nb\n", "n", &key).unwrap();
    let sig = good.split("\n\n").nth(1).unwrap();
    let cases: Vec<(String, usize)> = vec![
        ("a\nb\n\n-- n AAAAAAA=\n".to_owned(), 4),
        (format!("a\nb\n\n{sig}— n\n"), 5),
        (format!("a\nb\n\n{sig}— n+x AAAAAAA=\n"), 5),
        ("a\nb\n\n— n AAAA\n".to_owned(), 4),
        ("a\nb\n\n— n not base64!\n".to_owned(), 4),
        ("a\nb\n\n— n AAAAAAB=\n".to_owned(), 4), // non-zero trailing bits
        ("a\nb\n\n— n AAAAAAA\n".to_owned(), 4),  // unpadded
        ("a\nb\n\n—  n AAAAAAA=\n".to_owned(), 4),
    ];
    for (text, line) in cases {
        match SignedNote::parse(&text) {
            Err(NoteError::MalformedSignature { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(matches!(
        SignedNote::parse("a\n\x7f\r\n\n— n AAAAAAA=\n"),
        Err(NoteError::ControlCharacter {
            line: 2,
            code: 0x0d
        })
    ));
    assert_eq!(SignedNote::parse("").unwrap_err(), NoteError::Empty);
    assert_eq!(
        SignedNote::parse("a\nb\n").unwrap_err(),
        NoteError::NoSignatures
    );
}

#[test]
fn checkpoints() {
    let t: jiff::Timestamp = "2026-11-24T09:00:00Z".parse().unwrap();
    let cp = Checkpoint::clyra(
        "clyra.example/acme",
        7,
        Digest::sha256(b"r"),
        t,
        Digest::ZERO,
    );
    let body = cp.to_body();
    assert_eq!(
        body,
        format!(
            "clyra.example/acme\n7\n{}\ntime 2026-11-24T09:00:00Z\nhead {}\n",
            Digest::sha256(b"r").to_base64(),
            Digest::ZERO
        )
    );
    let parsed = Checkpoint::parse_body(&body).unwrap();
    assert_eq!(parsed, cp);
    assert_eq!(parsed.time().unwrap(), Some(t));
    assert_eq!(parsed.head().unwrap(), Some(Digest::ZERO));
    assert_eq!(parsed.clyra_extensions().unwrap(), (t, Digest::ZERO));

    // The tlog-checkpoint spec's example body.
    let plain = Checkpoint::parse_body(
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
    )
    .unwrap();
    assert_eq!(plain.size, 20_852_163);
    assert_eq!(plain.time().unwrap(), None);
    assert!(plain.clyra_extensions().is_err());

    let root = Digest::ZERO.to_base64();
    for (bad, line) in [
        (format!("o\n7\n{root}"), 3),
        ("o\n7\n".to_owned(), 2),
        (format!("\n7\n{root}\n"), 1),
        (format!("o\n07\n{root}\n"), 2),
        (format!("o\n-1\n{root}\n"), 2),
        (format!("o\n 7\n{root}\n"), 2),
        (format!("o\n7\n{}\n", Digest::ZERO.to_hex()), 3),
        (format!("o\n7\n{}\n", root.trim_end_matches('=')), 3),
        (format!("o\n7\n{root}\n\n"), 4),
        (format!("o\n7\n{root}\nx\n\ny\n"), 5),
    ] {
        match Checkpoint::parse_body(&bad) {
            Err(NoteError::Checkpoint { line: l, .. }) => assert_eq!(l, line, "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(Checkpoint::parse_body(&format!("o\n0\n{root}\n")).is_ok());
    for ext in [
        "time 2026-11-24T09:00:00+00:00",
        "head ABC",
        "head 0000000000000000000000000000000000000000000000000000000000000000 ",
    ] {
        let cp = Checkpoint::parse_body(&format!("o\n1\n{root}\n{ext}\n")).unwrap();
        assert!(cp.time().is_err() || cp.head().is_err(), "{ext}");
    }
    let twice =
        Checkpoint::parse_body(&format!("o\n1\n{root}\nhead {0}\nhead {0}\n", Digest::ZERO))
            .unwrap();
    assert!(twice.head().is_err());
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = SignedNote::parse(&text);
        let _ = Checkpoint::parse_body(&text);
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = SignedNote::parse(&lossy);
        let _ = Checkpoint::parse_body(&lossy);
    }

    #[test]
    fn parse_never_panics_near_valid(cut in 0usize..400, insert in "[\n— +=A-Za-z0-9/]{0,8}") {
        let mut text = go_note();
        let at = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(at, &insert);
        if let Ok(n) = SignedNote::parse(&text) {
            prop_assert!(n.body().ends_with('\n'));
            let _ = n.verified_by(&[("PeterNeumann", &peter_public())]);
        }
    }

    #[test]
    fn checkpoints_round_trip(origin in "[a-z./]{1,20}", size in any::<u64>(), root in any::<[u8; 32]>(),
                              exts in proptest::collection::vec("[a-z][ -~]{0,20}", 0..4)) {
        let cp = Checkpoint { origin, size, root: Digest::from_bytes(root), extensions: exts };
        prop_assert_eq!(Checkpoint::parse_body(&cp.to_body()).unwrap(), cp);
    }
}
