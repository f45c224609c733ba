//! Clyra's warehouse engine: evidence about data, pinned to the warehouse's own state.
//!
//! - [`anchor`]: the Postgres anchor (cluster system identifier, timeline, WAL LSN, MVCC snapshot,
//!   server version, database, server time), taken without side effects: no transaction id is
//!   ever assigned.
//! - [`snapshot`]: metadata-only snapshots (tables, columns, schema fingerprints, estimates,
//!   column statistics summaries, counters; exact counts and content hashes opt-in), written as
//!   RFC 8785 canonical JSON so the same state gives the same bytes. No row values are read.
//! - [`diff`]: deterministic diffs of two snapshots keyed by qualified name, separating changes
//!   (catalog facts, exact measurements) from observations (estimates, counters).
//! - [`snowflake`]: Snowflake query-id anchors taken through the SQL API v2, reconciled later with
//!   `ACCOUNT_USAGE.QUERY_HISTORY` (tested against a local stand-in and fakesnow, never a live
//!   account).
//! - [`delta`]: Delta Lake anchors read from a table's `_delta_log` by Clyra's own parser
//!   (version, commit SHA-256, operation, normalized metrics, row count from the log's stats).
//! - [`databricks`] and [`mlflow`]: the Databricks SQL Statement Execution API (`DESCRIBE
//!   HISTORY` anchors of Unity Catalog tables) and MLflow model versions, metadata only.
//! - [`replay`]: replay certificates: recorded compiled SQL re-run in a scratch schema, compared
//!   with the recorded snapshot, signed.
//! - [`dbt`]: dbt artifacts (run_results v6, manifest v12, JSON log) recorded per node, lineage
//!   with trust hints (text, DOT, SVG), OpenLineage events with a `clyra_evidence` facet.
//!
//! The snapshot format is `clyra.warehouse.snapshot/v1`, described in `docs/warehouses.md`.
//! This crate talks to Postgres with the blocking `postgres` client; Snowflake and Databricks
//! anchors come later.
//!
//! ```no_run
//! use clyra_warehouse::{diff, pg, snapshot};
//!
//! let mut client = pg::connect("postgres://postgres@127.0.0.1:5432/test")?;
//! let options = snapshot::Options {
//!     schemas: vec!["analytics".into()],
//!     exact_counts: vec!["analytics.orders".into()],
//!     ..Default::default()
//! };
//! let before = snapshot::take(&mut client, &options)?;
//! // ... dbt run ...
//! let after = snapshot::take(&mut client, &options)?;
//! let d = diff::diff(&before, &after);
//! println!("changed: {}", d.changed);
//! std::fs::write("after.json", after.to_canonical_json()?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod anchor;
pub mod databricks;
pub mod dbt;
pub mod delta;
pub mod diff;
pub mod doctor;
mod error;
#[doc(hidden)]
pub mod fuzz_hooks;
pub mod glob;
pub mod guard;
pub mod http;
pub mod mlflow;
pub mod pg;
pub mod replay;
pub mod snapshot;
pub mod snowflake;
pub mod suggest;
pub mod tls;
mod verified;

pub use anchor::PgAnchor;
pub use diff::Diff;
pub use error::{Error, LoadError};
pub use snapshot::Snapshot;
pub use snowflake::SnowflakeAnchor;
