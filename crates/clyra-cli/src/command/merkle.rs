//! `clyra merkle`: RFC 9162 Merkle roots and proofs from a list of leaves.

use std::path::Path;

use anyhow::{bail, Context as _};
use clyra_evidence::merkle::{self, ConsistencyProof, InclusionProof};
use clyra_evidence::Digest;
use serde::{Deserialize, Serialize};

use crate::cli::{MerkleCommand, ProveCommand, VerifyProofCommand};
use crate::command::{display_name, read_input};
use crate::output::{Exit, Output};

/// An inclusion proof as `clyra merkle prove inclusion` writes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionDoc {
    #[serde(rename = "type")]
    kind: String,
    leaf_hash: Digest,
    root: Digest,
    proof: InclusionProof,
}

/// A consistency proof as `clyra merkle prove consistency` writes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyDoc {
    #[serde(rename = "type")]
    kind: String,
    old_root: Digest,
    new_root: Digest,
    proof: ConsistencyProof,
}

pub fn run(cmd: MerkleCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        MerkleCommand::Root { file } => {
            let leaves = read_leaves(&file)?;
            let root = merkle::root(&leaves);
            out.emit(
                &serde_json::json!({"ok": true, "tree_size": leaves.len(), "root": root}),
                || format!("{root}\n"),
            );
            Ok(Exit::Ok)
        }
        MerkleCommand::Prove(ProveCommand::Inclusion { index, file }) => {
            let leaves = read_leaves(&file)?;
            let proof = merkle::inclusion_proof(&leaves, index).with_context(|| {
                format!("cannot prove leaf {index} of `{}`", display_name(&file))
            })?;
            let idx = usize::try_from(index)?;
            let doc = InclusionDoc {
                kind: "inclusion".into(),
                leaf_hash: leaves[idx],
                root: merkle::root(&leaves),
                proof,
            };
            print_doc(&doc)
        }
        MerkleCommand::Prove(ProveCommand::Consistency { old_size, file }) => {
            let leaves = read_leaves(&file)?;
            let proof = merkle::consistency_proof(&leaves, old_size).with_context(|| {
                format!(
                    "cannot prove consistency from size {old_size} for `{}`",
                    display_name(&file)
                )
            })?;
            let old = usize::try_from(old_size)?;
            let doc = ConsistencyDoc {
                kind: "consistency".into(),
                old_root: merkle::root(&leaves[..old]),
                new_root: merkle::root(&leaves),
                proof,
            };
            print_doc(&doc)
        }
        MerkleCommand::Verify(VerifyProofCommand::Inclusion { proof, root, leaf }) => {
            let doc: InclusionDoc = read_doc(&proof, "inclusion")?;
            let leaf_hash = merkle::leaf_hash(&decode_hex(&leaf, "--leaf")?);
            let result = if leaf_hash != doc.leaf_hash {
                Err("the leaf does not match the proof's leaf hash".to_owned())
            } else {
                merkle::verify_inclusion(&leaf_hash, &doc.proof, &root).map_err(|e| e.to_string())
            };
            verdict(
                result,
                out,
                "inclusion",
                doc.proof.leaf_index,
                doc.proof.tree_size,
            )
        }
        MerkleCommand::Verify(VerifyProofCommand::Consistency {
            proof,
            old_root,
            new_root,
        }) => {
            let doc: ConsistencyDoc = read_doc(&proof, "consistency")?;
            let result = merkle::verify_consistency(&doc.proof, &old_root, &new_root)
                .map_err(|e| e.to_string());
            verdict(
                result,
                out,
                "consistency",
                doc.proof.old_size,
                doc.proof.new_size,
            )
        }
    }
}

fn verdict(
    result: Result<(), String>,
    out: &Output,
    kind: &str,
    a: u64,
    b: u64,
) -> anyhow::Result<Exit> {
    let (ok, reason) = match &result {
        Ok(()) => (true, None),
        Err(e) => (false, Some(e.clone())),
    };
    out.emit(
        &serde_json::json!({"ok": ok, "proof": kind, "verdict": if ok { "valid" } else { "invalid" }, "reason": reason}),
        || match (&result, kind) {
            (Ok(()), "inclusion") => format!("valid: leaf {a} is in the tree of size {b}"),
            (Ok(()), _) => format!("valid: the tree of size {a} is a prefix of the tree of size {b}"),
            (Err(e), _) => format!("invalid: {e}"),
        },
    );
    Ok(if ok {
        Exit::Ok
    } else {
        Exit::VerificationFailed
    })
}

/// The proof document is the output in both formats.
fn print_doc<T: Serialize>(doc: &T) -> anyhow::Result<Exit> {
    println!("{}", serde_json::to_string_pretty(doc)?);
    Ok(Exit::Ok)
}

fn read_doc<T: serde::de::DeserializeOwned>(path: &Path, kind: &str) -> anyhow::Result<T> {
    let bytes = read_input(path)?;
    let value = clyra_evidence::jcs::parse_strict(&bytes)
        .with_context(|| format!("`{}` is not valid JSON", display_name(path)))?;
    if value.get("type").and_then(|t| t.as_str()) != Some(kind) {
        bail!(
            "`{}` is not a {kind} proof (its `type` must be \"{kind}\")",
            display_name(path)
        );
    }
    serde_json::from_value(value)
        .with_context(|| format!("`{}` is not a valid {kind} proof", display_name(path)))
}

fn decode_hex(s: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(s.trim()).with_context(|| format!("{what} `{s}` is not hex"))
}

/// One leaf per line, each the hex of the leaf's bytes (usually a digest of the leaf's data).
/// Blank lines and lines starting with `#` are skipped.
fn read_leaves(path: &Path) -> anyhow::Result<Vec<Digest>> {
    let bytes = read_input(path)?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("`{}` is not UTF-8 text", display_name(path)))?;
    let mut leaves = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let data = hex::decode(line).with_context(|| {
            format!("{}:{}: leaf `{line}` is not hex", display_name(path), i + 1)
        })?;
        leaves.push(merkle::leaf_hash(&data));
    }
    Ok(leaves)
}
