//! `clyra lineage show` and `clyra dbt openlineage` on DEF bundles cut from a real journal: the
//! dbt fixtures (crates/clyra-warehouse/tests/fixtures/dbt, real dbt output) recorded with
//! `clyra_warehouse::dbt::record`, their events appended to a SQLite journal, the bundle exported
//! with the recorded artifacts, as `clyra run` does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use clyra_evidence::bundle::Kind;
use clyra_evidence::keys::{Algorithm, PrivateKey, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_journal::entry::{BodyPolicy, NewEvent};
use clyra_journal::export::{export, ExportArtifact, ExportOptions, Selection};
use clyra_journal::sqlite::SqliteStore;
use clyra_journal::Store as _;
use clyra_warehouse::dbt::{self, RecordContext, Recorded};
use predicates::prelude::*;
use serde_json::Value;

fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clyra-warehouse/tests/fixtures/dbt")
}

fn recorded(name: &str, interrupted: bool) -> Recorded {
    let dir = fixtures().join(name);
    let t = dbt::read_target(&dir).unwrap();
    let log = dbt::read_log(&dir.join("dbt.log")).unwrap();
    dbt::record(
        &t,
        Some(&log),
        &RecordContext {
            interrupted,
            replay: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn new_events(r: &Recorded, run: &str) -> Vec<NewEvent> {
    r.events
        .iter()
        .map(|e| {
            let mut n = NewEvent::new("acme", e.kind.clone(), e.body.clone());
            n.ts = e.ts;
            n.id = Some(e.id.clone());
            n.run = Some(run.into());
            n.actor = Some("dbt@ci".into());
            n
        })
        .collect()
}

/// Journals the run, exports its bundle to `d/run.def.zip` and writes `d/trust.json`.
fn bundle(d: &Path, r: &Recorded) {
    let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let mut store = SqliteStore::open(&d.join("journal")).unwrap();
    let receipts = store
        .append(&new_events(r, "run-1"), &BodyPolicy::Full)
        .unwrap();
    assert!(receipts.iter().all(|x| !x.duplicate));
    // Ingesting the same files again appends nothing: the ids come from the artifacts.
    let again = store
        .append(&new_events(r, "run-1"), &BodyPolicy::Full)
        .unwrap();
    assert!(
        again.iter().all(|x| x.duplicate),
        "re-ingest appended something"
    );
    let artifacts: Vec<ExportArtifact> = r
        .artifacts
        .iter()
        .map(|a| ExportArtifact {
            path: a.path.clone(),
            bytes: a.bytes.clone(),
            media_type: a.media_type.clone(),
        })
        .collect();
    let signers: [&dyn Signer; 1] = [&key];
    let b = export(
        &mut store,
        &ExportOptions {
            tenant: "acme",
            selection: Selection::Run("run-1".into()),
            kind: Kind::Def,
            environment: "test".into(),
            bundle_id: None,
            created_at: jiff::Timestamp::now(),
            signers: &signers,
            checkpoint_key: &key,
            log_name: "clyra.test/journal",
            artifacts: &artifacts,
        },
    )
    .unwrap();
    b.write_zip(&d.join("run.def.zip")).unwrap();
    let mut trust = TrustStore::new();
    trust
        .add(
            key.public_key().clone(),
            "2020-01-01T00:00:00Z".parse().unwrap(),
            None,
            None,
        )
        .unwrap();
    std::fs::write(d.join("trust.json"), trust.to_json_pretty().unwrap()).unwrap();
}

fn show(d: &Path) -> Command {
    let mut c = clyra();
    c.current_dir(d).args([
        "lineage",
        "show",
        "--bundle",
        "run.def.zip",
        "--trust",
        "trust.json",
    ]);
    c
}

#[test]
fn lineage_show_reads_a_verified_bundle() {
    let d = tempfile::tempdir().unwrap();
    let r = recorded("fail", false);
    bundle(d.path(), &r);
    // The bundle verifies with `clyra verify`, and its derived predicate holds the dbt run.
    clyra()
        .current_dir(d.path())
        .args(["verify", "run.def.zip", "--trust", "trust.json"])
        .assert()
        .success();
    let out = show(d.path())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(out).unwrap(), r.lineage.to_text_tree());
    let out = show(d.path())
        .args(["--as", "dot"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(out).unwrap(), r.lineage.to_dot());
    let out = show(d.path())
        .args(["--as", "svg"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(out).unwrap(), r.lineage.to_svg());
    for args in [vec!["--as", "json"], vec!["--format", "json"]] {
        let out = show(d.path())
            .args(&args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["format"], "clyra.dbt.lineage/v1", "{args:?}");
        assert_eq!(
            v["nodes"].as_array().unwrap().len(),
            r.lineage.nodes.len(),
            "{args:?}"
        );
    }
    // From the target directory directly, the same lineage.
    let f = fixtures().join("fail");
    clyra()
        .args(["lineage", "show", "--target-path"])
        .arg(&f)
        .arg("--log")
        .arg(f.join("dbt.log"))
        .assert()
        .success()
        .stdout(r.lineage.to_text_tree());
}

#[test]
fn an_unverified_bundle_is_refused_with_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let r = recorded("build", false);
    bundle(d.path(), &r);
    let zip = std::fs::read(d.path().join("run.def.zip")).unwrap();
    let needle = br#""trust":"trusted""#;
    let at = zip.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut bad = zip.clone();
    bad[at + 9] = b'T';
    std::fs::write(d.path().join("tampered.def.zip"), &bad).unwrap();
    for cmd in [
        vec![
            "lineage",
            "show",
            "--bundle",
            "tampered.def.zip",
            "--trust",
            "trust.json",
        ],
        vec![
            "dbt",
            "openlineage",
            "--bundle",
            "tampered.def.zip",
            "--trust",
            "trust.json",
        ],
    ] {
        clyra()
            .current_dir(d.path())
            .args(&cmd)
            .assert()
            .code(2)
            .stdout(predicate::str::contains("does not verify"))
            .stdout(predicate::str::contains("never read"));
    }
    // A trust file without the signer's key: refused too.
    std::fs::write(
        d.path().join("other.json"),
        TrustStore::new().to_json_pretty().unwrap(),
    )
    .unwrap();
    let out = clyra()
        .current_dir(d.path())
        .args([
            "--format",
            "json",
            "lineage",
            "show",
            "--bundle",
            "run.def.zip",
            "--trust",
            "other.json",
        ])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert!(!v["verification"]["findings"].as_array().unwrap().is_empty());
    // A bundle needs its trust file.
    clyra()
        .current_dir(d.path())
        .args(["lineage", "show", "--bundle", "run.def.zip"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--trust"));
}

#[test]
fn dbt_openlineage_writes_ndjson_with_the_evidence_facet() {
    let d = tempfile::tempdir().unwrap();
    let r = recorded("sigterm", true);
    bundle(d.path(), &r);
    let zip = std::fs::read(d.path().join("run.def.zip")).unwrap();
    let zip_sha = clyra_evidence::Digest::sha256(&zip).to_hex();
    let out = clyra()
        .current_dir(d.path())
        .args([
            "dbt",
            "openlineage",
            "--bundle",
            "run.def.zip",
            "--trust",
            "trust.json",
        ])
        .args([
            "--namespace",
            "ci",
            "--dataset-namespace",
            "postgres://db:5432",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // seed and stg_orders finished, customer_orders was killed: 3 runs, 6 events.
    assert_eq!(events.len(), 6, "{text}");
    let types: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["job"]["name"].as_str().unwrap(),
                e["eventType"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        types.contains(&("model.clyra_fx.customer_orders", "ABORT")),
        "{types:?}"
    );
    assert!(
        types.contains(&("seed.clyra_fx.raw_orders", "COMPLETE")),
        "{types:?}"
    );
    for e in &events {
        assert_eq!(e["job"]["namespace"], "ci");
        let f = &e["run"]["facets"]["clyra_evidence"];
        assert_eq!(f["bundle_sha256"], zip_sha.as_str());
        assert_eq!(f["signatures"].as_array().unwrap().len(), 1);
        assert_eq!(
            f["_schemaURL"],
            "https://clyra.dev/spec/openlineage/clyra-evidence-facet.json"
        );
        for ds in e["outputs"].as_array().unwrap() {
            assert_eq!(ds["namespace"], "postgres://db:5432");
        }
    }
    // To a file, with a summary; never over an existing file.
    clyra()
        .current_dir(d.path())
        .args([
            "dbt",
            "openlineage",
            "--bundle",
            "run.def.zip",
            "--trust",
            "trust.json",
        ])
        .args([
            "--namespace",
            "ci",
            "--dataset-namespace",
            "postgres://db:5432",
        ])
        .args(["--out", "events.ndjson"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "wrote 6 OpenLineage events (3 node runs)",
        ));
    assert_eq!(
        std::fs::read_to_string(d.path().join("events.ndjson")).unwrap(),
        text
    );
    clyra()
        .current_dir(d.path())
        .args([
            "dbt",
            "openlineage",
            "--bundle",
            "run.def.zip",
            "--trust",
            "trust.json",
        ])
        .args(["--out", "events.ndjson"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("refusing to overwrite"));
}

#[test]
fn help_texts_have_examples() {
    for cmd in [
        vec!["lineage", "show", "--help"],
        vec!["dbt", "openlineage", "--help"],
    ] {
        clyra()
            .args(&cmd)
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"))
            .stdout(predicate::str::contains("--trust trust.json"));
    }
}
