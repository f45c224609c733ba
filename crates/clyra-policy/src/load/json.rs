//! JSON policy files (RFC 8259), read with the place of every value and key.
//!
//! JSON is YAML 1.2's flow subset, and the YAML reader accepts nearly all of it; but YAML has no
//! UTF-16 surrogate-pair escapes (`"\ud83d\ude00"`), which JSON writers emit for any character
//! beyond the Basic Multilingual Plane. Files named `*.json`, and text that parses as JSON, are
//! therefore read here. The result is the same value the YAML reader gives for the same data
//! (integral numbers as integers), and the same refusals: duplicate keys, integers beyond
//! ±(2^53−1), non-finite numbers, nesting deeper than [`MAX_DEPTH`], lone surrogates.

use serde_json::{Map, Number, Value};

use super::{push_token, SourceMap, MAX_DEPTH};
use crate::diagnostic::{quote, Code, Diagnostic, Location};

const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Reads JSON text into its value and source map, or every problem found (reading stops at the
/// first syntax error).
pub(crate) fn parse(file: &str, text: &str) -> Result<(Value, SourceMap), Vec<Diagnostic>> {
    let mut p = JsonParser {
        file,
        text,
        pos: 0,
        line: 1,
        column: 1,
        map: SourceMap::new(file),
        errors: Vec::new(),
    };
    let result = p.document();
    match result {
        Ok(v) if p.errors.is_empty() => Ok((v, p.map)),
        _ => Err(p.errors),
    }
}

struct JsonParser<'a> {
    file: &'a str,
    text: &'a str,
    /// Byte offset.
    pos: usize,
    line: usize,
    /// In characters, from 1.
    column: usize,
    map: SourceMap,
    errors: Vec<Diagnostic>,
}

/// Reading stopped; the reason is in `errors`.
struct Stop;

impl JsonParser<'_> {
    fn here(&self) -> Location {
        Location {
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&self) -> Option<char> {
        self.text.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.bump();
        }
    }

    fn fail(&mut self, at: Location, pointer: &str, message: String) -> Stop {
        self.errors.push(Diagnostic::error(
            Code::Yaml,
            self.file,
            at,
            pointer,
            format!("JSON syntax error: {message}"),
        ));
        Stop
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the file".into(),
            Some(c) => format!("`{}`", c.escape_default()),
        }
    }

    fn document(&mut self) -> Result<Value, Stop> {
        self.skip_ws();
        if self.peek().is_none() {
            let at = self.here();
            return Err(self.fail(at, "", "the file holds no JSON value".into()));
        }
        let v = self.value(String::new(), 0)?;
        self.skip_ws();
        if self.peek().is_some() {
            let at = self.here();
            let found = self.found();
            return Err(self.fail(at, "", format!("unexpected {found} after the document")));
        }
        Ok(v)
    }

    fn value(&mut self, pointer: String, depth: usize) -> Result<Value, Stop> {
        let at = self.here();
        self.map.insert_value(&pointer, at);
        match self.peek() {
            Some('{') | Some('[') if depth >= MAX_DEPTH => {
                self.errors.push(Diagnostic::error(
                    Code::Depth,
                    self.file,
                    at,
                    &pointer,
                    format!("nesting deeper than {MAX_DEPTH} levels"),
                ));
                Err(Stop)
            }
            Some('{') => self.object(pointer, depth + 1),
            Some('[') => self.array(pointer, depth + 1),
            Some('"') => self.string(&pointer).map(Value::String),
            Some('-' | '0'..='9') => Ok(self.number(&pointer, at)?),
            Some('t' | 'f' | 'n') => self.literal(&pointer),
            _ => {
                let found = self.found();
                Err(self.fail(at, &pointer, format!("expected a value, found {found}")))
            }
        }
    }

    fn object(&mut self, pointer: String, depth: usize) -> Result<Value, Stop> {
        self.bump();
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some('}') {
            self.bump();
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            let key_at = self.here();
            if self.peek() != Some('"') {
                let found = self.found();
                return Err(self.fail(
                    key_at,
                    &pointer,
                    format!("expected a member name in double quotes, found {found}"),
                ));
            }
            let key = self.string(&pointer)?;
            let mut child = pointer.clone();
            push_token(&mut child, &key);
            let duplicate = map.contains_key(&key);
            if duplicate {
                let first = self.map.key(&child).unwrap_or(Location::START);
                self.errors.push(
                    Diagnostic::error(
                        Code::DuplicateKey,
                        self.file,
                        key_at,
                        &child,
                        format!(
                            "duplicate key {}: it was already given at line {}",
                            quote(&key),
                            first.line
                        ),
                    )
                    .with_suggestion("keep one of the two"),
                );
            } else {
                self.map.insert_key(&child, key_at);
            }
            self.skip_ws();
            if self.peek() != Some(':') {
                let at = self.here();
                let found = self.found();
                return Err(self.fail(at, &child, format!("expected `:`, found {found}")));
            }
            self.bump();
            self.skip_ws();
            let v = self.value(child, depth)?;
            if !duplicate {
                map.insert(key, v);
            }
            self.skip_ws();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some('}') => {
                    self.bump();
                    return Ok(Value::Object(map));
                }
                _ => {
                    let at = self.here();
                    let found = self.found();
                    return Err(self.fail(
                        at,
                        &pointer,
                        format!("expected `,` or `}}`, found {found}"),
                    ));
                }
            }
        }
    }

    fn array(&mut self, pointer: String, depth: usize) -> Result<Value, Stop> {
        self.bump();
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(']') {
            self.bump();
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            let child = format!("{pointer}/{}", items.len());
            items.push(self.value(child, depth)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                _ => {
                    let at = self.here();
                    let found = self.found();
                    return Err(self.fail(
                        at,
                        &pointer,
                        format!("expected `,` or `]`, found {found}"),
                    ));
                }
            }
        }
    }

    fn literal(&mut self, pointer: &str) -> Result<Value, Stop> {
        let at = self.here();
        for (word, value) in [
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("null", Value::Null),
        ] {
            if self
                .text
                .get(self.pos..)
                .is_some_and(|s| s.starts_with(word))
            {
                for _ in 0..word.len() {
                    self.bump();
                }
                return Ok(value);
            }
        }
        let found = self.found();
        Err(self.fail(at, pointer, format!("expected a value, found {found}")))
    }

    fn hex4(&mut self, pointer: &str) -> Result<u32, Stop> {
        let at = self.here();
        let digits = self.text.get(self.pos..self.pos + 4).unwrap_or_default();
        match u32::from_str_radix(digits, 16) {
            Ok(v) if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_hexdigit()) => {
                for _ in 0..4 {
                    self.bump();
                }
                Ok(v)
            }
            _ => Err(self.fail(at, pointer, "expected 4 hex digits after `\\u`".into())),
        }
    }

    fn string(&mut self, pointer: &str) -> Result<String, Stop> {
        self.bump();
        let mut s = String::new();
        loop {
            let at = self.here();
            match self.bump() {
                None => return Err(self.fail(at, pointer, "unterminated string".into())),
                Some('"') => return Ok(s),
                Some('\\') => {
                    let c = match self.bump() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('/') => '/',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('u') => {
                            let hi = self.hex4(pointer)?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                let lo = if self
                                    .text
                                    .get(self.pos..)
                                    .is_some_and(|r| r.starts_with("\\u"))
                                {
                                    self.bump();
                                    self.bump();
                                    self.hex4(pointer)?
                                } else {
                                    0
                                };
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.fail(
                                        at,
                                        pointer,
                                        format!("lone surrogate `\\u{hi:04x}`"),
                                    ));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            match char::from_u32(code) {
                                Some(c) => c,
                                None => {
                                    return Err(self.fail(
                                        at,
                                        pointer,
                                        format!("lone surrogate `\\u{code:04x}`"),
                                    ))
                                }
                            }
                        }
                        _ => return Err(self.fail(at, pointer, "invalid escape".into())),
                    };
                    s.push(c);
                }
                Some(c) if (c as u32) < 0x20 => {
                    return Err(self.fail(
                        at,
                        pointer,
                        format!("control character `{}` in a string", c.escape_default()),
                    ))
                }
                Some(c) => s.push(c),
            }
        }
    }

    fn number(&mut self, pointer: &str, at: Location) -> Result<Value, Stop> {
        let start = self.pos;
        let b = self.text.as_bytes();
        let mut i = self.pos;
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - s
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        let n = digits(&mut i);
        let mut ok = n > 0 && !(n > 1 && b.get(int_start) == Some(&b'0'));
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            integer = false;
            ok &= digits(&mut i) > 0;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            integer = false;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            ok &= digits(&mut i) > 0;
        }
        let literal = self.text.get(start..i).unwrap_or_default();
        for _ in start..i {
            self.bump();
        }
        if !ok {
            return Err(self.fail(at, pointer, format!("malformed number {}", quote(literal))));
        }
        if integer {
            let magnitude = literal
                .trim_start_matches('-')
                .parse::<u64>()
                .ok()
                .filter(|m| *m <= MAX_SAFE_INTEGER);
            return match magnitude {
                Some(m) => {
                    let m = i64::try_from(m).unwrap_or(i64::MAX);
                    Ok(Value::Number(Number::from(if literal.starts_with('-') {
                        -m
                    } else {
                        m
                    })))
                }
                None => {
                    self.errors.push(
                        Diagnostic::error(
                            Code::Number,
                            self.file,
                            at,
                            pointer,
                            format!("integer {} is outside ±(2^53−1)", quote(literal)),
                        )
                        .with_suggestion("write it as a quoted string"),
                    );
                    Ok(Value::Null)
                }
            };
        }
        match literal.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(super::yaml::float_value(f)),
            _ => {
                self.errors.push(Diagnostic::error(
                    Code::Number,
                    self.file,
                    at,
                    pointer,
                    format!(
                        "number {} is too large to be represented (non-finite)",
                        quote(literal)
                    ),
                ));
                Ok(Value::Null)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn codes(text: &str) -> Vec<(Code, usize, usize, String)> {
        parse("t.json", text)
            .unwrap_err()
            .into_iter()
            .map(|d| (d.code, d.line, d.column, d.pointer))
            .collect()
    }

    #[test]
    fn values_and_places() {
        let text = "{\n\t\"a\": [1, 2.5, 1.0, -0, 1e2, \"\\ud83d\\ude00\\u00e9\\/\"],\n\t\"b\": {\"c\": null, \"d\": true}\n}";
        let (v, map) = parse("t.json", text).unwrap();
        assert_eq!(
            v,
            json!({"a": [1, 2.5, 1, 0, 100, "😀é/"], "b": {"c": null, "d": true}})
        );
        assert_eq!(
            map.key("/b/d"),
            Some(Location {
                line: 3,
                column: 19
            })
        );
        assert_eq!(
            map.value("/a/5"),
            Some(Location {
                line: 2,
                column: 30
            })
        );
        // The same data through YAML gives the same value.
        let yaml = "{\"a\": [1, 2.5, 1.0, -0, 1e2, \"😀é/\"], \"b\": {\"c\": null, \"d\": true}}";
        assert_eq!(super::super::yaml::parse("t.yaml", yaml).unwrap().0, v);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            codes("{\"a\": 1, \"a\": 2}"),
            vec![(Code::DuplicateKey, 1, 10, "/a".into())]
        );
        assert_eq!(codes("[9007199254740992]")[0].0, Code::Number);
        assert_eq!(codes("[1e400]")[0].0, Code::Number);
        assert_eq!(codes("[\"\\ud800\"]")[0].0, Code::Yaml);
        assert_eq!(codes("[\"\\udc00\"]")[0].0, Code::Yaml);
        assert_eq!(codes("[01]")[0].0, Code::Yaml);
        assert_eq!(codes("[1.]")[0].0, Code::Yaml);
        assert_eq!(codes("{\"a\" 1}")[0].0, Code::Yaml);
        assert_eq!(codes("[1] x")[0].0, Code::Yaml);
        assert_eq!(codes("")[0].0, Code::Yaml);
        assert_eq!(codes("[\"a\nb\"]")[0].0, Code::Yaml);
        assert_eq!(codes("[tru]")[0].0, Code::Yaml);
        assert_eq!(codes(&"[".repeat(65))[0].0, Code::Depth);
        assert!(parse("t", &("[".repeat(64) + &"]".repeat(64))).is_ok());
        assert_eq!(codes(&"[".repeat(100_000))[0].0, Code::Depth);
    }
}
