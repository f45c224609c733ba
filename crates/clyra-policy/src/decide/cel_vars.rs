//! The variables a rule's `when` sees (spec/policy/README.md §4), built once per decision.
//!
//! The action's JSON becomes one CEL map whose strings borrow from the JSON (no copies); the
//! shortcuts (`kind`, `payload`, ...) are borrowed out of that map, so a decision that runs ten
//! conditions converts the action once.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, MapExpr, StructExpr};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use serde_json::Value;

/// The shortcut variables: each the action member of the same name, or `null`.
pub(crate) const SHORTCUTS: &[&str] = &[
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
];

/// Every variable a condition may name.
pub(crate) fn is_variable(name: &str) -> bool {
    name == "action" || name == "now" || SHORTCUTS.contains(&name)
}

/// CEL's type names, which an expression may name as identifiers (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

/// The identifiers `expr` uses that no comprehension inside it binds, sorted.
pub(crate) fn free_identifiers(expr: &IdedExpr) -> Vec<String> {
    fn walk<'e>(e: &'e IdedExpr, bound: &mut Vec<&'e str>, out: &mut Vec<String>) {
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => {}
            Expr::Ident(name) => {
                if !name.starts_with('@') && !bound.contains(&name.as_str()) {
                    out.push(name.clone());
                }
            }
            Expr::Call(call) => {
                if let Some(t) = &call.target {
                    walk(t, bound, out);
                }
                for a in &call.args {
                    walk(a, bound, out);
                }
            }
            Expr::Select(sel) => walk(&sel.operand, bound, out),
            Expr::List(list) => {
                for x in &list.elements {
                    walk(x, bound, out);
                }
            }
            Expr::Map(MapExpr { entries }) | Expr::Struct(StructExpr { entries, .. }) => {
                for entry in entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => walk(&f.value, bound, out),
                        EntryExpr::MapEntry(m) => {
                            walk(&m.key, bound, out);
                            walk(&m.value, bound, out);
                        }
                    }
                }
            }
            Expr::Comprehension(c) => {
                walk(&c.iter_range, bound, out);
                walk(&c.accu_init, bound, out);
                let depth = bound.len();
                bound.push(&c.iter_var);
                if let Some(v) = &c.iter_var2 {
                    bound.push(v);
                }
                bound.push(&c.accu_var);
                walk(&c.loop_cond, bound, out);
                walk(&c.loop_step, bound, out);
                walk(&c.result, bound, out);
                bound.truncate(depth);
            }
        }
    }
    let mut out = Vec::new();
    walk(expr, &mut Vec::new(), &mut out);
    out.retain(|n| !TYPE_NAMES.contains(&n.as_str()));
    out.sort_unstable();
    out.dedup();
    out
}

/// Converts JSON to a CEL value that borrows the JSON's strings.
pub(crate) fn to_val(v: &Value) -> Box<dyn Val + '_> {
    match v {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => {
            let list: Vec<Box<dyn Val + '_>> = items.iter().map(to_val).collect();
            Box::new(CelList::from(list))
        }
        Value::Object(map) => Box::new(to_map(map)),
    }
}

fn to_map(map: &serde_json::Map<String, Value>) -> CelMap<'_> {
    let mut out: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = HashMap::with_capacity(map.len());
    for (k, v) in map {
        out.insert(CelMapKey::from(k.as_str()), to_val(v));
    }
    CelMap::from(out)
}

/// The variables of one decision.
#[derive(Debug)]
pub(crate) struct Vars<'a> {
    action: CelMap<'a>,
    now: Option<&'a str>,
}

impl<'a> Vars<'a> {
    /// `action` must be a JSON object (every [`super::Action`] is).
    pub(crate) fn new(action: &'a Value, now: Option<&'a str>) -> Vars<'a> {
        let action = match action {
            Value::Object(map) => to_map(map),
            _ => CelMap::default(),
        };
        Vars { action, now }
    }
}

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "action" => Some(CowVal::Borrowed(&self.action)),
            "now" => Some(match self.now {
                Some(now) => CowVal::owned(CelString::from(now)),
                None => CowVal::owned(CelNull),
            }),
            _ => {
                let name: &'static str = SHORTCUTS.iter().find(|s| **s == variable)?;
                Some(match self.action.get(&CelMapKey::from(name)) {
                    Some(v) => CowVal::Borrowed(v.as_ref()),
                    None => CowVal::owned(CelNull),
                })
            }
        }
    }
}

/// The standard CEL environment the engine compiles and runs conditions in.
pub(crate) fn environment() -> Arc<cel::Env> {
    Arc::new(cel::Env::stdlib())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn eval(expr: &str, action: &Value) -> Result<cel::Value, cel::ExecutionError> {
        let env = environment();
        let program = env.compile(expr).unwrap();
        let vars = Vars::new(action, Some("2026-03-01T08:30:00Z"));
        let mut ctx = cel::Context::with_env(env);
        ctx.set_variable_resolver(&vars);
        program.execute(&ctx)
    }

    #[test]
    fn variables_and_shortcuts() {
        let a = json!({"kind": "tool.call", "tenant": "acme", "payload": {"n": 3, "tags": ["a", "b"], "x": 1.5, "big": 18446744073709551615u64}, "odd": true});
        assert_eq!(eval("kind == 'tool.call'", &a), Ok(cel::Value::Bool(true)));
        assert_eq!(eval("action.tenant", &a), Ok(cel::Value::from("acme")));
        assert_eq!(eval("payload.n > 2", &a), Ok(cel::Value::Bool(true)));
        assert_eq!(eval("'b' in payload.tags", &a), Ok(cel::Value::Bool(true)));
        assert_eq!(eval("payload.x < 2.0", &a), Ok(cel::Value::Bool(true)));
        assert_eq!(eval("payload.big > 1u", &a), Ok(cel::Value::Bool(true)));
        assert_eq!(eval("action.odd", &a), Ok(cel::Value::Bool(true)));
        assert_eq!(eval("actor == null", &a), Ok(cel::Value::Bool(true)));
        assert_eq!(
            eval("now", &a),
            Ok(cel::Value::from("2026-03-01T08:30:00Z"))
        );
        assert_eq!(eval("has(action.payload)", &a), Ok(cel::Value::Bool(true)));
        assert_eq!(eval("has(action.route)", &a), Ok(cel::Value::Bool(false)));
        assert!(eval("payload.missing == 1", &a).is_err());
        assert!(eval("tenant > 1", &a).is_err());
    }

    #[test]
    fn regex_and_strings() {
        let a = json!({"kind": "k", "tenant": "t", "actor": "user:alice@acme.example"});
        assert_eq!(
            eval("actor.matches('^user:.*@acme\\\\.example$')", &a),
            Ok(cel::Value::Bool(true))
        );
        assert_eq!(
            eval(
                "actor.startsWith('user:') && actor.endsWith('.example')",
                &a
            ),
            Ok(cel::Value::Bool(true))
        );
    }
}
