//! `clyra warehouse snowflake anchor` and `clyra warehouse snowflake reconcile`.
//!
//! Wiring only: the SQL API client, anchors and reconciliation live in
//! `clyra_warehouse::snowflake`. This module builds credentials from files, reads and writes
//! anchors files, and maps a mismatch to exit 2.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clyra_warehouse::snowflake::anchor::{self, Context};
use clyra_warehouse::snowflake::api::{Client, Options};
use clyra_warehouse::snowflake::reconcile::{self, Summary};
use clyra_warehouse::snowflake::{
    AnchorSet, AnchorStatus, Credentials, KeyPair, OAuthToken, SnowflakeAnchor,
};
use serde::Serialize;

use crate::command::{display_name, read_input, write_new_file};
use crate::output::{Exit, Output};

/// `clyra warehouse snowflake ...`.
#[derive(Debug, clap::Subcommand)]
pub enum SnowflakeCommand {
    /// Take a Snowflake anchor: run one session-context statement and record its query id.
    #[command(
        after_help = "Runs one SELECT of CURRENT_ACCOUNT(), CURRENT_SESSION(), \
CURRENT_WAREHOUSE(), CURRENT_ROLE(), CURRENT_DATABASE(), CURRENT_SCHEMA() and CURRENT_TIMESTAMP() \
through the SQL API (POST /api/v2/statements; no table is read) and writes an anchors file \
(canonical JSON) whose query id is that statement's handle. The anchor is provisional: \
ACCOUNT_USAGE.QUERY_HISTORY shows the query 45 min to 3 h later; confirm it then with \
`clyra warehouse snowflake reconcile`. Key-pair auth signs a JWT (RS256) with an unencrypted \
PKCS#8 key file readable only by you; OAuth sends the token in --oauth-token-file. Docs: \
docs/warehouses/snowflake.md.\n\n\
Examples:\n  clyra warehouse snowflake anchor --account myorg-myaccount --user CI_BOT \
--private-key ~/.snowflake/rsa_key.p8 \\\n    --warehouse TRANSFORM_WH --role TRANSFORMER \
--out anchors/run-42.json\n  clyra warehouse snowflake anchor --account xy12345.us-east-2.aws \
--oauth-token-file token.txt --out a.json"
    )]
    Anchor(AnchorArgs),
    /// Reconcile anchors with SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY (exit 2 on a mismatch).
    #[command(
        after_help = "Reads the anchors files, sends one QUERY_HISTORY query (per 1,000 \
anchors) with the query ids as bound parameters, and writes every anchor with its new status: \
confirmed (same session, user, role, warehouse, database, schema; SUCCESS; end time within \
--tolerance-secs), mismatch (the differing fields are named), provisional (not visible yet and \
younger than the documented 3 h lag) or missing (older than 3 h and not visible). Only query \
metadata is read: never QUERY_TEXT, never table rows. Confirmed and mismatched anchors are kept \
as they are unless --recheck. The role needs IMPORTED PRIVILEGES on the SNOWFLAKE database.\n\n\
Exit codes: 0 no mismatch (provisional and missing anchors included), 1 error, 2 a mismatch.\n\n\
Example:\n  clyra warehouse snowflake reconcile --account myorg-myaccount --user AUDITOR \
--private-key auditor.p8 \\\n    --role AUDIT --warehouse AUDIT_WH --anchors anchors/run-42.json \
--out anchors/run-42.reconciled.json"
    )]
    Reconcile(ReconcileArgs),
}

/// How to authenticate: one of the two.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct AuthArgs {
    /// Key-pair authentication: unencrypted PKCS#8 PEM RSA private key, mode 0600 (needs --user).
    #[arg(long, value_name = "FILE", requires = "user")]
    pub private_key: Option<PathBuf>,
    /// OAuth: a file holding the access token, mode 0600.
    #[arg(long, value_name = "FILE")]
    pub oauth_token_file: Option<PathBuf>,
}

/// The account, credentials and session context.
#[derive(Debug, clap::Args)]
pub struct ConnArgs {
    /// Account identifier: `myorg-myaccount` or an account locator such as `xy12345.us-east-2.aws`.
    #[arg(long)]
    pub account: String,
    /// Login name (for key-pair authentication).
    #[arg(long)]
    pub user: Option<String>,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Warehouse for the statement (default: the user's default).
    #[arg(long)]
    pub warehouse: Option<String>,
    /// Role for the statement (default: the user's default).
    #[arg(long)]
    pub role: Option<String>,
    /// Database for the statement.
    #[arg(long)]
    pub database: Option<String>,
    /// Schema for the statement.
    #[arg(long)]
    pub schema: Option<String>,
    /// SQL API base URL (default https://<account>.snowflakecomputing.com; plain http only for
    /// 127.0.0.1/localhost, e.g. a local stand-in).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Statement timeout in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
}

/// `clyra warehouse snowflake anchor`.
#[derive(Debug, clap::Args)]
pub struct AnchorArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Where to write the anchors file (refuses to overwrite); `-` for stdout.
    #[arg(long)]
    pub out: PathBuf,
}

/// `clyra warehouse snowflake reconcile`.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Anchors files (from `anchor` or an earlier `reconcile`).
    #[arg(long, required = true, num_args = 1..)]
    pub anchors: Vec<PathBuf>,
    /// Where to write the reconciled anchors (refuses to overwrite); `-` for stdout.
    #[arg(long)]
    pub out: PathBuf,
    /// How far QUERY_HISTORY's END_TIME may be from the anchor's end time, in seconds.
    #[arg(long, default_value_t = 300)]
    pub tolerance_secs: u64,
    /// Query confirmed and mismatched anchors again too.
    #[arg(long)]
    pub recheck: bool,
}

fn client(c: &ConnArgs) -> anyhow::Result<Client> {
    let credentials = match (&c.auth.private_key, &c.auth.oauth_token_file) {
        (Some(key), _) => {
            let user = c
                .user
                .as_deref()
                .context("--user is required with --private-key")?;
            Credentials::KeyPair(Box::new(KeyPair::from_file(&c.account, user, key)?))
        }
        (None, Some(token)) => Credentials::OAuth(OAuthToken::from_file(token)?),
        (None, None) => anyhow::bail!("give --private-key FILE or --oauth-token-file FILE"),
    };
    let options = Options {
        base_url: c.base_url.clone(),
        statement_timeout: Duration::from_secs(c.timeout_secs),
        ..Default::default()
    };
    Ok(Client::new(&c.account, credentials, options)?)
}

fn write_out(path: &std::path::Path, set: &AnchorSet) -> anyhow::Result<()> {
    let bytes = set.to_canonical_json()?;
    if path.as_os_str() == "-" {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&bytes)
            .and_then(|()| stdout.write_all(b"\n"))
            .and_then(|()| stdout.flush())
            .context("cannot write the anchors to stdout")?;
        return Ok(());
    }
    write_new_file(path, &bytes)
}

#[derive(Serialize)]
struct AnchorReport<'a> {
    ok: bool,
    out: String,
    anchor: &'a SnowflakeAnchor,
}

#[derive(Serialize)]
struct ReconcileReport<'a> {
    ok: bool,
    out: String,
    summary: Summary,
    anchors: &'a [SnowflakeAnchor],
}

pub fn run(cmd: SnowflakeCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        SnowflakeCommand::Anchor(args) => run_anchor(args, out),
        SnowflakeCommand::Reconcile(args) => run_reconcile(args, out),
    }
}

fn context_line(a: &SnowflakeAnchor) -> String {
    let v = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    format!(
        "warehouse {}, role {}, database {}, schema {}",
        v(&a.warehouse),
        v(&a.role),
        v(&a.database),
        v(&a.schema)
    )
}

fn run_anchor(args: AnchorArgs, out: &Output) -> anyhow::Result<Exit> {
    let c = client(&args.conn)?;
    let ctx = Context {
        warehouse: args.conn.warehouse.clone(),
        role: args.conn.role.clone(),
        database: args.conn.database.clone(),
        schema: args.conn.schema.clone(),
    };
    let a = anchor::capture(&c, &ctx)?;
    let set = AnchorSet::new(vec![a]);
    write_out(&args.out, &set)?;
    if args.out.as_os_str() == "-" {
        return Ok(Exit::Ok);
    }
    let a = &set.anchors[0];
    let report = AnchorReport {
        ok: true,
        out: args.out.display().to_string(),
        anchor: a,
    };
    out.emit(&report, || {
        let mut s = format!(
            "snowflake anchor {}: query {} ({})\n",
            report.out,
            a.query_id,
            a.status.as_str()
        );
        let _ = writeln!(
            s,
            "  account   {}{}, user {}, session {}",
            a.account,
            a.region
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            a.user,
            a.session_id
        );
        let _ = writeln!(s, "  context   {}", context_line(a));
        let _ = writeln!(
            s,
            "  time      statement {}, answered {}",
            a.statement_time, a.end_time
        );
        let _ = writeln!(
            s,
            "  next      QUERY_HISTORY shows it 45 min to 3 h later: clyra warehouse snowflake reconcile --anchors {} ...",
            report.out
        );
        s
    });
    Ok(Exit::Ok)
}

fn run_reconcile(args: ReconcileArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut anchors: Vec<SnowflakeAnchor> = Vec::new();
    let mut from: BTreeMap<String, String> = BTreeMap::new();
    for path in &args.anchors {
        let name = display_name(path);
        let bytes = read_input(path)?;
        let set = AnchorSet::from_json(&bytes).with_context(|| format!("`{name}`"))?;
        for a in set.anchors {
            let key = a.query_id.to_ascii_lowercase();
            if let Some(first) = from.insert(key, name.clone()) {
                anyhow::bail!(
                    "query id {} is in both `{first}` and `{name}`; give each anchor once",
                    a.query_id
                );
            }
            anchors.push(a);
        }
    }
    let c = client(&args.conn)?;
    let options = reconcile::Options {
        end_time_tolerance: Duration::from_secs(args.tolerance_secs),
        recheck: args.recheck,
        now: None,
    };
    let summary = reconcile::reconcile(&c, &mut anchors, &options)?;
    let set = AnchorSet::new(anchors);
    write_out(&args.out, &set)?;
    let exit = if summary.mismatch > 0 {
        Exit::VerificationFailed
    } else {
        Exit::Ok
    };
    if args.out.as_os_str() == "-" {
        return Ok(exit);
    }
    let report = ReconcileReport {
        ok: summary.mismatch == 0,
        out: args.out.display().to_string(),
        summary,
        anchors: &set.anchors,
    };
    out.emit(&report, || {
        let mut s = format!(
            "reconciled {} anchor{} -> {}: {} confirmed, {} mismatch, {} provisional, {} missing ({} checked in {} QUERY_HISTORY quer{}, {} already settled)\n",
            set.anchors.len(),
            if set.anchors.len() == 1 { "" } else { "s" },
            report.out,
            summary.confirmed,
            summary.mismatch,
            summary.provisional,
            summary.missing,
            summary.checked,
            summary.queries,
            if summary.queries == 1 { "y" } else { "ies" },
            summary.skipped
        );
        for a in &set.anchors {
            let _ = writeln!(s, "  {:<11} {}", a.status.as_str(), a.query_id);
            if let Some(r) = &a.reconciliation {
                match a.status {
                    AnchorStatus::Mismatch => {
                        for m in &r.mismatches {
                            let _ = writeln!(
                                s,
                                "              {}: anchor {}, QUERY_HISTORY {}",
                                m.field,
                                m.anchor.as_deref().unwrap_or("NULL"),
                                m.query_history.as_deref().unwrap_or("NULL")
                            );
                        }
                    }
                    AnchorStatus::Confirmed => {
                        if let Some(q) = &r.query_history {
                            let n = |x: Option<u64>| x.map_or("-".into(), |v| v.to_string());
                            let _ = writeln!(
                                s,
                                "              {} {}, hash {}, rows +{} ~{} -{}",
                                q.query_type.as_deref().unwrap_or("?"),
                                q.end_time.as_deref().unwrap_or("?"),
                                q.query_hash.as_deref().unwrap_or("-"),
                                n(q.rows_inserted),
                                n(q.rows_updated),
                                n(q.rows_deleted)
                            );
                        }
                    }
                    AnchorStatus::Provisional | AnchorStatus::Missing => {
                        let _ = writeln!(s, "              {}", r.note);
                    }
                }
            }
        }
        s
    });
    Ok(exit)
}
