//! Pruning of unknown fields, null handling and defaulting, which happen before validation.

use crate::common::*;
use crd_validate::FieldErrorKind::*;
use serde_json::json;

#[test]
fn unknown_fields_are_pruned_but_not_metadata() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "replicas": {"type": "integer"},
            "template": {"type": "object", "properties": {"image": {"type": "string"}}},
            "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
        },
    }));
    let mut obj = widget(json!({
        "replicas": 1,
        "typo": true,
        "template": {"image": "x", "extra": {"deep": 1}},
        "items": [{"a": "1", "b": "2"}],
    }));
    obj["metadata"]["labels"] = json!({"app": "w"});
    obj["metadata"]["annotations"] = json!({"note": "kept"});
    obj["status"] = json!({"phase": "Ready"}); // not in the schema
    let out = create(&v, &obj).unwrap();
    assert_eq!(
        out,
        json!({
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default", "labels": {"app": "w"}, "annotations": {"note": "kept"}},
            "spec": {"replicas": 1, "template": {"image": "x"}, "items": [{"a": "1"}]},
        })
    );
}

#[test]
fn preserve_unknown_fields_keeps_unknown_but_prunes_known_subtrees() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
            },
            "raw": {"x-kubernetes-preserve-unknown-fields": true},
            "strict": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    }));
    let out = create(
        &v,
        &widget(json!({
            "config": {"anything": {"goes": [1, 2]}, "known": {"a": "x", "b": "pruned"}},
            "raw": [1, "two", {"three": 3}],
            "strict": {"a": "x", "b": "pruned"},
        })),
    )
    .unwrap();
    assert_eq!(
        out["spec"],
        json!({
            "config": {"anything": {"goes": [1, 2]}, "known": {"a": "x"}},
            "raw": [1, "two", {"three": 3}],
            "strict": {"a": "x"},
        })
    );
}

#[test]
fn maps_keep_their_keys_and_prune_values() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "pools": {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"size": {"type": "integer"}}},
            },
        },
    }));
    let out = create(&v, &widget(json!({"pools": {"a": {"size": 1, "x": 2}, "b": {}}}))).unwrap();
    assert_eq!(out["spec"]["pools"], json!({"a": {"size": 1}, "b": {}}));
}

#[test]
fn nested_defaults_apply_inside_defaulted_objects() {
    let v = spec_validator(json!({
        "type": "object",
        "default": {},
        "properties": {
            "replicas": {"type": "integer", "default": 3},
            "storage": {
                "type": "object",
                "default": {},
                "properties": {
                    "size": {"type": "string", "default": "10Gi"},
                    "class": {"type": "string"},
                },
            },
        },
    }));
    let mut obj = widget(json!({}));
    obj.as_object_mut().unwrap().remove("spec");
    let out = create(&v, &obj).unwrap();
    assert_eq!(out["spec"], json!({"replicas": 3, "storage": {"size": "10Gi"}}));

    // Given values win over defaults.
    let out = create(&v, &widget(json!({"replicas": 5, "storage": {"class": "fast"}}))).unwrap();
    assert_eq!(out["spec"], json!({"replicas": 5, "storage": {"size": "10Gi", "class": "fast"}}));
}

#[test]
fn defaults_in_list_items_and_map_values() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "volumes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "mode": {"type": "string", "default": "rw"}},
                },
            },
            "pools": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"size": {"type": "integer", "default": 1}},
                },
            },
        },
    }));
    let out = create(
        &v,
        &widget(json!({"volumes": [{"name": "a"}, {"name": "b", "mode": "ro"}], "pools": {"x": {}, "y": {"size": 4}}})),
    )
    .unwrap();
    assert_eq!(
        out["spec"],
        json!({
            "volumes": [{"name": "a", "mode": "rw"}, {"name": "b", "mode": "ro"}],
            "pools": {"x": {"size": 1}, "y": {"size": 4}},
        })
    );
}

#[test]
fn defaults_happen_before_validation() {
    // A required field with a default never fails `required`.
    let v = spec_validator(json!({
        "type": "object",
        "required": ["mode"],
        "properties": {"mode": {"type": "string", "default": "auto", "enum": ["auto", "manual"]}},
    }));
    assert_eq!(create(&v, &widget(json!({}))).unwrap()["spec"]["mode"], "auto");
}

#[test]
fn nulls_are_pruned_then_defaulted() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "withDefault": {"type": "string", "default": "d"},
            "plain": {"type": "string"},
            "nullable": {"type": "string", "nullable": true, "default": "d"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }));
    let out = create(
        &v,
        &widget(json!({"withDefault": null, "plain": null, "nullable": null, "labels": {"a": null, "b": "x"}})),
    )
    .unwrap();
    // A null for a non-nullable field gets the default, or disappears; a nullable field keeps null.
    assert_eq!(out["spec"], json!({"withDefault": "d", "nullable": null, "labels": {"b": "x"}}));
}

#[test]
fn null_for_required_non_nullable_field_is_missing() {
    let v = spec_validator(json!({
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}},
    }));
    let errs = create_err(&v, &widget(json!({"name": null})));
    assert_eq!(kinds(&errs), vec![("spec.name".to_owned(), Required)]);
}

#[test]
fn prune_and_default_without_validation() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "minimum": 1},
            "mode": {"type": "string", "default": "auto"},
        },
    }));
    // Nothing is validated: replicas 0 stays.
    let out = v.prune_and_default("v1", &widget(json!({"replicas": 0, "junk": 1}))).unwrap();
    assert_eq!(out["spec"], json!({"replicas": 0, "mode": "auto"}));
    assert!(v.prune_and_default("v2", &widget(json!({}))).is_err());
}
