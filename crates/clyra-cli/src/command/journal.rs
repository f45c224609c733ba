//! `clyra journal`: append to, verify, checkpoint and prove a journal (SQLite or Postgres).

use std::path::PathBuf;

use anyhow::Context as _;
use clyra_evidence::keys::{read_private_key_file, Algorithm, PublicKey};
use clyra_evidence::merkle;
use clyra_evidence::trust::TrustStore;
use clyra_journal::entry::{BodyPolicy, NewEvent};
use clyra_journal::{checkpoint, proof, verify};
use serde::Serialize;
use serde_json::Value;

use crate::command::{display_name, read_input};
use crate::output::{Exit, Output};

/// The journal commands.
#[derive(Debug, clap::Subcommand)]
pub enum JournalCommand {
    /// Append events to a journal directly (no recorder in between).
    #[command(
        after_help = "EVENTS is one event or {\"events\": [...]} in the recorder's wire \
form: {\"kind\", \"ts\"?, \"id\"?, \"run\"?, \"session\"?, \"actor\"?, \"body\"?}. All events are appended \
in one transaction, or none (exit 1, naming the JSON pointer of the bad member).\n\n\
Example:\n  echo '{\"kind\": \"dbt.run.started\", \"run\": \"r-42\", \"body\": {\"target\": \"prod\"}}' \\\n    \
| clyra journal append --store sqlite:.clyra/journal --tenant acme -"
    )]
    Append(AppendArgs),
    /// Walk a whole journal and report the first broken link (exit 2 if any).
    #[command(
        after_help = "Checks every entry of every tenant (or of --tenant): it sits at the \
seq it names with no gap, its bytes are canonical JSON, prev links to the entry before, the stored \
hashes match, run chains link up, the stored head matches the last entry, and every checkpoint's root \
equals the entries it covers. With --trust, every checkpoint must also be signed by an Ed25519 key of \
the trust file.\n\n\
Examples:\n  clyra journal verify --store sqlite:.clyra/journal\n  \
clyra journal verify --store 'postgres://postgres@127.0.0.1:5432/test?schema=clyra' --tenant acme --trust trust.json"
    )]
    Verify(VerifyArgs),
    /// Sign a checkpoint (tree head) of a tenant's journal as a C2SP signed note.
    #[command(
        after_help = "The note's origin is LOG_NAME/TENANT; its body holds the size, the \
base64 Merkle root and two extension lines, `time` and `head` (the chain head). The key must be \
Ed25519. A checkpoint of the same size is signed only once.\n\n\
Example:\n  clyra journal checkpoint --store sqlite:.clyra/journal --tenant acme --key keys/clyra.key"
    )]
    Checkpoint(CheckpointArgs),
    /// Prove an entry is in a checkpoint (inclusion), or that one checkpoint extends another.
    #[command(
        after_help = "--seq N gives entry N, its inclusion proof and the checkpoint it leads \
to (the latest checkpoint covering N, or the one of --size). --old-size M gives a consistency proof \
from the checkpoint of size M to the latest one (or --size). Proofs are RFC 9162; hashes are hex.\n\n\
Examples:\n  clyra journal prove --store sqlite:.clyra/journal --tenant acme --seq 3\n  \
clyra journal prove --store sqlite:.clyra/journal --tenant acme --old-size 4 --format json"
    )]
    Prove(ProveArgs),
}

/// `clyra journal append`.
#[derive(Debug, clap::Args)]
pub struct AppendArgs {
    /// The store: sqlite:DIR or postgres://USER@HOST:PORT/DB[?schema=NAME].
    #[arg(long)]
    pub store: String,
    /// The tenant whose chain receives the events.
    #[arg(long)]
    pub tenant: String,
    /// What to keep of each event's body.
    #[command(flatten)]
    pub body: BodyArgs,
    /// The events file, or `-` for stdin.
    #[arg(default_value = "-")]
    pub events: PathBuf,
}

/// Body policy options, shared by `journal append` and `recorder serve`.
#[derive(Debug, clap::Args)]
pub struct BodyArgs {
    /// How much of each body to keep: hash (default: only its SHA-256), redacted (the body with
    /// the --redact members replaced by salted digests) or full.
    #[arg(long, value_enum, default_value_t = BodyMode::Hash)]
    pub body_policy: BodyMode,
    /// A JSON pointer (RFC 6901) into the body to replace by its salted digest (repeatable; with
    /// --body-policy redacted).
    #[arg(long = "redact", value_name = "POINTER")]
    pub redact: Vec<String>,
    /// A secret of at least 16 bytes that salts redaction digests (mode 0600 or stricter).
    #[arg(long, value_name = "FILE")]
    pub redaction_salt_file: Option<PathBuf>,
}

/// Body policies selectable on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BodyMode {
    /// Keep only the SHA-256 of the body.
    Hash,
    /// Keep the body with the --redact members replaced by salted digests.
    Redacted,
    /// Keep the whole body.
    Full,
}

impl BodyArgs {
    /// The journal's policy, checking that the options fit together.
    pub fn policy(&self) -> anyhow::Result<BodyPolicy> {
        let redacting = !self.redact.is_empty() || self.redaction_salt_file.is_some();
        match self.body_policy {
            BodyMode::Hash | BodyMode::Full if redacting => {
                anyhow::bail!("--redact and --redaction-salt-file need --body-policy redacted")
            }
            BodyMode::Hash => Ok(BodyPolicy::Hash),
            BodyMode::Full => Ok(BodyPolicy::Full),
            BodyMode::Redacted => {
                let path = self
                    .redaction_salt_file
                    .as_deref()
                    .context("--body-policy redacted needs --redaction-salt-file")?;
                if self.redact.is_empty() {
                    anyhow::bail!("--body-policy redacted needs at least one --redact POINTER");
                }
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = std::fs::metadata(path)
                        .with_context(|| format!("cannot read `{}`", path.display()))?
                        .permissions()
                        .mode();
                    if mode & 0o077 != 0 {
                        anyhow::bail!(
                            "`{}` is readable by group or others (mode {:o}); run chmod 600 on it",
                            path.display(),
                            mode & 0o777
                        );
                    }
                }
                let salt = std::fs::read(path)
                    .with_context(|| format!("cannot read `{}`", path.display()))?;
                BodyPolicy::redacted(self.redact.clone(), salt)
                    .map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))
            }
        }
    }
}

/// `clyra journal verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The store: sqlite:DIR or postgres://...
    #[arg(long)]
    pub store: String,
    /// Only this tenant (repeatable); all tenants by default.
    #[arg(long = "tenant")]
    pub tenants: Vec<String>,
    /// Require every checkpoint to be signed by an Ed25519 key of this trust file.
    #[arg(long)]
    pub trust: Option<PathBuf>,
}

/// `clyra journal checkpoint`.
#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    /// The store: sqlite:DIR or postgres://...
    #[arg(long)]
    pub store: String,
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The Ed25519 signing key (PKCS#8 PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// The log's name: the origin is LOG_NAME/TENANT. Use a name you control, e.g. a host name.
    #[arg(long, default_value = "clyra/journal")]
    pub log_name: String,
}

/// `clyra journal prove`.
#[derive(Debug, clap::Args)]
pub struct ProveArgs {
    /// The store: sqlite:DIR or postgres://...
    #[arg(long)]
    pub store: String,
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The entry to prove.
    #[arg(
        long,
        conflicts_with = "old_size",
        required_unless_present = "old_size"
    )]
    pub seq: Option<u64>,
    /// Prove that the checkpoint of this size is a prefix of a later one.
    #[arg(long)]
    pub old_size: Option<u64>,
    /// The checkpoint to prove against (its tree size); the latest suitable one by default.
    #[arg(long)]
    pub size: Option<u64>,
}

/// Runs a journal command.
pub fn run(cmd: JournalCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        JournalCommand::Append(a) => append(a, out),
        JournalCommand::Verify(a) => verify_cmd(a, out),
        JournalCommand::Checkpoint(a) => checkpoint_cmd(a, out),
        JournalCommand::Prove(a) => prove(a, out),
    }
}

fn open(url: &str) -> anyhow::Result<Box<dyn clyra_journal::Store>> {
    clyra_journal::open(url)
        .with_context(|| format!("cannot open the journal store `{}`", redact(url)))
}

fn redact(url: &str) -> String {
    clyra_journal::postgres::redact_url(url)
}

fn append(a: AppendArgs, out: &Output) -> anyhow::Result<Exit> {
    let name = display_name(&a.events);
    let bytes = read_input(&a.events)?;
    let doc = clyra_evidence::jcs::parse_strict(&bytes)
        .with_context(|| format!("{name}: not valid JSON"))?;
    let events: Vec<NewEvent> = match doc.get("events") {
        Some(Value::Array(items)) if doc.as_object().is_some_and(|o| o.len() == 1) => items
            .iter()
            .enumerate()
            .map(|(i, v)| NewEvent::from_wire(&a.tenant, v, &format!("/events/{i}")))
            .collect::<Result<_, _>>()
            .with_context(|| format!("{name}: invalid event"))?,
        _ => vec![NewEvent::from_wire(&a.tenant, &doc, "")
            .with_context(|| format!("{name}: invalid event"))?],
    };
    let policy = a.body.policy()?;
    let mut store = open(&a.store)?;
    let receipts = store
        .append(&events, &policy)
        .context("append failed; nothing was written")?;
    let rows: Vec<Value> = receipts
        .iter()
        .map(|r| {
            serde_json::json!({"seq": r.seq, "hash": r.hash.to_hex(), "run_seq": r.run_seq, "duplicate": r.duplicate})
        })
        .collect();
    out.emit(
        &serde_json::json!({"tenant": a.tenant, "receipts": rows}),
        || {
            receipts
                .iter()
                .map(|r| {
                    format!(
                        "{} seq {} {}{}\n",
                        a.tenant,
                        r.seq,
                        r.hash,
                        if r.duplicate {
                            " (duplicate id: already recorded)"
                        } else {
                            ""
                        }
                    )
                })
                .collect()
        },
    );
    Ok(Exit::Ok)
}

#[derive(Debug, Serialize)]
struct TenantResult {
    tenant: String,
    ok: bool,
    entries: u64,
    head: String,
    checkpoints_checked: usize,
    broken_at_seq: Option<u64>,
    reason: Option<String>,
}

fn trusted_note_keys(path: &std::path::Path) -> anyhow::Result<Vec<PublicKey>> {
    let trust = TrustStore::read_file(path)
        .with_context(|| format!("cannot read trust file `{}`", path.display()))?;
    let now = jiff::Timestamp::now();
    let keys: Vec<PublicKey> = trust
        .valid_at(now)
        .filter(|k| k.algorithm() == Algorithm::Ed25519)
        .map(|k| k.public_key().clone())
        .collect();
    if keys.is_empty() {
        anyhow::bail!(
            "trust file `{}` has no Ed25519 key valid now; checkpoints are signed with Ed25519",
            path.display()
        );
    }
    Ok(keys)
}

fn verify_cmd(a: VerifyArgs, out: &Output) -> anyhow::Result<Exit> {
    let keys = a.trust.as_deref().map(trusted_note_keys).transpose()?;
    let mut store = open(&a.store)?;
    let tenants = if a.tenants.is_empty() {
        store.tenants()?
    } else {
        a.tenants.clone()
    };
    let mut results = Vec::new();
    for t in &tenants {
        let r = verify::verify_tenant(store.as_mut(), t, keys.as_deref())
            .with_context(|| format!("cannot read tenant {t}"))?;
        results.push(TenantResult {
            tenant: r.tenant.clone(),
            ok: r.is_ok(),
            entries: r.entries,
            head: r.head.to_hex(),
            checkpoints_checked: r.checkpoints_checked,
            broken_at_seq: r.broken.as_ref().map(|b| b.seq),
            reason: r.broken.as_ref().map(|b| b.reason.clone()),
        });
    }
    let ok = results.iter().all(|r| r.ok);
    let store_name = store.describe();
    out.emit(
        &serde_json::json!({"store": store_name, "verdict": if ok { "valid" } else { "invalid" }, "signatures_checked": keys.is_some(), "tenants": results}),
        || {
            let mut s = String::new();
            for r in &results {
                if r.ok {
                    s.push_str(&format!(
                        "ok      {}: {} entries, head {}, {} checkpoint(s){}\n",
                        r.tenant,
                        r.entries,
                        r.head,
                        r.checkpoints_checked,
                        if keys.is_some() { " signed by a trusted key" } else { "" }
                    ));
                } else {
                    s.push_str(&format!(
                        "BROKEN  {}: at seq {}: {}\n",
                        r.tenant,
                        r.broken_at_seq.unwrap_or(0),
                        r.reason.as_deref().unwrap_or("")
                    ));
                }
            }
            if results.is_empty() {
                s.push_str(&format!("{store_name}: no tenants yet\n"));
            }
            if keys.is_none() && results.iter().any(|r| r.checkpoints_checked > 0) {
                s.push_str("note: checkpoint signatures were not checked (pass --trust to check them)\n");
            }
            s
        },
    );
    Ok(if ok {
        Exit::Ok
    } else {
        Exit::VerificationFailed
    })
}

fn checkpoint_cmd(a: CheckpointArgs, out: &Output) -> anyhow::Result<Exit> {
    let key = read_private_key_file(&a.key)
        .with_context(|| format!("cannot read key `{}`", a.key.display()))?;
    let mut store = open(&a.store)?;
    let cp = checkpoint::create(
        store.as_mut(),
        &a.tenant,
        &a.log_name,
        &key,
        jiff::Timestamp::now(),
    )?;
    out.emit(&serde_json::json!({"tenant": a.tenant, "size": cp.size, "root": cp.root.to_hex(), "note": cp.note}), || {
        cp.note.clone()
    });
    Ok(Exit::Ok)
}

fn prove(a: ProveArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut store = open(&a.store)?;
    let cps = store.checkpoints(&a.tenant)?;
    let pick = |min_size: u64| -> anyhow::Result<clyra_journal::store::StoredCheckpoint> {
        match a.size {
            Some(size) => cps
                .iter()
                .find(|c| c.size == size)
                .cloned()
                .with_context(|| format!("tenant {} has no checkpoint of size {size}", a.tenant)),
            None => cps.iter().rev().find(|c| c.size >= min_size).cloned().with_context(|| {
                format!(
                    "tenant {} has no checkpoint covering {min_size} entries yet; run `clyra journal checkpoint` first",
                    a.tenant
                )
            }),
        }
    };
    if let Some(seq) = a.seq {
        let cp = pick(seq + 1)?;
        let p = proof::inclusion(store.as_mut(), &a.tenant, seq, cp.size)?;
        let mut entry = Vec::new();
        store.scan(&a.tenant, seq, seq + 1, &mut |e| {
            entry = e.canonical;
            Ok(())
        })?;
        // Check our own answer before printing it.
        merkle::verify_inclusion(&merkle::leaf_hash(&entry), &p, &cp.root).context(
            "the stored entry does not match the checkpoint: run `clyra journal verify`",
        )?;
        let entry_json: Value =
            serde_json::from_slice(&entry).context("stored entry is not JSON")?;
        let hashes: Vec<String> = p.hashes.iter().map(|h| h.to_hex()).collect();
        out.emit(
            &serde_json::json!({"tenant": a.tenant, "entry": entry_json, "leaf_index": p.leaf_index, "tree_size": p.tree_size, "root": cp.root.to_hex(), "hashes": hashes, "checkpoint": cp.note}),
            || {
                format!(
                    "entry {seq} is leaf {} of the tree of {} entries, root {}\nproof ({} hashes, leaf to root):\n{}checkpoint:\n{}",
                    p.leaf_index,
                    p.tree_size,
                    cp.root,
                    hashes.len(),
                    hashes.iter().map(|h| format!("  {h}\n")).collect::<String>(),
                    cp.note
                )
            },
        );
        return Ok(Exit::Ok);
    }
    let old_size = a.old_size.context("give --seq or --old-size")?;
    let old = cps
        .iter()
        .find(|c| c.size == old_size)
        .cloned()
        .with_context(|| format!("tenant {} has no checkpoint of size {old_size}", a.tenant))?;
    let new = pick(old_size)?;
    let p = proof::consistency(store.as_mut(), &a.tenant, old.size, new.size)?;
    merkle::verify_consistency(&p, &old.root, &new.root)
        .context("the stored checkpoints are not consistent: run `clyra journal verify`")?;
    let hashes: Vec<String> = p.hashes.iter().map(|h| h.to_hex()).collect();
    out.emit(
        &serde_json::json!({"tenant": a.tenant, "old_size": old.size, "old_root": old.root.to_hex(), "new_size": new.size, "new_root": new.root.to_hex(), "hashes": hashes, "old_checkpoint": old.note, "new_checkpoint": new.note}),
        || {
            format!(
                "the tree of {} entries (root {}) is a prefix of the tree of {} entries (root {})\nproof ({} hashes):\n{}",
                old.size,
                old.root,
                new.size,
                new.root,
                hashes.len(),
                hashes.iter().map(|h| format!("  {h}\n")).collect::<String>()
            )
        },
    );
    Ok(Exit::Ok)
}
