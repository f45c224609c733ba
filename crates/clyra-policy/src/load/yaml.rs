//! YAML 1.2 (core schema) to JSON, event by event, keeping the place of every node and key.
//!
//! JSON files go through the same reader: JSON is YAML's flow subset. What spec/policy/README.md
//! §1 refuses is refused here: duplicate keys, several documents, anchors and aliases, tags other
//! than the core schema's, non-finite numbers, integers beyond ±(2^53−1), nesting deeper than
//! [`MAX_DEPTH`]. Plain scalars resolve as the core schema says (`null`/`~`/empty, `true`/`false`,
//! decimal, `0o` and `0x` integers, floats); everything else, and every quoted or block scalar, is
//! a string. Integral floats are stored as integers (`1.0` is `1`), as JSON's data model and
//! RFC 8785 treat them alike.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};

use super::{push_token, SourceMap, MAX_DEPTH};
use crate::diagnostic::{quote, Code, Diagnostic, Location};

/// The largest integer magnitude a policy may hold: 2^53 − 1.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

enum Frame {
    Map {
        map: Map<String, Value>,
        pointer: String,
        /// The key whose value is being read, with the child's pointer.
        key: Option<(String, String)>,
    },
    Seq {
        items: Vec<Value>,
        pointer: String,
    },
}

struct Builder<'a> {
    file: &'a str,
    frames: Vec<Frame>,
    root: Option<Value>,
    map: SourceMap,
    errors: Vec<Diagnostic>,
}

/// Stops reading: the error is the last of `errors`.
struct Fatal;

fn location(span: &Span) -> Location {
    Location {
        line: span.start.line().max(1),
        column: span.start.col() + 1,
    }
}

/// Reads `text` into its JSON value and source map, or every problem found.
pub(crate) fn parse(file: &str, text: &str) -> Result<(Value, SourceMap), Vec<Diagnostic>> {
    let mut b = Builder {
        file,
        frames: Vec::new(),
        root: None,
        map: SourceMap::new(file),
        errors: Vec::new(),
    };
    let _ = b.run(text);
    match b.root {
        Some(root) if b.errors.is_empty() => Ok((root, b.map)),
        _ => Err(b.errors),
    }
}

impl Builder<'_> {
    fn run(&mut self, text: &str) -> Result<(), Fatal> {
        let mut parser = Parser::new_from_str(text);
        let mut documents = 0usize;
        let mut last = Location::START;
        while let Some(next) = parser.next_event() {
            let (event, span) = match next {
                Ok(x) => x,
                Err(e) => return Err(self.scan_error(&e)),
            };
            let at = location(&span);
            last = at;
            match event {
                Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(self.fatal(
                            Code::MultiDocument,
                            at,
                            "",
                            "a policy file holds one YAML document; found a second one".into(),
                            Some("remove the second `---` and what follows, or split the file"),
                        ));
                    }
                }
                Event::Alias(_) => {
                    let pointer = self.child_pointer()?;
                    self.error(
                        Code::Anchor,
                        at,
                        &pointer,
                        "aliases (`*name`) are not allowed in a policy".into(),
                        Some("write the value out in full"),
                    );
                    self.value(Value::Null, at, pointer)?;
                }
                Event::Scalar(text, style, anchor, tag) => {
                    self.scalar(&text, style, anchor, tag.as_deref(), at)?;
                }
                Event::SequenceStart(anchor, tag) => {
                    self.start(false, anchor, tag.as_deref(), at)?;
                }
                Event::MappingStart(anchor, tag) => {
                    self.start(true, anchor, tag.as_deref(), at)?;
                }
                Event::SequenceEnd | Event::MappingEnd => self.end(at)?,
            }
        }
        if self.root.is_none() && self.errors.is_empty() {
            self.error(
                Code::Yaml,
                last,
                "",
                "the file holds no YAML document".into(),
                Some("a policy starts with `version: 4`"),
            );
        }
        Ok(())
    }

    fn scan_error(&mut self, e: &ScanError) -> Fatal {
        let at = Location {
            line: e.marker().line().max(1),
            column: e.marker().col() + 1,
        };
        let pointer = self.current_pointer();
        self.fatal(
            Code::Yaml,
            at,
            &pointer,
            format!("YAML syntax error: {}", e.info()),
            None,
        )
    }

    fn error(
        &mut self,
        code: Code,
        at: Location,
        pointer: &str,
        message: String,
        help: Option<&str>,
    ) {
        let d = Diagnostic::error(code, self.file, at, pointer, message);
        self.errors.push(match help {
            Some(h) => d.with_suggestion(h),
            None => d,
        });
    }

    fn fatal(
        &mut self,
        code: Code,
        at: Location,
        pointer: &str,
        message: String,
        help: Option<&str>,
    ) -> Fatal {
        self.error(code, at, pointer, message, help);
        Fatal
    }

    /// The pointer of the innermost open container (`""` at the top).
    fn current_pointer(&self) -> String {
        match self.frames.last() {
            Some(Frame::Map { pointer, .. } | Frame::Seq { pointer, .. }) => pointer.clone(),
            None => String::new(),
        }
    }

    /// The pointer the next value will have. Fails for a collection used as a mapping key.
    fn child_pointer(&mut self) -> Result<String, Fatal> {
        match self.frames.last() {
            None => Ok(String::new()),
            Some(Frame::Seq { items, pointer }) => {
                let mut p = pointer.clone();
                p.push('/');
                p.push_str(&items.len().to_string());
                Ok(p)
            }
            Some(Frame::Map {
                key: Some((_, p)), ..
            }) => Ok(p.clone()),
            Some(Frame::Map { key: None, .. }) => Ok(String::new()),
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.frames.last(), Some(Frame::Map { key: None, .. }))
    }

    fn check_anchor(&mut self, anchor: usize, at: Location, pointer: &str) {
        if anchor != 0 {
            self.error(
                Code::Anchor,
                at,
                pointer,
                "anchors (`&name`) are not allowed in a policy".into(),
                Some("remove the anchor; write repeated values out in full"),
            );
        }
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        at: Location,
    ) -> Result<(), Fatal> {
        if self.expecting_key() {
            return self.key(text, anchor, tag, at);
        }
        let pointer = self.child_pointer()?;
        self.check_anchor(anchor, at, &pointer);
        let value = match self.resolve(text, style, tag) {
            Ok(v) => v,
            Err((code, message, help)) => {
                self.error(code, at, &pointer, message, help);
                Value::Null
            }
        };
        self.value(value, at, pointer)
    }

    fn key(
        &mut self,
        text: &str,
        anchor: usize,
        tag: Option<&Tag>,
        at: Location,
    ) -> Result<(), Fatal> {
        let parent = self.current_pointer();
        let mut pointer = parent;
        push_token(&mut pointer, text);
        self.check_anchor(anchor, at, &pointer);
        if let Some(tag) = tag {
            if !(tag.is_yaml_core_schema() && tag.suffix == "str") {
                self.error(
                    Code::Tag,
                    at,
                    &pointer,
                    format!("tag `{tag}` is not allowed on a key"),
                    Some("keys are plain strings; remove the tag"),
                );
            }
        }
        let duplicate = match self.frames.last() {
            Some(Frame::Map { map, .. }) => map.contains_key(text),
            _ => false,
        };
        if duplicate {
            let first = self.map.key(&pointer).unwrap_or(Location::START);
            self.error(
                Code::DuplicateKey,
                at,
                &pointer,
                format!(
                    "duplicate key {}: it was already given at line {}",
                    quote(text),
                    first.line
                ),
                Some("keep one of the two"),
            );
        } else {
            self.map.insert_key(&pointer, at);
        }
        if let Some(Frame::Map { key, .. }) = self.frames.last_mut() {
            *key = Some((text.to_owned(), pointer));
        }
        Ok(())
    }

    fn start(
        &mut self,
        mapping: bool,
        anchor: usize,
        tag: Option<&Tag>,
        at: Location,
    ) -> Result<(), Fatal> {
        if self.expecting_key() {
            let pointer = self.current_pointer();
            return Err(self.fatal(
                Code::ComplexKey,
                at,
                &pointer,
                "a mapping key must be a plain string, not a sequence or mapping".into(),
                None,
            ));
        }
        let pointer = self.child_pointer()?;
        if self.frames.len() >= MAX_DEPTH {
            return Err(self.fatal(
                Code::Depth,
                at,
                &pointer,
                format!("nesting deeper than {MAX_DEPTH} levels"),
                None,
            ));
        }
        self.check_anchor(anchor, at, &pointer);
        if let Some(tag) = tag {
            let expected = if mapping { "map" } else { "seq" };
            if !(tag.is_yaml_core_schema() && tag.suffix == expected) {
                self.error(
                    Code::Tag,
                    at,
                    &pointer,
                    format!("tag `{tag}` is not allowed here"),
                    Some("remove the tag"),
                );
            }
        }
        self.map.insert_value(&pointer, at);
        self.frames.push(if mapping {
            Frame::Map {
                map: Map::new(),
                pointer,
                key: None,
            }
        } else {
            Frame::Seq {
                items: Vec::new(),
                pointer,
            }
        });
        Ok(())
    }

    fn end(&mut self, at: Location) -> Result<(), Fatal> {
        let (value, pointer) = match self.frames.pop() {
            Some(Frame::Map { map, pointer, .. }) => (Value::Object(map), pointer),
            Some(Frame::Seq { items, pointer }) => (Value::Array(items), pointer),
            None => {
                return Err(self.fatal(
                    Code::Yaml,
                    at,
                    "",
                    "YAML syntax error: unbalanced end of a collection".into(),
                    None,
                ))
            }
        };
        self.place(value, pointer);
        Ok(())
    }

    /// A scalar (or alias) value: records where it is and places it in its parent.
    fn value(&mut self, value: Value, at: Location, pointer: String) -> Result<(), Fatal> {
        self.map.insert_value(&pointer, at);
        self.place(value, pointer);
        Ok(())
    }

    fn place(&mut self, value: Value, pointer: String) {
        match self.frames.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(value);
                }
                let _ = pointer;
            }
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, .. }) => {
                if let Some((k, _)) = key.take() {
                    // A duplicate keeps the first value (the error is already recorded).
                    map.entry(k).or_insert(value);
                }
            }
        }
    }

    fn resolve(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
    ) -> Result<Value, (Code, String, Option<&'static str>)> {
        let plain = style == ScalarStyle::Plain;
        let Some(tag) = tag else {
            return if plain {
                resolve_plain(text)
            } else {
                Ok(Value::String(text.to_owned()))
            };
        };
        if !tag.is_yaml_core_schema() {
            return Err((
                Code::Tag,
                format!("tag `{tag}` is not allowed: a policy uses the YAML core schema only"),
                Some("remove the tag"),
            ));
        }
        let resolved = resolve_plain(text);
        let mismatch = || {
            Err((
                Code::Tag,
                format!("{} is not a valid `!!{}`", quote(text), tag.suffix),
                None,
            ))
        };
        match tag.suffix.as_str() {
            "str" => Ok(Value::String(text.to_owned())),
            "null" => match resolved? {
                Value::Null => Ok(Value::Null),
                _ => mismatch(),
            },
            "bool" => match resolved? {
                Value::Bool(b) => Ok(Value::Bool(b)),
                _ => mismatch(),
            },
            "int" => match resolved? {
                Value::Number(n) if is_int_syntax(text) => Ok(Value::Number(n)),
                _ => mismatch(),
            },
            "float" => match resolved? {
                Value::Number(n) => Ok(Value::Number(n)),
                _ => mismatch(),
            },
            _ => Err((
                Code::Tag,
                format!("tag `{tag}` is not allowed on a scalar"),
                Some("remove the tag"),
            )),
        }
    }
}

fn is_int_syntax(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        || text
            .strip_prefix("0o")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        || text
            .strip_prefix("0x")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

type Resolved = Result<Value, (Code, String, Option<&'static str>)>;

/// Resolves a plain scalar by the YAML 1.2 core schema.
fn resolve_plain(text: &str) -> Resolved {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => {
            return Err((
                Code::Number,
                format!("non-finite number {} is not allowed", quote(text)),
                None,
            ))
        }
        _ => {}
    }
    if is_int_syntax(text) {
        return resolve_int(text);
    }
    if is_float_syntax(text) {
        return match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(float_value(f)),
            _ => Err((
                Code::Number,
                format!(
                    "number {} is too large to be represented (non-finite)",
                    quote(text)
                ),
                None,
            )),
        };
    }
    Ok(Value::String(text.to_owned()))
}

fn resolve_int(text: &str) -> Resolved {
    let (negative, radix, digits) = if let Some(d) = text.strip_prefix("0o") {
        (false, 8, d)
    } else if let Some(d) = text.strip_prefix("0x") {
        (false, 16, d)
    } else if let Some(d) = text.strip_prefix('-') {
        (true, 10, d)
    } else {
        (false, 10, text.strip_prefix('+').unwrap_or(text))
    };
    let magnitude = u64::from_str_radix(digits, radix)
        .ok()
        .filter(|m| *m <= MAX_SAFE_INTEGER);
    let Some(magnitude) = magnitude else {
        return Err((
            Code::Number,
            format!("integer {} is outside ±(2^53−1)", quote(text)),
            Some("write it as a quoted string"),
        ));
    };
    // magnitude <= 2^53 - 1 fits i64 either way.
    let n = i64::try_from(magnitude).unwrap_or(i64::MAX);
    Ok(Value::Number(Number::from(if negative { -n } else { n })))
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float_syntax(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac = digits(&mut i);
        if int_digits == 0 && frac == 0 {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A finite double as JSON: an integer when it is one within ±(2^53−1).
pub(super) fn float_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 {
        // Exact: |f| <= 2^53 - 1 is an integer representable in i64.
        #[allow(clippy::cast_possible_truncation)]
        return Value::Number(Number::from(f as i64));
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> Value {
        match parse("t.yaml", text) {
            Ok((v, _)) => v,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn err(text: &str) -> Vec<(Code, usize, usize, String)> {
        parse("t.yaml", text)
            .unwrap_err()
            .into_iter()
            .map(|d| (d.code, d.line, d.column, d.pointer))
            .collect()
    }

    #[test]
    fn core_schema_scalars() {
        let v = ok(
            "a: yes\nb: no\nc: on\nd: true\ne: ~\nf:\ng: 0x1F\nh: 0o17\ni: -12\n\
j: 1.5\nk: 2.0\nl: '12'\nm: \"true\"\nn: 1e3\no: +7\np: .5\nq: 007\nr: 1_000\ns: TRUE\n",
        );
        assert_eq!(
            v,
            json!({"a": "yes", "b": "no", "c": "on", "d": true, "e": null, "f": null, "g": 31,
                   "h": 15, "i": -12, "j": 1.5, "k": 2, "l": "12", "m": "true", "n": 1000,
                   "o": 7, "p": 0.5, "q": 7, "r": "1_000", "s": true})
        );
    }

    #[test]
    fn json_is_accepted() {
        let v = ok("{\"a\": [1, 2.5, \"x\", null, false], \"b\": {\"c\": \"\\u00e9\"}}");
        assert_eq!(v, json!({"a": [1, 2.5, "x", null, false], "b": {"c": "é"}}));
    }

    #[test]
    fn locations_of_keys_and_values() {
        let (_, map) = parse("t.yaml", "a:\n  b: 1\n  c: [x, 'y']\n").unwrap();
        assert_eq!(map.key("/a/b"), Some(Location { line: 2, column: 3 }));
        assert_eq!(map.value("/a/b"), Some(Location { line: 2, column: 6 }));
        assert_eq!(
            map.value("/a/c/1"),
            Some(Location {
                line: 3,
                column: 10
            })
        );
        assert_eq!(map.key("/a/c"), Some(Location { line: 3, column: 3 }));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            err("a: 1\na: 2\n"),
            vec![(Code::DuplicateKey, 2, 1, "/a".into())]
        );
        assert_eq!(
            err("a: &x 1\nb: *x\n"),
            vec![
                (Code::Anchor, 1, 4, "/a".into()),
                (Code::Anchor, 2, 4, "/b".into())
            ]
        );
        assert_eq!(err("a: !foo 1\n"), vec![(Code::Tag, 1, 4, "/a".into())]);
        assert_eq!(err("a: !!int x\n")[0].0, Code::Tag);
        assert_eq!(ok("a: !!str 12\n"), json!({"a": "12"}));
        assert_eq!(ok("a: !!float 12\n"), json!({"a": 12}));
        assert_eq!(err("a: .inf\n"), vec![(Code::Number, 1, 4, "/a".into())]);
        assert_eq!(err("a: 1e999\n")[0].0, Code::Number);
        assert_eq!(err("a: 9007199254740992\n")[0].0, Code::Number);
        assert_eq!(
            ok("a: -9007199254740991\n"),
            json!({"a": -9007199254740991_i64})
        );
        assert_eq!(err("a: 1\n---\nb: 2\n")[0].0, Code::MultiDocument);
        assert_eq!(err("")[0].0, Code::Yaml);
        assert_eq!(err("a: [1, 2\n")[0].0, Code::Yaml);
        assert_eq!(err("? [a]\n: 1\n")[0].0, Code::ComplexKey);
        let deep = "[".repeat(64) + &"]".repeat(64);
        assert!(parse("t", &deep).is_ok());
        let deeper = "[".repeat(65) + &"]".repeat(65);
        assert_eq!(err(&deeper)[0].0, Code::Depth);
        let very_deep = "[".repeat(100_000);
        assert!(parse("t", &very_deep).is_err());
    }
}
