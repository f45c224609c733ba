//! Clyra's policy engine.
//!
//! One policy file (version 4, YAML or JSON, defined by
//! `spec/policy/schemas/policy_v4.schema.json` and described in `spec/policy/README.md`) says what
//! Clyra allows, repairs, blocks, or holds for a human. This crate:
//!
//! - mirrors the schema in Rust types ([`model`]), every struct with `deny_unknown_fields`;
//! - runs approvals ([`approvals`]): human-in-the-loop checkpoints, the two-person rule and
//!   single-use resume tokens bound to the exact payload, with all state in the journal;
//! - decides about actions ([`decide`]): built-in checks, rules with CEL conditions, shadow mode,
//!   obligations, and explanations of why each rule did or did not apply;
//! - loads a policy file with located errors ([`load`]: YAML 1.2 core schema or JSON, version 3
//!   mapped to version 4, schema validation, every error at once) and lints it ([`lint`]);
//! - computes the policy hash ([`hash`]), matches globs ([`glob`]) and compiles rule conditions
//!   safely ([`condition`]);
//!
//! Layering (docs `ARCHITECTURE.md`): the policy layer knows the evidence kernel and the journal
//! (approval state and decisions persist there); it knows nothing about HTTP.

#[cfg(feature = "approvals")]
pub mod approvals;
pub mod condition;
pub mod decide;
pub mod diagnostic;
#[doc(hidden)]
pub mod fuzz_hooks;
pub mod glob;
pub mod hash;
pub mod lint;
pub mod load;
pub mod model;

pub use diagnostic::{Code, Diagnostic, Diagnostics, Severity};
pub use hash::PolicyHash;
pub use lint::{lint_file, lint_str};
pub use load::{load_file, load_str, LoadedPolicy, SourceMap};
pub use model::Policy;
