//! The action a decision is made about (spec/policy/README.md §3): a typed view over its JSON.
//!
//! [`Action::from_value`] checks the members the engine reads (types, ranges, RFC 3339 time) and
//! names the JSON pointer of the first bad one. Members it does not know are kept: conditions
//! see the whole object through `action`. A member set to `null` is treated as absent.

use std::collections::BTreeMap;

use clyra_evidence::digest::Digest;
use clyra_evidence::jcs;
use serde_json::{Map, Value};

/// The deepest nesting an action may have (the top-level object is depth 1).
pub const MAX_ACTION_DEPTH: usize = 64;

/// Why a JSON value is not an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at `{pointer}`")]
pub struct ActionError {
    /// RFC 6901 pointer of the offending value (`""` for the whole action).
    pub pointer: String,
    /// What is wrong, lowercase.
    pub message: String,
}

impl ActionError {
    fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        ActionError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// The warehouse statement kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statement {
    /// `select`
    Select,
    /// `insert`
    Insert,
    /// `update`
    Update,
    /// `delete`
    Delete,
    /// `merge`
    Merge,
    /// `ddl`
    Ddl,
}

impl Statement {
    /// The name used in actions.
    pub fn as_str(self) -> &'static str {
        match self {
            Statement::Select => "select",
            Statement::Insert => "insert",
            Statement::Update => "update",
            Statement::Delete => "delete",
            Statement::Merge => "merge",
            Statement::Ddl => "ddl",
        }
    }

    fn parse(s: &str) -> Option<Statement> {
        Some(match s {
            "select" => Statement::Select,
            "insert" => Statement::Insert,
            "update" => Statement::Update,
            "delete" => Statement::Delete,
            "merge" => Statement::Merge,
            "ddl" => Statement::Ddl,
            _ => return None,
        })
    }
}

/// `action.warehouse`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Warehouse {
    /// Schema written to or read from.
    pub schema: Option<String>,
    /// Table.
    pub table: Option<String>,
    /// What the statement does.
    pub statement: Option<Statement>,
    /// Rows the statement affects (or is estimated to).
    pub rows_affected: Option<u64>,
    /// Rows in the table.
    pub table_rows: Option<u64>,
}

/// `action.activation`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivationInfo {
    /// Where the records go, e.g. `salesforce.contacts`.
    pub destination: Option<String>,
    /// How many records.
    pub records: Option<u64>,
}

/// One detector's result in `action.detections`.
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    /// A score in 0..=1.
    Score(f64),
    /// The detector failed or timed out.
    Error(String),
}

/// An action, checked. Construct with [`Action::from_value`].
#[derive(Debug, Clone)]
pub struct Action {
    raw: Value,
    sha256: String,
    kind: String,
    tenant: String,
    actor: Option<String>,
    route: Option<String>,
    tool: Option<String>,
    time: Option<jiff::Timestamp>,
    warehouse: Option<Warehouse>,
    activation: Option<ActivationInfo>,
    detections: BTreeMap<String, Detection>,
}

impl Action {
    /// Checks `value` and wraps it. Errors name the JSON pointer of the first bad member.
    pub fn from_value(value: Value) -> Result<Action, ActionError> {
        let obj = value
            .as_object()
            .ok_or_else(|| ActionError::new("", "an action is a JSON object"))?;
        check_depth(&value, 1, &mut String::new())?;
        let kind = required_string(obj, "kind")?;
        let tenant = required_string(obj, "tenant")?;
        let actor = optional_string(obj, "actor")?;
        let route = optional_string(obj, "route")?;
        let tool = optional_string(obj, "tool")?;
        let time = match optional_string(obj, "time")? {
            None => None,
            Some(t) => Some(t.parse::<jiff::Timestamp>().map_err(|e| {
                ActionError::new("/time", format!("`{t}` is not an RFC 3339 time: {e}"))
            })?),
        };
        let warehouse = match member(obj, "warehouse") {
            None => None,
            Some(v) => Some(parse_warehouse(v)?),
        };
        let activation = match member(obj, "activation") {
            None => None,
            Some(v) => Some(parse_activation(v)?),
        };
        let detections = match member(obj, "detections") {
            None => BTreeMap::new(),
            Some(v) => parse_detections(v)?,
        };
        if let Some(labels) = member(obj, "labels") {
            let labels = labels
                .as_object()
                .ok_or_else(|| ActionError::new("/labels", "expected an object of strings"))?;
            for (k, v) in labels {
                if !v.is_string() {
                    return Err(ActionError::new(
                        format!("/labels/{}", escape(k)),
                        "expected a string",
                    ));
                }
            }
        }
        let canonical = jcs::canonicalize_value(&value).map_err(|e| {
            let pointer = e.location().map(|l| l.pointer.clone()).unwrap_or_default();
            ActionError::new(pointer, format!("not representable as canonical JSON: {e}"))
        })?;
        let sha256 = Digest::sha256(&canonical).to_hex();
        Ok(Action {
            raw: value,
            sha256,
            kind,
            tenant,
            actor,
            route,
            tool,
            time,
            warehouse,
            activation,
            detections,
        })
    }

    /// The whole action as given.
    pub fn as_value(&self) -> &Value {
        &self.raw
    }

    /// Lowercase hex SHA-256 of the action's RFC 8785 canonical JSON.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// `tenant`.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// `actor`.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// `route`.
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }

    /// `tool`.
    pub fn tool(&self) -> Option<&str> {
        self.tool.as_deref()
    }

    /// `time`.
    pub fn time(&self) -> Option<jiff::Timestamp> {
        self.time
    }

    /// `payload` (absent or `null` gives `None`).
    pub fn payload(&self) -> Option<&Value> {
        self.raw.get("payload").filter(|v| !v.is_null())
    }

    /// `warehouse`.
    pub fn warehouse(&self) -> Option<&Warehouse> {
        self.warehouse.as_ref()
    }

    /// `activation`.
    pub fn activation(&self) -> Option<&ActivationInfo> {
        self.activation.as_ref()
    }

    /// `detections`.
    pub fn detections(&self) -> &BTreeMap<String, Detection> {
        &self.detections
    }

    /// One of the members a `match` can name.
    pub(crate) fn field(&self, field: MatchField) -> Option<&str> {
        match field {
            MatchField::Kind => Some(&self.kind),
            MatchField::Tenant => Some(&self.tenant),
            MatchField::Actor => self.actor.as_deref(),
            MatchField::Route => self.route.as_deref(),
            MatchField::Tool => self.tool.as_deref(),
        }
    }
}

impl TryFrom<Value> for Action {
    type Error = ActionError;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Action::from_value(value)
    }
}

/// The action members a rule's `match` can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchField {
    /// `kind`
    Kind,
    /// `tenant`
    Tenant,
    /// `actor`
    Actor,
    /// `route`
    Route,
    /// `tool`
    Tool,
}

impl MatchField {
    /// The member's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchField::Kind => "kind",
            MatchField::Tenant => "tenant",
            MatchField::Actor => "actor",
            MatchField::Route => "route",
            MatchField::Tool => "tool",
        }
    }
}

/// SHA-256 (hex) of the RFC 8785 canonical JSON of a payload: what an approval binds to
/// (spec/policy/README.md §8). The decision's approval obligation and the approvals service both
/// compute it here, so they cannot disagree.
pub fn payload_sha256(payload: &Value) -> Result<String, jcs::JcsError> {
    jcs::canonicalize_value(payload).map(|bytes| Digest::sha256(&bytes).to_hex())
}

fn escape(key: &str) -> String {
    jcs::pointer_token(key)
}

fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required_string(obj: &Map<String, Value>, name: &str) -> Result<String, ActionError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(ActionError::new(
            format!("/{name}"),
            format!("`{name}` is required (a string)"),
        )),
        Some(Value::String(s)) if s.is_empty() => Err(ActionError::new(
            format!("/{name}"),
            format!("`{name}` must not be empty"),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(ActionError::new(
            format!("/{name}"),
            format!("expected a string, found {}", type_name(v)),
        )),
    }
}

fn optional_string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ActionError> {
    string_at(member(obj, name), &format!("/{name}"))
}

fn string_at(v: Option<&Value>, pointer: &str) -> Result<Option<String>, ActionError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(ActionError::new(
            pointer,
            format!("expected a string, found {}", type_name(v)),
        )),
    }
}

fn count_at(v: Option<&Value>, pointer: &str) -> Result<Option<u64>, ActionError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                return Ok(Some(u));
            }
            // `5000.0` is an integer too (JCS makes no difference).
            match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_991.0 => {
                    Ok(Some(f as u64))
                }
                _ => Err(ActionError::new(
                    pointer,
                    format!("expected a non-negative integer, found {n}"),
                )),
            }
        }
        Some(v) => Err(ActionError::new(
            pointer,
            format!("expected a non-negative integer, found {}", type_name(v)),
        )),
    }
}

fn parse_warehouse(v: &Value) -> Result<Warehouse, ActionError> {
    let obj = v.as_object().ok_or_else(|| {
        ActionError::new(
            "/warehouse",
            format!("expected an object, found {}", type_name(v)),
        )
    })?;
    let statement = match string_at(member(obj, "statement"), "/warehouse/statement")? {
        None => None,
        Some(s) => Some(Statement::parse(&s).ok_or_else(|| {
            ActionError::new(
                "/warehouse/statement",
                format!(
                    "unknown statement `{s}`; expected select, insert, update, delete, merge or ddl"
                ),
            )
        })?),
    };
    Ok(Warehouse {
        schema: string_at(member(obj, "schema"), "/warehouse/schema")?,
        table: string_at(member(obj, "table"), "/warehouse/table")?,
        statement,
        rows_affected: count_at(member(obj, "rows_affected"), "/warehouse/rows_affected")?,
        table_rows: count_at(member(obj, "table_rows"), "/warehouse/table_rows")?,
    })
}

fn parse_activation(v: &Value) -> Result<ActivationInfo, ActionError> {
    let obj = v.as_object().ok_or_else(|| {
        ActionError::new(
            "/activation",
            format!("expected an object, found {}", type_name(v)),
        )
    })?;
    Ok(ActivationInfo {
        destination: string_at(member(obj, "destination"), "/activation/destination")?,
        records: count_at(member(obj, "records"), "/activation/records")?,
    })
}

fn parse_detections(v: &Value) -> Result<BTreeMap<String, Detection>, ActionError> {
    let obj = v.as_object().ok_or_else(|| {
        ActionError::new(
            "/detections",
            format!("expected an object, found {}", type_name(v)),
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, d) in obj {
        let pointer = format!("/detections/{}", escape(name));
        let d = d.as_object().ok_or_else(|| {
            ActionError::new(
                &pointer,
                "expected {\"score\": 0..1} or {\"error\": \"...\"}",
            )
        })?;
        let detection = match (member(d, "score"), member(d, "error")) {
            (_, Some(Value::String(e))) => Detection::Error(e.clone()),
            (_, Some(other)) => {
                return Err(ActionError::new(
                    format!("{pointer}/error"),
                    format!("expected a string, found {}", type_name(other)),
                ))
            }
            (Some(Value::Number(n)), None) => match n.as_f64() {
                Some(s) if (0.0..=1.0).contains(&s) => Detection::Score(s),
                _ => {
                    return Err(ActionError::new(
                        format!("{pointer}/score"),
                        format!("a score is between 0 and 1, found {n}"),
                    ))
                }
            },
            (Some(other), None) => {
                return Err(ActionError::new(
                    format!("{pointer}/score"),
                    format!("expected a number, found {}", type_name(other)),
                ))
            }
            (None, None) => {
                return Err(ActionError::new(
                    &pointer,
                    "expected {\"score\": 0..1} or {\"error\": \"...\"}",
                ))
            }
        };
        out.insert(name.clone(), detection);
    }
    Ok(out)
}

fn check_depth(v: &Value, depth: usize, pointer: &mut String) -> Result<(), ActionError> {
    if depth > MAX_ACTION_DEPTH {
        return Err(ActionError::new(
            pointer.clone(),
            format!("nesting deeper than {MAX_ACTION_DEPTH}"),
        ));
    }
    let len = pointer.len();
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&i.to_string());
                check_depth(item, depth + 1, pointer)?;
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                pointer.push('/');
                pointer.push_str(&escape(k));
                check_depth(item, depth + 1, pointer)?;
                pointer.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> ActionError {
        Action::from_value(v).unwrap_err()
    }

    #[test]
    fn minimal_action() {
        let a = Action::from_value(json!({"kind": "tool.call", "tenant": "acme"})).unwrap();
        assert_eq!(a.kind(), "tool.call");
        assert_eq!(a.tenant(), "acme");
        assert_eq!(a.actor(), None);
        assert_eq!(a.sha256().len(), 64);
        assert!(a.payload().is_none());
    }

    #[test]
    fn required_members_name_their_pointer() {
        assert_eq!(err(json!({"tenant": "acme"})).pointer, "/kind");
        assert_eq!(err(json!({"kind": "x"})).pointer, "/tenant");
        assert_eq!(err(json!({"kind": 3, "tenant": "a"})).pointer, "/kind");
        assert_eq!(err(json!({"kind": "", "tenant": "a"})).pointer, "/kind");
        assert_eq!(err(json!([1])).pointer, "");
    }

    #[test]
    fn typed_members_are_checked() {
        let base = |k: &str, v: Value| {
            let mut a = json!({"kind": "warehouse.dml", "tenant": "acme"});
            a[k] = v;
            a
        };
        assert_eq!(err(base("actor", json!(1))).pointer, "/actor");
        assert_eq!(err(base("time", json!("yesterday"))).pointer, "/time");
        assert_eq!(
            err(base("warehouse", json!({"statement": "truncate"}))).pointer,
            "/warehouse/statement"
        );
        assert_eq!(
            err(base("warehouse", json!({"rows_affected": -1}))).pointer,
            "/warehouse/rows_affected"
        );
        assert_eq!(
            err(base("warehouse", json!({"rows_affected": 1.5}))).pointer,
            "/warehouse/rows_affected"
        );
        assert_eq!(
            err(base("activation", json!({"records": "many"}))).pointer,
            "/activation/records"
        );
        assert_eq!(
            err(base("detections", json!({"pii": {"score": 1.5}}))).pointer,
            "/detections/pii/score"
        );
        assert_eq!(
            err(base("detections", json!({"a/b": {}}))).pointer,
            "/detections/a~1b"
        );
        assert_eq!(
            err(base("labels", json!({"team": 1}))).pointer,
            "/labels/team"
        );
        let ok = Action::from_value(base(
            "warehouse",
            json!({"schema": "fin", "statement": "update", "rows_affected": 5000.0, "table_rows": 10}),
        ))
        .unwrap();
        assert_eq!(ok.warehouse().unwrap().rows_affected, Some(5000));
        assert_eq!(ok.warehouse().unwrap().statement, Some(Statement::Update));
    }

    #[test]
    fn null_members_are_absent_and_unknown_members_kept() {
        let a = Action::from_value(
            json!({"kind": "k", "tenant": "t", "actor": null, "extra": {"x": 1}, "time": "2026-03-01T09:30:00+01:00"}),
        )
        .unwrap();
        assert_eq!(a.actor(), None);
        assert_eq!(a.as_value()["extra"]["x"], 1);
        assert_eq!(a.time().unwrap().to_string(), "2026-03-01T08:30:00Z");
    }

    #[test]
    fn depth_and_numbers_are_bounded() {
        let mut deep = json!(1);
        for _ in 0..70 {
            deep = json!([deep]);
        }
        let e = err(json!({"kind": "k", "tenant": "t", "payload": deep}));
        assert!(e.pointer.starts_with("/payload/0/0"), "{e}");
        let e = err(json!({"kind": "k", "tenant": "t", "payload": {"n": u64::MAX}}));
        assert_eq!(e.pointer, "/payload/n");
    }

    #[test]
    fn digest_is_of_the_canonical_form() {
        let a = Action::from_value(json!({"tenant": "t", "kind": "k"})).unwrap();
        let b = Action::from_value(json!({"kind": "k", "tenant": "t"})).unwrap();
        assert_eq!(a.sha256(), b.sha256());
        assert_eq!(
            a.sha256(),
            Digest::sha256(br#"{"kind":"k","tenant":"t"}"#).to_hex()
        );
    }
}
