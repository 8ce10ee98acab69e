//! Checks outside the schema: kind and apiVersion, metadata.name, namespace, embedded
//! resources and the scale subresource.

use crate::common::*;
use crd_validate::CrdValidator;
use crd_validate::FieldErrorKind::*;
use serde_json::json;

fn plain() -> CrdValidator {
    spec_validator(json!({"type": "object", "properties": {"replicas": {"type": "integer"}}}))
}

#[test]
fn name_must_be_a_dns_subdomain() {
    let v = plain();
    let mut obj = widget(json!({}));
    obj["metadata"]["name"] = json!("tikv.basic-1");
    assert!(create(&v, &obj).is_ok());

    obj["metadata"]["name"] = json!("Bad_Name");
    let errs = create_err(&v, &obj);
    assert_eq!(
        errs.to_string(),
        "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case \
         alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. \
         'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );

    obj["metadata"]["name"] = json!("a".repeat(254));
    let errs = create_err(&v, &obj);
    assert_eq!(kinds(&errs), vec![("metadata.name".to_owned(), Invalid)]);
    assert_eq!(errs.0[0].message, "must be no more than 253 characters");
}

#[test]
fn generate_name_stands_in_for_a_missing_name() {
    let v = plain();
    let mut obj = widget(json!({}));
    obj["metadata"] = json!({"generateName": "widget-", "namespace": "default"});
    assert!(create(&v, &obj).is_ok());

    obj["metadata"] = json!({"generateName": "Widget-"});
    assert_eq!(kinds(&create_err(&v, &obj)), vec![("metadata.generateName".to_owned(), Invalid)]);

    obj["metadata"] = json!({"namespace": "default"});
    let errs = create_err(&v, &obj);
    assert_eq!(errs.to_string(), "metadata.name: Required value: name or generateName is required");
}

#[test]
fn namespace_when_given() {
    let v = plain();
    let mut obj = widget(json!({}));
    obj["metadata"]["namespace"] = json!("Not.A.Label");
    assert_eq!(kinds(&create_err(&v, &obj)), vec![("metadata.namespace".to_owned(), Invalid)]);

    let mut cluster_scoped = spec_crd(json!({"type": "object"}));
    cluster_scoped.spec.scope = "Cluster".to_owned();
    let v = CrdValidator::new(&cluster_scoped).unwrap();
    let errs = create_err(&v, &widget(json!({})));
    assert_eq!(errs.to_string(), "metadata.namespace: Forbidden: not allowed on this type");
}

#[test]
fn kind_and_api_version_must_be_the_crds() {
    let v = plain();
    let mut obj = widget(json!({}));
    obj["kind"] = json!("Gadget");
    obj["apiVersion"] = json!("example.com/v2");
    let errs = create_err(&v, &obj);
    assert_eq!(
        errs.to_string(),
        "[kind: Invalid value: \"Gadget\": must be Widget, apiVersion: Invalid value: \"example.com/v2\": must be example.com/v1]"
    );
}

#[test]
fn name_cannot_change_on_update() {
    let v = plain();
    let old = widget(json!({"replicas": 1}));
    let mut renamed = widget(json!({"replicas": 1}));
    renamed["metadata"]["name"] = json!("other");
    let errs = update_err(&v, &renamed, &old);
    assert_eq!(errs.to_string(), "metadata.name: Invalid value: \"other\": field is immutable");
}

#[test]
fn embedded_resources_need_type_meta() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true,
            },
        },
    }));
    let ok =
        widget(json!({"template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}}));
    assert_eq!(create(&v, &ok).unwrap()["spec"]["template"]["data"], json!({}));

    let errs = create_err(&v, &widget(json!({"template": {"kind": "Config_Map", "metadata": {"name": "X"}}})));
    assert_eq!(
        kinds(&errs),
        vec![
            ("spec.template.apiVersion".to_owned(), Required),
            ("spec.template.kind".to_owned(), Invalid),
            ("spec.template.metadata.name".to_owned(), Invalid),
        ]
    );
}

#[test]
fn scale_subresource_replicas() {
    let mut crd = spec_crd(json!({"type": "object", "properties": {"replicas": {"type": "integer"}}}));
    crd.spec.versions[0].subresources = Some(
        serde_json::from_value(
            json!({"scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}),
        )
        .unwrap(),
    );
    let v = CrdValidator::new(&crd).unwrap();
    assert!(create(&v, &widget(json!({"replicas": 3}))).is_ok());
    let errs = create_err(&v, &widget(json!({"replicas": -1})));
    assert_eq!(errs.to_string(), ".spec.replicas: Invalid value: -1: should be a non-negative integer");
}

#[test]
fn objects_must_be_json_objects_of_a_served_version() {
    let v = plain();
    assert_eq!(create_err(&v, &json!([1])).0[0].kind, Invalid);
    let errs = v.validate("v9", &widget(json!({})), None).unwrap_err();
    assert_eq!(kinds(&errs), vec![("apiVersion".to_owned(), NotFound)]);
}
