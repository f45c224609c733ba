//! The interface threat detectors plug into.
//!
//! A [`Detector`] looks at one request ([`DetectorInput`]) and returns [`Indicator`]s: what it
//! saw, how bad ([`Severity`]), how sure ([`Confidence`]), where (a JSON pointer), and optionally
//! the OWASP Top 10 for LLM Applications (2025) and MITRE ATLAS ids it corresponds to, which end
//! up in the receipt. Detectors only report; what to do about an indicator (record, alert, block)
//! is policy's decision, made by the caller.
//!
//! [`Detectors`] is the registry the gateway runs for every request; it runs each detector in
//! registration order and concatenates their indicators.
//!
//! One built-in detector ships here, [`ArgumentShapeDetector`]: it flags tool-call argument
//! strings longer than a configured length and strings (or keys) holding a NUL character.

use serde::{Deserialize, Serialize};

/// What a detector sees of one request.
#[derive(Debug, Clone, Copy)]
pub struct DetectorInput<'a> {
    /// The verified tenant.
    pub tenant: &'a str,
    /// The actor (agent, service account, user) making the request.
    pub actor: &'a str,
    /// The route name used by policy.
    pub route: &'a str,
    /// The tool name, for agent tool calls.
    pub tool: Option<&'a str>,
    /// The canonical body bytes.
    pub body: &'a [u8],
    /// The parsed JSON body, when the body is JSON.
    pub json: Option<&'a serde_json::Value>,
    /// The run id (for example an agent run), when known.
    pub run_id: Option<&'a str>,
    /// The session id, when known.
    pub session_id: Option<&'a str>,
}

/// How bad an indicator is, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording.
    Info,
    /// Unlikely to matter alone.
    Low,
    /// Worth a look.
    Medium,
    /// Likely an attack or a serious fault.
    High,
    /// Act now.
    Critical,
}

/// A confidence between 0 and 1 inclusive (never NaN).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Confidence(f64);

/// A confidence outside `0..=1` or NaN.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("confidence `{0}` is not between 0 and 1")]
pub struct InvalidConfidence(pub f64);

impl Confidence {
    /// Certain.
    pub const CERTAIN: Confidence = Confidence(1.0);

    /// The value, in `0..=1`.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Confidence {
    type Error = InvalidConfidence;

    fn try_from(v: f64) -> Result<Self, Self::Error> {
        if (0.0..=1.0).contains(&v) {
            Ok(Confidence(v))
        } else {
            Err(InvalidConfidence(v))
        }
    }
}

impl From<Confidence> for f64 {
    fn from(c: Confidence) -> f64 {
        c.0
    }
}

/// One thing a detector saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    /// Id of the detector that raised it ([`Detector::id`]).
    pub detector: String,
    /// Stable kind within the detector, such as `oversized_argument`.
    pub kind: String,
    /// How bad.
    pub severity: Severity,
    /// How sure.
    pub confidence: Confidence,
    /// RFC 6901 JSON pointer into the body, when the indicator is about one value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Human-readable explanation (must not echo secrets or large payload excerpts).
    pub message: String,
    /// OWASP Top 10 for LLM Applications ids, such as `LLM10:2025`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owasp_llm: Vec<String>,
    /// MITRE ATLAS technique ids, such as `AML.T0029`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitre_atlas: Vec<String>,
}

/// A threat detector. Implementations must not panic on any input and should be cheap: they run
/// on every request.
pub trait Detector: Send + Sync {
    /// Stable id, unique within a [`Detectors`] registry (for example `argument_shape`).
    fn id(&self) -> &str;

    /// Inspects one request.
    fn detect(&self, input: &DetectorInput<'_>) -> Vec<Indicator>;
}

/// A detector id registered twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("detector `{0}` is already registered")]
pub struct DuplicateDetector(pub String);

/// The detectors the gateway runs on each request.
#[derive(Default)]
pub struct Detectors {
    list: Vec<Box<dyn Detector>>,
}

impl std::fmt::Debug for Detectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|d| d.id()))
            .finish()
    }
}

impl Detectors {
    /// An empty registry.
    pub fn new() -> Self {
        Detectors::default()
    }

    /// Adds a detector; its id must be new.
    pub fn register(&mut self, detector: Box<dyn Detector>) -> Result<(), DuplicateDetector> {
        if self.list.iter().any(|d| d.id() == detector.id()) {
            return Err(DuplicateDetector(detector.id().to_owned()));
        }
        self.list.push(detector);
        Ok(())
    }

    /// Ids of the registered detectors, in order.
    pub fn ids(&self) -> Vec<&str> {
        self.list.iter().map(|d| d.id()).collect()
    }

    /// Runs every detector in registration order and concatenates their indicators.
    pub fn run(&self, input: &DetectorInput<'_>) -> Vec<Indicator> {
        self.list.iter().flat_map(|d| d.detect(input)).collect()
    }

    /// The highest severity among `indicators`, if any.
    pub fn max_severity(indicators: &[Indicator]) -> Option<Severity> {
        indicators.iter().map(|i| i.severity).max()
    }
}

/// Flags tool-call arguments with an abnormal shape: string values longer than
/// `max_string_chars` (`oversized_argument`, medium, OWASP `LLM10:2025` Unbounded Consumption,
/// ATLAS `AML.T0029` Denial of ML Service) and strings or object keys containing a NUL character
/// (`nul_character`, high, OWASP `LLM05:2025` Improper Output Handling: NUL truncates strings in
/// C-based tools and hides what follows from reviewers). A body that is not JSON is checked for
/// NUL bytes only. At most `max_indicators` indicators are returned per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgumentShapeDetector {
    /// Longest string value allowed, in characters.
    pub max_string_chars: usize,
    /// Cap on indicators per request.
    #[serde(default = "default_max_indicators")]
    pub max_indicators: usize,
}

fn default_max_indicators() -> usize {
    32
}

impl ArgumentShapeDetector {
    /// The detector's id.
    pub const ID: &'static str = "argument_shape";

    /// A detector flagging strings longer than `max_string_chars`.
    pub fn new(max_string_chars: usize) -> Self {
        ArgumentShapeDetector {
            max_string_chars,
            max_indicators: default_max_indicators(),
        }
    }

    fn oversized(&self, pointer: String, chars: usize) -> Indicator {
        Indicator {
            detector: Self::ID.to_owned(),
            kind: "oversized_argument".to_owned(),
            severity: Severity::Medium,
            confidence: Confidence::CERTAIN,
            pointer: Some(pointer),
            message: format!(
                "string argument of {chars} characters exceeds the {} allowed",
                self.max_string_chars
            ),
            owasp_llm: vec!["LLM10:2025".to_owned()],
            mitre_atlas: vec!["AML.T0029".to_owned()],
        }
    }

    fn nul(pointer: Option<String>, what: &str) -> Indicator {
        Indicator {
            detector: Self::ID.to_owned(),
            kind: "nul_character".to_owned(),
            severity: Severity::High,
            confidence: Confidence::CERTAIN,
            pointer,
            message: format!("{what} contains a NUL character"),
            owasp_llm: vec!["LLM05:2025".to_owned()],
            mitre_atlas: Vec::new(),
        }
    }
}

/// Escapes one reference token for an RFC 6901 pointer.
fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Detector for ArgumentShapeDetector {
    fn id(&self) -> &str {
        Self::ID
    }

    fn detect(&self, input: &DetectorInput<'_>) -> Vec<Indicator> {
        let mut out = Vec::new();
        let Some(json) = input.json else {
            if input.body.contains(&0) {
                out.push(Self::nul(None, "the request body"));
            }
            return out;
        };
        // Iterative walk: no recursion, so nesting depth cannot exhaust the stack.
        let mut stack: Vec<(String, &serde_json::Value)> = vec![(String::new(), json)];
        while let Some((pointer, value)) = stack.pop() {
            if out.len() >= self.max_indicators {
                break;
            }
            match value {
                serde_json::Value::String(s) => {
                    let chars = s.chars().count();
                    if chars > self.max_string_chars {
                        out.push(self.oversized(pointer.clone(), chars));
                    }
                    if s.contains('\0') {
                        out.push(Self::nul(Some(pointer), "a string argument"));
                    }
                }
                serde_json::Value::Array(items) => {
                    for (i, item) in items.iter().enumerate().rev() {
                        stack.push((format!("{pointer}/{i}"), item));
                    }
                }
                serde_json::Value::Object(map) => {
                    let mut children = Vec::with_capacity(map.len());
                    for (key, item) in map {
                        let child = format!("{pointer}/{}", escape_token(key));
                        if key.contains('\0') {
                            out.push(Self::nul(Some(child.clone()), "an object key"));
                        }
                        children.push((child, item));
                    }
                    stack.extend(children.into_iter().rev());
                }
                _ => {}
            }
        }
        out.truncate(self.max_indicators);
        out
    }
}
