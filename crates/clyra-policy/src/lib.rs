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
//!
//! Layering (docs `ARCHITECTURE.md`): the policy layer knows the evidence kernel and the journal
//! (approval state and decisions persist there); it knows nothing about HTTP.

pub mod approvals;
pub mod decide;
pub mod model;

pub use model::Policy;
