//! The `approvals` section, resolved: durations parsed, defaults filled in, ids checked.

use std::collections::BTreeMap;

use crate::model;

use super::ApprovalError;

/// Lifetime of a resume token when neither the checkpoint nor the section sets `token_ttl`.
pub const DEFAULT_TOKEN_TTL_MS: u64 = 15 * 60 * 1000;
/// Lifetime of a pending approval when neither the checkpoint nor the section sets `pending_ttl`.
pub const DEFAULT_PENDING_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// One checkpoint with everything decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// Identifier.
    pub id: String,
    /// Identity globs allowed to approve.
    pub approvers: Vec<String>,
    /// Two distinct approvers, neither the requester.
    pub two_person: bool,
    /// Resume token lifetime, milliseconds.
    pub token_ttl_ms: u64,
    /// Pending lifetime, milliseconds.
    pub pending_ttl_ms: u64,
}

impl CheckpointConfig {
    /// How many distinct approvals grant the request.
    pub fn need(&self) -> usize {
        if self.two_person {
            2
        } else {
            1
        }
    }
}

/// The resolved section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Checkpoints by id.
    pub checkpoints: BTreeMap<String, CheckpointConfig>,
    /// The webhook, if any.
    pub webhook: Option<model::Webhook>,
}

fn duration(text: Option<&String>, pointer: String, fallback: u64) -> Result<u64, ApprovalError> {
    match text {
        None => Ok(fallback),
        Some(t) => model::Duration::parse(t)
            .map(|d| d.millis)
            .filter(|ms| *ms > 0)
            .ok_or_else(|| ApprovalError::Config {
                pointer,
                reason: format!("`{t}` is not a duration (e.g. 90s, 15m, 24h, 7d)"),
            }),
    }
}

impl Config {
    /// Resolves `approvals` (absent: no checkpoints).
    pub fn resolve(section: Option<&model::Approvals>) -> Result<Config, ApprovalError> {
        let Some(a) = section else {
            return Ok(Config::default());
        };
        let token_ttl = duration(
            a.token_ttl.as_ref(),
            "/approvals/token_ttl".into(),
            DEFAULT_TOKEN_TTL_MS,
        )?;
        let pending_ttl = duration(
            a.pending_ttl.as_ref(),
            "/approvals/pending_ttl".into(),
            DEFAULT_PENDING_TTL_MS,
        )?;
        let mut checkpoints = BTreeMap::new();
        for (i, c) in a.checkpoints.iter().enumerate() {
            let at = |field: &str| format!("/approvals/checkpoints/{i}/{field}");
            if c.approvers.is_empty() {
                return Err(ApprovalError::Config {
                    pointer: at("approvers"),
                    reason: "a checkpoint needs at least one approver glob".into(),
                });
            }
            if let Some((j, _)) = c.approvers.iter().enumerate().find(|(_, p)| p.is_empty()) {
                return Err(ApprovalError::Config {
                    pointer: at(&format!("approvers/{j}")),
                    reason: "an approver glob must not be empty".into(),
                });
            }
            let resolved = CheckpointConfig {
                id: c.id.clone(),
                approvers: c.approvers.clone(),
                two_person: c.two_person.unwrap_or(false),
                token_ttl_ms: duration(c.token_ttl.as_ref(), at("token_ttl"), token_ttl)?,
                pending_ttl_ms: duration(c.pending_ttl.as_ref(), at("pending_ttl"), pending_ttl)?,
            };
            if checkpoints.insert(c.id.clone(), resolved).is_some() {
                return Err(ApprovalError::Config {
                    pointer: at("id"),
                    reason: format!("checkpoint `{}` is defined twice", c.id),
                });
            }
        }
        Ok(Config {
            checkpoints,
            webhook: a.webhook.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cp(id: &str) -> model::Checkpoint {
        model::Checkpoint {
            id: id.into(),
            description: None,
            approvers: vec!["user:*".into()],
            two_person: None,
            token_ttl: None,
            pending_ttl: None,
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let mut fast = cp("fast");
        fast.token_ttl = Some("90s".into());
        fast.two_person = Some(true);
        let a = model::Approvals {
            pending_ttl: Some("2h".into()),
            checkpoints: vec![cp("plain"), fast],
            ..Default::default()
        };
        let c = Config::resolve(Some(&a)).unwrap();
        let plain = &c.checkpoints["plain"];
        assert_eq!(plain.token_ttl_ms, DEFAULT_TOKEN_TTL_MS);
        assert_eq!(plain.pending_ttl_ms, 7_200_000);
        assert_eq!(plain.need(), 1);
        let fast = &c.checkpoints["fast"];
        assert_eq!((fast.token_ttl_ms, fast.need()), (90_000, 2));
        assert!(Config::resolve(None).unwrap().checkpoints.is_empty());
    }

    #[test]
    fn bad_sections_name_the_pointer() {
        let mut bad = cp("x");
        bad.pending_ttl = Some("soon".into());
        let a = model::Approvals {
            checkpoints: vec![cp("ok"), bad],
            ..Default::default()
        };
        let e = Config::resolve(Some(&a)).unwrap_err();
        assert_eq!(e.code(), "A_CONFIG");
        assert!(
            e.to_string()
                .contains("/approvals/checkpoints/1/pending_ttl"),
            "{e}"
        );
        let a = model::Approvals {
            checkpoints: vec![cp("dup"), cp("dup")],
            ..Default::default()
        };
        let e = Config::resolve(Some(&a)).unwrap_err();
        assert!(e.to_string().contains("defined twice"), "{e}");
        let mut none = cp("none");
        none.approvers.clear();
        let a = model::Approvals {
            checkpoints: vec![none],
            ..Default::default()
        };
        assert!(Config::resolve(Some(&a))
            .unwrap_err()
            .to_string()
            .contains("/approvals/checkpoints/0/approvers"));
    }
}
