//! C2SP signed notes (<https://c2sp.org/signed-note>) and transparency log checkpoints
//! (<https://c2sp.org/tlog-checkpoint>), Ed25519 only.
//!
//! A signed note is a text (the *body*: one or more lines, each ending in `\n`), a blank line, and
//! one or more signature lines `— <name> <base64(key ID || signature)>\n` (an em dash U+2014 and a
//! space first). The body is valid UTF-8 without control characters other than newline; a key
//! name is non-empty and holds no whitespace and no `+`. An Ed25519 key's ID is the first four
//! bytes of `SHA-256(name || 0x0A || 0x01 || 32-byte public key)`, and its signature is over the
//! body bytes exactly, final newline included.
//!
//! The parser is strict ([`SignedNote::parse`]): anything malformed is a [`NoteError`] naming what
//! is wrong and on which line (1-based, counted over the whole note). It also rejects what the
//! spec leaves to verifiers: more than [`MAX_SIGNATURES`] signature lines, a note longer than
//! [`MAX_NOTE_BYTES`], and signatures whose base64 is not the one canonical padded encoding.
//!
//! Verification ([`SignedNote::verified_by`]) follows the spec: a signature line whose name and key
//! ID match no trusted key is ignored; a line that matches a trusted key must verify under it,
//! or the whole note is rejected (fail closed); and at least one line must verify.
//!
//! A [`Checkpoint`] is the body format of tlog-checkpoint: origin, tree size, base64 root hash,
//! then optional extension lines. Clyra writes two: `time <RFC 3339 UTC>` and `head <digest>`.
//!
//! ```
//! use clyra_evidence::keys::{Algorithm, PrivateKey, Signer};
//! use clyra_evidence::note::{self, Checkpoint, SignedNote};
//! use clyra_evidence::Digest;
//!
//! let key = PrivateKey::generate(Algorithm::Ed25519)?;
//! let checkpoint = Checkpoint::clyra(
//!     "clyra.example/acme",
//!     3,
//!     Digest::sha256(b"root"),
//!     "2026-11-24T09:00:00Z".parse()?,
//!     Digest::sha256(b"head"),
//! );
//! let text = note::sign(&checkpoint.to_body(), "clyra.example/acme", &key)?;
//! let signed = SignedNote::parse(&text)?;
//! assert_eq!(signed.verified_by(&[("clyra.example/acme", key.public_key())])?, [0]);
//! assert_eq!(Checkpoint::parse_body(signed.body())?, checkpoint);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use jiff::Timestamp;

use crate::digest::Digest;
use crate::keys::{Algorithm, PublicKey, Signer};

/// The most signature lines a note may carry (Go's `sumdb/note` limit; the spec requires at
/// least 16 be accepted).
pub const MAX_SIGNATURES: usize = 100;
/// The longest note accepted, in bytes: 1 MiB.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// The signature type byte of Ed25519 in key IDs.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;
/// What starts every signature line: an em dash (U+2014) and a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// The extension line prefix of the checkpoint time Clyra writes.
pub const TIME_EXTENSION: &str = "time ";
/// The extension line prefix of the journal head Clyra writes.
pub const HEAD_EXTENSION: &str = "head ";

/// Why a note or checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is longer than [`MAX_NOTE_BYTES`].
    #[error("note is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A control character other than newline.
    #[error("line {line}: control character U+{code:04X}; notes hold none but newline")]
    ControlCharacter {
        /// The 1-based line.
        line: usize,
        /// The character's code point.
        code: u32,
    },
    /// The text is empty.
    #[error("note text is empty")]
    Empty,
    /// The text does not end with a newline.
    #[error("line {line}: the note does not end with a newline")]
    NoFinalNewline {
        /// The last line.
        line: usize,
    },
    /// No blank line followed by at least one signature line.
    #[error("the note has no blank line followed by signature lines")]
    NoSignatures,
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("the note has {count} signature lines, more than the {max} allowed")]
    TooManySignatures {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A signature line is not `— <name> <base64>`.
    #[error("line {line}: malformed signature line: {reason}")]
    MalformedSignature {
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A key name is empty or holds whitespace or `+`.
    #[error("key name `{}` is invalid: {reason}", .name.escape_debug())]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A body to sign is not one or more newline-terminated lines of text.
    #[error("body cannot be signed: {0}")]
    InvalidBody(String),
    /// The key is not an Ed25519 key.
    #[error("{algorithm} keys have no note key ID here; only Ed25519 keys sign notes")]
    NotEd25519 {
        /// The key's algorithm.
        algorithm: Algorithm,
    },
    /// The signer failed.
    #[error("signing failed: {0}")]
    Sign(String),
    /// A signature line names a trusted key (name and key ID) but does not verify under it.
    #[error("line {line}: the signature by `{name}` (key ID {key_id}) does not verify under the trusted key it names")]
    InvalidSignature {
        /// The 1-based line.
        line: usize,
        /// The key name on the line.
        name: String,
        /// The key ID, as 8 lowercase hex characters.
        key_id: String,
    },
    /// No signature line verifies under a trusted key.
    #[error("no signature verifies under a trusted key")]
    NoTrustedSignature,
    /// A checkpoint body is malformed.
    #[error("checkpoint line {line}: {reason}")]
    Checkpoint {
        /// The 1-based line of the body.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The key ID of an Ed25519 `key` under `name`: the first four bytes of
/// `SHA-256(name || 0x0A || 0x01 || public key)`.
pub fn ed25519_key_id(name: &str, key: &PublicKey) -> Result<[u8; 4], NoteError> {
    let raw = key.ed25519_bytes().ok_or(NoteError::NotEd25519 {
        algorithm: key.algorithm(),
    })?;
    Ok(key_id_of_raw(name, &raw))
}

fn key_id_of_raw(name: &str, raw: &[u8; 32]) -> [u8; 4] {
    let d = Digest::sha256_parts(&[name.as_bytes(), b"\n", &[ED25519_SIGNATURE_TYPE], raw]);
    let b = d.as_bytes();
    [b[0], b[1], b[2], b[3]]
}

/// Checks a key name: non-empty, no (Unicode) whitespace, no `+`.
pub fn check_name(name: &str) -> Result<(), NoteError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.chars().any(char::is_whitespace) {
        "it contains whitespace"
    } else if name.contains('+') {
        "it contains `+`"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(NoteError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// The first control character other than newline, as `(1-based line, code point)`.
fn first_control(text: &str) -> Option<(usize, u32)> {
    let mut line = 1;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        } else if (c as u32) < 0x20 {
            return Some((line, c as u32));
        }
    }
    None
}

/// Signs `body` with the Ed25519 `key` under `name` and returns the whole note text: the body, a
/// blank line and one signature line. The body must be one or more lines of text, each ending
/// with `\n`, without control characters other than newline.
pub fn sign(body: &str, name: &str, key: &dyn Signer) -> Result<String, NoteError> {
    check_name(name)?;
    if body.is_empty() {
        return Err(NoteError::InvalidBody("it is empty".to_owned()));
    }
    if !body.ends_with('\n') {
        return Err(NoteError::InvalidBody(
            "it does not end with a newline".to_owned(),
        ));
    }
    if let Some((line, code)) = first_control(body) {
        return Err(NoteError::InvalidBody(format!(
            "line {line} holds control character U+{code:04X}"
        )));
    }
    let key_id = ed25519_key_id(name, key.public_key())?;
    let sig = key
        .sign(body.as_bytes())
        .map_err(|e| NoteError::Sign(e.to_string()))?;
    let mut blob = Vec::with_capacity(4 + sig.len());
    blob.extend_from_slice(&key_id);
    blob.extend_from_slice(&sig);
    let text = format!(
        "{body}\n{SIGNATURE_PREFIX}{name} {}\n",
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    if text.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge {
            size: text.len(),
            max: MAX_NOTE_BYTES,
        });
    }
    Ok(text)
}

/// One signature line of a note, not yet verified.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteSignature {
    name: String,
    key_id: [u8; 4],
    signature: Vec<u8>,
    line: usize,
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSignature")
            .field("name", &self.name)
            .field("key_id", &hex::encode(self.key_id))
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl NoteSignature {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key ID (big-endian on the wire, kept as bytes).
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The signature bytes after the key ID.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The 1-based line of the note it is on.
    pub fn line(&self) -> usize {
        self.line
    }
}

/// A syntactically valid signed note. Its body must not be used before
/// [`verified_by`](Self::verified_by) (or [`verified_by_any_name`](Self::verified_by_any_name))
/// succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    text: String,
    body_len: usize,
    signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a signed note strictly. Never panics, whatever `text` is.
    pub fn parse(text: &str) -> Result<SignedNote, NoteError> {
        if text.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge {
                size: text.len(),
                max: MAX_NOTE_BYTES,
            });
        }
        if text.is_empty() {
            return Err(NoteError::Empty);
        }
        if let Some((line, code)) = first_control(text) {
            return Err(NoteError::ControlCharacter { line, code });
        }
        if !text.ends_with('\n') {
            return Err(NoteError::NoFinalNewline {
                line: text.matches('\n').count() + 1,
            });
        }
        // The signatures follow the last blank line; the body keeps its final newline.
        let split = text.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
        let body_len = split + 1;
        let sig_text = text.get(split + 2..).unwrap_or_default();
        if sig_text.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let lines: Vec<&str> = sig_text
            .strip_suffix('\n')
            .unwrap_or(sig_text)
            .split('\n')
            .collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                count: lines.len(),
                max: MAX_SIGNATURES,
            });
        }
        let body_lines = text
            .get(..body_len)
            .unwrap_or_default()
            .matches('\n')
            .count();
        let mut signatures = Vec::with_capacity(lines.len());
        for (k, line_text) in lines.iter().enumerate() {
            // Body lines, then the blank line, then the signature lines.
            let line = body_lines + 2 + k;
            signatures.push(parse_signature_line(line_text, line)?);
        }
        Ok(SignedNote {
            text: text.to_owned(),
            body_len,
            signatures,
        })
    }

    /// The signed text, final newline included (what the signatures cover).
    pub fn body(&self) -> &str {
        self.text.get(..self.body_len).unwrap_or_default()
    }

    /// The whole note, as parsed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Verifies the note against trusted `(name, key)` pairs and returns the indices (into
    /// `keys`, ascending) of the keys whose signature verified.
    ///
    /// A line is checked against a key when the line's name is the key's name and its key ID is
    /// [`ed25519_key_id`] of them; other lines are ignored, as are keys that are not Ed25519. A
    /// checked line that verifies under none of its matching keys fails the note
    /// ([`NoteError::InvalidSignature`]); a note on which no line verified fails with
    /// [`NoteError::NoTrustedSignature`].
    pub fn verified_by(&self, keys: &[(&str, &PublicKey)]) -> Result<Vec<usize>, NoteError> {
        self.verify_with(keys.len(), |i, name| {
            keys.get(i).filter(|(n, _)| *n == name).map(|(_, key)| *key)
        })
    }

    /// Like [`verified_by`](Self::verified_by), for keys that carry no name: each key is tried
    /// under the name of each signature line, and checked when its key ID under that name is the
    /// line's. This is how a bundle's checkpoint is checked against a trust file.
    pub fn verified_by_any_name(&self, keys: &[&PublicKey]) -> Result<Vec<usize>, NoteError> {
        self.verify_with(keys.len(), |i, _| keys.get(i).copied())
    }

    fn verify_with<'k>(
        &self,
        count: usize,
        key: impl Fn(usize, &str) -> Option<&'k PublicKey>,
    ) -> Result<Vec<usize>, NoteError> {
        let body = self.body().as_bytes();
        let mut signers = BTreeSet::new();
        for sig in &self.signatures {
            let mut matched = false;
            let mut verified = false;
            for i in 0..count {
                let Some(k) = key(i, &sig.name) else {
                    continue;
                };
                let Ok(id) = ed25519_key_id(&sig.name, k) else {
                    continue;
                };
                if id != sig.key_id {
                    continue;
                }
                matched = true;
                if k.verify(body, &sig.signature).is_ok() {
                    verified = true;
                    signers.insert(i);
                }
            }
            if matched && !verified {
                return Err(NoteError::InvalidSignature {
                    line: sig.line,
                    name: sig.name.clone(),
                    key_id: hex::encode(sig.key_id),
                });
            }
        }
        if signers.is_empty() {
            return Err(NoteError::NoTrustedSignature);
        }
        Ok(signers.into_iter().collect())
    }
}

fn parse_signature_line(text: &str, line: usize) -> Result<NoteSignature, NoteError> {
    let malformed = |reason: &str| NoteError::MalformedSignature {
        line,
        reason: reason.to_owned(),
    };
    let rest = text
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| malformed("it does not start with an em dash (U+2014) and a space"))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or_else(|| malformed("no space between the key name and the signature"))?;
    check_name(name).map_err(|e| NoteError::MalformedSignature {
        line,
        reason: e.to_string(),
    })?;
    // The STANDARD engine requires padding and zero trailing bits: one encoding per signature.
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| {
            malformed(&format!(
                "the signature is not standard padded base64 ({e})"
            ))
        })?;
    let (Some(id), Some(signature)) = (blob.get(..4), blob.get(4..)) else {
        return Err(malformed("the signature is shorter than its 4-byte key ID"));
    };
    if signature.is_empty() {
        return Err(malformed(
            "the signature has a key ID and no signature bytes",
        ));
    }
    let mut key_id = [0u8; 4];
    key_id.copy_from_slice(id);
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id,
        signature: signature.to_vec(),
        line,
    })
}

/// A transparency log checkpoint body (tlog-checkpoint): origin, tree size, root hash, extension
/// lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, non-empty.
    pub origin: String,
    /// The number of leaves in the tree.
    pub size: u64,
    /// The RFC 9162 root of the tree of `size` leaves.
    pub root: Digest,
    /// Extension lines, each non-empty, without their newline.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint with Clyra's two extension lines, in order: `time <timestamp>` (RFC 3339 UTC
    /// with `Z`) and `head <digest>` (the chain head: the digest of the last entry's canonical
    /// bytes, 64 zeros for an empty journal).
    pub fn clyra(
        origin: impl Into<String>,
        size: u64,
        root: Digest,
        time: Timestamp,
        head: Digest,
    ) -> Checkpoint {
        Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: vec![
                format!("{TIME_EXTENSION}{time}"),
                format!("{HEAD_EXTENSION}{head}"),
            ],
        }
    }

    /// The note body: one line each for origin, size, base64 root and every extension.
    pub fn to_body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            body.push_str(e);
            body.push('\n');
        }
        body
    }

    /// Parses a checkpoint body strictly: at least three lines, each ending with `\n`; a non-empty
    /// origin; a decimal size without leading zeros (except `0`) that fits 64 bits; the root as
    /// standard padded base64 of exactly 32 bytes; non-empty extension lines; no control
    /// characters other than newline.
    pub fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
        let bad = |line: usize, reason: String| NoteError::Checkpoint { line, reason };
        if let Some((line, code)) = first_control(body) {
            return Err(bad(
                line,
                format!("control character U+{code:04X}; a checkpoint holds none but newline"),
            ));
        }
        let Some(text) = body.strip_suffix('\n') else {
            return Err(bad(
                body.matches('\n').count() + 1,
                "the body does not end with a newline".to_owned(),
            ));
        };
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() < 3 {
            return Err(bad(
                lines.len(),
                "a checkpoint has at least three lines: origin, size and root".to_owned(),
            ));
        }
        let origin = lines.first().copied().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad(1, "the origin is empty".to_owned()));
        }
        let size_text = lines.get(1).copied().unwrap_or_default();
        let size = parse_decimal(size_text).ok_or_else(|| {
            bad(
                2,
                format!(
                    "the size `{}` is not a decimal number without leading zeros that fits 64 bits",
                    size_text.escape_debug()
                ),
            )
        })?;
        let root_text = lines.get(2).copied().unwrap_or_default();
        let root = Digest::from_base64(root_text).map_err(|_| {
            bad(
                3,
                format!(
                    "the root `{}` is not standard padded base64 of 32 bytes",
                    root_text.escape_debug()
                ),
            )
        })?;
        let mut extensions = Vec::new();
        for (i, e) in lines.iter().enumerate().skip(3) {
            if e.is_empty() {
                return Err(bad(i + 1, "an extension line is empty".to_owned()));
            }
            extensions.push((*e).to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The value of the one extension line starting with `prefix`, if there is one; an error if
    /// there are several.
    fn extension(&self, prefix: &str) -> Result<Option<(usize, &str)>, NoteError> {
        let mut found = None;
        for (i, e) in self.extensions.iter().enumerate() {
            if let Some(v) = e.strip_prefix(prefix) {
                if found.is_some() {
                    return Err(NoteError::Checkpoint {
                        line: i + 4,
                        reason: format!("a second `{}` extension line", prefix.trim_end()),
                    });
                }
                found = Some((i + 4, v));
            }
        }
        Ok(found)
    }

    /// The `time` extension, when present: an RFC 3339 UTC timestamp with `Z`.
    pub fn time(&self) -> Result<Option<Timestamp>, NoteError> {
        match self.extension(TIME_EXTENSION)? {
            None => Ok(None),
            Some((line, v)) => crate::bundle::parse_utc_timestamp(v)
                .map(Some)
                .map_err(|reason| NoteError::Checkpoint { line, reason }),
        }
    }

    /// The `head` extension, when present: 64 lowercase hex characters.
    pub fn head(&self) -> Result<Option<Digest>, NoteError> {
        match self.extension(HEAD_EXTENSION)? {
            None => Ok(None),
            Some((line, v)) => Digest::from_hex(v)
                .map(Some)
                .map_err(|e| NoteError::Checkpoint {
                    line,
                    reason: format!("head `{}`: {e}", v.escape_debug()),
                }),
        }
    }

    /// Whether the extensions are exactly Clyra's: `time` then `head`, both well formed.
    pub fn clyra_extensions(&self) -> Result<(Timestamp, Digest), NoteError> {
        let shape = self.extensions.len() == 2
            && self
                .extensions
                .first()
                .is_some_and(|e| e.starts_with(TIME_EXTENSION))
            && self
                .extensions
                .get(1)
                .is_some_and(|e| e.starts_with(HEAD_EXTENSION));
        if !shape {
            return Err(NoteError::Checkpoint {
                line: 4,
                reason:
                    "a Clyra checkpoint has exactly two extension lines, `time …` then `head …`"
                        .to_owned(),
            });
        }
        match (self.time()?, self.head()?) {
            (Some(t), Some(h)) => Ok((t, h)),
            _ => Err(NoteError::Checkpoint {
                line: 4,
                reason: "missing `time` or `head` extension".to_owned(),
            }),
        }
    }
}

/// A decimal `u64` without sign, spaces or leading zeros (`0` itself allowed).
fn parse_decimal(s: &str) -> Option<u64> {
    let digits_only = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_strict() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("20852163"), Some(20_852_163));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "18446744073709551616",
            "１",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("example.com/log").is_ok());
        for bad in ["", "a b", "a+b", "a\u{a0}b", "a\tb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
