//! The request log and fault injection.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_sim::{FaultAction, FaultRule, Verb};
use serde_json::json;

use crate::common::{Sim, api_err};

#[tokio::test]
async fn requests_are_counted_by_verb_resource_and_client() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    api.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap())
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::apply("tikv-operator"),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "1"}})),
    )
    .await
    .unwrap();
    let log = s.sim.requests();
    assert_eq!(log.count(|r| r.verb == Verb::Create && r.resource == "configmaps"), 1);
    assert_eq!(log.count(|r| r.verb == Verb::Patch && r.client.contains("tikv-operator")), 1);
    let counts = log.counts();
    assert!(counts.keys().any(|(v, res, _)| *v == Verb::Patch && res == "configmaps"));
    log.reset();
    assert_eq!(log.count(|_| true), 0);
}

#[tokio::test]
async fn injected_faults_fail_matching_requests() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let faults = s.sim.faults();
    let id =
        faults.inject(FaultRule::new(FaultAction::InternalError).verb(Verb::Create).resource("configmaps").times(1));
    let obj: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap();
    let e = api_err(api.create(&PostParams::default(), &obj).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(faults.hits(id), 1);
    // kube-rs retries a 429 after its Retry-After; the log shows both attempts.
    faults.inject(FaultRule::new(FaultAction::TooManyRequests { retry_after_seconds: 1 }).verb(Verb::Get).times(1));
    api.get("a").await.unwrap();
    let gets =
        s.sim.requests().snapshot().into_iter().filter(|r| r.verb == Verb::Get).map(|r| r.code).collect::<Vec<_>>();
    assert_eq!(gets, [429, 200]);
    faults.inject(FaultRule::new(FaultAction::Conflict).verb(Verb::Patch).fraction(1.0));
    let e =
        api_err(api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"a": "b"}}))).await.unwrap_err());
    assert_eq!(e.code, 409);
    faults.clear();
    faults.inject(FaultRule::new(FaultAction::Timeout).verb(Verb::Get));
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(300), api.get("a")).await;
    assert!(timed_out.is_err(), "the request hangs until the client gives up");
}

#[tokio::test]
async fn in_process_clients_are_logged_under_their_name() {
    let s = Sim::start().await;
    let kubelet = s.sim.store().client("kubelet/node-1");
    let pods = kube_sim::ResourceRef::new("", "v1", "pods");
    kubelet
        .create(
            &pods,
            Some("default"),
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        )
        .unwrap();
    s.sim.store().client("default-scheduler").bind("default", "p", "node-1").unwrap();
    let p = kubelet.patch_status(&pods, Some("default"), "p", &json!({"status": {"phase": "Running"}})).unwrap();
    assert_eq!(p["spec"]["nodeName"], "node-1");
    assert_eq!(p["status"]["phase"], "Running");
    assert_eq!(s.sim.requests().count(|r| r.client == "kubelet/node-1" && r.in_process), 2);
    assert_eq!(s.sim.requests().count(|r| r.subresource.as_deref() == Some("binding")), 1);
}

#[tokio::test]
async fn deletions_record_the_objects_they_took() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let mut uids = std::collections::BTreeMap::new();
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let obj: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}})).unwrap();
        let created = api.create(&PostParams::default(), &obj).await.unwrap();
        uids.insert(name, created.metadata.uid.unwrap());
    }
    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels("app=x")).await.unwrap();
    api.delete("c", &DeleteParams::default()).await.unwrap();
    s.sim
        .store()
        .client("in-process")
        .delete(&kube_sim::ResourceRef::new("", "v1", "configmaps"), Some("default"), "c", &Default::default())
        .unwrap_err();

    let deletes: Vec<(Verb, Vec<(String, String)>)> = s
        .sim
        .requests()
        .snapshot()
        .into_iter()
        .filter(|r| matches!(r.verb, Verb::Delete | Verb::DeleteCollection))
        .map(|r| (r.verb, r.deleted.iter().map(|d| (format!("{}/{}", d.namespace, d.name), d.uid.clone())).collect()))
        .collect();
    let taken = |names: &[&str]| -> Vec<(String, String)> {
        names.iter().map(|n| (format!("default/{n}"), uids[n].clone())).collect()
    };
    assert_eq!(
        deletes,
        [(Verb::DeleteCollection, taken(&["a", "b"])), (Verb::Delete, taken(&["c"])), (Verb::Delete, vec![])],
        "a deletecollection says what it took; a failed delete took nothing"
    );
}
