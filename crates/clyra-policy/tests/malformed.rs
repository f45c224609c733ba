//! The malformed-policy corpus: every `tests/malformed/NN-name.{yaml,json}` is linted, and its
//! findings must be exactly those listed in the sibling `NN-name.expected`, one per line:
//!
//! ```text
//! SEVERITY CODE LINE:COLUMN POINTER [| SUGGESTION]
//! ```
//!
//! (`POINTER` is `-` for the whole document; the suggestion, when given, must match exactly).
//! Lines starting with `#` are comments. A file whose findings are all warnings must also load;
//! any other must be refused by the loader with the same errors.
//!
//! `CLYRA_BLESS=1 cargo test -p clyra-policy --test malformed` rewrites the `.expected` files from
//! what lint reports now (review the diff before committing it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use clyra_policy::{Diagnostic, Severity};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            )
        })
        .collect();
    files.sort();
    files
}

fn line_of(d: &Diagnostic) -> String {
    let pointer = if d.pointer.is_empty() {
        "-"
    } else {
        d.pointer.as_str()
    };
    let mut s = format!(
        "{} {} {}:{} {}",
        d.severity.as_str(),
        d.code,
        d.line,
        d.column,
        pointer
    );
    if let Some(help) = &d.suggestion {
        s.push_str(" | ");
        s.push_str(help);
    }
    s
}

/// Compares one expected line with one finding: the suggestion part is optional.
fn matches(expected: &str, actual: &str) -> bool {
    if expected.contains(" | ") {
        expected == actual
    } else {
        actual.split(" | ").next() == Some(expected)
    }
}

#[test]
fn every_malformed_policy_reports_exactly_its_expected_findings() {
    let files = corpus();
    assert!(files.len() >= 30, "only {} corpus files", files.len());
    let bless = std::env::var_os("CLYRA_BLESS").is_some();
    let mut failures = Vec::new();
    for file in &files {
        let report = clyra_policy::lint_file(file);
        let actual: Vec<String> = report.iter().map(line_of).collect();
        let expected_path = file.with_extension("expected");
        if bless {
            let mut text = actual.join("\n");
            text.push('\n');
            std::fs::write(&expected_path, text).unwrap();
            continue;
        }
        let expected_text = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let expected: Vec<&str> = expected_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let same = expected.len() == actual.len()
            && expected.iter().zip(&actual).all(|(e, a)| matches(e, a));
        if !same {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  actual:\n    {}\n  (as printed:\n    {})",
                file.display(),
                expected.join("\n    "),
                actual.join("\n    "),
                report
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ));
            continue;
        }
        assert!(
            !report.is_empty(),
            "{}: a corpus file must report something",
            file.display()
        );
        // The loader agrees with lint: refused with the same errors, or loaded with the warnings.
        match clyra_policy::load_file(file) {
            Ok(loaded) => {
                assert!(
                    !report.has_errors(),
                    "{} loaded despite errors",
                    file.display()
                );
                assert_eq!(
                    loaded.warnings,
                    report.clone().into_vec(),
                    "{}",
                    file.display()
                );
            }
            Err(refused) => {
                assert!(
                    report.has_errors(),
                    "{} refused without errors",
                    file.display()
                );
                let errors: Vec<_> = refused.errors().cloned().collect();
                let linted: Vec<_> = report.errors().cloned().collect();
                assert_eq!(errors, linted, "{}", file.display());
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_finding_names_the_file_and_a_real_place() {
    for file in corpus() {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = text.lines().count().max(1);
        for d in clyra_policy::lint_file(&file) {
            assert_eq!(d.file, file.display().to_string());
            assert!(
                d.line >= 1 && d.line <= lines + 1,
                "{}: line {} of {lines}",
                file.display(),
                d.line
            );
            assert!(d.column >= 1, "{}: column {}", file.display(), d.column);
            assert!(!d.message.is_empty());
            assert!(d.pointer.is_empty() || d.pointer.starts_with('/'));
            let _ = Severity::Error;
        }
    }
}
