//! The approvals error type, with stable codes.

use super::Status;

/// Why an approvals operation refused or failed. Every variant has a stable [`code`]
/// (`A_...`); [`is_refusal`] separates the control saying no (the caller must not proceed) from
/// failures to answer at all (bad configuration, an unreachable store).
///
/// [`code`]: ApprovalError::code
/// [`is_refusal`]: ApprovalError::is_refusal
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// The `approvals` section cannot be used (a bad duration, a duplicate checkpoint id).
    #[error("approvals config {pointer}: {reason}")]
    Config {
        /// JSON pointer into the policy.
        pointer: String,
        /// What is wrong.
        reason: String,
    },
    /// The policy has no checkpoint of that id.
    #[error("no approvals checkpoint `{checkpoint}` in the policy")]
    UnknownCheckpoint {
        /// The id asked for.
        checkpoint: String,
    },
    /// No approval of that id in this tenant's journal.
    #[error("no approval `{approval_id}` in tenant `{tenant}`")]
    UnknownApproval {
        /// The id asked for.
        approval_id: String,
        /// The tenant searched.
        tenant: String,
    },
    /// The approval is no longer pending (granted, rejected, expired or used).
    #[error("approval `{approval_id}` is {status}, not pending")]
    NotPending {
        /// The approval.
        approval_id: String,
        /// Its status.
        status: Status,
    },
    /// The approval expired before enough approvers approved.
    #[error("approval `{approval_id}` expired at {expires_at}")]
    Expired {
        /// The approval.
        approval_id: String,
        /// When it expired (RFC 3339).
        expires_at: String,
    },
    /// The identity matches none of the checkpoint's approver globs.
    #[error(
        "`{approver}` is not an approver of checkpoint `{checkpoint}` (approvers: {patterns})"
    )]
    NotApprover {
        /// Who tried.
        approver: String,
        /// The checkpoint.
        checkpoint: String,
        /// Its approver globs, comma-separated.
        patterns: String,
    },
    /// The requester tried to approve their own request.
    #[error("`{approver}` requested this approval and cannot approve it")]
    SelfApproval {
        /// Who tried.
        approver: String,
    },
    /// This approver already approved (the two-person rule needs two different people).
    #[error("`{approver}` already approved `{approval_id}`; a second approval must come from someone else")]
    DuplicateApprover {
        /// Who tried.
        approver: String,
        /// The approval.
        approval_id: String,
    },
    /// An identity (requester or approver) is not usable.
    #[error("{what} `{value}`: {reason}")]
    InvalidIdentity {
        /// `requester`, `approver`.
        what: &'static str,
        /// The value given (control characters escaped).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An argument is not usable (a tenant name, an overlong comment).
    #[error("{what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The payload cannot be canonicalized (RFC 8785), so it has no digest.
    #[error("payload is not canonicalizable JSON: {reason}")]
    InvalidPayload {
        /// Why.
        reason: String,
    },
    /// The token is not a well-formed resume token.
    #[error("resume token is malformed: {reason}")]
    TokenMalformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// No trusted key signed the token.
    #[error("resume token signature does not verify with any trusted approvals key")]
    TokenSignature,
    /// The token's lifetime is over.
    #[error("resume token of approval `{approval_id}` expired at {exp}")]
    TokenExpired {
        /// The approval.
        approval_id: String,
        /// Its expiry (RFC 3339).
        exp: String,
    },
    /// The token (or another token of the same approval) was already used.
    #[error("approval `{approval_id}` was already used; a resume token works once")]
    TokenReused {
        /// The approval.
        approval_id: String,
    },
    /// The token was issued for another tenant.
    #[error("resume token was issued for tenant `{token}`, not `{tenant}`")]
    TokenTenant {
        /// The tenant redeeming.
        tenant: String,
        /// The token's tenant.
        token: String,
    },
    /// The token is signed but is not the token this journal granted for the approval.
    #[error("resume token `{token_id}` is not the token granted for approval `{approval_id}`")]
    TokenUnknown {
        /// The approval.
        approval_id: String,
        /// The token's id.
        token_id: String,
    },
    /// The token approves another checkpoint than the one the caller needs.
    #[error("resume token approves checkpoint `{token}`, not `{expected}`")]
    CheckpointMismatch {
        /// What the caller needs.
        expected: String,
        /// What the token says.
        token: String,
    },
    /// The payload is not the one that was approved.
    #[error("payload digest {actual} is not the approved payload's {approved}")]
    PayloadMismatch {
        /// SHA-256 of the approved payload's canonical JSON.
        approved: String,
        /// SHA-256 of the presented payload's canonical JSON.
        actual: String,
    },
    /// Requesting, approving and rejecting sign journal entries and tokens; this instance only
    /// has public keys.
    #[error("this operation needs the approvals signing key (only public keys were given)")]
    NoSigningKey,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The journal store failed.
    #[error("journal store: {0}")]
    Store(#[from] clyra_journal::StoreError),
    /// The journal holds something the approvals service did not write in a form it can read.
    #[error("approval `{approval_id}`, journal entry {seq}: {reason}")]
    Corrupt {
        /// The approval.
        approval_id: String,
        /// The entry's `seq`.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

impl ApprovalError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalError::Config { .. } => "A_CONFIG",
            ApprovalError::UnknownCheckpoint { .. } => "A_UNKNOWN_CHECKPOINT",
            ApprovalError::UnknownApproval { .. } => "A_UNKNOWN_APPROVAL",
            ApprovalError::NotPending { .. } => "A_NOT_PENDING",
            ApprovalError::Expired { .. } => "A_EXPIRED",
            ApprovalError::NotApprover { .. } => "A_NOT_APPROVER",
            ApprovalError::SelfApproval { .. } => "A_SELF_APPROVAL",
            ApprovalError::DuplicateApprover { .. } => "A_DUPLICATE_APPROVER",
            ApprovalError::InvalidIdentity { .. } => "A_IDENTITY_INVALID",
            ApprovalError::InvalidArgument { .. } => "A_INVALID_ARGUMENT",
            ApprovalError::InvalidPayload { .. } => "A_PAYLOAD_INVALID",
            ApprovalError::TokenMalformed { .. } => "A_TOKEN_MALFORMED",
            ApprovalError::TokenSignature => "A_TOKEN_SIGNATURE",
            ApprovalError::TokenExpired { .. } => "A_TOKEN_EXPIRED",
            ApprovalError::TokenReused { .. } => "A_TOKEN_REUSED",
            ApprovalError::TokenTenant { .. } => "A_TOKEN_TENANT",
            ApprovalError::TokenUnknown { .. } => "A_TOKEN_UNKNOWN",
            ApprovalError::CheckpointMismatch { .. } => "A_CHECKPOINT_MISMATCH",
            ApprovalError::PayloadMismatch { .. } => "A_PAYLOAD_MISMATCH",
            ApprovalError::NoSigningKey => "A_NO_SIGNING_KEY",
            ApprovalError::Signing(_) => "A_SIGNING",
            ApprovalError::Store(_) => "A_STORE",
            ApprovalError::Corrupt { .. } => "A_CORRUPT",
        }
    }

    /// True when the control refused (the action must not proceed: CLI exit 3); false when the
    /// question could not be answered (configuration, input, store: exit 1).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            ApprovalError::Config { .. }
                | ApprovalError::UnknownCheckpoint { .. }
                | ApprovalError::InvalidIdentity { .. }
                | ApprovalError::InvalidArgument { .. }
                | ApprovalError::InvalidPayload { .. }
                | ApprovalError::NoSigningKey
                | ApprovalError::Signing(_)
                | ApprovalError::Store(_)
                | ApprovalError::Corrupt { .. }
        )
    }
}
