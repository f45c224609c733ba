//! RFC 6902 JSON Patch, for `repair` obligations: the caller applies the patches of the enforced
//! repairs to the payload ([`super::Decision::apply_repairs`]).
//!
//! Application is atomic: the input is never modified, and a failing operation returns an error
//! naming it and leaves nothing half-applied. Pointers follow RFC 6901 (`~0` is `~`, `~1` is `/`;
//! `-` appends to an array).

use serde_json::Value;

use crate::model::{PatchOp, PatchOpKind};

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("patch operation {index} (`{op}` at `{path}`): {message}")]
pub struct PatchError {
    /// Index of the failing operation.
    pub index: usize,
    /// Its name.
    pub op: &'static str,
    /// Its target pointer.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// Applies `ops` to a copy of `doc`, in order.
pub fn apply_patch(doc: &Value, ops: &[PatchOp]) -> Result<Value, PatchError> {
    let mut out = doc.clone();
    for (index, op) in ops.iter().enumerate() {
        apply_one(&mut out, op).map_err(|message| PatchError {
            index,
            op: op_name(op.op),
            path: op.path.clone(),
            message,
        })?;
    }
    Ok(out)
}

fn op_name(k: PatchOpKind) -> &'static str {
    match k {
        PatchOpKind::Add => "add",
        PatchOpKind::Remove => "remove",
        PatchOpKind::Replace => "replace",
        PatchOpKind::Move => "move",
        PatchOpKind::Copy => "copy",
        PatchOpKind::Test => "test",
    }
}

fn apply_one(doc: &mut Value, op: &PatchOp) -> Result<(), String> {
    let path = parse_pointer(&op.path)?;
    let value = || {
        op.value
            .clone()
            .ok_or_else(|| "`value` is required".to_owned())
    };
    let from = || -> Result<Vec<String>, String> {
        parse_pointer(op.from.as_deref().ok_or("`from` is required")?)
    };
    match op.op {
        PatchOpKind::Add => add(doc, &path, value()?),
        PatchOpKind::Remove => remove(doc, &path).map(drop),
        PatchOpKind::Replace => {
            let v = value()?;
            let target = get_mut(doc, &path).ok_or("no value at the path")?;
            *target = v;
            Ok(())
        }
        PatchOpKind::Move => {
            let from = from()?;
            if path.len() > from.len() && path[..from.len()] == from[..] {
                return Err("cannot move a value into itself".to_owned());
            }
            let v = remove(doc, &from)?;
            add(doc, &path, v)
        }
        PatchOpKind::Copy => {
            let v = get(doc, &from()?).ok_or("no value at `from`")?.clone();
            add(doc, &path, v)
        }
        PatchOpKind::Test => {
            let expected = value()?;
            let actual = get(doc, &path).ok_or("no value at the path")?;
            if json_eq(actual, &expected) {
                Ok(())
            } else {
                Err(format!("test failed: found {actual}, expected {expected}"))
            }
        }
    }
}

fn parse_pointer(p: &str) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!(
            "`{p}` is not a JSON pointer (it must start with `/`)"
        ));
    };
    rest.split('/')
        .map(|t| {
            let mut out = String::with_capacity(t.len());
            let mut chars = t.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(format!("bad escape in JSON pointer `{p}`")),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if token == "-" && allow_end {
        return Ok(len);
    }
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    let i: usize = if valid { token.parse().ok() } else { None }
        .ok_or_else(|| format!("`{token}` is not an array index"))?;
    let max = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if i > max || (!allow_end && len == 0) {
        return Err(format!("index {i} is out of bounds (length {len})"));
    }
    Ok(i)
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get(t),
        Value::Array(a) => array_index(t, a.len(), false).ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get_mut(t),
        Value::Array(a) => {
            let i = array_index(t, a.len(), false).ok()?;
            a.get_mut(i)
        }
        _ => None,
    })
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent).ok_or("the parent of the path does not exist")? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = array_index(last, a.len(), true)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err("the parent of the path is neither an object nor an array".to_owned()),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let (last, parent) = path
        .split_last()
        .ok_or("cannot remove the whole document")?;
    match get_mut(doc, parent).ok_or("no value at the path")? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| "no value at the path".to_owned()),
        Value::Array(a) => {
            let i = array_index(last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => Err("no value at the path".to_owned()),
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> Vec<PatchOp> {
        serde_json::from_value(v).unwrap()
    }

    fn ok(doc: Value, patch: Value) -> Value {
        apply_patch(&doc, &ops(patch)).unwrap()
    }

    fn err(doc: Value, patch: Value) -> PatchError {
        apply_patch(&doc, &ops(patch)).unwrap_err()
    }

    #[test]
    fn rfc6902_appendix_a_examples() {
        // A.1, A.2, A.3, A.4, A.6, A.7, A.16
        assert_eq!(
            ok(
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}])
            ),
            json!({"baz": "qux", "foo": "bar"})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}])
            ),
            json!({"foo": ["bar", "qux", "baz"]})
        );
        assert_eq!(
            ok(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}])
            ),
            json!({"foo": "bar"})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}])
            ),
            json!({"foo": ["bar", "baz"]})
        );
        assert_eq!(
            ok(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            ),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        assert_eq!(
            ok(
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
            ),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])
            ),
            json!({"foo": ["bar", ["abc", "def"]]})
        );
        // A.14: escapes.
        assert_eq!(
            ok(
                json!({"/": 9, "~1": 10}),
                json!([{"op": "test", "path": "/~01", "value": 10}])
            ),
            json!({"/": 9, "~1": 10})
        );
        // A.9: a failing test.
        let e = err(
            json!({"baz": "qux"}),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
        );
        assert!(e.message.contains("test failed"), "{e}");
        // A.12: adding to a nonexistent target.
        assert!(err(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}])
        )
        .message
        .contains("parent"));
    }

    #[test]
    fn replace_copy_and_root() {
        assert_eq!(
            ok(
                json!({"ssn": "123"}),
                json!([{"op": "replace", "path": "/ssn", "value": "***"}])
            ),
            json!({"ssn": "***"})
        );
        assert_eq!(
            ok(
                json!({"a": {"b": 1}}),
                json!([{"op": "copy", "from": "/a", "path": "/c"}])
            ),
            json!({"a": {"b": 1}, "c": {"b": 1}})
        );
        assert_eq!(
            ok(
                json!({"a": 1}),
                json!([{"op": "replace", "path": "", "value": [1]}])
            ),
            json!([1])
        );
        assert_eq!(
            ok(
                json!({"n": 1}),
                json!([{"op": "test", "path": "/n", "value": 1.0}])
            ),
            json!({"n": 1})
        );
    }

    #[test]
    fn errors_name_the_operation_and_leave_the_input_alone() {
        let doc = json!({"a": [1, 2]});
        for (patch, index, message) in [
            (
                json!([{"op": "remove", "path": "/a/0"}, {"op": "remove", "path": "/missing"}]),
                1,
                "no value",
            ),
            (
                json!([{"op": "replace", "path": "/nope", "value": 1}]),
                0,
                "no value",
            ),
            (
                json!([{"op": "add", "path": "/a/5", "value": 1}]),
                0,
                "out of bounds",
            ),
            (
                json!([{"op": "add", "path": "/a/01", "value": 1}]),
                0,
                "not an array index",
            ),
            (
                json!([{"op": "add", "path": "a", "value": 1}]),
                0,
                "must start with `/`",
            ),
            (
                json!([{"op": "add", "path": "/a~2", "value": 1}]),
                0,
                "bad escape",
            ),
            (
                json!([{"op": "add", "path": "/x"}]),
                0,
                "`value` is required",
            ),
            (
                json!([{"op": "move", "path": "/x"}]),
                0,
                "`from` is required",
            ),
            (
                json!([{"op": "move", "from": "/a", "path": "/a/0"}]),
                0,
                "into itself",
            ),
            (json!([{"op": "remove", "path": ""}]), 0, "whole document"),
        ] {
            let e = err(doc.clone(), patch.clone());
            assert_eq!(e.index, index, "{patch}: {e}");
            assert!(e.message.contains(message), "{patch}: {e}");
        }
        assert_eq!(doc, json!({"a": [1, 2]}));
    }
}
