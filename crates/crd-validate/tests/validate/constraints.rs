//! OpenAPI value validation: one valid and one invalid object per constraint kind, with
//! the paths, kinds and texts kube-apiserver reports.

use crate::common::*;
use crd_validate::FieldErrorKind::*;
use serde_json::json;

#[test]
fn integer_bounds_with_display() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {"replicas": {"type": "integer", "minimum": 0, "maximum": 10}},
    }));
    assert!(create(&v, &widget(json!({"replicas": 3}))).is_ok());
    assert!(create(&v, &widget(json!({"replicas": 0}))).is_ok());

    let errs = create_err(&v, &widget(json!({"replicas": -1})));
    assert_eq!(kinds(&errs), vec![("spec.replicas".to_owned(), Invalid)]);
    assert_eq!(
        errs.to_string(),
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
    );

    let errs = create_err(&v, &widget(json!({"replicas": 11})));
    assert_eq!(
        errs.to_string(),
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"
    );
}

#[test]
fn exclusive_bounds_and_multiple_of() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1, "exclusiveMaximum": true},
            "step": {"type": "integer", "multipleOf": 5},
        },
    }));
    assert!(create(&v, &widget(json!({"ratio": 0.5, "step": 15}))).is_ok());

    let errs = create_err(&v, &widget(json!({"ratio": 0, "step": 7})));
    assert_eq!(
        errs.to_strings(),
        vec![
            "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0",
            "spec.step: Invalid value: 7: spec.step in body should be a multiple of 5",
        ]
    );
    let errs = create_err(&v, &widget(json!({"ratio": 1.0})));
    assert_eq!(errs.to_string(), "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1");
}

#[test]
fn integer_versus_number_types() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {"count": {"type": "integer"}, "ratio": {"type": "number"}},
    }));
    // Integral floats are integers for kube-openapi; integers are numbers.
    assert!(create(&v, &widget(json!({"count": 2.0, "ratio": 3}))).is_ok());

    let errs = create_err(&v, &widget(json!({"count": "two"})));
    assert_eq!(kinds(&errs), vec![("spec.count".to_owned(), TypeInvalid)]);
    assert_eq!(
        errs.to_string(),
        "spec.count: Invalid value: \"string\": spec.count in body must be of type integer: \"string\""
    );

    let errs = create_err(&v, &widget(json!({"count": 1.5})));
    assert!(errs.contains("spec.count", TypeInvalid));
    assert_eq!(errs.0[0].message, "spec.count in body must be of type integer: \"number\"");

    let errs = create_err(&v, &widget(json!({"ratio": true})));
    assert_eq!(
        errs.to_string(),
        "spec.ratio: Invalid value: \"boolean\": spec.ratio in body must be of type number: \"boolean\""
    );
}

#[test]
fn int32_and_int64_formats() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "small": {"type": "integer", "format": "int32"},
            "big": {"type": "integer", "format": "int64"},
        },
    }));
    assert!(create(&v, &widget(json!({"small": 2147483647_i64, "big": 9_000_000_000_i64}))).is_ok());

    // kube-apiserver reports the range error without a field path.
    let errs = create_err(&v, &widget(json!({"small": 2147483648_i64})));
    assert_eq!(kinds(&errs), vec![("".to_owned(), Invalid)]);
    assert_eq!(
        errs.to_string(),
        "<nil>: Invalid value: \"\": Checked value must be of type integer with format int32 in spec.small"
    );
}

#[test]
fn string_lengths_and_pattern() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
        },
    }));
    assert!(create(&v, &widget(json!({"name": "abc"}))).is_ok());

    let errs = create_err(&v, &widget(json!({"name": "abcdefg"})));
    assert_eq!(kinds(&errs), vec![("spec.name".to_owned(), TooLong)]);
    assert_eq!(errs.to_string(), "spec.name: Too long: may not be more than 5 bytes");

    let errs = create_err(&v, &widget(json!({"name": "a"})));
    assert_eq!(errs.to_string(), "spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long");

    let errs = create_err(&v, &widget(json!({"name": "ab1"})));
    assert_eq!(errs.to_string(), "spec.name: Invalid value: \"ab1\": spec.name in body should match '^[a-z]+$'");

    // Lengths count characters, not bytes.
    assert!(create(&v, &widget(json!({"name": "ééé"}))).is_err()); // pattern, not length
    let v = spec_validator(json!({"type": "object", "properties": {"s": {"type": "string", "maxLength": 3}}}));
    assert!(create(&v, &widget(json!({"s": "ééé"}))).is_ok());
}

#[test]
fn enum_values() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["fast", "safe"]},
            "level": {"type": "integer", "enum": [1, 2]},
        },
    }));
    assert!(create(&v, &widget(json!({"mode": "safe", "level": 2}))).is_ok());

    let errs = create_err(&v, &widget(json!({"mode": "slow"})));
    assert_eq!(kinds(&errs), vec![("spec.mode".to_owned(), NotSupported)]);
    assert_eq!(errs.to_string(), "spec.mode: Unsupported value: \"slow\": supported values: \"fast\", \"safe\"");
    let errs = create_err(&v, &widget(json!({"level": 3})));
    assert_eq!(errs.to_string(), "spec.level: Unsupported value: 3: supported values: \"1\", \"2\"");
}

#[test]
fn item_counts() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "hosts": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
        },
    }));
    assert!(create(&v, &widget(json!({"hosts": ["a", "b"]}))).is_ok());

    let errs = create_err(&v, &widget(json!({"hosts": []})));
    assert_eq!(errs.to_string(), "spec.hosts: Invalid value: 0: spec.hosts in body should have at least 1 items");
    let errs = create_err(&v, &widget(json!({"hosts": ["a", "b", "c"]})));
    assert_eq!(kinds(&errs), vec![("spec.hosts".to_owned(), TooMany)]);
    assert_eq!(errs.to_string(), "spec.hosts: Too many: 3: must have at most 2 items");
}

#[test]
fn property_counts() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "labels": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 2,
                "additionalProperties": {"type": "string"},
            },
        },
    }));
    assert!(create(&v, &widget(json!({"labels": {"a": "1"}}))).is_ok());

    let errs = create_err(&v, &widget(json!({"labels": {}})));
    assert_eq!(
        errs.to_string(),
        "spec.labels: Invalid value: 0: spec.labels in body should have at least 1 properties"
    );
    let errs = create_err(&v, &widget(json!({"labels": {"a": "1", "b": "2", "c": "3"}})));
    assert_eq!(errs.to_string(), "spec.labels: Too many: 3: must have at most 2 items");

    // Map values are validated against additionalProperties; kube-openapi joins keys with `.`.
    let errs = create_err(&v, &widget(json!({"labels": {"a": 1}})));
    assert_eq!(kinds(&errs), vec![("spec.labels.a".to_owned(), TypeInvalid)]);
}

#[test]
fn required_fields() {
    let v = validator(json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["replicas", "name"],
                "properties": {"replicas": {"type": "integer"}, "name": {"type": "string"}},
            },
        },
    }));
    assert!(create(&v, &widget(json!({"replicas": 1, "name": "a"}))).is_ok());

    let errs = create_err(&v, &widget(json!({"name": "a"})));
    assert_eq!(kinds(&errs), vec![("spec.replicas".to_owned(), Required)]);
    assert_eq!(errs.to_string(), "spec.replicas: Required value");

    let mut no_spec = widget(json!({}));
    no_spec.as_object_mut().unwrap().remove("spec");
    let errs = create_err(&v, &no_spec);
    assert_eq!(errs.to_string(), "spec: Required value");
}

#[test]
fn nested_paths_in_lists_and_maps() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "properties": {
                    "volumes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "storage": {"type": "string", "pattern": "^[0-9]+Gi$"},
                            },
                        },
                    },
                },
            },
        },
    }));
    let errs = create_err(
        &v,
        &widget(json!({"template": {"volumes": [{"name": "a", "storage": "1Gi"}, {"storage": "lots"}]}})),
    );
    assert_eq!(
        kinds(&errs),
        vec![
            ("spec.template.volumes[1].storage".to_owned(), Invalid),
            ("spec.template.volumes[1].name".to_owned(), Required),
        ]
    );
    assert!(errs.contains_path("spec.template.volumes[1].storage"));
}

#[test]
fn int_or_string() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": true},
            "surge": {
                "x-kubernetes-int-or-string": true,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "pattern": "^[0-9]+%$",
            },
        },
    }));
    assert!(create(&v, &widget(json!({"port": 8080}))).is_ok());
    assert!(create(&v, &widget(json!({"port": "http"}))).is_ok());
    assert!(create(&v, &widget(json!({"surge": "25%"}))).is_ok());
    assert!(create(&v, &widget(json!({"surge": 3}))).is_ok());

    let errs = create_err(&v, &widget(json!({"port": true})));
    assert_eq!(
        errs.to_string(),
        "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""
    );
    let errs = create_err(&v, &widget(json!({"port": 1.5})));
    assert!(errs.contains("spec.port", TypeInvalid));
    let errs = create_err(&v, &widget(json!({"surge": "lots"})));
    assert_eq!(kinds(&errs), vec![("spec.surge".to_owned(), Invalid)]);
}

#[test]
fn nullable() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "maybe": {"type": "string", "nullable": true},
            "items": {"type": "array", "items": {"type": "string"}},
        },
    }));
    let out = create(&v, &widget(json!({"maybe": null}))).unwrap();
    assert_eq!(out["spec"]["maybe"], json!(null));
    // A null item of a list cannot be pruned: it is a type error.
    let errs = create_err(&v, &widget(json!({"items": ["a", null]})));
    assert_eq!(
        errs.to_string(),
        "spec.items[1]: Invalid value: \"null\": spec.items[1] in body must be of type string: \"null\""
    );
}

#[test]
fn formats() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "ttl": {"type": "string", "format": "duration"},
            "id": {"type": "string", "format": "uuid"},
            "ip": {"type": "string", "format": "ipv4"},
            "size": {"type": "string", "format": "quantity"},
        },
    }));
    assert!(
        create(
            &v,
            &widget(json!({
                "at": "2024-05-01T10:00:00Z",
                "ttl": "1h30m",
                "id": "123e4567-e89b-12d3-a456-426614174000",
                "ip": "10.1.2.3",
                "size": "anything: an unsupported format is not checked",
            }))
        )
        .is_ok()
    );
    let errs = create_err(&v, &widget(json!({"at": "yesterday", "ip": "10.1.2"})));
    assert_eq!(
        errs.to_strings(),
        vec![
            "spec.at: Invalid value: \"yesterday\": spec.at in body must be of type date-time: \"yesterday\"",
            "spec.ip: Invalid value: \"10.1.2\": spec.ip in body must be of type ipv4: \"10.1.2\"",
        ]
    );
    assert!(errs.iter().all(|e| e.kind == TypeInvalid));
}

#[test]
fn list_type_set_duplicates() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "zones": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        },
    }));
    assert!(create(&v, &widget(json!({"zones": ["a", "b"]}))).is_ok());
    let errs = create_err(&v, &widget(json!({"zones": ["a", "b", "a", "a"]})));
    assert_eq!(kinds(&errs), vec![("spec.zones[2]".to_owned(), Duplicate)]);
    assert_eq!(errs.to_string(), "spec.zones[2]: Duplicate value: \"a\"");
}

#[test]
fn list_type_map_duplicates() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name", "protocol"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "protocol": {"type": "string", "default": "TCP"},
                        "port": {"type": "integer"},
                    },
                },
            },
        },
    }));
    assert!(
        create(&v, &widget(json!({"ports": [{"name": "a", "port": 1}, {"name": "a", "protocol": "UDP", "port": 1}]})))
            .is_ok()
    );
    // The default protocol makes the two first items collide.
    let errs = create_err(
        &v,
        &widget(json!({"ports": [{"name": "a", "port": 1}, {"name": "a", "protocol": "TCP", "port": 2}]})),
    );
    assert_eq!(kinds(&errs), vec![("spec.ports[1]".to_owned(), Duplicate)]);
    assert_eq!(errs.to_string(), "spec.ports[1]: Duplicate value: {\"name\":\"a\",\"protocol\":\"TCP\"}");
}

#[test]
fn one_of_any_of_all_of_not() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "source": {
                "type": "object",
                "properties": {"git": {"type": "string"}, "image": {"type": "string"}},
                "oneOf": [{"required": ["git"]}, {"required": ["image"]}],
            },
            "code": {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]},
            "tag": {"type": "string", "allOf": [{"minLength": 2}, {"maxLength": 4}], "not": {"enum": ["bad"]}},
        },
    }));
    assert!(create(&v, &widget(json!({"source": {"git": "x"}, "code": "bx", "tag": "ok"}))).is_ok());

    let errs = create_err(&v, &widget(json!({"source": {"git": "x", "image": "y"}})));
    assert_eq!(
        errs.to_string(),
        "<nil>: Invalid value: \"\": \"spec.source\" must validate one and only one schema (oneOf). Found 2 valid alternatives"
    );
    let errs = create_err(&v, &widget(json!({"source": {}})));
    assert_eq!(
        errs.to_strings()[0],
        "<nil>: Invalid value: \"\": \"spec.source\" must validate one and only one schema (oneOf). Found none valid"
    );
    assert!(errs.contains("spec.source.git", Required));

    let errs = create_err(&v, &widget(json!({"code": "cx"})));
    assert_eq!(
        errs.to_strings()[0],
        "<nil>: Invalid value: \"\": \"spec.code\" must validate at least one schema (anyOf)"
    );
    assert!(errs.contains("spec.code", Invalid));

    let errs = create_err(&v, &widget(json!({"tag": "x"})));
    assert!(errs.contains("spec.tag", Invalid));
    assert!(errs.to_string().contains("\"spec.tag\" must validate all the schemas (allOf)"));

    let errs = create_err(&v, &widget(json!({"tag": "bad"})));
    assert_eq!(errs.to_string(), "<nil>: Invalid value: \"\": \"spec.tag\" must not validate the schema (not)");
}

#[test]
fn several_errors_are_reported_together() {
    let v = spec_validator(json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "replicas": {"type": "integer", "minimum": 1},
            "mode": {"type": "string", "enum": ["a"]},
        },
    }));
    let errs = create_err(&v, &widget(json!({"replicas": 0, "mode": "b"})));
    assert_eq!(
        kinds(&errs),
        vec![
            ("spec.mode".to_owned(), NotSupported),
            ("spec.replicas".to_owned(), Invalid),
            ("spec.name".to_owned(), Required),
        ]
    );
    assert_eq!(
        errs.to_string(),
        "[spec.mode: Unsupported value: \"b\": supported values: \"a\", spec.replicas: Invalid value: 0: \
         spec.replicas in body should be greater than or equal to 1, spec.name: Required value]"
    );
    assert_eq!(errs.len(), 3);
    assert_eq!(errs.paths(), vec!["spec.mode", "spec.replicas", "spec.name"]);
    assert_eq!(errs.messages()[2], "");
}
