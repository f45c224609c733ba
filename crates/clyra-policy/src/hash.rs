//! The policy hash (spec/policy/README.md §7): `sha256:` and the lowercase hex SHA-256 of the
//! RFC 8785 canonical JSON of the normalized policy, that is the document's JSON value after
//! version mapping, with no defaults filled in. Comments, key order, quoting and layout do not
//! change it; any change of a value does.

use std::fmt;
use std::str::FromStr;

use clyra_evidence::digest::Digest;
use clyra_evidence::jcs;
use serde_json::Value;

/// A policy hash, written `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyHash(Digest);

/// Why a text is not a policy hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a policy hash (expected `sha256:` and 64 lowercase hex characters)")]
pub struct PolicyHashParseError;

impl PolicyHash {
    /// The hash of a normalized policy value. Fails only on values the loader never produces
    /// (non-finite numbers, integers beyond ±(2^53−1)).
    pub fn of_value(value: &Value) -> Result<PolicyHash, jcs::JcsError> {
        let canonical = jcs::canonicalize_value(value)?;
        Ok(PolicyHash(Digest::sha256(&canonical)))
    }

    /// The SHA-256 digest.
    pub fn digest(&self) -> Digest {
        self.0
    }

    /// Lowercase hex of the digest, without the `sha256:` prefix.
    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }
}

impl fmt::Display for PolicyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0.to_hex())
    }
}

impl fmt::Debug for PolicyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyHash({self})")
    }
}

impl FromStr for PolicyHash {
    type Err = PolicyHashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").ok_or(PolicyHashParseError)?;
        Digest::from_hex(hex)
            .map(PolicyHash)
            .map_err(|_| PolicyHashParseError)
    }
}

impl serde::Serialize for PolicyHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PolicyHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_and_round_trips() {
        let a = PolicyHash::of_value(&json!({"b": 1, "a": [1.0, "x"]})).unwrap();
        let b = PolicyHash::of_value(&json!({"a": [1, "x"], "b": 1})).unwrap();
        assert_eq!(a, b);
        // sha256 of {"a":[1,"x"],"b":1}
        assert_eq!(
            a.to_hex(),
            clyra_evidence::digest::Digest::sha256(br#"{"a":[1,"x"],"b":1}"#).to_hex()
        );
        let text = a.to_string();
        assert!(text.starts_with("sha256:") && text.len() == 71);
        assert_eq!(text.parse::<PolicyHash>().unwrap(), a);
        assert!("sha256:XYZ".parse::<PolicyHash>().is_err());
        assert!(a.to_hex().parse::<PolicyHash>().is_err());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<PolicyHash>(&json).unwrap(), a);
    }
}
