//! `CrdValidator::new`: CRDs kube-apiserver would refuse are refused, with their paths.

use crate::common::*;
use crd_validate::{CrdValidator, FieldErrorKind, SchemaError};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;

const ROOT: &str = "spec.versions[0].schema.openAPIV3Schema";

fn problem_paths(err: &SchemaError) -> Vec<String> {
    err.problems().iter().filter_map(|p| p.path().map(str::to_owned)).collect()
}

#[test]
fn a_sound_crd_from_yaml_is_accepted() {
    let yaml = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-validations:
            - rule: self.metadata.name.size() <= 40
              message: name too long
          properties:
            metadata:
              type: object
              properties:
                name: {type: string, maxLength: 50}
            spec:
              type: object
              required: [cluster]
              properties:
                cluster:
                  type: string
                  x-kubernetes-validations:
                    - {rule: self == oldSelf, message: cluster is immutable}
                replicas: {type: integer, format: int32, minimum: 0, default: 1}
                port: {x-kubernetes-int-or-string: true}
                volumes:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [name]
                  items:
                    type: object
                    required: [name]
                    properties:
                      name: {type: string}
                      storage: {type: string}
                    x-kubernetes-validations:
                      - rule: "!has(oldSelf.storage) || quantity(self.storage).compareTo(quantity(oldSelf.storage)) >= 0"
                        message: storage may grow, never shrink
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
    - name: v0
      served: false
      storage: false
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;
    let crd: CustomResourceDefinition = serde_saphyr::from_str(yaml).unwrap();
    let v = CrdValidator::new(&crd).unwrap();
    assert_eq!(v.group(), "example.com");
    assert_eq!(v.kind(), "Widget");
    assert_eq!(v.served_versions(), vec!["v1"]);
    let out = v.validate("v1", &widget(json!({"cluster": "a"})), None).unwrap();
    assert_eq!(out["spec"]["replicas"], 1);

    // A version that is not served is not found.
    let errs = v.validate("v0", &widget(json!({})), None).unwrap_err();
    assert_eq!(errs.0[0].kind, FieldErrorKind::NotFound);
    // metadata.name is checked against the schema's restriction too.
    let mut long = widget(json!({"cluster": "a"}));
    long["metadata"]["name"] = json!("n".repeat(51));
    let errs = v.validate("v1", &long, None).unwrap_err();
    assert_eq!(errs.0[0].to_string(), "metadata.name: Too long: may not be more than 50 bytes");
}

#[test]
fn missing_types_are_not_structural() {
    let err = schema_error(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"minimum": 0},
                    "hosts": {"type": "array", "items": {"maxLength": 10}},
                },
            },
        },
    }));
    assert_eq!(
        err.to_string(),
        format!(
            "[{ROOT}.properties[spec].properties[hosts].items.type: Required value: must not be empty for specified array items, \
             {ROOT}.properties[spec].properties[replicas].type: Required value: must not be empty for specified object fields]"
        )
    );
    assert!(matches!(err, SchemaError::Multiple(ref all) if all.len() == 2));
}

#[test]
fn root_must_be_an_object_with_a_type() {
    let err = schema_error(json!({"properties": {"spec": {"type": "object"}}}));
    assert_eq!(err.to_string(), format!("{ROOT}.type: Required value: must not be empty at the root"));
    let err = schema_error(json!({"type": "string"}));
    assert_eq!(err.path(), Some(format!("{ROOT}.type").as_str()));
}

#[test]
fn refs_unique_items_and_additional_properties_beside_properties() {
    let err = schema_error(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "other": {"$ref": "#/definitions/x"},
                    "zones": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
                    "mixed": {
                        "type": "object",
                        "properties": {"a": {"type": "string"}},
                        "additionalProperties": {"type": "string"},
                    },
                },
            },
        },
    }));
    let paths = problem_paths(&err);
    for expected in [
        format!("{ROOT}.properties[spec].properties[other].$ref"),
        format!("{ROOT}.properties[spec].properties[zones].uniqueItems"),
        format!("{ROOT}.properties[spec].properties[mixed].additionalProperties"),
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    assert!(err.to_string().contains("$ref is not supported"));
    assert!(
        err.to_string().contains("uniqueItems cannot be set to true since the runtime complexity becomes quadratic")
    );
    assert!(err.to_string().contains("additionalProperties and properties are mutual exclusive"));
}

#[test]
fn additional_properties_at_the_root_are_forbidden() {
    let err = schema_error(json!({"type": "object", "additionalProperties": {"type": "string"}}));
    assert_eq!(err.to_string(), format!("{ROOT}.additionalProperties: Forbidden: must not be used at the root"));
}

#[test]
fn metadata_may_only_restrict_name_and_generate_name() {
    // Allowed:
    validator(json!({
        "type": "object",
        "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 40}}}},
    }));
    let err = schema_error(json!({
        "type": "object",
        "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}},
    }));
    assert_eq!(
        err.to_string(),
        format!(
            "{ROOT}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, \
             but metadata is implicitly specified"
        )
    );
    let err = schema_error(json!({
        "type": "object",
        "properties": {"metadata": {"type": "object", "default": {"name": "x"}}},
    }));
    assert_eq!(
        err.to_string(),
        format!("{ROOT}.properties[metadata].default: Forbidden: must not be set in top-level metadata")
    );
}

#[test]
fn logical_junctors_must_stay_value_validations() {
    let err = schema_error(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "anyOf": [
                    {"type": "object", "required": ["a"]},
                    {"properties": {"b": {"minLength": 1}}},
                ],
                "allOf": [{"x-kubernetes-validations": [{"rule": "true"}]}],
            },
        },
    }));
    let paths = problem_paths(&err);
    for expected in [
        format!("{ROOT}.properties[spec].anyOf[0].type"),
        format!("{ROOT}.properties[spec].properties[b]"),
        format!("{ROOT}.properties[spec].allOf[0].x-kubernetes-validations"),
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    assert!(err.to_string().contains(&format!(
        "{ROOT}.properties[spec].properties[b]: Required value: because it is defined in {ROOT}.properties[spec].anyOf[1].properties[b]"
    )));
}

#[test]
fn list_map_keys_must_be_required_or_defaulted() {
    let err = schema_error(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "noKeys": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object"}},
                    "optionalKey": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                    },
                },
            },
        },
    }));
    let spec = format!("{ROOT}.properties[spec].properties");
    assert_eq!(
        err.problems().iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![
            format!(
                "{spec}[noKeys].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
            ),
            format!(
                "{spec}[optionalKey].items.properties[name].default: Required value: this property is in \
                 x-kubernetes-list-map-keys, so it must have a default or be a required property"
            ),
        ]
    );
}

#[test]
fn defaults_must_be_pruned_and_valid() {
    let err = schema_error(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer", "minimum": 1, "default": 0},
                    "storage": {"type": "object", "properties": {"size": {"type": "string"}}, "default": {"size": "1Gi", "typo": 1}},
                },
            },
        },
    }));
    assert_eq!(
        err.problems().iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![
            format!(
                "{ROOT}.properties[spec].properties[replicas].default: Invalid value: 0: \
                 {ROOT}.properties[spec].properties[replicas].default in body should be greater than or equal to 1"
            ),
            format!(
                "{ROOT}.properties[spec].properties[storage].default: Invalid value: \
                 {{\"size\":\"1Gi\",\"typo\":1}}: must not have unknown fields"
            ),
        ]
    );
}

#[test]
fn rules_that_do_not_compile_are_refused() {
    let err = schema_error(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"replicas": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {"rule": "self.replicas >"},
                    {"rule": "self.replicas > minimum"},
                    {"rule": "self.replcas > 0"},
                    {"rule": "true", "messageExpression": "'unterminated"},
                    {"rule": "self.replicas > 0", "reason": "Because"},
                    {"rule": "self.replicas > 0", "optionalOldSelf": true},
                    {"rule": "self.replicas > 0", "fieldPath": ".nothing"},
                ],
            },
        },
    }));
    let rules = format!("{ROOT}.properties[spec].x-kubernetes-validations");
    let problems = err.problems();
    // The reason is checked with the schema; the CEL checks only run once the rest is fine.
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        format!(
            "{rules}[4].reason: Unsupported value: \"Because\": supported values: \"FieldValueDuplicate\", \
             \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
        )
    );

    let err = schema_error(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"replicas": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {"rule": "self.replicas >"},
                    {"rule": "self.replicas > minimum"},
                    {"rule": "self.replcas > 0"},
                    {"rule": "true", "messageExpression": "'unterminated"},
                    {"rule": "self.replicas > 0", "optionalOldSelf": true},
                    {"rule": "self.replicas > 0", "fieldPath": ".nothing"},
                    {"rule": "self.all(k, k != 'x')"},
                ],
            },
        },
    }));
    let problems = err.problems();
    assert_eq!(
        problems.iter().filter_map(|p| p.path()).collect::<Vec<_>>(),
        vec![
            format!("{rules}[0].rule"),
            format!("{rules}[1].rule"),
            format!("{rules}[2].rule"),
            format!("{rules}[3].messageExpression"),
            format!("{rules}[4].optionalOldSelf"),
            format!("{rules}[5].fieldPath"),
        ]
    );
    let SchemaError::CelCompile { rule, message, .. } = problems[0] else {
        panic!("expected a CEL compile error, got {:?}", problems[0]);
    };
    assert_eq!(rule, "self.replicas >");
    assert!(message.starts_with("compilation failed: "), "{message}");
    assert!(problems[1].to_string().contains("undeclared reference to 'minimum'"));
    assert!(problems[2].to_string().contains("undefined field 'replcas'"));
    assert!(problems[4].to_string().contains("may not be set if oldSelf is not used in rule"));
    assert!(problems[5].to_string().contains("fieldPath must be a valid path"));
}

#[test]
fn every_version_needs_a_schema() {
    let mut crd = crd(json!({"type": "object"}));
    crd.spec.versions[0].schema = None;
    let err = CrdValidator::new(&crd).unwrap_err();
    assert_eq!(err.to_string(), format!("{ROOT}: Required value: schemas are required"));
}

#[test]
fn list_and_map_extensions_must_fit_the_type() {
    let err = schema_error(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "a": {"type": "string", "x-kubernetes-list-type": "set"},
                    "b": {"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}},
                    "c": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-map-keys": ["x"]},
                },
            },
        },
    }));
    let spec = format!("{ROOT}.properties[spec].properties");
    assert_eq!(
        problem_paths(&err),
        vec![
            format!("{spec}[a].type"),
            format!("{spec}[b].x-kubernetes-list-type"),
            format!("{spec}[c].x-kubernetes-list-type"),
        ]
    );
}
