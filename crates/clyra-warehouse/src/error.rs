//! The crate's errors: one enum for talking to a warehouse, one for reading snapshot files.

/// What went wrong talking to a warehouse or taking a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection string does not parse.
    #[error("invalid connection string `{dsn}`: {message}")]
    Dsn {
        /// The connection string, password removed.
        dsn: String,
        /// What the parser said.
        message: String,
    },
    /// The server could not be reached or refused the login.
    #[error("cannot connect to Postgres at `{dsn}`: {message}")]
    Connect {
        /// The connection string, password removed.
        dsn: String,
        /// The driver's or server's message.
        message: String,
    },
    /// A query failed on the server.
    #[error("{what} failed: {message}{}", sqlstate.as_deref().map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default())]
    Query {
        /// Which step: `anchor query`, `catalog query`, ...
        what: &'static str,
        /// The server's message (with its detail and hint) or the driver's.
        message: String,
        /// The SQLSTATE, when the server sent one.
        sqlstate: Option<String>,
    },
    /// The server lacks a function anchors need: it is older than Postgres 13.
    #[error("this server is not supported: {message}; anchors need Postgres 13 or newer (pg_current_snapshot, pg_current_xact_id_if_assigned)")]
    Unsupported {
        /// The server's message.
        message: String,
    },
    /// The server answered something Clyra cannot interpret.
    #[error("unexpected answer from the server for {what}: {message}")]
    Unexpected {
        /// Which value.
        what: String,
        /// What was wrong with it.
        message: String,
    },
    /// The snapshot transaction was assigned a transaction id: something in it wrote. Clyra's own
    /// queries never do; this guards against that changing unnoticed.
    #[error(
        "the snapshot transaction was assigned transaction id {xid}; snapshots must not write"
    )]
    XidAssigned {
        /// The transaction id.
        xid: String,
    },
    /// A table glob given for exact counts or content hashes matched no table in scope.
    #[error("{option} `{glob}` matches no table in scope ({in_scope} tables{}); globs match `schema.table`, with `*` and `?`", scope_hint(schemas))]
    GlobMatchesNothing {
        /// The option that carried the glob.
        option: &'static str,
        /// The glob.
        glob: String,
        /// How many tables were in scope.
        in_scope: usize,
        /// The schemas in scope, when restricted.
        schemas: Vec<String>,
    },
    /// An option's value is not acceptable.
    #[error("invalid {option} `{value}`: {message}")]
    Option {
        /// The option.
        option: &'static str,
        /// Its value.
        value: String,
        /// Why.
        message: String,
    },
    /// A value could not be written as canonical JSON.
    #[error("cannot write canonical JSON: {0}")]
    Canonical(String),
}

fn scope_hint(schemas: &[String]) -> String {
    if schemas.is_empty() {
        String::new()
    } else {
        format!(" in schemas {}", schemas.join(", "))
    }
}

impl Error {
    /// Wraps a driver error from step `what`.
    pub(crate) fn query(what: &'static str, e: &postgres::Error) -> Self {
        let (message, sqlstate) = pg_message(e);
        Error::Query {
            what,
            message,
            sqlstate,
        }
    }
}

/// The server's message with its detail and hint, or the driver's message, and the SQLSTATE.
pub(crate) fn pg_message(e: &postgres::Error) -> (String, Option<String>) {
    match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            (m, Some(db.code().code().to_string()))
        }
        None => {
            // The driver's Display says "db error" or "error connecting to server"; its source
            // carries the useful part.
            let mut m = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                m.push_str(&format!(": {s}"));
                src = s.source();
            }
            (m, None)
        }
    }
}

/// Why a snapshot file was refused. Every variant names where in the document (a JSON pointer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// Not JSON under Clyra's strict profile (RFC 8785 input rules).
    #[error("not valid JSON: {0}")]
    Json(#[from] clyra_evidence::jcs::JcsError),
    /// JSON, but not a Clyra warehouse snapshot.
    #[error("not a Clyra warehouse snapshot: {message} (JSON pointer `{pointer}`)")]
    NotASnapshot {
        /// Where.
        pointer: String,
        /// What is missing.
        message: String,
    },
    /// A snapshot of a format version this build does not read.
    #[error("unsupported snapshot format `{found}` at JSON pointer `/format`; this build reads `{expected}`")]
    Version {
        /// The format found.
        found: String,
        /// The format this build reads.
        expected: &'static str,
    },
    /// A member is missing, of the wrong type, unknown or inconsistent.
    #[error("invalid snapshot at JSON pointer `{pointer}`: {message}")]
    Invalid {
        /// Where.
        pointer: String,
        /// What is wrong.
        message: String,
    },
}

impl LoadError {
    /// The JSON pointer of the offending value, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            LoadError::Json(e) => e.location().map(|l| l.pointer.as_str()),
            LoadError::NotASnapshot { pointer, .. } | LoadError::Invalid { pointer, .. } => {
                Some(pointer)
            }
            LoadError::Version { .. } => Some("/format"),
        }
    }
}

/// Escapes one RFC 6901 reference token.
pub(crate) fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}
