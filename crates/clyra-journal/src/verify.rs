//! Walking a whole journal: every link, every stored hash, every checkpoint root.

use std::collections::HashMap;

use clyra_evidence::digest::Digest;
use clyra_evidence::jcs;
use clyra_evidence::merkle::{leaf_hash, MerkleTreeBuilder};
use serde_json::Value;

use clyra_evidence::keys::PublicKey;

use crate::checkpoint::check_note;
use crate::entry::RunHead;
use crate::store::{Store, StoreError, StoredCheckpoint};

/// The first fault found in a tenant's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The `seq` at which the journal stops being trustworthy.
    pub seq: u64,
    /// What is wrong there.
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.reason)
    }
}

/// The result of walking one tenant's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantReport {
    /// The tenant.
    pub tenant: String,
    /// Entries read and checked before the first fault (all of them when there is none).
    pub entries: u64,
    /// The chain head: digest of the last good entry.
    pub head: Digest,
    /// Checkpoints whose root matched the entries.
    pub checkpoints_checked: usize,
    /// The first fault, if any.
    pub broken: Option<Break>,
}

impl TenantReport {
    /// True when no fault was found.
    pub fn is_ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// Walks `tenant`'s journal from `seq` 0 and reports the first broken link.
///
/// Checked for every entry: it is stored at the `seq` it names, with no gap; its bytes are strict,
/// canonical JSON; `tenant` is the tenant; `prev` is the digest of the entry before; the stored
/// hash and leaf columns match the bytes; within a run, `run_seq` counts up from 0 and `run_prev`
/// links to the run's previous entry; `recorded_at` never decreases. Then: the stored chain head
/// matches the last entry (rows deleted from the end are caught here), and every stored
/// checkpoint's root equals the Merkle root of the entries it covers and its signed note agrees
/// (size, root, chain head); when `keys` is given, one of them must have signed each note.
pub fn verify_tenant(
    store: &mut dyn Store,
    tenant: &str,
    keys: Option<&[PublicKey]>,
) -> Result<TenantReport, StoreError> {
    let checkpoints = store.checkpoints(tenant)?;
    let stored_head = store.head(tenant)?;
    let mut cps = checkpoints.iter().peekable();
    let mut tree = MerkleTreeBuilder::new();
    let mut expected: u64 = 0;
    let mut last = Digest::ZERO;
    let mut last_recorded = String::new();
    let mut runs: HashMap<String, RunHead> = HashMap::new();
    let mut broken: Option<Break> = None;
    let mut checked = 0usize;

    // Checks one stored checkpoint against the tree built so far.
    let mut check_cp =
        |cp: &StoredCheckpoint, tree: &MerkleTreeBuilder, head: &Digest| -> Option<String> {
            if tree.root() != cp.root {
                return Some(format!(
                    "checkpoint at size {} has root {}, entries give {}",
                    cp.size,
                    cp.root,
                    tree.root()
                ));
            }
            if let Err(e) = check_note(cp, None, head, keys) {
                return Some(format!("checkpoint at size {}: {e}", cp.size));
            }
            checked += 1;
            None
        };

    // Checkpoints at size 0 cover nothing.
    while let Some(cp) = cps.peek() {
        if cp.size != 0 {
            break;
        }
        if let Some(reason) = check_cp(cp, &tree, &Digest::ZERO) {
            broken = Some(Break { seq: 0, reason });
        }
        cps.next();
    }

    let result = store.scan(tenant, 0, u64::MAX >> 1, &mut |row| {
        if broken.is_some() {
            return Err(StoreError::Corrupt(String::new()));
        }
        let fault = check_row(
            tenant,
            expected,
            &last,
            &last_recorded,
            &mut runs,
            &row.canonical,
            &row.hash,
            &row.leaf,
            row.seq,
        );
        match fault {
            Err(reason) => {
                broken = Some(Break {
                    seq: expected.min(row.seq),
                    reason,
                });
                Err(StoreError::Corrupt(String::new()))
            }
            Ok((digest, recorded)) => {
                tree.push_leaf_hash(leaf_hash(&row.canonical));
                last = digest;
                last_recorded = recorded;
                expected += 1;
                while let Some(cp) = cps.peek() {
                    if cp.size != expected {
                        break;
                    }
                    if let Some(reason) = check_cp(cp, &tree, &digest) {
                        broken = Some(Break {
                            seq: expected - 1,
                            reason,
                        });
                        return Err(StoreError::Corrupt(String::new()));
                    }
                    cps.next();
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => {}
        Err(StoreError::Corrupt(m)) if m.is_empty() => {}
        Err(e) => return Err(e),
    }
    if broken.is_none() {
        if let Some(cp) = cps.next() {
            broken = Some(Break {
                seq: expected,
                reason: format!(
                    "a checkpoint covers {} entries but the journal has only {expected}: entries were removed",
                    cp.size
                ),
            });
        } else if stored_head.size != expected || stored_head.head != last {
            broken = Some(Break {
                seq: expected,
                reason: format!(
                    "the chain head says {} entries ending in {}, the entries give {expected} ending in {last}",
                    stored_head.size, stored_head.head
                ),
            });
        }
    }
    Ok(TenantReport {
        tenant: tenant.to_string(),
        entries: expected,
        head: last,
        checkpoints_checked: checked,
        broken,
    })
}

#[allow(clippy::too_many_arguments)]
fn check_row(
    tenant: &str,
    expected: u64,
    last: &Digest,
    last_recorded: &str,
    runs: &mut HashMap<String, RunHead>,
    canonical: &[u8],
    stored_hash: &[u8],
    stored_leaf: &[u8],
    row_seq: u64,
) -> Result<(Digest, String), String> {
    if row_seq != expected {
        return Err(if row_seq > expected {
            format!("entry {expected} is missing (next stored entry is {row_seq})")
        } else {
            format!("entry {row_seq} appears again")
        });
    }
    let value =
        jcs::parse_strict(canonical).map_err(|e| format!("entry is not strict JSON: {e}"))?;
    let recanon = jcs::canonicalize_value(&value)
        .map_err(|e| format!("entry cannot be canonicalized: {e}"))?;
    if recanon != canonical {
        return Err("entry bytes are not canonical JSON (edited outside the journal)".into());
    }
    let digest = Digest::sha256(canonical);
    let obj = value.as_object().ok_or("entry is not a JSON object")?;
    let get_str = |k: &str| obj.get(k).and_then(Value::as_str);
    if obj.get("seq").and_then(Value::as_u64) != Some(expected) {
        return Err(format!(
            "entry stored at seq {expected} names seq {:?}",
            obj.get("seq")
        ));
    }
    if get_str("tenant") != Some(tenant) {
        return Err(format!(
            "entry belongs to tenant {:?}, not {tenant}",
            get_str("tenant")
        ));
    }
    let prev = get_str("prev")
        .and_then(|p| Digest::from_hex(p).ok())
        .ok_or("entry has no valid prev")?;
    if prev != *last {
        return Err(format!(
            "prev is {prev}, the previous entry's digest is {last}: the chain is broken"
        ));
    }
    if stored_hash != digest.as_bytes() {
        return Err("stored hash does not match the entry bytes".into());
    }
    if stored_leaf != leaf_hash(canonical).as_bytes() {
        return Err("stored leaf hash does not match the entry bytes".into());
    }
    let recorded = get_str("recorded_at")
        .ok_or("entry has no recorded_at")?
        .to_string();
    // Same fixed-width format everywhere, so text order is time order.
    if recorded.as_str() < last_recorded {
        return Err(format!(
            "recorded_at {recorded} is earlier than the previous entry's {last_recorded}"
        ));
    }
    if let Some(run) = get_str("run") {
        let rh = runs.entry(run.to_string()).or_insert(RunHead::EMPTY);
        let run_seq = obj.get("run_seq").and_then(Value::as_u64);
        let run_prev = get_str("run_prev").and_then(|p| Digest::from_hex(p).ok());
        if run_seq != Some(rh.size) || run_prev != Some(rh.head) {
            return Err(format!(
                "run {run}: expected run_seq {} after {}, found {:?} after {:?}",
                rh.size, rh.head, run_seq, run_prev
            ));
        }
        *rh = RunHead {
            size: rh.size + 1,
            head: digest,
        };
    }
    Ok((digest, recorded))
}
