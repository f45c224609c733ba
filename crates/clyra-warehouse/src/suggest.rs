//! Suggested corrections for mistyped connection strings.
//!
//! [`suggest`] looks at a connection string (a URL or libpq `key=value` pairs) for the mistakes
//! people make: a misspelled scheme (`postgress://`, `pg://`), a misspelled host (`localhsot`), a
//! port out of range, an unknown parameter (`sslmod=`, `database=`), a misspelled value
//! (`sslmode=requre`). Unknown keys are matched against libpq's keyword list by edit distance
//! (Damerau–Levenshtein, optimal string alignment), plus a few aliases other tools use.
//!
//! Nothing here ever echoes a password: the corrected string is built with every password-like
//! value (`password`, `sslpassword`, misspellings of them, URL userinfo) replaced by `***`, and
//! the problems name keys, never their values, except for hosts, ports and enumerated values.
//!
//! ```
//! let s = clyra_warehouse::suggest::suggest("postgress://ann:s3cret@localhsot:5432/prod?sslmod=disable");
//! assert_eq!(
//!     s.corrected.as_deref(),
//!     Some("postgres://ann:***@localhost:5432/prod?sslmode=disable")
//! );
//! assert!(!s.message().unwrap_or_default().contains("s3cret"));
//! ```

use std::net::Ipv4Addr;

/// What [`suggest`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Suggestions {
    /// One sentence per problem, in the order they appear in the string.
    pub problems: Vec<String>,
    /// The string with every correction applied and passwords replaced by `***`; `None` when
    /// nothing could be corrected.
    pub corrected: Option<String>,
}

impl Suggestions {
    /// True when nothing looked wrong.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line for an error message: `did you mean `...`? (problem; problem)`, or the problems
    /// alone when there is no correction; `None` when nothing looked wrong.
    pub fn message(&self) -> Option<String> {
        if self.problems.is_empty() {
            return None;
        }
        let problems = self.problems.join("; ");
        Some(match &self.corrected {
            Some(c) => format!("did you mean `{c}`? ({problems})"),
            None => problems,
        })
    }
}

/// libpq's connection parameter keywords (PostgreSQL 17, "Parameter Key Words" in the libpq
/// documentation), plus `keepalives_retries`, the name Clyra's driver uses for libpq's
/// `keepalives_count`.
pub const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "keepalives_retries",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// The keywords Clyra's Postgres driver (`tokio-postgres`) accepts; the others are refused.
pub const DRIVER_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "options",
    "application_name",
    "sslmode",
    "sslrootcert",
    "sslnegotiation",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// Names other tools use for a libpq keyword.
const ALIASES: &[(&str, &str)] = &[
    ("database", "dbname"),
    ("db", "dbname"),
    ("db_name", "dbname"),
    ("username", "user"),
    ("usr", "user"),
    ("pass", "password"),
    ("passwd", "password"),
    ("pwd", "password"),
    ("pw", "password"),
    ("hostname", "host"),
    ("server", "host"),
    ("ssl", "sslmode"),
    ("ssl_mode", "sslmode"),
    ("timeout", "connect_timeout"),
    ("connection_timeout", "connect_timeout"),
    ("connecttimeout", "connect_timeout"),
    ("applicationname", "application_name"),
    ("appname", "application_name"),
    ("app_name", "application_name"),
    ("targetsessionattrs", "target_session_attrs"),
];

/// Values of the enumerated keywords: libpq's, then the subset the driver accepts.
const VALUES: &[(&str, &[&str], &[&str])] = &[
    (
        "sslmode",
        &[
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ],
        // Clyra reads sslmode itself (crate::tls) and gives it libpq's meaning.
        &[
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ],
    ),
    (
        "target_session_attrs",
        &[
            "any",
            "read-write",
            "read-only",
            "primary",
            "standby",
            "prefer-standby",
        ],
        &["any", "read-write", "read-only"],
    ),
    (
        "channel_binding",
        &["disable", "prefer", "require"],
        &["disable", "prefer", "require"],
    ),
    (
        "load_balance_hosts",
        &["disable", "random"],
        &["disable", "random"],
    ),
    (
        "sslnegotiation",
        &["postgres", "direct"],
        &["postgres", "direct"],
    ),
    ("gssencmode", &["disable", "prefer", "require"], &[]),
];

/// The URL schemes Clyra recognizes, and what they are.
const SCHEMES: &[&str] = &[
    "postgres",
    "postgresql",
    "snowflake",
    "databricks",
    "bigquery",
];

/// Longest key or value considered for edit distances (longer strings are not typos of short
/// keywords, and this bounds the work on untrusted input).
const MAX_WORD: usize = 64;

/// Edit distance with adjacent transpositions (optimal string alignment), over lowercase chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let (n, m) = (a.len(), b.len());
    // Three rows: two back (for transpositions), one back, current.
    let mut prev2 = vec![0usize; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    for i in 1..=n {
        cur[0] = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m]
}

/// The candidate nearest to `word` within a distance that scales with its length (1 for up to 4
/// characters, 2 up to 8, 3 beyond), or `None`. Ties go to the earlier candidate.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let len = word.chars().count();
    if len == 0 || len > MAX_WORD {
        return None;
    }
    let limit = match len {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = edit_distance(word, c);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The scheme `scheme` was probably meant to be: the lowercase form of a known one, a Postgres
/// alias (`pg`, `pgsql`, `psql`, `postgresql+psycopg2`), or a known scheme within edit distance 2.
/// `None` when `scheme` is known already or nothing is close.
pub fn suggest_scheme(scheme: &str) -> Option<&'static str> {
    if SCHEMES.contains(&scheme) {
        return None;
    }
    let lower = scheme.to_ascii_lowercase();
    if let Some(s) = SCHEMES.iter().find(|s| **s == lower) {
        return Some(s);
    }
    if let Some(base) = lower.split_once('+').map(|(b, _)| b) {
        // SQLAlchemy's `postgresql+psycopg2`.
        if base == "postgresql" || base == "postgres" {
            return Some(if base == "postgres" {
                "postgres"
            } else {
                "postgresql"
            });
        }
    }
    match lower.as_str() {
        "pg" | "pgsql" | "psql" | "postgre" | "postgis" => return Some("postgres"),
        _ => {}
    }
    if lower.len() > MAX_WORD {
        return None;
    }
    // Ties go to the scheme the typo is a prefix of (`postgresq` is `postgresql`).
    let mut best: Option<(usize, bool, &'static str)> = None;
    for s in SCHEMES {
        let d = edit_distance(&lower, s);
        let prefix = s.starts_with(lower.as_str());
        if d <= 2 && best.is_none_or(|(bd, bp, _)| d < bd || (d == bd && prefix && !bp)) {
            best = Some((d, prefix, s));
        }
    }
    best.map(|(_, _, s)| s)
}

/// Looks `dsn` over for likely mistakes; see the module docs.
pub fn suggest(dsn: &str) -> Suggestions {
    let mut s = Suggestions::default();
    let trimmed = dsn.trim();
    let corrected = if let Some((scheme, rest)) = split_url(trimmed) {
        url(scheme, rest, &mut s.problems)
    } else {
        pairs(trimmed, &mut s.problems)
    };
    if !s.problems.is_empty() {
        s.corrected = corrected.map(|c| mask_secret_pairs(&c));
    }
    // Hosts and values are echoed; a password pasted where they are must not be.
    for p in &mut s.problems {
        *p = mask_secret_pairs(p);
    }
    s
}

/// Replaces the value of every `key=value` whose key looks secret ([`is_secret`]) with `***`,
/// wherever it stands in `s`: a value runs to the next whitespace, `&` or `#`, or is a single-quoted
/// string.
fn mask_secret_pairs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        let key_start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
            .last()
            .map_or(before.len(), |(i, _)| i);
        let key = &before[key_start..];
        out.push_str(before);
        out.push('=');
        let value = &after[1..];
        if key.is_empty() || !is_secret(key) || value.starts_with("***") {
            rest = value;
            continue;
        }
        let end = if let Some(q) = value.strip_prefix('\'') {
            let mut end = q.len();
            let mut escaped = false;
            for (i, c) in q.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            (1 + end).min(value.len())
        } else {
            value
                .find(|c: char| c.is_whitespace() || c == '&' || c == '#')
                .unwrap_or(value.len())
        };
        out.push_str("***");
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// `scheme://rest`, with `jdbc:` stripped into the scheme (so that it is suggested away).
fn split_url(dsn: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = dsn.split_once("://")?;
    let ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-' | ':'));
    ok.then_some((scheme, rest))
}

/// Checks a URL; returns the corrected, redacted URL when a correction was made.
fn url(scheme: &str, rest: &str, problems: &mut Vec<String>) -> Option<String> {
    let mut changed = false;
    let mut scheme_out = scheme.to_string();
    if let Some(stripped) = scheme.strip_prefix("jdbc:") {
        problems.push(format!(
            "`{scheme}://` is a JDBC URL; drop the `jdbc:` prefix"
        ));
        scheme_out = stripped.to_string();
        changed = true;
    }
    if let Some(fixed) = suggest_scheme(&scheme_out) {
        problems.push(format!(
            "unknown scheme `{scheme_out}://`; did you mean `{fixed}://`?"
        ));
        scheme_out = fixed.to_string();
        changed = true;
    } else if !SCHEMES.contains(&scheme_out.as_str()) {
        problems.push(format!(
            "unknown scheme `{scheme_out}://`; Postgres URLs start with `postgres://` or `postgresql://`"
        ));
    }
    let is_pg = scheme_out == "postgres" || scheme_out == "postgresql";

    // The authority ends at the first '/', '?' or '#'; userinfo is before its last '@'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let userinfo_out = userinfo.map(|u| match u.split_once(':') {
        Some((user, _)) => format!("{user}:***@"),
        None => format!("{u}@"),
    });
    let mut hosts_out = Vec::new();
    for hp in hosts.split(',') {
        let (host, port) = split_host_port(hp);
        let host_out = match check_host(host, problems) {
            Some(h) => {
                changed = true;
                h
            }
            None => host.to_string(),
        };
        if let Some(p) = port {
            check_port(p, problems);
        }
        hosts_out.push(match port {
            Some(p) => format!("{host_out}:{p}"),
            None => host_out,
        });
    }
    let (path, fragment) = match tail.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (tail, None),
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out = format!(
        "{scheme_out}://{}{}{path}",
        userinfo_out.unwrap_or_default(),
        hosts_out.join(",")
    );
    if let Some(q) = query {
        let mut params = Vec::new();
        for kv in q.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let key = if is_pg { check_key(k, problems) } else { None };
            if key.is_some() {
                changed = true;
            }
            let key_out = key.unwrap_or_else(|| k.to_string());
            let value = if is_pg {
                check_value(&key_out, v, problems)
            } else {
                None
            };
            if value.is_some() {
                changed = true;
            }
            let value_out = if is_secret(k) || is_secret(&key_out) {
                "***".to_string()
            } else {
                value.unwrap_or_else(|| v.to_string())
            };
            params.push(format!("{key_out}={value_out}"));
        }
        out.push('?');
        out.push_str(&params.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    changed.then_some(out)
}

/// `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(hp: &str) -> (&str, Option<&str>) {
    if hp.starts_with('[') {
        return match hp.find(']') {
            Some(i) => {
                let (h, rest) = hp.split_at(i + 1);
                (h, rest.strip_prefix(':'))
            }
            None => (hp, None),
        };
    }
    match hp.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hp, None),
    }
}

/// A corrected host, after noting the problem; `None` when the host looks fine (or cannot be
/// corrected).
fn check_host(host: &str, problems: &mut Vec<String>) -> Option<String> {
    if host.is_empty() || host.starts_with('[') || host.starts_with('/') || host.contains('%') {
        return None;
    }
    let lower = host.to_ascii_lowercase();
    if lower != "localhost" && lower.len() <= MAX_WORD {
        let d = edit_distance(&lower, "localhost");
        if (1..=2).contains(&d) {
            problems.push(format!("host `{host}` looks like a typo of `localhost`"));
            return Some("localhost".to_string());
        }
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.')
        && host.contains('.')
        && host.parse::<Ipv4Addr>().is_err()
    {
        problems.push(format!("host `{host}` is not a valid IPv4 address"));
    }
    None
}

fn check_port(port: &str, problems: &mut Vec<String>) {
    if port.is_empty() {
        return;
    }
    if !port.chars().all(|c| c.is_ascii_digit()) {
        problems.push(format!(
            "port `{}` is not a number (Postgres listens on 5432 by default)",
            truncate(port)
        ));
        return;
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => {}
        _ => problems.push(format!(
            "port `{}` is out of range (1–65535; Postgres listens on 5432 by default)",
            truncate(port)
        )),
    }
}

/// A corrected key, after noting the problem; `None` when the key is fine or unknown without a
/// guess (then the problem is noted too).
fn check_key(key: &str, problems: &mut Vec<String>) -> Option<String> {
    if DRIVER_KEYWORDS.contains(&key) {
        return None;
    }
    let lower = key.to_ascii_lowercase();
    if lower != key && DRIVER_KEYWORDS.contains(&lower.as_str()) {
        problems.push(format!(
            "parameter names are lowercase: `{}` is `{lower}`",
            truncate(key)
        ));
        return Some(lower);
    }
    if key == "keepalives_count" {
        problems.push(
            "libpq's `keepalives_count` is called `keepalives_retries` by Clyra's Postgres driver"
                .to_string(),
        );
        return Some("keepalives_retries".to_string());
    }
    if LIBPQ_KEYWORDS.contains(&key) {
        let hint = match key {
            "passfile" => "; set PGPASSWORD or put the password in the connection string",
            "service" => "; spell out host, port, dbname and user",
            k if k.starts_with("ssl") || k == "requiressl" => {
                "; of the TLS settings Clyra supports sslmode and sslrootcert (client certificates are not supported)"
            }
            _ => "",
        };
        problems.push(format!(
            "libpq parameter `{key}` is not supported by Clyra's Postgres driver{hint}"
        ));
        return None;
    }
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == lower) {
        problems.push(format!(
            "`{}` is not a libpq parameter; did you mean `{to}`?",
            truncate(key)
        ));
        return Some((*to).to_string());
    }
    match nearest(&lower, LIBPQ_KEYWORDS) {
        Some(to) => {
            problems.push(format!(
                "unknown parameter `{}`; did you mean `{to}`?",
                truncate(key)
            ));
            Some(to.to_string())
        }
        None => {
            problems.push(format!(
                "unknown parameter `{}` (not a libpq keyword)",
                truncate(key)
            ));
            None
        }
    }
}

/// A corrected value for `key`, after noting the problem; `None` when the value is fine or
/// cannot be corrected.
fn check_value(key: &str, value: &str, problems: &mut Vec<String>) -> Option<String> {
    match key {
        "host" => {
            let mut changed = false;
            let hosts: Vec<String> = value
                .split(',')
                .map(|h| match check_host(h, problems) {
                    Some(f) => {
                        changed = true;
                        f
                    }
                    None => h.to_string(),
                })
                .collect();
            return changed.then(|| hosts.join(","));
        }
        "port" => {
            for p in value.split(',') {
                check_port(p, problems);
            }
            return None;
        }
        _ => {}
    }
    let (_, libpq, driver) = VALUES.iter().find(|(k, _, _)| *k == key)?;
    if driver.contains(&value) {
        return None;
    }
    let accepted = if driver.is_empty() {
        "none".to_string()
    } else {
        driver.join(", ")
    };
    if libpq.contains(&value) {
        problems.push(format!(
            "`{key}={value}` is valid for libpq but not supported by Clyra's Postgres driver (it accepts {accepted})"
        ));
        return None;
    }
    let lower = value.to_ascii_lowercase();
    match nearest(&lower, libpq) {
        Some(to) => {
            problems.push(format!(
                "`{key}={}` is not a valid value; did you mean `{to}`? (Clyra's driver accepts {accepted})",
                truncate(value)
            ));
            Some(to.to_string())
        }
        None => {
            problems.push(format!(
                "`{key}={}` is not a valid value (Clyra's driver accepts {accepted})",
                truncate(value)
            ));
            None
        }
    }
}

/// Whether a key's value must never be shown: passwords and anything that looks like one.
fn is_secret(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    if lower.len() > MAX_WORD {
        return true;
    }
    lower.contains("pass")
        || lower.contains("secret")
        || lower.contains("token")
        || matches!(lower.as_str(), "pwd" | "pw")
        || edit_distance(&lower, "password") <= 2
}

/// Shortens untrusted text for a message.
fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_WORD {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX_WORD).collect();
        format!("{cut}…")
    }
}

/// One `key = value` pair of a libpq string.
pub(crate) struct Pair {
    pub(crate) key: String,
    pub(crate) value: String,
}

/// Splits libpq `key=value` pairs (whitespace around `=` allowed, values optionally single-quoted
/// with `\'` and `\\` escapes). A word without `=` is an error naming it.
pub(crate) fn tokenize(s: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            return Err(key);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(e) = chars.next() {
                            value.push(e);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("{key}='"));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push(Pair { key, value });
    }
}

pub(crate) fn quote_value(v: &str) -> String {
    if !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return v.to_string();
    }
    let mut s = String::from("'");
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('\'');
    s
}

/// Checks libpq pairs; returns the corrected, redacted string when a correction was made.
fn pairs(dsn: &str, problems: &mut Vec<String>) -> Option<String> {
    let pairs = match tokenize(dsn) {
        Ok(p) => p,
        Err(word) => {
            // A URL without its scheme, or with a broken one (`postgres:/db`, `localhost:5432/db`).
            if let Some(rest) = broken_scheme(dsn) {
                problems.push("a URL starts with `postgres://`".to_string());
                let fixed = format!("postgres://{rest}");
                let mut inner = Vec::new();
                let corrected = split_url(&fixed).and_then(|(s, r)| url(s, r, &mut inner));
                problems.extend(inner);
                return Some(corrected.unwrap_or_else(|| crate::pg::redact_libpq(&fixed)));
            }
            if word.ends_with("='") {
                problems.push(format!(
                    "the quoted value of `{}` is not closed",
                    truncate(word.trim_end_matches("='"))
                ));
            } else if !is_secret(&word) && !word.contains('@') {
                problems.push(format!(
                    "`{}` is neither a URL (postgres://...) nor a key=value pair",
                    truncate(&word)
                ));
            } else {
                problems.push(
                    "the string is neither a URL (postgres://...) nor key=value pairs".to_string(),
                );
            }
            return None;
        }
    };
    let mut changed = false;
    let mut out = Vec::new();
    for p in &pairs {
        let key = check_key(&p.key, problems);
        changed |= key.is_some();
        let key_out = key.unwrap_or_else(|| p.key.clone());
        let value = check_value(&key_out, &p.value, problems);
        changed |= value.is_some();
        let value_out = if is_secret(&p.key) || is_secret(&key_out) {
            "***".to_string()
        } else {
            quote_value(&value.unwrap_or_else(|| p.value.clone()))
        };
        out.push(format!("{key_out}={value_out}"));
    }
    changed.then(|| out.join(" "))
}

/// For strings that are a URL with a mangled scheme separator or none at all: the part after
/// it. `postgres:/h/db`, `postgres:h/db`, `postgres//h/db`, `user@host:5432/db`, `localhost:5432/db`.
fn broken_scheme(dsn: &str) -> Option<&str> {
    if dsn.contains(char::is_whitespace) || (dsn.contains('=') && !dsn.contains('?')) {
        return None;
    }
    for prefix in ["postgresql", "postgres"] {
        if let Some(rest) = dsn.strip_prefix(prefix) {
            for sep in [":/", "//", ":"] {
                if let Some(r) = rest.strip_prefix(sep) {
                    if !r.is_empty() && !r.starts_with('/') {
                        return Some(r);
                    }
                }
            }
        }
    }
    let looks_like_authority = dsn.contains('@') || {
        let (host, rest) = dsn.split_once(':')?;
        !host.is_empty() && rest.chars().next().is_some_and(|c| c.is_ascii_digit())
    };
    looks_like_authority.then_some(dsn)
}

/// The redacted form of `dsn` for messages: the URL and `password=` redaction, plus the values of
/// misspelled password keys (`pasword=`, `passwd=`) masked too.
pub fn redact(dsn: &str) -> String {
    mask_secret_pairs(&redact_structured(dsn))
}

fn redact_structured(dsn: &str) -> String {
    let redacted = crate::pg::redact_libpq(dsn);
    if split_url(dsn.trim()).is_some() {
        // Query parameters: mask secret-looking keys.
        let Some((base, query)) = redacted.split_once('?') else {
            return redacted;
        };
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let params: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if is_secret(k) => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        let mut out = format!("{base}?{}", params.join("&"));
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        return out;
    }
    match tokenize(&redacted) {
        Ok(pairs) => pairs
            .iter()
            .map(|p| {
                if is_secret(&p.key) {
                    format!("{}=***", p.key)
                } else {
                    format!("{}={}", p.key, quote_value(&p.value))
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        // Not pairs: mask everything after the first secret-looking word.
        Err(_) => {
            let lower = redacted.to_ascii_lowercase();
            match ["pass", "pwd", "secret", "token"]
                .iter()
                .filter_map(|w| lower.find(w))
                .min()
            {
                Some(i) => format!("{}***", redacted.get(..i).unwrap_or("")),
                None => redacted,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn corrected(dsn: &str) -> Option<String> {
        suggest(dsn).corrected
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("sslmode", "sslmode"), 0);
        assert_eq!(edit_distance("sslmod", "sslmode"), 1);
        assert_eq!(edit_distance("localhsot", "localhost"), 1); // transposition
        assert_eq!(edit_distance("locahost", "localhost"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("PoStGrEsS", "postgres"), 1);
        assert_eq!(
            nearest("applicaton_name", LIBPQ_KEYWORDS),
            Some("application_name")
        );
        assert_eq!(nearest("sslmod", LIBPQ_KEYWORDS), Some("sslmode"));
        assert_eq!(nearest("xyz", LIBPQ_KEYWORDS), None);
        assert_eq!(nearest("colour", LIBPQ_KEYWORDS), None);
    }

    #[test]
    fn scheme_typos() {
        for (typo, want) in [
            ("postgress", "postgres"),
            ("postgre", "postgres"),
            ("postgresq", "postgresql"),
            ("pg", "postgres"),
            ("psql", "postgres"),
            ("pgsql", "postgres"),
            ("Postgres", "postgres"),
            ("postgresql+psycopg2", "postgresql"),
            ("postgersql", "postgresql"),
            ("snowflak", "snowflake"),
            ("databrick", "databricks"),
            ("bigqeury", "bigquery"),
        ] {
            assert_eq!(suggest_scheme(typo), Some(want), "{typo}");
        }
        for ok in ["postgres", "postgresql", "snowflake"] {
            assert_eq!(suggest_scheme(ok), None);
        }
        assert_eq!(suggest_scheme("mysql"), None);
        assert_eq!(suggest_scheme("https"), None);
    }

    #[test]
    fn url_corrections_never_echo_passwords() {
        assert_eq!(
            corrected("postgress://ann:s3cret@db:5432/prod").as_deref(),
            Some("postgres://ann:***@db:5432/prod")
        );
        assert_eq!(
            corrected("postgres://ci@localhsot/prod").as_deref(),
            Some("postgres://ci@localhost/prod")
        );
        assert_eq!(
            corrected("postgres://ci@locahost:5432/prod").as_deref(),
            Some("postgres://ci@localhost:5432/prod")
        );
        assert_eq!(
            corrected("pg://h/db?sslmod=disable&applicaton_name=x&password=p4ss").as_deref(),
            Some("postgres://h/db?sslmode=disable&application_name=x&password=***")
        );
        assert_eq!(
            corrected("postgres://h/db?database=x").as_deref(),
            Some("postgres://h/db?dbname=x")
        );
        assert_eq!(
            corrected("postgres://h/db?sslmode=requre").as_deref(),
            Some("postgres://h/db?sslmode=require")
        );
        assert_eq!(
            corrected("jdbc:postgresql://h:5432/db").as_deref(),
            Some("postgresql://h:5432/db")
        );
        let s = suggest("postgress://ann:hunter2@h/db?pasword=hunter3");
        let m = s.message().unwrap();
        assert!(!m.contains("hunter2") && !m.contains("hunter3"), "{m}");
        assert!(m.contains("?password=***"), "{m}");
        assert!(m.contains("unknown parameter `pasword`"), "{m}");
    }

    #[test]
    fn ports_and_addresses() {
        let s = suggest("postgres://h:70000/db");
        assert_eq!(s.corrected, None);
        assert!(s.problems[0].contains("`70000` is out of range"), "{s:?}");
        let s = suggest("postgres://h:0/db");
        assert!(s.problems[0].contains("out of range"), "{s:?}");
        let s = suggest("postgres://h:54x2/db");
        assert!(s.problems[0].contains("not a number"), "{s:?}");
        let s = suggest("postgres://127.0.01:5432/db");
        assert!(s.problems[0].contains("not a valid IPv4"), "{s:?}");
        let s = suggest("host=h port=99999");
        assert!(s.problems[0].contains("`99999` is out of range"), "{s:?}");
        assert!(suggest("postgres://[::1]:5432/db").is_empty());
        assert!(
            suggest("postgres://h1:5432,h2:5433/db?target_session_attrs=read-write").is_empty()
        );
    }

    #[test]
    fn pair_corrections() {
        assert_eq!(
            corrected("host=localhsot dbname=prod user=ci password='a b'").as_deref(),
            Some("host=localhost dbname=prod user=ci password=***")
        );
        assert_eq!(
            corrected("host=h database=prod sslmod=disable").as_deref(),
            Some("host=h dbname=prod sslmode=disable")
        );
        assert_eq!(
            corrected("host=h applicaton_name='my app'").as_deref(),
            Some("host=h application_name='my app'")
        );
        assert_eq!(
            corrected("host=h keepalives_count=3").as_deref(),
            Some("host=h keepalives_retries=3")
        );
        assert_eq!(corrected("Host=h").as_deref(), Some("host=h"));
        let s = suggest("host=h passwrd=hunter2 dbnme=x");
        assert_eq!(s.corrected.as_deref(), Some("host=h password=*** dbname=x"));
        assert!(!s.message().unwrap().contains("hunter2"));
        let s = suggest("host=h sslmode=verify-full sslrootcert=/ca.pem");
        assert!(s.is_empty(), "{s:?}");
        let s = suggest("host=h sslcrl=/crl.pem");
        assert_eq!(s.corrected, None);
        assert!(
            s.problems[0].contains("not supported by Clyra's Postgres driver"),
            "{s:?}"
        );
        assert!(s.problems[0].contains("sslmode and sslrootcert"), "{s:?}");
        let s = suggest("host=h service=prod");
        assert!(s.problems[0].contains("spell out host"), "{s:?}");
        let s = suggest("host=h frobnicate=1");
        assert!(
            s.problems[0].contains("unknown parameter `frobnicate`"),
            "{s:?}"
        );
        assert_eq!(s.corrected, None);
        let s = suggest("host=h password='unterminated");
        assert!(s.problems[0].contains("not closed"), "{s:?}");
        assert!(!s.message().unwrap().contains("unterminated"));
    }

    #[test]
    fn urls_without_a_scheme() {
        assert_eq!(
            corrected("postgres:/h/db").as_deref(),
            Some("postgres://h/db")
        );
        assert_eq!(
            corrected("ann:pw@db.example:5432/prod").as_deref(),
            Some("postgres://ann:***@db.example:5432/prod")
        );
        assert_eq!(
            corrected("localhost:5432/prod").as_deref(),
            Some("postgres://localhost:5432/prod")
        );
    }

    #[test]
    fn good_strings_have_no_problems() {
        for ok in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgresql://ann:pw@db/prod?sslmode=disable&application_name=dbt",
            "host=/var/run/postgresql dbname=x user=y",
            "host=db port=5432 dbname=prod user=ci connect_timeout=5 options='-c search_path=a'",
            "",
        ] {
            let s = suggest(ok);
            assert!(s.is_empty(), "{ok}: {s:?}");
            assert_eq!(s.message(), None);
        }
    }

    #[test]
    fn redact_masks_misspelled_password_keys() {
        assert_eq!(
            redact("host=h pasword=hunter2 dbname=x"),
            "host=h pasword=*** dbname=x"
        );
        assert_eq!(
            redact("postgres://u:pw@h/db?passwd=hunter2&sslmode=disable"),
            "postgres://u:***@h/db?passwd=***&sslmode=disable"
        );
        assert!(!redact("host=h passwd='unterminated hunter2").contains("hunter2"));
    }

    proptest::proptest! {
        /// What the `warehouse_dsn` fuzz target runs, on arbitrary and on URL-ish strings.
        #[test]
        fn the_fuzz_hook_accepts_anything(
            any in "\\PC{0,120}",
            urlish in "(postgres|postgress|pg|snowflake|https|bigquery)?(://)?[a-z:@/?&=.,\\[\\]' ]{0,60}",
        ) {
            crate::fuzz_hooks::dsn(any.as_bytes());
            crate::fuzz_hooks::dsn(urlish.as_bytes());
        }

        #[test]
        fn never_panics_and_never_echoes_the_password(
            prefix in "[ -&(-<>-\\[\\]-~]{0,40}",
            pw in "[A-Za-z0-9]{12}",
        ) {
            for dsn in [
                format!("{prefix}password={pw}"),
                format!("postgress://u:{pw}@{prefix}"),
                format!("{prefix} pasword='{pw}'"),
            ] {
                let s = suggest(&dsn);
                if let Some(m) = s.message() {
                    proptest::prop_assert!(!m.contains(&pw), "{} -> {}", dsn, m);
                }
                let _ = redact(&dsn);
            }
        }
    }
}
