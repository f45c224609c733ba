//! The replay certificate (`spec/common/schemas/replay_certificate.json`) and its signing.

use clyra_evidence::dsse::Envelope;
use clyra_evidence::intoto::{self, Statement, Subject};
use clyra_evidence::jcs;
use clyra_evidence::keys::Signer;
use serde::Serialize;

use crate::anchor::PgAnchor;
use crate::diff::Change;
use crate::snapshot::RelKind;

/// The certificate's `format`.
pub const CERTIFICATE_FORMAT: &str = "clyra.replay.certificate/v1";

/// The in-toto predicate type of a signed certificate.
pub const PREDICATE_TYPE: &str = "https://clyra.dev/replay-certificate/v1";

/// A replay certificate: what was replayed, how, against which warehouse state, with what result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Certificate {
    /// Always [`CERTIFICATE_FORMAT`].
    pub format: &'static str,
    /// The software that issued it.
    pub producer: Producer,
    /// The bundle replayed, as verified.
    pub bundle: BundleRef,
    /// The replay set.
    pub replay_set: ReplaySetRef,
    /// The warehouse.
    pub warehouse: Warehouse,
    /// How the replayed SQL was confined.
    pub isolation: Isolation,
    /// Why the isolation is what it is (why no role, when `parser`).
    pub isolation_note: String,
    /// The scratch schema the models ran in (created and rolled back in the replay's
    /// transaction).
    pub scratch_schema: Option<String>,
    /// Whether, after the replay, the scratch schema was checked to be absent.
    pub scratch_removed: bool,
    /// The `--models` globs (empty: every model of the set).
    pub selection: Vec<String>,
    /// One result per selected model, in the order they ran.
    pub models: Vec<ModelResult>,
    /// Counts of model results.
    pub summary: Summary,
    /// `success`, `partial` or `failed`.
    pub status: Status,
    /// Why the status is what it is, one line each.
    pub reasons: Vec<String>,
    /// Caveats of the comparison (a recorded snapshot from another cluster, ...).
    pub notes: Vec<String>,
    /// When the replay started (this machine's clock, RFC 3339 UTC).
    pub started_at: String,
    /// When it finished.
    pub finished_at: String,
}

/// Who issued the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Producer {
    /// `clyra`.
    pub name: &'static str,
    /// Its version.
    pub version: &'static str,
}

impl Default for Producer {
    fn default() -> Self {
        Producer {
            name: "clyra",
            version: super::CLYRA_VERSION,
        }
    }
}

/// The bundle, as the kernel's verifier found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleRef {
    /// The bundle file as named to the replay (a subject of the signed statement).
    pub name: String,
    /// The manifest's `bundle_id`.
    pub bundle_id: String,
    /// `clyra-def`.
    pub format: String,
    /// The manifest's `format_version`.
    pub format_version: String,
    /// SHA-256 of the bundle file's bytes.
    pub sha256: String,
    /// SHA-256 of `manifest.json`: the digest the bundle's attestation signs (its subject).
    pub manifest_sha256: String,
    /// The bundle Merkle root (the attestation's other subject).
    pub merkle_root: String,
    /// Key ids of the trusted keys whose signatures verified.
    pub signers: Vec<String>,
    /// When the bundle was verified (the time keys were checked at).
    pub verified_at: String,
    /// Warning codes the verifier reported (the bundle verified with them).
    pub warnings: Vec<String>,
}

/// The replay set and the recorded snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplaySetRef {
    /// Its bundle path.
    pub path: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// dbt's invocation id, when recorded.
    pub dbt_invocation_id: Option<String>,
    /// Models in the set.
    pub models: usize,
    /// The recorded snapshot's bundle path.
    pub recorded_snapshot: String,
    /// SHA-256 of its bytes.
    pub recorded_snapshot_sha256: String,
    /// Its state digest.
    pub recorded_state_digest: String,
    /// Its anchor: where and when the recorded state was.
    pub recorded_anchor: PgAnchor,
}

/// The warehouse the replay ran against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warehouse {
    /// The connection, password removed.
    pub dsn: String,
    /// Read as the first query of the replay's transaction: its MVCC snapshot is the one every
    /// replayed query read sources under. Absent when the replay was refused before connecting.
    pub before: Option<PgAnchor>,
    /// Read after the replay's transaction ended.
    pub after: Option<PgAnchor>,
}

/// How replayed SQL was confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Isolation {
    /// The parser check only (the connecting role could not create the throwaway role).
    #[serde(rename = "parser")]
    Parser,
    /// The parser check and a throwaway role with privileges on the scratch schema and `SELECT`
    /// on the sources only.
    #[serde(rename = "parser+role")]
    ParserRole,
}

impl Isolation {
    /// As written in the certificate.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Parser => "parser",
            Isolation::ParserRole => "parser+role",
        }
    }
}

/// The overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every selected model matched.
    Success,
    /// None mismatched or failed, but some were skipped or could not be verified.
    Partial,
    /// At least one model mismatched or failed (or was refused).
    Failed,
}

impl Status {
    /// As written in the certificate.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Partial => "partial",
            Status::Failed => "failed",
        }
    }
}

/// One model's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// The replayed relation equals the recorded one: columns, exact row count, and content hash
    /// when the recorded snapshot has one.
    Match,
    /// They differ; `reasons` and `changes` say how.
    Mismatch,
    /// Not run, or run but not comparable; `reasons` say why.
    Skipped,
    /// Refused before anything ran, or the SQL failed; `error` says why.
    Error,
}

impl ModelStatus {
    /// As written in the certificate.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Match => "match",
            ModelStatus::Mismatch => "mismatch",
            ModelStatus::Skipped => "skipped",
            ModelStatus::Error => "error",
        }
    }
}

/// The facts compared of one relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableFacts {
    /// Table or view.
    pub kind: RelKind,
    /// How many columns.
    pub columns: usize,
    /// The schema fingerprint.
    pub fingerprint: String,
    /// `count(*)`, when taken.
    pub exact_count: Option<u64>,
    /// The content hash value, when taken.
    pub content_hash: Option<String>,
}

/// Why a model failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelError {
    /// `refused` (before anything ran) or `sql` (the server refused or failed the statement).
    pub kind: &'static str,
    /// For `refused`: a stable code (`sha256_mismatch`, `missing_sql`, `foreign_table`,
    /// `other_database`, or a [`super::sql::Refusal`] code).
    pub code: Option<&'static str>,
    /// For `sql`: the SQLSTATE.
    pub sqlstate: Option<String>,
    /// What happened.
    pub message: String,
}

/// One model's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    /// dbt's unique id.
    pub unique_id: String,
    /// The relation the run built.
    pub relation: String,
    /// Its materialization.
    pub materialization: String,
    /// SHA-256 of the compiled SQL, as the replay set records it.
    pub compiled_sql_sha256: String,
    /// The scratch relation it was replayed into.
    pub scratch_relation: Option<String>,
    /// The result.
    pub status: ModelStatus,
    /// Why, one line each.
    pub reasons: Vec<String>,
    /// What was compared: `columns`, `exact_count`, `content_hash`.
    pub compared: Vec<&'static str>,
    /// The recorded relation's facts.
    pub recorded: Option<TableFacts>,
    /// The replayed relation's facts.
    pub replayed: Option<TableFacts>,
    /// The differences, as `clyra diff` reports them (recorded → replayed).
    pub changes: Vec<Change>,
    /// For `error`.
    pub error: Option<ModelError>,
    /// Relations of models in the set that this model read where they are, because they were
    /// not replayed (not selected).
    pub reads_unreplayed: Vec<String>,
    /// How long its statement took, in microseconds.
    pub duration_us: Option<u64>,
}

/// Counts of model results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Selected models.
    pub selected: usize,
    /// `match`.
    pub matched: usize,
    /// `mismatch`.
    pub mismatched: usize,
    /// `skipped`.
    pub skipped: usize,
    /// `error`.
    pub errors: usize,
}

impl Certificate {
    /// The certificate as canonical JSON (the predicate of the signed statement).
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, jcs::JcsError> {
        jcs::to_canonical_vec(self)
    }

    /// Signs the certificate: a DSSE envelope over an in-toto Statement with predicate type
    /// [`PREDICATE_TYPE`], the certificate as predicate, and two subjects: the bundle file (its
    /// name as given and the SHA-256 of its bytes) and the bundle's `manifest.json`.
    pub fn sign(&self, signers: &[&dyn Signer]) -> Result<Envelope, SignError> {
        let predicate =
            serde_json::to_value(self).map_err(|e| SignError(format!("serialize: {e}")))?;
        let subject = |name: &str, sha: &str| Subject {
            name: name.to_string(),
            digest: [("sha256".to_string(), sha.to_string())]
                .into_iter()
                .collect(),
        };
        let statement = Statement::new(
            vec![
                subject(&self.bundle.name, &self.bundle.sha256),
                subject(
                    clyra_evidence::bundle::MANIFEST_PATH,
                    &self.bundle.manifest_sha256,
                ),
            ],
            PREDICATE_TYPE,
            predicate,
        );
        intoto::sign_statement(&statement, signers, jcs::canonicalize)
            .map_err(|e| SignError(e.to_string()))
    }
}

/// Signing failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the certificate: {0}")]
pub struct SignError(String);
