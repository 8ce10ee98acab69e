//! `load_groups`: the PD and TiKV groups of this cluster.
//!
//! Reads: PDGroups and TiKVGroups of the namespace (filtered by `spec.cluster.name`)
//! from the watch caches. Writes: nothing. Complete. Also makes the Cluster the
//! pass's `cluster`, so the shared guards (paused, deleting) read it.

use kube::Api;
use kube::api::ListParams;
use tikv_operator_api::{PDGroup, TiKVGroup};
use tikv_operator_task::{Node, Outcome, task};

use crate::cluster::state::ClusterState;
use crate::common::Object;

pub fn load_groups() -> Node<ClusterState> {
    task("load_groups", |s: &mut ClusterState| {
        Box::pin(async move {
            s.pass.cluster = s.pass.object.clone();
            let caches = &s.pass.ctx.caches;
            let (namespace, name) = (&s.pass.namespace, &s.pass.name);
            let pd = caches.pd_groups.list(namespace, &Default::default());
            let kv = caches.tikv_groups.list(namespace, &Default::default());
            s.pd_groups = of_cluster(pd.iter().map(|g| PDGroup::clone(g)), name);
            s.tikv_groups = of_cluster(kv.iter().map(|g| TiKVGroup::clone(g)), name);
            s.groups_loaded = true;
            Outcome::complete(format!("{} PD groups, {} TiKV groups", s.pd_groups.len(), s.tikv_groups.len()))
        })
    })
}

/// The cluster's groups as the API server has them now: what a destructive decision
/// (releasing the Cluster) is confirmed with.
pub async fn fresh_groups(s: &ClusterState) -> Result<(Vec<PDGroup>, Vec<TiKVGroup>), kube::Error> {
    let client = s.pass.ctx.client.clone();
    let pd: Api<PDGroup> = Api::namespaced(client.clone(), &s.pass.namespace);
    let kv: Api<TiKVGroup> = Api::namespaced(client, &s.pass.namespace);
    let params = ListParams::default();
    let (pd, kv) = futures::try_join!(pd.list(&params), kv.list(&params))?;
    Ok((of_cluster(pd.items, &s.pass.name), of_cluster(kv.items, &s.pass.name)))
}

/// The groups that name `cluster` in `spec.cluster.name`.
fn of_cluster<G: Object>(groups: impl IntoIterator<Item = G>, cluster: &str) -> Vec<G> {
    groups.into_iter().filter(|g| g.cluster_name() == cluster).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_pd_group, sample_tikv_group};
    use kube::ResourceExt;
    use tikv_operator_task::{OutcomeKind, Runner};

    fn state(env: &TestEnv) -> ClusterState {
        let mut state = ClusterState::new(env.ctx.clone(), "default", "basic");
        state.pass = state.pass.with_object(sample_cluster("basic"));
        state
    }

    #[tokio::test]
    async fn the_groups_of_this_cluster_are_loaded() {
        let env = TestEnv::start().await;
        env.create(sample_pd_group("pd", 3)).await;
        env.create(sample_tikv_group("tikv", 3)).await;
        let mut foreign = sample_tikv_group("tikv-other", 3);
        foreign.spec.cluster.name = "other".into();
        env.create(foreign).await;
        let mut s = state(&env);
        let report = env.run(&Runner::new("t", [load_groups()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("load_groups").unwrap().message(), "1 PD groups, 1 TiKV groups");
        assert_eq!(s.pd_groups.iter().map(|g| g.name_any()).collect::<Vec<_>>(), ["pd"]);
        assert_eq!(s.tikv_groups.iter().map(|g| g.name_any()).collect::<Vec<_>>(), ["tikv"]);
        assert!(s.groups_loaded);
        assert_eq!(s.pass.cluster.as_ref().map(|c| c.name_any()).as_deref(), Some("basic"));
        assert_eq!(env.writes(), 0);
    }

    #[tokio::test]
    async fn no_groups_is_complete_and_loaded() {
        let env = TestEnv::start().await;
        let mut s = state(&env);
        let report = env.run(&Runner::new("t", [load_groups()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("load_groups").unwrap().message(), "0 PD groups, 0 TiKV groups");
        assert!(s.groups_loaded, "an empty list is a read, so deletion may proceed");
        assert!(s.pd_groups.is_empty() && s.tikv_groups.is_empty());
        assert_eq!(env.writes(), 0);
    }
}
