//! `clyra bundle build`, `clyra bundle inspect` and `clyra verify`: DEF and PEF evidence bundles.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clyra_evidence::bundle::{
    self, ArtifactRef, BundleBuilder, Governance, Kind, Producer, Report, SlaOp, VerifyOptions,
};
use clyra_evidence::keys::{self, Signer};
use clyra_evidence::trust::TrustStore;
use clyra_evidence::{jcs, Digest};
use serde_json::Value;

use crate::cli::KindArg;
use crate::output::{Exit, Output};

/// Everything `clyra bundle build` needs.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Def (data) or pef (agents and automation).
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// The journal, NDJSON.
    #[arg(long)]
    pub journal: PathBuf,
    /// Directory whose files are embedded as artifacts.
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// An externalized artifact, FILE=URI (repeatable).
    #[arg(long)]
    pub external: Vec<String>,
    /// Private key to sign with (repeat for several signers).
    #[arg(long, required = true)]
    pub key: Vec<PathBuf>,
    /// Where to write the bundle (never over an existing file).
    #[arg(long)]
    pub out: PathBuf,
    /// Write an unpacked bundle directory instead of a .zip.
    #[arg(long)]
    pub dir: bool,
    /// The bundle id (default: FORMAT-RUN_ID).
    #[arg(long)]
    pub bundle_id: Option<String>,
    /// Tenant the evidence belongs to.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Environment (prod, staging, dev).
    #[arg(long, default_value = "dev")]
    pub environment: String,
    /// Run id (default: the journal's first run_id, else one from the time).
    #[arg(long)]
    pub run_id: Option<String>,
    /// A person or service that acted (repeatable).
    #[arg(long = "actor")]
    pub actors: Vec<String>,
    /// The predicate's domain members as JSON, instead of deriving them.
    #[arg(long)]
    pub predicate: Option<PathBuf>,
    /// SHA-256 of the policy in force.
    #[arg(long)]
    policy_sha256: Option<clyra_evidence::Digest>,
    /// An SLA to record, e.g. `generation_ms<=5000` (repeatable; default generation_ms<=5000).
    #[arg(long)]
    pub sla: Vec<String>,
}

/// `created_at` and whether timing is recorded: `SOURCE_DATE_EPOCH` (reproducible builds) fixes the
/// time and turns timing off so identical inputs give identical bytes.
pub(crate) fn build_time() -> anyhow::Result<(jiff::Timestamp, bool)> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => {
            let secs: i64 = v
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH `{v}` is not a number of seconds"))?;
            Ok((jiff::Timestamp::from_second(secs)?, false))
        }
        Err(_) => {
            // Whole milliseconds keep the manifest's timestamp short and exact.
            let now = jiff::Timestamp::now();
            let ms = now.as_millisecond();
            Ok((jiff::Timestamp::from_millisecond(ms)?, true))
        }
    }
}

fn media_type_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "json" => "application/json",
        "ndjson" | "jsonl" => "application/x-ndjson",
        "sql" => "application/sql",
        "csv" => "text/csv",
        "txt" | "log" => "text/plain",
        "yml" | "yaml" => "application/yaml",
        "html" => "text/html",
        "parquet" => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}

/// Parses `metric<=N` or `metric>=N`.
fn parse_sla(s: &str) -> anyhow::Result<(String, SlaOp, f64)> {
    let (metric, op, rest) = if let Some((m, r)) = s.split_once("<=") {
        (m, SlaOp::Le, r)
    } else if let Some((m, r)) = s.split_once(">=") {
        (m, SlaOp::Ge, r)
    } else {
        bail!("--sla `{s}` must look like `generation_ms<=5000` or `entries>=1`");
    };
    let threshold: f64 = rest
        .trim()
        .parse()
        .with_context(|| format!("--sla `{s}`: `{rest}` is not a number"))?;
    Ok((metric.trim().to_owned(), op, threshold))
}

/// Reads a journal: NDJSON of chained entries (with `seq` and `prev`, as `clyra` journals export)
/// or of raw events, which are chained from genesis.
fn read_journal(path: &Path) -> anyhow::Result<(Vec<Value>, bool)> {
    let text =
        std::fs::read(path).with_context(|| format!("cannot read journal `{}`", path.display()))?;
    let mut entries = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v = jcs::parse_strict(line)
            .with_context(|| format!("{}:{}: not a valid journal line", path.display(), i + 1))?;
        if !v.is_object() {
            bail!(
                "{}:{}: a journal line must be a JSON object",
                path.display(),
                i + 1
            );
        }
        entries.push(v);
    }
    if entries.is_empty() {
        bail!("journal `{}` has no entries", path.display());
    }
    let chained = entries[0].get("seq").is_some();
    Ok((entries, chained))
}

fn collect_artifacts(builder: &mut BundleBuilder, dir: &Path) -> anyhow::Result<usize> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read `{}`", d.display()))?
        {
            let entry = entry?;
            let ft = entry.file_type()?;
            let path = entry.path();
            if ft.is_symlink() {
                bail!(
                    "`{}` is a symbolic link; artifacts must be regular files",
                    path.display()
                );
            } else if ft.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for path in &files {
        let rel = path
            .strip_prefix(dir)?
            .to_str()
            .with_context(|| format!("`{}` is not a UTF-8 path", path.display()))?
            .replace(std::path::MAIN_SEPARATOR, "/");
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        builder
            .artifact(&rel, bytes, media_type_of(path))
            .with_context(|| format!("cannot embed `{}`", path.display()))?;
    }
    Ok(files.len())
}

pub fn build(args: BuildArgs, out: &Output) -> anyhow::Result<Exit> {
    let kind = match args.kind {
        KindArg::Def => Kind::Def,
        KindArg::Pef => Kind::Pef,
    };
    let started = std::time::Instant::now();
    if args.out.exists() {
        bail!(
            "`{}` already exists; refusing to overwrite it",
            args.out.display()
        );
    }
    let signers_owned = args
        .key
        .iter()
        .map(|k| {
            keys::read_private_key_file(k)
                .with_context(|| format!("cannot use key `{}`", k.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let signers: Vec<&dyn Signer> = signers_owned.iter().map(|k| k as &dyn Signer).collect();
    let (entries, chained) = read_journal(&args.journal)?;
    let (created_at, timing) = build_time()?;
    let stamp = created_at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        entries
            .iter()
            .find_map(|e| e.get("run_id").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("run-{stamp}"))
    });
    let bundle_id = args
        .bundle_id
        .clone()
        .unwrap_or_else(|| bundle::bundle_id_from(&format!("{}-{run_id}", kind.format())));
    let governance = Governance {
        tenant: args.tenant.clone(),
        environment: args.environment.clone(),
        run_id,
        actors: args.actors.clone(),
    };
    let producer = Producer {
        name: "clyra".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut builder = BundleBuilder::new(kind, bundle_id, created_at, producer, governance);
    builder
        .policy_sha256(args.policy_sha256)
        .record_generation_time(timing);
    if chained {
        for (i, e) in entries.into_iter().enumerate() {
            builder.push_entry(e).with_context(|| {
                format!(
                    "{}: entry {} does not continue the chain",
                    args.journal.display(),
                    i + 1
                )
            })?;
        }
    } else {
        builder.chain_events(entries)?;
    }
    let embedded = match &args.artifacts {
        Some(dir) => collect_artifacts(&mut builder, dir)?,
        None => 0,
    };
    for spec in &args.external {
        let (local, uri) = spec
            .split_once('=')
            .with_context(|| format!("--external `{spec}` must look like `FILE=URI`"))?;
        let local = Path::new(local);
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("--external `{spec}`: no file name"))?;
        let bytes =
            std::fs::read(local).with_context(|| format!("cannot read `{}`", local.display()))?;
        builder.external_artifact(ArtifactRef {
            name: name.to_owned(),
            uri: uri.to_owned(),
            size: bytes.len() as u64,
            media_type: media_type_of(local).to_owned(),
            sha256: Digest::sha256(&bytes),
        })?;
    }
    if let Some(p) = &args.predicate {
        let bytes =
            std::fs::read(p).with_context(|| format!("cannot read predicate `{}`", p.display()))?;
        let v = jcs::parse_strict(&bytes)
            .with_context(|| format!("predicate `{}` is not valid JSON", p.display()))?;
        builder.predicate(v)?;
    } else {
        builder.derive_predicate();
    }
    let mut slas = args
        .sla
        .iter()
        .map(|s| parse_sla(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if slas.is_empty() && timing {
        slas.push(("generation_ms".into(), SlaOp::Le, 5000.0));
    }
    for (metric, op, threshold) in slas {
        builder.sla(metric, op, threshold);
    }
    let bundle = builder.build(&signers)?;
    if args.dir {
        bundle.write_dir(&args.out)?;
    } else {
        bundle.write_zip(&args.out)?;
    }
    let m = bundle.manifest();
    let size = bundle.zip_bytes().len();
    let elapsed = started.elapsed();
    out.emit(
        &serde_json::json!({
            "ok": true,
            "bundle": args.out,
            "format": m.format,
            "bundle_id": m.bundle_id,
            "entries": m.journal.count,
            "first_seq": m.journal.first_seq,
            "last_seq": m.journal.last_seq,
            "merkle_root": m.merkle.root,
            "journal_head": m.journal.head,
            "embedded_artifacts": embedded,
            "external_artifacts": m.external_artifacts.len(),
            "bytes": size,
            "elapsed_ms": elapsed.as_millis(),
        }),
        || {
            format!(
                "built {} bundle {}\n  id           {}\n  journal      {} entries, seq {}..{}, head {}\n  merkle root  {}\n  \
                 artifacts    {} embedded, {} external\n  size         {} bytes, built in {} ms\n\
                 verify with: clyra verify {} --trust trust.json",
                m.format,
                args.out.display(),
                m.bundle_id,
                m.journal.count,
                m.journal.first_seq,
                m.journal.last_seq,
                m.journal.head,
                m.merkle.root,
                embedded,
                m.external_artifacts.len(),
                size,
                elapsed.as_millis(),
                args.out.display()
            )
        },
    );
    Ok(Exit::Ok)
}

/// Everything `clyra verify` needs.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The bundle: a .zip file or an unpacked bundle directory.
    pub bundle: PathBuf,
    /// The trust file listing accepted public keys.
    #[arg(long)]
    pub trust: PathBuf,
    /// Directory holding externalized artifacts (DIR/<name>); without it they are reported
    /// as not checked.
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// Verify as of this time (RFC 3339) instead of now.
    #[arg(long)]
    pub at: Option<jiff::Timestamp>,
    /// Distinct trusted keys that must have signed.
    #[arg(long, default_value_t = 1)]
    pub threshold: usize,
}

pub fn verify(args: VerifyArgs, out: &Output) -> anyhow::Result<Exit> {
    // Problems outside the bundle are errors (exit 1); everything inside it is a finding (exit 2).
    let trust = TrustStore::read_file(&args.trust)?;
    let mut options = VerifyOptions::new(&trust, args.at.unwrap_or_else(jiff::Timestamp::now));
    options.threshold = args.threshold;
    options.artifacts_dir = args.artifacts.as_deref();
    let report = bundle::verify_path(&args.bundle, &options)?;
    out.emit(&report, || human_report(&report));
    Ok(if report.is_valid() {
        Exit::Ok
    } else {
        Exit::VerificationFailed
    })
}

pub fn human_report(r: &Report) -> String {
    let warnings = r.findings.iter().filter(|f| !f.code.is_error()).count();
    let mut s = format!(
        "{}: {}{}\n",
        if r.is_valid() { "VALID" } else { "INVALID" },
        r.bundle.as_deref().unwrap_or("bundle"),
        if r.is_valid() && warnings > 0 {
            format!(" ({warnings} warning(s))")
        } else {
            String::new()
        }
    );
    let line = |s: &mut String, k: &str, v: String| s.push_str(&format!("  {k:<13}{v}\n"));
    if let (Some(f), Some(v)) = (&r.format, &r.format_version) {
        line(&mut s, "format", format!("{f} {v}"));
    }
    if let Some(id) = &r.bundle_id {
        line(&mut s, "bundle id", id.clone());
    }
    if let Some(t) = &r.created_at {
        line(&mut s, "created", t.clone());
    }
    let sm = &r.summary;
    if let (Some(n), Some(a), Some(b)) = (sm.entries, sm.first_seq, sm.last_seq) {
        line(&mut s, "journal", format!("{n} entries, seq {a}..{b}"));
    }
    if let Some(root) = &sm.merkle_root {
        line(&mut s, "merkle root", root.to_hex());
    }
    for k in &sm.signers {
        line(&mut s, "signed by", k.to_hex());
    }
    line(&mut s, "checked at", r.checked_at.to_string());
    for f in &r.findings {
        let at = f
            .path
            .as_deref()
            .map(|p| format!(" [{p}]"))
            .unwrap_or_default();
        s.push_str(&format!("  {}{at}  {}\n", f.code, f.message));
    }
    s
}

pub fn inspect(path: &Path, out: &Output) -> anyhow::Result<Exit> {
    let i = bundle::inspect_path(path)?;
    out.emit(&i, || {
        let mut s = format!(
            "{} (not verified: run `clyra verify` for a verdict)\n",
            i.bundle
        );
        let line = |s: &mut String, k: &str, v: String| s.push_str(&format!("  {k:<14}{v}\n"));
        line(
            &mut s,
            "format",
            format!(
                "{} {}",
                i.format.as_deref().unwrap_or("?"),
                i.format_version.as_deref().unwrap_or("?")
            ),
        );
        line(
            &mut s,
            "bundle id",
            i.bundle_id.clone().unwrap_or_else(|| "?".into()),
        );
        line(
            &mut s,
            "created",
            i.created_at.clone().unwrap_or_else(|| "?".into()),
        );
        if let Some(m) = &i.manifest {
            line(
                &mut s,
                "tenant",
                format!("{} ({})", m.governance.tenant, m.governance.environment),
            );
            line(&mut s, "run", m.governance.run_id.clone());
            if !m.governance.actors.is_empty() {
                line(&mut s, "actors", m.governance.actors.join(", "));
            }
            line(
                &mut s,
                "journal",
                format!(
                    "{} entries, seq {}..{}",
                    m.journal.count, m.journal.first_seq, m.journal.last_seq
                ),
            );
            line(
                &mut s,
                "files",
                format!(
                    "{} listed, {} external",
                    m.files.len(),
                    m.external_artifacts.len()
                ),
            );
            if let Some(p) = &m.policy_sha256 {
                line(&mut s, "policy", p.to_hex());
            }
        }
        if let Some(p) = &i.predicate_type {
            line(&mut s, "predicate", p.clone());
        }
        for a in &i.anchors {
            line(
                &mut s,
                "anchor",
                format!(
                    "{} {} {}",
                    a.get("platform").and_then(Value::as_str).unwrap_or("?"),
                    a.get("kind").and_then(Value::as_str).unwrap_or("?"),
                    a.get("value").and_then(Value::as_str).unwrap_or("?")
                ),
            );
        }
        for k in &i.signer_hints {
            line(&mut s, "signer (hint)", k.clone());
        }
        for (name, size) in &i.contents {
            line(&mut s, "file", format!("{name} ({size} bytes)"));
        }
        for p in &i.problems {
            line(&mut s, "problem", p.clone());
        }
        s
    });
    Ok(Exit::Ok)
}

/// `clyra bundle export`: cut a bundle from the journal.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The store: sqlite:DIR or postgres://USER@HOST:PORT/DB[?schema=NAME].
    #[arg(long)]
    pub store: String,
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// Export every entry of this run.
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present_any = ["from", "to"])]
    pub run: Option<String>,
    /// Export entries recorded at or after this time (RFC 3339).
    #[arg(long, requires = "to")]
    pub from: Option<jiff::Timestamp>,
    /// ... and before this time (RFC 3339).
    #[arg(long, requires = "from")]
    pub to: Option<jiff::Timestamp>,
    /// Def (data) or pef (agents and automation).
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Private key that signs the bundle (repeat for several signers).
    #[arg(long, required = true)]
    pub key: Vec<PathBuf>,
    /// Ed25519 key that signs a new checkpoint when none covers the entries (default: the first --key).
    #[arg(long)]
    pub checkpoint_key: Option<PathBuf>,
    /// Log name for a new checkpoint: its origin is LOG_NAME/TENANT.
    #[arg(long, default_value = "clyra/journal")]
    pub log_name: String,
    /// Environment (prod, staging, dev).
    #[arg(long, default_value = "dev")]
    pub environment: String,
    /// The bundle id (default: FORMAT-TENANT-RUN).
    #[arg(long)]
    pub bundle_id: Option<String>,
    /// Where to write the bundle (never over an existing file).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `clyra bundle export`.
pub fn export(args: ExportArgs, out: &Output) -> anyhow::Result<Exit> {
    use clyra_journal::export::{ExportOptions, Selection};
    let kind = match args.kind {
        KindArg::Def => Kind::Def,
        KindArg::Pef => Kind::Pef,
    };
    if args.out.exists() {
        anyhow::bail!(
            "`{}` already exists; refusing to overwrite it",
            args.out.display()
        );
    }
    let keys = args
        .key
        .iter()
        .map(|k| {
            clyra_evidence::keys::read_private_key_file(k)
                .with_context(|| format!("cannot use key `{}`", k.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let signers: Vec<&dyn Signer> = keys.iter().map(|k| k as &dyn Signer).collect();
    let cp_owned = match &args.checkpoint_key {
        Some(p) => Some(
            clyra_evidence::keys::read_private_key_file(p)
                .with_context(|| format!("cannot use key `{}`", p.display()))?,
        ),
        None => None,
    };
    let cp_key: &dyn Signer = match (&cp_owned, keys.first()) {
        (Some(k), _) => k,
        (None, Some(k)) => k,
        (None, None) => anyhow::bail!("give --key"),
    };
    let selection = match (&args.run, args.from, args.to) {
        (Some(run), _, _) => Selection::Run(run.clone()),
        (None, Some(from), Some(to)) => {
            if from >= to {
                anyhow::bail!("--from {from} must be before --to {to}");
            }
            Selection::Range { from, to }
        }
        _ => anyhow::bail!("give --run ID, or --from T1 --to T2"),
    };
    let (created_at, _) = build_time()?;
    let mut store = clyra_journal::open(&args.store).with_context(|| {
        format!(
            "cannot open the journal store `{}`",
            clyra_journal::postgres::redact_url(&args.store)
        )
    })?;
    let started = std::time::Instant::now();
    let bundle = clyra_journal::export::export(
        store.as_mut(),
        &ExportOptions {
            tenant: &args.tenant,
            selection,
            kind,
            environment: args.environment.clone(),
            bundle_id: args.bundle_id.clone(),
            created_at,
            signers: &signers,
            checkpoint_key: cp_key,
            log_name: &args.log_name,
            artifacts: &[],
        },
    )?;
    bundle.write_zip(&args.out)?;
    let m = bundle.manifest();
    let chain = if args.run.is_some() { "run" } else { "journal" };
    out.emit(
        &serde_json::json!({
            "ok": true,
            "bundle": args.out,
            "format": m.format,
            "format_version": m.format_version,
            "bundle_id": m.bundle_id,
            "tenant": args.tenant,
            "chain": chain,
            "entries": m.journal.count,
            "journal_head": m.journal.head,
            "merkle_root": m.merkle.root,
            "bytes": bundle.zip_bytes().len(),
            "elapsed_ms": started.elapsed().as_millis(),
        }),
        || {
            format!(
                "exported {} bundle {}\n  id           {}\n  journal      {} entries ({} chain), head {}\n  \
                 proofs       one inclusion proof per entry to a signed checkpoint\n  size         {} bytes\n\
                 verify with: clyra verify {} --trust trust.json",
                m.format,
                args.out.display(),
                m.bundle_id,
                m.journal.count,
                chain,
                m.journal.head,
                bundle.zip_bytes().len(),
                args.out.display()
            )
        },
    );
    Ok(Exit::Ok)
}
