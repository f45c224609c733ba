//! Hash-chain attacks against the public API: every `ChainError` a verifier reports for a stream.
//!
//! Journals are built with `ChainBuilder`, stored as canonical bytes (one entry per line, as a
//! JSON Lines journal would), attacked line by line, then read back and verified the way a verifier
//! reads a journal: parse each line, digest its bytes, push its link.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clyra_evidence::chain::{
    link_from_entry, ChainBuilder, ChainError, ChainSummary, ChainVerifier,
};
use clyra_evidence::Digest;
use serde_json::{json, Map, Value};

fn canonical(v: &Value) -> Result<Vec<u8>, clyra_evidence::jcs::JcsError> {
    clyra_evidence::jcs::canonicalize_value(v)
}

fn body(chain: &str, n: u64) -> Map<String, Value> {
    match json!({"chain": chain, "event": "tool_call", "n": n}) {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// A journal of `len` entries from genesis, as canonical bytes per line.
fn journal(chain: &str, len: u64) -> Vec<Vec<u8>> {
    let mut builder = ChainBuilder::new();
    (0..len)
        .map(|n| {
            builder
                .append(body(chain, n), canonical)
                .unwrap()
                .canonical_bytes
        })
        .collect()
}

fn head_of(lines: &[Vec<u8>]) -> Digest {
    Digest::sha256(lines.last().unwrap())
}

/// Verifies `lines` as a chain from genesis, as a verifier reading a journal would.
fn verify(
    lines: &[Vec<u8>],
    expected_head: Option<Digest>,
    expected_last_seq: Option<u64>,
) -> Result<ChainSummary, ChainError> {
    let mut verifier = ChainVerifier::new(Some(0), Some(Digest::ZERO));
    for line in lines {
        let entry: Value = serde_json::from_slice(line).unwrap();
        verifier.push(link_from_entry(&entry, line)?)?;
    }
    verifier.finish(expected_head, expected_last_seq)
}

#[test]
fn intact_journal_verifies() {
    let lines = journal("a", 6);
    let head = head_of(&lines);
    assert_eq!(
        verify(&lines, Some(head), Some(5)),
        Ok(ChainSummary {
            first_seq: 0,
            last_seq: 5,
            count: 6,
            head
        })
    );
}

#[test]
fn altered_entry_breaks_the_next_link() {
    let mut lines = journal("a", 6);
    let original = Digest::sha256(&lines[2]);
    let mut entry: Value = serde_json::from_slice(&lines[2]).unwrap();
    entry["event"] = json!("nothing_happened");
    lines[2] = canonical(&entry).unwrap();
    // Entry 2 still links to entry 1; entry 3 no longer links to the altered entry 2.
    assert_eq!(
        verify(&lines, None, None),
        Err(ChainError::BrokenLink {
            index: 3,
            seq: 3,
            expected: Digest::sha256(&lines[2]),
            found: original,
        })
    );
}

#[test]
fn altered_last_entry_is_caught_by_the_head() {
    let mut lines = journal("a", 4);
    let head = head_of(&lines);
    let mut entry: Value = serde_json::from_slice(&lines[3]).unwrap();
    entry["n"] = json!(99);
    lines[3] = canonical(&entry).unwrap();
    assert_eq!(
        verify(&lines, Some(head), Some(3)),
        Err(ChainError::HeadMismatch {
            last_seq: 3,
            expected: head,
            found: Digest::sha256(&lines[3]),
        })
    );
}

#[test]
fn entry_from_another_chain_is_spliced() {
    let mut lines = journal("a", 6);
    let other = journal("b", 6);
    lines[3] = other[3].clone();
    assert_eq!(
        verify(&lines, None, None),
        Err(ChainError::Spliced { index: 3, seq: 3 })
    );
}

#[test]
fn foreign_last_entry_is_a_broken_link() {
    // With no successor to disown it, a foreign last entry is indistinguishable from an altered
    // predecessor: the first broken link is reported.
    let mut lines = journal("a", 4);
    lines[3] = journal("b", 4)[3].clone();
    assert!(matches!(
        verify(&lines, None, None),
        Err(ChainError::BrokenLink {
            index: 3,
            seq: 3,
            ..
        })
    ));
}

#[test]
fn foreign_genesis_entry_breaks_the_next_link() {
    let mut lines = journal("a", 3);
    lines[0] = journal("b", 1)[0].clone();
    // Both genesis entries have prev = ZERO, so the foreign one fits the anchor; only the link from
    // entry 1 is broken, exactly as if entry 0 had been altered.
    assert_eq!(
        verify(&lines, None, None),
        Err(ChainError::BrokenLink {
            index: 1,
            seq: 1,
            expected: Digest::sha256(&lines[0]),
            found: Digest::sha256(&journal("a", 1)[0]),
        })
    );
}

#[test]
fn chain_that_does_not_start_at_the_anchor_is_a_broken_link() {
    let lines = journal("a", 5);
    let mut verifier = ChainVerifier::new(Some(2), Some(Digest::sha256(b"some other head")));
    let pushed: Result<(), ChainError> = lines[2..].iter().try_for_each(|line| {
        let entry: Value = serde_json::from_slice(line).unwrap();
        verifier.push(link_from_entry(&entry, line)?)
    });
    // The fault is named once the next entry shows that it links to the first one.
    let err = pushed.and_then(|()| verifier.finish(None, None).map(|_| ()));
    assert!(matches!(
        err,
        Err(ChainError::BrokenLink {
            index: 0,
            seq: 2,
            ..
        })
    ));
}

#[test]
fn missing_entry_is_a_gap() {
    let mut lines = journal("a", 6);
    lines.remove(3);
    assert_eq!(
        verify(&lines, None, None),
        Err(ChainError::Gap {
            index: 3,
            expected_seq: 3,
            found_seq: 4
        })
    );
}

#[test]
fn missing_second_to_last_entry_is_a_gap() {
    let mut lines = journal("a", 6);
    lines.remove(4);
    assert_eq!(
        verify(&lines, None, None),
        Err(ChainError::Gap {
            index: 4,
            expected_seq: 4,
            found_seq: 5
        })
    );
}

#[test]
fn swapped_entries_are_reordered() {
    let mut lines = journal("a", 6);
    lines.swap(3, 4);
    assert_eq!(
        verify(&lines, None, None),
        Err(ChainError::Reordered {
            index: 3,
            expected_seq: 3,
            found_seq: 4
        })
    );
}

#[test]
fn entry_from_before_the_start_is_reordered() {
    let lines = journal("a", 6);
    let mut verifier = ChainVerifier::new(None, None);
    for line in [&lines[3], &lines[4], &lines[2]] {
        let entry: Value = serde_json::from_slice(line).unwrap();
        if let Err(e) = verifier.push(link_from_entry(&entry, line).unwrap()) {
            assert_eq!(
                e,
                ChainError::Reordered {
                    index: 2,
                    expected_seq: 5,
                    found_seq: 2
                }
            );
            return;
        }
    }
    panic!("entry seq 2 after seq 4 was accepted");
}

#[test]
fn replayed_entry_is_a_duplicate() {
    let mut lines = journal("a", 6);
    lines.insert(4, lines[1].clone());
    assert_eq!(
        verify(&lines, None, None),
        Err(ChainError::Duplicate { index: 4, seq: 1 })
    );
}

#[test]
fn repeated_entry_is_a_duplicate() {
    let mut lines = journal("a", 3);
    lines.push(lines[2].clone());
    assert_eq!(
        verify(&lines, None, None),
        Err(ChainError::Duplicate { index: 3, seq: 2 })
    );
}

#[test]
fn dropped_tail_is_truncated() {
    let lines = journal("a", 6);
    let head = head_of(&lines);
    assert_eq!(
        verify(&lines[..4], Some(head), Some(5)),
        Err(ChainError::Truncated {
            last_seq: 3,
            expected_last_seq: 5
        })
    );
    // Without the expected last seq, the head still catches it.
    assert_eq!(
        verify(&lines[..4], Some(head), None),
        Err(ChainError::HeadMismatch {
            last_seq: 3,
            expected: head,
            found: head_of(&lines[..4]),
        })
    );
}

#[test]
fn dropped_head_is_truncated_and_extra_entries_are_named() {
    let lines = journal("a", 6);
    assert_eq!(
        verify(&lines, None, Some(4)),
        Err(ChainError::PastExpectedEnd {
            last_seq: 5,
            expected_last_seq: 4
        })
    );
    assert_eq!(
        verify(&lines[1..], None, None),
        Err(ChainError::UnexpectedFirstSeq {
            expected: 0,
            found: 1
        })
    );
}

#[test]
fn empty_journal_is_reported() {
    assert_eq!(verify(&[], None, None), Err(ChainError::Empty));
}

#[test]
fn malformed_entries_are_named() {
    let mut lines = journal("a", 3);
    let mut entry: Value = serde_json::from_slice(&lines[1]).unwrap();
    entry["prev"] = json!("not hex");
    lines[1] = canonical(&entry).unwrap();
    let err = verify(&lines, None, None).unwrap_err();
    assert!(matches!(err, ChainError::BadPrev { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "entry field `prev` is not a lowercase hex sha-256 digest: \
         expected 64 lowercase hex characters, found 7"
    );
}
