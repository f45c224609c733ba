//! Clyra's evidence kernel.
//!
//! Everything Clyra produces is evidence, and every piece of evidence rests on the primitives in
//! this crate. It implements:
//!
//! - [`digest`]: SHA-256 digests and their text forms.
//! - [`jcs`]: RFC 8785 canonical JSON with a strict input profile.
//! - [`merkle`]: RFC 9162 Merkle Tree Hash, inclusion and consistency proofs.
//! - [`chain`]: hash chains of entries linked by `seq` and `prev`, and their streaming verifier.
//! - [`note`]: C2SP signed notes and transparency log checkpoints (Ed25519).
//! - [`keys`]: Ed25519, ECDSA P-256 and RSA-PSS keys, key ids and the [`keys::Signer`] trait.
//! - [`trust`]: the trust file (`trust.json`): which keys are trusted, and when.
//! - [`dsse`]: DSSE v1 envelopes: pre-authentication encoding, signing, threshold verification.
//! - [`intoto`]: in-toto Statement v1, signed and verified as canonical JSON in DSSE.
//! - [`zipstore`]: the canonical bundle container, a stored-only ZIP with one encoding per content.
//! - [`bundle`]: DEF and PEF evidence bundles: building, verifying and inspecting them
//!   (spec/common/bundle.md).
//! - [`codes`]: the stable verification codes every verifier finding carries.
//! - [`schema`]: the JSON Schemas in `spec/` (manifest, statement, journal entry, DEF and PEF
//!   predicates, trust file), embedded and validated offline.
//!
//! The kernel does no network I/O, no async and no database access, and builds without HTTP or
//! TLS. It never panics on untrusted input.

pub mod bundle;
pub mod chain;
pub mod codes;
pub mod digest;
pub mod dsse;
pub mod intoto;
pub mod jcs;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod schema;
pub mod trust;
pub mod zipstore;

#[doc(hidden)]
pub mod fuzz_hooks;

pub use digest::Digest;
