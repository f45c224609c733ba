//! Harness for the transparency-dev/merkle proof vectors in `tests/vectors/rfc6962/`.
//!
//! Each vector file is one probe. `wantErr: false` must verify, `wantErr: true` must be rejected by
//! the verifier. Happy paths over the RFC 6962 reference leaves must also be *generated* exactly:
//! our `inclusion_proof`/`consistency_proof` must emit the same hashes as upstream's `proofgen`.
//!
//! Some probes carry values that are not 32-byte digests: placeholders (`"don't care 1"`),
//! `"WrongLeaf"`, empty strings, or empty "garbage" proof entries. A `Digest` is always 32 bytes, so
//! the harness decodes them the way upstream's verifier treats them:
//!
//! - The leaf hash must be a 32-byte digest (upstream checks its size and rejects the probe), so a
//!   leaf hash that `Digest::from_base64` refuses counts as rejected, at decoding.
//! - Roots and proof entries are opaque bytes upstream (compared or hashed, never size-checked), and
//!   one probe needs that: two equal placeholder roots of equal-sized trees must verify. So such a
//!   value is mapped to a stand-in digest, SHA-256 over a tag and its bytes: distinct values stay
//!   distinct, equal values stay equal, none equals a real tree hash, and our verifier decides.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clyra_evidence::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
    ConsistencyProof, InclusionProof,
};
use clyra_evidence::Digest;

/// Number of vector files vendored; a guard against files silently going missing.
pub const EXPECTED_VECTOR_FILES: usize = 196;

/// The RFC 6962 reference leaves (entry bytes) the vector trees are built from.
pub const REFERENCE_LEAVES_HEX: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Leaf hashes of [`REFERENCE_LEAVES_HEX`].
pub fn reference_leaf_hashes() -> Vec<Digest> {
    REFERENCE_LEAVES_HEX
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).unwrap()))
        .collect()
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionProbe {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsistencyProbe {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

/// Decodes a base64 value; see the module docs for values that are not 32-byte digests.
fn digest(b64: &str, stand_ins: &mut Vec<String>) -> Digest {
    match Digest::from_base64(b64) {
        Ok(d) => d,
        Err(_) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_else(|e| panic!("vector value `{b64}` is not base64: {e}"));
            stand_ins.push(format!("{:?}", String::from_utf8_lossy(&bytes)));
            Digest::sha256_parts(&[b"clyra test stand-in for a non-digest value\0", &bytes])
        }
    }
}

fn digests(b64s: &Option<Vec<String>>, stand_ins: &mut Vec<String>) -> Vec<Digest> {
    b64s.iter()
        .flatten()
        .map(|s| digest(s, stand_ins))
        .collect()
}

/// Runs the probe in `json`, read from `path` (relative to `tests/vectors/rfc6962/`).
pub fn run(path: &str, json: &str) {
    if path.starts_with("inclusion/") {
        run_inclusion(path, serde_json::from_str(json).unwrap());
    } else if path.starts_with("consistency/") {
        run_consistency(path, serde_json::from_str(json).unwrap());
    } else {
        panic!("{path}: not under inclusion/ or consistency/");
    }
}

fn run_inclusion(path: &str, probe: InclusionProbe) {
    let mut stand_ins = Vec::new();
    let proof = InclusionProof {
        leaf_index: probe.leaf_idx,
        tree_size: probe.tree_size,
        hashes: digests(&probe.proof, &mut stand_ins),
    };
    let root_hash = digest(&probe.root, &mut stand_ins);
    let context = format!(
        "{path} ({}): wantErr {}, stand-ins {stand_ins:?}",
        probe.desc, probe.want_err
    );
    let leaf = match Digest::from_base64(&probe.leaf_hash) {
        Ok(leaf) => leaf,
        Err(e) => {
            assert!(
                probe.want_err,
                "{context}: leaf hash rejected at decoding: {e}"
            );
            return;
        }
    };
    let got = verify_inclusion(&leaf, &proof, &root_hash);
    if probe.want_err {
        assert!(got.is_err(), "{context}: verified, expected an error");
        return;
    }
    assert_eq!(got, Ok(()), "{context}");
    // Happy path over the reference tree: our generator must produce the same proof.
    let reference = reference_leaf_hashes();
    let size = usize::try_from(probe.tree_size).unwrap();
    if size <= reference.len() && root(&reference[..size]) == root_hash {
        let generated = inclusion_proof(&reference[..size], probe.leaf_idx).unwrap();
        assert_eq!(generated, proof, "{context}: generated proof differs");
        assert_eq!(reference[usize::try_from(probe.leaf_idx).unwrap()], leaf);
    }
}

fn run_consistency(path: &str, probe: ConsistencyProbe) {
    let mut stand_ins = Vec::new();
    let proof = ConsistencyProof {
        old_size: probe.size1,
        new_size: probe.size2,
        hashes: digests(&probe.proof, &mut stand_ins),
    };
    let old_root = digest(&probe.root1, &mut stand_ins);
    let new_root = digest(&probe.root2, &mut stand_ins);
    let got = verify_consistency(&proof, &old_root, &new_root);
    let context = format!(
        "{path} ({}): wantErr {}, stand-ins {stand_ins:?}",
        probe.desc, probe.want_err
    );
    if probe.want_err {
        assert!(got.is_err(), "{context}: verified, expected an error");
        return;
    }
    assert_eq!(got, Ok(()), "{context}");
    let reference = reference_leaf_hashes();
    let (old, new) = (
        usize::try_from(probe.size1).unwrap(),
        usize::try_from(probe.size2).unwrap(),
    );
    if new <= reference.len()
        && root(&reference[..old]) == old_root
        && root(&reference[..new]) == new_root
    {
        let generated = consistency_proof(&reference[..new], probe.size1).unwrap();
        assert_eq!(generated, proof, "{context}: generated proof differs");
    }
}

/// Every `.json` file under `tests/vectors/rfc6962/`, relative to it, with `/` separators.
pub fn vector_files_on_disk() -> BTreeSet<String> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/rfc6962");
    let mut found = BTreeSet::new();
    let mut dirs: Vec<PathBuf> = vec![base.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let relative = path.strip_prefix(&base).unwrap();
                let parts: Vec<_> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.insert(parts.join("/"));
            }
        }
    }
    found
}
