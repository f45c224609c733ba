//! Resume tokens: `clyra-rt1.<claims>.<signature>`.
//!
//! `<claims>` is the unpadded base64url of the claims' RFC 8785 canonical JSON; `<signature>` the
//! unpadded base64url of a signature by the approvals key over the domain-separated message
//! `"clyra-resume-token/v1\n" || claims bytes`. Opening a token verifies the signature over the
//! bytes as sent *before* parsing them, then requires the claims to be canonical, with exactly
//! the known members. Every failure refuses ([`ApprovalError::TokenMalformed`] or
//! [`ApprovalError::TokenSignature`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clyra_evidence::jcs;
use clyra_evidence::keys::{PublicKey, Signer};
use serde::{Deserialize, Serialize};

use super::ApprovalError;

/// The token's prefix (format version 1).
pub const PREFIX: &str = "clyra-rt1.";
/// The signed message starts with this.
pub const DOMAIN: &[u8] = b"clyra-resume-token/v1\n";
/// Longer tokens are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What a resume token says. All times are RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Claims format, 1.
    pub v: u32,
    /// Random id of this token (`tok_` + 32 hex).
    pub token_id: String,
    /// The approval it resumes.
    pub approval_id: String,
    /// The tenant whose journal holds the approval.
    pub tenant: String,
    /// The checkpoint approved.
    pub checkpoint: String,
    /// SHA-256 (hex) of the RFC 8785 canonical JSON of the approved payload.
    pub payload_sha256: String,
    /// Who approved, in the order they approved.
    pub approvers: Vec<String>,
    /// Who asked.
    pub requester: String,
    /// Issued at.
    pub iat: String,
    /// Expires at: the token is refused from this instant on.
    pub exp: String,
    /// The policy hash in force when the approval was requested.
    pub policy_hash: String,
}

/// A signed resume token. `Debug` does not print the token itself: it is a bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The token text.
    pub token: String,
    /// What it says.
    pub claims: Claims,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token", &"<redacted>")
            .field("claims", &self.claims)
            .finish()
    }
}

fn message(claims_bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(DOMAIN.len() + claims_bytes.len());
    msg.extend_from_slice(DOMAIN);
    msg.extend_from_slice(claims_bytes);
    msg
}

/// Signs `claims` into a token.
pub fn issue(claims: &Claims, signer: &dyn Signer) -> Result<Token, ApprovalError> {
    let bytes = jcs::to_canonical_vec(claims).map_err(|e| ApprovalError::Signing(e.to_string()))?;
    let sig = signer
        .sign(&message(&bytes))
        .map_err(|e| ApprovalError::Signing(e.to_string()))?;
    Ok(Token {
        token: format!(
            "{PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(&bytes),
            URL_SAFE_NO_PAD.encode(sig)
        ),
        claims: claims.clone(),
    })
}

/// Verifies `token` against `keys` (any of them) and returns its claims. Says nothing about
/// expiry, the payload or use; the service checks those.
pub fn open(token: &str, keys: &[PublicKey]) -> Result<Claims, ApprovalError> {
    let malformed = |reason| ApprovalError::TokenMalformed { reason };
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed("longer than 16 KiB"));
    }
    let rest = token
        .strip_prefix(PREFIX)
        .ok_or_else(|| malformed("does not start with `clyra-rt1.`"))?;
    let (claims_b64, sig_b64) = rest
        .split_once('.')
        .ok_or_else(|| malformed("expected clyra-rt1.<claims>.<signature>"))?;
    if sig_b64.contains('.') {
        return Err(malformed("expected clyra-rt1.<claims>.<signature>"));
    }
    let claims_bytes = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .map_err(|_| malformed("claims are not unpadded base64url"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| malformed("signature is not unpadded base64url"))?;
    let msg = message(&claims_bytes);
    if !keys.iter().any(|k| k.verify(&msg, &sig).is_ok()) {
        return Err(ApprovalError::TokenSignature);
    }
    // Signed by a trusted key; still parse strictly (a key used elsewhere must not make other
    // signed bytes into a token).
    let value =
        jcs::parse_strict(&claims_bytes).map_err(|_| malformed("claims are not strict JSON"))?;
    let canonical =
        jcs::canonicalize_value(&value).map_err(|_| malformed("claims are not canonical JSON"))?;
    if canonical != claims_bytes {
        return Err(malformed("claims are not canonical JSON"));
    }
    let claims: Claims = serde_json::from_value(value)
        .map_err(|_| malformed("claims do not have the version 1 members"))?;
    if claims.v != 1 {
        return Err(malformed("claims version is not 1"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clyra_evidence::keys::{Algorithm, PrivateKey};

    fn claims() -> Claims {
        Claims {
            v: 1,
            token_id: "tok_00".into(),
            approval_id: "apr_00".into(),
            tenant: "acme".into(),
            checkpoint: "promote".into(),
            payload_sha256: "ab".repeat(32),
            approvers: vec!["user:a".into(), "user:b".into()],
            requester: "agent:x".into(),
            iat: "2026-01-01T00:00:00.000Z".into(),
            exp: "2026-01-01T00:15:00.000Z".into(),
            policy_hash: "sha256:00".into(),
        }
    }

    #[test]
    fn round_trip_and_tamper() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let other = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let t = issue(&claims(), &key).unwrap();
        assert!(t.token.starts_with(PREFIX));
        assert!(!format!("{t:?}").contains(&t.token[PREFIX.len()..]));
        let trusted = vec![key.public_key().clone()];
        assert_eq!(open(&t.token, &trusted).unwrap(), claims());
        // Another key's signature, or none of ours trusted.
        let t2 = issue(&claims(), &other).unwrap();
        assert_eq!(
            open(&t2.token, &trusted).unwrap_err().code(),
            "A_TOKEN_SIGNATURE"
        );
        assert_eq!(open(&t.token, &[]).unwrap_err().code(), "A_TOKEN_SIGNATURE");
        // Changed claims with the old signature.
        let (head, sig) = t.token.rsplit_once('.').unwrap();
        let mut c = claims();
        c.payload_sha256 = "cd".repeat(32);
        let forged = format!(
            "{PREFIX}{}.{sig}",
            URL_SAFE_NO_PAD.encode(jcs::to_canonical_vec(&c).unwrap())
        );
        assert_eq!(
            open(&forged, &trusted).unwrap_err().code(),
            "A_TOKEN_SIGNATURE"
        );
        for bad in [
            "",
            "clyra-rt1.",
            "clyra-rt1.abc",
            "clyra-rt2.a.b",
            &format!("{head}.{sig}.x"),
            &format!("{head}.{sig}="),
            &format!("{head}==.{sig}"),
        ] {
            assert_eq!(
                open(bad, &trusted).unwrap_err().code(),
                "A_TOKEN_MALFORMED",
                "{bad}"
            );
        }
        assert_eq!(
            open(&"x".repeat(MAX_TOKEN_BYTES + 1), &trusted)
                .unwrap_err()
                .code(),
            "A_TOKEN_MALFORMED"
        );
    }

    proptest::proptest! {
        /// Untrusted token text never panics and never opens without the key's signature.
        #[test]
        fn arbitrary_tokens_are_refused(text in "clyra-rt1\\.[A-Za-z0-9_=.-]{0,200}", raw in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
            let trusted = vec![key.public_key().clone()];
            proptest::prop_assert!(open(&text, &trusted).is_err());
            let lossy = String::from_utf8_lossy(&raw);
            proptest::prop_assert!(open(&lossy, &trusted).is_err());
        }
    }

    #[test]
    fn signed_but_not_canonical_or_unknown_members_is_malformed() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let trusted = vec![key.public_key().clone()];
        let sign_raw = |bytes: &[u8]| {
            let sig = key.sign(&message(bytes)).unwrap();
            format!(
                "{PREFIX}{}.{}",
                URL_SAFE_NO_PAD.encode(bytes),
                URL_SAFE_NO_PAD.encode(sig)
            )
        };
        let mut v = serde_json::to_value(claims()).unwrap();
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        assert_eq!(
            open(&sign_raw(&pretty), &trusted).unwrap_err().code(),
            "A_TOKEN_MALFORMED"
        );
        v["extra"] = serde_json::json!(1);
        let extra = jcs::canonicalize_value(&v).unwrap();
        assert_eq!(
            open(&sign_raw(&extra), &trusted).unwrap_err().code(),
            "A_TOKEN_MALFORMED"
        );
        let mut c = claims();
        c.v = 2;
        let v2 = jcs::to_canonical_vec(&c).unwrap();
        assert_eq!(
            open(&sign_raw(&v2), &trusted).unwrap_err().code(),
            "A_TOKEN_MALFORMED"
        );
        assert_eq!(
            open(&sign_raw(b"not json"), &trusted).unwrap_err().code(),
            "A_TOKEN_MALFORMED"
        );
    }
}
