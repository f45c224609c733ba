//! Connecting to Postgres, and the small SQL helpers the other modules share.

use std::str::FromStr as _;
use std::time::Duration;

use postgres::NoTls;
pub use postgres::{Client, Config};

use crate::error::{pg_message, Error};

/// How long to wait for a connection when the connection string does not say.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `application_name` Clyra announces when the connection string sets none, so that its
/// sessions are visible as such in `pg_stat_activity` and the server log.
pub const APPLICATION_NAME: &str = "clyra";

/// Parses a connection string: a `postgres://` URL or libpq `key=value` pairs.
///
/// Adds a connect timeout ([`DEFAULT_CONNECT_TIMEOUT`]) and `application_name=clyra` unless the
/// string sets them. `sslmode` has libpq's meaning (default `prefer`; `verify-ca` and
/// `verify-full` check the certificate against `sslrootcert` or the Mozilla roots), see
/// [`crate::tls`]; the TLS itself is set up by [`connect_with`].
pub fn config(dsn: &str) -> Result<Config, Error> {
    let (_, driver_dsn) = crate::tls::split(dsn).map_err(|message| Error::Dsn {
        dsn: crate::suggest::redact(dsn),
        message: with_suggestion(message, dsn),
    })?;
    let mut config = Config::from_str(&driver_dsn).map_err(|e| Error::Dsn {
        dsn: crate::suggest::redact(dsn),
        // The driver says "invalid connection string: ..."; the variant already says so.
        message: with_suggestion(
            pg_message(&e)
                .0
                .trim_start_matches("invalid connection string: ")
                .to_string(),
            dsn,
        ),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    Ok(config)
}

/// Connects with a parsed [`config`]; `dsn` gives the TLS settings (`sslmode`, `sslrootcert`,
/// see [`crate::tls`]) and is otherwise only used (redacted) in the error message. Unix-socket
/// connections never use TLS, as with libpq.
pub fn connect_with(config: &Config, dsn: &str) -> Result<Client, Error> {
    try_connect(config, dsn).map_err(|e| Error::Connect {
        dsn: crate::suggest::redact(dsn),
        message: match e {
            ConnectFailure::Setup(m) => m,
            ConnectFailure::Driver(e) => with_suggestion(pg_message(&e).0, dsn),
        },
    })
}

/// Why [`try_connect`] failed.
#[derive(Debug)]
pub(crate) enum ConnectFailure {
    /// The TLS settings are unusable (unreadable `sslrootcert`, client certificates, ...).
    Setup(String),
    /// The driver's error, for callers that classify it (the doctor).
    Driver(postgres::Error),
}

/// [`connect_with`] keeping the driver's error.
pub(crate) fn try_connect(config: &Config, dsn: &str) -> Result<Client, ConnectFailure> {
    let (options, _) = crate::tls::split(dsn).map_err(ConnectFailure::Setup)?;
    let all_unix = config
        .get_hosts()
        .iter()
        .all(|h| !matches!(h, postgres::config::Host::Tcp(_)));
    let tls = if all_unix && config.get_hostaddrs().is_empty() {
        None
    } else {
        crate::tls::client_config(&options).map_err(ConnectFailure::Setup)?
    };
    match tls {
        Some(tls) => config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls)),
        None => {
            let mut plain = config.clone();
            plain.ssl_mode(postgres::config::SslMode::Disable);
            plain.connect(NoTls)
        }
    }
    .map_err(ConnectFailure::Driver)
}

/// Appends what [`crate::suggest`] makes of `dsn` (a likely typo and its correction, passwords
/// removed) to an error message.
fn with_suggestion(message: String, dsn: &str) -> String {
    match crate::suggest::suggest(dsn).message() {
        Some(hint) => format!("{message}; {hint}"),
        None => message,
    }
}

/// Parses `dsn` and connects.
pub fn connect(dsn: &str) -> Result<Client, Error> {
    connect_with(&config(dsn)?, dsn)
}

/// Removes passwords from a connection string for messages: the URL userinfo password,
/// `password=` pairs, and secret-looking keys, misspelled ones included ([`crate::suggest::redact`]).
pub fn redact(dsn: &str) -> String {
    crate::suggest::redact(dsn)
}

/// The structural part of [`redact`]: the URL userinfo password and `password=` pairs (quoted
/// values included). [`crate::suggest::redact`] builds on it.
pub(crate) fn redact_libpq(dsn: &str) -> String {
    if let Some((scheme, rest)) = dsn.split_once("://") {
        // The authority ends at the first '/', '?' or '#'; userinfo is before its last '@'.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => format!("{userinfo}@{host}"),
            },
            None => authority.to_string(),
        };
        let tail = redact_query(tail);
        return format!("{scheme}://{authority}{tail}");
    }
    // key=value form: values may be quoted with single quotes.
    let mut out = String::with_capacity(dsn.len());
    let mut rest = dsn;
    while let Some(pos) = rest.find("password") {
        let (before, after) = rest.split_at(pos);
        out.push_str(before);
        let after_key = &after["password".len()..];
        let trimmed = after_key.trim_start();
        let at_word_start = before.is_empty() || before.ends_with(char::is_whitespace);
        if at_word_start && trimmed.starts_with('=') {
            let value = trimmed[1..].trim_start();
            let consumed = if let Some(q) = value.strip_prefix('\'') {
                // Up to the closing quote that is not escaped.
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
                1 + end.min(q.len())
            } else {
                value.find(char::is_whitespace).unwrap_or(value.len())
            };
            out.push_str("password=***");
            rest = &value[consumed.min(value.len())..];
        } else {
            out.push_str("password");
            rest = after_key;
        }
    }
    out.push_str(rest);
    out
}

fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// Quotes an identifier for SQL: always double-quoted, embedded `"` doubled. The result names
/// exactly the object called `ident`, whatever characters it contains (Postgres identifiers
/// cannot contain NUL).
pub fn quote_ident(ident: &str) -> String {
    let mut s = String::with_capacity(ident.len() + 2);
    s.push('"');
    for c in ident.chars() {
        if c == '"' {
            s.push('"');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Parses a textual LSN (`16/B374D848`) into its 64-bit position.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    let ok = |p: &str| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok(hi) || !ok(lo) {
        return None;
    }
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    Some((hi << 32) | lo)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redacts_passwords_in_urls_and_pairs() {
        assert_eq!(
            redact("postgres://ann:s3cret@db:5432/prod?sslmode=disable"),
            "postgres://ann:***@db:5432/prod?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql://ann:p@ss@db/prod"),
            "postgresql://ann:***@db/prod"
        );
        assert_eq!(
            redact("postgres://db/prod?user=ann&password=s3cret"),
            "postgres://db/prod?user=ann&password=***"
        );
        assert_eq!(
            redact("host=db user=ann password=s3cret dbname=prod"),
            "host=db user=ann password=*** dbname=prod"
        );
        assert_eq!(
            redact("host=db password = 'a b\\' c' dbname=prod"),
            "host=db password=*** dbname=prod"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert!(!redact("host=x password='unterminated").contains("unterminated"));
    }

    #[test]
    fn config_adds_defaults_and_reports_bad_strings() {
        let c = config("postgres://u@h/db").unwrap();
        assert_eq!(c.get_application_name(), Some("clyra"));
        assert_eq!(c.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
        let c = config("host=h application_name=dbt connect_timeout=3").unwrap();
        assert_eq!(c.get_application_name(), Some("dbt"));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
        let e = config("postgres://u:pw@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid connection string"), "{e}");
        assert_eq!(e.matches("invalid connection string").count(), 1, "{e}");
        assert!(!e.contains("pw@"), "{e}");
    }

    #[test]
    fn bad_strings_get_a_suggestion_without_the_password() {
        let e = config("postgress://ann:hunter2@db/prod")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did you mean `postgres://ann:***@db/prod`?"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = config("postgres://ann:hunter2@db/prod?sslmode=requre")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did you mean `postgres://ann:***@db/prod?sslmode=require`?"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = config("host=db sslmod=disable pasword=hunter2")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did you mean `host=db sslmode=disable password=***`?"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("orders"), "\"orders\"");
        assert_eq!(
            quote_ident("Weird \"name\"; DROP"),
            "\"Weird \"\"name\"\"; DROP\""
        );
    }

    #[test]
    fn parses_lsns() {
        assert_eq!(parse_lsn("0/1947120"), Some(0x1947120));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374D848));
        for bad in ["", "0", "/1", "1/", "x/1", "1/123456789", "1/2/3", "-1/2"] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
    }
}
