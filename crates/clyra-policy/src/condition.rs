//! Rule conditions (`when`): CEL expressions, compiled safely.
//!
//! The CEL parser is recursive and its frames are large (an unoptimized build overflows a 2 MiB
//! thread stack at about a dozen nested parentheses), and a stack overflow aborts the process:
//! no error can be reported. So a condition is checked before it is parsed ([`MAX_LEN`]
//! characters, brackets nested at most [`MAX_NESTING`] deep) and parsed on a thread of its own
//! with a [`COMPILE_STACK_BYTES`] stack; its syntax tree must then be at most [`MAX_AST_DEPTH`]
//! deep, so that walking and evaluating it stays shallow on any thread.
//!
//! [`compile`] gives the program for evaluation; [`check_all`] checks many conditions (on one
//! thread) and also reports variables the decision context does not have ([`CEL_VARIABLES`]).

use cel::common::ast::{EntryExpr, Expr, IdedExpr};

/// The variables a condition may name (spec/policy/README.md §4).
pub const CEL_VARIABLES: &[&str] = &[
    "action",
    "kind",
    "tenant",
    "actor",
    "route",
    "tool",
    "payload",
    "warehouse",
    "activation",
    "detections",
    "labels",
    "now",
];

/// CEL's type denotations, which parse as identifiers (`type(x) == string`).
const CEL_TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// The longest condition, in characters (the schema's `maxLength`).
pub const MAX_LEN: usize = 8192;

/// The deepest nesting of `()`, `[]` and `{}` in a condition.
pub const MAX_NESTING: usize = 32;

/// The deepest syntax tree a condition may have.
pub const MAX_AST_DEPTH: usize = 100;

/// The stack of the thread conditions are parsed on.
pub const COMPILE_STACK_BYTES: usize = 64 << 20;

/// What is wrong with a condition. Positions are 1-based line and column within the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionProblem {
    /// Longer than [`MAX_LEN`].
    #[error("the condition is longer than {MAX_LEN} characters")]
    TooLong,
    /// Brackets nested deeper than [`MAX_NESTING`].
    #[error(
        "brackets nest deeper than {MAX_NESTING} levels (at {line}:{column} of the expression)"
    )]
    TooDeep {
        /// Line of the bracket that went too deep.
        line: usize,
        /// Column of that bracket.
        column: usize,
    },
    /// A syntax tree deeper than [`MAX_AST_DEPTH`] (a very long chain of operators).
    #[error("the condition is too complex: its syntax tree is deeper than {MAX_AST_DEPTH}")]
    TooComplex,
    /// Not CEL.
    #[error("{message} (at {line}:{column} of the expression)")]
    Syntax {
        /// The parser's message.
        message: String,
        /// Line.
        line: usize,
        /// Column.
        column: usize,
        /// How many more errors the parser found.
        more: usize,
    },
    /// A name that is not one of [`CEL_VARIABLES`] (nor bound by a macro such as `exists`).
    #[error("unknown variable `{name}` (at {line}:{column} of the expression)")]
    UnknownVariable {
        /// The name.
        name: String,
        /// Line.
        line: usize,
        /// Column.
        column: usize,
    },
    /// The parser could not run (no thread could be started, or it failed).
    #[error("the condition could not be checked: {0}")]
    Internal(String),
}

/// Compiles a condition for evaluation.
pub fn compile(expr: &str) -> Result<cel::Program, ConditionProblem> {
    pre_check(expr)?;
    let expr = expr.to_owned();
    on_big_stack(move || {
        let program = parse(&expr)?;
        if depth(program.expression(), 0) > MAX_AST_DEPTH {
            return Err(ConditionProblem::TooComplex);
        }
        Ok(program)
    })?
}

/// Checks conditions without keeping them: every problem of each, in order, including unknown
/// variables. All are parsed on one thread.
pub fn check_all(exprs: &[&str]) -> Vec<Vec<ConditionProblem>> {
    let owned: Vec<String> = exprs.iter().map(|e| (*e).to_owned()).collect();
    let run = move || owned.iter().map(|e| check(e)).collect::<Vec<_>>();
    match on_big_stack(run) {
        Ok(all) => all,
        Err(problem) => exprs.iter().map(|_| vec![problem.clone()]).collect(),
    }
}

fn check(expr: &str) -> Vec<ConditionProblem> {
    if let Err(p) = pre_check(expr) {
        return vec![p];
    }
    let program = match parse(expr) {
        Ok(p) => p,
        Err(p) => return vec![p],
    };
    if depth(program.expression(), 0) > MAX_AST_DEPTH {
        return vec![ConditionProblem::TooComplex];
    }
    let mut unknown = Vec::new();
    free_identifiers(program.expression(), &mut Vec::new(), &mut unknown);
    unknown.sort_by_key(|(_, id)| *id);
    let mut out: Vec<ConditionProblem> = Vec::new();
    for (name, id) in unknown {
        if out
            .iter()
            .any(|p| matches!(p, ConditionProblem::UnknownVariable { name: n, .. } if *n == name))
        {
            continue;
        }
        let (line, column) = program
            .source_info()
            .offset_for(id)
            .map_or((1, 1), |(start, _)| position_in(expr, start as usize));
        out.push(ConditionProblem::UnknownVariable { name, line, column });
    }
    out
}

fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, ConditionProblem> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("clyra-cel".into())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn_scoped(scope, f)
            .map_err(|e| ConditionProblem::Internal(format!("cannot start a thread: {e}")))?;
        handle
            .join()
            .map_err(|_| ConditionProblem::Internal("the CEL parser failed".into()))
    })
}

fn parse(expr: &str) -> Result<cel::Program, ConditionProblem> {
    cel::Program::compile(expr).map_err(|errors| match errors.errors.first() {
        Some(e) => ConditionProblem::Syntax {
            message: e.msg.clone(),
            line: usize::try_from(e.pos.0).unwrap_or(1).max(1),
            column: usize::try_from(e.pos.1).unwrap_or(1).max(1),
            more: errors.errors.len() - 1,
        },
        None => ConditionProblem::Syntax {
            message: "not a CEL expression".into(),
            line: 1,
            column: 1,
            more: 0,
        },
    })
}

/// Length and bracket nesting, outside string literals.
fn pre_check(expr: &str) -> Result<(), ConditionProblem> {
    if expr.chars().count() > MAX_LEN {
        return Err(ConditionProblem::TooLong);
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut nesting = 0usize;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\'' | '"' => {
                let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
                i += if triple { 3 } else { 1 };
                loop {
                    match chars.get(i) {
                        None => break,
                        Some('\\') => i += 2,
                        Some(&q) if q == c => {
                            if !triple {
                                i += 1;
                                break;
                            }
                            if chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c) {
                                i += 3;
                                break;
                            }
                            i += 1;
                        }
                        Some(_) => i += 1,
                    }
                }
                continue;
            }
            '(' | '[' | '{' => {
                nesting += 1;
                if nesting > MAX_NESTING {
                    let (line, column) = position_in(expr, i);
                    return Err(ConditionProblem::TooDeep { line, column });
                }
            }
            ')' | ']' | '}' => nesting = nesting.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// 1-based line and column of a character offset in `text`.
fn position_in(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for c in text.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// The depth of a syntax tree, counted up to just past [`MAX_AST_DEPTH`].
fn depth(e: &IdedExpr, at: usize) -> usize {
    if at > MAX_AST_DEPTH {
        return at;
    }
    let d = at + 1;
    let children = children(e);
    children.into_iter().map(|c| depth(c, d)).max().unwrap_or(d)
}

fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    fn entry(x: &EntryExpr) -> Vec<&IdedExpr> {
        match x {
            EntryExpr::StructField(f) => vec![&f.value],
            EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
        }
    }
    let mut out = Vec::new();
    match &e.expr {
        Expr::Select(s) => out.push(&*s.operand),
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                out.push(&**t);
            }
            out.extend(c.args.iter());
        }
        Expr::Comprehension(c) => {
            out.extend([
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ]);
        }
        Expr::List(l) => out.extend(l.elements.iter()),
        Expr::Map(m) => {
            for x in &m.entries {
                out.extend(entry(&x.expr));
            }
        }
        Expr::Struct(s) => {
            for x in &s.entries {
                out.extend(entry(&x.expr));
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    out
}

/// Identifiers not bound by a comprehension and not in [`CEL_VARIABLES`] or CEL's type names.
/// Only called on trees at most [`MAX_AST_DEPTH`] deep.
fn free_identifiers(e: &IdedExpr, scope: &mut Vec<String>, out: &mut Vec<(String, u64)>) {
    match &e.expr {
        Expr::Ident(name) => {
            if !name.starts_with('@')
                && !scope.iter().any(|s| s == name)
                && !CEL_VARIABLES.contains(&name.as_str())
                && !CEL_TYPE_NAMES.contains(&name.as_str())
            {
                out.push((name.clone(), e.id));
            }
        }
        Expr::Comprehension(c) => {
            free_identifiers(&c.iter_range, scope, out);
            free_identifiers(&c.accu_init, scope, out);
            let before = scope.len();
            scope.push(c.iter_var.clone());
            if let Some(v) = &c.iter_var2 {
                scope.push(v.clone());
            }
            scope.push(c.accu_var.clone());
            free_identifiers(&c.loop_cond, scope, out);
            free_identifiers(&c.loop_step, scope, out);
            free_identifiers(&c.result, scope, out);
            scope.truncate(before);
        }
        _ => {
            for c in children(e) {
                free_identifiers(c, scope, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn compiles_and_checks() {
        assert!(compile("tool == \"x\" && labels.all(k, k != \"y\")").is_ok());
        let problems = check_all(&["acton.kind == 1 || request.x", "payload.a > ", "now != ''"]);
        assert_eq!(
            problems[0],
            vec![
                ConditionProblem::UnknownVariable {
                    name: "acton".into(),
                    line: 1,
                    column: 1
                },
                ConditionProblem::UnknownVariable {
                    name: "request".into(),
                    line: 1,
                    column: 20
                }
            ]
        );
        assert!(matches!(
            problems[1].as_slice(),
            [ConditionProblem::Syntax {
                line: 1,
                column: 13,
                ..
            }]
        ));
        assert!(problems[2].is_empty());
        // Comprehension variables and type names are not unknown.
        assert!(check_all(&["[1].exists(n, n > 0) && type(tool) == string"])[0].is_empty());
    }

    #[test]
    fn deep_or_long_conditions_are_refused_not_crashed() {
        let deep = "(".repeat(3000) + "1" + &")".repeat(3000);
        assert!(matches!(
            compile(&deep),
            Err(ConditionProblem::TooDeep {
                line: 1,
                column: 33
            })
        ));
        let ok = "(".repeat(MAX_NESTING) + "1" + &")".repeat(MAX_NESTING);
        assert!(compile(&ok).is_ok());
        // Brackets in strings do not count.
        let quoted = format!("tool == '{}'", "(".repeat(100));
        assert!(compile(&quoted).is_ok());
        let chain = "tool".to_owned() + &".f()".repeat(2000);
        assert_eq!(compile(&chain).err(), Some(ConditionProblem::TooComplex));
        let ors = vec!["tool == 'x'"; 600].join(" || ");
        assert!(compile(&ors).is_err());
        assert_eq!(
            compile(&"a".repeat(MAX_LEN + 1)).err(),
            Some(ConditionProblem::TooLong)
        );
    }
}
