//! MLflow model versions, recorded from the documented REST API: metadata only, never the model.
//!
//! - Workspace registry: `GET /api/2.0/mlflow/model-versions/get?name=...&version=...`.
//! - Unity Catalog registry: `GET /api/2.0/mlflow/unity-catalog/model-versions/get?name=...&version=...`
//!   (`name` is `catalog.schema.model`).
//!
//! The record ([`ModelVersionRecord`]) keeps name, version, source, run id, status and the
//! creation and last-update times; [`ModelVersion::sha256`] is the SHA-256 of its canonical JSON
//! (RFC 8785), so two recordings of an unchanged version carry the same digest. Tested against a
//! local stand-in built from the documentation, never against a live workspace.
//!
//! ```no_run
//! use clyra_warehouse::databricks::Token;
//! use clyra_warehouse::mlflow::{Mlflow, Registry};
//!
//! let token = Token::from_env("DATABRICKS_TOKEN")?;
//! let mlflow = Mlflow::new("https://adb-123.4.azuredatabricks.net", &token)?;
//! let mv = mlflow.model_version(Registry::UnityCatalog, "main.ml.churn", "3")?;
//! println!("{} {:?} sha256 {}", mv.def_value(), mv.record.status, mv.sha256);
//! # Ok::<(), clyra_warehouse::databricks::ApiError>(())
//! ```

use std::time::Duration;

use clyra_evidence::{jcs, Digest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::anchor::DefAnchor;
use crate::databricks::{api_error, ApiError, Token};
use crate::delta::{millis_rfc3339, now_rfc3339};
use crate::http::{self, HttpError};

/// The format tag of a serialized [`ModelVersion`].
pub const FORMAT: &str = "clyra.mlflow.model_version/v1";

/// Which model registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registry {
    /// The workspace (classic MLflow) model registry.
    Workspace,
    /// Models in Unity Catalog.
    UnityCatalog,
}

impl Registry {
    fn path(self) -> &'static str {
        match self {
            Registry::Workspace => "/api/2.0/mlflow/model-versions/get",
            Registry::UnityCatalog => "/api/2.0/mlflow/unity-catalog/model-versions/get",
        }
    }
}

/// What is recorded of a model version; [`ModelVersion::sha256`] covers exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelVersionRecord {
    /// The registry.
    pub registry: Registry,
    /// The workspace URL asked.
    pub host: String,
    /// The registered model's name.
    pub name: String,
    /// The version (a string in the API).
    pub version: String,
    /// Where the model's files came from (`source`): a run artifact URI or a storage path.
    pub source: Option<String>,
    /// The MLflow run that produced it.
    pub run_id: Option<String>,
    /// `PENDING_REGISTRATION`, `FAILED_REGISTRATION` or `READY`.
    pub status: Option<String>,
    /// `creation_timestamp`, ms since the epoch.
    pub creation_timestamp_ms: Option<i64>,
    /// The same, UTC, RFC 3339 with milliseconds.
    pub creation_timestamp: Option<String>,
    /// `last_updated_timestamp`, ms since the epoch.
    pub last_updated_timestamp_ms: Option<i64>,
    /// The same, UTC, RFC 3339 with milliseconds.
    pub last_updated_timestamp: Option<String>,
}

/// A recorded model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelVersion {
    /// Always [`FORMAT`].
    pub format: String,
    /// What was recorded.
    pub record: ModelVersionRecord,
    /// SHA-256 of the canonical JSON of [`ModelVersion::record`], lowercase hex.
    pub sha256: String,
    /// When it was read, UTC, RFC 3339 with microseconds (outside the digest).
    pub read_at: String,
}

impl ModelVersion {
    /// Wraps a record with its digest.
    pub fn new(record: ModelVersionRecord, read_at: String) -> Result<ModelVersion, ApiError> {
        let sha256 = record_digest(&record)?;
        Ok(ModelVersion {
            format: FORMAT.to_string(),
            record,
            sha256,
            read_at,
        })
    }

    /// Canonical JSON (RFC 8785) bytes.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, ApiError> {
        jcs::to_canonical_vec(self).map_err(|e| ApiError::Unexpected {
            service: "mlflow",
            message: format!("cannot write canonical JSON: {e}"),
        })
    }

    /// Reads a file written by [`ModelVersion::to_canonical_json`] and checks its digest.
    pub fn from_json(bytes: &[u8]) -> Result<ModelVersion, String> {
        let mv: ModelVersion = http::decode(bytes)?;
        if mv.format != FORMAT {
            return Err(format!(
                "unsupported format `{}` at JSON pointer `/format`; this build reads `{FORMAT}`",
                mv.format
            ));
        }
        let expected = record_digest(&mv.record).map_err(|e| e.to_string())?;
        if expected != mv.sha256 {
            return Err(format!(
                "the digest at JSON pointer `/sha256` does not match the record (expected {expected})"
            ));
        }
        Ok(mv)
    }

    /// The DEF anchor value: `name/version`.
    pub fn def_value(&self) -> String {
        format!("{}/{}", self.record.name, self.record.version)
    }

    /// The model version as a DEF predicate anchor: platform `mlflow`, kind
    /// `mlflow_model_version`, value `name/version`, read at [`ModelVersion::read_at`].
    pub fn def_anchors(&self) -> Vec<DefAnchor> {
        vec![DefAnchor {
            platform: "mlflow".to_string(),
            kind: "mlflow_model_version".to_string(),
            value: self.def_value(),
            seq: None,
            at: self.read_at.parse().ok(),
        }]
    }
}

fn record_digest(record: &ModelVersionRecord) -> Result<String, ApiError> {
    let bytes = jcs::to_canonical_vec(record).map_err(|e| ApiError::Unexpected {
        service: "mlflow",
        message: format!("cannot write canonical JSON: {e}"),
    })?;
    Ok(Digest::sha256(&bytes).to_hex())
}

/// The documented `model_version` object (the members Clyra records; others are ignored).
#[derive(Debug, Deserialize)]
struct ApiModelVersion {
    name: String,
    version: Value,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    creation_timestamp: Option<Value>,
    #[serde(default)]
    last_updated_timestamp: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct GetResponse {
    model_version: ApiModelVersion,
}

/// An int64 as JSON gives it: a number, or a string of digits (proto3 JSON).
fn int64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client of a workspace's MLflow REST API.
#[derive(Debug)]
pub struct Mlflow {
    http: http::Client,
}

impl Mlflow {
    /// A client for the workspace at `host` (`https://...`; `http://` only for loopback).
    pub fn new(host: &str, token: &Token) -> Result<Mlflow, ApiError> {
        let http = http::Client::new("mlflow", host, Duration::from_secs(60))?
            .with_header("authorization", &token.bearer());
        Ok(Mlflow { http })
    }

    /// The underlying HTTP client.
    pub fn http_mut(&mut self) -> &mut http::Client {
        &mut self.http
    }

    /// Reads one model version's metadata.
    pub fn model_version(
        &self,
        registry: Registry,
        name: &str,
        version: &str,
    ) -> Result<ModelVersion, ApiError> {
        if name.is_empty() || name.len() > 1024 || name.chars().any(char::is_control) {
            return Err(ApiError::Invalid {
                what: "model name",
                value: name.to_string(),
                message: "expected 1 to 1024 characters, no control characters".into(),
            });
        }
        if version.is_empty() || version.len() > 19 || !version.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ApiError::Invalid {
                what: "model version",
                value: version.to_string(),
                message: "expected a version number such as 3".into(),
            });
        }
        let read_at = now_rfc3339();
        let path = registry.path();
        let query = format!(
            "{path}?name={}&version={}",
            encode_query(name),
            encode_query(version)
        );
        let resp = self.http.send("GET", &query, None)?;
        if !(200..300).contains(&resp.status) {
            return Err(api_error(
                &self.http,
                "mlflow",
                "GET",
                path,
                || format!("model version {name}/{version}"),
                &resp,
            ));
        }
        let got: GetResponse = http::decode(&resp.body).map_err(|message| {
            ApiError::Http(HttpError::Decode {
                service: "mlflow",
                method: "GET",
                path: path.to_string(),
                message,
            })
        })?;
        let mv = got.model_version;
        let got_version = match &mv.version {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(ApiError::Unexpected {
                    service: "mlflow",
                    message: format!("model_version.version is {other}, not a version"),
                })
            }
        };
        if mv.name != name || got_version != version {
            return Err(ApiError::Unexpected {
                service: "mlflow",
                message: format!(
                    "asked for {name}/{version}, the answer describes {}/{got_version}",
                    mv.name
                ),
            });
        }
        let ts = |v: &Option<Value>, what: &str| -> Result<Option<i64>, ApiError> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => int64(v).map(Some).ok_or_else(|| ApiError::Unexpected {
                    service: "mlflow",
                    message: format!("model_version.{what} is {v}, not milliseconds"),
                }),
            }
        };
        let created = ts(&mv.creation_timestamp, "creation_timestamp")?;
        let updated = ts(&mv.last_updated_timestamp, "last_updated_timestamp")?;
        let record = ModelVersionRecord {
            registry,
            host: self.http.base_url().to_string(),
            name: mv.name,
            version: got_version,
            source: mv.source,
            run_id: mv.run_id,
            status: mv.status,
            creation_timestamp_ms: created,
            creation_timestamp: created.and_then(millis_rfc3339),
            last_updated_timestamp_ms: updated,
            last_updated_timestamp: updated.and_then(millis_rfc3339),
        };
        ModelVersion::new(record, read_at)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(encode_query("main.ml.churn"), "main.ml.churn");
        assert_eq!(encode_query("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn digest_covers_the_record_and_is_checked_on_read() {
        let record = ModelVersionRecord {
            registry: Registry::Workspace,
            host: "https://x.example".into(),
            name: "churn".into(),
            version: "3".into(),
            source: Some("runs:/abc/model".into()),
            run_id: Some("abc".into()),
            status: Some("READY".into()),
            creation_timestamp_ms: Some(1),
            creation_timestamp: millis_rfc3339(1),
            last_updated_timestamp_ms: None,
            last_updated_timestamp: None,
        };
        let mv = ModelVersion::new(record.clone(), "2026-01-01T00:00:00.000000Z".into()).unwrap();
        let later = ModelVersion::new(record, "2026-06-01T00:00:00.000000Z".into()).unwrap();
        assert_eq!(mv.sha256, later.sha256, "read_at is outside the digest");
        let bytes = mv.to_canonical_json().unwrap();
        assert_eq!(ModelVersion::from_json(&bytes).unwrap(), mv);
        let tampered = String::from_utf8(bytes)
            .unwrap()
            .replace("READY", "FAILED_REGISTRATION");
        let e = ModelVersion::from_json(tampered.as_bytes()).unwrap_err();
        assert!(e.contains("/sha256"), "{e}");
        assert_eq!(mv.def_value(), "churn/3");
        assert_eq!(mv.def_anchors()[0].kind, "mlflow_model_version");
    }
}
