//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::output::Format;

/// Clyra makes automated work provable: it guards, records and proves what data pipelines, AI
/// agents and automations do to production systems.
#[derive(Debug, Parser)]
#[command(name = "clyra", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok, 1 error, 2 verification failed, 3 blocked by policy.\n\
Docs: docs/cli.md. Start with `clyra demo`."
)]
pub struct Cli {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the RFC 8785 canonical form of a JSON document to stdout.
    #[command(
        after_help = "Input is checked under Clyra's strict profile first: duplicate keys, lone \
surrogates, integers beyond ±(2^53−1), non-finite numbers and nesting deeper than 128 are errors \
naming the line, column and JSON pointer (exit 1).\n\n\
Example:\n  echo '{\"b\": 1.50, \"a\": [true]}' | clyra canon -\n  {\"a\":[true],\"b\":1.5}"
    )]
    Canon {
        /// The JSON file, or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
}
