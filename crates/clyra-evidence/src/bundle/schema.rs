//! Schema checks for bundle documents, behind one seam, plus the rules a JSON Schema cannot
//! express (ordering, uniqueness, consistency between members).
//!
//! [`schema_issues`] is the seam: today it checks structure with this module's serde types (which
//! reject unknown members); when `crate::schema` lands it becomes a call to
//! `crate::schema::validate`, and everything else here stays as it is.

use serde::Deserialize;
use serde_json::Value;

use super::model::{
    parse_utc_timestamp, ChainMode, Manifest, ARTIFACTS_PREFIX, ATTESTATION_PATH,
    CHECKPOINT_NOTE_PATH, FORMAT_VERSION, FORMAT_VERSIONS, JOURNAL_PATH, MANIFEST_PATH, MERKLE_ALG,
    PROOFS_PATH,
};
use super::predicate::{metric_value, named_seqs, DefPredicate, PefPredicate, Sla};
use crate::chain::MAX_SEQ;
use crate::codes::Code;
use crate::digest::Digest;
use crate::zipstore;

/// The documents a bundle holds, each with its own schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemaKind {
    /// `manifest.json`.
    Manifest,
    /// The in-toto Statement in the attestation.
    Statement,
    /// One line of `journal.ndjson` (the four members every entry has).
    JournalEntry,
    /// The DEF predicate.
    DefPredicate,
    /// The PEF predicate.
    PefPredicate,
}

/// The schema issues of `value` as `(JSON pointer, message)`; empty when it conforms.
pub(crate) fn schema_issues(kind: SchemaKind, value: &Value) -> Vec<(String, String)> {
    // The JSON Schemas in spec/ are the contract both verifiers share, so they decide first. The
    // serde types then check the same document again: a disagreement between the two is reported
    // rather than silently trusted either way.
    let id = match kind {
        SchemaKind::Manifest => crate::schema::SchemaId::Manifest,
        SchemaKind::Statement => crate::schema::SchemaId::Statement,
        SchemaKind::JournalEntry => crate::schema::SchemaId::JournalEntry,
        SchemaKind::DefPredicate => crate::schema::SchemaId::DefPredicate,
        SchemaKind::PefPredicate => crate::schema::SchemaId::PefPredicate,
    };
    let issues: Vec<(String, String)> = crate::schema::validate(id, value)
        .into_iter()
        .map(|i| (i.pointer, i.message))
        .collect();
    if !issues.is_empty() {
        return issues;
    }
    structural_issues(kind, value)
}

/// The interim structural check: deserialize into the serde types.
fn structural_issues(kind: SchemaKind, value: &Value) -> Vec<(String, String)> {
    fn serde_check<T: for<'de> Deserialize<'de>>(value: &Value) -> Vec<(String, String)> {
        match T::deserialize(value) {
            Ok(_) => Vec::new(),
            Err(e) => vec![(String::new(), e.to_string())],
        }
    }
    match kind {
        SchemaKind::Manifest => serde_check::<Manifest>(value),
        SchemaKind::Statement => serde_check::<StatementShape>(value),
        SchemaKind::DefPredicate => serde_check::<DefPredicate>(value),
        SchemaKind::PefPredicate => serde_check::<PefPredicate>(value),
        SchemaKind::JournalEntry => journal_entry_issues(value),
    }
}

/// The shape of an in-toto Statement v1 in a bundle: exactly these members.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read only by serde
struct StatementShape {
    #[serde(rename = "_type")]
    statement_type: String,
    subject: Vec<SubjectShape>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: AnyObject,
}

/// A JSON object whose members are not looked at: the statement's predicate, which its own schema
/// checks. Deserializing it into a `Map` would copy the whole predicate (every dbt model and test
/// of a DEF bundle) only to drop it.
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AnyObject, A::Error> {
                use serde::de::IgnoredAny;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(Members)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read only by serde
struct SubjectShape {
    name: String,
    digest: std::collections::BTreeMap<String, String>,
}

/// Whether `kind` is dotted lowercase: segments of `[a-z0-9_]` joined by `.`.
pub(crate) fn is_event_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// The four members every journal entry has (§6): `seq`, `prev`, `ts`, `kind`.
fn journal_entry_issues(value: &Value) -> Vec<(String, String)> {
    let Some(entry) = value.as_object() else {
        return vec![(String::new(), "entry is not a JSON object".to_owned())];
    };
    let mut issues = Vec::new();
    let mut issue = |pointer: &str, message: String| issues.push((pointer.to_owned(), message));
    match entry.get("seq") {
        None => issue("/seq", "missing".to_owned()),
        Some(v) => {
            if v.as_u64().is_none_or(|s| s > MAX_SEQ) {
                issue("/seq", format!("`{v}` is not an integer in 0..=2^53-1"));
            }
        }
    }
    match entry.get("prev") {
        None => issue("/prev", "missing".to_owned()),
        Some(Value::String(s)) => {
            if let Err(e) = Digest::from_hex(s) {
                issue("/prev", e.to_string());
            }
        }
        Some(v) => issue("/prev", format!("`{v}` is not a string")),
    }
    match entry.get("ts") {
        None => issue("/ts", "missing".to_owned()),
        Some(Value::String(s)) => {
            if let Err(e) = parse_utc_timestamp(s) {
                issue("/ts", e);
            }
        }
        Some(v) => issue("/ts", format!("`{v}` is not a string")),
    }
    match entry.get("kind") {
        None => issue("/kind", "missing".to_owned()),
        Some(Value::String(s)) if is_event_kind(s) => {}
        Some(v) => issue("/kind", format!("`{v}` is not a dotted lowercase name")),
    }
    issues
}

/// A rule violation: the code, and a message that names the member.
pub(crate) type RuleIssue = (Code, String);

/// Whether `id` is 1–128 characters of `[A-Za-z0-9._:-]`.
pub(crate) fn is_bundle_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Whether `t` looks like a media type: `type/subtype`, printable ASCII without spaces.
pub(crate) fn is_media_type(t: &str) -> bool {
    let mut parts = t.splitn(2, '/');
    let (Some(ty), Some(sub)) = (parts.next(), parts.next()) else {
        return false;
    };
    !ty.is_empty()
        && !sub.is_empty()
        && t.bytes().all(|b| b.is_ascii_graphic())
        && !ty.contains(';')
}

/// The manifest rules beyond its schema (§2.1, §4, §6). A manifest that breaks any of them is not
/// used for the checks that depend on it.
pub(crate) fn manifest_rules(m: &Manifest) -> Vec<RuleIssue> {
    let mut out: Vec<RuleIssue> = Vec::new();
    let mut schema = |msg: String| out.push((Code::Schema, msg));
    if !FORMAT_VERSIONS.contains(&m.format_version.as_str()) {
        schema(format!(
            "`/format_version` is `{}`, expected one of {FORMAT_VERSIONS:?}",
            m.format_version
        ));
    }
    // §6.1, §6.2: run chains and checkpoints are 0.2 members.
    if m.format_version == FORMAT_VERSION {
        for (present, member) in [
            (m.journal.chain.is_some(), "/journal/chain"),
            (m.journal.run.is_some(), "/journal/run"),
            (m.checkpoint.is_some(), "/checkpoint"),
        ] {
            if present {
                schema(format!(
                    "`{member}` is not a member of format version {FORMAT_VERSION}"
                ));
            }
        }
    }
    match (m.journal.chain_mode(), &m.journal.run) {
        (ChainMode::Run, None) => {
            schema("`/journal/run` is required when `/journal/chain` is `run`".to_owned());
        }
        (ChainMode::Run, Some(run)) if run.is_empty() => {
            schema("`/journal/run` is empty".to_owned());
        }
        (ChainMode::Journal, Some(_)) => {
            schema("`/journal/run` is only allowed when `/journal/chain` is `run`".to_owned());
        }
        _ => {}
    }
    if let Some(cp) = &m.checkpoint {
        if cp.note != CHECKPOINT_NOTE_PATH {
            schema(format!(
                "`/checkpoint/note` is `{}`, expected `{CHECKPOINT_NOTE_PATH}`",
                cp.note.escape_debug()
            ));
        }
        if cp.proofs != PROOFS_PATH {
            schema(format!(
                "`/checkpoint/proofs` is `{}`, expected `{PROOFS_PATH}`",
                cp.proofs.escape_debug()
            ));
        }
        for path in [CHECKPOINT_NOTE_PATH, PROOFS_PATH] {
            if !m.files.iter().any(|f| f.path == path) {
                schema(format!(
                    "`/files` does not list the checkpoint file `{path}`"
                ));
            }
        }
    }
    let checkpoint_path =
        |p: &str| m.checkpoint.is_some() && (p == CHECKPOINT_NOTE_PATH || p == PROOFS_PATH);
    if !is_bundle_id(&m.bundle_id) {
        schema(format!(
            "`/bundle_id` `{}` is not 1-128 characters of [A-Za-z0-9._:-]",
            m.bundle_id.escape_debug()
        ));
    }
    if m.merkle.alg != MERKLE_ALG {
        schema(format!(
            "`/merkle/alg` is `{}`, expected `{MERKLE_ALG}`",
            m.merkle.alg
        ));
    }
    if m.journal.path != JOURNAL_PATH {
        schema(format!(
            "`/journal/path` is `{}`, expected `{JOURNAL_PATH}`",
            m.journal.path
        ));
    }
    if m.journal.count == 0 {
        schema("`/journal/count` is 0; a bundle covers at least one entry".to_owned());
    }
    for (name, seq) in [
        ("first_seq", m.journal.first_seq),
        ("last_seq", m.journal.last_seq),
        ("count", m.journal.count),
    ] {
        if seq > MAX_SEQ {
            schema(format!("`/journal/{name}` {seq} is larger than 2^53-1"));
        }
    }
    let mut unsafe_paths = Vec::new();
    for (i, f) in m.files.iter().enumerate() {
        if let Err(e) = zipstore::check_path(&f.path) {
            unsafe_paths.push((Code::UnsafePath, format!("`/files/{i}/path`: {e}")));
            continue;
        }
        if f.path == MANIFEST_PATH || f.path == ATTESTATION_PATH {
            schema(format!(
                "`/files/{i}/path` lists `{}`, which is never a file entry",
                f.path
            ));
        } else if f.path != JOURNAL_PATH
            && !f.path.starts_with(ARTIFACTS_PREFIX)
            && !checkpoint_path(&f.path)
        {
            schema(format!(
                "`/files/{i}/path` `{}` is neither `{JOURNAL_PATH}`, a checkpoint file of `/checkpoint`, nor under `{ARTIFACTS_PREFIX}`",
                f.path
            ));
        }
        if !is_media_type(&f.media_type) {
            schema(format!(
                "`/files/{i}/media_type` `{}` is not a media type",
                f.media_type.escape_debug()
            ));
        }
        if i > 0 && m.files[i - 1].path.as_bytes() >= f.path.as_bytes() {
            schema(format!(
                "`/files/{i}/path` `{}` is not after `{}`: files must be sorted by path, without duplicates",
                f.path,
                m.files[i - 1].path
            ));
        }
    }
    if !m.files.iter().any(|f| f.path == m.journal.path) {
        schema(format!(
            "`/files` does not list the journal `{}`",
            m.journal.path
        ));
    }
    for (i, a) in m.external_artifacts.iter().enumerate() {
        let single_segment = zipstore::check_path(&a.name).is_ok() && !a.name.contains('/');
        if !single_segment {
            unsafe_paths.push((
                Code::UnsafePath,
                format!(
                    "`/external_artifacts/{i}/name` `{}` is not a single safe path segment",
                    a.name.escape_debug()
                ),
            ));
        }
        if a.uri.is_empty() {
            schema(format!("`/external_artifacts/{i}/uri` is empty"));
        }
        if !is_media_type(&a.media_type) {
            schema(format!(
                "`/external_artifacts/{i}/media_type` `{}` is not a media type",
                a.media_type.escape_debug()
            ));
        }
        if i > 0 && m.external_artifacts[i - 1].name.as_bytes() >= a.name.as_bytes() {
            schema(format!(
                "`/external_artifacts/{i}/name` `{}` is not after `{}`: artifacts must be sorted by name, without duplicates",
                a.name,
                m.external_artifacts[i - 1].name
            ));
        }
    }
    out.extend(unsafe_paths);
    out
}

/// The predicate rules beyond its schema (§9, DEF, PEF): SLA flags that do not lie, metrics that
/// match the manifest, and `seq` references inside the journal segment. `manifest` is `None` when
/// the manifest could not be used; the rules that need it are then skipped.
pub(crate) fn predicate_rules(predicate: &Value, manifest: Option<&Manifest>) -> Vec<String> {
    let mut out = Vec::new();
    let metrics = predicate.get("metrics").unwrap_or(&Value::Null);
    if let Some(items) = predicate.get("sla").and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            let Ok(sla) = Sla::deserialize(item) else {
                continue; // the schema check reports it
            };
            let holds = sla.op.holds(sla.value, sla.threshold);
            if holds != sla.met {
                out.push(format!(
                    "`/sla/{i}` says met is {} but {} {} {} is {holds}",
                    sla.met,
                    sla.value,
                    serde_json::to_value(sla.op)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    sla.threshold
                ));
            }
            if let Some(actual) = metric_value(metrics, &sla.metric) {
                if actual != sla.value {
                    out.push(format!(
                        "`/sla/{i}/value` is {} but `metrics.{}` is {actual}",
                        sla.value, sla.metric
                    ));
                }
            }
        }
    }
    let Some(m) = manifest else {
        return out;
    };
    if let Some(entries) = metrics.get("entries").and_then(Value::as_u64) {
        if entries != m.journal.count {
            out.push(format!(
                "`/metrics/entries` is {entries} but the journal has {} entries",
                m.journal.count
            ));
        }
    }
    if let Some(bytes) = metrics.get("payload_bytes").and_then(Value::as_u64) {
        let sum = m
            .files
            .iter()
            .try_fold(0u64, |acc, f| acc.checked_add(f.size));
        if sum != Some(bytes) {
            out.push(format!(
                "`/metrics/payload_bytes` is {bytes} but the files add up to {}",
                sum.map_or_else(|| "more than 2^64".to_owned(), |s| s.to_string())
            ));
        }
    }
    // In a run chain, first_seq/last_seq are run_seqs while the predicate names tenant seqs:
    // there is no range to check them against (§6.1).
    let seq_range = m.journal.chain_mode() == ChainMode::Journal;
    for (pointer, seq) in named_seqs(predicate).into_iter().filter(|_| seq_range) {
        if seq < m.journal.first_seq || seq > m.journal.last_seq {
            out.push(format!(
                "`{pointer}` is {seq}, outside the journal segment {}..={}",
                m.journal.first_seq, m.journal.last_seq
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn journal_entry_members() {
        let zero = Digest::ZERO.to_hex();
        let ok = json!({"seq": 0, "prev": zero, "ts": "2026-01-01T00:00:00Z", "kind": "a.b_c.d1"});
        assert!(schema_issues(SchemaKind::JournalEntry, &ok).is_empty());
        let bad = json!({"seq": -1, "prev": "x", "ts": "yesterday", "kind": "A.b"});
        let pointers: std::collections::BTreeSet<String> =
            schema_issues(SchemaKind::JournalEntry, &bad)
                .into_iter()
                .map(|(p, _)| p)
                .collect();
        assert_eq!(
            pointers.into_iter().collect::<Vec<_>>(),
            ["/kind", "/prev", "/seq", "/ts"]
        );
        assert_eq!(schema_issues(SchemaKind::JournalEntry, &json!([])).len(), 1);
        assert!(!is_event_kind("a..b"));
        assert!(!is_event_kind(""));
    }

    #[test]
    fn statement_shape_is_closed() {
        let ok = json!({"_type": "https://in-toto.io/Statement/v1",
                        "subject": [{"name": "n", "digest": {"sha256": Digest::ZERO.to_hex()}}],
                        "predicateType": "p", "predicate": {}});
        assert!(schema_issues(SchemaKind::Statement, &ok).is_empty());
        let mut extra = ok.clone();
        extra["x"] = json!(1);
        assert_eq!(schema_issues(SchemaKind::Statement, &extra).len(), 1);
        // The structural check on its own (the JSON Schema decides first): the predicate must be
        // an object, whatever it holds.
        let mut nested = ok.clone();
        nested["predicate"] = json!({"run": {"models": [{"a": 1}], "x": null}});
        assert!(structural_issues(SchemaKind::Statement, &nested).is_empty());
        for not_object in [json!([]), json!("p"), json!(null), json!(1)] {
            let mut bad = ok.clone();
            bad["predicate"] = not_object;
            assert_eq!(structural_issues(SchemaKind::Statement, &bad).len(), 1);
        }
    }

    #[test]
    fn ids_and_media_types() {
        assert!(is_bundle_id("run-2026.11.24:a_b"));
        assert!(!is_bundle_id(""));
        assert!(!is_bundle_id("a/b"));
        assert!(!is_bundle_id(&"a".repeat(129)));
        assert!(is_media_type("application/vnd.in-toto+json"));
        assert!(is_media_type("text/plain;charset=utf-8"));
        assert!(!is_media_type("text"));
        assert!(!is_media_type("text/ plain"));
        assert!(!is_media_type("/plain"));
    }

    #[test]
    fn sla_flags_must_not_lie() {
        let p = json!({"metrics": {"entries": 3, "payload_bytes": 10},
                       "sla": [{"metric": "entries", "op": "<=", "threshold": 5, "value": 3, "met": true},
                               {"metric": "entries", "op": ">=", "threshold": 5, "value": 3, "met": true},
                               {"metric": "entries", "op": "<=", "threshold": 5, "value": 4, "met": true}]});
        let issues = predicate_rules(&p, None);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(issues[0].starts_with("`/sla/1`"), "{issues:?}");
        assert!(issues[1].starts_with("`/sla/2/value`"), "{issues:?}");
    }
}
