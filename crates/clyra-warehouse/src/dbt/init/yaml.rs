//! A small, careful editor for the top-level lists `clyra dbt init` extends: `on-run-start` and
//! `on-run-end` in `dbt_project.yml`, `packages` in `packages.yml` / `dependencies.yml`.
//!
//! No YAML library round-trips comments and layout reliably, so the edit is made on lines, and
//! only where the file has a shape this module knows (the key absent, null, a single string, a
//! block list, a flow list). Everything it does not need to touch stays byte for byte: comments,
//! blank lines, key order, quoting, indentation, CRLF line endings, a missing final newline.
//!
//! Every edit is then checked: the file is parsed before and after (YAML 1.2 events from
//! `saphyr-parser`, the parser the policy loader uses) and the two trees must differ by exactly the
//! intended item. Anything else (an anchor or alias on the key, several documents, tabs, a hook
//! list built by Jinja, a layout the line editor would get wrong) is refused with the file, the
//! line and the lines to add by hand; a refused file is never written.

use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Files larger than this are refused (a dbt_project.yml is a few KiB).
pub(crate) const MAX_BYTES: usize = 2 << 20;
/// Deeper nesting is refused (keeps the tree walks shallow).
const MAX_DEPTH: usize = 128;
/// Null as the YAML 1.2 core schema (and PyYAML) write it in plain style.
const NULLS: &[&str] = &["", "~", "null", "Null", "NULL"];

/// The result of an edit: the new text and what changed (empty when the item was already there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The file's new text (the input unchanged when nothing was needed).
    pub text: String,
    /// One line per change, e.g. ``added `"{{ clyra_guard.on_run_start() }}"` to `on-run-start` (line 12)``.
    pub changes: Vec<String>,
}

/// Why a file was not edited, where, and what to add by hand instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot edit `{file}` safely (line {line}): {reason}")]
pub struct Refused {
    /// The file's name as given.
    pub file: String,
    /// The 1-based line the problem is on.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
    /// The YAML to add by hand.
    pub by_hand: String,
}

/// The hook calls `clyra dbt init` adds, as (key, the call that marks it present, the hook text).
pub const HOOKS: [(&str, &str, &str); 2] = [
    (
        "on-run-start",
        "clyra_guard.on_run_start(",
        "{{ clyra_guard.on_run_start() }}",
    ),
    (
        "on-run-end",
        "clyra_guard.on_run_end(",
        "{{ clyra_guard.on_run_end(results) }}",
    ),
];

/// Adds the clyra_guard hooks to a `dbt_project.yml`'s `on-run-start` and `on-run-end`.
///
/// # Errors
/// [`Refused`] when the file has a shape that cannot be edited safely.
pub fn add_hooks(file: &str, text: &str) -> Result<Edited, Refused> {
    let by_hand = hooks_by_hand();
    let mut current = text.to_owned();
    let mut changes = Vec::new();
    let mut markers = Vec::new();
    for (i, (key, call, hook)) in HOOKS.iter().enumerate() {
        let sibling = HOOKS.get(1 - i).map(|h| h.0);
        let item = Item::Hook { key, call, hook };
        let before = changes.len();
        current = add_item(file, &current, &item, sibling, &by_hand, &mut changes)?;
        if changes.len() > before {
            markers.push(*hook);
        }
    }
    let changes = final_lines(changes, &markers, &current);
    Ok(Edited {
        text: current,
        changes,
    })
}

/// Adds `- local: <path>` to the `packages` list of a `packages.yml` or `dependencies.yml`
/// (created when the key is absent; an empty text gives a new file).
///
/// # Errors
/// [`Refused`] when the file has a shape that cannot be edited safely.
pub fn add_local_package(file: &str, text: &str, path: &str) -> Result<Edited, Refused> {
    let by_hand = format!("packages:\n  - local: {path}\n");
    let mut changes = Vec::new();
    let item = Item::Package { path };
    let text = add_item(file, text, &item, None, &by_hand, &mut changes)?;
    let marker = format!("local: {path}");
    let changes = final_lines(changes, &[marker.as_str()], &text);
    Ok(Edited { text, changes })
}

/// An entry of the `packages` list that already brings in `clyra_guard` from somewhere else than
/// `path` (a `local:` path ending in `clyra_guard`, as in this repository's example, or a `git:` /
/// hub `package:` naming it): dbt would refuse two packages of one name, so init leaves it.
pub fn other_clyra_guard(text: &str, path: &str) -> Option<String> {
    let doc = parse(text).ok()?;
    let Some(Node::Seq { items, .. }) = doc.root.as_ref()?.get("packages") else {
        return None;
    };
    items.iter().find_map(|item| {
        for key in ["local", "git", "package"] {
            let Some(v) = item.get(key).and_then(Node::scalar) else {
                continue;
            };
            let v = v.trim();
            let last = v
                .trim_end_matches(['/', '\\'])
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or_default();
            let subdir = item
                .get("subdirectory")
                .and_then(Node::scalar)
                .unwrap_or_default();
            let named = last == "clyra_guard"
                || last.trim_end_matches(".git") == "clyra_guard"
                || subdir.trim_end_matches('/').ends_with("clyra_guard");
            if named && !(key == "local" && v.trim_end_matches('/') == path) {
                return Some(format!("{key}: {v}"));
            }
        }
        None
    })
}

/// Rewrites each change's `(line N)` to the line of the final text holding its marker (a later
/// edit may have moved it).
fn final_lines(changes: Vec<String>, markers: &[&str], text: &str) -> Vec<String> {
    changes
        .into_iter()
        .zip(markers)
        .map(|(change, marker)| {
            let found = text
                .lines()
                .position(|l| l.contains(marker) && !l.trim_start().starts_with('#'));
            match (change.rfind(" (line "), found) {
                (Some(at), Some(n)) => {
                    format!("{} (line {})", change.get(..at).unwrap_or_default(), n + 1)
                }
                _ => change,
            }
        })
        .collect()
}

/// The hooks as a user adds them by hand.
pub fn hooks_by_hand() -> String {
    let mut s = String::new();
    for (key, _, hook) in HOOKS {
        s.push_str(&format!("{key}:\n  - \"{hook}\"\n"));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// What is added.

#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    /// A dbt hook string.
    Hook {
        key: &'a str,
        call: &'a str,
        hook: &'a str,
    },
    /// `local: <path>` in a packages list.
    Package { path: &'a str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    Double,
    Single,
}

impl Item<'_> {
    fn key(&self) -> &str {
        match self {
            Item::Hook { key, .. } => key,
            Item::Package { .. } => "packages",
        }
    }

    /// A hook may be a single string; a packages list may not.
    fn scalar_ok(&self) -> bool {
        matches!(self, Item::Hook { .. })
    }

    /// A file with no mapping at all (empty, comments only) may get the key: dependency files
    /// may be empty, a dbt_project.yml may not.
    fn empty_ok(&self) -> bool {
        matches!(self, Item::Package { .. })
    }

    fn block(&self, q: Quote) -> String {
        match self {
            Item::Hook { hook, .. } => quoted(hook, q),
            Item::Package { path } => format!("local: {path}"),
        }
    }

    fn flow(&self, q: Quote) -> String {
        match self {
            Item::Hook { hook, .. } => quoted(hook, q),
            Item::Package { path } => format!("{{local: {path}}}"),
        }
    }

    fn node(&self, q: Quote) -> Node {
        match self {
            Item::Hook { hook, .. } => Node::Scalar {
                value: (*hook).to_owned(),
                style: match q {
                    Quote::Double => Style::Double,
                    Quote::Single => Style::Single,
                },
                props: Props::default(),
            },
            Item::Package { path } => Node::Map {
                entries: vec![(plain("local"), plain(path))],
                props: Props::default(),
            },
        }
    }

    /// Whether `value` (the key's whole value) already holds the item, looking through aliases
    /// (so that a hook added by hand to an anchored list counts).
    fn present_in(&self, value: &Node, anchors: &Anchors) -> bool {
        match self {
            Item::Hook { call, .. } => {
                let mut found = false;
                let mut budget = WALK_BUDGET;
                value.walk_scalars(anchors, &mut budget, &mut |s| {
                    let squeezed: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                    found |= squeezed.contains(call);
                });
                found
            }
            Item::Package { path } => {
                let want = normalize_path(path);
                let Node::Seq { items, .. } = anchors.resolve(value) else {
                    return false;
                };
                items.iter().any(|item| match anchors.resolve(item) {
                    Node::Map { entries, .. } => entries.iter().any(|(k, v)| {
                        k.scalar() == Some("local") && v.scalar().map(normalize_path) == Some(want)
                    }),
                    _ => false,
                })
            }
        }
    }

    fn describe(&self, q: Quote) -> String {
        match self {
            Item::Hook { .. } => format!("`{}`", self.block(q)),
            Item::Package { .. } => format!("`- {}`", self.block(q)),
        }
    }
}

fn quoted(s: &str, q: Quote) -> String {
    match q {
        Quote::Double => format!("\"{s}\""),
        Quote::Single => format!("'{s}'"),
    }
}

fn normalize_path(p: &str) -> &str {
    let mut p = p.trim();
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    p.trim_end_matches('/')
}

// ---------------------------------------------------------------------------------------------
// The parsed tree used to check edits.

/// A YAML node as the check compares it: scalars keep their text and style, collections their
/// order, anchors their number and aliases stay references (never expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Scalar {
        value: String,
        style: Style,
        props: Props,
    },
    Seq {
        items: Vec<Node>,
        props: Props,
    },
    Map {
        entries: Vec<(Node, Node)>,
        props: Props,
    },
    Alias(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Single,
    Double,
    Literal,
    Folded,
}

/// Anchor number (0: none) and tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Props {
    anchor: usize,
    tag: Option<(String, String)>,
}

impl Props {
    fn is_empty(&self) -> bool {
        self.anchor == 0 && self.tag.is_none()
    }
}

fn plain(s: &str) -> Node {
    Node::Scalar {
        value: s.to_owned(),
        style: Style::Plain,
        props: Props::default(),
    }
}

impl Node {
    pub(crate) fn scalar(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { value, style: Style::Plain, props } if props.is_empty() && NULLS.contains(&value.as_str()))
    }

    fn props(&self) -> Option<&Props> {
        match self {
            Node::Scalar { props, .. } | Node::Seq { props, .. } | Node::Map { props, .. } => {
                Some(props)
            }
            Node::Alias(_) => None,
        }
    }

    /// Calls `f` on every scalar, keys included, through aliases, visiting at most `budget`
    /// nodes (aliases of aliases can multiply a small file into a huge tree).
    fn walk_scalars(&self, anchors: &Anchors, budget: &mut usize, f: &mut dyn FnMut(&str)) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        match self {
            Node::Scalar { value, .. } => f(value),
            Node::Seq { items, .. } => items
                .iter()
                .for_each(|n| n.walk_scalars(anchors, budget, f)),
            Node::Map { entries, .. } => entries.iter().for_each(|(k, v)| {
                k.walk_scalars(anchors, budget, f);
                v.walk_scalars(anchors, budget, f);
            }),
            Node::Alias(id) => {
                if let Some(n) = anchors.0.get(id) {
                    n.walk_scalars(anchors, budget, f);
                }
            }
        }
    }

    /// The value of top-level key `key`, when this is a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map { entries, .. } => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The most nodes a search through aliases visits.
const WALK_BUDGET: usize = 100_000;

/// The anchored nodes of a document, by anchor number.
#[derive(Debug, Default)]
pub(crate) struct Anchors(std::collections::HashMap<usize, Node>);

impl Anchors {
    /// The node an alias stands for (one level), or the node itself.
    fn resolve<'a>(&'a self, n: &'a Node) -> &'a Node {
        match n {
            Node::Alias(id) => self.0.get(id).unwrap_or(n),
            _ => n,
        }
    }
}

/// A top-level mapping entry and where it is.
#[derive(Debug, Clone)]
struct Top {
    /// The key's text when it is a scalar.
    key: Option<String>,
    /// 0-based line and character column of the key.
    line: usize,
    col: usize,
}

/// A parsed single-document file.
#[derive(Debug)]
pub(crate) struct Doc {
    /// The document's root; `None` for a file with no document (empty, comments only).
    pub(crate) root: Option<Node>,
    top: Vec<Top>,
    /// The last scalar of the document is a block scalar (`|`, `>`) that keeps a final line break.
    ends_in_block_scalar: bool,
    anchors: Anchors,
}

/// A parse failure: 0-based line and message.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

enum Frame {
    Seq(Vec<Node>, Props),
    Map(Vec<(Node, Node)>, Props, Option<Node>),
}

/// Parses one YAML document into a [`Node`] tree, recording the top-level keys' positions.
pub(crate) fn parse(text: &str) -> Result<Doc, ParseError> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut top: Vec<Top> = Vec::new();
    let mut documents = 0usize;
    let mut ends_in_block_scalar = false;
    let mut anchors = Anchors::default();
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|e| ParseError {
            line: e.marker().line().saturating_sub(1),
            message: format!("not valid YAML: {}", e.info()),
        })?;
        let line = span.start.line().saturating_sub(1);
        let col = span.start.col();
        // A node starting directly in the root mapping, in key position: a top-level key.
        let starts_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        if starts_node && frames.len() == 1 {
            if let Some(Frame::Map(_, _, None)) = frames.first() {
                let key = match &event {
                    Event::Scalar(v, ..) => Some(v.to_string()),
                    _ => None,
                };
                top.push(Top { key, line, col });
            }
        }
        let done = match event {
            Event::Nothing | Event::StreamStart | Event::DocumentEnd | Event::StreamEnd => None,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(ParseError {
                        line,
                        message: "the file holds several YAML documents (`---`)".into(),
                    });
                }
                None
            }
            Event::Alias(id) => Some(Node::Alias(id)),
            Event::Scalar(value, style, anchor, tag) => {
                // Strip chomping (`|-`) keeps no final line break wherever the scalar ends.
                ends_in_block_scalar = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                    && value.ends_with('\n');
                Some(Node::Scalar {
                    value: value.into_owned(),
                    style: match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted => Style::Single,
                        ScalarStyle::DoubleQuoted => Style::Double,
                        ScalarStyle::Literal => Style::Literal,
                        ScalarStyle::Folded => Style::Folded,
                    },
                    props: Props {
                        anchor,
                        tag: tag.map(|t| (t.handle.clone(), t.suffix.clone())),
                    },
                })
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if frames.len() >= MAX_DEPTH {
                    return Err(ParseError {
                        line,
                        message: format!("nested deeper than {MAX_DEPTH} levels"),
                    });
                }
                let props = Props {
                    anchor,
                    tag: tag.as_ref().map(|t| (t.handle.clone(), t.suffix.clone())),
                };
                let is_seq = matches!(event, Event::SequenceStart(..));
                frames.push(if is_seq {
                    Frame::Seq(Vec::new(), props)
                } else {
                    Frame::Map(Vec::new(), props, None)
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match frames.pop() {
                Some(Frame::Seq(items, props)) => Some(Node::Seq { items, props }),
                Some(Frame::Map(entries, props, _)) => Some(Node::Map { entries, props }),
                None => None,
            },
        };
        if let Some(node) = done {
            if let Some(id) = node.props().map(|p| p.anchor).filter(|a| *a != 0) {
                anchors.0.insert(id, node.clone());
            }
            match frames.last_mut() {
                Some(Frame::Seq(items, _)) => items.push(node),
                Some(Frame::Map(entries, _, pending)) => match pending.take() {
                    Some(k) => entries.push((k, node)),
                    None => *pending = Some(node),
                },
                None => {
                    if root.is_some() {
                        return Err(ParseError {
                            line,
                            message: "the file holds several YAML documents".into(),
                        });
                    }
                    root = Some(node);
                }
            }
        }
    }
    // Only top-level keys of a mapping root count.
    if !matches!(root, Some(Node::Map { .. })) {
        top.clear();
    }
    Ok(Doc {
        root,
        top,
        ends_in_block_scalar,
        anchors,
    })
}

// ---------------------------------------------------------------------------------------------
// Lines.

#[derive(Debug, Clone)]
struct Line {
    text: String,
    /// `"\n"`, `"\r\n"`, or `""` for a last line without a final newline.
    eol: &'static str,
}

fn split_lines(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(i) => {
                let (l, r) = rest.split_at(i);
                let (text, eol) = match l.strip_suffix('\r') {
                    Some(t) => (t, "\r\n"),
                    None => (l, "\n"),
                };
                lines.push(Line {
                    text: text.to_owned(),
                    eol,
                });
                rest = r.get(1..).unwrap_or_default();
            }
            None => {
                lines.push(Line {
                    text: rest.to_owned(),
                    eol: "",
                });
                rest = "";
            }
        }
    }
    lines
}

fn join_lines(lines: &[Line]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(&l.text);
        s.push_str(l.eol);
    }
    s
}

/// The file's line ending: CRLF when most lines end so.
fn dominant_eol(lines: &[Line]) -> &'static str {
    let crlf = lines.iter().filter(|l| l.eol == "\r\n").count();
    let lf = lines.iter().filter(|l| l.eol == "\n").count();
    if crlf > lf {
        "\r\n"
    } else {
        "\n"
    }
}

fn indent_of(s: &str) -> usize {
    s.len() - s.trim_start_matches(' ').len()
}

/// Blank or comment-only.
fn is_gap(s: &str) -> bool {
    let t = s.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

/// The byte offset of character column `col` in `s`.
fn byte_of_col(s: &str, col: usize) -> Option<usize> {
    if col == 0 {
        return Some(0);
    }
    s.char_indices()
        .nth(col)
        .map(|(i, _)| i)
        .or_else(|| (s.chars().count() == col).then_some(s.len()))
}

/// `s` without a trailing comment (a `#` at the start or after white space). Only for text with
/// no quotes.
fn strip_comment(s: &str) -> &str {
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || matches!(bytes.get(i - 1), Some(b' ' | b'\t'))) {
            return s.get(..i).unwrap_or(s);
        }
    }
    s
}

/// Inserts `new` after line `after` (`None`: at the top), keeping a missing final newline missing.
fn insert_lines(lines: &mut Vec<Line>, after: Option<usize>, new: &[String], eol: &'static str) {
    if new.is_empty() {
        return;
    }
    let at = after.map_or(0, |i| i + 1);
    let mut last_eol = eol;
    if let Some(prev) = after.and_then(|i| lines.get_mut(i)) {
        if prev.eol.is_empty() {
            prev.eol = eol;
            last_eol = "";
        }
    }
    let count = new.len();
    let items = new.iter().enumerate().map(|(i, text)| Line {
        text: text.clone(),
        eol: if i + 1 == count { last_eol } else { eol },
    });
    let tail = lines.split_off(at.min(lines.len()));
    lines.extend(items);
    lines.extend(tail);
}

// ---------------------------------------------------------------------------------------------
// The edit.

struct Ctx<'a> {
    file: &'a str,
    by_hand: &'a str,
}

impl Ctx<'_> {
    fn refuse(&self, line0: usize, reason: impl fmt::Display) -> Refused {
        Refused {
            file: self.file.to_owned(),
            line: line0 + 1,
            reason: reason.to_string(),
            by_hand: self.by_hand.to_owned(),
        }
    }
}

/// What the key's value becomes, for the check.
enum Expect {
    /// A new entry at this index of the root mapping.
    NewKey(usize),
    /// The value (null) replaced by a one-item list.
    Replace,
    /// The single string wrapped into a list, then the item.
    Wrap,
    /// The item appended to the list.
    Push,
}

fn add_item(
    file: &str,
    text: &str,
    item: &Item,
    sibling: Option<&str>,
    by_hand: &str,
    changes: &mut Vec<String>,
) -> Result<String, Refused> {
    let cx = Ctx { file, by_hand };
    let key = item.key();
    if text.len() > MAX_BYTES {
        return Err(cx.refuse(
            0,
            format!("the file is larger than {} MiB", MAX_BYTES >> 20),
        ));
    }
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    // Line breaks YAML parsers disagree about (YAML 1.1, which dbt's PyYAML reads, counts NEL,
    // LS, PS and a lone CR as line breaks; YAML 1.2 only the last).
    let pieces: Vec<&str> = body.split('\n').collect();
    for (n, l) in pieces.iter().enumerate() {
        // A CR is part of a line ending only when a LF follows it.
        let l = if n + 1 < pieces.len() {
            l.strip_suffix('\r').unwrap_or(l)
        } else {
            l
        };
        if let Some(c) = l
            .chars()
            .find(|c| matches!(c, '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'))
        {
            return Err(cx.refuse(
                n,
                format!("the line holds {c:?}, which YAML readers disagree about"),
            ));
        }
    }
    let lines = split_lines(body);
    if let Some(n) = lines
        .iter()
        .position(|l| l.text == "..." || l.text.starts_with("... ") || l.text.starts_with("...#"))
    {
        return Err(cx.refuse(
            n,
            "a document end marker `...`: Clyra edits single-document files only",
        ));
    }
    let doc = parse(body).map_err(|e| cx.refuse(e.line, e.message))?;
    let root_entries = match &doc.root {
        Some(Node::Map { entries, props }) => {
            if !props.is_empty() {
                return Err(cx.refuse(0, "the top-level mapping has an anchor or a tag"));
            }
            Some(entries)
        }
        None => None,
        Some(n) if n.is_null() => None,
        Some(_) => {
            return Err(cx.refuse(0, "the top level is not a mapping of keys"));
        }
    };
    let Some(entries) = root_entries else {
        if !item.empty_ok() {
            return Err(cx.refuse(0, "the file holds no mapping of keys (is it empty?)"));
        }
        return add_key(
            &cx,
            body,
            bom,
            lines,
            &doc,
            item,
            None,
            0,
            changes,
            Quote::Double,
        );
    };
    if entries.len() != doc.top.len() {
        return Err(cx.refuse(0, "cannot locate the top-level keys"));
    }
    // The root must be a block mapping: every key starts its line (after `? ` for complex keys).
    let mut root_col = None;
    for t in &doc.top {
        let line = lines
            .get(t.line)
            .map(|l| l.text.as_str())
            .unwrap_or_default();
        let before = byte_of_col(line, t.col).and_then(|b| line.get(..b));
        let ok = before.is_some_and(|b| {
            let b = b.trim_matches(' ');
            b.is_empty() || b == "?"
        });
        if !ok {
            return Err(cx.refuse(
                t.line,
                "the top-level mapping is not in block style (`key: value` lines)",
            ));
        }
        if t.key.as_deref() == Some("<<") {
            return Err(cx.refuse(
                t.line,
                format!("a merge key `<<` at the top level may supply `{key}`"),
            ));
        }
        root_col.get_or_insert(t.col);
    }
    let ind = root_col.unwrap_or(0);
    let found: Vec<usize> = doc
        .top
        .iter()
        .enumerate()
        .filter(|(_, t)| t.key.as_deref() == Some(key))
        .map(|(i, _)| i)
        .collect();
    let quote = pick_quote(entries, key, sibling);
    match found.as_slice() {
        [] => {
            let after =
                sibling.and_then(|s| doc.top.iter().position(|t| t.key.as_deref() == Some(s)));
            add_key(
                &cx, body, bom, lines, &doc, item, after, ind, changes, quote,
            )
        }
        [i] => {
            let i = *i;
            let Some((k, value)) = entries.get(i) else {
                return Err(cx.refuse(0, "cannot locate the top-level keys"));
            };
            if item.present_in(value, &doc.anchors) {
                return Ok(text.to_owned());
            }
            edit_value(
                &cx, body, bom, lines, &doc, i, k, value, item, ind, changes, quote,
            )
        }
        [_, second, ..] => {
            let line = doc.top.get(*second).map_or(0, |t| t.line);
            Err(cx.refuse(line, format!("`{key}` appears twice at the top level")))
        }
    }
}

/// Double quotes unless the lists the hooks live in use single quotes.
fn pick_quote(entries: &[(Node, Node)], key: &str, sibling: Option<&str>) -> Quote {
    for k in std::iter::once(key).chain(sibling) {
        let value = entries.iter().find(|(n, _)| n.scalar() == Some(k));
        let items: Vec<&Node> = match value {
            Some((_, Node::Seq { items, .. })) => items.iter().collect(),
            Some((_, n)) => vec![n],
            None => Vec::new(),
        };
        for n in items.iter().rev() {
            match n {
                Node::Scalar {
                    style: Style::Single,
                    ..
                } => return Quote::Single,
                Node::Scalar {
                    style: Style::Double,
                    ..
                } => return Quote::Double,
                _ => {}
            }
        }
    }
    Quote::Double
}

/// How far block lists are indented under their key in this file (2 when none is).
fn seq_offset(lines: &[Line], doc: &Doc, ind: usize, prefer: &[&str]) -> usize {
    let mut order: Vec<usize> = (0..doc.top.len()).collect();
    order.sort_by_key(|i| {
        let k = doc.top.get(*i).and_then(|t| t.key.as_deref());
        !prefer.iter().any(|p| Some(*p) == k)
    });
    for i in order {
        let Some(t) = doc.top.get(i) else { continue };
        let end = doc.top.get(i + 1).map_or(lines.len(), |n| n.line);
        let first = lines
            .get(t.line + 1..end)
            .unwrap_or_default()
            .iter()
            .find(|l| !is_gap(&l.text));
        if let Some(l) = first {
            let t = l.text.trim_start_matches(' ');
            if t == "-" || t.starts_with("- ") {
                let off = indent_of(&l.text).saturating_sub(ind);
                if off <= 8 {
                    return off;
                }
            }
        }
    }
    2
}

/// The last line of top-level entry `i`'s text, trailing blank and comment lines left out.
fn region_end(lines: &[Line], doc: &Doc, i: usize) -> usize {
    let Some(t) = doc.top.get(i) else {
        return 0;
    };
    let limit = doc.top.get(i + 1).map_or(lines.len(), |n| n.line);
    let mut end = t.line;
    for n in t.line + 1..limit {
        if lines.get(n).is_some_and(|l| !is_gap(&l.text)) {
            end = n;
        }
    }
    end
}

/// Adds `key:` with a one-item block list: after entry `after` (the sibling hook), else at the end
/// of the file, else after one of the first top-level entries: the first place whose result
/// checks out (the end of a file whose last line is a block scalar without a final newline is
/// not such a place: the scalar would gain a line break).
#[allow(clippy::too_many_arguments)]
fn add_key(
    cx: &Ctx,
    body: &str,
    bom: &str,
    lines: Vec<Line>,
    doc: &Doc,
    item: &Item,
    after: Option<usize>,
    ind: usize,
    changes: &mut Vec<String>,
    quote: Quote,
) -> Result<String, Refused> {
    let mut places: Vec<Option<usize>> = after.map(Some).into_iter().collect();
    places.push(None);
    places.extend((0..doc.top.len().min(8)).map(Some));
    let mut first_err = None;
    for (n, place) in places.iter().enumerate() {
        if places.get(..n).is_some_and(|seen| seen.contains(place)) {
            continue;
        }
        match add_key_at(cx, body, lines.clone(), doc, item, *place, ind, quote) {
            Ok((out, change)) => {
                changes.push(change);
                return Ok(format!("{bom}{out}"));
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| cx.refuse(0, "cannot add the key")))
}

#[allow(clippy::too_many_arguments)]
fn add_key_at(
    cx: &Ctx,
    body: &str,
    mut lines: Vec<Line>,
    doc: &Doc,
    item: &Item,
    after: Option<usize>,
    ind: usize,
    quote: Quote,
) -> Result<(String, String), Refused> {
    let key = item.key();
    let eol = dominant_eol(&lines);
    let off = seq_offset(&lines, doc, ind, &[key]);
    let pad = " ".repeat(ind);
    let mut new = Vec::new();
    let (at, index) = match after {
        Some(i) => (Some(region_end(&lines, doc, i)), i + 1),
        None => {
            if lines.last().is_some_and(|l| !l.text.trim().is_empty()) {
                new.push(String::new());
            }
            (lines.len().checked_sub(1), doc.top.len())
        }
    };
    new.push(format!("{pad}{key}:"));
    new.push(format!("{pad}{}- {}", " ".repeat(off), item.block(quote)));
    let key_line = at.map_or(0, |a| a + 1) + new.len() - 2;
    insert_lines(&mut lines, at, &new, eol);
    let out = join_lines(&lines);
    check(
        cx,
        body,
        &out,
        item,
        quote,
        key,
        Expect::NewKey(index),
        key_line,
    )?;
    let change = format!(
        "added `{key}` with {} (line {})",
        item.describe(quote),
        key_line + 2
    );
    Ok((out, change))
}

/// Parses the `key:` at the start of top-level entry `t`: the byte offset just past the colon.
fn key_colon(line: &str, col: usize, key: &str) -> Option<usize> {
    let start = byte_of_col(line, col)?;
    let rest = line.get(start..)?;
    let after = [key.to_owned(), format!("'{key}'"), format!("\"{key}\"")]
        .iter()
        .find_map(|form| rest.strip_prefix(form.as_str()))?;
    let trimmed = after.trim_start_matches(' ');
    trimmed.strip_prefix(':')?;
    Some(line.len() - trimmed.len() + 1)
}

/// Edits the value of existing top-level entry `i`.
#[allow(clippy::too_many_arguments)]
fn edit_value(
    cx: &Ctx,
    body: &str,
    bom: &str,
    mut lines: Vec<Line>,
    doc: &Doc,
    i: usize,
    k: &Node,
    value: &Node,
    item: &Item,
    ind: usize,
    changes: &mut Vec<String>,
    quote: Quote,
) -> Result<String, Refused> {
    let key = item.key();
    let Some(top) = doc.top.get(i) else {
        return Err(cx.refuse(0, "cannot locate the top-level keys"));
    };
    let kl = top.line;
    if k.props().is_some_and(|p| !p.is_empty()) {
        return Err(cx.refuse(kl, format!("the key `{key}` has an anchor or a tag")));
    }
    let end = region_end(&lines, doc, i);
    if let Some(n) = (kl..=end).find(|n| lines.get(*n).is_some_and(|l| l.text.contains('\t'))) {
        return Err(cx.refuse(n, format!("a tab in the value of `{key}`")));
    }
    let key_text = lines.get(kl).map(|l| l.text.clone()).unwrap_or_default();
    let Some(colon) = key_colon(&key_text, top.col, key) else {
        return Err(cx.refuse(
            kl,
            format!("`{key}` is not written as `{key}:` at the start of the line"),
        ));
    };
    let rest = key_text.get(colon..).unwrap_or_default();
    match value {
        Node::Alias(_) => Err(cx.refuse(
            kl,
            format!("`{key}` is an alias (`*name`); Clyra does not edit through aliases"),
        )),
        Node::Map { .. } => Err(cx.refuse(
            kl,
            format!(
                "`{key}` is a mapping, not a list{}",
                if item.scalar_ok() {
                    " (a hook list built by unquoted Jinja `{{ ... }}`?)"
                } else {
                    ""
                }
            ),
        )),
        _ if value.props().is_some_and(|p| !p.is_empty()) => Err(cx.refuse(
            kl,
            format!("the value of `{key}` has an anchor (`&name`) or a tag"),
        )),
        _ if value.is_null() => {
            let token = strip_comment(rest).trim();
            if !NULLS.contains(&token) || end != kl {
                return Err(cx.refuse(
                    kl,
                    format!("`{key}` is null in a layout Clyra does not edit"),
                ));
            }
            // Drop the null token, keep a comment.
            let after_token = match rest.find(token) {
                Some(p) if !token.is_empty() => rest.get(p + token.len()..).unwrap_or_default(),
                _ => rest,
            };
            let new_key = format!(
                "{}{}",
                key_text.get(..colon).unwrap_or_default(),
                after_token
            );
            let new_key = if new_key.trim_end().len() == colon {
                new_key.trim_end().to_owned()
            } else {
                new_key
            };
            if let Some(l) = lines.get_mut(kl) {
                l.text = new_key;
            }
            let off = seq_offset(&lines, doc, ind, &[key]);
            let eol = dominant_eol(&lines);
            let new = [format!("{}- {}", " ".repeat(ind + off), item.block(quote))];
            insert_lines(&mut lines, Some(kl), &new, eol);
            let out = join_lines(&lines);
            check(cx, body, &out, item, quote, key, Expect::Replace, kl)?;
            changes.push(format!(
                "set `{key}` to a list with {} (line {})",
                item.describe(quote),
                kl + 2
            ));
            Ok(format!("{bom}{out}"))
        }
        Node::Scalar {
            value: s, style, ..
        } => {
            if !item.scalar_ok() {
                return Err(cx.refuse(kl, format!("`{key}` is a string, expected a list")));
            }
            let inner = s.trim();
            if let Some(expr) = inner.strip_prefix("{{").and_then(|x| x.strip_suffix("}}")) {
                if expr.trim_start().starts_with('[') {
                    return Err(cx.refuse(
                        kl,
                        format!("`{key}` is a hook list built by Jinja (`{{{{ [...] }}}}`); Clyra cannot add an item to it"),
                    ));
                }
            }
            wrap_scalar(
                cx, body, bom, lines, doc, kl, colon, end, *style, item, ind, changes, quote,
            )
        }
        Node::Seq { items, .. } => {
            if item.scalar_ok() {
                if let Some(bad) = items.iter().find(|n| !matches!(n, Node::Scalar { .. })) {
                    let what = match bad {
                        Node::Map { .. } => "a mapping (unquoted Jinja `{{ ... }}`?)",
                        Node::Seq { .. } => "a nested list",
                        _ => "an alias",
                    };
                    return Err(
                        cx.refuse(kl, format!("an item of `{key}` is {what}, not a string"))
                    );
                }
            }
            // Where the list starts: after the colon, or on the first content line below.
            let inline = strip_comment(rest).trim();
            let (sl, sb) = if inline.is_empty() {
                match (kl + 1..=end).find(|n| lines.get(*n).is_some_and(|l| !is_gap(&l.text))) {
                    Some(n) => {
                        let l = lines.get(n).map(|l| l.text.as_str()).unwrap_or_default();
                        (n, indent_of(l))
                    }
                    None => return Err(cx.refuse(kl, format!("cannot find the list of `{key}`"))),
                }
            } else {
                (
                    kl,
                    colon + (rest.len() - rest.trim_start_matches(' ').len()),
                )
            };
            let start_line = lines.get(sl).map(|l| l.text.clone()).unwrap_or_default();
            let first = start_line.get(sb..).and_then(|s| s.chars().next());
            match first {
                Some('[') => flow_push(cx, body, bom, lines, kl, sl, sb, end, item, changes, quote),
                Some('-') if sl > kl => {
                    let eol = dominant_eol(&lines);
                    let new = [format!("{}- {}", " ".repeat(sb), item.block(quote))];
                    insert_lines(&mut lines, Some(end), &new, eol);
                    let out = join_lines(&lines);
                    check(cx, body, &out, item, quote, key, Expect::Push, kl)?;
                    changes.push(format!(
                        "added {} to `{key}` (line {})",
                        item.describe(quote),
                        end + 2
                    ));
                    Ok(format!("{bom}{out}"))
                }
                _ => Err(cx.refuse(
                    sl,
                    format!("the list of `{key}` has a layout Clyra does not edit"),
                )),
            }
        }
    }
}

/// Turns `key: <string>` into a block list holding the string, then the item. The string's text
/// moves unchanged to a `- ` line; its continuation lines gain indentation (which changes no
/// flow, quoted or block scalar without an explicit indentation indicator).
#[allow(clippy::too_many_arguments)]
fn wrap_scalar(
    cx: &Ctx,
    body: &str,
    bom: &str,
    mut lines: Vec<Line>,
    doc: &Doc,
    kl: usize,
    colon: usize,
    end: usize,
    style: Style,
    item: &Item,
    ind: usize,
    changes: &mut Vec<String>,
    quote: Quote,
) -> Result<String, Refused> {
    let key = item.key();
    let key_text = lines.get(kl).map(|l| l.text.clone()).unwrap_or_default();
    let rest = key_text.get(colon..).unwrap_or_default();
    let (vl, vb) = if strip_comment(rest).trim().is_empty() {
        match (kl + 1..=end).find(|n| lines.get(*n).is_some_and(|l| !is_gap(&l.text))) {
            Some(n) => (
                n,
                indent_of(lines.get(n).map(|l| l.text.as_str()).unwrap_or_default()),
            ),
            None => return Err(cx.refuse(kl, format!("cannot find the value of `{key}`"))),
        }
    } else {
        (
            kl,
            colon + (rest.len() - rest.trim_start_matches(' ').len()),
        )
    };
    let value_line = lines.get(vl).map(|l| l.text.clone()).unwrap_or_default();
    let value_text = value_line.get(vb..).unwrap_or_default().to_owned();
    let first = value_text.chars().next();
    let expected_first = match style {
        Style::Double => Some('"'),
        Style::Single => Some('\''),
        Style::Literal => Some('|'),
        Style::Folded => Some('>'),
        Style::Plain => None,
    };
    if expected_first.is_some() && first != expected_first {
        return Err(cx.refuse(
            vl,
            format!("the value of `{key}` has a layout Clyra does not edit"),
        ));
    }
    if matches!(style, Style::Literal | Style::Folded) {
        let header = strip_comment(value_text.get(1..).unwrap_or_default());
        if header.chars().any(|c| c.is_ascii_digit()) {
            return Err(cx.refuse(
                vl,
                format!(
                    "the value of `{key}` is a block scalar with an explicit indentation indicator"
                ),
            ));
        }
    }
    let off = seq_offset(&lines, doc, ind, &[key]);
    let dash = ind + off;
    let shift = " ".repeat(dash + 2);
    if vl == kl {
        // `key: value  # comment` becomes `key:` and `- value  # comment` on the next line.
        if let Some(l) = lines.get_mut(kl) {
            l.text = key_text.get(..colon).unwrap_or_default().to_owned();
        }
        let key_eol = lines.get(kl).map_or("", |l| l.eol);
        let eol = if key_eol.is_empty() {
            dominant_eol(&lines)
        } else {
            key_eol
        };
        let moved = format!("{}- {value_text}", " ".repeat(dash));
        insert_lines(&mut lines, Some(kl), &[moved], eol);
        // The continuation lines moved down by one.
        shift_lines(&mut lines, kl + 2, end + 1, &shift);
        let eol = dominant_eol(&lines);
        let new = [format!("{}- {}", " ".repeat(dash), item.block(quote))];
        insert_lines(&mut lines, Some(end + 1), &new, eol);
        let out = join_lines(&lines);
        check(cx, body, &out, item, quote, key, Expect::Wrap, kl)?;
        changes.push(format!(
            "turned `{key}` into a list and added {} (line {})",
            item.describe(quote),
            end + 3
        ));
        Ok(format!("{bom}{out}"))
    } else {
        if let Some(l) = lines.get_mut(vl) {
            l.text = format!("{}- {value_text}", " ".repeat(dash));
        }
        shift_lines(&mut lines, vl + 1, end, &shift);
        let eol = dominant_eol(&lines);
        let new = [format!("{}- {}", " ".repeat(dash), item.block(quote))];
        insert_lines(&mut lines, Some(end), &new, eol);
        let out = join_lines(&lines);
        check(cx, body, &out, item, quote, key, Expect::Wrap, kl)?;
        changes.push(format!(
            "turned `{key}` into a list and added {} (line {})",
            item.describe(quote),
            end + 2
        ));
        Ok(format!("{bom}{out}"))
    }
}

/// Adds `shift` in front of every non-empty line in `from..=to`.
fn shift_lines(lines: &mut [Line], from: usize, to: usize, shift: &str) {
    for n in from..=to {
        if let Some(l) = lines.get_mut(n) {
            if !l.text.is_empty() {
                l.text.insert_str(0, shift);
            }
        }
    }
}

/// Appends the item to the flow list that opens at line `sl`, byte `sb` (`[`).
#[allow(clippy::too_many_arguments)]
fn flow_push(
    cx: &Ctx,
    body: &str,
    bom: &str,
    mut lines: Vec<Line>,
    kl: usize,
    sl: usize,
    sb: usize,
    end: usize,
    item: &Item,
    changes: &mut Vec<String>,
    quote: Quote,
) -> Result<String, Refused> {
    let key = item.key();
    let Some((line, byte, last)) = scan_flow(&lines, sl, sb, end) else {
        return Err(cx.refuse(sl, format!("cannot find where the list of `{key}` ends")));
    };
    let flow = item.flow(quote);
    let insert = match last {
        '[' => flow,
        ',' => format!(" {flow}"),
        _ => format!(", {flow}"),
    };
    if let Some(l) = lines.get_mut(line) {
        if !l.text.is_char_boundary(byte) {
            return Err(cx.refuse(line, format!("cannot find where the list of `{key}` ends")));
        }
        l.text.insert_str(byte, &insert);
    }
    let out = join_lines(&lines);
    check(cx, body, &out, item, quote, key, Expect::Push, kl)?;
    changes.push(format!(
        "added {} to `{key}` (line {})",
        item.describe(quote),
        line + 1
    ));
    Ok(format!("{bom}{out}"))
}

/// Scans a flow sequence from its `[` to the matching `]` within lines `..=end`. Returns the line
/// and byte just past the last significant character before the `]` (the end of the last item,
/// a trailing comma, or the `[` itself) and that character.
fn scan_flow(lines: &[Line], sl: usize, sb: usize, end: usize) -> Option<(usize, usize, char)> {
    #[derive(PartialEq)]
    enum St {
        Normal,
        Double,
        Single,
    }
    let mut st = St::Normal;
    let mut depth = 0usize;
    let mut last: Option<(usize, usize, char)> = None;
    for n in sl..=end {
        let text = &lines.get(n)?.text;
        let from = if n == sl { sb } else { 0 };
        let seg = text.get(from..)?;
        let mut prev_space = true;
        let mut chars = seg.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let at = from + i;
            let after = at + c.len_utf8();
            match st {
                St::Double => {
                    if c == '\\' {
                        chars.next();
                    } else if c == '"' {
                        st = St::Normal;
                        last = Some((n, after, c));
                    }
                }
                St::Single => {
                    if c == '\'' {
                        if chars.peek().map(|p| p.1) == Some('\'') {
                            chars.next();
                        } else {
                            st = St::Normal;
                            last = Some((n, after, c));
                        }
                    }
                }
                St::Normal => {
                    if c == '#' && prev_space {
                        break; // comment to the end of the line
                    }
                    // A quote opens a quoted scalar only where a scalar starts.
                    let scalar_start = matches!(last.map(|l| l.2), Some('[' | '{' | ',' | ':'));
                    match c {
                        ' ' | '\t' => {}
                        '"' if scalar_start => st = St::Double,
                        '\'' if scalar_start => st = St::Single,
                        '[' | '{' => {
                            depth += 1;
                            last = Some((n, after, c));
                        }
                        ']' | '}' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                return if c == ']' { last } else { None };
                            }
                            last = Some((n, after, c));
                        }
                        _ => last = Some((n, after, c)),
                    }
                }
            }
            prev_space = c == ' ' || c == '\t';
        }
    }
    None
}

/// Parses `out` and checks that it equals the input's tree with exactly the intended change.
#[allow(clippy::too_many_arguments)]
fn check(
    cx: &Ctx,
    before_text: &str,
    out: &str,
    item: &Item,
    quote: Quote,
    key: &str,
    expect: Expect,
    line: usize,
) -> Result<(), Refused> {
    let fail = |why: &str| {
        cx.refuse(
            line,
            format!("the edit of `{key}` did not check out ({why}); the file has a layout Clyra does not edit"),
        )
    };
    let before = parse(before_text).map_err(|e| fail(&e.message))?;
    let after = parse(out).map_err(|e| fail(&e.message))?;
    let new_item = item.node(quote);
    let mut expected = match before.root {
        Some(Node::Map { .. }) => before.root,
        _ => Some(Node::Map {
            entries: Vec::new(),
            props: Props::default(),
        }),
    };
    let Some(Node::Map { entries, .. }) = expected.as_mut() else {
        return Err(fail("no mapping"));
    };
    match expect {
        Expect::NewKey(at) => {
            let entry = (
                plain(key),
                Node::Seq {
                    items: vec![new_item],
                    props: Props::default(),
                },
            );
            entries.insert(at.min(entries.len()), entry);
        }
        Expect::Replace | Expect::Wrap | Expect::Push => {
            let Some((_, v)) = entries.iter_mut().find(|(k, _)| k.scalar() == Some(key)) else {
                return Err(fail("key not found"));
            };
            let old = std::mem::replace(v, plain(""));
            *v = match (expect, old) {
                (Expect::Replace, _) => Node::Seq {
                    items: vec![new_item],
                    props: Props::default(),
                },
                (Expect::Wrap, old @ Node::Scalar { .. }) => Node::Seq {
                    items: vec![old, new_item],
                    props: Props::default(),
                },
                (Expect::Push, Node::Seq { mut items, props }) => {
                    items.push(new_item);
                    Node::Seq { items, props }
                }
                _ => return Err(fail("unexpected value")),
            };
        }
    }
    if after.root != expected {
        return Err(fail("the parsed file differs in more than the added item"));
    }
    // At the end of a file without a final newline, a block scalar's text has no final line
    // break for dbt's YAML 1.1 reader (PyYAML), and gains one if a line is added after it; the
    // parser used here reads both the same, so check that the last line stayed last.
    if before.ends_in_block_scalar && !before_text.ends_with('\n') {
        let last = before_text.rsplit('\n').next().unwrap_or_default();
        if !out.ends_with(last) || out.ends_with('\n') {
            return Err(fail(
                "a block scalar at the end of the file would gain a line break",
            ));
        }
    }
    Ok(())
}

/// The editor on arbitrary input, for the fuzz target: never panics, reports every change it
/// makes, and an edited file needs no second edit. (Every accepted edit has already been checked
/// to parse to the input plus the item.)
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    type Edit<'a> = &'a dyn Fn(&str) -> Result<Edited, Refused>;
    let edits: [Edit; 2] = [&|t| add_hooks("f.yml", t), &|t| {
        add_local_package("f.yml", t, ".clyra/dbt/clyra_guard")
    }];
    for edit in edits {
        let Ok(first) = edit(text) else { continue };
        #[allow(clippy::panic)]
        if first.changes.is_empty() != (first.text == text) {
            panic!("changes reported do not match the text: {text:?} -> {first:?}");
        }
        let again = edit(&first.text);
        #[allow(clippy::panic)]
        if !matches!(&again, Ok(a) if a.changes.is_empty() && a.text == first.text) {
            panic!(
                "a second edit is not a no-op: {text:?} -> {:?} -> {again:?}",
                first.text
            );
        }
    }
}

#[cfg(test)]
mod tests;
