//! Clyra's evidence kernel.
//!
//! Everything Clyra produces is evidence, and every piece of evidence rests on the primitives in
//! this crate. It implements:
//!
//! - [`digest`]: SHA-256 digests and their text forms.
//! - [`merkle`]: RFC 9162 Merkle Tree Hash, inclusion and consistency proofs.
//! - [`chain`]: hash chains of entries linked by `seq` and `prev`, and their streaming verifier.
//!
//! The kernel does no network I/O, no async and no database access, and builds without HTTP or
//! TLS. It never panics on untrusted input.

pub mod chain;
pub mod digest;
pub mod merkle;

pub use digest::Digest;
