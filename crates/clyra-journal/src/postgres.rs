//! The shared store: Postgres, for several recorder instances against one database.
//!
//! Tables live in one schema (`clyra` unless told otherwise). Appends lock the tenant's head row
//! with `SELECT … FOR UPDATE`, so concurrent writers on any number of machines serialize per tenant
//! and never fork a chain; different tenants append in parallel.

use std::collections::HashMap;

use clyra_evidence::digest::Digest;
use jiff::Timestamp;
use postgres::{Client, NoTls, Statement};

use crate::entry::{BodyPolicy, ChainHead, NewEvent, RunHead, SealedEntry};
use crate::store::{
    append_in_tx, digest_from_slice, i64_from_u64, ts_from_ms, u64_from_i64, IdHit, Leaves,
    Receipt, Store, StoreError, StoredCheckpoint, StoredEntry, Tx,
};

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "clyra";

const SCHEMA_VERSION: &str = "1";

/// A journal in a Postgres schema.
pub struct PostgresStore {
    client: Client,
    schema: String,
    redacted_url: String,
    stmts: Stmts,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.redacted_url)
            .field("schema", &self.schema)
            .finish()
    }
}

struct Stmts {
    ensure_head: Statement,
    lock_head: Statement,
    run_heads: Statement,
    find_ids: Statement,
    insert_many: Statement,
    put_head: Statement,
    put_run_heads: Statement,
}

/// Checks a schema name: 1 to 63 characters of `[a-z0-9_]`, starting with a letter or `_`.
fn validate_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "schema `{schema}` must be 1-63 characters of a-z, 0-9 and _, not starting with a digit"
        )))
    }
}

/// Removes a password from a URL for messages.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

impl PostgresStore {
    /// Streams the entries selected by `filter` (a `WHERE` clause over `clyra_entries`) in `seq`
    /// order through a portal, in batches, so that memory stays flat on long journals.
    fn stream_entries(
        &mut self,
        filter: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        f: &mut dyn FnMut(StoredEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let s = &self.schema;
        let sql =
            format!("SELECT seq, entry, hash, leaf FROM {s}.clyra_entries {filter} ORDER BY seq");
        let mut tx = self.client.transaction()?;
        let stmt = tx.prepare(&sql)?;
        let portal = tx.bind(&stmt, params)?;
        loop {
            let rows = tx.query_portal(&portal, 4096)?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                f(StoredEntry {
                    seq: u64_from_i64(r.get(0), "seq")?,
                    canonical: r.get(1),
                    hash: r.get(2),
                    leaf: r.get(3),
                })?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Connects to `url` (a libpq-style `postgres://` URL) and uses `schema`, creating its tables
    /// if needed.
    pub fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        validate_schema(schema)?;
        let redacted_url = redact_url(url);
        let mut client = Client::connect(url, NoTls).map_err(|e| {
            StoreError::Config(format!("cannot connect to Postgres at {redacted_url}: {e}"))
        })?;
        let s = schema;
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.clyra_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {s}.clyra_heads (
                 tenant TEXT PRIMARY KEY, size BIGINT NOT NULL, head BYTEA NOT NULL, recorded_ms BIGINT);
             CREATE TABLE IF NOT EXISTS {s}.clyra_run_heads (
                 tenant TEXT NOT NULL, run TEXT NOT NULL, size BIGINT NOT NULL, head BYTEA NOT NULL,
                 PRIMARY KEY (tenant, run));
             CREATE TABLE IF NOT EXISTS {s}.clyra_entries (
                 tenant TEXT NOT NULL, seq BIGINT NOT NULL, run TEXT, run_seq BIGINT, event_id TEXT,
                 recorded_ms BIGINT NOT NULL, entry BYTEA NOT NULL, hash BYTEA NOT NULL, leaf BYTEA NOT NULL,
                 PRIMARY KEY (tenant, seq));
             CREATE UNIQUE INDEX IF NOT EXISTS clyra_entries_run ON {s}.clyra_entries (tenant, run, run_seq) WHERE run IS NOT NULL;
             CREATE UNIQUE INDEX IF NOT EXISTS clyra_entries_id ON {s}.clyra_entries (tenant, event_id) WHERE event_id IS NOT NULL;
             CREATE INDEX IF NOT EXISTS clyra_entries_time ON {s}.clyra_entries (tenant, recorded_ms);
             CREATE TABLE IF NOT EXISTS {s}.clyra_checkpoints (
                 tenant TEXT NOT NULL, size BIGINT NOT NULL, root BYTEA NOT NULL, note TEXT NOT NULL,
                 PRIMARY KEY (tenant, size));
             INSERT INTO {s}.clyra_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING;"
        );
        client.batch_execute(&ddl).or_else(|e| {
            // Two processes creating the schema at once can race on the catalog ("duplicate key
            // value violates unique constraint pg_type..."); the loser tries once more, when the
            // objects exist. Any other failure is reported as it is.
            if e.code().is_some() {
                client.batch_execute(&ddl)
            } else {
                Err(e)
            }
        })?;
        let version: String = client
            .query_one(
                &format!("SELECT value FROM {s}.clyra_meta WHERE key = 'schema_version'"),
                &[],
            )?
            .get(0);
        if version != SCHEMA_VERSION {
            return Err(StoreError::Config(format!(
                "{redacted_url} schema {s}: journal schema version {version}, this build reads {SCHEMA_VERSION}"
            )));
        }
        let stmts = Stmts {
            ensure_head: client.prepare(&format!(
                "INSERT INTO {s}.clyra_heads (tenant, size, head, recorded_ms) VALUES ($1, 0, $2, NULL) ON CONFLICT DO NOTHING"
            ))?,
            lock_head: client.prepare(&format!(
                "SELECT size, head, recorded_ms FROM {s}.clyra_heads WHERE tenant = $1 FOR UPDATE"
            ))?,
            run_heads: client.prepare(&format!(
                "SELECT run, size, head FROM {s}.clyra_run_heads WHERE tenant = $1 AND run = ANY($2::text[])"
            ))?,
            find_ids: client.prepare(&format!(
                "SELECT event_id, seq, hash, run_seq FROM {s}.clyra_entries
                 WHERE tenant = $1 AND event_id = ANY($2::text[])"
            ))?,
            insert_many: client.prepare(&format!(
                "INSERT INTO {s}.clyra_entries (tenant, seq, run, run_seq, event_id, recorded_ms, entry, hash, leaf)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[],
                                      $6::bigint[], $7::bytea[], $8::bytea[], $9::bytea[])"
            ))?,
            put_head: client.prepare(&format!(
                "UPDATE {s}.clyra_heads SET size = $2, head = $3, recorded_ms = $4 WHERE tenant = $1"
            ))?,
            put_run_heads: client.prepare(&format!(
                "INSERT INTO {s}.clyra_run_heads (tenant, run, size, head)
                 SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::bytea[])
                 ON CONFLICT (tenant, run) DO UPDATE SET size = excluded.size, head = excluded.head"
            ))?,
        };
        Ok(PostgresStore {
            client,
            schema: schema.to_string(),
            redacted_url,
            stmts,
        })
    }

    /// The schema in use.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The raw client, for tests that tamper with rows on purpose.
    #[doc(hidden)]
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

struct PgTx<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    stmts: &'a Stmts,
}

impl Tx for PgTx<'_, '_> {
    fn lock_head(&mut self, tenant: &str) -> Result<ChainHead, StoreError> {
        self.tx.execute(
            &self.stmts.ensure_head,
            &[&tenant, &Digest::ZERO.as_bytes().as_slice()],
        )?;
        let row = self.tx.query_one(&self.stmts.lock_head, &[&tenant])?;
        let size: i64 = row.get(0);
        let head: Vec<u8> = row.get(1);
        let ms: Option<i64> = row.get(2);
        Ok(ChainHead {
            size: u64_from_i64(size, "head size")?,
            head: digest_from_slice(&head, "head")?,
            recorded_at: ms.map(ts_from_ms).transpose()?,
        })
    }

    fn run_heads(
        &mut self,
        tenant: &str,
        runs: &[&str],
    ) -> Result<HashMap<String, RunHead>, StoreError> {
        let rows = self.tx.query(&self.stmts.run_heads, &[&tenant, &runs])?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get::<_, String>(0),
                    RunHead {
                        size: u64_from_i64(r.get(1), "run size")?,
                        head: digest_from_slice(&r.get::<_, Vec<u8>>(2), "run head")?,
                    },
                ))
            })
            .collect()
    }

    fn find_ids(
        &mut self,
        tenant: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, IdHit>, StoreError> {
        let rows = self.tx.query(&self.stmts.find_ids, &[&tenant, &ids])?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get::<_, String>(0),
                    (
                        u64_from_i64(r.get(1), "seq")?,
                        digest_from_slice(&r.get::<_, Vec<u8>>(2), "hash")?,
                        r.get::<_, Option<i64>>(3)
                            .map(|v| u64_from_i64(v, "run_seq"))
                            .transpose()?,
                    ),
                ))
            })
            .collect()
    }

    fn insert_many(&mut self, entries: &[SealedEntry]) -> Result<(), StoreError> {
        // One statement for the whole batch: column arrays, unnested by the server.
        let n = entries.len();
        let (
            mut tenants,
            mut seqs,
            mut runs,
            mut run_seqs,
            mut ids,
            mut ms,
            mut bytes,
            mut hashes,
            mut leaves,
        ) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in entries {
            tenants.push(e.tenant.as_str());
            seqs.push(i64_from_u64(e.seq)?);
            runs.push(e.run.as_ref().map(|r| r.0.as_str()));
            run_seqs.push(e.run.as_ref().map(|r| i64_from_u64(r.1)).transpose()?);
            ids.push(e.id.as_deref());
            ms.push(e.recorded_at.as_millisecond());
            bytes.push(e.canonical.as_slice());
            hashes.push(e.hash.as_bytes().as_slice());
            leaves.push(e.leaf.as_bytes().as_slice());
        }
        self.tx.execute(
            &self.stmts.insert_many,
            &[
                &tenants, &seqs, &runs, &run_seqs, &ids, &ms, &bytes, &hashes, &leaves,
            ],
        )?;
        Ok(())
    }

    fn put_head(&mut self, tenant: &str, head: &ChainHead) -> Result<(), StoreError> {
        let size = i64_from_u64(head.size)?;
        let ms = head.recorded_at.map(|t| t.as_millisecond());
        self.tx.execute(
            &self.stmts.put_head,
            &[&tenant, &size, &head.head.as_bytes().as_slice(), &ms],
        )?;
        Ok(())
    }

    fn put_run_heads(&mut self, tenant: &str, heads: &[(&str, RunHead)]) -> Result<(), StoreError> {
        let runs: Vec<&str> = heads.iter().map(|(r, _)| *r).collect();
        let sizes = heads
            .iter()
            .map(|(_, h)| i64_from_u64(h.size))
            .collect::<Result<Vec<_>, _>>()?;
        let digests: Vec<&[u8]> = heads
            .iter()
            .map(|(_, h)| h.head.as_bytes().as_slice())
            .collect();
        self.tx.execute(
            &self.stmts.put_run_heads,
            &[&tenant, &runs, &sizes, &digests],
        )?;
        Ok(())
    }
}

impl Store for PostgresStore {
    fn describe(&self) -> String {
        format!("{} (schema {})", self.redacted_url, self.schema)
    }

    fn append(
        &mut self,
        events: &[NewEvent],
        policy: &BodyPolicy,
    ) -> Result<Vec<Receipt>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.client.transaction()?;
        let receipts = append_in_tx(
            &mut PgTx {
                tx: &mut tx,
                stmts: &self.stmts,
            },
            events,
            policy,
            Timestamp::now(),
        )?;
        tx.commit()?;
        Ok(receipts)
    }

    fn head(&mut self, tenant: &str) -> Result<ChainHead, StoreError> {
        let s = &self.schema;
        let row = self.client.query_opt(
            &format!("SELECT size, head, recorded_ms FROM {s}.clyra_heads WHERE tenant = $1"),
            &[&tenant],
        )?;
        match row {
            None => Ok(ChainHead::EMPTY),
            Some(r) => Ok(ChainHead {
                size: u64_from_i64(r.get(0), "head size")?,
                head: digest_from_slice(&r.get::<_, Vec<u8>>(1), "head")?,
                recorded_at: r.get::<_, Option<i64>>(2).map(ts_from_ms).transpose()?,
            }),
        }
    }

    fn tenants(&mut self) -> Result<Vec<String>, StoreError> {
        let s = &self.schema;
        let rows = self.client.query(
            &format!("SELECT tenant FROM {s}.clyra_heads WHERE size > 0 ORDER BY tenant"),
            &[],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn scan(
        &mut self,
        tenant: &str,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let to = i64::try_from(to).unwrap_or(i64::MAX);
        let from = i64_from_u64(from)?;
        self.stream_entries(
            "WHERE tenant = $1 AND seq >= $2 AND seq < $3",
            &[&tenant, &from, &to],
            f,
        )
    }

    fn leaves(&mut self, tenant: &str, size: u64) -> Result<Vec<Digest>, StoreError> {
        let mut leaves = Leaves::new(tenant, size);
        self.scan(tenant, 0, size, &mut |e| leaves.push(e.seq, &e.leaf))?;
        leaves.finish()
    }

    fn run_seqs(&mut self, tenant: &str, run: &str) -> Result<Vec<u64>, StoreError> {
        let s = &self.schema;
        let rows = self.client.query(
            &format!(
                "SELECT seq FROM {s}.clyra_entries WHERE tenant = $1 AND run = $2 ORDER BY run_seq"
            ),
            &[&tenant, &run],
        )?;
        rows.iter().map(|r| u64_from_i64(r.get(0), "seq")).collect()
    }

    fn scan_run(
        &mut self,
        tenant: &str,
        run: &str,
        f: &mut dyn FnMut(StoredEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // In batches, like `scan`: a run can be long.
        self.stream_entries("WHERE tenant = $1 AND run = $2", &[&tenant, &run], f)
    }

    fn runs(&mut self, tenant: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let s = &self.schema;
        // starts_with compares code points whatever the database collation is; sorting happens
        // here, by bytes, for the same reason.
        let rows = self.client.query(
            &format!(
                "SELECT run FROM {s}.clyra_run_heads WHERE tenant = $1 AND starts_with(run, $2)"
            ),
            &[&tenant, &prefix],
        )?;
        let mut out: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        out.sort_unstable();
        Ok(out)
    }

    fn seq_range(
        &mut self,
        tenant: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let s = &self.schema;
        let row = self.client.query_one(
            &format!(
                "SELECT MIN(seq), MAX(seq) FROM {s}.clyra_entries WHERE tenant = $1 AND recorded_ms >= $2 AND recorded_ms < $3"
            ),
            &[&tenant, &from.as_millisecond(), &to.as_millisecond()],
        )?;
        match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
            (Some(a), Some(b)) => Ok(Some((u64_from_i64(a, "seq")?, u64_from_i64(b, "seq")?))),
            _ => Ok(None),
        }
    }

    fn put_checkpoint(&mut self, tenant: &str, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        let s = &self.schema;
        let size = i64_from_u64(cp.size)?;
        self.client.execute(
            &format!("INSERT INTO {s}.clyra_checkpoints (tenant, size, root, note) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"),
            &[&tenant, &size, &cp.root.as_bytes().as_slice(), &cp.note],
        )?;
        Ok(())
    }

    fn checkpoints(&mut self, tenant: &str) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let s = &self.schema;
        let rows = self.client.query(
            &format!("SELECT size, root, note FROM {s}.clyra_checkpoints WHERE tenant = $1 ORDER BY size"),
            &[&tenant],
        )?;
        rows.iter()
            .map(|r| {
                Ok(StoredCheckpoint {
                    size: u64_from_i64(r.get(0), "checkpoint size")?,
                    root: digest_from_slice(&r.get::<_, Vec<u8>>(1), "checkpoint root")?,
                    note: r.get(2),
                })
            })
            .collect()
    }
}
