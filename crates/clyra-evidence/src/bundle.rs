//! Evidence bundles: the DEF and PEF container of spec/common/bundle.md (format versions 0.1 and 0.2).
//!
//! A bundle is one file an auditor verifies offline with nothing but the file and a trusted public
//! key. It holds:
//!
//! - `manifest.json`: what the bundle is, every file's size and digest, external artifacts, the
//!   bundle Merkle root and the journal segment's summary (canonical JSON);
//! - `attestation.dsse.json`: a DSSE envelope over an in-toto Statement whose subjects are the
//!   manifest's digest and the Merkle root, and whose predicate is DEF's or PEF's;
//! - `journal.ndjson`: the hash-chained journal entries the bundle covers;
//! - `artifacts/…`: embedded artifacts.
//!
//! The container is the canonical stored-only ZIP of [`crate::zipstore`] (one encoding per
//! content), or the same files unpacked in a directory.
//!
//! - [`BundleBuilder`] builds and signs a bundle deterministically: identical inputs give
//!   identical bytes.
//! - [`verify_path`] and [`verify_zip_bytes`] check everything in the spec's order and report
//!   every finding with its stable [`Code`](crate::codes::Code); a problem inside a bundle is never
//!   an error and never a panic.
//! - [`inspect_path`] summarizes a bundle without verifying it.

mod build;
mod inspect;
mod model;
pub mod predicate;
mod schema;
mod source;
mod verify;

pub use build::{Bundle, BundleBuilder, BundleError};
pub use inspect::{inspect_path, InspectError, Inspection};
pub use model::{
    bundle_id_from, parse_utc_timestamp, ArtifactRef, ChainMode, CheckpointInfo, FileEntry,
    Governance, JournalInfo, Kind, LeafProof, Manifest, MerkleInfo, Producer, ProofsDocument,
    ARTIFACTS_PREFIX, ATTESTATION_PATH, CHECKPOINT_MEDIA_TYPE, CHECKPOINT_NOTE_PATH,
    FORMAT_VERSION, FORMAT_VERSIONS, FORMAT_VERSION_0_2, JOURNAL_MEDIA_TYPE, JOURNAL_PATH,
    MANIFEST_PATH, MERKLE_ALG, MERKLE_ROOT_SUBJECT, PROOFS_MEDIA_TYPE, PROOFS_PATH,
};
pub use predicate::SlaOp;
pub use verify::{
    verify_path, verify_zip_bytes, Finding, Limits, Report, Summary, Verdict, VerifyError,
    VerifyOptions,
};
