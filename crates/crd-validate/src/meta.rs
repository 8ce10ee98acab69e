//! The checks kube-apiserver makes on a custom resource outside of its schema: `kind` and
//! `apiVersion`, `metadata.name`/`generateName`/`namespace`, embedded resources
//! (`x-kubernetes-embedded-resource`) and the scale subresource's replica paths.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::errors::FieldError;
use crate::path::FieldPath;
use crate::schema::Node;

const DNS1123_LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";

static LABEL_RE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(&format!("^{DNS1123_LABEL}$")).ok());
static SUBDOMAIN_RE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(&format!("^{DNS1123_SUBDOMAIN}$")).ok());
static DNS1035_RE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(&format!("^{DNS1035_LABEL}$")).ok());

fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(s))
}

/// apimachinery's `RegexError`.
fn regex_error(message: &str, regex: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{message} (regex used for validation is '{regex}')");
    }
    let mut s = format!("{message} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{example}', "));
    }
    s.push_str(&format!("regex used for validation is '{regex}')"));
    s
}

/// `IsDNS1123Subdomain`.
pub(crate) fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_owned());
    }
    if !matches(&SUBDOMAIN_RE, value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1123Label`.
fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !matches(&LABEL_RE, value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// `IsDNS1035Label`.
fn dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !matches(&DNS1035_RE, value) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `NameIsDNSSubdomain`, with the `prefix` handling used for `generateName`.
fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix && name.len() > 1 && name.ends_with('-') {
        // apimachinery's maskTrailingDash (which drops the last two bytes: characters here)
        let mut masked: Vec<char> = name.chars().collect();
        masked.truncate(masked.len().saturating_sub(2));
        masked.push('a');
        return dns1123_subdomain(&masked.into_iter().collect::<String>());
    }
    dns1123_subdomain(name)
}

fn str_field<'v>(obj: &'v Value, key: &str) -> Option<&'v str> {
    obj.get(key).and_then(Value::as_str)
}

/// `ValidateTypeMeta`: `kind` and `apiVersion` must be the CRD's.
pub(crate) fn validate_type_meta(obj: &Value, kind: &str, api_version: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let got_kind = str_field(obj, "kind").unwrap_or_default();
    if got_kind != kind {
        errs.push(FieldError::invalid(&FieldPath::new("kind"), Value::from(got_kind), format!("must be {kind}")));
    }
    let got_version = str_field(obj, "apiVersion").unwrap_or_default();
    if got_version != api_version {
        errs.push(FieldError::invalid(
            &FieldPath::new("apiVersion"),
            Value::from(got_version),
            format!("must be {api_version}"),
        ));
    }
    errs
}

/// `ValidateObjectMeta` for the parts that matter for custom resources: the name (a DNS-1123
/// subdomain), `generateName`, and the namespace when one is given.
pub(crate) fn validate_object_meta(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let path = FieldPath::new("metadata");
    let mut errs = Vec::new();
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    if !meta.is_null() && !meta.is_object() {
        errs.push(FieldError::invalid(&path, meta.clone(), "must be an object"));
        return errs;
    }
    let name = str_field(meta, "name").unwrap_or_default();
    let generate_name = str_field(meta, "generateName").unwrap_or_default();
    if !generate_name.is_empty() {
        for msg in name_is_dns_subdomain(generate_name, true) {
            errs.push(FieldError::invalid(&path.child("generateName"), Value::from(generate_name), msg));
        }
    }
    if name.is_empty() {
        // kube-apiserver generates the name from generateName before validating.
        if generate_name.is_empty() {
            errs.push(FieldError::required(&path.child("name"), "name or generateName is required"));
        }
    } else {
        for msg in name_is_dns_subdomain(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), Value::from(name), msg));
        }
    }
    // The namespace comes from the request URL when absent, so only a given one is checked.
    if let Some(namespace) = str_field(meta, "namespace").filter(|ns| !ns.is_empty()) {
        if namespaced {
            for msg in dns1123_label(namespace) {
                errs.push(FieldError::invalid(&path.child("namespace"), Value::from(namespace), msg));
            }
        } else {
            errs.push(FieldError::forbidden(&path.child("namespace"), "not allowed on this type"));
        }
    }
    errs
}

/// `ValidateObjectMetaUpdate` for the name: it cannot change.
pub(crate) fn validate_object_meta_update(obj: &Value, old: &Value) -> Vec<FieldError> {
    let name = |o: &Value| o.get("metadata").and_then(|m| m.get("name")).cloned().unwrap_or(Value::Null);
    let (new_name, old_name) = (name(obj), name(old));
    if new_name != old_name {
        let shown = if new_name.is_null() { Value::from("") } else { new_name };
        return vec![FieldError::invalid(&FieldPath::new("metadata").child("name"), shown, "field is immutable")];
    }
    Vec::new()
}

/// `objectmeta.Validate`: objects under `x-kubernetes-embedded-resource` need a valid
/// `apiVersion` and `kind`, and a valid `metadata.name` when given.
pub(crate) fn validate_embedded(node: &Node, value: &Value, path: &FieldPath, out: &mut Vec<FieldError>) {
    match value {
        Value::Object(map) => {
            if node.embedded {
                validate_embedded_resource(value, path, out);
            }
            for (key, child) in map {
                if let Some(prop) = node.properties.get(key) {
                    validate_embedded(prop, child, &path.child(key), out);
                } else if let Some(additional) = node.additional_schema() {
                    validate_embedded(additional, child, &path.key(key), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = node.items.as_deref() {
                for (i, item) in items.iter().enumerate() {
                    validate_embedded(item_node, item, &path.index(i), out);
                }
            }
        }
        _ => {}
    }
}

fn validate_embedded_resource(value: &Value, path: &FieldPath, out: &mut Vec<FieldError>) {
    for field in ["apiVersion", "kind"] {
        if value.get(field).is_none() {
            out.push(FieldError::required(&path.child(field), ""));
        }
    }
    if let Some(api_version) = value.get("apiVersion") {
        let p = path.child("apiVersion");
        match api_version.as_str() {
            None => out.push(FieldError::invalid(&p, api_version.clone(), "must be a string")),
            Some("") => out.push(FieldError::required(&p, "")),
            Some(v) if v.matches('/').count() > 1 => {
                out.push(FieldError::invalid(&p, api_version.clone(), format!("unexpected GroupVersion string: {v}")))
            }
            Some(_) => {}
        }
    }
    if let Some(kind) = value.get("kind") {
        let p = path.child("kind");
        match kind.as_str() {
            None => out.push(FieldError::invalid(&p, kind.clone(), "must be a string")),
            Some("") => out.push(FieldError::required(&p, "")),
            Some(k) => {
                let errs = dns1035_label(&k.to_lowercase());
                if !errs.is_empty() {
                    out.push(FieldError::invalid(
                        &p,
                        kind.clone(),
                        format!("may have mixed case, but should otherwise match: {}", errs.join(",")),
                    ));
                }
            }
        }
    }
    if let Some(meta) = value.get("metadata") {
        let p = path.child("metadata");
        match meta {
            Value::Object(m) => {
                if let Some(name) = m.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                    for msg in dns1123_subdomain(name) {
                        out.push(FieldError::invalid(&p.child("name"), Value::from(name), msg));
                    }
                }
            }
            other => out.push(FieldError::invalid(&p, other.clone(), "must be an object")),
        }
    }
}

/// The scale subresource's paths, as given in the CRD.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scale {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn nested<'v>(obj: &'v Value, json_path: &str) -> Option<&'v Value> {
    let mut current = obj;
    for part in json_path.trim_start_matches('.').split('.') {
        current = current.get(part)?;
    }
    Some(current)
}

fn check_replicas(obj: &Value, json_path: &str, out: &mut Vec<FieldError>) {
    let Some(value) = nested(obj, json_path) else {
        return;
    };
    let path = FieldPath::new(json_path);
    match value.as_i64() {
        Some(n) if n < 0 => out.push(FieldError::invalid(&path, Value::from(n), "should be a non-negative integer")),
        Some(n) if n > i64::from(i32::MAX) => out.push(FieldError::invalid(
            &path,
            Value::from(n),
            format!("should be less than or equal to {}", i32::MAX),
        )),
        Some(_) => {}
        None => out.push(FieldError::invalid(
            &path,
            Value::from(0),
            format!(
                "{json_path} accessor error: {} is of the type {}, expected int64",
                crate::gofmt::canonical_json(value),
                go_type_name(value)
            ),
        )),
    }
}

/// `ValidateScaleSpec` and `ValidateScaleStatus`.
pub(crate) fn validate_scale(obj: &Value, scale: &Scale) -> Vec<FieldError> {
    let mut out = Vec::new();
    check_replicas(obj, &scale.spec_replicas_path, &mut out);
    check_replicas(obj, &scale.status_replicas_path, &mut out);
    if let Some(selector_path) = &scale.label_selector_path
        && let Some(value) = nested(obj, selector_path)
        && !value.is_string()
    {
        out.push(FieldError::invalid(
            &FieldPath::new(selector_path),
            Value::from(""),
            format!(
                "{selector_path} accessor error: {} is of the type {}, expected string",
                crate::gofmt::canonical_json(value),
                go_type_name(value)
            ),
        ));
    }
    out
}
