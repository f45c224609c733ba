//! Postgres anchors against the local server: every field, its format, its relation to the
//! server's own view, and that taking one never assigns a transaction id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use clyra_evidence::jcs;
use clyra_warehouse::anchor::{self, LsnSource, Platform};
use clyra_warehouse::{pg, Error, PgAnchor};
use support::{client, pg_url, Schemas};

fn is_utc_rfc3339_micros(s: &str) -> bool {
    // 2026-11-23T03:04:05.123456Z
    let b = s.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn every_field_is_present_and_agrees_with_the_server() {
    let mut c = client();
    let a = anchor::take(&mut c).unwrap();
    let row = c
        .query_one(
            "SELECT (pg_control_system()).system_identifier::text,
                    (pg_control_checkpoint()).timeline_id,
                    current_setting('server_version_num')::int,
                    version(), current_database()::text",
            &[],
        )
        .unwrap();
    assert_eq!(a.platform, Platform::Postgres);
    assert_eq!(a.system_identifier, row.get::<_, String>(0));
    assert!(
        a.system_identifier.parse::<i64>().is_ok(),
        "{}",
        a.system_identifier
    );
    // On a primary the anchor reads the insertion timeline; the last checkpoint's agrees unless
    // a promotion happened since.
    assert_eq!(i64::from(a.timeline), i64::from(row.get::<_, i32>(1)));
    assert!(a.timeline >= 1);
    assert!(!a.in_recovery);
    assert_eq!(a.lsn_source, LsnSource::PgCurrentWalLsn);
    assert!(pg::parse_lsn(&a.lsn).is_some(), "LSN `{}`", a.lsn);
    assert!(
        a.lsn.chars().all(|c| c == '/' || c.is_ascii_hexdigit())
            && !a.lsn.chars().any(|c| c.is_ascii_lowercase()),
        "LSN `{}` as Postgres prints it",
        a.lsn
    );
    let parts: Vec<&str> = a.snapshot.split(':').collect();
    assert_eq!(parts.len(), 3, "snapshot `{}`", a.snapshot);
    let xmin: u64 = parts[0].parse().unwrap();
    let xmax: u64 = parts[1].parse().unwrap();
    assert!(xmin <= xmax);
    assert!(parts[2]
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|x| x.parse::<u64>().is_ok()));
    assert_eq!(a.server_version_num, row.get::<_, i32>(2) as u32);
    assert!(a.server_version_num >= 130000);
    assert_eq!(a.server_version, row.get::<_, String>(3));
    assert_eq!(a.database, row.get::<_, String>(4));
    assert!(
        is_utc_rfc3339_micros(&a.clock_timestamp),
        "{}",
        a.clock_timestamp
    );
    assert!(
        is_utc_rfc3339_micros(&a.statement_timestamp),
        "{}",
        a.statement_timestamp
    );
    assert!(a.statement_timestamp <= a.clock_timestamp);
}

#[test]
fn canonical_json_round_trips() {
    let a = anchor::take(&mut client()).unwrap();
    let bytes = a.to_canonical_json().unwrap();
    assert!(jcs::is_canonical(&bytes).unwrap());
    let back: PgAnchor = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, a);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("{\"clock_timestamp\":"), "{text}");
    assert!(text.contains("\"platform\":\"postgres\""));
    assert!(text.contains("\"lsn_source\":\"pg_current_wal_lsn\""));
    // An unknown member is refused, not ignored.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["extra"] = 1.into();
    assert!(serde_json::from_value::<PgAnchor>(v).is_err());
}

#[test]
fn lsn_and_clock_move_forward_after_a_write() {
    let s = Schemas::one("wa_lsn");
    let mut c = client();
    let a1 = anchor::take(&mut c).unwrap();
    c.batch_execute(&format!(
        "CREATE TABLE {0}.t (id int); INSERT INTO {0}.t SELECT generate_series(1, 100)",
        s.name()
    ))
    .unwrap();
    let a2 = anchor::take(&mut c).unwrap();
    assert!(
        a2.lsn_position().unwrap() > a1.lsn_position().unwrap(),
        "{} then {}",
        a1.lsn,
        a2.lsn
    );
    assert!(a2.clock_timestamp > a1.clock_timestamp);
    assert_eq!(a1.system_identifier, a2.system_identifier);
}

/// The sound check: `pg_current_xact_id_if_assigned()` is NULL exactly while the transaction
/// has no transaction id. (Comparing the cluster's next XID from another connection would be
/// flaky: other sessions on the shared server assign XIDs all the time.)
#[test]
fn taking_an_anchor_assigns_no_transaction_id() {
    let mut c = client();
    for _ in 0..20 {
        let mut tx = c
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()
            .unwrap();
        anchor::take_in(&mut tx).unwrap();
        anchor::take_in(&mut tx).unwrap();
        let xid: Option<String> = tx
            .query_one("SELECT pg_current_xact_id_if_assigned()::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(xid, None, "the anchor assigned a transaction id");
        tx.commit().unwrap();
    }
    // Autocommit path too.
    for _ in 0..20 {
        anchor::take(&mut c).unwrap();
    }
}

/// The control: the check does see a burnt XID, which is why the anchor must never call
/// `pg_current_xact_id()` (it assigns one even in a READ ONLY transaction).
#[test]
fn the_check_catches_pg_current_xact_id() {
    let mut c = client();
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .unwrap();
    anchor::take_in(&mut tx).unwrap();
    let burnt: String = tx
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .unwrap()
        .get(0);
    match anchor::ensure_no_xid(&mut tx) {
        Err(Error::XidAssigned { xid }) => assert_eq!(xid, burnt),
        other => panic!("expected XidAssigned, got {other:?}"),
    }
    match anchor::take_in(&mut tx) {
        Err(e @ Error::XidAssigned { .. }) => {
            assert!(e.to_string().contains("must not write"), "{e}")
        }
        other => panic!("expected XidAssigned, got {other:?}"),
    }
}

/// An ordinary role with no grants can take an anchor: every function it calls is executable by
/// PUBLIC on a default installation.
#[test]
fn an_unprivileged_role_can_take_an_anchor() {
    let role = support::unique("wa_role");
    let mut admin = client();
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .unwrap();
    struct DropRole(String);
    impl Drop for DropRole {
        fn drop(&mut self) {
            if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.0));
            }
        }
    }
    let _guard = DropRole(role.clone());
    let mut config = pg::config(&pg_url()).unwrap();
    config.user(&role);
    let mut c = pg::connect_with(&config, &pg_url()).unwrap();
    let a = anchor::take(&mut c).unwrap();
    assert!(a.lsn_position().is_some());
    drop(c);
}

#[test]
fn connection_errors_name_the_server_without_the_password() {
    let Err(e) = pg::connect("postgres://ann:hunter2@127.0.0.1:1/test?connect_timeout=2") else {
        panic!("connected to port 1");
    };
    let m = e.to_string();
    assert!(
        m.starts_with("cannot connect to Postgres at `postgres://ann:***@127.0.0.1:1/test"),
        "{m}"
    );
    assert!(!m.contains("hunter2"), "{m}");
}

#[test]
fn def_anchors_carry_the_tuple() {
    let a = anchor::take(&mut client()).unwrap();
    let d = a.def_anchors();
    let kinds: Vec<(&str, &str)> = d
        .iter()
        .map(|x| (x.kind.as_str(), x.value.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("wal_lsn", a.lsn.as_str()),
            ("system_identifier", a.system_identifier.as_str()),
            ("timeline", a.timeline.to_string().as_str()),
            ("snapshot", a.snapshot.as_str())
        ]
    );
    for x in &d {
        assert_eq!(x.platform, "postgres");
        assert_eq!(x.seq, None);
        let at = x.at.unwrap();
        // Read back in the same form as the anchor's clock (to the microsecond).
        assert_eq!(
            at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            a.clock_timestamp
        );
    }
    let json = serde_json::to_value(&d[0]).unwrap();
    assert_eq!(json["kind"], "wal_lsn");
    assert!(json.get("seq").is_none());
}
