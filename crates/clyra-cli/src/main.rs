//! `clyra`: guard, record and prove automated work.
//!
//! The binary is thin: it parses arguments, picks the output format and dispatches to
//! `command/*.rs`. Exit codes: 0 ok, 1 error, 2 verification failed, 3 blocked by policy.

mod cli;
mod command;
mod output;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    // Usage errors exit 1, not clap's default 2: 2 means "evidence did not verify".
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                output::Exit::Error.into()
            } else {
                output::Exit::Ok.into()
            };
        }
    };
    let out = output::Output::new(cli.format);
    let code = match command::run(cli.command, &out) {
        Ok(code) => code,
        Err(err) => {
            out.error(&err);
            output::Exit::Error
        }
    };
    code.into()
}
