//! Entry points for the fuzz targets in `fuzz/`: each takes untrusted bytes, must never panic, and
//! asserts the invariants that hold whenever the input is accepted. Not a stable API.

use crate::jcs;

/// Canonicalizer: accepted input canonicalizes to bytes that are canonical, re-parse to the same
/// value and canonicalize to themselves.
pub fn jcs(data: &[u8]) {
    let Ok(value) = jcs::parse_strict(data) else {
        return;
    };
    let Ok(canonical) = jcs::canonicalize_value(&value) else {
        // The parser only produces values the writer accepts.
        #[allow(clippy::panic)]
        {
            panic!("parsed value does not canonicalize");
        }
    };
    let reparsed = jcs::parse_strict(&canonical);
    #[allow(clippy::panic)]
    if reparsed.as_ref() != Ok(&value) {
        panic!("canonical bytes do not re-parse to the same value");
    }
    #[allow(clippy::panic)]
    if jcs::canonicalize(&canonical).as_deref() != Ok(&canonical[..]) {
        panic!("canonicalization is not idempotent");
    }
}
