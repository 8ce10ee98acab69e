//! `load_groups`: the PD and TiKV groups of this cluster.
//!
//! Reads: PDGroups and TiKVGroups of the namespace (filtered by `spec.cluster.name`).
//! Writes: nothing. Complete, or Fail on an API error. Also makes the Cluster the
//! pass's `cluster`, so the shared guards (paused, deleting) read it.

use kube::Api;
use kube::api::ListParams;
use tikv_operator_api::{PDGroup, TiKVGroup};
use tikv_operator_task::{Node, Outcome, task};

use crate::cluster::state::ClusterState;

pub fn load_groups() -> Node<ClusterState> {
    task("load_groups", |s: &mut ClusterState| {
        Box::pin(async move {
            s.pass.cluster = s.pass.object.clone();
            let client = s.pass.ctx.client.clone();
            let pd: Api<PDGroup> = Api::namespaced(client.clone(), &s.pass.namespace);
            let kv: Api<TiKVGroup> = Api::namespaced(client, &s.pass.namespace);
            let params = ListParams::default();
            let (pd, kv) = match futures::try_join!(pd.list(&params), kv.list(&params)) {
                Ok(lists) => lists,
                Err(error) => return Outcome::fail(error),
            };
            let name = s.pass.name.clone();
            s.pd_groups = pd.items.into_iter().filter(|g| g.spec.cluster.name == name).collect();
            s.tikv_groups = kv.items.into_iter().filter(|g| g.spec.cluster.name == name).collect();
            s.groups_loaded = true;
            Outcome::complete(format!("{} PD groups, {} TiKV groups", s.pd_groups.len(), s.tikv_groups.len()))
        })
    })
}
