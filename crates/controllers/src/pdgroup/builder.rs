//! The PDGroup controller's runbook.

use tikv_operator_task::{Node, finally, if_, if_break};

use super::state::PdGroupState;
use super::tasks::*;
use crate::common::guards::{
    cluster_id_mismatch, cluster_missing, cluster_paused, cluster_suspended, object_deleting, object_gone,
    object_loaded,
};
use crate::common::tasks as common;

pub fn tasks() -> Vec<Node<PdGroupState>> {
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
        services(),
        // PD's formation is recorded whatever the template says.
        bootstrap(),
        common::validate_template(),
        if_break(common::template_invalid(), []),
        // Suspended: nothing is planned; the spec applies on resume.
        if_break(cluster_suspended(), []),
        common::revision(),
        common::pdb(),
        common::updater(),
        finally([if_(object_loaded(), [common::group_suspended(), common::group_status(), common::write_status()])]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_pd_group};
    use k8s_openapi::api::apps::v1::ControllerRevision;
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

    async fn patch_group(env: &TestEnv, patch: serde_json::Value) {
        let api: kube::Api<PDGroup> = kube::Api::namespaced(env.client.clone(), "default");
        api.patch("pd", &crate::apply::patch_params(), &kube::api::Patch::Merge(patch)).await.unwrap();
        env.sim.requests().reset();
    }

    fn condition(group: &PDGroup, type_: &str) -> (String, String, String) {
        let conditions = &group.status.as_ref().unwrap().common.conditions;
        let c = tikv_operator_api::condition::find_condition(conditions, type_).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    async fn pass(env: &TestEnv) -> tikv_operator_task::Report {
        let report = env
            .run(&Runner::new("pdgroup", tasks()), "k", &mut PdGroupState::new(env.ctx.clone(), "default", "pd"))
            .await;
        assert!(report.error().is_none(), "{report}");
        report
    }

    #[tokio::test]
    async fn an_invalid_template_is_reported_once_and_not_rolled_out() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_pd_group("pd", 3)).await;
        pass(&env).await;
        pass(&env).await;
        let revisions = env.list::<ControllerRevision>().await.len();
        assert_eq!(env.list::<PD>().await.len(), 3);
        // Their Pods run the revision, as the PD controller records it: the group says
        // which version it runs.
        let pds: kube::Api<PD> = kube::Api::namespaced(env.client.clone(), "default");
        for mut pd in env.list::<PD>().await {
            let revision = pd.labels().get(tikv_operator_api::names::LABEL_INSTANCE_REVISION_HASH).cloned();
            pd.status.get_or_insert_default().common.current_revision = revision;
            pds.replace_status(&pd.name_any(), &Default::default(), &pd).await.unwrap();
        }
        env.synced().await;
        pass(&env).await;

        // The user scales out and, in the same edit, sets a key the operator owns.
        patch_group(
            &env,
            serde_json::json!({"spec": {"replicas": 5, "template": {"spec": {"config": "name = \"x\"\n"}}}}),
        )
        .await;
        let report = pass(&env).await;
        assert!(!report.ran("revision") && !report.ran("updater"), "{report}");
        assert_eq!(env.write_log(), ["update core.tikv.org/pdgroups/status/pd"], "status only");
        assert_eq!(env.list::<PD>().await.len(), 3, "no instance from the bad template");
        assert_eq!(env.list::<ControllerRevision>().await.len(), revisions, "no revision of it");
        let message = "spec.template.spec.config sets name that the operator owns: remove it, the operator sets it \
                       itself; nothing is rolled out until then";
        let group: PDGroup = env.get("pd").await;
        assert_eq!(condition(&group, "Synced"), ("False".into(), "ReservedConfigKey".into(), message.into()));
        assert_eq!(
            condition(&group, "Ready"),
            (
                "False".into(),
                "NotAllInstancesReady".into(),
                "0 of 5 wanted instances ready; 2 not yet created, 3 not ready".into()
            )
        );
        let version = group.status.as_ref().unwrap().group.version.clone();
        assert_eq!(version.as_deref(), Some("v8.5.0"));
        assert_eq!(env.events().await.iter().filter(|e| e.0 == "Warning").count(), 1);

        // Nothing new: no write, no Event.
        env.sim.requests().reset();
        let report = pass(&env).await;
        assert_eq!(env.write_log(), Vec::<String>::new(), "{report}");
        assert_eq!(env.event_writes().await, 0);

        // Fixed: the scale-out goes ahead from a new revision.
        patch_group(&env, serde_json::json!({"spec": {"template": {"spec": {"config": ""}}}})).await;
        pass(&env).await;
        assert_eq!(env.list::<PD>().await.len(), 5);
        assert_eq!(env.list::<ControllerRevision>().await.len(), revisions + 1);
    }

    #[tokio::test]
    async fn a_missing_cluster_is_named_then_the_group_recovers_when_it_appears() {
        let env = TestEnv::start().await;
        env.create(sample_pd_group("pd", 3)).await;
        pass(&env).await;
        assert_eq!(env.write_log(), ["update core.tikv.org/pdgroups/status/pd"]);
        let group: PDGroup = env.get("pd").await;
        let message = "Cluster basic does not exist in namespace default: create it, or set spec.cluster.name to an \
                       existing Cluster";
        let expected = ("False".to_string(), "ClusterNotFound".to_string(), message.to_string());
        assert_eq!(condition(&group, "Ready"), expected);
        assert_eq!(condition(&group, "Synced"), expected);
        assert_eq!(env.events().await, [("Warning".into(), "ClusterNotFound".into(), message.into())]);

        env.sim.requests().reset();
        pass(&env).await;
        assert_eq!((env.writes(), env.event_writes().await), (0, 0), "{:?}", env.write_log());

        // The Cluster appears (its watch event triggers the group): the pass goes on.
        env.create(sample_cluster("basic")).await;
        pass(&env).await;
        assert_eq!(env.list::<PD>().await.len(), 3);
        let group: PDGroup = env.get("pd").await;
        assert_eq!(condition(&group, "Ready").1, "NotAllInstancesReady");
        assert_eq!(condition(&group, "Synced").1, "NotAllInstancesUpToDate");
    }

    #[tokio::test]
    async fn a_suspended_cluster_plans_nothing_for_pd() {
        let env = TestEnv::start().await;
        let mut cluster = sample_cluster("basic");
        cluster.spec.suspend_action = Some(tikv_operator_api::cluster::SuspendAction { suspend_compute: true });
        env.create(cluster).await;
        env.create(sample_pd_group("pd", 3)).await;
        let report = pass(&env).await;
        assert!(!report.ran("revision") && !report.ran("updater"), "{report}");
        assert!(env.list::<PD>().await.is_empty(), "no member is created while suspended");
        let group: PDGroup = env.get("pd").await;
        assert_eq!(condition(&group, "Synced").1, "Suspended");
        assert_eq!(
            condition(&group, "Suspended"),
            ("True".into(), "Suspended".into(), "every instance is suspended (0)".into())
        );
        env.sim.requests().reset();
        pass(&env).await;
        assert_eq!((env.writes(), env.event_writes().await), (0, 0), "{:?}", env.write_log());
    }

    #[tokio::test]
    async fn a_scale_in_waits_for_healthy_members_reported_blocked_once() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_pd_group("pd", 2)).await;
        pass(&env).await;
        pass(&env).await;
        let members = env.names::<PD>().await;
        patch_group(&env, serde_json::json!({"spec": {"replicas": 1}})).await;
        pass(&env).await;
        assert_eq!(env.write_log(), ["update core.tikv.org/pdgroups/status/pd"], "nothing removed");
        assert_eq!(env.names::<PD>().await, members);
        let group: PDGroup = env.get("pd").await;
        // Neither member is Ready (no PD runs here): the choice waits for them.
        let (status, reason, text) = condition(&group, "ScaleInBlocked");
        assert_eq!((status.as_str(), reason.as_str()), ("True", "MemberRemovalBlocked"));
        assert!(text.contains("would leave PD next, but every other member must be healthy first: "), "{text}");
        assert_eq!(condition(&group, "Synced").1, "MemberRemovalBlocked");
        let events = env.events().await;
        assert_eq!(events.last().map(|e| (e.0.as_str(), e.1.as_str())), Some(("Warning", "MemberRemovalBlocked")));

        // Nothing new: no write, no Event.
        env.sim.requests().reset();
        pass(&env).await;
        assert_eq!((env.writes(), env.event_writes().await), (0, 0), "{:?}", env.write_log());

        // Back to two: the block goes.
        patch_group(&env, serde_json::json!({"spec": {"replicas": 2}})).await;
        pass(&env).await;
        let group: PDGroup = env.get("pd").await;
        let conditions = &group.status.as_ref().unwrap().common.conditions;
        assert!(tikv_operator_api::condition::find_condition(conditions, "ScaleInBlocked").is_none());
    }
}
