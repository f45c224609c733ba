//! The schemas in `spec/` against the example documents beside them.
//!
//! Every example must validate with zero issues and parse under the strict JSON profile; the
//! examples also agree with each other the way a real bundle's files would (digests, Merkle roots,
//! journal links and counts), so they can be read as one DEF and one PEF bundle. Each invalid case
//! mutates one example in one place and demands exactly the issue pointers expected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clyra_evidence::codes::Code;
use clyra_evidence::jcs::{canonicalize_value, is_canonical, parse_strict};
use clyra_evidence::schema::{schema_text, validate, SchemaId, SchemaIssue};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::{merkle, Digest};
use serde_json::{json, Value};

const MANIFEST_DEF: &str = include_str!("../../../spec/common/examples/manifest.def.json");
const MANIFEST_PEF: &str = include_str!("../../../spec/common/examples/manifest.pef.json");
const STATEMENT_DEF: &str = include_str!("../../../spec/common/examples/statement.def.json");
const JOURNAL_ENTRY: &str = include_str!("../../../spec/common/examples/journal-entry.json");
const TRUST: &str = include_str!("../../../spec/common/examples/trust.json");
const DEF_PREDICATE: &str = include_str!("../../../spec/def/examples/predicate.json");
const DEF_JOURNAL: &str = include_str!("../../../spec/def/examples/journal.ndjson");
const PEF_PREDICATE: &str = include_str!("../../../spec/pef/examples/predicate.json");
const PEF_JOURNAL: &str = include_str!("../../../spec/pef/examples/journal.ndjson");

/// Parses an example under the strict profile (no duplicate keys, safe integers, ...).
fn strict(text: &str) -> Value {
    parse_strict(text.as_bytes()).unwrap_or_else(|e| panic!("not strict JSON: {e}"))
}

fn lines(journal: &str) -> Vec<&str> {
    assert!(journal.ends_with('\n') && !journal.contains("\n\n"));
    journal.lines().collect()
}

fn pointers(issues: &[SchemaIssue]) -> Vec<&str> {
    issues.iter().map(|i| i.pointer.as_str()).collect()
}

/// Replaces the value at `pointer` (or removes it, for `None`) and returns the issues.
fn issues_after(
    id: SchemaId,
    example: &str,
    pointer: &str,
    new: Option<Value>,
) -> Vec<SchemaIssue> {
    let mut doc = strict(example);
    match new {
        Some(v) => match doc.pointer_mut(pointer) {
            Some(slot) => *slot = v,
            None => {
                // A new member.
                let (parent, name) = pointer.rsplit_once('/').unwrap();
                let object = doc.pointer_mut(parent).unwrap().as_object_mut().unwrap();
                object.insert(name.to_owned(), v);
            }
        },
        None => {
            let (parent, name) = pointer.rsplit_once('/').unwrap();
            let removed = doc
                .pointer_mut(parent)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove(name);
            assert!(removed.is_some(), "no {pointer}");
        }
    }
    validate(id, &doc)
}

/// Asserts that the mutation yields issues, all at `expected`.
fn rejects_at(id: SchemaId, example: &str, pointer: &str, new: Option<Value>, expected: &str) {
    let issues = issues_after(id, example, pointer, new.clone());
    assert!(!issues.is_empty(), "{pointer} = {new:?} accepted");
    assert!(
        pointers(&issues).iter().all(|p| *p == expected),
        "{pointer} = {new:?}: {issues:#?}"
    );
}

fn accepts(id: SchemaId, example: &str, pointer: &str, new: Value) {
    let issues = issues_after(id, example, pointer, Some(new.clone()));
    assert!(issues.is_empty(), "{pointer} = {new}: {issues:#?}");
}

fn sha(bytes: &[u8]) -> String {
    Digest::sha256(bytes).to_hex()
}

#[test]
fn every_schema_compiles() {
    for id in SchemaId::ALL {
        let issues = validate(id, &json!(null));
        assert!(!issues.is_empty(), "{id} accepts null");
        assert!(
            issues
                .iter()
                .all(|i| !i.message.contains("failed to compile")),
            "{id}: {issues:?}"
        );
        let text: Value = serde_json::from_str(schema_text(id)).unwrap();
        assert_eq!(text["$id"], id.uri());
    }
}

#[test]
fn every_example_is_strict_json_and_valid() {
    let cases = [
        (SchemaId::Manifest, MANIFEST_DEF),
        (SchemaId::Manifest, MANIFEST_PEF),
        (SchemaId::Statement, STATEMENT_DEF),
        (SchemaId::JournalEntry, JOURNAL_ENTRY),
        (SchemaId::Trust, TRUST),
        (SchemaId::DefPredicate, DEF_PREDICATE),
        (SchemaId::PefPredicate, PEF_PREDICATE),
    ];
    for (id, text) in cases {
        let issues = validate(id, &strict(text));
        assert!(issues.is_empty(), "{id}: {issues:#?}");
    }
    for journal in [DEF_JOURNAL, PEF_JOURNAL] {
        for line in lines(journal) {
            assert!(is_canonical(line.as_bytes()).unwrap(), "{line}");
            let issues = validate(SchemaId::JournalEntry, &strict(line));
            assert!(issues.is_empty(), "{line}: {issues:#?}");
        }
    }
    assert!(lines(DEF_JOURNAL).contains(&canonical_text(JOURNAL_ENTRY).as_str()));
}

fn canonical_text(text: &str) -> String {
    String::from_utf8(canonicalize_value(&strict(text)).unwrap()).unwrap()
}

/// The examples are one DEF and one PEF bundle: what the manifest says about the journal, the
/// files and the Merkle root is true of the example files.
#[test]
fn examples_agree_like_a_bundle() {
    for (manifest, journal, predicate) in [
        (MANIFEST_DEF, DEF_JOURNAL, DEF_PREDICATE),
        (MANIFEST_PEF, PEF_JOURNAL, PEF_PREDICATE),
    ] {
        let m = strict(manifest);
        let p = strict(predicate);
        let entries = lines(journal);
        let j = &m["journal"];

        let journal_file = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "journal.ndjson")
            .unwrap();
        assert_eq!(journal_file["size"], journal.len());
        assert_eq!(journal_file["sha256"], sha(journal.as_bytes()));

        assert_eq!(j["count"], entries.len());
        let first = strict(entries[0]);
        let last = strict(entries[entries.len() - 1]);
        assert_eq!(j["first_seq"], first["seq"]);
        assert_eq!(j["first_prev"], first["prev"]);
        assert_eq!(j["last_seq"], last["seq"]);
        assert_eq!(j["head"], sha(entries[entries.len() - 1].as_bytes()));
        for pair in entries.windows(2) {
            let (a, b) = (strict(pair[0]), strict(pair[1]));
            assert_eq!(b["seq"], a["seq"].as_u64().unwrap() + 1);
            assert_eq!(b["prev"], sha(pair[0].as_bytes()));
        }
        assert_eq!(
            j["entries_root"],
            merkle::root_of_data(entries.iter().map(|l| l.as_bytes())).to_hex()
        );

        let leaves: Vec<Vec<u8>> = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .chain(m["external_artifacts"].as_array().unwrap())
            .map(|v| canonicalize_value(v).unwrap())
            .collect();
        assert_eq!(m["merkle"]["tree_size"], leaves.len());
        assert_eq!(m["merkle"]["root"], merkle::root_of_data(&leaves).to_hex());

        let sizes: u64 = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["size"].as_u64().unwrap())
            .sum();
        assert_eq!(p["metrics"]["payload_bytes"], sizes);
        assert_eq!(p["metrics"]["entries"], j["count"]);
        assert_eq!(p["run"]["run_id"], m["governance"]["run_id"]);
        for sla in p["sla"].as_array().unwrap() {
            let (value, threshold) = (sla["value"].as_f64(), sla["threshold"].as_f64());
            let met = match sla["op"].as_str().unwrap() {
                "<=" => value <= threshold,
                _ => value >= threshold,
            };
            assert_eq!(sla["met"], met, "{sla}");
        }
    }

    let statement = strict(STATEMENT_DEF);
    let manifest = strict(MANIFEST_DEF);
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        sha(&canonicalize_value(&manifest).unwrap())
    );
    assert_eq!(statement["subject"][1]["name"], "merkle-root");
    assert_eq!(
        statement["subject"][1]["digest"]["sha256"],
        manifest["merkle"]["root"]
    );
    assert_eq!(statement["predicate"], strict(DEF_PREDICATE));

    // PEF: every seq lies in the journal segment, and the counts match the calls.
    let m = strict(MANIFEST_PEF);
    let p = strict(PEF_PREDICATE);
    let segment =
        m["journal"]["first_seq"].as_u64().unwrap()..=m["journal"]["last_seq"].as_u64().unwrap();
    for list in ["tool_calls", "approvals", "receipts"] {
        for item in p[list].as_array().unwrap() {
            assert!(segment.contains(&item["seq"].as_u64().unwrap()), "{item}");
        }
    }
    for decision in ["allow", "repair", "block", "require_approval"] {
        let n = p["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["decision"] == decision)
            .count();
        assert_eq!(p["decisions"][decision], n, "{decision}");
    }

    TrustStore::from_json(TRUST.as_bytes()).unwrap();
}

#[test]
fn manifest_rejections_point_at_the_fault() {
    use SchemaId::Manifest as M;
    let ex = MANIFEST_DEF;
    rejects_at(M, ex, "/governance/tenant", None, "/governance/tenant");
    rejects_at(M, ex, "/journal", None, "/journal");
    rejects_at(
        M,
        ex,
        "/files/0/sha256",
        Some(json!(
            "AFE376979DA03BFB9FD0C724FAD8EAAA5503D56D8989B8F2635A46123EE79E38"
        )),
        "/files/0/sha256",
    );
    rejects_at(
        M,
        ex,
        "/files/0/sha256",
        Some(json!("afe3")),
        "/files/0/sha256",
    );
    rejects_at(M, ex, "/extra", Some(json!(1)), "/extra");
    rejects_at(M, ex, "/producer/name", Some(json!(7)), "/producer/name");
    rejects_at(M, ex, "/format", Some(json!("clyra-xef")), "/format");
    rejects_at(
        M,
        ex,
        "/format_version",
        Some(json!("0.1.0")),
        "/format_version",
    );
    rejects_at(
        M,
        ex,
        "/format_version",
        Some(json!(0.1)),
        "/format_version",
    );
    rejects_at(M, ex, "/bundle_id", Some(json!("run 1")), "/bundle_id");
    rejects_at(M, ex, "/bundle_id", Some(json!("")), "/bundle_id");
    rejects_at(
        M,
        ex,
        "/bundle_id",
        Some(json!("x".repeat(129))),
        "/bundle_id",
    );
    accepts(M, ex, "/bundle_id", json!(&"A.b_c:d-1".repeat(15)[..128]));
    for bad in [
        "2026-11-24 09:00:32Z",
        "2026-11-24T09:00:32+00:00",
        "2026-11-24T09:00:32z",
        "2026-11-24t09:00:32Z",
        "2026-11-24T09:00:32",
        "2026-11-24T09:00:60Z",
        "2026-11-31T09:00:32Z",
        "2026-11-24T09:00:32.Z",
        "2026-11-24T09:00:32.1234567890Z",
        "20261124T090032Z",
    ] {
        rejects_at(M, ex, "/created_at", Some(json!(bad)), "/created_at");
    }
    for good in [
        "2026-11-24T09:00:32.5Z",
        "2026-11-24T09:00:32.123456789Z",
        "2028-02-29T23:59:59Z",
    ] {
        accepts(M, ex, "/created_at", json!(good));
    }
    rejects_at(
        M,
        ex,
        "/policy_sha256",
        Some(json!("none")),
        "/policy_sha256",
    );
    accepts(M, ex, "/policy_sha256", json!("0".repeat(64)));
    rejects_at(
        M,
        ex,
        "/files/1/size",
        Some(json!(9_007_199_254_740_992_u64)),
        "/files/1/size",
    );
    rejects_at(M, ex, "/files/1/size", Some(json!(-1)), "/files/1/size");
    rejects_at(M, ex, "/files/1/size", Some(json!(1.5)), "/files/1/size");
    accepts(M, ex, "/files/1/size", json!(9_007_199_254_740_991_u64));
    rejects_at(M, ex, "/files/1/mode", Some(json!(420)), "/files/1/mode");
    rejects_at(
        M,
        ex,
        "/governance/team",
        Some(json!("x")),
        "/governance/team",
    );
    rejects_at(
        M,
        ex,
        "/external_artifacts/0/uri",
        None,
        "/external_artifacts/0/uri",
    );
    rejects_at(M, ex, "/merkle/alg", Some(json!("sha256")), "/merkle/alg");
    rejects_at(
        M,
        ex,
        "/journal/path",
        Some(json!("journal.jsonl")),
        "/journal/path",
    );
    rejects_at(M, ex, "/journal/count", Some(json!(0)), "/journal/count");
    rejects_at(
        M,
        ex,
        "/governance/actors/1",
        Some(json!(null)),
        "/governance/actors/1",
    );
}

#[test]
fn statement_rejections_point_at_the_fault() {
    use SchemaId::Statement as S;
    let ex = STATEMENT_DEF;
    rejects_at(
        S,
        ex,
        "/_type",
        Some(json!("https://in-toto.io/Statement/v0.1")),
        "/_type",
    );
    rejects_at(S, ex, "/subject", Some(json!([])), "/subject");
    rejects_at(
        S,
        ex,
        "/subject/0/digest/sha256",
        None,
        "/subject/0/digest/sha256",
    );
    rejects_at(
        S,
        ex,
        "/subject/1/digest/sha512",
        Some(json!("ab")),
        "/subject/1/digest/sha512",
    );
    rejects_at(S, ex, "/subject/1/name", Some(json!("")), "/subject/1/name");
    rejects_at(S, ex, "/predicateType", Some(json!("")), "/predicateType");
    rejects_at(S, ex, "/predicate", Some(json!([])), "/predicate");
    rejects_at(S, ex, "/predicate", None, "/predicate");
    rejects_at(S, ex, "/signatures", Some(json!([])), "/signatures");
    // Which predicate type goes with which format, and the predicate's own shape, are checked
    // elsewhere (E_SUBJECT_MISMATCH; the predicate schema).
    accepts(
        S,
        ex,
        "/predicateType",
        json!("https://example.com/other/v1"),
    );
    accepts(S, ex, "/predicate", json!({"anything": true}));
}

#[test]
fn journal_entry_rejections_point_at_the_fault() {
    use SchemaId::JournalEntry as J;
    let ex = JOURNAL_ENTRY;
    for bad in [
        "Dbt.model",
        "dbt..model",
        ".dbt",
        "dbt.",
        "dbt-model",
        "dbt model",
        "",
    ] {
        rejects_at(J, ex, "/kind", Some(json!(bad)), "/kind");
    }
    accepts(J, ex, "/kind", json!("gateway.decision_v2.x9"));
    rejects_at(J, ex, "/seq", Some(json!("2")), "/seq");
    rejects_at(J, ex, "/seq", Some(json!(-2)), "/seq");
    rejects_at(J, ex, "/prev", Some(json!("0".repeat(63))), "/prev");
    rejects_at(
        J,
        ex,
        "/ts",
        Some(json!("2026-11-24T09:00:14.402+01:00")),
        "/ts",
    );
    rejects_at(J, ex, "/ts", None, "/ts");
    // Event data is open.
    accepts(J, ex, "/anything", json!({"nested": [1, 2.5, null]}));
}

#[test]
fn def_predicate_rejections_point_at_the_fault() {
    use SchemaId::DefPredicate as D;
    let ex = DEF_PREDICATE;
    rejects_at(D, ex, "/sla/0/op", Some(json!("<")), "/sla/0/op");
    rejects_at(D, ex, "/sla/0/op", Some(json!("=<")), "/sla/0/op");
    rejects_at(D, ex, "/sla/1/met", Some(json!("true")), "/sla/1/met");
    rejects_at(D, ex, "/sla/1/met", None, "/sla/1/met");
    rejects_at(D, ex, "/sla/0/value", Some(json!("31330")), "/sla/0/value");
    rejects_at(
        D,
        ex,
        "/run/status",
        Some(json!("succeeded")),
        "/run/status",
    );
    rejects_at(
        D,
        ex,
        "/run/finished_at",
        Some(json!("yesterday")),
        "/run/finished_at",
    );
    rejects_at(D, ex, "/run/attempt", Some(json!(2)), "/run/attempt");
    rejects_at(D, ex, "/anchors", None, "/anchors");
    rejects_at(
        D,
        ex,
        "/anchors/0/value",
        Some(json!("")),
        "/anchors/0/value",
    );
    rejects_at(
        D,
        ex,
        "/anchors/0/lsn",
        Some(json!("0/1")),
        "/anchors/0/lsn",
    );
    rejects_at(D, ex, "/anchors/1/seq", Some(json!(-1)), "/anchors/1/seq");
    rejects_at(
        D,
        ex,
        "/datasets/0/role",
        Some(json!("intermediate")),
        "/datasets/0/role",
    );
    rejects_at(
        D,
        ex,
        "/datasets/0/rows",
        Some(json!([])),
        "/datasets/0/rows",
    );
    rejects_at(
        D,
        ex,
        "/datasets/1/schema_sha256",
        Some(json!("x")),
        "/datasets/1/schema_sha256",
    );
    rejects_at(
        D,
        ex,
        "/metrics/payload_bytes",
        None,
        "/metrics/payload_bytes",
    );
    rejects_at(
        D,
        ex,
        "/metrics/generation_ms",
        Some(json!(1.5)),
        "/metrics/generation_ms",
    );
    rejects_at(
        D,
        ex,
        "/metrics/durations_ms/dbt_build",
        Some(json!("31s")),
        "/metrics/durations_ms/dbt_build",
    );
    rejects_at(
        D,
        ex,
        "/metrics/latency_ms",
        Some(json!({"p50": 1, "p95": 2})),
        "/metrics/latency_ms/p99",
    );
    rejects_at(
        D,
        ex,
        "/metrics/cost_usd",
        Some(json!(0.2)),
        "/metrics/cost_usd",
    );
    rejects_at(D, ex, "/dbt/models", None, "/dbt/models");
    rejects_at(
        D,
        ex,
        "/dbt/models/0/rows_affected",
        Some(json!(-1)),
        "/dbt/models/0/rows_affected",
    );
    rejects_at(
        D,
        ex,
        "/dbt/tests/1/unique_id",
        None,
        "/dbt/tests/1/unique_id",
    );
    // Unknown platforms and kinds are accepted; dbt metadata is open at every level.
    accepts(
        D,
        ex,
        "/anchors/0",
        json!({"platform": "clickhouse", "kind": "part_name", "value": "all_1_1_0"}),
    );
    accepts(
        D,
        ex,
        "/dbt/state_modified",
        json!(["model.shop.fct_revenue"]),
    );
    accepts(
        D,
        ex,
        "/dbt/models/0/compiled_code_sha256",
        json!("0".repeat(64)),
    );
    accepts(D, ex, "/metrics/generation_ms", json!(0));
    accepts(D, ex, "/sla", json!([]));
    accepts(D, ex, "/anchors", json!([]));
}

#[test]
fn pef_predicate_rejections_point_at_the_fault() {
    use SchemaId::PefPredicate as P;
    let ex = PEF_PREDICATE;
    rejects_at(
        P,
        ex,
        "/automation/kind",
        Some(json!("robot")),
        "/automation/kind",
    );
    rejects_at(P, ex, "/automation/id", None, "/automation/id");
    rejects_at(
        P,
        ex,
        "/decisions/block",
        Some(json!(-1)),
        "/decisions/block",
    );
    rejects_at(P, ex, "/decisions/repair", None, "/decisions/repair");
    rejects_at(P, ex, "/decisions/deny", Some(json!(0)), "/decisions/deny");
    rejects_at(
        P,
        ex,
        "/tool_calls/2/decision",
        Some(json!("deny")),
        "/tool_calls/2/decision",
    );
    rejects_at(
        P,
        ex,
        "/tool_calls/0/args",
        Some(json!({"id": 1})),
        "/tool_calls/0/args",
    );
    rejects_at(
        P,
        ex,
        "/tool_calls/1/result_sha256",
        Some(json!("")),
        "/tool_calls/1/result_sha256",
    );
    rejects_at(
        P,
        ex,
        "/approvals/0/two_person_rule",
        Some(json!(1)),
        "/approvals/0/two_person_rule",
    );
    rejects_at(
        P,
        ex,
        "/approvals/0/approver",
        None,
        "/approvals/0/approver",
    );
    rejects_at(
        P,
        ex,
        "/receipts/1/seq",
        Some(json!(1.25)),
        "/receipts/1/seq",
    );
    rejects_at(P, ex, "/approvals", None, "/approvals");
    rejects_at(P, ex, "/sla/0/op", Some(json!("==")), "/sla/0/op");
    rejects_at(
        P,
        ex,
        "/metrics/latency_ms/p95",
        Some(json!(-0.5)),
        "/metrics/latency_ms/p95",
    );
    rejects_at(P, ex, "/anchors", Some(json!([])), "/anchors");
    accepts(P, ex, "/receipts", json!([]));
    accepts(P, ex, "/automation/kind", json!("reverse_etl"));
    let mut no_receipts = strict(ex);
    no_receipts.as_object_mut().unwrap().remove("receipts");
    assert!(validate(P, &no_receipts).is_empty());
}

#[test]
fn trust_example_rejections_point_at_the_fault() {
    use SchemaId::Trust as T;
    let ex = TRUST;
    rejects_at(T, ex, "/version", Some(json!(2)), "/version");
    rejects_at(T, ex, "/keys/0/keyid", Some(json!("ABC")), "/keys/0/keyid");
    rejects_at(
        T,
        ex,
        "/keys/0/algorithm",
        Some(json!("rsa-sign-pkcs1-2048-sha256")),
        "/keys/0/algorithm",
    );
    rejects_at(
        T,
        ex,
        "/keys/0/not_after",
        Some(json!("2027-13-01T00:00:00Z")),
        "/keys/0/not_after",
    );
    rejects_at(
        T,
        ex,
        "/keys/0/trusted",
        Some(json!(true)),
        "/keys/0/trusted",
    );
}

#[test]
fn verification_codes_md_documents_every_code() {
    let doc = include_str!("../../../spec/common/verification-codes.md");
    for code in Code::ALL {
        let row = format!(
            "| `{code}` | {} |",
            if code.is_error() { "error" } else { "warning" }
        );
        assert!(doc.contains(&row), "{code} is not documented as `{row}`");
    }
    assert!(doc.contains("| `W_NEWER_MINOR` | warning |"));
}
