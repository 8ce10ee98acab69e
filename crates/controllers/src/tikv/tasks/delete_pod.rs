//! `delete_pod`: a deleted instance whose store holds no data any more (removed in PD,
//! or never registered) loses its Pod, and the pass waits until the Pod is gone.
//!
//! Destructive: checked here against the safety contract (the right PD, a fresh view,
//! and the store removed — not merely absent — or never registered). Reads the Pod
//! `load_pod` read. Writes: DELETE of the Pod with a UID precondition (the Pod read,
//! not one re-created under its name since). Outcomes: Complete once gone; Wait while
//! it terminates or the contract refuses (the condition says why); Fail.
//!
//! A Pod whose kubelet is gone (its node powered off, unreachable, or deleted) never
//! finishes terminating; once the store is removed in PD it is deleted without grace
//! ([`finish_termination`]), so the volumes and the instance can go (a failed-over store).

use kube::ResourceExt;
use tikv_operator_api::condition::reasons;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::instance::{delete_pod_by_uid, finish_termination, pod_terminating};
use crate::tikv::state::{Refusal, TikvState};

pub fn delete_pod() -> Node<TikvState> {
    task("delete_pod", |s: &mut TikvState| Box::pin(run(s)))
}

/// Whether the store's data may go (DESIGN.md section 5 items 1–3), or why not.
pub fn data_may_go(s: &TikvState) -> Result<(), Refusal> {
    s.destructive_allowed()?;
    if s.store_removed() || s.never_registered() {
        return Ok(());
    }
    let message = match s.store_id() {
        Some(id) => format!("store {id} is not removed in PD"),
        None => "a store may still register for this instance".to_string(),
    };
    Err(Refusal { reason: reasons::POD_NOT_DELETED, message })
}

async fn run(s: &mut TikvState) -> Outcome {
    let Some(pod) = s.parts.pod.clone() else {
        s.cleanup.pod_gone = true;
        return Outcome::complete("no pod");
    };
    let name = pod.name_any();
    if pod_terminating(&pod) {
        if data_may_go(s).is_err() {
            return Outcome::wait(format!("pod {name} is terminating; waiting for it to go"));
        }
        return finish_termination(s, &pod, "its store is removed in PD").await;
    }
    if let Err(Refusal { reason, message }) = data_may_go(s) {
        s.pass.not_synced(reason, format!("pod {name} is kept: {message}"));
        return Refusal::outcome(&s.pass, reason, format!("pod {name} kept: {message}"));
    }
    if let Err(outcome) = delete_pod_by_uid(s, &pod, None).await {
        return outcome;
    }
    s.pass.event("DeletedPod", "Delete", format!("deleted pod {name}: the store holds no data any more")).await;
    Outcome::wait(format!("deleted pod {name}; waiting for it to go"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePd;
    use crate::tikv::tasks::testkit::{ADDR, Kit};
    use k8s_openapi::api::core::v1::{Node as K8sNode, Pod};
    use kube::Api;
    use kube::api::DeleteParams;
    use tikv_operator_api::tikv::StoreState;
    use tikv_operator_pd::NodeState;
    use tikv_operator_task::OutcomeKind;

    fn pd(state: NodeState) -> FakePd {
        FakePd::bootstrapped().store(5, ADDR, state).store(6, "tikv-b:20160", NodeState::Serving)
    }

    async fn kit(pd: FakePd, recorded: Option<StoreState>) -> Kit {
        let kit = Kit::new(pd, |_| {}).await;
        if let Some(state) = recorded {
            kit.status(|st| (st.id, st.state) = (Some("5".into()), Some(state))).await;
        }
        kit.pod_and_pvc(None).await;
        kit.delete().await;
        kit
    }

    #[tokio::test]
    async fn the_pod_of_a_removed_store_is_deleted_with_its_uid_and_waited_for() {
        let kit = kit(pd(NodeState::Removed), Some(StoreState::Removed)).await;
        let (s, report) = kit.pass([delete_pod()]).await;
        assert_eq!(kit.writes(), ["delete pods/tikv-tikv-abc123"], "{report}");
        assert_eq!(report.entry("delete_pod").unwrap().kind(), Some(OutcomeKind::Wait));
        assert!(!s.cleanup.pod_gone, "gone only once the cache says so");

        let (s, _) = kit.pass([delete_pod()]).await;
        assert!(s.cleanup.pod_gone);
        assert_eq!(kit.writes(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_pod_recreated_since_it_was_read_is_not_deleted() {
        let kit = kit(pd(NodeState::Removed), Some(StoreState::Removed)).await;
        // The caches will not see the new pod for a (simulated) hour.
        kit.env.sim.faults().set_watch_delay(std::time::Duration::from_secs(3600));
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        let old = api.get("tikv-tikv-abc123").await.unwrap();
        api.delete("tikv-tikv-abc123", &DeleteParams::default()).await.unwrap();
        let mut new = old.clone();
        new.metadata = kube::api::ObjectMeta { name: old.metadata.name.clone(), ..Default::default() };
        let new = api.create(&Default::default(), &new).await.unwrap();
        assert_ne!(new.uid(), old.uid());

        let (_, report) = kit.pass_from_caches([delete_pod()]).await;
        assert!(report.entry("delete_pod").unwrap().message().contains("replaced meanwhile"), "{report}");
        assert_eq!(api.get("tikv-tikv-abc123").await.unwrap().uid(), new.uid(), "the new pod is untouched");
    }

    #[tokio::test]
    async fn a_live_store_keeps_its_pod_and_says_why() {
        let kit = kit(pd(NodeState::Serving), Some(StoreState::Serving)).await;
        let (s, report) = kit.pass([delete_pod()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new(), "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::POD_NOT_DELETED);
        assert!(s.pass.unsynced[0].message.contains("store 5 is not removed in PD"));
    }

    #[tokio::test]
    async fn absent_without_being_seen_leaving_is_not_removed() {
        let kit = kit(pd(NodeState::Serving).purge_store(5).to_owned(), Some(StoreState::Serving)).await;
        let (s, _) = kit.pass([delete_pod()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new());
        assert_eq!(s.pass.unsynced[0].reason, reasons::POD_NOT_DELETED);
    }

    #[tokio::test]
    async fn a_stale_view_or_pd_down_deletes_nothing() {
        let kit = kit(pd(NodeState::Removed), Some(StoreState::Removed)).await;
        kit.handle.cache.note_write();
        let (s, _) = kit.pass_as_is([delete_pod()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new());
        assert_eq!(s.pass.unsynced[0].reason, reasons::PD_VIEW_NOT_FRESH);

        kit.pd.unreachable(true);
        let _ = kit.handle.cache.refresh().await;
        let (s, _) = kit.pass_as_is([delete_pod()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new());
        assert_eq!(s.pass.unsynced[0].reason, reasons::PD_VIEW_NOT_FRESH);
    }

    /// The Pod of a removed store on a node whose kubelet is gone: deleted, it stays
    /// terminating; past its deadline it is deleted without grace.
    async fn stuck_pod(kit: &Kit) {
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        let old = api.get("tikv-tikv-abc123").await.unwrap();
        api.delete("tikv-tikv-abc123", &DeleteParams::default()).await.unwrap();
        let mut pod = old.clone();
        pod.metadata = kube::api::ObjectMeta {
            name: old.metadata.name.clone(),
            labels: old.metadata.labels.clone(),
            ..Default::default()
        };
        pod.spec.get_or_insert_default().node_name = Some("node-1".into());
        pod.status = None;
        api.create(&Default::default(), &pod).await.unwrap();
        api.delete("tikv-tikv-abc123", &DeleteParams::default()).await.unwrap();
        assert!(api.get("tikv-tikv-abc123").await.unwrap().metadata.deletion_timestamp.is_some());
    }

    #[tokio::test]
    async fn the_stuck_pod_of_a_removed_store_is_deleted_without_grace() {
        let kit = kit(pd(NodeState::Removed), Some(StoreState::Removed)).await;
        stuck_pod(&kit).await;
        let (s, report) = kit.pass([delete_pod()]).await;
        assert_eq!(kit.writes(), ["delete pods/tikv-tikv-abc123"], "{report}");
        assert!(report.entry("delete_pod").unwrap().message().contains("without grace"), "{report}");
        let (s2, _) = kit.pass([delete_pod()]).await;
        assert!(s2.cleanup.pod_gone && !s.cleanup.pod_gone);
        let events = kit.env.events().await;
        assert!(
            events.iter().any(|e| e.1 == "ForceDeletedPod" && e.2.contains("its node node-1 is gone")),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn a_removed_store_s_pod_stuck_on_a_ready_node_goes_once_past_its_deadline() {
        let kit = kit(pd(NodeState::Removed), Some(StoreState::Removed)).await;
        let node: K8sNode = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let nodes: Api<K8sNode> = Api::all(kit.env.client.clone());
        let mut live = nodes.create(&Default::default(), &node).await.unwrap();
        live.status = node.status.clone();
        nodes.replace_status("node-1", &Default::default(), &live).await.unwrap();
        stuck_pod(&kit).await;
        let (_, report) = kit.pass([delete_pod()]).await;
        // The test's operator clock is far past kube-sim's deadline: the fallback acts.
        assert!(report.entry("delete_pod").unwrap().message().contains("without grace"), "{report}");
        let events = kit.env.events().await;
        assert!(events.iter().any(|e| e.2.contains("past its deletion deadline")), "{events:?}");
    }

    #[tokio::test]
    async fn the_stuck_pod_of_a_live_store_is_left_terminating() {
        let kit = kit(pd(NodeState::Serving), Some(StoreState::Serving)).await;
        stuck_pod(&kit).await;
        let (_, report) = kit.pass([delete_pod()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new(), "{report}");
        assert!(report.entry("delete_pod").unwrap().message().contains("is terminating"), "{report}");
    }

    #[tokio::test]
    async fn an_instance_that_never_registered_loses_its_pod() {
        let kit = kit(FakePd::bootstrapped().store(6, "tikv-b:20160", NodeState::Serving), None).await;
        let (_, report) = kit.pass([delete_pod()]).await;
        assert_eq!(kit.writes(), ["delete pods/tikv-tikv-abc123"], "{report}");
    }
}
