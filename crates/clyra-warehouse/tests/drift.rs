//! Schema drift on the local Postgres, seen through two snapshots and their diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use clyra_warehouse::diff::{self, Change, Hint, Observation, Status};
use clyra_warehouse::snapshot::{self, Options, RelKind};
use support::{client, Schemas};

#[test]
fn schema_drift_is_reported_change_by_change() {
    let s = Schemas::one("wd_drift");
    let n = s.name();
    let mut c = client();
    c.batch_execute(&format!(
        "CREATE TABLE {n}.customers (id int NOT NULL, name text, phone text, email text, score int);
         CREATE TABLE {n}.orders (id int, amount int);
         INSERT INTO {n}.orders SELECT g, g * 10 FROM generate_series(1, 50) g;
         CREATE TABLE {n}.old_table (x int);
         CREATE TABLE {n}.renamed (a int, b text, c int);
         CREATE TABLE {n}.stable (id int, v text);
         INSERT INTO {n}.stable VALUES (1, 'a');
         CREATE VIEW {n}.model_v AS SELECT 1 AS id;"
    ))
    .unwrap();
    let o = Options {
        schemas: s.names.clone(),
        exact_counts: vec![format!("{n}.orders"), format!("{n}.stable")],
        content_hashes: vec![format!("{n}.orders"), format!("{n}.stable")],
        ..Default::default()
    };
    let before = snapshot::take(&mut c, &o).unwrap();
    c.batch_execute(&format!(
        "ALTER TABLE {n}.customers ADD COLUMN tier text;
         ALTER TABLE {n}.customers DROP COLUMN phone;
         ALTER TABLE {n}.customers ALTER COLUMN score TYPE bigint;
         ALTER TABLE {n}.customers ALTER COLUMN name SET NOT NULL;
         -- dbt's table materialization: build beside, drop, rename (new oid every run)
         CREATE TABLE {n}.orders__tmp (amount int, id int);
         INSERT INTO {n}.orders__tmp SELECT amount, id FROM {n}.orders;
         DROP TABLE {n}.orders; ALTER TABLE {n}.orders__tmp RENAME TO orders;
         CREATE TABLE {n}.stable__tmp (id int, v text);
         INSERT INTO {n}.stable__tmp VALUES (1, 'a');
         DROP TABLE {n}.stable; ALTER TABLE {n}.stable__tmp RENAME TO stable;
         DROP TABLE {n}.old_table;
         CREATE TABLE {n}.new_table (k bigint NOT NULL, payload jsonb);
         ALTER TABLE {n}.renamed RENAME COLUMN b TO bee;
         DROP VIEW {n}.model_v; CREATE TABLE {n}.model_v AS SELECT 1 AS id;"
    ))
    .unwrap();
    let after = snapshot::take(&mut c, &o).unwrap();
    let d = diff::diff(&before, &after);
    assert!(d.changed);
    let get = |t: &str| {
        d.tables
            .iter()
            .find(|x| x.table == format!("{n}.{t}"))
            .unwrap_or_else(|| panic!("{t} not in diff"))
    };

    let cu = get("customers");
    assert_eq!(cu.status, Status::Changed);
    assert_eq!(
        cu.changes[..4],
        [
            Change::ColumnDropped {
                column: "phone".into(),
                type_: "text".into(),
                nullable: true,
                ordinal: 3
            },
            Change::ColumnAdded {
                column: "tier".into(),
                type_: "text".into(),
                nullable: true,
                ordinal: 5
            },
            Change::ColumnRetyped {
                column: "score".into(),
                from: "integer".into(),
                to: "bigint".into()
            },
            Change::NullabilityChanged {
                column: "name".into(),
                from: true,
                to: false
            },
        ]
    );
    assert!(matches!(cu.changes[4], Change::FingerprintChanged { .. }));
    assert_eq!(cu.changes.len(), 5);
    assert!(
        cu.hints.is_empty(),
        "phone was at 3, tier is at 5: not a rename"
    );

    let or = get("orders");
    assert_eq!(
        or.changes[0],
        Change::ColumnMoved {
            column: "amount".into(),
            from: 2,
            to: 1
        }
    );
    assert!(matches!(or.changes[1], Change::FingerprintChanged { .. }));
    // Reordered columns print differently, so the row hashes differ; the count does not.
    assert!(matches!(or.changes[2], Change::ContentHashChanged { .. }));
    assert_eq!(or.changes.len(), 3, "{:?}", or.changes);
    // Counters are observations, never changes.
    assert!(or
        .observations
        .iter()
        .all(|o| !matches!(o, Observation::ContentHashNotCompared { .. })));

    // Recreated with the same definition and rows: a new oid, but no change.
    if let Some(st) = d.tables.iter().find(|x| x.table == format!("{n}.stable")) {
        assert!(st.changes.is_empty(), "{:?}", st.changes);
        assert_eq!(st.status, Status::Observed);
    }

    let old = get("old_table");
    assert_eq!(old.status, Status::Dropped);
    assert!(matches!(
        old.changes[..],
        [Change::TableDropped {
            kind: RelKind::Table,
            columns: 1,
            ..
        }]
    ));
    let new = get("new_table");
    assert_eq!(new.status, Status::Added);
    assert!(matches!(
        new.changes[..],
        [Change::TableAdded {
            kind: RelKind::Table,
            columns: 2,
            ..
        }]
    ));

    let rn = get("renamed");
    assert_eq!(
        rn.hints,
        vec![Hint::PossibleRename {
            from: "b".into(),
            to: "bee".into(),
            ordinal: 2,
            same_type: true
        }]
    );
    assert_eq!(rn.changes.len(), 3, "dropped b, added bee, fingerprint");

    let mv = get("model_v");
    assert_eq!(
        mv.changes[0],
        Change::KindChanged {
            from: RelKind::View,
            to: RelKind::Table
        }
    );
    assert_eq!(mv.changes.len(), 1, "same columns: same fingerprint");

    assert_eq!(d.summary.tables_added, 1);
    assert_eq!(d.summary.tables_dropped, 1);
    assert_eq!(d.summary.tables_changed, 4);
    assert_eq!(
        d.summary.changes,
        d.tables.iter().map(|t| t.changes.len()).sum::<usize>()
    );
    // Swapped: the mirror image.
    let back = diff::diff(&after, &before);
    assert_eq!(back.summary.tables_added, 1);
    assert_eq!(back.summary.tables_dropped, 1);
    assert_eq!(back.summary.changes, d.summary.changes);
}
