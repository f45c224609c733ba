//! Test support for bundles: realistic DEF and PEF fixtures, and a forger that unpacks a bundle,
//! changes it, refreshes what a forger holding the signing key would refresh, re-signs and
//! re-packs it, so each negative test reaches the one check it is about.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use clyra_evidence::bundle::{
    BundleBuilder, Governance, Kind, Producer, VerifyOptions, ATTESTATION_PATH, JOURNAL_PATH,
    MANIFEST_PATH,
};
use clyra_evidence::dsse::{self, Envelope};
use clyra_evidence::intoto::PAYLOAD_TYPE;
use clyra_evidence::keys::{Algorithm, PrivateKey, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::{jcs, merkle, zipstore, Digest};
use serde_json::{json, Value};

/// A bundle's files by path (sorted as UTF-8 bytes, like the container).
pub type Contents = BTreeMap<String, Vec<u8>>;

/// A signing key trusted from 2026-01-01 and a verification instant inside its window.
pub struct Fixture {
    pub key: PrivateKey,
    pub trust: TrustStore,
    pub at: jiff::Timestamp,
}

impl Fixture {
    pub fn new() -> Self {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut trust = TrustStore::new();
        trust
            .add(
                key.public_key().clone(),
                ts("2026-01-01T00:00:00Z"),
                None,
                Some("test".into()),
            )
            .unwrap();
        Fixture {
            key,
            trust,
            at: ts("2026-11-24T12:00:00Z"),
        }
    }

    pub fn options(&self) -> VerifyOptions<'_> {
        VerifyOptions::new(&self.trust, self.at)
    }

    pub fn signers(&self) -> [&dyn Signer; 1] {
        [&self.key]
    }
}

pub fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

pub fn producer() -> Producer {
    Producer {
        name: "clyra".into(),
        version: "0.1.0".into(),
    }
}

pub fn governance(run_id: &str) -> Governance {
    Governance {
        tenant: "acme".into(),
        environment: "prod".into(),
        run_id: run_id.into(),
        actors: vec!["airflow/daily_finance".into()],
    }
}

/// The DEF scenario: a dbt run on Postgres with two WAL anchors.
pub fn def_events(run: &str) -> Vec<Value> {
    vec![
        json!({"ts": "2026-11-24T09:00:00.000Z", "kind": "dbt.run.started", "run_id": run,
               "dbt": {"version": "1.9.4", "adapter": "postgres", "target": "prod",
                       "command": "dbt build --select finance"}}),
        json!({"ts": "2026-11-24T09:00:04.120Z", "kind": "warehouse.anchor", "run_id": run,
               "anchor": {"platform": "postgres", "kind": "wal_lsn", "value": "0/3A2B5C8"}}),
        json!({"ts": "2026-11-24T09:00:41.532Z", "kind": "dbt.model.finished", "run_id": run,
               "model": "model.finance.fct_revenue", "status": "success", "rows_affected": 18422,
               "duration_ms": 37412}),
        json!({"ts": "2026-11-24T09:00:44.010Z", "kind": "dbt.test.finished", "run_id": run,
               "test": "test.finance.not_null_fct_revenue_amount", "status": "pass", "failures": 0}),
        json!({"ts": "2026-11-24T09:00:44.600Z", "kind": "warehouse.anchor", "run_id": run,
               "anchor": {"platform": "postgres", "kind": "wal_lsn", "value": "0/3A4F1D0"}}),
        json!({"ts": "2026-11-24T09:00:44.700Z", "kind": "dbt.run.finished", "run_id": run,
               "status": "success"}),
    ]
}

/// The PEF scenario: an agent's tool calls through the gateway, one approved, one blocked.
pub fn pef_events() -> Vec<Value> {
    let actor =
        json!({"type": "agent", "id": "support-copilot", "on_behalf_of": "user:ana@acme.example"});
    vec![
        json!({"ts": "2026-11-24T09:15:02.001Z", "kind": "gateway.decision", "session": "agent-7c1",
               "actor": actor, "tool": "crm.lookup_customer", "decision": "allow",
               "args_sha256": "0c4f3e7a1d2b5c6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"}),
        json!({"ts": "2026-11-24T09:15:03.250Z", "kind": "gateway.decision", "session": "agent-7c1",
               "actor": actor, "tool": "billing.issue_refund", "decision": "require_approval"}),
        json!({"ts": "2026-11-24T09:16:40.900Z", "kind": "approval.granted", "session": "agent-7c1",
               "approver": "user:lee@acme.example", "tool": "billing.issue_refund", "two_person_rule": true}),
        json!({"ts": "2026-11-24T09:16:41.120Z", "kind": "gateway.decision", "session": "agent-7c1",
               "actor": actor, "tool": "sql.execute", "decision": "block"}),
    ]
}

pub fn def_builder(run: &str) -> BundleBuilder {
    let mut b = BundleBuilder::new(
        Kind::Def,
        format!("def-{run}"),
        ts("2026-11-24T10:00:00Z"),
        producer(),
        governance(run),
    );
    b.chain_events(def_events(run)).unwrap();
    b.artifact(
        "dbt/run_results.json",
        br#"{"results":[]}"#.to_vec(),
        "application/json",
    )
    .unwrap();
    b
}

pub fn pef_builder() -> BundleBuilder {
    let mut b = BundleBuilder::new(
        Kind::Pef,
        "pef-agent-7c1",
        ts("2026-11-24T10:00:00Z"),
        producer(),
        governance("agent-7c1"),
    );
    b.chain_events(pef_events()).unwrap();
    b
}

pub fn def_bundle(f: &Fixture) -> Vec<u8> {
    def_builder("run-1")
        .build(&f.signers())
        .unwrap()
        .into_zip_bytes()
}

/// Unpacks with the `zip` crate: an implementation independent of the kernel's reader.
pub fn unzip(bytes: &[u8]) -> Contents {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = Contents::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        out.insert(file.name().to_owned(), data);
    }
    out
}

/// Packs into the canonical container.
pub fn rezip(c: &Contents) -> Vec<u8> {
    let entries: Vec<(&str, &[u8])> = c.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    zipstore::write(&entries).unwrap()
}

pub fn manifest(c: &Contents) -> Value {
    jcs::parse_strict(&c[MANIFEST_PATH]).unwrap()
}

pub fn set_manifest(c: &mut Contents, m: &Value) {
    c.insert(MANIFEST_PATH.into(), jcs::canonicalize_value(m).unwrap());
}

/// The journal's lines, without their newlines.
pub fn lines(c: &Contents) -> Vec<Vec<u8>> {
    c[JOURNAL_PATH]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

pub fn set_lines(c: &mut Contents, lines: &[Vec<u8>]) {
    let mut j = Vec::new();
    for l in lines {
        j.extend_from_slice(l);
        j.push(b'\n');
    }
    c.insert(JOURNAL_PATH.into(), j);
}

/// Re-signs `statement` (changed by `change`) with `key`.
pub fn restate(c: &mut Contents, key: &PrivateKey, change: impl FnOnce(&mut Value)) {
    let envelope = Envelope::from_json(&c[ATTESTATION_PATH]).unwrap();
    let mut statement = jcs::parse_strict(&envelope.payload).unwrap();
    change(&mut statement);
    let payload = jcs::canonicalize_value(&statement).unwrap();
    let signers: [&dyn Signer; 1] = [key];
    let signed = dsse::sign(PAYLOAD_TYPE, &payload, &signers).unwrap();
    c.insert(
        ATTESTATION_PATH.into(),
        jcs::canonicalize(signed.to_json().as_bytes()).unwrap(),
    );
}

/// Points the statement's subjects at the current manifest bytes and root, and re-signs: what a
/// forger holding the key does after changing the manifest.
pub fn resign(c: &mut Contents, key: &PrivateKey) {
    let digest = Digest::sha256(&c[MANIFEST_PATH]).to_hex();
    // Lenient parse: some forgeries make the manifest invalid on purpose.
    let root = serde_json::from_slice::<Value>(&c[MANIFEST_PATH])
        .ok()
        .and_then(|m| m["merkle"]["root"].as_str().map(str::to_owned));
    restate(c, key, |s| {
        s["subject"][0]["digest"]["sha256"] = json!(digest);
        if let Some(root) = root {
            s["subject"][1]["digest"]["sha256"] = json!(root);
        }
    });
}

/// Recomputes every listed file's size and digest and the bundle Merkle root.
pub fn refresh_files(m: &mut Value, c: &Contents) {
    let mut tree = merkle::MerkleTreeBuilder::new();
    for f in m["files"].as_array_mut().unwrap() {
        if let Some(bytes) = c.get(f["path"].as_str().unwrap()) {
            f["size"] = json!(bytes.len());
            f["sha256"] = json!(Digest::sha256(bytes).to_hex());
        }
        tree.push_data(&jcs::canonicalize_value(f).unwrap());
    }
    for a in m["external_artifacts"].as_array().unwrap() {
        tree.push_data(&jcs::canonicalize_value(a).unwrap());
    }
    m["merkle"]["tree_size"] = json!(tree.len());
    m["merkle"]["root"] = json!(tree.root().to_hex());
}

/// Recomputes the manifest's `journal` summary from the (canonical) lines as they are now.
pub fn refresh_journal(m: &mut Value, c: &Contents) {
    let lines = lines(c);
    let first = jcs::parse_strict(&lines[0]).unwrap();
    let last = jcs::parse_strict(lines.last().unwrap()).unwrap();
    // A run chain (0.2) describes run_seq/run_prev.
    let (seq, prev) = if m["journal"]["chain"] == "run" {
        ("run_seq", "run_prev")
    } else {
        ("seq", "prev")
    };
    let j = &mut m["journal"];
    j["count"] = json!(lines.len());
    j["first_seq"] = first[seq].clone();
    j["first_prev"] = first[prev].clone();
    j["last_seq"] = last[seq].clone();
    j["head"] = json!(Digest::sha256(lines.last().unwrap()).to_hex());
    j["entries_root"] = json!(merkle::root_of_data(&lines).to_hex());
}

/// After changing files: refresh the manifest's file entries and root, re-sign, re-pack.
pub fn repack_resigned(mut c: Contents, key: &PrivateKey, journal_summary: bool) -> Vec<u8> {
    let mut m = manifest(&c);
    if journal_summary {
        refresh_journal(&mut m, &c);
    }
    refresh_files(&mut m, &c);
    set_manifest(&mut c, &m);
    resign(&mut c, key);
    // The predicate's metrics follow the files, as a producer's would.
    let payload_bytes: u64 = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_u64().unwrap())
        .sum();
    let count = m["journal"]["count"].clone();
    restate(&mut c, key, |s| {
        s["predicate"]["metrics"]["payload_bytes"] = json!(payload_bytes);
        s["predicate"]["metrics"]["entries"] = count;
    });
    rezip(&c)
}

/// Offsets of each central directory entry, by name, in a container.
pub fn central_entries(bytes: &[u8]) -> Vec<(String, usize)> {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    let u32_at = |at: usize| {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
    };
    let eocd = bytes.len() - 22;
    let (count, mut pos) = (u16_at(eocd + 10), u32_at(eocd + 16));
    let mut out = Vec::new();
    for _ in 0..count {
        let name_len = u16_at(pos + 28);
        let name = String::from_utf8(bytes[pos + 46..pos + 46 + name_len].to_vec()).unwrap();
        out.push((name, pos));
        pos += 46 + name_len;
    }
    out
}

/// Replaces every occurrence of `from` with `to` (same length) in the container bytes: both
/// headers of an entry name, for names the writer refuses to write.
pub fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}
