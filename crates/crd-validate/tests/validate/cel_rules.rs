//! `x-kubernetes-validations`: rules on create, transition rules on update with
//! correlation of old values, ratcheting, messages, reasons and field paths.

use crate::common::*;
use crd_validate::FieldErrorKind::*;
use serde_json::{Value, json};

fn replicas_spec() -> Value {
    json!({
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "minimum": 0},
            "maxReplicas": {"type": "integer"},
            "cluster": {"type": "string"},
        },
        "x-kubernetes-validations": [
            {"rule": "!has(self.maxReplicas) || self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"},
        ],
    })
}

#[test]
fn rule_on_create() {
    let v = spec_validator(replicas_spec());
    assert!(create(&v, &widget(json!({"replicas": 2, "maxReplicas": 3}))).is_ok());
    assert!(create(&v, &widget(json!({"replicas": 2}))).is_ok());

    let errs = create_err(&v, &widget(json!({"replicas": 4, "maxReplicas": 3})));
    assert_eq!(kinds(&errs), vec![("spec".to_owned(), Invalid)]);
    assert_eq!(errs.to_string(), "spec: Invalid value: \"object\": replicas must not exceed maxReplicas");
    assert_eq!(errs.0[0].value, Some(json!("object")));
}

#[test]
fn rule_without_message_and_on_scalars() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "cluster": {
                "type": "string",
                "x-kubernetes-validations": [{"rule": "self.startsWith('tikv-')"}],
            },
        },
    }));
    assert!(create(&v, &widget(json!({"cluster": "tikv-a"}))).is_ok());
    let errs = create_err(&v, &widget(json!({"cluster": "pd-a"})));
    assert_eq!(errs.to_string(), "spec.cluster: Invalid value: \"string\": failed rule: self.startsWith('tikv-')");
}

#[test]
fn message_expression_reason_and_field_path() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "replicas": {"type": "integer"},
            "mode": {"type": "string"},
            "backup": {"type": "object", "properties": {"bucket": {"type": "string"}}},
        },
        "x-kubernetes-validations": [
            {
                "rule": "self.replicas % 2 == 1",
                "messageExpression": "'replicas must be odd, got ' + string(self.replicas)",
                "fieldPath": ".replicas",
            },
            {
                "rule": "self.mode != 'legacy'",
                "message": "legacy mode is no longer supported",
                "reason": "FieldValueForbidden",
                "fieldPath": ".mode",
            },
            {
                "rule": "self.mode != 'backup' || has(self.backup.bucket)",
                "message": "a bucket is needed for backups",
                "reason": "FieldValueRequired",
                "fieldPath": ".backup.bucket",
            },
        ],
    }));
    assert!(create(&v, &widget(json!({"replicas": 3, "mode": "backup", "backup": {"bucket": "b"}}))).is_ok());

    let errs = create_err(&v, &widget(json!({"replicas": 2, "mode": "legacy"})));
    assert_eq!(
        errs.to_strings(),
        vec![
            "spec.replicas: Invalid value: \"object\": replicas must be odd, got 2",
            "spec.mode: Forbidden: legacy mode is no longer supported",
        ]
    );
    let errs = create_err(&v, &widget(json!({"replicas": 1, "mode": "backup", "backup": {}})));
    assert_eq!(kinds(&errs), vec![("spec.backup.bucket".to_owned(), Required)]);
    assert_eq!(errs.to_string(), "spec.backup.bucket: Required value: a bucket is needed for backups");
}

#[test]
fn evaluation_errors_are_reported() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "backup": {"type": "object", "properties": {"bucket": {"type": "string"}}},
        },
        "x-kubernetes-validations": [{"rule": "self.backup.bucket != ''", "message": "bucket must be set"}],
    }));
    let errs = create_err(&v, &widget(json!({"backup": {}})));
    assert_eq!(
        errs.to_string(),
        "spec: Invalid value: \"object\": no such key: bucket evaluating rule: bucket must be set"
    );
}

#[test]
fn immutability_transition_rule() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "cluster": {
                "type": "string",
                "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "cluster is immutable"}],
            },
            "replicas": {"type": "integer"},
        },
    }));
    let old = widget(json!({"cluster": "a", "replicas": 1}));
    // Not evaluated on create.
    assert!(create(&v, &old).is_ok());
    // Unchanged: fine, even when something else changes.
    assert!(update(&v, &widget(json!({"cluster": "a", "replicas": 2})), &old).is_ok());
    // Changed: refused.
    let errs = update_err(&v, &widget(json!({"cluster": "b", "replicas": 1})), &old);
    assert_eq!(errs.to_string(), "spec.cluster: Invalid value: \"string\": cluster is immutable");
    // Newly set (no old value to compare with): not evaluated.
    assert!(update(&v, &widget(json!({"cluster": "b"})), &widget(json!({"replicas": 1}))).is_ok());
}

fn volumes_spec() -> Value {
    json!({
        "type": "object",
        "properties": {
            "volumes": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name", "storage"],
                    "properties": {"name": {"type": "string"}, "storage": {"type": "string"}},
                    "x-kubernetes-validations": [{
                        "rule": "quantity(self.storage).compareTo(quantity(oldSelf.storage)) >= 0",
                        "message": "storage may grow, never shrink",
                    }],
                },
            },
        },
    })
}

#[test]
fn map_list_items_correlate_by_key() {
    let v = spec_validator(volumes_spec());
    let old = widget(json!({"volumes": [
        {"name": "data", "storage": "10Gi"},
        {"name": "log", "storage": "1Gi"},
    ]}));
    assert!(create(&v, &old).is_ok());

    // Reordered and grown: every item is compared with the old item of the same name.
    let grown = widget(json!({"volumes": [
        {"name": "log", "storage": "2Gi"},
        {"name": "data", "storage": "10Gi"},
    ]}));
    assert!(update(&v, &grown, &old).is_ok());

    // Reordered and shrunk: refused at the item's new position. (Compared by position,
    // "log: 2Gi" against "data: 10Gi" would also have failed, and "data: 5Gi" against
    // "log: 1Gi" would have passed.)
    let shrunk = widget(json!({"volumes": [
        {"name": "log", "storage": "2Gi"},
        {"name": "data", "storage": "5Gi"},
    ]}));
    let errs = update_err(&v, &shrunk, &old);
    assert_eq!(kinds(&errs), vec![("spec.volumes[1]".to_owned(), Invalid)]);
    assert_eq!(errs.to_string(), "spec.volumes[1]: Invalid value: \"object\": storage may grow, never shrink");

    // A new item has no old value: the transition rule does not apply to it.
    let added = widget(json!({"volumes": [
        {"name": "data", "storage": "10Gi"},
        {"name": "log", "storage": "1Gi"},
        {"name": "tmp", "storage": "1Mi"},
    ]}));
    assert!(update(&v, &added, &old).is_ok());
}

#[test]
fn transition_rules_on_uncorrelatable_items_are_refused() {
    let mut spec = volumes_spec();
    spec["properties"]["volumes"].as_object_mut().unwrap().remove("x-kubernetes-list-map-keys");
    spec["properties"]["volumes"]["x-kubernetes-list-type"] = json!("atomic");
    let err = crd_validate::CrdValidator::new(&spec_crd(spec)).unwrap_err();
    let problems = err.problems();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].path(),
        Some(
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[volumes].items.x-kubernetes-validations[0].rule"
        )
    );
    assert!(err.to_string().contains(
        "oldSelf cannot be used on the uncorrelatable portion of the schema within \
         spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[volumes]"
    ));
}

#[test]
fn root_rule_reads_metadata_name() {
    let v = validator(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}}},
        "x-kubernetes-validations": [
            {"rule": "self.metadata.name.size() <= 40", "message": "name must be at most 40 characters"},
        ],
    }));
    assert!(create(&v, &widget(json!({}))).is_ok());

    let mut long = widget(json!({}));
    long["metadata"]["name"] = json!("a".repeat(41));
    let errs = create_err(&v, &long);
    // kube-apiserver reports root-level rules without a path.
    assert_eq!(kinds(&errs), vec![("".to_owned(), Invalid)]);
    assert_eq!(errs.to_string(), "<nil>: Invalid value: \"object\": name must be at most 40 characters");
}

#[test]
fn root_rules_see_only_name_and_generate_name_of_metadata() {
    let err = schema_error(json!({
        "type": "object",
        "properties": {"spec": {"type": "object"}},
        "x-kubernetes-validations": [{"rule": "has(self.metadata.labels)"}],
    }));
    assert!(err.to_string().contains("undefined field 'labels'"), "{err}");
}

#[test]
fn one_way_switch() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {"tls": {"type": "boolean"}},
        "x-kubernetes-validations": [{
            "rule": "!has(oldSelf.tls) || !oldSelf.tls || (has(self.tls) && self.tls)",
            "message": "TLS cannot be disabled once enabled",
        }],
    }));
    let off = widget(json!({"tls": false}));
    let on = widget(json!({"tls": true}));
    let unset = widget(json!({}));
    assert!(update(&v, &on, &off).is_ok());
    assert!(update(&v, &on, &unset).is_ok());
    assert!(update(&v, &off, &unset).is_ok());
    assert!(update(&v, &on, &on).is_ok());
    let errs = update_err(&v, &off, &on);
    assert_eq!(errs.to_string(), "spec: Invalid value: \"object\": TLS cannot be disabled once enabled");
    let errs = update_err(&v, &unset, &on);
    assert!(errs.contains("spec", Invalid));
}

#[test]
fn optional_old_self_runs_on_create_too() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {"version": {"type": "string"}},
        "x-kubernetes-validations": [{
            "rule": "oldSelf.hasValue() ? self.version >= oldSelf.value().version : self.version.startsWith('v')",
            "message": "version must start with v and never go back",
            "optionalOldSelf": true,
        }],
    }));
    assert!(create(&v, &widget(json!({"version": "v1"}))).is_ok());
    assert!(create_err(&v, &widget(json!({"version": "1"}))).contains("spec", Invalid));
    assert!(update(&v, &widget(json!({"version": "v2"})), &widget(json!({"version": "v1"}))).is_ok());
    assert!(
        update_err(&v, &widget(json!({"version": "v1"})), &widget(json!({"version": "v2"}))).contains("spec", Invalid)
    );
}

#[test]
fn unchanged_values_are_ratcheted_on_update() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 3},
            "replicas": {"type": "integer"},
            "zone": {"type": "string", "x-kubernetes-validations": [{"rule": "self != 'old'", "message": "zone old is retired"}]},
        },
    }));
    // Stored before the rules were tightened.
    let old = widget(json!({"name": "abc", "zone": "old", "replicas": 1}));
    assert_eq!(create_err(&v, &old).paths(), vec!["spec.zone"]);
    let old_long = widget(json!({"name": "toolong", "zone": "a", "replicas": 1}));
    assert_eq!(create_err(&v, &old_long).paths(), vec!["spec.name", ""]);
    // Other fields may change while the invalid ones stay as they were.
    assert!(update(&v, &widget(json!({"name": "abc", "zone": "old", "replicas": 2})), &old).is_ok());
    assert!(update(&v, &widget(json!({"name": "toolong", "zone": "a", "replicas": 2})), &old_long).is_ok());
    // Touching an invalid field brings its errors back.
    let errs = update_err(&v, &widget(json!({"name": "toolonger", "zone": "a", "replicas": 2})), &old_long);
    assert_eq!(kinds(&errs), vec![("spec.name".to_owned(), TooLong), ("".to_owned(), Invalid)]);
    let errs = update_err(&v, &widget(json!({"name": "abc", "zone": "old", "replicas": 2})), &old_long);
    assert_eq!(errs.to_string(), "spec.zone: Invalid value: \"string\": zone old is retired");
}

#[test]
fn blocking_schema_errors_skip_cel() {
    let v = spec_validator(json!({
        "type": "object",
        "required": ["cluster"],
        "properties": {"cluster": {"type": "string"}, "replicas": {"type": "integer", "minimum": 1}},
        "x-kubernetes-validations": [{"rule": "self.replicas < 10", "message": "too many replicas"}],
    }));
    let errs = create_err(&v, &widget(json!({"replicas": 20})));
    assert_eq!(
        errs.to_string(),
        "[spec.cluster: Required value, <nil>: Invalid value: null: some validation rules were not checked \
         because the object was invalid; correct the existing errors to complete validation]"
    );
}

#[test]
fn schema_and_cel_errors_from_several_places_together() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "minimum": 1},
            "cluster": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() > 2", "message": "cluster name too short"}]},
            "pools": {
                "type": "object",
                "additionalProperties": {
                    "type": "integer",
                    "x-kubernetes-validations": [{"rule": "self % 2 == 0", "message": "pool sizes are even"}],
                },
            },
        },
        "x-kubernetes-validations": [{"rule": "self.replicas <= 5", "message": "at most 5 replicas"}],
    }));
    let mut obj = widget(json!({"replicas": 0, "cluster": "a", "pools": {"x": 2, "y": 3}}));
    obj["metadata"]["name"] = json!("Not_A_Name");
    let errs = create_err(&v, &obj);
    assert_eq!(
        kinds(&errs),
        vec![
            ("metadata.name".to_owned(), Invalid),
            ("spec.replicas".to_owned(), Invalid),
            ("spec.cluster".to_owned(), Invalid),
            ("spec.pools[y]".to_owned(), Invalid),
        ]
    );
    assert_eq!(errs.0[3].to_string(), "spec.pools[y]: Invalid value: \"integer\": pool sizes are even");

    let obj = widget(json!({"replicas": 9, "cluster": "a"}));
    let errs = create_err(&v, &obj);
    assert_eq!(errs.paths(), vec!["spec", "spec.cluster"]);
}

#[test]
fn nulls_are_not_given_to_rules() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "note": {"type": "string", "nullable": true, "x-kubernetes-validations": [{"rule": "self.size() > 0"}]},
        },
    }));
    assert!(create(&v, &widget(json!({"note": null}))).is_ok());
    assert!(create(&v, &widget(json!({"note": ""}))).is_err());
}

#[test]
fn property_names_are_escaped() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "namespace": {"type": "string"},
            "max-size": {"type": "integer"},
            "a.b": {"type": "integer"},
        },
        "x-kubernetes-validations": [{"rule": "self.__namespace__ != '' && self.max__dash__size > self.a__dot__b"}],
    }));
    assert!(create(&v, &widget(json!({"namespace": "x", "max-size": 2, "a.b": 1}))).is_ok());
    assert!(create(&v, &widget(json!({"namespace": "x", "max-size": 1, "a.b": 1}))).is_err());
}

#[test]
fn formats_give_typed_values() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "timeout": {"type": "string", "format": "duration"},
            "notAfter": {"type": "string", "format": "date-time"},
            "ratio": {"type": "number"},
        },
        "x-kubernetes-validations": [
            {"rule": "!has(self.timeout) || self.timeout <= duration('1h')", "message": "timeout at most 1h"},
            {"rule": "!has(self.notAfter) || self.notAfter > timestamp('2020-01-01T00:00:00Z')", "message": "too old"},
            {"rule": "!has(self.ratio) || self.ratio < 1.0", "message": "ratio below 1"},
        ],
    }));
    assert!(create(&v, &widget(json!({"timeout": "30m", "notAfter": "2024-01-01T00:00:00Z", "ratio": 0}))).is_ok());
    let errs = create_err(&v, &widget(json!({"timeout": "2h", "notAfter": "2019-01-01T00:00:00Z", "ratio": 1})));
    assert_eq!(errs.messages(), vec!["timeout at most 1h", "too old", "ratio below 1"]);
}

#[test]
fn list_and_map_rules() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "hosts": {
                "type": "array",
                "items": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(h, h.endsWith('.svc'))", "message": "hosts must be services"}],
            },
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "!('forbidden' in self)", "message": "label forbidden"}],
            },
        },
    }));
    assert!(create(&v, &widget(json!({"hosts": ["a.svc"], "labels": {"ok": "1"}}))).is_ok());
    let errs = create_err(&v, &widget(json!({"hosts": ["a.svc", "b"], "labels": {"forbidden": "1"}})));
    assert_eq!(
        errs.to_strings(),
        vec![
            "spec.hosts: Invalid value: \"array\": hosts must be services",
            "spec.labels: Invalid value: \"object\": label forbidden",
        ]
    );
}

#[test]
fn unchanged_map_list_items_ratchet_while_others_change() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "volumes": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
                    "x-kubernetes-validations": [{"rule": "self.size <= 100", "message": "at most 100"}],
                },
            },
        },
    }));
    let old = widget(json!({"volumes": [{"name": "a", "size": 500}, {"name": "b", "size": 1}]}));
    // "a" is unchanged (though now invalid), "b" changes and moves: admitted.
    let new = widget(json!({"volumes": [{"name": "b", "size": 2}, {"name": "a", "size": 500}]}));
    assert!(update(&v, &new, &old).is_ok());
    // A changed item is checked.
    let new = widget(json!({"volumes": [{"name": "b", "size": 200}, {"name": "a", "size": 500}]}));
    let errs = update_err(&v, &new, &old);
    assert_eq!(errs.paths(), vec!["spec.volumes[0]"]);
}

#[test]
fn list_uniqueness_is_not_held_against_lists_that_were_already_broken() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "zones": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "replicas": {"type": "integer"},
        },
    }));
    let old = widget(json!({"zones": ["a", "a"], "replicas": 1}));
    assert!(create(&v, &old).is_err());
    assert!(update(&v, &widget(json!({"zones": ["a", "a"], "replicas": 2})), &old).is_ok());
    let fixed = widget(json!({"zones": ["a"], "replicas": 2}));
    let errs = update_err(&v, &widget(json!({"zones": ["b", "b"]})), &fixed);
    assert_eq!(kinds(&errs), vec![("spec.zones[1]".to_owned(), Duplicate)]);
}

#[test]
fn duplicate_reason_and_message_expression_fallback() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {"names": {"type": "array", "items": {"type": "string"}}},
        "x-kubernetes-validations": [
            {
                "rule": "self.names.all(n, self.names.exists_one(m, m == n))",
                "reason": "FieldValueDuplicate",
                "fieldPath": ".names",
            },
            {
                "rule": "self.names.size() < 3",
                "message": "too many names",
                "messageExpression": "'at most ' + string(6 / (self.names.size() - 3)) + ' names'",
            },
        ],
    }));
    let errs = create_err(&v, &widget(json!({"names": ["a", "b", "a"]})));
    assert_eq!(
        errs.to_strings(),
        vec![
            "spec.names: Duplicate value: \"object\"",
            // The message expression fails to evaluate, so the static message is used.
            "spec: Invalid value: \"object\": too many names",
        ]
    );
}

#[test]
fn rules_at_an_embedded_resource_see_its_type_meta() {
    let v = spec_validator(json!({
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": true,
                "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}},
                "x-kubernetes-validations": [
                    {"rule": "self.kind == 'ConfigMap' && self.metadata.name.startsWith('w-')", "message": "a w- ConfigMap"},
                ],
            },
        },
    }));
    let template = |kind: &str, name: &str| {
        widget(json!({"template": {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "data": {"a": "b"}}}))
    };
    assert!(create(&v, &template("ConfigMap", "w-1")).is_ok());
    let errs = create_err(&v, &template("Secret", "w-1"));
    assert_eq!(errs.to_string(), "spec.template: Invalid value: \"object\": a w- ConfigMap");
}

#[test]
fn rules_at_the_root_see_the_fields_they_and_their_messages_read() {
    // Only what the rules read is bound (a rule on the name does not have the whole
    // object built for it); a message reading another field still sees it.
    let v = validator(json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
        },
        "x-kubernetes-validations": [
            {"rule": "self.metadata.name.size() <= 3", "message": "name too long"},
            {
                "rule": "self.spec.replicas < 5",
                "messageExpression": "'too many replicas while ' + self.status.phase",
            },
        ],
    }));
    let object = |name: &str, replicas: i64, phase: &str| {
        json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas}, "status": {"phase": phase},
        })
    };
    assert!(create(&v, &object("w", 1, "Good")).is_ok());
    let errs = create_err(&v, &object("long", 7, "Bad"));
    assert_eq!(
        errs.to_string(),
        "[<nil>: Invalid value: \"object\": name too long, <nil>: Invalid value: \"object\": too many replicas while Bad]"
    );
}
