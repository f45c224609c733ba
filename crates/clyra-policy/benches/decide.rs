//! Decision latency for a realistic 50-rule policy (`benches/policy50.json`): match-only and CEL
//! rules across every section, detectors, the warehouse guard, activation limits, rate limits.
//!
//! `cargo bench -p clyra-policy --bench decide`. For the latency distribution (p50/p95/p99), run
//! `cargo run --release -p clyra-policy --example decide_latency`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use clyra_policy::decide::{Action, Engine};
use clyra_policy::model::{Policy, Verdict};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::Value;

const POLICY: &str = include_str!("policy50.json");
const ACTIONS: &str = include_str!("actions.json");

fn setup() -> (Policy, Engine, Vec<(&'static str, Value, Verdict)>) {
    let policy: Policy = serde_json::from_str(POLICY).unwrap();
    let engine = Engine::new(&policy, "sha256:bench").unwrap();
    let actions: Value = serde_json::from_str(ACTIONS).unwrap();
    let cases = vec![
        ("allow", actions["allow"].clone(), Verdict::Allow),
        ("block", actions["block"].clone(), Verdict::Block),
        (
            "approval",
            actions["approval"].clone(),
            Verdict::RequireApproval,
        ),
    ];
    (policy, engine, cases)
}

fn bench(c: &mut Criterion) {
    let (policy, engine, cases) = setup();
    let mut g = c.benchmark_group("decide");
    for (name, value, expected) in &cases {
        let action = Action::from_value(value.clone()).unwrap();
        assert_eq!(engine.decide(&action).verdict, *expected, "{name}");
        g.bench_function(*name, |b| b.iter(|| engine.decide(black_box(&action))));
    }
    g.finish();

    // What a gateway pays per request: check the action JSON (incl. its digest), then decide.
    let mut g = c.benchmark_group("check_and_decide");
    for (name, value, _) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let action = Action::from_value(black_box(value.clone())).unwrap();
                engine.decide(&action)
            })
        });
    }
    g.finish();

    c.bench_function("compile_policy50", |b| {
        b.iter(|| Engine::new(black_box(&policy), "sha256:bench").unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
