//! SQL guard: checks SQL text found in a request payload before it reaches a warehouse.
//!
//! The SQL is parsed with [`sqlparser`] in the route's configured [`SqlDialect`]. Every rule below
//! yields a [`SqlFinding`] with a stable reason code ([`SqlFinding::code`]); the request is refused
//! when any finding is left after waivers ([`SqlDecision::allowed`]).
//!
//! | code | refused when | waived by |
//! |------|--------------|-----------|
//! | `sql.too_long` | the text is longer than [`SqlGuardConfig::max_sql_bytes`] | never |
//! | `sql.too_complex` | the text has more than [`SqlGuardConfig::max_sql_tokens`] tokens (this bounds the depth of the parse tree, so that parsing, walking and dropping it cannot exhaust the stack: `a OR a OR ...` nests one level per `OR`) | never |
//! | `sql.unparsable` | the dialect's parser rejects the text (fail closed) | never |
//! | `sql.not_text` | a configured pointer names a value that is not a string (or array of strings) | never |
//! | `sql.multiple_statements` | the text holds more than one statement | approval |
//! | `sql.ddl` | a statement is DDL or a privilege change (`CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `GRANT`, `REVOKE`, `RENAME`, `COMMENT`, `UNDROP`, `SELECT ... INTO`) | allowlisting `ddl`, approval |
//! | `sql.update_without_where` / `sql.delete_without_where` | an `UPDATE` / `DELETE` has no `WHERE` | allowlisting `update` / `delete`, approval |
//! | `sql.where_not_restrictive` | an `UPDATE` / `DELETE` has a `WHERE` that is not restrictive (below), or a `MERGE` with a `WHEN MATCHED THEN UPDATE/DELETE` clause has an `ON` condition that is not restrictive | allowlisting `update` / `delete` / `merge`, approval |
//! | `sql.statement_not_allowed` | a statement is neither a query, `INSERT`, `UPDATE`, `DELETE`, `MERGE` nor DDL (`SET`, `COPY`, `CALL`, `EXPLAIN`, `USE`, ...): fail closed | allowlisting `other`, approval |
//! | `sql.missing_limit` / `sql.limit_too_high` | [`SqlGuardConfig::max_rows`] is set and a top-level query has no `LIMIT` (or `FETCH FIRST`, or Snowflake `TOP n`), a limit that is not an integer literal, or a limit above `max_rows` | approval |
//!
//! Statements nested inside others are checked too: a data-modifying CTE
//! (`WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d`) or `EXPLAIN ANALYZE DELETE FROM t`
//! has its `DELETE` checked like a top-level one.
//!
//! `INSERT` is allowed. Text with no statement at all (empty, or only comments) runs nothing
//! and is allowed. `MERGE ... WHEN NOT MATCHED BY SOURCE THEN DELETE` (Databricks) is not
//! judged: it deletes target rows absent from the source by design.
//!
//! The row-limit rule refuses rather than rewriting the query: the gateway never changes SQL, the
//! finding's message names the limit to add.
//!
//! # What counts as a restrictive `WHERE`
//!
//! A `WHERE` predicate is **not restrictive** when any of these holds (parentheses are looked
//! through):
//! 1. it references no column at all (a constant such as `true`, `1`, `1=1`, `'a'<>'b'`,
//!    `random() < 0.5`, `EXISTS (SELECT 1)`); constant-false predicates are refused too, since
//!    they are never what a caller means;
//! 2. it is a comparison `=`, `>=`, `<=`, `IS NOT DISTINCT FROM` whose two sides are the same
//!    expression (`x = x`, `t.id >= t.id`);
//! 3. it is `IS TRUE` / `IS NOT FALSE` / `IS NOT NULL` / `NOT` over a non-restrictive predicate, or a
//!    `LIKE` / `ILIKE` whose pattern is a string literal made only of `%`;
//! 4. it is an `OR` with at least one non-restrictive branch (`id = 5 OR true`);
//! 5. it is an `AND` whose two sides are both non-restrictive;
//! 6. it nests deeper than 256 levels (fail closed).
//!
//! Everything else counts as restrictive: the guard is a seat belt against accidents and
//! obviously unbounded writes, not a proof that a predicate matches few rows
//! (`WHERE id > 0` passes).
//!
//! # JSON pointers
//!
//! [`check_payload`] reads SQL from a JSON payload at the configured RFC 6901 pointers. A pointer
//! that names nothing (or `null`) does not apply; a string is checked; an array of strings has each
//! element checked (its pointer is `<pointer>/<index>`); anything else is refused (`sql.not_text`).
//! Each finding carries the pointer it came from.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use sqlparser::ast::{
    BinaryOperator, Expr, LimitClause, MergeAction, MergeClauseKind, Query, SetExpr, Statement,
    TopQuantity, UnaryOperator, Value,
};
use sqlparser::dialect::{
    BigQueryDialect, DatabricksDialect, Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect,
    SnowflakeDialect,
};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Deepest `WHERE` predicate the restrictiveness analysis walks; deeper ones are not restrictive.
const MAX_PREDICATE_DEPTH: usize = 256;

/// Default for [`SqlGuardConfig::max_sql_bytes`]: 1 MiB.
pub const DEFAULT_MAX_SQL_BYTES: usize = 1024 * 1024;

/// Default for [`SqlGuardConfig::max_sql_tokens`]: 20,000. A left-deep chain of that many tokens
/// is about 10,000 levels deep, which unoptimized test builds on a 2 MiB thread stack survive
/// (measured: 16,000 `OR`s pass, 50,000 overflow inside sqlparser's own drop).
pub const DEFAULT_MAX_SQL_TOKENS: usize = 20_000;

/// The SQL dialect a route's SQL is parsed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlDialect {
    /// PostgreSQL (and Redshift-like Postgres syntax).
    Postgres,
    /// Snowflake.
    Snowflake,
    /// Databricks SQL.
    Databricks,
    /// Google BigQuery.
    Bigquery,
    /// MySQL / MariaDB.
    Mysql,
    /// sqlparser's generic, permissive dialect.
    Generic,
}

impl SqlDialect {
    fn parser_dialect(self) -> Box<dyn Dialect> {
        match self {
            SqlDialect::Postgres => Box::new(PostgreSqlDialect {}),
            SqlDialect::Snowflake => Box::new(SnowflakeDialect {}),
            SqlDialect::Databricks => Box::new(DatabricksDialect {}),
            SqlDialect::Bigquery => Box::new(BigQueryDialect {}),
            SqlDialect::Mysql => Box::new(MySqlDialect {}),
            SqlDialect::Generic => Box::new(GenericDialect {}),
        }
    }
}

/// The kind of a SQL statement, as the guard classifies it; also the unit of allowlisting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatementKind {
    /// A query (`SELECT`, `VALUES`, set operations, `WITH ... SELECT`).
    Select,
    /// `INSERT` (and MySQL `REPLACE INTO`).
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `MERGE`.
    Merge,
    /// DDL and privilege changes: `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `GRANT`, `REVOKE`, ...
    Ddl,
    /// Anything else (`SET`, `COPY`, `CALL`, `EXPLAIN`, `USE`, transactions, ...).
    Other,
}

/// Policy settings for the SQL guard of one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlGuardConfig {
    /// Dialect the SQL is parsed in.
    pub dialect: SqlDialect,
    /// RFC 6901 JSON pointers to the SQL text in the payload (for [`check_payload`]).
    #[serde(default)]
    pub pointers: Vec<String>,
    /// Statement kinds whose kind-specific rules are waived (`ddl`, `update`, `delete`, `other`).
    #[serde(default)]
    pub allow: BTreeSet<StatementKind>,
    /// When set, a top-level query must carry a `LIMIT` (or `FETCH FIRST`) of at most this many rows.
    #[serde(default)]
    pub max_rows: Option<u64>,
    /// Longest SQL text accepted, in bytes.
    #[serde(default = "default_max_sql_bytes")]
    pub max_sql_bytes: usize,
    /// Most SQL tokens (whitespace and comments excluded) accepted in one text.
    #[serde(default = "default_max_sql_tokens")]
    pub max_sql_tokens: usize,
}

fn default_max_sql_tokens() -> usize {
    DEFAULT_MAX_SQL_TOKENS
}

fn default_max_sql_bytes() -> usize {
    DEFAULT_MAX_SQL_BYTES
}

impl SqlGuardConfig {
    /// A configuration for `dialect` with no pointers, no allowlist, no row limit.
    pub fn new(dialect: SqlDialect) -> Self {
        SqlGuardConfig {
            dialect,
            pointers: Vec::new(),
            allow: BTreeSet::new(),
            max_rows: None,
            max_sql_bytes: DEFAULT_MAX_SQL_BYTES,
            max_sql_tokens: DEFAULT_MAX_SQL_TOKENS,
        }
    }

    /// Checks the configuration, reporting every bad pointer at once.
    pub fn validate(&self) -> Result<(), SqlGuardConfigError> {
        let bad: Vec<String> = self
            .pointers
            .iter()
            .filter(|p| !is_valid_pointer(p))
            .cloned()
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(SqlGuardConfigError::InvalidPointers(bad))
        }
    }
}

/// A configuration problem found by [`SqlGuardConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlGuardConfigError {
    /// Pointers that are not RFC 6901 JSON pointers (they must be empty or start with `/`, and
    /// `~` must be followed by `0` or `1`).
    #[error("invalid JSON pointer(s) in sql guard config: {}", .0.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "))]
    InvalidPointers(Vec<String>),
}

pub(crate) use clyra_evidence::jcs::is_json_pointer as is_valid_pointer;

/// One reason to refuse (or, in [`SqlDecision::waived`], a reason that was waived).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlFinding {
    /// Stable reason code, such as `sql.ddl` (see the module documentation).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// JSON pointer of the SQL text in the payload, when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// The guard's verdict on some SQL text or payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlDecision {
    /// Findings that refuse the request; empty means allowed.
    pub findings: Vec<SqlFinding>,
    /// Findings that would have refused but were waived by allowlisting or approval (for receipts).
    pub waived: Vec<SqlFinding>,
    /// Kinds of every statement seen (nested ones included), in order.
    pub statement_kinds: Vec<StatementKind>,
}

impl SqlDecision {
    /// Whether the SQL may go through.
    pub fn allowed(&self) -> bool {
        self.findings.is_empty()
    }

    /// The reason codes of the refusing findings.
    pub fn codes(&self) -> Vec<&str> {
        self.findings.iter().map(|f| f.code.as_str()).collect()
    }

    fn merge(&mut self, other: SqlDecision) {
        self.findings.extend(other.findings);
        self.waived.extend(other.waived);
        self.statement_kinds.extend(other.statement_kinds);
    }
}

/// How a finding can be waived.
#[derive(Clone, Copy)]
enum Waiver {
    Never,
    ApprovalOnly,
    Kind(StatementKind),
}

struct Checker<'a> {
    config: &'a SqlGuardConfig,
    approved: bool,
    pointer: Option<&'a str>,
    decision: SqlDecision,
}

impl Checker<'_> {
    fn add(&mut self, code: &str, message: String, waiver: Waiver) {
        let finding = SqlFinding {
            code: code.to_owned(),
            message,
            pointer: self.pointer.map(str::to_owned),
        };
        let waived = match waiver {
            Waiver::Never => false,
            Waiver::ApprovalOnly => self.approved,
            Waiver::Kind(kind) => self.approved || self.config.allow.contains(&kind),
        };
        if waived {
            self.decision.waived.push(finding);
        } else {
            self.decision.findings.push(finding);
        }
    }
}

/// Checks one SQL text. `approved` is true when the request carries a valid approval.
pub fn check_sql(sql: &str, config: &SqlGuardConfig, approved: bool) -> SqlDecision {
    check_sql_at(sql, config, approved, None)
}

fn check_sql_at(
    sql: &str,
    config: &SqlGuardConfig,
    approved: bool,
    pointer: Option<&str>,
) -> SqlDecision {
    let mut c = Checker {
        config,
        approved,
        pointer,
        decision: SqlDecision::default(),
    };
    if sql.len() > config.max_sql_bytes {
        c.add(
            "sql.too_long",
            format!(
                "sql text is {} bytes, more than the {} allowed",
                sql.len(),
                config.max_sql_bytes
            ),
            Waiver::Never,
        );
        return c.decision;
    }
    let dialect = config.dialect.parser_dialect();
    let tokens = match Tokenizer::new(dialect.as_ref(), sql).tokenize() {
        Ok(tokens) => tokens,
        Err(e) => {
            c.add(
                "sql.unparsable",
                format!(
                    "sql could not be tokenized as {:?} sql (refused, fail closed): {e}",
                    config.dialect
                ),
                Waiver::Never,
            );
            return c.decision;
        }
    };
    let count = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .count();
    if count > config.max_sql_tokens {
        c.add(
            "sql.too_complex",
            format!(
                "sql has {count} tokens, more than the {} allowed",
                config.max_sql_tokens
            ),
            Waiver::Never,
        );
        return c.decision;
    }
    let statements = match Parser::parse_sql(dialect.as_ref(), sql) {
        Ok(s) => s,
        Err(e) => {
            c.add(
                "sql.unparsable",
                format!(
                    "sql could not be parsed as {:?} sql (refused, fail closed): {e}",
                    config.dialect
                ),
                Waiver::Never,
            );
            return c.decision;
        }
    };
    if statements.len() > 1 {
        c.add(
            "sql.multiple_statements",
            format!(
                "sql holds {} statements; one statement per request is allowed",
                statements.len()
            ),
            Waiver::ApprovalOnly,
        );
    }
    for statement in &statements {
        if let (Statement::Query(q), Some(max)) = (statement, config.max_rows) {
            check_limit(&mut c, q, max);
        }
        // The visitor hands over the statement itself, then every nested one.
        let _ = sqlparser::ast::visit_statements(statement, |s| {
            check_statement(&mut c, s);
            ControlFlow::<()>::Continue(())
        });
    }
    c.decision
}

/// Checks the SQL found at the configured pointers of a JSON payload.
pub fn check_payload(
    payload: &serde_json::Value,
    config: &SqlGuardConfig,
    approved: bool,
) -> SqlDecision {
    let mut decision = SqlDecision::default();
    for pointer in &config.pointers {
        match payload.pointer(pointer) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(sql)) => {
                decision.merge(check_sql_at(sql, config, approved, Some(pointer)));
            }
            Some(serde_json::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let item_pointer = format!("{pointer}/{i}");
                    match item {
                        serde_json::Value::String(sql) => {
                            decision.merge(check_sql_at(sql, config, approved, Some(&item_pointer)))
                        }
                        serde_json::Value::Null => {}
                        _ => decision.findings.push(not_text(&item_pointer)),
                    }
                }
            }
            Some(_) => decision.findings.push(not_text(pointer)),
        }
    }
    decision
}

fn not_text(pointer: &str) -> SqlFinding {
    SqlFinding {
        code: "sql.not_text".to_owned(),
        message: format!("the value at `{pointer}` is configured as sql but is not a string"),
        pointer: Some(pointer.to_owned()),
    }
}

/// Classifies a statement.
pub fn statement_kind(statement: &Statement) -> StatementKind {
    match statement {
        Statement::Query(q) if query_selects_into(q) => StatementKind::Ddl,
        Statement::Query(_) => StatementKind::Select,
        Statement::Insert(_) => StatementKind::Insert,
        Statement::Update(_) => StatementKind::Update,
        Statement::Delete(_) => StatementKind::Delete,
        Statement::Merge(_) => StatementKind::Merge,
        other => {
            // Classify the long tail by the leading keyword of the statement's SQL rendering, so
            // new sqlparser variants for DDL still land in `Ddl`.
            let text = other.to_string();
            let first = text
                .split(|c: char| !c.is_ascii_alphabetic())
                .find(|w| !w.is_empty())
                .unwrap_or("")
                .to_ascii_uppercase();
            match first.as_str() {
                "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "GRANT" | "REVOKE" | "RENAME"
                | "COMMENT" | "UNDROP" | "DENY" => StatementKind::Ddl,
                _ => StatementKind::Other,
            }
        }
    }
}

/// `SELECT ... INTO new_table` creates a table.
fn query_selects_into(q: &Query) -> bool {
    match q.body.as_ref() {
        SetExpr::Select(s) => s.into.is_some(),
        _ => false,
    }
}

fn check_statement(c: &mut Checker<'_>, statement: &Statement) {
    let kind = statement_kind(statement);
    c.decision.statement_kinds.push(kind);
    match (kind, statement) {
        (StatementKind::Ddl, _) => {
            let text = statement.to_string();
            let head: String = text.chars().take(60).collect();
            c.add(
                "sql.ddl",
                format!("ddl or privilege change is not allowed: `{head}`"),
                Waiver::Kind(StatementKind::Ddl),
            );
        }
        (StatementKind::Other, _) => {
            let text = statement.to_string();
            let head: String = text.chars().take(40).collect();
            c.add(
                "sql.statement_not_allowed",
                format!("statement kind is not allowed (allowlist `other` to permit): `{head}`"),
                Waiver::Kind(StatementKind::Other),
            );
        }
        (StatementKind::Update, Statement::Update(u)) => {
            check_where(c, StatementKind::Update, u.selection.as_ref());
        }
        (StatementKind::Delete, Statement::Delete(d)) => {
            check_where(c, StatementKind::Delete, d.selection.as_ref());
        }
        (StatementKind::Merge, Statement::Merge(m)) => {
            let changes_matched = m.clauses.iter().any(|cl| {
                cl.clause_kind == MergeClauseKind::Matched
                    && matches!(
                        cl.action,
                        MergeAction::Update(_) | MergeAction::Delete { .. }
                    )
            });
            if changes_matched && !is_restrictive(&m.on) {
                let text = m.on.to_string();
                let head: String = text.chars().take(60).collect();
                c.add(
                    "sql.where_not_restrictive",
                    format!(
                        "MERGE that updates or deletes matched rows with an ON condition that does not restrict rows: `{head}`"
                    ),
                    Waiver::Kind(StatementKind::Merge),
                );
            }
        }
        _ => {}
    }
}

fn check_where(c: &mut Checker<'_>, kind: StatementKind, selection: Option<&Expr>) {
    let verb = if kind == StatementKind::Update {
        "update"
    } else {
        "delete"
    };
    match selection {
        None => c.add(
            &format!("sql.{verb}_without_where"),
            format!(
                "{} without a where clause changes every row",
                verb.to_uppercase()
            ),
            Waiver::Kind(kind),
        ),
        Some(expr) => {
            if !is_restrictive(expr) {
                let text = expr.to_string();
                let head: String = text.chars().take(60).collect();
                c.add(
                    "sql.where_not_restrictive",
                    format!(
                        "{} with a where clause that does not restrict rows: `{head}`",
                        verb.to_uppercase()
                    ),
                    Waiver::Kind(kind),
                );
            }
        }
    }
}

fn check_limit(c: &mut Checker<'_>, q: &Query, max: u64) {
    let limit_expr = match &q.limit_clause {
        Some(LimitClause::LimitOffset {
            limit: Some(limit), ..
        }) => Some(limit),
        Some(LimitClause::OffsetCommaLimit { limit, .. }) => Some(limit),
        _ => q.fetch.as_ref().and_then(|f| f.quantity.as_ref()),
    };
    // Snowflake (and MSSQL) `SELECT TOP n`.
    let top = match q.body.as_ref() {
        SetExpr::Select(s) => s.top.as_ref().and_then(|t| t.quantity.as_ref()),
        _ => None,
    };
    if limit_expr.is_none() {
        match top {
            Some(TopQuantity::Constant(n)) => {
                if *n > max {
                    c.add(
                        "sql.limit_too_high",
                        format!("query TOP {n} is above the {max} rows allowed; use `TOP {max}`"),
                        Waiver::ApprovalOnly,
                    );
                }
                return;
            }
            Some(TopQuantity::Expr(e)) => {
                check_limit_value(c, e, max);
                return;
            }
            None => {}
        }
    }
    let Some(limit_expr) = limit_expr else {
        c.add(
            "sql.missing_limit",
            format!("query has no limit; add `LIMIT {max}` (at most {max} rows)"),
            Waiver::ApprovalOnly,
        );
        return;
    };
    check_limit_value(c, limit_expr, max);
}

fn check_limit_value(c: &mut Checker<'_>, limit_expr: &Expr, max: u64) {
    match integer_literal(limit_expr) {
        Some(n) if n <= max => {}
        Some(n) => c.add(
            "sql.limit_too_high",
            format!("query limit {n} is above the {max} rows allowed; use `LIMIT {max}`"),
            Waiver::ApprovalOnly,
        ),
        None => c.add(
            "sql.limit_too_high",
            format!(
                "query limit `{limit_expr}` is not an integer literal; use `LIMIT {max}` or less"
            ),
            Waiver::ApprovalOnly,
        ),
    }
}

fn integer_literal(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::Nested(e) => integer_literal(e),
        _ => None,
    }
}

/// Whether a `WHERE` predicate restricts rows, per the rules in the module documentation.
pub fn is_restrictive(expr: &Expr) -> bool {
    !non_restrictive(expr, 0)
}

fn non_restrictive(expr: &Expr, depth: usize) -> bool {
    if depth > MAX_PREDICATE_DEPTH {
        return true;
    }
    if !references_column(expr) {
        return true;
    }
    let d = depth + 1;
    match expr {
        Expr::Nested(e) | Expr::IsTrue(e) | Expr::IsNotFalse(e) | Expr::IsNotNull(e) => {
            non_restrictive(e, d)
        }
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => non_restrictive(expr, d),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::Or => non_restrictive(left, d) || non_restrictive(right, d),
            BinaryOperator::And => non_restrictive(left, d) && non_restrictive(right, d),
            BinaryOperator::Eq | BinaryOperator::GtEq | BinaryOperator::LtEq => {
                left.to_string() == right.to_string()
            }
            _ => false,
        },
        Expr::IsNotDistinctFrom(left, right) => left.to_string() == right.to_string(),
        Expr::Like {
            negated: false,
            pattern,
            ..
        }
        | Expr::ILike {
            negated: false,
            pattern,
            ..
        } => match pattern.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                    !s.is_empty() && s.chars().all(|ch| ch == '%')
                }
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

fn references_column(expr: &Expr) -> bool {
    let found = sqlparser::ast::visit_expressions(expr, |e| match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    found.is_break()
}
