#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Writes a corpus of mutants of the valid golden vectors, for comparing the two verifiers.
//!
//! ```text
//! cargo run -p clyra-evidence --example gen_mutants -- --seed 0xC1A7 --per-case 40 --out DIR
//! verifier/ts/scripts/conformance.sh --batch DIR/*
//! ```
//!
//! For each valid case of `spec/*/test-vectors/` it draws `--per-case` mutants with the generator
//! the mutation test uses (`tests/support/bundle_mutator.rs`): mutant `i` of case `C` uses the seed
//! of the test's mutant `i` of `C` XOR `--seed`, so `--seed 0` gives exactly the test's mutants.
//! Each mutant is one case folder `DIR/<def|pef>-NAME-III/` in the layout of the golden vectors:
//! `bundle.zip` (or `bundle/`), the source case's `trust.json` and `artifacts/` (when it has them),
//! and an `expected.json` with the source case's `verify_at`, `threshold` and `artifacts` but no
//! `verdict` or `codes`: of a mutant, only agreement between verifiers is required. Its
//! `description` says what the mutation did and how to re-draw it in the mutation test
//! (`CLYRA_MUTANT=CASE:SEED`). A mutant identical to its
//! source is not written. The output is deterministic.

#[allow(dead_code)]
#[path = "../tests/support/bundle_forge.rs"]
mod forge;
#[allow(dead_code)]
#[path = "../tests/support/bundle_mutator.rs"]
mod mutator;

use std::path::{Path, PathBuf};

use mutator::{mutant_seed, mutate_dir, mutate_zip, read_dir_contents, write_dir_contents, Rng};
use serde_json::{json, Value};

const USAGE: &str = "usage: gen_mutants --out DIR [--seed N] [--per-case N]";

fn parse_u64(text: &str) -> u64 {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("`{text}` is not a number\n{USAGE}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

fn main() {
    let mut out: Option<PathBuf> = None;
    let mut seed = 0xC1A7_u64;
    let mut per_case = 40_u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(value())),
            "--seed" => seed = parse_u64(&value()),
            "--per-case" => per_case = parse_u64(&value()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => panic!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let out = out.unwrap_or_else(|| panic!("{USAGE}"));
    if out.exists() && std::fs::read_dir(&out).unwrap().next().is_some() {
        panic!("{} exists and is not empty", out.display());
    }
    std::fs::create_dir_all(&out).unwrap();

    let (mut written, mut identical) = (0, 0);
    for case in mutator::valid_cases() {
        let expected: Value =
            serde_json::from_slice(&std::fs::read(case.dir.join("expected.json")).unwrap())
                .unwrap();
        let is_dir = case.bundle.is_dir();
        let zip = if is_dir {
            Vec::new()
        } else {
            std::fs::read(&case.bundle).unwrap()
        };
        let tree = if is_dir {
            read_dir_contents(&case.bundle)
        } else {
            forge::Contents::new()
        };
        for i in 0..per_case {
            let mutant = mutant_seed(&case.name, i) ^ seed;
            let mut rng = Rng::new(mutant);
            let dir = out.join(format!("{}-{i:03}", case.name.replace('/', "-")));
            let what = if is_dir {
                let (what, c) = mutate_dir(&tree, &mut rng);
                if c == tree {
                    identical += 1;
                    continue;
                }
                std::fs::create_dir_all(dir.join("bundle")).unwrap();
                write_dir_contents(&dir.join("bundle"), &c);
                what
            } else {
                let (what, bytes) = mutate_zip(&zip, &mut rng);
                if bytes == zip {
                    identical += 1;
                    continue;
                }
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("bundle.zip"), bytes).unwrap();
                what
            };
            std::fs::copy(case.dir.join("trust.json"), dir.join("trust.json")).unwrap();
            if case.dir.join("artifacts").is_dir() {
                copy_dir(&case.dir.join("artifacts"), &dir.join("artifacts"));
            }
            let description = format!(
                "mutant {i} of {} (re-draw it in the mutation test with CLYRA_MUTANT={}:{mutant:#x}): {what}",
                case.name, case.name
            );
            let exp = json!({
                "verify_at": expected["verify_at"],
                "threshold": expected["threshold"],
                "artifacts": expected["artifacts"],
                "description": description,
            });
            let mut text = serde_json::to_vec_pretty(&exp).unwrap();
            text.push(b'\n');
            std::fs::write(dir.join("expected.json"), text).unwrap();
            written += 1;
        }
    }
    println!(
        "{written} mutants written to {} (seed {seed:#x}, {per_case} per case; {identical} identical to their source skipped)",
        out.display()
    );
}
