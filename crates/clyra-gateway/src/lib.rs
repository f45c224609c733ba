//! Clyra's gateway (issue 9). This crate grows in steps; so far, the enforcement primitives the
//! proxy will apply to each request, each a module with its own tests, all driven by policy:
//!
//! - [`state`]: where shared gateway state lives (rate windows, idempotency keys, kill-switch):
//!   the [`state::StateStore`] trait, in memory (the embedded default) and in Redis (several
//!   gateway instances), both passing one conformance suite.
//! - [`velocity`]: sliding-window limits per actor, tenant and route, with a burst allowance.
//! - [`idempotency`]: idempotency keys from a header or an HMAC fingerprint of the canonical body,
//!   scoped per tenant, with a TTL; replays answer the stored response, concurrent duplicates 409.
//! - [`sql_guard`]: SQL found in payloads, parsed in the route's dialect; multi-statement input,
//!   DDL, and UPDATE/DELETE without a restrictive WHERE refused unless allowlisted or approved.
//! - [`tenant_fence`]: requests naming another tenant's resources are refused.
//! - [`detector`]: the interface threat detectors (prompt injection, loops) plug into.

pub mod detector;
pub mod idempotency;
pub mod sql_guard;
pub mod state;
pub mod tenant_fence;
pub mod velocity;
