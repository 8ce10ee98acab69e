use std::net::IpAddr;

use kube_sim::ResourceRef;
use kube_sim::patch::PatchType;
use serde_json::json;

use crate::common::{Env, is_ready, pod};

#[tokio::test]
async fn pod_hostnames_resolve_only_through_a_matching_headless_service() {
    let env = Env::start(20.0).await;
    let dns = env.cluster.dns().clone();
    let containers = json!([{"name": "main", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 100000}}]);
    let mut p = pod("pd-0", json!({"hostname": "pd-0", "subdomain": "pd-peer", "containers": containers}));
    p["metadata"]["labels"] = json!({"app": "pd"});
    env.create("pods", Some("default"), p);
    let p = env.wait_pod("pd-0", "Running", |p| p["status"]["phase"] == "Running").await;
    let ip: IpAddr = p["status"]["podIP"].as_str().unwrap().parse().unwrap();
    assert!(!is_ready(&p));
    assert!(dns.resolve("pd-0.pd-peer.default.svc").is_err(), "no Service yet");

    env.create(
        "services",
        Some("default"),
        json!({"metadata": {"name": "pd-peer"},
        "spec": {"clusterIP": "None", "selector": {"app": "pd"}, "ports": [{"port": 2380}]}}),
    );
    assert!(dns.resolve("pd-0.pd-peer.default.svc").is_err(), "not ready and not published");
    env.client
        .patch(
            &ResourceRef::new("", "v1", "services"),
            Some("default"),
            "pd-peer",
            None,
            PatchType::Merge,
            &json!({"spec": {"publishNotReadyAddresses": true}}),
        )
        .unwrap();
    assert_eq!(dns.resolve("pd-0.pd-peer.default.svc").unwrap(), vec![ip]);
    assert_eq!(dns.resolve("pd-0.pd-peer.default.svc.cluster.local.").unwrap(), vec![ip]);
    assert_eq!(dns.resolve("pd-peer.default").unwrap(), vec![ip]);
    assert_eq!(dns.resolve_from("default", "pd-0.pd-peer").unwrap(), vec![ip]);
    assert!(dns.resolve("pd-1.pd-peer.default.svc").is_err());
    assert!(dns.resolve("pd-0.pd-peer.other.svc").is_err());

    env.create(
        "services",
        Some("default"),
        json!({"metadata": {"name": "wrong"},
        "spec": {"clusterIP": "None", "selector": {"app": "tikv"}, "publishNotReadyAddresses": true}}),
    );
    assert!(dns.resolve("pd-0.wrong.default.svc").is_err(), "the Service must select the pod");
    env.shutdown().await;
}

#[tokio::test]
async fn services_get_loopback_cluster_ips_and_headless_ones_list_ready_pods() {
    let env = Env::start(20.0).await;
    let dns = env.cluster.dns().clone();
    env.create(
        "services",
        Some("default"),
        json!({"metadata": {"name": "pd"}, "spec": {"selector": {"app": "pd"}, "ports": [{"port": 2379}]}}),
    );
    let svc = env
        .wait("a 127.2 cluster IP", |e| {
            e.get("services", Some("default"), "pd")
                .filter(|s| s["spec"]["clusterIP"].as_str().unwrap().starts_with("127.2."))
        })
        .await;
    let cluster_ip: IpAddr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    assert_eq!(dns.resolve("pd.default.svc.cluster.local").unwrap(), vec![cluster_ip]);
    assert_eq!(dns.resolve_from("default", "pd").unwrap(), vec![cluster_ip]);
    assert!(dns.resolve("pd.kube-system.svc").is_err());
    let kubernetes = env
        .wait("the kubernetes Service moved", |e| {
            e.get("services", Some("default"), "kubernetes")
                .filter(|s| s["spec"]["clusterIP"].as_str().unwrap().starts_with("127.2."))
        })
        .await;
    assert_eq!(kubernetes["spec"]["clusterIPs"][0], kubernetes["spec"]["clusterIP"]);
    // An address outside the service range is refused, as kube-apiserver does.
    let refused = env
        .client
        .create(
            &kube_sim::ResourceRef::new("", "v1", "services"),
            Some("default"),
            json!({"metadata": {"name": "fixed"}, "spec": {"clusterIP": "10.0.0.10", "ports": [{"port": 80}]}}),
        )
        .unwrap_err();
    assert_eq!(refused.code, 422);
    assert!(refused.message.contains("the provided IP (10.0.0.10) is not in the valid range"), "{}", refused.message);

    env.create(
        "services",
        Some("default"),
        json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "None", "selector": {"app": "web"}}}),
    );
    assert!(dns.resolve("web.default.svc").is_err(), "no endpoints");
    for name in ["web-a", "web-b"] {
        let mut p = pod(name, json!({}));
        p["metadata"]["labels"] = json!({"app": "web"});
        env.create("pods", Some("default"), p);
    }
    let a = env.wait_pod("web-a", "Ready", is_ready).await;
    let b = env.wait_pod("web-b", "Ready", is_ready).await;
    let mut want: Vec<IpAddr> =
        [&a, &b].iter().map(|p| p["status"]["podIP"].as_str().unwrap().parse().unwrap()).collect();
    want.sort();
    assert_eq!(dns.resolve("web.default.svc").unwrap(), want);
    env.shutdown().await;
}
