//! Reading a dbt run back from its DEF bundle, verified first.
//!
//! [`load`] verifies the bundle's bytes with the kernel's verifier ([`clyra_evidence::bundle`])
//! and refuses one that does not verify (fail closed); only then does it read, from the same
//! bytes, `artifacts/dbt/run.json` and `artifacts/dbt/lineage.json`, and the facts the
//! OpenLineage `clyra_evidence` facet carries: the bundle id, SHA-256 of the bundle's bytes,
//! SHA-256 of the signed in-toto Statement (the DSSE payload) and the DSSE signatures.

use std::io::Cursor;

use clyra_evidence::bundle::{self, Report, VerifyOptions};
use clyra_evidence::dsse::Envelope;
use clyra_evidence::zipstore::ZipReader;
use clyra_evidence::Digest;

use super::lineage::Lineage;
use super::openlineage::{EvidenceFacet, FacetSignature};
use super::record::{RunRecord, LINEAGE_PATH, RUN_PATH};
use super::DbtError;

/// Largest document read from a bundle.
pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;

/// A verified bundle's dbt run.
#[derive(Debug, Clone)]
pub struct DbtBundle {
    /// `artifacts/dbt/run.json`.
    pub run: RunRecord,
    /// `artifacts/dbt/lineage.json`.
    pub lineage: Lineage,
    /// What the `clyra_evidence` facet says about the bundle.
    pub evidence: EvidenceFacet,
    /// The verifier's report.
    pub report: Box<Report>,
}

/// Why a bundle's dbt run could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle did not verify; nothing in it is read.
    #[error("the bundle does not verify; an unverified bundle is never read: {}", findings.join("; "))]
    Unverified {
        /// The verifier's error findings (`CODE [path] message`).
        findings: Vec<String>,
        /// The full report.
        report: Box<Report>,
    },
    /// The bundle verified but is not a DEF bundle.
    #[error("the bundle is a `{format}` bundle; a dbt run is in a DEF bundle (clyra-def)")]
    NotDef {
        /// Its format.
        format: String,
    },
    /// A file is not in the bundle.
    #[error("the bundle has no `{path}`: it does not hold a dbt run recorded by `clyra run -- dbt` or `clyra dbt record`")]
    Missing {
        /// The bundle path.
        path: String,
    },
    /// A file is larger than read.
    #[error("`{path}` is {size} bytes, more than the {max} read")]
    TooLarge {
        /// The bundle path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The container could not be read after it verified.
    #[error("cannot read the bundle: {0}")]
    Container(String),
    /// A document in the bundle is not what it should be.
    #[error(transparent)]
    Document(#[from] DbtError),
}

/// Verifies `zip` and reads its dbt run (see the module documentation). `name` names the bundle
/// in the report.
pub fn load(zip: &[u8], name: &str, options: &VerifyOptions<'_>) -> Result<DbtBundle, BundleError> {
    let (report, mut zr) = match crate::verified::open_def(zip, name, options) {
        Ok(v) => v,
        Err(crate::verified::OpenError::Unverified { findings, report }) => {
            return Err(BundleError::Unverified { findings, report })
        }
        Err(crate::verified::OpenError::NotDef { format }) => {
            return Err(BundleError::NotDef { format })
        }
        Err(crate::verified::OpenError::Container(e)) => return Err(BundleError::Container(e)),
    };
    let run_path = format!("{}{RUN_PATH}", bundle::ARTIFACTS_PREFIX);
    let lineage_path = format!("{}{LINEAGE_PATH}", bundle::ARTIFACTS_PREFIX);
    let run_bytes = read(&mut zr, &run_path)?;
    let lineage_bytes = read(&mut zr, &lineage_path)?;
    let envelope_bytes = read(&mut zr, bundle::ATTESTATION_PATH)?;
    let run = RunRecord::from_json(&run_bytes, &run_path)?;
    let lineage = Lineage::from_json(&lineage_bytes, &lineage_path)?;
    // It verified, so it parses; a failure is still reported, not assumed away.
    let envelope = Envelope::from_json(&envelope_bytes)
        .map_err(|e| BundleError::Container(format!("{}: {e}", bundle::ATTESTATION_PATH)))?;
    let evidence = EvidenceFacet {
        bundle_id: report.bundle_id.clone().unwrap_or_default(),
        bundle_sha256: Digest::sha256(zip).to_hex(),
        statement_sha256: Digest::sha256(&envelope.payload).to_hex(),
        signatures: envelope
            .signatures
            .iter()
            .map(|s| FacetSignature {
                keyid: s.keyid.clone().unwrap_or_default(),
                sig: base64_std(&s.sig),
            })
            .collect(),
    };
    Ok(DbtBundle {
        run,
        lineage,
        evidence,
        report: Box::new(report),
    })
}

fn read(zr: &mut ZipReader<Cursor<&[u8]>>, path: &str) -> Result<Vec<u8>, BundleError> {
    let Some(i) = zr.find(path) else {
        return Err(BundleError::Missing {
            path: path.to_string(),
        });
    };
    let size = zr.entries().get(i).map_or(0, |e| e.size);
    if size > MAX_DOCUMENT_BYTES {
        return Err(BundleError::TooLarge {
            path: path.to_string(),
            size,
            max: MAX_DOCUMENT_BYTES,
        });
    }
    zr.read_entry(i, MAX_DOCUMENT_BYTES)
        .map_err(|e| BundleError::Container(e.to_string()))
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
