//! dbt: artifacts (run_results v6, manifest v12, the JSON log), the evidence recorded per node,
//! lineage with trust hints, OpenLineage events, and `clyra dbt init`'s project edits.
pub mod init;
