//! Replay certificates: re-run the compiled SQL a DEF bundle recorded, in an isolated scratch
//! schema, compare the result with the snapshot recorded after the run, and sign what was found.
//!
//! 1. [`load`] verifies the bundle with the kernel's verifier ([`clyra_evidence::bundle`]) and
//!    refuses an unverified one; only then does it read the replay input ([`set`]) from the same
//!    bytes that verified.
//! 2. [`run`] checks every selected model's SQL before anything runs (its SHA-256 against the
//!    replay set, [`sql::check`], foreign tables in the catalog), then, in one `REPEATABLE READ`
//!    transaction whose first query is the "before" anchor: creates a scratch schema
//!    `clyra_replay_<16 hex>`, and, when the connecting role may, a throwaway role with only
//!    `USAGE, CREATE` on it and `SELECT` on the relations the SQL reads, switched to with
//!    `SET LOCAL ROLE`; runs each model as `CREATE TABLE|VIEW scratch.<name> AS <query>` in
//!    dependency order, references to replayed models rewritten to their scratch copies; takes
//!    a snapshot of the scratch schema (exact counts, content hashes where the recorded snapshot
//!    has them); compares it with the recorded snapshot using [`crate::diff`]; and **rolls the
//!    transaction back**, so the scratch schema, the role and the grants never become visible to
//!    another session and are gone even if the process is killed (the server rolls back the
//!    transaction of a lost connection).
//! 3. [`Certificate::sign`] signs the result as a DSSE envelope over an in-toto Statement with
//!    predicate type [`PREDICATE_TYPE`]; `clyra verify-envelope` verifies it.
//!
//! [`cleanup`] drops leftover `clyra_replay_*` schemas and roles, should any exist.

use std::collections::BTreeMap;
use std::io::Cursor;

use clyra_evidence::bundle::{self, Report, VerifyOptions};
use clyra_evidence::zipstore::ZipReader;
use clyra_evidence::Digest;

use crate::error::LoadError;
use crate::snapshot::Snapshot;

mod certificate;
mod run;
pub mod set;
pub mod sql;

pub use certificate::{
    BundleRef, Certificate, Isolation, ModelError, ModelResult, ModelStatus, ReplaySetRef, Status,
    TableFacts, CERTIFICATE_FORMAT, PREDICATE_TYPE,
};
pub use run::{cleanup, run, Cleanup, RunOptions, SCRATCH_PREFIX};
pub use set::{ReplayModel, ReplaySet, SetError};

/// Largest compiled SQL file replay reads.
pub const MAX_SQL_BYTES: u64 = 4 << 20;

/// Largest replay set or recorded snapshot replay reads.
pub const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

/// The bundle prefix of artifacts.
const ARTIFACTS: &str = bundle::ARTIFACTS_PREFIX;

/// A verified bundle's replay input: the replay set, the compiled SQL files it names, the
/// recorded snapshot, and what the verifier said about the bundle.
#[derive(Debug, Clone)]
pub struct ReplayInput {
    /// The bundle, as verified.
    pub bundle: BundleRef,
    /// The replay set.
    pub set: ReplaySet,
    /// SHA-256 of the replay set's bytes.
    pub set_sha256: String,
    /// The recorded snapshot.
    pub recorded: Snapshot,
    /// SHA-256 of the recorded snapshot's bytes.
    pub recorded_sha256: String,
    /// The compiled SQL files present in the bundle, by path (relative to `artifacts/`).
    sql: BTreeMap<String, Vec<u8>>,
}

impl ReplayInput {
    /// The bytes of a compiled SQL file named by the set, when the bundle holds it.
    pub fn sql_bytes(&self, path: &str) -> Option<&[u8]> {
        self.sql.get(path).map(Vec::as_slice)
    }
}

/// Why a bundle's replay input could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The bundle did not verify: replay refuses it.
    #[error("the bundle does not verify; replay refuses an unverified bundle: {}", findings.join("; "))]
    Unverified {
        /// The verifier's error findings (`CODE [path] message`).
        findings: Vec<String>,
        /// The full report.
        report: Box<Report>,
    },
    /// The bundle verified but is not a DEF bundle.
    #[error("the bundle is a `{format}` bundle; replay needs a DEF bundle (clyra-def)")]
    NotDef {
        /// Its format.
        format: String,
    },
    /// A file replay needs is not in the bundle.
    #[error("the bundle has no `{path}`{hint}")]
    Missing {
        /// The bundle path.
        path: String,
        /// What that means.
        hint: &'static str,
    },
    /// A file is larger than replay reads.
    #[error("`{path}` is {size} bytes, more than the {max} replay reads")]
    TooLarge {
        /// The bundle path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The replay set is invalid.
    #[error("`{path}`: {reason}")]
    Set {
        /// The bundle path.
        path: String,
        /// Why.
        reason: SetError,
    },
    /// The recorded snapshot is invalid.
    #[error("`{path}`: {reason}")]
    Snapshot {
        /// The bundle path.
        path: String,
        /// Why.
        reason: LoadError,
    },
    /// The container could not be read after it verified (it cannot happen with the same bytes,
    /// but is reported rather than assumed).
    #[error("cannot read the bundle: {0}")]
    Container(String),
}

/// Verifies `zip` (a bundle's bytes) with the kernel's verifier, then reads its replay input from
/// those same bytes. `bundle_name` is how the certificate names the bundle (its path, as given).
pub fn load(
    zip: &[u8],
    bundle_name: &str,
    options: &VerifyOptions<'_>,
) -> Result<ReplayInput, InputError> {
    let (report, mut zr) = match crate::verified::open_def(zip, bundle_name, options) {
        Ok(v) => v,
        Err(crate::verified::OpenError::Unverified { findings, report }) => {
            return Err(InputError::Unverified { findings, report })
        }
        Err(crate::verified::OpenError::NotDef { format }) => {
            return Err(InputError::NotDef { format })
        }
        Err(crate::verified::OpenError::Container(e)) => return Err(InputError::Container(e)),
    };
    let manifest =
        read(&mut zr, bundle::MANIFEST_PATH, MAX_DOCUMENT_BYTES)?.ok_or(InputError::Missing {
            path: bundle::MANIFEST_PATH.into(),
            hint: "",
        })?;
    let set_path = format!("{ARTIFACTS}{}", set::SET_PATH);
    let set_bytes = read(&mut zr, &set_path, MAX_DOCUMENT_BYTES)?.ok_or(InputError::Missing {
        path: set_path.clone(),
        hint: ": it holds no replay input (docs/warehouses/replay.md describes it)",
    })?;
    let set = ReplaySet::from_json(&set_bytes).map_err(|reason| InputError::Set {
        path: set_path.clone(),
        reason,
    })?;
    let snap_path = format!("{ARTIFACTS}{}", set.snapshot_after);
    let snap_bytes = read(&mut zr, &snap_path, MAX_DOCUMENT_BYTES)?.ok_or(InputError::Missing {
        path: snap_path.clone(),
        hint: " (the replay set's `snapshot_after`)",
    })?;
    let recorded = Snapshot::from_json(&snap_bytes).map_err(|reason| InputError::Snapshot {
        path: snap_path.clone(),
        reason,
    })?;
    let mut sql = BTreeMap::new();
    for m in &set.models {
        let path = format!("{ARTIFACTS}{}", m.compiled_sql);
        // A missing or oversized file is the model's error, reported in the certificate.
        if let Ok(Some(bytes)) = read(&mut zr, &path, MAX_SQL_BYTES) {
            sql.insert(m.compiled_sql.clone(), bytes);
        }
    }
    let bundle = BundleRef {
        name: bundle_name.to_string(),
        bundle_id: report.bundle_id.clone().unwrap_or_default(),
        format: report.format.clone().unwrap_or_default(),
        format_version: report.format_version.clone().unwrap_or_default(),
        sha256: Digest::sha256(zip).to_hex(),
        manifest_sha256: Digest::sha256(&manifest).to_hex(),
        merkle_root: report
            .summary
            .merkle_root
            .map(|d| d.to_hex())
            .unwrap_or_default(),
        signers: report.summary.signers.iter().map(|k| k.to_hex()).collect(),
        verified_at: report.checked_at.to_string(),
        warnings: report
            .findings
            .iter()
            .filter(|f| !f.code.is_error())
            .map(|f| f.code.to_string())
            .collect(),
    };
    Ok(ReplayInput {
        bundle,
        set_sha256: Digest::sha256(&set_bytes).to_hex(),
        set,
        recorded_sha256: Digest::sha256(&snap_bytes).to_hex(),
        recorded,
        sql,
    })
}

fn read(
    zr: &mut ZipReader<Cursor<&[u8]>>,
    path: &str,
    max: u64,
) -> Result<Option<Vec<u8>>, InputError> {
    let Some(i) = zr.find(path) else {
        return Ok(None);
    };
    let size = zr.entries().get(i).map_or(0, |e| e.size);
    if size > max {
        return Err(InputError::TooLarge {
            path: path.to_string(),
            size,
            max,
        });
    }
    zr.read_entry(i, max)
        .map(Some)
        .map_err(|e| InputError::Container(e.to_string()))
}

/// The version of Clyra that issues certificates.
pub const CLYRA_VERSION: &str = env!("CARGO_PKG_VERSION");
