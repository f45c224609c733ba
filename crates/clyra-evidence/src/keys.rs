//! Signing keys, public keys and key ids.
//!
//! Algorithms are named as in the Sigstore algorithm registry
//! (`sigstore/architecture-docs`, `algorithm-registry.md`):
//!
//! | name                        | sign | verify | signature encoding                  |
//! |-----------------------------|------|--------|-------------------------------------|
//! | `ed25519` (default)         | yes  | yes    | 64 bytes, RFC 8032 (pure Ed25519)   |
//! | `ecdsa-sha2-256-nistp256`   | yes  | yes    | ASN.1 DER `Ecdsa-Sig-Value` only    |
//! | `rsa-sign-pss-3072-sha256`  | yes  | yes    | RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32 |
//! | `rsa-sign-pss-4096-sha256`  | yes  | yes    | as above                            |
//! | `rsa-sign-pss-2048-sha256`  | no   | yes    | as above (verify only)              |
//!
//! Public keys travel as SubjectPublicKeyInfo (SPKI), PEM label `PUBLIC KEY`; private keys as
//! unencrypted PKCS#8, PEM label `PRIVATE KEY`. A [`KeyId`] is the lowercase hex SHA-256 of the
//! public key's SPKI DER, so anyone holding the public key can recompute it.
//!
//! Verification is strict and fails closed; see [`PublicKey::verify`] for the exact policy, which
//! the TypeScript verifier mirrors.
//!
//! Signing goes through the [`Signer`] trait so that a KMS or HSM backend can stand in for a key
//! file; nothing in the evidence kernel assumes that a private key is in memory.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use p256::pkcs8::der::{pem, Decode as _, SecretDocument};
use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
use p256::pkcs8::{
    DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _,
    LineEnding, ObjectIdentifier, PrivateKeyInfo,
};
use rand_core::OsRng;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Verifier as _};
use rsa::traits::PublicKeyParts as _;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::digest::{Digest, DigestParseError};

/// `id-Ed25519` (RFC 8410).
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-ecPublicKey` (RFC 5480).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` / `prime256v1` (RFC 5480).
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `rsaEncryption` (RFC 8017).
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// RSASSA-PSS salt length in bytes (the SHA-256 output size), for signing and verifying.
pub const RSA_PSS_SALT_LEN: usize = 32;

/// The largest key file [`read_private_key_file`] and [`read_public_key_file`] will read.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

const PEM_PUBLIC_KEY: &str = "PUBLIC KEY";
const PEM_PRIVATE_KEY: &str = "PRIVATE KEY";
const PEM_ENCRYPTED_PRIVATE_KEY: &str = "ENCRYPTED PRIVATE KEY";

/// A signature algorithm, named as in the Sigstore algorithm registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Algorithm {
    /// `ed25519`: pure Ed25519 (RFC 8032), the default.
    #[default]
    Ed25519,
    /// `ecdsa-sha2-256-nistp256`: ECDSA over P-256 with SHA-256, DER signatures (cosign interop).
    EcdsaP256Sha256,
    /// `rsa-sign-pss-2048-sha256`: RSASSA-PSS, 2048-bit modulus. Verify only.
    RsaPss2048Sha256,
    /// `rsa-sign-pss-3072-sha256`: RSASSA-PSS, 3072-bit modulus.
    RsaPss3072Sha256,
    /// `rsa-sign-pss-4096-sha256`: RSASSA-PSS, 4096-bit modulus.
    RsaPss4096Sha256,
}

impl Algorithm {
    /// Every supported algorithm, signing or verify-only.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Ed25519,
        Algorithm::EcdsaP256Sha256,
        Algorithm::RsaPss2048Sha256,
        Algorithm::RsaPss3072Sha256,
        Algorithm::RsaPss4096Sha256,
    ];

    /// The algorithm-registry name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "ecdsa-sha2-256-nistp256",
            Algorithm::RsaPss2048Sha256 => "rsa-sign-pss-2048-sha256",
            Algorithm::RsaPss3072Sha256 => "rsa-sign-pss-3072-sha256",
            Algorithm::RsaPss4096Sha256 => "rsa-sign-pss-4096-sha256",
        }
    }

    /// Whether Clyra signs with this algorithm (RSA-2048 is accepted for verification only).
    pub const fn can_sign(self) -> bool {
        !matches!(self, Algorithm::RsaPss2048Sha256)
    }

    /// The RSA modulus size in bits, for the RSA algorithms.
    pub const fn rsa_bits(self) -> Option<usize> {
        match self {
            Algorithm::RsaPss2048Sha256 => Some(2048),
            Algorithm::RsaPss3072Sha256 => Some(3072),
            Algorithm::RsaPss4096Sha256 => Some(4096),
            Algorithm::Ed25519 | Algorithm::EcdsaP256Sha256 => None,
        }
    }

    fn from_rsa_bits(bits: usize) -> Option<Algorithm> {
        match bits {
            2048 => Some(Algorithm::RsaPss2048Sha256),
            3072 => Some(Algorithm::RsaPss3072Sha256),
            4096 => Some(Algorithm::RsaPss4096Sha256),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| KeyError::UnknownAlgorithm { name: s.to_owned() })
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a key could not be parsed, generated, encoded, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm name is not in the supported registry subset.
    #[error("unknown algorithm `{name}`")]
    UnknownAlgorithm {
        /// The name as given.
        name: String,
    },
    /// A key id was not 64 lowercase hex characters.
    #[error("invalid key id `{input}`: {source}")]
    InvalidKeyId {
        /// The key id as given.
        input: String,
        /// What was wrong with it.
        source: DigestParseError,
    },
    /// The PEM text could not be decoded.
    #[error("invalid pem: {detail}")]
    Pem {
        /// The decoder's explanation.
        detail: String,
    },
    /// The PEM block has the wrong label.
    #[error("expected a pem block labelled `{expected}`, found `{found}`")]
    PemLabel {
        /// The label this function reads.
        expected: &'static str,
        /// The label found.
        found: String,
    },
    /// The private key is encrypted; Clyra reads unencrypted PKCS#8 only.
    #[error("encrypted private keys are not supported; decrypt to unencrypted pkcs#8 first")]
    EncryptedPrivateKey,
    /// The DER structure (SPKI or PKCS#8) is malformed.
    #[error("malformed {structure}: {detail}")]
    Der {
        /// `subjectpublickeyinfo` or `pkcs#8 private key`.
        structure: &'static str,
        /// The decoder's explanation.
        detail: String,
    },
    /// The key type (SPKI or PKCS#8 algorithm OID) is not supported.
    #[error("unsupported key type with algorithm oid `{oid}`")]
    UnsupportedKeyType {
        /// The algorithm OID found.
        oid: String,
    },
    /// The elliptic curve is not P-256.
    #[error("unsupported elliptic curve `{oid}`; only p-256 (1.2.840.10045.3.1.7) is supported")]
    UnsupportedCurve {
        /// The curve OID found, or `absent`.
        oid: String,
    },
    /// The RSA modulus is not exactly 2048, 3072 or 4096 bits.
    #[error("unsupported rsa modulus size {bits} bits; expected 2048, 3072 or 4096")]
    UnsupportedRsaSize {
        /// The modulus size found.
        bits: usize,
    },
    /// The key material is invalid for its algorithm (bad point, bad RSA components, ...).
    #[error("invalid {algorithm} key: {detail}")]
    InvalidKey {
        /// The algorithm the key claims.
        algorithm: Algorithm,
        /// The library's explanation.
        detail: String,
    },
    /// An Ed25519 public key of small order, or one in non-canonical encoding.
    #[error("weak or non-canonical ed25519 public key")]
    WeakEd25519Key,
    /// The SPKI is valid but not in the one canonical encoding Clyra uses (e.g. a compressed
    /// P-256 point), so its key id would be ambiguous.
    #[error("public key is not in canonical subjectpublickeyinfo der encoding")]
    NonCanonicalSpki,
    /// The algorithm is accepted for verification only.
    #[error("algorithm `{algorithm}` is verify-only and cannot be used to sign")]
    VerifyOnly {
        /// The algorithm.
        algorithm: Algorithm,
    },
    /// Key generation failed.
    #[error("generating a {algorithm} key failed: {detail}")]
    Generate {
        /// The algorithm.
        algorithm: Algorithm,
        /// The library's explanation.
        detail: String,
    },
    /// Encoding the key failed.
    #[error("encoding a {algorithm} key failed: {detail}")]
    Encode {
        /// The algorithm.
        algorithm: Algorithm,
        /// The library's explanation.
        detail: String,
    },
    /// The key file already exists; key files are never overwritten.
    #[error("refusing to overwrite existing key file `{}`", path.display())]
    FileExists {
        /// The path.
        path: PathBuf,
    },
    /// The private key file is readable by group or others.
    #[error(
        "private key file `{}` has mode {mode:04o}, which lets group or others read it; \
         run `chmod 600` on it",
        path.display()
    )]
    InsecurePermissions {
        /// The path.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The key file is larger than any key file Clyra writes.
    #[error("key file `{}` is larger than {max_bytes} bytes", path.display())]
    FileTooLarge {
        /// The path.
        path: PathBuf,
        /// The limit.
        max_bytes: u64,
    },
    /// The key file is not UTF-8 text.
    #[error("key file `{}` is not utf-8 pem text", path.display())]
    NotText {
        /// The path.
        path: PathBuf,
    },
    /// A key in a file could not be parsed.
    #[error("key file `{}`: {source}", path.display())]
    InFile {
        /// The path.
        path: PathBuf,
        /// The parse error.
        source: Box<KeyError>,
    },
    /// An I/O error on a key file.
    #[error("key file `{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why a signature could not be made or did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature bytes are not in the encoding the algorithm requires (for ECDSA: not
    /// canonical ASN.1 DER, e.g. raw `r||s`; for Ed25519: not 64 bytes; for RSA: not the modulus
    /// length).
    #[error("malformed {algorithm} signature: {reason}")]
    Malformed {
        /// The algorithm of the verifying key.
        algorithm: Algorithm,
        /// What is wrong with the encoding.
        reason: &'static str,
    },
    /// The signature is well formed but does not verify under this key and message.
    #[error("{algorithm} signature does not verify")]
    Invalid {
        /// The algorithm of the verifying key.
        algorithm: Algorithm,
    },
    /// The key's algorithm is verify-only.
    #[error("algorithm `{algorithm}` is verify-only and cannot be used to sign")]
    VerifyOnly {
        /// The algorithm.
        algorithm: Algorithm,
    },
    /// The signing backend (local key, KMS, HSM) failed.
    #[error("{algorithm} signing failed: {source}")]
    Backend {
        /// The algorithm.
        algorithm: Algorithm,
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A key id: the SHA-256 of the public key's SubjectPublicKeyInfo DER, shown as 64 lowercase hex
/// characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Digest);

impl KeyId {
    /// The key id of a SubjectPublicKeyInfo DER encoding.
    pub fn of_spki_der(spki_der: &[u8]) -> Self {
        KeyId(Digest::sha256(spki_der))
    }

    /// The underlying digest.
    pub const fn digest(&self) -> &Digest {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0.to_hex())
    }
}

impl FromStr for KeyId {
    type Err = KeyError;
    /// Parses exactly 64 lowercase hex characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::from_hex(s)
            .map(KeyId)
            .map_err(|source| KeyError::InvalidKeyId {
                input: s.to_owned(),
                source,
            })
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Digest::deserialize(d).map(KeyId)
    }
}

/// Something that can produce signatures: a key in memory ([`PrivateKey`]) or, later, a KMS or
/// HSM backend.
pub trait Signer: Send + Sync {
    /// The signature algorithm.
    fn algorithm(&self) -> Algorithm;
    /// The public half of the signing key.
    fn public_key(&self) -> &PublicKey;
    /// The key id of the public key.
    fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }
    /// Signs `msg` (the whole message; hashing is part of the algorithm).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError>;
}

/// Something that can check signatures; implemented by [`PublicKey`].
pub trait Verifier {
    /// The signature algorithm.
    fn algorithm(&self) -> Algorithm;
    /// The key id.
    fn key_id(&self) -> KeyId;
    /// Checks `sig` over `msg`, failing closed.
    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError>;
}

#[derive(Clone)]
enum PublicKeyInner {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

/// A public key of one of the supported [`Algorithm`]s, with its canonical SPKI DER and key id.
#[derive(Clone)]
pub struct PublicKey {
    inner: PublicKeyInner,
    algorithm: Algorithm,
    spki_der: Vec<u8>,
    key_id: KeyId,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .finish()
    }
}

fn der_error(structure: &'static str, e: impl fmt::Display) -> KeyError {
    KeyError::Der {
        structure,
        detail: e.to_string(),
    }
}

impl PublicKey {
    /// Parses a SubjectPublicKeyInfo in DER, detecting the algorithm from it: Ed25519, ECDSA
    /// P-256, or RSA with a modulus of exactly 2048, 3072 or 4096 bits.
    ///
    /// The input must be the canonical encoding (uncompressed P-256 point, canonical Ed25519
    /// point), so that one key has exactly one key id. Small-order Ed25519 keys are rejected.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        const SPKI: &str = "subjectpublickeyinfo";
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|e| der_error(SPKI, e))?;
        let oid = spki.algorithm.oid;
        let (inner, algorithm, canonical) = if oid == OID_ED25519 {
            let algorithm = Algorithm::Ed25519;
            let vk = ed25519_dalek::VerifyingKey::from_public_key_der(der)
                .map_err(|e| invalid_key(algorithm, e))?;
            if vk.is_weak() || vk.to_edwards().compress().as_bytes() != vk.as_bytes() {
                return Err(KeyError::WeakEd25519Key);
            }
            let canonical = vk
                .to_public_key_der()
                .map_err(|e| encode_error(algorithm, e))?;
            (PublicKeyInner::Ed25519(vk), algorithm, canonical)
        } else if oid == OID_EC_PUBLIC_KEY {
            let algorithm = Algorithm::EcdsaP256Sha256;
            match spki.algorithm.parameters_oid() {
                Ok(curve) if curve == OID_P256 => {}
                Ok(curve) => {
                    return Err(KeyError::UnsupportedCurve {
                        oid: curve.to_string(),
                    })
                }
                Err(_) => {
                    return Err(KeyError::UnsupportedCurve {
                        oid: "absent".to_owned(),
                    })
                }
            }
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(der)
                .map_err(|e| invalid_key(algorithm, e))?;
            let canonical = vk
                .to_public_key_der()
                .map_err(|e| encode_error(algorithm, e))?;
            (PublicKeyInner::EcdsaP256(vk), algorithm, canonical)
        } else if oid == OID_RSA {
            let pk = rsa::RsaPublicKey::from_public_key_der(der).map_err(|e| KeyError::Der {
                structure: "rsa public key",
                detail: e.to_string(),
            })?;
            let bits = pk.n().bits();
            let algorithm =
                Algorithm::from_rsa_bits(bits).ok_or(KeyError::UnsupportedRsaSize { bits })?;
            let canonical = pk
                .to_public_key_der()
                .map_err(|e| encode_error(algorithm, e))?;
            (PublicKeyInner::Rsa(pk), algorithm, canonical)
        } else {
            return Err(KeyError::UnsupportedKeyType {
                oid: oid.to_string(),
            });
        };
        if canonical.as_bytes() != der {
            return Err(KeyError::NonCanonicalSpki);
        }
        Ok(PublicKey {
            inner,
            algorithm,
            spki_der: der.to_vec(),
            key_id: KeyId::of_spki_der(der),
        })
    }

    /// Parses a PEM block labelled `PUBLIC KEY` holding a SubjectPublicKeyInfo; see
    /// [`PublicKey::from_spki_der`].
    pub fn from_pem(pem_text: &str) -> Result<Self, KeyError> {
        let (label, der) = pem::decode_vec(pem_text.as_bytes()).map_err(|e| KeyError::Pem {
            detail: e.to_string(),
        })?;
        if label != PEM_PUBLIC_KEY {
            return Err(KeyError::PemLabel {
                expected: PEM_PUBLIC_KEY,
                found: label.to_owned(),
            });
        }
        PublicKey::from_spki_der(&der)
    }

    /// The key as a PEM block labelled `PUBLIC KEY`, 64-character lines, LF line endings.
    pub fn to_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.spki_der);
        let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
        out.push_str("-----BEGIN PUBLIC KEY-----\n");
        // Base64 output is ASCII, so splitting bytes never splits a character.
        for line in b64.as_bytes().chunks(64) {
            out.extend(line.iter().map(|&b| char::from(b)));
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        out
    }

    /// The canonical SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The key id: SHA-256 of [`PublicKey::spki_der`].
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The algorithm, detected from the SPKI.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The 32-byte RFC 8032 encoding of an Ed25519 key; `None` for other algorithms.
    pub fn ed25519_bytes(&self) -> Option<[u8; 32]> {
        match &self.inner {
            PublicKeyInner::Ed25519(vk) => Some(vk.to_bytes()),
            _ => None,
        }
    }

    /// Verifies `sig` over `msg`. The policy is strict and fails closed:
    ///
    /// - **Ed25519**: `verify_strict` semantics: the signature must be exactly 64 bytes, `S`
    ///   must be canonical (`S < l`), and small-order `R` is rejected (small-order and
    ///   non-canonical public keys are already rejected when the key is parsed). The TypeScript
    ///   verifier uses noble with `{zip215: false}`.
    /// - **ECDSA P-256**: SHA-256 of `msg`; the signature must be canonical ASN.1 DER
    ///   (`SEQUENCE { r INTEGER, s INTEGER }`, re-encoding must reproduce the input). Raw `r||s`
    ///   (IEEE P1363) is rejected. Both low-S and high-S are accepted: Go's `crypto/ecdsa`,
    ///   OpenSSL and therefore cosign do not normalise `s`, so about half of their signatures
    ///   are high-S, and ECDSA itself does not require low-S (that is a Bitcoin malleability
    ///   rule). Malleability does not matter here because evidence is identified by payload
    ///   digests, never by signature bytes. The TypeScript verifier uses noble with
    ///   `{lowS: false, format: 'der'}` to accept exactly the same set.
    /// - **RSA**: RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length exactly 32 bytes; the
    ///   signature must be exactly the modulus length.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let algorithm = self.algorithm;
        let invalid = |_| SignatureError::Invalid { algorithm };
        match &self.inner {
            PublicKeyInner::Ed25519(vk) => {
                let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| {
                    SignatureError::Malformed {
                        algorithm,
                        reason: "expected 64 bytes",
                    }
                })?;
                vk.verify_strict(msg, &sig).map_err(invalid)
            }
            PublicKeyInner::EcdsaP256(vk) => {
                let malformed = |reason| SignatureError::Malformed { algorithm, reason };
                let parsed = p256::ecdsa::Signature::from_der(sig)
                    .map_err(|_| malformed("expected a canonical asn.1 der ecdsa signature"))?;
                if parsed.to_der().as_bytes() != sig {
                    return Err(malformed("der encoding is not canonical"));
                }
                rsa::signature::Verifier::verify(vk, msg, &parsed).map_err(invalid)
            }
            PublicKeyInner::Rsa(pk) => {
                if sig.len() != pk.size() {
                    return Err(SignatureError::Malformed {
                        algorithm,
                        reason: "length differs from the modulus length",
                    });
                }
                let parsed =
                    rsa::pss::Signature::try_from(sig).map_err(|_| SignatureError::Malformed {
                        algorithm,
                        reason: "not an rsa signature",
                    })?;
                rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(pk.clone(), RSA_PSS_SALT_LEN)
                    .verify(msg, &parsed)
                    .map_err(invalid)
            }
        }
    }
}

fn invalid_key(algorithm: Algorithm, e: impl fmt::Display) -> KeyError {
    KeyError::InvalidKey {
        algorithm,
        detail: e.to_string(),
    }
}

fn encode_error(algorithm: Algorithm, e: impl fmt::Display) -> KeyError {
    KeyError::Encode {
        algorithm,
        detail: e.to_string(),
    }
}

impl Verifier for PublicKey {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    fn key_id(&self) -> KeyId {
        self.key_id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        PublicKey::verify(self, msg, sig)
    }
}

enum PrivateKeyInner {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
    /// Blinded against timing side channels (RUSTSEC-2023-0071 concerns private-key
    /// operations).
    Rsa(rsa::pss::BlindedSigningKey<Sha256>),
}

/// A private key held in memory. All three backing types zeroize their secrets on drop, and
/// `Debug` prints only the algorithm and key id.
pub struct PrivateKey {
    inner: PrivateKeyInner,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.public.algorithm)
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates a fresh key with the operating system's RNG.
    pub fn generate(algorithm: Algorithm) -> Result<Self, KeyError> {
        let rsa = |bits: usize| {
            let key =
                rsa::RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| KeyError::Generate {
                    algorithm,
                    detail: e.to_string(),
                })?;
            Ok::<_, KeyError>(PrivateKeyInner::Rsa(
                rsa::pss::BlindedSigningKey::new_with_salt_len(key, RSA_PSS_SALT_LEN),
            ))
        };
        let inner = match algorithm {
            Algorithm::Ed25519 => {
                PrivateKeyInner::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng))
            }
            Algorithm::EcdsaP256Sha256 => {
                PrivateKeyInner::EcdsaP256(p256::ecdsa::SigningKey::random(&mut OsRng))
            }
            Algorithm::RsaPss2048Sha256 => return Err(KeyError::VerifyOnly { algorithm }),
            Algorithm::RsaPss3072Sha256 => rsa(3072)?,
            Algorithm::RsaPss4096Sha256 => rsa(4096)?,
        };
        PrivateKey::from_inner(inner)
    }

    fn from_inner(inner: PrivateKeyInner) -> Result<Self, KeyError> {
        let (algorithm, spki) = match &inner {
            PrivateKeyInner::Ed25519(k) => {
                (Algorithm::Ed25519, k.verifying_key().to_public_key_der())
            }
            PrivateKeyInner::EcdsaP256(k) => (
                Algorithm::EcdsaP256Sha256,
                k.verifying_key().to_public_key_der(),
            ),
            PrivateKeyInner::Rsa(k) => (
                Algorithm::RsaPss3072Sha256,
                k.as_ref().to_public_key().to_public_key_der(),
            ),
        };
        let spki = spki.map_err(|e| encode_error(algorithm, e))?;
        let public = PublicKey::from_spki_der(spki.as_bytes())?;
        if !public.algorithm.can_sign() {
            return Err(KeyError::VerifyOnly {
                algorithm: public.algorithm,
            });
        }
        Ok(PrivateKey { inner, public })
    }

    /// Parses an unencrypted PKCS#8 private key in a PEM block labelled `PRIVATE KEY`
    /// (what `openssl genpkey` and `cosign`-style tools write). SEC1 (`EC PRIVATE KEY`),
    /// PKCS#1 (`RSA PRIVATE KEY`) and encrypted keys are rejected.
    pub fn from_pkcs8_pem(pem_text: &str) -> Result<Self, KeyError> {
        const PKCS8: &str = "pkcs#8 private key";
        let (label, doc) = SecretDocument::from_pem(pem_text).map_err(|e| {
            // Report the label if the PEM framing was fine but the label was not.
            match pem::decode_label(pem_text.as_bytes()) {
                Ok(PEM_ENCRYPTED_PRIVATE_KEY) => KeyError::EncryptedPrivateKey,
                Ok(found) if found != PEM_PRIVATE_KEY => KeyError::PemLabel {
                    expected: PEM_PRIVATE_KEY,
                    found: found.to_owned(),
                },
                _ => KeyError::Pem {
                    detail: e.to_string(),
                },
            }
        })?;
        if label == PEM_ENCRYPTED_PRIVATE_KEY {
            return Err(KeyError::EncryptedPrivateKey);
        }
        if label != PEM_PRIVATE_KEY {
            return Err(KeyError::PemLabel {
                expected: PEM_PRIVATE_KEY,
                found: label.to_owned(),
            });
        }
        let der = doc.as_bytes();
        let info = PrivateKeyInfo::try_from(der).map_err(|e| der_error(PKCS8, e))?;
        let oid = info.algorithm.oid;
        let inner = if oid == OID_ED25519 {
            PrivateKeyInner::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| invalid_key(Algorithm::Ed25519, e))?,
            )
        } else if oid == OID_EC_PUBLIC_KEY {
            match info.algorithm.parameters_oid() {
                Ok(curve) if curve == OID_P256 => {}
                Ok(curve) => {
                    return Err(KeyError::UnsupportedCurve {
                        oid: curve.to_string(),
                    })
                }
                Err(_) => {
                    return Err(KeyError::UnsupportedCurve {
                        oid: "absent".to_owned(),
                    })
                }
            }
            PrivateKeyInner::EcdsaP256(
                p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| invalid_key(Algorithm::EcdsaP256Sha256, e))?,
            )
        } else if oid == OID_RSA {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|e| invalid_key(Algorithm::RsaPss3072Sha256, e))?;
            let bits = key.n().bits();
            let algorithm =
                Algorithm::from_rsa_bits(bits).ok_or(KeyError::UnsupportedRsaSize { bits })?;
            key.validate().map_err(|e| invalid_key(algorithm, e))?;
            PrivateKeyInner::Rsa(rsa::pss::BlindedSigningKey::new_with_salt_len(
                key,
                RSA_PSS_SALT_LEN,
            ))
        } else {
            return Err(KeyError::UnsupportedKeyType {
                oid: oid.to_string(),
            });
        };
        PrivateKey::from_inner(inner)
    }

    /// The key as unencrypted PKCS#8 in a PEM block labelled `PRIVATE KEY`, LF line endings.
    /// The returned string is zeroized when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let algorithm = self.public.algorithm;
        match &self.inner {
            PrivateKeyInner::Ed25519(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKeyInner::EcdsaP256(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKeyInner::Rsa(k) => k.as_ref().to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| encode_error(algorithm, e))
    }
}

impl Signer for PrivateKey {
    fn algorithm(&self) -> Algorithm {
        self.public.algorithm
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Ed25519 is deterministic (RFC 8032); ECDSA P-256 is deterministic (RFC 6979) and DER
    /// encoded; RSA-PSS uses a fresh 32-byte salt from the operating system's RNG.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let algorithm = self.public.algorithm;
        let backend = |e: rsa::signature::Error| SignatureError::Backend {
            algorithm,
            source: Box::new(e),
        };
        match &self.inner {
            PrivateKeyInner::Ed25519(k) => Ok(k.try_sign(msg).map_err(backend)?.to_vec()),
            PrivateKeyInner::EcdsaP256(k) => {
                let sig: p256::ecdsa::DerSignature =
                    rsa::signature::Signer::try_sign(k, msg).map_err(backend)?;
                Ok(sig.as_bytes().to_vec())
            }
            PrivateKeyInner::Rsa(k) => Ok(k
                .try_sign_with_rng(&mut OsRng, msg)
                .map_err(backend)?
                .to_vec()),
        }
    }
}

/// Writes `key` as PKCS#8 PEM to a new file at `path`. The file is created with mode 0600
/// (on Unix, set atomically at creation, before any secret is written) and an existing file is
/// never overwritten ([`KeyError::FileExists`]).
pub fn write_private_key_file(path: &Path, key: &PrivateKey) -> Result<(), KeyError> {
    let pem_text = key.to_pkcs8_pem()?;
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::FileExists {
                path: path.to_owned(),
            }
        } else {
            io(e)
        }
    })?;
    let written = file
        .write_all(pem_text.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        // Do not leave a truncated key behind; the original error is the one to report.
        let _ = std::fs::remove_file(path);
        return Err(io(e));
    }
    Ok(())
}

fn read_key_text(path: &Path, private: bool) -> Result<Zeroizing<String>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        // fstat on the open descriptor: no window between the check and the read.
        let mode = file.metadata().map_err(io)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyError::FileTooLarge {
            path: path.to_owned(),
            max_bytes: MAX_KEY_FILE_BYTES,
        });
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::NotText {
        path: path.to_owned(),
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn in_file(path: &Path) -> impl FnOnce(KeyError) -> KeyError + '_ {
    move |e| KeyError::InFile {
        path: path.to_owned(),
        source: Box::new(e),
    }
}

/// Reads a PKCS#8 PEM private key file. On Unix, a file that group or others can access
/// (`mode & 0o077 != 0`) is rejected with [`KeyError::InsecurePermissions`], as ssh does.
pub fn read_private_key_file(path: &Path) -> Result<PrivateKey, KeyError> {
    let text = read_key_text(path, true)?;
    PrivateKey::from_pkcs8_pem(&text).map_err(in_file(path))
}

/// Reads the text of a private key file under the same rules as [`read_private_key_file`] (owner
/// only on Unix, at most 64 KiB, UTF-8), without parsing it: for keys of other formats or uses
/// (the Snowflake key-pair JWT's RSA key, for instance). Zeroized when dropped.
pub fn read_private_key_text(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    read_key_text(path, true)
}

/// Reads an SPKI PEM public key file.
pub fn read_public_key_file(path: &Path) -> Result<PublicKey, KeyError> {
    let text = read_key_text(path, false)?;
    PublicKey::from_pem(&text).map_err(in_file(path))
}

/// Whether a DER-encoded ECDSA P-256 signature has a low `s` (s ≤ n/2). Both `(r, s)` and
/// `(r, n − s)` verify, so a verifier that must see one encoding per signature (a bundle's closed
/// attestation, spec/common/bundle.md §5) requires the low one. `None` if it is not valid DER.
pub fn ecdsa_p256_is_low_s(der: &[u8]) -> Option<bool> {
    let sig = p256::ecdsa::Signature::from_der(der).ok()?;
    Some(sig.normalize_s().is_none())
}

/// Rewrites a DER-encoded ECDSA P-256 signature to its low-`s` twin (unchanged if already low).
/// Any signer's output, a KMS's included, can be normalized this way after the fact.
pub fn ecdsa_p256_normalize_low_s(der: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let sig = p256::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::Malformed {
        algorithm: Algorithm::EcdsaP256Sha256,
        reason: "not a DER-encoded P-256 signature",
    })?;
    Ok(sig
        .normalize_s()
        .unwrap_or(sig)
        .to_der()
        .as_bytes()
        .to_vec())
}

/// A signer whose ECDSA P-256 signatures are always low-`s`; other algorithms pass through.
pub struct LowS<'a>(pub &'a dyn Signer);

impl fmt::Debug for LowS<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LowS({})", self.0.key_id())
    }
}

impl Signer for LowS<'_> {
    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }

    fn public_key(&self) -> &PublicKey {
        self.0.public_key()
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let sig = self.0.sign(msg)?;
        if self.0.algorithm() == Algorithm::EcdsaP256Sha256 {
            ecdsa_p256_normalize_low_s(&sig)
        } else {
            Ok(sig)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::OnceLock;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
    }

    /// The one RSA key generated in the unit tests (3072 bits; keygen is the slow part).
    pub(crate) fn rsa3072() -> &'static PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate(Algorithm::RsaPss3072Sha256).unwrap())
    }

    fn rsa4096() -> &'static PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::from_pkcs8_pem(&fixture("rsa-4096.pkcs8.pem")).unwrap())
    }

    /// The DSSE spec vector's P-256 public key (protocol.md, Test Vectors).
    const SPEC_VECTOR_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZ805D3eqNZywjCI19lInBJOp7YMr
CrzAH3CVTAOQ0jgMeCvVTiaRJaRPRDOv8UMs6U4SvKc6pnrIDOoSYI3fdA==
-----END PUBLIC KEY-----
";

    fn round_trip(key: &PrivateKey) {
        let msg = b"clyra evidence";
        let sig = key.sign(msg).unwrap();
        let public = key.public_key();
        public.verify(msg, &sig).unwrap();
        Verifier::verify(public, msg, &sig).unwrap();
        assert_eq!(Signer::key_id(key), public.key_id());
        assert_eq!(Signer::algorithm(key), public.algorithm());

        // Tampered message.
        assert!(matches!(
            public.verify(b"clyra evidencf", &sig),
            Err(SignatureError::Invalid { .. })
        ));
        // Tampered signature: flip a bit in every position class (start, middle, end).
        for i in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert!(
                public.verify(msg, &bad).is_err(),
                "bit flip at {i} accepted"
            );
        }
        // Truncated and extended signatures.
        assert!(public.verify(msg, &sig[..sig.len() - 1]).is_err());
        let mut longer = sig.clone();
        longer.push(0);
        assert!(public.verify(msg, &longer).is_err());
    }

    #[test]
    fn algorithm_names_are_the_registry_names() {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            names,
            [
                "ed25519",
                "ecdsa-sha2-256-nistp256",
                "rsa-sign-pss-2048-sha256",
                "rsa-sign-pss-3072-sha256",
                "rsa-sign-pss-4096-sha256"
            ]
        );
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().parse::<Algorithm>().unwrap(), a);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{a}\""));
            assert_eq!(serde_json::from_str::<Algorithm>(&json).unwrap(), a);
            assert_eq!(a.can_sign(), a != Algorithm::RsaPss2048Sha256);
        }
        assert_eq!(Algorithm::default(), Algorithm::Ed25519);
        assert!(matches!(
            "ECDSA-SHA2-256-NISTP256".parse::<Algorithm>(),
            Err(KeyError::UnknownAlgorithm { .. })
        ));
        assert!(serde_json::from_str::<Algorithm>("\"rsa-sign-pkcs1-2048-sha256\"").is_err());
    }

    #[test]
    fn ed25519_round_trip() {
        round_trip(&PrivateKey::generate(Algorithm::Ed25519).unwrap());
    }

    #[test]
    fn ecdsa_p256_round_trip() {
        round_trip(&PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap());
    }

    #[test]
    fn rsa_3072_round_trip() {
        let key = rsa3072();
        assert_eq!(key.public_key().algorithm(), Algorithm::RsaPss3072Sha256);
        round_trip(key);
    }

    #[test]
    fn rsa_4096_round_trip() {
        let key = rsa4096();
        assert_eq!(key.public_key().algorithm(), Algorithm::RsaPss4096Sha256);
        round_trip(key);
    }

    #[test]
    fn wrong_key_fails() {
        let msg = b"m";
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let a = PrivateKey::generate(alg).unwrap();
            let b = PrivateKey::generate(alg).unwrap();
            let sig = a.sign(msg).unwrap();
            assert!(matches!(
                b.public_key().verify(msg, &sig),
                Err(SignatureError::Invalid { .. })
            ));
        }
        let sig = rsa3072().sign(msg).unwrap();
        assert!(rsa4096().public_key().verify(msg, &sig).is_err());
        // An Ed25519 signature is malformed for ECDSA (not DER) and vice versa (not 64 bytes).
        let ed = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let ec = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        assert!(matches!(
            ec.public_key().verify(msg, &ed.sign(msg).unwrap()),
            Err(SignatureError::Malformed { .. })
        ));
        assert!(ed.public_key().verify(msg, &ec.sign(msg).unwrap()).is_err());
    }

    #[test]
    fn rsa_pss_uses_salt_length_32() {
        // A PSS signature with a different salt length must not verify: sign with salt 20.
        let key = rsa3072();
        let PrivateKeyInner::Rsa(inner) = &key.inner else {
            panic!("not rsa")
        };
        let other: rsa::pss::BlindedSigningKey<Sha256> =
            rsa::pss::BlindedSigningKey::new_with_salt_len(inner.as_ref().clone(), 20);
        let sig = other.sign_with_rng(&mut OsRng, b"m").to_vec();
        assert!(matches!(
            key.public_key().verify(b"m", &sig),
            Err(SignatureError::Invalid { .. })
        ));
        assert!(key
            .public_key()
            .verify(b"m", &key.sign(b"m").unwrap())
            .is_ok());
    }

    #[test]
    fn rsa_2048_is_verify_only() {
        let public = PublicKey::from_pem(&fixture("rsa-2048.pub.pem")).unwrap();
        assert_eq!(public.algorithm(), Algorithm::RsaPss2048Sha256);
        let v: serde_json::Value =
            serde_json::from_str(&fixture("rsa-2048-pss-signature.json")).unwrap();
        let msg = v["message_utf8"].as_str().unwrap().as_bytes();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(v["signature_base64"].as_str().unwrap())
            .unwrap();
        public.verify(msg, &sig).unwrap();
        let mut bad = sig.clone();
        bad[10] ^= 0x80;
        assert!(public.verify(msg, &bad).is_err());
        assert!(matches!(
            PrivateKey::generate(Algorithm::RsaPss2048Sha256),
            Err(KeyError::VerifyOnly {
                algorithm: Algorithm::RsaPss2048Sha256
            })
        ));
        // A 2048-bit private key file is refused too.
        let small = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
        let pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(matches!(
            PrivateKey::from_pkcs8_pem(&pem),
            Err(KeyError::VerifyOnly {
                algorithm: Algorithm::RsaPss2048Sha256
            })
        ));
    }

    #[test]
    fn unsupported_keys_are_rejected() {
        assert!(matches!(
            PublicKey::from_pem(&fixture("rsa-1024.pub.pem")),
            Err(KeyError::UnsupportedRsaSize { bits: 1024 })
        ));
        assert!(matches!(
            PublicKey::from_pem(&fixture("p384.pub.pem")),
            Err(KeyError::UnsupportedCurve { oid }) if oid == "1.3.132.0.34"
        ));
        assert!(matches!(
            PublicKey::from_spki_der(b"\x30\x00"),
            Err(KeyError::Der { .. })
        ));
    }

    #[test]
    fn ecdsa_accepts_high_s_and_low_s() {
        let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let msg = b"high-s";
        let der = key.sign(msg).unwrap();
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        let (r, s) = sig.split_scalars();
        let flipped =
            p256::ecdsa::Signature::from_scalars(p256::FieldBytes::from(*r), -*s).unwrap();
        // Exactly one of the pair is high-S (normalize_s returns Some only for high-S).
        assert_ne!(sig.normalize_s().is_some(), flipped.normalize_s().is_some());
        key.public_key().verify(msg, &der).unwrap();
        key.public_key()
            .verify(msg, flipped.to_der().as_bytes())
            .unwrap();
    }

    #[test]
    fn ecdsa_rejects_raw_and_non_canonical_der() {
        let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let msg = b"der only";
        let der = key.sign(msg).unwrap();
        let raw = p256::ecdsa::Signature::from_der(&der).unwrap().to_bytes();
        assert_eq!(raw.len(), 64);
        assert!(matches!(
            key.public_key().verify(msg, &raw),
            Err(SignatureError::Malformed { .. })
        ));
        // BER long-form length for the outer SEQUENCE: same integers, not DER.
        let mut ber = vec![0x30, 0x81, der[1]];
        ber.extend_from_slice(&der[2..]);
        assert!(matches!(
            key.public_key().verify(msg, &ber),
            Err(SignatureError::Malformed { .. })
        ));
        // Trailing garbage.
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(key.public_key().verify(msg, &trailing).is_err());
    }

    #[test]
    fn ecdsa_signing_is_deterministic() {
        let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        assert_eq!(key.sign(b"x").unwrap(), key.sign(b"x").unwrap());
    }

    /// The group order l of Ed25519, little-endian.
    const ED25519_L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn ed25519_rejects_non_canonical_s() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let msg = b"malleable?";
        let sig = key.sign(msg).unwrap();
        // S' = S + l is congruent to S, so a lax verifier accepts it; strict ones must not.
        let mut bad = sig.clone();
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(bad[32 + i]) + u16::from(ED25519_L[i]) + carry;
            bad[32 + i] = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0);
        assert_ne!(bad, sig);
        assert!(matches!(
            key.public_key().verify(msg, &bad),
            Err(SignatureError::Invalid { .. })
        ));
        key.public_key().verify(msg, &sig).unwrap();
    }

    fn ed25519_spki(point: [u8; 32]) -> Vec<u8> {
        let mut der = hex::decode("302a300506032b6570032100").unwrap();
        der.extend_from_slice(&point);
        der
    }

    #[test]
    fn ed25519_rejects_small_order_and_non_canonical_keys() {
        // The identity point (y = 1) and the order-2 point (y = -1).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        for point in [identity, minus_one] {
            assert!(matches!(
                PublicKey::from_spki_der(&ed25519_spki(point)),
                Err(KeyError::WeakEd25519Key)
            ));
        }
        // y = p + 1: a non-canonical encoding of the identity.
        let mut p_plus_one = [0xffu8; 32];
        p_plus_one[0] = 0xee;
        p_plus_one[31] = 0x7f;
        assert!(PublicKey::from_spki_der(&ed25519_spki(p_plus_one)).is_err());
        // A real key still parses.
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        PublicKey::from_spki_der(key.public_key().spki_der()).unwrap();
    }

    #[test]
    fn compressed_p256_spki_is_not_canonical() {
        let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let PrivateKeyInner::EcdsaP256(sk) = &key.inner else {
            panic!("not p256")
        };
        let point = sk.verifying_key().to_encoded_point(true);
        let mut der = hex::decode("3039301306072a8648ce3d020106082a8648ce3d030107032200").unwrap();
        der.extend_from_slice(point.as_bytes());
        assert!(matches!(
            PublicKey::from_spki_der(&der),
            Err(KeyError::NonCanonicalSpki)
        ));
    }

    #[test]
    fn key_id_of_known_spki() {
        // Independently computed: sha256(SPKI DER) with pyca/cryptography.
        let key = PublicKey::from_pem(SPEC_VECTOR_PUBLIC_KEY).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EcdsaP256Sha256);
        assert_eq!(
            key.key_id().to_string(),
            "f793580060562d6ff075d814ea698c282fcc779b0cde64d79ffc6301df00d14b"
        );
        assert_eq!(key.key_id(), KeyId::of_spki_der(key.spki_der()));
        assert_eq!(key.to_pem(), SPEC_VECTOR_PUBLIC_KEY);
    }

    #[test]
    fn key_id_text_is_strict() {
        let id = PrivateKey::generate(Algorithm::Ed25519).unwrap().key_id();
        assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
        assert!(id.to_string().to_uppercase().parse::<KeyId>().is_err());
        assert!(id.to_string()[1..].parse::<KeyId>().is_err());
        assert!(format!("{id} ").parse::<KeyId>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<KeyId>("\"00\"").is_err());
    }

    #[test]
    fn pem_round_trips() {
        let mut keys: Vec<&PrivateKey> = vec![rsa3072(), rsa4096()];
        let ed = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let ec = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        keys.push(&ed);
        keys.push(&ec);
        for key in keys {
            let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
            assert_eq!(&public, key.public_key());
            let private = PrivateKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
            assert_eq!(private.public_key(), key.public_key());
            assert!(key
                .to_pkcs8_pem()
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----\n"));
        }
    }

    #[test]
    fn openssl_pkcs8_keys_load() {
        for (file, alg) in [
            ("ed25519.pkcs8.pem", Algorithm::Ed25519),
            ("p256.pkcs8.pem", Algorithm::EcdsaP256Sha256),
            ("rsa-4096.pkcs8.pem", Algorithm::RsaPss4096Sha256),
        ] {
            let key = PrivateKey::from_pkcs8_pem(&fixture(file)).unwrap();
            assert_eq!(key.algorithm(), alg, "{file}");
        }
    }

    #[test]
    fn pem_labels_are_checked() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let private_pem = key.to_pkcs8_pem().unwrap();
        assert!(matches!(
            PublicKey::from_pem(&private_pem),
            Err(KeyError::PemLabel { expected: "PUBLIC KEY", found }) if found == "PRIVATE KEY"
        ));
        assert!(matches!(
            PrivateKey::from_pkcs8_pem(&key.public_key().to_pem()),
            Err(KeyError::PemLabel { expected: "PRIVATE KEY", found }) if found == "PUBLIC KEY"
        ));
        let encrypted = private_pem.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
        assert!(matches!(
            PrivateKey::from_pkcs8_pem(&encrypted),
            Err(KeyError::EncryptedPrivateKey)
        ));
        assert!(matches!(
            PublicKey::from_pem("not pem"),
            Err(KeyError::Pem { .. })
        ));
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let PrivateKeyInner::Ed25519(sk) = &key.inner else {
            panic!("not ed25519")
        };
        let secret_hex = hex::encode(sk.to_bytes());
        let debug = format!("{key:?} {key:#?}");
        assert!(debug.contains("PrivateKey"));
        assert!(debug.contains(&key.key_id().to_string()));
        assert!(!debug.contains(&secret_hex));
        assert!(!debug.contains(&format!("{:?}", sk.to_bytes())));
    }

    #[cfg(unix)]
    #[test]
    fn private_key_file_is_0600_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        write_private_key_file(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_private_key_file(&path).unwrap();
        assert_eq!(back.public_key(), key.public_key());

        let other = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let err = write_private_key_file(&path, &other).unwrap_err();
        assert!(matches!(&err, KeyError::FileExists { path: p } if *p == path));
        assert!(err.to_string().contains(&path.display().to_string()));
        // The original key is untouched.
        assert_eq!(
            read_private_key_file(&path).unwrap().public_key(),
            key.public_key()
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_private_key_file(&path).unwrap_err();
        assert!(matches!(
            err,
            KeyError::InsecurePermissions { mode: 0o640, .. }
        ));
        assert!(err.to_string().contains("chmod 600"));

        let pub_path = dir.path().join("signing.pub");
        std::fs::write(&pub_path, key.public_key().to_pem()).unwrap();
        assert_eq!(&read_public_key_file(&pub_path).unwrap(), key.public_key());
        assert!(matches!(
            read_public_key_file(&dir.path().join("missing.pub")),
            Err(KeyError::Io { .. })
        ));
    }

    #[test]
    fn low_s_normalization_keeps_validity_and_is_idempotent() {
        let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let msg = b"low s";
        let mut saw_high = false;
        for i in 0..32u8 {
            let m = [msg.as_slice(), &[i]].concat();
            let sig = key.sign(&m).unwrap();
            saw_high |= !ecdsa_p256_is_low_s(&sig).unwrap();
            let low = LowS(&key).sign(&m).unwrap();
            assert_eq!(ecdsa_p256_is_low_s(&low), Some(true));
            key.public_key().verify(&m, &low).unwrap();
            assert_eq!(ecdsa_p256_normalize_low_s(&low).unwrap(), low);
        }
        // RFC 6979 signing does not normalize, so some of 32 signatures are high-s.
        assert!(saw_high);
        assert_eq!(ecdsa_p256_is_low_s(b"junk"), None);
    }
}
