//! SHA-256 digests as a newtype, with the text forms Clyra uses on the wire.
//!
//! Digests travel as 64 lowercase hex characters (in-toto `{"sha256": hex}`, journal `prev` links,
//! key ids) or as standard base64 (RFC 9162 proof files). Parsing is strict: uppercase hex, wrong
//! lengths and stray characters are rejected so that one digest has exactly one text form.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The length of a SHA-256 digest in bytes.
pub const SHA256_LEN: usize = 32;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest([u8; SHA256_LEN]);

/// Marks a byte that is not lowercase hex in [`HEX_VALUE`].
const INVALID_HEX: u8 = 0xff;

/// The value of each lowercase hex digit; [`INVALID_HEX`] for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut t = [INVALID_HEX; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Why a digest's text form was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    /// The hex form was not exactly 64 characters.
    #[error("expected 64 lowercase hex characters, found {0}")]
    HexLength(usize),
    /// The hex form contained a character outside `0-9a-f`.
    #[error("invalid character `{0}` in lowercase hex digest")]
    HexChar(char),
    /// The base64 form did not decode to 32 bytes.
    #[error("expected base64 of 32 bytes")]
    Base64,
}

impl Digest {
    /// The all-zero digest, used as the `prev` link of a chain's first entry.
    pub const ZERO: Digest = Digest([0u8; SHA256_LEN]);

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; SHA256_LEN]) -> Self {
        Digest(bytes)
    }

    /// SHA-256 of `data`.
    pub fn sha256(data: &[u8]) -> Self {
        Digest(Sha256::digest(data).into())
    }

    /// SHA-256 over the concatenation of `parts`, without copying them together.
    pub fn sha256_parts(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Digest(h.finalize().into())
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; SHA256_LEN] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Standard base64 with padding.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Parses exactly 64 lowercase hex characters.
    pub fn from_hex(s: &str) -> Result<Self, DigestParseError> {
        if s.len() != SHA256_LEN * 2 {
            return Err(DigestParseError::HexLength(s.chars().count()));
        }
        // One pass over the bytes with a table: this runs twice per journal line in verification.
        let mut out = [0u8; SHA256_LEN];
        let mut bad = false;
        for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            if let [hi, lo] = *pair {
                let (hi, lo) = (HEX_VALUE[usize::from(hi)], HEX_VALUE[usize::from(lo)]);
                bad |= (hi | lo) > 0x0f; // INVALID_HEX on either side
                *byte = (hi << 4) | (lo & 0x0f);
            }
        }
        if bad {
            // The first character outside `0-9a-f`, as a whole character (it may be non-ASCII).
            return Err(s
                .chars()
                .find(|c| !matches!(c, '0'..='9' | 'a'..='f'))
                .map_or(
                    DigestParseError::HexLength(s.len()),
                    DigestParseError::HexChar,
                ));
        }
        Ok(Digest(out))
    }

    /// Parses standard base64 (with padding) of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, DigestParseError> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| DigestParseError::Base64)?;
        let arr: [u8; SHA256_LEN] = bytes.try_into().map_err(|_| DigestParseError::Base64)?;
        Ok(Digest(arr))
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<[u8; SHA256_LEN]> for Digest {
    fn from(b: [u8; SHA256_LEN]) -> Self {
        Digest(b)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::from_hex(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_matches_fips_180_4() {
        assert_eq!(
            Digest::sha256(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parts_equal_concatenation() {
        assert_eq!(Digest::sha256_parts(&[b"ab", b"c"]), Digest::sha256(b"abc"));
    }

    /// The parser before the table-driven one, kept as the reference.
    fn from_hex_reference(s: &str) -> Result<Digest, DigestParseError> {
        if s.len() != SHA256_LEN * 2 {
            return Err(DigestParseError::HexLength(s.chars().count()));
        }
        if let Some(c) = s.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(DigestParseError::HexChar(c));
        }
        let mut out = [0u8; SHA256_LEN];
        hex::decode_to_slice(s, &mut out).map_err(|_| DigestParseError::HexLength(s.len()))?;
        Ok(Digest(out))
    }

    #[test]
    fn hex_agrees_with_the_reference_for_every_byte_at_every_position() {
        let good = Digest::sha256(b"y").to_hex();
        for at in [0usize, 1, 31, 62, 63] {
            for b in 0u8..=255 {
                let mut bytes = good.clone().into_bytes();
                bytes[at] = b;
                if let Ok(s) = String::from_utf8(bytes) {
                    assert_eq!(Digest::from_hex(&s), from_hex_reference(&s), "{s:?}");
                }
            }
        }
        for s in [
            "",
            "0",
            "é".repeat(32).as_str(),
            &format!("{}é", &good[..62]),
            &format!("zz{}", &good[..62]),
            &format!("{}G", &good[..63]),
        ] {
            assert_eq!(Digest::from_hex(s), from_hex_reference(s), "{s:?}");
        }
    }

    #[test]
    fn hex_is_strict() {
        let d = Digest::sha256(b"x");
        assert_eq!(Digest::from_hex(&d.to_hex()), Ok(d));
        assert_eq!(
            Digest::from_hex(&d.to_hex().to_uppercase()).map(|_| ()),
            Err(DigestParseError::HexChar(
                d.to_hex()
                    .to_uppercase()
                    .chars()
                    .find(|c| c.is_ascii_uppercase())
                    .unwrap_or('?')
            ))
        );
        assert!(Digest::from_hex("abc").is_err());
    }

    #[test]
    fn base64_round_trip() {
        let d = Digest::sha256(b"y");
        assert_eq!(Digest::from_base64(&d.to_base64()), Ok(d));
        assert!(Digest::from_base64("ZG9uJ3QgY2FyZSAy").is_err());
    }
}
