//! Scenarios of the pure updater: given a group's state, the exact plan.

use jiff::Timestamp;
use tikv_operator_api::WeightedTopology;
use tikv_operator_api::condition::reasons;

use super::*;
use crate::testing::zone;

fn spread(weights: &[(&str, i32)]) -> Vec<WeightedTopology> {
    weights.iter().map(|(z, w)| WeightedTopology { topology: zone(z), weight: *w }).collect()
}

fn abc() -> Vec<WeightedTopology> {
    spread(&[("a", 1), ("b", 1), ("c", 1)])
}

fn instance(name: &str, z: &str) -> InstanceView {
    InstanceView::healthy(name, Some(zone(z)), "r1")
}

fn counter() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("{n:06}")
    }
}

/// A TiKV group `kv` at revision r1, budgets at their defaults.
fn tikv<'a>(desired: i32, instances: &'a [InstanceView], topologies: &'a [WeightedTopology]) -> GroupView<'a> {
    GroupView {
        group: "kv",
        desired,
        revision: "r1",
        instances,
        expected: &[],
        topologies,
        max_unavailable: 1,
        max_surge: 0,
        removal: Removal::Offline { parallelism: 1 },
        scale_in_blocked: None,
    }
}

fn pd<'a>(desired: i32, instances: &'a [InstanceView], topologies: &'a [WeightedTopology]) -> GroupView<'a> {
    GroupView { group: "pd", removal: Removal::Member, ..tikv(desired, instances, topologies) }
}

fn zones_of(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { topology, .. } => Some(topology.as_ref().unwrap()["topology.kubernetes.io/zone"].clone()),
            _ => None,
        })
        .collect()
}

fn set_offline(name: &str) -> Action {
    Action::SetOffline { name: name.into() }
}

fn leaving(name: &str, z: &str, chosen_at: i64) -> InstanceView {
    let mut view = instance(name, z);
    view.offline = true;
    view.offline_chosen_at = Some(Timestamp::from_second(1_800_000_000 + chosen_at).unwrap());
    view
}

// ---- creation

#[test]
fn creates_the_missing_instances_spread_and_stamped() {
    let topologies = abc();
    let plan = plan(&tikv(3, &[], &topologies), &mut counter());
    assert_eq!(zones_of(&plan), ["a", "b", "c"]);
    assert_eq!(
        plan.actions[0],
        Action::Create { name: "kv-000001".into(), topology: Some(zone("a")), revision: "r1".into(), surge: false }
    );
    assert_eq!((plan.scale_in, plan.blocked, plan.waiting), (None, None, None));
}

#[test]
fn nothing_to_do_when_complete() {
    let topologies = spread(&[("a", 1)]);
    let instances = [instance("kv-1", "a")];
    assert_eq!(plan(&tikv(1, &instances, &topologies), &mut counter()), Plan::default());
}

#[test]
fn a_stale_list_with_expectations_makes_no_duplicate() {
    let topologies = abc();
    // The list does not show kv-000002 yet, but we created it a moment ago.
    let instances = [instance("kv-000001", "a")];
    let expected = [Expected { name: "kv-000002".into(), topology: Some(zone("b")), revision: "r1".into() }];
    let view = GroupView { expected: &expected, ..tikv(3, &instances, &topologies) };
    let plan = plan(&view, &mut counter());
    assert_eq!(plan.actions.len(), 1);
    assert_eq!(plan.actions[0].name(), "kv-000003", "names in use or expected are skipped");
    assert_eq!(zones_of(&plan), ["c"]);
}

#[test]
fn deleting_instances_do_not_count_and_their_names_are_not_reused() {
    let topologies = spread(&[("a", 1)]);
    let mut gone = instance("kv-000001", "a");
    gone.deleting = true;
    let instances = [gone];
    let plan = plan(&tikv(1, &instances, &topologies), &mut counter());
    assert_eq!(plan.actions.iter().map(Action::name).collect::<Vec<_>>(), ["kv-000002"]);
}

#[test]
fn weights_decide_the_shares() {
    let topologies = spread(&[("a", 2), ("b", 1)]);
    let zones = zones_of(&plan(&tikv(6, &[], &topologies), &mut counter()));
    assert_eq!(zones.iter().filter(|z| *z == "a").count(), 4);
    assert_eq!(zones.iter().filter(|z| *z == "b").count(), 2);
}

#[test]
fn existing_placement_is_filled_up_first() {
    let topologies = abc();
    let instances = [instance("kv-x", "a"), instance("kv-y", "a"), instance("kv-z", "b")];
    assert_eq!(zones_of(&plan(&tikv(5, &instances, &topologies), &mut counter())), ["c", "b"]);
}

#[test]
fn no_policy_means_no_topology() {
    let plan = plan(&tikv(1, &[], &[]), &mut counter());
    assert!(matches!(&plan.actions[0], Action::Create { topology: None, .. }));
}

// ---- TiKV scale-in

#[test]
fn a_tikv_scale_in_sets_one_store_offline_from_the_most_crowded_topology() {
    let topologies = abc();
    let instances = [instance("kv-1", "a"), instance("kv-2", "b"), instance("kv-3", "c"), instance("kv-4", "a")];
    let plan = plan(&tikv(3, &instances, &topologies), &mut counter());
    assert_eq!(plan.actions, [set_offline("kv-1")]);
    assert_eq!(plan.scale_in, Some(ScaleIn { from: 4, to: 3, leaving: vec!["kv-1".into()] }));
    assert_eq!(plan.scale_in.unwrap().message(), "scaling in from 4 to 3: 1 of 1 leaving (kv-1)");
}

#[test]
fn a_leaving_store_is_waited_for_then_its_instance_deleted_once_offlined() {
    let topologies = abc();
    let mut instances =
        vec![leaving("kv-1", "a", 0), instance("kv-2", "b"), instance("kv-3", "c"), instance("kv-4", "a")];
    let waiting = plan(&tikv(3, &instances, &topologies), &mut counter());
    assert_eq!(waiting.actions, []);
    assert_eq!(waiting.scale_in.unwrap().message(), "scaling in from 4 to 3: 1 of 1 leaving (kv-1)");

    instances[0].offlined = true;
    instances[0].ready = false;
    let done = plan(&tikv(3, &instances, &topologies), &mut counter());
    assert_eq!(done.actions, [Action::Delete { name: "kv-1".into() }]);
    assert_eq!(done.scale_in, None);
}

#[test]
fn scale_in_parallelism_and_max_unavailable_both_bound_how_many_leave() {
    let topologies = spread(&[("a", 1)]);
    let instances: Vec<InstanceView> = (1..=6).map(|i| instance(&format!("kv-{i}"), "a")).collect();
    let both = |parallelism, max_unavailable| {
        let view = GroupView {
            removal: Removal::Offline { parallelism },
            max_unavailable,
            ..tikv(2, &instances, &topologies)
        };
        plan(&view, &mut counter())
    };
    assert_eq!(both(3, 3).actions, [set_offline("kv-1"), set_offline("kv-2"), set_offline("kv-3")]);
    let by_parallelism = both(2, 3);
    assert_eq!(by_parallelism.actions.len(), 2);
    assert_eq!(by_parallelism.waiting.as_deref(), Some("2 instances leaving; scaleInParallelism 2 allows no more"));
    let by_budget = both(3, 1);
    assert_eq!(by_budget.actions, [set_offline("kv-1")]);
    assert_eq!(
        by_budget.waiting.as_deref(),
        Some("kv-2 would leave, but 1 instances are unavailable and 1 may be at once (maxUnavailable)")
    );
}

#[test]
fn a_broken_store_leaves_first_and_taking_it_needs_no_budget() {
    let topologies = spread(&[("a", 1)]);
    let mut down = instance("kv-3", "a");
    (down.ready, down.running) = (false, false);
    let mut slow = instance("kv-2", "a");
    slow.ready = false;
    let instances = [instance("kv-1", "a"), slow, down];
    let view = GroupView { removal: Removal::Offline { parallelism: 2 }, ..tikv(1, &instances, &topologies) };
    // Two unavailable already (budget 1): both go, as neither was available.
    assert_eq!(plan(&view, &mut counter()).actions, [set_offline("kv-3"), set_offline("kv-2")]);
}

#[test]
fn the_pre_check_blocks_new_offlines_but_not_cancellation_or_cleanup() {
    let topologies = abc();
    let blocked = Blocked { reason: reasons::NOT_ENOUGH_STORES, message: "3 stores would remain".into() };
    let mut gone = leaving("kv-9", "a", 0);
    gone.offlined = true;
    let instances = [instance("kv-1", "a"), instance("kv-2", "b"), instance("kv-3", "c"), instance("kv-4", "a"), gone];
    let view = GroupView { scale_in_blocked: Some(blocked.clone()), ..tikv(3, &instances, &topologies) };
    let plan = plan(&view, &mut counter());
    assert_eq!(plan.actions, [Action::Delete { name: "kv-9".into() }]);
    assert_eq!(plan.blocked, Some(blocked.clone()));

    // Nothing to remove: nothing blocked.
    let view = GroupView { scale_in_blocked: Some(blocked), ..tikv(4, &instances, &topologies) };
    assert_eq!(super::plan(&view, &mut counter()).blocked, None);
}

// ---- cancellation

#[test]
fn raising_replicas_cancels_the_newest_offlines_before_creating() {
    let topologies = abc();
    let instances = [
        instance("kv-1", "a"),
        instance("kv-2", "b"),
        instance("kv-3", "c"),
        leaving("kv-4", "a", 0),
        leaving("kv-5", "b", 60),
    ];
    let cancel = |name: &str| Action::CancelOffline { name: name.into() };
    assert_eq!(plan(&tikv(4, &instances, &topologies), &mut counter()).actions, [cancel("kv-5")]);
    assert_eq!(plan(&tikv(5, &instances, &topologies), &mut counter()).actions, [cancel("kv-5"), cancel("kv-4")]);
    let six = plan(&tikv(6, &instances, &topologies), &mut counter());
    assert_eq!(six.actions[..2], [cancel("kv-5"), cancel("kv-4")]);
    assert!(matches!(&six.actions[2], Action::Create { surge: false, .. }), "{six:?}");
    assert_eq!(six.actions.len(), 3);
}

#[test]
fn an_offline_the_group_did_not_choose_is_cancelled_when_its_store_is_wanted() {
    let topologies = abc();
    let mut users = instance("kv-3", "c");
    users.offline = true;
    let instances = [instance("kv-1", "a"), instance("kv-2", "b"), users];
    assert_eq!(
        plan(&tikv(3, &instances, &topologies), &mut counter()).actions,
        [Action::CancelOffline { name: "kv-3".into() }]
    );
}

// ---- updates

fn outdated(name: &str, z: &str) -> InstanceView {
    InstanceView::healthy(name, Some(zone(z)), "r0")
}

#[test]
fn updates_go_one_at_a_time_unavailable_first() {
    let topologies = abc();
    let mut instances = [outdated("kv-1", "a"), outdated("kv-2", "b"), outdated("kv-3", "c")];
    let update = |name: &str| Action::Update { name: name.into(), revision: "r1".into() };
    let first = plan(&tikv(3, &instances, &topologies), &mut counter());
    assert_eq!(first.actions, [update("kv-1")]);
    assert_eq!(
        first.waiting.as_deref(),
        Some("kv-2 would be updated, but 1 instances are unavailable and 1 may be at once (maxUnavailable)")
    );

    instances[2].ready = false;
    assert_eq!(plan(&tikv(3, &instances, &topologies), &mut counter()).actions, [update("kv-3")]);

    let wider = GroupView { max_unavailable: 2, ..tikv(3, &instances, &topologies) };
    assert_eq!(plan(&wider, &mut counter()).actions, [update("kv-3"), update("kv-1")]);
}

#[test]
fn an_instance_taken_offline_is_never_updated() {
    let topologies = abc();
    let mut going = outdated("kv-3", "c");
    going.offline = true;
    let instances = [instance("kv-1", "a"), instance("kv-2", "b"), going];
    let plan = plan(&GroupView { max_unavailable: 3, ..tikv(2, &instances, &topologies) }, &mut counter());
    assert_eq!(plan.actions, []);
}

#[test]
fn a_surge_creates_at_the_new_revision_first() {
    let topologies = abc();
    let instances = [outdated("kv-1", "a"), outdated("kv-2", "b"), outdated("kv-3", "c")];
    let view = GroupView { max_surge: 1, ..tikv(3, &instances, &topologies) };
    let plan = plan(&view, &mut counter());
    assert!(matches!(&plan.actions[..], [Action::Create { surge: true, .. }]), "{plan:?}");
    assert!(plan.waiting.unwrap().starts_with("kv-1 would be updated"), "the new one is not ready yet");
}

#[test]
fn after_a_surge_the_surplus_outdated_store_leaves() {
    let topologies = abc();
    let instances = [instance("kv-1", "a"), instance("kv-2", "b"), instance("kv-3", "c"), outdated("kv-0", "a")];
    let view = GroupView { max_surge: 1, ..tikv(3, &instances, &topologies) };
    assert_eq!(plan(&view, &mut counter()).actions, [set_offline("kv-0")]);
}

// ---- PD

#[test]
fn pd_budgets_follow_the_quorum() {
    assert_eq!(budget(1, Removal::Member, 3), 1);
    assert_eq!(budget(3, Removal::Member, 3), 1, "3 members tolerate 1 failure");
    assert_eq!(budget(3, Removal::Member, 5), 2);
    assert_eq!(budget(3, Removal::Member, 1), 1, "a lone member can still be changed");
    assert_eq!(budget(3, Removal::Offline { parallelism: 1 }, 3), 3);
    assert_eq!(budget(0, Removal::Offline { parallelism: 1 }, 3), 1);
}

#[test]
fn a_pd_scale_in_removes_one_member_at_a_time_never_the_leader() {
    let topologies = spread(&[("a", 1)]);
    let mut leader = instance("pd-1", "a");
    leader.leader = true;
    let mut instances = vec![leader, instance("pd-2", "a"), instance("pd-3", "a"), instance("pd-4", "a")];
    let plan_of = |instances: &[InstanceView]| plan(&pd(3, instances, &topologies), &mut counter());
    let first = plan_of(&instances);
    assert_eq!(first.actions, [Action::RemoveMember { name: "pd-2".into() }]);
    assert_eq!(first.blocked, None);
    assert_eq!(first.scale_in, Some(ScaleIn { from: 4, to: 3, leaving: vec!["pd-2".into()] }));

    instances[0].priority = Some(0);
    assert_eq!(plan_of(&instances).actions, [Action::RemoveMember { name: "pd-2".into() }], "the leader stays");
    // Only the leader is left to choose from: it goes (its controller hands leadership over).
    let alone = [instances[0].clone(), instance("pd-9", "a")];
    assert_eq!(
        plan(&pd(1, &alone, &topologies), &mut counter()).actions,
        [Action::RemoveMember { name: "pd-9".into() }]
    );
    let mut lead_only = instances[0].clone();
    lead_only.name = "pd-0".into();
    let pair = [lead_only, instances[0].clone()];
    assert_eq!(
        plan(&pd(1, &pair, &topologies), &mut counter()).actions,
        [Action::RemoveMember { name: "pd-0".into() }],
        "both lead (a stale view): the smallest name"
    );
}

#[test]
fn a_pd_member_goes_only_while_every_other_one_is_healthy_and_one_at_a_time() {
    let topologies = spread(&[("a", 1)]);
    let mut leader = instance("pd-1", "a");
    leader.leader = true;
    leader.ready = false;
    let instances = [leader, instance("pd-2", "a"), instance("pd-3", "a"), instance("pd-4", "a")];
    let plan1 = plan(&pd(3, &instances, &topologies), &mut counter());
    // The unready member goes first: it is the one to choose when it is not the leader.
    let blocked = plan1.blocked.unwrap();
    assert_eq!(blocked.reason, reasons::MEMBER_REMOVAL_BLOCKED);
    assert_eq!(
        blocked.message,
        "pd-2 would leave PD next, but every other member must be healthy first: pd-1 not ready"
    );
    assert_eq!(plan1.actions, []);

    let mut instances = instances.to_vec();
    instances[0].ready = true;
    instances[3].deleting = true;
    instances.push(instance("pd-5", "a"));
    let plan2 = plan(&pd(3, &instances, &topologies), &mut counter());
    assert_eq!(plan2.actions, []);
    assert_eq!(plan2.waiting.as_deref(), Some("pd-4 is still leaving PD; one member leaves at a time"));
}

#[test]
fn pd_ignores_max_surge_and_never_updates_the_leader_while_others_wait() {
    let topologies = abc();
    let mut leader = outdated("pd-1", "a");
    leader.leader = true;
    let instances = [leader, outdated("pd-2", "b"), outdated("pd-3", "c")];
    let view = GroupView { max_surge: 2, max_unavailable: 3, ..pd(3, &instances, &topologies) };
    assert_eq!(plan(&view, &mut counter()).actions, [Action::Update { name: "pd-2".into(), revision: "r1".into() }]);
}

#[test]
fn random_suffixes_are_valid() {
    let suffix = random_suffix();
    assert_eq!(suffix.len(), 6);
    assert!(suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
}

// ---- failover

fn failing_over(name: &str, z: &str) -> InstanceView {
    let mut view = instance(name, z);
    (view.ready, view.running, view.failover) = (false, false, true);
    view
}

#[test]
fn a_failed_over_store_gets_a_replacement_in_its_topology_and_is_not_cancelled() {
    let topologies = abc();
    let instances = [instance("kv-a", "a"), instance("kv-b", "b"), failing_over("kv-c", "c")];
    let plan = plan(&tikv(3, &instances, &topologies), &mut counter());
    assert_eq!(plan.actions.len(), 1, "{plan:?}");
    assert!(matches!(&plan.actions[0], Action::Create { name, surge: false, .. } if name == "kv-000001"));
    assert_eq!(zones_of(&plan), ["c"], "the replacement takes the dead store's place");
    assert_eq!(plan.scale_in, Some(ScaleIn { from: 4, to: 3, leaving: vec!["kv-c".into()] }));
}

#[test]
fn a_failed_over_store_goes_offline_only_once_its_replacement_is_available() {
    let topologies = abc();
    let mut replacement = instance("kv-d", "c");
    replacement.ready = false;
    let instances = [instance("kv-a", "a"), instance("kv-b", "b"), failing_over("kv-c", "c"), replacement.clone()];
    let first = plan(&tikv(3, &instances, &topologies), &mut counter());
    assert!(first.actions.is_empty(), "the replacement does not serve yet: {first:?}");

    replacement.ready = true;
    let instances = [instance("kv-a", "a"), instance("kv-b", "b"), failing_over("kv-c", "c"), replacement];
    let plan = plan(&tikv(3, &instances, &topologies), &mut counter());
    assert_eq!(plan.actions, [set_offline("kv-c")]);
}

#[test]
fn a_failed_over_store_already_offline_is_deleted_once_it_left() {
    let topologies = abc();
    let mut gone = failing_over("kv-c", "c");
    gone.offline = true;
    let instances = [instance("kv-a", "a"), instance("kv-b", "b"), gone.clone(), instance("kv-d", "c")];
    assert!(plan(&tikv(3, &instances, &topologies), &mut counter()).actions.is_empty(), "offline already");
    gone.offlined = true;
    let instances = [instance("kv-a", "a"), instance("kv-b", "b"), gone, instance("kv-d", "c")];
    let plan = plan(&tikv(3, &instances, &topologies), &mut counter());
    assert_eq!(plan.actions, [Action::Delete { name: "kv-c".into() }]);
}
