//! The PD instance controller's runbook.

use tikv_operator_task::{Node, finally, if_, if_break};

use super::state::PdState;
use super::tasks::*;
use crate::common::guards::{
    cluster_id_mismatch, cluster_missing, cluster_paused, cluster_suspended, deleting_and_cluster_gone,
    deleting_with_cluster, object_deleting, object_gone, object_loaded,
};
use crate::common::tasks as common;

/// The life of one PD member. A deleted instance (scale-in, or `kubectl delete pd`)
/// leaves PD's membership first — leadership handed over, removed by its recorded ID,
/// gone from a fresh view — and only then loses its Pod, its volumes and its finalizer.
/// A member whose data is lost is replaced in place: removed from PD, joined anew.
/// After a TLS switch a member listens at its old peer URL and the new one until PD
/// is told the new one, then restarts without the old.
pub fn tasks() -> Vec<Node<PdState>> {
    vec![
        common::load_object(),
        if_break(object_gone(), [common::forget_instance()]),
        common::load_cluster(),
        if_break(deleting_and_cluster_gone(), [common::release_without_cluster()]),
        if_break(cluster_missing(), [common::cluster_not_found()]),
        if_break(deleting_with_cluster(), [common::instance_deletion()]),
        common::load_pod(),
        member(),
        if_break(cluster_paused(), []),
        if_break(cluster_id_mismatch(), []),
        // Suspended: the Pod goes once the cluster's TiKV Pods are gone; the member stays.
        if_break(cluster_suspended(), [suspend_pod()]),
        if_break(
            object_deleting(),
            [leave(), if_(member_left(), [remove_data(), if_(data_removed(), [common::release_finalizer()])])],
        ),
        common::ensure_finalizer(),
        load_group(),
        lost_data(),
        config_map(),
        common::pvcs(),
        pod(),
        hot_reload(),
        // After a TLS switch: PD is told the member's new peer URL, then `restart` drops the old listener.
        peer_url(),
        restart(),
        common::serving_certificate(),
        finally([if_(object_loaded(), [common::instance_suspended(), conditions(), common::write_status()])]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_pd, sample_pd_group};
    use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
    use kube::ResourceExt;
    use tikv_operator_api::PD;
    use tikv_operator_api::condition::find_condition;
    use tikv_operator_api::names::ANNOTATION_INITIAL_CLUSTER_NUM;
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn a_new_member_gets_its_children_then_a_second_pass_writes_nothing() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_pd_group("pd", 1)).await;
        let mut pd = sample_pd("pd-abc123", "pd");
        pd.metadata.annotations = Some([(ANNOTATION_INITIAL_CLUSTER_NUM.to_string(), "1".to_string())].into());
        env.create(pd).await;
        let runner = Runner::new("pd", tasks());

        let mut state = PdState::new(env.ctx.clone(), "default", "pd-abc123");
        let report = env.run(&runner, "default/pd-abc123", &mut state).await;
        assert!(report.error().is_none(), "{report}");
        let pod: Pod = env.get("pd-pd-abc123").await;
        let command = pod.spec.unwrap().containers[0].command.clone().unwrap();
        assert_eq!(
            command.last().unwrap(),
            "--initial-cluster=pd-pd-abc123=http://pd-pd-abc123.pd-pd-peer.default.svc:2380"
        );
        let _: ConfigMap = env.get("pd-pd-abc123").await;
        let _: PersistentVolumeClaim = env.get("data-pd-pd-abc123").await;
        let live: PD = env.get("pd-abc123").await;
        assert_eq!(live.finalizers(), [tikv_operator_api::names::FINALIZER]);
        assert!(live.status.is_some(), "conditions are reported");

        env.synced().await;
        env.sim.requests().reset();
        let mut state = PdState::new(env.ctx.clone(), "default", "pd-abc123");
        let report = env.run(&runner, "default/pd-abc123", &mut state).await;
        assert!(report.error().is_none(), "{report}");
        assert_eq!(env.requests(), Vec::<String>::new(), "a pass with nothing to do makes no API request: {report}");
    }

    #[tokio::test]
    async fn a_member_without_its_cluster_says_so_and_recovers_when_it_appears() {
        let env = TestEnv::start().await;
        let mut pd = sample_pd("pd-abc123", "pd");
        pd.metadata.annotations = Some([(ANNOTATION_INITIAL_CLUSTER_NUM.to_string(), "1".to_string())].into());
        env.create(pd).await;
        let runner = Runner::new("pd", tasks());
        let pass = || async { env.run(&runner, "k", &mut PdState::new(env.ctx.clone(), "default", "pd-abc123")).await };
        let report = pass().await;
        assert_eq!(report.ran_names().last(), Some(&"write_status"), "{report}");
        assert_eq!(env.write_log(), ["update core.tikv.org/pds/status/pd-abc123"]);
        let live: PD = env.get("pd-abc123").await;
        let conditions = &live.status.as_ref().unwrap().common.conditions;
        for type_ in ["Ready", "Synced"] {
            let c = find_condition(conditions, type_).unwrap();
            assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "ClusterNotFound"), "{type_}");
            assert!(c.message.starts_with("Cluster basic does not exist in namespace default"), "{}", c.message);
        }
        assert_eq!(env.event_writes().await, 1);

        env.sim.requests().reset();
        pass().await;
        assert_eq!((env.writes(), env.event_writes().await), (0, 0), "{:?}", env.write_log());

        env.create(sample_cluster("basic")).await;
        env.create(sample_pd_group("pd", 1)).await;
        let report = pass().await;
        assert!(report.entry("pod").unwrap().message().starts_with("created pod"), "{report}");
        let _: Pod = env.get("pd-pd-abc123").await;
        let live: PD = env.get("pd-abc123").await;
        let conditions = &live.status.as_ref().unwrap().common.conditions;
        assert_eq!(find_condition(conditions, "Ready").unwrap().reason, "PodNotReady");
        assert_ne!(find_condition(conditions, "Synced").unwrap().reason, "ClusterNotFound");
    }

    #[tokio::test]
    async fn a_paused_cluster_only_gets_status() {
        let env = TestEnv::start().await;
        let mut cluster = sample_cluster("basic");
        cluster.spec.paused = true;
        env.create(cluster).await;
        env.create(sample_pd_group("pd", 1)).await;
        env.create(sample_pd("pd-abc123", "pd")).await;
        let mut state = PdState::new(env.ctx.clone(), "default", "pd-abc123");
        let report = env.run(&Runner::new("pd", tasks()), "default/pd-abc123", &mut state).await;
        assert!(!report.ran("pod") && !report.ran("ensure_finalizer"), "{report}");
        assert_eq!(env.write_log(), ["update core.tikv.org/pds/status/pd-abc123"]);
    }

    #[tokio::test]
    async fn a_member_deleted_after_its_cluster_is_gone_releases_its_finalizer_without_asking_pd() {
        let env = TestEnv::start().await;
        let mut pd = sample_pd("pd-abc123", "pd");
        pd.metadata.finalizers = Some(vec![tikv_operator_api::names::FINALIZER.into()]);
        env.create(pd).await;
        let api: kube::Api<PD> = kube::Api::namespaced(env.client.clone(), "default");
        api.delete("pd-abc123", &Default::default()).await.unwrap();
        env.synced().await;
        env.sim.requests().reset();
        let report =
            env.run(&Runner::new("pd", tasks()), "k", &mut PdState::new(env.ctx.clone(), "default", "pd-abc123")).await;
        assert!(report.ran("release_without_cluster") && !report.ran("member"), "{report}");
        assert_eq!(env.requests(), ["get core.tikv.org/clusters/basic", "patch core.tikv.org/pds/pd-abc123"]);
        assert!(env.list::<PD>().await.is_empty());
    }

    #[tokio::test]
    async fn a_deleted_member_leaves_pd_before_its_pod_volumes_and_finalizer_go() {
        use crate::pd::tasks::testkit::Kit;
        let kit = Kit::new("pd-pd-a", "--join=http://pd-pd-b:2379").await;
        kit.delete().await;
        let (_, report) = kit.runbook().await;
        assert_eq!(kit.pd.write_log(), ["transfer_leader(pd-pd-b)"], "{report}");
        assert_eq!(kit.writes(), Vec::<String>::new());
        assert!(!report.ran("ensure_finalizer") && !report.ran("pod"), "nothing is re-created: {report}");

        let (_, report) = kit.runbook().await;
        assert_eq!(kit.pd.write_log(), ["delete_member_by_id(1)"], "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/pds/pd-a"], "the removal recorded, nothing deleted");

        let (_, report) = kit.runbook().await;
        assert_eq!(kit.writes(), ["delete pods/pd-pd-a"], "{report}");
        let (_, report) = kit.runbook().await;
        assert_eq!(kit.writes(), ["delete persistentvolumeclaims/data-pd-pd-a"], "{report}");
        let (_, report) = kit.runbook().await;
        assert_eq!(kit.writes(), ["patch core.tikv.org/pds/pd-a"], "the finalizer, last: {report}");
        assert!(kit.env.list::<PD>().await.is_empty());
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }
}
