//! Helpers shared by the CLI integration tests that include them with `mod support;`.
pub mod evidence;
pub mod fs;
