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
