//! `group_status`: replicas, ready/updated/current counts, revisions, version,
//! selector, observedGeneration, and the Ready, Synced and ScaleInBlocked conditions,
//! from the instances read and what the updater planned: a scale-in under way keeps
//! Synced False (`ScalingIn`, how many of how many are leaving), a blocked one sets
//! `ScaleInBlocked` (removed once nothing is blocked). Pure: writes only the status
//! being built (written in `finally`).

use kube::{Resource, ResourceExt};
use tikv_operator_api::condition::{reasons, remove_condition, types};
use tikv_operator_api::names;
use tikv_operator_task::{Node, Outcome, sync_task};

use super::cluster_not_found_message;
use crate::common::group::{GroupState, instance_ready};
use crate::common::render::{group_selector, selector_string};
use crate::common::replicas::Replicas;
use crate::common::{Group, Instance, Object};

pub fn group_status<S: GroupState>() -> Node<S> {
    sync_task("group_status", |s: &mut S| {
        let parts = s.group();
        if !parts.instances_loaded {
            let pass = s.pass_mut();
            pass.set_synced("");
            return Outcome::complete("instances not read; Synced only");
        }
        let Some(group) = s.pass().object.clone() else {
            return Outcome::complete("no group");
        };
        // (ready, revision it is brought to, revision its Pod runs) of every instance not
        // being deleted. The group labels an instance with the update revision before
        // the instance restarts; its Pod runs it once the instance's status says so
        // (currentRevision, recorded from the Pod when Ready). updatedReplicas counts the
        // first; the group's currentRevision, version and Synced wait for the second, so
        // that "PD runs its new version" (TiKV's upgrade ordering) means the Pods do.
        let live: Vec<(bool, Option<String>, Option<String>)> = parts
            .instances
            .iter()
            .filter(|i| i.meta().deletion_timestamp.is_none())
            .map(|i| {
                let running =
                    i.status().and_then(|st| <S::G as Group>::Instance::common_status(st).current_revision.clone());
                (instance_ready(i), i.labels().get(names::LABEL_INSTANCE_REVISION_HASH).cloned(), running)
            })
            .collect();
        // A pass that stopped before the revision (a template not rolled out) counts
        // against the revision last rolled out.
        let update_revision = parts
            .update_revision
            .clone()
            .or_else(|| <S::G as Group>::common_status(&s.pass().status).update_revision.clone());
        let template_rolled_out = parts.update_revision.is_some();
        let counts = Replicas::count(group.replicas(), &parts.instances);
        let replicas = live.len() as i32;
        let ready = live.iter().filter(|(r, _, _)| *r).count() as i32;
        let at_update = |rev: &Option<String>| update_revision.is_some() && *rev == update_revision;
        let updated = live.iter().filter(|(_, rev, _)| at_update(rev)).count() as i32;
        let running_update =
            live.iter().filter(|(_, rev, running)| at_update(rev) && at_update(running)).count() as i32;
        let planned = parts.planned.clone();
        let creating = parts.created.len();
        let desired = group.replicas();

        let pass = s.pass_mut();
        let generation = pass.generation();
        let common = <S::G as Group>::common_status_mut(&mut pass.status);
        common.observed_generation = generation;
        let all_updated = running_update == replicas && replicas == desired;
        if all_updated && let Some(update) = &update_revision {
            common.current_revision = Some(update.clone());
        }
        let current_revision = common.current_revision.clone();
        let current =
            live.iter().filter(|(_, _, running)| current_revision.is_some() && *running == current_revision).count()
                as i32;
        let selector = selector_string(&group_selector(&group.cluster_name(), S::G::COMPONENT, &pass.name));
        let status = <S::G as Group>::group_status_mut(&mut pass.status);
        status.replicas = replicas;
        status.ready_replicas = ready;
        status.updated_replicas = updated;
        status.current_replicas = current;
        status.selector = Some(selector);
        if all_updated && template_rolled_out {
            status.version = Some(group.version().to_string());
        }

        if pass.cluster.is_none() {
            let message = cluster_not_found_message(&pass.namespace, &group.cluster_name());
            pass.set_condition(types::READY, false, reasons::CLUSTER_NOT_FOUND, message);
        } else {
            let (ready, reason, message) = counts.ready_condition(<S::G as Group>::MIN_REPLICAS, group.replicas_note());
            pass.set_condition(types::READY, ready, reason, message);
        }
        // Left as read when the updater did not run this pass (paused, invalid template).
        if let Some(planned) = planned {
            match planned.blocked {
                Some(blocked) => {
                    pass.set_condition(types::SCALE_IN_BLOCKED, true, blocked.reason, blocked.message.clone());
                    pass.not_synced(blocked.reason, blocked.message);
                }
                None => {
                    remove_condition(<S::G as Object>::conditions_mut(&mut pass.status), types::SCALE_IN_BLOCKED);
                }
            }
            if let Some(scale_in) = planned.scale_in {
                pass.not_synced(reasons::SCALING_IN, scale_in.message());
            }
        }
        if !all_updated || creating > 0 {
            pass.not_synced(
                reasons::NOT_ALL_INSTANCES_UP_TO_DATE,
                format!("{updated} of {desired} instances at the current revision"),
            );
        }
        pass.set_synced("every instance exists at the current revision");
        Outcome::complete(format!("{ready}/{replicas} ready, {updated} updated"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdgroup::state::PdGroupState;
    use crate::testing::{TestEnv, pd_group_pass, sample_cluster, sample_pd, sample_pd_group};
    use tikv_operator_api::PD;
    use tikv_operator_api::PDGroup;
    use tikv_operator_task::{OutcomeKind, Runner};

    /// An instance of group `pd` at `revision`, Ready (at its generation) or not.
    fn instance(name: &str, revision: &str, ready: bool) -> PD {
        let mut pd = sample_pd(name, "pd");
        pd.labels_mut().insert(names::LABEL_INSTANCE_REVISION_HASH.into(), revision.into());
        let status = if ready { "True" } else { "False" };
        // As the instance controller records it: the Pod's revision once Ready.
        let running = ready.then_some(revision);
        pd.status = Some(
            serde_json::from_value(serde_json::json!({"conditions": [{
                "type": "Ready", "status": status, "reason": "Test", "message": "",
                "observedGeneration": 1, "lastTransitionTime": "2027-01-15T08:00:00Z"}],
                "currentRevision": running}))
            .unwrap(),
        );
        pd
    }

    fn condition(s: &PdGroupState, type_: &str) -> (String, String, String) {
        let c = tikv_operator_api::condition::find_condition(&s.pass.status.common.conditions, type_).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    fn status_state(env: &TestEnv, group: PDGroup, instances: Vec<PD>) -> PdGroupState {
        let mut s = pd_group_pass(env, group, Some(sample_cluster("basic")));
        s.group.instances = instances;
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-2".into());
        s
    }

    #[tokio::test]
    async fn instances_brought_to_the_revision_count_as_current_only_once_their_pods_run_it() {
        let env = TestEnv::start().await;
        let mut group = sample_pd_group("pd", 3);
        group.status = Some(Default::default());
        group.status.as_mut().unwrap().common.current_revision = Some("rev-1".into());
        // All labelled rev-2 by the updater; one Pod restarted and runs it.
        let mut restarting = vec![instance("pd-a", "rev-2", true), instance("pd-b", "rev-2", false)];
        let mut c = instance("pd-c", "rev-2", true);
        c.status.as_mut().unwrap().common.current_revision = Some("rev-1".into());
        restarting.push(c);
        let mut s = status_state(&env, group, restarting);
        env.run(&Runner::new("t", [group_status()]), "k", &mut s).await;
        let status = &s.pass.status;
        assert_eq!(status.group.updated_replicas, 3, "brought to rev-2");
        assert_eq!(status.common.current_revision.as_deref(), Some("rev-1"), "not every Pod runs rev-2");
        assert_eq!(status.group.version, None, "no version reported before the Pods run it");
        assert_eq!(condition(&s, "Synced").1, reasons::NOT_ALL_INSTANCES_UP_TO_DATE);
    }

    #[tokio::test]
    async fn group_status_counts_instances_and_keeps_the_current_revision_mid_update() {
        let env = TestEnv::start().await;
        let mut group = sample_pd_group("pd", 3);
        group.metadata.generation = Some(4);
        group.status = Some(Default::default());
        group.status.as_mut().unwrap().common.current_revision = Some("rev-1".into());
        let mut gone = instance("pd-d", "rev-2", true);
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(crate::testing::t0()));
        let instances = vec![
            instance("pd-a", "rev-2", true),
            instance("pd-b", "rev-2", false),
            instance("pd-c", "rev-1", true),
            gone,
        ];
        let mut s = status_state(&env, group, instances);
        let report = env.run(&Runner::new("t", [group_status()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("group_status").unwrap().message(), "2/3 ready, 2 updated");
        let status = &s.pass.status;
        assert_eq!(
            (status.group.replicas, status.group.ready_replicas, status.group.updated_replicas),
            (3, 2, 2),
            "the deleting instance does not count"
        );
        assert_eq!(status.group.current_replicas, 1);
        assert_eq!(status.common.current_revision.as_deref(), Some("rev-1"), "not all updated yet");
        assert_eq!(status.common.observed_generation, Some(4));
        assert_eq!(status.group.version, None);
        assert_eq!(
            status.group.selector.as_deref(),
            Some(selector_string(&group_selector("basic", names::COMPONENT_PD, "pd")).as_str())
        );
        assert_eq!(
            condition(&s, types::READY),
            (
                "False".into(),
                reasons::NOT_ALL_INSTANCES_READY.into(),
                "2 of 3 wanted instances ready; 1 not ready".into()
            )
        );
        assert_eq!(
            condition(&s, types::SYNCED),
            (
                "False".into(),
                reasons::NOT_ALL_INSTANCES_UP_TO_DATE.into(),
                "2 of 3 instances at the current revision".into()
            )
        );
        assert_eq!(env.write_log(), Vec::<String>::new(), "pure");
    }

    #[tokio::test]
    async fn group_status_of_an_updated_group_is_written_once_then_left_alone() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 2)).await;
        let instances = vec![instance("pd-a", "rev-2", true), instance("pd-b", "rev-2", true)];
        let runner = Runner::new("t", [group_status(), crate::common::tasks::write_status()]);

        let mut s = status_state(&env, group, instances.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("group_status").unwrap().message(), "2/2 ready, 2 updated");
        assert_eq!(report.entry("write_status").unwrap().message(), "written", "{report}");
        assert_eq!(env.write_log(), ["update core.tikv.org/pdgroups/status/pd"]);
        let live: PDGroup = env.get("pd").await;
        let status = live.status.clone().unwrap();
        assert_eq!(
            (
                status.group.replicas,
                status.group.ready_replicas,
                status.group.updated_replicas,
                status.group.current_replicas
            ),
            (2, 2, 2, 2)
        );
        assert_eq!(status.common.current_revision.as_deref(), Some("rev-2"), "all updated: current follows");
        assert_eq!(status.group.version.as_deref(), Some("v8.5.0"));
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);
        assert_eq!(
            condition(&s, types::READY),
            (
                "True".into(),
                reasons::READY.into(),
                "2 of 2 instances ready; 2 members tolerate 0 failures, as 1 do: an odd number of PD members uses \
                 every member"
                    .into()
            )
        );
        assert_eq!(condition(&s, types::SYNCED).0, "True");

        // The same again, from the group as written: nothing to write.
        let mut s = status_state(&env, live, instances);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("write_status").unwrap().message(), "unchanged", "{report}");
        assert_eq!(env.writes(), 1, "{:?}", env.write_log());
    }

    #[tokio::test]
    async fn group_status_reports_a_scale_in_its_block_and_creations_as_not_synced() {
        use crate::common::group::Planned;
        use crate::updater::{Blocked, ScaleIn};
        let env = TestEnv::start().await;
        let instances = vec![instance("pd-a", "rev-2", true), instance("pd-b", "rev-2", true)];
        let runner = Runner::new("t", [group_status()]);
        let scale_in = ScaleIn { from: 2, to: 1, leaving: vec!["pd-b".into()] };
        let mut s = status_state(&env, sample_pd_group("pd", 1), instances.clone());
        s.group.planned = Some(Planned { scale_in: Some(scale_in.clone()), blocked: None });
        env.run(&runner, "k", &mut s).await;
        assert_eq!(
            condition(&s, types::SYNCED),
            ("False".into(), reasons::SCALING_IN.into(), "scaling in from 2 to 1: 1 of 1 leaving (pd-b)".into())
        );

        let blocked = Blocked { reason: reasons::MEMBER_REMOVAL_BLOCKED, message: "not yet".into() };
        let planned = Planned { scale_in: Some(ScaleIn { leaving: vec![], ..scale_in }), blocked: Some(blocked) };
        let mut s = status_state(&env, sample_pd_group("pd", 1), instances.clone());
        s.group.planned = Some(planned);
        env.run(&runner, "k", &mut s).await;
        let expected = ("True".to_string(), reasons::MEMBER_REMOVAL_BLOCKED.to_string(), "not yet".to_string());
        assert_eq!(condition(&s, types::SCALE_IN_BLOCKED), expected);
        assert_eq!(condition(&s, types::SYNCED), ("False".into(), expected.1.clone(), expected.2.clone()));

        // A pass whose updater did not run keeps the block as read; one that planned
        // nothing blocked removes it.
        let mut group = sample_pd_group("pd", 1);
        group.status = Some(s.pass.status.clone());
        let mut s = status_state(&env, group.clone(), instances.clone());
        env.run(&runner, "k", &mut s).await;
        assert_eq!(condition(&s, types::SCALE_IN_BLOCKED), expected);
        let mut s = status_state(&env, group, instances.clone());
        s.group.planned = Some(Planned::default());
        env.run(&runner, "k", &mut s).await;
        assert!(
            tikv_operator_api::condition::find_condition(&s.pass.status.common.conditions, types::SCALE_IN_BLOCKED)
                .is_none()
        );

        // Instances created this pass (not yet listed) keep Synced False.
        let mut s = status_state(&env, sample_pd_group("pd", 2), instances);
        s.group.created = vec!["pd-c".into()];
        env.run(&runner, "k", &mut s).await;
        assert_eq!(condition(&s, types::READY).0, "True");
        assert_eq!(condition(&s, types::SYNCED).1, reasons::NOT_ALL_INSTANCES_UP_TO_DATE);
    }

    #[tokio::test]
    async fn group_status_without_instances_read_sets_only_synced() {
        let env = TestEnv::start().await;
        let mut s = pd_group_pass(&env, sample_pd_group("pd", 2), None);
        s.pass.not_synced(reasons::DELETION_REFUSED, "kept");
        let report = env.run(&Runner::new("t", [group_status()]), "k", &mut s).await;
        assert_eq!(report.entry("group_status").unwrap().message(), "instances not read; Synced only");
        assert_eq!(condition(&s, types::SYNCED), ("False".into(), reasons::DELETION_REFUSED.into(), "kept".into()));
        assert!(tikv_operator_api::condition::find_condition(&s.pass.status.common.conditions, types::READY).is_none());
        assert_eq!(s.pass.status.group, Default::default());
    }
}
