//! `remove_data`: once a deleted instance's member has left PD (`leave` set `left` on a
//! fresh view of the right PD), its Pod goes, and only after the Pod is gone its PVCs: a
//! removed member's data must never start again (etcd would refuse it, or worse, a new
//! member could be mistaken for it).
//!
//! Reads the Pod `load_pod` read and the instance's PVCs from the watch cache. Writes:
//! DELETE of the Pod, then of each PVC, each with a UID precondition (the object read,
//! not one re-created under its name since), and Events. Outcomes: Complete when
//! neither is left (sets `data_removed`); Wait while they go (their watch events
//! re-trigger us); Fail on unexpected API errors. A Pod that cannot finish terminating
//! (its node gone or NotReady) is deleted without grace ([`finish_termination`]).

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{DeleteParams, Preconditions};
use kube::{Api, ResourceExt};
use tikv_operator_task::{Condition, Node, Outcome, cond, task};

use crate::common::instance::{delete_pod_by_uid, finish_termination, instance_pvcs, pod_terminating};
use crate::error::is_not_found;
use crate::pd::state::PdState;

pub fn remove_data() -> Node<PdState> {
    task("remove_data", |s: &mut PdState| Box::pin(run(s)))
}

/// Neither the Pod nor a PVC of the instance is left.
pub fn data_removed() -> Condition<PdState> {
    cond("data_removed", |s: &PdState| s.data_removed)
}

async fn run(s: &mut PdState) -> Outcome {
    if !s.left {
        return Outcome::wait("the member has not left PD");
    }
    if let Some(pod) = s.parts.pod.clone() {
        let name = pod.name_any();
        if pod_terminating(&pod) {
            // A Pod whose node died never finishes: the member is out of PD, so it may go
            // without grace.
            return finish_termination(s, &pod, "its member has left PD").await;
        }
        if let Err(outcome) = delete_pod_by_uid(s, &pod, None).await {
            return outcome;
        }
        s.pass.event("DeletedPod", "Delete", format!("deleted pod {name}: its member has left PD")).await;
        return Outcome::wait(format!("deleted pod {name}; waiting for it to go"));
    }
    let pvcs = instance_pvcs(s);
    if pvcs.is_empty() {
        s.data_removed = true;
        return Outcome::complete("no pod and no PVC left");
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
    let mut deleted = Vec::new();
    for pvc in pvcs.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let name = pvc.name_any();
        let params = DeleteParams {
            preconditions: Some(Preconditions { uid: pvc.uid(), resource_version: None }),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => deleted.push(name),
            Err(error) if is_not_found(&error) || crate::error::is_conflict(&error) => {}
            Err(error) => return Outcome::fail(error),
        }
    }
    if deleted.is_empty() {
        return Outcome::wait("waiting for the PVCs to go");
    }
    let list = deleted.join(", ");
    s.pass.event("DeletedPVC", "Delete", format!("deleted PVCs {list}: its member has left PD")).await;
    Outcome::wait(format!("deleted PVCs {list}; waiting for them to go"))
}
