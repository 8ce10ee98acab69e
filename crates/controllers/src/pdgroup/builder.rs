//! The PDGroup controller's runbook.

use tikv_operator_task::{Node, finally, if_, if_break};

use super::state::PdGroupState;
use super::tasks::*;
use crate::common::group::{group_deletion, group_status, load_instances, run_updater, sync_revision};
use crate::common::guards::{
    cluster_id_mismatch, cluster_missing, cluster_paused, object_deleting, object_gone, object_loaded,
};
use crate::common::tasks::{ensure_finalizer, load_cluster, load_object, write_status};

pub fn tasks() -> Vec<Node<PdGroupState>> {
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
        services(),
        sync_revision(),
        bootstrap(),
        run_updater(),
        finally([if_(object_loaded(), [group_status(), write_status()])]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_pd_group};
    use kube::ResourceExt;
    use tikv_operator_api::names::{ANNOTATION_INITIAL_CLUSTER_NUM, LABEL_INSTANCE_REVISION_HASH};
    use tikv_operator_api::{PD, PDGroup};
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn members_are_created_once_spread_and_stamped_then_nothing_is_written() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_pd_group("pd", 3)).await;
        let runner = Runner::new("pdgroup", tasks());
        for _ in 0..2 {
            let mut state = PdGroupState::new(env.ctx.clone(), "default", "pd");
            let report = env.run(&runner, "default/pd", &mut state).await;
            assert!(report.error().is_none(), "{report}");
        }
        let members: Vec<PD> = env.list().await;
        assert_eq!(members.len(), 3, "no duplicates on the second pass");
        let group: PDGroup = env.get("pd").await;
        let revision = group.status.as_ref().and_then(|s| s.common.update_revision.clone()).unwrap();
        let mut zones: Vec<String> =
            members.iter().map(|m| m.spec.topology.as_ref().unwrap()["topology.kubernetes.io/zone"].clone()).collect();
        zones.sort();
        assert_eq!(zones, ["zone-a", "zone-b", "zone-c"]);
        for member in &members {
            assert_eq!(member.labels()[LABEL_INSTANCE_REVISION_HASH], revision);
            assert_eq!(member.annotations()[ANNOTATION_INITIAL_CLUSTER_NUM], "3");
            assert_eq!(member.spec.subdomain, "pd-pd-peer");
        }
        assert_eq!(group.status.as_ref().unwrap().group.replicas, 3);

        env.synced().await;
        env.sim.requests().reset();
        let mut state = PdGroupState::new(env.ctx.clone(), "default", "pd");
        let report = env.run(&runner, "default/pd", &mut state).await;
        assert_eq!(env.requests(), Vec::<String>::new(), "a pass with nothing to do makes no API request: {report}");
    }

    #[tokio::test]
    async fn a_scale_in_is_reported_not_acted_on() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_pd_group("pd", 2)).await;
        let runner = Runner::new("pdgroup", tasks());
        env.run(&runner, "k", &mut PdGroupState::new(env.ctx.clone(), "default", "pd")).await;
        let api: kube::Api<PDGroup> = kube::Api::namespaced(env.client.clone(), "default");
        api.patch(
            "pd",
            &crate::apply::patch_params(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
        env.run(&runner, "k", &mut PdGroupState::new(env.ctx.clone(), "default", "pd")).await;
        assert_eq!(env.list::<PD>().await.len(), 2, "nothing removed");
        let group: PDGroup = env.get("pd").await;
        let synced = tikv_operator_api::condition::find_condition(&group.status.unwrap().common.conditions, "Synced")
            .cloned()
            .unwrap();
        assert_eq!((synced.status.as_str(), synced.reason.as_str()), ("False", "ScaleInNotSupported"));
    }
}
