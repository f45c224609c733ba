//! A local stand-in for Snowflake's SQL API v2, built from the documentation, for tests (and for
//! `cargo run --example snowflake_standin`). It is not Snowflake: it answers the statements Clyra
//! sends, and a few test statements, from the recorded JSON fixtures in
//! `tests/fixtures/snowflake/` (constructed from the documented response shapes).
//!
//! What it does as the documentation says:
//! - `POST /api/v2/statements?requestId=<uuid>`: 200 `ResultSet`, 202 `QueryStatus`,
//!   422 `QueryFailureStatus` (`code`, `message`, `sqlState`, `statementHandle`); a request id
//!   seen before gets the answer it got the first time (no second execution).
//! - `GET /api/v2/statements/{handle}[?partition=N]`: 202 while running, then the result;
//!   partitions after the first are gzipped when the client accepts gzip.
//! - `Authorization: Bearer` with `X-Snowflake-Authorization-Token-Type` `KEYPAIR_JWT` (RS256
//!   signature checked with the registered public key, `iss` = `ACCOUNT.USER.SHA256:<fp>`,
//!   `sub` = `ACCOUNT.USER`, not expired, at most one hour long) or `OAUTH` (the configured token);
//!   failures answer 401 with the fixture body and record why.
//! - 429 with `Retry-After: 0` for the first `throttle` requests.
//! - `SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY`: the recorded rows plus the statements this server
//!   ran, each visible `history_lag` after it ended, filtered by the bound query ids.
//!
//! Test statements: `SELECT N, LABEL FROM STANDIN_GENERATOR` (3 partitions),
//! `CALL SYSTEM$WAIT(2)` (202 for `pending_polls` polls), `SELECT * FROM NO_SUCH_TABLE` (422,
//! 42S02); anything else gets the 422 syntax error fixture.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use base64::Engine as _;
use rsa::pkcs8::{DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use clyra_warehouse::snowflake::{
    query_history_sql, QUERY_HISTORY_SQL_PREFIX, SESSION_CONTEXT_SQL,
};

pub const GENERATOR_SQL: &str = "SELECT N, LABEL FROM STANDIN_GENERATOR";
pub const WAIT_SQL: &str = "CALL SYSTEM$WAIT(2)";
pub const MISSING_TABLE_SQL: &str = "SELECT * FROM NO_SUCH_TABLE";

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../fixtures/snowflake/", $name))
    };
}

fn fixture(name: &str) -> Value {
    let text = match name {
        "session_context" => fixture!("session_context.json"),
        "query_history" => fixture!("query_history.json"),
        "generator_partitions" => fixture!("generator_partitions.json"),
        "generator_partitions.partition-1" => fixture!("generator_partitions.partition-1.json"),
        "generator_partitions.partition-2" => fixture!("generator_partitions.partition-2.json"),
        "query_status_running" => fixture!("query_status_running.json"),
        "wait_result" => fixture!("wait_result.json"),
        "error_object_does_not_exist" => fixture!("error_object_does_not_exist.json"),
        "error_syntax" => fixture!("error_syntax.json"),
        "error_query_history_not_authorized" => {
            fixture!("error_query_history_not_authorized.json")
        }
        "error_jwt_invalid" => fixture!("error_jwt_invalid.json"),
        "error_oauth_invalid" => fixture!("error_oauth_invalid.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

/// An RSA key pair for tests: the private key as PKCS#8 PEM, the public key as SPKI DER.
#[derive(Clone)]
pub struct TestKey {
    pub private_pem: String,
    pub spki_der: Vec<u8>,
}

impl TestKey {
    pub fn generate() -> TestKey {
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        TestKey {
            private_pem: key
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap()
                .to_string(),
            spki_der: key
                .to_public_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec(),
        }
    }

    /// One key per test process (2048-bit generation takes a moment).
    pub fn shared() -> &'static TestKey {
        static K: OnceLock<TestKey> = OnceLock::new();
        K.get_or_init(TestKey::generate)
    }

    /// A second, different key.
    pub fn other() -> &'static TestKey {
        static K: OnceLock<TestKey> = OnceLock::new();
        K.get_or_init(TestKey::generate)
    }

    /// Writes the private key to `dir/name` with mode 0600.
    pub fn write_private(&self, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            o.mode(0o600);
        }
        o.open(&p)
            .unwrap()
            .write_all(self.private_pem.as_bytes())
            .unwrap();
        p
    }

    /// `SHA256:<base64>`, computed here independently of the client.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&self.spki_der))
        )
    }
}

/// How the stand-in behaves.
#[derive(Clone)]
pub struct Config {
    /// The account and user the JWT claims must name (upper case).
    pub account: String,
    pub user: String,
    /// The registered public key (SPKI DER); `None`: key-pair JWTs are refused.
    pub public_key_der: Option<Vec<u8>>,
    /// The accepted OAuth token.
    pub oauth_token: Option<String>,
    /// The first `throttle` requests answer 429.
    pub throttle: u32,
    /// `CALL SYSTEM$WAIT(2)` answers 202 to the POST and to this many polls minus one.
    pub pending_polls: u32,
    /// Added to the server's clock (seconds): a positive value makes fresh JWTs look old.
    pub clock_offset_s: i64,
    /// Statements this server ran appear in QUERY_HISTORY this long (seconds) after they end.
    pub history_lag_s: i64,
    /// QUERY_HISTORY is refused, as for a role without IMPORTED PRIVILEGES on SNOWFLAKE.
    pub history_denied: bool,
}

impl Config {
    pub fn new(key: &TestKey) -> Config {
        Config {
            account: "XY12345".into(),
            user: "CI_BOT".into(),
            public_key_der: Some(key.spki_der.clone()),
            oauth_token: None,
            throttle: 0,
            pending_polls: 0,
            clock_offset_s: 0,
            history_lag_s: 0,
            history_denied: false,
        }
    }
}

/// A request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub token_type: Option<String>,
    pub accept_gzip: bool,
    pub body: Option<Value>,
    pub status: u16,
    pub gzipped: bool,
}

struct Executed {
    handle: String,
    session: Vec<Option<String>>,
    start_us: i64,
    end_us: i64,
}

struct Pending {
    polls_left: u32,
    result: Value,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    rejections: Vec<String>,
    by_request_id: HashMap<String, (u16, Value)>,
    pending: HashMap<String, Pending>,
    partitions: HashMap<String, Vec<Value>>,
    executed: Vec<Executed>,
    counter: u64,
}

pub struct StandIn {
    pub url: String,
    config: Arc<Mutex<Config>>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    pub fn start(config: Config) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = Arc::new(Mutex::new(config));
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, st) = (config.clone(), state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let _ = serve(conn, &c, &s);
                }
            }
        });
        StandIn {
            url,
            config,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn config(&self) -> std::sync::MutexGuard<'_, Config> {
        self.config.lock().unwrap()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Why requests were refused (`signature`, `expired`, ...).
    pub fn rejections(&self) -> Vec<String> {
        self.state.lock().unwrap().rejections.clone()
    }

    /// Blocks until the process is killed (for the example).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now_us(offset_s: i64) -> i64 {
    jiff::Timestamp::now().as_microsecond() + offset_s * 1_000_000
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(conn: &mut TcpStream) -> std::io::Result<Request> {
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let (path, qs) = target.split_once('?').unwrap_or((&target, ""));
    let query = qs
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok(Request {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    gzip: bool,
    retry_after: bool,
}

impl Answer {
    fn json(status: u16, v: &Value) -> Answer {
        Answer {
            status,
            body: serde_json::to_vec(v).unwrap(),
            gzip: false,
            retry_after: false,
        }
    }
}

fn serve(mut conn: TcpStream, config: &Mutex<Config>, state: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let req = read_request(&mut conn)?;
    let cfg = config.lock().unwrap().clone();
    let accept_gzip = req
        .headers
        .get("accept-encoding")
        .is_some_and(|v| v.contains("gzip"));
    let answer = {
        let mut st = state.lock().unwrap();
        let a = handle(&req, &cfg, &mut st, config);
        st.seen.push(Seen {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            token_type: req
                .headers
                .get("x-snowflake-authorization-token-type")
                .cloned(),
            accept_gzip,
            body: serde_json::from_slice(&req.body).ok(),
            status: a.status,
            gzipped: a.gzip && accept_gzip,
        });
        a
    };
    let mut body = answer.body;
    let mut extra = String::new();
    if answer.gzip && accept_gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body)?;
        body = enc.finish()?;
        extra.push_str("Content-Encoding: gzip\r\n");
    }
    if answer.retry_after {
        extra.push_str("Retry-After: 0\r\n");
    }
    let reason = match answer.status {
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        _ => "Bad Request",
    };
    write!(
        conn,
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        answer.status,
        body.len()
    )?;
    conn.write_all(&body)?;
    conn.flush()
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

/// Checks the credentials; `Err(reason)` when refused.
fn authenticate(req: &Request, cfg: &Config) -> Result<(), String> {
    let token = req
        .headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("no bearer token")?;
    match req
        .headers
        .get("x-snowflake-authorization-token-type")
        .map(String::as_str)
    {
        Some("OAUTH") => match &cfg.oauth_token {
            Some(t) if t == token => Ok(()),
            _ => Err("oauth token".into()),
        },
        Some("KEYPAIR_JWT") => {
            let der = cfg
                .public_key_der
                .as_ref()
                .ok_or("no public key registered")?;
            let parts: Vec<&str> = token.split('.').collect();
            if parts.len() != 3 {
                return Err("malformed".into());
            }
            let header: Value = serde_json::from_slice(&b64url(parts[0]).ok_or("header b64")?)
                .map_err(|_| "header json")?;
            if header["alg"] != "RS256" {
                return Err("alg".into());
            }
            let pk = rsa::RsaPublicKey::from_public_key_der(der).unwrap();
            let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(pk);
            let sig_bytes = b64url(parts[2]).ok_or("signature b64")?;
            let sig = rsa::pkcs1v15::Signature::try_from(sig_bytes.as_slice())
                .map_err(|_| "signature")?;
            rsa::signature::Verifier::verify(
                &vk,
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &sig,
            )
            .map_err(|_| "signature")?;
            let claims: Value = serde_json::from_slice(&b64url(parts[1]).ok_or("claims b64")?)
                .map_err(|_| "claims json")?;
            let fp = format!(
                "SHA256:{}",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(der))
            );
            if claims["iss"] != format!("{}.{}.{fp}", cfg.account, cfg.user) {
                return Err(format!("iss {}", claims["iss"]));
            }
            if claims["sub"] != format!("{}.{}", cfg.account, cfg.user) {
                return Err(format!("sub {}", claims["sub"]));
            }
            let (iat, exp) = (
                claims["iat"].as_i64().ok_or("iat")?,
                claims["exp"].as_i64().ok_or("exp")?,
            );
            let now = now_us(cfg.clock_offset_s) / 1_000_000;
            if exp <= now {
                return Err("expired".into());
            }
            if iat > now + 60 {
                return Err("issued in the future".into());
            }
            if exp - iat > 3600 {
                return Err("lifetime over one hour".into());
            }
            Ok(())
        }
        other => Err(format!("token type {other:?}")),
    }
}

fn new_handle(st: &mut State) -> String {
    st.counter += 1;
    format!("01c0ffee-0000-4000-8000-{:012x}", st.counter)
}

/// Gives a fixture result a fresh handle and request id.
fn stamp(mut v: Value, handle: &str, rid: &str) -> Value {
    v["statementHandle"] = json!(handle);
    v["requestId"] = json!(rid);
    v["statementStatusUrl"] = json!(format!("/api/v2/statements/{handle}?requestId={rid}"));
    v["createdOn"] = json!(now_us(0) / 1000);
    v
}

fn failure(name: &str, handle: &str) -> Answer {
    let mut v = fixture(name);
    v["statementHandle"] = json!(handle);
    v["statementStatusUrl"] = json!(format!("/api/v2/statements/{handle}"));
    Answer::json(422, &v)
}

fn handle(req: &Request, cfg: &Config, st: &mut State, config: &Mutex<Config>) -> Answer {
    if let Err(reason) = authenticate(req, cfg) {
        st.rejections.push(reason);
        let name = if req
            .headers
            .get("x-snowflake-authorization-token-type")
            .map(String::as_str)
            == Some("OAUTH")
        {
            "error_oauth_invalid"
        } else {
            "error_jwt_invalid"
        };
        return Answer::json(401, &fixture(name));
    }
    if cfg.throttle > 0 {
        config.lock().unwrap().throttle -= 1;
        return Answer {
            status: 429,
            body: Vec::new(),
            gzip: false,
            retry_after: true,
        };
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/v2/statements") => {
            let rid = req.query.get("requestId").cloned().unwrap_or_default();
            if let Some((status, v)) = st.by_request_id.get(&rid) {
                return Answer::json(*status, v);
            }
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return Answer::json(
                    400,
                    &json!({"code": "390142", "message": "Incoming request does not contain a valid payload."}),
                );
            };
            let (status, v) = post(&body, &rid, cfg, st);
            st.by_request_id.insert(rid, (status, v.clone()));
            Answer::json(status, &v)
        }
        ("GET", p) if p.starts_with("/api/v2/statements/") => {
            let handle = &p["/api/v2/statements/".len()..];
            if let Some(part) = req
                .query
                .get("partition")
                .and_then(|n| n.parse::<usize>().ok())
            {
                if part > 0 {
                    return match st.partitions.get(handle).and_then(|ps| ps.get(part - 1)) {
                        Some(v) => Answer {
                            gzip: true,
                            ..Answer::json(200, v)
                        },
                        None => Answer::json(
                            404,
                            &json!({"code": "000404", "message": "no such partition"}),
                        ),
                    };
                }
            }
            match st.pending.get_mut(handle) {
                Some(p) if p.polls_left > 0 => {
                    p.polls_left -= 1;
                    let mut v = fixture("query_status_running");
                    v["statementHandle"] = json!(handle);
                    v["statementStatusUrl"] = json!(format!("/api/v2/statements/{handle}"));
                    Answer::json(202, &v)
                }
                Some(p) => Answer::json(200, &p.result.clone()),
                None => Answer::json(
                    422,
                    &json!({"code": "000709", "message": format!("Statement {handle} not found"), "sqlState": "02000"}),
                ),
            }
        }
        _ => Answer::json(404, &json!({"code": "000404", "message": "not found"})),
    }
}

fn text_binding(body: &Value, i: usize) -> Option<String> {
    body["bindings"][i.to_string()]["value"]
        .as_str()
        .map(str::to_string)
}

fn post(body: &Value, rid: &str, cfg: &Config, st: &mut State) -> (u16, Value) {
    let sql = body["statement"].as_str().unwrap_or("");
    let handle = new_handle(st);
    let now = now_us(0);
    if sql == SESSION_CONTEXT_SQL {
        let mut v = stamp(fixture("session_context"), &handle, rid);
        let row = v["data"][0].as_array_mut().unwrap();
        for (i, key) in [
            (4, "warehouse"),
            (5, "role"),
            (6, "database"),
            (7, "schema"),
        ] {
            if let Some(s) = body[key].as_str() {
                row[i] = json!(s.to_uppercase());
            }
        }
        row[2] = json!(cfg.user);
        row[9] = json!(now.to_string());
        let session: Vec<Option<String>> =
            row.iter().map(|x| x.as_str().map(str::to_string)).collect();
        st.executed.push(Executed {
            handle: handle.clone(),
            session,
            start_us: now - 40_000,
            end_us: now_us(0),
        });
        return (200, v);
    }
    if sql.starts_with(QUERY_HISTORY_SQL_PREFIX) {
        if cfg.history_denied {
            return (
                422,
                failure("error_query_history_not_authorized", &handle).json_value(),
            );
        }
        let marks = sql.matches('?').count();
        let nbind = body["bindings"].as_object().map_or(0, |b| b.len());
        // Only the exact text Clyra generates, with every value bound.
        if marks < 2 || nbind != marks || sql != query_history_sql(marks - 1) {
            return (422, failure("error_syntax", &handle).json_value());
        }
        let ids: Vec<String> = (1..marks)
            .filter_map(|i| text_binding(body, i))
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let since: i64 = body["bindings"][marks.to_string()]["value"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(i64::MIN);
        let mut v = stamp(fixture("query_history"), &handle, rid);
        let mut rows: Vec<Value> = v["data"].as_array().unwrap().clone();
        let visible_before = now - cfg.history_lag_s * 1_000_000;
        for e in &st.executed {
            if e.end_us > visible_before {
                continue;
            }
            let s = |i: usize| json!(e.session[i]);
            rows.push(json!([
                e.handle,
                "5e1f00d0c0ffee0011223344556677aa",
                "5e1f00d0c0ffee0011223344556677aa",
                s(3),
                s(2),
                s(5),
                s(4),
                s(6),
                s(7),
                "SELECT",
                "SUCCESS",
                null,
                e.start_us.to_string(),
                e.end_us.to_string(),
                "1",
                "0",
                "0",
                "0"
            ]));
        }
        rows.retain(|r| {
            let id = r[0].as_str().unwrap_or("").to_ascii_lowercase();
            let start: i64 = r[12].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
            ids.contains(&id) && start >= since
        });
        rows.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
        let n = rows.len();
        v["data"] = json!(rows);
        v["resultSetMetaData"]["numRows"] = json!(n);
        v["resultSetMetaData"]["partitionInfo"] =
            json!([{"rowCount": n, "uncompressedSize": 100 * n}]);
        return (200, v);
    }
    match sql {
        GENERATOR_SQL => {
            let v = stamp(fixture("generator_partitions"), &handle, rid);
            st.partitions.insert(
                handle,
                vec![
                    fixture("generator_partitions.partition-1"),
                    fixture("generator_partitions.partition-2"),
                ],
            );
            (200, v)
        }
        WAIT_SQL => {
            let result = stamp(fixture("wait_result"), &handle, rid);
            if cfg.pending_polls == 0 {
                return (200, result);
            }
            st.pending.insert(
                handle.clone(),
                Pending {
                    polls_left: cfg.pending_polls - 1,
                    result,
                },
            );
            let mut v = fixture("query_status_running");
            v["statementHandle"] = json!(handle);
            v["statementStatusUrl"] = json!(format!("/api/v2/statements/{handle}"));
            (202, v)
        }
        MISSING_TABLE_SQL => (
            422,
            failure("error_object_does_not_exist", &handle).json_value(),
        ),
        _ => (422, failure("error_syntax", &handle).json_value()),
    }
}

impl Answer {
    fn json_value(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}
