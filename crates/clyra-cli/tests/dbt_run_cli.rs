//! `clyra run -- dbt …` with the real pinned dbt (make dbt-venv) on examples/dbt-integration
//! against the local Postgres, one database per test: a build sealed as a verifiable bundle with
//! every node; SIGINT and SIGTERM in the middle of a model (bundle marked interrupted, the server
//! query cancelled); a compile error; the guarded 960-of-1,010 backfill blocked, then approved
//! through the real approvals flow, with the counts and the token id in the bundle; and
//! `clyra dbt record` giving the same evidence from the same files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::evidence::{add_keys, bundles_in, clyra, verify, Verified};
use support::fs::copy_dir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn venv_bin() -> PathBuf {
    let bin = repo().join(".venv-dbt/bin");
    assert!(
        bin.join("dbt").is_file(),
        "these tests run the pinned dbt at {}: install it with `make dbt-venv`",
        bin.join("dbt").display()
    );
    bin
}

fn pg_url() -> String {
    std::env::var("CLYRA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn admin() -> postgres::Client {
    let url = pg_url();
    postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
        panic!("these tests need Postgres at {url} (scripts/services.sh starts it): {e}")
    })
}

/// A copy of the example project with its own database, key and trust file.
struct Project {
    dir: tempfile::TempDir,
    db: String,
}

impl Project {
    fn new(tag: &str) -> Project {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let db = format!("dbtrun_{tag}_{}_{nanos}", std::process::id());
        admin()
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &repo().join("examples/dbt-integration"),
            dir.path(),
            &[
                "target",
                "dbt_packages",
                "logs",
                ".clyra",
                "package-lock.yml",
            ],
        );
        std::fs::write(
            dir.path().join("packages.yml"),
            format!(
                "packages:\n  - local: {}\n",
                repo().join("dbt/clyra_guard").display()
            ),
        )
        .unwrap();
        add_keys(dir.path());
        let p = Project { dir, db };
        let st = p.dbt(&["deps", "--quiet"]).status().unwrap();
        assert!(st.success(), "dbt deps failed");
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn dsn(&self) -> String {
        let base = pg_url();
        let (head, _) = base.rsplit_once('/').unwrap();
        format!("{head}/{}", self.db)
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.dsn(), postgres::NoTls).unwrap()
    }

    fn env(&self, cmd: &mut StdCommand) {
        let path = format!(
            "{}:{}",
            venv_bin().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.current_dir(self.path())
            .env("PATH", path)
            .env("DBT_PROFILES_DIR", self.path())
            .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
            .env("CLYRA_EXAMPLE_PGDATABASE", &self.db)
            .env_remove("CLYRA_APPROVAL")
            .env_remove("CLYRA_STORE")
            .env_remove("CLYRA_KEY")
            .env_remove("CLYRA_DSN");
    }

    fn dbt(&self, args: &[&str]) -> StdCommand {
        let mut c = StdCommand::new(venv_bin().join("dbt"));
        c.args(args);
        self.env(&mut c);
        c
    }

    /// `clyra --format json run --dsn DB [extra] -- dbt ARGS`.
    fn clyra_run(&self, extra: &[&str], dbt_args: &[&str]) -> StdCommand {
        let mut c = StdCommand::new(assert_cmd::cargo::cargo_bin("clyra"));
        c.args(["--format", "json", "run", "--dsn", &self.dsn()])
            .args(extra)
            .arg("--")
            .arg("dbt")
            .args(dbt_args);
        self.env(&mut c);
        c
    }

    fn trust(&self) -> PathBuf {
        self.path().join(".clyra/trust.json")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
        }
    }
}

fn output_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "clyra run printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn bundle_of(p: &Project, summary: &Value) -> Verified {
    let path = p.path().join(summary["bundle"]["bundle"].as_str().unwrap());
    verify(&path, &p.trust())
}

#[test]
fn a_build_is_sealed_with_every_node_and_recording_the_same_files_gives_the_same_evidence() {
    let p = Project::new("build");
    let out = p.clyra_run(&[], &["build"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = output_json(&out);
    assert_eq!(summary["status"], "success", "{summary:#}");
    let b = bundle_of(&p, &summary);

    // Every model and seed, every test, with its digests.
    let dbt = &b.predicate["dbt"];
    assert_eq!(dbt["version"], "1.11.16");
    assert_eq!(dbt["adapter"], "postgres");
    let models = dbt["models"].as_array().unwrap();
    let ids: Vec<&str> = models
        .iter()
        .map(|m| m["unique_id"].as_str().unwrap())
        .collect();
    for id in [
        "seed.clyra_example.raw_orders",
        "model.clyra_example.stg_orders",
        "model.clyra_example.fct_orders",
        "model.clyra_example.country_revenue",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let fct = models
        .iter()
        .find(|m| m["unique_id"] == "model.clyra_example.fct_orders")
        .unwrap();
    assert_eq!(fct["status"], "success");
    assert_eq!(fct["rows_affected"], 1010, "{fct:#}");
    assert_eq!(fct["compiled_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(fct["checksum"].as_str().unwrap().len(), 64);
    let tests = dbt["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 20, "{tests:#?}");
    assert!(tests.iter().all(|t| t["status"] == "pass"));

    // Anchors before and after, hooks reconciled, lineage, replay set with its snapshot.
    let kinds: Vec<&str> = b.predicate["anchors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "wal_lsn").count(),
        2,
        "{kinds:?}"
    );
    let fin = &b.bodies("dbt.run.finished")[0];
    assert_eq!(fin["hooks"]["start"], true, "{fin:#}");
    assert_eq!(fin["hooks"]["end"], true, "{fin:#}");
    assert_eq!(fin["exit_code"], 0);
    for a in [
        "dbt/run.json",
        "dbt/lineage.json",
        "dbt/run_results.json",
        "replay/replay.json",
        "replay/snapshot-after.json",
    ] {
        assert!(b.artifact(a).is_some(), "artifact {a} missing");
    }
    let snap: Value =
        serde_json::from_slice(b.artifact("replay/snapshot-after.json").unwrap()).unwrap();
    assert!(
        snap["scope"]["exact_counts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().ends_with(".fct_orders")),
        "{:#}",
        snap["scope"]
    );

    // The same artifacts recorded twice into fresh stores: the same evidence, byte for byte.
    let run_id = summary["run_id"].as_str().unwrap();
    let target = p.path().join(".clyra/runs").join(run_id).join("target");
    let mut statements = Vec::new();
    for i in 0..2 {
        let store = p.path().join(format!("rec{i}"));
        let out_dir = p.path().join(format!("out{i}"));
        let out = clyra()
            .current_dir(p.path())
            .env("SOURCE_DATE_EPOCH", "1764662400")
            .args(["--format", "json", "dbt", "record", "--target-path"])
            .arg(&target)
            .arg("--store")
            .arg(format!("sqlite:{}", store.display()))
            .arg("--out-dir")
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bs = bundles_in(&out_dir);
        let r = verify(&bs[0], &p.trust());
        statements.push((
            r.predicate.clone(),
            r.artifact("dbt/run.json").unwrap().to_vec(),
            r.artifact("dbt/lineage.json").unwrap().to_vec(),
        ));
        // Recording again into the same store appends nothing.
        let again = clyra()
            .current_dir(p.path())
            .args(["--format", "json", "dbt", "record", "--target-path"])
            .arg(&target)
            .arg("--store")
            .arg(format!("sqlite:{}", store.display()))
            .arg("--out-dir")
            .arg(p.path().join(format!("again{i}")))
            .output()
            .unwrap();
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(output_json(&again)["appended"], 0);
    }
    assert_eq!(
        String::from_utf8_lossy(&statements[0].1),
        String::from_utf8_lossy(&statements[1].1),
        "dbt/run.json differs"
    );
    assert_eq!(
        String::from_utf8_lossy(&statements[0].2),
        String::from_utf8_lossy(&statements[1].2),
        "dbt/lineage.json differs"
    );
    // Everything the artifacts determine is identical. `metrics.payload_bytes` is not compared: it
    // counts the journal file, whose entries carry the store's own `recorded_at` clock (written
    // with as many millisecond digits as it needs, so even its length varies between stores).
    let without_metrics = |p: &Value| {
        let mut p = p.clone();
        p.as_object_mut().unwrap().remove("metrics");
        p.to_string()
    };
    assert_eq!(
        without_metrics(&statements[0].0),
        without_metrics(&statements[1].0),
        "the predicates differ"
    );
    assert_eq!(
        statements[0].0["metrics"]["entries"],
        statements[1].0["metrics"]["entries"]
    );
    assert_eq!(
        statements[0].0["dbt"]["models"], b.predicate["dbt"]["models"],
        "the wrapper and `dbt record` record the same nodes"
    );
}

/// Runs the example with the slow model, waits until its pg_sleep runs on the server, sends
/// `sig` to clyra, and checks the sealed bundle and the server.
fn interrupted_mid_model(sig: &str, expected_exit: i32) {
    let p = Project::new(&sig.to_lowercase());
    let mut child = p
        .clyra_run(
            &["--grace", "20"],
            &[
                "build",
                "--vars",
                "{clyra_slow: true, clyra_slow_seconds: 120}",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = p.client();
    let t0 = Instant::now();
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if n > 0 {
            break;
        }
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "dbt ended ({st}) before the slow model ran: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the slow model never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = StdCommand::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(expected_exit),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = output_json(&out);
    assert_eq!(summary["interrupted"], true);
    let b = bundle_of(&p, &summary);
    assert_eq!(
        b.predicate["run"]["status"], "cancelled",
        "{:#}",
        b.predicate["run"]
    );
    let fin = &b.bodies("dbt.run.finished")[0];
    assert_eq!(fin["interrupted"], true);
    assert_eq!(fin["signal"], sig_name(sig));
    // What had finished is on record: the staging models and fct_orders ran before the sleep.
    let models = b.predicate["dbt"]["models"].as_array().unwrap();
    assert!(
        models
            .iter()
            .any(|m| m["unique_id"] == "model.clyra_example.fct_orders" && m["status"] == "success"),
        "{models:#?}"
    );
    assert!(
        !models
            .iter()
            .any(|m| m["unique_id"] == "model.clyra_example.country_revenue"
                && m["status"] == "success"),
        "the interrupted model did not succeed"
    );
    // The server-side query is gone.
    let t0 = Instant::now();
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if n == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the slow model's query still runs on the server after the run ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sig_name(sig: &str) -> String {
    format!("SIG{sig}")
}

#[test]
fn sigint_in_the_middle_of_a_model_still_seals_an_interrupted_run() {
    interrupted_mid_model("INT", 130);
}

#[test]
fn sigterm_in_the_middle_of_a_model_still_seals_an_interrupted_run() {
    interrupted_mid_model("TERM", 143);
}

#[test]
fn a_compile_error_is_sealed_as_an_error() {
    let p = Project::new("compile");
    std::fs::write(
        p.path().join("models/marts/broken.sql"),
        "select * from {{ ref('no_such_model') }}\n",
    )
    .unwrap();
    let out = p.clyra_run(&[], &["build"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "dbt's own exit code for an error"
    );
    let summary = output_json(&out);
    let b = bundle_of(&p, &summary);
    assert_eq!(b.predicate["run"]["status"], "error");
    let fin = &b.bodies("dbt.run.finished")[0];
    assert_eq!(fin["exit_code"], 2);
    assert_eq!(fin["interrupted"], false);
}

const POLICY: &str = "version: 4
metadata: {name: dbt-example, version: \"1\", owners: [data@example.com]}
data_platform:
  warehouse_guard: {max_rows_affected: 500, max_percent_affected: 50, checkpoint: mass_dml}
approvals:
  token_ttl: 15m
  checkpoints:
    - id: mass_dml
      approvers: [\"user:*@example.com\"]
";

#[test]
fn the_guarded_backfill_is_blocked_then_approved_and_both_are_in_the_bundles() {
    let p = Project::new("merge");
    let w = p.path().join("approvals");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::write(w.join("policy.yaml"), POLICY).unwrap();
    let dsn = p.dsn();
    // The first build creates the tables; then the backfill, blocked (the policy's thresholds
    // reach the macros through CLYRA_GUARD_POLICY).
    let out = p.clyra_run(&[], &["build"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = p
        .clyra_run(
            &["--policy", "approvals/policy.yaml"],
            &[
                "run",
                "-s",
                "fct_orders",
                "--vars",
                "{clyra_backfill: true}",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blocked = bundle_of(&p, &output_json(&out));
    let d = &blocked.bodies("dbt.guard.decision")[0];
    assert_eq!(d["decision"], "blocked", "{d:#}");
    assert_eq!(d["rows_matched"], 960);
    assert_eq!(d["rows_total"], 1010);
    assert_eq!(d["max_rows"], 500);
    assert_eq!(blocked.predicate["run"]["status"], "error");

    // The approvals flow, with the real CLI: request, approve, grant into the database.
    let s = |c: &mut assert_cmd::Command| {
        c.current_dir(p.path()).args([
            "--store",
            "sqlite:approvals/journal",
            "--tenant",
            "shop",
            "--policy",
            "approvals/policy.yaml",
            "--key",
            "approvals/keys/approvals.key",
        ]);
    };
    std::fs::write(
        w.join("change.json"),
        r#"{"change": "late delivery feed", "warehouse_guard": {"tables": ["dbt_example.fct_orders"], "operations": ["update"], "max_rows": 960}}"#,
    )
    .unwrap();
    clyra()
        .current_dir(p.path())
        .args([
            "keys",
            "generate",
            "--name",
            "approvals",
            "--out",
            "approvals/keys",
        ])
        .assert()
        .success();
    clyra()
        .current_dir(p.path())
        .args([
            "warehouse",
            "install-guards",
            "--dsn",
            &dsn,
            "--policy",
            "approvals/policy.yaml",
        ])
        .args(["--tables", "dbt_example.fct_orders"])
        .assert()
        .success();
    let mut req = clyra();
    req.args(["--format", "json", "approvals", "request"]);
    s(&mut req);
    let req = req
        .args([
            "--checkpoint",
            "mass_dml",
            "--requester",
            "user:dev@example.com",
            "--payload",
            "approvals/change.json",
            "--tool",
            "dbt.backfill",
        ])
        .output()
        .unwrap();
    assert!(
        req.status.success(),
        "{}",
        String::from_utf8_lossy(&req.stderr)
    );
    let req: Value = serde_json::from_slice(&req.stdout).unwrap();
    let approval_id = req["approval_id"]
        .as_str()
        .or_else(|| req["id"].as_str())
        .unwrap_or_else(|| panic!("no approval id in {req:#}"))
        .to_owned();
    let mut ap = clyra();
    ap.args(["approvals", "approve", &approval_id]);
    s(&mut ap);
    let ap = ap.args(["--as", "user:ann@example.com"]).output().unwrap();
    assert!(
        ap.status.success(),
        "{}",
        String::from_utf8_lossy(&ap.stderr)
    );
    let token = String::from_utf8(ap.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    std::fs::write(w.join("token.txt"), &token).unwrap();
    clyra()
        .current_dir(p.path())
        .args([
            "warehouse",
            "grant",
            "--dsn",
            &dsn,
            "--token-file",
            "approvals/token.txt",
        ])
        .args([
            "--payload",
            "approvals/change.json",
            "--policy",
            "approvals/policy.yaml",
        ])
        .args([
            "--tenant",
            "shop",
            "--approvals-store",
            "sqlite:approvals/journal",
        ])
        .args(["--public-key", "approvals/keys/approvals.pub"])
        .assert()
        .success();

    // Approved: the token on the command line, as many will pass it. It must not reach the
    // evidence: only its digest does.
    let vars = format!("{{clyra_backfill: true, clyra_approval: '{token}'}}");
    let out = p
        .clyra_run(
            &["--policy", "approvals/policy.yaml"],
            &["run", "-s", "fct_orders", "--vars", &vars],
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let approved = bundle_of(&p, &output_json(&out));
    let d = &approved.bodies("dbt.guard.decision")[0];
    assert_eq!(d["decision"], "approved", "{d:#}");
    assert_eq!(d["rows_matched"], 960);
    assert_eq!(d["rows_total"], 1010);
    assert!(d["token_id"].as_str().unwrap().starts_with("tok_"), "{d:#}");
    assert_eq!(d["approval_id"], approval_id.as_str());
    assert_eq!(approved.predicate["run"]["status"], "success");
    for (name, bytes) in &approved.files {
        assert!(
            !String::from_utf8_lossy(bytes).contains(&token),
            "the approval token leaked into {name}"
        );
    }
    let n: i64 = p
        .client()
        .query_one(
            "SELECT count(*) FROM dbt_example.fct_orders WHERE status = 'delivered'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 960);
}
