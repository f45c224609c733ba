//! Snowflake anchors and anchor files.
//!
//! An anchor is taken live: Clyra runs [`SESSION_CONTEXT_SQL`]
//! (one `SELECT` of `CURRENT_ACCOUNT()`, `CURRENT_SESSION()`, `CURRENT_WAREHOUSE()`,
//! `CURRENT_ROLE()`, ... and `CURRENT_TIMESTAMP()`; no table is read) and keeps its statement
//! handle as the query id. The anchor starts `provisional`: Snowflake's own record of the query,
//! `SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY`, shows it 45 minutes to 3 hours later, and
//! [`reconcile`](super::reconcile) then makes it `confirmed`, `mismatch` or `missing`.
//!
//! Anchor files (`clyra.warehouse.snowflake-anchors/v1`) are RFC 8785 canonical JSON:
//!
//! ```json
//! {"anchors":[{"account":"XY12345","end_time":"2026-01-02T03:04:05.678901Z",
//!   "platform":"snowflake","query_id":"01b2c3d4-0000-1234-0000-000012345678",
//!   "role":"TRANSFORMER","session_id":"123456789","statement_time":"...",
//!   "status":"provisional","user":"CI_BOT","warehouse":"TRANSFORM_WH"}],
//!  "format":"clyra.warehouse.snowflake-anchors/v1"}
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::api::{Client, Statement};
use super::reconcile::Reconciliation;
use super::{
    is_uuid, micros_to_rfc3339, rfc3339, unexpected, SnowflakeError, SESSION_CONTEXT_COLUMNS,
    SESSION_CONTEXT_SQL,
};
use crate::anchor::DefAnchor;

/// The anchors file format.
pub const ANCHORS_FORMAT: &str = "clyra.warehouse.snowflake-anchors/v1";

/// Where an anchor stands against Snowflake's query history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorStatus {
    /// Taken live, not yet seen in QUERY_HISTORY (younger than the documented 3 h lag).
    Provisional,
    /// QUERY_HISTORY has the query with the same session, user, role, warehouse, database,
    /// schema, a successful status and an end time within the tolerance.
    Confirmed,
    /// QUERY_HISTORY has the query, but a field differs (named in the reconciliation).
    Mismatch,
    /// Not in QUERY_HISTORY although older than the documented 3 h lag.
    Missing,
}

impl AnchorStatus {
    /// `provisional`, `confirmed`, `mismatch` or `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnchorStatus::Provisional => "provisional",
            AnchorStatus::Confirmed => "confirmed",
            AnchorStatus::Mismatch => "mismatch",
            AnchorStatus::Missing => "missing",
        }
    }
}

/// A Snowflake anchor: one statement's query id and the session it ran in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnowflakeAnchor {
    /// Always `snowflake`.
    pub platform: String,
    /// `CURRENT_ACCOUNT()`: the account locator.
    pub account: String,
    /// `CURRENT_REGION()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `CURRENT_USER()`.
    pub user: String,
    /// The statement handle, which is the query id (a UUID).
    pub query_id: String,
    /// `QUERY_HASH` from QUERY_HISTORY, once reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_hash: Option<String>,
    /// `CURRENT_SESSION()`, a decimal number.
    pub session_id: String,
    /// `CURRENT_WAREHOUSE()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    /// `CURRENT_ROLE()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `CURRENT_DATABASE()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `CURRENT_SCHEMA()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// `CURRENT_VERSION()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// `CURRENT_TIMESTAMP()` of the statement (server clock), RFC 3339 UTC.
    pub statement_time: String,
    /// When the statement's answer reached Clyra (client clock), RFC 3339 UTC: the statement
    /// had ended by then.
    pub end_time: String,
    /// Where the anchor stands.
    pub status: AnchorStatus,
    /// The last reconciliation, once one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<Reconciliation>,
}

/// The session context an anchor is taken in (each `None`: the user's default).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `warehouse`.
    pub warehouse: Option<String>,
    /// `role`.
    pub role: Option<String>,
    /// `database`.
    pub database: Option<String>,
    /// `schema`.
    pub schema: Option<String>,
}

/// Takes an anchor: runs the session-context statement and keeps its handle as the query id.
pub fn capture(client: &Client, context: &Context) -> Result<SnowflakeAnchor, SnowflakeError> {
    let rs = client.execute(&Statement {
        sql: SESSION_CONTEXT_SQL.to_string(),
        warehouse: context.warehouse.clone(),
        role: context.role.clone(),
        database: context.database.clone(),
        schema: context.schema.clone(),
        ..Default::default()
    })?;
    let what = "session-context statement";
    if rs.rows.len() != 1 {
        return Err(unexpected(
            what,
            format!("{} rows, expected 1", rs.rows.len()),
        ));
    }
    for c in SESSION_CONTEXT_COLUMNS {
        if rs.column(c).is_none() {
            return Err(unexpected(what, format!("no column {c}")));
        }
    }
    let opt = |c: &str| rs.get(0, c).map(str::to_string);
    let need = |c: &str| opt(c).ok_or_else(|| unexpected(what, format!("{c} is NULL")));
    let session_id = need("SESSION_ID")?;
    if session_id.is_empty() || !session_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unexpected(
            what,
            format!("SESSION_ID `{session_id}` is not a decimal number"),
        ));
    }
    let t = need("STATEMENT_TIME_US")?;
    let statement_time = t
        .parse::<i64>()
        .ok()
        .and_then(micros_to_rfc3339)
        .ok_or_else(|| unexpected(what, format!("STATEMENT_TIME_US `{t}` is not a time")))?;
    let anchor = SnowflakeAnchor {
        platform: "snowflake".to_string(),
        account: need("ACCOUNT")?,
        region: opt("REGION"),
        user: need("USER_NAME")?,
        query_id: rs.statement_handle.clone(),
        query_hash: None,
        session_id,
        warehouse: opt("WAREHOUSE_NAME"),
        role: opt("ROLE_NAME"),
        database: opt("DATABASE_NAME"),
        schema: opt("SCHEMA_NAME"),
        server_version: opt("VERSION"),
        statement_time,
        end_time: rfc3339(rs.received_at),
        status: AnchorStatus::Provisional,
        reconciliation: None,
    };
    Ok(anchor)
}

impl SnowflakeAnchor {
    /// The anchor as a DEF predicate anchor (`spec/def/README.md`): platform `snowflake`, kind
    /// `query_id`, the query id as value, read at `end_time`. Its status is not part of a DEF
    /// anchor: check it before recording one.
    pub fn def_anchors(&self) -> Vec<DefAnchor> {
        vec![DefAnchor {
            platform: "snowflake".to_string(),
            kind: "query_id".to_string(),
            value: self.query_id.clone(),
            seq: None,
            at: self.end_time.parse::<jiff::Timestamp>().ok(),
        }]
    }

    /// Checks what a file cannot be trusted to get right; `at` is the anchor's JSON pointer.
    fn validate(&self, at: &str) -> Result<(), SnowflakeError> {
        let bad = |member: &str, message: String| SnowflakeError::AnchorsFile {
            pointer: format!("{at}/{member}"),
            message,
        };
        if self.platform != "snowflake" {
            return Err(bad(
                "platform",
                format!("`{}`, expected `snowflake`", self.platform),
            ));
        }
        if !is_uuid(&self.query_id) {
            return Err(bad(
                "query_id",
                format!("`{}` is not a UUID", self.query_id),
            ));
        }
        if self.session_id.is_empty() || !self.session_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("session_id", "not a decimal number".into()));
        }
        for (member, v) in [
            ("statement_time", &self.statement_time),
            ("end_time", &self.end_time),
        ] {
            if v.parse::<jiff::Timestamp>().is_err() {
                return Err(bad(member, format!("`{v}` is not an RFC 3339 timestamp")));
            }
        }
        match (&self.reconciliation, self.status) {
            (None, AnchorStatus::Provisional) => {}
            (None, s) => {
                return Err(bad(
                    "status",
                    format!("`{}` without a reconciliation", s.as_str()),
                ))
            }
            (Some(r), s) => r.validate(s, &format!("{at}/reconciliation"))?,
        }
        Ok(())
    }
}

/// The contents of an anchors file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorSet {
    /// [`ANCHORS_FORMAT`].
    pub format: String,
    /// The anchors, each query id once.
    pub anchors: Vec<SnowflakeAnchor>,
}

impl AnchorSet {
    /// A set of anchors.
    pub fn new(anchors: Vec<SnowflakeAnchor>) -> Self {
        AnchorSet {
            format: ANCHORS_FORMAT.to_string(),
            anchors,
        }
    }

    /// Reads an anchors file: strict JSON (no duplicate keys), the right format, known members
    /// only, UUID query ids, each once, and statuses consistent with their reconciliation.
    /// Errors name the JSON pointer.
    pub fn from_json(bytes: &[u8]) -> Result<AnchorSet, SnowflakeError> {
        let value =
            clyra_evidence::jcs::parse_strict(bytes).map_err(|e| SnowflakeError::AnchorsFile {
                pointer: e.location().map(|l| l.pointer.clone()).unwrap_or_default(),
                message: format!("not valid JSON: {e}"),
            })?;
        match value.get("format") {
            Some(serde_json::Value::String(f)) if f == ANCHORS_FORMAT => {}
            Some(serde_json::Value::String(f)) => {
                return Err(SnowflakeError::AnchorsFile {
                    pointer: "/format".into(),
                    message: format!(
                        "unsupported format `{f}`; this build reads `{ANCHORS_FORMAT}`"
                    ),
                })
            }
            _ => {
                return Err(SnowflakeError::AnchorsFile {
                    pointer: "/format".into(),
                    message: format!(
                        "not a Snowflake anchors file (expected `format`: `{ANCHORS_FORMAT}`)"
                    ),
                })
            }
        }
        let set: AnchorSet =
            serde_path_to_error::deserialize(value).map_err(|e| SnowflakeError::AnchorsFile {
                pointer: crate::snapshot::path_to_pointer(e.path()),
                message: e.into_inner().to_string(),
            })?;
        let mut seen = BTreeSet::new();
        for (i, a) in set.anchors.iter().enumerate() {
            a.validate(&format!("/anchors/{i}"))?;
            if !seen.insert(a.query_id.to_ascii_lowercase()) {
                return Err(SnowflakeError::AnchorsFile {
                    pointer: format!("/anchors/{i}/query_id"),
                    message: format!("query id {} appears twice", a.query_id),
                });
            }
        }
        Ok(set)
    }

    /// The canonical JSON (RFC 8785) bytes.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, SnowflakeError> {
        clyra_evidence::jcs::to_canonical_vec(self)
            .map_err(|e| SnowflakeError::Canonical(e.to_string()))
    }

    /// Every anchor's DEF predicate anchors.
    pub fn def_anchors(&self) -> Vec<DefAnchor> {
        self.anchors
            .iter()
            .flat_map(SnowflakeAnchor::def_anchors)
            .collect()
    }

    /// How many anchors have `status`.
    pub fn count(&self, status: AnchorStatus) -> usize {
        self.anchors.iter().filter(|a| a.status == status).count()
    }
}
