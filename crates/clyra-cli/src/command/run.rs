//! `clyra run -- dbt …`: the dbt wrapper.
//!
//! The order matters, because every exit path must leave evidence:
//! 1. anchor the warehouse (before anything runs, so the evidence says what state dbt started from);
//! 2. journal the start (the journal is durable: even if this process is killed with SIGKILL, the
//!    start is on record);
//! 3. run dbt in its own process group, with its own target and log directories (dbt overwrites
//!    `target/` on every invocation) and its file log in JSON (the only record of what a killed
//!    run had finished);
//! 4. forward SIGINT; turn SIGTERM into SIGINT (dbt on SIGTERM neither cancels its queries nor
//!    writes results), then SIGTERM and SIGKILL after the grace period;
//! 5. whatever happened: ingest what dbt left, cancel server queries a killed dbt left running,
//!    anchor again, snapshot the models' relations, reconcile the hooks' table, journal the end
//!    and cut the signed DEF bundle.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clyra_warehouse::dbt;
use serde_json::{json, Value};

use crate::command::dbt::{bundle_path, export_artifacts, journal_events, EvidenceArgs, Sealer};
use crate::output::{Exit, Output};

/// Arguments of `clyra run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Runs the command after `--` (dbt) and seals a signed DEF bundle \
(.clyra/bundles/<run id>.def.zip) on every exit path: success, test failures, compile errors, \
SIGINT, SIGTERM. Before dbt starts, Clyra anchors the warehouse (--dsn) and journals the start; \
dbt gets its own target and log directories under .clyra/runs/<run id>/ and writes its file log as \
JSON, so what a killed run had finished is still known. SIGINT is forwarded; SIGTERM is turned into \
SIGINT so that dbt cancels its queries, then SIGTERM and SIGKILL follow after --grace seconds; \
queries a killed dbt left running are cancelled on the server. After dbt exits: a second anchor, a \
metadata snapshot of the models' relations (replay set for `clyra replay`), the hooks' rows in \
clyra_guard.dbt_invocations, then the bundle.\n\n\
With --format json, stdout holds one JSON summary (run id, status, bundle) and dbt's console \
output goes to stderr.\n\n\
Exit code: dbt's own (0 ok, 1 model or test failures, 2 dbt error), 130 or 143 when this wrapper \
was interrupted by SIGINT or SIGTERM, 1 when the evidence could not be sealed (the message says \
why; the journal keeps what was recorded).\n\n\
Defaults: --store $CLYRA_STORE or sqlite:.clyra/journal; --key $CLYRA_KEY or .clyra/keys/clyra.key; \
--dsn $CLYRA_DSN (without one: no anchors, snapshot or replay set); --policy .clyra/policy.yaml \
when present (its data_platform.warehouse_guard thresholds reach the clyra_guard macros as \
CLYRA_GUARD_POLICY). Docs: docs/dbt.md.\n\n\
Examples:\n  clyra run -- dbt build\n  \
CLYRA_DSN=postgres://postgres@127.0.0.1:5432/test clyra run -- dbt build --select marts\n  \
clyra run --format json --grace 10 -- dbt run --vars '{clyra_approval: TOKEN}'"
)]
pub struct RunArgs {
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    /// The warehouse (Postgres DSN) to anchor and snapshot [default: $CLYRA_DSN].
    #[arg(long, env = "CLYRA_DSN", hide_env = true)]
    pub dsn: Option<String>,
    /// Policy whose data_platform.warehouse_guard thresholds the clyra_guard macros use
    /// [default: .clyra/policy.yaml when it exists].
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Seconds dbt gets to stop after an interrupt before SIGTERM, then as many before SIGKILL.
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
    /// Where per-run directories (dbt's target and logs) go.
    #[arg(long, default_value = ".clyra/runs")]
    pub runs_dir: PathBuf,
    /// Per-run directories to keep in --runs-dir (older ones are removed; their evidence is in
    /// the journal and the bundles).
    #[arg(long, default_value_t = 20)]
    pub keep_runs: usize,
    /// Take no snapshot after the run (and so no replay set).
    #[arg(long)]
    pub no_snapshot: bool,
    /// The command to run, after `--` (e.g. `dbt build --select orders`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// What the wrapper learned from the signals it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    Int,
    Term,
}

impl Interrupt {
    fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "SIGINT",
            Interrupt::Term => "SIGTERM",
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Interrupt::Int => 130,
            Interrupt::Term => 143,
        }
    }
}

enum Msg {
    Exited(std::io::Result<std::process::ExitStatus>),
    Signal(i32),
}

/// Runs `clyra run`.
pub fn run(args: RunArgs, out: &Output) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let program = args
        .command
        .first()
        .context("give the command to run after `--`, e.g. `clyra run -- dbt build`")?
        .clone();
    let run_id = new_run_id();
    let run_dir = absolute(&args.runs_dir.join(&run_id))?;
    let target_dir = run_dir.join("target");
    let log_dir = run_dir.join("logs");
    for d in [&target_dir, &log_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create `{}`", d.display()))?;
    }
    let user_target = flag_value(&args.command, "--target-path");
    let user_log = flag_value(&args.command, "--log-path");
    let project_dir = flag_value(&args.command, "--project-dir").map(PathBuf::from);
    // dbt's file log (JSON): ours unless the command names its own --log-path.
    let log_path = match &user_log {
        Some(l) => absolute(&project_dir.clone().unwrap_or_default().join(l))?.join("dbt.log"),
        None => log_dir.join("dbt.log"),
    };
    let target_dir = match &user_target {
        Some(t) => {
            let p = PathBuf::from(t);
            if p.is_absolute() {
                p
            } else {
                absolute(&project_dir.clone().unwrap_or_default().join(p))?
            }
        }
        None => target_dir,
    };

    if user_target.is_none() {
        // A fresh target directory would cost dbt a full parse on every run; its partial-parse
        // state from the previous run (or from the project's own target/) is safe to reuse, as
        // dbt checks it against the project's files, vars and profile and discards it if stale.
        let project = project_dir
            .clone()
            .or_else(|| std::env::var_os("DBT_PROJECT_DIR").map(PathBuf::from))
            .unwrap_or_default();
        seed_partial_parse(
            &args.runs_dir,
            &run_id,
            &project.join("target"),
            &target_dir,
        );
        prune_runs(&args.runs_dir, args.keep_runs);
    }

    // An approval token given on the command line (`--vars '{clyra_approval: …}'`) or in the
    // environment is a bearer credential: dbt copies it into run_results.json and its log, and it
    // must not reach the evidence. Every copy is replaced with its digest.
    let secrets = approval_secrets(&args.command);

    // Everything that can fail for configuration reasons fails here, before dbt runs.
    let mut sealer = Sealer::open(&args.evidence, run_id.clone())?;
    let guard_policy = guard_policy_env(args.policy.as_deref())?;
    let mut warehouse = match &args.dsn {
        Some(dsn) => Some(Warehouse::connect(dsn)?),
        None => None,
    };
    let start_anchor = match warehouse.as_mut() {
        Some(w) => Some(w.anchor().context("cannot take the start anchor")?),
        None => None,
    };

    let mut events = vec![(
        "clyra.run.started".to_owned(),
        Some(format!("{run_id}:started")),
        None,
        json!({
            "command": args.command.iter().map(|a| redact_str(a, &secrets)).collect::<Vec<_>>(),
            "program": program,
            "clyra_version": env!("CARGO_PKG_VERSION"),
            "run_dir": run_dir,
            "target_path": target_dir,
            "dsn": args.dsn.as_deref().map(clyra_warehouse::pg::redact),
            "guard_policy": guard_policy.as_ref().map(|(_, v)| v.clone()),
        }),
    )];
    if let Some(a) = &start_anchor {
        events.extend(anchor_events(&run_id, "start", a));
    }
    sealer.append(events)?;

    // Signals: handled from here on, so dbt starts with default dispositions (a handled signal is
    // reset on exec; an ignored one would be inherited, and dbt would then ignore Ctrl-C).
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot install signal handlers")?;
    let sig_handle = signals.handle();
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for s in signals.forever() {
                if tx.send(Msg::Signal(s)).is_err() {
                    break;
                }
            }
        });
    }

    let mut cmd = Command::new(&program);
    cmd.args(&args.command[1..])
        .env("CLYRA_RUN_ID", &run_id)
        .env("DBT_LOG_FORMAT_FILE", "json");
    if user_log.is_none() {
        cmd.env("DBT_LOG_PATH", &log_dir);
    }
    if user_target.is_none() {
        cmd.env("DBT_TARGET_PATH", &target_dir);
    }
    if let Some((json, _)) = &guard_policy {
        cmd.env("CLYRA_GUARD_POLICY", json);
    }
    if out.is_json() {
        // stdout carries one JSON document: clyra's summary. dbt's console output goes to stderr.
        cmd.stdout(std::io::stderr());
    }
    {
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
    }
    let spawned_at = jiff::Timestamp::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            // Nothing ran; the journal says so and the bundle records it.
            sig_handle.close();
            sealer.note(
                "clyra.run.finished",
                Some(format!("{run_id}:finished")),
                json!({"status": "error", "interrupted": false, "error": format!("cannot start `{program}`: {e}")}),
            )?;
            let path = bundle_path(&args.evidence.out_dir, &run_id);
            let summary = sealer.seal(&path, &[])?;
            anyhow::bail!(
                "cannot start `{program}`: {e} (evidence of the attempt: {})",
                summary.bundle.display()
            );
        }
    };
    let pid = child.id();
    {
        let tx = tx.clone();
        let mut child = child;
        std::thread::spawn(move || {
            let _ = tx.send(Msg::Exited(child.wait()));
        });
    }
    drop(tx);

    // Wait, forwarding signals.
    let grace = Duration::from_secs(args.grace);
    let mut interrupt: Option<Interrupt> = None;
    let mut escalation: Vec<String> = Vec::new();
    let mut deadline: Option<(Instant, u8)> = None; // (when, next step: 1 = SIGTERM, 2 = SIGKILL)
    let status = loop {
        let msg = match deadline {
            Some((when, _)) => rx.recv_timeout(when.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Msg::Exited(s)) => break s,
            Ok(Msg::Signal(s)) => {
                let first = interrupt.is_none();
                let this = if s == signal_hook::consts::SIGINT {
                    Interrupt::Int
                } else {
                    Interrupt::Term
                };
                interrupt.get_or_insert(this);
                if first {
                    // dbt cancels its queries and writes partial results on SIGINT only.
                    send(pid, rustix::process::Signal::INT);
                    escalation.push(format!("{} -> SIGINT to dbt", this.name()));
                    deadline = Some((Instant::now() + grace, 1));
                } else {
                    // A second interrupt: the user means it.
                    send(pid, rustix::process::Signal::TERM);
                    escalation.push(format!("second {} -> SIGTERM to dbt", this.name()));
                    deadline = Some((Instant::now() + grace, 2));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => match deadline {
                Some((_, 1)) => {
                    send(pid, rustix::process::Signal::TERM);
                    escalation.push(format!("grace of {}s over -> SIGTERM to dbt", args.grace));
                    deadline = Some((Instant::now() + grace, 2));
                }
                _ => {
                    send(pid, rustix::process::Signal::KILL);
                    escalation.push("still running -> SIGKILL to dbt".to_owned());
                    deadline = None;
                }
            },
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(std::io::Error::other("lost track of the child process"))
            }
        }
    };
    sig_handle.close();
    let dbt_ms = spawned_at
        .duration_until(jiff::Timestamp::now())
        .as_millis();
    let (exit_code, exit_signal) = match &status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt as _;
            (s.code(), s.signal())
        }
        Err(_) => (None, None),
    };

    // From here on every step is best effort: a failure is journaled, never stops the seal.
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = &status {
        problems.push(format!("waiting for dbt: {e}"));
    }
    let interrupted = interrupt.is_some() || exit_signal.is_some();
    let mut artifacts = Vec::new();
    let mut status_word = "error".to_owned();
    let mut unfinished: Vec<String> = Vec::new();
    let mut relations: Vec<(String, String)> = Vec::new(); // (relation, materialization)
    let log = if log_path.exists() {
        match dbt::read_log(&log_path) {
            Ok(l) => Some(l),
            Err(e) => {
                problems.push(format!("dbt's log: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    let target = dbt::read_target(&target_dir);
    let ctx = dbt::RecordContext {
        command: Some(redact_str(&shell_join(&args.command), &secrets)),
        target: None,
        replay: warehouse.is_some() && !args.no_snapshot,
        interrupted,
    };
    let recorded = match &target {
        Ok(t) => dbt::record(t, log.as_ref(), &ctx).map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    let mut invocation_id = log.as_ref().and_then(|l| l.invocation_id.clone());
    let mut engine_finished = serde_json::Map::new();
    match recorded {
        Ok(r) => {
            status_word = r.run.status.as_str().to_owned();
            if invocation_id.is_none() {
                invocation_id = Some(r.run.dbt.invocation_id.clone());
            }
            unfinished = r
                .run
                .started_not_finished
                .iter()
                .map(|n| n.unique_id.clone())
                .collect();
            relations = r
                .run
                .nodes
                .iter()
                .filter(|n| matches!(n.resource_type.as_str(), "model" | "seed" | "snapshot"))
                .filter(|n| n.status == "success")
                .filter_map(|n| {
                    let mat = match n.resource_type.as_str() {
                        "seed" => "seed".to_owned(),
                        _ => n.materialization.clone()?,
                    };
                    let (schema, name) = split_relation(n.relation.as_deref()?)?;
                    Some((clyra_warehouse::snapshot::table_key(&schema, &name), mat))
                })
                .collect();
            let mut evs = Vec::new();
            for mut e in journal_events(&r.events) {
                redact_value(&mut e.3, &secrets);
                if e.0 == "dbt.run.finished" {
                    if let Value::Object(m) = e.3 {
                        engine_finished = m;
                    }
                } else {
                    evs.push(e);
                }
            }
            if let Err(e) = sealer.append(evs) {
                problems.push(format!("journaling dbt's nodes: {e:#}"));
            }
            artifacts = export_artifacts(&r.artifacts);
            for a in &mut artifacts {
                redact_bytes(&mut a.bytes, &secrets);
            }
        }
        Err(e) => problems.push(format!("dbt's artifacts: {e:#}")),
    }
    if interrupted {
        status_word = "cancelled".to_owned();
    } else if exit_code != Some(0) {
        // dbt failed (a failing test or model, or an error before anything ran): whatever the
        // artifacts say about the nodes, the run did not succeed.
        status_word = "error".to_owned();
    }

    let mut end = json!({});
    if let Some(w) = warehouse.as_mut() {
        if interrupted && !unfinished.is_empty() {
            match w.cancel_leftovers(&unfinished, spawned_at) {
                Ok(c) => {
                    end["cancelled_queries"] = json!(c);
                }
                Err(e) => problems.push(format!("cancelling dbt's queries: {e:#}")),
            }
        }
        match w.anchor() {
            Ok(a) => {
                if let Err(e) = sealer.append(anchor_events(&run_id, "end", &a)) {
                    problems.push(format!("journaling the end anchor: {e:#}"));
                }
            }
            Err(e) => problems.push(format!("end anchor: {e:#}")),
        }
        match w.hooks(&run_id) {
            Ok(h) => end["hooks"] = h,
            Err(e) => problems.push(format!("reading clyra_guard.dbt_invocations: {e:#}")),
        }
        let wants_replay = artifacts.iter().any(|a| a.path == "replay/replay.json");
        if !args.no_snapshot && !relations.is_empty() {
            match w.snapshot(&relations) {
                Ok((bytes, digest)) => {
                    end["snapshot_after_sha256"] = json!(digest);
                    artifacts.push(clyra_journal::export::ExportArtifact {
                        path: "replay/snapshot-after.json".to_owned(),
                        bytes,
                        media_type: "application/json".to_owned(),
                    });
                }
                Err(e) => {
                    problems.push(format!("snapshot after the run: {e:#}"));
                    if wants_replay {
                        artifacts.retain(|a| !a.path.starts_with("replay/"));
                    }
                }
            }
        } else {
            artifacts.retain(|a| !a.path.starts_with("replay/"));
        }
    }

    let mut finished = Value::Object(engine_finished);
    for (k, v) in [
        ("status", json!(status_word)),
        ("interrupted", json!(interrupted)),
        ("exit_code", json!(exit_code)),
        ("dbt_ms", json!(dbt_ms)),
    ] {
        finished[k] = v;
    }
    if !unfinished.is_empty() {
        finished["nodes_started_not_finished"] = json!(unfinished);
    }
    if let Some(i) = interrupt {
        finished["signal"] = json!(i.name());
        finished["escalation"] = json!(escalation);
    } else if let Some(s) = exit_signal {
        finished["signal"] = json!(s);
    }
    if let Some(inv) = &invocation_id {
        finished["invocation_id"] = json!(inv);
    }
    if let Value::Object(m) = end {
        for (k, v) in m {
            finished[k] = v;
        }
    }
    if !problems.is_empty() {
        finished["problems"] = json!(problems);
    }
    let sealed = sealer
        .append(vec![(
            "dbt.run.finished".to_owned(),
            Some(format!("{run_id}:finished")),
            None,
            finished.clone(),
        )])
        .and_then(|_| sealer.seal(&bundle_path(&args.evidence.out_dir, &run_id), &artifacts));

    let exit = match (interrupt, exit_code) {
        (Some(i), _) => i.exit_code(),
        (None, Some(c)) => u8::try_from(c).unwrap_or(1),
        (None, None) => 1,
    };
    match sealed {
        Ok(summary) => {
            out.emit(
                &json!({
                    "ok": true,
                    "run_id": run_id,
                    "status": finished["status"],
                    "interrupted": interrupted,
                    "exit_code": exit,
                    "dbt_exit_code": exit_code,
                    "bundle": summary,
                    "problems": problems,
                    "elapsed_ms": started.elapsed().as_millis(),
                }),
                || {
                    let mut s = format!(
                        "clyra: dbt run {run_id}: {}{}\n  bundle  {} ({} entries, {} bytes)\n",
                        finished["status"].as_str().unwrap_or("?"),
                        if interrupted { " (interrupted)" } else { "" },
                        summary.bundle.display(),
                        summary.entries,
                        summary.bytes
                    );
                    for p in &problems {
                        s.push_str(&format!("  note    {p}\n"));
                    }
                    s.push_str(&format!(
                        "  verify  clyra verify {} --trust .clyra/trust.json",
                        summary.bundle.display()
                    ));
                    s
                },
            );
            Ok(Exit::Code(exit))
        }
        Err(e) => {
            out.error(&e.context(format!(
                "dbt finished (exit {exit}) but the evidence of run {run_id} could not be sealed; \
                 the journal keeps what was recorded: `clyra bundle export --store {} --tenant {} \
                 --run {run_id} --kind def --key KEY --out FILE` retries",
                clyra_journal::postgres::redact_url(&sealer.store_url),
                sealer.tenant
            )));
            Ok(Exit::Error)
        }
    }
}

const PARTIAL_PARSE: &str = "partial_parse.msgpack";

/// Copies dbt's partial-parse file of the latest earlier run (else of `project_target`) into the
/// new target directory. Best effort: without it dbt parses from scratch.
fn seed_partial_parse(runs_dir: &Path, run_id: &str, project_target: &Path, target_dir: &Path) {
    let mut runs: Vec<String> = std::fs::read_dir(runs_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.as_str() != run_id)
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    let candidates = runs
        .iter()
        .rev()
        .map(|r| runs_dir.join(r).join("target").join(PARTIAL_PARSE))
        .chain(std::iter::once(project_target.join(PARTIAL_PARSE)));
    for c in candidates {
        if c.is_file() && std::fs::copy(&c, target_dir.join(PARTIAL_PARSE)).is_ok() {
            return;
        }
    }
}

/// Removes all but the `keep` newest run directories (run ids sort by time).
fn prune_runs(runs_dir: &Path, keep: usize) {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(runs_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("dbt-"))
                })
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    // The current run's directory is already among them: keep it too.
    let excess = runs.len().saturating_sub(keep.max(1));
    for old in runs.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(old);
    }
}

/// Sends `sig` to the child's process group (it leads its own group), or to the child alone if
/// the group is gone.
fn send(pid: u32, sig: rustix::process::Signal) {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if rustix::process::kill_process_group(p, sig).is_err() {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// `dbt-20261202T101500Z-3fa9c1`: sortable, unique enough across machines.
fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    let seed = format!(
        "{}:{}:{:?}",
        now.as_nanosecond(),
        std::process::id(),
        std::thread::current().id()
    );
    let d = clyra_evidence::Digest::sha256(seed.as_bytes()).to_hex();
    format!("dbt-{}-{}", now.strftime("%Y%m%dT%H%M%SZ"), &d[..6])
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(p))
}

/// The value of `--flag VALUE` or `--flag=VALUE` in the wrapped command.
fn flag_value(command: &[String], flag: &str) -> Option<String> {
    let prefix = format!("{flag}=");
    let mut it = command.iter();
    while let Some(a) = it.next() {
        if a == flag {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&prefix) {
            return Some(v.to_owned());
        }
    }
    None
}

/// The command line as a shell would show it.
fn shell_join(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `CLYRA_GUARD_POLICY` for the clyra_guard macros, from the policy's warehouse guard.
fn guard_policy_env(policy: Option<&Path>) -> anyhow::Result<Option<(String, Value)>> {
    let default = Path::new(".clyra/policy.yaml");
    let path = match policy {
        Some(p) => p,
        None if default.exists() => default,
        None => return Ok(None),
    };
    let (policy, _) = crate::command::policy::load_policy(path)?;
    let Some(wg) = policy
        .data_platform
        .as_ref()
        .and_then(|d| d.warehouse_guard.as_ref())
    else {
        return Ok(None);
    };
    let mut v = serde_json::Map::new();
    if let Some(r) = wg.max_rows_affected {
        v.insert("max_rows_affected".into(), json!(r));
    }
    if let Some(p) = wg.max_percent_affected {
        v.insert("max_percent_affected".into(), json!(p));
    }
    let v = Value::Object(v);
    Ok(Some((v.to_string(), v)))
}

fn anchor_events(
    run_id: &str,
    phase: &str,
    a: &clyra_warehouse::anchor::PgAnchor,
) -> Vec<(String, Option<String>, Option<jiff::Timestamp>, Value)> {
    a.def_anchors()
        .into_iter()
        .map(|d| {
            (
                "warehouse.anchor".to_owned(),
                Some(format!("{run_id}:anchor:{phase}:{}", d.kind)),
                d.at,
                json!({
                    "phase": phase,
                    "anchor": {"platform": d.platform, "kind": d.kind, "value": d.value},
                    "database": a.database,
                }),
            )
        })
        .collect()
}

/// The warehouse connection the wrapper keeps for the run.
struct Warehouse {
    dsn: String,
    client: postgres::Client,
}

impl Warehouse {
    fn connect(dsn: &str) -> anyhow::Result<Warehouse> {
        let client = clyra_warehouse::pg::connect(dsn).with_context(|| {
            format!(
                "cannot connect to the warehouse `{}` (nothing was run)",
                clyra_warehouse::pg::redact(dsn)
            )
        })?;
        Ok(Warehouse {
            dsn: dsn.to_owned(),
            client,
        })
    }

    /// Reconnects when the connection dropped while dbt ran.
    fn client(&mut self) -> anyhow::Result<&mut postgres::Client> {
        if self.client.is_closed() {
            self.client = clyra_warehouse::pg::connect(&self.dsn)?;
        }
        Ok(&mut self.client)
    }

    fn anchor(&mut self) -> anyhow::Result<clyra_warehouse::anchor::PgAnchor> {
        Ok(clyra_warehouse::anchor::take(self.client()?)?)
    }

    /// Cancels queries of the nodes dbt had started and not finished, when dbt could not cancel
    /// them itself (it was killed). dbt tags every query with a comment naming its node; only
    /// sessions that started after dbt did are considered.
    fn cancel_leftovers(
        &mut self,
        unfinished: &[String],
        since: jiff::Timestamp,
    ) -> anyhow::Result<Vec<Value>> {
        let patterns: Vec<String> = unfinished
            .iter()
            .map(|id| format!("%\"node_id\": \"{}\"%", like_escape(id)))
            .collect();
        let since = since.to_string();
        let rows = self.client()?.query(
            "SELECT pid, pg_cancel_backend(pid), left(query, 200)
               FROM pg_stat_activity
              WHERE datname = current_database()
                AND pid <> pg_backend_pid()
                AND state = 'active'
                AND backend_start >= $1::text::timestamptz
                AND query LIKE ANY($2::text[])",
            &[&since, &patterns],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let pid: i32 = r.get(0);
                let ok: bool = r.get(1);
                json!({"pid": pid, "cancelled": ok})
            })
            .collect())
    }

    /// The rows the clyra_guard hooks wrote for this run.
    fn hooks(&mut self, run_id: &str) -> anyhow::Result<Value> {
        let c = self.client()?;
        let exists: Option<String> = c
            .query_one(
                "SELECT to_regclass('clyra_guard.dbt_invocations')::text",
                &[],
            )?
            .get(0);
        if exists.is_none() {
            return Ok(json!({"installed": false}));
        }
        let rows = c.query(
            "SELECT phase, invocation_id FROM clyra_guard.dbt_invocations
              WHERE clyra_run_id = $1 ORDER BY recorded_at, phase",
            &[&run_id],
        )?;
        let phases: Vec<Value> = rows
            .iter()
            .map(|r| {
                let phase: Option<String> = r.get(0);
                let inv: Option<String> = r.get(1);
                json!({"phase": phase, "invocation_id": inv})
            })
            .collect();
        let has = |p: &str| phases.iter().any(|v| v["phase"] == p);
        Ok(json!({
            "installed": true,
            "start": has("start"),
            "end": has("end"),
            "rows": phases,
        }))
    }

    /// A metadata snapshot of the schemas the run built into, with exact counts of its tables;
    /// returns the canonical bytes and the state digest.
    fn snapshot(&mut self, relations: &[(String, String)]) -> anyhow::Result<(Vec<u8>, String)> {
        let mut schemas: Vec<String> = Vec::new();
        let mut exact: Vec<String> = Vec::new();
        for (rel, mat) in relations {
            if let Some((schema, _)) = clyra_warehouse::replay::set::parse_relation(rel) {
                if !schemas.contains(&schema) {
                    schemas.push(schema);
                }
                if matches!(mat.as_str(), "table" | "seed" | "incremental" | "snapshot") {
                    exact.push(rel.clone());
                }
            }
        }
        let options = clyra_warehouse::snapshot::Options {
            schemas,
            exact_counts: exact,
            column_stats: false,
            ..Default::default()
        };
        let snap = clyra_warehouse::snapshot::take(self.client()?, &options)?;
        let digest = snap.compute_state_digest()?;
        Ok((snap.to_canonical_json()?, digest))
    }
}

/// Approval tokens the wrapped command carries: `clyra_approval` in a `--vars` value, and
/// `CLYRA_APPROVAL` in the environment.
fn approval_secrets(command: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(v) = std::env::var("CLYRA_APPROVAL") {
        if !v.trim().is_empty() {
            out.push(v.trim().to_owned());
        }
    }
    for arg in command {
        let mut rest = arg.as_str();
        while let Some(i) = rest.find("clyra_approval") {
            rest = &rest[i + "clyra_approval".len()..];
            let after =
                rest.trim_start_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
            let Some(after) = after.strip_prefix(':') else {
                continue;
            };
            let after = after.trim_start();
            let (quote, body) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => (Some(q), &after[1..]),
                _ => (None, after),
            };
            let end = body
                .find(|c: char| match quote {
                    Some(q) => c == q,
                    None => c == ',' || c == '}' || c.is_whitespace(),
                })
                .unwrap_or(body.len());
            let token = body[..end].trim();
            if token.len() >= 8 {
                out.push(token.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn redaction(secret: &str) -> String {
    let d = clyra_evidence::Digest::sha256(secret.as_bytes()).to_hex();
    format!("[redacted clyra_approval sha256:{}]", &d[..16])
}

fn redact_str(s: &str, secrets: &[String]) -> String {
    let mut out = s.to_owned();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), &redaction(secret));
        }
    }
    out
}

fn redact_value(v: &mut Value, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    match v {
        Value::String(s) => *s = redact_str(s, secrets),
        Value::Array(a) => a.iter_mut().for_each(|x| redact_value(x, secrets)),
        Value::Object(m) => m.values_mut().for_each(|x| redact_value(x, secrets)),
        _ => {}
    }
}

/// Replaces the secrets in a file's bytes. Tokens are URL-safe text, and the replacement holds no
/// quote or backslash, so JSON stays JSON (and canonical JSON canonical: keys are unchanged).
fn redact_bytes(bytes: &mut Vec<u8>, secrets: &[String]) {
    for secret in secrets {
        let needle = secret.as_bytes();
        if needle.is_empty() || !bytes.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        let with = redaction(secret).into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(needle) {
                out.extend_from_slice(&with);
                i += needle.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        *bytes = out;
    }
}

/// The schema and name of a dbt relation (`"db"."schema"."name"`, `schema.name`, quoted or bare
/// parts, `""` inside quotes), ignoring the database part.
fn split_relation(relation: &str) -> Option<(String, String)> {
    let mut parts: Vec<String> = Vec::new();
    let mut chars = relation.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c);
                chars.next();
            }
        }
        parts.push(part);
        match chars.next() {
            Some('.') => continue,
            None => break,
            Some(_) => return None,
        }
    }
    match parts.as_slice() {
        [.., schema, name] if parts.len() <= 3 && !schema.is_empty() && !name.is_empty() => {
            Some((schema.clone(), name.clone()))
        }
        _ => None,
    }
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_tokens_are_found_and_redacted() {
        let cmd: Vec<String> = [
            "dbt",
            "run",
            "--vars",
            "{clyra_backfill: true, clyra_approval: 'v1.abcDEF-123_xyz.sig'}",
            "--vars={\"clyra_approval\": \"tok2-longer-value\"}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let secrets = approval_secrets(&cmd);
        assert!(
            secrets.contains(&"v1.abcDEF-123_xyz.sig".to_owned()),
            "{secrets:?}"
        );
        assert!(
            secrets.contains(&"tok2-longer-value".to_owned()),
            "{secrets:?}"
        );
        let mut v = serde_json::json!({"args": {"vars": {"clyra_approval": "v1.abcDEF-123_xyz.sig"}},
            "cmd": shell_join(&cmd)});
        redact_value(&mut v, &secrets);
        let text = v.to_string();
        assert!(
            !text.contains("abcDEF") && !text.contains("tok2-longer"),
            "{text}"
        );
        assert!(text.contains("[redacted clyra_approval sha256:"), "{text}");
        let mut bytes = br#"{"a":"x v1.abcDEF-123_xyz.sig y"}"#.to_vec();
        redact_bytes(&mut bytes, &secrets);
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            back["a"].as_str().unwrap().starts_with("x [redacted"),
            "{back}"
        );
    }

    #[test]
    fn relations_of_dbt() {
        let p = |s: &str| split_relation(s).map(|(a, b)| format!("{a}|{b}"));
        assert_eq!(
            p("\"test\".\"an\".\"orders\"").as_deref(),
            Some("an|orders")
        );
        assert_eq!(p("an.orders").as_deref(), Some("an|orders"));
        assert_eq!(p("\"a.b\".\"x\"\"y\"").as_deref(), Some("a.b|x\"y"));
        assert_eq!(p("orders"), None);
        assert_eq!(p("a.b.c.d"), None);
        assert_eq!(p("\"unterminated"), None);
        assert_eq!(p("\"a\"x.b"), None);
    }

    #[test]
    fn flag_values() {
        let c: Vec<String> = ["dbt", "build", "--target-path", "t", "--project-dir=p"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(flag_value(&c, "--target-path").as_deref(), Some("t"));
        assert_eq!(flag_value(&c, "--project-dir").as_deref(), Some("p"));
        assert_eq!(flag_value(&c, "--select"), None);
    }

    #[test]
    fn shell_join_quotes_what_needs_it() {
        let c: Vec<String> = ["dbt", "run", "--vars", "{a: 1}", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shell_join(&c), "dbt run --vars '{a: 1}' 'it'\\''s'");
    }

    #[test]
    fn run_ids_sort_by_time_and_differ() {
        let a = new_run_id();
        let b = new_run_id();
        assert!(a.starts_with("dbt-2"), "{a}");
        assert_eq!(a.len(), "dbt-20261202T101500Z-3fa9c1".len());
        assert_ne!(a, b);
    }
}
