//! `delete_groups` and `drop_pd`: a Cluster being deleted takes its groups with it
//! (their controllers release their instances; PVCs stay unless the deletion policy
//! says Delete), then stops polling its PD.
//!
//! Reads: the groups loaded. Writes: DELETE of each group not yet deleting.
//! Outcomes: Wait while groups remain (their deletion events re-trigger the Cluster);
//! Complete when none remain; Fail on an API error.

use kube::api::DeleteParams;
use kube::{Api, Resource, ResourceExt};
use tikv_operator_api::{PDGroup, TiKVGroup};
use tikv_operator_task::{Node, Outcome, sync_task, task};

use crate::cluster::state::ClusterState;
use crate::error::is_not_found;

pub fn delete_groups() -> Node<ClusterState> {
    task("delete_groups", |s: &mut ClusterState| {
        Box::pin(async move {
            let remaining = s.pd_groups.len() + s.tikv_groups.len();
            if remaining == 0 {
                return Outcome::complete("no groups left");
            }
            let client = s.pass.ctx.client.clone();
            let pd: Api<PDGroup> = Api::namespaced(client.clone(), &s.pass.namespace);
            let kv: Api<TiKVGroup> = Api::namespaced(client, &s.pass.namespace);
            for group in s.pd_groups.iter().filter(|g| g.meta().deletion_timestamp.is_none()) {
                if let Err(error) = pd.delete(&group.name_any(), &DeleteParams::default()).await
                    && !is_not_found(&error)
                {
                    return Outcome::fail(error);
                }
            }
            for group in s.tikv_groups.iter().filter(|g| g.meta().deletion_timestamp.is_none()) {
                if let Err(error) = kv.delete(&group.name_any(), &DeleteParams::default()).await
                    && !is_not_found(&error)
                {
                    return Outcome::fail(error);
                }
            }
            Outcome::wait(format!("{remaining} groups are being deleted; waiting for them to go"))
        })
    })
}

pub fn drop_pd() -> Node<ClusterState> {
    sync_task("drop_pd", |s: &mut ClusterState| {
        let key = crate::pd_registry::ClusterKey::new(s.pass.namespace.clone(), s.pass.name.clone());
        if s.pass.ctx.pd.drop_cluster(&key) {
            Outcome::complete("stopped polling PD")
        } else {
            Outcome::complete("not polling")
        }
    })
}
