//! Webhook notices for pending approvals: the JSON body and its signature header.
//!
//! The approvals service builds the notice and hands it to a [`Notifier`]; sending it (HTTP) is
//! the caller's business, since the policy layer does no network I/O. The signature follows the
//! common webhook pattern: header `Clyra-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
//! HMAC-SHA256 with the shared secret over `"<t>.<body>"`. A receiver recomputes it over the raw
//! body bytes, compares in constant time, and refuses a `t` too far from its clock
//! ([`verify_signature`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The HTTP header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Clyra-Signature";

/// One notice, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Notice {
    /// Where to send it (the policy's `approvals.webhook.url`).
    pub url: String,
    /// The JSON body (RFC 8785 canonical bytes); send exactly these bytes.
    pub body: Vec<u8>,
    /// The `Clyra-Signature` header value, when the policy names a secret.
    pub signature: Option<String>,
    /// The approval it announces.
    pub approval_id: String,
}

impl std::fmt::Debug for Notice {
    // The URL may carry a credential (many chat webhooks do); keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notice")
            .field("approval_id", &self.approval_id)
            .field("body_bytes", &self.body.len())
            .field("signed", &self.signature.is_some())
            .finish_non_exhaustive()
    }
}

/// Delivers notices. Implemented outside the policy layer (the CLI posts with an HTTP client);
/// an error is recorded in the journal as `approval.notify_failed` and never fails the request.
pub trait Notifier: Send {
    /// Sends `notice`; `Err` carries a short reason for the journal. The reason must not contain
    /// the URL or any secret.
    fn deliver(&self, notice: &Notice) -> Result<(), String>;
}

/// The `Clyra-Signature` value for `body` at unix time `t`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Why a notice signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The header is not `t=<digits>,v1=<hex>[,v1=<hex>...]`.
    #[error("signature header is malformed")]
    Malformed,
    /// `t` is further than the tolerance from now.
    #[error("signature timestamp is {skew_secs} s away from now (tolerance {tolerance_secs} s)")]
    Stale {
        /// |now - t|.
        skew_secs: u64,
        /// The allowed skew.
        tolerance_secs: u64,
    },
    /// No `v1` value matches.
    #[error("signature does not match")]
    Mismatch,
}

/// Checks a `Clyra-Signature` header value over the raw `body` at unix time `now`. Accepts any
/// of several `v1=` values (secret rotation); compares in constant time.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let mut t: Option<i64> = None;
    let mut sigs: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" if t.is_none() && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                t = Some(v.parse().map_err(|_| SignatureError::Malformed)?);
            }
            "v1" => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let skew = now.abs_diff(t);
    if skew > tolerance_secs {
        return Err(SignatureError::Stale {
            skew_secs: skew,
            tolerance_secs,
        });
    }
    for sig in &sigs {
        let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
            return Err(SignatureError::Mismatch);
        };
        m.update(t.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        if m.verify_slice(sig).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sign_then_verify() {
        let body = br#"{"type":"approval.requested"}"#;
        let h = sign(b"s3cret", 1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(
            verify_signature(b"s3cret", &h, body, 1_700_000_100, 300),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"other", &h, body, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"s3cret", &h, b"{}", 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_signature(b"s3cret", &h, body, 1_700_001_000, 300),
            Err(SignatureError::Stale { .. })
        ));
        // Rotation: an old and a new signature side by side.
        let old = sign(b"old", 1_700_000_000, body);
        let both = format!("{h},{}", old.split_once(',').unwrap().1);
        assert_eq!(
            verify_signature(b"old", &both, body, 1_700_000_000, 300),
            Ok(())
        );
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,t=2,v1=00",
            "t=1,v2=00",
        ] {
            assert_eq!(
                verify_signature(b"s3cret", bad, body, 1, 300),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        /// Untrusted headers never panic and never verify without the secret.
        #[test]
        fn arbitrary_headers_are_refused(header in "[tv1=,0-9a-f ]{0,120}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            proptest::prop_assert!(verify_signature(b"secret", &header, &body, 0, u64::MAX).is_err());
        }
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256(key "key", "1.{}") computed independently (Python hmac module).
        assert_eq!(
            sign(b"key", 1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }
}
