//! The decision engine (spec/policy/README.md §3–§5).
//!
//! An [`Engine`] is compiled once from a [`Policy`] and its hash: globs, CEL conditions, detector
//! settings, rate-limit matchers and the mode of every rule are resolved up front. Deciding is
//! then a pure function of the action and the decision time: [`Engine::decide_at`] (the action's
//! `time`, else the `now` given) or [`Engine::decide`] (the action's `time` alone; conditions see
//! `now` as `null` without one). Nothing reads a clock, the environment or the network.
//!
//! ```
//! use clyra_policy::decide::{Action, Engine};
//! use clyra_policy::model::{Policy, Verdict};
//! use serde_json::json;
//!
//! let policy: Policy = serde_json::from_value(json!({
//!     "version": 4,
//!     "metadata": {"name": "demo", "version": "1", "owners": ["sec@acme.example"]},
//!     "rules": [{"id": "no-drop", "match": {"kind": "warehouse.ddl"},
//!                "when": "payload.sql.startsWith('DROP')", "verdict": "block"}]
//! })).unwrap();
//! let engine = Engine::new(&policy, "sha256:…").unwrap();
//! let action = Action::from_value(json!({
//!     "kind": "warehouse.ddl", "tenant": "acme", "payload": {"sql": "DROP TABLE orders"}
//! })).unwrap();
//! let decision = engine.decide(&action);
//! assert_eq!(decision.verdict, Verdict::Block);
//! assert_eq!(decision.rule_ids, ["no-drop"]);
//! ```

pub mod action;
mod cel_vars;
pub mod decision;
pub mod explain;
pub mod patch;
#[cfg(feature = "journal")]
pub mod record;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

pub use action::{
    Action, ActionError, ActivationInfo, Detection, MatchField, Statement, Warehouse,
};
pub use decision::{Decision, Finding, Obligation, Source};
pub use explain::Explanation;
pub use patch::{apply_patch, PatchError};

use crate::model::{self, Mode, PatchOp, Policy, Verdict};
use explain::{CheckTrace, NoMatch, RateLimitTrace, RuleOutcome, RuleTrace, Trace};

// ---------------------------------------------------------------------------------------------
// Globs: the policy's one matcher, `crate::glob` (spec/policy/README.md §4).
type Glob = crate::glob::Glob;
fn compile_glob(pattern: &str) -> Result<Glob, String> {
    Glob::new(pattern).map_err(|e| e.to_string())
}
// ---------------------------------------------------------------------------------------------

/// Something in a policy the engine cannot compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileIssue {
    /// JSON pointer into the policy, e.g. `/rules/3/when`.
    pub pointer: String,
    /// The rule concerned, when it is one.
    pub rule_id: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for CompileIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule_id {
            Some(id) => write!(f, "rule `{id}` at `{}`: {}", self.pointer, self.message),
            None => write!(f, "at `{}`: {}", self.pointer, self.message),
        }
    }
}

/// Every issue that kept a policy from compiling (all of them, not just the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CompileError {
    /// The issues, in policy order.
    pub issues: Vec<CompileIssue>,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// A compiled policy: decides about actions.
#[derive(Debug)]
pub struct Engine {
    policy_hash: String,
    policy_mode: Mode,
    default_verdict: Verdict,
    env: CelEnv,
    warehouse_kind: Glob,
    activation_kind: Glob,
    warehouse_guard: Option<WarehouseGuard>,
    activations: Vec<ActivationCheck>,
    detectors: Vec<DetectorCheck>,
    rules: Vec<CompiledRule>,
    rate_limits: Vec<RateLimitCheck>,
    checkpoints: HashMap<String, (Vec<String>, bool)>,
}

/// The CEL environment (`cel::Env` has no `Debug`).
struct CelEnv(Arc<cel::Env>);

impl std::fmt::Debug for CelEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CelEnv(stdlib)")
    }
}

/// A list of globs; a value matches when any does.
#[derive(Debug)]
struct Globs {
    globs: Vec<Glob>,
    patterns: Vec<String>,
}

impl Globs {
    fn matches(&self, text: &str) -> bool {
        self.globs.iter().any(|g| g.matches(text))
    }

    fn first_match(&self, text: &str) -> Option<&str> {
        self.globs
            .iter()
            .position(|g| g.matches(text))
            .map(|i| self.patterns[i].as_str())
    }
}

#[derive(Debug)]
struct Matcher {
    fields: Vec<(MatchField, Globs)>,
}

impl Matcher {
    /// The index (into `fields`) of the first field that does not match.
    fn first_mismatch(&self, action: &Action) -> Option<usize> {
        self.fields
            .iter()
            .position(|(field, globs)| !action.field(*field).is_some_and(|v| globs.matches(v)))
    }
}

#[derive(Debug)]
struct CompiledRule {
    id: String,
    section: &'static str,
    pointer: String,
    matcher: Matcher,
    when: Option<(String, cel::Program)>,
    verdict: Verdict,
    mode: Mode,
    reason: Option<String>,
    checkpoint: Option<String>,
    patch: Vec<PatchOp>,
}

#[derive(Debug)]
struct WarehouseGuard {
    mode: Mode,
    protected: Option<Globs>,
    max_rows: Option<u64>,
    max_percent: Option<f64>,
    checkpoint: Option<String>,
}

#[derive(Debug)]
struct ActivationCheck {
    id: String,
    mode: Mode,
    destination: Globs,
    allowed: bool,
    max_records: Option<u64>,
    approval_above: Option<u64>,
    checkpoint: Option<String>,
}

#[derive(Debug)]
struct DetectorCheck {
    name: String,
    id: String,
    mode: Mode,
    threshold: f64,
    action: Verdict,
    fail_closed: bool,
    checkpoint: Option<String>,
}

#[derive(Debug)]
struct RateLimitCheck {
    id: String,
    scope: MatchField,
    matcher: Option<Matcher>,
    limit: u64,
    window_ms: u64,
    burst: u64,
    mode: Mode,
}

const WAREHOUSE_GUARD_ID: &str = "data_platform.warehouse_guard";

/// Collects compile issues.
#[derive(Default)]
struct Issues(Vec<CompileIssue>);

impl Issues {
    fn push(&mut self, pointer: String, rule_id: Option<&str>, message: String) {
        self.0.push(CompileIssue {
            pointer,
            rule_id: rule_id.map(str::to_owned),
            message,
        });
    }

    fn globs(
        &mut self,
        patterns: &[String],
        pointer_of: impl Fn(usize) -> String,
        rule_id: Option<&str>,
    ) -> Globs {
        let mut globs = Vec::with_capacity(patterns.len());
        for (i, p) in patterns.iter().enumerate() {
            match compile_glob(p) {
                Ok(g) => globs.push(g),
                Err(e) => self.push(pointer_of(i), rule_id, e),
            }
        }
        Globs {
            globs,
            patterns: patterns.to_vec(),
        }
    }

    fn glob_field(&mut self, g: &model::Globs, pointer: &str, rule_id: Option<&str>) -> Globs {
        match g {
            model::Globs::One(p) => {
                self.globs(std::slice::from_ref(p), |_| pointer.to_owned(), rule_id)
            }
            model::Globs::Many(v) => self.globs(v, |i| format!("{pointer}/{i}"), rule_id),
        }
    }

    fn matcher(&mut self, m: &model::Match, pointer: &str, rule_id: Option<&str>) -> Matcher {
        let mut fields = Vec::new();
        for (field, globs) in [
            (MatchField::Kind, &m.kind),
            (MatchField::Tenant, &m.tenant),
            (MatchField::Actor, &m.actor),
            (MatchField::Route, &m.route),
            (MatchField::Tool, &m.tool),
        ] {
            if let Some(g) = globs {
                let at = format!("{pointer}/{}", field.as_str());
                fields.push((field, self.glob_field(g, &at, rule_id)));
            }
        }
        Matcher { fields }
    }
}

impl Engine {
    /// Compiles `policy`. `policy_hash` is the hash of the file it was loaded from (§7), carried
    /// into every decision. Fails with every glob, condition, duration or duplicate rule id the
    /// engine cannot use, each with its JSON pointer.
    pub fn new(policy: &Policy, policy_hash: impl Into<String>) -> Result<Engine, CompileError> {
        let mut issues = Issues::default();
        let env = cel_vars::environment();
        let policy_mode = policy.mode();
        let default_verdict = policy
            .defaults
            .as_ref()
            .and_then(|d| d.verdict)
            .unwrap_or(Verdict::Allow);
        let section_mode = |m: Option<Mode>| m.unwrap_or(policy_mode);

        let mut warehouse_guard = None;
        let mut activations = Vec::new();
        if let Some(dp) = &policy.data_platform {
            let mode = section_mode(dp.mode);
            if let Some(wg) = &dp.warehouse_guard {
                let protected = (!wg.protected_schemas.is_empty()).then(|| {
                    issues.globs(
                        &wg.protected_schemas,
                        |i| format!("/data_platform/warehouse_guard/protected_schemas/{i}"),
                        None,
                    )
                });
                warehouse_guard = Some(WarehouseGuard {
                    mode,
                    protected,
                    max_rows: wg.max_rows_affected,
                    max_percent: wg.max_percent_affected,
                    checkpoint: wg.checkpoint.clone(),
                });
            }
            for (i, a) in dp.activation.iter().enumerate() {
                let pointer = format!("/data_platform/activation/{i}/destination");
                activations.push(ActivationCheck {
                    id: format!("data_platform.activation[{i}]"),
                    mode,
                    destination: issues.glob_field(&a.destination, &pointer, None),
                    allowed: a.allowed.unwrap_or(true),
                    max_records: a.max_records,
                    approval_above: a.approval_above,
                    checkpoint: a.checkpoint.clone(),
                });
            }
        }

        let mut detectors = Vec::new();
        if let Some(gs) = &policy.genai_security {
            let mode = section_mode(gs.mode);
            for (name, d) in &gs.detectors {
                if d.enabled == Some(false) {
                    continue;
                }
                detectors.push(DetectorCheck {
                    name: name.clone(),
                    id: format!("genai_security.detectors.{name}"),
                    mode,
                    threshold: d.threshold.unwrap_or(0.5),
                    action: d.action.unwrap_or(Verdict::Block),
                    fail_closed: d.on_error != Some(model::FailMode::FailOpen),
                    checkpoint: d.checkpoint.clone(),
                });
            }
        }

        let mut rules = Vec::new();
        let mut seen: HashMap<&str, String> = HashMap::new();
        let sections: [(&'static str, Option<Mode>, &[model::Rule]); 5] = [
            ("rules", None, &policy.rules),
            (
                "data_platform",
                policy.data_platform.as_ref().and_then(|s| s.mode),
                policy
                    .data_platform
                    .as_ref()
                    .map_or(&[][..], |s| &s.rules[..]),
            ),
            (
                "genai_security",
                policy.genai_security.as_ref().and_then(|s| s.mode),
                policy
                    .genai_security
                    .as_ref()
                    .map_or(&[][..], |s| &s.rules[..]),
            ),
            (
                "voice_compliance",
                policy.voice_compliance.as_ref().and_then(|s| s.mode),
                policy
                    .voice_compliance
                    .as_ref()
                    .map_or(&[][..], |s| &s.rules[..]),
            ),
            (
                "enforcement",
                policy.enforcement.as_ref().and_then(|s| s.mode),
                policy
                    .enforcement
                    .as_ref()
                    .map_or(&[][..], |s| &s.rules[..]),
            ),
        ];
        for (section, mode, section_rules) in sections {
            let base = if section == "rules" {
                "/rules".to_owned()
            } else {
                format!("/{section}/rules")
            };
            for (i, rule) in section_rules.iter().enumerate() {
                let pointer = format!("{base}/{i}");
                let id = Some(rule.id.as_str());
                if let Some(first) = seen.insert(&rule.id, pointer.clone()) {
                    issues.push(
                        format!("{pointer}/id"),
                        id,
                        format!("duplicate rule id (first at `{first}`)"),
                    );
                }
                let matcher = issues.matcher(&rule.matches, &format!("{pointer}/match"), id);
                let when = match &rule.when {
                    None => None,
                    Some(src) => match compile_condition(src) {
                        Ok(p) => Some((src.clone(), p)),
                        Err(e) => {
                            issues.push(format!("{pointer}/when"), id, e);
                            None
                        }
                    },
                };
                rules.push(CompiledRule {
                    id: rule.id.clone(),
                    section,
                    pointer,
                    matcher,
                    when,
                    verdict: rule.verdict,
                    mode: rule.mode.unwrap_or(section_mode(mode)),
                    reason: rule.reason.clone(),
                    checkpoint: rule.checkpoint.clone(),
                    patch: rule.patch.clone().unwrap_or_default(),
                });
            }
        }

        let mut rate_limits = Vec::new();
        if let Some(enf) = &policy.enforcement {
            let mode = section_mode(enf.mode);
            for (i, rl) in enf.rate_limits.iter().enumerate() {
                let pointer = format!("/enforcement/rate_limits/{i}");
                let scope = match rl.scope.as_str() {
                    "actor" => MatchField::Actor,
                    "tenant" => MatchField::Tenant,
                    "route" => MatchField::Route,
                    other => {
                        issues.push(
                            format!("{pointer}/scope"),
                            None,
                            format!("unknown scope `{other}`; expected actor, tenant or route"),
                        );
                        continue;
                    }
                };
                let Some(window) = model::Duration::parse(&rl.window) else {
                    issues.push(
                        format!("{pointer}/window"),
                        None,
                        format!("`{}` is not a duration", rl.window),
                    );
                    continue;
                };
                rate_limits.push(RateLimitCheck {
                    id: rl.id.clone(),
                    scope,
                    matcher: rl
                        .matches
                        .as_ref()
                        .map(|m| issues.matcher(m, &format!("{pointer}/match"), None)),
                    limit: rl.limit,
                    window_ms: window.millis,
                    burst: rl.burst.unwrap_or(0),
                    mode,
                });
            }
        }

        let checkpoints = policy
            .approvals
            .iter()
            .flat_map(|a| &a.checkpoints)
            .map(|c| {
                (
                    c.id.clone(),
                    (c.approvers.clone(), c.two_person.unwrap_or(false)),
                )
            })
            .collect();

        if !issues.0.is_empty() {
            return Err(CompileError { issues: issues.0 });
        }
        Ok(Engine {
            policy_hash: policy_hash.into(),
            policy_mode,
            default_verdict,
            env: CelEnv(env),
            warehouse_kind: fixed_glob("warehouse.*")?,
            activation_kind: fixed_glob("activation.*")?,
            warehouse_guard,
            activations,
            detectors,
            rules,
            rate_limits,
            checkpoints,
        })
    }

    /// The hash of the policy this engine was compiled from.
    pub fn policy_hash(&self) -> &str {
        &self.policy_hash
    }

    /// Decides about `action` at the action's `time`, or at `now` when it has none.
    pub fn decide_at(&self, action: &Action, now: jiff::Timestamp) -> Decision {
        self.evaluate(action, Some(now), None)
    }

    /// Decides about `action` at the action's `time`. Without one, conditions see `now` as
    /// `null` (and one that compares it fails, closed): call [`Engine::decide_at`] with the
    /// caller's clock instead.
    pub fn decide(&self, action: &Action) -> Decision {
        self.evaluate(action, None, None)
    }

    /// Decides as [`Engine::decide_at`] does and says, for every rule and built-in check, whether
    /// it applied and why not.
    pub fn explain_at(&self, action: &Action, now: Option<jiff::Timestamp>) -> Explanation {
        let mut trace = Trace::default();
        let decision = self.evaluate(action, now, Some(&mut trace));
        Explanation::new(trace, decision)
    }

    fn evaluate(
        &self,
        action: &Action,
        now: Option<jiff::Timestamp>,
        mut trace: Option<&mut Trace>,
    ) -> Decision {
        let time = action.time().or(now).map(|t| t.to_string());
        let mut findings: Vec<Finding> = Vec::new();
        let mut builtin_checkpoints: Vec<Option<String>> = Vec::new();

        self.check_warehouse(action, &mut findings, &mut builtin_checkpoints, &mut trace);
        self.check_activations(action, &mut findings, &mut builtin_checkpoints, &mut trace);
        self.check_detectors(action, &mut findings, &mut builtin_checkpoints, &mut trace);
        let builtin_count = findings.len();

        // Match every rule first (cheap); build the CEL variables only if a condition must run.
        let mismatches: Vec<Option<usize>> = self
            .rules
            .iter()
            .map(|r| r.matcher.first_mismatch(action))
            .collect();
        let needs_cel = self
            .rules
            .iter()
            .zip(&mismatches)
            .any(|(r, m)| m.is_none() && r.when.is_some());
        let vars;
        let context;
        let ctx = if needs_cel {
            vars = cel_vars::Vars::new(action.as_value(), time.as_deref());
            let mut c = cel::Context::with_env(Arc::clone(&self.env.0));
            c.set_variable_resolver(&vars);
            context = c;
            Some(&context)
        } else {
            None
        };

        let mut rule_of_finding: Vec<usize> = Vec::new();
        for (index, (rule, mismatch)) in self.rules.iter().zip(&mismatches).enumerate() {
            if let Some(field) = mismatch {
                if let Some(t) = trace.as_deref_mut() {
                    let (f, globs) = &rule.matcher.fields[*field];
                    t.rules.push(RuleTrace::new(
                        rule,
                        RuleOutcome::NoMatch(NoMatch {
                            field: f.as_str(),
                            value: action.field(*f).map(str::to_owned),
                            patterns: globs.patterns.clone(),
                        }),
                    ));
                }
                continue;
            }
            let outcome = match (&rule.when, ctx) {
                (Some((_, program)), Some(ctx)) => run_condition(program, ctx),
                _ => Ok(true),
            };
            let error = match outcome {
                Ok(true) => None,
                Ok(false) => {
                    if let Some(t) = trace.as_deref_mut() {
                        t.rules
                            .push(RuleTrace::new(rule, RuleOutcome::ConditionFalse));
                    }
                    continue;
                }
                Err(e) => Some(e),
            };
            // An error fails closed: it counts as a match, except for `allow` rules.
            let counting = error.is_none() || rule.verdict != Verdict::Allow;
            if let Some(t) = trace.as_deref_mut() {
                t.rules.push(RuleTrace::new(
                    rule,
                    match &error {
                        None => RuleOutcome::Matched {
                            condition: rule.when.is_some(),
                        },
                        Some(e) => RuleOutcome::ConditionError {
                            error: e.clone(),
                            counts: counting,
                        },
                    },
                ));
            }
            let reason = match (&rule.reason, &error) {
                (Some(r), _) => r.clone(),
                (None, None) => format!("rule `{}` matched", rule.id),
                (None, Some(_)) if counting => format!(
                    "the condition of rule `{}` failed; counted as a match (fail closed)",
                    rule.id
                ),
                (None, Some(_)) => format!(
                    "the condition of allow rule `{}` failed; not counted",
                    rule.id
                ),
            };
            findings.push(Finding {
                rule_id: rule.id.clone(),
                source: Source::Rule,
                section: rule.section.to_owned(),
                verdict: rule.verdict,
                mode: rule.mode,
                counting,
                overridden: false,
                error,
                reason,
            });
            rule_of_finding.push(index);
        }

        // §5.3: a matching allow rule sets the built-in checks aside. For the effective verdict,
        // only an allow rule in enforce mode does (a shadowed rule must not loosen enforcement).
        let allow_rules: Vec<&Finding> = findings[builtin_count..]
            .iter()
            .filter(|f| f.verdict == Verdict::Allow && f.counting)
            .collect();
        let any_allow = !allow_rules.is_empty();
        let enforced_allow = allow_rules.iter().any(|f| f.mode == Mode::Enforce);
        let overriding: Vec<String> = allow_rules.iter().map(|f| f.rule_id.clone()).collect();
        let mut effective_counting = vec![false; findings.len()];
        for (i, f) in findings.iter_mut().enumerate() {
            if i < builtin_count {
                let note = !f.counting;
                f.overridden = any_allow;
                f.counting = !note && !any_allow;
                effective_counting[i] = !note && !enforced_allow && f.mode == Mode::Enforce;
            } else {
                effective_counting[i] = f.counting && f.mode == Mode::Enforce;
            }
        }
        if let Some(t) = trace.as_deref_mut() {
            if any_allow {
                for c in &mut t.checks {
                    if c.fired {
                        c.overridden_by = overriding.clone();
                    }
                }
            }
        }

        let evaluated_verdict = findings
            .iter()
            .filter(|f| f.counting)
            .map(|f| f.verdict)
            .max()
            .unwrap_or(self.default_verdict);
        let verdict = findings
            .iter()
            .zip(&effective_counting)
            .filter(|(_, c)| **c)
            .map(|(f, _)| f.verdict)
            .max()
            .unwrap_or(match self.policy_mode {
                Mode::Enforce => self.default_verdict,
                Mode::Shadow => Verdict::Allow,
            });
        let mode = if verdict == evaluated_verdict {
            Mode::Enforce
        } else {
            Mode::Shadow
        };

        let obligations = self.obligations(
            action,
            &findings,
            builtin_count,
            &builtin_checkpoints,
            &rule_of_finding,
            &mut trace,
        );
        let counting = findings.iter().filter(|f| f.counting);
        Decision {
            verdict,
            evaluated_verdict,
            mode,
            rule_ids: counting.clone().map(|f| f.rule_id.clone()).collect(),
            reasons: counting.map(|f| f.reason.clone()).collect(),
            findings,
            obligations,
            policy_hash: self.policy_hash.clone(),
            action_sha256: action.sha256().to_owned(),
            time: time.clone(),
        }
    }

    fn obligations(
        &self,
        action: &Action,
        findings: &[Finding],
        builtin_count: usize,
        builtin_checkpoints: &[Option<String>],
        rule_of_finding: &[usize],
        trace: &mut Option<&mut Trace>,
    ) -> Vec<Obligation> {
        let mut out = Vec::new();
        // Repairs, in rule order.
        for (f, &r) in findings[builtin_count..].iter().zip(rule_of_finding) {
            if f.counting && f.verdict == Verdict::Repair {
                out.push(Obligation::Repair {
                    rule_id: f.rule_id.clone(),
                    patch: self.rules[r].patch.clone(),
                    mode: f.mode,
                });
            }
        }
        // Approvals: one per checkpoint, asked for by the first finding that names it.
        let mut payload_sha256: Option<String> = None;
        let mut asked: Vec<Option<&str>> = Vec::new();
        for (i, f) in findings.iter().enumerate() {
            if !f.counting || f.verdict != Verdict::RequireApproval {
                continue;
            }
            let checkpoint = if i < builtin_count {
                builtin_checkpoints[i].as_deref()
            } else {
                self.rules[rule_of_finding[i - builtin_count]]
                    .checkpoint
                    .as_deref()
            };
            if asked.contains(&checkpoint) {
                continue;
            }
            asked.push(checkpoint);
            let (approvers, two_person) = checkpoint
                .and_then(|c| self.checkpoints.get(c))
                .cloned()
                .unwrap_or_default();
            let digest = payload_sha256
                .get_or_insert_with(|| {
                    let null = serde_json::Value::Null;
                    action::payload_sha256(action.payload().unwrap_or(&null)).unwrap_or_default()
                })
                .clone();
            out.push(Obligation::Approval {
                rule_id: f.rule_id.clone(),
                checkpoint: checkpoint.map(str::to_owned),
                approvers,
                two_person,
                payload_sha256: digest,
                mode: f.mode,
            });
        }
        // Rate windows the action touches.
        for rl in &self.rate_limits {
            let mismatch = rl.matcher.as_ref().and_then(|m| {
                m.first_mismatch(action).map(|i| {
                    let (f, globs) = &m.fields[i];
                    NoMatch {
                        field: f.as_str(),
                        value: action.field(*f).map(str::to_owned),
                        patterns: globs.patterns.clone(),
                    }
                })
            });
            let key = format!(
                "{}:{}",
                rl.scope.as_str(),
                action.field(rl.scope).unwrap_or("")
            );
            if let Some(t) = trace.as_deref_mut() {
                t.rate_limits.push(RateLimitTrace {
                    id: rl.id.clone(),
                    applies: mismatch.is_none(),
                    key: mismatch.is_none().then(|| key.clone()),
                    no_match: mismatch.clone(),
                });
            }
            if mismatch.is_none() {
                out.push(Obligation::RateLimit {
                    id: rl.id.clone(),
                    key,
                    limit: rl.limit,
                    window_ms: rl.window_ms,
                    burst: rl.burst,
                    mode: rl.mode,
                });
            }
        }
        out
    }

    fn check_warehouse(
        &self,
        action: &Action,
        findings: &mut Vec<Finding>,
        checkpoints: &mut Vec<Option<String>>,
        trace: &mut Option<&mut Trace>,
    ) {
        let Some(wg) = &self.warehouse_guard else {
            return;
        };
        let wh = action.warehouse();
        let mut emit = |id: String, outcome: Result<(Verdict, String), String>| match outcome {
            Ok((verdict, reason)) => {
                if let Some(t) = trace.as_deref_mut() {
                    t.checks
                        .push(CheckTrace::fired(&id, "data_platform", verdict, &reason));
                }
                findings.push(builtin(id, "data_platform", verdict, wg.mode, reason, None));
                checkpoints.push(wg.checkpoint.clone());
            }
            Err(why_not) => {
                if let Some(t) = trace.as_deref_mut() {
                    t.checks
                        .push(CheckTrace::not_applicable(&id, "data_platform", why_not));
                }
            }
        };

        if let Some(protected) = &wg.protected {
            let outcome = if !self.warehouse_kind.matches(action.kind()) {
                Err(format!("kind `{}` is not warehouse.*", action.kind()))
            } else {
                match wh.and_then(|w| w.schema.as_deref()) {
                    None => Err("the action names no warehouse.schema".to_owned()),
                    Some(schema) => match protected.first_match(schema) {
                        Some(p) => Ok((
                            Verdict::Block,
                            format!("schema `{schema}` is protected (`{p}`)"),
                        )),
                        None => Err(format!(
                            "schema `{schema}` matches none of {}",
                            list(&protected.patterns)
                        )),
                    },
                }
            };
            emit(format!("{WAREHOUSE_GUARD_ID}.protected_schemas"), outcome);
        }

        let mass = || -> Result<(Statement, u64), String> {
            let w = wh.ok_or("the action has no warehouse member")?;
            let st = w
                .statement
                .ok_or("the action names no warehouse.statement")?;
            if !matches!(st, Statement::Update | Statement::Delete | Statement::Merge) {
                return Err(format!(
                    "statement `{}` is not update, delete or merge",
                    st.as_str()
                ));
            }
            let rows = w
                .rows_affected
                .ok_or("the action names no warehouse.rows_affected")?;
            Ok((st, rows))
        };
        if let Some(max) = wg.max_rows {
            let outcome = mass().and_then(|(st, rows)| {
                if rows > max {
                    Ok((
                        Verdict::RequireApproval,
                        format!("{} affects {rows} rows, more than {max}", st.as_str()),
                    ))
                } else {
                    Err(format!("{rows} rows affected, not more than {max}"))
                }
            });
            emit(format!("{WAREHOUSE_GUARD_ID}.max_rows_affected"), outcome);
        }
        if let Some(max) = wg.max_percent {
            let outcome = mass().and_then(|(st, rows)| {
                let total = wh
                    .and_then(|w| w.table_rows)
                    .filter(|t| *t > 0)
                    .ok_or("the table's size (warehouse.table_rows) is not known".to_owned())?;
                let percent = rows as f64 * 100.0 / total as f64;
                if percent > max {
                    Ok((
                        Verdict::RequireApproval,
                        format!(
                            "{} affects {} of the table's rows, more than {max}%",
                            st.as_str(),
                            percent_text(percent)
                        ),
                    ))
                } else {
                    Err(format!(
                        "{} of the table's rows affected, not more than {max}%",
                        percent_text(percent)
                    ))
                }
            });
            emit(
                format!("{WAREHOUSE_GUARD_ID}.max_percent_affected"),
                outcome,
            );
        }
    }

    fn check_activations(
        &self,
        action: &Action,
        findings: &mut Vec<Finding>,
        checkpoints: &mut Vec<Option<String>>,
        trace: &mut Option<&mut Trace>,
    ) {
        for a in &self.activations {
            let outcome = (|| {
                if !self.activation_kind.matches(action.kind()) {
                    return Err(format!("kind `{}` is not activation.*", action.kind()));
                }
                let info = action.activation();
                let dest = info
                    .and_then(|i| i.destination.as_deref())
                    .ok_or("the action names no activation.destination")?;
                if !a.destination.matches(dest) {
                    return Err(format!(
                        "destination `{dest}` matches none of {}",
                        list(&a.destination.patterns)
                    ));
                }
                if !a.allowed {
                    return Ok((
                        Verdict::Block,
                        format!("destination `{dest}` may not be written"),
                    ));
                }
                let Some(records) = info.and_then(|i| i.records) else {
                    return Err("the action names no activation.records".to_owned());
                };
                if let Some(max) = a.max_records.filter(|m| records > *m) {
                    return Ok((
                        Verdict::Block,
                        format!("{records} records to `{dest}`, more than {max}"),
                    ));
                }
                if let Some(above) = a.approval_above.filter(|m| records > *m) {
                    return Ok((
                        Verdict::RequireApproval,
                        format!("{records} records to `{dest}` need approval above {above}"),
                    ));
                }
                Err(format!("{records} records to `{dest}` are within limits"))
            })();
            match outcome {
                Ok((verdict, reason)) => {
                    if let Some(t) = trace.as_deref_mut() {
                        t.checks
                            .push(CheckTrace::fired(&a.id, "data_platform", verdict, &reason));
                    }
                    findings.push(builtin(
                        a.id.clone(),
                        "data_platform",
                        verdict,
                        a.mode,
                        reason,
                        None,
                    ));
                    checkpoints.push(a.checkpoint.clone());
                }
                Err(why_not) => {
                    if let Some(t) = trace.as_deref_mut() {
                        t.checks
                            .push(CheckTrace::not_applicable(&a.id, "data_platform", why_not));
                    }
                }
            }
        }
    }

    fn check_detectors(
        &self,
        action: &Action,
        findings: &mut Vec<Finding>,
        checkpoints: &mut Vec<Option<String>>,
        trace: &mut Option<&mut Trace>,
    ) {
        for d in &self.detectors {
            let (verdict, reason, error) = match action.detections().get(&d.name) {
                None => {
                    if let Some(t) = trace.as_deref_mut() {
                        t.checks.push(CheckTrace::not_applicable(
                            &d.id,
                            "genai_security",
                            format!("the action has no detections.{}", d.name),
                        ));
                    }
                    continue;
                }
                Some(Detection::Score(s)) if *s >= d.threshold => (
                    d.action,
                    format!(
                        "detector `{}` scored {s}, at or above {}",
                        d.name, d.threshold
                    ),
                    None,
                ),
                Some(Detection::Score(s)) => {
                    if let Some(t) = trace.as_deref_mut() {
                        t.checks.push(CheckTrace::not_applicable(
                            &d.id,
                            "genai_security",
                            format!("detector `{}` scored {s}, below {}", d.name, d.threshold),
                        ));
                    }
                    continue;
                }
                Some(Detection::Error(e)) if d.fail_closed => (
                    Verdict::Block,
                    format!("detector `{}` failed; failing closed", d.name),
                    Some(e.clone()),
                ),
                Some(Detection::Error(e)) => (
                    Verdict::Allow,
                    format!("detector `{}` failed; failing open", d.name),
                    Some(e.clone()),
                ),
            };
            if let Some(t) = trace.as_deref_mut() {
                let mut c = CheckTrace::fired(&d.id, "genai_security", verdict, &reason);
                c.error = error.clone();
                t.checks.push(c);
            }
            let mut f = builtin(
                d.id.clone(),
                "genai_security",
                verdict,
                d.mode,
                reason,
                error,
            );
            // An `allow` from a detector is a note: it never counts (it must not, say, turn a
            // `defaults.verdict: block` into an allow).
            f.counting = verdict != Verdict::Allow;
            findings.push(f);
            checkpoints.push(d.checkpoint.clone());
        }
    }
}

fn fixed_glob(pattern: &str) -> Result<Glob, CompileError> {
    compile_glob(pattern).map_err(|message| CompileError {
        issues: vec![CompileIssue {
            pointer: String::new(),
            rule_id: None,
            message,
        }],
    })
}

fn builtin(
    id: String,
    section: &str,
    verdict: Verdict,
    mode: Mode,
    reason: String,
    error: Option<String>,
) -> Finding {
    Finding {
        rule_id: id,
        source: Source::Builtin,
        section: section.to_owned(),
        verdict,
        mode,
        counting: true,
        overridden: false,
        error,
        reason,
    }
}

fn list(patterns: &[String]) -> String {
    let quoted: Vec<String> = patterns.iter().map(|p| format!("`{p}`")).collect();
    quoted.join(", ")
}

fn percent_text(p: f64) -> String {
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// Compiles a condition, refusing variables no action provides (a typo would otherwise fail
/// closed on every decision). Parsing goes through [`crate::condition::compile`], which bounds
/// length and nesting and parses on a large stack: the CEL parser recurses and would overflow an
/// ordinary thread's stack on a deeply nested expression. The environment is the standard one,
/// whose macros are those the plain parser expands.
fn compile_condition(source: &str) -> Result<cel::Program, String> {
    let program = crate::condition::compile(source).map_err(|e| e.to_string())?;
    let unknown: Vec<String> = cel_vars::free_identifiers(program.expression())
        .into_iter()
        .filter(|v| !cel_vars::is_variable(v))
        .collect();
    if let Some(first) = unknown.first() {
        return Err(format!(
            "unknown variable `{first}`; conditions see action, now, {}",
            cel_vars::SHORTCUTS.join(", ")
        ));
    }
    Ok(program)
}

/// Runs a condition: `Ok(bool)`, or the error text (evaluation error, non-boolean result, or a
/// panic inside the evaluator, all of which fail closed).
fn run_condition(program: &cel::Program, ctx: &cel::Context<'_, '_>) -> Result<bool, String> {
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| program.execute(ctx)));
    match result {
        Ok(Ok(cel::Value::Bool(b))) => Ok(b),
        Ok(Ok(other)) => Err(format!(
            "the condition returned {}, not a boolean",
            other.type_of()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the condition evaluator failed".to_owned()),
    }
}

#[cfg(test)]
mod tests;
