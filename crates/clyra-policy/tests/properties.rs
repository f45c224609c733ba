//! Property tests: the policy hash ignores layout and changes with any value, and the loader
//! never panics, whatever bytes it is given.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;

use clyra_policy::{load, PolicyHash};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// A generator of valid policies.

fn text() -> impl Strategy<Value = String> {
    // Printable text with YAML's troublemakers: quotes, `#`, `: `, leading spaces, newlines,
    // `yes`/`null`-like words, numbers as text, non-ASCII.
    prop_oneof![
        "[ -~]{1,24}",
        "[a-z]{1,8}(: | #|\n|'|\")[a-z ]{0,8}",
        Just("yes".to_owned()),
        Just("null".to_owned()),
        Just("0x1F".to_owned()),
        Just("1.50".to_owned()),
        Just(" leading and trailing ".to_owned()),
        "\\PC{1,12}",
    ]
}

fn identifier() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,12}"
}

fn glob() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("**".to_owned()),
        Just("tool.call".to_owned()),
        Just("warehouse.*".to_owned()),
        Just("agent:*".to_owned()),
        Just("POST /v1/**".to_owned()),
        "[a-z]{1,6}\\.[a-z*]{1,6}",
    ]
}

fn rule(i: usize) -> impl Strategy<Value = Value> {
    (
        identifier(),
        proptest::option::of(text()),
        proptest::option::of(glob()),
        prop_oneof![Just("allow"), Just("block")],
        proptest::option::of(prop_oneof![Just("enforce"), Just("shadow")]),
        proptest::option::of(Just("tenant == \"acme\" && labels.x != \"y\"")),
    )
        .prop_map(move |(id, description, actor, verdict, mode, when)| {
            let mut r = Map::new();
            // Unique ids and kinds: no duplicate or conflicting rules.
            r.insert("id".into(), json!(format!("{id}-{i}")));
            if let Some(d) = description {
                r.insert("description".into(), json!(d));
            }
            let mut m = Map::new();
            m.insert("kind".into(), json!(format!("kind{i}.*")));
            if let Some(a) = actor {
                m.insert("actor".into(), json!([a, "service:x"]));
            }
            r.insert("match".into(), Value::Object(m));
            if let Some(w) = when {
                r.insert("when".into(), json!(w));
            }
            r.insert("verdict".into(), json!(verdict));
            if let Some(mode) = mode {
                r.insert("mode".into(), json!(mode));
            }
            Value::Object(r)
        })
}

fn policy() -> impl Strategy<Value = Value> {
    (
        identifier(),
        text(),
        proptest::collection::vec(text(), 1..3),
        proptest::option::of(prop_oneof![Just("enforce"), Just("shadow")]),
        proptest::collection::vec(0usize..5, 0..4),
        proptest::collection::btree_map(
            prop_oneof![Just("pii"), Just("secrets"), Just("jailbreak")],
            (0.01f64..=1.0, any::<bool>()),
            0..3,
        ),
        proptest::option::of(1u64..9_007_199_254_740_991),
    )
        .prop_flat_map(
            |(name, version, owners, mode, rules, detectors, max_rows)| {
                let n = rules.len();
                proptest::collection::vec(rule(0), n..=n).prop_map(move |rs| {
                    let mut p = Map::new();
                    p.insert("version".into(), json!(4));
                    p.insert(
                        "metadata".into(),
                        json!({"name": name, "version": version, "owners": owners}),
                    );
                    if let Some(m) = mode {
                        p.insert("mode".into(), json!(m));
                    }
                    let rules: Vec<Value> = rs
                        .into_iter()
                        .enumerate()
                        .map(|(i, mut r)| {
                            // Re-number so that ids and kinds stay unique.
                            r["id"] = json!(format!("r{i}-{}", r["id"].as_str().unwrap()));
                            r["match"]["kind"] = json!(format!("kind{i}.*"));
                            r
                        })
                        .collect();
                    if !rules.is_empty() {
                        p.insert("rules".into(), Value::Array(rules));
                    }
                    if !detectors.is_empty() {
                        let d: Map<String, Value> = detectors
                            .iter()
                            .map(|(k, (t, on))| {
                                ((*k).to_owned(), json!({"threshold": t, "enabled": on}))
                            })
                            .collect();
                        p.insert("genai_security".into(), json!({ "detectors": d }));
                    }
                    if let Some(m) = max_rows {
                        p.insert(
                            "data_platform".into(),
                            json!({"warehouse_guard": {"max_rows_affected": m, "checkpoint": "c"}}),
                        );
                        p.insert(
                        "approvals".into(),
                        json!({"checkpoints": [{"id": "c", "approvers": ["user:*@acme.example"]}]}),
                    );
                    }
                    Value::Object(p)
                })
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Renderers: the same value written in different ways.

/// A simple deterministic shuffle driven by `seed`.
fn shuffled(m: &Map<String, Value>, seed: u64) -> Vec<(&String, &Value)> {
    let mut v: Vec<_> = m.iter().collect();
    let mut s = seed | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// JSON as Python's `json.dumps` writes it by default: everything beyond ASCII as `\uXXXX`,
/// surrogate pairs beyond the Basic Multilingual Plane.
fn ascii_json(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{u:04x}");
            }
        }
    }
    out
}

fn number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() => format!("{f:?}"),
        _ => n.to_string(),
    }
}

/// JSON with keys in a shuffled order and `indent` spaces of indentation (0: one line).
fn render_json(v: &Value, seed: u64, indent: usize, depth: usize, out: &mut String) {
    let nl = |out: &mut String, d: usize| {
        if indent > 0 {
            out.push('\n');
            out.push_str(&" ".repeat(indent * d));
        }
    };
    match v {
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in shuffled(m, seed.wrapping_add(depth as u64))
                .into_iter()
                .enumerate()
            {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                out.push_str(&json_string(k));
                out.push_str(": ");
                render_json(x, seed, indent, depth + 1, out);
            }
            if !m.is_empty() {
                nl(out, depth);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_json(x, seed, indent, depth + 1, out);
            }
            out.push(']');
        }
        Value::String(s) => out.push_str(&json_string(s)),
        Value::Number(n) => out.push_str(&number(n)),
        other => out.push_str(&other.to_string()),
    }
}

fn yaml_scalar(v: &Value, seed: u64) -> String {
    match v {
        // Single quotes double their quote and may not hold a line break portably; double
        // quotes take JSON escapes.
        Value::String(s) if seed.is_multiple_of(2) && !s.contains('\n') => {
            format!("'{}'", s.replace('\'', "''"))
        }
        Value::String(s) => json_string(s),
        Value::Number(n) => number(n),
        other => other.to_string(),
    }
}

fn yaml_key(k: &str) -> String {
    if k.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !k.is_empty() {
        k.to_owned()
    } else {
        json_string(k)
    }
}

/// YAML block style with comments between entries; flow style for nested values below
/// `flow_from` depth.
fn render_yaml(
    v: &Value,
    seed: u64,
    indent: usize,
    depth: usize,
    flow_from: usize,
    out: &mut String,
) {
    let pad = " ".repeat(indent * depth);
    match v {
        Value::Object(m) if depth < flow_from && !m.is_empty() => {
            for (k, x) in shuffled(m, seed.wrapping_add(depth as u64)) {
                let _ = writeln!(out, "{pad}# about {}", k.replace('\n', " "));
                match x {
                    Value::Object(xm) if !xm.is_empty() && depth + 1 < flow_from => {
                        let _ = writeln!(out, "{pad}{}:   # a comment after the key", yaml_key(k));
                        render_yaml(x, seed, indent, depth + 1, flow_from, out);
                    }
                    Value::Array(xa) if !xa.is_empty() && depth + 1 < flow_from => {
                        let _ = writeln!(out, "{pad}{}:", yaml_key(k));
                        render_yaml(x, seed, indent, depth + 1, flow_from, out);
                    }
                    _ => {
                        let mut flow = String::new();
                        render_flow(x, seed, &mut flow);
                        let _ = writeln!(out, "{pad}{}: {flow}  # trailing comment", yaml_key(k));
                    }
                }
            }
        }
        Value::Array(a) if depth < flow_from && !a.is_empty() => {
            for x in a {
                match x {
                    Value::Object(xm) if !xm.is_empty() && depth + 1 < flow_from => {
                        let _ = writeln!(out, "{pad}-");
                        render_yaml(x, seed, indent, depth + 1, flow_from, out);
                    }
                    _ => {
                        let mut flow = String::new();
                        render_flow(x, seed, &mut flow);
                        let _ = writeln!(out, "{pad}- {flow}");
                    }
                }
            }
        }
        other => {
            let mut flow = String::new();
            render_flow(other, seed, &mut flow);
            let _ = writeln!(out, "{pad}{flow}");
        }
    }
}

fn render_flow(v: &Value, seed: u64, out: &mut String) {
    match v {
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in shuffled(m, seed).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&yaml_key(k));
                out.push_str(": ");
                render_flow(x, seed.rotate_left(1), out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_flow(x, seed.rotate_left(1), out);
            }
            out.push(']');
        }
        scalar => out.push_str(&yaml_scalar(scalar, seed)),
    }
}

fn renderings(v: &Value, seed: u64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for indent in [0, 2, 3] {
        let mut s = String::new();
        render_json(v, seed.wrapping_add(indent as u64), indent, 0, &mut s);
        out.push((format!("json indent {indent}"), s));
    }
    let mut s = String::new();
    render_json(v, seed, 1, 0, &mut s);
    out.push(("json, ASCII only".to_owned(), ascii_json(&s)));
    for (indent, flow_from) in [(2, 99), (4, 2), (2, 1), (3, 3)] {
        let mut s = String::from("# A generated policy.\n---\n");
        render_yaml(
            v,
            seed.wrapping_add(flow_from as u64),
            indent,
            0,
            flow_from,
            &mut s,
        );
        s.push_str("# the end\n");
        out.push((
            format!("yaml indent {indent} flow from depth {flow_from}"),
            s,
        ));
    }
    out
}

/// Every scalar's pointer.
fn scalar_pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                scalar_pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                scalar_pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn layout_does_not_change_the_hash(p in policy(), seed in any::<u64>()) {
        let expected = PolicyHash::of_value(&p).unwrap();
        for (how, text) in renderings(&p, seed) {
            let name = if how.starts_with("json") { "gen.json" } else { "gen.yaml" };
            let loaded = match clyra_policy::load_str(name, &text) {
                Ok(l) => l,
                Err(e) => panic!("{how}: refused:\n{e}\n---\n{text}"),
            };
            prop_assert_eq!(&loaded.value, &p, "{}:\n{}", how, text);
            prop_assert_eq!(loaded.hash, expected, "{}", how);
        }
    }

    #[test]
    fn changing_any_scalar_changes_the_hash(p in policy(), pick in any::<prop::sample::Index>(), seed in any::<u64>()) {
        let mut pointers = Vec::new();
        scalar_pointers(&p, String::new(), &mut pointers);
        // `version` 4 -> 3 is mapped back to 4 (and the hash rightly stays): change the rest.
        pointers.retain(|p| p != "/version");
        let pointer = pick.get(&pointers).clone();
        let mut changed = p.clone();
        let slot = changed.pointer_mut(&pointer).unwrap();
        *slot = match slot.take() {
            Value::String(s) => json!(format!("{s}x")),
            Value::Bool(b) => json!(!b),
            Value::Number(n) if n.is_f64() => json!(n.as_f64().unwrap() / 2.0),
            Value::Number(n) => json!(n.as_i64().unwrap() - 1),
            Value::Null => json!(0),
            other => other,
        };
        let mut text = String::new();
        render_yaml(&changed, seed, 2, 0, 2, &mut text);
        // Read (not load): the change may make the policy invalid, but it must change the hash.
        let doc = load::parse_bytes("gen", text.as_bytes()).unwrap();
        prop_assert_eq!(&doc.value, &changed);
        prop_assert_ne!(
            PolicyHash::of_value(&doc.value).unwrap(),
            PolicyHash::of_value(&p).unwrap(),
            "changing {} did not change the hash", pointer
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let report = clyra_policy::lint::lint_bytes("fuzz", &bytes);
        let loaded = clyra_policy::load::load_bytes("fuzz", &bytes);
        prop_assert_eq!(loaded.is_err(), report.has_errors());
    }

    #[test]
    fn yaml_like_text_never_panics(text in "([a-z_:{}\\[\\],&*!|>'\"#%@`?~ -]|\n|\t|version: 4\n|rules:\n|  - |0x|\\.inf|<<){0,80}") {
        let report = clyra_policy::lint_str("fuzz", &text);
        for d in &report {
            prop_assert!(d.line >= 1 && d.column >= 1);
        }
        let _ = clyra_policy::load_str("fuzz", &text);
    }

    #[test]
    fn edited_templates_never_panic(cut in 0usize..4000, insert in "[ -~\n]{0,8}") {
        let base = include_str!("../../../templates/policy/complete.yaml");
        let mut at = cut.min(base.len());
        while !base.is_char_boundary(at) {
            at -= 1;
        }
        let text = format!("{}{insert}{}", &base[..at], &base[at..]);
        let report = clyra_policy::lint_str("edit", &text);
        prop_assert_eq!(clyra_policy::load_str("edit", &text).is_err(), report.has_errors());
    }
}

#[test]
fn version_3_and_its_version_4_form_have_one_hash() {
    let v3 = "version: 3\nmetadata: {name: p, version: '1', owners: [a]}\npolicy_mode: shadow\n\
rules:\n  - {id: r, match: {kind: x}, condition: 'true', verdict: block}\n";
    let v4 = "{\"version\": 4, \"mode\": \"shadow\", \"metadata\": {\"owners\": [\"a\"], \
\"version\": \"1\", \"name\": \"p\"}, \"rules\": [{\"verdict\": \"block\", \"when\": \"true\", \
\"match\": {\"kind\": \"x\"}, \"id\": \"r\"}]}";
    let a = clyra_policy::load_str("v3.yaml", v3).unwrap();
    let b = clyra_policy::load_str("v4.json", v4).unwrap();
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.warnings.len(), 2);
    assert!(b.warnings.is_empty());
}
