//! `clyra policy lint`: every problem of a policy file at once, schema and semantics together.
//!
//! The schema says what shape a policy has; lint adds what the schema cannot say. Each finding
//! has a stable [`Code`]:
//!
//! | code | severity | what |
//! |---|---|---|
//! | `P_BAD_GLOB` | error | a glob that does not compile (`[` without `]`, `[z-a]`) |
//! | `P_BAD_DURATION` | error | a duration longer than 10,000 years (cannot be added to a date) |
//! | `P_UNKNOWN_DETECTOR` | error | a detector name not in [`KNOWN_DETECTORS`] |
//! | `P_DUPLICATE_RULE_ID` | error | two rules with one id, across all sections |
//! | `P_DUPLICATE_ID` | error | two checkpoints, rate limits, kill-switch triggers or retention entries with one id (class) |
//! | `P_CONFLICTING_RULES` | error | same match, same `when`, same mode, different verdicts |
//! | `P_UNREACHABLE_RULE` | warning | an `allow` rule under an unconditional `block` rule that covers it, or a rule repeated |
//! | `P_CEL_COMPILE` | error | a `when` that is not CEL, or too deep to parse safely ([`crate::condition`]) |
//! | `P_CEL_VARIABLE` | error | a `when` naming a variable the decision context does not have ([`CEL_VARIABLES`]) |
//! | `P_THRESHOLD_RANGE` | error / warning | `approval_above >= max_records` (error); detector threshold 0, burst above 10 × limit, loop-breaker similarity below 0.5 (warnings) |
//! | `P_MISSING_CHECKPOINT` | error / warning | a `require_approval` rule without a checkpoint (error); a detector, warehouse guard or activation entry that requests approval without one (warning: its requests name no approvers) |
//! | `P_UNKNOWN_CHECKPOINT` | error | a checkpoint id not in `approvals.checkpoints` |
//! | `P_CHECKPOINT_IGNORED` | warning | a checkpoint where no approval is ever requested |
//! | `P_PATCH_WITHOUT_REPAIR` | error | a `patch` on a rule whose verdict is not `repair` |
//! | `P_REPAIR_WITHOUT_PATCH` | error | a `repair` rule without a `patch` |
//! | `P_BAD_PATCH` | error | a patch operation that cannot apply |
//! | `P_TWO_PERSON` | error | a two-person checkpoint that fewer than two identities can approve |
//! | `P_INSECURE_WEBHOOK` | warning | a webhook over `http://` to another host than this one |
//! | `P_BAD_SCHEMA` | error | a `schemas[].schema` that is not a JSON Schema |
//! | `P_SCHEMA_TARGET` | error | a `schemas` entry naming neither `route` nor `tool` |
//!
//! Plus everything loading reports ([`crate::load`]): `P_YAML`, `P_DUPLICATE_KEY`, `P_ANCHOR`,
//! `P_TAG`, `P_NUMBER`, `P_DEPTH`, `P_MULTI_DOCUMENT`, `P_COMPLEX_KEY`, `P_VERSION`,
//! `P_V3_RENAMED` (warning), `P_V3_CONFLICT`, `P_SCHEMA`, `P_IO`, `P_TOO_LARGE`, `P_ENCODING`.
//!
//! Semantic checks run on whatever parts of the document are well formed, so a file with schema
//! errors still gets its other findings in the same report.

use std::collections::HashMap;
use std::path::Path;

use clyra_evidence::jcs::is_json_pointer;
use serde_json::Value;

use crate::condition::{self, ConditionProblem};
use crate::diagnostic::{closest, quote, Code, Diagnostic, Diagnostics};
use crate::glob::{Glob, GlobSet};
use crate::load::{self, SourceMap};
use crate::model::{
    Activation, Checkpoint, Detector, Duration, Globs, Match, Mode, PatchOp, PatchOpKind, Rule,
    Verdict, KNOWN_DETECTORS,
};

pub use crate::condition::CEL_VARIABLES;

/// The longest duration lint accepts: 10,000 years in milliseconds, about the span of dates
/// (years 1 to 9999) a timestamp can hold.
pub const MAX_DURATION_MILLIS: u64 = 10_000 * 365 * 86_400_000;

/// Rule lists in evaluation order: the JSON pointer of each list and its section (if any).
pub const RULE_LISTS: &[(&str, Option<&str>)] = &[
    ("/rules", None),
    ("/data_platform/rules", Some("data_platform")),
    ("/genai_security/rules", Some("genai_security")),
    ("/voice_compliance/rules", Some("voice_compliance")),
    ("/enforcement/rules", Some("enforcement")),
];

/// Lints a policy file: every finding, errors and warnings, in file order.
pub fn lint_file(path: impl AsRef<Path>) -> Diagnostics {
    let path = path.as_ref();
    match load::read_file(path) {
        Ok(bytes) => lint_bytes(&path.display().to_string(), &bytes),
        Err(d) => Diagnostics::new(vec![d]),
    }
}

/// Lints policy text; `name` is used in diagnostics.
pub fn lint_str(name: &str, text: &str) -> Diagnostics {
    lint_bytes(name, text.as_bytes())
}

/// Lints policy bytes; `name` is used in diagnostics.
pub fn lint_bytes(name: &str, bytes: &[u8]) -> Diagnostics {
    Diagnostics::new(load::analyze(name, bytes).0)
}

/// The semantic checks over a normalized document (which may have schema errors: parts that do
/// not have the expected shape are skipped).
pub(crate) fn semantic(value: &Value, map: &SourceMap) -> Vec<Diagnostic> {
    let mut l = Linter {
        map,
        out: Vec::new(),
        checkpoints: HashMap::new(),
    };
    l.walk_values(value);
    l.checkpoints(value);
    l.rules(value);
    l.detectors(value);
    l.data_platform(value);
    l.enforcement(value);
    l.approvals(value);
    l.schemas(value);
    l.retention(value);
    l.out
}

struct Linter<'a> {
    map: &'a SourceMap,
    out: Vec<Diagnostic>,
    /// Checkpoint id to its definition.
    checkpoints: HashMap<String, Checkpoint>,
}

/// A value at a pointer.
fn at<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    value.pointer(pointer)
}

/// Items of the array at `pointer`, each with its pointer.
fn items<'v>(value: &'v Value, pointer: &str) -> Vec<(String, &'v Value)> {
    match at(value, pointer) {
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{pointer}/{i}"), v))
            .collect(),
        _ => Vec::new(),
    }
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

fn mode_at(value: &Value, pointer: &str) -> Option<Mode> {
    at(value, pointer).and_then(typed)
}

fn child(parent: &str, name: &str) -> String {
    let mut p = parent.to_owned();
    crate::load::push_token(&mut p, name);
    p
}

/// A rule as lint sees it.
struct RuleInfo {
    pointer: String,
    rule: Rule,
    mode: Mode,
    /// Compiled match globs (None when one does not compile: no coverage reasoning then).
    sets: Option<MatchSets>,
}

struct MatchSets {
    fields: [Option<GlobSet>; 5],
}

fn match_fields(m: &Match) -> [Option<&Globs>; 5] {
    [
        m.kind.as_ref(),
        m.tenant.as_ref(),
        m.actor.as_ref(),
        m.route.as_ref(),
        m.tool.as_ref(),
    ]
}

/// The match with each field's patterns sorted and deduplicated, for "same match" comparisons.
fn match_key(m: &Match) -> [Option<Vec<&str>>; 5] {
    match_fields(m).map(|f| {
        f.map(|g| {
            let mut v: Vec<&str> = g.patterns().iter().map(String::as_str).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
    })
}

impl MatchSets {
    fn new(m: &Match) -> Option<MatchSets> {
        let mut fields: [Option<GlobSet>; 5] = Default::default();
        for (slot, f) in fields.iter_mut().zip(match_fields(m)) {
            if let Some(g) = f {
                *slot = Some(GlobSet::from_globs(g).ok()?);
            }
        }
        Some(MatchSets { fields })
    }

    /// Every action `other` matches, `self` matches too (conservatively).
    fn covers(&self, other: &MatchSets) -> bool {
        self.fields
            .iter()
            .zip(other.fields.iter())
            .all(|(mine, theirs)| match (mine, theirs) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(m), Some(t)) => m.covers(t),
            })
    }
}

impl Linter<'_> {
    fn file(&self) -> &str {
        self.map.name()
    }

    fn error(&mut self, code: Code, pointer: &str, message: String) -> &mut Diagnostic {
        let d = Diagnostic::error(
            code,
            self.file(),
            self.map.locate(pointer),
            pointer,
            message,
        );
        self.push(d)
    }

    fn error_at_key(&mut self, code: Code, pointer: &str, message: String) -> &mut Diagnostic {
        let d = Diagnostic::error(
            code,
            self.file(),
            self.map.locate_key(pointer),
            pointer,
            message,
        );
        self.push(d)
    }

    fn warning(&mut self, code: Code, pointer: &str, message: String) -> &mut Diagnostic {
        let d = Diagnostic::warning(
            code,
            self.file(),
            self.map.locate(pointer),
            pointer,
            message,
        );
        self.push(d)
    }

    fn push(&mut self, d: Diagnostic) -> &mut Diagnostic {
        self.out.push(d);
        // Just pushed, so there is a last element.
        let last = self.out.len() - 1;
        &mut self.out[last]
    }

    /// Globs and durations, wherever the schema puts them.
    fn walk_values(&mut self, value: &Value) {
        let mut found: Vec<(String, Code, String, Option<String>)> = Vec::new();
        load::schema_walk(value, &mut |pointer, v, names| {
            let Value::String(s) = v else {
                return;
            };
            if names.contains(&"glob") {
                if let Err(e) = Glob::new(s) {
                    found.push((
                        pointer.to_owned(),
                        Code::BadGlob,
                        format!("{} is not a valid glob: {}", quote(s), e.kind),
                        Some(format!("problem at character {}", e.position)),
                    ));
                }
            }
            if names.contains(&"duration") {
                if let Some(d) = Duration::parse(s) {
                    if d.millis > MAX_DURATION_MILLIS {
                        found.push((
                            pointer.to_owned(),
                            Code::BadDuration,
                            format!(
                                "duration {} is longer than 10,000 years and cannot be added to \
a date",
                                quote(s)
                            ),
                            Some("use a shorter duration".into()),
                        ));
                    }
                }
            }
        });
        for (pointer, code, message, help) in found {
            let d = self.error(code, &pointer, message);
            d.suggestion = help;
        }
    }

    fn checkpoints(&mut self, value: &Value) {
        let mut first: HashMap<String, String> = HashMap::new();
        for (p, v) in items(value, "/approvals/checkpoints") {
            let Some(cp) = typed::<Checkpoint>(v) else {
                continue;
            };
            if let Some(prev) = first.get(&cp.id) {
                let line = self.map.locate(prev).line;
                self.error(
                    Code::DuplicateId,
                    &format!("{p}/id"),
                    format!(
                        "checkpoint id {} is already used at line {line}",
                        quote(&cp.id)
                    ),
                );
                continue;
            }
            first.insert(cp.id.clone(), format!("{p}/id"));
            self.two_person(&p, &cp);
            self.checkpoints.insert(cp.id.clone(), cp);
        }
    }

    fn two_person(&mut self, p: &str, cp: &Checkpoint) {
        if cp.two_person != Some(true) {
            return;
        }
        let mut exact: Vec<&str> = Vec::new();
        for a in &cp.approvers {
            match Glob::new(a) {
                Ok(g) if g.is_literal() => exact.push(a),
                // A pattern (or a bad glob, reported elsewhere) may admit many identities.
                _ => return,
            }
        }
        exact.sort_unstable();
        exact.dedup();
        if exact.len() < 2 {
            self.error(
                Code::TwoPerson,
                &format!("{p}/two_person"),
                format!(
                    "checkpoint {} needs two distinct approvers but only {} can approve",
                    quote(&cp.id),
                    exact
                        .first()
                        .map_or_else(|| "nobody".to_owned(), |a| quote(a))
                ),
            )
            .suggestion = Some(
                "add a second approver (or a glob such as `user:*@acme.example`), or drop \
`two_person`"
                    .into(),
            );
        }
    }

    /// A checkpoint reference at `pointer` (which must exist in `approvals.checkpoints`).
    fn checkpoint_ref(&mut self, pointer: &str, id: &str) {
        if self.checkpoints.contains_key(id) {
            return;
        }
        let known: Vec<&str> = self.checkpoints.keys().map(String::as_str).collect();
        let help = match closest(id, known.iter().copied()) {
            Some(c) => format!("did you mean `{c}`?"),
            None if known.is_empty() => {
                "define it under `approvals.checkpoints` (there are none yet)".into()
            }
            None => {
                let mut known = known;
                known.sort_unstable();
                format!(
                    "define it under `approvals.checkpoints`, or use one of: {}",
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        self.error(
            Code::UnknownCheckpoint,
            pointer,
            format!(
                "checkpoint {} is not defined in `approvals.checkpoints`",
                quote(id)
            ),
        )
        .suggestion = Some(help);
    }

    fn rules(&mut self, value: &Value) {
        let policy_mode = mode_at(value, "/mode").unwrap_or(Mode::Enforce);
        let mut rules: Vec<RuleInfo> = Vec::new();
        for (list, section) in RULE_LISTS {
            let section_mode = section
                .and_then(|s| mode_at(value, &format!("/{s}/mode")))
                .unwrap_or(policy_mode);
            for (p, v) in items(value, list) {
                let Some(rule) = typed::<Rule>(v) else {
                    continue;
                };
                let mode = rule.mode.unwrap_or(section_mode);
                let sets = MatchSets::new(&rule.matches);
                rules.push(RuleInfo {
                    pointer: p,
                    rule,
                    mode,
                    sets,
                });
            }
        }
        let mut ids: HashMap<&str, &str> = HashMap::new();
        let mut duplicate_ids = Vec::new();
        for r in &rules {
            match ids.get(r.rule.id.as_str()) {
                Some(first) => duplicate_ids.push((r.pointer.clone(), r.rule.id.clone(), *first)),
                None => {
                    ids.insert(&r.rule.id, &r.pointer);
                }
            }
        }
        for (p, id, first) in duplicate_ids {
            let line = self.map.locate(first).line;
            self.error(
                Code::DuplicateRuleId,
                &format!("{p}/id"),
                format!(
                    "rule id {} is already used by the rule at line {line} ({first})",
                    quote(&id)
                ),
            )
            .suggestion = Some("rule ids are unique across all sections; rename one".into());
        }
        for r in &rules {
            self.rule(r);
        }
        self.conditions(&rules);
        self.rule_pairs(&rules);
    }

    fn rule(&mut self, r: &RuleInfo) {
        let p = &r.pointer;
        let rule = &r.rule;
        match (rule.verdict, &rule.checkpoint) {
            (Verdict::RequireApproval, None) => {
                self.error(
                    Code::MissingCheckpoint,
                    &format!("{p}/verdict"),
                    format!(
                        "rule {} requires approval but names no `checkpoint`",
                        quote(&rule.id)
                    ),
                )
                .suggestion =
                    Some("add `checkpoint: <id>` naming one of `approvals.checkpoints`".into());
            }
            (Verdict::RequireApproval, Some(cp)) => {
                self.checkpoint_ref(&format!("{p}/checkpoint"), cp)
            }
            (v, Some(_)) => {
                self.warning(
                    Code::CheckpointIgnored,
                    &format!("{p}/checkpoint"),
                    format!(
                        "`checkpoint` is ignored: rule {} has verdict `{}`, not `require_approval`",
                        quote(&rule.id),
                        v.as_str()
                    ),
                );
            }
            (_, None) => {}
        }
        match (rule.verdict, &rule.patch) {
            (Verdict::Repair, None) => {
                self.error(
                    Code::RepairWithoutPatch,
                    &format!("{p}/verdict"),
                    format!("rule {} repairs but has no `patch`", quote(&rule.id)),
                )
                .suggestion =
                    Some("add a `patch` (RFC 6902 operations applied to the payload)".into());
            }
            (Verdict::Repair, Some(ops)) => self.patch(&format!("{p}/patch"), ops),
            (v, Some(_)) => {
                self.error(
                    Code::PatchWithoutRepair,
                    &format!("{p}/patch"),
                    format!(
                        "`patch` is only applied by a `repair` rule; rule {} has verdict `{}`",
                        quote(&rule.id),
                        v.as_str()
                    ),
                )
                .suggestion = Some("set `verdict: repair`, or remove the patch".into());
            }
            (_, None) => {}
        }
    }

    fn patch(&mut self, p: &str, ops: &[PatchOp]) {
        for (i, op) in ops.iter().enumerate() {
            let here = format!("{p}/{i}");
            if !is_json_pointer(&op.path) {
                self.error(
                    Code::BadPatch,
                    &format!("{here}/path"),
                    format!("{} is not a JSON pointer", quote(&op.path)),
                )
                .suggestion = Some("write an RFC 6901 pointer such as `/customer/email`".into());
            }
            let needs_value = matches!(
                op.op,
                PatchOpKind::Add | PatchOpKind::Replace | PatchOpKind::Test
            );
            let needs_from = matches!(op.op, PatchOpKind::Move | PatchOpKind::Copy);
            // `value: null` is a value (the model keeps it as `Some(Null)`).
            if needs_value && op.value.is_none() {
                self.error(
                    Code::BadPatch,
                    &here,
                    "this operation needs a `value`".to_owned(),
                );
            }
            match (&op.from, needs_from) {
                (None, true) => {
                    self.error(
                        Code::BadPatch,
                        &here,
                        "this operation needs a `from` pointer".to_owned(),
                    );
                }
                (Some(from), true) if !is_json_pointer(from) => {
                    self.error(
                        Code::BadPatch,
                        &format!("{here}/from"),
                        format!("{} is not a JSON pointer", quote(from)),
                    );
                }
                _ => {}
            }
        }
    }

    /// Every rule's `when`, checked together (on one thread with a large stack).
    fn conditions(&mut self, rules: &[RuleInfo]) {
        let with_when: Vec<(String, &str)> = rules
            .iter()
            .filter_map(|r| {
                r.rule
                    .when
                    .as_deref()
                    .map(|w| (format!("{}/when", r.pointer), w))
            })
            .collect();
        let exprs: Vec<&str> = with_when.iter().map(|(_, w)| *w).collect();
        for ((pointer, _), problems) in with_when.iter().zip(condition::check_all(&exprs)) {
            for problem in problems {
                match problem {
                    ConditionProblem::UnknownVariable { ref name, .. } => {
                        let help = match closest(name, CEL_VARIABLES.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => format!(
                                "the variables are {}",
                                CEL_VARIABLES
                                    .iter()
                                    .map(|v| format!("`{v}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        self.error(
                            Code::CelVariable,
                            pointer,
                            format!("`when` names an {problem}"),
                        )
                        .suggestion = Some(help);
                    }
                    ConditionProblem::Syntax { more, .. } => {
                        let d = self.error(
                            Code::CelCompile,
                            pointer,
                            format!("`when` is not valid CEL: {problem}"),
                        );
                        if more > 0 {
                            d.suggestion = Some(format!(
                                "{more} more error{} in the same expression",
                                if more == 1 { "" } else { "s" }
                            ));
                        }
                    }
                    other => {
                        self.error(Code::CelCompile, pointer, format!("`when`: {other}"));
                    }
                }
            }
        }
    }

    fn rule_pairs(&mut self, rules: &[RuleInfo]) {
        // Rules with the same match, condition and mode, bucketed so that large policies stay
        // linear here.
        type Key<'a> = ([Option<Vec<&'a str>>; 5], Option<&'a str>, Mode);
        let mut buckets: HashMap<Key<'_>, Vec<usize>> = HashMap::new();
        let mut reported = vec![false; rules.len()];
        for (j, b) in rules.iter().enumerate() {
            let key = (
                match_key(&b.rule.matches),
                b.rule.when.as_deref().map(str::trim),
                b.mode,
            );
            let earlier = buckets.entry(key).or_default();
            for &i in earlier.iter() {
                let a = &rules[i];
                let line = self.map.locate(&a.pointer).line;
                if a.rule.verdict != b.rule.verdict {
                    let (lo, hi) = if a.rule.verdict < b.rule.verdict {
                        (a, b)
                    } else {
                        (b, a)
                    };
                    self.error(
                        Code::ConflictingRules,
                        &format!("{}/verdict", b.pointer),
                        format!(
                            "rule {} (`{}`) and rule {} (`{}`, line {line}) match the same \
actions under the same condition: only `{}` ever counts, so rule {} has no effect",
                            quote(&b.rule.id),
                            b.rule.verdict.as_str(),
                            quote(&a.rule.id),
                            a.rule.verdict.as_str(),
                            hi.rule.verdict.as_str(),
                            quote(&lo.rule.id)
                        ),
                    )
                    .suggestion = Some(
                        "remove one, or tell them apart with a narrower `match` or a `when`".into(),
                    );
                    reported[j] = true;
                    break;
                }
                if a.rule.checkpoint == b.rule.checkpoint && a.rule.patch == b.rule.patch {
                    self.warning(
                        Code::UnreachableRule,
                        &b.pointer,
                        format!(
                            "rule {} repeats rule {} (line {line}): same match, condition and \
verdict",
                            quote(&b.rule.id),
                            quote(&a.rule.id)
                        ),
                    )
                    .suggestion = Some("remove one of them".into());
                    reported[j] = true;
                    break;
                }
            }
            earlier.push(j);
        }
        // Allow rules hidden behind an unconditional block rule. Quadratic in the worst case,
        // so bounded: beyond MAX_COVER_CHECKS comparisons the (optional) warning is not sought.
        const MAX_COVER_CHECKS: usize = 1_000_000;
        let blockers: Vec<&RuleInfo> = rules
            .iter()
            .filter(|a| {
                a.rule.verdict == Verdict::Block && a.rule.when.is_none() && a.sets.is_some()
            })
            .collect();
        let allows = rules
            .iter()
            .filter(|b| b.rule.verdict == Verdict::Allow)
            .count();
        if blockers.len().saturating_mul(allows) > MAX_COVER_CHECKS {
            return;
        }
        for (j, b) in rules.iter().enumerate() {
            if reported[j] || b.rule.verdict != Verdict::Allow {
                continue;
            }
            let Some(bs) = &b.sets else {
                continue;
            };
            let blocker = blockers.iter().find(|a| {
                !std::ptr::eq(**a, b)
                    && a.mode == b.mode
                    && a.sets.as_ref().is_some_and(|s| s.covers(bs))
            });
            if let Some(a) = blocker {
                let line = self.map.locate(&a.pointer).line;
                self.warning(
                    Code::UnreachableRule,
                    &b.pointer,
                    format!(
                        "rule {} can never take effect: rule {} (line {line}) blocks every action \
it matches, unconditionally",
                        quote(&b.rule.id),
                        quote(&a.rule.id)
                    ),
                )
                .suggestion = Some(format!(
                    "narrow rule {}'s `match` or give it a `when`, or remove rule {}",
                    quote(&a.rule.id),
                    quote(&b.rule.id)
                ));
            }
        }
    }

    fn detectors(&mut self, value: &Value) {
        if let Some(Value::Object(detectors)) = at(value, "/genai_security/detectors") {
            for (name, v) in detectors {
                let p = child("/genai_security/detectors", name);
                if !KNOWN_DETECTORS.contains(&name.as_str()) {
                    self.unknown_detector(&p, name, true);
                }
                let Some(d) = typed::<Detector>(v) else {
                    continue;
                };
                if d.threshold == Some(0.0) {
                    self.warning(
                        Code::ThresholdRange,
                        &format!("{p}/threshold"),
                        format!(
                            "detector {} with threshold 0 fires on every request",
                            quote(name)
                        ),
                    )
                    .suggestion = Some("use a threshold above 0 (the default is 0.5)".into());
                }
                match (d.action, &d.checkpoint) {
                    (Some(Verdict::RequireApproval), None) => {
                        self.warning(
                            Code::MissingCheckpoint,
                            &format!("{p}/action"),
                            format!(
                                "detector {} requires approval but names no `checkpoint`: its \
requests name no approvers",
                                quote(name)
                            ),
                        )
                        .suggestion = Some("add `checkpoint: <id>` to the detector".into());
                    }
                    (Some(Verdict::RequireApproval), Some(cp)) => {
                        self.checkpoint_ref(&format!("{p}/checkpoint"), cp);
                    }
                    (_, Some(_)) => {
                        self.warning(
                            Code::CheckpointIgnored,
                            &format!("{p}/checkpoint"),
                            format!(
                                "`checkpoint` is ignored: detector {} does not require approval",
                                quote(name)
                            ),
                        )
                        .suggestion = Some("set `action: require_approval`, or remove it".into());
                    }
                    _ => {}
                }
            }
        }
        let mut ids: HashMap<String, String> = HashMap::new();
        for (p, v) in items(value, "/genai_security/kill_switch/triggers") {
            if let Some(Value::String(d)) = v.get("detector") {
                if !KNOWN_DETECTORS.contains(&d.as_str()) {
                    self.unknown_detector(&format!("{p}/detector"), d, false);
                }
            }
            if let Some(Value::String(id)) = v.get("id") {
                self.unique(&mut ids, id, &format!("{p}/id"), "kill-switch trigger id");
            }
        }
    }

    fn unknown_detector(&mut self, pointer: &str, name: &str, is_key: bool) {
        let help = match closest(name, KNOWN_DETECTORS.iter().copied()) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("known detectors: {}", KNOWN_DETECTORS.join(", ")),
        };
        let message = format!("unknown detector {}", quote(name));
        let d = if is_key {
            self.error_at_key(Code::UnknownDetector, pointer, message)
        } else {
            self.error(Code::UnknownDetector, pointer, message)
        };
        d.suggestion = Some(help);
    }

    fn unique(&mut self, seen: &mut HashMap<String, String>, id: &str, pointer: &str, what: &str) {
        match seen.get(id) {
            Some(first) => {
                let line = self.map.locate(first).line;
                self.error(
                    Code::DuplicateId,
                    pointer,
                    format!("{what} {} is already used at line {line}", quote(id)),
                );
            }
            None => {
                seen.insert(id.to_owned(), pointer.to_owned());
            }
        }
    }

    fn data_platform(&mut self, value: &Value) {
        let g = "/data_platform/warehouse_guard";
        if let Some(Value::Object(guard)) = at(value, g) {
            let thresholds = guard.contains_key("max_rows_affected")
                || guard.contains_key("max_percent_affected");
            match guard.get("checkpoint") {
                Some(Value::String(cp)) if thresholds => {
                    self.checkpoint_ref(&format!("{g}/checkpoint"), cp);
                }
                Some(Value::String(_)) => {
                    self.warning(
                        Code::CheckpointIgnored,
                        &format!("{g}/checkpoint"),
                        "`checkpoint` is ignored: the warehouse guard sets no \
`max_rows_affected` or `max_percent_affected`"
                            .into(),
                    );
                }
                None if thresholds => {
                    self.warning(
                        Code::MissingCheckpoint,
                        g,
                        "mass operations above `max_rows_affected` / `max_percent_affected` \
require approval, but the warehouse guard names no `checkpoint`: its requests name no approvers"
                            .into(),
                    )
                    .suggestion = Some("add `checkpoint: <id>` to `warehouse_guard`".into());
                }
                _ => {}
            }
        }
        for (p, v) in items(value, "/data_platform/activation") {
            let Some(a) = typed::<Activation>(v) else {
                continue;
            };
            if let (Some(approve), Some(max)) = (a.approval_above, a.max_records) {
                if approve >= max {
                    self.error(
                        Code::ThresholdRange,
                        &format!("{p}/approval_above"),
                        format!(
                            "`approval_above` ({approve}) is not below `max_records` ({max}): \
every sync that would need approval is blocked first, so approval can never trigger"
                        ),
                    )
                    .suggestion = Some("make `approval_above` smaller than `max_records`".into());
                }
            }
            match (&a.approval_above, &a.checkpoint) {
                (Some(_), Some(cp)) => self.checkpoint_ref(&format!("{p}/checkpoint"), cp),
                (Some(_), None) => {
                    self.warning(
                        Code::MissingCheckpoint,
                        &format!("{p}/approval_above"),
                        "syncs above `approval_above` require approval, but this entry names no \
`checkpoint`: its requests name no approvers"
                            .into(),
                    )
                    .suggestion = Some("add `checkpoint: <id>` to this entry".into());
                }
                (None, Some(_)) => {
                    self.warning(
                        Code::CheckpointIgnored,
                        &format!("{p}/checkpoint"),
                        "`checkpoint` is ignored: this entry sets no `approval_above`".into(),
                    );
                }
                (None, None) => {}
            }
        }
    }

    fn enforcement(&mut self, value: &Value) {
        let mut ids: HashMap<String, String> = HashMap::new();
        for (p, v) in items(value, "/enforcement/rate_limits") {
            if let Some(Value::String(id)) = v.get("id") {
                self.unique(&mut ids, id, &format!("{p}/id"), "rate limit id");
            }
            let limit = v.get("limit").and_then(Value::as_u64);
            let burst = v.get("burst").and_then(Value::as_u64);
            if let (Some(limit), Some(burst)) = (limit, burst) {
                if burst > limit.saturating_mul(10) {
                    self.warning(
                        Code::ThresholdRange,
                        &format!("{p}/burst"),
                        format!(
                            "`burst` ({burst}) is more than 10 times `limit` ({limit}): the limit \
hardly limits anything"
                        ),
                    );
                }
            }
        }
        let s = "/enforcement/loop_breaker/similarity";
        if let Some(sim) = at(value, s).and_then(Value::as_f64) {
            if sim < 0.5 {
                self.warning(
                    Code::ThresholdRange,
                    s,
                    format!(
                        "similarity {sim} is below 0.5: requests that differ a lot would count as \
the same and trip the loop breaker"
                    ),
                )
                .suggestion = Some("use 0.8 to 0.95".into());
            }
        }
    }

    fn approvals(&mut self, value: &Value) {
        let u = "/approvals/webhook/url";
        if let Some(Value::String(url)) = at(value, u) {
            if let Some(rest) = url.strip_prefix("http://") {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let host = authority.rsplit('@').next().unwrap_or_default();
                let host = if host.starts_with('[') {
                    host.split(']')
                        .next()
                        .map(|h| format!("{h}]"))
                        .unwrap_or_default()
                } else {
                    host.split(':').next().unwrap_or_default().to_owned()
                };
                let local = host.eq_ignore_ascii_case("localhost")
                    || host.starts_with("127.")
                    || host == "[::1]";
                if !local {
                    self.warning(
                        Code::InsecureWebhook,
                        u,
                        format!(
                            "the webhook {} is plain http: approval notices would cross the \
network unencrypted",
                            quote(url)
                        ),
                    )
                    .suggestion = Some("use https://".into());
                }
            }
        }
    }

    fn schemas(&mut self, value: &Value) {
        for (p, v) in items(value, "/schemas") {
            let Value::Object(entry) = v else {
                continue;
            };
            if !entry.contains_key("route") && !entry.contains_key("tool") {
                self.error(
                    Code::SchemaTarget,
                    &p,
                    "this schema names neither a `route` nor a `tool`, so it applies to nothing"
                        .into(),
                )
                .suggestion = Some("add `route: \"POST /v1/orders\"` or `tool: sql.query`".into());
            }
            if let Some(schema @ Value::Object(_)) = entry.get("schema") {
                let compiled = jsonschema::draft202012::options()
                    .offline()
                    .with_pattern_options(jsonschema::PatternOptions::regex())
                    .build(schema);
                if let Err(e) = compiled {
                    let mut message = e.to_string();
                    if message.len() > 300 {
                        let mut end = 300;
                        while !message.is_char_boundary(end) {
                            end -= 1;
                        }
                        message.truncate(end);
                        message.push('…');
                    }
                    self.error(
                        Code::BadSchema,
                        &format!("{p}/schema"),
                        format!("not a valid JSON Schema (Draft 2020-12): {message}"),
                    );
                }
            }
        }
    }

    fn retention(&mut self, value: &Value) {
        let mut classes: HashMap<String, String> = HashMap::new();
        for (p, v) in items(value, "/retention") {
            if let Some(Value::String(class)) = v.get("class") {
                self.unique(
                    &mut classes,
                    class,
                    &format!("{p}/class"),
                    "retention class",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HEAD: &str = "version: 4\nmetadata: {name: t, version: '1', owners: [a]}\n";

    fn lint(body: &str) -> Vec<(String, usize, String)> {
        lint_str("p.yaml", &format!("{HEAD}{body}"))
            .into_iter()
            .map(|d| (d.code.as_str().to_owned(), d.line, d.pointer))
            .collect()
    }

    #[test]
    fn clean_policy_is_clean() {
        assert_eq!(lint(""), vec![]);
        assert_eq!(
            lint("rules:\n  - {id: a, match: {kind: tool.call}, when: 'tool == \"x\" && labels.all(k, k != \"y\")', verdict: block}\n"),
            vec![]
        );
    }

    #[test]
    fn cel_problems() {
        let got =
            lint("rules:\n  - {id: a, match: {kind: x}, when: 'acton.kind ==', verdict: block}\n");
        assert_eq!(
            got,
            vec![("P_CEL_COMPILE".into(), 4, "/rules/0/when".into())]
        );
        let d = lint_str(
            "p.yaml",
            &format!("{HEAD}rules:\n  - {{id: a, match: {{kind: x}}, when: 'acton.kind == \"x\"', verdict: block}}\n"),
        );
        let d = d.iter().next().unwrap();
        assert_eq!(d.code, Code::CelVariable);
        assert_eq!(d.suggestion.as_deref(), Some("did you mean `action`?"));
        assert!(
            d.message.contains("(at 1:1 of the expression)"),
            "{}",
            d.message
        );
    }

    #[test]
    fn pointers() {
        assert!(is_json_pointer(""));
        assert!(is_json_pointer("/a/~0/~1"));
        assert!(!is_json_pointer("a"));
        assert!(!is_json_pointer("/~2"));
    }
}
