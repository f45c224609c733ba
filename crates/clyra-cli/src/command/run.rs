//! `clyra run -- dbt …`: the dbt wrapper.

use crate::output::{Exit, Output};

/// Arguments of `clyra run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The command to run, after `--` (e.g. `dbt build --select orders`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Runs `clyra run`.
pub fn run(args: RunArgs, _out: &Output) -> anyhow::Result<Exit> {
    anyhow::bail!("clyra run is not built yet ({:?})", args.command)
}
