//! The writer: one thread that owns the journal's write connection and group-commits.
//!
//! Handlers push [`Job`]s (already validated events and a reply channel) into an unbounded
//! channel whose size is bounded by a semaphore counted in events (see `server.rs`). The writer
//! blocks for one job, drains whatever else is queued up to `max_events`, appends all of it in one
//! [`Store::append`] (one transaction, one fsync), and answers every job: with its receipts, or,
//! when the transaction failed and rolled back, with the same error for all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clyra_journal::{BodyPolicy, NewEvent, Receipt, Store, StoreError};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::metrics::Metrics;

/// What the writer answers for one job.
pub(crate) type Reply = Result<Vec<Receipt>, Arc<StoreError>>;

/// One request's events on their way to the journal.
#[derive(Debug)]
pub(crate) struct Job {
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Reply>,
    /// Returned to the queue's semaphore when the job is answered.
    pub permit: OwnedSemaphorePermit,
}

/// Sets the alive flag to false when the writer ends, however it ends.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Runs until every sender is dropped and the queue is empty.
pub(crate) fn run(
    mut store: Box<dyn Store>,
    policy: BodyPolicy,
    max_events: usize,
    mut rx: mpsc::UnboundedReceiver<Job>,
    metrics: Arc<Metrics>,
    alive: Arc<AtomicBool>,
) {
    alive.store(true, Ordering::SeqCst);
    let _guard = AliveGuard(alive);
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(job) => job,
            None => match rx.blocking_recv() {
                Some(job) => job,
                None => return,
            },
        };
        let mut total = first.events.len();
        let mut jobs = vec![first];
        while total < max_events {
            match rx.try_recv() {
                Ok(job) => {
                    if total + job.events.len() > max_events {
                        carry = Some(job);
                        break;
                    }
                    total += job.events.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        commit(store.as_mut(), &policy, jobs, total, &metrics);
    }
}

fn commit(
    store: &mut dyn Store,
    policy: &BodyPolicy,
    mut jobs: Vec<Job>,
    total: usize,
    metrics: &Metrics,
) {
    let mut events = Vec::with_capacity(total);
    let mut counts = Vec::with_capacity(jobs.len());
    for job in &mut jobs {
        counts.push(job.events.len());
        events.append(&mut job.events);
    }
    match store.append(&events, policy) {
        Ok(receipts) => {
            let appended = receipts.iter().filter(|r| !r.duplicate).count();
            metrics.commit(events.len(), appended);
            let mut rest = receipts.into_iter();
            for (job, n) in jobs.into_iter().zip(counts) {
                let mine: Vec<Receipt> = rest.by_ref().take(n).collect();
                // Free the queue space before answering, so that a client that got its ack never
                // sees its own events still counted as queued.
                drop(job.permit);
                // The client may have gone; its events are durable all the same.
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            metrics.commit_failed();
            let e = Arc::new(e);
            for job in jobs {
                drop(job.permit);
                let _ = job.reply.send(Err(Arc::clone(&e)));
            }
        }
    }
}
