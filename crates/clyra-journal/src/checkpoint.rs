//! Signed checkpoints: a tenant's tree head (size, Merkle root, chain head, time) as a C2SP
//! tlog-checkpoint signed note.
//!
//! The note's origin is `<log name>/<tenant>`, so checkpoints of two tenants (or two journals)
//! can never be mistaken for each other, and the signature line's key name is the origin, as
//! C2SP recommends for a log's own signature. Only Ed25519 keys sign notes.

use clyra_evidence::digest::Digest;
use clyra_evidence::keys::{PublicKey, Signer};
use clyra_evidence::merkle;
use clyra_evidence::note::{self, Checkpoint, NoteError, SignedNote};
use jiff::Timestamp;

use crate::store::{Store, StoreError, StoredCheckpoint};

/// Why a checkpoint could not be made or does not check out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The note could not be signed or parsed.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The log name is not usable in a note origin.
    #[error("log name `{0}`: must be non-empty, without whitespace or `+`")]
    LogName(String),
    /// The journal changed under the checkpoint (its head moved between two reads).
    #[error("the chain head of tenant {tenant} does not match its entries at size {size}")]
    HeadMismatch {
        /// Tenant.
        tenant: String,
        /// Size.
        size: u64,
    },
    /// A stored checkpoint disagrees with its own columns or the entries.
    #[error("{0}")]
    Mismatch(String),
}

/// The origin line for `tenant`'s checkpoints under `log_name`.
pub fn origin(log_name: &str, tenant: &str) -> Result<String, CheckpointError> {
    let origin = format!("{log_name}/{tenant}");
    note::check_name(&origin).map_err(|_| CheckpointError::LogName(log_name.to_string()))?;
    Ok(origin)
}

/// Signs a checkpoint of `tenant`'s journal as it is now, stores it and returns it. A checkpoint
/// of the same size that already exists is returned instead (one checkpoint per size).
pub fn create(
    store: &mut dyn Store,
    tenant: &str,
    log_name: &str,
    key: &dyn Signer,
    now: Timestamp,
) -> Result<StoredCheckpoint, CheckpointError> {
    let origin = origin(log_name, tenant)?;
    let head = store.head(tenant)?;
    if let Some(existing) = store
        .checkpoints(tenant)?
        .into_iter()
        .find(|c| c.size == head.size)
    {
        return Ok(existing);
    }
    let leaves = store.leaves(tenant, head.size)?;
    let root = merkle::root(&leaves);
    // The head row and the last entry were written in one transaction; re-derive to be sure.
    let mut last = Digest::ZERO;
    if head.size > 0 {
        store.scan(tenant, head.size - 1, head.size, &mut |e| {
            last = Digest::sha256(&e.canonical);
            Ok(())
        })?;
    }
    if last != head.head {
        return Err(CheckpointError::HeadMismatch {
            tenant: tenant.to_string(),
            size: head.size,
        });
    }
    // Whole milliseconds, like entry timestamps.
    let now = Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now);
    let body = Checkpoint::clyra(origin.clone(), head.size, root, now, head.head).to_body();
    let text = note::sign(&body, &origin, key)?;
    let cp = StoredCheckpoint {
        size: head.size,
        root,
        note: text,
    };
    store.put_checkpoint(tenant, &cp)?;
    // Another writer may have stored one of this size first: return what is stored.
    Ok(store
        .checkpoints(tenant)?
        .into_iter()
        .find(|c| c.size == head.size)
        .unwrap_or(cp))
}

/// The latest checkpoint covering entry `seq`, if any.
pub fn covering(
    store: &mut dyn Store,
    tenant: &str,
    seq: u64,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    Ok(store
        .checkpoints(tenant)?
        .into_iter()
        .rev()
        .find(|c| c.size > seq))
}

/// Checks a stored checkpoint's note against its columns and `head` (the digest of entry
/// `size - 1`), and, when `keys` is given, that one of them signed it.
pub fn check_note(
    cp: &StoredCheckpoint,
    expected_origin: Option<&str>,
    head: &Digest,
    keys: Option<&[PublicKey]>,
) -> Result<Checkpoint, CheckpointError> {
    let note = SignedNote::parse(&cp.note)?;
    let body = Checkpoint::parse_body(note.body())?;
    if body.size != cp.size || body.root != cp.root {
        return Err(CheckpointError::Mismatch(format!(
            "the note says size {} root {}, the stored columns say size {} root {}",
            body.size, body.root, cp.size, cp.root
        )));
    }
    let (_, note_head) = body.clyra_extensions()?;
    if note_head != *head {
        return Err(CheckpointError::Mismatch(format!(
            "the note's chain head is {note_head}, entry {} has digest {head}",
            cp.size.saturating_sub(1)
        )));
    }
    if let Some(origin) = expected_origin {
        if body.origin != origin {
            return Err(CheckpointError::Mismatch(format!(
                "origin is {}, expected {origin}",
                body.origin
            )));
        }
    }
    if let Some(keys) = keys {
        let refs: Vec<&PublicKey> = keys.iter().collect();
        note.verified_by_any_name(&refs)?;
    }
    Ok(body)
}
