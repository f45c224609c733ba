//! `clyra recorder serve` and `clyra record`, as processes: the end-to-end path and crash safety.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clyra_recorder::auth::Secret;
use clyra_recorder::client::Client;
use serde_json::{json, Value};

const SECRET: &[u8; 32] = b"cli-test-secret-0123456789abcdef";

/// A tenants file for `acme` (key `k1`) in `dir`; returns its path.
fn tenants_file(dir: &Path) -> PathBuf {
    let secret = dir.join("acme.k1.secret");
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.join("tenants.json");
    std::fs::write(
        &file,
        r#"{"tenants": {"acme": {"keys": [{"id": "k1", "secret_file": "acme.k1.secret"}]}}}"#,
    )
    .unwrap();
    file
}

struct Server {
    child: Child,
    endpoint: String,
}

/// Starts `clyra recorder serve` and waits for its `listening on` line.
fn serve(store: &str, tenants: &Path) -> Server {
    serve_with(store, tenants, &[])
}

/// Like [`serve`], with extra arguments.
fn serve_with(store: &str, tenants: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clyra"))
        .args([
            "recorder",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            store,
        ])
        .arg("--tenants")
        .arg(tenants)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening on ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr.to_string());
                }
            } else {
                eprintln!("server: {line}");
            }
        }
    });
    let endpoint = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server never printed `listening on`");
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    Server { child, endpoint }
}

impl Server {
    fn client(&self) -> Client {
        Client::new(
            &self.endpoint,
            "acme",
            "k1",
            Secret::new(SECRET.to_vec()).unwrap(),
        )
        .unwrap()
    }

    /// SIGTERM, and the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.child.wait().unwrap()
    }
}

/// A small xorshift generator seeded from the clock: each run kills at different moments.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        eprintln!("crash test seed {seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// id -> how many entries carry it.
fn ids_in_journal(store: &str) -> HashMap<String, usize> {
    let mut s = clyra_journal::open(store).unwrap();
    let size = s.head("acme").unwrap().size;
    let mut ids = HashMap::new();
    s.scan("acme", 0, size, &mut |e| {
        let v: Value = serde_json::from_slice(&e.canonical).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        *ids.entry(id).or_insert(0) += 1;
        Ok(())
    })
    .unwrap();
    ids
}

fn event(id: &str) -> Value {
    json!({"kind": "crash.test", "id": id, "body": {"id": id}})
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let tenants = tenants_file(dir.path());
    let store = format!("sqlite:{}", dir.path().join("journal").display());
    let mut rng = Rng::new();
    let mut all_sent: HashSet<String> = HashSet::new();
    let mut all_acked: HashSet<String> = HashSet::new();
    let rounds = 20;
    for round in 0..rounds {
        let server = serve(&store, &tenants);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::<String>::new()));
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (client, stop) = (server.client(), Arc::clone(&stop));
                let (sent, acked) = (Arc::clone(&sent), Arc::clone(&acked));
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        // Singles and small batches.
                        let k = 1 + (n % 3);
                        let ids: Vec<String> =
                            (0..k).map(|j| format!("r{round}-t{t}-{n}-{j}")).collect();
                        n += 1;
                        sent.lock().unwrap().extend(ids.iter().cloned());
                        let body = if k == 1 {
                            event(&ids[0])
                        } else {
                            json!({"events": ids.iter().map(|i| event(i)).collect::<Vec<_>>()})
                        };
                        match client.post_events(body.to_string().as_bytes()) {
                            Ok(r) if r.status == 200 => {
                                let receipts =
                                    r.json().unwrap()["receipts"].as_array().unwrap().len();
                                assert_eq!(receipts, k);
                                acked.lock().unwrap().extend(ids);
                            }
                            Ok(r) => panic!("unexpected answer: {}", r.error_message()),
                            Err(_) => break, // the server is gone
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(10 + rng.below(120)));
        let mut child = server.child;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().unwrap();
        }
        let sent: Vec<String> = std::mem::take(&mut *sent.lock().unwrap());
        let acked: HashSet<String> = std::mem::take(&mut *acked.lock().unwrap())
            .into_iter()
            .collect();
        // Every acknowledged event is in the journal, before anything is re-sent.
        let present = ids_in_journal(&store);
        for id in &acked {
            assert_eq!(
                present.get(id),
                Some(&1),
                "round {round}: acknowledged `{id}` lost"
            );
        }
        // Restart and re-send what was not acknowledged: same ids, so nothing doubles.
        let server = serve(&store, &tenants);
        let unacked: Vec<&String> = sent.iter().filter(|id| !acked.contains(*id)).collect();
        for chunk in unacked.chunks(500) {
            let body = json!({"events": chunk.iter().map(|i| event(i)).collect::<Vec<_>>()});
            let r = server
                .client()
                .post_events(body.to_string().as_bytes())
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.error_message());
        }
        assert!(server.terminate().success(), "graceful exit after SIGTERM");
        eprintln!(
            "round {round}: {} sent, {} acked before the kill, {} re-sent",
            sent.len(),
            acked.len(),
            unacked.len()
        );
        all_sent.extend(sent);
        all_acked.extend(acked);
    }
    let present = ids_in_journal(&store);
    for id in &all_sent {
        assert_eq!(present.get(id), Some(&1), "`{id}` missing or doubled");
    }
    assert_eq!(
        present.len(),
        all_sent.len(),
        "no entry that was never sent"
    );
    assert!(
        present.values().all(|n| *n == 1),
        "an id was appended twice"
    );
    assert!(!all_acked.is_empty(), "the load never got an ack");
    let mut s = clyra_journal::open(&store).unwrap();
    let report = clyra_journal::verify::verify_tenant(s.as_mut(), "acme", None).unwrap();
    assert!(report.is_ok(), "{:?}", report.broken);
    assert_eq!(report.entries, all_sent.len() as u64);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn record_sends_signed_events_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = tenants_file(dir.path());
    let store = format!("sqlite:{}", dir.path().join("journal").display());
    let server = serve(&store, &tenants);
    let secret = dir.path().join("acme.k1.secret");
    let event_file = dir.path().join("event.json");
    std::fs::write(
        &event_file,
        r#"{"kind": "demo.hello", "id": "e-1", "body": {"n": 1}}"#,
    )
    .unwrap();
    let record = |extra: &[&str]| {
        let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_clyra"));
        cmd.args([
            "record",
            "--endpoint",
            &server.endpoint,
            "--tenant",
            "acme",
            "--key-id",
            "k1",
        ])
        .arg("--secret-file")
        .arg(&secret)
        .args(extra);
        cmd
    };
    let out = record(&[event_file.to_str().unwrap()]).assert().success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("seq 0  hash "), "{stdout}");
    assert!(
        stdout.contains("1 event(s) recorded for tenant acme"),
        "{stdout}"
    );

    // A batch from stdin, JSON output; the repeated id is acknowledged as a duplicate.
    let batch = r#"{"events": [{"kind": "demo.hello", "id": "e-1"}, {"kind": "dbt.run.finished", "run": "r1"}]}"#;
    let out = record(&["--format", "json", "-"])
        .write_stdin(batch)
        .assert()
        .success();
    let doc: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["receipts"][0]["duplicate"], true);
    assert_eq!(doc["receipts"][0]["seq"], 0);
    assert_eq!(doc["receipts"][1]["seq"], 1);
    assert_eq!(doc["receipts"][1]["run_seq"], 0);

    // The server's refusal: exit 1 with its code and message.
    let out = record(&["-"])
        .write_stdin(r#"{"kind": "Bad"}"#)
        .assert()
        .code(1);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("HTTP 422 invalid_event") && stderr.contains("/kind"),
        "{stderr}"
    );
    let wrong = dir.path().join("wrong.secret");
    std::fs::write(&wrong, [1u8; 32]).unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_clyra"))
        .args([
            "record",
            "--endpoint",
            &server.endpoint,
            "--tenant",
            "acme",
            "--key-id",
            "k1",
        ])
        .arg("--secret-file")
        .arg(&wrong)
        .arg(&event_file)
        .assert()
        .code(1);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("bad_signature"), "{stderr}");
    // Client-side errors: a too-open secret file, a missing input, a https endpoint.
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_clyra"))
        .args([
            "record",
            "--endpoint",
            &server.endpoint,
            "--tenant",
            "acme",
            "--key-id",
            "k1",
        ])
        .arg("--secret-file")
        .arg(&wrong)
        .arg(&event_file)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("chmod 600"));
    record(&["/nonexistent.json"]).assert().code(1);
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_clyra"))
        .args([
            "record",
            "--endpoint",
            "https://example.com",
            "--tenant",
            "acme",
            "--key-id",
            "k1",
        ])
        .arg("--secret-file")
        .arg(&secret)
        .arg(&event_file)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("TLS is terminated by a proxy"));

    let head = server.client().head().unwrap().json().unwrap();
    assert_eq!(head["size"], 2);
    assert!(server.terminate().success());
}

#[test]
fn serve_refuses_group_readable_secrets_and_bad_stores() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = tenants_file(dir.path());
    std::fs::set_permissions(
        dir.path().join("acme.k1.secret"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let store = format!("sqlite:{}", dir.path().join("journal").display());
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_clyra"))
        .args([
            "recorder",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store,
        ])
        .arg("--tenants")
        .arg(&tenants)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "must not be readable by group or others",
        ));
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_clyra"))
        .args(["recorder", "serve", "--help"])
        .assert()
        .success()
        .stdout(predicates::str::contains("Example:"));
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_clyra"))
        .args(["record", "--help"])
        .assert()
        .success()
        .stdout(predicates::str::contains("Examples:"));
}

#[test]
fn the_recorder_signs_checkpoints_periodically_and_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = tenants_file(dir.path());
    let keys = dir.path().join("keys");
    let ok = Command::new(env!("CARGO_BIN_EXE_clyra"))
        .args(["keys", "generate", "--out"])
        .arg(&keys)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let key = keys.join("clyra.key");
    let store = format!("sqlite:{}", dir.path().join("journal").display());
    let server = serve_with(
        &store,
        &tenants,
        &[
            "--checkpoint-key",
            key.to_str().unwrap(),
            "--checkpoint-every",
            "0.2",
            "--log-name",
            "rec.test/j",
        ],
    );
    let client = server.client();
    let r = client
        .post_events(
            json!({"events": [event("c1"), event("c2")]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert!(r.is_success());
    // Within a few intervals a checkpoint covers both entries.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = clyra_journal::open(&store).unwrap();
        if s.checkpoints("acme")
            .unwrap()
            .last()
            .is_some_and(|c| c.size == 2)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size 2 after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = client
        .post_events(event("c3").to_string().as_bytes())
        .unwrap();
    assert!(r.is_success());
    assert!(server.terminate().success());
    // The last pass ran after the writer drained: it covers the third entry, and it is signed
    // by the key, with the configured origin.
    let mut s = clyra_journal::open(&store).unwrap();
    let cps = s.checkpoints("acme").unwrap();
    let last = cps.last().unwrap();
    assert_eq!(last.size, 3);
    assert!(
        last.note.starts_with("rec.test/j/acme\n3\n"),
        "{}",
        last.note
    );
    let public = clyra_evidence::keys::read_public_key_file(&keys.join("clyra.pub")).unwrap();
    let report = clyra_journal::verify::verify_tenant(s.as_mut(), "acme", Some(&[public])).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.checkpoints_checked, cps.len());
}
