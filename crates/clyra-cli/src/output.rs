//! Output formats and exit codes.

use std::io::Write as _;

use serde::Serialize;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for people.
    Human,
    /// One JSON document on stdout, for scripts and CI.
    Json,
}

/// The process exit codes every `clyra` command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok,
    /// An error outside the evidence: bad arguments, unreadable files, invalid input documents.
    Error,
    /// The evidence did not verify.
    VerificationFailed,
    /// The action was blocked by policy.
    #[allow(dead_code)] // Used by the gateway and policy commands.
    Blocked,
    /// A wrapped command's own exit code, passed through (`clyra run`).
    Code(u8),
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(match e {
            Exit::Ok => 0,
            Exit::Error => 1,
            Exit::VerificationFailed => 2,
            Exit::Blocked => 3,
            Exit::Code(c) => c,
        })
    }
}

/// Where command results go.
#[derive(Debug)]
pub struct Output {
    pub format: Format,
}

impl Output {
    pub fn new(format: Format) -> Self {
        Output { format }
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints a result: `human` in human mode, `json` serialized in JSON mode.
    pub fn emit<T: Serialize>(&self, json: &T, human: impl FnOnce() -> String) {
        let mut stdout = std::io::stdout().lock();
        let _ = match self.format {
            Format::Json => match serde_json::to_string_pretty(json) {
                Ok(s) => writeln!(stdout, "{s}"),
                Err(e) => writeln!(std::io::stderr(), "error: cannot print result: {e}"),
            },
            Format::Human => {
                let text = human();
                if text.ends_with('\n') {
                    write!(stdout, "{text}")
                } else {
                    writeln!(stdout, "{text}")
                }
            }
        };
    }

    /// Reports an error: to stderr for people, as `{"error": ...}` on stdout in JSON mode.
    pub fn error(&self, err: &anyhow::Error) {
        match self.format {
            Format::Json => {
                let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
                let doc = serde_json::json!({ "ok": false, "error": { "message": err.to_string(), "causes": chain } });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            Format::Human => eprintln!("error: {err:#}"),
        }
    }
}
