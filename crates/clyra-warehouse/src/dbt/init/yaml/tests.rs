//! Golden tests (input → output, byte for byte) for the editor, refusals, and property tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const START: &str = "\"{{ clyra_guard.on_run_start() }}\"";
const END: &str = "\"{{ clyra_guard.on_run_end(results) }}\"";

fn hooks(input: &str) -> String {
    let e = add_hooks("dbt_project.yml", input).unwrap_or_else(|r| panic!("refused: {r}\n{input}"));
    // Idempotent: the output needs nothing more.
    let again = add_hooks("dbt_project.yml", &e.text).unwrap();
    assert!(
        again.changes.is_empty(),
        "second run changed: {:?}",
        again.changes
    );
    assert_eq!(again.text, e.text);
    e.text
}

fn refused(input: &str) -> Refused {
    match add_hooks("dbt_project.yml", input) {
        Ok(e) => panic!("accepted:\n{}", e.text),
        Err(r) => {
            assert_eq!(r.by_hand, hooks_by_hand());
            r
        }
    }
}

fn package(input: &str) -> String {
    let path = ".clyra/dbt/clyra_guard";
    let e = add_local_package("packages.yml", input, path)
        .unwrap_or_else(|r| panic!("refused: {r}\n{input}"));
    let again = add_local_package("packages.yml", &e.text, path).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    e.text
}

const HEAD: &str = "name: shop\nversion: \"1.0\"   # ours\nconfig-version: 2\n";

#[test]
fn absent_keys_are_appended_together_at_the_end() {
    let input = format!("{HEAD}\nmodels:\n  shop:\n    +materialized: view\n");
    assert_eq!(
        hooks(&input),
        format!("{input}\non-run-start:\n  - {START}\non-run-end:\n  - {END}\n")
    );
}

#[test]
fn absent_key_goes_after_its_sibling() {
    let input =
        format!("{HEAD}on-run-start:\n  - \"select 1\"\n\n# models\nmodels:\n  shop: {{}}\n");
    assert_eq!(
        hooks(&input),
        format!(
            "{HEAD}on-run-start:\n  - \"select 1\"\n  - {START}\non-run-end:\n  - {END}\n\n# models\nmodels:\n  shop: {{}}\n"
        )
    );
}

#[test]
fn single_string_becomes_a_list_keeping_its_quotes_and_comment() {
    let input = format!("{HEAD}on-run-start: \"select 1\"  # keep me\non-run-end: select 2\n");
    assert_eq!(
        hooks(&input),
        format!(
            "{HEAD}on-run-start:\n  - \"select 1\"  # keep me\n  - {START}\non-run-end:\n  - select 2\n  - {END}\n"
        )
    );
}

#[test]
fn single_quoted_strings_get_single_quoted_hooks() {
    let input = "name: shop\non-run-start: '{{ grants() }}'\n";
    assert_eq!(
        hooks(input),
        "name: shop\non-run-start:\n  - '{{ grants() }}'\n  - '{{ clyra_guard.on_run_start() }}'\non-run-end:\n  - '{{ clyra_guard.on_run_end(results) }}'\n"
    );
}

#[test]
fn string_on_the_next_line_and_multi_line_strings() {
    let input =
        "name: shop\non-run-start:   # hooks\n  \"select\n   1\"\non-run-end: select\n  2\n";
    assert_eq!(
        hooks(input),
        format!(
            "name: shop\non-run-start:   # hooks\n  - \"select\n       1\"\n  - {START}\non-run-end:\n  - select\n      2\n  - {END}\n"
        )
    );
}

#[test]
fn block_scalar_string_is_reindented() {
    let input = "name: shop\non-run-start: |\n  select 1;\n\n  select 2;\non-run-end: []\n";
    assert_eq!(
        hooks(input),
        format!(
            "name: shop\non-run-start:\n  - |\n      select 1;\n\n      select 2;\n  - {START}\non-run-end: [{END}]\n"
        )
    );
}

#[test]
fn block_lists_with_comments_between_items() {
    let input = "name: shop\n\
on-run-start:\n\
  # grants first\n\
  - \"{{ grant_usage() }}\"\n\
\n\
  # then the audit\n\
  - '{{ audit_start() }}'\n\
  # - \"{{ disabled() }}\"\n\
\n\
on-run-end:\n\
- \"{{ audit_end() }}\"   # end\n\
# trailing comment\n";
    let expected = "name: shop\n\
on-run-start:\n\
  # grants first\n\
  - \"{{ grant_usage() }}\"\n\
\n\
  # then the audit\n\
  - '{{ audit_start() }}'\n\
  - '{{ clyra_guard.on_run_start() }}'\n\
  # - \"{{ disabled() }}\"\n\
\n\
on-run-end:\n\
- \"{{ audit_end() }}\"   # end\n\
- \"{{ clyra_guard.on_run_end(results) }}\"\n\
# trailing comment\n";
    assert_eq!(hooks(input), expected);
}

#[test]
fn block_list_items_spanning_lines() {
    let input = "on-run-start:\n    -   >\n        select 1\n    - \"a\n      b\"\nname: x\n";
    assert_eq!(
        hooks(input),
        format!(
            "on-run-start:\n    -   >\n        select 1\n    - \"a\n      b\"\n    - {START}\non-run-end:\n    - {END}\nname: x\n"
        )
    );
}

#[test]
fn flow_lists() {
    let input = "name: x\non-run-start: [\"a\", 'b']  # c\non-run-end: [ ]\n";
    assert_eq!(
        hooks(input),
        "name: x\non-run-start: [\"a\", 'b', '{{ clyra_guard.on_run_start() }}']  # c\non-run-end: ['{{ clyra_guard.on_run_end(results) }}' ]\n"
    );
    let multi = "name: x\non-run-start: [\n    \"a\",   # first\n    \"b, ]\",\n  ]\non-run-end:\n  [select 1]\n";
    assert_eq!(
        hooks(multi),
        format!(
            "name: x\non-run-start: [\n    \"a\",   # first\n    \"b, ]\", {START}\n  ]\non-run-end:\n  [select 1, {END}]\n"
        )
    );
}

#[test]
fn quoted_keys() {
    let input = "'name': x\n'on-run-start': \"a\"\n\"on-run-end\":\n  - b\n";
    assert_eq!(
        hooks(input),
        format!("'name': x\n'on-run-start':\n  - \"a\"\n  - {START}\n\"on-run-end\":\n  - b\n  - {END}\n")
    );
}

#[test]
fn null_values() {
    let input = "name: x\non-run-start:\non-run-end: ~   # none yet\n";
    assert_eq!(
        hooks(input),
        format!("name: x\non-run-start:\n  - {START}\non-run-end:   # none yet\n  - {END}\n")
    );
    let input = "name: x\non-run-start: null\n\non-run-end: NULL\n";
    assert_eq!(
        hooks(input),
        format!("name: x\non-run-start:\n  - {START}\n\non-run-end:\n  - {END}\n")
    );
}

#[test]
fn crlf_is_kept() {
    let input = "name: x\r\n# c\r\non-run-start:\r\n  - a\r\nmodels: {}\r\n";
    assert_eq!(
        hooks(input),
        format!(
            "name: x\r\n# c\r\non-run-start:\r\n  - a\r\n  - {START}\r\non-run-end:\r\n  - {END}\r\nmodels: {{}}\r\n"
        )
    );
    let inline = "name: x\r\non-run-start: a\r\n";
    assert_eq!(
        hooks(inline),
        format!("name: x\r\non-run-start:\r\n  - a\r\n  - {START}\r\non-run-end:\r\n  - {END}\r\n")
    );
}

#[test]
fn missing_final_newline_stays_missing() {
    assert_eq!(
        hooks("name: x\non-run-start: a"),
        format!("name: x\non-run-start:\n  - a\n  - {START}\non-run-end:\n  - {END}")
    );
    assert_eq!(
        hooks("name: x\non-run-end:\n  - a"),
        format!("name: x\non-run-end:\n  - a\n  - {END}\non-run-start:\n  - {START}")
    );
    assert_eq!(
        hooks("name: x"),
        format!("name: x\n\non-run-start:\n  - {START}\non-run-end:\n  - {END}")
    );
    assert_eq!(
        hooks("name: x\non-run-start: [a]\non-run-end: ~"),
        format!("name: x\non-run-start: [a, {START}]\non-run-end:\n  - {END}")
    );
}

#[test]
fn four_space_lists_and_byte_order_mark() {
    let input = "\u{feff}name: x\nmodel-paths:\n    - models\n";
    assert_eq!(
        hooks(input),
        format!("\u{feff}name: x\nmodel-paths:\n    - models\n\non-run-start:\n    - {START}\non-run-end:\n    - {END}\n")
    );
}

#[test]
fn non_ascii_text_before_the_edit() {
    let input = "name: x  # café\non-run-start: [\"héllo ✓\"]  # ✓\non-run-end: \"ünï\"\n";
    assert_eq!(
        hooks(input),
        format!(
            "name: x  # café\non-run-start: [\"héllo ✓\", {START}]  # ✓\non-run-end:\n  - \"ünï\"\n  - {END}\n"
        )
    );
}

#[test]
fn already_present_changes_nothing() {
    let input = format!("{HEAD}on-run-start:\n  - {START}\non-run-end: [\"{{{{clyra_guard.on_run_end( results )}}}}\"]\n");
    let e = add_hooks("dbt_project.yml", &input).unwrap();
    assert!(e.changes.is_empty());
    assert_eq!(e.text, input);
    // A hook the user added by hand inside a shape Clyra does not edit also counts.
    let input = "name: x\non-run-start: &s [\"{{ clyra_guard.on_run_start() }}\"]\non-run-end: *s  # {{ clyra_guard.on_run_end(results) }}\n";
    assert!(add_hooks("dbt_project.yml", input).is_err());
    let input = "name: x\non-run-start: &s [\"{{ clyra_guard.on_run_start() }}\", \"{{ clyra_guard.on_run_end(results) }}\"]\non-run-end: [\"{{ clyra_guard.on_run_end(results) }}\"]\n";
    assert!(add_hooks("dbt_project.yml", input)
        .unwrap()
        .changes
        .is_empty());
}

#[test]
fn changes_name_the_lines() {
    let e = add_hooks("dbt_project.yml", "name: x\non-run-start:\n  - a\n").unwrap();
    assert_eq!(
        e.changes,
        vec![
            format!("added `{START}` to `on-run-start` (line 4)"),
            format!("added `on-run-end` with `{END}` (line 6)"),
        ]
    );
    let lines: Vec<&str> = e.text.lines().collect();
    assert_eq!(lines.get(3), Some(&format!("  - {START}").as_str()));
    assert_eq!(lines.get(5), Some(&format!("  - {END}").as_str()));
}

#[test]
fn refusals_name_the_line_and_print_the_lines_to_add() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "name: x\non-run-start: &h [\"a\"]\non-run-end: *h\n",
            2,
            "anchor",
        ),
        ("name: x\nbase: &h [\"a\"]\non-run-start: *h\n", 3, "alias"),
        ("name: x\n---\nname: y\n", 2, "several YAML documents"),
        ("name: x\n...\n", 2, "document end marker"),
        ("name: x\non-run-start:\n  - a\t# tab\n", 3, "tab"),
        (
            "name: x\non-run-start: {{ my_hooks() }}\n",
            2,
            "unquoted Jinja",
        ),
        (
            "name: x\non-run-start:\n  - {{ a() }}\n",
            2,
            "unquoted Jinja",
        ),
        (
            "name: x\non-run-start: \"{{ ['select 1', 'select 2'] }}\"\n",
            2,
            "built by Jinja",
        ),
        ("name: x\non-run-start: a\non-run-start: b\n", 3, "twice"),
        (
            "base: &b\n  on-run-start: [a]\n<<: *b\nname: x\n",
            3,
            "merge key",
        ),
        ("{name: x, on-run-start: [a]}\n", 1, "block style"),
        (
            "name: x\non-run-start: |2\n    select 1\n",
            2,
            "indentation indicator",
        ),
        ("", 1, "no mapping"),
        ("# only a comment\n", 1, "no mapping"),
        ("- a\n- b\n", 1, "not a mapping"),
        ("name: [x\n", 2, "not valid YAML"),
        ("name: x\non-run-start: !!str a\n", 2, "tag"),
        ("name: x\n? on-run-start\n: a\n", 2, "start of the line"),
        ("name: x\non-run-start:\n  - [a, b]\n", 2, "nested list"),
        ("name: x\non-run-start: a\rb\n", 2, "disagree"),
        ("name: x\r\non-run-start: a\r", 2, "disagree"),
        ("name: x\non-run-start: a\u{2028}\n", 2, "disagree"),
    ];
    for (input, line, reason) in cases {
        let r = refused(input);
        assert_eq!(r.line, *line, "{input:?}: {r}");
        assert!(r.reason.contains(reason), "{input:?}: {r}");
        assert!(r.to_string().contains("dbt_project.yml"), "{r}");
    }
    assert_eq!(
        hooks_by_hand(),
        format!("on-run-start:\n  - {START}\non-run-end:\n  - {END}\n")
    );
}

#[test]
fn packages_file_created_appended_and_kept() {
    let want = "packages:\n  - local: .clyra/dbt/clyra_guard\n";
    assert_eq!(package(""), want);
    assert_eq!(package("# deps\n"), format!("# deps\n\n{want}"));
    assert_eq!(package("packages:\n"), want);
    assert_eq!(
        package("packages: []  # none\n"),
        "packages: [{local: .clyra/dbt/clyra_guard}]  # none\n"
    );
    let hub = "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n  # - git: https://example.com/x.git\n\n  - local: ../shared   # ours\n";
    assert_eq!(
        package(hub),
        "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n  # - git: https://example.com/x.git\n\n  - local: ../shared   # ours\n  - local: .clyra/dbt/clyra_guard\n"
    );
    let present = "packages:\n- local: ./.clyra/dbt/clyra_guard/\n";
    let e = add_local_package("packages.yml", present, ".clyra/dbt/clyra_guard").unwrap();
    assert!(e.changes.is_empty());
    assert_eq!(e.text, present);
    assert_eq!(
        package("projects:\n  - name: core\n"),
        "projects:\n  - name: core\n\npackages:\n  - local: .clyra/dbt/clyra_guard\n"
    );
    assert_eq!(
        package("packages:\r\n  - package: a/b\r\n    version: 1.0.0"),
        "packages:\r\n  - package: a/b\r\n    version: 1.0.0\r\n  - local: .clyra/dbt/clyra_guard"
    );
    let r = add_local_package(
        "packages.yml",
        "packages: dbt_utils\n",
        ".clyra/dbt/clyra_guard",
    )
    .unwrap_err();
    assert!(r.reason.contains("expected a list"), "{r}");
    assert_eq!(r.by_hand, want);
}

// ---------------------------------------------------------------------------------------------
// Properties.

use proptest::prelude::*;

/// A hook key's value in one of the shapes the editor handles (true) or refuses (false).
fn hook_value() -> impl Strategy<Value = (String, bool)> {
    hook_value_().prop_map(|(v, ok)| (v.to_owned(), ok))
}

fn hook_value_() -> impl Strategy<Value = (&'static str, bool)> {
    prop_oneof![
        Just(("", true)),
        Just((":\n", true)),
        Just((": ~  # none\n", true)),
        Just((": \"select 1\"\n", true)),
        Just((": 'a # b'   # c\n", true)),
        Just((": select 1\n", true)),
        Just((":\n  - \"{{ a() }}\"\n  # c\n  - 'b'\n", true)),
        Just((":\n- a\n\n- b\n", true)),
        Just((":\n    - a: b\n", false)),
        Just((": []\n", true)),
        Just((": [\"a\", 'b']  # c\n", true)),
        Just((": [\n    \"a\",\n    b,\n  ]\n", true)),
        Just((": |\n  select 1;\n", true)),
        Just((": >-\n    select\n    1\n", true)),
        Just((":\n  \"{{ x }}\"\n", true)),
        Just((": &x [a]\n", false)),
        Just((": {{ hooks() }}\n", false)),
        Just((": \"{{ clyra_guard.on_run_start() }}\"\n", true)),
        Just((": [\"{{ clyra_guard.on_run_end(results) }}\"]\n", true)),
    ]
}

fn other_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name: 'shop'\n".to_owned()),
        Just("version: \"1.0\"  # v\n".to_owned()),
        Just("config-version: 2\n".to_owned()),
        Just("profile: shop\n".to_owned()),
        Just("model-paths: [\"models\"]\n".to_owned()),
        Just("clean-targets:\n  - target\n  - dbt_packages\n".to_owned()),
        Just(
            "models:\n  shop:\n    # staging\n    staging:\n      +materialized: view\n".to_owned()
        ),
        Just("vars:\n  start: '2024-01-01'\n  list: [1, 2]\n".to_owned()),
        Just("description: |\n  Shop models.\n  # not a comment\n".to_owned()),
        Just("defaults: &d\n  +tags: [a]\nseeds:\n  shop: *d\n".to_owned()),
        Just("# a comment\n".to_owned()),
        Just("\n".to_owned()),
    ]
}

fn project() -> impl Strategy<Value = (String, bool)> {
    (
        proptest::collection::vec(other_entry(), 0..6),
        hook_value(),
        hook_value(),
        0usize..7,
        0usize..7,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(""), Just("'"), Just("\"")],
    )
        .prop_map(|(others, start, end, at_s, at_e, crlf, final_nl, q)| {
            let mut parts: Vec<String> = vec!["name: shop\n".into()];
            parts.extend(others);
            let mut ok = true;
            for ((value, good), at, key) in
                [(start, at_s, "on-run-start"), (end, at_e, "on-run-end")]
            {
                if value.is_empty() {
                    continue;
                }
                ok &= good;
                let entry = format!("{q}{key}{q}{value}");
                let at = at.min(parts.len());
                parts.insert(at, entry);
            }
            let mut text: String = parts.concat();
            if !final_nl {
                while text.ends_with('\n') {
                    text.pop();
                }
            }
            // A literal block scalar (clip chomping) that ends a file without a final newline
            // gains a line break from any line added after it: the edit must refuse then. It
            // ends the file even when blank parts came after it (their newlines are gone).
            if !final_nl && text.ends_with(": |\n  select 1;") {
                ok = false;
            }
            if crlf {
                text = text.replace('\n', "\r\n");
            }
            (text, ok)
        })
}

/// The value of `key` as a list of strings, the way dbt reads it (null: none, a string: one).
fn as_hook_list(root: &Node, key: &str) -> Option<Vec<String>> {
    match root.get(key) {
        None => Some(Vec::new()),
        Some(n) if n.is_null() => Some(Vec::new()),
        Some(Node::Scalar { value, .. }) => Some(vec![value.clone()]),
        Some(Node::Seq { items, .. }) => items
            .iter()
            .map(|i| i.scalar().map(str::to_owned))
            .collect(),
        Some(_) => None,
    }
}

fn others(root: &Node) -> Vec<(Node, Node)> {
    match root {
        Node::Map { entries, .. } => entries
            .iter()
            .filter(|(k, _)| !matches!(k.scalar(), Some("on-run-start" | "on-run-end")))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// For generated dbt_project.yml files the edit either refuses (only shapes it must refuse)
    /// or gives a file whose parse is the original's plus the hooks, every other line kept.
    #[test]
    fn edits_add_exactly_the_hooks((text, ok) in project()) {
        let before = parse(&text).unwrap().root.unwrap();
        match add_hooks("dbt_project.yml", &text) {
            Err(r) => prop_assert!(!ok, "refused a shape it handles: {r}\n{text}"),
            Ok(e) => {
                let after = parse(&e.text).unwrap().root.unwrap();
                prop_assert_eq!(others(&before), others(&after));
                for (key, call, hook) in HOOKS {
                    let old = as_hook_list(&before, key).unwrap();
                    let new = as_hook_list(&after, key).unwrap();
                    if old.iter().any(|h| h.replace(' ', "").contains(call)) {
                        prop_assert_eq!(old, new);
                    } else {
                        let mut want = old.clone();
                        want.push(hook.to_owned());
                        prop_assert_eq!(want, new);
                    }
                }
                // Every line of the input is still there, in order, up to its indentation
                // (the hook keys' own lines aside).
                // A flow list's last line gains the hook: compare it with and without.
                let variants = |o: &str| {
                    let mut v = vec![o.to_owned()];
                    for (_, _, hook) in HOOKS {
                        for q in ["\"", "'"] {
                            let h = format!("{q}{hook}{q}");
                            for form in [format!(", {h}"), format!(" {h}"), h] {
                                v.push(o.replacen(&form, "", 1));
                            }
                        }
                    }
                    v
                };
                let mut out = e.text.lines().map(|l| variants(l.trim_start()));
                for line in text.lines() {
                    let t = line.trim_start();
                    if t.starts_with("on-run-") || t.starts_with("'on-run-") || t.starts_with("\"on-run-") {
                        continue;
                    }
                    prop_assert!(
                        out.any(|v| v.iter().any(|o| o == t || o.strip_prefix("- ") == Some(t))),
                        "lost line {t:?}\n{}", e.text
                    );
                }
                prop_assert_eq!(text.contains("\r\n"), e.text.contains("\r\n"));
                prop_assert_eq!(text.ends_with('\n'), e.text.ends_with('\n'));
                let again = add_hooks("dbt_project.yml", &e.text).unwrap();
                prop_assert!(again.changes.is_empty());
            }
        }
    }

    /// Arbitrary text never panics the editor, and what it accepts it accepts once.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        fuzz(text.as_bytes());
    }

    /// Aliases of aliases do not make the search through them explode.
    #[test]
    fn alias_bombs_stay_cheap(n in 8usize..20) {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x]\n");
        for i in 1..n {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        text.push_str(&format!("name: x\non-run-start: *a{}\n", n - 1));
        prop_assert!(add_hooks("dbt_project.yml", &text).is_err());
    }

    /// YAML-flavoured noise: the characters and line shapes that matter to the editor.
    #[test]
    fn yaml_noise_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("on-run-start"), Just("on-run-end"), Just("packages"), Just(":"), Just(": "),
        Just("\n"), Just("\r\n"), Just("\r"), Just("  "), Just("- "), Just("["), Just("]"),
        Just("{"), Just("}"), Just(","), Just("'"), Just("\""), Just("#"), Just("|"), Just(">"),
        Just("&a "), Just("*a"), Just("~"), Just("é"), Just("\t"), Just("---\n"), Just("...\n"),
        Just("{{ x() }}"), Just("local: .clyra/dbt/clyra_guard"), Just("\u{feff}"), Just("a"),
    ], 0..40)) {
        fuzz(parts.concat().as_bytes());
    }
}

#[test]
fn a_file_ending_in_a_block_scalar_without_newline_gets_the_keys_earlier() {
    // Appending after `|` text with no final newline would add a line break to that text.
    let input = "name: x\ndescription: |\n  Shop.";
    assert_eq!(
        hooks(input),
        format!(
            "name: x\non-run-start:\n  - {START}\non-run-end:\n  - {END}\ndescription: |\n  Shop."
        )
    );
}

#[test]
fn a_block_list_ending_in_a_block_scalar_at_the_end_of_the_file_is_refused() {
    let r = refused("name: x\non-run-start:\n  - |\n    select 1");
    assert!(r.reason.contains("would gain a line break"), "{r}");
}

#[test]
fn another_clyra_guard_entry_is_found_and_ours_is_not() {
    let ours = ".clyra/dbt/clyra_guard";
    let other = |t: &str| super::other_clyra_guard(t, ours);
    assert_eq!(
        other("packages:\n  - local: ../../dbt/clyra_guard\n").as_deref(),
        Some("local: ../../dbt/clyra_guard")
    );
    assert_eq!(
        other("packages:\n  - git: https://github.com/clyra-dev/clyra.git\n    subdirectory: dbt/clyra_guard\n")
            .as_deref(),
        Some("git: https://github.com/clyra-dev/clyra.git")
    );
    assert_eq!(
        other("packages:\n  - local: .clyra/dbt/clyra_guard\n"),
        None
    );
    assert_eq!(
        other("packages:\n  - local: .clyra/dbt/clyra_guard/\n"),
        None
    );
    assert_eq!(
        other("packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n"),
        None
    );
    assert_eq!(other("not: [a list\n"), None);
    assert_eq!(other(""), None);
}
