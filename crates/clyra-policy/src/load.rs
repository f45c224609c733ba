//! Loading a policy file: YAML or JSON to a checked [`Policy`], or every problem at once.
//!
//! The stages, each reporting located [`Diagnostic`]s:
//!
//! 1. **Read**: at most [`MAX_POLICY_BYTES`], UTF-8 (a leading byte-order mark is skipped).
//! 2. **Parse** (YAML 1.2 core schema; JSON for `*.json` files and text that parses as JSON, so
//!    that JSON's surrogate-pair escapes work) into a JSON value and a [`SourceMap`] from JSON
//!    pointer to line and column, refusing what spec/policy/README.md §1 refuses.
//! 3. **Version**: `4` as is, `3` mapped to version 4 with a warning per renamed field (§6), any
//!    other an error listing [`SUPPORTED_VERSIONS`].
//! 4. **Schema**: `spec/policy/schemas/policy_v4.schema.json`, every error.
//! 5. **Lint**: the semantic checks of [`crate::lint`] (unknown detectors and checkpoints,
//!    duplicate or conflicting rules, CEL that does not compile, ...).
//!
//! [`load_file`] and [`load_str`] succeed only when no stage found an error; the warnings come
//! back in [`LoadedPolicy::warnings`]. [`crate::lint::lint_file`] runs the same stages and returns
//! everything instead.

mod json;
mod schema;
mod v3;
mod yaml;

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, Diagnostics, Location};
use crate::hash::PolicyHash;
use crate::model::Policy;

pub use schema::POLICY_SCHEMA_TEXT;

/// The largest policy file accepted: 4 MiB.
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;

/// The deepest nesting accepted; the top-level mapping is at depth 1.
pub const MAX_DEPTH: usize = 64;

/// The `version`s a policy file may declare; earlier ones are mapped to the current one.
pub const SUPPORTED_VERSIONS: &[u64] = &[3, 4];

/// The version policies are mapped to.
pub const CURRENT_VERSION: u64 = 4;

/// A policy that loaded without errors.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The typed policy.
    pub policy: Policy,
    /// Its normalized JSON value (after version mapping, no defaults filled in): what the hash
    /// covers.
    pub value: Value,
    /// The policy hash.
    pub hash: PolicyHash,
    /// Warnings (version 3 renames, lint warnings), in file order.
    pub warnings: Vec<Diagnostic>,
    /// Where each value and key was written.
    pub source: SourceMap,
}

/// Where each value and each mapping key of a policy file was written, by JSON pointer. After
/// version mapping, moved values keep the place they had in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    name: String,
    values: HashMap<String, Location>,
    keys: HashMap<String, Location>,
}

impl SourceMap {
    /// An empty map for the file `name`.
    pub fn new(name: &str) -> Self {
        SourceMap {
            name: name.to_owned(),
            ..SourceMap::default()
        }
    }

    /// The file's name, as given to the loader.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the value at `pointer` starts.
    pub fn value(&self, pointer: &str) -> Option<Location> {
        self.values.get(pointer).copied()
    }

    /// Where the key of the member at `pointer` is (none for array items and the root).
    pub fn key(&self, pointer: &str) -> Option<Location> {
        self.keys.get(pointer).copied()
    }

    /// Where the value at `pointer` is, or else its nearest ancestor that exists (the whole file
    /// starts at 1:1).
    pub fn locate(&self, pointer: &str) -> Location {
        let mut p = pointer;
        loop {
            if let Some(at) = self.values.get(p) {
                return *at;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Location::START,
            }
        }
    }

    /// Where the member at `pointer` is named: its key, else [`SourceMap::locate`].
    pub fn locate_key(&self, pointer: &str) -> Location {
        self.key(pointer).unwrap_or_else(|| self.locate(pointer))
    }

    /// How many values are mapped.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub(crate) fn insert_value(&mut self, pointer: &str, at: Location) {
        self.values.insert(pointer.to_owned(), at);
    }

    pub(crate) fn insert_key(&mut self, pointer: &str, at: Location) {
        self.keys.insert(pointer.to_owned(), at);
    }

    pub(crate) fn insert_value_if_absent(&mut self, pointer: &str, at: Location) {
        self.values.entry(pointer.to_owned()).or_insert(at);
    }

    /// Moves every entry at or under `from` to the same place under `to`.
    pub(crate) fn move_prefix(&mut self, from: &str, to: &str) {
        for table in [&mut self.values, &mut self.keys] {
            let moved: Vec<String> = table
                .keys()
                .filter(|k| {
                    k.as_str() == from
                        || k.strip_prefix(from)
                            .is_some_and(|rest| rest.starts_with('/'))
                })
                .cloned()
                .collect();
            for old in moved {
                if let Some(at) = table.remove(&old) {
                    let new = format!("{to}{}", &old[from.len()..]);
                    table.insert(new, at);
                }
            }
        }
    }
}

/// Appends `/` and `token` escaped per RFC 6901 to a JSON pointer.
pub(crate) fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    clyra_evidence::jcs::push_pointer_token(pointer, token);
}

/// A policy file read and mapped to version 4, before schema validation and lint: what the
/// policy hash covers, with the place of every value.
#[derive(Debug, Clone)]
pub struct Document {
    /// The normalized JSON value.
    pub value: Value,
    /// Where each value and key was written.
    pub source: SourceMap,
    /// Version-mapping warnings.
    pub warnings: Vec<Diagnostic>,
}

/// Reads a policy document (stages 1 to 3: size, UTF-8, YAML/JSON, version mapping) without
/// validating it. Most callers want [`load_bytes`].
pub fn parse_bytes(name: &str, bytes: &[u8]) -> Result<Document, Diagnostics> {
    match read_document(name, bytes) {
        (diagnostics, Some((value, source))) if !diagnostics.iter().any(Diagnostic::is_error) => {
            Ok(Document {
                value,
                source,
                warnings: diagnostics,
            })
        }
        (diagnostics, _) => Err(Diagnostics::new(diagnostics)),
    }
}

/// Loads a policy file (YAML or JSON).
pub fn load_file(path: impl AsRef<Path>) -> Result<LoadedPolicy, Diagnostics> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = read_file(path).map_err(|d| Diagnostics::new(vec![d]))?;
    load_bytes(&name, &bytes)
}

/// Loads a policy from text; `name` is used in diagnostics.
pub fn load_str(name: &str, text: &str) -> Result<LoadedPolicy, Diagnostics> {
    load_bytes(name, text.as_bytes())
}

/// Loads a policy from bytes (which must be UTF-8); `name` is used in diagnostics.
pub fn load_bytes(name: &str, bytes: &[u8]) -> Result<LoadedPolicy, Diagnostics> {
    let (mut diagnostics, document) = analyze(name, bytes);
    let Some((value, source)) = document else {
        return Err(Diagnostics::new(diagnostics));
    };
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics::new(diagnostics));
    }
    let policy = match serde_json::from_value::<Policy>(value.clone()) {
        Ok(p) => p,
        Err(e) => {
            // The schema and the model agree; this would be a defect in one of them.
            diagnostics.push(Diagnostic::error(
                Code::Schema,
                name,
                Location::START,
                "",
                format!("the policy does not fit the data model: {e}"),
            ));
            return Err(Diagnostics::new(diagnostics));
        }
    };
    let hash = match PolicyHash::of_value(&value) {
        Ok(h) => h,
        Err(e) => {
            diagnostics.push(Diagnostic::error(
                Code::Number,
                name,
                Location::START,
                "",
                format!("the policy cannot be canonicalized: {e}"),
            ));
            return Err(Diagnostics::new(diagnostics));
        }
    };
    Ok(LoadedPolicy {
        policy,
        value,
        hash,
        warnings: Diagnostics::new(diagnostics).into_vec(),
        source,
    })
}

/// Reads at most [`MAX_POLICY_BYTES`] of a file.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| {
        Diagnostic::error(
            Code::Io,
            &name,
            Location::START,
            "",
            format!("cannot read the file: {e}"),
        )
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_POLICY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(too_large(&name));
    }
    Ok(bytes)
}

fn too_large(name: &str) -> Diagnostic {
    Diagnostic::error(
        Code::TooLarge,
        name,
        Location::START,
        "",
        format!(
            "the file is larger than {} MiB, the most a policy may be",
            MAX_POLICY_BYTES / (1024 * 1024)
        ),
    )
}

/// Every stage but the typed model: the diagnostics, and the normalized document when it could
/// be read (even if the schema or lint found errors in it).
pub(crate) fn analyze(name: &str, bytes: &[u8]) -> (Vec<Diagnostic>, Option<(Value, SourceMap)>) {
    let (mut diagnostics, document) = read_document(name, bytes);
    let Some((value, map)) = document else {
        return (diagnostics, None);
    };
    diagnostics.extend(schema::validate(&value, &map));
    diagnostics.extend(crate::lint::semantic(&value, &map));
    (diagnostics, Some((value, map)))
}

/// Stages 1 and 2: bytes to a JSON value with the location of every value, under the file rules
/// of spec/policy/README.md §1 (size, UTF-8, YAML 1.2 core schema or JSON, no duplicate keys,
/// aliases or tags, safe numbers, bounded nesting), with no version mapping. `clyra policy test`
/// reads its CASES files with it.
pub fn read_data(name: &str, bytes: &[u8]) -> Result<(Value, SourceMap), Vec<Diagnostic>> {
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(vec![too_large(name)]);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let good = std::str::from_utf8(good).unwrap_or_default();
            let line = good.matches('\n').count() + 1;
            let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Err(vec![Diagnostic::error(
                Code::Encoding,
                name,
                Location { line, column },
                "",
                "the file is not UTF-8 text".into(),
            )
            .with_suggestion("save it as UTF-8")]);
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    parse_text(name, text)
}

/// Stages 1 to 3: text to the normalized (version 4) JSON value.
pub(crate) fn read_document(
    name: &str,
    bytes: &[u8],
) -> (Vec<Diagnostic>, Option<(Value, SourceMap)>) {
    let (mut value, mut map) = match read_data(name, bytes) {
        Ok(x) => x,
        Err(errors) => return (errors, None),
    };
    let mut diagnostics = Vec::new();
    if let Value::Object(root) = &mut value {
        match root.get("version") {
            Some(Value::Number(n)) if n.as_u64() == Some(CURRENT_VERSION) => {}
            Some(Value::Number(n)) if n.as_u64() == Some(3) => {
                diagnostics.extend(v3::map_v3(root, &mut map));
            }
            Some(Value::Number(n)) => {
                let supported: Vec<String> =
                    SUPPORTED_VERSIONS.iter().map(u64::to_string).collect();
                diagnostics.push(
                    Diagnostic::error(
                        Code::Version,
                        name,
                        map.locate("/version"),
                        "/version",
                        format!(
                            "version `{n}` is not supported; supported versions: {} (3 is mapped \
to {CURRENT_VERSION})",
                            supported.join(", ")
                        ),
                    )
                    .with_suggestion(format!("write `version: {CURRENT_VERSION}`")),
                );
                return (diagnostics, None);
            }
            // Missing or not a number: the schema says so.
            _ => {}
        }
    }
    (diagnostics, Some((value, map)))
}

/// JSON for `*.json` files and for text that parses as JSON, YAML otherwise.
fn parse_text(name: &str, text: &str) -> Result<(Value, SourceMap), Vec<Diagnostic>> {
    let named_json = name
        .rsplit('.')
        .next()
        .is_some_and(|ext| name.contains('.') && ext.eq_ignore_ascii_case("json"));
    if named_json {
        return json::parse(name, text);
    }
    if text.trim_start().starts_with(['{', '[']) {
        if let Ok(parsed) = json::parse(name, text) {
            return Ok(parsed);
        }
    }
    yaml::parse(name, text)
}

/// Visits every value of `value` with the `$defs` names the schema describes it by (`glob`,
/// `duration`, ...), in document order. Values the schema does not describe are not visited.
pub(crate) fn schema_walk(value: &Value, visit: &mut dyn FnMut(&str, &Value, &[&'static str])) {
    schema::walk(value, visit);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn source_map_falls_back_to_ancestors() {
        let mut m = SourceMap::new("f");
        m.insert_value("", Location { line: 1, column: 1 });
        m.insert_value("/a", Location { line: 2, column: 3 });
        m.insert_key("/a", Location { line: 2, column: 1 });
        assert_eq!(m.locate("/a/b/c"), Location { line: 2, column: 3 });
        assert_eq!(m.locate_key("/a"), Location { line: 2, column: 1 });
        assert_eq!(m.locate_key("/a/x"), Location { line: 2, column: 3 });
        assert_eq!(m.locate("/zz"), Location { line: 1, column: 1 });
        m.move_prefix("/a", "/b");
        assert_eq!(m.value("/b"), Some(Location { line: 2, column: 3 }));
        assert_eq!(m.value("/a"), None);
    }

    #[test]
    fn pointer_escaping() {
        let mut p = String::new();
        push_token(&mut p, "a/b~c");
        assert_eq!(p, "/a~1b~0c");
    }

    #[test]
    fn unsupported_versions_and_encoding() {
        let e = load_str("p.yaml", "version: 5\nmetadata: {}\n").unwrap_err();
        let d = e.iter().next().unwrap();
        assert_eq!(d.code, Code::Version);
        assert_eq!((d.line, d.column), (1, 10));
        assert!(
            d.message.contains("supported versions: 3, 4"),
            "{}",
            d.message
        );
        let e = load_bytes("p.yaml", b"version: 4\nname: \xff\n").unwrap_err();
        let d = e.iter().next().unwrap();
        assert_eq!((d.code, d.line, d.column), (Code::Encoding, 2, 7));
        let big = vec![b' '; MAX_POLICY_BYTES + 1];
        assert_eq!(
            load_bytes("p.yaml", &big)
                .unwrap_err()
                .iter()
                .next()
                .unwrap()
                .code,
            Code::TooLarge
        );
    }
}
