//! One module per command; each returns the exit code it wants.

mod canon;
mod merkle;

use crate::cli::Command;
use crate::output::{Exit, Output};

pub fn run(command: Command, out: &Output) -> anyhow::Result<Exit> {
    match command {
        Command::Canon { file } => canon::run(&file, out),
        Command::Merkle(cmd) => merkle::run(cmd, out),
    }
}

/// Reads a file, or stdin for `-`.
pub fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    use std::io::Read as _;
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
    }
}

/// The name to show for an input path.
pub fn display_name(path: &std::path::Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}
