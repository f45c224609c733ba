//! The [`Store`] trait and the append logic every backend shares.
//!
//! A backend gives [`append_in_tx`] a transaction ([`Tx`]) in which the tenant's chain head is
//! locked (SQLite: `BEGIN IMMEDIATE`; Postgres: `SELECT … FOR UPDATE` on the head row). Reading the
//! head, inserting the entries and moving the head happen in that one transaction, so two writers,
//! in one process or many, can never fork a chain: the second waits for the first and seals after
//! its head.

use std::collections::HashMap;

use clyra_evidence::digest::Digest;
use jiff::Timestamp;

use crate::entry::{seal, BodyPolicy, ChainHead, NewEvent, RunHead, SealError, SealedEntry};

/// What the journal answers for one appended event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The tenant.
    pub tenant: String,
    /// The entry's `seq`.
    pub seq: u64,
    /// SHA-256 of the entry's canonical bytes.
    pub hash: Digest,
    /// The entry's `run_seq`, when it belongs to a run.
    pub run_seq: Option<u64>,
    /// True when an entry with the same `id` already existed: nothing was appended, and `seq` and
    /// `hash` are that entry's.
    pub duplicate: bool,
}

/// One stored row, as the store holds it (a verifier recomputes everything from `canonical`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The row's `seq` column.
    pub seq: u64,
    /// The stored entry bytes.
    pub canonical: Vec<u8>,
    /// The stored hash column (32 bytes unless tampered with).
    pub hash: Vec<u8>,
    /// The stored leaf-hash column.
    pub leaf: Vec<u8>,
}

/// A signed checkpoint kept by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Merkle root of entries `0..size`.
    pub root: Digest,
    /// The signed note text (C2SP tlog-checkpoint).
    pub note: String,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Postgres failed.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// An entry could not be sealed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// An event failed validation.
    #[error("event {index}: {source}")]
    Event {
        /// Position in the batch.
        index: usize,
        /// What is wrong.
        source: crate::entry::EventError,
    },
    /// The store is not usable (wrong URL, missing directory, incompatible schema).
    #[error("{0}")]
    Config(String),
    /// The stored data is not what the journal wrote (a column of the wrong size, a bad number).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// Filesystem error.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Where journal entries live. Every method is one short transaction or one read.
pub trait Store: Send {
    /// A human-readable name for messages (`sqlite:/var/lib/clyra`, `postgres://…/db (schema clyra)`).
    fn describe(&self) -> String;

    /// Seals and stores `events` (of any tenants) in one transaction: all or nothing. An event
    /// whose `id` is already in its tenant's journal is not appended again; its receipt says
    /// `duplicate` and carries the existing entry's `seq` and hash.
    fn append(
        &mut self,
        events: &[NewEvent],
        policy: &BodyPolicy,
    ) -> Result<Vec<Receipt>, StoreError>;

    /// The tenant's chain head ([`ChainHead::EMPTY`] for an unknown tenant).
    fn head(&mut self, tenant: &str) -> Result<ChainHead, StoreError>;

    /// Tenants that have a chain, sorted.
    fn tenants(&mut self) -> Result<Vec<String>, StoreError>;

    /// Calls `f` with the stored rows of `tenant` whose `seq` is in `from..to`, in `seq` order.
    fn scan(
        &mut self,
        tenant: &str,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// The stored leaf hashes of entries `0..size`, in order.
    fn leaves(&mut self, tenant: &str, size: u64) -> Result<Vec<Digest>, StoreError>;

    /// The `seq` of every entry of `run`, in order.
    fn run_seqs(&mut self, tenant: &str, run: &str) -> Result<Vec<u64>, StoreError>;

    /// Calls `f` with the stored rows of one run of `tenant`, in `seq` order (nothing for a run
    /// that does not exist). The backends answer with one indexed query; this default reads the
    /// entries one by one.
    fn scan_run(
        &mut self,
        tenant: &str,
        run: &str,
        f: &mut dyn FnMut(StoredEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for seq in self.run_seqs(tenant, run)? {
            self.scan(tenant, seq, seq.saturating_add(1), f)?;
        }
        Ok(())
    }

    /// The names of `tenant`'s runs that start with `prefix` (all runs for `""`), sorted by
    /// their bytes. The backends read the run heads, one row per run; this default walks the
    /// whole chain.
    fn runs(&mut self, tenant: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = std::collections::BTreeSet::new();
        self.scan(tenant, 0, u64::MAX, &mut |e| {
            let entry: serde_json::Value = serde_json::from_slice(&e.canonical)
                .map_err(|err| StoreError::Corrupt(format!("entry {}: {err}", e.seq)))?;
            if let Some(run) = entry.get("run").and_then(serde_json::Value::as_str) {
                if run.starts_with(prefix) {
                    out.insert(run.to_string());
                }
            }
            Ok(())
        })?;
        Ok(out.into_iter().collect())
    }

    /// The first and last `seq` whose `recorded_at` is in `[from, to)`, if any.
    fn seq_range(
        &mut self,
        tenant: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<(u64, u64)>, StoreError>;

    /// Keeps a signed checkpoint (a second one of the same size is ignored).
    fn put_checkpoint(
        &mut self,
        tenant: &str,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError>;

    /// The tenant's checkpoints, by size.
    fn checkpoints(&mut self, tenant: &str) -> Result<Vec<StoredCheckpoint>, StoreError>;
}

/// An existing entry found by idempotency key: `(seq, hash, run_seq)`.
pub(crate) type IdHit = (u64, Digest, Option<u64>);

/// What [`append_in_tx`] needs of a backend's open transaction. Lookups and writes take whole
/// batches, so a networked store does a fixed number of round trips per append, not one per event.
pub(crate) trait Tx {
    /// Locks the tenant's head for the rest of the transaction and returns it.
    fn lock_head(&mut self, tenant: &str) -> Result<ChainHead, StoreError>;
    /// The heads of those of `runs` that exist, under the tenant's lock.
    fn run_heads(
        &mut self,
        tenant: &str,
        runs: &[&str],
    ) -> Result<HashMap<String, RunHead>, StoreError>;
    /// The entries whose idempotency key is one of `ids`.
    fn find_ids(
        &mut self,
        tenant: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, IdHit>, StoreError>;
    /// Inserts sealed entries.
    fn insert_many(&mut self, entries: &[SealedEntry]) -> Result<(), StoreError>;
    /// Moves the tenant's head.
    fn put_head(&mut self, tenant: &str, head: &ChainHead) -> Result<(), StoreError>;
    /// Moves run heads.
    fn put_run_heads(&mut self, tenant: &str, heads: &[(&str, RunHead)]) -> Result<(), StoreError>;
}

/// The shared append: validates, locks each tenant once (in sorted order, so two batches never
/// deadlock), looks up run heads and idempotency keys per tenant in one go, seals in batch order,
/// inserts, moves the heads. The caller commits.
pub(crate) fn append_in_tx(
    tx: &mut dyn Tx,
    events: &[NewEvent],
    policy: &BodyPolicy,
    now: Timestamp,
) -> Result<Vec<Receipt>, StoreError> {
    for (index, e) in events.iter().enumerate() {
        e.validate()
            .map_err(|source| StoreError::Event { index, source })?;
    }
    let mut tenants: Vec<&str> = events.iter().map(|e| e.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let mut heads: HashMap<&str, ChainHead> = HashMap::new();
    let mut runs: HashMap<(&str, &str), RunHead> = HashMap::new();
    let mut ids: HashMap<(&str, &str), IdHit> = HashMap::new();
    for t in tenants {
        heads.insert(t, tx.lock_head(t)?);
        let mut want_runs: Vec<&str> = events
            .iter()
            .filter(|e| e.tenant == t)
            .filter_map(|e| e.run.as_deref())
            .collect();
        want_runs.sort_unstable();
        want_runs.dedup();
        if !want_runs.is_empty() {
            for (run, rh) in tx.run_heads(t, &want_runs)? {
                if let Some(r) = want_runs.iter().find(|r| **r == run) {
                    runs.insert((t, r), rh);
                }
            }
        }
        let mut want_ids: Vec<&str> = events
            .iter()
            .filter(|e| e.tenant == t)
            .filter_map(|e| e.id.as_deref())
            .collect();
        want_ids.sort_unstable();
        want_ids.dedup();
        if !want_ids.is_empty() {
            for (id, hit) in tx.find_ids(t, &want_ids)? {
                if let Some(i) = want_ids.iter().find(|i| **i == id) {
                    ids.insert((t, i), hit);
                }
            }
        }
    }
    let mut receipts = Vec::with_capacity(events.len());
    let mut sealed_all: Vec<SealedEntry> = Vec::with_capacity(events.len());
    let mut moved_runs: Vec<(&str, &str)> = Vec::new();
    for e in events {
        let tenant = e.tenant.as_str();
        if let Some(id) = e.id.as_deref() {
            if let Some((seq, hash, run_seq)) = ids.get(&(tenant, id)).copied() {
                receipts.push(Receipt {
                    tenant: e.tenant.clone(),
                    seq,
                    hash,
                    run_seq,
                    duplicate: true,
                });
                continue;
            }
        }
        let head = heads.get(tenant).copied().unwrap_or(ChainHead::EMPTY);
        let run_head = e
            .run
            .as_deref()
            .and_then(|run| runs.get(&(tenant, run)).copied());
        let sealed = seal(e, policy, &head, run_head.as_ref(), now)?;
        heads.insert(
            tenant,
            ChainHead {
                size: sealed.seq + 1,
                head: sealed.hash,
                recorded_at: Some(sealed.recorded_at),
            },
        );
        if let (Some(run), Some((_, run_seq))) = (e.run.as_deref(), &sealed.run) {
            runs.insert(
                (tenant, run),
                RunHead {
                    size: run_seq + 1,
                    head: sealed.hash,
                },
            );
            moved_runs.push((tenant, run));
        }
        let run_seq = sealed.run.as_ref().map(|r| r.1);
        if let Some(id) = e.id.as_deref() {
            ids.insert((tenant, id), (sealed.seq, sealed.hash, run_seq));
        }
        receipts.push(Receipt {
            tenant: e.tenant.clone(),
            seq: sealed.seq,
            hash: sealed.hash,
            run_seq,
            duplicate: false,
        });
        sealed_all.push(sealed);
    }
    if sealed_all.is_empty() {
        return Ok(receipts);
    }
    tx.insert_many(&sealed_all)?;
    for (tenant, head) in &heads {
        if sealed_all.iter().any(|s| s.tenant == *tenant) {
            tx.put_head(tenant, head)?;
        }
    }
    moved_runs.sort_unstable();
    moved_runs.dedup();
    let mut by_tenant: HashMap<&str, Vec<(&str, RunHead)>> = HashMap::new();
    for (tenant, run) in moved_runs {
        if let Some(rh) = runs.get(&(tenant, run)) {
            by_tenant.entry(tenant).or_default().push((run, *rh));
        }
    }
    for (tenant, list) in by_tenant {
        tx.put_run_heads(tenant, &list)?;
    }
    Ok(receipts)
}

/// Gathers the leaf hashes of entries `0..size` from rows read in `seq` order, and names a gap
/// or a short read as corruption.
pub(crate) struct Leaves<'a> {
    tenant: &'a str,
    size: u64,
    out: Vec<Digest>,
}

impl<'a> Leaves<'a> {
    pub(crate) fn new(tenant: &'a str, size: u64) -> Self {
        Leaves {
            tenant,
            size,
            out: Vec::with_capacity(usize::try_from(size).unwrap_or(0)),
        }
    }

    /// Takes the next row's `seq` and stored leaf column.
    pub(crate) fn push(&mut self, seq: u64, leaf: &[u8]) -> Result<(), StoreError> {
        let expected = self.out.len() as u64;
        if seq != expected {
            return Err(StoreError::Corrupt(format!(
                "tenant {}: entry {expected} is missing",
                self.tenant
            )));
        }
        self.out.push(digest_from_slice(leaf, "leaf")?);
        Ok(())
    }

    /// The leaves, if there were exactly `size` of them.
    pub(crate) fn finish(self) -> Result<Vec<Digest>, StoreError> {
        if self.out.len() as u64 != self.size {
            return Err(StoreError::Corrupt(format!(
                "tenant {}: {} entries stored, {} expected",
                self.tenant,
                self.out.len(),
                self.size
            )));
        }
        Ok(self.out)
    }
}

pub(crate) fn digest_from_slice(bytes: &[u8], what: &str) -> Result<Digest, StoreError> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!("{what} is {} bytes, expected 32", bytes.len()))
    })?;
    Ok(Digest::from(arr))
}

pub(crate) fn u64_from_i64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {v}")))
}

pub(crate) fn i64_from_u64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Corrupt(format!("{v} does not fit a signed 64-bit column")))
}

pub(crate) fn ts_from_ms(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| StoreError::Corrupt(format!("recorded_at {ms}: {e}")))
}
