//! Test backends: a SQLite store in a temporary directory, or a Postgres store in a fresh schema
//! of the local server (dropped afterwards). Postgres tests fail, loudly, when the server is down.

#![allow(dead_code)]

/// Turns each `fn name(b: Backend)` into two tests, `sqlite::name` and `postgres::name`: the
/// same suite for both stores.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Backend::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Backend::postgres()) } )*
        }
    };
}

use std::path::PathBuf;

use clyra_journal::store::Store;
use clyra_journal::{postgres::PostgresStore, sqlite::SqliteStore};

/// The local Postgres the tests use; `CLYRA_TEST_POSTGRES_URL` overrides it.
pub fn postgres_url() -> String {
    std::env::var("CLYRA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One backend under test, able to open more connections to the same journal and to tamper
/// with it behind the journal's back.
pub enum Backend {
    Sqlite { dir: tempfile::TempDir },
    Postgres { schema: String },
}

impl Backend {
    pub fn sqlite() -> Self {
        Backend::Sqlite {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn postgres() -> Self {
        let url = postgres_url();
        if let Err(e) = postgres::Client::connect(&url, postgres::NoTls) {
            panic!(
                "these tests need Postgres at {url} (set CLYRA_TEST_POSTGRES_URL to change it; `scripts/services.sh` starts the local one): {e}"
            );
        }
        Backend::Postgres {
            schema: unique("jt"),
        }
    }

    /// The store URL, as `clyra_journal::open` and the CLI take it.
    pub fn url(&self) -> String {
        match self {
            Backend::Sqlite { dir } => format!("sqlite:{}", dir.path().display()),
            Backend::Postgres { schema } => format!("{}?schema={schema}", postgres_url()),
        }
    }

    pub fn sqlite_dir(&self) -> Option<PathBuf> {
        match self {
            Backend::Sqlite { dir } => Some(dir.path().to_path_buf()),
            Backend::Postgres { .. } => None,
        }
    }

    pub fn open(&self) -> Box<dyn Store> {
        match self {
            Backend::Sqlite { dir } => Box::new(SqliteStore::open(dir.path()).unwrap()),
            Backend::Postgres { schema } => {
                Box::new(PostgresStore::connect(&postgres_url(), schema).unwrap())
            }
        }
    }

    /// Runs raw SQL against the journal's tables (`{e}` stands for the entries table).
    pub fn exec(&self, sql: &str) {
        match self {
            Backend::Sqlite { dir } => {
                let c = rusqlite::Connection::open(dir.path().join(clyra_journal::sqlite::DB_FILE))
                    .unwrap();
                c.execute_batch(&sql.replace("{s}.", "")).unwrap();
            }
            Backend::Postgres { schema } => {
                let mut c = postgres::Client::connect(&postgres_url(), postgres::NoTls).unwrap();
                c.batch_execute(&sql.replace("{s}", schema)).unwrap();
            }
        }
    }

    /// Replaces the stored bytes of entry `seq` (leaving its hash columns alone).
    pub fn set_entry_bytes(&self, tenant: &str, seq: u64, bytes: &[u8]) {
        let lit = self.blob(bytes);
        self.exec(&format!("UPDATE {{s}}.clyra_entries SET entry = {lit} WHERE tenant = '{tenant}' AND seq = {seq}"));
    }

    /// A bytes literal in the backend's SQL.
    fn blob(&self, bytes: &[u8]) -> String {
        match self {
            Backend::Sqlite { .. } => format!("X'{}'", hex::encode(bytes)),
            Backend::Postgres { .. } => format!("'\\x{}'::bytea", hex::encode(bytes)),
        }
    }

    /// Replaces entry `seq` with `bytes` the way an attacker with write access would: the entry,
    /// its hash and leaf columns, and (with `move_head`) the tenant's chain head, all consistent.
    pub fn rewrite_entry(&self, tenant: &str, seq: u64, bytes: &[u8], move_head: bool) {
        let d = clyra_evidence::Digest::sha256(bytes);
        let l = clyra_evidence::merkle::leaf_hash(bytes);
        let (e, h, lf) = (
            self.blob(bytes),
            self.blob(d.as_bytes()),
            self.blob(l.as_bytes()),
        );
        let mut sql = format!(
            "UPDATE {{s}}.clyra_entries SET entry = {e}, hash = {h}, leaf = {lf} WHERE tenant = '{tenant}' AND seq = {seq};"
        );
        if move_head {
            sql.push_str(&format!(
                " UPDATE {{s}}.clyra_heads SET head = {h} WHERE tenant = '{tenant}';"
            ));
        }
        self.exec(&sql);
    }

    /// Reads the stored bytes of entry `seq`.
    pub fn entry_bytes(&self, tenant: &str, seq: u64) -> Vec<u8> {
        let mut out = None;
        self.open()
            .scan(tenant, seq, seq + 1, &mut |e| {
                out = Some(e.canonical);
                Ok(())
            })
            .unwrap();
        out.unwrap()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Postgres { schema } = self {
            if let Ok(mut c) = postgres::Client::connect(&postgres_url(), postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}
