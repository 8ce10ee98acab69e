//! The TiKVGroup controller's runbook.

use tikv_operator_task::{Node, finally, if_, if_break};

use super::state::TikvGroupState;
use super::tasks::*;
use crate::common::group::{group_deletion, group_status, load_instances, run_updater, sync_revision};
use crate::common::guards::{
    cluster_id_mismatch, cluster_missing, cluster_paused, object_deleting, object_gone, object_loaded,
};
use crate::common::tasks::{ensure_finalizer, load_cluster, load_object, write_status};

pub fn tasks() -> Vec<Node<TikvGroupState>> {
    vec![
        load_object(),
        if_break(object_gone(), []),
        load_cluster(),
        load_instances(),
        if_break(object_deleting(), [group_deletion()]),
        if_break(cluster_missing(), []),
        if_break(cluster_paused(), []),
        if_break(cluster_id_mismatch(), []),
        ensure_finalizer(),
        peer_service(),
        sync_revision(),
        upgrade_ordering(),
        run_updater(),
        finally([if_(object_loaded(), [group_status(), write_status()])]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_tikv_group};
    use tikv_operator_api::TiKV;
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn stores_are_created_once_then_nothing_is_written() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_tikv_group("tikv", 3)).await;
        let runner = Runner::new("tikvgroup", tasks());
        for _ in 0..2 {
            let report = env.run(&runner, "k", &mut TikvGroupState::new(env.ctx.clone(), "default", "tikv")).await;
            assert!(report.error().is_none(), "{report}");
        }
        assert_eq!(env.list::<TiKV>().await.len(), 3);
        env.synced().await;
        env.sim.requests().reset();
        let report = env.run(&runner, "k", &mut TikvGroupState::new(env.ctx.clone(), "default", "tikv")).await;
        assert_eq!(env.requests(), Vec::<String>::new(), "a pass with nothing to do makes no API request: {report}");
    }
}
