//! `updater`: runs the updater over the instances read (plus those created but not yet
//! seen) and carries out its plan. Writes: creates instances, at most
//! [`CREATES_PER_PASS`] a pass, and none while an instance of the group cannot be
//! scheduled (so a typo such as `replicas: 1000` stops at what fits). A scale-in is
//! recorded for the Synced condition and not acted on. Complete; Wait without a
//! revision or while pods cannot be scheduled; Retry while more remain to create or
//! when a chosen name was taken meanwhile; Fail on other API errors.

use std::time::Duration;

use kube::Api;
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::post_params;
use crate::common::Group;
use crate::common::group::{GroupState, instance_view, new_instance};
use crate::common::replicas::Replicas;
use crate::error::is_already_exists;
use crate::updater::{Action, Expected, GroupView, InstanceView, plan, random_suffix};

/// Instances created in one pass at most: a large scale-out (or a typo such as
/// `replicas: 1000`) is carried out over several passes, each of which writes the
/// group's status, so progress and unschedulable pods show while it happens.
const CREATES_PER_PASS: usize = 10;

fn expectations_key<G: Group>(namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", G::COMPONENT)
}

pub fn updater<S: GroupState>() -> Node<S> {
    task("updater", |s: &mut S| {
        Box::pin(async move {
            let Some(revision) = s.group().update_revision.clone() else {
                return Outcome::wait("no revision yet");
            };
            let pass = s.pass();
            let Some(group) = pass.object.clone() else {
                return Outcome::complete("no group");
            };
            let ctx = pass.ctx.clone();
            let key = expectations_key::<S::G>(&pass.namespace, &pass.name);
            let instances: Vec<InstanceView> = s.group().instances.iter().map(instance_view).collect();
            let seen: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
            let expected = ctx.expectations.unseen(&key, &seen);
            let topologies = group.topologies();
            let view = GroupView {
                group: &pass.name,
                desired: group.replicas(),
                revision: &revision,
                instances: &instances,
                expected: &expected,
                topologies: &topologies,
            };
            let plan = plan(&view, &mut random_suffix);
            s.group_mut().scale_in = plan.scale_in;
            let unschedulable = Replicas::count(group.replicas(), &s.group().instances).unschedulable;
            if unschedulable > 0 && !plan.actions.is_empty() {
                return Outcome::wait(format!(
                    "{unschedulable} instances cannot be scheduled: no more are created until they can \
                     (add capacity, or lower replicas)"
                ));
            }
            let api: Api<<S::G as Group>::Instance> = Api::namespaced(ctx.client.clone(), &s.pass().namespace);
            let planned = plan.actions.len();
            for action in plan.actions.into_iter().take(CREATES_PER_PASS) {
                let Action::Create { name, topology, revision } = action;
                let instance = new_instance(&group, &name, topology.clone(), &revision);
                match api.create(&post_params(), &instance).await {
                    Ok(_) => {
                        ctx.expectations.created(&key, Expected { name: name.clone(), topology });
                        s.pass()
                            .event("CreatedInstance", "Create", format!("created {} instance {name}", S::G::COMPONENT))
                            .await;
                        s.group_mut().created.push(name);
                    }
                    Err(error) if is_already_exists(&error) => {
                        return Outcome::retry(
                            Duration::from_secs(1),
                            format!("instance name {name} is taken; choosing another"),
                        );
                    }
                    Err(error) => return Outcome::fail(error),
                }
            }
            match (&s.group().created[..], s.group().scale_in) {
                (_, Some((current, desired))) => {
                    Outcome::complete(format!("scale-in from {current} to {desired} is not supported yet"))
                }
                ([], None) => Outcome::complete("nothing to do"),
                (created, None) if planned > created.len() => Outcome::retry(
                    Duration::from_secs(1),
                    format!("created {} of {planned} missing instances; the rest in the next passes", created.len()),
                ),
                (created, None) => Outcome::complete(format!("created {}", created.join(", "))),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, pd_group_pass, sample_pd, sample_pd_group};
    use kube::ResourceExt;
    use tikv_operator_api::condition::{reasons, types};
    use tikv_operator_api::names;
    use tikv_operator_api::{PD, PDGroup};
    use tikv_operator_task::{OutcomeKind, Runner};

    fn zone_of(pd: &PD) -> String {
        pd.spec.topology.as_ref().unwrap()["topology.kubernetes.io/zone"].clone()
    }

    #[tokio::test]
    async fn the_updater_creates_exactly_the_missing_instances_and_no_duplicate_on_a_stale_list() {
        let env = TestEnv::start().await;
        // The owner must exist, or kube-sim's garbage collector takes the instances.
        let group = env.create(sample_pd_group("pd", 3)).await;
        let a = env.create(sample_pd("pd-a", "pd")).await;
        let runner = Runner::new("t", [updater()]);
        let stale = |group: PDGroup| {
            let mut s = pd_group_pass(&env, group, None);
            s.group.instances = vec![a.clone()];
            s.group.instances_loaded = true;
            s.group.update_revision = Some("rev-2".into());
            s
        };

        let mut s = stale(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(s.group.created.len(), 2, "{:?}", s.group.created);
        assert_eq!(report.entry("updater").unwrap().message(), format!("created {}", s.group.created.join(", ")));
        assert_eq!(s.group.scale_in, None);
        assert_eq!(env.write_log(), ["create core.tikv.org/pds/", "create core.tikv.org/pds/"]);
        let mut created = s.group.created.clone();
        created.sort();
        let mut expected_names = vec!["pd-a".to_string()];
        expected_names.extend(created.iter().cloned());
        expected_names.sort();
        assert_eq!(env.names::<PD>().await, expected_names);
        for name in &created {
            assert!(name.starts_with("pd-") && name.len() == 3 + names::INSTANCE_SUFFIX_LEN, "{name}");
            let pd: PD = env.get(name).await;
            assert_eq!(pd.labels()[names::LABEL_INSTANCE_REVISION_HASH], "rev-2");
            assert_eq!(pd.labels()[names::LABEL_INSTANCE], *name);
            assert_eq!(pd.labels()[names::LABEL_GROUP], "pd");
            assert_eq!(pd.owner_references().len(), 1);
            assert_eq!(pd.owner_references()[0].uid, group.uid().unwrap());
        }
        // pd-a is in zone-a: the new ones fill zone-b and zone-c.
        let mut zones: Vec<String> = env.list::<PD>().await.iter().map(zone_of).collect();
        zones.sort();
        assert_eq!(zones, ["zone-a", "zone-b", "zone-c"]);

        // A second pass whose list still shows only pd-a: the expectations count the two
        // created, so nothing is created again.
        let mut s = stale(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "nothing to do");
        assert!(s.group.created.is_empty());
        assert_eq!(env.writes(), 2, "{:?}", env.write_log());
        assert_eq!(env.list::<PD>().await.len(), 3);
    }

    #[tokio::test]
    async fn a_large_scale_out_is_created_a_batch_per_pass() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 25)).await;
        let runner = Runner::new("t", [updater()]);
        let pass = |group: PDGroup| {
            let mut s = pd_group_pass(&env, group, None);
            s.group.instances_loaded = true;
            s.group.update_revision = Some("rev-1".into());
            s
        };
        let mut s = pass(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry, "{report}");
        assert_eq!(
            report.entry("updater").unwrap().message(),
            "created 10 of 25 missing instances; the rest in the next passes"
        );
        assert_eq!(env.writes(), 10, "{:?}", env.write_log());

        // The next passes (the list still stale: expectations count what was created).
        let mut s = pass(group.clone());
        assert_eq!(env.run(&runner, "k", &mut s).await.outcome(), OutcomeKind::Retry);
        let mut s = pass(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(s.group.created.len(), 5);
        assert_eq!(env.list::<PD>().await.len(), 25);
    }

    #[tokio::test]
    async fn no_instance_is_created_while_one_cannot_be_scheduled() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 5)).await;
        let mut stuck = sample_pd("pd-a", "pd");
        let mut status = tikv_operator_api::PDStatus::default();
        tikv_operator_api::condition::set_condition(
            &mut status.common.conditions,
            tikv_operator_api::condition::DesiredCondition::new(
                types::READY,
                false,
                reasons::UNSCHEDULABLE,
                "0/3 nodes are available: 3 Insufficient cpu.",
            ),
            crate::testing::t0(),
        );
        stuck.status = Some(status);
        let mut s = pd_group_pass(&env, group, None);
        s.group.instances = vec![stuck];
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-1".into());
        let report = env.run(&Runner::new("t", [updater()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert!(report.entry("updater").unwrap().message().starts_with("1 instances cannot be scheduled"), "{report}");
        assert_eq!(env.writes(), 0, "{:?}", env.write_log());
    }

    #[tokio::test]
    async fn the_updater_waits_without_a_revision_and_reports_a_scale_in() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 1)).await;
        let runner = Runner::new("t", [updater()]);
        let mut s = pd_group_pass(&env, group.clone(), None);
        s.group.instances_loaded = true;
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "no revision yet");

        let mut s = pd_group_pass(&env, group, None);
        s.group.instances = vec![sample_pd("pd-a", "pd"), sample_pd("pd-b", "pd")];
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-1".into());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "scale-in from 2 to 1 is not supported yet");
        assert_eq!(s.group.scale_in, Some((2, 1)));
        assert_eq!(env.write_log(), Vec::<String>::new());
    }
}
