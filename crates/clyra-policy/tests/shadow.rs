//! Shadow mode changes what is enforced, never what is found.
//!
//! For a corpus of actions, one policy is run in enforce mode and in shadow mode (the whole
//! policy, each section, each rule). Findings (ids, sources, sections, verdicts, counting,
//! overrides, errors, reasons), obligations, rule ids, reasons and the evaluated verdict must be
//! identical; only the effective verdict, the decision's mode and the modes of findings and
//! obligations may differ.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clyra_policy::decide::{Action, Decision, Engine, Obligation};
use clyra_policy::model::{Mode, Policy, Verdict};
use serde_json::{json, Value};

fn base_policy() -> Value {
    json!({
        "version": 4,
        "metadata": {"name": "shadow-corpus", "version": "1", "owners": ["sec@acme.example"]},
        "defaults": {"verdict": "allow"},
        "rules": [
            {"id": "deny-drop", "match": {"kind": "warehouse.ddl"}, "when": "payload.sql.startsWith('DROP')", "verdict": "block"},
            {"id": "allow-dbt", "match": {"actor": "service:dbt"}, "verdict": "allow"}
        ],
        "data_platform": {
            "warehouse_guard": {"protected_schemas": ["finance", "pii_*"], "max_rows_affected": 1000, "max_percent_affected": 20, "checkpoint": "dba"},
            "activation": [{"destination": "salesforce.*", "max_records": 5000, "approval_above": 1000, "checkpoint": "revops"}],
            "rules": [
                {"id": "mask-email", "match": {"kind": "activation.*"}, "when": "has(payload.email)", "verdict": "repair",
                 "patch": [{"op": "replace", "path": "/email", "value": "redacted"}]}
            ]
        },
        "genai_security": {
            "detectors": {"prompt_injection": {"threshold": 0.7}, "pii": {"action": "require_approval", "checkpoint": "privacy"}, "secrets": {"on_error": "fail_open"}},
            "rules": [
                {"id": "agent-sql-writes", "match": {"kind": "tool.call", "tool": "sql.*"}, "when": "payload.statement != 'select'", "verdict": "require_approval", "checkpoint": "dba"},
                {"id": "broken-condition", "match": {"tool": "http.*"}, "when": "payload.url.size() > 0", "verdict": "block"}
            ]
        },
        "voice_compliance": {
            "rules": [{"id": "quiet-hours", "match": {"kind": "voice.call"}, "when": "now >= '2026-03-01T21:00:00Z'", "verdict": "block"}]
        },
        "enforcement": {
            "rate_limits": [{"id": "per-actor", "scope": "actor", "limit": 100, "window": "1m"}],
            "rules": [{"id": "allow-reads", "match": {"kind": "warehouse.dml"}, "when": "warehouse.statement == 'select'", "verdict": "allow"}]
        },
        "approvals": {"checkpoints": [
            {"id": "dba", "approvers": ["user:*@acme.example"], "two_person": true},
            {"id": "revops", "approvers": ["user:revops@acme.example"]},
            {"id": "privacy", "approvers": ["user:dpo@acme.example"]}
        ]}
    })
}

fn corpus() -> Vec<Action> {
    let mut out = Vec::new();
    let actors = ["service:dbt", "agent:copilot", "user:alice@acme.example"];
    for actor in actors {
        for schema in ["finance", "pii_eu", "analytics"] {
            for (statement, rows, table) in [
                ("select", 10, 100),
                ("update", 5000, 1_000_000),
                ("delete", 50, 100),
                ("insert", 1, 0),
            ] {
                out.push(json!({"kind": "warehouse.dml", "tenant": "acme", "actor": actor,
                    "warehouse": {"schema": schema, "table": "t", "statement": statement, "rows_affected": rows, "table_rows": table}}));
            }
        }
        for sql in ["DROP TABLE x", "CREATE TABLE y (a int)"] {
            out.push(json!({"kind": "warehouse.ddl", "tenant": "acme", "actor": actor, "payload": {"sql": sql}}));
        }
        for records in [10, 2000, 9000] {
            out.push(json!({"kind": "activation.sync", "tenant": "acme", "actor": actor,
                "activation": {"destination": "salesforce.contacts", "records": records}, "payload": {"email": "a@b.c"}}));
        }
        for (tool, payload) in [
            ("sql.query", json!({"statement": "select"})),
            ("sql.query", json!({"statement": "update"})),
            ("sql.query", json!({})),
            ("http.get", json!({"url": "https://x"})),
            ("http.get", json!({})),
        ] {
            for detections in [
                json!({}),
                json!({"prompt_injection": {"score": 0.9}}),
                json!({"pii": {"score": 0.6}, "secrets": {"error": "down"}}),
                json!({"prompt_injection": {"error": "timeout"}}),
            ] {
                out.push(
                    json!({"kind": "tool.call", "tenant": "acme", "actor": actor, "tool": tool,
                    "payload": payload, "detections": detections}),
                );
            }
        }
        for time in ["2026-03-01T10:00:00Z", "2026-03-01T22:00:00Z"] {
            out.push(json!({"kind": "voice.call", "tenant": "acme", "actor": actor, "time": time}));
        }
    }
    out.into_iter()
        .map(|v| Action::from_value(v).unwrap())
        .collect()
}

fn engine(policy: &Value) -> Engine {
    let p: Policy = serde_json::from_value(policy.clone()).unwrap();
    Engine::new(&p, "sha256:corpus").unwrap()
}

/// Everything a decision says except what modes change.
fn mode_free(d: &Decision) -> Value {
    let mut v = serde_json::to_value(d).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("verdict");
    o.remove("mode");
    for f in o["findings"].as_array_mut().unwrap() {
        f.as_object_mut().unwrap().remove("mode");
    }
    for ob in o["obligations"].as_array_mut().unwrap() {
        ob.as_object_mut().unwrap().remove("mode");
    }
    v
}

/// The shadow variants: the whole policy, each section, each rule.
fn variants() -> Vec<(String, Value)> {
    let base = base_policy();
    let mut out = Vec::new();
    let mut global = base.clone();
    global["mode"] = json!("shadow");
    out.push(("policy".to_owned(), global));
    for section in [
        "data_platform",
        "genai_security",
        "voice_compliance",
        "enforcement",
    ] {
        let mut p = base.clone();
        p[section]["mode"] = json!("shadow");
        out.push((format!("section {section}"), p));
    }
    let mut rule_paths = vec![("rules".to_owned(), base["rules"].as_array().unwrap().len())];
    for section in [
        "data_platform",
        "genai_security",
        "voice_compliance",
        "enforcement",
    ] {
        rule_paths.push((
            section.to_owned(),
            base[section]["rules"].as_array().unwrap().len(),
        ));
    }
    for (path, n) in rule_paths {
        for i in 0..n {
            let mut p = base.clone();
            let rules = if path == "rules" {
                &mut p["rules"]
            } else {
                &mut p[&path]["rules"]
            };
            rules[i]["mode"] = json!("shadow");
            out.push((format!("rule {path}[{i}]"), p));
        }
    }
    out
}

#[test]
fn shadow_changes_only_what_is_enforced() {
    let enforce = engine(&base_policy());
    let actions = corpus();
    assert!(actions.len() > 100, "corpus of {}", actions.len());
    let now: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
    let variants = variants();
    assert_eq!(variants.len(), 1 + 4 + 7);

    let mut verdicts_seen = std::collections::BTreeSet::new();
    let mut shadow_differences = 0;
    for (name, policy) in &variants {
        let shadow = engine(policy);
        for action in &actions {
            let e = enforce.decide_at(action, now);
            let s = shadow.decide_at(action, now);
            verdicts_seen.insert(e.evaluated_verdict);
            assert_eq!(
                mode_free(&e),
                mode_free(&s),
                "variant {name}: findings differ for {}",
                action.as_value()
            );
            // Enforce mode enforces what it evaluates.
            assert_eq!(e.verdict, e.evaluated_verdict);
            assert_eq!(e.mode, Mode::Enforce);
            if s.verdict != e.verdict {
                shadow_differences += 1;
                assert_eq!(s.mode, Mode::Shadow, "variant {name}");
            }
            if name == "policy" {
                assert_eq!(s.verdict, Verdict::Allow, "global shadow enforces nothing");
                assert!(s.findings.iter().all(|f| f.mode == Mode::Shadow));
                assert!(s.obligations.iter().all(|o| o.mode() == Mode::Shadow));
            }
            // The mode of a shadowed obligation is shadow, and only shadowed ones differ.
            for (eo, so) in e.obligations.iter().zip(&s.obligations) {
                assert_eq!(eo.type_name(), so.type_name());
                if let (Obligation::RateLimit { .. }, true) = (eo, name == "section enforcement") {
                    assert_eq!(so.mode(), Mode::Shadow);
                }
            }
        }
    }
    // The corpus exercises every verdict, and shadowing changed some outcomes.
    assert_eq!(verdicts_seen.len(), 4, "{verdicts_seen:?}");
    assert!(shadow_differences > 50, "{shadow_differences}");
}

#[test]
fn shadowing_a_rule_enforces_what_the_policy_without_it_would() {
    // With the rule shadowed, the effective verdict equals the verdict of the policy with the
    // rule removed (for rules that are not allow rules overriding built-ins, the same holds too).
    let now: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
    let base = base_policy();
    let actions = corpus();
    for (path, index) in [
        ("rules", 0),
        ("rules", 1),
        ("data_platform", 0),
        ("genai_security", 0),
        ("genai_security", 1),
        ("voice_compliance", 0),
        ("enforcement", 0),
    ] {
        let mut shadowed = base.clone();
        let mut removed = base.clone();
        if path == "rules" {
            shadowed["rules"][index]["mode"] = json!("shadow");
            removed["rules"].as_array_mut().unwrap().remove(index);
        } else {
            shadowed[path]["rules"][index]["mode"] = json!("shadow");
            removed[path]["rules"].as_array_mut().unwrap().remove(index);
        }
        let (s, r) = (engine(&shadowed), engine(&removed));
        for action in &actions {
            assert_eq!(
                s.decide_at(action, now).verdict,
                r.decide_at(action, now).verdict,
                "{path}[{index}] on {}",
                action.as_value()
            );
        }
    }
}
