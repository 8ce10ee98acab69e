//! Deletion: finalizers, deletionTimestamp, preconditions, garbage collection
//! (background, foreground, orphan) and namespace termination.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::common::{Sim, api_err, wait_for};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn owned_secret(name: &str, owner: &ConfigMap, block: bool) -> Secret {
    let mut oref = owner.controller_owner_ref(&()).unwrap();
    oref.block_owner_deletion = Some(block);
    serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [oref]}})).unwrap()
}

#[tokio::test]
async fn finalizers_hold_deletion_until_released() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let mut o = cm("f");
    o.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    let created = api.create(&PostParams::default(), &o).await.unwrap();

    let pre = DeleteParams {
        preconditions: Some(Preconditions { uid: Some("wrong".into()), resource_version: None }),
        ..Default::default()
    };
    let e = api_err(api.delete("f", &pre).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert!(e.message.contains("Precondition failed: UID in precondition: wrong"), "{}", e.message);

    let pending = api.delete("f", &DeleteParams::default()).await.unwrap();
    let marked = pending.left().expect("deletion waits for finalizers");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    assert!(marked.resource_version() > created.resource_version());

    let e = api_err(
        api.patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "new"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(e.message.contains("no new finalizers can be added if the object is being deleted"), "{}", e.message);

    api.patch("f", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert!(api.get_opt("f").await.unwrap().is_none());
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let s = Sim::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(s.client.clone());
    let owner = cms.create(&PostParams::default(), &cm("owner")).await.unwrap();
    secrets.create(&PostParams::default(), &owned_secret("child", &owner, false)).await.unwrap();
    let gone = cms.delete("owner", &DeleteParams::background()).await.unwrap();
    assert!(gone.is_right(), "no finalizers: deleted at once");
    wait_for(10, "the dependent to be collected", || async { secrets.get_opt("child").await.unwrap().is_none() }).await;
    assert!(
        s.sim.requests().count(|r| r.client.contains("generic-garbage-collector") && r.verb == kube_sim::Verb::Delete)
            >= 1
    );
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let s = Sim::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(s.client.clone());
    let owner = cms.create(&PostParams::default(), &cm("owner")).await.unwrap();
    let mut child = owned_secret("child", &owner, true);
    child.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    secrets.create(&PostParams::default(), &child).await.unwrap();
    let marked = cms.delete("owner", &DeleteParams::foreground()).await.unwrap().left().unwrap();
    assert_eq!(marked.metadata.finalizers, Some(vec!["foregroundDeletion".to_string()]));
    wait_for(10, "the dependent to be marked", || async {
        secrets.get("child").await.unwrap().metadata.deletion_timestamp.is_some()
    })
    .await;
    assert!(cms.get_opt("owner").await.unwrap().is_some(), "the owner waits for its blocking dependent");
    secrets
        .patch("child", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    wait_for(10, "the owner to go", || async { cms.get_opt("owner").await.unwrap().is_none() }).await;
}

#[tokio::test]
async fn orphan_deletion_strips_owner_references() {
    let s = Sim::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(s.client.clone());
    let owner = cms.create(&PostParams::default(), &cm("owner")).await.unwrap();
    secrets.create(&PostParams::default(), &owned_secret("child", &owner, false)).await.unwrap();
    let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), ..Default::default() };
    cms.delete("owner", &dp).await.unwrap();
    wait_for(10, "the owner to go", || async { cms.get_opt("owner").await.unwrap().is_none() }).await;
    let child = secrets.get("child").await.unwrap();
    assert!(child.metadata.owner_references.is_none(), "{:?}", child.metadata.owner_references);
}

#[tokio::test]
async fn namespace_termination_empties_then_removes_the_namespace() {
    let s = Sim::start().await;
    let nss: Api<Namespace> = Api::all(s.client.clone());
    nss.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), "team");
    cms.create(&PostParams::default(), &cm("plain")).await.unwrap();
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();

    let ns = nss.delete("team", &DeleteParams::default()).await.unwrap().left().unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    let e = api_err(cms.create(&PostParams::default(), &cm("late")).await.unwrap_err());
    assert_eq!(e.code, 403);
    assert!(e.message.contains("because it is being terminated"), "{}", e.message);
    wait_for(10, "contents to be deleted", || async { cms.get_opt("plain").await.unwrap().is_none() }).await;
    assert!(nss.get_opt("team").await.unwrap().is_some(), "a finalizer keeps the namespace");
    cms.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    wait_for(10, "the namespace to go", || async { nss.get_opt("team").await.unwrap().is_none() }).await;
    let e = api_err(nss.delete("default", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(e.code, 403);
}
