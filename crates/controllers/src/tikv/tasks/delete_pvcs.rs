//! `delete_pvcs`: once its Pod is gone, a deleted instance whose store is removed in PD
//! (or never registered) loses the PVCs holding that store's data — a Tombstone
//! store's data must never be reused by a new store.
//!
//! Destructive: checked here against the safety contract (the right PD, a fresh view,
//! the store removed or never registered) and only after the Pod is gone and, with no
//! store ID recorded, PD read since confirms none registered (`confirm_unregistered`). Deletes the
//! instance's PVCs labelled with this store's ID (or with none: created before the ID
//! was known), by name with a UID precondition; a PVC labelled with another store's
//! ID is left and reported. Reads the PVCs from the watch cache. Writes: DELETE of each
//! PVC. Outcomes: Complete once none is left; Wait while they go or the contract
//! refuses (the condition says why); Fail.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{DeleteParams, Preconditions};
use kube::{Api, ResourceExt};
use tikv_operator_api::names;
use tikv_operator_task::{Node, Outcome, task};

use super::delete_pod::data_may_go;
use crate::common::instance::instance_pvcs;
use crate::error::is_not_found;
use crate::tikv::state::{Refusal, TikvState};

pub fn delete_pvcs() -> Node<TikvState> {
    task("delete_pvcs", |s: &mut TikvState| Box::pin(run(s)))
}

async fn run(s: &mut TikvState) -> Outcome {
    if !s.cleanup.pod_gone {
        return Outcome::wait("waiting for the pod to go before its volumes");
    }
    if !s.cleanup.pd_confirmed {
        return Outcome::wait("waiting for PD to confirm no store registered for this instance");
    }
    let pvcs = instance_pvcs(s);
    if pvcs.is_empty() {
        s.cleanup.pvcs_gone = true;
        return Outcome::complete("no PVCs");
    }
    if let Err(Refusal { reason, message }) = data_may_go(s) {
        s.pass.not_synced(reason, format!("PVCs are kept: {message}"));
        return Refusal::outcome(&s.pass, reason, format!("PVCs kept: {message}"));
    }
    let id = s.store_id().map(|id| id.to_string());
    let api: Api<PersistentVolumeClaim> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
    let (mut deleted, mut kept) = (Vec::new(), Vec::new());
    for pvc in &pvcs {
        let name = pvc.name_any();
        if pvc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let label = pvc.labels().get(names::LABEL_STORE_ID);
        if label.is_some() && label != id.as_ref() {
            kept.push(format!("{name} (store {})", label.map_or("", String::as_str)));
            continue;
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions { uid: pvc.uid(), resource_version: None }),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => deleted.push(name),
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Outcome::fail(error),
        }
    }
    if !deleted.is_empty() {
        let note = format!("deleted {}: the store's data is not to be reused", deleted.join(", "));
        s.pass.event("DeletedPVC", "Delete", note).await;
    }
    if !kept.is_empty() {
        let message = format!("PVCs holding another store's data are left: {}", kept.join(", "));
        s.pass.not_synced(tikv_operator_api::condition::reasons::VOLUME_MISMATCH, message.clone());
        return Outcome::wait(message);
    }
    Outcome::wait(format!("waiting for {} PVCs to go", pvcs.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePd;
    use crate::tikv::tasks::testkit::{ADDR, Kit};
    use crate::tikv::tasks::{confirm_unregistered, delete_pod};
    use tikv_operator_api::condition::reasons;
    use tikv_operator_api::tikv::StoreState;
    use tikv_operator_pd::NodeState;
    use tikv_operator_task::OutcomeKind;

    async fn kit(node_state: NodeState, label: Option<&str>) -> Kit {
        let pd = FakePd::bootstrapped().store(5, ADDR, node_state).store(6, "tikv-b:20160", NodeState::Serving);
        let kit = Kit::new(pd, |_| {}).await;
        let state = if node_state == NodeState::Removed { StoreState::Removed } else { StoreState::Serving };
        kit.status(|st| (st.id, st.state) = (Some("5".into()), Some(state))).await;
        kit.pod_and_pvc(label).await;
        kit.delete().await;
        kit
    }

    #[tokio::test]
    async fn volumes_go_only_after_the_pod_and_by_name_with_their_uid() {
        let kit = kit(NodeState::Removed, Some("5")).await;
        let (s, report) = kit.pass([delete_pod(), confirm_unregistered(), delete_pvcs()]).await;
        assert_eq!(kit.writes(), ["delete pods/tikv-tikv-abc123"], "the pod first: {report}");
        assert!(!s.cleanup.pvcs_gone);

        let (_, report) = kit.pass([delete_pod(), confirm_unregistered(), delete_pvcs()]).await;
        assert_eq!(kit.writes(), ["delete persistentvolumeclaims/data-tikv-tikv-abc123"], "{report}");
        assert_eq!(report.entry("delete_pvcs").unwrap().kind(), Some(OutcomeKind::Wait));

        let (s, _) = kit.pass([delete_pod(), confirm_unregistered(), delete_pvcs()]).await;
        assert!(s.cleanup.pod_gone && s.cleanup.pvcs_gone);
        assert_eq!(kit.writes(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_volume_of_another_store_is_left_and_reported() {
        let kit = kit(NodeState::Removed, Some("9")).await;
        kit.pass([delete_pod(), confirm_unregistered(), delete_pvcs()]).await;
        let (s, report) = kit.pass([delete_pod(), confirm_unregistered(), delete_pvcs()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new(), "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::VOLUME_MISMATCH);
        assert!(s.pass.unsynced[0].message.contains("data-tikv-tikv-abc123 (store 9)"), "{:?}", s.pass.unsynced);
    }

    #[tokio::test]
    async fn the_volumes_of_a_live_store_stay() {
        let kit = kit(NodeState::Serving, Some("5")).await;
        let (mut s, _) = kit.pass([delete_pvcs()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new());
        // Even with no pod (someone deleted it), the data stays while the store lives.
        (s.cleanup.pod_gone, s.cleanup.pd_confirmed) = (true, true);
        let report = tikv_operator_task::Runner::new("t", [delete_pvcs()]).run("k", &mut s).await;
        assert_eq!(kit.writes(), Vec::<String>::new(), "{report}");
        assert_eq!(s.pass.unsynced.last().unwrap().reason, reasons::POD_NOT_DELETED);
    }
}
