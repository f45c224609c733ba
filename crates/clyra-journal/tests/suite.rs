//! The store suite: every test runs against SQLite and against the local Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;

use clyra_evidence::digest::Digest;
use clyra_journal::entry::{BodyPolicy, NewEvent};
use clyra_journal::store::Store;
use clyra_journal::verify::verify_tenant;
use serde_json::{json, Value};
use support::Backend;

fn ev(tenant: &str, kind: &str, body: Value) -> NewEvent {
    NewEvent::new(tenant, kind, body)
}

fn in_run(tenant: &str, run: &str, n: u64) -> NewEvent {
    let mut e = ev(tenant, "dbt.model.finished", json!({"n": n}));
    e.run = Some(run.into());
    e
}

fn entries(store: &mut dyn Store, tenant: &str) -> Vec<Value> {
    let mut out = Vec::new();
    store
        .scan(tenant, 0, u64::MAX >> 1, &mut |e| {
            out.push(serde_json::from_slice(&e.canonical).unwrap());
            Ok(())
        })
        .unwrap();
    out
}

fn appends_link_and_verify(b: Backend) {
    let mut s = b.open();
    let r = s
        .append(
            &[
                ev("acme", "a.b", json!({"x": 1})),
                ev("acme", "a.c", json!({})),
            ],
            &BodyPolicy::Hash,
        )
        .unwrap();
    assert_eq!((r[0].seq, r[1].seq), (0, 1));
    let r2 = s
        .append(&[ev("acme", "a.d", Value::Null)], &BodyPolicy::Full)
        .unwrap();
    assert_eq!(r2[0].seq, 2);
    let all = entries(s.as_mut(), "acme");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["prev"], Value::String(Digest::ZERO.to_hex()));
    assert_eq!(all[1]["prev"], Value::String(r[0].hash.to_hex()));
    assert_eq!(all[2]["prev"], Value::String(r[1].hash.to_hex()));
    assert!(all[0].get("body").is_none(), "hash policy keeps no body");
    assert_eq!(all[2]["body"], Value::Null);
    assert_eq!(all[2]["body_policy"], "full");
    let head = s.head("acme").unwrap();
    assert_eq!((head.size, head.head), (3, r2[0].hash));
    let report = verify_tenant(s.as_mut(), "acme", None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.entries, 3);
    assert_eq!(s.tenants().unwrap(), vec!["acme".to_string()]);
}

fn tenants_have_separate_chains(b: Backend) {
    let mut s = b.open();
    s.append(
        &[
            ev("a", "k", json!(1)),
            ev("b", "k", json!(2)),
            ev("a", "k", json!(3)),
        ],
        &BodyPolicy::Hash,
    )
    .unwrap();
    assert_eq!(s.head("a").unwrap().size, 2);
    assert_eq!(s.head("b").unwrap().size, 1);
    assert_eq!(s.head("nobody").unwrap().size, 0);
    for t in ["a", "b"] {
        let r = verify_tenant(s.as_mut(), t, None).unwrap();
        assert!(r.is_ok(), "{r:?}");
        assert!(entries(s.as_mut(), t).iter().all(|e| e["tenant"] == t));
    }
}

fn runs_are_chained_inside_the_tenant(b: Backend) {
    let mut s = b.open();
    let batch = vec![
        in_run("acme", "r1", 0),
        in_run("acme", "r2", 0),
        ev("acme", "x", json!(0)),
        in_run("acme", "r1", 1),
    ];
    let r = s.append(&batch, &BodyPolicy::Hash).unwrap();
    assert_eq!(
        r.iter().map(|r| r.run_seq).collect::<Vec<_>>(),
        vec![Some(0), Some(0), None, Some(1)]
    );
    let r = s
        .append(&[in_run("acme", "r1", 2)], &BodyPolicy::Hash)
        .unwrap();
    assert_eq!(r[0].run_seq, Some(2));
    assert_eq!(s.run_seqs("acme", "r1").unwrap(), vec![0, 3, 4]);
    assert_eq!(s.run_seqs("acme", "r2").unwrap(), vec![1]);
    let all = entries(s.as_mut(), "acme");
    let h3 = Digest::sha256(&clyra_evidence::jcs::canonicalize_value(&all[3]).unwrap());
    assert_eq!(all[4]["run_prev"], Value::String(h3.to_hex()));
    assert_eq!(all[1]["run_prev"], Value::String(Digest::ZERO.to_hex()));
    assert!(verify_tenant(s.as_mut(), "acme", None).unwrap().is_ok());
}

fn runs_are_scanned_by_name_and_listed_by_prefix(b: Backend) {
    let mut s = b.open();
    let batch = vec![
        in_run("acme", "approval:a1", 0),
        in_run("acme", "approval:a2", 0),
        ev("acme", "x", json!(0)),
        in_run("acme", "approval:a1", 1),
        in_run("acme", "dbt-1", 0),
        in_run("globex", "approval:a1", 9),
        // `%` and `_` are literal here, not patterns.
        in_run("acme", "approvals_%", 0),
    ];
    s.append(&batch, &BodyPolicy::Full).unwrap();
    let mut seen = Vec::new();
    s.scan_run("acme", "approval:a1", &mut |e| {
        let v: Value = serde_json::from_slice(&e.canonical).unwrap();
        assert_eq!(v["run"], "approval:a1");
        assert_eq!(v["tenant"], "acme");
        seen.push((e.seq, v["body"]["n"].as_u64().unwrap()));
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, vec![(0, 0), (3, 1)]);
    let mut none = 0;
    s.scan_run("acme", "approval:a", &mut |_| {
        none += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(none, 0, "scan_run matches the whole name, not a prefix");
    assert_eq!(
        s.runs("acme", "approval:").unwrap(),
        vec!["approval:a1".to_string(), "approval:a2".to_string()]
    );
    assert_eq!(s.runs("acme", "approvals_").unwrap(), vec!["approvals_%"]);
    assert_eq!(s.runs("acme", "approval_").unwrap(), Vec::<String>::new());
    assert_eq!(s.runs("acme", "").unwrap().len(), 4);
    assert_eq!(s.runs("globex", "approval:").unwrap(), vec!["approval:a1"]);
    assert!(s.runs("nobody", "").unwrap().is_empty());
    // The trait's default methods (for other backends) give the same answers.
    let mut d = DefaultsOnly(s);
    let mut seqs = Vec::new();
    d.scan_run("acme", "approval:a1", &mut |e| {
        seqs.push(e.seq);
        Ok(())
    })
    .unwrap();
    assert_eq!(seqs, vec![0, 3]);
    assert_eq!(
        d.runs("acme", "approval:").unwrap(),
        vec!["approval:a1".to_string(), "approval:a2".to_string()]
    );
    assert_eq!(d.runs("acme", "").unwrap().len(), 4);
}

/// A store that forwards the required methods and keeps the trait's default ones.
struct DefaultsOnly(Box<dyn Store>);

impl Store for DefaultsOnly {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn append(
        &mut self,
        events: &[NewEvent],
        policy: &BodyPolicy,
    ) -> Result<Vec<clyra_journal::Receipt>, clyra_journal::StoreError> {
        self.0.append(events, policy)
    }
    fn head(
        &mut self,
        tenant: &str,
    ) -> Result<clyra_journal::ChainHead, clyra_journal::StoreError> {
        self.0.head(tenant)
    }
    fn tenants(&mut self) -> Result<Vec<String>, clyra_journal::StoreError> {
        self.0.tenants()
    }
    fn scan(
        &mut self,
        tenant: &str,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(
            clyra_journal::store::StoredEntry,
        ) -> Result<(), clyra_journal::StoreError>,
    ) -> Result<(), clyra_journal::StoreError> {
        self.0.scan(tenant, from, to, f)
    }
    fn leaves(
        &mut self,
        tenant: &str,
        size: u64,
    ) -> Result<Vec<Digest>, clyra_journal::StoreError> {
        self.0.leaves(tenant, size)
    }
    fn run_seqs(&mut self, tenant: &str, run: &str) -> Result<Vec<u64>, clyra_journal::StoreError> {
        self.0.run_seqs(tenant, run)
    }
    fn seq_range(
        &mut self,
        tenant: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<Option<(u64, u64)>, clyra_journal::StoreError> {
        self.0.seq_range(tenant, from, to)
    }
    fn put_checkpoint(
        &mut self,
        tenant: &str,
        cp: &clyra_journal::store::StoredCheckpoint,
    ) -> Result<(), clyra_journal::StoreError> {
        self.0.put_checkpoint(tenant, cp)
    }
    fn checkpoints(
        &mut self,
        tenant: &str,
    ) -> Result<Vec<clyra_journal::store::StoredCheckpoint>, clyra_journal::StoreError> {
        self.0.checkpoints(tenant)
    }
}

fn ids_make_appends_idempotent(b: Backend) {
    let mut s = b.open();
    let mut e = ev("acme", "k", json!({"v": 1}));
    e.id = Some("evt-1".into());
    let first = s
        .append(std::slice::from_ref(&e), &BodyPolicy::Hash)
        .unwrap();
    assert!(!first[0].duplicate);
    // Again, and twice in one batch.
    let again = s
        .append(&[e.clone(), e.clone()], &BodyPolicy::Hash)
        .unwrap();
    assert!(again
        .iter()
        .all(|r| r.duplicate && r.seq == first[0].seq && r.hash == first[0].hash));
    assert_eq!(s.head("acme").unwrap().size, 1);
    // The same id in another tenant is another event.
    let mut other = e.clone();
    other.tenant = "globex".into();
    assert!(!s.append(&[other], &BodyPolicy::Hash).unwrap()[0].duplicate);
    let mut e2 = ev("acme", "k", json!({"v": 2}));
    e2.id = Some("evt-2".into());
    let batch = s.append(&[e2.clone(), e2], &BodyPolicy::Hash).unwrap();
    assert!(!batch[0].duplicate && batch[1].duplicate && batch[0].seq == batch[1].seq);
    assert_eq!(s.head("acme").unwrap().size, 2);
}

fn a_bad_event_writes_nothing(b: Backend) {
    let mut s = b.open();
    s.append(&[ev("acme", "k", json!(1))], &BodyPolicy::Hash)
        .unwrap();
    let before = s.head("acme").unwrap();
    let bad = vec![ev("acme", "k", json!(2)), ev("acme", "Not.Valid", json!(3))];
    let err = s.append(&bad, &BodyPolicy::Hash).unwrap_err();
    assert!(err.to_string().contains("event 1"), "{err}");
    assert_eq!(s.head("acme").unwrap(), before);
    assert_eq!(entries(s.as_mut(), "acme").len(), 1);
}

fn concurrent_writers_never_fork(b: Backend) {
    let threads = 4;
    let per = 50;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let b = &b;
            scope.spawn(move || {
                let mut s = b.open();
                for i in 0..per {
                    let mut e = in_run("acme", &format!("run-{t}"), i);
                    e.id = Some(format!("{t}-{i}"));
                    s.append(&[e, ev("acme", "noise", json!(i))], &BodyPolicy::Hash)
                        .unwrap();
                }
            });
        }
    });
    let mut s = b.open();
    let head = s.head("acme").unwrap();
    assert_eq!(head.size, threads * per * 2);
    let r = verify_tenant(s.as_mut(), "acme", None).unwrap();
    assert!(r.is_ok(), "{r:?}");
    for t in 0..threads {
        assert_eq!(
            s.run_seqs("acme", &format!("run-{t}")).unwrap().len() as u64,
            per
        );
    }
}

fn time_ranges_map_to_seq_ranges(b: Backend) {
    let mut s = b.open();
    s.append(
        &[ev("acme", "k", json!(0)), ev("acme", "k", json!(1))],
        &BodyPolicy::Hash,
    )
    .unwrap();
    let all = entries(s.as_mut(), "acme");
    let t0: jiff::Timestamp = all[0]["recorded_at"].as_str().unwrap().parse().unwrap();
    let hour = jiff::SignedDuration::from_hours(1);
    assert_eq!(
        s.seq_range("acme", t0 - hour, t0 + hour).unwrap(),
        Some((0, 1))
    );
    assert_eq!(
        s.seq_range("acme", t0 + hour, t0 + hour + hour).unwrap(),
        None
    );
}

fn seed(b: &Backend, n: u64) -> Box<dyn Store> {
    let mut s = b.open();
    let events: Vec<NewEvent> = (0..n).map(|i| ev("acme", "k", json!({"i": i}))).collect();
    s.append(&events, &BodyPolicy::Full).unwrap();
    s
}

fn broken_at(b: &Backend) -> Option<u64> {
    let mut s = b.open();
    verify_tenant(s.as_mut(), "acme", None)
        .unwrap()
        .broken
        .map(|x| x.seq)
}

fn tamper_edit_is_detected(b: Backend) {
    seed(&b, 6);
    let text = String::from_utf8(b.entry_bytes("acme", 2))
        .unwrap()
        .replace("{\"i\":2}", "{\"i\":7}");
    b.set_entry_bytes("acme", 2, text.as_bytes());
    assert_eq!(broken_at(&b), Some(2));
}

fn tamper_edit_with_rehash_is_detected(b: Backend) {
    // An attacker who also fixes the hash columns still breaks the next link.
    seed(&b, 6);
    let text = String::from_utf8(b.entry_bytes("acme", 2))
        .unwrap()
        .replace("{\"i\":2}", "{\"i\":7}");
    b.rewrite_entry("acme", 2, text.as_bytes(), false);
    assert_eq!(broken_at(&b), Some(3));
}

fn tamper_delete_is_detected(b: Backend) {
    seed(&b, 6);
    b.exec("DELETE FROM {s}.clyra_entries WHERE tenant = 'acme' AND seq = 3");
    assert_eq!(broken_at(&b), Some(3));
}

fn tamper_truncate_tail_is_detected(b: Backend) {
    seed(&b, 6);
    b.exec("DELETE FROM {s}.clyra_entries WHERE tenant = 'acme' AND seq = 5");
    assert_eq!(broken_at(&b), Some(5));
}

fn tamper_reorder_is_detected(b: Backend) {
    seed(&b, 6);
    let e1 = b.entry_bytes("acme", 1);
    let e2 = b.entry_bytes("acme", 2);
    b.set_entry_bytes("acme", 1, &e2);
    b.set_entry_bytes("acme", 2, &e1);
    assert_eq!(broken_at(&b), Some(1));
}

fn tamper_cross_tenant_splice_is_detected(b: Backend) {
    let mut s = seed(&b, 3);
    s.append(&[ev("other", "k", json!({"i": 1}))], &BodyPolicy::Full)
        .unwrap();
    let foreign = b.entry_bytes("other", 0);
    b.set_entry_bytes("acme", 0, &foreign);
    assert_eq!(broken_at(&b), Some(0));
}

fn key() -> clyra_evidence::keys::PrivateKey {
    clyra_evidence::keys::PrivateKey::generate(clyra_evidence::keys::Algorithm::Ed25519).unwrap()
}

fn checkpoints_sign_and_prove(b: Backend) {
    use clyra_evidence::keys::Signer;
    use clyra_evidence::merkle::{leaf_hash, verify_consistency, verify_inclusion};
    use clyra_journal::{checkpoint, proof};
    let k = key();
    let pk = vec![k.public_key().clone()];
    let mut s = seed(&b, 5);
    let now = jiff::Timestamp::now();
    let c5 = checkpoint::create(s.as_mut(), "acme", "clyra.test/journal", &k, now).unwrap();
    assert_eq!(c5.size, 5);
    assert!(
        c5.note.starts_with("clyra.test/journal/acme\n5\n"),
        "{}",
        c5.note
    );
    // Same size again: the stored one comes back.
    assert_eq!(
        checkpoint::create(s.as_mut(), "acme", "clyra.test/journal", &k, now).unwrap(),
        c5
    );
    s.append(
        &[ev("acme", "k", json!(5)), ev("acme", "k", json!(6))],
        &BodyPolicy::Hash,
    )
    .unwrap();
    let c7 = checkpoint::create(s.as_mut(), "acme", "clyra.test/journal", &k, now).unwrap();
    assert_eq!(c7.size, 7);

    for seq in [0, 3, 6] {
        let p = proof::inclusion(s.as_mut(), "acme", seq, 7).unwrap();
        let bytes = b.entry_bytes("acme", seq);
        verify_inclusion(&leaf_hash(&bytes), &p, &c7.root).unwrap();
    }
    assert!(proof::inclusion(s.as_mut(), "acme", 7, 7).is_err());
    let cons = proof::consistency(s.as_mut(), "acme", 5, 7).unwrap();
    verify_consistency(&cons, &c5.root, &c7.root).unwrap();
    assert_eq!(
        checkpoint::covering(s.as_mut(), "acme", 4)
            .unwrap()
            .unwrap()
            .size,
        7
    );
    assert!(checkpoint::covering(s.as_mut(), "acme", 7)
        .unwrap()
        .is_none());

    let r = verify_tenant(s.as_mut(), "acme", Some(&pk)).unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.checkpoints_checked, 2);
    // Under a key that did not sign: fails closed.
    let stranger = vec![key().public_key().clone()];
    let r = verify_tenant(s.as_mut(), "acme", Some(&stranger)).unwrap();
    assert_eq!(
        r.broken.unwrap().seq,
        4,
        "the first checkpoint (size 5) is where trust ends"
    );
}

fn rewriting_the_whole_chain_is_caught_by_a_checkpoint(b: Backend) {
    // An attacker with write access rewrites entry 1 and re-links every later entry and the head:
    // the chain is consistent again, but the signed checkpoint's root is not.
    use clyra_journal::checkpoint;
    let k = key();
    let mut s = seed(&b, 4);
    checkpoint::create(
        s.as_mut(),
        "acme",
        "clyra.test/journal",
        &k,
        jiff::Timestamp::now(),
    )
    .unwrap();
    drop(s);
    let mut prev = Digest::from_hex(
        serde_json::from_slice::<Value>(&b.entry_bytes("acme", 1)).unwrap()["prev"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for seq in 1..4u64 {
        let mut v: Value = serde_json::from_slice(&b.entry_bytes("acme", seq)).unwrap();
        if seq == 1 {
            v["body"] = json!({"i": 100});
        }
        v["prev"] = Value::String(prev.to_hex());
        let bytes = clyra_evidence::jcs::canonicalize_value(&v).unwrap();
        b.rewrite_entry("acme", seq, &bytes, true);
        prev = Digest::sha256(&bytes);
    }
    let broken = {
        let mut s = b.open();
        verify_tenant(s.as_mut(), "acme", None)
            .unwrap()
            .broken
            .unwrap()
    };
    assert_eq!(broken.seq, 3, "{broken}");
    assert!(broken.reason.contains("checkpoint at size 4"), "{broken}");
}

both!(
    appends_link_and_verify,
    tenants_have_separate_chains,
    runs_are_chained_inside_the_tenant,
    runs_are_scanned_by_name_and_listed_by_prefix,
    ids_make_appends_idempotent,
    a_bad_event_writes_nothing,
    concurrent_writers_never_fork,
    time_ranges_map_to_seq_ranges,
    tamper_edit_is_detected,
    tamper_edit_with_rehash_is_detected,
    tamper_delete_is_detected,
    tamper_truncate_tail_is_detected,
    tamper_reorder_is_detected,
    tamper_cross_tenant_splice_is_detected,
    checkpoints_sign_and_prove,
    rewriting_the_whole_chain_is_caught_by_a_checkpoint,
);
