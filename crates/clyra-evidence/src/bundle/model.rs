//! The manifest and its parts (spec/common/bundle.md §4), as serde types whose member names are the
//! spec's. Every struct rejects unknown members: in 0.x there is no compatibility between minor
//! versions (spec/VERSIONING.md rule 3), so an unknown member is a schema violation, not an
//! extension.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// The format version the builder writes unless a 0.2 feature (a run chain, a checkpoint) is used.
pub const FORMAT_VERSION: &str = "0.1";
/// The format version that adds run chains and checkpoints (spec/common/bundle.md §6.1, §6.2).
pub const FORMAT_VERSION_0_2: &str = "0.2";
/// Every format version this module verifies.
pub const FORMAT_VERSIONS: [&str; 2] = [FORMAT_VERSION, FORMAT_VERSION_0_2];
/// Path of the signed checkpoint note (0.2).
pub const CHECKPOINT_NOTE_PATH: &str = "checkpoint.note";
/// Path of the inclusion proofs (0.2).
pub const PROOFS_PATH: &str = "proofs.json";
/// Media type the builder records for the checkpoint note.
pub const CHECKPOINT_MEDIA_TYPE: &str = "text/plain;charset=utf-8";
/// Media type the builder records for the proofs.
pub const PROOFS_MEDIA_TYPE: &str = "application/json";
/// The one Merkle algorithm of 0.1.
pub const MERKLE_ALG: &str = "rfc9162-sha256";
/// Path of the manifest.
pub const MANIFEST_PATH: &str = "manifest.json";
/// Path of the attestation.
pub const ATTESTATION_PATH: &str = "attestation.dsse.json";
/// Path of the journal segment.
pub const JOURNAL_PATH: &str = "journal.ndjson";
/// Directory prefix of embedded artifacts.
pub const ARTIFACTS_PREFIX: &str = "artifacts/";
/// Media type the builder records for the journal.
pub const JOURNAL_MEDIA_TYPE: &str = "application/x-ndjson";
/// Name of the statement subject that carries the bundle Merkle root.
pub const MERKLE_ROOT_SUBJECT: &str = "merkle-root";

/// Which evidence format a bundle is: the container is shared, the predicate differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// Data Evidence Format: a data pipeline run (spec/def).
    #[serde(rename = "clyra-def")]
    Def,
    /// Portable Evidence Format: automation acting on production systems (spec/pef).
    #[serde(rename = "clyra-pef")]
    Pef,
}

impl Kind {
    /// The manifest's `format` string.
    pub const fn format(self) -> &'static str {
        match self {
            Kind::Def => "clyra-def",
            Kind::Pef => "clyra-pef",
        }
    }

    /// The statement's `predicateType`.
    pub const fn predicate_type(self) -> &'static str {
        match self {
            Kind::Def => "https://clyra.dev/def/v0",
            Kind::Pef => "https://clyra.dev/pef/v0",
        }
    }

    /// The kind whose `format` string is `format`.
    pub fn from_format(format: &str) -> Option<Kind> {
        [Kind::Def, Kind::Pef]
            .into_iter()
            .find(|k| k.format() == format)
    }

    /// The kind whose `predicateType` is `predicate_type`.
    pub fn from_predicate_type(predicate_type: &str) -> Option<Kind> {
        [Kind::Def, Kind::Pef]
            .into_iter()
            .find(|k| k.predicate_type() == predicate_type)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.format())
    }
}

/// `manifest.json` (§4).
/// A `bundle_id` made from free text: every character outside `[A-Za-z0-9._:-]` becomes `-`, cut
/// to 128 characters, and `bundle` when nothing is left.
pub fn bundle_id_from(text: &str) -> String {
    let id: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._:-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if id.is_empty() {
        "bundle".to_owned()
    } else {
        id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Which predicate the attestation carries.
    pub format: Kind,
    /// `MAJOR.MINOR`; [`FORMAT_VERSION`] for this module.
    pub format_version: String,
    /// The producer's identifier: 1–128 characters of `[A-Za-z0-9._:-]`.
    pub bundle_id: String,
    /// When the bundle was built.
    #[serde(with = "utc")]
    pub created_at: Timestamp,
    /// The software that built it.
    pub producer: Producer,
    /// Who and what the evidence is about.
    pub governance: Governance,
    /// The hash of the policy in force, when one was. Required, may be `null`.
    #[serde(with = "nullable_digest")]
    pub policy_sha256: Option<Digest>,
    /// Every file except `manifest.json` and `attestation.dsse.json`, sorted by path.
    pub files: Vec<FileEntry>,
    /// Artifacts not embedded, sorted by name.
    pub external_artifacts: Vec<ArtifactRef>,
    /// The bundle Merkle root over `files` then `external_artifacts` (§4.1).
    pub merkle: MerkleInfo,
    /// The journal segment (§6).
    pub journal: JournalInfo,
    /// The checkpoint and inclusion proofs (§6.2; 0.2 only). Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointInfo>,
}

/// Where a bundle's checkpoint and inclusion proofs are (§6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointInfo {
    /// [`CHECKPOINT_NOTE_PATH`].
    pub note: String,
    /// [`PROOFS_PATH`].
    pub proofs: String,
}

/// Which links a journal segment is checked over (§6, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainMode {
    /// `seq` and `prev`: contiguous entries of the tenant journal (the default).
    Journal,
    /// `run_seq` and `run_prev`: the entries of one run, whose `seq`s only increase (0.2).
    Run,
}

/// `proofs.json` (§6.2): one RFC 9162 inclusion proof per journal line, in line order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofsDocument {
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// The checkpoint's root.
    pub root: Digest,
    /// One proof per line.
    pub proofs: Vec<LeafProof>,
}

/// The inclusion proof of one journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafProof {
    /// The leaf index: the line's `seq`.
    pub index: u64,
    /// Sibling hashes from the leaf upwards.
    pub hashes: Vec<Digest>,
}

/// The software that built a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// Its name, e.g. `clyra`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// Who and what the evidence is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Governance {
    /// The tenant.
    pub tenant: String,
    /// The environment (`prod`, `staging`, ...).
    pub environment: String,
    /// The run the bundle covers.
    pub run_id: String,
    /// The people and services that acted.
    pub actors: Vec<String>,
}

/// One file of the bundle (§4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its path (§2.1).
    pub path: String,
    /// Its exact size in bytes.
    pub size: u64,
    /// Its IANA media type.
    pub media_type: String,
    /// SHA-256 of its bytes.
    pub sha256: Digest,
}

/// An artifact that is referenced, not embedded (§4, §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    /// A single safe path segment; the verifier looks for `DIR/<name>`.
    pub name: String,
    /// Where the bytes live (informative only).
    pub uri: String,
    /// Their size in bytes.
    pub size: u64,
    /// Their media type.
    pub media_type: String,
    /// SHA-256 of the bytes.
    pub sha256: Digest,
}

/// The bundle Merkle tree (§4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerkleInfo {
    /// [`MERKLE_ALG`].
    pub alg: String,
    /// Number of leaves: files plus external artifacts.
    pub tree_size: u64,
    /// The RFC 9162 root.
    pub root: Digest,
}

/// The journal segment a bundle covers (§6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalInfo {
    /// [`JOURNAL_PATH`].
    pub path: String,
    /// Number of entries, at least 1.
    pub count: u64,
    /// `seq` of the first entry (`run_seq` in a run chain).
    pub first_seq: u64,
    /// `seq` of the last entry (`run_seq` in a run chain).
    pub last_seq: u64,
    /// `prev` of the first entry (`run_prev` in a run chain).
    pub first_prev: Digest,
    /// Digest of the last entry's canonical bytes.
    pub head: Digest,
    /// RFC 9162 root over the entries' canonical bytes.
    pub entries_root: Digest,
    /// Which links are checked (0.2); absent means [`ChainMode::Journal`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainMode>,
    /// The run every entry belongs to; present exactly when `chain` is `run` (0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl JournalInfo {
    /// The chain mode, [`ChainMode::Journal`] when absent.
    pub fn chain_mode(&self) -> ChainMode {
        self.chain.unwrap_or(ChainMode::Journal)
    }
}

/// Parses a spec timestamp: RFC 3339 in UTC with an upper-case `T` and `Z`, fractional seconds of
/// 1 to 9 digits allowed (`2026-11-24T09:00:00Z`, `2026-11-24T09:00:00.120Z`).
pub fn parse_utc_timestamp(text: &str) -> Result<Timestamp, String> {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let shape_ok = (0..4).all(digit)
        && at(4, b'-')
        && (5..7).all(digit)
        && at(7, b'-')
        && (8..10).all(digit)
        && at(10, b'T')
        && (11..13).all(digit)
        && at(13, b':')
        && (14..16).all(digit)
        && at(16, b':')
        && (17..19).all(digit)
        && match b.get(19..) {
            Some([b'Z']) => true,
            Some([b'.', rest @ .., b'Z']) => {
                (1..=9).contains(&rest.len()) && rest.iter().all(u8::is_ascii_digit)
            }
            _ => false,
        };
    if !shape_ok {
        return Err(format!(
            "`{}` is not an RFC 3339 UTC timestamp like `2026-11-24T09:00:00Z`",
            text.escape_debug()
        ));
    }
    text.parse::<Timestamp>()
        .map_err(|e| format!("`{text}` is not a valid timestamp: {e}"))
}

/// Serde for spec timestamps ([`parse_utc_timestamp`]); written in jiff's RFC 3339 `Z` form.
pub(crate) mod utc {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_utc_timestamp(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for an optional spec timestamp that is omitted when absent.
pub(crate) mod utc_opt {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(t),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_utc_timestamp(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// Serde for a member that must be present and is a digest or `null`. (A plain `Option` would
/// accept the member's absence too; `deserialize_with` makes serde require it.)
pub(crate) mod nullable_digest {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::digest::Digest;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Digest>, s: S) -> Result<S::Ok, S::Error> {
        d.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Digest>, D::Error> {
        Option::<Digest>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_are_strict_utc() {
        for ok in [
            "2026-11-24T09:00:00Z",
            "2026-11-24T09:00:00.1Z",
            "2026-11-24T09:00:00.123456789Z",
        ] {
            assert!(parse_utc_timestamp(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2026-11-24T09:00:00+00:00",
            "2026-11-24t09:00:00z",
            "2026-11-24 09:00:00Z",
            "2026-11-24T09:00:00.Z",
            "2026-11-24T09:00:00.1234567890Z",
            "2026-13-24T09:00:00Z",
            "2026-11-24T09:00Z",
            "",
        ] {
            assert!(parse_utc_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bundle_ids_from_free_text_fit_the_schema() {
        assert_eq!(
            bundle_id_from("clyra-def-acme-dbt 2026/11"),
            "clyra-def-acme-dbt-2026-11"
        );
        assert_eq!(bundle_id_from(""), "bundle");
        assert_eq!(bundle_id_from(&"é".repeat(300)).len(), 128);
    }

    #[test]
    fn kinds_map_both_ways() {
        for k in [Kind::Def, Kind::Pef] {
            assert_eq!(Kind::from_format(k.format()), Some(k));
            assert_eq!(Kind::from_predicate_type(k.predicate_type()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.format()));
        }
        assert_eq!(Kind::from_format("clyra-xyz"), None);
    }

    #[test]
    fn policy_sha256_is_required_but_nullable() {
        let zero = Digest::ZERO.to_hex();
        let mut m = json!({
            "format": "clyra-def", "format_version": "0.1", "bundle_id": "b",
            "created_at": "2026-11-24T09:00:00Z",
            "producer": {"name": "clyra", "version": "0.1.0"},
            "governance": {"tenant": "t", "environment": "prod", "run_id": "r", "actors": []},
            "policy_sha256": null, "files": [], "external_artifacts": [],
            "merkle": {"alg": MERKLE_ALG, "tree_size": 0, "root": zero},
            "journal": {"path": JOURNAL_PATH, "count": 1, "first_seq": 0, "last_seq": 0,
                        "first_prev": zero, "head": zero, "entries_root": zero}
        });
        let parsed: Manifest = serde_json::from_value(m.clone()).unwrap();
        assert_eq!(parsed.policy_sha256, None);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), m);
        m.as_object_mut().unwrap().remove("policy_sha256");
        assert!(serde_json::from_value::<Manifest>(m.clone()).is_err());
        m["policy_sha256"] = json!(zero);
        m["extra"] = json!(1);
        assert!(serde_json::from_value::<Manifest>(m).is_err());
    }
}
