//! Globs as policy files write them (spec/policy/README.md §4).
//!
//! | pattern | matches |
//! |---|---|
//! | `*` | any run of characters other than `/` (also the empty run) |
//! | `**` | any run of characters, `/` included |
//! | `?` | exactly one character (any, `/` included) |
//! | `[abc]`, `[a-z]` | one character of the class |
//! | `[!a]` | one character not in the class |
//! | anything else | itself (there is no escape character: `\` is literal) |
//!
//! In a class, a `]` right after `[` or `[!` is a member, and a `-` first or last is literal.
//! Matching is case-sensitive, over Unicode scalar values.
//!
//! A pattern is compiled once ([`Glob::new`]) into either a fast form (exact text, prefix,
//! suffix, anything) or a small token list run as a set of states, one step per input character:
//! the cost is bounded by pattern length × input length, never exponential, whatever the pattern.
//!
//! ```
//! use clyra_policy::glob::{Glob, GlobSet};
//!
//! let g = Glob::new("warehouse.*").unwrap();
//! assert!(g.matches("warehouse.dml"));
//! assert!(!g.matches("warehouse/x"));
//! let set = GlobSet::new(["user:*@acme.example", "service:airflow"]).unwrap();
//! assert!(set.matches("user:alice@acme.example"));
//! assert!(!set.matches("user:mallory@evil.example"));
//! ```

use std::fmt;

/// The longest pattern [`Glob::new`] compiles, in characters. The schema caps globs at 256.
pub const MAX_GLOB_CHARS: usize = 1024;

/// Why a pattern is not a glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at character {position} of `{pattern}`")]
pub struct GlobError {
    /// The pattern as written.
    pub pattern: String,
    /// 1-based character position of the problem.
    pub position: usize,
    /// What is wrong.
    pub kind: GlobErrorKind,
}

/// What is wrong with a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobErrorKind {
    /// A `[` without its `]`.
    #[error("unclosed `[`")]
    UnclosedClass,
    /// A range whose end comes before its start, such as `[z-a]`.
    #[error("empty range in class")]
    EmptyRange,
    /// The empty pattern.
    #[error("empty pattern")]
    Empty,
    /// More than [`MAX_GLOB_CHARS`] characters.
    #[error("pattern longer than {MAX_GLOB_CHARS} characters")]
    TooLong,
}

/// A compiled glob.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    matcher: Matcher,
}

#[derive(Clone, PartialEq, Eq)]
enum Matcher {
    /// No metacharacter at all.
    Exact(String),
    /// `**`: everything.
    Everything,
    /// `*`: anything without `/`.
    NoSlash,
    /// `lit**`.
    Prefix(String),
    /// `lit*`.
    PrefixNoSlash(String),
    /// `**lit`.
    Suffix(String),
    /// `*lit`.
    SuffixNoSlash(String),
    /// Literals and stars of one kind: `a*b*c` (`cross_slash` for `**`).
    Segments {
        prefix: String,
        middle: Vec<String>,
        suffix: String,
        cross_slash: bool,
    },
    /// Anything else: a token list run as a state set.
    Tokens(Vec<Token>),
}

#[derive(Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    AnyChar,
    Class(Class),
    Star,
    DoubleStar,
}

#[derive(Clone, PartialEq, Eq)]
struct Class {
    negated: bool,
    /// Inclusive ranges; a single character is `(c, c)`.
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let tokens = tokenize(pattern)?;
        Ok(Glob {
            text: pattern.to_owned(),
            matcher: Matcher::from_tokens(tokens),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the pattern has no metacharacter: it matches only its own text.
    pub fn is_literal(&self) -> bool {
        matches!(self.matcher, Matcher::Exact(_))
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(s) => s == text,
            Matcher::Everything => true,
            Matcher::NoSlash => !text.contains('/'),
            Matcher::Prefix(p) => text.starts_with(p.as_str()),
            Matcher::PrefixNoSlash(p) => text
                .strip_prefix(p.as_str())
                .is_some_and(|rest| !rest.contains('/')),
            Matcher::Suffix(s) => text.ends_with(s.as_str()),
            Matcher::SuffixNoSlash(s) => text
                .strip_suffix(s.as_str())
                .is_some_and(|rest| !rest.contains('/')),
            Matcher::Segments {
                prefix,
                middle,
                suffix,
                cross_slash,
            } => run_segments(prefix, middle, suffix, *cross_slash, text),
            Matcher::Tokens(tokens) => run_tokens(tokens, text),
        }
    }

    /// A conservative, syntactic answer to "does every text this glob's `other` matches also
    /// match `self`?". `true` is always right; `false` may be wrong (the check does not try
    /// hard). Used by lint to find rules hidden behind broader ones.
    pub fn covers(&self, other: &Glob) -> bool {
        if self.text == other.text {
            return true;
        }
        if !matches!(other.matcher, Matcher::Tokens(_) | Matcher::Segments { .. }) {
            return self.covers_simple(other);
        }
        match &self.matcher {
            Matcher::Everything => true,
            Matcher::Prefix(p) => literal_prefix(&other.text).starts_with(p.as_str()),
            _ => false,
        }
    }

    fn covers_simple(&self, other: &Glob) -> bool {
        // `other` is one of the fast forms; describe it as (literal prefix, tail kind, suffix).
        match &self.matcher {
            Matcher::Everything => true,
            Matcher::Exact(_) | Matcher::Tokens(_) | Matcher::Segments { .. } => false,
            Matcher::NoSlash => match &other.matcher {
                Matcher::Exact(s) => !s.contains('/'),
                Matcher::NoSlash => true,
                Matcher::PrefixNoSlash(p) | Matcher::SuffixNoSlash(p) => !p.contains('/'),
                _ => false,
            },
            Matcher::Prefix(p) => match &other.matcher {
                Matcher::Exact(s) | Matcher::Prefix(s) | Matcher::PrefixNoSlash(s) => {
                    s.starts_with(p.as_str())
                }
                _ => p.is_empty(),
            },
            Matcher::PrefixNoSlash(p) => match &other.matcher {
                Matcher::Exact(s) | Matcher::PrefixNoSlash(s) => {
                    s.strip_prefix(p.as_str()).is_some_and(|r| !r.contains('/'))
                }
                _ => false,
            },
            Matcher::Suffix(sfx) => match &other.matcher {
                Matcher::Exact(s) | Matcher::Suffix(s) | Matcher::SuffixNoSlash(s) => {
                    s.ends_with(sfx.as_str())
                }
                _ => false,
            },
            Matcher::SuffixNoSlash(sfx) => match &other.matcher {
                Matcher::Exact(s) | Matcher::SuffixNoSlash(s) => s
                    .strip_suffix(sfx.as_str())
                    .is_some_and(|r| !r.contains('/')),
                _ => false,
            },
        }
    }
}

/// The literal text before the first metacharacter.
fn literal_prefix(pattern: &str) -> &str {
    let end = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    &pattern[..end]
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Glob").field(&self.text).finish()
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Glob {
    type Err = GlobError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Glob::new(s)
    }
}

/// Any of several globs (a policy's `kind: [a, b]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobSet {
    globs: Vec<Glob>,
}

impl GlobSet {
    /// Compiles every pattern; the first bad one is the error.
    pub fn new<I, S>(patterns: I) -> Result<GlobSet, GlobError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let globs = patterns
            .into_iter()
            .map(|p| Glob::new(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GlobSet { globs })
    }

    /// Compiles a policy's one-or-many globs.
    pub fn from_globs(globs: &crate::model::Globs) -> Result<GlobSet, GlobError> {
        GlobSet::new(globs.patterns())
    }

    /// True when any glob matches (so an empty set matches nothing).
    pub fn matches(&self, text: &str) -> bool {
        self.globs.iter().any(|g| g.matches(text))
    }

    /// The globs, in the order given.
    pub fn globs(&self) -> &[Glob] {
        &self.globs
    }

    /// True when no glob is held.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// Conservative: every pattern of `other` is covered by some pattern of `self`
    /// ([`Glob::covers`]).
    pub fn covers(&self, other: &GlobSet) -> bool {
        other
            .globs
            .iter()
            .all(|o| self.globs.iter().any(|s| s.covers(o)))
    }
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, GlobError> {
    let err = |position, kind| GlobError {
        pattern: pattern.to_owned(),
        position,
        kind,
    };
    if pattern.is_empty() {
        return Err(err(1, GlobErrorKind::Empty));
    }
    let chars: Vec<char> = pattern.chars().collect();
    if chars.len() > MAX_GLOB_CHARS {
        return Err(err(MAX_GLOB_CHARS + 1, GlobErrorKind::TooLong));
    }
    let mut tokens = Vec::with_capacity(chars.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    // Any run of stars of length 2 or more is one `**`.
                    while chars.get(i) == Some(&'*') {
                        i += 1;
                    }
                    if tokens.last() == Some(&Token::Star) {
                        tokens.pop();
                    }
                    if tokens.last() != Some(&Token::DoubleStar) {
                        tokens.push(Token::DoubleStar);
                    }
                    continue;
                }
                // `*` next to `**` adds nothing.
                if !matches!(tokens.last(), Some(Token::Star | Token::DoubleStar)) {
                    tokens.push(Token::Star);
                }
            }
            '?' => tokens.push(Token::AnyChar),
            '[' => {
                let start = i;
                let (class, next) =
                    parse_class(&chars, i + 1).map_err(|kind| err(start + 1, kind))?;
                tokens.push(Token::Class(class));
                i = next;
                continue;
            }
            c => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    Ok(tokens)
}

/// Parses a class whose body starts at `i` (just after `[`); returns it and the index after `]`.
fn parse_class(chars: &[char], mut i: usize) -> Result<(Class, usize), GlobErrorKind> {
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(GlobErrorKind::UnclosedClass);
        };
        if c == ']' && !first {
            return Ok((Class { negated, ranges }, i + 1));
        }
        first = false;
        match (chars.get(i + 1), chars.get(i + 2)) {
            (Some('-'), Some(&hi)) if hi != ']' => {
                if hi < c {
                    return Err(GlobErrorKind::EmptyRange);
                }
                ranges.push((c, hi));
                i += 3;
            }
            _ => {
                ranges.push((c, c));
                i += 1;
            }
        }
    }
}

impl Matcher {
    fn from_tokens(tokens: Vec<Token>) -> Matcher {
        let literal = |ts: &[Token]| -> Option<String> {
            ts.iter()
                .map(|t| match t {
                    Token::Char(c) => Some(*c),
                    _ => None,
                })
                .collect()
        };
        if let Some(s) = literal(&tokens) {
            return Matcher::Exact(s);
        }
        match tokens.as_slice() {
            [Token::DoubleStar] => return Matcher::Everything,
            [Token::Star] => return Matcher::NoSlash,
            [rest @ .., Token::DoubleStar] => {
                if let Some(p) = literal(rest) {
                    return Matcher::Prefix(p);
                }
            }
            _ => {}
        }
        match tokens.as_slice() {
            [rest @ .., Token::Star] => {
                if let Some(p) = literal(rest) {
                    return Matcher::PrefixNoSlash(p);
                }
            }
            [Token::DoubleStar, rest @ ..] => {
                if let Some(s) = literal(rest) {
                    return Matcher::Suffix(s);
                }
            }
            _ => {}
        }
        if let [Token::Star, rest @ ..] = tokens.as_slice() {
            if let Some(s) = literal(rest) {
                return Matcher::SuffixNoSlash(s);
            }
        }
        segments(&tokens).unwrap_or(Matcher::Tokens(tokens))
    }
}

/// Literals separated by stars that are all `*` or all `**`, as [`Matcher::Segments`].
fn segments(tokens: &[Token]) -> Option<Matcher> {
    let mut parts: Vec<String> = vec![String::new()];
    let mut kind = None;
    for t in tokens {
        match t {
            Token::Char(c) => parts.last_mut()?.push(*c),
            Token::Star | Token::DoubleStar => {
                let double = matches!(t, Token::DoubleStar);
                if kind.is_some_and(|k| k != double) {
                    return None;
                }
                kind = Some(double);
                parts.push(String::new());
            }
            Token::AnyChar | Token::Class(_) => return None,
        }
    }
    let cross_slash = kind?;
    let suffix = parts.pop()?;
    let mut parts = parts.into_iter();
    let prefix = parts.next()?;
    Some(Matcher::Segments {
        prefix,
        middle: parts.filter(|p| !p.is_empty()).collect(),
        suffix,
        cross_slash,
    })
}

/// Greedy leftmost placement of each literal: exact when every star is of the same kind (an
/// earlier placement leaves every later star a run that is a superset's suffix, never worse).
fn run_segments(prefix: &str, middle: &[String], suffix: &str, cross: bool, text: &str) -> bool {
    let Some(rest) = text.strip_prefix(prefix) else {
        return false;
    };
    let Some(mut rest) = rest.strip_suffix(suffix) else {
        return false;
    };
    for segment in middle {
        let Some(i) = rest.find(segment.as_str()) else {
            return false;
        };
        if !cross && rest[..i].contains('/') {
            return false;
        }
        rest = &rest[i + segment.len()..];
    }
    cross || !rest.contains('/')
}

/// Runs the token list as a set of states: state `i` means "tokens before `i` have matched".
fn run_tokens(tokens: &[Token], text: &str) -> bool {
    if tokens.len() < 64 {
        run_tokens_small(tokens, text)
    } else {
        run_tokens_large(tokens, text)
    }
}

/// [`run_tokens`] for fewer than 64 tokens: the state set is one word.
fn run_tokens_small(tokens: &[Token], text: &str) -> bool {
    let n = tokens.len();
    let mut stars = 0u64;
    for (i, t) in tokens.iter().enumerate() {
        if matches!(t, Token::Star | Token::DoubleStar) {
            stars |= 1 << i;
        }
    }
    // Stars match the empty run; adjacent stars were merged, so one step closes the set.
    let close = |s: u64| s | ((s & stars) << 1);
    let mut cur = close(1);
    for c in text.chars() {
        let mut next = 0u64;
        let mut bits = cur;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            match tokens.get(i) {
                Some(Token::Char(x)) if *x == c => next |= 2 << i,
                Some(Token::AnyChar) => next |= 2 << i,
                Some(Token::Class(class)) if class.matches(c) => next |= 2 << i,
                Some(Token::Star) if c != '/' => next |= 1 << i,
                Some(Token::DoubleStar) => next |= 1 << i,
                _ => {}
            }
        }
        if next == 0 {
            return false;
        }
        cur = close(next);
    }
    cur & (1 << n) != 0
}

/// [`run_tokens`] for long patterns.
fn run_tokens_large(tokens: &[Token], text: &str) -> bool {
    let n = tokens.len();
    // Patterns are at most MAX_GLOB_CHARS tokens: n + 1 states fit in this many words.
    const WORDS: usize = MAX_GLOB_CHARS / 64 + 1;
    let words = n / 64 + 1;
    let mut cur = [0u64; WORDS];
    let mut next = [0u64; WORDS];
    let set = |s: &mut [u64; WORDS], i: usize| {
        if let Some(w) = s.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    };
    let get = |s: &[u64; WORDS], i: usize| s.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0);
    // Stars match the empty run: a state before a star also stands after it.
    let close = |s: &mut [u64; WORDS]| {
        for (i, t) in tokens.iter().enumerate() {
            if matches!(t, Token::Star | Token::DoubleStar) && get(s, i) {
                set(s, i + 1);
            }
        }
    };
    set(&mut cur, 0);
    close(&mut cur);
    for c in text.chars() {
        next[..words].fill(0);
        let mut any = false;
        for (i, t) in tokens.iter().enumerate() {
            if !get(&cur, i) {
                continue;
            }
            let (stay, advance) = match t {
                Token::Char(x) => (false, *x == c),
                Token::AnyChar => (false, true),
                Token::Class(class) => (false, class.matches(c)),
                Token::Star => (c != '/', false),
                Token::DoubleStar => (true, false),
            };
            if stay {
                set(&mut next, i);
                any = true;
            }
            if advance {
                set(&mut next, i + 1);
                any = true;
            }
        }
        if !any {
            return false;
        }
        close(&mut next);
        std::mem::swap(&mut cur, &mut next);
    }
    get(&cur, n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn literal_and_fast_forms() {
        assert!(m("tool.call", "tool.call"));
        assert!(!m("tool.call", "tool.calls"));
        assert!(m("**", ""));
        assert!(m("**", "a/b/c"));
        assert!(m("*", "abc"));
        assert!(!m("*", "a/b"));
        assert!(m("warehouse.*", "warehouse.dml"));
        assert!(!m("warehouse.*", "warehouse.dml/x"));
        assert!(m("POST /v1/**", "POST /v1/orders/7"));
        assert!(!m("POST /v1/**", "GET /v1/orders"));
        assert!(m("*@acme.example", "alice@acme.example"));
        assert!(!m("*@acme.example", "a/b@acme.example"));
        assert!(m("**.sql", "models/a/b.sql"));
    }

    #[test]
    fn stars_and_classes() {
        assert!(m("user:*@acme.example", "user:alice@acme.example"));
        assert!(m("user:*@acme.example", "user:@acme.example"));
        assert!(!m("user:*@acme.example", "user:a/b@acme.example"));
        assert!(m("a/**/z", "a/b/c/z"));
        assert!(m("a/**/z", "a//z"));
        assert!(!m("a/**/z", "a/z"));
        assert!(m("a?c", "abc"));
        assert!(m("a?c", "a/c"));
        assert!(!m("a?c", "ac"));
        assert!(m("[abc]x", "bx"));
        assert!(!m("[abc]x", "dx"));
        assert!(m("v[0-9]", "v7"));
        assert!(!m("v[0-9]", "va"));
        assert!(m("[!a]b", "cb"));
        assert!(!m("[!a]b", "ab"));
        assert!(m("[]]", "]"));
        assert!(m("[!]]", "a"));
        assert!(m("[a-]", "-"));
        assert!(m("x*y*z", "x--y--z"));
        assert!(!m("x*y*z", "x--y--"));
        assert!(m("é*", "été"));
        assert!(m("\\*", "\\anything"));
        assert!(m("a***b", "a/x/b"));
        assert!(m("*.*", "a.b"));
        assert!(!m("*.*", "ab"));
    }

    #[test]
    fn segment_patterns_agree_with_the_state_machine() {
        let cases = [
            ("user:*@acme.example", "user:alice@acme.example"),
            ("user:*@acme.example", "user:a/b@acme.example"),
            ("a*b*c", "aXbYc"),
            ("a*b*c", "abc"),
            ("a*b*c", "ab/c"),
            ("a**b**c", "a/x/b/y/c"),
            ("ab*ba", "aba"),
            ("*a*", "/a"),
            ("*a*", "a/"),
            ("x**y", "x/y"),
            ("x*y*", "xy/"),
        ];
        for (p, t) in cases {
            let g = Glob::new(p).unwrap();
            assert!(matches!(g.matcher, Matcher::Segments { .. }), "{p}");
            let tokens = tokenize(p).unwrap();
            assert_eq!(g.matches(t), run_tokens(&tokens, t), "{p} vs {t}");
            assert_eq!(
                run_tokens_small(&tokens, t),
                run_tokens_large(&tokens, t),
                "{p} vs {t}"
            );
        }
        assert!(m("user:*@acme.example", "user:alice@acme.example"));
        assert!(!m("user:*@acme.example", "user:a/b@acme.example"));
        assert!(!m("ab*ba", "aba"));
        // Mixed star kinds are not segments: greedy placement would be wrong here.
        let g = Glob::new("**a*b").unwrap();
        assert!(matches!(g.matcher, Matcher::Tokens(_)));
        assert!(g.matches("a/ab"));
    }

    /// The obvious exponential matcher, as a reference.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => {
                let rest = &p[2..];
                (0..=t.len()).any(|k| reference(rest, &t[k..]))
            }
            Some('*') => {
                let rest = &p[1..];
                (0..=t.len())
                    .take_while(|&k| k == 0 || t[k - 1] != '/')
                    .any(|k| reference(rest, &t[k..]))
            }
            Some('?') => !t.is_empty() && reference(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && reference(&p[1..], &t[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_reference(p in "[ab/*?]{1,10}", t in "[ab/]{0,10}") {
            // The reference knows no classes and treats runs of 3+ stars as `**` then `*`,
            // which matches the same texts.
            let chars: Vec<char> = p.chars().collect();
            let text: Vec<char> = t.chars().collect();
            let g = Glob::new(&p).unwrap();
            proptest::prop_assert_eq!(g.matches(&t), reference(&chars, &text), "{} vs {}", p, t);
            let tokens = tokenize(&p).unwrap();
            proptest::prop_assert_eq!(run_tokens_small(&tokens, &t), run_tokens_large(&tokens, &t));
        }
    }

    #[test]
    fn bad_patterns() {
        let e = Glob::new("ab[cd").unwrap_err();
        assert_eq!(e.kind, GlobErrorKind::UnclosedClass);
        assert_eq!(e.position, 3);
        assert_eq!(e.to_string(), "unclosed `[` at character 3 of `ab[cd`");
        assert_eq!(
            Glob::new("[z-a]").unwrap_err().kind,
            GlobErrorKind::EmptyRange
        );
        assert_eq!(Glob::new("").unwrap_err().kind, GlobErrorKind::Empty);
        assert_eq!(
            Glob::new("[]").unwrap_err().kind,
            GlobErrorKind::UnclosedClass
        );
        assert_eq!(
            Glob::new(&"a".repeat(MAX_GLOB_CHARS + 1)).unwrap_err().kind,
            GlobErrorKind::TooLong
        );
    }

    #[test]
    fn pathological_patterns_stay_linear() {
        let p = "*a".repeat(100) + "b";
        let g = Glob::new(&p).unwrap();
        let text = "a".repeat(10_000);
        let start = std::time::Instant::now();
        assert!(!g.matches(&text));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        let g = Glob::new(&"**a".repeat(300)).unwrap();
        assert!(g.matches(&"a".repeat(300)));
        assert!(!g.matches(&"a".repeat(299)));
    }

    #[test]
    fn sets() {
        let s = GlobSet::new(["a", "b*"]).unwrap();
        assert!(s.matches("a") && s.matches("bee") && !s.matches("c"));
        assert!(!GlobSet::default().matches("a"));
        assert!(GlobSet::new(["ok", "[bad"]).is_err());
    }

    #[test]
    fn covering() {
        let c = |a: &str, b: &str| Glob::new(a).unwrap().covers(&Glob::new(b).unwrap());
        assert!(c("**", "a/[bc]*"));
        assert!(c("*", "tool.call"));
        assert!(!c("*", "a/b"));
        assert!(c("*", "tool.*"));
        assert!(!c("*", "a?"));
        assert!(c("warehouse.*", "warehouse.dml"));
        assert!(!c("warehouse.*", "warehouse.a/b"));
        assert!(c("POST /v1/**", "POST /v1/orders/*"));
        assert!(c("POST /v1/**", "POST /v1/[ab]"));
        assert!(c("x[ab]", "x[ab]"));
        assert!(!c("x[ab]", "xa"));
        assert!(!c("tool.call", "tool.*"));
        assert!(c("*@acme.example", "alice@acme.example"));
        let s = |v: &[&str]| GlobSet::new(v).unwrap();
        assert!(s(&["a", "b"]).covers(&s(&["b"])));
        assert!(!s(&["a"]).covers(&s(&["a", "b"])));
    }
}
