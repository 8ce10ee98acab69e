//! The CRDs as an API server sees them: valid `apiextensions.k8s.io/v1` objects with
//! structural schemas whose CEL rules compile, small enough for client-side apply, and
//! admitting exactly what they should.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic with a message on purpose

use crd_validate::{CrdValidator, FieldErrors};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Value, json};
use tikv_operator_api::{Cluster, PD, PDGroup, TiKV, TiKVGroup, crds};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn validator(crd: CustomResourceDefinition) -> CrdValidator {
    CrdValidator::new(&crd).unwrap_or_else(|e| panic!("{:?} is not a valid CRD: {e}", crd.metadata.name))
}

fn create(crd: CustomResourceDefinition, object: Value) -> Result<Value, FieldErrors> {
    validator(crd).validate("v1alpha1", &object, None)
}

fn update(crd: CustomResourceDefinition, old: Value, new: Value) -> Result<Value, FieldErrors> {
    let v = validator(crd);
    let old = v.validate("v1alpha1", &old, None).unwrap_or_else(|e| panic!("old object refused: {e}"));
    v.validate("v1alpha1", &new, Some(&old))
}

#[track_caller]
fn refused(result: Result<Value, FieldErrors>, path: &str, message_part: &str) {
    match result {
        Ok(object) => panic!("expected a refusal at {path}, admitted: {object:#}"),
        Err(errors) => {
            assert!(
                errors.iter().any(|e| e.path == path && e.to_string().contains(message_part)),
                "expected an error at {path} containing {message_part:?}, got: {errors}"
            );
        }
    }
}

/// The object is refused with exactly one error, and that error reads `expected`.
#[track_caller]
fn refused_with_only(result: Result<Value, FieldErrors>, expected: &str) {
    match result {
        Ok(object) => panic!("expected a refusal ({expected}), admitted: {object:#}"),
        Err(errors) => assert_eq!(errors.to_strings(), [expected], "one error, reading exactly so"),
    }
}

#[track_caller]
fn admitted(result: Result<Value, FieldErrors>) -> Value {
    result.unwrap_or_else(|errors| panic!("expected the object to be admitted, got: {errors}"))
}

fn with(mut object: Value, pointer: &str, value: Value) -> Value {
    set_pointer(&mut object, pointer, value);
    object
}

/// Sets the value at a JSON pointer, creating missing objects on the way; an array
/// index equal to the length appends.
fn set_pointer(object: &mut Value, pointer: &str, value: Value) {
    let mut target = object;
    let mut keys = pointer.trim_start_matches('/').split('/').peekable();
    while let Some(key) = keys.next() {
        let last = keys.peek().is_none();
        target = match target {
            Value::Array(items) => {
                let index: usize = key.parse().expect("array index");
                if index == items.len() {
                    items.push(Value::Null);
                }
                &mut items[index]
            }
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                let map = other.as_object_mut().unwrap();
                map.entry(key.to_string()).or_insert_with(|| if last { Value::Null } else { json!({}) })
            }
        };
    }
    *target = value;
}

fn without(mut object: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    object.pointer_mut(parent).and_then(Value::as_object_mut).expect("parent object").remove(key);
    object
}

fn cluster() -> Value {
    json!({"apiVersion": "core.tikv.org/v1alpha1", "kind": "Cluster", "metadata": {"name": "basic", "namespace": "db"}, "spec": {}})
}

fn pd_template() -> Value {
    json!({
        "version": "v8.5.0",
        "config": "[replication]\nmax-replicas = 3\n",
        "volumes": [{"name": "data", "storage": "10Gi"}]
    })
}

fn tikv_template() -> Value {
    json!({
        "version": "v8.5.0",
        "resources": {"cpu": "2", "memory": "4Gi"},
        "volumes": [
            {"name": "data", "storage": "100Gi", "storageClassName": "fast"},
            {"name": "raft", "mountPath": "/var/lib/raft", "storage": "10Gi"}
        ]
    })
}

fn pd_group() -> Value {
    json!({
        "apiVersion": "core.tikv.org/v1alpha1", "kind": "PDGroup",
        "metadata": {"name": "pd", "namespace": "db"},
        "spec": {"cluster": {"name": "basic"}, "replicas": 3, "template": {"spec": pd_template()}}
    })
}

fn tikv_group() -> Value {
    json!({
        "apiVersion": "core.tikv.org/v1alpha1", "kind": "TiKVGroup",
        "metadata": {"name": "tikv", "namespace": "db"},
        "spec": {
            "cluster": {"name": "basic"}, "replicas": 3,
            "schedulePolicies": [{"type": "EvenlySpread", "evenlySpread": {"topologies": [
                {"topology": {"topology.kubernetes.io/zone": "a"}},
                {"topology": {"topology.kubernetes.io/zone": "b"}, "weight": 2}
            ]}}],
            "template": {"metadata": {"labels": {"team": "storage"}}, "spec": tikv_template()}
        }
    })
}

fn pd() -> Value {
    let mut spec = pd_template();
    let extra = json!({"cluster": {"name": "basic"}, "subdomain": "pd-pd-peer", "topology": {"topology.kubernetes.io/zone": "a"}});
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({"apiVersion": "core.tikv.org/v1alpha1", "kind": "PD", "metadata": {"name": "pd-ab12cd", "namespace": "db"}, "spec": spec})
}

fn tikv() -> Value {
    let mut spec = tikv_template();
    let extra = json!({"cluster": {"name": "basic"}, "subdomain": "tikv-tikv-peer", "topology": {"topology.kubernetes.io/zone": "a"}});
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({"apiVersion": "core.tikv.org/v1alpha1", "kind": "TiKV", "metadata": {"name": "tikv-ab12cd", "namespace": "db"}, "spec": spec})
}

// ---- the CRD objects themselves

#[test]
fn every_crd_is_structural_and_its_rules_compile() {
    for crd in crds::all() {
        validator(crd);
    }
}

#[test]
fn crds_have_the_names_scopes_and_subresources_kubectl_relies_on() {
    let expected = [
        ("clusters.core.tikv.org", "Cluster", vec!["tkc"], false),
        ("pdgroups.core.tikv.org", "PDGroup", vec!["pdg"], true),
        ("pds.core.tikv.org", "PD", vec![], false),
        ("tikvgroups.core.tikv.org", "TiKVGroup", vec!["kvg"], true),
        ("tikvs.core.tikv.org", "TiKV", vec![], false),
    ];
    let all = crds::all();
    assert_eq!(all.len(), expected.len());
    for (crd, (name, kind, short_names, scalable)) in all.iter().zip(expected) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.group, "core.tikv.org");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.names.short_names.clone().unwrap_or_default(), short_names);
        assert_eq!(crd.spec.names.categories.clone().unwrap_or_default(), vec!["tikv-cluster".to_string()]);
        assert_eq!(crd.spec.versions.len(), 1);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.served && version.storage);
        let subresources = version.subresources.as_ref().expect("subresources");
        assert!(subresources.status.is_some(), "{kind} has no status subresource");
        match (&subresources.scale, scalable) {
            (Some(scale), true) => {
                assert_eq!(scale.spec_replicas_path, ".spec.replicas");
                assert_eq!(scale.status_replicas_path, ".status.replicas");
                assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));
            }
            (None, false) => {}
            (scale, _) => panic!("{kind}: unexpected scale subresource {scale:?}"),
        }
        let columns: Vec<_> = version.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
        assert!(columns.contains(&"Ready") && columns.contains(&"Age"), "{kind} columns: {columns:?}");
    }
}

#[test]
fn categories_do_not_shadow_resource_names() {
    // kubectl expands a category before it resolves resource names, so a category named
    // like a resource would make `kubectl get <resource>` list the whole category.
    let all = crds::all();
    let names: Vec<String> = all
        .iter()
        .flat_map(|crd| {
            let n = &crd.spec.names;
            let mut names = vec![n.plural.clone(), n.kind.to_lowercase()];
            names.extend(n.singular.clone());
            names.extend(n.short_names.clone().unwrap_or_default());
            names
        })
        .collect();
    for crd in &all {
        for category in crd.spec.names.categories.iter().flatten() {
            assert!(!names.contains(category), "category {category} shadows a resource name");
        }
    }
}

#[test]
fn crds_fit_client_side_apply() {
    // kubectl apply stores the whole object as JSON in an annotation limited to 256 KiB.
    for crd in crds::all() {
        let size = serde_json::to_vec(&crd).unwrap().len();
        assert!(size < 128 * 1024, "{:?} is {size} bytes", crd.metadata.name);
    }
}

#[test]
fn deploy_crds_match_the_code() {
    for crd in crds::all() {
        let path = format!("{WORKSPACE}/deploy/crds/{}", crds::file_name(&crd));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            on_disk,
            crds::to_yaml(&crd).unwrap(),
            "{path} is stale: run `cargo run -- crds --out-dir deploy/crds`"
        );
        let parsed: CustomResourceDefinition = serde_saphyr::from_str(&on_disk).unwrap();
        assert_eq!(parsed, crd, "{path} does not read back as the same CRD");
    }
}

// ---- examples and round trips

#[test]
fn examples_are_admitted_and_read_back_as_typed_objects() {
    let dir = format!("{WORKSPACE}/examples/basic");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let object: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let kind = object["kind"].as_str().unwrap().to_string();
        let crd = crds::all().into_iter().find(|c| c.spec.names.kind == kind).unwrap();
        let admitted = admitted(create(crd, object));
        match kind.as_str() {
            "Cluster" => round_trip::<Cluster>(&admitted),
            "PDGroup" => round_trip::<PDGroup>(&admitted),
            "TiKVGroup" => round_trip::<TiKVGroup>(&admitted),
            other => panic!("unexpected kind {other} in {}", path.display()),
        }
        kinds.push(kind);
    }
    kinds.sort();
    assert_eq!(kinds, ["Cluster", "PDGroup", "TiKVGroup"]);
}

/// What the API server stores (defaulted) deserialises, and serialises back unchanged.
fn round_trip<K: serde::de::DeserializeOwned + serde::Serialize>(stored: &Value) {
    let typed: K = serde_json::from_value(stored.clone()).unwrap_or_else(|e| panic!("{e}: {stored:#}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(&back, stored);
}

#[test]
fn realistic_objects_round_trip_through_the_typed_structs() {
    let with_status = |mut object: Value, status: Value| {
        object["status"] = status;
        object
    };
    let conditions = json!([{"type": "Ready", "status": "True", "reason": "Ready", "message": "", "observedGeneration": 2, "lastTransitionTime": "2026-11-25T10:00:00Z"}]);
    let group_status = json!({"conditions": conditions, "observedGeneration": 2, "currentRevision": "tikv-tikv-5d8f", "updateRevision": "tikv-tikv-5d8f",
        "version": "v8.5.0", "selector": "tikv.org/group=tikv", "replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3});
    round_trip::<Cluster>(&admitted(create(
        Cluster::crd(),
        with_status(
            cluster(),
            json!({"conditions": conditions, "pd": "http://pd-pd.db:2379", "id": "7473619425431359123", "components": [{"kind": "PD", "replicas": 3, "readyReplicas": 3}]}),
        ),
    )));
    round_trip::<PDGroup>(&admitted(create(PDGroup::crd(), with_status(pd_group(), group_status.clone()))));
    round_trip::<TiKVGroup>(&admitted(create(TiKVGroup::crd(), with_status(tikv_group(), group_status))));
    round_trip::<PD>(&admitted(create(
        PD::crd(),
        with_status(pd(), json!({"id": "18446744073709551615", "isLeader": true, "conditions": conditions})),
    )));
    let stored = admitted(create(
        TiKV::crd(),
        with_status(tikv(), json!({"id": "9007199254740993", "state": "Serving", "conditions": conditions})),
    ));
    round_trip::<TiKV>(&stored);
    let typed: TiKV = serde_json::from_value(stored).unwrap();
    // u64 IDs above 2^53 survive because they are strings.
    assert_eq!(typed.status.unwrap().id.as_deref(), Some("9007199254740993"));
}

// ---- defaults and pruning

#[test]
fn defaults_are_applied_at_admission() {
    let c = admitted(create(Cluster::crd(), cluster()));
    assert_eq!(c["spec"]["deletionPolicy"], "Retain");
    assert_eq!(c["spec"]["upgradePolicy"], "Default");
    assert_eq!(c["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(c["spec"]["paused"], false);

    let g = admitted(create(TiKVGroup::crd(), tikv_group()));
    assert_eq!(g["spec"]["minReadySeconds"], 5);
    assert_eq!(g["spec"]["template"]["spec"]["server"]["ports"], json!({"client": 20160, "status": 20180}));
    assert_eq!(g["spec"]["template"]["spec"]["updateStrategy"]["config"], "Restart");
    assert_eq!(g["spec"]["schedulePolicies"][0]["evenlySpread"]["topologies"][0]["weight"], 1);
    assert_eq!(g["spec"]["schedulePolicies"][0]["evenlySpread"]["topologies"][1]["weight"], 2);

    assert_eq!(g["spec"]["maxUnavailable"], 1);
    assert_eq!(g["spec"]["maxSurge"], 0);
    assert_eq!(g["spec"]["scaleInParallelism"], 1);

    let p = admitted(create(PDGroup::crd(), pd_group()));
    assert_eq!(p["spec"]["bootstrapped"], false);
    assert_eq!(p["spec"]["maxUnavailable"], 1);
    assert_eq!(p["spec"]["maxSurge"], 0);
    assert!(p["spec"].get("scaleInParallelism").is_none(), "PD members leave one at a time");
    assert_eq!(p["spec"]["template"]["spec"]["server"]["ports"], json!({"client": 2379, "peer": 2380}));
}

#[test]
fn unknown_fields_are_pruned_but_overlays_keep_theirs() {
    let object = with(tikv_group(), "/spec/surprise", json!(true));
    let object = with(
        object,
        "/spec/template/spec/overlay",
        json!({"pod": {"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}},
               "volumeClaims": [{"name": "data", "spec": {"volumeMode": "Filesystem"}}]}),
    );
    let stored = admitted(create(TiKVGroup::crd(), object));
    assert!(stored["spec"].get("surprise").is_none());
    assert_eq!(stored["spec"]["template"]["spec"]["overlay"]["pod"]["spec"]["tolerations"][0]["key"], "dedicated");
    assert_eq!(stored["spec"]["template"]["spec"]["overlay"]["volumeClaims"][0]["spec"]["volumeMode"], "Filesystem");
}

// ---- names

#[test]
fn name_lengths_keep_generated_names_valid() {
    let named = |object: Value, name: &str| with(object, "/metadata/name", json!(name));
    admitted(create(Cluster::crd(), named(cluster(), &"c".repeat(37))));
    refused(create(Cluster::crd(), named(cluster(), &"c".repeat(38))), "", "at most 37 characters");
    admitted(create(PDGroup::crd(), named(pd_group(), &"g".repeat(40))));
    refused(create(PDGroup::crd(), named(pd_group(), &"g".repeat(41))), "", "at most 40 characters");
    refused(create(TiKVGroup::crd(), named(tikv_group(), &"g".repeat(41))), "", "at most 40 characters");
    admitted(create(TiKV::crd(), named(tikv(), &"i".repeat(47))));
    refused(create(TiKV::crd(), named(tikv(), &"i".repeat(48))), "", "at most 47 characters");
    refused(create(PD::crd(), named(pd(), &"i".repeat(48))), "", "at most 47 characters");
}

#[test]
fn group_names_must_be_usable_as_service_names() {
    refused(create(TiKVGroup::crd(), with(tikv_group(), "/metadata/name", json!("1kv"))), "", "DNS label");
    refused(create(PDGroup::crd(), with(pd_group(), "/metadata/name", json!("pd.a"))), "", "DNS label");
}

// ---- spec constraints

#[test]
fn tikv_replicas_may_be_zero_but_not_negative() {
    admitted(create(TiKVGroup::crd(), with(tikv_group(), "/spec/replicas", json!(0))));
    admitted(update(TiKVGroup::crd(), tikv_group(), with(tikv_group(), "/spec/replicas", json!(0))));
    refused(
        create(TiKVGroup::crd(), with(tikv_group(), "/spec/replicas", json!(-1))),
        "spec.replicas",
        "greater than or equal to 0",
    );
}

#[test]
fn a_pd_group_needs_at_least_one_member() {
    let expected = "spec.replicas: Invalid value: \"integer\": replicas must be at least 1: a PD cluster cannot run without members";
    refused_with_only(create(PDGroup::crd(), with(pd_group(), "/spec/replicas", json!(0))), expected);
    // (a negative count also fails kube-apiserver's own check of the scale subresource's path)
    refused(create(PDGroup::crd(), with(pd_group(), "/spec/replicas", json!(-1))), "spec.replicas", "at least 1");
    // scaling an existing group down to nothing is refused the same way
    refused_with_only(update(PDGroup::crd(), pd_group(), with(pd_group(), "/spec/replicas", json!(0))), expected);
    admitted(create(PDGroup::crd(), with(pd_group(), "/spec/replicas", json!(1))));
    admitted(update(PDGroup::crd(), pd_group(), with(pd_group(), "/spec/replicas", json!(1))));
}

#[test]
fn version_must_be_a_semantic_version() {
    for good in ["v8.5.0", "8.5.0", "v8.5.0-beta.1", "v7.1.0+build.3"] {
        admitted(create(TiKVGroup::crd(), with(tikv_group(), "/spec/template/spec/version", json!(good))));
    }
    const MESSAGE: &str = "must be a semantic version such as v8.5.0 (major.minor.patch, optionally with a leading v and a -prerelease or +build suffix)";
    for bad in ["latest", "v8.5", "8.05.0", "v8.5.0.1", "", "v8.5.0-", "v8.5.0+"] {
        // the rule's message, not the regular expression behind it
        refused_with_only(
            create(TiKVGroup::crd(), with(tikv_group(), "/spec/template/spec/version", json!(bad))),
            &format!("spec.template.spec.version: Invalid value: \"string\": {MESSAGE}"),
        );
    }
    refused_with_only(
        create(PDGroup::crd(), with(pd_group(), "/spec/template/spec/version", json!("v8"))),
        &format!("spec.template.spec.version: Invalid value: \"string\": {MESSAGE}"),
    );
    refused_with_only(
        create(PD::crd(), with(pd(), "/spec/version", json!("nightly"))),
        &format!("spec.version: Invalid value: \"string\": {MESSAGE}"),
    );
    refused_with_only(
        update(TiKV::crd(), tikv(), with(tikv(), "/spec/version", json!("8.5"))),
        &format!("spec.version: Invalid value: \"string\": {MESSAGE}"),
    );
}

#[test]
fn templates_need_a_data_volume_and_mount_paths_for_the_others() {
    let no_data = with(
        tikv_group(),
        "/spec/template/spec/volumes",
        json!([{"name": "raft", "mountPath": "/raft", "storage": "1Gi"}]),
    );
    refused(create(TiKVGroup::crd(), no_data), "spec.template.spec", "one named data");
    let no_mount = with(tikv_group(), "/spec/template/spec/volumes/1", json!({"name": "raft", "storage": "1Gi"}));
    refused(create(TiKVGroup::crd(), no_mount), "spec.template.spec.volumes[1]", "mountPath is required");
    let reserved = with(tikv_group(), "/spec/template/spec/volumes/1/name", json!("tikv-vol-x"));
    refused(create(TiKVGroup::crd(), reserved), "spec.template.spec.volumes[1].name", "reserved");
    let duplicate = with(tikv_group(), "/spec/template/spec/volumes/1/name", json!("data"));
    refused(create(TiKVGroup::crd(), duplicate), "spec.template.spec.volumes[1]", "Duplicate");
}

#[test]
fn an_invalid_quantity_gets_one_readable_message() {
    // On update the never-shrink rule also sees the value; it must not add an evaluation
    // error of its own next to the quantity message.
    let storage =
        "spec.template.spec.volumes[0].storage: Invalid value: \"string\": storage must be a quantity such as 100Gi";
    let bad_storage = with(tikv_group(), "/spec/template/spec/volumes/0/storage", json!("10Gix"));
    refused_with_only(create(TiKVGroup::crd(), bad_storage.clone()), storage);
    refused_with_only(update(TiKVGroup::crd(), tikv_group(), bad_storage), storage);
    refused_with_only(
        update(PD::crd(), pd(), with(pd(), "/spec/volumes/0/storage", json!("ten gigs"))),
        "spec.volumes[0].storage: Invalid value: \"string\": storage must be a quantity such as 100Gi",
    );
    for (field, bad, message) in [
        ("cpu", "2 cores", "cpu must be a quantity such as 500m or 2"),
        ("memory", "4Gix", "memory must be a quantity such as 4Gi"),
    ] {
        let expected = format!("spec.template.spec.resources.{field}: Invalid value: \"string\": {message}");
        let object = with(tikv_group(), &format!("/spec/template/spec/resources/{field}"), json!(bad));
        refused_with_only(create(TiKVGroup::crd(), object.clone()), &expected);
        refused_with_only(update(TiKVGroup::crd(), tikv_group(), object), &expected);
    }
}

#[test]
fn quantities_are_checked() {
    refused(
        create(TiKVGroup::crd(), with(tikv_group(), "/spec/template/spec/volumes/0/storage", json!("lots"))),
        "spec.template.spec.volumes[0].storage",
        "quantity",
    );
    refused(
        create(TiKVGroup::crd(), with(tikv_group(), "/spec/template/spec/resources/cpu", json!("two"))),
        "spec.template.spec.resources.cpu",
        "quantity",
    );
    admitted(create(TiKVGroup::crd(), with(tikv_group(), "/spec/template/spec/resources/cpu", json!("1500m"))));
}

#[test]
fn enums_and_bounds_are_checked() {
    refused(
        create(
            TiKVGroup::crd(),
            with(tikv_group(), "/spec/template/spec/updateStrategy", json!({"config": "Sometimes"})),
        ),
        "spec.template.spec.updateStrategy.config",
        "Unsupported value",
    );
    refused(
        create(Cluster::crd(), with(cluster(), "/spec/deletionPolicy", json!("Shred"))),
        "spec.deletionPolicy",
        "Unsupported value",
    );
    admitted(create(Cluster::crd(), with(cluster(), "/spec/deletionPolicy", json!("Delete"))));
    refused(
        create(Cluster::crd(), with(cluster(), "/spec/revisionHistoryLimit", json!(-1))),
        "spec.revisionHistoryLimit",
        "greater than or equal to 0",
    );
    refused(
        create(
            TiKVGroup::crd(),
            with(tikv_group(), "/spec/schedulePolicies/0/evenlySpread/topologies/0/weight", json!(0)),
        ),
        "spec.schedulePolicies[0].evenlySpread.topologies[0].weight",
        "greater than or equal to 1",
    );
    refused(
        create(TiKVGroup::crd(), with(tikv_group(), "/spec/template/spec/server/ports", json!({"client": 70000}))),
        "spec.template.spec.server.ports.client",
        "less than or equal to 65535",
    );
    refused(
        create(TiKVGroup::crd(), with(tikv_group(), "/spec/schedulePolicies/0", json!({"type": "EvenlySpread"}))),
        "spec.schedulePolicies[0]",
        "evenlySpread is required",
    );
}

#[test]
fn update_and_scale_in_budgets_are_bounded() {
    for (crd, group) in [(TiKVGroup::crd(), tikv_group()), (PDGroup::crd(), pd_group())] {
        refused(
            create(crd.clone(), with(group.clone(), "/spec/maxUnavailable", json!(0))),
            "spec.maxUnavailable",
            "greater than or equal to 1",
        );
        refused(
            create(crd.clone(), with(group.clone(), "/spec/maxSurge", json!(-1))),
            "spec.maxSurge",
            "greater than or equal to 0",
        );
        let wider = with(with(group.clone(), "/spec/maxUnavailable", json!(2)), "/spec/maxSurge", json!(1));
        let stored = admitted(update(crd, group, wider));
        assert_eq!((&stored["spec"]["maxUnavailable"], &stored["spec"]["maxSurge"]), (&json!(2), &json!(1)));
    }
    refused(
        create(TiKVGroup::crd(), with(tikv_group(), "/spec/scaleInParallelism", json!(0))),
        "spec.scaleInParallelism",
        "greater than or equal to 1",
    );
    admitted(create(TiKVGroup::crd(), with(tikv_group(), "/spec/scaleInParallelism", json!(3))));
}

#[test]
fn operator_owned_labels_are_refused() {
    refused(
        create(TiKVGroup::crd(), with(tikv_group(), "/spec/template/metadata/labels", json!({"tikv.org/group": "x"}))),
        "spec.template.metadata.labels",
        "reserved for the operator",
    );
    refused(
        create(
            TiKVGroup::crd(),
            with(
                tikv_group(),
                "/spec/template/spec/overlay",
                json!({"pod": {"metadata": {"labels": {"tikv.org/instance": "x"}}}}),
            ),
        ),
        "spec.template.spec.overlay.pod.metadata.labels",
        "reserved for the operator",
    );
    refused(
        create(TiKVGroup::crd(), with(tikv_group(), "/spec/template/spec/server/labels", json!({"zone": "a"}))),
        "spec.template.spec.server.labels",
        "set by the operator",
    );
    admitted(create(
        TiKVGroup::crd(),
        with(tikv_group(), "/spec/template/spec/server/labels", json!({"disk": "nvme"})),
    ));
}

#[test]
fn required_fields_are_required() {
    refused(create(TiKVGroup::crd(), without(tikv_group(), "/spec/cluster")), "spec.cluster", "Required");
    refused(
        create(TiKVGroup::crd(), without(tikv_group(), "/spec/template/spec/version")),
        "spec.template.spec.version",
        "Required",
    );
    refused(create(TiKV::crd(), without(tikv(), "/spec/subdomain")), "spec.subdomain", "Required");
}

// ---- transitions (oldSelf rules)

#[test]
fn cluster_reference_is_immutable() {
    for (crd, object, allowed_change) in [
        (PDGroup::crd(), pd_group(), "/spec/replicas"),
        (TiKVGroup::crd(), tikv_group(), "/spec/replicas"),
        (PD::crd(), pd(), "/spec/minReadySeconds"),
        (TiKV::crd(), tikv(), "/spec/minReadySeconds"),
    ] {
        let moved = with(object.clone(), "/spec/cluster/name", json!("other"));
        refused(update(crd.clone(), object.clone(), moved), "spec", "cluster is immutable");
        admitted(update(crd, object.clone(), with(object, allowed_change, json!(5))));
    }
}

#[test]
fn topology_and_subdomain_of_an_instance_are_immutable() {
    refused(
        update(TiKV::crd(), tikv(), with(tikv(), "/spec/topology", json!({"topology.kubernetes.io/zone": "b"}))),
        "spec",
        "topology is immutable",
    );
    refused(update(TiKV::crd(), tikv(), without(tikv(), "/spec/topology")), "spec", "topology is immutable");
    refused(update(PD::crd(), without(pd(), "/spec/topology"), pd()), "spec", "topology is immutable");
    refused(
        update(TiKV::crd(), tikv(), with(tikv(), "/spec/subdomain", json!("elsewhere"))),
        "spec",
        "subdomain is immutable",
    );
    // what may change on an instance does
    admitted(update(TiKV::crd(), tikv(), with(tikv(), "/spec/offline", json!(true))));
    admitted(update(TiKV::crd(), tikv(), with(tikv(), "/spec/version", json!("v8.5.1"))));
}

#[test]
fn storage_may_grow_but_never_shrink_even_when_volumes_are_reordered() {
    let path = "spec.template.spec.volumes[0].storage";
    let grow = with(tikv_group(), "/spec/template/spec/volumes/0/storage", json!("200Gi"));
    admitted(update(TiKVGroup::crd(), tikv_group(), grow));
    let same_in_other_units = with(tikv_group(), "/spec/template/spec/volumes/0/storage", json!("102400Mi"));
    admitted(update(TiKVGroup::crd(), tikv_group(), same_in_other_units));
    let shrink = with(tikv_group(), "/spec/template/spec/volumes/0/storage", json!("50Gi"));
    refused(update(TiKVGroup::crd(), tikv_group(), shrink), path, "never shrink");

    let volumes = |data: &str, raft: &str| json!([{"name": "raft", "mountPath": "/var/lib/raft", "storage": raft}, {"name": "data", "storage": data, "storageClassName": "fast"}]);
    let reordered_grow = with(tikv_group(), "/spec/template/spec/volumes", volumes("150Gi", "20Gi"));
    admitted(update(TiKVGroup::crd(), tikv_group(), reordered_grow));
    let reordered_shrink = with(tikv_group(), "/spec/template/spec/volumes", volumes("150Gi", "5Gi"));
    refused(
        update(TiKVGroup::crd(), tikv_group(), reordered_shrink),
        "spec.template.spec.volumes[0].storage",
        "never shrink",
    );

    // a new volume has nothing to compare with
    let added = with(
        tikv_group(),
        "/spec/template/spec/volumes/2",
        json!({"name": "logs", "mountPath": "/logs", "storage": "1Gi"}),
    );
    admitted(update(TiKVGroup::crd(), tikv_group(), added));
    // and instances follow the same rule
    refused(
        update(TiKV::crd(), tikv(), with(tikv(), "/spec/volumes/0/storage", json!("1Gi"))),
        "spec.volumes[0].storage",
        "never shrink",
    );
    refused(
        update(PD::crd(), pd(), with(pd(), "/spec/volumes/0/storage", json!("1Gi"))),
        "spec.volumes[0].storage",
        "never shrink",
    );
}

const CLASS_IS_FIXED: &str = "storageClassName of a volume cannot be set, changed or removed once the volume exists: a PVC keeps the storage class it was created with (add a volume with a new name for another class)";

#[test]
fn the_storage_class_of_a_volume_is_fixed() {
    let path = "spec.template.spec.volumes";
    let class_error =
        |index: usize| format!("{path}[{index}].storageClassName: Invalid value: \"object\": {CLASS_IS_FIXED}");
    let data_class = "/spec/template/spec/volumes/0/storageClassName";
    for (what, new) in [
        ("changed", with(tikv_group(), data_class, json!("slow"))),
        ("removed", without(tikv_group(), data_class)),
        // the PVC exists with the cluster's default class: naming one now is a change too
        ("set", with(tikv_group(), "/spec/template/spec/volumes/1/storageClassName", json!("fast"))),
    ] {
        let index = if what == "set" { 1 } else { 0 };
        match update(TiKVGroup::crd(), tikv_group(), new) {
            Ok(_) => panic!("a storage class {what} was admitted"),
            Err(errors) => assert_eq!(errors.to_strings(), [class_error(index)], "class {what}"),
        }
    }
    // the volume is found by name wherever it moved to in the list
    let reordered = with(
        tikv_group(),
        "/spec/template/spec/volumes",
        json!([{"name": "raft", "mountPath": "/var/lib/raft", "storage": "10Gi"}, {"name": "data", "storage": "100Gi", "storageClassName": "slow"}]),
    );
    refused_with_only(update(TiKVGroup::crd(), tikv_group(), reordered), &class_error(1));
    let pd_changed = with(pd_group(), data_class, json!("fast"));
    refused_with_only(update(PDGroup::crd(), pd_group(), pd_changed), &class_error(0));

    // what may change still does
    let unchanged_class_other_fields = with(
        with(tikv_group(), "/spec/template/spec/volumes/0/storage", json!("200Gi")),
        "/spec/template/spec/volumes/0/volumeAttributesClassName",
        json!("gold"),
    );
    admitted(update(TiKVGroup::crd(), tikv_group(), with(unchanged_class_other_fields, "/spec/replicas", json!(5))));
    let reordered_unchanged = with(
        tikv_group(),
        "/spec/template/spec/volumes",
        json!([{"name": "raft", "mountPath": "/var/lib/raft", "storage": "10Gi"}, {"name": "data", "storage": "100Gi", "storageClassName": "fast"}]),
    );
    admitted(update(TiKVGroup::crd(), tikv_group(), reordered_unchanged));
    for class in [json!("slow"), Value::Null] {
        let mut volume = json!({"name": "logs", "mountPath": "/logs", "storage": "1Gi"});
        if !class.is_null() {
            volume["storageClassName"] = class;
        }
        admitted(update(
            TiKVGroup::crd(),
            tikv_group(),
            with(tikv_group(), "/spec/template/spec/volumes/2", volume.clone()),
        ));
        admitted(update(PDGroup::crd(), pd_group(), with(pd_group(), "/spec/template/spec/volumes/1", volume)));
    }
    // a volume removed and added back later is a new volume (and a new PVC)
    let removed = with(
        tikv_group(),
        "/spec/template/spec/volumes",
        json!([{"name": "data", "storage": "100Gi", "storageClassName": "fast"}]),
    );
    admitted(update(TiKVGroup::crd(), tikv_group(), removed.clone()));
    admitted(update(
        TiKVGroup::crd(),
        removed,
        with(tikv_group(), "/spec/template/spec/volumes/1/storageClassName", json!("slow")),
    ));
    admitted(create(TiKVGroup::crd(), with(tikv_group(), data_class, json!("any"))));
}

#[test]
fn the_storage_class_of_an_instance_volume_is_fixed() {
    let class_error =
        |index: usize| format!("spec.volumes[{index}].storageClassName: Invalid value: \"object\": {CLASS_IS_FIXED}");
    refused_with_only(
        update(TiKV::crd(), tikv(), with(tikv(), "/spec/volumes/0/storageClassName", json!("slow"))),
        &class_error(0),
    );
    refused_with_only(
        update(TiKV::crd(), tikv(), without(tikv(), "/spec/volumes/0/storageClassName")),
        &class_error(0),
    );
    refused_with_only(
        update(PD::crd(), pd(), with(pd(), "/spec/volumes/0/storageClassName", json!("fast"))),
        &class_error(0),
    );
    admitted(update(TiKV::crd(), tikv(), with(tikv(), "/spec/volumes/0/storage", json!("200Gi"))));
    admitted(update(
        PD::crd(),
        pd(),
        with(
            pd(),
            "/spec/volumes/1",
            json!({"name": "logs", "mountPath": "/logs", "storage": "1Gi", "storageClassName": "slow"}),
        ),
    ));
}

#[test]
fn bootstrapped_is_one_way() {
    let bootstrapped = with(pd_group(), "/spec/bootstrapped", json!(true));
    admitted(update(PDGroup::crd(), pd_group(), bootstrapped.clone()));
    admitted(update(PDGroup::crd(), bootstrapped.clone(), bootstrapped.clone()));
    refused(
        update(PDGroup::crd(), bootstrapped.clone(), with(pd_group(), "/spec/bootstrapped", json!(false))),
        "spec",
        "cannot be unset",
    );
    // omitting it defaults it to false, which is the same as unsetting it
    refused(update(PDGroup::crd(), bootstrapped, pd_group()), "spec", "cannot be unset");
    // on create a transition rule has nothing to compare with
    admitted(create(PDGroup::crd(), with(pd_group(), "/spec/bootstrapped", json!(true))));
}

#[test]
fn errors_from_several_fields_are_reported_together() {
    let object = with(tikv_group(), "/spec/replicas", json!(-2));
    let object = with(object, "/spec/template/spec/version", json!("x"));
    let errors = create(TiKVGroup::crd(), object).unwrap_err();
    assert!(errors.contains_path("spec.replicas"), "{errors}");
    assert!(errors.contains_path("spec.template.spec.version"), "{errors}");
}

#[test]
fn failover_waits_at_least_a_minute() {
    let failover = |after: &str| with(tikv_group(), "/spec/failover", json!({"enabled": true, "afterDown": after}));
    for too_soon in ["0s", "59s", "0m"] {
        refused(create(TiKVGroup::crd(), failover(too_soon)), "spec.failover", "afterDown must be at least 1m");
    }
    for fine in ["1m", "90s", "10m", "1h"] {
        admitted(create(TiKVGroup::crd(), failover(fine)));
    }
    admitted(create(TiKVGroup::crd(), with(tikv_group(), "/spec/failover", json!({"enabled": true}))));
}

#[test]
fn tls_changes_only_while_suspended() {
    let tls = |on: bool| with(cluster(), "/spec/tlsCluster", json!({"enabled": on}));
    let suspended = |object: Value| with(object, "/spec/suspendAction", json!({"suspendCompute": true}));
    let message = "tlsCluster.enabled can change only while the Cluster is suspended";
    // refused while running, both ways, and by adding or removing the field
    refused(update(Cluster::crd(), cluster(), tls(true)), "spec", message);
    refused(update(Cluster::crd(), tls(true), tls(false)), "spec", message);
    refused(update(Cluster::crd(), tls(true), cluster()), "spec", message);
    // resuming and changing in one update is refused: the new object is not suspended
    refused(update(Cluster::crd(), suspended(cluster()), tls(true)), "spec", message);
    // suspending in the same update, or already suspended: accepted
    admitted(update(Cluster::crd(), cluster(), suspended(tls(true))));
    admitted(update(Cluster::crd(), suspended(tls(true)), suspended(cluster())));
    admitted(update(Cluster::crd(), suspended(cluster()), suspended(tls(true))));
    // the same effective value is no change: adding `enabled: false`, or an empty field
    admitted(update(Cluster::crd(), cluster(), tls(false)));
    admitted(update(Cluster::crd(), tls(false), cluster()));
    admitted(update(Cluster::crd(), cluster(), with(cluster(), "/spec/tlsCluster", json!({}))));
    admitted(update(Cluster::crd(), tls(true), with(tls(true), "/spec/paused", json!(true))));
    // on create there is nothing to compare with
    admitted(create(Cluster::crd(), tls(true)));
}
