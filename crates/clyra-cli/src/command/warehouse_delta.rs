//! `clyra warehouse delta anchor`, `clyra warehouse databricks anchor` and
//! `clyra warehouse mlflow model-version`.
//!
//! Wiring only: the log reader and the REST clients live in `clyra_warehouse::{delta, databricks,
//! mlflow}`. This module reads the token (a file or `DATABRICKS_TOKEN`, never a flag), writes the
//! canonical JSON file, and prints a summary. Tokens are never printed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clyra_warehouse::anchor::DefAnchor;
use clyra_warehouse::databricks::{Databricks, Token, UcTableName};
use clyra_warehouse::delta::{DeltaAnchor, DeltaLog};
use clyra_warehouse::mlflow::{Mlflow, ModelVersion, Registry};
use serde::Serialize;

use crate::command::write_new_file;
use crate::output::{Exit, Output};

/// The environment variable a token is read from when no `--token-file` is given.
const TOKEN_ENV: &str = "DATABRICKS_TOKEN";

/// `clyra warehouse delta ...`.
#[derive(Debug, clap::Subcommand)]
pub enum DeltaCommand {
    /// Anchor a local Delta table at a version, from its _delta_log (never its data files).
    #[command(
        after_help = "Reads the table's _delta_log with Clyra's own parser: the latest version \
(from the NNNNNNNNNNNNNNNNNNNN.json commits, checkpoint file names and _last_checkpoint), then the \
commit of the version asked for. The anchor holds the version, the SHA-256 of the exact commit \
file bytes, its commitInfo (timestamp, operation, operationParameters, engineInfo, clientVersion, \
readVersion, isolationLevel, isBlindAppend), the operation metrics normalized across Databricks \
(camelCase) and delta-rs (snake_case), and the row count at the version from the add actions' \
numRecords statistics (replaying add/remove over the JSON commits; null, with the reason, when \
they are missing or were cleaned up after a Parquet checkpoint: Clyra does not read checkpoints). \
Data files are never opened. --table takes a directory or a file:// URL. The anchor file is RFC \
8785 canonical JSON (refuses to overwrite; `-` writes it to stdout alone). Docs: \
docs/warehouses/databricks.md.\n\n\
Examples:\n  clyra warehouse delta anchor --table /data/lake/orders --out orders.anchor.json\n  \
clyra warehouse delta anchor --table file:///data/lake/orders --version 41 \\\n    \
--name main.sales.orders --out -"
    )]
    Anchor(DeltaAnchorArgs),
}

/// `clyra warehouse delta anchor`.
#[derive(Debug, clap::Args)]
pub struct DeltaAnchorArgs {
    /// The table: a directory holding `_delta_log`, or a `file://` URL.
    #[arg(long)]
    pub table: String,
    /// The version to anchor (default: the latest).
    #[arg(long)]
    pub version: Option<u64>,
    /// The table's Unity Catalog name (catalog.schema.table), used as the anchor's table name.
    #[arg(long)]
    pub name: Option<String>,
    /// Where to write the anchor (refuses to overwrite); `-` writes it to stdout alone.
    #[arg(long)]
    pub out: PathBuf,
}

/// `clyra warehouse databricks ...`.
#[derive(Debug, clap::Subcommand)]
pub enum DatabricksCommand {
    /// Anchor a Unity Catalog table at its latest version with DESCRIBE HISTORY.
    #[command(
        after_help = "Runs `DESCRIBE HISTORY <table> LIMIT 1` on a SQL warehouse through the \
Databricks SQL Statement Execution API 2.0 (POST /api/2.0/sql/statements, INLINE, JSON_ARRAY; \
polls until SUCCEEDED or FAILED) and writes the same anchor as `clyra warehouse delta anchor`, \
except that commit_sha256 and row_count are null (DESCRIBE HISTORY returns neither; the anchor's \
`unavailable` member says so). The table name is validated and quoted as a three-part \
identifier. The token (a personal access token or an OAuth access token) comes from \
--token-file (mode 600) or $DATABRICKS_TOKEN, never from a flag, and is never printed. Tested \
against a local stand-in built from the documented API, not against a live workspace.\n\n\
Example:\n  DATABRICKS_TOKEN=... clyra warehouse databricks anchor \\\n    \
--host https://adb-1234567890123456.7.azuredatabricks.net --warehouse-id 1a2b3c4d5e6f7a8b \\\n    \
--table main.finance.fct_revenue --out revenue.anchor.json"
    )]
    Anchor(DatabricksAnchorArgs),
}

/// `clyra warehouse databricks anchor`.
#[derive(Debug, clap::Args)]
pub struct DatabricksAnchorArgs {
    /// The workspace URL (https://...).
    #[arg(long)]
    pub host: String,
    /// The SQL warehouse id.
    #[arg(long)]
    pub warehouse_id: String,
    /// The table, catalog.schema.table (backquote parts with other characters).
    #[arg(long)]
    pub table: String,
    /// A file holding the token (mode 600); default: $DATABRICKS_TOKEN.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Give up (and cancel the statement) after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Where to write the anchor (refuses to overwrite); `-` writes it to stdout alone.
    #[arg(long)]
    pub out: PathBuf,
}

/// `clyra warehouse mlflow ...`.
#[derive(Debug, clap::Subcommand)]
pub enum MlflowCommand {
    /// Record an MLflow model version's metadata (never the model) with its digest.
    #[command(
        after_help = "Reads GET /api/2.0/mlflow/model-versions/get (workspace registry) or, with \
--unity-catalog, GET /api/2.0/mlflow/unity-catalog/model-versions/get, and records name, version, \
source, run_id, status and the creation and last-update times, with the SHA-256 of the canonical \
JSON of that record (the read time is outside the digest: an unchanged version gives the same \
digest). A version that does not exist is an error (RESOURCE_DOES_NOT_EXIST). The token comes \
from --token-file (mode 600) or $DATABRICKS_TOKEN and is never printed. Tested against a local \
stand-in built from the documented API, not against a live workspace.\n\n\
Examples:\n  clyra warehouse mlflow model-version --host https://adb-1234567890123456.7.azuredatabricks.net \\\n    \
--name churn --version 3 --token-file ~/.databricks-token --out churn-3.json\n  \
clyra warehouse mlflow model-version --host https://adb-1234567890123456.7.azuredatabricks.net \\\n    \
--name main.ml.churn --version 7 --unity-catalog --out -"
    )]
    ModelVersion(ModelVersionArgs),
}

/// `clyra warehouse mlflow model-version`.
#[derive(Debug, clap::Args)]
pub struct ModelVersionArgs {
    /// The workspace (or MLflow tracking server) URL.
    #[arg(long)]
    pub host: String,
    /// The registered model's name (catalog.schema.model with --unity-catalog).
    #[arg(long)]
    pub name: String,
    /// The version number.
    #[arg(long)]
    pub version: String,
    /// The model is in Unity Catalog.
    #[arg(long)]
    pub unity_catalog: bool,
    /// A file holding the token (mode 600); default: $DATABRICKS_TOKEN.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Where to write the record (refuses to overwrite); `-` writes it to stdout alone.
    #[arg(long)]
    pub out: PathBuf,
}

fn token(file: Option<&Path>) -> anyhow::Result<Token> {
    match file {
        Some(f) => Ok(Token::from_file(f)?),
        None => Token::from_env(TOKEN_ENV).map_err(|e| {
            anyhow::anyhow!("{e}; pass --token-file FILE (mode 600) or set {TOKEN_ENV}")
        }),
    }
}

/// Writes `bytes` to `out` (new file) or stdout for `-`; returns whether it went to stdout.
fn write_out(out: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    if out.as_os_str() == "-" {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(bytes)
            .and_then(|()| stdout.write_all(b"\n"))
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")?;
        return Ok(true);
    }
    write_new_file(out, bytes)?;
    Ok(false)
}

#[derive(Serialize)]
struct AnchorReport<'a> {
    ok: bool,
    out: String,
    anchor: &'a DeltaAnchor,
    def_anchors: Vec<DefAnchor>,
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |x| x.to_string())
}

fn render_anchor(a: &DeltaAnchor, out: &str) -> String {
    let mut s = format!("delta anchor {} -> {out}\n", a.def_value());
    let commit = match (&a.commit_sha256, a.commit_bytes) {
        (Some(sha), Some(n)) => format!("sha256 {sha} ({n} bytes)"),
        _ => format!(
            "null ({})",
            a.unavailable
                .get("commit_sha256")
                .map_or("not available", String::as_str)
        ),
    };
    let _ = writeln!(s, "  commit     {commit}");
    let engine = a
        .engine_info
        .as_deref()
        .or(a.client_version.as_deref())
        .unwrap_or("-");
    let _ = writeln!(
        s,
        "  operation  {} at {} ({engine}), read version {}",
        opt(a.operation.as_deref()),
        opt(a.timestamp.as_deref()),
        opt(a.read_version)
    );
    let metrics: Vec<String> = serde_json::to_value(&a.metrics)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != "other")
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        s,
        "  metrics    {}{}",
        if metrics.is_empty() {
            "none".to_string()
        } else {
            metrics.join(", ")
        },
        if a.metrics.other.is_empty() {
            String::new()
        } else {
            format!(" (+{} unmapped)", a.metrics.other.len())
        }
    );
    match a.row_count {
        Some(n) => {
            let _ = writeln!(
                s,
                "  rows       {n} in {} live file{} (from the log's statistics)",
                opt(a.live_files),
                if a.live_files == Some(1) { "" } else { "s" }
            );
        }
        None => {
            let _ = writeln!(
                s,
                "  rows       null ({})",
                a.unavailable
                    .get("row_count")
                    .map_or("not available", String::as_str)
            );
        }
    }
    s
}

fn emit_anchor(a: &DeltaAnchor, out_path: &Path, out: &Output) -> anyhow::Result<Exit> {
    let bytes = a.to_canonical_json()?;
    if write_out(out_path, &bytes)? {
        return Ok(Exit::Ok);
    }
    let report = AnchorReport {
        ok: true,
        out: out_path.display().to_string(),
        anchor: a,
        def_anchors: a.def_anchors(),
    };
    out.emit(&report, || render_anchor(a, &report.out));
    Ok(Exit::Ok)
}

pub fn run_delta(cmd: DeltaCommand, out: &Output) -> anyhow::Result<Exit> {
    let DeltaCommand::Anchor(args) = cmd;
    let name = args.name.as_deref().map(UcTableName::parse).transpose()?;
    let log = DeltaLog::open(&args.table)?;
    let mut a = log.anchor(args.version)?;
    if let Some(n) = name {
        a.table = n.display();
        a.uc_name = Some(a.table.clone());
    }
    emit_anchor(&a, &args.out, out)
}

pub fn run_databricks(cmd: DatabricksCommand, out: &Output) -> anyhow::Result<Exit> {
    let DatabricksCommand::Anchor(args) = cmd;
    let table = UcTableName::parse(&args.table)?;
    let token = token(args.token_file.as_deref())?;
    let mut dbx = Databricks::new(&args.host, &token)?;
    dbx.deadline = std::time::Duration::from_secs(args.timeout_secs);
    let a = dbx.describe_history_anchor(&args.warehouse_id, &table)?;
    emit_anchor(&a, &args.out, out)
}

#[derive(Serialize)]
struct ModelVersionReport<'a> {
    ok: bool,
    out: String,
    model_version: &'a ModelVersion,
    def_anchors: Vec<DefAnchor>,
}

pub fn run_mlflow(cmd: MlflowCommand, out: &Output) -> anyhow::Result<Exit> {
    let MlflowCommand::ModelVersion(args) = cmd;
    let token = token(args.token_file.as_deref())?;
    let registry = if args.unity_catalog {
        Registry::UnityCatalog
    } else {
        Registry::Workspace
    };
    let mv = Mlflow::new(&args.host, &token)?.model_version(registry, &args.name, &args.version)?;
    let bytes = mv.to_canonical_json()?;
    if write_out(&args.out, &bytes)? {
        return Ok(Exit::Ok);
    }
    let report = ModelVersionReport {
        ok: true,
        out: args.out.display().to_string(),
        model_version: &mv,
        def_anchors: mv.def_anchors(),
    };
    out.emit(&report, || {
        let r = &mv.record;
        let mut s = format!("model version {} -> {}\n", mv.def_value(), report.out);
        let _ = writeln!(s, "  status     {}", opt(r.status.as_deref()));
        let _ = writeln!(s, "  run        {}", opt(r.run_id.as_deref()));
        let _ = writeln!(s, "  source     {}", opt(r.source.as_deref()));
        let _ = writeln!(
            s,
            "  created    {}, last updated {}",
            opt(r.creation_timestamp.as_deref()),
            opt(r.last_updated_timestamp.as_deref())
        );
        let _ = writeln!(s, "  record     sha256 {}", mv.sha256);
        s
    });
    Ok(Exit::Ok)
}
