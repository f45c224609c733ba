//! Snowflake anchors: live query-id anchors taken through the SQL API, reconciled later against
//! `SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY`.
//!
//! - [`auth`]: key-pair JWTs (RS256, the documented `iss`/`sub` claims) and OAuth tokens.
//! - [`api`]: a client for the documented SQL API v2 (`POST /api/v2/statements`,
//!   `GET /api/v2/statements/{handle}`): idempotent `requestId`s, 202 polling, result partitions,
//!   errors with their `code` and `sqlState`.
//! - [`anchor`]: [`SnowflakeAnchor`], captured with one session-context statement whose
//!   statement handle is the anchor's query id; anchor files.
//! - [`reconcile`]: turns provisional anchors into `confirmed`, `mismatch` or `missing` by
//!   reading QUERY_HISTORY metadata (never query text, never row values).
//!
//! ACCOUNT_USAGE views lag 45 minutes to 3 hours behind the statements they describe, so an
//! anchor is `provisional` when taken and reconciled later (`clyra warehouse snowflake reconcile`).
//!
//! ```no_run
//! use std::path::Path;
//! use clyra_warehouse::snowflake::{anchor, reconcile, AnchorSet, Client, Credentials, KeyPair, Options};
//!
//! let key = KeyPair::from_file("myorg-myaccount", "CI_BOT", Path::new("rsa_key.p8"))?;
//! let client = Client::new("myorg-myaccount", Credentials::KeyPair(Box::new(key)), Options::default())?;
//! let a = anchor::capture(&client, &anchor::Context::default())?;
//! let mut set = AnchorSet::new(vec![a]);
//! // ... 45 min to 3 h later ...
//! let summary = reconcile::reconcile(&client, &mut set.anchors, &reconcile::Options::default())?;
//! println!("{} confirmed, {} mismatch", summary.confirmed, summary.mismatch);
//! std::fs::write("anchors.json", set.to_canonical_json()?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Tested against a local stand-in server built from the documented API
//! (`tests/support/snowflake.rs`) and, for SQL shape, against `fakesnow`; never against a live
//! account. `docs/warehouses/snowflake.md` says how to set up a real one.

pub mod anchor;
pub mod api;
pub mod auth;
pub mod reconcile;

use std::path::PathBuf;

pub use anchor::{AnchorSet, AnchorStatus, SnowflakeAnchor};
pub use api::{Client, Options, ResultSet, Statement};
pub use auth::{Credentials, KeyPair, OAuthToken};

use crate::http::HttpError;

/// What went wrong talking to Snowflake or reading an anchors file. No variant carries a token,
/// a key or a query text with values in it.
#[derive(Debug, thiserror::Error)]
pub enum SnowflakeError {
    /// The HTTP layer failed (transport, undecodable answer, unexpected status).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The private key file cannot be used.
    #[error("cannot use the private key `{path}`: {message}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why (never the key itself).
        message: String,
    },
    /// The OAuth token file cannot be used.
    #[error("cannot use the OAuth token file `{path}`: {message}")]
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// Why (never the token itself).
        message: String,
    },
    /// An argument is not acceptable (account, user, query id, option).
    #[error("invalid {what} `{value}`: {message}")]
    Invalid {
        /// What it is.
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why.
        message: String,
    },
    /// Snowflake refused the credentials (HTTP 401 or 403).
    #[error("Snowflake refused the {token_type} credentials (HTTP {status}{}): {message}. {hint}", code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default())]
    Auth {
        /// `KEYPAIR_JWT` or `OAUTH`.
        token_type: &'static str,
        /// The HTTP status.
        status: u16,
        /// Snowflake's error code, when it sent one.
        code: Option<String>,
        /// Snowflake's message.
        message: String,
        /// What to check.
        hint: String,
    },
    /// A statement failed on the server (HTTP 422 and the other documented failure answers).
    #[error("Snowflake statement failed: {message} (code {code}, SQLSTATE {sql_state}{})", handle.as_deref().map(|h| format!(", statement {h}")).unwrap_or_default())]
    Sql {
        /// Snowflake's error code, e.g. `002003`.
        code: String,
        /// The SQLSTATE, e.g. `42S02`.
        sql_state: String,
        /// Snowflake's message.
        message: String,
        /// The statement handle, when the statement got one.
        handle: Option<String>,
    },
    /// Snowflake kept answering 429 (or 503).
    #[error("Snowflake is rate limiting this client: HTTP {status} to {method} {path} after {attempts} attempts; try again later")]
    RateLimited {
        /// 429 or 503.
        status: u16,
        /// The method.
        method: &'static str,
        /// The path.
        path: String,
        /// How many times it was tried.
        attempts: u32,
    },
    /// A statement was still running when the client's deadline passed.
    #[error("statement {handle} was still running after {waited_ms} ms (timeout {timeout_s} s); it may still finish: cancel it with POST /api/v2/statements/{handle}/cancel or raise --timeout")]
    Timeout {
        /// The statement handle.
        handle: String,
        /// How long the client waited.
        waited_ms: u128,
        /// The timeout in force.
        timeout_s: u64,
    },
    /// Snowflake answered something the documented API does not allow.
    #[error("unexpected answer from Snowflake ({what}): {message}")]
    Unexpected {
        /// Which step or value.
        what: String,
        /// What was wrong.
        message: String,
    },
    /// An anchors file is not valid.
    #[error("invalid Snowflake anchors file at JSON pointer `{pointer}`: {message}")]
    AnchorsFile {
        /// Where.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// A value could not be written as canonical JSON.
    #[error("cannot write canonical JSON: {0}")]
    Canonical(String),
}

pub(crate) fn unexpected(what: impl Into<String>, message: impl Into<String>) -> SnowflakeError {
    SnowflakeError::Unexpected {
        what: what.into(),
        message: message.into(),
    }
}

/// Whether `s` is a UUID in the 8-4-4-4-12 hex form Snowflake uses for query ids and statement
/// handles (either case).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A random (version 4) UUID, lowercase, for the SQL API's `requestId`.
pub(crate) fn new_uuid() -> Result<String, SnowflakeError> {
    use rand_core::RngCore as _;
    let mut b = [0u8; 16];
    rand_core::OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| unexpected("random request id", e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// The session-context statement an anchor runs: one `SELECT` of context functions, no table
/// read. Its statement handle is the anchor's query id.
pub const SESSION_CONTEXT_SQL: &str = "SELECT CURRENT_ACCOUNT() AS ACCOUNT, \
CURRENT_REGION() AS REGION, CURRENT_USER() AS USER_NAME, CURRENT_SESSION() AS SESSION_ID, \
CURRENT_WAREHOUSE() AS WAREHOUSE_NAME, CURRENT_ROLE() AS ROLE_NAME, \
CURRENT_DATABASE() AS DATABASE_NAME, CURRENT_SCHEMA() AS SCHEMA_NAME, \
CURRENT_VERSION() AS VERSION, \
DATE_PART(EPOCH_MICROSECOND, CURRENT_TIMESTAMP()) AS STATEMENT_TIME_US";

/// The columns [`SESSION_CONTEXT_SQL`] returns, in order.
pub const SESSION_CONTEXT_COLUMNS: &[&str] = &[
    "ACCOUNT",
    "REGION",
    "USER_NAME",
    "SESSION_ID",
    "WAREHOUSE_NAME",
    "ROLE_NAME",
    "DATABASE_NAME",
    "SCHEMA_NAME",
    "VERSION",
    "STATEMENT_TIME_US",
];

/// The columns the reconciliation query returns, in order: metadata only (no `QUERY_TEXT`,
/// which can carry literal values).
pub const QUERY_HISTORY_COLUMNS: &[&str] = &[
    "QUERY_ID",
    "QUERY_HASH",
    "QUERY_PARAMETERIZED_HASH",
    "SESSION_ID",
    "USER_NAME",
    "ROLE_NAME",
    "WAREHOUSE_NAME",
    "DATABASE_NAME",
    "SCHEMA_NAME",
    "QUERY_TYPE",
    "EXECUTION_STATUS",
    "ERROR_CODE",
    "START_TIME_US",
    "END_TIME_US",
    "ROWS_PRODUCED",
    "ROWS_INSERTED",
    "ROWS_UPDATED",
    "ROWS_DELETED",
];

/// The start of every reconciliation query, up to the list of placeholders.
pub const QUERY_HISTORY_SQL_PREFIX: &str = "SELECT QUERY_ID, QUERY_HASH, \
QUERY_PARAMETERIZED_HASH, SESSION_ID, USER_NAME, ROLE_NAME, WAREHOUSE_NAME, DATABASE_NAME, \
SCHEMA_NAME, QUERY_TYPE, EXECUTION_STATUS, ERROR_CODE, \
DATE_PART(EPOCH_MICROSECOND, START_TIME) AS START_TIME_US, \
DATE_PART(EPOCH_MICROSECOND, END_TIME) AS END_TIME_US, \
ROWS_PRODUCED, ROWS_INSERTED, ROWS_UPDATED, ROWS_DELETED \
FROM SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY WHERE QUERY_ID IN (";

/// The reconciliation query for `ids` query ids: bindings 1..=ids are the ids (`TEXT`), binding
/// ids+1 is a lower bound on `START_TIME` in microseconds since the epoch (`FIXED`), which lets
/// Snowflake prune the view's partitions.
pub fn query_history_sql(ids: usize) -> String {
    let marks = vec!["?"; ids.max(1)].join(", ");
    format!(
        "{QUERY_HISTORY_SQL_PREFIX}{marks}) AND START_TIME >= TO_TIMESTAMP_LTZ(?, 6) ORDER BY QUERY_ID"
    )
}

/// Every SQL text Clyra sends to Snowflake, by name, with the columns it returns: for the SQL
/// shape checks (`tests/interop/snowflake_fakesnow.py`) and for auditors.
pub fn sql_texts() -> Vec<(&'static str, String, &'static [&'static str])> {
    vec![
        (
            "session_context",
            SESSION_CONTEXT_SQL.to_string(),
            SESSION_CONTEXT_COLUMNS,
        ),
        ("query_history", query_history_sql(2), QUERY_HISTORY_COLUMNS),
    ]
}

/// Microseconds since the epoch as an RFC 3339 UTC timestamp with microseconds.
pub(crate) fn micros_to_rfc3339(us: i64) -> Option<String> {
    let t = jiff::Timestamp::from_microsecond(us).ok()?;
    Some(rfc3339(t))
}

/// A timestamp as RFC 3339 UTC with microseconds (`2026-01-02T03:04:05.123456Z`).
pub(crate) fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn uuids() {
        let u = new_uuid().unwrap();
        assert!(is_uuid(&u), "{u}");
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uuid().unwrap());
        assert!(is_uuid("01B2C3D4-0000-1234-0000-000012345678"));
        for bad in [
            "",
            "01b2c3d4-0000-1234-0000-00001234567",
            "01b2c3d4-0000-1234-0000-0000123456789",
            "01b2c3d4_0000-1234-0000-000012345678",
            "01b2c3d4-0000-1234-0000-00001234567g",
            "' OR 1=1 --------------------------",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    #[test]
    fn query_history_sql_has_one_placeholder_per_id() {
        let sql = query_history_sql(3);
        assert_eq!(sql.matches('?').count(), 4);
        assert!(sql.starts_with(QUERY_HISTORY_SQL_PREFIX));
        assert!(!sql.contains("QUERY_TEXT"));
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            micros_to_rfc3339(1_767_261_601_500_000).unwrap(),
            "2026-01-01T10:00:01.500000Z"
        );
    }
}
