//! Delta anchors from Clyra's own `_delta_log` reader, on real tables written by the `deltalake`
//! package (delta-rs 1.6.6, through `tests/interop/delta_tables.py`), and on hand-written commits
//! shaped like Databricks' (camelCase metrics, deletion vectors; `tests/fixtures/databricks/`).
//!
//! Python reads the data to count rows; Clyra reads only the log. The data files are deleted
//! before Clyra reads, so its row counts cannot come from them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/delta_py.rs"]
mod delta_py;

use std::collections::BTreeMap;
use std::path::Path;

use clyra_warehouse::delta::{
    self, AnchorSource, DeltaAnchor, DeltaError, DeltaLog, OperationMetrics,
};
use serde_json::Value;

/// Deletes every data file under `dir` (everything outside `_delta_log`).
fn delete_data_files(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let p = entry.path();
        if p.file_name().unwrap() == "_delta_log" {
            continue;
        }
        if p.is_dir() {
            n += delete_data_files(&p);
            std::fs::remove_dir(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
            n += 1;
        }
    }
    n
}

fn python_metrics(op: &str, v: &Value) -> OperationMetrics {
    let m: serde_json::Map<String, Value> = v.as_object().cloned().unwrap_or_default();
    OperationMetrics::normalize(Some(op), &m)
}

/// Checks every version of a table against what Python saw; returns the anchors.
fn check_against_python(table: &Value) -> Vec<DeltaAnchor> {
    let path = table["path"].as_str().unwrap();
    let log = DeltaLog::open(path).unwrap();
    let latest = table["latest"].as_u64().unwrap();
    assert_eq!(log.latest_version(), latest);
    let mut anchors = Vec::new();
    for v in table["versions"].as_array().unwrap() {
        let version = v["version"].as_u64().unwrap();
        let a = log.anchor(Some(version)).unwrap();
        assert_eq!(a.version, version);
        assert_eq!(a.source, AnchorSource::DeltaLog);
        assert_eq!(a.latest_version, Some(latest));
        assert_eq!(
            a.commit_sha256.as_deref(),
            v["sha256"].as_str(),
            "commit digest of version {version}"
        );
        assert_eq!(a.commit_bytes, v["bytes"].as_u64());
        let op = v["operation"].as_str().unwrap();
        assert_eq!(a.operation.as_deref(), Some(op), "version {version}");
        assert_eq!(a.timestamp_ms, v["timestamp"].as_i64(), "version {version}");
        assert_eq!(
            a.metrics,
            python_metrics(op, &v["metrics"]),
            "metrics of version {version}"
        );
        assert_eq!(
            a.row_count,
            v["num_rows"].as_u64(),
            "row count of version {version} (Python read {} rows from the data)",
            v["num_rows"]
        );
        assert!(a.unavailable.is_empty(), "{:?}", a.unavailable);
        anchors.push(a);
    }
    anchors
}

#[test]
fn lifecycle_versions_digests_operations_metrics_and_row_counts() {
    let dir = tempfile::tempdir().unwrap();
    let seen = delta_py::make_tables(dir.path(), &["lifecycle"]);
    assert_eq!(seen["deltalake"], "1.6.6");
    let table = &seen["tables"]["lifecycle"];
    let path = Path::new(table["path"].as_str().unwrap());
    assert!(delete_data_files(path) >= 7, "data files were written");

    let a = check_against_python(table);
    assert_eq!(a.len(), 7);
    let ops: Vec<&str> = a.iter().map(|x| x.operation.as_deref().unwrap()).collect();
    assert_eq!(
        ops,
        ["WRITE", "WRITE", "DELETE", "UPDATE", "MERGE", "WRITE", "WRITE"]
    );
    let rows: Vec<u64> = a.iter().map(|x| x.row_count.unwrap()).collect();
    assert_eq!(rows, [3, 5, 4, 4, 5, 7, 1]);

    // Normalized metrics, from delta-rs' snake_case names.
    let m = |i: usize| &a[i].metrics;
    assert_eq!((m(0).rows_added, m(0).files_added), (Some(3), Some(1)));
    assert_eq!(m(1).rows_added, Some(2));
    assert_eq!((m(2).rows_deleted, m(2).rows_copied), (Some(1), Some(2)));
    assert_eq!((m(2).files_added, m(2).files_removed), (Some(1), Some(1)));
    assert_eq!((m(3).rows_updated, m(3).rows_copied), (Some(1), Some(1)));
    assert_eq!(m(4).source_rows, Some(2));
    assert_eq!(m(4).target_rows_inserted, Some(1));
    assert_eq!(m(4).target_rows_updated, Some(1));
    assert_eq!(m(4).target_rows_deleted, Some(0));
    assert_eq!(m(4).target_rows_copied, Some(1));
    assert_eq!(m(4).output_rows, Some(3));
    assert_eq!(
        m(4).rows_added,
        None,
        "MERGE output rows are not rows added"
    );
    assert_eq!((m(6).rows_added, m(6).files_removed), (Some(1), Some(3)));
    for x in &a {
        assert!(x.metrics.execution_ms.is_some());
        assert!(
            x.metrics.other.contains_key("num_partitions")
                || x.operation.as_deref() != Some("WRITE")
        );
    }

    // commitInfo members.
    assert!(a[0].engine_info.as_deref().unwrap().starts_with("delta-rs"));
    assert!(a[0].client_version.as_deref().unwrap().contains("1.6.6"));
    assert_eq!(a[0].read_version, None);
    assert_eq!(a[2].read_version, Some(1));
    assert_eq!(
        a[2].operation_parameters.as_ref().unwrap()["predicate"],
        "id = 2"
    );
    assert_eq!(
        a[1].operation_parameters.as_ref().unwrap()["mode"],
        "Append"
    );
    assert_eq!(
        a[6].operation_parameters.as_ref().unwrap()["mode"],
        "Overwrite"
    );

    // One table id throughout; the schema digest changes with the added column, and only then.
    let id = a[0].table_id.clone().unwrap();
    assert!(a.iter().all(|x| x.table_id.as_deref() == Some(id.as_str())));
    let schemas: Vec<&str> = a
        .iter()
        .map(|x| x.schema_sha256.as_deref().unwrap())
        .collect();
    assert!(schemas[..5].iter().all(|s| *s == schemas[0]));
    assert_ne!(schemas[5], schemas[4]);
    assert_eq!(schemas[6], schemas[5]);
    assert_eq!(a[6].live_files, Some(1));

    // The latest version by default, and through a file:// URL.
    let latest = delta::anchor(path.to_str().unwrap(), None).unwrap();
    assert_eq!(latest.version, 6);
    let url = format!("file://{}", path.display());
    let by_url = delta::anchor(&url, Some(6)).unwrap();
    assert_eq!(by_url.commit_sha256, latest.commit_sha256);
    assert_eq!(by_url.table, path.canonicalize().unwrap().to_str().unwrap());

    // Canonical JSON round trip and the DEF anchors.
    let bytes = latest.to_canonical_json().unwrap();
    assert_eq!(DeltaAnchor::from_json(&bytes).unwrap(), latest);
    let def = latest.def_anchors();
    assert_eq!(def[0].platform, "databricks");
    assert_eq!(def[0].kind, "delta_version");
    assert_eq!(def[0].value, format!("{}@6", latest.table));
    assert!(def[0].at.is_some());
    assert_eq!(def[1].kind, "delta_commit_sha256");
    assert!(def[1]
        .value
        .ends_with(latest.commit_sha256.as_deref().unwrap()));

    // Beyond the latest version.
    match delta::anchor(path.to_str().unwrap(), Some(7)) {
        Err(DeltaError::NoSuchVersion {
            version: 7,
            latest: 6,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn partitioned_table_row_counts_over_many_files() {
    let dir = tempfile::tempdir().unwrap();
    let seen = delta_py::make_tables(dir.path(), &["partitioned"]);
    let table = &seen["tables"]["partitioned"];
    delete_data_files(Path::new(table["path"].as_str().unwrap()));
    let a = check_against_python(table);
    assert_eq!(a[0].live_files, Some(3), "one file per region");
    assert_eq!(a[0].metrics.files_added, Some(3));
    assert_eq!(a[1].live_files, Some(5));
    assert_eq!(a.last().unwrap().operation.as_deref(), Some("DELETE"));
    assert_eq!(a.last().unwrap().metrics.rows_deleted, Some(2));
    assert_eq!(a.last().unwrap().row_count, Some(12));
}

#[test]
fn cleaned_log_finds_the_latest_version_and_says_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let seen = delta_py::make_tables(dir.path(), &["cleaned"]);
    let table = &seen["tables"]["cleaned"];
    let path = table["path"].as_str().unwrap();
    let versions = table["versions"].as_array().unwrap();
    assert!(versions[0]["sha256"].is_null(), "cleanup removed version 0");

    let log = DeltaLog::open(path).unwrap();
    assert_eq!(log.latest_version(), 5);
    assert_eq!(log.commit_versions().first(), Some(&4));
    let a = log.anchor(None).unwrap();
    assert_eq!(a.version, 5);
    assert_eq!(a.commit_sha256.as_deref(), versions[5]["sha256"].as_str());
    assert_eq!(a.metrics.rows_added, Some(1));
    assert_eq!(a.row_count, None);
    let why = &a.unavailable["row_count"];
    assert!(
        why.contains("checkpoint") && why.contains("version 4"),
        "{why}"
    );
    let json = String::from_utf8(a.to_canonical_json().unwrap()).unwrap();
    assert!(json.contains(r#""row_count":null"#), "{json}");

    let e = log.anchor(Some(2)).unwrap_err();
    assert!(
        matches!(e, DeltaError::CommitGone { version: 2, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("Parquet checkpoints") && msg.contains("version 4"),
        "{msg}"
    );

    // With every JSON commit gone, the checkpoint and _last_checkpoint still give the version.
    let log_dir = Path::new(path).join("_delta_log");
    for v in [4, 5] {
        std::fs::remove_file(log_dir.join(format!("{v:020}.json"))).unwrap();
    }
    let log = DeltaLog::open(path).unwrap();
    assert_eq!(log.latest_version(), 4);
    let e = log.anchor(None).unwrap_err().to_string();
    assert!(
        e.contains("only a checkpoint of this version is left"),
        "{e}"
    );
}

/// Copies the Databricks-shaped fixture commits into a table directory.
fn fixture_table(dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/databricks/delta_log");
    let table = dir.join("fct_revenue");
    let log = table.join("_delta_log");
    std::fs::create_dir_all(&log).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, log.join(p.file_name().unwrap())).unwrap();
    }
    table
}

#[test]
fn databricks_camel_case_commits_and_deletion_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let table = fixture_table(dir.path());
    let log = DeltaLog::open(table.to_str().unwrap()).unwrap();
    assert_eq!(log.latest_version(), 2);

    let a0 = log.anchor(Some(0)).unwrap();
    assert_eq!(a0.operation.as_deref(), Some("CREATE TABLE AS SELECT"));
    assert_eq!(a0.metrics.rows_added, Some(1000));
    assert_eq!(a0.metrics.files_added, Some(2));
    assert_eq!(a0.metrics.bytes_added, Some(40960));
    assert!(a0.metrics.other.is_empty(), "{:?}", a0.metrics.other);
    assert_eq!(
        a0.engine_info.as_deref(),
        Some("Databricks-Runtime/15.4.x-scala2.12")
    );
    assert_eq!(a0.isolation_level.as_deref(), Some("WriteSerializable"));
    assert_eq!(a0.is_blind_append, Some(true));
    assert_eq!(a0.user_name.as_deref(), Some("ana@example.com"));
    assert_eq!(a0.timestamp.as_deref(), Some("2024-05-01T12:00:00.123Z"));
    assert_eq!(a0.row_count, Some(1000));
    assert_eq!(a0.live_bytes, Some(24576 + 16384));
    assert_eq!(
        a0.table_id.as_deref(),
        Some("7d2b8f0e-1c5a-4e3b-9f6d-2a4c8e0b1d35")
    );

    // DELETE through a deletion vector: the file stays, 10 of its rows are gone.
    let a1 = log.anchor(Some(1)).unwrap();
    assert_eq!(a1.metrics.rows_deleted, Some(10));
    assert_eq!(a1.metrics.deletion_vectors_added, Some(1));
    assert_eq!(
        (a1.metrics.files_added, a1.metrics.files_removed),
        (Some(0), Some(0))
    );
    assert_eq!(
        (
            a1.metrics.execution_ms,
            a1.metrics.scan_ms,
            a1.metrics.rewrite_ms
        ),
        (Some(1532), Some(1022), Some(509))
    );
    assert_eq!(
        a1.metrics.other.get("numDeletionVectorsUpdated"),
        Some(&Value::from("0"))
    );
    assert_eq!(a1.read_version, Some(0));
    assert_eq!(a1.row_count, Some(990));
    assert_eq!(a1.live_files, Some(2));

    // MERGE: camelCase merge metrics, in-commit timestamp preferred.
    let a2 = log.anchor(Some(2)).unwrap();
    let m = &a2.metrics;
    assert_eq!(m.source_rows, Some(20));
    assert_eq!(m.target_rows_inserted, Some(15));
    assert_eq!(m.target_rows_updated, Some(5));
    assert_eq!(m.target_rows_deleted, Some(0));
    assert_eq!(m.target_rows_copied, Some(0));
    assert_eq!(m.output_rows, Some(20));
    assert_eq!(m.rows_added, None);
    assert_eq!((m.files_added, m.files_removed), (Some(1), Some(0)));
    assert_eq!((m.bytes_added, m.bytes_removed), (Some(1024), Some(0)));
    assert_eq!(m.execution_ms, Some(4120));
    let other: BTreeMap<&str, &Value> = m.other.iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(other["numTargetRowsMatchedUpdated"], &Value::from("5"));
    assert_eq!(other["numTargetDeletionVectorsAdded"], &Value::from("1"));
    assert_eq!(a2.timestamp_ms, Some(1_714_572_000_790));
    assert_eq!(a2.row_count, Some(990 - 5 + 20));
    assert_eq!(a2.live_files, Some(3));

    // The digest is of the exact bytes: one byte more and it changes.
    let commit = table.join("_delta_log/00000000000000000002.json");
    let bytes = std::fs::read(&commit).unwrap();
    assert_eq!(
        a2.commit_sha256.as_deref().unwrap(),
        clyra_evidence::Digest::sha256(&bytes).to_hex()
    );
    let mut more = bytes.clone();
    more.extend_from_slice(b"\n");
    std::fs::write(&commit, &more).unwrap();
    let again = log.anchor(Some(2)).unwrap();
    assert_ne!(again.commit_sha256, a2.commit_sha256);
    assert_eq!(again.row_count, a2.row_count, "a blank line is no action");
}

#[test]
fn broken_commits_name_the_file_line_and_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let table = fixture_table(dir.path());
    let commit = table.join("_delta_log/00000000000000000001.json");
    let text = std::fs::read_to_string(&commit).unwrap();
    let broken = text.replacen("\"cardinality\":10", "\"cardinality\":\"ten\"", 1);
    assert_ne!(broken, text);
    std::fs::write(&commit, broken).unwrap();
    let e = delta::anchor(table.to_str().unwrap(), Some(1)).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("00000000000000000001.json"), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("/add/deletionVector/cardinality"), "{msg}");
    // Version 2 replays version 1: the same error.
    let e2 = delta::anchor(table.to_str().unwrap(), Some(2))
        .unwrap_err()
        .to_string();
    assert!(e2.contains("line 3"), "{e2}");
    // Version 0 does not need it.
    delta::anchor(table.to_str().unwrap(), Some(0)).unwrap();
}

#[test]
fn not_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let e = delta::anchor(dir.path().to_str().unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no `_delta_log`"), "{e}");
    std::fs::create_dir(dir.path().join("_delta_log")).unwrap();
    let e = delta::anchor(dir.path().to_str().unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds no commit"), "{e}");
    let e = delta::anchor("s3://bucket/table", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("clyra warehouse databricks anchor"), "{e}");
    let e = delta::anchor("/nonexistent/clyra/table", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/clyra/table"), "{e}");
    std::fs::write(
        dir.path().join("_delta_log/_last_checkpoint"),
        b"{\"version\":\"x\"}",
    )
    .unwrap();
    let e = delta::anchor(dir.path().to_str().unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("_last_checkpoint") && e.contains("version"),
        "{e}"
    );
}

mod untrusted {
    use proptest::prelude::*;

    fn metric_value() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            any::<u64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "[0-9]{0,22}".prop_map(serde_json::Value::from),
            ".{0,8}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ]
    }

    fn metric_name() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(
                clyra_warehouse::delta::METRIC_NAMES
                    .iter()
                    .map(|(n, _)| (*n).to_string())
                    .collect::<Vec<_>>()
            ),
            "[a-zA-Z_]{1,12}",
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            clyra_warehouse::fuzz_hooks::delta_commit(&bytes);
        }

        #[test]
        fn metrics_of_any_shape_keep_their_invariants(
            op in prop_oneof![Just("WRITE".to_string()), Just("MERGE".to_string()), Just("DELETE".to_string()), ".{0,6}"],
            metrics in proptest::collection::btree_map(metric_name(), metric_value(), 0..12),
            extra in proptest::collection::vec(".{0,20}", 0..3),
        ) {
            let ci = serde_json::json!({"commitInfo": {"operation": op, "operationMetrics": metrics}});
            let mut text = ci.to_string();
            for e in extra {
                text.push('\n');
                text.push_str(&e);
            }
            clyra_warehouse::fuzz_hooks::delta_commit(text.as_bytes());
        }
    }
}
