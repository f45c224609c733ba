//! Request authentication: HMAC-SHA256 over a fixed signing string (the reference implementation
//! of the scheme in `docs/recorder.md`), and the replay guard.
//!
//! A request carries five headers: [`HEADER_TENANT`], [`HEADER_KEY_ID`], [`HEADER_TIMESTAMP`]
//! (unix seconds), [`HEADER_NONCE`] (16 to 64 characters of `[A-Za-z0-9_-]`) and
//! [`HEADER_SIGNATURE`] (`v1=` and the lowercase hex HMAC-SHA256 of [`signing_string`] under the
//! key's secret). The signing string is, with `\n` between the parts and no trailing newline:
//!
//! ```text
//! CLYRA-HMAC-SHA256-V1
//! METHOD
//! PATH_AND_QUERY
//! TENANT
//! KEY_ID
//! TIMESTAMP
//! NONCE
//! lowercase hex SHA-256 of the body (of zero bytes when there is none)
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use rand_core::RngCore as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The first line of every signing string: names the scheme and its version.
pub const SCHEME: &str = "CLYRA-HMAC-SHA256-V1";
/// The authenticated tenant.
pub const HEADER_TENANT: &str = "x-clyra-tenant";
/// The id of the tenant's key that signed.
pub const HEADER_KEY_ID: &str = "x-clyra-key-id";
/// When the request was signed, in unix seconds.
pub const HEADER_TIMESTAMP: &str = "x-clyra-timestamp";
/// A single-use value chosen by the client.
pub const HEADER_NONCE: &str = "x-clyra-nonce";
/// `v1=` followed by the lowercase hex MAC.
pub const HEADER_SIGNATURE: &str = "x-clyra-signature";
/// The prefix of the signature header's value.
pub const SIGNATURE_PREFIX: &str = "v1=";
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A key's secret bytes; wiped on drop and never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps secret bytes; at least [`MIN_SECRET_LEN`] of them.
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_LEN {
            return Err(format!(
                "a secret must be at least {MIN_SECRET_LEN} bytes, got {}",
                bytes.len()
            ));
        }
        Ok(Secret(bytes))
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedParts<'a> {
    /// The HTTP method, upper case (`POST`).
    pub method: &'a str,
    /// The request target as sent: path and query (`/v1/events`, `/v1/entries/3`).
    pub path_and_query: &'a str,
    /// The tenant.
    pub tenant: &'a str,
    /// The key id.
    pub key_id: &'a str,
    /// Unix seconds.
    pub timestamp: i64,
    /// The nonce.
    pub nonce: &'a str,
    /// The exact body bytes (empty for a GET).
    pub body: &'a [u8],
}

/// Lowercase hex SHA-256 of `body`.
pub fn body_sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The exact string that is MACed (see the module documentation).
pub fn signing_string(parts: &SignedParts<'_>) -> String {
    format!(
        "{SCHEME}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
        parts.method,
        parts.path_and_query,
        parts.tenant,
        parts.key_id,
        parts.timestamp,
        parts.nonce,
        body_sha256_hex(parts.body)
    )
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this never fails.
    match <HmacSha256 as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    }
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // `new_from_slice` only fails for fixed-size-key MACs; keep a defined fallback anyway.
    <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default())
}

/// The value of [`HEADER_SIGNATURE`] for `parts` under `secret`: `v1=<lowercase hex>`.
pub fn sign(secret: &[u8], parts: &SignedParts<'_>) -> String {
    let mut m = mac(secret);
    m.update(signing_string(parts).as_bytes());
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(m.finalize().into_bytes())
    )
}

/// True when `signature` (the header value, `v1=<hex>`) is the MAC of `parts` under `secret`.
/// The comparison takes the same time wherever the first difference is.
pub fn verify(secret: &[u8], parts: &SignedParts<'_>, signature: &str) -> bool {
    let Some(hex_mac) = signature.strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    // Lowercase only, so that one MAC has one spelling.
    if hex_mac.len() != 64
        || !hex_mac
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return false;
    }
    let Ok(bytes) = hex::decode(hex_mac) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(signing_string(parts).as_bytes());
    m.verify_slice(&bytes).is_ok()
}

/// True for 16 to 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A fresh random nonce: 32 lowercase hex characters from the operating system's generator.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The five authentication headers for a request, as `(name, value)` pairs.
pub fn headers(secret: &[u8], parts: &SignedParts<'_>) -> [(&'static str, String); 5] {
    [
        (HEADER_TENANT, parts.tenant.to_string()),
        (HEADER_KEY_ID, parts.key_id.to_string()),
        (HEADER_TIMESTAMP, parts.timestamp.to_string()),
        (HEADER_NONCE, parts.nonce.to_string()),
        (HEADER_SIGNATURE, sign(secret, parts)),
    ]
}

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// The nonce was already used by this tenant within the window.
    #[error("nonce already used")]
    Replayed,
    /// The cache holds its maximum number of live nonces; the request may be retried later.
    #[error("too many recent nonces; retry later")]
    Full,
}

/// Nonces seen recently, per tenant, kept in memory and pruned by time.
///
/// A nonce is remembered for twice the clock-skew window after it was first seen: a request
/// signed at `t` is accepted only while `|now - t| <= skew`, so by then any replay is stale anyway.
/// The map is bounded: when `max` live nonces are held, new requests are refused with
/// [`NonceError::Full`] rather than forgetting a nonce early. The state is per process: several
/// recorder instances behind one load balancer need shared nonce state (future work).
#[derive(Debug)]
pub struct NonceCache {
    keep_secs: i64,
    max: usize,
    inner: Mutex<NonceState>,
}

#[derive(Debug, Default)]
struct NonceState {
    expiry: HashMap<(String, String), i64>,
    order: VecDeque<(i64, (String, String))>,
}

impl NonceCache {
    /// A cache for a clock-skew window of `skew_secs`, holding at most `max` nonces.
    pub fn new(skew_secs: u64, max: usize) -> Self {
        NonceCache {
            keep_secs: i64::try_from(skew_secs.saturating_mul(2)).unwrap_or(i64::MAX),
            max,
            inner: Mutex::new(NonceState::default()),
        }
    }

    /// Records `nonce` for `tenant` at `now` (unix seconds), or refuses it.
    pub fn check_and_insert(&self, tenant: &str, nonce: &str, now: i64) -> Result<(), NonceError> {
        let mut st = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        while let Some((exp, _)) = st.order.front() {
            if *exp > now {
                break;
            }
            if let Some((_, key)) = st.order.pop_front() {
                if st.expiry.get(&key).is_some_and(|e| *e <= now) {
                    st.expiry.remove(&key);
                }
            }
        }
        let key = (tenant.to_string(), nonce.to_string());
        if st.expiry.contains_key(&key) {
            return Err(NonceError::Replayed);
        }
        if st.expiry.len() >= self.max {
            return Err(NonceError::Full);
        }
        let exp = now.saturating_add(self.keep_secs);
        st.expiry.insert(key.clone(), exp);
        st.order.push_back((exp, key));
        Ok(())
    }

    /// How many nonces are held.
    pub fn len(&self) -> usize {
        match self.inner.lock() {
            Ok(g) => g.expiry.len(),
            Err(poisoned) => poisoned.into_inner().expiry.len(),
        }
    }

    /// True when no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The test vector of `docs/recorder.md`.
    pub(crate) const VECTOR_SECRET: &[u8] = b"clyra-test-vector-secret-32-bytes!!";
    pub(crate) const VECTOR_BODY: &[u8] = br#"{"kind":"demo.hello","body":{"n":1}}"#;

    fn vector() -> SignedParts<'static> {
        SignedParts {
            method: "POST",
            path_and_query: "/v1/events",
            tenant: "acme",
            key_id: "k1",
            timestamp: 1_767_225_600,
            nonce: "0123456789abcdef0123456789abcdef",
            body: VECTOR_BODY,
        }
    }

    #[test]
    fn documented_test_vector() {
        let parts = vector();
        assert_eq!(
            body_sha256_hex(VECTOR_BODY),
            "8952706126db2937f753fb7de5b3bbd4188cac60c7771e6a4df19827a4be9445"
        );
        assert_eq!(
            signing_string(&parts),
            "CLYRA-HMAC-SHA256-V1\nPOST\n/v1/events\nacme\nk1\n1767225600\n\
0123456789abcdef0123456789abcdef\n8952706126db2937f753fb7de5b3bbd4188cac60c7771e6a4df19827a4be9445"
        );
        let sig = sign(VECTOR_SECRET, &parts);
        assert_eq!(
            sig,
            "v1=c08e1e6f1186c8340eea7b19d7a00cbd1dd33dabcd7883de00176ff59bab67ac"
        );
        assert!(verify(VECTOR_SECRET, &parts, &sig));
    }

    #[test]
    fn verify_rejects_changes() {
        let parts = vector();
        let sig = sign(VECTOR_SECRET, &parts);
        assert!(!verify(
            b"another-secret-of-at-least-32-bytes",
            &parts,
            &sig
        ));
        assert!(!verify(VECTOR_SECRET, &parts, &sig.to_uppercase()));
        assert!(!verify(VECTOR_SECRET, &parts, &sig[3..]));
        let mut other = parts;
        other.body = b"{}";
        assert!(!verify(VECTOR_SECRET, &other, &sig));
        let mut other = parts;
        other.tenant = "acme2";
        assert!(!verify(VECTOR_SECRET, &other, &sig));
    }

    #[test]
    fn nonces() {
        assert!(valid_nonce(&new_nonce()));
        assert!(!valid_nonce("short"));
        assert!(!valid_nonce("0123456789abcdef0123456789abcde!"));
        let c = NonceCache::new(300, 2);
        c.check_and_insert("a", "n1", 1000).unwrap();
        assert_eq!(
            c.check_and_insert("a", "n1", 1001),
            Err(NonceError::Replayed)
        );
        c.check_and_insert("b", "n1", 1001).unwrap();
        assert_eq!(c.check_and_insert("a", "n2", 1002), Err(NonceError::Full));
        // After twice the window everything is forgotten.
        c.check_and_insert("a", "n1", 1001 + 600).unwrap();
        assert_eq!(c.len(), 1);
        assert!(Secret::new(vec![0; 31]).is_err());
        assert_eq!(
            format!("{:?}", Secret::new(vec![7; 32]).unwrap()),
            "Secret(<redacted>)"
        );
    }
}
