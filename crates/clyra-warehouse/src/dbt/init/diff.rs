//! Unified diffs of the text files `clyra dbt init` edits, for `--dry-run` and the JSON report.
//!
//! The edits are small insertions into small files, so the common head and tail are trimmed
//! first and only the middle goes through a longest-common-subsequence table (bounded; beyond
//! the bound the middle is shown as removed and added).

/// The largest middle (old lines × new lines) compared line by line.
const MAX_CELLS: usize = 4_000_000;
/// Lines of context around each change.
const CONTEXT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same(usize, usize),
    Del(usize),
    Add(usize),
}

/// Splits keeping each line's ending, so that a changed ending or final newline shows.
fn lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

/// A unified diff from `old` to `new` (`None`: the file does not exist), with `---`/`+++` headers
/// naming `path`. Empty when the texts are equal.
pub fn unified(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    let a = lines(old.unwrap_or_default());
    let b = lines(new.unwrap_or_default());
    if old == new {
        return String::new();
    }
    let ops = diff_ops(&a, &b);
    let mut out = format!(
        "--- {}\n+++ {}\n",
        if old.is_some() {
            format!("a/{path}")
        } else {
            "/dev/null".to_owned()
        },
        if new.is_some() {
            format!("b/{path}")
        } else {
            "/dev/null".to_owned()
        }
    );
    // Group the ops into hunks: changes closer than 2×CONTEXT lines share one.
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Same(..)))
        .map(|(i, _)| i)
        .collect();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for &i in &changed {
        match groups.last_mut() {
            Some((_, end)) if i <= *end + 2 * CONTEXT + 1 => *end = i,
            _ => groups.push((i, i)),
        }
    }
    for (first, last) in groups {
        let start = first.saturating_sub(CONTEXT);
        let stop = (last + CONTEXT + 1).min(ops.len());
        let slice = ops.get(start..stop).unwrap_or_default();
        let (mut a_start, mut b_start) = (None, None);
        let (mut a_len, mut b_len) = (0usize, 0usize);
        for op in slice {
            match *op {
                Op::Same(i, j) => {
                    a_start.get_or_insert(i);
                    b_start.get_or_insert(j);
                    a_len += 1;
                    b_len += 1;
                }
                Op::Del(i) => {
                    a_start.get_or_insert(i);
                    a_len += 1;
                }
                Op::Add(j) => {
                    b_start.get_or_insert(j);
                    b_len += 1;
                }
            }
        }
        // Where a side has no lines in the hunk, its position is the line before it.
        let a_pos = position(&ops, start, true);
        let b_pos = position(&ops, start, false);
        let a_from = a_start.map_or(a_pos, |s| s + 1);
        let b_from = b_start.map_or(b_pos, |s| s + 1);
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(a_from, a_len),
            range(b_from, b_len)
        ));
        for op in slice {
            let (mark, text) = match *op {
                Op::Same(i, _) => (' ', a.get(i).copied().unwrap_or_default()),
                Op::Del(i) => ('-', a.get(i).copied().unwrap_or_default()),
                Op::Add(j) => ('+', b.get(j).copied().unwrap_or_default()),
            };
            out.push(mark);
            let body = text.strip_suffix('\n').unwrap_or(text);
            let body = body.strip_suffix('\r').unwrap_or(body);
            out.push_str(body);
            out.push('\n');
            if !text.ends_with('\n') {
                out.push_str("\\ No newline at end of file\n");
            }
        }
    }
    out
}

/// The 0-based count of lines on one side before the hunk (for empty sides: `-0,0` / `+N,0`).
fn position(ops: &[Op], start: usize, old: bool) -> usize {
    ops.get(..start)
        .unwrap_or_default()
        .iter()
        .filter(|op| match op {
            Op::Same(..) => true,
            Op::Del(_) => old,
            Op::Add(_) => !old,
        })
        .count()
}

fn range(from: usize, len: usize) -> String {
    if len == 1 {
        format!("{from}")
    } else {
        format!("{from},{len}")
    }
}

fn diff_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a
        .get(head..)
        .unwrap_or_default()
        .iter()
        .rev()
        .zip(b.get(head..).unwrap_or_default().iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let am = a.get(head..a.len() - tail).unwrap_or_default();
    let bm = b.get(head..b.len() - tail).unwrap_or_default();
    let mut ops: Vec<Op> = (0..head).map(|i| Op::Same(i, i)).collect();
    if am.len().saturating_mul(bm.len()) <= MAX_CELLS {
        // lcs[i][j]: the LCS length of am[i..] and bm[j..].
        let w = bm.len() + 1;
        let mut lcs = vec![0u32; (am.len() + 1) * w];
        for i in (0..am.len()).rev() {
            for j in (0..bm.len()).rev() {
                let v = if am.get(i) == bm.get(j) {
                    lcs.get((i + 1) * w + j + 1).copied().unwrap_or(0) + 1
                } else {
                    let down = lcs.get((i + 1) * w + j).copied().unwrap_or(0);
                    let right = lcs.get(i * w + j + 1).copied().unwrap_or(0);
                    down.max(right)
                };
                if let Some(c) = lcs.get_mut(i * w + j) {
                    *c = v;
                }
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < am.len() || j < bm.len() {
            if i < am.len() && j < bm.len() && am.get(i) == bm.get(j) {
                ops.push(Op::Same(head + i, head + j));
                i += 1;
                j += 1;
            } else if i < am.len()
                && (j == bm.len()
                    || lcs.get((i + 1) * w + j).copied().unwrap_or(0)
                        >= lcs.get(i * w + j + 1).copied().unwrap_or(0))
            {
                ops.push(Op::Del(head + i));
                i += 1;
            } else {
                ops.push(Op::Add(head + j));
                j += 1;
            }
        }
    } else {
        ops.extend((0..am.len()).map(|i| Op::Del(head + i)));
        ops.extend((0..bm.len()).map(|j| Op::Add(head + j)));
    }
    let (a_tail, b_tail) = (a.len() - tail, b.len() - tail);
    ops.extend((0..tail).map(|k| Op::Same(a_tail + k, b_tail + k)));
    ops
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::unified;

    #[test]
    fn insertion_in_the_middle_has_context_and_ranges() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nX\ne\nf\ng\nh\n";
        assert_eq!(
            unified("f.yml", Some(old), Some(new)),
            "--- a/f.yml\n+++ b/f.yml\n@@ -2,6 +2,7 @@\n b\n c\n d\n+X\n e\n f\n g\n"
        );
    }

    #[test]
    fn equal_texts_give_nothing() {
        assert_eq!(unified("f", Some("a\n"), Some("a\n")), "");
    }

    #[test]
    fn new_file_and_missing_final_newline() {
        assert_eq!(
            unified("p.yml", None, Some("x\ny")),
            "--- /dev/null\n+++ b/p.yml\n@@ -0,0 +1,2 @@\n+x\n+y\n\\ No newline at end of file\n"
        );
        assert_eq!(
            unified("p.yml", Some("x"), Some("x\ny")),
            "--- a/p.yml\n+++ b/p.yml\n@@ -1 +1,2 @@\n-x\n\\ No newline at end of file\n+x\n+y\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn crlf_lines_show_without_the_carriage_return() {
        assert_eq!(
            unified("f", Some("a\r\nb\r\n"), Some("a\r\nc\r\nb\r\n")),
            "--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n a\n+c\n b\n"
        );
    }

    #[test]
    fn far_apart_changes_make_two_hunks() {
        let old: String = (0..20).map(|i| format!("{i}\n")).collect();
        let new = old.replace("\n2\n", "\n2\nA\n").replace("17\n", "17\nB\n");
        let d = unified("f", Some(&old), Some(&new));
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("@@ -1,6 +1,7 @@\n"), "{d}");
        assert!(
            d.contains("@@ -16,5 +17,6 @@\n 15\n 16\n 17\n+B\n 18\n 19\n"),
            "{d}"
        );
    }
}
