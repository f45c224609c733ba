//! Cutting a bundle from the journal: the entries of one run, or of a time range, with an
//! inclusion proof for each to a signed checkpoint (bundle format 0.2, `spec/common/bundle.md` §6).
//!
//! - A **run** export holds every entry of the run, linked by `run_seq`/`run_prev`, so a verifier
//!   sees the run is complete from its first entry; the entries' tenant-wide `seq`s need not be
//!   contiguous.
//! - A **time-range** export holds the contiguous segment of the tenant's chain whose
//!   `recorded_at` falls in `[from, to)` (`recorded_at` never decreases, so that is one segment).
//!
//! Both carry the checkpoint note and proofs: the latest stored checkpoint that covers the last
//! exported entry, or a new one signed with the checkpoint key.

use std::collections::BTreeSet;

use clyra_evidence::bundle::{
    bundle_id_from, Bundle, BundleBuilder, BundleError, Governance, Kind, Producer,
};
use clyra_evidence::digest::Digest;
use clyra_evidence::keys::Signer;
use clyra_evidence::merkle;
use jiff::Timestamp;
use serde_json::Value;

use crate::checkpoint::{self, CheckpointError};
use crate::store::{Store, StoreError};

/// Which entries to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every entry of a run.
    Run(String),
    /// Entries recorded in `[from, to)`.
    Range {
        /// Start, inclusive.
        from: Timestamp,
        /// End, exclusive.
        to: Timestamp,
    },
}

/// What to export and how to sign it.
#[allow(missing_debug_implementations)]
pub struct ExportOptions<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The entries.
    pub selection: Selection,
    /// DEF (data) or PEF (agents and automation).
    pub kind: Kind,
    /// The environment recorded in the manifest (`prod`, `staging`, …).
    pub environment: String,
    /// The bundle id; `<format>-<tenant>-<run or range>` by default.
    pub bundle_id: Option<String>,
    /// `created_at` of the bundle.
    pub created_at: Timestamp,
    /// Keys that sign the bundle's statement.
    pub signers: &'a [&'a dyn Signer],
    /// The Ed25519 key that signs a new checkpoint when no stored one covers the entries.
    pub checkpoint_key: &'a dyn Signer,
    /// The log name for a new checkpoint (origin `<log name>/<tenant>`).
    pub log_name: &'a str,
    /// Files embedded as `artifacts/<path>` (a dbt run's lineage, its replay set, ...).
    pub artifacts: &'a [ExportArtifact],
}

/// A file to embed in an exported bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportArtifact {
    /// Path under `artifacts/`; must be a safe relative path.
    pub path: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Media type (`application/json`, `application/sql`, ...).
    pub media_type: String,
}

/// Why an export failed. Nothing is written on failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No entries matched.
    #[error("tenant {tenant}: no entries {what}")]
    Empty {
        /// Tenant.
        tenant: String,
        /// What was asked for.
        what: String,
    },
    /// The checkpoint could not be made.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The journal does not match its checkpoint or its chain (it was altered): the bundle would
    /// not verify, so none is cut.
    #[error("the journal does not agree with itself at seq {seq}: {reason} (run `clyra journal verify`)")]
    Inconsistent {
        /// Where.
        seq: u64,
        /// What.
        reason: String,
    },
    /// The bundle could not be built.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// Cuts a bundle from `store` as `opts` says.
pub fn export(store: &mut dyn Store, opts: &ExportOptions<'_>) -> Result<Bundle, ExportError> {
    let tenant = opts.tenant;
    let seqs: Vec<u64> = match &opts.selection {
        Selection::Run(run) => store.run_seqs(tenant, run)?,
        Selection::Range { from, to } => match store.seq_range(tenant, *from, *to)? {
            Some((a, b)) => (a..=b).collect(),
            None => Vec::new(),
        },
    };
    let what = match &opts.selection {
        Selection::Run(run) => format!("in run {run}"),
        Selection::Range { from, to } => format!("recorded in [{from}, {to})"),
    };
    let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
        return Err(ExportError::Empty {
            tenant: tenant.to_string(),
            what,
        });
    };

    let cp = match checkpoint::covering(store, tenant, last)? {
        Some(cp) => cp,
        None => checkpoint::create(
            store,
            tenant,
            opts.log_name,
            opts.checkpoint_key,
            Timestamp::now(),
        )?,
    };
    let leaves = store.leaves(tenant, cp.size)?;
    if merkle::root(&leaves) != cp.root {
        return Err(ExportError::Inconsistent {
            seq: cp.size.saturating_sub(1),
            reason: format!(
                "the stored entries do not give the root of the checkpoint of size {}",
                cp.size
            ),
        });
    }

    let wanted: BTreeSet<u64> = seqs.iter().copied().collect();
    let mut entries: Vec<(u64, Value)> = Vec::with_capacity(seqs.len());
    let mut bad: Option<ExportError> = None;
    // Every entry from the first exported one up to the checkpoint's size must match its leaf
    // and link to the one before: an entry edited in the database (even with its hash columns
    // fixed up) breaks the next link, and the checkpoint's root was computed from the leaves.
    let mut prev: Option<Digest> = None;
    store.scan(tenant, first, cp.size, &mut |row| {
        if bad.is_some() {
            return Ok(());
        }
        let fail = |reason: String| ExportError::Inconsistent {
            seq: row.seq,
            reason,
        };
        if merkle::leaf_hash(&row.canonical).as_bytes().as_slice() != row.leaf.as_slice() {
            bad = Some(fail("the entry's bytes do not match its leaf hash".into()));
            return Ok(());
        }
        let v = match clyra_evidence::jcs::parse_strict(&row.canonical) {
            Ok(v) => v,
            Err(e) => {
                bad = Some(fail(format!("entry is not JSON: {e}")));
                return Ok(());
            }
        };
        let entry_prev = v
            .get("prev")
            .and_then(Value::as_str)
            .and_then(|p| Digest::from_hex(p).ok());
        if let Some(expected) = prev {
            if entry_prev != Some(expected) {
                bad = Some(fail(
                    "prev does not link to the previous entry: the chain is broken".into(),
                ));
                return Ok(());
            }
        }
        prev = Some(Digest::sha256(&row.canonical));
        if wanted.contains(&row.seq) {
            entries.push((row.seq, v));
        }
        Ok(())
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    if entries.len() != seqs.len() {
        return Err(ExportError::Inconsistent {
            seq: first,
            reason: format!("{} entries selected, {} stored", seqs.len(), entries.len()),
        });
    }
    // Run entries come back in seq order, which is also run_seq order.
    let mut proofs = Vec::with_capacity(entries.len());
    let mut actors = BTreeSet::new();
    for (seq, v) in &entries {
        proofs.push(merkle::inclusion_proof(&leaves, *seq).map_err(|e| {
            ExportError::Inconsistent {
                seq: *seq,
                reason: e.to_string(),
            }
        })?);
        actors_of(v, &mut actors);
    }

    let run_id = match &opts.selection {
        Selection::Run(run) => run.clone(),
        Selection::Range { .. } => format!("seq-{first}-{last}"),
    };
    let bundle_id = opts
        .bundle_id
        .clone()
        .unwrap_or_else(|| bundle_id_from(&format!("{}-{tenant}-{run_id}", opts.kind.format())));
    let governance = Governance {
        tenant: tenant.to_string(),
        environment: opts.environment.clone(),
        run_id,
        actors: actors.into_iter().collect(),
    };
    let producer = Producer {
        name: "clyra".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut builder =
        BundleBuilder::new(opts.kind, bundle_id, opts.created_at, producer, governance);
    if let Selection::Run(run) = &opts.selection {
        builder.run_chain(run.clone())?;
    }
    for (seq, v) in entries {
        builder.push_entry(v).map_err(|e| match e {
            BundleError::ChainBroken { reason, .. } | BundleError::InvalidEntry { reason, .. } => {
                ExportError::Inconsistent { seq, reason }
            }
            other => ExportError::Bundle(other),
        })?;
    }
    for a in opts.artifacts {
        builder.artifact(&a.path, a.bytes.clone(), a.media_type.clone())?;
    }
    builder.derive_predicate();
    builder.checkpoint(cp.note, proofs);
    Ok(builder.build(opts.signers)?)
}

/// The people and services an entry names: the journal's `actor`, and in a kept body an `actor`
/// object (`{"type", "id", "on_behalf_of"?}` as `type:id`), its `on_behalf_of`, and an
/// `approver`.
fn actors_of(entry: &Value, out: &mut BTreeSet<String>) {
    if let Some(a) = entry.get("actor").and_then(Value::as_str) {
        out.insert(a.to_string());
    }
    let Some(body) = entry.get("body") else {
        return;
    };
    match body.get("actor") {
        Some(Value::String(a)) => {
            out.insert(a.clone());
        }
        Some(Value::Object(a)) => {
            if let (Some(t), Some(id)) = (
                a.get("type").and_then(Value::as_str),
                a.get("id").and_then(Value::as_str),
            ) {
                out.insert(format!("{t}:{id}"));
            }
            if let Some(b) = a.get("on_behalf_of").and_then(Value::as_str) {
                out.insert(b.to_string());
            }
        }
        _ => {}
    }
    if let Some(a) = body.get("approver").and_then(Value::as_str) {
        out.insert(a.to_string());
    }
}
