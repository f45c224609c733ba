//! Journal entries: what a producer sends ([`NewEvent`]), how its body is kept ([`BodyPolicy`]), and
//! how an event is sealed into the chain ([`seal`]).
//!
//! A sealed entry is one canonical JSON object (RFC 8785) with these members:
//!
//! | member | always | meaning |
//! |---|---|---|
//! | `seq` | yes | position in the tenant's journal, from 0, +1 per entry; also its Merkle leaf index |
//! | `prev` | yes | SHA-256 of the previous entry's canonical bytes (64 zeros for `seq` 0) |
//! | `ts` | yes | when the event happened (the producer's time, or `recorded_at`) |
//! | `recorded_at` | yes | when the journal sealed it; never decreases within a tenant |
//! | `kind` | yes | dotted lowercase, e.g. `dbt.model.finished` |
//! | `tenant` | yes | the tenant whose chain holds it |
//! | `body_policy` | yes | `hash`, `redacted` or `full` |
//! | `body_sha256` | yes | SHA-256 of the canonical bytes of the body as sent |
//! | `body` | no | the body (`full`) or the body with configured members replaced (`redacted`) |
//! | `id` | no | the producer's idempotency key, unique within the tenant |
//! | `run`, `run_seq`, `run_prev` | no | the run the event belongs to, its position in the run, and the digest of the run's previous entry |
//! | `session`, `actor` | no | the session and the actor that caused the event |

use clyra_evidence::chain::MAX_SEQ;
use clyra_evidence::digest::Digest;
use clyra_evidence::jcs;
use jiff::Timestamp;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// The longest tenant, run, session, actor or event id, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// What a producer sends: one event, before the journal seals it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The tenant whose chain receives the event (from authentication, never from the body).
    pub tenant: String,
    /// What happened, dotted lowercase.
    pub kind: String,
    /// When it happened; the journal uses its own clock when absent.
    pub ts: Option<Timestamp>,
    /// Idempotency key: a second event with the same id in the same tenant is not appended again.
    pub id: Option<String>,
    /// The run (a dbt invocation, a sync, an agent task) the event belongs to.
    pub run: Option<String>,
    /// The session (an agent conversation, a call).
    pub session: Option<String>,
    /// Who or what acted.
    pub actor: Option<String>,
    /// The event's data.
    pub body: Value,
}

/// Why an event was refused before it reached the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A member is missing.
    #[error("{pointer}: required member is missing")]
    Missing {
        /// JSON pointer of the missing member.
        pointer: String,
    },
    /// A member has the wrong type or an invalid value.
    #[error("{pointer}: {reason}")]
    Invalid {
        /// JSON pointer of the member.
        pointer: String,
        /// What is wrong.
        reason: String,
    },
    /// A member the event format does not define.
    #[error("{pointer}: unknown member (allowed: kind, ts, id, run, session, actor, body)")]
    Unknown {
        /// JSON pointer of the member.
        pointer: String,
    },
}

fn invalid(pointer: impl Into<String>, reason: impl Into<String>) -> EventError {
    EventError::Invalid {
        pointer: pointer.into(),
        reason: reason.into(),
    }
}

/// Checks a tenant name: 1 to 64 bytes of `[a-z0-9_-]`, starting with a letter or digit.
pub fn validate_tenant(tenant: &str) -> Result<(), EventError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && tenant.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "/tenant",
            "must be 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit",
        ))
    }
}

/// Checks a kind: segments of `[a-z0-9_]` joined by `.`, at most 128 bytes.
pub fn validate_kind(kind: &str) -> Result<(), EventError> {
    let ok = !kind.is_empty()
        && kind.len() <= 128
        && kind.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "/kind",
            "must be dotted lowercase: segments of a-z, 0-9 and _ joined by '.', at most 128 bytes",
        ))
    }
}

fn validate_id(pointer: &str, value: &str) -> Result<(), EventError> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(invalid(pointer, format!("must be 1 to {MAX_ID_LEN} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(pointer, "must not contain control characters"));
    }
    Ok(())
}

impl NewEvent {
    /// A new event of `kind` for `tenant` with `body`, no optional members.
    pub fn new(tenant: impl Into<String>, kind: impl Into<String>, body: Value) -> Self {
        NewEvent {
            tenant: tenant.into(),
            kind: kind.into(),
            ts: None,
            id: None,
            run: None,
            session: None,
            actor: None,
            body,
        }
    }

    /// Reads the wire form `{"kind", "ts"?, "id"?, "run"?, "session"?, "actor"?, "body"?}` for
    /// `tenant`. `base` is the JSON pointer of `value` in the request (`""` for a single event,
    /// `/events/3` in a batch), so errors name the exact member.
    pub fn from_wire(tenant: &str, value: &Value, base: &str) -> Result<Self, EventError> {
        validate_tenant(tenant)?;
        let obj = value
            .as_object()
            .ok_or_else(|| invalid(base_or_root(base), "event must be a JSON object"))?;
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "kind" | "ts" | "id" | "run" | "session" | "actor" | "body"
            ) {
                return Err(EventError::Unknown {
                    pointer: format!("{base}/{}", escape_pointer(key)),
                });
            }
        }
        let string = |name: &str| -> Result<Option<String>, EventError> {
            match obj.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(format!("{base}/{name}"), "must be a string")),
            }
        };
        let kind = string("kind")?.ok_or_else(|| EventError::Missing {
            pointer: format!("{base}/kind"),
        })?;
        validate_kind(&kind).map_err(|e| relocate(e, base))?;
        let ts = match string("ts")? {
            None => None,
            Some(s) => {
                Some(parse_timestamp(&s).map_err(|reason| invalid(format!("{base}/ts"), reason))?)
            }
        };
        let mut event = NewEvent::new(
            tenant,
            kind,
            obj.get("body").cloned().unwrap_or(Value::Null),
        );
        event.ts = ts;
        for (name, slot) in [
            ("id", &mut event.id),
            ("run", &mut event.run),
            ("session", &mut event.session),
            ("actor", &mut event.actor),
        ] {
            if let Some(v) = string(name)? {
                validate_id(&format!("{base}/{name}"), &v)?;
                *slot = Some(v);
            }
        }
        // The body must survive canonicalization (no big integers, not too deep).
        jcs::canonicalize_value(&event.body)
            .map_err(|e| invalid(format!("{base}/body"), e.to_string()))?;
        Ok(event)
    }

    /// Checks what `from_wire` checks, for events built in code.
    pub fn validate(&self) -> Result<(), EventError> {
        validate_tenant(&self.tenant)?;
        validate_kind(&self.kind)?;
        for (name, v) in [
            ("/id", &self.id),
            ("/run", &self.run),
            ("/session", &self.session),
            ("/actor", &self.actor),
        ] {
            if let Some(v) = v {
                validate_id(name, v)?;
            }
        }
        jcs::canonicalize_value(&self.body).map_err(|e| invalid("/body", e.to_string()))?;
        Ok(())
    }
}

fn base_or_root(base: &str) -> String {
    if base.is_empty() {
        "/".to_string()
    } else {
        base.to_string()
    }
}

fn relocate(e: EventError, base: &str) -> EventError {
    match e {
        EventError::Invalid { pointer, reason } => EventError::Invalid {
            pointer: format!("{base}{pointer}"),
            reason,
        },
        other => other,
    }
}

fn escape_pointer(key: &str) -> String {
    jcs::pointer_token(key)
}

/// Parses an RFC 3339 timestamp with an explicit offset.
pub fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("not an RFC 3339 timestamp: {e}"))
}

/// Formats a timestamp as the journal writes it: UTC, milliseconds, `Z`.
pub fn format_timestamp(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// How much of an event's body the journal keeps. Privacy by default: [`BodyPolicy::Hash`].
#[derive(Clone, Default)]
pub enum BodyPolicy {
    /// Keep only the SHA-256 of the body's canonical bytes.
    #[default]
    Hash,
    /// Keep the body with the members at `pointers` replaced by
    /// `{"redacted_sha256": hex(SHA-256(salt || canonical bytes of the member))}`. The salt keeps
    /// short values (a phone number, an email) from being guessed from their digest.
    Redacted {
        /// JSON pointers (RFC 6901) into the body. Pointers that do not resolve are ignored.
        pointers: Vec<String>,
        /// A secret of at least 16 bytes.
        salt: Zeroizing<Vec<u8>>,
    },
    /// Keep the whole body.
    Full,
}

impl std::fmt::Debug for BodyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyPolicy::Hash => f.write_str("Hash"),
            BodyPolicy::Redacted { pointers, .. } => f
                .debug_struct("Redacted")
                .field("pointers", pointers)
                .field("salt", &"<secret>")
                .finish(),
            BodyPolicy::Full => f.write_str("Full"),
        }
    }
}

impl BodyPolicy {
    /// The name written into `body_policy`.
    pub fn name(&self) -> &'static str {
        match self {
            BodyPolicy::Hash => "hash",
            BodyPolicy::Redacted { .. } => "redacted",
            BodyPolicy::Full => "full",
        }
    }

    /// A redaction policy; the salt must be at least 16 bytes and every pointer valid RFC 6901.
    pub fn redacted(pointers: Vec<String>, salt: Vec<u8>) -> Result<Self, String> {
        if salt.len() < 16 {
            return Err(format!(
                "redaction salt must be at least 16 bytes, got {}",
                salt.len()
            ));
        }
        for p in &pointers {
            if !p.starts_with('/') {
                return Err(format!(
                    "redaction pointer `{p}` must start with '/' (RFC 6901)"
                ));
            }
        }
        Ok(BodyPolicy::Redacted {
            pointers,
            salt: Zeroizing::new(salt),
        })
    }

    /// Returns `(body_sha256, kept body)` for `body`.
    pub fn apply(&self, body: &Value) -> Result<(Digest, Option<Value>), jcs::JcsError> {
        let digest = Digest::sha256(&jcs::canonicalize_value(body)?);
        match self {
            BodyPolicy::Hash => Ok((digest, None)),
            BodyPolicy::Full => Ok((digest, Some(body.clone()))),
            BodyPolicy::Redacted { pointers, salt } => {
                let mut kept = body.clone();
                for p in pointers {
                    if let Some(slot) = kept.pointer_mut(p) {
                        let bytes = jcs::canonicalize_value(slot)?;
                        let d = Digest::sha256_parts(&[salt.as_slice(), &bytes]);
                        let mut m = Map::new();
                        m.insert("redacted_sha256".into(), Value::String(d.to_hex()));
                        *slot = Value::Object(m);
                    }
                }
                Ok((digest, Some(kept)))
            }
        }
    }
}

/// The head of a tenant's chain: how many entries it has and the digest of the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Number of entries; the next entry's `seq`.
    pub size: u64,
    /// Digest of the last entry's canonical bytes (zeros when empty).
    pub head: Digest,
    /// `recorded_at` of the last entry (the next one never goes below it).
    pub recorded_at: Option<Timestamp>,
}

impl ChainHead {
    /// The head of an empty chain.
    pub const EMPTY: ChainHead = ChainHead {
        size: 0,
        head: Digest::ZERO,
        recorded_at: None,
    };
}

/// The head of a run's chain inside a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunHead {
    /// Number of entries in the run; the next entry's `run_seq`.
    pub size: u64,
    /// Digest of the run's last entry.
    pub head: Digest,
}

impl RunHead {
    /// The head of a run with no entries.
    pub const EMPTY: RunHead = RunHead {
        size: 0,
        head: Digest::ZERO,
    };
}

/// An entry sealed into its chain, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    /// Tenant.
    pub tenant: String,
    /// Position in the tenant's chain and Merkle leaf index.
    pub seq: u64,
    /// The run and the position in it, when the event belongs to one.
    pub run: Option<(String, u64)>,
    /// The producer's idempotency key.
    pub id: Option<String>,
    /// `recorded_at`.
    pub recorded_at: Timestamp,
    /// The canonical JSON bytes: what the chain, the Merkle tree and bundles use.
    pub canonical: Vec<u8>,
    /// SHA-256 of `canonical`: the next entry's `prev`.
    pub hash: Digest,
    /// RFC 9162 leaf hash of `canonical`.
    pub leaf: Digest,
}

/// Why sealing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The chain is full (`seq` would pass 2^53 - 1).
    #[error("the chain of tenant `{0}` is full")]
    ChainFull(String),
    /// The body cannot be canonicalized.
    #[error("body: {0}")]
    Body(#[from] jcs::JcsError),
}

/// Seals `event` after `head` (and, for an event in a run, after `run_head`), at `now`.
///
/// `recorded_at` is `now`, raised to the previous entry's when the clock went backwards, so that
/// time ranges map to contiguous `seq` ranges.
pub fn seal(
    event: &NewEvent,
    policy: &BodyPolicy,
    head: &ChainHead,
    run_head: Option<&RunHead>,
    now: Timestamp,
) -> Result<SealedEntry, SealError> {
    if head.size > MAX_SEQ {
        return Err(SealError::ChainFull(event.tenant.clone()));
    }
    let recorded_at = match head.recorded_at {
        Some(last) if last > now => last,
        _ => now,
    };
    // Millisecond precision, as written: keeps the stored order and the text in agreement.
    let recorded_at = truncate_ms(recorded_at);
    let (body_sha256, kept) = policy.apply(&event.body)?;
    let mut m = Map::new();
    m.insert("seq".into(), Value::from(head.size));
    m.insert("prev".into(), Value::String(head.head.to_hex()));
    m.insert(
        "ts".into(),
        Value::String(format_timestamp(event.ts.unwrap_or(recorded_at))),
    );
    m.insert(
        "recorded_at".into(),
        Value::String(format_timestamp(recorded_at)),
    );
    m.insert("kind".into(), Value::String(event.kind.clone()));
    m.insert("tenant".into(), Value::String(event.tenant.clone()));
    m.insert("body_policy".into(), Value::String(policy.name().into()));
    m.insert("body_sha256".into(), Value::String(body_sha256.to_hex()));
    if let Some(body) = kept {
        m.insert("body".into(), body);
    }
    if let Some(id) = &event.id {
        m.insert("id".into(), Value::String(id.clone()));
    }
    if let Some(session) = &event.session {
        m.insert("session".into(), Value::String(session.clone()));
    }
    if let Some(actor) = &event.actor {
        m.insert("actor".into(), Value::String(actor.clone()));
    }
    let run = match (&event.run, run_head) {
        (Some(run), Some(rh)) => {
            m.insert("run".into(), Value::String(run.clone()));
            m.insert("run_seq".into(), Value::from(rh.size));
            m.insert("run_prev".into(), Value::String(rh.head.to_hex()));
            Some((run.clone(), rh.size))
        }
        (Some(run), None) => {
            m.insert("run".into(), Value::String(run.clone()));
            m.insert("run_seq".into(), Value::from(0u64));
            m.insert("run_prev".into(), Value::String(Digest::ZERO.to_hex()));
            Some((run.clone(), 0))
        }
        (None, _) => None,
    };
    let canonical = jcs::canonicalize_value(&Value::Object(m))?;
    Ok(SealedEntry {
        tenant: event.tenant.clone(),
        seq: head.size,
        run,
        id: event.id.clone(),
        recorded_at,
        hash: Digest::sha256(&canonical),
        leaf: clyra_evidence::merkle::leaf_hash(&canonical),
        canonical,
    })
}

fn truncate_ms(ts: Timestamp) -> Timestamp {
    let ms = ts.as_millisecond();
    Timestamp::from_millisecond(ms).unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_errors_name_the_member() {
        let e = NewEvent::from_wire("acme", &json!({"kind": "A.B"}), "/events/2").unwrap_err();
        assert_eq!(e.to_string().split(':').next().unwrap(), "/events/2/kind");
        let e = NewEvent::from_wire("acme", &json!({"kind": "a", "extra": 1}), "").unwrap_err();
        assert!(e.to_string().starts_with("/extra"), "{e}");
        let e = NewEvent::from_wire("acme", &json!({"body": {}}), "").unwrap_err();
        assert_eq!(
            e,
            EventError::Missing {
                pointer: "/kind".into()
            }
        );
        let e =
            NewEvent::from_wire("acme", &json!({"kind": "a", "ts": "yesterday"}), "").unwrap_err();
        assert!(e.to_string().starts_with("/ts"), "{e}");
        let e = NewEvent::from_wire(
            "acme",
            &json!({"kind": "a", "body": {"n": 9007199254740993u64}}),
            "",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("/body"), "{e}");
        assert!(NewEvent::from_wire("Acme", &json!({"kind": "a"}), "").is_err());
    }

    #[test]
    fn hash_policy_keeps_only_the_digest() {
        let ev = NewEvent::new("acme", "x.y", json!({"card": "4111"}));
        let e = seal(
            &ev,
            &BodyPolicy::Hash,
            &ChainHead::EMPTY,
            None,
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        let text = String::from_utf8(e.canonical.clone()).unwrap();
        assert!(!text.contains("4111"), "{text}");
        assert!(text.contains("\"body_policy\":\"hash\""));
        assert_eq!(e.hash, Digest::sha256(&e.canonical));
    }

    #[test]
    fn redaction_is_salted_and_keeps_the_rest() {
        let ev = NewEvent::new(
            "acme",
            "x.y",
            json!({"phone": "+15551234567", "status": "ok"}),
        );
        let p1 =
            BodyPolicy::redacted(vec!["/phone".into(), "/missing".into()], vec![1u8; 16]).unwrap();
        let p2 = BodyPolicy::redacted(vec!["/phone".into()], vec![2u8; 16]).unwrap();
        let a = seal(&ev, &p1, &ChainHead::EMPTY, None, Timestamp::UNIX_EPOCH).unwrap();
        let b = seal(&ev, &p2, &ChainHead::EMPTY, None, Timestamp::UNIX_EPOCH).unwrap();
        let ta = String::from_utf8(a.canonical).unwrap();
        assert!(
            !ta.contains("5551234567")
                && ta.contains("\"status\":\"ok\"")
                && ta.contains("redacted_sha256")
        );
        assert_ne!(
            ta,
            String::from_utf8(b.canonical).unwrap(),
            "different salts give different digests"
        );
        assert!(BodyPolicy::redacted(vec![], vec![0u8; 15]).is_err());
        assert!(
            !format!("{p1:?}").contains("1, 1"),
            "salt must not appear in Debug"
        );
    }

    #[test]
    fn recorded_at_never_goes_backwards() {
        let ev = NewEvent::new("acme", "x", Value::Null);
        let later: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let head = ChainHead {
            size: 5,
            head: Digest::sha256(b"x"),
            recorded_at: Some(later),
        };
        let e = seal(&ev, &BodyPolicy::Hash, &head, None, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(e.recorded_at, later);
        assert_eq!(e.seq, 5);
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-z.A-Z_ /~\\u{0}-\\u{7f}]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("kind"),
                Just("ts"),
                Just("id"),
                Just("run"),
                Just("body"),
                Just("x")
            ]
            .prop_map(|s| Value::String(s.to_string())),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("kind".to_string()),
                        Just("ts".to_string()),
                        Just("run".to_string()),
                        Just("body".to_string()),
                        Just("actor".to_string()),
                        "[a-z]{1,3}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever a client sends, reading it never panics, and what is accepted seals.
        #[test]
        fn any_wire_value_is_accepted_or_refused_cleanly(v in arb_json()) {
            if let Ok(e) = NewEvent::from_wire("acme", &v, "") {
                e.validate().unwrap();
                seal(&e, &BodyPolicy::Full, &ChainHead::EMPTY, None, Timestamp::UNIX_EPOCH).unwrap();
            }
        }
    }
}
