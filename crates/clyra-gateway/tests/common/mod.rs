//! Shared test helpers: the local Redis, with a key prefix unique to each test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use clyra_gateway::state::RedisStore;
use std::time::{SystemTime, UNIX_EPOCH};

/// The local Redis the tests use.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("clyra-test-g1:{test}:{}:{nanos}", std::process::id())
}

/// A store on the local Redis under `prefix`; fails the test with a clear message when Redis is
/// not reachable (never skips).
pub fn redis_at(prefix: &str) -> RedisStore {
    match RedisStore::connect(REDIS_URL, prefix) {
        Ok(s) => s,
        Err(e) => panic!(
            "these tests need Redis at {REDIS_URL} (start it, e.g. `redis-server --daemonize yes`): {e}"
        ),
    }
}

/// A store on the local Redis under a fresh prefix for `test`.
pub fn redis(test: &str) -> RedisStore {
    redis_at(&unique_prefix(test))
}
