//! The pod `eviction` subresource and PodDisruptionBudget status on a simulated cluster
//! (kubelets and the disruption controller running): kube-rs's `Api::evict`, and the
//! installed `kubectl drain` end to end.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, PostParams};
use serde_json::{Value, json};

use crate::common::{Sim, wait_for};

async fn cluster() -> Sim {
    let config = kube_sim::Config {
        nodes: 3,
        zones: 3,
        speed: 10.0,
        cluster: Some(kube_sim::cluster::ClusterConfig::default()),
        ..Default::default()
    };
    Sim::start_with(config).await
}

/// A pod of `owner` (a controller reference, as drain wants) on `node`.
fn pod(name: &str, node: &str, owner: Option<&Value>) -> Pod {
    let mut p = json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "busybox:1.36"}],
                 "volumes": [{"name": "scratch", "emptyDir": {}}]}
    });
    if let Some(o) = owner {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": o["apiVersion"], "kind": o["kind"],
            "name": o["metadata"]["name"], "uid": o["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]);
    }
    serde_json::from_value(p).unwrap()
}

fn budget(spec: Value) -> PodDisruptionBudget {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "web"}});
    serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": spec})).unwrap()
}

async fn ready(pods: &Api<Pod>, name: &str) -> bool {
    pods.get_opt(name).await.unwrap().is_some_and(|p| {
        p.status.and_then(|s| s.conditions).into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

async fn allowed(pdbs: &Api<PodDisruptionBudget>, n: i32) -> bool {
    pdbs.get("web")
        .await
        .unwrap()
        .status
        .is_some_and(|s| s.observed_generation == Some(1) && s.disruptions_allowed == n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_evictions_spend_the_budget_and_get_429_when_it_is_spent() {
    let s = cluster().await;
    // kube-rs's default client retries a 429 up to 15 times with growing backoff (or
    // Retry-After): the 429 is to be seen here, so this client does not retry.
    let mut config = kube::Config::new(s.sim.url().parse().unwrap());
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(s.client.clone(), "default");
    for (name, node) in [("web-0", "node-1"), ("web-1", "node-2"), ("web-2", "node-3")] {
        pods.create(&PostParams::default(), &pod(name, node, None)).await.unwrap();
    }
    pdbs.create(&PostParams::default(), &budget(json!({"minAvailable": 2}))).await.unwrap();
    wait_for(20, "the budget to allow one disruption", || allowed(&pdbs, 1)).await;
    let st = pdbs.get("web").await.unwrap().status.unwrap();
    assert_eq!((st.expected_pods, st.desired_healthy, st.current_healthy), (3, 2, 3));

    let ok = pods.evict("web-0", &EvictParams::default()).await.unwrap();
    assert!(ok.is_success() && ok.code == 201, "{ok:?}");
    let err = crate::common::api_err(pods.evict("web-1", &EvictParams::default()).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(err.message, "Cannot evict pod as it would violate the pod's disruption budget.");
    let cause = &err.details.unwrap().causes[0];
    assert_eq!(cause.reason, "DisruptionBudget");
    assert!(cause.message.starts_with("The disruption budget web needs 2 healthy pods and has "), "{}", cause.message);

    // The evicted pod goes; once it is back and Ready the budget has room again.
    wait_for(20, "web-0 to be gone", || async { pods.get_opt("web-0").await.unwrap().is_none() }).await;
    assert_eq!(pdbs.get("web").await.unwrap().status.unwrap().disruptions_allowed, 0);
    pods.create(&PostParams::default(), &pod("web-0", "node-1", None)).await.unwrap();
    wait_for(20, "the budget to have room again", || allowed(&pdbs, 1)).await;
    pods.evict("web-1", &EvictParams::default()).await.unwrap();

    // A second budget over the same pods: the eviction fails with code 500 in the body.
    pdbs.create(&PostParams::default(), &{
        let mut b = budget(json!({"maxUnavailable": 1}));
        b.metadata.name = Some("other".into());
        b
    })
    .await
    .unwrap();
    let both = pods.evict("web-2", &EvictParams::default()).await.unwrap();
    assert!(both.is_failure() && both.code == 500, "{both:?}");
    assert!(both.message.contains("more than one PodDisruptionBudget"));

    let missing = crate::common::api_err(pods.evict("nope", &EvictParams::default()).await.unwrap_err());
    assert_eq!(missing.code, 404);
    s.sim.shutdown().await;
}

const GADGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drain_respects_the_budget_and_retries_until_replacements_are_ready() {
    let s = cluster().await;
    s.apply_yaml(GADGETS);
    s.kubectl_ok(&["wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=10s"]);
    s.apply_yaml("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: web}\nspec: {replicas: 3}\n");
    let owner: Value = serde_json::from_str(&s.kubectl_ok(&["get", "gadget", "web", "-o", "json"])).unwrap();
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(s.client.clone(), "default");
    for (name, node) in [("web-0", "node-1"), ("web-1", "node-1"), ("web-2", "node-2")] {
        pods.create(&PostParams::default(), &pod(name, node, Some(&owner))).await.unwrap();
    }
    // maxUnavailable through the Gadget's scale: 3 replicas, at most 1 unavailable.
    pdbs.create(&PostParams::default(), &budget(json!({"maxUnavailable": 1}))).await.unwrap();
    wait_for(20, "the budget to allow one disruption", || allowed(&pdbs, 1)).await;

    let mut drain = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(s.sim.kubeconfig_path())
        .arg("--cache-dir")
        .arg(s.dir.path().join("kubectl-cache"))
        .args(["drain", "node-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    // Stand in for the pods' controller: an evicted pod comes back on node-3.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let replace_gone = || async {
        for name in ["web-0", "web-1"] {
            if pods.get_opt(name).await.unwrap().is_none() {
                pods.create(&PostParams::default(), &pod(name, "node-3", Some(&owner))).await.unwrap();
            }
        }
    };
    let status = loop {
        if let Some(status) = drain.try_wait().unwrap() {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "kubectl drain did not finish");
        replace_gone().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The last pod may have gone just before kubectl finished.
    replace_gone().await;
    let out = drain.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "kubectl drain failed:\n{stdout}\n{stderr}");
    for want in
        ["node/node-1 cordoned", "evicting pod default/web-0", "evicting pod default/web-1", "node/node-1 drained"]
    {
        assert!(stdout.contains(want), "{want:?} in\n{stdout}\n{stderr}");
    }
    // Both pods were evicted at once: one of them waited for the budget.
    assert!(
        stderr.contains("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."),
        "{stdout}\n{stderr}"
    );
    assert!(s.sim.requests().count(|r| r.subresource.as_deref() == Some("eviction") && r.code == 429) >= 1);
    let node = s.kubectl_ok(&["get", "node", "node-1", "-o", "jsonpath={.spec.unschedulable}"]);
    assert_eq!(node, "true");
    for name in ["web-0", "web-1"] {
        wait_for(20, "the replacement to be Ready", || ready(&pods, name)).await;
        let p = pods.get(name).await.unwrap();
        assert_eq!(p.spec.unwrap().node_name.as_deref(), Some("node-3"));
    }
    s.sim.shutdown().await;
}
