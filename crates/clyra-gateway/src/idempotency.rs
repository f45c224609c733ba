//! Idempotency: a repeated request is answered with the response of the first, not executed
//! twice; a duplicate arriving while the first is still running is refused with `409`.
//!
//! The key is either the client's `Idempotency-Key` header (scoped by route), or, when the client
//! sends none, a fingerprint: HMAC-SHA256 under a gateway secret of the tenant, the route and the
//! body in RFC 8785 canonical form ([`clyra_evidence::jcs`]), so that the same JSON with other
//! key order or whitespace is the same request. Bodies that are not JSON are fingerprinted as
//! raw bytes (under a different domain tag). Keys live in the [`StateStore`] under the tenant, so
//! one tenant can neither replay nor block another's requests.
//!
//! Each stored response carries the MAC of the request that produced it. A replay under a header
//! key is only served when the MAC of the new request matches (compared in constant time);
//! otherwise the key was reused for a different payload and the gateway answers `422`.
//!
//! The flow for one request:
//! 1. [`Idempotency::key`] derives the [`IdempotencyKey`];
//! 2. [`Idempotency::begin`] claims it: [`Begin::Proceed`] with a [`Ticket`] (forward the
//!    request), [`Begin::Replay`] (answer the stored response), [`Begin::InFlight`] (`409`), or
//!    [`Begin::Mismatch`] (`422`);
//! 3. after forwarding, [`Idempotency::finish`] stores the response for `ttl_ms`, or
//!    [`Idempotency::abandon`] drops the claim (the upstream failed; a retry may run).
//!
//! A claim that is neither finished nor abandoned (the instance died) expires after
//! `in_flight_ttl_ms`.

use crate::state::{Claim, Clock, StateError, StateStore};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The status for a concurrent duplicate.
pub const STATUS_CONFLICT: u16 = 409;
/// The status for a header key reused with a different payload.
pub const STATUS_UNPROCESSABLE: u16 = 422;
/// The longest header key accepted.
pub const MAX_HEADER_KEY_LEN: usize = 255;

const RECORD_MAGIC: &[u8; 4] = b"CIR1";
const DOMAIN: &[u8] = b"clyra-gateway-idempotency-v1\0";

/// Errors from the idempotency layer.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The client's idempotency header is unusable (answer `400`).
    #[error("invalid idempotency key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: String,
    },
    /// The fingerprint secret is empty.
    #[error("the idempotency fingerprint secret is empty")]
    EmptySecret,
    /// The configuration is unusable.
    #[error("invalid idempotency configuration: {0}")]
    Config(String),
    /// A stored record could not be decoded (a different version or a corrupted store).
    #[error("stored idempotency record for key `{key}` is corrupt: {reason}")]
    CorruptRecord {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The state backend failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Idempotency settings from policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// How long a completed response is replayed, in milliseconds.
    pub ttl_ms: u64,
    /// How long a claim is held without completing before another request may take it over.
    pub in_flight_ttl_ms: u64,
}

/// Where a key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The client's idempotency header.
    Header,
    /// The HMAC fingerprint of the canonical body.
    Fingerprint,
}

/// A derived key, with the MAC of the request it was derived for.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    store_key: String,
    origin: KeyOrigin,
    request_mac: [u8; 32],
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyKey")
            .field("store_key", &self.store_key)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl IdempotencyKey {
    /// The key as stored (under the tenant): `h:<route>:<header>` or `f:<hex MAC>`.
    pub fn as_str(&self) -> &str {
        &self.store_key
    }
    /// Where it came from.
    pub fn origin(&self) -> KeyOrigin {
        self.origin
    }
}

/// A response to store and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers worth replaying, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// First of its key: forward it, then [`finish`](Idempotency::finish) or
    /// [`abandon`](Idempotency::abandon) the ticket.
    Proceed(Ticket),
    /// Seen and completed: answer this stored response.
    Replay(StoredResponse),
    /// The first request with this key is still running: answer `409`.
    InFlight,
    /// The key was used for a different payload: answer `422`.
    Mismatch,
}

impl Begin {
    /// The status to answer without forwarding (`409`, `422`, or the stored one), `None` for
    /// [`Begin::Proceed`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Begin::Proceed(_) => None,
            Begin::Replay(r) => Some(r.status),
            Begin::InFlight => Some(STATUS_CONFLICT),
            Begin::Mismatch => Some(STATUS_UNPROCESSABLE),
        }
    }
}

/// A held claim on a key.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    tenant: String,
    key: IdempotencyKey,
}

/// The idempotency layer over a [`StateStore`].
pub struct Idempotency {
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    mac: Hmac<Sha256>,
    config: IdempotencyConfig,
}

impl fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn put_len_prefixed(mac: &mut Hmac<Sha256>, part: &[u8]) {
    mac.update(&(part.len() as u64).to_be_bytes());
    mac.update(part);
}

impl Idempotency {
    /// An idempotency layer fingerprinting bodies under `secret` (shared by all gateway
    /// instances of a deployment, at least 16 bytes recommended).
    pub fn new(
        store: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        secret: &[u8],
        config: IdempotencyConfig,
    ) -> Result<Self, IdempotencyError> {
        if secret.is_empty() {
            return Err(IdempotencyError::EmptySecret);
        }
        if config.ttl_ms == 0 || config.in_flight_ttl_ms == 0 {
            return Err(IdempotencyError::Config(
                "ttl_ms and in_flight_ttl_ms must be at least 1".into(),
            ));
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .map_err(|_| IdempotencyError::EmptySecret)?;
        Ok(Self {
            store,
            clock,
            mac,
            config,
        })
    }

    /// The MAC of a request: tenant, route and body (canonical JSON when it parses, raw bytes
    /// otherwise).
    fn request_mac(&self, tenant: &str, route: &str, body: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        put_len_prefixed(&mut mac, tenant.as_bytes());
        put_len_prefixed(&mut mac, route.as_bytes());
        match clyra_evidence::jcs::canonicalize(body) {
            Ok(canonical) => {
                mac.update(b"j");
                put_len_prefixed(&mut mac, &canonical);
            }
            Err(_) => {
                mac.update(b"r");
                put_len_prefixed(&mut mac, body);
            }
        }
        mac.finalize().into_bytes().into()
    }

    /// Derives the key of a request: from `header` (the client's idempotency header value) when
    /// given, otherwise from the body's fingerprint.
    pub fn key(
        &self,
        tenant: &str,
        route: &str,
        header: Option<&str>,
        body: &[u8],
    ) -> Result<IdempotencyKey, IdempotencyError> {
        let request_mac = self.request_mac(tenant, route, body);
        match header {
            Some(value) => {
                if value.is_empty() || value.len() > MAX_HEADER_KEY_LEN {
                    return Err(IdempotencyError::InvalidKey {
                        reason: format!(
                            "length {} is outside 1..={MAX_HEADER_KEY_LEN}",
                            value.len()
                        ),
                    });
                }
                if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic() && *c != ' ') {
                    return Err(IdempotencyError::InvalidKey {
                        reason: format!("character {c:?} is not printable ASCII"),
                    });
                }
                Ok(IdempotencyKey {
                    store_key: format!("h:{}:{route}:{value}", route.len()),
                    origin: KeyOrigin::Header,
                    request_mac,
                })
            }
            None => Ok(IdempotencyKey {
                store_key: format!("f:{}", hex::encode(request_mac)),
                origin: KeyOrigin::Fingerprint,
                request_mac,
            }),
        }
    }

    /// Claims `key` for `tenant`, or says how to answer without forwarding.
    pub fn begin(&self, tenant: &str, key: &IdempotencyKey) -> Result<Begin, IdempotencyError> {
        let now = self.clock.now_ms();
        match self
            .store
            .claim(tenant, &key.store_key, self.config.in_flight_ttl_ms, now)?
        {
            Claim::Claimed => Ok(Begin::Proceed(Ticket {
                tenant: tenant.to_owned(),
                key: key.clone(),
            })),
            Claim::InFlight => Ok(Begin::InFlight),
            Claim::Done(bytes) => {
                let (mac, response) =
                    decode_record(&bytes).map_err(|reason| IdempotencyError::CorruptRecord {
                        key: key.store_key.clone(),
                        reason: reason.to_owned(),
                    })?;
                if bool::from(mac.ct_eq(&key.request_mac)) {
                    Ok(Begin::Replay(response))
                } else {
                    Ok(Begin::Mismatch)
                }
            }
        }
    }

    /// Stores the response of a proceeded request, replayed for `ttl_ms`.
    pub fn finish(
        &self,
        ticket: Ticket,
        response: &StoredResponse,
    ) -> Result<(), IdempotencyError> {
        let record = encode_record(&ticket.key.request_mac, response);
        self.store.complete(
            &ticket.tenant,
            &ticket.key.store_key,
            &record,
            self.config.ttl_ms,
            self.clock.now_ms(),
        )?;
        Ok(())
    }

    /// Drops the claim of a request that got no response worth replaying, so a retry runs.
    /// Returns whether the claim was still held.
    pub fn abandon(&self, ticket: Ticket) -> Result<bool, IdempotencyError> {
        Ok(self
            .store
            .release(&ticket.tenant, &ticket.key.store_key, self.clock.now_ms())?)
    }
}

fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_be_bytes());
    out.extend_from_slice(b);
}

/// `CIR1 | request MAC (32) | status (u16 BE) | header count (u64 BE) | (name, value)* | body`,
/// each variable part prefixed with its length (u64 BE).
fn encode_record(mac: &[u8; 32], r: &StoredResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + r.body.len());
    out.extend_from_slice(RECORD_MAGIC);
    out.extend_from_slice(mac);
    out.extend_from_slice(&r.status.to_be_bytes());
    out.extend_from_slice(&(r.headers.len() as u64).to_be_bytes());
    for (name, value) in &r.headers {
        push_bytes(&mut out, name.as_bytes());
        push_bytes(&mut out, value.as_bytes());
    }
    push_bytes(&mut out, &r.body);
    out
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let n = usize::try_from(self.u64()?).map_err(|_| "length too large")?;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, &'static str> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "header not UTF-8")
    }
}

fn decode_record(bytes: &[u8]) -> Result<([u8; 32], StoredResponse), &'static str> {
    let mut c = Cursor(bytes);
    if c.take(4)? != RECORD_MAGIC {
        return Err("unknown record version");
    }
    let mut mac = [0u8; 32];
    mac.copy_from_slice(c.take(32)?);
    let s = c.take(2)?;
    let status = u16::from_be_bytes([s[0], s[1]]);
    let count = c.u64()?;
    let mut headers = Vec::new();
    for _ in 0..count {
        // Each header needs at least 16 bytes: a lying count fails on truncation, not on memory.
        headers.push((c.string()?, c.string()?));
    }
    let body = c.bytes()?.to_vec();
    if !c.0.is_empty() {
        return Err("trailing bytes");
    }
    Ok((
        mac,
        StoredResponse {
            status,
            headers,
            body,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn records_round_trip(
            status in any::<u16>(),
            headers in proptest::collection::vec((".{0,8}", ".{0,8}"), 0..4),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            mac in any::<[u8; 32]>(),
        ) {
            let r = StoredResponse { status, headers, body };
            let bytes = encode_record(&mac, &r);
            prop_assert_eq!(decode_record(&bytes), Ok((mac, r)));
        }

        #[test]
        fn corrupt_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut with_magic = RECORD_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode_record(&bytes);
            let _ = decode_record(&with_magic);
        }
    }

    #[test]
    fn truncated_and_trailing_records_are_refused() {
        let r = StoredResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        };
        let bytes = encode_record(&[7; 32], &r);
        for n in 0..bytes.len() {
            assert!(decode_record(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode_record(&long), Err("trailing bytes"));
    }
}
