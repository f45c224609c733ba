//! Warehouse guards on the local Postgres. The guard is database-wide (one `clyra_guard` schema,
//! event triggers), so every test gets a database of its own, dropped at the end, and roles of
//! its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use clyra_evidence::Digest;
use clyra_warehouse::guard::{
    self, sqlstate, Grant, GuardPayload, InstallOptions, Mode, Operation, Rule,
};

/// A database of one test (and the roles it created), dropped when the test ends.
struct Db {
    name: String,
    roles: Vec<String>,
}

impl Db {
    fn new() -> Db {
        let name = support::unique("guard");
        support::client()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Db {
            name,
            roles: Vec::new(),
        }
    }

    fn config(&self) -> postgres::Config {
        let mut c: postgres::Config = support::pg_url().parse().unwrap();
        c.dbname(&self.name);
        c
    }

    fn client(&self) -> postgres::Client {
        self.config().connect(postgres::NoTls).unwrap()
    }

    /// A login role with a unique name, dropped with the database.
    fn role(&mut self, extra: &str) -> String {
        let role = support::unique("guard_role");
        self.client()
            .batch_execute(&format!("CREATE ROLE {role} LOGIN {extra}"))
            .unwrap();
        self.roles.push(role.clone());
        role
    }

    fn client_as(&self, role: &str) -> postgres::Client {
        let mut c = self.config();
        c.user(role);
        c.connect(postgres::NoTls).unwrap()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&support::pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
            for r in &self.roles {
                let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {r}"));
            }
        }
    }
}

fn rule(glob: &str, max_rows: Option<u64>, max_percent: Option<f64>) -> Rule {
    Rule {
        table_glob: glob.into(),
        max_rows,
        max_percent,
        mode: Mode::Enforce,
        checkpoint: Some("mass_dml".into()),
    }
}

fn install(c: &mut postgres::Client, rules: Vec<Rule>) -> guard::InstallReport {
    guard::install(
        c,
        &InstallOptions {
            rules,
            ..Default::default()
        },
    )
    .unwrap()
}

/// public.orders with `n` rows.
fn orders(c: &mut postgres::Client, table: &str, n: i32) {
    c.batch_execute(&format!(
        "CREATE TABLE {table} (id int PRIMARY KEY, amount int NOT NULL);
         INSERT INTO {table} SELECT g, g FROM generate_series(1, {n}) g;"
    ))
    .unwrap();
}

/// Runs `sql` and returns the SQLSTATE and message it failed with.
fn fails(c: &mut postgres::Client, sql: &str) -> (String, String) {
    let e = c
        .batch_execute(sql)
        .expect_err(&format!("`{sql}` should have failed"));
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e}"));
    (db.code().code().to_string(), db.message().to_string())
}

fn sum(c: &mut postgres::Client, table: &str) -> i64 {
    c.query_one(&format!("SELECT sum(amount)::bigint FROM {table}"), &[])
        .unwrap()
        .get(0)
}

fn blocked(c: &mut postgres::Client) -> i64 {
    guard::status(c, 10).unwrap().blocked_statements
}

fn grant(c: &mut postgres::Client, token: &str, tables: &[&str], ops: &[Operation], max_rows: u64) {
    let g = Grant {
        token_sha256: *Digest::sha256(token.as_bytes()).as_bytes(),
        approval_id: format!("apr_{}", &Digest::sha256(token.as_bytes()).to_hex()[..32]),
        token_id: "tok_00000000000000000000000000000001".into(),
        checkpoint: "mass_dml".into(),
        approvers: vec!["user:ann@acme.example".into()],
        expires_at: (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(900)).to_string(),
        payload: GuardPayload {
            tables: tables.iter().map(|t| t.to_string()).collect(),
            operations: ops.to_vec(),
            max_rows,
        },
    };
    let rows = guard::register_grant(c, &g).unwrap();
    assert_eq!(rows.len(), tables.len());
    assert!(rows.iter().all(|r| r.guarded));
}

fn approval_id(token: &str) -> String {
    format!("apr_{}", &Digest::sha256(token.as_bytes()).to_hex()[..32])
}

const UPDATE_960: &str = "UPDATE orders SET amount = amount + 1 WHERE id <= 960";

#[test]
fn the_960_of_1010_update_is_blocked_and_passes_once_with_a_grant() {
    let db = Db::new();
    let mut c = db.client();
    orders(&mut c, "orders", 1010);
    let report = install(&mut c, vec![rule("public.*", Some(100), Some(50.0))]);
    assert_eq!(report.tables.len(), 1);
    assert_eq!(report.tables[0].result, "attached");
    assert!(report.event_triggers, "postgres is a superuser here");
    let before = sum(&mut c, "orders");

    let (code, msg) = fails(&mut c, UPDATE_960);
    assert_eq!(code, sqlstate::BLOCKED);
    assert!(
        msg.contains("UPDATE of 960 rows on public.orders")
            && msg.contains("more than max_rows_affected 100"),
        "{msg}"
    );
    assert_eq!(sum(&mut c, "orders"), before, "nothing was updated");
    assert_eq!(blocked(&mut c), 1);

    let token = "clyra-rt1.test-token-for-orders";
    grant(
        &mut c,
        token,
        &["public.orders"],
        &[Operation::Update],
        1000,
    );
    c.batch_execute(&format!(
        "SET application_name = 'dbt'; SET clyra.session = 'run-42';
         BEGIN; SET LOCAL clyra.approval = '{token}'; {UPDATE_960}; COMMIT;"
    ))
    .unwrap();
    assert_eq!(sum(&mut c, "orders"), before + 960);

    let st = guard::status(&mut c, 10).unwrap();
    assert_eq!(st.recent_events.len(), 1);
    let ev = &st.recent_events[0];
    assert_eq!(
        (
            ev.table.as_str(),
            ev.operation.as_str(),
            ev.rows,
            ev.decision.as_str()
        ),
        ("public.orders", "update", 960, "allowed")
    );
    assert_eq!(ev.approval_id.as_deref(), Some(approval_id(token).as_str()));
    assert_eq!(ev.application_name.as_deref(), Some("dbt"));
    assert_eq!(ev.clyra_session.as_deref(), Some("run-42"));
    assert_eq!(ev.db_user, "postgres");
    assert!(st.open_grants.is_empty(), "the grant is used up");

    // The same token a second time: refused, nothing changes.
    let (code, msg) = fails(
        &mut c,
        &format!("BEGIN; SET LOCAL clyra.approval = '{token}'; {UPDATE_960}; COMMIT;"),
    );
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(code, sqlstate::APPROVAL_USED, "{msg}");
    assert!(msg.contains("already used"), "{msg}");
    assert_eq!(sum(&mut c, "orders"), before + 960);
    // The grant row holds the digest, never the token.
    let stored: Vec<u8> = c
        .query_one("SELECT token_sha256 FROM clyra_guard.grants", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, Digest::sha256(token.as_bytes()).as_bytes());
    let leaked: i64 = c
        .query_one(
            "SELECT count(*) FROM clyra_guard.grants g WHERE g::text LIKE '%test-token%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0);
}

#[test]
fn approvals_that_do_not_fit_are_refused() {
    let db = Db::new();
    let mut c = db.client();
    orders(&mut c, "orders", 1010);
    orders(&mut c, "other", 1010);
    install(&mut c, vec![rule("public.*", Some(100), None)]);
    let before = sum(&mut c, "orders");
    let run = |c: &mut postgres::Client, approval: &str, stmt: &str| {
        let r = fails(
            c,
            &format!("BEGIN; SET LOCAL clyra.approval = '{approval}'; {stmt}; COMMIT;"),
        );
        c.batch_execute("ROLLBACK").unwrap();
        r
    };

    // Another table's approval.
    grant(
        &mut c,
        "tok-other",
        &["public.other"],
        &[Operation::Update],
        5000,
    );
    let mut again = Grant {
        token_sha256: *Digest::sha256(b"tok-other").as_bytes(),
        approval_id: "apr_again".into(),
        token_id: "tok_again".into(),
        checkpoint: "mass_dml".into(),
        approvers: vec![],
        expires_at: "2999-01-01T00:00:00Z".into(),
        payload: GuardPayload {
            tables: vec!["public.orders".into()],
            operations: vec![Operation::Update],
            max_rows: 5000,
        },
    };
    let e = guard::register_grant(&mut c, &again)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("already registered") && e.contains(sqlstate::APPROVAL_USED),
        "{e}"
    );
    again.token_sha256 = [0; 32];
    again.payload.tables = vec!["a.b.c.d".into()];
    let e = guard::register_grant(&mut c, &again)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.b.c.d") || e.contains("improper"), "{e}");
    let (code, msg) = run(&mut c, "tok-other", UPDATE_960);
    assert_eq!(code, sqlstate::APPROVAL_REFUSED);
    assert!(msg.contains("for other tables"), "{msg}");

    // Forged values: random, the digest in hex, the digest as bytea text, empty.
    let digest = Digest::sha256(b"tok-other").to_hex();
    for forged in [
        "clyra-rt1.eyJmb3JnZWQiOnRydWV9.c2ln".to_string(),
        digest.clone(),
        format!("\\x{digest}"),
    ] {
        let (code, msg) = run(&mut c, &forged, UPDATE_960);
        assert_eq!(code, sqlstate::APPROVAL_REFUSED, "{forged}: {msg}");
        assert!(msg.contains("no registered approval"), "{msg}");
    }
    let (code, _) = run(&mut c, "", UPDATE_960);
    assert_eq!(code, sqlstate::BLOCKED);

    // Another operation, more rows than approved.
    grant(
        &mut c,
        "tok-upd-500",
        &["public.orders"],
        &[Operation::Update],
        500,
    );
    let (code, msg) = run(&mut c, "tok-upd-500", "DELETE FROM orders WHERE id <= 960");
    assert_eq!(code, sqlstate::APPROVAL_REFUSED);
    assert!(msg.contains("allows update, not delete"), "{msg}");
    let (code, msg) = run(&mut c, "tok-upd-500", UPDATE_960);
    assert_eq!(code, sqlstate::APPROVAL_REFUSED);
    assert!(msg.contains("allows at most 500 rows"), "{msg}");

    // Expired.
    grant(
        &mut c,
        "tok-exp",
        &["public.orders"],
        &[Operation::Update],
        5000,
    );
    c.batch_execute(
        "UPDATE clyra_guard.grants SET expires_at = clock_timestamp() - interval '1 second'
         WHERE approval_id = (SELECT approval_id FROM clyra_guard.grants ORDER BY id DESC LIMIT 1)",
    )
    .unwrap();
    let (code, msg) = run(&mut c, "tok-exp", UPDATE_960);
    assert_eq!(code, sqlstate::APPROVAL_EXPIRED);
    assert!(msg.contains("expired at"), "{msg}");

    // register_grant itself refuses an expired approval and a missing table.
    let mut g = Grant {
        token_sha256: [7; 32],
        approval_id: "apr_x".into(),
        token_id: "tok_x".into(),
        checkpoint: "mass_dml".into(),
        approvers: vec![],
        expires_at: "2020-01-01T00:00:00Z".into(),
        payload: GuardPayload {
            tables: vec!["public.orders".into()],
            operations: vec![Operation::Update],
            max_rows: 1,
        },
    };
    let e = guard::register_grant(&mut c, &g).unwrap_err().to_string();
    assert!(
        e.contains("expired") && e.contains(sqlstate::APPROVAL_EXPIRED),
        "{e}"
    );
    g.expires_at = "2999-01-01T00:00:00Z".into();
    g.payload.tables = vec!["public.orders".into(), "public.nope".into()];
    let e = guard::register_grant(&mut c, &g).unwrap_err().to_string();
    assert!(
        e.contains("no such table") && e.contains("/warehouse_guard/tables/1"),
        "{e}"
    );

    assert_eq!(sum(&mut c, "orders"), before, "nothing got through");
    assert_eq!(blocked(&mut c), 8);
    assert!(guard::status(&mut c, 10).unwrap().recent_events.is_empty());
}

#[test]
fn an_ordinary_role_cannot_grant_itself_or_read_grants() {
    let mut db = Db::new();
    let user = db.role("");
    let granter = db.role("");
    let mut c = db.client();
    orders(&mut c, "orders", 1010);
    c.batch_execute(&format!(
        "GRANT SELECT, UPDATE, DELETE ON orders TO {user}, {granter}"
    ))
    .unwrap();
    guard::install(
        &mut c,
        &InstallOptions {
            rules: vec![rule("public.*", Some(100), None)],
            granters: vec![granter.clone()],
            ..Default::default()
        },
    )
    .unwrap();

    let mut u = db.client_as(&user);
    let digest = Digest::sha256(b"mine").to_hex();
    let future = "now() + interval '1 hour'";
    for sql in [
        format!(
            "INSERT INTO clyra_guard.grants (token_sha256, approval_id, token_id, checkpoint, \
             schema_name, table_name, operations, max_rows, expires_at, approvers, granted_by) \
             VALUES ('\\x{digest}', 'a', 't', 'c', 'public', 'orders', '{{update}}', 9999, \
             {future}, '{{}}', 'me')"
        ),
        "SELECT * FROM clyra_guard.grants".into(),
        "UPDATE clyra_guard.grants SET used_at = NULL".into(),
        "DELETE FROM clyra_guard.rules".into(),
        "SELECT * FROM clyra_guard.events".into(),
        format!(
            "SELECT clyra_guard.register_grant('\\x{digest}', 'a', 't', 'c', \
             ARRAY['public.orders'], ARRAY['update'], 9999, {future}, ARRAY[]::text[])"
        ),
        "SELECT clyra_guard.sync_all()".into(),
        "SELECT clyra_guard.sync_table('public.orders')".into(),
    ] {
        let (code, msg) = fails(&mut u, &sql);
        assert_eq!(code, "42501", "{sql}: {msg}");
    }
    // What it may do: small updates, version(), reattach(); the mass update stays blocked.
    u.batch_execute("UPDATE orders SET amount = 0 WHERE id <= 10")
        .unwrap();
    let v: String = u
        .query_one("SELECT clyra_guard.version()", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, guard::VERSION);
    assert_eq!(guard::reattach(&mut u, "orders").unwrap().result, "guarded");
    let (code, _) = fails(
        &mut u,
        &format!("BEGIN; SET LOCAL clyra.approval = 'mine'; {UPDATE_960}; COMMIT;"),
    );
    u.batch_execute("ROLLBACK").unwrap();
    assert_eq!(code, sqlstate::APPROVAL_REFUSED);

    // The granter role can register (and only through the function), and then it works.
    let mut g = db.client_as(&granter);
    grant(
        &mut g,
        "granted-token",
        &["public.orders"],
        &[Operation::Update],
        1000,
    );
    let (code, _) = fails(&mut g, "SELECT * FROM clyra_guard.grants");
    assert_eq!(code, "42501");
    u.batch_execute(&format!(
        "BEGIN; SET LOCAL clyra.approval = 'granted-token'; {UPDATE_960}; COMMIT;"
    ))
    .unwrap();
    let (by, used_by): (String, String) = c
        .query_one("SELECT granted_by, used_by FROM clyra_guard.grants", &[])
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!((by, used_by), (granter, user));
}

#[test]
fn small_statements_pass_untouched_and_deletes_truncates_and_percentages_are_guarded() {
    let db = Db::new();
    let mut c = db.client();
    orders(&mut c, "orders", 1010);
    orders(&mut c, "small", 10);
    install(
        &mut c,
        vec![
            rule("public.small", None, Some(50.0)),
            rule("public.*", Some(100), Some(50.0)),
        ],
    );
    // Under every threshold: no error, no event, no block counted.
    c.batch_execute(
        "UPDATE orders SET amount = 0 WHERE id <= 100;
         DELETE FROM orders WHERE id > 1000;
         UPDATE orders SET amount = 1 WHERE false;
         UPDATE small SET amount = 0 WHERE id <= 5;",
    )
    .unwrap();
    assert_eq!(blocked(&mut c), 0);
    assert!(guard::status(&mut c, 10).unwrap().recent_events.is_empty());

    // DELETE above the row threshold.
    let (code, msg) = fails(&mut c, "DELETE FROM orders WHERE id <= 101");
    assert_eq!(code, sqlstate::BLOCKED);
    assert!(msg.contains("DELETE of 101 rows on public.orders"), "{msg}");
    // The percentage: 6 of 10 rows (never analyzed: counted, not estimated).
    let (code, msg) = fails(&mut c, "UPDATE small SET amount = 1 WHERE id <= 6");
    assert_eq!(code, sqlstate::BLOCKED);
    assert!(
        msg.contains("60.0% of the table's 10 rows, more than max_percent_affected 50%")
            && msg.contains("rule `public.small`"),
        "{msg}"
    );
    let (code, msg) = fails(&mut c, "DELETE FROM small WHERE id > 4");
    assert_eq!(code, sqlstate::BLOCKED, "{msg}");
    c.batch_execute("DELETE FROM small WHERE id > 5").unwrap();
    // TRUNCATE.
    let (code, msg) = fails(&mut c, "TRUNCATE orders");
    assert_eq!(code, sqlstate::BLOCKED);
    assert!(msg.contains("TRUNCATE of at least 101 rows"), "{msg}");
    // MERGE fires the same triggers.
    let (code, _) = fails(
        &mut c,
        "MERGE INTO orders o USING (SELECT generate_series(1, 500) id) s ON o.id = s.id
         WHEN MATCHED THEN UPDATE SET amount = 7",
    );
    assert_eq!(code, sqlstate::BLOCKED);
    assert_eq!(blocked(&mut c), 5);
}

#[test]
fn shadow_rules_record_and_let_through() {
    let db = Db::new();
    let mut c = db.client();
    orders(&mut c, "orders", 1010);
    let mut r = rule("public.orders", Some(100), None);
    r.mode = Mode::Shadow;
    install(&mut c, vec![r]);
    c.batch_execute(UPDATE_960).unwrap();
    let st = guard::status(&mut c, 10).unwrap();
    assert_eq!(st.recent_events.len(), 1);
    assert_eq!(st.recent_events[0].decision, "shadow");
    assert_eq!(st.recent_events[0].rows, 960);
    assert_eq!(st.blocked_statements, 0);
}

fn dbt_table_materialization(c: &mut postgres::Client) {
    // What dbt-postgres does for a `table` model: build __dbt_tmp, swap names, drop the old one.
    c.batch_execute(
        "BEGIN;
         CREATE TABLE orders__dbt_tmp AS SELECT g AS id, g AS amount FROM generate_series(1, 1010) g;
         ALTER TABLE orders RENAME TO orders__dbt_backup;
         ALTER TABLE orders__dbt_tmp RENAME TO orders;
         COMMIT;
         DROP TABLE orders__dbt_backup CASCADE;",
    )
    .unwrap();
}

#[test]
fn guards_come_back_on_recreated_tables_by_event_trigger_and_by_reattach() {
    let db = Db::new();
    let mut c = db.client();
    orders(&mut c, "orders", 1010);
    install(&mut c, vec![rule("public.orders", Some(100), None)]);
    let oid = |c: &mut postgres::Client| -> u32 {
        c.query_one("SELECT 'orders'::regclass::oid", &[])
            .unwrap()
            .get(0)
    };
    let first = oid(&mut c);
    dbt_table_materialization(&mut c);
    assert_ne!(oid(&mut c), first, "a new table");
    let (code, _) = fails(&mut c, UPDATE_960);
    assert_eq!(
        code,
        sqlstate::BLOCKED,
        "the event trigger re-attached the guard"
    );
    let st = guard::status(&mut c, 10).unwrap();
    assert_eq!(st.guarded.len(), 1);
    assert_eq!(st.guarded[0].table, "orders");
    assert!(st.unguarded.is_empty());

    // Disabling a guard trigger is undone; dropping one is refused to non-owners.
    c.batch_execute("ALTER TABLE orders DISABLE TRIGGER clyra_guard_update")
        .unwrap();
    assert_eq!(fails(&mut c, UPDATE_960).0, sqlstate::BLOCKED);

    // Without the event triggers (a non-superuser install): the table is unguarded after the
    // swap until reattach() runs, as the dbt post-hook does.
    c.batch_execute(
        "DROP EVENT TRIGGER clyra_guard_reattach; DROP EVENT TRIGGER clyra_guard_keep;",
    )
    .unwrap();
    dbt_table_materialization(&mut c);
    let st = guard::status(&mut c, 10).unwrap();
    assert!(st.event_triggers.is_empty());
    assert_eq!(st.unguarded, ["orders"]);
    c.batch_execute(&format!("{UPDATE_960}; UPDATE orders SET amount = id"))
        .unwrap();
    let r: String = c
        .query_one("SELECT clyra_guard.reattach('public.orders')", &[])
        .unwrap()
        .get(0);
    assert_eq!(r, "attached");
    assert_eq!(fails(&mut c, UPDATE_960).0, sqlstate::BLOCKED);
    assert_eq!(guard::reattach(&mut c, "orders").unwrap().result, "guarded");
}

#[test]
fn table_owners_cannot_drop_the_guard_trigger() {
    let mut db = Db::new();
    let owner = db.role("");
    let mut c = db.client();
    c.batch_execute(&format!("GRANT CREATE ON SCHEMA public TO {owner}"))
        .unwrap();
    install(&mut c, vec![rule("public.*", Some(100), None)]);
    let mut o = db.client_as(&owner);
    // Created by an ordinary role: the event trigger guards it at once.
    orders(&mut o, "orders", 1010);
    assert_eq!(fails(&mut o, UPDATE_960).0, sqlstate::BLOCKED);
    let (code, msg) = fails(&mut o, "DROP TRIGGER clyra_guard_update ON orders");
    assert_eq!(code, sqlstate::TRIGGER_KEPT, "{msg}");
    o.batch_execute("ALTER TABLE orders DISABLE TRIGGER ALL")
        .unwrap();
    assert_eq!(fails(&mut o, UPDATE_960).0, sqlstate::BLOCKED);
    let st = guard::status(&mut c, 10).unwrap();
    assert_eq!(st.guarded.len(), 1);
    assert_eq!(st.guarded[0].disabled, 0);
}

#[test]
fn install_is_idempotent_and_follows_the_rules() {
    let db = Db::new();
    let mut c = db.client();
    c.batch_execute("CREATE SCHEMA sales").unwrap();
    orders(&mut c, "orders", 1010);
    orders(&mut c, "sales.orders", 10);
    let first = install(&mut c, vec![rule("public.*", Some(100), None)]);
    assert!(!first.upgraded);
    grant(
        &mut c,
        "keep-me",
        &["public.orders"],
        &[Operation::Update],
        1000,
    );
    let triggers = |c: &mut postgres::Client| -> Vec<(String, String)> {
        c.query(
            "SELECT tgrelid::regclass::text, tgname::text FROM pg_trigger
             WHERE tgname LIKE 'clyra\\_guard\\_%' ORDER BY 1, 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    let before = triggers(&mut c);
    assert_eq!(before.len(), 3);
    let again = install(&mut c, vec![rule("public.*", Some(100), None)]);
    assert!(again.upgraded);
    assert_eq!(again.tables[0].result, "guarded");
    assert_eq!(triggers(&mut c), before);
    let st = guard::status(&mut c, 10).unwrap();
    assert_eq!(st.open_grants.len(), 1, "grants survive a re-install");
    assert_eq!(st.rules.len(), 1);
    assert_eq!(st.version.as_deref(), Some(guard::VERSION));

    // New rules: sales.* guarded, public.* released.
    let third = install(&mut c, vec![rule("sales.*", Some(1), None)]);
    let results: Vec<(&str, &str)> = third
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.result.as_str()))
        .collect();
    assert_eq!(
        results,
        [("orders", "detached"), ("sales.orders", "attached")]
    );
    c.batch_execute(UPDATE_960).unwrap();
    assert_eq!(
        fails(&mut c, "UPDATE sales.orders SET amount = 0 WHERE id <= 2").0,
        sqlstate::BLOCKED
    );

    // Bad rules are refused before anything is written.
    let e = guard::install(
        &mut c,
        &InstallOptions {
            rules: vec![rule("public.*", None, None)],
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("neither max_rows_affected nor max_percent_affected"),
        "{e}"
    );
    assert_eq!(
        guard::status(&mut c, 1).unwrap().rules[0].table_glob,
        "sales.*"
    );
}

#[test]
fn uninstall_leaves_nothing_behind() {
    let db = Db::new();
    let mut c = db.client();
    orders(&mut c, "orders", 1010);
    install(&mut c, vec![rule("*", Some(100), None)]);
    grant(&mut c, "t1", &["public.orders"], &[Operation::Update], 1000);
    c.batch_execute(&format!(
        "BEGIN; SET LOCAL clyra.approval = 't1'; {UPDATE_960}; COMMIT;"
    ))
    .unwrap();
    let report = guard::uninstall(&mut c).unwrap();
    assert!(report.was_installed);
    assert_eq!((report.triggers, report.grants, report.events), (3, 1, 1));
    let left: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'clyra_guard')
                  + (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'clyra\\_guard%')
                  + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'clyra\\_guard%')
                  + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE n.nspname = 'clyra_guard')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    c.batch_execute(&format!("{UPDATE_960}; CREATE TABLE t2 (id int)"))
        .unwrap();
    assert!(guard::status(&mut c, 1).unwrap().version.is_none());
    assert!(!guard::uninstall(&mut c).unwrap().was_installed);
}

#[test]
fn a_non_superuser_install_says_the_event_triggers_are_missing() {
    let mut db = Db::new();
    let admin = db.role("");
    let mut c = db.client();
    c.batch_execute(&format!(
        "GRANT CREATE ON DATABASE {} TO {admin}; GRANT CREATE ON SCHEMA public TO {admin}",
        db.name
    ))
    .unwrap();
    let mut a = db.client_as(&admin);
    orders(&mut a, "orders", 1010);
    let report = install(&mut a, vec![rule("public.*", Some(100), None)]);
    assert!(!report.event_triggers);
    assert!(
        report
            .event_triggers_note
            .as_deref()
            .unwrap()
            .contains("clyra_guard.reattach"),
        "{report:?}"
    );
    assert_eq!(fails(&mut a, UPDATE_960).0, sqlstate::BLOCKED);
}
