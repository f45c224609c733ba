//! Decisions as journal events: every decision names the rules that made it and the policy hash
//! in force, and lands in the tenant's chain as a `policy.decision` entry.
//!
//! The entry's body is the decision itself (verdicts, mode, rule ids, reasons, findings,
//! obligations, policy hash, and the SHA-256 of the action's canonical JSON) plus the action's
//! kind, route and tool. The action's payload is never copied: the digest binds the entry to it.

use clyra_journal::NewEvent;
use serde_json::{json, Value};

use super::{Action, Decision};

/// The journal kind of a decision entry.
pub const DECISION_KIND: &str = "policy.decision";

/// The journal event recording `decision` about `action`, in the action's tenant, attributed to
/// its actor. `run` and `session` place it in a run chain or a session when given.
pub fn decision_event(
    action: &Action,
    decision: &Decision,
    run: Option<&str>,
    session: Option<&str>,
) -> NewEvent {
    let mut body = match serde_json::to_value(decision) {
        Ok(Value::Object(map)) => map,
        // A Decision always serializes to an object; keep the digest if it ever did not.
        _ => serde_json::Map::new(),
    };
    body.insert(
        "action".into(),
        json!({
            "kind": action.kind(),
            "route": action.route(),
            "tool": action.tool(),
            "sha256": action.sha256(),
        }),
    );
    NewEvent {
        tenant: action.tenant().to_owned(),
        kind: DECISION_KIND.to_owned(),
        ts: action.time(),
        id: None,
        run: run.map(str::to_owned),
        session: session.map(str::to_owned),
        actor: action.actor().map(str::to_owned),
        body: Value::Object(body),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decide::Engine;
    use crate::model::Policy;

    #[test]
    fn the_event_carries_the_decision_and_not_the_payload() {
        let policy: Policy = serde_json::from_value(json!({
            "version": 4,
            "metadata": {"name": "p", "version": "1", "owners": ["o"]},
            "rules": [{"id": "no-drop", "match": {"kind": "warehouse.ddl"}, "verdict": "block"}]
        }))
        .unwrap();
        let engine = Engine::new(&policy, "sha256:00").unwrap();
        let action = Action::from_value(json!({
            "kind": "warehouse.ddl", "tenant": "acme", "actor": "agent:copilot",
            "payload": {"sql": "DROP TABLE secret_customers"}
        }))
        .unwrap();
        let decision = engine.decide_at(&action, "2026-12-02T00:00:00Z".parse().unwrap());
        let event = decision_event(&action, &decision, Some("r-1"), None);
        assert_eq!(event.kind, DECISION_KIND);
        assert_eq!(event.tenant, "acme");
        assert_eq!(event.actor.as_deref(), Some("agent:copilot"));
        assert_eq!(event.run.as_deref(), Some("r-1"));
        assert_eq!(event.body["verdict"], "block");
        assert_eq!(event.body["rule_ids"], json!(["no-drop"]));
        assert_eq!(event.body["policy_hash"], "sha256:00");
        assert_eq!(event.body["action"]["sha256"], action.sha256());
        assert!(!event.body.to_string().contains("secret_customers"));
    }
}
