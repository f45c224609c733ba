//! OpenLineage RunEvents (spec 2-0-2) for a recorded dbt run, carrying Clyra's evidence.
//!
//! Per model, seed and snapshot that ran: a `START` event at the start of its execute step and
//! one `COMPLETE` (status `success`), `FAIL` (`error`) event at its end; a node that started and
//! did not finish (the run was interrupted) gets `START` and `ABORT`. Skipped nodes never ran and
//! get none. Each event has:
//!
//! - `job`: `{namespace: <job namespace>, name: <unique_id>}`, with the `jobType` facet
//!   (`BATCH`, `DBT`, `MODEL` / `SEED` / `SNAPSHOT`);
//! - `run.runId`: a name-based UUID (RFC 9562 §5.8 UUIDv8 built as its Appendix B.2 example does:
//!   the first 16 bytes of SHA-256 over [`RUN_ID_NAMESPACE`]'s 16 bytes followed by the UTF-8 name
//!   `<invocation_id>/<unique_id>`, version and variant bits set). The same dbt run gives the
//!   same run ids, whichever bundle they are exported from;
//! - `run.facets.parent`: the dbt invocation as the parent run (job `dbt-run-<project>`, run id
//!   the invocation id when it is a UUID, else the name-based UUID of `<invocation_id>`);
//! - `run.facets.clyra_evidence` (when a bundle is given): the bundle's id, SHA-256 of its bytes,
//!   SHA-256 of its signed in-toto Statement and the DSSE signatures, so a consumer can fetch the
//!   bundle and verify offline that the lineage event and the evidence belong together (schema:
//!   `spec/openlineage/clyra-evidence-facet.json`);
//! - `run.facets.errorMessage` on `FAIL`, with dbt's message;
//! - `inputs`: the node's upstream sources, seeds, models and snapshots; `outputs`: its own
//!   relation (none for ephemeral models); datasets named `database.schema.table` in the
//!   dataset namespace (`postgres://host:port` by OpenLineage's naming convention; the artifacts
//!   do not say the host, so the caller passes it, else `<adapter>://unknown`);
//! - `eventTime` from the node's timing (the run's start or end when the node has none),
//!   `producer` and `schemaURL`.
//!
//! Events are in a fixed order (by node unique_id, `START` before its end), so the same inputs
//! give the same events.
//!
//! ```no_run
//! use clyra_evidence::bundle::VerifyOptions;
//! use clyra_evidence::trust::TrustStore;
//! use clyra_warehouse::dbt::{bundle, openlineage};
//!
//! let trust = TrustStore::read_file("trust.json".as_ref())?;
//! let zip = std::fs::read("run.def.zip")?;
//! let b = bundle::load(&zip, "run.def.zip", &VerifyOptions::new(&trust, jiff::Timestamp::now()))?;
//! let opts = openlineage::Options {
//!     dataset_namespace: Some("postgres://db.internal:5432".into()),
//!     evidence: Some(b.evidence.clone()),
//!     ..Default::default()
//! };
//! for event in openlineage::events(&b.run, &b.lineage, &opts)? {
//!     println!("{event}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::lineage::Lineage;
use super::record::RunRecord;
use super::{time, DbtError};

/// The OpenLineage RunEvent schema the events follow.
pub const RUN_EVENT_SCHEMA_URL: &str =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// The `clyra_evidence` facet's schema (`spec/openlineage/clyra-evidence-facet.json`).
pub const FACET_SCHEMA_URL: &str = "https://clyra.dev/spec/openlineage/clyra-evidence-facet.json";
/// The facet's key in `run.facets`.
pub const FACET_NAME: &str = "clyra_evidence";
/// Clyra as an OpenLineage producer.
pub const PRODUCER: &str = concat!(
    "https://github.com/clyra-dev/clyra/tree/v",
    env!("CARGO_PKG_VERSION")
);
/// The namespace UUID of Clyra's name-based dbt run ids.
pub const RUN_ID_NAMESPACE: [u8; 16] = [
    0x7c, 0x1a, 0x2e, 0x90, 0x4d, 0x3b, 0x4f, 0x6a, 0x9e, 0x21, 0x5b, 0x0c, 0xd8, 0x47, 0x13, 0xa5,
];

const PARENT_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet";
const ERROR_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-0-0/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const JOB_TYPE_FACET_URL: &str =
    "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";

/// How to emit the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The jobs' namespace.
    pub job_namespace: String,
    /// The datasets' namespace (`postgres://host:port`); `<adapter>://unknown` when `None`.
    pub dataset_namespace: Option<String>,
    /// The `producer` URI.
    pub producer: String,
    /// The bundle the events point to, if any.
    pub evidence: Option<EvidenceFacet>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            job_namespace: "dbt".to_string(),
            dataset_namespace: None,
            producer: PRODUCER.to_string(),
            evidence: None,
        }
    }
}

/// The content of the `clyra_evidence` run facet (without `_producer` and `_schemaURL`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceFacet {
    /// The bundle's id (its manifest's `bundle_id`).
    pub bundle_id: String,
    /// SHA-256 (hex) of the bundle file's bytes.
    pub bundle_sha256: String,
    /// SHA-256 (hex) of the DSSE payload: the signed in-toto Statement.
    pub statement_sha256: String,
    /// The DSSE envelope's signatures.
    pub signatures: Vec<FacetSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetSignature {
    /// The signing key's id.
    pub keyid: String,
    /// The signature, base64 as in the envelope.
    pub sig: String,
}

/// The name-based run id of `name` (see the module documentation).
pub fn name_uuid(name: &str) -> String {
    let mut input = Vec::with_capacity(16 + name.len());
    input.extend_from_slice(&RUN_ID_NAMESPACE);
    input.extend_from_slice(name.as_bytes());
    let digest = clyra_evidence::Digest::sha256(&input);
    let mut b = [0u8; 16];
    b.copy_from_slice(digest.as_bytes().get(..16).unwrap_or(&[0u8; 16]));
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // variant RFC 9562
    let h = hex_lower(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// The OpenLineage run id of a node of a dbt invocation.
pub fn node_run_id(invocation_id: &str, unique_id: &str) -> String {
    name_uuid(&format!("{invocation_id}/{unique_id}"))
}

/// The parent run id: the invocation id itself when it is a UUID, else its name-based UUID.
pub fn invocation_run_id(invocation_id: &str) -> String {
    if is_uuid(invocation_id) {
        invocation_id.to_ascii_lowercase()
    } else {
        name_uuid(invocation_id)
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The events of a run (see the module documentation). `lineage` gives the datasets.
pub fn events(run: &RunRecord, lineage: &Lineage, opts: &Options) -> Result<Vec<Value>, DbtError> {
    let inv = run.dbt.invocation_id.as_str();
    let adapter = run
        .dbt
        .adapter
        .clone()
        .or_else(|| lineage.adapter.clone())
        .unwrap_or_else(|| "dbt".to_string());
    let ds_namespace = opts
        .dataset_namespace
        .clone()
        .unwrap_or_else(|| format!("{adapter}://unknown"));
    let project = run
        .project
        .clone()
        .or_else(|| lineage.project.clone())
        .unwrap_or_else(|| "dbt".to_string());
    let parent = json!({
        "_producer": opts.producer,
        "_schemaURL": PARENT_FACET_URL,
        "run": {"runId": invocation_run_id(inv)},
        "job": {"namespace": opts.job_namespace, "name": format!("dbt-run-{project}")},
    });
    let dataset = |id: &str| -> Option<Value> {
        let n = lineage.node(id)?;
        if n.materialization.as_deref() == Some("ephemeral") {
            return None;
        }
        let r = n.relation.as_ref()?;
        Some(json!({"namespace": ds_namespace, "name": r.dotted()}))
    };
    let mut parents: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for e in &lineage.edges {
        parents
            .entry(e.to.as_str())
            .or_default()
            .push(e.from.as_str());
    }
    let run_start = run.started_at.clone();
    let run_end = run.finished_at.clone();

    let mut runs: Vec<NodeRun> = Vec::new();
    for n in &run.nodes {
        if !matches!(n.resource_type.as_str(), "model" | "seed" | "snapshot") {
            continue;
        }
        let end = match n.status.as_str() {
            "success" => "COMPLETE",
            "error" | "fail" | "runtime error" => "FAIL",
            _ => continue,
        };
        runs.push(NodeRun {
            id: n.unique_id.clone(),
            rtype: n.resource_type.clone(),
            start: n.started_at.clone(),
            end: n.completed_at.clone(),
            end_type: end,
            message: n.message.clone(),
        });
    }
    for s in &run.started_not_finished {
        if matches!(s.resource_type.as_str(), "model" | "seed" | "snapshot") {
            runs.push(NodeRun {
                id: s.unique_id.clone(),
                rtype: s.resource_type.clone(),
                start: s.started_at.clone(),
                end: None,
                end_type: "ABORT",
                message: Some("the dbt run was interrupted before this node finished".to_string()),
            });
        }
    }
    runs.sort_by(|a, b| a.id.cmp(&b.id));

    let mut out = Vec::with_capacity(runs.len() * 2);
    for NodeRun {
        id,
        rtype,
        start,
        end,
        end_type,
        message,
    } in runs
    {
        let start_time = start
            .clone()
            .or_else(|| run_start.clone())
            .or_else(|| end.clone())
            .or_else(|| run_end.clone());
        let end_time = end
            .clone()
            .or_else(|| run_end.clone())
            .or_else(|| start_time.clone());
        let (Some(start_time), Some(end_time)) = (start_time, end_time) else {
            return Err(DbtError::NothingToRecord(format!(
                "no time is known for `{id}` nor for the run; an OpenLineage event needs one"
            )));
        };
        let inputs: Vec<Value> = parents
            .get(id.as_str())
            .map(|ps| ps.iter().filter_map(|p| dataset(p)).collect())
            .unwrap_or_default();
        let outputs: Vec<Value> = dataset(&id).into_iter().collect();
        let job = json!({
            "namespace": opts.job_namespace,
            "name": id,
            "facets": {
                "jobType": {
                    "_producer": opts.producer,
                    "_schemaURL": JOB_TYPE_FACET_URL,
                    "processingType": "BATCH",
                    "integration": "DBT",
                    "jobType": rtype.to_ascii_uppercase(),
                }
            }
        });
        let run_id = node_run_id(inv, &id);
        for (event_type, at) in [("START", &start_time), (end_type, &end_time)] {
            let mut facets = Map::new();
            facets.insert("parent".to_string(), parent.clone());
            if let Some(e) = &opts.evidence {
                facets.insert(FACET_NAME.to_string(), evidence_facet(e, &opts.producer));
            }
            if event_type == "FAIL" {
                facets.insert(
                    "errorMessage".to_string(),
                    json!({
                        "_producer": opts.producer,
                        "_schemaURL": ERROR_FACET_URL,
                        "message": message.clone().unwrap_or_else(|| "dbt reported an error".to_string()),
                        "programmingLanguage": "SQL",
                    }),
                );
            }
            out.push(json!({
                "eventType": event_type,
                "eventTime": time::normalize(at).unwrap_or_else(|| at.clone()),
                "run": {"runId": run_id, "facets": facets},
                "job": job,
                "inputs": inputs,
                "outputs": outputs,
                "producer": opts.producer,
                "schemaURL": RUN_EVENT_SCHEMA_URL,
            }));
        }
    }
    Ok(out)
}

/// One OpenLineage run: a node that ran.
struct NodeRun {
    id: String,
    rtype: String,
    start: Option<String>,
    end: Option<String>,
    end_type: &'static str,
    message: Option<String>,
}

/// The `clyra_evidence` facet as emitted.
pub fn evidence_facet(e: &EvidenceFacet, producer: &str) -> Value {
    json!({
        "_producer": producer,
        "_schemaURL": FACET_SCHEMA_URL,
        "bundle_id": e.bundle_id,
        "bundle_sha256": e.bundle_sha256,
        "statement_sha256": e.statement_sha256,
        "signatures": e.signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_name_based_uuids_v8() {
        let a = node_run_id("2558b890-ae1e-4eb4-a44b-40964ebbbf36", "model.p.a");
        assert!(is_uuid(&a), "{a}");
        assert_eq!(a.as_bytes()[14], b'8', "version 8: {a}");
        assert!(
            matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
            "variant: {a}"
        );
        assert_eq!(
            a,
            node_run_id("2558b890-ae1e-4eb4-a44b-40964ebbbf36", "model.p.a")
        );
        assert_ne!(
            a,
            node_run_id("2558b890-ae1e-4eb4-a44b-40964ebbbf36", "model.p.b")
        );
        assert_eq!(
            invocation_run_id("2558B890-AE1E-4EB4-A44B-40964EBBBF36"),
            "2558b890-ae1e-4eb4-a44b-40964ebbbf36"
        );
        assert!(is_uuid(&invocation_run_id("not a uuid")));
    }
}
