//! Clyra's evidence kernel.
//!
//! Everything Clyra produces is evidence, and every piece of evidence rests on the primitives in
//! this crate. It implements:
//!
//! - [`digest`]: SHA-256 digests and their text forms.
//! - [`jcs`]: RFC 8785 canonical JSON with a strict input profile.
//! - [`merkle`]: RFC 9162 Merkle Tree Hash, inclusion and consistency proofs.
//! - [`chain`]: hash chains of entries linked by `seq` and `prev`, and their streaming verifier.
//!
//! The kernel does no network I/O, no async and no database access, and builds without HTTP or
//! TLS. It never panics on untrusted input.

pub mod chain;
pub mod digest;
pub mod jcs;
pub mod merkle;

#[doc(hidden)]
pub mod fuzz_hooks;

pub use digest::Digest;
