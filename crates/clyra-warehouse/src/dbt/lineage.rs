//! The lineage of a dbt run, with trust hints: sources → seeds / models / snapshots → exposures,
//! built from the manifest (edges from `depends_on.nodes`), tests attached to the nodes they
//! test, and each node's status in the run.
//!
//! Trust is propagated in topological order (the rules, with examples, are in
//! `docs/dbt/lineage.md`):
//!
//! - a node is **tainted** when it errored, one of its tests failed or errored, a `clyra_guard`
//!   decision for it blocked a write or let a mass write through without approval, or any of its
//!   upstream nodes is tainted (the reason names where the taint comes from);
//! - a **source** is **trusted** only when its manifest `meta` says `clyra: {trusted: true}` (on
//!   the table or its source block) and it was validated in this run: at least one test of it
//!   ran and all of them passed;
//! - a **seed, model or snapshot** is **trusted** when it was built successfully in this run from
//!   trusted parents only (a seed needs none; a model that reads no declared source or model is
//!   not trusted) and every test of it that ran passed;
//! - an **exposure** is **trusted** when all its upstream nodes are;
//! - anything else is **unverified**, with the reason.
//!
//! Trust hints are hints: they say what this run showed, not that the data is right.
//!
//! Three renderings: [`Lineage::to_text_tree`] (like `tree`), [`Lineage::to_dot`] (Graphviz)
//! and [`Lineage::to_svg`] (a self-contained SVG with Clyra's own layered layout; no external
//! tool). All are deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use clyra_evidence::jcs;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::artifacts::Manifest;
use super::record::RunRecord;
use super::DbtError;

/// The lineage document's format.
pub const LINEAGE_FORMAT: &str = "clyra.dbt.lineage/v1";

/// The resource types that are nodes of the graph.
const GRAPH_TYPES: &[&str] = &["source", "seed", "model", "snapshot", "exposure"];

/// `dbt/lineage.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// Always [`LINEAGE_FORMAT`].
    pub format: String,
    /// The dbt invocation the statuses come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// The dbt project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The adapter (`postgres`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// False when there was no manifest: the nodes are the run's, without edges.
    pub from_manifest: bool,
    /// The nodes, sorted by unique_id.
    pub nodes: Vec<LineageNode>,
    /// The edges (upstream → downstream), sorted.
    pub edges: Vec<Edge>,
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageNode {
    /// dbt's unique_id.
    pub unique_id: String,
    /// `source`, `seed`, `model`, `snapshot` or `exposure`.
    pub resource_type: String,
    /// A short name: `source_name.table` for sources, the node's name otherwise.
    pub name: String,
    /// The relation in the warehouse (not for exposures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
    /// The materialization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub materialization: Option<String>,
    /// The node's status in the run (`success`, `error`, `skipped`, `interrupted`, ...); absent
    /// when the run did not touch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The tests of this node, sorted by unique_id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestRef>,
    /// `clyra_guard` decisions about this node (`allowed`, `approved`, `blocked`), in log order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guard: Vec<String>,
    /// The trust hint.
    pub trust: Trust,
    /// Why.
    pub reason: String,
    /// The node the taint comes from, when tainted by an upstream node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tainted_by: Option<String>,
}

/// A relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relation {
    /// Database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Schema.
    pub schema: String,
    /// Table or view name.
    pub identifier: String,
}

impl Relation {
    /// `database.schema.identifier` (or `schema.identifier`).
    pub fn dotted(&self) -> String {
        match &self.database {
            Some(d) => format!("{d}.{}.{}", self.schema, self.identifier),
            None => format!("{}.{}", self.schema, self.identifier),
        }
    }
}

/// A test of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRef {
    /// The test's unique_id.
    pub unique_id: String,
    /// Its status in the run (`pass`, `fail`, `warn`, `error`, `skipped`); absent when it did
    /// not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// An edge: `from` is read by `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Edge {
    /// Upstream.
    pub from: String,
    /// Downstream.
    pub to: String,
}

/// A trust hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// Built (or validated) in this run from trusted inputs, tests passed.
    Trusted,
    /// Nothing wrong seen, but not shown trustworthy either.
    Unverified,
    /// A failure here or upstream.
    Tainted,
}

impl Trust {
    /// `trusted`, `unverified`, `tainted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Trusted => "trusted",
            Trust::Unverified => "unverified",
            Trust::Tainted => "tainted",
        }
    }

    /// The marker the text tree prints.
    pub fn marker(self) -> &'static str {
        match self {
            Trust::Trusted => "✓",
            Trust::Unverified => "?",
            Trust::Tainted => "✗",
        }
    }

    fn colors(self) -> (&'static str, &'static str) {
        match self {
            Trust::Trusted => ("#c6f6d5", "#2f855a"),
            Trust::Unverified => ("#edf2f7", "#718096"),
            Trust::Tainted => ("#fed7d7", "#c53030"),
        }
    }
}

fn is_failure(status: &str) -> bool {
    matches!(status, "error" | "fail" | "runtime error")
}

fn meta_trusted(v: &Value) -> Option<bool> {
    v.get("clyra")?.get("trusted")?.as_bool()
}

/// Builds the lineage of a run: from the manifest when there is one, else from the run's nodes
/// alone (no edges).
pub fn build(manifest: Option<&Manifest>, run: &RunRecord) -> Lineage {
    let mut nodes: BTreeMap<String, LineageNode> = BTreeMap::new();
    let mut edges: BTreeSet<Edge> = BTreeSet::new();
    let mut marked_trusted: BTreeSet<String> = BTreeSet::new();
    let status_of = |id: &str| -> Option<String> {
        run.node(id).map(|n| n.status.clone()).or_else(|| {
            run.started_not_finished
                .iter()
                .any(|s| s.unique_id == id)
                .then(|| "interrupted".to_string())
        })
    };
    let blank = |id: &str, rt: &str, name: String| LineageNode {
        unique_id: id.to_string(),
        resource_type: rt.to_string(),
        name,
        relation: None,
        materialization: None,
        status: status_of(id),
        tests: Vec::new(),
        guard: Vec::new(),
        trust: Trust::Unverified,
        reason: String::new(),
        tainted_by: None,
    };
    let relation = |db: &Option<String>, schema: &Option<String>, ident: Option<&str>| {
        Some(Relation {
            database: db.clone(),
            schema: schema.clone()?,
            identifier: ident?.to_string(),
        })
    };
    if let Some(m) = manifest {
        for (id, s) in &m.sources {
            let table = s.name.clone().unwrap_or_else(|| id.clone());
            let name = match &s.source_name {
                Some(b) => format!("{b}.{table}"),
                None => table,
            };
            let mut n = blank(id, "source", name);
            n.relation = relation(
                &s.database,
                &s.schema,
                s.identifier.as_deref().or(s.name.as_deref()),
            );
            // The table's own setting wins over its source block's.
            let trusted = meta_trusted(&s.meta)
                .or_else(|| meta_trusted(&s.config.meta))
                .or_else(|| meta_trusted(&s.source_meta))
                .unwrap_or(false);
            if trusted {
                marked_trusted.insert(id.clone());
            }
            nodes.insert(id.clone(), n);
        }
        for (id, node) in &m.nodes {
            if !GRAPH_TYPES.contains(&node.resource_type.as_str()) {
                continue;
            }
            let mut n = blank(
                id,
                &node.resource_type,
                node.name.clone().unwrap_or_else(|| id.clone()),
            );
            n.relation = relation(&node.database, &node.schema, node.identifier());
            n.materialization = node.config.materialized.clone();
            nodes.insert(id.clone(), n);
        }
        for (id, e) in &m.exposures {
            let n = blank(
                id,
                "exposure",
                e.label
                    .clone()
                    .or_else(|| e.name.clone())
                    .unwrap_or_else(|| id.clone()),
            );
            nodes.insert(id.clone(), n);
        }
        let deps = m
            .nodes
            .iter()
            .map(|(id, n)| (id, &n.depends_on.nodes))
            .chain(m.exposures.iter().map(|(id, e)| (id, &e.depends_on.nodes)));
        for (id, parents) in deps {
            if !nodes.contains_key(id) {
                continue;
            }
            for p in parents {
                if p != id && nodes.contains_key(p) {
                    edges.insert(Edge {
                        from: p.clone(),
                        to: id.clone(),
                    });
                }
            }
        }
        // Tests: attached to `attached_node`, else to every graph node they depend on.
        for (id, t) in &m.nodes {
            if t.resource_type != "test" {
                continue;
            }
            let targets: Vec<&String> = match t.attached_node.as_ref().filter(|a| !a.is_empty()) {
                Some(a) => vec![a],
                None => t.depends_on.nodes.iter().collect(),
            };
            for target in targets {
                if let Some(n) = nodes.get_mut(target) {
                    n.tests.push(TestRef {
                        unique_id: id.clone(),
                        status: run.node(id).map(|r| r.status.clone()),
                    });
                }
            }
        }
    } else {
        for r in &run.nodes {
            if GRAPH_TYPES.contains(&r.resource_type.as_str()) {
                let name = r
                    .unique_id
                    .rsplit('.')
                    .next()
                    .unwrap_or(&r.unique_id)
                    .to_string();
                let mut n = blank(&r.unique_id, &r.resource_type, name);
                n.materialization = r.materialization.clone();
                nodes.insert(r.unique_id.clone(), n);
            }
        }
        for r in &run.nodes {
            if let Some(n) = r.attached_node.as_ref().and_then(|a| nodes.get_mut(a)) {
                n.tests.push(TestRef {
                    unique_id: r.unique_id.clone(),
                    status: Some(r.status.clone()),
                });
            }
        }
    }
    for n in nodes.values_mut() {
        n.tests.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
        n.tests.dedup();
    }
    // Guard decisions by model.
    let mut guard: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for d in &run.guard_decisions {
        if let Some(model) = d.get("model").and_then(Value::as_str) {
            guard.entry(model.to_string()).or_default().push(d);
        }
    }
    for (id, ds) in &guard {
        if let Some(n) = nodes.get_mut(id) {
            n.guard = ds
                .iter()
                .map(|d| {
                    d.get("decision")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_string()
                })
                .collect();
        }
    }
    let edges: Vec<Edge> = edges.into_iter().collect();
    propagate(&mut nodes, &edges, &marked_trusted, &guard);
    Lineage {
        format: LINEAGE_FORMAT.to_string(),
        invocation_id: Some(run.dbt.invocation_id.clone()),
        project: run.project.clone(),
        adapter: run.dbt.adapter.clone(),
        from_manifest: manifest.is_some(),
        nodes: nodes.into_values().collect(),
        edges,
    }
}

/// Parents of each node, from the edges.
fn parents_of(edges: &[Edge]) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in edges {
        out.entry(e.to.as_str()).or_default().push(e.from.as_str());
    }
    out
}

/// Kahn's algorithm over the node ids, ready nodes taken in id order; the nodes of cycles come
/// last, in id order, flagged.
fn topological<'a>(ids: &[&'a str], edges: &'a [Edge]) -> Vec<(&'a str, bool)> {
    let mut waiting: BTreeMap<&str, usize> = ids.iter().map(|&i| (i, 0)).collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in edges {
        if let Some(w) = waiting.get_mut(e.to.as_str()) {
            *w += 1;
        }
        children
            .entry(e.from.as_str())
            .or_default()
            .push(e.to.as_str());
    }
    let mut ready: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, &w)| w == 0)
        .map(|(&i, _)| i)
        .collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(ids.len());
    while let Some(i) = ready.pop_first() {
        out.push((i, false));
        done.insert(i);
        for &c in children.get(i).map(Vec::as_slice).unwrap_or_default() {
            if let Some(w) = waiting.get_mut(c) {
                *w = w.saturating_sub(1);
                if *w == 0 {
                    ready.insert(c);
                }
            }
        }
    }
    for &i in ids {
        if !done.contains(i) {
            out.push((i, true));
        }
    }
    out
}

/// Why a guard decision taints its node, if it does.
fn guard_taint(d: &Value) -> Option<String> {
    let decision = d.get("decision").and_then(Value::as_str).unwrap_or("");
    let macro_name = d.get("macro").and_then(Value::as_str).unwrap_or("guard");
    let relation = d.get("relation").and_then(Value::as_str).unwrap_or("?");
    let matched = d.get("rows_matched").and_then(Value::as_f64);
    let total = d.get("rows_total").and_then(Value::as_f64);
    let max_rows = d.get("max_rows").and_then(Value::as_f64);
    let max_pct = d.get("max_percent").and_then(Value::as_f64);
    let pct = d.get("percent").and_then(Value::as_f64);
    let counts = match (matched, total) {
        (Some(m), Some(t)) => format!(" ({m} of {t} rows)"),
        (Some(m), None) => format!(" ({m} rows)"),
        _ => String::new(),
    };
    if decision == "blocked" {
        return Some(format!(
            "clyra_guard blocked {macro_name} on {relation}{counts}"
        ));
    }
    let over = matches!((matched, max_rows), (Some(m), Some(x)) if m > x)
        || matches!((pct, max_pct), (Some(p), Some(x)) if p > x);
    if over && decision != "approved" {
        return Some(format!(
            "unapproved mass write: {macro_name} on {relation}{counts} above the guard's threshold, decision `{decision}`"
        ));
    }
    None
}

fn propagate(
    nodes: &mut BTreeMap<String, LineageNode>,
    edges: &[Edge],
    marked_trusted: &BTreeSet<String>,
    guard: &BTreeMap<String, Vec<&Value>>,
) {
    let ids: Vec<String> = nodes.keys().cloned().collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let parents = parents_of(edges);
    let order = topological(&id_refs, edges);
    for (id, in_cycle) in order {
        let ps: Vec<&str> = parents.get(id).cloned().unwrap_or_default();
        // Upstream state, read before this node is borrowed mutably.
        let upstream: Vec<(String, Trust, Option<String>, String)> = ps
            .iter()
            .filter_map(|p| nodes.get(*p))
            .map(|p| {
                (
                    p.unique_id.clone(),
                    p.trust,
                    p.tainted_by.clone(),
                    p.reason.clone(),
                )
            })
            .collect();
        let Some(n) = nodes.get_mut(id) else {
            continue;
        };
        let (trust, reason, tainted_by) = assess(
            n,
            &upstream,
            marked_trusted.contains(id),
            guard.get(id),
            in_cycle,
        );
        n.trust = trust;
        n.reason = reason;
        n.tainted_by = tainted_by;
    }
}

fn assess(
    n: &LineageNode,
    upstream: &[(String, Trust, Option<String>, String)],
    marked_trusted: bool,
    guard: Option<&Vec<&Value>>,
    in_cycle: bool,
) -> (Trust, String, Option<String>) {
    // Own taint first: it is the origin.
    if let Some(s) = n.status.as_deref().filter(|s| is_failure(s)) {
        return (
            Trust::Tainted,
            format!("{} status `{s}` in this run", n.resource_type),
            None,
        );
    }
    if let Some(t) = n
        .tests
        .iter()
        .find(|t| t.status.as_deref().is_some_and(is_failure))
    {
        return (
            Trust::Tainted,
            format!(
                "test `{}` {}",
                t.unique_id,
                match t.status.as_deref() {
                    Some("fail") => "failed",
                    _ => "errored",
                }
            ),
            None,
        );
    }
    if let Some(why) = guard.into_iter().flatten().find_map(|d| guard_taint(d)) {
        return (Trust::Tainted, why, None);
    }
    if let Some((p, _, by, reason)) = upstream.iter().find(|u| u.1 == Trust::Tainted) {
        let origin = by.clone().unwrap_or_else(|| p.clone());
        let why = if by.is_some() {
            // The parent's reason already names the origin.
            reason.clone()
        } else {
            format!("upstream `{origin}` is tainted: {reason}")
        };
        return (Trust::Tainted, why, Some(origin));
    }
    if in_cycle {
        return (
            Trust::Unverified,
            "part of a dependency cycle in the manifest".to_string(),
            None,
        );
    }
    let ran: Vec<&TestRef> = n.tests.iter().filter(|t| t.status.is_some()).collect();
    let not_passed = ran.iter().find(|t| t.status.as_deref() != Some("pass"));
    let tests_note = |ran: &[&TestRef]| match ran.len() {
        1 => "its test passed".to_string(),
        k => format!("its {k} tests passed"),
    };
    match n.resource_type.as_str() {
        "source" => {
            if !marked_trusted {
                return (
                    Trust::Unverified,
                    "not marked trusted (manifest meta `clyra: {trusted: true}`)".to_string(),
                    None,
                );
            }
            if ran.is_empty() {
                return (
                    Trust::Unverified,
                    "marked trusted but not validated: no test of it ran".to_string(),
                    None,
                );
            }
            if let Some(t) = not_passed {
                return (
                    Trust::Unverified,
                    format!(
                        "marked trusted but test `{}` is `{}`",
                        t.unique_id,
                        t.status.as_deref().unwrap_or_default()
                    ),
                    None,
                );
            }
            (
                Trust::Trusted,
                format!("marked trusted and validated: {}", tests_note(&ran)),
                None,
            )
        }
        "exposure" => {
            if upstream.is_empty() {
                return (Trust::Unverified, "depends on no node".to_string(), None);
            }
            if let Some(u) = upstream.iter().find(|u| u.1 != Trust::Trusted) {
                return (
                    Trust::Unverified,
                    format!("upstream `{}` is {}", u.0, u.1.as_str()),
                    None,
                );
            }
            (
                Trust::Trusted,
                "every upstream node is trusted".to_string(),
                None,
            )
        }
        _ => {
            match n.status.as_deref() {
                None => return (Trust::Unverified, "not built in this run".to_string(), None),
                Some("interrupted") => {
                    return (
                        Trust::Unverified,
                        "started and did not finish (the run was interrupted)".to_string(),
                        None,
                    )
                }
                Some("success") => {}
                Some(other) => {
                    return (
                        Trust::Unverified,
                        format!("status `{other}` in this run"),
                        None,
                    )
                }
            }
            if let Some(t) = not_passed {
                return (
                    Trust::Unverified,
                    format!(
                        "test `{}` is `{}`",
                        t.unique_id,
                        t.status.as_deref().unwrap_or_default()
                    ),
                    None,
                );
            }
            if upstream.is_empty() && n.resource_type != "seed" {
                return (
                    Trust::Unverified,
                    "reads no declared source or model, so its inputs cannot be validated"
                        .to_string(),
                    None,
                );
            }
            if let Some(u) = upstream.iter().find(|u| u.1 != Trust::Trusted) {
                return (
                    Trust::Unverified,
                    format!("upstream `{}` is {}", u.0, u.1.as_str()),
                    None,
                );
            }
            let base = if upstream.is_empty() {
                "loaded from the project's seed file".to_string()
            } else {
                "built from trusted upstream nodes only".to_string()
            };
            let tests = if ran.is_empty() {
                String::new()
            } else {
                format!("; {}", tests_note(&ran))
            };
            let approved = if n.guard.iter().any(|g| g == "approved") {
                "; a mass write was approved"
            } else {
                ""
            };
            (Trust::Trusted, format!("{base}{tests}{approved}"), None)
        }
    }
}

impl Lineage {
    /// The lineage as RFC 8785 canonical JSON.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, DbtError> {
        jcs::to_canonical_vec(self).map_err(|e| DbtError::canonical("dbt/lineage.json", e))
    }

    /// Reads a lineage document (from a bundle); `file` names it in errors.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<Lineage, DbtError> {
        let l: Lineage = super::artifacts::parse_json(bytes, file)?;
        if l.format != LINEAGE_FORMAT {
            return Err(DbtError::Format {
                file: file.to_string(),
                found: l.format,
                expected: LINEAGE_FORMAT,
            });
        }
        Ok(l)
    }

    /// The node with this unique_id (nodes are sorted; a document that is not falls back to a
    /// scan).
    pub fn node(&self, unique_id: &str) -> Option<&LineageNode> {
        match self
            .nodes
            .binary_search_by(|n| n.unique_id.as_str().cmp(unique_id))
        {
            Ok(i) => self.nodes.get(i),
            Err(_) => self.nodes.iter().find(|n| n.unique_id == unique_id),
        }
    }

    /// Nodes by trust.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut c = BTreeMap::new();
        for n in &self.nodes {
            *c.entry(n.trust.as_str()).or_insert(0) += 1;
        }
        c
    }

    fn children(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for e in &self.edges {
            out.entry(e.from.as_str()).or_default().push(e.to.as_str());
        }
        for v in out.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        out
    }

    /// The roots: nodes without an upstream node; sources first, then seeds, then the rest,
    /// each group by unique_id.
    fn roots(&self) -> Vec<&LineageNode> {
        let has_parent: BTreeSet<&str> = self.edges.iter().map(|e| e.to.as_str()).collect();
        let mut roots: Vec<&LineageNode> = self
            .nodes
            .iter()
            .filter(|n| !has_parent.contains(n.unique_id.as_str()))
            .collect();
        let rank = |t: &str| match t {
            "source" => 0,
            "seed" => 1,
            _ => 2,
        };
        roots.sort_by(|a, b| {
            (rank(&a.resource_type), &a.unique_id).cmp(&(rank(&b.resource_type), &b.unique_id))
        });
        roots
    }

    /// A text tree like `tree`'s: the roots (sources and seeds first), each node with its type,
    /// name, status, tests, trust marker (`✓` trusted, `?` unverified, `✗` tainted) and, unless
    /// trusted, the reason. A node reached a second time is printed once more with
    /// `(see above)`. Nodes on a cycle, which no root reaches, are listed at the end.
    pub fn to_text_tree(&self) -> String {
        let by_id: BTreeMap<&str, &LineageNode> = self
            .nodes
            .iter()
            .map(|n| (n.unique_id.as_str(), n))
            .collect();
        let children = self.children();
        let mut out = String::new();
        let c = self.counts();
        let _ = writeln!(
            out,
            "lineage of {}{}: {} nodes, {} trusted, {} unverified, {} tainted",
            self.project.as_deref().unwrap_or("a dbt run"),
            self.invocation_id
                .as_deref()
                .map(|i| format!(" (invocation {i})"))
                .unwrap_or_default(),
            self.nodes.len(),
            c.get("trusted").unwrap_or(&0),
            c.get("unverified").unwrap_or(&0),
            c.get("tainted").unwrap_or(&0),
        );
        let mut printed: BTreeSet<&str> = BTreeSet::new();
        for root in self.roots() {
            tree_node(&mut out, root, &by_id, &children, &mut printed);
        }
        let unreached: Vec<&LineageNode> = self
            .nodes
            .iter()
            .filter(|n| !printed.contains(n.unique_id.as_str()))
            .collect();
        if !unreached.is_empty() {
            out.push_str("not shown above (on a dependency cycle, or too deep):\n");
            for n in unreached {
                let _ = writeln!(out, "  {}", node_line(n));
            }
        }
        out.push_str("legend: ✓ trusted  ? unverified  ✗ tainted\n");
        out
    }

    /// Graphviz DOT: one box per node, filled by trust (green trusted, grey unverified, red
    /// tainted), sources as cylinders and exposures as ellipses, edges upstream → downstream.
    /// Deterministic: nodes and edges in unique_id order.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        out.push_str("digraph lineage {\n");
        let _ = writeln!(
            out,
            "  graph [rankdir=LR, fontname=\"Helvetica\", labelloc=t, label=\"{}\"];",
            dot_escape(&self.title())
        );
        out.push_str(
            "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n",
        );
        out.push_str("  edge [color=\"#718096\"];\n");
        for n in &self.nodes {
            let (fill, stroke) = n.trust.colors();
            let shape = match n.resource_type.as_str() {
                "source" => "cylinder",
                "exposure" => "ellipse",
                _ => "box",
            };
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\\n{}\\n{}\", shape={shape}, fillcolor=\"{fill}\", color=\"{stroke}\", tooltip=\"{}\"];",
                dot_escape(&n.unique_id),
                dot_escape(&n.resource_type),
                dot_escape(&n.name),
                dot_escape(&status_trust(n)),
                dot_escape(&n.reason),
            );
        }
        for e in &self.edges {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                dot_escape(&e.from),
                dot_escape(&e.to)
            );
        }
        out.push_str("}\n");
        out
    }

    /// A self-contained SVG: nodes in layers by longest path from a root (left to right),
    /// ordered within a layer by the mean position of their parents, edges as curves with
    /// arrowheads, boxes filled by trust, each with a tooltip giving the reason. Labels are
    /// XML-escaped; the output is well-formed XML and deterministic.
    pub fn to_svg(&self) -> String {
        let layout = Layout::of(self);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">",
            w = layout.width,
            h = layout.height
        );
        let _ = writeln!(out, "<title>{}</title>", xml_escape(&self.title()));
        out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#718096\"/></marker></defs>\n");
        let _ = writeln!(
            out,
            "<text x=\"{MARGIN}\" y=\"24\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            xml_escape(&self.title())
        );
        for e in &self.edges {
            let (Some(a), Some(b)) = (
                layout.pos.get(e.from.as_str()),
                layout.pos.get(e.to.as_str()),
            ) else {
                continue;
            };
            let (x1, y1) = (a.0 + layout.box_w, a.1 + BOX_H / 2);
            let (x2, y2) = (b.0, b.1 + BOX_H / 2);
            let (c1, c2) = if x2 > x1 {
                (x1 + (x2 - x1) / 2, x2 - (x2 - x1) / 2)
            } else {
                (x1 + GAP_X / 2, x2 - GAP_X / 2)
            };
            let _ = writeln!(
                out,
                "<path d=\"M {x1} {y1} C {c1} {y1}, {c2} {y2}, {x2} {y2}\" fill=\"none\" stroke=\"#718096\" stroke-width=\"1.2\" marker-end=\"url(#arrow)\"/>"
            );
        }
        for n in &self.nodes {
            let Some(&(x, y)) = layout.pos.get(n.unique_id.as_str()) else {
                continue;
            };
            let (fill, stroke) = n.trust.colors();
            let rx = match n.resource_type.as_str() {
                "exposure" => BOX_H / 2,
                "source" => 2,
                _ => 6,
            };
            let _ = writeln!(
                out,
                "<g><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{BOX_H}\" rx=\"{rx}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/><text x=\"{tx}\" y=\"{ty1}\" font-weight=\"bold\">{}</text><text x=\"{tx}\" y=\"{ty2}\" fill=\"#4a5568\">{}</text></g>",
                xml_escape(&format!(
                    "{} ({}): {}",
                    n.unique_id,
                    n.trust.as_str(),
                    n.reason
                )),
                xml_escape(&truncate(&format!("{} {}", n.resource_type, n.name), layout.chars)),
                xml_escape(&truncate(&status_trust(n), layout.chars)),
                w = layout.box_w,
                tx = x + 10,
                ty1 = y + 18,
                ty2 = y + 34,
            );
        }
        out.push_str("</svg>\n");
        out
    }

    fn title(&self) -> String {
        format!(
            "lineage of {}{}",
            self.project.as_deref().unwrap_or("a dbt run"),
            self.invocation_id
                .as_deref()
                .map(|i| format!(" (invocation {i})"))
                .unwrap_or_default()
        )
    }
}

fn status_trust(n: &LineageNode) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &n.status {
        parts.push(s.clone());
    }
    let ran = n.tests.iter().filter(|t| t.status.is_some()).count();
    if !n.tests.is_empty() {
        let passed = n
            .tests
            .iter()
            .filter(|t| t.status.as_deref() == Some("pass"))
            .count();
        let not_run = n.tests.len() - ran;
        parts.push(match (ran, not_run) {
            (_, 0) => format!("tests {passed}/{ran} passed"),
            (0, 1) => "its test did not run".to_string(),
            (0, k) => format!("its {k} tests did not run"),
            (_, k) => format!("tests {passed}/{ran} passed, {k} not run"),
        });
    }
    if !n.guard.is_empty() {
        parts.push(format!("guard {}", n.guard.join(",")));
    }
    parts.push(format!("{} {}", n.trust.marker(), n.trust.as_str()));
    parts.join(" · ")
}

fn node_line(n: &LineageNode) -> String {
    let mut s = format!("{} {} [{}]", n.resource_type, n.name, status_trust(n));
    if n.trust != Trust::Trusted {
        let _ = write!(s, ": {}", n.reason);
    }
    one_line(&s)
}

/// Deepest level the text tree prints; deeper nodes are listed at the end.
const MAX_TREE_DEPTH: usize = 256;

/// Prints the subtree of `root` depth first, iteratively (a deep graph cannot exhaust the stack).
fn tree_node<'a>(
    out: &mut String,
    root: &'a LineageNode,
    by_id: &BTreeMap<&str, &'a LineageNode>,
    children: &BTreeMap<&str, Vec<&'a str>>,
    printed: &mut BTreeSet<&'a str>,
) {
    // (node, prefix of its line, last child of its parent?, depth)
    let mut stack: Vec<(&LineageNode, String, Option<bool>, usize)> =
        vec![(root, String::new(), None, 0)];
    while let Some((n, prefix, last, depth)) = stack.pop() {
        let (branch, child_prefix) = match last {
            None => ("", String::new()),
            Some(true) => ("└── ", format!("{prefix}    ")),
            Some(false) => ("├── ", format!("{prefix}│   ")),
        };
        let id = n.unique_id.as_str();
        if printed.contains(id) {
            let _ = writeln!(
                out,
                "{prefix}{branch}{} {} (see above)",
                one_line(&n.resource_type),
                one_line(&n.name)
            );
            continue;
        }
        if depth > MAX_TREE_DEPTH {
            let _ = writeln!(
                out,
                "{prefix}{branch}… (deeper than {MAX_TREE_DEPTH} levels)"
            );
            continue;
        }
        printed.insert(id);
        let _ = writeln!(out, "{prefix}{branch}{}", node_line(n));
        let kids: Vec<&LineageNode> = children
            .get(id)
            .map(|k| k.iter().filter_map(|c| by_id.get(c).copied()).collect())
            .unwrap_or_default();
        let count = kids.len();
        for (i, k) in kids.into_iter().enumerate().rev() {
            stack.push((k, child_prefix.clone(), Some(i + 1 == count), depth + 1));
        }
    }
}

/// Control characters (a line break in a name) become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for XML content and attribute values; characters XML 1.0 cannot carry become
/// spaces.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

const MARGIN: i64 = 20;
const TOP: i64 = 44;
const BOX_H: i64 = 44;
const GAP_X: i64 = 70;
const GAP_Y: i64 = 18;
/// Approximate width of a 12 px Helvetica character.
const CHAR_W: i64 = 7;

/// The SVG's layered layout.
struct Layout<'a> {
    pos: BTreeMap<&'a str, (i64, i64)>,
    box_w: i64,
    chars: usize,
    width: i64,
    height: i64,
}

impl<'a> Layout<'a> {
    fn of(l: &'a Lineage) -> Layout<'a> {
        let ids: Vec<&str> = l.nodes.iter().map(|n| n.unique_id.as_str()).collect();
        let parents = parents_of(&l.edges);
        // Longest path from a root; nodes of cycles take their processed parents only.
        let mut layer: BTreeMap<&str, usize> = BTreeMap::new();
        for (id, _) in topological(&ids, &l.edges) {
            let d = parents
                .get(id)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| layer.get(p))
                        .map(|&x| x + 1)
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0);
            layer.insert(id, d);
        }
        let depth = layer.values().copied().max().map_or(0, |m| m + 1);
        let mut layers: Vec<Vec<&str>> = vec![Vec::new(); depth];
        for (&id, &d) in &layer {
            if let Some(v) = layers.get_mut(d) {
                v.push(id);
            }
        }
        // Order within a layer by the mean index of the parents (barycenter), then by id.
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for v in &mut layers {
            let mut keyed: Vec<(u64, &str)> = v
                .iter()
                .map(|&id| {
                    let ps: Vec<usize> = parents
                        .get(id)
                        .map(|ps| ps.iter().filter_map(|p| index.get(p).copied()).collect())
                        .unwrap_or_default();
                    let bary = if ps.is_empty() {
                        0
                    } else {
                        // Fixed point (x1000) keeps the ordering exact and deterministic.
                        (ps.iter().sum::<usize>() as u64 * 1000) / ps.len() as u64
                    };
                    (bary, id)
                })
                .collect();
            keyed.sort();
            *v = keyed.into_iter().map(|(_, id)| id).collect();
            for (i, id) in v.iter().enumerate() {
                index.insert(id, i);
            }
        }
        let longest = l
            .nodes
            .iter()
            .map(|n| {
                (n.resource_type.chars().count() + 1 + n.name.chars().count())
                    .max(status_trust(n).chars().count())
            })
            .max()
            .unwrap_or(10);
        let chars = longest.clamp(14, 48);
        let box_w = chars as i64 * CHAR_W + 20;
        let mut pos = BTreeMap::new();
        let mut tallest = 0;
        for (d, v) in layers.iter().enumerate() {
            tallest = tallest.max(v.len() as i64);
            for (i, &id) in v.iter().enumerate() {
                pos.insert(
                    id,
                    (
                        MARGIN + d as i64 * (box_w + GAP_X),
                        TOP + i as i64 * (BOX_H + GAP_Y),
                    ),
                );
            }
        }
        let title_w = MARGIN * 2 + (l.title().chars().count() as i64) * 8;
        Layout {
            pos,
            box_w,
            chars,
            width: (MARGIN * 2 + depth as i64 * (box_w + GAP_X) - GAP_X).max(title_w),
            height: TOP + tallest * (BOX_H + GAP_Y) + MARGIN,
        }
    }
}
