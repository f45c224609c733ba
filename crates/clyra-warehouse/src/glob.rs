//! Table globs: `*` matches any run of characters (dots included), `?` one character, anything
//! else itself. Matched against a table's key, `schema.table` (see [`crate::snapshot::table_key`]).

/// Whether `name` matches `glob`. Linear in practice: the classic two-pointer algorithm with one
/// backtrack point.
pub fn matches(glob: &str, name: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut gi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match g.get(gi) {
            Some('*') => {
                star = Some((gi, ni));
                gi += 1;
            }
            Some(c) if *c == '?' || Some(c) == n.get(ni) => {
                gi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sg, sn)) => {
                    gi = sg + 1;
                    ni = sn + 1;
                    star = Some((sg, sn + 1));
                }
                None => return false,
            },
        }
    }
    g[gi.min(g.len())..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("public.*", "public.orders"));
        assert!(matches("*.orders", "sales.orders"));
        assert!(matches("public.order?", "public.orders"));
        assert!(matches("*", "a.b"));
        assert!(matches("a*b*c", "a.xbyc"));
        assert!(matches("public.orders", "public.orders"));
        assert!(!matches("public.orders", "public.orders2"));
        assert!(!matches("public.*", "sales.orders"));
        assert!(!matches("?", ""));
        assert!(!matches("a*b", "a.c"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("é*", "éa.b"));
    }
}
