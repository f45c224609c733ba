//! `clyra approvals` end to end, on SQLite and on the local Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../clyra-policy/tests/support/http_once.rs"]
mod http_once;
#[macro_use]
#[path = "../../clyra-journal/tests/support/mod.rs"]
mod support;

use std::path::Path;

use assert_cmd::Command;
use serde_json::{json, Value};
use support::Backend;

fn clyra() -> Command {
    Command::cargo_bin("clyra").unwrap()
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn policy(webhook: Option<Value>, token_ttl: &str) -> Value {
    let mut approvals = json!({
        "token_ttl": token_ttl,
        "checkpoints": [
            {"id": "promote", "approvers": ["user:*@acme.example"], "two_person": true},
            {"id": "refund", "approvers": ["user:*@acme.example"]}
        ]
    });
    if let Some(w) = webhook {
        approvals["webhook"] = w;
    }
    json!({
        "version": 4,
        "metadata": {"name": "acme-prod", "version": "1", "owners": ["platform@acme.example"]},
        "approvals": approvals
    })
}

/// A workspace: keys, policy.json, change.json, and the common arguments.
struct Ws {
    dir: tempfile::TempDir,
    store: String,
}

impl Ws {
    fn new(store: String, policy: &Value) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        clyra()
            .args(["keys", "generate", "--name", "approvals", "--out"])
            .arg(dir.path().join("keys"))
            .assert()
            .success();
        std::fs::write(dir.path().join("policy.json"), policy.to_string()).unwrap();
        std::fs::write(
            dir.path().join("change.json"),
            r#"{"model": "fct_orders", "target": "prod", "rows": 120}"#,
        )
        .unwrap();
        Ws { dir, store }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// `clyra approvals <sub> ...` with the store, tenant, policy and signing key.
    fn cmd(&self, sub: &[&str]) -> Command {
        let mut c = clyra();
        c.current_dir(self.dir.path())
            .arg("approvals")
            .args(sub)
            .args([
                "--store",
                &self.store,
                "--tenant",
                "acme",
                "--policy",
                "policy.json",
            ]);
        c
    }

    fn signed(&self, sub: &[&str]) -> Command {
        let mut c = self.cmd(sub);
        c.args(["--key", "keys/approvals.key"]);
        c
    }

    fn request(&self, checkpoint: &str) -> String {
        let out = self
            .signed(&["request", "--checkpoint", checkpoint])
            .args([
                "--requester",
                "user:dev@acme.example",
                "--payload",
                "change.json",
            ])
            .args(["--tool", "dbt.deploy", "--format", "json"])
            .assert()
            .success();
        json_of(&out.get_output().stdout)["approval_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn refused_with(mut cmd: impl std::borrow::BorrowMut<Command>, code: &str) {
    let cmd = cmd.borrow_mut();
    let out = cmd.arg("--format").arg("json").assert().code(3);
    let doc = json_of(&out.get_output().stdout);
    assert_eq!(doc["code"], code, "{doc}");
    assert_eq!(doc["refused"], true);
}

fn approvals_round_trip(b: Backend) {
    let ws = Ws::new(b.url(), &policy(None, "15m"));
    let id = ws.request("promote");
    let out = ws
        .signed(&["list", "--status", "pending"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains(&id) && text.contains("0/2"), "{text}");
    refused_with(
        ws.signed(&["approve", &id, "--as", "user:dev@acme.example"]),
        "A_SELF_APPROVAL",
    );
    refused_with(
        ws.signed(&["approve", &id, "--as", "user:eve@evil.example"]),
        "A_NOT_APPROVER",
    );
    ws.signed(&[
        "approve",
        &id,
        "--as",
        "user:ann@acme.example",
        "--comment",
        "diff ok",
    ])
    .assert()
    .success()
    .stdout(predicates::str::contains("1 of 2 approvals"));
    refused_with(
        ws.signed(&["approve", &id, "--as", "user:ann@acme.example"]),
        "A_DUPLICATE_APPROVER",
    );
    let out = ws
        .signed(&[
            "approve",
            &id,
            "--as",
            "user:bo@acme.example",
            "--format",
            "json",
        ])
        .assert()
        .success();
    let granted = json_of(&out.get_output().stdout);
    assert_eq!(granted["status"], "granted");
    let token = granted["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("clyra-rt1."));
    std::fs::write(ws.path("token.txt"), format!("{token}\n")).unwrap();
    // The same token again, for the waiting requester.
    let out = ws.signed(&["token", &id]).assert().success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout).trim(),
        token
    );
    // Another payload: refused, and the token is not used up.
    std::fs::write(
        ws.path("other.json"),
        r#"{"model": "fct_orders", "target": "prod", "rows": 120000}"#,
    )
    .unwrap();
    let redeem = |payload: &str| {
        let mut c = ws.cmd(&["redeem", "--token-file", "token.txt", "--payload", payload]);
        c.args(["--public-key", "keys/approvals.pub"]);
        c
    };
    refused_with(&mut redeem("other.json"), "A_PAYLOAD_MISMATCH");
    refused_with(
        redeem("change.json").args(["--checkpoint", "refund"]),
        "A_CHECKPOINT_MISMATCH",
    );
    // The approved payload, keys reordered: accepted with only the public key.
    std::fs::write(
        ws.path("same.json"),
        "{\"rows\": 1.2e2,\n \"target\": \"prod\", \"model\": \"fct_orders\"}",
    )
    .unwrap();
    redeem("same.json")
        .args(["--checkpoint", "promote"])
        .assert()
        .success()
        .stdout(predicates::str::contains("used"));
    refused_with(&mut redeem("change.json"), "A_TOKEN_REUSED");
    let out = ws
        .signed(&["show", &id, "--format", "json"])
        .assert()
        .success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["status"], "used");
    let kinds: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "approval.requested",
            "approval.approved",
            "approval.approved",
            "approval.granted",
            "approval.used"
        ]
    );
    assert_eq!(v["approvals"][0]["comment"], "diff ok");
    clyra()
        .args(["journal", "verify", "--store", &b.url()])
        .assert()
        .success();
}

both!(approvals_round_trip);

#[test]
fn an_expired_token_is_refused() {
    let b = Backend::sqlite();
    let ws = Ws::new(b.url(), &policy(None, "1s"));
    let id = ws.request("refund");
    let out = ws
        .signed(&[
            "approve",
            &id,
            "--as",
            "user:lee@acme.example",
            "--format",
            "json",
        ])
        .assert()
        .success();
    let token = json_of(&out.get_output().stdout)["token"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    refused_with(
        ws.signed(&["redeem", "--token", &token, "--payload", "change.json"]),
        "A_TOKEN_EXPIRED",
    );
    ws.signed(&["list", "--status", "expired"])
        .assert()
        .success()
        .stdout(predicates::str::contains(&id));
}

#[test]
fn the_webhook_receives_a_signed_notice() {
    let b = Backend::sqlite();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/approvals", listener.local_addr().unwrap());
    let server = http_once::serve_once(listener);
    let ws = Ws::new(
        b.url(),
        &policy(
            Some(json!({"url": url, "secret_env": "CLYRA_TEST_APPROVALS_WEBHOOK"})),
            "15m",
        ),
    );
    let before = jiff::Timestamp::now().as_second();
    let out = ws
        .signed(&["request", "--checkpoint", "promote"])
        .args(["--requester", "agent:copilot", "--payload", "change.json"])
        .env("CLYRA_TEST_APPROVALS_WEBHOOK", "whsec-test-0123456789")
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("notice   sent"));
    let (headers, body) = server.join().unwrap();
    let sig = headers
        .iter()
        .find_map(|h| {
            h.strip_prefix("clyra-signature: ")
                .or(h.strip_prefix("Clyra-Signature: "))
        })
        .unwrap_or_else(|| panic!("no signature header in {headers:?}"));
    clyra_policy::approvals::notice::verify_signature(
        b"whsec-test-0123456789",
        sig,
        &body,
        before,
        300,
    )
    .unwrap();
    let doc = json_of(&body);
    assert_eq!(doc["type"], "approval.requested");
    assert_eq!(doc["requester"], "agent:copilot");
}

#[test]
fn an_unreachable_webhook_does_not_block_the_request() {
    let b = Backend::sqlite();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret_url = format!("http://127.0.0.1:{port}/hooks/T0KEN-SECRET");
    let ws = Ws::new(b.url(), &policy(Some(json!({"url": secret_url})), "15m"));
    let out = ws
        .signed(&["request", "--checkpoint", "refund"])
        .args(["--requester", "agent:copilot", "--payload", "change.json"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("NOT delivered"), "{text}");
    assert!(
        !text.contains("T0KEN-SECRET"),
        "the URL stays out of messages: {text}"
    );
    let id = text.split_whitespace().next().unwrap().to_string();
    let out = ws
        .signed(&["show", &id, "--format", "json"])
        .assert()
        .success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["status"], "pending");
    assert_eq!(v["notify_failures"].as_array().unwrap().len(), 1);
    assert!(!v.to_string().contains("T0KEN-SECRET"));
}

#[test]
fn errors_are_clear() {
    let b = Backend::sqlite();
    let ws = Ws::new(b.url(), &policy(None, "15m"));
    ws.cmd(&["list"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("--key"));
    ws.signed(&["request", "--checkpoint", "nope"])
        .args(["--requester", "u", "--payload", "change.json"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("A_UNKNOWN_CHECKPOINT"));
    std::fs::write(ws.path("bad.json"), "{\"version\": 4,\n \"version\": 4}").unwrap();
    let mut c = clyra();
    c.current_dir(ws.dir.path())
        .args([
            "approvals",
            "list",
            "--store",
            &ws.store,
            "--tenant",
            "acme",
        ])
        .args(["--policy", "bad.json", "--key", "keys/approvals.key"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "bad.json:2:2: error[P_DUPLICATE_KEY] /version",
        ));
    // Only public keys: cannot approve.
    let id = ws.request("refund");
    ws.cmd(&["approve", &id, "--as", "user:lee@acme.example"])
        .args(["--public-key", "keys/approvals.pub"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("A_NO_SIGNING_KEY"));
    assert!(Path::new(&ws.path("keys/approvals.key")).exists());
}

#[test]
fn every_approvals_command_has_help_with_an_example() {
    for sub in [
        "request", "list", "show", "approve", "reject", "token", "redeem",
    ] {
        clyra()
            .args(["approvals", sub, "--help"])
            .assert()
            .success()
            .stdout(predicates::str::contains("Example"));
    }
}
