//! The Cluster controller's runbook.

use tikv_operator_task::{Condition, Node, cond, finally, if_, if_break};

use super::state::ClusterState;
use super::tasks::*;
use crate::common::guards::{object_deleting, object_gone, object_loaded};
use crate::common::tasks as common;

pub fn tasks() -> Vec<Node<ClusterState>> {
    vec![
        common::load_object(),
        if_break(object_gone(), [drop_pd()]),
        load_groups(),
        if_break(object_deleting(), [delete_groups(), if_(no_groups_left(), [drop_pd(), common::release_finalizer()])]),
        common::ensure_finalizer(),
        pd_url(),
        register_pd(),
        cluster_id(),
        replication(),
        finally([if_(object_loaded(), [conditions(), suspended(), common::write_status()])]),
    ]
}

fn no_groups_left() -> Condition<ClusterState> {
    cond("no_groups_left", |s: &ClusterState| s.groups_loaded && s.pd_groups.is_empty() && s.tikv_groups.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_pd_group, sample_tikv_group};
    use tikv_operator_api::Cluster;
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn the_pd_url_is_recorded_and_a_second_pass_writes_nothing() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_pd_group("pd", 3)).await;
        env.create(sample_tikv_group("tikv", 3)).await;
        let runner = Runner::new("cluster", tasks());
        let report = env.run(&runner, "k", &mut ClusterState::new(env.ctx.clone(), "default", "basic")).await;
        assert!(report.error().is_none(), "{report}");
        let cluster: Cluster = env.get("basic").await;
        assert_eq!(cluster.status.as_ref().unwrap().pd.as_deref(), Some("http://pd-pd.default.svc:2379"));
        assert!(env.ctx.pd.get(&crate::pd_registry::ClusterKey::new("default", "basic")).is_some());

        env.synced().await;
        env.sim.requests().reset();
        let report = env.run(&runner, "k", &mut ClusterState::new(env.ctx.clone(), "default", "basic")).await;
        assert_eq!(env.requests(), Vec::<String>::new(), "a pass with nothing to do makes no API request: {report}");
    }

    #[tokio::test]
    async fn a_deleted_cluster_takes_its_groups_then_releases_its_finalizer() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_pd_group("pd", 3)).await;
        let runner = Runner::new("cluster", tasks());
        env.run(&runner, "k", &mut ClusterState::new(env.ctx.clone(), "default", "basic")).await;
        let api: kube::Api<Cluster> = kube::Api::namespaced(env.client.clone(), "default");
        api.delete("basic", &Default::default()).await.unwrap();
        let report = env.run(&runner, "k", &mut ClusterState::new(env.ctx.clone(), "default", "basic")).await;
        assert_eq!(report.outcome(), tikv_operator_task::OutcomeKind::Wait, "{report}");
        // The PDGroup has no finalizer here (its controller did not run), so it is gone.
        let report = env.run(&runner, "k", &mut ClusterState::new(env.ctx.clone(), "default", "basic")).await;
        assert!(report.ran("release_finalizer"), "{report}");
        assert!(api.get_opt("basic").await.unwrap().is_none());
        assert!(env.ctx.pd.get(&crate::pd_registry::ClusterKey::new("default", "basic")).is_none());
    }
}
