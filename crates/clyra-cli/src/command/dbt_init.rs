//! `clyra dbt init`.

use crate::output::{Exit, Output};

/// Arguments of `clyra dbt init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The dbt project directory (holding dbt_project.yml).
    #[arg(long, default_value = ".")]
    pub project_dir: std::path::PathBuf,
}

/// Runs `clyra dbt init`.
pub fn run(args: InitArgs, _out: &Output) -> anyhow::Result<Exit> {
    anyhow::bail!("clyra dbt init is not built yet ({:?})", args.project_dir)
}
