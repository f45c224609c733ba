//! The one HTTPS client the SaaS warehouse clients (Snowflake SQL API, Databricks Statement
//! Execution API, MLflow REST) share.
//!
//! - TLS with rustls and the Mozilla root set; `http://` is accepted only for loopback hosts
//!   (`127.0.0.1`, `[::1]`, `localhost`), which is how the tests reach their local stand-in
//!   servers. A remote `http://` URL is refused before any byte is sent: the requests carry
//!   bearer credentials.
//! - Every request has a deadline (connect 10 s, whole call `timeout`, 60 s by default).
//! - `429` and `503` are retried up to [`Client::max_attempts`] times, honouring `Retry-After`
//!   (seconds, capped at 30 s) or backing off 1 s, 2 s, 4 s, ...
//! - Credentials never reach an error message or a log line: errors name the service, the method
//!   and the path only, and the response body quoted in an error is cut to 512 bytes.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// What went wrong talking to a SaaS API.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The base URL is not acceptable.
    #[error("invalid {service} URL `{url}`: {message}")]
    Url {
        /// `snowflake`, `databricks`, `mlflow`, ...
        service: &'static str,
        /// The URL as given.
        url: String,
        /// Why it was refused.
        message: String,
    },
    /// The request could not be sent or no answer came.
    #[error("cannot reach {service} ({method} {path}): {message}")]
    Transport {
        /// The service.
        service: &'static str,
        /// HTTP method.
        method: &'static str,
        /// Path (no query string: it may carry tokens).
        path: String,
        /// The transport's message.
        message: String,
    },
    /// The service answered with a status that is not a success.
    #[error("{service} answered HTTP {status} to {method} {path}: {body}")]
    Status {
        /// The service.
        service: &'static str,
        /// HTTP method.
        method: &'static str,
        /// Path.
        path: String,
        /// The status code.
        status: u16,
        /// The start of the response body (at most 512 bytes, lossy UTF-8).
        body: String,
    },
    /// The answer is not the JSON the documented API promises.
    #[error("unexpected answer from {service} to {method} {path}: {message}")]
    Decode {
        /// The service.
        service: &'static str,
        /// HTTP method.
        method: &'static str,
        /// Path.
        path: String,
        /// What was wrong, with a JSON pointer where serde gave one.
        message: String,
    },
}

/// A response: status, the `Retry-After` seconds when given, and the body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body bytes (at most [`Client::max_body`]).
    pub body: Vec<u8>,
}

/// A small blocking HTTPS client bound to one service's base URL.
pub struct Client {
    service: &'static str,
    base: String,
    agent: ureq::Agent,
    headers: Vec<(String, String)>,
    /// How many times a request is tried when the answer is 429 or 503.
    pub max_attempts: u32,
    /// The largest response body read, in bytes.
    pub max_body: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are credentials: only their names are shown.
        f.debug_struct("Client")
            .field("service", &self.service)
            .field("base", &self.base)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Whether `url` may be spoken to in clear text: only loopback hosts.
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once('@') {
        Some((_, h)) => h,
        None => authority,
    };
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

impl Client {
    /// A client for `service` at `base_url` (scheme, host and optional port and path prefix).
    /// `timeout` bounds each whole call.
    pub fn new(
        service: &'static str,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Client, HttpError> {
        let base = base_url.trim_end_matches('/').to_string();
        let bad = |message: &str| HttpError::Url {
            service,
            url: base_url.to_string(),
            message: message.to_string(),
        };
        if base.starts_with("http://") {
            if !is_loopback_http(&base) {
                return Err(bad(
                    "plain http is accepted only for 127.0.0.1, [::1] and localhost; use https://",
                ));
            }
        } else if !base.starts_with("https://") {
            return Err(bad("the URL must start with https://"));
        }
        if base.len() <= "https://".len() || base.contains(char::is_whitespace) {
            return Err(bad("the URL has no host or contains spaces"));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .user_agent(concat!("clyra/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            service,
            base,
            agent: ureq::Agent::new_with_config(config),
            headers: Vec::new(),
            max_attempts: 4,
            max_body: 64 * 1024 * 1024,
        })
    }

    /// Adds a header sent with every request (an `Authorization` header, for instance).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends `method path` with an optional JSON body and returns the raw response, whatever
    /// its status; retries 429 and 503 as the module documents.
    pub fn send(
        &self,
        method: &'static str,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let path = path_and_query
            .split('?')
            .next()
            .unwrap_or(path_and_query)
            .to_string();
        let transport = |message: String| HttpError::Transport {
            service: self.service,
            method,
            path: path.clone(),
            message,
        };
        let url = format!("{}{}", self.base, path_and_query);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = ureq::http::Request::builder()
                .method(method)
                .uri(&url)
                .header("accept", "application/json");
            if body.is_some() {
                req = req.header("content-type", "application/json");
            }
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let req = req
                .body(body.map(<[u8]>::to_vec).unwrap_or_default())
                .map_err(|e| transport(format!("cannot build the request: {e}")))?;
            let mut resp = self.agent.run(req).map_err(|e| transport(e.to_string()))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if (status == 429 || status == 503) && attempt < self.max_attempts {
                let wait = retry_after.unwrap_or(1 << (attempt - 1)).min(30);
                std::thread::sleep(Duration::from_secs(wait));
                continue;
            }
            let body = resp
                .body_mut()
                .with_config()
                .limit(self.max_body)
                .read_to_vec()
                .map_err(|e| transport(format!("cannot read the answer: {e}")))?;
            return Ok(Response { status, body });
        }
    }

    /// Sends and decodes a JSON answer; a status outside 2xx is [`HttpError::Status`].
    pub fn json<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path_and_query: &str,
        body: Option<&impl Serialize>,
    ) -> Result<(u16, T), HttpError> {
        let path = path_and_query
            .split('?')
            .next()
            .unwrap_or(path_and_query)
            .to_string();
        let bytes = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| HttpError::Decode {
                service: self.service,
                method,
                path: path.clone(),
                message: format!("cannot encode the request: {e}"),
            })?),
            None => None,
        };
        let resp = self.send(method, path_and_query, bytes.as_deref())?;
        if !(200..300).contains(&resp.status) {
            return Err(self.status_error(method, &path, &resp));
        }
        let value = decode(&resp.body).map_err(|message| HttpError::Decode {
            service: self.service,
            method,
            path,
            message,
        })?;
        Ok((resp.status, value))
    }

    /// The [`HttpError::Status`] for a response.
    pub fn status_error(&self, method: &'static str, path: &str, resp: &Response) -> HttpError {
        let cut = &resp.body[..resp.body.len().min(512)];
        HttpError::Status {
            service: self.service,
            method,
            path: path.to_string(),
            status: resp.status,
            body: String::from_utf8_lossy(cut).into_owned(),
        }
    }
}

/// Decodes JSON, naming the JSON pointer where the document stops matching `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let pointer = e.path().to_string();
        if pointer == "." {
            e.inner().to_string()
        } else {
            format!("at {pointer}: {}", e.inner())
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn plain_http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost/api",
            "http://[::1]:9/",
            "https://acme.snowflakecomputing.com",
        ] {
            Client::new("snowflake", ok, Duration::from_secs(1)).unwrap();
        }
        for bad in [
            "http://acme.snowflakecomputing.com",
            "http://127.0.0.1.evil.example",
            "http://localhost@evil.example",
            "ftp://x",
            "acme.snowflakecomputing.com",
            "https://",
        ] {
            assert!(
                Client::new("snowflake", bad, Duration::from_secs(1)).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn debug_hides_header_values() {
        let c = Client::new("databricks", "https://x.example", Duration::from_secs(1))
            .unwrap()
            .with_header("authorization", "Bearer dapiSECRET");
        let shown = format!("{c:?}");
        assert!(shown.contains("authorization"));
        assert!(!shown.contains("dapiSECRET"));
    }

    #[test]
    fn decode_names_the_pointer() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            a: Vec<u32>,
        }
        let e = decode::<T>(br#"{"a":[1,"x"]}"#).unwrap_err();
        assert!(e.contains("a[1]"), "{e}");
    }
}
