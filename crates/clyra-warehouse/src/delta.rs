//! Delta Lake anchors, read from the table's own `_delta_log` with Clyra's parser (plain serde; no
//! Delta library).
//!
//! A [`DeltaAnchor`] pins evidence to one version of one Delta table: the version, the SHA-256 of
//! the exact bytes of that version's commit file (`_delta_log/NNNNNNNNNNNNNNNNNNNN.json`), the
//! commit's `commitInfo` (timestamp, operation, parameters, engine, read version, blind append)
//! and its operation metrics normalized into one vocabulary ([`OperationMetrics`]) whichever engine
//! wrote them: Databricks and Delta Spark write camelCase (`numOutputRows`,
//! `numTargetRowsUpdated`), delta-rs (the `deltalake` Python package) snake_case
//! (`num_added_rows`, `num_target_rows_updated`).
//!
//! The row count at the version is the sum of `numRecords` in the `add` statistics of the files
//! live at that version (minus deletion-vector cardinalities), found by replaying `add` and
//! `remove` actions over the JSON commits `0..=version`. Only the log is read, never a data file.
//!
//! Limits, on purpose:
//! - Parquet checkpoints are not read. When the JSON commits below a checkpoint have been cleaned
//!   up (log retention), the latest version is still found (from the commit files, the checkpoint
//!   file names and `_last_checkpoint`), but the row count is `null` with the reason in
//!   [`DeltaAnchor::unavailable`], and asking for a version whose JSON commit is gone is an error
//!   ([`DeltaError::CommitGone`]).
//! - Local tables only (a directory, or a `file://` URL). Tables in cloud storage are anchored
//!   through Databricks ([`crate::databricks`]) or after mounting them.
//! - Managed ("coordinated") commits under `_delta_log/_commits/` are not read.
//!
//! ```no_run
//! let anchor = clyra_warehouse::delta::anchor("/data/lake/orders", None)?;
//! println!("{}@{} sha256 {:?}", anchor.table, anchor.version, anchor.commit_sha256);
//! println!("rows added: {:?}", anchor.metrics.rows_added);
//! # Ok::<(), clyra_warehouse::delta::DeltaError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clyra_evidence::{jcs, Digest};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::anchor::DefAnchor;

/// The format tag of a serialized [`DeltaAnchor`].
pub const FORMAT: &str = "clyra.warehouse.delta_anchor/v1";

/// The largest commit file read, in bytes. Commits of very large rewrites hold one `add` per
/// file; 256 MiB is far above what engines write in one commit.
pub const MAX_COMMIT_BYTES: u64 = 256 * 1024 * 1024;

/// What went wrong reading a Delta table's log.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// The table location is not one Clyra reads.
    #[error("invalid Delta table location `{location}`: {message}")]
    Location {
        /// The location as given.
        location: String,
        /// Why it was refused.
        message: String,
    },
    /// A file or directory could not be read.
    #[error("cannot read `{path}`: {message}")]
    Io {
        /// The path.
        path: String,
        /// The system's message.
        message: String,
    },
    /// The directory is not a Delta table.
    #[error("`{path}` is not a Delta table: {message}")]
    NotATable {
        /// The table directory.
        path: String,
        /// What is missing.
        message: String,
    },
    /// The version asked for is beyond the table's latest version.
    #[error("version {version} of `{path}` does not exist; the latest version is {latest}")]
    NoSuchVersion {
        /// The table directory.
        path: String,
        /// The version asked for.
        version: u64,
        /// The latest version.
        latest: u64,
    },
    /// The version's JSON commit was cleaned up; only a Parquet checkpoint holds it now.
    #[error("the JSON commit of version {version} of `{path}` is gone ({detail}); Clyra reads JSON commits only, not Parquet checkpoints")]
    CommitGone {
        /// The table directory.
        path: String,
        /// The version asked for.
        version: u64,
        /// What is there instead.
        detail: String,
    },
    /// A log file is not what the Delta protocol describes.
    #[error("invalid Delta log file `{file}`{}: {message}", location(*line, pointer))]
    Parse {
        /// The file.
        file: String,
        /// The line (1-based), for commit files.
        line: Option<usize>,
        /// The JSON pointer inside that line's JSON value, when known.
        pointer: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The anchor could not be written as canonical JSON.
    #[error("cannot write canonical JSON: {0}")]
    Canonical(String),
}

fn location(line: Option<usize>, pointer: &Option<String>) -> String {
    let mut s = String::new();
    if let Some(l) = line {
        s.push_str(&format!(" line {l}"));
    }
    if let Some(p) = pointer {
        s.push_str(&format!(" at JSON pointer `{p}`"));
    }
    s
}

/// A commit file that does not parse: where, and why. See [`parse_commit`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", pointer.as_deref().map(|p| format!(" at JSON pointer `{p}`")).unwrap_or_default())]
pub struct CommitError {
    /// The line (1-based).
    pub line: usize,
    /// The JSON pointer inside the line, when known.
    pub pointer: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// How an anchor was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorSource {
    /// Read from the table's `_delta_log` by Clyra.
    DeltaLog,
    /// From `DESCRIBE HISTORY` through the Databricks SQL Statement Execution API.
    DescribeHistory,
}

/// Operation metrics in Clyra's vocabulary. Every field is optional: engines and operations
/// report different subsets. Metrics without a mapping are kept verbatim in
/// [`OperationMetrics::other`]. The mapping is documented in `docs/warehouses/databricks.md`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationMetrics {
    /// Rows written as new rows (`numOutputRows` outside MERGE, `num_added_rows`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_added: Option<u64>,
    /// Rows deleted (`numDeletedRows`, `num_deleted_rows`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_deleted: Option<u64>,
    /// Rows updated (`numUpdatedRows`, `num_updated_rows`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_updated: Option<u64>,
    /// Unchanged rows rewritten into new files (`numCopiedRows`, `num_copied_rows`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_copied: Option<u64>,
    /// MERGE: all rows written (`numOutputRows`, `num_output_rows`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_rows: Option<u64>,
    /// MERGE: rows in the source (`numSourceRows`, `num_source_rows`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_rows: Option<u64>,
    /// MERGE: target rows inserted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rows_inserted: Option<u64>,
    /// MERGE: target rows updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rows_updated: Option<u64>,
    /// MERGE: target rows deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rows_deleted: Option<u64>,
    /// MERGE: unchanged target rows rewritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rows_copied: Option<u64>,
    /// Data files added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_added: Option<u64>,
    /// Data files removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_removed: Option<u64>,
    /// Bytes of the data files added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_added: Option<u64>,
    /// Bytes of the data files removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_removed: Option<u64>,
    /// Deletion vectors added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_vectors_added: Option<u64>,
    /// Deletion vectors removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_vectors_removed: Option<u64>,
    /// Change data feed files added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_files_added: Option<u64>,
    /// Wall time of the operation, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_ms: Option<u64>,
    /// Time spent scanning, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_ms: Option<u64>,
    /// Time spent rewriting files, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite_ms: Option<u64>,
    /// Metrics without a mapping (or whose value is not a non-negative integer, or that repeat a
    /// mapped metric with a different value), verbatim under their engine's name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, Value>,
}

/// Where a metric name maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    RowsAdded,
    RowsDeleted,
    RowsUpdated,
    RowsCopied,
    /// `numOutputRows` / `num_output_rows`: rows added, except in MERGE where it counts every
    /// row written (inserted, updated and copied).
    OutputRows,
    SourceRows,
    TargetRowsInserted,
    TargetRowsUpdated,
    TargetRowsDeleted,
    TargetRowsCopied,
    FilesAdded,
    FilesRemoved,
    BytesAdded,
    BytesRemoved,
    DeletionVectorsAdded,
    DeletionVectorsRemoved,
    ChangeFilesAdded,
    ExecutionMs,
    ScanMs,
    RewriteMs,
}

/// The mapping: engine metric name to Clyra's name. camelCase names are Databricks' and Delta
/// Spark's (docs.databricks.com, "Operation metrics keys"), plus `numFilesAdded` and
/// `numFilesRemoved` that delta-rs writes for OPTIMIZE; snake_case names are delta-rs'.
pub const METRIC_NAMES: &[(&str, &str)] = &[
    ("numOutputRows", "rows_added (output_rows in MERGE)"),
    ("numDeletedRows", "rows_deleted"),
    ("numUpdatedRows", "rows_updated"),
    ("numCopiedRows", "rows_copied"),
    ("numSourceRows", "source_rows"),
    ("numTargetRowsInserted", "target_rows_inserted"),
    ("numTargetRowsUpdated", "target_rows_updated"),
    ("numTargetRowsDeleted", "target_rows_deleted"),
    ("numTargetRowsCopied", "target_rows_copied"),
    ("numFiles", "files_added"),
    ("numAddedFiles", "files_added"),
    ("numTargetFilesAdded", "files_added"),
    ("numFilesAdded", "files_added"),
    ("numRemovedFiles", "files_removed"),
    ("numTargetFilesRemoved", "files_removed"),
    ("numFilesRemoved", "files_removed"),
    ("numOutputBytes", "bytes_added"),
    ("numAddedBytes", "bytes_added"),
    ("numTargetBytesAdded", "bytes_added"),
    ("numRemovedBytes", "bytes_removed"),
    ("numTargetBytesRemoved", "bytes_removed"),
    ("numDeletionVectorsAdded", "deletion_vectors_added"),
    ("numDeletionVectorsRemoved", "deletion_vectors_removed"),
    ("numAddedChangeFiles", "change_files_added"),
    ("executionTimeMs", "execution_ms"),
    ("scanTimeMs", "scan_ms"),
    ("rewriteTimeMs", "rewrite_ms"),
    ("num_added_rows", "rows_added"),
    ("num_output_rows", "rows_added (output_rows in MERGE)"),
    ("num_deleted_rows", "rows_deleted"),
    ("num_updated_rows", "rows_updated"),
    ("num_copied_rows", "rows_copied"),
    ("num_source_rows", "source_rows"),
    ("num_target_rows_inserted", "target_rows_inserted"),
    ("num_target_rows_updated", "target_rows_updated"),
    ("num_target_rows_deleted", "target_rows_deleted"),
    ("num_target_rows_copied", "target_rows_copied"),
    ("num_added_files", "files_added"),
    ("num_target_files_added", "files_added"),
    ("num_removed_files", "files_removed"),
    ("num_target_files_removed", "files_removed"),
    ("execution_time_ms", "execution_ms"),
    ("scan_time_ms", "scan_ms"),
    ("rewrite_time_ms", "rewrite_ms"),
];

fn slot_of(name: &str) -> Option<Slot> {
    use Slot::*;
    Some(match name {
        "numOutputRows" | "num_output_rows" => OutputRows,
        "num_added_rows" => RowsAdded,
        "numDeletedRows" | "num_deleted_rows" => RowsDeleted,
        "numUpdatedRows" | "num_updated_rows" => RowsUpdated,
        "numCopiedRows" | "num_copied_rows" => RowsCopied,
        "numSourceRows" | "num_source_rows" => SourceRows,
        "numTargetRowsInserted" | "num_target_rows_inserted" => TargetRowsInserted,
        "numTargetRowsUpdated" | "num_target_rows_updated" => TargetRowsUpdated,
        "numTargetRowsDeleted" | "num_target_rows_deleted" => TargetRowsDeleted,
        "numTargetRowsCopied" | "num_target_rows_copied" => TargetRowsCopied,
        "numFiles"
        | "numAddedFiles"
        | "numTargetFilesAdded"
        | "numFilesAdded"
        | "num_added_files"
        | "num_target_files_added" => FilesAdded,
        "numRemovedFiles"
        | "numTargetFilesRemoved"
        | "numFilesRemoved"
        | "num_removed_files"
        | "num_target_files_removed" => FilesRemoved,
        "numOutputBytes" | "numAddedBytes" | "numTargetBytesAdded" => BytesAdded,
        "numRemovedBytes" | "numTargetBytesRemoved" => BytesRemoved,
        "numDeletionVectorsAdded" => DeletionVectorsAdded,
        "numDeletionVectorsRemoved" => DeletionVectorsRemoved,
        "numAddedChangeFiles" => ChangeFilesAdded,
        "executionTimeMs" | "execution_time_ms" => ExecutionMs,
        "scanTimeMs" | "scan_time_ms" => ScanMs,
        "rewriteTimeMs" | "rewrite_time_ms" => RewriteMs,
        _ => return None,
    })
}

/// A metric value as an unsigned integer: a JSON number, or a string of ASCII digits (Databricks
/// `DESCRIBE HISTORY` returns `map<string,string>`).
fn metric_u64(v: &Value) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s)
            if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()
        }
        _ => None,
    };
    // Beyond 2^53 - 1 a count is not an exact JSON number: it stays, as text, under `other`.
    n.filter(|n| *n <= MAX_SAFE_INTEGER)
}

/// The largest integer JSON (and RFC 8785) carries exactly: 2^53 - 1.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A value made fit for canonical JSON: numbers that are integers beyond ±(2^53 - 1) become
/// their decimal text, everything else is kept as is.
pub(crate) fn jcs_safe(v: Value) -> Value {
    match v {
        Value::Number(n) => {
            let too_big = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.unsigned_abs() > MAX_SAFE_INTEGER,
                (None, Some(_), _) => true,
                (None, None, Some(f)) => f.fract() == 0.0 && f.abs() > MAX_SAFE_INTEGER as f64,
                _ => false,
            };
            if too_big {
                Value::String(n.to_string())
            } else {
                Value::Number(n)
            }
        }
        Value::Array(a) => Value::Array(a.into_iter().map(jcs_safe).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, jcs_safe(v))).collect()),
        other => other,
    }
}

impl OperationMetrics {
    /// Normalizes an engine's `operationMetrics` for `operation` (MERGE changes what
    /// `numOutputRows` means). Names are visited in sorted order, so the result is deterministic
    /// when two engine names map to one Clyra name with different values (the later one is kept
    /// under [`OperationMetrics::other`]).
    pub fn normalize<'a>(
        operation: Option<&str>,
        metrics: impl IntoIterator<Item = (&'a String, &'a Value)>,
    ) -> OperationMetrics {
        let merge = operation.is_some_and(|op| op.eq_ignore_ascii_case("MERGE"));
        let sorted: BTreeMap<&String, &Value> = metrics.into_iter().collect();
        let mut m = OperationMetrics::default();
        for (name, value) in sorted {
            let (Some(t), Some(n)) = (slot_of(name), metric_u64(value)) else {
                m.other.insert(name.clone(), jcs_safe(value.clone()));
                continue;
            };
            let t = match t {
                Slot::OutputRows if merge => Slot::OutputRows,
                Slot::OutputRows => Slot::RowsAdded,
                t => t,
            };
            let slot = m.slot(t);
            match slot {
                None => *slot = Some(n),
                Some(existing) if *existing == n => {}
                Some(_) => {
                    m.other.insert(name.clone(), jcs_safe(value.clone()));
                }
            }
        }
        m
    }

    fn slot(&mut self, t: Slot) -> &mut Option<u64> {
        match t {
            Slot::RowsAdded => &mut self.rows_added,
            Slot::RowsDeleted => &mut self.rows_deleted,
            Slot::RowsUpdated => &mut self.rows_updated,
            Slot::RowsCopied => &mut self.rows_copied,
            Slot::OutputRows => &mut self.output_rows,
            Slot::SourceRows => &mut self.source_rows,
            Slot::TargetRowsInserted => &mut self.target_rows_inserted,
            Slot::TargetRowsUpdated => &mut self.target_rows_updated,
            Slot::TargetRowsDeleted => &mut self.target_rows_deleted,
            Slot::TargetRowsCopied => &mut self.target_rows_copied,
            Slot::FilesAdded => &mut self.files_added,
            Slot::FilesRemoved => &mut self.files_removed,
            Slot::BytesAdded => &mut self.bytes_added,
            Slot::BytesRemoved => &mut self.bytes_removed,
            Slot::DeletionVectorsAdded => &mut self.deletion_vectors_added,
            Slot::DeletionVectorsRemoved => &mut self.deletion_vectors_removed,
            Slot::ChangeFilesAdded => &mut self.change_files_added,
            Slot::ExecutionMs => &mut self.execution_ms,
            Slot::ScanMs => &mut self.scan_ms,
            Slot::RewriteMs => &mut self.rewrite_ms,
        }
    }
}

/// A Delta anchor: one version of one table. Serialized as canonical JSON with
/// [`DeltaAnchor::to_canonical_json`]. A member that is `null` because the source cannot give it
/// is named in [`DeltaAnchor::unavailable`] with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaAnchor {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always `databricks` (the DEF platform of Delta anchors).
    pub platform: String,
    /// How the anchor was obtained.
    pub source: AnchorSource,
    /// The table as the DEF anchor names it: the Unity Catalog name when known, else the path.
    pub table: String,
    /// The table's directory (absolute, symbolic links resolved), when read from the log.
    pub table_path: Option<String>,
    /// The Unity Catalog name (`catalog.schema.table`), when known.
    pub uc_name: Option<String>,
    /// The table id (`metaData.id`), when the commits read carry it.
    pub table_id: Option<String>,
    /// The version.
    pub version: u64,
    /// The latest version when the anchor was read.
    pub latest_version: Option<u64>,
    /// SHA-256 of the exact bytes of the version's commit file, lowercase hex.
    pub commit_sha256: Option<String>,
    /// The commit file's size in bytes.
    pub commit_bytes: Option<u64>,
    /// The commit time (`commitInfo.inCommitTimestamp` when the table has in-commit timestamps,
    /// else `commitInfo.timestamp`), UTC, RFC 3339 with milliseconds.
    pub timestamp: Option<String>,
    /// The same, in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// `commitInfo.operation`: `WRITE`, `DELETE`, `UPDATE`, `MERGE`, `CREATE TABLE`, ...
    pub operation: Option<String>,
    /// `commitInfo.operationParameters`, verbatim.
    pub operation_parameters: Option<Value>,
    /// `commitInfo.engineInfo`.
    pub engine_info: Option<String>,
    /// `commitInfo.clientVersion` (delta-rs writes it).
    pub client_version: Option<String>,
    /// `commitInfo.readVersion`: the version the writer read.
    pub read_version: Option<u64>,
    /// `commitInfo.isolationLevel`.
    pub isolation_level: Option<String>,
    /// `commitInfo.isBlindAppend`.
    pub is_blind_append: Option<bool>,
    /// `commitInfo.userName` (Databricks).
    pub user_name: Option<String>,
    /// Operation metrics, normalized.
    pub metrics: OperationMetrics,
    /// Rows at this version: the sum of `numRecords` over the live files, minus deletion-vector
    /// cardinalities. From the log's statistics, never from the data.
    pub row_count: Option<u64>,
    /// Data files live at this version.
    pub live_files: Option<u64>,
    /// Bytes of the data files live at this version (`add.size`).
    pub live_bytes: Option<u64>,
    /// SHA-256 of the canonical JSON of the table schema (`metaData.schemaString`) in force at
    /// this version.
    pub schema_sha256: Option<String>,
    /// Members that are `null` for a reason other than "the commit did not say": member name to
    /// the reason.
    pub unavailable: BTreeMap<String, String>,
    /// When Clyra read the anchor, UTC, RFC 3339 with microseconds.
    pub read_at: String,
}

impl DeltaAnchor {
    /// The anchor's canonical JSON (RFC 8785) bytes.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, DeltaError> {
        jcs::to_canonical_vec(self).map_err(|e| DeltaError::Canonical(e.to_string()))
    }

    /// Reads an anchor file written by [`DeltaAnchor::to_canonical_json`].
    pub fn from_json(bytes: &[u8]) -> Result<DeltaAnchor, String> {
        let a: DeltaAnchor = crate::http::decode(bytes)?;
        if a.format != FORMAT {
            return Err(format!(
                "unsupported format `{}` at JSON pointer `/format`; this build reads `{FORMAT}`",
                a.format
            ));
        }
        Ok(a)
    }

    /// The value of the DEF `delta_version` anchor: `table@version`.
    pub fn def_value(&self) -> String {
        format!("{}@{}", self.table, self.version)
    }

    /// The anchor as DEF predicate anchors (`spec/def/README.md`): `databricks/delta_version`
    /// with `table@version`, and `databricks/delta_commit_sha256` when the commit digest is
    /// known. `at` is when the anchor was read; `seq` is left for the journal.
    pub fn def_anchors(&self) -> Vec<DefAnchor> {
        let at = self.read_at.parse::<jiff::Timestamp>().ok();
        let mut v = vec![DefAnchor {
            platform: "databricks".to_string(),
            kind: "delta_version".to_string(),
            value: self.def_value(),
            seq: None,
            at,
        }];
        if let Some(sha) = &self.commit_sha256 {
            v.push(DefAnchor {
                platform: "databricks".to_string(),
                kind: "delta_commit_sha256".to_string(),
                value: format!("{}:{sha}", self.def_value()),
                seq: None,
                at,
            });
        }
        v
    }
}

/// Now, UTC, RFC 3339 with microseconds.
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub(crate) fn millis_rfc3339(ms: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

// ---------------------------------------------------------------------------------------------
// The commit file parser.

/// A deletion vector descriptor (the members that identify it and its cardinality).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletionVector {
    /// `u`, `i` or `p`.
    pub storage_type: String,
    /// The vector's location or inline bytes.
    pub path_or_inline_dv: String,
    /// Offset in the file, for stored vectors.
    #[serde(default)]
    pub offset: Option<i64>,
    /// Rows the vector marks as deleted.
    pub cardinality: u64,
}

impl DeletionVector {
    /// The protocol's unique id: storage type, path or inline data, and `@offset` when present.
    pub fn unique_id(&self) -> String {
        match self.offset {
            Some(o) => format!("{}{}@{o}", self.storage_type, self.path_or_inline_dv),
            None => format!("{}{}", self.storage_type, self.path_or_inline_dv),
        }
    }
}

/// An `add` action (the members anchors use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddFile {
    /// The file's path, as written (URI-encoded, relative to the table).
    pub path: String,
    /// Its size in bytes.
    pub size: Option<u64>,
    /// `numRecords` from the statistics; `None` when the action has no usable statistics.
    pub num_records: Option<u64>,
    /// The file's deletion vector.
    pub deletion_vector: Option<DeletionVector>,
}

/// A `remove` action (the members anchors use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveFile {
    /// The file's path.
    pub path: String,
    /// The removed deletion vector, if the file had one.
    pub deletion_vector: Option<DeletionVector>,
}

/// The `commitInfo` members anchors use (the action is free-form; other members are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// `timestamp`, ms since the epoch.
    pub timestamp: Option<i64>,
    /// `inCommitTimestamp`, ms since the epoch.
    pub in_commit_timestamp: Option<i64>,
    /// `operation`.
    pub operation: Option<String>,
    /// `operationParameters`.
    pub operation_parameters: Option<Value>,
    /// `operationMetrics`.
    pub operation_metrics: Option<serde_json::Map<String, Value>>,
    /// `engineInfo`.
    pub engine_info: Option<String>,
    /// `clientVersion`.
    pub client_version: Option<String>,
    /// `readVersion`.
    pub read_version: Option<u64>,
    /// `isolationLevel`.
    pub isolation_level: Option<String>,
    /// `isBlindAppend`.
    pub is_blind_append: Option<bool>,
    /// `userName`.
    pub user_name: Option<String>,
}

/// A `metaData` action (the members anchors use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The table id.
    pub id: String,
    /// The schema, a JSON string.
    pub schema_string: Option<String>,
}

/// One parsed commit file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// The `commitInfo` action (optional in the protocol).
    pub commit_info: Option<CommitInfo>,
    /// `add` actions, in order.
    pub adds: Vec<AddFile>,
    /// `remove` actions, in order.
    pub removes: Vec<RemoveFile>,
    /// The `metaData` action, when the commit changes the metadata.
    pub metadata: Option<Metadata>,
    /// `protocol` action: (`minReaderVersion`, `minWriterVersion`).
    pub protocol: Option<(i64, i64)>,
    /// How many actions of each other kind (`txn`, `cdc`, `domainMetadata`, unknown ones).
    pub other_actions: BTreeMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAdd {
    path: String,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    stats: Option<String>,
    #[serde(default)]
    deletion_vector: Option<DeletionVector>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRemove {
    path: String,
    #[serde(default)]
    deletion_vector: Option<DeletionVector>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetadata {
    id: String,
    #[serde(default)]
    schema_string: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProtocol {
    min_reader_version: i64,
    min_writer_version: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCommitInfo {
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    in_commit_timestamp: Option<i64>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    operation_parameters: Option<Value>,
    #[serde(default)]
    operation_metrics: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    engine_info: Option<String>,
    #[serde(default)]
    client_version: Option<String>,
    #[serde(default)]
    read_version: Option<u64>,
    #[serde(default)]
    isolation_level: Option<String>,
    #[serde(default)]
    is_blind_append: Option<bool>,
    #[serde(default)]
    user_name: Option<String>,
}

#[derive(Deserialize)]
struct RawLine {
    #[serde(default, rename = "commitInfo")]
    commit_info: Option<RawCommitInfo>,
    #[serde(default)]
    add: Option<RawAdd>,
    #[serde(default)]
    remove: Option<RawRemove>,
    #[serde(default, rename = "metaData")]
    metadata: Option<RawMetadata>,
    #[serde(default)]
    protocol: Option<RawProtocol>,
    #[serde(flatten)]
    rest: BTreeMap<String, IgnoredAny>,
}

/// `numRecords` from an `add.stats` JSON string: `None` when absent or not a count.
fn num_records(stats: &str) -> Option<u64> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Stats {
        #[serde(default)]
        num_records: Option<u64>,
    }
    serde_json::from_str::<Stats>(stats)
        .ok()
        .and_then(|s| s.num_records)
}

/// Parses a commit file: newline-delimited JSON, one action per line. Unknown actions and unknown
/// members are tolerated; a line that is not a JSON object, or a known action with a member of
/// the wrong type, is an error naming the line and the JSON pointer.
pub fn parse_commit(bytes: &[u8]) -> Result<Commit, CommitError> {
    let mut c = Commit::default();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let err = |pointer: Option<String>, message: String| CommitError {
            line,
            pointer,
            message,
        };
        // Straight from the bytes (no intermediate `Value`): replaying a long log parses every
        // commit once.
        let mut de = serde_json::Deserializer::from_slice(raw);
        let parsed: RawLine = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let pointer = crate::snapshot::path_to_pointer(e.path());
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                err(None, format!("not JSON: {inner}"))
            } else if pointer.is_empty() {
                err(
                    Some(pointer),
                    format!("an action line must be a JSON object ({inner})"),
                )
            } else {
                err(Some(pointer), inner.to_string())
            }
        })?;
        de.end().map_err(|e| err(None, format!("not JSON: {e}")))?;
        if let Some(ci) = parsed.commit_info {
            if c.commit_info.is_some() {
                return Err(err(
                    Some("/commitInfo".into()),
                    "a second commitInfo action in one commit".into(),
                ));
            }
            c.commit_info = Some(CommitInfo {
                timestamp: ci.timestamp,
                in_commit_timestamp: ci.in_commit_timestamp,
                operation: ci.operation,
                operation_parameters: ci.operation_parameters,
                operation_metrics: ci.operation_metrics,
                engine_info: ci.engine_info,
                client_version: ci.client_version,
                read_version: ci.read_version,
                isolation_level: ci.isolation_level,
                is_blind_append: ci.is_blind_append,
                user_name: ci.user_name,
            });
        }
        if let Some(a) = parsed.add {
            c.adds.push(AddFile {
                size: a.size.and_then(|s| u64::try_from(s).ok()),
                num_records: a.stats.as_deref().and_then(num_records),
                path: a.path,
                deletion_vector: a.deletion_vector,
            });
        }
        if let Some(r) = parsed.remove {
            c.removes.push(RemoveFile {
                path: r.path,
                deletion_vector: r.deletion_vector,
            });
        }
        if let Some(m) = parsed.metadata {
            c.metadata = Some(Metadata {
                id: m.id,
                schema_string: m.schema_string,
            });
        }
        if let Some(p) = parsed.protocol {
            c.protocol = Some((p.min_reader_version, p.min_writer_version));
        }
        for k in parsed.rest.into_keys() {
            *c.other_actions.entry(k).or_insert(0) += 1;
        }
    }
    Ok(c)
}

/// SHA-256 of the canonical JSON of a schema string; `None` if it is not JSON.
fn schema_digest(schema_string: &str) -> Option<String> {
    let v: Value = serde_json::from_str(schema_string).ok()?;
    jcs::canonicalize_value(&v)
        .ok()
        .map(|b| Digest::sha256(&b).to_hex())
}

// ---------------------------------------------------------------------------------------------
// The log.

/// A table's `_delta_log` directory, listed once.
#[derive(Debug, Clone)]
pub struct DeltaLog {
    root: PathBuf,
    log_dir: PathBuf,
    commits: BTreeSet<u64>,
    checkpoints: BTreeSet<u64>,
    last_checkpoint: Option<u64>,
}

/// A version number from a log file name: 20 ASCII digits.
fn version_prefix(name: &str) -> Option<(u64, &str)> {
    let digits = name.get(..20)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, name.get(20..)?))
}

/// Decodes `%XX` escapes of a `file://` URL path.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The directory of a table given as a path or a `file://` URL.
pub fn table_dir(location: &str) -> Result<PathBuf, DeltaError> {
    let bad = |message: &str| DeltaError::Location {
        location: location.to_string(),
        message: message.to_string(),
    };
    if let Some(rest) = location.strip_prefix("file://") {
        let path = if rest.starts_with('/') {
            rest
        } else if let Some(p) = rest.strip_prefix("localhost") {
            p
        } else {
            return Err(bad(
                "a file:// URL must name a local absolute path (file:///path or file://localhost/path)",
            ));
        };
        if !path.starts_with('/') {
            return Err(bad("a file:// URL must name an absolute path"));
        }
        let decoded = percent_decode(path).ok_or_else(|| bad("invalid %-escape in the URL"))?;
        return Ok(PathBuf::from(decoded));
    }
    if let Some((scheme, _)) = location.split_once("://") {
        return Err(bad(&format!(
            "`{scheme}://` tables are not read directly; Clyra reads local tables (a directory \
             or file:// URL). For tables in cloud storage use `clyra warehouse databricks anchor` \
             or a mounted path"
        )));
    }
    if location.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(PathBuf::from(location))
}

fn io_err(path: &Path, e: &std::io::Error) -> DeltaError {
    DeltaError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl DeltaLog {
    /// Lists the log of the table at `location` (a directory or a `file://` URL).
    pub fn open(location: &str) -> Result<DeltaLog, DeltaError> {
        let dir = table_dir(location)?;
        let root = std::fs::canonicalize(&dir).map_err(|e| io_err(&dir, &e))?;
        let log_dir = root.join("_delta_log");
        let not_table = |message: String| DeltaError::NotATable {
            path: root.display().to_string(),
            message,
        };
        let entries = match std::fs::read_dir(&log_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(not_table("it has no `_delta_log` directory".into()))
            }
            Err(e) => return Err(io_err(&log_dir, &e)),
        };
        let mut commits = BTreeSet::new();
        let mut checkpoints = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&log_dir, &e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((v, rest)) = version_prefix(name) else {
                continue;
            };
            if rest == ".json" {
                commits.insert(v);
            } else if rest.starts_with(".checkpoint.") && rest.ends_with(".parquet")
                || rest.starts_with(".checkpoint.") && rest.ends_with(".json")
            {
                checkpoints.insert(v);
            }
        }
        let lc_path = log_dir.join("_last_checkpoint");
        let last_checkpoint = match std::fs::read(&lc_path) {
            Ok(bytes) => Some(parse_last_checkpoint(&bytes, &lc_path)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&lc_path, &e)),
        };
        if commits.is_empty() && checkpoints.is_empty() && last_checkpoint.is_none() {
            return Err(not_table(
                "`_delta_log` holds no commit (NNNNNNNNNNNNNNNNNNNN.json) and no checkpoint".into(),
            ));
        }
        Ok(DeltaLog {
            root,
            log_dir,
            commits,
            checkpoints,
            last_checkpoint,
        })
    }

    /// The table directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The latest version: the highest of the JSON commits, the checkpoint files and
    /// `_last_checkpoint`.
    pub fn latest_version(&self) -> u64 {
        [
            self.commits.last().copied(),
            self.checkpoints.last().copied(),
            self.last_checkpoint,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
    }

    /// The versions that have a JSON commit file.
    pub fn commit_versions(&self) -> &BTreeSet<u64> {
        &self.commits
    }

    fn commit_path(&self, version: u64) -> PathBuf {
        self.log_dir.join(format!("{version:020}.json"))
    }

    /// The exact bytes of a version's commit file.
    pub fn commit_bytes(&self, version: u64) -> Result<Vec<u8>, DeltaError> {
        let latest = self.latest_version();
        if version > latest {
            return Err(DeltaError::NoSuchVersion {
                path: self.root.display().to_string(),
                version,
                latest,
            });
        }
        let path = self.commit_path(version);
        let gone = |detail: String| DeltaError::CommitGone {
            path: self.root.display().to_string(),
            version,
            detail,
        };
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let detail = match self.commits.first() {
                    Some(first) if *first > version => format!(
                        "the earliest JSON commit left is version {first}; older ones were \
                         cleaned up after a checkpoint"
                    ),
                    _ if self.checkpoints.contains(&version)
                        || self.last_checkpoint == Some(version) =>
                    {
                        "only a checkpoint of this version is left".to_string()
                    }
                    _ => format!("`{}` does not exist", path.display()),
                };
                return Err(gone(detail));
            }
            Err(e) => return Err(io_err(&path, &e)),
        };
        if meta.len() > MAX_COMMIT_BYTES {
            return Err(DeltaError::Parse {
                file: path.display().to_string(),
                line: None,
                pointer: None,
                message: format!(
                    "{} bytes; Clyra reads commit files up to {MAX_COMMIT_BYTES} bytes",
                    meta.len()
                ),
            });
        }
        std::fs::read(&path).map_err(|e| io_err(&path, &e))
    }

    /// Reads and parses a version's commit file; returns its bytes too.
    pub fn read_commit(&self, version: u64) -> Result<(Vec<u8>, Commit), DeltaError> {
        let bytes = self.commit_bytes(version)?;
        let commit = parse_commit(&bytes).map_err(|e| DeltaError::Parse {
            file: self.commit_path(version).display().to_string(),
            line: Some(e.line),
            pointer: e.pointer,
            message: e.message,
        })?;
        Ok((bytes, commit))
    }

    /// The anchor of `version` (the latest when `None`).
    pub fn anchor(&self, version: Option<u64>) -> Result<DeltaAnchor, DeltaError> {
        let read_at = now_rfc3339();
        let latest = self.latest_version();
        let version = version.unwrap_or(latest);
        let (bytes, commit) = self.read_commit(version)?;
        let mut unavailable = BTreeMap::new();
        let ci = commit.commit_info.clone().unwrap_or_default();
        if commit.commit_info.is_none() {
            unavailable.insert(
                "commit_info".to_string(),
                "the commit has no commitInfo action (it is optional in the Delta protocol)"
                    .to_string(),
            );
        }
        let raw_ts = ci.in_commit_timestamp.or(ci.timestamp);
        let timestamp = raw_ts.and_then(millis_rfc3339);
        let timestamp_ms = raw_ts.filter(|_| timestamp.is_some());
        if let (Some(ms), None) = (raw_ts, &timestamp) {
            unavailable.insert(
                "timestamp".to_string(),
                format!(
                    "the commit's timestamp {ms} is not a time between the years -9999 and 9999"
                ),
            );
        }
        let metrics = ci
            .operation_metrics
            .as_ref()
            .map(|m| OperationMetrics::normalize(ci.operation.as_deref(), m))
            .unwrap_or_default();
        let root = self
            .root
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| DeltaError::Location {
                location: self.root.display().to_string(),
                message: "the table path is not valid UTF-8".into(),
            })?;
        let state = self.replay(version, &commit, &mut unavailable)?;
        Ok(DeltaAnchor {
            format: FORMAT.to_string(),
            platform: "databricks".to_string(),
            source: AnchorSource::DeltaLog,
            table: root.clone(),
            table_path: Some(root),
            uc_name: None,
            table_id: state.table_id,
            version,
            latest_version: Some(latest),
            commit_sha256: Some(Digest::sha256(&bytes).to_hex()),
            commit_bytes: Some(bytes.len() as u64),
            timestamp,
            timestamp_ms,
            operation: ci.operation,
            operation_parameters: ci.operation_parameters.map(jcs_safe),
            engine_info: ci.engine_info,
            client_version: ci.client_version,
            read_version: ci.read_version,
            isolation_level: ci.isolation_level,
            is_blind_append: ci.is_blind_append,
            user_name: ci.user_name,
            metrics,
            row_count: state.row_count,
            live_files: state.live_files,
            live_bytes: state.live_bytes,
            schema_sha256: state.schema_sha256,
            unavailable,
            read_at,
        })
    }

    /// Replays `add`/`remove` over the JSON commits `0..=version` (the last one already parsed).
    fn replay(
        &self,
        version: u64,
        last: &Commit,
        unavailable: &mut BTreeMap<String, String>,
    ) -> Result<Replayed, DeltaError> {
        let mut out = Replayed::default();
        // The newest metaData at or before `version` gives the table id and schema; the commit
        // itself may carry it even when older commits are gone.
        if let Some(m) = &last.metadata {
            out.table_id = Some(m.id.clone());
            out.schema_sha256 = m.schema_string.as_deref().and_then(schema_digest);
        }
        // The first version below `version` without a JSON commit (the listing is walked, never
        // the number range: a version number comes from a file name and may be huge).
        let missing = self
            .commits
            .range(..version)
            .zip(0u64..)
            .find(|(v, expected)| **v != *expected)
            .map(|(_, expected)| expected)
            .or_else(|| {
                let n = self.commits.range(..version).count() as u64;
                (n < version).then_some(n)
            });
        if let Some(gap) = missing {
            let reason = if self.commits.first().is_some_and(|f| *f > gap) {
                format!(
                    "the JSON commits before version {} were cleaned up; the live files are in a \
                     Parquet checkpoint, which Clyra does not read",
                    self.commits.first().copied().unwrap_or(version)
                )
            } else {
                format!("the JSON commit of version {gap} is missing from the log")
            };
            for k in ["row_count", "live_files", "live_bytes"] {
                unavailable.insert(k.to_string(), reason.clone());
            }
            if out.table_id.is_none() {
                unavailable.insert("table_id".to_string(), reason.clone());
                unavailable.insert("schema_sha256".to_string(), reason);
            }
            return Ok(out);
        }
        // Live files keyed by (path, deletion vector id): value (numRecords - dv cardinality, size).
        let mut live: BTreeMap<FileKey, (Option<u64>, Option<u64>)> = BTreeMap::new();
        let mut metadata: Option<Metadata> = None;
        let mut apply = |c: &Commit| {
            for r in &c.removes {
                live.remove(&(
                    r.path.clone(),
                    r.deletion_vector.as_ref().map(DeletionVector::unique_id),
                ));
            }
            for a in &c.adds {
                let dv = a.deletion_vector.as_ref();
                let rows = a
                    .num_records
                    .map(|n| n.saturating_sub(dv.map_or(0, |d| d.cardinality)));
                live.insert(
                    (a.path.clone(), dv.map(DeletionVector::unique_id)),
                    (rows, a.size),
                );
            }
            if let Some(m) = &c.metadata {
                metadata = Some(m.clone());
            }
        };
        for v in 0..version {
            let (_, c) = self.read_commit(v)?;
            apply(&c);
        }
        apply(last);
        if let Some(m) = metadata {
            out.table_id = Some(m.id);
            out.schema_sha256 = m.schema_string.as_deref().and_then(schema_digest);
        }
        out.live_files = Some(live.len() as u64);
        out.live_bytes = live
            .values()
            .map(|(_, s)| *s)
            .try_fold(0u64, |acc, s| s.and_then(|s| acc.checked_add(s)));
        if out.live_bytes.is_none() {
            unavailable.insert(
                "live_bytes".to_string(),
                "a live file's add action has no size".to_string(),
            );
        }
        let without = live.values().filter(|(r, _)| r.is_none()).count();
        if without > 0 {
            unavailable.insert(
                "row_count".to_string(),
                format!(
                    "{without} of {} live files carry no numRecords statistics",
                    live.len()
                ),
            );
        } else {
            out.row_count = live
                .values()
                .try_fold(0u64, |acc, (r, _)| r.and_then(|r| acc.checked_add(r)));
        }
        Ok(out)
    }
}

/// A logical file: its path and its deletion vector's unique id.
type FileKey = (String, Option<String>);

#[derive(Default)]
struct Replayed {
    table_id: Option<String>,
    schema_sha256: Option<String>,
    row_count: Option<u64>,
    live_files: Option<u64>,
    live_bytes: Option<u64>,
}

fn parse_last_checkpoint(bytes: &[u8], path: &Path) -> Result<u64, DeltaError> {
    #[derive(Deserialize)]
    struct LastCheckpoint {
        version: u64,
    }
    crate::http::decode::<LastCheckpoint>(bytes)
        .map(|l| l.version)
        .map_err(|message| DeltaError::Parse {
            file: path.display().to_string(),
            line: None,
            pointer: None,
            message,
        })
}

/// The anchor of `version` (the latest when `None`) of the table at `location`.
pub fn anchor(location: &str, version: Option<u64>) -> Result<DeltaAnchor, DeltaError> {
    DeltaLog::open(location)?.anchor(version)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn metrics(op: &str, json: &str) -> OperationMetrics {
        let m: serde_json::Map<String, Value> = serde_json::from_str(json).unwrap();
        OperationMetrics::normalize(Some(op), &m)
    }

    #[test]
    fn databricks_write_metrics_are_strings_and_camel_case() {
        let m = metrics(
            "WRITE",
            r#"{"numFiles":"2","numOutputRows":"1000","numOutputBytes":"40960"}"#,
        );
        assert_eq!(m.rows_added, Some(1000));
        assert_eq!(m.files_added, Some(2));
        assert_eq!(m.bytes_added, Some(40960));
        assert!(m.other.is_empty());
        assert_eq!(m.output_rows, None);
    }

    #[test]
    fn merge_output_rows_are_not_rows_added() {
        let m = metrics(
            "MERGE",
            r#"{"numSourceRows":"100","numTargetRowsInserted":"10","numTargetRowsUpdated":"5",
                "numTargetRowsDeleted":"1","numTargetRowsCopied":"84","numOutputRows":"99",
                "numTargetFilesAdded":"1","numTargetFilesRemoved":"1","executionTimeMs":"2000",
                "scanTimeMs":"1200","rewriteTimeMs":"700","numTargetRowsMatchedUpdated":"5"}"#,
        );
        assert_eq!(m.output_rows, Some(99));
        assert_eq!(m.rows_added, None);
        assert_eq!(m.source_rows, Some(100));
        assert_eq!(m.target_rows_inserted, Some(10));
        assert_eq!(m.target_rows_updated, Some(5));
        assert_eq!(m.target_rows_deleted, Some(1));
        assert_eq!(m.target_rows_copied, Some(84));
        assert_eq!((m.files_added, m.files_removed), (Some(1), Some(1)));
        assert_eq!(
            (m.execution_ms, m.scan_ms, m.rewrite_ms),
            (Some(2000), Some(1200), Some(700))
        );
        assert_eq!(
            m.other.get("numTargetRowsMatchedUpdated"),
            Some(&Value::from("5"))
        );
    }

    #[test]
    fn snake_case_and_camel_case_agree() {
        let camel = metrics(
            "DELETE",
            r#"{"numAddedFiles":"1","numRemovedFiles":"1","numDeletedRows":"1","numCopiedRows":"2","executionTimeMs":"6"}"#,
        );
        let snake = metrics(
            "DELETE",
            r#"{"num_added_files":1,"num_removed_files":1,"num_deleted_rows":1,"num_copied_rows":2,"execution_time_ms":6}"#,
        );
        assert_eq!(camel, snake);
    }

    #[test]
    fn odd_values_are_kept_verbatim() {
        let m = metrics(
            "UPDATE",
            r#"{"numUpdatedRows":"-1","numCopiedRows":1.5,"num_added_files":"1","numAddedFiles":"2","x":{"a":1}}"#,
        );
        assert_eq!(m.rows_updated, None);
        assert_eq!(m.other["numUpdatedRows"], Value::from("-1"));
        assert_eq!(m.other["numCopiedRows"], Value::from(1.5));
        // Sorted order: numAddedFiles (2) is seen before num_added_files (1), which conflicts.
        assert_eq!(m.files_added, Some(2));
        assert_eq!(m.other["num_added_files"], Value::from("1"));
        assert!(m.other.contains_key("x"));
    }

    #[test]
    fn counts_beyond_two_to_the_53_stay_exact_as_text() {
        let m = metrics(
            "WRITE",
            r#"{"numOutputRows":9007199254740993,"numFiles":"9007199254740993","numRetries":18446744073709551615,"x":[12345678901234567890, -9007199254740993, 1.5]}"#,
        );
        assert_eq!(m.rows_added, None);
        assert_eq!(m.files_added, None);
        assert_eq!(m.other["numOutputRows"], Value::from("9007199254740993"));
        assert_eq!(m.other["numFiles"], Value::from("9007199254740993"));
        assert_eq!(m.other["numRetries"], Value::from("18446744073709551615"));
        assert_eq!(
            m.other["x"],
            serde_json::json!(["12345678901234567890", "-9007199254740993", 1.5])
        );
        jcs::to_canonical_vec(&m).unwrap();
    }

    #[test]
    fn commit_parser_tolerates_unknown_actions_and_members() {
        let c = parse_commit(
            br#"{"commitInfo":{"timestamp":1,"operation":"WRITE","newThing":[1,2],"readVersion":0}}
{"txn":{"appId":"a","version":3}}
{"add":{"path":"a.parquet","size":10,"dataChange":true,"stats":"{\"numRecords\":7}","futureMember":1}}

{"someFutureAction":{}}
{"remove":{"path":"b.parquet","dataChange":true}}
"#,
        )
        .unwrap();
        let ci = c.commit_info.unwrap();
        assert_eq!(ci.operation.as_deref(), Some("WRITE"));
        assert_eq!(ci.read_version, Some(0));
        assert_eq!(c.adds[0].num_records, Some(7));
        assert_eq!(c.removes[0].path, "b.parquet");
        assert_eq!(c.other_actions["txn"], 1);
        assert_eq!(c.other_actions["someFutureAction"], 1);
    }

    #[test]
    fn commit_parser_names_line_and_pointer() {
        let e = parse_commit(b"{\"commitInfo\":{}}\n{\"add\":{\"path\":7}}\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.pointer.as_deref(), Some("/add/path"));
        let e = parse_commit(b"{\"commitInfo\":{}}\n[1]\n").unwrap_err();
        assert_eq!((e.line, e.pointer.as_deref()), (2, Some("")));
        let e = parse_commit(b"{\"add\":").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.starts_with("not JSON"), "{e}");
    }

    #[test]
    fn file_urls() {
        assert_eq!(
            table_dir("file:///tmp/a%20b").unwrap(),
            PathBuf::from("/tmp/a b")
        );
        assert_eq!(
            table_dir("file://localhost/tmp/x").unwrap(),
            PathBuf::from("/tmp/x")
        );
        for bad in [
            "file://host/x",
            "s3://bucket/t",
            "abfss://c@a/t",
            "",
            "file:///%zz",
        ] {
            assert!(table_dir(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn millis_format() {
        assert_eq!(
            millis_rfc3339(1_796_189_583_953).unwrap(),
            "2026-12-02T05:33:03.953Z"
        );
    }
}
