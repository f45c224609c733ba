//! dbt: artifacts (run_results v6, manifest v12, the JSON log), the evidence recorded per node,
//! lineage with trust hints, OpenLineage events, and `clyra dbt init`'s project edits.

#![allow(missing_debug_implementations)]
// LEAD-STUB: replaced by helper A's engine at merge.
use std::path::Path;

/// Stub.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DbtError(String);

/// Stub.
#[derive(Debug)]
pub struct TargetArtifacts;

/// Stub.
#[derive(Debug)]
pub struct LogSummary {
    /// Stub.
    pub invocation_id: Option<String>,
}

/// Stub.
pub fn read_target(dir: &Path) -> Result<TargetArtifacts, DbtError> {
    if dir.join("run_results.json").exists() {
        Ok(TargetArtifacts)
    } else {
        Err(DbtError(format!(
            "no run_results.json in {}",
            dir.display()
        )))
    }
}

/// Stub.
pub fn read_log(_path: &Path) -> Result<LogSummary, DbtError> {
    Ok(LogSummary {
        invocation_id: None,
    })
}

/// Stub.
pub mod record {
    use super::*;
    /// Stub.
    pub struct RecordContext {
        /// Stub.
        pub command: Option<String>,
        /// Stub.
        pub target: Option<String>,
        /// Stub.
        pub replay: bool,
        /// Stub.
        pub interrupted: bool,
    }
    /// Stub.
    pub struct Event {
        /// Stub.
        pub kind: String,
        /// Stub.
        pub id: String,
        /// Stub.
        pub ts: Option<jiff::Timestamp>,
        /// Stub.
        pub body: serde_json::Value,
    }
    /// Stub.
    pub struct Artifact {
        /// Stub.
        pub path: String,
        /// Stub.
        pub bytes: Vec<u8>,
        /// Stub.
        pub media_type: String,
    }
    /// Stub.
    pub struct RunRecord {
        /// Stub.
        pub status: String,
        /// Stub.
        pub invocation_id: Option<String>,
        /// Stub.
        pub unfinished: Vec<String>,
    }
    impl RunRecord {
        /// Stub.
        pub fn built_relations(&self) -> Vec<(String, String)> {
            Vec::new()
        }
    }
    /// Stub.
    pub struct Recorded {
        /// Stub.
        pub run: RunRecord,
        /// Stub.
        pub events: Vec<Event>,
        /// Stub.
        pub artifacts: Vec<Artifact>,
    }
    /// Stub.
    pub fn record(
        _t: &TargetArtifacts,
        _log: Option<&LogSummary>,
        _ctx: &RecordContext,
    ) -> Result<Recorded, DbtError> {
        Err(DbtError("stub".into()))
    }
}
