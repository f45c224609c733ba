//! `clyra approvals`: request, list, show, approve, reject and redeem human approvals.
//!
//! Wiring only: the workflow, tokens and the two-person rule live in
//! `clyra_policy::approvals`. This module reads files and keys, posts webhook notices (the
//! policy layer does no HTTP) and maps refusals to exit 3.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clyra_evidence::jcs;
use clyra_evidence::keys::{read_private_key_file, read_public_key_file};
use clyra_journal::entry::format_timestamp;
use clyra_policy::approvals::{
    notice, ActionSummary, Approval, ApprovalError, Approvals, Keys, Notice, NoticeStatus,
    Notifier, Outcome, Status,
};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::command::{display_name, read_input};
use crate::output::{Exit, Output};

/// The approvals commands.
#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCommand {
    /// Pause an action at a checkpoint: record a pending approval and print its id.
    #[command(
        after_help = "Records approval.requested with the SHA-256 of the payload's \
canonical JSON (RFC 8785; the payload itself is not stored) and posts a signed notice to the \
policy's approvals.webhook, if any (HMAC key from the variable webhook.secret_env names). A failed \
notice is recorded as approval.notify_failed and does not fail the request.\n\n\
Example:\n  clyra approvals request --store sqlite:.clyra/journal --tenant acme --policy policy.json \\\n    \
--key keys/approvals.key --checkpoint promote --requester user:dev@acme.example \\\n    \
--payload change.json --tool dbt.deploy\n  apr_5f0c…  pending  promote  needs 2 approvals (two-person)  expires …"
    )]
    Request(RequestArgs),
    /// List approvals, oldest first (optionally only one status).
    #[command(after_help = "Listing notices expired deadlines and records them \
(approval.expired), so it needs the journal to be writable.\n\n\
Example:\n  clyra approvals list --store sqlite:.clyra/journal --tenant acme --policy policy.json \\\n    \
--key keys/approvals.key --status pending")]
    List(ListArgs),
    /// Show one approval and every journal entry of it.
    #[command(
        after_help = "Example:\n  clyra approvals show apr_5f0c… --store sqlite:.clyra/journal \
--tenant acme \\\n    --policy policy.json --key keys/approvals.key --format json"
    )]
    Show(ShowArgs),
    /// Approve as IDENTITY; prints the resume token once enough approvers have approved.
    #[command(
        after_help = "Refused (exit 3, with a code) when IDENTITY requested the \
approval (A_SELF_APPROVAL, always, two-person rule or not), matches none of the checkpoint's \
approver globs (A_NOT_APPROVER), already approved it (A_DUPLICATE_APPROVER), or the approval is \
not pending (A_NOT_PENDING, A_EXPIRED). On the command line --as is asserted by whoever can write \
the journal store and holds the key: restrict both (docs/approvals.md, trust model).\n\n\
Example:\n  clyra approvals approve apr_5f0c… --as user:ann@acme.example --comment 'reviewed diff' \\\n    \
--store sqlite:.clyra/journal --tenant acme --policy policy.json --key keys/approvals.key"
    )]
    Approve(ApproveArgs),
    /// Reject as IDENTITY (one rejection ends it; rejecting a granted approval revokes its token).
    #[command(after_help = "IDENTITY must be an approver of the checkpoint, or the \
requester withdrawing the request.\n\n\
Example:\n  clyra approvals reject apr_5f0c… --as user:bo@acme.example --reason 'wrong target' \\\n    \
--store sqlite:.clyra/journal --tenant acme --policy policy.json --key keys/approvals.key")]
    Reject(RejectArgs),
    /// Print the resume token of a granted approval again (for the requester waiting on it).
    #[command(
        after_help = "Example:\n  clyra approvals token apr_5f0c… --store sqlite:.clyra/journal \
--tenant acme \\\n    --policy policy.json --key keys/approvals.key"
    )]
    Token(ShowArgs),
    /// Check a resume token against a payload and use it up (exit 0 accepted, 3 refused).
    #[command(
        after_help = "Accepted once, for the approved payload (compared by the \
SHA-256 of its canonical JSON, so key order and number spelling do not matter), before the token \
expires; every other case is refused with a code: A_TOKEN_MALFORMED, A_TOKEN_SIGNATURE, \
A_TOKEN_TENANT, A_CHECKPOINT_MISMATCH, A_TOKEN_EXPIRED, A_PAYLOAD_MISMATCH, A_TOKEN_UNKNOWN, \
A_NOT_PENDING (revoked), A_TOKEN_REUSED. --public-key is enough here.\n\n\
Example:\n  clyra approvals redeem --token-file token.txt --payload change.json --checkpoint promote \\\n    \
--store sqlite:.clyra/journal --tenant acme --policy policy.json --public-key keys/approvals.pub"
    )]
    Redeem(RedeemArgs),
}

/// Options every approvals command takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The journal store: sqlite:DIR or postgres://USER@HOST:PORT/DB[?schema=NAME].
    #[arg(long)]
    pub store: String,
    /// The tenant whose journal holds the approvals.
    #[arg(long)]
    pub tenant: String,
    /// The policy file (its `approvals` section; JSON).
    #[arg(long)]
    pub policy: PathBuf,
    /// The approvals signing key (PKCS#8 PEM, e.g. from `clyra keys generate`): signs tokens and
    /// the journal entries that grant.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A public key (SPKI PEM) to verify with instead of --key, or besides it (an earlier key
    /// during rotation). Repeatable.
    #[arg(long = "public-key")]
    pub public_keys: Vec<PathBuf>,
}

/// `clyra approvals request`.
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    #[command(flatten)]
    pub common: Common,
    /// The checkpoint (an id from the policy's approvals.checkpoints).
    #[arg(long)]
    pub checkpoint: String,
    /// Who asks, e.g. user:dev@acme.example or agent:copilot.
    #[arg(long)]
    pub requester: String,
    /// The exact payload to approve (JSON file, `-` for stdin).
    #[arg(long)]
    pub payload: PathBuf,
    /// The action's kind.
    #[arg(long, default_value = "change.request")]
    pub action_kind: String,
    /// The gateway route the action takes.
    #[arg(long)]
    pub route: Option<String>,
    /// The tool the action calls.
    #[arg(long)]
    pub tool: Option<String>,
    /// The rule that required the approval.
    #[arg(long)]
    pub rule: Option<String>,
}

/// `clyra approvals list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only approvals with this status: pending, granted, rejected, expired or used.
    #[arg(long)]
    pub status: Option<Status>,
}

/// `clyra approvals show` and `token`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The approval id.
    pub id: String,
    #[command(flatten)]
    pub common: Common,
}

/// `clyra approvals approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The approval id.
    pub id: String,
    #[command(flatten)]
    pub common: Common,
    /// The approver's identity.
    #[arg(long = "as", value_name = "IDENTITY")]
    pub identity: String,
    /// A comment kept with the approval.
    #[arg(long)]
    pub comment: Option<String>,
}

/// `clyra approvals reject`.
#[derive(Debug, clap::Args)]
pub struct RejectArgs {
    /// The approval id.
    pub id: String,
    #[command(flatten)]
    pub common: Common,
    /// The rejecting identity.
    #[arg(long = "as", value_name = "IDENTITY")]
    pub identity: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
}

/// Where a resume token comes from: `--token` or `--token-file` (one of them).
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The resume token.
    #[arg(
        long,
        conflicts_with = "token_file",
        required_unless_present = "token_file"
    )]
    pub token: Option<String>,
    /// A file holding the resume token (`-` for stdin); keeps it out of the process list.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token text, trimmed.
    pub fn read(&self) -> anyhow::Result<String> {
        match (&self.token, &self.token_file) {
            (Some(t), _) => Ok(t.trim().to_string()),
            (None, Some(path)) => Ok(String::from_utf8(read_input(path)?)
                .map_err(|_| anyhow::anyhow!("{}: not text", display_name(path)))?
                .trim()
                .to_string()),
            (None, None) => anyhow::bail!("pass --token or --token-file"),
        }
    }
}

/// `clyra approvals redeem`.
#[derive(Debug, clap::Args)]
pub struct RedeemArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub token: TokenArgs,
    /// The payload about to be executed (JSON file, `-` for stdin).
    #[arg(long)]
    pub payload: PathBuf,
    /// Refuse a token for another checkpoint than this one.
    #[arg(long)]
    pub checkpoint: Option<String>,
}

/// Runs an approvals command.
pub fn run(cmd: ApprovalsCommand, out: &Output) -> anyhow::Result<Exit> {
    let result = match cmd {
        ApprovalsCommand::Request(a) => request(a, out),
        ApprovalsCommand::List(a) => list(a, out),
        ApprovalsCommand::Show(a) => show(a, out),
        ApprovalsCommand::Approve(a) => approve(a, out),
        ApprovalsCommand::Reject(a) => reject(a, out),
        ApprovalsCommand::Token(a) => token(a, out),
        ApprovalsCommand::Redeem(a) => redeem(a, out),
    };
    match result {
        Ok(exit) => Ok(exit),
        Err(e) => match e.downcast_ref::<ApprovalError>() {
            Some(a) if a.is_refusal() => {
                refused(a, out);
                Ok(Exit::Blocked)
            }
            Some(a) => Err(anyhow::anyhow!("{}: {a}", a.code())),
            None => Err(e),
        },
    }
}

pub(crate) fn refused(e: &ApprovalError, out: &Output) {
    if out.is_json() {
        out.emit(
            &json!({"ok": false, "refused": true, "code": e.code(), "message": e.to_string()}),
            String::new,
        );
    } else {
        eprintln!("refused ({}): {e}", e.code());
    }
}

use crate::command::policy::load_policy;

fn keys(c: &Common) -> anyhow::Result<Keys> {
    let mut keys = match &c.key {
        Some(path) => {
            let key = read_private_key_file(path)
                .with_context(|| format!("cannot read key `{}`", path.display()))?;
            Keys::signing(Box::new(key))
        }
        None if c.public_keys.is_empty() => {
            anyhow::bail!("pass --key (the approvals signing key) or --public-key (to verify only)")
        }
        None => Keys::verify_only(Vec::new()),
    };
    for path in &c.public_keys {
        let k = read_public_key_file(path)
            .with_context(|| format!("cannot read public key `{}`", path.display()))?;
        keys = keys.trust(k);
    }
    Ok(keys)
}

fn service(c: &Common) -> anyhow::Result<Approvals> {
    let (policy, hash) = load_policy(&c.policy)?;
    let keys = keys(c)?;
    let store = clyra_journal::open(&c.store).with_context(|| {
        format!(
            "cannot open the journal store `{}`",
            clyra_journal::postgres::redact_url(&c.store)
        )
    })?;
    let section = policy.approvals.as_ref();
    let mut svc = Approvals::new(store, section, keys, hash)?;
    if let Some(webhook) = section.and_then(|a| a.webhook.as_ref()) {
        let secret = webhook.secret_env.as_deref().and_then(|var| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(|v| Zeroizing::new(v.into_encoded_bytes()))
        });
        svc = svc.with_notifier(Box::new(HttpNotifier::new()), secret);
    }
    Ok(svc)
}

pub(crate) fn read_json(path: &Path) -> anyhow::Result<Value> {
    let name = display_name(path);
    let bytes = read_input(path)?;
    jcs::parse_strict(&bytes).with_context(|| format!("{name}: not valid JSON"))
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn request(a: RequestArgs, out: &Output) -> anyhow::Result<Exit> {
    let payload = read_json(&a.payload)?;
    let mut svc = service(&a.common)?;
    let action = ActionSummary {
        kind: a.action_kind,
        route: a.route,
        tool: a.tool,
        rule_id: a.rule,
    };
    let p = svc.request(
        &a.common.tenant,
        &a.checkpoint,
        &a.requester,
        &payload,
        &action,
        now(),
    )?;
    out.emit(&p, || {
        let mut s = format!(
            "{}  pending  {}  needs {} approval{}{}  expires {}\n",
            p.approval_id,
            p.checkpoint,
            p.need,
            plural(p.need),
            if p.two_person { " (two-person)" } else { "" },
            format_timestamp(p.expires_at)
        );
        match &p.notice {
            NoticeStatus::NotConfigured => {}
            NoticeStatus::Sent => s.push_str("notice   sent to the approvals webhook\n"),
            NoticeStatus::Failed { reason, recorded } => s.push_str(&format!(
                "notice   NOT delivered: {reason}{}\n",
                if *recorded {
                    " (recorded as approval.notify_failed)"
                } else {
                    ""
                }
            )),
        }
        s
    });
    Ok(Exit::Ok)
}

/// An approval without its history, for lists.
fn summary(v: &Approval) -> Value {
    let mut doc = serde_json::to_value(v).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut doc {
        m.remove("history");
    }
    doc
}

fn list(a: ListArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut svc = service(&a.common)?;
    let views = svc.list(&a.common.tenant, a.status, now())?;
    let docs: Vec<Value> = views.iter().map(summary).collect();
    out.emit(
        &json!({"tenant": a.common.tenant, "approvals": docs}),
        || {
            if views.is_empty() {
                return "no approvals\n".to_string();
            }
            let mut s = format!(
                "{:<36}  {:<8}  {:<16}  {:<9}  {:<24}  {}\n",
                "ID", "STATUS", "CHECKPOINT", "APPROVALS", "REQUESTER", "EXPIRES"
            );
            for v in &views {
                s.push_str(&format!(
                    "{:<36}  {:<8}  {:<16}  {:<9}  {:<24}  {}\n",
                    v.approval_id,
                    v.status,
                    v.checkpoint,
                    format!("{}/{}", v.have(), v.need),
                    v.requester,
                    format_timestamp(v.expires_at)
                ));
            }
            s
        },
    );
    Ok(Exit::Ok)
}

fn describe(v: &Approval) -> String {
    let mut s = format!(
        "approval   {}\nstatus     {}\ncheckpoint {}{}\nrequester  {}\naction     {}{}{}{}\npayload    sha256:{}\npolicy     {}\nrequested  {}\nexpires    {}\napprovals  {}/{}{}\n",
        v.approval_id,
        v.status,
        v.checkpoint,
        if v.two_person { " (two-person)" } else { "" },
        v.requester,
        v.action.kind,
        v.action.route.as_deref().map(|r| format!(" route {r}")).unwrap_or_default(),
        v.action.tool.as_deref().map(|t| format!(" tool {t}")).unwrap_or_default(),
        v.action.rule_id.as_deref().map(|r| format!(" rule {r}")).unwrap_or_default(),
        v.payload_sha256,
        v.policy_hash,
        format_timestamp(v.requested_at),
        format_timestamp(v.expires_at),
        v.have(),
        v.need,
        if v.approvals.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                v.approvals.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>().join(", ")
            )
        }
    );
    if let Some(g) = &v.grant {
        s.push_str(&format!(
            "token      {} expires {}\n",
            g.token_id,
            format_timestamp(g.expires_at)
        ));
    }
    if let Some(r) = &v.rejection {
        s.push_str(&format!("rejected   by {}: {}\n", r.approver, r.reason));
    }
    for f in &v.notify_failures {
        s.push_str(&format!("notice     NOT delivered: {f}\n"));
    }
    s.push_str("history\n");
    for h in &v.history {
        s.push_str(&format!(
            "  seq {:<6} {}  {:<22} {}{}{}\n",
            h.seq,
            h.ts,
            h.kind,
            h.actor.as_deref().unwrap_or("-"),
            if h.signed_by.is_some() {
                "  signed"
            } else {
                ""
            },
            h.note
                .as_deref()
                .map(|n| format!("  [{n}]"))
                .unwrap_or_default()
        ));
    }
    s
}

fn show(a: ShowArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut svc = service(&a.common)?;
    let v = svc.show(&a.common.tenant, &a.id, now())?;
    out.emit(&v, || describe(&v));
    Ok(Exit::Ok)
}

fn approve(a: ApproveArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut svc = service(&a.common)?;
    match svc.approve(
        &a.common.tenant,
        &a.id,
        &a.identity,
        a.comment.as_deref(),
        now(),
    )? {
        Outcome::Pending { have, need, .. } => out.emit(
            &json!({"approval_id": a.id, "status": "pending", "have": have, "need": need}),
            || {
                format!(
                    "recorded: {have} of {need} approvals for {}; waiting for {} more approver{} (not {})",
                    a.id,
                    need - have,
                    plural(need - have),
                    a.identity
                )
            },
        ),
        Outcome::Granted { token, approval } => out.emit(
            &json!({"approval_id": a.id, "status": "granted", "token": token.token, "claims": token.claims}),
            || {
                format!(
                    "granted {} by {}; the resume token (single use, for this payload, until {}):\n{}",
                    approval.approval_id,
                    token.claims.approvers.join(" and "),
                    token.claims.exp,
                    token.token
                )
            },
        ),
    }
    Ok(Exit::Ok)
}

fn reject(a: RejectArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut svc = service(&a.common)?;
    let v = svc.reject(&a.common.tenant, &a.id, &a.identity, &a.reason, now())?;
    out.emit(&summary(&v), || {
        format!("rejected {} by {}: {}", v.approval_id, a.identity, a.reason)
    });
    Ok(Exit::Ok)
}

fn token(a: ShowArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut svc = service(&a.common)?;
    let t = svc.token(&a.common.tenant, &a.id, now())?;
    out.emit(&json!({"token": t.token, "claims": t.claims}), || {
        t.token.clone()
    });
    Ok(Exit::Ok)
}

fn redeem(a: RedeemArgs, out: &Output) -> anyhow::Result<Exit> {
    let token = a.token.read()?;
    let payload = read_json(&a.payload)?;
    let mut svc = service(&a.common)?;
    let r = svc.redeem(
        &a.common.tenant,
        &token,
        &payload,
        a.checkpoint.as_deref(),
        now(),
    )?;
    out.emit(&json!({"ok": true, "redeemed": r}), || {
        format!(
            "ok: approval {} ({}) used; approved by {}; payload sha256:{}",
            r.approval_id,
            r.checkpoint,
            r.approvers.join(" and "),
            r.payload_sha256
        )
    });
    Ok(Exit::Ok)
}

/// Posts notices with ureq (plain HTTP; TLS belongs to a relay or proxy in front).
struct HttpNotifier {
    agent: ureq::Agent,
}

impl HttpNotifier {
    fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build();
        HttpNotifier {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

impl Notifier for HttpNotifier {
    fn deliver(&self, n: &Notice) -> Result<(), String> {
        if !n.url.starts_with("http://") {
            return Err(
                "only http:// webhooks are supported by this build; put a TLS relay in front"
                    .into(),
            );
        }
        // Reasons go into the journal: never the URL (chat webhooks carry credentials in it).
        let scrub = |msg: String| msg.replace(&n.url, "<webhook>");
        let mut req = ureq::http::Request::builder()
            .method("POST")
            .uri(&n.url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("clyra/", env!("CARGO_PKG_VERSION")));
        if let Some(sig) = &n.signature {
            req = req.header(notice::SIGNATURE_HEADER, sig);
        }
        let req = req
            .body(n.body.clone())
            .map_err(|e| scrub(format!("cannot build the request: {e}")))?;
        let resp = self
            .agent
            .run(req)
            .map_err(|e| scrub(format!("cannot reach the webhook: {e}")))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("the webhook answered HTTP {status}"))
        }
    }
}
