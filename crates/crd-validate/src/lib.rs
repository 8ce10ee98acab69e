//! Admission of custom resources as kube-apiserver does it for a CustomResourceDefinition.
//!
//! [`CrdValidator::new`] checks a CRD the way kube-apiserver does when it is applied
//! (structural schemas, the CRD-specific schema restrictions, `x-kubernetes-validations`
//! rules that compile, valid defaults) and keeps, per version, a model of the schema with
//! compiled CEL programs. [`CrdValidator::validate`] then admits an object for a create
//! (`old = None`) or an update (`old = Some(..)`), in kube-apiserver's order:
//!
//! 1. `kind`/`apiVersion` must be the CRD's;
//! 2. unknown fields are pruned (except under `x-kubernetes-preserve-unknown-fields`, and
//!    `apiVersion`/`kind`/`metadata` at the root), nulls the schema does not allow are
//!    dropped, and schema defaults are applied (the old object is prepared the same way,
//!    as kube-apiserver defaults what it reads from storage);
//! 3. `metadata.name` must be a DNS-1123 subdomain (on update: must not change);
//! 4. the OpenAPI schema is checked (types, formats, bounds, lengths, patterns, enums,
//!    counts, `required`, `allOf`/`anyOf`/`oneOf`/`not`), plus the scale subresource's
//!    replica paths and `x-kubernetes-embedded-resource` objects;
//! 5. `x-kubernetes-list-type: set|map` items must be unique;
//! 6. the CEL rules are evaluated, unless an earlier error is of a "blocking" kind
//!    (required, type, enum, too long, too many): then kube-apiserver skips them and says
//!    so with a `<nil>` error, which is reproduced.
//!
//! On update, errors in values that are unchanged from the old object are dropped
//! (CRD validation ratcheting, on by default since Kubernetes 1.30), except for
//! transition rules; transition rules (`oldSelf`) only run where the old object has a
//! correlated value: object fields by name, map values by key, `listType: map` items by
//! their keys.
//!
//! Errors read like kube-apiserver's, e.g.
//! `spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0`.
//! Errors kube-apiserver reports without a field path (root-level CEL rules, composite
//! `oneOf`/`anyOf` errors, the skipped-rules notice) have an empty [`FieldError::path`] and
//! print as `<nil>: ...`, as kube-apiserver prints them.
//!
//! Not modelled: CEL cost limits (estimated and runtime); CEL type checking beyond
//! undeclared identifiers and undefined fields (other type errors show up when a rule is
//! evaluated); order-insensitive equality and merging `+` of `set`/`map` lists inside CEL;
//! metadata beyond `name`, `generateName` and `namespace` (labels, annotations, owner
//! references, unknown metadata fields); what the registry does around validation (name
//! generation, namespace from the URL, dropping `status` when the status subresource is on,
//! `generation`); warnings; strict field validation (unknown fields are pruned, never
//! refused); CEL rules on defaults at CRD load (defaults are checked for pruning, schema and
//! list uniqueness); version conversion.

mod cel;
mod errors;
mod formats;
mod gofmt;
mod listtype;
mod meta;
mod mutate;
mod openapi;
mod path;
mod schema;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

pub use errors::{FieldError, FieldErrorKind, FieldErrors, SchemaError};

use meta::Scale;
use path::FieldPath;
use schema::{Builder, Node};

/// One version of the CRD.
struct Version {
    name: String,
    served: bool,
    root: Node,
    scale: Option<Scale>,
}

/// Validates custom resources of one CRD, per served version.
pub struct CrdValidator {
    group: String,
    kind: String,
    namespaced: bool,
    versions: Vec<Version>,
}

impl std::fmt::Debug for CrdValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrdValidator")
            .field("group", &self.group)
            .field("kind", &self.kind)
            .field("versions", &self.versions.iter().map(|v| &v.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The error kinds after which kube-apiserver does not evaluate CEL rules.
const BLOCKING: [FieldErrorKind; 5] = [
    FieldErrorKind::NotSupported,
    FieldErrorKind::Required,
    FieldErrorKind::TooLong,
    FieldErrorKind::TooMany,
    FieldErrorKind::TypeInvalid,
];

impl CrdValidator {
    /// Checks the CRD as kube-apiserver does when it is applied: every version's
    /// `openAPIV3Schema` must be structural and obey the CRD schema restrictions, every
    /// `x-kubernetes-validations` rule must compile (and use `oldSelf` only where old values
    /// can be correlated), and defaults must be pruned and valid.
    ///
    /// # Errors
    ///
    /// Every problem found, with its path in the CRD.
    pub fn new(crd: &CustomResourceDefinition) -> Result<Self, SchemaError> {
        let spec = &crd.spec;
        let mut builder = Builder::new();
        let mut versions = Vec::with_capacity(spec.versions.len());
        for (i, version) in spec.versions.iter().enumerate() {
            let path = FieldPath::new("spec").child("versions").index(i).child("schema").child("openAPIV3Schema");
            let Some(props) = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()) else {
                builder.problems.push(SchemaError::NonStructural {
                    path: path.render(),
                    kind: FieldErrorKind::Required,
                    message: "schemas are required".to_owned(),
                });
                continue;
            };
            let before = builder.problems.len();
            let mut root = builder.build_root(props, &path);
            if builder.problems.len() == before {
                check_defaults(&root, &path, &mut builder.problems);
            }
            root.mark_rules();
            let scale = version.subresources.as_ref().and_then(|s| s.scale.as_ref()).map(|s| Scale {
                spec_replicas_path: s.spec_replicas_path.clone(),
                status_replicas_path: s.status_replicas_path.clone(),
                label_selector_path: s.label_selector_path.clone(),
            });
            versions.push(Version { name: version.name.clone(), served: version.served, root, scale });
        }
        if let Some(err) = SchemaError::from_list(builder.problems) {
            return Err(err);
        }
        Ok(Self {
            group: spec.group.clone(),
            kind: spec.names.kind.clone(),
            namespaced: spec.scope == "Namespaced",
            versions,
        })
    }

    /// The CRD's API group.
    #[must_use]
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The kind of the custom resources.
    #[must_use]
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The served versions, in the CRD's order.
    #[must_use]
    pub fn served_versions(&self) -> Vec<&str> {
        self.versions.iter().filter(|v| v.served).map(|v| v.name.as_str()).collect()
    }

    fn version(&self, version: &str) -> Result<&Version, FieldErrors> {
        self.versions.iter().find(|v| v.served && v.name == version).ok_or_else(|| {
            FieldErrors(vec![FieldError::not_found(
                &FieldPath::new("apiVersion"),
                Value::from(format!("{}/{version}", self.group)),
                format!("version {version} of {} is not served by this CustomResourceDefinition", self.kind),
            )])
        })
    }

    /// Prunes unknown fields and applies defaults, without validating: what kube-apiserver
    /// does to objects it reads from storage.
    ///
    /// # Errors
    ///
    /// Only when `version` is not a served version of the CRD.
    pub fn prune_and_default(&self, version: &str, object: &Value) -> Result<Value, FieldErrors> {
        let v = self.version(version)?;
        Ok(prepare(&v.root, object))
    }

    /// Admission of `object` in `version` for a create (`old = None`) or an update
    /// (`old = Some(previous object)`): returns the object after pruning and defaulting, or
    /// every field error found (schema, metadata and CEL errors together, in
    /// kube-apiserver's order).
    ///
    /// # Errors
    ///
    /// The errors kube-apiserver would return in its `422 Invalid` status.
    pub fn validate(&self, version: &str, object: &Value, old: Option<&Value>) -> Result<Value, FieldErrors> {
        let v = self.version(version)?;
        if !object.is_object() {
            return Err(FieldErrors(vec![FieldError::invalid(
                &FieldPath::root(),
                object.clone(),
                "must be a JSON object",
            )]));
        }
        let api_version = format!("{}/{}", self.group, v.name);
        let type_errors = meta::validate_type_meta(object, &self.kind, &api_version);
        if !type_errors.is_empty() {
            return Err(FieldErrors(type_errors));
        }

        let new = prepare(&v.root, object);
        let old = old.filter(|o| o.is_object()).map(|o| prepare(&v.root, o));
        let mut errs = match &old {
            Some(old) => meta::validate_object_meta_update(&new, old),
            None => meta::validate_object_meta(&new, self.namespaced),
        };
        openapi::validate(&v.root, &new, "", old.as_ref(), &mut errs);
        if let Some(scale) = &v.scale {
            errs.extend(meta::validate_scale(&new, scale));
        }
        meta::validate_embedded(&v.root, &new, &FieldPath::root(), &mut errs);

        // Lists that were already broken before the update are not held against it.
        let mut old_list_errors = Vec::new();
        if let Some(old) = &old {
            listtype::validate(&v.root, old, &FieldPath::root(), &mut old_list_errors);
        }
        if old_list_errors.is_empty() {
            listtype::validate(&v.root, &new, &FieldPath::root(), &mut errs);
        }

        if v.root.has_rules() {
            if errs.iter().any(|e| BLOCKING.contains(&e.kind)) {
                errs.push(FieldError::invalid(
                    &FieldPath::root(),
                    Value::Null,
                    "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
                ));
            } else {
                cel::validate(&v.root, &new, old.as_ref(), &mut errs);
            }
        }

        if errs.is_empty() { Ok(new) } else { Err(FieldErrors(errs)) }
    }
}

/// Pruning, null pruning and defaulting, in kube-apiserver's order.
fn prepare(root: &Node, object: &Value) -> Value {
    let mut out = object.clone();
    mutate::prune(&mut out, Some(root), true);
    mutate::prune_nulls(&mut out, Some(root));
    mutate::default(&mut out, root);
    out
}

/// Defaults must be pruned and valid against their own schema.
fn check_defaults(node: &Node, path: &FieldPath, problems: &mut Vec<SchemaError>) {
    if let Some(default) = &node.default {
        let default_path = path.child("default");
        let mut pruned = default.clone();
        mutate::prune(&mut pruned, Some(node), node.embedded);
        if &pruned != default {
            problems.push(SchemaError::NonStructural {
                path: default_path.render(),
                kind: FieldErrorKind::Invalid,
                message: format!("{}: must not have unknown fields", gofmt::bad_value(default)),
            });
        } else {
            let mut defaulted = default.clone();
            mutate::default(&mut defaulted, node);
            let mut errs = Vec::new();
            openapi::validate(node, &defaulted, &default_path.render(), None, &mut errs);
            listtype::validate(node, &defaulted, &default_path, &mut errs);
            for e in errs {
                let message = match &e.value {
                    Some(value) if !matches!(e.kind, FieldErrorKind::Required | FieldErrorKind::Forbidden) => {
                        format!("{}: {}", gofmt::bad_value(value), e.message)
                    }
                    _ => e.message.clone(),
                };
                problems.push(SchemaError::NonStructural {
                    path: if e.path.is_empty() { default_path.render() } else { e.path },
                    kind: e.kind,
                    message,
                });
            }
        }
    }
    for (name, prop) in &node.properties {
        check_defaults(prop, &path.child("properties").key(name), problems);
    }
    if let Some(items) = &node.items {
        check_defaults(items, &path.child("items"), problems);
    }
    if let Some(additional) = node.additional_schema() {
        check_defaults(additional, &path.child("additionalProperties"), problems);
    }
}

#[cfg(test)]
mod tests {
    use super::CrdValidator;

    #[test]
    fn validator_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CrdValidator>();
    }
}
