//! Where shared gateway state lives: rate windows, idempotency keys and flags (the kill-switch).
//!
//! [`StateStore`] is the small set of atomic operations the enforcement primitives need. Every
//! operation takes the tenant as its own parameter and every backend namespaces its keys by it, so
//! no call made for one tenant can read or change another tenant's state. Every operation also
//! takes the current time (`now_ms`, milliseconds since the Unix epoch, from a [`Clock`]) instead
//! of reading a clock itself: expiry and rate decisions are then deterministic under a
//! [`ManualClock`] on both backends, and several gateway instances sharing Redis agree on time as
//! well as their clocks agree.
//!
//! Two backends pass one conformance suite (`tests/state_conformance.rs`):
//! - [`MemoryStore`]: the embedded default, a mutex over a map with a bound on live entries;
//!   expired entries are swept as the map grows.
//! - [`RedisStore`]: several gateway instances share state in Redis. Each read-modify-write is one
//!   Lua script (`EVAL`), which Redis runs atomically. The client is a minimal RESP2 client over
//!   `std::net::TcpStream` (see the module's `resp` section), so the gateway does not pull in an
//!   async Redis stack for four commands.
//!
//! ## The rate algorithm
//! [`StateStore::admit`] implements a sliding window as GCRA (the generic cell rate algorithm,
//! ITU-T I.371): each key keeps one "theoretical arrival time". With `limit` requests per
//! `window_ms` and a burst of `burst`, requests are spaced `window_ms / limit` apart on average,
//! and up to `burst` may arrive back to back after a quiet period. Over any interval of length
//! `t`, at most `burst + t * limit / window_ms` requests are admitted, whatever the alignment, so
//! there are no fixed-window edges to exploit, and the state is O(1) per key. Arithmetic is on
//! integers scaled by `limit` (time unit `1 / limit` ms), so it is exact on both backends.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Errors from a state backend.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A rate was configured with a zero window, a zero limit or a zero burst, or one so large the
    /// arithmetic would overflow.
    #[error("invalid rate: {0}")]
    InvalidRate(String),
    /// The memory store holds its maximum number of live (unexpired) entries.
    #[error("state store full: {live} live entries (limit {limit})")]
    Full {
        /// Live entries held.
        live: usize,
        /// The configured bound.
        limit: usize,
    },
    /// The store's URL is not `redis://host:port[/db]`.
    #[error("invalid state URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting to or talking to Redis failed.
    #[error("redis at `{addr}`: {source}")]
    Io {
        /// The address.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Redis answered with an error reply.
    #[error("redis at `{addr}` replied with an error: {message}")]
    Redis {
        /// The address.
        addr: String,
        /// The error reply.
        message: String,
    },
    /// Redis answered something this client does not expect (a protocol or script bug).
    #[error("redis at `{addr}`: unexpected reply: {detail}")]
    Protocol {
        /// The address.
        addr: String,
        /// What was unexpected.
        detail: String,
    },
    /// A lock was poisoned by a panic in another thread.
    #[error("state store lock poisoned")]
    Poisoned,
}

/// A source of the current time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to: deterministic tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self(AtomicU64::new(now_ms))
    }
    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A rate: `limit` requests per `window_ms`, with up to `burst` back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    window_ms: u64,
    limit: u64,
    burst: u64,
}

/// The largest `window_ms * burst` (and `window_ms * limit`) a [`Rate`] accepts: keeps every
/// intermediate value exact in Redis's Lua numbers (doubles, exact below 2^53).
pub const MAX_RATE_PRODUCT: u64 = 1 << 50;

impl Rate {
    /// A rate of `limit` requests per `window_ms` milliseconds, admitting up to `burst` requests
    /// back to back after a quiet period. All three must be at least 1.
    pub fn new(window_ms: u64, limit: u64, burst: u64) -> Result<Self, StateError> {
        if window_ms == 0 || limit == 0 || burst == 0 {
            return Err(StateError::InvalidRate(format!(
                "window_ms ({window_ms}), limit ({limit}) and burst ({burst}) must all be at least 1"
            )));
        }
        let too_big = |a: u64, b: u64| a.checked_mul(b).is_none_or(|p| p > MAX_RATE_PRODUCT);
        if too_big(window_ms, burst) || too_big(window_ms, limit) {
            return Err(StateError::InvalidRate(format!(
                "window_ms ({window_ms}) times burst ({burst}) or limit ({limit}) exceeds 2^50"
            )));
        }
        Ok(Self {
            window_ms,
            limit,
            burst,
        })
    }
    /// The window length in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }
    /// Requests admitted per window, sustained.
    pub fn limit(&self) -> u64 {
        self.limit
    }
    /// Requests admitted back to back after a quiet period.
    pub fn burst(&self) -> u64 {
        self.burst
    }
}

/// The answer of [`StateStore::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The hit was admitted and recorded.
    Admitted {
        /// How many more hits would be admitted right now.
        remaining: u64,
    },
    /// The hit was refused (and not recorded); the next one is admitted after this many
    /// milliseconds (at least 1).
    Limited {
        /// Milliseconds until a hit would be admitted.
        retry_after_ms: u64,
    },
}

/// The answer of [`StateStore::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was absent (or expired): the caller now owns it and must
    /// [`complete`](StateStore::complete) or [`release`](StateStore::release) it.
    Claimed,
    /// Another request holds the key and has not completed.
    InFlight,
    /// The key was completed; here is the stored response.
    Done(Vec<u8>),
}

/// The atomic operations the gateway's enforcement primitives need, per tenant.
///
/// Keys are opaque strings chosen by the caller; backends namespace them by `tenant` (length
/// prefixed, so no choice of tenant and key can collide with another's). All times are
/// milliseconds since the Unix epoch, passed in.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Checks a hit on `key` against `rate` and records it when admitted, atomically.
    fn admit(
        &self,
        tenant: &str,
        key: &str,
        rate: &Rate,
        now_ms: u64,
    ) -> Result<Admission, StateError>;

    /// Claims `key` if it is absent or expired (set-if-absent), holding it in flight for
    /// `in_flight_ttl_ms`; otherwise reports it in flight or done with its stored response.
    fn claim(
        &self,
        tenant: &str,
        key: &str,
        in_flight_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Claim, StateError>;

    /// Stores `response` for `key`, kept for `ttl_ms`. Later claims return it as
    /// [`Claim::Done`].
    fn complete(
        &self,
        tenant: &str,
        key: &str,
        response: &[u8],
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<(), StateError>;

    /// Drops an in-flight claim on `key` (the request failed before a response worth
    /// replaying), so a retry can claim it. A completed key is left alone. Returns whether a
    /// claim was dropped.
    fn release(&self, tenant: &str, key: &str, now_ms: u64) -> Result<bool, StateError>;

    /// Sets flag `name` to `value`, expiring after `ttl_ms` (never when `None`).
    fn set_flag(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(), StateError>;

    /// The value of flag `name`, if set and unexpired.
    fn get_flag(
        &self,
        tenant: &str,
        name: &str,
        now_ms: u64,
    ) -> Result<Option<Vec<u8>>, StateError>;

    /// Clears flag `name`. Returns whether it was set (and unexpired).
    fn clear_flag(&self, tenant: &str, name: &str, now_ms: u64) -> Result<bool, StateError>;
}

/// One GCRA step on a key whose theoretical arrival time, relative to now and in units of
/// `1 / limit` ms, is `cur` (0 when idle). Returns the decision and, when admitted, the new
/// relative arrival time. Shared by the memory backend; the Redis script does the same.
fn gcra_step(cur: u64, rate: &Rate) -> (Admission, Option<u64>) {
    // Emission interval T = window/limit ms = window_ms units; tolerance tau = (burst - 1) * T.
    let t = rate.window_ms;
    let tau = (rate.burst - 1) * t;
    if cur > tau {
        let wait_units = cur - tau;
        let retry_after_ms = wait_units.div_ceil(rate.limit).max(1);
        return (Admission::Limited { retry_after_ms }, None);
    }
    let next = cur + t;
    let remaining = (tau + t - next) / t;
    (Admission::Admitted { remaining }, Some(next))
}

// ---------------------------------------------------------------------------------------------
// Memory backend
// ---------------------------------------------------------------------------------------------

/// The default bound on live entries of a [`MemoryStore`].
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    Rate,
    Idem,
    Flag,
}

#[derive(Debug)]
enum Entry {
    /// Absolute theoretical arrival time in units of `1 / limit` ms, and the limit it was scaled
    /// by (a changed limit restarts the window).
    Rate {
        tat: u128,
        limit: u64,
    },
    InFlight,
    Done(Vec<u8>),
    Flag(Vec<u8>),
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    /// Expiry (ms since epoch); `u64::MAX` for never.
    expires_ms: u64,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<(Kind, String, String), Slot>,
    /// Sweep expired entries when the map reaches this size.
    next_sweep: usize,
}

/// The embedded state backend: a mutex over a map. Memory is bounded: expired entries are swept
/// whenever the map has doubled since the last sweep, and at most `max_entries` live entries are
/// held (beyond that, writes fail with [`StateError::Full`]).
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_entries: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store bounded at [`DEFAULT_MAX_ENTRIES`] live entries.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A store bounded at `max_entries` live entries (at least 1).
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                next_sweep: 1024,
            }),
            max_entries: max_entries.max(1),
        }
    }

    /// Entries held, expired or not (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired entry now.
    pub fn sweep(&self, now_ms: u64) -> Result<(), StateError> {
        let mut inner = self.lock()?;
        inner.map.retain(|_, s| s.expires_ms > now_ms);
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StateError> {
        self.inner.lock().map_err(|_| StateError::Poisoned)
    }

    /// Makes room for one new entry: sweeps when due, and refuses when full of live entries.
    fn room(&self, inner: &mut Inner, now_ms: u64) -> Result<(), StateError> {
        if inner.map.len() >= inner.next_sweep || inner.map.len() >= self.max_entries {
            inner.map.retain(|_, s| s.expires_ms > now_ms);
            inner.next_sweep = (inner.map.len() * 2).max(1024);
        }
        if inner.map.len() >= self.max_entries {
            return Err(StateError::Full {
                live: inner.map.len(),
                limit: self.max_entries,
            });
        }
        Ok(())
    }

    fn insert(
        &self,
        inner: &mut Inner,
        k: (Kind, String, String),
        slot: Slot,
        now_ms: u64,
    ) -> Result<(), StateError> {
        if !inner.map.contains_key(&k) {
            self.room(inner, now_ms)?;
        }
        inner.map.insert(k, slot);
        Ok(())
    }
}

fn key(kind: Kind, tenant: &str, key: &str) -> (Kind, String, String) {
    (kind, tenant.to_owned(), key.to_owned())
}

impl StateStore for MemoryStore {
    fn admit(
        &self,
        tenant: &str,
        k: &str,
        rate: &Rate,
        now_ms: u64,
    ) -> Result<Admission, StateError> {
        let mut inner = self.lock()?;
        let id = key(Kind::Rate, tenant, k);
        let now_units = u128::from(now_ms) * u128::from(rate.limit);
        let cur = match inner.map.get(&id) {
            Some(Slot {
                entry: Entry::Rate { tat, limit },
                expires_ms,
            }) if *limit == rate.limit && *expires_ms > now_ms => {
                u64::try_from(tat.saturating_sub(now_units)).unwrap_or(u64::MAX)
            }
            _ => 0,
        };
        let (decision, next) = gcra_step(cur, rate);
        if let Some(next) = next {
            let tat = now_units + u128::from(next);
            // The key is idle again (cur would be 0) once now reaches tat.
            let expires_ms =
                u64::try_from(tat.div_ceil(u128::from(rate.limit))).unwrap_or(u64::MAX);
            self.insert(
                &mut inner,
                id,
                Slot {
                    entry: Entry::Rate {
                        tat,
                        limit: rate.limit,
                    },
                    expires_ms,
                },
                now_ms,
            )?;
        }
        Ok(decision)
    }

    fn claim(
        &self,
        tenant: &str,
        k: &str,
        in_flight_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Claim, StateError> {
        let mut inner = self.lock()?;
        let id = key(Kind::Idem, tenant, k);
        match inner.map.get(&id) {
            Some(slot) if slot.expires_ms > now_ms => match &slot.entry {
                Entry::Done(body) => return Ok(Claim::Done(body.clone())),
                _ => return Ok(Claim::InFlight),
            },
            _ => {}
        }
        let slot = Slot {
            entry: Entry::InFlight,
            expires_ms: now_ms.saturating_add(in_flight_ttl_ms),
        };
        self.insert(&mut inner, id, slot, now_ms)?;
        Ok(Claim::Claimed)
    }

    fn complete(
        &self,
        tenant: &str,
        k: &str,
        response: &[u8],
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<(), StateError> {
        let mut inner = self.lock()?;
        let slot = Slot {
            entry: Entry::Done(response.to_vec()),
            expires_ms: now_ms.saturating_add(ttl_ms),
        };
        self.insert(&mut inner, key(Kind::Idem, tenant, k), slot, now_ms)
    }

    fn release(&self, tenant: &str, k: &str, now_ms: u64) -> Result<bool, StateError> {
        let mut inner = self.lock()?;
        let id = key(Kind::Idem, tenant, k);
        let in_flight = matches!(
            inner.map.get(&id),
            Some(Slot { entry: Entry::InFlight, expires_ms }) if *expires_ms > now_ms
        );
        if in_flight {
            inner.map.remove(&id);
        }
        Ok(in_flight)
    }

    fn set_flag(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(), StateError> {
        let mut inner = self.lock()?;
        let slot = Slot {
            entry: Entry::Flag(value.to_vec()),
            expires_ms: ttl_ms.map_or(u64::MAX, |t| now_ms.saturating_add(t)),
        };
        self.insert(&mut inner, key(Kind::Flag, tenant, name), slot, now_ms)
    }

    fn get_flag(
        &self,
        tenant: &str,
        name: &str,
        now_ms: u64,
    ) -> Result<Option<Vec<u8>>, StateError> {
        let inner = self.lock()?;
        Ok(match inner.map.get(&key(Kind::Flag, tenant, name)) {
            Some(Slot {
                entry: Entry::Flag(v),
                expires_ms,
            }) if *expires_ms > now_ms => Some(v.clone()),
            _ => None,
        })
    }

    fn clear_flag(&self, tenant: &str, name: &str, now_ms: u64) -> Result<bool, StateError> {
        let mut inner = self.lock()?;
        Ok(matches!(
            inner.map.remove(&key(Kind::Flag, tenant, name)),
            Some(Slot { expires_ms, .. }) if expires_ms > now_ms
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Redis backend
// ---------------------------------------------------------------------------------------------

/// Extra lifetime Redis keys get beyond their logical expiry (which the scripts check against
/// `now_ms`): Redis's own expiry only collects garbage, and must not fire early when instance
/// clocks differ slightly from Redis's.
const REDIS_EXPIRY_SLACK_MS: u64 = 60_000;

/// Largest bulk reply accepted (Redis's own string limit is 512 MiB).
const MAX_BULK: usize = 512 * 1024 * 1024;

/// GCRA (see the module docs). KEYS[1] = hash {e: epoch ms, o: arrival time relative to the
/// epoch, in 1/limit ms}. ARGV = now_ms, window_ms, limit, burst. Returns {1, remaining} or
/// {0, retry_after_ms}. Keeps the arrival time relative to the last call so numbers stay small.
const ADMIT_LUA: &str = r"
local now = tonumber(ARGV[1]); local t = tonumber(ARGV[2])
local limit = tonumber(ARGV[3]); local burst = tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'e', 'o', 'l')
local cur = 0
if v[1] and tonumber(v[3]) == limit then
  local elapsed = (now - tonumber(v[1])) * limit
  cur = tonumber(v[2]) - elapsed
  if cur < 0 then cur = 0 end
end
local tau = (burst - 1) * t
if cur > tau then
  local wait = cur - tau
  local ms = math.ceil(wait / limit)
  if ms < 1 then ms = 1 end
  return {0, ms}
end
local nxt = cur + t
redis.call('HSET', KEYS[1], 'e', ARGV[1], 'o', string.format('%.0f', nxt), 'l', ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(nxt / limit) + tonumber(ARGV[5]))
return {1, math.floor((tau + t - nxt) / t)}
";

/// KEYS[1] = hash {s: 'p' in flight | 'd' done, e: expiry ms, b: body}. ARGV = now_ms,
/// expiry_ms, pexpire_ms. Returns {'c'} claimed, {'p'} in flight, {'d', body} done.
const CLAIM_LUA: &str = r"
local v = redis.call('HMGET', KEYS[1], 's', 'e', 'b')
if v[1] and tonumber(v[2]) > tonumber(ARGV[1]) then
  if v[1] == 'd' then return {'d', v[3]} end
  return {'p'}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'p', 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'c'}
";

/// ARGV = body, expiry_ms, pexpire_ms.
const COMPLETE_LUA: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'd', 'e', ARGV[2], 'b', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// ARGV = now_ms. Deletes an unexpired in-flight claim; returns 1 if it did.
const RELEASE_LUA: &str = r"
local v = redis.call('HMGET', KEYS[1], 's', 'e')
if v[1] == 'p' and tonumber(v[2]) > tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// ARGV = now_ms. Deletes the flag; returns 1 if it was unexpired.
const CLEAR_FLAG_LUA: &str = r"
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
if v then
  local e = tonumber(string.sub(v, 1, 20))
  if e > tonumber(ARGV[1]) then return 1 end
end
return 0
";

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// One connection to Redis.
#[derive(Debug)]
struct Conn {
    reader: BufReader<TcpStream>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(5);

impl Conn {
    fn open(addr: &str, db: u32) -> Result<Self, StateError> {
        let io = |source| StateError::Io {
            addr: addr.to_owned(),
            source,
        };
        let sock =
            addr.to_socket_addrs()
                .map_err(io)?
                .next()
                .ok_or_else(|| StateError::InvalidUrl {
                    url: addr.to_owned(),
                    reason: "the host resolves to no address".into(),
                })?;
        let stream = TcpStream::connect_timeout(&sock, IO_TIMEOUT).map_err(io)?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let mut conn = Self {
            reader: BufReader::new(stream),
        };
        if db != 0 {
            let db = db.to_string();
            match conn.call(addr, &[b"SELECT", db.as_bytes()])? {
                Reply::Simple(_) => {}
                other => return Err(unexpected(addr, &other)),
            }
        }
        Ok(conn)
    }

    fn call(&mut self, addr: &str, args: &[&[u8]]) -> Result<Reply, StateError> {
        let io = |source| StateError::Io {
            addr: addr.to_owned(),
            source,
        };
        let mut buf = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&buf).map_err(io)?;
        let reply = read_reply(&mut self.reader, addr, 0)?;
        if let Reply::Error(message) = reply {
            return Err(StateError::Redis {
                addr: addr.to_owned(),
                message,
            });
        }
        Ok(reply)
    }
}

fn unexpected(addr: &str, reply: &Reply) -> StateError {
    StateError::Protocol {
        addr: addr.to_owned(),
        detail: format!("{reply:?}"),
    }
}

fn read_reply<R: BufRead>(r: &mut R, addr: &str, depth: usize) -> Result<Reply, StateError> {
    let proto = |detail: &str| StateError::Protocol {
        addr: addr.to_owned(),
        detail: detail.to_owned(),
    };
    if depth > 8 {
        return Err(proto("replies nested too deep"));
    }
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)
        .map_err(|source| StateError::Io {
            addr: addr.to_owned(),
            source,
        })?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(proto("connection closed or truncated reply line"));
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let int = |s: &str| s.parse::<i64>().map_err(|_| proto("bad integer in reply"));
    match line[0] {
        b'+' => Ok(Reply::Simple(body)),
        b'-' => Ok(Reply::Error(body)),
        b':' => Ok(Reply::Int(int(&body)?)),
        b'$' => {
            let n = int(&body)?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let n = usize::try_from(n).map_err(|_| proto("bad bulk length"))?;
            if n > MAX_BULK {
                return Err(proto("bulk reply too large"));
            }
            let mut data = vec![0u8; n + 2];
            r.read_exact(&mut data).map_err(|source| StateError::Io {
                addr: addr.to_owned(),
                source,
            })?;
            data.truncate(n);
            Ok(Reply::Bulk(Some(data)))
        }
        b'*' => {
            let n = int(&body)?;
            if n < 0 {
                return Ok(Reply::Array(None));
            }
            let n = usize::try_from(n).map_err(|_| proto("bad array length"))?;
            let mut items = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                items.push(read_reply(r, addr, depth + 1)?);
            }
            Ok(Reply::Array(Some(items)))
        }
        _ => Err(proto("unknown reply type")),
    }
}

/// The Redis backend: state shared by several gateway instances.
///
/// Keys are `<prefix>:<kind>:<tenant length>:<tenant>:<key>`. Connections are pooled (one per
/// concurrent caller, kept for reuse); a connection that fails is dropped and the next call opens
/// a new one. No AUTH or TLS yet: run Redis on a private interface.
#[derive(Debug)]
pub struct RedisStore {
    addr: String,
    db: u32,
    prefix: String,
    pool: Mutex<Vec<Conn>>,
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port[/db]`) and checks Redis answers; keys are put under
    /// `prefix` (for example `clyra`, or a per-test prefix).
    pub fn connect(url: &str, prefix: &str) -> Result<Self, StateError> {
        let bad = |reason: &str| StateError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| bad("expected the scheme `redis://`"))?;
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (
                h,
                d.parse::<u32>()
                    .map_err(|_| bad("the database after `/` is not a number"))?,
            ),
            None => (rest, 0),
        };
        if hostport.contains('@') {
            return Err(bad("credentials in the URL are not supported yet"));
        }
        if hostport.is_empty() {
            return Err(bad("no host"));
        }
        let addr = if hostport.contains(':') {
            hostport.to_owned()
        } else {
            format!("{hostport}:6379")
        };
        let store = Self {
            addr,
            db,
            prefix: prefix.to_owned(),
            pool: Mutex::new(Vec::new()),
        };
        match store.call(&[b"PING"])? {
            Reply::Simple(_) => Ok(store),
            other => Err(unexpected(&store.addr, &other)),
        }
    }

    /// The address connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn call(&self, args: &[&[u8]]) -> Result<Reply, StateError> {
        let pooled = self.pool.lock().map_err(|_| StateError::Poisoned)?.pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => Conn::open(&self.addr, self.db)?,
        };
        match conn.call(&self.addr, args) {
            Ok(reply) => {
                self.pool
                    .lock()
                    .map_err(|_| StateError::Poisoned)?
                    .push(conn);
                Ok(reply)
            }
            // An error reply leaves the connection usable; anything else drops it.
            Err(e @ StateError::Redis { .. }) => {
                self.pool
                    .lock()
                    .map_err(|_| StateError::Poisoned)?
                    .push(conn);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn eval(&self, script: &str, key: &str, args: &[&[u8]]) -> Result<Reply, StateError> {
        let mut all: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), b"1", key.as_bytes()];
        all.extend_from_slice(args);
        self.call(&all)
    }

    fn key(&self, kind: &str, tenant: &str, key: &str) -> String {
        format!("{}:{kind}:{}:{tenant}:{key}", self.prefix, tenant.len())
    }

    fn int(&self, reply: &Reply) -> Result<i64, StateError> {
        match reply {
            Reply::Int(i) => Ok(*i),
            other => Err(unexpected(&self.addr, other)),
        }
    }
}

/// Flag values are stored as a 20-digit expiry (ms, `u64::MAX` for never) followed by the value.
fn flag_record(value: &[u8], expires_ms: u64) -> Vec<u8> {
    let mut v = format!("{expires_ms:020}").into_bytes();
    v.extend_from_slice(value);
    v
}

impl StateStore for RedisStore {
    fn admit(
        &self,
        tenant: &str,
        key: &str,
        rate: &Rate,
        now_ms: u64,
    ) -> Result<Admission, StateError> {
        let (now, t, l, b, slack) = (
            now_ms.to_string(),
            rate.window_ms.to_string(),
            rate.limit.to_string(),
            rate.burst.to_string(),
            REDIS_EXPIRY_SLACK_MS.to_string(),
        );
        let reply = self.eval(
            ADMIT_LUA,
            &self.key("r", tenant, key),
            &[
                now.as_bytes(),
                t.as_bytes(),
                l.as_bytes(),
                b.as_bytes(),
                slack.as_bytes(),
            ],
        )?;
        match &reply {
            Reply::Array(Some(items)) if items.len() == 2 => {
                let n = u64::try_from(self.int(&items[1])?)
                    .map_err(|_| unexpected(&self.addr, &reply))?;
                match self.int(&items[0])? {
                    1 => Ok(Admission::Admitted { remaining: n }),
                    0 => Ok(Admission::Limited { retry_after_ms: n }),
                    _ => Err(unexpected(&self.addr, &reply)),
                }
            }
            _ => Err(unexpected(&self.addr, &reply)),
        }
    }

    fn claim(
        &self,
        tenant: &str,
        key: &str,
        in_flight_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Claim, StateError> {
        let now = now_ms.to_string();
        let exp = now_ms.saturating_add(in_flight_ttl_ms).to_string();
        let px = in_flight_ttl_ms
            .saturating_add(REDIS_EXPIRY_SLACK_MS)
            .to_string();
        let reply = self.eval(
            CLAIM_LUA,
            &self.key("i", tenant, key),
            &[now.as_bytes(), exp.as_bytes(), px.as_bytes()],
        )?;
        match &reply {
            Reply::Array(Some(items)) => match items.as_slice() {
                [Reply::Bulk(Some(tag))] if tag == b"c" => Ok(Claim::Claimed),
                [Reply::Bulk(Some(tag))] if tag == b"p" => Ok(Claim::InFlight),
                [Reply::Bulk(Some(tag)), Reply::Bulk(Some(body))] if tag == b"d" => {
                    Ok(Claim::Done(body.clone()))
                }
                _ => Err(unexpected(&self.addr, &reply)),
            },
            _ => Err(unexpected(&self.addr, &reply)),
        }
    }

    fn complete(
        &self,
        tenant: &str,
        key: &str,
        response: &[u8],
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<(), StateError> {
        let exp = now_ms.saturating_add(ttl_ms).to_string();
        let px = ttl_ms.saturating_add(REDIS_EXPIRY_SLACK_MS).to_string();
        let reply = self.eval(
            COMPLETE_LUA,
            &self.key("i", tenant, key),
            &[response, exp.as_bytes(), px.as_bytes()],
        )?;
        self.int(&reply).map(|_| ())
    }

    fn release(&self, tenant: &str, key: &str, now_ms: u64) -> Result<bool, StateError> {
        let now = now_ms.to_string();
        let reply = self.eval(RELEASE_LUA, &self.key("i", tenant, key), &[now.as_bytes()])?;
        Ok(self.int(&reply)? == 1)
    }

    fn set_flag(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(), StateError> {
        let key = self.key("f", tenant, name);
        let record = flag_record(value, ttl_ms.map_or(u64::MAX, |t| now_ms.saturating_add(t)));
        let reply = match ttl_ms {
            Some(t) => {
                let px = t.saturating_add(REDIS_EXPIRY_SLACK_MS).to_string();
                self.call(&[b"SET", key.as_bytes(), &record, b"PX", px.as_bytes()])?
            }
            None => self.call(&[b"SET", key.as_bytes(), &record])?,
        };
        match reply {
            Reply::Simple(_) => Ok(()),
            other => Err(unexpected(&self.addr, &other)),
        }
    }

    fn get_flag(
        &self,
        tenant: &str,
        name: &str,
        now_ms: u64,
    ) -> Result<Option<Vec<u8>>, StateError> {
        let key = self.key("f", tenant, name);
        match self.call(&[b"GET", key.as_bytes()])? {
            Reply::Bulk(None) => Ok(None),
            Reply::Bulk(Some(v)) if v.len() >= 20 => {
                let exp = std::str::from_utf8(&v[..20])
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| StateError::Protocol {
                        addr: self.addr.clone(),
                        detail: format!("flag `{key}` has no expiry prefix"),
                    })?;
                Ok((exp > now_ms).then(|| v[20..].to_vec()))
            }
            other => Err(unexpected(&self.addr, &other)),
        }
    }

    fn clear_flag(&self, tenant: &str, name: &str, now_ms: u64) -> Result<bool, StateError> {
        let now = now_ms.to_string();
        let reply = self.eval(
            CLEAR_FLAG_LUA,
            &self.key("f", tenant, name),
            &[now.as_bytes()],
        )?;
        Ok(self.int(&reply)? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_admits_burst_then_spaces() {
        let rate = Rate::new(1000, 10, 3).unwrap();
        // Idle: three back to back, remaining 2, 1, 0.
        let (a, n) = gcra_step(0, &rate);
        assert_eq!(a, Admission::Admitted { remaining: 2 });
        let (a, n) = gcra_step(n.unwrap(), &rate);
        assert_eq!(a, Admission::Admitted { remaining: 1 });
        let (a, n) = gcra_step(n.unwrap(), &rate);
        assert_eq!(a, Admission::Admitted { remaining: 0 });
        // The fourth waits one interval (100 ms).
        let (a, none) = gcra_step(n.unwrap(), &rate);
        assert_eq!(
            a,
            Admission::Limited {
                retry_after_ms: 100
            }
        );
        assert!(none.is_none());
    }

    #[test]
    fn rate_rejects_zero_and_overflow() {
        assert!(Rate::new(0, 1, 1).is_err());
        assert!(Rate::new(1, 0, 1).is_err());
        assert!(Rate::new(1, 1, 0).is_err());
        assert!(Rate::new(u64::MAX, 1, 2).is_err());
        assert!(Rate::new(60_000, 100, 10).is_ok());
    }

    #[test]
    fn resp_parser_reads_nested_replies() {
        let raw = b"*3\r\n:1\r\n$3\r\nabc\r\n*2\r\n+OK\r\n$-1\r\n".to_vec();
        let r = read_reply(&mut &raw[..], "x", 0).unwrap();
        assert_eq!(
            r,
            Reply::Array(Some(vec![
                Reply::Int(1),
                Reply::Bulk(Some(b"abc".to_vec())),
                Reply::Array(Some(vec![Reply::Simple("OK".into()), Reply::Bulk(None)])),
            ]))
        );
        assert!(read_reply(&mut &b"$5\r\nab"[..], "x", 0).is_err());
        assert!(read_reply(&mut &b"?\r\n"[..], "x", 0).is_err());
    }

    #[test]
    fn redis_url_parsing_refuses_what_it_cannot_do() {
        assert!(matches!(
            RedisStore::connect("http://x", "p"),
            Err(StateError::InvalidUrl { .. })
        ));
        assert!(matches!(
            RedisStore::connect("redis://u:p@h:1", "p"),
            Err(StateError::InvalidUrl { .. })
        ));
        assert!(matches!(
            RedisStore::connect("redis://h:1/x", "p"),
            Err(StateError::InvalidUrl { .. })
        ));
    }
}
