//! Entry points for the fuzz targets in `fuzz/`: untrusted bytes read as a snapshot file, a
//! connection string, an SQL API answer, a Snowflake anchors file or a Delta commit file. Must
//! never panic, and assert the invariants that hold whenever the input is accepted. Not a stable
//! API.

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

/// Delta commit files: never panic; when accepted, every metric name lands in its slot or in
/// `other`, and the normalized metrics read back the same from their canonical JSON.
pub fn delta_commit(data: &[u8]) {
    use crate::delta::{parse_commit, OperationMetrics};
    let Ok(commit) = parse_commit(data) else {
        return;
    };
    let Some(ci) = commit.commit_info else {
        return;
    };
    let Some(raw) = ci.operation_metrics else {
        return;
    };
    let m = OperationMetrics::normalize(ci.operation.as_deref(), &raw);
    let again = OperationMetrics::normalize(ci.operation.as_deref(), &raw);
    #[allow(clippy::panic)]
    if m != again {
        panic!("normalization is not deterministic");
    }
    let mapped = serde_json::to_value(&m)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.len()))
        .unwrap_or(0);
    let slots = mapped - usize::from(!m.other.is_empty());
    #[allow(clippy::panic)]
    if slots + m.other.len() > raw.len() || (!raw.is_empty() && slots + m.other.len() == 0) {
        panic!("metrics were invented or lost: {raw:?} -> {m:?}");
    }
    for k in raw.keys() {
        #[allow(clippy::panic)]
        if crate::delta::METRIC_NAMES.iter().all(|(n, _)| n != k) && !m.other.contains_key(k) {
            panic!("unmapped metric `{k}` was dropped");
        }
    }
    let Ok(bytes) = clyra_evidence::jcs::to_canonical_vec(&m) else {
        #[allow(clippy::panic)]
        {
            panic!("normalized metrics do not serialize");
        }
    };
    // Canonical JSON normalizes numbers (4.0 reads back as 4): compare canonical bytes.
    let back = serde_json::from_slice::<OperationMetrics>(&bytes)
        .ok()
        .and_then(|b| clyra_evidence::jcs::to_canonical_vec(&b).ok());
    #[allow(clippy::panic)]
    if back.as_deref() != Some(bytes.as_slice()) {
        panic!("normalized metrics do not read back");
    }
}

/// Replay sets (`clyra.replay.set/v1`): an accepted set serializes to canonical bytes that read
/// back to the same set, and its dependency order is a permutation of its models.
pub fn replay_set(data: &[u8]) {
    use crate::replay::ReplaySet;
    let Ok(set) = ReplaySet::from_json(data) else {
        return;
    };
    let again = set
        .to_canonical_json()
        .ok()
        .and_then(|b| ReplaySet::from_json(&b).ok());
    #[allow(clippy::panic)]
    if again.as_ref() != Some(&set) {
        panic!("an accepted replay set does not read back the same: {again:?}");
    }
    let mut order = set.order();
    order.sort_unstable();
    #[allow(clippy::panic)]
    if order != (0..set.models.len()).collect::<Vec<_>>() {
        panic!("the dependency order is not a permutation of the models");
    }
}

/// Compiled SQL under the replay check: never panics; for accepted SQL the printed query passes
/// the check again with the same relations, and a rewrite (which re-checks what it prints) never
/// turns accepted SQL into SQL the check would refuse for a function or a statement.
pub fn replay_sql(data: &[u8]) {
    use crate::replay::sql;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(checked) = sql::check(text) else {
        return;
    };
    let printed = checked.sql();
    match sql::check(&printed) {
        Ok(again) =>
        {
            #[allow(clippy::panic)]
            if again.relations != checked.relations {
                panic!("printing changed the relations read: {printed}");
            }
        }
        // Printing may produce SQL the parser reads differently (the rewrite then refuses it,
        // failing closed); it must never be a function or statement the original hid.
        Err(r) => {
            #[allow(clippy::panic)]
            if matches!(
                r.code,
                "refused_function" | "data_modifying" | "not_a_query"
            ) {
                panic!("printing revealed a refused construct ({r}): {printed}");
            }
        }
    }
    let replayed = checked
        .relations
        .iter()
        .filter(|p| p.len() >= 2)
        .map(|p| {
            let n = p.len();
            ((p[n - 2].clone(), p[n - 1].clone()), p[n - 1].clone())
        })
        .collect();
    let _ = sql::rewrite(&checked, &replayed, "clyra_replay_0123456789abcdef");
}
