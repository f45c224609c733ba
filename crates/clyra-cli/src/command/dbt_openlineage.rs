//! `clyra dbt openlineage`.
//!
//! Wiring only: the events are built by `clyra_warehouse::dbt::openlineage` from the run read out
//! of a verified bundle (`clyra_warehouse::dbt::bundle`).

use std::io::Write as _;
use std::path::PathBuf;

use clyra_warehouse::dbt::openlineage::{self, Options};
use serde::Serialize;

use crate::command::lineage::load_verified;
use crate::command::write_new_file;
use crate::output::{Exit, Output};

/// Arguments of `clyra dbt openlineage`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Emits OpenLineage RunEvents (spec 2-0-2) for the dbt run recorded in a DEF \
bundle, as NDJSON (one event per line): per model, seed and snapshot that ran, a START event and \
one COMPLETE (success) or FAIL (error) event, or ABORT for a node the interrupted run did not \
finish. Run ids are name-based UUIDs of the dbt invocation id and the node's unique_id, so the \
same run always gets the same ids; the parent run is the dbt invocation.\n\n\
The bundle is verified against the trust file first and refused if it does not verify (exit 2). \
Every event carries the custom run facet clyra_evidence (schema \
https://clyra.dev/spec/openlineage/clyra-evidence-facet.json): the bundle id, the SHA-256 of the \
bundle file, the SHA-256 of its signed in-toto Statement and the DSSE signatures, so a lineage \
consumer (Marquez, DataHub, ...) can fetch the bundle and check it offline with `clyra verify`.\n\n\
Datasets are named database.schema.table in the --dataset-namespace (OpenLineage's convention \
for Postgres is postgres://HOST:PORT; dbt's artifacts do not record the host, so pass it; \
default <adapter>://unknown). Docs: docs/dbt/openlineage.md.\n\n\
Examples:\n  clyra dbt openlineage --bundle run.def.zip --trust trust.json \\\n    \
--dataset-namespace postgres://db.internal:5432 --out events.ndjson\n  \
clyra dbt openlineage --bundle run.def.zip --trust trust.json | \\\n    \
while read -r e; do curl -s -H 'Content-Type: application/json' -d \"$e\" \\\n      \
http://marquez:5000/api/v1/lineage; done"
)]
pub struct OpenlineageArgs {
    /// The DEF bundle of the dbt run.
    #[arg(long)]
    pub bundle: PathBuf,
    /// The trust file the bundle must verify against.
    #[arg(long)]
    pub trust: PathBuf,
    /// The jobs' OpenLineage namespace.
    #[arg(long, default_value = "dbt")]
    pub namespace: String,
    /// The datasets' namespace, e.g. postgres://HOST:PORT (default <adapter>://unknown).
    #[arg(long, value_name = "URI")]
    pub dataset_namespace: Option<String>,
    /// Write the NDJSON here (refuses to overwrite) instead of to stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Written<'a> {
    ok: bool,
    file: String,
    events: usize,
    runs: usize,
    bundle_id: &'a str,
    bundle_sha256: &'a str,
}

/// Runs `clyra dbt openlineage`.
pub fn run(args: OpenlineageArgs, out: &Output) -> anyhow::Result<Exit> {
    let b = match load_verified(&args.bundle, &args.trust, out)? {
        Ok(b) => b,
        Err(exit) => return Ok(exit),
    };
    let opts = Options {
        job_namespace: args.namespace.clone(),
        dataset_namespace: args.dataset_namespace.clone(),
        evidence: Some(b.evidence.clone()),
        ..Options::default()
    };
    let events = openlineage::events(&b.run, &b.lineage, &opts)?;
    let mut ndjson = Vec::new();
    for e in &events {
        serde_json::to_writer(&mut ndjson, e)?;
        ndjson.push(b'\n');
    }
    match &args.out {
        Some(path) => {
            write_new_file(path, &ndjson)?;
            let runs = events.iter().filter(|e| e["eventType"] == "START").count();
            let w = Written {
                ok: true,
                file: path.display().to_string(),
                events: events.len(),
                runs,
                bundle_id: &b.evidence.bundle_id,
                bundle_sha256: &b.evidence.bundle_sha256,
            };
            out.emit(&w, || {
                format!(
                    "wrote {} OpenLineage events ({} node runs) to {}; bundle {} (sha256 {}) verified",
                    w.events, w.runs, w.file, w.bundle_id, w.bundle_sha256
                )
            });
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&ndjson)?;
            stdout.flush()?;
        }
    }
    Ok(Exit::Ok)
}
