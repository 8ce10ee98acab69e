use std::time::Duration;

use kube_sim::ResourceRef;
use kube_sim::patch::PatchType;
use serde_json::json;

use crate::common::{Env, condition, pod, pvc, zone_of};

fn with_claim(name: &str, claim: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = extra;
    spec["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]);
    spec["containers"] =
        json!([{"name": "main", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]);
    pod(name, spec)
}

#[tokio::test]
async fn wait_for_first_consumer_binds_after_scheduling_in_the_pods_zone() {
    let env = Env::start(20.0).await;
    env.create("persistentvolumeclaims", Some("default"), pvc("data-0", None, "10Gi"));
    let claim = env
        .wait("WaitForFirstConsumer event", |e| {
            e.events_of("data-0")
                .iter()
                .any(|m| m.starts_with("WaitForFirstConsumer"))
                .then(|| e.get("persistentvolumeclaims", Some("default"), "data-0").unwrap())
        })
        .await;
    assert_eq!(claim["status"]["phase"], "Pending");
    assert!(claim["spec"]["volumeName"].is_null());
    assert_eq!(claim["metadata"]["finalizers"], json!(["kubernetes.io/pvc-protection"]));
    env.create(
        "pods",
        Some("default"),
        with_claim("db", "data-0", json!({"nodeSelector": {"topology.kubernetes.io/zone": "zone-c"}})),
    );
    let p = env.wait_pod("db", "Running", |p| p["status"]["phase"] == "Running").await;
    assert_eq!(p["spec"]["nodeName"], "node-3");
    let claim = env.get("persistentvolumeclaims", Some("default"), "data-0").unwrap();
    assert_eq!(claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"], "node-3");
    assert_eq!(claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"], "yes");
    assert_eq!(claim["status"]["phase"], "Bound");
    assert_eq!(claim["status"]["capacity"]["storage"], "10Gi");
    let pv = env.get("persistentvolumes", None, claim["spec"]["volumeName"].as_str().unwrap()).unwrap();
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
        json!([zone_of(&env, "node-3")])
    );
    assert_eq!(pv["spec"]["claimRef"]["name"], "data-0");
    assert_eq!(pv["status"]["phase"], "Bound");
    env.wait_event("data-0", "ProvisioningSucceeded: Successfully provisioned volume pvc-").await;

    // The claim pins later pods to its zone.
    env.client
        .delete(
            &ResourceRef::new("", "v1", "pods"),
            Some("default"),
            "db",
            &kube_sim::DeleteOptions { grace_period_seconds: Some(0), ..Default::default() },
        )
        .unwrap();
    env.create("pods", Some("default"), with_claim("db2", "data-0", json!({})));
    let p = env.wait_pod("db2", "binding", |p| p["spec"]["nodeName"].is_string()).await;
    assert_eq!(p["spec"]["nodeName"], "node-3");
    env.shutdown().await;
}

#[tokio::test]
async fn a_claim_without_a_class_gets_the_default_one_at_admission() {
    let env = Env::start(20.0).await;
    env.create("persistentvolumeclaims", Some("default"), pvc("plain", None, "1Gi"));
    let claim = env.get("persistentvolumeclaims", Some("default"), "plain").unwrap();
    assert_eq!(claim["spec"]["storageClassName"], "standard");
    env.create("persistentvolumeclaims", Some("default"), pvc("empty", Some(""), "1Gi"));
    let claim = env.get("persistentvolumeclaims", Some("default"), "empty").unwrap();
    assert_eq!(claim["spec"]["storageClassName"], "", "an explicit empty class means no class");
    env.shutdown().await;
}

#[tokio::test]
async fn immediate_claims_bind_at_once_and_their_volume_goes_with_them() {
    let env = Env::start(20.0).await;
    env.create("persistentvolumeclaims", Some("default"), pvc("now", Some("standard-immediate"), "1Gi"));
    let claim = env
        .wait("Bound", |e| {
            e.get("persistentvolumeclaims", Some("default"), "now").filter(|c| c["status"]["phase"] == "Bound")
        })
        .await;
    let volume = claim["spec"]["volumeName"].as_str().unwrap().to_string();
    assert_eq!(claim["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"], "yes");
    env.create("pods", Some("default"), with_claim("user", "now", json!({})));
    env.wait_pod("user", "Running", |p| p["status"]["phase"] == "Running").await;
    env.client
        .delete(&ResourceRef::new("", "v1", "persistentvolumeclaims"), Some("default"), "now", &Default::default())
        .unwrap();
    let c = env.get("persistentvolumeclaims", Some("default"), "now").unwrap();
    assert!(c["metadata"]["deletionTimestamp"].is_string(), "protected while the pod uses it");
    env.client.delete(&ResourceRef::new("", "v1", "pods"), Some("default"), "user", &Default::default()).unwrap();
    env.wait("claim and volume gone", |e| {
        (e.get("persistentvolumeclaims", Some("default"), "now").is_none()
            && e.get("persistentvolumes", None, &volume).is_none())
        .then_some(())
    })
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn expansion_reports_the_real_conditions_then_grows_the_capacity() {
    let env = Env::start(1.0).await;
    env.create("persistentvolumeclaims", Some("default"), pvc("grow", Some("standard-immediate"), "1Gi"));
    env.create("pods", Some("default"), with_claim("user", "grow", json!({})));
    env.sim.clock().advance(Duration::from_secs(5));
    env.wait_pod("user", "Running", |p| p["status"]["phase"] == "Running").await;
    let pvcs = ResourceRef::new("", "v1", "persistentvolumeclaims");
    env.client
        .patch(
            &pvcs,
            Some("default"),
            "grow",
            None,
            PatchType::Merge,
            &json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}),
        )
        .unwrap();
    let c = env
        .wait("Resizing", |e| {
            e.get("persistentvolumeclaims", Some("default"), "grow")
                .filter(|c| condition(c, "Resizing")["status"] == "True")
        })
        .await;
    assert_eq!(c["status"]["allocatedResources"]["storage"], "2Gi");
    assert_eq!(c["status"]["allocatedResourceStatuses"]["storage"], "ControllerResizeInProgress");
    assert_eq!(c["status"]["capacity"]["storage"], "1Gi");
    env.sim.clock().advance(Duration::from_secs(1));
    let c = env
        .wait("FileSystemResizePending", |e| {
            e.get("persistentvolumeclaims", Some("default"), "grow")
                .filter(|c| condition(c, "FileSystemResizePending")["status"] == "True")
        })
        .await;
    assert_eq!(c["status"]["allocatedResourceStatuses"]["storage"], "NodeResizePending");
    let pv = env.get("persistentvolumes", None, c["spec"]["volumeName"].as_str().unwrap()).unwrap();
    assert_eq!(pv["spec"]["capacity"]["storage"], "2Gi");
    env.sim.clock().advance(Duration::from_secs(1));
    let c = env
        .wait("capacity", |e| {
            e.get("persistentvolumeclaims", Some("default"), "grow")
                .filter(|c| c["status"]["capacity"]["storage"] == "2Gi")
        })
        .await;
    assert!(c["status"]["conditions"].is_null());
    assert!(c["status"]["allocatedResourceStatuses"].is_null());
    env.wait_event("user", "FileSystemResizeSuccessful: MountVolume.NodeExpandVolume succeeded").await;
    env.shutdown().await;
}

#[tokio::test]
async fn expansion_is_refused_for_a_class_that_does_not_allow_it() {
    let env = Env::start(20.0).await;
    env.create(
        "storageclasses",
        None,
        json!({"metadata": {"name": "fixed"}, "provisioner": "csi.kube-sim.io", "volumeBindingMode": "Immediate"}),
    );
    env.create("persistentvolumeclaims", Some("default"), pvc("fixed", Some("fixed"), "1Gi"));
    env.wait("Bound", |e| {
        e.get("persistentvolumeclaims", Some("default"), "fixed").filter(|c| c["status"]["phase"] == "Bound")
    })
    .await;
    // The PersistentVolumeClaimResize admission plugin refuses the write itself.
    let pvcs = ResourceRef::new("", "v1", "persistentvolumeclaims");
    let refused = env
        .client
        .patch(
            &pvcs,
            Some("default"),
            "fixed",
            None,
            PatchType::Merge,
            &json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}),
        )
        .unwrap_err();
    assert_eq!(refused.code, 403);
    assert!(refused.message.ends_with(
        "is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
    ), "{}", refused.message);
    let c = env.get("persistentvolumeclaims", Some("default"), "fixed").unwrap();
    assert_eq!(c["spec"]["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(c["status"]["capacity"]["storage"], "1Gi");
    assert!(c["status"]["conditions"].is_null());
    env.shutdown().await;
}

fn attributes_class(name: &str, parameters: serde_json::Value) -> serde_json::Value {
    json!({"metadata": {"name": name}, "driverName": "csi.kube-sim.io", "parameters": parameters})
}

fn set_attributes_class(
    env: &Env,
    claim: &str,
    class: serde_json::Value,
) -> Result<serde_json::Value, kube_sim::ApiError> {
    let pvcs = ResourceRef::new("", "v1", "persistentvolumeclaims");
    let patch = json!({"spec": {"volumeAttributesClassName": class}});
    env.client.patch(&pvcs, Some("default"), claim, None, PatchType::Merge, &patch)
}

#[tokio::test]
async fn a_volume_is_made_with_its_attributes_class_once_the_class_exists() {
    let env = Env::start(1.0).await;
    let mut claim = pvc("tuned", Some("standard-immediate"), "1Gi");
    claim["spec"]["volumeAttributesClassName"] = json!("gold");
    env.create("persistentvolumeclaims", Some("default"), claim);
    env.sim.clock().advance(Duration::from_secs(2));
    env.wait("ProvisioningFailed", |e| e.events_of("tuned").into_iter().find(|m| m.starts_with("ProvisioningFailed")))
        .await;
    let events = env.events_of("tuned");
    assert!(
        events.iter().any(|m| m
            == "ProvisioningFailed: failed to provision volume with StorageClass \"standard-immediate\": \
                volumeattributesclass.storage.k8s.io \"gold\" not found"),
        "{events:?}"
    );
    assert_eq!(env.get("persistentvolumeclaims", Some("default"), "tuned").unwrap()["status"]["phase"], "Pending");
    env.create("volumeattributesclasses", None, attributes_class("gold", json!({"iops": "3000"})));
    let c = env
        .wait("Bound", |e| {
            e.get("persistentvolumeclaims", Some("default"), "tuned").filter(|c| c["status"]["phase"] == "Bound")
        })
        .await;
    assert_eq!(c["status"]["currentVolumeAttributesClassName"], "gold");
    assert!(c["status"]["modifyVolumeStatus"].is_null());
    let pv = env.get("persistentvolumes", None, c["spec"]["volumeName"].as_str().unwrap()).unwrap();
    assert_eq!(pv["spec"]["volumeAttributesClassName"], "gold");
    env.shutdown().await;
}

#[tokio::test]
async fn a_bound_claim_moves_to_another_attributes_class_as_the_external_resizer_does() {
    let env = Env::start(1.0).await;
    env.create("volumeattributesclasses", None, attributes_class("gold", json!({"iops": "3000"})));
    let mut claim = pvc("tuned", Some("standard-immediate"), "1Gi");
    claim["spec"]["volumeAttributesClassName"] = json!("gold");
    env.create("persistentvolumeclaims", Some("default"), claim);
    env.sim.clock().advance(Duration::from_secs(2));
    let get = |e: &Env| e.get("persistentvolumeclaims", Some("default"), "tuned").unwrap();
    env.wait("Bound", |e| (get(e)["status"]["currentVolumeAttributesClassName"] == "gold").then_some(())).await;

    // A class that does not exist yet: Pending, the volume keeps its class.
    set_attributes_class(&env, "tuned", json!("platinum")).unwrap();
    let c = env
        .wait("Pending", |e| Some(get(e)).filter(|c| c["status"]["modifyVolumeStatus"]["status"] == "Pending"))
        .await;
    assert_eq!(c["status"]["currentVolumeAttributesClassName"], "gold");
    assert!(condition(&c, "ModifyingVolume").is_null(), "no condition while Pending");

    // Once it exists: InProgress, then applied to the PV and the claim's status.
    env.create("volumeattributesclasses", None, attributes_class("platinum", json!({"iops": "6000"})));
    let c = env
        .wait("InProgress", |e| Some(get(e)).filter(|c| c["status"]["modifyVolumeStatus"]["status"] == "InProgress"))
        .await;
    assert_eq!(c["status"]["modifyVolumeStatus"]["targetVolumeAttributesClassName"], "platinum");
    assert_eq!(condition(&c, "ModifyingVolume")["message"], "ModifyVolume operation in progress.");
    env.sim.clock().advance(Duration::from_secs(1));
    let c = env
        .wait("applied", |e| Some(get(e)).filter(|c| c["status"]["currentVolumeAttributesClassName"] == "platinum"))
        .await;
    assert!(c["status"]["modifyVolumeStatus"].is_null());
    assert!(condition(&c, "ModifyingVolume").is_null());
    let pv = env.get("persistentvolumes", None, c["spec"]["volumeName"].as_str().unwrap()).unwrap();
    assert_eq!(pv["spec"]["volumeAttributesClassName"], "platinum");
    env.wait_event("tuned", "VolumeModifySuccessful: external resizer modified volume tuned").await;
    let events = env.events_of("tuned");
    assert!(events.contains(&"VolumeModify: external resizer is modifying volume tuned with vac platinum".to_string()));
    assert!(
        events.contains(
            &"VolumeModifySuccessful: external resizer modified volume tuned with vac platinum successfully "
                .to_string()
        ),
        "{events:?}"
    );

    // A class the driver refuses: Infeasible with the driver's words, not retried.
    env.create("volumeattributesclasses", None, attributes_class("odd", json!({"latency": "1"})));
    set_attributes_class(&env, "tuned", json!("odd")).unwrap();
    env.sim.clock().advance(Duration::from_secs(1));
    let c = env
        .wait("Infeasible", |e| Some(get(e)).filter(|c| c["status"]["modifyVolumeStatus"]["status"] == "Infeasible"))
        .await;
    assert_eq!(c["status"]["modifyVolumeStatus"]["targetVolumeAttributesClassName"], "odd");
    assert_eq!(c["status"]["currentVolumeAttributesClassName"], "platinum");
    let error = condition(&c, "ModifyVolumeError")["message"].as_str().unwrap().to_string();
    assert!(
        error.starts_with(
            "ModifyVolume failed with error: rpc error: code = InvalidArgument desc = parameter \"latency\" is not supported"
        ),
        "{error}"
    );
    env.wait_event("tuned", "VolumeModifyFailed: rpc error: code = InvalidArgument").await;

    // Naming the volume's class again ends it; a class is never removed from a claim.
    set_attributes_class(&env, "tuned", json!("platinum")).unwrap();
    env.wait("cleared", |e| Some(get(e)).filter(|c| c["status"]["modifyVolumeStatus"].is_null())).await;
    let c = get(&env);
    assert!(condition(&c, "ModifyVolumeError").is_null());
    let refused = set_attributes_class(&env, "tuned", serde_json::Value::Null).unwrap_err();
    assert_eq!(refused.code, 422);
    env.shutdown().await;
}
