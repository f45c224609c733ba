//! `clyra warehouse install-guards`, `guards status`, `grant` and `uninstall-guards` end to end:
//! a real approval from `clyra approvals` (SQLite journal), a real Postgres database per test
//! (the guard is database-wide), and the statements run by a Postgres client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn pg_url() -> String {
    std::env::var("CLYRA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A database and a granter role of one test, dropped at the end.
struct Db {
    name: String,
    granter: String,
}

impl Db {
    fn new() -> Db {
        let url = pg_url();
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
            panic!("these tests need Postgres at {url} (CLYRA_TEST_POSTGRES_URL; scripts/services.sh starts it): {e}")
        });
        let name = unique("gcli");
        let granter = unique("gcli_granter");
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        c.batch_execute(&format!("CREATE ROLE {granter} LOGIN"))
            .unwrap();
        let db = Db { name, granter };
        db.client()
            .batch_execute(
                "CREATE SCHEMA analytics;
                 CREATE TABLE analytics.orders (id int PRIMARY KEY, amount int NOT NULL);
                 INSERT INTO analytics.orders SELECT g, g FROM generate_series(1, 1010) g;
                 CREATE TABLE public.scratch (id int);",
            )
            .unwrap();
        db
    }

    fn dsn_as(&self, user: &str) -> String {
        let base = pg_url();
        let (_, rest) = base.split_once("://").unwrap();
        let (_, hostpath) = rest.split_once('@').unwrap();
        let (host, _) = hostpath.split_once('/').unwrap();
        format!("postgres://{user}@{host}/{}", self.name)
    }

    fn dsn(&self) -> String {
        let (head, _) = pg_url()
            .rsplit_once('/')
            .map(|(h, t)| (h.to_string(), t.to_string()))
            .unwrap();
        format!("{head}/{}", self.name)
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.dsn(), postgres::NoTls).unwrap()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.granter));
        }
    }
}

const POLICY: &str = r#"version: 4
metadata: {name: acme-prod, version: "1", owners: [platform@acme.example]}
data_platform:
  warehouse_guard:
    max_rows_affected: 100
    max_percent_affected: 50
    checkpoint: mass_dml
approvals:
  token_ttl: 15m
  checkpoints:
    - id: mass_dml
      approvers: ["user:*@acme.example"]
    - id: promote
      approvers: ["user:*@acme.example"]
"#;

const UPDATE_960: &str = "UPDATE analytics.orders SET amount = amount + 1 WHERE id <= 960";

struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new() -> Ws {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
        let ws = Ws { dir };
        ws.cmd(&["keys", "generate", "--name", "approvals", "--out", "keys"])
            .assert()
            .success();
        ws.cmd(&[
            "keys",
            "trust",
            "add",
            "--trust",
            "trust.json",
            "keys/approvals.pub",
        ])
        .assert()
        .success();
        ws
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = clyra();
        c.current_dir(self.dir.path()).args(args);
        c
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    /// Requests and approves `payload` at `checkpoint`; returns the token file's name.
    fn approved_token(&self, payload: &str, checkpoint: &str) -> String {
        let s = [
            "--store",
            "sqlite:journal",
            "--tenant",
            "acme",
            "--policy",
            "policy.yaml",
            "--key",
            "keys/approvals.key",
        ];
        let out = self
            .cmd(&["approvals", "request"])
            .args(s)
            .args([
                "--checkpoint",
                checkpoint,
                "--requester",
                "user:dev@acme.example",
            ])
            .args(["--payload", payload, "--format", "json"])
            .assert()
            .success();
        let id = json_of(&out.get_output().stdout)["approval_id"]
            .as_str()
            .unwrap()
            .to_string();
        let out = self
            .cmd(&["approvals", "approve", &id, "--as", "user:ann@acme.example"])
            .args(s)
            .args(["--format", "json"])
            .assert()
            .success();
        let token = json_of(&out.get_output().stdout)["token"]
            .as_str()
            .unwrap()
            .to_string();
        let file = format!("{id}.token");
        self.write(&file, &token);
        file
    }

    fn token(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(file)).unwrap()
    }

    fn grant(&self, db: &Db, token_file: &str, payload: &str, key: &[&str]) -> Command {
        let mut c = self.cmd(&["warehouse", "grant"]);
        c.args(["--dsn", &db.dsn_as(&db.granter)])
            .args(["--token-file", token_file, "--payload", payload])
            .args(["--policy", "policy.yaml", "--tenant", "acme"])
            .args(["--approvals-store", "sqlite:journal"])
            .args(key)
            .args(["--format", "json"]);
        c
    }
}

fn status(ws: &Ws, db: &Db) -> Value {
    let out = ws
        .cmd(&[
            "warehouse",
            "guards",
            "status",
            "--dsn",
            &db.dsn(),
            "--format",
            "json",
        ])
        .assert()
        .success();
    json_of(&out.get_output().stdout)
}

fn sqlstate_of(c: &mut postgres::Client, sql: &str) -> String {
    let e = c.batch_execute(sql).expect_err(sql);
    let _ = c.batch_execute("ROLLBACK");
    e.as_db_error().unwrap().code().code().to_string()
}

fn with_token(token: &str, stmt: &str) -> String {
    format!("BEGIN; SET LOCAL clyra.approval = '{token}'; {stmt}; COMMIT;")
}

const PAYLOAD: &str = r#"{"change": "CHG-1042", "warehouse_guard": {"tables": ["analytics.orders"], "operations": ["update"], "max_rows": 1000}}"#;

#[test]
fn install_block_grant_with_a_real_approval_then_uninstall() {
    let db = Db::new();
    let ws = Ws::new();
    ws.write(
        "policy-no-guard.yaml",
        "version: 4\nmetadata: {name: x, version: \"1\", owners: [a@b.c]}\n",
    );
    ws.cmd(&["warehouse", "install-guards", "--dsn", &db.dsn()])
        .args(["--policy", "policy-no-guard.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no data_platform.warehouse_guard"));

    let out = ws
        .cmd(&["warehouse", "install-guards", "--dsn", &db.dsn()])
        .args(["--policy", "policy.yaml", "--tables", "analytics.*"])
        .args(["--granter", &db.granter, "--format", "json"])
        .assert()
        .success();
    let doc = json_of(&out.get_output().stdout);
    assert_eq!(doc["report"]["tables"][0]["table"], "analytics.orders");
    assert_eq!(doc["report"]["tables"][0]["result"], "attached");
    assert_eq!(doc["report"]["rules"][0]["max_rows"], 100);
    assert_eq!(doc["report"]["event_triggers"], true);

    let mut c = db.client();
    assert_eq!(sqlstate_of(&mut c, UPDATE_960), "YG001");
    c.batch_execute("UPDATE public.scratch SET id = 1").unwrap();

    ws.write("change.json", PAYLOAD);
    let tok = ws.approved_token("change.json", "mass_dml");
    // Refused before anything is used up: another payload, a payload naming a missing table.
    ws.write("other.json", &PAYLOAD.replace("1000", "100000"));
    let out = ws
        .grant(
            &db,
            &tok,
            "other.json",
            &["--public-key", "keys/approvals.pub"],
        )
        .assert()
        .code(3);
    assert_eq!(
        json_of(&out.get_output().stdout)["code"],
        "A_PAYLOAD_MISMATCH"
    );
    ws.write(
        "missing.json",
        &PAYLOAD.replace("analytics.orders", "analytics.nope"),
    );
    ws.grant(
        &db,
        &tok,
        "missing.json",
        &["--public-key", "keys/approvals.pub"],
    )
    .assert()
    .code(1)
    .stdout(predicate::str::contains("no such table `analytics.nope`"));
    ws.write("bad.json", r#"{"change": "x"}"#);
    ws.grant(
        &db,
        &tok,
        "bad.json",
        &["--public-key", "keys/approvals.pub"],
    )
    .assert()
    .code(1)
    .stdout(predicate::str::contains("JSON pointer `/warehouse_guard`"));
    assert_eq!(status(&ws, &db)["open_grants"].as_array().unwrap().len(), 0);

    // The real grant, verified with the trust file.
    let out = ws
        .grant(&db, &tok, "change.json", &["--trust", "trust.json"])
        .assert()
        .success();
    let doc = json_of(&out.get_output().stdout);
    assert_eq!(doc["grants"][0]["table"], "analytics.orders");
    assert_eq!(doc["grants"][0]["guarded"], true);
    assert_eq!(doc["checkpoint"], "mass_dml");
    let approval_id = doc["approval_id"].as_str().unwrap().to_string();
    // The journal says used: a second grant is refused.
    let out = ws
        .grant(
            &db,
            &tok,
            "change.json",
            &["--public-key", "keys/approvals.pub"],
        )
        .assert()
        .code(3);
    assert_eq!(json_of(&out.get_output().stdout)["code"], "G_GRANT_REFUSED");
    ws.cmd(&[
        "approvals",
        "redeem",
        "--store",
        "sqlite:journal",
        "--tenant",
        "acme",
    ])
    .args([
        "--policy",
        "policy.yaml",
        "--public-key",
        "keys/approvals.pub",
    ])
    .args(["--token-file", &tok, "--payload", "change.json"])
    .assert()
    .code(3)
    .stderr(predicate::str::contains("A_TOKEN_REUSED"));

    // The statement passes once with the token, then not again.
    let token = ws.token(&tok);
    c.batch_execute(&format!(
        "SET application_name = 'backfill'; SET clyra.session = 'CHG-1042'; {}",
        with_token(&token, UPDATE_960)
    ))
    .unwrap();
    assert_eq!(
        sqlstate_of(&mut c, &with_token(&token, UPDATE_960)),
        "YG003"
    );
    let st = status(&ws, &db);
    assert_eq!(st["version"], "clyra_guard 1");
    assert_eq!(st["settings"]["policy"], "acme-prod");
    assert_eq!(st["blocked_statements"], 2);
    let ev = &st["recent_events"][0];
    assert_eq!(ev["decision"], "allowed");
    assert_eq!(ev["rows"], 960);
    assert_eq!(ev["approval_id"], approval_id.as_str());
    assert_eq!(ev["application_name"], "backfill");
    assert_eq!(ev["clyra_session"], "CHG-1042");
    ws.cmd(&["warehouse", "guards", "status", "--dsn", &db.dsn()])
        .assert()
        .success()
        .stdout(predicate::str::contains("guarded    1 table: analytics.orders"))
        .stdout(predicate::str::contains(format!(
            "allowed update 960 rows on analytics.orders (more than max_rows_affected 100)  approval {approval_id}"
        )));

    ws.cmd(&["warehouse", "uninstall-guards", "--dsn", &db.dsn()])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "3 guard triggers, 1 grants and 1 audit events removed",
        ));
    c.batch_execute(UPDATE_960).unwrap();
    ws.cmd(&["warehouse", "guards", "status", "--dsn", &db.dsn()])
        .assert()
        .success()
        .stdout(predicate::str::contains("no guard installed"));
}

#[test]
fn grant_refuses_tokens_of_another_checkpoint_and_forged_tokens() {
    let db = Db::new();
    let ws = Ws::new();
    ws.cmd(&["warehouse", "install-guards", "--dsn", &db.dsn()])
        .args(["--policy", "policy.yaml", "--granter", &db.granter])
        .assert()
        .success();
    ws.write("change.json", PAYLOAD);
    let tok = ws.approved_token("change.json", "promote");
    let out = ws
        .grant(
            &db,
            &tok,
            "change.json",
            &["--public-key", "keys/approvals.pub"],
        )
        .assert()
        .code(3);
    assert_eq!(
        json_of(&out.get_output().stdout)["code"],
        "A_CHECKPOINT_MISMATCH"
    );
    // A token signed by another key.
    ws.cmd(&["keys", "generate", "--name", "other", "--out", "keys"])
        .assert()
        .success();
    let out = ws
        .grant(
            &db,
            &tok,
            "change.json",
            &["--public-key", "keys/other.pub"],
        )
        .assert()
        .code(3);
    assert_eq!(
        json_of(&out.get_output().stdout)["code"],
        "A_TOKEN_SIGNATURE"
    );
    ws.grant(&db, &tok, "change.json", &[])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("--public-key"));
    assert_eq!(status(&ws, &db)["open_grants"].as_array().unwrap().len(), 0);
    // Without --tables every table is guarded.
    let mut c = db.client();
    c.batch_execute("INSERT INTO public.scratch SELECT generate_series(1, 200)")
        .unwrap();
    assert_eq!(sqlstate_of(&mut c, "DELETE FROM public.scratch"), "YG001");
}

#[test]
fn guard_commands_have_help_with_an_example() {
    for args in [
        &["warehouse", "install-guards", "--help"][..],
        &["warehouse", "uninstall-guards", "--help"][..],
        &["warehouse", "guards", "status", "--help"][..],
        &["warehouse", "grant", "--help"][..],
    ] {
        clyra()
            .args(args)
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
}
