#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clyra_evidence::digest::Digest;
use serde_json::{json, Value};

use super::*;
use crate::model::{Mode, Verdict};

const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn policy(extra: Value) -> Policy {
    let mut doc = json!({
        "version": 4,
        "metadata": {"name": "test", "version": "1", "owners": ["sec@acme.example"]}
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    serde_json::from_value(doc).unwrap()
}

fn engine(extra: Value) -> Engine {
    Engine::new(&policy(extra), HASH).unwrap()
}

fn compile_err(extra: Value) -> CompileError {
    Engine::new(&policy(extra), HASH).unwrap_err()
}

fn act(v: Value) -> Action {
    Action::from_value(v).unwrap()
}

fn decide(e: &Engine, v: Value) -> Decision {
    e.decide(&act(v))
}

fn ids(d: &Decision) -> Vec<&str> {
    d.rule_ids.iter().map(String::as_str).collect()
}

fn finding<'a>(d: &'a Decision, id: &str) -> &'a Finding {
    d.findings
        .iter()
        .find(|f| f.rule_id == id)
        .unwrap_or_else(|| panic!("no finding {id} in {d:#?}"))
}

fn dml(schema: &str, statement: &str, rows: u64, table_rows: Option<u64>) -> Value {
    let mut w =
        json!({"schema": schema, "table": "t", "statement": statement, "rows_affected": rows});
    if let Some(t) = table_rows {
        w["table_rows"] = json!(t);
    }
    json!({"kind": "warehouse.dml", "tenant": "acme", "actor": "service:airflow", "warehouse": w})
}

// ----- defaults and rule order -----------------------------------------------------------------

#[test]
fn nothing_matches_gives_the_default_verdict() {
    let e = engine(json!({}));
    let d = decide(&e, json!({"kind": "tool.call", "tenant": "acme"}));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.evaluated_verdict, Verdict::Allow);
    assert_eq!(d.mode, Mode::Enforce);
    assert!(d.findings.is_empty() && d.rule_ids.is_empty() && d.obligations.is_empty());
    assert_eq!(d.policy_hash, HASH);
    assert_eq!(d.action_sha256.len(), 64);

    let e = engine(json!({"defaults": {"verdict": "block"}}));
    let d = decide(&e, json!({"kind": "tool.call", "tenant": "acme"}));
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.evaluated_verdict, Verdict::Block);
}

#[test]
fn an_allow_rule_lifts_a_default_block() {
    let e = engine(json!({
        "defaults": {"verdict": "block"},
        "rules": [{"id": "reads", "match": {"kind": "warehouse.query"}, "verdict": "allow"}]
    }));
    let d = decide(&e, json!({"kind": "warehouse.query", "tenant": "acme"}));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(ids(&d), ["reads"]);
    let d = decide(&e, json!({"kind": "warehouse.dml", "tenant": "acme"}));
    assert_eq!(d.verdict, Verdict::Block);
    assert!(d.rule_ids.is_empty());
}

#[test]
fn every_rule_is_evaluated_in_section_order_and_the_most_severe_wins() {
    let e = engine(json!({
        "rules": [{"id": "r-top", "match": {"kind": "*"}, "verdict": "repair",
                   "patch": [{"op": "add", "path": "/x", "value": 1}]}],
        "enforcement": {"rules": [{"id": "r-enf", "match": {"kind": "*"}, "verdict": "allow"}]},
        "genai_security": {"rules": [{"id": "r-gen", "match": {"kind": "*"}, "verdict": "require_approval", "checkpoint": "c"}]},
        "data_platform": {"rules": [{"id": "r-dp", "match": {"kind": "*"}, "verdict": "block"}]},
        "voice_compliance": {"rules": [{"id": "r-voice", "match": {"kind": "*"}, "verdict": "allow"}]}
    }));
    let d = decide(&e, json!({"kind": "tool.call", "tenant": "acme"}));
    assert_eq!(ids(&d), ["r-top", "r-dp", "r-gen", "r-voice", "r-enf"]);
    assert_eq!(d.verdict, Verdict::Block);
    let sections: Vec<&str> = d.findings.iter().map(|f| f.section.as_str()).collect();
    assert_eq!(
        sections,
        [
            "rules",
            "data_platform",
            "genai_security",
            "voice_compliance",
            "enforcement"
        ]
    );
    assert_eq!(d.reasons[0], "rule `r-top` matched");
}

#[test]
fn severity_order() {
    for (verdicts, expected) in [
        (vec!["allow", "repair"], Verdict::Repair),
        (vec!["repair", "require_approval"], Verdict::RequireApproval),
        (vec!["require_approval", "block", "allow"], Verdict::Block),
        (vec!["allow"], Verdict::Allow),
    ] {
        let rules: Vec<Value> = verdicts
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut r = json!({"id": format!("r{i}"), "match": {"kind": "*"}, "verdict": v});
                if *v == "repair" {
                    r["patch"] = json!([{"op": "remove", "path": "/a"}]);
                }
                r
            })
            .collect();
        let e = engine(json!({ "rules": rules }));
        let d = decide(&e, json!({"kind": "k", "tenant": "t"}));
        assert_eq!(d.verdict, expected, "{verdicts:?}");
    }
}

// ----- match -----------------------------------------------------------------------------------

#[test]
fn match_fields_are_anded_and_lists_are_ored() {
    let e = engine(json!({"rules": [{
        "id": "copilot-sql",
        "match": {"kind": "tool.call", "actor": ["agent:copilot", "agent:helper-*"], "tool": "sql.*"},
        "verdict": "block"
    }]}));
    let base = json!({"kind": "tool.call", "tenant": "acme", "actor": "agent:copilot", "tool": "sql.query"});
    assert_eq!(decide(&e, base.clone()).verdict, Verdict::Block);
    let mut other = base.clone();
    other["actor"] = json!("agent:helper-7");
    assert_eq!(decide(&e, other).verdict, Verdict::Block);
    let mut other = base.clone();
    other["actor"] = json!("user:alice");
    assert_eq!(decide(&e, other).verdict, Verdict::Allow);
    let mut other = base.clone();
    other["tool"] = json!("http.get");
    assert_eq!(decide(&e, other).verdict, Verdict::Allow);
    // A member the match names but the action lacks does not match.
    let mut other = base;
    other.as_object_mut().unwrap().remove("tool");
    assert_eq!(decide(&e, other).verdict, Verdict::Allow);
}

#[test]
fn route_globs_follow_the_slash_rules() {
    let e = engine(json!({"rules": [
        {"id": "one-level", "match": {"route": "POST /v1/*"}, "verdict": "block"},
        {"id": "any-depth", "match": {"route": "DELETE /v1/**"}, "verdict": "block"}
    ]}));
    let r = |route: &str| {
        decide(
            &e,
            json!({"kind": "http.request", "tenant": "t", "route": route}),
        )
        .verdict
    };
    assert_eq!(r("POST /v1/orders"), Verdict::Block);
    assert_eq!(r("POST /v1/orders/7"), Verdict::Allow);
    assert_eq!(r("DELETE /v1/orders/7/items"), Verdict::Block);
}

#[test]
fn bad_globs_are_compile_errors_with_pointers() {
    let err = compile_err(json!({
        "rules": [{"id": "a", "match": {"kind": ["ok", "bad["]}, "verdict": "block"}],
        "data_platform": {
            "warehouse_guard": {"protected_schemas": ["fin", "[z-a]"]},
            "activation": [{"destination": "x["}]
        }
    }));
    let pointers: Vec<&str> = err.issues.iter().map(|i| i.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/data_platform/warehouse_guard/protected_schemas/1",
            "/data_platform/activation/0/destination",
            "/rules/0/match/kind/1"
        ]
    );
    assert_eq!(err.issues[2].rule_id.as_deref(), Some("a"));
    assert!(
        err.to_string()
            .contains("rule `a` at `/rules/0/match/kind/1`"),
        "{err}"
    );
}

#[test]
fn duplicate_rule_ids_are_refused() {
    let err = compile_err(json!({
        "rules": [{"id": "a", "match": {"kind": "x"}, "verdict": "block"}],
        "enforcement": {"rules": [{"id": "a", "match": {"kind": "y"}, "verdict": "allow"}]}
    }));
    assert_eq!(err.issues[0].pointer, "/enforcement/rules/0/id");
    assert!(err.issues[0].message.contains("/rules/0"));
}

// ----- CEL -------------------------------------------------------------------------------------

#[test]
fn conditions_see_the_action_the_shortcuts_and_now() {
    let e = engine(json!({"rules": [
        {"id": "big-refund", "match": {"tool": "payments.refund"},
         "when": "payload.amount > 1000 && action.labels.env == 'prod' && labels.env == 'prod'", "verdict": "require_approval", "checkpoint": "finance"},
        {"id": "night", "match": {"kind": "*"}, "when": "now >= '2026-03-01T22:00:00Z'", "verdict": "block"},
        {"id": "no-route", "match": {"kind": "*"}, "when": "route == null && detections == null", "verdict": "repair",
         "patch": [{"op": "add", "path": "/note", "value": "x"}]}
    ]}));
    let a = json!({"kind": "tool.call", "tenant": "acme", "tool": "payments.refund",
                   "payload": {"amount": 1500}, "labels": {"env": "prod"},
                   "time": "2026-03-01T12:00:00Z"});
    let d = decide(&e, a.clone());
    assert_eq!(ids(&d), ["big-refund", "no-route"]);
    assert_eq!(d.time.as_deref(), Some("2026-03-01T12:00:00Z"));
    let mut late = a;
    late["time"] = json!("2026-03-01T23:15:00+00:00");
    let d = decide(&e, late);
    assert_eq!(ids(&d), ["big-refund", "night", "no-route"]);
    assert_eq!(d.verdict, Verdict::Block);
}

#[test]
fn decide_at_uses_the_given_clock_only_without_an_action_time() {
    let e = engine(json!({"rules": [
        {"id": "after", "match": {"kind": "*"}, "when": "now > '2026-06-01'", "verdict": "block"}
    ]}));
    let clock: jiff::Timestamp = "2026-07-01T00:00:00Z".parse().unwrap();
    let d = e.decide_at(&act(json!({"kind": "k", "tenant": "t"})), clock);
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.time.as_deref(), Some("2026-07-01T00:00:00Z"));
    let d = e.decide_at(
        &act(json!({"kind": "k", "tenant": "t", "time": "2026-01-01T00:00:00Z"})),
        clock,
    );
    assert_eq!(d.verdict, Verdict::Allow);
    // Without any time, `now` is null: comparing it fails, closed.
    let d = e.decide(&act(json!({"kind": "k", "tenant": "t"})));
    assert_eq!(d.verdict, Verdict::Block);
    assert!(finding(&d, "after").error.is_some());
    assert!(d.time.is_none());
}

#[test]
fn condition_errors_fail_closed_except_for_allow_rules() {
    let e = engine(json!({
        "defaults": {"verdict": "block"},
        "rules": [
            {"id": "needs-amount", "match": {"kind": "*"}, "when": "payload.amount > 10", "verdict": "require_approval", "checkpoint": "c"},
            {"id": "allow-small", "match": {"kind": "*"}, "when": "payload.amount < 10", "verdict": "allow"},
            {"id": "not-bool", "match": {"kind": "*"}, "when": "payload", "verdict": "block", "mode": "shadow"}
        ]
    }));
    let d = decide(
        &e,
        json!({"kind": "k", "tenant": "t", "payload": {"other": 1}}),
    );
    let f = finding(&d, "needs-amount");
    assert!(
        f.counting && f.error.as_deref().unwrap().contains("amount"),
        "{f:?}"
    );
    let f = finding(&d, "allow-small");
    assert!(!f.counting && f.error.is_some(), "{f:?}");
    assert!(f.reason.contains("not counted"));
    let f = finding(&d, "not-bool");
    assert!(f.counting);
    assert!(
        f.error.as_deref().unwrap().contains("not a boolean"),
        "{f:?}"
    );
    assert_eq!(ids(&d), ["needs-amount", "not-bool"]);
    assert_eq!(d.evaluated_verdict, Verdict::Block);
    // `not-bool` is shadowed; what is enforced is the approval.
    assert_eq!(d.verdict, Verdict::RequireApproval);
    assert_eq!(d.mode, Mode::Shadow);
}

#[test]
fn condition_compile_errors_name_rule_and_pointer() {
    let err = compile_err(json!({
        "genai_security": {"rules": [
            {"id": "ok", "match": {"kind": "*"}, "when": "payload.a == 1", "verdict": "block"},
            {"id": "broken", "match": {"kind": "*"}, "when": "payload.a ==", "verdict": "block"},
            {"id": "typo", "match": {"kind": "*"}, "when": "paylod.a == 1", "verdict": "block"},
            {"id": "scoped", "match": {"kind": "*"}, "when": "payload.t.exists(t, t == 1) || t == 2", "verdict": "block"},
            {"id": "types", "match": {"kind": "*"}, "when": "type(payload) == map && type(kind) == string", "verdict": "block"}
        ]}
    }));
    assert_eq!(err.issues.len(), 3, "{err}");
    assert_eq!(err.issues[2].pointer, "/genai_security/rules/3/when");
    assert!(
        err.issues[2].message.contains("unknown variable `t`"),
        "{err}"
    );
    assert_eq!(err.issues[0].pointer, "/genai_security/rules/1/when");
    assert_eq!(err.issues[0].rule_id.as_deref(), Some("broken"));
    assert_eq!(err.issues[1].pointer, "/genai_security/rules/2/when");
    assert!(
        err.issues[1].message.contains("unknown variable `paylod`"),
        "{err}"
    );
}

#[test]
fn comprehensions_and_macros_compile() {
    let e = engine(json!({"rules": [
        {"id": "any-secret", "match": {"kind": "*"},
         "when": "has(payload.tags) && payload.tags.exists(t, t.startsWith('secret')) && payload.tags.all(x, size(x) > 0)", "verdict": "block"},
        {"id": "mapped", "match": {"kind": "*"}, "when": "payload.tags.map(t, t + '!').filter(u, u == 'a!').size() == 1", "verdict": "block"}
    ]}));
    let d = decide(
        &e,
        json!({"kind": "k", "tenant": "t", "payload": {"tags": ["a", "secret-x"]}}),
    );
    assert_eq!(ids(&d), ["any-secret", "mapped"]);
    assert!(d.findings.iter().all(|f| f.error.is_none()), "{d:#?}");
}

#[test]
fn conditions_run_only_when_match_holds() {
    // The condition would error on this action, but the match excludes it first.
    let e = engine(json!({"rules": [
        {"id": "r", "match": {"kind": "never"}, "when": "payload.x == 1", "verdict": "block"}
    ]}));
    let d = decide(&e, json!({"kind": "k", "tenant": "t"}));
    assert!(d.findings.is_empty());
}

// ----- built-in checks -------------------------------------------------------------------------

fn guard() -> Value {
    json!({
        "data_platform": {
            "warehouse_guard": {
                "protected_schemas": ["finance", "pii_*"],
                "max_rows_affected": 1000,
                "max_percent_affected": 10,
                "checkpoint": "dba"
            }
        },
        "approvals": {"checkpoints": [{"id": "dba", "approvers": ["user:*@acme.example"], "two_person": true}]}
    })
}

#[test]
fn protected_schemas_block_warehouse_actions() {
    let e = engine(guard());
    let d = decide(&e, dml("pii_eu", "insert", 1, None));
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(ids(&d), ["data_platform.warehouse_guard.protected_schemas"]);
    let f = &d.findings[0];
    assert_eq!(f.source, Source::Builtin);
    assert_eq!(f.section, "data_platform");
    assert!(f.reason.contains("`pii_eu`") && f.reason.contains("`pii_*`"));
    assert_eq!(
        decide(&e, dml("analytics", "insert", 1, None)).verdict,
        Verdict::Allow
    );
    // Not a warehouse action: the schema is not looked at.
    let d = decide(
        &e,
        json!({"kind": "tool.call", "tenant": "acme", "warehouse": {"schema": "finance"}}),
    );
    assert_eq!(d.verdict, Verdict::Allow);
    // `warehouse.*` does not cross `/`.
    let d = decide(
        &e,
        json!({"kind": "warehouse.dml/x", "tenant": "acme", "warehouse": {"schema": "finance"}}),
    );
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn mass_dml_needs_approval_with_the_checkpoint() {
    let e = engine(guard());
    let d = decide(&e, dml("analytics", "delete", 5000, None));
    assert_eq!(d.verdict, Verdict::RequireApproval);
    assert_eq!(ids(&d), ["data_platform.warehouse_guard.max_rows_affected"]);
    assert_eq!(d.obligations.len(), 1);
    match &d.obligations[0] {
        Obligation::Approval {
            rule_id,
            checkpoint,
            approvers,
            two_person,
            payload_sha256,
            mode,
        } => {
            assert_eq!(rule_id, "data_platform.warehouse_guard.max_rows_affected");
            assert_eq!(checkpoint.as_deref(), Some("dba"));
            assert_eq!(approvers, &["user:*@acme.example"]);
            assert!(*two_person);
            // No payload: the digest of `null`.
            assert_eq!(payload_sha256, &Digest::sha256(b"null").to_hex());
            assert_eq!(*mode, Mode::Enforce);
        }
        other => panic!("{other:?}"),
    }
    // At the threshold: fine. Selects and inserts never count.
    assert_eq!(
        decide(&e, dml("analytics", "update", 1000, None)).verdict,
        Verdict::Allow
    );
    assert_eq!(
        decide(&e, dml("analytics", "select", 9_999_999, None)).verdict,
        Verdict::Allow
    );
    assert_eq!(
        decide(&e, dml("analytics", "insert", 9_999_999, None)).verdict,
        Verdict::Allow
    );
    assert_eq!(
        decide(&e, dml("analytics", "merge", 1001, None)).verdict,
        Verdict::RequireApproval
    );
}

#[test]
fn percentage_threshold_needs_known_positive_table_rows() {
    let e = engine(guard());
    // 500 of 2000 rows = 25% > 10%.
    let d = decide(&e, dml("analytics", "update", 500, Some(2000)));
    assert_eq!(
        ids(&d),
        ["data_platform.warehouse_guard.max_percent_affected"]
    );
    assert!(d.reasons[0].contains("25%"), "{:?}", d.reasons);
    // 100 of 2000 = 5%.
    assert!(decide(&e, dml("analytics", "update", 100, Some(2000)))
        .findings
        .is_empty());
    // Unknown or zero table size: the percentage check does not apply.
    assert!(decide(&e, dml("analytics", "update", 500, Some(0)))
        .findings
        .is_empty());
    assert!(decide(&e, dml("analytics", "update", 500, None))
        .findings
        .is_empty());
    // Both thresholds: two findings, one approval (same checkpoint).
    let d = decide(&e, dml("analytics", "update", 5000, Some(6000)));
    assert_eq!(d.rule_ids.len(), 2);
    assert_eq!(d.obligations.len(), 1);
}

#[test]
fn activation_destinations() {
    let e = engine(json!({
        "data_platform": {"activation": [
            {"destination": "salesforce.*", "max_records": 50000, "approval_above": 10000, "checkpoint": "revops"},
            {"destination": ["facebook.*", "tiktok.*"], "allowed": false}
        ]},
        "approvals": {"checkpoints": [{"id": "revops", "approvers": ["user:bob@acme.example"]}]}
    }));
    let sync = |dest: &str, records: u64| {
        decide(
            &e,
            json!({"kind": "activation.sync", "tenant": "acme", "activation": {"destination": dest, "records": records}}),
        )
    };
    assert_eq!(sync("salesforce.contacts", 500).verdict, Verdict::Allow);
    let d = sync("salesforce.contacts", 20000);
    assert_eq!(d.verdict, Verdict::RequireApproval);
    assert_eq!(ids(&d), ["data_platform.activation[0]"]);
    assert!(
        matches!(&d.obligations[0], Obligation::Approval { checkpoint: Some(c), two_person: false, .. } if c == "revops")
    );
    let d = sync("salesforce.contacts", 60000);
    assert_eq!(d.verdict, Verdict::Block);
    assert!(d.obligations.is_empty());
    let d = sync("tiktok.ads", 1);
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(ids(&d), ["data_platform.activation[1]"]);
    assert_eq!(sync("hubspot.contacts", 1_000_000).verdict, Verdict::Allow);
    // Not an activation action.
    let d = decide(
        &e,
        json!({"kind": "tool.call", "tenant": "acme", "activation": {"destination": "tiktok.ads", "records": 1}}),
    );
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn detectors_fire_at_the_threshold_and_fail_as_configured() {
    let e = engine(json!({
        "genai_security": {"detectors": {
            "prompt_injection": {"threshold": 0.8},
            "pii": {"action": "require_approval", "checkpoint": "privacy"},
            "toxicity": {"action": "allow"},
            "secrets": {"on_error": "fail_open"},
            "jailbreak": {"enabled": false}
        }}
    }));
    let det = |d: Value| {
        decide(
            &e,
            json!({"kind": "tool.call", "tenant": "acme", "detections": d}),
        )
    };

    let d = det(json!({"prompt_injection": {"score": 0.8}}));
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(ids(&d), ["genai_security.detectors.prompt_injection"]);
    assert_eq!(
        det(json!({"prompt_injection": {"score": 0.79}})).verdict,
        Verdict::Allow
    );

    // Default threshold 0.5, action from the settings.
    let d = det(json!({"pii": {"score": 0.5}}));
    assert_eq!(d.verdict, Verdict::RequireApproval);
    assert!(
        matches!(&d.obligations[0], Obligation::Approval { checkpoint: Some(c), .. } if c == "privacy")
    );

    // `allow` records only: a finding that does not count.
    let d = det(json!({"toxicity": {"score": 0.99}}));
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.rule_ids.is_empty());
    assert!(!finding(&d, "genai_security.detectors.toxicity").counting);

    // Errors: closed by default, open when configured, noted either way.
    let d = det(json!({"prompt_injection": {"error": "timeout after 200ms"}}));
    assert_eq!(d.verdict, Verdict::Block);
    let f = finding(&d, "genai_security.detectors.prompt_injection");
    assert_eq!(f.error.as_deref(), Some("timeout after 200ms"));
    let d = det(json!({"secrets": {"error": "model unavailable"}}));
    assert_eq!(d.verdict, Verdict::Allow);
    let f = finding(&d, "genai_security.detectors.secrets");
    assert!(!f.counting && f.error.is_some());

    // Disabled detectors and detections no detector is configured for are ignored.
    assert!(
        det(json!({"jailbreak": {"score": 1.0}, "other": {"score": 1.0}}))
            .findings
            .is_empty()
    );
}

#[test]
fn a_detector_allow_note_does_not_lift_a_default_block() {
    let e = engine(json!({
        "defaults": {"verdict": "block"},
        "genai_security": {"detectors": {"toxicity": {"action": "allow"}, "pii": {"on_error": "fail_open"}}}
    }));
    let d = decide(
        &e,
        json!({"kind": "k", "tenant": "t", "detections": {"toxicity": {"score": 1}, "pii": {"error": "x"}}}),
    );
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.findings.len(), 2);
}

// ----- allow overrides built-ins (§5.3) ----------------------------------------------------------

#[test]
fn allow_rules_override_builtins_but_not_other_rules() {
    let mut p = guard();
    p["data_platform"]["rules"] = json!([
        {"id": "dbt-may-write-finance", "match": {"actor": "service:dbt"}, "verdict": "allow"},
        {"id": "no-deletes", "match": {"kind": "warehouse.dml"}, "when": "warehouse.statement == 'delete'", "verdict": "block"}
    ]);
    let e = engine(p);
    let mut a = dml("finance", "update", 5000, None);
    a["actor"] = json!("service:dbt");
    let d = decide(&e, a.clone());
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(ids(&d), ["dbt-may-write-finance"]);
    for id in [
        "data_platform.warehouse_guard.protected_schemas",
        "data_platform.warehouse_guard.max_rows_affected",
    ] {
        let f = finding(&d, id);
        assert!(f.overridden && !f.counting, "{f:?}");
    }
    assert!(d.obligations.is_empty());

    // The allow rule does not override the block rule.
    a["warehouse"]["statement"] = json!("delete");
    let d = decide(&e, a);
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(ids(&d), ["dbt-may-write-finance", "no-deletes"]);

    // Another actor: the built-ins count.
    let d = decide(&e, dml("finance", "update", 5000, None));
    assert_eq!(d.verdict, Verdict::Block);
    assert!(d.findings.iter().all(|f| !f.overridden));
}

#[test]
fn an_allow_rule_whose_condition_errors_overrides_nothing() {
    let mut p = guard();
    p["rules"] =
        json!([{"id": "maybe", "match": {"kind": "*"}, "when": "payload.ok", "verdict": "allow"}]);
    let e = engine(p);
    let d = decide(&e, dml("finance", "insert", 1, None));
    assert_eq!(d.verdict, Verdict::Block);
    assert!(!finding(&d, "data_platform.warehouse_guard.protected_schemas").overridden);
}

// ----- shadow mode -----------------------------------------------------------------------------

#[test]
fn global_shadow_lets_everything_through_and_records_the_verdict() {
    let mut p = guard();
    p["mode"] = json!("shadow");
    p["defaults"] = json!({"verdict": "block"});
    let e = engine(p);
    let d = decide(&e, dml("finance", "delete", 5000, None));
    assert_eq!(d.evaluated_verdict, Verdict::Block);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.mode, Mode::Shadow);
    assert!(d.findings.iter().all(|f| f.mode == Mode::Shadow));
    // Even the default block is shadowed.
    let d = decide(&e, json!({"kind": "k", "tenant": "t"}));
    assert_eq!(
        (d.evaluated_verdict, d.verdict),
        (Verdict::Block, Verdict::Allow)
    );
}

#[test]
fn mode_resolution_rule_then_section_then_policy() {
    let e = engine(json!({
        "mode": "shadow",
        "rules": [{"id": "top", "match": {"kind": "*"}, "verdict": "block"},
                  {"id": "top-enforced", "match": {"kind": "x"}, "verdict": "block", "mode": "enforce"}],
        "enforcement": {"mode": "enforce", "rules": [
            {"id": "enf", "match": {"kind": "*"}, "verdict": "require_approval", "checkpoint": "c"},
            {"id": "enf-shadow", "match": {"kind": "*"}, "verdict": "block", "mode": "shadow"}
        ]}
    }));
    let d = decide(&e, json!({"kind": "k", "tenant": "t"}));
    let modes: Vec<(&str, Mode)> = d
        .findings
        .iter()
        .map(|f| (f.rule_id.as_str(), f.mode))
        .collect();
    assert_eq!(
        modes,
        [
            ("top", Mode::Shadow),
            ("enf", Mode::Enforce),
            ("enf-shadow", Mode::Shadow)
        ]
    );
    assert_eq!(d.evaluated_verdict, Verdict::Block);
    assert_eq!(d.verdict, Verdict::RequireApproval);
    assert_eq!(d.mode, Mode::Shadow);
    let d = decide(&e, json!({"kind": "x", "tenant": "t"}));
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.mode, Mode::Enforce);
}

#[test]
fn shadowed_findings_never_loosen_enforcement() {
    // A shadowed block rule with `defaults.verdict: block`: enforced is the default, not allow.
    let e = engine(json!({
        "defaults": {"verdict": "block"},
        "rules": [{"id": "trial", "match": {"kind": "*"}, "verdict": "block", "mode": "shadow"}]
    }));
    let d = decide(&e, json!({"kind": "k", "tenant": "t"}));
    assert_eq!(
        (d.evaluated_verdict, d.verdict),
        (Verdict::Block, Verdict::Block)
    );
    assert_eq!(d.mode, Mode::Enforce);

    // A shadowed allow rule: the built-in check it would override stays enforced.
    let mut p = guard();
    p["rules"] = json!([{"id": "trial-allow", "match": {"kind": "*"}, "verdict": "allow", "mode": "shadow"}]);
    let e = engine(p);
    let d = decide(&e, dml("finance", "insert", 1, None));
    assert_eq!(d.evaluated_verdict, Verdict::Allow);
    assert!(finding(&d, "data_platform.warehouse_guard.protected_schemas").overridden);
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.mode, Mode::Shadow);

    // A shadowed allow rule does not lift a default block either.
    let e = engine(json!({
        "defaults": {"verdict": "block"},
        "rules": [{"id": "trial-allow", "match": {"kind": "*"}, "verdict": "allow", "mode": "shadow"}]
    }));
    let d = decide(&e, json!({"kind": "k", "tenant": "t"}));
    assert_eq!(
        (d.evaluated_verdict, d.verdict),
        (Verdict::Allow, Verdict::Block)
    );
}

// ----- obligations -----------------------------------------------------------------------------

#[test]
fn repair_patches_in_rule_order_with_their_modes() {
    let e = engine(json!({
        "rules": [
            {"id": "mask-ssn", "match": {"tool": "crm.*"}, "verdict": "repair",
             "patch": [{"op": "replace", "path": "/ssn", "value": "***"}]},
            {"id": "no-debug", "match": {"tool": "crm.*"}, "verdict": "repair", "mode": "shadow",
             "patch": [{"op": "remove", "path": "/debug"}, {"op": "add", "path": "/source", "value": "clyra"}]}
        ]
    }));
    let d = decide(
        &e,
        json!({"kind": "tool.call", "tenant": "t", "tool": "crm.update", "payload": {"ssn": "1", "debug": true}}),
    );
    assert_eq!(d.verdict, Verdict::Repair);
    let patches: Vec<(&str, usize, Mode)> = d
        .obligations
        .iter()
        .map(|o| match o {
            Obligation::Repair {
                rule_id,
                patch,
                mode,
            } => (rule_id.as_str(), patch.len(), *mode),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        patches,
        [
            ("mask-ssn", 1, Mode::Enforce),
            ("no-debug", 2, Mode::Shadow)
        ]
    );
    assert_eq!(d.enforced_obligations().count(), 1);
    // Only the enforced repair is applied.
    assert_eq!(
        d.apply_repairs(&json!({"ssn": "1", "debug": true}))
            .unwrap(),
        json!({"ssn": "***", "debug": true})
    );
    let json = serde_json::to_value(&d.obligations[0]).unwrap();
    assert_eq!(
        json,
        json!({"type": "repair", "rule_id": "mask-ssn", "patch": [{"op": "replace", "path": "/ssn", "value": "***"}], "mode": "enforce"})
    );
}

#[test]
fn approvals_one_per_checkpoint_with_the_payload_digest() {
    let e = engine(json!({
        "rules": [
            {"id": "a", "match": {"kind": "*"}, "verdict": "require_approval", "checkpoint": "finance"},
            {"id": "b", "match": {"kind": "*"}, "verdict": "require_approval", "checkpoint": "finance"},
            {"id": "c", "match": {"kind": "*"}, "verdict": "require_approval", "checkpoint": "legal"},
            {"id": "d", "match": {"kind": "*"}, "verdict": "require_approval"}
        ],
        "approvals": {"checkpoints": [
            {"id": "finance", "approvers": ["user:*@acme.example"], "two_person": true},
            {"id": "legal", "approvers": ["user:counsel@acme.example"]}
        ]}
    }));
    let d = decide(
        &e,
        json!({"kind": "k", "tenant": "t", "payload": {"b": 2, "a": 1}}),
    );
    let expected_digest = Digest::sha256(br#"{"a":1,"b":2}"#).to_hex();
    let got: Vec<Value> = d
        .obligations
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            json!({"type": "approval", "rule_id": "a", "checkpoint": "finance", "approvers": ["user:*@acme.example"], "two_person": true, "payload_sha256": expected_digest, "mode": "enforce"}),
            json!({"type": "approval", "rule_id": "c", "checkpoint": "legal", "approvers": ["user:counsel@acme.example"], "two_person": false, "payload_sha256": expected_digest, "mode": "enforce"}),
            json!({"type": "approval", "rule_id": "d", "checkpoint": null, "approvers": [], "two_person": false, "payload_sha256": expected_digest, "mode": "enforce"}),
        ]
    );
}

#[test]
fn rate_limit_keys_by_scope() {
    let e = engine(json!({
        "enforcement": {"rate_limits": [
            {"id": "per-agent", "scope": "actor", "match": {"actor": "agent:*"}, "limit": 60, "window": "1m", "burst": 10},
            {"id": "per-tenant", "scope": "tenant", "limit": 1000, "window": "1h"},
            {"id": "per-route", "scope": "route", "match": {"kind": "http.request"}, "limit": 5, "window": "90s"}
        ]}
    }));
    let d = decide(
        &e,
        json!({"kind": "tool.call", "tenant": "acme", "actor": "agent:copilot"}),
    );
    let got: Vec<Value> = d
        .obligations
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            json!({"type": "rate_limit", "id": "per-agent", "key": "actor:agent:copilot", "limit": 60, "window_ms": 60000, "burst": 10, "mode": "enforce"}),
            json!({"type": "rate_limit", "id": "per-tenant", "key": "tenant:acme", "limit": 1000, "window_ms": 3600000, "burst": 0, "mode": "enforce"}),
        ]
    );
    // Rate limits are obligations, not findings: they do not change the verdict.
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.findings.is_empty());
    let d = decide(
        &e,
        json!({"kind": "http.request", "tenant": "acme", "route": "POST /v1/orders"}),
    );
    let keys: Vec<String> = d
        .obligations
        .iter()
        .map(|o| match o {
            Obligation::RateLimit { key, .. } => key.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, ["tenant:acme", "route:POST /v1/orders"]);
}

#[test]
fn bad_rate_limit_settings_are_compile_errors() {
    let err = compile_err(json!({"enforcement": {"rate_limits": [
        {"id": "x", "scope": "planet", "limit": 1, "window": "1m"},
        {"id": "y", "scope": "actor", "limit": 1, "window": "1w"}
    ]}}));
    let pointers: Vec<&str> = err.issues.iter().map(|i| i.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/enforcement/rate_limits/0/scope",
            "/enforcement/rate_limits/1/window"
        ]
    );
}

// ----- serialization and explain ---------------------------------------------------------------

#[test]
fn decision_json_has_a_stable_field_order() {
    let e = engine(guard());
    let d = decide(&e, dml("finance", "insert", 1, None));
    let text = serde_json::to_string(&d).unwrap();
    let order = [
        "\"verdict\"",
        "\"evaluated_verdict\"",
        "\"mode\"",
        "\"rule_ids\"",
        "\"reasons\"",
        "\"findings\"",
        "\"obligations\"",
        "\"policy_hash\"",
        "\"action_sha256\"",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    let f = serde_json::to_value(&d.findings[0]).unwrap();
    assert_eq!(
        f,
        json!({"rule_id": "data_platform.warehouse_guard.protected_schemas", "source": "builtin",
               "section": "data_platform", "verdict": "block", "mode": "enforce", "counting": true,
               "overridden": false, "reason": "schema `finance` is protected (`finance`)"})
    );
}

#[test]
fn explain_says_why_not() {
    let mut p = guard();
    p["rules"] = json!([
        {"id": "agents-only", "match": {"actor": "agent:*", "kind": "warehouse.*"}, "verdict": "block"},
        {"id": "dbt", "match": {"actor": "service:airflow"}, "when": "warehouse.table == 'nope'", "verdict": "allow"},
        {"id": "route", "match": {"route": "POST /x"}, "verdict": "block"},
        {"id": "err", "match": {"kind": "*"}, "when": "payload.x", "verdict": "allow"},
        {"id": "fine", "match": {"kind": "warehouse.dml"}, "verdict": "allow"}
    ]);
    p["enforcement"] = json!({"rate_limits": [{"id": "rl", "scope": "actor", "match": {"actor": "agent:*"}, "limit": 1, "window": "1s"}]});
    let e = engine(p);
    let x = e.explain_at(&act(dml("finance", "update", 5000, Some(5000))), None);
    let outcomes: Vec<Value> = x
        .rules
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap();
            let o = v.as_object_mut().unwrap();
            for k in ["section", "verdict", "mode", "when", "pointer"] {
                o.remove(k);
            }
            v
        })
        .collect();
    assert_eq!(
        outcomes[0],
        json!({"rule_id": "agents-only", "outcome": "no_match", "field": "actor", "value": "service:airflow", "patterns": ["agent:*"]})
    );
    assert_eq!(
        outcomes[1],
        json!({"rule_id": "dbt", "outcome": "condition_false"})
    );
    assert_eq!(
        outcomes[2],
        json!({"rule_id": "route", "outcome": "no_match", "field": "route", "value": null, "patterns": ["POST /x"]})
    );
    assert_eq!(outcomes[3]["outcome"], "condition_error");
    assert_eq!(outcomes[3]["counts"], false);
    assert_eq!(
        outcomes[4],
        json!({"rule_id": "fine", "outcome": "matched", "condition": false})
    );
    assert_eq!(x.rules[2].pointer, "/rules/2");

    let checks: Vec<(&str, bool, &[String])> = x
        .checks
        .iter()
        .map(|c| (c.id.as_str(), c.fired, &c.overridden_by[..]))
        .collect();
    let fine = ["fine".to_owned()];
    assert_eq!(
        checks,
        [
            (
                "data_platform.warehouse_guard.protected_schemas",
                true,
                &fine[..]
            ),
            (
                "data_platform.warehouse_guard.max_rows_affected",
                true,
                &fine[..]
            ),
            (
                "data_platform.warehouse_guard.max_percent_affected",
                true,
                &fine[..]
            ),
        ]
    );
    assert!(!x.rate_limits[0].applies);
    assert_eq!(x.rate_limits[0].no_match.as_ref().unwrap().field, "actor");
    assert_eq!(x.decision.verdict, Verdict::Allow);
    // Explaining decides exactly as deciding does.
    assert_eq!(
        x.decision,
        e.decide(&act(dml("finance", "update", 5000, Some(5000))))
    );

    let x = e.explain_at(&act(dml("analytics", "select", 1, None)), None);
    let details: Vec<&str> = x.checks.iter().map(|c| c.detail.as_str()).collect();
    assert_eq!(
        details,
        [
            "schema `analytics` matches none of `finance`, `pii_*`",
            "statement `select` is not update, delete or merge",
            "statement `select` is not update, delete or merge",
        ]
    );
}

#[test]
fn engine_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Engine>();
}
