//! A private glob matcher for approver patterns, spec/policy/README.md §4.
//!
//! REPLACE AT MERGE: `crate::glob` (written in parallel) is the policy's one glob implementation;
//! when it lands, [`matches`] becomes a call to it and this file goes away. Nothing else in
//! `approvals` matches globs.
//!
//! Semantics (§4): `*` matches any run of characters other than `/`, `**` any run, `?` one
//! character, `[abc]` and `[a-z]` a class; everything else is literal. A `[` without its `]` is
//! literal. Matching is over characters, case-sensitive, anchored at both ends.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run without `/`.
    Star,
    /// `**`: any run.
    StarStar,
    /// `?`: one character.
    Any,
    /// `[...]`: one character in the listed ranges (single characters are ranges of one).
    Class(Vec<(char, char)>),
}

fn compile(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    out.push(Token::StarStar);
                    i += 2;
                } else {
                    out.push(Token::Star);
                    i += 1;
                }
            }
            '?' => {
                out.push(Token::Any);
                i += 1;
            }
            '[' => match class(&chars[i + 1..]) {
                Some((ranges, used)) => {
                    out.push(Token::Class(ranges));
                    i += 1 + used;
                }
                None => {
                    out.push(Token::Literal('['));
                    i += 1;
                }
            },
            c => {
                out.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    out
}

/// Parses the inside of a class after `[`; returns the ranges and the characters consumed,
/// including the closing `]`. A `]` right after `[` is a member, not the end.
fn class(rest: &[char]) -> Option<(Vec<(char, char)>, usize)> {
    let mut ranges = Vec::new();
    let mut i = 0;
    loop {
        let c = *rest.get(i)?;
        if c == ']' && i > 0 {
            return Some((ranges, i + 1));
        }
        if rest.get(i + 1) == Some(&'-') && rest.get(i + 2).is_some_and(|e| *e != ']') {
            let end = rest[i + 2];
            ranges.push((c, end));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

/// Whether `text` matches `pattern` (the one entry point; see the module note).
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let tokens = compile(pattern);
    let text: Vec<char> = text.chars().collect();
    // reach[j]: the first i tokens can match text[..j]. One row per token: O(tokens × text).
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for token in &tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            Token::Star | Token::StarStar => {
                let crosses = matches!(token, Token::StarStar);
                let mut open = false;
                for j in 0..=text.len() {
                    if reach[j] {
                        open = true;
                    }
                    next[j] = open;
                    if open && j < text.len() && !crosses && text[j] == '/' {
                        open = false;
                    }
                }
            }
            _ => {
                for j in 0..text.len() {
                    if reach[j] && single(token, text[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[text.len()]
}

fn single(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::Any => true,
        Token::Class(ranges) => ranges.iter().any(|(a, b)| *a <= c && c <= *b),
        Token::Star | Token::StarStar => false,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn spec_semantics() {
        assert!(matches("user:*@acme.example", "user:alice@acme.example"));
        assert!(!matches(
            "user:*@acme.example",
            "user:alice@acme.example.evil"
        ));
        assert!(!matches("user:*@acme.example", "service:x@acme.example"));
        assert!(matches(
            "user:alice@acme.example",
            "user:alice@acme.example"
        ));
        assert!(!matches(
            "user:alice@acme.example",
            "user:alice@acme.examplx"
        ));
        // `*` stops at `/`, `**` does not.
        assert!(!matches("team/*", "team/a/b"));
        assert!(matches("team/**", "team/a/b"));
        assert!(matches("team/*", "team/"));
        assert!(matches("**", ""));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("v[0-9]", "v7"));
        assert!(!matches("v[0-9]", "vx"));
        assert!(matches("[ab]x", "bx"));
        assert!(matches("[]]", "]"));
        // An unclosed class is a literal `[`.
        assert!(matches("a[b", "a[b"));
        assert!(matches("*.*", "a.b"));
        assert!(matches("é*", "été"));
        assert!(!matches("", "x"));
        assert!(matches("", ""));
    }

    #[test]
    fn long_inputs_stay_fast() {
        let text = "a".repeat(256);
        let pattern = format!("{}b", "*a".repeat(100));
        assert!(!matches(&pattern, &text));
    }
}
