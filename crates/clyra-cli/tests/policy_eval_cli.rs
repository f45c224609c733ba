//! `clyra policy test` and `clyra policy explain` end to end, on the sample policy in
//! `examples/policy/` and on broken inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{json, Value};

fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policy")
        .join(name)
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn write(dir: &tempfile::TempDir, name: &str, v: &Value) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

#[test]
fn the_example_cases_pass() {
    clyra()
        .args(["policy", "test"])
        .arg(example("guard.json"))
        .arg(example("guard.cases.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ok    a mass delete needs two DBAs",
        ))
        .stdout(predicate::str::contains("14 cases: 14 passed, 0 failed"));
}

#[test]
fn failing_cases_show_what_differed_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        &dir,
        "cases.json",
        &json!({"cases": [
            {"name": "passes", "action": {"kind": "tool.call", "tenant": "acme"}, "expect": {"verdict": "allow"}},
            {"name": "wrong verdict", "action": {"kind": "warehouse.dml", "tenant": "acme",
                "warehouse": {"schema": "finance", "statement": "insert"}},
             "expect": {"verdict": "allow", "rule_ids": [], "obligations": ["approval"]}},
            {"name": "bad action", "action": {"kind": "tool.call"}, "expect": {"verdict": "allow"}}
        ]}),
    );
    clyra()
        .args(["policy", "test"])
        .arg(example("guard.json"))
        .arg(&cases)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("ok    passes"))
        .stdout(predicate::str::contains("FAIL  wrong verdict"))
        .stdout(predicate::str::contains(
            "verdict: expected \"allow\", got \"block\"",
        ))
        .stdout(predicate::str::contains(
            "rule_ids: expected [], got [\"data_platform.warehouse_guard.protected_schemas\"]",
        ))
        .stdout(predicate::str::contains(
            "obligations: expected [\"approval\"], got []",
        ))
        .stdout(predicate::str::contains(
            "invalid action: `tenant` is required (a string) at `/cases/2/action/tenant`",
        ))
        .stdout(predicate::str::contains("3 cases: 1 passed, 2 failed"));

    let out = clyra()
        .args(["--format", "json", "policy", "test"])
        .arg(example("guard.json"))
        .arg(&cases)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report = json_of(&out);
    assert_eq!(report["ok"], false);
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(report["policy_hash"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let wrong = &report["cases"][1];
    assert_eq!(
        wrong["mismatches"][0],
        json!({"field": "verdict", "expected": "allow", "actual": "block"})
    );
    assert_eq!(wrong["decision"]["verdict"], "block");
}

#[test]
fn malformed_cases_files_name_the_pointer() {
    let dir = tempfile::tempdir().unwrap();
    for (doc, message) in [
        (json!({"cases": []}), "no cases at `/cases`"),
        (json!({"tests": []}), "unknown member `tests` at `/tests`"),
        (
            json!({"cases": [{"name": "x", "action": {}, "expect": {"verdict": "blok"}}]}),
            "expected allow, repair, block or require_approval at `/cases/0/expect/verdict`",
        ),
        (
            json!({"cases": [{"name": "x", "action": {}, "expect": {"verdict": "allow", "obligations": ["pay"]}}]}),
            "unknown obligation `pay` at `/cases/0/expect/obligations/0`",
        ),
        (
            json!({"cases": [{"name": "x", "action": {}, "expect": {"verdict": "allow"}},
                             {"name": "x", "action": {}, "expect": {"verdict": "allow"}}]}),
            "duplicate case name `x` at `/cases/1/name`",
        ),
        (
            json!({"cases": [{"name": "x", "action": {}, "now": "noon", "expect": {"verdict": "allow"}}]}),
            "at `/cases/0/now`",
        ),
    ] {
        let f = write(&dir, "c.json", &doc);
        clyra()
            .args(["policy", "test"])
            .arg(example("guard.json"))
            .arg(&f)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("c.json"))
            .stderr(predicate::str::contains(message));
    }
}

#[test]
fn explain_tells_why_and_exits_0_whatever_the_verdict() {
    clyra()
        .args(["policy", "explain"])
        .arg(example("guard.json"))
        .arg(example("mass-delete.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "no         dbt-service-may-write allow (/rules/0): actor `user:alice@acme.example` matches none of `service:dbt`",
        ))
        .stdout(predicate::str::contains(
            "yes        data_platform.warehouse_guard.max_percent_affected (require_approval): delete affects 25% of the table's rows, more than 20%",
        ))
        .stdout(predicate::str::contains("decision require_approval"))
        .stdout(predicate::str::contains(
            "obligation approval: checkpoint dba by user:*@dba.acme.example, two persons",
        ));

    // A blocked action: still exit 0, with the override and the shadow rule explained.
    let dir = tempfile::tempdir().unwrap();
    let action = write(
        &dir,
        "dbt.json",
        &json!({"kind": "warehouse.dml", "tenant": "acme", "actor": "service:dbt",
                "warehouse": {"schema": "finance", "statement": "insert", "rows_affected": 1}}),
    );
    clyra()
        .args(["policy", "explain"])
        .arg(example("guard.json"))
        .arg(&action)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "overridden data_platform.warehouse_guard.protected_schemas (block): schema `finance` is protected (`finance`); overridden by allow rule `dbt-service-may-write`",
        ))
        .stdout(predicate::str::contains("decision allow"));

    let call = write(
        &dir,
        "call.json",
        &json!({"kind": "voice.call", "tenant": "acme", "actor": "agent:voice"}),
    );
    clyra()
        .args(["policy", "explain", "--now", "2026-03-01T22:00:00Z"])
        .arg(example("guard.json"))
        .arg(&call)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "yes        evening-calls block [shadow] (/voice_compliance/rules/0): matched, condition true",
        ))
        .stdout(predicate::str::contains(
            "decision allow (shadow: the policy evaluates to block)",
        ));
}

#[test]
fn explain_shows_the_repaired_payload() {
    let dir = tempfile::tempdir().unwrap();
    let action = write(
        &dir,
        "crm.json",
        &json!({"kind": "tool.call", "tenant": "acme", "actor": "user:bob@acme.example", "tool": "crm.update",
                "payload": {"contact": "c-17", "card_number": "4111111111111111"}}),
    );
    clyra()
        .args(["policy", "explain"])
        .arg(example("guard.json"))
        .arg(&action)
        .assert()
        .success()
        .stdout(predicate::str::contains("decision repair"))
        .stdout(predicate::str::contains(
            "repaired payload: {\"card_number\":\"[redacted]\",\"contact\":\"c-17\"}",
        ));
    let out = clyra()
        .args(["--format", "json", "policy", "explain"])
        .arg(example("guard.json"))
        .arg(&action)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        json_of(&out)["repaired_payload"],
        json!({"contact": "c-17", "card_number": "[redacted]"})
    );
}

#[test]
fn explain_json_and_stdin() {
    let action = std::fs::read(example("mass-delete.json")).unwrap();
    let out = clyra()
        .args(["--format", "json", "policy", "explain"])
        .arg(example("guard.json"))
        .arg("-")
        .write_stdin(action)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let x = json_of(&out);
    assert_eq!(x["decision"]["verdict"], "require_approval");
    assert_eq!(x["rules"][0]["outcome"], "no_match");
    assert_eq!(x["rules"][0]["field"], "actor");
    assert_eq!(x["checks"][1]["fired"], true);
    assert_eq!(x["decision"]["time"], "2026-03-01T10:15:00Z");
}

#[test]
fn bad_inputs_exit_1_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    // A broken condition and a bad glob: both reported by the loader, located by line, column
    // and pointer.
    let mut policy: Value =
        serde_json::from_slice(&std::fs::read(example("guard.json")).unwrap()).unwrap();
    policy["rules"][0]["when"] = json!("actor ==");
    policy["data_platform"]["warehouse_guard"]["protected_schemas"][1] = json!("pii_[");
    let bad = write(&dir, "bad.json", &policy);
    clyra()
        .args(["policy", "explain"])
        .arg(&bad)
        .arg(example("mass-delete.json"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("bad.json"))
        .stderr(predicate::str::contains(
            "error[P_BAD_GLOB] /data_platform/warehouse_guard/protected_schemas/1",
        ))
        .stderr(predicate::str::contains(
            "error[P_CEL_COMPILE] /rules/0/when",
        ))
        .stderr(predicate::str::contains("is not a valid policy (2 errors"));

    // An action that is not one.
    let action = write(
        &dir,
        "a.json",
        &json!({"kind": "tool.call", "tenant": "acme", "time": "later"}),
    );
    clyra()
        .args(["policy", "explain"])
        .arg(example("guard.json"))
        .arg(&action)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("a.json"))
        .stderr(predicate::str::contains("at `/time`"));

    // Malformed JSON: line, column and pointer.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"kind\": \"x\",\n \"kind\": \"y\"}").unwrap();
    clyra()
        .args(["policy", "explain"])
        .arg(example("guard.json"))
        .arg(&broken)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "duplicate key `kind` at line 2, column 2 (JSON pointer `/kind`)",
        ));
}

#[test]
fn decide_exits_3_when_held_and_records_the_decision_without_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("journal").display());
    let mut action: Value =
        serde_json::from_slice(&std::fs::read(example("mass-delete.json")).unwrap()).unwrap();
    action["payload"] = json!({"sql": "DELETE FROM orders WHERE note = 'do-not-leak-7f3a'"});
    let held = write(&dir, "held.json", &action);
    let out = clyra()
        .args(["--format", "json", "policy", "decide"])
        .arg(example("guard.json"))
        .arg(&held)
        .args(["--store", &store, "--run", "r-1"])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let doc = json_of(&out);
    assert_eq!(doc["decision"]["verdict"], "require_approval");
    assert_eq!(doc["recorded"]["tenant"], "acme");
    assert_eq!(doc["recorded"]["seq"], 0);

    // A small delete proceeds (exit 0) and is recorded after the first.
    action["warehouse"]["rows_affected"] = json!(5);
    let small = write(&dir, "small.json", &action);
    let out = clyra()
        .args(["--format", "json", "policy", "decide"])
        .arg(example("guard.json"))
        .arg(&small)
        .args(["--store", &store])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_of(&out)["recorded"]["seq"], 1);

    // Both decisions are in the chain, which verifies, and the payload is in neither.
    clyra()
        .args(["journal", "verify", "--store", &store])
        .assert()
        .success();
    let mut stored = Vec::new();
    for entry in walk(dir.path()) {
        stored.extend(std::fs::read(entry).unwrap());
    }
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("policy.decision") && stored.contains("require_approval"));
    assert!(!stored.contains("do-not-leak-7f3a"));
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else if !p.ends_with("held.json") && !p.ends_with("small.json") {
            files.push(p);
        }
    }
    files
}
