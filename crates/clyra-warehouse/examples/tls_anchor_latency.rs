//! TLS cost of a new-connection anchor (not part of CI): connect through `pg::connect` (the path
//! every warehouse command takes), take one anchor, disconnect; RUNS times (default 20) with
//! `sslmode=disable` and with the default `prefer` (TLS against a server with `ssl = on`),
//! interleaved so that drift hits both alike. Prints the median and max of each.
//!
//!   tls_anchor_latency [POSTGRES_URL] [RUNS]

use std::time::{Duration, Instant};

use clyra_warehouse::{anchor, pg};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn once(dsn: &str) -> Result<Duration> {
    let t0 = Instant::now();
    let mut client = pg::connect(dsn)?;
    anchor::take(&mut client)?;
    drop(client);
    Ok(t0.elapsed())
}

fn summary(name: &str, mut d: Vec<Duration>) {
    d.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(d[d.len() / 2]);
    let max = ms(d[d.len() - 1]);
    println!(
        "{name:>16}: median {median:.2} ms, max {max:.2} ms over {} runs",
        d.len()
    );
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let runs: usize = args
        .next()
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(20)
        .max(1);
    let sep = if url.contains('?') { '&' } else { '?' };
    let plain = format!("{url}{sep}sslmode=disable");
    let tls = format!("{url}{sep}sslmode=prefer");
    once(&plain)?;
    once(&tls)?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(once(&plain)?);
        b.push(once(&tls)?);
    }
    summary("sslmode=disable", a);
    summary("sslmode=prefer", b);
    Ok(())
}
