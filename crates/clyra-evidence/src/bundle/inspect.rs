//! An unverified look inside a bundle for `clyra bundle inspect`: what it is, when and by whom it
//! was made, what it holds, and which keys the envelope says signed it. Nothing here is checked;
//! `verify_path` is what says whether any of it holds.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Manifest, ATTESTATION_PATH, MANIFEST_PATH};
use super::source::{container_fault, read_fault, DirError, DirSource, Source};
use super::verify::Limits;
use crate::codes::Code;
use crate::dsse::Envelope;
use crate::jcs;
use crate::zipstore::ZipReader;

/// An unverified summary of a bundle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    /// The path inspected.
    pub bundle: String,
    /// The manifest's `format`, as written.
    pub format: Option<String>,
    /// The manifest's `format_version`, as written.
    pub format_version: Option<String>,
    /// The manifest's `bundle_id`, as written.
    pub bundle_id: Option<String>,
    /// The manifest's `created_at`, as written.
    pub created_at: Option<String>,
    /// The manifest, when it has the 0.1 shape.
    pub manifest: Option<Manifest>,
    /// Every file the bundle holds, with its size.
    pub contents: Vec<(String, u64)>,
    /// The statement's `predicateType`, unverified.
    pub predicate_type: Option<String>,
    /// The statement's predicate, unverified.
    pub predicate: Option<Value>,
    /// The predicate's warehouse anchors (DEF), unverified.
    pub anchors: Vec<Value>,
    /// The key ids the envelope's signatures name (hints, not verified).
    pub signer_hints: Vec<String>,
    /// What could not be read.
    pub problems: Vec<String>,
}

/// Why a bundle could not be inspected at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The path cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The path is neither a file nor a directory.
    #[error("`{}` is neither a bundle file nor a bundle directory", path.display())]
    NotABundle {
        /// The path.
        path: PathBuf,
    },
    /// The container is unreadable or unsafe, so nothing in it was read.
    #[error("{code}: {message}")]
    Container {
        /// The verification code the verifier would report.
        code: Code,
        /// Why.
        message: String,
    },
}

/// Reads what a bundle says about itself, without verifying any of it.
pub fn inspect_path(path: &Path) -> Result<Inspection, InspectError> {
    let limits = Limits::default();
    let io_error = |source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_error)?;
    let bundle = path.display().to_string();
    if meta.is_dir() {
        match DirSource::open(path, &limits) {
            Ok(mut source) => Ok(inspect(&mut source, bundle, &limits)),
            Err(DirError::Io(e)) => Err(io_error(e)),
            Err(DirError::Findings(faults)) => {
                let (code, message) = faults
                    .into_iter()
                    .next()
                    .unwrap_or((Code::Archive, "unreadable".to_owned()));
                Err(InspectError::Container { code, message })
            }
        }
    } else if meta.is_file() {
        let file = File::open(path).map_err(io_error)?;
        match ZipReader::open(BufReader::new(file), limits.container()) {
            Ok(mut zip) => Ok(inspect(&mut zip, bundle, &limits)),
            Err(e) => {
                let (code, message) = container_fault(&e);
                Err(InspectError::Container { code, message })
            }
        }
    } else {
        Err(InspectError::NotABundle {
            path: path.to_path_buf(),
        })
    }
}

fn read_doc(source: &mut dyn Source, path: &str, limits: &Limits) -> Result<Vec<u8>, String> {
    match source.size(path) {
        None => return Err(format!("no `{path}`")),
        Some(size) if size > limits.max_document_bytes => {
            return Err(format!("`{path}` is {size} bytes, too large"))
        }
        Some(_) => {}
    }
    let mut bytes = Vec::new();
    source
        .open(path)
        .and_then(|r| {
            r.take(limits.max_document_bytes)
                .read_to_end(&mut bytes)
                .map_err(|e| read_fault(&e))
        })
        .map_err(|(_, message)| message)?;
    Ok(bytes)
}

fn inspect(source: &mut dyn Source, bundle: String, limits: &Limits) -> Inspection {
    let mut out = Inspection {
        bundle,
        format: None,
        format_version: None,
        bundle_id: None,
        created_at: None,
        manifest: None,
        contents: source.files(),
        predicate_type: None,
        predicate: None,
        anchors: Vec::new(),
        signer_hints: Vec::new(),
        problems: Vec::new(),
    };
    match read_doc(source, MANIFEST_PATH, limits).and_then(|b| {
        jcs::parse_strict(&b).map_err(|e| format!("manifest is not strict JSON: {e}"))
    }) {
        Ok(value) => {
            let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
            out.format = text("format");
            out.format_version = text("format_version");
            out.bundle_id = text("bundle_id");
            out.created_at = text("created_at");
            match Manifest::deserialize(&value) {
                Ok(m) => out.manifest = Some(m),
                Err(e) => out
                    .problems
                    .push(format!("manifest does not have the 0.1 shape: {e}")),
            }
        }
        Err(e) => out.problems.push(e),
    }
    let envelope = read_doc(source, ATTESTATION_PATH, limits)
        .and_then(|b| Envelope::from_json(&b).map_err(|e| format!("attestation: {e}")));
    match envelope {
        Ok(env) => {
            out.signer_hints = env
                .signatures
                .iter()
                .map(|s| s.keyid.clone().unwrap_or_else(|| "(no keyid)".to_owned()))
                .collect();
            match jcs::parse_strict(&env.payload) {
                Ok(statement) => {
                    out.predicate_type = statement
                        .get("predicateType")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    if let Some(p) = statement.get("predicate") {
                        out.anchors = p
                            .get("anchors")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        out.predicate = Some(p.clone());
                    }
                }
                Err(e) => out
                    .problems
                    .push(format!("statement is not strict JSON: {e}")),
            }
        }
        Err(e) => out.problems.push(e),
    }
    out
}
