//! Version 3 policies, mapped to version 4 on load (spec/policy/README.md §6).
//!
//! | version 3 | version 4 |
//! |---|---|
//! | `policy_mode` | `mode` |
//! | `genai` | `genai_security` |
//! | `data.max_rows` | `data_platform.warehouse_guard.max_rows_affected` |
//! | `data.protected_schemas` | `data_platform.warehouse_guard.protected_schemas` |
//! | `rules[].condition` | `rules[].when` |
//!
//! Every renamed field gives one warning ([`Code::V3Renamed`]) at the old field, naming the new
//! one. Other members of a version 3 `data` section move to `data_platform` unchanged (with one
//! warning for the section). A field given under both names is an error
//! ([`Code::V3Conflict`]); the version 4 one is kept.

use serde_json::{Map, Value};

use super::{push_token, SourceMap};
use crate::diagnostic::{Code, Diagnostic};

/// Sections (version 4 names) whose `rules` are mapped too.
const RULE_SECTIONS: [&str; 4] = [
    "data_platform",
    "genai_security",
    "voice_compliance",
    "enforcement",
];

/// Rewrites a version 3 document (an object with `version: 3`) to version 4 in place.
pub(crate) fn map_v3(root: &mut Map<String, Value>, map: &mut SourceMap) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    root.insert("version".into(), Value::from(4));
    rename(root, map, "", "policy_mode", "mode", &mut out);
    rename(root, map, "", "genai", "genai_security", &mut out);
    map_data(root, map, &mut out);
    map_rules(root, map, "/rules", &mut out);
    for section in RULE_SECTIONS {
        if let Some(Value::Object(s)) = root.get_mut(section) {
            let mut pointer = String::new();
            push_token(&mut pointer, section);
            if let Some(rules) = s.get_mut("rules") {
                map_rules_value(rules, map, &format!("{pointer}/rules"), &mut out);
            }
        }
    }
    out
}

fn child(parent: &str, name: &str) -> String {
    let mut p = parent.to_owned();
    push_token(&mut p, name);
    p
}

fn renamed(map: &SourceMap, old: &str, old_display: &str, new_display: &str) -> Diagnostic {
    Diagnostic::warning(
        Code::V3Renamed,
        map.name(),
        map.locate_key(old),
        old,
        format!("`{old_display}` is `{new_display}` in version 4"),
    )
    .with_suggestion(format!("rename it to `{new_display}` and set `version: 4`"))
}

fn conflict(map: &SourceMap, old: &str, old_display: &str, new_display: &str) -> Diagnostic {
    Diagnostic::error(
        Code::V3Conflict,
        map.name(),
        map.locate_key(old),
        old,
        format!(
            "`{old_display}` (version 3) and `{new_display}` (version 4) are both given; they \
are the same field"
        ),
    )
    .with_suggestion(format!("keep only `{new_display}`"))
}

/// Renames member `old` of the object at `parent` to `new`.
fn rename(
    obj: &mut Map<String, Value>,
    map: &mut SourceMap,
    parent: &str,
    old: &str,
    new: &str,
    out: &mut Vec<Diagnostic>,
) {
    let Some(value) = obj.remove(old) else {
        return;
    };
    let (old_p, new_p) = (child(parent, old), child(parent, new));
    if obj.contains_key(new) {
        out.push(conflict(map, &old_p, old, new));
        return;
    }
    out.push(renamed(map, &old_p, old, new));
    obj.insert(new.to_owned(), value);
    map.move_prefix(&old_p, &new_p);
}

fn map_data(root: &mut Map<String, Value>, map: &mut SourceMap, out: &mut Vec<Diagnostic>) {
    let Some(Value::Object(mut data)) = root.remove("data") else {
        return;
    };
    let data_at = map.locate_key("/data");
    let platform = root
        .entry("data_platform")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(platform) = platform else {
        // `data_platform` is there and not a mapping: leave `data` for the schema to report.
        root.insert("data".into(), Value::Object(data));
        return;
    };
    map.insert_value_if_absent("/data_platform", data_at);
    for (old, new) in [
        ("max_rows", "max_rows_affected"),
        ("protected_schemas", "protected_schemas"),
    ] {
        let Some(value) = data.remove(old) else {
            continue;
        };
        let old_p = child("/data", old);
        let new_display = format!("data_platform.warehouse_guard.{new}");
        let guard = platform
            .entry("warehouse_guard")
            .or_insert_with(|| Value::Object(Map::new()));
        map.insert_value_if_absent("/data_platform/warehouse_guard", data_at);
        match guard {
            Value::Object(g) if !g.contains_key(new) => {
                out.push(renamed(map, &old_p, &format!("data.{old}"), &new_display));
                g.insert(new.to_owned(), value);
                map.move_prefix(&old_p, &child("/data_platform/warehouse_guard", new));
            }
            _ => out.push(conflict(map, &old_p, &format!("data.{old}"), &new_display)),
        }
    }
    if data.is_empty() {
        return;
    }
    out.push(renamed(map, "/data", "data", "data_platform"));
    for (name, value) in data {
        let old_p = child("/data", &name);
        if platform.contains_key(&name) {
            out.push(conflict(
                map,
                &old_p,
                &format!("data.{name}"),
                &format!("data_platform.{name}"),
            ));
            continue;
        }
        platform.insert(name.clone(), value);
        map.move_prefix(&old_p, &child("/data_platform", &name));
    }
}

fn map_rules(
    root: &mut Map<String, Value>,
    map: &mut SourceMap,
    pointer: &str,
    out: &mut Vec<Diagnostic>,
) {
    if let Some(rules) = root.get_mut("rules") {
        map_rules_value(rules, map, pointer, out);
    }
}

fn map_rules_value(
    rules: &mut Value,
    map: &mut SourceMap,
    pointer: &str,
    out: &mut Vec<Diagnostic>,
) {
    let Value::Array(rules) = rules else {
        return;
    };
    for (i, rule) in rules.iter_mut().enumerate() {
        if let Value::Object(rule) = rule {
            let at = format!("{pointer}/{i}");
            rename(rule, map, &at, "condition", "when", out);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_every_renamed_field() {
        let text = concat!(
            "version: 3\npolicy_mode: shadow\ngenai:\n  detectors: {}\ndata:\n  max_rows: 10\n",
            "  protected_schemas: [finance]\n  dbt: {hooks: true}\nrules:\n  - id: a\n",
            "    condition: 'true'\n"
        );
        let (value, mut map) = super::super::yaml::parse("old.yaml", text).unwrap();
        let Value::Object(mut root) = value else {
            unreachable!()
        };
        let warnings = map_v3(&mut root, &mut map);
        assert_eq!(
            Value::Object(root),
            json!({"version": 4, "mode": "shadow", "genai_security": {"detectors": {}},
                   "data_platform": {"warehouse_guard": {"max_rows_affected": 10,
                   "protected_schemas": ["finance"]}, "dbt": {"hooks": true}},
                   "rules": [{"id": "a", "when": "true"}]})
        );
        let got: Vec<(usize, String)> = warnings
            .iter()
            .map(|d| (d.line, d.message.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "`policy_mode` is `mode` in version 4".to_owned()),
                (3, "`genai` is `genai_security` in version 4".to_owned()),
                (
                    6,
                    "`data.max_rows` is `data_platform.warehouse_guard.max_rows_affected` in \
version 4"
                        .to_owned()
                ),
                (
                    7,
                    "`data.protected_schemas` is `data_platform.warehouse_guard.protected_schemas` \
in version 4"
                        .to_owned()
                ),
                (5, "`data` is `data_platform` in version 4".to_owned()),
                (11, "`condition` is `when` in version 4".to_owned()),
            ]
        );
        // Locations follow the moved values.
        assert_eq!(map.value("/mode").unwrap().line, 2);
        assert_eq!(
            map.value("/data_platform/warehouse_guard/max_rows_affected")
                .unwrap()
                .line,
            6
        );
        assert_eq!(map.value("/rules/0/when").unwrap().line, 11);
    }

    #[test]
    fn both_names_is_an_error() {
        let (value, mut map) = super::super::yaml::parse(
            "old.yaml",
            "version: 3\nmode: enforce\npolicy_mode: shadow\n",
        )
        .unwrap();
        let Value::Object(mut root) = value else {
            unreachable!()
        };
        let d = map_v3(&mut root, &mut map);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, Code::V3Conflict);
        assert_eq!(root["mode"], "enforce");
    }
}
