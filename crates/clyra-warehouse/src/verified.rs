//! Opening a DEF bundle that must verify before anything in it is read (replay, dbt lineage and
//! OpenLineage export): one place, so every reader fails closed the same way.

use std::io::Cursor;

use clyra_evidence::bundle::{self, Report, VerifyOptions};
use clyra_evidence::zipstore::{self, ZipReader};

/// Why a bundle could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// It did not verify: the error findings, and the report.
    Unverified {
        findings: Vec<String>,
        report: Box<Report>,
    },
    /// It verified but is not a DEF bundle.
    NotDef { format: String },
    /// The container could not be read after verification.
    Container(String),
}

/// A verified bundle's report and its opened container.
pub(crate) type Opened<'a> = (Report, ZipReader<Cursor<&'a [u8]>>);

/// Verifies `zip` (the report names it `name`), checks it is a DEF bundle, and opens it.
pub(crate) fn open_def<'a>(
    zip: &'a [u8],
    name: &str,
    options: &VerifyOptions<'_>,
) -> Result<Opened<'a>, OpenError> {
    let mut report = bundle::verify_zip_bytes(zip, options);
    report.bundle = Some(name.to_string());
    if !report.is_valid() {
        let findings = report
            .findings
            .iter()
            .filter(|f| f.code.is_error())
            .map(|f| match &f.path {
                Some(p) => format!("{} [{p}] {}", f.code, f.message),
                None => format!("{} {}", f.code, f.message),
            })
            .collect();
        return Err(OpenError::Unverified {
            findings,
            report: Box::new(report),
        });
    }
    let format = report.format.clone().unwrap_or_default();
    if format != "clyra-def" {
        return Err(OpenError::NotDef { format });
    }
    let zr = ZipReader::open(Cursor::new(zip), zipstore::Limits::default())
        .map_err(|e| OpenError::Container(e.to_string()))?;
    Ok((report, zr))
}
