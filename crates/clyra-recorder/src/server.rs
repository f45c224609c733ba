//! The HTTP service: routes, authentication of each request, validation, the bounded queue in
//! front of the writer, and graceful shutdown.
//!
//! | route | auth | answers |
//! |---|---|---|
//! | `POST /v1/events` | HMAC | 200 receipts; 400 bad JSON or UTF-8; 401 auth; 409 replayed nonce; 413 body too large; 422 invalid event; 503 queue full or journal unavailable (`Retry-After: 1`); 500 journal error |
//! | `GET /v1/head` | HMAC | 200 `{tenant, size, head}` of the authenticated tenant |
//! | `GET /v1/entries/{seq}` | HMAC | 200 the stored canonical entry bytes; 404 no such entry in the tenant's journal |
//! | `GET /healthz` | none | 200 when the writer runs and the journal answers, else 503 |
//! | `GET /metrics` | none | Prometheus text format 0.0.4 |
//! | `GET /openapi.json` | none | the OpenAPI 3.1 document |
//!
//! Every error is `{"error": {"code", "message", "pointer"?, "line"?, "column"?}}`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clyra_evidence::jcs::{self, JcsError};
use clyra_journal::entry::EventError;
use clyra_journal::{BodyPolicy, NewEvent, Receipt, Store, StoreError};
use http_body_util::BodyExt as _;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::auth::{self, NonceCache, NonceError, SignedParts};
use crate::checkpointer::{self, CheckpointConfig, Stop};
use crate::metrics::Metrics;
use crate::tenants::Tenants;
use crate::writer::{self, Job};
use crate::Error;

/// How the recorder runs. [`Config::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tenants and their keys.
    pub tenants: Tenants,
    /// How much of each event body the journal keeps (default: hash only).
    pub body_policy: BodyPolicy,
    /// Largest request body accepted, in bytes (default 1 MiB); larger ones get 413.
    pub max_body_bytes: usize,
    /// Most events in one request (default 1000).
    pub max_batch_events: usize,
    /// Most events queued or being committed at once (default 10000); beyond it requests get 503.
    pub queue_events: usize,
    /// Most events in one journal transaction (default 2048).
    pub commit_max_events: usize,
    /// Accepted difference between a request's timestamp and the server's clock (default 300 s).
    pub clock_skew_secs: u64,
    /// Most nonces remembered at once (default 1,000,000); beyond it requests get 503.
    pub max_nonces: usize,
    /// Sign a checkpoint of each grown tenant journal periodically and at shutdown (default off).
    pub checkpoint: Option<CheckpointConfig>,
}

impl Config {
    /// The defaults, for `tenants`.
    pub fn new(tenants: Tenants) -> Self {
        Config {
            tenants,
            body_policy: BodyPolicy::Hash,
            max_body_bytes: 1 << 20,
            max_batch_events: 1000,
            queue_events: 10_000,
            commit_max_events: 2048,
            clock_skew_secs: 300,
            max_nonces: 1_000_000,
            checkpoint: None,
        }
    }

    fn check(&self) -> Result<(), Error> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_batch_events", self.max_batch_events),
            ("queue_events", self.queue_events),
            ("commit_max_events", self.commit_max_events),
            ("max_nonces", self.max_nonces),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::Config(format!("{name} must be at least 1")));
            }
        }
        if self.queue_events < self.max_batch_events {
            return Err(Error::Config(format!(
                "the queue ({} events) must hold at least one full batch ({} events)",
                self.queue_events, self.max_batch_events
            )));
        }
        if u32::try_from(self.queue_events).is_err() {
            return Err(Error::Config("queue_events is too large".into()));
        }
        Ok(())
    }
}

struct AppState {
    tenants: Tenants,
    clock_skew_secs: u64,
    max_body_bytes: usize,
    max_batch_events: usize,
    queue_events: usize,
    nonces: NonceCache,
    queue: mpsc::UnboundedSender<Job>,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    writer_alive: Arc<AtomicBool>,
    /// The read connection; taken out and closed on a blocking thread at shutdown (the Postgres
    /// client must not be dropped on an async thread).
    reader: Arc<Mutex<Option<Box<dyn Store>>>>,
}

/// A recorder with its journal open and its writer thread running, ready to serve.
pub struct Recorder {
    state: Arc<AppState>,
    writer: std::thread::JoinHandle<()>,
    checkpointer: Option<(std::thread::JoinHandle<()>, Arc<Stop>)>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("tenants", &self.state.tenants.names())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Opens the journal at `store_url` (twice: one connection for the writer, one for reads) and
    /// starts the writer thread. Call it (and drop an unserved `Recorder`) outside any async
    /// runtime: the Postgres client is blocking and must not be dropped on an async thread.
    /// [`Recorder::serve`] closes both connections on blocking threads itself.
    pub fn open(config: Config, store_url: &str) -> Result<Self, Error> {
        config.check()?;
        let write_store = clyra_journal::open(store_url)?;
        let read_store = clyra_journal::open(store_url)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::default());
        let alive = Arc::new(AtomicBool::new(true));
        let writer = {
            let metrics = Arc::clone(&metrics);
            let alive = Arc::clone(&alive);
            let policy = config.body_policy.clone();
            let max = config.commit_max_events;
            std::thread::Builder::new()
                .name("clyra-journal-writer".into())
                .spawn(move || writer::run(write_store, policy, max, rx, metrics, alive))
                .map_err(|source| Error::Io {
                    path: "writer thread".into(),
                    source,
                })?
        };
        let checkpointer = match config.checkpoint.clone() {
            None => None,
            Some(cfg) => {
                let store = clyra_journal::open(store_url)?;
                let stop = Arc::new(Stop::default());
                let (stop2, metrics2) = (Arc::clone(&stop), Arc::clone(&metrics));
                let handle = std::thread::Builder::new()
                    .name("clyra-checkpointer".into())
                    .spawn(move || checkpointer::run(store, cfg, stop2, metrics2))
                    .map_err(|source| Error::Io {
                        path: "checkpointer thread".into(),
                        source,
                    })?;
                Some((handle, stop))
            }
        };
        let state = AppState {
            nonces: NonceCache::new(config.clock_skew_secs, config.max_nonces),
            tenants: config.tenants,
            clock_skew_secs: config.clock_skew_secs,
            max_body_bytes: config.max_body_bytes,
            max_batch_events: config.max_batch_events,
            queue_events: config.queue_events,
            queue: tx,
            permits: Arc::new(Semaphore::new(config.queue_events)),
            metrics,
            writer_alive: alive,
            reader: Arc::new(Mutex::new(Some(read_store))),
        };
        Ok(Recorder {
            state: Arc::new(state),
            writer,
            checkpointer,
        })
    }

    /// The recorder's metrics (the same numbers `/metrics` shows).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.state.metrics)
    }

    /// Serves on `listener` until `shutdown` completes; then stops accepting, lets in-flight
    /// requests finish, lets the writer commit everything queued, and returns.
    pub async fn serve<F>(self, listener: tokio::net::TcpListener, shutdown: F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let addr = listener
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        let Recorder {
            state,
            writer,
            checkpointer,
        } = self;
        let reader = Arc::clone(&state.reader);
        let app = router(state);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        // Every handler (and its queue sender) is gone: the writer drains the queue and ends.
        let joined = tokio::task::spawn_blocking(move || {
            let store = match reader.lock() {
                Ok(mut g) => g.take(),
                Err(poisoned) => poisoned.into_inner().take(),
            };
            drop(store);
            let written = writer.join();
            // After the writer: the last checkpoint covers every acknowledged entry.
            if let Some((handle, stop)) = checkpointer {
                stop.stop();
                let _ = handle.join();
            }
            written
        })
        .await;
        served.map_err(|source| Error::Listen { addr, source })?;
        match joined {
            Ok(Ok(())) => Ok(()),
            _ => Err(Error::Writer),
        }
    }

    /// Runs the recorder on its own runtime: binds `listen`, calls `on_listening` with the bound
    /// address, and serves until SIGTERM or SIGINT (then shuts down gracefully).
    pub fn run(self, listen: &str, on_listening: impl FnOnce(SocketAddr)) -> Result<(), Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("clyra-recorder")
            .build()
            .map_err(|source| Error::Io {
                path: "tokio runtime".into(),
                source,
            })?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|source| Error::Listen {
                    addr: listen.to_string(),
                    source,
                })?;
            let addr = listener.local_addr().map_err(|source| Error::Listen {
                addr: listen.to_string(),
                source,
            })?;
            on_listening(addr);
            self.serve(listener, shutdown_signal()).await
        })
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/head", get(get_head))
        .route("/v1/entries/{seq}", get(get_entry))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            count_requests,
        ))
        .with_state(state)
}

/// The reason code of an error response, for the rejects metric.
#[derive(Debug, Clone, Copy)]
struct Reason(&'static str);

async fn count_requests(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    st.metrics.request(resp.status().as_u16());
    if let Some(r) = resp.extensions().get::<Reason>() {
        st.metrics.reject(r.0);
    }
    resp
}

/// An error answer: status, stable code, message and, where known, the location.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    pointer: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    retry_after: bool,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            pointer: None,
            line: None,
            column: None,
            retry_after: false,
        }
    }

    fn at(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    fn retry(mut self) -> Self {
        self.retry_after = true;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = Map::new();
        err.insert("code".into(), Value::from(self.code));
        err.insert("message".into(), Value::from(self.message));
        if let Some(p) = self.pointer {
            err.insert("pointer".into(), Value::from(p));
        }
        if let Some(l) = self.line {
            err.insert("line".into(), Value::from(l));
        }
        if let Some(c) = self.column {
            err.insert("column".into(), Value::from(c));
        }
        let body = json!({ "error": Value::Object(err) }).to_string();
        let mut resp = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp.extensions_mut().insert(Reason(self.code));
        resp
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        value.to_string(),
    )
        .into_response()
}

fn unix_now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// A request that passed authentication.
struct Authed {
    tenant: String,
    body: Bytes,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    let v = headers.get(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_header",
            format!("missing header `{name}`"),
        )
    })?;
    v.to_str()
        .map_err(|_| malformed(name, "must be visible ASCII"))
}

fn malformed(name: &str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "malformed_header",
        format!("header `{name}`: {why}"),
    )
}

fn bad_signature() -> ApiError {
    // The same answer for an unknown tenant, an unknown key and a wrong MAC: tenants and key ids
    // cannot be probed.
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "bad_signature",
        "the signature does not verify",
    )
}

/// Used for unknown tenants and keys so that they cost as much as known ones.
const DUMMY_SECRET: &[u8; 32] = b"clyra-recorder-no-such-key-00000";

async fn authenticate(st: &AppState, parts: &Parts, body: Body) -> Result<Authed, ApiError> {
    let h = &parts.headers;
    let tenant = header_str(h, auth::HEADER_TENANT)?;
    let key_id = header_str(h, auth::HEADER_KEY_ID)?;
    let ts_text = header_str(h, auth::HEADER_TIMESTAMP)?;
    let nonce = header_str(h, auth::HEADER_NONCE)?;
    let signature = header_str(h, auth::HEADER_SIGNATURE)?;
    let timestamp: i64 = ts_text
        .parse()
        .ok()
        .filter(|_| !ts_text.starts_with('+') && ts_text.len() <= 19)
        .ok_or_else(|| malformed(auth::HEADER_TIMESTAMP, "must be unix seconds"))?;
    if !auth::valid_nonce(nonce) {
        return Err(malformed(
            auth::HEADER_NONCE,
            "must be 16 to 64 characters of A-Z, a-z, 0-9, _ and -",
        ));
    }
    if !signature.starts_with(auth::SIGNATURE_PREFIX) {
        return Err(malformed(
            auth::HEADER_SIGNATURE,
            "must be `v1=` followed by the lowercase hex HMAC-SHA256",
        ));
    }
    let body = read_body(h, body, st.max_body_bytes).await?;
    let now = unix_now();
    let skew = i64::try_from(st.clock_skew_secs).unwrap_or(i64::MAX);
    if now.abs_diff(timestamp) > skew.unsigned_abs() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
            format!("timestamp {timestamp} is more than {skew} s from the server's clock ({now})"),
        ));
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |p| p.as_str());
    let signed = SignedParts {
        method: parts.method.as_str(),
        path_and_query,
        tenant,
        key_id,
        timestamp,
        nonce,
        body: &body,
    };
    let known = st.tenants.secret(tenant, key_id);
    let secret = known.map_or(&DUMMY_SECRET[..], |s| s.as_bytes());
    if !(auth::verify(secret, &signed, signature) && known.is_some()) {
        return Err(bad_signature());
    }
    match st.nonces.check_and_insert(tenant, nonce, now) {
        Ok(()) => {}
        Err(NonceError::Replayed) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "nonce_replayed",
                "this nonce was already used; sign every request with a fresh nonce",
            ))
        }
        Err(NonceError::Full) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "nonce_cache_full",
                "too many requests within the replay window; retry later",
            )
            .retry())
        }
    }
    Ok(Authed {
        tenant: tenant.to_string(),
        body,
    })
}

async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_unreadable",
            format!("cannot read the request body: {e}"),
        )),
    }
}

fn json_error(e: &JcsError) -> ApiError {
    let code = match e {
        JcsError::InvalidUtf8 { .. } => "invalid_utf8",
        _ => "malformed_json",
    };
    let mut err = ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string());
    if let Some(at) = e.location() {
        err.pointer = Some(at.pointer.clone());
        err.line = Some(at.line);
        err.column = Some(at.column);
    }
    err
}

fn event_error(e: &EventError) -> ApiError {
    let pointer = match e {
        EventError::Missing { pointer }
        | EventError::Invalid { pointer, .. }
        | EventError::Unknown { pointer } => Some(pointer.clone()),
        _ => None,
    };
    let mut err = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_event",
        e.to_string(),
    );
    err.pointer = pointer;
    err
}

/// Reads one event or `{"events": [...]}` for `tenant`, validating every event.
fn parse_events(tenant: &str, value: &Value, max: usize) -> Result<Vec<NewEvent>, ApiError> {
    let Some(batch) = value.as_object().filter(|m| m.contains_key("events")) else {
        return Ok(vec![
            NewEvent::from_wire(tenant, value, "").map_err(|e| event_error(&e))?
        ]);
    };
    if let Some(k) = batch.keys().find(|k| k.as_str() != "events") {
        let pointer = format!("/{}", k.replace('~', "~0").replace('/', "~1"));
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
            format!("{pointer}: unknown member (a batch has only `events`)"),
        )
        .at(pointer));
    }
    let Some(items) = batch.get("events").and_then(Value::as_array) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
            "/events: must be an array of events",
        )
        .at("/events"));
    };
    if items.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
            "/events: must hold at least one event",
        )
        .at("/events"));
    }
    if items.len() > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_too_large",
            format!("/events: {} events, at most {max} per request", items.len()),
        )
        .at("/events"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            NewEvent::from_wire(tenant, v, &format!("/events/{i}")).map_err(|e| event_error(&e))
        })
        .collect()
}

fn receipt_json(r: &Receipt) -> Value {
    let mut m = Map::new();
    m.insert("seq".into(), Value::from(r.seq));
    m.insert("hash".into(), Value::from(r.hash.to_hex()));
    if let Some(rs) = r.run_seq {
        m.insert("run_seq".into(), Value::from(rs));
    }
    m.insert("duplicate".into(), Value::from(r.duplicate));
    Value::Object(m)
}

fn store_error(e: &StoreError) -> ApiError {
    match e {
        StoreError::Sqlite(_) | StoreError::Postgres(_) | StoreError::Io { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("the journal did not commit (nothing was written; retry): {e}"),
        )
        .retry(),
        _ => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            format!("the journal did not commit (nothing was written): {e}"),
        ),
    }
}

async fn post_events(State(st): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let authed = authenticate(&st, &parts, body).await?;
    let value = jcs::parse_strict(&authed.body).map_err(|e| json_error(&e))?;
    let events = parse_events(&authed.tenant, &value, st.max_batch_events)?;
    let queue_full = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "the recorder's queue is full; retry later",
        )
        .retry()
    };
    let n = u32::try_from(events.len()).map_err(|_| queue_full())?;
    let permit = Arc::clone(&st.permits)
        .try_acquire_many_owned(n)
        .map_err(|_| queue_full())?;
    let (tx, rx) = oneshot::channel();
    st.queue
        .send(Job {
            events,
            reply: tx,
            permit,
        })
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the journal writer has stopped",
            )
            .retry()
        })?;
    let reply = rx.await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the journal writer stopped before answering",
        )
        .retry()
    })?;
    let receipts = reply.map_err(|e| store_error(&e))?;
    st.metrics.ack(start.elapsed().as_secs_f64());
    let receipts: Vec<Value> = receipts.iter().map(receipt_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "receipts": receipts }),
    ))
}

/// Runs `f` on the read connection, off the async threads.
async fn with_reader<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let reader = Arc::clone(&st.reader);
    let joined = tokio::task::spawn_blocking(move || {
        let mut guard = match reader.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match guard.as_mut() {
            Some(store) => f(store.as_mut()),
            None => Err(StoreError::Config("the recorder is shutting down".into())),
        }
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(store_error(&e)),
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            "the journal read failed",
        )),
    }
}

async fn get_head(State(st): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let authed = authenticate(&st, &parts, body).await?;
    let tenant = authed.tenant.clone();
    let head = with_reader(&st, move |s| s.head(&tenant)).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "tenant": authed.tenant, "size": head.size, "head": head.head.to_hex() }),
    ))
}

async fn get_entry(
    State(st): State<Arc<AppState>>,
    Path(seq): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let authed = authenticate(&st, &parts, body).await?;
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no entry `{seq}` in this tenant's journal"),
        )
    };
    let Some(n) = seq
        .parse::<u64>()
        .ok()
        .filter(|_| seq.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Err(missing());
    };
    let tenant = authed.tenant;
    let found = with_reader(&st, move |s| {
        let mut found = None;
        s.scan(&tenant, n, n.saturating_add(1), &mut |e| {
            found = Some(e.canonical);
            Ok(())
        })?;
        Ok(found)
    })
    .await?;
    let bytes = found.ok_or_else(missing)?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response())
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let writer = st.writer_alive.load(Ordering::SeqCst);
    let store = with_reader(&st, |s| s.head("healthz").map(|_| ()))
        .await
        .is_ok();
    let ok = writer && store;
    json_response(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &json!({ "status": if ok { "ok" } else { "unavailable" }, "writer": writer, "store": store }),
    )
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let depth = st
        .queue_events
        .saturating_sub(st.permits.available_permits());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        st.metrics.render(depth, st.queue_events),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::OPENAPI,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
