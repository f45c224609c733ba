//! Snapshot files are untrusted input to `clyra diff`: every malformed one is refused with the
//! JSON pointer of what is wrong, and nothing (arbitrary JSON, mutated snapshots) makes reading
//! or diffing panic. No database needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use clyra_warehouse::anchor::{LsnSource, Platform};
use clyra_warehouse::diff;
use clyra_warehouse::snapshot::{
    self, Column, ContentHash, Estimates, Hints, RelKind, Scope, Sizes, Snapshot, Table,
};
use clyra_warehouse::{LoadError, PgAnchor};
use proptest::prelude::*;
use serde_json::Value;

fn anchor() -> PgAnchor {
    PgAnchor {
        platform: Platform::Postgres,
        system_identifier: "7312345678901234567".into(),
        timeline: 1,
        lsn: "0/1947120".into(),
        lsn_source: LsnSource::PgCurrentWalLsn,
        in_recovery: false,
        snapshot: "1040:1040:".into(),
        server_version_num: 150020,
        server_version: "PostgreSQL 15.20".into(),
        database: "test".into(),
        clock_timestamp: "2026-11-23T03:04:05.123456Z".into(),
        statement_timestamp: "2026-11-23T03:04:05.123000Z".into(),
    }
}

fn table(schema: &str, name: &str, cols: &[(&str, &str, bool)]) -> Table {
    let columns: Vec<Column> = cols
        .iter()
        .enumerate()
        .map(|(i, (n, t, nullable))| Column {
            name: n.to_string(),
            type_: t.to_string(),
            nullable: *nullable,
            ordinal: i as u32 + 1,
        })
        .collect();
    Table {
        schema: schema.into(),
        name: name.into(),
        kind: RelKind::Table,
        fingerprint: snapshot::fingerprint(&columns),
        columns,
        exact_count: Some(3),
        content_hash: Some(ContentHash {
            method: snapshot::CONTENT_HASH_METHOD.into(),
            value: "-1234567890123456789012".into(),
        }),
        estimates: Estimates {
            rows: Some(3),
            total_bytes: Some(16384),
            table_bytes: Some(8192),
            ..Default::default()
        },
        hints: Some(Hints::default()),
    }
}

fn snap(tables: Vec<Table>) -> Snapshot {
    let mut s = Snapshot {
        format: snapshot::FORMAT.into(),
        anchor: anchor(),
        scope: Scope {
            schemas: vec!["public".into()],
            exclude_schemas: vec![],
            exact_counts: vec!["public.orders".into()],
            content_hashes: vec!["public.orders".into()],
            sizes: Sizes::Exact,
            column_stats: true,
        },
        settings: snapshot::PINNED_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        notes: BTreeMap::new(),
        state_digest: String::new(),
        tables: tables
            .into_iter()
            .map(|t| (snapshot::table_key(&t.schema, &t.name), t))
            .collect(),
    };
    s.state_digest = s.compute_state_digest().unwrap();
    s
}

fn sample() -> Snapshot {
    snap(vec![
        table(
            "public",
            "orders",
            &[("id", "integer", false), ("amount", "numeric(12,2)", true)],
        ),
        table("a/b~c", "x", &[("k", "text", true)]),
    ])
}

fn sample_value() -> Value {
    serde_json::from_slice(&sample().to_canonical_json().unwrap()).unwrap()
}

fn load(v: &Value) -> Result<Snapshot, LoadError> {
    Snapshot::from_json(&serde_json::to_vec(v).unwrap())
}

fn pointer_of(v: &Value) -> String {
    let e = load(v).unwrap_err();
    e.pointer().unwrap_or("<none>").to_string()
}

/// The fuzz target's seed is a real snapshot, accepted, and passes the target's invariants.
#[test]
fn the_fuzz_seed_is_a_valid_snapshot() {
    let seed = include_bytes!("../../../fuzz/seeds/warehouse_snapshot/small.json");
    let s = Snapshot::from_json(seed).unwrap();
    assert_eq!(s.tables.len(), 3);
    clyra_warehouse::fuzz_hooks::snapshot(seed);
    clyra_warehouse::fuzz_hooks::snapshot(&sample().to_canonical_json().unwrap());
}

#[test]
fn the_sample_round_trips() {
    let s = sample();
    let bytes = s.to_canonical_json().unwrap();
    assert_eq!(Snapshot::from_json(&bytes).unwrap(), s);
}

#[test]
fn errors_name_the_json_pointer() {
    // Not JSON at all.
    let e = Snapshot::from_json(b"{\"format\": ").unwrap_err();
    assert!(matches!(e, LoadError::Json(_)), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
    // Duplicate keys are refused, not resolved.
    let e = Snapshot::from_json(br#"{"format": "a", "format": "b"}"#).unwrap_err();
    assert!(e.to_string().contains("duplicate key `format`"), "{e}");
    // JSON, but not a snapshot.
    let e = Snapshot::from_json(b"[1, 2]").unwrap_err();
    assert!(
        e.to_string().starts_with("not a Clyra warehouse snapshot"),
        "{e}"
    );
    let e = Snapshot::from_json(br#"{"tables": {}}"#).unwrap_err();
    assert!(e.to_string().contains("no `format` member"), "{e}");
    // Another version.
    let mut v = sample_value();
    v["format"] = "clyra.warehouse.snapshot/v9".into();
    let e = load(&v).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported snapshot format `clyra.warehouse.snapshot/v9` at JSON pointer `/format`; this build reads `clyra.warehouse.snapshot/v1`"
    );
    // A wrong type deep inside.
    let mut v = sample_value();
    v["tables"]["public.orders"]["columns"][1]["nullable"] = "yes".into();
    assert_eq!(pointer_of(&v), "/tables/public.orders/columns/1/nullable");
    // Pointer escaping of `/` and `~` in keys.
    let mut v = sample_value();
    v["tables"]["a/b~c.x"]["kind"] = "index".into();
    assert_eq!(pointer_of(&v), "/tables/a~1b~0c.x/kind");
    // An unknown member.
    let mut v = sample_value();
    v["tables"]["public.orders"]["estimates"]["most_common_vals"] = Value::Array(vec![]);
    let e = load(&v).unwrap_err();
    assert!(
        e.to_string().contains("unknown field `most_common_vals`"),
        "{e}"
    );
    assert!(
        e.pointer()
            .unwrap()
            .starts_with("/tables/public.orders/estimates"),
        "{e}"
    );
    // A missing member.
    let mut v = sample_value();
    v.as_object_mut().unwrap().remove("anchor");
    let e = load(&v).unwrap_err();
    assert!(e.to_string().contains("missing field `anchor`"), "{e}");
}

#[test]
fn inconsistent_snapshots_are_refused() {
    // A column edited without its fingerprint.
    let mut v = sample_value();
    v["tables"]["public.orders"]["columns"][0]["type"] = "bigint".into();
    assert_eq!(pointer_of(&v), "/tables/public.orders/fingerprint");
    // A fingerprint edited.
    let mut v = sample_value();
    v["tables"]["public.orders"]["fingerprint"] = "00".repeat(32).into();
    assert_eq!(pointer_of(&v), "/tables/public.orders/fingerprint");
    // An exact count edited without the state digest.
    let mut v = sample_value();
    v["tables"]["public.orders"]["exact_count"] = 4.into();
    assert_eq!(pointer_of(&v), "/state_digest");
    // Ordinals out of order.
    let mut v = sample_value();
    v["tables"]["public.orders"]["columns"][1]["ordinal"] = 7.into();
    assert_eq!(pointer_of(&v), "/tables/public.orders/columns/1/ordinal");
    // A key that does not name its table.
    let mut v = sample_value();
    let t = v["tables"]["public.orders"].take();
    v["tables"].as_object_mut().unwrap().remove("public.orders");
    v["tables"]["public.other"] = t;
    assert_eq!(pointer_of(&v), "/tables/public.other");
    // Not an LSN.
    let mut v = sample_value();
    v["anchor"]["lsn"] = "yesterday".into();
    assert_eq!(pointer_of(&v), "/anchor/lsn");
    // A content hash that is not a number.
    let mut v = sample_value();
    v["tables"]["public.orders"]["content_hash"]["value"] = "12ab".into();
    assert_eq!(pointer_of(&v), "/tables/public.orders/content_hash/value");
    // Numbers out of range.
    let mut v = sample_value();
    v["tables"]["public.orders"]["exact_count"] = (-1).into();
    assert_eq!(pointer_of(&v), "/tables/public.orders/exact_count");
}

#[test]
fn diff_is_identical_over_100_runs() {
    let a = sample();
    let mut t = table(
        "public",
        "orders",
        &[
            ("amount", "numeric(14,2)", false),
            ("id", "bigint", false),
            ("note", "text", true),
        ],
    );
    t.exact_count = Some(9);
    let b = snap(vec![t, table("public", "added", &[("k", "text", true)])]);
    let first = serde_json::to_vec(&diff::diff(&a, &b)).unwrap();
    for _ in 0..100 {
        assert_eq!(serde_json::to_vec(&diff::diff(&a, &b)).unwrap(), first);
    }
    let d = diff::diff(&a, &b);
    assert_eq!(d.summary.tables_added, 1);
    assert_eq!(d.summary.tables_dropped, 1);
    assert_eq!(d.summary.tables_changed, 1);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-1_000_000i64..1_000_000).prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z0-9_./~\"]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer to a value inside `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json(), with_format in any::<bool>()) {
        let mut v = v;
        if with_format {
            if let Value::Object(m) = &mut v {
                m.insert("format".into(), snapshot::FORMAT.into());
            }
        }
        let _ = load(&v);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Snapshot::from_json(&bytes);
    }

    /// Replace any one value of a valid snapshot by arbitrary JSON: reading refuses it or
    /// accepts it, never panics, and whatever is accepted diffs deterministically.
    #[test]
    fn mutated_snapshots_never_panic(choice in any::<prop::sample::Index>(), replacement in arb_json()) {
        let base = sample_value();
        let mut all = Vec::new();
        pointers(&base, String::new(), &mut all);
        let at = &all[choice.index(all.len())];
        let mut v = base.clone();
        if at.is_empty() {
            v = replacement;
        } else if let Some(slot) = v.pointer_mut(at) {
            *slot = replacement;
        }
        clyra_warehouse::fuzz_hooks::snapshot(&serde_json::to_vec(&v).unwrap());
        if let Ok(s) = load(&v) {
            let a = serde_json::to_vec(&diff::diff(&sample(), &s)).unwrap();
            let b = serde_json::to_vec(&diff::diff(&sample(), &s)).unwrap();
            prop_assert_eq!(a, b);
            let _ = diff::diff(&s, &s);
        }
    }

    /// Random column lists: a snapshot diffed with itself shows nothing; against another, every
    /// column is accounted for, and swapping the sides mirrors the counts.
    #[test]
    fn random_schemas_diff_consistently(
        xs in prop::collection::btree_set("[a-e]", 0..5),
        ys in prop::collection::btree_set("[a-e]", 0..5),
        shuffle in any::<u64>(),
        types_a in prop::collection::vec(prop::sample::select(vec!["integer", "bigint", "text"]), 5),
        types_b in prop::collection::vec(prop::sample::select(vec!["integer", "bigint", "text"]), 5),
    ) {
        let mk = |names: &std::collections::BTreeSet<String>, types: &[&str], rot: usize| -> Snapshot {
            let mut cols: Vec<(String, String)> = names
                .iter()
                .map(|n| (n.clone(), types[(n.as_bytes()[0] - b'a') as usize].to_string()))
                .collect();
            if !cols.is_empty() {
                let k = rot % cols.len();
                cols.rotate_left(k);
            }
            let spec: Vec<(&str, &str, bool)> = cols.iter().map(|(n, t)| (n.as_str(), t.as_str(), true)).collect();
            snap(vec![table("s", "t", &spec)])
        };
        let a = mk(&xs, &types_a, 0);
        let b = mk(&ys, &types_b, (shuffle % 7) as usize);
        prop_assert!(!diff::diff(&a, &a).changed);
        let d = diff::diff(&a, &b);
        let back = diff::diff(&b, &a);
        prop_assert_eq!(d.changed, back.changed);
        prop_assert_eq!(d.summary.changes, back.summary.changes);
        let count = |d: &diff::Diff, tag: &str| d.tables.iter().flat_map(|t| &t.changes)
            .filter(|c| serde_json::to_value(c).unwrap()["change"] == tag).count();
        prop_assert_eq!(count(&d, "column_added"), ys.difference(&xs).count());
        prop_assert_eq!(count(&d, "column_dropped"), xs.difference(&ys).count());
        prop_assert_eq!(count(&d, "column_added"), count(&back, "column_dropped"));
        prop_assert_eq!(count(&d, "column_moved"), count(&back, "column_moved"));
        prop_assert_eq!(d.changed, a.tables["s.t"].fingerprint != b.tables["s.t"].fingerprint);
    }
}
