//! `clyra run` as a process wrapper: exit codes, environment, signal forwarding and escalation,
//! and a sealed, verifiable bundle on every exit path. The wrapped commands here are small shell
//! scripts (real processes, real signals); the dbt runs themselves are in `dbt_run_cli.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::Value;

mod support;

use support::evidence::{clyra, only_bundle, workspace};

fn clyra_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("clyra")
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The run's `dbt.run.finished` body, from its verified bundle.
fn finished_entry(dir: &Path) -> Value {
    let v = only_bundle(dir);
    v.bodies("dbt.run.finished")
        .into_iter()
        .chain(v.bodies("clyra.run.finished"))
        .next()
        .unwrap_or_else(|| panic!("no finished entry in {:?}", v.entries))
}

fn verified_predicate(dir: &Path) -> Value {
    only_bundle(dir).predicate
}

#[test]
fn refuses_to_run_without_a_key_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let s = script(
        dir.path(),
        "fake-dbt",
        &format!("touch {}", marker.display()),
    );
    clyra()
        .current_dir(dir.path())
        .args(["run", "--"])
        .arg(&s)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("clyra dbt init"));
    assert!(
        !marker.exists(),
        "nothing may run without a way to seal evidence"
    );
}

#[test]
fn passes_the_exit_code_through_and_seals_a_failed_run() {
    let dir = workspace();
    let env_file = dir.path().join("env.txt");
    let s = script(
        dir.path(),
        "fake-dbt",
        &format!(
            "echo \"$CLYRA_RUN_ID|$DBT_TARGET_PATH|$DBT_LOG_PATH|$DBT_LOG_FORMAT_FILE\" > {}\nexit 1",
            env_file.display()
        ),
    );
    let out = clyra()
        .current_dir(dir.path())
        .args(["--format", "json", "run", "--"])
        .arg(&s)
        .arg("build")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["dbt_exit_code"], 1);
    assert_eq!(summary["status"], "error");
    let env = std::fs::read_to_string(&env_file).unwrap();
    let parts: Vec<&str> = env.trim().split('|').collect();
    let run_id = summary["run_id"].as_str().unwrap();
    assert_eq!(parts[0], run_id);
    assert!(
        parts[1].ends_with(&format!(".clyra/runs/{run_id}/target")),
        "{env}"
    );
    assert!(
        parts[2].ends_with(&format!(".clyra/runs/{run_id}/logs")),
        "{env}"
    );
    assert_eq!(parts[3], "json");
    let p = verified_predicate(dir.path());
    assert_eq!(p["run"]["status"], "error", "{p:#}");
    assert_eq!(p["run"]["run_id"], run_id);
}

#[test]
fn a_command_that_cannot_start_still_leaves_evidence() {
    let dir = workspace();
    clyra()
        .current_dir(dir.path())
        .args(["run", "--", "/nonexistent/dbt", "build"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot start"));
    let p = verified_predicate(dir.path());
    assert_eq!(p["run"]["status"], "error");
}

#[test]
fn an_unreachable_warehouse_stops_before_anything_runs() {
    let dir = workspace();
    let marker = dir.path().join("ran");
    let s = script(
        dir.path(),
        "fake-dbt",
        &format!("touch {}", marker.display()),
    );
    clyra()
        .current_dir(dir.path())
        .args([
            "run",
            "--dsn",
            "postgres://nobody:secret@127.0.0.1:1/none",
            "--",
        ])
        .arg(&s)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing was run"))
        .stderr(predicate::str::contains("secret").not());
    assert!(!marker.exists());
}

/// Starts `clyra run` on a script that writes `ready` when it has set its traps.
fn start(dir: &Path, body: &str, extra: &[&str], ignore_sigint: bool) -> std::process::Child {
    let ready = dir.join("ready");
    let s = script(
        dir,
        "fake-dbt",
        &format!("touch {}\n{body}", ready.display()),
    );
    let mut cmd = if ignore_sigint {
        // As a background job of a non-interactive shell: SIGINT ignored on entry.
        let mut c = StdCommand::new("/bin/sh");
        c.arg("-c")
            .arg("trap '' INT; exec \"$@\"")
            .arg("sh")
            .arg(clyra_path());
        c
    } else {
        StdCommand::new(clyra_path())
    };
    cmd.current_dir(dir)
        .args(["--format", "json", "run"])
        .args(extra)
        .arg("--")
        .arg(&s)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    while !ready.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the script never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn kill(pid: u32, sig: &str) {
    let st = StdCommand::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sigterm_reaches_dbt_as_sigint_and_the_run_is_sealed_as_cancelled() {
    let dir = workspace();
    let got = dir.path().join("got");
    let child = start(
        dir.path(),
        &format!(
            "trap 'echo INT > {g}; exit 2' INT\ntrap 'echo TERM > {g}; exit 3' TERM\nwhile :; do sleep 0.05; done",
            g = got.display()
        ),
        &[],
        false,
    );
    kill(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&got).unwrap().trim(), "INT");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["dbt_exit_code"], 2);
    let p = verified_predicate(dir.path());
    assert_eq!(p["run"]["status"], "cancelled", "{p:#}");
    let fin = finished_entry(dir.path());
    assert_eq!(fin["signal"], "SIGTERM");
    assert_eq!(fin["escalation"].as_array().unwrap().len(), 1, "{fin:#}");
}

#[test]
fn a_command_that_ignores_interrupts_is_terminated_then_killed() {
    let dir = workspace();
    let child = start(
        dir.path(),
        "trap '' INT TERM\nwhile :; do sleep 0.05; done",
        &["--grace", "1"],
        false,
    );
    let t0 = Instant::now();
    kill(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "SIGKILL comes after two grace periods"
    );
    let fin = finished_entry(dir.path());
    let steps: Vec<String> = fin["escalation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps[2].contains("SIGKILL"), "{steps:?}");
    assert_eq!(fin["signal"], "SIGINT");
    verified_predicate(dir.path());
}

#[test]
fn dbt_gets_a_working_sigint_even_when_clyra_started_with_it_ignored() {
    let dir = workspace();
    // `sleep` keeps the default SIGINT action unless it inherited an ignored one.
    let child = start(dir.path(), "exec sleep 30", &["--grace", "20"], true);
    let t0 = Instant::now();
    kill(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "the forwarded SIGINT must stop the command, not the escalation"
    );
    let fin = finished_entry(dir.path());
    assert_eq!(fin["escalation"].as_array().unwrap().len(), 1, "{fin:#}");
}
