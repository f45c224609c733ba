//! SQL guard rules, per dialect where the syntax differs.

use clyra_gateway::sql_guard::{
    check_payload, check_sql, SqlDialect, SqlGuardConfig, StatementKind,
};
use proptest::prelude::*;
use serde_json::json;

const ALL: [SqlDialect; 6] = [
    SqlDialect::Postgres,
    SqlDialect::Snowflake,
    SqlDialect::Databricks,
    SqlDialect::Bigquery,
    SqlDialect::Mysql,
    SqlDialect::Generic,
];

fn codes(sql: &str, dialect: SqlDialect) -> Vec<String> {
    check_sql(sql, &SqlGuardConfig::new(dialect), false)
        .findings
        .into_iter()
        .map(|f| f.code)
        .collect()
}

#[test]
fn plain_select_insert_and_restricted_writes_pass_in_every_dialect() {
    for d in ALL {
        for sql in [
            "SELECT a, b FROM t WHERE a = 1",
            "INSERT INTO t (a) VALUES (1)",
            "UPDATE t SET a = 2 WHERE id = 7",
            "DELETE FROM t WHERE id IN (SELECT id FROM old)",
            "DELETE FROM t WHERE created_at < '2020-01-01' AND kind = 'x'",
        ] {
            let dec = check_sql(sql, &SqlGuardConfig::new(d), false);
            assert!(dec.allowed(), "{d:?} {sql}: {:?}", dec.findings);
        }
    }
}

#[test]
fn unparsable_sql_fails_closed_and_is_never_waived() {
    for d in ALL {
        let mut cfg = SqlGuardConfig::new(d);
        cfg.allow = [
            StatementKind::Ddl,
            StatementKind::Other,
            StatementKind::Update,
            StatementKind::Delete,
        ]
        .into_iter()
        .collect();
        let dec = check_sql("SELEC * FORM t", &cfg, true);
        assert_eq!(dec.codes(), vec!["sql.unparsable"], "{d:?}");
        assert!(dec.findings[0].message.contains("could not be parsed"));
    }
}

#[test]
fn multiple_statements_are_refused_unless_approved() {
    for d in ALL {
        let c = codes("SELECT 1; SELECT 2", d);
        assert_eq!(c, vec!["sql.multiple_statements"], "{d:?}");
        let dec = check_sql("SELECT 1; SELECT 2", &SqlGuardConfig::new(d), true);
        assert!(dec.allowed());
        assert_eq!(dec.waived.len(), 1);
    }
    // Classic injection tail.
    assert!(codes(
        "SELECT * FROM t WHERE id = 1; DROP TABLE t",
        SqlDialect::Postgres
    )
    .contains(&"sql.multiple_statements".to_owned()));
}

#[test]
fn ddl_is_refused_in_every_dialect() {
    for d in ALL {
        for sql in [
            "CREATE TABLE x (a INT)",
            "DROP TABLE x",
            "ALTER TABLE x ADD COLUMN b INT",
            "TRUNCATE TABLE x",
            "GRANT SELECT ON x TO bob",
        ] {
            assert_eq!(codes(sql, d), vec!["sql.ddl"], "{d:?} {sql}");
        }
    }
    assert_eq!(
        codes("REVOKE SELECT ON x FROM bob", SqlDialect::Postgres),
        vec!["sql.ddl"]
    );
    assert_eq!(
        codes(
            "CREATE OR REPLACE VIEW v AS SELECT 1",
            SqlDialect::Snowflake
        ),
        vec!["sql.ddl"]
    );
    assert_eq!(
        codes("SELECT * INTO new_t FROM t", SqlDialect::Postgres),
        vec!["sql.ddl"]
    );
}

#[test]
fn ddl_allowlist_and_approval_waive() {
    let mut cfg = SqlGuardConfig::new(SqlDialect::Postgres);
    cfg.allow.insert(StatementKind::Ddl);
    let dec = check_sql("DROP TABLE x", &cfg, false);
    assert!(dec.allowed());
    assert_eq!(dec.waived[0].code, "sql.ddl");
    let dec = check_sql(
        "DROP TABLE x",
        &SqlGuardConfig::new(SqlDialect::Postgres),
        true,
    );
    assert!(dec.allowed());
    // Allowlisting deletes does not allow DDL.
    let mut cfg = SqlGuardConfig::new(SqlDialect::Postgres);
    cfg.allow.insert(StatementKind::Delete);
    assert!(!check_sql("DROP TABLE x", &cfg, false).allowed());
}

#[test]
fn update_and_delete_without_where_are_refused() {
    for d in ALL {
        assert_eq!(
            codes("UPDATE t SET a = 1", d),
            vec!["sql.update_without_where"],
            "{d:?}"
        );
        assert_eq!(
            codes("DELETE FROM t", d),
            vec!["sql.delete_without_where"],
            "{d:?}"
        );
    }
}

#[test]
fn non_restrictive_where_clauses_are_refused() {
    for d in ALL {
        for w in [
            "true",
            "1=1",
            "1 = 1",
            "(1 = 1)",
            "x = x",
            "t.id >= t.id",
            "id = 5 OR true",
            "id = 5 OR 1 = 1",
            "(1=1) AND (2=2)",
            "'a' <> 'b'",
            "name LIKE '%'",
            "NOT (1 = 0)",
            "x = x AND y = y",
            "EXISTS (SELECT 1)",
            "1=0",
        ] {
            assert_eq!(
                codes(&format!("DELETE FROM t WHERE {w}"), d),
                vec!["sql.where_not_restrictive"],
                "{d:?} {w}"
            );
            assert_eq!(
                codes(&format!("UPDATE t SET a = 1 WHERE {w}"), d),
                vec!["sql.where_not_restrictive"],
                "{d:?} {w}"
            );
        }
    }
    // MySQL accepts a bare number as a predicate.
    assert_eq!(
        codes("DELETE FROM t WHERE 1", SqlDialect::Mysql),
        vec!["sql.where_not_restrictive"]
    );
}

#[test]
fn restrictive_where_clauses_pass() {
    for w in [
        "id = 5",
        "id = 5 AND 1 = 1",
        "x = y",
        "name LIKE 'a%'",
        "id > 0",
        "id IN (1, 2, 3)",
        "(id = 1 OR id = 2)",
    ] {
        let sql = format!("DELETE FROM t WHERE {w}");
        assert!(codes(&sql, SqlDialect::Postgres).is_empty(), "{w}");
    }
}

#[test]
fn write_allowlist_waives_where_rules_for_that_kind_only() {
    let mut cfg = SqlGuardConfig::new(SqlDialect::Postgres);
    cfg.allow.insert(StatementKind::Delete);
    assert!(check_sql("DELETE FROM t", &cfg, false).allowed());
    assert!(!check_sql("UPDATE t SET a = 1", &cfg, false).allowed());
    assert!(check_sql("UPDATE t SET a = 1 WHERE true", &cfg, true).allowed());
}

#[test]
fn nested_data_modifying_statements_are_checked() {
    let c = codes(
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        SqlDialect::Postgres,
    );
    assert_eq!(c, vec!["sql.delete_without_where"]);
    let c = codes("EXPLAIN ANALYZE DELETE FROM t", SqlDialect::Postgres);
    assert!(c.contains(&"sql.delete_without_where".to_owned()), "{c:?}");
    assert!(c.contains(&"sql.statement_not_allowed".to_owned()), "{c:?}");
}

#[test]
fn other_statements_fail_closed_unless_allowlisted() {
    assert_eq!(
        codes("SET search_path = evil", SqlDialect::Postgres),
        vec!["sql.statement_not_allowed"]
    );
    let mut cfg = SqlGuardConfig::new(SqlDialect::Postgres);
    cfg.allow.insert(StatementKind::Other);
    assert!(check_sql("SET search_path = evil", &cfg, false).allowed());
}

fn limited(d: SqlDialect, max: u64) -> SqlGuardConfig {
    let mut cfg = SqlGuardConfig::new(d);
    cfg.max_rows = Some(max);
    cfg
}

#[test]
fn row_limit_rules() {
    for d in ALL {
        let cfg = limited(d, 100);
        assert_eq!(
            check_sql("SELECT * FROM t", &cfg, false).codes(),
            vec!["sql.missing_limit"],
            "{d:?}"
        );
        let dec = check_sql("SELECT * FROM t", &cfg, false);
        assert!(dec.findings[0].message.contains("LIMIT 100"));
        assert!(
            check_sql("SELECT * FROM t LIMIT 100", &cfg, false).allowed(),
            "{d:?}"
        );
        assert_eq!(
            check_sql("SELECT * FROM t LIMIT 101", &cfg, false).codes(),
            vec!["sql.limit_too_high"],
            "{d:?}"
        );
        // Approval waives the row limit.
        assert!(check_sql("SELECT * FROM t", &cfg, true).allowed());
    }
    // Postgres FETCH FIRST and a non-literal limit.
    let cfg = limited(SqlDialect::Postgres, 10);
    assert!(check_sql("SELECT * FROM t FETCH FIRST 5 ROWS ONLY", &cfg, false).allowed());
    assert_eq!(
        check_sql("SELECT * FROM t LIMIT $1", &cfg, false).codes(),
        vec!["sql.limit_too_high"]
    );
    // MySQL `LIMIT offset, count`.
    let cfg = limited(SqlDialect::Mysql, 10);
    assert!(check_sql("SELECT * FROM t LIMIT 500, 10", &cfg, false).allowed());
    assert_eq!(
        check_sql("SELECT * FROM t LIMIT 5, 500", &cfg, false).codes(),
        vec!["sql.limit_too_high"]
    );
    // Without max_rows, no limit is needed.
    assert!(check_sql(
        "SELECT * FROM t",
        &SqlGuardConfig::new(SqlDialect::Postgres),
        false
    )
    .allowed());
}

#[test]
fn dialect_specific_syntax() {
    // Backtick identifiers: MySQL and BigQuery parse them, Postgres does not.
    assert!(codes("DELETE FROM `proj.ds.t` WHERE id = 1", SqlDialect::Bigquery).is_empty());
    assert!(codes("DELETE FROM `t` WHERE id = 1", SqlDialect::Mysql).is_empty());
    assert_eq!(
        codes("DELETE FROM `t` WHERE id = 1", SqlDialect::Postgres),
        vec!["sql.unparsable"]
    );
    // BigQuery requires WHERE on DELETE; `WHERE true` is its idiom for "everything".
    assert_eq!(
        codes("DELETE FROM `proj.ds.t` WHERE true", SqlDialect::Bigquery),
        vec!["sql.where_not_restrictive"]
    );
    // Snowflake / Databricks DDL spellings.
    assert_eq!(
        codes("CREATE OR REPLACE TABLE t CLONE s", SqlDialect::Snowflake),
        vec!["sql.ddl"]
    );
    // sqlparser 0.64 does not know Snowflake's UNDROP: refused all the same (fail closed).
    assert_eq!(
        codes("UNDROP TABLE t", SqlDialect::Snowflake),
        vec!["sql.unparsable"]
    );
    assert_eq!(
        codes("DROP TABLE IF EXISTS cat.sch.t", SqlDialect::Databricks),
        vec!["sql.ddl"]
    );
    // Databricks' OPTIMIZE parses there (an `other` statement) and nowhere else.
    assert_eq!(
        codes("OPTIMIZE t", SqlDialect::Databricks),
        vec!["sql.statement_not_allowed"]
    );
    assert_eq!(
        codes("OPTIMIZE t", SqlDialect::Postgres),
        vec!["sql.unparsable"]
    );
    // Postgres data-modifying CTE with a restrictive WHERE passes.
    assert!(codes(
        "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d",
        SqlDialect::Postgres
    )
    .is_empty());
}

#[test]
fn too_long_sql_is_refused() {
    let mut cfg = SqlGuardConfig::new(SqlDialect::Generic);
    cfg.max_sql_bytes = 10;
    assert_eq!(
        check_sql("SELECT 1234567890", &cfg, true).codes(),
        vec!["sql.too_long"]
    );
}

#[test]
fn payload_pointers_report_where_the_sql_was() {
    let mut cfg = SqlGuardConfig::new(SqlDialect::Postgres);
    cfg.pointers = vec![
        "/args/sql".into(),
        "/args/batch".into(),
        "/args/missing".into(),
        "/args/n".into(),
        "/a~1b".into(),
    ];
    cfg.validate().unwrap();
    let payload = json!({
        "args": {
            "sql": "DELETE FROM t",
            "batch": ["SELECT 1", "DROP TABLE t", null, 5],
            "n": 42
        },
        "a/b": "TRUNCATE t"
    });
    let dec = check_payload(&payload, &cfg, false);
    let got: Vec<(String, Option<String>)> = dec
        .findings
        .iter()
        .map(|f| (f.code.clone(), f.pointer.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("sql.delete_without_where".into(), Some("/args/sql".into())),
            ("sql.ddl".into(), Some("/args/batch/1".into())),
            ("sql.not_text".into(), Some("/args/batch/3".into())),
            ("sql.not_text".into(), Some("/args/n".into())),
            ("sql.ddl".into(), Some("/a~1b".into())),
        ]
    );
    // A payload without the pointers is not applicable.
    assert!(check_payload(&json!({"other": 1}), &cfg, false).allowed());
}

#[test]
fn config_validation_and_serde() {
    let mut cfg = SqlGuardConfig::new(SqlDialect::Postgres);
    cfg.pointers = vec!["args/sql".into(), "/ok".into(), "/bad~2".into()];
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.contains("`args/sql`") && err.contains("`/bad~2`") && !err.contains("`/ok`"),
        "{err}"
    );
    let cfg: SqlGuardConfig = serde_json::from_value(json!({
        "dialect": "bigquery", "pointers": ["/q"], "allow": ["delete"], "max_rows": 1000
    }))
    .unwrap();
    assert_eq!(cfg.dialect, SqlDialect::Bigquery);
    assert!(cfg.allow.contains(&StatementKind::Delete));
    assert!(
        serde_json::from_value::<SqlGuardConfig>(json!({"dialect": "postgres", "nope": 1}))
            .is_err()
    );
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,200}", d in 0usize..6) {
        let _ = check_sql(&s, &SqlGuardConfig::new(ALL[d]), false);
    }

    #[test]
    fn sql_like_strings_never_panic(
        s in "(SELECT|DELETE|UPDATE|WITH|FROM|WHERE|SET|LIMIT|OR|AND|NOT|\\(|\\)|=|1|x|t|;|'|,| ){0,40}",
        d in 0usize..6,
    ) {
        let mut cfg = SqlGuardConfig::new(ALL[d]);
        cfg.max_rows = Some(10);
        let _ = check_sql(&s, &cfg, false);
    }
}

#[test]
fn deep_predicate_chains_are_refused_without_exhausting_the_stack() {
    let chain = |n: usize| format!("DELETE FROM t WHERE {}id = 1", "id = 1 OR ".repeat(n));
    // Within the analysis depth: restrictive.
    assert!(codes(&chain(200), SqlDialect::Postgres).is_empty());
    // Deeper than the analysis walks: fail closed.
    assert_eq!(
        codes(&chain(300), SqlDialect::Postgres),
        vec!["sql.where_not_restrictive"]
    );
    // An AND with one restrictive side is restrictive however deep the other side is.
    let and_chain = format!("DELETE FROM t WHERE {}id = 1", "1 = 1 AND ".repeat(300));
    assert!(codes(&and_chain, SqlDialect::Postgres).is_empty());
    // More tokens than allowed: refused before parsing, even when approved.
    let huge = format!("DELETE FROM t WHERE {}a = 1", "a OR ".repeat(50_000));
    let dec = check_sql(&huge, &SqlGuardConfig::new(SqlDialect::Postgres), true);
    assert_eq!(dec.codes(), vec!["sql.too_complex"]);
    let mut cfg = SqlGuardConfig::new(SqlDialect::Generic);
    cfg.max_sql_tokens = 3;
    assert_eq!(
        check_sql("SELECT a, b", &cfg, false).codes(),
        vec!["sql.too_complex"]
    );
    assert!(check_sql("SELECT a", &cfg, false).allowed());
}

#[test]
fn merge_with_unrestricted_on_is_refused_when_it_changes_matched_rows() {
    for d in [
        SqlDialect::Postgres,
        SqlDialect::Snowflake,
        SqlDialect::Databricks,
        SqlDialect::Bigquery,
    ] {
        assert!(
            codes(
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
                d
            )
            .is_empty(),
            "{d:?}"
        );
        assert_eq!(
            codes(
                "MERGE INTO t USING s ON 1 = 1 WHEN MATCHED THEN UPDATE SET a = s.a",
                d
            ),
            vec!["sql.where_not_restrictive"],
            "{d:?}"
        );
        // `ON false` + insert-only is the "insert everything" idiom: allowed.
        assert!(
            codes(
                "MERGE INTO t USING s ON 1 = 0 WHEN NOT MATCHED THEN INSERT (a) VALUES (s.a)",
                d
            )
            .is_empty(),
            "{d:?}"
        );
    }
    let mut cfg = SqlGuardConfig::new(SqlDialect::Postgres);
    cfg.allow.insert(StatementKind::Merge);
    assert!(check_sql(
        "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
        &cfg,
        false
    )
    .allowed());
}

#[test]
fn snowflake_top_counts_as_a_limit() {
    let cfg = limited(SqlDialect::Snowflake, 10);
    assert!(check_sql("SELECT TOP 10 * FROM t", &cfg, false).allowed());
    assert_eq!(
        check_sql("SELECT TOP 11 * FROM t", &cfg, false).codes(),
        vec!["sql.limit_too_high"]
    );
}

#[test]
fn comments_do_not_hide_a_missing_where() {
    assert_eq!(
        codes("DELETE FROM t -- WHERE id = 1", SqlDialect::Postgres),
        vec!["sql.delete_without_where"]
    );
    assert_eq!(
        codes("DELETE FROM t /* WHERE id = 1 */", SqlDialect::Mysql),
        vec!["sql.delete_without_where"]
    );
}

#[test]
fn empty_sql_runs_nothing_and_is_allowed() {
    for d in ALL {
        for sql in ["", "   ", "-- nothing here\n"] {
            let dec = check_sql(sql, &SqlGuardConfig::new(d), false);
            assert!(dec.allowed(), "{d:?} {sql:?}: {:?}", dec.findings);
            assert!(dec.statement_kinds.is_empty());
        }
    }
}

#[test]
fn statement_kinds_are_reported_for_receipts() {
    let dec = check_sql(
        "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d",
        &SqlGuardConfig::new(SqlDialect::Postgres),
        false,
    );
    assert_eq!(
        dec.statement_kinds,
        vec![StatementKind::Select, StatementKind::Delete]
    );
}
