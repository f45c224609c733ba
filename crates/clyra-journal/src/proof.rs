//! Inclusion and consistency proofs over a tenant's journal (RFC 9162), from the stored leaf hashes.
//!
//! Proofs are computed from the leaves of entries `0..size`; that read is linear in the journal's
//! size (32 bytes per entry: about 32 MB for a million entries). The proofs themselves are
//! logarithmic, and anyone can check them against a signed checkpoint without trusting the store.

use clyra_evidence::merkle::{self, ConsistencyProof, InclusionProof};

use crate::store::{Store, StoreError};

/// Why a proof cannot be given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The entry is not covered by a tree of that size.
    #[error("entry {seq} is not in a tree of {size} entries")]
    OutOfRange {
        /// The entry asked for.
        seq: u64,
        /// The tree size.
        size: u64,
    },
    /// The sizes do not form a valid consistency query.
    #[error("no consistency proof from size {old} to size {new}: {reason}")]
    BadSizes {
        /// Older size.
        old: u64,
        /// Newer size.
        new: u64,
        /// Why.
        reason: String,
    },
}

/// Proves that entry `seq` is leaf `seq` of the tenant's tree of `size` entries.
pub fn inclusion(
    store: &mut dyn Store,
    tenant: &str,
    seq: u64,
    size: u64,
) -> Result<InclusionProof, ProofError> {
    if seq >= size {
        return Err(ProofError::OutOfRange { seq, size });
    }
    let leaves = store.leaves(tenant, size)?;
    merkle::inclusion_proof(&leaves, seq).map_err(|_| ProofError::OutOfRange { seq, size })
}

/// Proves that the tenant's tree of `old` entries is a prefix of its tree of `new` entries.
pub fn consistency(
    store: &mut dyn Store,
    tenant: &str,
    old: u64,
    new: u64,
) -> Result<ConsistencyProof, ProofError> {
    if old > new {
        return Err(ProofError::BadSizes {
            old,
            new,
            reason: "the older size is larger".into(),
        });
    }
    let leaves = store.leaves(tenant, new)?;
    merkle::consistency_proof(&leaves, old).map_err(|e| ProofError::BadSizes {
        old,
        new,
        reason: e.to_string(),
    })
}
