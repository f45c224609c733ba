//! Approvals: human-in-the-loop checkpoints, the two-person rule and single-use resume tokens
//! (spec/policy/README.md §2 `approvals`; docs/approvals.md).
//!
//! A `require_approval` decision names a checkpoint of the policy's `approvals` section. The
//! caller asks for an approval ([`Approvals::request`]) and gets an id; approvers approve or
//! reject it ([`Approvals::approve`], [`Approvals::reject`]); when enough distinct approvers
//! (two with `two_person: true`, one otherwise, never the requester) have approved, the approval
//! is granted and a signed resume token is issued, bound to the SHA-256 of the exact payload's
//! canonical JSON, the approvers and an expiry. [`Approvals::redeem`] accepts a token once, for
//! that payload only, before it expires.
//!
//! State lives in the journal, nowhere else: each approval is one run (`approval:<id>`) in the
//! tenant's chain and each step one entry ([`state`] lists them), so the state survives
//! restarts, every step is in the audit trail, and a step's idempotency key makes it happen at
//! most once, across processes and machines (the journal serializes appends per tenant). The
//! current state is a fold over the run's entries. Time is always the caller's `now`; expiry is
//! noticed lazily and recorded (`approval.expired`) the first time an operation sees it.

mod config;
mod error;
mod glob_match;
pub mod notice;
pub mod state;
pub mod token;

use clyra_evidence::jcs;
use clyra_evidence::keys::{PublicKey, Signer};
use clyra_evidence::Digest;
use clyra_journal::entry::{
    format_timestamp, parse_timestamp, validate_tenant, BodyPolicy, NewEvent,
};
use clyra_journal::{Receipt, Store};
use jiff::{SignedDuration, Timestamp};
use rand_core::{OsRng, RngCore as _};
use serde::Serialize;
use serde_json::Value;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

pub use config::{CheckpointConfig, Config, DEFAULT_PENDING_TTL_MS, DEFAULT_TOKEN_TTL_MS};
pub use error::ApprovalError;
pub use notice::{Notice, Notifier};
pub use state::{
    ActionSummary, Approval, Approved, Expiry, ExpiryStage, Grant, Rejected, Status, Step, Used,
};
pub use token::{Claims, Token};

use crate::model;
use state::{
    entry_id, kinds, run_name, same_identity, ApprovedBody, ExpiredBody, GrantedBody,
    NotifyFailedBody, RejectedBody, RequestedBody, UsedBody,
};

/// The longest requester or approver identity, in bytes.
pub const MAX_IDENTITY_BYTES: usize = 128;
/// The longest comment or rejection reason, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// The keys of the approvals service: the signer of tokens and of the entries that can grant,
/// and the public keys trusted when reading them back.
pub struct Keys {
    signer: Option<Box<dyn Signer>>,
    trusted: Vec<PublicKey>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("signer", &self.signer.as_ref().map(|s| s.key_id().to_hex()))
            .field("trusted", &self.trusted)
            .finish()
    }
}

impl Keys {
    /// Signs with `signer` and trusts its public key.
    pub fn signing(signer: Box<dyn Signer>) -> Self {
        let trusted = vec![signer.public_key().clone()];
        Keys {
            signer: Some(signer),
            trusted,
        }
    }

    /// Verifies only: can list, show and redeem, cannot request, approve or grant.
    pub fn verify_only(trusted: Vec<PublicKey>) -> Self {
        Keys {
            signer: None,
            trusted,
        }
    }

    /// Also trusts `key` (an earlier signing key, during rotation).
    pub fn trust(mut self, key: PublicKey) -> Self {
        if !self.trusted.contains(&key) {
            self.trusted.push(key);
        }
        self
    }
}

/// What a request returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// The approval's id (`apr_` + 32 hex).
    pub approval_id: String,
    /// The checkpoint.
    pub checkpoint: String,
    /// SHA-256 (hex) of the payload's canonical JSON.
    pub payload_sha256: String,
    /// Approvals needed.
    pub need: usize,
    /// Two-person rule.
    pub two_person: bool,
    /// It expires then unless granted.
    pub expires_at: Timestamp,
    /// The `approval.requested` entry.
    pub seq: u64,
    /// What happened to the webhook notice.
    pub notice: NoticeStatus,
}

/// What happened to the webhook notice of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum NoticeStatus {
    /// The policy has no webhook.
    NotConfigured,
    /// Delivered.
    Sent,
    /// Not delivered; recorded as `approval.notify_failed` (when `recorded`).
    Failed {
        /// Why.
        reason: String,
        /// Whether the failure made it into the journal.
        recorded: bool,
    },
}

/// What an approval returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Counted; more approvals are needed.
    Pending {
        /// Approvals counted.
        have: usize,
        /// Approvals needed.
        need: usize,
        /// The approval now.
        approval: Box<Approval>,
    },
    /// Granted: here is the resume token.
    Granted {
        /// The token.
        token: Box<Token>,
        /// The approval now.
        approval: Box<Approval>,
    },
}

/// What a successful redemption returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redeemed {
    /// The approval.
    pub approval_id: String,
    /// The token.
    pub token_id: String,
    /// The checkpoint approved.
    pub checkpoint: String,
    /// Who asked.
    pub requester: String,
    /// Who approved.
    pub approvers: Vec<String>,
    /// The approved payload's digest.
    pub payload_sha256: String,
    /// The policy hash at the request.
    pub policy_hash: String,
    /// The `approval.used` entry.
    pub seq: u64,
}

/// The approvals service over one journal store.
pub struct Approvals {
    store: Box<dyn Store>,
    config: Config,
    keys: Keys,
    policy_hash: String,
    notifier: Option<Box<dyn Notifier>>,
    webhook_secret: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("store", &self.store.describe())
            .field(
                "checkpoints",
                &self.config.checkpoints.keys().collect::<Vec<_>>(),
            )
            .field("keys", &self.keys)
            .field("policy_hash", &self.policy_hash)
            .finish_non_exhaustive()
    }
}

fn ms(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

fn add_ms(t: Timestamp, millis: u64) -> Result<Timestamp, ApprovalError> {
    i64::try_from(millis)
        .ok()
        .and_then(|m| t.checked_add(SignedDuration::from_millis(m)).ok())
        .ok_or_else(|| ApprovalError::InvalidArgument {
            what: "time",
            reason: format!("{t} plus {millis} ms is out of range"),
        })
}

fn random_id(prefix: &str) -> Result<String, ApprovalError> {
    let mut bytes = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| ApprovalError::Signing(format!("random source failed: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

fn valid_approval_id(id: &str) -> bool {
    id.len() == 36
        && id.starts_with("apr_")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn escape(s: &str) -> String {
    s.chars().flat_map(char::escape_debug).take(200).collect()
}

fn check_identity(what: &'static str, value: &str) -> Result<(), ApprovalError> {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > MAX_IDENTITY_BYTES {
        Some("must be at most 128 bytes")
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else if value.trim() != value {
        Some("must not start or end with whitespace")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(ApprovalError::InvalidIdentity {
            what,
            value: escape(value),
            reason,
        }),
    }
}

fn check_text(what: &'static str, value: &str, required: bool) -> Result<(), ApprovalError> {
    if required && value.trim().is_empty() {
        return Err(ApprovalError::InvalidArgument {
            what,
            reason: "must not be empty".into(),
        });
    }
    if value.len() > MAX_TEXT_BYTES {
        return Err(ApprovalError::InvalidArgument {
            what,
            reason: format!("must be at most {MAX_TEXT_BYTES} bytes"),
        });
    }
    Ok(())
}

fn check_tenant(tenant: &str) -> Result<(), ApprovalError> {
    validate_tenant(tenant).map_err(|e| ApprovalError::InvalidArgument {
        what: "tenant",
        reason: e.to_string(),
    })
}

fn check_action(action: &ActionSummary) -> Result<(), ApprovalError> {
    let fields = [
        ("action kind", Some(&action.kind)),
        ("action route", action.route.as_ref()),
        ("action tool", action.tool.as_ref()),
        ("action rule_id", action.rule_id.as_ref()),
    ];
    for (what, v) in fields {
        if let Some(v) = v {
            if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
                return Err(ApprovalError::InvalidArgument {
                    what,
                    reason: "must be 1 to 256 bytes without control characters".into(),
                });
            }
        }
    }
    Ok(())
}

/// SHA-256 (hex) of the RFC 8785 canonical JSON of `payload`: what approvals bind to. Key order
/// and number spelling do not change it; any change of a value does.
pub fn payload_digest(payload: &Value) -> Result<String, ApprovalError> {
    crate::decide::action::payload_sha256(payload).map_err(|e| ApprovalError::InvalidPayload {
        reason: e.to_string(),
    })
}

fn digests_equal(a: &str, b: &str) -> bool {
    match (Digest::from_hex(a), Digest::from_hex(b)) {
        (Ok(a), Ok(b)) => bool::from(a.as_bytes().ct_eq(b.as_bytes())),
        _ => false,
    }
}

impl Approvals {
    /// The service for the checkpoints of `section` (the policy's `approvals`, `None` when it
    /// has none), over `store`, with `keys`. `policy_hash` is recorded with every request.
    pub fn new(
        store: Box<dyn Store>,
        section: Option<&model::Approvals>,
        keys: Keys,
        policy_hash: impl Into<String>,
    ) -> Result<Self, ApprovalError> {
        Ok(Approvals {
            store,
            config: Config::resolve(section)?,
            keys,
            policy_hash: policy_hash.into(),
            notifier: None,
            webhook_secret: None,
        })
    }

    /// Sends webhook notices (when the policy has `approvals.webhook`) through `notifier`, signed
    /// with `secret` (the value of the variable `webhook.secret_env` names; the caller reads it:
    /// this layer has no hidden inputs).
    pub fn with_notifier(
        mut self,
        notifier: Box<dyn Notifier>,
        secret: Option<Zeroizing<Vec<u8>>>,
    ) -> Self {
        self.notifier = Some(notifier);
        self.webhook_secret = secret;
        self
    }

    /// The resolved configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store, back.
    pub fn into_store(self) -> Box<dyn Store> {
        self.store
    }

    fn signer(&self) -> Result<&dyn Signer, ApprovalError> {
        self.keys
            .signer
            .as_deref()
            .ok_or(ApprovalError::NoSigningKey)
    }

    /// Appends one step of `approval_id`, signed when a signer is at hand.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        tenant: &str,
        approval_id: &str,
        kind: &str,
        step: &str,
        actor: Option<&str>,
        body: &impl Serialize,
        now: Timestamp,
    ) -> Result<Receipt, ApprovalError> {
        let id = entry_id(approval_id, step);
        let mut body =
            serde_json::to_value(body).map_err(|e| ApprovalError::Signing(e.to_string()))?;
        if let Some(signer) = self.keys.signer.as_deref() {
            body = state::sign_body(kind, tenant, &id, body, signer)?;
        }
        let mut event = NewEvent::new(tenant, kind, body);
        event.ts = Some(now);
        event.id = Some(id);
        event.run = Some(run_name(approval_id));
        event.actor = actor.map(str::to_string);
        let mut receipts = self.store.append(&[event], &BodyPolicy::Full)?;
        receipts.pop().ok_or_else(|| ApprovalError::Corrupt {
            approval_id: approval_id.to_string(),
            seq: 0,
            reason: "the store returned no receipt".into(),
        })
    }

    /// The approval as the journal says, without recording anything.
    fn load(&mut self, tenant: &str, approval_id: &str) -> Result<Option<Approval>, ApprovalError> {
        if !valid_approval_id(approval_id) {
            return Ok(None);
        }
        let mut entries = Vec::new();
        let mut bad = None;
        self.store
            .scan_run(tenant, &run_name(approval_id), &mut |e| {
                match serde_json::from_slice::<Value>(&e.canonical) {
                    Ok(v) => entries.push((e.seq, v)),
                    Err(err) => {
                        bad.get_or_insert((e.seq, err.to_string()));
                    }
                }
                Ok(())
            })?;
        if let Some((seq, reason)) = bad {
            return Err(ApprovalError::Corrupt {
                approval_id: approval_id.to_string(),
                seq,
                reason,
            });
        }
        if entries.is_empty() {
            return Ok(None);
        }
        state::fold(tenant, approval_id, entries, &self.keys.trusted)
    }

    /// The approval at `now`: loaded, and a passed deadline recorded as `approval.expired`.
    fn current(
        &mut self,
        tenant: &str,
        approval_id: &str,
        now: Timestamp,
    ) -> Result<Approval, ApprovalError> {
        check_tenant(tenant)?;
        let unknown = || ApprovalError::UnknownApproval {
            approval_id: escape(approval_id),
            tenant: tenant.to_string(),
        };
        let view = self.load(tenant, approval_id)?.ok_or_else(unknown)?;
        let deadline = match (view.status, &view.grant) {
            (Status::Pending, _) if now >= view.expires_at => Some(("pending", view.expires_at)),
            (Status::Granted, Some(g)) if now >= g.expires_at => Some(("token", g.expires_at)),
            _ => None,
        };
        let Some((stage, deadline)) = deadline else {
            return Ok(view);
        };
        let body = ExpiredBody {
            approval_id: approval_id.to_string(),
            stage: stage.to_string(),
            deadline: format_timestamp(deadline),
            observed_at: format_timestamp(now),
        };
        self.write(
            tenant,
            approval_id,
            kinds::EXPIRED,
            "expired",
            None,
            &body,
            now,
        )?;
        self.load(tenant, approval_id)?.ok_or_else(unknown)
    }

    fn not_pending(view: &Approval) -> ApprovalError {
        match (view.status, &view.expiry) {
            (Status::Expired, Some(e)) if e.stage == ExpiryStage::Pending => {
                ApprovalError::Expired {
                    approval_id: view.approval_id.clone(),
                    expires_at: format_timestamp(view.expires_at),
                }
            }
            (status, _) => ApprovalError::NotPending {
                approval_id: view.approval_id.clone(),
                status,
            },
        }
    }

    /// Pauses an action at `checkpoint`: records `approval.requested` with the payload's digest
    /// (never the payload) and announces it on the webhook. The payload's canonical JSON is what
    /// any resume token will be bound to.
    pub fn request(
        &mut self,
        tenant: &str,
        checkpoint: &str,
        requester: &str,
        payload: &Value,
        action: &ActionSummary,
        now: Timestamp,
    ) -> Result<Pending, ApprovalError> {
        check_tenant(tenant)?;
        let cp = self
            .config
            .checkpoints
            .get(checkpoint)
            .cloned()
            .ok_or_else(|| ApprovalError::UnknownCheckpoint {
                checkpoint: escape(checkpoint),
            })?;
        check_identity("requester", requester)?;
        check_action(action)?;
        self.signer()?;
        let payload_sha256 = payload_digest(payload)?;
        let now = ms(now);
        let approval_id = random_id("apr_")?;
        let expires_at = add_ms(now, cp.pending_ttl_ms)?;
        let body = RequestedBody {
            approval_id: approval_id.clone(),
            checkpoint: cp.id.clone(),
            requester: requester.to_string(),
            payload_sha256: payload_sha256.clone(),
            action: action.clone(),
            policy_hash: self.policy_hash.clone(),
            two_person: cp.two_person,
            approvers: cp.approvers.clone(),
            need: cp.need(),
            requested_at: format_timestamp(now),
            expires_at: format_timestamp(expires_at),
        };
        let receipt = self.write(
            tenant,
            &approval_id,
            kinds::REQUESTED,
            "requested",
            Some(requester),
            &body,
            now,
        )?;
        let notice = self.notify(tenant, &body, now);
        Ok(Pending {
            approval_id,
            need: cp.need(),
            checkpoint: cp.id,
            payload_sha256,
            two_person: cp.two_person,
            expires_at,
            seq: receipt.seq,
            notice,
        })
    }

    /// The notice for a request, ready to send (`None` without a webhook). `Err` carries why it
    /// cannot be built.
    fn build_notice(
        &self,
        tenant: &str,
        req: &RequestedBody,
        now: Timestamp,
    ) -> Option<Result<Notice, String>> {
        let webhook = self.config.webhook.as_ref()?;
        let doc = serde_json::json!({
            "type": kinds::REQUESTED,
            "approval_id": req.approval_id,
            "tenant": tenant,
            "checkpoint": req.checkpoint,
            "requester": req.requester,
            "payload_sha256": req.payload_sha256,
            "action": req.action,
            "two_person": req.two_person,
            "need": req.need,
            "approvers": req.approvers,
            "requested_at": req.requested_at,
            "expires_at": req.expires_at,
            "policy_hash": req.policy_hash,
            "approve_command": format!(
                "clyra approvals approve {} --tenant {tenant} --as IDENTITY --store STORE --policy POLICY --key KEY",
                req.approval_id
            ),
        });
        let body = match jcs::canonicalize_value(&doc) {
            Ok(b) => b,
            Err(e) => return Some(Err(format!("notice is not canonical JSON: {e}"))),
        };
        let signature = match (&webhook.secret_env, &self.webhook_secret) {
            (None, _) => None,
            (Some(_), Some(secret)) => Some(notice::sign(secret, now.as_second(), &body)),
            (Some(var), None) => {
                return Some(Err(format!(
                    "the webhook secret variable `{var}` is not set; notice not sent unsigned"
                )))
            }
        };
        Some(Ok(Notice {
            url: webhook.url.clone(),
            body,
            signature,
            approval_id: req.approval_id.clone(),
        }))
    }

    fn notify(&mut self, tenant: &str, req: &RequestedBody, now: Timestamp) -> NoticeStatus {
        let outcome = match self.build_notice(tenant, req, now) {
            None => return NoticeStatus::NotConfigured,
            Some(Err(reason)) => Err(reason),
            Some(Ok(notice)) => match &self.notifier {
                None => Err("no notifier is installed in this process".to_string()),
                Some(n) => n.deliver(&notice),
            },
        };
        let Err(reason) = outcome else {
            return NoticeStatus::Sent;
        };
        let reason: String = reason.chars().take(512).collect();
        let body = NotifyFailedBody {
            approval_id: req.approval_id.clone(),
            reason: reason.clone(),
        };
        // Never fails the request: the request is recorded already.
        let recorded = self
            .write(
                tenant,
                &req.approval_id,
                kinds::NOTIFY_FAILED,
                "notify_failed",
                None,
                &body,
                now,
            )
            .is_ok();
        NoticeStatus::Failed { reason, recorded }
    }

    /// Records `approver`'s approval. Refused when the approval is not pending (or has expired),
    /// when `approver` is the requester (always, two-person rule or not), matches none of the
    /// checkpoint's approver globs, or already approved it. When this approval is the last one
    /// needed, the approval is granted and the resume token returned.
    pub fn approve(
        &mut self,
        tenant: &str,
        approval_id: &str,
        approver: &str,
        comment: Option<&str>,
        now: Timestamp,
    ) -> Result<Outcome, ApprovalError> {
        check_identity("approver", approver)?;
        if let Some(c) = comment {
            check_text("comment", c, false)?;
        }
        self.signer()?;
        let now = ms(now);
        let view = self.current(tenant, approval_id, now)?;
        if view.status != Status::Pending {
            return Err(Self::not_pending(&view));
        }
        if same_identity(approver, &view.requester) {
            return Err(ApprovalError::SelfApproval {
                approver: approver.to_string(),
            });
        }
        if !view
            .approver_patterns
            .iter()
            .any(|p| glob_match::matches(p, approver))
        {
            return Err(ApprovalError::NotApprover {
                approver: approver.to_string(),
                checkpoint: view.checkpoint.clone(),
                patterns: view.approver_patterns.join(", "),
            });
        }
        let duplicate = || ApprovalError::DuplicateApprover {
            approver: approver.to_string(),
            approval_id: approval_id.to_string(),
        };
        if view
            .approvals
            .iter()
            .any(|a| same_identity(&a.approver, approver))
        {
            return Err(duplicate());
        }
        let body = ApprovedBody {
            approval_id: approval_id.to_string(),
            approver: approver.to_string(),
            comment: comment.map(str::to_string),
        };
        let step = format!("approved:{}", approver.to_ascii_lowercase());
        let receipt = self.write(
            tenant,
            approval_id,
            kinds::APPROVED,
            &step,
            Some(approver),
            &body,
            now,
        )?;
        if receipt.duplicate {
            return Err(duplicate());
        }
        self.settle(tenant, approval_id, approver, now)
    }

    /// After an approval: grant when enough are counted (once, whoever gets there first).
    fn settle(
        &mut self,
        tenant: &str,
        approval_id: &str,
        approver: &str,
        now: Timestamp,
    ) -> Result<Outcome, ApprovalError> {
        let view = self.current(tenant, approval_id, now)?;
        match view.status {
            Status::Granted => return self.outcome_granted(view),
            Status::Pending if view.have() >= view.need => {}
            Status::Pending => {
                return Ok(Outcome::Pending {
                    have: view.have(),
                    need: view.need,
                    approval: Box::new(view),
                })
            }
            _ => return Err(Self::not_pending(&view)),
        }
        let cp = self
            .config
            .checkpoints
            .get(&view.checkpoint)
            .cloned()
            .ok_or_else(|| ApprovalError::UnknownCheckpoint {
                checkpoint: view.checkpoint.clone(),
            })?;
        let approvers: Vec<String> = view
            .approvals
            .iter()
            .take(view.need)
            .map(|a| a.approver.clone())
            .collect();
        let body = GrantedBody {
            approval_id: approval_id.to_string(),
            token_id: random_id("tok_")?,
            checkpoint: view.checkpoint.clone(),
            payload_sha256: view.payload_sha256.clone(),
            requester: view.requester.clone(),
            approver: approvers.join(", "),
            approvers,
            issued_at: format_timestamp(now),
            expires_at: format_timestamp(add_ms(now, cp.token_ttl_ms)?),
            policy_hash: view.policy_hash.clone(),
            tool: view.action.subject().to_string(),
            two_person_rule: view.two_person,
        };
        // A concurrent approver may have granted first: then the stored grant stands.
        self.write(
            tenant,
            approval_id,
            kinds::GRANTED,
            "granted",
            Some(approver),
            &body,
            now,
        )?;
        let view = self.current(tenant, approval_id, now)?;
        match view.status {
            Status::Granted => self.outcome_granted(view),
            _ => Err(Self::not_pending(&view)),
        }
    }

    fn outcome_granted(&self, view: Approval) -> Result<Outcome, ApprovalError> {
        let token = self.issue(&view)?;
        Ok(Outcome::Granted {
            token: Box::new(token),
            approval: Box::new(view),
        })
    }

    /// The token of a granted approval: rebuilt from the `approval.granted` entry, so every
    /// holder of the signing key derives the same claims (and, with Ed25519, the same token).
    fn issue(&self, view: &Approval) -> Result<Token, ApprovalError> {
        let grant = view.grant.as_ref().ok_or_else(|| Self::not_pending(view))?;
        let claims = Claims {
            v: 1,
            token_id: grant.token_id.clone(),
            approval_id: view.approval_id.clone(),
            tenant: view.tenant.clone(),
            checkpoint: view.checkpoint.clone(),
            payload_sha256: view.payload_sha256.clone(),
            approvers: grant.approvers.clone(),
            requester: view.requester.clone(),
            iat: format_timestamp(grant.issued_at),
            exp: format_timestamp(grant.expires_at),
            policy_hash: view.policy_hash.clone(),
        };
        token::issue(&claims, self.signer()?)
    }

    /// The resume token of a granted, unused, unexpired approval (for the requester that waits
    /// for it). Needs the signing key.
    pub fn token(
        &mut self,
        tenant: &str,
        approval_id: &str,
        now: Timestamp,
    ) -> Result<Token, ApprovalError> {
        self.signer()?;
        let view = self.current(tenant, approval_id, ms(now))?;
        if view.status != Status::Granted {
            return Err(Self::not_pending(&view));
        }
        self.issue(&view)
    }

    /// Records a rejection by `approver` (an approver of the checkpoint, or the requester
    /// withdrawing). One rejection ends the approval, whatever the two-person rule; rejecting a
    /// granted approval whose token is unused revokes the token.
    pub fn reject(
        &mut self,
        tenant: &str,
        approval_id: &str,
        approver: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Approval, ApprovalError> {
        check_identity("approver", approver)?;
        check_text("reason", reason, true)?;
        let now = ms(now);
        let view = self.current(tenant, approval_id, now)?;
        if !matches!(view.status, Status::Pending | Status::Granted) {
            return Err(Self::not_pending(&view));
        }
        let allowed = same_identity(approver, &view.requester)
            || view
                .approver_patterns
                .iter()
                .any(|p| glob_match::matches(p, approver));
        if !allowed {
            return Err(ApprovalError::NotApprover {
                approver: approver.to_string(),
                checkpoint: view.checkpoint.clone(),
                patterns: view.approver_patterns.join(", "),
            });
        }
        let body = RejectedBody {
            approval_id: approval_id.to_string(),
            approver: approver.to_string(),
            reason: reason.to_string(),
        };
        self.write(
            tenant,
            approval_id,
            kinds::REJECTED,
            "rejected",
            Some(approver),
            &body,
            now,
        )?;
        let view = self.current(tenant, approval_id, now)?;
        match &view.rejection {
            Some(r) if view.status == Status::Rejected && same_identity(&r.approver, approver) => {
                Ok(view)
            }
            _ => Err(Self::not_pending(&view)),
        }
    }

    /// One approval with its whole history.
    pub fn show(
        &mut self,
        tenant: &str,
        approval_id: &str,
        now: Timestamp,
    ) -> Result<Approval, ApprovalError> {
        self.current(tenant, approval_id, ms(now))
    }

    /// The tenant's approvals (with `status`, only those), oldest request first. Runs under
    /// `approval:` without an authentic request are left out.
    pub fn list(
        &mut self,
        tenant: &str,
        status: Option<Status>,
        now: Timestamp,
    ) -> Result<Vec<Approval>, ApprovalError> {
        check_tenant(tenant)?;
        let now = ms(now);
        let mut out = Vec::new();
        for run in self.store.runs(tenant, state::RUN_PREFIX)? {
            let id = &run[state::RUN_PREFIX.len()..];
            if !valid_approval_id(id) {
                continue;
            }
            let view = match self.current(tenant, id, now) {
                Ok(v) => v,
                Err(ApprovalError::UnknownApproval { .. }) => continue,
                Err(e) => return Err(e),
            };
            if status.is_none_or(|s| s == view.status) {
                out.push(view);
            }
        }
        out.sort_by_key(|v| v.history.first().map(|s| s.seq));
        Ok(out)
    }

    /// Accepts `token` for `payload`, once. Checks, failing closed at the first problem: the
    /// token's signature by a trusted key (before reading its claims), its tenant, the
    /// checkpoint the caller needs (when given), its expiry, the payload's canonical digest
    /// against the approved one (in constant time), that it is the token the journal granted and
    /// not revoked; then records `approval.used`, whose idempotency key lets exactly one
    /// redemption through, across processes.
    pub fn redeem(
        &mut self,
        tenant: &str,
        token: &str,
        payload: &Value,
        checkpoint: Option<&str>,
        now: Timestamp,
    ) -> Result<Redeemed, ApprovalError> {
        check_tenant(tenant)?;
        let now = ms(now);
        let claims = token::open(token, &self.keys.trusted)?;
        if claims.tenant != tenant {
            return Err(ApprovalError::TokenTenant {
                tenant: tenant.to_string(),
                token: claims.tenant,
            });
        }
        if let Some(expected) = checkpoint {
            if expected != claims.checkpoint {
                return Err(ApprovalError::CheckpointMismatch {
                    expected: expected.to_string(),
                    token: claims.checkpoint,
                });
            }
        }
        let exp = parse_timestamp(&claims.exp).map_err(|_| ApprovalError::TokenMalformed {
            reason: "exp is not an RFC 3339 timestamp",
        })?;
        let expired = || ApprovalError::TokenExpired {
            approval_id: claims.approval_id.clone(),
            exp: claims.exp.clone(),
        };
        if now >= exp {
            // Records the expiry if the journal still has the grant open.
            let _ = self.current(tenant, &claims.approval_id, now);
            return Err(expired());
        }
        let actual = payload_digest(payload)?;
        if !digests_equal(&actual, &claims.payload_sha256) {
            return Err(ApprovalError::PayloadMismatch {
                approved: claims.payload_sha256,
                actual,
            });
        }
        let view = self.current(tenant, &claims.approval_id, now)?;
        let unknown = || ApprovalError::TokenUnknown {
            approval_id: claims.approval_id.clone(),
            token_id: claims.token_id.clone(),
        };
        match view.status {
            Status::Granted => {}
            Status::Used => {
                return Err(ApprovalError::TokenReused {
                    approval_id: claims.approval_id,
                })
            }
            Status::Expired => return Err(expired()),
            Status::Rejected => {
                return Err(ApprovalError::NotPending {
                    approval_id: claims.approval_id,
                    status: Status::Rejected,
                })
            }
            Status::Pending => return Err(unknown()),
        }
        let grant = view.grant.as_ref().ok_or_else(unknown)?;
        if grant.token_id != claims.token_id
            || !digests_equal(&view.payload_sha256, &claims.payload_sha256)
        {
            return Err(unknown());
        }
        let body = UsedBody {
            approval_id: claims.approval_id.clone(),
            token_id: claims.token_id.clone(),
            payload_sha256: actual,
        };
        let receipt = self.write(
            tenant,
            &claims.approval_id,
            kinds::USED,
            "used",
            None,
            &body,
            now,
        )?;
        if receipt.duplicate {
            return Err(ApprovalError::TokenReused {
                approval_id: claims.approval_id,
            });
        }
        Ok(Redeemed {
            approval_id: claims.approval_id,
            token_id: claims.token_id,
            checkpoint: claims.checkpoint,
            requester: claims.requester,
            approvers: claims.approvers,
            payload_sha256: claims.payload_sha256,
            policy_hash: claims.policy_hash,
            seq: receipt.seq,
        })
    }
}
