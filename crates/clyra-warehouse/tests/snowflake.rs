//! The Snowflake SQL API client, anchors and reconciliation against the local stand-in
//! (`tests/support/snowflake.rs`), which speaks the documented SQL API v2 subset and answers from
//! the fixtures in `tests/fixtures/snowflake/`. Never a live account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/snowflake.rs"]
mod standin;

use std::time::Duration;

use clyra_warehouse::snowflake::anchor::{self, Context};
use clyra_warehouse::snowflake::api::{Binding, Client, Options, Statement};
use clyra_warehouse::snowflake::reconcile::{self, QueryHistoryRecord};
use clyra_warehouse::snowflake::{
    AnchorSet, AnchorStatus, Credentials, KeyPair, OAuthToken, SnowflakeAnchor, SnowflakeError,
};
use standin::{Config, StandIn, TestKey};

fn options(url: &str) -> Options {
    Options {
        base_url: Some(url.to_string()),
        poll_initial: Duration::from_millis(5),
        poll_max: Duration::from_millis(20),
        poll_grace: Duration::ZERO,
        ..Default::default()
    }
}

fn keypair(key: &TestKey) -> Credentials {
    let dir = tempfile::tempdir().unwrap();
    let path = key.write_private(dir.path(), "rsa_key.p8");
    // The account as a locator with its region, the user in lower case: both normalized.
    Credentials::KeyPair(Box::new(
        KeyPair::from_file("xy12345.us-east-2.aws", "ci_bot", &path).unwrap(),
    ))
}

fn client(s: &StandIn, key: &TestKey) -> Client {
    Client::new("xy12345.us-east-2.aws", keypair(key), options(&s.url)).unwrap()
}

#[test]
fn anchor_is_captured_over_a_keypair_jwt() {
    let key = TestKey::shared();
    let s = StandIn::start(Config::new(key));
    let c = client(&s, key);
    if let Credentials::KeyPair(k) = c.credentials() {
        assert_eq!(k.fingerprint(), key.fingerprint());
        assert_eq!(k.subject(), "XY12345.CI_BOT");
    }
    let a = anchor::capture(
        &c,
        &Context {
            warehouse: Some("reporting_wh".into()),
            role: Some("ANALYST".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let seen = s.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let post = &seen[0];
    assert_eq!(post.status, 200);
    assert_eq!(post.token_type.as_deref(), Some("KEYPAIR_JWT"));
    assert!(clyra_warehouse::snowflake::is_uuid(
        &post.query["requestId"]
    ));
    let body = post.body.as_ref().unwrap();
    assert_eq!(
        body["statement"],
        clyra_warehouse::snowflake::SESSION_CONTEXT_SQL
    );
    assert_eq!(body["warehouse"], "reporting_wh");
    assert_eq!(body["resultSetMetaData"]["format"], "jsonv2");
    assert!(body.get("bindings").is_none());

    assert_eq!(a.status, AnchorStatus::Provisional);
    assert!(a.query_id.starts_with("01c0ffee-"), "{}", a.query_id);
    assert_eq!(a.account, "XY12345");
    assert_eq!(a.user, "CI_BOT");
    assert_eq!(a.session_id, "10923847562");
    assert_eq!(a.warehouse.as_deref(), Some("REPORTING_WH"));
    assert_eq!(a.role.as_deref(), Some("ANALYST"));
    assert_eq!(a.database.as_deref(), Some("ANALYTICS"));
    let st: jiff::Timestamp = a.statement_time.parse().unwrap();
    let end: jiff::Timestamp = a.end_time.parse().unwrap();
    assert!(end >= st, "{a:?}");
    assert!((jiff::Timestamp::now() - end).get_seconds().abs() < 60);

    let def = a.def_anchors();
    assert_eq!(def.len(), 1);
    assert_eq!(
        (def[0].platform.as_str(), def[0].kind.as_str()),
        ("snowflake", "query_id")
    );
    assert_eq!(def[0].value, a.query_id);

    // The anchors file round-trips through canonical JSON.
    let set = AnchorSet::new(vec![a]);
    let bytes = set.to_canonical_json().unwrap();
    assert_eq!(AnchorSet::from_json(&bytes).unwrap(), set);
}

#[test]
fn a_jwt_signed_by_another_key_is_refused_with_a_clear_error() {
    let s = StandIn::start(Config::new(TestKey::shared()));
    let c = client(&s, TestKey::other());
    let e = anchor::capture(&c, &Context::default()).unwrap_err();
    let SnowflakeError::Auth { status, code, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!((*status, code.as_deref()), (401, Some("390144")));
    let msg = e.to_string();
    assert!(msg.contains("KEYPAIR_JWT"), "{msg}");
    assert!(msg.contains(&TestKey::other().fingerprint()), "{msg}");
    assert!(msg.contains("RSA_PUBLIC_KEY_FP"), "{msg}");
    assert!(!msg.contains("Bearer"), "{msg}");
    assert_eq!(s.rejections(), ["signature"]);
}

#[test]
fn an_expired_jwt_is_refused_with_a_clear_error() {
    let key = TestKey::shared();
    let mut cfg = Config::new(key);
    // The server's clock is two hours ahead: the fresh one-hour JWT has expired there.
    cfg.clock_offset_s = 2 * 3600;
    let s = StandIn::start(cfg);
    let e = anchor::capture(&client(&s, key), &Context::default()).unwrap_err();
    assert!(
        matches!(e, SnowflakeError::Auth { status: 401, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("clock"), "{e}");
    assert_eq!(s.rejections(), ["expired"]);
}

#[test]
fn jwt_lifetimes_over_an_hour_are_refused_locally() {
    let dir = tempfile::tempdir().unwrap();
    let path = TestKey::shared().write_private(dir.path(), "k.p8");
    let k = KeyPair::from_file("xy12345", "u", &path).unwrap();
    assert!(k.with_lifetime(Duration::from_secs(3601)).is_err());
}

#[test]
fn oauth_tokens_are_sent_with_their_token_type() {
    let mut cfg = Config::new(TestKey::shared());
    cfg.oauth_token = Some("ver:1-hint:42-ETMsDgAAAZ".into());
    let s = StandIn::start(cfg);
    let ok = Credentials::OAuth(OAuthToken::new("ver:1-hint:42-ETMsDgAAAZ").unwrap());
    let c = Client::new("xy12345", ok, options(&s.url)).unwrap();
    anchor::capture(&c, &Context::default()).unwrap();
    assert_eq!(s.seen()[0].token_type.as_deref(), Some("OAUTH"));

    let bad = Credentials::OAuth(OAuthToken::new("ver:1-hint:42-EXPIRED").unwrap());
    let c = Client::new("xy12345", bad, options(&s.url)).unwrap();
    let e = anchor::capture(&c, &Context::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("OAUTH") && msg.contains("390303"), "{msg}");
    assert!(!msg.contains("EXPIRED"), "the token leaked: {msg}");
}

#[test]
fn long_statements_are_polled_until_done() {
    let key = TestKey::shared();
    let mut cfg = Config::new(key);
    cfg.pending_polls = 3;
    let s = StandIn::start(cfg);
    let rs = client(&s, key)
        .execute(&Statement::new(standin::WAIT_SQL))
        .unwrap();
    assert_eq!(rs.polls, 3);
    assert_eq!(rs.get(0, "SYSTEM$WAIT"), Some("waited 2 seconds"));
    let seen = s.seen();
    let statuses: Vec<(String, u16)> = seen.iter().map(|r| (r.method.clone(), r.status)).collect();
    assert_eq!(
        statuses,
        [("POST", 202), ("GET", 202), ("GET", 202), ("GET", 200)].map(|(m, c)| (m.to_string(), c))
    );
    assert!(seen[1].path.ends_with(&rs.statement_handle));
}

#[test]
fn polling_stops_at_the_deadline() {
    let key = TestKey::shared();
    let mut cfg = Config::new(key);
    cfg.pending_polls = 1_000_000;
    let s = StandIn::start(cfg);
    let mut o = options(&s.url);
    o.statement_timeout = Duration::from_millis(100);
    let c = Client::new("xy12345", keypair(key), o).unwrap();
    let e = c.execute(&Statement::new(standin::WAIT_SQL)).unwrap_err();
    assert!(matches!(e, SnowflakeError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("/cancel"), "{e}");
}

#[test]
fn every_partition_is_read_in_order() {
    let key = TestKey::shared();
    let s = StandIn::start(Config::new(key));
    let rs = client(&s, key)
        .execute(&Statement::new(standin::GENERATOR_SQL))
        .unwrap();
    assert_eq!(rs.partitions, 3);
    let n: Vec<&str> = rs.rows.iter().map(|r| r[0].as_deref().unwrap()).collect();
    assert_eq!(n, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert_eq!(rs.rows[9][1], None, "SQL NULL is JSON null");
    assert_eq!(rs.columns[0].type_name, "fixed");
    let seen = s.seen();
    let parts: Vec<&str> = seen
        .iter()
        .filter_map(|r| r.query.get("partition").map(String::as_str))
        .collect();
    assert_eq!(parts, ["1", "2"]);
    // Partitions after the first came gzipped, as Snowflake may send them.
    assert!(seen
        .iter()
        .filter(|r| r.query.contains_key("partition"))
        .all(|r| r.gzipped));
}

#[test]
fn throttling_is_retried_with_the_same_request_id() {
    let key = TestKey::shared();
    let mut cfg = Config::new(key);
    cfg.throttle = 2;
    let s = StandIn::start(cfg);
    anchor::capture(&client(&s, key), &Context::default()).unwrap();
    let seen = s.seen();
    let statuses: Vec<u16> = seen.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    let ids: std::collections::BTreeSet<&String> =
        seen.iter().map(|r| &r.query["requestId"]).collect();
    assert_eq!(ids.len(), 1, "a retry must reuse the request id: {ids:?}");

    s.config().throttle = 100;
    let mut o = options(&s.url);
    o.max_attempts = 2;
    let c = Client::new("xy12345", keypair(key), o).unwrap();
    let e = anchor::capture(&c, &Context::default()).unwrap_err();
    assert!(
        matches!(
            e,
            SnowflakeError::RateLimited {
                status: 429,
                attempts: 2,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn sql_errors_carry_code_and_sqlstate() {
    let key = TestKey::shared();
    let s = StandIn::start(Config::new(key));
    let e = client(&s, key)
        .execute(&Statement::new(standin::MISSING_TABLE_SQL))
        .unwrap_err();
    let SnowflakeError::Sql {
        code,
        sql_state,
        handle,
        ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!((code.as_str(), sql_state.as_str()), ("002003", "42S02"));
    assert!(handle.is_some());
    assert!(e.to_string().contains("does not exist"), "{e}");
}

fn fixture_anchor(id: &str, role: &str, end_time: &str) -> SnowflakeAnchor {
    SnowflakeAnchor {
        platform: "snowflake".into(),
        account: "XY12345".into(),
        region: Some("AWS_US_EAST_2".into()),
        user: "CI_BOT".into(),
        query_id: id.into(),
        query_hash: None,
        session_id: "10923847562".into(),
        warehouse: Some("TRANSFORM_WH".into()),
        role: Some(role.into()),
        database: Some("ANALYTICS".into()),
        schema: Some("PUBLIC".into()),
        server_version: Some("9.28.1".into()),
        statement_time: "2026-01-01T10:00:00.100000Z".into(),
        end_time: end_time.into(),
        status: AnchorStatus::Provisional,
        reconciliation: None,
    }
}

#[test]
fn reconciliation_confirms_flags_waits_and_gives_up() {
    let key = TestKey::shared();
    let s = StandIn::start(Config::new(key));
    let c = client(&s, key);
    let live = anchor::capture(&c, &Context::default()).unwrap();
    let hours_ago = |h: i64| {
        let t = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(h);
        t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    };
    let mut young = fixture_anchor(
        "01bd2c3e-0001-a1b2-0000-0000000000aa",
        "TRANSFORMER",
        &hours_ago(1),
    );
    young.statement_time = young.end_time.clone();
    let mut old = fixture_anchor(
        "01bd2c3e-0001-a1b2-0000-0000000000bb",
        "TRANSFORMER",
        &hours_ago(4),
    );
    old.statement_time = old.end_time.clone();
    let mut anchors = vec![
        live.clone(),
        // In the recorded rows: MERGE by TRANSFORMER, ended 2026-01-01T10:00:02.35Z.
        fixture_anchor(
            "01bd2c3e-0001-a1b2-0000-00a1b2c3d001",
            "TRANSFORMER",
            "2026-01-01T10:00:02.400000Z",
        ),
        // In the recorded rows, but run as ACCOUNTADMIN.
        fixture_anchor(
            "01BD2C3E-0001-A1B2-0000-00A1B2C3D002",
            "TRANSFORMER",
            "2026-01-01T10:01:41.000000Z",
        ),
        young,
        old,
    ];
    let before = s.seen().len();
    let sum = reconcile::reconcile(&c, &mut anchors, &reconcile::Options::default()).unwrap();
    assert_eq!(
        (
            sum.checked,
            sum.confirmed,
            sum.mismatch,
            sum.provisional,
            sum.missing,
            sum.queries
        ),
        (5, 2, 1, 1, 1, 1)
    );
    // One query, every id bound, none in the SQL text.
    let seen = s.seen();
    assert_eq!(seen.len() - before, 1);
    let body = seen.last().unwrap().body.clone().unwrap();
    let sql = body["statement"].as_str().unwrap();
    assert!(sql.contains("SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY"));
    assert!(
        !sql.contains("01bd2c3e") && !sql.contains(&live.query_id),
        "{sql}"
    );
    assert!(!sql.contains("QUERY_TEXT"));
    let b = body["bindings"].as_object().unwrap();
    assert_eq!(b.len(), 6);
    assert_eq!(b["1"]["type"], "TEXT");
    assert_eq!(b["1"]["value"], live.query_id.as_str());
    assert_eq!(b["6"]["type"], "FIXED");

    let [live, merge, delete, young, old] = &anchors[..] else {
        unreachable!()
    };
    assert_eq!(live.status, AnchorStatus::Confirmed);
    assert!(live.query_hash.is_some());
    assert_eq!(merge.status, AnchorStatus::Confirmed);
    assert_eq!(
        merge.query_hash.as_deref(),
        Some("3f2d1c5b8e4a7960a1b2c3d4e5f60718")
    );
    let qh: &QueryHistoryRecord = merge
        .reconciliation
        .as_ref()
        .unwrap()
        .query_history
        .as_ref()
        .unwrap();
    assert_eq!(
        (
            qh.rows_inserted,
            qh.rows_updated,
            qh.execution_status.as_deref(),
            qh.query_type.as_deref()
        ),
        (Some(120), Some(35), Some("SUCCESS"), Some("MERGE"))
    );
    assert_eq!(qh.end_time.as_deref(), Some("2026-01-01T10:00:02.350000Z"));

    assert_eq!(delete.status, AnchorStatus::Mismatch);
    let r = delete.reconciliation.as_ref().unwrap();
    assert_eq!(r.mismatches.len(), 1, "{r:?}");
    assert_eq!(r.mismatches[0].field, "role");
    assert_eq!(
        r.mismatches[0].query_history.as_deref(),
        Some("ACCOUNTADMIN")
    );
    assert_eq!(delete.query_hash, None);

    assert_eq!(young.status, AnchorStatus::Provisional);
    assert!(young.reconciliation.as_ref().unwrap().visible_by.is_some());
    assert!(young
        .reconciliation
        .as_ref()
        .unwrap()
        .note
        .contains("45 min to 3 h"));
    assert_eq!(old.status, AnchorStatus::Missing);

    // The file keeps all of it, and a second run only re-checks the unsettled anchors.
    let set = AnchorSet::new(anchors.clone());
    assert_eq!(
        AnchorSet::from_json(&set.to_canonical_json().unwrap()).unwrap(),
        set
    );
    let sum = reconcile::reconcile(&c, &mut anchors, &reconcile::Options::default()).unwrap();
    assert_eq!((sum.checked, sum.skipped), (2, 3));
    let last = s.seen().last().unwrap().body.clone().unwrap();
    assert_eq!(last["bindings"].as_object().unwrap().len(), 3);
}

#[test]
fn a_statement_not_yet_in_history_stays_provisional() {
    let key = TestKey::shared();
    let mut cfg = Config::new(key);
    cfg.history_lag_s = 45 * 60;
    let s = StandIn::start(cfg);
    let c = client(&s, key);
    let mut anchors = vec![anchor::capture(&c, &Context::default()).unwrap()];
    reconcile::reconcile(&c, &mut anchors, &reconcile::Options::default()).unwrap();
    assert_eq!(anchors[0].status, AnchorStatus::Provisional);
}

#[test]
fn a_role_without_access_to_query_history_is_an_error_not_missing() {
    let key = TestKey::shared();
    let mut cfg = Config::new(key);
    cfg.history_denied = true;
    let s = StandIn::start(cfg);
    let c = client(&s, key);
    let mut anchors = vec![fixture_anchor(
        "01bd2c3e-0001-a1b2-0000-0000000000bb",
        "TRANSFORMER",
        "2025-01-01T00:00:00Z",
    )];
    let before = anchors.clone();
    let e = reconcile::reconcile(&c, &mut anchors, &reconcile::Options::default()).unwrap_err();
    assert!(
        matches!(&e, SnowflakeError::Sql { sql_state, .. } if sql_state == "42S02"),
        "{e:?}"
    );
    assert!(e.to_string().contains("not authorized"), "{e}");
    assert_eq!(anchors, before);
}

#[test]
fn query_ids_are_validated_before_anything_is_sent() {
    let key = TestKey::shared();
    let s = StandIn::start(Config::new(key));
    let e = reconcile::fetch(&client(&s, key), &["x' OR '1'='1"], 0).unwrap_err();
    assert!(
        matches!(
            e,
            SnowflakeError::Invalid {
                what: "query id",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(s.seen().is_empty());
    // The stand-in, like Clyra, accepts only the generated text with every value bound.
    let e = client(&s, key)
        .execute(&Statement {
            sql: format!(
                "{}'01bd2c3e-0001-a1b2-0000-00a1b2c3d001') AND START_TIME >= TO_TIMESTAMP_LTZ(?, 6) ORDER BY QUERY_ID",
                clyra_warehouse::snowflake::QUERY_HISTORY_SQL_PREFIX
            ),
            bindings: vec![Binding::fixed(0)],
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(e, SnowflakeError::Sql { .. }), "{e:?}");
}

#[test]
fn key_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = TestKey::shared().write_private(dir.path(), "k.p8");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeyPair::from_file("xy12345", "u", &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("k.p8"), "{e}");
        assert!(e.contains("644") || e.contains("permission"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let enc = dir.path().join("enc.p8");
    std::fs::write(
        &enc,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&enc, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let e = KeyPair::from_file("xy12345", "u", &enc)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("encrypted") && e.contains("openssl pkcs8"),
        "{e}"
    );
    let k = KeyPair::from_file("xy12345", "u", &path).unwrap();
    assert!(!format!("{k:?}").contains("PRIVATE"));
}

#[test]
fn anchors_files_are_checked_with_pointers() {
    let a = fixture_anchor(
        "01bd2c3e-0001-a1b2-0000-00a1b2c3d001",
        "R",
        "2026-01-01T10:00:02Z",
    );
    let good =
        String::from_utf8(AnchorSet::new(vec![a.clone()]).to_canonical_json().unwrap()).unwrap();
    for (bad, pointer) in [
        (
            good.replace("01bd2c3e-0001-a1b2-0000-00a1b2c3d001", "42"),
            "/anchors/0/query_id",
        ),
        (
            good.replace(r#""status":"provisional""#, r#""status":"confirmed""#),
            "/anchors/0/status",
        ),
        (
            good.replace(r#""status":"provisional""#, r#""status":"maybe""#),
            "/anchors/0/status",
        ),
        (
            good.replace(r#""role":"R""#, r#""role":"R","rows":[1]"#),
            "/anchors/0",
        ),
        (
            good.replace("snowflake-anchors/v1", "snowflake-anchors/v9"),
            "/format",
        ),
        (
            good.replace(r#""session_id":"10923847562""#, r#""session_id":"1;2""#),
            "/anchors/0/session_id",
        ),
        (
            good.replace(
                r#""end_time":"2026-01-01T10:00:02Z""#,
                r#""end_time":"yesterday""#,
            ),
            "/anchors/0/end_time",
        ),
        (
            good.replace(
                r#""platform":"snowflake""#,
                r#""platform":"snowflake","platform":"x""#,
            ),
            "",
        ),
    ] {
        match AnchorSet::from_json(bad.as_bytes()) {
            Err(SnowflakeError::AnchorsFile {
                pointer: p,
                message,
            }) => {
                assert!(p.starts_with(pointer), "{pointer} vs {p}: {message}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let twice = AnchorSet::new(vec![a.clone(), a]);
    let e = AnchorSet::from_json(&twice.to_canonical_json().unwrap()).unwrap_err();
    assert!(e.to_string().contains("/anchors/1/query_id"), "{e}");
}

mod untrusted {
    use clyra_warehouse::snowflake::api::{parse_partition, parse_result_set};
    use clyra_warehouse::snowflake::AnchorSet;
    use proptest::prelude::*;

    const RESULT: &str = include_str!("fixtures/snowflake/generator_partitions.json");
    const ANCHORS: &str = include_str!("fixtures/snowflake/anchors-mismatch.json");

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Untrusted answers and files never panic, whatever bytes are cut or flipped.
        #[test]
        fn mangled_inputs_never_panic(cut in 0usize..4000, flip in 0usize..4000, byte: u8) {
            for base in [RESULT, ANCHORS] {
                let mut b = base.as_bytes().to_vec();
                if flip < b.len() {
                    b[flip] = byte;
                }
                b.truncate(cut.max(1).min(b.len()));
                let _ = parse_result_set(&b);
                let _ = parse_partition(&b, 1, 3, 2);
                if let Ok(set) = AnchorSet::from_json(&b) {
                    let again = AnchorSet::from_json(&set.to_canonical_json().unwrap()).unwrap();
                    prop_assert_eq!(again, set);
                }
            }
        }
    }

    #[test]
    fn the_fixtures_themselves_parse() {
        let p = parse_result_set(RESULT.as_bytes()).unwrap();
        assert_eq!(p.partition_rows, vec![3, 4, 3]);
        assert_eq!(
            AnchorSet::from_json(ANCHORS.as_bytes())
                .unwrap()
                .anchors
                .len(),
            2
        );
    }
}
