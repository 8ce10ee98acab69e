//! End-to-end store labels and volume labels (issue #13, item 4) and VolumeAttributesClass
//! changes (item 3): the stores' labels in PD follow their nodes' zones and hosts and the
//! template's server labels (changed at run time, nothing restarted), a
//! node that loses its zone is reported and PD keeps the label, every PVC and PV carries
//! its instance's labels, and a VolumeAttributesClass change reaches every PVC with no
//! pod restarted (a class the driver refuses is reported). The operator is restarted in
//! the middle of each; the invariant watcher is on throughout.

use std::collections::BTreeSet;

use kube_sim::ResourceRef;
use kube_sim::patch::PatchType;
use serde_json::{Value, json};
use tikv_operator_api::condition::reasons;
use tikv_operator_api::names::{LABEL_CLUSTER, LABEL_GROUP, LABEL_INSTANCE, LABEL_STORE_ID};

use crate::env::{CLUSTER, Env, TIKV_GROUP, check_condition, name};

const ZONE: &str = "topology.kubernetes.io/zone";

fn pod_uids(env: &Env) -> BTreeSet<String> {
    env.list("pods").iter().map(|p| p["metadata"]["uid"].as_str().unwrap_or_default().to_owned()).collect()
}

fn node_of(env: &Env, tikv: &str) -> Result<String, String> {
    let pod = env.pod_of(tikv).ok_or_else(|| format!("{tikv} has no pod"))?;
    pod["spec"]["nodeName"].as_str().map(str::to_owned).ok_or_else(|| format!("{tikv}'s pod is not on a node"))
}

/// Every store's `zone` and `host` labels in PD are its node's.
fn store_labels_match_nodes(env: &Env) -> Result<(), String> {
    for tikv in env.names("tikvs") {
        let store = env.store_of(&tikv).ok_or_else(|| format!("{tikv} has no store"))?;
        let zone = env.zone_of(&tikv).ok_or_else(|| format!("{tikv}'s node has no zone"))?;
        let host = node_of(env, &tikv)?;
        let have = (store.labels.get("zone"), store.labels.get("host"));
        if have != (Some(&zone), Some(&host)) {
            return Err(format!("store of {tikv} has {:?}, its node is {host} in {zone}", store.labels));
        }
    }
    Ok(())
}

fn persistent_volume(env: &Env, name: &str) -> Option<Value> {
    let store = env.h.store();
    let info = store.resource("", "v1", "persistentvolumes")?;
    store.get(&info, None, name).ok()
}

/// Every TiKV PVC and its bound PV carry the cluster, group, instance and store-ID labels.
fn volumes_labelled(env: &Env) -> Result<(), String> {
    for (tikv, id) in env.store_ids() {
        let wanted =
            [(LABEL_CLUSTER, CLUSTER), (LABEL_GROUP, TIKV_GROUP), (LABEL_INSTANCE, &tikv), (LABEL_STORE_ID, &id)];
        for pvc in env.pvcs_of(&tikv) {
            let pv_name = pvc["spec"]["volumeName"].as_str().ok_or_else(|| format!("{} not bound", name(&pvc)))?;
            let pv = persistent_volume(env, pv_name).ok_or_else(|| format!("no PV {pv_name}"))?;
            for object in [&pvc, &pv] {
                for (key, value) in wanted {
                    if object["metadata"]["labels"][key] != value {
                        return Err(format!("{} lacks {key}={value}: {}", name(object), object["metadata"]["labels"]));
                    }
                }
            }
        }
    }
    Ok(())
}

fn set_node_zone(env: &Env, node: &str, zone: Option<&str>) {
    let patch = json!({"metadata": {"labels": {ZONE: zone}}});
    env.user
        .patch(&ResourceRef::new("", "v1", "nodes"), None, node, None, PatchType::Merge, &patch)
        .expect("node patch");
}

/// Stores labelled from their nodes, volumes from their instances; a node that loses
/// its zone label while the operator is down is reported once it is back, PD keeps the
/// zone, and labelling the node again brings the cluster back to Synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_labels_follow_the_nodes_and_a_lost_zone_is_kept_in_pd() {
    let mut env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    env.wait_for("every store labelled with its node's zone and host", store_labels_match_nodes).await;
    env.wait_for("every TiKV PVC and PV labelled", volumes_labelled).await;

    // A server label added to the template reaches PD at run time, nothing restarted.
    let before = pod_uids(&env);
    let pd_seq = env.pd_seq();
    let labels = json!({"spec": {"template": {"spec": {"server": {"labels": {"disk": "ssd"}}}}}});
    env.patch("tikvgroups", TIKV_GROUP, labels);
    env.wait_for("every store labelled disk=ssd, the cluster Ready", |e| {
        for tikv in e.names("tikvs") {
            let store = e.store_of(&tikv).ok_or_else(|| format!("{tikv} has no store"))?;
            if store.labels.get("disk").map(String::as_str) != Some("ssd") {
                return Err(format!("store of {tikv} has {:?}", store.labels));
            }
        }
        e.converged(3, 3)
    })
    .await;
    assert_eq!(pod_uids(&env), before, "no pod was recreated");
    let label_writes = env.operator_pd_log(pd_seq).into_iter().filter(|w| w.contains("/label")).count();
    assert_eq!(label_writes, 3, "one label write per store: {:?}", env.operator_pd_log(pd_seq));
    store_labels_match_nodes(&env).unwrap();

    let tikv = env.names("tikvs").into_iter().next().unwrap();
    let node = node_of(&env, &tikv).unwrap();
    let zone = env.zone_of(&tikv).unwrap();
    let id = env.store_id(&tikv);
    env.stop_operator().await;
    set_node_zone(&env, &node, None);
    env.restart_operator().await;
    env.wait_for("the lost zone reported", |e| {
        check_condition(&e.tikv(&tikv)?, "Synced", "False", reasons::LOCATION_LABEL_MISSING)
    })
    .await;
    env.wait_for_event(&tikv, "Warning", "LocationLabelMissing").await;
    let store = env.pd_snapshot().store(id).cloned().unwrap();
    assert_eq!(store.labels.get("zone"), Some(&zone), "PD keeps the zone: {:?}", store.labels);

    set_node_zone(&env, &node, Some(&zone));
    env.wait_for("Ready and Synced again", |e| e.converged(3, 3)).await;
    store_labels_match_nodes(&env).unwrap();
    env.h.watcher().assert_none();
    env.finish().await;
}

fn attributes_classes() -> ResourceRef {
    ResourceRef::new("storage.k8s.io", "v1beta1", "volumeattributesclasses")
}

fn set_volume_class(env: &Env, class: &str) {
    let group = env.get("tikvgroups", TIKV_GROUP).unwrap();
    let mut volumes = group["spec"]["template"]["spec"]["volumes"].clone();
    for volume in volumes.as_array_mut().unwrap() {
        volume["volumeAttributesClassName"] = json!(class);
    }
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"volumes": volumes}}}}));
}

fn every_pvc_has_class(env: &Env, class: &str) -> Result<(), String> {
    for tikv in env.names("tikvs") {
        for pvc in env.pvcs_of(&tikv) {
            let current = &pvc["status"]["currentVolumeAttributesClassName"];
            if current != class || !pvc["status"]["modifyVolumeStatus"].is_null() {
                return Err(format!("{} is at {current} ({})", name(&pvc), pvc["status"]["modifyVolumeStatus"]));
            }
        }
    }
    Ok(())
}

/// A VolumeAttributesClass named in the TiKVGroup reaches every PVC and volume with no
/// pod recreated; a class the driver refuses is reported on every instance (the
/// operator restarted meanwhile) and the volumes keep theirs; naming the good class
/// again brings the cluster back to Synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attributes_class_change_reaches_every_volume_online_and_a_refused_one_is_reported() {
    let mut env = Env::start().await;
    for (class, parameters) in [("gold", json!({"iops": "6000"})), ("odd", json!({"latency": "1"}))] {
        let vac = json!({"metadata": {"name": class}, "driverName": "csi.kube-sim.io", "parameters": parameters});
        env.user.create(&attributes_classes(), None, vac).expect("VolumeAttributesClass");
    }
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let before = pod_uids(&env);

    set_volume_class(&env, "gold");
    env.wait_for("every volume in class gold, the cluster Ready", |e| {
        every_pvc_has_class(e, "gold")?;
        e.converged(3, 3)
    })
    .await;
    assert_eq!(pod_uids(&env), before, "no pod was recreated");
    for tikv in env.names("tikvs") {
        env.wait_for_event(&tikv, "Normal", "ModifyingVolume").await;
    }

    set_volume_class(&env, "odd");
    env.restart_operator().await;
    env.wait_for("the refused class reported on every instance", |e| {
        for tikv in e.names("tikvs") {
            check_condition(&e.tikv(&tikv)?, "Synced", "False", reasons::VOLUME_MODIFY_INFEASIBLE)?;
        }
        Ok(())
    })
    .await;
    for tikv in env.names("tikvs") {
        env.wait_for_event(&tikv, "Warning", "VolumeModifyInfeasible").await;
        for pvc in env.pvcs_of(&tikv) {
            assert_eq!(pvc["status"]["currentVolumeAttributesClassName"], "gold", "{}", name(&pvc));
        }
    }

    set_volume_class(&env, "gold");
    env.wait_for("back in class gold and Synced", |e| {
        every_pvc_has_class(e, "gold")?;
        e.converged(3, 3)
    })
    .await;
    assert_eq!(pod_uids(&env), before, "still no pod recreated");
    env.h.watcher().assert_none();
    env.finish().await;
}
