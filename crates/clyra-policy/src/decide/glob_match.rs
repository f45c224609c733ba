//! PROVISIONAL glob matcher for the decision engine: to be replaced by `crate::glob` at merge.
//!
//! The engine reaches globs only through [`compile`] (in `decide.rs`, `compile_glob`), so swapping
//! this module for the shared `crate::glob::Glob` is a one-line change there.
//!
//! Semantics (spec/policy/README.md §4): `*` matches any run of characters other than `/`, `**`
//! any run, `?` one character, `[abc]` / `[a-z]` / `[!a]` a class; everything else is literal.
//! A `[` without its closing `]` is an error.

/// A compiled glob.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    pattern: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard: plain equality.
    Exact,
    /// `prefix*` (`cross` false) or `prefix**` (`cross` true).
    Prefix { prefix: String, cross: bool },
    /// Anything else.
    General(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    Any,
    Star,
    DoubleStar,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

/// Why a pattern is not a glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} in glob `{pattern}`")]
pub(crate) struct GlobError {
    pub(crate) pattern: String,
    pub(crate) message: String,
}

impl Glob {
    /// Compiles `pattern`.
    pub(crate) fn new(pattern: &str) -> Result<Glob, GlobError> {
        let tokens = tokenize(pattern)?;
        let wild_at = tokens.iter().position(|t| !matches!(t, Token::Char(_)));
        let kind = match wild_at {
            None => Kind::Exact,
            Some(i)
                if i + 1 == tokens.len()
                    && matches!(tokens[i], Token::Star | Token::DoubleStar) =>
            {
                Kind::Prefix {
                    prefix: pattern_prefix(&tokens[..i]),
                    cross: tokens[i] == Token::DoubleStar,
                }
            }
            Some(_) => Kind::General(tokens),
        };
        Ok(Glob {
            pattern: pattern.to_owned(),
            kind,
        })
    }

    /// Whether `text` matches the whole pattern.
    pub(crate) fn matches(&self, text: &str) -> bool {
        match &self.kind {
            Kind::Exact => self.pattern == text,
            Kind::Prefix { prefix, cross } => text
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| *cross || !rest.contains('/')),
            Kind::General(tokens) => matches_tokens(tokens, text),
        }
    }
}

fn pattern_prefix(tokens: &[Token]) -> String {
    tokens
        .iter()
        .filter_map(|t| match t {
            Token::Char(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, GlobError> {
    let err = |message: &str| GlobError {
        pattern: pattern.to_owned(),
        message: message.to_owned(),
    };
    if pattern.is_empty() {
        return Err(err("empty pattern"));
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    i += 2;
                    // `***` and longer are one `**`.
                    while chars.get(i) == Some(&'*') {
                        i += 1;
                    }
                    tokens.push(Token::DoubleStar);
                } else {
                    i += 1;
                    tokens.push(Token::Star);
                }
                continue;
            }
            '?' => tokens.push(Token::Any),
            '[' => {
                let mut j = i + 1;
                let negated = chars.get(j) == Some(&'!');
                if negated {
                    j += 1;
                }
                let mut items = Vec::new();
                loop {
                    let Some(&c) = chars.get(j) else {
                        return Err(err("`[` without a closing `]`"));
                    };
                    if c == ']' {
                        break;
                    }
                    if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|&e| e != ']')
                    {
                        let end = chars[j + 2];
                        if end < c {
                            return Err(err(&format!("reversed range `{c}-{end}`")));
                        }
                        items.push((c, end));
                        j += 3;
                    } else {
                        items.push((c, c));
                        j += 1;
                    }
                }
                if items.is_empty() {
                    return Err(err("empty class `[]`"));
                }
                tokens.push(Token::Class { negated, items });
                i = j + 1;
                continue;
            }
            c => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    Ok(tokens)
}

fn token_accepts(token: &Token, c: char) -> bool {
    match token {
        Token::Char(p) => *p == c,
        Token::Any => true,
        Token::Class { negated, items } => {
            items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
        Token::Star | Token::DoubleStar => false,
    }
}

/// NFA simulation: the set of token positions reachable after each character. Linear in
/// `tokens × text`, no backtracking blow-up.
fn matches_tokens(tokens: &[Token], text: &str) -> bool {
    let n = tokens.len();
    let mut current = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    current[0] = true;
    close(tokens, &mut current);
    for c in text.chars() {
        next.iter_mut().for_each(|s| *s = false);
        let mut any = false;
        for i in 0..n {
            if !current[i] {
                continue;
            }
            match &tokens[i] {
                Token::Star if c != '/' => {
                    next[i] = true;
                    any = true;
                }
                Token::Star => {}
                Token::DoubleStar => {
                    next[i] = true;
                    any = true;
                }
                t => {
                    if token_accepts(t, c) {
                        next[i + 1] = true;
                        any = true;
                    }
                }
            }
        }
        if !any {
            return false;
        }
        close(tokens, &mut next);
        std::mem::swap(&mut current, &mut next);
    }
    current[n]
}

/// Stars match the empty run: a state on a star also stands on the token after it.
fn close(tokens: &[Token], states: &mut [bool]) {
    for i in 0..tokens.len() {
        if states[i] && matches!(tokens[i], Token::Star | Token::DoubleStar) {
            states[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn literals() {
        assert!(m("warehouse.dml", "warehouse.dml"));
        assert!(!m("warehouse.dml", "warehouse.ddl"));
        assert!(!m("warehouse.dml", "warehouse.dmlx"));
        assert!(m("a\\b", "a\\b"));
    }

    #[test]
    fn star_does_not_cross_slash() {
        assert!(m("warehouse.*", "warehouse.dml"));
        assert!(m("warehouse.*", "warehouse."));
        assert!(!m("warehouse.*", "warehouse.dml/x"));
        assert!(m("POST /v1/*", "POST /v1/orders"));
        assert!(!m("POST /v1/*", "POST /v1/orders/7"));
        assert!(m("*", ""));
        assert!(!m("*", "a/b"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "ab/bc"));
        assert!(m("*@acme.example", "user:alice@acme.example"));
        assert!(m("user:*@acme.example", "user:alice@acme.example"));
        assert!(!m("user:*@acme.example", "user:alice@evil.example"));
    }

    #[test]
    fn double_star_crosses_slash() {
        assert!(m("POST /v1/**", "POST /v1/orders/7/items"));
        assert!(m("**", "a/b/c"));
        assert!(m("a/**/z", "a/b/c/z"));
        assert!(m("a/**/z", "a//z"));
        assert!(!m("a/**/z", "a/z"));
        assert!(m("a**z", "a/z"));
        assert!(m("***", "x/y"));
    }

    #[test]
    fn question_mark_and_classes() {
        assert!(m("v?", "v1"));
        assert!(!m("v?", "v"));
        assert!(!m("v?", "v12"));
        assert!(m("v[12]", "v2"));
        assert!(!m("v[12]", "v3"));
        assert!(m("v[a-c]x", "vbx"));
        assert!(!m("v[a-c]x", "vdx"));
        assert!(m("v[!a]", "vb"));
        assert!(!m("v[!a]", "va"));
        assert!(m("[!a-c]*", "dog"));
        assert!(m("[-a]", "-"));
        assert!(m("[a-]", "-"));
        assert!(m("é?", "éü"));
    }

    #[test]
    fn errors() {
        assert!(Glob::new("").is_err());
        assert!(Glob::new("[abc").is_err());
        assert!(Glob::new("[]").is_err());
        assert!(Glob::new("[z-a]").is_err());
        let e = Glob::new("x[").unwrap_err();
        assert!(e.to_string().contains("x["), "{e}");
    }

    #[test]
    fn no_exponential_backtracking() {
        let p = "*a*a*a*a*a*a*a*a*a*a*b";
        let t = "a".repeat(5000);
        assert!(!m(p, &t));
    }

    #[test]
    fn fast_paths_agree_with_the_general_matcher() {
        for (p, t) in [
            ("abc*", "abcdef"),
            ("abc*", "abc/def"),
            ("abc**", "abc/def"),
            ("abc", "abc"),
            ("abc", "abd"),
        ] {
            let general = matches_tokens(&tokenize(p).unwrap(), t);
            assert_eq!(m(p, t), general, "{p} vs {t}");
        }
    }

    /// A deliberately naive reference: backtracking over the spec's wording.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => {
                let rest = &p[2..];
                (0..=t.len()).any(|i| reference(rest, &t[i..]))
            }
            Some('*') => {
                let rest = &p[1..];
                (0..=t.len())
                    .take_while(|&i| i == 0 || t[i - 1] != '/')
                    .any(|i| reference(rest, &t[i..]))
            }
            Some('?') => !t.is_empty() && reference(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && reference(&p[1..], &t[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_a_naive_reference(
            p in "[ab/*?]{1,8}",
            t in "[ab/]{0,10}",
        ) {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            proptest::prop_assert_eq!(m(&p, &t), reference(&pc, &tc), "pattern {:?} text {:?}", p, t);
        }

        #[test]
        fn never_panics(p in "\\PC{0,12}", t in "\\PC{0,12}") {
            if let Ok(g) = Glob::new(&p) {
                let _ = g.matches(&t);
            }
        }
    }
}
