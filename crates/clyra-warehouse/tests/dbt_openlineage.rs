//! OpenLineage export of recorded dbt runs: every event validates against the published
//! OpenLineage 2-0-2 JSON Schema (spec/vendor/openlineage/OpenLineage.json, formats checked) and
//! the `clyra_evidence` facet against Clyra's facet schema; the facet's digests and signatures
//! are the bundle's; an unverified bundle is never read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clyra_evidence::bundle::{BundleBuilder, Governance, Kind, Producer, VerifyOptions};
use clyra_evidence::keys::{Algorithm, PrivateKey, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_warehouse::dbt::bundle::{load, BundleError};
use clyra_warehouse::dbt::openlineage::{self, Options, FACET_NAME};
use clyra_warehouse::dbt::{read_log, read_target, record, RecordContext, Recorded};
use serde_json::{json, Map, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dbt")
}

fn recorded(name: &str, interrupted: bool) -> Recorded {
    let dir = fixtures().join(name);
    let t = read_target(&dir).unwrap();
    let log = read_log(&dir.join("dbt.log")).unwrap();
    record(
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

fn validator(path: &Path) -> jsonschema::Validator {
    let schema: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(jsonschema::meta::is_valid(&schema), "{}", path.display());
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&schema)
        .unwrap()
}

fn openlineage_schema() -> jsonschema::Validator {
    let path = repo().join("spec/vendor/openlineage/OpenLineage.json");
    let bytes = std::fs::read(&path).unwrap();
    // The vendored file is the published 2-0-2 schema, unmodified (README.md beside it).
    assert_eq!(bytes.len(), 9155);
    assert_eq!(
        clyra_evidence::Digest::sha256(&bytes).to_hex(),
        "69f68bee00b9beac88a87059c0102410e7bb05f3f43c46d02a0409831eceb0d2"
    );
    validator(&path)
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// A signed DEF bundle of a recorded run, built with the kernel's builder, and a trust store
/// holding its key.
fn bundle(r: &Recorded) -> (Vec<u8>, TrustStore) {
    let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let mut b = BundleBuilder::new(
        Kind::Def,
        "def-acme-dbt-1",
        "2026-12-02T10:00:00Z".parse().unwrap(),
        Producer {
            name: "clyra".into(),
            version: "0.1.0".into(),
        },
        Governance {
            tenant: "acme".into(),
            environment: "test".into(),
            run_id: "dbt-1".into(),
            actors: vec!["dbt@ci".into()],
        },
    );
    let events: Vec<Value> = r
        .events
        .iter()
        .map(|e| {
            let mut m: Map<String, Value> = e.body.as_object().cloned().unwrap();
            m.insert("kind".into(), json!(e.kind));
            m.insert("ts".into(), json!(e.ts.unwrap().to_string()));
            m.insert("run_id".into(), json!("dbt-1"));
            Value::Object(m)
        })
        .collect();
    b.chain_events(events).unwrap();
    for a in &r.artifacts {
        b.artifact(&a.path, a.bytes.clone(), a.media_type.clone())
            .unwrap();
    }
    b.derive_predicate();
    let signers: [&dyn Signer; 1] = [&key];
    let zip = b.build(&signers).unwrap().into_zip_bytes();
    let mut trust = TrustStore::new();
    trust
        .add(
            key.public_key().clone(),
            "2020-01-01T00:00:00Z".parse().unwrap(),
            None,
            None,
        )
        .unwrap();
    (zip, trust)
}

fn export(name: &str, interrupted: bool) -> (Vec<Value>, Vec<u8>) {
    let r = recorded(name, interrupted);
    let (zip, trust) = bundle(&r);
    let loaded = load(
        &zip,
        "run.def.zip",
        &VerifyOptions::new(&trust, jiff::Timestamp::now()),
    )
    .unwrap();
    assert_eq!(loaded.run, r.run);
    assert_eq!(loaded.lineage, r.lineage);
    let opts = Options {
        dataset_namespace: Some("postgres://127.0.0.1:5432".into()),
        evidence: Some(loaded.evidence.clone()),
        ..Default::default()
    };
    let events = openlineage::events(&loaded.run, &loaded.lineage, &opts).unwrap();
    (events, zip)
}

#[test]
fn every_event_validates_against_the_published_schema() {
    let ol = openlineage_schema();
    let facet = validator(&repo().join("spec/openlineage/clyra-evidence-facet.json"));
    let mut total = 0;
    for (name, interrupted) in [
        ("build", false),
        ("fail", false),
        ("sigint", true),
        ("sigterm", true),
    ] {
        let (events, zip) = export(name, interrupted);
        assert!(!events.is_empty(), "{name}");
        for e in &events {
            let errs = errors(&ol, e);
            assert!(errs.is_empty(), "{name}: {errs:#?}\n{e:#}");
            let f = &e["run"]["facets"][FACET_NAME];
            let errs = errors(&facet, f);
            assert!(errs.is_empty(), "{name}: {errs:#?}\n{f:#}");
            assert_eq!(
                f["bundle_sha256"],
                clyra_evidence::Digest::sha256(&zip).to_hex()
            );
            assert_eq!(f["bundle_id"], "def-acme-dbt-1");
        }
        total += events.len();
    }
    assert!(total >= 20, "{total}");
    // The schema does reject what is wrong.
    let (events, _) = export("build", false);
    let mut bad = events[0].clone();
    bad["run"]["runId"] = json!("not-a-uuid");
    assert!(!errors(&ol, &bad).is_empty());
    let mut bad = events[0].clone();
    bad["eventTime"] = json!("yesterday");
    assert!(!errors(&ol, &bad).is_empty());
    let mut bad = events[0]["run"]["facets"][FACET_NAME].clone();
    bad["bundle_sha256"] = json!("XYZ");
    assert!(!errors(&facet, &bad).is_empty());
}

#[test]
fn one_start_and_one_end_per_node_with_the_right_outcome() {
    let by_run = |events: &[Value]| {
        let mut m: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
        for e in events {
            m.entry(e["job"]["name"].as_str().unwrap().to_string())
                .or_default()
                .push((
                    e["eventType"].as_str().unwrap().to_string(),
                    e["eventTime"].as_str().unwrap().to_string(),
                    e["run"]["runId"].as_str().unwrap().to_string(),
                ));
        }
        m
    };
    let (events, _) = export("build", false);
    let runs = by_run(&events);
    assert_eq!(
        runs.keys().collect::<Vec<_>>(),
        vec![
            "model.clyra_fx.customer_orders",
            "model.clyra_fx.stg_orders",
            "seed.clyra_fx.raw_orders"
        ]
    );
    for (job, evs) in &runs {
        assert_eq!(evs.len(), 2, "{job}");
        assert_eq!(evs[0].0, "START");
        assert_eq!(evs[1].0, "COMPLETE");
        assert!(evs[0].1 <= evs[1].1, "{job}: START before its end");
        assert_eq!(evs[0].2, evs[1].2, "{job}: one run id");
    }
    let stg: Vec<&Value> = events
        .iter()
        .filter(|e| e["job"]["name"] == "model.clyra_fx.stg_orders")
        .collect();
    let names = |k: &str| -> Vec<String> {
        stg[0][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert_eq!(d["namespace"], "postgres://127.0.0.1:5432");
                d["name"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(
        names("inputs"),
        vec!["test.wt_a_fx.raw_orders", "test.wt_a_fx_raw.payments"]
    );
    assert_eq!(names("outputs"), vec!["test.wt_a_fx.stg_orders"]);
    assert_eq!(stg[0]["job"]["facets"]["jobType"]["jobType"], "MODEL");
    let parent = &stg[0]["run"]["facets"]["parent"];
    assert_eq!(parent["job"]["name"], "dbt-run-clyra_fx");

    // SIGINT: the cancelled model failed (dbt logged its error); SIGTERM: it was aborted.
    let (events, _) = export("sigint", true);
    let co = by_run(&events)["model.clyra_fx.customer_orders"].clone();
    assert_eq!(co[1].0, "FAIL");
    let fail = events.iter().find(|e| e["eventType"] == "FAIL").unwrap();
    assert!(fail["run"]["facets"]["errorMessage"]["message"]
        .as_str()
        .unwrap()
        .contains("customer_orders"));
    let (events, _) = export("sigterm", true);
    let co = by_run(&events)["model.clyra_fx.customer_orders"].clone();
    assert_eq!(
        co.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        vec!["START", "ABORT"]
    );
    // The same bundle gives the same events.
    let (a, _) = export("build", false);
    let r = recorded("build", false);
    let b = openlineage::events(
        &r.run,
        &r.lineage,
        &Options {
            dataset_namespace: Some("postgres://127.0.0.1:5432".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let strip = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .cloned()
            .map(|mut e| {
                e["run"]["facets"]
                    .as_object_mut()
                    .unwrap()
                    .remove(FACET_NAME);
                e
            })
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
}

#[test]
fn the_facet_carries_the_bundles_statement_and_signatures() {
    let r = recorded("build", false);
    let (zip, trust) = bundle(&r);
    let loaded = load(
        &zip,
        "b.zip",
        &VerifyOptions::new(&trust, jiff::Timestamp::now()),
    )
    .unwrap();
    let ev = &loaded.evidence;
    assert_eq!(ev.signatures.len(), 1);
    // The statement digest and signature are those of attestation.dsse.json.
    let mut zr = clyra_evidence::zipstore::ZipReader::open(
        std::io::Cursor::new(&zip[..]),
        clyra_evidence::zipstore::Limits::default(),
    )
    .unwrap();
    let i = zr.find("attestation.dsse.json").unwrap();
    let env: Value = serde_json::from_slice(&zr.read_entry(i, 1 << 20).unwrap()).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        ev.statement_sha256,
        clyra_evidence::Digest::sha256(&payload).to_hex()
    );
    assert_eq!(ev.signatures[0].sig, env["signatures"][0]["sig"]);
    assert_eq!(ev.signatures[0].keyid, env["signatures"][0]["keyid"]);
}

#[test]
fn an_unverified_bundle_is_never_read() {
    let r = recorded("build", false);
    let (zip, trust) = bundle(&r);
    // Signed by a key the trust store does not hold.
    let stranger = TrustStore::new();
    let e = load(
        &zip,
        "b.zip",
        &VerifyOptions::new(&stranger, jiff::Timestamp::now()),
    )
    .unwrap_err();
    assert!(matches!(e, BundleError::Unverified { .. }), "{e}");
    // One byte of run.json changed (the stored ZIP holds it verbatim).
    let needle = br#""status":"success""#;
    let at = zip.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut tampered = zip.clone();
    tampered[at + 10] = b'S';
    let e = load(
        &tampered,
        "b.zip",
        &VerifyOptions::new(&trust, jiff::Timestamp::now()),
    )
    .unwrap_err();
    assert!(matches!(e, BundleError::Unverified { .. }), "{e}");
    assert!(e.to_string().contains("does not verify"), "{e}");
}
