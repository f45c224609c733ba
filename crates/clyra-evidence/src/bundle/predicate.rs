//! DEF and PEF predicates (spec/def, spec/pef, spec/common/bundle.md §9): their shapes, the
//! metrics and SLA members the builder computes, and a predicate derived from the journal for
//! producers that have none of their own.
//!
//! The structs are the structural schema: they reject unknown members everywhere except inside
//! `dbt`, which the DEF spec marks as open.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::model::{utc, utc_opt, Governance, Kind};
use crate::digest::Digest;

/// `run`: the run the evidence covers (DEF and PEF).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// The run's id.
    pub run_id: String,
    /// When it started.
    #[serde(with = "utc")]
    pub started_at: Timestamp,
    /// When it finished.
    #[serde(with = "utc")]
    pub finished_at: Timestamp,
    /// How it ended.
    pub status: RunStatus,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Everything succeeded.
    Success,
    /// The run failed.
    Error,
    /// Some steps succeeded, or the outcome was not recorded.
    Partial,
    /// The run was cancelled.
    Cancelled,
}

/// `metrics` (§9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// How long building took, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_ms: Option<u64>,
    /// Sum of the sizes of the manifest's `files`.
    pub payload_bytes: u64,
    /// Number of journal entries.
    pub entries: u64,
    /// Latency percentiles, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    /// Named durations, in milliseconds (`{"run": 44700, "models": 37412}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durations_ms: Option<BTreeMap<String, f64>>,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// How an SLA compares its value with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlaOp {
    /// `value <= threshold`.
    #[serde(rename = "<=")]
    Le,
    /// `value >= threshold`.
    #[serde(rename = ">=")]
    Ge,
}

impl SlaOp {
    /// Whether `value op threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            SlaOp::Le => value <= threshold,
            SlaOp::Ge => value >= threshold,
        }
    }
}

/// One `sla` item: `met` must be `value op threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// The metric: a member of `metrics`, dotted for nested ones (`latency_ms.p95`).
    pub metric: String,
    /// The comparison.
    pub op: SlaOp,
    /// The threshold.
    pub threshold: f64,
    /// The measured value.
    pub value: f64,
    /// Whether `value op threshold` holds.
    pub met: bool,
}

/// A point in a warehouse's own history (DEF).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// `postgres`, `snowflake`, `databricks`, `bigquery` or another platform.
    pub platform: String,
    /// `wal_lsn`, `query_id`, `delta_version`, `job_id` or another kind.
    pub kind: String,
    /// The anchor itself.
    pub value: String,
    /// The journal entry that recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When it was read.
    #[serde(default, with = "utc_opt", skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

/// dbt run metadata (DEF). Open: members dbt adds later are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbtInfo {
    /// dbt version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Adapter (`postgres`, `snowflake`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// dbt's invocation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// The command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Models run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<DbtModel>>,
    /// Tests run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Vec<DbtTest>>,
    /// Anything else dbt reports.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One dbt model result. Open, as the spec says: members such as `query_id`, `compiled_sha256`,
/// `checksum` or `timing` are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbtModel {
    /// `model.<project>.<name>`.
    pub unique_id: String,
    /// dbt's status.
    pub status: String,
    /// Rows affected, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_affected: Option<u64>,
    /// Execution time in milliseconds, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_ms: Option<f64>,
    /// Anything else recorded for the model.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One dbt test result. Open, like [`DbtModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbtTest {
    /// `test.<project>.<name>`.
    pub unique_id: String,
    /// dbt's status.
    pub status: String,
    /// Failing rows, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u64>,
    /// Anything else recorded for the test.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Dataset metadata (never row data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// The dataset's name.
    pub name: String,
    /// `input` or `output`.
    pub role: DatasetRole,
    /// Row count, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u64>,
    /// Digest of its schema, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_sha256: Option<Digest>,
}

/// Whether a dataset was read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetRole {
    /// Read by the run.
    Input,
    /// Written by the run.
    Output,
}

/// The DEF predicate (`https://clyra.dev/def/v0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefPredicate {
    /// The run.
    pub run: RunInfo,
    /// Warehouse anchors; may be empty.
    pub anchors: Vec<Anchor>,
    /// dbt metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dbt: Option<DbtInfo>,
    /// Datasets read and written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasets: Option<Vec<Dataset>>,
    /// Metrics (§9).
    pub metrics: Metrics,
    /// SLAs (§9); may be empty.
    pub sla: Vec<Sla>,
}

/// What kind of automation acted (PEF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutomationKind {
    /// An AI agent.
    Agent,
    /// A reverse-ETL sync.
    ReverseEtl,
    /// A voice agent.
    Voice,
    /// A workflow or service.
    Workflow,
}

/// The automation that acted (PEF).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Automation {
    /// Its kind.
    pub kind: AutomationKind,
    /// Its id.
    pub id: String,
    /// On whose behalf it acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

/// A gateway decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Allowed as asked.
    Allow,
    /// Allowed after the gateway repaired the call.
    Repair,
    /// Refused.
    Block,
    /// Held for a human.
    RequireApproval,
}

impl Decision {
    fn parse(s: &str) -> Option<Decision> {
        match s {
            "allow" => Some(Decision::Allow),
            "repair" => Some(Decision::Repair),
            "block" => Some(Decision::Block),
            "require_approval" => Some(Decision::RequireApproval),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Repair => "repair",
            Decision::Block => "block",
            Decision::RequireApproval => "require_approval",
        }
    }
}

/// Counts of gateway decisions (PEF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decisions {
    /// `allow` decisions.
    pub allow: u64,
    /// `repair` decisions.
    pub repair: u64,
    /// `block` decisions.
    pub block: u64,
    /// `require_approval` decisions.
    pub require_approval: u64,
}

/// One tool call (PEF); arguments and results are committed by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The journal entry of the decision.
    pub seq: u64,
    /// The tool.
    pub tool: String,
    /// The gateway's decision.
    pub decision: Decision,
    /// Digest of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_sha256: Option<Digest>,
    /// Digest of the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_sha256: Option<Digest>,
}

/// One approval (PEF).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The journal entry of the approval.
    pub seq: u64,
    /// The tool approved.
    pub tool: String,
    /// Who approved.
    pub approver: String,
    /// Whether a second person had to approve.
    pub two_person_rule: bool,
}

/// One gateway receipt (PEF).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The journal entry of the receipt.
    pub seq: u64,
    /// Digest of the receipt.
    pub receipt_sha256: Digest,
}

/// The PEF predicate (`https://clyra.dev/pef/v0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PefPredicate {
    /// The run.
    pub run: RunInfo,
    /// The automation that acted.
    pub automation: Automation,
    /// Decision counts.
    pub decisions: Decisions,
    /// Tool calls, one per call.
    pub tool_calls: Vec<ToolCall>,
    /// Approvals.
    pub approvals: Vec<Approval>,
    /// Gateway receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<Vec<Receipt>>,
    /// Metrics (§9).
    pub metrics: Metrics,
    /// SLAs (§9).
    pub sla: Vec<Sla>,
}

/// Looks up `metric` in a `metrics` object: a member name, dotted for nested members
/// (`latency_ms.p95`, `durations_ms.run`). `None` unless it names a number.
pub fn metric_value(metrics: &Value, metric: &str) -> Option<f64> {
    if metric.is_empty() {
        return None;
    }
    metric
        .split('.')
        .try_fold(metrics, |v, key| v.get(key))
        .and_then(Value::as_f64)
}

/// The journal entries a predicate names by `seq` (anchors, tool calls, approvals, receipts), as
/// `(JSON pointer, seq)`.
pub(crate) fn named_seqs(predicate: &Value) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for member in ["anchors", "tool_calls", "approvals", "receipts"] {
        if let Some(items) = predicate.get(member).and_then(Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                if let Some(seq) = item.get("seq").and_then(Value::as_u64) {
                    out.push((format!("/{member}/{i}/seq"), seq));
                }
            }
        }
    }
    out
}

/// Why no predicate could be derived from the journal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot derive the predicate from entry seq {seq} (`{kind}`): {reason}")]
pub struct DeriveError {
    /// The entry's `seq`.
    pub seq: u64,
    /// The entry's `kind`.
    pub kind: String,
    /// What is missing or wrong.
    pub reason: String,
}

/// Builds a predicate's domain members from journal entries as they are appended.
#[derive(Debug, Clone)]
pub(crate) struct Deriver {
    kind: Kind,
    first_ts: Option<String>,
    last_ts: Option<String>,
    status: Option<RunStatus>,
    anchors: Vec<Value>,
    dbt: Map<String, Value>,
    models: Vec<Value>,
    tests: Vec<Value>,
    automation: Option<Value>,
    decisions: Decisions,
    tool_calls: Vec<Value>,
    approvals: Vec<Value>,
    error: Option<DeriveError>,
}

fn str_member<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Maps a status word from a `*.run.finished` entry to a run status.
fn run_status(word: &str) -> RunStatus {
    match word {
        "success" | "succeeded" | "pass" | "ok" => RunStatus::Success,
        "error" | "failed" | "fail" | "failure" => RunStatus::Error,
        "cancelled" | "canceled" => RunStatus::Cancelled,
        _ => RunStatus::Partial,
    }
}

impl Deriver {
    pub(crate) fn new(kind: Kind) -> Self {
        Deriver {
            kind,
            first_ts: None,
            last_ts: None,
            status: None,
            anchors: Vec::new(),
            dbt: Map::new(),
            models: Vec::new(),
            tests: Vec::new(),
            automation: None,
            decisions: Decisions::default(),
            tool_calls: Vec::new(),
            approvals: Vec::new(),
            error: None,
        }
    }

    /// Observes one chained entry (already checked to have `seq`, `ts` and `kind`).
    pub(crate) fn observe(&mut self, entry: &Value) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_observe(entry) {
            self.error = Some(e);
        }
    }

    fn try_observe(&mut self, entry: &Value) -> Result<(), DeriveError> {
        let seq = entry.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let kind = str_member(entry, "kind").unwrap_or("");
        let ts = str_member(entry, "ts").unwrap_or("");
        let fail = |reason: &str| DeriveError {
            seq,
            kind: kind.to_owned(),
            reason: reason.to_owned(),
        };
        if self.first_ts.is_none() {
            self.first_ts = Some(ts.to_owned());
        }
        self.last_ts = Some(ts.to_owned());
        // A journal entry (it names its `body_policy`) carries the event's data in `body`; the
        // journal's own members win over the body's. A hash-only entry has no data to derive from.
        let merged;
        let entry = if entry.get("body_policy").is_some() {
            match (entry.get("body"), entry.as_object()) {
                (Some(Value::Object(body)), Some(top)) => {
                    let mut m = body.clone();
                    for (k, v) in top {
                        if k != "body" {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                    merged = Value::Object(m);
                    &merged
                }
                _ => return Ok(()),
            }
        } else {
            entry
        };
        if kind == "run.finished" || kind.ends_with(".run.finished") {
            if let Some(status) = str_member(entry, "status") {
                self.status = Some(run_status(status));
            }
        }
        match (self.kind, kind) {
            (Kind::Def, "warehouse.anchor") => {
                let anchor = entry
                    .get("anchor")
                    .ok_or_else(|| fail("no `anchor` object"))?;
                let mut out = Map::new();
                for key in ["platform", "kind", "value"] {
                    let v = str_member(anchor, key)
                        .ok_or_else(|| fail(&format!("`anchor.{key}` is not a string")))?;
                    out.insert(key.to_owned(), json!(v));
                }
                out.insert("seq".to_owned(), json!(seq));
                out.insert("at".to_owned(), json!(ts));
                self.anchors.push(Value::Object(out));
            }
            (Kind::Def, "dbt.run.started") => {
                let meta = entry.get("dbt").unwrap_or(entry);
                for key in ["version", "adapter", "invocation_id", "command", "target"] {
                    if let Some(v) = str_member(meta, key).or_else(|| str_member(entry, key)) {
                        self.dbt.insert(key.to_owned(), json!(v));
                    }
                }
            }
            (Kind::Def, "dbt.model.finished") => {
                let id = str_member(entry, "unique_id")
                    .or_else(|| str_member(entry, "model"))
                    .ok_or_else(|| fail("no `model` or `unique_id`"))?;
                let status = str_member(entry, "status").ok_or_else(|| fail("no `status`"))?;
                let mut m = Map::new();
                m.insert("unique_id".to_owned(), json!(id));
                m.insert("status".to_owned(), json!(status));
                if let Some(rows) = entry.get("rows_affected").and_then(Value::as_u64) {
                    m.insert("rows_affected".to_owned(), json!(rows));
                }
                let ms = entry
                    .get("execution_ms")
                    .or_else(|| entry.get("duration_ms"));
                if let Some(ms) = ms.filter(|v| v.is_number()) {
                    m.insert("execution_ms".to_owned(), ms.clone());
                }
                copy_extra(entry, &mut m, DBT_MODEL_KNOWN);
                self.models.push(Value::Object(m));
            }
            (Kind::Def, "dbt.test.finished") => {
                let id = str_member(entry, "unique_id")
                    .or_else(|| str_member(entry, "test"))
                    .ok_or_else(|| fail("no `test` or `unique_id`"))?;
                let status = str_member(entry, "status").ok_or_else(|| fail("no `status`"))?;
                let mut t = Map::new();
                t.insert("unique_id".to_owned(), json!(id));
                t.insert("status".to_owned(), json!(status));
                if let Some(failures) = entry.get("failures").and_then(Value::as_u64) {
                    t.insert("failures".to_owned(), json!(failures));
                }
                copy_extra(entry, &mut t, DBT_TEST_KNOWN);
                self.tests.push(Value::Object(t));
            }
            (Kind::Pef, "gateway.decision") => {
                let tool = str_member(entry, "tool").ok_or_else(|| fail("no `tool`"))?;
                let word = str_member(entry, "decision").ok_or_else(|| fail("no `decision`"))?;
                let decision = Decision::parse(word)
                    .ok_or_else(|| fail(&format!("unknown decision `{word}`")))?;
                if self.automation.is_none() {
                    self.automation =
                        Some(automation_of(entry.get("actor")).map_err(|r| fail(&r))?);
                }
                let count = match decision {
                    Decision::Allow => &mut self.decisions.allow,
                    Decision::Repair => &mut self.decisions.repair,
                    Decision::Block => &mut self.decisions.block,
                    Decision::RequireApproval => &mut self.decisions.require_approval,
                };
                *count = count.saturating_add(1);
                let mut call = Map::new();
                call.insert("seq".to_owned(), json!(seq));
                call.insert("tool".to_owned(), json!(tool));
                call.insert("decision".to_owned(), json!(decision.as_str()));
                for key in ["args_sha256", "result_sha256"] {
                    if let Some(d) = str_member(entry, key) {
                        Digest::from_hex(d)
                            .map_err(|e| fail(&format!("`{key}` is not a digest: {e}")))?;
                        call.insert(key.to_owned(), json!(d));
                    }
                }
                self.tool_calls.push(Value::Object(call));
            }
            (Kind::Pef, "approval.granted") => {
                let tool = str_member(entry, "tool").ok_or_else(|| fail("no `tool`"))?;
                let approver =
                    str_member(entry, "approver").ok_or_else(|| fail("no `approver`"))?;
                let two = entry
                    .get("two_person_rule")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.approvals.push(json!({
                    "seq": seq, "tool": tool, "approver": approver, "two_person_rule": two
                }));
            }
            _ => {}
        }
        Ok(())
    }

    /// The derived domain members (everything but `metrics` and `sla`).
    pub(crate) fn predicate(&self, governance: &Governance) -> Result<Value, DeriveError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let run = json!({
            "run_id": governance.run_id,
            "started_at": self.first_ts.clone().unwrap_or_default(),
            "finished_at": self.last_ts.clone().unwrap_or_default(),
            "status": self.status.unwrap_or(RunStatus::Partial),
        });
        let mut p = Map::new();
        p.insert("run".to_owned(), run);
        match self.kind {
            Kind::Def => {
                p.insert("anchors".to_owned(), Value::Array(self.anchors.clone()));
                if !self.dbt.is_empty() || !self.models.is_empty() || !self.tests.is_empty() {
                    let mut dbt = self.dbt.clone();
                    dbt.insert("models".to_owned(), Value::Array(self.models.clone()));
                    dbt.insert("tests".to_owned(), Value::Array(self.tests.clone()));
                    p.insert("dbt".to_owned(), Value::Object(dbt));
                }
            }
            Kind::Pef => {
                let automation = self.automation.clone().unwrap_or_else(|| {
                    let id = governance
                        .actors
                        .first()
                        .unwrap_or(&governance.run_id)
                        .clone();
                    json!({"kind": "workflow", "id": id})
                });
                p.insert("automation".to_owned(), automation);
                let d = self.decisions;
                p.insert(
                    "decisions".to_owned(),
                    json!({"allow": d.allow, "repair": d.repair, "block": d.block,
                           "require_approval": d.require_approval}),
                );
                p.insert(
                    "tool_calls".to_owned(),
                    Value::Array(self.tool_calls.clone()),
                );
                p.insert("approvals".to_owned(), Value::Array(self.approvals.clone()));
            }
        }
        Ok(Value::Object(p))
    }
}

/// `automation` from a gateway decision's `actor` (`{type, id, on_behalf_of?}`).
fn automation_of(actor: Option<&Value>) -> Result<Value, String> {
    let actor = actor.ok_or("no `actor`")?;
    let id = str_member(actor, "id").ok_or("`actor.id` is not a string")?;
    let kind = match str_member(actor, "type").unwrap_or("agent") {
        "agent" => "agent",
        "reverse_etl" => "reverse_etl",
        "voice" => "voice",
        "workflow" | "service" => "workflow",
        other => return Err(format!("unknown actor type `{other}`")),
    };
    let mut a = Map::new();
    a.insert("kind".to_owned(), json!(kind));
    a.insert("id".to_owned(), json!(id));
    if let Some(who) = str_member(actor, "on_behalf_of") {
        a.insert("on_behalf_of".to_owned(), json!(who));
    }
    Ok(Value::Object(a))
}

/// Members of a journal entry or raw event itself, not of the dbt node it describes.
const ENTRY_MEMBERS: &[&str] = &[
    "run_id",
    "kind",
    "ts",
    "id",
    "seq",
    "run",
    "run_seq",
    "run_prev",
    "session",
    "actor",
    "prev",
    "v",
    "tenant",
    "recorded_at",
    "body",
    "body_policy",
    "body_sha256",
];

/// Members of a `dbt.model.finished` entry read above.
const DBT_MODEL_KNOWN: &[&str] = &[
    "unique_id",
    "model",
    "status",
    "rows_affected",
    "execution_ms",
    "duration_ms",
];

/// The same for `dbt.test.finished`.
const DBT_TEST_KNOWN: &[&str] = &["unique_id", "test", "status", "failures"];

/// Copies the members of `entry` that are neither in `known` nor [`ENTRY_MEMBERS`] into `out`
/// (the spec keeps dbt models and tests open, so what the recorder adds, such as `query_id` or
/// `compiled_sha256`, reaches the predicate).
fn copy_extra(entry: &Value, out: &mut Map<String, Value>, known: &[&str]) {
    if let Some(obj) = entry.as_object() {
        for (k, v) in obj {
            let k_str = k.as_str();
            if !known.contains(&k_str) && !ENTRY_MEMBERS.contains(&k_str) && !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gov() -> Governance {
        Governance {
            tenant: "acme".into(),
            environment: "prod".into(),
            run_id: "run-1".into(),
            actors: vec!["airflow".into()],
        }
    }

    #[test]
    fn metric_lookup_follows_dots() {
        let m = json!({"entries": 3, "latency_ms": {"p95": 12.5}});
        assert_eq!(metric_value(&m, "entries"), Some(3.0));
        assert_eq!(metric_value(&m, "latency_ms.p95"), Some(12.5));
        assert_eq!(metric_value(&m, "latency_ms"), None);
        assert_eq!(metric_value(&m, "nope"), None);
        assert_eq!(metric_value(&m, ""), None);
    }

    #[test]
    fn sla_ops() {
        assert!(SlaOp::Le.holds(1.0, 1.0));
        assert!(!SlaOp::Le.holds(2.0, 1.0));
        assert!(SlaOp::Ge.holds(2.0, 1.0));
        assert_eq!(serde_json::to_value(SlaOp::Ge).unwrap(), json!(">="));
    }

    #[test]
    fn def_derivation_reads_anchors_models_tests_and_status() {
        let mut d = Deriver::new(Kind::Def);
        for e in [
            json!({"seq": 0, "ts": "2026-01-01T00:00:00Z", "kind": "dbt.run.started",
                   "dbt": {"version": "1.9.4", "adapter": "postgres"}}),
            json!({"seq": 1, "ts": "2026-01-01T00:00:01Z", "kind": "warehouse.anchor",
                   "anchor": {"platform": "postgres", "kind": "wal_lsn", "value": "0/1"}}),
            json!({"seq": 2, "ts": "2026-01-01T00:00:02Z", "kind": "dbt.model.finished",
                   "model": "model.a", "status": "success", "rows_affected": 5, "duration_ms": 7}),
            json!({"seq": 3, "ts": "2026-01-01T00:00:03Z", "kind": "dbt.test.finished",
                   "test": "test.a", "status": "pass", "failures": 0}),
            json!({"seq": 4, "ts": "2026-01-01T00:00:04Z", "kind": "dbt.run.finished", "status": "error"}),
        ] {
            d.observe(&e);
        }
        let p = d.predicate(&gov()).unwrap();
        assert_eq!(
            p["run"],
            json!({"run_id": "run-1", "started_at": "2026-01-01T00:00:00Z",
                   "finished_at": "2026-01-01T00:00:04Z", "status": "error"})
        );
        assert_eq!(
            p["anchors"],
            json!([{"platform": "postgres", "kind": "wal_lsn", "value": "0/1", "seq": 1,
                    "at": "2026-01-01T00:00:01Z"}])
        );
        assert_eq!(p["dbt"]["adapter"], "postgres");
        assert_eq!(
            p["dbt"]["models"],
            json!([{"unique_id": "model.a", "status": "success", "rows_affected": 5, "execution_ms": 7}])
        );
        assert_eq!(
            p["dbt"]["tests"],
            json!([{"unique_id": "test.a", "status": "pass", "failures": 0}])
        );
    }

    #[test]
    fn journal_entries_derive_from_their_body_and_hash_only_ones_are_skipped() {
        let mut d = Deriver::new(Kind::Def);
        for e in [
            json!({"seq": 0, "ts": "2026-01-01T00:00:00Z", "kind": "dbt.model.finished",
                   "body_policy": "full", "body": {"unique_id": "model.a", "status": "success", "seq": 99}}),
            json!({"seq": 1, "ts": "2026-01-01T00:00:01Z", "kind": "dbt.model.finished",
                   "body_policy": "hash", "body_sha256": "00"}),
        ] {
            d.observe(&e);
        }
        let p = d.predicate(&gov()).unwrap();
        assert_eq!(
            p["dbt"]["models"],
            json!([{"unique_id": "model.a", "status": "success"}])
        );
        assert_eq!(p["run"]["finished_at"], "2026-01-01T00:00:01Z");
    }

    #[test]
    fn pef_derivation_counts_decisions_and_names_bad_entries() {
        let mut d = Deriver::new(Kind::Pef);
        let actor = json!({"type": "agent", "id": "copilot", "on_behalf_of": "user:ana"});
        for (seq, decision) in [(0, "allow"), (1, "require_approval"), (3, "block")] {
            d.observe(
                &json!({"seq": seq, "ts": "2026-01-01T00:00:00Z", "kind": "gateway.decision",
                              "actor": actor, "tool": "t", "decision": decision}),
            );
        }
        d.observe(
            &json!({"seq": 2, "ts": "2026-01-01T00:00:00Z", "kind": "approval.granted",
                          "tool": "t", "approver": "lee", "two_person_rule": true}),
        );
        let p = d.predicate(&gov()).unwrap();
        assert_eq!(
            p["automation"],
            json!({"kind": "agent", "id": "copilot", "on_behalf_of": "user:ana"})
        );
        assert_eq!(
            p["decisions"],
            json!({"allow": 1, "repair": 0, "block": 1, "require_approval": 1})
        );
        assert_eq!(p["tool_calls"].as_array().unwrap().len(), 3);
        assert_eq!(p["approvals"][0]["two_person_rule"], true);
        assert_eq!(p["run"]["status"], "partial");

        let mut bad = Deriver::new(Kind::Pef);
        bad.observe(
            &json!({"seq": 9, "ts": "2026-01-01T00:00:00Z", "kind": "gateway.decision",
                            "actor": actor, "tool": "t", "decision": "maybe"}),
        );
        let err = bad.predicate(&gov()).unwrap_err();
        assert_eq!(err.seq, 9);
        assert!(err.reason.contains("maybe"), "{err}");
    }
}
