//! The journal form of approvals and the fold that turns an approval's entries into its state.
//!
//! Each approval is one run, `approval:<approval_id>`, in the tenant's chain. Each step is one
//! entry (`body_policy: full`) whose idempotency key makes it happen at most once:
//!
//! | kind | `id` | at most once per |
//! |---|---|---|
//! | `approval.requested` | `approval:<id>:requested` | approval |
//! | `approval.approved` | `approval:<id>:approved:<approver, lowercased>` | approver |
//! | `approval.rejected` | `approval:<id>:rejected` | approval |
//! | `approval.granted` | `approval:<id>:granted` | approval |
//! | `approval.expired` | `approval:<id>:expired` | approval |
//! | `approval.used` | `approval:<id>:used` | approval: the reuse guard |
//! | `approval.notify_failed` | `approval:<id>:notify_failed` | approval |
//!
//! Entries that can move an approval towards "allowed" (`requested`, `approved`, `granted`)
//! carry `sig`, a signature by the approvals key over the entry's kind, tenant, id and body;
//! the fold ignores them without a valid one, so a client that can append to the journal (the
//! recorder accepts any kind and run from an authenticated tenant) cannot forge an approval.
//! Entries that only restrict (`rejected`, `expired`, `used`, `notify_failed`) count signed or
//! not: forging one can deny, never allow.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clyra_evidence::jcs;
use clyra_evidence::keys::{PublicKey, Signer};
use clyra_journal::entry::parse_timestamp;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{glob_match, ApprovalError};

/// Every approval run's name starts with this.
pub const RUN_PREFIX: &str = "approval:";

/// Domain separation for entry signatures.
const ENTRY_DOMAIN: &[u8] = b"clyra-approval-entry/v1\n";

/// Entry kinds.
pub mod kinds {
    /// A checkpoint paused an action.
    pub const REQUESTED: &str = "approval.requested";
    /// One approver said yes.
    pub const APPROVED: &str = "approval.approved";
    /// Someone said no (or withdrew the request, or revoked an unused grant).
    pub const REJECTED: &str = "approval.rejected";
    /// Enough approvers said yes; a resume token was issued.
    pub const GRANTED: &str = "approval.granted";
    /// The pending approval or its token ran out of time.
    pub const EXPIRED: &str = "approval.expired";
    /// The token was redeemed.
    pub const USED: &str = "approval.used";
    /// The webhook notice could not be delivered.
    pub const NOTIFY_FAILED: &str = "approval.notify_failed";
}

/// The run of an approval.
pub fn run_name(approval_id: &str) -> String {
    format!("{RUN_PREFIX}{approval_id}")
}

/// The idempotency key of one step.
pub fn entry_id(approval_id: &str, step: &str) -> String {
    format!("{RUN_PREFIX}{approval_id}:{step}")
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for approvers.
    Pending,
    /// Approved; a resume token is out and unused.
    Granted,
    /// Rejected, withdrawn or revoked.
    Rejected,
    /// Ran out of time (pending, or its token).
    Expired,
    /// The token was redeemed.
    Used,
}

impl Status {
    /// The name used in reports and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Granted => "granted",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Used => "used",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => Status::Pending,
            "granted" => Status::Granted,
            "rejected" => Status::Rejected,
            "expired" => Status::Expired,
            "used" => Status::Used,
            other => {
                return Err(format!(
                    "unknown status `{other}` (pending, granted, rejected, expired, used)"
                ))
            }
        })
    }
}

/// What is being approved, in the words of the decision that paused it. Recorded with the
/// request; the payload itself is recorded only as its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSummary {
    /// The action's kind (`warehouse.dml`, `tool.call`, `policy.change`, ...).
    pub kind: String,
    /// The gateway route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The rule (or built-in check) that required approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
}

impl ActionSummary {
    /// An action of `kind` with nothing else known.
    pub fn new(kind: impl Into<String>) -> Self {
        ActionSummary {
            kind: kind.into(),
            route: None,
            tool: None,
            rule_id: None,
        }
    }

    /// What the evidence predicate calls the approved thing: the tool, else the route, else
    /// the kind.
    pub fn subject(&self) -> &str {
        self.tool
            .as_deref()
            .or(self.route.as_deref())
            .unwrap_or(&self.kind)
    }
}

// ---- entry bodies -------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RequestedBody {
    pub approval_id: String,
    pub checkpoint: String,
    pub requester: String,
    pub payload_sha256: String,
    pub action: ActionSummary,
    pub policy_hash: String,
    pub two_person: bool,
    pub approvers: Vec<String>,
    pub need: usize,
    pub requested_at: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApprovedBody {
    pub approval_id: String,
    pub approver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RejectedBody {
    pub approval_id: String,
    pub approver: String,
    pub reason: String,
}

/// `approver`, `tool` and `two_person_rule` are what the PEF predicate derivation reads from an
/// `approval.granted` entry (spec/pef); `approver` lists every approver, comma-separated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GrantedBody {
    pub approval_id: String,
    pub token_id: String,
    pub checkpoint: String,
    pub payload_sha256: String,
    pub requester: String,
    pub approvers: Vec<String>,
    pub issued_at: String,
    pub expires_at: String,
    pub policy_hash: String,
    pub approver: String,
    pub tool: String,
    pub two_person_rule: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ExpiredBody {
    pub approval_id: String,
    /// `pending` or `token`.
    pub stage: String,
    pub deadline: String,
    pub observed_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UsedBody {
    pub approval_id: String,
    pub token_id: String,
    pub payload_sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NotifyFailedBody {
    pub approval_id: String,
    pub reason: String,
}

// ---- entry signatures ---------------------------------------------------------------------

fn entry_message(kind: &str, tenant: &str, id: &str, body: &Value) -> Result<Vec<u8>, String> {
    let doc = json!({"kind": kind, "tenant": tenant, "id": id, "body": body});
    let mut msg = ENTRY_DOMAIN.to_vec();
    msg.extend(jcs::canonicalize_value(&doc).map_err(|e| e.to_string())?);
    Ok(msg)
}

/// Adds `sig` to `body` (an object).
pub(crate) fn sign_body(
    kind: &str,
    tenant: &str,
    id: &str,
    mut body: Value,
    signer: &dyn Signer,
) -> Result<Value, ApprovalError> {
    let msg = entry_message(kind, tenant, id, &body).map_err(ApprovalError::Signing)?;
    let sig = signer
        .sign(&msg)
        .map_err(|e| ApprovalError::Signing(e.to_string()))?;
    if let Value::Object(m) = &mut body {
        m.insert(
            "sig".into(),
            json!({"key_id": signer.key_id().to_hex(), "value": URL_SAFE_NO_PAD.encode(sig)}),
        );
    }
    Ok(body)
}

/// Splits `sig` off `body` and checks it: the key id of the trusted key that signed, or `None`.
fn check_sig(
    kind: &str,
    tenant: &str,
    id: &str,
    body: &mut Map<String, Value>,
    trusted: &[PublicKey],
) -> Option<String> {
    let sig = body.remove("sig")?;
    let key_id = sig.get("key_id")?.as_str()?;
    let value = URL_SAFE_NO_PAD.decode(sig.get("value")?.as_str()?).ok()?;
    let key = trusted.iter().find(|k| k.key_id().to_hex() == key_id)?;
    let msg = entry_message(kind, tenant, id, &Value::Object(body.clone())).ok()?;
    key.verify(&msg, &value).ok()?;
    Some(key_id.to_string())
}

// ---- the view -----------------------------------------------------------------------------

/// One counted approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approved {
    /// Who.
    pub approver: String,
    /// When (the entry's `ts`).
    pub at: Timestamp,
    /// Their comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The journal entry.
    pub seq: u64,
}

/// The rejection that ended the approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// Who.
    pub approver: String,
    /// When.
    pub at: Timestamp,
    /// Why.
    pub reason: String,
    /// The journal entry.
    pub seq: u64,
}

/// The grant: the token that was issued (its id and lifetime, never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The token's id.
    pub token_id: String,
    /// Issued at.
    pub issued_at: Timestamp,
    /// The token is refused from this instant.
    pub expires_at: Timestamp,
    /// The approvers it names.
    pub approvers: Vec<String>,
    /// The journal entry.
    pub seq: u64,
}

/// The redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Used {
    /// The token redeemed.
    pub token_id: String,
    /// When.
    pub at: Timestamp,
    /// The journal entry.
    pub seq: u64,
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryStage {
    /// Not enough approvals before `expires_at`.
    Pending,
    /// The token was not redeemed before its `exp`.
    Token,
}

/// The expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// Which deadline.
    pub stage: ExpiryStage,
    /// The deadline.
    pub deadline: Timestamp,
    /// The journal entry that recorded it.
    pub seq: u64,
}

/// One journal entry of the approval, as it reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The entry's `seq`.
    pub seq: u64,
    /// Its kind.
    pub kind: String,
    /// Its `ts`.
    pub ts: String,
    /// Its `actor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The trusted key that signed it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// Whether it changed the approval's state.
    pub counted: bool,
    /// Why it did not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The body, without its signature.
    pub body: Value,
}

/// An approval as its journal entries say, folded in `seq` order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// `apr_` + 32 hex.
    pub approval_id: String,
    /// The tenant.
    pub tenant: String,
    /// The checkpoint.
    pub checkpoint: String,
    /// Who asked.
    pub requester: String,
    /// SHA-256 (hex) of the payload's RFC 8785 canonical JSON.
    pub payload_sha256: String,
    /// What is being approved.
    pub action: ActionSummary,
    /// The policy hash in force at the request; the request is judged by that policy's
    /// approver globs and two-person setting.
    pub policy_hash: String,
    /// Two distinct approvers needed.
    pub two_person: bool,
    /// Approver globs.
    pub approver_patterns: Vec<String>,
    /// Approvals needed.
    pub need: usize,
    /// When it was requested.
    pub requested_at: Timestamp,
    /// When it expires if not granted.
    pub expires_at: Timestamp,
    /// Where it stands.
    pub status: Status,
    /// Counted approvals, in order.
    pub approvals: Vec<Approved>,
    /// The rejection, if rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejected>,
    /// The grant, if granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
    /// The redemption, if used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<Used>,
    /// The expiry, if expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry: Option<Expiry>,
    /// Webhook delivery failures (reasons).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify_failures: Vec<String>,
    /// Every entry of the approval's run.
    pub history: Vec<Step>,
}

impl Approval {
    /// Approvals counted so far.
    pub fn have(&self) -> usize {
        self.approvals.len()
    }
}

/// Two identities are the same person when they are equal ignoring ASCII case.
pub(crate) fn same_identity(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn time(s: &str) -> Option<Timestamp> {
    parse_timestamp(s).ok()
}

/// Folds the entries of one approval's run (in `seq` order) into its state, or `None` when the
/// run has no authentic `approval.requested` entry.
pub(crate) fn fold(
    tenant: &str,
    approval_id: &str,
    entries: Vec<(u64, Value)>,
    trusted: &[PublicKey],
) -> Result<Option<Approval>, ApprovalError> {
    let mut view: Option<Approval> = None;
    let mut history = Vec::with_capacity(entries.len());
    for (seq, entry) in entries {
        let corrupt = |reason: &str| ApprovalError::Corrupt {
            approval_id: approval_id.to_string(),
            seq,
            reason: reason.to_string(),
        };
        let kind = entry
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| corrupt("no kind"))?
            .to_string();
        let ts = entry
            .get("ts")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let actor = entry
            .get("actor")
            .and_then(Value::as_str)
            .map(str::to_string);
        let id = entry.get("id").and_then(Value::as_str).unwrap_or_default();
        let mut step = Step {
            seq,
            kind: kind.clone(),
            ts: ts.clone(),
            actor,
            signed_by: None,
            counted: false,
            note: None,
            body: Value::Null,
        };
        let body = match (
            entry.get("body_policy").and_then(Value::as_str),
            entry.get("body"),
        ) {
            (Some("full"), Some(Value::Object(b))) => Some(b.clone()),
            _ => None,
        };
        let Some(mut body) = body else {
            step.note = Some("no readable body (not written by the approvals service)".into());
            history.push(step);
            continue;
        };
        step.signed_by = check_sig(&kind, tenant, id, &mut body, trusted);
        let authentic = step.signed_by.is_some();
        let body_value = Value::Object(body);
        step.body = body_value.clone();
        if body_value.get("approval_id").and_then(Value::as_str) != Some(approval_id) {
            step.note = Some("names another approval".into());
            history.push(step);
            continue;
        }
        let at = time(&ts);
        let note = apply(
            &mut view,
            &kind,
            id,
            approval_id,
            tenant,
            seq,
            at,
            authentic,
            &body_value,
        );
        match note {
            Ok(()) => step.counted = true,
            Err(n) => step.note = Some(n),
        }
        history.push(step);
    }
    Ok(view.map(|mut v| {
        v.history = history;
        v
    }))
}

#[allow(clippy::too_many_arguments)]
fn apply(
    view: &mut Option<Approval>,
    kind: &str,
    id: &str,
    approval_id: &str,
    tenant: &str,
    seq: u64,
    at: Option<Timestamp>,
    authentic: bool,
    body: &Value,
) -> Result<(), String> {
    let unsigned = || "not signed by a trusted approvals key; ignored".to_string();
    let parse_err = |e: serde_json::Error| format!("unreadable body: {e}");
    let expect_id = |step: &str| -> Result<(), String> {
        if id == entry_id(approval_id, step) {
            Ok(())
        } else {
            Err(format!("unexpected entry id `{id}`"))
        }
    };
    if kind == kinds::REQUESTED {
        if !authentic {
            return Err(unsigned());
        }
        if view.is_some() {
            return Err("a second request; ignored".into());
        }
        expect_id("requested")?;
        let b: RequestedBody = serde_json::from_value(body.clone()).map_err(parse_err)?;
        let requested_at = time(&b.requested_at).ok_or("bad requested_at")?;
        let expires_at = time(&b.expires_at).ok_or("bad expires_at")?;
        if b.need == 0 || b.need > 2 || b.approvers.is_empty() {
            return Err("bad approver settings".into());
        }
        *view = Some(Approval {
            approval_id: b.approval_id,
            tenant: tenant.to_string(),
            checkpoint: b.checkpoint,
            requester: b.requester,
            payload_sha256: b.payload_sha256,
            action: b.action,
            policy_hash: b.policy_hash,
            two_person: b.two_person,
            approver_patterns: b.approvers,
            need: b.need,
            requested_at,
            expires_at,
            status: Status::Pending,
            approvals: Vec::new(),
            rejection: None,
            grant: None,
            used: None,
            expiry: None,
            notify_failures: Vec::new(),
            history: Vec::new(),
        });
        return Ok(());
    }
    let Some(v) = view.as_mut() else {
        return Err("before the request; ignored".into());
    };
    match kind {
        kinds::APPROVED => {
            if !authentic {
                return Err(unsigned());
            }
            let b: ApprovedBody = serde_json::from_value(body.clone()).map_err(parse_err)?;
            expect_id(&format!("approved:{}", b.approver.to_ascii_lowercase()))?;
            if v.status != Status::Pending {
                return Err(format!("approval was already {}; ignored", v.status));
            }
            let at = at.ok_or("bad ts")?;
            if at >= v.expires_at {
                return Err("recorded after the approval expired; ignored".into());
            }
            if same_identity(&b.approver, &v.requester) {
                return Err("the requester cannot approve; ignored".into());
            }
            if !v
                .approver_patterns
                .iter()
                .any(|p| glob_match::matches(p, &b.approver))
            {
                return Err("not an approver of this checkpoint; ignored".into());
            }
            if v.approvals
                .iter()
                .any(|a| same_identity(&a.approver, &b.approver))
            {
                return Err("this approver is already counted; ignored".into());
            }
            v.approvals.push(Approved {
                approver: b.approver,
                at,
                comment: b.comment,
                seq,
            });
            Ok(())
        }
        kinds::GRANTED => {
            if !authentic {
                return Err(unsigned());
            }
            expect_id("granted")?;
            let b: GrantedBody = serde_json::from_value(body.clone()).map_err(parse_err)?;
            if v.status != Status::Pending {
                return Err(format!("approval was already {}; ignored", v.status));
            }
            if v.approvals.len() < v.need {
                return Err("granted before enough approvals; ignored".into());
            }
            let counted: Vec<&str> = v.approvals.iter().map(|a| a.approver.as_str()).collect();
            if b.approvers.len() != v.need
                || b.approvers.iter().any(|a| !counted.contains(&a.as_str()))
                || b.payload_sha256 != v.payload_sha256
            {
                return Err("grant disagrees with the recorded approvals; ignored".into());
            }
            v.grant = Some(Grant {
                token_id: b.token_id,
                issued_at: time(&b.issued_at).ok_or("bad issued_at")?,
                expires_at: time(&b.expires_at).ok_or("bad expires_at")?,
                approvers: b.approvers,
                seq,
            });
            v.status = Status::Granted;
            Ok(())
        }
        kinds::REJECTED => {
            expect_id("rejected")?;
            let b: RejectedBody = serde_json::from_value(body.clone()).map_err(parse_err)?;
            if !matches!(v.status, Status::Pending | Status::Granted) {
                return Err(format!("approval was already {}; ignored", v.status));
            }
            v.rejection = Some(Rejected {
                approver: b.approver,
                at: at.ok_or("bad ts")?,
                reason: b.reason,
                seq,
            });
            v.status = Status::Rejected;
            Ok(())
        }
        kinds::EXPIRED => {
            expect_id("expired")?;
            let b: ExpiredBody = serde_json::from_value(body.clone()).map_err(parse_err)?;
            let stage = match (v.status, b.stage.as_str()) {
                (Status::Pending, "pending") => ExpiryStage::Pending,
                (Status::Granted, "token") => ExpiryStage::Token,
                _ => return Err(format!("approval was {}; ignored", v.status)),
            };
            v.expiry = Some(Expiry {
                stage,
                deadline: time(&b.deadline).ok_or("bad deadline")?,
                seq,
            });
            v.status = Status::Expired;
            Ok(())
        }
        kinds::USED => {
            expect_id("used")?;
            let b: UsedBody = serde_json::from_value(body.clone()).map_err(parse_err)?;
            if v.status != Status::Granted {
                return Err(format!("approval was {}; ignored", v.status));
            }
            if v.grant.as_ref().map(|g| g.token_id.as_str()) != Some(b.token_id.as_str()) {
                return Err("names another token; ignored".into());
            }
            v.used = Some(Used {
                token_id: b.token_id,
                at: at.ok_or("bad ts")?,
                seq,
            });
            v.status = Status::Used;
            Ok(())
        }
        kinds::NOTIFY_FAILED => {
            let b: NotifyFailedBody = serde_json::from_value(body.clone()).map_err(parse_err)?;
            v.notify_failures.push(b.reason);
            Ok(())
        }
        _ => Err("not an approvals entry kind; ignored".into()),
    }
}
