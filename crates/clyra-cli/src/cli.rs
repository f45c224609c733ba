//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::output::Format;

/// Clyra makes automated work provable: it guards, records and proves what data pipelines, AI
/// agents and automations do to production systems.
#[derive(Debug, Parser)]
#[command(name = "clyra", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok, 1 error, 2 verification failed, 3 blocked by policy.\n\
Docs: docs/cli.md. Start with `clyra demo`."
)]
pub struct Cli {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the RFC 8785 canonical form of a JSON document to stdout.
    #[command(
        after_help = "Input is checked under Clyra's strict profile first: duplicate keys, lone \
surrogates, numbers denoting integers of magnitude above 2^53−1 and below 10^21, non-finite numbers \
and nesting deeper than 128 are errors naming the line, column and JSON pointer (exit 1).\n\n\
With --ndjson the input is one JSON document per line (a journal, say) and the output one line per \
input line, each ending with LF: the canonical document, or for a line that fails \
{\"error\": CODE, \"line\": N, \"message\": TEXT}, written with spaces so that it is never canonical \
JSON and cannot be mistaken for a document. CODE is one of invalid_utf8, duplicate_key, \
lone_surrogate, integer_out_of_range, non_finite, too_deep, syntax. Every line is written; the exit \
status is 1 if any line failed. The output is the same with --format json.\n\n\
Examples:\n  echo '{\"b\": 1.50, \"a\": [true]}' | clyra canon -\n  {\"a\":[true],\"b\":1.5}\n  \
printf '%s\\n' '{\"b\": 2, \"a\": 1}' '[1, 1]' '{\"a\": 1, \"a\": 2}' | clyra canon --ndjson -\n  \
{\"a\":1,\"b\":2}\n  [1,1]\n  {\"error\": \"duplicate_key\", \"line\": 3, \"message\": \"duplicate key `a` at line 1, column 10 (JSON pointer `/a`)\"}"
    )]
    Canon {
        /// The JSON file, or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
        /// Canonicalize each line of the input as its own document (NDJSON in, NDJSON out).
        #[arg(long)]
        ndjson: bool,
    },
    /// RFC 9162 Merkle tree roots, inclusion and consistency proofs.
    #[command(subcommand)]
    Merkle(MerkleCommand),

    /// Signing keys and the trust file.
    #[command(subcommand)]
    Keys(KeysCommand),

    /// Sign an in-toto Statement about files as a DSSE envelope.
    #[command(
        after_help = "The statement's subjects are the given files (name as given, SHA-256 of \
their bytes); its predicate is the JSON in PREDICATE (checked under the strict profile). The payload \
is the statement's canonical JSON.\n\n\
Example:\n  clyra sign --key keys/clyra.key --predicate-type https://example.com/run/v1 \\\n    \
--subject model.sql --subject run_results.json --out run.dsse.json predicate.json"
    )]
    Sign(crate::command::sign::SignArgs),

    /// Verify a DSSE envelope holding an in-toto Statement (exit 2 if it does not verify).
    #[command(
        after_help = "Checks, in order: the envelope parses strictly; at least THRESHOLD \
distinct keys from the trust file, valid at the verification time, signed the DSSE PAE; the payload \
type is in-toto; the payload is canonical JSON; the statement is well formed; each --subject file \
matches a subject by name and SHA-256. Findings carry stable codes (E_SIGNATURE, E_KEY_NOT_TRUSTED, \
E_KEY_EXPIRED, E_THRESHOLD, E_PAYLOAD_TYPE, E_NOT_CANONICAL, E_JSON, E_SCHEMA, E_SUBJECT_MISMATCH).\n\n\
Example:\n  clyra verify-envelope run.dsse.json --trust trust.json --subject model.sql"
    )]
    VerifyEnvelope(crate::command::verify_envelope::VerifyArgs),

    /// Build and inspect DEF and PEF evidence bundles.
    #[command(subcommand)]
    Bundle(BundleCommand),

    /// The journal: append, verify, checkpoint and prove (SQLite or Postgres store).
    #[command(subcommand)]
    Journal(crate::command::journal::JournalCommand),

    /// Human approvals: checkpoints, the two-person rule and single-use resume tokens.
    #[command(subcommand)]
    Approvals(crate::command::approvals::ApprovalsCommand),

    /// Metadata-only warehouse snapshots, pinned to an anchor (no row values).
    #[command(subcommand)]
    Snapshot(crate::command::warehouse::SnapshotCommand),

    /// Compare two warehouse snapshots (exit 2 with --fail-on-change if anything changed).
    Diff(crate::command::warehouse::DiffArgs),

    /// Warehouses: anchors (Postgres, Snowflake, Delta, Databricks, MLflow), guards, doctor.
    #[command(subcommand)]
    Warehouse(crate::command::warehouse::WarehouseCommand),

    /// Re-run a DEF bundle's recorded SQL in a scratch schema and sign a replay certificate
    /// (exit 2 unless every selected model matches).
    Replay(crate::command::replay::ReplayArgs),

    /// Run a command (dbt) under Clyra: anchor first, capture its artifacts, seal a signed DEF
    /// bundle on every exit path (success, failures, SIGINT, SIGTERM).
    Run(crate::command::run::RunArgs),

    /// dbt integration: record artifacts, set up a project, export OpenLineage.
    #[command(subcommand)]
    Dbt(crate::command::dbt::DbtCommand),

    /// Lineage of a dbt run (sources, models, exposures) with trust hints.
    #[command(subcommand)]
    Lineage(crate::command::lineage::LineageCommand),

    /// Verify an evidence bundle offline (exit 2 if it does not verify).
    #[command(
        after_help = "Recomputes every digest, the Merkle roots, every chain link, the signed \
statement and its signatures; checks schemas, canonical JSON and the container (no unsafe paths, no \
links, size limits). Findings carry stable codes (docs: spec/common/verification-codes.md). Exit 0 \
valid, 2 invalid (whatever is wrong inside the bundle), 1 for problems outside it (unreadable trust \
file, bad arguments, missing path).\n\n\
Examples:\n  clyra verify run.def.zip --trust trust.json\n  \
clyra verify run.def.zip --trust trust.json --artifacts exports/ --format json"
    )]
    Verify(crate::command::bundle::VerifyArgs),

    /// Run the recorder: the authenticated HTTP ingest service in front of the journal.
    #[command(subcommand)]
    Recorder(RecorderCommand),

    /// Sign and send one event, or a batch, to a recorder; prints the receipts.
    #[command(
        after_help = "The input is one event ({\"kind\", \"ts\"?, \"id\"?, \"run\"?, \
\"session\"?, \"actor\"?, \"body\"?}) or a batch ({\"events\": [...]}). The tenant comes from \
--tenant and the key, never from the event. Exit 0 when the recorder acknowledged every event \
(durably committed), 1 otherwise: bad arguments, unreadable or too-open secret file, recorder \
unreachable, or the recorder's refusal (its error code and message are printed). Plain http:// only; \
put a TLS-terminating proxy in front of the recorder.\n\n\
Examples:\n  echo '{\"kind\": \"demo.hello\", \"id\": \"e-1\", \"body\": {\"n\": 1}}' | \\\n    \
clyra record --endpoint http://127.0.0.1:8787 --tenant acme --key-id k1 \\\n    \
--secret-file acme.k1.secret -\n  \
clyra record --endpoint http://127.0.0.1:8787 --tenant acme --key-id k1 \\\n    \
--secret-file acme.k1.secret --format json batch.json"
    )]
    Record(crate::command::recorder::RecordArgs),

    /// Policy files: lint, hash, explain a decision, run test cases.
    #[command(subcommand)]
    Policy(crate::command::policy::PolicyCommand),

    /// Check this installation: journal, key file modes, trust file, policies, Redis, warehouse.
    #[command(
        after_help = "Each check gives a finding (ok, warn, fail or skip) with a stable id and, \
for every warn and fail, a copy-pasteable fix (shell or SQL). Checks: the clyra version; the journal \
store opens (never created by the doctor) and every tenant's chain verifies (checkpoint signatures \
too with a trust file); key, secret and salt files are readable by their owner only and private keys \
parse; the trust file parses and has keys valid now; policy files lint; Redis answers PING; with \
--dsn, every `clyra warehouse doctor` check (ids prefixed `warehouse.`). Defaults: --store \
$CLYRA_STORE or sqlite:.clyra/journal when it exists, --keys-dir ./keys, --trust ./trust.json when \
they exist, --redis $CLYRA_REDIS_URL, --dsn $CLYRA_DSN. Measured values (milliseconds) are in each \
finding's `measured` object, never in its message. Exit 0 when nothing failed (warnings allowed), \
2 when a check failed, 1 on usage errors. Docs: docs/warehouses/doctor.md.\n\n\
Examples:\n  clyra doctor --store sqlite:.clyra/journal --keys-dir keys --trust trust.json\n  \
clyra doctor --policy policy.yaml --dsn postgres://ci@db:5432/prod --format json"
    )]
    Doctor(crate::command::doctor::DoctorArgs),

    /// Run the demo: record a small scenario, sign it, verify it (offline, in seconds).
    #[command(
        after_help = "Creates DIR (default ./clyra-demo) with a signing key, a trust file, a \
hash-chained journal of a dbt run and a few agent tool calls, its Merkle root, and a signed in-toto \
statement; verifies the statement and prints the command to verify it again. Re-running replaces a \
previous demo directory; a directory that is not a demo is never touched.\n\n\
Example:\n  clyra demo --dir /tmp/clyra-demo"
    )]
    Demo {
        /// Where to create the demo workspace.
        #[arg(long, default_value = "clyra-demo")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecorderCommand {
    /// Serve the ingest API until SIGTERM or SIGINT (then drain and exit 0).
    #[command(
        after_help = "Prints `listening on http://ADDR` to stderr once the socket is bound \
(--listen 127.0.0.1:0 picks a free port). Every acknowledged event is committed to the journal \
first. The tenants file maps tenants to keys whose secret files (at least 32 bytes, mode 0600) lie \
beside it:\n  {\"tenants\": {\"acme\": {\"keys\": [{\"id\": \"k1\", \"secret_file\": \
\"acme.k1.secret\"}]}}}\n\
Plain HTTP only: terminate TLS in a proxy in front of it. Docs: docs/recorder.md.\n\n\
Example:\n  head -c 32 /dev/urandom > acme.k1.secret && chmod 600 acme.k1.secret\n  \
clyra recorder serve --listen 127.0.0.1:8787 --store sqlite:journal --tenants tenants.json"
    )]
    Serve(crate::command::recorder::ServeArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a signing key pair: NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (SPKI PEM).
    #[command(
        after_help = "Refuses to overwrite existing files. Algorithms: ed25519 (default), \
ecdsa-sha2-256-nistp256, rsa-sign-pss-3072-sha256, rsa-sign-pss-4096-sha256.\n\n\
Example:\n  clyra keys generate --alg ed25519 --out keys/\n  \
key id 4f0c…  private keys/clyra.key (0600)  public keys/clyra.pub"
    )]
    Generate {
        /// Signature algorithm (Sigstore registry name).
        #[arg(long, default_value = "ed25519")]
        alg: clyra_evidence::keys::Algorithm,
        /// Directory for the key files (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Base name of the key files.
        #[arg(long, default_value = "clyra")]
        name: String,
    },
    /// Show a key's id, algorithm and public key (from a public or private key file).
    #[command(after_help = "Example:\n  clyra keys show keys/clyra.pub")]
    Show {
        /// A public (SPKI PEM) or private (PKCS#8 PEM) key file.
        file: PathBuf,
    },
    /// Edit the trust file.
    #[command(subcommand)]
    Trust(TrustCommand),
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Add a public key to a trust file (created if missing), with its validity window.
    #[command(
        after_help = "A key verifies evidence only while the verification time is inside \
[not-before, not-after). To rotate, add the new key and give the old one a --not-after that leaves \
an overlap.\n\nExample:\n  clyra keys trust add --trust trust.json --name ci-2026 \\\n    \
--not-after 2027-01-31T00:00:00Z keys/clyra.pub"
    )]
    Add {
        /// The trust file.
        #[arg(long)]
        trust: PathBuf,
        /// Start of the key's validity (RFC 3339); default now.
        #[arg(long)]
        not_before: Option<jiff::Timestamp>,
        /// End of the key's validity (RFC 3339); default open-ended.
        #[arg(long)]
        not_after: Option<jiff::Timestamp>,
        /// A label for people.
        #[arg(long)]
        name: Option<String>,
        /// The public key file (SPKI PEM).
        public_key: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum MerkleCommand {
    /// Print the RFC 9162 Merkle root of a list of leaves.
    #[command(
        after_help = "Input: one leaf per line, the hex of the leaf's bytes (usually a digest of \
the leaf's data); blank lines and lines starting with # are skipped. Leaf hash = SHA-256(0x00 || bytes).\n\n\
Example:\n  printf '%s\\n' 00 10 2021 | clyra merkle root -\n  7c464dec964a78bed0b50ae2102c4b3f93362198148dfac451c671a128e28265"
    )]
    Root {
        /// The leaf list, or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// Write an inclusion or consistency proof (JSON) to stdout.
    #[command(subcommand)]
    Prove(ProveCommand),
    /// Check a proof against roots you trust (exit 2 if it does not hold).
    #[command(subcommand)]
    Verify(VerifyProofCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// Prove that leaf INDEX is in the tree of all leaves in FILE.
    #[command(after_help = "Example:\n  printf '%s\\n' 00 10 2021 > leaves.txt\n  \
clyra merkle prove inclusion --index 1 leaves.txt > proof.json")]
    Inclusion {
        /// Zero-based index of the leaf.
        #[arg(long)]
        index: u64,
        /// The leaf list (as for `merkle root`), or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// Prove that the first OLD_SIZE leaves form a prefix of the tree of all leaves in FILE.
    #[command(
        after_help = "Example:\n  clyra merkle prove consistency --old-size 2 leaves.txt > consistency.json"
    )]
    Consistency {
        /// Size of the older tree (at least 1).
        #[arg(long)]
        old_size: u64,
        /// The leaf list (as for `merkle root`), or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum VerifyProofCommand {
    /// Check that LEAF is included under ROOT.
    #[command(
        after_help = "The root must come from a source you trust (a signed checkpoint), not \
from the proof file.\n\nExample:\n  clyra merkle verify inclusion --proof proof.json --leaf 10 \\\n    \
--root 7c464dec964a78bed0b50ae2102c4b3f93362198148dfac451c671a128e28265"
    )]
    Inclusion {
        /// Proof file from `merkle prove inclusion`.
        #[arg(long)]
        proof: PathBuf,
        /// The trusted root (64 hex characters).
        #[arg(long)]
        root: clyra_evidence::Digest,
        /// The leaf's bytes in hex, as in the leaf list.
        #[arg(long)]
        leaf: String,
    },
    /// Check that the tree with OLD_ROOT is a prefix of the tree with NEW_ROOT.
    #[command(
        after_help = "Example:\n  clyra merkle verify consistency --proof consistency.json \\\n    \
--old-root e8bba54899f34c767fa1b827f136cb9fde1e3b15ff9a0a57781fc0832e523548 \\\n    \
--new-root 7c464dec964a78bed0b50ae2102c4b3f93362198148dfac451c671a128e28265"
    )]
    Consistency {
        /// Proof file from `merkle prove consistency`.
        #[arg(long)]
        proof: PathBuf,
        /// The trusted root of the older tree.
        #[arg(long)]
        old_root: clyra_evidence::Digest,
        /// The trusted root of the newer tree.
        #[arg(long)]
        new_root: clyra_evidence::Digest,
    },
}

/// Which evidence format to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Data Evidence Format: pipeline runs, warehouse anchors, dbt.
    Def,
    /// Portable Evidence Format: agents, tool calls, approvals.
    Pef,
}

// Parsed once per process; boxing the large variant would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Build a signed bundle from a journal (and artifacts) into one file.
    #[command(
        after_help = "The journal is NDJSON: chained entries (with seq and prev, as a clyra \
journal exports them) or raw events (objects with ts and kind), which are chained from genesis. Every \
file under --artifacts is embedded as artifacts/<path>; --external FILE=URI records FILE's size and \
SHA-256 and where it lives, without embedding it. Without --predicate the predicate is derived from \
the journal (runs, anchors, dbt models and tests; gateway decisions, tool calls, approvals). With \
SOURCE_DATE_EPOCH set, created_at comes from it and no timing is recorded, so identical inputs give \
identical bytes.\n\n\
Example:\n  clyra bundle build --kind def --journal journal.ndjson --artifacts target/ \\\n    \
--key keys/clyra.key --tenant acme --environment prod --out run.def.zip"
    )]
    Build(crate::command::bundle::BuildArgs),
    /// Cut a bundle from the journal: one run, or a time range, with inclusion proofs.
    #[command(
        after_help = "A run export holds every entry of the run, linked by run_seq/run_prev, so a \
verifier sees the run is complete; a time-range export holds the contiguous part of the tenant's \
chain recorded in [--from, --to). Either way each entry carries an RFC 9162 inclusion proof to a \
signed checkpoint (the latest stored one that covers it, or a new one signed with --checkpoint-key, \
default the first --key, which must then be Ed25519). Trust that key too when verifying. A journal \
that disagrees with its checkpoints is refused (exit 1) and nothing is written.\n\n\
Examples:\n  clyra bundle export --store sqlite:.clyra/journal --tenant acme --run r-42 \\\n    \
--kind def --key keys/clyra.key --out r-42.def.zip\n  \
clyra bundle export --store sqlite:.clyra/journal --tenant acme --kind pef --key keys/clyra.key \\\n    \
--from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z --out day.pef.zip"
    )]
    Export(crate::command::bundle::ExportArgs),
    /// Summarize a bundle for people: what, when, who, counts, anchors, signers (not a verdict).
    #[command(after_help = "Example:\n  clyra bundle inspect run.def.zip")]
    Inspect {
        /// The bundle file or directory.
        bundle: PathBuf,
    },
}
