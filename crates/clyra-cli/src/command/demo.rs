//! `clyra demo`: the main job as a newcomer first sees it, offline and in seconds.
//!
//! Records a small, realistic scenario as a hash-chained journal, signs a statement about it and
//! verifies it, using only the embedded defaults (files in one directory; no server).

use std::path::Path;

use anyhow::Context as _;
use clyra_evidence::bundle::{
    verify_path, BundleBuilder, Governance, Kind, Producer, SlaOp, VerifyOptions,
};
use clyra_evidence::chain::{link_from_entry, ChainBuilder, ChainVerifier};
use clyra_evidence::keys::{Algorithm, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::{jcs, Digest};
use serde_json::{json, Map, Value};

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
    for event in scenario() {
        let body: Map<String, Value> = match event {
            Value::Object(m) => m,
            _ => anyhow::bail!("scenario events are objects"),
        };
        let entry = builder
            .append(body, jcs::canonicalize_value)
            .map_err(|e| anyhow::anyhow!("cannot append to the journal: {e}"))?;
        journal.extend_from_slice(&entry.canonical_bytes);
        journal.push(b'\n');
    }
    let journal_path = dir.join("journal.ndjson");
    write_new_file(&journal_path, &journal)?;

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

    // 4. Two bundles cut from the one journal: DEF for the dbt run, PEF for the agent session,
    //    which continues the chain where the dbt run ended.
    let entries: Vec<Value> = std::fs::read(&journal_path)?
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(jcs::parse_strict)
        .collect::<Result<_, _>>()?;
    let split = entries
        .iter()
        .position(|e| e.get("kind").and_then(Value::as_str) == Some("gateway.decision"))
        .unwrap_or(entries.len());
    std::fs::create_dir_all(dir.join("bundles"))?;
    let created_at = jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond())?;
    let producer = Producer {
        name: "clyra".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let signers: [&dyn Signer; 1] = [&key];
    let mut made = Vec::new();
    for (kind, range, run_id, actors, name) in [
        (
            Kind::Def,
            0..split,
            "dbt-2026-11-24T09:00:00Z-7f3a",
            vec!["service:airflow/daily_finance"],
            "run.def.zip",
        ),
        (
            Kind::Pef,
            split..entries.len(),
            "agent-7c1",
            vec![
                "agent:support-copilot",
                "user:ana@acme.example",
                "user:lee@acme.example",
            ],
            "session.pef.zip",
        ),
    ] {
        let governance = Governance {
            tenant: "acme".into(),
            environment: "prod".into(),
            run_id: run_id.into(),
            actors: actors.into_iter().map(str::to_owned).collect(),
        };
        let mut builder = BundleBuilder::new(
            kind,
            format!("demo-{run_id}"),
            created_at,
            producer.clone(),
            governance,
        );
        builder
            .record_generation_time(true)
            .sla("generation_ms", SlaOp::Le, 5000.0);
        for e in &entries[range] {
            builder.push_entry(e.clone())?;
        }
        builder.derive_predicate();
        let built = std::time::Instant::now();
        let bundle = builder.build(&signers)?;
        let build_ms = built.elapsed().as_secs_f64() * 1e3;
        let path = dir.join("bundles").join(name);
        bundle.write_zip(&path)?;
        made.push((
            path,
            bundle.manifest().clone(),
            bundle.zip_bytes().len(),
            build_ms,
        ));
    }

    // 5. Verify both as an auditor would: only the files on disk and the trust file.
    let trust_back = TrustStore::read_file(&trust_path)?;
    let options = VerifyOptions::new(&trust_back, jiff::Timestamp::now());
    let mut reports = Vec::new();
    for (path, ..) in &made {
        reports.push(verify_path(path, &options)?);
    }
    let valid = reports.iter().all(|r| r.is_valid());
    let elapsed_ms = started.elapsed().as_millis();
    let again = format!(
        "clyra verify {} --trust {}",
        dir.join("bundles").join("run.def.zip").display(),
        trust_path.display()
    );
    let bundles_json: Vec<Value> = made
        .iter()
        .zip(&reports)
        .map(|((path, m, size, build_ms), r)| {
            json!({"path": path, "format": m.format, "verdict": r.verdict, "entries": m.journal.count,
                   "first_seq": m.journal.first_seq, "last_seq": m.journal.last_seq,
                   "merkle_root": m.merkle.root, "entries_root": m.journal.entries_root,
                   "bytes": size, "build_ms": build_ms, "findings": r.findings})
        })
        .collect();
    out.emit(
        &json!({
            "ok": valid,
            "dir": dir,
            "journal": {"path": journal_path, "entries": summary.count, "head": summary.head},
            "bundles": bundles_json,
            "keyid": key.key_id().to_hex(),
            "trust": trust_path,
            "private_key": key_path,
            "public_key": pub_path,
            "elapsed_ms": elapsed_ms,
            "verify_again": again,
        }),
        || {
            let mut s = format!(
                "Clyra demo: a dbt run and an agent session, recorded, bundled, signed and verified\n\n\
                 journal   {} entries, seq {}..{}, head {}\n\
                 signer    {} (ed25519, trusted in trust.json)\n\n",
                summary.count,
                summary.first_seq,
                summary.last_seq,
                summary.head,
                key.key_id(),
            );
            for ((path, m, size, build_ms), r) in made.iter().zip(&reports) {
                s.push_str(&format!(
                    "{} {}\n  entries      {} (seq {}..{})\n  merkle root  {}\n  size         {} bytes, built in {:.1} ms\n  verdict      {}\n",
                    if m.format == Kind::Def { "DEF" } else { "PEF" },
                    path.display(),
                    m.journal.count,
                    m.journal.first_seq,
                    m.journal.last_seq,
                    m.merkle.root,
                    size,
                    build_ms,
                    if r.is_valid() { "VALID".to_owned() } else { format!("INVALID {:?}", r.codes()) },
                ));
            }
            s.push_str(&format!(
                "\nverify again (offline, needs only the bundle and trust.json):\n  {again}\n\ndone in {elapsed_ms} ms"
            ));
            s
        },
    );
    Ok(if valid {
        Exit::Ok
    } else {
        Exit::VerificationFailed
    })
}
