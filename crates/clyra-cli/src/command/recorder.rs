//! `clyra recorder serve` and `clyra record`: wiring for `clyra_recorder`.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clyra_recorder::client::Client;
use clyra_recorder::{Config, Recorder, Tenants};
use serde_json::Value;

use crate::output::{Exit, Output};

/// Everything `clyra recorder serve` needs.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// The journal: sqlite:DIR or postgres://USER@HOST:PORT/DB[?schema=NAME].
    #[arg(long)]
    pub store: String,
    /// The tenants file (JSON); secret files are relative to it.
    #[arg(long)]
    pub tenants: PathBuf,
    /// What the journal keeps of each event's body.
    #[command(flatten)]
    pub body: crate::command::journal::BodyArgs,
    /// Largest request body, in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Most events waiting for the journal; beyond it requests get 503 with Retry-After.
    #[arg(long, default_value_t = 10_000)]
    pub queue: usize,
    /// Most events in one request.
    #[arg(long, default_value_t = 1000)]
    pub max_batch: usize,
    /// Accepted difference between a request's timestamp and this machine's clock, in seconds.
    #[arg(long, default_value_t = 300)]
    pub clock_skew_secs: u64,
    /// Sign checkpoints with this Ed25519 key (PKCS#8 PEM): every --checkpoint-every seconds for
    /// each tenant whose journal grew, and once more at shutdown.
    #[arg(long)]
    pub checkpoint_key: Option<PathBuf>,
    /// Seconds between checkpoint passes (fractions allowed).
    #[arg(long, default_value_t = 60.0, requires = "checkpoint_key")]
    pub checkpoint_every: f64,
    /// Log name for checkpoints: the origin of each tenant's notes is LOG_NAME/TENANT.
    #[arg(long, default_value = "clyra/journal")]
    pub log_name: String,
}

pub fn serve(args: ServeArgs, _out: &Output) -> anyhow::Result<Exit> {
    let tenants = Tenants::load(&args.tenants)?;
    let mut config = Config::new(tenants);
    config.body_policy = args.body.policy()?;
    config.max_body_bytes = args.max_body_bytes;
    config.queue_events = args.queue;
    config.max_batch_events = args.max_batch;
    config.clock_skew_secs = args.clock_skew_secs;
    if let Some(path) = &args.checkpoint_key {
        let key = clyra_evidence::keys::read_private_key_file(path)
            .with_context(|| format!("cannot use checkpoint key `{}`", path.display()))?;
        if clyra_evidence::keys::Signer::algorithm(&key) != clyra_evidence::keys::Algorithm::Ed25519
        {
            anyhow::bail!(
                "checkpoint key `{}` must be Ed25519 (signed notes use Ed25519)",
                path.display()
            );
        }
        if !(args.checkpoint_every.is_finite() && args.checkpoint_every >= 0.05) {
            anyhow::bail!("--checkpoint-every must be at least 0.05 seconds");
        }
        clyra_journal::checkpoint::origin(&args.log_name, "t")
            .with_context(|| format!("--log-name `{}`", args.log_name))?;
        config.checkpoint = Some(clyra_recorder::CheckpointConfig {
            key: std::sync::Arc::new(key),
            log_name: args.log_name.clone(),
            every: std::time::Duration::from_secs_f64(args.checkpoint_every),
        });
    }
    let recorder = Recorder::open(config, &args.store)?;
    recorder.run(&args.listen, |addr| {
        eprintln!("listening on http://{addr}");
    })?;
    eprintln!("stopped: every acknowledged event is in the journal");
    Ok(Exit::Ok)
}

/// Everything `clyra record` needs.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The recorder, http://HOST:PORT.
    #[arg(long)]
    pub endpoint: String,
    /// The tenant to record for.
    #[arg(long)]
    pub tenant: String,
    /// The id of the tenant's key.
    #[arg(long)]
    pub key_id: String,
    /// The key's secret file (at least 32 bytes, mode 0600).
    #[arg(long)]
    pub secret_file: PathBuf,
    /// One event or {"events": [...]}, as JSON; `-` for stdin.
    #[arg(default_value = "-")]
    pub file: PathBuf,
}

pub fn record(args: RecordArgs, out: &Output) -> anyhow::Result<Exit> {
    let secret = clyra_recorder::tenants::read_secret(&args.secret_file)?;
    let body = super::read_input(&args.file)?;
    let client = Client::new(&args.endpoint, &args.tenant, &args.key_id, secret)?;
    let resp = client.post_events(&body)?;
    if !resp.is_success() {
        bail!(
            "the recorder refused `{}`: {}",
            super::display_name(&args.file),
            resp.error_message()
        );
    }
    let doc = resp.json().context("the recorder's answer is not JSON")?;
    let receipts = doc
        .get("receipts")
        .and_then(Value::as_array)
        .context("the recorder's answer has no receipts")?;
    out.emit(&doc, || {
        let mut text = String::new();
        for r in receipts {
            let seq = r.get("seq").map(Value::to_string).unwrap_or_default();
            let hash = r.get("hash").and_then(Value::as_str).unwrap_or("");
            text.push_str(&format!("seq {seq}  hash {hash}"));
            if let Some(rs) = r.get("run_seq") {
                text.push_str(&format!("  run_seq {rs}"));
            }
            if r.get("duplicate") == Some(&Value::Bool(true)) {
                text.push_str("  (duplicate: already recorded)");
            }
            text.push('\n');
        }
        text.push_str(&format!(
            "{} event(s) recorded for tenant {}",
            receipts.len(),
            args.tenant
        ));
        text
    });
    Ok(Exit::Ok)
}
