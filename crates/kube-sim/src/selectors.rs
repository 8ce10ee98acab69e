//! Label and field selectors, parsed and matched as kube-apiserver does.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceInfo;

#[derive(Clone, Debug, PartialEq)]
enum LabelOp {
    Exists,
    NotExists,
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<(String, LabelOp)>,
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(
                parse_requirement(part)
                    .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?,
            );
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|(key, op)| {
            let v = labels.get(key);
            match op {
                LabelOp::Exists => v.is_some(),
                LabelOp::NotExists => v.is_none(),
                LabelOp::Eq(x) => v == Some(x),
                LabelOp::NotEq(x) => v != Some(x),
                LabelOp::In(xs) => v.is_some_and(|v| xs.contains(v)),
                LabelOp::NotIn(xs) => v.is_none_or(|v| !xs.contains(v)),
                LabelOp::Gt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v > *n),
                LabelOp::Lt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v < *n),
            }
        })
    }

    /// Matches an object's `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        if self.reqs.is_empty() {
            return true;
        }
        self.matches(&labels_of(obj))
    }

    /// A selector from a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_object(sel: &Value) -> Self {
        let mut reqs = Vec::new();
        if let Some(m) = sel["matchLabels"].as_object() {
            for (k, v) in m {
                reqs.push((k.clone(), LabelOp::Eq(v.as_str().unwrap_or_default().to_string())));
            }
        }
        if let Some(exprs) = sel["matchExpressions"].as_array() {
            for e in exprs {
                let key = e["key"].as_str().unwrap_or_default().to_string();
                let values: Vec<String> = e["values"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let op = match e["operator"].as_str().unwrap_or_default() {
                    "In" => LabelOp::In(values),
                    "NotIn" => LabelOp::NotIn(values),
                    "Exists" => LabelOp::Exists,
                    _ => LabelOp::NotExists,
                };
                reqs.push((key, op));
            }
        }
        LabelSelector { reqs }
    }
}

pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_requirement(part: &str) -> Result<(String, LabelOp), String> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok((key.to_string(), LabelOp::NotExists));
    }
    for (sym, mk) in [
        ("!=", LabelOp::NotEq as fn(String) -> LabelOp),
        ("==", LabelOp::Eq as fn(String) -> LabelOp),
        ("=", LabelOp::Eq as fn(String) -> LabelOp),
    ] {
        if let Some((k, v)) = part.split_once(sym) {
            let (k, v) = (k.trim(), v.trim());
            check_key(k)?;
            check_value(v)?;
            return Ok((k.to_string(), mk(v.to_string())));
        }
    }
    for (sym, is_gt) in [(">", true), ("<", false)] {
        if let Some((k, v)) = part.split_once(sym) {
            let k = k.trim();
            check_key(k)?;
            let n: i64 =
                v.trim().parse().map_err(|_| format!("for 'Gt', 'Lt' operators, the value must be an integer: {v}"))?;
            return Ok((k.to_string(), if is_gt { LabelOp::Gt(n) } else { LabelOp::Lt(n) }));
        }
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().trim();
    let rest = words.next().unwrap_or_default().trim();
    check_key(key)?;
    if rest.is_empty() {
        return Ok((key.to_string(), LabelOp::Exists));
    }
    let (op, list) = if let Some(l) = rest.strip_prefix("notin") {
        ("notin", l)
    } else if let Some(l) = rest.strip_prefix("in") {
        ("in", l)
    } else {
        return Err(format!("found '{rest}', expected: in, notin, =, ==, !=, gt, lt"));
    };
    let list = list.trim();
    let inner = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| format!("found '{list}', expected: '('"))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    for v in &values {
        check_value(v)?;
    }
    if values.is_empty() {
        return Err("for 'in', 'notin' operators, values set can't be empty".into());
    }
    Ok((key.to_string(), if op == "in" { LabelOp::In(values) } else { LabelOp::NotIn(values) }))
}

fn check_key(k: &str) -> Result<(), String> {
    let name = k.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name.len() > 63 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(format!(
            "invalid label key \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.'"
        ));
    }
    Ok(())
}

fn check_value(v: &str) -> Result<(), String> {
    if v.len() > 63 || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(format!(
            "invalid label value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"
        ));
    }
    Ok(())
}

/// A parsed field selector over the fields a resource supports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses and checks every field against what `info` supports (400 otherwise, like the real server).
    pub fn parse(s: &str, info: &ResourceInfo) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_unescaped(s, ',') {
            if part.trim().is_empty() {
                continue;
            }
            let (field, eq, value) = if let Some((f, v)) = split_op(&part, "!=") {
                (f, false, v)
            } else if let Some((f, v)) = split_op(&part, "==") {
                (f, true, v)
            } else if let Some((f, v)) = split_op(&part, "=") {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{s}'; can't understand '{part}'")));
            };
            let field = field.trim().to_string();
            if !supports_field(info, &field) {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            reqs.push((field, eq, unescape(&value)));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Matches a stored object (events in their core/v1 shape).
    pub fn matches(&self, info: &ResourceInfo, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, eq, value)| (field_value(info, obj, field) == *value) == *eq)
    }

    /// The value a `metadata.name=` requirement pins, for `watch_object`-style lookups.
    pub fn exact_name(&self) -> Option<&str> {
        self.reqs.iter().find(|(f, eq, _)| f == "metadata.name" && *eq).map(|(_, _, v)| v.as_str())
    }
}

fn split_op(part: &str, op: &str) -> Option<(String, String)> {
    part.split_once(op).map(|(a, b)| (a.to_string(), b.to_string()))
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if let Some(cur) = out.last_mut() {
                cur.push('\\');
                cur.push(c);
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(String::new());
        } else if let Some(cur) = out.last_mut() {
            cur.push(c);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Field selector names each kind supports, beyond `metadata.name` and `metadata.namespace`.
fn kind_fields(info: &ResourceInfo) -> &'static [&'static str] {
    match (info.storage.group.as_str(), info.storage.resource.as_str()) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reportingController",
        ],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "namespaces") => &["status.phase"],
        ("", "secrets") => &["type"],
        ("", "persistentvolumeclaims") => &[],
        _ => &[],
    }
}

fn supports_field(info: &ResourceInfo, field: &str) -> bool {
    field == "metadata.name"
        || field == "metadata.namespace"
        || kind_fields(info).contains(&field)
        || info.selectable_fields.iter().any(|p| p.trim_start_matches('.') == field)
}

/// The string value a field selector compares, read from the stored object.
fn field_value(info: &ResourceInfo, obj: &Value, field: &str) -> String {
    let field = if info.storage.resource == "events" && info.storage.group.is_empty() {
        match field {
            f if f.starts_with("regarding.") => format!("involvedObject.{}", &f["regarding.".len()..]),
            "reportingController" => "reportingComponent".to_string(),
            "source" => "source.component".to_string(),
            f => f.to_string(),
        }
    } else {
        field.to_string()
    };
    let mut cur = obj;
    for part in field.split('.') {
        cur = &cur[part];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null if field == "spec.unschedulable" || field == "spec.hostNetwork" => "false".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn equality_and_inequality() {
        let s = LabelSelector::parse("app=web,tier==front,env!=prod").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "front"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "db"), ("tier", "front")])));
    }

    #[test]
    fn sets_and_existence() {
        let s = LabelSelector::parse("app in (web, db),env notin (prod),managed,!legacy").unwrap();
        assert!(s.matches(&labels(&[("app", "db"), ("managed", "")])));
        assert!(!s.matches(&labels(&[("app", "db"), ("managed", ""), ("legacy", "1")])));
        assert!(!s.matches(&labels(&[("app", "db")])));
        assert!(!s.matches(&labels(&[("app", "cache"), ("managed", "")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("managed", ""), ("env", "prod")])));
    }

    #[test]
    fn bad_selectors_are_bad_requests() {
        assert_eq!(LabelSelector::parse("app in web").unwrap_err().code, 400);
        assert_eq!(LabelSelector::parse("a b c").unwrap_err().code, 400);
    }

    #[test]
    fn label_selector_objects() {
        let s = LabelSelector::from_object(
            &json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}),
        );
        assert!(s.matches(&labels(&[("a", "1"), ("b", "x")])));
        assert!(!s.matches(&labels(&[("a", "1")])));
    }

    #[test]
    fn field_selectors_check_support_and_match() {
        let pods = crate::registry::builtins().into_iter().find(|r| r.plural == "pods").unwrap();
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed", &pods).unwrap();
        assert!(s.matches(&pods, &json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})));
        assert!(!s.matches(&pods, &json!({"spec": {"nodeName": "n2"}})));
        let err = FieldSelector::parse("spec.bogus=1", &pods).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (400, "field label not supported: spec.bogus"));
        assert_eq!(FieldSelector::parse("metadata.name=a", &pods).unwrap().exact_name(), Some("a"));
    }

    #[test]
    fn event_fields_read_the_involved_object() {
        let events = crate::registry::builtins().into_iter().find(|r| r.plural == "events").unwrap();
        let s = FieldSelector::parse("involvedObject.name=w,involvedObject.kind=Widget", &events).unwrap();
        assert!(s.matches(&events, &json!({"involvedObject": {"name": "w", "kind": "Widget"}})));
    }
}
