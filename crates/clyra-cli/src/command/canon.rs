//! `clyra canon`: canonical bytes of a JSON document, or of each line of an NDJSON file.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clyra_evidence::jcs::{self, JcsError};

use crate::command::{display_name, read_input};
use crate::output::{Exit, Output};

pub fn run(file: &Path, ndjson: bool, out: &Output) -> anyhow::Result<Exit> {
    let input = read_input(file)?;
    if ndjson {
        return run_ndjson(file, &input);
    }
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

/// One output line per input line (split at LF; a final LF ends the last line, it does not start
/// another): the canonical document, or an error line. NDJSON either way, whatever `--format`.
fn run_ndjson(file: &Path, input: &[u8]) -> anyhow::Result<Exit> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut lines, mut failed, mut first_failed) = (0_usize, 0_usize, 0_usize);
    if !input.is_empty() {
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            lines += 1;
            match jcs::canonicalize(line) {
                Ok(canonical) => stdout.write_all(&canonical),
                Err(e) => {
                    failed += 1;
                    if first_failed == 0 {
                        first_failed = i + 1;
                    }
                    stdout.write_all(error_line(&e, i + 1).as_bytes())
                }
            }
            .and_then(|()| stdout.write_all(b"\n"))
            .context("cannot write to stdout")?;
        }
    }
    stdout.flush().context("cannot write to stdout")?;
    if failed > 0 {
        eprintln!(
            "error: {failed} of {lines} lines of `{}` are not valid for canonicalization (the first is line {first_failed})",
            display_name(file)
        );
        return Ok(Exit::Error);
    }
    Ok(Exit::Ok)
}

/// `{"error": CODE, "line": N, "message": TEXT}` with a space after each colon and comma: never
/// canonical JSON, so never mistaken for an output document.
fn error_line(e: &JcsError, line: usize) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "{{\"error\": {}, \"line\": {line}, \"message\": {}}}",
        quote(error_code(e)),
        quote(&e.to_string())
    )
}

/// A stable name for each kind of strict-profile error.
fn error_code(e: &JcsError) -> &'static str {
    match e {
        JcsError::InvalidUtf8 { .. } => "invalid_utf8",
        JcsError::DuplicateKey { .. } => "duplicate_key",
        JcsError::LoneSurrogate { .. } => "lone_surrogate",
        JcsError::IntegerOutOfRange { .. } => "integer_out_of_range",
        JcsError::NonFinite { .. } => "non_finite",
        JcsError::TooDeep { .. } => "too_deep",
        JcsError::Syntax { .. } | JcsError::Serialize(_) => "syntax",
    }
}
