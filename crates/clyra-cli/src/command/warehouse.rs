//! `clyra snapshot take`, `clyra diff` and `clyra warehouse anchor`.
//!
//! Wiring only: anchors, snapshots and diffs live in `clyra_warehouse`. This module reads and
//! writes files, formats results for people, and maps "something changed" to exit 2 when asked.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clyra_warehouse::diff::{Change, Delta, Diff, Hint, Observation, Status};
use clyra_warehouse::snapshot::{self, RelKind, Snapshot};
use clyra_warehouse::{anchor, pg, PgAnchor};
use serde::Serialize;

use crate::command::{display_name, read_input, write_new_file};
use crate::output::{Exit, Output};

/// `clyra snapshot ...`.
#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Take a metadata-only snapshot of a Postgres database (canonical JSON; no row values).
    #[command(
        after_help = "Reads, in one REPEATABLE READ READ ONLY transaction: an anchor \
(cluster, timeline, WAL LSN, MVCC snapshot, server time), then every table, partitioned table, \
view and materialized view in scope with its columns, schema fingerprint, row and size estimates, \
pg_stats summaries (null_frac, n_distinct, avg_width; never most_common_vals or histograms) and \
the pg_stat counters. Exact counts (count(*)) and content hashes (sum of hashtextextended over \
rows::text, order independent, not collision resistant) are opt-in per table glob (`schema.table`, \
`*` and `?`); a glob that matches nothing is an error. With --estimated-sizes and \
--no-column-stats (and no counts or hashes) no user table is opened or locked, so the snapshot \
never waits behind DDL. The file is RFC 8785 canonical JSON: the \
same state gives the same bytes apart from the anchor and the counters. Without a password in \
--dsn, PGPASSWORD is used. Docs: docs/warehouses.md.\n\n\
Examples:\n  clyra snapshot take --dsn postgres://postgres@127.0.0.1:5432/test --schemas analytics \
--out before.json\n  clyra snapshot take --dsn 'host=db user=ci dbname=prod' --schemas analytics,staging \\\n    \
--exact-counts 'analytics.fct_*' --content-hash analytics.dim_customers --out after.json"
    )]
    Take(TakeArgs),
}

/// `clyra snapshot take`.
#[derive(Debug, clap::Args)]
pub struct TakeArgs {
    /// Connection string: postgres://USER[:PASSWORD]@HOST:PORT/DB or libpq `key=value` pairs.
    #[arg(long)]
    pub dsn: String,
    /// Only these schemas (comma-separated or repeated; default: all but the system schemas).
    #[arg(long, value_delimiter = ',')]
    pub schemas: Vec<String>,
    /// Leave these schemas out (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub exclude_schemas: Vec<String>,
    /// Count these tables exactly with count(*) (globs on `schema.table`).
    #[arg(long, value_name = "TABLE_GLOB", num_args = 1.., value_delimiter = ',')]
    pub exact_counts: Vec<String>,
    /// Content-hash (and count) these tables (globs on `schema.table`). Reads every row.
    #[arg(long = "content-hash", value_name = "TABLE_GLOB", num_args = 1.., value_delimiter = ',')]
    pub content_hashes: Vec<String>,
    /// Sizes from pg_class.relpages as of the last VACUUM/ANALYZE instead of the files on disk:
    /// no table is opened or locked (0 for tables never vacuumed or analyzed).
    #[arg(long)]
    pub estimated_sizes: bool,
    /// Do not read pg_stats summaries (the costliest query on a new connection).
    #[arg(long)]
    pub no_column_stats: bool,
    /// Give up on a table locked by DDL after this long (0: wait forever).
    #[arg(long, default_value_t = 10_000)]
    pub lock_timeout_ms: u64,
    /// Where to write the snapshot (refuses to overwrite); `-` writes it to stdout alone.
    #[arg(long)]
    pub out: PathBuf,
}

/// `clyra diff`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Compares two snapshots from `clyra snapshot take`, keyed by \
`schema.table` (never by oid: dbt recreates tables). Changes: tables added or dropped, kind \
changed, columns added, dropped, retyped, made (not) nullable or moved, fingerprints, exact \
counts, content hashes; a column dropped and another added at the same position is flagged as a \
possible rename. Observations (estimated rows, sizes, column statistics, pg_stat counters) are \
shown but are not proof and never count as changes. Output order is fixed: the same two files \
always give the same bytes. Each file is checked first (strict JSON, format version, fingerprints \
and state digest); errors name the file and the JSON pointer (exit 1).\n\n\
Exit codes: 0 compared (changed or not), 1 error, 2 changed and --fail-on-change given.\n\n\
Examples:\n  clyra diff before.json after.json\n  clyra diff before.json after.json --format json \
--fail-on-change"
)]
pub struct DiffArgs {
    /// The earlier snapshot (`-` for stdin).
    pub from: PathBuf,
    /// The later snapshot (`-` for stdin).
    pub to: PathBuf,
    /// Exit 2 when anything changed (observations do not count): for CI gates.
    #[arg(long)]
    pub fail_on_change: bool,
}

/// `clyra warehouse ...`.
#[derive(Debug, clap::Subcommand)]
pub enum WarehouseCommand {
    /// Print a Postgres anchor: cluster, timeline, WAL LSN, MVCC snapshot, version, server time.
    #[command(
        after_help = "One read-only SELECT; no transaction id is assigned (checked with \
pg_current_xact_id_if_assigned), so the cluster's state is untouched. On a standby the LSN is \
pg_last_wal_replay_lsn(). With --format json the anchor is printed as it appears in snapshots.\n\n\
Example:\n  clyra warehouse anchor --dsn postgres://postgres@127.0.0.1:5432/test --format json"
    )]
    Anchor {
        /// Connection string: postgres://USER[:PASSWORD]@HOST:PORT/DB or libpq `key=value` pairs.
        #[arg(long)]
        dsn: String,
    },
}

pub(crate) fn connect(dsn: &str) -> anyhow::Result<pg::Client> {
    let mut config = pg::config(dsn)?;
    if config.get_password().is_none() {
        if let Ok(pw) = std::env::var("PGPASSWORD") {
            config.password(pw);
        }
    }
    Ok(pg::connect_with(&config, dsn)?)
}

fn kinds_line(s: &Snapshot) -> String {
    let parts: Vec<String> = s
        .kind_counts()
        .iter()
        .map(|(k, n)| {
            let name = k.as_str().replace('_', " ");
            format!("{n} {name}{}", if *n == 1 { "" } else { "s" })
        })
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

#[derive(Serialize)]
struct TakeReport<'a> {
    ok: bool,
    out: String,
    tables: usize,
    kinds: std::collections::BTreeMap<&'static str, usize>,
    exact_counts: usize,
    content_hashes: usize,
    state_digest: &'a str,
    anchor: &'a PgAnchor,
    bytes: usize,
    elapsed_ms: f64,
}

pub fn run_snapshot(cmd: SnapshotCommand, out: &Output) -> anyhow::Result<Exit> {
    let SnapshotCommand::Take(args) = cmd;
    let t0 = Instant::now();
    let mut client = connect(&args.dsn)?;
    let options = snapshot::Options {
        schemas: args.schemas,
        exclude_schemas: args.exclude_schemas,
        exact_counts: args.exact_counts,
        content_hashes: args.content_hashes,
        sizes: if args.estimated_sizes {
            snapshot::Sizes::Estimated
        } else {
            snapshot::Sizes::Exact
        },
        column_stats: !args.no_column_stats,
        lock_timeout_ms: args.lock_timeout_ms,
    };
    let snap = snapshot::take(&mut client, &options)?;
    let bytes = snap.to_canonical_json()?;
    let elapsed_ms = t0.elapsed().as_secs_f64() * 1000.0;
    if args.out.as_os_str() == "-" {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .context("cannot write the snapshot to stdout")?;
        return Ok(Exit::Ok);
    }
    write_new_file(&args.out, &bytes)?;
    let exact = snap
        .tables
        .values()
        .filter(|t| t.exact_count.is_some())
        .count();
    let hashed = snap
        .tables
        .values()
        .filter(|t| t.content_hash.is_some())
        .count();
    let report = TakeReport {
        ok: true,
        out: args.out.display().to_string(),
        tables: snap.tables.len(),
        kinds: snap
            .kind_counts()
            .into_iter()
            .map(|(k, n)| (k.as_str(), n))
            .collect(),
        exact_counts: exact,
        content_hashes: hashed,
        state_digest: &snap.state_digest,
        anchor: &snap.anchor,
        bytes: bytes.len(),
        elapsed_ms,
    };
    out.emit(&report, || {
        let a = &snap.anchor;
        let scope = if snap.scope.schemas.is_empty() {
            "all schemas".to_string()
        } else {
            format!("schemas {}", snap.scope.schemas.join(", "))
        };
        let mut s = format!(
            "snapshot {}: {} relations ({}) in {scope}\n",
            report.out,
            snap.tables.len(),
            kinds_line(&snap)
        );
        let _ = writeln!(
            s,
            "  anchor   {} @ {} (cluster {}, timeline {}), {}",
            a.database, a.lsn, a.system_identifier, a.timeline, a.clock_timestamp
        );
        let _ = writeln!(s, "  exact    {exact} counted, {hashed} content-hashed");
        let _ = writeln!(s, "  state    sha256 {}", snap.state_digest);
        let _ = writeln!(
            s,
            "  file     {} bytes, taken in {elapsed_ms:.1} ms",
            bytes.len()
        );
        s
    });
    Ok(Exit::Ok)
}

pub fn run_warehouse(cmd: WarehouseCommand, out: &Output) -> anyhow::Result<Exit> {
    let WarehouseCommand::Anchor { dsn } = cmd;
    let mut client = connect(&dsn)?;
    let a = anchor::take(&mut client)?;
    out.emit(&a, || {
        let mut s = String::new();
        let lines = [
            ("database", a.database.clone()),
            ("cluster", a.system_identifier.clone()),
            ("timeline", a.timeline.to_string()),
            (
                "lsn",
                format!(
                    "{} ({})",
                    a.lsn,
                    serde_json::to_value(a.lsn_source)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
            ),
            ("snapshot", a.snapshot.clone()),
            ("server", a.server_version.clone()),
            ("time", a.clock_timestamp.clone()),
        ];
        for (k, v) in lines {
            let _ = writeln!(s, "{k:<10}{v}");
        }
        s
    });
    Ok(Exit::Ok)
}

fn load(path: &std::path::Path) -> anyhow::Result<Snapshot> {
    let bytes = read_input(path)?;
    Snapshot::from_json(&bytes).with_context(|| format!("`{}`", display_name(path)))
}

#[derive(Serialize)]
struct DiffReport<'a> {
    from_file: String,
    to_file: String,
    #[serde(flatten)]
    diff: &'a Diff,
}

pub fn run_diff(args: DiffArgs, out: &Output) -> anyhow::Result<Exit> {
    if args.from.as_os_str() == "-" && args.to.as_os_str() == "-" {
        anyhow::bail!("only one of the two snapshots can come from stdin (`-`)");
    }
    let from = load(&args.from)?;
    let to = load(&args.to)?;
    let d = clyra_warehouse::diff::diff(&from, &to);
    let report = DiffReport {
        from_file: display_name(&args.from),
        to_file: display_name(&args.to),
        diff: &d,
    };
    out.emit(&report, || render(&report));
    Ok(if d.changed && args.fail_on_change {
        Exit::VerificationFailed
    } else {
        Exit::Ok
    })
}

fn nullability(nullable: bool) -> &'static str {
    if nullable {
        "null"
    } else {
        "not null"
    }
}

fn short(digest: &str) -> String {
    format!("{}…", digest.get(..12).unwrap_or(digest))
}

fn delta(d: &Delta) -> String {
    let v = |x: Option<u64>| x.map_or("unknown".to_string(), |n| n.to_string());
    match d.delta {
        Some(n) => format!("{} -> {} ({n:+})", v(d.from), v(d.to)),
        None => format!("{} -> {}", v(d.from), v(d.to)),
    }
}

fn kind(k: RelKind) -> String {
    k.as_str().replace('_', " ")
}

fn render(r: &DiffReport<'_>) -> String {
    let d = r.diff;
    let mut s = format!("diff {} -> {}\n", r.from_file, r.to_file);
    for (label, side) in [("from", &d.from), ("to", &d.to)] {
        let _ = writeln!(
            s,
            "  {label:<5}{} @ {} (cluster {}, timeline {}), {}, {} relations",
            side.database,
            side.lsn,
            side.system_identifier,
            side.timeline,
            side.clock_timestamp,
            side.tables
        );
    }
    for n in &d.notes {
        let _ = writeln!(s, "note: {n}");
    }
    if !d.tables.is_empty() {
        s.push('\n');
    }
    for t in &d.tables {
        match t.status {
            Status::Added | Status::Dropped => {
                for c in &t.changes {
                    let (sign, k, n) = match c {
                        Change::TableAdded { kind, columns, .. } => ("+", *kind, *columns),
                        Change::TableDropped { kind, columns, .. } => ("-", *kind, *columns),
                        _ => continue,
                    };
                    let what = if t.status == Status::Added {
                        "added"
                    } else {
                        "dropped"
                    };
                    let _ = writeln!(
                        s,
                        "{sign} {}  {what}: {}, {n} column{}",
                        t.table,
                        kind(k),
                        if n == 1 { "" } else { "s" }
                    );
                }
            }
            Status::Changed => {
                let _ = writeln!(s, "~ {}", t.table);
            }
            Status::Observed => {
                let _ = writeln!(s, "  {}  (observations only)", t.table);
            }
        }
        for c in &t.changes {
            let line = match c {
                Change::TableAdded { .. } | Change::TableDropped { .. } => continue,
                Change::KindChanged { from, to } => {
                    format!("~ kind: {} -> {}", kind(*from), kind(*to))
                }
                Change::ColumnDropped {
                    column,
                    type_,
                    nullable,
                    ordinal,
                } => format!(
                    "- column {column} {type_} {} (was at {ordinal})",
                    nullability(*nullable)
                ),
                Change::ColumnAdded {
                    column,
                    type_,
                    nullable,
                    ordinal,
                } => format!(
                    "+ column {column} {type_} {} at {ordinal}",
                    nullability(*nullable)
                ),
                Change::ColumnRetyped { column, from, to } => {
                    format!("~ column {column}: {from} -> {to}")
                }
                Change::NullabilityChanged { column, from, to } => format!(
                    "~ column {column}: {} -> {}",
                    nullability(*from),
                    nullability(*to)
                ),
                Change::ColumnMoved { column, from, to } => {
                    format!("~ column {column} moved: {from} -> {to}")
                }
                Change::FingerprintChanged { from, to } => {
                    format!("~ fingerprint {} -> {}", short(from), short(to))
                }
                Change::ExactCountChanged { from, to, delta } => {
                    format!("~ exact rows {from} -> {to} ({delta:+})")
                }
                Change::ContentHashChanged { .. } => "~ content hash changed".to_string(),
            };
            let _ = writeln!(s, "    {line}");
        }
        for h in &t.hints {
            let Hint::PossibleRename {
                from,
                to,
                ordinal,
                same_type,
            } = h;
            let _ = writeln!(
                s,
                "    hint: {from} dropped and {to} added at position {ordinal}{}: renamed?",
                if *same_type {
                    ", same type"
                } else {
                    ", different type"
                }
            );
        }
        for o in &t.observations {
            let line = match o {
                Observation::EstimatedRows(x) => format!("estimated rows {}", delta(x)),
                Observation::TotalBytes(x) => format!("total bytes {}", delta(x)),
                Observation::TableBytes(x) => format!("table bytes {}", delta(x)),
                Observation::ColumnStats {
                    column,
                    inherited,
                    from,
                    to,
                } => {
                    let st = |x: &Option<clyra_warehouse::snapshot::ColumnStats>| match x {
                        Some(x) => format!(
                            "null_frac {} n_distinct {} avg_width {}",
                            x.null_frac, x.n_distinct, x.avg_width
                        ),
                        None => "none".to_string(),
                    };
                    format!(
                        "column stats {column}{}: {} -> {}",
                        if *inherited { " (inherited)" } else { "" },
                        st(from),
                        st(to)
                    )
                }
                Observation::Counters {
                    inserted,
                    updated,
                    deleted,
                    live_tuples,
                    dead_tuples,
                    reset,
                } => format!(
                    "counters {inserted:+} inserted, {updated:+} updated, {deleted:+} deleted, \
{live_tuples:+} live, {dead_tuples:+} dead{}",
                    if *reset {
                        " (went down: statistics reset or table recreated)"
                    } else {
                        ""
                    }
                ),
                Observation::ExactCountIn { side, count } => {
                    format!("exact rows {count} in the `{side}` snapshot only")
                }
                Observation::ContentHashNotCompared { reason } => {
                    format!("content hash not compared: {reason}")
                }
            };
            let _ = writeln!(s, "    . {line}");
        }
    }
    let sm = &d.summary;
    s.push('\n');
    if d.changed {
        let _ = write!(
            s,
            "{} change{}: {} added, {} dropped, {} changed, {} unchanged",
            sm.changes,
            if sm.changes == 1 { "" } else { "s" },
            sm.tables_added,
            sm.tables_dropped,
            sm.tables_changed,
            sm.tables_unchanged
        );
    } else {
        let _ = write!(s, "no changes ({} relations compared)", sm.tables_unchanged);
    }
    if sm.observations > 0 {
        let _ = write!(
            s,
            "; {} observation{} (estimates and counters: not proof)",
            sm.observations,
            if sm.observations == 1 { "" } else { "s" }
        );
    }
    s.push('\n');
    s
}
