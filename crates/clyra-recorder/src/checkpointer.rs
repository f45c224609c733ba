//! Periodic signed checkpoints: a thread with its own journal connection that, every interval,
//! signs a checkpoint for each tenant whose journal grew since its last one, and once more at
//! shutdown, after the writer has committed everything it acknowledged.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use clyra_evidence::keys::PrivateKey;
use clyra_journal::Store;

use crate::metrics::Metrics;

/// How the recorder signs checkpoints.
#[derive(Clone)]
pub struct CheckpointConfig {
    /// The Ed25519 key that signs the notes.
    pub key: Arc<PrivateKey>,
    /// The log name: each tenant's checkpoint origin is `<log name>/<tenant>`.
    pub log_name: String,
    /// How often to look for grown journals.
    pub every: Duration,
}

impl std::fmt::Debug for CheckpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointConfig")
            .field("log_name", &self.log_name)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// Tells the checkpointer to make its last pass and stop.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    pub(crate) fn stop(&self) {
        if let Ok(mut s) = self.stopped.lock() {
            *s = true;
        }
        self.wake.notify_all();
    }

    /// Waits up to `d`; true when asked to stop.
    fn wait(&self, d: Duration) -> bool {
        let Ok(guard) = self.stopped.lock() else {
            return true;
        };
        match self.wake.wait_timeout_while(guard, d, |stopped| !*stopped) {
            Ok((g, _)) => *g,
            Err(_) => true,
        }
    }
}

/// One pass: a checkpoint for every tenant whose journal is larger than its latest checkpoint.
fn pass(store: &mut dyn Store, cfg: &CheckpointConfig, metrics: &Metrics) {
    let Ok(tenants) = store.tenants() else {
        metrics.checkpoint_failed();
        return;
    };
    for t in tenants {
        let grown = match (store.head(&t), store.checkpoints(&t)) {
            (Ok(head), Ok(cps)) => head.size > cps.last().map_or(0, |c| c.size),
            _ => {
                metrics.checkpoint_failed();
                continue;
            }
        };
        if !grown {
            continue;
        }
        match clyra_journal::checkpoint::create(
            store,
            &t,
            &cfg.log_name,
            cfg.key.as_ref(),
            jiff::Timestamp::now(),
        ) {
            Ok(_) => metrics.checkpoint_signed(),
            Err(e) => {
                metrics.checkpoint_failed();
                eprintln!("checkpoint for tenant {t} failed: {e}");
            }
        }
    }
}

/// The thread body.
pub(crate) fn run(
    mut store: Box<dyn Store>,
    cfg: CheckpointConfig,
    stop: Arc<Stop>,
    metrics: Arc<Metrics>,
) {
    loop {
        let stopping = stop.wait(cfg.every);
        pass(store.as_mut(), &cfg, &metrics);
        if stopping {
            return;
        }
    }
}
