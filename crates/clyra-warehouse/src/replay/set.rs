//! The replay input format `clyra.replay.set/v1`: which models a run built, from which compiled
//! SQL, into which relations, and the snapshot recorded after the run.
//!
//! It lives in a DEF bundle as artifacts (paths relative to the bundle's `artifacts/`):
//!
//! - `replay/replay.json`: this document ([`ReplaySet`]);
//! - `replay/compiled/<unique_id>.sql`: each model's compiled SQL, one `SELECT` (or `WITH ...
//!   SELECT`) query, as dbt's `compiled_code` is;
//! - `replay/snapshot-after.json`: a `clyra.warehouse.snapshot/v1` snapshot taken after the run.
//!
//! The JSON Schema is `spec/def/replay-set.schema.json`; the format is described in
//! `docs/warehouses/replay.md`. [`ReplaySet::from_json`] reads untrusted bytes: strict JSON, no
//! unknown members, every value checked, errors naming the JSON pointer.

use std::collections::{BTreeMap, BTreeSet};

use clyra_evidence::jcs;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::snapshot::{path_to_pointer, table_key};

/// The format this build reads and writes.
pub const FORMAT: &str = "clyra.replay.set/v1";

/// Where the replay set sits in a bundle, relative to `artifacts/`.
pub const SET_PATH: &str = "replay/replay.json";

/// Most models in one set.
pub const MAX_MODELS: usize = 10_000;

/// Longest `unique_id`, `dbt_invocation_id` or `materialization`, in bytes.
const MAX_ID_BYTES: usize = 512;

/// A replay set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySet {
    /// Always [`FORMAT`].
    pub format: String,
    /// dbt's `invocation_id` of the run, when the producer knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dbt_invocation_id: Option<String>,
    /// The path (relative to `artifacts/`) of the snapshot recorded after the run.
    pub snapshot_after: String,
    /// The models, in the order the run built them (dependencies first is recommended; replay
    /// orders by `depends_on` anyway).
    pub models: Vec<ReplayModel>,
}

/// One model of a replay set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayModel {
    /// dbt's `unique_id` (`model.shop.stg_orders`), unique in the set.
    pub unique_id: String,
    /// The relation the run built, `schema.name` as snapshot keys write it (a part containing
    /// `.` or `"` double-quoted, `"` doubled). Unique in the set.
    pub relation: String,
    /// dbt's materialization. Replay runs `table` and `view`; other values are reported as
    /// skipped, with the reason.
    pub materialization: String,
    /// The path (relative to `artifacts/`) of the compiled SQL: one query.
    pub compiled_sql: String,
    /// SHA-256 (lowercase hex) of the compiled SQL file's bytes.
    pub compiled_sql_sha256: String,
    /// The relations this model reads (`schema.name`): other models of the set, sources.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// Why a replay set was refused. Every variant names where (a JSON pointer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// Not JSON under the kernel's strict profile.
    #[error("not valid JSON: {0}")]
    Json(#[from] jcs::JcsError),
    /// A format this build does not read.
    #[error("unsupported replay set format `{found}` at JSON pointer `/format`; this build reads `{FORMAT}`")]
    Version {
        /// What the document says.
        found: String,
    },
    /// A member is missing, of the wrong type, unknown or inconsistent.
    #[error("invalid replay set at JSON pointer `{pointer}`: {message}")]
    Invalid {
        /// Where.
        pointer: String,
        /// What is wrong.
        message: String,
    },
}

impl SetError {
    /// The JSON pointer of the offending value, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            SetError::Json(e) => e.location().map(|l| l.pointer.as_str()),
            SetError::Version { .. } => Some("/format"),
            SetError::Invalid { pointer, .. } => Some(pointer),
        }
    }
}

fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> SetError {
    SetError::Invalid {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// Splits a relation key (`schema.name`, parts with `.` or `"` double-quoted) into its schema and
/// name. Only the canonical form [`table_key`] writes is accepted.
pub fn parse_relation(key: &str) -> Option<(String, String)> {
    fn part(s: &str) -> Option<(String, &str)> {
        if let Some(rest) = s.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if rest[i + 1..].starts_with('"') {
                        out.push('"');
                        chars.next();
                    } else {
                        return Some((out, &rest[i + 1..]));
                    }
                } else {
                    out.push(c);
                }
            }
            None
        } else {
            let end = s.find('.').unwrap_or(s.len());
            Some((s[..end].to_string(), &s[end..]))
        }
    }
    let (schema, rest) = part(key)?;
    let rest = rest.strip_prefix('.')?;
    let (name, rest) = part(rest)?;
    if !rest.is_empty() || schema.is_empty() || name.is_empty() {
        return None;
    }
    // Canonical only: one spelling per relation.
    (table_key(&schema, &name) == key).then_some((schema, name))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_id(pointer: String, value: &str, what: &str) -> Result<(), SetError> {
    if value.is_empty() {
        return Err(invalid(pointer, format!("{what} is empty")));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(invalid(
            pointer,
            format!("{what} is longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(
            pointer,
            format!("{what} contains a control character"),
        ));
    }
    Ok(())
}

fn check_path(pointer: String, path: &str) -> Result<(), SetError> {
    clyra_evidence::zipstore::check_path(path).map_err(|e| {
        invalid(
            pointer,
            format!("`{}` is not a safe artifact path: {e}", path.escape_debug()),
        )
    })
}

impl ReplaySet {
    /// Reads a replay set: strict JSON, the right format, no unknown members, every value
    /// checked (safe paths, SHA-256 digests, canonical relation keys, unique ids and relations,
    /// no dependency cycle among the set's models). The input is untrusted: nothing in it can
    /// make this panic.
    pub fn from_json(bytes: &[u8]) -> Result<ReplaySet, SetError> {
        let value = jcs::parse_strict(bytes)?;
        let Value::Object(top) = &value else {
            return Err(invalid("", "the document is not a JSON object"));
        };
        match top.get("format") {
            None => return Err(invalid("", "no `format` member; not a replay set")),
            Some(Value::String(f)) if f == FORMAT => {}
            Some(Value::String(f)) => return Err(SetError::Version { found: f.clone() }),
            Some(_) => return Err(invalid("/format", "`format` is not a string")),
        }
        let set: ReplaySet = serde_path_to_error::deserialize(value).map_err(|e| {
            let pointer = path_to_pointer(e.path());
            invalid(pointer, e.into_inner().to_string())
        })?;
        set.validate()?;
        Ok(set)
    }

    /// The set as canonical JSON (RFC 8785).
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, jcs::JcsError> {
        jcs::to_canonical_vec(self)
    }

    fn validate(&self) -> Result<(), SetError> {
        if let Some(id) = &self.dbt_invocation_id {
            check_id("/dbt_invocation_id".into(), id, "the invocation id")?;
        }
        check_path("/snapshot_after".into(), &self.snapshot_after)?;
        if self.models.is_empty() {
            return Err(invalid(
                "/models",
                "no models; a replay set needs at least one",
            ));
        }
        if self.models.len() > MAX_MODELS {
            return Err(invalid(
                "/models",
                format!("{} models, more than {MAX_MODELS}", self.models.len()),
            ));
        }
        let mut ids = BTreeMap::new();
        let mut relations = BTreeMap::new();
        for (i, m) in self.models.iter().enumerate() {
            let at = format!("/models/{i}");
            check_id(format!("{at}/unique_id"), &m.unique_id, "unique_id")?;
            if let Some(j) = ids.insert(m.unique_id.as_str(), i) {
                return Err(invalid(
                    format!("{at}/unique_id"),
                    format!("`{}` is also model {j}", m.unique_id),
                ));
            }
            if parse_relation(&m.relation).is_none() {
                return Err(invalid(
                    format!("{at}/relation"),
                    format!(
                        "`{}` is not a relation key `schema.name` (a part containing `.` or `\"` is double-quoted, `\"` doubled)",
                        m.relation.escape_debug()
                    ),
                ));
            }
            if let Some(j) = relations.insert(m.relation.as_str(), i) {
                return Err(invalid(
                    format!("{at}/relation"),
                    format!("`{}` is also the relation of model {j}", m.relation),
                ));
            }
            check_id(
                format!("{at}/materialization"),
                &m.materialization,
                "materialization",
            )?;
            check_path(format!("{at}/compiled_sql"), &m.compiled_sql)?;
            if !is_sha256_hex(&m.compiled_sql_sha256) {
                return Err(invalid(
                    format!("{at}/compiled_sql_sha256"),
                    "not a SHA-256 digest (64 lowercase hex digits)",
                ));
            }
            if m.depends_on.len() > MAX_MODELS {
                return Err(invalid(
                    format!("{at}/depends_on"),
                    format!("more than {MAX_MODELS} entries"),
                ));
            }
            let mut seen = BTreeSet::new();
            for (j, d) in m.depends_on.iter().enumerate() {
                if parse_relation(d).is_none() {
                    return Err(invalid(
                        format!("{at}/depends_on/{j}"),
                        format!("`{}` is not a relation key `schema.name`", d.escape_debug()),
                    ));
                }
                if !seen.insert(d.as_str()) {
                    return Err(invalid(
                        format!("{at}/depends_on/{j}"),
                        format!("`{d}` is listed twice"),
                    ));
                }
                if *d == m.relation {
                    return Err(invalid(
                        format!("{at}/depends_on/{j}"),
                        "a model cannot depend on its own relation",
                    ));
                }
            }
        }
        if let Err(cycle) = self.try_order() {
            let first = cycle.first().copied().unwrap_or(0);
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| self.models.get(i).map_or("?", |m| m.unique_id.as_str()))
                .collect();
            return Err(invalid(
                format!("/models/{first}/depends_on"),
                format!("dependency cycle: {}", names.join(" -> ")),
            ));
        }
        Ok(())
    }

    /// The index of the model that builds `relation`, if one does.
    pub fn model_of(&self, relation: &str) -> Option<usize> {
        self.models.iter().position(|m| m.relation == relation)
    }

    /// The models' indices in dependency order (a model after every model of the set it depends
    /// on; otherwise in list order). A validated set has no cycle.
    pub fn order(&self) -> Vec<usize> {
        self.try_order()
            .unwrap_or_else(|_| (0..self.models.len()).collect())
    }

    /// Kahn's algorithm, always taking the first ready model in list order; on a cycle, the
    /// models of one cycle.
    fn try_order(&self) -> Result<Vec<usize>, Vec<usize>> {
        let by_relation: BTreeMap<&str, usize> = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.relation.as_str(), i))
            .collect();
        let upstream: Vec<Vec<usize>> = self
            .models
            .iter()
            .map(|m| {
                m.depends_on
                    .iter()
                    .filter_map(|d| by_relation.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
        let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); self.models.len()];
        for (i, ups) in upstream.iter().enumerate() {
            for &u in ups {
                if let Some(d) = downstream.get_mut(u) {
                    d.push(i);
                }
            }
        }
        let mut ready: BTreeSet<usize> = (0..self.models.len())
            .filter(|&i| waiting.get(i) == Some(&0))
            .collect();
        let mut order = Vec::with_capacity(self.models.len());
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &d in downstream.get(i).map(Vec::as_slice).unwrap_or_default() {
                if let Some(w) = waiting.get_mut(d) {
                    *w -= 1;
                    if *w == 0 {
                        ready.insert(d);
                    }
                }
            }
        }
        if order.len() == self.models.len() {
            return Ok(order);
        }
        // Walk upstream from a blocked model until a model repeats: that is a cycle.
        let mut at = (0..self.models.len())
            .find(|&i| waiting.get(i).is_some_and(|&w| w > 0))
            .unwrap_or(0);
        let mut path: Vec<usize> = Vec::new();
        loop {
            if let Some(pos) = path.iter().position(|&p| p == at) {
                let mut cycle: Vec<usize> = path.split_off(pos);
                cycle.reverse();
                if let Some(&f) = cycle.first() {
                    cycle.push(f);
                }
                return Err(cycle);
            }
            path.push(at);
            let next = upstream.get(at).and_then(|ups| {
                ups.iter()
                    .find(|&&u| waiting.get(u).is_some_and(|&w| w > 0))
            });
            match next {
                Some(&n) => at = n,
                None => return Err(path),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn model(id: &str, rel: &str, deps: &[&str]) -> Value {
        serde_json::json!({
            "unique_id": id, "relation": rel, "materialization": "table",
            "compiled_sql": format!("replay/compiled/{id}.sql"),
            "compiled_sql_sha256": "0".repeat(64),
            "depends_on": deps,
        })
    }

    fn doc(models: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "format": FORMAT, "snapshot_after": "replay/snapshot-after.json", "models": models,
        }))
        .unwrap()
    }

    #[test]
    fn relations_parse_in_canonical_form_only() {
        assert_eq!(
            parse_relation("a.b"),
            Some(("a".to_string(), "b".to_string()))
        );
        assert_eq!(
            parse_relation("\"a.b\".\"c\"\"d\""),
            Some(("a.b".to_string(), "c\"d".to_string()))
        );
        for bad in ["a", "a.b.c", "\"a\".b", ".b", "a.", "\"a.b", "a.\"b\"x"] {
            assert_eq!(parse_relation(bad), None, "{bad}");
        }
    }

    #[test]
    fn orders_by_dependencies_and_finds_cycles() {
        let set = ReplaySet::from_json(&doc(vec![
            model("m.mart", "s.mart", &["s.int"]),
            model("m.int", "s.int", &["s.stg"]),
            model("m.stg", "s.stg", &["src.orders"]),
        ]))
        .unwrap();
        assert_eq!(set.order(), vec![2, 1, 0]);
        let e = ReplaySet::from_json(&doc(vec![
            model("m.a", "s.a", &["s.b"]),
            model("m.b", "s.b", &["s.a"]),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("dependency cycle"), "{e}");
        assert!(e.pointer().unwrap().starts_with("/models/"), "{e}");
    }

    #[test]
    fn errors_name_the_pointer() {
        let mut m = model("m.a", "s.a", &[]);
        m["compiled_sql_sha256"] = "XYZ".into();
        let e = ReplaySet::from_json(&doc(vec![m])).unwrap_err();
        assert_eq!(e.pointer(), Some("/models/0/compiled_sql_sha256"));
        let mut m = model("m.a", "s.a", &[]);
        m["compiled_sql"] = "../etc/passwd".into();
        let e = ReplaySet::from_json(&doc(vec![m])).unwrap_err();
        assert_eq!(e.pointer(), Some("/models/0/compiled_sql"));
        let mut m = model("m.a", "s.a", &[]);
        m["extra"] = 1.into();
        let e = ReplaySet::from_json(&doc(vec![m])).unwrap_err();
        assert_eq!(e.pointer(), Some("/models/0/extra"), "{e}");
        let e = ReplaySet::from_json(&doc(vec![
            model("m.a", "s.a", &[]),
            model("m.a", "s.b", &[]),
        ]))
        .unwrap_err();
        assert_eq!(e.pointer(), Some("/models/1/unique_id"));
        let e = ReplaySet::from_json(br#"{"format":"clyra.replay.set/v9"}"#).unwrap_err();
        assert!(matches!(e, SetError::Version { .. }));
        let e =
            ReplaySet::from_json(br#"{"format":"clyra.replay.set/v1","format":1}"#).unwrap_err();
        assert!(matches!(e, SetError::Json(_)));
    }
}
