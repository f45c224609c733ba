//! Approver patterns are globs with the policy's one matcher, `crate::glob` (spec §4). A pattern
//! that does not compile matches nobody (lint refuses such a policy before it loads).

/// Whether `text` matches `pattern`.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    crate::glob::Glob::new(pattern).is_ok_and(|g| g.matches(text))
}
