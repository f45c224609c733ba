//! Building bundles: the journal segment, embedded and external artifacts, the manifest, the
//! signed statement and the canonical container, deterministically.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{
    ArtifactRef, ChainMode, CheckpointInfo, FileEntry, Governance, JournalInfo, Kind, LeafProof,
    Manifest, MerkleInfo, Producer, ProofsDocument, ARTIFACTS_PREFIX, ATTESTATION_PATH,
    CHECKPOINT_MEDIA_TYPE, CHECKPOINT_NOTE_PATH, FORMAT_VERSION, FORMAT_VERSION_0_2,
    JOURNAL_MEDIA_TYPE, JOURNAL_PATH, MANIFEST_PATH, MERKLE_ALG, MERKLE_ROOT_SUBJECT,
    PROOFS_MEDIA_TYPE, PROOFS_PATH,
};
use super::predicate::{metric_value, DeriveError, Deriver, SlaOp};
use super::schema::{manifest_rules, predicate_rules, schema_issues, SchemaKind};
use super::verify::{run_link, Limits};
use crate::chain::{link_from_entry, ChainBuilder, ChainLink};
use crate::digest::Digest;
use crate::intoto::{self, InTotoError, Statement, Subject};
use crate::jcs::{self, JcsError};
use crate::keys::Signer;
use crate::merkle::{self, InclusionProof, MerkleTreeBuilder};
use crate::note::{Checkpoint, SignedNote};
use crate::zipstore::{self, ContainerError, ZipReader};

/// Why a bundle could not be built or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A path or name breaks the safe-path rules (§2.1).
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// The same embedded path or external name was added twice.
    #[error("`{0}` was added twice")]
    Duplicate(String),
    /// A journal entry is not a valid chained entry.
    #[error("journal entry {index}: {reason}")]
    InvalidEntry {
        /// Its position in this bundle's segment.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A journal entry does not link to the one before it.
    #[error("journal entry {index} breaks the chain: {reason}")]
    ChainBroken {
        /// Its position in this bundle's segment.
        index: u64,
        /// How it breaks.
        reason: String,
    },
    /// The chain start or the chain mode was set after entries were added.
    #[error("the chain start and the chain mode can only be set before the first entry")]
    ChainStarted,
    /// The checkpoint or its inclusion proofs would not verify (§6.2).
    #[error("invalid checkpoint: {0}")]
    Checkpoint(String),
    /// The bundle has no journal entries.
    #[error("a bundle covers at least one journal entry")]
    NoEntries,
    /// The predicate is not an object, or breaks its schema or rules.
    #[error("invalid predicate: {}", .0.join("; "))]
    Predicate(Vec<String>),
    /// The predicate could not be derived from the journal.
    #[error(transparent)]
    Derive(#[from] DeriveError),
    /// The manifest would break its schema or rules (a bad bundle id, media type, ...).
    #[error("invalid manifest: {}", .0.join("; "))]
    Manifest(Vec<String>),
    /// An SLA names a metric that is not a number in `metrics`.
    #[error("sla metric `{0}` is not a number in the predicate's metrics")]
    SlaMetric(String),
    /// A value cannot be written as canonical JSON.
    #[error("cannot canonicalize: {0}")]
    Canonical(#[from] JcsError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] InTotoError),
    /// The bundle would exceed a verifier limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Writing the container failed.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The output path already exists.
    #[error("`{}` already exists; bundles are never overwritten", .0.display())]
    Exists(PathBuf),
    /// Writing the output failed.
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Where the predicate's domain members come from.
#[derive(Debug, Clone)]
enum PredicateSource {
    Derived,
    Given(Map<String, Value>),
}

/// Builds a DEF or PEF bundle.
///
/// The builder holds the journal and the embedded artifacts in memory, and [`build`](Self::build)
/// assembles the container in memory too, so building takes about twice the bundle's size (101 MiB
/// for a 44 MiB bundle of 100,000 entries, `make bench-bundle`). Verification does not: it streams
/// the journal in constant memory.
///
/// ```
/// use clyra_evidence::bundle::{verify_zip_bytes, BundleBuilder, Governance, Kind, Producer, VerifyOptions};
/// use clyra_evidence::keys::{Algorithm, PrivateKey, Signer};
/// use clyra_evidence::trust::TrustStore;
/// use serde_json::json;
///
/// let key = PrivateKey::generate(Algorithm::Ed25519)?;
/// let at: jiff::Timestamp = "2026-11-24T10:00:00Z".parse()?;
/// let mut builder = BundleBuilder::new(
///     Kind::Def,
///     "run-42",
///     at,
///     Producer { name: "clyra".into(), version: "0.1.0".into() },
///     Governance { tenant: "acme".into(), environment: "prod".into(),
///                  run_id: "run-42".into(), actors: vec!["airflow".into()] },
/// );
/// builder.chain_events([
///     json!({"ts": "2026-11-24T09:00:00Z", "kind": "dbt.run.started"}),
///     json!({"ts": "2026-11-24T09:00:05Z", "kind": "dbt.run.finished", "status": "success"}),
/// ])?;
/// let bundle = builder.build(&[&key])?;
///
/// let mut trust = TrustStore::new();
/// trust.add(key.public_key().clone(), "2026-01-01T00:00:00Z".parse()?, None, None)?;
/// let report = verify_zip_bytes(bundle.zip_bytes(), &VerifyOptions::new(&trust, at));
/// assert!(report.is_valid(), "{:?}", report.findings);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct BundleBuilder {
    kind: Kind,
    bundle_id: String,
    created_at: Timestamp,
    producer: Producer,
    governance: Governance,
    policy_sha256: Option<Digest>,
    start: Option<(u64, Digest)>,
    run: Option<String>,
    last_tenant_seq: Option<u64>,
    checkpoint: Option<(String, Vec<InclusionProof>)>,
    first: Option<ChainLink>,
    last: Option<ChainLink>,
    count: u64,
    journal: Vec<u8>,
    entries_tree: MerkleTreeBuilder,
    deriver: Deriver,
    artifacts: BTreeMap<String, (Vec<u8>, String)>,
    external: BTreeMap<String, ArtifactRef>,
    predicate: PredicateSource,
    slas: Vec<(String, SlaOp, f64)>,
    record_generation_time: bool,
    started: Instant,
    limits: Limits,
}

impl BundleBuilder {
    /// A builder for a bundle of `kind` with these manifest members. `created_at` is taken as
    /// given (from `SOURCE_DATE_EPOCH` for reproducible builds).
    pub fn new(
        kind: Kind,
        bundle_id: impl Into<String>,
        created_at: Timestamp,
        producer: Producer,
        governance: Governance,
    ) -> Self {
        BundleBuilder {
            kind,
            bundle_id: bundle_id.into(),
            created_at,
            producer,
            governance,
            policy_sha256: None,
            start: None,
            run: None,
            last_tenant_seq: None,
            checkpoint: None,
            first: None,
            last: None,
            count: 0,
            journal: Vec::new(),
            entries_tree: MerkleTreeBuilder::new(),
            deriver: Deriver::new(kind),
            artifacts: BTreeMap::new(),
            external: BTreeMap::new(),
            predicate: PredicateSource::Derived,
            slas: Vec::new(),
            record_generation_time: false,
            started: Instant::now(),
            limits: Limits::default(),
        }
    }

    /// The hash of the policy in force, if any.
    pub fn policy_sha256(&mut self, digest: Option<Digest>) -> &mut Self {
        self.policy_sha256 = digest;
        self
    }

    /// Makes [`chain_events`](Self::chain_events) continue an existing journal: the first event
    /// gets `seq` `next_seq` and `prev` `prev` (the digest of the entry before it). Without this
    /// call, chaining starts from genesis (`seq` 0, `prev` all zeros). Only before any entry.
    pub fn resume_from(&mut self, next_seq: u64, prev: Digest) -> Result<&mut Self, BundleError> {
        if self.count > 0 {
            return Err(BundleError::ChainStarted);
        }
        if next_seq == 0 && prev != Digest::ZERO {
            return Err(BundleError::ChainBroken {
                index: 0,
                reason: "seq 0 begins a journal; its prev must be all zeros".to_owned(),
            });
        }
        self.start = Some((next_seq, prev));
        Ok(self)
    }

    /// Makes the bundle a run chain (§6.1, format 0.2): the entries of run `run`, pushed already
    /// sealed by the journal with [`push_entry`](Self::push_entry). Each must carry `run` equal to
    /// `run`, `run_seq` and `run_prev`; they are linked over `run_seq`/`run_prev` and their
    /// tenant-wide `seq`s must strictly increase (they need not be contiguous). Nothing in an entry
    /// is rewritten. [`resume_from`](Self::resume_from) then gives the first `run_seq` and
    /// `run_prev`. Only before any entry.
    pub fn run_chain(&mut self, run: impl Into<String>) -> Result<&mut Self, BundleError> {
        if self.count > 0 {
            return Err(BundleError::ChainStarted);
        }
        let run = run.into();
        if run.is_empty() {
            return Err(BundleError::Manifest(vec![
                "`/journal/run` is empty".to_owned()
            ]));
        }
        self.run = Some(run);
        Ok(self)
    }

    /// Adds a checkpoint (§6.2, format 0.2): `note_text` is a signed note whose body is a Clyra
    /// checkpoint ([`Checkpoint::clyra`]) of the tenant journal, and `proofs` holds one RFC 9162
    /// inclusion proof per entry, in entry order, for the leaf at the entry's `seq` in a tree of
    /// the checkpoint's size. [`build`](Self::build) checks that all of it verifies, except the
    /// note's signature, which needs the verifier's trust file.
    pub fn checkpoint(&mut self, note_text: String, proofs: Vec<InclusionProof>) -> &mut Self {
        self.checkpoint = Some((note_text, proofs));
        self
    }

    /// Appends an already chained entry (with `seq` and `prev`), checking that it is a valid entry
    /// (§6) and that it links to the entry before it. The first entry may start anywhere. In a run
    /// chain ([`run_chain`](Self::run_chain)) the links are `run_seq`/`run_prev` (§6.1).
    pub fn push_entry(&mut self, entry: Value) -> Result<&mut Self, BundleError> {
        let index = self.count;
        let invalid = |reason: String| BundleError::InvalidEntry { index, reason };
        let issues = schema_issues(SchemaKind::JournalEntry, &entry);
        if let Some((pointer, message)) = issues.first() {
            return Err(invalid(format!("`{pointer}`: {message}")));
        }
        let canonical = jcs::canonicalize_value(&entry)?;
        if canonical.len() > self.limits.max_line_bytes {
            return Err(invalid(format!(
                "{} bytes, more than the {} a journal line may hold",
                canonical.len(),
                self.limits.max_line_bytes
            )));
        }
        let link = match &self.run {
            None => link_from_entry(&entry, &canonical).map_err(|e| invalid(e.to_string()))?,
            Some(run) => {
                let link = run_link(&entry, run, &canonical).map_err(invalid)?;
                let seq = link_from_entry(&entry, &canonical)
                    .map_err(|e| invalid(e.to_string()))?
                    .seq;
                if let Some(previous) = self.last_tenant_seq.filter(|p| seq <= *p) {
                    return Err(BundleError::ChainBroken {
                        index,
                        reason: format!(
                            "seq is {seq}, not greater than the previous entry's {previous}"
                        ),
                    });
                }
                self.last_tenant_seq = Some(seq);
                link
            }
        };
        let expected = match self.last {
            Some(last) => Some((last.seq.saturating_add(1), last.digest)),
            None => match self.start {
                Some(start) => Some(start),
                // Seq 0 begins a journal: its prev is all zeros (§6).
                None if link.seq == 0 => Some((0, Digest::ZERO)),
                None => None,
            },
        };
        if let Some((seq, prev)) = expected {
            if link.seq != seq {
                return Err(BundleError::ChainBroken {
                    index,
                    reason: format!("seq is {}, expected {seq}", link.seq),
                });
            }
            if link.prev != prev {
                return Err(BundleError::ChainBroken {
                    index,
                    reason: format!("prev is {}, expected {prev}", link.prev),
                });
            }
        }
        self.deriver.observe(&entry);
        self.entries_tree.push_data(&canonical);
        self.journal.extend_from_slice(&canonical);
        self.journal.push(b'\n');
        if self.first.is_none() {
            self.first = Some(link);
        }
        self.last = Some(link);
        self.count = self.count.saturating_add(1);
        Ok(self)
    }

    /// Chains raw events (JSON objects without `seq` and `prev`) after the last entry, or from
    /// [`resume_from`](Self::resume_from)'s start, or from genesis, and appends them.
    pub fn chain_events<I>(&mut self, events: I) -> Result<&mut Self, BundleError>
    where
        I: IntoIterator<Item = Value>,
    {
        if self.run.is_some() {
            return Err(BundleError::InvalidEntry {
                index: self.count,
                reason:
                    "a run chain's entries are sealed by the journal; push them with push_entry"
                        .to_owned(),
            });
        }
        let mut chain = match (self.last, self.start) {
            (Some(last), _) => ChainBuilder::resume(last.seq, last.digest),
            (None, Some((next_seq, prev))) => match next_seq.checked_sub(1) {
                Some(last_seq) => ChainBuilder::resume(last_seq, prev),
                None => ChainBuilder::new(),
            },
            (None, None) => ChainBuilder::new(),
        };
        for event in events {
            let index = self.count;
            let Value::Object(body) = event else {
                return Err(BundleError::InvalidEntry {
                    index,
                    reason: "an event must be a JSON object".to_owned(),
                });
            };
            let chained = chain.append(body, jcs::canonicalize_value).map_err(|e| {
                BundleError::InvalidEntry {
                    index,
                    reason: e.to_string(),
                }
            })?;
            self.push_entry(chained.entry)?;
        }
        Ok(self)
    }

    /// Embeds `bytes` as `artifacts/<path>`. `path` is relative to `artifacts/` and must be a safe
    /// path (§2.1).
    pub fn artifact(
        &mut self,
        path: &str,
        bytes: Vec<u8>,
        media_type: impl Into<String>,
    ) -> Result<&mut Self, BundleError> {
        let full = format!("{ARTIFACTS_PREFIX}{path}");
        zipstore::check_path(path)
            .and_then(|()| zipstore::check_path(&full))
            .map_err(|e| BundleError::InvalidPath {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if bytes.len() as u64 > self.limits.max_entry_bytes {
            return Err(BundleError::TooLarge(format!(
                "artifact `{path}` is {} bytes, more than {}",
                bytes.len(),
                self.limits.max_entry_bytes
            )));
        }
        if self.artifacts.contains_key(&full) {
            return Err(BundleError::Duplicate(full));
        }
        self.artifacts.insert(full, (bytes, media_type.into()));
        Ok(self)
    }

    /// References an artifact that is not embedded (§7). Its name must be a single safe path
    /// segment.
    pub fn external_artifact(&mut self, artifact: ArtifactRef) -> Result<&mut Self, BundleError> {
        if artifact.name.contains('/') || zipstore::check_path(&artifact.name).is_err() {
            return Err(BundleError::InvalidPath {
                path: artifact.name,
                reason: "an external artifact's name is a single safe path segment".to_owned(),
            });
        }
        if self.external.contains_key(&artifact.name) {
            return Err(BundleError::Duplicate(artifact.name));
        }
        self.external.insert(artifact.name.clone(), artifact);
        Ok(self)
    }

    /// Sets the predicate's domain members (`run`, `anchors`, `dbt`, ... for DEF; `run`,
    /// `automation`, `decisions`, ... for PEF). The builder fills `metrics.payload_bytes`,
    /// `metrics.entries` and, when recorded, `metrics.generation_ms` (keeping any other metrics
    /// given), and computes every `sla` item's `value` and `met`. Without this call the predicate is
    /// derived from the journal ([`derive_predicate`](Self::derive_predicate)).
    pub fn predicate(&mut self, predicate: Value) -> Result<&mut Self, BundleError> {
        match predicate {
            Value::Object(map) => {
                self.predicate = PredicateSource::Given(map);
                Ok(self)
            }
            _ => Err(BundleError::Predicate(vec![
                "the predicate must be a JSON object".to_owned(),
            ])),
        }
    }

    /// Derives the predicate's domain members from the journal when the bundle is built (the
    /// default): for DEF, `run` (governance `run_id`, first and last `ts`, `status` from a
    /// `dbt.run.finished` entry, else `partial`), `anchors` from `warehouse.anchor` entries, dbt
    /// models and tests from `dbt.model.finished` / `dbt.test.finished`; for PEF, `automation` from
    /// the first `gateway.decision` actor, decision counts and `tool_calls` from `gateway.decision`
    /// entries, `approvals` from `approval.granted`.
    pub fn derive_predicate(&mut self) -> &mut Self {
        self.predicate = PredicateSource::Derived;
        self
    }

    /// The predicate's domain members derived from the entries so far.
    pub fn derived_predicate(&self) -> Result<Value, BundleError> {
        Ok(self.deriver.predicate(&self.governance)?)
    }

    /// Adds an SLA on `metric` (a member of `metrics`, dotted for nested ones such as
    /// `latency_ms.p95`): the built predicate records the metric's value and whether
    /// `value op threshold` holds.
    pub fn sla(&mut self, metric: impl Into<String>, op: SlaOp, threshold: f64) -> &mut Self {
        self.slas.push((metric.into(), op, threshold));
        self
    }

    /// Whether to record `metrics.generation_ms` (off by default: it makes builds of identical
    /// inputs differ).
    pub fn record_generation_time(&mut self, on: bool) -> &mut Self {
        self.record_generation_time = on;
        self
    }

    /// Builds and signs the bundle. Identical inputs give identical bytes when the signatures are
    /// deterministic (Ed25519, ECDSA P-256 with RFC 6979; not RSA-PSS) and generation time is not
    /// recorded.
    pub fn build(&self, signers: &[&dyn Signer]) -> Result<Bundle, BundleError> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return Err(BundleError::NoEntries);
        };

        // Files, sorted by path: the journal and the embedded artifacts.
        let mut files: Vec<FileEntry> = Vec::with_capacity(self.artifacts.len() + 1);
        files.push(FileEntry {
            path: JOURNAL_PATH.to_owned(),
            size: self.journal.len() as u64,
            media_type: JOURNAL_MEDIA_TYPE.to_owned(),
            sha256: Digest::sha256(&self.journal),
        });
        for (path, (bytes, media_type)) in &self.artifacts {
            files.push(FileEntry {
                path: path.clone(),
                size: bytes.len() as u64,
                media_type: media_type.clone(),
                sha256: Digest::sha256(bytes),
            });
        }
        let checkpoint_files = match &self.checkpoint {
            None => None,
            Some((note, proofs)) => Some(self.checkpoint_files(note, proofs)?),
        };
        if let Some((note, proofs)) = &checkpoint_files {
            for (path, bytes, media_type) in [
                (CHECKPOINT_NOTE_PATH, note, CHECKPOINT_MEDIA_TYPE),
                (PROOFS_PATH, proofs, PROOFS_MEDIA_TYPE),
            ] {
                files.push(FileEntry {
                    path: path.to_owned(),
                    size: bytes.len() as u64,
                    media_type: media_type.to_owned(),
                    sha256: Digest::sha256(bytes),
                });
            }
        }
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let external: Vec<ArtifactRef> = self.external.values().cloned().collect();
        self.check_size(&files)?;

        // §4.1: leaves are the canonical bytes of each file entry, then each artifact reference.
        let mut tree = MerkleTreeBuilder::new();
        for f in &files {
            tree.push_data(&canonical(f)?);
        }
        for a in &external {
            tree.push_data(&canonical(a)?);
        }
        let manifest = Manifest {
            format: self.kind,
            // 0.1 unless a 0.2 member is used, so 0.1 bundles keep their bytes.
            format_version: if self.run.is_some() || self.checkpoint.is_some() {
                FORMAT_VERSION_0_2
            } else {
                FORMAT_VERSION
            }
            .to_owned(),
            bundle_id: self.bundle_id.clone(),
            created_at: self.created_at,
            producer: self.producer.clone(),
            governance: self.governance.clone(),
            policy_sha256: self.policy_sha256,
            files,
            external_artifacts: external,
            merkle: MerkleInfo {
                alg: MERKLE_ALG.to_owned(),
                tree_size: tree.len(),
                root: tree.root(),
            },
            journal: JournalInfo {
                path: JOURNAL_PATH.to_owned(),
                count: self.count,
                first_seq: first.seq,
                last_seq: last.seq,
                first_prev: first.prev,
                head: last.digest,
                entries_root: self.entries_tree.root(),
                chain: self.run.as_ref().map(|_| ChainMode::Run),
                run: self.run.clone(),
            },
            checkpoint: checkpoint_files.as_ref().map(|_| CheckpointInfo {
                note: CHECKPOINT_NOTE_PATH.to_owned(),
                proofs: PROOFS_PATH.to_owned(),
            }),
        };
        let rules = manifest_rules(&manifest);
        if !rules.is_empty() {
            return Err(BundleError::Manifest(
                rules.into_iter().map(|(_, m)| m).collect(),
            ));
        }
        let manifest_bytes = canonical(&manifest)?;

        let predicate = self.finished_predicate(&manifest)?;
        let statement = Statement::new(
            vec![
                subject(MANIFEST_PATH, Digest::sha256(&manifest_bytes)),
                subject(MERKLE_ROOT_SUBJECT, manifest.merkle.root),
            ],
            self.kind.predicate_type(),
            predicate,
        );
        // A bundle's attestation is closed (spec §5): one encoding per signature, so ECDSA
        // signatures are normalized to low s whatever the signer produced.
        // Signatures are sorted by key id, so their order is not a second encoding either.
        let mut low_s: Vec<crate::keys::LowS<'_>> =
            signers.iter().map(|s| crate::keys::LowS(*s)).collect();
        low_s.sort_by_key(|s| s.key_id().to_hex());
        let low_s_refs: Vec<&dyn Signer> = low_s.iter().map(|s| s as &dyn Signer).collect();
        let envelope = intoto::sign_statement(&statement, &low_s_refs, jcs::canonicalize)?;
        let envelope_bytes = jcs::canonicalize(envelope.to_json().as_bytes())?;

        // Sorted by path: artifacts/…, attestation.dsse.json, journal.ndjson, manifest.json.
        let mut entries: Vec<(&str, &[u8])> = self
            .artifacts
            .iter()
            .map(|(p, (b, _))| (p.as_str(), b.as_slice()))
            .collect();
        entries.push((ATTESTATION_PATH, &envelope_bytes));
        if let Some((note, proofs)) = &checkpoint_files {
            entries.push((CHECKPOINT_NOTE_PATH, note));
            entries.push((PROOFS_PATH, proofs));
        }
        entries.push((JOURNAL_PATH, &self.journal));
        entries.push((MANIFEST_PATH, &manifest_bytes));
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let zip = zipstore::write(&entries)?;
        Ok(Bundle { zip, manifest })
    }

    /// The checkpoint note's bytes and the canonical `proofs.json`, after checking that a
    /// verifier would accept them (§6.2), the note's signature aside.
    fn checkpoint_files(
        &self,
        note_text: &str,
        proofs: &[InclusionProof],
    ) -> Result<(Vec<u8>, Vec<u8>), BundleError> {
        let bad = |m: String| BundleError::Checkpoint(m);
        let note = SignedNote::parse(note_text).map_err(|e| bad(e.to_string()))?;
        let checkpoint = Checkpoint::parse_body(note.body()).map_err(|e| bad(e.to_string()))?;
        let (_, head) = checkpoint
            .clyra_extensions()
            .map_err(|e| bad(e.to_string()))?;
        // Each line's seq and leaf hash, from the journal as it will be written.
        let mut leaves = Vec::new();
        let mut last_digest = Digest::ZERO;
        for line in self
            .journal
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let value = jcs::parse_strict(line).map_err(|e| bad(e.to_string()))?;
            let seq = link_from_entry(&value, line)
                .map_err(|e| bad(e.to_string()))?
                .seq;
            leaves.push((seq, merkle::leaf_hash(line)));
            last_digest = Digest::sha256(line);
        }
        let Some(&(last_seq, _)) = leaves.last() else {
            return Err(BundleError::NoEntries);
        };
        if checkpoint.size <= last_seq {
            return Err(bad(format!(
                "the checkpoint's size {} does not cover the last entry's seq {last_seq}",
                checkpoint.size
            )));
        }
        if checkpoint.size == last_seq.saturating_add(1) && head != last_digest {
            return Err(bad(format!(
                "the checkpoint's head {head} is not the last entry's digest {last_digest}"
            )));
        }
        if proofs.len() != leaves.len() {
            return Err(bad(format!(
                "{} proofs for {} entries",
                proofs.len(),
                leaves.len()
            )));
        }
        let mut leaf_proofs = Vec::with_capacity(proofs.len());
        for (i, (proof, (seq, leaf))) in proofs.iter().zip(&leaves).enumerate() {
            if proof.leaf_index != *seq || proof.tree_size != checkpoint.size {
                return Err(bad(format!(
                    "proof {i} is for leaf {} of {}, entry {i} is leaf {seq} of {}",
                    proof.leaf_index, proof.tree_size, checkpoint.size
                )));
            }
            merkle::verify_inclusion(leaf, proof, &checkpoint.root)
                .map_err(|e| bad(format!("proof {i} (seq {seq}): {e}")))?;
            leaf_proofs.push(LeafProof {
                index: proof.leaf_index,
                hashes: proof.hashes.clone(),
            });
        }
        let doc = ProofsDocument {
            tree_size: checkpoint.size,
            root: checkpoint.root,
            proofs: leaf_proofs,
        };
        if doc.tree_size > crate::chain::MAX_SEQ {
            return Err(bad("the checkpoint's size is larger than 2^53-1".to_owned()));
        }
        let proofs_bytes = canonical(&doc)?;
        Ok((note_text.as_bytes().to_vec(), proofs_bytes))
    }

    /// Refuses a bundle a verifier with default limits would refuse.
    fn check_size(&self, files: &[FileEntry]) -> Result<(), BundleError> {
        let limits = &self.limits;
        if files.len().saturating_add(2) > limits.max_entries {
            return Err(BundleError::TooLarge(format!(
                "{} files, more than {}",
                files.len() + 2,
                limits.max_entries
            )));
        }
        let mut total: u64 = 0;
        for f in files {
            if f.size > limits.max_entry_bytes {
                return Err(BundleError::TooLarge(format!(
                    "`{}` is {} bytes, more than {}",
                    f.path, f.size, limits.max_entry_bytes
                )));
            }
            total = total.saturating_add(f.size);
        }
        if total > limits.max_total_bytes {
            return Err(BundleError::TooLarge(format!(
                "files add up to {total} bytes, more than {}",
                limits.max_total_bytes
            )));
        }
        Ok(())
    }

    /// The full predicate: domain members, metrics and SLAs, checked like a verifier would.
    fn finished_predicate(&self, manifest: &Manifest) -> Result<Value, BundleError> {
        let mut p = match &self.predicate {
            PredicateSource::Given(map) => map.clone(),
            PredicateSource::Derived => match self.deriver.predicate(&self.governance)? {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        };
        let mut metrics = match p.remove("metrics") {
            Some(Value::Object(m)) => m,
            None => Map::new(),
            Some(_) => {
                return Err(BundleError::Predicate(vec![
                    "`/metrics` must be an object".to_owned()
                ]))
            }
        };
        let payload_bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
        metrics.insert("payload_bytes".to_owned(), Value::from(payload_bytes));
        metrics.insert("entries".to_owned(), Value::from(manifest.journal.count));
        if self.record_generation_time {
            let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            metrics.insert("generation_ms".to_owned(), Value::from(ms));
        } else {
            metrics.remove("generation_ms");
        }
        let metrics = Value::Object(metrics);

        // SLAs given in the predicate keep their metric, op and threshold; value and met are
        // recomputed. Then the ones added with `sla`.
        let mut wanted: Vec<(String, SlaOp, f64)> = Vec::new();
        match p.remove("sla") {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let metric = item.get("metric").and_then(Value::as_str);
                    let op = item
                        .get("op")
                        .and_then(|o| serde_json::from_value::<SlaOp>(o.clone()).ok());
                    let threshold = item.get("threshold").and_then(Value::as_f64);
                    match (metric, op, threshold) {
                        (Some(m), Some(o), Some(t)) => wanted.push((m.to_owned(), o, t)),
                        _ => {
                            return Err(BundleError::Predicate(vec![format!(
                                "`/sla/{i}` needs `metric`, `op` (`<=` or `>=`) and a numeric `threshold`"
                            )]))
                        }
                    }
                }
            }
            Some(_) => {
                return Err(BundleError::Predicate(vec![
                    "`/sla` must be an array".to_owned()
                ]))
            }
        }
        wanted.extend(self.slas.iter().cloned());
        let mut sla = Vec::with_capacity(wanted.len());
        for (metric, op, threshold) in wanted {
            let value = metric_value(&metrics, &metric)
                .ok_or_else(|| BundleError::SlaMetric(metric.clone()))?;
            if !threshold.is_finite() {
                return Err(BundleError::Predicate(vec![format!(
                    "sla threshold for `{metric}` is not a finite number"
                )]));
            }
            let mut item = Map::new();
            item.insert("metric".to_owned(), Value::from(metric));
            item.insert(
                "op".to_owned(),
                serde_json::to_value(op)
                    .map_err(|e| BundleError::Predicate(vec![e.to_string()]))?,
            );
            item.insert("threshold".to_owned(), number(threshold));
            item.insert("value".to_owned(), number(value));
            item.insert("met".to_owned(), Value::Bool(op.holds(value, threshold)));
            sla.push(Value::Object(item));
        }
        p.insert("metrics".to_owned(), metrics);
        p.insert("sla".to_owned(), Value::Array(sla));
        let predicate = Value::Object(p);

        let schema = match self.kind {
            Kind::Def => SchemaKind::DefPredicate,
            Kind::Pef => SchemaKind::PefPredicate,
        };
        let mut problems: Vec<String> = schema_issues(schema, &predicate)
            .into_iter()
            .map(|(pointer, message)| {
                if pointer.is_empty() {
                    message
                } else {
                    format!("`{pointer}`: {message}")
                }
            })
            .collect();
        if problems.is_empty() {
            problems = predicate_rules(&predicate, Some(manifest));
        }
        if problems.is_empty() {
            Ok(predicate)
        } else {
            Err(BundleError::Predicate(problems))
        }
    }
}

/// A JSON number for `v`: an integer when `v` is integral and exactly representable.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() <= crate::jcs::MAX_SAFE_INTEGER as f64 {
        // Integral and within ±(2^53-1): the conversion is exact.
        Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

fn canonical<T: Serialize>(value: &T) -> Result<Vec<u8>, BundleError> {
    Ok(jcs::to_canonical_vec(value)?)
}

fn subject(name: &str, digest: Digest) -> Subject {
    Subject {
        name: name.to_owned(),
        digest: [("sha256".to_owned(), digest.to_hex())]
            .into_iter()
            .collect(),
    }
}

/// A built bundle: the canonical container bytes and the manifest they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    zip: Vec<u8>,
    manifest: Manifest,
}

impl Bundle {
    /// The bundle file's bytes.
    pub fn zip_bytes(&self) -> &[u8] {
        &self.zip
    }

    /// The bundle file's bytes, by value.
    pub fn into_zip_bytes(self) -> Vec<u8> {
        self.zip
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Writes the bundle file to `path`, which must not exist: the bytes go to a temporary file
    /// beside it, which is then linked into place without replacing anything.
    pub fn write_zip(&self, path: &Path) -> Result<(), BundleError> {
        write_new_file(path, &self.zip)
    }

    /// Writes the unpacked bundle (§2.3) into the new directory `path`, which must not exist.
    pub fn write_dir(&self, path: &Path) -> Result<(), BundleError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BundleError::Io { path, source }
        };
        std::fs::create_dir(path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                BundleError::Exists(path.to_path_buf())
            } else {
                BundleError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        let mut zip = ZipReader::open(io::Cursor::new(&self.zip[..]), zipstore::Limits::default())?;
        let names: Vec<String> = zip.entries().iter().map(|e| e.name.clone()).collect();
        for (index, name) in names.iter().enumerate() {
            let target = name.split('/').fold(path.to_path_buf(), |p, s| p.join(s));
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(io_err(&target))?;
            let mut reader = zip.entry(index)?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = reader.read(&mut buf).map_err(io_err(&target))?;
                if n == 0 {
                    break;
                }
                out.write_all(buf.get(..n).unwrap_or_default())
                    .map_err(io_err(&target))?;
            }
            out.sync_all().map_err(io_err(&target))?;
        }
        Ok(())
    }
}

/// Writes `bytes` to the new file `path` through a temporary file in the same directory, then
/// hard-links it into place, which fails rather than replace an existing file.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    if path.exists() {
        return Err(BundleError::Exists(path.to_path_buf()));
    }
    let io_err = |p: &Path, source| BundleError::Io {
        path: p.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io_err(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
            )
        })?;
    let (tmp, mut file) = {
        let mut attempt: u32 = 0;
        loop {
            let tmp = dir.join(format!(".{name}.{}.{attempt}.tmp", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 64 => {
                    attempt += 1;
                }
                Err(e) => return Err(io_err(&tmp, e)),
            }
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(&tmp, e));
    drop(file);
    let placed = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(BundleError::Exists(path.to_path_buf()))
        }
        // No hard links on this file system: rename, after checking again that nothing is there.
        Err(_) if !path.exists() => std::fs::rename(&tmp, path).map_err(|e| io_err(path, e)),
        Err(_) => Err(BundleError::Exists(path.to_path_buf())),
    });
    // Removing the temporary name fails harmlessly after a rename.
    let _ = std::fs::remove_file(&tmp);
    placed
}
