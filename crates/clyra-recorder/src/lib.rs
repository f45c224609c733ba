//! Clyra's recorder: the HTTP ingest service in front of the journal.
//!
//! Producers `POST /v1/events` (one event, or `{"events": [...]}`) signed with a per-tenant HMAC
//! key ([`auth`]); the recorder validates every event completely, queues it, and answers only once
//! the journal has committed it to disk (a durable ack). One writer thread owns the journal's
//! write connection and commits whatever is queued in one transaction (group commit), so the cost
//! of an fsync is shared by every request waiting for it. The API is described by
//! `spec/api/recorder.openapi.json` (served at `/openapi.json`); `docs/recorder.md` is the guide.
//!
//! - [`auth`]: the signing scheme (reference implementation) and the replay guard.
//! - [`tenants`]: the tenants file and secret files.
//! - [`server`]: [`Recorder`], the axum service, its routes and status codes.
//! - [`client`]: a small blocking client that signs requests (used by `clyra record`).
//! - [`metrics`]: Prometheus text metrics.
//!
//! Plain HTTP only: TLS is terminated by a proxy in front of the recorder for now. The tenant of
//! every entry comes from the authenticated headers, never from the request body. The recorder
//! holds no business rules (see `ARCHITECTURE.md`).

pub mod auth;
pub mod checkpointer;
pub mod client;
pub mod metrics;
pub mod server;
pub mod tenants;
mod writer;

pub use checkpointer::CheckpointConfig;
pub use server::{Config, Recorder};
pub use tenants::Tenants;

/// The OpenAPI 3.1 description of the recorder's HTTP API.
pub const OPENAPI: &str = include_str!("../../../spec/api/recorder.openapi.json");

/// Why the recorder could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("`{path}`: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The configuration is not usable (tenants file, secret files, limits).
    #[error("{0}")]
    Config(String),
    /// The journal could not be opened.
    #[error("journal: {0}")]
    Store(#[from] clyra_journal::StoreError),
    /// The listening socket failed.
    #[error("listen on `{addr}`: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// The writer thread ended abnormally.
    #[error("the journal writer thread failed")]
    Writer,
}
