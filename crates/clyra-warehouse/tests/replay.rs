//! Replay certificates on the local Postgres: a source schema, three models (a staging view, an
//! intermediate table, a mart table) really run in an analytics schema, the snapshot recorded
//! after them, and a signed DEF bundle holding the replay input. Each test has its own schemas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use clyra_evidence::bundle::{BundleBuilder, Governance, Kind, Producer, VerifyOptions};
use clyra_evidence::keys::{Algorithm, PrivateKey, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::{intoto, jcs, Digest};
use clyra_warehouse::replay::{
    self, Certificate, InputError, Isolation, ModelStatus, ReplayInput, RunOptions, Status,
};
use clyra_warehouse::snapshot;
use serde_json::{json, Value};
use support::{client, pg_url, unique, Schemas};

/// One model of a test replay set.
#[derive(Clone)]
struct Spec {
    id: String,
    name: String,
    mat: &'static str,
    sql: String,
    depends_on: Vec<String>,
    /// A digest to write in the set instead of the file's.
    sha_override: Option<String>,
}

struct Fixture {
    /// Dropped with the fixture.
    _schemas: Schemas,
    raw: String,
    an: String,
    db: String,
    key: PrivateKey,
    trust: TrustStore,
}

impl Fixture {
    /// Sources in `raw`, the three models run for real in `an`.
    fn new(prefix: &str) -> Self {
        let schemas = Schemas::new(prefix, 2);
        let (raw, an) = (schemas.names[0].clone(), schemas.names[1].clone());
        let mut c = client();
        let db: String = c
            .query_one("SELECT current_database()::text", &[])
            .unwrap()
            .get(0);
        c.batch_execute(&format!(
            "CREATE TABLE {raw}.customers (id int PRIMARY KEY, name text NOT NULL, country text);
             CREATE TABLE {raw}.orders (id int PRIMARY KEY, customer_id int NOT NULL,
                 amount numeric(12,2), status text, ordered_at timestamptz);
             INSERT INTO {raw}.customers SELECT g, 'customer ' || g,
                 CASE WHEN g % 3 = 0 THEN 'DE' ELSE 'US' END FROM generate_series(1, 50) g;
             INSERT INTO {raw}.orders SELECT g, 1 + g % 50, (g * 7 % 500) / 4.0,
                 CASE WHEN g % 10 = 0 THEN 'returned' ELSE 'completed' END,
                 timestamptz '2026-11-01 00:00:00+00' + g * interval '1 hour'
               FROM generate_series(1, 1000) g;"
        ))
        .unwrap();
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut trust = TrustStore::new();
        trust
            .add(
                key.public_key().clone(),
                "2020-01-01T00:00:00Z".parse().unwrap(),
                None,
                None,
            )
            .unwrap();
        let f = Fixture {
            _schemas: schemas,
            raw,
            an,
            db,
            key,
            trust,
        };
        for s in f.models() {
            let kind = if s.mat == "view" { "VIEW" } else { "TABLE" };
            c.batch_execute(&format!("CREATE {kind} {}.{} AS {}", f.an, s.name, s.sql))
                .unwrap();
        }
        f
    }

    fn spec(&self, id: &str, name: &str, mat: &'static str, sql: &str, deps: &[&str]) -> Spec {
        Spec {
            id: format!("model.shop.{id}"),
            name: name.to_string(),
            mat,
            sql: sql.to_string(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            sha_override: None,
        }
    }

    /// staging (view) -> intermediate (table) -> mart (table), as dbt compiles them.
    fn models(&self) -> Vec<Spec> {
        let (db, raw, an) = (&self.db, &self.raw, &self.an);
        vec![
            self.spec(
                "stg_orders",
                "stg_orders",
                "view",
                &format!(
                    "select id as order_id, customer_id, amount, status, ordered_at\n\
                     from \"{db}\".\"{raw}\".\"orders\"\nwhere status <> 'returned'\n"
                ),
                &[&format!("{raw}.orders")],
            ),
            self.spec(
                "int_customer_orders",
                "int_customer_orders",
                "table",
                &format!(
                    "with orders as (\n    select * from \"{db}\".\"{an}\".\"stg_orders\"\n)\n\
                     select c.id as customer_id, c.country, count(o.order_id) as order_count,\n\
                     coalesce(sum(o.amount), 0) as revenue\n\
                     from \"{db}\".\"{raw}\".\"customers\" c\n\
                     left join orders o on o.customer_id = c.id\ngroup by c.id, c.country\n"
                ),
                &[&format!("{an}.stg_orders"), &format!("{raw}.customers")],
            ),
            self.spec(
                "mart_revenue_by_country",
                "mart_revenue_by_country",
                "table",
                &format!(
                    "select country, sum(order_count) as orders, sum(revenue) as revenue\n\
                     from \"{db}\".\"{an}\".\"int_customer_orders\"\ngroup by country\n"
                ),
                &[&format!("{an}.int_customer_orders")],
            ),
        ]
    }

    /// The recorded snapshot of `an` (exact counts and content hashes), the replay set and the
    /// compiled SQL of `specs`, in a signed DEF bundle.
    fn bundle(&self, specs: &[Spec], hash: bool) -> Vec<u8> {
        let mut c = client();
        let an = &self.an;
        let snap = snapshot::take(
            &mut c,
            &snapshot::Options {
                schemas: vec![an.clone()],
                exact_counts: vec![format!("{an}.*")],
                content_hashes: if hash {
                    vec![format!("{an}.*")]
                } else {
                    Vec::new()
                },
                ..Default::default()
            },
        )
        .unwrap();
        let models: Vec<Value> = specs
            .iter()
            .map(|s| {
                json!({
                    "unique_id": s.id,
                    "relation": format!("{an}.{}", s.name),
                    "materialization": s.mat,
                    "compiled_sql": format!("replay/compiled/{}.sql", s.id),
                    "compiled_sql_sha256": s.sha_override.clone()
                        .unwrap_or_else(|| Digest::sha256(s.sql.as_bytes()).to_hex()),
                    "depends_on": s.depends_on,
                })
            })
            .collect();
        let set = json!({
            "format": "clyra.replay.set/v1",
            "dbt_invocation_id": "5b1c2d7e-0000-4000-8000-000000000001",
            "snapshot_after": "replay/snapshot-after.json",
            "models": models,
        });
        let at: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let mut b = BundleBuilder::new(
            Kind::Def,
            "replay-test",
            at,
            Producer {
                name: "clyra".into(),
                version: "0.1.0".into(),
            },
            Governance {
                tenant: "acme".into(),
                environment: "test".into(),
                run_id: "r1".into(),
                actors: vec!["service:dbt".into()],
            },
        );
        b.chain_events([
            json!({"ts": "2026-12-01T09:00:00Z", "kind": "dbt.run.started"}),
            json!({"ts": "2026-12-01T09:00:05Z", "kind": "dbt.run.finished", "status": "success"}),
        ])
        .unwrap();
        b.artifact(
            "replay/replay.json",
            serde_json::to_vec_pretty(&set).unwrap(),
            "application/json",
        )
        .unwrap();
        b.artifact(
            "replay/snapshot-after.json",
            snap.to_canonical_json().unwrap(),
            "application/json",
        )
        .unwrap();
        for s in specs {
            b.artifact(
                &format!("replay/compiled/{}.sql", s.id),
                s.sql.clone().into_bytes(),
                "application/sql",
            )
            .unwrap();
        }
        let signers: [&dyn Signer; 1] = [&self.key];
        b.build(&signers).unwrap().into_zip_bytes()
    }

    fn load(&self, zip: &[u8]) -> ReplayInput {
        replay::load(
            zip,
            "run.def.zip",
            &VerifyOptions::new(&self.trust, jiff::Timestamp::now()),
        )
        .unwrap()
    }

    fn replay(&self, zip: &[u8]) -> Certificate {
        let input = self.load(zip);
        let mut c = client();
        replay::run(
            &mut c,
            &input,
            &RunOptions {
                dsn: pg_url(),
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// What must never change: the sources' rows, the relations in the test's schemas, and no
    /// scratch schema or role visible.
    fn state(&self) -> Value {
        let mut c = client();
        let row = c
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {r}.orders)::text,
                            (SELECT sum(hashtextextended(o::text, 0)) FROM {r}.orders o)::text,
                            (SELECT count(*) FROM {r}.customers)::text,
                            (SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' || coalesce(c.relacl::text, ''), ',' ORDER BY 1)
                               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                              WHERE n.nspname IN ('{r}', '{a}')),
                            (SELECT coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = '{r}')",
                    r = self.raw,
                    a = self.an
                ),
                &[],
            )
            .unwrap();
        json!([
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, String>(3),
            row.get::<_, String>(4)
        ])
    }
}

fn scratch_exists(name: &str) -> bool {
    client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
                 OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&name],
        )
        .unwrap()
        .get(0)
}

fn validator(path: &str) -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("../../{path}")).unwrap()).unwrap();
    assert!(jsonschema::meta::is_valid(&schema), "{path}");
    let snap: Value = serde_json::from_str(include_str!(
        "../../../spec/def/warehouse-snapshot.schema.json"
    ))
    .unwrap();
    let registry = jsonschema::Registry::new()
        .add(
            "https://clyra.dev/spec/def/warehouse-snapshot.schema.json",
            snap,
        )
        .and_then(|b| b.prepare())
        .unwrap();
    jsonschema::draft202012::options()
        .with_registry(&registry)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&schema)
        .unwrap()
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

#[test]
fn replay_matches_and_the_certificate_verifies() {
    let f = Fixture::new("rp_ok");
    let zip = f.bundle(&f.models(), true);
    let before = f.state();
    let cert = f.replay(&zip);
    assert_eq!(cert.status, Status::Success, "{cert:#?}");
    assert_eq!(
        cert.isolation,
        Isolation::ParserRole,
        "{}",
        cert.isolation_note
    );
    assert_eq!(cert.summary.matched, 3);
    for m in &cert.models {
        assert_eq!(m.status, ModelStatus::Match, "{m:#?}");
        assert_eq!(m.compared, ["columns", "exact_count", "content_hash"]);
    }
    // Dependency order, and the downstream models read the replayed upstream copies.
    let ids: Vec<&str> = cert.models.iter().map(|m| m.unique_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "model.shop.stg_orders",
            "model.shop.int_customer_orders",
            "model.shop.mart_revenue_by_country"
        ]
    );
    assert!(cert.models.iter().all(|m| m.reads_unreplayed.is_empty()));
    assert_eq!(
        cert.models[0].recorded.as_ref().unwrap().exact_count,
        Some(900)
    );
    // The scratch schema and role existed only inside the rolled-back transaction.
    let scratch = cert.scratch_schema.clone().unwrap();
    assert!(cert.scratch_removed);
    assert!(!scratch_exists(&scratch));
    assert_eq!(
        f.state(),
        before,
        "nothing outside the scratch schema changed"
    );
    // Sources were read as of the "before" anchor, first in the transaction.
    let b = cert.warehouse.before.as_ref().unwrap();
    let a = cert.warehouse.after.as_ref().unwrap();
    assert!(b.lsn_position() <= a.lsn_position());

    // The certificate matches its schema, and the signed envelope verifies.
    let doc = serde_json::to_value(&cert).unwrap();
    assert_valid(
        &validator("spec/common/schemas/replay_certificate.json"),
        &doc,
    );
    let signers: [&dyn Signer; 1] = [&f.key];
    let env = cert.sign(&signers).unwrap();
    let verified =
        intoto::verify_statement(&env, &f.trust, jiff::Timestamp::now(), 1, jcs::canonicalize)
            .unwrap();
    let st = verified.statement();
    assert_eq!(st.predicate_type, replay::PREDICATE_TYPE);
    assert!(st.subject_matches(Some("run.def.zip"), &Digest::sha256(&zip)));
    assert_eq!(st.predicate, doc);
    // The replay set in the bundle matches its schema too.
    let set: Value =
        serde_json::from_slice(&serde_json::to_vec(&f.load(&zip).set).unwrap()).unwrap();
    assert_valid(&validator("spec/def/replay-set.schema.json"), &set);
}

#[test]
fn changed_sources_fail_with_count_and_hash_mismatches() {
    let f = Fixture::new("rp_drift");
    let zip = f.bundle(&f.models(), true);
    client()
        .batch_execute(&format!(
            "UPDATE {r}.orders SET amount = amount + 1 WHERE id = 7; DELETE FROM {r}.orders WHERE id = 8;",
            r = f.raw
        ))
        .unwrap();
    let cert = f.replay(&zip);
    assert_eq!(cert.status, Status::Failed);
    let stg = &cert.models[0];
    assert_eq!(stg.status, ModelStatus::Mismatch);
    assert!(
        stg.reasons
            .iter()
            .any(|r| r == "row count: recorded 900, replayed 899 (-1)"),
        "{:?}",
        stg.reasons
    );
    assert!(stg
        .reasons
        .iter()
        .any(|r| r.starts_with("content hash: recorded")));
    // Same 50 customers downstream, other revenue: the hash catches it.
    let int = &cert.models[1];
    assert_eq!(int.status, ModelStatus::Mismatch);
    assert_eq!(int.replayed.as_ref().unwrap().exact_count, Some(50));
    assert!(int
        .changes
        .iter()
        .any(|c| serde_json::to_value(c).unwrap()["change"] == "content_hash_changed"));
    assert!(!scratch_exists(cert.scratch_schema.as_ref().unwrap()));

    // Without recorded content hashes, a count-preserving change is not seen: match on counts
    // and columns only, and the certificate says what was compared.
    let f2 = Fixture::new("rp_nohash");
    let zip = f2.bundle(&f2.models(), false);
    client()
        .batch_execute(&format!("UPDATE {}.orders SET amount = 0", f2.raw))
        .unwrap();
    let cert = f2.replay(&zip);
    assert_eq!(cert.status, Status::Success);
    assert_eq!(cert.models[1].compared, ["columns", "exact_count"]);
}

#[test]
fn malicious_sql_is_refused_before_anything_runs() {
    let f = Fixture::new("rp_evil");
    let raw = f.raw.clone();
    let cases = [
        ("delete", format!("DELETE FROM {raw}.orders"), "not_a_query"),
        (
            "read_file",
            "select pg_read_file('/etc/passwd') as secret".to_string(),
            "refused_function",
        ),
        (
            "dml_cte",
            format!("with d as (delete from {raw}.orders returning *) select * from d"),
            "data_modifying",
        ),
        (
            "dblink",
            "select * from dblink('host=127.0.0.1 dbname=test', 'drop table x') as t(a int)"
                .to_string(),
            "refused_function",
        ),
        (
            "two_statements",
            format!("select 1 as one; drop table {raw}.orders"),
            "not_one_statement",
        ),
        (
            "for_update",
            format!("select * from {raw}.orders for update"),
            "row_lock",
        ),
    ];
    for (name, sql, code) in cases {
        let before = f.state();
        let mut specs = f.models();
        specs.push(f.spec(
            &format!("evil_{name}"),
            &format!("evil_{name}"),
            "table",
            &sql,
            &[],
        ));
        let cert = f.replay(&f.bundle(&specs, true));
        assert_eq!(cert.status, Status::Failed, "{name}");
        let evil = cert
            .models
            .iter()
            .find(|m| m.unique_id.ends_with(name))
            .unwrap();
        assert_eq!(evil.status, ModelStatus::Error, "{name}");
        let err = evil.error.as_ref().unwrap();
        assert_eq!(
            (err.kind, err.code),
            ("refused", Some(code)),
            "{name}: {err:?}"
        );
        // Nothing ran: the good models are skipped, no scratch schema was even created.
        for m in cert.models.iter().filter(|m| !m.unique_id.contains("evil")) {
            assert_eq!(m.status, ModelStatus::Skipped, "{name}");
            assert!(
                m.reasons[0].contains("refused before anything ran"),
                "{:?}",
                m.reasons
            );
            assert!(m.duration_us.is_none());
        }
        assert_eq!(cert.scratch_schema, None, "{name}");
        assert_eq!(f.state(), before, "{name}: nothing changed");
    }
}

#[test]
fn the_role_stops_what_the_parser_cannot_see() {
    // A function the parser allows (it is not on the list) that writes outside the scratch
    // schema: as the throwaway role it has no INSERT privilege, so the model fails.
    let f = Fixture::new("rp_role");
    let raw = &f.raw;
    client()
        .batch_execute(&format!(
            "CREATE TABLE {raw}.log (n int);
             CREATE FUNCTION {raw}.sneaky() RETURNS int LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO {raw}.log VALUES (1); RETURN 1; END $$;"
        ))
        .unwrap();
    let mut specs = f.models();
    specs.push(f.spec(
        "sneaky",
        "sneaky",
        "table",
        &format!("select {raw}.sneaky() as n from {raw}.customers limit 1"),
        &[],
    ));
    let cert = f.replay(&f.bundle(&specs, true));
    assert_eq!(cert.isolation, Isolation::ParserRole);
    let m = cert
        .models
        .iter()
        .find(|m| m.unique_id.ends_with("sneaky"))
        .unwrap();
    assert_eq!(m.status, ModelStatus::Error, "{m:#?}");
    let err = m.error.as_ref().unwrap();
    assert_eq!(err.kind, "sql");
    assert_eq!(err.sqlstate.as_deref(), Some("42501"), "{err:?}");
    // The others still ran and matched; the failure is in the certificate; nothing persisted.
    assert_eq!(cert.summary.matched, 3);
    assert_eq!(cert.status, Status::Failed);
    let n: i64 = client()
        .query_one(&format!("SELECT count(*) FROM {raw}.log"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    assert!(!scratch_exists(cert.scratch_schema.as_ref().unwrap()));
}

#[test]
fn without_createrole_replay_falls_back_to_the_parser_and_says_so() {
    let f = Fixture::new("rp_parser");
    let zip = f.bundle(&f.models(), true);
    let role = unique("rpt");
    let mut c = client();
    c.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN;
         GRANT CREATE ON DATABASE \"{db}\" TO {role};
         GRANT USAGE ON SCHEMA {r}, {a} TO {role};
         GRANT SELECT ON ALL TABLES IN SCHEMA {r} TO {role};
         GRANT SELECT ON ALL TABLES IN SCHEMA {a} TO {role};",
        db = f.db,
        r = f.raw,
        a = f.an
    ))
    .unwrap();
    struct DropRole(String);
    impl Drop for DropRole {
        fn drop(&mut self) {
            if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
                let _ = c.batch_execute(&format!(
                    "DROP OWNED BY {0}; DROP ROLE IF EXISTS {0}",
                    self.0
                ));
            }
        }
    }
    let _guard = DropRole(role.clone());
    let mut config: postgres::Config = pg_url().parse().unwrap();
    config.user(&role);
    let mut rc = config.connect(postgres::NoTls).unwrap();
    let input = f.load(&zip);
    let cert = replay::run(&mut rc, &input, &RunOptions::default()).unwrap();
    assert_eq!(cert.isolation, Isolation::Parser);
    assert!(
        cert.isolation_note
            .contains("permission denied to create role"),
        "{}",
        cert.isolation_note
    );
    assert_eq!(cert.status, Status::Success, "{cert:#?}");
    assert!(!scratch_exists(cert.scratch_schema.as_ref().unwrap()));
    // --require-role-isolation turns the fallback into an error.
    let e = replay::run(
        &mut rc,
        &input,
        &RunOptions {
            require_role: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("throwaway role could not be set up"),
        "{e}"
    );
    drop(rc);
}

#[test]
fn tampered_bundles_are_refused_and_digests_are_checked() {
    let f = Fixture::new("rp_tamper");
    let zip = f.bundle(&f.models(), true);
    // Change one byte of a compiled SQL file inside the ZIP: the kernel's verifier refuses it.
    let needle = b"where status <> 'returned'";
    let at = zip.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut bad = zip.clone();
    bad[at + 16] = b'R';
    let e = replay::load(
        &bad,
        "run.def.zip",
        &VerifyOptions::new(&f.trust, jiff::Timestamp::now()),
    )
    .unwrap_err();
    let InputError::Unverified { findings, .. } = &e else {
        panic!("{e}");
    };
    assert!(!findings.is_empty(), "{e}");
    // An untrusted signer: refused too.
    let e = replay::load(
        &zip,
        "run.def.zip",
        &VerifyOptions::new(&TrustStore::new(), jiff::Timestamp::now()),
    )
    .unwrap_err();
    assert!(matches!(e, InputError::Unverified { .. }), "{e}");

    // A signed bundle whose replay set names another digest than its SQL file: refused before
    // anything runs.
    let mut specs = f.models();
    specs[1].sha_override = Some("ab".repeat(32));
    let cert = f.replay(&f.bundle(&specs, true));
    assert_eq!(cert.status, Status::Failed);
    let err = cert.models[1].error.as_ref().unwrap();
    assert_eq!(err.code, Some("sha256_mismatch"));
    assert_eq!(cert.scratch_schema, None);
}

#[test]
fn failing_sql_partial_selection_and_skips() {
    let f = Fixture::new("rp_partial");
    let mut specs = f.models();
    // A model the server refuses at run time (division by zero): an error with its SQLSTATE,
    // the scratch schema still gone afterwards.
    specs.push(f.spec(
        "broken",
        "broken",
        "table",
        &format!(
            "select 1 / (count(*) - count(*)) as x from {}.customers",
            f.raw
        ),
        &[],
    ));
    // An incremental model: skipped with the reason.
    specs.push(f.spec("incr", "incr", "incremental", "select 1 as x", &[]));
    let zip = f.bundle(&specs, true);
    let cert = f.replay(&zip);
    let broken = cert
        .models
        .iter()
        .find(|m| m.unique_id.ends_with("broken"))
        .unwrap();
    assert_eq!(broken.status, ModelStatus::Error);
    assert_eq!(
        broken.error.as_ref().unwrap().sqlstate.as_deref(),
        Some("22012")
    );
    let incr = cert
        .models
        .iter()
        .find(|m| m.unique_id.ends_with("incr"))
        .unwrap();
    assert_eq!(incr.status, ModelStatus::Skipped);
    assert!(
        incr.reasons[0].contains("incremental"),
        "{:?}",
        incr.reasons
    );
    assert_eq!(cert.status, Status::Failed);
    assert!(!scratch_exists(cert.scratch_schema.as_ref().unwrap()));
    assert!(cert.scratch_removed);

    // Only the downstream models: they read the recorded upstream relation where it is, and the
    // certificate says so. The incremental model alone: partial.
    let input = f.load(&zip);
    let mut c = client();
    let cert = replay::run(
        &mut c,
        &input,
        &RunOptions {
            models: vec!["model.shop.int_*".into(), "*.mart_*".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(cert.status, Status::Success, "{cert:#?}");
    assert_eq!(cert.summary.selected, 2);
    assert_eq!(
        cert.models[0].reads_unreplayed,
        [format!("{}.stg_orders", f.an)]
    );
    let cert = replay::run(
        &mut c,
        &input,
        &RunOptions {
            models: vec!["model.shop.incr".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(cert.status, Status::Partial);
    assert_eq!(cert.scratch_schema, None);
    // A glob that selects nothing is an error.
    let e = replay::run(
        &mut c,
        &input,
        &RunOptions {
            models: vec!["model.nope.*".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("matches no model"), "{e}");
}

#[test]
fn cleanup_drops_leftover_scratch_schemas_and_roles() {
    // In a database of its own: `clyra replay --cleanup` tests elsewhere must not see it.
    let hex = format!("{:016x}", {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        (n as u64) ^ u64::from(std::process::id()).rotate_left(32)
    });
    let name = format!("clyra_replay_{hex}");
    let db = format!("rp_cleanup_{hex}");
    client()
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    struct DropDb(String, String);
    impl Drop for DropDb {
        fn drop(&mut self) {
            if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE); DROP ROLE IF EXISTS {}",
                    self.0, self.1
                ));
            }
        }
    }
    let _guard = DropDb(db.clone(), name.clone());
    let mut config: postgres::Config = pg_url().parse().unwrap();
    config.dbname(&db);
    let mut c = config.connect(postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "CREATE SCHEMA keep; CREATE TABLE keep.clyra_replay_not_scratch (x int);
         CREATE SCHEMA {name}; CREATE TABLE {name}.t AS SELECT 1 AS x;
         CREATE ROLE {name} NOLOGIN; GRANT USAGE ON SCHEMA keep TO {name};"
    ))
    .unwrap();
    let exists = |c: &mut postgres::Client| -> (bool, bool) {
        let row = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                        EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
                &[&name],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(exists(&mut c), (true, true));
    let done = replay::cleanup(&mut c).unwrap();
    assert_eq!(done.schemas, std::slice::from_ref(&name), "{done:?}");
    assert!(done.roles.contains(&name), "{done:?}");
    assert_eq!(exists(&mut c), (false, false));
    // Only names of the scratch pattern are touched.
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'clyra_replay_not_scratch'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let again = replay::cleanup(&mut c).unwrap();
    assert!(again.schemas.is_empty() && !again.roles.contains(&name));
}

#[test]
fn foreign_tables_are_refused_directly_and_through_views() {
    // postgres_fdw ships with Postgres; the extension stays installed in the test database (it
    // creates no relations), the server and the foreign table go with the test.
    let f = Fixture::new("rp_fdw");
    let raw = f.raw.clone();
    let mut c = client();
    c.batch_execute(&format!(
        "CREATE EXTENSION IF NOT EXISTS postgres_fdw;
         CREATE SERVER {raw}_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', dbname 'test');
         CREATE FOREIGN TABLE {raw}.remote (x int) SERVER {raw}_srv;
         CREATE VIEW {raw}.via_view AS SELECT x FROM {raw}.remote;"
    ))
    .unwrap();
    struct DropServer(String);
    impl Drop for DropServer {
        fn drop(&mut self) {
            if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SERVER IF EXISTS {}_srv CASCADE", self.0));
            }
        }
    }
    let _guard = DropServer(raw.clone());
    for (name, from) in [("direct", "remote"), ("view", "via_view")] {
        let mut specs = f.models();
        specs.push(f.spec(
            name,
            name,
            "table",
            &format!("select x from \"{}\".\"{raw}\".\"{from}\"", f.db),
            &[],
        ));
        let cert = f.replay(&f.bundle(&specs, true));
        let m = cert
            .models
            .iter()
            .find(|m| m.unique_id.ends_with(name))
            .unwrap();
        let err = m.error.as_ref().unwrap();
        assert_eq!(err.code, Some("foreign_table"), "{name}: {err:?}");
        assert!(
            err.message.contains(&format!("{raw}.remote")),
            "{}",
            err.message
        );
        assert_eq!(cert.scratch_schema, None, "nothing ran");
    }
}
