//! Reconciliation of anchors with `SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY`.
//!
//! One query per 1,000 anchors reads the metadata of the anchors' query ids: ids are validated
//! as UUIDs and sent as `TEXT` bindings, never spliced into the SQL text, and the query selects
//! no `QUERY_TEXT` (it can carry literal values) and no row of any table. Then, per anchor:
//!
//! - found, and session id, user, role, warehouse, database and schema equal, `EXECUTION_STATUS`
//!   `SUCCESS` and `END_TIME` within the tolerance (5 minutes by default) of the anchor's end
//!   time: `confirmed`, with `QUERY_HASH`, the row counts and the rest copied;
//! - found, but a field differs: `mismatch`, naming each field with both values;
//! - not found and the statement ended less than 3 hours ago (ACCOUNT_USAGE views lag 45 minutes
//!   to 3 hours): still `provisional`, with the time by which it should be visible;
//! - not found 3 hours or more after it ended: `missing`, with the likely reasons.
//!
//! A role without access to the view gets Snowflake's `002003` / `42S02` error, reported as such:
//! it never turns anchors into `missing`.
//!
//! Confirmed and mismatched anchors are settled and not queried again unless asked.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::anchor::{AnchorStatus, SnowflakeAnchor};
use super::api::{Binding, Client, Statement};
use super::{
    is_uuid, micros_to_rfc3339, query_history_sql, rfc3339, unexpected, SnowflakeError,
    QUERY_HISTORY_COLUMNS,
};

/// The shortest lag of ACCOUNT_USAGE views that Snowflake documents.
pub const LAG_MIN: Duration = Duration::from_secs(45 * 60);
/// The longest lag of ACCOUNT_USAGE views that Snowflake documents.
pub const LAG_MAX: Duration = Duration::from_secs(3 * 3600);
/// How many query ids one reconciliation query carries.
pub const IDS_PER_QUERY: usize = 1000;

/// Reconciliation settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// How far QUERY_HISTORY's `END_TIME` may be from the anchor's end time (clock skew between
    /// Clyra's machine and Snowflake, plus polling).
    pub end_time_tolerance: Duration,
    /// Query confirmed and mismatched anchors again too.
    pub recheck: bool,
    /// The time to judge lag against (default: now).
    pub now: Option<jiff::Timestamp>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            end_time_tolerance: Duration::from_secs(300),
            recheck: false,
            now: None,
        }
    }
}

/// A QUERY_HISTORY row: metadata only.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryHistoryRecord {
    /// `QUERY_HASH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_hash: Option<String>,
    /// `QUERY_PARAMETERIZED_HASH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_parameterized_hash: Option<String>,
    /// `SESSION_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `USER_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// `ROLE_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    /// `WAREHOUSE_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_name: Option<String>,
    /// `DATABASE_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    /// `SCHEMA_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_name: Option<String>,
    /// `QUERY_TYPE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_type: Option<String>,
    /// `EXECUTION_STATUS`: `SUCCESS`, `FAIL` or `INCIDENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_status: Option<String>,
    /// `ERROR_CODE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// `START_TIME`, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// `END_TIME`, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// `ROWS_PRODUCED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_produced: Option<u64>,
    /// `ROWS_INSERTED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_inserted: Option<u64>,
    /// `ROWS_UPDATED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_updated: Option<u64>,
    /// `ROWS_DELETED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_deleted: Option<u64>,
}

/// One field on which the anchor and QUERY_HISTORY disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mismatch {
    /// The anchor's field (`session_id`, `role`, `end_time`, ...).
    pub field: String,
    /// The anchor's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// QUERY_HISTORY's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_history: Option<String>,
}

/// The outcome of the last reconciliation of an anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reconciliation {
    /// When it ran, RFC 3339 UTC.
    pub checked_at: String,
    /// What it found, in a sentence.
    pub note: String,
    /// The fields that differ (empty unless `mismatch`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    /// The QUERY_HISTORY row, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_history: Option<QueryHistoryRecord>,
    /// For a provisional anchor: when it should be visible at the latest (end time + 3 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_by: Option<String>,
}

impl Reconciliation {
    pub(crate) fn validate(&self, status: AnchorStatus, at: &str) -> Result<(), SnowflakeError> {
        let bad = |message: String| SnowflakeError::AnchorsFile {
            pointer: at.to_string(),
            message,
        };
        if self.checked_at.parse::<jiff::Timestamp>().is_err() {
            return Err(SnowflakeError::AnchorsFile {
                pointer: format!("{at}/checked_at"),
                message: format!("`{}` is not an RFC 3339 timestamp", self.checked_at),
            });
        }
        let found = self.query_history.is_some();
        let ok = match status {
            AnchorStatus::Confirmed => found && self.mismatches.is_empty(),
            AnchorStatus::Mismatch => found && !self.mismatches.is_empty(),
            AnchorStatus::Provisional | AnchorStatus::Missing => {
                !found && self.mismatches.is_empty()
            }
        };
        if !ok {
            return Err(bad(format!(
                "status `{}` does not fit a reconciliation {} a QUERY_HISTORY row and with {} mismatches",
                status.as_str(),
                if found { "with" } else { "without" },
                self.mismatches.len()
            )));
        }
        Ok(())
    }
}

/// What a reconciliation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Anchors queried.
    pub checked: usize,
    /// Anchors left as they were (settled earlier).
    pub skipped: usize,
    /// Confirmed, after this run.
    pub confirmed: usize,
    /// Mismatched, after this run.
    pub mismatch: usize,
    /// Still provisional.
    pub provisional: usize,
    /// Missing.
    pub missing: usize,
    /// Reconciliation queries sent.
    pub queries: usize,
}

/// Reads the QUERY_HISTORY rows of `query_ids` (UUIDs) that started at or after `since_us`
/// (microseconds since the epoch), keyed by lowercase query id.
pub fn fetch(
    client: &Client,
    query_ids: &[&str],
    since_us: i64,
) -> Result<(BTreeMap<String, QueryHistoryRecord>, usize), SnowflakeError> {
    for id in query_ids {
        if !is_uuid(id) {
            return Err(SnowflakeError::Invalid {
                what: "query id",
                value: (*id).to_string(),
                message: "Snowflake query ids are UUIDs".into(),
            });
        }
    }
    let mut out = BTreeMap::new();
    let mut queries = 0;
    for chunk in query_ids.chunks(IDS_PER_QUERY) {
        let mut bindings: Vec<Binding> = chunk.iter().map(|id| Binding::text(*id)).collect();
        bindings.push(Binding::fixed(since_us));
        let rs = client.execute(&Statement {
            sql: query_history_sql(chunk.len()),
            bindings,
            ..Default::default()
        })?;
        queries += 1;
        for c in QUERY_HISTORY_COLUMNS {
            if rs.column(c).is_none() {
                return Err(unexpected("QUERY_HISTORY query", format!("no column {c}")));
            }
        }
        for i in 0..rs.rows.len() {
            let s = |c: &str| rs.get(i, c).map(str::to_string);
            let n = |c: &str| -> Result<Option<u64>, SnowflakeError> {
                s(c).map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        unexpected("QUERY_HISTORY query", format!("{c} `{v}` is not a count"))
                    })
                })
                .transpose()
            };
            let t = |c: &str| -> Result<Option<String>, SnowflakeError> {
                s(c).map(|v| {
                    v.parse::<i64>()
                        .ok()
                        .and_then(micros_to_rfc3339)
                        .ok_or_else(|| {
                            unexpected("QUERY_HISTORY query", format!("{c} `{v}` is not a time"))
                        })
                })
                .transpose()
            };
            let id = s("QUERY_ID")
                .ok_or_else(|| unexpected("QUERY_HISTORY query", "QUERY_ID is NULL"))?;
            if !chunk.iter().any(|q| q.eq_ignore_ascii_case(&id)) {
                return Err(unexpected(
                    "QUERY_HISTORY query",
                    format!("a row for query id `{id}`, which was not asked for"),
                ));
            }
            let rec = QueryHistoryRecord {
                query_hash: s("QUERY_HASH"),
                query_parameterized_hash: s("QUERY_PARAMETERIZED_HASH"),
                session_id: s("SESSION_ID"),
                user_name: s("USER_NAME"),
                role_name: s("ROLE_NAME"),
                warehouse_name: s("WAREHOUSE_NAME"),
                database_name: s("DATABASE_NAME"),
                schema_name: s("SCHEMA_NAME"),
                query_type: s("QUERY_TYPE"),
                execution_status: s("EXECUTION_STATUS"),
                error_code: s("ERROR_CODE"),
                start_time: t("START_TIME_US")?,
                end_time: t("END_TIME_US")?,
                rows_produced: n("ROWS_PRODUCED")?,
                rows_inserted: n("ROWS_INSERTED")?,
                rows_updated: n("ROWS_UPDATED")?,
                rows_deleted: n("ROWS_DELETED")?,
            };
            out.insert(id.to_ascii_lowercase(), rec);
        }
    }
    Ok((out, queries))
}

fn fmt_age(d: i64) -> String {
    let m = d / 60;
    if m >= 120 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{m} min")
    }
}

/// Applies one QUERY_HISTORY lookup to one anchor (no I/O).
pub fn apply(
    anchor: &mut SnowflakeAnchor,
    found: Option<&QueryHistoryRecord>,
    now: jiff::Timestamp,
    tolerance: Duration,
) {
    let checked_at = rfc3339(now);
    let end = anchor.end_time.parse::<jiff::Timestamp>().ok();
    let Some(rec) = found else {
        let age = end
            .map(|e| now.as_second() - e.as_second())
            .unwrap_or(i64::MAX);
        let lag_max = i64::try_from(LAG_MAX.as_secs()).unwrap_or(i64::MAX);
        let visible_by = end
            .and_then(|e| e.checked_add(jiff::SignedDuration::from_secs(lag_max)).ok())
            .map(rfc3339);
        let (status, note) =
            if age < lag_max {
                (
                    AnchorStatus::Provisional,
                    format!(
                    "not yet in SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY; the statement ended {} ago \
                     and the view lags 45 min to 3 h behind: reconcile again after {}",
                    fmt_age(age.max(0)),
                    visible_by.as_deref().unwrap_or("3 h")
                ),
                )
            } else {
                (
                    AnchorStatus::Missing,
                    format!(
                    "not in SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY {} after the statement ended, \
                     beyond the documented 3 h lag: the query id is wrong, or it ran in another \
                     account than the one reconciling (ACCOUNT_USAGE covers its own account only)",
                    if age == i64::MAX { "long".to_string() } else { fmt_age(age) }
                ),
                )
            };
        anchor.status = status;
        anchor.reconciliation = Some(Reconciliation {
            checked_at,
            note,
            mismatches: Vec::new(),
            query_history: None,
            visible_by: if status == AnchorStatus::Provisional {
                visible_by
            } else {
                None
            },
        });
        return;
    };
    let mut mismatches = Vec::new();
    let mut check = |field: &str, a: Option<&str>, q: Option<&str>| {
        if a != q {
            mismatches.push(Mismatch {
                field: field.to_string(),
                anchor: a.map(str::to_string),
                query_history: q.map(str::to_string),
            });
        }
    };
    check(
        "session_id",
        Some(&anchor.session_id),
        rec.session_id.as_deref(),
    );
    check("user", Some(&anchor.user), rec.user_name.as_deref());
    check("role", anchor.role.as_deref(), rec.role_name.as_deref());
    check(
        "warehouse",
        anchor.warehouse.as_deref(),
        rec.warehouse_name.as_deref(),
    );
    check(
        "database",
        anchor.database.as_deref(),
        rec.database_name.as_deref(),
    );
    check(
        "schema",
        anchor.schema.as_deref(),
        rec.schema_name.as_deref(),
    );
    if rec.execution_status.as_deref() != Some("SUCCESS") {
        check(
            "execution_status",
            Some("SUCCESS"),
            rec.execution_status.as_deref(),
        );
    }
    let qh_end = rec
        .end_time
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let within = match (end, qh_end) {
        (Some(a), Some(q)) => {
            let diff = (a.as_microsecond() - q.as_microsecond()).unsigned_abs();
            u128::from(diff) <= tolerance.as_micros()
        }
        _ => false,
    };
    if !within {
        mismatches.push(Mismatch {
            field: "end_time".into(),
            anchor: Some(anchor.end_time.clone()),
            query_history: rec.end_time.clone(),
        });
    }
    let note = if mismatches.is_empty() {
        anchor.status = AnchorStatus::Confirmed;
        anchor.query_hash = rec.query_hash.clone();
        "QUERY_HISTORY has this query in the same session, user, role, warehouse, database and \
         schema, successful, ending within the tolerance"
            .to_string()
    } else {
        anchor.status = AnchorStatus::Mismatch;
        let fields: Vec<&str> = mismatches.iter().map(|m| m.field.as_str()).collect();
        format!(
            "QUERY_HISTORY has this query but it differs in {} (end time tolerance {} s)",
            fields.join(", "),
            tolerance.as_secs()
        )
    };
    anchor.reconciliation = Some(Reconciliation {
        checked_at,
        note,
        mismatches,
        query_history: Some(rec.clone()),
        visible_by: None,
    });
}

/// Reconciles `anchors` in place: one QUERY_HISTORY query per 1,000 anchors due for a check.
pub fn reconcile(
    client: &Client,
    anchors: &mut [SnowflakeAnchor],
    options: &Options,
) -> Result<Summary, SnowflakeError> {
    let due: Vec<usize> = (0..anchors.len())
        .filter(|&i| {
            options.recheck
                || matches!(
                    anchors[i].status,
                    AnchorStatus::Provisional | AnchorStatus::Missing
                )
        })
        .collect();
    let mut summary = Summary {
        checked: due.len(),
        skipped: anchors.len() - due.len(),
        ..Default::default()
    };
    if !due.is_empty() {
        let ids: Vec<&str> = due.iter().map(|&i| anchors[i].query_id.as_str()).collect();
        // START_TIME lower bound: the earliest statement time, less an hour of clock skew.
        let since_us = due
            .iter()
            .filter_map(|&i| anchors[i].statement_time.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_microsecond())
            .min()
            .unwrap_or(0)
            .saturating_sub(3_600_000_000);
        let (found, queries) = fetch(client, &ids, since_us)?;
        summary.queries = queries;
        let now = options.now.unwrap_or_else(jiff::Timestamp::now);
        for &i in &due {
            let key = anchors[i].query_id.to_ascii_lowercase();
            apply(
                &mut anchors[i],
                found.get(&key),
                now,
                options.end_time_tolerance,
            );
        }
    }
    for a in anchors.iter() {
        match a.status {
            AnchorStatus::Confirmed => summary.confirmed += 1,
            AnchorStatus::Mismatch => summary.mismatch += 1,
            AnchorStatus::Provisional => summary.provisional += 1,
            AnchorStatus::Missing => summary.missing += 1,
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn anchor(end: &str) -> SnowflakeAnchor {
        SnowflakeAnchor {
            platform: "snowflake".into(),
            account: "XY12345".into(),
            region: None,
            user: "CI_BOT".into(),
            query_id: "01b2c3d4-0000-1234-0000-000012345678".into(),
            query_hash: None,
            session_id: "42".into(),
            warehouse: Some("WH".into()),
            role: Some("R".into()),
            database: None,
            schema: None,
            server_version: None,
            statement_time: end.into(),
            end_time: end.into(),
            status: AnchorStatus::Provisional,
            reconciliation: None,
        }
    }

    fn rec(end: &str) -> QueryHistoryRecord {
        QueryHistoryRecord {
            query_hash: Some("h1".into()),
            session_id: Some("42".into()),
            user_name: Some("CI_BOT".into()),
            role_name: Some("R".into()),
            warehouse_name: Some("WH".into()),
            execution_status: Some("SUCCESS".into()),
            end_time: Some(end.into()),
            rows_inserted: Some(7),
            ..Default::default()
        }
    }

    const END: &str = "2026-01-01T10:00:00.000000Z";
    const TOL: Duration = Duration::from_secs(300);

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn confirmed_copies_the_hash() {
        let mut a = anchor(END);
        apply(
            &mut a,
            Some(&rec("2026-01-01T09:59:59.500000Z")),
            at("2026-01-01T12:00:00Z"),
            TOL,
        );
        assert_eq!(a.status, AnchorStatus::Confirmed);
        assert_eq!(a.query_hash.as_deref(), Some("h1"));
        let r = a.reconciliation.unwrap();
        assert_eq!(r.query_history.unwrap().rows_inserted, Some(7));
    }

    #[test]
    fn mismatch_names_the_fields() {
        let mut a = anchor(END);
        let mut r = rec("2026-01-01T09:50:00Z");
        r.role_name = Some("ACCOUNTADMIN".into());
        apply(&mut a, Some(&r), at("2026-01-01T12:00:00Z"), TOL);
        assert_eq!(a.status, AnchorStatus::Mismatch);
        let fields: Vec<String> = a
            .reconciliation
            .unwrap()
            .mismatches
            .into_iter()
            .map(|m| m.field)
            .collect();
        assert_eq!(fields, ["role", "end_time"]);
    }

    #[test]
    fn lag_decides_between_provisional_and_missing() {
        let mut a = anchor(END);
        apply(&mut a, None, at("2026-01-01T12:59:59Z"), TOL);
        assert_eq!(a.status, AnchorStatus::Provisional);
        let r = a.reconciliation.clone().unwrap();
        assert_eq!(r.visible_by.as_deref(), Some("2026-01-01T13:00:00.000000Z"));
        assert!(
            r.note.contains("179 min") || r.note.contains("2 h 59 min"),
            "{}",
            r.note
        );
        apply(&mut a, None, at("2026-01-01T13:00:00Z"), TOL);
        assert_eq!(a.status, AnchorStatus::Missing);
        assert!(a.reconciliation.unwrap().note.contains("another account"));
    }
}
