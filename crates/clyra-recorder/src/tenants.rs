//! The tenants file: which tenants may write, and the secrets of their keys.
//!
//! ```json
//! {"tenants": {"acme": {"keys": [{"id": "k1", "secret_file": "acme.k1.secret"}]}}}
//! ```
//!
//! Secret files are read as raw bytes (at least 32), relative to the tenants file's directory, and
//! must not be readable by group or others (mode `0600` or stricter), or the recorder refuses to
//! start. Several keys per tenant allow rotation: add the new key, move clients, remove the old.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::Secret;
use crate::Error;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    tenants: BTreeMap<String, TenantEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    keys: Vec<KeyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    secret_file: PathBuf,
}

/// The tenants and their keys' secrets.
#[derive(Debug, Clone, Default)]
pub struct Tenants {
    keys: HashMap<String, HashMap<String, Secret>>,
}

/// Checks a key id: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn valid_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Tenants {
    /// No tenants.
    pub fn new() -> Self {
        Tenants::default()
    }

    /// Adds (or replaces) a key of a tenant.
    pub fn insert(&mut self, tenant: &str, key_id: &str, secret: Secret) -> Result<(), Error> {
        clyra_journal::entry::validate_tenant(tenant)
            .map_err(|_| Error::Config(format!("tenant `{tenant}`: must be 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit")))?;
        if !valid_key_id(key_id) {
            return Err(Error::Config(format!(
                "tenant `{tenant}`: key id `{key_id}` must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'"
            )));
        }
        self.keys
            .entry(tenant.to_string())
            .or_default()
            .insert(key_id.to_string(), secret);
        Ok(())
    }

    /// Reads a tenants file and every secret file it names; reports the first problem.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let file: TenantsFile = serde_json::from_slice(&text)
            .map_err(|e| Error::Config(format!("tenants file `{}`: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut tenants = Tenants::new();
        for (tenant, entry) in &file.tenants {
            if entry.keys.is_empty() {
                return Err(Error::Config(format!(
                    "tenants file `{}`: tenant `{tenant}` has no keys",
                    path.display()
                )));
            }
            for key in &entry.keys {
                let secret_path = base.join(&key.secret_file);
                let secret = read_secret(&secret_path)?;
                tenants.insert(tenant, &key.id, secret)?;
            }
        }
        Ok(tenants)
    }

    /// The secret of `tenant`'s key `key_id`, if both exist.
    pub fn secret(&self, tenant: &str, key_id: &str) -> Option<&Secret> {
        self.keys.get(tenant).and_then(|k| k.get(key_id))
    }

    /// The tenant names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// Reads a secret file: at least 32 bytes, not readable by group or others.
pub fn read_secret(path: &Path) -> Result<Secret, Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "secret file `{}` has mode {mode:04o}; it must not be readable by group or others (chmod 600)",
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let bytes = std::fs::read(path).map_err(io)?;
    Secret::new(bytes).map_err(|e| Error::Config(format!("secret file `{}`: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn loads_and_checks_modes() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("acme.k1.secret");
        std::fs::write(&secret, [7u8; 32]).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = dir.path().join("tenants.json");
        std::fs::write(
            &file,
            r#"{"tenants": {"acme": {"keys": [{"id": "k1", "secret_file": "acme.k1.secret"}]}}}"#,
        )
        .unwrap();
        let t = Tenants::load(&file).unwrap();
        assert_eq!(t.secret("acme", "k1").unwrap().as_bytes(), &[7u8; 32]);
        assert!(t.secret("acme", "k2").is_none());
        assert_eq!(t.names(), vec!["acme"]);

        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Tenants::load(&file).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");

        std::fs::write(&secret, [7u8; 31]).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Tenants::load(&file).is_err());

        std::fs::write(&file, r#"{"tenants": {}, "extra": 1}"#).unwrap();
        assert!(Tenants::load(&file).is_err());
    }
}
