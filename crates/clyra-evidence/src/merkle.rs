//! RFC 9162 §2.1 Merkle Tree Hash, inclusion proofs and consistency proofs.
//!
//! Written from RFC 9162 (which carries RFC 6962's tree unchanged):
//!
//! - `MTH({}) = SHA-256()`, `MTH({d0}) = SHA-256(0x00 || d0)` and, for `n > 1` with `k` the largest
//!   power of two smaller than `n`, `MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`.
//!   The left subtree is always full; an odd node is carried up, never duplicated, so `[A, B, C]`
//!   and `[A, B, C, C]` have different roots (the CVE-2012-2459 collision cannot happen).
//! - Inclusion proofs are `PATH(m, D[n])` (§2.1.3.1), verified with the `fn`/`sn` bit walk of
//!   §2.1.3.2.
//! - Consistency proofs are `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)` (§2.1.4.1), verified per
//!   §2.1.4.2.
//!
//! The RFC leaves the edge cases of consistency to the implementation; these follow the
//! transparency-dev/merkle test vectors vendored in `tests/vectors/rfc6962`:
//!
//! - `old_size > new_size` is rejected ([`MerkleError::SizeOrder`]).
//! - `old_size == 0` is rejected ([`MerkleError::EmptyOldTree`]): every tree extends the empty
//!   tree, so such a proof proves nothing, and accepting it would let a caller skip a real check.
//! - `old_size == new_size` needs an empty proof and equal roots.
//!
//! All functions work on leaf *hashes* ([`leaf_hash`] of the entry bytes), never on raw entries, so a
//! leaf can never be confused with an inner node. Verification never panics, rejects proofs longer
//! than [`MAX_PROOF_HASHES`] before hashing, and compares roots in constant time.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::digest::Digest;

/// The most hashes any proof can need: a tree has at most 2^64 - 1 leaves, so at most 64 levels.
pub const MAX_PROOF_HASHES: usize = 64;

/// Domain-separation prefix of a leaf hash.
const LEAF_PREFIX: [u8; 1] = [0x00];
/// Domain-separation prefix of an inner node hash.
const NODE_PREFIX: [u8; 1] = [0x01];

/// Why building or verifying a Merkle proof failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof does not have the number of hashes its sizes call for.
    #[error("proof has {found} hashes, expected {expected}")]
    WrongProofLength {
        /// The number of hashes the tree sizes call for.
        expected: usize,
        /// The number of hashes in the proof.
        found: usize,
    },
    /// The proof is longer than any proof in a tree of at most 2^64 - 1 leaves.
    #[error("proof has {found} hashes, more than the maximum of {max}")]
    ProofTooLong {
        /// The number of hashes in the proof.
        found: usize,
        /// [`MAX_PROOF_HASHES`].
        max: usize,
    },
    /// The root computed from an inclusion proof is not the expected root.
    #[error("inclusion proof does not lead to the expected root")]
    RootMismatch,
    /// A consistency proof does not reproduce the old root.
    #[error("consistency proof does not reproduce the old root")]
    OldRootMismatch,
    /// A consistency proof does not reproduce the new root.
    #[error("consistency proof does not reproduce the new root")]
    NewRootMismatch,
    /// Two trees of the same size have different roots.
    #[error("trees of the same size {size} have different roots")]
    SameSizeRootsDiffer {
        /// The common tree size.
        size: u64,
    },
    /// The old tree is larger than the new one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizeOrder {
        /// The old tree size.
        old: u64,
        /// The new tree size.
        new: u64,
    },
    /// Consistency with the empty tree was asked for; it holds for every tree and proves nothing.
    #[error("consistency with an empty old tree proves nothing; old size must be at least 1")]
    EmptyOldTree,
    /// The tree already holds `u64::MAX` leaves.
    #[error("tree is full: it cannot hold more than {} leaves", u64::MAX)]
    TreeFull,
}

/// A proof that a leaf is part of a tree (RFC 9162 `PATH`), hashes ordered from the leaf upwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Zero-based index of the leaf.
    pub leaf_index: u64,
    /// Size of the tree the proof leads to.
    pub tree_size: u64,
    /// Sibling hashes from the leaf level to the root.
    pub hashes: Vec<Digest>,
}

/// A proof that a tree of `old_size` leaves is a prefix of a tree of `new_size` leaves
/// (RFC 9162 `PROOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree.
    pub new_size: u64,
    /// Subtree hashes, ordered as `SUBPROOF` emits them.
    pub hashes: Vec<Digest>,
}

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Digest {
    Digest::sha256_parts(&[&LEAF_PREFIX, data])
}

/// The hash of an inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::sha256_parts(&[&NODE_PREFIX, left.as_bytes(), right.as_bytes()])
}

/// The root of the empty tree: `SHA-256()` of no bytes.
pub fn empty_root() -> Digest {
    Digest::sha256(&[])
}

/// The Merkle Tree Hash of `leaves`, which are leaf hashes ([`leaf_hash`]), not entry bytes.
pub fn root(leaves: &[Digest]) -> Digest {
    match leaves {
        [] => empty_root(),
        [only] => *only,
        _ => match split(leaves) {
            Some((left, right)) => node_hash(&subtree_root(left), &subtree_root(right)),
            None => empty_root(),
        },
    }
}

/// The Merkle Tree Hash of the entries in `data`, each hashed with [`leaf_hash`].
pub fn root_of_data<I>(data: I) -> Digest
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut builder = MerkleTreeBuilder::new();
    for item in data {
        builder.push_leaf_hash(leaf_hash(item.as_ref()));
    }
    builder.root()
}

/// The root of a non-empty subtree (recursion depth is at most 64).
fn subtree_root(leaves: &[Digest]) -> Digest {
    match split(leaves) {
        Some((left, right)) => node_hash(&subtree_root(left), &subtree_root(right)),
        None => leaves.first().copied().unwrap_or_else(empty_root),
    }
}

/// The largest power of two strictly smaller than `n`; `None` for `n < 2`.
fn largest_power_of_two_below(n: usize) -> Option<usize> {
    let exponent = n.checked_sub(1)?.checked_ilog2()?;
    Some(1 << exponent)
}

/// Splits `D[n]` into `D[0:k]` and `D[k:n]`; `None` for fewer than two leaves.
fn split(leaves: &[Digest]) -> Option<(&[Digest], &[Digest])> {
    leaves.split_at_checked(largest_power_of_two_below(leaves.len())?)
}

/// Builds a tree root from a stream of leaf hashes in `O(log n)` memory.
///
/// The builder keeps the roots of the full subtrees that make up the tree so far (one per set bit of
/// the leaf count, largest first), merging two equal-sized ones as soon as they appear. Every leaf
/// costs one leaf hash (by the caller) and, amortised, one node hash, like [`root`].
///
/// ```
/// use clyra_evidence::merkle::{leaf_hash, root, MerkleTreeBuilder};
///
/// let leaves: Vec<_> = [b"a", b"b", b"c"].iter().map(|d| leaf_hash(*d)).collect();
/// let mut builder = MerkleTreeBuilder::new();
/// for leaf in &leaves {
///     builder.push_leaf_hash(*leaf);
/// }
/// assert_eq!(builder.root(), root(&leaves));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MerkleTreeBuilder {
    /// Number of leaves pushed so far.
    size: u64,
    /// Roots of full subtrees, largest (leftmost) first; their sizes are the set bits of `size`.
    peaks: Vec<Digest>,
}

impl MerkleTreeBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        MerkleTreeBuilder {
            size: 0,
            peaks: Vec::with_capacity(MAX_PROOF_HASHES),
        }
    }

    /// The number of leaves pushed so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether no leaf has been pushed yet.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Appends a leaf hash (see [`leaf_hash`]).
    ///
    /// Does nothing and returns [`MerkleError::TreeFull`] once the tree holds `u64::MAX` leaves;
    /// [`push_leaf_hash`](Self::push_leaf_hash) is the infallible form for callers that cannot
    /// get there.
    pub fn try_push_leaf_hash(&mut self, leaf: Digest) -> Result<(), MerkleError> {
        let new_size = self.size.checked_add(1).ok_or(MerkleError::TreeFull)?;
        let mut node = leaf;
        // Each trailing one bit of the old size is a full subtree of the new leaf's size: merge.
        let mut carries = self.size.trailing_ones();
        while carries > 0 {
            match self.peaks.pop() {
                Some(left) => node = node_hash(&left, &node),
                None => break,
            }
            carries -= 1;
        }
        self.peaks.push(node);
        self.size = new_size;
        Ok(())
    }

    /// Appends a leaf hash (see [`leaf_hash`]).
    ///
    /// A tree of `u64::MAX` leaves cannot be reached by pushing one at a time (it would take
    /// centuries), so this form ignores [`MerkleError::TreeFull`]; use
    /// [`try_push_leaf_hash`](Self::try_push_leaf_hash) to see it.
    pub fn push_leaf_hash(&mut self, leaf: Digest) {
        // Ignoring the only error keeps the tree as it was, which is the documented behaviour.
        let _ = self.try_push_leaf_hash(leaf);
    }

    /// Appends an entry, hashing it with [`leaf_hash`].
    pub fn push_data(&mut self, data: &[u8]) {
        self.push_leaf_hash(leaf_hash(data));
    }

    /// The root of the tree so far; the empty-tree root before any push.
    pub fn root(&self) -> Digest {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return empty_root();
        };
        // MTH splits at the largest power of two, which is exactly the leftmost peak; so the root
        // folds the peaks from the right.
        peaks.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// Generates the inclusion proof `PATH(index, D[n])` for the leaf at `index`.
pub fn inclusion_proof(leaves: &[Digest], index: u64) -> Result<InclusionProof, MerkleError> {
    let tree_size = len_u64(leaves);
    let position = usize::try_from(index)
        .ok()
        .filter(|&i| i < leaves.len())
        .ok_or(MerkleError::IndexOutOfRange {
            index,
            size: tree_size,
        })?;
    let mut hashes = Vec::new();
    path(position, leaves, &mut hashes);
    Ok(InclusionProof {
        leaf_index: index,
        tree_size,
        hashes,
    })
}

/// `PATH(m, D[n])` of RFC 9162 §2.1.3.1, appended to `out` from the leaf upwards.
fn path(m: usize, leaves: &[Digest], out: &mut Vec<Digest>) {
    let Some((left, right)) = split(leaves) else {
        // PATH(0, {d0}) = {}
        return;
    };
    let k = left.len();
    if m < k {
        path(m, left, out);
        out.push(subtree_root(right));
    } else {
        path(m - k, right, out);
        out.push(subtree_root(left));
    }
}

/// Generates the consistency proof `PROOF(old_size, D[n])` between the first `old_size` leaves and
/// all of `leaves`.
///
/// Follows the same edge cases as [`verify_consistency`]: `old_size == 0` is rejected, and
/// `old_size == leaves.len()` gives an empty proof.
pub fn consistency_proof(
    leaves: &[Digest],
    old_size: u64,
) -> Result<ConsistencyProof, MerkleError> {
    let new_size = len_u64(leaves);
    if old_size > new_size {
        return Err(MerkleError::SizeOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 {
        return Err(MerkleError::EmptyOldTree);
    }
    let m = usize::try_from(old_size).map_err(|_| MerkleError::SizeOrder {
        old: old_size,
        new: new_size,
    })?;
    let mut hashes = Vec::new();
    subproof(m, leaves, true, &mut hashes);
    Ok(ConsistencyProof {
        old_size,
        new_size,
        hashes,
    })
}

/// `SUBPROOF(m, D[n], b)` of RFC 9162 §2.1.4.1, appended to `out`; needs `1 <= m <= n`.
fn subproof(m: usize, leaves: &[Digest], complete_subtree: bool, out: &mut Vec<Digest>) {
    if m == leaves.len() {
        if !complete_subtree {
            out.push(subtree_root(leaves));
        }
        return;
    }
    let Some((left, right)) = split(leaves) else {
        return;
    };
    let k = left.len();
    if m <= k {
        subproof(m, left, complete_subtree, out);
        out.push(subtree_root(right));
    } else {
        subproof(m - k, right, false, out);
        out.push(subtree_root(left));
    }
}

fn len_u64(leaves: &[Digest]) -> u64 {
    // usize is at most 64 bits on every supported target.
    u64::try_from(leaves.len()).unwrap_or(u64::MAX)
}

/// Which side of the running hash a proof hash goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `r = HASH(0x01 || p || r)`
    Left,
    /// `r = HASH(0x01 || r || p)`
    Right,
}

/// The `fn`/`sn` walk shared by RFC 9162 §2.1.3.2 (step 4) and §2.1.4.2 (step 6): one [`Side`] per
/// proof hash, ending when `sn` reaches 0. The number of steps is the exact proof length.
#[derive(Debug, Clone)]
struct Walk {
    fn_: u64,
    sn: u64,
}

impl Walk {
    fn is_done(&self) -> bool {
        self.sn == 0
    }
}

impl Iterator for Walk {
    type Item = Side;

    fn next(&mut self) -> Option<Side> {
        // a. If sn is 0, stop the iteration (a caller with hashes left fails the proof).
        if self.sn == 0 {
            return None;
        }
        // b. If LSB(fn) is set, or if fn is equal to sn ...
        let side = if self.fn_ & 1 == 1 || self.fn_ == self.sn {
            // ii. If LSB(fn) is not set, right-shift both fn and sn equally until either LSB(fn)
            //     is set or fn is 0.
            while self.fn_ & 1 == 0 && self.fn_ != 0 {
                self.fn_ >>= 1;
                self.sn >>= 1;
            }
            Side::Left
        } else {
            Side::Right
        };
        // c. Finally, right-shift both fn and sn one time.
        self.fn_ >>= 1;
        self.sn >>= 1;
        Some(side)
    }
}

fn check_max_len(found: usize) -> Result<(), MerkleError> {
    if found > MAX_PROOF_HASHES {
        return Err(MerkleError::ProofTooLong {
            found,
            max: MAX_PROOF_HASHES,
        });
    }
    Ok(())
}

fn ct_eq(a: &Digest, b: &Digest) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Verifies that `leaf_hash` is the leaf at `proof.leaf_index` of the tree of `proof.tree_size`
/// leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Digest,
    proof: &InclusionProof,
    root: &Digest,
) -> Result<(), MerkleError> {
    let InclusionProof {
        leaf_index,
        tree_size,
        ref hashes,
    } = *proof;
    // 1. If leaf_index is greater than or equal to tree_size, fail.
    if leaf_index >= tree_size {
        return Err(MerkleError::IndexOutOfRange {
            index: leaf_index,
            size: tree_size,
        });
    }
    check_max_len(hashes.len())?;
    // 2. Set fn to leaf_index and sn to tree_size - 1 (no underflow: tree_size > leaf_index >= 0).
    let walk = Walk {
        fn_: leaf_index,
        sn: tree_size - 1,
    };
    // The walk alone fixes the proof length; checking it first gives a precise error.
    let expected = walk.clone().count();
    if hashes.len() != expected {
        return Err(MerkleError::WrongProofLength {
            expected,
            found: hashes.len(),
        });
    }
    // 3. Set r to hash.
    let mut r = *leaf_hash;
    let mut walk = walk;
    // 4. For each value p in the inclusion_path array ...
    for p in hashes {
        r = match walk.next() {
            Some(Side::Left) => node_hash(p, &r),
            Some(Side::Right) => node_hash(&r, p),
            // a. sn is 0 with hashes left over.
            None => {
                return Err(MerkleError::WrongProofLength {
                    expected,
                    found: hashes.len(),
                })
            }
        };
    }
    // 5. Compare sn to 0, and r against root_hash.
    if !walk.is_done() {
        return Err(MerkleError::WrongProofLength {
            expected,
            found: hashes.len(),
        });
    }
    if !ct_eq(&r, root) {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `proof.old_size` leaves with root `old_root` is a prefix of the tree of
/// `proof.new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2, edge cases as in the
/// [module docs](self)).
pub fn verify_consistency(
    proof: &ConsistencyProof,
    old_root: &Digest,
    new_root: &Digest,
) -> Result<(), MerkleError> {
    let ConsistencyProof {
        old_size,
        new_size,
        ref hashes,
    } = *proof;
    if old_size > new_size {
        return Err(MerkleError::SizeOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 {
        return Err(MerkleError::EmptyOldTree);
    }
    if old_size == new_size {
        if !hashes.is_empty() {
            return Err(MerkleError::WrongProofLength {
                expected: 0,
                found: hashes.len(),
            });
        }
        if !ct_eq(old_root, new_root) {
            return Err(MerkleError::SameSizeRootsDiffer { size: old_size });
        }
        return Ok(());
    }
    check_max_len(hashes.len())?;

    // 2. If first is an exact power of 2, prepend first_hash to the consistency_path array.
    let prepend_old_root = old_size.is_power_of_two();
    // 3. Set fn to first - 1 and sn to second - 1 (no underflow: 0 < first < second).
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    // 4. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn) is not set.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let walk = Walk { fn_, sn };
    let expected = (walk.clone().count() + 1).saturating_sub(usize::from(prepend_old_root));
    // 1. If consistency_path is an empty array, fail (covered: `expected` is at least 1).
    if hashes.len() != expected || expected == 0 {
        return Err(MerkleError::WrongProofLength {
            expected,
            found: hashes.len(),
        });
    }
    // 5. Set both fr and sr to the first value in the (possibly prepended) consistency_path array.
    let (first, rest) = if prepend_old_root {
        (old_root, hashes.as_slice())
    } else {
        match hashes.split_first() {
            Some((first, rest)) => (first, rest),
            None => {
                return Err(MerkleError::WrongProofLength {
                    expected,
                    found: hashes.len(),
                })
            }
        }
    };
    let mut fr = *first;
    let mut sr = *first;
    let mut walk = walk;
    // 6. For each subsequent value c in the consistency_path array ...
    for c in rest {
        match walk.next() {
            Some(Side::Left) => {
                fr = node_hash(c, &fr);
                sr = node_hash(c, &sr);
            }
            Some(Side::Right) => sr = node_hash(&sr, c),
            // a. sn is 0 with hashes left over.
            None => {
                return Err(MerkleError::WrongProofLength {
                    expected,
                    found: hashes.len(),
                })
            }
        }
    }
    // 7. Check that sn is 0 and that fr and sr match first_hash and second_hash.
    if !walk.is_done() {
        return Err(MerkleError::WrongProofLength {
            expected,
            found: hashes.len(),
        });
    }
    let old_ok = ct_eq(&fr, old_root);
    let new_ok = ct_eq(&sr, new_root);
    if !old_ok {
        return Err(MerkleError::OldRootMismatch);
    }
    if !new_ok {
        return Err(MerkleError::NewRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MTH exactly as RFC 9162 §2.1.1 writes it, over entry bytes.
    fn reference_mth(data: &[Vec<u8>]) -> Digest {
        let n = data.len();
        match n {
            0 => Digest::sha256(b""),
            1 => Digest::sha256_parts(&[&[0x00], &data[0]]),
            _ => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                Digest::sha256_parts(&[
                    &[0x01],
                    reference_mth(&data[..k]).as_bytes(),
                    reference_mth(&data[k..]).as_bytes(),
                ])
            }
        }
    }

    fn leaves_of(n: usize) -> Vec<Digest> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    fn flip(d: &Digest, bit: usize) -> Digest {
        let mut b = *d.as_bytes();
        b[(bit / 8) % 32] ^= 1 << (bit % 8);
        Digest::from_bytes(b)
    }

    #[test]
    fn hashes_are_domain_separated() {
        assert_eq!(leaf_hash(b"x"), Digest::sha256(b"\x00x"));
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut concat = vec![0x01];
        concat.extend_from_slice(a.as_bytes());
        concat.extend_from_slice(b.as_bytes());
        assert_eq!(node_hash(&a, &b), Digest::sha256(&concat));
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(root(&[]), empty_root());
        assert_eq!(MerkleTreeBuilder::new().root(), empty_root());
    }

    #[test]
    fn odd_node_is_carried_not_duplicated() {
        let l = leaves_of(4);
        let three = root(&l[..3]);
        assert_eq!(three, node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        let dup = [l[0], l[1], l[2], l[2]];
        assert_ne!(three, root(&dup));
    }

    #[test]
    fn largest_power_of_two_below_is_strict() {
        let got: Vec<Option<usize>> = (0..=9).map(largest_power_of_two_below).collect();
        let want = [
            None,
            None,
            Some(1),
            Some(2),
            Some(2),
            Some(4),
            Some(4),
            Some(4),
            Some(4),
            Some(8),
        ];
        assert_eq!(got, want);
        assert_eq!(
            largest_power_of_two_below(usize::MAX),
            Some(1 << (usize::BITS - 1))
        );
    }

    #[test]
    fn root_of_data_matches_reference() {
        for n in 0..40 {
            let data: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i]).collect();
            assert_eq!(root_of_data(&data), reference_mth(&data), "n = {n}");
        }
    }

    #[test]
    fn proofs_have_rfc_shapes() {
        // RFC 9162 §2.1.5 example tree of 7 leaves a..g.
        let l = leaves_of(7);
        let p = inclusion_proof(&l, 3).unwrap();
        // PATH(3, D7) = [c, hash(a, b), hash(e, f, g)]
        let expected = vec![l[2], node_hash(&l[0], &l[1]), root(&l[4..7])];
        assert_eq!(p.hashes, expected);
        // PROOF(3, D7) = [c, d, g, l] with l = hash(a, b)... per §2.1.5: [c, d, g, l]
        let c = consistency_proof(&l, 3).unwrap();
        assert_eq!(
            c.hashes,
            vec![l[2], l[3], node_hash(&l[0], &l[1]), root(&l[4..7])]
        );
        // PROOF(4, D7) = [l] where l = hash(e, f, g); PROOF(6, D7) = [i, j, k]
        assert_eq!(
            consistency_proof(&l, 4).unwrap().hashes,
            vec![root(&l[4..7])]
        );
        assert_eq!(
            consistency_proof(&l, 6).unwrap().hashes,
            vec![node_hash(&l[4], &l[5]), l[6], root(&l[..4])]
        );
    }

    #[test]
    fn generation_edge_cases() {
        let l = leaves_of(5);
        assert_eq!(
            inclusion_proof(&l, 5),
            Err(MerkleError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            inclusion_proof(&[], 0),
            Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            consistency_proof(&l, 6),
            Err(MerkleError::SizeOrder { old: 6, new: 5 })
        );
        assert_eq!(consistency_proof(&l, 0), Err(MerkleError::EmptyOldTree));
        let same = consistency_proof(&l, 5).unwrap();
        assert!(same.hashes.is_empty());
        verify_consistency(&same, &root(&l), &root(&l)).unwrap();
    }

    #[test]
    fn verification_rejects_absurd_and_overflowing_input() {
        let l = leaves_of(3);
        let r = root(&l);
        let long = InclusionProof {
            leaf_index: 0,
            tree_size: u64::MAX,
            hashes: vec![l[0]; 65],
        };
        assert_eq!(
            verify_inclusion(&l[0], &long, &r),
            Err(MerkleError::ProofTooLong { found: 65, max: 64 })
        );
        let max = InclusionProof {
            leaf_index: u64::MAX,
            tree_size: u64::MAX,
            hashes: vec![],
        };
        assert!(matches!(
            verify_inclusion(&l[0], &max, &r),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
        let huge = InclusionProof {
            leaf_index: u64::MAX - 1,
            tree_size: u64::MAX,
            hashes: vec![l[0]; 63],
        };
        assert_eq!(
            verify_inclusion(&l[0], &huge, &r),
            Err(MerkleError::RootMismatch)
        );
        let cons = ConsistencyProof {
            old_size: u64::MAX - 1,
            new_size: u64::MAX,
            hashes: vec![l[0]; 65],
        };
        assert_eq!(
            verify_consistency(&cons, &r, &r),
            Err(MerkleError::ProofTooLong { found: 65, max: 64 })
        );
        let cons = ConsistencyProof {
            old_size: 1 << 63,
            new_size: u64::MAX,
            hashes: vec![l[0]; 3],
        };
        assert!(matches!(
            verify_consistency(&cons, &r, &r),
            Err(MerkleError::WrongProofLength {
                expected: 1,
                found: 3
            })
        ));
    }

    #[test]
    fn builder_reports_a_full_tree() {
        let mut b = MerkleTreeBuilder {
            size: u64::MAX,
            peaks: vec![],
        };
        assert_eq!(
            b.try_push_leaf_hash(empty_root()),
            Err(MerkleError::TreeFull)
        );
        assert_eq!(b.len(), u64::MAX);
    }

    #[test]
    fn proofs_serialize_as_lowercase_hex_and_reject_unknown_fields() {
        let l = leaves_of(3);
        let p = inclusion_proof(&l, 1).unwrap();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["leaf_index"], 1);
        assert_eq!(json["tree_size"], 3);
        assert_eq!(json["hashes"][0], l[0].to_hex());
        let back: InclusionProof = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        let extra = serde_json::json!({"leaf_index": 0, "tree_size": 1, "hashes": [], "x": 1});
        assert!(serde_json::from_value::<InclusionProof>(extra).is_err());
        let upper = serde_json::json!({"old_size": 1, "new_size": 2, "hashes": [l[0].to_hex().to_uppercase()]});
        assert!(serde_json::from_value::<ConsistencyProof>(upper).is_err());
        let c = consistency_proof(&l, 2).unwrap();
        let back: ConsistencyProof =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn consistency_between_every_pair_of_small_trees() {
        for n in 1..=40usize {
            let l = leaves_of(n);
            let new_root = root(&l);
            for m in 1..=n {
                let p = consistency_proof(&l, m as u64).unwrap();
                verify_consistency(&p, &root(&l[..m]), &new_root)
                    .unwrap_or_else(|e| panic!("m = {m}, n = {n}: {e}"));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn builder_root_equals_recursive_root(n in 0usize..600) {
            let l = leaves_of(n);
            let mut b = MerkleTreeBuilder::new();
            for (i, leaf) in l.iter().enumerate() {
                prop_assert_eq!(b.root(), root(&l[..i]));
                b.push_leaf_hash(*leaf);
            }
            prop_assert_eq!(b.len(), n as u64);
            prop_assert_eq!(b.root(), root(&l));
        }

        #[test]
        fn every_inclusion_proof_verifies_and_any_flip_fails(
            n in 1usize..300,
            seed in any::<u64>(),
            bit in 0usize..256,
        ) {
            let l: Vec<Digest> = (0..n)
                .map(|i| leaf_hash(&[seed.to_be_bytes(), (i as u64).to_be_bytes()].concat()))
                .collect();
            let r = root(&l);
            for (i, leaf) in l.iter().enumerate() {
                let p = inclusion_proof(&l, i as u64).unwrap();
                prop_assert_eq!(verify_inclusion(leaf, &p, &r), Ok(()));
                prop_assert_eq!(
                    verify_inclusion(leaf, &p, &flip(&r, bit)),
                    Err(MerkleError::RootMismatch)
                );
                prop_assert!(verify_inclusion(&flip(leaf, bit), &p, &r).is_err());
                for j in 0..p.hashes.len() {
                    let mut bad = p.clone();
                    bad.hashes[j] = flip(&bad.hashes[j], bit);
                    prop_assert_eq!(verify_inclusion(leaf, &bad, &r), Err(MerkleError::RootMismatch));
                }
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_any_flip_fails(
            n in 1usize..120,
            m_frac in 0.0f64..=1.0,
            bit in 0usize..256,
        ) {
            let l = leaves_of(n);
            let m = ((n as f64 * m_frac) as usize).clamp(1, n);
            let (old, new) = (root(&l[..m]), root(&l));
            let p = consistency_proof(&l, m as u64).unwrap();
            prop_assert_eq!(verify_consistency(&p, &old, &new), Ok(()));
            prop_assert!(verify_consistency(&p, &flip(&old, bit), &new).is_err());
            prop_assert!(verify_consistency(&p, &old, &flip(&new, bit)).is_err());
            for j in 0..p.hashes.len() {
                let mut bad = p.clone();
                bad.hashes[j] = flip(&bad.hashes[j], bit);
                prop_assert!(verify_consistency(&bad, &old, &new).is_err());
            }
        }
    }
}
