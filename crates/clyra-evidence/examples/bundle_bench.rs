//! Bundle benchmark: builds a DEF bundle of realistic chained journal entries, writes it, verifies
//! it from the file, and reports every figure against a baseline measured in the same run
//! (`sha256sum` of the same file as a process, and SHA-256 of the file in this process). Peak memory
//! of building and of verifying is measured in separate processes, at several journal sizes, to
//! show that verification memory does not grow with the bundle.
//!
//! Run with `make bench-bundle` (bench/bundle.sh). Modes:
//!
//! - `report [--entries N] [--sizes A,B,C] [--runs R]`: the whole report (default: 100,000
//!   entries, sizes 10,000,100,000,300,000, 5 runs per timing). Spawns this binary in the two modes
//!   below, under `/usr/bin/time -v` when it exists, for the memory figures.
//! - `build N OUT.zip`: builds and writes a bundle (and `OUT.zip.pub`, the public key), then prints
//!   one `RESULT` line.
//! - `verify BUNDLE.zip`: verifies it against `BUNDLE.zip.pub`, then prints one `RESULT` line.
//!
//! Target from the evidence-kernel issue: verification ≤ 3× `sha256sum` of the same bundle file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clyra_evidence::bundle::{
    verify_path, Bundle, BundleBuilder, Governance, Kind, Producer, VerifyOptions, ATTESTATION_PATH,
};
use clyra_evidence::keys::{Algorithm, PrivateKey, PublicKey, Signer as _};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::zipstore::{self, ZipReader};
use serde_json::{json, Value};
use sha2::Digest as _;

const CREATED_AT: &str = "2026-11-24T10:00:00Z";
const CHECKED_AT: &str = "2026-11-24T12:00:00Z";
const RUN: &str = "run-2026-11-24-finance";

/// A small deterministic mixer (SplitMix64), so every run builds the same journal.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hex64(x: u64) -> String {
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        mix(x),
        mix(x ^ 1),
        mix(x ^ 2),
        mix(x ^ 3)
    )
}

const TOOLS: [&str; 6] = [
    "crm.lookup_customer",
    "billing.issue_refund",
    "sql.execute",
    "tickets.update_status",
    "email.send_template",
    "warehouse.read_table",
];
const DECISIONS: [&str; 4] = ["allow", "allow", "require_approval", "block"];

/// Event `i` of `n` (without `seq` and `prev`, which the builder chains in): a dbt run on
/// Postgres whose models and tests are interleaved with gateway decisions and warehouse queries.
/// Canonical lines are 300–500 bytes; some strings are non-ASCII.
fn event(i: u64, n: u64) -> Value {
    let ts = jiff::Timestamp::from_millisecond(1_795_510_800_000 + (i as i64) * 37)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let r = mix(i);
    if i == 0 {
        return json!({"ts": ts, "kind": "dbt.run.started", "run_id": RUN,
            "dbt": {"version": "1.9.4", "adapter": "postgres", "target": "prod",
                    "invocation_id": "5f0c2b8e-7a41-4c0e-9d2a-3b6f1e8c9a70",
                    "command": "dbt build --select finance+ --threads 8"},
            "orchestrator": {"dag": "daily_finance", "task": "dbt_build", "try": 1}});
    }
    if i + 1 == n {
        return json!({"ts": ts, "kind": "dbt.run.finished", "run_id": RUN, "status": "success",
            "elapsed_ms": i * 37, "nodes": {"models": n / 200, "tests": n / 200},
            "orchestrator": {"dag": "daily_finance", "task": "dbt_build", "try": 1}});
    }
    if i % 20_000 == 1 {
        return json!({"ts": ts, "kind": "warehouse.anchor", "run_id": RUN,
            "anchor": {"platform": "postgres", "kind": "wal_lsn",
                       "value": format!("{:X}/{:X}", i >> 16, r & 0xfff_ffff)},
            "database": "analytics", "cluster": "pg-prod-eu-west-1"});
    }
    match i % 200 {
        7 => json!({"ts": ts, "kind": "dbt.model.finished", "run_id": RUN,
            "model": format!("model.finance.fct_ledger_{:05}", i / 200),
            "status": "success", "rows_affected": r % 2_000_000, "duration_ms": r % 90_000,
            "materialized": "incremental", "thread_id": format!("Thread-{}", r % 8),
            "adapter_response": {"_message": format!("INSERT 0 {}", r % 2_000_000),
                                 "code": "INSERT", "rows_affected": r % 2_000_000}}),
        11 => json!({"ts": ts, "kind": "dbt.test.finished", "run_id": RUN,
            "test": format!("test.finance.not_null_fct_ledger_{:05}_amount_eur", i / 200),
            "status": if r.is_multiple_of(50) { "warn" } else { "pass" }, "failures": u64::from(r.is_multiple_of(50)),
            "duration_ms": r % 4_000, "thread_id": format!("Thread-{}", r % 8),
            "severity": "warn", "compiled_sha256": hex64(r)}),
        _ if r.is_multiple_of(3) => {
            json!({"ts": ts, "kind": "warehouse.query.finished", "run_id": RUN,
            "query_id": format!("q-{:016x}", r), "database": "analytics",
            "relation": format!("finance.stg_payments_{:03}", r % 400),
            "sql_sha256": hex64(r ^ 7), "rows": r % 500_000, "bytes_scanned": r % 4_000_000_000,
            "duration_ms": r % 20_000, "status": "success", "role": "dbt_prod"})
        }
        _ => {
            let user = if r.is_multiple_of(10) {
                "zoë.müller"
            } else {
                "ana.silva"
            };
            json!({"ts": ts, "kind": "gateway.decision",
                "session": format!("agent-{:04x}", (r >> 8) % 4096),
                "actor": {"type": "agent", "id": format!("finance-copilot-{}", r % 7),
                          "on_behalf_of": format!("user:{user}@acme.example")},
                "tool": TOOLS[(r % 6) as usize], "decision": DECISIONS[((r >> 4) % 4) as usize],
                "policy": {"id": "pol-finance-guardrails", "rule": format!("rule-{}", r % 23)},
                "args_sha256": hex64(r ^ 3), "latency_ms": r % 250})
        }
    }
}

fn builder(n: u64) -> BundleBuilder {
    let mut b = BundleBuilder::new(
        Kind::Def,
        "def-bench",
        CREATED_AT.parse().unwrap(),
        Producer {
            name: "clyra-bench".into(),
            version: "0.1.0".into(),
        },
        Governance {
            tenant: "acme".into(),
            environment: "prod".into(),
            run_id: RUN.into(),
            actors: vec!["airflow/daily_finance".into()],
        },
    );
    b.chain_events((0..n).map(|i| event(i, n))).unwrap();
    b
}

fn build(n: u64, key: &PrivateKey) -> Bundle {
    builder(n).build(&[key]).unwrap()
}

fn trust_for(public: &PublicKey) -> TrustStore {
    let mut trust = TrustStore::new();
    trust
        .add(
            public.clone(),
            "2026-01-01T00:00:00Z".parse().unwrap(),
            None,
            None,
        )
        .unwrap();
    trust
}

fn verify_file(path: &Path, trust: &TrustStore) {
    let options = VerifyOptions::new(trust, CHECKED_AT.parse().unwrap());
    let report = verify_path(path, &options).unwrap();
    assert!(report.is_valid(), "{:#?}", report.findings);
}

fn journal_bytes(bundle: &Bundle) -> u64 {
    bundle.manifest().files[0].size
}

/// The size of `attestation.dsse.json`: the signed statement, whose DEF predicate lists every dbt
/// model and test, so it grows with the run (up to the 16 MiB document limit).
fn attestation_bytes(bundle: &Bundle) -> u64 {
    let zip =
        ZipReader::open(Cursor::new(bundle.zip_bytes()), zipstore::Limits::default()).unwrap();
    zip.entries()[zip.find(ATTESTATION_PATH).unwrap()].size
}

/// This process's peak resident set (VmHWM), in KiB.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

fn median_of(times: &[Duration]) -> Duration {
    let mut t = times.to_vec();
    t.sort();
    t[t.len() / 2]
}

fn spread(times: &[Duration]) -> String {
    let min = times.iter().min().unwrap().as_secs_f64();
    let max = times.iter().max().unwrap().as_secs_f64();
    format!("min {:.1} / max {:.1} ms", min * 1e3, max * 1e3)
}

fn sha256_in_process(path: &Path) -> [u8; 32] {
    let mut file = File::open(path).unwrap();
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher.finalize().into()
}

fn sha256sum_process(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum failed");
    String::from_utf8(out.stdout).unwrap()
}

const MIB: f64 = (1u64 << 20) as f64;

// ------------------------------------------------------------------------------------------------
// Child modes: one operation per process, so its peak RSS is that operation's.

fn mode_build(n: u64, out: &Path) {
    let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let (bundle, took) = timed(|| build(n, &key));
    let journal = journal_bytes(&bundle);
    bundle.write_zip(out).unwrap();
    std::fs::write(pub_path(out), key.public_key().to_pem()).unwrap();
    println!(
        "RESULT build entries={n} seconds={:.6} journal_bytes={journal} bundle_bytes={} attestation_bytes={} vmhwm_kib={}",
        took.as_secs_f64(),
        bundle.zip_bytes().len(),
        attestation_bytes(&bundle),
        vm_hwm_kib().unwrap_or(0)
    );
}

fn mode_verify(path: &Path) {
    let public = PublicKey::from_pem(&std::fs::read_to_string(pub_path(path)).unwrap()).unwrap();
    let trust = trust_for(&public);
    let ((), took) = timed(|| verify_file(path, &trust));
    println!(
        "RESULT verify seconds={:.6} vmhwm_kib={}",
        took.as_secs_f64(),
        vm_hwm_kib().unwrap_or(0)
    );
}

fn pub_path(bundle: &Path) -> PathBuf {
    let mut s = bundle.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Figures parsed from a child's `RESULT` line, with its peak RSS.
struct Child {
    fields: Vec<(String, String)>,
    peak_kib: u64,
}

impl Child {
    fn get(&self, key: &str) -> f64 {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or_else(|| panic!("no `{key}` in the child's result"))
    }
}

/// Runs this binary with `args`, under `/usr/bin/time -v` when it exists (its "Maximum resident
/// set size"), else trusting the child's own VmHWM.
fn child(args: &[&str], use_time: bool) -> Child {
    let exe = std::env::current_exe().unwrap();
    let output = if use_time {
        Command::new("/usr/bin/time")
            .arg("-v")
            .arg(&exe)
            .args(args)
            .output()
    } else {
        Command::new(&exe).args(args).output()
    }
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child {args:?} failed:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("child {args:?} printed no result:\n{stdout}"));
    let fields: Vec<(String, String)> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let hwm = fields
        .iter()
        .find(|(k, _)| k == "vmhwm_kib")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let peak_kib = if use_time {
        stderr
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .map_or(hwm, |v| v.trim().parse().unwrap())
    } else {
        hwm
    };
    Child { fields, peak_kib }
}

// ------------------------------------------------------------------------------------------------
// The report.

fn report(entries: u64, sizes: &[u64], runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let trust = trust_for(key.public_key());
    println!("clyra bundle benchmark: DEF bundle, Ed25519, {entries} entries; medians of {runs} runs after a warm-up (build: {} runs)", runs.min(3));

    // Build, in this process: the last of the timed builds is the one verified.
    let mut build_times = Vec::new();
    let mut built = None;
    for _ in 0..runs.min(3) {
        drop(built.take()); // one bundle in memory at a time
        let (b, t) = timed(|| build(entries, &key));
        build_times.push(t);
        built = Some(b);
    }
    let bundle = built.unwrap();
    let build_time = median_of(&build_times);
    let journal = journal_bytes(&bundle) as f64;
    let path = dir.path().join("bench.zip");
    let ((), write_time) = timed(|| bundle.write_zip(&path).unwrap());
    let bundle_bytes = bundle.zip_bytes().len() as f64;
    drop(bundle);

    // Verify from the file, and the two baselines over the same file, interleaved run by run so
    // that load from other processes falls on all three alike.
    verify_file(&path, &trust);
    sha256_in_process(&path);
    sha256sum_process(&path);
    let (mut v, mut s, mut h) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        v.push(timed(|| verify_file(&path, &trust)).1);
        s.push(timed(|| sha256sum_process(&path)).1);
        h.push(timed(|| sha256_in_process(&path)).1);
    }
    let (verify, sha256sum, sha256) = (median_of(&v), median_of(&s), median_of(&h));

    let secs = build_time.as_secs_f64();
    println!();
    println!("{:<38} {:>14}", "figure", "value");
    println!("{}", "-".repeat(100));
    println!("{:<38} {:>14}", "journal entries", entries);
    println!(
        "{:<38} {:>14.1}",
        "mean journal line (bytes, with LF)",
        journal / entries as f64
    );
    println!(
        "{:<38} {:>14.2}   ({} bytes)",
        "bundle size (MiB)",
        bundle_bytes / MIB,
        bundle_bytes
    );
    println!(
        "{:<38} {:>14.1}   ({})",
        "build time (ms, in memory, signed)",
        secs * 1e3,
        spread(&build_times)
    );
    println!(
        "{:<38} {:>14.0}",
        "build throughput (entries/s)",
        entries as f64 / secs
    );
    println!(
        "{:<38} {:>14.1}",
        "build throughput (journal MiB/s)",
        journal / MIB / secs
    );
    println!(
        "{:<38} {:>14.1}",
        "write to file (ms, with fsync)",
        write_time.as_secs_f64() * 1e3
    );
    println!(
        "{:<38} {:>14.1}   ({}; {:.1} MiB/s)",
        "verify_path from file (ms)",
        verify.as_secs_f64() * 1e3,
        spread(&v),
        bundle_bytes / MIB / verify.as_secs_f64()
    );
    println!(
        "{:<38} {:>14.1}   ({}; {:.1} MiB/s)",
        "baseline: sha256sum process (ms)",
        sha256sum.as_secs_f64() * 1e3,
        spread(&s),
        bundle_bytes / MIB / sha256sum.as_secs_f64()
    );
    println!(
        "{:<38} {:>14.1}   ({}; {:.1} MiB/s)",
        "baseline: SHA-256 in process (ms)",
        sha256.as_secs_f64() * 1e3,
        spread(&h),
        bundle_bytes / MIB / sha256.as_secs_f64()
    );
    let ratio = verify.as_secs_f64() / sha256sum.as_secs_f64();
    let verdict = if ratio <= 3.0 { "met" } else { "MISSED" };
    println!(
        "{:<38} {:>13.2}×   (target ≤ 3×: {verdict})",
        "verify / sha256sum", ratio
    );
    println!(
        "{:<38} {:>13.2}×   (no target: SHA-256 with CPU extensions, no process)",
        "verify / SHA-256 in process",
        verify.as_secs_f64() / sha256.as_secs_f64()
    );

    // Peak memory, one process per operation.
    let use_time = Path::new("/usr/bin/time").exists();
    println!();
    println!(
        "peak RSS, one process per operation ({})",
        if use_time {
            "/usr/bin/time -v, maximum resident set size"
        } else {
            "VmHWM from /proc/self/status at exit"
        }
    );
    println!(
        "{:>9} {:>11} {:>16} {:>9} {:>15} {:>10} {:>16}",
        "entries",
        "bundle MiB",
        "attestation KiB",
        "build s",
        "build peak MiB",
        "verify s",
        "verify peak MiB"
    );
    println!("{}", "-".repeat(92));
    for &n in sizes {
        let out = dir.path().join(format!("mem-{n}.zip"));
        let out_s = out.to_str().unwrap();
        let b = child(&["build", &n.to_string(), out_s], use_time);
        let v = child(&["verify", out_s], use_time);
        println!(
            "{n:>9} {:>11.1} {:>16.0} {:>9.2} {:>15.1} {:>10.2} {:>16.1}",
            b.get("bundle_bytes") / MIB,
            b.get("attestation_bytes") / 1024.0,
            b.get("seconds"),
            b.peak_kib as f64 / 1024.0,
            v.get("seconds"),
            v.peak_kib as f64 / 1024.0
        );
        std::fs::remove_file(&out).unwrap();
    }
    println!(
        "verification reads the journal line by line (constant memory); what grows is the signed \
         statement, held whole and capped at 16 MiB"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(0) {
        Some("build") => mode_build(
            arg(1).expect("entries").parse().unwrap(),
            Path::new(arg(2).expect("output path")),
        ),
        Some("verify") => mode_verify(Path::new(arg(1).expect("bundle path"))),
        Some("report") | None => {
            let mut entries = 100_000;
            let mut sizes = vec![10_000, 100_000, 300_000];
            let mut runs = 5;
            let mut i = 1;
            while let Some(flag) = arg(i) {
                let value = arg(i + 1).unwrap_or_else(|| panic!("{flag} needs a value"));
                match flag {
                    "--entries" => entries = value.parse().unwrap(),
                    "--sizes" => sizes = value.split(',').map(|s| s.parse().unwrap()).collect(),
                    "--runs" => runs = value.parse().unwrap(),
                    _ => panic!("unknown flag {flag}"),
                }
                i += 2;
            }
            assert!(runs >= 1 && entries >= 2);
            report(entries, &sizes, runs);
        }
        Some(other) => panic!("unknown mode `{other}`: report, build N OUT, or verify BUNDLE"),
    }
}
