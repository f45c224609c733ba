//! One module per command; each returns the exit code it wants.

pub mod approvals;
pub mod bundle;
mod canon;
pub mod dbt;
pub mod dbt_init;
pub mod dbt_openlineage;
mod demo;
pub mod doctor;
pub mod journal;
mod keys;
pub mod lineage;
mod merkle;
pub mod policy;
pub mod policy_eval;
pub mod recorder;
pub mod replay;
pub mod run;
pub mod sign;
pub mod verify_envelope;
pub mod warehouse;
pub mod warehouse_delta;
pub mod warehouse_guard;
pub mod warehouse_snowflake;

use crate::cli::{BundleCommand, Command, RecorderCommand};
use crate::output::{Exit, Output};

pub fn run(command: Command, out: &Output) -> anyhow::Result<Exit> {
    match command {
        Command::Canon { file, ndjson } => canon::run(&file, ndjson, out),
        Command::Merkle(cmd) => merkle::run(cmd, out),
        Command::Keys(cmd) => keys::run(cmd, out),
        Command::Sign(args) => sign::run(args, out),
        Command::VerifyEnvelope(args) => verify_envelope::run(args, out),
        Command::Demo { dir } => demo::run(&dir, out),
        Command::Verify(args) => bundle::verify(args, out),
        Command::Bundle(BundleCommand::Inspect { bundle: path }) => bundle::inspect(&path, out),
        Command::Bundle(BundleCommand::Build(args)) => bundle::build(args, out),
        Command::Bundle(BundleCommand::Export(args)) => bundle::export(args, out),
        Command::Journal(cmd) => journal::run(cmd, out),
        Command::Approvals(cmd) => approvals::run(cmd, out),
        Command::Recorder(RecorderCommand::Serve(args)) => recorder::serve(args, out),
        Command::Record(args) => recorder::record(args, out),
        Command::Policy(cmd) => policy::run(cmd, out),
        Command::Snapshot(cmd) => warehouse::run_snapshot(cmd, out),
        Command::Diff(args) => warehouse::run_diff(args, out),
        Command::Warehouse(cmd) => warehouse::run_warehouse(cmd, out),
        Command::Doctor(args) => doctor::installation(args, out),
        Command::Replay(args) => replay::run(args, out),
        Command::Run(args) => run::run(args, out),
        Command::Dbt(cmd) => dbt::run(cmd, out),
        Command::Lineage(cmd) => lineage::run(cmd, out),
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

/// Creates `path` with `bytes`, refusing to overwrite; written to a temporary file first and
/// renamed into place, so a reader never sees half a file.
pub fn write_new_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!(
            "`{}` already exists; refusing to overwrite it",
            path.display()
        );
    }
    write_atomic(path, bytes, false)
}

/// Replaces `path` with `bytes` atomically (temporary file, fsync, rename).
pub fn replace_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, bytes, true)
}

fn write_atomic(path: &std::path::Path, bytes: &[u8], replace: bool) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("`{}` is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("cannot create `{}`", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write `{}`", tmp.display()))?;
        if replace {
            std::fs::rename(&tmp, path)
        } else {
            // hard_link fails if `path` appeared meanwhile: no overwrite even under a race.
            std::fs::hard_link(&tmp, path).and_then(|()| std::fs::remove_file(&tmp))
        }
        .with_context(|| format!("cannot write `{}`", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
