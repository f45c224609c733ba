//! `clyra dbt …`: record artifacts, init a project, OpenLineage export; and the pipeline `clyra run`
//! shares with `clyra dbt record`: journal the run's events, cut the DEF bundle.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clyra_evidence::bundle::Kind;
use clyra_evidence::keys::PrivateKey;
use clyra_evidence::keys::Signer;
use clyra_journal::entry::{BodyPolicy, NewEvent};
use clyra_journal::export::{ExportArtifact, ExportOptions, Selection};
use clyra_journal::Store;
use clyra_warehouse::dbt;
use serde_json::{json, Value};

use crate::output::{Exit, Output};

/// `clyra dbt` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DbtCommand {
    /// Record a dbt run made without the wrapper, from its target directory.
    #[command(
        after_help = "Reads run_results.json (v6) and manifest.json (v12) from --target-path \
(and dbt's JSON log with --log, which holds what a killed run had finished), appends one journal \
entry per node to the run `dbt-<invocation_id>` and cuts a signed DEF bundle. Entry ids and times \
come from the artifacts, so recording the same files again appends nothing and gives the same \
evidence. Unknown major schema versions (run-results v7, manifest v13, ...) are refused. Prefer \
`clyra run -- dbt ...`, which also anchors the warehouse and survives interrupts; this command is \
for runs made elsewhere (dbt Cloud artifacts, a CI job). Defaults as for `clyra run`: --store \
$CLYRA_STORE or sqlite:.clyra/journal, --key $CLYRA_KEY or .clyra/keys/clyra.key, --out-dir \
.clyra/bundles. Exit 0 when the bundle was written, 1 otherwise. Docs: docs/dbt.md.\n\n\
Examples:\n  dbt build && clyra dbt record --target-path target\n  \
clyra dbt record --target-path ci-artifacts/target --log ci-artifacts/logs/dbt.log --format json"
    )]
    Record(RecordArgs),
    /// Add the clyra_guard package and hooks to a dbt project.
    Init(crate::command::dbt_init::InitArgs),
    /// Emit OpenLineage RunEvents for a recorded dbt run.
    Openlineage(crate::command::dbt_openlineage::OpenlineageArgs),
}

/// Where evidence goes: shared by `clyra run` and `clyra dbt record`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvidenceArgs {
    /// The journal store: sqlite:DIR or postgres://USER@HOST:PORT/DB[?schema=NAME]
    /// [default: $CLYRA_STORE, else sqlite:.clyra/journal].
    #[arg(long, env = "CLYRA_STORE", hide_env = true)]
    pub store: Option<String>,
    /// The Ed25519 key that signs the bundle and the journal checkpoint
    /// [default: $CLYRA_KEY, else .clyra/keys/clyra.key, as `clyra dbt init` creates it].
    #[arg(long, env = "CLYRA_KEY", hide_env = true)]
    pub key: Option<PathBuf>,
    /// Directory the bundle is written to (as <run id>.def.zip).
    #[arg(long, default_value = ".clyra/bundles")]
    pub out_dir: PathBuf,
    /// Tenant the evidence belongs to.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Environment (prod, staging, dev).
    #[arg(long, default_value = "dev")]
    pub environment: String,
}

impl EvidenceArgs {
    /// The store URL.
    pub fn store_url(&self) -> String {
        self.store
            .clone()
            .unwrap_or_else(|| "sqlite:.clyra/journal".to_owned())
    }

    /// Reads the signing key, with a hint when it is missing.
    pub fn read_key(&self) -> anyhow::Result<(PathBuf, PrivateKey)> {
        let path = self
            .key
            .clone()
            .unwrap_or_else(|| PathBuf::from(".clyra/keys/clyra.key"));
        if !path.exists() {
            anyhow::bail!(
                "no signing key at `{}`: run `clyra dbt init` in the dbt project to create one, or \
                 give --key (or set CLYRA_KEY)",
                path.display()
            );
        }
        let key = clyra_evidence::keys::read_private_key_file(&path)
            .with_context(|| format!("cannot use key `{}`", path.display()))?;
        Ok((path, key))
    }
}

/// Arguments of `clyra dbt record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// dbt's target directory (holding run_results.json and manifest.json).
    #[arg(long, default_value = "target")]
    pub target_path: PathBuf,
    /// dbt's log file written with `--log-format-file json` (default: none).
    #[arg(long)]
    pub log: Option<PathBuf>,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

/// Runs `clyra dbt …`.
pub fn run(cmd: DbtCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        DbtCommand::Record(args) => record(args, out),
        DbtCommand::Init(args) => crate::command::dbt_init::run(args, out),
        DbtCommand::Openlineage(args) => crate::command::dbt_openlineage::run(args, out),
    }
}

/// An open journal plus what sealing a run needs.
pub struct Sealer {
    pub store: Box<dyn Store>,
    pub store_url: String,
    pub tenant: String,
    pub environment: String,
    pub run_id: String,
    pub key: PrivateKey,
}

impl Sealer {
    /// Opens the store (creating an SQLite directory, private, when it is missing).
    pub fn open(evidence: &EvidenceArgs, run_id: String) -> anyhow::Result<Sealer> {
        let (_, key) = evidence.read_key()?;
        let url = evidence.store_url();
        let store = clyra_journal::open(&url).with_context(|| {
            format!(
                "cannot open the journal store `{}`",
                clyra_journal::postgres::redact_url(&url)
            )
        })?;
        Ok(Sealer {
            store,
            store_url: url,
            tenant: evidence.tenant.clone(),
            environment: evidence.environment.clone(),
            run_id,
            key,
        })
    }

    /// Appends events to the run, bodies kept (dbt evidence is metadata: ids, statuses, counts,
    /// digests; never row data). Returns how many were new.
    pub fn append(
        &mut self,
        events: Vec<(String, Option<String>, Option<jiff::Timestamp>, Value)>,
    ) -> anyhow::Result<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        let batch: Vec<NewEvent> = events
            .into_iter()
            .map(|(kind, id, ts, body)| NewEvent {
                tenant: self.tenant.clone(),
                kind,
                ts,
                id,
                run: Some(self.run_id.clone()),
                session: None,
                actor: Some("dbt".to_owned()),
                body,
            })
            .collect();
        let receipts = self
            .store
            .append(&batch, &BodyPolicy::Full)
            .with_context(|| format!("cannot append to the journal `{}`", self.store.describe()))?;
        Ok(receipts.iter().filter(|r| !r.duplicate).count())
    }

    /// Appends one event now.
    pub fn note(&mut self, kind: &str, id: Option<String>, body: Value) -> anyhow::Result<usize> {
        self.append(vec![(kind.to_owned(), id, None, body)])
    }

    /// Cuts the run's DEF bundle to `out` (never over an existing file).
    pub fn seal(
        &mut self,
        out: &Path,
        artifacts: &[ExportArtifact],
    ) -> anyhow::Result<SealSummary> {
        if out.exists() {
            anyhow::bail!(
                "`{}` already exists; refusing to overwrite it",
                out.display()
            );
        }
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        let (created_at, _) = crate::command::bundle::build_time()?;
        let signers: [&dyn Signer; 1] = [&self.key];
        let bundle = clyra_journal::export::export(
            self.store.as_mut(),
            &ExportOptions {
                tenant: &self.tenant,
                selection: Selection::Run(self.run_id.clone()),
                kind: Kind::Def,
                environment: self.environment.clone(),
                bundle_id: None,
                created_at,
                signers: &signers,
                checkpoint_key: &self.key,
                log_name: "clyra/journal",
                artifacts,
            },
        )
        .with_context(|| format!("cannot cut the bundle of run {}", self.run_id))?;
        bundle
            .write_zip(out)
            .with_context(|| format!("cannot write `{}`", out.display()))?;
        let m = bundle.manifest();
        Ok(SealSummary {
            bundle: out.to_path_buf(),
            bundle_id: m.bundle_id.clone(),
            entries: m.journal.count,
            bytes: bundle.zip_bytes().len(),
        })
    }
}

/// What [`Sealer::seal`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SealSummary {
    pub bundle: PathBuf,
    pub bundle_id: String,
    pub entries: u64,
    pub bytes: usize,
}

/// The engine's events as journal events.
pub fn journal_events(
    events: &[dbt::Event],
) -> Vec<(String, Option<String>, Option<jiff::Timestamp>, Value)> {
    events
        .iter()
        .map(|e| (e.kind.clone(), Some(e.id.clone()), e.ts, e.body.clone()))
        .collect()
}

/// The engine's artifacts as bundle artifacts.
pub fn export_artifacts(artifacts: &[dbt::Artifact]) -> Vec<ExportArtifact> {
    artifacts
        .iter()
        .map(|a| ExportArtifact {
            path: a.path.clone(),
            bytes: a.bytes.clone(),
            media_type: a.media_type.clone(),
        })
        .collect()
}

/// The bundle path for a run.
pub fn bundle_path(out_dir: &Path, run_id: &str) -> PathBuf {
    out_dir.join(format!("{run_id}.def.zip"))
}

/// Runs `clyra dbt record`.
fn record(args: RecordArgs, out: &Output) -> anyhow::Result<Exit> {
    let target = dbt::read_target(&args.target_path).with_context(|| {
        format!(
            "cannot read dbt's artifacts in `{}`",
            args.target_path.display()
        )
    })?;
    let log = match &args.log {
        Some(p) => Some(
            dbt::read_log(p).with_context(|| format!("cannot read dbt's log `{}`", p.display()))?,
        ),
        None => None,
    };
    let recorded = dbt::record(&target, log.as_ref(), &dbt::RecordContext::default())?;
    let invocation = recorded.run.dbt.invocation_id.clone();
    let run_id = format!("dbt-{invocation}");
    let mut sealer = Sealer::open(&args.evidence, run_id.clone())?;
    let events = journal_events(&recorded.events);
    let total = events.len();
    let appended = sealer.append(events)?;
    let path = bundle_path(&args.evidence.out_dir, &run_id);
    let summary = sealer.seal(&path, &export_artifacts(&recorded.artifacts))?;
    out.emit(
        &json!({
            "ok": true,
            "run_id": run_id,
            "status": recorded.run.status.as_str(),
            "events": total,
            "appended": appended,
            "bundle": summary,
        }),
        || {
            format!(
                "recorded dbt run {invocation} ({} events, {appended} new)\n  status   {}\n  bundle   {} ({} entries, {} bytes)\nverify with: clyra verify {} --trust .clyra/trust.json",
                total,
                recorded.run.status.as_str(),
                summary.bundle.display(),
                summary.entries,
                summary.bytes,
                summary.bundle.display()
            )
        },
    );
    Ok(Exit::Ok)
}
