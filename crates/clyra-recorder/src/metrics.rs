//! The recorder's metrics, kept in atomics and written in the Prometheus text format 0.0.4.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// HTTP statuses the recorder answers with; anything else is counted as `other`.
const STATUSES: [u16; 10] = [200, 400, 401, 404, 405, 409, 413, 422, 500, 503];

/// Reject reasons (the `code` of the error body).
pub const REASONS: [&str; 17] = [
    "missing_header",
    "malformed_header",
    "bad_signature",
    "stale_timestamp",
    "nonce_replayed",
    "nonce_cache_full",
    "body_too_large",
    "body_unreadable",
    "invalid_utf8",
    "malformed_json",
    "invalid_event",
    "batch_too_large",
    "queue_full",
    "store_unavailable",
    "store_error",
    "not_found",
    "shutting_down",
];

const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const BATCH_BUCKETS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// A histogram with fixed upper bounds.
#[derive(Debug)]
struct Histogram<const N: usize> {
    bounds: &'static [f64; N],
    buckets: [AtomicU64; N],
    count: AtomicU64,
    /// Sum in millionths of the unit, so that it fits an integer atomic.
    sum_micros: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: &'static [f64; N]) -> Self {
        Histogram {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        for (b, slot) in self.bounds.iter().zip(&self.buckets) {
            if v <= *b {
                slot.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        // Saturating float-to-int cast: negative and NaN give 0.
        self.sum_micros.fetch_add((v * 1e6) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, slot) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", slot.load(Relaxed));
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Counters, gauges and histograms of one recorder.
#[derive(Debug)]
pub struct Metrics {
    ingested: AtomicU64,
    duplicates: AtomicU64,
    commits: AtomicU64,
    commit_failures: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_failures: AtomicU64,
    requests: [AtomicU64; STATUSES.len() + 1],
    rejects: [AtomicU64; REASONS.len()],
    ack_latency: Histogram<14>,
    batch_size: Histogram<13>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            ingested: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            checkpoint_failures: AtomicU64::new(0),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            rejects: std::array::from_fn(|_| AtomicU64::new(0)),
            ack_latency: Histogram::new(&LATENCY_BUCKETS),
            batch_size: Histogram::new(&BATCH_BUCKETS),
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, status: u16) {
        let i = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len());
        if let Some(c) = self.requests.get(i) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Counts one rejected request by reason (unknown reasons are ignored).
    pub fn reject(&self, reason: &str) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            if let Some(c) = self.rejects.get(i) {
                c.fetch_add(1, Relaxed);
            }
        }
    }

    /// Records one durable ack after `seconds`.
    pub fn ack(&self, seconds: f64) {
        self.ack_latency.observe(seconds);
    }

    /// Records one commit of `events` events, `appended` of them new.
    pub fn commit(&self, events: usize, appended: usize) {
        self.commits.fetch_add(1, Relaxed);
        self.batch_size.observe(events as f64);
        self.ingested.fetch_add(appended as u64, Relaxed);
        self.duplicates
            .fetch_add(events.saturating_sub(appended) as u64, Relaxed);
    }

    /// Records a failed commit (rolled back).
    pub fn commit_failed(&self) {
        self.commit_failures.fetch_add(1, Relaxed);
    }

    /// Records a signed checkpoint.
    pub fn checkpoint_signed(&self) {
        self.checkpoints.fetch_add(1, Relaxed);
    }

    /// Records a checkpoint that could not be made.
    pub fn checkpoint_failed(&self) {
        self.checkpoint_failures.fetch_add(1, Relaxed);
    }

    /// Checkpoints signed so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Relaxed)
    }

    /// Commits so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Relaxed)
    }

    /// Entries appended so far (duplicates not counted).
    pub fn ingested(&self) -> u64 {
        self.ingested.load(Relaxed)
    }

    /// The text exposition (format 0.0.4), with the queue depth given by the caller.
    pub fn render(&self, queue_depth: usize, queue_capacity: usize) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "clyra_recorder_ingested_entries_total",
            "Entries appended to the journal (duplicates not counted).",
            self.ingested.load(Relaxed),
        );
        counter(
            &mut out,
            "clyra_recorder_duplicate_events_total",
            "Events whose id was already in the journal (acknowledged, not appended again).",
            self.duplicates.load(Relaxed),
        );
        counter(
            &mut out,
            "clyra_recorder_commits_total",
            "Journal transactions committed by the writer.",
            self.commits.load(Relaxed),
        );
        counter(
            &mut out,
            "clyra_recorder_commit_failures_total",
            "Journal transactions that failed and were rolled back.",
            self.commit_failures.load(Relaxed),
        );
        counter(
            &mut out,
            "clyra_recorder_checkpoints_total",
            "Signed checkpoints made by the periodic checkpointer.",
            self.checkpoints.load(Relaxed),
        );
        counter(
            &mut out,
            "clyra_recorder_checkpoint_failures_total",
            "Checkpoint passes or tenants that failed (retried at the next interval).",
            self.checkpoint_failures.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP clyra_recorder_http_requests_total HTTP requests answered, by status.\n\
             # TYPE clyra_recorder_http_requests_total counter"
        );
        for (i, c) in self.requests.iter().enumerate() {
            let label = STATUSES
                .get(i)
                .map_or_else(|| "other".to_string(), u16::to_string);
            let _ = writeln!(
                out,
                "clyra_recorder_http_requests_total{{status=\"{label}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP clyra_recorder_rejects_total Requests refused, by reason.\n\
             # TYPE clyra_recorder_rejects_total counter"
        );
        for (reason, c) in REASONS.iter().zip(&self.rejects) {
            let _ = writeln!(
                out,
                "clyra_recorder_rejects_total{{reason=\"{reason}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP clyra_recorder_queue_depth_events Events waiting for or in a commit.\n\
             # TYPE clyra_recorder_queue_depth_events gauge\n\
             clyra_recorder_queue_depth_events {queue_depth}\n\
             # HELP clyra_recorder_queue_capacity_events The queue's bound, in events.\n\
             # TYPE clyra_recorder_queue_capacity_events gauge\n\
             clyra_recorder_queue_capacity_events {queue_capacity}"
        );
        self.ack_latency.render(
            &mut out,
            "clyra_recorder_ack_latency_seconds",
            "Time from a request's arrival to its durable acknowledgement.",
        );
        self.batch_size.render(
            &mut out,
            "clyra_recorder_commit_batch_events",
            "Events per journal transaction.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn renders_text_format() {
        let m = Metrics::default();
        m.request(200);
        m.request(418);
        m.reject("bad_signature");
        m.ack(0.003);
        m.commit(3, 2);
        let text = m.render(5, 100);
        assert!(text.contains("clyra_recorder_http_requests_total{status=\"200\"} 1"));
        assert!(text.contains("clyra_recorder_http_requests_total{status=\"other\"} 1"));
        assert!(text.contains("clyra_recorder_rejects_total{reason=\"bad_signature\"} 1"));
        assert!(text.contains("clyra_recorder_ack_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("clyra_recorder_ack_latency_seconds_bucket{le=\"0.001\"} 0"));
        assert!(text.contains("clyra_recorder_commit_batch_events_bucket{le=\"4\"} 1"));
        assert!(text.contains("clyra_recorder_ingested_entries_total 2"));
        assert!(text.contains("clyra_recorder_queue_depth_events 5"));
        assert!(text.contains("clyra_recorder_commits_total 1"));
    }
}
