//! A client for Snowflake's SQL API v2, the documented subset Clyra uses.
//!
//! - `POST /api/v2/statements?requestId=<uuid>` submits one statement with its `bindings`
//!   (values are never spliced into SQL text), `timeout`, context (`warehouse`, `role`,
//!   `database`, `schema`) and `resultSetMetaData.format = jsonv2`. The HTTP layer retries 429
//!   and 503 with the same URL, so the same `requestId`: Snowflake runs a request id once.
//! - 200 carries a `ResultSet` (first partition); 202 a `QueryStatus`, after which the client
//!   polls `GET /api/v2/statements/{statementHandle}` with a growing interval until the answer
//!   is 200, a failure, or the deadline; other partitions are fetched with `?partition=N` and
//!   checked against `resultSetMetaData.partitionInfo[N].rowCount`.
//! - Failures (422 and the other documented statuses) carry `code`, `sqlState` and `message`,
//!   surfaced as [`SnowflakeError::Sql`]; 401/403 become [`SnowflakeError::Auth`] with a hint.
//! - `Authorization: Bearer <token>` with `X-Snowflake-Authorization-Token-Type` `KEYPAIR_JWT`
//!   or `OAUTH`. Key-pair JWTs are renewed when three quarters of their lifetime has passed.
//!
//! Every value arrives as a JSON string (or `null`), as the API documents for `jsonv2`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::auth::Credentials;
use super::{is_uuid, new_uuid, unexpected, SnowflakeError};
use crate::http;

/// Client settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The API's base URL; default `https://<account>.snowflakecomputing.com`.
    pub base_url: Option<String>,
    /// The statement timeout sent to Snowflake; the client also stops polling after it.
    pub statement_timeout: Duration,
    /// The first wait between two polls of a running statement (doubled up to `poll_max`).
    pub poll_initial: Duration,
    /// The longest wait between two polls.
    pub poll_max: Duration,
    /// How long past `statement_timeout` the client keeps polling, to get Snowflake's own
    /// verdict on a statement it timed out.
    pub poll_grace: Duration,
    /// The deadline of each HTTP call.
    pub http_timeout: Duration,
    /// How many times a request answered 429 or 503 is tried.
    pub max_attempts: u32,
    /// The `QUERY_TAG` session parameter sent with each statement, so that Clyra's statements
    /// are easy to find in QUERY_HISTORY.
    pub query_tag: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            base_url: None,
            statement_timeout: Duration::from_secs(120),
            poll_initial: Duration::from_millis(250),
            poll_max: Duration::from_secs(5),
            poll_grace: Duration::from_secs(30),
            http_timeout: Duration::from_secs(60),
            max_attempts: 4,
            query_tag: Some("clyra".to_string()),
        }
    }
}

/// The documented host of an account: `https://<account identifier>.snowflakecomputing.com`
/// (lower case; an account locator keeps its region and cloud, `xy12345.us-east-2.aws`).
pub fn default_base_url(account: &str) -> Result<String, SnowflakeError> {
    let a = account.trim().to_ascii_lowercase();
    if a.is_empty()
        || !a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err(SnowflakeError::Invalid {
            what: "Snowflake account",
            value: account.to_string(),
            message: "expected an account identifier such as `myorg-myaccount` or `xy12345.us-east-2.aws` (or pass a base URL)".into(),
        });
    }
    Ok(format!("https://{a}.snowflakecomputing.com"))
}

/// The type of a bound value, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindType {
    /// `TEXT`.
    Text,
    /// `FIXED` (a number).
    Fixed,
}

/// One bound value (`?` in the statement, numbered from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Its type.
    pub bind_type: BindType,
    /// Its value, as text.
    pub value: String,
}

impl Binding {
    /// A `TEXT` binding.
    pub fn text(v: impl Into<String>) -> Self {
        Binding {
            bind_type: BindType::Text,
            value: v.into(),
        }
    }

    /// A `FIXED` binding.
    pub fn fixed(v: i64) -> Self {
        Binding {
            bind_type: BindType::Fixed,
            value: v.to_string(),
        }
    }
}

/// A statement to run, with its bindings and session context.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    /// The SQL text: one statement.
    pub sql: String,
    /// Values for its `?` placeholders, in order.
    pub bindings: Vec<Binding>,
    /// `warehouse` (default: the user's default warehouse).
    pub warehouse: Option<String>,
    /// `role` (default: the user's default role).
    pub role: Option<String>,
    /// `database`.
    pub database: Option<String>,
    /// `schema`.
    pub schema: Option<String>,
}

impl Statement {
    /// A statement with no bindings and the default context.
    pub fn new(sql: impl Into<String>) -> Self {
        Statement {
            sql: sql.into(),
            ..Default::default()
        }
    }
}

/// One column of a result (`resultSetMetaData.rowType[i]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Snowflake's type name, lower case (`fixed`, `text`, `timestamp_ltz`, ...).
    pub type_name: String,
    /// Whether it may be null.
    pub nullable: bool,
}

/// The answer to a statement: every partition, in order.
#[derive(Debug, Clone)]
pub struct ResultSet {
    /// The statement handle: the statement's query id.
    pub statement_handle: String,
    /// The request id the statement was submitted with.
    pub request_id: String,
    /// Snowflake's `code` (`090001` for success).
    pub code: Option<String>,
    /// Snowflake's `sqlState`.
    pub sql_state: Option<String>,
    /// Snowflake's `message`.
    pub message: Option<String>,
    /// `createdOn`, milliseconds since the epoch.
    pub created_on: Option<i64>,
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows, every partition's.
    pub rows: Vec<Vec<Option<String>>>,
    /// How many partitions the result had.
    pub partitions: usize,
    /// How many times the client polled a running statement.
    pub polls: u32,
    /// The client's clock when the statement's final answer arrived.
    pub received_at: jiff::Timestamp,
}

impl ResultSet {
    /// The index of column `name` (case-insensitive).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The value of column `name` in row `row`; `None` for SQL NULL or an unknown column.
    pub fn get(&self, row: usize, name: &str) -> Option<&str> {
        let i = self.column(name)?;
        self.rows.get(row)?.get(i)?.as_deref()
    }
}

/// The documented response members Clyra reads (`ResultSet`, `QueryStatus` and
/// `QueryFailureStatus` share them).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    code: Option<String>,
    sql_state: Option<String>,
    message: Option<String>,
    statement_handle: Option<String>,
    created_on: Option<i64>,
    result_set_meta_data: Option<MetaData>,
    data: Option<Vec<Vec<Option<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaData {
    num_rows: Option<u64>,
    format: Option<String>,
    #[serde(default)]
    row_type: Vec<RowType>,
    #[serde(default)]
    partition_info: Vec<PartitionInfo>,
}

#[derive(Debug, Deserialize)]
struct RowType {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    nullable: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartitionInfo {
    row_count: u64,
}

#[derive(Debug, Deserialize)]
struct PartitionAnswer {
    data: Vec<Vec<Option<String>>>,
}

/// The first partition of a result, checked: a valid statement handle, `jsonv2`, one value per
/// column in every row, and as many rows as `partitionInfo[0].rowCount` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstPage {
    /// The statement handle.
    pub statement_handle: String,
    /// `code`.
    pub code: Option<String>,
    /// `sqlState`.
    pub sql_state: Option<String>,
    /// `message`.
    pub message: Option<String>,
    /// `createdOn`.
    pub created_on: Option<i64>,
    /// The columns.
    pub columns: Vec<Column>,
    /// Row counts of every partition (one element when the API gave no `partitionInfo`).
    pub partition_rows: Vec<u64>,
    /// The first partition's rows.
    pub rows: Vec<Vec<Option<String>>>,
}

/// The most partitions a result may have (Clyra's results have one).
pub const MAX_PARTITIONS: usize = 100_000;

/// Reads a 200 answer to `POST /api/v2/statements` or `GET /api/v2/statements/{handle}`.
pub fn parse_result_set(body: &[u8]) -> Result<FirstPage, SnowflakeError> {
    let a: Answer = http::decode(body)
        .map_err(|m| unexpected("result set", format!("not a ResultSet: {m}")))?;
    let handle = a
        .statement_handle
        .ok_or_else(|| unexpected("result set", "no `statementHandle`"))?;
    if !is_uuid(&handle) {
        return Err(unexpected(
            "result set",
            format!("`statementHandle` `{}` is not a UUID", cut(&handle)),
        ));
    }
    let meta = a
        .result_set_meta_data
        .ok_or_else(|| unexpected("result set", "no `resultSetMetaData`"))?;
    if let Some(f) = &meta.format {
        if !f.eq_ignore_ascii_case("jsonv2") {
            return Err(unexpected(
                "result set",
                format!(
                    "`resultSetMetaData.format` is `{}`, expected `jsonv2`",
                    cut(f)
                ),
            ));
        }
    }
    if meta.row_type.is_empty() {
        return Err(unexpected(
            "result set",
            "`resultSetMetaData.rowType` is empty",
        ));
    }
    let columns: Vec<Column> = meta
        .row_type
        .into_iter()
        .map(|r| Column {
            name: r.name,
            type_name: r.type_name.to_ascii_lowercase(),
            nullable: r.nullable.unwrap_or(true),
        })
        .collect();
    let rows = a.data.unwrap_or_default();
    check_rows(&rows, columns.len(), "/data")?;
    let partition_rows: Vec<u64> = if meta.partition_info.is_empty() {
        vec![rows.len() as u64]
    } else {
        meta.partition_info.iter().map(|p| p.row_count).collect()
    };
    if partition_rows.len() > MAX_PARTITIONS {
        return Err(unexpected(
            "result set",
            format!(
                "{} partitions (at most {MAX_PARTITIONS})",
                partition_rows.len()
            ),
        ));
    }
    if partition_rows.first().copied() != Some(rows.len() as u64) {
        return Err(unexpected(
            "result set",
            format!(
                "partition 0 has {} rows, `partitionInfo[0].rowCount` says {}",
                rows.len(),
                partition_rows.first().copied().unwrap_or(0)
            ),
        ));
    }
    if let Some(n) = meta.num_rows {
        let total = partition_rows
            .iter()
            .try_fold(0u64, |acc, r| acc.checked_add(*r));
        if total != Some(n) {
            return Err(unexpected(
                "result set",
                format!("`numRows` is {n} but the partitions hold {total:?} rows"),
            ));
        }
    }
    Ok(FirstPage {
        statement_handle: handle,
        code: a.code,
        sql_state: a.sql_state,
        message: a.message,
        created_on: a.created_on,
        columns,
        partition_rows,
        rows,
    })
}

/// Reads the answer to `GET /api/v2/statements/{handle}?partition=N`: its rows, checked against
/// the expected row count and width.
pub fn parse_partition(
    body: &[u8],
    partition: usize,
    expected_rows: u64,
    width: usize,
) -> Result<Vec<Vec<Option<String>>>, SnowflakeError> {
    let what = format!("result partition {partition}");
    let p: PartitionAnswer = http::decode(body).map_err(|m| unexpected(&what, m))?;
    check_rows(&p.data, width, "/data")?;
    if p.data.len() as u64 != expected_rows {
        return Err(unexpected(
            what,
            format!(
                "{} rows, `partitionInfo[{partition}].rowCount` says {expected_rows}",
                p.data.len()
            ),
        ));
    }
    Ok(p.data)
}

fn check_rows(
    rows: &[Vec<Option<String>>],
    width: usize,
    pointer: &str,
) -> Result<(), SnowflakeError> {
    for (i, r) in rows.iter().enumerate() {
        if r.len() != width {
            return Err(unexpected(
                "result set",
                format!(
                    "at {pointer}/{i}: {} values for {width} columns of `rowType`",
                    r.len()
                ),
            ));
        }
    }
    Ok(())
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A status or failure answer, when the body is the documented JSON.
fn parse_status(body: &[u8]) -> Option<Answer> {
    http::decode::<Answer>(body).ok()
}

/// A Snowflake SQL API client. Blocking; one statement at a time per call, callable from several
/// threads.
pub struct Client {
    base: String,
    credentials: Credentials,
    options: Options,
    http: Mutex<Option<(Instant, Arc<http::Client>)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `account` (used for the default base URL) with `credentials`.
    pub fn new(
        account: &str,
        credentials: Credentials,
        options: Options,
    ) -> Result<Client, SnowflakeError> {
        let base = match &options.base_url {
            Some(b) => b.clone(),
            None => default_base_url(account)?,
        };
        // Validate the URL now rather than at the first statement.
        http::Client::new("snowflake", &base, options.http_timeout)?;
        Ok(Client {
            base,
            credentials,
            options,
            http: Mutex::new(None),
        })
    }

    /// The base URL in use.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The HTTP client carrying a bearer token that is still good.
    fn http(&self) -> Result<Arc<http::Client>, SnowflakeError> {
        let mut slot = self
            .http
            .lock()
            .map_err(|_| unexpected("client", "a previous call panicked"))?;
        if let Some((born, c)) = slot.as_ref() {
            let fresh = match self.credentials.token_lifetime() {
                None => true,
                Some(l) => born.elapsed() < l * 3 / 4,
            };
            if fresh {
                return Ok(Arc::clone(c));
            }
        }
        let token = self.credentials.bearer(jiff::Timestamp::now().as_second());
        let mut c = http::Client::new("snowflake", &self.base, self.options.http_timeout)?
            .with_header("authorization", &format!("Bearer {}", token.as_str()))
            .with_header(
                "x-snowflake-authorization-token-type",
                self.credentials.token_type(),
            );
        c.max_attempts = self.options.max_attempts.max(1);
        let c = Arc::new(c);
        *slot = Some((Instant::now(), Arc::clone(&c)));
        Ok(c)
    }

    fn request_body(&self, s: &Statement) -> serde_json::Value {
        let mut body = serde_json::json!({
            "statement": s.sql,
            "timeout": self.options.statement_timeout.as_secs(),
            "resultSetMetaData": { "format": "jsonv2" },
        });
        if let Some(obj) = body.as_object_mut() {
            for (k, v) in [
                ("warehouse", &s.warehouse),
                ("role", &s.role),
                ("database", &s.database),
                ("schema", &s.schema),
            ] {
                if let Some(v) = v {
                    obj.insert(k.into(), v.clone().into());
                }
            }
            if !s.bindings.is_empty() {
                let b: serde_json::Map<String, serde_json::Value> = s
                    .bindings
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        let t = match b.bind_type {
                            BindType::Text => "TEXT",
                            BindType::Fixed => "FIXED",
                        };
                        (
                            (i + 1).to_string(),
                            serde_json::json!({ "type": t, "value": b.value }),
                        )
                    })
                    .collect();
                obj.insert("bindings".into(), b.into());
            }
            let mut params = serde_json::Map::new();
            params.insert("MULTI_STATEMENT_COUNT".into(), "1".into());
            if let Some(tag) = &self.options.query_tag {
                params.insert("QUERY_TAG".into(), tag.clone().into());
            }
            obj.insert("parameters".into(), params.into());
        }
        body
    }

    /// Runs one statement and returns every row of its result.
    pub fn execute(&self, statement: &Statement) -> Result<ResultSet, SnowflakeError> {
        let started = Instant::now();
        let request_id = new_uuid()?;
        let body = serde_json::to_vec(&self.request_body(statement))
            .map_err(|e| unexpected("request", e.to_string()))?;
        let post_path = format!("/api/v2/statements?requestId={request_id}");
        let mut resp = self.call("POST", &post_path, Some(&body))?;
        let mut polls = 0u32;
        let mut wait = self.options.poll_initial;
        let deadline = self.options.statement_timeout + self.options.poll_grace;
        let first = loop {
            match resp.status {
                200 => break parse_result_set(&resp.body)?,
                202 => {
                    let status = parse_status(&resp.body)
                        .ok_or_else(|| unexpected("202 answer", "not a QueryStatus JSON object"))?;
                    let handle =
                        status
                            .statement_handle
                            .filter(|h| is_uuid(h))
                            .ok_or_else(|| {
                                unexpected("202 answer", "no UUID `statementHandle` to poll")
                            })?;
                    if started.elapsed() + wait > deadline {
                        return Err(SnowflakeError::Timeout {
                            handle,
                            waited_ms: started.elapsed().as_millis(),
                            timeout_s: self.options.statement_timeout.as_secs(),
                        });
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(self.options.poll_max);
                    polls += 1;
                    resp = self.call(
                        "GET",
                        &format!("/api/v2/statements/{handle}?requestId={request_id}"),
                        None,
                    )?;
                }
                _ => {
                    return Err(self.failure(
                        if polls == 0 { "POST" } else { "GET" },
                        "/api/v2/statements",
                        &resp,
                    ))
                }
            }
        };
        let mut rows = first.rows;
        let width = first.columns.len();
        for (i, expected) in first.partition_rows.iter().enumerate().skip(1) {
            let path = format!(
                "/api/v2/statements/{}?partition={i}",
                first.statement_handle
            );
            let r = self.call("GET", &path, None)?;
            if r.status != 200 {
                return Err(self.failure("GET", "/api/v2/statements", &r));
            }
            rows.extend(parse_partition(&r.body, i, *expected, width)?);
        }
        Ok(ResultSet {
            statement_handle: first.statement_handle,
            request_id,
            code: first.code,
            sql_state: first.sql_state,
            message: first.message,
            created_on: first.created_on,
            columns: first.columns,
            rows,
            partitions: first.partition_rows.len(),
            polls,
            received_at: jiff::Timestamp::now(),
        })
    }

    fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<http::Response, SnowflakeError> {
        Ok(self.http()?.send(method, path, body)?)
    }

    /// The error for a non-success answer.
    fn failure(&self, method: &'static str, path: &str, resp: &http::Response) -> SnowflakeError {
        let status = parse_status(&resp.body);
        match resp.status {
            401 | 403 => {
                let (code, message) = match status {
                    Some(a) => (a.code, a.message.unwrap_or_default()),
                    None => (
                        None,
                        String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
                            .into_owned(),
                    ),
                };
                SnowflakeError::Auth {
                    token_type: self.credentials.token_type(),
                    status: resp.status,
                    code,
                    message: message.trim().trim_end_matches('.').to_string(),
                    hint: self.credentials.hint(),
                }
            }
            429 | 503 => SnowflakeError::RateLimited {
                status: resp.status,
                method,
                path: path.to_string(),
                attempts: self.options.max_attempts.max(1),
            },
            _ => match status {
                Some(Answer {
                    code: Some(code),
                    message: Some(message),
                    sql_state,
                    statement_handle,
                    ..
                }) => SnowflakeError::Sql {
                    code,
                    sql_state: sql_state.unwrap_or_else(|| "unknown".into()),
                    message,
                    handle: statement_handle.filter(|h| is_uuid(h)),
                },
                _ => http::HttpError::Status {
                    service: "snowflake",
                    method,
                    path: path.to_string(),
                    status: resp.status,
                    body: String::from_utf8_lossy(&resp.body[..resp.body.len().min(512)])
                        .into_owned(),
                }
                .into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const H: &str = "01b2c3d4-0000-1234-0000-000012345678";

    #[test]
    fn result_sets_are_checked() {
        let ok = format!(
            r#"{{"statementHandle":"{H}","code":"090001","resultSetMetaData":{{"numRows":3,"format":"jsonv2","rowType":[{{"name":"A","type":"FIXED","nullable":false}}],"partitionInfo":[{{"rowCount":1}},{{"rowCount":2}}]}},"data":[["1"]]}}"#
        );
        let p = parse_result_set(ok.as_bytes()).unwrap();
        assert_eq!(p.partition_rows, vec![1, 2]);
        assert_eq!(p.columns[0].type_name, "fixed");
        for (bad, why) in [
            (ok.replace(H, "x"), "not a UUID"),
            (ok.replace(r#""numRows":3"#, r#""numRows":4"#), "numRows"),
            (ok.replace(r#"[["1"]]"#, r#"[["1","2"]]"#), "/data/0"),
            (ok.replace(r#"[["1"]]"#, r#"[[1]]"#), "data[0][0]"),
            (ok.replace(r#"[["1"]]"#, r#"[]"#), "partition 0 has 0 rows"),
            (ok.replace("jsonv2", "arrowv1"), "jsonv2"),
        ] {
            let e = parse_result_set(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        assert!(parse_partition(br#"{"data":[["1"],["2"]]}"#, 1, 2, 1).is_ok());
        let e = parse_partition(br#"{"data":[["1"]]}"#, 1, 2, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rowCount"), "{e}");
    }

    #[test]
    fn default_urls() {
        assert_eq!(
            default_base_url("XY12345.us-east-2.aws").unwrap(),
            "https://xy12345.us-east-2.aws.snowflakecomputing.com"
        );
        assert!(default_base_url("evil.com/x?").is_err());
    }
}
