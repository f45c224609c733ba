#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The DSSE v1.0.2 specification's test vector (`vectors/dsse/spec-example.json`, see
//! `vectors/dsse/ATTRIBUTION.md`).
//!
//! The vector's signature is raw `r||s` (IEEE P1363). Clyra's product verifier accepts DER only,
//! so it must reject the vector as published and accept the same signature converted to DER.

use base64::Engine as _;
use clyra_evidence::dsse::{self, Envelope, Signature};
use clyra_evidence::keys::{Algorithm, PrivateKey, PublicKey, SignatureError, Signer as _};
use clyra_evidence::trust::TrustStore;
use p256::ecdsa::signature::Signer as _;

const VECTOR: &str = include_str!("vectors/dsse/spec-example.json");

struct Vector {
    payload_type: String,
    payload: Vec<u8>,
    pae: Vec<u8>,
    public_key: PublicKey,
    private_scalar: [u8; 32],
    envelope_json: String,
    raw_signature: Vec<u8>,
}

fn vector() -> Vector {
    let v: serde_json::Value = serde_json::from_str(VECTOR).unwrap();
    let scalar =
        rsa::BigUint::parse_bytes(v["privateScalarDecimal"].as_str().unwrap().as_bytes(), 10)
            .unwrap()
            .to_bytes_be();
    let mut private_scalar = [0u8; 32];
    private_scalar[32 - scalar.len()..].copy_from_slice(&scalar);
    Vector {
        payload_type: v["payloadType"].as_str().unwrap().to_owned(),
        payload: v["payloadUtf8"].as_str().unwrap().as_bytes().to_vec(),
        pae: v["paeUtf8"].as_str().unwrap().as_bytes().to_vec(),
        public_key: PublicKey::from_pem(v["publicKeyPem"].as_str().unwrap()).unwrap(),
        private_scalar,
        envelope_json: v["envelope"].to_string(),
        raw_signature: base64::engine::general_purpose::STANDARD
            .decode(v["envelope"]["signatures"][0]["sig"].as_str().unwrap())
            .unwrap(),
    }
}

fn trust(key: &PublicKey) -> TrustStore {
    let mut t = TrustStore::new();
    t.add(
        key.clone(),
        "2020-01-01T00:00:00Z".parse().unwrap(),
        None,
        None,
    )
    .unwrap();
    t
}

fn now() -> jiff::Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

#[test]
fn pae_matches_the_vector_exactly() {
    let v = vector();
    assert_eq!(dsse::pae(&v.payload_type, &v.payload), v.pae);
}

#[test]
fn envelope_parses() {
    let v = vector();
    let env = Envelope::from_json(v.envelope_json.as_bytes()).unwrap();
    assert_eq!(env.payload, v.payload);
    assert_eq!(env.payload_type, v.payload_type);
    assert_eq!(env.signatures.len(), 1);
    assert_eq!(env.signatures[0].keyid, None);
    assert_eq!(env.signatures[0].sig, v.raw_signature);
    assert_eq!(v.public_key.algorithm(), Algorithm::EcdsaP256Sha256);
}

#[test]
fn rfc6979_signing_reproduces_the_vector_signature() {
    let v = vector();
    let signing_key = p256::ecdsa::SigningKey::from_bytes(&v.private_scalar.into()).unwrap();
    // The scalar belongs to the vector's public key.
    let derived = PublicKey::from_spki_der(
        p256::pkcs8::EncodePublicKey::to_public_key_der(signing_key.verifying_key())
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(derived, v.public_key);
    // Clyra's signer (loaded through PKCS#8 like any key file) signs DER; converted to r||s it
    // must equal the vector byte for byte.
    let pkcs8 =
        p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(&signing_key, p256::pkcs8::LineEnding::LF)
            .unwrap();
    let key = PrivateKey::from_pkcs8_pem(&pkcs8).unwrap();
    let der = key.sign(&v.pae).unwrap();
    let raw = p256::ecdsa::Signature::from_der(&der).unwrap().to_bytes();
    assert_eq!(&raw[..], v.raw_signature.as_slice());
    // And the library's own RFC 6979 path agrees.
    let lib: p256::ecdsa::Signature = signing_key.sign(&v.pae);
    assert_eq!(&lib.to_bytes()[..], v.raw_signature.as_slice());
    // Signing through the envelope API gives the same signature, now with Clyra's keyid.
    let env = dsse::sign(&v.payload_type, &v.payload, &[&key]).unwrap();
    assert_eq!(env.signatures[0].sig, der);
    assert_eq!(
        env.signatures[0].keyid.as_deref(),
        Some(v.public_key.key_id().to_string().as_str())
    );
}

#[test]
fn product_verifier_rejects_raw_and_accepts_der() {
    let v = vector();
    let trust = trust(&v.public_key);
    let env = Envelope::from_json(v.envelope_json.as_bytes()).unwrap();

    // As published (raw r||s): rejected, both at the key level and the envelope level.
    assert!(matches!(
        v.public_key.verify(&v.pae, &v.raw_signature),
        Err(SignatureError::Malformed { .. })
    ));
    assert!(matches!(
        dsse::verify(&env, &trust, now(), 1, &v.payload_type),
        Err(dsse::DsseError::NoValidSignature)
    ));

    // The same signature as DER: accepted.
    let der = p256::ecdsa::Signature::from_slice(&v.raw_signature)
        .unwrap()
        .to_der();
    let der_env = Envelope {
        signatures: vec![Signature {
            keyid: None,
            sig: der.as_bytes().to_vec(),
        }],
        ..env
    };
    let verified = dsse::verify(&der_env, &trust, now(), 1, &v.payload_type).unwrap();
    assert_eq!(verified.payload(), v.payload.as_slice());
    assert_eq!(verified.key_ids(), [v.public_key.key_id()]);
}
