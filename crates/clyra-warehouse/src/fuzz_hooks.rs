//! Entry point for the fuzz target in `fuzz/`: untrusted bytes read as a snapshot file. Must never
//! panic, and asserts the invariants that hold whenever the input is accepted. Not a stable API.

use crate::diff::diff;
use crate::snapshot::Snapshot;

/// Snapshot files: an accepted snapshot serializes to canonical bytes that read back to the same
/// snapshot, and diffs to nothing against itself and its re-read copy.
pub fn snapshot(data: &[u8]) {
    let Ok(s) = Snapshot::from_json(data) else {
        return;
    };
    let Ok(bytes) = s.to_canonical_json() else {
        #[allow(clippy::panic)]
        {
            panic!("an accepted snapshot does not serialize");
        }
    };
    let again = Snapshot::from_json(&bytes);
    #[allow(clippy::panic)]
    if again.as_ref().ok() != Some(&s) {
        panic!("an accepted snapshot does not read back the same: {again:?}");
    }
    for d in [diff(&s, &s), diff(&s, again.as_ref().unwrap_or(&s))] {
        #[allow(clippy::panic)]
        if d.changed || !d.tables.is_empty() || !d.notes.is_empty() {
            panic!("a snapshot differs from itself: {d:?}");
        }
    }
}
