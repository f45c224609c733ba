//! A small blocking client that signs every request (used by `clyra record` and the tests).
//!
//! Plain `http://` only: TLS is terminated by a proxy in front of the recorder for now.

use std::time::Duration;

use serde_json::Value;

use crate::auth::{self, Secret, SignedParts};

/// Why a request could not be made (the server's own answers are [`Response`]s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint is not a plain `http://` URL.
    #[error("endpoint `{0}`: expected http://HOST:PORT (TLS is terminated by a proxy for now)")]
    Endpoint(String),
    /// The request failed before an answer arrived (connection refused, reset, timeout).
    #[error("request to `{url}` failed: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
}

/// The server's answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The error code of an error body (`{"error": {"code": ...}}`).
    pub fn error_code(&self) -> Option<String> {
        self.json()?
            .pointer("/error/code")?
            .as_str()
            .map(str::to_string)
    }

    /// A one-line description of an error answer, for people.
    pub fn error_message(&self) -> String {
        let doc = self.json();
        let err = doc.as_ref().and_then(|d| d.get("error"));
        match err {
            Some(e) => {
                let code = e.get("code").and_then(Value::as_str).unwrap_or("error");
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                format!("HTTP {} {code}: {msg}", self.status)
            }
            None => format!(
                "HTTP {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body).trim()
            ),
        }
    }
}

/// Signs and sends requests for one tenant's key.
pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
    tenant: String,
    key_id: String,
    secret: Secret,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("tenant", &self.tenant)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `endpoint` (`http://HOST:PORT`), signing as `tenant`'s key `key_id`.
    pub fn new(
        endpoint: &str,
        tenant: &str,
        key_id: &str,
        secret: Secret,
    ) -> Result<Self, ClientError> {
        let trimmed = endpoint.trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Endpoint(endpoint.to_string()))?;
        if rest.is_empty() || rest.contains('/') || rest.contains('?') {
            return Err(ClientError::Endpoint(endpoint.to_string()));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            endpoint: trimmed.to_string(),
            tenant: tenant.to_string(),
            key_id: key_id.to_string(),
            secret,
        })
    }

    /// Sends a signed request: `method` (`GET` or `POST`) to `path_and_query` with `body`.
    pub fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Response, ClientError> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let nonce = auth::new_nonce();
        self.send_signed(method, path_and_query, body, timestamp, &nonce)
    }

    /// Sends a request signed with the given timestamp and nonce (for tests of the replay guard).
    pub fn send_signed(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> Result<Response, ClientError> {
        let parts = SignedParts {
            method,
            path_and_query,
            tenant: &self.tenant,
            key_id: &self.key_id,
            timestamp,
            nonce,
            body,
        };
        let url = format!("{}{path_and_query}", self.endpoint);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in auth::headers(self.secret.as_bytes(), &parts) {
            builder = builder.header(name, value);
        }
        if !body.is_empty() {
            builder = builder.header("content-type", "application/json");
        }
        let transport = |message: String| ClientError::Transport {
            url: url.clone(),
            message,
        };
        let sent = if body.is_empty() {
            builder
                .body(())
                .map_err(|e| transport(e.to_string()))
                .and_then(|r| self.agent.run(r).map_err(|e| transport(e.to_string())))
        } else {
            builder
                .body(body.to_vec())
                .map_err(|e| transport(e.to_string()))
                .and_then(|r| self.agent.run(r).map_err(|e| transport(e.to_string())))
        };
        let mut resp = sent?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| transport(e.to_string()))?;
        Ok(Response {
            status,
            retry_after,
            body,
        })
    }

    /// `POST /v1/events` with `body` (one event or `{"events": [...]}`).
    pub fn post_events(&self, body: &[u8]) -> Result<Response, ClientError> {
        self.send("POST", "/v1/events", body)
    }

    /// `GET /v1/head`.
    pub fn head(&self) -> Result<Response, ClientError> {
        self.send("GET", "/v1/head", b"")
    }

    /// `GET /v1/entries/{seq}`.
    pub fn entry(&self, seq: u64) -> Result<Response, ClientError> {
        self.send("GET", &format!("/v1/entries/{seq}"), b"")
    }
}
