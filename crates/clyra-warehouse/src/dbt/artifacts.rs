//! dbt's artifacts: `run_results.json` (schema v6) and `manifest.json` (schema v12).
//!
//! The readers are typed and tolerant: only the members Clyra records are read, unknown members
//! are ignored (dbt adds some in minor releases), and most members are optional. The schema
//! version is read first from `metadata.dbt_schema_version`
//! (`https://schemas.getdbt.com/dbt/<kind>/v<major>.json`): a file of another kind, another major
//! version or without one is refused with a message naming the file, the version found and the
//! versions supported, before its shape is checked. Every other error names the file, the line
//! and column and the JSON pointer of the offending value. The input is untrusted: nothing in it
//! can make a reader panic (`fuzz/fuzz_targets/dbt_artifacts.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::DbtError;
use crate::snapshot::path_to_pointer;

/// Largest artifact file read (dbt manifests of big projects reach hundreds of MB).
pub const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

/// The run_results schema this build reads.
pub const RUN_RESULTS_V6: &str = "https://schemas.getdbt.com/dbt/run-results/v6.json";

/// The manifest schema this build reads.
pub const MANIFEST_V12: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// The files of a dbt target directory Clyra reads; each is optional (dbt writes no
/// run_results.json when it is killed with SIGTERM). The raw bytes are kept: run_results.json is
/// embedded in bundles byte for byte, and both files' SHA-256 are recorded.
#[derive(Debug, Clone, Default)]
pub struct TargetArtifacts {
    /// `manifest.json`, parsed.
    pub manifest: Option<Manifest>,
    /// `run_results.json`, parsed.
    pub run_results: Option<RunResults>,
    /// `manifest.json`'s bytes.
    pub manifest_bytes: Option<Vec<u8>>,
    /// `run_results.json`'s bytes.
    pub run_results_bytes: Option<Vec<u8>>,
}

/// Reads `manifest.json` and `run_results.json` from a dbt target directory. A missing file is
/// `None`; an unreadable, oversized, malformed or unsupported one is an error naming it.
pub fn read_target(dir: &Path) -> Result<TargetArtifacts, DbtError> {
    let meta = std::fs::metadata(dir).map_err(|source| DbtError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(DbtError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a directory (give dbt's target directory, which holds run_results.json and manifest.json)",
            ),
        });
    }
    let manifest_path = dir.join("manifest.json");
    let run_results_path = dir.join("run_results.json");
    let manifest_bytes = read_optional(&manifest_path)?;
    let run_results_bytes = read_optional(&run_results_path)?;
    let manifest = match &manifest_bytes {
        Some(b) => Some(Manifest::from_json(
            b,
            &manifest_path.display().to_string(),
        )?),
        None => None,
    };
    let run_results = match &run_results_bytes {
        Some(b) => Some(RunResults::from_json(
            b,
            &run_results_path.display().to_string(),
        )?),
        None => None,
    };
    Ok(TargetArtifacts {
        manifest,
        run_results,
        manifest_bytes,
        run_results_bytes,
    })
}

/// Reads a whole file of at most [`MAX_ARTIFACT_BYTES`]; `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, DbtError> {
    let io = |source| DbtError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if meta.len() > MAX_ARTIFACT_BYTES {
        return Err(DbtError::TooLarge {
            path: path.display().to_string(),
            size: meta.len(),
            max: MAX_ARTIFACT_BYTES,
        });
    }
    std::fs::read(path).map(Some).map_err(io)
}

// ---------------------------------------------------------------------------------------------
// run_results.json

/// `run_results.json` (schema v6), the members Clyra reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunResults {
    /// `metadata`.
    pub metadata: RunResultsMetadata,
    /// `results`: one per node dbt ran (or skipped).
    #[serde(default)]
    pub results: Vec<RunResult>,
    /// `elapsed_time`, seconds.
    #[serde(default)]
    pub elapsed_time: Option<f64>,
    /// `args`: the invocation's arguments.
    #[serde(default)]
    pub args: RunArgs,
}

/// `run_results.json` `metadata`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct RunResultsMetadata {
    /// `dbt_schema_version` (checked before the rest is read).
    #[serde(default)]
    pub dbt_schema_version: Option<String>,
    /// `dbt_version`, e.g. `1.11.16`.
    #[serde(default)]
    pub dbt_version: Option<String>,
    /// `generated_at`: when dbt wrote the file.
    #[serde(default)]
    pub generated_at: Option<String>,
    /// `invocation_id`.
    #[serde(default)]
    pub invocation_id: Option<String>,
    /// `invocation_started_at`.
    #[serde(default)]
    pub invocation_started_at: Option<String>,
}

/// `run_results.json` `args`, the members Clyra reads.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct RunArgs {
    /// `invocation_command`: the exact command line.
    #[serde(default)]
    pub invocation_command: Option<String>,
    /// `which`: the subcommand (`build`, `run`, `test`, `seed`, ...).
    #[serde(default)]
    pub which: Option<String>,
    /// `target`, when `--target` was given.
    #[serde(default)]
    pub target: Option<String>,
}

/// One entry of `results`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunResult {
    /// `unique_id`, e.g. `model.shop.orders`.
    pub unique_id: String,
    /// `status`: `success`, `error`, `skipped` (models, seeds, snapshots); `pass`, `fail`,
    /// `warn`, `error`, `skipped` (tests); `no-op` (exposures); ...
    pub status: String,
    /// `timing`: the `compile` and `execute` steps.
    #[serde(default)]
    pub timing: Vec<Timing>,
    /// `thread_id`.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// `execution_time`, seconds.
    #[serde(default)]
    pub execution_time: Option<f64>,
    /// `adapter_response`.
    #[serde(default)]
    pub adapter_response: AdapterResponse,
    /// `message`.
    #[serde(default)]
    pub message: Option<String>,
    /// `failures`: failing rows of a test.
    #[serde(default)]
    pub failures: Option<u64>,
    /// `compiled_code`: the SQL dbt ran.
    #[serde(default)]
    pub compiled_code: Option<String>,
    /// `relation_name`, e.g. `"db"."schema"."name"`.
    #[serde(default)]
    pub relation_name: Option<String>,
}

impl RunResult {
    /// The `execute` step of `timing`, when dbt recorded one.
    pub fn execute_timing(&self) -> Option<&Timing> {
        self.timing.iter().find(|t| t.name == "execute")
    }
}

/// One step of `timing`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Timing {
    /// `compile` or `execute`.
    pub name: String,
    /// When the step started.
    #[serde(default)]
    pub started_at: Option<String>,
    /// When the step ended.
    #[serde(default)]
    pub completed_at: Option<String>,
}

/// `adapter_response`: what the warehouse answered.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct AdapterResponse {
    /// `_message`, e.g. `SELECT 100`.
    #[serde(default, rename = "_message")]
    pub message: Option<String>,
    /// `code`, e.g. `SELECT`.
    #[serde(default)]
    pub code: Option<String>,
    /// `rows_affected`; `-1` means unknown (views).
    #[serde(default)]
    pub rows_affected: Option<i64>,
    /// `query_id`: the warehouse's id of the query (Snowflake, Databricks; empty on Postgres).
    #[serde(default)]
    pub query_id: Option<String>,
}

impl RunResults {
    /// Reads `run_results.json` bytes; `file` names the file in errors.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<RunResults, DbtError> {
        check_version(bytes, file, "run-results", 6, RUN_RESULTS_V6)?;
        parse_json(bytes, file)
    }
}

// ---------------------------------------------------------------------------------------------
// manifest.json

/// `manifest.json` (schema v12), the members Clyra reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Manifest {
    /// `metadata`.
    pub metadata: ManifestMetadata,
    /// `nodes`: models, seeds, snapshots, tests, analyses, operations.
    #[serde(default)]
    pub nodes: BTreeMap<String, ManifestNode>,
    /// `sources`.
    #[serde(default)]
    pub sources: BTreeMap<String, ManifestSource>,
    /// `exposures`.
    #[serde(default)]
    pub exposures: BTreeMap<String, ManifestExposure>,
}

/// `manifest.json` `metadata`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ManifestMetadata {
    /// `dbt_schema_version`.
    #[serde(default)]
    pub dbt_schema_version: Option<String>,
    /// `dbt_version`.
    #[serde(default)]
    pub dbt_version: Option<String>,
    /// `generated_at`.
    #[serde(default)]
    pub generated_at: Option<String>,
    /// `invocation_id` (of the invocation that wrote the manifest).
    #[serde(default)]
    pub invocation_id: Option<String>,
    /// `invocation_started_at`.
    #[serde(default)]
    pub invocation_started_at: Option<String>,
    /// `project_name`.
    #[serde(default)]
    pub project_name: Option<String>,
    /// `project_id`.
    #[serde(default)]
    pub project_id: Option<String>,
    /// `adapter_type`, e.g. `postgres`.
    #[serde(default)]
    pub adapter_type: Option<String>,
}

/// A node of `nodes`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ManifestNode {
    /// `unique_id`.
    pub unique_id: String,
    /// `resource_type`: `model`, `seed`, `snapshot`, `test`, `analysis`, `operation`, ...
    pub resource_type: String,
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `package_name`.
    #[serde(default)]
    pub package_name: Option<String>,
    /// `database`.
    #[serde(default)]
    pub database: Option<String>,
    /// `schema`.
    #[serde(default)]
    pub schema: Option<String>,
    /// `alias`: the relation's name.
    #[serde(default)]
    pub alias: Option<String>,
    /// `relation_name`, e.g. `"db"."schema"."name"`.
    #[serde(default)]
    pub relation_name: Option<String>,
    /// `original_file_path`.
    #[serde(default)]
    pub original_file_path: Option<String>,
    /// `checksum`: SHA-256 of the file's contents, surrounding whitespace stripped.
    #[serde(default)]
    pub checksum: Option<Checksum>,
    /// `config`.
    #[serde(default)]
    pub config: NodeConfig,
    /// `meta`.
    #[serde(default)]
    pub meta: Value,
    /// `depends_on`.
    #[serde(default)]
    pub depends_on: DependsOn,
    /// `attached_node`: the node a generic test tests.
    #[serde(default)]
    pub attached_node: Option<String>,
    /// `compiled_code`, when the manifest was written after compilation.
    #[serde(default)]
    pub compiled_code: Option<String>,
    /// `test_metadata`: the generic test's name and arguments.
    #[serde(default)]
    pub test_metadata: Option<TestMetadata>,
}

impl ManifestNode {
    /// The relation's name: `alias`, else `name`.
    pub fn identifier(&self) -> Option<&str> {
        self.alias.as_deref().or(self.name.as_deref())
    }
}

/// `checksum`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Checksum {
    /// The algorithm, `sha256` (or `none` for nodes without a file).
    pub name: String,
    /// The digest, lowercase hex.
    pub checksum: String,
}

/// `config`, the members Clyra reads.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct NodeConfig {
    /// `materialized`: `table`, `view`, `incremental`, `ephemeral`, `seed`, `snapshot`, `test`.
    #[serde(default)]
    pub materialized: Option<String>,
    /// `meta`.
    #[serde(default)]
    pub meta: Value,
}

/// `depends_on`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct DependsOn {
    /// The nodes (models, seeds, snapshots, sources, ...) this one reads.
    #[serde(default)]
    pub nodes: Vec<String>,
}

/// `test_metadata`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TestMetadata {
    /// The generic test's name (`not_null`, `unique`, ...).
    #[serde(default)]
    pub name: Option<String>,
}

/// A source table of `sources`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ManifestSource {
    /// `unique_id`, e.g. `source.shop.raw.orders`.
    pub unique_id: String,
    /// `name`: the table's name in the source block.
    #[serde(default)]
    pub name: Option<String>,
    /// `source_name`: the source block's name.
    #[serde(default)]
    pub source_name: Option<String>,
    /// `database`.
    #[serde(default)]
    pub database: Option<String>,
    /// `schema`.
    #[serde(default)]
    pub schema: Option<String>,
    /// `identifier`: the table's name in the warehouse.
    #[serde(default)]
    pub identifier: Option<String>,
    /// `relation_name`.
    #[serde(default)]
    pub relation_name: Option<String>,
    /// `meta` of the table (dbt merges the source block's into it).
    #[serde(default)]
    pub meta: Value,
    /// `source_meta`: `meta` of the source block.
    #[serde(default)]
    pub source_meta: Value,
    /// `config`.
    #[serde(default)]
    pub config: NodeConfig,
    /// `loader`.
    #[serde(default)]
    pub loader: Option<String>,
}

/// An exposure of `exposures`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ManifestExposure {
    /// `unique_id`, e.g. `exposure.shop.revenue_dashboard`.
    pub unique_id: String,
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `type`: `dashboard`, `notebook`, `analysis`, `ml`, `application`.
    #[serde(default, rename = "type")]
    pub exposure_type: Option<String>,
    /// `label`.
    #[serde(default)]
    pub label: Option<String>,
    /// `url`.
    #[serde(default)]
    pub url: Option<String>,
    /// `depends_on`.
    #[serde(default)]
    pub depends_on: DependsOn,
}

impl Manifest {
    /// Reads `manifest.json` bytes; `file` names the file in errors.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<Manifest, DbtError> {
        check_version(bytes, file, "manifest", 12, MANIFEST_V12)?;
        parse_json(bytes, file)
    }
}

// ---------------------------------------------------------------------------------------------

/// Splits `https://schemas.getdbt.com/dbt/<kind>/v<major>.json` into `(kind, major)`.
pub fn schema_version(url: &str) -> Option<(&str, u32)> {
    let rest = url.strip_suffix(".json")?;
    let (head, version) = rest.rsplit_once('/')?;
    let major = version.strip_prefix('v')?;
    if major.is_empty() || major.len() > 4 || !major.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = head.rsplit_once('/').map_or(head, |(_, k)| k);
    Some((kind, major.parse().ok()?))
}

/// Refuses anything but `kind` at major version `major` before the document's shape is read.
fn check_version(
    bytes: &[u8],
    file: &str,
    kind: &str,
    major: u32,
    url: &str,
) -> Result<(), DbtError> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        metadata: Option<Value>,
    }
    let probe: Probe = parse_json(bytes, file)?;
    // serde also reads a struct from an array; a dbt artifact is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DbtError::Json {
            file: file.to_string(),
            line: 1,
            column: 1,
            pointer: String::new(),
            message: "the document is not a JSON object".to_string(),
        });
    }
    let found = probe
        .metadata
        .as_ref()
        .and_then(|m| m.get("dbt_schema_version"))
        .and_then(Value::as_str);
    let supported = format!("{kind} v{major} ({url})");
    match found.and_then(schema_version) {
        Some((k, m)) if k == kind && m == major => Ok(()),
        _ => Err(DbtError::UnsupportedVersion {
            file: file.to_string(),
            found: found.map(str::to_string),
            supported,
        }),
    }
}

/// Deserializes with the error's location: line, column and JSON pointer.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T, DbtError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(file, e))?;
    de.end().map_err(|e| DbtError::Json {
        file: file.to_string(),
        line: e.line(),
        column: e.column(),
        pointer: String::new(),
        message: e.to_string(),
    })?;
    Ok(value)
}

fn json_error(file: &str, e: serde_path_to_error::Error<serde_json::Error>) -> DbtError {
    let pointer = path_to_pointer(e.path());
    let inner = e.into_inner();
    // serde_json appends " at line L column C"; the error says where itself.
    let mut message = inner.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    DbtError::Json {
        file: file.to_string(),
        line: inner.line(),
        column: inner.column(),
        pointer,
        message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schema_versions_parse() {
        assert_eq!(schema_version(RUN_RESULTS_V6), Some(("run-results", 6)));
        assert_eq!(schema_version(MANIFEST_V12), Some(("manifest", 12)));
        for bad in [
            "",
            "v6.json",
            "https://x/manifest/v.json",
            "https://x/manifest/12.json",
            "https://x/manifest/v12",
            "https://x/manifest/v1x.json",
        ] {
            assert_eq!(schema_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn refuses_other_versions_and_kinds() {
        let doc =
            |v: &str| format!(r#"{{"metadata":{{"dbt_schema_version":"{v}"}},"results":[]}}"#);
        assert!(RunResults::from_json(doc(RUN_RESULTS_V6).as_bytes(), "rr.json").is_ok());
        for v in [
            "https://schemas.getdbt.com/dbt/run-results/v7.json",
            "https://schemas.getdbt.com/dbt/run-results/v5.json",
            MANIFEST_V12,
            "nonsense",
        ] {
            let e = RunResults::from_json(doc(v).as_bytes(), "rr.json").unwrap_err();
            let m = e.to_string();
            assert!(matches!(e, DbtError::UnsupportedVersion { .. }), "{m}");
            assert!(
                m.contains("rr.json") && m.contains(v) && m.contains(RUN_RESULTS_V6),
                "{m}"
            );
        }
        let e = RunResults::from_json(br#"{"metadata":{},"results":[]}"#, "rr.json").unwrap_err();
        assert!(e.to_string().contains("no dbt schema version"), "{e}");
        let e = Manifest::from_json(
            br#"{"metadata":{"dbt_schema_version":"https://schemas.getdbt.com/dbt/manifest/v13.json"}}"#,
            "m.json",
        )
        .unwrap_err();
        assert!(e.to_string().contains("manifest/v13.json"), "{e}");
        assert!(e.to_string().contains("manifest v12"), "{e}");
    }

    #[test]
    fn errors_name_file_line_column_and_pointer() {
        let text = format!(
            "{{\"metadata\": {{\"dbt_schema_version\": \"{RUN_RESULTS_V6}\"}},\n \"results\": [\n  {{\"unique_id\": \"model.a.b\", \"status\": \"success\", \"failures\": \"many\"}}\n ]\n}}"
        );
        let e = RunResults::from_json(text.as_bytes(), "target/run_results.json").unwrap_err();
        let DbtError::Json {
            file,
            line,
            pointer,
            ..
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!(file, "target/run_results.json");
        assert_eq!(*line, 3);
        assert_eq!(pointer, "/results/0/failures");
        assert!(e.to_string().contains("line 3, column"), "{e}");
        let e = RunResults::from_json(b"{\"metadata\": {", "rr.json").unwrap_err();
        assert!(matches!(e, DbtError::Json { line: 1, .. }), "{e}");
        let e = RunResults::from_json(b"[]", "rr.json").unwrap_err();
        assert!(matches!(e, DbtError::Json { .. }), "{e}");
    }
}
