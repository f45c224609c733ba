//! The parser check of recorded compiled SQL, and its rewriting onto the scratch schema.
//!
//! [`check`] parses the SQL with `sqlparser` (Postgres dialect) and refuses, before anything
//! runs, everything that is not exactly one read-only query:
//!
//! - anything but exactly one statement, and any statement but a query (`SELECT`, `WITH ...
//!   SELECT`, `VALUES`, set operations);
//! - data-modifying CTEs (`WITH d AS (DELETE ... RETURNING *)`) and any other statement nested in
//!   the query; `SELECT ... INTO`; row locks (`FOR UPDATE`, `FOR SHARE`, ...); `TABLE name`
//!   (write `SELECT * FROM name`); `FROM` items Postgres does not have;
//! - calls of the functions in [`REFUSED_FUNCTIONS`] and of any function whose name starts with
//!   one of [`REFUSED_PREFIXES`] (files, large objects, the network, other sessions, sequences,
//!   settings, advisory locks, transaction ids, replication, dynamic SQL), however qualified or
//!   cased, called as a function or as a `FROM` item.
//!
//! It is an allow-by-default list: a function not on it is allowed (Postgres has thousands, and
//! dbt models call many). The role isolation of a replay (see the module above) is the second
//! layer for what a list cannot catch, such as a user-defined function that writes.
//!
//! [`rewrite`] then points references to replayed models at their scratch copies and prints the
//! query; the printed SQL is parsed and checked again before it runs, so what runs is what was
//! checked.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use serde::Serialize;
use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement, TableFactor, Visit,
    VisitMut, Visitor, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Functions a replayed query may not call (lowercase; compared with the last part of the
/// called name, lowercased).
pub const REFUSED_FUNCTIONS: &[&str] = &[
    // Files and the server's file system.
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "pg_logdir_ls",
    // Large objects that reach files.
    "lo_import",
    "lo_export",
    "loread",
    "lowrite",
    "copy",
    // Other sessions and the server.
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_signal_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_promote",
    "pg_log_backend_memory_contexts",
    "pg_notify",
    "pg_import_system_collations",
    // Settings and sequences (sequences are not transactional).
    "set_config",
    "nextval",
    "setval",
    // Dynamic SQL: these run a query given as text.
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
    "ts_stat",
    "ts_rewrite",
];

/// Function name prefixes a replayed query may not call.
pub const REFUSED_PREFIXES: &[&str] = &[
    // The network: dblink and its family (dblink_exec, dblink_connect, ...).
    "dblink",
    // Advisory locks outlive the transaction.
    "pg_advisory",
    "pg_try_advisory",
    // Large objects, files, logs.
    "lo_",
    "pg_ls_",
    "pg_read_",
    "pg_file_",
    // Transaction ids: they assign one.
    "txid_",
    "pg_current_xact_id",
    "pg_xact_",
    // Statistics resets, replication, backups, WAL replay control.
    "pg_stat_reset",
    "pg_stat_statements_reset",
    "pg_replication_",
    "pg_create_",
    "pg_drop_replication_slot",
    "pg_copy_",
    "pg_logical_",
    "pg_backup_",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_wal_replay_",
];

/// Why SQL was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// A stable code: `parse`, `not_one_statement`, `not_a_query`, `data_modifying`,
    /// `select_into`, `row_lock`, `refused_function`, `unsupported_syntax`, `rewrite`.
    pub code: &'static str,
    /// What was refused, for people.
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// Whether a function name (any case) is refused.
pub fn is_refused_function(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    REFUSED_FUNCTIONS.contains(&n.as_str()) || REFUSED_PREFIXES.iter().any(|p| n.starts_with(p))
}

/// An identifier as Postgres resolves it: unquoted ones fold to lowercase (ASCII only, as
/// Postgres does in UTF-8 databases), quoted ones are taken as written.
fn fold(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

/// The parts of a name, folded; `None` if a part is not a plain identifier.
fn parts(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(fold(i)),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

/// A query that passed the check.
#[derive(Debug, Clone)]
pub struct Checked {
    statement: Statement,
    ctes: BTreeSet<String>,
    /// The relations it reads, each as its folded name parts (`[schema, name]`, `[db, schema,
    /// name]` or `[name]`), CTE names left out, sorted and without duplicates.
    pub relations: Vec<Vec<String>>,
}

impl Checked {
    /// The query, printed.
    pub fn sql(&self) -> String {
        self.statement.to_string()
    }
}

/// Refuses quoted identifiers that contain their own quote character (`"a""b"`): the printer
/// writes them back unescaped, so the SQL Clyra would run could read other relations than the
/// SQL it checked (found by the `replay_sql` fuzz target). dbt never generates such names.
fn refuse_quotes_in_identifiers(sql: &str) -> Result<(), Refusal> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| refuse("parse", format!("the SQL does not parse: {e}")))?;
    for t in tokens {
        if let Token::Word(w) = t {
            if let Some(q) = w.quote_style {
                if w.value.contains(q) {
                    return Err(refuse(
                        "unsupported_syntax",
                        format!(
                            "the quoted identifier {:?} contains its quote character; such names are refused",
                            w.value
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Parses and checks `sql`: exactly one read-only query, no refused function.
pub fn check(sql: &str) -> Result<Checked, Refusal> {
    refuse_quotes_in_identifiers(sql)?;
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| refuse("parse", format!("the SQL does not parse: {e}")))?;
    let statement = match <[Statement; 1]>::try_from(statements) {
        Ok([s]) => s,
        Err(v) => {
            return Err(refuse(
                "not_one_statement",
                format!(
                    "the SQL holds {} statements; a model's compiled SQL is exactly one query",
                    v.len()
                ),
            ))
        }
    };
    if !matches!(statement, Statement::Query(_)) {
        let first = statement.to_string();
        let word = first
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_uppercase();
        return Err(refuse(
            "not_a_query",
            format!("the SQL is a {word} statement, not a query; only one SELECT (or WITH ... SELECT) is replayed"),
        ));
    }
    let mut checker = Checker::default();
    if let ControlFlow::Break(r) = statement.visit(&mut checker) {
        return Err(r);
    }
    let relations = checker
        .relations
        .into_iter()
        .filter(|p| !(p.len() == 1 && p.first().is_some_and(|n| checker.ctes.contains(n))))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(Checked {
        statement,
        ctes: checker.ctes,
        relations,
    })
}

#[derive(Default)]
struct Checker {
    statements: usize,
    ctes: BTreeSet<String>,
    relations: Vec<Vec<String>>,
}

impl Checker {
    fn function(&self, name: &ObjectName) -> ControlFlow<Refusal> {
        let Some(p) = parts(name) else {
            return ControlFlow::Break(refuse(
                "unsupported_syntax",
                format!("the function name `{name}` is not a plain name"),
            ));
        };
        if p.len() > 3 {
            return ControlFlow::Break(refuse(
                "unsupported_syntax",
                format!("the function name `{name}` has more than three parts"),
            ));
        }
        match p.last() {
            Some(last) if is_refused_function(last) => ControlFlow::Break(refuse(
                "refused_function",
                format!("the SQL calls `{name}`, which replay refuses (it reaches files, the network, other sessions or state outside the transaction)"),
            )),
            _ => ControlFlow::Continue(()),
        }
    }
}

impl Visitor for Checker {
    type Break = Refusal;

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<Refusal> {
        self.statements += 1;
        if self.statements > 1 {
            let text = s.to_string();
            let word = text.split_whitespace().next().unwrap_or("?").to_uppercase();
            return ControlFlow::Break(refuse(
                "data_modifying",
                format!("the query contains a {word} statement (a data-modifying CTE or subquery); replay runs read-only queries only"),
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<Refusal> {
        if !q.locks.is_empty() {
            return ControlFlow::Break(refuse(
                "row_lock",
                "the query locks rows (FOR UPDATE / FOR SHARE); replay runs read-only queries only",
            ));
        }
        if q.for_clause.is_some()
            || q.settings.is_some()
            || q.format_clause.is_some()
            || !q.pipe_operators.is_empty()
        {
            return ControlFlow::Break(refuse(
                "unsupported_syntax",
                "the query uses a clause Postgres does not have",
            ));
        }
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.insert(fold(&cte.alias.name));
            }
        }
        set_expr(&q.body)
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<Refusal> {
        if s.into.is_some() {
            return ControlFlow::Break(refuse(
                "select_into",
                "SELECT ... INTO creates a table; replay runs read-only queries only",
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<Refusal> {
        match t {
            TableFactor::Table {
                name, args: None, ..
            } => {
                let Some(p) = parts(name) else {
                    return ControlFlow::Break(refuse(
                        "unsupported_syntax",
                        format!("the relation name `{name}` is not a plain name"),
                    ));
                };
                if p.is_empty() || p.len() > 3 {
                    return ControlFlow::Break(refuse(
                        "unsupported_syntax",
                        format!("the relation name `{name}` does not have one to three parts"),
                    ));
                }
                self.relations.push(p);
                ControlFlow::Continue(())
            }
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => self.function(name),
            TableFactor::Derived { .. }
            | TableFactor::TableFunction { .. }
            | TableFactor::UNNEST { .. }
            | TableFactor::NestedJoin { .. } => ControlFlow::Continue(()),
            other => ControlFlow::Break(refuse(
                "unsupported_syntax",
                format!("the FROM item `{other}` is not supported"),
            )),
        }
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<Refusal> {
        match e {
            Expr::Function(f) => self.function(&f.name),
            // `t.func` calls func(t) in Postgres (attribute notation).
            Expr::CompoundIdentifier(idents) => match idents.last() {
                Some(last) if is_refused_function(&fold(last)) => ControlFlow::Break(refuse(
                    "refused_function",
                    format!("the SQL names `{}`, a function replay refuses", fold(last)),
                )),
                _ => ControlFlow::Continue(()),
            },
            _ => ControlFlow::Continue(()),
        }
    }
}

fn set_expr(body: &SetExpr) -> ControlFlow<Refusal> {
    match body {
        SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::Values(_) => ControlFlow::Continue(()),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr(left)?;
            set_expr(right)
        }
        SetExpr::Table(_) => ControlFlow::Break(refuse(
            "unsupported_syntax",
            "`TABLE name` is not replayed; write `SELECT * FROM name`",
        )),
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
            ControlFlow::Break(refuse(
                "data_modifying",
                "the query body is a data-modifying statement; replay runs read-only queries only",
            ))
        }
    }
}

/// A checked query pointed at the scratch schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The query to run, printed from the rewritten syntax tree and checked again.
    pub sql: String,
    /// The replayed models' relations (`(schema, name)`) it reads, from their scratch copies.
    pub replayed: BTreeSet<(String, String)>,
    /// The other relations it reads, where they are: `(schema, name)` for qualified names (the
    /// database part dropped), `("", name)` for unqualified ones.
    pub sources: BTreeSet<(String, String)>,
    /// Database names of three-part names (each must be the current database).
    pub databases: BTreeSet<String>,
}

/// Points every reference to a relation in `replayed` (`(schema, name)` to its name in the
/// scratch schema) at `scratch.<name>`, in `FROM` and in qualified column references
/// (`schema.table.column`), prints the query and checks the printed SQL again.
pub fn rewrite(
    checked: &Checked,
    replayed: &BTreeMap<(String, String), String>,
    scratch: &str,
) -> Result<Rewritten, Refusal> {
    let mut statement = checked.statement.clone();
    let mut rw = Rewriter {
        replayed,
        scratch,
        ctes: &checked.ctes,
        out: Rewritten {
            sql: String::new(),
            replayed: BTreeSet::new(),
            sources: BTreeSet::new(),
            databases: BTreeSet::new(),
        },
    };
    let _ = VisitMut::visit(&mut statement, &mut rw);
    let mut out = rw.out;
    out.sql = statement.to_string();
    // What runs is what is checked: the printed SQL goes through the check again, and must
    // read exactly the relations the rewrite produced.
    let again = check(&out.sql).map_err(|r| {
        refuse(
            "rewrite",
            format!("the rewritten SQL does not pass the check again ({r})"),
        )
    })?;
    let mut expected: BTreeSet<Vec<String>> = out
        .sources
        .iter()
        .map(|(s, n)| {
            if s.is_empty() {
                vec![n.clone()]
            } else {
                vec![s.clone(), n.clone()]
            }
        })
        .collect();
    for (s, n) in &out.replayed {
        if let Some(scratch_name) = replayed.get(&(s.clone(), n.clone())) {
            expected.insert(vec![scratch.to_string(), scratch_name.clone()]);
        }
    }
    let got: BTreeSet<Vec<String>> = again.relations.into_iter().collect();
    let got_without_db: BTreeSet<Vec<String>> = got
        .into_iter()
        .map(|p| if p.len() == 3 { p[1..].to_vec() } else { p })
        .collect();
    if got_without_db != expected {
        return Err(refuse(
            "rewrite",
            "the rewritten SQL does not read the relations the rewrite produced",
        ));
    }
    Ok(out)
}

struct Rewriter<'a> {
    replayed: &'a BTreeMap<(String, String), String>,
    scratch: &'a str,
    ctes: &'a BTreeSet<String>,
    out: Rewritten,
}

impl Rewriter<'_> {
    fn scratch_idents(&self, name: &str) -> [Ident; 2] {
        [
            Ident::with_quote('"', self.scratch),
            Ident::with_quote('"', name),
        ]
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name, args: None, ..
        } = t
        else {
            return ControlFlow::Continue(());
        };
        let Some(p) = parts(name) else {
            return ControlFlow::Continue(());
        };
        let (db, key) = match p.as_slice() {
            [n] => {
                if !self.ctes.contains(n) {
                    self.out.sources.insert((String::new(), n.clone()));
                }
                return ControlFlow::Continue(());
            }
            [s, n] => (None, (s.clone(), n.clone())),
            [d, s, n] => (Some(d.clone()), (s.clone(), n.clone())),
            _ => return ControlFlow::Continue(()),
        };
        if let Some(d) = db {
            self.out.databases.insert(d);
        }
        match self.replayed.get(&key) {
            Some(scratch_name) => {
                let idents = self.scratch_idents(scratch_name);
                *name = ObjectName::from(idents.to_vec());
                self.out.replayed.insert(key);
            }
            None => {
                // Keep the reference, without the database part (checked separately).
                if p.len() == 3 {
                    name.0.remove(0);
                }
                self.out.sources.insert(key);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::CompoundIdentifier(idents) = e else {
            return ControlFlow::Continue(());
        };
        // schema.table.column[.field...], or db.schema.table.column[...] (tried first).
        let n = idents.len();
        let starts: &[usize] = match n {
            0..=2 => &[],
            3 => &[0],
            _ => &[1, 0],
        };
        for &start in starts {
            let (Some(s), Some(t)) = (idents.get(start), idents.get(start + 1)) else {
                continue;
            };
            if let Some(scratch_name) = self.replayed.get(&(fold(s), fold(t))) {
                let mut new = self.scratch_idents(scratch_name).to_vec();
                new.extend(idents.iter().skip(start + 2).cloned());
                *idents = new;
                break;
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accepts_queries_dbt_compiles() {
        let c = check(
            r#"with orders as (
                 select o.id, o.customer_id, o.amount::numeric(12,2) as amount,
                        date_trunc('day', o.ordered_at) as day
                 from "test"."raw"."orders" o
               ), c as (select * from raw.customers)
               select c.id, coalesce(sum(orders.amount), 0) as total,
                      row_number() over (partition by c.id order by c.id) as rn
               from c left join orders on orders.customer_id = c.id
               where c.id in (select id from generate_series(1, 10) id)
               group by c.id;"#,
        )
        .unwrap();
        assert_eq!(
            c.relations,
            vec![
                vec!["raw".to_string(), "customers".to_string()],
                vec!["test".to_string(), "raw".to_string(), "orders".to_string()],
            ]
        );
    }

    #[test]
    fn refuses_everything_but_one_read_only_query() {
        for (sql, code) in [
            ("DELETE FROM raw.orders", "not_a_query"),
            ("select 1; drop table raw.orders", "not_one_statement"),
            ("", "not_one_statement"),
            ("select pg_read_file('/etc/passwd')", "refused_function"),
            (
                "select PG_CATALOG.\"PG_READ_FILE\"('/etc/passwd')",
                "refused_function",
            ),
            ("select * from pg_ls_dir('.') f", "refused_function"),
            (
                "select * from dblink('host=x', 'select 1') as t(a int)",
                "refused_function",
            ),
            (
                "select dblink_exec('x', 'drop table t')",
                "refused_function",
            ),
            ("select nextval('s')", "refused_function"),
            ("select pg_advisory_lock(1)", "refused_function"),
            ("select txid_current()", "refused_function"),
            (
                "select set_config('role', 'postgres', false)",
                "refused_function",
            ),
            (
                "select query_to_xml('delete from t', true, true, '')",
                "refused_function",
            ),
            (
                "with d as (delete from raw.orders returning *) select * from d",
                "data_modifying",
            ),
            (
                "with u as (update raw.orders set amount = 0 returning id) select * from u",
                "data_modifying",
            ),
            ("select * into raw.copy from raw.orders", "select_into"),
            ("select * from raw.orders for update", "row_lock"),
            ("table raw.orders", "parse"),
            (
                "select * from (select id from raw.orders for share) x",
                "row_lock",
            ),
            ("copy raw.orders to '/tmp/x'", "not_a_query"),
            ("selec 1", "parse"),
            (
                r#"select a from "test"."raw""""_ro" x"#,
                "unsupported_syntax",
            ),
        ] {
            let r = check(sql).unwrap_err();
            assert_eq!(r.code, code, "{sql}: {r}");
        }
        // `TABLE name` inside a query would escape the relation list: refused one way or another.
        let r = check("select * from (table raw.orders) t").unwrap_err();
        assert!(matches!(r.code, "parse" | "unsupported_syntax"), "{r}");
    }

    #[test]
    fn rewrites_model_references_to_the_scratch_schema() {
        let c = check(
            r#"select s.id, "Stg"."Orders".amount, stg.orders.id as oid
               from "test"."stg"."orders" s join raw.customers c on c.id = s.id
               join stg.orders on true join stg.other o on true"#,
        )
        .unwrap();
        let replayed: BTreeMap<(String, String), String> = [(
            ("stg".to_string(), "orders".to_string()),
            "orders".to_string(),
        )]
        .into();
        let r = rewrite(&c, &replayed, "clyra_replay_0011223344556677").unwrap();
        assert!(
            r.sql
                .contains(r#""clyra_replay_0011223344556677"."orders" s "#),
            "{}",
            r.sql
        );
        assert!(
            r.sql
                .contains(r#""clyra_replay_0011223344556677"."orders".id AS oid"#),
            "{}",
            r.sql
        );
        // Quoted "Stg"."Orders" is another relation: untouched.
        assert!(r.sql.contains(r#""Stg"."Orders".amount"#), "{}", r.sql);
        assert!(!r.sql.contains("\"test\""), "{}", r.sql);
        assert_eq!(
            r.replayed,
            [("stg".to_string(), "orders".to_string())].into()
        );
        assert_eq!(
            r.sources,
            [
                ("raw".to_string(), "customers".to_string()),
                ("stg".to_string(), "other".to_string())
            ]
            .into()
        );
        assert_eq!(r.databases, ["test".to_string()].into());
    }
}
