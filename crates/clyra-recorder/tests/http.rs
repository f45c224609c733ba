//! The HTTP suite, run against real stores: SQLite in a temporary directory and the local
//! Postgres (`postgres://postgres@127.0.0.1:5432/test`, one schema per test, dropped afterwards).
//! The Postgres tests fail, never skip, when the server is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clyra_recorder::auth::{self, Secret};
use clyra_recorder::client::{Client, Response};
use clyra_recorder::{Config, Recorder, Tenants};
use rand_core::RngCore as _;
use serde_json::{json, Value};
use sha2::Digest as _;

const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432/test";
const ACME_SECRET: &[u8; 32] = b"acme-k1-secret-0123456789abcdefg";
const BETA_SECRET: &[u8; 32] = b"beta-k1-secret-0123456789abcdefg";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Harness {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), clyra_recorder::Error>>>,
    metrics: Arc<clyra_recorder::metrics::Metrics>,
    store_url: String,
    dir: tempfile::TempDir,
    pg_schema: Option<String>,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand_core::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn pg_client() -> ::postgres::Client {
    ::postgres::Client::connect(PG_BASE, ::postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "Postgres is unreachable at {PG_BASE}: {e}. These tests need it (trust auth, database \
             `test`); start it rather than skipping them."
        )
    })
}

fn tenants() -> Tenants {
    let mut t = Tenants::new();
    t.insert("acme", "k1", Secret::new(ACME_SECRET.to_vec()).unwrap())
        .unwrap();
    t.insert("beta", "k1", Secret::new(BETA_SECRET.to_vec()).unwrap())
        .unwrap();
    t
}

impl Harness {
    fn start(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (store_url, pg_schema) = match backend {
            Backend::Sqlite => (format!("sqlite:{}", dir.path().join("j").display()), None),
            Backend::Postgres => {
                drop(pg_client());
                let schema = format!("rec_test_{}", random_hex(6));
                (format!("{PG_BASE}?schema={schema}"), Some(schema))
            }
        };
        let mut config = Config::new(tenants());
        tweak(&mut config);
        let recorder = Recorder::open(config, &store_url).unwrap();
        let metrics = recorder.metrics();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                recorder
                    .serve(listener, async move {
                        let _ = rx.await;
                    })
                    .await
            })
        });
        Harness {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
            metrics,
            store_url,
            dir,
            pg_schema,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn client(&self, tenant: &str, key: &str, secret: &[u8]) -> Client {
        Client::new(
            &self.endpoint(),
            tenant,
            key,
            Secret::new(secret.to_vec()).unwrap(),
        )
        .unwrap()
    }

    fn acme(&self) -> Client {
        self.client("acme", "k1", ACME_SECRET)
    }

    fn beta(&self) -> Client {
        self.client("beta", "k1", BETA_SECRET)
    }

    /// The tenant's (size, head) as the journal holds it, read directly from the store.
    fn head(&self, tenant: &str) -> (u64, String) {
        let mut store = clyra_journal::open(&self.store_url).unwrap();
        let h = store.head(tenant).unwrap();
        (h.size, h.head.to_hex())
    }

    fn metrics_text(&self) -> String {
        let (status, _, body) = raw(self.addr, "GET", "/metrics", &[], b"");
        assert_eq!(status, 200);
        String::from_utf8(body).unwrap()
    }

    fn queue_depth(&self) -> u64 {
        metric(&self.metrics_text(), "clyra_recorder_queue_depth_events")
    }

    fn stop(&mut self) -> Result<(), clyra_recorder::Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().unwrap_or(Err(clyra_recorder::Error::Writer)),
            None => Ok(()),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop();
        if let Some(schema) = &self.pg_schema {
            // No panic here: a failing test is already unwinding.
            if let Ok(mut c) = ::postgres::Client::connect(PG_BASE, ::postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
        let _ = &self.dir;
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("metric {name} missing"))
        .trim()
        .parse()
        .unwrap()
}

/// A raw HTTP/1.1 request (for headers the client would never send).
fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body and close.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, out[split + 4..].to_vec())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signed headers for a raw request.
fn signed_headers(
    tenant: &str,
    key: &str,
    secret: &[u8],
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let nonce = auth::new_nonce();
    let parts = auth::SignedParts {
        method,
        path_and_query: path,
        tenant,
        key_id: key,
        timestamp: now(),
        nonce: &nonce,
        body,
    };
    auth::headers(secret, &parts).to_vec()
}

fn ok_json(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.error_message());
    r.json().unwrap()
}

fn assert_error(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let doc = r.json().expect("error body is JSON");
    assert_eq!(doc["error"]["code"], code, "{doc}");
    assert!(doc["error"]["message"].is_string());
    doc
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Backend::Postgres) } )*
        }
    };
}

both_backends!(
    ingest_and_read_back,
    bad_inputs_leave_the_journal_unchanged,
    tenants_are_isolated,
    group_commit_groups,
    health_metrics_and_openapi,
);

fn ingest_and_read_back(backend: Backend) {
    let h = Harness::start(backend, |_| {});
    let c = h.acme();
    let r = ok_json(
        &c.post_events(br#"{"kind": "demo.hello", "id": "e-1", "body": {"n": 1}}"#)
            .unwrap(),
    );
    assert_eq!(r["receipts"].as_array().unwrap().len(), 1);
    assert_eq!(r["receipts"][0]["seq"], 0);
    assert_eq!(r["receipts"][0]["duplicate"], false);
    assert!(r["receipts"][0].get("run_seq").is_none());
    let first_hash = r["receipts"][0]["hash"].as_str().unwrap().to_string();

    let batch = json!({"events": [
        {"kind": "dbt.model.finished", "run": "r1", "body": {"model": "a"}},
        {"kind": "dbt.model.finished", "run": "r1", "body": {"model": "b"}, "ts": "2026-01-01T00:00:00Z"},
        {"kind": "demo.hello", "id": "e-1"},
        {"kind": "dbt.run.finished", "run": "r1", "actor": "ci", "session": "s"}
    ]});
    let r = ok_json(&c.post_events(batch.to_string().as_bytes()).unwrap());
    let receipts = r["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 4);
    assert_eq!(receipts[0]["seq"], 1);
    assert_eq!(receipts[0]["run_seq"], 0);
    assert_eq!(receipts[1]["seq"], 2);
    assert_eq!(receipts[1]["run_seq"], 1);
    assert_eq!(receipts[2]["seq"], 0, "same id: the first entry's receipt");
    assert_eq!(receipts[2]["duplicate"], true);
    assert_eq!(receipts[2]["hash"], first_hash);
    assert_eq!(receipts[3]["seq"], 3);
    assert_eq!(receipts[3]["run_seq"], 2);

    let head = ok_json(&c.head().unwrap());
    assert_eq!(head["tenant"], "acme");
    assert_eq!(head["size"], 4);
    assert_eq!(head["head"], receipts[3]["hash"]);
    assert_eq!(
        h.head("acme"),
        (4, receipts[3]["hash"].as_str().unwrap().to_string())
    );

    let e = c.entry(2).unwrap();
    assert_eq!(e.status, 200);
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&e.body)),
        receipts[1]["hash"].as_str().unwrap(),
        "the stored canonical bytes hash to the receipt's hash"
    );
    let entry: Value = serde_json::from_slice(&e.body).unwrap();
    assert_eq!(entry["tenant"], "acme");
    assert_eq!(entry["kind"], "dbt.model.finished");
    assert_eq!(entry["ts"], "2026-01-01T00:00:00.000Z");
    assert!(entry.get("body").is_none(), "hash-only by default");
    assert_error(&c.entry(4).unwrap(), 404, "not_found");
    assert_error(
        &c.send("GET", "/v1/entries/x", b"").unwrap(),
        404,
        "not_found",
    );
    assert_eq!(h.metrics.ingested(), 4);
}

fn bad_inputs_leave_the_journal_unchanged(backend: Backend) {
    let h = Harness::start(backend, |c| {
        c.max_body_bytes = 64 * 1024;
        c.max_batch_events = 10;
    });
    let c = h.acme();
    // A first event, so "unchanged" compares a real head.
    let nonce = auth::new_nonce();
    let ev = br#"{"kind": "demo.first"}"#;
    ok_json(
        &c.send_signed("POST", "/v1/events", ev, now(), &nonce)
            .unwrap(),
    );
    let before = h.head("acme");
    let beta_before = h.head("beta");
    let good = br#"{"kind": "demo.ok"}"#;

    // Malformed JSON: 400 with the line and column.
    let r = c
        .post_events(b"{\n  \"kind\": \"a\",\n  \"body\": [1, 2,]\n}")
        .unwrap();
    let doc = assert_error(&r, 400, "malformed_json");
    assert_eq!(doc["error"]["line"], 3, "{doc}");
    assert!(doc["error"]["column"].as_u64().is_some());
    assert_eq!(doc["error"]["pointer"], "/body/2");
    // Duplicate keys are malformed under the strict profile.
    let doc = assert_error(
        &c.post_events(br#"{"kind": "a", "kind": "b"}"#).unwrap(),
        400,
        "malformed_json",
    );
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("duplicate"));
    // Invalid UTF-8.
    assert_error(
        &c.post_events(b"{\"kind\": \"a\xff\"}").unwrap(),
        400,
        "invalid_utf8",
    );
    // Unknown member, and a tenant in the body is just that.
    let doc = assert_error(
        &c.post_events(br#"{"kind": "a", "tenant": "beta"}"#)
            .unwrap(),
        422,
        "invalid_event",
    );
    assert_eq!(doc["error"]["pointer"], "/tenant");
    // One bad event in a batch refuses the whole batch, naming it.
    let mut events: Vec<Value> = (0..5)
        .map(|i| json!({"kind": "demo.batch", "id": format!("b{i}")}))
        .collect();
    events[3] = json!({"kind": "Not.Valid"});
    let doc = assert_error(
        &c.post_events(json!({"events": events}).to_string().as_bytes())
            .unwrap(),
        422,
        "invalid_event",
    );
    assert_eq!(doc["error"]["pointer"], "/events/3/kind");
    let doc = assert_error(
        &c.post_events(br#"{"events": [{"body": 1}]}"#).unwrap(),
        422,
        "invalid_event",
    );
    assert_eq!(doc["error"]["pointer"], "/events/0/kind");
    let eleven: Vec<Value> = (0..11).map(|_| json!({"kind": "a"})).collect();
    assert_error(
        &c.post_events(json!({"events": eleven}).to_string().as_bytes())
            .unwrap(),
        422,
        "batch_too_large",
    );
    assert_error(
        &c.post_events(br#"{"events": []}"#).unwrap(),
        422,
        "invalid_event",
    );
    // Too large.
    let huge = format!(r#"{{"kind": "a", "body": "{}"}}"#, "x".repeat(70 * 1024));
    assert_error(
        &c.post_events(huge.as_bytes()).unwrap(),
        413,
        "body_too_large",
    );
    // Wrong secret, unknown key, unknown tenant: one answer for all three.
    let wrong = h.client("acme", "k1", b"not-the-secret-0123456789abcdefgh");
    let a = assert_error(&wrong.post_events(good).unwrap(), 401, "bad_signature");
    let b = assert_error(
        &h.client("acme", "k9", ACME_SECRET)
            .post_events(good)
            .unwrap(),
        401,
        "bad_signature",
    );
    let d = assert_error(
        &h.client("nobody", "k1", ACME_SECRET)
            .post_events(good)
            .unwrap(),
        401,
        "bad_signature",
    );
    assert_eq!(a, b);
    assert_eq!(a, d);
    // Another tenant's name with acme's key.
    assert_error(
        &h.client("beta", "k1", ACME_SECRET)
            .post_events(good)
            .unwrap(),
        401,
        "bad_signature",
    );
    // Stale and future timestamps.
    let r = c
        .send_signed("POST", "/v1/events", good, now() - 301, &auth::new_nonce())
        .unwrap();
    assert_error(&r, 401, "stale_timestamp");
    let r = c
        .send_signed("POST", "/v1/events", good, now() + 400, &auth::new_nonce())
        .unwrap();
    assert_error(&r, 401, "stale_timestamp");
    // Replayed nonce (the first use above succeeded).
    assert_error(
        &c.send_signed("POST", "/v1/events", good, now(), &nonce)
            .unwrap(),
        409,
        "nonce_replayed",
    );
    // Missing and malformed headers.
    let (status, _, body) = raw(h.addr, "POST", "/v1/events", &[], good);
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("missing_header"));
    let mut hdrs = signed_headers("acme", "k1", ACME_SECRET, "POST", "/v1/events", good);
    hdrs[2].1 = "yesterday".into();
    let (status, _, body) = raw(h.addr, "POST", "/v1/events", &hdrs, good);
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("malformed_header"));
    let mut hdrs = signed_headers("acme", "k1", ACME_SECRET, "POST", "/v1/events", good);
    hdrs[3].1 = "short".into();
    let (status, _, body) = raw(h.addr, "POST", "/v1/events", &hdrs, good);
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("malformed_header"));
    // A signature over another path does not carry over.
    let hdrs = signed_headers("acme", "k1", ACME_SECRET, "POST", "/v1/events?x=1", good);
    let (status, _, _) = raw(h.addr, "POST", "/v1/events", &hdrs, good);
    assert_eq!(status, 401);
    // The raw helper itself works: a correctly signed raw request is accepted (changes the head,
    // so it comes after the comparison).
    assert_eq!(
        h.head("acme"),
        before,
        "no bad request may change the journal"
    );
    assert_eq!(h.head("beta"), beta_before);
    let hdrs = signed_headers("acme", "k1", ACME_SECRET, "POST", "/v1/events", good);
    let (status, _, _) = raw(h.addr, "POST", "/v1/events", &hdrs, good);
    assert_eq!(status, 200);
    assert_eq!(h.head("acme").0, before.0 + 1);
    let text = h.metrics_text();
    assert!(
        metric(
            &text,
            "clyra_recorder_rejects_total{reason=\"bad_signature\"}"
        ) >= 4
    );
    assert!(metric(&text, "clyra_recorder_http_requests_total{status=\"413\"}") >= 1);
}

fn tenants_are_isolated(backend: Backend) {
    let h = Harness::start(backend, |_| {});
    let (a, b) = (h.acme(), h.beta());
    ok_json(
        &a.post_events(br#"{"kind": "demo.a", "id": "same"}"#)
            .unwrap(),
    );
    ok_json(&a.post_events(br#"{"kind": "demo.a"}"#).unwrap());
    // Beta sees nothing of acme's.
    let head = ok_json(&b.head().unwrap());
    assert_eq!(
        (head["tenant"].clone(), head["size"].clone()),
        (json!("beta"), json!(0))
    );
    assert_error(&b.entry(0).unwrap(), 404, "not_found");
    // Beta's writes go to beta's chain, even with the same id.
    let r = ok_json(
        &b.post_events(br#"{"kind": "demo.b", "id": "same"}"#)
            .unwrap(),
    );
    assert_eq!(r["receipts"][0]["seq"], 0);
    assert_eq!(r["receipts"][0]["duplicate"], false);
    let e: Value = serde_json::from_slice(&b.entry(0).unwrap().body).unwrap();
    assert_eq!(e["tenant"], "beta");
    assert_eq!(e["kind"], "demo.b");
    let e: Value = serde_json::from_slice(&a.entry(0).unwrap().body).unwrap();
    assert_eq!(e["tenant"], "acme");
    assert_eq!(h.head("acme").0, 2);
    assert_eq!(h.head("beta").0, 1);
    // Acme's key cannot act as beta, for writes or reads.
    let fake = h.client("beta", "k1", ACME_SECRET);
    assert_error(
        &fake.post_events(br#"{"kind": "demo.x"}"#).unwrap(),
        401,
        "bad_signature",
    );
    assert_error(&fake.head().unwrap(), 401, "bad_signature");
    assert_error(&fake.entry(0).unwrap(), 401, "bad_signature");
    assert_eq!(h.head("beta").0, 1);
}

fn group_commit_groups(backend: Backend) {
    let h = Harness::start(backend, |_| {});
    let n = 200;
    let barrier = Arc::new(Barrier::new(n));
    let endpoint = h.endpoint();
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let endpoint = endpoint.clone();
            std::thread::spawn(move || {
                let c = Client::new(
                    &endpoint,
                    "acme",
                    "k1",
                    Secret::new(ACME_SECRET.to_vec()).unwrap(),
                )
                .unwrap();
                let body = json!({"kind": "demo.load", "id": format!("g{i}")}).to_string();
                barrier.wait();
                c.post_events(body.as_bytes()).unwrap()
            })
        })
        .collect();
    for t in threads {
        ok_json(&t.join().unwrap());
    }
    let commits = h.metrics.commits();
    eprintln!("{n} concurrent requests, {commits} commits");
    assert_eq!(h.metrics.ingested(), n as u64);
    assert_eq!(h.head("acme").0, n as u64);
    assert!(
        commits < (n as u64) * 3 / 4,
        "{commits} commits for {n} requests: not grouped"
    );
    assert_eq!(
        metric(&h.metrics_text(), "clyra_recorder_commits_total"),
        commits
    );
}

fn health_metrics_and_openapi(backend: Backend) {
    let h = Harness::start(backend, |_| {});
    let (status, _, body) = raw(h.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, head, body) = raw(h.addr, "GET", "/openapi.json", &[], b"");
    assert_eq!(status, 200);
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: application/json"));
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/events",
        "/v1/head",
        "/v1/entries/{seq}",
        "/healthz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} not described");
    }
    let codes: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]
        ["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        clyra_recorder::metrics::REASONS,
        "the document lists every error code"
    );
    ok_json(&h.acme().post_events(br#"{"kind": "demo.m"}"#).unwrap());
    let (status, head, _) = raw(h.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"));
    let text = h.metrics_text();
    for name in [
        "clyra_recorder_ingested_entries_total 1",
        "clyra_recorder_http_requests_total{status=\"200\"}",
        "clyra_recorder_rejects_total{reason=\"queue_full\"} 0",
        "clyra_recorder_ack_latency_seconds_count 1",
        "clyra_recorder_queue_depth_events 0",
        "clyra_recorder_commit_batch_events_bucket{le=\"1\"} 1",
        "clyra_recorder_commits_total 1",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    let (status, _, body) = raw(h.addr, "GET", "/nope", &[], b"");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("not_found"));
}

/// Holds SQLite's write lock from a second connection so that the writer stalls.
fn lock_sqlite(h: &Harness) -> rusqlite::Connection {
    let path = h.dir.path().join("j").join(clyra_journal::sqlite::DB_FILE);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send_in_thread(h: &Harness, body: String) -> std::thread::JoinHandle<Response> {
    let c = h.acme();
    std::thread::spawn(move || c.post_events(body.as_bytes()).unwrap())
}

#[test]
fn backpressure_answers_503_and_loses_nothing() {
    let h = Harness::start(Backend::Sqlite, |c| {
        c.queue_events = 20;
        c.max_batch_events = 10;
    });
    let lock = lock_sqlite(&h);
    // The writer takes this one and stalls on the lock.
    let first = send_in_thread(&h, json!({"kind": "demo.q", "id": "q0"}).to_string());
    wait_for("the first job", || h.queue_depth() == 1);
    let batch: Vec<Value> = (1..=10)
        .map(|i| json!({"kind": "demo.q", "id": format!("q{i}")}))
        .collect();
    let second = send_in_thread(&h, json!({"events": batch}).to_string());
    wait_for("the second job", || h.queue_depth() == 11);
    // 11 queued + 10 more > 20: refused, nothing kept.
    let batch: Vec<Value> = (11..=20)
        .map(|i| json!({"kind": "demo.q", "id": format!("q{i}")}))
        .collect();
    let r = h
        .acme()
        .post_events(json!({"events": batch}).to_string().as_bytes())
        .unwrap();
    assert_error(&r, 503, "queue_full");
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    // A single event still fits.
    let third = send_in_thread(&h, json!({"kind": "demo.q", "id": "q21"}).to_string());
    wait_for("the third job", || h.queue_depth() == 12);
    assert_eq!(
        h.head("acme").0,
        0,
        "nothing is committed while the lock is held"
    );
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    for t in [first, second, third] {
        ok_json(&t.join().unwrap());
    }
    assert_eq!(h.head("acme").0, 12);
    assert_eq!(h.queue_depth(), 0);
    let text = h.metrics_text();
    assert_eq!(
        metric(&text, "clyra_recorder_rejects_total{reason=\"queue_full\"}"),
        1
    );
    // The refused events can be sent again.
    ok_json(
        &h.acme()
            .post_events(json!({"events": batch}).to_string().as_bytes())
            .unwrap(),
    );
    assert_eq!(h.head("acme").0, 22);
}

#[test]
fn graceful_shutdown_drains_the_queue() {
    let mut h = Harness::start(Backend::Sqlite, |_| {});
    let lock = lock_sqlite(&h);
    let n = 20;
    let threads: Vec<_> = (0..n)
        .map(|i| {
            send_in_thread(
                &h,
                json!({"kind": "demo.s", "id": format!("s{i}")}).to_string(),
            )
        })
        .collect();
    wait_for("every request to be queued", || h.queue_depth() == n);
    // Ask to stop while all of them wait for the journal, then let the journal go.
    let _ = h.shutdown.take().unwrap().send(());
    std::thread::sleep(Duration::from_millis(100));
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    for t in threads {
        ok_json(&t.join().unwrap());
    }
    h.stop().unwrap();
    assert_eq!(h.head("acme").0, n);
    assert!(
        std::net::TcpStream::connect(h.addr).is_err(),
        "no longer listening"
    );
}

#[test]
fn writer_failure_fails_every_job_and_writes_nothing() {
    // A store the writer cannot write to: the SQLite file made read-only under it.
    let h = Harness::start(Backend::Sqlite, |_| {});
    ok_json(&h.acme().post_events(br#"{"kind": "demo.a"}"#).unwrap());
    let before = h.head("acme");
    let lock = lock_sqlite(&h);
    // Stall the writer, then make the transaction fail by keeping the lock past the busy
    // timeout is too slow for a test; instead, drop a table the append needs.
    lock.execute_batch("ALTER TABLE clyra_entries RENAME TO clyra_entries_gone; COMMIT")
        .unwrap();
    let r = h
        .acme()
        .post_events(br#"{"events": [{"kind": "demo.a"}, {"kind": "demo.b"}]}"#)
        .unwrap();
    assert!(r.status == 503 || r.status == 500, "{}", r.error_message());
    lock.execute_batch("ALTER TABLE clyra_entries_gone RENAME TO clyra_entries")
        .unwrap();
    assert_eq!(h.head("acme"), before, "the failed transaction rolled back");
    ok_json(&h.acme().post_events(br#"{"kind": "demo.c"}"#).unwrap());
    assert_eq!(h.head("acme").0, before.0 + 1);
}

#[test]
fn secret_files_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("acme.k1.secret");
    std::fs::write(&secret, ACME_SECRET).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = dir.path().join("tenants.json");
    std::fs::write(
        &file,
        r#"{"tenants": {"acme": {"keys": [{"id": "k1", "secret_file": "acme.k1.secret"}]}}}"#,
    )
    .unwrap();
    assert!(Tenants::load(&file).is_err());
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Tenants::load(&file).unwrap().secret("acme", "k1").is_some());
}
