//! The warehouse doctor against the local Postgres, in throwaway databases and roles created per
//! test and dropped afterwards. Where a finding's fix is SQL or a shell command, the test runs it
//! as written and checks that the finding then passes: fixes are meant to be pasted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use clyra_warehouse::doctor::{self, Finding, Options, Report, Status, POSTGRES_CHECKS};
use clyra_warehouse::{anchor, pg};

/// A database of one test (and optionally a login role), dropped at the end, pass or fail.
struct Scratch {
    db: String,
    roles: Vec<String>,
}

impl Scratch {
    fn new(prefix: &str) -> Self {
        let db = support::unique(prefix);
        support::client()
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
        Scratch { db, roles: vec![] }
    }

    /// A login role with no privileges beyond PUBLIC's.
    fn role(&mut self, prefix: &str) -> String {
        let r = support::unique(prefix);
        support::client()
            .batch_execute(&format!("CREATE ROLE {r} LOGIN"))
            .unwrap();
        self.roles.push(r.clone());
        r
    }

    /// A connection string to this database as `user`.
    fn dsn(&self, user: &str) -> String {
        let base = support::pg_url();
        let (head, _) = base.rsplit_once('/').unwrap();
        let (scheme, rest) = head.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        format!("{scheme}://{user}@{host}/{}", self.db)
    }

    /// A superuser session in this database.
    fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.dsn("postgres"), postgres::NoTls).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&support::pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
            for r in &self.roles {
                let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {r}"));
            }
        }
    }
}

fn find<'a>(r: &'a Report, id: &str) -> &'a Finding {
    r.findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no finding {id} in {r:#?}"))
}

fn ids(r: &Report) -> Vec<&str> {
    r.findings.iter().map(|f| f.id.as_str()).collect()
}

fn run(dsn: &str) -> Report {
    doctor::check(dsn, &Options::default())
}

/// Every warn and fail has a fix; no measured value leaks into a message.
fn well_formed(r: &Report) {
    for f in &r.findings {
        if matches!(f.status, Status::Warn | Status::Fail) {
            assert!(f.fix.is_some(), "no fix for {f:?}");
        }
    }
}

#[test]
fn healthy_database() {
    let s = Scratch::new("doc_ok");
    s.admin()
        .batch_execute("CREATE SCHEMA a; CREATE TABLE a.t (id int); ANALYZE a.t;")
        .unwrap();
    let r = run(&s.dsn("postgres"));
    well_formed(&r);
    assert_ne!(r.status, Status::Fail, "{r:#?}");
    let mut want = vec!["platform", "dsn", "connect"];
    want.extend_from_slice(POSTGRES_CHECKS);
    assert_eq!(ids(&r), want);
    for id in [
        "platform",
        "dsn",
        "connect",
        "server.recovery",
        "privileges.connect",
        "privileges.anchor",
        "privileges.snapshot",
        "privileges.pg_stats",
        "clock.skew",
        "settings.track_counts",
        "settings.statement_timeout",
        "settings.default_transaction_read_only",
        "settings.wal_level",
    ] {
        assert_eq!(find(&r, id).status, Status::Ok, "{:?}", find(&r, id));
    }
    let version: u32 = support::client()
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .map(|row| row.get::<_, i32>(0) as u32)
        .unwrap();
    assert_eq!(
        find(&r, "server.version").status,
        doctor::version_status(version).0
    );
    assert!(find(&r, "server.version")
        .message
        .contains(&version.to_string()));
    assert!(find(&r, "privileges.pg_stats")
        .message
        .contains("the 1 table in scope"));
    assert!(find(&r, "connect").measured.contains_key("connect_ms"));
    let skew = find(&r, "clock.skew");
    assert!(skew.measured["skew_ms"].abs() < 1000.0, "{skew:?}");
    // No guards in a fresh database.
    let g = find(&r, "guards.installed");
    assert_eq!(g.status, Status::Warn);
    assert!(g
        .fix
        .as_deref()
        .unwrap()
        .starts_with("clyra warehouse install-guards --dsn"));
}

#[test]
fn findings_are_stable_across_runs_apart_from_measurements() {
    let s = Scratch::new("doc_stable");
    let strip = |r: &Report| {
        let mut v = serde_json::to_value(r).unwrap();
        for f in v["findings"].as_array_mut().unwrap() {
            f.as_object_mut().unwrap().remove("measured");
        }
        v
    };
    let a = run(&s.dsn("postgres"));
    let b = run(&s.dsn("postgres"));
    assert_eq!(strip(&a), strip(&b));
    assert_ne!(
        serde_json::to_value(&a).unwrap(),
        serde_json::to_value(&b).unwrap(),
        "measured values should differ between runs (connect time, skew)"
    );
}

#[test]
fn low_privilege_role_gets_grants_that_work() {
    let mut s = Scratch::new("doc_priv");
    let role = s.role("doc_low");
    // Function ACLs live in each database's pg_proc: revoking here touches no other test.
    s.admin()
        .batch_execute(
            "REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC;
             REVOKE EXECUTE ON FUNCTION pg_control_checkpoint() FROM PUBLIC;
             CREATE SCHEMA sales; CREATE TABLE sales.orders (id int, amount int);
             INSERT INTO sales.orders SELECT g, g FROM generate_series(1, 50) g;
             ANALYZE sales.orders;",
        )
        .unwrap();
    let dsn = s.dsn(&role);
    // The role cannot take an anchor: the doctor must say so.
    let mut c = pg::connect(&dsn).unwrap();
    let e = anchor::take(&mut c).unwrap_err().to_string();
    assert!(e.contains("permission denied"), "{e}");

    let r = run(&dsn);
    well_formed(&r);
    assert_eq!(r.status, Status::Fail);
    let a = find(&r, "privileges.anchor");
    assert_eq!(a.status, Status::Fail, "{a:?}");
    let fix = a.fix.clone().unwrap();
    assert_eq!(
        fix,
        format!(
            "GRANT EXECUTE ON FUNCTION pg_control_system() TO \"{role}\";\n\
             GRANT EXECUTE ON FUNCTION pg_control_checkpoint() TO \"{role}\";"
        )
    );
    let st = find(&r, "privileges.pg_stats");
    assert_eq!(st.status, Status::Warn, "{st:?}");
    assert!(st.message.contains("1 of 1 tables"), "{st:?}");
    assert!(st.message.contains("sales.orders"), "{st:?}");
    let stats_fix = st.fix.clone().unwrap();
    assert!(stats_fix.contains(&format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA \"sales\" TO \"{role}\";"
    )));
    assert_eq!(find(&r, "privileges.snapshot").status, Status::Ok);
    assert_eq!(find(&r, "privileges.connect").status, Status::Ok);

    // Paste the fixes as the superuser; the role can now anchor and sees pg_stats.
    let mut admin = s.admin();
    admin.batch_execute(&fix).unwrap();
    admin.batch_execute(&stats_fix).unwrap();
    let r = run(&dsn);
    assert_eq!(find(&r, "privileges.anchor").status, Status::Ok);
    assert_eq!(find(&r, "privileges.pg_stats").status, Status::Ok);
    assert_ne!(r.status, Status::Fail, "{r:#?}");
    let mut c = pg::connect(&dsn).unwrap();
    anchor::take(&mut c).unwrap();
}

#[test]
fn settings_that_matter_warn_with_fixes_that_work() {
    let s = Scratch::new("doc_set");
    support::client()
        .batch_execute(&format!(
            "ALTER DATABASE {db} SET statement_timeout = '100ms';
             ALTER DATABASE {db} SET default_transaction_read_only = on;
             ALTER DATABASE {db} SET track_counts = off;",
            db = s.db
        ))
        .unwrap();
    let dsn = s.dsn("postgres");
    let r = run(&dsn);
    well_formed(&r);
    assert_ne!(r.status, Status::Fail, "{r:#?}");
    let mut fixes = Vec::new();
    for (id, needle, fix) in [
        (
            "settings.statement_timeout",
            "statement_timeout = 100 ms (from database)",
            format!(
                "ALTER ROLE \"postgres\" IN DATABASE \"{}\" SET statement_timeout = '5min';",
                s.db
            ),
        ),
        (
            "settings.default_transaction_read_only",
            "install-guards and replay",
            format!(
                "ALTER DATABASE \"{}\" RESET default_transaction_read_only;",
                s.db
            ),
        ),
        (
            "settings.track_counts",
            "track_counts = off (from database)",
            format!("ALTER DATABASE \"{}\" RESET track_counts;", s.db),
        ),
    ] {
        let f = find(&r, id);
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(f.message.contains(needle), "{f:?}");
        let got = f.fix.clone().unwrap();
        assert!(got.starts_with(&fix), "{got}");
        fixes.push(got);
    }
    // The fixes, pasted into a superuser session (a read-only default does not stop ALTER
    // DATABASE: it is not a write to a table).
    let mut admin = support::client();
    for f in &fixes {
        admin.batch_execute(f).unwrap();
    }
    let r = run(&dsn);
    for id in [
        "settings.statement_timeout",
        "settings.default_transaction_read_only",
        "settings.track_counts",
    ] {
        assert_eq!(find(&r, id).status, Status::Ok, "{:?}", find(&r, id));
    }
}

#[test]
fn guards_and_their_event_trigger() {
    let s = Scratch::new("doc_guard");
    let dsn = s.dsn("postgres");
    // A stand-in for what `clyra warehouse install-guards` creates: the doctor only relies on
    // `clyra_guard.version()` and event triggers named `clyra_guard*`.
    s.admin()
        .batch_execute(
            "CREATE SCHEMA clyra_guard;
             CREATE FUNCTION clyra_guard.version() RETURNS text LANGUAGE sql AS $$ SELECT '9.9.9-test' $$;",
        )
        .unwrap();
    let r = run(&dsn);
    well_formed(&r);
    let g = find(&r, "guards.installed");
    assert_eq!(g.status, Status::Ok);
    assert!(g.message.contains("9.9.9-test"), "{g:?}");
    let t = find(&r, "guards.event_trigger");
    assert_eq!(t.status, Status::Warn);
    assert!(t.message.contains("no clyra_guard event trigger"), "{t:?}");

    s.admin()
        .batch_execute(
            "CREATE FUNCTION clyra_guard.noop() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
             CREATE EVENT TRIGGER clyra_guard_reattach ON ddl_command_end EXECUTE FUNCTION clyra_guard.noop();",
        )
        .unwrap();
    assert_eq!(find(&run(&dsn), "guards.event_trigger").status, Status::Ok);
    s.admin()
        .batch_execute("ALTER EVENT TRIGGER clyra_guard_reattach DISABLE")
        .unwrap();
    let r = run(&dsn);
    let t = find(&r, "guards.event_trigger");
    assert_eq!(t.status, Status::Warn);
    let fix = t.fix.clone().unwrap();
    assert_eq!(fix, "ALTER EVENT TRIGGER \"clyra_guard_reattach\" ENABLE;");
    s.admin().batch_execute(&fix).unwrap();
    assert_eq!(find(&run(&dsn), "guards.event_trigger").status, Status::Ok);
}

#[test]
fn unreachable_port_is_a_connection_failure() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = run(&format!("postgres://postgres@127.0.0.1:{port}/test"));
    well_formed(&r);
    assert_eq!(r.status, Status::Fail);
    let c = find(&r, "connect");
    assert_eq!(c.status, Status::Fail);
    assert!(c.message.contains("connection refused"), "{c:?}");
    assert!(c
        .fix
        .as_deref()
        .unwrap()
        .starts_with(&format!("pg_isready -h 127.0.0.1 -p {port}")));
    // Everything after the connection is skipped, with the same ids as a healthy run.
    for id in POSTGRES_CHECKS {
        assert_eq!(find(&r, id).status, Status::Skip);
    }
}

#[test]
fn missing_database_gets_a_createdb_that_works() {
    let s = Scratch {
        db: support::unique("doc_nodb"),
        roles: vec![],
    };
    let dsn = s.dsn("postgres");
    let r = run(&dsn);
    let c = find(&r, "connect");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.message, format!("database `{}` does not exist", s.db));
    let fix = c.fix.clone().unwrap();
    assert!(fix.starts_with("createdb -h "), "{fix}");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&fix)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{fix}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(find(&run(&dsn), "connect").status, Status::Ok);
}

#[test]
fn missing_role_nologin_and_no_connect_privilege() {
    let mut s = Scratch::new("doc_auth");
    // A role that does not exist: createuser.
    let ghost = support::unique("doc_ghost");
    s.roles.push(ghost.clone());
    let r = run(&s.dsn(&ghost));
    let c = find(&r, "connect");
    assert_eq!(c.message, format!("role `{ghost}` does not exist"));
    let fix = c.fix.clone().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&fix)
        .output()
        .unwrap();
    assert!(out.status.success(), "{fix}");
    assert_eq!(find(&run(&s.dsn(&ghost)), "connect").status, Status::Ok);

    // NOLOGIN: ALTER ROLE ... LOGIN.
    let nologin = s.role("doc_nologin");
    support::client()
        .batch_execute(&format!("ALTER ROLE {nologin} NOLOGIN"))
        .unwrap();
    let r = run(&s.dsn(&nologin));
    let c = find(&r, "connect");
    assert_eq!(c.message, format!("role `{nologin}` may not log in"));
    support::client()
        .batch_execute(c.fix.as_deref().unwrap())
        .unwrap();
    assert_eq!(find(&run(&s.dsn(&nologin)), "connect").status, Status::Ok);

    // No CONNECT on the database: GRANT CONNECT.
    let plain = s.role("doc_plain");
    support::client()
        .batch_execute(&format!("REVOKE CONNECT ON DATABASE {} FROM PUBLIC", s.db))
        .unwrap();
    let r = run(&s.dsn(&plain));
    let c = find(&r, "connect");
    assert_eq!(c.status, Status::Fail);
    let fix = c.fix.clone().unwrap();
    assert_eq!(
        fix,
        format!("GRANT CONNECT ON DATABASE \"{}\" TO \"{plain}\";", s.db)
    );
    support::client().batch_execute(&fix).unwrap();
    let r = run(&s.dsn(&plain));
    assert_eq!(find(&r, "connect").status, Status::Ok);
    assert_eq!(find(&r, "privileges.connect").status, Status::Ok);
}

#[test]
fn mistyped_host_is_suggested_and_never_echoes_the_password() {
    let r = run("postgres://postgres:hunter2@localhsot:5432/test?connect_timeout=3");
    well_formed(&r);
    assert_eq!(r.status, Status::Fail);
    let d = find(&r, "dsn");
    assert_eq!(d.status, Status::Warn);
    assert!(
        d.message.contains(
            "did you mean `postgres://postgres:***@localhost:5432/test?connect_timeout=3`"
        ),
        "{d:?}"
    );
    let c = find(&r, "connect");
    assert_eq!(c.status, Status::Fail);
    assert!(c.message.contains("localhsot"), "{c:?}");
    assert!(!format!("{r:?}").contains("hunter2"));
}
