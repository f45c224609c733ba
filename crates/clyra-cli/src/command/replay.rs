//! `clyra replay`: replay certificates.
//!
//! Wiring only: verification, the replay and the certificate live in
//! `clyra_warehouse::replay`. This module reads the bundle, the trust file and the key, writes the
//! signed certificate, formats the result and maps it to an exit code.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clyra_evidence::bundle::VerifyOptions;
use clyra_evidence::keys::{self, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_warehouse::replay::{self, Certificate, InputError, ModelStatus, RunOptions, Status};
use serde::Serialize;

use crate::command::bundle::human_report;
use crate::command::warehouse::connect;
use crate::command::write_new_file;
use crate::output::{Exit, Output};

/// `clyra replay`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Verifies the DEF bundle with the kernel's verifier first and refuses an \
unverified one (exit 2). Then reads its replay input (artifacts/replay/replay.json, the compiled SQL \
it names, the snapshot recorded after the run), checks every selected model before anything runs \
(the SQL's SHA-256, exactly one read-only query, no refused function such as pg_read_file, dblink, \
nextval or set_config, no data-modifying CTE, no foreign table), and replays the models in \
dependency order in one REPEATABLE READ transaction: a scratch schema clyra_replay_<16 hex>, a \
throwaway role with SELECT on the sources only (when the connecting role may create roles; the \
certificate says `parser+role` or `parser`), CREATE TABLE|VIEW scratch.<name> AS <compiled SQL> \
with references to replayed models rewritten to their scratch copies. The scratch snapshot \
(exact counts; content hashes where the recorded snapshot has them) is compared with the recorded \
one, and the transaction is rolled back: nothing the replay did is ever committed. The certificate \
(spec/common/schemas/replay_certificate.json) is signed as a DSSE envelope over an in-toto \
Statement (predicate type https://clyra.dev/replay-certificate/v1); check it with \
`clyra verify-envelope`. --cleanup drops leftover clyra_replay_* schemas and roles. Docs: \
docs/warehouses/replay.md.\n\n\
Exit codes: 0 success (every selected model matches), 2 partial or failed (or the bundle does not \
verify), 1 usage or I/O error.\n\n\
Examples:\n  clyra replay --bundle run.def.zip --trust trust.json \\\n    --dsn \
postgres://ci@db:5432/prod --key keys/clyra.key --out replay.cert.json\n  clyra replay --bundle \
run.def.zip --trust trust.json --dsn postgres://ci@db:5432/prod \\\n    --models 'model.shop.stg_*' \
--key keys/clyra.key --out stg.cert.json\n  clyra verify-envelope replay.cert.json --trust trust.json \
--subject run.def.zip\n  clyra replay --cleanup --dsn postgres://ci@db:5432/prod"
)]
pub struct ReplayArgs {
    /// The DEF bundle holding the replay input.
    #[arg(long, required_unless_present = "cleanup")]
    pub bundle: Option<PathBuf>,
    /// The trust file the bundle must verify against.
    #[arg(long, required_unless_present = "cleanup")]
    pub trust: Option<PathBuf>,
    /// Connection string: postgres://USER[:PASSWORD]@HOST:PORT/DB or libpq `key=value` pairs.
    #[arg(long)]
    pub dsn: String,
    /// Replay only these models (globs on unique_id or relation; comma-separated or repeated).
    #[arg(long, value_name = "GLOB", num_args = 1.., value_delimiter = ',')]
    pub models: Vec<String>,
    /// Private key that signs the certificate (PKCS#8 PEM, mode 0600).
    #[arg(long, required_unless_present = "cleanup")]
    pub key: Option<PathBuf>,
    /// Where to write the signed certificate (refuses to overwrite).
    #[arg(long, required_unless_present = "cleanup")]
    pub out: Option<PathBuf>,
    /// Give up on a statement after this long (0: no limit).
    #[arg(long, default_value_t = 300_000)]
    pub statement_timeout_ms: u64,
    /// Give up waiting for a lock after this long (0: wait forever).
    #[arg(long, default_value_t = 10_000)]
    pub lock_timeout_ms: u64,
    /// Fail (exit 1) instead of falling back to the parser check alone when the throwaway role
    /// cannot be created.
    #[arg(long)]
    pub require_role_isolation: bool,
    /// Drop leftover clyra_replay_* scratch schemas and roles, and do nothing else.
    #[arg(long, conflicts_with_all = ["bundle", "trust", "key", "out", "models"])]
    pub cleanup: bool,
}

#[derive(Serialize)]
struct Refused<'a> {
    ok: bool,
    refused: String,
    verification: &'a clyra_evidence::bundle::Report,
}

#[derive(Serialize)]
struct Done<'a> {
    ok: bool,
    status: Status,
    certificate_file: String,
    signed_by: String,
    certificate: &'a Certificate,
}

pub fn run(args: ReplayArgs, out: &Output) -> anyhow::Result<Exit> {
    if args.cleanup {
        let mut client = connect(&args.dsn)?;
        let done = replay::cleanup(&mut client)?;
        out.emit(&serde_json::json!({"ok": true, "dropped": &done}), || {
            if done.schemas.is_empty() && done.roles.is_empty() && done.kept_roles.is_empty() {
                "cleanup: no leftover clyra_replay_* schema or role".to_string()
            } else {
                let mut s = String::from("cleanup:\n");
                for x in &done.schemas {
                    let _ = writeln!(s, "  dropped schema  {x}");
                }
                for x in &done.roles {
                    let _ = writeln!(s, "  dropped role    {x}");
                }
                for (x, why) in &done.kept_roles {
                    let _ = writeln!(s, "  kept role       {x}: {why}");
                }
                s
            }
        });
        return Ok(Exit::Ok);
    }
    let (Some(bundle_path), Some(trust_path), Some(key_path), Some(out_path)) =
        (&args.bundle, &args.trust, &args.key, &args.out)
    else {
        anyhow::bail!("--bundle, --trust, --key and --out are required (except with --cleanup)");
    };
    if out_path.exists() {
        anyhow::bail!(
            "`{}` already exists; refusing to overwrite it",
            out_path.display()
        );
    }
    let key = keys::read_private_key_file(key_path)
        .with_context(|| format!("cannot use key `{}`", key_path.display()))?;
    let trust = TrustStore::read_file(trust_path)?;
    let bytes = std::fs::read(bundle_path)
        .with_context(|| format!("cannot read `{}`", bundle_path.display()))?;
    let name = bundle_path.to_string_lossy().into_owned();
    let options = VerifyOptions::new(&trust, jiff::Timestamp::now());
    let input = match replay::load(&bytes, &name, &options) {
        Ok(i) => i,
        Err(InputError::Unverified { report, .. }) => {
            let refused = format!(
                "replay refused: `{name}` does not verify; an unverified bundle is never replayed"
            );
            out.emit(
                &Refused {
                    ok: false,
                    refused: refused.clone(),
                    verification: &report,
                },
                || format!("{}{refused}", human_report(&report)),
            );
            return Ok(Exit::VerificationFailed);
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("`{name}`"))),
    };
    let mut client = connect(&args.dsn)?;
    let run_options = RunOptions {
        models: args.models.clone(),
        statement_timeout_ms: args.statement_timeout_ms,
        lock_timeout_ms: args.lock_timeout_ms,
        require_role: args.require_role_isolation,
        dsn: args.dsn.clone(),
    };
    let cert = replay::run(&mut client, &input, &run_options)?;
    let signers: [&dyn Signer; 1] = [&key];
    let envelope = cert.sign(&signers)?;
    write_new_file(out_path, format!("{}\n", envelope.to_json()).as_bytes())?;
    let done = Done {
        ok: cert.status == Status::Success,
        status: cert.status,
        certificate_file: out_path.display().to_string(),
        signed_by: key.key_id().to_hex(),
        certificate: &cert,
    };
    out.emit(&done, || human(&done));
    Ok(match cert.status {
        Status::Success => Exit::Ok,
        Status::Partial | Status::Failed => Exit::VerificationFailed,
    })
}

fn human(d: &Done<'_>) -> String {
    let c = d.certificate;
    let mut s = format!(
        "replay {}: {} (bundle {}, {} of {} model(s) selected)\n",
        c.status.as_str().to_uppercase(),
        c.bundle.name,
        c.bundle.bundle_id,
        c.summary.selected,
        c.replay_set.models
    );
    let scratch = match &c.scratch_schema {
        Some(x) => format!(
            "scratch schema {x}, rolled back{}",
            if c.scratch_removed {
                " (checked: gone)"
            } else {
                " (STILL PRESENT: run --cleanup)"
            }
        ),
        None => format!("no scratch schema created ({})", c.isolation_note),
    };
    let _ = writeln!(s, "  isolation    {}: {scratch}", c.isolation.as_str());
    for (label, a) in [
        ("before", &c.warehouse.before),
        ("after", &c.warehouse.after),
    ] {
        if let Some(a) = a {
            let _ = writeln!(
                s,
                "  {label:<12} {} @ {} (cluster {}, timeline {}, snapshot {}), {}",
                a.database, a.lsn, a.system_identifier, a.timeline, a.snapshot, a.clock_timestamp
            );
        }
    }
    let r = &c.replay_set.recorded_anchor;
    let _ = writeln!(
        s,
        "  recorded     {} @ {} (cluster {}), {}",
        r.database, r.lsn, r.system_identifier, r.clock_timestamp
    );
    for m in &c.models {
        let tag = match m.status {
            ModelStatus::Match => "match",
            ModelStatus::Mismatch => "MISMATCH",
            ModelStatus::Skipped => "skipped",
            ModelStatus::Error => "ERROR",
        };
        let _ = writeln!(
            s,
            "  {tag:<9} {} -> {} ({})",
            m.unique_id, m.relation, m.materialization
        );
        for reason in &m.reasons {
            let _ = writeln!(s, "              {reason}");
        }
    }
    for n in &c.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    let _ = writeln!(
        s,
        "  summary      {} match, {} mismatch, {} skipped, {} error",
        c.summary.matched, c.summary.mismatched, c.summary.skipped, c.summary.errors
    );
    let _ = writeln!(
        s,
        "  certificate  {} (signed by {}; {})",
        d.certificate_file,
        d.signed_by,
        replay::PREDICATE_TYPE
    );
    s
}
