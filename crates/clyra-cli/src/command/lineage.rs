//! `clyra lineage …`.
//!
//! Wiring only: the graph, the trust hints and the renderings live in
//! `clyra_warehouse::dbt::lineage`; reading a bundle (verified first) in
//! `clyra_warehouse::dbt::bundle`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clyra_evidence::bundle::VerifyOptions;
use clyra_evidence::trust::TrustStore;
use clyra_warehouse::dbt::bundle::{self, BundleError, DbtBundle};
use clyra_warehouse::dbt::lineage::Lineage;
use clyra_warehouse::dbt::{self, RecordContext};
use serde::Serialize;

use crate::command::bundle::human_report;
use crate::output::{Exit, Output};

/// `clyra lineage` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LineageCommand {
    /// Show the lineage of a dbt run as a text tree, DOT or SVG.
    Show(ShowArgs),
}

/// How `clyra lineage show` renders the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Rendering {
    /// A text tree like `tree`'s, with status and trust markers.
    Text,
    /// Graphviz DOT (`dot -Tsvg`, `dot -Tpng`).
    Dot,
    /// A self-contained SVG (no Graphviz needed).
    Svg,
    /// The lineage document (`clyra.dbt.lineage/v1`).
    Json,
}

/// Arguments of `clyra lineage show`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["bundle", "target_path"])))]
#[command(
    after_help = "Shows the lineage of a dbt run: sources -> seeds / models / snapshots -> \
exposures, each node with its status in the run, its tests and a trust hint: trusted (built or \
validated in this run from trusted inputs, tests passed), unverified, or tainted (an error, a \
failed test or a blocked / unapproved mass write here or upstream; the reason names the origin). \
The rules are in docs/dbt/lineage.md.\n\n\
From a bundle: the DEF bundle is verified against the trust file first and refused if it does \
not verify (exit 2); the lineage is then read from its artifacts/dbt/lineage.json. From a target \
directory: manifest.json and run_results.json (and, with --log, dbt's JSON log) are read \
directly; nothing is verified.\n\n\
--as text (default) prints a tree (✓ trusted, ? unverified, ✗ tainted); dot prints Graphviz DOT; \
svg prints a self-contained SVG; json prints the lineage document. The global --format json \
prints the lineage document too.\n\n\
Examples:\n  clyra lineage show --bundle run.def.zip --trust trust.json\n  \
clyra lineage show --bundle run.def.zip --trust trust.json --as svg > lineage.svg\n  \
clyra lineage show --bundle run.def.zip --trust trust.json --as dot | dot -Tpng > lineage.png\n  \
clyra lineage show --target-path target --log logs/dbt.log"
)]
pub struct ShowArgs {
    /// The DEF bundle of the dbt run (verified against --trust first).
    #[arg(long, conflicts_with = "target_path", requires = "trust")]
    pub bundle: Option<PathBuf>,
    /// The trust file the bundle must verify against.
    #[arg(long, requires = "bundle")]
    pub trust: Option<PathBuf>,
    /// dbt's target directory (manifest.json, run_results.json) instead of a bundle.
    #[arg(long, value_name = "DIR")]
    pub target_path: Option<PathBuf>,
    /// dbt's JSON log (--log-format-file json) to read with --target-path.
    #[arg(long, value_name = "FILE", requires = "target_path")]
    pub log: Option<PathBuf>,
    /// Rendering: text, dot, svg or json.
    #[arg(
        long = "as",
        value_enum,
        default_value = "text",
        value_name = "RENDERING"
    )]
    pub rendering: Rendering,
}

#[derive(Serialize)]
struct Refused<'a> {
    ok: bool,
    refused: String,
    verification: &'a clyra_evidence::bundle::Report,
}

/// Runs `clyra lineage …`.
pub fn run(cmd: LineageCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        LineageCommand::Show(args) => show(args, out),
    }
}

fn show(args: ShowArgs, out: &Output) -> anyhow::Result<Exit> {
    let lineage = match (&args.bundle, &args.trust, &args.target_path) {
        (Some(bundle_path), Some(trust_path), _) => {
            match load_verified(bundle_path, trust_path, out)? {
                Ok(b) => b.lineage,
                Err(exit) => return Ok(exit),
            }
        }
        (_, _, Some(dir)) => from_target(dir, args.log.as_deref())?,
        _ => anyhow::bail!("give --bundle with --trust, or --target-path"),
    };
    let rendering = if out.is_json() {
        Rendering::Json
    } else {
        args.rendering
    };
    let text = match rendering {
        Rendering::Text => lineage.to_text_tree(),
        Rendering::Dot => lineage.to_dot(),
        Rendering::Svg => lineage.to_svg(),
        Rendering::Json => format!("{}\n", serde_json::to_string_pretty(&lineage)?),
    };
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(Exit::Ok)
}

fn from_target(dir: &Path, log: Option<&Path>) -> anyhow::Result<Lineage> {
    let target = dbt::read_target(dir)?;
    let log = log.map(dbt::read_log).transpose()?;
    let recorded = dbt::record(&target, log.as_ref(), &RecordContext::default())
        .with_context(|| format!("cannot read the dbt run in `{}`", dir.display()))?;
    Ok(recorded.lineage)
}

/// Verifies a bundle against a trust file and reads its dbt run; when it does not verify, the
/// report is printed and `Err(exit code 2)` returned.
pub(crate) fn load_verified(
    bundle_path: &Path,
    trust_path: &Path,
    out: &Output,
) -> anyhow::Result<Result<DbtBundle, Exit>> {
    let trust = TrustStore::read_file(trust_path)
        .with_context(|| format!("cannot use trust file `{}`", trust_path.display()))?;
    let bytes = std::fs::read(bundle_path)
        .with_context(|| format!("cannot read `{}`", bundle_path.display()))?;
    let name = bundle_path.to_string_lossy().into_owned();
    let options = VerifyOptions::new(&trust, jiff::Timestamp::now());
    match bundle::load(&bytes, &name, &options) {
        Ok(b) => Ok(Ok(b)),
        Err(BundleError::Unverified { report, .. }) => {
            let refused =
                format!("refused: `{name}` does not verify; an unverified bundle is never read");
            out.emit(
                &Refused {
                    ok: false,
                    refused: refused.clone(),
                    verification: &report,
                },
                || format!("{}{refused}", human_report(&report)),
            );
            Ok(Err(Exit::VerificationFailed))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("`{name}`"))),
    }
}
