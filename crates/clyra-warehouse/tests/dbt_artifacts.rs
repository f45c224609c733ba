//! The dbt artifact engine against real dbt output: the fixtures under tests/fixtures/dbt were
//! written by dbt-core 1.11.16 / dbt-postgres 1.11.0 running tests/fixtures/dbt/project against
//! Postgres (tests/fixtures/dbt/generate.sh): a passing build, a build with a failing test, a
//! build stopped with SIGINT (partial run_results.json) and one killed with SIGTERM (JSON log
//! only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use clyra_evidence::jcs;
use clyra_warehouse::dbt::artifacts::{Manifest, RunResults};
use clyra_warehouse::dbt::lineage::Trust;
use clyra_warehouse::dbt::log::parse_log;
use clyra_warehouse::dbt::{
    self, read_log, read_target, record, DbtError, RecordContext, RunStatus, TargetArtifacts,
};
use clyra_warehouse::replay::ReplaySet;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dbt")
}

fn sha256_hex(b: &[u8]) -> String {
    clyra_evidence::Digest::sha256(b).to_hex()
}

fn scenario(name: &str) -> (TargetArtifacts, dbt::LogSummary) {
    let dir = fixtures().join(name);
    (
        read_target(&dir).unwrap(),
        read_log(&dir.join("dbt.log")).unwrap(),
    )
}

#[test]
fn a_passing_build_is_recorded_node_by_node() {
    let (t, log) = scenario("build");
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    let run = &r.run;
    assert_eq!(run.status, RunStatus::Success);
    assert_eq!(run.dbt.version.as_deref(), Some("1.11.16"));
    assert_eq!(run.dbt.adapter.as_deref(), Some("postgres"));
    assert_eq!(run.dbt.which.as_deref(), Some("build"));
    assert!(run.dbt.command.as_deref().unwrap().starts_with("dbt "));
    assert_eq!(run.project.as_deref(), Some("clyra_fx"));
    let rr = t.run_results.as_ref().unwrap();
    assert_eq!(
        Some(run.dbt.invocation_id.as_str()),
        rr.metadata.invocation_id.as_deref()
    );
    assert_eq!(run.nodes.len(), rr.results.len());
    let ids: Vec<&str> = run.nodes.iter().map(|n| n.unique_id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "nodes sorted by unique_id");
    assert_eq!(
        run.manifest_sha256.as_deref(),
        Some(sha256_hex(t.manifest_bytes.as_ref().unwrap()).as_str())
    );

    // A table: rows from adapter_response, compiled code hashed, the manifest checksum kept.
    let m = run.node("model.clyra_fx.customer_orders").unwrap();
    assert_eq!(m.status, "success");
    assert_eq!(m.materialization.as_deref(), Some("table"));
    assert_eq!(m.rows_affected, Some(3));
    assert_eq!(m.query_id, None, "Postgres reports no query id");
    let result = rr
        .results
        .iter()
        .find(|x| x.unique_id == m.unique_id)
        .unwrap();
    assert_eq!(
        m.compiled_sha256.as_deref(),
        Some(sha256_hex(result.compiled_code.as_ref().unwrap().as_bytes()).as_str())
    );
    // dbt's checksum is SHA-256 of the model file with surrounding whitespace stripped.
    let file = std::fs::read_to_string(fixtures().join("project/models/marts/customer_orders.sql"))
        .unwrap();
    assert_eq!(
        m.checksum.as_deref(),
        Some(sha256_hex(file.trim().as_bytes()).as_str())
    );
    let execute = result.execute_timing().unwrap();
    assert!(execute
        .started_at
        .as_deref()
        .unwrap()
        .starts_with(&m.started_at.as_deref().unwrap()[..19]));
    assert_eq!(
        m.relation.as_deref(),
        Some("\"test\".\"wt_a_fx\".\"customer_orders\"")
    );
    assert!(m.execution_ms.unwrap() > 0.0);
    assert!(m.thread_id.as_deref().unwrap().starts_with("Thread-"));

    // A view: rows_affected -1 means unknown and is left out.
    let v = run.node("model.clyra_fx.stg_orders").unwrap();
    assert_eq!(v.rows_affected, None);
    assert_eq!(v.materialization.as_deref(), Some("view"));
    // A seed.
    assert_eq!(
        run.node("seed.clyra_fx.raw_orders").unwrap().rows_affected,
        Some(6)
    );
    // A test, attached to what it tests.
    let test = run
        .node("test.clyra_fx.not_null_stg_orders_order_id.81cfe2fe64")
        .unwrap();
    assert_eq!(test.status, "pass");
    assert_eq!(test.failures, Some(0));
    assert_eq!(
        test.attached_node.as_deref(),
        Some("model.clyra_fx.stg_orders")
    );
    // The guard decision the fixture project logs.
    assert_eq!(run.guard_decisions.len(), 1);
    assert_eq!(run.guard_decisions[0]["decision"], "allowed");
    assert_eq!(
        run.guard_decisions[0]["model"],
        "model.clyra_fx.customer_orders"
    );
}

#[test]
fn events_and_artifacts_follow_the_interface() {
    let (t, log) = scenario("build");
    let r = record(
        &t,
        Some(&log),
        &RecordContext {
            replay: true,
            ..Default::default()
        },
    )
    .unwrap();
    let inv = r.run.dbt.invocation_id.clone();
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"dbt.run.started"));
    assert_eq!(kinds.last(), Some(&"dbt.run.finished"));
    assert_eq!(
        kinds.iter().filter(|k| **k == "dbt.model.finished").count(),
        3
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "dbt.test.finished").count(),
        6
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "dbt.guard.decision").count(),
        1
    );
    for e in &r.events {
        assert!(
            e.id.starts_with(&format!("dbt:{inv}:{}", e.kind)),
            "{}",
            e.id
        );
        assert!(e.ts.is_some(), "{} has a time from the artifacts", e.id);
    }
    let times: Vec<_> = r.events.iter().map(|e| e.ts.unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "events in time order"
    );
    let started = &r.events[0].body;
    assert_eq!(started["dbt"]["invocation_id"], inv.as_str());
    assert_eq!(started["dbt"]["adapter"], "postgres");
    assert_eq!(started["project"], "clyra_fx");
    let model = r
        .events
        .iter()
        .find(|e| {
            e.id.ends_with(":model.clyra_fx.customer_orders") && e.kind == "dbt.model.finished"
        })
        .unwrap();
    assert_eq!(model.body["rows_affected"], 3);
    assert_eq!(model.body["invocation_id"], inv.as_str());
    assert!(model.body["compiled_sha256"].is_string());
    let guard = r
        .events
        .iter()
        .find(|e| e.kind == "dbt.guard.decision")
        .unwrap();
    assert_eq!(
        guard.id,
        format!("dbt:{inv}:dbt.guard.decision:model.clyra_fx.customer_orders:0")
    );
    assert_eq!(guard.body["rows_matched"], 3);
    assert_eq!(guard.body["invocation_id"], inv.as_str());
    let finished = &r.events.last().unwrap().body;
    assert_eq!(finished["status"], "success");
    assert_eq!(finished["interrupted"], false);
    assert_eq!(finished["nodes_finished"], r.run.nodes.len());

    let paths: Vec<&str> = r.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "dbt/run.json",
            "dbt/lineage.json",
            "dbt/run_results.json",
            "replay/replay.json",
            "replay/compiled/model.clyra_fx.stg_orders.sql",
            "replay/compiled/model.clyra_fx.customer_orders.sql",
        ]
    );
    for a in &r.artifacts[..2] {
        assert!(
            jcs::is_canonical(&a.bytes).unwrap(),
            "{} is canonical",
            a.path
        );
    }
    assert_eq!(&r.artifacts[2].bytes, t.run_results_bytes.as_ref().unwrap());
    let set = ReplaySet::from_json(&r.artifacts[3].bytes).unwrap();
    assert_eq!(set.dbt_invocation_id.as_deref(), Some(inv.as_str()));
    assert_eq!(set.models.len(), 2);
    assert_eq!(set.models[0].relation, "wt_a_fx.stg_orders");
    assert_eq!(
        set.models[0].depends_on,
        vec!["wt_a_fx.raw_orders", "wt_a_fx_raw.payments"]
    );
    assert_eq!(set.models[1].depends_on, vec!["wt_a_fx.stg_orders"]);
    for m in &set.models {
        let file = r
            .artifacts
            .iter()
            .find(|a| a.path == m.compiled_sql)
            .unwrap();
        assert_eq!(sha256_hex(&file.bytes), m.compiled_sql_sha256);
        assert_eq!(
            r.run.node(&m.unique_id).unwrap().compiled_sha256.as_deref(),
            Some(m.compiled_sql_sha256.as_str())
        );
    }
    // Without `replay`, no replay set.
    let plain = record(&t, Some(&log), &RecordContext::default()).unwrap();
    assert_eq!(plain.artifacts.len(), 3);
}

#[test]
fn the_same_files_give_the_same_bytes() {
    for name in ["build", "fail", "sigint", "sigterm"] {
        let ctx = RecordContext {
            replay: true,
            interrupted: name.starts_with("sig"),
            ..Default::default()
        };
        let (t1, l1) = scenario(name);
        let (t2, l2) = scenario(name);
        let a = record(&t1, Some(&l1), &ctx).unwrap();
        let b = record(&t2, Some(&l2), &ctx).unwrap();
        assert_eq!(a.artifacts, b.artifacts, "{name}");
        assert_eq!(a.events, b.events, "{name}");
        // run.json reads back to the same record and re-serializes to the same bytes.
        let run = dbt::RunRecord::from_json(&a.artifacts[0].bytes, "run.json").unwrap();
        assert_eq!(run, a.run);
        assert_eq!(run.to_canonical_json().unwrap(), a.artifacts[0].bytes);
        let lineage =
            dbt::lineage::Lineage::from_json(&a.artifacts[1].bytes, "lineage.json").unwrap();
        assert_eq!(lineage, a.lineage);
    }
}

#[test]
fn a_failing_test_makes_the_run_an_error() {
    let (t, log) = scenario("fail");
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    assert_eq!(r.run.status, RunStatus::Error);
    assert_eq!(r.run.counts["fail"], 1);
    assert_eq!(r.run.counts["skipped"], 3);
    let failed = r
        .run
        .node("test.clyra_fx.accepted_values_stg_orders_status.0b57f65c3f")
        .unwrap();
    assert_eq!(failed.status, "fail");
    assert_eq!(failed.failures, Some(2));
    // A skipped node has no timing; its event takes the run's end, never the clock.
    let skipped = r
        .events
        .iter()
        .find(|e| e.id.ends_with(":model.clyra_fx.customer_orders"))
        .unwrap();
    assert_eq!(skipped.body["status"], "skipped");
    assert_eq!(skipped.ts.map(|t| t.to_string()), r.run.finished_at.clone());
}

#[test]
fn sigint_keeps_the_partial_results_and_adds_the_cancelled_node_from_the_log() {
    let (t, log) = scenario("sigint");
    let rr = t.run_results.as_ref().unwrap();
    assert!(
        !rr.results
            .iter()
            .any(|r| r.unique_id == "model.clyra_fx.customer_orders"),
        "dbt leaves the cancelled node out of its partial run_results.json"
    );
    let ctx = RecordContext {
        interrupted: true,
        ..Default::default()
    };
    let r = record(&t, Some(&log), &ctx).unwrap();
    assert_eq!(r.run.status, RunStatus::Cancelled);
    assert!(r.run.interrupted);
    let cancelled = r.run.node("model.clyra_fx.customer_orders").unwrap();
    assert_eq!(cancelled.recorded_from.as_deref(), Some("log"));
    assert_eq!(cancelled.status, "error");
    let finished = r.events.last().unwrap();
    assert_eq!(finished.body["status"], "cancelled");
    assert_eq!(finished.body["interrupted"], true);
    assert!(r.events.iter().all(|e| e.ts <= finished.ts));
    // run_results.json is embedded byte for byte.
    let embedded = r
        .artifacts
        .iter()
        .find(|a| a.path == "dbt/run_results.json")
        .unwrap();
    assert_eq!(
        embedded.bytes,
        std::fs::read(fixtures().join("sigint/run_results.json")).unwrap()
    );
    // Without the log, the partial file alone.
    let r = record(&t, None, &ctx).unwrap();
    assert!(r.run.node("model.clyra_fx.customer_orders").is_none());
    assert_eq!(r.run.status, RunStatus::Cancelled);
}

#[test]
fn sigterm_is_recorded_from_the_log_alone() {
    let (t, log) = scenario("sigterm");
    assert!(t.run_results.is_none() && t.run_results_bytes.is_none());
    assert!(
        log.bad_lines <= 1,
        "at most the line cut by the kill: {}",
        log.bad_lines
    );
    let r = record(
        &t,
        Some(&log),
        &RecordContext {
            interrupted: true,
            command: Some("dbt build".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.run.source, dbt::record::RecordSource::Log);
    assert_eq!(r.run.status, RunStatus::Cancelled);
    assert_eq!(r.run.dbt.version.as_deref(), Some("1.11.16"));
    let not_finished: Vec<&str> = r
        .run
        .started_not_finished
        .iter()
        .map(|s| s.unique_id.as_str())
        .collect();
    assert_eq!(not_finished, vec!["model.clyra_fx.customer_orders"]);
    assert!(r.run.started_not_finished[0].started_at.is_some());
    let seed = r.run.node("seed.clyra_fx.raw_orders").unwrap();
    assert_eq!(seed.status, "success");
    assert_eq!(seed.rows_affected, Some(6));
    assert!(seed.checksum.is_some());
    assert!(r.artifacts.iter().all(|a| a.path != "dbt/run_results.json"));
    let finished = r.events.last().unwrap();
    assert_eq!(
        finished.body["nodes_started_not_finished"],
        serde_json::json!(["model.clyra_fx.customer_orders"])
    );
    // The same files, not known to be interrupted: partial.
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    assert_eq!(r.run.status, RunStatus::Partial);
    // Neither run_results.json nor a log: a clear error.
    let e = record(&t, None, &RecordContext::default()).unwrap_err();
    assert!(matches!(e, DbtError::NothingToRecord(_)), "{e}");
    assert!(e.to_string().contains("--log-format-file json"), "{e}");
}

#[test]
fn unknown_fields_are_ignored_and_unknown_major_versions_refused() {
    let bytes = std::fs::read(fixtures().join("build/run_results.json")).unwrap();
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["brand_new_member"] = serde_json::json!({"x": [1, 2]});
    v["results"][0]["another_new_member"] = serde_json::json!(true);
    v["metadata"]["added_later"] = serde_json::json!("x");
    let rr = RunResults::from_json(&serde_json::to_vec(&v).unwrap(), "rr.json").unwrap();
    assert_eq!(rr.results.len(), 10);

    v["metadata"]["dbt_schema_version"] =
        "https://schemas.getdbt.com/dbt/run-results/v7.json".into();
    let e = RunResults::from_json(&serde_json::to_vec(&v).unwrap(), "target/run_results.json")
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("target/run_results.json"), "{msg}");
    assert!(msg.contains("run-results/v7.json"), "{msg}");
    assert!(msg.contains("run-results v6"), "{msg}");
    v["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("dbt_schema_version");
    let e = RunResults::from_json(&serde_json::to_vec(&v).unwrap(), "rr.json").unwrap_err();
    assert!(e.to_string().contains("no dbt schema version"), "{e}");

    let bytes = std::fs::read(fixtures().join("build/manifest.json")).unwrap();
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["metadata"]["dbt_schema_version"] = "https://schemas.getdbt.com/dbt/manifest/v13.json".into();
    let e = Manifest::from_json(&serde_json::to_vec(&v).unwrap(), "manifest.json").unwrap_err();
    assert!(e.to_string().contains("manifest/v13.json"), "{e}");
    assert!(e.to_string().contains("manifest v12"), "{e}");
    assert_eq!(e.pointer(), Some("/metadata/dbt_schema_version"));

    // read_target names the file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec(&v).unwrap(),
    )
    .unwrap();
    let e = read_target(dir.path()).unwrap_err();
    assert!(
        e.to_string()
            .contains(&dir.path().join("manifest.json").display().to_string()),
        "{e}"
    );
}

#[test]
fn malformed_json_errors_name_file_line_column_and_pointer() {
    let text = std::fs::read_to_string(fixtures().join("build/run_results.json")).unwrap();
    // A wrong type deep inside: the pointer says where.
    let bad = text.replacen(
        "\"thread_id\": \"Thread-2 (worker)\"",
        "\"thread_id\": 7",
        1,
    );
    let e = RunResults::from_json(bad.as_bytes(), "run_results.json").unwrap_err();
    let DbtError::Json {
        file,
        line,
        column,
        pointer,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(file, "run_results.json");
    assert!(
        pointer.starts_with("/results/") && pointer.ends_with("/thread_id"),
        "{pointer}"
    );
    let expected_line = text
        .lines()
        .position(|l| l.contains("\"thread_id\": \"Thread-2 (worker)\""))
        .unwrap()
        + 1;
    assert_eq!(*line, expected_line);
    assert!(*column > 0);
    // Cut off: still an error with a location, never a panic.
    let cut = &text.as_bytes()[..text.len() / 2];
    let e = RunResults::from_json(cut, "run_results.json").unwrap_err();
    // dbt writes run_results.json on one line: the column says where.
    assert!(
        matches!(&e, DbtError::Json { line: 1, column, .. } if *column == cut.len()),
        "{e}"
    );
}

#[test]
fn the_log_counts_bad_lines_and_keeps_the_last_invocation() {
    let dir = fixtures();
    let build = std::fs::read(dir.join("build/dbt.log")).unwrap();
    let fail = std::fs::read(dir.join("fail/dbt.log")).unwrap();
    let clean = parse_log(&build);
    assert_eq!(clean.bad_lines, 0);
    assert_eq!(clean.finished.len(), 10);
    assert_eq!(clean.started.len(), 10);
    assert_eq!(clean.guard_decisions.len(), 1);
    let mut both = build.clone();
    both.extend_from_slice(b"garbage line\n{\"info\": {}}\n");
    both.extend_from_slice(&fail);
    both.extend_from_slice(b"{\"info\": {\"name\": \"NodeStart\", \"invocation_id\"");
    let s = parse_log(&both);
    assert_eq!(s.earlier_invocations, 1);
    assert_eq!(s.bad_lines, 3);
    assert_eq!(s.invocation_id, parse_log(&fail).invocation_id);
    assert!(
        s.guard_decisions.is_empty(),
        "the failing build never reached the guard"
    );
    // An earlier invocation's log is not used, and the record says so.
    let (t, _) = scenario("fail");
    let r = record(&t, Some(&parse_log(&build)), &RecordContext::default()).unwrap();
    assert!(
        r.run.guard_decisions.is_empty(),
        "the build log's decision is not taken"
    );
    assert_eq!(r.run.source, dbt::record::RecordSource::RunResults);
    assert!(
        r.run
            .notes
            .iter()
            .any(|n| n.contains("the log is of invocation")),
        "{:?}",
        r.run.notes
    );
}

#[test]
fn a_stale_run_results_is_not_mistaken_for_a_killed_run() {
    // dbt killed with SIGTERM in a reused target directory: run_results.json is still the
    // previous invocation's, the log and the manifest are the new one's.
    let (old, _) = scenario("build");
    let (mut t, log) = scenario("sigterm");
    t.run_results = old.run_results;
    t.run_results_bytes = old.run_results_bytes;
    let ctx = RecordContext {
        interrupted: true,
        ..Default::default()
    };
    let r = record(&t, Some(&log), &ctx).unwrap();
    assert_eq!(r.run.source, dbt::record::RecordSource::Log);
    assert_eq!(r.run.dbt.invocation_id, log.invocation_id.clone().unwrap());
    assert_eq!(r.run.started_not_finished.len(), 1);
    assert!(r.run.run_results_sha256.is_none());
    assert!(r.artifacts.iter().all(|a| a.path != "dbt/run_results.json"));
    assert!(
        r.run
            .notes
            .iter()
            .any(|n| n.contains("run_results.json is of invocation")),
        "{:?}",
        r.run.notes
    );
}

#[test]
fn trust_hints_on_real_runs() {
    let (t, log) = scenario("build");
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    let l = &r.lineage;
    assert!(l.from_manifest);
    for n in &l.nodes {
        assert_eq!(n.trust, Trust::Trusted, "{}: {}", n.unique_id, n.reason);
    }
    let ids: Vec<(&str, &str)> = l
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (
                "model.clyra_fx.customer_orders",
                "exposure.clyra_fx.revenue_dashboard"
            ),
            (
                "model.clyra_fx.stg_orders",
                "model.clyra_fx.customer_orders"
            ),
            ("seed.clyra_fx.raw_orders", "model.clyra_fx.stg_orders"),
            (
                "source.clyra_fx.payments_app.payments",
                "model.clyra_fx.stg_orders"
            ),
        ]
    );
    let src = l.node("source.clyra_fx.payments_app.payments").unwrap();
    assert_eq!(src.tests.len(), 2);
    assert!(
        src.reason.contains("marked trusted and validated"),
        "{}",
        src.reason
    );

    // The failing test taints its model and everything downstream, naming the origin.
    let (t, log) = scenario("fail");
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    let l = &r.lineage;
    let stg = l.node("model.clyra_fx.stg_orders").unwrap();
    assert_eq!(stg.trust, Trust::Tainted);
    assert!(
        stg.reason.contains("accepted_values_stg_orders_status"),
        "{}",
        stg.reason
    );
    assert_eq!(stg.tainted_by, None, "the origin");
    for id in [
        "model.clyra_fx.customer_orders",
        "exposure.clyra_fx.revenue_dashboard",
    ] {
        let n = l.node(id).unwrap();
        assert_eq!(n.trust, Trust::Tainted, "{id}");
        assert_eq!(
            n.tainted_by.as_deref(),
            Some("model.clyra_fx.stg_orders"),
            "{id}"
        );
        assert!(
            n.reason.contains("model.clyra_fx.stg_orders"),
            "{}",
            n.reason
        );
    }
    assert_eq!(
        l.node("seed.clyra_fx.raw_orders").unwrap().trust,
        Trust::Trusted,
        "upstream of the failure"
    );

    // SIGTERM: the interrupted model is unverified, so is the exposure on it.
    let (t, log) = scenario("sigterm");
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    let co = r.lineage.node("model.clyra_fx.customer_orders").unwrap();
    assert_eq!(co.status.as_deref(), Some("interrupted"));
    assert_eq!(co.trust, Trust::Unverified);
    assert_eq!(
        r.lineage
            .node("exposure.clyra_fx.revenue_dashboard")
            .unwrap()
            .trust,
        Trust::Unverified
    );
}

#[test]
fn a_source_without_the_trusted_mark_is_unverified_and_so_is_downstream() {
    let bytes = std::fs::read(fixtures().join("build/manifest.json")).unwrap();
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    let src = &mut v["sources"]["source.clyra_fx.payments_app.payments"];
    src["meta"] = serde_json::json!({});
    src["source_meta"] = serde_json::json!({});
    src["config"]["meta"] = serde_json::json!({});
    let (mut t, log) = scenario("build");
    t.manifest = Some(Manifest::from_json(&serde_json::to_vec(&v).unwrap(), "m.json").unwrap());
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    let l = &r.lineage;
    let s = l.node("source.clyra_fx.payments_app.payments").unwrap();
    assert_eq!(s.trust, Trust::Unverified);
    assert!(s.reason.contains("not marked trusted"), "{}", s.reason);
    let stg = l.node("model.clyra_fx.stg_orders").unwrap();
    assert_eq!(stg.trust, Trust::Unverified);
    assert!(
        stg.reason.contains("source.clyra_fx.payments_app.payments"),
        "{}",
        stg.reason
    );
    assert_eq!(
        l.node("seed.clyra_fx.raw_orders").unwrap().trust,
        Trust::Trusted
    );
}

fn with_guard_line(decision: Value) -> (TargetArtifacts, dbt::LogSummary) {
    let (t, _) = scenario("build");
    let mut text = std::fs::read(fixtures().join("build/dbt.log")).unwrap();
    let inv = t
        .run_results
        .as_ref()
        .unwrap()
        .metadata
        .invocation_id
        .clone()
        .unwrap();
    let line = serde_json::json!({
        "info": {"name": "JinjaLogInfo", "invocation_id": inv, "ts": "2026-12-02T09:38:18.5Z", "level": "info"},
        "data": {"msg": format!("clyra_guard.decision {decision}")}
    });
    text.extend_from_slice(format!("{line}\n").as_bytes());
    (t, parse_log(&text))
}

#[test]
fn a_blocked_or_unapproved_mass_write_taints_downstream() {
    let blocked = serde_json::json!({
        "macro": "safe_update", "model": "model.clyra_fx.stg_orders", "relation": "wt_a_fx.stg_orders",
        "rows_matched": 960, "rows_total": 1010, "percent": 95.05, "max_rows": 100, "max_percent": 10.0,
        "decision": "blocked"
    });
    let (t, log) = with_guard_line(blocked.clone());
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    let stg = r.lineage.node("model.clyra_fx.stg_orders").unwrap();
    assert_eq!(stg.trust, Trust::Tainted);
    assert!(stg.reason.contains("blocked safe_update"), "{}", stg.reason);
    assert!(stg.guard.contains(&"blocked".to_string()));
    let co = r.lineage.node("model.clyra_fx.customer_orders").unwrap();
    assert_eq!(co.trust, Trust::Tainted);
    assert_eq!(co.tainted_by.as_deref(), Some("model.clyra_fx.stg_orders"));
    let ev = r
        .events
        .iter()
        .find(|e| {
            e.id.ends_with(":dbt.guard.decision:model.clyra_fx.stg_orders:0")
        })
        .unwrap();
    assert_eq!(ev.body["decision"], "blocked");
    assert_eq!(ev.ts.unwrap().to_string(), "2026-12-02T09:38:18.5Z");

    // Over the threshold and let through without approval: tainted too.
    let mut shadow = blocked.clone();
    shadow["decision"] = "allowed".into();
    let (t, log) = with_guard_line(shadow);
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    let stg = r.lineage.node("model.clyra_fx.stg_orders").unwrap();
    assert_eq!(stg.trust, Trust::Tainted);
    assert!(
        stg.reason.contains("unapproved mass write"),
        "{}",
        stg.reason
    );

    // Approved with a token: not a taint.
    let mut approved = blocked;
    approved["decision"] = "approved".into();
    approved["token_id"] = "CHG-1234".into();
    let (t, log) = with_guard_line(approved);
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    let stg = r.lineage.node("model.clyra_fx.stg_orders").unwrap();
    assert_eq!(stg.trust, Trust::Trusted, "{}", stg.reason);
    assert!(stg.reason.contains("approved"), "{}", stg.reason);
    assert!(r
        .run
        .guard_decisions
        .iter()
        .any(|d| d["token_id"] == "CHG-1234"));
}

#[test]
fn without_a_manifest_the_run_is_still_recorded() {
    let (mut t, log) = scenario("build");
    t.manifest = None;
    t.manifest_bytes = None;
    let r = record(
        &t,
        Some(&log),
        &RecordContext {
            replay: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!r.lineage.from_manifest);
    assert!(r.lineage.edges.is_empty());
    assert_eq!(
        r.run
            .node("model.clyra_fx.stg_orders")
            .unwrap()
            .resource_type,
        "model"
    );
    assert!(
        r.run.notes.iter().any(|n| n.contains("no replay set")),
        "{:?}",
        r.run.notes
    );
}

fn schema(path: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(jsonschema::meta::is_valid(&schema), "{}", path.display());
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&schema)
        .unwrap()
}

#[test]
fn run_json_and_lineage_json_follow_their_schemas() {
    let run_schema = schema("spec/def/dbt-run.schema.json");
    let lineage_schema = schema("spec/def/dbt-lineage.schema.json");
    for name in ["build", "fail", "sigint", "sigterm"] {
        let (t, log) = scenario(name);
        for interrupted in [false, true] {
            let r = record(
                &t,
                Some(&log),
                &RecordContext {
                    interrupted,
                    replay: true,
                    ..Default::default()
                },
            )
            .unwrap();
            for (v, bytes) in [
                (&run_schema, &r.artifacts[0].bytes),
                (&lineage_schema, &r.artifacts[1].bytes),
            ] {
                let doc: Value = serde_json::from_slice(bytes).unwrap();
                let errors: Vec<String> = v
                    .iter_errors(&doc)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "{name}: {errors:#?}");
            }
        }
    }
    // The schemas do refuse what is wrong.
    let (t, log) = scenario("build");
    let r = record(&t, Some(&log), &RecordContext::default()).unwrap();
    let mut doc: Value = serde_json::from_slice(&r.artifacts[0].bytes).unwrap();
    doc["status"] = "fine".into();
    assert!(!run_schema.is_valid(&doc));
    let mut doc: Value = serde_json::from_slice(&r.artifacts[1].bytes).unwrap();
    doc["nodes"][0]["trust"] = "probably".into();
    assert!(!lineage_schema.is_valid(&doc));
}

/// The fuzz targets' invariants (canonical documents that read back the same, journal-safe event
/// ids, determinism, renderings that never panic) on the real fixtures.
#[test]
fn the_fuzz_invariants_hold_on_the_fixtures() {
    for name in ["build", "fail", "sigint", "sigterm"] {
        let dir = fixtures().join(name);
        let mut both = std::fs::read(dir.join("run_results.json")).unwrap_or_default();
        both.extend_from_slice(b"\n\0\n");
        both.extend_from_slice(&std::fs::read(dir.join("manifest.json")).unwrap());
        clyra_warehouse::fuzz_hooks::dbt_artifacts(&both);
        clyra_warehouse::fuzz_hooks::dbt_log(&std::fs::read(dir.join("dbt.log")).unwrap());
    }
}

mod mutations {
    use super::*;
    use proptest::prelude::*;

    fn bytes(name: &str, file: &str) -> Vec<u8> {
        std::fs::read(fixtures().join(name).join(file)).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Corrupted artifacts (bytes changed, cut, spliced) never panic a reader or record().
        #[test]
        fn corrupted_artifacts_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            which in 0usize..3,
        ) {
            let mut rr = bytes("build", "run_results.json");
            let mut m = bytes("build", "manifest.json");
            let target = match which { 0 => &mut rr, 1 => &mut m, _ => &mut rr };
            for (at, b) in &edits {
                let i = at.index(target.len());
                target[i] = *b;
            }
            if which == 2 {
                let keep = cut.index(rr.len());
                rr.truncate(keep);
            }
            let _ = RunResults::from_json(&rr, "rr.json");
            let _ = Manifest::from_json(&m, "m.json");
            let mut both = rr.clone();
            both.extend_from_slice(b"\n\0\n");
            both.extend_from_slice(&m);
            clyra_warehouse::fuzz_hooks::dbt_artifacts(&both);
        }

        /// A corrupted log (lines changed, cut anywhere) never panics; bad lines are counted.
        #[test]
        fn corrupted_logs_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut log = bytes("sigterm", "dbt.log");
            for (at, b) in &edits {
                let i = at.index(log.len());
                log[i] = *b;
            }
            log.truncate(cut.index(log.len()) + 1);
            let s = parse_log(&log);
            prop_assert!(s.bad_lines <= s.lines);
            clyra_warehouse::fuzz_hooks::dbt_log(&log);
        }
    }
}
