use kube_sim::cluster::NodeSpec;
use serde_json::json;

use crate::common::{Env, condition, pod, pvc, zone_of};

#[tokio::test]
async fn a_pod_lands_on_the_node_its_selector_names() {
    let env = Env::start(20.0).await;
    env.create("pods", Some("default"), pod("web", json!({"nodeSelector": {"topology.kubernetes.io/zone": "zone-b"}})));
    let p = env.wait_pod("web", "binding", |p| p["spec"]["nodeName"].is_string()).await;
    assert_eq!(p["spec"]["nodeName"], "node-2");
    assert_eq!(condition(&p, "PodScheduled")["status"], "True");
    let events = env.wait_event("web", "Scheduled: Successfully assigned default/web to node-2").await;
    assert!(events.contains(&"Scheduled: Successfully assigned default/web to node-2".to_string()), "{events:?}");
    env.shutdown().await;
}

#[tokio::test]
async fn an_unschedulable_pod_waits_with_the_reason_then_lands_on_a_new_node() {
    let env = Env::start(20.0).await;
    env.create("pods", Some("default"), pod("picky", json!({"nodeSelector": {"disk": "nvme"}})));
    let p = env
        .wait_pod("picky", "the Unschedulable condition", |p| condition(p, "PodScheduled")["status"] == "False")
        .await;
    let cond = condition(&p, "PodScheduled");
    assert_eq!(cond["reason"], "Unschedulable");
    assert_eq!(
        cond["message"],
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    assert_eq!(p["status"]["phase"], "Pending");
    env.wait_event("picky", "FailedScheduling: 0/3 nodes are available").await;
    let mut spec = NodeSpec::new("node-4", "zone-a");
    spec.labels.push(("disk".into(), "nvme".into()));
    env.cluster.nodes().add(spec).unwrap();
    let p = env.wait_pod("picky", "binding to the new node", |p| p["spec"]["nodeName"].is_string()).await;
    assert_eq!(p["spec"]["nodeName"], "node-4");
    env.shutdown().await;
}

#[tokio::test]
async fn cordoned_and_tainted_nodes_are_avoided() {
    let env = Env::start(20.0).await;
    env.cluster.nodes().cordon("node-1", true).unwrap();
    env.cluster.nodes().taint("node-2", "dedicated", "tikv", "NoSchedule").unwrap();
    env.create("pods", Some("default"), pod("a", json!({})));
    let p = env.wait_pod("a", "binding", |p| p["spec"]["nodeName"].is_string()).await;
    assert_eq!(p["spec"]["nodeName"], "node-3");
    env.create(
        "pods",
        Some("default"),
        pod(
            "b",
            json!({"nodeSelector": {"kubernetes.io/hostname": "node-2"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "tikv", "effect": "NoSchedule"}]}),
        ),
    );
    let p = env.wait_pod("b", "binding", |p| p["spec"]["nodeName"].is_string()).await;
    assert_eq!(p["spec"]["nodeName"], "node-2");
    env.shutdown().await;
}

/// Pods with WaitForFirstConsumer claims and a required pod anti-affinity against each
/// other's label, pinned to one zone of two nodes: they land on different nodes,
/// whichever is placed first.
#[tokio::test]
async fn anti_affinity_holds_between_pods_waiting_for_their_claims() {
    let env = Env::with(20.0, kube_sim::cluster::ClusterConfig { nodes: 6, zones: 3, ..Default::default() }).await;
    let zone = zone_of(&env, "node-1");
    let away = |other: &str| {
        json!({"nodeSelector": {"topology.kubernetes.io/zone": zone},
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": other}}}]}},
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": format!("data-{}", if other == "a" { "b" } else { "a" })}}]})
    };
    for name in ["a", "b"] {
        env.create("persistentvolumeclaims", Some("default"), pvc(&format!("data-{name}"), None, "1Gi"));
    }
    env.create("pods", Some("default"), pod("a", away("b")));
    env.create("pods", Some("default"), pod("b", away("a")));
    let a = env.wait_pod("a", "bound", |p| p["spec"]["nodeName"].is_string()).await;
    let b = env.wait_pod("b", "bound", |p| p["spec"]["nodeName"].is_string()).await;
    assert_ne!(a["spec"]["nodeName"], b["spec"]["nodeName"], "{a:#}\n{b:#}");
    env.shutdown().await;
}
