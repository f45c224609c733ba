//! What a decision says (spec/policy/README.md §5): verdicts, findings, obligations.
//!
//! These types serialize with a fixed field order: they are written into journal entries and
//! receipts, so their JSON is part of Clyra's evidence.

use serde::Serialize;

use crate::model::{Mode, PatchOp, Verdict};

/// The outcome of evaluating one action against one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// What the caller must do: the most severe counting finding in `enforce` mode.
    pub verdict: Verdict,
    /// What the policy says, ignoring modes: the most severe counting finding.
    pub evaluated_verdict: Verdict,
    /// `shadow` when `verdict` and `evaluated_verdict` differ.
    pub mode: Mode,
    /// The ids of the counting findings, in evaluation order (built-in checks first).
    pub rule_ids: Vec<String>,
    /// The reasons of the counting findings, in the same order.
    pub reasons: Vec<String>,
    /// Everything that applied: counting, overridden and noted findings.
    pub findings: Vec<Finding>,
    /// What the caller must do besides the verdict (patches, approvals, rate windows).
    pub obligations: Vec<Obligation>,
    /// `sha256:` + hex of the policy in force.
    pub policy_hash: String,
    /// Hex SHA-256 of the action's canonical JSON.
    pub action_sha256: String,
    /// The decision time (RFC 3339, UTC): the action's `time`, else the evaluator's clock;
    /// absent when neither was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl Decision {
    /// Whether the action may proceed as is (`allow`) or after its repairs (`repair`).
    pub fn proceeds(&self) -> bool {
        matches!(self.verdict, Verdict::Allow | Verdict::Repair)
    }

    /// The payload after the enforced repairs, applied in rule order (RFC 6902). Shadowed
    /// repairs are not applied. `payload` is returned unchanged when there are none.
    pub fn apply_repairs(
        &self,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, super::PatchError> {
        let mut out = payload.clone();
        for o in self.enforced_obligations() {
            if let Obligation::Repair { patch, .. } = o {
                out = super::apply_patch(&out, patch)?;
            }
        }
        Ok(out)
    }

    /// The obligations the caller must act on: those whose mode is `enforce`.
    pub fn enforced_obligations(&self) -> impl Iterator<Item = &Obligation> {
        self.obligations
            .iter()
            .filter(|o| o.mode() == Mode::Enforce)
    }
}

/// Where a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A rule of the policy.
    Rule,
    /// A built-in check derived from section settings (§5.1).
    Builtin,
}

/// One rule or built-in check that applied to the action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule's id, or the built-in check's fixed id
    /// (e.g. `data_platform.warehouse_guard.protected_schemas`).
    pub rule_id: String,
    /// Rule or built-in check.
    pub source: Source,
    /// `rules` for top-level rules, else the section (`data_platform`, `genai_security`, ...).
    pub section: String,
    /// What it decides.
    pub verdict: Verdict,
    /// Its mode: the rule's, else its section's, else the policy's.
    pub mode: Mode,
    /// Whether it takes part in the evaluated verdict. Overridden built-in checks, `allow` rules
    /// whose condition failed, and notes (a detector that errored with `fail_open`, a detector
    /// whose action is `allow`) do not count.
    pub counting: bool,
    /// A built-in check set aside by a matching `allow` rule (§5.3).
    pub overridden: bool,
    /// The condition's evaluation error (the finding fails closed unless the rule allows), or the
    /// detector's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why, for people.
    pub reason: String,
}

/// What the caller must do besides honoring the verdict.
///
/// Every obligation carries the mode of what produced it: a caller acts on the `enforce` ones
/// (see [`Decision::enforced_obligations`]) and may log the `shadow` ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Obligation {
    /// Apply this RFC 6902 patch to the payload before proceeding.
    Repair {
        /// The repair rule.
        rule_id: String,
        /// The operations, in order.
        patch: Vec<PatchOp>,
        /// The rule's mode.
        mode: Mode,
    },
    /// Hold the action until the checkpoint's approvers approve it.
    Approval {
        /// The rule or built-in check asking for it.
        rule_id: String,
        /// The checkpoint id (`None` when the rule or setting names none: nobody can approve).
        checkpoint: Option<String>,
        /// Identity globs allowed to approve (from `approvals.checkpoints`).
        approvers: Vec<String>,
        /// Two distinct approvers, neither the requester.
        two_person: bool,
        /// Hex SHA-256 of the canonical JSON of the action's payload (of `null` without one): the
        /// approval is for exactly this payload.
        payload_sha256: String,
        /// The finding's mode.
        mode: Mode,
    },
    /// Count the action in this rate window.
    RateLimit {
        /// The `enforcement.rate_limits` entry.
        id: String,
        /// What the window is counted under, e.g. `actor:agent:copilot`.
        key: String,
        /// Requests per window.
        limit: u64,
        /// The window in milliseconds.
        window_ms: u64,
        /// Extra requests allowed in a burst.
        burst: u64,
        /// The enforcement section's mode.
        mode: Mode,
    },
}

impl Obligation {
    /// The obligation's type name as serialized (`repair`, `approval`, `rate_limit`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Obligation::Repair { .. } => "repair",
            Obligation::Approval { .. } => "approval",
            Obligation::RateLimit { .. } => "rate_limit",
        }
    }

    /// The mode of what produced it.
    pub fn mode(&self) -> Mode {
        match self {
            Obligation::Repair { mode, .. }
            | Obligation::Approval { mode, .. }
            | Obligation::RateLimit { mode, .. } => *mode,
        }
    }
}
