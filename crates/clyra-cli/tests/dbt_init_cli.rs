//! `clyra dbt init` end to end on a copy of a realistic dbt project (tests/fixtures/dbt_init/shop):
//! what it writes, byte for byte; a second run changes nothing; --dry-run writes nothing; modes
//! of the key and its directory; the starter policy lints; refusals write nothing; and the real,
//! pinned dbt (`make dbt-venv`) accepts the edited project (`dbt deps`, `dbt parse`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use support::fs::copy_dir;

fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// A fresh copy of the fixture project.
fn shop() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    copy_dir(
        &repo().join("crates/clyra-cli/tests/fixtures/dbt_init/shop"),
        &dir,
        &[],
    );
    (tmp, dir)
}

/// Every file under `dir` (symlinks not followed) with its bytes and mode.
fn tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt as _;
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, u32)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (Vec::new(), mode));
                walk(root, &p, out);
            } else {
                out.insert(rel, (std::fs::read(&p).unwrap_or_default(), mode));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn init(dir: &Path) -> Value {
    let out = clyra()
        .args(["--format", "json", "dbt", "init", "--project-dir"])
        .arg(dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    json_of(&out)
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

const START: &str = "\"{{ clyra_guard.on_run_start() }}\"";
const END: &str = "\"{{ clyra_guard.on_run_end(results) }}\"";

#[test]
fn init_edits_the_project_exactly_and_a_second_run_changes_nothing() {
    let (_tmp, dir) = shop();
    let original_project = read(&dir, "dbt_project.yml");
    let original_packages = read(&dir, "packages.yml");
    let doc = init(&dir);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["project"], "shop");
    assert_eq!(doc["keyid"].as_str().unwrap().len(), 64);

    // dbt_project.yml: the single on-run-end string became a list, on-run-start was added after
    // it; every other byte is where it was.
    let expected = original_project.replace(
        "on-run-end: \"{{ grant_select_on_marts() }}\"\n",
        &format!(
            "on-run-end:\n  - \"{{{{ grant_select_on_marts() }}}}\"\n  - {END}\non-run-start:\n  - {START}\n"
        ),
    );
    assert_ne!(expected, original_project);
    assert_eq!(read(&dir, "dbt_project.yml"), expected);
    assert_eq!(
        read(&dir, "packages.yml"),
        format!("{original_packages}  - local: .clyra/dbt/clyra_guard\n")
    );
    assert_eq!(
        read(&dir, ".gitignore"),
        "# Clyra: the signing key and per-run scratch files (added by clyra dbt init)\n.clyra/keys/\n.clyra/runs/\n"
    );
    // The package, byte for byte as in the repository.
    let pkg = repo().join("dbt/clyra_guard");
    assert_eq!(
        std::fs::read(dir.join(".clyra/dbt/clyra_guard/dbt_project.yml")).unwrap(),
        std::fs::read(pkg.join("dbt_project.yml")).unwrap()
    );
    // Each change is reported.
    let steps = doc["steps"].as_array().unwrap();
    let step = |path: &str| {
        steps
            .iter()
            .find(|s| s["path"] == path)
            .unwrap_or_else(|| panic!("no step for {path}: {doc:#}"))
    };
    assert_eq!(step("dbt_project.yml")["action"], "update");
    let what = step("dbt_project.yml")["what"].to_string();
    assert!(
        what.contains("on-run-start") && what.contains("on-run-end"),
        "{what}"
    );
    assert_eq!(step("packages.yml")["action"], "update");
    assert_eq!(step(".clyra/policy.yaml")["action"], "create");
    assert_eq!(step(".clyra/keys/clyra.key")["action"], "create");
    assert_eq!(step(".clyra/trust.json")["action"], "create");
    assert_eq!(step(".gitignore")["action"], "create");
    assert!(step("dbt_project.yml")["diff"]
        .as_str()
        .unwrap()
        .contains(&format!("+  - {START}\n")));

    // Second run: nothing changes, and it says so.
    let before = tree(&dir);
    let again = init(&dir);
    assert_eq!(again["changed"], false, "{again:#}");
    assert!(again["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["action"] == "unchanged"));
    assert_eq!(tree(&dir), before);
    clyra()
        .args(["dbt", "init", "--project-dir"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "nothing to change: the project is already set up for Clyra.",
        ));
    assert_eq!(tree(&dir), before);
}

#[test]
fn dry_run_shows_diffs_and_writes_nothing() {
    let (_tmp, dir) = shop();
    let before = tree(&dir);
    let out = clyra()
        .args(["dbt", "init", "--dry-run", "--project-dir"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(tree(&dir), before, "dry run wrote something");
    for want in [
        "(dry run: nothing is written)",
        "would update  dbt_project.yml",
        "would create  .clyra/keys/clyra.key",
        "--- a/dbt_project.yml\n+++ b/dbt_project.yml\n",
        "-on-run-end: \"{{ grant_select_on_marts() }}\"\n+on-run-end:\n+  - \"{{ grant_select_on_marts() }}\"\n",
        "--- a/packages.yml\n",
        "+  - local: .clyra/dbt/clyra_guard\n",
        "--- /dev/null\n+++ b/.gitignore\n",
        "run without --dry-run to make these changes.",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // JSON too, with the same diffs; still nothing written.
    let doc = json_of(
        &clyra()
            .args([
                "--format",
                "json",
                "dbt",
                "init",
                "--dry-run",
                "--project-dir",
            ])
            .arg(&dir)
            .assert()
            .success()
            .get_output()
            .stdout,
    );
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["changed"], true);
    assert!(doc["keyid"].is_null());
    assert_eq!(tree(&dir), before);
}

#[test]
fn key_is_0600_in_a_0700_directory_and_trusted() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_tmp, dir) = shop();
    let doc = init(&dir);
    let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(".clyra/keys/clyra.key"), 0o600);
    assert_eq!(mode(".clyra/keys"), 0o700);
    let keyid = doc["keyid"].as_str().unwrap();
    let shown = json_of(
        &clyra()
            .args(["--format", "json", "keys", "show"])
            .arg(dir.join(".clyra/keys/clyra.pub"))
            .assert()
            .success()
            .get_output()
            .stdout,
    );
    assert_eq!(shown["keyid"], keyid);
    let trust: Value = serde_json::from_str(&read(&dir, ".clyra/trust.json")).unwrap();
    assert_eq!(trust["keys"][0]["keyid"], keyid);
    assert_eq!(trust["keys"][0]["name"], "clyra dbt init: shop");
}

#[test]
fn starter_policy_lints_clean() {
    let (_tmp, dir) = shop();
    init(&dir);
    let policy = dir.join(".clyra/policy.yaml");
    clyra()
        .args(["policy", "lint"])
        .arg(&policy)
        .assert()
        .success()
        .stdout(predicate::str::contains("policy.yaml: ok"))
        .stderr(predicate::str::is_empty());
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(text
        .contains("warehouse_guard:\n    max_rows_affected: 5000\n    max_percent_affected: 10\n"));
    assert!(text.contains("  name: dbt-shop\n"));
}

#[test]
fn existing_policy_key_and_trust_are_kept() {
    let (_tmp, dir) = shop();
    std::fs::create_dir_all(dir.join(".clyra")).unwrap();
    let mine = "version: 4\nmetadata:\n  name: mine\n  version: '1'\n  owners: [me@acme.example]\n";
    std::fs::write(dir.join(".clyra/policy.yaml"), mine).unwrap();
    clyra()
        .args(["keys", "generate", "--out"])
        .arg(dir.join(".clyra/keys"))
        .args(["--name", "clyra"])
        .assert()
        .success();
    let key = std::fs::read(dir.join(".clyra/keys/clyra.key")).unwrap();
    std::fs::write(
        dir.join(".clyra/trust.json"),
        "{\"version\": 1, \"keys\": []}\n",
    )
    .unwrap();
    let doc = init(&dir);
    let steps = doc["steps"].as_array().unwrap();
    for p in [
        ".clyra/policy.yaml",
        ".clyra/keys/clyra.key",
        ".clyra/trust.json",
    ] {
        let s = steps.iter().find(|s| s["path"] == p).unwrap();
        assert_eq!(s["action"], "unchanged", "{p}");
    }
    assert_eq!(read(&dir, ".clyra/policy.yaml"), mine);
    assert_eq!(
        std::fs::read(dir.join(".clyra/keys/clyra.key")).unwrap(),
        key
    );
    assert_eq!(
        read(&dir, ".clyra/trust.json"),
        "{\"version\": 1, \"keys\": []}\n"
    );
    // The kept trust file does not trust the key: said, not fixed.
    let warnings = doc["warnings"].to_string();
    assert!(
        warnings.contains("does not trust .clyra/keys/clyra.key")
            && warnings
                .contains("clyra keys trust add --trust .clyra/trust.json .clyra/keys/clyra.pub"),
        "{warnings}"
    );
}

#[test]
fn an_upgrade_rewrites_changed_package_files_and_leaves_others() {
    let (_tmp, dir) = shop();
    init(&dir);
    let installed = dir.join(".clyra/dbt/clyra_guard/dbt_project.yml");
    let good = std::fs::read(&installed).unwrap();
    std::fs::write(&installed, b"name: clyra_guard\nversion: \"0.0.1\"\n").unwrap();
    let extra = dir.join(".clyra/dbt/clyra_guard/macros/my_own.sql");
    std::fs::create_dir_all(extra.parent().unwrap()).unwrap();
    std::fs::write(&extra, "{% macro mine() %}{% endmacro %}\n").unwrap();
    let doc = init(&dir);
    let step = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == ".clyra/dbt/clyra_guard/dbt_project.yml")
        .unwrap()
        .clone();
    assert_eq!(step["action"], "update");
    assert_eq!(std::fs::read(&installed).unwrap(), good);
    assert_eq!(
        std::fs::read_to_string(&extra).unwrap(),
        "{% macro mine() %}{% endmacro %}\n"
    );
    assert!(
        doc["warnings"].to_string().contains("macros/my_own.sql"),
        "{doc:#}"
    );
}

#[test]
fn a_file_it_cannot_edit_stops_everything_and_says_what_to_add() {
    let (_tmp, dir) = shop();
    let project = read(&dir, "dbt_project.yml").replace(
        "on-run-end: \"{{ grant_select_on_marts() }}\"",
        "grants: &grants [\"{{ grant_select_on_marts() }}\"]\non-run-end: *grants",
    );
    std::fs::write(dir.join("dbt_project.yml"), &project).unwrap();
    let before = tree(&dir);
    let line = project
        .lines()
        .position(|l| l.starts_with("on-run-end:"))
        .unwrap()
        + 1;
    clyra()
        .args(["dbt", "init", "--project-dir"])
        .arg(&dir)
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(format!(
            "dbt_project.yml` safely (line {line}): `on-run-end` is an alias"
        )))
        .stderr(predicate::str::contains("nothing was written"))
        .stderr(predicate::str::contains(format!(
            "  on-run-start:\n    - {START}\n  on-run-end:\n    - {END}\n"
        )));
    assert_eq!(tree(&dir), before);
    let doc = json_of(
        &clyra()
            .args(["--format", "json", "dbt", "init", "--project-dir"])
            .arg(&dir)
            .assert()
            .code(1)
            .get_output()
            .stdout,
    );
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["refused"]["line"], line);
    assert!(doc["refused"]["add_by_hand"]
        .as_str()
        .unwrap()
        .contains(START));
    assert_eq!(tree(&dir), before);
}

#[test]
fn not_a_dbt_project() {
    let tmp = tempfile::tempdir().unwrap();
    clyra()
        .args(["dbt", "init", "--project-dir"])
        .arg(tmp.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "is not a dbt project: it has no dbt_project.yml",
        ));
}

#[test]
fn dependencies_yml_is_used_when_it_holds_the_packages() {
    let (_tmp, dir) = shop();
    std::fs::rename(dir.join("packages.yml"), dir.join("dependencies.yml")).unwrap();
    let doc = init(&dir);
    assert!(!dir.join("packages.yml").exists());
    assert!(read(&dir, "dependencies.yml").ends_with("  - local: .clyra/dbt/clyra_guard\n"));
    assert!(doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["path"] == "dependencies.yml" && s["action"] == "update"));
}

#[test]
fn help_has_a_working_example() {
    clyra()
        .args(["dbt", "init", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "clyra dbt init --project-dir jaffle_shop --dry-run",
        ))
        .stdout(predicate::str::contains("--dry-run"));
}

// ---------------------------------------------------------------------------------------------
// The real dbt.

fn dbt() -> PathBuf {
    let dbt = repo().join(".venv-dbt/bin/dbt");
    assert!(
        dbt.exists(),
        "{} is missing: run `make dbt-venv` (pinned dbt-postgres 1.11.0 / dbt-core 1.11.16)",
        dbt.display()
    );
    dbt
}

fn run_dbt(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new(dbt())
        .args(args)
        .arg("--profiles-dir")
        .arg(dir)
        .current_dir(dir)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DO_NOT_TRACK", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dbt {args:?} failed in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pinned dbt reads the files init edited: `dbt deps` installs the local package, `dbt parse`
/// registers the hooks. Once for the fixture as it is and once with CRLF line endings.
#[test]
fn real_dbt_accepts_the_initialised_project() {
    dbt();
    for crlf in [false, true] {
        let (_tmp, dir) = shop();
        if crlf {
            for f in ["dbt_project.yml", "packages.yml"] {
                let t = read(&dir, f).replace('\n', "\r\n");
                std::fs::write(dir.join(f), t).unwrap();
            }
        }
        // dbt parse does not connect; the profile only has to be valid.
        std::fs::write(
            dir.join("profiles.yml"),
            "shop:\n  target: dev\n  outputs:\n    dev: {type: postgres, host: 127.0.0.1, port: 5432, \
             user: postgres, password: '', dbname: test, schema: d_init_shop, threads: 1}\n",
        )
        .unwrap();
        init(&dir);
        if crlf {
            assert!(!read(&dir, "dbt_project.yml")
                .replace("\r\n", "")
                .contains('\n'));
        }
        run_dbt(&dir, &["deps"]);
        assert!(dir
            .join("dbt_packages/clyra_guard/dbt_project.yml")
            .exists());
        run_dbt(&dir, &["parse"]);
        let manifest: Value = serde_json::from_str(&read(&dir, "target/manifest.json")).unwrap();
        let mut hooks: Vec<(String, String)> = manifest["nodes"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, n)| n["resource_type"] == "operation")
            .map(|(k, n)| (k.clone(), n["raw_code"].as_str().unwrap().to_owned()))
            .collect();
        hooks.sort();
        assert_eq!(
            hooks,
            vec![
                (
                    "operation.shop.shop-on-run-end-0".to_owned(),
                    "{{ grant_select_on_marts() }}".to_owned()
                ),
                (
                    "operation.shop.shop-on-run-end-1".to_owned(),
                    "{{ clyra_guard.on_run_end(results) }}".to_owned()
                ),
                (
                    "operation.shop.shop-on-run-start-0".to_owned(),
                    "{{ clyra_guard.on_run_start() }}".to_owned()
                ),
            ]
        );
        // Once the package has its hook macros (dbt/clyra_guard/macros), dbt must see them.
        let has_macros = std::fs::read_dir(repo().join("dbt/clyra_guard/macros"))
            .map(|rd| {
                rd.flatten().any(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .contains("macro on_run_start")
                })
            })
            .unwrap_or(false);
        if has_macros {
            for m in [
                "macro.clyra_guard.on_run_start",
                "macro.clyra_guard.on_run_end",
            ] {
                assert!(manifest["macros"].get(m).is_some(), "dbt did not load {m}");
            }
        }
    }
}
