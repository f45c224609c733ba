//! Entry points for the fuzz targets in `fuzz/`: untrusted bytes read as a snapshot file, a
//! connection string, an SQL API answer, a Snowflake anchors file, a Delta commit file, dbt
//! artifacts or a dbt JSON log. Must never panic, and assert the invariants that hold whenever
//! the input is accepted. Not a stable API.

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

/// What every recorded dbt run must satisfy: canonical run.json and lineage.json that read back
/// to the same values, event ids the journal takes, renderings and OpenLineage events that never
/// panic, and the same output a second time.
fn check_recorded(t: &crate::dbt::TargetArtifacts, log: Option<&crate::dbt::LogSummary>) {
    use crate::dbt::{lineage::Lineage, openlineage, record, RecordContext, RunRecord};
    for ctx in [
        RecordContext::default(),
        RecordContext {
            replay: true,
            interrupted: true,
            ..Default::default()
        },
    ] {
        let Ok(r) = record(t, log, &ctx) else {
            continue;
        };
        #[allow(clippy::panic)]
        {
            let run_bytes = r
                .artifacts
                .first()
                .map(|a| a.bytes.clone())
                .unwrap_or_default();
            match RunRecord::from_json(&run_bytes, "run.json") {
                Ok(back) if back == r.run => {}
                other => panic!("run.json does not read back: {other:?}"),
            }
            let lineage_bytes = r
                .artifacts
                .get(1)
                .map(|a| a.bytes.clone())
                .unwrap_or_default();
            match Lineage::from_json(&lineage_bytes, "lineage.json") {
                Ok(back) if back == r.lineage => {}
                other => panic!("lineage.json does not read back: {other:?}"),
            }
            for e in &r.events {
                if e.id.len() > crate::dbt::record::MAX_EVENT_ID_BYTES
                    || e.id.chars().any(char::is_control)
                {
                    panic!("an event id the journal refuses: {:?}", e.id);
                }
            }
            match record(t, log, &ctx) {
                Ok(again) if again.artifacts == r.artifacts && again.events == r.events => {}
                _ => panic!("recording the same input twice differs"),
            }
        }
        let _ = r.lineage.to_text_tree();
        let _ = r.lineage.to_dot();
        let _ = r.lineage.to_svg();
        let _ = openlineage::events(&r.run, &r.lineage, &openlineage::Options::default());
    }
}

/// dbt artifacts: untrusted bytes as run_results.json and as manifest.json (split at the first
/// `\n\0\n`, else the same bytes for both). The readers never panic; whatever they accept is
/// recorded and checked by `check_recorded`.
pub fn dbt_artifacts(data: &[u8]) {
    use crate::dbt::artifacts::{Manifest, RunResults, TargetArtifacts};
    let sep = b"\n\0\n";
    let (rr, m) = match data.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (
            data.get(..i).unwrap_or_default(),
            data.get(i + sep.len()..).unwrap_or_default(),
        ),
        None => (data, data),
    };
    let run_results = RunResults::from_json(rr, "run_results.json").ok();
    let manifest = Manifest::from_json(m, "manifest.json").ok();
    if run_results.is_none() && manifest.is_none() {
        return;
    }
    let t = TargetArtifacts {
        run_results_bytes: run_results.as_ref().map(|_| rr.to_vec()),
        manifest_bytes: manifest.as_ref().map(|_| m.to_vec()),
        run_results,
        manifest,
    };
    check_recorded(&t, None);
}

/// dbt's JSON log: any bytes are read (bad lines counted, never a panic); the summary is
/// consistent, and a run recorded from it alone is checked by `check_recorded`.
pub fn dbt_log(data: &[u8]) {
    let log = crate::dbt::log::parse_log(data);
    #[allow(clippy::panic)]
    if log.bad_lines > log.lines || log.guard_decisions.len() != log.guard_decision_ts.len() {
        panic!("inconsistent log summary: {log:?}");
    }
    check_recorded(&crate::dbt::TargetArtifacts::default(), Some(&log));
}
