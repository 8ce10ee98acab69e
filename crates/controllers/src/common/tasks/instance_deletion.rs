//! `instance_deletion`: a deleted instance whose Cluster is being deleted (its guard,
//! `deleting_with_cluster`) releases its finalizer (its Pod and ConfigMap go with it by
//! owner reference; its PVCs are deleted only under `deletionPolicy: Delete`). An
//! instance deleted while its Cluster lives leaves PD through its own runbook instead.
//! One whose Cluster is gone never gets here (`release_without_cluster` confirms that
//! first).
//! Writes: DELETE of PVCs (policy Delete), the finalizer. Complete; Fail.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use tikv_operator_api::cluster::DeletionPolicy;
use tikv_operator_api::names;
use tikv_operator_task::{Node, Outcome, task};

use super::set_finalizer;
use crate::common::Instance;
use crate::common::instance::InstanceState;

pub fn instance_deletion<S: InstanceState>() -> Node<S> {
    task("instance_deletion", |s: &mut S| {
        Box::pin(async move {
            let cluster = s.pass().cluster.clone();
            let delete_data = cluster.as_ref().is_some_and(|c| c.spec.deletion_policy == DeletionPolicy::Delete);
            if delete_data && let Some(instance) = &s.pass().object {
                let api: Api<PersistentVolumeClaim> = Api::namespaced(s.pass().ctx.client.clone(), &s.pass().namespace);
                let selector = format!(
                    "{}={},{}={}",
                    names::LABEL_COMPONENT,
                    S::I::COMPONENT,
                    names::LABEL_INSTANCE,
                    instance.name_any()
                );
                if let Err(error) =
                    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels(&selector)).await
                {
                    return Outcome::fail(error);
                }
            }
            let key = s.pass().key();
            s.pass().ctx.pd_waits.done(&key);
            set_finalizer(s, false).await
        })
    })
}
