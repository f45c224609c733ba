//! Clyra's evidence kernel.
//!
//! Everything Clyra produces is evidence, and every piece of evidence rests on the primitives in
//! this crate. It implements:
//!
//! - [`digest`]: SHA-256 digests and their text forms.
//! - [`keys`]: Ed25519, ECDSA P-256 and RSA-PSS keys, key ids and the [`keys::Signer`] trait.
//! - [`trust`]: the trust file (`trust.json`): which keys are trusted, and when.
//! - [`dsse`]: DSSE v1 envelopes: pre-authentication encoding, signing, threshold verification.
//! - [`intoto`]: in-toto Statement v1, signed and verified as canonical JSON in DSSE.
//!
//! The kernel does no network I/O, no async and no database access, and builds without HTTP or
//! TLS. It never panics on untrusted input.

pub mod digest;
pub mod dsse;
pub mod intoto;
pub mod keys;
pub mod trust;

pub use digest::Digest;
