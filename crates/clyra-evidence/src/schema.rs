//! The JSON Schemas (Draft 2020-12) of Clyra's formats, embedded from `spec/` and compiled once.
//!
//! | [`SchemaId`] | file | what it describes |
//! |---|---|---|
//! | `Manifest` | `spec/common/manifest.schema.json` | a bundle's `manifest.json` (bundle.md §4) |
//! | `Statement` | `spec/common/statement.schema.json` | the in-toto Statement in the attestation (§5) |
//! | `JournalEntry` | `spec/common/journal-entry.schema.json` | one line of `journal.ndjson` (§6) |
//! | `DefPredicate` | `spec/def/predicate.schema.json` | the DEF predicate |
//! | `PefPredicate` | `spec/pef/predicate.schema.json` | the PEF predicate |
//! | `Trust` | `spec/common/trust.schema.json` | the trust file |
//!
//! Definitions shared between schemas (digest, timestamp, safe integer, file entry, ...) live in
//! `spec/common/defs.schema.json` and are referenced by its `$id`
//! ([`DEFS_SCHEMA_ID`]`#/$defs/...`). Each validator is built against a registry holding that
//! document, offline: nothing is ever fetched.
//!
//! Options that both verifiers must share, because they change verdicts: `format` is an assertion
//! (`date-time` is checked, not just annotated), and patterns are matched with a linear-time
//! engine (none of Clyra's patterns need backtracking).
//!
//! [`validate`] reports every problem at once, each at a JSON pointer into the instance. For a
//! missing required member or a member the schema does not allow, the pointer names that member
//! (`/governance/tenant`), not the object holding it, so every issue points at one place.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{PatternOptions, Registry, ValidationError, Validator};
use serde_json::Value;

/// The `$id` of `spec/common/defs.schema.json`, the shared definitions every other schema but the
/// trust file's references.
pub const DEFS_SCHEMA_ID: &str = "https://clyra.dev/spec/common/defs.schema.json";

const DEFS_TEXT: &str = include_str!("../../../spec/common/defs.schema.json");

/// Longest message an issue carries; the rest is cut (messages may quote untrusted values).
const MAX_MESSAGE_BYTES: usize = 512;

/// One of Clyra's schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SchemaId {
    /// `manifest.json` of a bundle.
    Manifest,
    /// The in-toto Statement signed in `attestation.dsse.json`.
    Statement,
    /// One entry (line) of `journal.ndjson`.
    JournalEntry,
    /// The DEF predicate (`https://clyra.dev/def/v0`).
    DefPredicate,
    /// The PEF predicate (`https://clyra.dev/pef/v0`).
    PefPredicate,
    /// The trust file (`trust.json`).
    Trust,
}

impl SchemaId {
    /// Every schema.
    pub const ALL: [SchemaId; 6] = [
        SchemaId::Manifest,
        SchemaId::Statement,
        SchemaId::JournalEntry,
        SchemaId::DefPredicate,
        SchemaId::PefPredicate,
        SchemaId::Trust,
    ];

    /// The schema's `$id`.
    pub const fn uri(self) -> &'static str {
        match self {
            SchemaId::Manifest => "https://clyra.dev/spec/common/manifest.schema.json",
            SchemaId::Statement => "https://clyra.dev/spec/common/statement.schema.json",
            SchemaId::JournalEntry => "https://clyra.dev/spec/common/journal-entry.schema.json",
            SchemaId::DefPredicate => "https://clyra.dev/spec/def/predicate.schema.json",
            SchemaId::PefPredicate => "https://clyra.dev/spec/pef/predicate.schema.json",
            SchemaId::Trust => "https://clyra.dev/spec/common/trust.schema.json",
        }
    }

    /// Position in [`SchemaId::ALL`].
    const fn index(self) -> usize {
        match self {
            SchemaId::Manifest => 0,
            SchemaId::Statement => 1,
            SchemaId::JournalEntry => 2,
            SchemaId::DefPredicate => 3,
            SchemaId::PefPredicate => 4,
            SchemaId::Trust => 5,
        }
    }
}

impl std::fmt::Display for SchemaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.uri())
    }
}

/// One way an instance fails its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaIssue {
    /// RFC 6901 JSON pointer into the instance (`""` is the whole document). For a missing or
    /// disallowed member, the pointer of that member.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SchemaIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.pointer, self.message)
    }
}

/// The schema's text, as in `spec/`.
pub fn schema_text(id: SchemaId) -> &'static str {
    match id {
        SchemaId::Manifest => include_str!("../../../spec/common/manifest.schema.json"),
        SchemaId::Statement => include_str!("../../../spec/common/statement.schema.json"),
        SchemaId::JournalEntry => include_str!("../../../spec/common/journal-entry.schema.json"),
        SchemaId::DefPredicate => include_str!("../../../spec/def/predicate.schema.json"),
        SchemaId::PefPredicate => include_str!("../../../spec/pef/predicate.schema.json"),
        SchemaId::Trust => include_str!("../../../spec/common/trust.schema.json"),
    }
}

/// The text of `spec/common/defs.schema.json` ([`DEFS_SCHEMA_ID`]), which a validator of any
/// other schema must have registered.
pub fn defs_text() -> &'static str {
    DEFS_TEXT
}

/// Validates `instance` against a schema and returns every issue, in the validator's order;
/// empty means valid. Never panics: should a schema fail to compile (a build defect, caught by
/// this crate's tests), the result is a single issue at `""` saying so.
pub fn validate(id: SchemaId, instance: &Value) -> Vec<SchemaIssue> {
    match compiled(id) {
        // `is_valid` stops at the first failure and builds no errors: on a valid instance (every
        // journal line of a good bundle) it is several times cheaper than `iter_errors`, which is
        // then only run to describe what is wrong.
        Ok(validator) if validator.is_valid(instance) => Vec::new(),
        Ok(validator) => {
            let mut issues = Vec::new();
            for error in validator.iter_errors(instance) {
                push_issues(&error, &mut issues);
            }
            issues
        }
        Err(detail) => vec![SchemaIssue {
            pointer: String::new(),
            message: format!("schema `{id}` failed to compile: {detail}"),
        }],
    }
}

fn compiled(id: SchemaId) -> &'static Result<Validator, String> {
    static VALIDATORS: [OnceLock<Result<Validator, String>>; SchemaId::ALL.len()] =
        [const { OnceLock::new() }; SchemaId::ALL.len()];
    // `index` is below `ALL.len()` by construction (an exhaustive match), so this cannot panic.
    VALIDATORS[id.index()].get_or_init(|| compile(id))
}

fn compile(id: SchemaId) -> Result<Validator, String> {
    let schema: Value = serde_json::from_str(schema_text(id)).map_err(|e| e.to_string())?;
    let defs: Value = serde_json::from_str(DEFS_TEXT).map_err(|e| e.to_string())?;
    let registry = Registry::new()
        .add(DEFS_SCHEMA_ID, defs)
        .and_then(|builder| builder.prepare())
        .map_err(|e| e.to_string())?;
    jsonschema::draft202012::options()
        .offline()
        .with_registry(&registry)
        .should_validate_formats(true)
        .with_pattern_options(PatternOptions::regex())
        .build(&schema)
        .map_err(|e| e.to_string())
}

fn push_issues(error: &ValidationError<'_>, out: &mut Vec<SchemaIssue>) {
    let at = error.instance_path().as_str();
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(SchemaIssue {
                pointer: child_pointer(at, name),
                message: bounded(format!("required member `{name}` is missing")),
            });
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for name in unexpected {
                out.push(SchemaIssue {
                    pointer: child_pointer(at, name),
                    message: bounded(format!("member `{name}` is not allowed here")),
                });
            }
        }
        _ => out.push(SchemaIssue {
            pointer: at.to_owned(),
            message: bounded(error.to_string()),
        }),
    }
}

/// `parent` + `/` + `name` escaped per RFC 6901.
fn child_pointer(parent: &str, name: &str) -> String {
    let mut p = String::with_capacity(parent.len() + name.len() + 1);
    p.push_str(parent);
    p.push('/');
    crate::jcs::push_pointer_token(&mut p, name);
    p
}

fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_compiles_and_declares_its_id() {
        for id in SchemaId::ALL {
            assert!(
                compiled(id).is_ok(),
                "{id}: {:?}",
                compiled(id).as_ref().err()
            );
            let doc: Value = serde_json::from_str(schema_text(id)).unwrap();
            assert_eq!(doc["$id"], id.uri());
            assert_eq!(
                doc["$schema"],
                "https://json-schema.org/draft/2020-12/schema"
            );
        }
        let defs: Value = serde_json::from_str(defs_text()).unwrap();
        assert_eq!(defs["$id"], DEFS_SCHEMA_ID);
    }

    #[test]
    fn every_schema_is_valid_under_the_2020_12_meta_schema() {
        for id in SchemaId::ALL {
            let doc: Value = serde_json::from_str(schema_text(id)).unwrap();
            assert!(jsonschema::meta::is_valid(&doc), "{id}");
        }
        assert!(jsonschema::meta::is_valid(
            &serde_json::from_str(defs_text()).unwrap()
        ));
    }

    #[test]
    fn missing_and_extra_members_point_at_the_member() {
        let issues = validate(
            SchemaId::JournalEntry,
            &json!({"seq": 0, "ts": "2026-11-24T09:00:00Z", "kind": "a.b"}),
        );
        assert_eq!(
            issues,
            [SchemaIssue {
                pointer: "/prev".into(),
                message: "required member `prev` is missing".into()
            }]
        );
        let issues = validate(
            SchemaId::Statement,
            &json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "m", "digest": {"sha256": "0".repeat(64), "a/b~c": "x"}}],
                "predicateType": "https://clyra.dev/def/v0",
                "predicate": {},
            }),
        );
        let pointers: Vec<&str> = issues.iter().map(|i| i.pointer.as_str()).collect();
        assert_eq!(pointers, ["/subject/0/digest/a~1b~0c"], "{issues:?}");
    }

    #[test]
    fn formats_are_asserted() {
        let entry = |ts: &str| json!({"seq": 1, "prev": "0".repeat(64), "ts": ts, "kind": "x"});
        assert!(validate(SchemaId::JournalEntry, &entry("2028-02-29T00:00:00Z")).is_empty());
        let issues = validate(SchemaId::JournalEntry, &entry("2026-02-30T00:00:00Z"));
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].pointer, "/ts");
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let m = bounded("é".repeat(MAX_MESSAGE_BYTES));
        assert!(m.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
        assert!(m.ends_with('…'));
        assert_eq!(bounded("short".into()), "short");
    }
}
