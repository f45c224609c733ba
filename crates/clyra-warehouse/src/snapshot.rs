//! Metadata-only snapshots of a Postgres database, as canonical JSON.
//!
//! A snapshot records, for every table, partitioned table, view and materialized view in scope:
//! its kind, its columns (name, type, nullability, position), a schema fingerprint, row and size
//! estimates, column statistics summaries (`null_frac`, `n_distinct`, `avg_width` from `pg_stats`)
//! and the `pg_stat` activity counters, all pinned to an [`anchor`](crate::anchor) taken in the
//! same `REPEATABLE READ READ ONLY` transaction. Exact row counts and content hashes are opt-in per
//! table.
//!
//! **No row values are read into a snapshot.** The catalog query reads `pg_class`,
//! `pg_namespace`, `pg_attribute` and the `pg_stat_get_*` functions; the statistics query reads
//! only the `null_frac`, `n_distinct` and `avg_width` columns of `pg_stats`, never
//! `most_common_vals`, `histogram_bounds` or `most_common_elems`, which hold values. Exact counts
//! read rows on the server and return one number; content hashes return one sum of row hashes.
//!
//! The same database state gives the same bytes: tables are keyed and sorted by
//! `schema.table` (never by oid, which changes every time dbt recreates a table), and the file is
//! RFC 8785 canonical JSON. What legitimately moves between two snapshots of an unchanged
//! database is confined to `anchor` (time, LSN, MVCC snapshot) and each table's `hints`
//! (non-transactional counters); `state_digest` covers everything else except `estimates`.

use std::collections::{BTreeMap, BTreeSet};

use clyra_evidence::{jcs, Digest};
use postgres::types::Type;
use postgres::GenericClient;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::anchor::{self, PgAnchor};
use crate::error::{pointer_token, Error, LoadError};
use crate::glob;
use crate::pg::{parse_lsn, quote_ident};

/// The snapshot format this build writes and reads.
pub const FORMAT: &str = "clyra.warehouse.snapshot/v1";

/// How content hashes are computed; recorded in each one.
pub const CONTENT_HASH_METHOD: &str = "sum(hashtextextended(row::text, 0))";

/// The settings that change how values print as text, pinned with `SET LOCAL` for the snapshot's
/// transaction so that content hashes are comparable across sessions and servers.
pub const PINNED_SETTINGS: [(&str, &str); 5] = [
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "iso_8601"),
    ("TimeZone", "UTC"),
    ("bytea_output", "hex"),
    ("extra_float_digits", "1"),
];

/// A snapshot. Build one with [`take`]; read one with [`Snapshot::from_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Always [`FORMAT`].
    pub format: String,
    /// Where and when: taken in the snapshot's transaction, before anything else.
    pub anchor: PgAnchor,
    /// What was asked for.
    pub scope: Scope,
    /// The pinned text-output settings as the server reported them back, plus `server_encoding`.
    pub settings: BTreeMap<String, String>,
    /// What the fields mean, in words, so the file explains itself to a reader without the docs.
    pub notes: BTreeMap<String, String>,
    /// SHA-256 (hex) of the canonical JSON of the state: `format`, `scope`, `settings` and, per
    /// table key, `kind`, `fingerprint`, `exact_count` and `content_hash` (the fingerprint covers
    /// the columns). Equal for two snapshots of the same state.
    pub state_digest: String,
    /// The relations in scope, keyed by [`table_key`].
    pub tables: BTreeMap<String, Table>,
}

/// What a snapshot was asked to cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Only these schemas (empty: every schema except the system ones).
    pub schemas: Vec<String>,
    /// Never these schemas.
    pub exclude_schemas: Vec<String>,
    /// Table globs that got an exact `count(*)`.
    pub exact_counts: Vec<String>,
    /// Table globs that got a content hash.
    pub content_hashes: Vec<String>,
    /// How sizes were measured.
    pub sizes: Sizes,
    /// Whether `pg_stats` summaries were read.
    pub column_stats: bool,
}

/// How a snapshot measures table sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sizes {
    /// `pg_total_relation_size` and `pg_relation_size`: the files on disk now. Each opens the
    /// relation (an `ACCESS SHARE` lock, released at once) and stats its files.
    #[default]
    Exact,
    /// `pg_class.relpages` × `block_size` (of the table, its TOAST table and their indexes), as
    /// of the last VACUUM, ANALYZE or CREATE INDEX: no relation is opened or locked, which is much
    /// cheaper on a new connection, but a table never vacuumed or analyzed (one dbt just rebuilt,
    /// say) shows 0.
    Estimated,
}

/// The kind of a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelKind {
    /// An ordinary table (`relkind` r), including a partition.
    Table,
    /// A partitioned table (`p`): holds no rows itself.
    PartitionedTable,
    /// A view (`v`).
    View,
    /// A materialized view (`m`).
    MaterializedView,
}

impl RelKind {
    fn from_relkind(k: &str) -> Option<Self> {
        match k {
            "r" => Some(RelKind::Table),
            "p" => Some(RelKind::PartitionedTable),
            "v" => Some(RelKind::View),
            "m" => Some(RelKind::MaterializedView),
            _ => None,
        }
    }

    /// The name used in snapshots and diffs.
    pub fn as_str(self) -> &'static str {
        match self {
            RelKind::Table => "table",
            RelKind::PartitionedTable => "partitioned_table",
            RelKind::View => "view",
            RelKind::MaterializedView => "materialized_view",
        }
    }
}

/// One relation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: RelKind,
    /// Its columns in order (dropped columns left out).
    pub columns: Vec<Column>,
    /// [`fingerprint`] of the columns: SHA-256 hex.
    pub fingerprint: String,
    /// `count(*)`, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_count: Option<u64>,
    /// The content hash, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<ContentHash>,
    /// Planner estimates and sizes: they move with VACUUM and ANALYZE, not only with data.
    pub estimates: Estimates,
    /// Activity counters: non-transactional hints (absent for views).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hints: Option<Hints>,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type as `format_type(atttypid, atttypmod)` prints it (`character varying(20)`).
    #[serde(rename = "type")]
    pub type_: String,
    /// False when the column is `NOT NULL`.
    pub nullable: bool,
    /// Its position among the table's live columns, from 1 (dropped columns leave no gap).
    pub ordinal: u32,
}

/// A content hash: what the server computed, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentHash {
    /// Always [`CONTENT_HASH_METHOD`].
    pub method: String,
    /// The sum as a decimal integer (a `numeric`: it can exceed 64 bits); `0` for no rows.
    pub value: String,
}

/// Estimates: from the planner's statistics and the storage manager.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Estimates {
    /// `pg_class.reltuples`, rounded; null when the table was never vacuumed or analyzed
    /// (reltuples -1), and for views.
    pub rows: Option<u64>,
    /// Table, indexes and TOAST, in bytes, as [`Scope::sizes`] says (null for views).
    pub total_bytes: Option<u64>,
    /// The table's main fork only, in bytes (null for views).
    pub table_bytes: Option<u64>,
    /// From `pg_stats` (`inherited = false`), by column name; columns never analyzed are absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub column_stats: BTreeMap<String, ColumnStats>,
    /// From `pg_stats` with `inherited = true` (partitioned and inheritance parents).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inherited_column_stats: BTreeMap<String, ColumnStats>,
}

/// Statistics summaries of one column. Never values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnStats {
    /// Fraction of sampled rows that were null.
    pub null_frac: f64,
    /// Distinct values: positive is a count, negative a fraction of the rows (-1: all distinct).
    pub n_distinct: f64,
    /// Average stored width in bytes.
    pub avg_width: i64,
}

/// The `pg_stat_get_*` counters. Not transactional, flushed asynchronously, reset by
/// `pg_stat_reset()` and after a crash: good for deltas between snapshots, never proof.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hints {
    /// `pg_stat_get_live_tuples`.
    pub live_tuples: i64,
    /// `pg_stat_get_dead_tuples`.
    pub dead_tuples: i64,
    /// `pg_stat_get_tuples_inserted`.
    pub tuples_inserted: i64,
    /// `pg_stat_get_tuples_updated`.
    pub tuples_updated: i64,
    /// `pg_stat_get_tuples_deleted`.
    pub tuples_deleted: i64,
}

/// What to snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Only these schemas (empty: all but `pg_catalog`, `information_schema`, TOAST and temp).
    pub schemas: Vec<String>,
    /// Never these schemas.
    pub exclude_schemas: Vec<String>,
    /// Table globs (`schema.table`, `*`, `?`) to count exactly. Each must match a table.
    pub exact_counts: Vec<String>,
    /// Table globs to content-hash (which counts them too). Each must match a table.
    pub content_hashes: Vec<String>,
    /// How to measure sizes (default [`Sizes::Exact`]).
    pub sizes: Sizes,
    /// Read `pg_stats` summaries (default true). Off saves the statistics query, the costliest
    /// part of a snapshot on a new connection.
    pub column_stats: bool,
    /// `lock_timeout` for the snapshot's transaction, in milliseconds (0: wait forever). Sizes,
    /// counts and hashes take `ACCESS SHARE` locks, which wait behind a DDL in progress.
    pub lock_timeout_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            schemas: Vec::new(),
            exclude_schemas: Vec::new(),
            exact_counts: Vec::new(),
            content_hashes: Vec::new(),
            sizes: Sizes::Exact,
            column_stats: true,
            lock_timeout_ms: 10_000,
        }
    }
}

/// A table's key: `schema.table`, each part written bare unless it contains `.` or `"`, in which
/// case it is double-quoted with `"` doubled, so that the key names one table unambiguously.
pub fn table_key(schema: &str, name: &str) -> String {
    fn part(s: &str) -> String {
        if s.is_empty() || s.contains(['.', '"']) {
            quote_ident(s)
        } else {
            s.to_string()
        }
    }
    format!("{}.{}", part(schema), part(name))
}

/// The schema fingerprint of a column list: SHA-256 (hex) of the RFC 8785 canonical JSON of
/// `[[name, type, nullable], ...]` in column order.
pub fn fingerprint(columns: &[Column]) -> String {
    let list: Vec<Value> = columns
        .iter()
        .map(|c| serde_json::json!([c.name, c.type_, c.nullable]))
        .collect();
    // Strings and booleans only: canonicalization cannot fail.
    let bytes = jcs::canonicalize_value(&Value::Array(list)).unwrap_or_default();
    Digest::sha256(&bytes).to_hex()
}

fn notes() -> BTreeMap<String, String> {
    [
        ("anchor", "where and when, read first in the snapshot's REPEATABLE READ READ ONLY transaction; no transaction id was assigned (checked with pg_current_xact_id_if_assigned)"),
        ("values", "no row values are in this file: catalog metadata, statistics summaries, counts and hash sums only; pg_stats most_common_vals and histogram_bounds are never read"),
        ("fingerprint", "SHA-256 of the RFC 8785 canonical JSON of [[name, type, nullable], ...] in column order"),
        ("estimates", "planner estimates, not proof: rows is pg_class.reltuples (null if never vacuumed or analyzed), sizes as scope.sizes says (exact: pg_total_relation_size and pg_relation_size now; estimated: pg_class.relpages as of the last VACUUM or ANALYZE), column_stats from pg_stats (ANALYZE's sample) when scope.column_stats"),
        ("hints", "pg_stat counters: not transactional, flushed asynchronously, reset by pg_stat_reset() and by a crash; use them for deltas, never as proof"),
        ("exact_count", "count(*) in the snapshot's transaction, only for tables matching scope.exact_counts or scope.content_hashes"),
        ("content_hash", "sum of hashtextextended(row::text, 0) over all rows with the settings above pinned: independent of row order and physical layout (VACUUM FULL, CLUSTER); a 64-bit non-cryptographic hash, so it detects accidental change but is not collision resistant and proves nothing against someone who crafts rows to collide"),
        ("state_digest", "SHA-256 of the canonical JSON of {format, scope, settings, tables: {key: {kind, fingerprint, exact_count, content_hash}}} (absent members omitted)"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Takes a snapshot in one `REPEATABLE READ READ ONLY` transaction.
///
/// Round trips: the anchor, one catalog query (tables, columns, sizes, counters), one statistics
/// query, one counting query when counts or hashes were asked for, and a closing check. To take
/// many snapshots over one connection, [`Session`] keeps the queries prepared.
pub fn take(client: &mut postgres::Client, options: &Options) -> Result<Snapshot, Error> {
    take_tx(client, options, None)
}

fn take_tx(
    client: &mut postgres::Client,
    options: &Options,
    prepared: Option<&Prepared>,
) -> Result<Snapshot, Error> {
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| Error::query("begin", &e))?;
    let snapshot = take_inner(&mut tx, options, prepared, true)?;
    tx.commit().map_err(|e| Error::query("commit", &e))?;
    Ok(snapshot)
}

/// Takes a snapshot inside the caller's transaction, which must be `REPEATABLE READ` (or
/// `SERIALIZABLE`) and have run no query yet, so that every query sees the anchor's snapshot.
pub fn take_in<C: GenericClient>(client: &mut C, options: &Options) -> Result<Snapshot, Error> {
    take_inner(client, options, None, true)
}

/// Takes a snapshot inside the caller's transaction after that transaction has written (a
/// replay's scratch schema, which it rolls back): as [`take_in`], without the closing check that
/// no transaction id was assigned. Its `notes` still describe an ordinary snapshot; such a
/// snapshot is for comparison in memory, not a file.
pub fn take_in_written<C: GenericClient>(
    client: &mut C,
    options: &Options,
) -> Result<Snapshot, Error> {
    take_inner(client, options, None, false)
}

/// A connection that takes snapshots with its catalog and statistics queries prepared once, so
/// that repeated snapshots skip parsing and planning them.
pub struct Session {
    client: postgres::Client,
    prepared: Option<Prepared>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("prepared", &self.prepared.is_some())
            .finish()
    }
}

struct Prepared {
    sizes: Sizes,
    catalog: postgres::Statement,
    stats: postgres::Statement,
}

impl Session {
    /// Wraps a connection; the queries are prepared on the first snapshot.
    pub fn new(client: postgres::Client) -> Self {
        Session {
            client,
            prepared: None,
        }
    }

    /// Takes a snapshot, as [`take`] does.
    pub fn take(&mut self, options: &Options) -> Result<Snapshot, Error> {
        if self.prepared.as_ref().map(|p| p.sizes) != Some(options.sizes) {
            let types = [Type::NAME_ARRAY, Type::NAME_ARRAY];
            self.prepared = Some(Prepared {
                sizes: options.sizes,
                catalog: self
                    .client
                    .prepare_typed(&catalog_sql(options.sizes), &types)
                    .map_err(|e| Error::query("catalog query", &e))?,
                stats: self
                    .client
                    .prepare_typed(STATS_SQL, &types)
                    .map_err(|e| Error::query("statistics query", &e))?,
            });
        }
        take_tx(&mut self.client, options, self.prepared.as_ref())
    }

    /// The connection, for other queries.
    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }

    /// Gives the connection back.
    pub fn into_client(self) -> postgres::Client {
        self.client
    }
}

fn take_inner<C: GenericClient>(
    client: &mut C,
    options: &Options,
    prepared: Option<&Prepared>,
    check_xid: bool,
) -> Result<Snapshot, Error> {
    let scope = normalized_scope(options)?;
    let mut set = String::new();
    for (name, value) in PINNED_SETTINGS {
        set.push_str(&format!("SET LOCAL {name} = '{value}';"));
    }
    set.push_str(&format!(
        "SET LOCAL lock_timeout = {};",
        options.lock_timeout_ms
    ));
    client
        .batch_execute(&set)
        .map_err(|e| Error::query("pinning settings", &e))?;

    let anchor = anchor::read(client)?;
    let mut tables = catalog(client, &scope, prepared.map(|p| &p.catalog))?;
    if scope.column_stats {
        column_stats(client, &scope, &mut tables, prepared.map(|p| &p.stats))?;
    }
    counts(client, &scope, &mut tables)?;
    let settings = closing_check(client, check_xid)?;

    let mut snapshot = Snapshot {
        format: FORMAT.to_string(),
        anchor,
        scope,
        settings,
        notes: notes(),
        state_digest: String::new(),
        tables,
    };
    snapshot.state_digest = snapshot.compute_state_digest()?;
    Ok(snapshot)
}

/// Runs `sql` with the two schema lists, prepared or not.
fn query_schemas<C: GenericClient>(
    client: &mut C,
    sql: &str,
    prepared: Option<&postgres::Statement>,
    scope: &Scope,
) -> Result<Vec<postgres::Row>, postgres::Error> {
    match prepared {
        Some(stmt) => client.query(stmt, &[&scope.schemas, &scope.exclude_schemas]),
        None => client.query_typed(
            sql,
            &[
                (&scope.schemas, Type::NAME_ARRAY),
                (&scope.exclude_schemas, Type::NAME_ARRAY),
            ],
        ),
    }
}

fn normalized_scope(o: &Options) -> Result<Scope, Error> {
    let sorted = |v: &[String]| -> Vec<String> {
        v.iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    for (option, list) in [
        ("--exact-counts glob", &o.exact_counts),
        ("--content-hash glob", &o.content_hashes),
    ] {
        if let Some(g) = list.iter().find(|g| g.is_empty()) {
            return Err(Error::Option {
                option,
                value: g.clone(),
                message: "empty glob".into(),
            });
        }
    }
    for (option, list) in [
        ("--schemas", &o.schemas),
        ("--exclude-schemas", &o.exclude_schemas),
    ] {
        if let Some(s) = list.iter().find(|s| s.is_empty()) {
            return Err(Error::Option {
                option,
                value: s.clone(),
                message: "empty schema name".into(),
            });
        }
    }
    Ok(Scope {
        schemas: sorted(&o.schemas),
        exclude_schemas: sorted(&o.exclude_schemas),
        exact_counts: sorted(&o.exact_counts),
        content_hashes: sorted(&o.content_hashes),
        sizes: o.sizes,
        column_stats: o.column_stats,
    })
}

/// The catalog query, with sizes measured as asked.
fn catalog_sql(sizes: Sizes) -> String {
    let (with, total, main, joins) = match sizes {
        Sizes::Exact => (
            "",
            "pg_total_relation_size(c.oid)",
            "pg_relation_size(c.oid)",
            "",
        ),
        // One pass over pg_index, joined: a correlated index lookup per table was measured at
        // 30-90 ms for 100 tables on a catalog bloated by churn, against ~1 ms for this.
        Sizes::Estimated => (
            "WITH ix AS MATERIALIZED (
               SELECT x.indrelid, sum(i.relpages)::bigint AS pages
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid GROUP BY x.indrelid)",
            "(c.relpages::bigint + coalesce(t.relpages, 0)::bigint + coalesce(ci.pages, 0)
              + coalesce(ti.pages, 0)) * current_setting('block_size')::bigint",
            "c.relpages::bigint * current_setting('block_size')::bigint",
            "LEFT JOIN pg_class t ON t.oid = c.reltoastrelid AND c.reltoastrelid <> 0
             LEFT JOIN ix ci ON ci.indrelid = c.oid
             LEFT JOIN ix ti ON ti.indrelid = c.reltoastrelid AND c.reltoastrelid <> 0",
        ),
    };
    CATALOG_SQL
        .replace("{with}", with)
        .replace("{total}", total)
        .replace("{main}", main)
        .replace("{joins}", joins)
}

const CATALOG_SQL: &str = "
{with}
SELECT n.nspname::text, c.relname::text, c.relkind::text, c.reltuples::float8,
       CASE WHEN c.relkind IN ('r', 'p', 'm') THEN {total} END,
       CASE WHEN c.relkind IN ('r', 'p', 'm') THEN {main} END,
       pg_stat_get_live_tuples(c.oid), pg_stat_get_dead_tuples(c.oid),
       pg_stat_get_tuples_inserted(c.oid), pg_stat_get_tuples_updated(c.oid),
       pg_stat_get_tuples_deleted(c.oid),
       (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod),
                                         NOT a.attnotnull) ORDER BY a.attnum)
          FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  {joins}
 WHERE c.relkind IN ('r', 'p', 'v', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
   AND (cardinality($1::name[]) = 0 OR n.nspname = ANY($1::name[]))
   AND NOT (n.nspname = ANY($2::name[]))";

fn catalog<C: GenericClient>(
    client: &mut C,
    scope: &Scope,
    prepared: Option<&postgres::Statement>,
) -> Result<BTreeMap<String, Table>, Error> {
    let rows = query_schemas(client, &catalog_sql(scope.sizes), prepared, scope)
        .map_err(|e| Error::query("catalog query", &e))?;
    let mut tables = BTreeMap::new();
    for row in rows {
        let bad = |what: &str, e: &dyn std::fmt::Display| Error::Unexpected {
            what: format!("catalog column {what}"),
            message: e.to_string(),
        };
        let schema: String = row.try_get(0).map_err(|e| bad("nspname", &e))?;
        let name: String = row.try_get(1).map_err(|e| bad("relname", &e))?;
        let relkind: String = row.try_get(2).map_err(|e| bad("relkind", &e))?;
        let kind = RelKind::from_relkind(&relkind)
            .ok_or_else(|| bad("relkind", &format!("unknown relkind `{relkind}`")))?;
        let reltuples: f64 = row.try_get(3).map_err(|e| bad("reltuples", &e))?;
        let total: Option<i64> = row.try_get(4).map_err(|e| bad("total size", &e))?;
        let main: Option<i64> = row.try_get(5).map_err(|e| bad("size", &e))?;
        let mut counters = [0i64; 5];
        for (i, c) in counters.iter_mut().enumerate() {
            *c = row
                .try_get::<_, Option<i64>>(6 + i)
                .map_err(|e| bad("pg_stat counter", &e))?
                .unwrap_or(0);
        }
        let cols: Option<String> = row.try_get(11).map_err(|e| bad("columns", &e))?;
        let columns = parse_columns(cols.as_deref())
            .map_err(|m| bad(&format!("columns of {schema}.{name}"), &m))?;
        let is_view = kind == RelKind::View;
        let table = Table {
            fingerprint: fingerprint(&columns),
            schema,
            name,
            kind,
            columns,
            exact_count: None,
            content_hash: None,
            estimates: Estimates {
                rows: if !is_view && reltuples.is_finite() && reltuples >= 0.0 {
                    // Non-negative and finite: the cast saturates, it cannot wrap.
                    Some(reltuples.round() as u64)
                } else {
                    None
                },
                total_bytes: total.and_then(|v| u64::try_from(v).ok()),
                table_bytes: main.and_then(|v| u64::try_from(v).ok()),
                column_stats: BTreeMap::new(),
                inherited_column_stats: BTreeMap::new(),
            },
            hints: (!is_view).then_some(Hints {
                live_tuples: counters[0],
                dead_tuples: counters[1],
                tuples_inserted: counters[2],
                tuples_updated: counters[3],
                tuples_deleted: counters[4],
            }),
        };
        tables.insert(table_key(&table.schema, &table.name), table);
    }
    Ok(tables)
}

fn parse_columns(json: Option<&str>) -> Result<Vec<Column>, String> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let list: Vec<(String, String, bool)> =
        serde_json::from_str(json).map_err(|e| e.to_string())?;
    list.into_iter()
        .enumerate()
        .map(|(i, (name, type_, nullable))| {
            Ok(Column {
                name,
                type_,
                nullable,
                ordinal: u32::try_from(i + 1).map_err(|e| e.to_string())?,
            })
        })
        .collect()
}

const STATS_SQL: &str = "
SELECT schemaname::text, tablename::text, attname::text, inherited, null_frac, n_distinct, avg_width
  FROM pg_stats
 WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
   AND (cardinality($1::name[]) = 0 OR schemaname = ANY($1::name[]))
   AND NOT (schemaname = ANY($2::name[]))";

/// A `real` as the double it prints as (0.1f32 becomes 0.1, not 0.10000000149011612).
fn real(v: f32) -> Option<f64> {
    if v.is_finite() {
        v.to_string().parse().ok()
    } else {
        None
    }
}

fn column_stats<C: GenericClient>(
    client: &mut C,
    scope: &Scope,
    tables: &mut BTreeMap<String, Table>,
    prepared: Option<&postgres::Statement>,
) -> Result<(), Error> {
    let rows = query_schemas(client, STATS_SQL, prepared, scope)
        .map_err(|e| Error::query("statistics query", &e))?;
    for row in rows {
        let bad = |e: postgres::Error| Error::Unexpected {
            what: "pg_stats row".into(),
            message: e.to_string(),
        };
        let schema: String = row.try_get(0).map_err(bad)?;
        let table: String = row.try_get(1).map_err(bad)?;
        let column: String = row.try_get(2).map_err(bad)?;
        let inherited: bool = row.try_get(3).map_err(bad)?;
        let null_frac: Option<f32> = row.try_get(4).map_err(bad)?;
        let n_distinct: Option<f32> = row.try_get(5).map_err(bad)?;
        let avg_width: Option<i32> = row.try_get(6).map_err(bad)?;
        // pg_stats also lists expression indexes; only the tables we hold, and their columns.
        let Some(t) = tables.get_mut(&table_key(&schema, &table)) else {
            continue;
        };
        if !t.columns.iter().any(|c| c.name == column) {
            continue;
        }
        let (Some(null_frac), Some(n_distinct), Some(avg_width)) = (
            null_frac.and_then(real),
            n_distinct.and_then(real),
            avg_width,
        ) else {
            continue;
        };
        let stats = ColumnStats {
            null_frac,
            n_distinct,
            avg_width: i64::from(avg_width),
        };
        if inherited {
            t.estimates.inherited_column_stats.insert(column, stats);
        } else {
            t.estimates.column_stats.insert(column, stats);
        }
    }
    Ok(())
}

/// The tables each glob list selects; every glob must select at least one.
fn select(
    tables: &BTreeMap<String, Table>,
    globs: &[String],
    option: &'static str,
    scope: &Scope,
) -> Result<BTreeSet<String>, Error> {
    let mut selected = BTreeSet::new();
    for g in globs {
        let mut any = false;
        for key in tables.keys() {
            if glob::matches(g, key) {
                any = true;
                selected.insert(key.clone());
            }
        }
        if !any {
            return Err(Error::GlobMatchesNothing {
                option,
                glob: g.clone(),
                in_scope: tables.len(),
                schemas: scope.schemas.clone(),
            });
        }
    }
    Ok(selected)
}

fn counts<C: GenericClient>(
    client: &mut C,
    scope: &Scope,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), Error> {
    let count = select(tables, &scope.exact_counts, "--exact-counts glob", scope)?;
    let hash = select(tables, &scope.content_hashes, "--content-hash glob", scope)?;
    let keys: Vec<&String> = count.union(&hash).collect();
    if keys.is_empty() {
        return Ok(());
    }
    let mut sql = String::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(t) = tables.get(*key) else { continue };
        if !sql.is_empty() {
            sql.push_str("\nUNION ALL ");
        }
        let from = format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name));
        if hash.contains(*key) {
            // The whole-row reference must not be mistaken for a column of the same name.
            let mut alias = String::from("clyra_row");
            while t.columns.iter().any(|c| c.name == alias) {
                alias.push('_');
            }
            sql.push_str(&format!(
                "SELECT {i}, count(*), coalesce(sum(hashtextextended({a}::text, 0)), 0)::text FROM {from} AS {a}",
                a = quote_ident(&alias)
            ));
        } else {
            sql.push_str(&format!("SELECT {i}, count(*), NULL::text FROM {from}"));
        }
    }
    let rows = client
        .simple_query(&sql)
        .map_err(|e| Error::query("exact counts and content hashes", &e))?;
    for msg in rows {
        let postgres::SimpleQueryMessage::Row(row) = msg else {
            continue;
        };
        let bad = |m: String| Error::Unexpected {
            what: "count or content hash".into(),
            message: m,
        };
        let i: usize = row
            .get(0)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no index".into()))?;
        let key = keys.get(i).ok_or_else(|| bad(format!("index {i}")))?;
        let n: u64 = row
            .get(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("count of {key}")))?;
        let h = row.get(2).map(str::to_string);
        if let Some(h) = &h {
            if !is_decimal(h) {
                return Err(bad(format!("content hash `{h}` of {key}")));
            }
        }
        if let Some(t) = tables.get_mut(*key) {
            t.exact_count = Some(n);
            t.content_hash = h.map(|value| ContentHash {
                method: CONTENT_HASH_METHOD.to_string(),
                value,
            });
        }
    }
    Ok(())
}

/// Reads the pinned settings back and checks that no transaction id was assigned.
fn closing_check<C: GenericClient>(
    client: &mut C,
    check_xid: bool,
) -> Result<BTreeMap<String, String>, Error> {
    let mut sql = String::from("SELECT pg_current_xact_id_if_assigned()::text");
    let names: Vec<&str> = PINNED_SETTINGS
        .iter()
        .map(|(n, _)| *n)
        .chain(["server_encoding"])
        .collect();
    for n in &names {
        sql.push_str(&format!(", current_setting('{n}')"));
    }
    let row = client
        .query_typed_one(&sql, &[])
        .map_err(|e| Error::query("closing check", &e))?;
    let bad = |e: postgres::Error| Error::Unexpected {
        what: "settings".into(),
        message: e.to_string(),
    };
    let xid: Option<String> = row.try_get(0).map_err(bad)?;
    if let (Some(xid), true) = (xid, check_xid) {
        return Err(Error::XidAssigned { xid });
    }
    let mut settings = BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        let v: String = row.try_get(i + 1).map_err(bad)?;
        settings.insert((*n).to_string(), v);
    }
    Ok(settings)
}

fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0"
}

impl Snapshot {
    /// The snapshot's canonical JSON (RFC 8785) bytes: what `clyra snapshot take` writes.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, Error> {
        jcs::to_canonical_vec(self).map_err(|e| Error::Canonical(e.to_string()))
    }

    /// The state digest this snapshot should carry (see [`Snapshot::state_digest`]).
    pub fn compute_state_digest(&self) -> Result<String, Error> {
        let state = StateView {
            format: &self.format,
            scope: &self.scope,
            settings: &self.settings,
            tables: self
                .tables
                .iter()
                .map(|(k, t)| {
                    (
                        k.as_str(),
                        TableState {
                            kind: t.kind,
                            fingerprint: &t.fingerprint,
                            exact_count: t.exact_count,
                            content_hash: t.content_hash.as_ref(),
                        },
                    )
                })
                .collect(),
        };
        let bytes = jcs::to_canonical_vec(&state).map_err(|e| Error::Canonical(e.to_string()))?;
        Ok(Digest::sha256(&bytes).to_hex())
    }

    /// Reads a snapshot file: strict JSON, the right format, every member well typed, and
    /// consistent (keys match names, ordinals run 1..n, fingerprints and the state digest match).
    /// Errors name the JSON pointer of what is wrong. The input is untrusted: nothing in it can
    /// make this panic.
    pub fn from_json(bytes: &[u8]) -> Result<Snapshot, LoadError> {
        let value = jcs::parse_strict(bytes)?;
        let Value::Object(top) = &value else {
            return Err(LoadError::NotASnapshot {
                pointer: String::new(),
                message: "the document is not a JSON object".into(),
            });
        };
        match top.get("format") {
            None => {
                return Err(LoadError::NotASnapshot {
                    pointer: String::new(),
                    message: "no `format` member".into(),
                })
            }
            Some(Value::String(f)) if f == FORMAT => {}
            Some(Value::String(f)) => {
                return Err(LoadError::Version {
                    found: f.clone(),
                    expected: FORMAT,
                })
            }
            Some(_) => {
                return Err(LoadError::NotASnapshot {
                    pointer: "/format".into(),
                    message: "`format` is not a string".into(),
                })
            }
        }
        let snapshot: Snapshot = serde_path_to_error::deserialize(value).map_err(|e| {
            let pointer = path_to_pointer(e.path());
            LoadError::Invalid {
                pointer,
                message: e.into_inner().to_string(),
            }
        })?;
        snapshot.validate()?;
        Ok(snapshot)
    }

    fn validate(&self) -> Result<(), LoadError> {
        let invalid = |pointer: String, message: String| LoadError::Invalid { pointer, message };
        if parse_lsn(&self.anchor.lsn).is_none() {
            return Err(invalid(
                "/anchor/lsn".into(),
                format!("`{}` is not an LSN (like 0/1947120)", self.anchor.lsn),
            ));
        }
        if !is_decimal(&self.anchor.system_identifier) {
            return Err(invalid(
                "/anchor/system_identifier".into(),
                "not a decimal integer".into(),
            ));
        }
        for (key, t) in &self.tables {
            let at = format!("/tables/{}", pointer_token(key));
            let expected = table_key(&t.schema, &t.name);
            if *key != expected {
                return Err(invalid(
                    at,
                    format!(
                        "key does not match schema `{}` and name `{}` (expected key `{expected}`)",
                        t.schema, t.name
                    ),
                ));
            }
            let mut names = BTreeSet::new();
            for (i, c) in t.columns.iter().enumerate() {
                if u64::from(c.ordinal) != i as u64 + 1 {
                    return Err(invalid(
                        format!("{at}/columns/{i}/ordinal"),
                        format!(
                            "ordinal {} where {} was expected (ordinals run 1..n in order)",
                            c.ordinal,
                            i + 1
                        ),
                    ));
                }
                if !names.insert(c.name.as_str()) {
                    return Err(invalid(
                        format!("{at}/columns/{i}/name"),
                        format!("duplicate column name `{}`", c.name),
                    ));
                }
            }
            let computed = fingerprint(&t.columns);
            if t.fingerprint != computed {
                return Err(invalid(
                    format!("{at}/fingerprint"),
                    format!("does not match the columns (they give {computed})"),
                ));
            }
            if let Some(h) = &t.content_hash {
                if h.method != CONTENT_HASH_METHOD {
                    return Err(invalid(
                        format!("{at}/content_hash/method"),
                        format!(
                            "unknown method `{}` (this build knows `{CONTENT_HASH_METHOD}`)",
                            h.method
                        ),
                    ));
                }
                if !is_decimal(&h.value) {
                    return Err(invalid(
                        format!("{at}/content_hash/value"),
                        "not a decimal integer".into(),
                    ));
                }
            }
        }
        let computed = self
            .compute_state_digest()
            .map_err(|e| invalid(String::new(), e.to_string()))?;
        if self.state_digest != computed {
            return Err(invalid(
                "/state_digest".into(),
                format!("does not match the snapshot's contents (they give {computed})"),
            ));
        }
        Ok(())
    }

    /// How many relations of each kind.
    pub fn kind_counts(&self) -> BTreeMap<RelKind, usize> {
        let mut m = BTreeMap::new();
        for t in self.tables.values() {
            *m.entry(t.kind).or_insert(0) += 1;
        }
        m
    }
}

/// What the state digest covers: `format`, `scope`, `settings` and, per table key, the kind, the
/// fingerprint (which covers the columns: names, types, nullability, order; the schema and name are
/// in the key) and the exact count and content hash when present.
#[derive(Serialize)]
struct StateView<'a> {
    format: &'a str,
    scope: &'a Scope,
    settings: &'a BTreeMap<String, String>,
    tables: BTreeMap<&'a str, TableState<'a>>,
}

#[derive(Serialize)]
struct TableState<'a> {
    kind: RelKind,
    fingerprint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_hash: Option<&'a ContentHash>,
}

pub(crate) fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut p = String::new();
    for seg in path.iter() {
        p.push('/');
        match seg {
            Segment::Seq { index } => p.push_str(&index.to_string()),
            Segment::Map { key } => p.push_str(&pointer_token(key)),
            Segment::Enum { variant } => p.push_str(&pointer_token(variant)),
            Segment::Unknown => p.push('?'),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_unambiguous() {
        assert_eq!(table_key("public", "orders"), "public.orders");
        assert_eq!(table_key("a.b", "c"), "\"a.b\".c");
        assert_eq!(table_key("a", "b.c"), "a.\"b.c\"");
        assert_eq!(table_key("Sales", "x\"y"), "Sales.\"x\"\"y\"");
    }

    #[test]
    fn fingerprint_is_sha256_of_canonical_column_list() {
        let cols = vec![
            Column {
                name: "id".into(),
                type_: "integer".into(),
                nullable: false,
                ordinal: 1,
            },
            Column {
                name: "name".into(),
                type_: "text".into(),
                nullable: true,
                ordinal: 2,
            },
        ];
        let expected = Digest::sha256(br#"[["id","integer",false],["name","text",true]]"#).to_hex();
        assert_eq!(fingerprint(&cols), expected);
        let mut swapped = cols.clone();
        swapped.swap(0, 1);
        assert_ne!(fingerprint(&swapped), expected, "order matters");
    }

    #[test]
    fn decimals() {
        for ok in ["0", "-1", "123", "-98765432109876543210"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", "-", "-0", "01", "1.5", "1e3", " 1", "+1"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }

    #[test]
    fn reals_print_as_written() {
        assert_eq!(real(0.1f32), Some(0.1));
        assert_eq!(real(-1.0f32), Some(-1.0));
        assert_eq!(real(f32::NAN), None);
    }
}
