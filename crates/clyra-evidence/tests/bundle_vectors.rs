#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The published conformance vectors (`spec/def/test-vectors/`, `spec/pef/test-vectors/`):
//!
//! - every file under the vector and key directories is locked in `spec/test-vectors.lock` with
//!   its SHA-256, and every locked file is unchanged (published vectors are immutable);
//! - every case verifies to exactly its expected verdict and code set, with its trust file,
//!   verification time, threshold and artifacts directory;
//! - there are enough cases of each category.
//!
//! Every failing case is reported at once, by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clyra_evidence::bundle::{verify_path, VerifyOptions};
use clyra_evidence::codes::Code;
use clyra_evidence::trust::TrustStore;
use clyra_evidence::Digest;
use serde_json::Value;

/// Where the vectors live, relative to the repository root.
const CASE_DIRS: [&str; 2] = ["spec/def/test-vectors", "spec/pef/test-vectors"];
const KEY_DIR: &str = "spec/test-vectors-keys";
const LOCK: &str = "spec/test-vectors.lock";

const HOW_TO_ADD: &str = "\
Published vectors are immutable (spec/VERSIONING.md rule 4): never edit, rename or delete a file
under spec/def/test-vectors, spec/pef/test-vectors or spec/test-vectors-keys, and never change or
remove a line of spec/test-vectors.lock. A vector found wrong is superseded by a new case.
To add cases:
  1. add them to crates/clyra-evidence/examples/gen_vectors.rs;
  2. cargo run -p clyra-evidence --example gen_vectors -- --out spec
     (it writes only case folders that do not exist yet and keeps every published one);
  3. append the new files to the lock, from the repository root:
       find spec/def/test-vectors spec/pef/test-vectors spec/test-vectors-keys -type f \\
         | LC_ALL=C sort | xargs sha256sum > spec/test-vectors.lock
     and check with `git diff spec/test-vectors.lock` that lines were only added.";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Every file under `dir` (relative to `root`), as `/`-separated paths. Symbolic links and other
/// non-regular files are reported in `problems`: a checkout must hold plain files only.
fn walk(root: &Path, dir: &str, out: &mut BTreeSet<String>, problems: &mut Vec<String>) {
    let full = root.join(dir);
    let Ok(listing) = std::fs::read_dir(&full) else {
        problems.push(format!("{dir}: cannot read the directory"));
        return;
    };
    for item in listing {
        let item = item.unwrap();
        let name = item.file_name().into_string().unwrap();
        let rel = format!("{dir}/{name}");
        let ft = item.file_type().unwrap();
        if ft.is_dir() {
            walk(root, &rel, out, problems);
        } else if ft.is_file() {
            out.insert(rel);
        } else {
            problems.push(format!("{rel}: not a regular file"));
        }
    }
}

/// The lock's entries, by path, after checking its format and order.
fn read_lock(root: &Path, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root.join(LOCK))
        .unwrap_or_else(|e| panic!("cannot read {LOCK}: {e}\n\n{HOW_TO_ADD}"));
    let mut out = BTreeMap::new();
    let mut previous: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((hash, path)) = line.split_once("  ") else {
            problems.push(format!("{LOCK}:{n}: not `SHA256  PATH`"));
            continue;
        };
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if hash.len() != 64 || !hash.chars().all(hex) {
            problems.push(format!("{LOCK}:{n}: `{hash}` is not a lowercase SHA-256"));
        }
        if let Some(prev) = &previous {
            if prev.as_bytes() >= path.as_bytes() {
                problems.push(format!(
                    "{LOCK}:{n}: `{path}` is not after `{prev}` (paths are sorted as bytes, once each)"
                ));
            }
        }
        previous = Some(path.to_owned());
        out.insert(path.to_owned(), hash.to_owned());
    }
    if !text.ends_with('\n') {
        problems.push(format!("{LOCK}: no final newline"));
    }
    out
}

#[test]
fn published_vectors_match_the_lock() {
    let root = repo_root();
    let mut problems = Vec::new();
    let lock = read_lock(&root, &mut problems);
    let mut on_disk = BTreeSet::new();
    for dir in CASE_DIRS.into_iter().chain([KEY_DIR]) {
        walk(&root, dir, &mut on_disk, &mut problems);
    }
    for (path, hash) in &lock {
        if !CASE_DIRS
            .into_iter()
            .chain([KEY_DIR])
            .any(|d| path.starts_with(&format!("{d}/")))
        {
            problems.push(format!(
                "{path}: locked, but outside the vector directories"
            ));
            continue;
        }
        match std::fs::read(root.join(path)) {
            Err(e) => problems.push(format!("{path}: locked but unreadable ({e})")),
            Ok(bytes) => {
                let actual = Digest::sha256(&bytes).to_hex();
                if &actual != hash {
                    problems.push(format!("{path}: changed (sha256 {actual}, locked {hash})"));
                }
            }
        }
    }
    for path in &on_disk {
        if !lock.contains_key(path) {
            problems.push(format!("{path}: not in {LOCK} (an unpublished change)"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with the published vectors:\n  {}\n\n{HOW_TO_ADD}",
        problems.len(),
        problems.join("\n  ")
    );
    assert!(lock.len() > 100, "only {} locked files", lock.len());
}

/// One case as found on disk.
struct Case {
    /// `def/NAME` or `pef/NAME`.
    name: String,
    dir: PathBuf,
    category: String,
}

fn known_codes() -> BTreeSet<&'static str> {
    Code::ALL.iter().map(|c| c.as_str()).collect()
}

/// Checks one case folder and runs it; returns what is wrong, if anything.
fn run_case(case: &Case, expected: &Value) -> Result<(), String> {
    let field = |k: &str| expected.get(k).ok_or(format!("expected.json has no `{k}`"));
    let verdict = field("verdict")?
        .as_str()
        .ok_or("`verdict` is not a string")?;
    let codes: Vec<&str> = field("codes")?
        .as_array()
        .ok_or("`codes` is not an array")?
        .iter()
        .map(|c| c.as_str().ok_or("a code is not a string"))
        .collect::<Result<_, _>>()?;
    let verify_at = field("verify_at")?
        .as_str()
        .ok_or("`verify_at` is not a string")?;
    let threshold = field("threshold")?
        .as_u64()
        .filter(|t| *t >= 1)
        .ok_or("`threshold` is not an integer >= 1")?;
    let artifacts = match field("artifacts")? {
        Value::Null => None,
        Value::String(s) if s == "artifacts" => Some(case.dir.join("artifacts")),
        other => return Err(format!("`artifacts` is {other}, not null or \"artifacts\"")),
    };
    field("description")?
        .as_str()
        .filter(|d| !d.is_empty())
        .ok_or("`description` is empty")?;
    let allowed: BTreeSet<&str> = [
        "verdict",
        "codes",
        "verify_at",
        "threshold",
        "artifacts",
        "category",
        "description",
    ]
    .into();
    for k in expected
        .as_object()
        .ok_or("expected.json is not an object")?
        .keys()
    {
        if !allowed.contains(k.as_str()) {
            return Err(format!("expected.json has an unknown member `{k}`"));
        }
    }

    // The folder's shape and naming.
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted != codes {
        return Err(format!("`codes` {codes:?} is not sorted and unique"));
    }
    let known = known_codes();
    if let Some(c) = codes.iter().find(|c| !known.contains(*c)) {
        return Err(format!("unknown code `{c}`"));
    }
    let errors = codes.iter().any(|c| c.starts_with("E_"));
    let want_verdict = if errors { "invalid" } else { "valid" };
    if verdict != want_verdict {
        return Err(format!("verdict `{verdict}` with codes {codes:?}"));
    }
    if case.name.ends_with("_fail") != errors {
        return Err("a case is named `_fail` exactly when its verdict is invalid".into());
    }
    if (case.category == "valid") == errors {
        return Err(format!(
            "category `{}` with verdict `{verdict}`",
            case.category
        ));
    }
    let zip = case.dir.join("bundle.zip");
    let dir = case.dir.join("bundle");
    let bundle = match (zip.is_file(), dir.is_dir()) {
        (true, false) => zip,
        (false, true) => dir,
        _ => return Err("the case needs exactly one of bundle.zip and bundle/".into()),
    };
    for required in ["trust.json", "README.md"] {
        if !case.dir.join(required).is_file() {
            return Err(format!("no {required}"));
        }
    }
    if artifacts.is_some() != case.dir.join("artifacts").is_dir() {
        return Err("`artifacts` must be \"artifacts\" exactly when artifacts/ exists".into());
    }
    for item in std::fs::read_dir(&case.dir).unwrap() {
        let name = item.unwrap().file_name().into_string().unwrap();
        let known = [
            "bundle.zip",
            "bundle",
            "trust.json",
            "expected.json",
            "README.md",
            "artifacts",
        ];
        if !known.contains(&name.as_str()) {
            return Err(format!("unexpected `{name}` in the case folder"));
        }
    }

    // The run.
    let trust = TrustStore::read_file(&case.dir.join("trust.json"))
        .map_err(|e| format!("trust.json: {e}"))?;
    let at = verify_at
        .parse()
        .map_err(|e| format!("`verify_at` `{verify_at}`: {e}"))?;
    let mut options = VerifyOptions::new(&trust, at);
    options.threshold = threshold as usize;
    options.artifacts_dir = artifacts.as_deref();
    let report = verify_path(&bundle, &options).map_err(|e| format!("verification error: {e}"))?;
    let got: BTreeSet<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    let want: BTreeSet<&str> = codes.iter().copied().collect();
    let got_verdict = if report.is_valid() {
        "valid"
    } else {
        "invalid"
    };
    if got != want || got_verdict != verdict {
        let findings: Vec<String> = report
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{} at {}: {}",
                    f.code,
                    f.path.as_deref().unwrap_or("-"),
                    f.message
                )
            })
            .collect();
        return Err(format!(
            "expected {verdict} {want:?}, got {got_verdict} {got:?}\n      {}",
            findings.join("\n      ")
        ));
    }
    Ok(())
}

/// `spec/test-vectors-superseded.txt`: cases a current verifier skips, each with its replacement.
fn superseded(root: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root.join("spec/test-vectors-superseded.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split('\t');
            let case = parts.next().unwrap().to_owned();
            let by = parts
                .next()
                .expect("CASE<TAB>REPLACED-BY<TAB>why")
                .to_owned();
            assert!(
                parts.next().is_some_and(|why| !why.is_empty()),
                "{l}: no reason"
            );
            (case, by)
        })
        .collect()
}

fn cases(root: &Path) -> Vec<Case> {
    let superseded = superseded(root);
    for (case, by) in &superseded {
        for name in [case, by] {
            let (format, name) = name.split_once('/').unwrap();
            assert!(
                root.join("spec")
                    .join(format)
                    .join("test-vectors")
                    .join(name)
                    .is_dir(),
                "superseded list names `{format}/{name}`, which does not exist"
            );
        }
    }
    let mut out = Vec::new();
    for dir in CASE_DIRS {
        let format = dir.split('/').nth(1).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        names.sort();
        for name in names {
            let dir = root.join(dir).join(&name);
            let category = std::fs::read(dir.join("expected.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v.get("category").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            if superseded.contains_key(&format!("{format}/{name}")) {
                continue;
            }
            out.push(Case {
                name: format!("{format}/{name}"),
                dir,
                category,
            });
        }
    }
    out
}

#[test]
fn every_case_verifies_as_expected() {
    let root = repo_root();
    let cases = cases(&root);
    let mut failures = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut valid_formats = BTreeSet::new();
    for case in &cases {
        let expected = std::fs::read(case.dir.join("expected.json"))
            .map_err(|e| format!("expected.json: {e}"))
            .and_then(|b| {
                serde_json::from_slice::<Value>(&b).map_err(|e| format!("expected.json: {e}"))
            });
        let result = expected.and_then(|e| run_case(case, &e));
        match result {
            Ok(()) => {
                *counts.entry(case.category.clone()).or_default() += 1;
                if case.category == "valid" {
                    valid_formats.insert(case.name.split('/').next().unwrap().to_owned());
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vector cases failed:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
    let count = |c: &str| counts.get(c).copied().unwrap_or(0);
    assert!(count("valid") >= 6, "valid cases: {counts:?}");
    assert!(count("forged") >= 12, "forged cases: {counts:?}");
    assert!(count("negative") >= 10, "negative cases: {counts:?}");
    assert_eq!(
        count("valid") + count("forged") + count("negative"),
        cases.len(),
        "every case has category valid, forged or negative: {counts:?}"
    );
    assert_eq!(
        valid_formats,
        BTreeSet::from(["def".to_owned(), "pef".to_owned()]),
        "valid cases cover DEF and PEF"
    );
}
