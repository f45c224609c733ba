//! Tenant fences: refuse a request whose payload names another tenant's resources.
//!
//! The request's tenant comes from a verified header or credential (the caller's job); this module
//! only looks at the payload. Each [`FenceRule`] names an RFC 6901 JSON pointer and how to read a
//! tenant from the value found there ([`TenantRead`]):
//!
//! - `exact`: the value is a tenant id (`"acme"`);
//! - `prefix`: the tenant id is the part before the first separator (`"acme:orders"`,
//!   `"acme/exports/x.csv"`; separators `:` and `/` by default);
//! - `dsn`: the value is a database connection string; its namespace hash (SHA-256 of the
//!   normalized DSN, see [`normalize_dsn`]) is looked up in [`TenantFenceConfig::dsn_namespaces`].
//!
//! Outcomes per value:
//!
//! | value | outcome |
//! |-------|---------|
//! | pointer names nothing, or `null` | rule does not apply |
//! | names the request's tenant | allowed |
//! | names another known tenant | refused, `tenant.cross_tenant` (the finding names the owner) |
//! | names no known tenant | refused with `tenant.unknown` when the rule has `require_known`, else allowed |
//! | not a string (or an array of strings) | refused, `tenant.not_text` (fail closed) |
//!
//! Tenant ids compare exactly (case-sensitive): `ACME:orders` does not name `acme`, so it is
//! refused as unknown under `require_known`. An array of strings has each element checked, under the pointer `<pointer>/<index>`. Known
//! tenants are the request's tenant, [`TenantFenceConfig::tenants`], and the owners in
//! `dsn_namespaces`.
//!
//! Findings never echo a DSN: they name the pointer, the owning tenant and, for an unregistered DSN,
//! its namespace hash (computed without the password), which is what an operator registers.
//!
//! # DSN normalization
//!
//! Two spellings of one database must hash alike, and the hash must not depend on secrets.
//! [`normalize_dsn`] accepts URL form (`scheme://user:password@host:port/db?params`) and libpq
//! keyword form (`host=h port=5432 dbname=db user=u password=p`) and produces
//! `scheme://user@host:port/db`:
//! - the scheme is lowercased, and `postgresql` becomes `postgres` (keyword form is `postgres`);
//! - the password is removed (from the userinfo and from keyword form), the user name is kept as
//!   written;
//! - the host is lowercased; the port is kept, except the default port of the scheme (`5432` for
//!   postgres, `3306` for mysql), which is dropped;
//! - the database path is kept as written, without a trailing `/`;
//! - query parameters and fragment are dropped (they may carry secrets and do not change which
//!   database is reached); keyword form keeps only `host`, `port`, `dbname` and `user`;
//! - no percent-decoding is done.
//!
//! A spelling that normalizes differently from the registered one (percent-encoding, another
//! alias of the host) hashes to nothing registered: set `require_known` on DSN rules so that such
//! values are refused rather than let through.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sql_guard::is_valid_pointer;

/// How a rule reads a tenant out of the value at its pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TenantRead {
    /// The value is a tenant id.
    Exact,
    /// The tenant id is the text before the first of `separators` (default `:` and `/`).
    Prefix {
        /// Characters that end the tenant id.
        #[serde(default = "default_separators")]
        separators: Vec<char>,
    },
    /// The value is a DSN whose namespace hash is registered to a tenant.
    Dsn,
}

fn default_separators() -> Vec<char> {
    vec![':', '/']
}

/// One fenced location in the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FenceRule {
    /// RFC 6901 JSON pointer to the value.
    pub pointer: String,
    /// How to read the tenant from it.
    pub read: TenantRead,
    /// Refuse values that name no known tenant.
    #[serde(default)]
    pub require_known: bool,
}

/// Policy settings for the tenant fence of one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFenceConfig {
    /// The fenced locations.
    #[serde(default)]
    pub rules: Vec<FenceRule>,
    /// Tenant ids known to the gateway (for `exact` and `prefix` rules).
    #[serde(default)]
    pub tenants: BTreeSet<String>,
    /// Lowercase hex SHA-256 of a normalized DSN (see [`dsn_namespace_hash`]) to its tenant.
    #[serde(default)]
    pub dsn_namespaces: BTreeMap<String, String>,
}

/// A configuration problem found by [`TenantFenceConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantFenceConfigError {
    /// A rule's pointer is not an RFC 6901 JSON pointer.
    #[error("tenant fence rule {index}: `{pointer}` is not a JSON pointer")]
    InvalidPointer {
        /// Index of the rule.
        index: usize,
        /// The pointer as configured.
        pointer: String,
    },
    /// A `dsn_namespaces` key is not 64 lowercase hex digits.
    #[error("tenant fence dsn_namespaces: `{0}` is not a lowercase hex SHA-256")]
    InvalidHash(String),
    /// A prefix rule without separators.
    #[error("tenant fence rule {0}: prefix rule has no separators")]
    NoSeparators(usize),
}

impl TenantFenceConfig {
    /// Checks the configuration, reporting every problem at once.
    pub fn validate(&self) -> Result<(), Vec<TenantFenceConfigError>> {
        let mut errors = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if !is_valid_pointer(&rule.pointer) {
                errors.push(TenantFenceConfigError::InvalidPointer {
                    index,
                    pointer: rule.pointer.clone(),
                });
            }
            if let TenantRead::Prefix { separators } = &rule.read {
                if separators.is_empty() {
                    errors.push(TenantFenceConfigError::NoSeparators(index));
                }
            }
        }
        for hash in self.dsn_namespaces.keys() {
            let ok = hash.len() == 64
                && hash
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            if !ok {
                errors.push(TenantFenceConfigError::InvalidHash(hash.clone()));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn is_known(&self, tenant: &str) -> bool {
        self.tenants.contains(tenant) || self.dsn_namespaces.values().any(|t| t == tenant)
    }
}

/// One reason to refuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceFinding {
    /// Stable reason code: `tenant.cross_tenant`, `tenant.unknown` or `tenant.not_text`.
    pub code: String,
    /// Human-readable explanation (never contains a DSN).
    pub message: String,
    /// JSON pointer of the offending value.
    pub pointer: String,
    /// The tenant that owns the named resource, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The fence's verdict on a payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceDecision {
    /// Findings that refuse the request; empty means allowed.
    pub findings: Vec<FenceFinding>,
}

impl FenceDecision {
    /// Whether the request may go through.
    pub fn allowed(&self) -> bool {
        self.findings.is_empty()
    }

    /// The reason codes of the findings.
    pub fn codes(&self) -> Vec<&str> {
        self.findings.iter().map(|f| f.code.as_str()).collect()
    }
}

/// Checks `payload` for resources of tenants other than `tenant` (the verified request tenant).
pub fn check(
    tenant: &str,
    payload: &serde_json::Value,
    config: &TenantFenceConfig,
) -> FenceDecision {
    let mut decision = FenceDecision::default();
    for rule in &config.rules {
        match payload.pointer(&rule.pointer) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let pointer = format!("{}/{i}", rule.pointer);
                    check_value(tenant, item, &pointer, rule, config, &mut decision);
                }
            }
            Some(value) => check_value(tenant, value, &rule.pointer, rule, config, &mut decision),
        }
    }
    decision
}

fn check_value(
    tenant: &str,
    value: &serde_json::Value,
    pointer: &str,
    rule: &FenceRule,
    config: &TenantFenceConfig,
    decision: &mut FenceDecision,
) {
    let text = match value {
        serde_json::Value::Null => return,
        serde_json::Value::String(s) => s.as_str(),
        _ => {
            decision.findings.push(FenceFinding {
                code: "tenant.not_text".to_owned(),
                message: format!("the value at `{pointer}` is fenced but is not a string"),
                pointer: pointer.to_owned(),
                owner: None,
            });
            return;
        }
    };
    let (named, what): (Option<String>, String) = match &rule.read {
        TenantRead::Exact => (Some(text.to_owned()), format!("tenant `{text}`")),
        TenantRead::Prefix { separators } => match text.find(|c| separators.contains(&c)) {
            Some(0) | None => (None, "a resource without a tenant prefix".to_owned()),
            Some(i) => {
                let t = text.get(..i).unwrap_or_default();
                (Some(t.to_owned()), format!("tenant prefix `{t}`"))
            }
        },
        TenantRead::Dsn => match dsn_namespace_hash(text) {
            None => (None, "a DSN that could not be parsed".to_owned()),
            Some(hash) => match config.dsn_namespaces.get(&hash) {
                Some(owner) => (Some(owner.clone()), "a DSN".to_owned()),
                None => (
                    None,
                    format!("a DSN whose namespace `{hash}` is registered to no tenant"),
                ),
            },
        },
    };
    match named {
        Some(owner) if owner == tenant => {}
        Some(owner) if config.is_known(&owner) => decision.findings.push(FenceFinding {
            code: "tenant.cross_tenant".to_owned(),
            message: format!(
                "the value at `{pointer}` names {what} owned by tenant `{owner}`, not the request's tenant `{tenant}`"
            ),
            pointer: pointer.to_owned(),
            owner: Some(owner),
        }),
        _ if rule.require_known => decision.findings.push(FenceFinding {
            code: "tenant.unknown".to_owned(),
            message: format!("the value at `{pointer}` names {what}, which is no known tenant's"),
            pointer: pointer.to_owned(),
            owner: None,
        }),
        _ => {}
    }
}

/// The namespace hash of a DSN: lowercase hex SHA-256 of [`normalize_dsn`]'s output.
pub fn dsn_namespace_hash(dsn: &str) -> Option<String> {
    normalize_dsn(dsn).map(|n| hex::encode(Sha256::digest(n.as_bytes())))
}

/// Normalizes a DSN as described in the module documentation; `None` when it is not a DSN.
pub fn normalize_dsn(dsn: &str) -> Option<String> {
    let dsn = dsn.trim();
    if dsn.is_empty() {
        return None;
    }
    if let Some((scheme, rest)) = dsn.split_once("://") {
        normalize_url(scheme, rest)
    } else {
        normalize_keywords(dsn)
    }
}

fn canonical_scheme(scheme: &str) -> Option<String> {
    let s = scheme.to_ascii_lowercase();
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    Some(if s == "postgresql" {
        "postgres".to_owned()
    } else {
        s
    })
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        "postgres" => Some("5432"),
        "mysql" => Some("3306"),
        _ => None,
    }
}

fn assemble(scheme: &str, user: Option<&str>, host: &str, port: Option<&str>, db: &str) -> String {
    let mut out = format!("{scheme}://");
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        out.push_str(u);
        out.push('@');
    }
    out.push_str(&host.to_ascii_lowercase());
    if let Some(p) = port.filter(|p| !p.is_empty() && Some(*p) != default_port(scheme)) {
        out.push(':');
        out.push_str(p);
    }
    let db = db.trim_end_matches('/');
    if !db.is_empty() {
        out.push('/');
        out.push_str(db);
    }
    out
}

fn normalize_url(scheme: &str, rest: &str) -> Option<String> {
    let scheme = canonical_scheme(scheme)?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i + 1..)?),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(authority.get(..i)?), authority.get(i + 1..)?),
        None => (None, authority),
    };
    let user = userinfo.map(|u| u.split(':').next().unwrap_or_default());
    let (host, port) = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => {
                let host = hostport.get(..=i)?;
                let port = hostport.get(i + 1..)?.strip_prefix(':');
                (host, port)
            }
            None => return None,
        }
    } else if hostport.contains(',') {
        // Multi-host lists (`h1:5432,h2:5432`) are kept whole, lowercased.
        (hostport, None)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() && path.is_empty() {
        return None;
    }
    Some(assemble(&scheme, user, host, port, path))
}

/// libpq keyword form: `key=value` pairs separated by whitespace; values may be single-quoted
/// with `\'` and `\\` escapes.
fn normalize_keywords(dsn: &str) -> Option<String> {
    let mut pairs: BTreeMap<String, String> = BTreeMap::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?),
                    '\'' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.insert(key.to_ascii_lowercase(), value);
    }
    let host = pairs.get("host").map(String::as_str).unwrap_or_default();
    let db = pairs.get("dbname").map(String::as_str).unwrap_or_default();
    if host.is_empty() && db.is_empty() {
        return None;
    }
    Some(assemble(
        "postgres",
        pairs.get("user").map(String::as_str),
        host,
        pairs.get("port").map(String::as_str),
        db,
    ))
}
