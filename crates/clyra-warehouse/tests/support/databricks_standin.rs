//! A local stand-in for the Databricks SQL Statement Execution API 2.0 and the MLflow model
//! version endpoints, built from the documentation (see `tests/fixtures/databricks/README.md`).
//! It listens on 127.0.0.1:0, checks the bearer token, validates statement requests as the
//! documentation describes them, answers from the fixtures, and records every request.
//!
//! Used by `crates/clyra-warehouse/tests/databricks.rs` and the CLI tests (through `#[path]`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../clyra-warehouse/tests/fixtures/databricks")
        .canonicalize()
        .unwrap()
}

pub fn fixture(name: &str) -> Value {
    let p = fixtures().join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the stand-in answers.
#[derive(Debug, Clone)]
pub struct Config {
    /// The only bearer token accepted.
    pub token: String,
    /// The statement's successive states: the POST answers the first fixture, each poll the
    /// next, the last one repeats.
    pub statement: Vec<&'static str>,
    /// Answer this many requests (of any kind) with 429 and `Retry-After: 0` first.
    pub throttle: usize,
    /// MLflow model versions: (endpoint path, name, version) to a fixture.
    pub models: Vec<(&'static str, &'static str, &'static str, &'static str)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: "dapi-standin-token-0123456789".into(),
            statement: vec!["statement_succeeded_describe_history.json"],
            throttle: 0,
            models: vec![
                (
                    "/api/2.0/mlflow/model-versions/get",
                    "churn",
                    "3",
                    "mlflow_model_version.json",
                ),
                (
                    "/api/2.0/mlflow/unity-catalog/model-versions/get",
                    "main.ml.churn",
                    "7",
                    "mlflow_uc_model_version.json",
                ),
            ],
        }
    }
}

pub struct StandIn {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    pub fn start(config: Config) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut state = State {
                config,
                polls: 0,
                throttled: 0,
                statement_id: None,
            };
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if let Some(req) = read_request(&conn) {
                    r.lock().unwrap().push(req.clone());
                    let (status, headers, body) = state.answer(&req);
                    write_response(conn, status, &headers, &body);
                }
            }
        });
        StandIn {
            url: format!("http://{addr}"),
            requests,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    config: Config,
    polls: usize,
    throttled: usize,
    statement_id: Option<String>,
}

type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

fn json_answer(status: u16, v: &Value) -> Answer {
    (status, Vec::new(), serde_json::to_vec(v).unwrap())
}

fn error(status: u16, fixture_name: &str) -> Answer {
    json_answer(status, &fixture(fixture_name))
}

/// `wait_timeout` as documented: `0s`, or 5 to 50 seconds.
fn valid_wait_timeout(v: &str) -> bool {
    v.strip_suffix('s')
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n == 0 || (5..=50).contains(&n))
}

impl State {
    fn answer(&mut self, req: &Request) -> Answer {
        if self.throttled < self.config.throttle {
            self.throttled += 1;
            let (s, mut h, b) = error(429, "error_request_limit_exceeded.json");
            h.push(("Retry-After", "0".into()));
            return (s, h, b);
        }
        let expected = format!("Bearer {}", self.config.token);
        if req.headers.get("authorization") != Some(&expected) {
            return error(401, "error_unauthenticated.json");
        }
        const STATEMENTS: &str = "/api/2.0/sql/statements";
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", STATEMENTS) => {
                let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                    return error(400, "error_invalid_parameter_value.json");
                };
                let str_of = |k: &str| body.get(k).and_then(Value::as_str);
                let ok = str_of("warehouse_id").is_some_and(|w| !w.is_empty())
                    && str_of("statement").is_some_and(|s| !s.is_empty())
                    && str_of("wait_timeout").is_none_or(valid_wait_timeout)
                    && str_of("on_wait_timeout").is_none_or(|v| v == "CONTINUE" || v == "CANCEL")
                    && str_of("disposition") == Some("INLINE")
                    && str_of("format") == Some("JSON_ARRAY");
                if !ok {
                    return error(400, "error_invalid_parameter_value.json");
                }
                self.polls = 0;
                let answer = self.statement_fixture();
                self.statement_id = answer["statement_id"].as_str().map(str::to_string);
                json_answer(200, &answer)
            }
            ("GET", p) if p.starts_with(STATEMENTS) => {
                let id = &p[STATEMENTS.len()..].trim_start_matches('/');
                if Some(id.to_string()) != self.statement_id {
                    return error(404, "mlflow_resource_does_not_exist.json");
                }
                self.polls += 1;
                json_answer(200, &self.statement_fixture())
            }
            ("POST", p) if p.starts_with(STATEMENTS) && p.ends_with("/cancel") => {
                json_answer(200, &serde_json::json!({}))
            }
            ("GET", p) if p.starts_with("/api/2.0/mlflow/") => {
                let (Some(name), Some(version)) = (req.query.get("name"), req.query.get("version"))
                else {
                    return error(400, "error_invalid_parameter_value.json");
                };
                let found = self
                    .config
                    .models
                    .iter()
                    .find(|(path, n, v, _)| *path == p && n == name && v == version);
                match found {
                    Some((_, _, _, f)) => json_answer(200, &fixture(f)),
                    None => error(404, "mlflow_resource_does_not_exist.json"),
                }
            }
            _ => error(404, "mlflow_resource_does_not_exist.json"),
        }
    }

    fn statement_fixture(&self) -> Value {
        let s = &self.config.statement;
        fixture(s[self.polls.min(s.len() - 1)])
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else if b[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q),
        None => (target.clone(), ""),
    };
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

fn write_response(
    mut conn: TcpStream,
    status: u16,
    headers: &[(&'static str, String)],
    body: &[u8],
) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
    let _ = conn.flush();
}
