//! Small hand-written CRDs for the tests: kind `Widget` in `example.com`, version `v1`.
#![cfg(test)]
#![allow(dead_code)]

use crd_validate::{CrdValidator, FieldErrors, SchemaError};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// A namespaced CRD whose single served version `v1` has `schema` as its openAPIV3Schema.
pub fn crd(schema: Value) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    }))
    .expect("test CRD deserializes")
}

/// The CRD for a root schema whose only property is `spec` with this schema.
pub fn spec_crd(spec: Value) -> CustomResourceDefinition {
    crd(json!({"type": "object", "properties": {"spec": spec}}))
}

pub fn validator(schema: Value) -> CrdValidator {
    CrdValidator::new(&crd(schema)).expect("test CRD is valid")
}

pub fn spec_validator(spec: Value) -> CrdValidator {
    CrdValidator::new(&spec_crd(spec)).expect("test CRD is valid")
}

pub fn schema_error(schema: Value) -> SchemaError {
    CrdValidator::new(&crd(schema)).expect_err("test CRD must be refused")
}

/// A `Widget` named `w` in namespace `default` with this spec.
pub fn widget(spec: Value) -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": spec,
    })
}

pub fn create(v: &CrdValidator, obj: &Value) -> Result<Value, FieldErrors> {
    v.validate("v1", obj, None)
}

pub fn update(v: &CrdValidator, obj: &Value, old: &Value) -> Result<Value, FieldErrors> {
    v.validate("v1", obj, Some(old))
}

/// The errors of a create that must fail.
pub fn create_err(v: &CrdValidator, obj: &Value) -> FieldErrors {
    v.validate("v1", obj, None).expect_err("object must be refused")
}

pub fn update_err(v: &CrdValidator, obj: &Value, old: &Value) -> FieldErrors {
    v.validate("v1", obj, Some(old)).expect_err("update must be refused")
}

/// `(path, kind)` of every error, for exact comparisons.
pub fn kinds(errs: &FieldErrors) -> Vec<(String, crd_validate::FieldErrorKind)> {
    errs.iter().map(|e| (e.path.clone(), e.kind)).collect()
}
