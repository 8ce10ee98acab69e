//! CustomResourceDefinitions and custom resources: registration, discovery, status and
//! scale subresources, generation, admission (pruning, fieldValidation), 415 for
//! strategic merge.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{self, Discovery};
use kube::runtime::wait::{await_condition, conditions};
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::common::{Sim, api_err};

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd",
    scale = r#"{"specReplicasPath":".spec.replicas", "statusReplicasPath":".status.replicas"}"#,
    printcolumn = r#"{"name":"Replicas", "type":"integer", "jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Ready", "type":"string", "jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
pub struct WidgetSpec {
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

pub fn widget(name: &str, replicas: i32) -> Widget {
    Widget::new(name, WidgetSpec { replicas, color: None })
}

/// Installs the Widget CRD and waits until it is established.
pub async fn install_widgets(s: &Sim) {
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    crds.create(&PostParams::default(), &Widget::crd()).await.unwrap();
    let established = await_condition(crds, "widgets.example.com", conditions::is_crd_established());
    tokio::time::timeout(std::time::Duration::from_secs(10), established).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_crd_registers_its_resource_in_discovery_and_deleting_it_removes_it() {
    let s = Sim::start().await;
    install_widgets(&s).await;
    let d = Discovery::new(s.client.clone()).run().await.unwrap();
    let (ar, caps) = d.resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget")).unwrap();
    assert_eq!(ar.plural, "widgets");
    assert!(caps.supports_operation(discovery::verbs::WATCH));
    assert!(
        caps.subresources.iter().any(|(r, _)| r.plural == "widgets/status" || r.plural == "status"),
        "{:?}",
        caps.subresources
    );
    let api: Api<Widget> = Api::default_namespaced(s.client.clone());
    api.create(&PostParams::default(), &widget("w", 1)).await.unwrap();
    let dynamic: Api<DynamicObject> = Api::default_namespaced_with(s.client.clone(), &ar);
    assert_eq!(dynamic.get("w").await.unwrap().name_any(), "w");

    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default()).await.unwrap();
    let gone = await_condition(crds, "widgets.example.com", conditions::is_deleted(""));
    tokio::time::timeout(std::time::Duration::from_secs(10), gone).await.unwrap().unwrap();
    let e = api_err(api.get("w").await.unwrap_err());
    assert_eq!(e.code, 404);
    assert!(s.sim.store().resource("example.com", "v1", "widgets").is_none());
}

#[tokio::test]
async fn status_and_scale_subresources_and_generation() {
    let s = Sim::start().await;
    install_widgets(&s).await;
    let api: Api<Widget> = Api::default_namespaced(s.client.clone());
    let mut w = widget("w", 1);
    w.status = Some(WidgetStatus { replicas: Some(9), conditions: None });
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert!(created.status.is_none(), "status is dropped on create when it is a subresource");
    assert_eq!(created.metadata.generation, Some(1));

    let st = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}, "status": {"replicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(st.spec.replicas, 1, "status writes ignore spec");
    assert_eq!(st.status.as_ref().unwrap().replicas, Some(1));
    assert_eq!(st.metadata.generation, Some(1), "status writes keep generation");

    let main = api
        .patch("w", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 2}, "status": {"replicas": 7}})))
        .await
        .unwrap();
    assert_eq!(main.status.as_ref().unwrap().replicas, Some(1), "main writes ignore status");
    assert_eq!(main.metadata.generation, Some(2));
    let labelled = api
        .patch("w", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})))
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2), "metadata edits keep generation");

    let scale = api.get_scale("w").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(scale.status.as_ref().unwrap().replicas, 1);
    let scaled =
        api.patch_scale("w", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}}))).await.unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(4));
    assert_eq!(api.get("w").await.unwrap().spec.replicas, 4);

    let e = api_err(
        api.patch("w", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"replicas": 3}}))).await.unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (415, "UnsupportedMediaType"));

    let mut no_rv = api.get("w").await.unwrap();
    no_rv.metadata.resource_version = None;
    let e = api_err(api.replace("w", &PostParams::default(), &no_rv).await.unwrap_err());
    assert_eq!(e.code, 422, "custom resources need a resourceVersion on update: {}", e.message);
}

#[tokio::test]
async fn admission_prunes_unknown_fields_and_honours_field_validation() {
    let s = Sim::start().await;
    install_widgets(&s).await;
    let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"replicas": 1, "bogus": true}});
    let post = |mode: &str| {
        http::Request::post(format!("/apis/example.com/v1/namespaces/default/widgets?fieldValidation={mode}"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap()
    };
    let e = api_err(s.client.request_text(post("Strict")).await.unwrap_err());
    assert_eq!(e.code, 400);
    assert_eq!(
        e.message,
        "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.bogus\""
    );

    let resp = s.client.send(post("Warn").map(kube::client::Body::from)).await.unwrap();
    assert_eq!(resp.status(), 201);
    let warning = resp.headers().get("warning").unwrap().to_str().unwrap().to_string();
    assert_eq!(warning, r#"299 - "unknown field \"spec.bogus\"""#);
    let api: Api<DynamicObject> = Api::default_namespaced_with(
        s.client.clone(),
        &kube::core::ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget")),
    );
    assert_eq!(api.get("w").await.unwrap().data["spec"], json!({"replicas": 1}), "unknown fields are pruned");
}

#[tokio::test]
async fn schema_and_cel_rules_refuse_bad_custom_resources() {
    let s = Sim::start().await;
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {
                    "type": "object",
                    "x-kubernetes-validations": [
                        {"rule": "self.replicas <= 10", "message": "too many replicas"},
                        {"rule": "self.color == oldSelf.color", "message": "color is immutable"}
                    ],
                    "properties": {
                        "replicas": {"type": "integer", "minimum": 0},
                        "color": {"type": "string", "default": "red"}
                    }
                }}
            }}}]
        }
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = kube::core::ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Gizmo"));
    let api: Api<DynamicObject> = Api::default_namespaced_with(s.client.clone(), &ar);
    let gizmo = |replicas: i64| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g"}, "spec": {"replicas": replicas}}))
            .unwrap()
    };
    let e = api_err(api.create(&PostParams::default(), &gizmo(-1)).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.starts_with("Gizmo.example.com \"g\" is invalid: "), "{}", e.message);
    assert!(
        e.message
            .contains("spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"),
        "{}",
        e.message
    );
    let e = api_err(api.create(&PostParams::default(), &gizmo(11)).await.unwrap_err());
    assert!(e.message.contains("too many replicas"), "{}", e.message);

    let created = api.create(&PostParams::default(), &gizmo(1)).await.unwrap();
    assert_eq!(created.data["spec"]["color"], "red", "schema defaults apply");
    let e = api_err(
        api.patch("g", &PatchParams::default(), &Patch::Merge(json!({"spec": {"color": "blue"}}))).await.unwrap_err(),
    );
    assert!(e.message.contains("color is immutable"), "{}", e.message);
    api.patch("g", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 2}}))).await.unwrap();
}

/// Updates of one custom resource at once, each checked by a CEL rule: every one lands
/// (an update whose object changed while it was validated is worked out again from the
/// newer object, never written over it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_a_validated_custom_resource_all_land() {
    let s = Sim::start().await;
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "tallies.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "tallies", "singular": "tally", "kind": "Tally"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object",
                        "x-kubernetes-validations": [{"rule": "size(self.marks) <= 64", "message": "too many marks"}],
                        "properties": {"marks": {"type": "object", "additionalProperties": {"type": "integer"}}}},
                    "status": {"type": "object",
                        "properties": {"seen": {"type": "object", "additionalProperties": {"type": "integer"}}}}
                }
            }}}]
        }
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = kube::core::ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Tally"));
    let api: Api<DynamicObject> = Api::default_namespaced_with(s.client.clone(), &ar);
    let tally: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Tally", "metadata": {"name": "t"}, "spec": {"marks": {}}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &tally).await.unwrap();
    let writes = (0..32).map(|n| {
        let api = api.clone();
        tokio::spawn(async move {
            let key = format!("k{n}");
            let params = PatchParams::default();
            api.patch("t", &params, &Patch::Merge(json!({"spec": {"marks": {&key: n}}}))).await.unwrap();
            api.patch_status("t", &params, &Patch::Merge(json!({"status": {"seen": {&key: n}}}))).await.unwrap();
        })
    });
    for write in futures::future::join_all(writes).await {
        write.unwrap();
    }
    let t = api.get("t").await.unwrap();
    let marks = t.data["spec"]["marks"].as_object().unwrap();
    let seen = t.data["status"]["seen"].as_object().unwrap();
    assert_eq!((marks.len(), seen.len()), (32, 32), "every patch landed: {:?}", t.data);
    let many: serde_json::Map<String, serde_json::Value> = (0..65).map(|n| (format!("x{n}"), json!(n))).collect();
    let too_many = Patch::Merge(json!({"spec": {"marks": many}}));
    let e = api_err(api.patch("t", &PatchParams::default(), &too_many).await.unwrap_err());
    assert!(e.message.contains("too many marks"), "the rule still refuses: {}", e.message);
}
