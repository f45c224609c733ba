#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Evidence bundles end to end: build, verify (ZIP and directory), determinism, the container's
//! exact bytes, and one test per forgery or malformation, each asserting the exact codes.

#[path = "support/bundle_forge.rs"]
mod forge;

use clyra_evidence::bundle::{
    inspect_path, verify_path, verify_zip_bytes, ArtifactRef, BundleBuilder, BundleError, Kind,
    Limits, Report, SlaOp, Verdict, VerifyError, ATTESTATION_PATH, JOURNAL_PATH, MANIFEST_PATH,
};
use clyra_evidence::codes::Code;
use clyra_evidence::dsse::{self, Envelope};
use clyra_evidence::keys::{Algorithm, PrivateKey, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::{jcs, zipstore, Digest};
use forge::*;
use serde_json::{json, Value};

fn verify(f: &Fixture, bytes: &[u8]) -> Report {
    verify_zip_bytes(bytes, &f.options())
}

#[track_caller]
fn assert_codes(report: &Report, want: &[Code]) {
    assert_eq!(report.codes(), want, "findings: {:#?}", report.findings);
    let valid = want.iter().all(|c| !c.is_error());
    assert_eq!(report.is_valid(), valid, "verdict: {:?}", report.verdict);
}

/// Unpacks a freshly built DEF bundle, lets `change` alter it, and re-packs it without re-signing.
fn tampered(f: &Fixture, change: impl FnOnce(&mut Contents)) -> Vec<u8> {
    let mut c = unzip(&def_bundle(f));
    change(&mut c);
    rezip(&c)
}

// ------------------------------------------------------------------------------------------------
// Round trips

#[test]
fn def_bundle_round_trips_as_zip() {
    let f = Fixture::new();
    let bundle = def_builder("run-1").build(&f.signers()).unwrap();
    let report = verify(&f, bundle.zip_bytes());
    assert_codes(&report, &[]);
    assert_eq!(report.verdict, Verdict::Valid);
    assert_eq!(report.format.as_deref(), Some("clyra-def"));
    assert_eq!(report.format_version.as_deref(), Some("0.1"));
    assert_eq!(report.bundle_id.as_deref(), Some("def-run-1"));
    assert_eq!(report.created_at.as_deref(), Some("2026-11-24T10:00:00Z"));
    let s = &report.summary;
    assert_eq!(s.entries, Some(6));
    assert_eq!((s.first_seq, s.last_seq), (Some(0), Some(5)));
    assert_eq!(s.files, 2);
    assert_eq!(s.anchors, 2);
    assert_eq!(s.signers, [f.key.key_id()]);
    assert_eq!(
        s.predicate_type.as_deref(),
        Some(Kind::Def.predicate_type())
    );
    assert_eq!(s.merkle_root, Some(bundle.manifest().merkle.root));
    assert_eq!(s.journal_head, Some(bundle.manifest().journal.head));

    // The JSON report has the spec's shape.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["verdict"], "valid");
    assert_eq!(json["checked_at"], "2026-11-24T12:00:00Z");
    assert_eq!(json["findings"], json!([]));
    assert_eq!(json["summary"]["signers"][0], f.key.key_id().to_hex());
}

#[test]
fn pef_bundle_round_trips_as_zip() {
    let f = Fixture::new();
    let bundle = pef_builder().build(&f.signers()).unwrap();
    let report = verify(&f, bundle.zip_bytes());
    assert_codes(&report, &[]);
    assert_eq!(report.format.as_deref(), Some("clyra-pef"));
    assert_eq!(report.summary.entries, Some(4));
    assert_eq!(report.summary.anchors, 0);

    let c = unzip(bundle.zip_bytes());
    let envelope = Envelope::from_json(&c[ATTESTATION_PATH]).unwrap();
    let statement = jcs::parse_strict(&envelope.payload).unwrap();
    let p = &statement["predicate"];
    assert_eq!(
        p["decisions"],
        json!({"allow": 1, "repair": 0, "block": 1, "require_approval": 1})
    );
    assert_eq!(p["automation"]["id"], "support-copilot");
    assert_eq!(p["approvals"][0]["seq"], 2);
    assert_eq!(p["tool_calls"].as_array().unwrap().len(), 3);
    assert_eq!(p["metrics"]["entries"], 4);
    assert_eq!(p["metrics"]["payload_bytes"], c[JOURNAL_PATH].len() as u64);
}

#[test]
fn both_kinds_round_trip_as_files_and_directories() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    for (name, builder) in [("def", def_builder("run-1")), ("pef", pef_builder())] {
        let bundle = builder.build(&f.signers()).unwrap();
        let zip_path = tmp.path().join(format!("{name}.zip"));
        bundle.write_zip(&zip_path).unwrap();
        assert_eq!(std::fs::read(&zip_path).unwrap(), bundle.zip_bytes());
        let report = verify_path(&zip_path, &f.options()).unwrap();
        assert_codes(&report, &[]);
        assert_eq!(report.bundle.as_deref(), Some(zip_path.to_str().unwrap()));

        let dir = tmp.path().join(name);
        bundle.write_dir(&dir).unwrap();
        assert_eq!(
            std::fs::read(dir.join(MANIFEST_PATH)).unwrap(),
            unzip(bundle.zip_bytes())[MANIFEST_PATH]
        );
        assert_codes(&verify_path(&dir, &f.options()).unwrap(), &[]);

        // Never over an existing file or directory.
        assert!(matches!(
            bundle.write_zip(&zip_path),
            Err(BundleError::Exists(_))
        ));
        assert!(matches!(
            bundle.write_dir(&dir),
            Err(BundleError::Exists(_))
        ));
    }
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn identical_inputs_give_identical_bytes() {
    let ed = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let p256 = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let signers: [&dyn Signer; 2] = [&ed, &p256];
    let one = def_builder("run-1").build(&signers).unwrap();
    let two = def_builder("run-1").build(&signers).unwrap();
    assert_eq!(one.zip_bytes(), two.zip_bytes());
    assert_eq!(one, two);

    let mut later = def_builder("run-1");
    later.record_generation_time(false);
    assert_eq!(later.build(&signers).unwrap().zip_bytes(), one.zip_bytes());

    let other = BundleBuilder::new(
        Kind::Def,
        "def-run-1",
        ts("2026-11-24T10:00:01Z"),
        producer(),
        governance("run-1"),
    );
    let mut other = other;
    other.chain_events(def_events("run-1")).unwrap();
    other
        .artifact(
            "dbt/run_results.json",
            br#"{"results":[]}"#.to_vec(),
            "application/json",
        )
        .unwrap();
    assert_ne!(other.build(&signers).unwrap().zip_bytes(), one.zip_bytes());
}

#[test]
fn container_bytes_are_the_canonical_encoding() {
    let f = Fixture::new();
    let bytes = def_bundle(&f);
    let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let le32 =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);

    // Entries sorted by path; the first local header is at offset 0.
    let entries = central_entries(&bytes);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "artifacts/dbt/run_results.json",
            ATTESTATION_PATH,
            JOURNAL_PATH,
            MANIFEST_PATH
        ]
    );
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    assert_eq!(le16(4), 20, "version needed");
    assert_eq!(le16(6), 0x0800, "flags: utf-8 names only");
    assert_eq!(le16(8), 0, "stored");
    assert_eq!((le16(10), le16(12)), (0, 0x0021), "1980-01-01 00:00:00");
    assert_eq!(le16(28), 0, "no extra field");
    for (_, at) in &entries {
        let at = *at;
        assert_eq!(le32(at), 0x0201_4b50);
        assert_eq!(le16(at + 4), 0x0314, "made by unix, 2.0");
        assert_eq!(le16(at + 8), 0x0800);
        assert_eq!(le16(at + 10), 0, "stored");
        assert_eq!((le16(at + 12), le16(at + 14)), (0, 0x0021));
        assert_eq!(
            (le16(at + 30), le16(at + 32)),
            (0, 0),
            "no extra, no comment"
        );
        assert_eq!(le32(at + 38), 0o100_644 << 16, "regular file 0644");
    }
    let eocd = bytes.len() - 22;
    assert_eq!(le32(eocd), 0x0605_4b50);
    assert_eq!(le16(eocd + 20), 0, "no archive comment");
}

#[test]
fn a_standard_zip_reader_sees_the_same_files() {
    let f = Fixture::new();
    let bundle = def_builder("run-1").build(&f.signers()).unwrap();
    let c = unzip(bundle.zip_bytes());
    assert_eq!(c.len(), 4);
    let manifest = bundle.manifest();
    for file in &manifest.files {
        assert_eq!(Digest::sha256(&c[&file.path]), file.sha256, "{}", file.path);
    }
    // Re-packing what a standard reader extracted gives back the same bytes.
    assert_eq!(rezip(&c), bundle.zip_bytes());
}

#[test]
fn inspect_summarizes_without_verifying() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.zip");
    def_builder("run-1")
        .build(&f.signers())
        .unwrap()
        .write_zip(&path)
        .unwrap();
    let i = inspect_path(&path).unwrap();
    assert_eq!(i.format.as_deref(), Some("clyra-def"));
    assert_eq!(i.bundle_id.as_deref(), Some("def-run-1"));
    assert_eq!(i.manifest.as_ref().unwrap().journal.count, 6);
    assert_eq!(i.anchors.len(), 2);
    assert_eq!(i.anchors[0]["value"], "0/3A2B5C8");
    assert_eq!(i.signer_hints, [f.key.key_id().to_hex()]);
    assert_eq!(i.contents.len(), 4);
    assert!(i.problems.is_empty(), "{:?}", i.problems);
    assert!(inspect_path(&tmp.path().join("missing.zip")).is_err());
    std::fs::write(tmp.path().join("junk.zip"), b"junk").unwrap();
    assert!(inspect_path(&tmp.path().join("junk.zip")).is_err());
}

// ------------------------------------------------------------------------------------------------
// Builder

#[test]
fn builder_computes_metrics_and_sla_flags() {
    let f = Fixture::new();
    let mut b = def_builder("run-1");
    b.sla("entries", SlaOp::Le, 10.0)
        .sla("payload_bytes", SlaOp::Ge, 1e9)
        .sla("latency_ms.p95", SlaOp::Le, 250.0);
    let mut p = b.derived_predicate().unwrap();
    p["metrics"] = json!({"latency_ms": {"p50": 20, "p95": 300, "p99": 900}, "generation_ms": 5});
    b.predicate(p).unwrap().record_generation_time(true);
    let bundle = b.build(&f.signers()).unwrap();
    assert_codes(&verify(&f, bundle.zip_bytes()), &[]);
    let c = unzip(bundle.zip_bytes());
    let statement =
        jcs::parse_strict(&Envelope::from_json(&c[ATTESTATION_PATH]).unwrap().payload).unwrap();
    let p = &statement["predicate"];
    assert_eq!(p["metrics"]["entries"], 6);
    assert!(p["metrics"]["generation_ms"].is_u64());
    assert_eq!(p["metrics"]["latency_ms"]["p95"], 300);
    let met: Vec<bool> = p["sla"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["met"].as_bool().unwrap())
        .collect();
    assert_eq!(met, [true, false, false]);
    assert_eq!(p["sla"][2]["value"], 300);

    let mut unknown = def_builder("run-1");
    unknown.sla("nope", SlaOp::Le, 1.0);
    assert!(matches!(
        unknown.build(&f.signers()),
        Err(BundleError::SlaMetric(m)) if m == "nope"
    ));
}

#[test]
fn builder_refuses_what_a_verifier_would_reject() {
    let f = Fixture::new();
    let mut b = def_builder("run-1");
    // A break in the chain.
    let mut entry = json!({"seq": 9, "prev": Digest::ZERO.to_hex(), "ts": "2026-11-24T09:01:00Z",
                           "kind": "dbt.run.finished"});
    assert!(matches!(
        b.push_entry(entry.clone()),
        Err(BundleError::ChainBroken { index: 6, .. })
    ));
    entry["seq"] = json!(6);
    assert!(matches!(
        b.push_entry(entry),
        Err(BundleError::ChainBroken { index: 6, .. })
    ));
    // Entries need the four members.
    assert!(matches!(
        b.chain_events([json!({"ts": "2026-11-24T09:01:00Z"})]),
        Err(BundleError::InvalidEntry { .. })
    ));
    assert!(matches!(
        b.chain_events([json!({"ts": "2026-11-24T09:01:00+01:00", "kind": "x"})]),
        Err(BundleError::InvalidEntry { .. })
    ));
    assert!(matches!(
        b.resume_from(5, Digest::ZERO),
        Err(BundleError::ChainStarted)
    ));
    // Unsafe and duplicate artifact paths.
    for bad in ["../x", "/x", "a\\b", "a//b", "C:/x", ""] {
        assert!(
            matches!(
                b.artifact(bad, vec![], "text/plain"),
                Err(BundleError::InvalidPath { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        b.artifact("dbt/run_results.json", vec![], "application/json"),
        Err(BundleError::Duplicate(_))
    ));
    let external = ArtifactRef {
        name: "../x".into(),
        uri: "s3://b/x".into(),
        size: 1,
        media_type: "text/plain".into(),
        sha256: Digest::ZERO,
    };
    assert!(matches!(
        b.external_artifact(external),
        Err(BundleError::InvalidPath { .. })
    ));
    // The chain is still intact and the bundle builds.
    assert_codes(&verify(&f, b.build(&f.signers()).unwrap().zip_bytes()), &[]);

    // A bad bundle id or media type is refused at build.
    let mut bad_id = BundleBuilder::new(
        Kind::Def,
        "bad id!",
        ts("2026-11-24T10:00:00Z"),
        producer(),
        governance("r"),
    );
    bad_id.chain_events(def_events("r")).unwrap();
    assert!(matches!(
        bad_id.build(&f.signers()),
        Err(BundleError::Manifest(_))
    ));
    let mut bad_type = def_builder("r");
    bad_type.artifact("x", vec![1], "not a media type").unwrap();
    assert!(matches!(
        bad_type.build(&f.signers()),
        Err(BundleError::Manifest(_))
    ));
    // A predicate that breaks its schema is refused.
    let mut bad_pred = def_builder("r");
    bad_pred
        .predicate(json!({"run": {}, "anchors": []}))
        .unwrap();
    assert!(matches!(
        bad_pred.build(&f.signers()),
        Err(BundleError::Predicate(_))
    ));
    // No entries, no bundle.
    let empty = BundleBuilder::new(
        Kind::Pef,
        "e",
        ts("2026-11-24T10:00:00Z"),
        producer(),
        governance("r"),
    );
    assert!(matches!(
        empty.build(&f.signers()),
        Err(BundleError::NoEntries)
    ));
}

#[test]
fn a_segment_can_continue_an_existing_journal() {
    let f = Fixture::new();
    let first = def_builder("run-1");
    let head = first.build(&f.signers()).unwrap().manifest().journal.head;
    let mut b = BundleBuilder::new(
        Kind::Def,
        "def-run-1-part-2",
        ts("2026-11-24T11:00:00Z"),
        producer(),
        governance("run-1"),
    );
    b.resume_from(6, head).unwrap();
    b.chain_events(def_events("run-1")).unwrap();
    let bundle = b.build(&f.signers()).unwrap();
    assert_eq!(bundle.manifest().journal.first_seq, 6);
    assert_eq!(bundle.manifest().journal.first_prev, head);
    assert_codes(&verify(&f, bundle.zip_bytes()), &[]);
}

// ------------------------------------------------------------------------------------------------
// Signatures and the envelope (§5)

#[test]
fn bad_signature() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let mut env = Envelope::from_json(&c[ATTESTATION_PATH]).unwrap();
        env.signatures[0].sig[10] ^= 0x01;
        c.insert(
            ATTESTATION_PATH.into(),
            jcs::canonicalize(env.to_json().as_bytes()).unwrap(),
        );
    });
    assert_codes(&verify(&f, &bytes), &[Code::Signature]);
}

#[test]
fn untrusted_key() {
    let f = Fixture::new();
    let stranger = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let signers: [&dyn Signer; 1] = [&stranger];
    let bytes = def_builder("run-1")
        .build(&signers)
        .unwrap()
        .into_zip_bytes();
    assert_codes(&verify(&f, &bytes), &[Code::KeyNotTrusted]);
}

#[test]
fn expired_key() {
    let f = Fixture::new();
    let mut trust = TrustStore::new();
    trust
        .add(
            f.key.public_key().clone(),
            ts("2025-01-01T00:00:00Z"),
            Some(ts("2026-06-01T00:00:00Z")),
            None,
        )
        .unwrap();
    let report = verify_zip_bytes(
        &def_bundle(&f),
        &clyra_evidence::bundle::VerifyOptions::new(&trust, f.at),
    );
    assert_codes(&report, &[Code::KeyExpired]);
}

#[test]
fn signature_over_the_payload_instead_of_pae() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let mut env = Envelope::from_json(&c[ATTESTATION_PATH]).unwrap();
        env.signatures[0].sig = f.key.sign(&env.payload).unwrap();
        c.insert(
            ATTESTATION_PATH.into(),
            jcs::canonicalize(env.to_json().as_bytes()).unwrap(),
        );
    });
    assert_codes(&verify(&f, &bytes), &[Code::Signature]);
}

#[test]
fn payload_type_swapped() {
    let f = Fixture::new();
    // Swapped after signing: PAE binds the type, so the signature no longer verifies.
    let bytes = tampered(&f, |c| {
        let mut env = Envelope::from_json(&c[ATTESTATION_PATH]).unwrap();
        env.payload_type = "application/json".into();
        c.insert(
            ATTESTATION_PATH.into(),
            jcs::canonicalize(env.to_json().as_bytes()).unwrap(),
        );
    });
    assert_codes(&verify(&f, &bytes), &[Code::Signature]);
    // Validly signed under another type: the type itself is refused.
    let bytes = tampered(&f, |c| {
        let env = Envelope::from_json(&c[ATTESTATION_PATH]).unwrap();
        let signers: [&dyn Signer; 1] = [&f.key];
        let other = dsse::sign("application/json", &env.payload, &signers).unwrap();
        c.insert(
            ATTESTATION_PATH.into(),
            jcs::canonicalize(other.to_json().as_bytes()).unwrap(),
        );
    });
    assert_codes(&verify(&f, &bytes), &[Code::PayloadType]);
}

#[test]
fn reencoded_base64_is_not_canonical() {
    use base64::Engine as _;
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let mut env: Value = jcs::parse_strict(&c[ATTESTATION_PATH]).unwrap();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let standard = env["payload"].as_str().unwrap().to_owned();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(&standard)
            .unwrap();
        let url_safe = engine.encode(&payload);
        assert_ne!(url_safe, standard, "the re-encoding must differ");
        env["payload"] = json!(url_safe);
        c.insert(
            ATTESTATION_PATH.into(),
            jcs::canonicalize_value(&env).unwrap(),
        );
    });
    assert_codes(&verify(&f, &bytes), &[Code::NotCanonical]);
}

#[test]
fn fewer_signers_than_the_threshold() {
    let f = Fixture::new();
    let mut options = f.options();
    options.threshold = 2;
    assert_codes(
        &verify_zip_bytes(&def_bundle(&f), &options),
        &[Code::Threshold],
    );
    options.threshold = 0;
    assert_codes(
        &verify_zip_bytes(&def_bundle(&f), &options),
        &[Code::Threshold],
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.zip");
    std::fs::write(&path, def_bundle(&f)).unwrap();
    assert!(matches!(
        verify_path(&path, &options),
        Err(VerifyError::ZeroThreshold)
    ));
}

#[test]
fn two_signers_meet_a_threshold_of_two() {
    let f = Fixture::new();
    let second = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let mut trust = f.trust.clone();
    trust
        .add(
            second.public_key().clone(),
            ts("2026-01-01T00:00:00Z"),
            None,
            None,
        )
        .unwrap();
    let signers: [&dyn Signer; 2] = [&f.key, &second];
    let bytes = def_builder("run-1")
        .build(&signers)
        .unwrap()
        .into_zip_bytes();
    let mut options = clyra_evidence::bundle::VerifyOptions::new(&trust, f.at);
    options.threshold = 2;
    let report = verify_zip_bytes(&bytes, &options);
    assert_codes(&report, &[]);
    assert_eq!(report.summary.signers.len(), 2);
}

#[test]
fn manifest_changed_without_resigning() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let mut m = manifest(c);
        m["created_at"] = json!("2020-01-01T00:00:00Z");
        set_manifest(c, &m);
    });
    assert_codes(&verify(&f, &bytes), &[Code::SubjectMismatch]);
}

#[test]
fn statement_for_the_other_format() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        restate(c, &f.key, |s| {
            s["predicateType"] = json!(Kind::Pef.predicate_type())
        });
    });
    assert_codes(&verify(&f, &bytes), &[Code::SubjectMismatch]);
    let bytes = tampered(&f, |c| {
        restate(c, &f.key, |s| {
            s["subject"].as_array_mut().unwrap().pop();
        });
    });
    assert_codes(&verify(&f, &bytes), &[Code::SubjectMismatch]);
}

#[test]
fn predicate_violations_are_schema_findings() {
    let f = Fixture::new();
    // An SLA flag that lies.
    let mut b = def_builder("run-1");
    b.sla("entries", SlaOp::Le, 3.0);
    let mut c = unzip(b.build(&f.signers()).unwrap().zip_bytes());
    restate(&mut c, &f.key, |s| {
        s["predicate"]["sla"][0]["met"] = json!(true)
    });
    assert_codes(&verify(&f, &rezip(&c)), &[Code::Schema]);
    // A metric that lies.
    let bytes = tampered(&f, |c| {
        restate(c, &f.key, |s| {
            s["predicate"]["metrics"]["entries"] = json!(60)
        });
    });
    assert_codes(&verify(&f, &bytes), &[Code::Schema]);
    // An unknown member in a closed object.
    let bytes = tampered(&f, |c| {
        restate(c, &f.key, |s| s["predicate"]["run"]["extra"] = json!(1));
    });
    assert_codes(&verify(&f, &bytes), &[Code::Schema]);
    // An anchor naming an entry outside the segment.
    let bytes = tampered(&f, |c| {
        restate(c, &f.key, |s| {
            s["predicate"]["anchors"][0]["seq"] = json!(99)
        });
    });
    assert_codes(&verify(&f, &bytes), &[Code::Schema]);
    // The dbt object is open: unknown members are allowed there.
    let bytes = tampered(&f, |c| {
        restate(c, &f.key, |s| s["predicate"]["dbt"]["threads"] = json!(8));
    });
    assert_codes(&verify(&f, &bytes), &[]);
}

#[test]
fn pef_tool_call_outside_the_segment() {
    let f = Fixture::new();
    let mut c = unzip(pef_builder().build(&f.signers()).unwrap().zip_bytes());
    restate(&mut c, &f.key, |s| {
        s["predicate"]["tool_calls"][1]["seq"] = json!(4)
    });
    assert_codes(&verify(&f, &rezip(&c)), &[Code::Schema]);
}

// ------------------------------------------------------------------------------------------------
// The manifest (§3, §4)

#[test]
fn non_canonical_manifest() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let pretty = serde_json::to_vec_pretty(&manifest(c)).unwrap();
        c.insert(MANIFEST_PATH.into(), pretty);
        resign(c, &f.key);
    });
    assert_codes(&verify(&f, &bytes), &[Code::NotCanonical]);
}

#[test]
fn duplicate_key_in_manifest() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let text = String::from_utf8(c[MANIFEST_PATH].clone()).unwrap();
        let forged = text.replacen(
            "{\"bundle_id\":",
            "{\"bundle_id\":\"forged\",\"bundle_id\":",
            1,
        );
        assert_ne!(forged, text);
        c.insert(MANIFEST_PATH.into(), forged.into_bytes());
        resign(c, &f.key);
    });
    assert_codes(&verify(&f, &bytes), &[Code::Json]);
}

#[test]
fn lone_surrogate_in_manifest() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let text = String::from_utf8(c[MANIFEST_PATH].clone()).unwrap();
        let forged = text.replacen("\"tenant\":\"acme\"", "\"tenant\":\"acme\\ud800\"", 1);
        assert_ne!(forged, text);
        c.insert(MANIFEST_PATH.into(), forged.into_bytes());
        resign(c, &f.key);
    });
    assert_codes(&verify(&f, &bytes), &[Code::Json]);
}

#[test]
fn big_integer_in_a_journal_entry() {
    let f = Fixture::new();
    let mut c = unzip(&def_bundle(&f));
    let mut l = lines(&c);
    let last = String::from_utf8(l[5].clone()).unwrap();
    l[5] = last
        .replacen("{", "{\"amount\":9007199254740993,", 1)
        .into_bytes();
    set_lines(&mut c, &l);
    assert_codes(
        &verify(&f, &repack_resigned(c, &f.key, false)),
        &[Code::Json],
    );
}

#[test]
fn manifest_schema_violation() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let mut m = manifest(c);
        m["extra"] = json!(true);
        set_manifest(c, &m);
        resign(c, &f.key);
    });
    assert_codes(&verify(&f, &bytes), &[Code::Schema]);
    // Rules beyond the schema: files sorted, the journal listed.
    let bytes = tampered(&f, |c| {
        let mut m = manifest(c);
        m["files"].as_array_mut().unwrap().reverse();
        set_manifest(c, &m);
        resign(c, &f.key);
    });
    assert_codes(&verify(&f, &bytes), &[Code::Schema]);
}

#[test]
fn unknown_versions() {
    let f = Fixture::new();
    for version in ["1.0", "0.3", "0.10", "0.2.0"] {
        let bytes = tampered(&f, |c| {
            let mut m = manifest(c);
            m["format_version"] = json!(version);
            set_manifest(c, &m);
            resign(c, &f.key);
        });
        assert_codes(&verify(&f, &bytes), &[Code::UnknownVersion]);
    }
    // 0.2 only adds optional members: a 0.1 bundle relabelled 0.2 is a valid 0.2 bundle.
    let bytes = tampered(&f, |c| {
        let mut m = manifest(c);
        m["format_version"] = json!("0.2");
        set_manifest(c, &m);
        resign(c, &f.key);
    });
    assert_codes(&verify(&f, &bytes), &[]);
}

// ------------------------------------------------------------------------------------------------
// Files and the Merkle root (§4, §4.1)

#[test]
fn file_digest_changed() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let a = c.get_mut("artifacts/dbt/run_results.json").unwrap();
        a[2] = b'R';
    });
    let report = verify(&f, &bytes);
    assert_codes(&report, &[Code::DigestMismatch]);
    assert_eq!(
        report.findings[0].path.as_deref(),
        Some("artifacts/dbt/run_results.json")
    );
}

#[test]
fn file_size_changed() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        c.get_mut("artifacts/dbt/run_results.json")
            .unwrap()
            .push(b' ');
    });
    assert_codes(&verify(&f, &bytes), &[Code::SizeMismatch]);
}

#[test]
fn merkle_root_altered() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let mut m = manifest(c);
        m["merkle"]["root"] = json!(Digest::sha256(b"forged").to_hex());
        set_manifest(c, &m);
        resign(c, &f.key);
    });
    assert_codes(&verify(&f, &bytes), &[Code::MerkleRoot]);
}

#[test]
fn missing_manifest_attestation_or_file() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        c.remove(MANIFEST_PATH);
    });
    assert_codes(&verify(&f, &bytes), &[Code::MissingFile]);
    let bytes = tampered(&f, |c| {
        c.remove(ATTESTATION_PATH);
    });
    assert_codes(&verify(&f, &bytes), &[Code::MissingFile]);
    let bytes = tampered(&f, |c| {
        c.remove("artifacts/dbt/run_results.json");
    });
    assert_codes(&verify(&f, &bytes), &[Code::MissingFile]);
}

#[test]
fn unlisted_files() {
    let f = Fixture::new();
    for extra in ["artifacts/extra.txt", "Journal.ndjson", "notes.txt"] {
        let bytes = tampered(&f, |c| {
            c.insert(extra.into(), b"x".to_vec());
        });
        let report = verify(&f, &bytes);
        assert_codes(&report, &[Code::UnlistedFile]);
        assert_eq!(report.findings[0].path.as_deref(), Some(extra));
    }
}

// ------------------------------------------------------------------------------------------------
// The journal (§6)

#[test]
fn entry_removed() {
    let f = Fixture::new();
    // Without re-signing: the file, the chain and the entries root all disagree.
    let bytes = tampered(&f, |c| {
        let mut l = lines(c);
        l.remove(2);
        set_lines(c, &l);
    });
    assert_codes(
        &verify(&f, &bytes),
        &[Code::SizeMismatch, Code::ChainBroken, Code::MerkleRoot],
    );
    // With every summary recomputed and re-signed, the links still give it away.
    let mut c = unzip(&def_bundle(&f));
    let mut l = lines(&c);
    l.remove(2);
    set_lines(&mut c, &l);
    let report = verify(&f, &repack_resigned(c, &f.key, true));
    assert_codes(&report, &[Code::ChainBroken]);
    assert!(
        report.findings[0].message.contains("seq 3"),
        "{}",
        report.findings[0].message
    );
}

#[test]
fn entries_reordered() {
    let f = Fixture::new();
    let mut c = unzip(&def_bundle(&f));
    let mut l = lines(&c);
    l.swap(1, 2);
    set_lines(&mut c, &l);
    assert_codes(
        &verify(&f, &repack_resigned(c, &f.key, true)),
        &[Code::ChainBroken],
    );
}

#[test]
fn chain_spliced_from_another_bundle() {
    let f = Fixture::new();
    let other = unzip(
        &def_builder("run-2")
            .build(&f.signers())
            .unwrap()
            .into_zip_bytes(),
    );
    let mut c = unzip(&def_bundle(&f));
    let mut l = lines(&c);
    l[3] = lines(&other)[3].clone();
    set_lines(&mut c, &l);
    let report = verify(&f, &repack_resigned(c, &f.key, true));
    assert_codes(&report, &[Code::ChainBroken]);
    assert!(
        report.findings[0].message.contains("seq 3"),
        "{}",
        report.findings[0].message
    );
}

#[test]
fn entry_altered() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let mut l = lines(c);
        let text = String::from_utf8(l[2].clone()).unwrap();
        l[2] = text.replace("18422", "18423").into_bytes();
        set_lines(c, &l);
    });
    assert_codes(
        &verify(&f, &bytes),
        &[Code::DigestMismatch, Code::ChainBroken, Code::MerkleRoot],
    );
}

#[test]
fn journal_lines_must_be_canonical_and_framed() {
    let f = Fixture::new();
    // A re-formatted line: the chain uses canonical bytes, so only the form is wrong.
    let mut c = unzip(&def_bundle(&f));
    let mut l = lines(&c);
    let pretty = serde_json::to_vec_pretty(&jcs::parse_strict(&l[1]).unwrap()).unwrap();
    l[1] = pretty.into_iter().filter(|b| *b != b'\n').collect();
    set_lines(&mut c, &l);
    assert_codes(
        &verify(&f, &repack_resigned(c, &f.key, false)),
        &[Code::NotCanonical],
    );
    // No final newline.
    let mut c = unzip(&def_bundle(&f));
    c.get_mut(JOURNAL_PATH).unwrap().pop();
    assert_codes(
        &verify(&f, &repack_resigned(c, &f.key, false)),
        &[Code::Json],
    );
    // A blank line.
    let mut c = unzip(&def_bundle(&f));
    c.get_mut(JOURNAL_PATH).unwrap().push(b'\n');
    assert_codes(
        &verify(&f, &repack_resigned(c, &f.key, false)),
        &[Code::Json],
    );
    // A missing `kind`.
    let mut c = unzip(&def_bundle(&f));
    let mut m = manifest(&c);
    let mut l = lines(&c);
    let mut last: Value = jcs::parse_strict(&l[5]).unwrap();
    last.as_object_mut().unwrap().remove("kind");
    l[5] = jcs::canonicalize_value(&last).unwrap();
    set_lines(&mut c, &l);
    refresh_journal(&mut m, &c);
    set_manifest(&mut c, &m);
    assert_codes(
        &verify(&f, &repack_resigned(c, &f.key, false)),
        &[Code::Schema],
    );
}

#[test]
fn journal_starting_at_seq_0_must_start_from_zero() {
    let f = Fixture::new();
    let bytes = tampered(&f, |c| {
        let mut m = manifest(c);
        m["journal"]["first_prev"] = json!(Digest::sha256(b"x").to_hex());
        set_manifest(c, &m);
        resign(c, &f.key);
    });
    let report = verify(&f, &bytes);
    assert_codes(&report, &[Code::ChainBroken, Code::ChainBroken]);
}

// ------------------------------------------------------------------------------------------------
// External artifacts (§7)

fn with_external(f: &Fixture, bytes: &[u8]) -> Vec<u8> {
    let mut b = def_builder("run-1");
    b.external_artifact(ArtifactRef {
        name: "orders.parquet".into(),
        uri: "s3://acme-lake/finance/orders.parquet".into(),
        size: bytes.len() as u64,
        media_type: "application/vnd.apache.parquet".into(),
        sha256: Digest::sha256(bytes),
    })
    .unwrap();
    b.build(&f.signers()).unwrap().into_zip_bytes()
}

#[test]
fn external_artifacts_checked_when_supplied() {
    let f = Fixture::new();
    let data = b"PAR1 rows PAR1".to_vec();
    let bundle = with_external(&f, &data);
    // Not supplied: a warning, still valid.
    let report = verify(&f, &bundle);
    assert_codes(&report, &[Code::ArtifactNotChecked]);
    assert_eq!(report.verdict, Verdict::Valid);

    let dir = tempfile::tempdir().unwrap();
    let mut options = f.options();
    options.artifacts_dir = Some(dir.path());
    // Supplied directory without the file: still not checked.
    assert_codes(
        &verify_zip_bytes(&bundle, &options),
        &[Code::ArtifactNotChecked],
    );
    // Supplied and matching.
    std::fs::write(dir.path().join("orders.parquet"), &data).unwrap();
    assert_codes(&verify_zip_bytes(&bundle, &options), &[]);
    // Swapped for other bytes of the same size, and of another size.
    std::fs::write(dir.path().join("orders.parquet"), b"PAR1 ROWS PAR1").unwrap();
    assert_codes(
        &verify_zip_bytes(&bundle, &options),
        &[Code::ArtifactMismatch],
    );
    std::fs::write(dir.path().join("orders.parquet"), b"PAR1").unwrap();
    assert_codes(
        &verify_zip_bytes(&bundle, &options),
        &[Code::ArtifactMismatch],
    );
    // A missing artifacts directory is an error outside the bundle.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.zip");
    std::fs::write(&path, &bundle).unwrap();
    let missing = tmp.path().join("nope");
    options.artifacts_dir = Some(&missing);
    assert!(matches!(
        verify_path(&path, &options),
        Err(VerifyError::ArtifactsDir { .. })
    ));
}

// ------------------------------------------------------------------------------------------------
// The container (§2)

#[test]
fn path_traversal_entry() {
    let f = Fixture::new();
    let mut c = unzip(&def_bundle(&f));
    c.insert("aa/evil".into(), b"x".to_vec());
    let mut bytes = rezip(&c);
    replace_all(&mut bytes, b"aa/evil", b"../evil");
    assert_codes(&verify(&f, &bytes), &[Code::UnsafePath]);
}

#[test]
fn symlink_entry() {
    let f = Fixture::new();
    let mut c = unzip(&def_bundle(&f));
    c.insert("artifacts/link".into(), b"/etc/passwd".to_vec());
    let mut bytes = rezip(&c);
    let (_, at) = central_entries(&bytes)
        .into_iter()
        .find(|(n, _)| n == "artifacts/link")
        .unwrap();
    bytes[at + 38..at + 42].copy_from_slice(&(0o120_777u32 << 16).to_le_bytes());
    assert_codes(&verify(&f, &bytes), &[Code::LinkEntry]);
}

#[test]
fn oversized_entries() {
    let f = Fixture::new();
    let bytes = def_bundle(&f);
    let journal_len = unzip(&bytes)[JOURNAL_PATH].len() as u64;
    let mut options = f.options();
    options.limits = Limits {
        max_entry_bytes: journal_len - 1,
        ..Limits::default()
    };
    assert_codes(&verify_zip_bytes(&bytes, &options), &[Code::TooLarge]);
    options.limits = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    assert_codes(&verify_zip_bytes(&bytes, &options), &[Code::TooLarge]);
    options.limits = Limits {
        max_total_bytes: journal_len,
        ..Limits::default()
    };
    assert_codes(&verify_zip_bytes(&bytes, &options), &[Code::TooLarge]);
    options.limits = Limits {
        max_document_bytes: 100,
        ..Limits::default()
    };
    assert_codes(
        &verify_zip_bytes(&bytes, &options),
        &[Code::TooLarge, Code::TooLarge],
    );
    options.limits = Limits {
        max_line_bytes: 100,
        ..Limits::default()
    };
    assert_codes(&verify_zip_bytes(&bytes, &options), &[Code::TooLarge]);
}

#[test]
fn garbage_and_truncated_archives() {
    let f = Fixture::new();
    assert_codes(&verify(&f, b""), &[Code::Archive]);
    assert_codes(&verify(&f, &[0x5a; 4096]), &[Code::Archive]);
    let bytes = def_bundle(&f);
    for cut in [bytes.len() / 2, bytes.len() - 1, 22, 30] {
        assert_codes(&verify(&f, &bytes[..cut]), &[Code::Archive]);
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"trailing");
    assert_codes(&verify(&f, &longer), &[Code::Archive]);
}

/// The stored data of `name` in a canonical container.
fn data_offset(bytes: &[u8], name: &str) -> usize {
    let (_, cd) = central_entries(bytes)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap();
    let local = u32::from_le_bytes([
        bytes[cd + 42],
        bytes[cd + 43],
        bytes[cd + 44],
        bytes[cd + 45],
    ]);
    local as usize + 30 + name.len()
}

#[test]
fn a_container_fault_found_while_reading_is_the_only_finding() {
    // §2.2: container findings are fatal; the verifier reports the first and reads nothing else,
    // even when the fault (a CRC-32 mismatch) only shows once an entry has been read.
    let f = Fixture::new();
    // A CRC fault in the journal and an unlisted file: only the CRC fault.
    let mut c = unzip(&def_bundle(&f));
    c.insert("artifacts/debug.log".into(), b"x".to_vec());
    let mut bytes = rezip(&c);
    let at = data_offset(&bytes, JOURNAL_PATH) + 10;
    bytes[at] ^= 0x01;
    let report = verify(&f, &bytes);
    assert_codes(&report, &[Code::Archive]);
    assert_eq!(report.findings[0].path.as_deref(), Some(JOURNAL_PATH));
    // A CRC fault in the manifest and a broken signature: only the CRC fault.
    let mut bytes = tampered(&f, |c| {
        let mut env = Envelope::from_json(&c[ATTESTATION_PATH]).unwrap();
        env.signatures[0].sig[0] ^= 0x01;
        c.insert(
            ATTESTATION_PATH.into(),
            jcs::canonicalize(env.to_json().as_bytes()).unwrap(),
        );
    });
    let at = data_offset(&bytes, MANIFEST_PATH) + 10;
    bytes[at] ^= 0x01;
    let report = verify(&f, &bytes);
    assert_codes(&report, &[Code::Archive]);
    assert_eq!(report.findings[0].path.as_deref(), Some(MANIFEST_PATH));
    // A CRC fault in an artifact hides the digest mismatch it causes.
    let mut bytes = def_bundle(&f);
    let at = data_offset(&bytes, "artifacts/dbt/run_results.json") + 2;
    bytes[at] ^= 0x01;
    assert_codes(&verify(&f, &bytes), &[Code::Archive]);
}

#[test]
fn any_other_zip_encoding_is_refused() {
    let f = Fixture::new();
    let c = unzip(&def_bundle(&f));
    // The same files written by a general ZIP library.
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, data) in &c {
            w.start_file(name.as_str(), options).unwrap();
            std::io::Write::write_all(&mut w, data).unwrap();
        }
        w.finish().unwrap();
    }
    assert_codes(&verify(&f, out.get_ref()), &[Code::Archive]);
    // A flipped bit in the journal's data: its CRC-32 no longer matches.
    let mut bytes = def_bundle(&f);
    let at = bytes
        .windows(b"dbt.model.finished".len())
        .position(|w| w == b"dbt.model.finished")
        .unwrap();
    bytes[at] ^= 0x20;
    let report = verify(&f, &bytes);
    assert_codes(&report, &[Code::Archive]);
    assert_eq!(report.findings[0].path.as_deref(), Some(JOURNAL_PATH));
    // A deflate method byte on one entry.
    let mut bytes = def_bundle(&f);
    let (_, at) = central_entries(&bytes)[0].clone();
    bytes[at + 10] = 8;
    assert_codes(&verify(&f, &bytes), &[Code::Archive]);
}

#[test]
fn every_byte_of_a_bundle_matters() {
    use proptest::prelude::*;
    let f = Fixture::new();
    let bytes = pef_builder().build(&f.signers()).unwrap().into_zip_bytes();
    let len = bytes.len();
    let config = ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    };
    proptest!(config, |(at in 0..len, flip in 1u8..=255)| {
        let mut m = bytes.clone();
        m[at] ^= flip;
        let report = verify(&f, &m);
        prop_assert_eq!(report.verdict, Verdict::Invalid, "byte {} ^ {:#x}", at, flip);
    });
}

// ------------------------------------------------------------------------------------------------
// The directory form (§2.3)

#[test]
fn directory_form_negatives() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let bundle = def_builder("run-1").build(&f.signers()).unwrap();
    let dir = tmp.path().join("b");
    bundle.write_dir(&dir).unwrap();

    std::fs::write(dir.join("stray.txt"), b"x").unwrap();
    assert_codes(
        &verify_path(&dir, &f.options()).unwrap(),
        &[Code::UnlistedFile],
    );
    std::fs::remove_file(dir.join("stray.txt")).unwrap();

    std::fs::write(
        dir.join("artifacts/dbt/run_results.json"),
        br#"{"results":[1]}"#,
    )
    .unwrap();
    assert_codes(
        &verify_path(&dir, &f.options()).unwrap(),
        &[Code::SizeMismatch],
    );

    #[cfg(unix)]
    {
        std::fs::remove_file(dir.join("artifacts/dbt/run_results.json")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("artifacts/dbt/run_results.json"))
            .unwrap();
        assert_codes(
            &verify_path(&dir, &f.options()).unwrap(),
            &[Code::LinkEntry],
        );
    }

    assert!(matches!(
        verify_path(&tmp.path().join("missing"), &f.options()),
        Err(VerifyError::Io { .. })
    ));
}

#[test]
fn a_large_journal_streams() {
    let f = Fixture::new();
    let mut b = BundleBuilder::new(
        Kind::Pef,
        "big",
        ts("2026-11-24T10:00:00Z"),
        producer(),
        governance("big"),
    );
    let events = (0..5_000).map(|i| {
        json!({"ts": "2026-11-24T09:00:00Z", "kind": "gateway.decision", "tool": format!("t{i}"),
               "decision": "allow", "actor": {"type": "agent", "id": "a"}})
    });
    b.chain_events(events).unwrap();
    let bundle = b.build(&f.signers()).unwrap();
    let report = verify(&f, bundle.zip_bytes());
    assert_codes(&report, &[]);
    assert_eq!(report.summary.entries, Some(5_000));
    // Check that the canonical container reader agrees with what was written.
    let reader = zipstore::ZipReader::open(
        std::io::Cursor::new(bundle.zip_bytes()),
        zipstore::Limits::default(),
    )
    .unwrap();
    assert_eq!(reader.entries().len(), 3);
}

// ------------------------------------------------------------------------------------------------
// Format 0.2 builder checks (§6.1, §6.2); the verifier's side is covered by the vectors.

#[test]
fn run_chain_builder_refuses_what_would_not_verify() {
    let run_entry = |seq: u64, run_seq: u64, run_prev: Digest| {
        json!({"seq": seq, "prev": Digest::ZERO.to_hex(), "ts": "2026-11-24T09:00:00Z",
               "kind": "step.done", "run": "r", "run_seq": run_seq, "run_prev": run_prev.to_hex()})
    };
    let mut b = BundleBuilder::new(
        Kind::Def,
        "run-r",
        forge::ts("2026-11-24T10:00:00Z"),
        forge::producer(),
        forge::governance("r"),
    );
    b.run_chain("r").unwrap();
    let first = run_entry(3, 0, Digest::ZERO);
    let digest = Digest::sha256(&clyra_evidence::jcs::canonicalize_value(&first).unwrap());
    b.push_entry(first).unwrap();
    // seq must increase; run_seq must be +1; run_prev must link; run must match.
    assert!(b.clone().push_entry(run_entry(3, 1, digest)).is_err());
    assert!(b.clone().push_entry(run_entry(9, 2, digest)).is_err());
    assert!(b.clone().push_entry(run_entry(9, 1, Digest::ZERO)).is_err());
    let mut other = run_entry(9, 1, digest);
    other["run"] = json!("s");
    assert!(b.clone().push_entry(other).is_err());
    assert!(b
        .clone()
        .chain_events([json!({"ts": "2026-11-24T09:00:00Z", "kind": "a"})])
        .is_err());
    b.push_entry(run_entry(9, 1, digest)).unwrap();
    // A checkpoint that does not cover the entries is refused at build time.
    b.checkpoint("not a note\n".to_owned(), Vec::new());
    let f = Fixture::new();
    assert!(matches!(
        b.build(&f.signers()),
        Err(BundleError::Checkpoint(_))
    ));
}
