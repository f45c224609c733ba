//! Validation against the embedded `spec/policy/schemas/policy_v4.schema.json`, every error at
//! once, each located and, where obvious, with a suggestion.
//!
//! The validator is compiled once, offline (the schema has no remote references), with `format`
//! as an assertion and a linear-time regex engine, as the kernel does for its own schemas
//! (`clyra_evidence::schema`).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{PatternOptions, ValidationError, Validator};
use serde_json::Value;

use super::{push_token, SourceMap};
use crate::diagnostic::{closest, quote, Code, Diagnostic};

/// The policy v4 schema, as in `spec/`.
pub const POLICY_SCHEMA_TEXT: &str =
    include_str!("../../../../spec/policy/schemas/policy_v4.schema.json");

/// The pattern of `#/$defs/duration`.
const DURATION_PATTERN: &str = "^[1-9][0-9]{0,8}(ms|s|m|h|d)$";
const IDENTIFIER_PATTERN: &str = "^[a-z0-9][a-z0-9_.-]{0,63}$";
const HHMM_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
const POINTER_PATTERN: &str = "^(/([^~/]|~[01])*)*$";
const ENV_PATTERN: &str = "^[A-Z_][A-Z0-9_]*$";

/// The schema as a JSON value (parsed once).
pub(crate) fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(POLICY_SCHEMA_TEXT).unwrap_or(Value::Null))
}

fn validator() -> &'static Result<Validator, String> {
    static VALIDATOR: OnceLock<Result<Validator, String>> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft202012::options()
            .offline()
            .should_validate_formats(true)
            .with_pattern_options(PatternOptions::regex())
            .build(schema_value())
            .map_err(|e| e.to_string())
    })
}

/// Every way `value` fails the schema, located through `map`.
pub(crate) fn validate(value: &Value, map: &SourceMap) -> Vec<Diagnostic> {
    let validator = match validator() {
        Ok(v) => v,
        Err(e) => {
            return vec![Diagnostic::error(
                Code::Schema,
                map.name(),
                crate::diagnostic::Location::START,
                "",
                format!("the policy schema failed to compile (a build defect): {e}"),
            )]
        }
    };
    if validator.is_valid(value) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for error in validator.iter_errors(value) {
        describe(&error, map, &mut out);
    }
    out
}

fn describe(error: &ValidationError<'_>, map: &SourceMap, out: &mut Vec<Diagnostic>) {
    let at = error.instance_path().as_str();
    let instance = error.instance();
    let file = map.name();
    let here = |message: String| Diagnostic::error(Code::Schema, file, map.locate(at), at, message);
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let mut pointer = at.to_owned();
            push_token(&mut pointer, name);
            out.push(Diagnostic::error(
                Code::Schema,
                file,
                map.locate(at),
                &pointer,
                format!("required member `{name}` is missing"),
            ));
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = known_properties(at);
            for name in unexpected {
                let mut pointer = at.to_owned();
                push_token(&mut pointer, name);
                let suggestion = closest(name, known.iter().map(String::as_str))
                    .map(|k| format!("did you mean `{k}`?"))
                    .or_else(|| {
                        (!known.is_empty() && known.len() <= 12)
                            .then(|| format!("known members here: {}", backticked(known.iter())))
                    });
                out.push(
                    Diagnostic::error(
                        Code::Schema,
                        file,
                        map.locate_key(&pointer),
                        &pointer,
                        format!("unknown member {}", quote(name)),
                    )
                    .with_optional_suggestion(suggestion),
                );
            }
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<&str> = options
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let suggestion = instance
                .as_str()
                .and_then(|s| closest(s, allowed.iter().copied()))
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| format!("allowed values: {}", backticked(allowed.iter())));
            out.push(
                here(format!("{} is not an allowed value", show(instance)))
                    .with_suggestion(suggestion),
            );
        }
        ValidationErrorKind::Constant { expected_value } => {
            out.push(here(format!("{} must be {expected_value}", show(instance))));
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => article(t.as_str()).to_owned(),
                TypeKind::Multiple(set) => {
                    let names: Vec<&str> = set.iter().map(|t| article(t.as_str())).collect();
                    names.join(" or ")
                }
            };
            out.push(here(format!(
                "expected {expected}, found {}",
                describe_value(instance)
            )));
        }
        ValidationErrorKind::Pattern { pattern } => {
            let text = instance.as_str().unwrap_or_default();
            let (code, message, help) = pattern_message(pattern, text);
            out.push(
                Diagnostic::error(code, file, map.locate(at), at, message)
                    .with_optional_suggestion(help),
            );
        }
        ValidationErrorKind::PropertyNames { error } => {
            // The inner error's instance is the offending name.
            let name = error.instance().as_str().unwrap_or_default().to_owned();
            let mut pointer = at.to_owned();
            push_token(&mut pointer, &name);
            let (_, message, help) = match error.kind() {
                ValidationErrorKind::Pattern { pattern } => pattern_message(pattern, &name),
                _ => (Code::Schema, bounded(error.to_string()), None),
            };
            out.push(
                Diagnostic::error(
                    Code::Schema,
                    file,
                    map.locate_key(&pointer),
                    &pointer,
                    message,
                )
                .with_optional_suggestion(help),
            );
        }
        ValidationErrorKind::MinLength { limit } if *limit == 1 => {
            out.push(here("must not be empty".into()));
        }
        ValidationErrorKind::MinLength { limit } => {
            out.push(here(format!("must be at least {limit} characters long")));
        }
        ValidationErrorKind::MaxLength { limit } => {
            out.push(here(format!("must be at most {limit} characters long")));
        }
        ValidationErrorKind::MinItems { limit } if *limit == 1 => {
            out.push(here("must not be an empty list".into()));
        }
        ValidationErrorKind::MinItems { limit } => {
            out.push(here(format!("must have at least {limit} items")));
        }
        ValidationErrorKind::MinProperties { .. } if at.ends_with("/match") => {
            out.push(
                here("an empty `match` is not allowed".into()).with_suggestion(
                    "name at least one of `kind`, `tenant`, `actor`, `route`, `tool` \
(use `kind: \"**\"` to match every action)",
                ),
            );
        }
        ValidationErrorKind::MinProperties { limit } => {
            out.push(here(format!("must have at least {limit} members")));
        }
        ValidationErrorKind::UniqueItems => {
            out.push(here("list items must be unique".into()));
        }
        ValidationErrorKind::Minimum { limit } => {
            out.push(here(format!(
                "{} is below the minimum {limit}",
                show(instance)
            )));
        }
        ValidationErrorKind::Maximum { limit } => {
            out.push(here(format!(
                "{} is above the maximum {limit}",
                show(instance)
            )));
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            out.push(here(format!(
                "{} must be greater than {limit}",
                show(instance)
            )));
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            out.push(here(format!(
                "{} must be less than {limit}",
                show(instance)
            )));
        }
        ValidationErrorKind::OneOfNotValid { context } => {
            // A branch that failed only because the value has another type is not what the
            // author meant; if exactly one branch remains, its errors are the useful ones.
            let fitting: Vec<&Vec<ValidationError<'static>>> = context
                .iter()
                .filter(|branch| {
                    !branch.iter().all(|e| {
                        matches!(e.kind(), ValidationErrorKind::Type { .. })
                            && e.instance_path().as_str() == at
                    })
                })
                .collect();
            if let [branch] = fitting.as_slice() {
                for e in branch.iter() {
                    describe(e, map, out);
                }
            } else if at.contains("/match/") || at.ends_with("/destination") {
                out.push(here(format!(
                    "expected a glob or a list of globs, found {}",
                    describe_value(instance)
                )));
            } else {
                out.push(here(format!(
                    "{} matches none of the allowed forms",
                    describe_value(instance)
                )));
            }
        }
        _ => out.push(here(bounded(error.to_string()))),
    }
}

fn pattern_message(pattern: &str, text: &str) -> (Code, String, Option<String>) {
    let q = quote(text);
    match pattern {
        DURATION_PATTERN => (
            Code::BadDuration,
            format!("{q} is not a duration"),
            Some(
                "write an integer from 1 followed by ms, s, m, h or d, e.g. `90s`, `15m`, `7d`"
                    .into(),
            ),
        ),
        IDENTIFIER_PATTERN => (
            Code::Schema,
            format!("{q} is not an identifier"),
            Some(
                "use 1 to 64 lowercase letters, digits, `_`, `.` or `-`, starting with a letter \
or digit"
                    .into(),
            ),
        ),
        HHMM_PATTERN => (
            Code::Schema,
            format!("{q} is not a time of day"),
            Some("write HH:MM on a 24-hour clock, e.g. `08:00`, `21:00`".into()),
        ),
        POINTER_PATTERN => (
            Code::Schema,
            format!("{q} is not a JSON pointer"),
            Some("write an RFC 6901 pointer such as `/customer/tenant_id`".into()),
        ),
        ENV_PATTERN => (
            Code::Schema,
            format!("{q} is not an environment variable name"),
            Some("use uppercase letters, digits and `_`, e.g. `CLYRA_WEBHOOK_SECRET`".into()),
        ),
        "^https?://" => (
            Code::Schema,
            format!("{q} is not an http:// or https:// URL"),
            None,
        ),
        other => (
            Code::Schema,
            format!("{q} does not match the pattern `{other}`"),
            None,
        ),
    }
}

fn article(t: &str) -> &'static str {
    match t {
        "array" => "a list",
        "boolean" => "a boolean",
        "integer" => "an integer",
        "null" => "null",
        "number" => "a number",
        "object" => "a mapping",
        "string" => "a string",
        _ => "another type",
    }
}

/// What a value is, for "found ..." messages.
pub(crate) fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the string {}", quote(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// A value quoted for a message (scalars as written, collections by kind).
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Array(_) | Value::Object(_) => describe_value(v),
        other => format!("`{other}`"),
    }
}

fn backticked<'a>(items: impl Iterator<Item = impl AsRef<str> + 'a>) -> String {
    items
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bounded(mut message: String) -> String {
    const MAX: usize = 300;
    if message.len() > MAX {
        let mut end = MAX;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// The member names the schema allows in the object at `pointer` (empty when it allows any or
/// the place is unknown).
pub(crate) fn known_properties(pointer: &str) -> Vec<String> {
    let mut names = BTreeSet::new();
    for (node, _) in nodes_at(pointer) {
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            names.extend(props.keys().cloned());
        }
    }
    names.into_iter().collect()
}

/// The schema nodes that describe the instance at `pointer`, each with the `$defs` names its
/// resolution went through (`duration`, `glob`, ...).
pub(crate) fn nodes_at(pointer: &str) -> Vec<(&'static Value, Vec<&'static str>)> {
    let root = schema_value();
    let mut current = Vec::new();
    expand(root, root, Vec::new(), &mut current, 0);
    let segments = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"));
    for segment in segments {
        let mut next = Vec::new();
        for (node, _) in &current {
            for child in children(node, &segment) {
                expand(root, child, Vec::new(), &mut next, 0);
            }
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current
}

/// The schema nodes for one member or item of a node.
pub(crate) fn children<'a>(node: &'a Value, segment: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    match node.get("properties").and_then(|p| p.get(segment)) {
        Some(child) => out.push(child),
        None => {
            if let Some(extra) = node.get("additionalProperties").filter(|v| v.is_object()) {
                out.push(extra);
            }
        }
    }
    if segment.parse::<usize>().is_ok() {
        if let Some(items) = node.get("items").filter(|v| v.is_object()) {
            out.push(items);
        }
    }
    out
}

/// Follows `$ref`s and `oneOf`/`anyOf` branches down to concrete nodes.
pub(crate) fn expand<'a>(
    root: &'a Value,
    node: &'a Value,
    mut names: Vec<&'a str>,
    out: &mut Vec<(&'a Value, Vec<&'a str>)>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    if let Some(name) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        if let Some(target) = root.get("$defs").and_then(|d| d.get(name)) {
            names.push(name);
            expand(root, target, names.clone(), out, depth + 1);
        }
        // Sibling keywords of `$ref` (descriptions) add no structure in this schema.
        return;
    }
    let branches = node
        .get("oneOf")
        .or_else(|| node.get("anyOf"))
        .and_then(Value::as_array);
    match branches {
        Some(list) => {
            for b in list {
                expand(root, b, names.clone(), out, depth + 1);
            }
        }
        None => out.push((node, names)),
    }
}

/// Visits every value the schema describes, with the `$defs` names of its schema nodes.
pub(crate) fn walk(value: &Value, visit: &mut dyn FnMut(&str, &Value, &[&'static str])) {
    let root = schema_value();
    let mut nodes = Vec::new();
    expand(root, root, Vec::new(), &mut nodes, 0);
    let mut pointer = String::new();
    walk_at(value, &nodes, &mut pointer, visit, 0);
}

fn walk_at(
    value: &Value,
    nodes: &[(&'static Value, Vec<&'static str>)],
    pointer: &mut String,
    visit: &mut dyn FnMut(&str, &Value, &[&'static str]),
    depth: usize,
) {
    if nodes.is_empty() || depth > super::MAX_DEPTH {
        return;
    }
    let mut names: Vec<&'static str> = nodes.iter().flat_map(|(_, n)| n.iter().copied()).collect();
    names.sort_unstable();
    names.dedup();
    visit(pointer, value, &names);
    let len = pointer.len();
    let mut descend = |segment: &str, child: &Value, pointer: &mut String| {
        let mut next = Vec::new();
        for (node, _) in nodes {
            for c in children(node, segment) {
                expand(schema_value(), c, Vec::new(), &mut next, 0);
            }
        }
        walk_at(child, &next, pointer, visit, depth + 1);
    };
    match value {
        Value::Object(members) => {
            for (k, v) in members {
                push_token(pointer, k);
                descend(k, v, pointer);
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&i.to_string());
                descend(&i.to_string(), v, pointer);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schema_compiles() {
        assert!(validator().is_ok(), "{:?}", validator().as_ref().err());
        assert_eq!(
            schema_value()["$defs"]["duration"]["pattern"],
            DURATION_PATTERN
        );
        assert_eq!(
            schema_value()["$defs"]["identifier"]["pattern"],
            IDENTIFIER_PATTERN
        );
        assert_eq!(schema_value()["$defs"]["hhmm"]["pattern"], HHMM_PATTERN);
    }

    #[test]
    fn walker_knows_members_and_defs() {
        let props = known_properties("/genai_security/detectors/pii");
        assert!(props.contains(&"threshold".to_owned()));
        let props = known_properties("/rules/0/match");
        assert_eq!(props, ["actor", "kind", "route", "tenant", "tool"]);
        let nodes = nodes_at("/approvals/token_ttl");
        assert!(nodes.iter().any(|(_, n)| n.contains(&"duration")));
        let nodes = nodes_at("/rules/3/match/kind/1");
        assert!(nodes.iter().any(|(_, n)| n.contains(&"glob")));
        let nodes = nodes_at("/rules/3/match/kind");
        assert!(nodes.iter().any(|(_, n)| n.contains(&"glob")));
        assert!(known_properties("/nope/x").is_empty());
    }
}
