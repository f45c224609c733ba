//! `clyra policy explain` and `clyra policy test`: run the decision engine from the command line.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clyra_evidence::jcs;
use clyra_policy::decide::explain::{RuleOutcome, RuleTrace};
use clyra_policy::decide::{Action, Decision, Engine, Explanation, Obligation};
use clyra_policy::model::{Mode, Policy, Verdict};
use serde::Serialize;
use serde_json::{json, Value};

use crate::command::{display_name, read_input};
use crate::output::{Exit, Output};

pub const EXPLAIN_HELP: &str = "Prints, for every built-in check and every rule in evaluation \
order, whether it applied and why not (the match field that failed, with the action's value and \
the patterns; a condition that was false or failed; an allow rule that overrode it), then the \
decision: effective and evaluated verdict, mode, rule ids, obligations. Exit 0 whatever the \
verdict, 1 on a bad policy or action (naming the file, line, column and JSON pointer). The \
decision time is the action's `time`, else --now, else the clock.\n\n\
Example:\n  clyra policy explain examples/policy/guard.json examples/policy/mass-delete.json\n  \
clyra policy explain --format json examples/policy/guard.json - < action.json";

pub const TEST_HELP: &str = "CASES holds {\"cases\": [{\"name\", \"action\": {...}, \"now\"?, \
\"expect\": {\"verdict\", \"evaluated_verdict\"?, \"mode\"?, \"rule_ids\"?: [...], \
\"obligations\"?: [\"repair\" | \"approval\" | \"rate_limit\", ...]}}]}. Each case prints ok or \
FAIL with what differed; exit 0 when every case passes, 1 otherwise (or on a bad file).\n\n\
Example:\n  clyra policy test examples/policy/guard.json examples/policy/guard.cases.json";

/// `clyra policy explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The policy file.
    pub policy: PathBuf,
    /// The action (JSON), or `-` for stdin.
    #[arg(default_value = "-")]
    pub action: PathBuf,
    /// The decision time (RFC 3339) when the action has no `time`; the clock by default.
    #[arg(long)]
    pub now: Option<String>,
}

/// `clyra policy decide`.
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The policy file.
    pub policy: PathBuf,
    /// The action (JSON), or `-` for stdin.
    #[arg(default_value = "-")]
    pub action: PathBuf,
    /// The decision time (RFC 3339) when the action has no `time`; the clock by default.
    #[arg(long)]
    pub now: Option<String>,
    /// Record the decision in this journal: `sqlite:DIR` or
    /// `postgres://USER@HOST:PORT/DB?schema=NAME`.
    #[arg(long)]
    pub store: Option<String>,
    /// Put the entry in this run's chain (with --store).
    #[arg(long, requires = "store")]
    pub run: Option<String>,
    /// Attach the entry to this session (with --store).
    #[arg(long, requires = "store")]
    pub session: Option<String>,
}

/// `clyra policy test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The policy file.
    pub policy: PathBuf,
    /// The test cases.
    pub cases: PathBuf,
}

use crate::command::policy::{load_data as load_document, load_policy};

fn compile(path: &Path) -> anyhow::Result<(Policy, Engine)> {
    let (policy, hash) = load_policy(path)?;
    let engine =
        Engine::new(&policy, hash).map_err(|e| anyhow::anyhow!("`{}`: {e}", display_name(path)))?;
    Ok((policy, engine))
}

fn parse_time(text: &str, what: &str) -> anyhow::Result<jiff::Timestamp> {
    text.parse::<jiff::Timestamp>()
        .map_err(|e| anyhow::anyhow!("{what} `{text}` is not an RFC 3339 time: {e}"))
}

/// Explains one decision.
pub fn explain(a: ExplainArgs, out: &Output) -> anyhow::Result<Exit> {
    let (policy, engine) = compile(&a.policy)?;
    let name = display_name(&a.action);
    let value =
        jcs::parse_strict(&read_input(&a.action)?).map_err(|e| anyhow::anyhow!("`{name}`: {e}"))?;
    let action = Action::from_value(value).map_err(|e| anyhow::anyhow!("`{name}`: {e}"))?;
    let now = match &a.now {
        Some(t) => parse_time(t, "--now")?,
        None => jiff::Timestamp::now(),
    };
    let x = engine.explain_at(&action, Some(now));
    let repaired = repaired_payload(&action, &x.decision);
    let mut doc = serde_json::to_value(&x)?;
    if let Some(r) = &repaired {
        doc["repaired_payload"] = r.clone();
    }
    out.emit(&doc, || {
        let mut s = render_explanation(&policy, &action, &x);
        if let Some(r) = &repaired {
            let _ = writeln!(s, "  repaired payload: {r}");
        }
        s
    });
    Ok(Exit::Ok)
}

/// Decides about one action, optionally records the decision in the journal, and exits 3 when
/// the action may not proceed.
pub fn decide(a: DecideArgs, out: &Output) -> anyhow::Result<Exit> {
    let (_, engine) = compile(&a.policy)?;
    let name = display_name(&a.action);
    let value =
        jcs::parse_strict(&read_input(&a.action)?).map_err(|e| anyhow::anyhow!("`{name}`: {e}"))?;
    let action = Action::from_value(value).map_err(|e| anyhow::anyhow!("`{name}`: {e}"))?;
    let now = match &a.now {
        Some(t) => parse_time(t, "--now")?,
        None => jiff::Timestamp::now(),
    };
    let decision = engine.decide_at(&action, now);
    let mut recorded = None;
    if let Some(url) = &a.store {
        let mut store = clyra_journal::open(url)
            .map_err(|e| anyhow::anyhow!("cannot open the journal store: {e}"))?;
        let event = clyra_policy::decide::record::decision_event(
            &action,
            &decision,
            a.run.as_deref(),
            a.session.as_deref(),
        );
        let receipts = store
            .append(&[event], &clyra_journal::BodyPolicy::Full)
            .map_err(|e| anyhow::anyhow!("cannot record the decision: {e}"))?;
        recorded = receipts.into_iter().next();
    }
    let doc = json!({
        "decision": &decision,
        "recorded": recorded.as_ref().map(|r| json!({
            "tenant": r.tenant, "seq": r.seq, "hash": r.hash.to_hex(),
        })),
    });
    out.emit(&doc, || {
        let mut s = format!(
            "{} (evaluated {}, {})\n",
            decision.verdict.as_str(),
            decision.evaluated_verdict.as_str(),
            decision.mode.as_str()
        );
        if !decision.rule_ids.is_empty() {
            let _ = writeln!(s, "  rules: {}", decision.rule_ids.join(", "));
        }
        for r in &decision.reasons {
            let _ = writeln!(s, "  reason: {r}");
        }
        let _ = writeln!(s, "  policy: {}", decision.policy_hash);
        if let Some(r) = &recorded {
            let _ = writeln!(s, "  recorded: tenant {} seq {}", r.tenant, r.seq);
        }
        s
    });
    Ok(if decision.proceeds() {
        Exit::Ok
    } else {
        Exit::Blocked
    })
}

pub const DECIDE_HELP: &str = "Prints the decision (effective and evaluated verdict, mode, \
rule ids, reasons, policy hash) and, with --store, appends it to the journal as a \
`policy.decision` entry in the action's tenant (the decision and the action's SHA-256, never its \
payload). Exit 0 when the action may proceed (allow, repair), 3 when it may not (block, \
require_approval), 1 on bad input.\n\n\
Example:\n  clyra policy decide examples/policy/guard.json examples/policy/mass-delete.json \\\n    \
--store sqlite:./journal\n  require_approval (evaluated require_approval, enforce)";

/// The payload after the enforced repairs, when there are any (or the error applying them).
fn repaired_payload(action: &Action, d: &Decision) -> Option<Value> {
    let has_repairs = d
        .enforced_obligations()
        .any(|o| matches!(o, Obligation::Repair { .. }));
    if !has_repairs {
        return None;
    }
    let payload = action.payload().cloned().unwrap_or(Value::Null);
    Some(match d.apply_repairs(&payload) {
        Ok(v) => v,
        Err(e) => json!({ "error": e.to_string() }),
    })
}

fn render_explanation(policy: &Policy, action: &Action, x: &Explanation) -> String {
    let d = &x.decision;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "policy {} {} ({})",
        policy.metadata.name, policy.metadata.version, d.policy_hash
    );
    let _ = writeln!(
        s,
        "action {} for tenant {}{} (sha256 {})",
        action.kind(),
        action.tenant(),
        action
            .actor()
            .map(|a| format!(" by {a}"))
            .unwrap_or_default(),
        &d.action_sha256[..16.min(d.action_sha256.len())]
    );
    if let Some(t) = &d.time {
        let _ = writeln!(s, "time   {t}");
    }
    let _ = writeln!(s, "\nbuilt-in checks");
    if x.checks.is_empty() {
        let _ = writeln!(s, "  (none configured)");
    }
    for c in &x.checks {
        let verdict = c
            .verdict
            .map(|v| format!(" ({})", v.as_str()))
            .unwrap_or_default();
        let status = if !c.fired {
            "no"
        } else if !c.overridden_by.is_empty() {
            "overridden"
        } else {
            "yes"
        };
        let _ = write!(s, "  {status:<10} {}{verdict}: {}", c.id, c.detail);
        if let Some(e) = &c.error {
            let _ = write!(s, " (error: {e})");
        }
        if !c.overridden_by.is_empty() {
            let _ = write!(s, "; overridden by allow rule {}", ticks(&c.overridden_by));
        }
        s.push('\n');
    }
    let _ = writeln!(s, "\nrules");
    if x.rules.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for r in &x.rules {
        let _ = writeln!(s, "  {}", render_rule(r));
    }
    if !x.rate_limits.is_empty() {
        let _ = writeln!(s, "\nrate limits");
        for rl in &x.rate_limits {
            match (&rl.key, &rl.no_match) {
                (Some(key), _) => {
                    let _ = writeln!(s, "  yes        {} counted under `{key}`", rl.id);
                }
                (None, Some(why)) => {
                    let _ = writeln!(s, "  no         {}: {why}", rl.id);
                }
                (None, None) => {}
            }
        }
    }
    s.push('\n');
    s.push_str(&render_decision(d));
    s
}

fn render_rule(r: &RuleTrace) -> String {
    let mode = if r.mode == Mode::Shadow {
        " [shadow]"
    } else {
        ""
    };
    let head = format!("{} {}{mode} ({})", r.rule_id, r.verdict.as_str(), r.pointer);
    match &r.outcome {
        RuleOutcome::Matched { condition: true } => {
            format!("yes        {head}: matched, condition true")
        }
        RuleOutcome::Matched { condition: false } => format!("yes        {head}: matched"),
        RuleOutcome::NoMatch(why) => format!("no         {head}: {why}"),
        RuleOutcome::ConditionFalse => format!("no         {head}: condition false"),
        RuleOutcome::ConditionError { error, counts } => {
            if *counts {
                format!("error      {head}: condition failed ({error}); counts as a match (fail closed)")
            } else {
                format!("error      {head}: condition failed ({error}); an allow rule, not counted")
            }
        }
    }
}

fn ticks(ids: &[String]) -> String {
    ids.iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_decision(d: &Decision) -> String {
    let mut s = String::new();
    let _ = write!(s, "decision {}", d.verdict.as_str());
    if d.mode == Mode::Shadow {
        let _ = write!(
            s,
            " (shadow: the policy evaluates to {})",
            d.evaluated_verdict.as_str()
        );
    }
    s.push('\n');
    if d.rule_ids.is_empty() {
        let _ = writeln!(s, "  no rule or check applied: the default verdict");
    }
    for (id, reason) in d.rule_ids.iter().zip(&d.reasons) {
        let _ = writeln!(s, "  {id}: {reason}");
    }
    for o in &d.obligations {
        let shadow = if o.mode() == Mode::Shadow {
            " [shadow]"
        } else {
            ""
        };
        let _ = match o {
            Obligation::Repair { rule_id, patch, .. } => writeln!(
                s,
                "  obligation repair{shadow}: {} operation(s) from `{rule_id}`",
                patch.len()
            ),
            Obligation::Approval {
                rule_id,
                checkpoint,
                approvers,
                two_person,
                ..
            } => writeln!(
                s,
                "  obligation approval{shadow}: checkpoint {} by {}{} (from `{rule_id}`)",
                checkpoint.as_deref().unwrap_or("(none)"),
                if approvers.is_empty() {
                    "nobody".to_owned()
                } else {
                    approvers.join(", ")
                },
                if *two_person { ", two persons" } else { "" }
            ),
            Obligation::RateLimit {
                id,
                key,
                limit,
                window_ms,
                ..
            } => writeln!(
                s,
                "  obligation rate_limit{shadow}: `{id}` {limit} per {window_ms} ms under `{key}`"
            ),
        };
    }
    s
}

// ----- policy test -----------------------------------------------------------------------------

#[derive(Debug)]
struct Case {
    name: String,
    pointer: String,
    action: Value,
    now: Option<jiff::Timestamp>,
    expect: Expect,
}

#[derive(Debug, Default)]
struct Expect {
    verdict: Option<Verdict>,
    evaluated_verdict: Option<Verdict>,
    mode: Option<Mode>,
    rule_ids: Option<Vec<String>>,
    obligations: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
struct Mismatch {
    field: &'static str,
    expected: Value,
    actual: Value,
}

#[derive(Debug, Serialize)]
struct CaseReport {
    name: String,
    ok: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mismatches: Vec<Mismatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<Decision>,
}

#[derive(Debug, Serialize)]
struct TestReport {
    ok: bool,
    policy_hash: String,
    passed: usize,
    failed: usize,
    cases: Vec<CaseReport>,
}

fn parse_cases(doc: &Value) -> Result<Vec<Case>, String> {
    let top = doc
        .as_object()
        .ok_or("expected an object {\"cases\": [...]} at ``")?;
    if let Some(k) = top.keys().find(|k| *k != "cases") {
        return Err(format!("unknown member `{k}` at `/{k}`"));
    }
    let list = top
        .get("cases")
        .and_then(Value::as_array)
        .ok_or("expected an array at `/cases`")?;
    if list.is_empty() {
        return Err("no cases at `/cases`".to_owned());
    }
    let mut out = Vec::with_capacity(list.len());
    let mut names = std::collections::HashSet::new();
    for (i, c) in list.iter().enumerate() {
        let at = format!("/cases/{i}");
        let obj = c
            .as_object()
            .ok_or_else(|| format!("expected an object at `{at}`"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !["name", "action", "now", "expect"].contains(&k.as_str()))
        {
            return Err(format!("unknown member `{k}` at `{at}/{k}`"));
        }
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("expected a name (a string) at `{at}/name`"))?;
        if !names.insert(name) {
            return Err(format!("duplicate case name `{name}` at `{at}/name`"));
        }
        let action = obj
            .get("action")
            .filter(|a| a.is_object())
            .ok_or_else(|| format!("expected an action (an object) at `{at}/action`"))?
            .clone();
        let now = match obj.get("now") {
            None => None,
            Some(Value::String(t)) => {
                Some(parse_time(t, "now").map_err(|e| format!("{e} at `{at}/now`"))?)
            }
            Some(_) => return Err(format!("expected an RFC 3339 string at `{at}/now`")),
        };
        let expect = parse_expect(
            obj.get("expect")
                .ok_or_else(|| format!("expected an `expect` object at `{at}/expect`"))?,
            &format!("{at}/expect"),
        )?;
        out.push(Case {
            name: name.to_owned(),
            pointer: at,
            action,
            now,
            expect,
        });
    }
    Ok(out)
}

fn parse_expect(v: &Value, at: &str) -> Result<Expect, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("expected an object at `{at}`"))?;
    let mut e = Expect::default();
    for (k, v) in obj {
        let here = format!("{at}/{k}");
        match k.as_str() {
            "verdict" => e.verdict = Some(parse_verdict(v, &here)?),
            "evaluated_verdict" => e.evaluated_verdict = Some(parse_verdict(v, &here)?),
            "mode" => {
                e.mode = Some(
                    serde_json::from_value(v.clone())
                        .map_err(|_| format!("expected enforce or shadow at `{here}`"))?,
                )
            }
            "rule_ids" => e.rule_ids = Some(strings(v, &here)?),
            "obligations" => {
                let types = strings(v, &here)?;
                if let Some((i, t)) = types
                    .iter()
                    .enumerate()
                    .find(|(_, t)| !["repair", "approval", "rate_limit"].contains(&t.as_str()))
                {
                    return Err(format!(
                        "unknown obligation `{t}` at `{here}/{i}`; expected repair, approval or rate_limit"
                    ));
                }
                e.obligations = Some(types);
            }
            other => {
                return Err(format!(
                    "unknown member `{other}` at `{here}`; expected verdict, evaluated_verdict, mode, rule_ids or obligations"
                ))
            }
        }
    }
    if e.verdict.is_none() {
        return Err(format!("expected a verdict at `{at}/verdict`"));
    }
    Ok(e)
}

fn parse_verdict(v: &Value, at: &str) -> Result<Verdict, String> {
    serde_json::from_value(v.clone()).map_err(|_| {
        format!("expected allow, repair, block or require_approval at `{at}`, found {v}")
    })
}

fn strings(v: &Value, at: &str) -> Result<Vec<String>, String> {
    v.as_array()
        .and_then(|a| {
            a.iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| format!("expected an array of strings at `{at}`"))
}

fn run_case(engine: &Engine, case: &Case) -> CaseReport {
    let action = match Action::from_value(case.action.clone()) {
        Ok(a) => a,
        Err(e) => {
            return CaseReport {
                name: case.name.clone(),
                ok: false,
                mismatches: Vec::new(),
                error: Some(format!(
                    "invalid action: {} at `{}/action{}`",
                    e.message, case.pointer, e.pointer
                )),
                decision: None,
            }
        }
    };
    let now = case.now.unwrap_or_else(jiff::Timestamp::now);
    let d = engine.decide_at(&action, now);
    let mut mismatches = Vec::new();
    let mut check = |field: &'static str, expected: Option<Value>, actual: Value| {
        if let Some(expected) = expected {
            if expected != actual {
                mismatches.push(Mismatch {
                    field,
                    expected,
                    actual,
                });
            }
        }
    };
    check(
        "verdict",
        case.expect.verdict.map(|v| json!(v)),
        json!(d.verdict),
    );
    check(
        "evaluated_verdict",
        case.expect.evaluated_verdict.map(|v| json!(v)),
        json!(d.evaluated_verdict),
    );
    check("mode", case.expect.mode.map(|m| json!(m)), json!(d.mode));
    check(
        "rule_ids",
        case.expect.rule_ids.as_ref().map(|r| json!(r)),
        json!(d.rule_ids),
    );
    let types: Vec<&str> = d.obligations.iter().map(Obligation::type_name).collect();
    check(
        "obligations",
        case.expect.obligations.as_ref().map(|o| json!(o)),
        json!(types),
    );
    CaseReport {
        name: case.name.clone(),
        ok: mismatches.is_empty(),
        mismatches,
        error: None,
        decision: Some(d),
    }
}

/// Runs a table of cases.
pub fn test(a: TestArgs, out: &Output) -> anyhow::Result<Exit> {
    let (_, engine) = compile(&a.policy)?;
    let name = display_name(&a.cases);
    let doc = load_document(&a.cases)?;
    let cases = parse_cases(&doc).map_err(|e| anyhow::anyhow!("`{name}`: {e}"))?;
    let reports: Vec<CaseReport> = cases.iter().map(|c| run_case(&engine, c)).collect();
    let failed = reports.iter().filter(|r| !r.ok).count();
    let report = TestReport {
        ok: failed == 0,
        policy_hash: engine.policy_hash().to_owned(),
        passed: reports.len() - failed,
        failed,
        cases: reports,
    };
    out.emit(&report, || render_report(&report));
    Ok(if failed == 0 { Exit::Ok } else { Exit::Error })
}

fn render_report(r: &TestReport) -> String {
    let mut s = String::new();
    for c in &r.cases {
        if c.ok {
            let _ = writeln!(s, "ok    {}", c.name);
            continue;
        }
        let _ = writeln!(s, "FAIL  {}", c.name);
        if let Some(e) = &c.error {
            let _ = writeln!(s, "        {e}");
        }
        for m in &c.mismatches {
            let _ = writeln!(
                s,
                "        {}: expected {}, got {}",
                m.field, m.expected, m.actual
            );
        }
        if let Some(d) = &c.decision {
            if !c.mismatches.is_empty() && !d.reasons.is_empty() {
                let _ = writeln!(s, "        reasons: {}", d.reasons.join("; "));
            }
        }
    }
    let _ = writeln!(
        s,
        "\n{} case{}: {} passed, {} failed",
        r.cases.len(),
        if r.cases.len() == 1 { "" } else { "s" },
        r.passed,
        r.failed
    );
    s
}
