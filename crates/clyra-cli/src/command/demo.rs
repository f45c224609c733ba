//! `clyra demo`: the main job as a newcomer first sees it, offline and in seconds.
//!
//! Records a small, realistic scenario as a hash-chained journal, signs a statement about it and
//! verifies it, using only the embedded defaults (files in one directory; no server).

use std::path::Path;

use anyhow::Context as _;
use clyra_evidence::bundle::{verify_path, Kind, VerifyOptions};
use clyra_evidence::keys::{Algorithm, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_journal::checkpoint;
use clyra_journal::entry::{BodyPolicy, NewEvent};
use clyra_journal::export::{export, ExportOptions, Selection};
use clyra_journal::store::Store as _;
use clyra_journal::verify::verify_tenant;
use serde_json::{json, Value};

use crate::command::{keys, write_new_file};
use crate::output::{Exit, Output};

/// The demo's tenant.
const TENANT: &str = "acme";

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

    // 2. The journal: the embedded SQLite store in DIR/journal. Each event is sealed into the
    //    tenant's hash chain (and its run's chain) in one durable transaction.
    let journal_dir = dir.join("journal");
    let store_url = format!("sqlite:{}", journal_dir.display());
    let mut store = clyra_journal::sqlite::SqliteStore::open(&journal_dir)?;
    let mut events = Vec::new();
    for event in scenario() {
        let Value::Object(mut body) = event else {
            anyhow::bail!("scenario events are objects");
        };
        let mut take = |k: &str| body.remove(k).and_then(|v| v.as_str().map(str::to_owned));
        let kind = take("kind").context("scenario event without kind")?;
        let ts = take("ts")
            .map(|t| t.parse::<jiff::Timestamp>())
            .transpose()?;
        let run = take("run_id").or_else(|| take("session"));
        let mut e = NewEvent::new(TENANT, kind, Value::Object(body));
        e.ts = ts;
        e.run = run;
        events.push(e);
    }
    // The demo keeps bodies in full so the bundles show what happened; the default policy keeps
    // only each body's SHA-256.
    store.append(&events, &BodyPolicy::Full)?;

    // 3. A signed checkpoint (C2SP signed note) over the whole journal, then the journal walk a
    //    verifier would do: every link, every stored hash, the checkpoint's root and signature.
    let cp = checkpoint::create(
        &mut store,
        TENANT,
        "clyra-demo/journal",
        &key,
        jiff::Timestamp::now(),
    )?;
    let walk = verify_tenant(
        &mut store,
        TENANT,
        Some(std::slice::from_ref(key.public_key())),
    )?;
    if let Some(b) = &walk.broken {
        anyhow::bail!("the demo journal does not verify: {b}");
    }

    // 4. Two bundles cut from the one journal: DEF for the dbt run, PEF for the agent session,
    //    each with its run's chain and an inclusion proof per entry to the checkpoint.
    std::fs::create_dir_all(dir.join("bundles"))?;
    let created_at = jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond())?;
    let signers: [&dyn Signer; 1] = [&key];
    let mut made = Vec::new();
    for (kind, run, name) in [
        (Kind::Def, "dbt-2026-11-24T09:00:00Z-7f3a", "run.def.zip"),
        (Kind::Pef, "agent-7c1", "session.pef.zip"),
    ] {
        let built = std::time::Instant::now();
        let bundle = export(
            &mut store,
            &ExportOptions {
                tenant: TENANT,
                selection: Selection::Run(run.into()),
                kind,
                environment: "prod".into(),
                bundle_id: Some(format!("demo-{run}")),
                created_at,
                signers: &signers,
                checkpoint_key: &key,
                log_name: "clyra-demo/journal",
                artifacts: &[],
            },
        )?;
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
            "journal": {"store": store_url, "entries": walk.entries, "head": walk.head, "checkpoint": cp.note},
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
                 journal   {} ({} entries, chain verified), head {}\n\
                 checkpt   size {}, root {}, signed note in the store\n\
                 signer    {} (ed25519, trusted in trust.json)\n\n",
                store_url,
                walk.entries,
                walk.head,
                cp.size,
                cp.root,
                key.key_id(),
            );
            for ((path, m, size, build_ms), r) in made.iter().zip(&reports) {
                s.push_str(&format!(
                    "{} {}\n  entries      {} of the run (run_seq {}..{}), each with an inclusion proof\n  merkle root  {}\n  size         {} bytes, built in {:.1} ms\n  verdict      {}\n",
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
                "\nverify again (offline, needs only the bundle and trust.json):\n  {again}\n\
                 walk the journal:\n  clyra journal verify --store {store_url} --trust {}\n\ndone in {elapsed_ms} ms",
                trust_path.display()
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
