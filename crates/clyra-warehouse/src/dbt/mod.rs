//! dbt: artifacts (run_results v6, manifest v12, the JSON log), the evidence recorded per node,
//! lineage with trust hints, OpenLineage events, and `clyra dbt init`'s project edits.
//!
//! - [`artifacts`]: typed, tolerant readers of `run_results.json` (schema v6) and `manifest.json`
//!   (schema v12): unknown fields are ignored, an unknown major schema version is refused, every
//!   error names the file, the line and column and the JSON pointer. [`read_target`] reads a
//!   target directory.
//! - [`log`]: dbt's JSON log file (`--log-format-file json`), read line by line; a line that is not
//!   JSON or lacks a field is counted, never fatal. Yields the nodes started and finished and the
//!   `clyra_guard` decisions. [`read_log`].
//! - [`mod@record`]: what a DEF bundle of a dbt run holds: `dbt/run.json` ([`RunRecord`]),
//!   `dbt/lineage.json`, the journal events, the replay set; deterministic, so the same files
//!   give the same bytes. [`record()`].
//! - [`lineage`]: the graph sources → seeds / models / snapshots → exposures with trust hints
//!   (rules in `docs/dbt/lineage.md`), as a text tree, Graphviz DOT or SVG.
//! - [`openlineage`]: OpenLineage 2-0-2 RunEvents with Clyra's `clyra_evidence` run facet.
//! - [`bundle`]: a dbt run read back from its DEF bundle, after the bundle verified.
//!
//! ```no_run
//! use clyra_warehouse::dbt::{self, RecordContext};
//!
//! let target = dbt::read_target("target".as_ref())?;
//! let log = dbt::read_log("logs/dbt.log".as_ref()).ok();
//! let recorded = dbt::record(&target, log.as_ref(), &RecordContext::default())?;
//! println!("{} nodes, status {}", recorded.run.nodes.len(), recorded.run.status.as_str());
//! print!("{}", recorded.lineage.to_text_tree());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artifacts;
pub mod bundle;
mod error;
pub mod init;
pub mod lineage;
pub mod log;
pub mod openlineage;
pub mod record;
mod time;

pub use artifacts::{read_target, Manifest, RunResults, TargetArtifacts};
pub use error::DbtError;
pub use log::{read_log, LogSummary, LoggedNode};
pub use record::{
    record, Artifact, Event, NodeRecord, RecordContext, Recorded, RunRecord, RunStatus,
};
