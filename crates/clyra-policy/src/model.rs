//! The policy v4 data model: Rust types mirroring `spec/policy/schemas/policy_v4.schema.json`.
//!
//! The schema is the single definition; these types follow it field for field, with
//! `deny_unknown_fields` everywhere so that a field the schema does not know is an error here too.
//! Optional fields are `Option` (or an empty `Vec`) and are left out when serialized, so that a
//! policy re-serialized from these types says exactly what its file said.
//!
//! Values the schema constrains by pattern (durations, identifiers) are kept as the strings the
//! file wrote; [`Duration::parse`] turns a duration into milliseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole policy (version 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Always 4 once loaded (earlier versions are mapped on load).
    pub version: u32,
    /// Name, version and owners.
    pub metadata: Metadata,
    /// Global mode; `enforce` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// What happens when nothing matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Defaults>,
    /// Rules not tied to a section.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// dbt, warehouse guards, reverse-ETL activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_platform: Option<DataPlatform>,
    /// Detectors and the kill-switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genai_security: Option<GenaiSecurity>,
    /// Calling windows, disclosure, consent, opt-out, barge-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_compliance: Option<VoiceCompliance>,
    /// Idempotency, rate limits, tenant fences, SQL guard, loop breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    /// JSON Schemas per route or tool (SchemaLock).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<RouteSchema>,
    /// HITL checkpoints and two-person rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Approvals>,
    /// Retention per evidence class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retention: Vec<Retention>,
}

impl Policy {
    /// The global mode (`enforce` when the file says nothing).
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or(Mode::Enforce)
    }
}

/// `enforce` applies verdicts; `shadow` evaluates and records them but lets the action through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Verdicts take effect.
    Enforce,
    /// Verdicts are recorded; the effective verdict is `allow`.
    Shadow,
}

impl Mode {
    /// The name used in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}

/// What a rule (or a built-in check) decides about an action. Ordered by severity:
/// `Allow < Repair < RequireApproval < Block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Let it through.
    Allow,
    /// Let it through after applying a patch.
    Repair,
    /// Hold it until a human approves.
    RequireApproval,
    /// Refuse it.
    Block,
}

impl Verdict {
    /// The name used in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Repair => "repair",
            Verdict::RequireApproval => "require_approval",
            Verdict::Block => "block",
        }
    }
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Identifier of the policy.
    pub name: String,
    /// The owners' version label (free text, e.g. `2026.12.1`).
    pub version: String,
    /// Who answers for this policy (emails, teams).
    pub owners: Vec<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `defaults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Verdict when nothing matches: `allow` (default) or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

/// One glob or a list of globs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Globs {
    /// A single pattern.
    One(String),
    /// Any of these patterns.
    Many(Vec<String>),
}

impl Globs {
    /// The patterns, one or many.
    pub fn patterns(&self) -> &[String] {
        match self {
            Globs::One(p) => std::slice::from_ref(p),
            Globs::Many(v) => v,
        }
    }
}

/// Which actions a rule applies to: every field present must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Action kind, e.g. `warehouse.dml`, `tool.call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Globs>,
    /// Tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Globs>,
    /// Actor id, e.g. `user:alice@acme.example`, `agent:copilot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Globs>,
    /// Route, e.g. `POST /v1/orders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Globs>,
    /// Tool name, e.g. `sql.query`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<Globs>,
}

/// A rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique across the policy.
    pub id: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which actions.
    #[serde(rename = "match")]
    pub matches: Match,
    /// A CEL condition over the action context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// What the rule decides.
    pub verdict: Verdict,
    /// Why (shown to the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Overrides the section's and the policy's mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// For `require_approval`: the checkpoint to request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// For `repair`: RFC 6902 operations on the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Vec<PatchOp>>,
}

/// One RFC 6902 operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchOp {
    /// `add`, `remove`, `replace`, `move`, `copy` or `test`.
    pub op: PatchOpKind,
    /// JSON pointer of the target.
    pub path: String,
    /// Source pointer for `move` and `copy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Value for `add`, `replace` and `test`. `value: null` is `Some(Value::Null)`: a patch
    /// may set a member to null.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_value"
    )]
    pub value: Option<Value>,
}

/// A member that is present is `Some`, even when it is `null` (serde's `Option` would make that
/// `None`).
fn present_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// RFC 6902 operation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

/// `data_platform`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPlatform {
    /// Overrides the policy's mode for this section's checks and rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// dbt hooks and capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dbt: Option<Dbt>,
    /// Warehouse guards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_guard: Option<WarehouseGuard>,
    /// Reverse-ETL destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activation: Vec<Activation>,
    /// Rules of this section.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// `data_platform.dbt`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dbt {
    /// Install the `clyra_guard` run hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<bool>,
    /// What to capture: `manifest`, `run_results`, `compiled_code`, `lineage`, `sources`,
    /// `snapshots`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capture: Vec<String>,
}

/// `data_platform.warehouse_guard`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseGuard {
    /// DML touching more rows than this needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows_affected: Option<u64>,
    /// DML touching more than this percentage of the table needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_percent_affected: Option<f64>,
    /// Schemas (globs) where DDL and DML are blocked unless a rule allows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_schemas: Vec<String>,
    /// Checkpoint to request for mass operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// One entry of `data_platform.activation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    /// Destination globs, e.g. `salesforce.*`.
    pub destination: Globs,
    /// `false` blocks every sync to these destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
    /// Syncs of more records are blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records: Option<u64>,
    /// Syncs of more records need approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_above: Option<u64>,
    /// Checkpoint to request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// `genai_security`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenaiSecurity {
    /// Overrides the policy's mode for this section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Detector settings by detector name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detectors: BTreeMap<String, Detector>,
    /// Kill-switch triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_switch: Option<KillSwitch>,
    /// Rules of this section.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// The detector names Clyra knows. A policy naming another is a lint error.
pub const KNOWN_DETECTORS: &[&str] = &[
    "prompt_injection",
    "jailbreak",
    "pii",
    "secrets",
    "toxicity",
    "tool_misuse",
    "data_exfiltration",
];

/// One detector's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detector {
    /// Off when `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Score (0..1) at or above which it fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// What firing means: `block`, `require_approval` or `allow` (record only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Verdict>,
    /// On detector error or timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<FailMode>,
    /// Detector time budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Checkpoint for `require_approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// Fail open (allow) or closed (block) when a detector cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Allow the action.
    FailOpen,
    /// Block the action.
    FailClosed,
}

/// `genai_security.kill_switch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillSwitch {
    /// Triggers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<KillTrigger>,
}

/// A kill-switch trigger: `count` firings of `detector` within `window` stop `scope` for `ttl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillTrigger {
    /// Identifier.
    pub id: String,
    /// Detector name.
    pub detector: String,
    /// Firings.
    pub count: u64,
    /// Window (duration).
    pub window: String,
    /// `tenant`, `route`, `actor` or `global`.
    pub scope: String,
    /// How long the stop lasts (duration).
    pub ttl: String,
}

/// `voice_compliance`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceCompliance {
    /// Overrides the policy's mode for this section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// When calls may be placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_windows: Option<CallingWindows>,
    /// What must be said, and by when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure: Option<Disclosure>,
    /// Consent requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// Words that end the call and record an opt-out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opt_out_keywords: Vec<String>,
    /// Barge-in (interrupting the agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barge_in: Option<BargeIn>,
    /// Rules of this section.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// `voice_compliance.calling_windows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallingWindows {
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`.
    pub end: String,
    /// `callee` or an IANA zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `mon` .. `sun`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
}

/// `voice_compliance.disclosure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    /// The text to speak.
    pub text: String,
    /// Deadline after connect (duration).
    pub deadline: String,
}

/// `voice_compliance.consent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Consent must be on record before calling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Accepted consent types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
}

/// `voice_compliance.barge_in`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BargeIn {
    /// On or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Minimum caller speech before the agent yields (duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_speech: Option<String>,
}

/// `enforcement`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enforcement {
    /// Overrides the policy's mode for this section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Idempotency keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<Idempotency>,
    /// Sliding-window limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimit>,
    /// Tenant fences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_fences: Option<TenantFences>,
    /// SQL guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_guard: Option<SqlGuard>,
    /// Prompt-loop breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_breaker: Option<LoopBreaker>,
    /// Rules of this section.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// `enforcement.idempotency`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Idempotency {
    /// How long a key is remembered (duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Header carrying the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Derive a key from an HMAC of the canonical body when no header is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<bool>,
}

/// One rate limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Identifier.
    pub id: String,
    /// `actor`, `tenant` or `route`: what the window is counted per.
    pub scope: String,
    /// Which actions count.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matches: Option<Match>,
    /// Requests per window.
    pub limit: u64,
    /// Window (duration).
    pub window: String,
    /// Extra requests allowed in a burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

/// `enforcement.tenant_fences`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFences {
    /// Header carrying the verified tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// JSON pointers into the payload naming a tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pointers: Vec<String>,
}

/// `enforcement.sql_guard`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlGuard {
    /// SQL dialect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    /// `ddl`, `multi_statement`, `unbounded_dml`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Statement globs always allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowlist: Vec<String>,
    /// Row limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// JSON pointers where SQL is found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pointers: Vec<String>,
}

/// `enforcement.loop_breaker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopBreaker {
    /// Near-identical requests tolerated per window.
    pub threshold: u64,
    /// Window (duration).
    pub window: String,
    /// Similarity (0..1) above which two requests count as near-identical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    /// Cool-off (duration).
    pub cool_off: String,
}

/// One entry of `schemas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSchema {
    /// Route glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Tool glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The JSON Schema of the body.
    pub schema: Value,
    /// Repair settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
}

/// `schemas[].repair`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repair {
    /// One repair attempt at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Coerce scalar types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coerce_types: Option<bool>,
    /// Drop properties the schema does not allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_unknown: Option<bool>,
    /// Fill in schema defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_defaults: Option<bool>,
}

/// `approvals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approvals {
    /// Lifetime of a resume token (duration; default 15m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<String>,
    /// Lifetime of a pending approval (duration; default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_ttl: Option<String>,
    /// Where pending approvals are announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// The checkpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<Checkpoint>,
}

/// `approvals.webhook`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Environment variable holding the notice's HMAC key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

/// An approval checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Identifier, named by rules.
    pub id: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Identity globs allowed to approve.
    pub approvers: Vec<String>,
    /// Two distinct approvers, neither the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_person: Option<bool>,
    /// Overrides `approvals.token_ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<String>,
    /// Overrides `approvals.pending_ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_ttl: Option<String>,
}

/// One retention entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Evidence class.
    pub class: String,
    /// How long (duration).
    pub keep: String,
    /// The regulation served.
    pub regulation: String,
}

/// A duration as the policy writes it (`90s`, `15m`, `24h`, `7d`, `250ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration {
    /// Milliseconds.
    pub millis: u64,
}

impl Duration {
    /// Parses `<digits><unit>` with unit `ms`, `s`, `m`, `h` or `d`. `None` for anything else
    /// (the schema has already refused it when the policy was loaded).
    pub fn parse(text: &str) -> Option<Duration> {
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        let factor = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        Some(Duration {
            millis: n.checked_mul(factor)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("15m").unwrap().millis, 900_000);
        assert_eq!(Duration::parse("250ms").unwrap().millis, 250);
        assert_eq!(Duration::parse("7d").unwrap().millis, 604_800_000);
        assert!(Duration::parse("m").is_none());
        assert!(Duration::parse("15").is_none());
        assert!(Duration::parse("15w").is_none());
        assert!(Duration::parse("-1s").is_none());
    }

    #[test]
    fn patch_value_null_is_present() {
        let op: PatchOp =
            serde_json::from_value(serde_json::json!({"op": "add", "path": "/x", "value": null}))
                .unwrap();
        assert_eq!(op.value, Some(Value::Null));
        let op: PatchOp =
            serde_json::from_value(serde_json::json!({"op": "remove", "path": "/x"})).unwrap();
        assert_eq!(op.value, None);
        assert_eq!(
            serde_json::to_value(PatchOp {
                op: PatchOpKind::Add,
                path: "/x".into(),
                from: None,
                value: Some(Value::Null)
            })
            .unwrap(),
            serde_json::json!({"op": "add", "path": "/x", "value": null})
        );
    }

    #[test]
    fn verdicts_order_by_severity() {
        assert!(Verdict::Allow < Verdict::Repair);
        assert!(Verdict::Repair < Verdict::RequireApproval);
        assert!(Verdict::RequireApproval < Verdict::Block);
    }
}
