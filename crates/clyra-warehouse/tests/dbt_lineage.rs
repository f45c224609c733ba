//! The lineage renderings: the text tree and DOT against golden files (regenerate with
//! `CLYRA_UPDATE_GOLDEN=1`), the SVG checked to be well-formed XML by a small checker, with
//! hostile names too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use clyra_warehouse::dbt::lineage::Lineage;
use clyra_warehouse::dbt::{read_log, read_target, record, RecordContext};
use proptest::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dbt")
}

fn lineage(name: &str) -> Lineage {
    let dir = fixtures().join(name);
    let t = read_target(&dir).unwrap();
    let log = read_log(&dir.join("dbt.log")).unwrap();
    record(&t, Some(&log), &RecordContext::default())
        .unwrap()
        .lineage
}

fn golden(file: &str, actual: &str) {
    let path = fixtures().join("golden").join(file);
    if std::env::var_os("CLYRA_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (CLYRA_UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{} differs", path.display());
}

#[test]
fn text_tree_and_dot_match_the_golden_files() {
    for name in ["build", "fail"] {
        let l = lineage(name);
        golden(&format!("{name}.tree.txt"), &l.to_text_tree());
        golden(&format!("{name}.dot"), &l.to_dot());
    }
}

#[test]
fn the_text_tree_reads_like_tree() {
    let t = lineage("fail").to_text_tree();
    let lines: Vec<&str> = t.lines().collect();
    assert!(
        lines[0].starts_with("lineage of clyra_fx (invocation "),
        "{t}"
    );
    assert!(
        lines[0].ends_with("5 nodes, 2 trusted, 0 unverified, 3 tainted"),
        "{t}"
    );
    assert!(
        lines[1].starts_with("source payments_app.payments ["),
        "{t}"
    );
    assert!(lines[1].contains("✓ trusted"), "{t}");
    assert!(lines[2].starts_with("└── model stg_orders ["), "{t}");
    assert!(
        lines[2].contains("✗ tainted]: test `test.clyra_fx.accepted_values_stg_orders_status"),
        "{t}"
    );
    assert!(
        lines[3].starts_with("    └── model customer_orders [skipped"),
        "{t}"
    );
    assert!(
        lines[4].starts_with("        └── exposure revenue_dashboard"),
        "{t}"
    );
    assert!(
        t.contains("seed raw_orders [success · ✓ trusted]\n└── model stg_orders (see above)\n"),
        "{t}"
    );
    assert!(t.ends_with("legend: ✓ trusted  ? unverified  ✗ tainted\n"));
}

#[test]
fn dot_colors_by_trust() {
    let d = lineage("fail").to_dot();
    assert!(d.starts_with("digraph lineage {\n"));
    let line = |id: &str| {
        d.lines()
            .find(|l| l.trim_start().starts_with(&format!("\"{id}\" [")))
            .unwrap()
            .to_string()
    };
    assert!(line("model.clyra_fx.stg_orders").contains("fillcolor=\"#fed7d7\""));
    assert!(line("seed.clyra_fx.raw_orders").contains("fillcolor=\"#c6f6d5\""));
    assert!(line("source.clyra_fx.payments_app.payments").contains("shape=cylinder"));
    assert!(d.contains("  \"model.clyra_fx.stg_orders\" -> \"model.clyra_fx.customer_orders\";\n"));
}

#[test]
fn the_svg_is_well_formed_xml() {
    for name in ["build", "fail", "sigint", "sigterm"] {
        let l = lineage(name);
        let svg = l.to_svg();
        let elements = check_xml(&svg).unwrap_or_else(|e| panic!("{name}: {e}\n{svg}"));
        assert_eq!(elements[0], "svg");
        assert_eq!(
            elements.iter().filter(|e| *e == "rect").count(),
            l.nodes.len()
        );
        assert_eq!(
            elements.iter().filter(|e| *e == "path").count(),
            l.edges.len() + 1
        );
        assert_eq!(svg, l.to_svg(), "deterministic");
    }
    // Trust colours and the tooltip with the reason.
    let svg = lineage("fail").to_svg();
    assert!(svg.contains("fill=\"#fed7d7\""));
    assert!(svg.contains("model.clyra_fx.customer_orders (tainted): upstream"));
    // Layers by longest path: the exposure is right of customer_orders, right of stg_orders.
    let x_of = |label: &str| -> i64 {
        let at = svg.find(&format!(">{label}</text>")).unwrap();
        let text = &svg[..at];
        let x = text.rfind("<text x=\"").unwrap();
        text[x + 9..].split('"').next().unwrap().parse().unwrap()
    };
    assert!(x_of("model stg_orders") < x_of("model customer_orders"));
    assert!(x_of("model customer_orders") < x_of("exposure revenue_dashboard"));
    assert_eq!(
        x_of("seed raw_orders"),
        x_of("source payments_app.payments")
    );
}

#[test]
fn hostile_names_are_escaped() {
    let mut l = lineage("fail");
    for n in &mut l.nodes {
        n.name = format!("<script>alert(\"x\")</script> & '{}'\n\u{7}\\", n.name);
        n.reason.push_str(" </title><g onload=\"x\">");
    }
    l.project = Some("a\"b<c>&d".into());
    check_xml(&l.to_svg()).unwrap();
    check_dot(&l.to_dot()).unwrap();
    assert!(!l.to_text_tree().contains('\u{7}'));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_names_give_well_formed_svg_and_dot(names in proptest::collection::vec(any::<String>(), 5)) {
        let mut l = lineage("build");
        for (n, name) in l.nodes.iter_mut().zip(&names) {
            n.name = name.clone();
            n.reason = name.clone();
        }
        prop_assert!(check_xml(&l.to_svg()).is_ok(), "{:?}", check_xml(&l.to_svg()));
        prop_assert!(check_dot(&l.to_dot()).is_ok());
    }
}

/// Every double-quoted DOT string is closed, with only `\"` and `\\` escapes and no raw line
/// break inside.
fn check_dot(dot: &str) -> Result<(), String> {
    let mut in_str = false;
    let mut chars = dot.chars();
    while let Some(c) = chars.next() {
        match (in_str, c) {
            (false, '"') => in_str = true,
            (true, '"') => in_str = false,
            (true, '\\') => match chars.next() {
                Some('"' | '\\' | 'n') => {}
                other => return Err(format!("bad escape {other:?}")),
            },
            (true, '\n' | '\r') => return Err("line break inside a string".into()),
            _ => {}
        }
    }
    if in_str {
        return Err("unterminated string".into());
    }
    Ok(())
}

/// A small XML well-formedness check: balanced tags, quoted attributes without `<`, no duplicate
/// attributes, only the five predefined entities and character references, no character XML 1.0
/// forbids, exactly one root element. Returns the element names in document order.
fn check_xml(doc: &str) -> Result<Vec<String>, String> {
    fn entity(s: &str) -> Result<usize, String> {
        let end = s.find(';').ok_or("& without ;")?;
        let name = &s[1..end];
        let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
            || name
                .strip_prefix("#x")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            || name
                .strip_prefix('#')
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        if ok {
            Ok(end + 1)
        } else {
            Err(format!("unknown entity &{name};"))
        }
    }
    fn name_len(s: &str) -> usize {
        s.find(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')))
            .unwrap_or(s.len())
    }
    for c in doc.chars() {
        let ok = matches!(c, '\t' | '\n' | '\r')
            || (c >= ' '
                && c != '\u{FFFE}'
                && c != '\u{FFFF}'
                && !('\u{7F}'..='\u{9F}').contains(&c));
        if !ok {
            return Err(format!("forbidden character {c:?}"));
        }
    }
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut roots = 0;
    let mut i = 0;
    while i < doc.len() {
        let rest = &doc[i..];
        if let Some(tag) = rest.strip_prefix('<') {
            if let Some(close) = tag.strip_prefix('/') {
                let n = name_len(close);
                let name = &close[..n];
                if stack.pop().as_deref() != Some(name) {
                    return Err(format!("</{name}> closes nothing open"));
                }
                if !close[n..].starts_with('>') {
                    return Err(format!("bad closing tag {name}"));
                }
                i += 2 + n + 1;
                continue;
            }
            let n = name_len(tag);
            if n == 0 {
                return Err(format!("bad tag at {i}"));
            }
            let name = tag[..n].to_string();
            if stack.is_empty() {
                roots += 1;
            }
            names.push(name.clone());
            let mut j = 1 + n;
            let mut attrs = std::collections::BTreeSet::new();
            loop {
                let r = &doc[i + j..];
                let trimmed = r.trim_start();
                j += r.len() - trimmed.len();
                if trimmed.starts_with("/>") {
                    j += 2;
                    break;
                }
                if trimmed.starts_with('>') {
                    j += 1;
                    stack.push(name.clone());
                    break;
                }
                let an = name_len(trimmed);
                if an == 0 || r.len() == trimmed.len() {
                    return Err(format!("bad attribute in <{name}> at {}", i + j));
                }
                if !attrs.insert(trimmed[..an].to_string()) {
                    return Err(format!(
                        "duplicate attribute {} in <{name}>",
                        &trimmed[..an]
                    ));
                }
                let after = &trimmed[an..];
                let value = after
                    .strip_prefix("=\"")
                    .ok_or(format!("unquoted attribute in <{name}>"))?;
                let end = value.find('"').ok_or("unterminated attribute")?;
                let v = &value[..end];
                if v.contains('<') {
                    return Err(format!("< in an attribute of <{name}>"));
                }
                let mut k = 0;
                while let Some(p) = v[k..].find('&') {
                    k += p + entity(&v[k + p..])?;
                }
                j += an + 2 + end + 1;
            }
            i += j;
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..end];
            if stack.is_empty() && !text.trim().is_empty() {
                return Err("text outside the root".into());
            }
            let mut k = 0;
            while let Some(p) = text[k..].find('&') {
                k += p + entity(&text[k + p..])?;
            }
            i += end;
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(names)
}

#[test]
fn the_checker_rejects_what_it_should() {
    for bad in [
        "<svg><g></svg>",
        "<svg a=\"1\" a=\"2\"/>",
        "<svg a=1/>",
        "<svg>&nbsp;</svg>",
        "<svg>a < b</svg>",
        "<svg/><svg/>",
        "<svg a=\"<\"/>",
        "<svg>\u{7}</svg>",
    ] {
        assert!(check_xml(bad).is_err(), "{bad}");
    }
    assert!(check_xml("<svg a=\"&amp;&#38;&#x26;\"><g>x &lt; y</g></svg>\n").is_ok());
}

#[test]
fn a_very_deep_graph_renders_without_exhausting_the_stack() {
    use clyra_warehouse::dbt::lineage::{Edge, LineageNode, Trust};
    let id = |i: usize| format!("model.p.m{i:05}");
    let n = 3000;
    let l = Lineage {
        format: "clyra.dbt.lineage/v1".into(),
        invocation_id: None,
        project: None,
        adapter: None,
        from_manifest: true,
        nodes: (0..n)
            .map(|i| LineageNode {
                unique_id: id(i),
                resource_type: "model".into(),
                name: format!("m{i}"),
                relation: None,
                materialization: None,
                status: None,
                tests: Vec::new(),
                guard: Vec::new(),
                trust: Trust::Unverified,
                reason: "x".into(),
                tainted_by: None,
            })
            .collect(),
        edges: (1..n)
            .map(|i| Edge {
                from: id(i - 1),
                to: id(i),
            })
            .collect(),
    };
    let t = l.to_text_tree();
    assert!(t.contains("… (deeper than 256 levels)"), "{}", &t[..200]);
    assert!(t.contains("not shown above"));
    assert!(t.lines().count() < n + 20);
    check_xml(&l.to_svg()).unwrap();
    check_dot(&l.to_dot()).unwrap();
}
