//! Hash chains: journal entries linked by `seq` and `prev`.
//!
//! An entry is a JSON object with
//!
//! - `seq`: an integer in `0..=2^53-1` ([`MAX_SEQ`]), one more than the previous entry's, and
//! - `prev`: 64 lowercase hex characters, the SHA-256 of the previous entry's RFC 8785 canonical
//!   bytes; the first entry of a chain started from genesis has `prev` = [`Digest::ZERO`].
//!
//! The digest of an entry is SHA-256 over its canonical bytes. This module does not canonicalize:
//! callers pass the canonical bytes (or a canonicalizer), so the chain logic is independent of the
//! JSON canonicalization scheme (RFC 8785, see the `jcs` module).
//!
//! [`ChainVerifier`] checks a chain as a stream in constant memory and names what went wrong:
//! a gap, a reordering, a duplicated `seq`, a broken `prev` link, an entry spliced in from another
//! chain, truncation, or an empty chain. It stops at the first fault, as every later link depends
//! on it (the immudb lesson: check every link, never skip ahead).

use serde_json::{Map, Value};

use crate::digest::{Digest, DigestParseError};

/// The largest `seq`: 2^53 - 1, the largest integer every JSON implementation holds exactly.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// What a verifier needs of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLink {
    /// The entry's `seq`.
    pub seq: u64,
    /// The entry's `prev`: the digest of the entry before it.
    pub prev: Digest,
    /// SHA-256 of the entry's canonical bytes.
    pub digest: Digest,
}

/// Why an entry or a chain was rejected.
///
/// `index` is the zero-based position of the entry in the stream given to [`ChainVerifier`]; for a
/// JSON Lines journal with one entry per line, the line number is `index + 1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The entry is not a JSON object.
    #[error("entry is not a JSON object")]
    NotAnObject,
    /// A required field is missing.
    #[error("entry has no `{field}` field")]
    MissingField {
        /// The field name.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("entry field `{field}` must be {expected}")]
    WrongType {
        /// The field name.
        field: &'static str,
        /// What the field must be.
        expected: &'static str,
    },
    /// `seq` is larger than [`MAX_SEQ`].
    #[error("entry `seq` {seq} is larger than 2^53 - 1")]
    SeqOutOfRange {
        /// The `seq` found.
        seq: u64,
    },
    /// `prev` is not 64 lowercase hex characters.
    #[error("entry field `prev` is not a lowercase hex sha-256 digest: {source}")]
    BadPrev {
        /// Why the digest was rejected.
        #[source]
        source: DigestParseError,
    },
    /// The chain has no entries.
    #[error("chain is empty")]
    Empty,
    /// The first entry does not have the expected `seq`.
    #[error("chain starts at seq {found}, expected seq {expected}")]
    UnexpectedFirstSeq {
        /// The `seq` the chain should start at.
        expected: u64,
        /// The `seq` of the first entry.
        found: u64,
    },
    /// One or more entries are missing: `seq` jumps forward and the skipped `seq` does not follow.
    #[error("gap at index {index}: expected seq {expected_seq}, found seq {found_seq}")]
    Gap {
        /// Position of the entry after the gap.
        index: u64,
        /// The `seq` that is missing.
        expected_seq: u64,
        /// The `seq` found instead.
        found_seq: u64,
    },
    /// Entries are out of order: an entry comes before a `seq` that should precede it, or belongs
    /// before the start of the chain.
    #[error("entry seq {found_seq} at index {index} is out of order: expected seq {expected_seq}")]
    Reordered {
        /// Position of the misplaced entry.
        index: u64,
        /// The `seq` that belongs at this position.
        expected_seq: u64,
        /// The `seq` found.
        found_seq: u64,
    },
    /// A `seq` appears a second time.
    #[error("duplicate seq {seq} at index {index}")]
    Duplicate {
        /// Position of the second occurrence.
        index: u64,
        /// The repeated `seq`.
        seq: u64,
    },
    /// An entry's `prev` is not the digest of the entry before it (or the expected first `prev`),
    /// and the next entry, if there is one, links to it: the entry before was altered, or the chain
    /// was cut and joined here. `seq` is the first broken link.
    #[error("broken link at seq {seq} (index {index}): `prev` is {found}, expected {expected}")]
    BrokenLink {
        /// Position of the entry whose `prev` does not match.
        index: u64,
        /// Its `seq`.
        seq: u64,
        /// The digest of the entry before it.
        expected: Digest,
        /// The entry's `prev`.
        found: Digest,
    },
    /// An entry links to neither neighbour: its `prev` does not match the entry before it, and the
    /// next entry's `prev` does not match it. This is what an entry spliced in from another chain
    /// looks like (or, equally, two adjacent altered entries).
    #[error(
        "entry seq {seq} (index {index}) is not part of this chain: it links to neither neighbour"
    )]
    Spliced {
        /// Position of the foreign entry.
        index: u64,
        /// Its `seq`.
        seq: u64,
    },
    /// The chain ends before the expected last `seq`.
    #[error("chain is truncated: it ends at seq {last_seq}, expected seq {expected_last_seq}")]
    Truncated {
        /// The `seq` of the last entry.
        last_seq: u64,
        /// The `seq` the chain should end at.
        expected_last_seq: u64,
    },
    /// The chain goes on past the expected last `seq`.
    #[error("chain goes past its expected end: it ends at seq {last_seq}, expected seq {expected_last_seq}")]
    PastExpectedEnd {
        /// The `seq` of the last entry.
        last_seq: u64,
        /// The `seq` the chain should end at.
        expected_last_seq: u64,
    },
    /// The digest of the last entry is not the expected head: the chain is truncated, extended or
    /// its last entry was altered.
    #[error("chain head at seq {last_seq} is {found}, expected {expected}")]
    HeadMismatch {
        /// The `seq` of the last entry.
        last_seq: u64,
        /// The expected head.
        expected: Digest,
        /// The digest of the last entry.
        found: Digest,
    },
}

/// What a verified chain proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSummary {
    /// `seq` of the first entry.
    pub first_seq: u64,
    /// `seq` of the last entry.
    pub last_seq: u64,
    /// Number of entries.
    pub count: u64,
    /// Digest of the last entry.
    pub head: Digest,
}

/// Extracts the [`ChainLink`] of `entry`, whose RFC 8785 canonical bytes are `canonical_bytes`.
///
/// Does not check that `canonical_bytes` is the canonical form of `entry`; the caller
/// canonicalizes (or has read the bytes the entry was parsed from).
pub fn link_from_entry(entry: &Value, canonical_bytes: &[u8]) -> Result<ChainLink, ChainError> {
    let object = entry.as_object().ok_or(ChainError::NotAnObject)?;
    let seq = object
        .get("seq")
        .ok_or(ChainError::MissingField { field: "seq" })?;
    let seq = seq.as_u64().ok_or(ChainError::WrongType {
        field: "seq",
        expected: "a non-negative integer",
    })?;
    if seq > MAX_SEQ {
        return Err(ChainError::SeqOutOfRange { seq });
    }
    let prev = object
        .get("prev")
        .ok_or(ChainError::MissingField { field: "prev" })?;
    let prev = prev.as_str().ok_or(ChainError::WrongType {
        field: "prev",
        expected: "a string",
    })?;
    let prev = Digest::from_hex(prev).map_err(|source| ChainError::BadPrev { source })?;
    Ok(ChainLink {
        seq,
        prev,
        digest: Digest::sha256(canonical_bytes),
    })
}

/// A fault that the next entry classifies (see [`ChainVerifier::push`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// `link.prev` is not `expected`: [`ChainError::BrokenLink`] or [`ChainError::Spliced`].
    Break {
        index: u64,
        link: ChainLink,
        expected: Digest,
    },
    /// `link.seq` jumped past `expected_seq`: [`ChainError::Gap`] or [`ChainError::Reordered`].
    Jump {
        index: u64,
        link: ChainLink,
        expected_seq: u64,
    },
}

impl Pending {
    /// The error this fault is, given the entry after it (`None` at the end of the chain).
    fn resolve(self, next: Option<&ChainLink>) -> ChainError {
        match self {
            Pending::Break {
                index,
                link,
                expected,
            } => {
                let next_disowns = next.is_some_and(|n| {
                    link.seq.checked_add(1) == Some(n.seq) && n.prev != link.digest
                });
                if next_disowns {
                    ChainError::Spliced {
                        index,
                        seq: link.seq,
                    }
                } else {
                    ChainError::BrokenLink {
                        index,
                        seq: link.seq,
                        expected,
                        found: link.prev,
                    }
                }
            }
            Pending::Jump {
                index,
                link,
                expected_seq,
            } => {
                if next.is_some_and(|n| n.seq == expected_seq) {
                    ChainError::Reordered {
                        index,
                        expected_seq,
                        found_seq: link.seq,
                    }
                } else {
                    ChainError::Gap {
                        index,
                        expected_seq,
                        found_seq: link.seq,
                    }
                }
            }
        }
    }
}

/// Verifies a chain entry by entry, in constant memory.
///
/// Feed every entry's [`ChainLink`] in stream order to [`push`](Self::push), then call
/// [`finish`](Self::finish). The first fault is returned, and returned again by every later call.
///
/// Some faults can only be named once the next entry is seen: a `prev` mismatch is a
/// [`ChainError::Spliced`] entry if the next entry does not link to it either, otherwise a
/// [`ChainError::BrokenLink`]; a forward jump in `seq` is a [`ChainError::Reordered`] entry if the
/// skipped `seq` comes next, otherwise a [`ChainError::Gap`]. Such a fault is therefore reported by
/// the following `push` or by `finish`, always with the index and `seq` of the faulty entry.
///
/// ```
/// use clyra_evidence::chain::{ChainLink, ChainVerifier};
/// use clyra_evidence::Digest;
///
/// let first = ChainLink { seq: 0, prev: Digest::ZERO, digest: Digest::sha256(b"entry 0") };
/// let second = ChainLink { seq: 1, prev: first.digest, digest: Digest::sha256(b"entry 1") };
/// let mut verifier = ChainVerifier::new(Some(0), Some(Digest::ZERO));
/// verifier.push(first)?;
/// verifier.push(second)?;
/// let summary = verifier.finish(Some(second.digest), Some(1))?;
/// assert_eq!(summary.count, 2);
/// # Ok::<(), clyra_evidence::chain::ChainError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_first_seq: Option<u64>,
    expected_first_prev: Option<Digest>,
    count: u64,
    first_seq: u64,
    last: Option<ChainLink>,
    pending: Option<Pending>,
    failed: Option<ChainError>,
}

impl ChainVerifier {
    /// A verifier for a chain that must start at `expected_first_seq` (if given) with `prev` equal
    /// to `expected_first_prev` (if given): [`Digest::ZERO`] for a chain from genesis, or the head
    /// of an already verified prefix.
    pub fn new(expected_first_seq: Option<u64>, expected_first_prev: Option<Digest>) -> Self {
        ChainVerifier {
            expected_first_seq,
            expected_first_prev,
            count: 0,
            first_seq: 0,
            last: None,
            pending: None,
            failed: None,
        }
    }

    /// The number of entries pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether no entry has been pushed yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Checks the next entry against the ones before it.
    pub fn push(&mut self, link: ChainLink) -> Result<(), ChainError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.step(link);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn step(&mut self, link: ChainLink) -> Result<(), ChainError> {
        let index = self.count;
        // Seqs are at most 2^53 - 1 and strictly increasing, so the count cannot overflow first.
        self.count = self.count.saturating_add(1);
        if let Some(pending) = self.pending.take() {
            return Err(pending.resolve(Some(&link)));
        }
        if link.seq > MAX_SEQ {
            return Err(ChainError::SeqOutOfRange { seq: link.seq });
        }
        match self.last {
            None => {
                if let Some(expected) = self.expected_first_seq {
                    if link.seq != expected {
                        return Err(ChainError::UnexpectedFirstSeq {
                            expected,
                            found: link.seq,
                        });
                    }
                }
                self.first_seq = link.seq;
                if let Some(expected) = self.expected_first_prev {
                    if link.prev != expected {
                        self.pending = Some(Pending::Break {
                            index,
                            link,
                            expected,
                        });
                    }
                }
            }
            Some(last) => {
                // No overflow: last.seq <= MAX_SEQ < u64::MAX.
                let expected_seq = last.seq + 1;
                if link.seq == expected_seq {
                    if link.prev != last.digest {
                        self.pending = Some(Pending::Break {
                            index,
                            link,
                            expected: last.digest,
                        });
                    }
                } else if link.seq > expected_seq {
                    self.pending = Some(Pending::Jump {
                        index,
                        link,
                        expected_seq,
                    });
                } else if link.seq >= self.first_seq {
                    // Every seq from first_seq to last.seq has been seen, in order.
                    return Err(ChainError::Duplicate {
                        index,
                        seq: link.seq,
                    });
                } else {
                    return Err(ChainError::Reordered {
                        index,
                        expected_seq,
                        found_seq: link.seq,
                    });
                }
            }
        }
        self.last = Some(link);
        Ok(())
    }

    /// Ends the chain, checking that it ends at `expected_last_seq` and that its head (the digest of
    /// the last entry) is `expected_head`, when given.
    ///
    /// An empty chain is always [`ChainError::Empty`], since it has no summary; a caller that accepts
    /// empty chains checks [`is_empty`](Self::is_empty) first.
    pub fn finish(
        self,
        expected_head: Option<Digest>,
        expected_last_seq: Option<u64>,
    ) -> Result<ChainSummary, ChainError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if let Some(pending) = self.pending {
            return Err(pending.resolve(None));
        }
        let last = self.last.ok_or(ChainError::Empty)?;
        if let Some(expected_last_seq) = expected_last_seq {
            if last.seq < expected_last_seq {
                return Err(ChainError::Truncated {
                    last_seq: last.seq,
                    expected_last_seq,
                });
            }
            if last.seq > expected_last_seq {
                return Err(ChainError::PastExpectedEnd {
                    last_seq: last.seq,
                    expected_last_seq,
                });
            }
        }
        if let Some(expected) = expected_head {
            if last.digest != expected {
                return Err(ChainError::HeadMismatch {
                    last_seq: last.seq,
                    expected,
                    found: last.digest,
                });
            }
        }
        Ok(ChainSummary {
            first_seq: self.first_seq,
            last_seq: last.seq,
            count: self.count,
            head: last.digest,
        })
    }
}

/// Why [`ChainBuilder::append`] refused an entry body. `E` is the canonicalizer's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError<E> {
    /// The body already has a field the builder sets.
    #[error("entry body already has a `{field}` field; the chain builder sets it")]
    ReservedField {
        /// `seq` or `prev`.
        field: &'static str,
    },
    /// The chain has reached [`MAX_SEQ`].
    #[error("chain is full: seq {seq} would be larger than 2^53 - 1")]
    SeqOutOfRange {
        /// The `seq` the entry would have had.
        seq: u64,
    },
    /// The canonicalizer failed.
    #[error("cannot canonicalize entry seq {seq}: {source}")]
    Canonicalize {
        /// The `seq` the entry would have had.
        seq: u64,
        /// The canonicalizer's error.
        #[source]
        source: E,
    },
}

/// An entry made by [`ChainBuilder::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEntry {
    /// The entry: the body plus `seq` and `prev`.
    pub entry: Value,
    /// The entry's canonical bytes, as the canonicalizer produced them.
    pub canonical_bytes: Vec<u8>,
    /// The entry's `seq`, `prev` and digest.
    pub link: ChainLink,
}

/// Appends entries to a chain, setting `seq` and `prev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBuilder {
    next_seq: u64,
    prev: Digest,
}

impl Default for ChainBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainBuilder {
    /// A chain from genesis: the first entry gets `seq` 0 and `prev` [`Digest::ZERO`].
    pub fn new() -> Self {
        ChainBuilder {
            next_seq: 0,
            prev: Digest::ZERO,
        }
    }

    /// Continues a chain whose last entry has `seq` `last_seq` and digest `head`.
    pub fn resume(last_seq: u64, head: Digest) -> Self {
        ChainBuilder {
            next_seq: last_seq.saturating_add(1),
            prev: head,
        }
    }

    /// The `seq` the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The digest of the last entry ([`Digest::ZERO`] before the first entry from genesis).
    pub fn head(&self) -> Digest {
        self.prev
    }

    /// Adds `seq` and `prev` to `body`, canonicalizes the entry with `canonicalize` and advances
    /// the chain. On error the chain is unchanged.
    pub fn append<E>(
        &mut self,
        mut body: Map<String, Value>,
        canonicalize: impl Fn(&Value) -> Result<Vec<u8>, E>,
    ) -> Result<ChainedEntry, AppendError<E>> {
        let seq = self.next_seq;
        if seq > MAX_SEQ {
            return Err(AppendError::SeqOutOfRange { seq });
        }
        for field in ["seq", "prev"] {
            if body.contains_key(field) {
                return Err(AppendError::ReservedField { field });
            }
        }
        body.insert("seq".to_owned(), Value::from(seq));
        body.insert("prev".to_owned(), Value::String(self.prev.to_hex()));
        let entry = Value::Object(body);
        let canonical_bytes =
            canonicalize(&entry).map_err(|source| AppendError::Canonicalize { seq, source })?;
        let link = ChainLink {
            seq,
            prev: self.prev,
            digest: Digest::sha256(&canonical_bytes),
        };
        self.next_seq = seq.saturating_add(1);
        self.prev = link.digest;
        Ok(ChainedEntry {
            entry,
            canonical_bytes,
            link,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Stand-in canonicalizer for tests: serde_json's compact form with sorted keys (serde_json's
    /// `Map` is a `BTreeMap` without the `preserve_order` feature). Enough to give every entry
    /// distinct, stable bytes; not RFC 8785.
    fn compact(v: &Value) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(v)
    }

    fn body(n: u64) -> Map<String, Value> {
        let Value::Object(m) = json!({"event": "tool_call", "n": n}) else {
            unreachable!()
        };
        m
    }

    fn build(chain: &mut ChainBuilder, n: u64) -> Vec<ChainLink> {
        (0..n)
            .map(|i| chain.append(body(i), compact).unwrap().link)
            .collect()
    }

    fn verify(links: &[ChainLink]) -> Result<ChainSummary, ChainError> {
        let mut v = ChainVerifier::new(Some(0), Some(Digest::ZERO));
        for l in links {
            v.push(*l)?;
        }
        v.finish(None, None)
    }

    #[test]
    fn built_chain_verifies_and_entries_round_trip() {
        let mut chain = ChainBuilder::new();
        let entries: Vec<ChainedEntry> = (0..5)
            .map(|i| chain.append(body(i), compact).unwrap())
            .collect();
        assert_eq!(entries[0].entry["prev"], Digest::ZERO.to_hex());
        assert_eq!(entries[0].entry["seq"], 0);
        let mut v = ChainVerifier::new(Some(0), Some(Digest::ZERO));
        for e in &entries {
            let link = link_from_entry(&e.entry, &e.canonical_bytes).unwrap();
            assert_eq!(link, e.link);
            v.push(link).unwrap();
        }
        let head = chain.head();
        assert_eq!(
            v.finish(Some(head), Some(4)).unwrap(),
            ChainSummary {
                first_seq: 0,
                last_seq: 4,
                count: 5,
                head
            }
        );
    }

    #[test]
    fn resume_continues_the_chain() {
        let mut chain = ChainBuilder::new();
        let mut links = build(&mut chain, 3);
        let mut resumed = ChainBuilder::resume(2, links[2].digest);
        assert_eq!(resumed, chain);
        links.extend(build(&mut resumed, 2));
        assert_eq!(resumed.next_seq(), 5);
        assert_eq!(verify(&links).map(|s| s.count), Ok(5));
        let mut tail = ChainVerifier::new(Some(3), Some(links[2].digest));
        tail.push(links[3]).unwrap();
        tail.push(links[4]).unwrap();
        assert_eq!(
            tail.finish(Some(resumed.head()), Some(4)).map(|s| s.count),
            Ok(2)
        );
    }

    #[test]
    fn link_from_entry_names_what_is_wrong() {
        let zero = Digest::ZERO.to_hex();
        let cases = [
            (json!([1]), ChainError::NotAnObject),
            (
                json!({"prev": zero}),
                ChainError::MissingField { field: "seq" },
            ),
            (
                json!({"seq": 1}),
                ChainError::MissingField { field: "prev" },
            ),
            (
                json!({"seq": "1", "prev": zero}),
                ChainError::WrongType {
                    field: "seq",
                    expected: "a non-negative integer",
                },
            ),
            (
                json!({"seq": -1, "prev": zero}),
                ChainError::WrongType {
                    field: "seq",
                    expected: "a non-negative integer",
                },
            ),
            (
                json!({"seq": 1.0, "prev": zero}),
                ChainError::WrongType {
                    field: "seq",
                    expected: "a non-negative integer",
                },
            ),
            (
                json!({"seq": MAX_SEQ + 1, "prev": zero}),
                ChainError::SeqOutOfRange { seq: MAX_SEQ + 1 },
            ),
            (
                json!({"seq": 1, "prev": 0}),
                ChainError::WrongType {
                    field: "prev",
                    expected: "a string",
                },
            ),
            (
                json!({"seq": 1, "prev": zero.to_uppercase().replace('0', "A")}),
                ChainError::BadPrev {
                    source: DigestParseError::HexChar('A'),
                },
            ),
            (
                json!({"seq": 1, "prev": "00"}),
                ChainError::BadPrev {
                    source: DigestParseError::HexLength(2),
                },
            ),
        ];
        for (entry, want) in cases {
            assert_eq!(link_from_entry(&entry, b"{}"), Err(want), "{entry}");
        }
        let ok = link_from_entry(&json!({"seq": MAX_SEQ, "prev": zero}), b"x").unwrap();
        assert_eq!(ok.digest, Digest::sha256(b"x"));
    }

    #[test]
    fn append_refuses_reserved_fields_and_keeps_state_on_error() {
        let mut chain = ChainBuilder::new();
        let mut b = body(0);
        b.insert("prev".into(), json!("x"));
        assert_eq!(
            chain
                .append(b, compact)
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "entry body already has a `prev` field; the chain builder sets it"
        );
        let failing = |_: &Value| -> Result<Vec<u8>, std::fmt::Error> { Err(std::fmt::Error) };
        assert!(matches!(
            chain.append(body(0), failing),
            Err(AppendError::Canonicalize { seq: 0, .. })
        ));
        assert_eq!(chain, ChainBuilder::new());
        let mut full = ChainBuilder::resume(MAX_SEQ, Digest::ZERO);
        assert!(matches!(
            full.append(body(0), compact),
            Err(AppendError::SeqOutOfRange { seq }) if seq == MAX_SEQ + 1
        ));
    }

    #[test]
    fn errors_are_sticky() {
        let links = build(&mut ChainBuilder::new(), 3);
        let mut v = ChainVerifier::new(None, None);
        v.push(links[0]).unwrap();
        let err = v.push(links[0]).unwrap_err();
        assert_eq!(err, ChainError::Duplicate { index: 1, seq: 0 });
        assert_eq!(v.push(links[1]), Err(err.clone()));
        assert_eq!(v.finish(None, None), Err(err));
    }

    #[test]
    fn empty_chain_is_reported() {
        let v = ChainVerifier::new(None, None);
        assert!(v.is_empty());
        assert_eq!(v.finish(None, None), Err(ChainError::Empty));
    }

    #[test]
    fn verifier_rejects_seq_beyond_max() {
        let mut v = ChainVerifier::new(None, None);
        let link = ChainLink {
            seq: u64::MAX,
            prev: Digest::ZERO,
            digest: Digest::ZERO,
        };
        assert_eq!(
            v.push(link),
            Err(ChainError::SeqOutOfRange { seq: u64::MAX })
        );
    }

    #[test]
    fn unexpected_first_seq() {
        let links = build(&mut ChainBuilder::new(), 3);
        assert_eq!(
            verify(&links[1..]),
            Err(ChainError::UnexpectedFirstSeq {
                expected: 0,
                found: 1
            })
        );
    }

    #[test]
    fn first_entry_not_from_genesis_is_a_broken_link() {
        let links = build(&mut ChainBuilder::resume(9, Digest::sha256(b"other")), 2);
        let relabelled: Vec<ChainLink> = links
            .iter()
            .map(|l| ChainLink {
                seq: l.seq - 10,
                ..*l
            })
            .collect();
        assert_eq!(
            verify(&relabelled),
            Err(ChainError::BrokenLink {
                index: 0,
                seq: 0,
                expected: Digest::ZERO,
                found: Digest::sha256(b"other"),
            })
        );
    }
}
