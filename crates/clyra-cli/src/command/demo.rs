//! `clyra demo`: the main job as a newcomer first sees it, offline and in seconds.
//!
//! Records a small, realistic scenario as a hash-chained journal, signs a statement about it and
//! verifies it, using only the embedded defaults (files in one directory; no server).

use std::path::Path;

use anyhow::Context as _;
use clyra_evidence::chain::{link_from_entry, ChainBuilder, ChainVerifier};
use clyra_evidence::intoto::{self, Statement, Subject};
use clyra_evidence::keys::{Algorithm, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::{jcs, merkle, Digest};
use serde_json::{json, Map, Value};

use crate::command::verify_envelope::{self, Expectations};
use crate::command::{keys, write_new_file};
use crate::output::{Exit, Output};

/// Marks a directory as made by `clyra demo`, so a re-run may replace it.
const MARKER: &str = ".clyra-demo";

/// The scenario: a dbt run on Postgres, then an agent's tool calls through the gateway.
fn scenario() -> Vec<Value> {
    let run = "dbt-2026-11-24T09:00:00Z-7f3a";
    vec![
        json!({"ts": "2026-11-24T09:00:00.000Z", "kind": "dbt.run.started", "run_id": run,
               "actor": {"type": "service", "id": "airflow/daily_finance"},
               "dbt": {"version": "1.9.4", "adapter": "postgres", "target": "prod", "command": "dbt build --select finance"}}),
        json!({"ts": "2026-11-24T09:00:04.120Z", "kind": "warehouse.anchor", "run_id": run,
               "anchor": {"platform": "postgres", "kind": "wal_lsn", "value": "0/3A2B5C8"}}),
        json!({"ts": "2026-11-24T09:00:41.532Z", "kind": "dbt.model.finished", "run_id": run,
               "model": "model.finance.fct_revenue", "status": "success", "rows_affected": 18422,
               "duration_ms": 37412, "sql_sha256": "5d2c6a5c1b1e0f5e2f0b5b8f2d5f9d3c1a7e6b4c3d2e1f0a9b8c7d6e5f4a3b2c"}),
        json!({"ts": "2026-11-24T09:00:44.010Z", "kind": "dbt.test.finished", "run_id": run,
               "test": "test.finance.not_null_fct_revenue_amount", "status": "pass", "failures": 0}),
        json!({"ts": "2026-11-24T09:00:44.600Z", "kind": "warehouse.anchor", "run_id": run,
               "anchor": {"platform": "postgres", "kind": "wal_lsn", "value": "0/3A4F1D0"}}),
        json!({"ts": "2026-11-24T09:00:44.700Z", "kind": "dbt.run.finished", "run_id": run, "status": "success",
               "models": 1, "tests": 1}),
        json!({"ts": "2026-11-24T09:15:02.001Z", "kind": "gateway.decision", "session": "agent-7c1",
               "actor": {"type": "agent", "id": "support-copilot", "on_behalf_of": "user:ana@acme.example"},
               "tool": "crm.lookup_customer", "decision": "allow", "policy_rule": "crm-read-own-tenant",
               "args_sha256": "0c4f3e7a1d2b5c6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"}),
        json!({"ts": "2026-11-24T09:15:03.250Z", "kind": "gateway.decision", "session": "agent-7c1",
               "actor": {"type": "agent", "id": "support-copilot", "on_behalf_of": "user:ana@acme.example"},
               "tool": "billing.issue_refund", "decision": "require_approval", "policy_rule": "refunds-over-100",
               "amount": "250.00", "currency": "EUR"}),
        json!({"ts": "2026-11-24T09:16:40.900Z", "kind": "approval.granted", "session": "agent-7c1",
               "approver": "user:lee@acme.example", "tool": "billing.issue_refund", "two_person_rule": true}),
        json!({"ts": "2026-11-24T09:16:41.120Z", "kind": "gateway.decision", "session": "agent-7c1",
               "actor": {"type": "agent", "id": "support-copilot", "on_behalf_of": "user:ana@acme.example"},
               "tool": "sql.execute", "decision": "block", "policy_rule": "sql-no-ddl",
               "reason": "DROP TABLE is not allowed for agents"}),
    ]
}

fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let is_empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read `{}`", dir.display()))?
            .next()
            .is_none();
        if !is_empty {
            if !dir.join(MARKER).is_file() {
                anyhow::bail!(
                    "`{}` exists and was not made by `clyra demo`; choose another place with --dir",
                    dir.display()
                );
            }
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot replace `{}`", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    write_new_file(&dir.join(MARKER), b"made by clyra demo; safe to delete\n")
}

pub fn run(dir: &Path, out: &Output) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    prepare_dir(dir)?;

    // 1. A signing key and a trust file that trusts it.
    let (key, key_path, pub_path) =
        keys::generate_files(Algorithm::Ed25519, &dir.join("keys"), "clyra")?;
    let mut trust = TrustStore::new();
    trust.add(
        key.public_key().clone(),
        jiff::Timestamp::now(),
        None,
        Some("clyra demo key".into()),
    )?;
    let trust_path = dir.join("trust.json");
    write_new_file(&trust_path, trust.to_json_pretty()?.as_bytes())?;

    // 2. The journal: each event becomes a hash-chained entry, one canonical JSON object a line.
    let mut builder = ChainBuilder::new();
    let mut journal = Vec::new();
    let mut leaves = Vec::new();
    for event in scenario() {
        let body: Map<String, Value> = match event {
            Value::Object(m) => m,
            _ => anyhow::bail!("scenario events are objects"),
        };
        let entry = builder
            .append(body, jcs::canonicalize_value)
            .map_err(|e| anyhow::anyhow!("cannot append to the journal: {e}"))?;
        leaves.push(merkle::leaf_hash(&entry.canonical_bytes));
        journal.extend_from_slice(&entry.canonical_bytes);
        journal.push(b'\n');
    }
    let journal_path = dir.join("journal.ndjson");
    write_new_file(&journal_path, &journal)?;
    let root = merkle::root(&leaves);

    // 3. Check the chain as a verifier would, from the bytes on disk.
    let mut verifier = ChainVerifier::new(Some(0), Some(Digest::ZERO));
    for line in std::fs::read(&journal_path)?
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let value = jcs::parse_strict(line)?;
        verifier.push(link_from_entry(&value, line)?)?;
    }
    let summary = verifier.finish(Some(builder.head()), None)?;

    // 4. A signed in-toto statement about the journal and its Merkle root.
    let journal_subject = Subject {
        name: "journal.ndjson".into(),
        digest: [("sha256".to_owned(), Digest::sha256(&journal).to_hex())]
            .into_iter()
            .collect(),
    };
    let root_subject = Subject {
        name: "merkle-root".into(),
        digest: [("sha256".to_owned(), root.to_hex())].into_iter().collect(),
    };
    let predicate = json!({
        "journal": {"first_seq": summary.first_seq, "last_seq": summary.last_seq,
                    "count": summary.count, "head": summary.head.to_hex()},
        "merkle": {"alg": "rfc9162-sha256", "tree_size": leaves.len(), "root": root.to_hex()},
        "producer": {"name": "clyra", "version": env!("CARGO_PKG_VERSION")},
    });
    let statement = Statement::new(
        vec![journal_subject, root_subject],
        "https://clyra.dev/demo/v0",
        predicate,
    );
    let signers: [&dyn Signer; 1] = [&key];
    let envelope = intoto::sign_statement(&statement, &signers, jcs::canonicalize)?;
    let envelope_path = dir.join("journal.dsse.json");
    write_new_file(
        &envelope_path,
        format!("{}\n", envelope.to_json()).as_bytes(),
    )?;

    // 5. Verify it as an auditor would: only the files on disk and the trust file.
    let trust_back = TrustStore::read_file(&trust_path)?;
    let want = Expectations {
        threshold: 1,
        at: jiff::Timestamp::now(),
        predicate_type: Some("https://clyra.dev/demo/v0"),
        subjects: vec![(
            "journal.ndjson".into(),
            Digest::sha256(&std::fs::read(&journal_path)?),
        )],
    };
    let report = verify_envelope::verify_bytes(
        "journal.dsse.json",
        &std::fs::read(&envelope_path)?,
        &trust_back,
        &want,
    );
    let valid = report.verdict == "valid";
    let elapsed_ms = started.elapsed().as_millis();
    let again = format!(
        "cd {} && clyra verify-envelope journal.dsse.json --trust trust.json --subject journal.ndjson",
        dir.display()
    );
    out.emit(
        &json!({
            "ok": valid,
            "dir": dir,
            "verdict": report.verdict,
            "entries": summary.count,
            "journal_head": summary.head.to_hex(),
            "merkle_root": root.to_hex(),
            "keyid": key.key_id().to_hex(),
            "files": {"journal": journal_path, "envelope": envelope_path, "trust": trust_path,
                      "private_key": key_path, "public_key": pub_path},
            "elapsed_ms": elapsed_ms,
            "verify_again": again,
            "findings": report.findings,
        }),
        || {
            format!(
                "Clyra demo: recorded, signed and verified a dbt run and an agent session\n\n\
                 journal      {} entries, seq {}..{}, head {}\n\
                 merkle root  {}\n\
                 signed by    {} (ed25519)\n\
                 verdict      {}\n\n\
                 files in {}:\n  journal.ndjson      the hash-chained entries\n  journal.dsse.json   the signed statement (DSSE, in-toto)\n  \
                 trust.json          the public key an auditor trusts\n  keys/clyra.key      the private key (mode 0600)\n\n\
                 verify again:\n  {again}\n\n\
                 done in {elapsed_ms} ms",
                summary.count,
                summary.first_seq,
                summary.last_seq,
                summary.head,
                root,
                key.key_id(),
                report.verdict.to_uppercase(),
                dir.display(),
            )
        },
    );
    Ok(if valid {
        Exit::Ok
    } else {
        Exit::VerificationFailed
    })
}
