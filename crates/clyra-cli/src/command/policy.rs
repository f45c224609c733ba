//! `clyra policy`: lint and hash policy files (YAML or JSON, version 4; version 3 is mapped),
//! explain a decision and run test cases (the last two in [`policy_eval`]).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clyra_policy::{Diagnostic, Diagnostics};
use serde::Serialize;

use crate::command::{display_name, policy_eval};
use crate::output::{Exit, Output};

/// The policy commands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Check policy files: YAML, the v4 schema and the semantics, every problem at once.
    #[command(
        after_help = "Each finding is printed as FILE:LINE:COL: error[CODE] POINTER: MESSAGE \
(help: SUGGESTION), in file order. Codes are stable (P_YAML, P_DUPLICATE_KEY, P_SCHEMA, \
P_UNKNOWN_DETECTOR, P_DUPLICATE_RULE_ID, P_CONFLICTING_RULES, P_UNREACHABLE_RULE, P_CEL_COMPILE, \
P_UNKNOWN_CHECKPOINT, P_V3_RENAMED, ...; docs/policy.md lists them all). Version 3 files are \
mapped to version 4 with a warning per renamed field. Exit 0 when no file has an error (warnings \
allowed), 1 otherwise.\n\n\
Examples:\n  clyra policy lint policy.yaml\n  \
policy.yaml:12:7: error[P_SCHEMA] /genai_security/detectors/pii/treshold: unknown member \
`treshold` (help: did you mean `threshold`?)\n  \
clyra policy lint --format json templates/policy/*.yaml"
    )]
    Lint(LintArgs),
    /// Print the policy hash: sha256 of the canonical JSON of the normalized policy.
    #[command(
        after_help = "The hash covers the policy's JSON data after version mapping, with no \
defaults filled in: comments, key order, quoting, layout and YAML-vs-JSON do not change it; any \
change of a value does. Every decision records it. The file must lint without errors (exit 1 \
otherwise, with the findings on stderr).\n\n\
Examples:\n  clyra policy hash policy.yaml\n  sha256:5f0c…\n  \
clyra policy hash --format json policy.yaml"
    )]
    Hash(HashArgs),
    /// Decide about one action, optionally recording the decision in the journal (exit 3 when
    /// the action may not proceed).
    #[command(after_help = policy_eval::DECIDE_HELP)]
    Decide(policy_eval::DecideArgs),
    /// Run a table of test cases (action → expected verdict) against a policy.
    #[command(after_help = policy_eval::TEST_HELP)]
    Test(policy_eval::TestArgs),
    /// Explain the decision about one action: every rule and check, and why it did or did not
    /// apply.
    #[command(after_help = policy_eval::EXPLAIN_HELP)]
    Explain(policy_eval::ExplainArgs),
}

/// `clyra policy lint`.
#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Policy files (YAML or JSON), or `-` for stdin.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `clyra policy hash`.
#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// The policy file (YAML or JSON), or `-` for stdin.
    pub file: PathBuf,
}

pub fn run(command: PolicyCommand, out: &Output) -> anyhow::Result<Exit> {
    match command {
        PolicyCommand::Lint(args) => lint(args, out),
        PolicyCommand::Hash(args) => hash(args, out),
        PolicyCommand::Decide(args) => policy_eval::decide(args, out),
        PolicyCommand::Test(args) => policy_eval::test(args, out),
        PolicyCommand::Explain(args) => policy_eval::explain(args, out),
    }
}

/// Reads stdin, at most one byte more than a policy may be (the loader refuses that).
fn read_stdin() -> Result<Vec<u8>, Diagnostics> {
    use std::io::Read as _;
    let mut buf = Vec::new();
    let limit = clyra_policy::load::MAX_POLICY_BYTES as u64 + 1;
    match std::io::stdin().take(limit).read_to_end(&mut buf) {
        Ok(_) => Ok(buf),
        Err(e) => Err(Diagnostics::new(vec![Diagnostic::error(
            clyra_policy::Code::Io,
            "<stdin>",
            clyra_policy::diagnostic::Location::START,
            "",
            format!("cannot read stdin: {e}"),
        )])),
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn lint_one(path: &Path) -> Diagnostics {
    if is_stdin(path) {
        match read_stdin() {
            Ok(bytes) => clyra_policy::lint::lint_bytes("<stdin>", &bytes),
            Err(d) => d,
        }
    } else {
        clyra_policy::lint_file(path)
    }
}

/// Loads a policy for the commands that use one (`policy test`, `policy explain`, `approvals`):
/// the loader's located findings go to stderr, and the error names the file.
pub fn load_policy(path: &Path) -> anyhow::Result<(clyra_policy::Policy, String)> {
    match load_one(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            Ok((loaded.policy, loaded.hash.to_string()))
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            anyhow::bail!(
                "`{}` is not a valid policy ({}; `clyra policy lint` explains)",
                display_name(path),
                plural(diagnostics.errors().count(), "error")
            )
        }
    }
}

/// Reads a YAML or JSON data file (a CASES table) under the policy file rules, with located
/// errors.
pub fn load_data(path: &Path) -> anyhow::Result<serde_json::Value> {
    let name = display_name(path);
    let bytes = if is_stdin(path) {
        read_stdin().map_err(|d| {
            anyhow::anyhow!(
                "{}",
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })?
    } else {
        std::fs::read(path).with_context(|| format!("cannot read `{name}`"))?
    };
    clyra_policy::load::read_data(&name, &bytes)
        .map(|(value, _)| value)
        .map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("{}", text.join("\n"))
        })
}

fn load_one(path: &Path) -> Result<clyra_policy::LoadedPolicy, Diagnostics> {
    if is_stdin(path) {
        clyra_policy::load::load_bytes("<stdin>", &read_stdin()?)
    } else {
        clyra_policy::load_file(path)
    }
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    ok: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Diagnostics,
}

#[derive(Serialize)]
struct LintReport {
    ok: bool,
    errors: usize,
    warnings: usize,
    files: Vec<FileReport>,
}

fn lint(args: LintArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut files = Vec::new();
    for path in &args.files {
        let diagnostics = lint_one(path);
        let errors = diagnostics.errors().count();
        let warnings = diagnostics.warnings().count();
        files.push(FileReport {
            file: display_name(path),
            ok: errors == 0,
            errors,
            warnings,
            diagnostics,
        });
    }
    let errors = files.iter().map(|f| f.errors).sum();
    let warnings = files.iter().map(|f| f.warnings).sum();
    let report = LintReport {
        ok: errors == 0,
        errors,
        warnings,
        files,
    };
    out.emit(&report, || {
        let mut text = String::new();
        for f in &report.files {
            for d in &f.diagnostics {
                text.push_str(&d.to_string());
                text.push('\n');
            }
            text.push_str(&match (f.errors, f.warnings) {
                (0, 0) => format!("{}: ok\n", f.file),
                (e, w) => format!(
                    "{}: {}, {}\n",
                    f.file,
                    plural(e, "error"),
                    plural(w, "warning")
                ),
            });
        }
        text
    });
    Ok(if report.ok { Exit::Ok } else { Exit::Error })
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[derive(Serialize)]
struct HashReport<'a> {
    file: String,
    hash: String,
    version: u32,
    name: &'a str,
}

fn hash(args: HashArgs, out: &Output) -> anyhow::Result<Exit> {
    let file = display_name(&args.file);
    match load_one(&args.file) {
        Ok(loaded) => {
            if !out.is_json() {
                for w in &loaded.warnings {
                    eprintln!("{w}");
                }
            }
            let report = HashReport {
                file,
                hash: loaded.hash.to_string(),
                version: loaded.policy.version,
                name: &loaded.policy.metadata.name,
            };
            out.emit(&report, || report.hash.clone());
            Ok(Exit::Ok)
        }
        Err(diagnostics) => {
            if out.is_json() {
                let doc = serde_json::json!({
                    "ok": false,
                    "file": file,
                    "error": { "message": format!("`{file}` is not a valid policy") },
                    "diagnostics": diagnostics,
                });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                eprintln!("{diagnostics}");
                eprintln!("error: `{file}` is not a valid policy; no hash");
            }
            Ok(Exit::Error)
        }
    }
}
