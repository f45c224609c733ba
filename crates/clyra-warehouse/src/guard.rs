//! Warehouse guards for Postgres: statement triggers that block mass UPDATE, DELETE and TRUNCATE
//! unless the session presents an approval (docs/warehouses/guards.md).
//!
//! Everything lives in the `clyra_guard` schema, installed by [`install`] in one transaction and
//! removed by [`uninstall`]. The SQL is in `crates/clyra-warehouse/sql/guard/*.sql`, embedded
//! here as it is:
//!
//! - `clyra_guard.rules`: table globs (on `schema.table`) and their thresholds (`max_rows`,
//!   `max_percent`), from the policy's `data_platform.warehouse_guard`.
//! - `clyra_guard.check_dml()`: the statement trigger (AFTER UPDATE and AFTER DELETE with the old
//!   rows as a transition table, BEFORE TRUNCATE). Above a threshold it raises `YG001` unless
//!   `clyra.approval` holds a resume token whose SHA-256 `clyra warehouse grant` registered in
//!   `clyra_guard.grants` for this table and operation; a grant lets one statement through.
//! - `clyra_guard.events`: an audit row for each statement let through above a threshold.
//! - `clyra_guard.reattach(regclass)` and, for superusers, event triggers that put the guard back
//!   on tables dbt recreates.
//! - For the clyra_guard dbt package (docs/dbt/package.md): `clyra_guard.dbt_invocations`, where
//!   its hooks record invocations (`INSERT` for every role), and `approval_for` /
//!   `approval_used`, with which its safe_* macros check and use up the same grants.
//!
//! The database cannot check the token's signature: [`register_grant`] is the trust boundary,
//! and only the roles given to [`install`] as granters may call it. The caller redeems the token
//! with `clyra_policy::approvals` first.

use std::collections::BTreeMap;

use postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;

use crate::error::{pointer_token, Error};
use crate::pg::quote_ident;

/// What `clyra_guard.version()` returns once this build's guard is installed.
pub const VERSION: &str = "clyra_guard 1";

/// The guard's schema.
pub const SCHEMA: &str = "clyra_guard";

/// The names of the triggers on a guarded table.
pub const TRIGGERS: [&str; 3] = [
    "clyra_guard_update",
    "clyra_guard_delete",
    "clyra_guard_truncate",
];

/// The SQLSTATEs the guard raises.
pub mod sqlstate {
    /// A statement above the threshold without an approval.
    pub const BLOCKED: &str = "YG001";
    /// `clyra.approval` holds nothing valid for this statement (unknown token, another table or
    /// operation, more rows than approved).
    pub const APPROVAL_REFUSED: &str = "YG002";
    /// The approval was already used (from `register_grant`: already registered).
    pub const APPROVAL_USED: &str = "YG003";
    /// The approval expired.
    pub const APPROVAL_EXPIRED: &str = "YG004";
    /// `register_grant` refused its arguments (no such table, a digest of the wrong length).
    pub const GRANT_REFUSED: &str = "YG010";
    /// Dropping a guard trigger of a guarded table.
    pub const TRIGGER_KEPT: &str = "YG011";
}

const SQL_SCHEMA: &str = include_str!("../sql/guard/10_schema.sql");
const SQL_FUNCTIONS: &str = include_str!("../sql/guard/20_functions.sql");
const SQL_EVENT_TRIGGERS: &str = include_str!("../sql/guard/30_event_triggers.sql");
const SQL_UNINSTALL: &str = include_str!("../sql/guard/90_uninstall.sql");

/// Serializes concurrent installs and uninstalls (`pg_advisory_xact_lock`).
const LOCK_KEY: i64 = 0x636c_7972_6167_7264; // "clyragrd"

/// Whether a rule blocks or only records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Statements above the threshold fail without an approval.
    Enforce,
    /// They go through and are recorded in `clyra_guard.events` as `shadow`.
    Shadow,
}

impl Mode {
    /// The name in `clyra_guard.rules.mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}

/// One rule: the tables a glob matches and their thresholds. The first matching rule applies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Glob on `schema.table`: `*` any run of characters (dots included), `?` one character.
    pub table_glob: String,
    /// Statements touching more rows need an approval.
    pub max_rows: Option<u64>,
    /// Statements touching more than this percentage of the table's rows need an approval.
    pub max_percent: Option<f64>,
    /// Enforce or shadow.
    pub mode: Mode,
    /// The approvals checkpoint named in the error's hint and required by grants.
    pub checkpoint: Option<String>,
}

/// What [`install`] installs.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Roles allowed to register grants (EXECUTE on `clyra_guard.register_grant`).
    pub granters: Vec<String>,
    /// Recorded in `clyra_guard.settings` (e.g. `policy`, `policy_hash`).
    pub settings: BTreeMap<String, String>,
}

/// One table [`install`] or [`reattach`] looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSync {
    /// The table, as `regclass` prints it.
    pub table: String,
    /// `attached`, `guarded` (already was), `detached` or `not guarded`.
    pub result: String,
}

/// What [`install`] did.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    /// [`VERSION`].
    pub version: String,
    /// Whether the guard was installed before.
    pub upgraded: bool,
    /// The rules now in force.
    pub rules: Vec<Rule>,
    /// Tables attached, already guarded or detached.
    pub tables: Vec<TableSync>,
    /// Whether the event triggers (re-attach after DDL, keep guard triggers) are installed.
    pub event_triggers: bool,
    /// Why not, when they are not.
    pub event_triggers_note: Option<String>,
    /// Roles granted EXECUTE on `register_grant`.
    pub granters: Vec<String>,
}

/// Translates a table glob to a `LIKE` pattern (escape `\`).
pub fn like_pattern(glob: &str) -> String {
    let mut s = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => s.push('%'),
            '?' => s.push('_'),
            '%' | '_' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            c => s.push(c),
        }
    }
    s
}

fn q(what: &'static str) -> impl Fn(postgres::Error) -> Error {
    move |e| Error::query(what, &e)
}

fn check_rules(rules: &[Rule]) -> Result<(), Error> {
    if rules.is_empty() {
        return Err(Error::Option {
            option: "--tables",
            value: String::new(),
            message: "no table glob to guard".into(),
        });
    }
    for r in rules {
        if r.table_glob.is_empty() || r.table_glob.contains('\0') {
            return Err(Error::Option {
                option: "--tables",
                value: r.table_glob.clone(),
                message: "a table glob is `schema.table` with `*` and `?`, not empty".into(),
            });
        }
        if r.max_rows.is_none() && r.max_percent.is_none() {
            return Err(Error::Option {
                option: "data_platform.warehouse_guard",
                value: r.table_glob.clone(),
                message: "sets neither max_rows_affected nor max_percent_affected: there is \
                          no threshold to guard"
                    .into(),
            });
        }
        if let Some(p) = r.max_percent {
            if !(0.0..=100.0).contains(&p) {
                return Err(Error::Option {
                    option: "data_platform.warehouse_guard.max_percent_affected",
                    value: p.to_string(),
                    message: "must be between 0 and 100".into(),
                });
            }
        }
        if r.max_rows.is_some_and(|m| i64::try_from(m).is_err()) {
            return Err(Error::Option {
                option: "data_platform.warehouse_guard.max_rows_affected",
                value: r.max_rows.unwrap_or_default().to_string(),
                message: "too large".into(),
            });
        }
    }
    Ok(())
}

/// Whether the guard is installed in the connected database (`clyra_guard.version()` exists).
pub fn installed_version(client: &mut impl GenericClient) -> Result<Option<String>, Error> {
    let row = client
        .query_one(
            "SELECT to_regprocedure('clyra_guard.version()') IS NOT NULL",
            &[],
        )
        .map_err(q("guard lookup"))?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    let row = client
        .query_one("SELECT clyra_guard.version()", &[])
        .map_err(q("guard version"))?;
    Ok(Some(row.get(0)))
}

/// Installs or updates the guard in one transaction: schema, tables, functions, the rules
/// (replacing the previous ones), triggers on every table a rule matches (and off every table
/// none matches any more), EXECUTE on `register_grant` for the granters, and the event triggers
/// when the role is a superuser.
pub fn install(
    client: &mut postgres::Client,
    options: &InstallOptions,
) -> Result<InstallReport, Error> {
    check_rules(&options.rules)?;
    let mut tx = client.transaction().map_err(q("begin"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .map_err(q("install lock"))?;
    let upgraded = installed_version(&mut tx)?.is_some();
    tx.batch_execute(SQL_SCHEMA).map_err(q("guard schema"))?;
    tx.batch_execute(SQL_FUNCTIONS)
        .map_err(q("guard functions"))?;
    tx.execute("DELETE FROM clyra_guard.rules", &[])
        .map_err(q("rules"))?;
    for (i, r) in options.rules.iter().enumerate() {
        let position = i32::try_from(i).unwrap_or(i32::MAX);
        let max_rows = r.max_rows.and_then(|m| i64::try_from(m).ok());
        let max_percent = r.max_percent.map(|p| p.to_string());
        tx.execute(
            "INSERT INTO clyra_guard.rules \
             (position, table_glob, like_pattern, max_rows, max_percent, mode, checkpoint) \
             VALUES ($1, $2, $3, $4, $5::text::numeric, $6, $7)",
            &[
                &position,
                &r.table_glob,
                &like_pattern(&r.table_glob),
                &max_rows,
                &max_percent,
                &r.mode.as_str(),
                &r.checkpoint,
            ],
        )
        .map_err(q("rules"))?;
    }
    tx.execute("DELETE FROM clyra_guard.settings", &[])
        .map_err(q("settings"))?;
    let mut settings = options.settings.clone();
    settings.insert("version".into(), VERSION.into());
    for (k, v) in &settings {
        tx.execute(
            "INSERT INTO clyra_guard.settings (key, value) VALUES ($1, $2)",
            &[k, v],
        )
        .map_err(q("settings"))?;
    }
    tx.execute(
        "INSERT INTO clyra_guard.settings (key, value) \
         VALUES ('installed_at', to_char(clock_timestamp() AT TIME ZONE 'UTC', \
                 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')), ('installed_by', session_user)",
        &[],
    )
    .map_err(q("settings"))?;
    for role in &options.granters {
        tx.batch_execute(&format!(
            "GRANT EXECUTE ON FUNCTION clyra_guard.register_grant(bytea, text, text, text, \
             text[], text[], bigint, timestamptz, text[]) TO {}",
            quote_ident(role)
        ))
        .map_err(q("grant EXECUTE on register_grant"))?;
    }
    let superuser: bool = tx
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .map_err(q("role lookup"))?
        .get(0);
    let (event_triggers, note) = if superuser {
        tx.batch_execute(SQL_EVENT_TRIGGERS)
            .map_err(q("guard event triggers"))?;
        (true, None)
    } else {
        (
            false,
            Some(
                "event triggers need a superuser: tables dbt recreates lose their guard until \
                 `select clyra_guard.reattach('schema.table')` runs (dbt post-hook: \
                 \"select clyra_guard.reattach('{{ this }}')\") or install-guards runs again"
                    .to_string(),
            ),
        )
    };
    let tables = tx
        .query(
            "SELECT rel::text, result FROM clyra_guard.sync_all() ORDER BY 1",
            &[],
        )
        .map_err(q("attach guard triggers"))?
        .iter()
        .map(|r| TableSync {
            table: r.get(0),
            result: r.get(1),
        })
        .collect();
    tx.commit().map_err(q("commit"))?;
    Ok(InstallReport {
        version: VERSION.into(),
        upgraded,
        rules: options.rules.clone(),
        tables,
        event_triggers,
        event_triggers_note: note,
        granters: options.granters.clone(),
    })
}

/// What [`uninstall`] removed.
#[derive(Debug, Clone, Serialize)]
pub struct UninstallReport {
    /// Whether there was a guard to remove.
    pub was_installed: bool,
    /// Guard triggers dropped.
    pub triggers: u64,
    /// Grant rows dropped with the schema.
    pub grants: i64,
    /// Audit events dropped with the schema.
    pub events: i64,
}

/// Removes the guard: event triggers, guard triggers, and the `clyra_guard` schema with its
/// grants and audit events, in one transaction. Nothing of it is left.
pub fn uninstall(client: &mut postgres::Client) -> Result<UninstallReport, Error> {
    let mut tx = client.transaction().map_err(q("begin"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .map_err(q("uninstall lock"))?;
    let was_installed = tx
        .query_one("SELECT to_regnamespace('clyra_guard') IS NOT NULL", &[])
        .map_err(q("guard lookup"))?
        .get::<_, bool>(0);
    let triggers: i64 = tx
        .query_one(
            "SELECT count(*) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
             JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'clyra_guard'",
            &[],
        )
        .map_err(q("guard triggers"))?
        .get(0);
    let count = |tx: &mut postgres::Transaction<'_>, table: &str| -> Result<i64, Error> {
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .map_err(q("guard tables"))?
            .get(0);
        if !exists {
            return Ok(0);
        }
        Ok(tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .map_err(q("guard tables"))?
            .get(0))
    };
    let grants = count(&mut tx, "clyra_guard.grants")?;
    let events = count(&mut tx, "clyra_guard.events")?;
    tx.batch_execute(SQL_UNINSTALL).map_err(q("uninstall"))?;
    tx.commit().map_err(q("commit"))?;
    Ok(UninstallReport {
        was_installed,
        triggers: u64::try_from(triggers).unwrap_or(0),
        grants,
        events,
    })
}

/// Re-attaches (or detaches) the guard of one table after DDL; what the dbt post-hook calls.
pub fn reattach(client: &mut impl GenericClient, table: &str) -> Result<TableSync, Error> {
    let row = client
        .query_one(
            "SELECT $1::text::regclass::text, clyra_guard.reattach($1::text::regclass)",
            &[&table],
        )
        .map_err(q("reattach"))?;
    Ok(TableSync {
        table: row.get(0),
        result: row.get(1),
    })
}

/// A rule as installed.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledRule {
    /// The glob.
    pub table_glob: String,
    /// Threshold in rows.
    pub max_rows: Option<i64>,
    /// Threshold in percent (as Postgres prints the numeric).
    pub max_percent: Option<String>,
    /// `enforce` or `shadow`.
    pub mode: String,
    /// The checkpoint.
    pub checkpoint: Option<String>,
}

/// A table with guard triggers.
#[derive(Debug, Clone, Serialize)]
pub struct GuardedTable {
    /// The table (`regclass` text).
    pub table: String,
    /// Its guard triggers present (of [`TRIGGERS`]).
    pub triggers: i64,
    /// Its guard triggers that are disabled.
    pub disabled: i64,
}

/// An open (unused, unexpired) grant.
#[derive(Debug, Clone, Serialize)]
pub struct OpenGrant {
    /// The approval.
    pub approval_id: String,
    /// `schema.table`.
    pub table: String,
    /// Operations allowed.
    pub operations: Vec<String>,
    /// Rows allowed.
    pub max_rows: i64,
    /// Until (UTC, RFC 3339).
    pub expires_at: String,
}

/// One audit event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When (UTC, RFC 3339).
    pub at: String,
    /// `schema.table`.
    pub table: String,
    /// `update`, `delete` or `truncate`.
    pub operation: String,
    /// Rows affected.
    pub rows: i64,
    /// Which threshold it exceeded.
    pub threshold: String,
    /// `allowed` (with an approval) or `shadow`.
    pub decision: String,
    /// The approval used.
    pub approval_id: Option<String>,
    /// `session_user`.
    pub db_user: String,
    /// `application_name`.
    pub application_name: Option<String>,
    /// `clyra.session`.
    pub clyra_session: Option<String>,
}

/// What is installed, where, and what it did lately.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `clyra_guard.version()`, when installed.
    pub version: Option<String>,
    /// `clyra_guard.settings`.
    pub settings: BTreeMap<String, String>,
    /// The rules.
    pub rules: Vec<InstalledRule>,
    /// Event triggers of the guard present and enabled (`clyra_guard_reattach`, `clyra_guard_keep`).
    pub event_triggers: Vec<String>,
    /// Tables with guard triggers.
    pub guarded: Vec<GuardedTable>,
    /// Tables a rule matches that have no (or not all) guard triggers.
    pub unguarded: Vec<String>,
    /// Statements blocked since install (a sequence: counts survive the rollback).
    pub blocked_statements: i64,
    /// Grants not used and not expired.
    pub open_grants: Vec<OpenGrant>,
    /// The latest audit events, newest first.
    pub recent_events: Vec<Event>,
}

const TS: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'";

/// Reads the guard's state. `recent` limits the events listed.
pub fn status(client: &mut impl GenericClient, recent: i64) -> Result<Status, Error> {
    let version = installed_version(client)?;
    let mut st = Status {
        version,
        settings: BTreeMap::new(),
        rules: Vec::new(),
        event_triggers: Vec::new(),
        guarded: Vec::new(),
        unguarded: Vec::new(),
        blocked_statements: 0,
        open_grants: Vec::new(),
        recent_events: Vec::new(),
    };
    if st.version.is_none() {
        return Ok(st);
    }
    for r in client
        .query(
            "SELECT key, value FROM clyra_guard.settings ORDER BY key",
            &[],
        )
        .map_err(q("guard settings"))?
    {
        st.settings.insert(r.get(0), r.get(1));
    }
    st.rules = client
        .query(
            "SELECT table_glob, max_rows, max_percent::text, mode, checkpoint \
             FROM clyra_guard.rules ORDER BY position",
            &[],
        )
        .map_err(q("guard rules"))?
        .iter()
        .map(|r| InstalledRule {
            table_glob: r.get(0),
            max_rows: r.get(1),
            max_percent: r.get(2),
            mode: r.get(3),
            checkpoint: r.get(4),
        })
        .collect();
    st.event_triggers = client
        .query(
            "SELECT evtname::text FROM pg_event_trigger \
             WHERE evtname IN ('clyra_guard_reattach', 'clyra_guard_keep') AND evtenabled <> 'D' \
             ORDER BY 1",
            &[],
        )
        .map_err(q("event triggers"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    st.guarded = client
        .query(
            "SELECT t.tgrelid::regclass::text, count(*), count(*) FILTER (WHERE t.tgenabled = 'D') \
             FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
             WHERE p.oid = 'clyra_guard.check_dml()'::regprocedure \
             GROUP BY 1 ORDER BY 1",
            &[],
        )
        .map_err(q("guarded tables"))?
        .iter()
        .map(|r| GuardedTable {
            table: r.get(0),
            triggers: r.get(1),
            disabled: r.get(2),
        })
        .collect();
    st.unguarded = client
        .query(
            "SELECT c.oid::regclass::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' \
               AND n.nspname NOT IN ('clyra_guard', 'pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_%' \
               AND EXISTS (SELECT 1 FROM clyra_guard.rules r \
                           WHERE (n.nspname || '.' || c.relname) LIKE r.like_pattern) \
               AND (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid \
                      AND t.tgname IN ('clyra_guard_update', 'clyra_guard_delete', \
                                       'clyra_guard_truncate') AND t.tgenabled <> 'D') < 3 \
             ORDER BY 1",
            &[],
        )
        .map_err(q("unguarded tables"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    st.blocked_statements = client
        .query_one(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END \
             FROM clyra_guard.blocked_statements",
            &[],
        )
        .map_err(q("blocked statements"))?
        .get(0);
    st.open_grants = client
        .query(
            &format!(
                "SELECT approval_id, schema_name || '.' || table_name, operations, max_rows, \
                 to_char(expires_at AT TIME ZONE 'UTC', {TS}) FROM clyra_guard.grants \
                 WHERE used_at IS NULL AND expires_at > clock_timestamp() ORDER BY id"
            ),
            &[],
        )
        .map_err(q("open grants"))?
        .iter()
        .map(|r| OpenGrant {
            approval_id: r.get(0),
            table: r.get(1),
            operations: r.get(2),
            max_rows: r.get(3),
            expires_at: r.get(4),
        })
        .collect();
    st.recent_events = client
        .query(
            &format!(
                "SELECT to_char(at AT TIME ZONE 'UTC', {TS}), schema_name || '.' || table_name, \
                 operation, rows, threshold, decision, approval_id, db_user, application_name, \
                 clyra_session FROM clyra_guard.events ORDER BY id DESC LIMIT $1"
            ),
            &[&recent],
        )
        .map_err(q("guard events"))?
        .iter()
        .map(|r| Event {
            at: r.get(0),
            table: r.get(1),
            operation: r.get(2),
            rows: r.get(3),
            threshold: r.get(4),
            decision: r.get(5),
            approval_id: r.get(6),
            db_user: r.get(7),
            application_name: r.get(8),
            clyra_session: r.get(9),
        })
        .collect();
    Ok(st)
}

/// A DML operation a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// UPDATE (and the update part of MERGE).
    Update,
    /// DELETE (and the delete part of MERGE).
    Delete,
    /// TRUNCATE.
    Truncate,
}

impl Operation {
    /// The name in `clyra_guard.grants.operations`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Truncate => "truncate",
        }
    }
}

/// What an approval for the guard approves: the `warehouse_guard` member of the approved
/// payload. The payload's other members (a change ticket, a reason) are free.
///
/// ```json
/// {"change": "CHG-1042",
///  "warehouse_guard": {"tables": ["analytics.orders"], "operations": ["update"], "max_rows": 1000}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardPayload {
    /// Tables (`schema.table`, SQL identifier syntax: quote names that need it).
    pub tables: Vec<String>,
    /// Operations.
    pub operations: Vec<Operation>,
    /// The most rows one statement may touch.
    pub max_rows: u64,
}

/// Why a payload is not a guard approval payload; `pointer` is the JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the approval payload is not a warehouse guard payload: {message} (JSON pointer `{pointer}`)"
)]
pub struct PayloadError {
    /// Where.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl GuardPayload {
    /// Reads the `warehouse_guard` member of `payload`.
    pub fn from_payload(payload: &Value) -> Result<Self, PayloadError> {
        let err = |pointer: String, message: &str| PayloadError {
            pointer,
            message: message.to_string(),
        };
        let base = "/warehouse_guard";
        let g = payload
            .get("warehouse_guard")
            .ok_or_else(|| {
                err(
                    base.into(),
                    "missing; expected {\"tables\": [...], \"operations\": [...], \"max_rows\": N}",
                )
            })?
            .as_object()
            .ok_or_else(|| err(base.into(), "not an object"))?;
        for k in g.keys() {
            if !matches!(k.as_str(), "tables" | "operations" | "max_rows") {
                return Err(err(
                    format!("{base}/{}", pointer_token(k)),
                    "unknown member (expected tables, operations, max_rows)",
                ));
            }
        }
        let strings = |name: &str| -> Result<Vec<String>, PayloadError> {
            let p = format!("{base}/{name}");
            let a = g
                .get(name)
                .ok_or_else(|| err(p.clone(), "missing"))?
                .as_array()
                .ok_or_else(|| err(p.clone(), "not an array"))?;
            if a.is_empty() {
                return Err(err(p, "empty"));
            }
            a.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .filter(|s| !s.is_empty() && !s.contains('\0'))
                        .map(str::to_string)
                        .ok_or_else(|| err(format!("{p}/{i}"), "not a non-empty string"))
                })
                .collect()
        };
        let tables = strings("tables")?;
        let mut operations = Vec::new();
        for (i, o) in strings("operations")?.iter().enumerate() {
            let op = match o.as_str() {
                "update" => Operation::Update,
                "delete" => Operation::Delete,
                "truncate" => Operation::Truncate,
                _ => {
                    return Err(err(
                        format!("{base}/operations/{i}"),
                        "not one of update, delete, truncate",
                    ))
                }
            };
            if !operations.contains(&op) {
                operations.push(op);
            }
        }
        operations.sort();
        let max_rows = g
            .get("max_rows")
            .ok_or_else(|| err(format!("{base}/max_rows"), "missing"))?
            .as_u64()
            .filter(|m| i64::try_from(*m).is_ok())
            .ok_or_else(|| err(format!("{base}/max_rows"), "not a non-negative integer"))?;
        Ok(GuardPayload {
            tables,
            operations,
            max_rows,
        })
    }
}

/// A redeemed approval to register.
#[derive(Debug, Clone)]
pub struct Grant {
    /// SHA-256 of the resume token's text.
    pub token_sha256: [u8; 32],
    /// The approval.
    pub approval_id: String,
    /// The token id.
    pub token_id: String,
    /// The checkpoint the token was granted at.
    pub checkpoint: String,
    /// Who approved.
    pub approvers: Vec<String>,
    /// The token's expiry (RFC 3339).
    pub expires_at: String,
    /// What it allows.
    pub payload: GuardPayload,
}

/// One registered grant row.
#[derive(Debug, Clone, Serialize)]
pub struct GrantRow {
    /// `clyra_guard.grants.id`.
    pub id: i64,
    /// The table (`regclass` text).
    pub table: String,
    /// Whether a guard rule covers the table now (if not, the grant is never needed).
    pub guarded: bool,
}

/// Registers `grant` through `clyra_guard.register_grant` (which resolves the table names as the
/// guard's owner; every table must exist). Meant to run in the caller's transaction, committed
/// only once the token is redeemed.
pub fn register_grant(
    client: &mut impl GenericClient,
    grant: &Grant,
) -> Result<Vec<GrantRow>, Error> {
    let ops: Vec<&str> = grant
        .payload
        .operations
        .iter()
        .map(|o| o.as_str())
        .collect();
    let max_rows = i64::try_from(grant.payload.max_rows).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT grant_id, tbl, guarded FROM clyra_guard.register_grant($1, $2, $3, $4, $5, \
             $6, $7, $8::text::timestamptz, $9)",
            &[
                &grant.token_sha256.as_slice(),
                &grant.approval_id,
                &grant.token_id,
                &grant.checkpoint,
                &grant.payload.tables,
                &ops,
                &max_rows,
                &grant.expires_at,
                &grant.approvers,
            ],
        )
        .map_err(q("register grant"))?;
    Ok(rows
        .iter()
        .map(|r| GrantRow {
            id: r.get(0),
            table: r.get(1),
            guarded: r.get(2),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn like_patterns_escape_like_metacharacters() {
        assert_eq!(like_pattern("public.*"), "public.%");
        assert_eq!(like_pattern("a_b%c\\?"), "a\\_b\\%c\\\\_");
    }

    #[test]
    fn payloads_are_checked_with_pointers() {
        let p = GuardPayload::from_payload(&json!({"change": "x", "warehouse_guard": {
            "tables": ["public.orders"], "operations": ["delete", "update", "update"],
            "max_rows": 1000}}))
        .unwrap();
        assert_eq!(p.operations, [Operation::Update, Operation::Delete]);
        assert_eq!(p.max_rows, 1000);
        let bad = [
            (json!({}), "/warehouse_guard"),
            (json!({"warehouse_guard": []}), "/warehouse_guard"),
            (
                json!({"warehouse_guard": {"tables": [], "operations": ["update"], "max_rows": 1}}),
                "/warehouse_guard/tables",
            ),
            (
                json!({"warehouse_guard": {"tables": ["a.b"], "operations": ["merge"], "max_rows": 1}}),
                "/warehouse_guard/operations/0",
            ),
            (
                json!({"warehouse_guard": {"tables": ["a.b"], "operations": ["update"], "max_rows": -1}}),
                "/warehouse_guard/max_rows",
            ),
            (
                json!({"warehouse_guard": {"tables": ["a.b", 3], "operations": ["update"], "max_rows": 1}}),
                "/warehouse_guard/tables/1",
            ),
            (
                json!({"warehouse_guard": {"tables": ["a.b"], "operations": ["update"], "max_rows": 1, "x/y": 1}}),
                "/warehouse_guard/x~1y",
            ),
        ];
        for (v, pointer) in bad {
            assert_eq!(
                GuardPayload::from_payload(&v).unwrap_err().pointer,
                pointer,
                "{v}"
            );
        }
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            prop_oneof![
                Just("update".to_string()),
                Just("tables".to_string()),
                Just("max_rows".to_string()),
                Just("operations".to_string()),
                ".*"
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("warehouse_guard".to_string()),
                        Just("tables".to_string()),
                        Just("operations".to_string()),
                        Just("max_rows".to_string()),
                        "[a-z]{0,3}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_payload_is_read_or_refused_with_a_pointer(v in json()) {
            let wrapped = json!({"warehouse_guard": v.clone()});
            for p in [v, wrapped] {
                match GuardPayload::from_payload(&p) {
                    Ok(g) => proptest::prop_assert!(!g.tables.is_empty() && !g.operations.is_empty()),
                    Err(e) => proptest::prop_assert!(e.pointer.starts_with("/warehouse_guard")),
                }
            }
        }
    }

    #[test]
    fn the_sql_version_matches_the_constant() {
        assert!(SQL_FUNCTIONS.contains(&format!("SELECT '{VERSION}'")));
    }
}
