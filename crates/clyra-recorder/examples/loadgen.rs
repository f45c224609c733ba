//! Open-loop load generator for the recorder benchmark (`bench/recorder.sh`).
//!
//! `loadgen run`: sends signed `POST /v1/events` requests at a fixed offered rate over keep-alive
//! connections and reports acknowledged entries per second and acknowledgement latency
//! percentiles. Latency is measured from each request's *scheduled* send time, not from when a
//! connection got round to it, so a slow server cannot hide its queueing (no coordinated
//! omission).
//!
//! `loadgen floor`: a plain HTTP server (same stack: tokio + axum) whose `POST /v1/events` reads
//! the body and answers `200 {"receipts":[]}` at once: the floor the recorder is compared with.
//!
//! ```text
//! loadgen floor --listen 127.0.0.1:9000
//! loadgen run --endpoint http://127.0.0.1:8787 --tenant acme --key-id k1 --secret-file acme.k1.secret \
//!     --rate 10000 --seconds 20 --connections 64 [--batch 1] [--json]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clyra_recorder::auth::{headers, SignedParts};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match args.first().map(String::as_str) {
        Some("floor") => rt.block_on(floor(
            arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:0".into()),
        )),
        Some("run") => rt.block_on(run(&args)),
        _ => {
            eprintln!("usage: loadgen floor --listen ADDR | loadgen run --endpoint URL --rate N --seconds N ...");
            std::process::exit(1);
        }
    }
}

async fn floor(listen: String) {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/events",
        post(|body: axum::body::Bytes| async move {
            std::hint::black_box(body);
            ([("content-type", "application/json")], "{\"receipts\":[]}")
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
    eprintln!("listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

struct Plan {
    host: String,
    tenant: String,
    key_id: String,
    secret: Vec<u8>,
    batch: usize,
    start: Instant,
    interval: Duration,
    total: u64,
    next: AtomicU64,
}

async fn run(args: &[String]) {
    let endpoint = arg(args, "--endpoint").expect("--endpoint");
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let rate: f64 = arg(args, "--rate")
        .map(|v| v.parse().unwrap())
        .unwrap_or(1000.0);
    let seconds: f64 = arg(args, "--seconds")
        .map(|v| v.parse().unwrap())
        .unwrap_or(10.0);
    let connections: usize = arg(args, "--connections")
        .map(|v| v.parse().unwrap())
        .unwrap_or(64);
    let batch: usize = arg(args, "--batch")
        .map(|v| v.parse().unwrap())
        .unwrap_or(1);
    let secret = match arg(args, "--secret-file") {
        Some(p) => std::fs::read(p).unwrap(),
        None => vec![0u8; 32],
    };
    let requests_per_s = rate / batch as f64;
    let plan = Arc::new(Plan {
        host: host.clone(),
        tenant: arg(args, "--tenant").unwrap_or_else(|| "acme".into()),
        key_id: arg(args, "--key-id").unwrap_or_else(|| "k1".into()),
        secret,
        batch,
        start: Instant::now() + Duration::from_millis(200),
        interval: Duration::from_secs_f64(1.0 / requests_per_s),
        total: (requests_per_s * seconds) as u64,
        next: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    for w in 0..connections {
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move { worker(plan, w).await }));
    }
    let mut lat_us: Vec<u32> = Vec::with_capacity(plan.total as usize);
    let (mut ok, mut errors, mut statuses) =
        (0u64, 0u64, std::collections::BTreeMap::<u16, u64>::new());
    let mut last_done = plan.start;
    for t in tasks {
        let r = t.await.unwrap();
        lat_us.extend(r.lat_us);
        ok += r.ok;
        errors += r.errors;
        for (s, n) in r.statuses {
            *statuses.entry(s).or_default() += n;
        }
        last_done = last_done.max(r.last_done);
    }
    lat_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (lat_us.len() - 1) as f64).round() as usize;
        f64::from(lat_us[i]) / 1000.0
    };
    let wall = last_done.duration_since(plan.start).as_secs_f64();
    let entries_per_s = (ok * batch as u64) as f64 / wall;
    let json = serde_json::json!({
        "endpoint": endpoint, "offered_entries_per_s": rate, "batch": batch, "connections": connections,
        "seconds": wall, "requests": plan.total, "acknowledged": ok, "errors": errors,
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
        "entries_per_s": entries_per_s,
        "p50_ms": pct(50.0), "p95_ms": pct(95.0), "p99_ms": pct(99.0), "max_ms": pct(100.0),
    });
    if args.iter().any(|a| a == "--json") {
        println!("{json}");
    } else {
        println!(
            "{endpoint}: offered {rate:.0}/s (batch {batch}), acknowledged {entries_per_s:.0} entries/s, \
             p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {errors} {statuses:?}",
            pct(50.0),
            pct(95.0),
            pct(99.0),
            pct(100.0)
        );
    }
}

struct WorkerResult {
    lat_us: Vec<u32>,
    ok: u64,
    errors: u64,
    statuses: std::collections::BTreeMap<u16, u64>,
    last_done: Instant,
}

async fn connect(host: &str) -> BufReader<TcpStream> {
    let s = TcpStream::connect(host).await.unwrap();
    s.set_nodelay(true).unwrap();
    BufReader::new(s)
}

async fn worker(plan: Arc<Plan>, w: usize) -> WorkerResult {
    let mut conn = connect(&plan.host).await;
    let mut res = WorkerResult {
        lat_us: Vec::new(),
        ok: 0,
        errors: 0,
        statuses: Default::default(),
        last_done: plan.start,
    };
    let mut buf = Vec::with_capacity(4096);
    loop {
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.total {
            break;
        }
        let due = plan.start + plan.interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let body = if plan.batch == 1 {
            format!(r#"{{"kind":"bench.event","run":"w{w}","body":{{"i":{i},"ok":true}}}}"#)
        } else {
            let evs: Vec<String> = (0..plan.batch)
                .map(|j| {
                    format!(r#"{{"kind":"bench.event","run":"w{w}","body":{{"i":{i},"j":{j}}}}}"#)
                })
                .collect();
            format!(r#"{{"events":[{}]}}"#, evs.join(","))
        };
        let ts = jiff::Timestamp::now().as_second();
        let nonce = format!("{:016x}{:016x}", i, rand_u64());
        let parts = SignedParts {
            method: "POST",
            path_and_query: "/v1/events",
            tenant: &plan.tenant,
            key_id: &plan.key_id,
            timestamp: ts,
            nonce: &nonce,
            body: body.as_bytes(),
        };
        buf.clear();
        buf.extend_from_slice(
            format!(
                "POST /v1/events HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                plan.host,
                body.len()
            )
            .as_bytes(),
        );
        for (k, v) in headers(&plan.secret, &parts) {
            buf.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(body.as_bytes());
        let status = match exchange(&mut conn, &buf).await {
            Some(s) => s,
            None => {
                res.errors += 1;
                conn = connect(&plan.host).await;
                continue;
            }
        };
        let done = Instant::now();
        *res.statuses.entry(status).or_default() += 1;
        if status == 200 {
            res.ok += 1;
            res.lat_us
                .push(u32::try_from(done.duration_since(due).as_micros()).unwrap_or(u32::MAX));
        } else {
            res.errors += 1;
        }
        res.last_done = done;
    }
    res
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// Writes one request and reads one response; returns its status.
async fn exchange(conn: &mut BufReader<TcpStream>, req: &[u8]) -> Option<u16> {
    conn.get_mut().write_all(req).await.ok()?;
    let mut line = String::new();
    conn.read_line(&mut line).await.ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        if conn.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.ok()?;
    Some(status)
}
