//! Clyra's journal: the append-only, hash-chained record of what automated work did.
//!
//! Each tenant has one chain. An entry's `seq` is its position in the chain and its leaf index in
//! the tenant's RFC 9162 Merkle tree; `prev` is the SHA-256 of the previous entry's canonical bytes.
//! Entries of a run are also linked within the run (`run_seq`, `run_prev`), so a bundle for one run
//! proves the run is complete without carrying the rest of the tenant's journal.
//!
//! - [`entry`]: events, body policies (hash-only by default), sealing.
//! - [`store`]: the [`Store`] trait; [`sqlite`] (embedded default) and [`postgres`] backends.
//! - [`verify`]: walk a journal and report the first broken link.
//!
//! The journal knows nothing about policies or HTTP (see `ARCHITECTURE.md`).

pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod postgres;
pub mod proof;
pub mod sqlite;
pub mod store;
pub mod verify;

pub use entry::{BodyPolicy, ChainHead, NewEvent};
pub use store::{Receipt, Store, StoreError};

/// Opens a store from its URL: `sqlite:DIR` (or a bare directory path) for the embedded store,
/// `postgres://…` for Postgres. A Postgres URL may end in `?schema=NAME` (default `clyra`); that
/// parameter is Clyra's and is removed before connecting.
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (conn, schema) = split_schema(url);
        return Ok(Box::new(postgres::PostgresStore::connect(&conn, &schema)?));
    }
    let dir = url.strip_prefix("sqlite:").unwrap_or(url);
    if dir.is_empty() || dir.contains("://") {
        return Err(StoreError::Config(format!(
            "store `{url}`: expected sqlite:DIR or postgres://USER@HOST:PORT/DB[?schema=NAME]"
        )));
    }
    Ok(Box::new(sqlite::SqliteStore::open(std::path::Path::new(
        dir,
    ))?))
}

/// Splits a Postgres store URL into the connection string Postgres sees and Clyra's `schema`
/// parameter (default [`postgres::DEFAULT_SCHEMA`]), as [`open`] does.
pub fn split_schema(url: &str) -> (String, String) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), postgres::DEFAULT_SCHEMA.to_string());
    };
    let mut schema = postgres::DEFAULT_SCHEMA.to_string();
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(s) => {
                schema = s.to_string();
                false
            }
            None => true,
        })
        .collect();
    if rest.is_empty() {
        (base.to_string(), schema)
    } else {
        (format!("{base}?{}", rest.join("&")), schema)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_parameter_is_ours() {
        assert_eq!(
            super::split_schema("postgres://u@h/db?schema=x&sslmode=disable"),
            (
                "postgres://u@h/db?sslmode=disable".to_string(),
                "x".to_string()
            )
        );
        assert_eq!(
            super::split_schema("postgres://u@h/db"),
            ("postgres://u@h/db".to_string(), "clyra".to_string())
        );
    }
}
