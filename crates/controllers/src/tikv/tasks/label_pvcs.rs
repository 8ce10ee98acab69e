//! `label_pvcs`: once the store ID is known, the instance's PVCs and the
//! PersistentVolumes bound to them carry the cluster, group, instance and store-ID
//! (`tikv.org/store-id`) labels, so the data on a volume is tied to its store (deletion
//! removes only the volumes of the store PD removed) and an administrator finds a
//! store's disks by label, on PVs too (which outlive their claims under `Retain`).
//!
//! Reads the PVCs from the watch cache. A PV is not read: while its PVC does not record
//! it as labelled ([`ANNOTATION_PV_LABELLED`]) it gets one merge patch of the labels
//! (which changes nothing when it has them), and a pass with nothing to do makes no
//! request. Writes: that patch per PV not yet recorded, then one merge patch per PVC
//! missing labels or the record (with its resourceVersion); none when all carry them. A
//! PV not made yet is patched on a later pass. A PVC labelled with another store is
//! reported, not relabelled, nor is its PV touched. Outcomes: Complete; Retry on a
//! conflict; Fail.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::json;
use tikv_operator_api::condition::reasons;
use tikv_operator_api::names::{ANNOTATION_PV_LABELLED, LABEL_CLUSTER, LABEL_GROUP, LABEL_INSTANCE, LABEL_STORE_ID};
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::patch_params;
use crate::common::instance::instance_pvcs;
use crate::common::{Instance, Object};
use crate::error::{is_conflict, is_not_found};
use crate::tikv::state::TikvState;

pub fn label_pvcs() -> Node<TikvState> {
    task("label_pvcs", |s: &mut TikvState| Box::pin(run(s)))
}

/// The labels every volume of the instance carries.
fn volume_labels(s: &TikvState, id: &str) -> BTreeMap<String, String> {
    let Some(tikv) = &s.pass.object else {
        return BTreeMap::new();
    };
    BTreeMap::from([
        (LABEL_CLUSTER.to_string(), tikv.cluster_name()),
        (LABEL_GROUP.to_string(), tikv.group()),
        (LABEL_INSTANCE.to_string(), s.pass.name.clone()),
        (LABEL_STORE_ID.to_string(), id.to_string()),
    ])
}

/// The labels of `wanted` that `have` lacks or holds with another value.
fn missing(have: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    wanted.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn conflict(name: &str) -> Outcome {
    Outcome::retry(Duration::from_secs(1), format!("PVC {name} changed meanwhile; retrying"))
}

async fn run(s: &mut TikvState) -> Outcome {
    let Some(id) = s.store_id().map(|id| id.to_string()) else {
        return Outcome::complete("no store ID yet");
    };
    let wanted = volume_labels(s, &id);
    let client = s.pass.ctx.client.clone();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &s.pass.namespace);
    let pvs: Api<PersistentVolume> = Api::all(client);
    let mut labelled = Vec::new();
    for pvc in instance_pvcs(s) {
        let name = pvc.name_any();
        if let Some(other) = pvc.labels().get(LABEL_STORE_ID).filter(|other| **other != id) {
            let message = format!("PVC {name} holds the data of store {other}, not of this instance's store {id}");
            s.pass.not_synced(reasons::VOLUME_MISMATCH, message);
            continue;
        }
        let mut annotations = BTreeMap::new();
        let volume = pvc.spec.as_ref().and_then(|spec| spec.volume_name.clone()).filter(|v| !v.is_empty());
        if let Some(volume) = volume
            && pvc.annotations().get(ANNOTATION_PV_LABELLED) != Some(&volume)
        {
            // Labels merge into the PV's own; one request instead of a read and a write.
            let patch = json!({"metadata": {"labels": &wanted}});
            match pvs.patch(&volume, &patch_params(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    labelled.push(format!("PV {volume}"));
                    annotations.insert(ANNOTATION_PV_LABELLED.to_string(), volume);
                }
                // Bound to a volume not made yet (or gone): looked at again next pass.
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Outcome::fail(error),
            }
        }
        let add = missing(pvc.labels(), &wanted);
        if add.is_empty() && annotations.is_empty() {
            continue;
        }
        let patch = json!({"metadata": {
            "labels": add, "annotations": annotations, "resourceVersion": pvc.resource_version(),
        }});
        match pvcs.patch(&name, &patch_params(), &Patch::Merge(&patch)).await {
            Ok(_) if !add.is_empty() => labelled.push(format!("PVC {name}")),
            Ok(_) => {}
            Err(error) if is_conflict(&error) => return conflict(&name),
            Err(error) => return Outcome::fail(error),
        }
    }
    if labelled.is_empty() {
        Outcome::complete("labelled")
    } else {
        Outcome::complete(format!("labelled {}", labelled.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePd;
    use crate::tikv::tasks::testkit::{ADDR, Kit, NAME};
    use tikv_operator_pd::NodeState;

    #[tokio::test]
    async fn volumes_get_the_store_id_once_it_is_known() {
        let kit = Kit::new(FakePd::bootstrapped(), |_| {}).await;
        kit.pod_and_pvc(None).await;
        kit.pass([label_pvcs()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new(), "no store yet");

        let kit2 = Kit::new(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), |_| {}).await;
        kit2.pod_and_pvc(None).await;
        let (_, report) = kit2.pass([label_pvcs()]).await;
        assert_eq!(kit2.writes(), ["patch persistentvolumeclaims/data-tikv-tikv-abc123"], "{report}");
        let pvc: PersistentVolumeClaim = kit2.env.get("data-tikv-tikv-abc123").await;
        assert_eq!(pvc.labels().get(LABEL_STORE_ID).map(String::as_str), Some("5"));
        kit2.pass([label_pvcs()]).await;
        assert_eq!(kit2.writes(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_volume_of_another_store_is_reported_not_relabelled() {
        let kit = Kit::new(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), |_| {}).await;
        kit.pod_and_pvc(Some("9")).await;
        let (s, _) = kit.pass([label_pvcs()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new());
        assert_eq!(s.pass.unsynced[0].reason, reasons::VOLUME_MISMATCH);
    }

    /// The instance's data PVC bound to PV `pv-1` (with `pv_labels`), as the PV
    /// controller leaves them.
    async fn bound(kit: &Kit, pv_labels: &[(&str, &str)]) {
        claims_naming_pv_1(kit).await;
        pv_1(kit, pv_labels).await;
    }

    /// The instance's PVCs, bound to a volume `pv-1` (which need not exist).
    async fn claims_naming_pv_1(kit: &Kit) {
        let tikv: tikv_operator_api::TiKV = kit.env.get(NAME).await;
        for mut pvc in crate::common::render::pvcs(&tikv, &format!("tikv-{NAME}")).unwrap() {
            pvc.spec.as_mut().unwrap().volume_name = Some("pv-1".into());
            kit.env.create::<PersistentVolumeClaim>(pvc).await;
        }
    }

    /// The volume `pv-1`, with `labels`.
    async fn pv_1(kit: &Kit, labels: &[(&str, &str)]) {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let pv = PersistentVolume {
            metadata: kube::api::ObjectMeta { name: Some("pv-1".into()), labels: Some(labels), ..Default::default() },
            ..Default::default()
        };
        let pvs: Api<PersistentVolume> = Api::all(kit.env.client.clone());
        pvs.create(&Default::default(), &pv).await.unwrap();
    }

    #[tokio::test]
    async fn the_bound_volume_gets_the_same_labels_and_is_then_left_alone() {
        let kit = Kit::new(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), |_| {}).await;
        bound(&kit, &[("topology.kubernetes.io/zone", "z1")]).await;
        let (_, report) = kit.pass([label_pvcs()]).await;
        assert_eq!(
            kit.writes(),
            ["patch persistentvolumes/pv-1", "patch persistentvolumeclaims/data-tikv-tikv-abc123"],
            "{report}"
        );
        let pv: PersistentVolume = Api::all(kit.env.client.clone()).get("pv-1").await.unwrap();
        let expected: BTreeMap<String, String> = [
            ("topology.kubernetes.io/zone", "z1"),
            (LABEL_CLUSTER, "basic"),
            (LABEL_GROUP, "tikv"),
            (LABEL_INSTANCE, NAME),
            (LABEL_STORE_ID, "5"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        assert_eq!(pv.labels(), &expected, "added to what the PV had");
        let pvc: PersistentVolumeClaim = kit.env.get("data-tikv-tikv-abc123").await;
        assert_eq!(pvc.labels().get(LABEL_STORE_ID).map(String::as_str), Some("5"));
        assert_eq!(pvc.annotations().get(ANNOTATION_PV_LABELLED).map(String::as_str), Some("pv-1"));
        assert_eq!(report.entry("label_pvcs").unwrap().message(), "labelled PV pv-1, PVC data-tikv-tikv-abc123");

        let (_, report) = kit.pass([label_pvcs()]).await;
        assert_eq!(
            kit.env.requests(),
            Vec::<String>::new(),
            "nothing to do, no request (the PV is not read): {report}"
        );
    }

    #[tokio::test]
    async fn a_volume_that_has_the_labels_is_patched_unread_and_does_not_change() {
        let kit = Kit::new(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), |_| {}).await;
        let labels = [(LABEL_CLUSTER, "basic"), (LABEL_GROUP, "tikv"), (LABEL_INSTANCE, NAME), (LABEL_STORE_ID, "5")];
        bound(&kit, &labels).await;
        let pvs: Api<PersistentVolume> = Api::all(kit.env.client.clone());
        let before = pvs.get("pv-1").await.unwrap();
        let (_, report) = kit.pass([label_pvcs()]).await;
        // The kit's instance has no store ID recorded yet: `store` announces it joined.
        let requests: Vec<String> =
            kit.env.requests().into_iter().filter(|r| !r.contains("/status/") && !r.contains("events")).collect();
        assert_eq!(
            requests,
            ["patch persistentvolumes/pv-1", "patch persistentvolumeclaims/data-tikv-tikv-abc123"],
            "the PV is not read: {report}"
        );
        let after = pvs.get("pv-1").await.unwrap();
        assert_eq!(after.resource_version(), before.resource_version(), "the patch changed nothing");
        let pvc: PersistentVolumeClaim = kit.env.get("data-tikv-tikv-abc123").await;
        assert_eq!(pvc.annotations().get(ANNOTATION_PV_LABELLED).map(String::as_str), Some("pv-1"));
    }

    #[tokio::test]
    async fn a_volume_not_made_yet_is_labelled_on_a_later_pass() {
        let kit = Kit::new(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), |_| {}).await;
        claims_naming_pv_1(&kit).await;
        let (_, report) = kit.pass([label_pvcs()]).await;
        assert_eq!(
            kit.writes(),
            ["patch persistentvolumes/pv-1", "patch persistentvolumeclaims/data-tikv-tikv-abc123"],
            "{report}"
        );
        assert_eq!(report.entry("label_pvcs").unwrap().message(), "labelled PVC data-tikv-tikv-abc123");
        let pvc: PersistentVolumeClaim = kit.env.get("data-tikv-tikv-abc123").await;
        assert_eq!(pvc.labels().get(LABEL_STORE_ID).map(String::as_str), Some("5"));
        assert!(!pvc.annotations().contains_key(ANNOTATION_PV_LABELLED), "not recorded: the PV was not there");

        pv_1(&kit, &[]).await;
        let (_, report) = kit.pass([label_pvcs()]).await;
        assert_eq!(
            kit.writes(),
            ["patch persistentvolumes/pv-1", "patch persistentvolumeclaims/data-tikv-tikv-abc123"],
            "{report}"
        );
        let pv: PersistentVolume = Api::all(kit.env.client.clone()).get("pv-1").await.unwrap();
        assert_eq!(pv.labels().get(LABEL_STORE_ID).map(String::as_str), Some("5"));
        let pvc: PersistentVolumeClaim = kit.env.get("data-tikv-tikv-abc123").await;
        assert_eq!(pvc.annotations().get(ANNOTATION_PV_LABELLED).map(String::as_str), Some("pv-1"));
    }
}
