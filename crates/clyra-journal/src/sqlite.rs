//! The embedded default store: one SQLite database in a directory, WAL mode, `synchronous=FULL`
//! (a commit is on disk before `append` returns).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clyra_evidence::digest::Digest;
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::entry::{BodyPolicy, ChainHead, NewEvent, RunHead, SealedEntry};
use crate::store::{
    append_in_tx, digest_from_slice, i64_from_u64, ts_from_ms, u64_from_i64, IdHit, Leaves,
    Receipt, Store, StoreError, StoredCheckpoint, StoredEntry, Tx,
};

/// The database file inside the store directory.
pub const DB_FILE: &str = "journal.sqlite3";

const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS clyra_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clyra_heads (
    tenant TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    head BLOB NOT NULL,
    recorded_ms INTEGER
);
CREATE TABLE IF NOT EXISTS clyra_run_heads (
    tenant TEXT NOT NULL,
    run TEXT NOT NULL,
    size INTEGER NOT NULL,
    head BLOB NOT NULL,
    PRIMARY KEY (tenant, run)
);
CREATE TABLE IF NOT EXISTS clyra_entries (
    tenant TEXT NOT NULL,
    seq INTEGER NOT NULL,
    run TEXT,
    run_seq INTEGER,
    event_id TEXT,
    recorded_ms INTEGER NOT NULL,
    entry BLOB NOT NULL,
    hash BLOB NOT NULL,
    leaf BLOB NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS clyra_entries_run ON clyra_entries (tenant, run, run_seq) WHERE run IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS clyra_entries_id ON clyra_entries (tenant, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS clyra_entries_time ON clyra_entries (tenant, recorded_ms);
CREATE TABLE IF NOT EXISTS clyra_checkpoints (
    tenant TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (tenant, size)
);
";

/// A journal in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed, mode 0700) the store directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Config(format!(
                "{}: could not switch to WAL mode (got {mode})",
                path.display()
            )));
        }
        // Checkpoints run on a background connection (see `start_checkpointer`), not inside a
        // commit: an automatic checkpoint copies pages and fsyncs the database file while the
        // committing writer waits, which shows as latency spikes under steady ingest.
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=0;",
        )?;
        start_checkpointer(&path);
        conn.execute_batch(SCHEMA)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM clyra_meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match version.as_deref() {
            None => {
                conn.execute(
                    "INSERT OR IGNORE INTO clyra_meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StoreError::Config(format!(
                    "{}: journal schema version {other}, this build reads {SCHEMA_VERSION}",
                    path.display()
                )))
            }
        }
        Ok(SqliteStore { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw connection, for tests that tamper with rows on purpose.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// How often the background checkpointer runs.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// WAL size beyond which the checkpointer restarts the log, so it cannot grow without bound under
/// steady load; the file is also cut back to this size (`PRAGMA journal_size_limit`).
const WAL_RESTART_BYTES: u64 = 64 << 20;

/// Starts (once per database file and process) a thread that moves committed pages from the WAL
/// into the database with `wal_checkpoint(PASSIVE)`, which never blocks writers or readers. Under
/// continuous writes a passive checkpoint never catches up completely, so the log is never reused
/// and grows; once it passes [`WAL_RESTART_BYTES`] the thread runs `wal_checkpoint(RESTART)`,
/// which briefly holds off writers (the passive passes leave little to copy) and makes the next
/// commit start the log from the beginning. It runs for the life of the process; SQLite also
/// checkpoints when the last connection closes.
fn start_checkpointer(path: &Path) {
    static STARTED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let Ok(mut started) = STARTED.lock() else {
        return;
    };
    if started.iter().any(|p| p == path) {
        return;
    }
    let Ok(conn) = Connection::open(path) else {
        return;
    };
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let spawned = std::thread::Builder::new()
        .name("clyra-sqlite-checkpoint".into())
        .spawn(move || {
            let _ = conn.busy_timeout(Duration::from_secs(2));
            loop {
                std::thread::sleep(CHECKPOINT_INTERVAL);
                // Errors (busy, a removed file in tests) are retried at the next tick.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                if std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > WAL_RESTART_BYTES {
                    let _ = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
                }
            }
        });
    if spawned.is_ok() {
        started.push(path.to_path_buf());
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: dir.display().to_string(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io)
}

struct SqliteTx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl SqliteTx<'_> {
    fn head_row(&mut self, tenant: &str) -> Result<ChainHead, StoreError> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        let row: Option<(i64, Vec<u8>, Option<i64>)> = self
            .tx
            .prepare_cached("SELECT size, head, recorded_ms FROM clyra_heads WHERE tenant = ?1")?
            .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        match row {
            None => Ok(ChainHead::EMPTY),
            Some((size, head, ms)) => Ok(ChainHead {
                size: u64_from_i64(size, "head size")?,
                head: digest_from_slice(&head, "head")?,
                recorded_at: ms.map(ts_from_ms).transpose()?,
            }),
        }
    }

    fn run_head(&mut self, tenant: &str, run: &str) -> Result<Option<RunHead>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .tx
            .prepare_cached(
                "SELECT size, head FROM clyra_run_heads WHERE tenant = ?1 AND run = ?2",
            )?
            .query_row([tenant, run], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(size, head)| {
            Ok(RunHead {
                size: u64_from_i64(size, "run size")?,
                head: digest_from_slice(&head, "run head")?,
            })
        })
        .transpose()
    }

    fn find_id(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(u64, Digest, Option<u64>)>, StoreError> {
        let row: Option<(i64, Vec<u8>, Option<i64>)> = self
            .tx
            .prepare_cached(
                "SELECT seq, hash, run_seq FROM clyra_entries WHERE tenant = ?1 AND event_id = ?2",
            )?
            .query_row([tenant, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(seq, hash, run_seq)| {
            Ok((
                u64_from_i64(seq, "seq")?,
                digest_from_slice(&hash, "hash")?,
                run_seq.map(|v| u64_from_i64(v, "run_seq")).transpose()?,
            ))
        })
        .transpose()
    }

    fn insert(&mut self, e: &SealedEntry) -> Result<(), StoreError> {
        let run_seq = e.run.as_ref().map(|r| i64_from_u64(r.1)).transpose()?;
        self.tx
            .prepare_cached(
                "INSERT INTO clyra_entries (tenant, seq, run, run_seq, event_id, recorded_ms, entry, hash, leaf)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                e.tenant,
                i64_from_u64(e.seq)?,
                e.run.as_ref().map(|r| r.0.as_str()),
                run_seq,
                e.id,
                e.recorded_at.as_millisecond(),
                e.canonical,
                e.hash.as_bytes().as_slice(),
                e.leaf.as_bytes().as_slice(),
            ])?;
        Ok(())
    }

    fn put_head_row(&mut self, tenant: &str, head: &ChainHead) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO clyra_heads (tenant, size, head, recorded_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant) DO UPDATE SET size = excluded.size, head = excluded.head, recorded_ms = excluded.recorded_ms",
            )?
            .execute(params![
                tenant,
                i64_from_u64(head.size)?,
                head.head.as_bytes().as_slice(),
                head.recorded_at.map(|t| t.as_millisecond())
            ])?;
        Ok(())
    }

    fn put_run_head(&mut self, tenant: &str, run: &str, head: &RunHead) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO clyra_run_heads (tenant, run, size, head) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, run) DO UPDATE SET size = excluded.size, head = excluded.head",
            )?
            .execute(params![tenant, run, i64_from_u64(head.size)?, head.head.as_bytes().as_slice()])?;
        Ok(())
    }
}

impl Tx for SqliteTx<'_> {
    fn lock_head(&mut self, tenant: &str) -> Result<ChainHead, StoreError> {
        self.head_row(tenant)
    }

    fn run_heads(
        &mut self,
        tenant: &str,
        runs: &[&str],
    ) -> Result<HashMap<String, RunHead>, StoreError> {
        let mut out = HashMap::new();
        for run in runs {
            if let Some(rh) = self.run_head(tenant, run)? {
                out.insert((*run).to_string(), rh);
            }
        }
        Ok(out)
    }

    fn find_ids(
        &mut self,
        tenant: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, IdHit>, StoreError> {
        let mut out = HashMap::new();
        for id in ids {
            if let Some(hit) = self.find_id(tenant, id)? {
                out.insert((*id).to_string(), hit);
            }
        }
        Ok(out)
    }

    fn insert_many(&mut self, entries: &[SealedEntry]) -> Result<(), StoreError> {
        entries.iter().try_for_each(|e| self.insert(e))
    }

    fn put_head(&mut self, tenant: &str, head: &ChainHead) -> Result<(), StoreError> {
        self.put_head_row(tenant, head)
    }

    fn put_run_heads(&mut self, tenant: &str, heads: &[(&str, RunHead)]) -> Result<(), StoreError> {
        heads
            .iter()
            .try_for_each(|(run, h)| self.put_run_head(tenant, run, h))
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!(
            "sqlite:{}",
            self.path.parent().unwrap_or(&self.path).display()
        )
    }

    fn append(
        &mut self,
        events: &[NewEvent],
        policy: &BodyPolicy,
    ) -> Result<Vec<Receipt>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let receipts = append_in_tx(&mut SqliteTx { tx: &tx }, events, policy, Timestamp::now())?;
        tx.commit()?;
        Ok(receipts)
    }

    fn head(&mut self, tenant: &str) -> Result<ChainHead, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        let head = SqliteTx { tx: &tx }.head_row(tenant)?;
        tx.commit()?;
        Ok(head)
    }

    fn tenants(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tenant FROM clyra_heads ORDER BY tenant")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn scan(
        &mut self,
        tenant: &str,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, entry, hash, leaf FROM clyra_entries WHERE tenant = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
        )?;
        let to = i64::try_from(to).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![tenant, i64_from_u64(from)?, to])?;
        while let Some(row) = rows.next()? {
            f(StoredEntry {
                seq: u64_from_i64(row.get(0)?, "seq")?,
                canonical: row.get(1)?,
                hash: row.get(2)?,
                leaf: row.get(3)?,
            })?;
        }
        Ok(())
    }

    fn leaves(&mut self, tenant: &str, size: u64) -> Result<Vec<Digest>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, leaf FROM clyra_entries WHERE tenant = ?1 AND seq < ?2 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![tenant, i64_from_u64(size)?])?;
        let mut leaves = Leaves::new(tenant, size);
        while let Some(row) = rows.next()? {
            leaves.push(
                u64_from_i64(row.get(0)?, "seq")?,
                &row.get::<_, Vec<u8>>(1)?,
            )?;
        }
        leaves.finish()
    }

    fn run_seqs(&mut self, tenant: &str, run: &str) -> Result<Vec<u64>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq FROM clyra_entries WHERE tenant = ?1 AND run = ?2 ORDER BY run_seq",
        )?;
        let rows = stmt.query_map([tenant, run], |r| r.get::<_, i64>(0))?;
        rows.map(|r| u64_from_i64(r?, "seq")).collect()
    }

    fn scan_run(
        &mut self,
        tenant: &str,
        run: &str,
        f: &mut dyn FnMut(StoredEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, entry, hash, leaf FROM clyra_entries WHERE tenant = ?1 AND run = ?2 ORDER BY seq",
        )?;
        let mut rows = stmt.query([tenant, run])?;
        while let Some(row) = rows.next()? {
            f(StoredEntry {
                seq: u64_from_i64(row.get(0)?, "seq")?,
                canonical: row.get(1)?,
                hash: row.get(2)?,
                leaf: row.get(3)?,
            })?;
        }
        Ok(())
    }

    fn runs(&mut self, tenant: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        // substr and length count characters on both sides, so this is an exact prefix test.
        let mut stmt = self.conn.prepare_cached(
            "SELECT run FROM clyra_run_heads WHERE tenant = ?1 AND substr(run, 1, length(?2)) = ?2",
        )?;
        let rows = stmt.query_map([tenant, prefix], |r| r.get::<_, String>(0))?;
        let mut out: Vec<String> = rows.collect::<Result<_, _>>()?;
        out.sort_unstable();
        Ok(out)
    }

    fn seq_range(
        &mut self,
        tenant: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let row: (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT MIN(seq), MAX(seq) FROM clyra_entries WHERE tenant = ?1 AND recorded_ms >= ?2 AND recorded_ms < ?3",
            params![tenant, from.as_millisecond(), to.as_millisecond()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        match row {
            (Some(a), Some(b)) => Ok(Some((u64_from_i64(a, "seq")?, u64_from_i64(b, "seq")?))),
            _ => Ok(None),
        }
    }

    fn put_checkpoint(&mut self, tenant: &str, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO clyra_checkpoints (tenant, size, root, note) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![tenant, i64_from_u64(cp.size)?, cp.root.as_bytes().as_slice(), cp.note],
        )?;
        Ok(())
    }

    fn checkpoints(&mut self, tenant: &str) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT size, root, note FROM clyra_checkpoints WHERE tenant = ?1 ORDER BY size",
        )?;
        let mut rows = stmt.query([tenant])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(StoredCheckpoint {
                size: u64_from_i64(row.get(0)?, "checkpoint size")?,
                root: digest_from_slice(&row.get::<_, Vec<u8>>(1)?, "checkpoint root")?,
                note: row.get(2)?,
            });
        }
        Ok(out)
    }
}
