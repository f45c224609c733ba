//! The warehouse doctor: is this connection string usable by Clyra, and if not, what exactly to
//! do about it.
//!
//! [`check`] detects the platform from the connection string, and for Postgres connects and
//! checks the server version against the compatibility matrix (`docs/compatibility/README.md`),
//! standby status, the privileges anchors and snapshots need, the guard installation, the clock
//! skew between this host and the server, and the settings that change what a snapshot can say.
//! Every check gives one [`Finding`] with a stable `id`; every `warn` and `fail` carries a
//! copy-pasteable `fix` (shell or SQL). Measured values (times, skew) are in
//! [`Finding::measured`], never in the message, so two runs against the same server give the same
//! findings apart from `measured`.
//!
//! Nothing is written: the doctor runs read-only queries, and for BigQuery, Snowflake and
//! Databricks it only reports what Clyra supports, without touching the network.
//!
//! ```no_run
//! use clyra_warehouse::doctor::{self, Options, Status};
//!
//! let report = doctor::check("postgres://ci@db:5432/prod", &Options::default());
//! for f in &report.findings {
//!     println!("{:<5} {:<28} {}", f.status.as_str(), f.id, f.message);
//!     if let Some(fix) = &f.fix {
//!         println!("      fix: {fix}");
//!     }
//! }
//! assert!(report.status != Status::Fail);
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postgres::config::Host;
use postgres::{Client, Config};
use serde::Serialize;

use crate::pg::{self, quote_ident};
use crate::suggest;

/// A finding's verdict. Ordered by severity: `Skip < Ok < Warn < Fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not checked (the check does not apply, or an earlier one failed).
    Skip,
    /// Fine.
    Ok,
    /// Works, but something is degraded or risky; `fix` says what to do.
    Warn,
    /// Does not work; `fix` says what to do.
    Fail,
}

impl Status {
    /// `ok`, `warn`, `fail` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Skip => "skip",
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `connect`, `privileges.anchor`, `settings.autovacuum`.
    pub id: String,
    /// The verdict.
    pub status: Status,
    /// What was found, for people. Contains no measured values and no passwords.
    pub message: String,
    /// A copy-pasteable shell or SQL snippet that fixes the problem; always present for `warn`
    /// and `fail`.
    pub fix: Option<String>,
    /// Measured values (milliseconds and the like), kept out of `message` so that reports compare.
    pub measured: BTreeMap<String, f64>,
}

impl Finding {
    /// A finding without measurements.
    pub fn new(id: impl Into<String>, status: Status, message: impl Into<String>) -> Self {
        Finding {
            id: id.into(),
            status,
            message: message.into(),
            fix: None,
            measured: BTreeMap::new(),
        }
    }

    /// With a fix.
    #[must_use]
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// With a measured value.
    #[must_use]
    pub fn measure(mut self, name: &str, value: f64) -> Self {
        self.measured.insert(name.to_string(), value);
        self
    }
}

/// The platform a connection string points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// PostgreSQL: `postgres://`, `postgresql://` or libpq `key=value` pairs.
    Postgres,
    /// Snowflake: `snowflake://` or `https://*.snowflakecomputing.com`.
    Snowflake,
    /// Databricks: `databricks://` or an `https://` workspace host.
    Databricks,
    /// Google BigQuery: `bigquery://` or `https://*.googleapis.com/bigquery`. Phase 1.5.
    #[serde(rename = "bigquery")]
    BigQuery,
    /// Something else.
    Unknown,
}

impl Platform {
    /// The platform's name for people.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Postgres => "Postgres",
            Platform::Snowflake => "Snowflake",
            Platform::Databricks => "Databricks",
            Platform::BigQuery => "BigQuery",
            Platform::Unknown => "unknown",
        }
    }
}

/// Detects the platform from the connection string's scheme or host, offline. Returns the
/// platform and what it was recognized by.
pub fn detect(dsn: &str) -> (Platform, String) {
    let dsn = dsn.trim();
    let Some((scheme, rest)) = dsn.split_once("://") else {
        // libpq key=value pairs (or a broken URL, which the parser reports).
        return (Platform::Postgres, "libpq key=value string".to_string());
    };
    let lower = scheme.to_ascii_lowercase();
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match lower.as_str() {
        "postgres" | "postgresql" if lower == scheme => {
            return (Platform::Postgres, format!("{scheme}:// URL"))
        }
        "snowflake" => return (Platform::Snowflake, "snowflake:// URL".to_string()),
        "databricks" => return (Platform::Databricks, "databricks:// URL".to_string()),
        "bigquery" => return (Platform::BigQuery, "bigquery:// URL".to_string()),
        "https" | "http" => {
            let path = rest.get(host.len()..).unwrap_or("");
            if host.ends_with(".snowflakecomputing.com") {
                return (Platform::Snowflake, format!("host `{host}`"));
            }
            if host.ends_with(".cloud.databricks.com")
                || host.ends_with(".azuredatabricks.net")
                || host.ends_with(".gcp.databricks.com")
            {
                return (Platform::Databricks, format!("host `{host}`"));
            }
            if host.ends_with("googleapis.com") && path.contains("/bigquery") {
                return (Platform::BigQuery, format!("host `{host}`"));
            }
        }
        _ => {}
    }
    match suggest::suggest_scheme(scheme) {
        // A mistyped Postgres scheme: Postgres, and the parser's finding says what to fix.
        Some(fixed @ ("postgres" | "postgresql")) => (
            Platform::Postgres,
            format!("scheme `{scheme}://`, probably `{fixed}://`"),
        ),
        _ => (Platform::Unknown, format!("scheme `{scheme}://`")),
    }
}

/// Options for [`check`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The password, when not in the connection string (the CLI passes `PGPASSWORD`).
    pub password: Option<String>,
    /// The connect timeout, overriding the connection string's (default: [`pg::DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Option<Duration>,
    /// Schemas whose tables the `pg_stats` visibility check looks at (default: all but the
    /// system schemas).
    pub schemas: Vec<String>,
}

/// The doctor's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The connection string, password removed.
    pub target: String,
    /// The detected platform.
    pub platform: Platform,
    /// The worst status of all findings (`skip` counts as `ok`).
    pub status: Status,
    /// The findings, in a fixed order.
    pub findings: Vec<Finding>,
}

impl Report {
    fn new(target: String, platform: Platform, findings: Vec<Finding>) -> Self {
        let status = worst(&findings);
        Report {
            target,
            platform,
            status,
            findings,
        }
    }

    /// True when any finding failed.
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }
}

/// The worst status among `findings`, `skip` counting as `ok`.
pub fn worst(findings: &[Finding]) -> Status {
    findings
        .iter()
        .map(|f| f.status.max(Status::Ok))
        .max()
        .unwrap_or(Status::Ok)
}

/// Postgres checks after the connection, in report order. When the connection fails they are all
/// reported as `skip`, so a Postgres report always has the same ids.
pub const POSTGRES_CHECKS: &[&str] = &[
    "server.version",
    "server.recovery",
    "privileges.connect",
    "privileges.anchor",
    "privileges.snapshot",
    "privileges.pg_stats",
    "guards.installed",
    "guards.event_trigger",
    "clock.skew",
    "settings.track_counts",
    "settings.autovacuum",
    "settings.statement_timeout",
    "settings.default_transaction_read_only",
    "settings.wal_level",
];

/// Clock skew above this warns: anchors carry the server's `clock_timestamp()` and journal
/// entries this host's clock, and bundles line them up; past a second, events on the two sides
/// can appear in the wrong order at the granularity people read them.
pub const SKEW_WARN: Duration = Duration::from_secs(1);
/// Clock skew above this fails: anchors and the journal entries around them (dbt run start and
/// end, model timings of a few seconds) no longer line up, and `bundle export --from/--to` cuts
/// at the wrong place.
pub const SKEW_FAIL: Duration = Duration::from_secs(30);
/// A `statement_timeout` below this (and not 0) warns: snapshots with exact counts or content
/// hashes read whole tables (about 0.25 and 0.6 µs per row measured here), and catalog queries on
/// bloated catalogs took up to 0.1 s per 1,000 tables.
pub const MIN_STATEMENT_TIMEOUT_MS: u64 = 5_000;

/// Runs the doctor on `dsn`. Never panics and never returns an error: every problem is a finding.
pub fn check(dsn: &str, options: &Options) -> Report {
    let target = suggest::redact(dsn);
    let (platform, by) = detect(dsn);
    let mut findings = Vec::new();
    match platform {
        Platform::Postgres => {}
        Platform::Snowflake => {
            findings.push(Finding::new(
                "platform",
                Status::Ok,
                format!(
                    "Snowflake (from the {by}): Clyra anchors Snowflake statements by query id, \
                     session, warehouse, role and end time through the Snowflake SQL REST API, \
                     reconciled later against ACCOUNT_USAGE.QUERY_HISTORY; use `clyra warehouse \
                     snowflake ...`"
                ),
            ));
            findings.push(
                Finding::new(
                    "connect",
                    Status::Skip,
                    "not checked: the doctor's connection checks cover Postgres",
                )
                .fix("clyra warehouse snowflake --help"),
            );
            return Report::new(target, platform, findings);
        }
        Platform::Databricks => {
            findings.push(Finding::new(
                "platform",
                Status::Ok,
                format!(
                    "Databricks (from the {by}): Clyra anchors Delta tables by version and the \
                     SHA-256 of the _delta_log commit, and records MLflow model versions, through \
                     documented REST APIs; use `clyra warehouse databricks ...`"
                ),
            ));
            findings.push(
                Finding::new(
                    "connect",
                    Status::Skip,
                    "not checked: the doctor's connection checks cover Postgres",
                )
                .fix("clyra warehouse databricks --help"),
            );
            return Report::new(target, platform, findings);
        }
        Platform::BigQuery => {
            findings.push(
                Finding::new(
                    "platform",
                    Status::Fail,
                    format!(
                        "BigQuery (from the {by}): Phase 1.5, not yet supported. Clyra supports \
                         Postgres, Snowflake and Databricks today"
                    ),
                )
                .fix(
                    "# no fix in this release: BigQuery anchors are planned for Phase 1.5 \
                     (docs/compatibility/README.md)",
                ),
            );
            return Report::new(target, platform, findings);
        }
        Platform::Unknown => {
            let s = suggest::suggest(dsn);
            let mut message = format!("unsupported platform ({by})");
            if let Some(m) = s.message() {
                message.push_str(&format!("; {m}"));
            }
            let fix = match &s.corrected {
                Some(c) => doctor_command(c),
                None => "clyra warehouse doctor --dsn 'postgres://USER@HOST:5432/DBNAME'".into(),
            };
            findings.push(Finding::new("platform", Status::Fail, message).fix(fix));
            return Report::new(target, platform, findings);
        }
    }
    findings.push(Finding::new(
        "platform",
        Status::Ok,
        format!("Postgres (from the {by})"),
    ));
    postgres_checks(dsn, &target, options, &mut findings);
    Report::new(target, platform, findings)
}

/// `clyra warehouse doctor --dsn '...'` with a shell-quoted, redacted DSN.
fn doctor_command(redacted: &str) -> String {
    let mut s = format!("clyra warehouse doctor --dsn {}", shell_quote(redacted));
    if redacted.contains("***") {
        s.push_str("   # put the password back, or set PGPASSWORD");
    }
    s
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@,+=%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A SQL string literal.
fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn skip_rest(findings: &mut Vec<Finding>, why: &str) {
    for id in POSTGRES_CHECKS {
        findings.push(Finding::new(*id, Status::Skip, why));
    }
}

/// Where the connection goes, for messages and fixes.
struct Target {
    /// `HOST:PORT`.
    host: String,
    /// `HOST` alone.
    host_name: String,
    /// `-h HOST -p PORT` for the libpq command-line tools.
    tool_args: String,
    user: String,
    dbname: String,
}

impl Target {
    fn from_config(config: &Config) -> Self {
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => match config.get_hostaddrs().first() {
                Some(a) => a.to_string(),
                None => "localhost".to_string(),
            },
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config
            .get_user()
            .map(str::to_string)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "postgres".to_string());
        let dbname = config
            .get_dbname()
            .map(str::to_string)
            .unwrap_or_else(|| user.clone());
        Target {
            tool_args: format!("-h {} -p {port}", shell_quote(&host)),
            host: format!("{host}:{port}"),
            host_name: host,
            user,
            dbname,
        }
    }
}

fn postgres_checks(dsn: &str, target: &str, options: &Options, findings: &mut Vec<Finding>) {
    let hints = suggest::suggest(dsn);
    let mut config = match pg::config(dsn) {
        Ok(c) => c,
        Err(e) => {
            let fix = match &hints.corrected {
                Some(c) => doctor_command(c),
                None => "clyra warehouse doctor --dsn 'postgres://USER@HOST:5432/DBNAME'   # or libpq pairs: 'host=HOST port=5432 dbname=DBNAME user=USER'".to_string(),
            };
            findings.push(Finding::new("dsn", Status::Fail, e.to_string()).fix(fix));
            findings.push(Finding::new(
                "connect",
                Status::Skip,
                "not checked: the connection string does not parse",
            ));
            skip_rest(
                findings,
                "not checked: the connection string does not parse",
            );
            return;
        }
    };
    match hints.message() {
        Some(m) => {
            let fix = match &hints.corrected {
                Some(c) => doctor_command(c),
                None => format!(
                    "# edit the connection string: {}",
                    hints.problems.join("; ")
                ),
            };
            findings.push(
                Finding::new(
                    "dsn",
                    Status::Warn,
                    format!("the connection string parses but looks mistyped: {m}"),
                )
                .fix(fix),
            );
        }
        None => findings.push(Finding::new(
            "dsn",
            Status::Ok,
            "the connection string parses",
        )),
    }
    if config.get_password().is_none() {
        if let Some(pw) = &options.password {
            config.password(pw);
        }
    }
    if let Some(t) = options.connect_timeout {
        config.connect_timeout(t);
    }
    let t = Target::from_config(&config);
    let timeout = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(pg::DEFAULT_CONNECT_TIMEOUT);
    let t0 = Instant::now();
    let mut client = match pg::try_connect(&config, dsn) {
        Ok(c) => c,
        Err(pg::ConnectFailure::Setup(m)) => {
            let connect_ms = ms(t0.elapsed());
            findings.push(
                Finding::new("connect", Status::Fail, format!("TLS settings: {m}"))
                    .fix(tls_fix(&m, &t))
                    .measure("connect_ms", connect_ms),
            );
            skip_rest(findings, "not checked: no connection");
            return;
        }
        Err(pg::ConnectFailure::Driver(e)) => {
            let connect_ms = ms(t0.elapsed());
            findings
                .push(connect_failure(&e, &t, timeout, &hints).measure("connect_ms", connect_ms));
            skip_rest(findings, "not checked: no connection");
            return;
        }
    };
    let connect_ms = ms(t0.elapsed());
    let facts = match Facts::read(&mut client) {
        Ok(f) => f,
        Err(e) => {
            findings.push(
                Finding::new(
                    "connect",
                    Status::Fail,
                    format!("connected to {}, but the first query failed: {e}", t.host),
                )
                .fix(format!(
                    "psql {} -U {} -d {} -c 'SELECT version()'",
                    t.tool_args,
                    shell_quote(&t.user),
                    shell_quote(&t.dbname)
                ))
                .measure("connect_ms", connect_ms),
            );
            skip_rest(findings, "not checked: the server does not answer queries");
            return;
        }
    };
    findings.push(
        Finding::new(
            "connect",
            Status::Ok,
            format!(
                "connected to database `{}` at {} as `{}`{}",
                facts.database,
                t.host,
                facts.user,
                if facts.superuser { " (superuser)" } else { "" }
            ),
        )
        .measure("connect_ms", connect_ms),
    );
    findings.push(version_finding(&facts));
    findings.push(if facts.in_recovery {
        Finding::new(
            "server.recovery",
            Status::Ok,
            "standby (in recovery): anchors use pg_last_wal_replay_lsn() and the timeline of the \
             last restartpoint; snapshots work; install-guards and replay need the primary",
        )
    } else {
        Finding::new(
            "server.recovery",
            Status::Ok,
            "primary: anchors use pg_current_wal_lsn()",
        )
    });
    findings.push(if facts.can_connect {
        Finding::new(
            "privileges.connect",
            Status::Ok,
            format!("CONNECT on database `{}`", facts.database),
        )
    } else {
        Finding::new(
            "privileges.connect",
            Status::Warn,
            format!(
                "`{}` has no CONNECT privilege on `{}` (it got in as the owner or a superuser \
                 session; new sessions of a plain role would be refused)",
                facts.user, facts.database
            ),
        )
        .fix(format!(
            "GRANT CONNECT ON DATABASE {} TO {};",
            quote_ident(&facts.database),
            quote_ident(&facts.user)
        ))
    });
    findings.push(function_finding(
        &mut client,
        "privileges.anchor",
        ANCHOR_FUNCTIONS,
        "anchors call",
        "",
        &facts.user,
    ));
    findings.push(function_finding(
        &mut client,
        "privileges.snapshot",
        SNAPSHOT_FUNCTIONS,
        "snapshots call for sizes and counters",
        "; they need no role such as pg_read_all_stats",
        &facts.user,
    ));
    findings.push(pg_stats_finding(&mut client, &facts.user, &options.schemas));
    findings.extend(guard_findings(&mut client, target));
    findings.push(clock_finding(&mut client));
    findings.extend(settings_findings(&mut client, &facts));
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Turns a failed connection into a finding with a fix.
fn connect_failure(
    e: &postgres::Error,
    t: &Target,
    timeout: Duration,
    hints: &suggest::Suggestions,
) -> Finding {
    let (message, sqlstate) = crate::error::pg_message(e);
    let io_kind = io_error_kind(e);
    let class = classify(sqlstate.as_deref(), io_kind, &message);
    let user = quote_ident(&t.user);
    let db = quote_ident(&t.dbname);
    let pg_isready = format!("pg_isready {}", t.tool_args);
    let hint = hints
        .message()
        .map(|m| format!("; {m}"))
        .unwrap_or_default();
    let (text, fix) = match class {
        ConnectClass::Timeout => (
            format!(
                "no answer from {} within the {} s connect timeout{hint}",
                t.host,
                timeout.as_secs()
            ),
            format!(
                "{pg_isready} -t 5   # still no answer: check the host name, firewalls and \
                 security groups between this host and the server"
            ),
        ),
        ConnectClass::Refused => (
            format!(
                "nothing accepts connections at {} (connection refused): the server is down, or \
                 listens on another port or address{hint}",
                t.host
            ),
            format!(
                "{pg_isready}   # on the server: SHOW listen_addresses; SHOW port; \
                 (postgresql.conf, then restart)"
            ),
        ),
        ConnectClass::Dns => (
            format!("host `{}` cannot be resolved{hint}", t.host_name),
            match &hints.corrected {
                Some(c) => doctor_command(c),
                None => format!("getent hosts {}", shell_quote(&t.host_name)),
            },
        ),
        ConnectClass::NoSocket => (
            format!("no Postgres Unix socket at {}{hint}", t.host),
            format!("{pg_isready}   # the socket directory is unix_socket_directories on the server"),
        ),
        ConnectClass::Password => (
            format!("password authentication failed for `{}`", t.user),
            format!(
                "export PGPASSWORD='...'   # or, as a superuser: ALTER ROLE {user} PASSWORD '...';"
            ),
        ),
        ConnectClass::Hba => {
            let client = message
                .split_once("host \"")
                .and_then(|(_, r)| r.split_once('"'))
                .map_or("CLIENT_ADDRESS", |(h, _)| h);
            let mask = if client.contains(':') { "128" } else { "32" };
            (
                format!("the server's pg_hba.conf has no entry for this connection: {message}"),
                format!(
                    "# add to pg_hba.conf on the server, then reload:\nhost    {}    {}    {client}/{mask}    scram-sha-256\nSELECT pg_reload_conf();",
                    t.dbname, t.user
                ),
            )
        }
        ConnectClass::NoRole => (
            format!("role `{}` does not exist", t.user),
            format!(
                "createuser {} -U postgres --login {}   # or: CREATE ROLE {user} LOGIN;",
                t.tool_args,
                shell_quote(&t.user)
            ),
        ),
        ConnectClass::NoLogin => (
            format!("role `{}` may not log in", t.user),
            format!("ALTER ROLE {user} LOGIN;"),
        ),
        ConnectClass::NoDatabase => (
            format!("database `{}` does not exist", t.dbname),
            format!(
                "createdb {} -U postgres -O {} {}   # or: CREATE DATABASE {db} OWNER {user};",
                t.tool_args,
                shell_quote(&t.user),
                shell_quote(&t.dbname)
            ),
        ),
        ConnectClass::NoConnectPrivilege => (
            format!(
                "`{}` has no CONNECT privilege on database `{}`",
                t.user, t.dbname
            ),
            format!("GRANT CONNECT ON DATABASE {db} TO {user};"),
        ),
        ConnectClass::TooManyConnections => (
            format!("the server refuses new connections: {message}"),
            "SELECT usename, application_name, state, count(*) FROM pg_stat_activity GROUP BY 1, 2, 3 ORDER BY 4 DESC;   -- then raise max_connections or put a pooler in front".to_string(),
        ),
        ConnectClass::NotReady => (
            format!("the server is not accepting connections yet: {message}"),
            format!("{pg_isready} -t 60   # starting up, shutting down, or a standby with hot_standby = off"),
        ),
        ConnectClass::Tls => (
            format!("the TLS connection to {} failed: {message}{hint}", t.host),
            tls_fix(&message, t),
        ),
        ConnectClass::Other => (
            format!("cannot connect to {}: {message}{hint}", t.host),
            format!("{pg_isready}   # then: psql {} -U {} -d {}", t.tool_args, shell_quote(&t.user), shell_quote(&t.dbname)),
        ),
    };
    Finding::new("connect", Status::Fail, text).fix(fix)
}

/// The fix for a TLS failure (see [`crate::tls`] for the `sslmode` semantics), by what the
/// message says went wrong.
fn tls_fix(message: &str, t: &Target) -> String {
    let lower = message.to_ascii_lowercase();
    let doctor = |query: &str| {
        doctor_command(&format!(
            "postgres://{}@{}/{}?{query}",
            t.user, t.host, t.dbname
        ))
    };
    if lower.contains("not valid for name") {
        format!(
            "# the certificate does not name `{}`: connect with the host name it names (key=value \
             form: host=NAME hostaddr=IP), or use sslmode=verify-ca to check the chain only: {}",
            t.host_name,
            doctor("sslmode=verify-ca&sslrootcert=/path/to/ca.pem")
        )
    } else if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
        format!(
            "# the server's certificate is not signed by a trusted root: give its CA with \
             sslrootcert (e.g. the RDS global-bundle.pem): {}",
            doctor("sslmode=verify-full&sslrootcert=/path/to/ca.pem")
        )
    } else if lower.contains("does not support tls") {
        format!(
            "# the server does not offer TLS: set ssl = on in postgresql.conf (with ssl_cert_file \
             and ssl_key_file), or connect without it: {}",
            doctor("sslmode=prefer")
        )
    } else if lower.contains("client certificates") {
        format!(
            "# remove sslcert/sslkey and authenticate with a password: {}",
            doctor("sslmode=verify-full")
        )
    } else if lower.contains("sslrootcert") {
        "# point sslrootcert at a readable PEM file holding the server's CA certificate(s)"
            .to_string()
    } else {
        format!(
            "openssl s_client -starttls postgres -connect {}   # shows the certificate the server presents",
            t.host
        )
    }
}

/// Why a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectClass {
    /// The connect timeout elapsed.
    Timeout,
    /// TCP connection refused.
    Refused,
    /// The host name does not resolve.
    Dns,
    /// No Unix socket at the path.
    NoSocket,
    /// Wrong password (SQLSTATE 28P01).
    Password,
    /// No `pg_hba.conf` line matches (28000).
    Hba,
    /// The role does not exist (28000).
    NoRole,
    /// The role has NOLOGIN (28000).
    NoLogin,
    /// The database does not exist (3D000).
    NoDatabase,
    /// No CONNECT privilege on the database (42501).
    NoConnectPrivilege,
    /// `max_connections` reached (53300).
    TooManyConnections,
    /// Starting up, shutting down or not accepting connections (57P03).
    NotReady,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// Anything else.
    Other,
}

/// Classifies a connection failure by SQLSTATE, I/O error kind and message.
pub fn classify(
    sqlstate: Option<&str>,
    io_kind: Option<std::io::ErrorKind>,
    message: &str,
) -> ConnectClass {
    use std::io::ErrorKind as K;
    match sqlstate {
        Some("28P01") => return ConnectClass::Password,
        Some("28000") if message.contains("pg_hba.conf") => return ConnectClass::Hba,
        Some("28000") if message.contains("does not exist") => return ConnectClass::NoRole,
        Some("28000") if message.contains("not permitted to log in") => {
            return ConnectClass::NoLogin
        }
        Some("28000") if message.contains("password") => return ConnectClass::Password,
        Some("3D000") => return ConnectClass::NoDatabase,
        Some("42501") => return ConnectClass::NoConnectPrivilege,
        Some("53300") => return ConnectClass::TooManyConnections,
        Some("57P03") => return ConnectClass::NotReady,
        _ => {}
    }
    match io_kind {
        Some(K::TimedOut) => return ConnectClass::Timeout,
        Some(K::ConnectionRefused) => return ConnectClass::Refused,
        Some(K::NotFound) => return ConnectClass::NoSocket,
        _ => {}
    }
    let lower = message.to_ascii_lowercase();
    if lower.contains("lookup address") || lower.contains("name or service not known") {
        ConnectClass::Dns
    } else if lower.contains("tls") || lower.contains("ssl") {
        ConnectClass::Tls
    } else if lower.contains("timed out") {
        ConnectClass::Timeout
    } else {
        ConnectClass::Other
    }
}

fn io_error_kind(e: &postgres::Error) -> Option<std::io::ErrorKind> {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        src = s.source();
    }
    None
}

/// What one query tells about the server and the session.
struct Facts {
    version_num: u32,
    version: String,
    in_recovery: bool,
    user: String,
    database: String,
    superuser: bool,
    can_connect: bool,
}

impl Facts {
    fn read(client: &mut Client) -> Result<Facts, String> {
        let row = client
            .query_one(
                "SELECT current_setting('server_version_num')::int,
                        current_setting('server_version'),
                        pg_is_in_recovery(),
                        current_user::text,
                        current_database()::text,
                        coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false),
                        has_database_privilege(current_database(), 'CONNECT')",
                &[],
            )
            .map_err(|e| crate::error::pg_message(&e).0)?;
        let get = |e: postgres::Error| e.to_string();
        let version_num: i32 = row.try_get(0).map_err(get)?;
        Ok(Facts {
            version_num: u32::try_from(version_num).unwrap_or(0),
            version: row.try_get(1).map_err(get)?,
            in_recovery: row.try_get(2).map_err(get)?,
            user: row.try_get(3).map_err(get)?,
            database: row.try_get(4).map_err(get)?,
            superuser: row.try_get(5).map_err(get)?,
            can_connect: row.try_get(6).map_err(get)?,
        })
    }
}

/// Where a server version stands in the compatibility matrix.
pub fn version_status(version_num: u32) -> (Status, &'static str) {
    match version_num / 10_000 {
        0..=12 => (
            Status::Fail,
            "unsupported: anchors need pg_current_snapshot() and pg_current_xact_id_if_assigned(), \
             which Postgres 13 introduced",
        ),
        13 | 14 => (
            Status::Warn,
            "best effort: the functions Clyra uses exist, but Clyra is not tested on this version",
        ),
        15 | 16 => (Status::Ok, "supported"),
        _ => (
            Status::Warn,
            "newer than the versions Clyra is tested on (15, 16): expected to work, not verified",
        ),
    }
}

fn version_finding(f: &Facts) -> Finding {
    let major = f.version_num / 10_000;
    let (status, what) = version_status(f.version_num);
    let finding = Finding::new(
        "server.version",
        status,
        format!("Postgres {} ({}): {what}", f.version, f.version_num),
    );
    match status {
        Status::Ok => finding,
        Status::Fail | Status::Warn if major < 15 => finding.fix(format!(
            "pg_upgradecluster {major} main   # Debian/Ubuntu; elsewhere: pg_upgrade, \
             https://www.postgresql.org/docs/current/pgupgrade.html"
        )),
        _ => finding.fix(
            "clyra warehouse anchor --dsn \"$DSN\"   # works? Clyra is tested on 15 and 16; see docs/compatibility/README.md",
        ),
    }
}

/// Functions anchors call (signatures as `to_regprocedure` reads them).
const ANCHOR_FUNCTIONS: &[&str] = &[
    "pg_control_system()",
    "pg_control_checkpoint()",
    "pg_current_wal_lsn()",
    "pg_last_wal_replay_lsn()",
    "pg_walfile_name(pg_lsn)",
    "pg_current_snapshot()",
    "pg_current_xact_id_if_assigned()",
    "pg_is_in_recovery()",
];

/// Functions snapshots call for sizes and counters.
const SNAPSHOT_FUNCTIONS: &[&str] = &[
    "pg_relation_size(regclass)",
    "pg_total_relation_size(regclass)",
    "pg_stat_get_live_tuples(oid)",
    "pg_stat_get_dead_tuples(oid)",
    "pg_stat_get_tuples_inserted(oid)",
    "pg_stat_get_tuples_updated(oid)",
    "pg_stat_get_tuples_deleted(oid)",
];

fn function_finding(
    client: &mut Client,
    id: &str,
    functions: &[&str],
    what: &str,
    note: &str,
    user: &str,
) -> Finding {
    let list: Vec<String> = functions.iter().map(|f| (*f).to_string()).collect();
    let rows = match client.query(
        "SELECT f, to_regprocedure(f) IS NOT NULL,
                coalesce(has_function_privilege(to_regprocedure(f), 'EXECUTE'), false)
           FROM unnest($1::text[]) WITH ORDINALITY AS t(f, i) ORDER BY i",
        &[&list],
    ) {
        Ok(r) => r,
        Err(e) => {
            return Finding::new(
                id,
                Status::Fail,
                format!(
                    "cannot check function privileges: {}",
                    crate::error::pg_message(&e).0
                ),
            )
            .fix("SELECT has_function_privilege('pg_control_system()', 'EXECUTE');")
        }
    };
    let mut missing = Vec::new();
    let mut denied = Vec::new();
    for r in &rows {
        let f: String = r.get(0);
        let exists: bool = r.get(1);
        let allowed: bool = r.get(2);
        if !exists {
            missing.push(f);
        } else if !allowed {
            denied.push(f);
        }
    }
    if !missing.is_empty() {
        return Finding::new(
            id,
            Status::Fail,
            format!(
                "this server lacks {}, which {what}: Postgres 13 or newer is needed",
                missing.join(", ")
            ),
        )
        .fix("pg_upgradecluster $(pg_lsclusters -h | awk 'NR==1{print $1}') main   # Debian/Ubuntu; elsewhere: pg_upgrade");
    }
    if !denied.is_empty() {
        let grants: Vec<String> = denied
            .iter()
            .map(|f| format!("GRANT EXECUTE ON FUNCTION {f} TO {};", quote_ident(user)))
            .collect();
        return Finding::new(
            id,
            Status::Fail,
            format!(
                "`{user}` may not execute {}, which {what}; Postgres grants these functions to \
                 PUBLIC by default, so someone revoked them",
                denied.join(", ")
            ),
        )
        .fix(grants.join("\n"));
    }
    Finding::new(
        id,
        Status::Ok,
        format!(
            "EXECUTE on the {} functions {what} ({}, …){note}",
            functions.len(),
            functions
                .iter()
                .take(2)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

fn pg_stats_finding(client: &mut Client, user: &str, schemas: &[String]) -> Finding {
    let id = "privileges.pg_stats";
    let rows = client.query(
        "SELECT n.nspname::text, c.relname::text, has_any_column_privilege(c.oid, 'SELECT')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'm')
            AND CASE WHEN cardinality($1::text[]) > 0 THEN n.nspname = ANY($1::text[])
                     ELSE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
                          AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' END
          ORDER BY 1, 2",
        &[&schemas],
    );
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            return Finding::new(
                id,
                Status::Fail,
                format!("cannot list tables: {}", crate::error::pg_message(&e).0),
            )
            .fix("SELECT count(*) FROM pg_class;")
        }
    };
    let total = rows.len();
    let mut hidden: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &rows {
        let visible: bool = r.get(2);
        if !visible {
            let s: String = r.get(0);
            let t: String = r.get(1);
            hidden.entry(s).or_default().push(t);
        }
    }
    let n_hidden: usize = hidden.values().map(Vec::len).sum();
    if total == 0 {
        return Finding::new(id, Status::Ok, "no tables in scope");
    }
    if n_hidden == 0 {
        return Finding::new(
            id,
            Status::Ok,
            if total == 1 {
                "pg_stats shows column statistics for the 1 table in scope".to_string()
            } else {
                format!("pg_stats shows column statistics for all {total} tables in scope")
            },
        );
    }
    let examples: Vec<String> = hidden
        .iter()
        .flat_map(|(s, ts)| ts.iter().map(move |t| format!("{s}.{t}")))
        .take(3)
        .collect();
    let more = if n_hidden > examples.len() {
        ", …"
    } else {
        ""
    };
    let mut fix: Vec<String> = hidden
        .keys()
        .take(5)
        .map(|s| {
            format!(
                "GRANT USAGE ON SCHEMA {q} TO {u}; GRANT SELECT ON ALL TABLES IN SCHEMA {q} TO {u};",
                q = quote_ident(s),
                u = quote_ident(user)
            )
        })
        .collect();
    if hidden.len() > 5 {
        fix.push(format!("-- and {} more schemas", hidden.len() - 5));
    }
    fix.push(format!(
        "-- or, Postgres 14+: GRANT pg_read_all_data TO {};   -- or take snapshots with --no-column-stats",
        quote_ident(user)
    ));
    Finding::new(
        id,
        Status::Warn,
        format!(
            "pg_stats hides column statistics of {n_hidden} of {total} tables from `{user}` \
             ({}{more}): Postgres shows them only for columns the role may SELECT, so snapshots \
             record no column_stats for them, and exact counts or content hashes of them fail. \
             Clyra reads only statistics, never rows, unless counts or hashes are asked for",
            examples.join(", ")
        ),
    )
    .fix(fix.join("\n"))
}

fn guard_findings(client: &mut Client, target: &str) -> Vec<Finding> {
    let install = format!(
        "clyra warehouse install-guards --dsn {}{}",
        shell_quote(target),
        if target.contains("***") {
            "   # put the password back, or set PGPASSWORD"
        } else {
            ""
        }
    );
    let installed = client
        .query_one(
            "SELECT to_regprocedure('clyra_guard.version()') IS NOT NULL",
            &[],
        )
        .and_then(|r| r.try_get::<_, bool>(0));
    let installed = match installed {
        Ok(b) => b,
        Err(e) => {
            return vec![
                Finding::new(
                    "guards.installed",
                    Status::Fail,
                    format!("cannot look for guards: {}", crate::error::pg_message(&e).0),
                )
                .fix("SELECT to_regprocedure('clyra_guard.version()');"),
                Finding::new("guards.event_trigger", Status::Skip, "not checked"),
            ]
        }
    };
    if !installed {
        return vec![
            Finding::new(
                "guards.installed",
                Status::Warn,
                "guards are not installed: UPDATE and DELETE statements touching more rows than \
                 the policy allows are not blocked in this database",
            )
            .fix(install),
            Finding::new(
                "guards.event_trigger",
                Status::Skip,
                "not checked: no guards installed",
            ),
        ];
    }
    let version = match client
        .query_one("SELECT clyra_guard.version()::text", &[])
        .and_then(|r| r.try_get::<_, Option<String>>(0))
    {
        Ok(v) => Finding::new(
            "guards.installed",
            Status::Ok,
            format!(
                "guards installed (clyra_guard.version() = {})",
                v.as_deref().unwrap_or("NULL")
            ),
        ),
        Err(e) => Finding::new(
            "guards.installed",
            Status::Warn,
            format!(
                "guards are installed but clyra_guard.version() failed for this role: {}",
                crate::error::pg_message(&e).0
            ),
        )
        .fix("GRANT USAGE ON SCHEMA clyra_guard TO CURRENT_USER;   -- run as the guards' owner"),
    };
    let triggers = client.query(
        "SELECT evtname::text, evtenabled::text FROM pg_event_trigger
          WHERE evtname LIKE 'clyra\\_guard%' ORDER BY 1",
        &[],
    );
    let trigger = match triggers {
        Err(e) => Finding::new(
            "guards.event_trigger",
            Status::Warn,
            format!(
                "cannot read pg_event_trigger: {}",
                crate::error::pg_message(&e).0
            ),
        )
        .fix("SELECT evtname, evtenabled FROM pg_event_trigger;"),
        Ok(rows) if rows.is_empty() => Finding::new(
            "guards.event_trigger",
            Status::Warn,
            "no clyra_guard event trigger: guards on tables that dbt recreates (table \
             materializations) are not re-attached",
        )
        .fix(format!(
            "{install}   # reinstalls the event trigger (needs a superuser)"
        )),
        Ok(rows) => {
            let disabled: Vec<String> = rows
                .iter()
                .filter(|r| r.get::<_, String>(1) == "D")
                .map(|r| r.get::<_, String>(0))
                .collect();
            if disabled.is_empty() {
                let names: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
                Finding::new(
                    "guards.event_trigger",
                    Status::Ok,
                    format!("event trigger {} enabled", names.join(", ")),
                )
            } else {
                Finding::new(
                    "guards.event_trigger",
                    Status::Warn,
                    format!(
                        "event trigger {} is disabled: guards on recreated tables are not re-attached",
                        disabled.join(", ")
                    ),
                )
                .fix(
                    disabled
                        .iter()
                        .map(|n| format!("ALTER EVENT TRIGGER {} ENABLE;", quote_ident(n)))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            }
        }
    };
    vec![version, trigger]
}

/// Skew of the server's clock against this host's, from the best of a few round trips: the
/// server's `clock_timestamp()` minus this host's time halfway through the round trip.
/// Returns (skew, round trip) of the sample with the shortest round trip.
fn measure_skew(client: &mut Client) -> Result<(f64, f64), String> {
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..5 {
        let before = now_us()?;
        let t0 = Instant::now();
        let row = client
            .query_one(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
                &[],
            )
            .map_err(|e| crate::error::pg_message(&e).0)?;
        let rtt_us = t0.elapsed().as_secs_f64() * 1e6;
        let server: i64 = row.try_get(0).map_err(|e| e.to_string())?;
        let midpoint = before + rtt_us / 2.0;
        let skew_us = server as f64 - midpoint;
        if best.is_none_or(|(_, r)| rtt_us < r) {
            best = Some((skew_us, rtt_us));
        }
    }
    best.ok_or_else(|| "no sample".to_string())
}

fn now_us() -> Result<f64, String> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e6)
        .map_err(|_| "this host's clock is before 1970".to_string())
}

/// The status for a clock skew of `skew` (either direction).
pub fn skew_status(skew: Duration) -> Status {
    if skew > SKEW_FAIL {
        Status::Fail
    } else if skew > SKEW_WARN {
        Status::Warn
    } else {
        Status::Ok
    }
}

fn clock_finding(client: &mut Client) -> Finding {
    let id = "clock.skew";
    let (skew_us, rtt_us) = match measure_skew(client) {
        Ok(x) => x,
        Err(e) => {
            return Finding::new(
                id,
                Status::Warn,
                format!("cannot read the server's clock: {e}"),
            )
            .fix("SELECT clock_timestamp();")
        }
    };
    let abs = Duration::from_secs_f64(skew_us.abs() / 1e6);
    let status = skew_status(abs);
    let direction = if skew_us >= 0.0 { "ahead of" } else { "behind" };
    let message = match status {
        Status::Ok => "the server's clock is within 1 s of this host's".to_string(),
        Status::Warn => format!(
            "the server's clock is more than 1 s {direction} this host's: anchors (server time) \
             and journal entries (this host's time) may appear out of order"
        ),
        _ => format!(
            "the server's clock is more than 30 s {direction} this host's: anchors and journal \
             entries no longer line up, and time-range exports cut in the wrong place"
        ),
    };
    let f = Finding::new(id, status, message)
        .measure("skew_ms", (skew_us / 10.0).round() / 100.0)
        .measure("round_trip_ms", (rtt_us / 10.0).round() / 100.0);
    if status == Status::Ok {
        f
    } else {
        f.fix("timedatectl set-ntp true   # on this host and on the server; check with: chronyc tracking")
    }
}

struct Setting {
    value: String,
    source: String,
}

fn settings(client: &mut Client) -> Result<BTreeMap<String, Setting>, String> {
    let names: Vec<String> = [
        "track_counts",
        "autovacuum",
        "statement_timeout",
        "default_transaction_read_only",
        "wal_level",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let rows = client
        .query(
            "SELECT name::text, setting::text, source::text FROM pg_settings WHERE name = ANY($1)",
            &[&names],
        )
        .map_err(|e| crate::error::pg_message(&e).0)?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                Setting {
                    value: r.get(1),
                    source: r.get(2),
                },
            )
        })
        .collect())
}

/// SQL that puts `name` back to `value` where the current value comes from.
fn setting_fix(name: &str, value: &str, source: &str, f: &Facts) -> String {
    let db = quote_ident(&f.database);
    let user = quote_ident(&f.user);
    match source {
        "database" => format!("ALTER DATABASE {db} RESET {name};   -- new sessions pick it up"),
        "user" => format!("ALTER ROLE {user} RESET {name};   -- new sessions pick it up"),
        "database user" => {
            format!("ALTER ROLE {user} IN DATABASE {db} RESET {name};   -- new sessions pick it up")
        }
        "client" => format!(
            "-- the connection string sets it: remove `-c {name}=...` from its options (or PGOPTIONS)"
        ),
        _ => format!(
            "ALTER SYSTEM SET {name} = {};\nSELECT pg_reload_conf();",
            sql_literal(value)
        ),
    }
}

fn settings_findings(client: &mut Client, f: &Facts) -> Vec<Finding> {
    let all = match settings(client) {
        Ok(s) => s,
        Err(e) => {
            return [
                "settings.track_counts",
                "settings.autovacuum",
                "settings.statement_timeout",
                "settings.default_transaction_read_only",
                "settings.wal_level",
            ]
            .iter()
            .map(|id| {
                Finding::new(*id, Status::Warn, format!("cannot read pg_settings: {e}"))
                    .fix("SELECT name, setting, source FROM pg_settings;")
            })
            .collect()
        }
    };
    let get = |n: &str| {
        all.get(n)
            .map_or(("?", "default"), |s| (s.value.as_str(), s.source.as_str()))
    };
    let mut out = Vec::new();

    let (v, src) = get("track_counts");
    out.push(if v == "on" {
        Finding::new("settings.track_counts", Status::Ok, "track_counts = on: snapshot counters are maintained")
    } else {
        Finding::new(
            "settings.track_counts",
            Status::Warn,
            format!("track_counts = {v} (from {src}): the pg_stat counters in snapshots stay at zero and autovacuum cannot work"),
        )
        .fix(setting_fix("track_counts", "on", src, f))
    });

    let (v, src) = get("autovacuum");
    out.push(if v == "on" {
        Finding::new(
            "settings.autovacuum",
            Status::Ok,
            "autovacuum = on: row estimates and column statistics stay fresh",
        )
    } else {
        Finding::new(
            "settings.autovacuum",
            Status::Warn,
            format!(
                "autovacuum = {v} (from {src}): reltuples (snapshot row estimates) and pg_stats \
                 go stale, and bloated catalogs slow snapshots down"
            ),
        )
        .fix(format!(
            "{}\n-- or run ANALYZE (and VACUUM the catalogs) before taking snapshots",
            setting_fix(
                "autovacuum",
                "on",
                if src == "database" || src == "user" {
                    "configuration file"
                } else {
                    src
                },
                f
            )
        ))
    });

    let (v, src) = get("statement_timeout");
    let timeout_ms: u64 = v.parse().unwrap_or(0);
    out.push(if timeout_ms == 0 {
        Finding::new("settings.statement_timeout", Status::Ok, "statement_timeout = 0 (no limit)")
    } else if timeout_ms >= MIN_STATEMENT_TIMEOUT_MS {
        Finding::new(
            "settings.statement_timeout",
            Status::Ok,
            format!("statement_timeout = {timeout_ms} ms"),
        )
    } else {
        Finding::new(
            "settings.statement_timeout",
            Status::Warn,
            format!(
                "statement_timeout = {timeout_ms} ms (from {src}) is below {MIN_STATEMENT_TIMEOUT_MS} ms: \
                 snapshots of many tables, exact counts and content hashes may be cancelled"
            ),
        )
        .fix(format!(
            "ALTER ROLE {} IN DATABASE {} SET statement_timeout = '5min';   -- for Clyra's role only",
            quote_ident(&f.user),
            quote_ident(&f.database)
        ))
    });

    let (v, src) = get("default_transaction_read_only");
    out.push(if v != "on" {
        Finding::new(
            "settings.default_transaction_read_only",
            Status::Ok,
            "default_transaction_read_only = off",
        )
    } else if f.in_recovery {
        Finding::new(
            "settings.default_transaction_read_only",
            Status::Ok,
            "default_transaction_read_only = on (a standby is read-only anyway): anchors and snapshots are read-only",
        )
    } else {
        Finding::new(
            "settings.default_transaction_read_only",
            Status::Warn,
            format!(
                "default_transaction_read_only = on (from {src}): anchors and snapshots work \
                 (they are read-only), but install-guards and replay, which write, fail"
            ),
        )
        .fix(setting_fix("default_transaction_read_only", "off", src, f))
    });

    let (v, _) = get("wal_level");
    out.push(Finding::new(
        "settings.wal_level",
        Status::Ok,
        format!("wal_level = {v} (informational: anchors read the WAL position at any level)"),
    ));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn detects_platforms_offline() {
        let cases = [
            ("postgres://u@h/db", Platform::Postgres),
            ("postgresql://u@h/db", Platform::Postgres),
            ("host=h dbname=db", Platform::Postgres),
            ("snowflake://u@acme-xy123/db", Platform::Snowflake),
            (
                "https://acme-xy123.snowflakecomputing.com",
                Platform::Snowflake,
            ),
            (
                "databricks://token@adb-1.2.azuredatabricks.net",
                Platform::Databricks,
            ),
            (
                "https://dbc-12ab.cloud.databricks.com/sql/1.0/warehouses/x",
                Platform::Databricks,
            ),
            ("https://adb-1.2.azuredatabricks.net", Platform::Databricks),
            ("https://1234.5.gcp.databricks.com", Platform::Databricks),
            ("bigquery://my-project/dataset", Platform::BigQuery),
            (
                "https://bigquery.googleapis.com/bigquery/v2/projects/p",
                Platform::BigQuery,
            ),
            (
                "https://www.googleapis.com/bigquery/v2/projects/p",
                Platform::BigQuery,
            ),
            ("mysql://u@h/db", Platform::Unknown),
            ("postgress://u@h/db", Platform::Postgres),
            ("snowflak://u@h/db", Platform::Unknown),
            ("https://example.com", Platform::Unknown),
        ];
        for (dsn, want) in cases {
            assert_eq!(detect(dsn).0, want, "{dsn}");
        }
    }

    #[test]
    fn bigquery_is_phase_1_5_and_fails_without_network() {
        let r = check("bigquery://my-project/analytics", &Options::default());
        assert_eq!(r.platform, Platform::BigQuery);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.findings.len(), 1);
        assert!(r.findings[0]
            .message
            .contains("Phase 1.5, not yet supported"));
        assert!(r.findings[0].fix.is_some());
    }

    #[test]
    fn snowflake_and_databricks_point_to_their_commands() {
        let r = check("snowflake://ci:pw@acme-xy123/db", &Options::default());
        assert_eq!(r.status, Status::Ok);
        assert!(r.findings[0].message.contains("clyra warehouse snowflake"));
        assert!(!r.target.contains("pw@"));
        let r = check("https://adb-1.2.azuredatabricks.net", &Options::default());
        assert_eq!(r.platform, Platform::Databricks);
        assert!(r.findings[0].message.contains("clyra warehouse databricks"));
    }

    #[test]
    fn unknown_schemes_get_a_suggestion() {
        let r = check("postgress://ci:hunter2@db/prod", &Options::default());
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.platform, Platform::Postgres);
        let f = &r.findings[1];
        assert_eq!(f.id, "dsn");
        assert!(
            f.message
                .contains("did you mean `postgres://ci:***@db/prod`"),
            "{f:?}"
        );
        assert_eq!(
            f.fix.as_deref(),
            Some("clyra warehouse doctor --dsn 'postgres://ci:***@db/prod'   # put the password back, or set PGPASSWORD")
        );
        assert!(!format!("{r:?}").contains("hunter2"));
        let r = check("snowflak://ci@acme/db", &Options::default());
        assert_eq!(r.platform, Platform::Unknown);
        assert!(
            r.findings[0]
                .message
                .contains("did you mean `snowflake://ci@acme/db`"),
            "{r:?}"
        );
    }

    #[test]
    fn unparsable_strings_fail_with_a_fix_and_skip_the_rest() {
        let r = check("host=db sslmod=disable", &Options::default());
        assert_eq!(r.status, Status::Fail);
        let ids: Vec<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(&ids[..3], ["platform", "dsn", "connect"]);
        assert_eq!(&ids[3..], POSTGRES_CHECKS);
        assert_eq!(
            r.findings[1].fix.as_deref(),
            Some("clyra warehouse doctor --dsn 'host=db sslmode=disable'")
        );
    }

    #[test]
    fn classifies_connection_failures() {
        use std::io::ErrorKind as K;
        let c = |s: Option<&str>, k: Option<K>, m: &str| classify(s, k, m);
        assert_eq!(
            c(
                Some("28P01"),
                None,
                "password authentication failed for user \"x\""
            ),
            ConnectClass::Password
        );
        assert_eq!(
            c(Some("28000"), None, "no pg_hba.conf entry for host \"10.0.0.5\", user \"x\", database \"y\", no encryption"),
            ConnectClass::Hba
        );
        assert_eq!(
            c(Some("28000"), None, "role \"x\" does not exist"),
            ConnectClass::NoRole
        );
        assert_eq!(
            c(Some("28000"), None, "role \"x\" is not permitted to log in"),
            ConnectClass::NoLogin
        );
        assert_eq!(
            c(Some("3D000"), None, "database \"y\" does not exist"),
            ConnectClass::NoDatabase
        );
        assert_eq!(
            c(Some("42501"), None, "permission denied for database \"y\""),
            ConnectClass::NoConnectPrivilege
        );
        assert_eq!(
            c(Some("53300"), None, "sorry, too many clients already"),
            ConnectClass::TooManyConnections
        );
        assert_eq!(
            c(Some("57P03"), None, "the database system is starting up"),
            ConnectClass::NotReady
        );
        assert_eq!(
            c(None, Some(K::TimedOut), "connection timed out"),
            ConnectClass::Timeout
        );
        assert_eq!(
            c(None, Some(K::ConnectionRefused), "refused"),
            ConnectClass::Refused
        );
        assert_eq!(
            c(None, Some(K::Other), "error connecting to server: failed to lookup address information: Name or service not known"),
            ConnectClass::Dns
        );
        assert_eq!(
            c(
                None,
                None,
                "error performing TLS handshake: no TLS implementation configured"
            ),
            ConnectClass::Tls
        );
        assert_eq!(c(None, None, "something else"), ConnectClass::Other);
    }

    #[test]
    fn version_matrix() {
        assert_eq!(version_status(120_017).0, Status::Fail);
        assert!(version_status(120_017).1.contains("pg_current_snapshot()"));
        assert_eq!(version_status(130_000).0, Status::Warn);
        assert_eq!(version_status(140_013).0, Status::Warn);
        assert_eq!(version_status(150_020).0, Status::Ok);
        assert_eq!(version_status(160_004).0, Status::Ok);
        assert_eq!(version_status(170_000).0, Status::Warn);
    }

    #[test]
    fn skew_thresholds() {
        assert_eq!(skew_status(Duration::from_millis(999)), Status::Ok);
        assert_eq!(skew_status(Duration::from_millis(1_000)), Status::Ok);
        assert_eq!(skew_status(Duration::from_millis(1_001)), Status::Warn);
        assert_eq!(skew_status(Duration::from_secs(30)), Status::Warn);
        assert_eq!(skew_status(Duration::from_millis(30_001)), Status::Fail);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            shell_quote("postgres://u@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(shell_quote("host=h dbname=x"), "'host=h dbname=x'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn worst_status_ignores_skips() {
        let f = |s| Finding::new("x", s, "m");
        assert_eq!(worst(&[f(Status::Skip)]), Status::Ok);
        assert_eq!(worst(&[f(Status::Ok), f(Status::Warn)]), Status::Warn);
        assert_eq!(worst(&[f(Status::Fail), f(Status::Warn)]), Status::Fail);
    }
}
