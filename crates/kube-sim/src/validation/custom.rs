//! Admission of custom resources against their CRD version's structural schema:
//! pruning of unknown fields (reported as `fieldValidation` asks) and defaulting.
//!
//! Schema constraints and CEL rules (including transition rules) are checked by the
//! `crd-validate` crate through [`Validators`].

use std::collections::HashMap;
use std::sync::Arc;

use crd_validate::CrdValidator;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// One compiled validator per CRD, rebuilt whenever the CRD is written.
#[derive(Clone, Default)]
pub struct Validators {
    by_crd: HashMap<String, Arc<CrdValidator>>,
}

impl Validators {
    /// Compiles the CRD's schemas; a CRD whose schema the validator cannot compile is
    /// served without schema validation (logged), rather than refused.
    pub fn set(&mut self, crd_name: &str, crd: &Value) {
        self.by_crd.remove(crd_name);
        let typed = match serde_json::from_value(crd.clone()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(crd = crd_name, error = %e, "CRD does not decode; serving it without schema validation");
                return;
            }
        };
        match CrdValidator::new(&typed) {
            Ok(v) => {
                self.by_crd.insert(crd_name.to_string(), Arc::new(v));
            }
            Err(e) => {
                tracing::warn!(crd = crd_name, error = %e, "CRD schema does not compile; serving it without schema validation")
            }
        }
    }

    pub fn remove(&mut self, crd_name: &str) {
        self.by_crd.remove(crd_name);
    }

    /// Schema and CEL validation of a custom resource (after pruning); on success the
    /// object is replaced by the validator's pruned and defaulted form.
    pub fn validate(
        &self,
        info: &crate::registry::ResourceInfo,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        match self.of(info) {
            Some(validator) => validator.check(info, obj, old),
            None => Ok(()),
        }
    }

    /// The validator of a custom resource's CRD, to validate with outside the store's
    /// lock ([`Validator::check`]).
    pub fn of(&self, info: &crate::registry::ResourceInfo) -> Option<Validator> {
        info.crd.as_deref().and_then(|c| self.by_crd.get(c)).cloned().map(Validator)
    }
}

/// One CRD's compiled schemas, shared.
pub struct Validator(Arc<CrdValidator>);

impl Validator {
    /// As [`Validators::validate`].
    pub fn check(
        &self,
        info: &crate::registry::ResourceInfo,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let v = &self.0;
        let stored_version = obj.get("apiVersion").cloned();
        let mut candidate = obj.clone();
        candidate["apiVersion"] = json!(info.api_version());
        candidate["kind"] = json!(info.kind);
        let old = old.map(|o| {
            let mut o = o.clone();
            o["apiVersion"] = json!(info.api_version());
            o
        });
        match v.validate(&info.version, &candidate, old.as_ref()) {
            Ok(mut checked) => {
                if let Some(av) = stored_version {
                    checked["apiVersion"] = av;
                }
                *obj = checked;
                Ok(())
            }
            Err(errs) => {
                let name = crate::meta::name(obj).to_string();
                let causes: Vec<Value> = errs
                    .iter()
                    .map(|e| {
                        let full = e.to_string();
                        let body = full
                            .strip_prefix(&format!("{}: ", e.path))
                            .or_else(|| full.strip_prefix("<nil>: "))
                            .unwrap_or(&full)
                            .to_string();
                        let reason = match format!("{:?}", e.kind).as_str() {
                            "Internal" => "InternalError".to_string(),
                            k => format!("FieldValue{k}"),
                        };
                        json!({"reason": reason, "message": body, "field": e.path})
                    })
                    .collect();
                let mut err = ApiError::new(
                    422,
                    "Invalid",
                    format!("{}.{} \"{name}\" is invalid: {errs}", info.kind, info.group),
                );
                err.details = Some(json!({"name": name, "group": info.group, "kind": info.kind, "causes": causes}));
                Err(err)
            }
        }
    }
}

/// How unknown fields in a request body are treated (the `fieldValidation` parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Silently drop them.
    Ignore,
    /// Drop them and answer with a `Warning` header (the server's default).
    #[default]
    Warn,
    /// Refuse the request with 400.
    Strict,
}

impl FieldValidation {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "Ignore" => Ok(FieldValidation::Ignore),
            "Warn" | "" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
}

/// Removes fields the schema does not declare, appending their paths to `unknown`.
pub fn prune(value: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let embedded = schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
            if let Some(props) = schema["properties"].as_object() {
                let keep_all = preserves(schema);
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    if let Some(s) = props.get(&k) {
                        if let Some(v) = map.get_mut(&k) {
                            prune(v, s, &child, unknown);
                        }
                    } else if embedded && ["apiVersion", "kind", "metadata"].contains(&k.as_str()) {
                    } else if !keep_all {
                        map.remove(&k);
                        unknown.push(child);
                    }
                }
            } else if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in map.iter_mut() {
                    let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    prune(v, additional, &child, unknown);
                }
            } else if !preserves(schema) && schema["type"] == "object" && !embedded {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    map.remove(&k);
                    unknown.push(if path.is_empty() { k } else { format!("{path}.{k}") });
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item, s, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Fills `default`s of missing properties, depth first, as the apiserver does on read and write.
pub fn default(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    if !map.contains_key(k)
                        && let Some(d) = s.get("default")
                    {
                        map.insert(k.clone(), d.clone());
                    }
                    if let Some(v) = map.get_mut(k) {
                        default(v, s);
                    }
                }
            } else if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for v in map.values_mut() {
                    default(v, additional);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|i| default(i, s));
            }
        }
        _ => {}
    }
}

/// Prunes and defaults a custom resource; returns the warnings to send, or the 400 a
/// strict request gets.
pub fn admit(
    obj: &mut Value,
    schema: &Value,
    kind: &str,
    version: &str,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let Value::Object(map) = obj else { return Ok(vec![]) };
    let mut unknown = Vec::new();
    let mut body = Map::new();
    for (k, v) in map.iter() {
        if !["apiVersion", "kind", "metadata"].contains(&k.as_str()) {
            body.insert(k.clone(), v.clone());
        }
    }
    let mut body = Value::Object(body);
    prune(&mut body, schema, "", &mut unknown);
    default(&mut body, schema);
    let quoted: Vec<String> = unknown.iter().map(|u| format!("unknown field \"{u}\"")).collect();
    if mode == FieldValidation::Strict && !quoted.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            quoted.join(", ")
        )));
    }
    map.retain(|k, _| ["apiVersion", "kind", "metadata"].contains(&k.as_str()));
    if let Value::Object(b) = body {
        map.extend(b);
    }
    Ok(if mode == FieldValidation::Warn { quoted } else { vec![] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "default": 1},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    #[test]
    fn unknown_fields_are_pruned_and_reported() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"},
            "spec": {"bogus": 1, "labels": {"k": "v"}, "items": [{"a": "x", "b": "y"}], "free": {"any": 1}}});
        let warnings = admit(&mut obj, &schema(), "W", "v1", FieldValidation::Warn).unwrap();
        assert_eq!(warnings, ["unknown field \"spec.bogus\"", "unknown field \"spec.items[0].b\""]);
        assert_eq!(obj["spec"], json!({"size": 1, "labels": {"k": "v"}, "items": [{"a": "x"}], "free": {"any": 1}}));
        assert_eq!(obj["metadata"]["name"], "a");
    }

    #[test]
    fn strict_refuses_unknown_fields() {
        let mut obj = json!({"spec": {"bogus": 1}});
        let err = admit(&mut obj, &schema(), "Widget", "v1", FieldValidation::Strict).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.bogus\""
        );
    }
}
