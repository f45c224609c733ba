//! `clyra dbt openlineage`.

use crate::output::{Exit, Output};

/// Arguments of `clyra dbt openlineage`.
#[derive(Debug, clap::Args)]
pub struct OpenlineageArgs {
    /// The DEF bundle of the dbt run.
    #[arg(long)]
    pub bundle: std::path::PathBuf,
}

/// Runs `clyra dbt openlineage`.
pub fn run(args: OpenlineageArgs, _out: &Output) -> anyhow::Result<Exit> {
    anyhow::bail!("clyra dbt openlineage is not built yet ({:?})", args.bundle)
}
