//! What loading and linting a policy report: located diagnostics with stable codes.
//!
//! Every [`Diagnostic`] names the file, the 1-based line and column, the JSON pointer of the value
//! (RFC 6901; `""` is the whole document), a message, and where one is obvious a suggestion. Its
//! [`Code`] is stable: scripts and CI may match on it.

use std::fmt;

use serde::Serialize;

/// How bad a finding is. Errors make a policy unloadable; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The policy is refused.
    Error,
    /// The policy loads, but something in it is probably not what its authors meant.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $text:literal,)*) => {
        /// A stable diagnostic code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// Every code.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as printed, e.g. `P_SCHEMA`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    /// The file cannot be read.
    Io = "P_IO",
    /// The file is larger than [`crate::load::MAX_POLICY_BYTES`].
    TooLarge = "P_TOO_LARGE",
    /// The file is not UTF-8.
    Encoding = "P_ENCODING",
    /// YAML (or JSON) syntax error, or an empty file.
    Yaml = "P_YAML",
    /// A mapping names the same key twice.
    DuplicateKey = "P_DUPLICATE_KEY",
    /// An anchor (`&a`) or alias (`*a`).
    Anchor = "P_ANCHOR",
    /// A tag other than the YAML core schema's, or a core tag that does not fit its value.
    Tag = "P_TAG",
    /// A non-finite number, or an integer beyond ±(2^53−1).
    Number = "P_NUMBER",
    /// Nesting deeper than [`crate::load::MAX_DEPTH`].
    Depth = "P_DEPTH",
    /// More than one YAML document in the file.
    MultiDocument = "P_MULTI_DOCUMENT",
    /// A mapping key that is not a scalar.
    ComplexKey = "P_COMPLEX_KEY",
    /// A `version` this loader does not know.
    Version = "P_VERSION",
    /// A version 3 field, renamed in version 4 (warning).
    V3Renamed = "P_V3_RENAMED",
    /// A version 3 field given together with its version 4 name.
    V3Conflict = "P_V3_CONFLICT",
    /// The document does not follow the policy schema.
    Schema = "P_SCHEMA",
    /// A duration that is malformed or too long to add to a date.
    BadDuration = "P_BAD_DURATION",
    /// A glob that does not compile.
    BadGlob = "P_BAD_GLOB",
    /// A detector name Clyra does not know.
    UnknownDetector = "P_UNKNOWN_DETECTOR",
    /// Two rules with the same id.
    DuplicateRuleId = "P_DUPLICATE_RULE_ID",
    /// Two checkpoints, rate limits, kill-switch triggers or retention classes with the same id.
    DuplicateId = "P_DUPLICATE_ID",
    /// Two rules with the same match and condition but different verdicts.
    ConflictingRules = "P_CONFLICTING_RULES",
    /// A rule that can never change a decision (warning).
    UnreachableRule = "P_UNREACHABLE_RULE",
    /// A `when` condition that is not valid CEL.
    CelCompile = "P_CEL_COMPILE",
    /// A `when` condition naming a variable the decision context does not have.
    CelVariable = "P_CEL_VARIABLE",
    /// A threshold that can never (or always) trigger.
    ThresholdRange = "P_THRESHOLD_RANGE",
    /// A checkpoint id not in `approvals.checkpoints`.
    UnknownCheckpoint = "P_UNKNOWN_CHECKPOINT",
    /// Something that requests approval without naming a checkpoint.
    MissingCheckpoint = "P_MISSING_CHECKPOINT",
    /// A checkpoint named where no approval is ever requested (warning).
    CheckpointIgnored = "P_CHECKPOINT_IGNORED",
    /// A `patch` on a rule whose verdict is not `repair`.
    PatchWithoutRepair = "P_PATCH_WITHOUT_REPAIR",
    /// A `repair` rule without a `patch`.
    RepairWithoutPatch = "P_REPAIR_WITHOUT_PATCH",
    /// A patch operation that cannot apply (bad pointer, missing `value` or `from`).
    BadPatch = "P_BAD_PATCH",
    /// A two-person checkpoint that fewer than two people can approve.
    TwoPerson = "P_TWO_PERSON",
    /// A webhook over plain HTTP to a host other than this machine (warning).
    InsecureWebhook = "P_INSECURE_WEBHOOK",
    /// A `schemas` entry whose `schema` is not a valid JSON Schema.
    BadSchema = "P_BAD_SCHEMA",
    /// A `schemas` entry that names neither a route nor a tool.
    SchemaTarget = "P_SCHEMA_TARGET",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A place in a file: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Location {
    /// The start of a file.
    pub const START: Location = Location { line: 1, column: 1 };
}

/// One finding about a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, e.g. `P_SCHEMA`.
    pub code: Code,
    /// The file, as named by the caller.
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// JSON pointer of the value concerned (`""`: the whole document).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when obvious.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl Diagnostic {
    /// An error at `at`.
    pub fn error(code: Code, file: &str, at: Location, pointer: &str, message: String) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            file: file.to_owned(),
            line: at.line,
            column: at.column,
            pointer: pointer.to_owned(),
            message,
            suggestion: None,
        }
    }

    /// A warning at `at`.
    pub fn warning(code: Code, file: &str, at: Location, pointer: &str, message: String) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, file, at, pointer, message)
        }
    }

    /// Adds a suggestion.
    pub fn with_suggestion(mut self, suggestion: impl Into<String>) -> Self {
        self.suggestion = Some(suggestion.into());
        self
    }

    /// Adds a suggestion when there is one.
    pub fn with_optional_suggestion(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion;
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Where it is.
    pub fn location(&self) -> Location {
        Location {
            line: self.line,
            column: self.column,
        }
    }
}

/// `file:line:col: error[CODE] pointer: message (help: suggestion)`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]",
            self.file,
            self.line,
            self.column,
            self.severity.as_str(),
            self.code
        )?;
        if !self.pointer.is_empty() {
            write!(f, " {}", self.pointer)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (help: {s})")?;
        }
        Ok(())
    }
}

/// Several diagnostics, in file order. The error type of loading: it holds at least one error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Wraps a list, sorting it into file order (line, column, then severity and code).
    pub fn new(mut list: Vec<Diagnostic>) -> Self {
        list.sort_by(|a, b| {
            (a.line, a.column, a.severity, a.code, &a.pointer, &a.message)
                .cmp(&(b.line, b.column, b.severity, b.code, &b.pointer, &b.message))
        });
        list.dedup();
        Diagnostics(list)
    }

    /// All of them.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.0
    }

    /// All of them, owned.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }

    /// Iterates in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    /// True when at least one is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One diagnostic per line.
impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The candidate closest to `word` by edit distance (insertions, deletions, substitutions and
/// swaps of neighbours), if it is close enough to be a likely typo: at most 2 edits, and fewer
/// than the word's length.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = 2.min(word.chars().count().saturating_sub(1));
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance, over characters. Long inputs are not compared (a typo
/// suggestion for a 200-character key is of no use): they get `usize::MAX`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 128 || b.len() > 128 {
        return usize::MAX;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (i, row) in d.chunks_mut(w).enumerate() {
        if let Some(first) = row.first_mut() {
            *first = i;
        }
    }
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// Quotes user text for a message: in backticks, cut to 64 characters.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::with_capacity(text.len().min(MAX * 4) + 2);
    out.push('`');
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("treshold", "threshold"), 1);
        assert_eq!(edit_distance("acton", "action"), 1);
        assert_eq!(edit_distance("verdcit", "verdict"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(
            closest("treshold", ["enabled", "threshold", "action"]),
            Some("threshold")
        );
        assert_eq!(closest("zzz", ["threshold"]), None);
        assert_eq!(closest("a", ["b"]), None);
    }

    #[test]
    fn display() {
        let d = Diagnostic::error(
            Code::Schema,
            "p.yaml",
            Location { line: 3, column: 5 },
            "/genai_security/detectors/pii/treshold",
            "unknown member `treshold`".into(),
        )
        .with_suggestion("did you mean `threshold`?");
        assert_eq!(
            d.to_string(),
            "p.yaml:3:5: error[P_SCHEMA] /genai_security/detectors/pii/treshold: unknown member \
`treshold` (help: did you mean `threshold`?)"
        );
        let codes: std::collections::HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes.len(), Code::ALL.len());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\nb"), "`a\\nb`");
        assert_eq!(quote(&"x".repeat(100)).chars().count(), 64 + 3);
    }
}
