#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use k8s_pb::api::coordination::v1 as coordinationv1;
use k8s_pb::api::core::v1 as corev1;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as metav1;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::json;

use super::{decode, is_protobuf};

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// The body client-go sends: magic, then `runtime.Unknown` around the message.
fn body(api_version: &str, kind: &str, msg: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: s(api_version), kind: s(kind) }),
        raw: Some(msg.encode_to_vec()),
        content_encoding: s(""),
        content_type: s(""),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// ObjectMeta as gogo-protobuf writes it for a client object: every non-pointer scalar
/// present, empty, and the zero creationTimestamp as an empty message.
fn meta(name: &str) -> metav1::ObjectMeta {
    metav1::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(metav1::Time::default()),
        ..Default::default()
    }
}

fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn media_type_detection() {
    assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(is_protobuf("application/vnd.kubernetes.protobuf; charset=utf-8"));
    assert!(!is_protobuf("application/json"));
}

#[test]
fn namespace_with_full_metadata() {
    let ns = corev1::Namespace {
        metadata: Some(metav1::ObjectMeta {
            labels: map(&[("team", "db".to_string()), ("empty", String::new())]),
            annotations: map(&[("note", "hi".to_string())]),
            finalizers: vec!["example.com/keep".into()],
            owner_references: vec![metav1::OwnerReference {
                api_version: s("v1"),
                kind: s("ConfigMap"),
                name: s("owner"),
                uid: s("u-1"),
                controller: Some(false),
                block_owner_deletion: None,
            }],
            deletion_grace_period_seconds: Some(0),
            managed_fields: vec![metav1::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                api_version: s("v1"),
                time: Some(metav1::Time { seconds: Some(1_700_000_000), nanos: Some(5) }),
                fields_type: s("FieldsV1"),
                fields_v1: Some(metav1::FieldsV1 { raw: Some(br#"{"f:metadata":{}}"#.to_vec()) }),
                subresource: s(""),
            }],
            ..meta("db")
        }),
        spec: Some(corev1::NamespaceSpec::default()),
        status: Some(corev1::NamespaceStatus { phase: s(""), conditions: vec![] }),
    };
    let got = decode(&body("v1", "Namespace", &ns)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "db",
                "labels": {"team": "db", "empty": ""},
                "annotations": {"note": "hi"},
                "finalizers": ["example.com/keep"],
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-1", "controller": false}],
                "deletionGracePeriodSeconds": 0,
                "managedFields": [{
                    "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                    "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}
                }]
            },
            "spec": {},
            "status": {}
        })
    );
}

#[test]
fn secret_bytes_are_base64_and_configmap_binary_data() {
    let secret = corev1::Secret {
        metadata: Some(meta("s")),
        immutable: None,
        data: map(&[("k", b"v".to_vec()), ("bin", vec![0, 1, 255])]),
        string_data: map(&[("plain", "text".to_string())]),
        r#type: s("Opaque"),
    };
    let got = decode(&body("v1", "Secret", &secret)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"k": "dg==", "bin": "AAH/"}, "stringData": {"plain": "text"}, "type": "Opaque"
        })
    );
    let cm = corev1::ConfigMap {
        metadata: Some(meta("c")),
        immutable: Some(false),
        data: map(&[("a", "b".to_string())]),
        binary_data: map(&[("raw", vec![0xde, 0xad])]),
    };
    let got = decode(&body("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "immutable": false, "data": {"a": "b"}, "binaryData": {"raw": "3q0="}
        })
    );
}

#[test]
fn service_int_or_string_and_omitempty_rules() {
    let port = |name: &str, port: i32, target: IntOrString| corev1::ServicePort {
        name: s(name),
        protocol: s("TCP"),
        app_protocol: None,
        port: Some(port),
        target_port: Some(target),
        node_port: Some(0),
    };
    let svc = corev1::Service {
        metadata: Some(meta("web")),
        spec: Some(corev1::ServiceSpec {
            ports: vec![
                port("a", 80, IntOrString { r#type: Some(0), int_val: Some(8080), str_val: s("") }),
                port("b", 0, IntOrString { r#type: Some(1), int_val: Some(0), str_val: s("http") }),
            ],
            selector: map(&[("app", "web".to_string())]),
            cluster_ip: s(""),
            r#type: s("ClusterIP"),
            session_affinity: s(""),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            allocate_load_balancer_node_ports: Some(false),
            ..Default::default()
        }),
        status: Some(corev1::ServiceStatus {
            load_balancer: Some(corev1::LoadBalancerStatus::default()),
            conditions: vec![],
        }),
    };
    let got = decode(&body("v1", "Service", &svc)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {
                "ports": [
                    {"name": "a", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "b", "protocol": "TCP", "port": 0, "targetPort": "http"}
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP",
                "allocateLoadBalancerNodePorts": false
            },
            "status": {"loadBalancer": {}}
        })
    );
}

#[test]
fn pod_inline_structs_quantities_and_pointers() {
    let container = corev1::Container {
        name: s("app"),
        image: s("nginx"),
        working_dir: s(""),
        resources: Some(corev1::ResourceRequirements {
            limits: map(&[("memory", Quantity { string: s("1Gi") })]),
            requests: map(&[("cpu", Quantity { string: s("100m") })]),
            claims: vec![],
        }),
        readiness_probe: Some(corev1::Probe {
            handler: Some(corev1::ProbeHandler {
                http_get: Some(corev1::HttpGetAction {
                    path: s("/healthz"),
                    port: Some(IntOrString { r#type: Some(1), int_val: Some(0), str_val: s("http") }),
                    host: s(""),
                    scheme: s("HTTP"),
                    http_headers: vec![],
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(0),
            period_seconds: Some(5),
            ..Default::default()
        }),
        security_context: Some(corev1::SecurityContext {
            run_as_user: Some(0),
            privileged: Some(false),
            ..Default::default()
        }),
        stdin: Some(false),
        tty: Some(true),
        ..Default::default()
    };
    let pod = corev1::Pod {
        metadata: Some(meta("web")),
        spec: Some(corev1::PodSpec {
            containers: vec![container],
            volumes: vec![corev1::Volume {
                name: s("cfg"),
                volume_source: Some(corev1::VolumeSource {
                    config_map: Some(corev1::ConfigMapVolumeSource {
                        local_object_reference: Some(corev1::LocalObjectReference { name: s("settings") }),
                        default_mode: Some(0o644),
                        optional: Some(false),
                        items: vec![],
                    }),
                    ..Default::default()
                }),
            }],
            restart_policy: s(""),
            termination_grace_period_seconds: Some(0),
            automount_service_account_token: Some(false),
            host_network: Some(false),
            node_selector: map(&[("disk", "ssd".to_string())]),
            tolerations: vec![corev1::Toleration { operator: s("Exists"), ..Default::default() }],
            ..Default::default()
        }),
        status: Some(corev1::PodStatus::default()),
    };
    let got = decode(&body("v1", "Pod", &pod)).unwrap();
    assert_eq!(
        got["spec"],
        json!({
            "containers": [{
                "name": "app", "image": "nginx",
                "resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": "100m"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "periodSeconds": 5},
                "securityContext": {"runAsUser": 0, "privileged": false},
                "tty": true
            }],
            "volumes": [{"name": "cfg", "configMap": {"name": "settings", "defaultMode": 420, "optional": false}}],
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": false,
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [{"operator": "Exists"}]
        })
    );
}

#[test]
fn times_micro_times_and_zero_times() {
    let lease = coordinationv1::Lease {
        metadata: Some(meta("leader")),
        spec: Some(coordinationv1::LeaseSpec {
            holder_identity: s(""),
            lease_duration_seconds: Some(15),
            acquire_time: Some(metav1::MicroTime { seconds: Some(1_700_000_000), nanos: Some(123_456_789) }),
            renew_time: Some(metav1::MicroTime::default()),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let got = decode(&body("coordination.k8s.io/v1", "Lease", &lease)).unwrap();
    assert_eq!(
        got["spec"],
        json!({
            "holderIdentity": "", "leaseDurationSeconds": 15,
            "acquireTime": "2023-11-14T22:13:20.123456Z", "leaseTransitions": 0
        })
    );
    let event = corev1::Event {
        metadata: Some(meta("e1")),
        involved_object: Some(corev1::ObjectReference { kind: s("Pod"), name: s("web"), ..Default::default() }),
        reason: s("Started"),
        first_timestamp: Some(metav1::Time { seconds: Some(0), nanos: None }),
        last_timestamp: Some(metav1::Time::default()),
        count: Some(1),
        ..Default::default()
    };
    let got = decode(&body("v1", "Event", &event)).unwrap();
    assert_eq!(got["firstTimestamp"], json!("1970-01-01T00:00:00Z"));
    assert!(got.get("lastTimestamp").is_none(), "{got}");
    assert_eq!(got["involvedObject"], json!({"kind": "Pod", "name": "web"}));
}

#[test]
fn delete_options() {
    let opts = metav1::DeleteOptions {
        grace_period_seconds: Some(0),
        propagation_policy: s("Foreground"),
        preconditions: Some(metav1::Preconditions { uid: s("u-1"), resource_version: None }),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let got = decode(&body("v1", "DeleteOptions", &opts)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
            "propagationPolicy": "Foreground", "preconditions": {"uid": "u-1"}, "dryRun": ["All"]
        })
    );
}

/// The body `kubectl drain` posts to `pods/{name}/eviction` (policy/v1, or v1beta1 from
/// older clients).
#[test]
fn evictions() {
    let mut m = meta("web-0");
    m.namespace = s("default");
    let v1 = k8s_pb::api::policy::v1::Eviction {
        metadata: Some(m.clone()),
        delete_options: Some(metav1::DeleteOptions { grace_period_seconds: Some(5), ..Default::default() }),
    };
    let got = decode(&body("policy/v1", "Eviction", &v1)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": "web-0", "namespace": "default"}, "deleteOptions": {"gracePeriodSeconds": 5}
        })
    );
    let v1beta1 = k8s_pb::api::policy::v1beta1::Eviction { metadata: Some(m), delete_options: None };
    let got = decode(&body("policy/v1beta1", "Eviction", &v1beta1)).unwrap();
    assert_eq!(got["kind"], "Eviction");
    assert!(got.get("deleteOptions").is_none());
}

#[test]
fn unmapped_field_fails_naming_it() {
    let pod = corev1::Pod {
        metadata: Some(meta("web")),
        spec: Some(corev1::PodSpec { workload_ref: Some(corev1::WorkloadReference::default()), ..Default::default() }),
        status: None,
    };
    let err = decode(&body("v1", "Pod", &pod)).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(err.status()["message"].as_str().unwrap().contains("spec.workload_ref"), "{:?}", err.status());
}

#[test]
fn malformed_and_unknown_bodies() {
    let err = decode(br#"{"kind":"ConfigMap"}"#).unwrap_err();
    assert_eq!(err.code, 400);
    let mut bad = b"k8s\0".to_vec();
    bad.extend([0x0a, 0xff]);
    assert_eq!(decode(&bad).unwrap_err().code, 400);
    let garbage = Unknown {
        type_meta: Some(TypeMeta { api_version: s("v1"), kind: s("ConfigMap") }),
        raw: Some(vec![0x0a, 0x05, 0x01]),
        ..Default::default()
    };
    let mut body_bytes = b"k8s\0".to_vec();
    body_bytes.extend(garbage.encode_to_vec());
    assert_eq!(decode(&body_bytes).unwrap_err().code, 400);
    // Kinds without a protobuf mapping here: 415, like custom resources.
    let crd = body("apiextensions.k8s.io/v1", "CustomResourceDefinition", &metav1::Status::default());
    let err = decode(&crd).unwrap_err();
    assert_eq!(err.code, 415);
    let widget = body("example.com/v1", "Widget", &metav1::Status::default());
    assert_eq!(decode(&widget).unwrap_err().code, 415);
}
