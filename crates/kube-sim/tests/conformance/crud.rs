//! Built-in resources through kube-rs `Api`: CRUD, resourceVersions, conflicts, no-ops,
//! patch kinds, selectors, pagination, immutable fields.

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{Sim, api_err};

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})).unwrap()
}

fn rv(o: &impl kube::Resource) -> u64 {
    o.meta().resource_version.as_deref().unwrap().parse().unwrap()
}

#[tokio::test]
async fn crud_sets_server_metadata_and_orders_resource_versions() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let a = api.create(&PostParams::default(), &cm("a", json!({}))).await.unwrap();
    let m = &a.metadata;
    assert!(m.uid.is_some() && m.creation_timestamp.is_some());
    assert_eq!(m.namespace.as_deref(), Some("default"));
    assert_eq!(m.generation, None, "ConfigMaps have no generation in kube-apiserver");
    let b = api.create(&PostParams::default(), &cm("b", json!({}))).await.unwrap();
    assert!(rv(&b) > rv(&a));
    let got = api.get("a").await.unwrap();
    assert_eq!(got.metadata.resource_version, a.metadata.resource_version);
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.iter().map(|c| c.metadata.name.clone().unwrap()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(list.metadata.resource_version.unwrap().parse::<u64>().unwrap() >= rv(&b));

    let dup = api_err(api.create(&PostParams::default(), &cm("a", json!({}))).await.unwrap_err());
    assert_eq!(
        (dup.code, dup.reason.as_str(), dup.message.as_str()),
        (409, "AlreadyExists", "configmaps \"a\" already exists")
    );

    let mut stale = a.clone();
    stale.data = Some([("k".to_string(), "changed".to_string())].into());
    let updated = api.replace("a", &PostParams::default(), &stale).await.unwrap();
    assert!(rv(&updated) > rv(&b));
    let conflict = api_err(api.replace("a", &PostParams::default(), &stale).await.unwrap_err());
    assert_eq!(conflict.code, 409);
    assert_eq!(conflict.reason, "Conflict");
    assert_eq!(
        conflict.message,
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );

    api.delete("a", &DeleteParams::default()).await.unwrap();
    let gone = api_err(api.get("a").await.unwrap_err());
    assert_eq!(
        (gone.code, gone.reason.as_str(), gone.message.as_str()),
        (404, "NotFound", "configmaps \"a\" not found")
    );
    assert!(api.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn writes_that_change_nothing_keep_the_resource_version() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let a = api.create(&PostParams::default(), &cm("a", json!({"x": "1"}))).await.unwrap();
    let before = s.sim.store().revision();
    let same = api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "v"}}))).await.unwrap();
    assert_eq!(same.metadata.resource_version, a.metadata.resource_version);
    let replaced = api.replace("a", &PostParams::default(), &a).await.unwrap();
    assert_eq!(replaced.metadata.resource_version, a.metadata.resource_version);
    let applied = api
        .patch(
            "a",
            &PatchParams::apply("test").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.metadata.resource_version, a.metadata.resource_version);
    assert_eq!(s.sim.store().revision(), before);
}

#[tokio::test]
async fn generate_name_and_namespace_checks() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let o: ConfigMap = serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let made = api.create(&PostParams::default(), &o).await.unwrap();
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    let missing: Api<ConfigMap> = Api::namespaced(s.client.clone(), "nope");
    let e = api_err(missing.create(&PostParams::default(), &cm("x", json!({}))).await.unwrap_err());
    assert_eq!((e.code, e.message.as_str()), (404, "namespaces \"nope\" not found"));
    let bad = api_err(api.create(&PostParams::default(), &cm("Bad_Name", json!({}))).await.unwrap_err());
    assert_eq!(bad.code, 422);
    assert!(bad.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", bad.message);
}

#[tokio::test]
async fn json_patch_test_quirk_and_strategic_merge_on_pods() {
    let s = Sim::start().await;
    let api: Api<Pod> = Api::default_namespaced(s.client.clone());
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "img:1", "env": [{"name": "X", "value": "1"}]},
        {"name": "b", "image": "img:1"}]}}))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/f"]}
    ]))
    .unwrap();
    let p = api.patch("p", &PatchParams::default(), &Patch::Json::<()>(jp)).await.unwrap();
    assert_eq!(p.metadata.finalizers, Some(vec!["example.com/f".to_string()]));
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "other"}])).unwrap();
    let e = api_err(api.patch("p", &PatchParams::default(), &Patch::Json::<()>(failing)).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));

    let smp = json!({"spec": {"containers": [{"name": "a", "image": "img:2"}]}});
    let p = api.patch("p", &PatchParams::default(), &Patch::Strategic(smp)).await.unwrap();
    let cs = p.spec.unwrap().containers;
    assert_eq!(cs.len(), 2, "containers merge by name");
    assert_eq!(cs[0].image.as_deref(), Some("img:2"));
    assert_eq!(cs[0].env.as_ref().unwrap().len(), 1, "untouched fields stay");

    let forbidden = json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}]}});
    let e = api_err(api.patch("p", &PatchParams::default(), &Patch::Strategic(forbidden)).await.unwrap_err());
    assert_eq!(e.code, 422);
    assert!(
        e.message.starts_with("Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn pvc_spec_is_immutable_except_growing_storage() {
    let s = Sim::start().await;
    let classes: Api<StorageClass> = Api::all(s.client.clone());
    for (name, expandable) in [("expandable", true), ("fixed", false)] {
        let class: StorageClass = serde_json::from_value(json!({"metadata": {"name": name},
            "provisioner": "example.com/csi", "allowVolumeExpansion": expandable}))
        .unwrap();
        classes.create(&PostParams::default(), &class).await.unwrap();
    }
    let api: Api<PersistentVolumeClaim> = Api::default_namespaced(s.client.clone());
    for (name, class) in [("data", "expandable"), ("pinned", "fixed")] {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
            "storageClassName": class, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
        .unwrap();
        api.create(&PostParams::default(), &pvc).await.unwrap();
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Bound"}})))
            .await
            .unwrap();
    }
    // The PersistentVolumeClaimResize admission plugin: only an expandable class may grow.
    let e = api_err(
        api.patch(
            "pinned",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "persistentvolumeclaims \"pinned\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
    );
    let grown = api
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})),
        )
        .await
        .unwrap();
    assert_eq!(grown.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0, "2Gi");
    let e = api_err(
        api.patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "PersistentVolumeClaim \"data\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value"
    );
    let e = api_err(
        api.patch("data", &PatchParams::default(), &Patch::Merge(json!({"spec": {"storageClassName": "other"}})))
            .await
            .unwrap_err(),
    );
    assert!(e.message.contains("spec: Forbidden: spec is immutable after creation"), "{}", e.message);
}

#[tokio::test]
async fn selectors_and_pagination() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    for (n, tier) in [("a", "web"), ("b", "db"), ("c", "web"), ("d", "cache"), ("e", "web")] {
        api.create(&PostParams::default(), &cm(n, json!({"tier": tier}))).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items.into_iter().map(|c| c.metadata.name.unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(names(api.list(&ListParams::default().labels("tier=web")).await.unwrap()), ["a", "c", "e"]);
    assert_eq!(names(api.list(&ListParams::default().labels("tier in (db,cache)")).await.unwrap()), ["b", "d"]);
    assert_eq!(names(api.list(&ListParams::default().labels("tier!=web,tier")).await.unwrap()), ["b", "d"]);
    assert_eq!(names(api.list(&ListParams::default().fields("metadata.name=c")).await.unwrap()), ["c"]);
    let e = api_err(api.list(&ListParams::default().fields("spec.nodeName=x")).await.unwrap_err());
    assert_eq!((e.code, e.message.as_str()), (400, "field label not supported: spec.nodeName"));

    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.clone().unwrap();
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    // A write between pages does not show up: pages come from one snapshot.
    api.create(&PostParams::default(), &cm("bb", json!({}))).await.unwrap();
    let second = api.list(&ListParams::default().limit(2).continue_token(&token)).await.unwrap();
    assert_eq!(names(second.clone()), ["c", "d"]);
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);
    let third = api
        .list(&ListParams::default().limit(2).continue_token(second.metadata.continue_.as_deref().unwrap()))
        .await
        .unwrap();
    assert_eq!(names(third.clone()), ["e"]);
    assert!(third.metadata.continue_.is_none());
}
