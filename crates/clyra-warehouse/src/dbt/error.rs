//! The dbt module's error: every variant names the file, and where in it.

/// What went wrong reading or recording dbt artifacts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbtError {
    /// A file or directory could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file is larger than Clyra reads.
    #[error("`{path}` is {size} bytes, more than the {max} Clyra reads")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Not JSON, or JSON of the wrong shape.
    #[error("`{file}`: {message} at line {line}, column {column} (JSON pointer `{pointer}`)")]
    Json {
        /// The file (`run_results.json`, a path, ...).
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// Where in the document (RFC 6901).
        pointer: String,
        /// What the parser said.
        message: String,
    },
    /// A schema version this build does not read (or none at all).
    #[error("`{file}`: {}; this build reads {supported} (the version is `metadata.dbt_schema_version`)",
        match found { Some(v) => format!("unsupported dbt schema version `{v}`"), None => "no dbt schema version".to_string() })]
    UnsupportedVersion {
        /// The file.
        file: String,
        /// What `metadata.dbt_schema_version` says, when present.
        found: Option<String>,
        /// What is supported, e.g. `run-results v6 (https://schemas.getdbt.com/dbt/run-results/v6.json)`.
        supported: String,
    },
    /// Neither run_results.json nor the JSON log is available: there is nothing to record.
    #[error("nothing to record: {0}")]
    NothingToRecord(String),
    /// No invocation id anywhere (run_results, manifest, log): the run's events cannot be named.
    #[error("no dbt invocation id in run_results.json, manifest.json or the log; the events of the run cannot be named deterministically")]
    NoInvocationId,
    /// A value could not be written as canonical JSON.
    #[error("cannot write canonical JSON for `{what}`: {message}")]
    Canonical {
        /// What was written.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
    /// A recorded document (`dbt/run.json`, `dbt/lineage.json`) has the wrong format.
    #[error("`{file}`: format `{found}`, expected `{expected}`")]
    Format {
        /// The file.
        file: String,
        /// What it says.
        found: String,
        /// What this build reads.
        expected: &'static str,
    },
}

impl DbtError {
    /// The JSON pointer of the offending value, when the error has one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            DbtError::Json { pointer, .. } => Some(pointer),
            DbtError::UnsupportedVersion { .. } => Some("/metadata/dbt_schema_version"),
            _ => None,
        }
    }

    pub(crate) fn canonical(what: &'static str, e: impl std::fmt::Display) -> DbtError {
        DbtError::Canonical {
            what,
            message: e.to_string(),
        }
    }
}
