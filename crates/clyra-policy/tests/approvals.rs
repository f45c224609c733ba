//! Approvals end to end, on SQLite and on the local Postgres: expiry, reuse, payload
//! substitution, the two-person rule, restarts, forged entries, the audit trail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/http_once.rs"]
mod http_once;
#[macro_use]
#[path = "../../clyra-journal/tests/support/mod.rs"]
mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::sync::{Arc, Barrier};

use clyra_evidence::keys::{Algorithm, PrivateKey, Signer as _};
use clyra_journal::entry::{BodyPolicy, NewEvent};
use clyra_policy::approvals::{
    notice, ActionSummary, Approvals, Keys, Notice, NoticeStatus, Notifier, Outcome, Pending,
    Status,
};
use clyra_policy::model;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use support::Backend;

const TENANT: &str = "acme";

fn t0() -> Timestamp {
    "2026-03-01T10:00:00Z".parse().unwrap()
}

fn at(minutes: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_mins(minutes))
        .unwrap()
}

fn key() -> &'static PrivateKey {
    static KEY: std::sync::OnceLock<PrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(Algorithm::Ed25519).unwrap())
}

fn signing_keys() -> Keys {
    let pem = key().to_pkcs8_pem().unwrap();
    Keys::signing(Box::new(PrivateKey::from_pkcs8_pem(&pem).unwrap()))
}

fn section() -> model::Approvals {
    serde_json::from_value(json!({
        "token_ttl": "15m",
        "pending_ttl": "24h",
        "checkpoints": [
            {"id": "refund", "approvers": ["user:*@acme.example"]},
            {"id": "promote", "approvers": ["user:*@acme.example", "team/release/**"],
             "two_person": true, "pending_ttl": "1h", "token_ttl": "5m"}
        ]
    }))
    .unwrap()
}

fn service(b: &Backend) -> Approvals {
    Approvals::new(b.open(), Some(&section()), signing_keys(), "sha256:feed").unwrap()
}

fn payload() -> Value {
    json!({"order": "o-17", "amount": {"value": 240, "currency": "EUR"}, "reason": "damaged"})
}

/// The same payload with members in another order and numbers spelled differently.
fn payload_reordered() -> Value {
    serde_json::from_str(
        r#"{"reason": "damaged", "amount": {"currency": "EUR", "value": 2.40e2}, "order": "o-17"}"#,
    )
    .unwrap()
}

fn action() -> ActionSummary {
    let mut a = ActionSummary::new("tool.call");
    a.tool = Some("payments.refund".into());
    a.rule_id = Some("refunds-need-approval".into());
    a
}

/// Requests an approval at `checkpoint` for the usual payload, as the support bot, at t0.
fn request_pending(s: &mut Approvals, checkpoint: &str) -> Pending {
    s.request(
        TENANT,
        checkpoint,
        "agent:support-bot",
        &payload(),
        &action(),
        t0(),
    )
    .unwrap()
}

fn request(s: &mut Approvals, checkpoint: &str) -> String {
    request_pending(s, checkpoint).approval_id
}

fn granted(outcome: Outcome) -> clyra_policy::approvals::Token {
    match outcome {
        Outcome::Granted { token, .. } => *token,
        Outcome::Pending { have, need, .. } => panic!("still pending: {have}/{need}"),
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, clyra_policy::approvals::ApprovalError>) -> &'static str {
    r.unwrap_err().code()
}

/// The approval's journal entries: (kind, id).
fn trail(b: &Backend, approval_id: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    b.open()
        .scan_run(TENANT, &format!("approval:{approval_id}"), &mut |e| {
            let v: Value = serde_json::from_slice(&e.canonical).unwrap();
            assert_eq!(v["body_policy"], "full");
            assert!(
                !String::from_utf8_lossy(&e.canonical).contains("o-17"),
                "the payload itself never reaches the journal"
            );
            out.push((
                v["kind"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            ));
            Ok(())
        })
        .unwrap();
    out
}

fn kinds(b: &Backend, approval_id: &str) -> Vec<String> {
    trail(b, approval_id).into_iter().map(|(k, _)| k).collect()
}

fn chain_verifies(b: &Backend) {
    let report = clyra_journal::verify::verify_tenant(b.open().as_mut(), TENANT, None).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

// ---- tests ---------------------------------------------------------------------------------

fn one_approver_grants_and_the_token_works_once(b: Backend) {
    let mut s = service(&b);
    let p = request_pending(&mut s, "refund");
    assert_eq!((p.need, p.two_person), (1, false));
    assert_eq!(p.notice, NoticeStatus::NotConfigured);
    assert_eq!(p.expires_at, at(24 * 60));
    let id = p.approval_id;
    assert!(id.starts_with("apr_") && id.len() == 36);
    let listed = s.list(TENANT, Some(Status::Pending), at(1)).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].approval_id, id);
    let token = granted(
        s.approve(
            TENANT,
            &id,
            "user:lee@acme.example",
            Some("ok, checked the order"),
            at(2),
        )
        .unwrap(),
    );
    assert_eq!(token.claims.approvers, vec!["user:lee@acme.example"]);
    assert_eq!(token.claims.payload_sha256, p.payload_sha256);
    assert_eq!(token.claims.exp, "2026-03-01T10:17:00.000Z");
    assert_eq!(token.claims.policy_hash, "sha256:feed");
    // The waiting requester can fetch the same token again.
    assert_eq!(s.token(TENANT, &id, at(3)).unwrap(), token);
    let r = s
        .redeem(TENANT, &token.token, &payload(), Some("refund"), at(3))
        .unwrap();
    assert_eq!(r.approval_id, id);
    assert_eq!(r.approvers, vec!["user:lee@acme.example"]);
    // Reuse: the same token, the same payload, a second time.
    assert_eq!(
        code(s.redeem(TENANT, &token.token, &payload(), None, at(4))),
        "A_TOKEN_REUSED"
    );
    let v = s.show(TENANT, &id, at(5)).unwrap();
    assert_eq!(v.status, Status::Used);
    assert_eq!(v.used.as_ref().unwrap().token_id, token.claims.token_id);
    assert_eq!(
        kinds(&b, &id),
        [
            "approval.requested",
            "approval.approved",
            "approval.granted",
            "approval.used"
        ]
    );
    assert!(v.history.iter().all(|h| h.counted), "{:#?}", v.history);
    assert!(v.history[..3].iter().all(|h| h.signed_by.is_some()));
    // What the PEF predicate reads from approval.granted.
    let g = &v.history[2].body;
    assert_eq!(g["tool"], "payments.refund");
    assert_eq!(g["approver"], "user:lee@acme.example");
    assert_eq!(g["two_person_rule"], false);
    chain_verifies(&b);
}

fn a_pending_approval_expires(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "promote"); // pending_ttl 1h
    assert_eq!(s.show(TENANT, &id, at(59)).unwrap().status, Status::Pending);
    assert_eq!(
        code(s.approve(TENANT, &id, "user:ann@acme.example", None, at(60))),
        "A_EXPIRED"
    );
    assert_eq!(
        code(s.reject(TENANT, &id, "user:ann@acme.example", "late", at(61))),
        "A_EXPIRED"
    );
    let v = s.show(TENANT, &id, at(62)).unwrap();
    assert_eq!(v.status, Status::Expired);
    assert_eq!(v.expiry.as_ref().unwrap().deadline, at(60));
    // Recorded once, the first time it was observed.
    assert_eq!(kinds(&b, &id), ["approval.requested", "approval.expired"]);
    assert_eq!(
        s.list(TENANT, Some(Status::Expired), at(63)).unwrap().len(),
        1
    );
    assert!(s
        .list(TENANT, Some(Status::Pending), at(63))
        .unwrap()
        .is_empty());
    chain_verifies(&b);
}

fn a_token_expires(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "refund"); // token_ttl 15m
    let token = granted(
        s.approve(TENANT, &id, "user:lee@acme.example", None, at(10))
            .unwrap(),
    );
    assert_eq!(token.claims.exp, "2026-03-01T10:25:00.000Z");
    assert_eq!(
        code(s.redeem(TENANT, &token.token, &payload(), None, at(25))),
        "A_TOKEN_EXPIRED"
    );
    let v = s.show(TENANT, &id, at(26)).unwrap();
    assert_eq!(v.status, Status::Expired);
    assert_eq!(
        v.expiry.as_ref().unwrap().stage,
        clyra_policy::approvals::ExpiryStage::Token
    );
    // Even a clock that runs behind cannot use it now: the expiry is in the journal.
    assert_eq!(
        code(s.redeem(TENANT, &token.token, &payload(), None, at(11))),
        "A_TOKEN_EXPIRED"
    );
    assert_eq!(code(s.token(TENANT, &id, at(11))), "A_NOT_PENDING");
    assert_eq!(
        kinds(&b, &id),
        [
            "approval.requested",
            "approval.approved",
            "approval.granted",
            "approval.expired"
        ]
    );
    chain_verifies(&b);
}

fn a_token_is_bound_to_its_payload(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "refund");
    let token = granted(
        s.approve(TENANT, &id, "user:lee@acme.example", None, at(1))
            .unwrap(),
    );
    for other in [
        json!({"order": "o-17", "amount": {"value": 2400, "currency": "EUR"}, "reason": "damaged"}),
        json!({"order": "o-18", "amount": {"value": 240, "currency": "EUR"}, "reason": "damaged"}),
        json!({"order": "o-17", "amount": {"value": 240, "currency": "EUR"}}),
        json!(null),
    ] {
        assert_eq!(
            code(s.redeem(TENANT, &token.token, &other, None, at(2))),
            "A_PAYLOAD_MISMATCH",
            "{other}"
        );
    }
    // Refusals did not consume it; the same payload with its keys reordered and a number
    // spelled differently has the same canonical JSON, so it is accepted.
    let r = s
        .redeem(TENANT, &token.token, &payload_reordered(), None, at(3))
        .unwrap();
    assert_eq!(r.payload_sha256, token.claims.payload_sha256);
    assert_eq!(
        kinds(&b, &id),
        [
            "approval.requested",
            "approval.approved",
            "approval.granted",
            "approval.used"
        ]
    );
}

fn the_two_person_rule(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "promote");
    assert_eq!(
        code(s.approve(TENANT, &id, "agent:support-bot", None, at(1))),
        "A_SELF_APPROVAL"
    );
    assert_eq!(
        code(s.approve(TENANT, &id, "AGENT:Support-Bot", None, at(1))),
        "A_SELF_APPROVAL",
        "identities compare without ASCII case"
    );
    assert_eq!(
        code(s.approve(TENANT, &id, "user:eve@evil.example", None, at(1))),
        "A_NOT_APPROVER"
    );
    assert_eq!(
        code(s.approve(TENANT, &id, "team/release", None, at(1))),
        "A_NOT_APPROVER"
    );
    match s
        .approve(TENANT, &id, "user:ann@acme.example", None, at(2))
        .unwrap()
    {
        Outcome::Pending {
            have,
            need,
            approval,
        } => {
            assert_eq!((have, need), (1, 2));
            assert_eq!(approval.status, Status::Pending);
        }
        Outcome::Granted { .. } => panic!("one approval must not grant a two-person checkpoint"),
    }
    assert_eq!(
        code(s.approve(TENANT, &id, "user:ann@acme.example", None, at(3))),
        "A_DUPLICATE_APPROVER"
    );
    assert_eq!(
        code(s.approve(TENANT, &id, "user:ANN@acme.example", None, at(3))),
        "A_DUPLICATE_APPROVER"
    );
    let token = granted(
        s.approve(TENANT, &id, "team/release/ops/bo", None, at(4))
            .unwrap(),
    );
    assert_eq!(
        token.claims.approvers,
        vec!["user:ann@acme.example", "team/release/ops/bo"]
    );
    assert_eq!(
        code(s.approve(TENANT, &id, "user:cy@acme.example", None, at(5))),
        "A_NOT_PENDING"
    );
    let v = s.show(TENANT, &id, at(5)).unwrap();
    assert_eq!(v.status, Status::Granted);
    assert_eq!(v.approvals.len(), 2);
    let g = v
        .history
        .iter()
        .find(|h| h.kind == "approval.granted")
        .unwrap();
    assert_eq!(
        g.body["approver"],
        "user:ann@acme.example, team/release/ops/bo"
    );
    assert_eq!(g.body["two_person_rule"], true);
    assert_eq!(
        kinds(&b, &id),
        [
            "approval.requested",
            "approval.approved",
            "approval.approved",
            "approval.granted"
        ]
    );
    // Every refused attempt left nothing in the journal; each counted step is one entry.
    let ids: Vec<String> = trail(&b, &id).into_iter().map(|(_, i)| i).collect();
    assert_eq!(
        ids[1],
        format!("approval:{id}:approved:user:ann@acme.example")
    );
    chain_verifies(&b);
}

fn one_rejection_rejects(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "promote");
    s.approve(TENANT, &id, "user:ann@acme.example", None, at(1))
        .unwrap();
    assert_eq!(
        code(s.reject(TENANT, &id, "user:eve@evil.example", "no", at(2))),
        "A_NOT_APPROVER"
    );
    assert_eq!(
        code(s.reject(TENANT, &id, "user:bo@acme.example", "  ", at(2))),
        "A_INVALID_ARGUMENT"
    );
    let v = s
        .reject(TENANT, &id, "user:bo@acme.example", "wrong release", at(2))
        .unwrap();
    assert_eq!(v.status, Status::Rejected);
    assert_eq!(v.rejection.as_ref().unwrap().reason, "wrong release");
    assert_eq!(
        code(s.approve(TENANT, &id, "user:cy@acme.example", None, at(3))),
        "A_NOT_PENDING"
    );
    assert_eq!(
        code(s.reject(TENANT, &id, "user:cy@acme.example", "x", at(3))),
        "A_NOT_PENDING"
    );
    // The requester may withdraw a request.
    let id2 = request(&mut s, "refund");
    assert_eq!(
        s.reject(TENANT, &id2, "agent:support-bot", "not needed", at(4))
            .unwrap()
            .status,
        Status::Rejected
    );
    chain_verifies(&b);
}

fn rejecting_a_grant_revokes_its_token(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "refund");
    let token = granted(
        s.approve(TENANT, &id, "user:lee@acme.example", None, at(1))
            .unwrap(),
    );
    s.reject(TENANT, &id, "user:kim@acme.example", "change freeze", at(2))
        .unwrap();
    assert_eq!(
        code(s.redeem(TENANT, &token.token, &payload(), None, at(3))),
        "A_NOT_PENDING"
    );
}

fn state_survives_a_restart(b: Backend) {
    let (id, token, before, listed) = {
        let mut s = service(&b);
        let id = request(&mut s, "promote");
        s.approve(TENANT, &id, "user:ann@acme.example", Some("lgtm"), at(1))
            .unwrap();
        let other = request(&mut s, "refund");
        let token = granted(
            s.approve(TENANT, &other, "user:lee@acme.example", None, at(2))
                .unwrap(),
        );
        let before = s.show(TENANT, &id, at(3)).unwrap();
        let listed = s.list(TENANT, None, at(3)).unwrap();
        (id, token, before, listed)
    };
    // A new process: a new connection, a new service.
    let mut s = service(&b);
    assert_eq!(s.show(TENANT, &id, at(3)).unwrap(), before);
    assert_eq!(s.list(TENANT, None, at(3)).unwrap(), listed);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].approval_id, id, "oldest first");
    let token2 = granted(
        s.approve(TENANT, &id, "user:bo@acme.example", None, at(4))
            .unwrap(),
    );
    assert_eq!(token2.claims.approvers.len(), 2);
    s.redeem(TENANT, &token.token, &payload(), None, at(5))
        .unwrap();
    let mut s = service(&b);
    assert_eq!(
        code(s.redeem(TENANT, &token.token, &payload(), None, at(6))),
        "A_TOKEN_REUSED"
    );
    chain_verifies(&b);
}

fn concurrent_redeems_let_exactly_one_through(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "refund");
    let token = granted(
        s.approve(TENANT, &id, "user:lee@acme.example", None, at(1))
            .unwrap(),
    );
    let b = Arc::new(b);
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (b, barrier, token) = (b.clone(), barrier.clone(), token.token.clone());
            std::thread::spawn(move || {
                let mut s = service(&b);
                barrier.wait();
                s.redeem(TENANT, &token, &payload(), None, at(2))
                    .map_err(|e| e.code())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|c| *c == "A_TOKEN_REUSED"));
    assert_eq!(
        kinds(&b, &id)
            .iter()
            .filter(|k| *k == "approval.used")
            .count(),
        1
    );
    chain_verifies(&b);
}

fn concurrent_approvers_grant_once(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "refund");
    let b = Arc::new(b);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = ["user:ann@acme.example", "user:bo@acme.example"]
        .into_iter()
        .map(|who| {
            let (b, barrier, id) = (b.clone(), barrier.clone(), id.clone());
            std::thread::spawn(move || {
                let mut s = service(&b);
                barrier.wait();
                granted(s.approve(TENANT, &id, who, None, at(1)).unwrap())
            })
        })
        .collect();
    let tokens: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        tokens[0], tokens[1],
        "both approvers get the one granted token"
    );
    assert_eq!(
        kinds(&b, &id)
            .iter()
            .filter(|k| *k == "approval.granted")
            .count(),
        1
    );
}

fn forged_and_foreign_tokens_are_refused(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "refund");
    let token = granted(
        s.approve(TENANT, &id, "user:lee@acme.example", None, at(1))
            .unwrap(),
    );
    // Signed by a key the service does not trust.
    let rogue = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let forged = clyra_policy::approvals::token::issue(&token.claims, &rogue).unwrap();
    assert_eq!(
        code(s.redeem(TENANT, &forged.token, &payload(), None, at(2))),
        "A_TOKEN_SIGNATURE"
    );
    // One character changed.
    let mut bytes = token.token.clone().into_bytes();
    let i = bytes.len() - 5;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    assert!(matches!(
        code(s.redeem(TENANT, &flipped, &payload(), None, at(2))),
        "A_TOKEN_SIGNATURE" | "A_TOKEN_MALFORMED"
    ));
    assert_eq!(
        code(s.redeem(TENANT, "garbage", &payload(), None, at(2))),
        "A_TOKEN_MALFORMED"
    );
    assert_eq!(
        code(s.redeem("globex", &token.token, &payload(), None, at(2))),
        "A_TOKEN_TENANT"
    );
    assert_eq!(
        code(s.redeem(TENANT, &token.token, &payload(), Some("promote"), at(2))),
        "A_CHECKPOINT_MISMATCH"
    );
    // A validly signed token whose id is not the one this journal granted.
    let mut other = token.claims.clone();
    other.token_id = "tok_00000000000000000000000000000000".into();
    let stray = clyra_policy::approvals::token::issue(&other, key()).unwrap();
    assert_eq!(
        code(s.redeem(TENANT, &stray.token, &payload(), None, at(2))),
        "A_TOKEN_UNKNOWN"
    );
    // None of that consumed the real one.
    s.redeem(TENANT, &token.token, &payload(), None, at(2))
        .unwrap();
}

fn forged_journal_entries_do_not_count(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "promote");
    // A recorder client can append any kind to any run of its tenant; without the approvals
    // key its approval does not count.
    let mut forged = NewEvent::new(
        TENANT,
        "approval.approved",
        json!({"approval_id": id, "approver": "user:bo@acme.example"}),
    );
    forged.run = Some(format!("approval:{id}"));
    forged.id = Some(format!("approval:{id}:approved:user:bo@acme.example"));
    forged.ts = Some(at(1));
    let mut raw = b.open();
    raw.append(&[forged], &BodyPolicy::Full).unwrap();
    match s
        .approve(TENANT, &id, "user:ann@acme.example", None, at(2))
        .unwrap()
    {
        Outcome::Pending { have, .. } => assert_eq!(have, 1),
        Outcome::Granted { .. } => panic!("a forged approval was counted"),
    }
    let v = s.show(TENANT, &id, at(3)).unwrap();
    let f = &v.history[1];
    assert!(!f.counted && f.signed_by.is_none(), "{f:?}");
    assert!(f.note.as_deref().unwrap().contains("not signed"));
    // A signed entry moved to another approval does not count there either.
    let id2 = request(&mut s, "promote");
    let mut stored = None;
    raw.scan_run(TENANT, &format!("approval:{id}"), &mut |e| {
        let v: Value = serde_json::from_slice(&e.canonical).unwrap();
        if v["kind"] == "approval.approved" && v["body"]["sig"].is_object() {
            stored = Some(v);
        }
        Ok(())
    })
    .unwrap();
    let stored = stored.unwrap();
    let mut replay = NewEvent::new(TENANT, "approval.approved", stored["body"].clone());
    replay.run = Some(format!("approval:{id2}"));
    replay.id = Some(format!("approval:{id2}:approved:user:ann@acme.example"));
    replay.ts = Some(at(4));
    raw.append(&[replay], &BodyPolicy::Full).unwrap();
    assert_eq!(s.show(TENANT, &id2, at(5)).unwrap().have(), 0);
    chain_verifies(&b);
}

fn verify_only_keys_redeem_but_cannot_grant(b: Backend) {
    let mut s = service(&b);
    let id = request(&mut s, "refund");
    let token = granted(
        s.approve(TENANT, &id, "user:lee@acme.example", None, at(1))
            .unwrap(),
    );
    let mut gate = Approvals::new(
        b.open(),
        Some(&section()),
        Keys::verify_only(vec![key().public_key().clone()]),
        "sha256:feed",
    )
    .unwrap();
    assert_eq!(
        code(gate.request(TENANT, "refund", "agent:x", &payload(), &action(), at(1))),
        "A_NO_SIGNING_KEY"
    );
    let id2 = request(&mut s, "promote");
    assert_eq!(
        code(gate.approve(TENANT, &id2, "user:ann@acme.example", None, at(1))),
        "A_NO_SIGNING_KEY"
    );
    gate.redeem(TENANT, &token.token, &payload(), None, at(2))
        .unwrap();
    // The gateway's unsigned `used` entry counts: it can only restrict.
    assert_eq!(s.show(TENANT, &id, at(3)).unwrap().status, Status::Used);
}

fn bad_input_is_refused_before_the_journal(b: Backend) {
    let mut s = service(&b);
    assert_eq!(
        code(s.request(TENANT, "nope", "agent:x", &payload(), &action(), t0())),
        "A_UNKNOWN_CHECKPOINT"
    );
    assert_eq!(
        code(s.request(TENANT, "refund", "agent:\nx", &payload(), &action(), t0())),
        "A_IDENTITY_INVALID"
    );
    assert_eq!(
        code(s.request(TENANT, "refund", "", &payload(), &action(), t0())),
        "A_IDENTITY_INVALID"
    );
    assert_eq!(
        code(s.request(
            TENANT,
            "refund",
            "agent:x",
            &json!({"n": 1u64 << 60}),
            &action(),
            t0()
        )),
        "A_PAYLOAD_INVALID"
    );
    assert_eq!(
        code(s.request(
            "Not A Tenant",
            "refund",
            "agent:x",
            &payload(),
            &action(),
            t0()
        )),
        "A_INVALID_ARGUMENT"
    );
    assert_eq!(
        code(s.show(TENANT, "apr_00000000000000000000000000000000", t0())),
        "A_UNKNOWN_APPROVAL"
    );
    assert_eq!(
        code(s.show(TENANT, "../../etc", t0())),
        "A_UNKNOWN_APPROVAL"
    );
    assert_eq!(
        b.open().head(TENANT).unwrap().size,
        0,
        "nothing was written"
    );
}

both!(
    one_approver_grants_and_the_token_works_once,
    a_pending_approval_expires,
    a_token_expires,
    a_token_is_bound_to_its_payload,
    the_two_person_rule,
    one_rejection_rejects,
    rejecting_a_grant_revokes_its_token,
    state_survives_a_restart,
    concurrent_redeems_let_exactly_one_through,
    concurrent_approvers_grant_once,
    forged_and_foreign_tokens_are_refused,
    forged_journal_entries_do_not_count,
    verify_only_keys_redeem_but_cannot_grant,
    bad_input_is_refused_before_the_journal,
);

// ---- webhook ---------------------------------------------------------------------------------

/// Posts a notice with a plain std TCP client (the CLI uses an HTTP library; the policy layer
/// only builds the notice).
struct TcpNotifier;

impl Notifier for TcpNotifier {
    fn deliver(&self, n: &Notice) -> Result<(), String> {
        let rest = n.url.strip_prefix("http://").ok_or("http only")?;
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let mut conn = std::net::TcpStream::connect(host).map_err(|e| e.kind().to_string())?;
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            n.body.len()
        );
        if let Some(sig) = &n.signature {
            req.push_str(&format!("{}: {sig}\r\n", notice::SIGNATURE_HEADER));
        }
        req.push_str("\r\n");
        conn.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        conn.write_all(&n.body).map_err(|e| e.to_string())?;
        let mut status = String::new();
        BufReader::new(conn)
            .read_line(&mut status)
            .map_err(|e| e.to_string())?;
        if status.starts_with("HTTP/1.1 2") {
            Ok(())
        } else {
            Err(format!("status {}", status.trim()))
        }
    }
}

/// The service with a webhook at `url` and the notifier that posts over TCP.
fn webhook_service(b: &Backend, url: &str, secret_env: Option<&str>) -> Approvals {
    Approvals::new(
        b.open(),
        Some(&with_webhook(url, secret_env)),
        signing_keys(),
        "h",
    )
    .unwrap()
    .with_notifier(Box::new(TcpNotifier), None)
}

fn with_webhook(url: &str, secret_env: Option<&str>) -> model::Approvals {
    let mut a = section();
    a.webhook = Some(model::Webhook {
        url: url.into(),
        secret_env: secret_env.map(str::to_string),
    });
    a
}

#[test]
fn the_webhook_gets_a_signed_notice() {
    let b = Backend::sqlite();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/approvals", listener.local_addr().unwrap());
    let server = http_once::serve_once(listener);
    let secret = b"whsec-0123456789abcdef".to_vec();
    let mut s = Approvals::new(
        b.open(),
        Some(&with_webhook(&url, Some("CLYRA_WEBHOOK_SECRET"))),
        signing_keys(),
        "sha256:feed",
    )
    .unwrap()
    .with_notifier(Box::new(TcpNotifier), Some(secret.clone().into()));
    let p = request_pending(&mut s, "promote");
    assert_eq!(p.notice, NoticeStatus::Sent);
    let (headers, body) = server.join().unwrap();
    assert!(
        headers[0].starts_with("POST /hooks/approvals "),
        "{headers:?}"
    );
    let sig = headers
        .iter()
        .find_map(|h| h.strip_prefix("Clyra-Signature: "))
        .expect("signature header");
    assert!(sig.starts_with(&format!("t={},v1=", t0().as_second())));
    notice::verify_signature(&secret, sig, &body, t0().as_second() + 10, 300).unwrap();
    assert!(notice::verify_signature(b"wrong", sig, &body, t0().as_second(), 300).is_err());
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["type"], "approval.requested");
    assert_eq!(doc["approval_id"], p.approval_id.as_str());
    assert_eq!(doc["payload_sha256"], p.payload_sha256.as_str());
    assert_eq!(doc["two_person"], true);
    assert_eq!(doc["expires_at"], "2026-03-01T11:00:00.000Z");
    assert!(doc["approve_command"]
        .as_str()
        .unwrap()
        .contains(&p.approval_id));
    assert!(
        !String::from_utf8_lossy(&body).contains("o-17"),
        "no payload in the notice"
    );
}

#[test]
fn a_failed_notice_is_recorded_and_does_not_block() {
    let b = Backend::sqlite();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut s = webhook_service(&b, &url, None);
    let p = request_pending(&mut s, "refund");
    assert!(
        matches!(&p.notice, NoticeStatus::Failed { recorded: true, .. }),
        "{:?}",
        p.notice
    );
    assert_eq!(
        kinds(&b, &p.approval_id),
        ["approval.requested", "approval.notify_failed"]
    );
    let v = s.show(TENANT, &p.approval_id, at(1)).unwrap();
    assert_eq!(v.status, Status::Pending);
    assert_eq!(v.notify_failures.len(), 1);
    // A configured secret that is missing: nothing is sent unsigned.
    let mut s = webhook_service(&b, &url, Some("NOT_SET_ANYWHERE"));
    let p = request_pending(&mut s, "refund");
    match p.notice {
        NoticeStatus::Failed { reason, .. } => {
            assert!(reason.contains("NOT_SET_ANYWHERE"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let _ = key().key_id();
}
