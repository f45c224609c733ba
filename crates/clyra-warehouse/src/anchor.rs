//! Postgres anchors: the tuple that pins evidence to one point of one cluster's history.
//!
//! An anchor names the cluster (`pg_control_system().system_identifier`, fixed at `initdb` and
//! shared by its physical replicas), the timeline, the WAL position, the MVCC snapshot the reading
//! transaction saw (`pg_current_snapshot()`), the server version, the database and the server's
//! clock. Two anchors of the same cluster and timeline are ordered by their LSNs.
//!
//! Taking an anchor has no side effects: it runs one read-only `SELECT` of functions that read
//! shared state. In particular it never calls `pg_current_xact_id()` (or `txid_current()`), which
//! assigns a transaction id even in a read-only transaction and so advances the cluster's XID
//! counter. [`take_in`] checks afterwards, with `pg_current_xact_id_if_assigned()`, that its
//! transaction still has no transaction id, and fails if it has one.
//!
//! On a standby (`pg_is_in_recovery()`), `pg_current_wal_lsn()` is an error; the anchor then
//! carries `pg_last_wal_replay_lsn()` and says so in `lsn_source`. The timeline is the current WAL
//! insertion timeline on a primary (from `pg_walfile_name`) and the timeline of the last
//! restartpoint (`pg_control_checkpoint()`) on a standby.

use postgres::GenericClient;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::pg::parse_lsn;

/// The warehouse platform an anchor comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// PostgreSQL (13 or newer).
    Postgres,
}

/// Which function gave the anchor's LSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LsnSource {
    /// `pg_current_wal_lsn()`: the current write position of a primary.
    PgCurrentWalLsn,
    /// `pg_last_wal_replay_lsn()`: the last position replayed by a standby.
    PgLastWalReplayLsn,
}

/// A Postgres anchor. Serialized as canonical JSON with [`PgAnchor::to_canonical_json`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgAnchor {
    /// Always `postgres`.
    pub platform: Platform,
    /// `pg_control_system().system_identifier`, as a decimal string (it is a 64-bit integer,
    /// beyond what JSON numbers carry exactly).
    pub system_identifier: String,
    /// The timeline id.
    pub timeline: u32,
    /// The WAL position, as Postgres prints it (`16/B374D848`).
    pub lsn: String,
    /// Which function gave [`PgAnchor::lsn`].
    pub lsn_source: LsnSource,
    /// `pg_is_in_recovery()`: true on a standby.
    pub in_recovery: bool,
    /// `pg_current_snapshot()` of the reading transaction, `xmin:xmax:xip,...`.
    pub snapshot: String,
    /// `server_version_num`, e.g. 150020.
    pub server_version_num: u32,
    /// `version()`, the full version string.
    pub server_version: String,
    /// `current_database()`.
    pub database: String,
    /// `clock_timestamp()` when the anchor was read, UTC, RFC 3339 with microseconds.
    pub clock_timestamp: String,
    /// `statement_timestamp()` of the anchor's statement, UTC, RFC 3339 with microseconds.
    pub statement_timestamp: String,
}

impl PgAnchor {
    /// The anchor's canonical JSON (RFC 8785) bytes.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, Error> {
        clyra_evidence::jcs::to_canonical_vec(self).map_err(|e| Error::Canonical(e.to_string()))
    }

    /// The LSN as a 64-bit position, for ordering anchors of one cluster and timeline.
    pub fn lsn_position(&self) -> Option<u64> {
        parse_lsn(&self.lsn)
    }

    /// The anchor as DEF predicate anchors (`spec/def/README.md`): `postgres/wal_lsn` (or
    /// `wal_replay_lsn` on a standby), `system_identifier`, `timeline` and `snapshot`, each read
    /// at `clock_timestamp`. `seq` is left for the journal to fill in.
    pub fn def_anchors(&self) -> Vec<DefAnchor> {
        let at = self.clock_timestamp.parse::<jiff::Timestamp>().ok();
        let lsn_kind = match self.lsn_source {
            LsnSource::PgCurrentWalLsn => "wal_lsn",
            LsnSource::PgLastWalReplayLsn => "wal_replay_lsn",
        };
        [
            (lsn_kind, self.lsn.clone()),
            ("system_identifier", self.system_identifier.clone()),
            ("timeline", self.timeline.to_string()),
            ("snapshot", self.snapshot.clone()),
        ]
        .into_iter()
        .map(|(kind, value)| DefAnchor {
            platform: "postgres".to_string(),
            kind: kind.to_string(),
            value,
            seq: None,
            at,
        })
        .collect()
    }
}

/// A DEF predicate anchor, the kernel's type.
pub use clyra_evidence::bundle::predicate::Anchor as DefAnchor;

const UTC_RFC3339: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"#;

/// The anchor query: one `SELECT`, no parameters, nothing written.
fn anchor_sql() -> String {
    format!(
        "SELECT (pg_control_system()).system_identifier::text,
                pg_is_in_recovery(),
                (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                      ELSE pg_current_wal_lsn() END)::text,
                (CASE WHEN pg_is_in_recovery() THEN (pg_control_checkpoint()).timeline_id::bigint
                      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint
                 END),
                pg_current_snapshot()::text,
                current_setting('server_version_num')::int,
                version(),
                current_database()::text,
                to_char(clock_timestamp() AT TIME ZONE 'UTC', {UTC_RFC3339}),
                to_char(statement_timestamp() AT TIME ZONE 'UTC', {UTC_RFC3339})"
    )
}

/// Takes an anchor on its own: a short `REPEATABLE READ READ ONLY` transaction.
pub fn take(client: &mut postgres::Client) -> Result<PgAnchor, Error> {
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| Error::query("begin", &e))?;
    let anchor = take_in(&mut tx)?;
    tx.commit().map_err(|e| Error::query("commit", &e))?;
    Ok(anchor)
}

/// Takes an anchor inside the caller's transaction, then checks that the transaction has not been
/// assigned a transaction id.
///
/// In a `REPEATABLE READ` transaction the snapshot recorded is the one every later query of the
/// transaction sees, provided the anchor is the transaction's first query.
pub fn take_in<C: GenericClient>(client: &mut C) -> Result<PgAnchor, Error> {
    let anchor = read(client)?;
    ensure_no_xid(client)?;
    Ok(anchor)
}

/// Runs the anchor query without the transaction id check (a snapshot checks once, at its end).
pub(crate) fn read<C: GenericClient>(client: &mut C) -> Result<PgAnchor, Error> {
    let row = client
        .query_typed_one(anchor_sql().as_str(), &[])
        .map_err(|e| {
            if e.code() == Some(&postgres::error::SqlState::UNDEFINED_FUNCTION) {
                Error::Unsupported {
                    message: crate::error::pg_message(&e).0,
                }
            } else {
                Error::query("anchor query", &e)
            }
        })?;
    let get = |i: usize, what: &str| -> Result<String, Error> {
        row.try_get::<_, Option<String>>(i)
            .map_err(|e| unexpected(what, e.to_string()))?
            .ok_or_else(|| unexpected(what, "NULL".into()))
    };
    let in_recovery: bool = row
        .try_get(1)
        .map_err(|e| unexpected("pg_is_in_recovery()", e.to_string()))?;
    let timeline: i64 = row
        .try_get::<_, Option<i64>>(3)
        .map_err(|e| unexpected("timeline", e.to_string()))?
        .ok_or_else(|| unexpected("timeline", "NULL".into()))?;
    let version_num: i32 = row
        .try_get(5)
        .map_err(|e| unexpected("server_version_num", e.to_string()))?;
    let anchor = PgAnchor {
        platform: Platform::Postgres,
        system_identifier: get(0, "system_identifier")?,
        timeline: u32::try_from(timeline)
            .map_err(|_| unexpected("timeline", timeline.to_string()))?,
        lsn: get(2, "LSN")?,
        lsn_source: if in_recovery {
            LsnSource::PgLastWalReplayLsn
        } else {
            LsnSource::PgCurrentWalLsn
        },
        in_recovery,
        snapshot: get(4, "pg_current_snapshot()")?,
        server_version_num: u32::try_from(version_num)
            .map_err(|_| unexpected("server_version_num", version_num.to_string()))?,
        server_version: get(6, "version()")?,
        database: get(7, "current_database()")?,
        clock_timestamp: get(8, "clock_timestamp()")?,
        statement_timestamp: get(9, "statement_timestamp()")?,
    };
    if anchor.lsn_position().is_none() {
        return Err(unexpected("LSN", format!("`{}` is not an LSN", anchor.lsn)));
    }
    Ok(anchor)
}

/// Fails if the current transaction has been assigned a transaction id.
pub fn ensure_no_xid<C: GenericClient>(client: &mut C) -> Result<(), Error> {
    let row = client
        .query_typed_one("SELECT pg_current_xact_id_if_assigned()::text", &[])
        .map_err(|e| Error::query("transaction id check", &e))?;
    let xid: Option<String> = row
        .try_get(0)
        .map_err(|e| unexpected("pg_current_xact_id_if_assigned()", e.to_string()))?;
    match xid {
        None => Ok(()),
        Some(xid) => Err(Error::XidAssigned { xid }),
    }
}

fn unexpected(what: &str, message: String) -> Error {
    Error::Unexpected {
        what: what.to_string(),
        message,
    }
}
