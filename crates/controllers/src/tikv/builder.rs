//! The TiKV instance controller's runbook.

use tikv_operator_task::{Node, finally, if_, if_break};

use super::guards::{cleanup_done, deleting_and_data_gone, eviction_left_behind};
use super::state::TikvState;
use super::tasks::*;
use crate::common::guards::{
    cluster_id_mismatch, cluster_missing, cluster_paused, cluster_suspended, deleting_and_cluster_gone,
    deleting_with_cluster, object_deleting, object_gone, object_loaded,
};
use crate::common::tasks as common;

/// The life of one store, top to bottom. A deleted instance (or one with
/// `spec.offline`) leaves PD first — leaders evicted, store taken offline, Tombstone —
/// and only then loses its Pod, its volumes and its finalizer. A Pod that only a
/// restart brings in line (or that someone else deletes) has its leaders evicted
/// first, is restarted only while the rest of the cluster is healthy, and counts as
/// Ready again once its leaders are back. A suspended Cluster takes the Pod away and
/// changes nothing else (an eviction or offline under way waits as it is, an
/// evict-leader entry whose store has left PD is released); resumed,
/// the Pod comes back once every PD member is.
pub fn tasks() -> Vec<Node<TikvState>> {
    vec![
        common::load_object(),
        if_break(object_gone(), [common::forget_instance()]),
        common::load_cluster(),
        if_break(deleting_and_cluster_gone(), [common::release_without_cluster()]),
        if_break(cluster_missing(), [common::cluster_not_found()]),
        if_break(deleting_with_cluster(), [common::instance_deletion()]),
        common::load_pod(),
        store(),
        down_clock(),
        if_break(cluster_paused(), []),
        if_break(cluster_id_mismatch(), []),
        // Suspended: the Pod goes; an evict-leader entry whose store has left PD is
        // released (nothing needs it); an eviction or offline under way waits, untouched.
        if_break(cluster_suspended(), [suspend_pod(), if_(eviction_left_behind(), [evict_leaders()])]),
        evict_leaders(),
        offline(),
        if_break(
            deleting_and_data_gone(),
            [delete_pod(), confirm_unregistered(), delete_pvcs(), if_(cleanup_done(), [common::release_finalizer()])],
        ),
        if_break(object_deleting(), []),
        common::ensure_finalizer(),
        config_map(),
        common::pvcs(),
        label_pvcs(),
        // Back from a suspension: the Pod waits for every PD member.
        if_break(resume_held(), [hold_resume()]),
        pod(),
        store_labels(),
        hot_reload(),
        restart(),
        common::serving_certificate(),
        finally([if_(object_loaded(), [common::instance_suspended(), conditions(), common::write_status()])]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, TestEnv, sample_cluster, sample_tikv};
    use k8s_openapi::api::core::v1::Pod;
    use kube::Api;
    use kube::ResourceExt;
    use tikv_operator_api::{Cluster, TiKV};
    use tikv_operator_task::{OutcomeKind, Runner};

    #[tokio::test]
    async fn the_pod_waits_for_the_pd_url_then_nothing_is_written_twice() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_tikv("tikv-abc123", "tikv")).await;
        let runner = Runner::new("tikv", tasks());
        let report = env.run(&runner, "k", &mut TikvState::new(env.ctx.clone(), "default", "tikv-abc123")).await;
        assert!(report.entry("pod").unwrap().message().contains("no PD URL"), "{report}");

        let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), "default");
        let mut cluster = clusters.get("basic").await.unwrap();
        cluster.status.get_or_insert_default().pd = Some("http://pd-pd.default.svc:2379".into());
        clusters.replace_status("basic", &Default::default(), &cluster).await.unwrap();

        env.run(&runner, "k", &mut TikvState::new(env.ctx.clone(), "default", "tikv-abc123")).await;
        let pod: Pod = env.get("tikv-tikv-abc123").await;
        assert!(
            pod.spec.unwrap().containers[0]
                .command
                .as_ref()
                .unwrap()
                .contains(&"--pd=http://pd-pd.default.svc:2379".to_string())
        );

        env.synced().await;
        env.sim.requests().reset();
        let report = env.run(&runner, "k", &mut TikvState::new(env.ctx.clone(), "default", "tikv-abc123")).await;
        assert_eq!(env.requests(), Vec::<String>::new(), "a pass with nothing to do makes no API request: {report}");
    }

    #[tokio::test]
    async fn a_deleted_store_leaves_pd_before_its_pod_volumes_and_finalizer_go() {
        use crate::tikv::tasks::testkit::{Kit, four_stores};
        use tikv_operator_api::names::ANNOTATION_EVICT_LEADER_STORE;
        use tikv_operator_api::tikv::StoreState;
        use tikv_operator_pd::NodeState;
        let pd = four_stores().counts(5, 2, 10);
        let kit = Kit::new(pd, |_| {}).await;
        kit.status(|st| (st.id, st.state) = (Some("5".into()), Some(StoreState::Serving))).await;
        kit.pod_and_pvc(Some("5")).await;
        kit.delete().await;
        let finalized = |t: &TiKV| t.finalizers() == [tikv_operator_api::names::FINALIZER];

        let (_, report) = kit.runbook().await;
        assert_eq!(kit.pd.write_log(), ["add_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"], "the intent, nothing deleted");
        assert!(!report.ran("ensure_finalizer") && !report.ran("pod"), "nothing is re-created: {report}");

        kit.pd.set_store(5, |st| st.leader_count = 0);
        let (_, report) = kit.runbook().await;
        assert_eq!(kit.pd.write_log(), ["delete_store(5)"], "{report}");
        assert_eq!(kit.writes(), Vec::<String>::new());

        kit.pd.set_node_state(5, NodeState::Removed);
        let (_, report) = kit.runbook().await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123", "delete pods/tikv-tikv-abc123"]);
        let live = kit.live().await;
        assert!(finalized(&live) && !live.annotations().contains_key(ANNOTATION_EVICT_LEADER_STORE));

        let (_, report) = kit.runbook().await;
        assert_eq!(kit.writes(), ["delete persistentvolumeclaims/data-tikv-tikv-abc123"], "{report}");
        assert!(finalized(&kit.live().await));

        let (_, report) = kit.runbook().await;
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"], "the finalizer, last: {report}");
        assert!(kit.env.list::<TiKV>().await.is_empty());
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn an_instance_deleted_with_its_cluster_is_released_without_leaving_pd() {
        use crate::tikv::tasks::testkit::{ADDR, Kit};
        use tikv_operator_pd::NodeState;
        let kit = Kit::new(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), |_| {}).await;
        let clusters: Api<Cluster> = Api::namespaced(kit.env.client.clone(), "default");
        let mut cluster = clusters.get("basic").await.unwrap();
        cluster.metadata.finalizers = Some(vec![tikv_operator_api::names::FINALIZER.into()]);
        clusters.replace("basic", &Default::default(), &cluster).await.unwrap();
        clusters.delete("basic", &Default::default()).await.unwrap();
        kit.delete().await;
        let (_, report) = kit.runbook().await;
        assert!(report.ran("instance_deletion") && !report.ran("evict_leaders"), "{report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
        assert!(kit.env.list::<TiKV>().await.is_empty());
    }

    #[tokio::test]
    async fn a_suspended_store_loses_only_its_pod_its_pending_restart_and_eviction_wait() {
        use crate::tikv::tasks::testkit::{Kit, four_stores};
        use tikv_operator_api::condition::find_condition;
        use tikv_operator_api::names::ANNOTATION_EVICT_LEADER_STORE;
        let pd = four_stores().counts(5, 4, 1000).evicting_leaders(5);
        let kit = Kit::new(pd, |t| {
            t.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "5".to_string())].into());
        })
        .await;
        kit.status(|st| st.id = Some("5".into())).await;
        kit.running_pod().await;
        // A version change only a restart applies, its eviction under way.
        kit.patch(serde_json::json!({"spec": {"template": {"spec": {"version": "v8.5.1"}}}})).await;
        let clusters: Api<Cluster> = Api::namespaced(kit.env.client.clone(), "default");
        let patch = serde_json::json!({"spec": {"suspendAction": {"suspendCompute": true}}});
        clusters.patch("basic", &crate::apply::patch_params(), &kube::api::Patch::Merge(&patch)).await.unwrap();
        let condition = |t: &TiKV, type_: &str| {
            let c = find_condition(&t.status.as_ref().unwrap().common.conditions, type_).unwrap();
            (c.status.clone(), c.reason.clone())
        };

        let (_, report) = kit.runbook().await;
        assert_eq!(kit.writes(), ["delete pods/tikv-tikv-abc123"], "{report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        for task in ["evict_leaders", "offline", "pod", "hot_reload", "restart"] {
            assert!(!report.ran(task), "{task}: {report}");
        }
        let live = kit.live().await;
        assert_eq!(condition(&live, "Suspended"), ("False".into(), "Suspending".into()));
        assert_eq!(condition(&live, "Synced"), ("False".into(), "PodNotDeleted".into()));

        let pods: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        pods.delete("tikv-tikv-abc123", &kube::api::DeleteParams::default().grace_period(0)).await.unwrap();
        let (_, report) = kit.runbook().await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        let live = kit.live().await;
        assert_eq!(condition(&live, "Suspended"), ("True".into(), "Suspended".into()));
        assert_eq!(condition(&live, "Synced"), ("False".into(), "Suspended".into()));
        assert_eq!(live.annotations()[ANNOTATION_EVICT_LEADER_STORE], "5", "the eviction's record stays");

        let (_, report) = kit.runbook().await;
        assert_eq!(kit.env.write_log(), Vec::<String>::new(), "nothing to do, nothing written: {report}");
        assert_eq!(kit.env.event_writes().await, 0, "no Event either");
        assert_eq!(kit.pd.evicting(), [5].into());
    }

    #[tokio::test]
    async fn a_suspension_releases_the_evict_leader_entry_of_a_store_that_left_pd() {
        // Seed 1035 of the chaos harness: a store went Tombstone just as the Cluster was
        // suspended; its entry stayed in PD for the whole suspension.
        use crate::tikv::tasks::testkit::{Kit, four_stores};
        use tikv_operator_api::names::ANNOTATION_EVICT_LEADER_STORE;
        use tikv_operator_api::tikv::StoreState;
        use tikv_operator_pd::NodeState;
        let pd = four_stores().evicting_leaders(5);
        pd.set_node_state(5, NodeState::Removed);
        let kit = Kit::new(pd, |t| {
            t.spec.offline = true;
            t.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "5".to_string())].into());
        })
        .await;
        kit.status(|st| (st.id, st.state) = (Some("5".into()), Some(StoreState::Removing))).await;
        kit.running_pod().await;
        let clusters: Api<Cluster> = Api::namespaced(kit.env.client.clone(), "default");
        let patch = serde_json::json!({"spec": {"suspendAction": {"suspendCompute": true}}});
        clusters.patch("basic", &crate::apply::patch_params(), &kube::api::Patch::Merge(&patch)).await.unwrap();

        let (_, report) = kit.runbook().await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), ["delete pods/tikv-tikv-abc123", "patch core.tikv.org/tikvs/tikv-abc123"], "{report}");
        assert!(!kit.live().await.annotations().contains_key(ANNOTATION_EVICT_LEADER_STORE));
        assert!(!report.ran("offline") && !report.ran("pod"), "nothing else runs while suspended: {report}");
    }

    #[tokio::test]
    async fn a_suspension_keeps_the_evict_leader_entry_of_an_offline_under_way() {
        use crate::tikv::tasks::testkit::{Kit, four_stores};
        use tikv_operator_api::names::ANNOTATION_EVICT_LEADER_STORE;
        let pd = four_stores().counts(5, 0, 10).evicting_leaders(5);
        let kit = Kit::new(pd, |t| {
            t.spec.offline = true;
            t.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "5".to_string())].into());
        })
        .await;
        kit.status(|st| st.id = Some("5".into())).await;
        let clusters: Api<Cluster> = Api::namespaced(kit.env.client.clone(), "default");
        let patch = serde_json::json!({"spec": {"suspendAction": {"suspendCompute": true}}});
        clusters.patch("basic", &crate::apply::patch_params(), &kube::api::Patch::Merge(&patch)).await.unwrap();

        let (_, report) = kit.runbook().await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert!(!report.ran("evict_leaders"), "{report}");
        assert_eq!(kit.live().await.annotations()[ANNOTATION_EVICT_LEADER_STORE], "5");
    }

    /// A TiKV with our finalizer, deleted (its deletionTimestamp set), as the caches see it.
    async fn deleting_tikv(env: &TestEnv) {
        let mut tikv = sample_tikv("tikv-abc123", "tikv");
        tikv.metadata.finalizers = Some(vec![tikv_operator_api::names::FINALIZER.into()]);
        env.create(tikv).await;
        let api: Api<TiKV> = Api::namespaced(env.client.clone(), "default");
        api.delete("tikv-abc123", &Default::default()).await.unwrap();
        env.synced().await;
        env.sim.requests().reset();
    }

    #[tokio::test]
    async fn an_instance_deleted_after_its_cluster_is_gone_releases_its_finalizer() {
        let env = TestEnv::start().await;
        deleting_tikv(&env).await;
        // A PD still registered for the cluster name is not asked anything.
        let pd = FakePd::bootstrapped().store(4, "tikv-abc123:20160", tikv_operator_pd::NodeState::Serving);
        env.ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", pd.fresh_handle().await);
        let runner = Runner::new("tikv", tasks());
        let report = env.run(&runner, "k", &mut TikvState::new(env.ctx.clone(), "default", "tikv-abc123")).await;
        let release = report.entry("release_without_cluster").unwrap();
        assert_eq!(release.kind(), Some(OutcomeKind::Complete), "{report}");
        assert!(!report.ran("cluster_not_found"), "{report}");
        assert_eq!(
            env.requests(),
            ["get core.tikv.org/clusters/basic", "patch core.tikv.org/tikvs/tikv-abc123"],
            "confirmed with the API server, then only the finalizer: PVCs kept, no status write"
        );
        assert!(env.list::<TiKV>().await.is_empty());
        assert_eq!(pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn an_instance_whose_cluster_is_only_missing_from_a_stale_cache_keeps_its_finalizer() {
        let env = TestEnv::start().await;
        deleting_tikv(&env).await;
        // The watch caches will not see the Cluster for a (simulated) hour.
        env.sim.faults().set_watch_delay(std::time::Duration::from_secs(3600));
        let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), "default");
        clusters.create(&Default::default(), &sample_cluster("basic")).await.unwrap();
        env.sim.requests().reset();

        let runner = Runner::new("tikv", tasks());
        let report = runner.run("k", &mut TikvState::new(env.ctx.clone(), "default", "tikv-abc123")).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry, "{report}");
        assert!(report.ran("release_without_cluster"), "{report}");
        assert_eq!(
            env.write_log(),
            ["update core.tikv.org/tikvs/status/tikv-abc123"],
            "the status only: no finalizer release, no PVC deletion"
        );
        let live: TiKV = env.get("tikv-abc123").await;
        assert_eq!(live.finalizers(), [tikv_operator_api::names::FINALIZER]);
    }
}
