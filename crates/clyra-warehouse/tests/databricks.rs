//! The Databricks Statement Execution API client and the MLflow model version client, against a
//! local stand-in built from the documentation (never a live workspace).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/databricks_standin.rs"]
mod standin;

use std::time::Duration;

use clyra_warehouse::databricks::{ApiError, Databricks, Parameter, Token, UcTableName};
use clyra_warehouse::delta::{AnchorSource, DeltaAnchor};
use clyra_warehouse::mlflow::{Mlflow, ModelVersion, Registry};
use standin::{Config, StandIn};

fn token(c: &Config) -> Token {
    Token::new(&c.token, "test").unwrap()
}

fn client(s: &StandIn, t: &Token) -> Databricks {
    let mut d = Databricks::new(&s.url, t).unwrap();
    d.poll_interval = Duration::from_millis(5);
    d
}

fn table() -> UcTableName {
    UcTableName::parse("main.finance.fct_revenue").unwrap()
}

#[test]
fn describe_history_polls_until_succeeded_and_normalizes_camel_case_metrics() {
    let config = Config {
        statement: vec![
            "statement_pending.json",
            "statement_running.json",
            "statement_succeeded_describe_history.json",
        ],
        ..Config::default()
    };
    let t = token(&config);
    let s = StandIn::start(config.clone());
    let a = client(&s, &t)
        .describe_history_anchor("abc123def456", &table())
        .unwrap();

    // What was sent: one POST as documented, then polls of the statement id.
    let reqs = s.requests();
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    let post = &reqs[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/api/2.0/sql/statements")
    );
    assert_eq!(
        post.headers["authorization"],
        format!("Bearer {}", config.token)
    );
    let body = post.json();
    assert_eq!(body["warehouse_id"], "abc123def456");
    assert_eq!(
        body["statement"],
        "DESCRIBE HISTORY `main`.`finance`.`fct_revenue` LIMIT 1"
    );
    assert_eq!(body["disposition"], "INLINE");
    assert_eq!(body["format"], "JSON_ARRAY");
    assert_eq!(body["wait_timeout"], "10s");
    assert_eq!(body["on_wait_timeout"], "CONTINUE");
    assert!(body.get("parameters").is_none());
    for poll in &reqs[1..] {
        assert_eq!(poll.method, "GET");
        assert_eq!(
            poll.path,
            "/api/2.0/sql/statements/01ef0a2b-3c4d-1e5f-9a8b-7c6d5e4f3a2b"
        );
    }

    // What came back.
    assert_eq!(a.source, AnchorSource::DescribeHistory);
    assert_eq!(a.table, "main.finance.fct_revenue");
    assert_eq!(a.uc_name.as_deref(), Some("main.finance.fct_revenue"));
    assert_eq!(a.version, 42);
    assert_eq!(a.read_version, Some(41));
    assert_eq!(a.operation.as_deref(), Some("MERGE"));
    assert_eq!(a.timestamp.as_deref(), Some("2024-05-01T14:00:00.790Z"));
    assert_eq!(a.is_blind_append, Some(false));
    assert_eq!(a.isolation_level.as_deref(), Some("WriteSerializable"));
    assert_eq!(a.user_name.as_deref(), Some("ana@example.com"));
    assert_eq!(
        a.operation_parameters.as_ref().unwrap()["predicate"],
        "[\"(id#700L = id#512L)\"]"
    );
    let m = &a.metrics;
    assert_eq!(m.source_rows, Some(20));
    assert_eq!(m.target_rows_inserted, Some(15));
    assert_eq!(m.target_rows_updated, Some(5));
    assert_eq!(m.output_rows, Some(20));
    assert_eq!(m.rows_added, None);
    assert_eq!((m.files_added, m.bytes_added), (Some(1), Some(1024)));
    assert_eq!(
        (m.execution_ms, m.scan_ms, m.rewrite_ms),
        (Some(4120), Some(2100), Some(1400))
    );
    assert!(m.other.contains_key("numTargetRowsMatchedUpdated"));

    // Not available this way, and said so.
    assert_eq!(a.commit_sha256, None);
    assert_eq!(a.row_count, None);
    assert!(a.unavailable["commit_sha256"].contains("DESCRIBE HISTORY does not return"));
    assert!(a.unavailable["row_count"].contains("does not count rows"));
    let json = String::from_utf8(a.to_canonical_json().unwrap()).unwrap();
    assert!(json.contains(r#""commit_sha256":null"#), "{json}");
    assert_eq!(DeltaAnchor::from_json(json.as_bytes()).unwrap(), a);
    assert_eq!(a.def_anchors()[0].value, "main.finance.fct_revenue@42");
    assert_eq!(
        a.def_anchors().len(),
        1,
        "no digest anchor without a digest"
    );
}

#[test]
fn failed_statement_carries_the_warehouse_message() {
    let config = Config {
        statement: vec!["statement_running.json", "statement_failed.json"],
        ..Config::default()
    };
    let t = token(&config);
    let s = StandIn::start(config);
    let e = client(&s, &t)
        .describe_history_anchor(
            "abc123def456",
            &UcTableName::parse("main.finance.fct_missing").unwrap(),
        )
        .unwrap_err();
    match &e {
        ApiError::StatementFailed {
            state, error_code, ..
        } => {
            assert_eq!(state, "FAILED");
            assert_eq!(error_code.as_deref(), Some("BAD_REQUEST"));
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("TABLE_OR_VIEW_NOT_FOUND"), "{msg}");
}

#[test]
fn a_statement_past_its_deadline_is_cancelled() {
    let config = Config {
        statement: vec!["statement_running.json"],
        ..Config::default()
    };
    let t = token(&config);
    let s = StandIn::start(config);
    let mut c = client(&s, &t);
    c.deadline = Duration::from_millis(40);
    let e = c.execute("abc123def456", "SELECT 1", &[]).unwrap_err();
    assert!(
        matches!(e, ApiError::Timeout { ref state, .. } if state == "RUNNING"),
        "{e:?}"
    );
    let last = s.requests().pop().unwrap();
    assert_eq!(last.method, "POST");
    assert!(last.path.ends_with("/cancel"), "{}", last.path);
}

#[test]
fn wrong_token_is_refused_and_never_echoed() {
    let config = Config::default();
    let s = StandIn::start(config);
    let wrong = Token::new("dapi-WRONG-secret-value", "test").unwrap();
    let e = client(&s, &wrong)
        .describe_history_anchor("abc123def456", &table())
        .unwrap_err();
    match &e {
        ApiError::Api {
            status, error_code, ..
        } => assert_eq!((*status, error_code.as_str()), (401, "UNAUTHENTICATED")),
        other => panic!("{other:?}"),
    }
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("WRONG-secret"), "{shown}");
    // No token at all.
    let e = Mlflow::new(&s.url, &wrong)
        .unwrap()
        .model_version(Registry::Workspace, "churn", "3")
        .unwrap_err();
    assert!(e.to_string().contains("UNAUTHENTICATED"), "{e}");
}

#[test]
fn too_many_requests_are_retried() {
    let config = Config {
        throttle: 2,
        ..Config::default()
    };
    let t = token(&config);
    let s = StandIn::start(config);
    let a = client(&s, &t)
        .describe_history_anchor("abc123def456", &table())
        .unwrap();
    assert_eq!(a.version, 42);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 3, "two 429s, then the answer");
    assert!(reqs.iter().all(|r| r.method == "POST"));

    // With fewer attempts than throttled answers, the 429 is the error.
    let config = Config {
        throttle: 5,
        ..Config::default()
    };
    let s = StandIn::start(config);
    let mut c = client(&s, &t);
    c.http_mut().max_attempts = 2;
    let e = c
        .describe_history_anchor("abc123def456", &table())
        .unwrap_err();
    match e {
        ApiError::Api {
            status, error_code, ..
        } => assert_eq!(
            (status, error_code.as_str()),
            (429, "REQUEST_LIMIT_EXCEEDED")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn parameters_are_sent_and_bad_arguments_never_leave() {
    let config = Config::default();
    let t = token(&config);
    let s = StandIn::start(config);
    let c = client(&s, &t);
    let p = [Parameter {
        name: "v".into(),
        value: Some("42".into()),
        type_: Some("BIGINT".into()),
    }];
    let r = c.execute("abc123def456", "SELECT :v", &p).unwrap();
    assert_eq!(r.columns.len(), 14);
    assert_eq!(r.rows.len(), 1);
    assert_eq!(
        s.requests()[0].json()["parameters"],
        serde_json::json!([{"name": "v", "value": "42", "type": "BIGINT"}])
    );
    let before = s.requests().len();
    assert!(matches!(
        c.execute("abc/../x", "SELECT 1", &[]),
        Err(ApiError::Invalid {
            what: "warehouse id",
            ..
        })
    ));
    assert!(UcTableName::parse("main.finance.t; DROP TABLE x").is_err());
    assert_eq!(s.requests().len(), before, "nothing was sent");
}

#[test]
fn mlflow_model_versions_found_and_not_found() {
    let config = Config::default();
    let t = token(&config);
    let s = StandIn::start(config);
    let m = Mlflow::new(&s.url, &t).unwrap();

    let mv = m.model_version(Registry::Workspace, "churn", "3").unwrap();
    let r = &mv.record;
    assert_eq!((r.name.as_str(), r.version.as_str()), ("churn", "3"));
    assert_eq!(
        r.run_id.as_deref(),
        Some("0a1b2c3d4e5f40718293a4b5c6d7e8f9")
    );
    assert_eq!(r.status.as_deref(), Some("READY"));
    assert!(r.source.as_deref().unwrap().ends_with("/artifacts/model"));
    assert_eq!(r.creation_timestamp_ms, Some(1_714_564_800_123));
    assert_eq!(
        r.creation_timestamp.as_deref(),
        Some("2024-05-01T12:00:00.123Z")
    );
    assert_eq!(r.last_updated_timestamp_ms, Some(1_714_568_400_456));
    assert_eq!(r.host, s.url);
    let bytes = mv.to_canonical_json().unwrap();
    assert_eq!(ModelVersion::from_json(&bytes).unwrap(), mv);
    assert_eq!(mv.def_anchors()[0].value, "churn/3");
    // The same version read again: same digest.
    let again = m.model_version(Registry::Workspace, "churn", "3").unwrap();
    assert_eq!(again.sha256, mv.sha256);

    let uc = m
        .model_version(Registry::UnityCatalog, "main.ml.churn", "7")
        .unwrap();
    assert_eq!(uc.record.registry, Registry::UnityCatalog);
    assert_eq!(uc.def_value(), "main.ml.churn/7");
    assert_ne!(uc.sha256, mv.sha256);
    let reqs = s.requests();
    let uc_req = reqs.last().unwrap();
    assert_eq!(
        uc_req.path,
        "/api/2.0/mlflow/unity-catalog/model-versions/get"
    );
    assert_eq!(uc_req.query["name"], "main.ml.churn");
    assert_eq!(uc_req.query["version"], "7");

    // The UC model is not in the workspace registry.
    let e = m
        .model_version(Registry::Workspace, "main.ml.churn", "7")
        .unwrap_err();
    assert!(matches!(e, ApiError::NotFound { .. }), "{e:?}");
    let e = m
        .model_version(Registry::Workspace, "churn", "99")
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("churn/99") && msg.contains("does not exist"),
        "{msg}"
    );
    assert!(matches!(
        m.model_version(Registry::Workspace, "churn", "latest"),
        Err(ApiError::Invalid {
            what: "model version",
            ..
        })
    ));
}

#[test]
fn token_files_must_be_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "dapi-file-token\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Token::from_file(&f).unwrap_err().to_string();
    assert!(
        e.contains("chmod 600") && !e.contains("dapi-file-token"),
        "{e}"
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let t = Token::from_file(&f).unwrap();
    assert_eq!(format!("{t:?}"), "Token(<redacted>)");
}
