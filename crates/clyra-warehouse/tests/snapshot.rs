//! Snapshots against the local Postgres: contents, scope, kinds, opt-in counts and hashes,
//! determinism, quoting, and that no row value ever reaches the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;

use clyra_evidence::jcs;
use clyra_warehouse::snapshot::{self, Options, RelKind, Snapshot};
use clyra_warehouse::{anchor, diff, Error};
use serde_json::Value;
use support::{client, create_tables, options, Schemas};

fn take(c: &mut postgres::Client, o: &Options) -> Snapshot {
    snapshot::take(c, o).unwrap()
}

#[test]
fn snapshot_of_100_tables() {
    let s = Schemas::one("ws_100");
    let mut c = client();
    create_tables(&mut c, s.name(), 100);
    let snap = take(&mut c, &options(&s.names));
    assert_eq!(snap.tables.len(), 100);
    assert_eq!(snap.format, snapshot::FORMAT);
    let keys: Vec<&String> = snap.tables.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(snap.tables.contains_key(&format!("{}.t100", s.name())));
    let fp = snapshot::fingerprint(&snap.tables.values().next().unwrap().columns);
    for (key, t) in &snap.tables {
        assert_eq!(key, &format!("{}.{}", t.schema, t.name));
        assert_eq!(t.kind, RelKind::Table);
        let cols: Vec<(&str, &str, bool, u32)> = t
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.type_.as_str(), c.nullable, c.ordinal))
            .collect();
        assert_eq!(
            cols,
            [
                ("id", "integer", false, 1),
                ("name", "character varying(20)", true, 2),
                ("amount", "integer", true, 3)
            ]
        );
        assert_eq!(t.fingerprint, fp, "same columns, same fingerprint");
        // Never vacuumed or analyzed: reltuples is -1, recorded as unknown.
        assert_eq!(t.estimates.rows, None, "{key}");
        assert!(t.estimates.total_bytes.is_some());
        assert!(t.hints.is_some());
        assert_eq!(t.exact_count, None);
        assert_eq!(t.content_hash, None);
    }
    let bytes = snap.to_canonical_json().unwrap();
    assert!(jcs::is_canonical(&bytes).unwrap());
    assert_eq!(Snapshot::from_json(&bytes).unwrap(), snap);
}

#[test]
fn snapshot_of_1000_tables() {
    let s = Schemas::one("ws_1000");
    let mut c = client();
    create_tables(&mut c, s.name(), 1000);
    let t0 = std::time::Instant::now();
    let snap = take(&mut c, &options(&s.names));
    let took = t0.elapsed();
    assert_eq!(snap.tables.len(), 1000);
    eprintln!("1,000-table snapshot in {took:?} (debug build)");
    let bytes = snap.to_canonical_json().unwrap();
    let back = Snapshot::from_json(&bytes).unwrap();
    assert_eq!(back.to_canonical_json().unwrap(), bytes);
    let d = diff::diff(&snap, &back);
    assert!(!d.changed);
    assert!(d.tables.is_empty());
}

#[test]
fn kinds_sizes_and_dense_ordinals() {
    let s = Schemas::one("ws_kinds");
    let n = s.name();
    let mut c = client();
    c.batch_execute(&format!(
        "CREATE TABLE {n}.base (id int PRIMARY KEY, gone text, note text NOT NULL);
         ALTER TABLE {n}.base DROP COLUMN gone;
         INSERT INTO {n}.base SELECT g, 'n' || g FROM generate_series(1, 500) g;
         CREATE VIEW {n}.v AS SELECT id FROM {n}.base;
         CREATE MATERIALIZED VIEW {n}.mv AS SELECT id, note FROM {n}.base;
         CREATE TABLE {n}.p (day date NOT NULL, amount numeric(12,2)) PARTITION BY RANGE (day);
         CREATE TABLE {n}.p_2026 PARTITION OF {n}.p FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         INSERT INTO {n}.p VALUES ('2026-03-01', 1.5), ('2026-04-01', NULL);
         ANALYZE {n}.base; ANALYZE {n}.p; ANALYZE {n}.mv;"
    ))
    .unwrap();
    let snap = take(&mut c, &options(&s.names));
    let t = |name: &str| &snap.tables[&format!("{n}.{name}")];
    assert_eq!(t("base").kind, RelKind::Table);
    assert_eq!(t("v").kind, RelKind::View);
    assert_eq!(t("mv").kind, RelKind::MaterializedView);
    assert_eq!(t("p").kind, RelKind::PartitionedTable);
    assert_eq!(t("p_2026").kind, RelKind::Table);
    // The dropped column leaves no gap.
    let base = t("base");
    assert_eq!(
        base.columns
            .iter()
            .map(|c| (c.name.as_str(), c.ordinal, c.nullable))
            .collect::<Vec<_>>(),
        [("id", 1, false), ("note", 2, false)]
    );
    assert_eq!(base.estimates.rows, Some(500));
    assert!(base.estimates.total_bytes.unwrap() > base.estimates.table_bytes.unwrap());
    let id = &base.estimates.column_stats["id"];
    assert_eq!((id.null_frac, id.n_distinct, id.avg_width), (0.0, -1.0, 4));
    assert!(base.hints.as_ref().unwrap().tuples_inserted >= 0);
    // Views: no storage, no estimate, no counters.
    assert_eq!(t("v").estimates.rows, None);
    assert_eq!(t("v").estimates.total_bytes, None);
    assert_eq!(t("v").hints, None);
    // Partitioned parent: statistics are the inherited kind.
    let p = t("p");
    assert!(p.estimates.column_stats.is_empty());
    assert_eq!(p.estimates.inherited_column_stats["amount"].null_frac, 0.5);
    assert_eq!(p.columns[1].type_, "numeric(12,2)");
}

#[test]
fn scope_schemas_and_exclusions() {
    let s = Schemas::new("ws_scope", 3);
    let mut c = client();
    for name in &s.names {
        create_tables(&mut c, name, 2);
    }
    let snap = take(
        &mut c,
        &Options {
            schemas: s.names.clone(),
            exclude_schemas: vec![s.names[1].clone()],
            ..Default::default()
        },
    );
    let schemas: std::collections::BTreeSet<&str> =
        snap.tables.values().map(|t| t.schema.as_str()).collect();
    assert_eq!(
        schemas,
        [s.names[0].as_str(), s.names[2].as_str()]
            .into_iter()
            .collect()
    );
    assert_eq!(snap.tables.len(), 4);
    let mut sorted = s.names.clone();
    sorted.sort();
    assert_eq!(snap.scope.schemas, sorted);
    assert_eq!(snap.scope.exclude_schemas, vec![s.names[1].clone()]);

    // The whole database: never system schemas, and the excluded one stays out.
    let all = take(
        &mut c,
        &Options {
            exclude_schemas: vec![s.names[1].clone()],
            ..Default::default()
        },
    );
    assert!(all.tables.values().all(|t| t.schema != "pg_catalog"
        && t.schema != "information_schema"
        && !t.schema.starts_with("pg_toast")
        && t.schema != s.names[1]));
    assert!(all.tables.contains_key(&format!("{}.t1", s.names[0])));
}

#[test]
fn exact_counts_and_content_hashes_are_opt_in() {
    let s = Schemas::one("ws_hash");
    let n = s.name();
    let mut c = client();
    c.batch_execute(&format!(
        "CREATE TABLE {n}.a (id int, at timestamptz, f float8, i interval, b bytea, d date);
         INSERT INTO {n}.a SELECT g, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 hour',
                                 g / 3.0, g * interval '90 minutes', decode(md5(g::text), 'hex'),
                                 date '2026-01-01' + g
           FROM generate_series(1, 1000) g;
         CREATE TABLE {n}.b (LIKE {n}.a);
         INSERT INTO {n}.b SELECT * FROM {n}.a ORDER BY id DESC;
         CREATE TABLE {n}.other (x int);"
    ))
    .unwrap();
    let o = Options {
        schemas: s.names.clone(),
        exact_counts: vec![format!("{n}.oth*")],
        content_hashes: vec![format!("{n}.?")],
        ..Default::default()
    };
    let s1 = take(&mut c, &o);
    let (a, b, other) = (
        &s1.tables[&format!("{n}.a")],
        &s1.tables[&format!("{n}.b")],
        &s1.tables[&format!("{n}.other")],
    );
    assert_eq!(other.exact_count, Some(0));
    assert_eq!(other.content_hash, None);
    assert_eq!(a.exact_count, Some(1000), "hashing counts too");
    let ha = a.content_hash.clone().unwrap();
    assert_eq!(ha.method, snapshot::CONTENT_HASH_METHOD);
    // Same rows, inserted in the opposite order: the same hash (order independent).
    assert_eq!(b.content_hash.as_ref().unwrap().value, ha.value);
    // Physical rewrites do not change it.
    c.batch_execute(&format!("DELETE FROM {n}.a WHERE id <= 10"))
        .unwrap();
    c.batch_execute(&format!(
        "INSERT INTO {n}.a SELECT * FROM {n}.b WHERE id <= 10 ORDER BY id DESC"
    ))
    .unwrap();
    c.batch_execute(&format!("VACUUM FULL {n}.a")).unwrap();
    let s2 = take(&mut c, &o);
    assert_eq!(
        s2.tables[&format!("{n}.a")]
            .content_hash
            .as_ref()
            .unwrap()
            .value,
        ha.value
    );
    // Session settings that change text output are pinned: a session in Tokyo with German dates
    // and fewer float digits computes the same hash.
    c.batch_execute(
        "SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'German, DMY'; SET extra_float_digits = 0;
         SET IntervalStyle = 'postgres_verbose'; SET bytea_output = 'escape'",
    )
    .unwrap();
    let s3 = take(&mut c, &o);
    assert_eq!(
        s3.tables[&format!("{n}.a")]
            .content_hash
            .as_ref()
            .unwrap()
            .value,
        ha.value
    );
    let expected: BTreeMap<String, String> = [
        ("DateStyle", "ISO, YMD"),
        ("IntervalStyle", "iso_8601"),
        ("TimeZone", "UTC"),
        ("bytea_output", "hex"),
        ("extra_float_digits", "1"),
        ("server_encoding", "UTF8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(s3.settings, expected);
    // The session's own settings are left as they were.
    let tz: String = c.query_one("SHOW TimeZone", &[]).unwrap().get(0);
    assert_eq!(tz, "Asia/Tokyo");
    // One changed value changes the hash; the count stays.
    c.batch_execute(&format!("UPDATE {n}.a SET f = f + 1e-9 WHERE id = 500"))
        .unwrap();
    let s4 = take(&mut c, &o);
    let a4 = &s4.tables[&format!("{n}.a")];
    assert_ne!(a4.content_hash.as_ref().unwrap().value, ha.value);
    assert_eq!(a4.exact_count, Some(1000));
    let d = diff::diff(&s1, &s4);
    assert!(d.changed);
    let a_diff = d
        .tables
        .iter()
        .find(|t| t.table == format!("{n}.a"))
        .unwrap();
    assert_eq!(a_diff.changes.len(), 1, "{:?}", a_diff.changes);
    assert!(matches!(
        a_diff.changes[0],
        diff::Change::ContentHashChanged { .. }
    ));
    // An insert changes the exact count.
    c.batch_execute(&format!("INSERT INTO {n}.other VALUES (1), (2)"))
        .unwrap();
    let s5 = take(&mut c, &o);
    let d = diff::diff(&s4, &s5);
    let o_diff = d
        .tables
        .iter()
        .find(|t| t.table == format!("{n}.other"))
        .unwrap();
    assert_eq!(
        o_diff.changes,
        vec![diff::Change::ExactCountChanged {
            from: 0,
            to: 2,
            delta: 2
        }]
    );
}

#[test]
fn a_glob_that_matches_nothing_is_an_error() {
    let s = Schemas::one("ws_glob");
    let mut c = client();
    create_tables(&mut c, s.name(), 2);
    let e = snapshot::take(
        &mut c,
        &Options {
            schemas: s.names.clone(),
            content_hashes: vec![format!("{}.nope*", s.name())],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::GlobMatchesNothing { in_scope: 2, .. }),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(
        m.contains(&format!(
            "--content-hash glob `{}.nope*` matches no table in scope (2 tables in schemas {})",
            s.name(),
            s.name()
        )),
        "{m}"
    );
    // The failed snapshot left the connection usable.
    take(&mut c, &options(&s.names));
}

#[test]
fn odd_identifiers_are_quoted() {
    let s = Schemas::one("ws_quote");
    let n = s.name();
    let weird_schema = format!("{n}.Odd \"s\"");
    let _cleanup = Schemas {
        names: vec![format!("\"{}\"", weird_schema.replace('"', "\"\""))],
    };
    let mut c = client();
    c.batch_execute(&format!(
        "CREATE SCHEMA \"{ws}\";
         CREATE TABLE \"{ws}\".\"Tab; DROP TABLE x\" (\"Col\" int, \"clyra_row\" text, \"a.b\" int);
         INSERT INTO \"{ws}\".\"Tab; DROP TABLE x\" VALUES (1, 'x', 2);",
        ws = weird_schema.replace('"', "\"\"")
    ))
    .unwrap();
    // Parts holding `.` or `"` are quoted in keys; others are written as they are.
    let key = format!(
        "\"{}\".Tab; DROP TABLE x",
        weird_schema.replace('"', "\"\"")
    );
    let snap = take(
        &mut c,
        &Options {
            schemas: vec![weird_schema.clone()],
            content_hashes: vec!["*".into()],
            ..Default::default()
        },
    );
    let t = snap
        .tables
        .get(&key)
        .unwrap_or_else(|| panic!("{key} in {:?}", snap.tables.keys()));
    assert_eq!(t.schema, weird_schema);
    assert_eq!(t.exact_count, Some(1));
    assert!(t.content_hash.is_some());
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Col", "clyra_row", "a.b"]);
    let back = Snapshot::from_json(&snap.to_canonical_json().unwrap()).unwrap();
    assert_eq!(back, snap);
}

/// Two snapshots of an unchanged database differ only in the anchor and the counters, carry the
/// same state digest, and diff to no change.
#[test]
fn determinism() {
    let s = Schemas::new("ws_det", 2);
    let mut c = client();
    for name in &s.names {
        create_tables(&mut c, name, 20);
        c.batch_execute(&format!(
            "INSERT INTO {name}.t1 SELECT g, 'x', g FROM generate_series(1, 100) g; ANALYZE {name}.t1;
             CREATE VIEW {name}.v AS SELECT * FROM {name}.t1"
        ))
        .unwrap();
    }
    let o = Options {
        schemas: s.names.clone(),
        exact_counts: vec!["*.t1?".into()],
        content_hashes: vec!["*.t1".into()],
        ..Default::default()
    };
    let a = take(&mut c, &o);
    let b = take(&mut support::client(), &o);
    assert_eq!(a.state_digest, b.state_digest);
    let strip = |s: &Snapshot| -> Value {
        let mut v: Value = serde_json::from_slice(&s.to_canonical_json().unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("anchor");
        for t in v["tables"].as_object_mut().unwrap().values_mut() {
            t.as_object_mut().unwrap().remove("hints");
        }
        v
    };
    assert_eq!(strip(&a), strip(&b));
    assert_ne!(a.anchor.clock_timestamp, b.anchor.clock_timestamp);
    let d = diff::diff(&a, &b);
    assert!(!d.changed, "{d:?}");
    assert_eq!(d.summary.changes, 0);
    assert!(d.notes.is_empty(), "{:?}", d.notes);
    for t in &d.tables {
        for o in &t.observations {
            assert!(matches!(o, diff::Observation::Counters { .. }), "{o:?}");
        }
    }
    // The same snapshot always serializes to the same bytes.
    assert_eq!(
        a.to_canonical_json().unwrap(),
        a.clone().to_canonical_json().unwrap()
    );
}

/// The important one: a value that is in `pg_stats.most_common_vals` never reaches the file.
#[test]
fn no_row_values_in_the_snapshot() {
    const SENTINEL: &str = "CLYRA-SENTINEL-7f3a9c-do-not-leak";
    let s = Schemas::one("ws_leak");
    let n = s.name();
    let mut c = client();
    c.batch_execute(&format!(
        "CREATE TABLE {n}.secrets (id int, secret text, n int);
         INSERT INTO {n}.secrets SELECT g, CASE WHEN g % 2 = 0 THEN '{SENTINEL}' ELSE 'x' || g END, 424242
           FROM generate_series(1, 2000) g;
         ANALYZE {n}.secrets;
         CREATE MATERIALIZED VIEW {n}.mv AS SELECT * FROM {n}.secrets; ANALYZE {n}.mv;"
    ))
    .unwrap();
    // Precondition: the statistics do hold the values, so a snapshot that read them would leak.
    let mcv: String = c
        .query_one(
            &format!(
                "SELECT string_agg(most_common_vals::text, ' ') FROM pg_stats WHERE schemaname = '{n}'"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(mcv.contains(SENTINEL) && mcv.contains("424242"), "{mcv}");
    let snap = take(
        &mut c,
        &Options {
            schemas: s.names.clone(),
            exact_counts: vec!["*".into()],
            content_hashes: vec!["*".into()],
            ..Default::default()
        },
    );
    let text = String::from_utf8(snap.to_canonical_json().unwrap()).unwrap();
    assert!(
        !text.contains("SENTINEL"),
        "a row value leaked into the snapshot"
    );
    assert!(
        !text.contains("424242"),
        "a row value leaked into the snapshot"
    );
    assert!(!text.contains("do-not-leak"));
    // The statistics that are there are summaries.
    let st = &snap.tables[&format!("{n}.secrets")].estimates.column_stats["secret"];
    assert_eq!(st.null_frac, 0.0);
    assert!(st.n_distinct < 0.0 || st.n_distinct > 1.0);
}

#[test]
fn a_snapshot_assigns_no_transaction_id() {
    let s = Schemas::one("ws_xid");
    let mut c = client();
    create_tables(&mut c, s.name(), 5);
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .unwrap();
    let snap = snapshot::take_in(
        &mut tx,
        &Options {
            schemas: s.names.clone(),
            exact_counts: vec!["*".into()],
            content_hashes: vec!["*.t1".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(snap.tables.len(), 5);
    anchor::ensure_no_xid(&mut tx).unwrap();
    // The anchor's MVCC snapshot is the transaction's.
    let now: String = tx
        .query_one("SELECT pg_current_snapshot()::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(now, snap.anchor.snapshot);
    tx.commit().unwrap();
}

#[test]
fn a_locked_table_times_out_instead_of_hanging() {
    let s = Schemas::one("ws_lock");
    let mut c = client();
    create_tables(&mut c, s.name(), 1);
    let mut locker = client();
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE {}.t1 IN ACCESS EXCLUSIVE MODE",
        s.name()
    ))
    .unwrap();
    let t0 = std::time::Instant::now();
    let e = snapshot::take(
        &mut c,
        &Options {
            schemas: s.names.clone(),
            lock_timeout_ms: 300,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    let m = e.to_string();
    assert!(
        m.contains("lock timeout") && m.contains("SQLSTATE 55P03"),
        "{m}"
    );
    tx.rollback().unwrap();
}

/// A session prepares its queries once and gives the same snapshots as `take`, across option
/// changes and past the point where Postgres may switch a prepared statement to a generic plan.
#[test]
fn a_session_gives_the_same_snapshots() {
    let s = Schemas::new("ws_sess", 2);
    let mut c = client();
    for name in &s.names {
        create_tables(&mut c, name, 3);
    }
    let strip = |snap: &Snapshot| {
        let mut v: Value = serde_json::from_slice(&snap.to_canonical_json().unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("anchor");
        for t in v["tables"].as_object_mut().unwrap().values_mut() {
            t.as_object_mut().unwrap().remove("hints");
        }
        v
    };
    let mut session = snapshot::Session::new(client());
    for i in 0..8 {
        let o = if i % 2 == 0 {
            options(&s.names)
        } else {
            options(&s.names[1..])
        };
        let a = session.take(&o).unwrap();
        let b = take(&mut c, &o);
        assert_eq!(a.tables.len(), if i % 2 == 0 { 6 } else { 3 });
        assert_eq!(strip(&a), strip(&b));
    }
    // The connection stays usable for other queries.
    let one: i32 = session.client().query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
}

/// Estimated sizes and no column statistics: nothing opens or locks a user table, so a snapshot
/// goes through while DDL holds an ACCESS EXCLUSIVE lock.
#[test]
fn estimated_sizes_without_column_stats_take_no_table_lock() {
    let s = Schemas::one("ws_est");
    let n = s.name();
    let mut c = client();
    c.batch_execute(&format!(
        "CREATE TABLE {n}.a (id int PRIMARY KEY, t text);
         INSERT INTO {n}.a SELECT g, repeat('x', 50) FROM generate_series(1, 5000) g;
         ANALYZE {n}.a;
         CREATE TABLE {n}.fresh AS SELECT g AS id FROM generate_series(1, 1000) g;"
    ))
    .unwrap();
    let lean = Options {
        schemas: s.names.clone(),
        sizes: snapshot::Sizes::Estimated,
        column_stats: false,
        lock_timeout_ms: 200,
        ..Default::default()
    };
    let exact = take(&mut c, &options(&s.names));
    let est = take(&mut c, &lean);
    let (ea, xa) = (
        &est.tables[&format!("{n}.a")],
        &exact.tables[&format!("{n}.a")],
    );
    // Analyzed: relpages is the main fork's size.
    assert_eq!(ea.estimates.table_bytes, xa.estimates.table_bytes);
    let (et, xt) = (
        ea.estimates.total_bytes.unwrap(),
        xa.estimates.total_bytes.unwrap(),
    );
    assert!(
        et > ea.estimates.table_bytes.unwrap(),
        "indexes counted: {et}"
    );
    assert!(et <= xt, "estimated {et} > exact {xt}");
    assert!(ea.estimates.column_stats.is_empty());
    assert!(!xa.estimates.column_stats.is_empty());
    // Never analyzed: the estimate knows nothing yet.
    assert_eq!(
        est.tables[&format!("{n}.fresh")].estimates.table_bytes,
        Some(0)
    );
    assert!(
        exact.tables[&format!("{n}.fresh")]
            .estimates
            .table_bytes
            .unwrap()
            > 0
    );
    assert_eq!(est.scope.sizes, snapshot::Sizes::Estimated);
    assert!(!est.scope.column_stats);
    // Different scopes: the diff says so, and still finds no change.
    let d = diff::diff(&exact, &est);
    assert!(!d.changed);
    assert!(
        d.notes
            .iter()
            .any(|x| x.contains("sizes were measured differently")),
        "{:?}",
        d.notes
    );
    // Lock-free: DDL holding ACCESS EXCLUSIVE does not stop the lean snapshot...
    let mut locker = client();
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute(&format!("LOCK TABLE {n}.a IN ACCESS EXCLUSIVE MODE"))
        .unwrap();
    let during = snapshot::take(&mut c, &lean).unwrap();
    assert_eq!(during.tables.len(), 2);
    // ...while exact sizes wait for it (and time out here).
    let e = snapshot::take(
        &mut c,
        &Options {
            lock_timeout_ms: 200,
            ..options(&s.names)
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("55P03"), "{e}");
    tx.rollback().unwrap();
}

/// Real snapshots validate against the published schema, which refuses what Clyra never writes.
#[test]
fn snapshots_match_the_published_schema() {
    let schema: Value = serde_json::from_str(include_str!(
        "../../../spec/def/warehouse-snapshot.schema.json"
    ))
    .unwrap();
    assert!(jsonschema::meta::is_valid(&schema));
    let validator = jsonschema::draft202012::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&schema)
        .unwrap();
    let s = Schemas::one("ws_schema");
    let n = s.name();
    let mut c = client();
    c.batch_execute(&format!(
        "CREATE TABLE {n}.t (id int PRIMARY KEY, v text);
         INSERT INTO {n}.t SELECT g, 'v' || g FROM generate_series(1, 100) g;
         CREATE TABLE {n}.p (d date NOT NULL, x int) PARTITION BY RANGE (d);
         CREATE TABLE {n}.p1 PARTITION OF {n}.p FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         INSERT INTO {n}.p VALUES ('2026-05-01', 1);
         CREATE VIEW {n}.v AS SELECT id FROM {n}.t;
         CREATE MATERIALIZED VIEW {n}.m AS SELECT * FROM {n}.t;
         CREATE TABLE {n}.empty ();
         ANALYZE {n}.t; ANALYZE {n}.p;"
    ))
    .unwrap();
    for o in [
        Options {
            schemas: s.names.clone(),
            exact_counts: vec!["*.p*".into()],
            content_hashes: vec!["*.t".into(), "*.v".into()],
            ..Default::default()
        },
        Options {
            schemas: s.names.clone(),
            sizes: snapshot::Sizes::Estimated,
            column_stats: false,
            ..Default::default()
        },
    ] {
        let snap = take(&mut c, &o);
        let v: Value = serde_json::from_slice(&snap.to_canonical_json().unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(snap.tables[&format!("{n}.empty")].columns.len(), 0);
        let mut bad = v.clone();
        bad["tables"][format!("{n}.t")]["kind"] = "index".into();
        assert!(!validator.is_valid(&bad));
        let mut bad = v.clone();
        bad["tables"][format!("{n}.t")]["estimates"]["most_common_vals"] = Value::Array(vec![]);
        assert!(!validator.is_valid(&bad));
    }
}
