//! RFC 8785 JSON Canonicalization Scheme (JCS), with Clyra's strict input profile.
//!
//! Canonical bytes are what Clyra hashes and signs, so two implementations (this one and the
//! TypeScript verifier) must produce them identically from the same input. RFC 8785 fixes the
//! output: ECMAScript number formatting, object members sorted by their names' UTF-16 code units,
//! minimal string escaping, no whitespace. It leaves input validity to I-JSON (RFC 7493), which
//! ordinary parsers do not enforce: they keep the last of two duplicate keys and silently round
//! large integers. Untrusted input therefore goes through [`parse_strict`] first, which rejects:
//!
//! | what | error |
//! |---|---|
//! | bytes that are not UTF-8 | [`JcsError::InvalidUtf8`] |
//! | a member name used twice in one object | [`JcsError::DuplicateKey`] |
//! | a `\uD800`–`\uDFFF` escape that is not a valid surrogate pair | [`JcsError::LoneSurrogate`] |
//! | a number denoting an integer of magnitude above 2^53−1 and below 10^21 | [`JcsError::IntegerOutOfRange`] |
//! | a number that overflows to infinity | [`JcsError::NonFinite`] |
//! | nesting deeper than [`MAX_DEPTH`] | [`JcsError::TooDeep`] |
//! | anything else RFC 8259 does not allow | [`JcsError::Syntax`] |
//!
//! Every error names where it happened: the byte offset, line and column, and the JSON pointer
//! (RFC 6901) of the value being parsed.
//!
//! The integer rule is judged on the IEEE double a number token denotes, whatever its spelling:
//! `9007199254740992`, `1.2e17` and `9007199254740991.9` (which rounds to 2^53) are rejected, since
//! ECMAScript would print them as integer literals that another parser rounds silently; from 10^21
//! on ECMAScript prints an exponent, so `1e21`, `100000000000000000000000` and
//! `999999999999999999999` (which rounds to 10^21) are accepted and canonicalized as that double
//! (`1e+21`, `1e+23`, `1e+21`). This is the profile of `docs/evidence-kernel.md`, which the
//! TypeScript verifier implements too. Writers that need exact large integers (sequence numbers,
//! amounts) carry them as strings.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Number, Value};

/// The deepest nesting of arrays and objects [`parse_strict`] accepts. The top-level value is at
/// depth 1, so `[[1]]` has depth 2.
pub const MAX_DEPTH: usize = 128;

/// The largest integer magnitude exactly representable as an IEEE double: 2^53 − 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Where in the input an error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Byte offset from the start of the input.
    pub offset: usize,
    /// Line number, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub column: usize,
    /// RFC 6901 JSON pointer of the value being parsed (`""` is the whole document).
    pub pointer: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {} (JSON pointer `{}`)",
            self.line, self.column, self.pointer
        )
    }
}

/// Why input could not be canonicalized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JcsError {
    /// The input is not valid UTF-8.
    #[error("invalid UTF-8 at {at}")]
    InvalidUtf8 {
        /// Where the first invalid byte is.
        at: Location,
    },
    /// An object has two members with the same name.
    #[error("duplicate key `{key}` at {at}")]
    DuplicateKey {
        /// The repeated name.
        key: String,
        /// Where the second occurrence is.
        at: Location,
    },
    /// A `\u` escape encodes half of a surrogate pair.
    #[error("lone surrogate `\\u{code:04x}` at {at}")]
    LoneSurrogate {
        /// The UTF-16 code unit.
        code: u16,
        /// Where the escape is.
        at: Location,
    },
    /// An integer literal cannot be represented exactly as an IEEE double.
    #[error("integer `{literal}` is outside ±(2^53−1) at {at}; carry it as a string")]
    IntegerOutOfRange {
        /// The literal as written (or as held by the value).
        literal: String,
        /// Where it is.
        at: Location,
    },
    /// A number is NaN or infinite (from overflow, or in a value built in code).
    #[error("non-finite number at {at}")]
    NonFinite {
        /// Where it is.
        at: Location,
    },
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {limit} at {at}")]
    TooDeep {
        /// The limit in force.
        limit: usize,
        /// Where the limit was crossed.
        at: Location,
    },
    /// The input is not JSON.
    #[error("{message} at {at}")]
    Syntax {
        /// What was expected or found.
        message: String,
        /// Where.
        at: Location,
    },
    /// A value could not be converted to JSON (from [`to_canonical_vec`]).
    #[error("cannot serialize value: {0}")]
    Serialize(String),
}

impl JcsError {
    /// The location of the error, where the input had one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            JcsError::InvalidUtf8 { at }
            | JcsError::DuplicateKey { at, .. }
            | JcsError::LoneSurrogate { at, .. }
            | JcsError::IntegerOutOfRange { at, .. }
            | JcsError::NonFinite { at }
            | JcsError::TooDeep { at, .. }
            | JcsError::Syntax { at, .. } => Some(at),
            JcsError::Serialize(_) => None,
        }
    }
}

/// Parses untrusted bytes under the strict profile.
///
/// Numbers come back normalized to what they mean in JCS: an integral value within
/// ±(2^53−1) is an integer (`4.0` and `4` both parse to `4`), anything else a double.
pub fn parse_strict(input: &[u8]) -> Result<Value, JcsError> {
    let text = match std::str::from_utf8(input) {
        Ok(text) => text,
        Err(e) => {
            let offset = e.valid_up_to();
            return Err(JcsError::InvalidUtf8 {
                at: locate(input, offset, String::new()),
            });
        }
    };
    let mut p = Parser {
        input,
        text,
        pos: 0,
        path: Vec::new(),
    };
    p.skip_ws();
    let v = p.value(1)?;
    p.skip_ws();
    if p.pos != input.len() {
        return Err(p.syntax("trailing characters after the JSON value"));
    }
    Ok(v)
}

/// Parses untrusted bytes strictly and returns their canonical form.
pub fn canonicalize(input: &[u8]) -> Result<Vec<u8>, JcsError> {
    canonicalize_value(&parse_strict(input)?)
}

/// Whether `input` is already in canonical form (strictly parsed, then compared byte for byte).
pub fn is_canonical(input: &[u8]) -> Result<bool, JcsError> {
    Ok(canonicalize(input)? == input)
}

/// The canonical bytes of a value.
///
/// Fails on non-finite numbers and integers outside ±(2^53−1), which a [`Value`] built in code can
/// hold but JCS cannot represent exactly.
pub fn canonicalize_value(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out, &mut Vec::new())?;
    Ok(out)
}

/// Appends the canonical bytes of `value` to `out`.
pub fn canonicalize_value_into(value: &Value, out: &mut Vec<u8>) -> Result<(), JcsError> {
    write_value(value, out, &mut Vec::new())
}

/// The canonical bytes of any serializable value.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, JcsError> {
    let v = serde_json::to_value(value).map_err(|e| JcsError::Serialize(e.to_string()))?;
    canonicalize_value(&v)
}

/// Formats a double as ECMAScript's `Number.prototype.toString` does (ECMA-262 §6.1.6.1.20),
/// which RFC 8785 §3.2.2.3 adopts. Fails on NaN and infinities.
pub fn format_number(v: f64) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let mut s = String::with_capacity(24);
    push_number(v, &mut s);
    Some(s)
}

fn push_number(v: f64, out: &mut String) {
    let mut bytes = Vec::with_capacity(24);
    write_f64(v, &mut bytes);
    // Only ASCII digits, '.', '-', '+' and 'e' are written.
    out.push_str(std::str::from_utf8(&bytes).unwrap_or("0"));
}

/// Writes a finite double in ECMAScript form without allocating.
fn write_f64(v: f64, out: &mut Vec<u8>) {
    if v == 0.0 {
        // Covers -0, which ECMAScript prints as "0".
        out.push(b'0');
        return;
    }
    if v < 0.0 {
        out.push(b'-');
    }
    // Ryu yields the shortest digit string that round-trips and, among those, the one closest to
    // v: the digits ECMAScript requires. (Rust's own `{:e}` does not always pick the closest.)
    let mut buf = ryu::Buffer::new();
    let mut digits = [0u8; 24];
    let (k, n) = decimal_digits(buf.format_finite(v.abs()).as_bytes(), &mut digits);
    let digits = &digits[..k];
    let k = k as i32;
    // ECMAScript's n: v = 0.d1d2…dk × 10^n (ECMA-262 Number::toString steps 6-10).
    if k <= n && n <= 21 {
        out.extend_from_slice(digits);
        out.resize(out.len() + (n - k) as usize, b'0');
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-n) as usize, b'0');
        out.extend_from_slice(digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.extend_from_slice(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        out.push(b'e');
        out.push(if n > 0 { b'+' } else { b'-' });
        out.extend_from_slice(
            itoa::Buffer::new()
                .format((n - 1).unsigned_abs())
                .as_bytes(),
        );
    }
}

/// Splits a decimal string such as `1.25e-7`, `0.001` or `123.0` into its significant digits
/// (no leading or trailing zeros, written to `digits`) and returns their count k and the exponent
/// n with value = 0.d1…dk × 10^n. Ryu writes at most 17 significant digits.
fn decimal_digits(s: &[u8], digits: &mut [u8; 24]) -> (usize, i32) {
    let (mantissa, exp) = match s.iter().position(|c| *c == b'e' || *c == b'E') {
        Some(i) => (
            &s[..i],
            std::str::from_utf8(&s[i + 1..])
                .ok()
                .and_then(|e| e.parse::<i32>().ok())
                .unwrap_or(0),
        ),
        None => (s, 0),
    };
    let int_len = mantissa
        .iter()
        .position(|c| *c == b'.')
        .unwrap_or(mantissa.len());
    let mut k = 0;
    let mut lead = 0i32;
    for &c in mantissa.iter().filter(|c| c.is_ascii_digit()) {
        if k == 0 && c == b'0' {
            lead += 1;
        } else if k < digits.len() {
            digits[k] = c;
            k += 1;
        }
    }
    while k > 0 && digits[k - 1] == b'0' {
        k -= 1;
    }
    // value = 0.(all digits) × 10^(int_len + exp); each dropped leading zero lowers n by one.
    (k, int_len as i32 + exp - lead)
}

// ---------------------------------------------------------------------------------------------
// Writer

#[derive(Debug)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn pointer_of(path: &[Seg<'_>]) -> String {
    let mut p = String::new();
    for seg in path {
        p.push('/');
        match seg {
            Seg::Key(k) => push_pointer_token(&mut p, k),
            Seg::Index(i) => {
                let _ = write!(p, "{i}");
            }
        }
    }
    p
}

/// Appends `key` to a JSON pointer escaped per RFC 6901 (`~` → `~0`, `/` → `~1`); the caller
/// writes the `/` before it. The one escaper the crates share.
pub fn push_pointer_token(p: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => p.push_str("~0"),
            '/' => p.push_str("~1"),
            c => p.push(c),
        }
    }
}

/// Whether `p` is a syntactically valid RFC 6901 JSON pointer: empty, or `/`-separated tokens in
/// which every `~` is followed by `0` or `1`.
pub fn is_json_pointer(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    if !p.starts_with('/') {
        return false;
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

/// `key` escaped as one RFC 6901 pointer token.
pub fn pointer_token(key: &str) -> String {
    let mut p = String::with_capacity(key.len());
    push_pointer_token(&mut p, key);
    p
}

fn value_location(path: &[Seg<'_>]) -> Location {
    Location {
        offset: 0,
        line: 0,
        column: 0,
        pointer: pointer_of(path),
    }
}

fn write_value<'a>(
    v: &'a Value,
    out: &mut Vec<u8>,
    path: &mut Vec<Seg<'a>>,
) -> Result<(), JcsError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out, path)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                path.push(Seg::Index(i));
                write_value(item, out, path)?;
                path.pop();
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out, path)?,
    }
    Ok(())
}

fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    // UTF-8 byte order equals code point order, which equals UTF-16 order unless one side has a
    // supplementary-plane character and the other U+E000..U+FFFF: compare bytes when neither has a
    // lead byte of 0xEE or above.
    if !a.bytes().chain(b.bytes()).any(|c| c >= 0xEE) {
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_object<'a>(
    map: &'a Map<String, Value>,
    out: &mut Vec<u8>,
    path: &mut Vec<Seg<'a>>,
) -> Result<(), JcsError> {
    out.push(b'{');
    // serde_json's default map iterates in UTF-8 byte order, which is already canonical for most
    // documents; only sort when the order is not already right (or a dependency switched on
    // `preserve_order`).
    let sorted = {
        let mut keys = map.keys();
        let mut prev = keys.next();
        let mut ok = true;
        for k in keys {
            if let Some(p) = prev {
                if utf16_cmp(p, k) != std::cmp::Ordering::Less {
                    ok = false;
                    break;
                }
            }
            prev = Some(k);
        }
        ok
    };
    let write_member =
        |i: usize, k: &'a String, v: &'a Value, out: &mut Vec<u8>, path: &mut Vec<Seg<'a>>| {
            if i > 0 {
                out.push(b',');
            }
            write_string(k, out);
            out.push(b':');
            path.push(Seg::Key(k));
            let r = write_value(v, out, path);
            path.pop();
            r
        };
    if sorted {
        for (i, (k, v)) in map.iter().enumerate() {
            write_member(i, k, v, out, path)?;
        }
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_by(|a, b| utf16_cmp(a.0, b.0));
        for (i, (k, v)) in members.into_iter().enumerate() {
            write_member(i, k, v, out, path)?;
        }
    }
    out.push(b'}');
    Ok(())
}

fn write_number(n: &Number, out: &mut Vec<u8>, path: &[Seg<'_>]) -> Result<(), JcsError> {
    if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(JcsError::IntegerOutOfRange {
                literal: i.to_string(),
                at: value_location(path),
            });
        }
        // Safe integers print as plain digits in ECMAScript (they are all below 1e21).
        out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        return Ok(());
    }
    if let Some(u) = n.as_u64() {
        // Only reached for u64 values above i64::MAX, all unsafe.
        return Err(JcsError::IntegerOutOfRange {
            literal: u.to_string(),
            at: value_location(path),
        });
    }
    if n.as_f64().is_some_and(is_unsafe_integral) {
        return Err(JcsError::IntegerOutOfRange {
            literal: n.to_string(),
            at: value_location(path),
        });
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => {
            write_f64(f, out);
            Ok(())
        }
        _ => Err(JcsError::NonFinite {
            at: value_location(path),
        }),
    }
}

/// Bytes that need escaping in a JSON string: `"`, `\\` and U+0000..U+001F.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The length of the longest prefix of `bytes` without a byte that [`NEEDS_ESCAPE`]: what a
/// string copies as it is, both when parsing and when writing. Eight bytes at a time, since
/// strings are most of a journal line (a byte-by-byte scan was a tenth of verification time).
fn plain_len(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_ne_bytes([0x20; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    let mut n = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word);
        let (q, b) = (x ^ QUOTES, x ^ BACKSLASHES);
        // Whether some byte of `x` is below 0x20, or some byte of `q` or `b` is zero (a quote or
        // a backslash in `x`). Each test is exact as to whether there is such a byte; which one
        // it is, the byte-by-byte search below finds.
        let below_space = x.wrapping_sub(SPACES) & !x;
        let quote = q.wrapping_sub(ONES) & !q;
        let backslash = b.wrapping_sub(ONES) & !b;
        if (below_space | quote | backslash) & HIGHS != 0 {
            break;
        }
        n += 8;
    }
    let rest = &bytes[n..];
    n + rest
        .iter()
        .position(|&b| NEEDS_ESCAPE[usize::from(b)])
        .unwrap_or(rest.len())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = start + plain_len(&bytes[start..]);
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else {
            break;
        };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0C => out.extend_from_slice(b"\\f"),
            0x0D => out.extend_from_slice(b"\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
        }
        start = i + 1;
    }
    out.push(b'"');
}

// ---------------------------------------------------------------------------------------------
// Strict parser

enum PathSeg {
    Key(String),
    Index(usize),
}

struct Parser<'a> {
    input: &'a [u8],
    /// `input`, checked to be UTF-8 once, up front.
    text: &'a str,
    pos: usize,
    path: Vec<PathSeg>,
}

fn locate(input: &[u8], offset: usize, pointer: String) -> Location {
    let offset = offset.min(input.len());
    let before = &input[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    // Count characters, not bytes; the prefix may end mid-character for invalid UTF-8.
    let column = String::from_utf8_lossy(&input[line_start..offset])
        .chars()
        .count()
        + 1;
    Location {
        offset,
        line,
        column,
        pointer,
    }
}

impl<'a> Parser<'a> {
    fn pointer(&self) -> String {
        let mut p = String::new();
        for seg in &self.path {
            p.push('/');
            match seg {
                PathSeg::Key(k) => push_pointer_token(&mut p, k),
                PathSeg::Index(i) => {
                    let _ = write!(p, "{i}");
                }
            }
        }
        p
    }

    fn here(&self) -> Location {
        self.at(self.pos)
    }

    fn at(&self, offset: usize) -> Location {
        locate(self.input, offset, self.pointer())
    }

    fn syntax(&self, message: &str) -> JcsError {
        JcsError::Syntax {
            message: message.to_owned(),
            at: self.here(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, lit: &[u8], v: Value) -> Result<Value, JcsError> {
        if self.input[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(v)
        } else {
            Err(self.syntax("expected a JSON value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JcsError> {
        match self.peek() {
            None => Err(self.syntax("unexpected end of input, expected a JSON value")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.expect_literal(b"true", Value::Bool(true)),
            Some(b'f') => self.expect_literal(b"false", Value::Bool(false)),
            Some(b'n') => self.expect_literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.syntax("expected a JSON value")),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), JcsError> {
        if depth > MAX_DEPTH {
            return Err(JcsError::TooDeep {
                limit: MAX_DEPTH,
                at: self.here(),
            });
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Value, JcsError> {
        self.enter(depth)?;
        self.pos += 1; // '{'
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(Map::new()));
        }
        // Members are kept in a list while their names strictly increase in byte order, as they
        // do in canonical JSON (but for rare supplementary-plane names): a name greater than the
        // one before cannot repeat an earlier one, so no lookup is needed, and the map is built
        // in one pass at the end. From the first name out of order on, the members go into a map
        // and each name is looked up, so no input makes this quadratic.
        let mut ordered: Vec<(String, Value)> = Vec::new();
        let mut map: Option<Map<String, Value>> = None;
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected a string for an object member name"));
            }
            let key_start = self.pos;
            let key = self.string()?;
            let increasing = map.is_none()
                && ordered
                    .last()
                    .is_none_or(|(last, _)| last.as_bytes() < key.as_bytes());
            if !increasing {
                let members = map.get_or_insert_with(|| ordered.drain(..).collect());
                if members.contains_key(&key) {
                    self.path.push(PathSeg::Key(key.clone()));
                    let at = self.at(key_start);
                    self.path.pop();
                    return Err(JcsError::DuplicateKey { key, at });
                }
            }
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.syntax("expected `:` after an object member name"));
            }
            self.pos += 1;
            self.skip_ws();
            self.path.push(PathSeg::Key(key));
            let v = self.value(depth + 1)?;
            let key = match self.path.pop() {
                Some(PathSeg::Key(k)) => k,
                _ => return Err(self.syntax("internal parser state error")),
            };
            match map.as_mut() {
                Some(members) => {
                    members.insert(key, v);
                }
                None => ordered.push((key, v)),
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    let members = map.unwrap_or_else(|| ordered.into_iter().collect());
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.syntax("expected `,` or `}` in object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JcsError> {
        self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            self.path.push(PathSeg::Index(items.len()));
            let v = self.value(depth + 1)?;
            self.path.pop();
            items.push(v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.syntax("expected `,` or `]` in array")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16, JcsError> {
        let Some(chunk) = self.input.get(self.pos..self.pos + 4) else {
            return Err(self.syntax("truncated `\\u` escape"));
        };
        let mut v: u16 = 0;
        for &c in chunk {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(self.syntax("invalid hex digit in `\\u` escape")),
            };
            v = (v << 4) | u16::from(d);
        }
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JcsError> {
        self.pos += 1; // opening quote
                       // Most strings have no escape: copy them from the input in one allocation of the right
                       // size, without checking their UTF-8 again (both ends are ASCII, so they are character
                       // boundaries of the checked text). Anything else takes the general path from the start.
        let start = self.pos;
        self.pos += plain_len(&self.input[start..]);
        if self.peek() == Some(b'"') {
            if let Some(plain) = self.text.get(start..self.pos) {
                self.pos += 1;
                return Ok(plain.to_owned());
            }
        }
        self.pos = start;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let run_start = self.pos;
            self.pos += plain_len(&self.input[run_start..]);
            out.extend_from_slice(&self.input[run_start..self.pos]);
            match self.peek() {
                None => return Err(self.syntax("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    // The input was checked to be UTF-8 and escapes only add valid scalars.
                    return String::from_utf8(out)
                        .map_err(|_| self.syntax("invalid UTF-8 in string"));
                }
                Some(b'\\') => {
                    let esc_start = self.pos;
                    self.pos += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.syntax("unterminated escape"));
                    };
                    self.pos += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape(esc_start)?,
                        _ => {
                            self.pos = esc_start;
                            return Err(self.syntax("invalid escape sequence"));
                        }
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                Some(_) => return Err(self.syntax("unescaped control character in string")),
            }
        }
    }

    fn unicode_escape(&mut self, esc_start: usize) -> Result<char, JcsError> {
        let hi = self.hex4()?;
        let lone = |p: &Self, code: u16| JcsError::LoneSurrogate {
            code,
            at: p.at(esc_start),
        };
        match hi {
            0xD800..=0xDBFF => {
                if self.input.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(lone(self, hi));
                }
                self.pos += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(lone(self, hi));
                }
                let cp = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                char::from_u32(cp).ok_or_else(|| lone(self, hi))
            }
            0xDC00..=0xDFFF => Err(lone(self, hi)),
            _ => char::from_u32(u32::from(hi)).ok_or_else(|| lone(self, hi)),
        }
    }

    fn number(&mut self) -> Result<Value, JcsError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.syntax("leading zeros are not allowed in numbers"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax("expected a digit")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("expected a digit after the decimal point"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("expected a digit in the exponent"));
            }
            self.digits();
        }
        // The slice holds only ASCII number characters.
        let literal = std::str::from_utf8(&self.input[start..self.pos]).unwrap_or("");
        if integer {
            if let Some(i) = literal
                .parse::<i64>()
                .ok()
                .filter(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER)
            {
                return Ok(Value::Number(Number::from(i)));
            }
            // Beyond ±(2^53−1), an integer literal is judged like any other spelling, on the
            // double it denotes (below): rejected under 10^21, where ECMAScript would print it as
            // an integer, accepted from 10^21 on, where it prints with an exponent.
        }
        let f: f64 = literal.parse().map_err(|_| JcsError::Syntax {
            message: format!("invalid number `{literal}`"),
            at: self.at(start),
        })?;
        if !f.is_finite() {
            return Err(JcsError::NonFinite { at: self.at(start) });
        }
        if is_unsafe_integral(f) {
            return Err(JcsError::IntegerOutOfRange {
                literal: literal.to_owned(),
                at: self.at(start),
            });
        }
        Ok(Value::Number(normalize_double(f).ok_or_else(|| {
            JcsError::NonFinite { at: self.at(start) }
        })?))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// Whether a double would print as an integer literal beyond ±(2^53−1): an integral value with
/// 2^53 − 1 < |f| < 10^21 (from 10^21 on, ECMAScript prints an exponent). Such a literal is what
/// the strict profile rejects on input, so the writer refuses to produce one either: every
/// canonical output re-parses under the strict profile.
fn is_unsafe_integral(f: f64) -> bool {
    f.fract() == 0.0 && f.abs() > MAX_SAFE_INTEGER as f64 && f.abs() < 1e21
}

/// An integral double within the safe range becomes an integer, so `4.0` and `4` are one value.
fn normalize_double(f: f64) -> Option<Number> {
    if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 {
        // Exact: the value is an integer of at most 53 bits. -0.0 becomes 0, as JCS prints it.
        return Some(Number::from(f as i64));
    }
    Number::from_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn canon(s: &str) -> String {
        String::from_utf8(canonicalize(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn sorts_by_utf16_code_units_not_code_points() {
        // U+1F602 (surrogates D83D DE02) sorts before U+FB33 in UTF-16, after it by code point.
        assert_eq!(
            canon("{\"\u{fb33}\":1,\"\u{1f602}\":2}"),
            "{\"\u{1f602}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn plain_len_agrees_with_the_escape_table() {
        let reference = |bytes: &[u8]| {
            bytes
                .iter()
                .position(|&b| NEEDS_ESCAPE[usize::from(b)])
                .unwrap_or(bytes.len())
        };
        // Every byte value at every position of the first two words and the tail, in buffers
        // of plain bytes chosen to sit next to the special values (0x1f/0x20, 0x21/0x23,
        // 0x5b/0x5d, high bytes).
        for filler in [b'a', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xdd, 0xff] {
            for len in [0usize, 1, 7, 8, 9, 16, 19] {
                let plain = vec![filler; len];
                assert_eq!(plain_len(&plain), reference(&plain));
                for at in 0..len {
                    for b in 0u8..=255 {
                        let mut bytes = plain.clone();
                        bytes[at] = b;
                        assert_eq!(plain_len(&bytes), reference(&bytes), "{bytes:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn escapes_minimally() {
        assert_eq!(
            canon(r#""\u0000\u001f\u007f\u2028/\/\"\\\b\f\n\r\t""#),
            "\"\\u0000\\u001f\u{7f}\u{2028}//\\\"\\\\\\b\\f\\n\\r\\t\""
        );
    }

    #[test]
    fn numbers_follow_ecmascript() {
        for (input, want) in [
            ("1E30", "1e+30"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("0.000000000000000000000000001", "1e-27"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1e21", "1e+21"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("333333333.33333329", "333333333.3333333"),
            ("9007199254740991", "9007199254740991"),
            ("-9007199254740991", "-9007199254740991"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ] {
            assert_eq!(canon(input), want, "input {input}");
        }
    }

    fn err(s: &[u8]) -> JcsError {
        parse_strict(s).unwrap_err()
    }

    #[test]
    fn rejects_duplicate_keys_with_pointer() {
        match err(b"{\"a\":{\"b\":1,\n\"b\":2}}") {
            JcsError::DuplicateKey { key, at } => {
                assert_eq!(key, "b");
                assert_eq!(at.pointer, "/a/b");
                assert_eq!((at.line, at.column), (2, 1));
            }
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn members_in_any_order_parse_as_serde_json_does_and_repeats_are_caught() {
        // Increasing, decreasing, mixed, and names that sort differently in bytes and UTF-16.
        for text in [
            r#"{"a":1,"b":{"y":[1,{"q":null,"p":true}],"x":2},"c":"é"}"#,
            r#"{"d":4,"c":3,"b":2,"a":1}"#,
            r#"{"b":1,"a":2,"c":3,"aa":4,"":5}"#,
            "{\"\u{e000}\":1,\"\u{10000}\":2,\"a\":3}",
        ] {
            let ours = parse_strict(text.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
        // A repeated name is found whether the names before it were in order or not, with the
        // pointer and position of the repeat.
        for (text, key, column) in [
            (r#"{"a":1,"b":2,"a":3}"#, "a", 14),
            (r#"{"b":1,"a":2,"b":3}"#, "b", 14),
            (r#"{"a":1,"a":2}"#, "a", 8),
            (r#"{"c":1,"b":2,"a":3,"c":{"x":[]}}"#, "c", 20),
        ] {
            match err(text.as_bytes()) {
                JcsError::DuplicateKey { key: k, at } => {
                    assert_eq!(k, key, "{text}");
                    assert_eq!(at.pointer, format!("/{key}"), "{text}");
                    assert_eq!((at.line, at.column), (1, column), "{text}");
                }
                e => panic!("{text}: unexpected {e:?}"),
            }
        }
        // A syntax error after the members went out of order still names where it is.
        match err(br#"{"b":1,"a":{"x":tru}}"#) {
            JcsError::Syntax { at, .. } => assert_eq!(at.pointer, "/a/x"),
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn rejects_lone_and_reversed_surrogates() {
        for s in [
            r#"["\ud800"]"#,
            r#"["\udc00"]"#,
            r#"["\ud800\u0041"]"#,
            r#"["\ude02\ud83d"]"#,
            r#"["\ud800x"]"#,
        ] {
            match err(s.as_bytes()) {
                JcsError::LoneSurrogate { at, .. } => assert_eq!(at.pointer, "/0", "{s}"),
                e => panic!("{s}: unexpected {e:?}"),
            }
        }
        assert_eq!(canon(r#""\ud83d\ude02""#), "\"\u{1f602}\"");
    }

    #[test]
    fn rejects_unsafe_integers() {
        for s in [
            "9007199254740992",
            "-9007199254740992",
            "18446744073709551616",
            "999999999999999934463",
        ] {
            let body = format!("{{\"n\":[{s}]}}");
            match err(body.as_bytes()) {
                JcsError::IntegerOutOfRange { literal, at } => {
                    assert_eq!(literal, s);
                    assert_eq!(at.pointer, "/n/0");
                }
                e => panic!("{s}: unexpected {e:?}"),
            }
        }
        // A double that would print as such an integer is rejected too, whatever its spelling:
        // its canonical form would not re-parse.
        for s in ["1.2e17", "9007199254740992.0", "-1e20"] {
            assert!(
                matches!(err(s.as_bytes()), JcsError::IntegerOutOfRange { .. }),
                "{s}"
            );
        }
        assert!(matches!(
            canonicalize_value(&json!([-1.2079563324364374e17])),
            Err(JcsError::IntegerOutOfRange { .. })
        ));
        assert_eq!(canon("1e21"), "1e+21");
        // From 10^21 on (as a double), an integer literal prints with an exponent: accepted, like
        // `1e21`, as the double it denotes (docs/evidence-kernel.md).
        for (s, want) in [
            ("1000000000000000000000", "1e+21"),
            ("-1000000000000000000000", "-1e+21"),
            ("999999999999999999999", "1e+21"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
        ] {
            assert_eq!(canon(s), want, "{s}");
        }
        assert!(matches!(
            err(format!("1{}", "0".repeat(400)).as_bytes()),
            JcsError::NonFinite { .. }
        ));
        // Values built in code are checked at write time.
        assert!(matches!(
            canonicalize_value(&json!({"x": 9_007_199_254_740_993u64})),
            Err(JcsError::IntegerOutOfRange { at, .. }) if at.pointer == "/x"
        ));
        assert!(matches!(
            canonicalize_value(&json!([u64::MAX])),
            Err(JcsError::IntegerOutOfRange { .. })
        ));
    }

    #[test]
    fn rejects_non_finite() {
        assert!(matches!(err(b"[1e400]"), JcsError::NonFinite { at } if at.pointer == "/0"));
        assert!(matches!(err(b"[-1e400]"), JcsError::NonFinite { .. }));
        assert!(matches!(err(b"NaN"), JcsError::Syntax { .. }));
        assert!(matches!(err(b"Infinity"), JcsError::Syntax { .. }));
    }

    #[test]
    fn rejects_deep_nesting_at_the_limit() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_strict(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(
            err(deep.as_bytes()),
            JcsError::TooDeep {
                limit: MAX_DEPTH,
                ..
            }
        ));
        // Far deeper input fails the same way without exhausting the stack.
        let very = "[".repeat(1_000_000);
        assert!(matches!(err(very.as_bytes()), JcsError::TooDeep { .. }));
    }

    #[test]
    fn rejects_invalid_utf8_with_position() {
        match err(b"{\"a\":\n \"\xff\"}") {
            JcsError::InvalidUtf8 { at } => {
                assert_eq!(at.offset, 8);
                assert_eq!((at.line, at.column), (2, 3));
            }
            e => panic!("unexpected {e:?}"),
        }
        // An overlong encoding and an encoded surrogate are invalid UTF-8 too.
        assert!(matches!(err(b"\"\xc0\xaf\""), JcsError::InvalidUtf8 { .. }));
        assert!(matches!(
            err(b"\"\xed\xa0\x80\""),
            JcsError::InvalidUtf8 { .. }
        ));
    }

    #[test]
    fn rejects_rfc8259_violations() {
        for s in [
            "",
            " ",
            "[1,]",
            "{\"a\":1,}",
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[+1]",
            "'a'",
            "[\"\t\"]",
            "{a:1}",
            "[1] x",
            "\u{feff}[]",
            "tru",
            "nul",
            "[\"\\x\"]",
            "[\"\\u12\"]",
            "{\"a\" 1}",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
        ] {
            assert!(
                matches!(parse_strict(s.as_bytes()), Err(JcsError::Syntax { .. })),
                "accepted or misclassified {s:?}: {:?}",
                parse_strict(s.as_bytes())
            );
        }
    }

    #[test]
    fn escapes_json_pointer_tokens() {
        match err(br#"{"a/b":{"c~d":[1,{"x":1,"x":2}]}}"#) {
            JcsError::DuplicateKey { at, .. } => assert_eq!(at.pointer, "/a~1b/c~0d/1/x"),
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn is_canonical_detects_whitespace_and_order() {
        assert!(is_canonical(br#"{"a":1,"b":[true,null]}"#).unwrap());
        assert!(!is_canonical(br#"{"b":1,"a":2}"#).unwrap());
        assert!(!is_canonical(br#"{"a": 1}"#).unwrap());
        assert!(!is_canonical(br#"{"a":1.0}"#).unwrap());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-(MAX_SAFE_INTEGER as i64)..=(MAX_SAFE_INTEGER as i64)).prop_map(|i| json!(i)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite() && !is_unsafe_integral(*f))
                .prop_map(|f| Value::Number(normalize_double(f).unwrap())),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonicalization_is_idempotent(v in arb_json()) {
            let once = canonicalize_value(&v).unwrap();
            let twice = canonicalize(&once).unwrap();
            prop_assert_eq!(&once, &twice);
            prop_assert!(is_canonical(&once).unwrap());
        }

        #[test]
        fn parse_of_canonical_equals_value(v in arb_json()) {
            let bytes = canonicalize_value(&v).unwrap();
            prop_assert_eq!(parse_strict(&bytes).unwrap(), v);
        }

        #[test]
        fn agrees_with_serde_json_on_pretty_input(v in arb_json()) {
            let pretty = serde_json::to_vec_pretty(&v).unwrap();
            prop_assert_eq!(canonicalize(&pretty).unwrap(), canonicalize_value(&v).unwrap());
        }

        #[test]
        fn number_formatting_round_trips(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let s = format_number(f).unwrap();
            let back: f64 = s.parse().unwrap();
            prop_assert!(back == f || (f == 0.0 && back == 0.0));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = canonicalize(&bytes);
        }
    }
}
