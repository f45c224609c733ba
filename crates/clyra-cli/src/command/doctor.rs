//! `clyra warehouse doctor` and `clyra doctor`: what is wrong with this setup, and the command
//! that fixes it.
//!
//! The warehouse checks live in `clyra_warehouse::doctor`; this module adds the installation
//! checks (journal store and chain, key file modes, trust file, policy files, Redis) and prints
//! findings as a table or JSON. Exit 0 when nothing failed (warnings allowed), 2 when a check
//! failed, 1 on usage errors.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clyra_warehouse::doctor::{self, shell_quote, Finding, Status};
use serde::Serialize;

use crate::output::{Exit, Output};

/// Environment variables `clyra doctor` reads when the flag is not given.
const ENV_STORE: &str = "CLYRA_STORE";
const ENV_DSN: &str = "CLYRA_DSN";
const ENV_REDIS: &str = "CLYRA_REDIS_URL";
/// The store the examples use, checked when it exists and no store is given.
const DEFAULT_STORE_DIR: &str = ".clyra/journal";

/// `clyra warehouse doctor`.
#[derive(Debug, clap::Args)]
pub struct WarehouseDoctorArgs {
    /// Connection string: postgres://USER[:PASSWORD]@HOST:PORT/DB, libpq `key=value` pairs, or a
    /// snowflake://, databricks://, bigquery:// or https:// URL (platform detection only).
    #[arg(long)]
    pub dsn: String,
    /// Schemas whose tables the pg_stats visibility check covers (default: all but the system
    /// schemas).
    #[arg(long, value_delimiter = ',')]
    pub schemas: Vec<String>,
    /// Connect timeout in seconds (default: the connection string's, else 10).
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<u64>,
}

/// `clyra doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The journal store to open and verify: sqlite:DIR or postgres://... (default: $CLYRA_STORE,
    /// else sqlite:.clyra/journal when that directory exists).
    #[arg(long)]
    pub store: Option<String>,
    /// A private key or secret file whose mode to check (repeatable).
    #[arg(long = "key", value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    /// A directory whose *.key, *.secret and *.salt files to check (default: ./keys when it exists).
    #[arg(long, value_name = "DIR")]
    pub keys_dir: Option<PathBuf>,
    /// The trust file to parse (default: ./trust.json when it exists); with --store, checkpoints
    /// must be signed by one of its Ed25519 keys.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// A policy file to lint (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Redis to ping: redis://[USER:PASSWORD@]HOST[:PORT] (default: $CLYRA_REDIS_URL).
    #[arg(long)]
    pub redis: Option<String>,
    /// Also run the warehouse checks on this connection string (default: $CLYRA_DSN).
    #[arg(long)]
    pub dsn: Option<String>,
    /// With --dsn: schemas for the pg_stats visibility check.
    #[arg(long, value_delimiter = ',')]
    pub schemas: Vec<String>,
}

#[derive(Serialize)]
struct InstallationReport {
    clyra_version: &'static str,
    status: Status,
    findings: Vec<Finding>,
}

fn exit_for(status: Status) -> Exit {
    if status == Status::Fail {
        Exit::VerificationFailed
    } else {
        Exit::Ok
    }
}

/// `clyra warehouse doctor`.
pub fn warehouse(args: WarehouseDoctorArgs, out: &Output) -> anyhow::Result<Exit> {
    let options = doctor::Options {
        password: std::env::var("PGPASSWORD").ok(),
        connect_timeout: args.connect_timeout.map(Duration::from_secs),
        schemas: args.schemas,
    };
    let report = doctor::check(&args.dsn, &options);
    out.emit(&report, || {
        render(
            &format!(
                "warehouse doctor: {} ({})",
                report.target,
                report.platform.name()
            ),
            &report.findings,
        )
    });
    Ok(exit_for(report.status))
}

/// `clyra doctor`.
pub fn installation(args: DoctorArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut findings = vec![Finding::new(
        "clyra.version",
        Status::Ok,
        format!("clyra {}", env!("CARGO_PKG_VERSION")),
    )];
    let trust_path = args
        .trust
        .clone()
        .or_else(|| Some(PathBuf::from("trust.json")).filter(|p| p.is_file()));
    let trust = trust_path.as_deref().map(trust_finding);
    let store = args
        .store
        .clone()
        .or_else(|| std::env::var(ENV_STORE).ok())
        .or_else(|| {
            Path::new(DEFAULT_STORE_DIR)
                .is_dir()
                .then(|| format!("sqlite:{DEFAULT_STORE_DIR}"))
        });
    let note_keys = trust.as_ref().and_then(|(_, keys)| keys.clone());
    findings.extend(journal_findings(store.as_deref(), note_keys.as_deref()));
    findings.extend(key_findings(&args));
    match trust {
        Some((f, _)) => findings.push(f),
        None => findings.push(
            Finding::new(
                "trust.file",
                Status::Skip,
                "no trust file given (--trust) and no ./trust.json",
            )
            .fix("clyra doctor --trust trust.json"),
        ),
    }
    findings.extend(policy_findings(&args.policies));
    findings.push(redis_finding(
        args.redis
            .clone()
            .or_else(|| std::env::var(ENV_REDIS).ok())
            .as_deref(),
    ));
    match args.dsn.clone().or_else(|| std::env::var(ENV_DSN).ok()) {
        Some(dsn) => {
            let options = doctor::Options {
                password: std::env::var("PGPASSWORD").ok(),
                connect_timeout: None,
                schemas: args.schemas.clone(),
            };
            let report = doctor::check(&dsn, &options);
            for mut f in report.findings {
                f.id = format!("warehouse.{}", f.id);
                findings.push(f);
            }
        }
        None => findings.push(
            Finding::new(
                "warehouse",
                Status::Skip,
                format!("no warehouse given (--dsn, {ENV_DSN})"),
            )
            .fix("clyra doctor --dsn postgres://USER@HOST:5432/DBNAME"),
        ),
    }
    let report = InstallationReport {
        clyra_version: env!("CARGO_PKG_VERSION"),
        status: doctor::worst(&findings),
        findings,
    };
    out.emit(&report, || {
        render(
            &format!("doctor: clyra {}", report.clyra_version),
            &report.findings,
        )
    });
    Ok(exit_for(report.status))
}

/// The findings as a table: status, id, message; fixes indented under their finding.
fn render(title: &str, findings: &[Finding]) -> String {
    let width = findings
        .iter()
        .map(|f| f.id.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut s = format!("{title}\n");
    let mut counts = std::collections::BTreeMap::new();
    for f in findings {
        *counts.entry(f.status).or_insert(0usize) += 1;
        let measured: Vec<String> = f.measured.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let measured = if measured.is_empty() {
            String::new()
        } else {
            format!(" [{}]", measured.join(" "))
        };
        let _ = writeln!(
            s,
            "{:<5} {:<width$}  {}{measured}",
            f.status.as_str(),
            f.id,
            f.message
        );
        if let Some(fix) = &f.fix {
            if f.status == Status::Ok {
                continue;
            }
            let pad = " ".repeat(width + 8);
            for (i, line) in fix.lines().enumerate() {
                if i == 0 {
                    let _ = writeln!(s, "{:<5} {:<width$}  fix: {line}", "", "");
                } else {
                    let _ = writeln!(s, "{pad}     {line}");
                }
            }
        }
    }
    let n = |st: Status| counts.get(&st).copied().unwrap_or(0);
    let _ = writeln!(
        s,
        "{} ok, {} warn, {} fail, {} skip",
        n(Status::Ok),
        n(Status::Warn),
        n(Status::Fail),
        n(Status::Skip)
    );
    s
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Mode bits readable by group or others, on Unix.
#[cfg(unix)]
fn open_mode(path: &Path) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

#[cfg(not(unix))]
fn open_mode(path: &Path) -> std::io::Result<Option<u32>> {
    std::fs::metadata(path).map(|_| None)
}

// ---- the journal ----

fn journal_findings(
    store: Option<&str>,
    note_keys: Option<&[clyra_evidence::keys::PublicKey]>,
) -> Vec<Finding> {
    let Some(url) = store else {
        return vec![
            Finding::new(
                "journal.store",
                Status::Skip,
                format!(
                    "no journal store given (--store, {ENV_STORE}) and no ./{DEFAULT_STORE_DIR}"
                ),
            )
            .fix(format!("clyra doctor --store sqlite:{DEFAULT_STORE_DIR}")),
            Finding::new("journal.chain", Status::Skip, "not checked: no store"),
        ];
    };
    let shown = clyra_journal::postgres::redact_url(url);
    let skip_chain = || Finding::new("journal.chain", Status::Skip, "not checked: no store");
    // Opening a store creates it when missing: look first, so that the doctor never writes one.
    let exists = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres_store_exists(url)
    } else {
        sqlite_store_exists(url)
    };
    let mut out = Vec::new();
    match exists {
        Ok(None) => {}
        Ok(Some(warn)) => out.push(warn),
        Err(f) => return vec![f, skip_chain()],
    }
    let t0 = Instant::now();
    let mut store = match clyra_journal::open(url) {
        Ok(s) => s,
        Err(e) => {
            return vec![
                Finding::new(
                    "journal.store",
                    Status::Fail,
                    format!("cannot open the journal store `{shown}`: {e}"),
                )
                .fix(format!(
                    "clyra journal verify --store {}",
                    shell_quote(&shown)
                )),
                skip_chain(),
            ]
        }
    };
    let tenants = match store.tenants() {
        Ok(t) => t,
        Err(e) => {
            return vec![
                Finding::new(
                    "journal.store",
                    Status::Fail,
                    format!("cannot list the tenants of `{shown}`: {e}"),
                )
                .fix(format!(
                    "clyra journal verify --store {}",
                    shell_quote(&shown)
                )),
                skip_chain(),
            ]
        }
    };
    if out.is_empty() {
        out.push(Finding::new(
            "journal.store",
            Status::Ok,
            format!(
                "journal store `{}` opens ({} tenant{})",
                store.describe(),
                tenants.len(),
                if tenants.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    let (mut entries, mut checkpoints) = (0u64, 0usize);
    for t in &tenants {
        match clyra_journal::verify::verify_tenant(store.as_mut(), t, note_keys) {
            Ok(r) => {
                entries += r.entries;
                checkpoints += r.checkpoints_checked;
                if let Some(b) = &r.broken {
                    out.push(
                        Finding::new(
                            "journal.chain",
                            Status::Fail,
                            format!(
                                "tenant `{t}`: the chain is broken at seq {}: {}",
                                b.seq, b.reason
                            ),
                        )
                        .fix(format!(
                            "clyra journal verify --store {} --tenant {}   # keep this store for \
                             investigation and restore the journal from a backup",
                            shell_quote(&shown),
                            shell_quote(t)
                        )),
                    );
                    return out;
                }
            }
            Err(e) => {
                out.push(
                    Finding::new(
                        "journal.chain",
                        Status::Fail,
                        format!("cannot read tenant `{t}`: {e}"),
                    )
                    .fix(format!(
                        "clyra journal verify --store {} --tenant {}",
                        shell_quote(&shown),
                        shell_quote(t)
                    )),
                );
                return out;
            }
        }
    }
    out.push(
        Finding::new(
            "journal.chain",
            Status::Ok,
            format!(
                "{} tenant{}, {entries} entr{} and {checkpoints} checkpoint{} verify{}",
                tenants.len(),
                if tenants.len() == 1 { "" } else { "s" },
                if entries == 1 { "y" } else { "ies" },
                if checkpoints == 1 { "" } else { "s" },
                if note_keys.is_some() && checkpoints > 0 {
                    " (checkpoint signatures checked against the trust file)"
                } else {
                    ""
                }
            ),
        )
        .measure("verify_ms", ms(t0.elapsed())),
    );
    out
}

/// `Err` when the SQLite store is missing; `Ok(Some(warn))` when its directory is too open.
fn sqlite_store_exists(url: &str) -> Result<Option<Finding>, Finding> {
    let dir = Path::new(url.strip_prefix("sqlite:").unwrap_or(url));
    let db = dir.join(clyra_journal::sqlite::DB_FILE);
    if !db.is_file() {
        return Err(Finding::new(
            "journal.store",
            Status::Fail,
            format!("no journal at `{}` (no {})", dir.display(), clyra_journal::sqlite::DB_FILE),
        )
        .fix(format!(
            "ls -la {}   # wrong path? A store is created by its first write: clyra journal append --store sqlite:{} --tenant TENANT EVENTS.json",
            shell_quote(&dir.display().to_string()),
            dir.display()
        )));
    }
    match open_mode(dir) {
        Ok(Some(mode)) => Ok(Some(
            Finding::new(
                "journal.store",
                Status::Warn,
                format!(
                    "the journal directory `{}` is open to group or others (mode {mode:o}); entries may hold data",
                    dir.display()
                ),
            )
            .fix(format!("chmod 700 {}", shell_quote(&dir.display().to_string()))),
        )),
        _ => Ok(None),
    }
}

/// `Err` when the Postgres store's tables are missing or the server is unreachable.
fn postgres_store_exists(url: &str) -> Result<Option<Finding>, Finding> {
    let shown = clyra_journal::postgres::redact_url(url);
    let (conn, schema) = clyra_journal::split_schema(url);
    let mut client = clyra_warehouse::pg::connect(&conn).map_err(|e| {
        Finding::new("journal.store", Status::Fail, e.to_string()).fix(format!(
            "clyra warehouse doctor --dsn {}   # explains connection problems",
            shell_quote(&clyra_warehouse::suggest::redact(&conn))
        ))
    })?;
    let found: Option<String> = client
        .query_one(
            "SELECT to_regclass(format('%I.clyra_entries', $1::text))::text",
            &[&schema],
        )
        .and_then(|r| r.try_get(0))
        .map_err(|e| {
            Finding::new(
                "journal.store",
                Status::Fail,
                format!("cannot look for the journal in `{shown}`: {e}"),
            )
            .fix(format!("psql {} -c '\\dt {schema}.*'", shell_quote(&conn)))
        })?;
    match found {
        Some(_) => Ok(None),
        None => Err(Finding::new(
            "journal.store",
            Status::Fail,
            format!("no Clyra journal in schema `{schema}` of `{shown}`"),
        )
        .fix(format!(
            "# wrong schema? add ?schema=NAME; a store is created by its first write: clyra journal append --store {} --tenant TENANT EVENTS.json",
            shell_quote(&shown)
        ))),
    }
}

// ---- keys, trust, policy ----

fn key_files(args: &DoctorArgs) -> Vec<PathBuf> {
    let mut files = args.keys.clone();
    let dir = args
        .keys_dir
        .clone()
        .or_else(|| Some(PathBuf::from("keys")).filter(|d| d.is_dir()));
    if let Some(dir) = dir {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file()
                            && matches!(
                                p.extension().and_then(|e| e.to_str()),
                                Some("key" | "secret" | "salt")
                            )
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        files.extend(found);
    }
    files.dedup();
    files
}

fn key_findings(args: &DoctorArgs) -> Vec<Finding> {
    if let Some(dir) = &args.keys_dir {
        if !dir.is_dir() {
            return vec![Finding::new(
                "keys.file",
                Status::Fail,
                format!("`{}` is not a directory", dir.display()),
            )
            .fix(format!(
                "ls -la {}",
                shell_quote(&dir.display().to_string())
            ))];
        }
    }
    let files = key_files(args);
    if files.is_empty() {
        return vec![Finding::new(
            "keys.file",
            Status::Skip,
            "no key files given (--key, --keys-dir) and no ./keys directory",
        )
        .fix("clyra doctor --keys-dir keys")];
    }
    files.iter().map(|p| key_finding(p)).collect()
}

fn key_finding(path: &Path) -> Finding {
    let shown = path.display().to_string();
    match open_mode(path) {
        Err(e) => {
            return Finding::new(
                "keys.file",
                Status::Fail,
                format!("cannot read `{shown}`: {e}"),
            )
            .fix(format!("ls -la {}", shell_quote(&shown)))
        }
        Ok(Some(mode)) => {
            return Finding::new(
                "keys.file",
                Status::Fail,
                format!(
                    "`{shown}` is readable by group or others (mode {mode:o}): anyone who can \
                     read it can sign evidence as this key or forge requests"
                ),
            )
            .fix(format!("chmod 600 {}", shell_quote(&shown)))
        }
        Ok(None) => {}
    }
    if path.extension().and_then(|e| e.to_str()) != Some("key") {
        return Finding::new(
            "keys.file",
            Status::Ok,
            format!("`{shown}`: readable by its owner only"),
        );
    }
    match clyra_evidence::keys::read_private_key_file(path) {
        Ok(key) => {
            use clyra_evidence::keys::Signer as _;
            Finding::new(
                "keys.file",
                Status::Ok,
                format!(
                    "`{shown}`: {} private key {}, readable by its owner only",
                    key.algorithm(),
                    key.key_id()
                ),
            )
        }
        Err(e) => Finding::new(
            "keys.file",
            Status::Fail,
            format!("`{shown}` is not a usable private key: {e}"),
        )
        .fix(format!(
            "clyra keys show {}   # or generate a new one: clyra keys generate --out keys/",
            shell_quote(&shown)
        )),
    }
}

/// The trust file's finding, and its Ed25519 keys valid now (for checkpoint signatures).
fn trust_finding(path: &Path) -> (Finding, Option<Vec<clyra_evidence::keys::PublicKey>>) {
    let shown = path.display().to_string();
    match clyra_evidence::trust::TrustStore::read_file(path) {
        Err(e) => (
            Finding::new(
                "trust.file",
                Status::Fail,
                format!("`{shown}` does not parse: {e}"),
            )
            .fix(format!(
                "clyra canon {} > /dev/null   # shows where; or rebuild it: clyra keys trust add --trust NEW.json keys/clyra.pub",
                shell_quote(&shown)
            )),
            None,
        ),
        Ok(trust) => {
            let now = jiff::Timestamp::now();
            let valid: Vec<_> = trust.valid_at(now).collect();
            let ed: Vec<clyra_evidence::keys::PublicKey> = valid
                .iter()
                .filter(|k| k.algorithm() == clyra_evidence::keys::Algorithm::Ed25519)
                .map(|k| k.public_key().clone())
                .collect();
            let finding = if valid.is_empty() {
                Finding::new(
                    "trust.file",
                    Status::Warn,
                    format!(
                        "`{shown}` parses, but none of its {} key{} is valid now: nothing \
                         verifies against it",
                        trust.len(),
                        if trust.len() == 1 { "" } else { "s" }
                    ),
                )
                .fix(format!(
                    "clyra keys trust add --trust {} keys/clyra.pub",
                    shell_quote(&shown)
                ))
            } else {
                Finding::new(
                    "trust.file",
                    Status::Ok,
                    format!(
                        "`{shown}`: {} key{}, {} valid now",
                        trust.len(),
                        if trust.len() == 1 { "" } else { "s" },
                        valid.len()
                    ),
                )
            };
            (finding, (!ed.is_empty()).then_some(ed))
        }
    }
}

fn policy_findings(files: &[PathBuf]) -> Vec<Finding> {
    if files.is_empty() {
        return vec![Finding::new(
            "policy.file",
            Status::Skip,
            "no policy file given (--policy)",
        )
        .fix("clyra doctor --policy policy.yaml")];
    }
    files
        .iter()
        .map(|p| {
            let shown = p.display().to_string();
            let d = clyra_policy::lint_file(p);
            let errors: Vec<String> = d.errors().map(ToString::to_string).collect();
            let warnings = d.warnings().count();
            let fix = format!(
                "clyra policy lint {}   # every finding with its line and a suggestion",
                shell_quote(&shown)
            );
            if let Some(first) = errors.first() {
                Finding::new(
                    "policy.file",
                    Status::Fail,
                    format!(
                        "`{shown}`: {} error{}, first: {first}",
                        errors.len(),
                        if errors.len() == 1 { "" } else { "s" }
                    ),
                )
                .fix(fix)
            } else if warnings > 0 {
                Finding::new(
                    "policy.file",
                    Status::Warn,
                    format!(
                        "`{shown}`: lints with {warnings} warning{}",
                        if warnings == 1 { "" } else { "s" }
                    ),
                )
                .fix(fix)
            } else {
                Finding::new("policy.file", Status::Ok, format!("`{shown}`: lints clean"))
            }
        })
        .collect()
}

// ---- Redis ----

/// Host, port and credentials of a `redis://` URL.
struct RedisUrl {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
}

fn parse_redis(url: &str) -> Result<RedisUrl, String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or("expected redis://[USER:PASSWORD@]HOST[:PORT] (rediss:// TLS is not supported)")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pw)) => (
                (!user.is_empty()).then(|| user.to_string()),
                Some(pw.to_string()),
            ),
            None => (None, Some(u.to_string())),
        },
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse::<u16>()
                .map_err(|_| format!("port `{p}` is not a number in 1–65535"))?,
        ),
        _ => (hostport.to_string(), 6379),
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    Ok(RedisUrl {
        host,
        port,
        user,
        password,
    })
}

/// RESP array of bulk strings.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

fn redis_ping(r: &RedisUrl, timeout: Duration) -> Result<String, std::io::Error> {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::net::ToSocketAddrs as _;
    let addr = (r.host.as_str(), r.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut w = &stream;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if let Some(pw) = &r.password {
        let cmd = match &r.user {
            Some(u) => resp(&["AUTH", u, pw]),
            None => resp(&["AUTH", pw]),
        };
        w.write_all(&cmd)?;
        reader.read_line(&mut line)?;
        if !line.starts_with('+') {
            return Ok(line.trim_end().to_string());
        }
        line.clear();
    }
    w.write_all(&resp(&["PING"]))?;
    reader.read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}

fn redis_finding(url: Option<&str>) -> Finding {
    let Some(url) = url else {
        return Finding::new(
            "redis",
            Status::Skip,
            format!("no Redis given (--redis, {ENV_REDIS})"),
        )
        .fix("clyra doctor --redis redis://127.0.0.1:6379");
    };
    let shown = clyra_warehouse::pg::redact(url);
    let r = match parse_redis(url) {
        Ok(r) => r,
        Err(e) => {
            return Finding::new("redis", Status::Fail, format!("`{shown}`: {e}"))
                .fix("clyra doctor --redis redis://HOST:6379")
        }
    };
    let cli = format!("redis-cli -h {} -p {} ping", shell_quote(&r.host), r.port);
    let t0 = Instant::now();
    match redis_ping(&r, Duration::from_secs(3)) {
        Ok(reply) if reply == "+PONG" => Finding::new(
            "redis",
            Status::Ok,
            format!("Redis at {}:{} answers PING", r.host, r.port),
        )
        .measure("ping_ms", ms(t0.elapsed())),
        Ok(reply) if reply.contains("NOAUTH") || reply.contains("WRONGPASS") => Finding::new(
            "redis",
            Status::Fail,
            format!(
                "Redis at {}:{} refuses the credentials: {}",
                r.host,
                r.port,
                reply.trim_start_matches('-')
            ),
        )
        .fix(format!(
            "clyra doctor --redis 'redis://USER:PASSWORD@{}:{}'   # check with: {cli} --user USER --pass PASSWORD",
            r.host, r.port
        )),
        Ok(reply) => Finding::new(
            "redis",
            Status::Fail,
            format!(
                "{}:{} answered `{}` to PING: not Redis?",
                r.host,
                r.port,
                reply.chars().take(60).collect::<String>()
            ),
        )
        .fix(cli),
        Err(e) => Finding::new(
            "redis",
            Status::Fail,
            format!("cannot reach Redis at {}:{}: {e}", r.host, r.port),
        )
        .fix(format!("{cli}   # is redis-server running and bound to this address?")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redis_urls() {
        let r = parse_redis("redis://127.0.0.1:6380/0").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 6380));
        assert_eq!(r.password, None);
        let r = parse_redis("redis://ann:pw@cache").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("cache", 6379));
        assert_eq!(
            (r.user.as_deref(), r.password.as_deref()),
            (Some("ann"), Some("pw"))
        );
        let r = parse_redis("redis://:pw@[::1]:6379").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", 6379));
        assert_eq!(r.user, None);
        assert!(parse_redis("rediss://h").is_err());
        assert!(parse_redis("redis://h:99999").is_err());
        assert_eq!(resp(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
    }
}
