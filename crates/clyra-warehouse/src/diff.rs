//! Deterministic diffs of two snapshots, keyed by qualified table name.
//!
//! A diff separates **changes** from **observations**:
//!
//! - *Changes* are facts the catalog or an exact measurement states: tables added or dropped, a
//!   kind changed (table to view), columns added, dropped, retyped, made (not) nullable or moved,
//!   the schema fingerprint, exact row counts and content hashes. [`Diff::changed`] is true when
//!   there is at least one; `clyra diff --fail-on-change` exits 2 on it.
//! - *Observations* move without the data changing and are reported, labelled, but never count as
//!   a change: estimated rows (`reltuples`), sizes, column statistics (ANALYZE samples) and the
//!   non-transactional `pg_stat` counters.
//!
//! Ordering is fixed (tables by key; within a table, a fixed order of change kinds, each by
//! ordinal), so the same two snapshots always give the same diff, byte for byte.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::snapshot::{Column, ColumnStats, RelKind, Snapshot, Table, PINNED_SETTINGS};

/// The diff format this build writes (`--format json`).
pub const FORMAT: &str = "clyra.warehouse.diff/v1";

/// The difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// Always [`FORMAT`].
    pub format: &'static str,
    /// The first snapshot, in brief.
    pub from: Side,
    /// The second snapshot, in brief.
    pub to: Side,
    /// Whether there is at least one change (observations do not count).
    pub changed: bool,
    /// Counts.
    pub summary: Summary,
    /// Caveats about comparing these two snapshots (different clusters, scopes, settings...).
    pub notes: Vec<String>,
    /// Every table with a change or an observation, by key.
    pub tables: Vec<TableDiff>,
}

/// One side of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    /// The database.
    pub database: String,
    /// The cluster's system identifier.
    pub system_identifier: String,
    /// The timeline.
    pub timeline: u32,
    /// The LSN.
    pub lsn: String,
    /// The server clock when the anchor was read.
    pub clock_timestamp: String,
    /// The snapshot's state digest.
    pub state_digest: String,
    /// How many relations it holds.
    pub tables: usize,
}

/// Counts of a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Tables only in the second snapshot.
    pub tables_added: usize,
    /// Tables only in the first snapshot.
    pub tables_dropped: usize,
    /// Tables in both with at least one change.
    pub tables_changed: usize,
    /// Tables in both without a change (they may have observations).
    pub tables_unchanged: usize,
    /// Changes in all.
    pub changes: usize,
    /// Observations in all.
    pub observations: usize,
}

/// What happened to one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Only in the second snapshot.
    Added,
    /// Only in the first snapshot.
    Dropped,
    /// In both, with changes.
    Changed,
    /// In both, with observations only.
    Observed,
}

/// The diff of one table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableDiff {
    /// The table's key, `schema.table`.
    pub table: String,
    /// What happened to it.
    pub status: Status,
    /// Its changes, in a fixed order.
    pub changes: Vec<Change>,
    /// Guesses a person should check (a column dropped and another added at the same position
    /// may be a rename).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<Hint>,
    /// Its observations: estimates and counters, not proof.
    pub observations: Vec<Observation>,
}

/// A change: a catalog fact or an exact measurement that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// The table appeared.
    TableAdded {
        /// Its kind.
        kind: RelKind,
        /// How many columns it has.
        columns: usize,
        /// Its fingerprint.
        fingerprint: String,
    },
    /// The table disappeared.
    TableDropped {
        /// Its kind.
        kind: RelKind,
        /// How many columns it had.
        columns: usize,
        /// Its fingerprint.
        fingerprint: String,
    },
    /// The relation changed kind (a dbt model materialized as a view, then as a table).
    KindChanged {
        /// The old kind.
        from: RelKind,
        /// The new kind.
        to: RelKind,
    },
    /// A column disappeared.
    ColumnDropped {
        /// Its name.
        column: String,
        /// Its type.
        #[serde(rename = "type")]
        type_: String,
        /// Whether it was nullable.
        nullable: bool,
        /// Its position in the first snapshot.
        ordinal: u32,
    },
    /// A column appeared.
    ColumnAdded {
        /// Its name.
        column: String,
        /// Its type.
        #[serde(rename = "type")]
        type_: String,
        /// Whether it is nullable.
        nullable: bool,
        /// Its position in the second snapshot.
        ordinal: u32,
    },
    /// A column's type changed.
    ColumnRetyped {
        /// Its name.
        column: String,
        /// The old type.
        from: String,
        /// The new type.
        to: String,
    },
    /// A column became nullable or NOT NULL.
    NullabilityChanged {
        /// Its name.
        column: String,
        /// Whether it was nullable.
        from: bool,
        /// Whether it is nullable.
        to: bool,
    },
    /// A column moved relative to the other columns both snapshots share (positions shifted only
    /// by added or dropped columns are not moves).
    ColumnMoved {
        /// Its name.
        column: String,
        /// Its old position.
        from: u32,
        /// Its new position.
        to: u32,
    },
    /// The schema fingerprint changed.
    FingerprintChanged {
        /// The old one.
        from: String,
        /// The new one.
        to: String,
    },
    /// The exact row count changed (both snapshots counted).
    ExactCountChanged {
        /// The old count.
        from: u64,
        /// The new count.
        to: u64,
        /// `to - from`.
        delta: i64,
    },
    /// The content hash changed (both snapshots hashed, with the same settings).
    ContentHashChanged {
        /// The old sum.
        from: String,
        /// The new sum.
        to: String,
    },
}

/// A guess for a person to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "hint", rename_all = "snake_case")]
pub enum Hint {
    /// A column was dropped and another added at the same position: perhaps a rename.
    PossibleRename {
        /// The dropped column.
        from: String,
        /// The added column.
        to: String,
        /// The shared position.
        ordinal: u32,
        /// Whether their types are equal.
        same_type: bool,
    },
}

/// An old and a new value of an estimate or size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// The old value (null: unknown).
    pub from: Option<u64>,
    /// The new value (null: unknown).
    pub to: Option<u64>,
    /// `to - from` when both are known.
    pub delta: Option<i64>,
}

impl Delta {
    fn of(from: Option<u64>, to: Option<u64>) -> Self {
        Delta {
            from,
            to,
            delta: match (from, to) {
                (Some(a), Some(b)) => Some(sub(b, a)),
                _ => None,
            },
        }
    }
}

/// `b - a` saturated to i64.
fn sub(b: u64, a: u64) -> i64 {
    let d = i128::from(b) - i128::from(a);
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

fn isub(b: i64, a: i64) -> i64 {
    b.saturating_sub(a)
}

/// Something that moved but is not proof of a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "observation", rename_all = "snake_case")]
pub enum Observation {
    /// `pg_class.reltuples` changed: an estimate from VACUUM/ANALYZE.
    EstimatedRows(Delta),
    /// `pg_total_relation_size` changed.
    TotalBytes(Delta),
    /// `pg_relation_size` changed.
    TableBytes(Delta),
    /// A column's statistics summary changed (ANALYZE samples).
    ColumnStats {
        /// The column.
        column: String,
        /// Whether these are the `inherited` statistics.
        inherited: bool,
        /// The old summary (null: none).
        from: Option<ColumnStats>,
        /// The new summary (null: none).
        to: Option<ColumnStats>,
    },
    /// The `pg_stat` counters moved between the snapshots: non-transactional hints.
    Counters {
        /// Change of `tuples_inserted`.
        inserted: i64,
        /// Change of `tuples_updated`.
        updated: i64,
        /// Change of `tuples_deleted`.
        deleted: i64,
        /// Change of `live_tuples`.
        live_tuples: i64,
        /// Change of `dead_tuples`.
        dead_tuples: i64,
        /// A cumulative counter went down: statistics were reset (`pg_stat_reset()`, a crash) or
        /// the table was recreated (dbt `table` models are, on every run).
        reset: bool,
    },
    /// Only one snapshot counted the rows exactly.
    ExactCountIn {
        /// `from` or `to`.
        side: &'static str,
        /// The count it has.
        count: u64,
    },
    /// The content hashes were not compared.
    ContentHashNotCompared {
        /// Why.
        reason: String,
    },
}

fn side(s: &Snapshot) -> Side {
    Side {
        database: s.anchor.database.clone(),
        system_identifier: s.anchor.system_identifier.clone(),
        timeline: s.anchor.timeline,
        lsn: s.anchor.lsn.clone(),
        clock_timestamp: s.anchor.clock_timestamp.clone(),
        state_digest: s.state_digest.clone(),
        tables: s.tables.len(),
    }
}

/// Compares two snapshots.
pub fn diff(from: &Snapshot, to: &Snapshot) -> Diff {
    let mut notes = Vec::new();
    let (a, b) = (&from.anchor, &to.anchor);
    if a.system_identifier != b.system_identifier {
        notes.push(format!(
            "the snapshots come from different clusters (system identifiers {} and {})",
            a.system_identifier, b.system_identifier
        ));
    } else if a.timeline != b.timeline {
        notes.push(format!(
            "the cluster changed timeline between the snapshots ({} to {}): a failover or a restore happened",
            a.timeline, b.timeline
        ));
    } else if let (Some(x), Some(y)) = (a.lsn_position(), b.lsn_position()) {
        if y < x {
            notes.push(format!(
                "the second snapshot is older than the first (LSN {} before {})",
                b.lsn, a.lsn
            ));
        }
    }
    if a.database != b.database {
        notes.push(format!(
            "the snapshots are of different databases (`{}` and `{}`)",
            a.database, b.database
        ));
    }
    if from.scope.schemas != to.scope.schemas
        || from.scope.exclude_schemas != to.scope.exclude_schemas
    {
        notes.push(
            "the snapshots cover different schemas: a table added or dropped may only have entered or left the scope"
                .to_string(),
        );
    }
    if from.scope.sizes != to.scope.sizes {
        notes.push(
            "sizes were measured differently (exact in one snapshot, estimated in the other): size observations compare different things"
                .to_string(),
        );
    }
    if from.scope.column_stats != to.scope.column_stats {
        notes.push("only one snapshot read column statistics".to_string());
    }
    let pinned = |s: &Snapshot| -> Vec<(String, Option<String>)> {
        PINNED_SETTINGS
            .iter()
            .map(|(n, _)| (n.to_string(), s.settings.get(*n).cloned()))
            .collect()
    };
    let hash_reason = if pinned(from) != pinned(to) {
        Some("the pinned text-output settings differ between the snapshots".to_string())
    } else if a.server_version_num / 10000 != b.server_version_num / 10000 {
        Some(format!(
            "the server's major version differs ({} and {}): text output of some types may differ",
            a.server_version_num / 10000,
            b.server_version_num / 10000
        ))
    } else {
        None
    };

    let keys: BTreeSet<&String> = from.tables.keys().chain(to.tables.keys()).collect();
    let mut tables = Vec::new();
    let mut summary = Summary::default();
    for key in keys {
        let td = match (from.tables.get(key), to.tables.get(key)) {
            (Some(t), None) => {
                summary.tables_dropped += 1;
                TableDiff {
                    table: key.clone(),
                    status: Status::Dropped,
                    changes: vec![Change::TableDropped {
                        kind: t.kind,
                        columns: t.columns.len(),
                        fingerprint: t.fingerprint.clone(),
                    }],
                    hints: Vec::new(),
                    observations: Vec::new(),
                }
            }
            (None, Some(t)) => {
                summary.tables_added += 1;
                TableDiff {
                    table: key.clone(),
                    status: Status::Added,
                    changes: vec![Change::TableAdded {
                        kind: t.kind,
                        columns: t.columns.len(),
                        fingerprint: t.fingerprint.clone(),
                    }],
                    hints: Vec::new(),
                    observations: Vec::new(),
                }
            }
            (Some(x), Some(y)) => {
                let td = table_diff(key, x, y, hash_reason.as_deref());
                if td.changes.is_empty() {
                    summary.tables_unchanged += 1;
                } else {
                    summary.tables_changed += 1;
                }
                td
            }
            (None, None) => continue,
        };
        summary.changes += td.changes.len();
        summary.observations += td.observations.len();
        if !td.changes.is_empty() || !td.observations.is_empty() || !td.hints.is_empty() {
            tables.push(td);
        }
    }
    Diff {
        format: FORMAT,
        from: side(from),
        to: side(to),
        changed: summary.changes > 0,
        summary,
        notes,
        tables,
    }
}

fn table_diff(key: &str, x: &Table, y: &Table, hash_reason: Option<&str>) -> TableDiff {
    let mut changes = Vec::new();
    let mut hints = Vec::new();
    let mut observations = Vec::new();
    if x.kind != y.kind {
        changes.push(Change::KindChanged {
            from: x.kind,
            to: y.kind,
        });
    }
    columns_diff(&x.columns, &y.columns, &mut changes, &mut hints);
    if x.fingerprint != y.fingerprint {
        changes.push(Change::FingerprintChanged {
            from: x.fingerprint.clone(),
            to: y.fingerprint.clone(),
        });
    }
    match (x.exact_count, y.exact_count) {
        (Some(a), Some(b)) if a != b => changes.push(Change::ExactCountChanged {
            from: a,
            to: b,
            delta: sub(b, a),
        }),
        (Some(a), None) => observations.push(Observation::ExactCountIn {
            side: "from",
            count: a,
        }),
        (None, Some(b)) => observations.push(Observation::ExactCountIn {
            side: "to",
            count: b,
        }),
        _ => {}
    }
    match (&x.content_hash, &y.content_hash, hash_reason) {
        (Some(a), Some(b), None) if a.value != b.value => {
            changes.push(Change::ContentHashChanged {
                from: a.value.clone(),
                to: b.value.clone(),
            })
        }
        (Some(a), Some(b), Some(reason)) if a.value != b.value => {
            observations.push(Observation::ContentHashNotCompared {
                reason: reason.to_string(),
            })
        }
        (Some(_), None, _) | (None, Some(_), _) => {
            observations.push(Observation::ContentHashNotCompared {
                reason: "only one snapshot has a content hash".to_string(),
            })
        }
        _ => {}
    }

    let (ex, ey) = (&x.estimates, &y.estimates);
    if ex.rows != ey.rows {
        observations.push(Observation::EstimatedRows(Delta::of(ex.rows, ey.rows)));
    }
    if ex.total_bytes != ey.total_bytes {
        observations.push(Observation::TotalBytes(Delta::of(
            ex.total_bytes,
            ey.total_bytes,
        )));
    }
    if ex.table_bytes != ey.table_bytes {
        observations.push(Observation::TableBytes(Delta::of(
            ex.table_bytes,
            ey.table_bytes,
        )));
    }
    for (inherited, a, b) in [
        (false, &ex.column_stats, &ey.column_stats),
        (true, &ex.inherited_column_stats, &ey.inherited_column_stats),
    ] {
        // In the column order of the second snapshot, then columns only the first has.
        let mut order: Vec<&String> = Vec::new();
        let mut seen = BTreeSet::new();
        for c in y
            .columns
            .iter()
            .map(|c| &c.name)
            .chain(x.columns.iter().map(|c| &c.name))
        {
            if seen.insert(c) {
                order.push(c);
            }
        }
        for name in a.keys().chain(b.keys()) {
            if seen.insert(name) {
                order.push(name);
            }
        }
        for name in order {
            let (s, t) = (a.get(name), b.get(name));
            if s != t {
                observations.push(Observation::ColumnStats {
                    column: name.clone(),
                    inherited,
                    from: s.cloned(),
                    to: t.cloned(),
                });
            }
        }
    }
    if let (Some(a), Some(b)) = (&x.hints, &y.hints) {
        if a != b {
            observations.push(Observation::Counters {
                inserted: isub(b.tuples_inserted, a.tuples_inserted),
                updated: isub(b.tuples_updated, a.tuples_updated),
                deleted: isub(b.tuples_deleted, a.tuples_deleted),
                live_tuples: isub(b.live_tuples, a.live_tuples),
                dead_tuples: isub(b.dead_tuples, a.dead_tuples),
                reset: b.tuples_inserted < a.tuples_inserted
                    || b.tuples_updated < a.tuples_updated
                    || b.tuples_deleted < a.tuples_deleted,
            });
        }
    }
    TableDiff {
        table: key.to_string(),
        status: if !changes.is_empty() {
            Status::Changed
        } else {
            Status::Observed
        },
        changes,
        hints,
        observations,
    }
}

fn columns_diff(x: &[Column], y: &[Column], changes: &mut Vec<Change>, hints: &mut Vec<Hint>) {
    let xm: BTreeMap<&str, &Column> = x.iter().map(|c| (c.name.as_str(), c)).collect();
    let ym: BTreeMap<&str, &Column> = y.iter().map(|c| (c.name.as_str(), c)).collect();
    let dropped: Vec<&Column> = x
        .iter()
        .filter(|c| !ym.contains_key(c.name.as_str()))
        .collect();
    let added: Vec<&Column> = y
        .iter()
        .filter(|c| !xm.contains_key(c.name.as_str()))
        .collect();
    for c in &dropped {
        changes.push(Change::ColumnDropped {
            column: c.name.clone(),
            type_: c.type_.clone(),
            nullable: c.nullable,
            ordinal: c.ordinal,
        });
    }
    for c in &added {
        changes.push(Change::ColumnAdded {
            column: c.name.clone(),
            type_: c.type_.clone(),
            nullable: c.nullable,
            ordinal: c.ordinal,
        });
    }
    for d in &dropped {
        if let Some(a) = added.iter().find(|a| a.ordinal == d.ordinal) {
            hints.push(Hint::PossibleRename {
                from: d.name.clone(),
                to: a.name.clone(),
                ordinal: d.ordinal,
                same_type: d.type_ == a.type_,
            });
        }
    }
    // Columns both have, in the second snapshot's order.
    let common_y: Vec<&Column> = y
        .iter()
        .filter(|c| xm.contains_key(c.name.as_str()))
        .collect();
    for c in &common_y {
        if let Some(old) = xm.get(c.name.as_str()) {
            if old.type_ != c.type_ {
                changes.push(Change::ColumnRetyped {
                    column: c.name.clone(),
                    from: old.type_.clone(),
                    to: c.type_.clone(),
                });
            }
        }
    }
    for c in &common_y {
        if let Some(old) = xm.get(c.name.as_str()) {
            if old.nullable != c.nullable {
                changes.push(Change::NullabilityChanged {
                    column: c.name.clone(),
                    from: old.nullable,
                    to: c.nullable,
                });
            }
        }
    }
    let common_x: Vec<&str> = x
        .iter()
        .filter(|c| ym.contains_key(c.name.as_str()))
        .map(|c| c.name.as_str())
        .collect();
    let common_y_names: Vec<&str> = common_y.iter().map(|c| c.name.as_str()).collect();
    let stay = lcs(&common_x, &common_y_names);
    for c in &common_y {
        if !stay.contains(c.name.as_str()) {
            if let Some(old) = xm.get(c.name.as_str()) {
                changes.push(Change::ColumnMoved {
                    column: c.name.clone(),
                    from: old.ordinal,
                    to: c.ordinal,
                });
            }
        }
    }
}

/// The names on one longest common subsequence of `a` and `b` (both permutations of one set):
/// the columns that kept their relative order. Ties are broken the same way every time.
fn lcs<'a>(a: &[&'a str], b: &[&'a str]) -> BTreeSet<&'a str> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return BTreeSet::new();
    }
    let w = m + 1;
    let mut t = vec![0u32; (n + 1) * w];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i * w + j] = if a[i] == b[j] {
                t[(i + 1) * w + j + 1] + 1
            } else {
                t[(i + 1) * w + j].max(t[i * w + j + 1])
            };
        }
    }
    let mut out = BTreeSet::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            out.insert(a[i]);
            i += 1;
            j += 1;
        } else if t[(i + 1) * w + j] > t[i * w + j + 1] {
            // On a tie, skip in the new order: a column pulled forward is the one reported as
            // moved, not every column it jumped over.
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, ordinal: u32) -> Column {
        Column {
            name: name.into(),
            type_: ty.into(),
            nullable: true,
            ordinal,
        }
    }

    fn cols(spec: &[(&str, &str)]) -> Vec<Column> {
        spec.iter()
            .enumerate()
            .map(|(i, (n, t))| col(n, t, i as u32 + 1))
            .collect()
    }

    #[test]
    fn a_drop_shifting_positions_is_not_a_move() {
        let x = cols(&[("a", "int"), ("b", "int"), ("c", "int")]);
        let y = cols(&[("a", "int"), ("c", "int")]);
        let (mut ch, mut h) = (Vec::new(), Vec::new());
        columns_diff(&x, &y, &mut ch, &mut h);
        assert_eq!(
            ch,
            vec![Change::ColumnDropped {
                column: "b".into(),
                type_: "int".into(),
                nullable: true,
                ordinal: 2
            }]
        );
        assert!(h.is_empty());
    }

    #[test]
    fn moves_renames_and_retypes() {
        let x = cols(&[("a", "int"), ("b", "text"), ("c", "int"), ("d", "int")]);
        let y = cols(&[("c", "bigint"), ("x", "text"), ("a", "int"), ("d", "int")]);
        let (mut ch, mut h) = (Vec::new(), Vec::new());
        columns_diff(&x, &y, &mut ch, &mut h);
        let kinds: Vec<String> = ch
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or_default()["change"].to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "\"column_dropped\"",
                "\"column_added\"",
                "\"column_retyped\"",
                "\"column_moved\""
            ]
        );
        assert!(ch.contains(&Change::ColumnMoved {
            column: "c".into(),
            from: 3,
            to: 1
        }));
        assert_eq!(
            h,
            vec![Hint::PossibleRename {
                from: "b".into(),
                to: "x".into(),
                ordinal: 2,
                same_type: true
            }]
        );
    }

    #[test]
    fn lcs_keeps_the_longest_ordered_run() {
        let s = lcs(&["a", "b", "c", "d"], &["d", "a", "b", "c"]);
        assert_eq!(s, ["a", "b", "c"].into_iter().collect());
        assert!(lcs(&[], &[]).is_empty());
    }

    #[test]
    fn deltas_saturate() {
        assert_eq!(sub(0, u64::MAX), i64::MIN);
        assert_eq!(sub(u64::MAX, 0), i64::MAX);
        assert_eq!(sub(5, 7), -2);
    }
}
