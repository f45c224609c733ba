//! The kernel's ratio report: each figure is measured against its named baseline in the same run,
//! so the ratios hold across machines even when absolute times do not.
//!
//! Run with `make bench` (or `cargo bench -p clyra-evidence --bench ratios`). Targets from the
//! evidence-kernel issue: canonicalization ≤ 2× `serde_json::to_vec` on the same 1 MB document,
//! Merkle root of 1,000,000 leaves ≤ 1.5× plain SHA-256 over the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use clyra_evidence::keys::{Algorithm, PrivateKey, Signer as _};
use clyra_evidence::merkle::{self, MerkleTreeBuilder};
use clyra_evidence::{jcs, Digest};
use serde_json::{json, Value};
use sha2::Digest as _;

/// Median wall time of `runs` calls of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm up
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// A deterministic ~1 MB document shaped like journal entries: nested objects, strings with
/// non-ASCII and escapes, integers and doubles.
pub fn document(target_bytes: usize) -> Value {
    let mut entries = Vec::new();
    let mut size = 0;
    let mut i: u64 = 0;
    while size < target_bytes {
        let e = json!({
            "seq": i,
            "prev": format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            "kind": if i.is_multiple_of(3) { "dbt.model.finished" } else { "gateway.decision" },
            "actor": {"type": "agent", "id": format!("agent-{}", i % 17), "tenant": "acme-€"},
            "metrics": {"duration_ms": (i * 37) % 10_000, "rows": i * 1013, "ratio": (i as f64) / 7.0},
            "tags": ["prod", "eu-west-1", format!("run-{}", i / 100)],
            "note": "quoted \"text\" with a tab\t and unicode: naïve café ✓",
            "ok": !i.is_multiple_of(5),
            "parent": null,
        });
        size += serde_json::to_vec(&e).unwrap().len() + 1;
        entries.push(e);
        i += 1;
    }
    json!({ "version": 1, "entries": entries })
}

fn row(
    name: &str,
    subject: Duration,
    baseline_name: &str,
    baseline: Duration,
    target: Option<f64>,
) {
    let ratio = subject.as_secs_f64() / baseline.as_secs_f64();
    let verdict = match target {
        Some(t) if ratio <= t => format!("(target ≤ {t}×: met)"),
        Some(t) => format!("(target ≤ {t}×: MISSED)"),
        None => String::new(),
    };
    println!(
        "{name:<44} {:>10.3} ms   vs {baseline_name:<30} {:>10.3} ms   ratio {ratio:>5.2}× {verdict}",
        subject.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3
    );
}

fn main() {
    // `cargo test --benches` passes `--bench`-less args; run only under `cargo bench`.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("clyra-evidence ratio report (median of repeated runs, one process)");

    let doc = document(1 << 20);
    let bytes = serde_json::to_vec(&doc).unwrap();
    println!("document: {} bytes", bytes.len());
    let base = median(31, || {
        black_box(serde_json::to_vec(black_box(&doc)).unwrap());
    });
    let canon = median(31, || {
        black_box(jcs::canonicalize_value(black_box(&doc)).unwrap());
    });
    row(
        "jcs::canonicalize_value (1 MB)",
        canon,
        "serde_json::to_vec",
        base,
        Some(2.0),
    );
    let parse_base = median(21, || {
        let v: Value = serde_json::from_slice(black_box(&bytes)).unwrap();
        black_box(serde_json::to_vec(&v).unwrap());
    });
    let parse_canon = median(21, || {
        black_box(jcs::canonicalize(black_box(&bytes)).unwrap());
    });
    row(
        "jcs::canonicalize bytes (strict parse+write)",
        parse_canon,
        "from_slice+to_vec",
        parse_base,
        None,
    );
    let mb = bytes.len() as f64 / (1 << 20) as f64;
    println!(
        "canonicalization throughput: {:.1} MiB/s (value), {:.1} MiB/s (bytes)",
        mb / canon.as_secs_f64(),
        mb / parse_canon.as_secs_f64()
    );
    merkle_ratios();
    signatures();
}

/// Merkle root of 1,000,000 leaves vs SHA-256 over the same leaf bytes, at two leaf sizes.
/// Baselines: one SHA-256 stream over all the bytes, and one SHA-256 per leaf. The RFC 9162 tree
/// costs a prefixed leaf hash plus a 65-byte node hash (two SHA-256 blocks) per leaf, so against
/// the single stream its floor is (ceil((len + 10) / 64) + 2) / (len / 64): 6× at 32-byte leaves,
/// 1.19× at 1 KiB.
fn merkle_ratios() {
    const LEAVES: u64 = 1_000_000;
    for len in [32usize, 1024] {
        let mut buf: Vec<u8> = (0..len).map(|j| (j % 251) as u8).collect();
        let fill = |i: u64, buf: &mut Vec<u8>| buf[..8].copy_from_slice(&i.to_le_bytes());
        let stream = median(5, || {
            let mut h = sha2::Sha256::new();
            for i in 0..LEAVES {
                fill(i, &mut buf);
                h.update(&buf);
            }
            black_box(h.finalize());
        });
        let per_leaf = median(5, || {
            for i in 0..LEAVES {
                fill(i, &mut buf);
                black_box(Digest::sha256(&buf));
            }
        });
        let tree = median(5, || {
            let mut t = MerkleTreeBuilder::new();
            for i in 0..LEAVES {
                fill(i, &mut buf);
                t.push_data(&buf);
            }
            black_box(t.root());
        });
        let floor = ((len + 10).div_ceil(64) + 2) as f64 / (len as f64 / 64.0);
        row(
            &format!("merkle root, 1M leaves of {len} B"),
            tree,
            "one SHA-256 stream",
            stream,
            Some(1.5),
        );
        println!(
            "{:<44} (floor for any RFC 9162 tree against one stream: {floor:.2}×)",
            ""
        );
        row(
            &format!("merkle root, 1M leaves of {len} B"),
            tree,
            "one SHA-256 per leaf",
            per_leaf,
            None,
        );
    }
    // Sanity: the builder and the batch function agree.
    let leaves: Vec<Digest> = (0u32..1000)
        .map(|i| merkle::leaf_hash(&i.to_le_bytes()))
        .collect();
    let mut b = MerkleTreeBuilder::new();
    leaves.iter().for_each(|l| b.push_leaf_hash(*l));
    assert_eq!(b.root(), merkle::root(&leaves));
}

/// Ed25519 and ECDSA P-256 signing and verification rates over a 32-byte message.
fn signatures() {
    let msg = [7u8; 32];
    for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
        let key = PrivateKey::generate(alg).unwrap();
        let sig = key.sign(&msg).unwrap();
        let public = key.public_key().clone();
        const N: u32 = 2000;
        let sign = median(5, || {
            for _ in 0..N {
                black_box(key.sign(black_box(&msg)).unwrap());
            }
        });
        let verify = median(5, || {
            for _ in 0..N {
                public.verify(black_box(&msg), black_box(&sig)).unwrap();
            }
        });
        println!(
            "{:<44} sign {:>9.0}/s   verify {:>9.0}/s",
            alg.as_str(),
            f64::from(N) / sign.as_secs_f64(),
            f64::from(N) / verify.as_secs_f64()
        );
    }
}
