//! dbt's JSON log file (`--log-format-file json`, `DBT_LOG_FORMAT_FILE=json`): one JSON object a
//! line, `{"info": {"name", "invocation_id", "ts", "msg", ...}, "data": {...}}`.
//!
//! When dbt is killed with SIGTERM it writes no `run_results.json`; the log is then the only
//! record of what ran. [`read_log`] reads it line by line and keeps:
//!
//! - `MainReportVersion` (`data.version`) and `MainReportArgs` (`data.args.invocation_command`);
//! - `NodeStart` and `NodeFinished` (`data.node_info{unique_id, node_status, node_started_at,
//!   node_finished_at, ...}`, `data.run_result{status, execution_time, adapter_response,
//!   timing_info, ...}`);
//! - `clyra_guard` decisions: `JinjaLogInfo` events whose `data.msg` is
//!   `clyra_guard.decision {json object}` (the macros of `dbt/clyra_guard` log them).
//!
//! The log is untrusted and may be cut off mid-line (the process was killed): a line that is not
//! JSON, lacks a member Clyra needs, or is longer than [`MAX_LINE_BYTES`] is counted in
//! [`LogSummary::bad_lines`], never fatal, never a panic (`fuzz/fuzz_targets/dbt_log.rs`).
//! dbt appends to its log file across invocations: when the invocation id changes, what was read
//! so far is dropped and counted in [`LogSummary::earlier_invocations`], so the summary is the
//! last invocation's.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{time, DbtError};

/// Longest log line read; a longer one is a bad line.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// The prefix of a `clyra_guard` decision in a `JinjaLogInfo` message.
pub const GUARD_DECISION_PREFIX: &str = "clyra_guard.decision ";

/// What a dbt JSON log says about the last invocation it holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogSummary {
    /// `info.invocation_id`.
    pub invocation_id: Option<String>,
    /// dbt's version (`MainReportVersion`, without dbt's leading `=`).
    pub dbt_version: Option<String>,
    /// Nodes with a `NodeStart`, in log order, each once.
    pub started: Vec<String>,
    /// Nodes with a `NodeFinished`, in log order, each once (a repeated one replaces the first).
    pub finished: Vec<LoggedNode>,
    /// `clyra_guard` decisions, in log order, as logged.
    pub guard_decisions: Vec<Value>,
    /// `info.ts` of each decision's line (RFC 3339 UTC), parallel to `guard_decisions`.
    pub guard_decision_ts: Vec<Option<String>>,
    /// Lines that are not JSON objects, lack a member Clyra needs, or are too long.
    pub bad_lines: u64,
    /// Lines read (empty lines excepted), over every invocation in the file.
    pub lines: u64,
    /// `MainReportArgs` `data.args.invocation_command`: the exact command line.
    pub invocation_command: Option<String>,
    /// The `NodeStart` of each started node: when, and what it is.
    pub node_starts: BTreeMap<String, LoggedStart>,
    /// `info.ts` of the invocation's first line.
    pub first_ts: Option<String>,
    /// `info.ts` of the invocation's last line.
    pub last_ts: Option<String>,
    /// Earlier invocations found in the same file and dropped.
    pub earlier_invocations: u64,
}

/// A node dbt started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoggedStart {
    /// `node_info.resource_type`.
    pub resource_type: Option<String>,
    /// `node_info.node_started_at`, normalized to RFC 3339 UTC.
    pub started_at: Option<String>,
    /// `node_info.node_relation.relation_name`.
    pub relation_name: Option<String>,
}

/// A node dbt finished (`NodeFinished`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoggedNode {
    /// `node_info.unique_id`.
    pub unique_id: String,
    /// `node_info.resource_type`.
    pub resource_type: Option<String>,
    /// `run_result.status`, else `node_info.node_status`.
    pub status: String,
    /// Start of the `execute` step, else `node_started_at` (RFC 3339 UTC).
    pub started_at: Option<String>,
    /// End of the `execute` step, else `node_finished_at` (RFC 3339 UTC).
    pub completed_at: Option<String>,
    /// `run_result.execution_time` in milliseconds.
    pub execution_ms: Option<f64>,
    /// `adapter_response.rows_affected` (`-1`, unknown, left out).
    pub rows_affected: Option<i64>,
    /// `adapter_response.query_id`, when not empty.
    pub query_id: Option<String>,
    /// `run_result.message`, when not empty.
    pub message: Option<String>,
    /// `run_result.num_failures` of a test.
    pub failures: Option<u64>,
    /// `run_result.thread`.
    pub thread_id: Option<String>,
    /// `node_info.node_relation.relation_name`, when not empty.
    pub relation_name: Option<String>,
    /// `node_info.node_checksum`, when not empty.
    pub node_checksum: Option<String>,
    /// `node_info.materialized`.
    pub materialized: Option<String>,
}

impl LogSummary {
    /// Nodes started and not finished (interrupted), in start order.
    pub fn started_not_finished(&self) -> Vec<&str> {
        self.started
            .iter()
            .filter(|id| !self.finished.iter().any(|f| &f.unique_id == *id))
            .map(String::as_str)
            .collect()
    }

    /// Reads one line of the log.
    pub fn push_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.lines += 1;
        if line.len() > MAX_LINE_BYTES || !self.read_event(line) {
            self.bad_lines += 1;
        }
    }

    /// Reads one event; false when the line is bad.
    fn read_event(&mut self, line: &[u8]) -> bool {
        let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(line) else {
            return false;
        };
        let Some(info) = event.get("info").and_then(Value::as_object) else {
            return false;
        };
        let Some(name) = info.get("name").and_then(Value::as_str) else {
            return false;
        };
        let data = event.get("data").and_then(Value::as_object);
        if let Some(inv) = info.get("invocation_id").and_then(Value::as_str) {
            if !inv.is_empty() && self.invocation_id.as_deref() != Some(inv) {
                if self.invocation_id.is_some() {
                    self.start_over();
                }
                self.invocation_id = Some(inv.to_string());
            }
        }
        let ts = info
            .get("ts")
            .and_then(Value::as_str)
            .and_then(time::normalize);
        if let Some(ts) = &ts {
            if self.first_ts.is_none() {
                self.first_ts = Some(ts.clone());
            }
            self.last_ts = Some(ts.clone());
        }
        match name {
            "MainReportVersion" => {
                let Some(v) = data.and_then(|d| d.get("version")).and_then(Value::as_str) else {
                    return false;
                };
                self.dbt_version = Some(v.trim_start_matches('=').to_string());
            }
            "MainReportArgs" => {
                if let Some(c) = data
                    .and_then(|d| d.get("args"))
                    .and_then(|a| a.get("invocation_command"))
                    .and_then(Value::as_str)
                {
                    self.invocation_command = Some(c.to_string());
                }
            }
            "NodeStart" => {
                let Some(ni) = data
                    .and_then(|d| d.get("node_info"))
                    .and_then(Value::as_object)
                else {
                    return false;
                };
                let Some(id) = non_empty(ni.get("unique_id")) else {
                    return false;
                };
                if !self.started.iter().any(|s| s == id) {
                    self.started.push(id.to_string());
                }
                self.node_starts.insert(
                    id.to_string(),
                    LoggedStart {
                        resource_type: non_empty(ni.get("resource_type")).map(str::to_string),
                        started_at: non_empty(ni.get("node_started_at")).and_then(time::normalize),
                        relation_name: relation_name(ni),
                    },
                );
            }
            "NodeFinished" => {
                let Some(node) = data.and_then(finished_node) else {
                    return false;
                };
                match self
                    .finished
                    .iter_mut()
                    .find(|f| f.unique_id == node.unique_id)
                {
                    Some(f) => *f = node,
                    None => self.finished.push(node),
                }
            }
            "JinjaLogInfo" => {
                let msg = data
                    .and_then(|d| d.get("msg"))
                    .or_else(|| info.get("msg"))
                    .and_then(Value::as_str);
                if let Some(rest) = msg.and_then(|m| m.strip_prefix(GUARD_DECISION_PREFIX)) {
                    match serde_json::from_str::<Value>(rest.trim()) {
                        Ok(d @ Value::Object(_)) => {
                            self.guard_decisions.push(d);
                            self.guard_decision_ts.push(ts);
                        }
                        _ => return false,
                    }
                }
            }
            _ => {}
        }
        true
    }

    /// Drops what an earlier invocation in the same file left.
    fn start_over(&mut self) {
        let kept = LogSummary {
            bad_lines: self.bad_lines,
            lines: self.lines,
            earlier_invocations: self.earlier_invocations + 1,
            ..LogSummary::default()
        };
        *self = kept;
    }
}

fn non_empty(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn relation_name(node_info: &Map<String, Value>) -> Option<String> {
    non_empty(
        node_info
            .get("node_relation")
            .and_then(|r| r.get("relation_name")),
    )
    .map(str::to_string)
}

fn finished_node(data: &Map<String, Value>) -> Option<LoggedNode> {
    let ni = data.get("node_info").and_then(Value::as_object)?;
    let unique_id = non_empty(ni.get("unique_id"))?.to_string();
    let rr = data.get("run_result").and_then(Value::as_object);
    let status = non_empty(rr.and_then(|r| r.get("status")))
        .or_else(|| non_empty(ni.get("node_status")))?
        .to_string();
    let execute = rr
        .and_then(|r| r.get("timing_info"))
        .and_then(Value::as_array)
        .and_then(|steps| {
            steps
                .iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some("execute"))
        });
    let step_time = |k: &str| {
        execute
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .and_then(time::normalize)
    };
    let adapter = rr.and_then(|r| r.get("adapter_response"));
    Some(LoggedNode {
        resource_type: non_empty(ni.get("resource_type")).map(str::to_string),
        status,
        started_at: step_time("started_at")
            .or_else(|| non_empty(ni.get("node_started_at")).and_then(time::normalize)),
        completed_at: step_time("completed_at")
            .or_else(|| non_empty(ni.get("node_finished_at")).and_then(time::normalize)),
        execution_ms: rr
            .and_then(|r| r.get("execution_time"))
            .and_then(Value::as_f64)
            .and_then(seconds_to_ms),
        rows_affected: adapter
            .and_then(|a| a.get("rows_affected"))
            .and_then(integer)
            .filter(|&n| n >= 0),
        query_id: non_empty(adapter.and_then(|a| a.get("query_id"))).map(str::to_string),
        message: non_empty(rr.and_then(|r| r.get("message"))).map(str::to_string),
        failures: rr
            .and_then(|r| r.get("num_failures"))
            .and_then(integer)
            .and_then(|n| u64::try_from(n).ok()),
        thread_id: non_empty(rr.and_then(|r| r.get("thread"))).map(str::to_string),
        relation_name: relation_name(ni),
        node_checksum: non_empty(ni.get("node_checksum")).map(str::to_string),
        materialized: non_empty(ni.get("materialized")).map(str::to_string),
        unique_id,
    })
}

/// An integer, also when the log writes it as a float (`"rows_affected": 6.0`: dbt's log events
/// go through protobuf, whose numbers are doubles).
fn integer(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    // Exactly representable integers only (|f| < 2^53).
    (f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64)
}

/// Seconds (dbt's `execution_time`) to milliseconds, rounded to the microsecond; `None` for a
/// negative or non-finite value.
pub(crate) fn seconds_to_ms(s: f64) -> Option<f64> {
    if !s.is_finite() || !(0.0..=1e12).contains(&s) {
        return None;
    }
    Some((s * 1_000_000.0).round() / 1000.0)
}

/// Reads a log from bytes (the whole file in memory).
pub fn parse_log(bytes: &[u8]) -> LogSummary {
    let mut summary = LogSummary::default();
    for line in bytes.split(|&b| b == b'\n') {
        summary.push_line(line);
    }
    summary
}

/// Reads dbt's JSON log file line by line. Only an unreadable file is an error; bad lines are
/// counted.
pub fn read_log(path: &Path) -> Result<LogSummary, DbtError> {
    let io = |source| DbtError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut summary = LogSummary::default();
    let mut line = Vec::new();
    while let Some(too_long) = next_line(&mut reader, &mut line).map_err(io)? {
        if too_long {
            summary.lines += 1;
            summary.bad_lines += 1;
        } else {
            summary.push_line(&line);
        }
    }
    Ok(summary)
}

/// Reads the next line into `buf` (without its `\n`), keeping at most [`MAX_LINE_BYTES`];
/// `Some(true)` when the line was longer, `None` at the end.
fn next_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let newline = avail.iter().position(|&b| b == b'\n');
        let chunk = match newline {
            Some(i) => avail.get(..i).unwrap_or_default(),
            None => avail,
        };
        if !too_long {
            if buf.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let consumed = newline.map_or(avail.len(), |i| i + 1);
        r.consume(consumed);
        if newline.is_some() {
            return Ok(Some(too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn line(name: &str, inv: &str, data: Value) -> String {
        serde_json::json!({"info": {"name": name, "invocation_id": inv, "ts": "2026-12-02T09:00:00Z"}, "data": data})
            .to_string()
    }

    #[test]
    fn bad_lines_are_counted_never_fatal() {
        let text = [
            line("MainReportVersion", "i1", serde_json::json!({"version": "=1.11.16"})),
            "not json".to_string(),
            "{\"info\": 3}".to_string(),
            "[1,2]".to_string(),
            line("NodeStart", "i1", serde_json::json!({"node_info": {}})),
            line("NodeStart", "i1", serde_json::json!({"node_info": {"unique_id": "model.p.a", "node_started_at": "2026-12-02T09:00:01.5"}})),
            line("JinjaLogInfo", "i1", serde_json::json!({"msg": "clyra_guard.decision {not json"})),
            line("JinjaLogInfo", "i1", serde_json::json!({"msg": "clyra_guard.decision {\"decision\": \"blocked\"}"})),
            line("JinjaLogInfo", "i1", serde_json::json!({"msg": "hello"})),
            "{\"info\": {\"name\": \"NodeFinished\"}, \"data\": {\"node_info\": {\"unique_id\": \"model.p.a\", \"node_sta".to_string(),
            String::new(),
        ]
        .join("\n");
        let s = parse_log(text.as_bytes());
        assert_eq!(s.dbt_version.as_deref(), Some("1.11.16"));
        assert_eq!(s.invocation_id.as_deref(), Some("i1"));
        assert_eq!(s.bad_lines, 6, "{s:?}");
        assert_eq!(s.lines, 10);
        assert_eq!(s.started, vec!["model.p.a"]);
        assert_eq!(s.started_not_finished(), vec!["model.p.a"]);
        assert_eq!(
            s.node_starts["model.p.a"].started_at.as_deref(),
            Some("2026-12-02T09:00:01.5Z")
        );
        assert_eq!(
            s.guard_decisions,
            vec![serde_json::json!({"decision": "blocked"})]
        );
    }

    #[test]
    fn a_later_invocation_replaces_an_earlier_one() {
        let text = [
            line(
                "NodeStart",
                "i1",
                serde_json::json!({"node_info": {"unique_id": "model.p.a"}}),
            ),
            line(
                "NodeStart",
                "i2",
                serde_json::json!({"node_info": {"unique_id": "model.p.b"}}),
            ),
        ]
        .join("\n");
        let s = parse_log(text.as_bytes());
        assert_eq!(s.invocation_id.as_deref(), Some("i2"));
        assert_eq!(s.started, vec!["model.p.b"]);
        assert_eq!(s.earlier_invocations, 1);
        assert_eq!(s.lines, 2);
    }

    #[test]
    fn long_lines_are_bad_lines() {
        let mut r = std::io::Cursor::new(format!("{}\nok\n", "x".repeat(MAX_LINE_BYTES + 1)));
        let mut buf = Vec::new();
        assert_eq!(next_line(&mut r, &mut buf).unwrap(), Some(true));
        assert_eq!(next_line(&mut r, &mut buf).unwrap(), Some(false));
        assert_eq!(buf, b"ok");
        assert_eq!(next_line(&mut r, &mut buf).unwrap(), None);
    }

    #[test]
    fn execution_time_in_ms() {
        assert_eq!(seconds_to_ms(0.042412757873535156), Some(42.413));
        assert_eq!(seconds_to_ms(-1.0), None);
        assert_eq!(seconds_to_ms(f64::NAN), None);
    }
}
