//! `clyra warehouse install-guards`, `uninstall-guards`, `guards status` and `grant`.
//!
//! Wiring only: the guard (SQL and its Rust API) lives in `clyra_warehouse::guard`, token checks
//! and single use in `clyra_policy::approvals`. `grant` redeems the resume token and registers
//! its digest in one database transaction, committed only after the journal accepted the
//! redemption, so a token never becomes a grant without being used up.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clyra_evidence::keys::{read_public_key_file, PublicKey};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::Digest;
use clyra_policy::approvals::{token, ApprovalError, Approvals, Keys};
use clyra_policy::model::Mode as PolicyMode;
use clyra_warehouse::guard::{self, Grant, GuardPayload, InstallOptions, Mode, Rule};
use clyra_warehouse::pg;
use serde_json::json;

use crate::command::approvals::{read_json, refused};
use crate::command::display_name;
use crate::command::policy::load_policy;
use crate::command::warehouse::connect;
use crate::output::{Exit, Output};

/// `clyra warehouse install-guards`.
#[derive(Debug, clap::Args)]
pub struct InstallGuardsArgs {
    /// Connection string: postgres://USER[:PASSWORD]@HOST:PORT/DB or libpq `key=value` pairs.
    #[arg(long)]
    pub dsn: String,
    /// The policy file: thresholds from data_platform.warehouse_guard (max_rows_affected,
    /// max_percent_affected, checkpoint); its mode (enforce or shadow).
    #[arg(long)]
    pub policy: PathBuf,
    /// Tables to guard: globs on `schema.table` (`*` any run, `?` one character); comma-separated
    /// or repeated, first match wins. Default: every table (`*`).
    #[arg(long, value_name = "TABLE_GLOB", value_delimiter = ',')]
    pub tables: Vec<String>,
    /// A role allowed to register approvals (EXECUTE on clyra_guard.register_grant), i.e. the
    /// role `clyra warehouse grant` connects as. Repeatable.
    #[arg(long = "granter", value_name = "ROLE")]
    pub granters: Vec<String>,
}

/// `clyra warehouse uninstall-guards`.
#[derive(Debug, clap::Args)]
pub struct UninstallGuardsArgs {
    /// Connection string.
    #[arg(long)]
    pub dsn: String,
}

/// `clyra warehouse guards ...`.
#[derive(Debug, clap::Subcommand)]
pub enum GuardsCommand {
    /// What is installed: version, rules, guarded tables, event triggers, blocks, grants, events.
    #[command(
        after_help = "Tables a rule matches that lack their guard (recreated by dbt \
without the event trigger or the post-hook) are listed as unguarded. Blocked statements cannot \
be written to clyra_guard.events (the error rolls the transaction back): they are counted by a \
sequence and logged by the server with SQLSTATE YG001-YG004.\n\n\
Example:\n  clyra warehouse guards status --dsn postgres://postgres@127.0.0.1:5432/prod --events 5"
    )]
    Status {
        /// Connection string.
        #[arg(long)]
        dsn: String,
        /// How many recent audit events to list.
        #[arg(long, default_value_t = 20)]
        events: u32,
    },
}

/// `clyra warehouse grant`.
#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    /// Connection string (a role given to install-guards as --granter, or the guard's owner).
    #[arg(long)]
    pub dsn: String,
    #[command(flatten)]
    pub token: crate::command::approvals::TokenArgs,
    /// The approved payload (JSON file); its `warehouse_guard` member says which tables,
    /// operations and how many rows.
    #[arg(long)]
    pub payload: PathBuf,
    /// The policy file (approvals section; data_platform.warehouse_guard.checkpoint).
    #[arg(long)]
    pub policy: PathBuf,
    /// The journal store holding the approvals: sqlite:DIR or postgres://...
    #[arg(long)]
    pub approvals_store: String,
    /// The tenant whose journal holds the approval.
    #[arg(long)]
    pub tenant: String,
    /// The approvals public key (SPKI PEM). Repeatable.
    #[arg(long = "public-key")]
    pub public_keys: Vec<PathBuf>,
    /// A trust file: its keys valid now verify the token (instead of, or besides, --public-key).
    #[arg(long)]
    pub trust: Option<PathBuf>,
}

fn rules_from_policy(
    policy: &clyra_policy::Policy,
    tables: &[String],
) -> anyhow::Result<(Vec<Rule>, Vec<String>)> {
    let dp = policy.data_platform.as_ref();
    let wg = dp
        .and_then(|d| d.warehouse_guard.as_ref())
        .context("the policy has no data_platform.warehouse_guard section: nothing to install")?;
    let mode = match dp.and_then(|d| d.mode).unwrap_or_else(|| policy.mode()) {
        PolicyMode::Enforce => Mode::Enforce,
        PolicyMode::Shadow => Mode::Shadow,
    };
    let mut notes = Vec::new();
    if !wg.protected_schemas.is_empty() {
        notes.push(format!(
            "data_platform.warehouse_guard.protected_schemas ({}) is checked by the policy \
             decision (gateway, `clyra policy eval`), not by the database guard",
            wg.protected_schemas.join(", ")
        ));
    }
    let globs = if tables.is_empty() {
        vec!["*".to_string()]
    } else {
        tables.to_vec()
    };
    let rules = globs
        .into_iter()
        .map(|g| Rule {
            table_glob: g.trim().to_string(),
            max_rows: wg.max_rows_affected,
            max_percent: wg.max_percent_affected,
            mode,
            checkpoint: wg.checkpoint.clone(),
        })
        .collect();
    Ok((rules, notes))
}

fn threshold_text(max_rows: Option<String>, max_percent: Option<String>) -> String {
    let mut parts = Vec::new();
    if let Some(r) = max_rows {
        parts.push(format!("max_rows {r}"));
    }
    if let Some(p) = max_percent {
        parts.push(format!("max_percent {p}%"));
    }
    parts.join(", ")
}

pub fn install(a: InstallGuardsArgs, out: &Output) -> anyhow::Result<Exit> {
    let (policy, hash) = load_policy(&a.policy)?;
    let (rules, notes) = rules_from_policy(&policy, &a.tables)?;
    let mut client = connect(&a.dsn)?;
    let mut settings = std::collections::BTreeMap::new();
    settings.insert("policy".to_string(), policy.metadata.name.clone());
    settings.insert("policy_hash".to_string(), hash.clone());
    let report = guard::install(
        &mut client,
        &InstallOptions {
            rules,
            granters: a.granters,
            settings,
        },
    )
    .with_context(|| format!("cannot install the guard in `{}`", pg::redact(&a.dsn)))?;
    let doc = json!({"ok": true, "report": &report, "policy_hash": hash, "notes": notes});
    out.emit(&doc, || {
        let mut s = format!(
            "{} {} ({})\n",
            if report.upgraded {
                "updated"
            } else {
                "installed"
            },
            report.version,
            pg::redact(&a.dsn)
        );
        for r in &report.rules {
            let _ = writeln!(
                s,
                "  rule     {}: {} ({}{})",
                r.table_glob,
                threshold_text(
                    r.max_rows.map(|m| m.to_string()),
                    r.max_percent.map(|p| p.to_string())
                ),
                r.mode.as_str(),
                r.checkpoint
                    .as_deref()
                    .map(|c| format!(", checkpoint {c}"))
                    .unwrap_or_default()
            );
        }
        let count = |what: &str| report.tables.iter().filter(|t| t.result == what).count();
        let _ = writeln!(
            s,
            "  tables   {} attached, {} already guarded, {} detached",
            count("attached"),
            count("guarded"),
            count("detached")
        );
        for t in &report.tables {
            let _ = writeln!(s, "           {:<9} {}", t.result, t.table);
        }
        match &report.event_triggers_note {
            None => s.push_str(
                "  ddl      event triggers installed: tables dbt recreates get their guard back\n",
            ),
            Some(n) => {
                let _ = writeln!(s, "  ddl      NOT installed: {n}");
            }
        }
        if !report.granters.is_empty() {
            let _ = writeln!(
                s,
                "  granters {} may register approvals",
                report.granters.join(", ")
            );
        }
        for n in &notes {
            let _ = writeln!(s, "  note     {n}");
        }
        s
    });
    Ok(Exit::Ok)
}

pub fn uninstall(a: UninstallGuardsArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut client = connect(&a.dsn)?;
    let r = guard::uninstall(&mut client)
        .with_context(|| format!("cannot uninstall the guard in `{}`", pg::redact(&a.dsn)))?;
    out.emit(&json!({"ok": true, "report": &r}), || {
        if r.was_installed {
            format!(
                "uninstalled clyra_guard: {} guard triggers, {} grants and {} audit events removed\n",
                r.triggers, r.grants, r.events
            )
        } else {
            "no guard was installed; nothing to remove\n".to_string()
        }
    });
    Ok(Exit::Ok)
}

pub fn run_guards(cmd: GuardsCommand, out: &Output) -> anyhow::Result<Exit> {
    let GuardsCommand::Status { dsn, events } = cmd;
    let mut client = connect(&dsn)?;
    let st = guard::status(&mut client, i64::from(events))
        .with_context(|| format!("cannot read the guard in `{}`", pg::redact(&dsn)))?;
    out.emit(&st, || {
        let Some(version) = &st.version else {
            return format!(
                "no guard installed in {} (clyra warehouse install-guards installs one)\n",
                pg::redact(&dsn)
            );
        };
        let set = |k: &str| st.settings.get(k).map(String::as_str).unwrap_or("?");
        let mut s = format!(
            "guard      {version}, installed {} by {}; policy {} {}\n",
            set("installed_at"),
            set("installed_by"),
            set("policy"),
            set("policy_hash")
        );
        for r in &st.rules {
            let _ = writeln!(
                s,
                "rule       {}: {} ({}{})",
                r.table_glob,
                threshold_text(r.max_rows.map(|m| m.to_string()), r.max_percent.clone()),
                r.mode,
                r.checkpoint
                    .as_deref()
                    .map(|c| format!(", checkpoint {c}"))
                    .unwrap_or_default()
            );
        }
        if st.event_triggers.is_empty() {
            s.push_str(
                "ddl        no event triggers (they need a superuser): recreated tables need \
                 `select clyra_guard.reattach('schema.table')` (dbt post-hook)\n",
            );
        } else {
            let _ = writeln!(s, "ddl        event triggers {}", st.event_triggers.join(", "));
        }
        let _ = writeln!(
            s,
            "guarded    {} table{}{}",
            st.guarded.len(),
            if st.guarded.len() == 1 { "" } else { "s" },
            if st.guarded.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    st.guarded
                        .iter()
                        .map(|g| if g.disabled > 0 {
                            format!("{} ({} trigger(s) DISABLED)", g.table, g.disabled)
                        } else {
                            g.table.clone()
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        if !st.unguarded.is_empty() {
            let _ = writeln!(
                s,
                "UNGUARDED  {} (a rule matches, the guard is missing: run install-guards or reattach)",
                st.unguarded.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "blocked    {} statement{} since install (server log: SQLSTATE YG001-YG004)",
            st.blocked_statements,
            if st.blocked_statements == 1 { "" } else { "s" }
        );
        let _ = writeln!(s, "grants     {} open", st.open_grants.len());
        for g in &st.open_grants {
            let _ = writeln!(
                s,
                "  {}  {} {} up to {} rows, until {}",
                g.approval_id,
                g.table,
                g.operations.join("/"),
                g.max_rows,
                g.expires_at
            );
        }
        let _ = writeln!(s, "events     {} shown, newest first", st.recent_events.len());
        for e in &st.recent_events {
            let _ = writeln!(
                s,
                "  {}  {:<7} {} {} rows on {} ({}){}  user {}{}{}",
                e.at,
                e.decision,
                e.operation,
                e.rows,
                e.table,
                e.threshold,
                e.approval_id
                    .as_deref()
                    .map(|a| format!("  approval {a}"))
                    .unwrap_or_default(),
                e.db_user,
                e.application_name
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .map(|a| format!("  app {a}"))
                    .unwrap_or_default(),
                e.clyra_session
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .map(|a| format!("  session {a}"))
                    .unwrap_or_default()
            );
        }
        s
    });
    Ok(Exit::Ok)
}

fn trusted_keys(a: &GrantArgs) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for path in &a.public_keys {
        keys.push(
            read_public_key_file(path)
                .with_context(|| format!("cannot read public key `{}`", path.display()))?,
        );
    }
    if let Some(path) = &a.trust {
        let trust = TrustStore::read_file(path)
            .with_context(|| format!("cannot read trust file `{}`", path.display()))?;
        keys.extend(
            trust
                .valid_at(jiff::Timestamp::now())
                .map(|k| k.public_key().clone()),
        );
    }
    if keys.is_empty() {
        anyhow::bail!(
            "pass --public-key (the approvals public key) or --trust (a trust file with it)"
        );
    }
    Ok(keys)
}

pub fn grant(a: GrantArgs, out: &Output) -> anyhow::Result<Exit> {
    match grant_inner(&a, out) {
        Ok(exit) => Ok(exit),
        Err(e) => match e.downcast_ref::<ApprovalError>() {
            Some(r) if r.is_refusal() => {
                refused(r, out);
                Ok(Exit::Blocked)
            }
            Some(r) => Err(anyhow::anyhow!("{}: {r}", r.code())),
            None => Err(e),
        },
    }
}

fn grant_inner(a: &GrantArgs, out: &Output) -> anyhow::Result<Exit> {
    let token_text = a.token.read()?;
    // Cheap checks first: a bad payload or table must not use the token up.
    let payload = read_json(&a.payload)?;
    let approved =
        GuardPayload::from_payload(&payload).with_context(|| display_name(&a.payload))?;
    let (policy, hash) = load_policy(&a.policy)?;
    let checkpoint = policy
        .data_platform
        .as_ref()
        .and_then(|d| d.warehouse_guard.as_ref())
        .and_then(|w| w.checkpoint.clone());
    let keys = trusted_keys(a)?;
    let claims = token::open(&token_text, &keys)?;

    let mut client = connect(&a.dsn)?;
    let mut tx = client.transaction().context("cannot begin a transaction")?;
    let grant = Grant {
        token_sha256: *Digest::sha256(token_text.as_bytes()).as_bytes(),
        approval_id: claims.approval_id.clone(),
        token_id: claims.token_id.clone(),
        checkpoint: claims.checkpoint.clone(),
        approvers: claims.approvers.clone(),
        expires_at: claims.exp.clone(),
        payload: approved.clone(),
    };
    let rows = match guard::register_grant(&mut tx, &grant) {
        Ok(rows) => rows,
        Err(clyra_warehouse::Error::Query {
            message,
            sqlstate: Some(code),
            ..
        }) if code == guard::sqlstate::APPROVAL_USED
            || code == guard::sqlstate::APPROVAL_EXPIRED =>
        {
            if out.is_json() {
                out.emit(
                    &json!({"ok": false, "refused": true, "code": "G_GRANT_REFUSED", "message": message}),
                    String::new,
                );
            } else {
                eprintln!("refused (G_GRANT_REFUSED): {message}");
            }
            return Ok(Exit::Blocked);
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot register the approval in `{}`",
                pg::redact(&a.dsn)
            )))
        }
    };

    let store = clyra_journal::open(&a.approvals_store).with_context(|| {
        format!(
            "cannot open the journal store `{}`",
            clyra_journal::postgres::redact_url(&a.approvals_store)
        )
    })?;
    let mut svc = Approvals::new(
        store,
        policy.approvals.as_ref(),
        Keys::verify_only(keys),
        hash,
    )?;
    let redeemed = svc.redeem(
        &a.tenant,
        &token_text,
        &payload,
        checkpoint.as_deref(),
        jiff::Timestamp::now(),
    )?;
    tx.commit().map_err(|e| {
        anyhow::anyhow!(
            "approval {} was redeemed (used up in the journal) but registering it in `{}` failed \
             at commit: {e}; request a new approval",
            redeemed.approval_id,
            pg::redact(&a.dsn)
        )
    })?;

    let ops: Vec<&str> = approved.operations.iter().map(|o| o.as_str()).collect();
    let doc = json!({
        "ok": true,
        "approval_id": redeemed.approval_id,
        "token_id": redeemed.token_id,
        "checkpoint": redeemed.checkpoint,
        "approvers": redeemed.approvers,
        "payload_sha256": redeemed.payload_sha256,
        "journal_seq": redeemed.seq,
        "expires_at": claims.exp,
        "operations": ops,
        "max_rows": approved.max_rows,
        "grants": rows,
    });
    out.emit(&doc, || {
        let mut s = format!(
            "granted: approval {} ({}, approved by {}) redeemed; {} on {} up to {} rows, once per \
             table, until {}\n",
            redeemed.approval_id,
            redeemed.checkpoint,
            redeemed.approvers.join(" and "),
            ops.join("/"),
            rows.iter()
                .map(|r| r.table.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            approved.max_rows,
            claims.exp
        );
        for r in rows.iter().filter(|r| !r.guarded) {
            let _ = writeln!(
                s,
                "note: no guard rule matches {}: statements on it need no approval",
                r.table
            );
        }
        s.push_str(
            "run the statement in the same transaction as: SET LOCAL clyra.approval = '<the resume token>'\n",
        );
        s
    });
    Ok(Exit::Ok)
}

/// `install-guards --help` text after the options.
pub const INSTALL_HELP: &str = "Installs, in one transaction, the clyra_guard schema: rules \
(one per --tables glob, thresholds from the policy's data_platform.warehouse_guard), \
statement triggers on every matching table (AFTER UPDATE and AFTER DELETE counting the old \
rows, BEFORE TRUNCATE), the audit table, and, when the role is a superuser, event triggers that \
put the guard back on tables dbt recreates. A statement touching more than max_rows_affected \
rows, or more than max_percent_affected percent of the table's rows, fails with SQLSTATE YG001 \
unless the transaction runs SET LOCAL clyra.approval = '<resume token>' for an approval \
`clyra warehouse grant` registered. Running it again replaces the rules and re-syncs the \
triggers; grants and events stay. Docs: docs/warehouses/guards.md.\n\n\
Examples:\n  clyra warehouse install-guards --dsn postgres://postgres@127.0.0.1:5432/prod \\\n    \
--policy policy.yaml --tables 'analytics.*,finance.ledger' --granter clyra_approvals\n  \
clyra warehouse guards status --dsn postgres://postgres@127.0.0.1:5432/prod";

/// `grant --help` text after the options.
pub const GRANT_HELP: &str = "Checks the resume token (signature by a trusted key, tenant, the \
checkpoint data_platform.warehouse_guard.checkpoint names, expiry, the payload's canonical \
digest, the journal's grant) and uses it up in the journal exactly as `clyra approvals redeem` \
does, then registers the token's SHA-256 (never the token) in clyra_guard.grants for the \
payload's tables, operations and row limit, until the token's expiry. The database row is \
committed only after the journal accepted the redemption. Then, in the session that runs the \
change: BEGIN; SET LOCAL clyra.approval = '<resume token>'; UPDATE ...; COMMIT. Each table's \
grant lets one statement through. Refusals exit 3 with the approvals code (A_TOKEN_REUSED, \
A_PAYLOAD_MISMATCH, ...).\n\n\
The payload's warehouse_guard member:\n  {\"change\": \"CHG-1042\", \"warehouse_guard\": \
{\"tables\": [\"analytics.orders\"], \"operations\": [\"update\"], \"max_rows\": 1000}}\n\n\
Example:\n  clyra warehouse grant --dsn postgres://clyra_approvals@db/prod --token-file token.txt \
\\\n    --payload change.json --policy policy.yaml --tenant acme \\\n    \
--approvals-store sqlite:.clyra/journal --public-key keys/approvals.pub";
