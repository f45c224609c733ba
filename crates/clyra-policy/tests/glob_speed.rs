//! Glob matching cost, for the decision budget (p99 ≤ 50 µs for a 50-rule policy). A timing
//! report, not a pass/fail test: run it with
//! `cargo test --release -p clyra-policy --test glob_speed -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use clyra_policy::glob::{Glob, GlobSet};

fn per_call(label: &str, n: u32, mut f: impl FnMut() -> bool) {
    let mut hits = 0u32;
    let start = Instant::now();
    for _ in 0..n {
        hits += u32::from(black_box(f()));
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
    println!("{label:<58} {ns:>8.1} ns/match  ({hits} hits)");
}

#[test]
#[ignore = "timing report; run with --release -- --ignored --nocapture"]
fn glob_matching_cost() {
    let cases: &[(&str, &str)] = &[
        ("tool.call", "tool.call"),
        ("warehouse.*", "warehouse.dml"),
        ("POST /v1/**", "POST /v1/orders/12345/items"),
        ("*@acme.example", "alice@acme.example"),
        ("user:*@acme.example", "user:alice.smith@acme.example"),
        ("agent:copilot-[0-9]*", "agent:copilot-7-eu"),
        ("a/**/z?", "a/b/c/d/e/f/g/h/zz"),
    ];
    for (pattern, text) in cases {
        let g = Glob::new(pattern).unwrap();
        per_call(&format!("{pattern:?} vs {text:?}"), 1_000_000, || {
            g.matches(black_box(text))
        });
    }
    let compile_start = Instant::now();
    for _ in 0..100_000 {
        black_box(Glob::new(black_box("user:*@[a-z]*.acme.example")).unwrap());
    }
    println!(
        "{:<58} {:>8.1} ns/compile",
        "Glob::new(\"user:*@[a-z]*.acme.example\")",
        compile_start.elapsed().as_nanos() as f64 / 100_000.0
    );
    // A 50-rule policy's match step: 50 rules, 2 fields each, 3 globs per field.
    let rules: Vec<(GlobSet, GlobSet)> = (0..50)
        .map(|i| {
            (
                GlobSet::new([
                    format!("kind{i}.*"),
                    "tool.call".into(),
                    "warehouse.*".into(),
                ])
                .unwrap(),
                GlobSet::new([
                    format!("agent:bot-{i}"),
                    "user:*@acme.example".into(),
                    "service:[a-m]*".into(),
                ])
                .unwrap(),
            )
        })
        .collect();
    per_call("50 rules x (kind, actor) x 3 globs each", 100_000, || {
        rules
            .iter()
            .filter(|(k, a)| {
                k.matches(black_box("tool.call")) && a.matches("user:bob@acme.example")
            })
            .count()
            == 50
    });
}
