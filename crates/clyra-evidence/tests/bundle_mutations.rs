#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Mutation fuzzing of the published valid vectors: every change to a valid bundle must make it
//! invalid.
//!
//! For each valid case of `spec/*/test-vectors/`, the fixed-seed generator of
//! `support/bundle_mutator.rs` draws [`MUTANTS_PER_CASE`] mutants ([`DIR_MUTANTS`] for the
//! directory form): byte flips, truncations, appended bytes, swapped, deleted and duplicated
//! entries, canonical JSON edits and edits of the envelope. The same generator writes the mutant
//! corpus both verifiers are compared on (`examples/gen_mutants.rs`, `scripts/cross-verify.sh`).
//!
//! A mutant must be rejected unless it is byte-identical to the original: there are no exceptions.
//! DSSE alone leaves parts of an envelope unauthenticated (the `keyid` hints, repeated signatures,
//! the high-s twin of an ECDSA signature); a bundle's attestation is closed (spec §5), so those
//! edits are rejected too, and the mutations include them on purpose. An accepted mutant
//! fails the test with the case, the seed and the mutation. Re-run one mutant with
//! `CLYRA_MUTANT=def/dbt_run_postgres:0x1234abcd cargo test --test bundle_mutations -- --nocapture`.

#[allow(dead_code)]
#[path = "support/bundle_forge.rs"]
mod forge;
#[allow(dead_code)]
#[path = "support/bundle_mutator.rs"]
mod mutator;

use clyra_evidence::bundle::{verify_path, verify_zip_bytes, Report};
use mutator::{
    mutant_seed, mutate_dir, mutate_zip, read_dir_contents, valid_cases, write_dir_contents, Case,
    Rng,
};

const MUTANTS_PER_CASE: u64 = 300;
const DIR_MUTANTS: u64 = 150;

// ------------------------------------------------------------------------------------------------
// The runs

#[derive(Default)]
struct Tally {
    mutants: u64,
    rejected: u64,
    identical: u64,
    failures: Vec<String>,
}

impl Tally {
    fn judge(&mut self, case: &str, seed: u64, what: &str, report: &Report) {
        self.mutants += 1;
        if !report.is_valid() {
            self.rejected += 1;
        } else {
            self.failures.push(format!(
                "{case} seed {seed:#018x}: {what}: accepted ({:?})",
                report.codes()
            ));
        }
    }
}

fn wanted() -> Option<(String, u64)> {
    let spec = std::env::var("CLYRA_MUTANT").ok()?;
    let (case, seed) = spec.rsplit_once(':')?;
    let seed = u64::from_str_radix(seed.trim_start_matches("0x"), 16).ok()?;
    Some((case.to_owned(), seed))
}

fn run_zip_case(case: &Case, seeds: &[u64], tally: &mut Tally) {
    let original = std::fs::read(&case.bundle).unwrap();
    let options = case.options();
    assert!(
        verify_zip_bytes(&original, &options).is_valid(),
        "{} must verify before mutation",
        case.name
    );
    for &seed in seeds {
        let mut rng = Rng::new(seed);
        let (what, mutant) = mutate_zip(&original, &mut rng);
        if mutant == original {
            tally.mutants += 1;
            tally.identical += 1;
            continue;
        }
        let report = verify_zip_bytes(&mutant, &options);
        tally.judge(&case.name, seed, &what, &report);
    }
}

fn run_dir_case(case: &Case, seeds: &[u64], tally: &mut Tally) {
    let original = read_dir_contents(&case.bundle);
    let options = case.options();
    assert!(verify_path(&case.bundle, &options).unwrap().is_valid());
    let tmp = tempfile::tempdir().unwrap();
    for (i, &seed) in seeds.iter().enumerate() {
        let mut rng = Rng::new(seed);
        let (what, mutant) = mutate_dir(&original, &mut rng);
        if mutant == original {
            tally.mutants += 1;
            tally.identical += 1;
            continue;
        }
        let dir = tmp.path().join(format!("m{i}"));
        std::fs::create_dir(&dir).unwrap();
        write_dir_contents(&dir, &mutant);
        let report = verify_path(&dir, &options).unwrap();
        tally.judge(&case.name, seed, &what, &report);
    }
}

#[test]
fn every_mutant_of_a_valid_vector_is_rejected() {
    let started = std::time::Instant::now();
    let cases = valid_cases();
    let only = wanted();
    let mut total = Tally::default();
    for case in &cases {
        let is_dir = case.bundle.is_dir();
        let count = if is_dir {
            DIR_MUTANTS
        } else {
            MUTANTS_PER_CASE
        };
        let seeds: Vec<u64> = match &only {
            Some((name, seed)) if *name == case.name => vec![*seed],
            Some(_) => continue,
            None => (0..count).map(|i| mutant_seed(&case.name, i)).collect(),
        };
        let mut tally = Tally::default();
        if is_dir {
            run_dir_case(case, &seeds, &mut tally);
        } else {
            run_zip_case(case, &seeds, &mut tally);
        }
        println!(
            "{:<38} {:>4} mutants: {:>4} rejected, {:>3} identical, {} accepted",
            case.name,
            tally.mutants,
            tally.rejected,
            tally.identical,
            tally.failures.len()
        );
        if only.is_some() {
            for m in &tally.failures {
                println!("  {m}");
            }
        }
        total.mutants += tally.mutants;
        total.rejected += tally.rejected;
        total.identical += tally.identical;
        total.failures.extend(tally.failures);
    }
    println!(
        "{} mutants in {:.1?}: {} rejected, {} identical",
        total.mutants,
        started.elapsed(),
        total.rejected,
        total.identical
    );
    assert!(
        total.failures.is_empty(),
        "{} mutant(s) of valid vectors were accepted (re-run one with CLYRA_MUTANT=<case>:<seed>):\n  {}",
        total.failures.len(),
        total.failures.join("\n  ")
    );
    if only.is_none() {
        assert!(total.mutants >= 2000, "only {} mutants", total.mutants);
        assert!(
            total.rejected * 10 >= total.mutants * 9,
            "fewer than 90% of mutants rejected: {} of {}",
            total.rejected,
            total.mutants
        );
    }
}
