//! Entry points for the fuzz targets in `fuzz/`: each takes untrusted bytes, must never panic, and
//! asserts the invariants that hold whenever the input is accepted. Not a stable API.

use crate::jcs;

/// Canonicalizer: accepted input canonicalizes to bytes that are canonical, re-parse to the same
/// value and canonicalize to themselves.
pub fn jcs(data: &[u8]) {
    let Ok(value) = jcs::parse_strict(data) else {
        return;
    };
    let Ok(canonical) = jcs::canonicalize_value(&value) else {
        // The parser only produces values the writer accepts.
        #[allow(clippy::panic)]
        {
            panic!("parsed value does not canonicalize");
        }
    };
    let reparsed = jcs::parse_strict(&canonical);
    #[allow(clippy::panic)]
    if reparsed.as_ref() != Ok(&value) {
        panic!("canonical bytes do not re-parse to the same value");
    }
    #[allow(clippy::panic)]
    if jcs::canonicalize(&canonical).as_deref() != Ok(&canonical[..]) {
        panic!("canonicalization is not idempotent");
    }
}

/// DSSE decoding and verification: arbitrary bytes as an envelope, checked against a fixed trust
/// store. Must never panic and never accept (nothing the fuzzer makes is signed by that key).
pub fn dsse(data: &[u8]) {
    use crate::dsse::{self, Envelope};
    let Ok(envelope) = Envelope::from_json(data) else {
        return;
    };
    // Re-encoding what was accepted must parse back to the same envelope.
    #[allow(clippy::panic)]
    if Envelope::from_json(envelope.to_json().as_bytes())
        .ok()
        .as_ref()
        != Some(&envelope)
    {
        panic!("envelope does not round-trip through to_json");
    }
    let _ = dsse::pae(&envelope.payload_type, &envelope.payload);
    let Some(trust) = fuzz_trust() else {
        return;
    };
    let at = jiff::Timestamp::UNIX_EPOCH;
    #[allow(clippy::panic)]
    if dsse::verify(&envelope, trust, at, 1, crate::intoto::PAYLOAD_TYPE).is_ok() {
        panic!("a fuzzed envelope verified");
    }
}

fn fuzz_trust() -> Option<&'static crate::trust::TrustStore> {
    use std::sync::OnceLock;
    static TRUST: OnceLock<Option<crate::trust::TrustStore>> = OnceLock::new();
    TRUST
        .get_or_init(|| {
            // RFC 8032 test 1 public key, SPKI-wrapped; its private key signs nothing here.
            let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n";
            let key = crate::keys::PublicKey::from_pem(pem).ok()?;
            let mut store = crate::trust::TrustStore::new();
            store.add(key, jiff::Timestamp::MIN, None, None).ok()?;
            Some(store)
        })
        .as_ref()
}

/// Merkle proof verification: arbitrary bytes as a JSON proof document with roots. Must never
/// panic; an accepted inclusion proof must agree with a tree rebuilt from the claimed leaf.
pub fn merkle(data: &[u8]) {
    use crate::merkle::{self, ConsistencyProof, InclusionProof};
    #[derive(serde::Deserialize)]
    struct Inc {
        proof: InclusionProof,
        leaf_hash: crate::Digest,
        root: crate::Digest,
    }
    #[derive(serde::Deserialize)]
    struct Con {
        proof: ConsistencyProof,
        old_root: crate::Digest,
        new_root: crate::Digest,
    }
    let Ok(value) = jcs::parse_strict(data) else {
        return;
    };
    if let Ok(inc) = serde_json::from_value::<Inc>(value.clone()) {
        let _ = merkle::verify_inclusion(&inc.leaf_hash, &inc.proof, &inc.root);
    }
    if let Ok(con) = serde_json::from_value::<Con>(value) {
        let _ = merkle::verify_consistency(&con.proof, &con.old_root, &con.new_root);
    }
    // Small trees built from the input bytes: every generated proof must verify.
    let leaves: Vec<crate::Digest> = data
        .iter()
        .take(64)
        .map(|b| merkle::leaf_hash(&[*b]))
        .collect();
    if leaves.is_empty() {
        return;
    }
    let root = merkle::root(&leaves);
    let idx = u64::from(data[0]) % leaves.len() as u64;
    #[allow(clippy::panic)]
    match merkle::inclusion_proof(&leaves, idx) {
        Ok(p) if merkle::verify_inclusion(&leaves[idx as usize], &p, &root).is_ok() => {}
        _ => panic!("generated inclusion proof does not verify"),
    }
}

/// Journal entries: arbitrary bytes as NDJSON, each line strictly parsed and linked. Must never
/// panic.
pub fn chain(data: &[u8]) {
    use crate::chain::{link_from_entry, ChainVerifier};
    let mut verifier = ChainVerifier::new(None, None);
    for line in data.split(|b| *b == b'\n') {
        let Ok(value) = jcs::parse_strict(line) else {
            return;
        };
        let Ok(link) = link_from_entry(&value, line) else {
            return;
        };
        if verifier.push(link).is_err() {
            return;
        }
    }
    let _ = verifier.finish(None, None);
}

/// Bundle verification: arbitrary bytes as a bundle file, verified against a fixed trust store
/// whose key signs nothing. Must never panic and never return `valid`.
pub fn bundle(data: &[u8]) {
    use crate::bundle::{verify_zip_bytes, Limits, VerifyOptions};
    let Some(trust) = fuzz_trust() else {
        return;
    };
    let mut options = VerifyOptions::new(trust, jiff::Timestamp::UNIX_EPOCH);
    // Small limits keep each run fast; the limit checks themselves are what is exercised.
    options.limits = Limits {
        max_entries: 64,
        max_entry_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
        max_document_bytes: 1 << 20,
        max_line_bytes: 1 << 16,
    };
    let report = verify_zip_bytes(data, &options);
    #[allow(clippy::panic)]
    if report.is_valid() {
        panic!("a fuzzed bundle verified");
    }
}

/// Signed notes and checkpoints: arbitrary bytes as a note. Must never panic; an accepted note
/// must re-parse to itself, its body end with a newline, and it must never verify under the fixed
/// key (which signs nothing); an accepted checkpoint body must re-encode to the same bytes.
pub fn note(data: &[u8]) {
    use crate::note::{Checkpoint, SignedNote};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cp) = Checkpoint::parse_body(text) {
        #[allow(clippy::panic)]
        if cp.to_body() != text {
            panic!("an accepted checkpoint body does not re-encode to itself");
        }
        let _ = (cp.time(), cp.head(), cp.clyra_extensions());
    }
    let Ok(note) = SignedNote::parse(text) else {
        return;
    };
    #[allow(clippy::panic)]
    if SignedNote::parse(note.as_str()).as_ref() != Ok(&note) || !note.body().ends_with('\n') {
        panic!("an accepted note does not re-parse to itself");
    }
    let Some(trust) = fuzz_trust() else {
        return;
    };
    let keys: Vec<&crate::keys::PublicKey> = trust.keys().map(|k| k.public_key()).collect();
    #[allow(clippy::panic)]
    if note.verified_by_any_name(&keys).is_ok() {
        panic!("a fuzzed note verified");
    }
}
