//! The local Postgres the tests use (`CLYRA_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Each test works in schemas of its own, with unique
//! names, dropped afterwards. Tests fail, loudly, when the server is down.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

pub fn pg_url() -> String {
    std::env::var("CLYRA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn client() -> postgres::Client {
    let url = pg_url();
    postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "these tests need Postgres at {url} (set CLYRA_TEST_POSTGRES_URL to change it; \
             `scripts/services.sh` starts the local one): {e}"
        )
    })
}

/// A unique lowercase name with `prefix`.
pub fn unique(prefix: &str) -> String {
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

/// Schemas created for one test and dropped (CASCADE) when it ends, pass or fail.
pub struct Schemas {
    pub names: Vec<String>,
}

impl Schemas {
    pub fn new(prefix: &str, n: usize) -> Self {
        let names: Vec<String> = (0..n).map(|_| unique(prefix)).collect();
        let mut c = client();
        for s in &names {
            c.batch_execute(&format!("CREATE SCHEMA {s}")).unwrap();
        }
        Schemas { names }
    }

    pub fn one(prefix: &str) -> Self {
        Self::new(prefix, 1)
    }

    pub fn name(&self) -> &str {
        &self.names[0]
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            for s in &self.names {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
            }
        }
    }
}

/// Creates `n` small tables `t1..tn` in `schema`, a few hundred per transaction (one DO block
/// each) so as not to exhaust the server's shared lock table.
pub fn create_tables(c: &mut postgres::Client, schema: &str, n: usize) {
    let mut start = 1;
    while start <= n {
        let end = (start + 249).min(n);
        c.batch_execute(&format!(
            "DO $$ BEGIN FOR i IN {start}..{end} LOOP
               EXECUTE format('CREATE TABLE %I.%I (id int NOT NULL, name varchar(20), amount int)', '{schema}', 't' || i);
             END LOOP; END $$"
        ))
        .unwrap();
        start = end + 1;
    }
}

/// Options restricted to the given schemas.
pub fn options(schemas: &[String]) -> clyra_warehouse::snapshot::Options {
    clyra_warehouse::snapshot::Options {
        schemas: schemas.to_vec(),
        ..Default::default()
    }
}
