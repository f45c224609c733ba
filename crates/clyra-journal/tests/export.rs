//! Bundles cut from the journal verify offline, on both stores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;

use clyra_evidence::bundle::{verify_zip_bytes, Kind, VerifyOptions};
use clyra_evidence::codes::Code;
use clyra_evidence::keys::{Algorithm, PrivateKey, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::Digest;
use clyra_journal::entry::{BodyPolicy, NewEvent};
use clyra_journal::export::{export, ExportError, ExportOptions, Selection};
use serde_json::json;
use support::Backend;

fn key() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

fn trust(keys: &[&PrivateKey]) -> TrustStore {
    let mut t = TrustStore::new();
    for k in keys {
        t.add(
            k.public_key().clone(),
            "2020-01-01T00:00:00Z".parse().unwrap(),
            None,
            None,
        )
        .unwrap();
    }
    t
}

fn dbt_event(run: &str, kind: &str, body: serde_json::Value) -> NewEvent {
    let mut e = NewEvent::new("acme", kind, body);
    e.run = Some(run.into());
    e.actor = Some("dbt@ci".into());
    e
}

/// Two interleaved dbt runs and some gateway noise.
fn record(b: &Backend) -> Box<dyn clyra_journal::Store> {
    let mut s = b.open();
    let mut events = Vec::new();
    for run in ["r1", "r2"] {
        events.push(dbt_event(
            run,
            "dbt.run.started",
            json!({"target": "prod", "adapter": "postgres"}),
        ));
    }
    events.push(NewEvent::new(
        "acme",
        "gateway.decision",
        json!({"tool": "sql", "decision": "allow"}),
    ));
    for (i, run) in ["r1", "r2", "r1"].iter().enumerate() {
        events.push(dbt_event(
            run,
            "dbt.model.finished",
            json!({"unique_id": format!("model.m{i}"), "status": "success"}),
        ));
    }
    for run in ["r1", "r2"] {
        events.push(dbt_event(
            run,
            "dbt.run.finished",
            json!({"status": "success"}),
        ));
    }
    s.append(&events, &BodyPolicy::Full).unwrap();
    s
}

fn opts<'a>(
    selection: Selection,
    signers: &'a [&'a dyn Signer],
    cp_key: &'a dyn Signer,
) -> ExportOptions<'a> {
    ExportOptions {
        tenant: "acme",
        selection,
        kind: Kind::Def,
        environment: "prod".into(),
        bundle_id: None,
        created_at: jiff::Timestamp::now(),
        signers,
        checkpoint_key: cp_key,
        log_name: "clyra.test/journal",
        artifacts: &[],
    }
}

fn run_export_verifies(b: Backend) {
    let k = key();
    let mut s = record(&b);
    let signers: [&dyn Signer; 1] = [&k];
    let bundle = export(s.as_mut(), &opts(Selection::Run("r1".into()), &signers, &k)).unwrap();
    let m = bundle.manifest();
    assert_eq!(m.format_version, "0.2");
    assert_eq!(m.journal.count, 4, "r1 has 4 entries");
    let report = verify_zip_bytes(
        bundle.zip_bytes(),
        &VerifyOptions::new(&trust(&[&k]), jiff::Timestamp::now()),
    );
    assert!(report.is_valid(), "{:?}", report.findings);
    // The predicate was derived from the entries' bodies.
    let pred = bundle_predicate(bundle.zip_bytes());
    assert_eq!(pred["dbt"]["models"].as_array().unwrap().len(), 2, "{pred}");
    assert_eq!(pred["run"]["status"], "success");

    // A second export reuses the stored checkpoint.
    let cps_before = s.checkpoints("acme").unwrap().len();
    export(s.as_mut(), &opts(Selection::Run("r2".into()), &signers, &k)).unwrap();
    assert_eq!(s.checkpoints("acme").unwrap().len(), cps_before);
}

fn bundle_predicate(zip: &[u8]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.zip");
    std::fs::write(&path, zip).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let env: serde_json::Value =
        serde_json::from_reader(archive.by_name("attestation.dsse.json").unwrap()).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    statement["predicate"].clone()
}

fn range_export_verifies(b: Backend) {
    let k = key();
    let mut s = record(&b);
    let now = jiff::Timestamp::now();
    let hour = jiff::SignedDuration::from_hours(1);
    let signers: [&dyn Signer; 1] = [&k];
    let bundle = export(
        s.as_mut(),
        &opts(
            Selection::Range {
                from: now - hour,
                to: now + hour,
            },
            &signers,
            &k,
        ),
    )
    .unwrap();
    assert_eq!(bundle.manifest().journal.count, 8);
    assert_eq!(bundle.manifest().journal.first_prev, Digest::ZERO);
    let report = verify_zip_bytes(bundle.zip_bytes(), &VerifyOptions::new(&trust(&[&k]), now));
    assert!(report.is_valid(), "{:?}", report.findings);
    let empty = export(
        s.as_mut(),
        &opts(
            Selection::Range {
                from: now + hour,
                to: now + hour + hour,
            },
            &signers,
            &k,
        ),
    );
    assert!(matches!(empty, Err(ExportError::Empty { .. })));
    assert!(matches!(
        export(
            s.as_mut(),
            &opts(Selection::Run("nope".into()), &signers, &k)
        ),
        Err(ExportError::Empty { .. })
    ));
}

fn checkpoint_from_an_untrusted_key_fails_verification(b: Backend) {
    let (k, log_key) = (key(), key());
    let mut s = record(&b);
    let signers: [&dyn Signer; 1] = [&k];
    let bundle = export(
        s.as_mut(),
        &opts(Selection::Run("r1".into()), &signers, &log_key),
    )
    .unwrap();
    let now = jiff::Timestamp::now();
    let report = verify_zip_bytes(bundle.zip_bytes(), &VerifyOptions::new(&trust(&[&k]), now));
    assert!(!report.is_valid());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == Code::CheckpointSignature),
        "{:?}",
        report.findings
    );
    let report = verify_zip_bytes(
        bundle.zip_bytes(),
        &VerifyOptions::new(&trust(&[&k, &log_key]), now),
    );
    assert!(report.is_valid(), "{:?}", report.findings);
}

fn tampered_journal_is_not_exported(b: Backend) {
    let k = key();
    let mut s = record(&b);
    clyra_journal::checkpoint::create(
        s.as_mut(),
        "acme",
        "clyra.test/journal",
        &k,
        jiff::Timestamp::now(),
    )
    .unwrap();
    drop(s);
    let text = String::from_utf8(b.entry_bytes("acme", 3))
        .unwrap()
        .replace("model.m0", "model.evil");
    b.set_entry_bytes("acme", 3, text.as_bytes());
    let mut s = b.open();
    let signers: [&dyn Signer; 1] = [&k];
    let err = export(s.as_mut(), &opts(Selection::Run("r1".into()), &signers, &k)).unwrap_err();
    assert!(matches!(err, ExportError::Inconsistent { .. }), "{err}");
}

fn tampered_journal_without_checkpoint_is_not_exported(b: Backend) {
    // No checkpoint yet, and the attacker fixes the edited entry's hash columns: the next entry's
    // link still gives it away.
    let k = key();
    drop(record(&b));
    let text = String::from_utf8(b.entry_bytes("acme", 3))
        .unwrap()
        .replace("model.m0", "model.evil");
    b.rewrite_entry("acme", 3, text.as_bytes(), false);
    let mut s = b.open();
    let signers: [&dyn Signer; 1] = [&k];
    let err = export(s.as_mut(), &opts(Selection::Run("r1".into()), &signers, &k)).unwrap_err();
    match err {
        ExportError::Inconsistent { seq, .. } => assert_eq!(seq, 4),
        other => panic!("{other}"),
    }
}

both!(
    run_export_verifies,
    range_export_verifies,
    checkpoint_from_an_untrusted_key_fails_verification,
    tampered_journal_is_not_exported,
    tampered_journal_without_checkpoint_is_not_exported,
);
