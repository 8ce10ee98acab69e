use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::common::{Env, condition, is_ready, pod};

#[tokio::test]
async fn a_pod_runs_to_ready_with_the_statuses_a_kubelet_writes() {
    let env = Env::start(20.0).await;
    env.create("pods", Some("default"), pod("web", json!({"nodeName": "node-1"})));
    let p = env
        .wait_pod("web", "ContainerCreating", |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
        })
        .await;
    assert_eq!(p["status"]["phase"], "Pending");
    let p = env.wait_pod("web", "Ready", is_ready).await;
    let s = &p["status"];
    assert_eq!(s["phase"], "Running");
    let ip: Ipv4Addr = s["podIP"].as_str().unwrap().parse().unwrap();
    assert_eq!(ip.octets()[..2], [127, 1]);
    assert_eq!(s["podIPs"][0]["ip"], s["podIP"]);
    assert!(s["hostIP"].as_str().unwrap().parse::<Ipv4Addr>().unwrap().is_loopback());
    assert!(s["startTime"].is_string());
    let c = &s["containerStatuses"][0];
    assert_eq!(c["name"], "main");
    assert_eq!(c["image"], "busybox:1.36");
    assert!(c["imageID"].as_str().unwrap().starts_with("docker.io/library/busybox@sha256:"));
    assert!(c["containerID"].as_str().unwrap().starts_with("containerd://"));
    assert_eq!(
        (c["ready"].clone(), c["started"].clone(), c["restartCount"].clone()),
        (json!(true), json!(true), json!(0))
    );
    assert!(c["state"]["running"]["startedAt"].is_string());
    for ty in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"] {
        assert_eq!(condition(&p, ty)["status"], "True", "{ty}");
    }
    for want in [
        "Pulled: Container image \"busybox:1.36\" already present on machine",
        "Created: Created container: main",
        "Started: Started container main",
    ] {
        let events = env.wait_event("web", want).await;
        assert!(events.contains(&want.to_string()), "{want} in {events:?}");
    }
    env.shutdown().await;
}

#[tokio::test]
async fn readiness_waits_for_the_probe_initial_delay() {
    let env = Env::start(20.0).await;
    let containers = json!([{"name": "main", "image": "busybox", "readinessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 600}}]);
    env.create("pods", Some("default"), pod("slow", json!({"nodeName": "node-1", "containers": containers})));
    let p = env.wait_pod("slow", "Running", |p| p["status"]["phase"] == "Running").await;
    assert_eq!(condition(&p, "Ready")["status"], "False");
    assert_eq!(condition(&p, "Ready")["reason"], "ContainersNotReady");
    assert_eq!(p["status"]["containerStatuses"][0]["started"], true);
    env.sim.clock().advance(Duration::from_secs(600));
    env.wait_pod("slow", "Ready after the delay", is_ready).await;
    env.shutdown().await;
}

#[tokio::test]
async fn graceful_deletion_runs_pre_stop_within_the_grace_period() {
    let env = Env::start(20.0).await;
    let hook = json!([{"name": "main", "image": "busybox", "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "sleep 1000"]}}}}]);
    env.create(
        "pods",
        Some("default"),
        pod("gentle", json!({"nodeName": "node-1", "terminationGracePeriodSeconds": 2000, "containers": hook.clone()})),
    );
    env.create(
        "pods",
        Some("default"),
        pod(
            "stubborn",
            json!({"nodeName": "node-1", "terminationGracePeriodSeconds": 100,
        "containers": [{"name": "main", "image": "busybox", "lifecycle": {"preStop": {"sleep": {"seconds": 5000}}}}]}),
        ),
    );
    env.wait_pod("gentle", "Ready", is_ready).await;
    env.wait_pod("stubborn", "Ready", is_ready).await;
    for name in ["gentle", "stubborn"] {
        env.client
            .delete(&kube_sim::ResourceRef::new("", "v1", "pods"), Some("default"), name, &Default::default())
            .unwrap();
    }
    env.wait("Killing events", |e| {
        e.events_of("gentle").iter().any(|m| m == "Killing: Stopping container main").then_some(())
    })
    .await;
    env.sim.clock().advance(Duration::from_secs(500));
    assert!(env.get("pods", Some("default"), "gentle").is_some(), "preStop still running");
    env.wait("the stubborn pod killed at its grace period", |e| {
        e.get("pods", Some("default"), "stubborn").is_none().then_some(())
    })
    .await;
    assert!(env.get("pods", Some("default"), "gentle").is_some(), "grace period not over");
    env.sim.clock().advance(Duration::from_secs(600));
    env.wait("the gentle pod gone after preStop", |e| e.get("pods", Some("default"), "gentle").is_none().then_some(()))
        .await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_failed_node_makes_its_pods_not_ready_until_it_recovers() {
    let env = Env::start(20.0).await;
    env.create("pods", Some("default"), pod("p1", json!({"nodeName": "node-1"})));
    env.wait_pod("p1", "Ready", is_ready).await;
    env.cluster.nodes().set_ready("node-1", false).unwrap();
    let p = env.wait_pod("p1", "not Ready", |p| condition(p, "Ready")["status"] == "False").await;
    assert_eq!(p["status"]["phase"], "Running", "pods of a failed node are not deleted");
    let node = env.get("nodes", None, "node-1").unwrap();
    assert_eq!(condition(&node, "Ready")["status"], "Unknown");
    env.create("pods", Some("default"), pod("elsewhere", json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1", "node-2"]}]}]}}}})));
    let p = env.wait_pod("elsewhere", "binding", |p| p["spec"]["nodeName"].is_string()).await;
    assert_eq!(p["spec"]["nodeName"], "node-2", "the unreachable taint keeps new pods away");
    env.cluster.nodes().set_ready("node-1", true).unwrap();
    env.wait_pod("p1", "Ready again", is_ready).await;
    env.cluster.nodes().remove("node-1").unwrap();
    let p = env.wait_pod("p1", "not Ready on a removed node", |p| condition(p, "Ready")["status"] == "False").await;
    assert!(p["metadata"]["deletionTimestamp"].is_null());
    env.shutdown().await;
}

#[tokio::test]
async fn kube_rs_sees_pods_scheduled_running_and_deleted() {
    let env = Env::start(20.0).await;
    let mut kc = kube::Config::new(env.sim.url().parse().unwrap());
    kc.default_namespace = "default".into();
    let client = kube::Client::try_from(kc).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client);
    let p: Pod = serde_json::from_value(pod("via-kube", json!({}))).unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let running =
        kube::runtime::wait::await_condition(pods.clone(), "via-kube", kube::runtime::conditions::is_pod_running());
    let got = tokio::time::timeout(Duration::from_secs(20), running).await.unwrap().unwrap().unwrap();
    assert!(got.spec.unwrap().node_name.is_some());
    pods.delete("via-kube", &DeleteParams::default()).await.unwrap();
    let deleted =
        kube::runtime::wait::await_condition(pods.clone(), "via-kube", kube::runtime::conditions::is_deleted(""));
    let uid = got.metadata.uid.unwrap();
    let deleted_uid =
        kube::runtime::wait::await_condition(pods, "via-kube", kube::runtime::conditions::is_deleted(&uid));
    tokio::time::timeout(Duration::from_secs(20), deleted_uid).await.unwrap().unwrap();
    drop(deleted);
    env.shutdown().await;
}
