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

/// Connection strings: the typo suggester, the redactor and the doctor's offline platform
/// detection never panic, and a `password=` value made of a marker never reaches a message.
pub fn dsn(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::doctor::detect(s);
    let _ = crate::suggest::redact(s);
    let _ = crate::suggest::suggest(s).message();
    const MARKER: &str = "Zq9SECRETq9Z";
    for dsn in [
        format!("{s} password={MARKER}"),
        format!("postgress://u:{MARKER}@{s}"),
    ] {
        let shown = [
            crate::suggest::suggest(&dsn).message().unwrap_or_default(),
            crate::suggest::redact(&dsn),
        ];
        #[allow(clippy::panic)]
        for m in shown {
            if m.contains(MARKER) && !s.contains(MARKER) && !s.contains(['\'', '\\', '=']) {
                panic!("the password leaked: {dsn:?} -> {m:?}");
            }
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
