//! Entry points for the fuzz targets in `fuzz/`: untrusted bytes read as a snapshot file, an SQL
//! API answer or a Snowflake anchors file. Must never panic, and assert the invariants that hold
//! whenever the input is accepted. Not a stable API.

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

/// Snowflake: untrusted bytes as an SQL API answer (first page and later partition) and as an
/// anchors file. An accepted anchors file serializes to canonical bytes that read back the same.
pub fn snowflake(data: &[u8]) {
    use crate::snowflake::{api, AnchorSet};
    if let Ok(p) = api::parse_result_set(data) {
        #[allow(clippy::panic)]
        if p.rows.iter().any(|r| r.len() != p.columns.len()) {
            panic!("an accepted result set has a row of the wrong width");
        }
    }
    let _ = api::parse_partition(data, 1, 2, 3);
    let Ok(set) = AnchorSet::from_json(data) else {
        return;
    };
    let Ok(bytes) = set.to_canonical_json() else {
        #[allow(clippy::panic)]
        {
            panic!("an accepted anchors file does not serialize");
        }
    };
    let again = AnchorSet::from_json(&bytes);
    #[allow(clippy::panic)]
    if again.as_ref().ok() != Some(&set) {
        panic!("an accepted anchors file does not read back the same: {again:?}");
    }
    let _ = set.def_anchors();
}
