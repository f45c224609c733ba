//! The clyra_guard dbt package (`dbt/clyra_guard`) and `examples/dbt-integration`, run by the real
//! pinned dbt (`<repo>/.venv-dbt/bin/dbt`, installed by `make dbt-venv`) against the local
//! Postgres. The guard schema is database-wide, so every test gets a database of its own (and
//! roles of its own), dropped at the end; the projects are copied into a temporary directory so
//! that tests never share dbt's target, log or package directories.
//!
//! dbt takes 3 to 5 s per invocation, most of it start-up and parsing: each test runs few
//! invocations and checks many things per invocation (one `dbt run` exercises several models,
//! each with its own guarded statement in a post-hook).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clyra_evidence::Digest;
use clyra_warehouse::guard::{self, Grant, GuardPayload, InstallOptions, Mode, Operation, Rule};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn dbt_bin() -> PathBuf {
    let p = repo().join(".venv-dbt/bin/dbt");
    assert!(
        p.is_file(),
        "these tests run the pinned dbt at {}: install it with `make dbt-venv` (dbt-postgres \
         1.11.0, dbt-core 1.11.16, from tests/dbt/requirements.txt)",
        p.display()
    );
    p
}

/// A database of one test (and the roles it created), dropped when the test ends.
struct Db {
    name: String,
    roles: Vec<String>,
}

impl Db {
    fn new() -> Db {
        let name = support::unique("dbtpkg");
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
    fn role(&mut self) -> String {
        let role = support::unique("dbtpkg_role");
        self.client()
            .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
            .unwrap();
        self.roles.push(role.clone());
        role
    }

    fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
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

fn copy_dir(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_dir(&e.path(), &to.join(&name), skip);
        } else if t.is_file() {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// What one dbt invocation left: exit code, console output, its JSON log, the decisions the
/// clyra_guard macros logged, run_results.json.
struct Run {
    code: i32,
    output: String,
    log: Vec<Value>,
    decisions: Vec<Value>,
    run_results: Option<Value>,
}

impl Run {
    /// Every log message, one per line (JinjaLogInfo, errors, debug SQL).
    fn messages(&self) -> String {
        self.log
            .iter()
            .filter_map(|l| l.pointer("/info/msg").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn decision(&self, relation: &str) -> &Value {
        let found: Vec<&Value> = self
            .decisions
            .iter()
            .filter(|d| d["relation"] == relation)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one decision for {relation}: {:#?}",
            self.decisions
        );
        found[0]
    }

    fn result(&self, unique_id: &str) -> &Value {
        self.run_results.as_ref().expect("run_results.json")["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == unique_id)
            .unwrap_or_else(|| panic!("no result for {unique_id}"))
    }

    fn invocation_id(&self) -> String {
        self.run_results.as_ref().expect("run_results.json")["metadata"]["invocation_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A dbt project in a temporary directory, with the clyra_guard package copied in as dbt deps
/// would install it.
struct Project {
    dir: tempfile::TempDir,
    schema: String,
    runs: std::cell::Cell<u32>,
}

impl Project {
    fn new(schema: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &repo().join("dbt/clyra_guard"),
            &dir.path().join("dbt_packages/clyra_guard"),
            &[],
        );
        Project {
            dir,
            schema: schema.to_string(),
            runs: std::cell::Cell::new(0),
        }
    }

    /// examples/dbt-integration, as it is in the repository.
    fn example(schema: &str) -> Project {
        let p = Project::new(schema);
        copy_dir(
            &repo().join("examples/dbt-integration"),
            p.dir.path(),
            &[
                "target",
                "dbt_packages",
                "logs",
                "package-lock.yml",
                ".user.yml",
            ],
        );
        p
    }

    /// A project whose table models each run one guarded statement in a post-hook.
    fn guarded(schema: &str, models: &[(&str, u32, &str)]) -> Project {
        let p = Project::new(schema);
        let d = p.dir.path();
        std::fs::write(
            d.join("dbt_project.yml"),
            r#"name: clyra_guard_test
version: "1.0.0"
config-version: 2
profile: clyra_example
flags:
  send_anonymous_usage_stats: false
on-run-start: ["{{ clyra_guard.on_run_start() }}"]
on-run-end: ["{{ clyra_guard.on_run_end(results) }}"]
models:
  clyra_guard_test:
    +materialized: table
"#,
        )
        .unwrap();
        std::fs::copy(
            repo().join("examples/dbt-integration/profiles.yml"),
            d.join("profiles.yml"),
        )
        .unwrap();
        std::fs::create_dir_all(d.join("models")).unwrap();
        for (name, rows, hook) in models {
            std::fs::write(
                d.join(format!("models/{name}.sql")),
                format!(
                    "{{{{ config(post_hook=\"{{{{ {hook} }}}}\") }}}}\n\
                     select g as id, g as amount, 'a'::text as tag from generate_series(1, {rows}) g\n"
                ),
            )
            .unwrap();
        }
        p
    }

    /// Runs dbt in the project against `db` (as `user`, default the URL's), with its own
    /// target and log directories and a JSON log file.
    fn dbt(&self, db: &Db, user: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Run {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let d = self.dir.path();
        let target = d.join(format!("target-{n}"));
        let logs = d.join(format!("logs-{n}"));
        let cfg = db.config();
        let host = match cfg.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_string(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432).to_string();
        let mut cmd = Command::new(dbt_bin());
        cmd.current_dir(d)
            .args(args)
            .arg("--project-dir")
            .arg(d)
            .arg("--profiles-dir")
            .arg(d)
            .arg("--target-path")
            .arg(&target)
            .arg("--log-path")
            .arg(&logs)
            .args(["--log-format-file", "json"]);
        for k in [
            "CLYRA_GUARD_POLICY",
            "CLYRA_APPROVAL",
            "CLYRA_RUN_ID",
            "PGOPTIONS",
            "DBT_TARGET_PATH",
            "DBT_LOG_PATH",
            "DBT_LOG_FORMAT",
            "DBT_LOG_FORMAT_FILE",
            "DBT_PROFILES_DIR",
            "DBT_PROJECT_DIR",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
            .env("CLYRA_EXAMPLE_PGHOST", host)
            .env("CLYRA_EXAMPLE_PGPORT", port)
            .env(
                "CLYRA_EXAMPLE_PGUSER",
                user.unwrap_or(cfg.get_user().unwrap_or("postgres")),
            )
            .env("CLYRA_EXAMPLE_PGPASSWORD", "")
            .env("CLYRA_EXAMPLE_PGDATABASE", &db.name)
            .env("CLYRA_EXAMPLE_SCHEMA", &self.schema);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log: Vec<Value> = std::fs::read_to_string(logs.join("dbt.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let decisions = log
            .iter()
            .filter(|l| l.pointer("/info/name") == Some(&json!("JinjaLogInfo")))
            .filter_map(|l| l.pointer("/data/msg").and_then(Value::as_str))
            .filter_map(|m| m.strip_prefix("clyra_guard.decision "))
            .map(|m| serde_json::from_str(m).unwrap())
            .collect();
        let run_results = std::fs::read(target.join("run_results.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap());
        Run {
            code: out.status.code().unwrap_or(-1),
            output,
            log,
            decisions,
            run_results,
        }
    }
}

fn install(db: &Db, rules: Vec<Rule>) -> guard::InstallReport {
    guard::install(
        &mut db.client(),
        &InstallOptions {
            rules,
            ..Default::default()
        },
    )
    .unwrap()
}

fn rule(glob: &str, max_rows: u64) -> Rule {
    Rule {
        table_glob: glob.into(),
        max_rows: Some(max_rows),
        max_percent: None,
        mode: Mode::Enforce,
        checkpoint: Some("mass_dml".into()),
    }
}

/// A token as `clyra approvals approve` prints it (the database sees only its SHA-256).
fn token(seed: &str) -> String {
    format!(
        "clyra-rt1.{}.{}",
        Digest::sha256(seed.as_bytes()).to_hex(),
        &Digest::sha256(format!("sig {seed}").as_bytes()).to_hex()[..43]
    )
}

fn token_id(token: &str) -> String {
    format!("tok_{}", &Digest::sha256(token.as_bytes()).to_hex()[32..])
}

fn approval_id(token: &str) -> String {
    format!("apr_{}", &Digest::sha256(token.as_bytes()).to_hex()[..32])
}

/// Registers `token` as `clyra warehouse grant` does, after it redeemed the token.
fn grant(db: &Db, token: &str, tables: &[String], ops: &[Operation], max_rows: u64) {
    let g = Grant {
        token_sha256: *Digest::sha256(token.as_bytes()).as_bytes(),
        approval_id: approval_id(token),
        token_id: token_id(token),
        checkpoint: "mass_dml".into(),
        approvers: vec!["user:ann@acme.example".into()],
        expires_at: (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(900)).to_string(),
        payload: GuardPayload {
            tables: tables.to_vec(),
            operations: ops.to_vec(),
            max_rows,
        },
    };
    let rows = guard::register_grant(&mut db.client(), &g).unwrap();
    assert_eq!(rows.len(), tables.len());
}

/// One row of clyra_guard.dbt_invocations.
#[derive(Debug)]
struct Invocation {
    phase: String,
    clyra_run_id: Option<String>,
    dbt_version: String,
    target_name: String,
    results: Option<Value>,
}

fn invocations(db: &Db, invocation_id: &str) -> Vec<Invocation> {
    db.client()
        .query(
            "SELECT phase, clyra_run_id, dbt_version, target_name, results::text
               FROM clyra_guard.dbt_invocations WHERE invocation_id = $1
              ORDER BY recorded_at, phase DESC",
            &[&invocation_id],
        )
        .unwrap()
        .iter()
        .map(|r| Invocation {
            phase: r.get(0),
            clyra_run_id: r.get(1),
            dbt_version: r.get(2),
            target_name: r.get(3),
            results: r
                .get::<_, Option<String>>(4)
                .map(|s| serde_json::from_str(&s).unwrap()),
        })
        .collect()
}

/// What the end hook should have recorded: the count of each status over the nodes (hooks
/// excluded).
fn status_counts(run: &Run) -> Value {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut nodes = 0;
    for r in run.run_results.as_ref().unwrap()["results"]
        .as_array()
        .unwrap()
    {
        if r["unique_id"].as_str().unwrap().starts_with("operation.") {
            continue;
        }
        nodes += 1;
        *counts
            .entry(r["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    json!({"nodes": nodes, "status": counts})
}

#[test]
fn the_example_records_its_invocations_and_guards_the_backfill() {
    let db = Db::new();
    let schema = "dbt_example";
    let p = Project::example(schema);
    let schemas_exist = || {
        db.count(&format!(
            "SELECT count(*) FROM pg_namespace
              WHERE nspname IN ('clyra_guard', '{schema}', '{schema}_landing')"
        ))
    };

    // Hooks are rendered at parse time too: nothing may reach the database.
    let parse = p.dbt(&db, None, &["parse"], &[("CLYRA_RUN_ID", "run-parse")]);
    assert_eq!(parse.code, 0, "{}", parse.output);
    assert_eq!(schemas_exist(), 0, "dbt parse wrote to the database");

    // A full build: seeds, staging views, marts, tests, exposure; the hooks create the
    // clyra_guard schema (no install-guards yet) and record start and end.
    let build = p.dbt(&db, None, &["build"], &[("CLYRA_RUN_ID", "run-build")]);
    assert_eq!(build.code, 0, "{}", build.output);
    assert!(build.decisions.is_empty(), "{:?}", build.decisions);
    let id = build.invocation_id();
    let rows = invocations(&db, &id);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let start = &rows[0];
    assert_eq!(
        (
            start.phase.as_str(),
            start.clyra_run_id.as_deref(),
            start.dbt_version.as_str(),
            start.target_name.as_str()
        ),
        ("start", Some("run-build"), "1.11.16", "dev")
    );
    assert!(start.results.is_none());
    assert_eq!(rows[1].phase, "end");
    let end = rows[1].results.clone().unwrap();
    assert_eq!(end, status_counts(&build));
    assert_eq!(end["status"]["error"], Value::Null);
    assert!(end["nodes"].as_u64().unwrap() >= 30, "{end}");
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM {schema}.fct_orders")),
        1010
    );
    // The trusted source, as the lineage reads it from the manifest.
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(p.dir.path().join("target-2/manifest.json")).unwrap(),
    )
    .unwrap();
    let src = &manifest["sources"]["source.clyra_example.landing.fx_rates"];
    assert_eq!(src["meta"]["clyra"]["trusted"], true, "{src}");
    assert_eq!(src["source_meta"]["clyra"]["trusted"], true, "{src}");
    assert!(manifest["exposures"]["exposure.clyra_example.revenue_dashboard"].is_object());

    // install-guards over the schema the hooks created; the token is registered for the mart.
    install(&db, vec![rule("nothing.*", 100)]);
    let t = token("example");
    grant(
        &db,
        &t,
        &[format!("{schema}.fct_orders")],
        &[Operation::Update],
        1000,
    );

    // The backfill merges 960 of fct_orders' 1,010 rows: above the example's thresholds
    // (vars.clyra_guard: 500 rows, 50 %). Blocked without a token.
    let blocked = p.dbt(
        &db,
        None,
        &[
            "run",
            "-s",
            "fct_orders",
            "--vars",
            "{clyra_backfill: true}",
        ],
        &[("CLYRA_RUN_ID", "run-blocked")],
    );
    assert_eq!(blocked.code, 1, "{}", blocked.output);
    assert_eq!(blocked.decisions.len(), 1, "{:?}", blocked.decisions);
    assert_eq!(
        blocked.decisions[0],
        json!({"macro": "safe_merge", "model": "model.clyra_example.fct_orders",
               "relation": "dbt_example.fct_orders", "rows_matched": 960, "rows_total": 1010,
               "percent": 95.05, "max_rows": 500, "max_percent": 50, "decision": "blocked",
               "approval_status": "none"})
    );
    let msg = blocked.result("model.clyra_example.fct_orders")["message"]
        .as_str()
        .unwrap()
        .to_string();
    for want in [
        "clyra_guard blocked safe_merge on dbt_example.fct_orders",
        "update 960 of the table's 1010 rows (95.05%)",
        "more than max_rows_affected 500 and more than max_percent_affected 50%",
        "thresholds from var clyra_guard",
        "No approval token was supplied.",
        "clyra approvals request --checkpoint",
        "clyra warehouse grant --dsn",
        r#""tables": ["dbt_example.fct_orders"], "operations": ["update"], "max_rows": 960"#,
        "--vars '{clyra_approval: <resume token>}'",
    ] {
        assert!(msg.contains(want), "`{want}` missing from: {msg}");
    }
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM {schema}.fct_orders WHERE delivered_at IS NOT NULL"
        )),
        0
    );

    // The same run with the registered token passes, and says which token it used.
    let approved = p.dbt(
        &db,
        None,
        &[
            "run",
            "-s",
            "fct_orders",
            "--vars",
            &format!("{{clyra_backfill: true, clyra_approval: '{t}'}}"),
        ],
        &[("CLYRA_RUN_ID", "run-approved")],
    );
    assert_eq!(approved.code, 0, "{}", approved.output);
    assert_eq!(
        approved.decisions,
        [
            json!({"macro": "safe_merge", "model": "model.clyra_example.fct_orders",
                "relation": "dbt_example.fct_orders", "rows_matched": 960,
                "rows_total": 1010, "percent": 95.05, "max_rows": 500, "max_percent": 50,
                "decision": "approved", "token_id": token_id(&t),
                "token_sha256": Digest::sha256(t.as_bytes()).to_hex(),
                "approval_id": approval_id(&t)})
        ]
    );
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM {schema}.fct_orders
              WHERE delivered_at IS NOT NULL AND status = 'delivered'"
        )),
        960
    );
    let st = guard::status(&mut db.client(), 10).unwrap();
    assert!(st.open_grants.is_empty(), "the grant is used up");
    assert_eq!(st.recent_events.len(), 1);
    assert_eq!(
        (
            st.recent_events[0].rows,
            st.recent_events[0].decision.as_str()
        ),
        (960, "allowed")
    );
    // Every run (not the parse) left its two rows.
    assert_eq!(
        db.count("SELECT count(*) FROM clyra_guard.dbt_invocations"),
        6
    );
}

/// The models of the threshold tests: (name, rows, guarded statement).
const THRESHOLD_MODELS: [(&str, u32, &str); 7] = [
    (
        "upd_block",
        1010,
        "clyra_guard.safe_update(this, 'amount = amount + 1', 'id > 50')",
    ),
    (
        "upd_small",
        1010,
        "clyra_guard.safe_update(this, {'amount': 'amount + 1'}, 'id <= 10')",
    ),
    (
        "upd_pct",
        100,
        "clyra_guard.safe_update(this, 'amount = 0', 'id <= 60')",
    ),
    (
        "del_small",
        1010,
        "clyra_guard.safe_delete(this, 'id <= 5')",
    ),
    (
        "del_block",
        1010,
        "clyra_guard.safe_delete(this, 'id > 50')",
    ),
    (
        "merge_small",
        10,
        "clyra_guard.safe_merge(this, '(select g as id, g * 10 as amount from \
         generate_series(8, 12) g)', 't.id = s.id', {'amount': 's.amount'}, \
         insert=['id', 'amount'])",
    ),
    (
        "merge_block",
        1010,
        "clyra_guard.safe_merge(this, '(select g as id from generate_series(51, 1010) g)', \
         't.id = s.id', 'amount = -1')",
    ),
];

#[test]
fn safe_macros_count_before_they_write_and_refuse_above_the_threshold() {
    let db = Db::new();
    let s = "guarded";
    let p = Project::guarded(s, &THRESHOLD_MODELS);
    // The policy (env, as `clyra run` sets it) wins over the project var, which would block
    // even the 5-row delete. A token is supplied, but this database has no guard functions to
    // check it with (the hooks created the clyra_guard schema, install-guards never ran).
    let run = p.dbt(
        &db,
        None,
        &["run", "--vars", "{clyra_guard: {max_rows_affected: 1}}"],
        &[
            (
                "CLYRA_GUARD_POLICY",
                r#"{"max_rows_affected": 500, "max_percent_affected": 50}"#,
            ),
            ("CLYRA_APPROVAL", "clyra-rt1.e30.c2ln"),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.output);
    assert_eq!(run.decisions.len(), 7, "{:#?}", run.decisions);
    let expect =
        |model: &str, mac: &str, matched: u64, total: u64, percent: f64, decision: &str| {
            let mut d = json!({"macro": mac, "model": format!("model.clyra_guard_test.{model}"),
            "relation": format!("{s}.{model}"), "rows_matched": matched, "rows_total": total,
            "percent": percent, "max_rows": 500, "max_percent": 50, "decision": decision});
            if decision == "blocked" {
                d["approval_status"] = json!("not_installed");
            }
            assert_eq!(run.decision(&format!("{s}.{model}")), &d);
            let status = run.result(&format!("model.clyra_guard_test.{model}"))["status"].clone();
            assert_eq!(
                status,
                if decision == "blocked" {
                    "error"
                } else {
                    "success"
                },
                "{model}"
            );
        };
    expect("upd_block", "safe_update", 960, 1010, 95.05, "blocked");
    expect("upd_small", "safe_update", 10, 1010, 0.99, "allowed");
    expect("upd_pct", "safe_update", 60, 100, 60.0, "blocked");
    expect("del_small", "safe_delete", 5, 1010, 0.5, "allowed");
    expect("del_block", "safe_delete", 960, 1010, 95.05, "blocked");
    expect("merge_small", "safe_merge", 3, 10, 30.0, "allowed");
    expect("merge_block", "safe_merge", 960, 1010, 95.05, "blocked");

    // The refusals name the threshold that was crossed, the count and the percentage.
    let msg = |model: &str| {
        run.result(&format!("model.clyra_guard_test.{model}"))["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let pct = msg("upd_pct");
    assert!(
        pct.contains("update 60 of the table's 100 rows (60.0%), more than max_percent_affected 50% (thresholds from env CLYRA_GUARD_POLICY)"),
        "{pct}"
    );
    assert!(!pct.contains("max_rows_affected"), "{pct}");
    assert!(
        pct.contains("The approval token from env CLYRA_APPROVAL cannot be checked: the guard's functions (clyra_guard.approval_for) are not installed in this database; run `clyra warehouse install-guards`"),
        "{pct}"
    );
    assert!(msg("del_block").contains(
        "delete 960 of the table's 1010 rows (95.05%), more than max_rows_affected 500 and more than max_percent_affected 50%"
    ));

    // What ran, ran; what was refused changed nothing (the model's transaction failed, so
    // blocked tables are not even there).
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM {s}.upd_small WHERE amount = id + 1"
        )),
        10
    );
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM {s}.del_small")),
        1005
    );
    let merged: Vec<(i32, i32)> = db
        .client()
        .query(
            &format!("SELECT id, amount FROM {s}.merge_small ORDER BY id"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        merged,
        [
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 4),
            (5, 5),
            (6, 6),
            (7, 7),
            (8, 80),
            (9, 90),
            (10, 100),
            (11, 110),
            (12, 120)
        ]
    );
    for t in ["upd_block", "upd_pct", "del_block", "merge_block"] {
        assert_eq!(
            db.count(&format!("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{s}' AND c.relname = '{t}'")),
            0,
            "{t}"
        );
    }

    // From the command line: run-operation with commit (dbt rolls back what an operation left
    // open), a relation given as "schema.table", and the defaults (no policy, no var).
    let op = p.dbt(
        &db,
        None,
        &[
            "run-operation",
            "clyra_guard.safe_delete",
            "--args",
            &format!("{{relation: {s}.del_small, where: 'id <= 10', commit: true}}"),
        ],
        &[],
    );
    assert_eq!(op.code, 0, "{}", op.output);
    assert_eq!(
        op.decisions,
        [
            json!({"macro": "safe_delete", "model": "macro.clyra_guard.safe_delete",
                "relation": format!("{s}.del_small"), "rows_matched": 5, "rows_total": 1005,
                "percent": 0.5, "max_rows": 1000, "max_percent": 50, "decision": "allowed"})
        ]
    );
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM {s}.del_small")),
        1000
    );

    // A policy that is not JSON refuses everything (fails closed), naming the variable.
    let bad = p.dbt(
        &db,
        None,
        &[
            "run-operation",
            "clyra_guard.safe_delete",
            "--args",
            &format!("{{relation: {s}.del_small, where: 'id <= 20', commit: true}}"),
        ],
        &[("CLYRA_GUARD_POLICY", "max_rows_affected=5")],
    );
    assert_ne!(bad.code, 0, "{}", bad.output);
    assert!(bad.decisions.is_empty());
    assert!(
        bad.messages()
            .contains("env CLYRA_GUARD_POLICY is not a JSON object"),
        "{}",
        bad.output
    );
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM {s}.del_small")),
        1000
    );
}

/// The models of the approval tests; each guarded statement touches 960 of 1,010 rows except
/// where said.
const APPROVAL_MODELS: [(&str, u32, &str); 6] = [
    (
        "upd_ok",
        1010,
        "clyra_guard.safe_update(this, 'amount = amount + 1', 'id > 50')",
    ),
    (
        "merge_ok",
        1010,
        "clyra_guard.safe_merge(this, '(select g as id from generate_series(51, 1010) g)', \
         't.id = s.id', 'amount = -1')",
    ),
    (
        "upd_other",
        1010,
        "clyra_guard.safe_update(this, 'amount = amount + 1', 'id > 50')",
    ),
    (
        "trg_upd",
        1010,
        "clyra_guard.safe_update(this, 'amount = amount + 1', 'id > 50')",
    ),
    (
        "trg_merge",
        1010,
        "clyra_guard.safe_merge(this, '(select g as id from generate_series(51, 1010) g)', \
         't.id = s.id', 'amount = -1')",
    ),
    ("del_ok", 1010, "clyra_guard.safe_delete(this, 'id > 50')"),
];

#[test]
fn only_a_registered_unused_approval_for_the_table_lets_a_mass_write_through() {
    let db = Db::new();
    let s = "approvals";
    let p = Project::guarded(s, &APPROVAL_MODELS);
    // The statement trigger guards trg_* too (max 100 rows): an approved macro statement must
    // pass it, and the trigger uses the grant up itself.
    let mut c = db.client();
    c.batch_execute(&format!("CREATE SCHEMA {s}")).unwrap();
    for (m, _, _) in APPROVAL_MODELS {
        c.batch_execute(&format!("CREATE TABLE {s}.{m} (id int)"))
            .unwrap();
    }
    let report = install(&db, vec![rule(&format!("{s}.trg_*"), 100)]);
    assert!(report.event_triggers, "the tests connect as a superuser");
    let t = token("approvals-1");
    let t2 = token("approvals-2");
    let q = |m: &str| format!("{s}.{m}");
    grant(
        &db,
        &t,
        &[q("upd_ok"), q("merge_ok"), q("trg_upd"), q("trg_merge")],
        &[Operation::Update],
        1000,
    );
    grant(
        &db,
        &t2,
        &[q("upd_ok"), q("del_ok")],
        &[Operation::Update],
        1000,
    );

    // 1. The token from --vars.
    let run = p.dbt(
        &db,
        None,
        &[
            "run",
            "-s",
            "upd_ok",
            "merge_ok",
            "upd_other",
            "trg_upd",
            "trg_merge",
            "--vars",
            &format!(
                "{{clyra_guard: {{max_rows_affected: 500, max_percent_affected: 50}}, \
                 clyra_approval: '{t}'}}"
            ),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.output);
    let sha = Digest::sha256(t.as_bytes()).to_hex();
    for (m, mac) in [
        ("upd_ok", "safe_update"),
        ("merge_ok", "safe_merge"),
        ("trg_upd", "safe_update"),
        ("trg_merge", "safe_merge"),
    ] {
        assert_eq!(
            run.decision(&q(m)),
            &json!({"macro": mac, "model": format!("model.clyra_guard_test.{m}"),
                    "relation": q(m), "rows_matched": 960, "rows_total": 1010,
                    "percent": 95.05, "max_rows": 500, "max_percent": 50,
                    "decision": "approved", "token_id": token_id(&t), "token_sha256": sha,
                    "approval_id": approval_id(&t)}),
        );
        assert_eq!(
            run.result(&format!("model.clyra_guard_test.{m}"))["status"],
            "success",
            "{m}"
        );
        assert_eq!(
            db.count(&format!("SELECT count(*) FROM {s}.{m} WHERE amount <> id")),
            960,
            "{m}"
        );
    }
    // Registered, but for other tables: refused.
    let other = run.decision(&q("upd_other"));
    assert_eq!(other["decision"], "blocked");
    assert_eq!(other["approval_status"], "other_table");
    assert_eq!(other["token_id"], token_id(&t));
    let msg = run.result("model.clyra_guard_test.upd_other")["message"]
        .as_str()
        .unwrap();
    assert!(
        msg.contains(&format!(
            "The approval token from var clyra_approval (token_id {}, approval {}) is registered for other tables, not {}",
            token_id(&t),
            approval_id(&t),
            q("upd_other")
        )),
        "{msg}"
    );
    // Each grant was used once: by the macro, or on trg_* by the statement trigger (whose
    // audit rows name its own threshold of 100 rows).
    let events: Vec<(String, i64, String, String)> = c
        .query(
            "SELECT table_name, rows, threshold, approval_id FROM clyra_guard.events ORDER BY table_name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let macro_threshold = "more than max_rows_affected 500 and more than max_percent_affected 50%";
    assert_eq!(
        events,
        [
            (
                "merge_ok".into(),
                960,
                macro_threshold.into(),
                approval_id(&t)
            ),
            (
                "trg_merge".into(),
                960,
                "more than max_rows_affected 100".into(),
                approval_id(&t)
            ),
            (
                "trg_upd".into(),
                960,
                "more than max_rows_affected 100".into(),
                approval_id(&t)
            ),
            (
                "upd_ok".into(),
                960,
                macro_threshold.into(),
                approval_id(&t)
            ),
        ]
    );
    let used: Vec<String> = c
        .query(
            "SELECT status FROM clyra_guard.approval_for($1, $2::text::regclass, 'update', 960)",
            &[&t, &q("upd_ok")],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(used, ["used"]);

    // 2. A token nobody registered, from the environment: refused, named by its digest.
    let stranger = token("never-granted");
    let unknown = p.dbt(
        &db,
        None,
        &["run", "-s", "upd_ok"],
        &[("CLYRA_APPROVAL", stranger.as_str())],
    );
    assert_eq!(unknown.code, 1, "{}", unknown.output);
    let stranger_sha = Digest::sha256(stranger.as_bytes()).to_hex();
    assert_eq!(
        unknown.decision(&q("upd_ok")),
        &json!({"macro": "safe_update", "model": "model.clyra_guard_test.upd_ok",
                "relation": q("upd_ok"), "rows_matched": 960, "rows_total": 1010,
                "percent": 95.05, "max_rows": 1000, "max_percent": 50, "decision": "blocked",
                "token_id": format!("sha256:{}", &stranger_sha[..16]),
                "token_sha256": stranger_sha, "approval_status": "unknown"})
    );
    assert!(unknown.result("model.clyra_guard_test.upd_ok")["message"]
        .as_str()
        .unwrap()
        .contains("The approval token from env CLYRA_APPROVAL (token_id sha256:"));

    // 3. The session setting clyra.approval (here through libpq's PGOPTIONS): the token never
    // appears in dbt's SQL or log. Valid for the update; its grant does not allow delete.
    let session = p.dbt(
        &db,
        None,
        &["run", "-s", "upd_ok", "del_ok"],
        &[("PGOPTIONS", &format!("-c clyra.approval={t2}"))],
    );
    assert_eq!(session.code, 1, "{}", session.output);
    let d = session.decision(&q("upd_ok"));
    assert_eq!(d["decision"], "approved", "{d}");
    assert_eq!(d["token_id"], token_id(&t2));
    let del = session.decision(&q("del_ok"));
    assert_eq!(
        (del["decision"].as_str(), del["approval_status"].as_str()),
        (Some("blocked"), Some("operation"))
    );
    assert!(session.result("model.clyra_guard_test.del_ok")["message"]
        .as_str()
        .unwrap()
        .contains("in the session setting clyra.approval"));
    assert!(
        !session.messages().contains(&t2) && !session.output.contains(&t2),
        "the session's token leaked into dbt's log"
    );
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM {s}.upd_ok WHERE amount <> id"
        )),
        960
    );
}

#[test]
fn hooks_never_fail_a_run_and_install_guards_takes_over_what_they_created() {
    let mut db = Db::new();
    let s = "limited";
    let role = db.role();
    let mut c = db.client();
    c.batch_execute(&format!(
        "REVOKE CREATE ON DATABASE {d} FROM PUBLIC; CREATE SCHEMA {s} AUTHORIZATION {role}",
        d = db.name
    ))
    .unwrap();
    let p = Project::guarded(s, &THRESHOLD_MODELS);
    let owners = |c: &mut postgres::Client| -> (String, String) {
        let r = c
            .query_one(
                "SELECT pg_get_userbyid(n.nspowner)::text, pg_get_userbyid(c.relowner)::text
                   FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
                  WHERE n.nspname = 'clyra_guard' AND c.relname = 'dbt_invocations'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };

    // 1. The role may not create the clyra_guard schema: the hooks warn and succeed.
    let first = p.dbt(
        &db,
        Some(&role),
        &["run", "-s", "upd_small"],
        &[("CLYRA_RUN_ID", "run-1")],
    );
    assert_eq!(first.code, 0, "{}", first.output);
    for r in first.run_results.as_ref().unwrap()["results"]
        .as_array()
        .unwrap()
    {
        assert_eq!(r["status"], "success", "{r}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM pg_namespace WHERE nspname = 'clyra_guard'"),
        0
    );
    // No policy and no var: the package's defaults.
    assert_eq!(
        (
            first.decisions[0]["max_rows"].clone(),
            first.decisions[0]["max_percent"].clone()
        ),
        (json!(1000), json!(50))
    );

    // 2. Now it may: the hooks create schema and table (owned by the dbt role) and record.
    c.batch_execute(&format!("GRANT CREATE ON DATABASE {} TO {role}", db.name))
        .unwrap();
    let second = p.dbt(
        &db,
        Some(&role),
        &["run", "-s", "upd_small"],
        &[("CLYRA_RUN_ID", "run-2")],
    );
    assert_eq!(second.code, 0, "{}", second.output);
    assert_eq!(invocations(&db, &second.invocation_id()).len(), 2);
    assert_eq!(owners(&mut c), (role.clone(), role.clone()));

    // 3. install-guards (as a superuser) takes the schema and the table over, and lets every
    // role record: the dbt role, without CREATE again, still records its runs.
    install(&db, vec![rule("nothing.*", 100)]);
    let installer = db.config().get_user().unwrap_or("postgres").to_string();
    assert_eq!(owners(&mut c), (installer.clone(), installer));
    c.batch_execute(&format!(
        "REVOKE CREATE ON DATABASE {} FROM {role}",
        db.name
    ))
    .unwrap();
    let third = p.dbt(
        &db,
        Some(&role),
        &["run", "-s", "upd_small"],
        &[("CLYRA_RUN_ID", "run-3")],
    );
    assert_eq!(third.code, 0, "{}", third.output);
    let rows = invocations(&db, &third.invocation_id());
    assert_eq!(
        rows.iter()
            .map(|r| (r.phase.as_str(), r.clyra_run_id.as_deref()))
            .collect::<Vec<_>>(),
        [("start", Some("run-3")), ("end", Some("run-3"))]
    );
    assert_eq!(
        rows[1].results,
        Some(json!({"nodes": 1, "status": {"success": 1}}))
    );
    // ... but may neither change nor remove what was recorded, nor read the grants.
    let mut as_role = {
        let mut cfg = db.config();
        cfg.user(&role);
        cfg.connect(postgres::NoTls).unwrap()
    };
    for sql in [
        "UPDATE clyra_guard.dbt_invocations SET phase = 'end'",
        "DELETE FROM clyra_guard.dbt_invocations",
        "SELECT count(*) FROM clyra_guard.grants",
        "DROP TABLE clyra_guard.dbt_invocations",
    ] {
        let e = as_role.batch_execute(sql).unwrap_err();
        let code = e.as_db_error().map(|d| d.code().code().to_string());
        assert!(
            matches!(code.as_deref(), Some("42501")),
            "`{sql}` should be refused: {e}"
        );
    }
}
