//! `clyra lineage …`.

use crate::output::{Exit, Output};

/// `clyra lineage` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LineageCommand {
    /// Show the lineage of a dbt run as a text tree, DOT or SVG.
    Show(ShowArgs),
}

/// Arguments of `clyra lineage show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The DEF bundle of the dbt run.
    #[arg(long)]
    pub bundle: Option<std::path::PathBuf>,
}

/// Runs `clyra lineage …`.
pub fn run(cmd: LineageCommand, _out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        LineageCommand::Show(args) => {
            anyhow::bail!("clyra lineage show is not built yet ({:?})", args.bundle)
        }
    }
}
