//! Stable verification codes.
//!
//! Every verifier finding carries one of these codes. They are part of the format contract: the
//! TypeScript verifier produces the same codes for the same evidence, scripts match on them, and a
//! code's meaning never changes once published. `spec/common/verification-codes.md` documents each.

use crate::dsse::DsseError;
use crate::intoto::InTotoError;

/// A stable verification finding code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Code {
    /// No signature verifies under a trusted key, or a signature is malformed.
    Signature,
    /// The signature's key is not in the trust file.
    KeyNotTrusted,
    /// The signing key is trusted but outside its validity window at verification time.
    KeyExpired,
    /// Fewer distinct trusted keys signed than the threshold requires.
    Threshold,
    /// The envelope's `payloadType` is not the one required.
    PayloadType,
    /// A JSON document (or signed payload) is not in RFC 8785 canonical form.
    NotCanonical,
    /// A JSON document violates the strict profile (duplicate key, lone surrogate, unsafe
    /// integer, non-finite number, nesting) or is not JSON.
    Json,
    /// A document does not match its schema.
    Schema,
    /// The format version is not one this verifier implements: an unknown major version, or any
    /// unknown minor version while the major version is 0 (spec/VERSIONING.md).
    UnknownVersion,
    /// A file's SHA-256 does not match the digest recorded for it.
    DigestMismatch,
    /// A file's size does not match the size recorded for it.
    SizeMismatch,
    /// The Merkle root does not match the recomputed one.
    MerkleRoot,
    /// The hash chain is broken: a link, gap, reordering, duplicate, splice or truncation.
    ChainBroken,
    /// A signed statement's subjects do not match the evidence.
    SubjectMismatch,
    /// An externalized artifact's supplied bytes do not match its reference.
    ArtifactMismatch,
    /// An archive entry has an absolute path, `..`, a backslash or another unsafe name.
    UnsafePath,
    /// An archive entry is a symbolic link or another non-regular file.
    LinkEntry,
    /// An entry, the archive or the entry count exceeds the verifier's limits.
    TooLarge,
    /// A file the format requires is missing.
    MissingFile,
    /// The archive holds a file the manifest does not list.
    UnlistedFile,
    /// The archive cannot be read (not a ZIP, corrupt, encrypted, duplicate names).
    Archive,
    /// An externalized artifact was not supplied, so its bytes were not checked (a warning).
    ArtifactNotChecked,
    /// The checkpoint note or the proofs file is malformed, or they disagree (format 0.2).
    Checkpoint,
    /// The checkpoint note carries no valid signature by a trusted key, or a bad one by a
    /// trusted key (format 0.2).
    CheckpointSignature,
    /// An inclusion proof of a journal line is missing, extra, for the wrong index or does not
    /// verify against the checkpoint (format 0.2).
    InclusionProof,
}

impl Code {
    /// Every code, in documentation order.
    pub const ALL: [Code; 25] = [
        Code::Signature,
        Code::KeyNotTrusted,
        Code::KeyExpired,
        Code::Threshold,
        Code::PayloadType,
        Code::NotCanonical,
        Code::Json,
        Code::Schema,
        Code::UnknownVersion,
        Code::DigestMismatch,
        Code::SizeMismatch,
        Code::MerkleRoot,
        Code::ChainBroken,
        Code::SubjectMismatch,
        Code::ArtifactMismatch,
        Code::UnsafePath,
        Code::LinkEntry,
        Code::TooLarge,
        Code::MissingFile,
        Code::UnlistedFile,
        Code::Archive,
        Code::ArtifactNotChecked,
        Code::Checkpoint,
        Code::CheckpointSignature,
        Code::InclusionProof,
    ];

    /// The code as it appears in reports, e.g. `E_SIGNATURE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Signature => "E_SIGNATURE",
            Code::KeyNotTrusted => "E_KEY_NOT_TRUSTED",
            Code::KeyExpired => "E_KEY_EXPIRED",
            Code::Threshold => "E_THRESHOLD",
            Code::PayloadType => "E_PAYLOAD_TYPE",
            Code::NotCanonical => "E_NOT_CANONICAL",
            Code::Json => "E_JSON",
            Code::Schema => "E_SCHEMA",
            Code::UnknownVersion => "E_UNKNOWN_VERSION",
            Code::DigestMismatch => "E_DIGEST_MISMATCH",
            Code::SizeMismatch => "E_SIZE_MISMATCH",
            Code::MerkleRoot => "E_MERKLE_ROOT",
            Code::ChainBroken => "E_CHAIN_BROKEN",
            Code::SubjectMismatch => "E_SUBJECT_MISMATCH",
            Code::ArtifactMismatch => "E_ARTIFACT_MISMATCH",
            Code::UnsafePath => "E_UNSAFE_PATH",
            Code::LinkEntry => "E_LINK_ENTRY",
            Code::TooLarge => "E_TOO_LARGE",
            Code::MissingFile => "E_MISSING_FILE",
            Code::UnlistedFile => "E_UNLISTED_FILE",
            Code::Archive => "E_ARCHIVE",
            Code::ArtifactNotChecked => "W_ARTIFACT_NOT_CHECKED",
            Code::Checkpoint => "E_CHECKPOINT",
            Code::CheckpointSignature => "E_CHECKPOINT_SIGNATURE",
            Code::InclusionProof => "E_INCLUSION_PROOF",
        }
    }

    /// Whether the finding makes evidence invalid (`E_*`) or is a warning (`W_*`).
    pub const fn is_error(self) -> bool {
        !matches!(self, Code::ArtifactNotChecked)
    }

    /// The code for a DSSE verification failure.
    pub fn of_dsse(e: &DsseError) -> Code {
        match e {
            DsseError::Json { .. } => Code::Json,
            DsseError::KeyNotTrusted { .. } => Code::KeyNotTrusted,
            DsseError::KeyExpired { .. } | DsseError::KeyNotYetValid { .. } => Code::KeyExpired,
            DsseError::ThresholdNotMet { .. } => Code::Threshold,
            DsseError::PayloadTypeMismatch { .. } => Code::PayloadType,
            _ => Code::Signature,
        }
    }

    /// The code for an in-toto statement verification failure.
    pub fn of_intoto(e: &InTotoError) -> Code {
        match e {
            InTotoError::Dsse(d) => Code::of_dsse(d),
            InTotoError::NotCanonical => Code::NotCanonical,
            InTotoError::Json { .. } | InTotoError::Canonicalize { .. } => Code::Json,
            _ => Code::Schema,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {c}");
            let s = c.as_str();
            assert!(s.starts_with(if c.is_error() { "E_" } else { "W_" }), "{s}");
            assert!(
                s.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'),
                "{s}"
            );
        }
    }
}
