//! The TiKVGroup controller's runbook.

use tikv_operator_task::{Node, finally, if_, if_break};

use super::state::TikvGroupState;
use super::tasks::*;
use crate::common::guards::{
    cluster_id_mismatch, cluster_missing, cluster_paused, cluster_suspended, object_deleting, object_gone,
    object_loaded,
};
use crate::common::tasks as common;

pub fn tasks() -> Vec<Node<TikvGroupState>> {
    vec![
        common::load_object(),
        if_break(object_gone(), []),
        common::load_cluster(),
        common::load_instances(),
        if_break(object_deleting(), [common::group_deletion()]),
        if_break(cluster_missing(), [common::cluster_not_found()]),
        if_break(cluster_paused(), []),
        if_break(cluster_id_mismatch(), []),
        common::ensure_finalizer(),
        peer_service(),
        common::validate_template(),
        if_break(common::template_invalid(), []),
        // Suspended: nothing is planned; the spec applies on resume.
        if_break(cluster_suspended(), []),
        common::revision(),
        upgrade_ordering(),
        scale_in_check(),
        failover(),
        common::pdb(),
        common::updater(),
        finally([if_(object_loaded(), [common::group_suspended(), common::group_status(), common::write_status()])]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_tikv_group};
    use k8s_openapi::api::apps::v1::ControllerRevision;
    use kube::ResourceExt;
    use tikv_operator_api::names::ANNOTATION_ALLOW_VERSION_CHANGE;
    use tikv_operator_api::{TiKV, TiKVGroup};
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

    async fn patch_group(env: &TestEnv, patch: serde_json::Value) {
        let api: kube::Api<TiKVGroup> = kube::Api::namespaced(env.client.clone(), "default");
        api.patch("tikv", &crate::apply::patch_params(), &kube::api::Patch::Merge(patch)).await.unwrap();
        env.sim.requests().reset();
    }

    fn synced(group: &TiKVGroup) -> (String, String) {
        let conditions = &group.status.as_ref().unwrap().common.conditions;
        let c = tikv_operator_api::condition::find_condition(conditions, "Synced").unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[tokio::test]
    async fn a_downgrade_waits_for_the_annotation_and_a_second_pass_writes_nothing() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_tikv_group("tikv", 3)).await;
        let runner = Runner::new("tikvgroup", tasks());
        let pass =
            || async { env.run(&runner, "k", &mut TikvGroupState::new(env.ctx.clone(), "default", "tikv")).await };
        pass().await;
        pass().await;
        let revisions = env.list::<ControllerRevision>().await.len();

        patch_group(&env, serde_json::json!({"spec": {"replicas": 4, "template": {"spec": {"version": "v8.4.0"}}}}))
            .await;
        let report = pass().await;
        assert!(!report.ran("updater"), "{report}");
        assert_eq!(env.write_log(), ["update core.tikv.org/tikvgroups/status/tikv"]);
        let group: TiKVGroup = env.get("tikv").await;
        assert_eq!(synced(&group), ("False".into(), "VersionDowngrade".into()));
        assert_eq!(env.list::<TiKV>().await.len(), 3);
        assert_eq!(env.event_writes().await, 1);

        env.sim.requests().reset();
        pass().await;
        assert_eq!((env.writes(), env.event_writes().await), (0, 0), "{:?}", env.write_log());

        // The user says so explicitly: the new template is rolled out.
        let annotations = serde_json::json!({ANNOTATION_ALLOW_VERSION_CHANGE: "true"});
        patch_group(&env, serde_json::json!({"metadata": {"annotations": annotations}})).await;
        let report = pass().await;
        assert!(report.ran("updater"), "{report}");
        assert_eq!(env.list::<ControllerRevision>().await.len(), revisions + 1);
        let tikvs = env.list::<TiKV>().await;
        assert_eq!(tikvs.len(), 4);
        // None is Ready (no instance controller runs here): all are updated at once, as
        // updating an unavailable instance takes nothing down.
        assert_eq!(tikvs.iter().filter(|t| t.spec.template.version == "v8.4.0").count(), 4);
        let group: TiKVGroup = env.get("tikv").await;
        assert_eq!(synced(&group).1, "NotAllInstancesUpToDate");
    }

    fn condition(group: &TiKVGroup, type_: &str) -> Option<(String, String, String)> {
        let conditions = &group.status.as_ref()?.common.conditions;
        let c = tikv_operator_api::condition::find_condition(conditions, type_)?;
        Some((c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    #[tokio::test]
    async fn a_scale_in_takes_one_store_offline_says_so_and_is_cancelled_by_raising_replicas() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_tikv_group("tikv", 3)).await;
        // PD answers; no store registered yet, so the pre-check has nothing to refuse.
        let pd = crate::testing::FakePd::bootstrapped().fresh_handle().await;
        env.ctx.pd.insert(&crate::pd_registry::ClusterKey::new("default", "basic"), "http://pd", pd);
        let runner = Runner::new("tikvgroup", tasks());
        let pass =
            || async { env.run(&runner, "k", &mut TikvGroupState::new(env.ctx.clone(), "default", "tikv")).await };
        pass().await;
        pass().await;
        assert_eq!(env.list::<TiKV>().await.len(), 3);

        patch_group(&env, serde_json::json!({"spec": {"replicas": 2}})).await;
        pass().await;
        let offline: Vec<TiKV> = env.list::<TiKV>().await.into_iter().filter(|t| t.spec.offline).collect();
        assert_eq!(offline.len(), 1, "one store leaves");
        let chosen = offline[0].name_any();
        assert_eq!(
            env.write_log(),
            [format!("patch core.tikv.org/tikvs/{chosen}"), "update core.tikv.org/tikvgroups/status/tikv".into()]
        );
        let group: TiKVGroup = env.get("tikv").await;
        let message = format!("scaling in from 3 to 2: 1 of 1 leaving ({chosen})");
        assert_eq!(condition(&group, "Synced"), Some(("False".into(), "ScalingIn".into(), message)));
        assert_eq!(condition(&group, "ScaleInBlocked"), None);
        assert_eq!(group.status.as_ref().unwrap().group.replicas, 3, "it exists until it has left");

        // The pass that sees the store offline counts it out of Ready once; then nothing.
        pass().await;
        let group: TiKVGroup = env.get("tikv").await;
        assert_eq!(condition(&group, "Ready").unwrap().2, "0 of 2 wanted instances ready; 2 not ready");
        env.sim.requests().reset();
        pass().await;
        assert_eq!((env.writes(), env.event_writes().await), (0, 0), "{:?}", env.write_log());

        patch_group(&env, serde_json::json!({"spec": {"replicas": 3}})).await;
        pass().await;
        assert_eq!(env.write_log()[0], format!("patch core.tikv.org/tikvs/{chosen}"));
        assert_eq!(env.list::<TiKV>().await.iter().filter(|t| t.spec.offline).count(), 0);
        assert_eq!(env.list::<TiKV>().await.len(), 3, "the store stays; nothing new");
    }
}

#[cfg(test)]
mod suspend_tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_tikv_group};
    use kube::Api;
    use tikv_operator_api::condition::find_condition;
    use tikv_operator_api::{Cluster, TiKV, TiKVGroup};
    use tikv_operator_task::Runner;

    async fn suspend(env: &TestEnv, suspended: bool) {
        let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), "default");
        let patch = serde_json::json!({"spec": {"suspendAction": {"suspendCompute": suspended}}});
        clusters.patch("basic", &crate::apply::patch_params(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    }

    #[tokio::test]
    async fn a_suspended_cluster_plans_nothing_and_a_change_made_meanwhile_applies_on_resume() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_tikv_group("tikv", 3)).await;
        let runner = Runner::new("tikvgroup", tasks());
        let pass =
            || async { env.run(&runner, "k", &mut TikvGroupState::new(env.ctx.clone(), "default", "tikv")).await };
        pass().await;
        pass().await;
        let before = env.names::<TiKV>().await;
        suspend(&env, true).await;
        let groups: Api<TiKVGroup> = Api::namespaced(env.client.clone(), "default");
        let patch = serde_json::json!({"spec": {"replicas": 4, "template": {"spec": {"config": "a = 1\n"}}}});
        groups.patch("tikv", &crate::apply::patch_params(), &kube::api::Patch::Merge(&patch)).await.unwrap();
        env.sim.requests().reset();

        let report = pass().await;
        assert!(!report.ran("revision") && !report.ran("updater"), "{report}");
        assert_eq!(env.write_log(), ["update core.tikv.org/tikvgroups/status/tikv"], "status only");
        assert_eq!(env.names::<TiKV>().await, before);
        let group: TiKVGroup = env.get("tikv").await;
        let conditions = &group.status.as_ref().unwrap().common.conditions;
        let condition = |type_: &str| {
            let c = find_condition(conditions, type_).unwrap();
            (c.status.clone(), c.reason.clone(), c.message.clone())
        };
        assert_eq!(condition("Suspended"), ("False".into(), "Suspending".into(), "0 of 3 instances suspended".into()));
        assert_eq!(condition("Synced").1, "Suspended");
        env.sim.requests().reset();
        pass().await;
        assert_eq!((env.writes(), env.event_writes().await), (0, 0), "{:?}", env.write_log());

        suspend(&env, false).await;
        pass().await;
        let tikvs = env.list::<TiKV>().await;
        assert_eq!(tikvs.len(), 4, "the scale-out made while suspended");
        assert!(tikvs.iter().all(|t| t.spec.template.config == "a = 1\n"), "the config made while suspended");
    }
}

#[cfg(test)]
mod scale_in_tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, TestEnv, sample_cluster, sample_tikv_group};
    use kube::{Api, ResourceExt};
    use tikv_operator_api::condition::find_condition;
    use tikv_operator_api::{TiKV, TiKVGroup};
    use tikv_operator_pd::NodeState;
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn a_scale_in_pd_could_not_finish_is_refused_and_touches_nothing() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_tikv_group("tikv", 3)).await;
        let runner = Runner::new("tikvgroup", tasks());
        let pass =
            || async { env.run(&runner, "k", &mut TikvGroupState::new(env.ctx.clone(), "default", "tikv")).await };
        let pd =
            (1..=3).fold(FakePd::bootstrapped(), |pd, id| pd.store(id, &format!("s{id}:20160"), NodeState::Serving));
        env.ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", pd.fresh_handle().await);
        pass().await;
        // Each instance's store is registered, as the instance controller records it.
        let api: Api<TiKV> = Api::namespaced(env.client.clone(), "default");
        for (i, mut tikv) in env.list::<TiKV>().await.into_iter().enumerate() {
            tikv.status.get_or_insert_default().id = Some((i + 1).to_string());
            api.replace_status(&tikv.name_any(), &Default::default(), &tikv).await.unwrap();
        }
        let groups: Api<TiKVGroup> = Api::namespaced(env.client.clone(), "default");
        let patch = serde_json::json!({"spec": {"replicas": 2}});
        groups.patch("tikv", &crate::apply::patch_params(), &kube::api::Patch::Merge(&patch)).await.unwrap();
        env.synced().await;
        env.sim.requests().reset();

        let report = pass().await;
        assert!(report.entry("scale_in_check").unwrap().retry_after().is_some(), "{report}");
        assert_eq!(env.write_log(), ["update core.tikv.org/tikvgroups/status/tikv"], "no store touched");
        assert_eq!(env.list::<TiKV>().await.iter().filter(|t| t.spec.offline).count(), 0);
        let group: TiKVGroup = env.get("tikv").await;
        let blocked = find_condition(&group.status.as_ref().unwrap().common.conditions, "ScaleInBlocked").unwrap();
        assert_eq!((blocked.status.as_str(), blocked.reason.as_str()), ("True", "NotEnoughStores"));
        assert!(blocked.message.contains("lower max-replicas"), "{}", blocked.message);
        let events = env.events().await;
        assert!(events.iter().any(|(t, _, m)| t == "Warning" && m.contains("max-replicas is 3")), "{events:?}");
    }
}
