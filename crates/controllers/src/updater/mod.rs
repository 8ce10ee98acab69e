//! The group updater: a pure function from a group's state to the actions that bring
//! it toward its spec. Groups plan, instances execute.
//!
//! This first version creates missing instances: each gets a fresh name (never one in
//! use, recently created, or planned in the same pass), a topology chosen by the
//! schedule policy's weights, and the group's revision. A scale-in is reported, not
//! acted on; rolling updates and offline come next and add actions here.

mod expectations;

use std::collections::BTreeSet;

use tikv_operator_api::{Topology, WeightedTopology};

pub use expectations::Expectations;

/// One instance of the group as the updater sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceView {
    pub name: String,
    pub topology: Option<Topology>,
    pub revision: Option<String>,
    /// Has a deletionTimestamp: no longer counts toward the replicas.
    pub deleting: bool,
}

/// An instance created recently and not yet seen in a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub topology: Option<Topology>,
}

/// What the updater reads.
#[derive(Clone, Debug)]
pub struct GroupView<'a> {
    pub group: &'a str,
    pub desired: i32,
    /// The group's update revision.
    pub revision: &'a str,
    pub instances: &'a [InstanceView],
    pub expected: &'a [Expected],
    pub topologies: &'a [WeightedTopology],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Create { name: String, topology: Option<Topology>, revision: String },
}

/// The plan of one pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// `Some((current, desired))` when fewer instances are wanted than exist: not
    /// supported yet, so reported and left alone.
    pub scale_in: Option<(i32, i32)>,
}

/// Plans the group's next actions. `suffixes` yields candidate name suffixes (random in
/// production); candidates already taken are skipped.
pub fn plan(view: &GroupView<'_>, suffixes: &mut dyn FnMut() -> String) -> Plan {
    let live: Vec<&InstanceView> = view.instances.iter().filter(|i| !i.deleting).collect();
    let unseen: Vec<&Expected> =
        view.expected.iter().filter(|e| !view.instances.iter().any(|i| i.name == e.name)).collect();
    let current = i32::try_from(live.len() + unseen.len()).unwrap_or(i32::MAX);

    let mut plan = Plan::default();
    if current > view.desired {
        plan.scale_in = Some((current, view.desired));
        return plan;
    }

    let mut taken: BTreeSet<String> = view.instances.iter().map(|i| i.name.clone()).collect();
    taken.extend(view.expected.iter().map(|e| e.name.clone()));
    let mut placed: Vec<Option<Topology>> = live.iter().map(|i| i.topology.clone()).collect();
    placed.extend(unseen.iter().map(|e| e.topology.clone()));

    for _ in current..view.desired {
        let name = fresh_name(view.group, &taken, suffixes);
        taken.insert(name.clone());
        let topology = choose_topology(view.topologies, &placed);
        placed.push(topology.clone());
        plan.actions.push(Action::Create { name, topology, revision: view.revision.to_string() });
    }
    plan
}

fn fresh_name(group: &str, taken: &BTreeSet<String>, suffixes: &mut dyn FnMut() -> String) -> String {
    loop {
        let name = format!("{group}-{}", suffixes());
        if !taken.contains(&name) {
            return name;
        }
    }
}

/// The topology whose share is furthest below its weight: the lowest
/// `(count + 1) / weight`, earlier topologies first on ties. `None` without a policy.
pub fn choose_topology(topologies: &[WeightedTopology], placed: &[Option<Topology>]) -> Option<Topology> {
    let count = |t: &Topology| placed.iter().filter(|p| p.as_ref() == Some(t)).count() as u64;
    topologies
        .iter()
        .enumerate()
        .min_by(|(ia, a), (ib, b)| {
            let (wa, wb) = (a.weight.max(1) as u64, b.weight.max(1) as u64);
            ((count(&a.topology) + 1) * wb).cmp(&((count(&b.topology) + 1) * wa)).then(ia.cmp(ib))
        })
        .map(|(_, t)| t.topology.clone())
}

/// A random name suffix: `INSTANCE_SUFFIX_LEN` characters of `[a-z0-9]`.
pub fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..tikv_operator_api::names::INSTANCE_SUFFIX_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::zone;

    fn spread(weights: &[(&str, i32)]) -> Vec<WeightedTopology> {
        weights.iter().map(|(z, w)| WeightedTopology { topology: zone(z), weight: *w }).collect()
    }

    fn instance(name: &str, z: &str) -> InstanceView {
        InstanceView { name: name.into(), topology: Some(zone(z)), revision: Some("r1".into()), deleting: false }
    }

    fn counter() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("{n:06}")
        }
    }

    fn zones_of(plan: &Plan) -> Vec<String> {
        plan.actions
            .iter()
            .map(|Action::Create { topology, .. }| topology.as_ref().unwrap()["topology.kubernetes.io/zone"].clone())
            .collect()
    }

    #[test]
    fn creates_the_missing_instances_spread_and_stamped() {
        let topologies = spread(&[("a", 1), ("b", 1), ("c", 1)]);
        let view = GroupView {
            group: "kv",
            desired: 3,
            revision: "r1",
            instances: &[],
            expected: &[],
            topologies: &topologies,
        };
        let plan = plan(&view, &mut counter());
        assert_eq!(zones_of(&plan), ["a", "b", "c"]);
        let Action::Create { name, revision, .. } = &plan.actions[0];
        assert_eq!(name, "kv-000001");
        assert_eq!(revision, "r1");
        assert_eq!(plan.scale_in, None);
    }

    #[test]
    fn nothing_to_do_when_complete() {
        let topologies = spread(&[("a", 1)]);
        let instances = [instance("kv-1", "a")];
        let view = GroupView {
            group: "kv",
            desired: 1,
            revision: "r1",
            instances: &instances,
            expected: &[],
            topologies: &topologies,
        };
        assert_eq!(plan(&view, &mut counter()), Plan::default());
    }

    #[test]
    fn a_stale_list_with_expectations_makes_no_duplicate() {
        let topologies = spread(&[("a", 1), ("b", 1), ("c", 1)]);
        // The list does not show kv-000002 yet, but we created it a moment ago.
        let instances = [instance("kv-000001", "a")];
        let expected = [Expected { name: "kv-000002".into(), topology: Some(zone("b")) }];
        let view = GroupView {
            group: "kv",
            desired: 3,
            revision: "r1",
            instances: &instances,
            expected: &expected,
            topologies: &topologies,
        };
        let plan = plan(&view, &mut counter());
        assert_eq!(plan.actions.len(), 1);
        let Action::Create { name, .. } = &plan.actions[0];
        assert_eq!(name, "kv-000003", "names in use or expected are skipped");
        assert_eq!(zones_of(&plan), ["c"]);
    }

    #[test]
    fn deleting_instances_do_not_count_and_their_names_are_not_reused() {
        let topologies = spread(&[("a", 1)]);
        let mut gone = instance("kv-000001", "a");
        gone.deleting = true;
        let instances = [gone];
        let view = GroupView {
            group: "kv",
            desired: 1,
            revision: "r1",
            instances: &instances,
            expected: &[],
            topologies: &topologies,
        };
        let plan = plan(&view, &mut counter());
        let Action::Create { name, .. } = &plan.actions[0];
        assert_eq!(name, "kv-000002");
    }

    #[test]
    fn weights_decide_the_shares() {
        let topologies = spread(&[("a", 2), ("b", 1)]);
        let view = GroupView {
            group: "kv",
            desired: 6,
            revision: "r1",
            instances: &[],
            expected: &[],
            topologies: &topologies,
        };
        let zones = zones_of(&plan(&view, &mut counter()));
        assert_eq!(zones.iter().filter(|z| *z == "a").count(), 4);
        assert_eq!(zones.iter().filter(|z| *z == "b").count(), 2);
    }

    #[test]
    fn existing_placement_is_filled_up_first() {
        let topologies = spread(&[("a", 1), ("b", 1), ("c", 1)]);
        let instances = [instance("kv-x", "a"), instance("kv-y", "a"), instance("kv-z", "b")];
        let view = GroupView {
            group: "kv",
            desired: 5,
            revision: "r2",
            instances: &instances,
            expected: &[],
            topologies: &topologies,
        };
        assert_eq!(zones_of(&plan(&view, &mut counter())), ["c", "b"]);
    }

    #[test]
    fn no_policy_means_no_topology() {
        let view =
            GroupView { group: "kv", desired: 1, revision: "r1", instances: &[], expected: &[], topologies: &[] };
        let plan = plan(&view, &mut counter());
        assert!(matches!(&plan.actions[0], Action::Create { topology: None, .. }));
    }

    #[test]
    fn scale_in_is_reported_not_acted_on() {
        let topologies = spread(&[("a", 1)]);
        let instances = [instance("kv-1", "a"), instance("kv-2", "a"), instance("kv-3", "a")];
        let view = GroupView {
            group: "kv",
            desired: 2,
            revision: "r1",
            instances: &instances,
            expected: &[],
            topologies: &topologies,
        };
        let plan = plan(&view, &mut counter());
        assert!(plan.actions.is_empty());
        assert_eq!(plan.scale_in, Some((3, 2)));
    }

    #[test]
    fn random_suffixes_are_valid() {
        let suffix = random_suffix();
        assert_eq!(suffix.len(), 6);
        assert!(suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
