//! `clyra verify-envelope`: check a DSSE envelope holding an in-toto Statement.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clyra_evidence::codes::Code;
use clyra_evidence::dsse::Envelope;
use clyra_evidence::intoto;
use clyra_evidence::trust::TrustStore;
use clyra_evidence::{jcs, Digest};
use serde::Serialize;

use crate::output::{Exit, Output};

/// The arguments of this command.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The envelope file.
    pub envelope: PathBuf,
    /// The trust file listing accepted public keys.
    #[arg(long)]
    pub trust: PathBuf,
    /// Distinct trusted keys that must have signed.
    #[arg(long, default_value_t = 1)]
    pub threshold: usize,
    /// Verify as of this time (RFC 3339) instead of now.
    #[arg(long)]
    pub at: Option<jiff::Timestamp>,
    /// Require this predicate type.
    #[arg(long)]
    pub predicate_type: Option<String>,
    /// A file that must be a subject of the statement; repeat for several.
    #[arg(long = "subject")]
    pub subjects: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub code: Code,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub verdict: &'static str,
    pub envelope: String,
    pub checked_at: String,
    pub predicate_type: Option<String>,
    pub signers: Vec<String>,
    pub subjects: Vec<String>,
    pub findings: Vec<Finding>,
}

/// What to check a statement against.
pub struct Expectations<'a> {
    pub threshold: usize,
    pub at: jiff::Timestamp,
    pub predicate_type: Option<&'a str>,
    /// Subjects that must be present: name and SHA-256.
    pub subjects: Vec<(String, Digest)>,
}

/// Verifies `envelope_bytes` and returns the report: every problem inside the envelope is a
/// finding, never an error.
pub fn verify_bytes(
    envelope_name: &str,
    envelope_bytes: &[u8],
    trust: &TrustStore,
    want: &Expectations<'_>,
) -> Report {
    let at = want.at;
    let mut report = Report {
        verdict: "invalid",
        envelope: envelope_name.to_owned(),
        checked_at: at.to_string(),
        predicate_type: None,
        signers: Vec::new(),
        subjects: Vec::new(),
        findings: Vec::new(),
    };
    let envelope = match Envelope::from_json(envelope_bytes) {
        Ok(e) => e,
        Err(e) => {
            report.findings.push(Finding {
                code: Code::of_dsse(&e),
                message: e.to_string(),
            });
            return report;
        }
    };
    let verified =
        match intoto::verify_statement(&envelope, trust, at, want.threshold, jcs::canonicalize) {
            Ok(v) => v,
            Err(e) => {
                report.findings.push(Finding {
                    code: Code::of_intoto(&e),
                    message: e.to_string(),
                });
                return report;
            }
        };
    let statement = verified.statement();
    report.signers = verified.key_ids().iter().map(|k| k.to_hex()).collect();
    report.predicate_type = Some(statement.predicate_type.clone());
    report.subjects = statement.subject.iter().map(|s| s.name.clone()).collect();
    if let Some(want) = want.predicate_type {
        if statement.predicate_type != want {
            report.findings.push(Finding {
                code: Code::SubjectMismatch,
                message: format!(
                    "predicate type is `{}`, expected `{want}`",
                    statement.predicate_type
                ),
            });
        }
    }
    for (name, digest) in &want.subjects {
        if !statement.subject_matches(Some(name), digest) {
            report.findings.push(Finding {
                code: Code::SubjectMismatch,
                message: format!("`{name}` (sha256 {digest}) is not a subject of the statement"),
            });
        }
    }
    if report.findings.iter().all(|f| !f.code.is_error()) {
        report.verdict = "valid";
    }
    report
}

pub fn run(args: VerifyArgs, out: &Output) -> anyhow::Result<Exit> {
    // Problems outside the evidence (unreadable trust file or envelope) are errors, exit 1.
    let trust = TrustStore::read_file(&args.trust)?;
    let bytes = read_envelope(&args.envelope)?;
    let mut subjects = Vec::new();
    for path in &args.subjects {
        let data = std::fs::read(path)
            .with_context(|| format!("cannot read subject `{}`", path.display()))?;
        subjects.push((path.to_string_lossy().into_owned(), Digest::sha256(&data)));
    }
    let want = Expectations {
        threshold: args.threshold,
        at: args.at.unwrap_or_else(jiff::Timestamp::now),
        predicate_type: args.predicate_type.as_deref(),
        subjects,
    };
    let report = verify_bytes(&args.envelope.display().to_string(), &bytes, &trust, &want);
    let valid = report.verdict == "valid";
    out.emit(&report, || human(&report));
    Ok(if valid {
        Exit::Ok
    } else {
        Exit::VerificationFailed
    })
}

fn read_envelope(path: &Path) -> anyhow::Result<Vec<u8>> {
    const MAX_ENVELOPE_BYTES: u64 = 64 << 20;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if meta.len() > MAX_ENVELOPE_BYTES {
        anyhow::bail!(
            "`{}` is larger than {} MiB; not an envelope",
            path.display(),
            MAX_ENVELOPE_BYTES >> 20
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
}

pub fn human(r: &Report) -> String {
    let mut s = format!("{}: {}\n", r.verdict.to_uppercase(), r.envelope);
    if let Some(p) = &r.predicate_type {
        s.push_str(&format!("  predicate type  {p}\n"));
    }
    for k in &r.signers {
        s.push_str(&format!("  signed by       {k}\n"));
    }
    for n in &r.subjects {
        s.push_str(&format!("  subject         {n}\n"));
    }
    s.push_str(&format!("  checked at      {}\n", r.checked_at));
    for f in &r.findings {
        s.push_str(&format!("  {}  {}\n", f.code, f.message));
    }
    s
}
