//! Per-decision latency distribution for the 50-rule benchmark policy.
//!
//! `cargo run --release -p clyra-policy --example decide_latency [DECISIONS]` (default 200000).
//! Times every decision on its own (criterion reports means; a gateway cares about the tail) and
//! prints p50, p95, p99, p99.9 and max in microseconds, per action and over all of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use clyra_policy::decide::{Action, Engine};
use clyra_policy::model::Policy;
use serde_json::Value;

const POLICY: &str = include_str!("../benches/policy50.json");
const ACTIONS: &str = include_str!("../benches/actions.json");

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(name: &str, mut ns: Vec<u64>) {
    ns.sort_unstable();
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    println!(
        "{name:<22} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2}",
        ns.len(),
        mean,
        percentile(&ns, 0.50),
        percentile(&ns, 0.95),
        percentile(&ns, 0.99),
        percentile(&ns, 0.999),
        *ns.last().unwrap() as f64 / 1000.0
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("DECISIONS is a number"))
        .unwrap_or(200_000);
    let policy: Policy = serde_json::from_str(POLICY).unwrap();
    let t = Instant::now();
    let engine = Engine::new(&policy, "sha256:bench").unwrap();
    let compile_us = t.elapsed().as_secs_f64() * 1e6;
    let actions: Value = serde_json::from_str(ACTIONS).unwrap();
    let names = ["allow", "block", "approval"];
    let values: Vec<Value> = names.iter().map(|n| actions[*n].clone()).collect();
    let parsed: Vec<Action> = values
        .iter()
        .map(|v| Action::from_value(v.clone()).unwrap())
        .collect();

    // Warm up.
    for i in 0..10_000 {
        black_box(engine.decide(&parsed[i % 3]));
    }

    let mut decide: Vec<Vec<u64>> = (0..3).map(|_| Vec::with_capacity(n / 3 + 1)).collect();
    let mut full: Vec<Vec<u64>> = (0..3).map(|_| Vec::with_capacity(n / 3 + 1)).collect();
    for i in 0..n {
        let k = i % 3;
        let t = Instant::now();
        let d = engine.decide(black_box(&parsed[k]));
        decide[k].push(t.elapsed().as_nanos() as u64);
        black_box(d);

        let v = values[k].clone();
        let t = Instant::now();
        let a = Action::from_value(black_box(v)).unwrap();
        let d = engine.decide(&a);
        full[k].push(t.elapsed().as_nanos() as u64);
        black_box(d);
    }

    println!(
        "policy: 50 rules, 5 detectors, warehouse guard, 2 activation entries, 3 rate limits; compiled in {compile_us:.0} µs"
    );
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "µs per decision", "n", "mean", "p50", "p95", "p99", "p99.9", "max"
    );
    for (k, name) in names.iter().enumerate() {
        report(&format!("decide {name}"), decide[k].clone());
    }
    report("decide all", decide.concat());
    for (k, name) in names.iter().enumerate() {
        report(&format!("check+decide {name}"), full[k].clone());
    }
    report("check+decide all", full.concat());
}
