//! `delete_groups` and `drop_pd`: a Cluster being deleted takes its groups with it
//! (their controllers release their instances; PVCs stay unless the deletion policy
//! says Delete), then stops polling its PD.
//!
//! Reads: the groups loaded, and a fresh list before concluding none remain. Writes: DELETE of each group not yet deleting.
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
            let mut remaining = s.pd_groups.len() + s.tikv_groups.len();
            if remaining == 0 {
                // What follows releases the Cluster: confirm with a fresh list that the
                // cache is not merely behind.
                match crate::cluster::tasks::fresh_groups(s).await {
                    Ok((pd, kv)) if pd.is_empty() && kv.is_empty() => return Outcome::complete("no groups left"),
                    Ok((pd, kv)) => {
                        remaining = pd.len() + kv.len();
                        (s.pd_groups, s.tikv_groups) = (pd, kv);
                    }
                    Err(error) => return Outcome::fail(error),
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::builder::tasks;
    use crate::testing::{TestEnv, sample_cluster, sample_pd_group, sample_tikv_group};
    use tikv_operator_api::Cluster;
    use tikv_operator_api::names::FINALIZER;
    use tikv_operator_task::{OutcomeKind, Runner};

    async fn deleting_cluster(env: &TestEnv) {
        let mut cluster = sample_cluster("basic");
        cluster.metadata.finalizers = Some(vec![FINALIZER.into()]);
        env.create(cluster).await;
        let api: Api<Cluster> = Api::namespaced(env.client.clone(), "default");
        api.delete("basic", &DeleteParams::default()).await.unwrap();
        env.synced().await;
        env.sim.requests().reset();
    }

    fn with_finalizer<K: Resource>(mut object: K) -> K {
        object.meta_mut().finalizers = Some(vec![FINALIZER.into()]);
        object
    }

    #[tokio::test]
    async fn delete_groups_deletes_each_group_once_and_waits() {
        let env = TestEnv::start().await;
        // Finalizers keep the groups around, as their controllers would.
        let pd = env.create(with_finalizer(sample_pd_group("pd", 3))).await;
        let kv = env.create(with_finalizer(sample_tikv_group("tikv", 3))).await;
        let mut s = ClusterState::new(env.ctx.clone(), "default", "basic");
        s.pd_groups = vec![pd];
        s.tikv_groups = vec![kv];
        s.groups_loaded = true;
        let runner = Runner::new("t", [delete_groups()]);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(env.write_log(), ["delete core.tikv.org/pdgroups/pd", "delete core.tikv.org/tikvgroups/tikv"]);

        // Next pass: both are deleting; they are not deleted again.
        let mut s = ClusterState::new(env.ctx.clone(), "default", "basic");
        s.pd_groups = vec![env.get("pd").await];
        s.tikv_groups = vec![env.get("tikv").await];
        s.groups_loaded = true;
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(env.writes(), 2, "{:?}", env.write_log());

        // A loaded list that is empty (a cache behind) is confirmed by a fresh one: the
        // groups are still there, so the pass waits for them.
        let mut s = ClusterState::new(env.ctx.clone(), "default", "basic");
        s.groups_loaded = true;
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(env.writes(), 2);

        // Once they are gone, nothing is left.
        let patch = serde_json::json!({"metadata": {"finalizers": null}});
        let pd_api: Api<PDGroup> = Api::namespaced(env.client.clone(), "default");
        let kv_api: Api<TiKVGroup> = Api::namespaced(env.client.clone(), "default");
        pd_api.patch("pd", &Default::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
        kv_api.patch("tikv", &Default::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
        let mut s = ClusterState::new(env.ctx.clone(), "default", "basic");
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("delete_groups").unwrap().message(), "no groups left");
        assert_eq!(env.writes(), 4, "{:?}", env.write_log());
    }

    #[tokio::test]
    async fn the_finalizer_is_released_only_when_no_groups_are_left() {
        let env = TestEnv::start().await;
        deleting_cluster(&env).await;
        env.create(with_finalizer(sample_pd_group("pd", 3))).await;
        let runner = Runner::new("cluster", tasks());

        let report = env.run(&runner, "k", &mut ClusterState::new(env.ctx.clone(), "default", "basic")).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert!(!report.ran("release_finalizer"), "{report}");
        // (The runbook's `finally` reports the Cluster's conditions.)
        let first = ["delete core.tikv.org/pdgroups/pd", "update core.tikv.org/clusters/status/basic"];
        assert_eq!(env.write_log(), first);
        let live: Cluster = env.get("basic").await;
        assert_eq!(live.metadata.finalizers, Some(vec![FINALIZER.to_string()]));

        // The group is still there (its own finalizer): the Cluster keeps its finalizer.
        let report = env.run(&runner, "k", &mut ClusterState::new(env.ctx.clone(), "default", "basic")).await;
        assert!(!report.ran("release_finalizer"), "{report}");
        assert_eq!(env.write_log(), first, "nothing more to write");

        // The group's controller lets it go; then the Cluster's finalizer is released.
        let groups: Api<PDGroup> = Api::namespaced(env.client.clone(), "default");
        let patch = serde_json::json!({"metadata": {"finalizers": null}});
        groups.patch("pd", &Default::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
        env.synced().await;
        env.sim.requests().reset();
        let report = env.run(&runner, "k", &mut ClusterState::new(env.ctx.clone(), "default", "basic")).await;
        assert!(report.ran("release_finalizer"), "{report}");
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(env.write_log(), ["patch core.tikv.org/clusters/basic"]);
        let api: Api<Cluster> = Api::namespaced(env.client.clone(), "default");
        assert!(api.get_opt("basic").await.unwrap().is_none());
    }
}
