//! Bundle verification (spec/common/bundle.md §8): container, manifest, attestation, files, Merkle
//! root, journal, external artifacts, in that order.
//!
//! Every problem inside the bundle is a [`Finding`]; only problems outside it (the path does not
//! exist, the options are unusable) are a [`VerifyError`]. Independent checks all run; a check
//! whose input failed an earlier step is skipped (no journal check against a manifest that failed
//! its schema). A container finding met while reading an entry (a CRC-32 mismatch) is fatal, as
//! the container checks are: it becomes the only finding and nothing more is read. Memory stays
//! bounded: documents are capped, files stream through SHA-256, and the journal is read line by
//! line with a per-line cap.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::model::{
    ChainMode, JournalInfo, Kind, Manifest, ProofsDocument, ATTESTATION_PATH, FORMAT_VERSIONS,
    MANIFEST_PATH, MERKLE_ROOT_SUBJECT,
};
use super::schema::{manifest_rules, predicate_rules, schema_issues, SchemaKind};
use super::source::{container_fault, read_fault, DirError, DirSource, Fault, Source};
use crate::chain::{link_from_entry, ChainLink, ChainVerifier, MAX_SEQ};
use crate::codes::Code;
use crate::digest::Digest;
use crate::dsse::{DsseError, Envelope};
use crate::intoto;
use crate::jcs;
use crate::keys::{Algorithm, KeyId, PublicKey};
use crate::merkle::{self, InclusionProof, MerkleTreeBuilder};
use crate::note::{Checkpoint, SignedNote};
use crate::trust::TrustStore;
use crate::zipstore::{self, ZipReader};

/// Size limits (spec/common/bundle.md §2.2, §6). The defaults are the spec's; tests lower them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most files in a bundle: 10,000.
    pub max_entries: usize,
    /// Largest file: 1 GiB.
    pub max_entry_bytes: u64,
    /// Largest sum of file sizes: just under 4 GiB.
    pub max_total_bytes: u64,
    /// Largest `manifest.json` or `attestation.dsse.json`: 16 MiB.
    pub max_document_bytes: u64,
    /// Longest journal line, without its newline: 16 MiB.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let container = zipstore::Limits::default();
        Limits {
            max_entries: container.max_entries,
            max_entry_bytes: container.max_entry_bytes,
            max_total_bytes: container.max_total_bytes,
            max_document_bytes: 16 << 20,
            max_line_bytes: 16 << 20,
        }
    }
}

impl Limits {
    pub(crate) fn container(&self) -> zipstore::Limits {
        zipstore::Limits {
            max_entries: self.max_entries,
            max_entry_bytes: self.max_entry_bytes,
            max_total_bytes: self.max_total_bytes,
        }
    }
}

/// What to verify a bundle against.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The trusted keys.
    pub trust: &'a TrustStore,
    /// The instant at which keys must be valid.
    pub at: Timestamp,
    /// How many distinct trusted keys must have signed (at least 1).
    pub threshold: usize,
    /// Where the external artifacts' bytes are (`DIR/<name>`), if given.
    pub artifacts_dir: Option<&'a Path>,
    /// Size limits.
    pub limits: Limits,
}

impl<'a> VerifyOptions<'a> {
    /// Threshold 1, no artifacts directory, default limits.
    pub fn new(trust: &'a TrustStore, at: Timestamp) -> Self {
        VerifyOptions {
            trust,
            at,
            threshold: 1,
            artifacts_dir: None,
            limits: Limits::default(),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check passed (warnings may be present).
    Valid,
    /// At least one `E_*` finding.
    Invalid,
}

/// One problem (or warning) found in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The stable code.
    pub code: Code,
    /// The file it concerns, when there is one.
    pub path: Option<String>,
    /// What is wrong, for people.
    pub message: String,
}

/// What the bundle claims, as far as it could be read (counts are 0 and digests `None` when the
/// manifest could not be used). The verdict says whether the claims held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Journal entries.
    pub entries: Option<u64>,
    /// `seq` of the first entry.
    pub first_seq: Option<u64>,
    /// `seq` of the last entry.
    pub last_seq: Option<u64>,
    /// Digest of the last entry.
    pub journal_head: Option<Digest>,
    /// The bundle Merkle root.
    pub merkle_root: Option<Digest>,
    /// The Merkle root over the journal entries.
    pub entries_root: Option<Digest>,
    /// The trusted keys whose signatures verified.
    pub signers: Vec<KeyId>,
    /// Files listed in the manifest.
    pub files: usize,
    /// External artifacts referenced.
    pub external_artifacts: usize,
    /// Warehouse anchors in a DEF predicate.
    pub anchors: usize,
    /// The statement's predicate type, once its signature verified.
    pub predicate_type: Option<String>,
}

/// A verification report (spec/common/bundle.md §8), serializable for `--format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `valid` or `invalid`.
    pub verdict: Verdict,
    /// The bundle's path, when verified from one.
    pub bundle: Option<String>,
    /// The manifest's `format`, as written.
    pub format: Option<String>,
    /// The manifest's `format_version`, as written.
    pub format_version: Option<String>,
    /// The manifest's `bundle_id`, as written.
    pub bundle_id: Option<String>,
    /// The manifest's `created_at`, as written.
    pub created_at: Option<String>,
    /// The instant keys were checked at.
    pub checked_at: Timestamp,
    /// Every finding, in check order.
    pub findings: Vec<Finding>,
    /// What the bundle claims.
    pub summary: Summary,
}

impl Report {
    /// Whether the verdict is [`Verdict::Valid`].
    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Valid
    }

    /// The findings' codes, in order.
    pub fn codes(&self) -> Vec<Code> {
        self.findings.iter().map(|f| f.code).collect()
    }
}

/// Why verification could not run: problems outside the bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bundle path cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The bundle path is neither a regular file nor a directory.
    #[error("`{}` is neither a bundle file nor a bundle directory", path.display())]
    NotABundle {
        /// The path.
        path: PathBuf,
    },
    /// The threshold is 0, which would accept anything.
    #[error("the signature threshold must be at least 1")]
    ZeroThreshold,
    /// The artifacts directory is not a directory.
    #[error("artifacts directory `{}` is not a directory", path.display())]
    ArtifactsDir {
        /// The path.
        path: PathBuf,
    },
}

/// Verifies a bundle file (canonical ZIP) or an unpacked bundle directory.
pub fn verify_path(path: &Path, options: &VerifyOptions<'_>) -> Result<Report, VerifyError> {
    if options.threshold == 0 {
        return Err(VerifyError::ZeroThreshold);
    }
    if let Some(dir) = options.artifacts_dir {
        if !dir.is_dir() {
            return Err(VerifyError::ArtifactsDir {
                path: dir.to_path_buf(),
            });
        }
    }
    let io_error = |source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_error)?;
    let mut run = Run::new(options, Some(path.display().to_string()));
    if meta.is_dir() {
        match DirSource::open(path, &options.limits) {
            Ok(mut source) => run.bundle(&mut source),
            Err(DirError::Io(e)) => return Err(io_error(e)),
            Err(DirError::Findings(faults)) => {
                for (code, message) in faults {
                    run.finding(code, None, message);
                }
            }
        }
    } else if meta.is_file() {
        let file = File::open(path).map_err(io_error)?;
        run.zip(BufReader::with_capacity(64 << 10, file));
    } else {
        return Err(VerifyError::NotABundle {
            path: path.to_path_buf(),
        });
    }
    Ok(run.finish())
}

/// Verifies a bundle held in memory. Never fails and never panics: anything wrong is a finding
/// (a zero threshold is an `E_THRESHOLD` finding).
pub fn verify_zip_bytes(bytes: &[u8], options: &VerifyOptions<'_>) -> Report {
    let mut run = Run::new(options, None);
    run.zip(Cursor::new(bytes));
    run.finish()
}

/// The state of one verification.
struct Run<'o, 'a> {
    options: &'o VerifyOptions<'a>,
    report: Report,
    /// The first container finding met while reading an entry (a CRC-32 or local header that
    /// does not match, a directory file that changed under the verifier). Container findings are
    /// fatal (§2.2, §2.3): once one is found nothing else is read, and it is the only finding.
    fatal: Option<Finding>,
    /// Listed files that are missing or whose size or digest is wrong: nothing is read from them.
    failed_files: BTreeSet<String>,
}

/// What the manifest step produced.
#[derive(Default)]
struct ManifestState {
    /// SHA-256 of the manifest's bytes, when they could be read.
    digest: Option<Digest>,
    /// The strictly parsed manifest.
    value: Option<Value>,
    /// Whether `format_version` is one this verifier implements.
    version_ok: bool,
    /// The manifest, when it passed its schema and rules; the later steps need it.
    usable: Option<Manifest>,
}

/// What reading the journal found, reported in the journal step.
struct JournalScan {
    /// Size and digest of the file, when it could be read to the end.
    read: Result<(u64, Digest), Fault>,
    /// Journal findings (lines, chain, entries root).
    findings: Vec<(Code, String)>,
    /// Each line's `seq` and RFC 9162 leaf hash, when asked for and every line had a `seq`.
    leaves: Option<Vec<(u64, Digest)>>,
    /// The digest of the last line's canonical bytes, when it could be read.
    last_digest: Option<Digest>,
}

impl<'o, 'a> Run<'o, 'a> {
    fn new(options: &'o VerifyOptions<'a>, bundle: Option<String>) -> Self {
        Run {
            options,
            report: Report {
                verdict: Verdict::Invalid,
                bundle,
                format: None,
                format_version: None,
                bundle_id: None,
                created_at: None,
                checked_at: options.at,
                findings: Vec::new(),
                summary: Summary::default(),
            },
            fatal: None,
            failed_files: BTreeSet::new(),
        }
    }

    fn finding(&mut self, code: Code, path: Option<&str>, message: impl Into<String>) {
        self.report.findings.push(Finding {
            code,
            path: path.map(str::to_owned),
            message: message.into(),
        });
    }

    /// A fault met while reading `path`: a missing file is an ordinary finding; anything else
    /// means the container cannot be trusted, which is fatal.
    fn read_failed(&mut self, code: Code, path: Option<&str>, message: String) {
        if code == Code::MissingFile {
            self.finding(code, path, message);
        } else if self.fatal.is_none() {
            self.fatal = Some(Finding {
                code,
                path: path.map(str::to_owned),
                message,
            });
        }
    }

    fn finish(mut self) -> Report {
        if let Some(fatal) = self.fatal.take() {
            self.report.findings = vec![fatal];
        }
        self.report.verdict = if self.report.findings.iter().any(|f| f.code.is_error()) {
            Verdict::Invalid
        } else {
            Verdict::Valid
        };
        self.report
    }

    /// §2.2: the container checks are fatal; nothing is read from a container that failed them.
    fn zip<R: Read + io::Seek>(&mut self, reader: R) {
        match ZipReader::open(reader, self.options.limits.container()) {
            Ok(mut zip) => self.bundle(&mut zip),
            Err(e) => {
                let (code, message) = container_fault(&e);
                self.finding(code, None, message);
            }
        }
    }

    fn bundle(&mut self, source: &mut dyn Source) {
        let manifest = self.manifest(source);
        if self.fatal.is_some() {
            return;
        }
        self.attestation(source, &manifest);
        let Some(m) = manifest.usable.as_ref() else {
            return;
        };
        if self.fatal.is_some() {
            return;
        }
        let s = &mut self.report.summary;
        s.entries = Some(m.journal.count);
        s.first_seq = Some(m.journal.first_seq);
        s.last_seq = Some(m.journal.last_seq);
        s.journal_head = Some(m.journal.head);
        s.entries_root = Some(m.journal.entries_root);
        s.merkle_root = Some(m.merkle.root);
        s.files = m.files.len();
        s.external_artifacts = m.external_artifacts.len();
        let journal = self.files(source, m);
        if self.fatal.is_some() {
            return;
        }
        if let Some(value) = &manifest.value {
            self.merkle_root(value, m);
        }
        let mut checked_lines = None;
        if let Some(scan) = journal {
            for (code, message) in scan.findings {
                self.finding(code, Some(&m.journal.path), message);
            }
            checked_lines = scan.leaves.zip(scan.last_digest);
        }
        if let (Some(_), Some((leaves, last_digest))) = (&m.checkpoint, checked_lines) {
            self.checkpoint(source, m, &leaves, last_digest);
            if self.fatal.is_some() {
                return;
            }
        }
        self.external_artifacts(m);
    }

    /// Reads `manifest.json` or `attestation.dsse.json`, within the document limit.
    fn document(&mut self, source: &mut dyn Source, path: &str) -> Option<Vec<u8>> {
        let Some(size) = source.size(path) else {
            self.finding(
                Code::MissingFile,
                Some(path),
                format!("the bundle has no `{path}`"),
            );
            return None;
        };
        let max = self.options.limits.max_document_bytes;
        if size > max {
            self.finding(
                Code::TooLarge,
                Some(path),
                format!("`{path}` is {size} bytes, more than the {max} allowed"),
            );
            return None;
        }
        let mut bytes = Vec::new();
        let read = source.open(path).and_then(|r| {
            r.take(max)
                .read_to_end(&mut bytes)
                .map_err(|e| read_fault(&e))
        });
        match read {
            Ok(_) => Some(bytes),
            Err((code, message)) => {
                self.read_failed(code, Some(path), message);
                None
            }
        }
    }

    /// §3, §4.
    fn manifest(&mut self, source: &mut dyn Source) -> ManifestState {
        let mut state = ManifestState::default();
        let Some(bytes) = self.document(source, MANIFEST_PATH) else {
            return state;
        };
        let here = Some(MANIFEST_PATH);
        state.digest = Some(Digest::sha256(&bytes));
        let value = match jcs::parse_strict(&bytes) {
            Ok(v) => v,
            Err(e) => {
                self.finding(
                    Code::Json,
                    here,
                    format!("manifest is not strict JSON: {e}"),
                );
                return state;
            }
        };
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        self.report.format = text("format");
        self.report.format_version = text("format_version");
        self.report.bundle_id = text("bundle_id");
        self.report.created_at = text("created_at");
        match jcs::canonicalize_value(&value) {
            Ok(canonical) if canonical == bytes => {}
            _ => self.finding(
                Code::NotCanonical,
                here,
                "manifest bytes are not RFC 8785 canonical JSON",
            ),
        }
        match value.get("format_version") {
            Some(Value::String(v)) if !FORMAT_VERSIONS.contains(&v.as_str()) => {
                self.finding(
                    Code::UnknownVersion,
                    here,
                    format!(
                        "format_version `{}` is not implemented by this verifier (it implements {})",
                        v.escape_debug(),
                        FORMAT_VERSIONS.join(" and ")
                    ),
                );
                state.value = Some(value);
                return state;
            }
            _ => state.version_ok = true,
        }
        let issues = schema_issues(SchemaKind::Manifest, &value);
        let parsed = if issues.is_empty() {
            Manifest::deserialize(&value).map_err(|e| vec![(String::new(), e.to_string())])
        } else {
            Err(issues)
        };
        match parsed {
            Err(issues) => {
                for (pointer, message) in issues {
                    self.finding(Code::Schema, here, schema_message(&pointer, &message));
                }
            }
            Ok(m) => {
                let rules = manifest_rules(&m);
                if rules.is_empty() {
                    state.usable = Some(m);
                }
                for (code, message) in rules {
                    self.finding(code, here, message);
                }
            }
        }
        state.value = Some(value);
        state
    }

    /// §5.
    /// A bundle's attestation is closed (spec §5): every signature names its key by `keyid`, the
    /// signatures are sorted by keyid with each key once, each key is trusted and valid at the verification time, each signature
    /// verifies under the key it names, and ECDSA signatures have a low `s`. DSSE alone lets
    /// unauthenticated parts of an envelope (hints, extra or repeated signatures, the `s` twin)
    /// change without changing the verdict; in a bundle, no byte may.
    fn closed_signatures(&mut self, envelope: &Envelope) {
        let here = Some(ATTESTATION_PATH);
        let pae = crate::dsse::pae(&envelope.payload_type, &envelope.payload);
        let mut previous: Option<KeyId> = None;
        for (i, sig) in envelope.signatures.iter().enumerate() {
            let Some(hint) = sig.keyid.as_deref() else {
                self.finding(
                    Code::Signature,
                    here,
                    format!(
                        "signature {i} has no keyid; a bundle's signatures must name their key"
                    ),
                );
                continue;
            };
            let Ok(keyid) = hint.parse::<KeyId>() else {
                self.finding(
                    Code::Signature,
                    here,
                    format!("signature {i}: keyid `{hint}` is not a key id (64 lowercase hex characters)"),
                );
                continue;
            };
            if previous.is_some_and(|p| p.to_hex() >= keyid.to_hex()) {
                self.finding(
                    Code::Signature,
                    here,
                    format!(
                        "signature {i} (key `{keyid}`) is out of order or repeated: \
                         signatures are sorted by keyid, one per key"
                    ),
                );
                continue;
            }
            previous = Some(keyid);
            let Some(key) = self.options.trust.get(&keyid) else {
                self.finding(
                    Code::KeyNotTrusted,
                    here,
                    format!("signature {i} names key `{keyid}`, which is not in the trust file"),
                );
                continue;
            };
            if key.public_key().verify(&pae, &sig.sig).is_err() {
                self.finding(
                    Code::Signature,
                    here,
                    format!("signature {i} does not verify under key `{keyid}`, which it names"),
                );
                continue;
            }
            if let Err(e) = key.check_valid_at(self.options.at) {
                self.finding(Code::KeyExpired, here, format!("signature {i}: {e}"));
                continue;
            }
            if key.algorithm() == crate::keys::Algorithm::EcdsaP256Sha256
                && crate::keys::ecdsa_p256_is_low_s(&sig.sig) != Some(true)
            {
                self.finding(
                    Code::Signature,
                    here,
                    format!("signature {i} has a high s; a bundle's ECDSA signatures are low-s"),
                );
            }
        }
    }

    fn attestation(&mut self, source: &mut dyn Source, manifest: &ManifestState) {
        let here = Some(ATTESTATION_PATH);
        let Some(bytes) = self.document(source, ATTESTATION_PATH) else {
            return;
        };
        if let Err(e) = jcs::parse_strict(&bytes) {
            self.finding(
                Code::Json,
                here,
                format!("envelope is not strict JSON: {e}"),
            );
            return;
        }
        let envelope = match Envelope::from_json(&bytes) {
            Ok(e) => e,
            Err(e @ DsseError::Base64 { .. }) => {
                self.finding(Code::Signature, here, e.to_string());
                return;
            }
            Err(e) => {
                self.finding(Code::Schema, here, e.to_string());
                return;
            }
        };
        // Standard padded base64 and canonical JSON are the envelope's one encoding; anything else
        // (URL-safe or unpadded base64 included) is a different file carrying the same signature.
        if jcs::canonicalize(envelope.to_json().as_bytes())
            .ok()
            .as_deref()
            != Some(&bytes[..])
        {
            self.finding(
                Code::NotCanonical,
                here,
                "envelope is not canonical: canonical JSON with standard padded base64 is required",
            );
        }
        if self.options.threshold == 0 {
            self.finding(
                Code::Threshold,
                here,
                "the signature threshold must be at least 1",
            );
            return;
        }
        let verified = match intoto::verify_statement(
            &envelope,
            self.options.trust,
            self.options.at,
            self.options.threshold,
            jcs::canonicalize,
        ) {
            Ok(v) => v,
            Err(e) => {
                self.finding(Code::of_intoto(&e), here, e.to_string());
                return;
            }
        };
        self.report.summary.signers = verified.key_ids().to_vec();
        self.closed_signatures(&envelope);
        // Take from the typed statement what the checks below need, and drop it (and the envelope)
        // before the verified payload is parsed again as a value: together they would hold the
        // predicate (every model and test of a DEF run) twice, most of verification's memory.
        let predicate_type = verified.statement().predicate_type.clone();
        let subject_findings = subject_problems(verified.statement(), manifest);
        let payload_bytes = verified.payload().to_vec();
        drop((verified, envelope, bytes));
        // The verified payload bytes, never the envelope again.
        let payload = match jcs::parse_strict(&payload_bytes) {
            Ok(v) => v,
            Err(e) => {
                self.finding(Code::Json, here, format!("statement: {e}"));
                return;
            }
        };
        let issues = schema_issues(SchemaKind::Statement, &payload);
        let statement_ok = issues.is_empty();
        for (pointer, message) in issues {
            self.finding(
                Code::Schema,
                here,
                format!("statement: {}", schema_message(&pointer, &message)),
            );
        }
        drop(payload_bytes);
        self.report.summary.predicate_type = Some(predicate_type.clone());
        for problem in subject_findings {
            self.finding(Code::SubjectMismatch, here, problem);
        }
        if !manifest.version_ok || !statement_ok {
            return;
        }
        let format = manifest
            .value
            .as_ref()
            .and_then(|v| v.get("format"))
            .and_then(Value::as_str)
            .and_then(Kind::from_format);
        let Some(kind) = Kind::from_predicate_type(&predicate_type) else {
            self.finding(
                Code::SubjectMismatch,
                here,
                format!("predicateType `{predicate_type}` is not a Clyra bundle predicate"),
            );
            return;
        };
        if let Some(format) = format {
            if format != kind {
                self.finding(
                    Code::SubjectMismatch,
                    here,
                    format!(
                        "predicateType `{predicate_type}` does not match format `{format}`, which requires `{}`",
                        format.predicate_type()
                    ),
                );
                // Which predicate schema applies is exactly what is in dispute.
                return;
            }
        }
        let predicate = payload.get("predicate").unwrap_or(&Value::Null);
        if kind == Kind::Def {
            self.report.summary.anchors = predicate
                .get("anchors")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
        }
        let schema = match kind {
            Kind::Def => SchemaKind::DefPredicate,
            Kind::Pef => SchemaKind::PefPredicate,
        };
        let issues = schema_issues(schema, predicate);
        if !issues.is_empty() {
            for (pointer, message) in issues {
                self.finding(
                    Code::Schema,
                    here,
                    format!("predicate: {}", schema_message(&pointer, &message)),
                );
            }
            return;
        }
        for problem in predicate_rules(predicate, manifest.usable.as_ref()) {
            self.finding(Code::Schema, here, format!("predicate: {problem}"));
        }
    }

    /// Sizes and digests of the listed files, and unlisted files. Returns the journal's own
    /// findings, which are reported after the Merkle root (§8 order).
    fn files(&mut self, source: &mut dyn Source, m: &Manifest) -> Option<JournalScan> {
        let mut journal = None;
        for f in &m.files {
            let here = Some(f.path.as_str());
            let Some(size) = source.size(&f.path) else {
                self.failed_files.insert(f.path.clone());
                self.finding(
                    Code::MissingFile,
                    here,
                    format!("`{}` is listed but not in the bundle", f.path),
                );
                continue;
            };
            let read = if f.path == m.journal.path {
                let scan = match source.open(&f.path) {
                    Ok(reader) => scan_journal(
                        reader,
                        &m.journal,
                        self.options.limits.max_line_bytes,
                        m.checkpoint.is_some(),
                    ),
                    Err(fault) => JournalScan {
                        read: Err(fault),
                        findings: Vec::new(),
                        leaves: None,
                        last_digest: None,
                    },
                };
                let read = scan.read.clone();
                journal = Some(scan);
                read
            } else if size != f.size {
                Ok((size, Digest::ZERO))
            } else {
                source.open(&f.path).and_then(hash_stream)
            };
            let matches =
                matches!(&read, Ok((size, digest)) if *size == f.size && *digest == f.sha256);
            if !matches {
                self.failed_files.insert(f.path.clone());
            }
            match read {
                Err((code, message)) => {
                    self.read_failed(code, here, message);
                    if self.fatal.is_some() {
                        return None;
                    }
                }
                Ok((size, _)) if size != f.size => self.finding(
                    Code::SizeMismatch,
                    here,
                    format!("`{}` is {size} bytes, the manifest says {}", f.path, f.size),
                ),
                Ok((_, digest)) if digest != f.sha256 => self.finding(
                    Code::DigestMismatch,
                    here,
                    format!(
                        "`{}` has sha256 {digest}, the manifest says {}",
                        f.path, f.sha256
                    ),
                ),
                Ok(_) => {}
            }
        }
        let listed: BTreeSet<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        for (path, _) in source.files() {
            if path != MANIFEST_PATH && path != ATTESTATION_PATH && !listed.contains(path.as_str())
            {
                self.finding(
                    Code::UnlistedFile,
                    Some(&path),
                    format!("`{path}` is in the bundle but not listed in the manifest"),
                );
            }
        }
        journal
    }

    /// §4.1.
    fn merkle_root(&mut self, value: &Value, m: &Manifest) {
        let mut tree = MerkleTreeBuilder::new();
        for member in ["files", "external_artifacts"] {
            for item in value
                .get(member)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match jcs::canonicalize_value(item) {
                    Ok(bytes) => tree.push_data(&bytes),
                    // Unreachable for a strictly parsed manifest; fail closed anyway.
                    Err(e) => {
                        self.finding(Code::MerkleRoot, Some(MANIFEST_PATH), e.to_string());
                        return;
                    }
                }
            }
        }
        if tree.len() != m.merkle.tree_size {
            self.finding(
                Code::MerkleRoot,
                Some(MANIFEST_PATH),
                format!(
                    "merkle.tree_size is {}, but the manifest has {} files and external artifacts",
                    m.merkle.tree_size,
                    tree.len()
                ),
            );
        } else if tree.root() != m.merkle.root {
            self.finding(
                Code::MerkleRoot,
                Some(MANIFEST_PATH),
                format!(
                    "merkle.root is {}, the files and external artifacts give {}",
                    m.merkle.root,
                    tree.root()
                ),
            );
        }
    }

    /// §6.2: the checkpoint note, its signature, the proofs file and one inclusion proof per
    /// journal line. Runs only when both files matched their listed size and digest and every
    /// journal line was read with a `seq` (`leaves`, in line order).
    fn checkpoint(
        &mut self,
        source: &mut dyn Source,
        m: &Manifest,
        leaves: &[(u64, Digest)],
        last_digest: Digest,
    ) {
        let Some(cp) = &m.checkpoint else {
            return;
        };
        if self.failed_files.contains(&cp.note) || self.failed_files.contains(&cp.proofs) {
            return;
        }
        let Some(&(last_seq, _)) = leaves.last() else {
            return;
        };
        let note_path = Some(cp.note.as_str());
        let Some(bytes) = self.document(source, &cp.note) else {
            return;
        };
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|_| "it is not UTF-8".to_owned())
            .and_then(|text| SignedNote::parse(text).map_err(|e| e.to_string()))
            .and_then(|note| {
                Checkpoint::parse_body(note.body())
                    .and_then(|c| c.clyra_extensions().map(|(_, head)| (c, head)))
                    .map(|(c, head)| (note, c, head))
                    .map_err(|e| e.to_string())
            });
        let (note, checkpoint, head) = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.finding(Code::Checkpoint, note_path, format!("checkpoint note: {e}"));
                return;
            }
        };
        // The body is not used before a trusted signature verified (signed-note).
        let keys: Vec<&PublicKey> = self
            .options
            .trust
            .valid_at(self.options.at)
            .map(|k| k.public_key())
            .filter(|k| k.algorithm() == Algorithm::Ed25519)
            .collect();
        if let Err(e) = note.verified_by_any_name(&keys) {
            self.finding(
                Code::CheckpointSignature,
                note_path,
                format!(
                    "checkpoint note: {e} (trusted Ed25519 keys valid at {})",
                    self.options.at
                ),
            );
            return;
        }
        if checkpoint.size <= last_seq {
            self.finding(
                Code::Checkpoint,
                note_path,
                format!(
                    "the checkpoint's tree size {} does not cover the last journal line's seq {last_seq}",
                    checkpoint.size
                ),
            );
            return;
        }
        if checkpoint.size == last_seq.saturating_add(1) && head != last_digest {
            self.finding(
                Code::Checkpoint,
                note_path,
                format!(
                    "the checkpoint's head is {head}, but its last leaf is the journal's last line, whose digest is {last_digest}"
                ),
            );
        }
        let proofs_path = Some(cp.proofs.as_str());
        let Some(bytes) = self.document(source, &cp.proofs) else {
            return;
        };
        let doc = jcs::parse_strict(&bytes)
            .map_err(|e| format!("not strict JSON: {e}"))
            .and_then(|value| match jcs::canonicalize_value(&value) {
                Ok(c) if c == bytes => Ok(value),
                _ => Err("not RFC 8785 canonical JSON".to_owned()),
            })
            .and_then(|value| ProofsDocument::deserialize(&value).map_err(|e| e.to_string()));
        let doc = match doc {
            Ok(d) => d,
            Err(e) => {
                self.finding(Code::Checkpoint, proofs_path, format!("proofs: {e}"));
                return;
            }
        };
        if doc.tree_size != checkpoint.size || doc.root != checkpoint.root {
            self.finding(
                Code::Checkpoint,
                proofs_path,
                format!(
                    "proofs are for a tree of {} leaves with root {}, the checkpoint is {} leaves with root {}",
                    doc.tree_size, doc.root, checkpoint.size, checkpoint.root
                ),
            );
            return;
        }
        let mut problems = Vec::new();
        if doc.proofs.len() != leaves.len() {
            problems.push(format!(
                "{} proofs for {} journal lines: exactly one per line is required",
                doc.proofs.len(),
                leaves.len()
            ));
        }
        for (i, (proof, &(seq, leaf))) in doc.proofs.into_iter().zip(leaves).enumerate() {
            let line = i + 1;
            if proof.index != seq {
                problems.push(format!(
                    "proof {i} has index {}, but line {line} has seq {seq}",
                    proof.index
                ));
                continue;
            }
            let inclusion = InclusionProof {
                leaf_index: proof.index,
                tree_size: doc.tree_size,
                hashes: proof.hashes,
            };
            if let Err(e) = merkle::verify_inclusion(&leaf, &inclusion, &doc.root) {
                problems.push(format!(
                    "proof {i} does not prove line {line} (seq {seq}) in the checkpoint: {e}"
                ));
            }
        }
        let more = problems.len().saturating_sub(1);
        if let Some(first) = problems.into_iter().next() {
            let message = match more {
                0 => first,
                1 => format!("{first} (and 1 more problem)"),
                n => format!("{first} (and {n} more problems)"),
            };
            self.finding(Code::InclusionProof, proofs_path, message);
        }
    }

    /// §7.
    fn external_artifacts(&mut self, m: &Manifest) {
        for a in &m.external_artifacts {
            let here = Some(a.name.as_str());
            let Some(dir) = self.options.artifacts_dir else {
                self.finding(
                    Code::ArtifactNotChecked,
                    here,
                    format!(
                        "external artifact `{}` ({}) was not checked: no artifacts directory given",
                        a.name, a.uri
                    ),
                );
                continue;
            };
            match check_artifact(&dir.join(&a.name), a.size, &a.sha256) {
                ArtifactCheck::Matches => {}
                ArtifactCheck::NotChecked(why) => self.finding(
                    Code::ArtifactNotChecked,
                    here,
                    format!(
                        "external artifact `{}` was not checked: {why} in `{}`",
                        a.name,
                        dir.display()
                    ),
                ),
                ArtifactCheck::Mismatch(why) => self.finding(
                    Code::ArtifactMismatch,
                    here,
                    format!("external artifact `{}`: {why}", a.name),
                ),
            }
        }
    }
}

fn schema_message(pointer: &str, message: &str) -> String {
    if pointer.is_empty() {
        message.to_owned()
    } else {
        format!("`{pointer}`: {message}")
    }
}

/// §5: exactly the two subjects, with these names and digests, in this order.
fn subject_problems(statement: &intoto::Statement, manifest: &ManifestState) -> Vec<String> {
    let subjects = &statement.subject;
    if subjects.len() != 2 {
        return vec![format!(
            "the statement has {} subjects; it must have exactly `{MANIFEST_PATH}` and `{MERKLE_ROOT_SUBJECT}`",
            subjects.len()
        )];
    }
    let merkle_root = manifest.usable.as_ref().map(|m| m.merkle.root);
    let mut problems = Vec::new();
    for (subject, (name, expected)) in subjects.iter().zip([
        (MANIFEST_PATH, manifest.digest),
        (MERKLE_ROOT_SUBJECT, merkle_root),
    ]) {
        if subject.name != name {
            problems.push(format!(
                "subject `{}` where `{name}` is required",
                subject.name
            ));
            continue;
        }
        let only_sha256 = subject.digest.len() == 1 && subject.digest.contains_key("sha256");
        if !only_sha256 {
            problems.push(format!(
                "subject `{name}` must carry exactly one digest, sha256"
            ));
            continue;
        }
        if let Some(expected) = expected {
            if subject.digest.get("sha256") != Some(&expected.to_hex()) {
                problems.push(format!(
                    "subject `{name}` has sha256 {}, the bundle gives {expected}",
                    subject.digest.get("sha256").map_or("", String::as_str)
                ));
            }
        }
    }
    problems
}

/// Streams `reader` through SHA-256.
fn hash_stream(mut reader: Box<dyn Read + '_>) -> Result<(u64, Digest), Fault> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut size: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_fault(&e)),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
        size = size.saturating_add(n as u64);
    }
    Ok((size, Digest::from_bytes(hasher.finalize().into())))
}

/// Hashes and counts bytes as they are read.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.size = self.size.saturating_add(n as u64);
        Ok(n)
    }
}

/// How a capped line read ended.
enum Line {
    /// No more bytes.
    End,
    /// A line; `terminated` unless the file ended without a newline.
    Read { terminated: bool },
    /// Longer than the cap; the rest of it is still unread.
    TooLong,
}

/// Reads one line into `out` (without its `\n`), never holding more than `cap` bytes.
fn read_line_capped<B: BufRead>(reader: &mut B, out: &mut Vec<u8>, cap: usize) -> io::Result<Line> {
    out.clear();
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(if out.is_empty() {
                Line::End
            } else {
                Line::Read { terminated: false }
            });
        }
        let (chunk, newline) = match find_newline(buf) {
            Some(i) => (buf.get(..i).unwrap_or_default(), true),
            None => (buf, false),
        };
        if out.len().saturating_add(chunk.len()) > cap {
            return Ok(Line::TooLong);
        }
        out.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(newline);
        reader.consume(used);
        if newline {
            return Ok(Line::Read { terminated: true });
        }
    }
}

/// The position of the first `\n` in `buf`, eight bytes at a time (a byte-by-byte search was a
/// visible share of verification time).
fn find_newline(buf: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const NEWLINES: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut chunks = buf.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // A byte of `x` is zero exactly where `chunk` has a newline; this test for a zero byte is
        // exact as to whether there is one, and the position is then found in the eight bytes.
        let x = u64::from_ne_bytes(word) ^ NEWLINES;
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            return chunk.iter().position(|&b| b == b'\n').map(|i| offset + i);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| offset + i)
}

/// Counts of one kind of line fault: the first one's message and how many more there were.
#[derive(Default)]
struct Tally(BTreeMap<Code, (String, u64)>);

impl Tally {
    fn add(&mut self, code: Code, message: impl FnOnce() -> String) {
        self.0
            .entry(code)
            .and_modify(|(_, more)| *more = more.saturating_add(1))
            .or_insert_with(|| (message(), 0));
    }

    fn drain(self, order: &[Code], out: &mut Vec<(Code, String)>) {
        let mut map = self.0;
        for code in order {
            if let Some((first, more)) = map.remove(code) {
                let message = match more {
                    0 => first,
                    1 => format!("{first} (and 1 more line)"),
                    n => format!("{first} (and {n} more lines)"),
                };
                out.push((*code, message));
            }
        }
    }
}

/// The run-chain link of an entry (§6.1): its `run` must be `run`, and `run_seq` and `run_prev`
/// take the places of `seq` and `prev`.
pub(crate) fn run_link(value: &Value, run: &str, canonical: &[u8]) -> Result<ChainLink, String> {
    match value.get("run") {
        Some(Value::String(r)) if r == run => {}
        Some(Value::String(r)) => {
            return Err(format!(
                "the entry belongs to run `{}`, not `{}`",
                r.escape_debug(),
                run.escape_debug()
            ))
        }
        _ => return Err("the entry has no string `run`".to_owned()),
    }
    let seq = value
        .get("run_seq")
        .and_then(Value::as_u64)
        .filter(|s| *s <= MAX_SEQ)
        .ok_or_else(|| "`run_seq` is not an integer in 0..=2^53-1".to_owned())?;
    let prev = value
        .get("run_prev")
        .and_then(Value::as_str)
        .and_then(|s| Digest::from_hex(s).ok())
        .ok_or_else(|| "`run_prev` is not a digest".to_owned())?;
    Ok(ChainLink {
        seq,
        prev,
        digest: Digest::sha256(canonical),
    })
}

/// An entry's `seq`, when it is an integer in 0..=2^53-1.
fn entry_seq(value: &Value) -> Option<u64> {
    value
        .get("seq")
        .and_then(Value::as_u64)
        .filter(|s| *s <= MAX_SEQ)
}

/// §6: reads the journal once, line by line, computing its size and digest for the file check and
/// checking every line, the chain and the entries root against the manifest's `journal`. With
/// `collect_leaves`, also returns each line's `seq` and leaf hash for the inclusion proofs (§6.2).
fn scan_journal(
    reader: Box<dyn Read + '_>,
    info: &JournalInfo,
    max_line: usize,
    collect_leaves: bool,
) -> JournalScan {
    let mut hashing = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
        size: 0,
    };
    let mut findings = Vec::new();
    if info.first_seq == 0 && info.first_prev != Digest::ZERO {
        findings.push((
            Code::ChainBroken,
            format!(
                "chain broken: the journal starts at seq 0, whose prev must be all zeros, not {}",
                info.first_prev
            ),
        ));
    }
    let mut tally = Tally::default();
    let mut chain = ChainVerifier::new(Some(info.first_seq), Some(info.first_prev));
    let mut chain_error: Option<String> = None;
    let run = match info.chain_mode() {
        ChainMode::Journal => None,
        ChainMode::Run => Some(info.run.as_deref().unwrap_or_default()),
    };
    let mut previous_seq: Option<u64> = None;
    let mut leaves: Vec<(u64, Digest)> = Vec::new();
    let mut leaves_ok = collect_leaves;
    let mut last_digest = None;
    // Set when a line cannot be linked: the chain and the entries root are then not checked.
    let mut unlinkable = false;
    let mut tree = MerkleTreeBuilder::new();
    let mut line = Vec::new();
    // Reused for every line, like `line`: no allocation per line once both have grown.
    let mut canonical = Vec::new();
    let mut number: u64 = 0;
    {
        let mut buffered = BufReader::with_capacity(64 << 10, &mut hashing);
        loop {
            let read = match read_line_capped(&mut buffered, &mut line, max_line) {
                Ok(r) => r,
                Err(e) => {
                    return JournalScan {
                        read: Err(read_fault(&e)),
                        findings,
                        leaves: None,
                        last_digest: None,
                    }
                }
            };
            number = number.saturating_add(1);
            let terminated = match read {
                Line::End => break,
                Line::TooLong => {
                    findings.push((
                        Code::TooLarge,
                        format!("line {number} is longer than {max_line} bytes; the journal was not checked further"),
                    ));
                    unlinkable = true;
                    // Hash the rest for the file check, without holding it.
                    if let Err(e) = io::copy(&mut buffered, &mut io::sink()) {
                        return JournalScan {
                            read: Err(read_fault(&e)),
                            findings,
                            leaves: None,
                            last_digest: None,
                        };
                    }
                    break;
                }
                Line::Read { terminated } => terminated,
            };
            if !terminated {
                tally.add(Code::Json, || {
                    format!("line {number} does not end with a newline")
                });
            }
            let value = match jcs::parse_strict(&line) {
                Ok(v) => v,
                Err(e) => {
                    tally.add(Code::Json, || {
                        format!("line {number} is not strict JSON: {e}")
                    });
                    unlinkable = true;
                    continue;
                }
            };
            canonical.clear();
            if let Err(e) = jcs::canonicalize_value_into(&value, &mut canonical) {
                tally.add(Code::Json, || format!("line {number}: {e}"));
                unlinkable = true;
                continue;
            }
            if canonical != line {
                tally.add(Code::NotCanonical, || {
                    format!("line {number} is not RFC 8785 canonical JSON")
                });
            }
            let issues = schema_issues(SchemaKind::JournalEntry, &value);
            if let Some((pointer, message)) = issues.first() {
                tally.add(Code::Schema, || {
                    format!("line {number}: {}", schema_message(pointer, message))
                });
            }
            tree.push_data(&canonical);
            if collect_leaves {
                match entry_seq(&value) {
                    Some(seq) if leaves_ok => leaves.push((seq, merkle::leaf_hash(&canonical))),
                    _ => leaves_ok = false,
                }
                last_digest = Some(Digest::sha256(&canonical));
            }
            if unlinkable || chain_error.is_some() {
                continue;
            }
            let Some(run) = run else {
                match link_from_entry(&value, &canonical) {
                    Ok(link) => {
                        if let Err(e) = chain.push(link) {
                            chain_error = Some(e.to_string());
                        }
                    }
                    Err(_) => unlinkable = true, // reported as E_SCHEMA above
                }
                continue;
            };
            // §6.1: links over run_seq/run_prev, and seq strictly increasing.
            let Some(seq) = entry_seq(&value) else {
                unlinkable = true; // reported as E_SCHEMA above
                continue;
            };
            if let Some(p) = previous_seq.filter(|p| seq <= *p) {
                chain_error = Some(format!(
                    "line {number} has seq {seq}, not greater than the previous line's {p}"
                ));
                continue;
            }
            previous_seq = Some(seq);
            match run_link(&value, run, &canonical) {
                Ok(link) => {
                    if let Err(e) = chain.push(link) {
                        chain_error = Some(format!("run `{run}`, over run_seq/run_prev: {e}"));
                    }
                }
                Err(reason) => chain_error = Some(format!("line {number}: {reason}")),
            }
        }
    }
    tally.drain(
        &[Code::Json, Code::NotCanonical, Code::Schema],
        &mut findings,
    );
    if !unlinkable {
        let count = chain.count();
        let result = match chain_error {
            Some(e) => Err(e),
            None => chain
                .finish(Some(info.head), Some(info.last_seq))
                .map_err(|e| match run {
                    Some(run) => format!("run `{run}`, over run_seq/run_prev: {e}"),
                    None => e.to_string(),
                }),
        };
        match result {
            Err(e) => findings.push((Code::ChainBroken, format!("chain broken: {e}"))),
            Ok(_) if count != info.count => findings.push((
                Code::ChainBroken,
                format!(
                    "chain broken: the journal has {count} entries, the manifest says {}",
                    info.count
                ),
            )),
            Ok(_) => {}
        }
        if tree.root() != info.entries_root {
            findings.push((
                Code::MerkleRoot,
                format!(
                    "entries_root is {}, the entries give {}",
                    info.entries_root,
                    tree.root()
                ),
            ));
        }
    }
    let digest = Digest::from_bytes(hashing.hasher.finalize().into());
    JournalScan {
        read: Ok((hashing.size, digest)),
        findings,
        leaves: (leaves_ok && !unlinkable).then_some(leaves),
        last_digest,
    }
}

/// The outcome of checking one external artifact.
enum ArtifactCheck {
    Matches,
    NotChecked(String),
    Mismatch(String),
}

fn check_artifact(path: &Path, size: u64, sha256: &Digest) -> ArtifactCheck {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return ArtifactCheck::NotChecked("not found".to_owned())
        }
        Err(e) => return ArtifactCheck::NotChecked(format!("cannot read it ({e})")),
    };
    if !meta.is_file() {
        return ArtifactCheck::Mismatch(format!("`{}` is not a regular file", path.display()));
    }
    if meta.len() != size {
        return ArtifactCheck::Mismatch(format!(
            "the supplied file is {} bytes, the reference says {size}",
            meta.len()
        ));
    }
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return ArtifactCheck::NotChecked(format!("cannot read it ({e})")),
    };
    match hash_stream(Box::new(file.take(size.saturating_add(1)))) {
        Ok((n, _)) if n != size => ArtifactCheck::Mismatch(format!(
            "the supplied file changed size while being read ({n} bytes, the reference says {size})"
        )),
        Ok((_, d)) if d != *sha256 => ArtifactCheck::Mismatch(format!(
            "the supplied file has sha256 {d}, the reference says {sha256}"
        )),
        Ok(_) => ArtifactCheck::Matches,
        Err((_, message)) => ArtifactCheck::NotChecked(format!("cannot read it ({message})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_lines() {
        let mut r = BufReader::with_capacity(4, &b"ab\ncdefgh\n\nxy"[..]);
        let mut line = Vec::new();
        let mut got = Vec::new();
        loop {
            match read_line_capped(&mut r, &mut line, 5).unwrap() {
                Line::End => break,
                Line::Read { terminated } => {
                    got.push((String::from_utf8(line.clone()).unwrap(), terminated))
                }
                Line::TooLong => {
                    got.push(("<too long>".into(), false));
                    break;
                }
            }
        }
        assert_eq!(
            got,
            [("ab".to_owned(), true), ("<too long>".to_owned(), false)]
        );
        let mut r = BufReader::with_capacity(4, &b"ab\n\nxy"[..]);
        let mut seen = Vec::new();
        while let Line::Read { terminated } = read_line_capped(&mut r, &mut line, 5).unwrap() {
            seen.push((String::from_utf8(line.clone()).unwrap(), terminated));
        }
        assert_eq!(
            seen,
            [
                ("ab".to_owned(), true),
                (String::new(), true),
                ("xy".to_owned(), false)
            ]
        );
    }

    #[test]
    fn find_newline_agrees_with_a_plain_search() {
        let mut buf: Vec<u8> = (0u8..=255)
            .cycle()
            .take(100)
            .filter(|&b| b != b'\n')
            .collect();
        assert_eq!(find_newline(&buf), None);
        assert_eq!(find_newline(&[]), None);
        for at in 0..buf.len() {
            let mut with = buf.clone();
            with[at] = b'\n';
            for start in 0..9.min(at + 1) {
                let slice = &with[start..];
                assert_eq!(
                    find_newline(slice),
                    slice.iter().position(|&b| b == b'\n'),
                    "newline at {at}, from {start}"
                );
            }
        }
        // Bytes that differ from `\n` only in their high bit or by one do not count.
        buf = vec![0x8a, 0x0b, 0x09, 0x8a, 0x0b, 0x09, 0x8a, 0x0b, 0x0a];
        assert_eq!(find_newline(&buf), Some(8));
    }

    #[test]
    fn tally_counts_repeats() {
        let mut t = Tally::default();
        t.add(Code::Json, || "a".into());
        t.add(Code::Json, || "b".into());
        t.add(Code::Schema, || "c".into());
        let mut out = Vec::new();
        t.drain(&[Code::Schema, Code::Json], &mut out);
        assert_eq!(
            out,
            [
                (Code::Schema, "c".to_owned()),
                (Code::Json, "a (and 1 more line)".to_owned())
            ]
        );
    }

    #[test]
    fn garbage_is_an_archive_finding() {
        let trust = TrustStore::new();
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let report = verify_zip_bytes(
            b"not a zip at all, not even close",
            &VerifyOptions::new(&trust, at),
        );
        assert_eq!(report.codes(), [Code::Archive]);
        assert_eq!(report.verdict, Verdict::Invalid);
    }
}
