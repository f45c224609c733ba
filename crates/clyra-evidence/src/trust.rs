//! The trust file (`trust.json`): the public keys a verifier accepts, each with a validity
//! window.
//!
//! Its JSON Schema (Draft 2020-12) is `spec/common/trust.schema.json`:
//!
//! ```json
//! {
//!   "version": 1,
//!   "keys": [
//!     {
//!       "keyid": "<64 lowercase hex: SHA-256 of the SPKI DER>",
//!       "algorithm": "ecdsa-sha2-256-nistp256",
//!       "public_key": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n",
//!       "not_before": "2026-01-01T00:00:00Z",
//!       "not_after": "2027-01-01T00:00:00Z",
//!       "name": "ci-signer",
//!       "comment": "rotated yearly"
//!     }
//!   ]
//! }
//! ```
//!
//! A key is valid at instant `t` when `not_before <= t < not_after` (`not_after` absent: no end).
//! Rotation is done by adding the new key with a `not_before` inside the old key's window:
//! during the overlap both verify, and after the old key's `not_after` only the new one does.
//!
//! Loading validates everything and reports every problem at once, each with the JSON pointer
//! of the offending value: the key id must equal the SHA-256 of the PEM's SPKI, the algorithm
//! must match the key, `not_before < not_after`, and key ids must be unique.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::keys::{Algorithm, KeyError, KeyId, PublicKey};

/// The trust file format version this module reads and writes.
pub const TRUST_FILE_VERSION: u32 = 1;

/// The largest trust file [`TrustStore::read_file`] will read.
const MAX_TRUST_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The wire form of `trust.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    version: u32,
    keys: Vec<TrustFileKey>,
}

/// The wire form of one key entry. Text fields stay strings here so that every semantic
/// problem can be reported with its JSON pointer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFileKey {
    keyid: String,
    algorithm: String,
    public_key: String,
    not_before: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

/// One problem in a trust file, at a JSON pointer.
#[derive(Debug)]
pub struct TrustIssue {
    /// JSON pointer (RFC 6901) of the offending value, e.g. `/keys/2/keyid`.
    pub pointer: String,
    /// What is wrong.
    pub problem: TrustProblem,
}

impl fmt::Display for TrustIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.pointer, self.problem)
    }
}

/// What is wrong with one value in a trust file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustProblem {
    /// `version` is not [`TRUST_FILE_VERSION`].
    #[error("unsupported version {found}, expected {TRUST_FILE_VERSION}")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// `keyid` is not 64 lowercase hex characters.
    #[error("{0}")]
    InvalidKeyId(KeyError),
    /// `algorithm` is not a supported algorithm name.
    #[error("{0}")]
    UnknownAlgorithm(KeyError),
    /// `public_key` is not a supported SPKI PEM.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(KeyError),
    /// `keyid` does not match the SHA-256 of the public key's SPKI DER.
    #[error("keyid `{declared}` does not match the public key, whose keyid is `{computed}`")]
    KeyIdMismatch {
        /// The key id in the file.
        declared: KeyId,
        /// The key id of the public key.
        computed: KeyId,
    },
    /// `algorithm` does not match the public key.
    #[error("algorithm `{declared}` does not match the public key, which is `{actual}`")]
    AlgorithmMismatch {
        /// The algorithm in the file.
        declared: Algorithm,
        /// The algorithm of the public key.
        actual: Algorithm,
    },
    /// A timestamp is not RFC 3339.
    #[error("invalid timestamp `{value}`: {detail}")]
    InvalidTimestamp {
        /// The text found.
        value: String,
        /// The parser's explanation.
        detail: String,
    },
    /// `not_after` is not after `not_before`.
    #[error("not_after `{not_after}` is not after not_before `{not_before}`")]
    EmptyWindow {
        /// Start of the window.
        not_before: Timestamp,
        /// End of the window.
        not_after: Timestamp,
    },
    /// The key id appears twice.
    #[error("duplicate keyid `{keyid}`, first listed at `{first}`")]
    DuplicateKeyId {
        /// The key id.
        keyid: KeyId,
        /// JSON pointer of the first entry with this key id.
        first: String,
    },
}

fn join_issues(issues: &[TrustIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Errors from loading, editing or consulting a trust store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The trust file is not JSON of the expected shape (wrong types, unknown fields).
    #[error("trust file is not valid: {detail} at line {line}, column {column}")]
    Json {
        /// The parser's explanation.
        detail: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The trust file parsed but has problems; all of them are listed.
    #[error("trust file has {} problem(s): {}", .issues.len(), join_issues(.issues))]
    Invalid {
        /// Every problem found.
        issues: Vec<TrustIssue>,
    },
    /// The trust file could not be read.
    #[error("trust file `{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trust file is implausibly large.
    #[error("trust file `{}` is larger than {max_bytes} bytes", path.display())]
    FileTooLarge {
        /// The path.
        path: PathBuf,
        /// The limit.
        max_bytes: u64,
    },
    /// The key is not in the trust store.
    #[error("key `{keyid}` is not trusted")]
    KeyNotTrusted {
        /// The key id looked up.
        keyid: KeyId,
    },
    /// The key is trusted, but its window ended at or before the instant asked about.
    #[error("key `{keyid}` expired at {not_after} (checked at {at})")]
    KeyExpired {
        /// The key id.
        keyid: KeyId,
        /// End of its window.
        not_after: Timestamp,
        /// The instant asked about.
        at: Timestamp,
    },
    /// The key is trusted, but its window starts after the instant asked about.
    #[error("key `{keyid}` is not valid before {not_before} (checked at {at})")]
    KeyNotYetValid {
        /// The key id.
        keyid: KeyId,
        /// Start of its window.
        not_before: Timestamp,
        /// The instant asked about.
        at: Timestamp,
    },
    /// [`TrustStore::add`] was given a key that is already present.
    #[error("key `{keyid}` is already in the trust store")]
    DuplicateKey {
        /// The key id.
        keyid: KeyId,
    },
    /// [`TrustStore::add`] was given `not_after <= not_before`.
    #[error("not_after `{not_after}` is not after not_before `{not_before}`")]
    EmptyWindow {
        /// Start of the window.
        not_before: Timestamp,
        /// End of the window.
        not_after: Timestamp,
    },
    /// Serializing the trust store failed.
    #[error("serializing the trust store failed: {detail}")]
    Serialize {
        /// The serializer's explanation.
        detail: String,
    },
}

/// A trusted public key and its validity window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    public_key: PublicKey,
    not_before: Timestamp,
    not_after: Option<Timestamp>,
    name: Option<String>,
    comment: Option<String>,
}

impl TrustedKey {
    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.public_key.key_id()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.public_key.algorithm()
    }

    /// Start of the validity window (inclusive).
    pub fn not_before(&self) -> Timestamp {
        self.not_before
    }

    /// End of the validity window (exclusive); `None` means open-ended.
    pub fn not_after(&self) -> Option<Timestamp> {
        self.not_after
    }

    /// The optional label.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The optional comment.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// Whether `not_before <= at < not_after`.
    pub fn is_valid_at(&self, at: Timestamp) -> bool {
        self.check_valid_at(at).is_ok()
    }

    /// Like [`TrustedKey::is_valid_at`], with [`TrustError::KeyNotYetValid`] or
    /// [`TrustError::KeyExpired`] saying which side of the window `at` falls on.
    pub fn check_valid_at(&self, at: Timestamp) -> Result<(), TrustError> {
        if at < self.not_before {
            return Err(TrustError::KeyNotYetValid {
                keyid: self.key_id(),
                not_before: self.not_before,
                at,
            });
        }
        match self.not_after {
            Some(not_after) if at >= not_after => Err(TrustError::KeyExpired {
                keyid: self.key_id(),
                not_after,
                at,
            }),
            _ => Ok(()),
        }
    }
}

/// How to name a key when looking it up: by key id or by public key.
#[derive(Debug, Clone, Copy)]
pub enum KeyRef<'a> {
    /// By key id.
    Id(&'a KeyId),
    /// By public key (equivalent to its key id).
    Key(&'a PublicKey),
}

impl<'a> From<&'a KeyId> for KeyRef<'a> {
    fn from(id: &'a KeyId) -> Self {
        KeyRef::Id(id)
    }
}

impl<'a> From<&'a PublicKey> for KeyRef<'a> {
    fn from(key: &'a PublicKey) -> Self {
        KeyRef::Key(key)
    }
}

/// A validated set of trusted keys, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStore {
    keys: Vec<TrustedKey>,
}

fn parse_timestamp(
    value: &str,
    pointer: String,
    issues: &mut Vec<TrustIssue>,
) -> Option<Timestamp> {
    match value.parse::<Timestamp>() {
        Ok(t) => Some(t),
        Err(e) => {
            issues.push(TrustIssue {
                pointer,
                problem: TrustProblem::InvalidTimestamp {
                    value: value.to_owned(),
                    detail: e.to_string(),
                },
            });
            None
        }
    }
}

impl TrustStore {
    /// An empty trust store.
    pub fn new() -> Self {
        TrustStore::default()
    }

    /// Parses and validates a trust file, reporting every problem at once.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustError> {
        let file: TrustFile = serde_json::from_slice(bytes).map_err(|e| TrustError::Json {
            detail: e.to_string(),
            line: e.line(),
            column: e.column(),
        })?;
        let mut issues = Vec::new();
        if file.version != TRUST_FILE_VERSION {
            issues.push(TrustIssue {
                pointer: "/version".to_owned(),
                problem: TrustProblem::UnsupportedVersion {
                    found: file.version,
                },
            });
        }
        let mut keys = Vec::with_capacity(file.keys.len());
        let mut seen: BTreeMap<KeyId, String> = BTreeMap::new();
        for (i, entry) in file.keys.into_iter().enumerate() {
            let at = |field: &str| format!("/keys/{i}/{field}");
            let declared_id = match entry.keyid.parse::<KeyId>() {
                Ok(id) => Some(id),
                Err(e) => {
                    issues.push(TrustIssue {
                        pointer: at("keyid"),
                        problem: TrustProblem::InvalidKeyId(e),
                    });
                    None
                }
            };
            let declared_alg = match entry.algorithm.parse::<Algorithm>() {
                Ok(a) => Some(a),
                Err(e) => {
                    issues.push(TrustIssue {
                        pointer: at("algorithm"),
                        problem: TrustProblem::UnknownAlgorithm(e),
                    });
                    None
                }
            };
            let public_key = match PublicKey::from_pem(&entry.public_key) {
                Ok(k) => Some(k),
                Err(e) => {
                    issues.push(TrustIssue {
                        pointer: at("public_key"),
                        problem: TrustProblem::InvalidPublicKey(e),
                    });
                    None
                }
            };
            if let (Some(declared), Some(key)) = (declared_id, &public_key) {
                if declared != key.key_id() {
                    issues.push(TrustIssue {
                        pointer: at("keyid"),
                        problem: TrustProblem::KeyIdMismatch {
                            declared,
                            computed: key.key_id(),
                        },
                    });
                }
            }
            if let (Some(declared), Some(key)) = (declared_alg, &public_key) {
                if declared != key.algorithm() {
                    issues.push(TrustIssue {
                        pointer: at("algorithm"),
                        problem: TrustProblem::AlgorithmMismatch {
                            declared,
                            actual: key.algorithm(),
                        },
                    });
                }
            }
            let not_before = parse_timestamp(&entry.not_before, at("not_before"), &mut issues);
            let not_after = match &entry.not_after {
                Some(v) => parse_timestamp(v, at("not_after"), &mut issues).map(Some),
                None => Some(None),
            };
            if let (Some(nb), Some(Some(na))) = (not_before, not_after) {
                if na <= nb {
                    issues.push(TrustIssue {
                        pointer: at("not_after"),
                        problem: TrustProblem::EmptyWindow {
                            not_before: nb,
                            not_after: na,
                        },
                    });
                }
            }
            // Duplicates are judged by the key's real id, falling back to the declared one.
            if let Some(id) = public_key.as_ref().map(PublicKey::key_id).or(declared_id) {
                if let Some(first) = seen.get(&id) {
                    issues.push(TrustIssue {
                        pointer: at("keyid"),
                        problem: TrustProblem::DuplicateKeyId {
                            keyid: id,
                            first: first.clone(),
                        },
                    });
                } else {
                    seen.insert(id, format!("/keys/{i}"));
                }
            }
            if let (Some(public_key), Some(not_before), Some(not_after)) =
                (public_key, not_before, not_after)
            {
                keys.push(TrustedKey {
                    public_key,
                    not_before,
                    not_after,
                    name: entry.name,
                    comment: entry.comment,
                });
            }
        }
        if issues.is_empty() {
            Ok(TrustStore { keys })
        } else {
            Err(TrustError::Invalid { issues })
        }
    }

    /// Reads and validates a trust file.
    pub fn read_file(path: &Path) -> Result<Self, TrustError> {
        use std::io::Read as _;
        let io = |source| TrustError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(MAX_TRUST_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_TRUST_FILE_BYTES {
            return Err(TrustError::FileTooLarge {
                path: path.to_owned(),
                max_bytes: MAX_TRUST_FILE_BYTES,
            });
        }
        TrustStore::from_json(&bytes)
    }

    /// Adds a key (for `clyra keys trust add`). Fails if the key is already present or the
    /// window is empty.
    pub fn add(
        &mut self,
        public_key: PublicKey,
        not_before: Timestamp,
        not_after: Option<Timestamp>,
        name: Option<String>,
    ) -> Result<&TrustedKey, TrustError> {
        let keyid = public_key.key_id();
        if self.get(&keyid).is_some() {
            return Err(TrustError::DuplicateKey { keyid });
        }
        if let Some(na) = not_after {
            if na <= not_before {
                return Err(TrustError::EmptyWindow {
                    not_before,
                    not_after: na,
                });
            }
        }
        self.keys.push(TrustedKey {
            public_key,
            not_before,
            not_after,
            name,
            comment: None,
        });
        // Just pushed, so `last` is the new key; the error arm is unreachable.
        self.keys.last().ok_or(TrustError::KeyNotTrusted { keyid })
    }

    /// The trust file text: pretty-printed JSON with a trailing newline, keys in store order.
    pub fn to_json_pretty(&self) -> Result<String, TrustError> {
        let file = TrustFile {
            version: TRUST_FILE_VERSION,
            keys: self
                .keys
                .iter()
                .map(|k| TrustFileKey {
                    keyid: k.key_id().to_hex(),
                    algorithm: k.algorithm().as_str().to_owned(),
                    public_key: k.public_key.to_pem(),
                    not_before: k.not_before.to_string(),
                    not_after: k.not_after.map(|t| t.to_string()),
                    name: k.name.clone(),
                    comment: k.comment.clone(),
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&file).map_err(|e| TrustError::Serialize {
            detail: e.to_string(),
        })?;
        text.push('\n');
        Ok(text)
    }

    /// The key with this id, whatever its window.
    pub fn get(&self, keyid: &KeyId) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key_id() == *keyid)
    }

    /// The key, if it is trusted and valid at `at`. Distinguishes a key that is not trusted at
    /// all ([`TrustError::KeyNotTrusted`]) from one outside its window
    /// ([`TrustError::KeyNotYetValid`], [`TrustError::KeyExpired`]).
    pub fn lookup_valid<'a>(
        &self,
        key: impl Into<KeyRef<'a>>,
        at: Timestamp,
    ) -> Result<&TrustedKey, TrustError> {
        let keyid = match key.into() {
            KeyRef::Id(id) => *id,
            KeyRef::Key(k) => k.key_id(),
        };
        let trusted = self
            .get(&keyid)
            .ok_or(TrustError::KeyNotTrusted { keyid })?;
        trusted.check_valid_at(at)?;
        Ok(trusted)
    }

    /// All keys, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.iter()
    }

    /// The keys valid at `at`, in file order. A DSSE key id is only a hint, so a verifier tries
    /// every one of these.
    pub fn valid_at(&self, at: Timestamp) -> impl Iterator<Item = &TrustedKey> {
        self.keys.iter().filter(move |k| k.is_valid_at(at))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{PrivateKey, Signer as _};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn key(alg: Algorithm) -> PublicKey {
        PrivateKey::generate(alg).unwrap().public_key().clone()
    }

    fn entry(k: &PublicKey, not_before: &str, not_after: Option<&str>) -> serde_json::Value {
        let mut v = serde_json::json!({
            "keyid": k.key_id().to_string(),
            "algorithm": k.algorithm().as_str(),
            "public_key": k.to_pem(),
            "not_before": not_before,
        });
        if let Some(na) = not_after {
            v["not_after"] = na.into();
        }
        v
    }

    fn file(entries: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"version": 1, "keys": entries})).unwrap()
    }

    fn issues(err: TrustError) -> Vec<TrustIssue> {
        match err {
            TrustError::Invalid { issues } => issues,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn add_and_json_round_trip() {
        let mut store = TrustStore::new();
        let a = key(Algorithm::Ed25519);
        let b = key(Algorithm::EcdsaP256Sha256);
        store
            .add(
                a.clone(),
                ts("2026-01-01T00:00:00Z"),
                None,
                Some("ci".into()),
            )
            .unwrap();
        store
            .add(
                b.clone(),
                ts("2026-01-01T00:00:00Z"),
                Some(ts("2027-01-01T00:00:00Z")),
                None,
            )
            .unwrap();
        let text = store.to_json_pretty().unwrap();
        assert!(text.ends_with("}\n"));
        let back = TrustStore::from_json(text.as_bytes()).unwrap();
        assert_eq!(back, store);
        assert_eq!(back.len(), 2);
        let first = back.keys().next().unwrap();
        assert_eq!(first.name(), Some("ci"));
        assert_eq!(first.not_after(), None);
        assert!(
            !text.contains("\"comment\""),
            "absent optionals are omitted"
        );

        assert!(matches!(
            store.add(a, ts("2026-01-01T00:00:00Z"), None, None),
            Err(TrustError::DuplicateKey { .. })
        ));
        assert!(matches!(
            store.add(
                key(Algorithm::Ed25519),
                ts("2026-01-01T00:00:00Z"),
                Some(ts("2026-01-01T00:00:00Z")),
                None
            ),
            Err(TrustError::EmptyWindow { .. })
        ));
    }

    #[test]
    fn window_before_inside_after() {
        let k = key(Algorithm::Ed25519);
        let id = k.key_id();
        let store = TrustStore::from_json(&file(vec![entry(
            &k,
            "2026-01-01T00:00:00Z",
            Some("2026-07-01T00:00:00Z"),
        )]))
        .unwrap();
        assert!(matches!(
            store.lookup_valid(&id, ts("2025-12-31T23:59:59Z")),
            Err(TrustError::KeyNotYetValid { .. })
        ));
        // not_before is inclusive, not_after exclusive.
        assert!(store.lookup_valid(&id, ts("2026-01-01T00:00:00Z")).is_ok());
        assert!(store
            .lookup_valid(&k, ts("2026-03-01T12:00:00+02:00"))
            .is_ok());
        assert!(matches!(
            store.lookup_valid(&id, ts("2026-07-01T00:00:00Z")),
            Err(TrustError::KeyExpired { .. })
        ));
        let stranger = key(Algorithm::Ed25519);
        assert!(matches!(
            store.lookup_valid(&stranger, ts("2026-03-01T00:00:00Z")),
            Err(TrustError::KeyNotTrusted { keyid }) if keyid == stranger.key_id()
        ));
    }

    #[test]
    fn rotation_overlap() {
        let old = key(Algorithm::EcdsaP256Sha256);
        let new = key(Algorithm::Ed25519);
        let store = TrustStore::from_json(&file(vec![
            entry(&old, "2026-01-01T00:00:00Z", Some("2026-07-01T00:00:00Z")),
            entry(&new, "2026-06-01T00:00:00Z", None),
        ]))
        .unwrap();
        let ids =
            |at: &str| -> Vec<KeyId> { store.valid_at(ts(at)).map(TrustedKey::key_id).collect() };
        assert_eq!(ids("2026-05-01T00:00:00Z"), vec![old.key_id()]);
        assert_eq!(
            ids("2026-06-15T00:00:00Z"),
            vec![old.key_id(), new.key_id()]
        );
        assert_eq!(ids("2026-08-01T00:00:00Z"), vec![new.key_id()]);
        assert!(matches!(
            store.lookup_valid(&old, ts("2026-08-01T00:00:00Z")),
            Err(TrustError::KeyExpired { .. })
        ));
        assert!(store.lookup_valid(&new, ts("2030-01-01T00:00:00Z")).is_ok());
    }

    #[test]
    fn every_problem_is_reported_with_its_pointer() {
        let a = key(Algorithm::Ed25519);
        let b = key(Algorithm::EcdsaP256Sha256);
        let c = key(Algorithm::Ed25519);
        let d = key(Algorithm::Ed25519);
        let e = key(Algorithm::Ed25519);
        let mut mismatched = entry(&b, "2026-01-01T00:00:00Z", None);
        mismatched["keyid"] = a.key_id().to_string().into();
        let mut wrong_alg = entry(&c, "2026-01-01T00:00:00Z", None);
        wrong_alg["algorithm"] = "ecdsa-sha2-256-nistp256".into();
        let bytes = file(vec![
            entry(&a, "2026-01-01T00:00:00Z", None),
            mismatched,
            wrong_alg,
            entry(&a, "2026-01-01T00:00:00Z", None),
            entry(&d, "2026-02-01T00:00:00Z", Some("2026-01-01T00:00:00Z")),
            entry(&e, "yesterday", None),
        ]);
        let found = issues(TrustStore::from_json(&bytes).unwrap_err());
        let pointers: Vec<&str> = found.iter().map(|i| i.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/keys/1/keyid",
                "/keys/2/algorithm",
                "/keys/3/keyid",
                "/keys/4/not_after",
                "/keys/5/not_before",
            ],
            "{found:?}"
        );
        assert!(matches!(
            found[0].problem,
            TrustProblem::KeyIdMismatch { .. }
        ));
        assert!(matches!(
            found[1].problem,
            TrustProblem::AlgorithmMismatch {
                declared: Algorithm::EcdsaP256Sha256,
                actual: Algorithm::Ed25519
            }
        ));
        assert!(matches!(
            &found[2].problem,
            TrustProblem::DuplicateKeyId { first, .. } if first == "/keys/0"
        ));
        assert!(matches!(found[3].problem, TrustProblem::EmptyWindow { .. }));
        assert!(matches!(
            found[4].problem,
            TrustProblem::InvalidTimestamp { .. }
        ));
        let message = TrustError::Invalid { issues: found }.to_string();
        assert!(message.contains("`/keys/1/keyid`"), "{message}");
    }

    #[test]
    fn malformed_values_are_reported() {
        let a = key(Algorithm::Ed25519);
        let mut e = entry(&a, "2026-01-01T00:00:00Z", None);
        e["keyid"] = "ABC".into();
        e["algorithm"] = "rsa-sign-pkcs1-2048-sha256".into();
        let found = issues(
            TrustStore::from_json(
                &serde_json::to_vec(&serde_json::json!({"version": 2, "keys": [e]})).unwrap(),
            )
            .unwrap_err(),
        );
        let pointers: Vec<&str> = found.iter().map(|i| i.pointer.as_str()).collect();
        assert_eq!(pointers, ["/version", "/keys/0/keyid", "/keys/0/algorithm"]);

        let mut bad_pem = entry(&a, "2026-01-01T00:00:00Z", None);
        bad_pem["public_key"] =
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into();
        let found = issues(TrustStore::from_json(&file(vec![bad_pem])).unwrap_err());
        assert_eq!(found[0].pointer, "/keys/0/public_key");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let a = key(Algorithm::Ed25519);
        let mut e = entry(&a, "2026-01-01T00:00:00Z", None);
        e["trusted"] = true.into();
        assert!(matches!(
            TrustStore::from_json(&file(vec![e])),
            Err(TrustError::Json { .. })
        ));
        assert!(matches!(
            TrustStore::from_json(br#"{"version":1,"keys":[],"extra":1}"#),
            Err(TrustError::Json { .. })
        ));
        assert!(TrustStore::from_json(br#"{"version":1,"keys":[]}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn schema_matches_the_serde_structs() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../spec/common/trust.schema.json")).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let def = &schema["$defs"]["trustedKey"];
        let names: Vec<&str> = def["properties"]["algorithm"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let ours: Vec<&str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names, ours);

        let mut props: Vec<&str> = def["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        props.sort_unstable();
        let mut store = TrustStore::new();
        let k = key(Algorithm::Ed25519);
        store
            .add(
                k,
                ts("2026-01-01T00:00:00Z"),
                Some(ts("2027-01-01T00:00:00Z")),
                Some("n".into()),
            )
            .unwrap();
        store.keys[0].comment = Some("c".into());
        let written: serde_json::Value =
            serde_json::from_str(&store.to_json_pretty().unwrap()).unwrap();
        let issues = crate::schema::validate(crate::schema::SchemaId::Trust, &written);
        assert!(
            issues.is_empty(),
            "written file fails its schema: {issues:?}"
        );
        let mut fields: Vec<&str> = written["keys"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, props);
        let mut top: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        top.sort_unstable();
        assert_eq!(top, ["keys", "version"]);
    }
}
