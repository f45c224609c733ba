//! `clyra policy`: lint, hash, explain and test policies.
//!
//! MERGE NOTE: this is the decision engine's half of the enum (`Test`, `Explain`); the loader's
//! half (`Lint`, `Hash`) lives in the other branch's version of this file. Merge the two enums
//! and the two `run` match arms.

use crate::command::policy_eval;
use crate::output::{Exit, Output};

/// The policy commands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Run a table of test cases (action → expected verdict) against a policy.
    #[command(after_help = policy_eval::TEST_HELP)]
    Test(policy_eval::TestArgs),
    /// Explain the decision about one action: every rule and check, and why it did or did not
    /// apply.
    #[command(after_help = policy_eval::EXPLAIN_HELP)]
    Explain(policy_eval::ExplainArgs),
}

/// Runs a policy command.
pub fn run(cmd: PolicyCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        PolicyCommand::Test(a) => policy_eval::test(a, out),
        PolicyCommand::Explain(a) => policy_eval::explain(a, out),
    }
}
