//! in-toto Statement v1 (in-toto/attestation `spec/v1/statement.md`), signed in a DSSE envelope
//! with payload type [`PAYLOAD_TYPE`].
//!
//! Clyra requires the payload to be canonical JSON (RFC 8785): [`verify_statement`] re-
//! canonicalizes the verified payload bytes and demands byte equality, so one statement has
//! exactly one signed form. The canonicalizer is a parameter (`Fn(&[u8]) -> Result<Vec<u8>, E>`,
//! the shape of `jcs::canonicalize`), which keeps this module independent of it.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::digest::Digest;
use crate::dsse::{self, DsseError, Envelope};
use crate::keys::{KeyId, Signer};
use crate::trust::TrustStore;

/// The `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Errors from validating, signing and verifying statements.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InTotoError {
    /// The envelope did not verify.
    #[error(transparent)]
    Dsse(#[from] DsseError),
    /// The statement could not be serialized or the verified payload is not a JSON statement.
    #[error("statement is not valid json: {detail}")]
    Json {
        /// The parser's explanation.
        detail: String,
    },
    /// The canonicalizer failed.
    #[error("canonicalizing the statement failed: {source}")]
    Canonicalize {
        /// The canonicalizer's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The verified payload is not in canonical form.
    #[error("signed statement is not canonical json")]
    NotCanonical,
    /// `_type` is not [`STATEMENT_TYPE`].
    #[error("`/_type` is `{found}`, expected `{STATEMENT_TYPE}`")]
    WrongType {
        /// The type found.
        found: String,
    },
    /// `subject` is empty.
    #[error("`/subject` is empty; a statement needs at least one subject")]
    NoSubjects,
    /// A subject's digest map is empty.
    #[error("`{pointer}` is empty; every subject needs a digest")]
    EmptyDigest {
        /// JSON pointer of the digest map.
        pointer: String,
    },
    /// A digest value is not lowercase hex of the right length.
    #[error("`{pointer}` is `{value}`: {reason}")]
    InvalidDigest {
        /// JSON pointer of the digest value.
        pointer: String,
        /// The value found.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `predicateType` is empty.
    #[error("`/predicateType` is empty")]
    EmptyPredicateType,
}

/// One subject: an artifact name and its digests (algorithm name to lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    /// The artifact's name (a path, a dataset id, ...).
    #[serde(default)]
    pub name: String,
    /// Digests by algorithm (`sha256`, `sha512`, `gitCommit`, ...).
    pub digest: BTreeMap<String, String>,
}

/// An in-toto Statement v1. Unknown fields are ignored on input, as the spec requires.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`] once validated.
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The artifacts the statement is about.
    pub subject: Vec<Subject>,
    /// TypeURI of the predicate.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate; `null` when absent.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub predicate: serde_json::Value,
}

/// Expected hex length of well-known digest algorithms.
fn expected_hex_len(algorithm: &str) -> Option<usize> {
    match algorithm {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        "sha1" => Some(40),
        _ => None,
    }
}

impl Statement {
    /// A statement with [`STATEMENT_TYPE`].
    pub fn new(
        subject: Vec<Subject>,
        predicate_type: impl Into<String>,
        predicate: serde_json::Value,
    ) -> Self {
        Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// Checks `_type`, that there is at least one subject, and that every subject has a
    /// non-empty digest map of lowercase hex values (`sha256` exactly 64 characters, other
    /// well-known algorithms their length).
    pub fn validate(&self) -> Result<(), InTotoError> {
        if self.statement_type != STATEMENT_TYPE {
            return Err(InTotoError::WrongType {
                found: self.statement_type.clone(),
            });
        }
        if self.subject.is_empty() {
            return Err(InTotoError::NoSubjects);
        }
        if self.predicate_type.is_empty() {
            return Err(InTotoError::EmptyPredicateType);
        }
        for (i, subject) in self.subject.iter().enumerate() {
            if subject.digest.is_empty() {
                return Err(InTotoError::EmptyDigest {
                    pointer: format!("/subject/{i}/digest"),
                });
            }
            for (algorithm, value) in &subject.digest {
                let invalid = |reason| InTotoError::InvalidDigest {
                    pointer: format!("/subject/{i}/digest/{}", escape_pointer(algorithm)),
                    value: value.clone(),
                    reason,
                };
                if value.is_empty() {
                    return Err(invalid("empty digest"));
                }
                if !value
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return Err(invalid("not lowercase hex"));
                }
                if let Some(len) = expected_hex_len(algorithm) {
                    if value.len() != len {
                        return Err(invalid("wrong length for this algorithm"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether some subject has this `sha256` digest (and, if `name` is given, this name).
    pub fn subject_matches(&self, name: Option<&str>, sha256: &Digest) -> bool {
        let hex = sha256.to_hex();
        self.subject.iter().any(|s| {
            name.is_none_or(|n| s.name == n) && s.digest.get("sha256").is_some_and(|d| *d == hex)
        })
    }
}

/// RFC 6901 escaping of one reference token.
fn escape_pointer(token: &str) -> String {
    crate::jcs::pointer_token(token)
}

fn canonicalize_with<F, E>(canonicalize: &F, bytes: &[u8]) -> Result<Vec<u8>, InTotoError>
where
    F: Fn(&[u8]) -> Result<Vec<u8>, E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    canonicalize(bytes).map_err(|e| InTotoError::Canonicalize { source: e.into() })
}

/// Validates `statement`, serializes it, canonicalizes it with `canonicalize` and signs the
/// canonical bytes as a DSSE envelope with payload type [`PAYLOAD_TYPE`].
pub fn sign_statement<F, E>(
    statement: &Statement,
    signers: &[&dyn Signer],
    canonicalize: F,
) -> Result<Envelope, InTotoError>
where
    F: Fn(&[u8]) -> Result<Vec<u8>, E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    statement.validate()?;
    let json = serde_json::to_vec(statement).map_err(|e| InTotoError::Json {
        detail: e.to_string(),
    })?;
    let payload = canonicalize_with(&canonicalize, &json)?;
    Ok(dsse::sign(PAYLOAD_TYPE, &payload, signers)?)
}

/// A statement whose envelope verified and whose payload is canonical.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedStatement {
    statement: Statement,
    payload: Vec<u8>,
    key_ids: Vec<KeyId>,
}

impl VerifiedStatement {
    /// The statement, parsed from the verified payload.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// The verified canonical payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The distinct trusted keys that signed.
    pub fn key_ids(&self) -> &[KeyId] {
        &self.key_ids
    }
}

/// Verifies a statement envelope: DSSE verification ([`dsse::verify`] with payload type
/// [`PAYLOAD_TYPE`]), then the verified payload must equal its own canonicalization
/// ([`InTotoError::NotCanonical`] otherwise), then it is parsed and validated.
pub fn verify_statement<F, E>(
    envelope: &Envelope,
    trust: &TrustStore,
    at: Timestamp,
    threshold: usize,
    canonicalize: F,
) -> Result<VerifiedStatement, InTotoError>
where
    F: Fn(&[u8]) -> Result<Vec<u8>, E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let verified = dsse::verify(envelope, trust, at, threshold, PAYLOAD_TYPE)?;
    let key_ids = verified.key_ids().to_vec();
    let payload = verified.into_payload();
    let canonical = canonicalize_with(&canonicalize, &payload)?;
    if canonical != payload {
        return Err(InTotoError::NotCanonical);
    }
    let statement: Statement = serde_json::from_slice(&payload).map_err(|e| InTotoError::Json {
        detail: e.to_string(),
    })?;
    statement.validate()?;
    Ok(VerifiedStatement {
        statement,
        payload,
        key_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, PrivateKey, Signer};
    use serde_json::{json, Value};

    /// The real canonicalizer, as production callers pass it.
    fn canon(bytes: &[u8]) -> Result<Vec<u8>, crate::jcs::JcsError> {
        crate::jcs::canonicalize(bytes)
    }

    fn at() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn trust_for(key: &PrivateKey) -> TrustStore {
        let mut t = TrustStore::new();
        t.add(
            key.public_key().clone(),
            "2020-01-01T00:00:00Z".parse().unwrap(),
            None,
            None,
        )
        .unwrap();
        t
    }

    fn sha(data: &[u8]) -> Digest {
        Digest::sha256(data)
    }

    fn statement() -> Statement {
        Statement::new(
            vec![
                Subject {
                    name: "out/report.csv".into(),
                    digest: BTreeMap::from([("sha256".into(), sha(b"report").to_hex())]),
                },
                Subject {
                    name: "out/data.parquet".into(),
                    digest: BTreeMap::from([
                        ("sha256".into(), sha(b"data").to_hex()),
                        (
                            "gitCommit".into(),
                            "0123456789abcdef0123456789abcdef01234567".into(),
                        ),
                    ]),
                },
            ],
            "https://clyra.dev/def/v1",
            json!({"rows": 3, "checks": {"nulls": "ok"}}),
        )
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let env = sign_statement(&statement(), &[&key as &dyn Signer], canon).unwrap();
        assert_eq!(env.payload_type, PAYLOAD_TYPE);
        assert_eq!(canon(&env.payload).unwrap(), env.payload);
        let verified = verify_statement(&env, &trust_for(&key), at(), 1, canon).unwrap();
        assert_eq!(verified.statement(), &statement());
        assert_eq!(verified.payload(), env.payload.as_slice());
        assert_eq!(verified.key_ids(), [key.key_id()]);
        assert!(std::str::from_utf8(&env.payload)
            .unwrap()
            .starts_with(r#"{"_type":"https://in-toto.io/Statement/v1","predicate":{"#));
    }

    #[test]
    fn non_canonical_payload_is_rejected() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let trust = trust_for(&key);
        let pretty = serde_json::to_vec_pretty(&statement()).unwrap();
        let env = dsse::sign(PAYLOAD_TYPE, &pretty, &[&key]).unwrap();
        assert!(matches!(
            verify_statement(&env, &trust, at(), 1, canon),
            Err(InTotoError::NotCanonical)
        ));
        // Compact, but with keys out of order.
        let reordered = br#"{"subject":[{"name":"a","digest":{"sha256":"00"}}],"_type":"https://in-toto.io/Statement/v1","predicateType":"p"}"#;
        let env = dsse::sign(PAYLOAD_TYPE, reordered, &[&key]).unwrap();
        assert!(matches!(
            verify_statement(&env, &trust, at(), 1, canon),
            Err(InTotoError::NotCanonical)
        ));
    }

    #[test]
    fn envelope_failures_pass_through() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let trust = trust_for(&key);
        let payload = canon(&serde_json::to_vec(&statement()).unwrap()).unwrap();
        let env = dsse::sign("application/json", &payload, &[&key]).unwrap();
        assert!(matches!(
            verify_statement(&env, &trust, at(), 1, canon),
            Err(InTotoError::Dsse(DsseError::PayloadTypeMismatch { .. }))
        ));
        let mut env = sign_statement(&statement(), &[&key as &dyn Signer], canon).unwrap();
        env.payload[5] ^= 1;
        assert!(matches!(
            verify_statement(&env, &trust, at(), 1, canon),
            Err(InTotoError::Dsse(DsseError::NoValidSignature))
        ));
    }

    #[test]
    fn signed_but_invalid_statements_are_rejected() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let trust = trust_for(&key);
        let wrong_type = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"p","subject":[{"digest":{"sha256":"00"},"name":"a"}]}"#;
        let env = dsse::sign(PAYLOAD_TYPE, wrong_type, &[&key]).unwrap();
        assert!(matches!(
            verify_statement(&env, &trust, at(), 1, canon),
            Err(InTotoError::WrongType { .. })
        ));
        let env = dsse::sign(PAYLOAD_TYPE, b"[1,2]", &[&key]).unwrap();
        assert!(matches!(
            verify_statement(&env, &trust, at(), 1, canon),
            Err(InTotoError::Json { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut v = serde_json::to_value(statement()).unwrap();
        v["futureField"] = json!(true);
        let payload = canon(&serde_json::to_vec(&v).unwrap()).unwrap();
        let env = dsse::sign(PAYLOAD_TYPE, &payload, &[&key]).unwrap();
        let verified = verify_statement(&env, &trust_for(&key), at(), 1, canon).unwrap();
        assert_eq!(verified.statement(), &statement());
        assert_eq!(verified.payload(), payload.as_slice());
    }

    #[test]
    fn validation() {
        assert!(statement().validate().is_ok());
        let mut s = statement();
        s.statement_type = "https://in-toto.io/Statement/v0.1".into();
        assert!(matches!(s.validate(), Err(InTotoError::WrongType { .. })));
        let mut s = statement();
        s.subject.clear();
        assert!(matches!(s.validate(), Err(InTotoError::NoSubjects)));
        let mut s = statement();
        s.predicate_type.clear();
        assert!(matches!(s.validate(), Err(InTotoError::EmptyPredicateType)));
        let mut s = statement();
        s.subject[1].digest.clear();
        assert!(matches!(
            s.validate(),
            Err(InTotoError::EmptyDigest { pointer }) if pointer == "/subject/1/digest"
        ));
        for (alg, value, reason) in [
            (
                "sha256",
                sha(b"x").to_hex().to_uppercase(),
                "not lowercase hex",
            ),
            (
                "sha256",
                sha(b"x").to_hex()[1..].to_owned(),
                "wrong length for this algorithm",
            ),
            (
                "sha512",
                sha(b"x").to_hex(),
                "wrong length for this algorithm",
            ),
            ("a/b", "xyz".to_owned(), "not lowercase hex"),
            ("gitCommit", String::new(), "empty digest"),
        ] {
            let mut s = statement();
            s.subject[0].digest = BTreeMap::from([(alg.to_owned(), value)]);
            match s.validate() {
                Err(InTotoError::InvalidDigest {
                    pointer, reason: r, ..
                }) => {
                    assert_eq!(
                        pointer,
                        format!("/subject/0/digest/{}", escape_pointer(alg))
                    );
                    assert_eq!(r, reason, "{alg}");
                }
                other => panic!("{alg}: {other:?}"),
            }
        }
        let mut s = statement();
        s.subject[0].name.clear();
        assert!(s.validate().is_ok(), "subject names are optional");
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut s = statement();
        s.subject.clear();
        assert!(matches!(
            sign_statement(&s, &[&key as &dyn Signer], canon),
            Err(InTotoError::NoSubjects)
        ));
    }

    #[test]
    fn canonicalizer_errors_propagate() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let failing = |_: &[u8]| -> Result<Vec<u8>, std::io::Error> {
            Err(std::io::Error::other("no canonical form"))
        };
        assert!(matches!(
            sign_statement(&statement(), &[&key as &dyn Signer], failing),
            Err(InTotoError::Canonicalize { .. })
        ));
        let env = sign_statement(&statement(), &[&key as &dyn Signer], canon).unwrap();
        assert!(matches!(
            verify_statement(&env, &trust_for(&key), at(), 1, failing),
            Err(InTotoError::Canonicalize { .. })
        ));
    }

    #[test]
    fn subject_matching() {
        let s = statement();
        assert!(s.subject_matches(None, &sha(b"report")));
        assert!(s.subject_matches(Some("out/report.csv"), &sha(b"report")));
        assert!(!s.subject_matches(Some("out/data.parquet"), &sha(b"report")));
        assert!(s.subject_matches(Some("out/data.parquet"), &sha(b"data")));
        assert!(!s.subject_matches(None, &sha(b"other")));
    }

    #[test]
    fn serde_field_names() {
        let v = serde_json::to_value(statement()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["_type", "predicate", "predicateType", "subject"]);
        let mut s = statement();
        s.predicate = Value::Null;
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("predicate").is_none());
        assert_eq!(serde_json::from_value::<Statement>(v).unwrap(), s);
    }
}
