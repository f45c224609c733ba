//! `clyra canon`: canonical bytes of a JSON document.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clyra_evidence::jcs;

use crate::command::{display_name, read_input};
use crate::output::{Exit, Output};

pub fn run(file: &Path, out: &Output) -> anyhow::Result<Exit> {
    let input = read_input(file)?;
    let canonical = jcs::canonicalize(&input)
        .with_context(|| format!("`{}` is not valid for canonicalization", display_name(file)))?;
    if out.is_json() {
        let text = String::from_utf8_lossy(&canonical);
        out.emit(
            &serde_json::json!({
                "ok": true,
                "canonical": text,
                "sha256": clyra_evidence::Digest::sha256(&canonical).to_hex(),
                "already_canonical": canonical == input,
            }),
            String::new,
        );
    } else {
        // The bytes exactly, with no trailing newline: they are what gets hashed.
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&canonical)
            .context("cannot write to stdout")?;
        stdout.flush().context("cannot write to stdout")?;
    }
    Ok(Exit::Ok)
}
