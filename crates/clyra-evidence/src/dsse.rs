//! DSSE v1 (Dead Simple Signing Envelope), exactly as in secure-systems-lab/dsse `protocol.md`
//! and `envelope.md` (v1.0.2).
//!
//! - The signature covers the pre-authentication encoding [`pae`] of the payload type and the
//!   payload, never the payload alone.
//! - The JSON envelope is `{"payload": b64, "payloadType": str, "signatures": [{"keyid": str,
//!   "sig": b64}]}`. On input both standard and URL-safe base64 are accepted, padded or not; on
//!   output standard padded base64 is written and `keyid` is omitted when absent.
//! - A signature's `keyid` is an unauthenticated hint. [`verify`] tries every trusted key that is
//!   valid at the given instant, counts *distinct* keys with a valid signature against a
//!   threshold, and returns the payload bytes that were verified. Callers must use those bytes
//!   and never re-parse the envelope.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use jiff::Timestamp;

use crate::keys::{KeyId, SignatureError, Signer};
use crate::trust::{TrustError, TrustStore, TrustedKey};

/// The most signatures [`verify`] examines; more is rejected rather than spending
/// `signatures x keys` verifications on a hostile envelope.
pub const MAX_SIGNATURES: usize = 64;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(true)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes standard or URL-safe base64, with or without padding (DSSE `envelope.md`: "MUST
/// accept either").
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD_ANY_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_ANY_PAD.decode(text))
        .ok()
}

fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal without
/// leading zeros, SP = 0x20.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        b"DSSEv1".len() + 4 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Errors from parsing, signing and verifying DSSE envelopes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DsseError {
    /// The envelope is not JSON of the DSSE shape (missing or unknown fields, wrong types).
    #[error("malformed dsse envelope: {detail} at line {line}, column {column}")]
    Json {
        /// The parser's explanation.
        detail: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A base64 field decodes under neither the standard nor the URL-safe alphabet.
    #[error("invalid base64 at `{pointer}`")]
    Base64 {
        /// JSON pointer of the field, e.g. `/signatures/1/sig`.
        pointer: String,
    },
    /// `sign` was given no signers.
    #[error("no signers given")]
    NoSigners,
    /// `sign` was given the same key twice.
    #[error("signer `{keyid}` given more than once")]
    DuplicateSigner {
        /// The key id.
        keyid: KeyId,
    },
    /// A signer failed.
    #[error("signer `{keyid}` failed: {source}")]
    Sign {
        /// The key id.
        keyid: KeyId,
        /// The signer's error.
        source: SignatureError,
    },
    /// A signer produced a signature that its own public key does not verify (a misconfigured
    /// KMS key, or a fault).
    #[error("signer `{keyid}` produced a signature its public key rejects: {source}")]
    SelfCheck {
        /// The key id.
        keyid: KeyId,
        /// Why verification failed.
        source: SignatureError,
    },
    /// `verify` was given a threshold of 0, which would accept anything.
    #[error("threshold must be at least 1")]
    ZeroThreshold,
    /// The envelope has no signatures.
    #[error("envelope has no signatures")]
    NoSignatures,
    /// The envelope has more than [`MAX_SIGNATURES`] signatures.
    #[error("envelope has {count} signatures, more than the {max} allowed")]
    TooManySignatures {
        /// Signatures present.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// No signature verifies under any key the trust store holds.
    #[error("no valid signature from a trusted key")]
    NoValidSignature,
    /// No signature verifies, and a signature names (by its key id hint) a key that is not in
    /// the trust store.
    #[error("no valid signature; signature key id `{keyid}` is not trusted")]
    KeyNotTrusted {
        /// The key id hint, as found in the envelope.
        keyid: String,
    },
    /// A signature verifies only under a trusted key whose window ended before `at`.
    #[error("signature by key `{keyid}`, which expired at {not_after} (checked at {at})")]
    KeyExpired {
        /// The key id.
        keyid: KeyId,
        /// End of its window.
        not_after: Timestamp,
        /// The verification instant.
        at: Timestamp,
    },
    /// A signature verifies only under a trusted key whose window starts after `at`.
    #[error(
        "signature by key `{keyid}`, which is not valid before {not_before} (checked at {at})"
    )]
    KeyNotYetValid {
        /// The key id.
        keyid: KeyId,
        /// Start of its window.
        not_before: Timestamp,
        /// The verification instant.
        at: Timestamp,
    },
    /// Some but too few distinct trusted keys signed.
    #[error("{valid} distinct trusted key(s) signed, threshold is {threshold}")]
    ThresholdNotMet {
        /// Required distinct keys.
        threshold: usize,
        /// Distinct keys with a valid signature.
        valid: usize,
    },
    /// The signatures verify, but the payload type is not the one expected.
    #[error("payload type `{found}` is not the expected `{expected}`")]
    PayloadTypeMismatch {
        /// The type the caller expects.
        expected: String,
        /// The type in the envelope.
        found: String,
    },
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Unauthenticated hint naming the key; Clyra writes its [`KeyId`].
    pub keyid: Option<String>,
    /// The signature over the PAE.
    pub sig: Vec<u8>,
}

/// A DSSE envelope with decoded payload and signatures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "WireEnvelope", into = "WireEnvelope")]
pub struct Envelope {
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// How to interpret the payload (e.g. `application/vnd.in-toto+json`).
    pub payload_type: String,
    /// The signatures.
    pub signatures: Vec<Signature>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<WireSignature>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSignature {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyid: Option<String>,
    sig: String,
}

impl TryFrom<WireEnvelope> for Envelope {
    type Error = DsseError;
    fn try_from(w: WireEnvelope) -> Result<Self, DsseError> {
        let payload = decode_base64(&w.payload).ok_or_else(|| DsseError::Base64 {
            pointer: "/payload".to_owned(),
        })?;
        let signatures = w
            .signatures
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let sig = decode_base64(&s.sig).ok_or_else(|| DsseError::Base64 {
                    pointer: format!("/signatures/{i}/sig"),
                })?;
                Ok(Signature {
                    keyid: s.keyid,
                    sig,
                })
            })
            .collect::<Result<_, DsseError>>()?;
        Ok(Envelope {
            payload,
            payload_type: w.payload_type,
            signatures,
        })
    }
}

impl From<Envelope> for WireEnvelope {
    fn from(e: Envelope) -> Self {
        WireEnvelope {
            payload: encode_base64(&e.payload),
            payload_type: e.payload_type,
            signatures: e
                .signatures
                .into_iter()
                .map(|s| WireSignature {
                    keyid: s.keyid,
                    sig: encode_base64(&s.sig),
                })
                .collect(),
        }
    }
}

impl Envelope {
    /// Parses an envelope from JSON bytes under the strict JSON profile of [`crate::jcs`]
    /// (duplicate keys, lone surrogates and the like are rejected, so no two parsers can read
    /// different envelopes from the same bytes). Unknown fields are rejected.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DsseError> {
        let value = crate::jcs::parse_strict(bytes).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line, l.column));
            DsseError::Json {
                detail: e.to_string(),
                line,
                column,
            }
        })?;
        let wire: WireEnvelope = serde_json::from_value(value).map_err(|e| DsseError::Json {
            detail: e.to_string(),
            line: 0,
            column: 0,
        })?;
        Envelope::try_from(wire)
    }

    /// The envelope as compact JSON: fields in the order `payload`, `payloadType`,
    /// `signatures` (each `keyid` if present, then `sig`), standard padded base64.
    pub fn to_json(&self) -> String {
        use serde_json::{Map, Value};
        let signatures = self
            .signatures
            .iter()
            .map(|s| {
                let mut m = Map::new();
                if let Some(keyid) = &s.keyid {
                    m.insert("keyid".to_owned(), Value::String(keyid.clone()));
                }
                m.insert("sig".to_owned(), Value::String(encode_base64(&s.sig)));
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        m.insert(
            "payload".to_owned(),
            Value::String(encode_base64(&self.payload)),
        );
        m.insert(
            "payloadType".to_owned(),
            Value::String(self.payload_type.clone()),
        );
        m.insert("signatures".to_owned(), Value::Array(signatures));
        // `Display` for `Value` is infallible and writes compact JSON.
        Value::Object(m).to_string()
    }
}

/// A payload whose signatures met the threshold. Use these bytes; never go back to the
/// envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayload {
    payload_type: String,
    payload: Vec<u8>,
    key_ids: Vec<KeyId>,
}

impl VerifiedPayload {
    /// The payload type (equal to the expected one).
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The verified payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The verified payload bytes, by value.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }

    /// The distinct trusted keys with a valid signature, in signature order.
    pub fn key_ids(&self) -> &[KeyId] {
        &self.key_ids
    }
}

/// Signs `payload` as a DSSE envelope, one signature per signer over the PAE, each with the
/// signer's [`KeyId`] as its `keyid`. Each signature is checked against the signer's public key
/// before it is returned.
pub fn sign(
    payload_type: &str,
    payload: &[u8],
    signers: &[&dyn Signer],
) -> Result<Envelope, DsseError> {
    if signers.is_empty() {
        return Err(DsseError::NoSigners);
    }
    let message = pae(payload_type, payload);
    let mut signatures: Vec<Signature> = Vec::with_capacity(signers.len());
    let mut seen: Vec<KeyId> = Vec::with_capacity(signers.len());
    for signer in signers {
        let keyid = signer.key_id();
        if seen.contains(&keyid) {
            return Err(DsseError::DuplicateSigner { keyid });
        }
        seen.push(keyid);
        let sig = signer
            .sign(&message)
            .map_err(|source| DsseError::Sign { keyid, source })?;
        signer
            .public_key()
            .verify(&message, &sig)
            .map_err(|source| DsseError::SelfCheck { keyid, source })?;
        signatures.push(Signature {
            keyid: Some(keyid.to_hex()),
            sig,
        });
    }
    Ok(Envelope {
        payload: payload.to_vec(),
        payload_type: payload_type.to_owned(),
        signatures,
    })
}

/// Verifies `envelope` against the keys in `trust` valid at `at`.
///
/// Every signature is tried against every trusted key valid at `at` (the key named by the
/// signature's `keyid` hint first, if any; a hint naming an unknown key changes nothing). The
/// number of *distinct* keys with a valid signature over the PAE must reach `threshold`
/// (at least 1). Then the payload type must equal `expected_payload_type`.
///
/// On failure the error says why: [`DsseError::ThresholdNotMet`] when some but too few keys
/// signed; otherwise [`DsseError::KeyExpired`] / [`DsseError::KeyNotYetValid`] when a
/// signature verifies only under a trusted key outside its window,
/// [`DsseError::KeyNotTrusted`] when a signature's hint names a key absent from the store, and
/// [`DsseError::NoValidSignature`] otherwise.
pub fn verify(
    envelope: &Envelope,
    trust: &TrustStore,
    at: Timestamp,
    threshold: usize,
    expected_payload_type: &str,
) -> Result<VerifiedPayload, DsseError> {
    if threshold == 0 {
        return Err(DsseError::ZeroThreshold);
    }
    if envelope.signatures.is_empty() {
        return Err(DsseError::NoSignatures);
    }
    if envelope.signatures.len() > MAX_SIGNATURES {
        return Err(DsseError::TooManySignatures {
            count: envelope.signatures.len(),
            max: MAX_SIGNATURES,
        });
    }
    let message = pae(&envelope.payload_type, &envelope.payload);
    let candidates: Vec<&TrustedKey> = trust.valid_at(at).collect();
    let mut key_ids: Vec<KeyId> = Vec::new();
    for signature in &envelope.signatures {
        let hint = signature
            .keyid
            .as_deref()
            .and_then(|h| h.parse::<KeyId>().ok());
        let hinted = candidates.iter().filter(|k| Some(k.key_id()) == hint);
        let others = candidates.iter().filter(|k| Some(k.key_id()) != hint);
        for key in hinted.chain(others) {
            let id = key.key_id();
            // A key already counted cannot count again; skip the work.
            if key_ids.contains(&id) {
                continue;
            }
            if key.public_key().verify(&message, &signature.sig).is_ok() {
                key_ids.push(id);
                break;
            }
        }
    }
    if key_ids.len() >= threshold {
        if envelope.payload_type != expected_payload_type {
            return Err(DsseError::PayloadTypeMismatch {
                expected: expected_payload_type.to_owned(),
                found: envelope.payload_type.clone(),
            });
        }
        return Ok(VerifiedPayload {
            payload_type: envelope.payload_type.clone(),
            payload: envelope.payload.clone(),
            key_ids,
        });
    }
    if !key_ids.is_empty() {
        return Err(DsseError::ThresholdNotMet {
            threshold,
            valid: key_ids.len(),
        });
    }
    Err(diagnose(envelope, trust, at, &message))
}

/// Explains why no signature verified. Runs only on the failure path; it never turns a failure
/// into a success.
fn diagnose(envelope: &Envelope, trust: &TrustStore, at: Timestamp, message: &[u8]) -> DsseError {
    for key in trust.keys().filter(|k| !k.is_valid_at(at)) {
        let verifies = envelope
            .signatures
            .iter()
            .any(|s| key.public_key().verify(message, &s.sig).is_ok());
        if verifies {
            match key.check_valid_at(at) {
                Err(TrustError::KeyExpired {
                    keyid,
                    not_after,
                    at,
                }) => {
                    return DsseError::KeyExpired {
                        keyid,
                        not_after,
                        at,
                    }
                }
                Err(TrustError::KeyNotYetValid {
                    keyid,
                    not_before,
                    at,
                }) => {
                    return DsseError::KeyNotYetValid {
                        keyid,
                        not_before,
                        at,
                    }
                }
                _ => {}
            }
        }
    }
    let untrusted_hint = envelope
        .signatures
        .iter()
        .filter_map(|s| s.keyid.as_deref())
        .find(|hint| match hint.parse::<KeyId>() {
            Ok(id) => trust.get(&id).is_none(),
            Err(_) => true,
        });
    match untrusted_hint {
        Some(hint) => DsseError::KeyNotTrusted {
            keyid: hint.to_owned(),
        },
        None => DsseError::NoValidSignature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, PrivateKey, PublicKey};

    const TYPE: &str = "application/vnd.clyra.test+json";

    fn at() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn store(keys: &[&PublicKey]) -> TrustStore {
        let mut s = TrustStore::new();
        for k in keys {
            s.add(
                (*k).clone(),
                "2020-01-01T00:00:00Z".parse().unwrap(),
                None,
                None,
            )
            .unwrap();
        }
        s
    }

    fn gen(alg: Algorithm) -> PrivateKey {
        PrivateKey::generate(alg).unwrap()
    }

    #[test]
    fn pae_format() {
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        // Lengths are bytes, not characters.
        assert_eq!(pae("é", b"\x00\xff"), b"DSSEv1 2 \xc3\xa9 2 \x00\xff");
        let long = vec![b'x'; 100];
        assert!(pae("t", &long).starts_with(b"DSSEv1 1 t 100 xxx"));
    }

    #[test]
    fn round_trip_every_signing_algorithm() {
        let ed = gen(Algorithm::Ed25519);
        let ec = gen(Algorithm::EcdsaP256Sha256);
        let rsa = crate::keys::tests::rsa3072();
        for signer in [&ed as &dyn Signer, &ec, rsa] {
            let env = sign(TYPE, b"{\"a\":1}", &[signer]).unwrap();
            assert_eq!(
                env.signatures[0].keyid.as_deref(),
                Some(signer.key_id().to_string().as_str())
            );
            let parsed = Envelope::from_json(env.to_json().as_bytes()).unwrap();
            assert_eq!(parsed, env);
            let trust = store(&[signer.public_key()]);
            let ok = verify(&parsed, &trust, at(), 1, TYPE).unwrap();
            assert_eq!(ok.payload(), b"{\"a\":1}");
            assert_eq!(ok.payload_type(), TYPE);
            assert_eq!(ok.key_ids(), [signer.key_id()]);

            let mut tampered = parsed.clone();
            tampered.payload[1] ^= 1;
            assert!(matches!(
                verify(&tampered, &trust, at(), 1, TYPE),
                Err(DsseError::NoValidSignature)
            ));
            let mut retyped = parsed.clone();
            retyped.payload_type = "application/vnd.in-toto+json".into();
            assert!(matches!(
                verify(&retyped, &trust, at(), 1, "application/vnd.in-toto+json"),
                Err(DsseError::NoValidSignature)
            ));
        }
    }

    #[test]
    fn signature_is_over_pae_not_payload() {
        let key = gen(Algorithm::Ed25519);
        let raw_sig = key.sign(b"payload").unwrap();
        let env = Envelope {
            payload: b"payload".to_vec(),
            payload_type: TYPE.into(),
            signatures: vec![Signature {
                keyid: None,
                sig: raw_sig,
            }],
        };
        assert!(verify(&env, &store(&[key.public_key()]), at(), 1, TYPE).is_err());
    }

    #[test]
    fn threshold_counts_distinct_keys() {
        let a = gen(Algorithm::EcdsaP256Sha256);
        let b = gen(Algorithm::Ed25519);
        let trust = store(&[a.public_key(), b.public_key()]);

        let both = sign(TYPE, b"p", &[&a, &b]).unwrap();
        let ok = verify(&both, &trust, at(), 2, TYPE).unwrap();
        assert_eq!(ok.key_ids(), [a.key_id(), b.key_id()]);
        assert!(matches!(
            verify(&both, &trust, at(), 3, TYPE),
            Err(DsseError::ThresholdNotMet {
                threshold: 3,
                valid: 2
            })
        ));

        // The same signature twice, and a second *different* valid signature by the same key
        // (the high-S twin of the ECDSA signature): still one key.
        let mut twice = sign(TYPE, b"p", &[&a]).unwrap();
        let der = twice.signatures[0].sig.clone();
        let parsed = p256::ecdsa::Signature::from_der(&der).unwrap();
        let (r, s) = parsed.split_scalars();
        let twin = p256::ecdsa::Signature::from_scalars(p256::FieldBytes::from(*r), -*s)
            .unwrap()
            .to_der()
            .as_bytes()
            .to_vec();
        assert_ne!(twin, der);
        twice.signatures.push(twice.signatures[0].clone());
        twice.signatures.push(Signature {
            keyid: None,
            sig: twin,
        });
        let one = verify(&twice, &trust, at(), 1, TYPE).unwrap();
        assert_eq!(one.key_ids(), [a.key_id()]);
        assert!(matches!(
            verify(&twice, &trust, at(), 2, TYPE),
            Err(DsseError::ThresholdNotMet {
                threshold: 2,
                valid: 1
            })
        ));
        assert!(matches!(
            verify(&twice, &trust, at(), 0, TYPE),
            Err(DsseError::ZeroThreshold)
        ));
    }

    #[test]
    fn keyid_is_only_a_hint() {
        let signer = gen(Algorithm::Ed25519);
        let other = gen(Algorithm::Ed25519);
        let trust = store(&[other.public_key(), signer.public_key()]);
        let mut env = sign(TYPE, b"p", &[&signer]).unwrap();
        for hint in [
            None,
            Some(other.key_id().to_string()),
            Some(gen(Algorithm::Ed25519).key_id().to_string()),
            Some("not a key id".to_owned()),
        ] {
            env.signatures[0].keyid = hint.clone();
            let ok = verify(&env, &trust, at(), 1, TYPE).unwrap();
            assert_eq!(ok.key_ids(), [signer.key_id()], "hint {hint:?}");
        }
    }

    #[test]
    fn failures_say_why() {
        let signer = gen(Algorithm::Ed25519);
        let env = sign(TYPE, b"p", &[&signer]).unwrap();

        let stranger = gen(Algorithm::Ed25519);
        let trust = store(&[stranger.public_key()]);
        assert!(matches!(
            verify(&env, &trust, at(), 1, TYPE),
            Err(DsseError::KeyNotTrusted { keyid }) if keyid == signer.key_id().to_string()
        ));
        let mut no_hint = env.clone();
        no_hint.signatures[0].keyid = None;
        assert!(matches!(
            verify(&no_hint, &trust, at(), 1, TYPE),
            Err(DsseError::NoValidSignature)
        ));

        let mut windowed = TrustStore::new();
        windowed
            .add(
                signer.public_key().clone(),
                "2025-01-01T00:00:00Z".parse().unwrap(),
                Some("2026-01-01T00:00:00Z".parse().unwrap()),
                None,
            )
            .unwrap();
        assert!(matches!(
            verify(&env, &windowed, at(), 1, TYPE),
            Err(DsseError::KeyExpired { keyid, .. }) if keyid == signer.key_id()
        ));
        assert!(matches!(
            verify(
                &env,
                &windowed,
                "2024-06-01T00:00:00Z".parse().unwrap(),
                1,
                TYPE
            ),
            Err(DsseError::KeyNotYetValid { .. })
        ));
        assert!(verify(
            &env,
            &windowed,
            "2025-06-01T00:00:00Z".parse().unwrap(),
            1,
            TYPE
        )
        .is_ok());

        let trusted = store(&[signer.public_key()]);
        assert!(matches!(
            verify(&env, &trusted, at(), 1, "application/vnd.in-toto+json"),
            Err(DsseError::PayloadTypeMismatch { expected, found })
                if expected == "application/vnd.in-toto+json" && found == TYPE
        ));
        let mut empty = env.clone();
        empty.signatures.clear();
        assert!(matches!(
            verify(&empty, &trusted, at(), 1, TYPE),
            Err(DsseError::NoSignatures)
        ));
        let mut many = env.clone();
        many.signatures = vec![env.signatures[0].clone(); MAX_SIGNATURES + 1];
        assert!(matches!(
            verify(&many, &trusted, at(), 1, TYPE),
            Err(DsseError::TooManySignatures { .. })
        ));
    }

    #[test]
    fn url_safe_and_unpadded_base64_are_accepted() {
        let signer = gen(Algorithm::EcdsaP256Sha256);
        // 0xfb 0xff encodes to "+/8" in standard base64, "-_8" in URL-safe.
        let payload = [0xfbu8, 0xff, 0xfe, 0x00, 0x3e];
        let env = sign(TYPE, &payload, &[&signer]).unwrap();
        let trust = store(&[signer.public_key()]);
        assert!(env.to_json().contains("\"payload\":\"+//+AD4=\""));
        let variants: [fn(String) -> String; 4] = [
            |b| b,
            |b| b.replace('=', ""),
            |b| b.replace('+', "-").replace('/', "_"),
            |b| b.replace('+', "-").replace('/', "_").replace('=', ""),
        ];
        for encode in variants {
            let text = serde_json::json!({
                "payload": encode(encode_base64(&env.payload)),
                "payloadType": TYPE,
                "signatures": [{"sig": encode(encode_base64(&env.signatures[0].sig))}],
            })
            .to_string();
            let parsed = Envelope::from_json(text.as_bytes()).unwrap();
            assert_eq!(parsed.payload, payload);
            verify(&parsed, &trust, at(), 1, TYPE).unwrap();
        }
        // Mixed alphabets, bad characters and impossible lengths are rejected.
        for bad in ["+/_-", "a", "ab!c", "ab==c"] {
            let text = format!(r#"{{"payload":"{bad}","payloadType":"t","signatures":[]}}"#);
            assert!(
                matches!(
                    Envelope::from_json(text.as_bytes()),
                    Err(DsseError::Base64 { pointer }) if pointer == "/payload"
                ),
                "{bad}"
            );
        }
        let text = r#"{"payload":"","payloadType":"t","signatures":[{"sig":"!!"}]}"#;
        assert!(matches!(
            Envelope::from_json(text.as_bytes()),
            Err(DsseError::Base64 { pointer }) if pointer == "/signatures/0/sig"
        ));
    }

    #[test]
    fn json_output_shape() {
        let env = Envelope {
            payload: b"hello world".to_vec(),
            payload_type: "http://example.com/HelloWorld".into(),
            signatures: vec![
                Signature {
                    keyid: None,
                    sig: vec![0xfb, 0xff],
                },
                Signature {
                    keyid: Some("k".into()),
                    sig: vec![1],
                },
            ],
        };
        let expected = r#"{"payload":"aGVsbG8gd29ybGQ=","payloadType":"http://example.com/HelloWorld","signatures":[{"sig":"+/8="},{"keyid":"k","sig":"AQ=="}]}"#;
        assert_eq!(env.to_json(), expected);
        assert_eq!(serde_json::to_string(&env).unwrap(), expected);
        assert_eq!(serde_json::from_str::<Envelope>(expected).unwrap(), env);
    }

    #[test]
    fn malformed_envelopes_are_rejected() {
        for text in [
            "",
            "[]",
            r#"{"payload":"","payloadType":"t"}"#,
            r#"{"payload":"","signatures":[]}"#,
            r#"{"payload":"","payloadType":"t","signatures":[],"extra":1}"#,
            r#"{"payload":"","payloadType":"t","signatures":[{"keyid":"k"}]}"#,
            r#"{"payload":"","payloadType":"t","signatures":[{"sig":"","cert":"x"}]}"#,
            r#"{"payload":1,"payloadType":"t","signatures":[]}"#,
        ] {
            assert!(
                matches!(
                    Envelope::from_json(text.as_bytes()),
                    Err(DsseError::Json { .. })
                ),
                "{text}"
            );
        }
    }

    /// A signer whose signatures come from a different key than the one it advertises.
    #[derive(Debug)]
    struct Misconfigured {
        advertised: PrivateKey,
        actual: PrivateKey,
    }

    impl Signer for Misconfigured {
        fn algorithm(&self) -> Algorithm {
            self.advertised.algorithm()
        }
        fn public_key(&self) -> &PublicKey {
            self.advertised.public_key()
        }
        fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
            self.actual.sign(msg)
        }
    }

    #[test]
    fn signing_checks_its_inputs_and_outputs() {
        let key = gen(Algorithm::Ed25519);
        assert!(matches!(sign(TYPE, b"p", &[]), Err(DsseError::NoSigners)));
        assert!(matches!(
            sign(TYPE, b"p", &[&key, &key]),
            Err(DsseError::DuplicateSigner { .. })
        ));
        let bad = Misconfigured {
            advertised: gen(Algorithm::Ed25519),
            actual: key,
        };
        assert!(matches!(
            sign(TYPE, b"p", &[&bad]),
            Err(DsseError::SelfCheck { .. })
        ));
    }

    #[test]
    fn envelope_with_duplicate_key_is_rejected() {
        let text = br#"{"payload":"aGk=","payloadType":"t","payloadType":"u","signatures":[]}"#;
        match Envelope::from_json(text) {
            Err(DsseError::Json { detail, line, .. }) => {
                assert!(detail.contains("duplicate key `payloadType`"), "{detail}");
                assert_eq!(line, 1);
            }
            other => panic!("expected a JSON error, got {other:?}"),
        }
    }
}
