//! Idempotency on both backends: claim, replay, concurrent duplicates (409), payload mismatch
//! (422), fingerprints of canonical bodies, tenant scoping, TTLs, and two instances racing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use clyra_gateway::idempotency::{
    Begin, Idempotency, IdempotencyConfig, IdempotencyError, KeyOrigin, StoredResponse,
};
use clyra_gateway::state::{ManualClock, MemoryStore, StateStore};
use std::sync::{Arc, Barrier};

const T0: u64 = 1_764_000_000_000;
const SECRET: &[u8] = b"test secret, 32 bytes long......";
const CONFIG: IdempotencyConfig = IdempotencyConfig {
    ttl_ms: 86_400_000,
    in_flight_ttl_ms: 30_000,
};

fn layer(store: Arc<dyn StateStore>) -> (Idempotency, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    (
        Idempotency::new(store, clock.clone(), SECRET, CONFIG).unwrap(),
        clock,
    )
}

fn response() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"id":"crm-42"}"#.to_vec(),
    }
}

fn header_key_flow(store: Arc<dyn StateStore>) {
    let (idem, clock) = layer(store);
    let body = br#"{"email":"a@example.com","plan":"pro"}"#;
    let key = idem.key("acme", "crm.update", Some("req-1"), body).unwrap();
    assert_eq!(key.origin(), KeyOrigin::Header);
    let Begin::Proceed(ticket) = idem.begin("acme", &key).unwrap() else {
        panic!("first request must proceed")
    };
    // A duplicate while the first runs: 409.
    let dup = idem.begin("acme", &key).unwrap();
    assert_eq!(dup, Begin::InFlight);
    assert_eq!(dup.status(), Some(409));
    // Another tenant with the same header value is its own request.
    let other = idem
        .key("globex", "crm.update", Some("req-1"), body)
        .unwrap();
    assert!(matches!(
        idem.begin("globex", &other).unwrap(),
        Begin::Proceed(_)
    ));
    idem.finish(ticket, &response()).unwrap();
    // Replays, the same payload in another key order: the stored response.
    clock.advance(1_000);
    let same = br#"{ "plan": "pro", "email": "a@example.com" }"#;
    let again = idem.key("acme", "crm.update", Some("req-1"), same).unwrap();
    let replay = idem.begin("acme", &again).unwrap();
    assert_eq!(replay, Begin::Replay(response()));
    assert_eq!(replay.status(), Some(201));
    // The same key with a different payload: 422, never the stored response.
    let changed = idem
        .key(
            "acme",
            "crm.update",
            Some("req-1"),
            br#"{"email":"b@example.com"}"#,
        )
        .unwrap();
    let mismatch = idem.begin("acme", &changed).unwrap();
    assert_eq!(mismatch, Begin::Mismatch);
    assert_eq!(mismatch.status(), Some(422));
    // The same header on another route is another key.
    let route2 = idem.key("acme", "crm.delete", Some("req-1"), body).unwrap();
    assert!(matches!(
        idem.begin("acme", &route2).unwrap(),
        Begin::Proceed(_)
    ));
    // After the TTL the key is free again.
    clock.advance(CONFIG.ttl_ms);
    assert!(matches!(
        idem.begin("acme", &key).unwrap(),
        Begin::Proceed(_)
    ));
}

fn fingerprint_flow(store: Arc<dyn StateStore>) {
    let (idem, _clock) = layer(store.clone());
    let a = idem
        .key("acme", "tool.sql", None, br#"{"q":"select 1","n":1.0}"#)
        .unwrap();
    let b = idem
        .key("acme", "tool.sql", None, b"{\"n\":1,\n \"q\":\"select 1\"}")
        .unwrap();
    assert_eq!(a.origin(), KeyOrigin::Fingerprint);
    assert_eq!(a, b, "canonically equal bodies must share a fingerprint");
    assert!(
        a.as_str().starts_with("f:") && a.as_str().len() == 66,
        "{}",
        a.as_str()
    );
    let c = idem
        .key("acme", "tool.sql", None, br#"{"q":"select 2","n":1}"#)
        .unwrap();
    assert_ne!(a, c);
    assert_ne!(
        a,
        idem.key("globex", "tool.sql", None, br#"{"q":"select 1","n":1}"#)
            .unwrap()
    );
    assert_ne!(
        a,
        idem.key("acme", "tool.other", None, br#"{"q":"select 1","n":1}"#)
            .unwrap()
    );
    // Non-JSON bodies are fingerprinted as bytes.
    let raw1 = idem
        .key("acme", "upload", None, b"\xff\x00 not json")
        .unwrap();
    let raw2 = idem
        .key("acme", "upload", None, b"\xff\x00 not json!")
        .unwrap();
    assert_ne!(raw1, raw2);
    // Another secret, other fingerprints (they reveal nothing without it).
    let other = Idempotency::new(store, Arc::new(ManualClock::new(T0)), b"other", CONFIG).unwrap();
    assert_ne!(
        a,
        other
            .key("acme", "tool.sql", None, br#"{"q":"select 1","n":1}"#)
            .unwrap()
    );

    let Begin::Proceed(ticket) = idem.begin("acme", &a).unwrap() else {
        panic!("first must proceed")
    };
    assert_eq!(idem.begin("acme", &b).unwrap(), Begin::InFlight);
    idem.finish(ticket, &response()).unwrap();
    assert_eq!(idem.begin("acme", &b).unwrap(), Begin::Replay(response()));
}

fn abandon_and_in_flight_expiry(store: Arc<dyn StateStore>) {
    let (idem, clock) = layer(store);
    let key = idem.key("acme", "r", Some("k-abandon"), b"{}").unwrap();
    let Begin::Proceed(ticket) = idem.begin("acme", &key).unwrap() else {
        panic!("first must proceed")
    };
    // The upstream failed: the claim is dropped and a retry runs.
    assert!(idem.abandon(ticket).unwrap());
    let Begin::Proceed(_lost) = idem.begin("acme", &key).unwrap() else {
        panic!("retry after abandon must proceed")
    };
    // This holder never finishes (its instance died): after in_flight_ttl_ms a retry runs.
    clock.advance(CONFIG.in_flight_ttl_ms - 1);
    assert_eq!(idem.begin("acme", &key).unwrap(), Begin::InFlight);
    clock.advance(1);
    assert!(matches!(
        idem.begin("acme", &key).unwrap(),
        Begin::Proceed(_)
    ));
}

/// Two layers (two gateway instances) race on one key, many rounds: exactly one proceeds.
fn race(a: Arc<dyn StateStore>, b: Arc<dyn StateStore>) {
    let layers = [Arc::new(layer(a).0), Arc::new(layer(b).0)];
    for round in 0..100 {
        let header = format!("race-{round}");
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = layers
            .iter()
            .map(|idem| {
                let (idem, barrier, header) = (idem.clone(), barrier.clone(), header.clone());
                std::thread::spawn(move || {
                    let key = idem.key("acme", "r", Some(&header), b"{\"x\":1}").unwrap();
                    barrier.wait();
                    match idem.begin("acme", &key).unwrap() {
                        Begin::Proceed(_) => "proceed",
                        Begin::InFlight => "in-flight",
                        other => panic!("unexpected {other:?}"),
                    }
                })
            })
            .collect();
        let mut outcomes: Vec<&str> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        outcomes.sort_unstable();
        assert_eq!(outcomes, ["in-flight", "proceed"], "round {round}");
    }
}

#[test]
fn memory_header_key_flow() {
    header_key_flow(Arc::new(MemoryStore::new()));
}

#[test]
fn redis_header_key_flow() {
    header_key_flow(Arc::new(common::redis("idem-header")));
}

#[test]
fn memory_fingerprint_flow() {
    fingerprint_flow(Arc::new(MemoryStore::new()));
}

#[test]
fn redis_fingerprint_flow() {
    fingerprint_flow(Arc::new(common::redis("idem-fingerprint")));
}

#[test]
fn memory_abandon_and_in_flight_expiry() {
    abandon_and_in_flight_expiry(Arc::new(MemoryStore::new()));
}

#[test]
fn redis_abandon_and_in_flight_expiry() {
    abandon_and_in_flight_expiry(Arc::new(common::redis("idem-abandon")));
}

#[test]
fn memory_race_has_one_winner() {
    let s: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    race(s.clone(), s);
}

#[test]
fn redis_race_has_one_winner() {
    let prefix = common::unique_prefix("idem-race");
    race(
        Arc::new(common::redis_at(&prefix)),
        Arc::new(common::redis_at(&prefix)),
    );
}

#[test]
fn header_keys_are_validated() {
    let (idem, _) = layer(Arc::new(MemoryStore::new()));
    for bad in ["", "tab\there", "é", &"x".repeat(256)] {
        let err = idem.key("acme", "r", Some(bad), b"{}").unwrap_err();
        assert!(
            matches!(err, IdempotencyError::InvalidKey { .. }),
            "{bad:?}: {err}"
        );
    }
    assert!(idem.key("acme", "r", Some(&"x".repeat(255)), b"{}").is_ok());
    assert!(matches!(
        Idempotency::new(
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::new(T0)),
            b"",
            CONFIG
        ),
        Err(IdempotencyError::EmptySecret)
    ));
}

#[test]
fn a_corrupt_stored_record_is_an_error_not_a_replay() {
    let store = Arc::new(MemoryStore::new());
    let (idem, _) = layer(store.clone());
    let key = idem.key("acme", "r", Some("k"), b"{}").unwrap();
    store
        .complete("acme", key.as_str(), b"garbage", 60_000, T0)
        .unwrap();
    let err = idem.begin("acme", &key).unwrap_err();
    assert!(
        matches!(err, IdempotencyError::CorruptRecord { .. }),
        "{err}"
    );
}
