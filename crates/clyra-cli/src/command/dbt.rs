//! `clyra dbt …`: record artifacts, init a project, OpenLineage export.

use crate::output::{Exit, Output};

/// `clyra dbt` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DbtCommand {
    /// Record a dbt run made without the wrapper, from its target directory.
    Record(RecordArgs),
    /// Add the clyra_guard package and hooks to a dbt project.
    Init(crate::command::dbt_init::InitArgs),
    /// Emit OpenLineage RunEvents for a recorded dbt run.
    Openlineage(crate::command::dbt_openlineage::OpenlineageArgs),
}

/// Arguments of `clyra dbt record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// dbt's target directory (holding run_results.json and manifest.json).
    #[arg(long, default_value = "target")]
    pub target_path: std::path::PathBuf,
}

/// Runs `clyra dbt …`.
pub fn run(cmd: DbtCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        DbtCommand::Record(args) => {
            anyhow::bail!("clyra dbt record is not built yet ({:?})", args.target_path)
        }
        DbtCommand::Init(args) => crate::command::dbt_init::run(args, out),
        DbtCommand::Openlineage(args) => crate::command::dbt_openlineage::run(args, out),
    }
}
