//! Databricks REST clients: the SQL Statement Execution API 2.0, used to anchor a Unity Catalog
//! table with `DESCRIBE HISTORY`, and the bearer token both this and [`crate::mlflow`] send.
//!
//! Written against Databricks' documented API (`POST /api/2.0/sql/statements`, `GET
//! /api/2.0/sql/statements/{statement_id}`, `POST .../cancel`) and tested against a local
//! stand-in server that speaks it, never against a live workspace.
//!
//! - Statements run with `disposition: INLINE` and `format: JSON_ARRAY`, waiting up to
//!   `wait_timeout` in the first call (`on_wait_timeout: CONTINUE`), then polling until the state is
//!   `SUCCEEDED`, `FAILED`, `CANCELED` or `CLOSED`, or the deadline passes (the statement is then
//!   cancelled).
//! - A `FAILED` statement is [`ApiError::StatementFailed`] with the warehouse's `error.message`;
//!   a non-2xx answer is [`ApiError::Api`] with its `error_code` and `message`.
//! - Transport, TLS, retries of 429/503 and credential hygiene are [`crate::http::Client`]'s.
//!
//! ```no_run
//! use clyra_warehouse::databricks::{Databricks, Token, UcTableName};
//!
//! let token = Token::from_env("DATABRICKS_TOKEN")?;
//! let dbx = Databricks::new("https://adb-123.4.azuredatabricks.net", &token)?;
//! let table = UcTableName::parse("main.finance.fct_revenue")?;
//! let anchor = dbx.describe_history_anchor("abc123def456", &table)?;
//! println!("{} ({:?})", anchor.def_value(), anchor.operation);
//! # Ok::<(), clyra_warehouse::databricks::ApiError>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::delta::{self, AnchorSource, DeltaAnchor, OperationMetrics};
use crate::http::{self, HttpError};

/// What went wrong talking to Databricks or MLflow.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Transport, TLS, URL or an undecodable answer.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The service refused the request (a status outside 2xx).
    #[error("{service} answered HTTP {status} to {method} {path}: {error_code}: {message}")]
    Api {
        /// `databricks` or `mlflow`.
        service: &'static str,
        /// HTTP method.
        method: &'static str,
        /// Path (no query string).
        path: String,
        /// HTTP status.
        status: u16,
        /// The documented `error_code` (`UNAUTHENTICATED`, `PERMISSION_DENIED`, ...), or `HTTP
        /// <status>` when the body had none.
        error_code: String,
        /// The service's `message` (at most 512 bytes).
        message: String,
    },
    /// The object asked for does not exist (`RESOURCE_DOES_NOT_EXIST`).
    #[error("{what} does not exist ({service}: {message})")]
    NotFound {
        /// The service.
        service: &'static str,
        /// What was asked for.
        what: String,
        /// The service's message.
        message: String,
    },
    /// The statement ended in `FAILED`, `CANCELED` or `CLOSED`.
    #[error("statement {statement_id} {state}{}: {message}", error_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    StatementFailed {
        /// The statement id.
        statement_id: String,
        /// The final state.
        state: String,
        /// `status.error.error_code`.
        error_code: Option<String>,
        /// `status.error.message`.
        message: String,
    },
    /// The statement did not finish before the deadline (it was cancelled).
    #[error("statement {statement_id} did not finish within {seconds} s (last state {state}); it was cancelled")]
    Timeout {
        /// The statement id.
        statement_id: String,
        /// The deadline.
        seconds: u64,
        /// The last state seen.
        state: String,
    },
    /// The answer is well-formed JSON but not what the documented API promises.
    #[error("unexpected answer from {service}: {message}")]
    Unexpected {
        /// The service.
        service: &'static str,
        /// What was wrong (with the column or JSON pointer).
        message: String,
    },
    /// An argument was refused before any request was sent.
    #[error("invalid {what} `{value}`: {message}")]
    Invalid {
        /// `table name`, `warehouse id`, `model name`, ...
        what: &'static str,
        /// The value (never a credential).
        value: String,
        /// Why.
        message: String,
    },
    /// The token could not be read. Never carries the token.
    #[error("cannot use the token from {source_name}: {message}")]
    Token {
        /// The file or variable the token came from.
        source_name: String,
        /// Why.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Token.

/// A bearer token (a personal access token or an OAuth access token). Its `Debug` shows nothing
/// of it; it is sent only in the `Authorization` header.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The largest token accepted (OAuth JWTs run to a few KiB).
    pub const MAX_LEN: usize = 16 * 1024;

    /// A token from a string: surrounding whitespace removed; visible ASCII only (so it cannot
    /// break out of the header).
    pub fn new(value: &str, source_name: &str) -> Result<Token, ApiError> {
        let bad = |message: &str| ApiError::Token {
            source_name: source_name.to_string(),
            message: message.to_string(),
        };
        let t = value.trim();
        if t.is_empty() {
            return Err(bad("it is empty"));
        }
        if t.len() > Self::MAX_LEN {
            return Err(bad("it is longer than 16 KiB"));
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "it contains spaces, control characters or non-ASCII bytes",
            ));
        }
        Ok(Token(t.to_string()))
    }

    /// Reads a token file: one token, surrounding whitespace ignored; the file must not be
    /// readable by group or others.
    pub fn from_file(path: &Path) -> Result<Token, ApiError> {
        let name = format!("`{}`", path.display());
        let bad = |message: String| ApiError::Token {
            source_name: name.clone(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "the file has mode {mode:04o}; a token file must not be readable by group or \
                     others (chmod 600 {})",
                    path.display()
                )));
            }
        }
        if meta.len() > (Self::MAX_LEN as u64) + 64 {
            return Err(bad("the file is larger than 16 KiB".into()));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8".into()))?;
        Token::new(text, &name)
    }

    /// Reads a token from an environment variable.
    pub fn from_env(var: &str) -> Result<Token, ApiError> {
        let name = format!("${var}");
        match std::env::var(var) {
            Ok(v) => Token::new(&v, &name),
            Err(std::env::VarError::NotPresent) => Err(ApiError::Token {
                source_name: name,
                message: "the variable is not set".into(),
            }),
            Err(std::env::VarError::NotUnicode(_)) => Err(ApiError::Token {
                source_name: name,
                message: "the variable is not UTF-8".into(),
            }),
        }
    }

    /// The `Authorization` header value.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

/// Decodes a Databricks error body (`{"error_code": ..., "message": ...}`) into
/// [`ApiError::Api`], or [`ApiError::NotFound`] for `RESOURCE_DOES_NOT_EXIST`.
pub(crate) fn api_error(
    client: &http::Client,
    service: &'static str,
    method: &'static str,
    path: &str,
    what: impl FnOnce() -> String,
    resp: &http::Response,
) -> ApiError {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        error_code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    let cut = |s: &str| {
        let mut end = s.len().min(512);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    match serde_json::from_slice::<Body>(&resp.body) {
        Ok(Body {
            error_code: Some(code),
            message,
        }) => {
            let message = cut(message.as_deref().unwrap_or(""));
            if code == "RESOURCE_DOES_NOT_EXIST" || (resp.status == 404 && code == "NOT_FOUND") {
                ApiError::NotFound {
                    service,
                    what: what(),
                    message,
                }
            } else {
                ApiError::Api {
                    service,
                    method,
                    path: path.to_string(),
                    status: resp.status,
                    error_code: code,
                    message,
                }
            }
        }
        _ => ApiError::Http(client.status_error(method, path, resp)),
    }
}

// ---------------------------------------------------------------------------------------------
// Unity Catalog table names.

/// A three-part Unity Catalog table name, `catalog.schema.table`, each part plain (`[A-Za-z0-9_]`)
/// or backquoted (`` `my-catalog` ``, a backquote inside doubled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UcTableName {
    parts: [String; 3],
}

impl UcTableName {
    /// Parses and validates a name. Names are case-insensitive in Unity Catalog, which stores
    /// them in lower case: they are lower-cased here so one table has one anchor name.
    pub fn parse(name: &str) -> Result<UcTableName, ApiError> {
        let bad = |message: &str| ApiError::Invalid {
            what: "table name",
            value: name.to_string(),
            message: message.to_string(),
        };
        let mut parts = Vec::new();
        let mut chars = name.chars().peekable();
        loop {
            let mut part = String::new();
            if chars.peek() == Some(&'`') {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err(bad("unterminated backquote")),
                        Some('`') if chars.peek() == Some(&'`') => {
                            chars.next();
                            part.push('`');
                        }
                        Some('`') => break,
                        Some(c) if c.is_control() => {
                            return Err(bad("control characters are not allowed"))
                        }
                        Some(c) => part.push(c),
                    }
                }
                if !matches!(chars.peek(), None | Some('.')) {
                    return Err(bad("a backquoted part must be followed by `.` or the end"));
                }
            } else {
                while let Some(c) = chars.peek().copied() {
                    if c == '.' {
                        break;
                    }
                    if !(c.is_ascii_alphanumeric() || c == '_') {
                        return Err(bad(&format!(
                            "`{c}` is not allowed in an unquoted name part; backquote the part \
                             (`like-this`)"
                        )));
                    }
                    part.push(c);
                    chars.next();
                }
            }
            if part.is_empty() {
                return Err(bad("a name part is empty"));
            }
            if part.chars().count() > 255 {
                return Err(bad("a name part is longer than 255 characters"));
            }
            parts.push(part.to_lowercase());
            match chars.next() {
                None => break,
                Some('.') => continue,
                Some(_) => return Err(bad("unexpected character")),
            }
        }
        let parts: [String; 3] = parts.try_into().map_err(|p: Vec<String>| {
            bad(&format!(
                "expected three parts, catalog.schema.table, found {}",
                p.len()
            ))
        })?;
        Ok(UcTableName { parts })
    }

    /// The name quoted for SQL: every part backquoted.
    pub fn quoted(&self) -> String {
        self.parts
            .iter()
            .map(|p| format!("`{}`", p.replace('`', "``")))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The name as anchors show it: plain parts bare, others backquoted.
    pub fn display(&self) -> String {
        self.parts
            .iter()
            .map(|p| {
                if p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    p.clone()
                } else {
                    format!("`{}`", p.replace('`', "``"))
                }
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl std::fmt::Display for UcTableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

// ---------------------------------------------------------------------------------------------
// Statement Execution API.

/// A named statement parameter (`:name` in the statement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parameter {
    /// The marker name.
    pub name: String,
    /// The value, as a string; `None` for SQL NULL.
    pub value: Option<String>,
    /// The SQL type (`STRING` when absent).
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    pub type_: Option<String>,
}

#[derive(Serialize)]
struct ExecuteRequest<'a> {
    warehouse_id: &'a str,
    statement: &'a str,
    wait_timeout: String,
    on_wait_timeout: &'static str,
    disposition: &'static str,
    format: &'static str,
    #[serde(skip_serializing_if = "<[Parameter]>::is_empty")]
    parameters: &'a [Parameter],
}

/// The statement response members Clyra reads.
#[derive(Debug, Deserialize)]
struct StatementResponse {
    statement_id: String,
    status: Status,
    #[serde(default)]
    manifest: Option<Manifest>,
    #[serde(default)]
    result: Option<ResultData>,
}

#[derive(Debug, Deserialize)]
struct Status {
    state: String,
    #[serde(default)]
    error: Option<ServiceError>,
}

#[derive(Debug, Deserialize)]
struct ServiceError {
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    format: Option<String>,
    schema: Schema,
    #[serde(default)]
    truncated: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Schema {
    #[serde(default)]
    columns: Vec<ColumnInfo>,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ColumnInfo {
    /// Its name.
    pub name: String,
    /// Its type name (`LONG`, `STRING`, `TIMESTAMP`, `MAP`, ...).
    #[serde(default)]
    pub type_name: Option<String>,
    /// Its position.
    #[serde(default)]
    pub position: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ResultData {
    #[serde(default)]
    data_array: Option<Vec<Vec<Option<String>>>>,
    #[serde(default)]
    next_chunk_internal_link: Option<String>,
}

/// A finished statement's result: columns and rows (every value a string or null, as
/// `JSON_ARRAY` gives them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementResult {
    /// The statement id.
    pub statement_id: String,
    /// The columns, in order.
    pub columns: Vec<ColumnInfo>,
    /// The rows.
    pub rows: Vec<Vec<Option<String>>>,
    /// Whether the warehouse truncated the result.
    pub truncated: bool,
}

impl StatementResult {
    /// The index of the column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// A client of one workspace's SQL Statement Execution API.
#[derive(Debug)]
pub struct Databricks {
    http: http::Client,
    /// How long the first call waits for the result (`wait_timeout`, 0 or 5 to 50 s).
    pub wait_timeout: Duration,
    /// The pause between polls.
    pub poll_interval: Duration,
    /// How long a statement may run in all before it is cancelled.
    pub deadline: Duration,
}

const STATEMENTS: &str = "/api/2.0/sql/statements";

/// Whether an id from the service can go into a URL path as is.
fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Databricks {
    /// A client for the workspace at `host` (`https://...`; `http://` only for loopback).
    pub fn new(host: &str, token: &Token) -> Result<Databricks, ApiError> {
        let http = http::Client::new("databricks", host, Duration::from_secs(90))?
            .with_header("authorization", &token.bearer());
        Ok(Databricks {
            http,
            wait_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            deadline: Duration::from_secs(300),
        })
    }

    /// The underlying HTTP client (to change its retry count, for instance).
    pub fn http_mut(&mut self) -> &mut http::Client {
        &mut self.http
    }

    fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<StatementResponse, ApiError> {
        let resp = self.http.send(method, path, body)?;
        if !(200..300).contains(&resp.status) {
            return Err(api_error(
                &self.http,
                "databricks",
                method,
                path,
                || format!("statement path {path}"),
                &resp,
            ));
        }
        http::decode(&resp.body).map_err(|message| {
            ApiError::Http(HttpError::Decode {
                service: "databricks",
                method,
                path: path.to_string(),
                message,
            })
        })
    }

    /// Runs `statement` on the SQL warehouse `warehouse_id` and returns its result.
    pub fn execute(
        &self,
        warehouse_id: &str,
        statement: &str,
        parameters: &[Parameter],
    ) -> Result<StatementResult, ApiError> {
        if !safe_id(warehouse_id) {
            return Err(ApiError::Invalid {
                what: "warehouse id",
                value: warehouse_id.to_string(),
                message: "expected letters, digits, `-` and `_` (the id in the warehouse's \
                          connection details)"
                    .into(),
            });
        }
        let wait = self.wait_timeout.as_secs();
        let wait = if wait == 0 { 0 } else { wait.clamp(5, 50) };
        let req = ExecuteRequest {
            warehouse_id,
            statement,
            wait_timeout: format!("{wait}s"),
            on_wait_timeout: "CONTINUE",
            disposition: "INLINE",
            format: "JSON_ARRAY",
            parameters,
        };
        let body = serde_json::to_vec(&req).map_err(|e| ApiError::Unexpected {
            service: "databricks",
            message: format!("cannot encode the request: {e}"),
        })?;
        let started = Instant::now();
        let mut resp = self.call("POST", STATEMENTS, Some(&body))?;
        if !safe_id(&resp.statement_id) {
            return Err(ApiError::Unexpected {
                service: "databricks",
                message: format!("statement_id `{}` is not an id", resp.statement_id),
            });
        }
        let id = resp.statement_id.clone();
        let poll_path = format!("{STATEMENTS}/{id}");
        loop {
            match resp.status.state.as_str() {
                "SUCCEEDED" => break,
                "PENDING" | "RUNNING" => {}
                state @ ("FAILED" | "CANCELED" | "CLOSED") => {
                    let e = resp.status.error.unwrap_or(ServiceError {
                        error_code: None,
                        message: None,
                    });
                    return Err(ApiError::StatementFailed {
                        statement_id: id,
                        state: state.to_string(),
                        error_code: e.error_code,
                        message: e.message.unwrap_or_else(|| "no error message".into()),
                    });
                }
                other => {
                    return Err(ApiError::Unexpected {
                        service: "databricks",
                        message: format!("statement {id} has unknown state `{other}`"),
                    })
                }
            }
            if started.elapsed() >= self.deadline {
                let state = resp.status.state.clone();
                // Best effort: the error below is what matters.
                let _ = self
                    .http
                    .send("POST", &format!("{poll_path}/cancel"), Some(b"{}"));
                return Err(ApiError::Timeout {
                    statement_id: id,
                    seconds: self.deadline.as_secs(),
                    state,
                });
            }
            std::thread::sleep(self.poll_interval);
            resp = self.call("GET", &poll_path, None)?;
            if resp.statement_id != id {
                return Err(ApiError::Unexpected {
                    service: "databricks",
                    message: format!(
                        "polling statement {id} answered statement {}",
                        resp.statement_id
                    ),
                });
            }
        }
        self.collect(id, resp)
    }

    /// The result of a `SUCCEEDED` statement, following further chunks when there are any.
    fn collect(&self, id: String, resp: StatementResponse) -> Result<StatementResult, ApiError> {
        let unexpected = |message: String| ApiError::Unexpected {
            service: "databricks",
            message,
        };
        let manifest = resp
            .manifest
            .ok_or_else(|| unexpected(format!("statement {id} SUCCEEDED without a manifest")))?;
        if let Some(f) = manifest.format.as_deref() {
            if f != "JSON_ARRAY" {
                return Err(unexpected(format!(
                    "statement {id} result format is {f}, not JSON_ARRAY"
                )));
            }
        }
        let columns = manifest.schema.columns;
        let mut rows = Vec::new();
        let mut next = resp.result;
        let mut chunks = 0;
        while let Some(chunk) = next.take() {
            for (i, row) in chunk.data_array.unwrap_or_default().into_iter().enumerate() {
                if row.len() != columns.len() {
                    return Err(unexpected(format!(
                        "result row {} has {} values for {} columns",
                        rows.len() + i,
                        row.len(),
                        columns.len()
                    )));
                }
                rows.push(row);
            }
            if let Some(link) = chunk.next_chunk_internal_link {
                chunks += 1;
                let prefix = format!("{STATEMENTS}/{id}/result/chunks/");
                if !link.starts_with(&prefix) || chunks > 10_000 {
                    return Err(unexpected(format!(
                        "next_chunk_internal_link `{link}` is not a chunk of statement {id}"
                    )));
                }
                let resp = self.http.send("GET", &link, None)?;
                if !(200..300).contains(&resp.status) {
                    return Err(api_error(
                        &self.http,
                        "databricks",
                        "GET",
                        &link,
                        || link.clone(),
                        &resp,
                    ));
                }
                next = Some(http::decode(&resp.body).map_err(|message| {
                    ApiError::Http(HttpError::Decode {
                        service: "databricks",
                        method: "GET",
                        path: link.clone(),
                        message,
                    })
                })?);
            }
        }
        Ok(StatementResult {
            statement_id: id,
            columns,
            rows,
            truncated: manifest.truncated.unwrap_or(false),
        })
    }

    /// Anchors a Unity Catalog table at its latest version with `DESCRIBE HISTORY <table>
    /// LIMIT 1`. The commit file's SHA-256 and the row count are not available this way
    /// ([`DeltaAnchor::unavailable`] says why).
    pub fn describe_history_anchor(
        &self,
        warehouse_id: &str,
        table: &UcTableName,
    ) -> Result<DeltaAnchor, ApiError> {
        let read_at = delta::now_rfc3339();
        let statement = format!("DESCRIBE HISTORY {} LIMIT 1", table.quoted());
        let result = self.execute(warehouse_id, &statement, &[])?;
        history_anchor(table, &result, read_at)
    }
}

/// Builds a [`DeltaAnchor`] from the first row of a `DESCRIBE HISTORY` result.
pub fn history_anchor(
    table: &UcTableName,
    result: &StatementResult,
    read_at: String,
) -> Result<DeltaAnchor, ApiError> {
    let unexpected = |message: String| ApiError::Unexpected {
        service: "databricks",
        message,
    };
    let row = result.rows.first().ok_or_else(|| {
        unexpected(format!(
            "DESCRIBE HISTORY {table} returned no row (statement {})",
            result.statement_id
        ))
    })?;
    let get = |name: &str| -> Option<&str> {
        result
            .column(name)
            .and_then(|i| row.get(i))
            .and_then(|v| v.as_deref())
    };
    let bad = |column: &str, message: &str| {
        unexpected(format!(
            "DESCRIBE HISTORY column `{column}`: {message} (statement {})",
            result.statement_id
        ))
    };
    let int = |column: &str| -> Result<Option<u64>, ApiError> {
        get(column)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| bad(column, &format!("`{v}` is not a version")))
            })
            .transpose()
    };
    let version = int("version")?.ok_or_else(|| bad("version", "missing or null"))?;
    let timestamp_ms = get("timestamp")
        .map(|v| {
            parse_timestamp_ms(v)
                .ok_or_else(|| bad("timestamp", &format!("`{v}` is not a timestamp")))
        })
        .transpose()?;
    let json_column = |column: &str| -> Option<Value> {
        get(column).map(|v| {
            serde_json::from_str::<Value>(v).map_or(Value::String(v.into()), delta::jcs_safe)
        })
    };
    let operation = get("operation").map(str::to_string);
    let metrics = match json_column("operationMetrics") {
        Some(Value::Object(m)) => OperationMetrics::normalize(operation.as_deref(), &m),
        Some(other) => {
            let mut m = OperationMetrics::default();
            m.other.insert("operationMetrics".into(), other);
            m
        }
        None => OperationMetrics::default(),
    };
    let is_blind_append = match get("isBlindAppend") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => return Err(bad("isBlindAppend", &format!("`{v}` is not a boolean"))),
    };
    let mut unavailable = BTreeMap::new();
    let history = "DESCRIBE HISTORY does not return";
    for (k, why) in [
        (
            "commit_sha256",
            format!("{history} the commit file; anchor the table's _delta_log with `clyra warehouse delta anchor` for its digest"),
        ),
        ("commit_bytes", format!("{history} the commit file")),
        (
            "row_count",
            format!("{history} the table's row count, and Clyra does not count rows"),
        ),
        ("live_files", format!("{history} the table's files")),
        ("live_bytes", format!("{history} the table's files")),
        ("table_path", format!("{history} the table location")),
        ("table_id", format!("{history} the table id")),
        ("schema_sha256", format!("{history} the schema")),
        ("latest_version", "LIMIT 1 reads the latest version itself".to_string()),
    ] {
        unavailable.insert(k.to_string(), why);
    }
    let name = table.display();
    Ok(DeltaAnchor {
        format: delta::FORMAT.to_string(),
        platform: "databricks".to_string(),
        source: AnchorSource::DescribeHistory,
        table: name.clone(),
        table_path: None,
        uc_name: Some(name),
        table_id: None,
        version,
        latest_version: None,
        commit_sha256: None,
        commit_bytes: None,
        timestamp: timestamp_ms.and_then(delta::millis_rfc3339),
        timestamp_ms,
        operation,
        operation_parameters: json_column("operationParameters"),
        engine_info: get("engineInfo").map(str::to_string),
        client_version: None,
        read_version: int("readVersion")?,
        isolation_level: get("isolationLevel").map(str::to_string),
        is_blind_append,
        user_name: get("userName").map(str::to_string),
        metrics,
        row_count: None,
        live_files: None,
        live_bytes: None,
        schema_sha256: None,
        unavailable,
        read_at,
    })
}

/// A timestamp from a `JSON_ARRAY` value: RFC 3339 with an offset, or a date and time without
/// one, read as UTC (the SQL warehouse's default session time zone).
fn parse_timestamp_ms(v: &str) -> Option<i64> {
    if let Ok(t) = v.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    let dt = v
        .trim_end_matches(['Z', 'z'])
        .parse::<jiff::civil::DateTime>()
        .ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn table_names() {
        let t = UcTableName::parse("Main.Finance.fct_revenue").unwrap();
        assert_eq!(t.quoted(), "`main`.`finance`.`fct_revenue`");
        assert_eq!(t.display(), "main.finance.fct_revenue");
        let t = UcTableName::parse("`my-cat`.s.`we``ird.t`").unwrap();
        assert_eq!(t.quoted(), "`my-cat`.`s`.`we``ird.t`");
        assert_eq!(t.display(), "`my-cat`.s.`we``ird.t`");
        for bad in [
            "a.b",
            "a.b.c.d",
            "a..c",
            "a.b.c;DROP TABLE x",
            "a.b.`c",
            "a.b.`c`x",
            "a.b.c d",
            "a.b.`c\n`",
            "",
        ] {
            assert!(UcTableName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn tokens() {
        assert!(Token::new("  dapi123\n", "t").is_ok());
        for bad in ["", "  \n", "dapi 123", "dapiA\r\nX-Evil: 1", "déjàSECRET"] {
            let e = Token::new(bad, "$T").unwrap_err().to_string();
            assert!(e.contains("$T"), "{e}");
            assert!(!e.contains("dapi") && !e.contains("SECRET"), "{e}");
        }
        assert_eq!(
            format!("{:?}", Token::new("dapiSECRET", "t").unwrap()),
            "Token(<redacted>)"
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp_ms("2024-05-01T12:00:00.123Z"),
            Some(1_714_564_800_123)
        );
        assert_eq!(
            parse_timestamp_ms("2024-05-01 12:00:00.123"),
            Some(1_714_564_800_123)
        );
        assert_eq!(
            parse_timestamp_ms("2024-05-01T14:00:00.123+02:00"),
            Some(1_714_564_800_123)
        );
        assert_eq!(parse_timestamp_ms("yesterday"), None);
    }
}
