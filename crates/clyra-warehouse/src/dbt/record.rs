//! What a DEF bundle of a dbt run holds, computed from dbt's own files.
//!
//! [`record()`] takes a target directory's artifacts ([`TargetArtifacts`]) and, optionally, dbt's
//! JSON log ([`LogSummary`]) and returns:
//!
//! - the run record `dbt/run.json` ([`RunRecord`], format [`RUN_FORMAT`]): the invocation (dbt
//!   version, invocation id, adapter, command, target, project), the status, and per node its
//!   status, timing, rows affected, adapter query id, SHA-256 of the compiled code, the
//!   manifest's checksum of its file, relation, message, failures and thread;
//! - the lineage `dbt/lineage.json` ([`super::lineage::Lineage`]);
//! - the journal events of the run ([`Event`]): ids and timestamps come from the artifacts, never
//!   from the clock, so ingesting the same files twice gives the same events (and a journal,
//!   which deduplicates by id, appends nothing new);
//! - the artifacts to embed ([`Artifact`]): `dbt/run.json`, `dbt/lineage.json` (both RFC 8785
//!   canonical JSON), `dbt/run_results.json` byte for byte when dbt wrote one, and, when asked
//!   ([`RecordContext::replay`]), the replay set `replay/replay.json` with
//!   `replay/compiled/<unique_id>.sql` for the table and view models that succeeded.
//!
//! Where the nodes come from: `run_results.json` when dbt wrote one; nodes the log saw finish
//! that it lacks (dbt leaves the node a SIGINT cancelled out of its partial file) are added from
//! the log. Without `run_results.json` (dbt killed with SIGTERM) the log alone: its finished
//! nodes, and the nodes it saw start and not finish, listed as interrupted. With neither, there is
//! nothing to record and [`record()`] says so.
//!
//! The run's status: `cancelled` when the run was interrupted ([`RecordContext::interrupted`]);
//! else `error` when a node errored or a test failed; else `partial` when a node started and did
//! not finish or the record comes from the log alone; else `success`.

use std::collections::{BTreeMap, BTreeSet};

use clyra_evidence::jcs;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::artifacts::{Manifest, ManifestNode, RunResult, TargetArtifacts};
use super::lineage::{self, Lineage};
use super::log::{seconds_to_ms, LogSummary, LoggedNode};
use super::{time, DbtError};
use crate::replay::set::{self as replay_set, ReplayModel, ReplaySet};
use crate::snapshot::table_key;

/// The run record's format.
pub const RUN_FORMAT: &str = "clyra.dbt.run/v1";
/// Where the run record sits in a bundle, relative to `artifacts/`.
pub const RUN_PATH: &str = "dbt/run.json";
/// Where the lineage sits, relative to `artifacts/`.
pub const LINEAGE_PATH: &str = "dbt/lineage.json";
/// Where dbt's run_results.json is embedded, relative to `artifacts/`.
pub const RUN_RESULTS_PATH: &str = "dbt/run_results.json";
/// The replay set's snapshot, which the wrapper writes when it has a DSN.
pub const SNAPSHOT_AFTER_PATH: &str = "replay/snapshot-after.json";

/// What the caller knows that the artifacts may not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordContext {
    /// The command line, when the artifacts do not record it (they do: dbt's
    /// `args.invocation_command` wins).
    pub command: Option<String>,
    /// The dbt target (`--target`), when the artifacts do not record it.
    pub target: Option<String>,
    /// Also emit the replay set (`replay/replay.json` and the compiled SQL).
    pub replay: bool,
    /// The run was interrupted (SIGINT, SIGTERM): the status is `cancelled`.
    pub interrupted: bool,
}

/// Everything recorded for one dbt run.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `dbt/run.json`.
    pub run: RunRecord,
    /// `dbt/lineage.json`.
    pub lineage: Lineage,
    /// The journal events of the run, in order.
    pub events: Vec<Event>,
    /// The files to embed under `artifacts/`.
    pub artifacts: Vec<Artifact>,
}

/// A journal event of the run (the caller appends it with its tenant and run).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `dbt.run.started`, `dbt.model.finished`, `dbt.test.finished`, `dbt.guard.decision`,
    /// `dbt.run.finished`.
    pub kind: String,
    /// Idempotency key, `dbt:<invocation_id>:<kind>[:<unique_id>]`.
    pub id: String,
    /// When it happened, from the artifacts.
    pub ts: Option<Timestamp>,
    /// The event's data.
    pub body: Value,
}

/// A file to embed in the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Path under `artifacts/`.
    pub path: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Media type.
    pub media_type: String,
}

/// The status of a recorded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every node succeeded and every test passed (or warned).
    Success,
    /// A node errored or a test failed.
    Error,
    /// Not every started node finished, or only the log recorded the run.
    Partial,
    /// The run was interrupted.
    Cancelled,
}

impl RunStatus {
    /// The status as written in `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::Error => "error",
            RunStatus::Partial => "partial",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// Where a run record's nodes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSource {
    /// `run_results.json` (with the log's additions, if any).
    RunResults,
    /// dbt's JSON log alone.
    Log,
}

/// `dbt/run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always [`RUN_FORMAT`].
    pub format: String,
    /// Where the nodes come from.
    pub source: RecordSource,
    /// The dbt invocation.
    pub dbt: DbtInvocation,
    /// The dbt project's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The run's status.
    pub status: RunStatus,
    /// The run was interrupted.
    pub interrupted: bool,
    /// When the invocation started (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When dbt wrote run_results.json, or the log's last line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// dbt's `elapsed_time`, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<f64>,
    /// SHA-256 (hex) of manifest.json's bytes (the manifest itself is not embedded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    /// SHA-256 (hex) of run_results.json's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_results_sha256: Option<String>,
    /// Nodes by status (`success: 3`, `pass: 5`, ...).
    pub counts: BTreeMap<String, u64>,
    /// The nodes that finished (or that dbt reports as skipped), sorted by unique_id.
    pub nodes: Vec<NodeRecord>,
    /// Nodes that started and did not finish, sorted by unique_id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub started_not_finished: Vec<StartedNode>,
    /// `clyra_guard` decisions, in log order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guard_decisions: Vec<Value>,
    /// What was read of the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogFacts>,
    /// Anything a reader should know (e.g. why no replay set was written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The dbt invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbtInvocation {
    /// dbt's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The invocation id.
    pub invocation_id: String,
    /// The adapter (`postgres`, `snowflake`, ...), from the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// The command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The dbt subcommand (`build`, `run`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub which: Option<String>,
    /// The target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `metadata.dbt_schema_version` of run_results.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_results_schema: Option<String>,
    /// `metadata.dbt_schema_version` of manifest.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_schema: Option<String>,
    /// The manifest's own invocation id, when it differs (the manifest is from another
    /// invocation than the results: a stale target directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_invocation_id: Option<String>,
}

/// One node of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// `model.shop.orders`, `test.shop.not_null_orders_id.1a2b3c`, ...
    pub unique_id: String,
    /// `model`, `seed`, `snapshot`, `test`, `exposure`, ...
    pub resource_type: String,
    /// dbt's status for the node.
    pub status: String,
    /// The materialization (`table`, `view`, `incremental`, `seed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub materialization: Option<String>,
    /// Start of the execute step (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// End of the execute step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// dbt's execution time, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_ms: Option<f64>,
    /// Rows affected, when the adapter knows (never `-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_affected: Option<u64>,
    /// The warehouse's query id, when the adapter reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// SHA-256 (hex) of the compiled code's UTF-8 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled_sha256: Option<String>,
    /// The manifest's SHA-256 of the node's file (contents with surrounding whitespace stripped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The relation, as dbt names it (`"db"."schema"."name"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// dbt's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Failing rows of a test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u64>,
    /// dbt's thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// The node a test tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_node: Option<String>,
    /// `log` when the node comes from the log although run_results.json exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_from: Option<String>,
}

/// A node that started and did not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedNode {
    /// The node.
    pub unique_id: String,
    /// Its resource type.
    pub resource_type: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

/// What was read of dbt's JSON log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFacts {
    /// Lines read.
    pub lines: u64,
    /// Lines that were not JSON or lacked a member.
    pub bad_lines: u64,
    /// Earlier invocations in the same file, ignored.
    pub earlier_invocations: u64,
}

impl RunRecord {
    /// The record as RFC 8785 canonical JSON.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, DbtError> {
        jcs::to_canonical_vec(self).map_err(|e| DbtError::canonical("dbt/run.json", e))
    }

    /// Reads a run record (from a bundle); `file` names it in errors.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<RunRecord, DbtError> {
        let run: RunRecord = super::artifacts::parse_json(bytes, file)?;
        if run.format != RUN_FORMAT {
            return Err(DbtError::Format {
                file: file.to_string(),
                found: run.format,
                expected: RUN_FORMAT,
            });
        }
        Ok(run)
    }

    /// The node with this unique_id.
    pub fn node(&self, unique_id: &str) -> Option<&NodeRecord> {
        self.nodes
            .binary_search_by(|n| n.unique_id.as_str().cmp(unique_id))
            .ok()
            .and_then(|i| self.nodes.get(i))
    }
}

/// Records a dbt run: see the module documentation.
pub fn record(
    t: &TargetArtifacts,
    log: Option<&LogSummary>,
    ctx: &RecordContext,
) -> Result<Recorded, DbtError> {
    // dbt killed with SIGTERM writes no run_results.json, so a reused target directory may hold
    // the previous invocation's: when the log is of a later invocation, that file is stale.
    let stale;
    let mut stale_note = None;
    let t = match (t.run_results.as_ref(), log) {
        (Some(rr), Some(l)) if is_stale(rr, l) => {
            stale_note = Some(format!(
                "run_results.json is of invocation `{}`, earlier than the log's `{}`; it was not used",
                rr.metadata.invocation_id.as_deref().unwrap_or_default(),
                l.invocation_id.as_deref().unwrap_or_default()
            ));
            stale = TargetArtifacts {
                manifest: t.manifest.clone(),
                run_results: None,
                manifest_bytes: t.manifest_bytes.clone(),
                run_results_bytes: None,
            };
            &stale
        }
        _ => t,
    };
    let mut run = run_record(t, log, ctx)?;
    run.notes.extend(stale_note);
    let lineage = lineage::build(t.manifest.as_ref(), &run);
    // The log is used only when it is of the same invocation (run_record notes it otherwise).
    let decision_times = log
        .filter(|l| {
            l.invocation_id.is_none() || l.invocation_id.as_deref() == Some(&run.dbt.invocation_id)
        })
        .map(|l| l.guard_decision_ts.as_slice())
        .unwrap_or_default();
    let events = events(&run, decision_times);
    let mut artifacts = vec![
        Artifact {
            path: RUN_PATH.to_string(),
            bytes: Vec::new(),
            media_type: "application/json".to_string(),
        },
        Artifact {
            path: LINEAGE_PATH.to_string(),
            bytes: lineage.to_canonical_json()?,
            media_type: "application/json".to_string(),
        },
    ];
    if let Some(b) = &t.run_results_bytes {
        artifacts.push(Artifact {
            path: RUN_RESULTS_PATH.to_string(),
            bytes: b.clone(),
            media_type: "application/json".to_string(),
        });
    }
    if ctx.replay {
        match replay_artifacts(t, &run)? {
            Ok(files) => artifacts.extend(files),
            Err(note) => run.notes.push(note),
        }
    }
    if let Some(a) = artifacts.first_mut() {
        a.bytes = run.to_canonical_json()?;
    }
    Ok(Recorded {
        run,
        lineage,
        events,
        artifacts,
    })
}

/// run_results.json is of another invocation than the log, and the log began after dbt wrote it.
fn is_stale(rr: &super::artifacts::RunResults, log: &LogSummary) -> bool {
    let (Some(a), Some(b)) = (
        rr.metadata.invocation_id.as_deref(),
        log.invocation_id.as_deref(),
    ) else {
        return false;
    };
    let written = rr.metadata.generated_at.as_deref().and_then(time::parse);
    let log_start = log.first_ts.as_deref().and_then(time::parse);
    a != b && matches!((written, log_start), (Some(w), Some(s)) if s > w)
}

/// A value as its canonical JSON reads back (`90.0` becomes `90`), so what is recorded equals
/// what a reader of run.json sees.
fn canonical_value(v: &Value) -> Value {
    jcs::canonicalize_value(v)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        // A number canonical JSON cannot carry: kept as its text rather than failing the record.
        .unwrap_or_else(|| Value::String(v.to_string()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    clyra_evidence::Digest::sha256(bytes).to_hex()
}

fn resource_type_of(unique_id: &str, manifest: Option<&Manifest>) -> String {
    if let Some(n) = manifest.and_then(|m| m.nodes.get(unique_id)) {
        return n.resource_type.clone();
    }
    if manifest.is_some_and(|m| m.exposures.contains_key(unique_id)) {
        return "exposure".to_string();
    }
    if manifest.is_some_and(|m| m.sources.contains_key(unique_id)) {
        return "source".to_string();
    }
    unique_id
        .split_once('.')
        .map_or(unique_id, |(t, _)| t)
        .to_string()
}

fn sha256_checksum(node: Option<&ManifestNode>) -> Option<String> {
    node.and_then(|n| n.checksum.as_ref())
        .filter(|c| c.name == "sha256" && !c.checksum.is_empty())
        .map(|c| c.checksum.clone())
}

/// A count canonical JSON can carry: `0..=2^53-1` (`-1`, dbt's "unknown", and anything out of
/// range are left out).
fn count(n: i64) -> Option<u64> {
    u64::try_from(n)
        .ok()
        .filter(|&n| n <= jcs::MAX_SAFE_INTEGER)
}

fn non_empty(s: Option<&String>) -> Option<String> {
    s.filter(|s| !s.is_empty()).cloned()
}

fn from_result(r: &RunResult, manifest: Option<&Manifest>) -> NodeRecord {
    let node = manifest.and_then(|m| m.nodes.get(&r.unique_id));
    let execute = r.execute_timing();
    let compiled = r
        .compiled_code
        .as_ref()
        .or(node.and_then(|n| n.compiled_code.as_ref()))
        .filter(|c| !c.is_empty());
    NodeRecord {
        unique_id: r.unique_id.clone(),
        resource_type: resource_type_of(&r.unique_id, manifest),
        status: r.status.clone(),
        materialization: node.and_then(|n| n.config.materialized.clone()),
        started_at: execute
            .and_then(|t| t.started_at.as_deref())
            .and_then(time::normalize),
        completed_at: execute
            .and_then(|t| t.completed_at.as_deref())
            .and_then(time::normalize),
        execution_ms: r.execution_time.and_then(seconds_to_ms),
        rows_affected: r.adapter_response.rows_affected.and_then(count),
        query_id: non_empty(r.adapter_response.query_id.as_ref()),
        compiled_sha256: compiled.map(|c| sha256_hex(c.as_bytes())),
        checksum: sha256_checksum(node),
        relation: non_empty(r.relation_name.as_ref())
            .or_else(|| non_empty(node.and_then(|n| n.relation_name.as_ref()))),
        message: non_empty(r.message.as_ref()),
        failures: r
            .failures
            .and_then(|n| i64::try_from(n).ok())
            .and_then(count),
        thread_id: non_empty(r.thread_id.as_ref()),
        attached_node: attached(node),
        recorded_from: None,
    }
}

/// The node a test tests: `attached_node`, else its only dependency.
fn attached(node: Option<&ManifestNode>) -> Option<String> {
    let n = node.filter(|n| n.resource_type == "test")?;
    n.attached_node
        .clone()
        .filter(|a| !a.is_empty())
        .or_else(|| match n.depends_on.nodes.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        })
}

fn from_log(l: &LoggedNode, manifest: Option<&Manifest>) -> NodeRecord {
    let node = manifest.and_then(|m| m.nodes.get(&l.unique_id));
    let compiled = node
        .and_then(|n| n.compiled_code.as_ref())
        .filter(|c| !c.is_empty());
    NodeRecord {
        unique_id: l.unique_id.clone(),
        resource_type: match (&l.resource_type, manifest) {
            (Some(t), None) => t.clone(),
            _ => resource_type_of(&l.unique_id, manifest),
        },
        status: l.status.clone(),
        materialization: node
            .and_then(|n| n.config.materialized.clone())
            .or_else(|| l.materialized.clone()),
        started_at: l.started_at.clone(),
        completed_at: l.completed_at.clone(),
        execution_ms: l.execution_ms,
        rows_affected: l.rows_affected.and_then(count),
        query_id: l.query_id.clone(),
        compiled_sha256: compiled.map(|c| sha256_hex(c.as_bytes())),
        checksum: sha256_checksum(node).or_else(|| {
            l.node_checksum
                .clone()
                .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        }),
        relation: l
            .relation_name
            .clone()
            .or_else(|| non_empty(node.and_then(|n| n.relation_name.as_ref()))),
        message: l.message.clone(),
        failures: l
            .failures
            .and_then(|n| i64::try_from(n).ok())
            .and_then(count),
        thread_id: l.thread_id.clone(),
        attached_node: attached(node),
        recorded_from: None,
    }
}

fn is_failure(status: &str) -> bool {
    matches!(status, "error" | "fail" | "runtime error")
}

fn run_record(
    t: &TargetArtifacts,
    log: Option<&LogSummary>,
    ctx: &RecordContext,
) -> Result<RunRecord, DbtError> {
    let manifest = t.manifest.as_ref();
    let rr = t.run_results.as_ref();
    if rr.is_none() && log.is_none() {
        return Err(DbtError::NothingToRecord(
            "no run_results.json in the target directory and no dbt JSON log; run dbt with \
             --log-format-file json (or DBT_LOG_FORMAT_FILE=json) so a killed run still leaves \
             a record"
                .to_string(),
        ));
    }
    let invocation_id = rr
        .and_then(|r| r.metadata.invocation_id.clone())
        .or_else(|| log.and_then(|l| l.invocation_id.clone()))
        .or_else(|| manifest.and_then(|m| m.metadata.invocation_id.clone()))
        .filter(|i| !i.is_empty())
        .ok_or(DbtError::NoInvocationId)?;
    let mut notes = Vec::new();
    let mut nodes: BTreeMap<String, NodeRecord> = BTreeMap::new();
    let source = if let Some(rr) = rr {
        for r in &rr.results {
            nodes.insert(r.unique_id.clone(), from_result(r, manifest));
        }
        RecordSource::RunResults
    } else {
        RecordSource::Log
    };
    // The log's nodes: all of them without run_results; those run_results lacks otherwise.
    let log = log.filter(|l| {
        let same = l.invocation_id.is_none() || l.invocation_id.as_deref() == Some(&invocation_id);
        if !same {
            notes.push(format!(
                "the log is of invocation `{}`, not `{invocation_id}`; it was not used",
                l.invocation_id.as_deref().unwrap_or_default()
            ));
        }
        same
    });
    if let Some(l) = log {
        for f in &l.finished {
            if !nodes.contains_key(&f.unique_id) {
                let mut n = from_log(f, manifest);
                if source == RecordSource::RunResults {
                    n.recorded_from = Some("log".to_string());
                }
                nodes.insert(f.unique_id.clone(), n);
            }
        }
        if l.bad_lines > 0 {
            notes.push(format!(
                "{} of {} log lines were not JSON events Clyra could read",
                l.bad_lines, l.lines
            ));
        }
    }
    let mut started_not_finished: Vec<StartedNode> = log
        .map(|l| {
            l.started_not_finished()
                .into_iter()
                .filter(|id| !nodes.contains_key(*id))
                .map(|id| {
                    let start = l.node_starts.get(id);
                    StartedNode {
                        unique_id: id.to_string(),
                        resource_type: match (start.and_then(|s| s.resource_type.clone()), manifest)
                        {
                            (Some(t), None) => t,
                            _ => resource_type_of(id, manifest),
                        },
                        started_at: start.and_then(|s| s.started_at.clone()),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    started_not_finished.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    let nodes: Vec<NodeRecord> = nodes.into_values().collect();
    let mut counts = BTreeMap::new();
    for n in &nodes {
        *counts.entry(n.status.clone()).or_insert(0u64) += 1;
    }
    let status = if ctx.interrupted {
        RunStatus::Cancelled
    } else if nodes.iter().any(|n| is_failure(&n.status)) {
        RunStatus::Error
    } else if !started_not_finished.is_empty() || source == RecordSource::Log {
        RunStatus::Partial
    } else {
        RunStatus::Success
    };
    let manifest_invocation_id = manifest
        .and_then(|m| m.metadata.invocation_id.clone())
        .filter(|m| *m != invocation_id);
    if let Some(m) = &manifest_invocation_id {
        notes.push(format!(
            "manifest.json was written by invocation `{m}`, not `{invocation_id}`: the target \
             directory may hold files of two runs"
        ));
    }
    let dbt = DbtInvocation {
        version: rr
            .and_then(|r| r.metadata.dbt_version.clone())
            .or_else(|| log.and_then(|l| l.dbt_version.clone()))
            .or_else(|| manifest.and_then(|m| m.metadata.dbt_version.clone())),
        invocation_id,
        adapter: manifest.and_then(|m| m.metadata.adapter_type.clone()),
        command: rr
            .and_then(|r| r.args.invocation_command.clone())
            .or_else(|| log.and_then(|l| l.invocation_command.clone()))
            .or_else(|| ctx.command.clone()),
        which: rr.and_then(|r| r.args.which.clone()),
        target: rr
            .and_then(|r| r.args.target.clone())
            .or_else(|| ctx.target.clone()),
        run_results_schema: rr.and_then(|r| r.metadata.dbt_schema_version.clone()),
        manifest_schema: manifest.and_then(|m| m.metadata.dbt_schema_version.clone()),
        manifest_invocation_id,
    };
    Ok(RunRecord {
        format: RUN_FORMAT.to_string(),
        source,
        dbt,
        project: manifest.and_then(|m| m.metadata.project_name.clone()),
        status,
        interrupted: ctx.interrupted,
        started_at: rr
            .and_then(|r| r.metadata.invocation_started_at.as_deref())
            .or_else(|| manifest.and_then(|m| m.metadata.invocation_started_at.as_deref()))
            .and_then(time::normalize)
            .or_else(|| log.and_then(|l| l.first_ts.clone())),
        finished_at: rr
            .and_then(|r| r.metadata.generated_at.as_deref())
            .and_then(time::normalize)
            .or_else(|| log.and_then(|l| l.last_ts.clone())),
        elapsed_ms: rr.and_then(|r| r.elapsed_time).and_then(seconds_to_ms),
        manifest_sha256: t.manifest_bytes.as_deref().map(sha256_hex),
        run_results_sha256: t.run_results_bytes.as_deref().map(sha256_hex),
        counts,
        nodes,
        started_not_finished,
        guard_decisions: log
            .map(|l| l.guard_decisions.iter().map(canonical_value).collect())
            .unwrap_or_default(),
        log: log.map(|l| LogFacts {
            lines: l.lines,
            bad_lines: l.bad_lines,
            earlier_invocations: l.earlier_invocations,
        }),
        notes,
    })
}

/// Longest event id the journal takes (`clyra_journal::entry::MAX_ID_LEN`).
pub const MAX_EVENT_ID_BYTES: usize = 256;

/// `dbt:<invocation_id>:<kind>[:<unique_id>]`. The journal takes ids of at most
/// [`MAX_EVENT_ID_BYTES`] without control characters; an id that would break that (a very long
/// unique_id, or untrusted text) names the invocation and the unique_id by their SHA-256
/// instead: `dbt:<invocation_id>:<kind>:sha256:<hex of unique_id>`, the invocation id too written
/// `sha256:<hex>` when it is longer than 64 bytes or holds a control character.
pub fn event_id(invocation_id: &str, kind: &str, unique_id: Option<&str>) -> String {
    let plain = match unique_id {
        Some(u) => format!("dbt:{invocation_id}:{kind}:{u}"),
        None => format!("dbt:{invocation_id}:{kind}"),
    };
    if plain.len() <= MAX_EVENT_ID_BYTES && !plain.chars().any(char::is_control) {
        return plain;
    }
    let inv = if invocation_id.len() <= 64 && !invocation_id.chars().any(char::is_control) {
        invocation_id.to_string()
    } else {
        format!("sha256:{}", sha256_hex(invocation_id.as_bytes()))
    };
    match unique_id {
        Some(u) => format!("dbt:{inv}:{kind}:sha256:{}", sha256_hex(u.as_bytes())),
        None => format!("dbt:{inv}:{kind}"),
    }
}

/// The journal events of a run: `dbt.run.started`, then the model, test and guard events in time
/// order (ties and untimed events by id), then `dbt.run.finished`.
fn events(run: &RunRecord, decision_times: &[Option<String>]) -> Vec<Event> {
    let inv = run.dbt.invocation_id.as_str();
    let ts = |s: Option<&String>| s.and_then(|s| time::parse(s));
    let mut out = Vec::new();

    let mut dbt = Map::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            dbt.insert(k.to_string(), Value::String(v.clone()));
        }
    };
    put("version", &run.dbt.version);
    put("adapter", &run.dbt.adapter);
    put("invocation_id", &Some(inv.to_string()));
    put("command", &run.dbt.command);
    put("target", &run.dbt.target);
    let mut body = Map::new();
    body.insert("dbt".to_string(), Value::Object(dbt));
    if let Some(p) = &run.project {
        body.insert("project".to_string(), Value::String(p.clone()));
    }
    out.push(Event {
        kind: "dbt.run.started".to_string(),
        id: event_id(inv, "dbt.run.started", None),
        ts: ts(run.started_at.as_ref()),
        body: Value::Object(body),
    });

    let mut middle: Vec<Event> = Vec::new();
    for n in &run.nodes {
        let (kind, body) = match n.resource_type.as_str() {
            "model" | "seed" | "snapshot" => {
                let mut body = match serde_json::to_value(n) {
                    Ok(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                body.insert("invocation_id".to_string(), json!(inv));
                ("dbt.model.finished", body)
            }
            "test" | "unit_test" => {
                let mut body = Map::new();
                body.insert("unique_id".to_string(), json!(n.unique_id));
                body.insert("status".to_string(), json!(n.status));
                if let Some(f) = n.failures {
                    body.insert("failures".to_string(), json!(f));
                }
                if let Some(ms) = n.execution_ms {
                    body.insert("execution_ms".to_string(), json!(ms));
                }
                if let Some(m) = &n.message {
                    body.insert("message".to_string(), json!(m));
                }
                if let Some(a) = &n.attached_node {
                    body.insert("attached_node".to_string(), json!(a));
                }
                body.insert("invocation_id".to_string(), json!(inv));
                ("dbt.test.finished", body)
            }
            _ => continue,
        };
        middle.push(Event {
            kind: kind.to_string(),
            id: event_id(inv, kind, Some(&n.unique_id)),
            // A skipped node has no timing: the run's end stands in (never the clock).
            ts: ts(n
                .completed_at
                .as_ref()
                .or(n.started_at.as_ref())
                .or(run.finished_at.as_ref())),
            body: Value::Object(body),
        });
    }
    let mut per_model: BTreeMap<String, u64> = BTreeMap::new();
    for (i, d) in run.guard_decisions.iter().enumerate() {
        let model = d
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or("-")
            .to_string();
        let n = per_model.entry(model.clone()).or_insert(0);
        let id = event_id(inv, "dbt.guard.decision", Some(&format!("{model}:{n}")));
        *n += 1;
        let mut body = d.as_object().cloned().unwrap_or_default();
        body.insert("invocation_id".to_string(), json!(inv));
        middle.push(Event {
            kind: "dbt.guard.decision".to_string(),
            id,
            ts: ts(decision_times
                .get(i)
                .and_then(Option::as_ref)
                .or(run.finished_at.as_ref())),
            body: Value::Object(body),
        });
    }
    middle.sort_by(|a, b| (a.ts.is_none(), a.ts, &a.id).cmp(&(b.ts.is_none(), b.ts, &b.id)));
    // The end is never before an event of the run (the log may time a node the SIGINT cancelled
    // after dbt wrote its partial run_results.json).
    let last = middle.iter().filter_map(|e| e.ts).max();
    out.extend(middle);

    let not_finished: Vec<&str> = run
        .started_not_finished
        .iter()
        .map(|s| s.unique_id.as_str())
        .collect();
    out.push(Event {
        kind: "dbt.run.finished".to_string(),
        id: event_id(inv, "dbt.run.finished", None),
        ts: ts(run.finished_at.as_ref()).max(last),
        body: json!({
            "status": run.status.as_str(),
            "interrupted": run.interrupted,
            "nodes_finished": run.nodes.len(),
            "nodes_started_not_finished": not_finished,
        }),
    });
    out
}

/// The replay set and compiled SQL of the table and view models that succeeded; `Err(note)`
/// when there is none to write, saying why.
fn replay_artifacts(
    t: &TargetArtifacts,
    run: &RunRecord,
) -> Result<Result<Vec<Artifact>, String>, DbtError> {
    let Some(manifest) = t.manifest.as_ref() else {
        return Ok(Err(
            "no replay set: no manifest.json, so the models' relations are unknown".to_string(),
        ));
    };
    let relation_of = |id: &str| -> Option<String> {
        if let Some(n) = manifest.nodes.get(id) {
            if !matches!(n.resource_type.as_str(), "model" | "seed" | "snapshot") {
                return None;
            }
            return Some(table_key(n.schema.as_deref()?, n.identifier()?));
        }
        let s = manifest.sources.get(id)?;
        Some(table_key(
            s.schema.as_deref()?,
            s.identifier.as_deref().or(s.name.as_deref())?,
        ))
    };
    let compiled_of = |id: &str| -> Option<&String> {
        t.run_results
            .as_ref()
            .and_then(|r| r.results.iter().find(|r| r.unique_id == id))
            .and_then(|r| r.compiled_code.as_ref())
            .or_else(|| {
                manifest
                    .nodes
                    .get(id)
                    .and_then(|n| n.compiled_code.as_ref())
            })
            .filter(|c| !c.trim().is_empty())
    };
    let mut picked: Vec<(&NodeRecord, ReplayModel, Vec<u8>)> = Vec::new();
    for n in &run.nodes {
        let Some(mat) = n.materialization.as_deref() else {
            continue;
        };
        if n.resource_type != "model" || n.status != "success" || !matches!(mat, "table" | "view") {
            continue;
        }
        let (Some(relation), Some(code)) = (relation_of(&n.unique_id), compiled_of(&n.unique_id))
        else {
            continue;
        };
        let path = format!("replay/compiled/{}.sql", n.unique_id);
        if clyra_evidence::zipstore::check_path(&path).is_err()
            || replay_set::parse_relation(&relation).is_none()
        {
            continue;
        }
        let depends_on: BTreeSet<String> = manifest
            .nodes
            .get(&n.unique_id)
            .map(|m| {
                m.depends_on
                    .nodes
                    .iter()
                    .filter_map(|d| relation_of(d))
                    .collect()
            })
            .unwrap_or_default();
        let model = ReplayModel {
            unique_id: n.unique_id.clone(),
            relation: relation.clone(),
            materialization: mat.to_string(),
            compiled_sql: path,
            compiled_sql_sha256: sha256_hex(code.as_bytes()),
            depends_on: depends_on.into_iter().filter(|d| *d != relation).collect(),
        };
        picked.push((n, model, code.as_bytes().to_vec()));
    }
    if picked.is_empty() {
        return Ok(Err(
            "no replay set: no table or view model succeeded with compiled code".to_string(),
        ));
    }
    // The order the run built them in: by execute start, then unique_id.
    picked.sort_by(|a, b| {
        (a.0.started_at.is_none(), &a.0.started_at, &a.0.unique_id).cmp(&(
            b.0.started_at.is_none(),
            &b.0.started_at,
            &b.0.unique_id,
        ))
    });
    let set = ReplaySet {
        format: replay_set::FORMAT.to_string(),
        dbt_invocation_id: Some(run.dbt.invocation_id.clone()),
        snapshot_after: SNAPSHOT_AFTER_PATH.to_string(),
        models: picked.iter().map(|(_, m, _)| m.clone()).collect(),
    };
    let bytes = set
        .to_canonical_json()
        .map_err(|e| DbtError::canonical("replay/replay.json", e))?;
    // The replay set's own reader checks everything replay relies on.
    if let Err(e) = ReplaySet::from_json(&bytes) {
        return Ok(Err(format!("no replay set: {e}")));
    }
    let mut out = vec![Artifact {
        path: replay_set::SET_PATH.to_string(),
        bytes,
        media_type: "application/json".to_string(),
    }];
    for (_, m, sql) in picked {
        out.push(Artifact {
            path: m.compiled_sql,
            bytes: sql,
            media_type: "application/sql".to_string(),
        });
    }
    Ok(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_always_fit_the_journal() {
        let inv = "2558b890-ae1e-4eb4-a44b-40964ebbbf36";
        assert_eq!(
            event_id(inv, "dbt.model.finished", Some("model.p.a")),
            format!("dbt:{inv}:dbt.model.finished:model.p.a")
        );
        assert_eq!(
            event_id(inv, "dbt.run.started", None),
            format!("dbt:{inv}:dbt.run.started")
        );
        let long = format!("test.p.{}", "x".repeat(300));
        for (i, u) in [
            (inv.to_string(), long.clone()),
            ("i".repeat(500), "a\nb".to_string()),
            ("in\u{7}v".to_string(), long),
        ] {
            let id = event_id(&i, "dbt.test.finished", Some(&u));
            assert!(id.len() <= MAX_EVENT_ID_BYTES, "{id}");
            assert!(!id.chars().any(char::is_control), "{id:?}");
            assert!(id.contains(":dbt.test.finished:sha256:"), "{id}");
            assert_eq!(id, event_id(&i, "dbt.test.finished", Some(&u)));
        }
    }
}
