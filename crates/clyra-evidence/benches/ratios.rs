//! The kernel's ratio report: each figure is measured against its named baseline in the same run,
//! so the ratios hold across machines even when absolute times do not.
//!
//! Run with `make bench` (or `cargo bench -p clyra-evidence --bench ratios`). Targets from the
//! evidence-kernel issue: canonicalization ≤ 2× `serde_json::to_vec` on the same 1 MB document,
//! Merkle root of 1,000,000 leaves ≤ 1.5× plain SHA-256 over the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use clyra_evidence::jcs;
use serde_json::{json, Value};

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
            "kind": if i % 3 == 0 { "dbt.model.finished" } else { "gateway.decision" },
            "actor": {"type": "agent", "id": format!("agent-{}", i % 17), "tenant": "acme-€"},
            "metrics": {"duration_ms": (i * 37) % 10_000, "rows": i * 1013, "ratio": (i as f64) / 7.0},
            "tags": ["prod", "eu-west-1", format!("run-{}", i / 100)],
            "note": "quoted \"text\" with a tab\t and unicode: naïve café ✓",
            "ok": i % 5 != 0,
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
}
