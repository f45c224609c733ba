//! Running a replay on Postgres: checks before anything runs, the scratch schema, the throwaway
//! role, the models, the snapshot, the comparison, the rollback.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use postgres::types::Type;
use postgres::{GenericClient, Transaction};

use super::certificate::{
    Certificate, Isolation, ModelError, ModelResult, ModelStatus, Producer, ReplaySetRef, Status,
    Summary, TableFacts, Warehouse, CERTIFICATE_FORMAT,
};
use super::set::{parse_relation, SET_PATH};
use super::sql::{self, Checked, Rewritten};
use super::ReplayInput;
use crate::anchor::{self, PgAnchor};
use crate::diff::{self, Change, Observation};
use crate::error::{pg_message, Error};
use crate::glob;
use crate::pg::{quote_ident, redact};
use crate::snapshot::{self, table_key, Sizes, Snapshot, Table};

/// Scratch schemas (and throwaway roles) are named this prefix and 16 lowercase hex digits.
pub const SCRATCH_PREFIX: &str = "clyra_replay_";

/// How to run a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Globs over models' `unique_id` or `relation` (`*`, `?`); empty: every model. Each must
    /// match at least one model.
    pub models: Vec<String>,
    /// `statement_timeout` for every statement of the replay, in milliseconds (0: none).
    pub statement_timeout_ms: u64,
    /// `lock_timeout`, in milliseconds (0: wait forever).
    pub lock_timeout_ms: u64,
    /// Fail instead of falling back to the parser check alone when the throwaway role cannot be
    /// set up.
    pub require_role: bool,
    /// The connection string, for the certificate (the password is removed).
    pub dsn: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            models: Vec::new(),
            statement_timeout_ms: 300_000,
            lock_timeout_ms: 10_000,
            require_role: false,
            dsn: String::new(),
        }
    }
}

/// The state of one selected model during a replay.
struct Slot {
    result: ModelResult,
    /// Its SQL passed the parser check.
    checked: Option<Checked>,
    /// Its SQL pointed at the scratch schema.
    rewritten: Option<Rewritten>,
    /// Its name in the scratch schema.
    scratch_name: String,
    /// It is to be replayed (table or view, checks passed so far).
    runnable: bool,
    /// It ran and its relation exists in the scratch schema.
    ran: bool,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn error_result(slot: &mut Slot, code: &'static str, message: String) {
    slot.result.status = ModelStatus::Error;
    slot.result.error = Some(ModelError {
        kind: "refused",
        code: Some(code),
        sqlstate: None,
        message: message.clone(),
    });
    slot.result.reasons.push(format!("refused: {message}"));
    slot.runnable = false;
}

fn skip(slot: &mut Slot, reason: String) {
    slot.result.status = ModelStatus::Skipped;
    slot.result.reasons.push(reason);
    slot.runnable = false;
}

/// Replays the selected models of a verified bundle's replay input and returns the (unsigned)
/// certificate. Errors are problems outside the models: a bad `--models` glob, the connection
/// failing, an unexpected answer. The replay's transaction is rolled back on every path.
pub fn run(
    client: &mut postgres::Client,
    input: &ReplayInput,
    options: &RunOptions,
) -> Result<Certificate, Error> {
    let started_at = now();
    let set = &input.set;
    // Selection.
    for g in &options.models {
        if !set
            .models
            .iter()
            .any(|m| glob::matches(g, &m.unique_id) || glob::matches(g, &m.relation))
        {
            return Err(Error::Option {
                option: "--models",
                value: g.clone(),
                message: format!(
                    "matches no model's unique_id or relation (the set has {} models)",
                    set.models.len()
                ),
            });
        }
    }
    let selected = |i: usize| -> bool {
        options.models.is_empty()
            || set.models.get(i).is_some_and(|m| {
                options
                    .models
                    .iter()
                    .any(|g| glob::matches(g, &m.unique_id) || glob::matches(g, &m.relation))
            })
    };
    let mut slots: Vec<Slot> = Vec::new();
    let mut scratch_names: BTreeMap<String, usize> = BTreeMap::new();
    for i in set.order().into_iter().filter(|&i| selected(i)) {
        let Some(m) = set.models.get(i) else { continue };
        let (_, name) = parse_relation(&m.relation).unwrap_or_default();
        let mut slot = Slot {
            result: ModelResult {
                unique_id: m.unique_id.clone(),
                relation: m.relation.clone(),
                materialization: m.materialization.clone(),
                compiled_sql_sha256: m.compiled_sql_sha256.clone(),
                scratch_relation: None,
                status: ModelStatus::Skipped,
                reasons: Vec::new(),
                compared: Vec::new(),
                recorded: None,
                replayed: None,
                changes: Vec::new(),
                error: None,
                reads_unreplayed: Vec::new(),
                duration_us: None,
            },
            checked: None,
            rewritten: None,
            scratch_name: name.clone(),
            runnable: true,
            ran: false,
        };
        // Static checks: materialization, digest, parser. Nothing has run yet.
        if !matches!(m.materialization.as_str(), "table" | "view") {
            let why = match m.materialization.as_str() {
                "incremental" => "incremental models build on their previous contents, which a scratch schema does not have",
                "ephemeral" => "ephemeral models are inlined into the models that use them and are replayed there",
                "materialized_view" => "materialized views are not replayed yet",
                _ => "replay runs table and view models only",
            };
            skip(
                &mut slot,
                format!(
                    "materialization `{}` is not replayed: {why}",
                    m.materialization
                ),
            );
        } else if let Some(j) = scratch_names.insert(name.clone(), i) {
            let other = set.models.get(j).map_or("?", |o| o.unique_id.as_str());
            error_result(
                &mut slot,
                "name_collision",
                format!("its relation name `{name}` is also the name of `{other}`'s relation; the scratch schema holds one relation per name"),
            );
        } else {
            match input.sql_bytes(&m.compiled_sql) {
                None => error_result(
                    &mut slot,
                    "missing_sql",
                    format!(
                        "the bundle has no compiled SQL `artifacts/{}` (or it is larger than {} bytes)",
                        m.compiled_sql,
                        super::MAX_SQL_BYTES
                    ),
                ),
                Some(bytes) => {
                    let actual = clyra_evidence::Digest::sha256(bytes).to_hex();
                    if actual != m.compiled_sql_sha256 {
                        error_result(
                            &mut slot,
                            "sha256_mismatch",
                            format!(
                                "the SHA-256 of `artifacts/{}` is {actual}, the replay set says {}",
                                m.compiled_sql, m.compiled_sql_sha256
                            ),
                        );
                    } else {
                        match std::str::from_utf8(bytes) {
                            Err(e) => error_result(
                                &mut slot,
                                "parse",
                                format!("the compiled SQL is not UTF-8: {e}"),
                            ),
                            Ok(text) => match sql::check(text) {
                                Ok(c) => slot.checked = Some(c),
                                Err(r) => error_result(&mut slot, r.code, r.message),
                            },
                        }
                    }
                }
            }
        }
        slots.push(slot);
    }

    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .map_err(|e| Error::query("begin", &e))?;
    let outcome = replay_in(&mut tx, input, options, &mut slots);
    // Nothing the replay did is ever committed.
    let rolled_back = tx.rollback().map_err(|e| Error::query("rollback", &e));
    let mut outcome = outcome?;
    rolled_back?;

    let mut scratch_removed = false;
    if let Some(scratch) = &outcome.scratch {
        let row = client
            .query_typed_one(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)
                    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)",
                &[(scratch, Type::TEXT)],
            )
            .map_err(|e| Error::query("scratch schema check", &e))?;
        scratch_removed = row.try_get(0).map_err(|e| Error::Unexpected {
            what: "scratch schema check".into(),
            message: e.to_string(),
        })?;
        if !scratch_removed {
            outcome
                .notes
                .push(format!("the scratch schema or role `{scratch}` still exists after the rollback; run `clyra replay --cleanup`"));
        }
    }
    let after = anchor::take(client)?;
    Ok(certificate(
        input,
        options,
        slots,
        outcome,
        after,
        scratch_removed,
        started_at,
    ))
}

/// What happened inside the transaction.
struct Outcome {
    before: PgAnchor,
    scratch: Option<String>,
    isolation: Isolation,
    isolation_note: String,
    notes: Vec<String>,
}

fn replay_in(
    tx: &mut Transaction<'_>,
    input: &ReplayInput,
    options: &RunOptions,
    slots: &mut [Slot],
) -> Result<Outcome, Error> {
    // The anchor first: in REPEATABLE READ its MVCC snapshot is the one every later query sees,
    // so every source is read as of this anchor.
    let before = anchor::take_in(tx)?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; SET LOCAL search_path = pg_catalog",
        options.statement_timeout_ms, options.lock_timeout_ms
    ))
    .map_err(|e| Error::query("replay settings", &e))?;
    let row = tx
        .query_typed_one(
            "SELECT substr(replace(gen_random_uuid()::text, '-', ''), 1, 16)",
            &[],
        )
        .map_err(|e| Error::query("scratch name", &e))?;
    let suffix: String = row.try_get(0).map_err(|e| Error::Unexpected {
        what: "scratch name".into(),
        message: e.to_string(),
    })?;
    let scratch = format!("{SCRATCH_PREFIX}{suffix}");
    let mut outcome = Outcome {
        before,
        scratch: None,
        isolation: Isolation::Parser,
        isolation_note: String::new(),
        notes: Vec::new(),
    };

    // Rewrite: references to replayed models point at their scratch copies.
    let replayed: BTreeMap<(String, String), String> = slots
        .iter()
        .filter(|s| s.runnable)
        .filter_map(|s| parse_relation(&s.result.relation).map(|k| (k, s.scratch_name.clone())))
        .collect();
    let set_relations: BTreeMap<(String, String), usize> = input
        .set
        .models
        .iter()
        .enumerate()
        .filter_map(|(i, m)| parse_relation(&m.relation).map(|k| (k, i)))
        .collect();
    for slot in slots.iter_mut().filter(|s| s.runnable) {
        let Some(checked) = &slot.checked else {
            continue;
        };
        match sql::rewrite(checked, &replayed, &scratch) {
            Ok(r) => {
                if let Some(d) = r.databases.iter().find(|d| **d != outcome.before.database) {
                    let msg = format!(
                        "the SQL reads relations of database `{d}`; this connection is to `{}`",
                        outcome.before.database
                    );
                    error_result(slot, "other_database", msg);
                    continue;
                }
                slot.result.reads_unreplayed = r
                    .sources
                    .iter()
                    .filter(|k| set_relations.contains_key(*k))
                    .map(|(s, n)| table_key(s, n))
                    .collect();
                slot.result.scratch_relation = Some(table_key(&scratch, &slot.scratch_name));
                slot.rewritten = Some(r);
            }
            Err(r) => error_result(slot, r.code, r.message),
        }
    }

    // The sources, resolved in the catalog: foreign tables (directly or under views) refused.
    let mut names: BTreeSet<String> = BTreeSet::new();
    for s in slots.iter().filter(|s| s.runnable) {
        if let Some(r) = &s.rewritten {
            names.extend(r.sources.iter().map(|(sc, n)| source_text(sc, n)));
        }
    }
    let names: Vec<String> = names.into_iter().collect();
    let resolved = resolve(tx, &names)?;
    let oids: Vec<u32> = resolved.values().map(|r| r.oid).collect();
    let foreign = foreign_tables(tx, &oids)?;
    for slot in slots.iter_mut().filter(|s| s.runnable) {
        let Some(r) = &slot.rewritten else { continue };
        let mut hits = Vec::new();
        for (sc, n) in &r.sources {
            if let Some(rel) = resolved.get(&source_text(sc, n)) {
                if let Some(f) = foreign.get(&rel.oid) {
                    hits.extend(f.iter().cloned());
                }
            }
        }
        if !hits.is_empty() {
            hits.sort();
            hits.dedup();
            let msg = format!(
                "the SQL reads the foreign table(s) {} (directly or through a view); replay does not reach other servers",
                hits.join(", ")
            );
            error_result(slot, "foreign_table", msg);
        }
    }

    // Refused models stop the whole replay before anything runs.
    let refused: Vec<String> = slots
        .iter()
        .filter(|s| s.result.status == ModelStatus::Error)
        .map(|s| s.result.unique_id.clone())
        .collect();
    if !refused.is_empty() {
        for slot in slots.iter_mut().filter(|s| s.runnable) {
            skip(
                slot,
                format!(
                    "not run: the replay was refused before anything ran because of {}",
                    refused.join(", ")
                ),
            );
        }
        outcome.isolation_note = "nothing ran: the replay was refused by the checks".into();
        return Ok(outcome);
    }
    if !slots.iter().any(|s| s.runnable) {
        outcome.isolation_note = "nothing ran: no selected model is replayable".into();
        return Ok(outcome);
    }

    // The scratch schema, and the throwaway role when the connecting role may create it.
    tx.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(&scratch)))
        .map_err(|e| Error::query("creating the scratch schema", &e))?;
    outcome.scratch = Some(scratch.clone());
    let sources: Vec<&Resolved> = {
        let mut v: Vec<&Resolved> = Vec::new();
        let mut seen = BTreeSet::new();
        for s in slots.iter().filter(|s| s.runnable) {
            for (sc, n) in s.rewritten.iter().flat_map(|r| r.sources.iter()) {
                if let Some(rel) = resolved.get(&source_text(sc, n)) {
                    if seen.insert(rel.oid) {
                        v.push(rel);
                    }
                }
            }
        }
        v
    };
    match setup_role(tx, &scratch, &sources) {
        Ok(()) => {
            outcome.isolation = Isolation::ParserRole;
            outcome.isolation_note = format!(
                "the models ran as the throwaway role `{scratch}` (NOLOGIN; USAGE and CREATE on the scratch schema, SELECT on {} source relation(s) and USAGE on their schemas, nothing else), after the parser check",
                sources.len()
            );
        }
        Err(message) => {
            if options.require_role {
                return Err(Error::Option {
                    option: "--require-role-isolation",
                    value: "true".into(),
                    message: format!("the throwaway role could not be set up: {message}"),
                });
            }
            outcome.isolation = Isolation::Parser;
            outcome.isolation_note = format!(
                "the parser check only: the throwaway role could not be set up ({message}); the models ran with the connecting role's privileges, in a transaction that was rolled back"
            );
        }
    }
    tx.batch_execute(&format!(
        "SET LOCAL search_path = {}",
        quote_ident(&scratch)
    ))
    .map_err(|e| Error::query("setting the search path", &e))?;

    // The models, in dependency order.
    let mut done: BTreeMap<(String, String), bool> = BTreeMap::new();
    for slot in slots.iter_mut() {
        let key = parse_relation(&slot.result.relation).unwrap_or_default();
        if !slot.runnable {
            done.insert(key, false);
            continue;
        }
        let Some(r) = slot.rewritten.clone() else {
            continue;
        };
        let failed_up: Vec<String> = r
            .replayed
            .iter()
            .filter(|k| done.get(*k) != Some(&true))
            .map(|(s, n)| table_key(s, n))
            .collect();
        if !failed_up.is_empty() {
            skip(
                slot,
                format!("not run: upstream {} did not replay", failed_up.join(", ")),
            );
            done.insert(key, false);
            continue;
        }
        let target = format!(
            "{}.{}",
            quote_ident(&scratch),
            quote_ident(&slot.scratch_name)
        );
        let ddl = if slot.result.materialization == "view" {
            format!("CREATE VIEW {target} AS {}", r.sql)
        } else {
            format!("CREATE TABLE {target} AS {}", r.sql)
        };
        let mut sp = tx
            .savepoint("clyra_replay_model")
            .map_err(|e| Error::query("savepoint", &e))?;
        let t0 = Instant::now();
        // The extended protocol: the server itself refuses more than one statement.
        let result = sp.execute(ddl.as_str(), &[]);
        slot.result.duration_us = Some(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
        match result {
            Ok(_) => {
                sp.commit()
                    .map_err(|e| Error::query("release savepoint", &e))?;
                slot.ran = true;
                done.insert(key, true);
            }
            Err(e) => {
                if e.as_db_error().is_none() {
                    return Err(Error::query("running a model", &e));
                }
                sp.rollback()
                    .map_err(|e| Error::query("rollback to savepoint", &e))?;
                let (message, sqlstate) = pg_message(&e);
                slot.result.status = ModelStatus::Error;
                slot.result.reasons.push(format!(
                    "the SQL failed: {message}{}",
                    sqlstate
                        .as_deref()
                        .map(|c| format!(" (SQLSTATE {c})"))
                        .unwrap_or_default()
                ));
                slot.result.error = Some(ModelError {
                    kind: "sql",
                    code: None,
                    sqlstate,
                    message,
                });
                done.insert(key, false);
            }
        }
    }

    // The snapshot of what ran, and the comparison.
    let ran: Vec<&Slot> = slots.iter().filter(|s| s.ran).collect();
    if !ran.is_empty() {
        let recorded = &input.recorded;
        let keys: Vec<String> = ran
            .iter()
            .map(|s| table_key(&scratch, &s.scratch_name))
            .collect();
        let hashed: Vec<String> = ran
            .iter()
            .filter(|s| {
                recorded
                    .tables
                    .get(&s.result.relation)
                    .is_some_and(|t| t.content_hash.is_some())
            })
            .map(|s| table_key(&scratch, &s.scratch_name))
            .collect();
        let replayed = snapshot::take_in_written(
            tx,
            &snapshot::Options {
                schemas: vec![scratch.clone()],
                exclude_schemas: Vec::new(),
                exact_counts: keys,
                content_hashes: hashed,
                sizes: Sizes::Estimated,
                column_stats: false,
                lock_timeout_ms: options.lock_timeout_ms,
            },
        )?;
        outcome
            .notes
            .extend(compare(recorded, &replayed, &scratch, slots));
    }
    Ok(outcome)
}

fn source_text(schema: &str, name: &str) -> String {
    if schema.is_empty() {
        quote_ident(name)
    } else {
        format!("{}.{}", quote_ident(schema), quote_ident(name))
    }
}

/// A source relation found in the catalog.
#[derive(Debug, Clone)]
struct Resolved {
    oid: u32,
    schema: String,
    name: String,
}

/// Resolves relation names (`"schema"."name"`) with `search_path = pg_catalog`.
fn resolve<C: GenericClient>(
    client: &mut C,
    names: &[String],
) -> Result<BTreeMap<String, Resolved>, Error> {
    let rows = client
        .query_typed(
            "SELECT n.r, c.oid, ns.nspname::text, c.relname::text
               FROM unnest($1::text[]) AS n(r)
               JOIN pg_catalog.pg_class c ON c.oid = to_regclass(n.r)
               JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace",
            &[(&names, Type::TEXT_ARRAY)],
        )
        .map_err(|e| Error::query("resolving source relations", &e))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let bad = |e: postgres::Error| Error::Unexpected {
            what: "source relation".into(),
            message: e.to_string(),
        };
        out.insert(
            row.try_get::<_, String>(0).map_err(bad)?,
            Resolved {
                oid: row.try_get(1).map_err(bad)?,
                schema: row.try_get(2).map_err(bad)?,
                name: row.try_get(3).map_err(bad)?,
            },
        );
    }
    Ok(out)
}

/// For each relation, the foreign tables it is or reads through views (recursively).
fn foreign_tables<C: GenericClient>(
    client: &mut C,
    oids: &[u32],
) -> Result<BTreeMap<u32, Vec<String>>, Error> {
    let rows = client
        .query_typed(
            "WITH RECURSIVE deps(root, rel) AS (
                 SELECT r, r FROM unnest($1::oid[]) AS r
               UNION
                 SELECT d.root, dep.refobjid
                   FROM deps d
                   JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = d.rel
                   JOIN pg_catalog.pg_depend dep
                     ON dep.classid = 'pg_catalog.pg_rewrite'::regclass AND dep.objid = rw.oid
                    AND dep.refclassid = 'pg_catalog.pg_class'::regclass AND dep.refobjid <> d.rel
             )
             SELECT d.root, c.oid::regclass::text
               FROM deps d JOIN pg_catalog.pg_class c ON c.oid = d.rel
              WHERE c.relkind = 'f'",
            &[(&oids, Type::OID_ARRAY)],
        )
        .map_err(|e| Error::query("foreign table check", &e))?;
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for row in rows {
        let bad = |e: postgres::Error| Error::Unexpected {
            what: "foreign table check".into(),
            message: e.to_string(),
        };
        out.entry(row.try_get(0).map_err(bad)?)
            .or_default()
            .push(row.try_get(1).map_err(bad)?);
    }
    Ok(out)
}

/// Creates the throwaway role (named like the scratch schema), grants it what the models need and
/// nothing else, and switches to it, all in a savepoint that is rolled back if any step fails.
/// Returns the server's message on failure.
fn setup_role(
    tx: &mut Transaction<'_>,
    scratch: &str,
    sources: &[&Resolved],
) -> Result<(), String> {
    let role = quote_ident(scratch);
    let mut sql = format!(
        "CREATE ROLE {role} NOLOGIN NOINHERIT; GRANT USAGE, CREATE ON SCHEMA {role} TO {role};"
    );
    let system = |s: &str| s == "pg_catalog" || s == "information_schema";
    let schemas: BTreeSet<&str> = sources
        .iter()
        .map(|r| r.schema.as_str())
        .filter(|s| !system(s))
        .collect();
    for s in schemas {
        sql.push_str(&format!(
            "GRANT USAGE ON SCHEMA {} TO {role};",
            quote_ident(s)
        ));
    }
    for r in sources.iter().filter(|r| !system(&r.schema)) {
        sql.push_str(&format!(
            "GRANT SELECT ON {}.{} TO {role};",
            quote_ident(&r.schema),
            quote_ident(&r.name)
        ));
    }
    // A superuser may SET ROLE to any role; anyone else needs to be a member.
    sql.push_str(&format!(
        "GRANT {role} TO CURRENT_USER; SET LOCAL ROLE {role};"
    ));
    let mut sp = tx
        .savepoint("clyra_replay_role")
        .map_err(|e| pg_message(&e).0)?;
    match sp.batch_execute(&sql) {
        Ok(()) => sp.commit().map_err(|e| pg_message(&e).0),
        Err(e) => {
            let (message, code) = pg_message(&e);
            let _ = sp.rollback();
            Err(match code {
                Some(c) => format!("{message} (SQLSTATE {c})"),
                None => message,
            })
        }
    }
}

fn facts(t: &Table) -> TableFacts {
    TableFacts {
        kind: t.kind,
        columns: t.columns.len(),
        fingerprint: t.fingerprint.clone(),
        exact_count: t.exact_count,
        content_hash: t.content_hash.as_ref().map(|h| h.value.clone()),
    }
}

/// Compares the replayed relations with the recorded ones, with `clyra diff`'s logic, and fills
/// in each model's result. Returns notes on the comparison as a whole.
fn compare(
    recorded: &Snapshot,
    replayed: &Snapshot,
    scratch: &str,
    slots: &mut [Slot],
) -> Vec<String> {
    // Two snapshots holding just the compared relations, keyed by the recorded relation names;
    // the scope is the recorded one on both sides so that only the relations are compared.
    let mut from = recorded.clone();
    let mut to = replayed.clone();
    from.tables.clear();
    to.tables.clear();
    to.scope = recorded.scope.clone();
    for slot in slots.iter_mut().filter(|s| s.ran) {
        let Some(mut t) = replayed
            .tables
            .get(&table_key(scratch, &slot.scratch_name))
            .cloned()
        else {
            slot.result.status = ModelStatus::Error;
            slot.result
                .reasons
                .push("the replayed relation is missing from the scratch snapshot".into());
            continue;
        };
        let (schema, name) = parse_relation(&slot.result.relation).unwrap_or_default();
        t.schema = schema;
        t.name = name;
        slot.result.replayed = Some(facts(&t));
        match recorded.tables.get(&slot.result.relation) {
            None => {
                skip(
                    slot,
                    format!(
                        "unverifiable: the recorded snapshot has no relation `{}` (it ran in the scratch schema)",
                        slot.result.relation
                    ),
                );
                slot.ran = false;
            }
            Some(r) => {
                slot.result.recorded = Some(facts(r));
                from.tables.insert(slot.result.relation.clone(), r.clone());
                to.tables.insert(slot.result.relation.clone(), t);
            }
        }
    }
    let d = diff::diff(&from, &to);
    let by_table: BTreeMap<&str, &diff::TableDiff> =
        d.tables.iter().map(|t| (t.table.as_str(), t)).collect();
    for slot in slots.iter_mut().filter(|s| s.ran) {
        let (Some(rec), Some(rep)) = (&slot.result.recorded, &slot.result.replayed) else {
            continue;
        };
        let (rec, rep) = (rec.clone(), rep.clone());
        let td = by_table.get(slot.result.relation.as_str());
        let changes: Vec<Change> = td.map(|t| t.changes.clone()).unwrap_or_default();
        let observations: Vec<Observation> = td.map(|t| t.observations.clone()).unwrap_or_default();
        slot.result.compared.push("columns");
        if rec.exact_count.is_some() && rep.exact_count.is_some() {
            slot.result.compared.push("exact_count");
        }
        let mut hash_not_compared = None;
        for o in &observations {
            if let Observation::ContentHashNotCompared { reason } = o {
                hash_not_compared = Some(reason.clone());
            }
        }
        if rec.content_hash.is_some() && rep.content_hash.is_some() && hash_not_compared.is_none() {
            slot.result.compared.push("content_hash");
        }
        if !changes.is_empty() {
            slot.result.status = ModelStatus::Mismatch;
            slot.result.reasons = changes.iter().map(describe).collect();
            slot.result.changes = changes;
        } else if rec.exact_count.is_none() {
            slot.result.status = ModelStatus::Skipped;
            slot.result.reasons.push(
                "unverifiable: the recorded snapshot has no exact row count for this relation; only its columns were compared (they match)".into(),
            );
        } else {
            slot.result.status = ModelStatus::Match;
            let mut what = format!("columns and {} rows match", rep.exact_count.unwrap_or(0));
            if slot.result.compared.contains(&"content_hash") {
                what.push_str(", content hash matches");
            }
            slot.result.reasons.push(what);
        }
        if let Some(reason) = hash_not_compared {
            slot.result
                .reasons
                .push(format!("content hash not compared: {reason}"));
        }
    }
    d.notes
}

/// One line for a change, recorded → replayed.
fn describe(c: &Change) -> String {
    match c {
        Change::TableAdded { .. } => "the relation exists only in the replay".into(),
        Change::TableDropped { .. } => "the relation exists only in the recorded snapshot".into(),
        Change::KindChanged { from, to } => {
            format!("kind: recorded {}, replayed {}", from.as_str(), to.as_str())
        }
        Change::ColumnDropped { column, type_, .. } => {
            format!("column `{column}` ({type_}) is recorded but not in the replay")
        }
        Change::ColumnAdded { column, type_, .. } => {
            format!("column `{column}` ({type_}) is in the replay but not recorded")
        }
        Change::ColumnRetyped { column, from, to } => {
            format!("column `{column}`: recorded type {from}, replayed {to}")
        }
        Change::NullabilityChanged { column, from, to } => format!(
            "column `{column}`: recorded {}, replayed {}",
            if *from { "nullable" } else { "NOT NULL" },
            if *to { "nullable" } else { "NOT NULL" }
        ),
        Change::ColumnMoved { column, from, to } => {
            format!("column `{column}`: recorded at position {from}, replayed at {to}")
        }
        Change::FingerprintChanged { from, to } => {
            format!("schema fingerprint: recorded {from}, replayed {to}")
        }
        Change::ExactCountChanged { from, to, delta } => {
            format!("row count: recorded {from}, replayed {to} ({delta:+})")
        }
        Change::ContentHashChanged { from, to } => {
            format!("content hash: recorded {from}, replayed {to}")
        }
    }
}

fn certificate(
    input: &ReplayInput,
    options: &RunOptions,
    slots: Vec<Slot>,
    outcome: Outcome,
    after: PgAnchor,
    scratch_removed: bool,
    started_at: String,
) -> Certificate {
    let models: Vec<ModelResult> = slots.into_iter().map(|s| s.result).collect();
    let mut summary = Summary {
        selected: models.len(),
        ..Summary::default()
    };
    let mut reasons = Vec::new();
    for m in &models {
        match m.status {
            ModelStatus::Match => summary.matched += 1,
            ModelStatus::Mismatch => summary.mismatched += 1,
            ModelStatus::Skipped => summary.skipped += 1,
            ModelStatus::Error => summary.errors += 1,
        }
        if m.status != ModelStatus::Match {
            for r in &m.reasons {
                reasons.push(format!("{} {}: {r}", m.unique_id, m.status.as_str()));
            }
        }
    }
    let status = if summary.mismatched > 0 || summary.errors > 0 {
        Status::Failed
    } else if summary.skipped > 0 {
        Status::Partial
    } else {
        Status::Success
    };
    if status == Status::Success {
        reasons.push(format!("all {} selected model(s) match", summary.matched));
    }
    Certificate {
        format: CERTIFICATE_FORMAT,
        producer: Producer::default(),
        bundle: input.bundle.clone(),
        replay_set: ReplaySetRef {
            path: format!("{}{SET_PATH}", super::ARTIFACTS),
            sha256: input.set_sha256.clone(),
            dbt_invocation_id: input.set.dbt_invocation_id.clone(),
            models: input.set.models.len(),
            recorded_snapshot: format!("{}{}", super::ARTIFACTS, input.set.snapshot_after),
            recorded_snapshot_sha256: input.recorded_sha256.clone(),
            recorded_state_digest: input.recorded.state_digest.clone(),
            recorded_anchor: input.recorded.anchor.clone(),
        },
        warehouse: Warehouse {
            dsn: redact(&options.dsn),
            before: Some(outcome.before),
            after: Some(after),
        },
        isolation: outcome.isolation,
        isolation_note: outcome.isolation_note,
        scratch_schema: outcome.scratch,
        scratch_removed,
        selection: options.models.clone(),
        models,
        summary,
        status,
        reasons,
        notes: outcome.notes,
        started_at,
        finished_at: now(),
    }
}

/// What [`cleanup`] dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cleanup {
    /// Scratch schemas dropped (with everything in them).
    pub schemas: Vec<String>,
    /// Throwaway roles dropped (with their privileges in this database).
    pub roles: Vec<String>,
    /// Roles kept, with why: they still have objects or privileges in other databases (run the
    /// cleanup there too).
    pub kept_roles: Vec<(String, String)>,
}

/// Drops every scratch schema and throwaway role (`clyra_replay_` and 16 hex digits) that exists
/// in the connected database. A replay never commits them, so there are none unless something
/// else created them (an older Clyra, a person debugging); replays in progress are invisible here
/// and unaffected.
pub fn cleanup(client: &mut postgres::Client) -> Result<Cleanup, Error> {
    let pattern = format!("^{SCRATCH_PREFIX}[0-9a-f]{{16}}$");
    let list = |client: &mut postgres::Client, sql: &str, what: &'static str| {
        client
            .query_typed(sql, &[(&pattern, Type::TEXT)])
            .map_err(|e| Error::query(what, &e))?
            .iter()
            .map(|r| {
                r.try_get::<_, String>(0).map_err(|e| Error::Unexpected {
                    what: what.into(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<String>, Error>>()
    };
    let schemas = list(
        client,
        "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname ~ $1 ORDER BY 1",
        "listing scratch schemas",
    )?;
    let roles = list(
        client,
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname ~ $1 ORDER BY 1",
        "listing throwaway roles",
    )?;
    for s in &schemas {
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(s)))
            .map_err(|e| Error::query("dropping a scratch schema", &e))?;
    }
    let mut dropped = Vec::new();
    let mut kept_roles = Vec::new();
    for r in roles {
        let q = quote_ident(&r);
        // One transaction per role: a role with privileges in another database cannot be
        // dropped from here, and must not stop the others.
        match client.batch_execute(&format!(
            "BEGIN; DROP OWNED BY {q}; DROP ROLE IF EXISTS {q}; COMMIT"
        )) {
            Ok(()) => dropped.push(r),
            Err(e)
                if e.code() == Some(&postgres::error::SqlState::DEPENDENT_OBJECTS_STILL_EXIST) =>
            {
                let _ = client.batch_execute("ROLLBACK");
                kept_roles.push((r, pg_message(&e).0));
            }
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                return Err(Error::query("dropping a throwaway role", &e));
            }
        }
    }
    Ok(Cleanup {
        schemas,
        roles: dropped,
        kept_roles,
    })
}
