//! Why a decision came out as it did: for every rule and built-in check, whether it applied and,
//! if not, why not (`clyra policy explain`).

use serde::Serialize;

use super::decision::Decision;
use super::CompiledRule;
use crate::model::{Mode, Verdict};

/// A decision with the trail of every rule and check that led to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The built-in checks (§5.1), in evaluation order.
    pub checks: Vec<CheckTrace>,
    /// Every rule, in evaluation order (§5.2).
    pub rules: Vec<RuleTrace>,
    /// Every `enforcement.rate_limits` entry.
    pub rate_limits: Vec<RateLimitTrace>,
    /// The decision itself.
    pub decision: Decision,
}

impl Explanation {
    pub(super) fn new(trace: Trace, decision: Decision) -> Explanation {
        Explanation {
            checks: trace.checks,
            rules: trace.rules,
            rate_limits: trace.rate_limits,
            decision,
        }
    }
}

/// What evaluation records when asked to explain.
#[derive(Debug, Default)]
pub(super) struct Trace {
    pub(super) checks: Vec<CheckTrace>,
    pub(super) rules: Vec<RuleTrace>,
    pub(super) rate_limits: Vec<RateLimitTrace>,
}

/// One built-in check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckTrace {
    /// The check's fixed id.
    pub id: String,
    /// Its section.
    pub section: String,
    /// Whether it produced a finding.
    pub fired: bool,
    /// The finding's verdict, when it fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Why it fired, or why not.
    pub detail: String,
    /// The detector's error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The `allow` rules that set it aside (§5.3).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overridden_by: Vec<String>,
}

impl CheckTrace {
    pub(super) fn fired(id: &str, section: &str, verdict: Verdict, reason: &str) -> CheckTrace {
        CheckTrace {
            id: id.to_owned(),
            section: section.to_owned(),
            fired: true,
            verdict: Some(verdict),
            detail: reason.to_owned(),
            error: None,
            overridden_by: Vec::new(),
        }
    }

    pub(super) fn not_applicable(id: &str, section: &str, why: String) -> CheckTrace {
        CheckTrace {
            id: id.to_owned(),
            section: section.to_owned(),
            fired: false,
            verdict: None,
            detail: why,
            error: None,
            overridden_by: Vec::new(),
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleTrace {
    /// The rule's id.
    pub rule_id: String,
    /// `rules` or the section it sits in.
    pub section: String,
    /// Its JSON pointer in the policy, e.g. `/data_platform/rules/2`.
    pub pointer: String,
    /// What it decides when it applies.
    pub verdict: Verdict,
    /// Its resolved mode.
    pub mode: Mode,
    /// Its condition, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: RuleOutcome,
}

impl RuleTrace {
    pub(super) fn new(rule: &CompiledRule, outcome: RuleOutcome) -> RuleTrace {
        RuleTrace {
            rule_id: rule.id.clone(),
            section: rule.section.to_owned(),
            pointer: rule.pointer.clone(),
            verdict: rule.verdict,
            mode: rule.mode,
            when: rule.when.as_ref().map(|(src, _)| src.clone()),
            outcome,
        }
    }

    /// Whether the rule produced a finding.
    pub fn applied(&self) -> bool {
        matches!(
            self.outcome,
            RuleOutcome::Matched { .. } | RuleOutcome::ConditionError { .. }
        )
    }
}

/// What happened to one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RuleOutcome {
    /// `match` held and the condition (if any) was true.
    Matched {
        /// Whether a condition was evaluated.
        condition: bool,
    },
    /// A `match` field did not match.
    NoMatch(NoMatch),
    /// `match` held; the condition was false.
    ConditionFalse,
    /// `match` held; the condition failed.
    ConditionError {
        /// The evaluation error.
        error: String,
        /// Whether the failure counts as a match (every verdict but `allow`).
        counts: bool,
    },
}

/// The first `match` field that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoMatch {
    /// The action member (`kind`, `tenant`, `actor`, `route`, `tool`).
    pub field: &'static str,
    /// The action's value; `None` when the action lacks the member.
    pub value: Option<String>,
    /// The globs it was matched against.
    pub patterns: Vec<String>,
}

impl std::fmt::Display for NoMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let patterns: Vec<String> = self.patterns.iter().map(|p| format!("`{p}`")).collect();
        match &self.value {
            None => write!(
                f,
                "the action has no {} (match wants {})",
                self.field,
                patterns.join(", ")
            ),
            Some(v) => write!(
                f,
                "{} `{v}` matches none of {}",
                self.field,
                patterns.join(", ")
            ),
        }
    }
}

/// One rate limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimitTrace {
    /// The entry's id.
    pub id: String,
    /// Whether the action counts in its window.
    pub applies: bool,
    /// The key it is counted under, when it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_match: Option<NoMatch>,
}
