//! Velocity guards: sliding-window rate limits per tenant, actor and route, with a burst
//! allowance, answered with `429 Too Many Requests` and `Retry-After`.
//!
//! A [`VelocityGuard`] checks a request's [`Subject`] against a list of [`VelocityRule`]s from
//! policy. Each rule has a [`Scope`] (which of actor and route make up its key; the tenant always
//! does) and a [`VelocityLimit`] (`requests` per `window_ms`, up to `burst` back to back). The
//! window slides (GCRA in [`StateStore::admit`], see [`crate::state`]): over any interval of
//! length `t`, at most `burst + t * requests / window_ms` requests pass, so a steady over-limit
//! stream is held to the configured rate, not to a multiple of it at fixed-window edges.
//!
//! `burst: 1` means strict spacing: a request arriving a little after its slot does not get
//! the slack back, so jittered traffic is admitted somewhat below the rate. A burst of 2 or more
//! absorbs jitter up to one emission interval and holds a jittered over-limit stream within 1% of
//! the rate in both directions (`tests/velocity.rs`).
//!
//! Rules are checked in order and every rule is checked: a request refused by a later rule has
//! still used a hit on the earlier ones (the cost of checking several keys without a
//! cross-key transaction; it can only make the guard stricter, never looser).

use crate::state::{Admission, Clock, Rate, StateError, StateStore};
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

/// The HTTP status a refusal maps to.
pub const STATUS_TOO_MANY_REQUESTS: u16 = 429;

/// A limit from policy: `requests` per `window_ms`, up to `burst` back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityLimit {
    /// Requests admitted per window, sustained.
    pub requests: u64,
    /// The window length in milliseconds.
    pub window_ms: u64,
    /// Requests admitted back to back after a quiet period (at least 1).
    pub burst: u64,
}

impl VelocityLimit {
    /// The store-level rate; fails on zero values or values too large.
    pub fn rate(&self) -> Result<Rate, StateError> {
        Rate::new(self.window_ms, self.requests, self.burst)
    }
}

/// Which parts of the subject, beside the tenant, key a rule's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    /// One window per tenant, actor and route.
    ActorRoute,
    /// One window per tenant and actor, across routes.
    Actor,
    /// One window per tenant and route, across actors.
    Route,
    /// One window per tenant.
    Tenant,
}

impl Scope {
    fn tag(self) -> &'static str {
        match self {
            Scope::ActorRoute => "ar",
            Scope::Actor => "a",
            Scope::Route => "r",
            Scope::Tenant => "t",
        }
    }
}

/// A rule from policy: a scope and its limit (`{"scope": "actor_route", "requests": 100,
/// "window_ms": 60000, "burst": 10}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityRule {
    /// What the window is kept per.
    pub scope: Scope,
    /// Requests admitted per window, sustained.
    pub requests: u64,
    /// The window length in milliseconds.
    pub window_ms: u64,
    /// Requests admitted back to back after a quiet period (at least 1).
    pub burst: u64,
}

impl VelocityRule {
    /// The rule's limit.
    pub fn limit(&self) -> VelocityLimit {
        VelocityLimit {
            requests: self.requests,
            window_ms: self.window_ms,
            burst: self.burst,
        }
    }
}

/// Who is asking for what: the tenant (verified upstream of this guard), the actor and the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The verified tenant.
    pub tenant: &'a str,
    /// The actor (agent, sync, user) within the tenant.
    pub actor: &'a str,
    /// The route or tool name policy knows the request by.
    pub route: &'a str,
}

/// The guard's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Within every limit.
    Allow {
        /// The fewest further requests any rule would admit right now (`u64::MAX` with no
        /// rules), for a `RateLimit-Remaining` header.
        remaining: u64,
    },
    /// Over a limit: answer `429` with `Retry-After`.
    Limit {
        /// The longest wait any refusing rule asks for, in milliseconds.
        retry_after_ms: u64,
        /// The scope of the rule that asked for it.
        scope: Scope,
    },
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The HTTP status for a refusal (`429`), `None` when allowed.
    pub fn status(&self) -> Option<u16> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Limit { .. } => Some(STATUS_TOO_MANY_REQUESTS),
        }
    }

    /// The `Retry-After` value in whole seconds (rounded up, at least 1), `None` when allowed.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Limit { retry_after_ms, .. } => Some(retry_after_ms.div_ceil(1000).max(1)),
        }
    }
}

/// Checks requests against velocity rules, keeping windows in a [`StateStore`].
pub struct VelocityGuard {
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    rules: Vec<(Scope, Rate)>,
}

impl fmt::Debug for VelocityGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VelocityGuard")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("rules", &self.rules)
            .finish()
    }
}

impl VelocityGuard {
    /// A guard applying `rules` in order. Fails on the first rule with an invalid limit, naming
    /// its index.
    pub fn new(
        store: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        rules: &[VelocityRule],
    ) -> Result<Self, StateError> {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.limit()
                    .rate()
                    .map(|rate| (r.scope, rate))
                    .map_err(|e| StateError::InvalidRate(format!("velocity rule {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            store,
            clock,
            rules,
        })
    }

    /// Checks (and, where admitted, records) one request.
    pub fn check(&self, subject: &Subject<'_>) -> Result<Decision, StateError> {
        let now_ms = self.clock.now_ms();
        let mut remaining = u64::MAX;
        let mut refusal: Option<(u64, Scope)> = None;
        for (scope, rate) in &self.rules {
            let key = window_key(*scope, subject);
            match self.store.admit(subject.tenant, &key, rate, now_ms)? {
                Admission::Admitted { remaining: r } => remaining = remaining.min(r),
                Admission::Limited { retry_after_ms } => {
                    if refusal.is_none_or(|(ms, _)| retry_after_ms > ms) {
                        refusal = Some((retry_after_ms, *scope));
                    }
                }
            }
        }
        Ok(match refusal {
            Some((retry_after_ms, scope)) => Decision::Limit {
                retry_after_ms,
                scope,
            },
            None => Decision::Allow { remaining },
        })
    }
}

/// The store key of a rule's window (the store adds the tenant). Parts are length-prefixed so no
/// actor and route names can collide with others.
fn window_key(scope: Scope, s: &Subject<'_>) -> String {
    let (actor, route) = match scope {
        Scope::ActorRoute => (s.actor, s.route),
        Scope::Actor => (s.actor, ""),
        Scope::Route => ("", s.route),
        Scope::Tenant => ("", ""),
    };
    format!(
        "v:{}:{}:{actor}:{}:{route}",
        scope.tag(),
        actor.len(),
        route.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_do_not_collide() {
        let a = Subject {
            tenant: "t",
            actor: "a:1",
            route: "r",
        };
        let b = Subject {
            tenant: "t",
            actor: "a",
            route: "1:r",
        };
        assert_ne!(
            window_key(Scope::ActorRoute, &a),
            window_key(Scope::ActorRoute, &b)
        );
        assert_ne!(window_key(Scope::Actor, &a), window_key(Scope::Route, &a));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let d = |ms| Decision::Limit {
            retry_after_ms: ms,
            scope: Scope::Tenant,
        };
        assert_eq!(d(1).retry_after_secs(), Some(1));
        assert_eq!(d(1000).retry_after_secs(), Some(1));
        assert_eq!(d(1001).retry_after_secs(), Some(2));
        assert_eq!(d(1).status(), Some(429));
        assert_eq!(Decision::Allow { remaining: 3 }.retry_after_secs(), None);
    }

    #[test]
    fn rules_parse_from_policy_json() {
        let r: VelocityRule = serde_json::from_str(
            r#"{"scope":"actor_route","requests":100,"window_ms":60000,"burst":10}"#,
        )
        .unwrap();
        assert_eq!(r.scope, Scope::ActorRoute);
        assert_eq!(r.limit().requests, 100);
        assert!(serde_json::from_str::<VelocityRule>(
            r#"{"scope":"actor","requests":1,"window_ms":1,"burst":1,"extra":1}"#
        )
        .is_err());
    }
}
