//! Properties of the pure updater over random group states: every instance in any
//! state, topologies known and unknown, priorities, revisions, PD leaders, budgets.
//!
//! - Budget: the available instances a plan takes down (update, offline, delete) never
//!   bring the group above `maxUnavailable` unavailable (PD: above what its quorum
//!   tolerates), and none are taken down while it already is.
//! - An instance offline or being deleted is never updated; each instance gets at most
//!   one action, and only one its state allows.
//! - Scale-in never empties a topology holding one instance while another holds more.
//! - Applying the plans round after round, with instances becoming Ready and leaving
//!   stores reaching Tombstone in between, reaches the spec and then plans nothing.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::Config;
use tikv_operator_api::{Topology, WeightedTopology};

use super::*;
use crate::testing::zone;

const REVISION: &str = "r1";

/// `a`, `b`, `c` are the policy's; `x` is a zone the policy does not list.
fn topology_of(index: u8) -> Option<Topology> {
    match index {
        0 => Some(zone("a")),
        1 => Some(zone("b")),
        2 => Some(zone("c")),
        3 => Some(zone("x")),
        _ => None,
    }
}

#[derive(Clone, Debug)]
struct Case {
    desired: i32,
    instances: Vec<InstanceView>,
    expected: Vec<Expected>,
    topologies: Vec<WeightedTopology>,
    max_unavailable: i32,
    max_surge: i32,
    removal: Removal,
}

impl Case {
    fn view(&self) -> GroupView<'_> {
        GroupView {
            group: "g",
            desired: self.desired,
            revision: REVISION,
            instances: &self.instances,
            expected: &self.expected,
            topologies: &self.topologies,
            max_unavailable: self.max_unavailable,
            max_surge: self.max_surge,
            removal: self.removal,
            scale_in_blocked: None,
        }
    }
}

fn instance(pd: bool) -> impl Strategy<Value = InstanceView> {
    (
        (0u8..6, prop::bool::weighted(0.7), any::<bool>(), any::<bool>()),
        (prop::bool::weighted(0.1), prop::bool::weighted(if pd { 0.0 } else { 0.3 }), 0u8..10),
        (prop::option::weighted(0.3, 0u64..4), prop::option::of(0i64..100)),
    )
        .prop_map(move |((zone, updated, ready, running), (deleting, offline, offlined), (priority, chosen))| {
            InstanceView {
                name: String::new(),
                topology: topology_of(zone),
                revision: Some(if updated { REVISION } else { "r0" }.into()),
                ready,
                running: running || ready,
                deleting,
                offline,
                // Mostly after an offline; rarely left over once cancelled too late.
                offlined: !pd && ((offline && offlined < 4) || offlined == 0),
                priority,
                offline_chosen_at: chosen
                    .filter(|_| offline)
                    .map(|s| Timestamp::from_second(1_800_000_000 + s).unwrap()),
                leader: false,
                failover: false,
            }
        })
}

fn case() -> impl Strategy<Value = Case> {
    any::<bool>().prop_flat_map(|pd| {
        (
            (if pd { 1i32..7 } else { 0i32..8 }),
            prop::collection::vec(instance(pd), 0..9),
            prop::collection::vec((0u8..5, any::<bool>()), 0..2),
            prop::option::of(prop::collection::vec(1i32..3, 3)),
            (1i32..4, 0i32..3, 1usize..4),
            any::<prop::sample::Index>(),
        )
            .prop_map(
                move |(
                    desired,
                    mut instances,
                    expected,
                    weights,
                    (max_unavailable, max_surge, parallelism),
                    leader,
                )| {
                    for (i, instance) in instances.iter_mut().enumerate() {
                        instance.name = format!("g-{i}");
                    }
                    if pd && !instances.is_empty() {
                        let leader = leader.index(instances.len());
                        instances[leader].leader = true;
                    }
                    let expected = expected
                        .into_iter()
                        .enumerate()
                        .map(|(i, (zone, updated))| Expected {
                            name: format!("g-new{i}"),
                            topology: topology_of(zone),
                            revision: if updated { REVISION } else { "r0" }.into(),
                        })
                        .collect();
                    let topologies = weights
                        .map(|w| {
                            w.iter()
                                .enumerate()
                                .map(|(i, weight)| WeightedTopology {
                                    topology: topology_of(i as u8).unwrap(),
                                    weight: *weight,
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Case {
                        desired,
                        instances,
                        expected,
                        topologies,
                        max_unavailable,
                        max_surge,
                        removal: if pd { Removal::Member } else { Removal::Offline { parallelism } },
                    }
                },
            )
    })
}

fn counter() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("{n:06}")
    }
}

fn config() -> Config {
    Config { cases: 256, failure_persistence: None, ..Config::default() }
}

/// The known topology's counts of instances staying (not offline, not deleting, not
/// gone from PD; created and unlisted ones included).
fn staying_counts(case: &Case) -> BTreeMap<Topology, i64> {
    let mut counts: BTreeMap<Topology, i64> = case.topologies.iter().map(|t| (t.topology.clone(), 0)).collect();
    let staying =
        case.instances.iter().filter(|i| !i.deleting && !i.offline && !i.offlined).map(|i| &i.topology).chain(
            case.expected.iter().filter(|e| !case.instances.iter().any(|i| i.name == e.name)).map(|e| &e.topology),
        );
    for topology in staying.flatten() {
        if let Some(count) = counts.get_mut(topology) {
            *count += 1;
        }
    }
    counts
}

fn check_plan(case: &Case, plan: &Plan) -> Result<(), TestCaseError> {
    let by_name: BTreeMap<&str, &InstanceView> = case.instances.iter().map(|i| (i.name.as_str(), i)).collect();
    let mut acted = BTreeSet::new();
    let mut taken_down = 0;
    let mut counts = staying_counts(case);
    // The policy's topology of an instance, if it lists it.
    let known = |counts: &BTreeMap<Topology, i64>, topology: &Option<Topology>| {
        topology.as_ref().filter(|t| counts.contains_key(*t)).cloned()
    };
    for action in &plan.actions {
        prop_assert!(acted.insert(action.name().to_string()), "two actions on {}: {plan:?}", action.name());
        if let Action::Create { name, topology, .. } = action {
            prop_assert!(!by_name.contains_key(name.as_str()) && !case.expected.iter().any(|e| e.name == *name));
            if let Some(t) = known(&counts, topology) {
                *counts.get_mut(&t).unwrap() += 1;
            }
            continue;
        }
        let Some(instance) = by_name.get(action.name()) else {
            return Err(TestCaseError::fail(format!("{action:?} names no listed instance")));
        };
        prop_assert!(!instance.deleting, "{action:?} on an instance being deleted");
        match action {
            Action::Update { .. } => {
                prop_assert!(!instance.offline && !instance.offlined, "update of an offline instance: {action:?}");
                prop_assert!(instance.revision.as_deref() != Some(REVISION));
            }
            Action::SetOffline { .. } => {
                prop_assert!(!instance.offline && !instance.offlined);
                prop_assert!(matches!(case.removal, Removal::Offline { .. }), "PD members are not removed yet");
                if let Some(t) = known(&counts, &instance.topology) {
                    let others_more = counts.iter().any(|(other, c)| *other != t && *c > 1);
                    prop_assert!(
                        !(counts[&t] == 1 && others_more),
                        "{} empties {t:?} while another topology holds more: {counts:?}",
                        instance.name
                    );
                    *counts.get_mut(&t).unwrap() -= 1;
                }
            }
            Action::CancelOffline { .. } => {
                prop_assert!(instance.offline && !instance.offlined);
                if let Some(t) = known(&counts, &instance.topology) {
                    *counts.get_mut(&t).unwrap() += 1;
                }
            }
            Action::Delete { .. } => prop_assert!(instance.offlined),
            Action::RemoveMember { .. } => {
                prop_assert!(case.removal == Removal::Member, "only PD members are removed this way");
                prop_assert!(!case.instances.iter().any(|i| i.deleting), "one member leaves at a time");
                if let Some(t) = known(&counts, &instance.topology) {
                    *counts.get_mut(&t).unwrap() -= 1;
                }
            }
            Action::Create { .. } => unreachable!(),
        }
        if instance.available() && !matches!(action, Action::CancelOffline { .. }) {
            taken_down += 1;
        }
    }
    if taken_down > 0 {
        let unseen = case.expected.iter().filter(|e| !by_name.contains_key(e.name.as_str())).count();
        let unavailable = case.instances.iter().filter(|i| !i.available()).count() + unseen;
        let members = case.instances.len() + unseen;
        let budget = budget(case.max_unavailable, case.removal, members);
        prop_assert!(
            unavailable + taken_down <= budget,
            "{taken_down} taken down with {unavailable} unavailable, budget {budget}: {plan:?}"
        );
        if case.removal == Removal::Member && members >= 3 {
            let healthy = case.instances.iter().filter(|i| i.available()).count();
            prop_assert!(healthy - taken_down > members / 2, "PD quorum lost: {plan:?}");
        }
    }
    Ok(())
}

/// Carries a plan out as the executor and the instance controllers would, then lets a
/// moment pass: instances come up at their revision, leaving stores reach Tombstone,
/// deleted instances go.
fn apply(case: &mut Case, plan: &Plan, round: i64) {
    let at = Timestamp::from_second(1_900_000_000 + round).unwrap();
    for action in &plan.actions {
        let instance = case.instances.iter_mut().find(|i| i.name == action.name());
        match (action, instance) {
            (Action::Create { name, topology, revision, .. }, None) => {
                let mut created = InstanceView::healthy(name, topology.clone(), revision);
                (created.ready, created.running) = (false, false);
                case.instances.push(created);
            }
            (Action::SetOffline { .. }, Some(i)) => {
                i.offline = true;
                i.offline_chosen_at = Some(at);
            }
            (Action::CancelOffline { .. }, Some(i)) => {
                i.offline = false;
                i.offline_chosen_at = None;
            }
            (Action::Delete { .. } | Action::RemoveMember { .. }, Some(i)) => i.deleting = true,
            (Action::Update { revision, .. }, Some(i)) => {
                i.revision = Some(revision.clone());
                i.ready = false;
            }
            (action, instance) => panic!("{action:?} cannot apply to {instance:?}"),
        }
    }
    case.expected.clear();
    case.instances.retain(|i| !i.deleting);
    for instance in &mut case.instances {
        if instance.offline || instance.offlined {
            instance.offlined = true;
            instance.ready = false;
        } else {
            instance.ready = true;
            instance.running = true;
        }
    }
}

fn converged(case: &Case) -> bool {
    case.instances.len() == usize::try_from(case.desired).unwrap()
        && case.instances.iter().all(|i| i.available() && i.revision.as_deref() == Some(REVISION))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_plan_keeps_the_budget_the_states_and_the_spread(case in case()) {
        let plan = plan(&case.view(), &mut counter());
        check_plan(&case, &plan)?;
    }

    #[test]
    fn applying_the_plans_reaches_the_spec(mut case in case()) {
        let mut suffixes = counter();
        for round in 0..60 {
            let plan = plan(&case.view(), &mut suffixes);
            check_plan(&case, &plan)?;
            if plan.actions.is_empty() && converged(&case) {
                return Ok(());
            }
            // A PD removal waits for the members the case starts unhealthy; they heal.
            prop_assert!(plan.blocked.is_none() || round == 0, "{plan:?}");
            apply(&mut case, &plan, round);
        }
        let last = plan(&case.view(), &mut suffixes);
        prop_assert!(false, "not converged after 60 rounds: {case:?}, plan {last:?}");
    }
}
