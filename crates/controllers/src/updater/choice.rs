//! Which instance an action takes: the selection policies of the updater, pure.
//!
//! - Scale-in: never one whose going would empty a topology of the schedule policy
//!   that holds a single instance while another holds more; among the rest, not
//!   running first, then not ready, then outdated, then the lowest
//!   `core.tikv.org/priority`, then one in a topology the policy does not list, then
//!   one from the topology most above its weighted share. PD adds: never the leader
//!   while another member can go.
//! - Update: unavailable first (updating it takes nothing down), then (PD) not the
//!   leader, then the lowest priority.
//! - Cancelling an offline: the newest choice first (it has moved the least data); an
//!   offline the group did not choose (no `offline-chosen-at`) last.
//!
//! Ties go to the smallest name, so a plan is the same for the same state.

use std::cmp::Ordering;

use tikv_operator_api::{Topology, WeightedTopology};

use super::InstanceView;

/// An instance an action could take, as the plan sees it at that moment.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate<'a> {
    /// Where the caller keeps it.
    pub index: usize,
    pub view: &'a InstanceView,
    pub updated: bool,
    pub available: bool,
}

/// How the staying instances are spread over the policy's topologies.
pub(super) struct Spread<'a> {
    topologies: &'a [WeightedTopology],
    counts: Vec<u64>,
}

impl<'a> Spread<'a> {
    pub fn new<'t>(topologies: &'a [WeightedTopology], staying: impl Iterator<Item = &'t Option<Topology>>) -> Self {
        let mut spread = Spread { topologies, counts: vec![0; topologies.len()] };
        for topology in staying {
            if let Some(index) = spread.index(topology) {
                spread.counts[index] += 1;
            }
        }
        spread
    }

    /// The policy's entry for a topology; `None` when the policy does not list it.
    fn index(&self, topology: &Option<Topology>) -> Option<usize> {
        let topology = topology.as_ref()?;
        self.topologies.iter().position(|t| &t.topology == topology)
    }

    /// Whether taking one instance from `topology` would empty it while another
    /// topology holds more than one.
    pub fn protects(&self, topology: &Option<Topology>) -> bool {
        self.index(topology).is_some_and(|i| self.counts[i] == 1 && self.counts.iter().any(|&c| c > 1))
    }

    /// Unknown topologies first, then the one furthest above its weighted share
    /// (`count / weight` highest).
    fn cmp_for_removal(&self, a: &Option<Topology>, b: &Option<Topology>) -> Ordering {
        match (self.index(a), self.index(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => {
                let weight = |i: usize| u64::try_from(self.topologies[i].weight.max(1)).unwrap_or(1);
                // a first when count_a / weight_a > count_b / weight_b.
                (self.counts[b] * weight(a)).cmp(&(self.counts[a] * weight(b)))
            }
        }
    }
}

/// Lowest priority first; an instance without one after every annotated one.
fn priority_key(view: &InstanceView) -> (bool, u64) {
    (view.priority.is_none(), view.priority.unwrap_or(0))
}

/// The instance to take out next, if any may go. `spread` counts the staying instances.
pub(super) fn to_remove(candidates: &[Candidate<'_>], spread: &Spread<'_>, avoid_leader: bool) -> Option<usize> {
    let mut allowed: Vec<&Candidate<'_>> = candidates.iter().filter(|c| !spread.protects(&c.view.topology)).collect();
    if avoid_leader && allowed.iter().any(|c| !c.view.leader) {
        allowed.retain(|c| !c.view.leader);
    }
    allowed
        .into_iter()
        .min_by(|a, b| {
            let (x, y) = (a.view, b.view);
            (x.running, x.ready, a.updated, priority_key(x))
                .cmp(&(y.running, y.ready, b.updated, priority_key(y)))
                .then_with(|| spread.cmp_for_removal(&x.topology, &y.topology))
                .then_with(|| x.name.cmp(&y.name))
        })
        .map(|c| c.index)
}

/// The outdated instance to update next.
pub(super) fn to_update(candidates: &[Candidate<'_>], avoid_leader: bool) -> Option<usize> {
    candidates
        .iter()
        .min_by(|a, b| {
            let leader = |c: &Candidate<'_>| avoid_leader && c.view.leader;
            (a.available, leader(a), priority_key(a.view), &a.view.name).cmp(&(
                b.available,
                leader(b),
                priority_key(b.view),
                &b.view.name,
            ))
        })
        .map(|c| c.index)
}

/// The leaving instance whose offline to cancel next.
pub(super) fn to_cancel(candidates: &[Candidate<'_>]) -> Option<usize> {
    candidates
        .iter()
        .min_by(|a, b| {
            // Newest first; without a recorded choice last.
            let key =
                |c: &Candidate<'_>| (c.view.offline_chosen_at.is_none(), std::cmp::Reverse(c.view.offline_chosen_at));
            key(a).cmp(&key(b)).then_with(|| a.view.name.cmp(&b.view.name))
        })
        .map(|c| c.index)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::zone;
    use jiff::Timestamp;

    fn spread_policy(weights: &[(&str, i32)]) -> Vec<WeightedTopology> {
        weights.iter().map(|(z, w)| WeightedTopology { topology: zone(z), weight: *w }).collect()
    }

    fn healthy(name: &str, z: &str) -> InstanceView {
        InstanceView::healthy(name, Some(zone(z)), "r1")
    }

    fn candidates(views: &[InstanceView]) -> Vec<Candidate<'_>> {
        views
            .iter()
            .enumerate()
            .map(|(index, view)| Candidate { index, view, updated: true, available: view.ready })
            .collect()
    }

    /// The names `to_remove` picks one after another, each counted out before the next.
    fn removal_order(views: &[InstanceView], policy: &[WeightedTopology], avoid_leader: bool) -> Vec<String> {
        let mut left: Vec<InstanceView> = views.to_vec();
        let mut order = Vec::new();
        while !left.is_empty() {
            let spread = Spread::new(policy, left.iter().map(|v| &v.topology));
            let Some(index) = to_remove(&candidates(&left), &spread, avoid_leader) else { break };
            order.push(left.remove(index).name);
        }
        order
    }

    #[test]
    fn not_running_then_not_ready_then_priority_then_topology() {
        let policy = spread_policy(&[("a", 1), ("b", 1)]);
        let mut not_running = healthy("kv-5", "a");
        (not_running.running, not_running.ready) = (false, false);
        let mut not_ready = healthy("kv-4", "a");
        not_ready.ready = false;
        let mut low = healthy("kv-3", "b");
        low.priority = Some(0);
        let mut high = healthy("kv-2", "b");
        high.priority = Some(7);
        let views = [healthy("kv-1", "a"), high, low, not_ready, not_running, healthy("kv-6", "b")];
        let first_four: Vec<String> = removal_order(&views, &policy, false).into_iter().take(4).collect();
        assert_eq!(first_four, ["kv-5", "kv-4", "kv-3", "kv-2"]);
    }

    #[test]
    fn unknown_topology_first_then_the_most_crowded_one() {
        let policy = spread_policy(&[("a", 1), ("b", 1)]);
        let views = [
            healthy("kv-1", "a"),
            healthy("kv-2", "b"),
            healthy("kv-3", "b"),
            healthy("kv-4", "b"),
            healthy("kv-5", "gone-zone"),
            InstanceView::healthy("kv-6", None, "r1"),
        ];
        assert_eq!(removal_order(&views, &policy, false)[..4], ["kv-5", "kv-6", "kv-2", "kv-3"]);
    }

    #[test]
    fn weights_decide_which_topology_is_over_its_share() {
        // a holds 3 with weight 2 (1.5 each), b holds 2 with weight 1 (2.0): b gives first.
        let policy = spread_policy(&[("a", 2), ("b", 1)]);
        let views = [
            healthy("kv-1", "a"),
            healthy("kv-2", "a"),
            healthy("kv-3", "a"),
            healthy("kv-4", "b"),
            healthy("kv-5", "b"),
        ];
        assert_eq!(removal_order(&views, &policy, false)[0], "kv-4");
    }

    #[test]
    fn a_lone_instance_is_kept_while_another_topology_holds_more_even_if_it_is_broken() {
        let policy = spread_policy(&[("a", 1), ("b", 1), ("c", 1)]);
        let mut broken = healthy("kv-1", "a");
        (broken.running, broken.ready) = (false, false);
        let mut cheap = healthy("kv-4", "c");
        cheap.priority = Some(0);
        let views = [broken, healthy("kv-2", "b"), healthy("kv-3", "b"), cheap, healthy("kv-5", "c")];
        let order = removal_order(&views, &policy, false);
        // b and c give one each first (c's cheap one before b's), then a, b and c hold one each.
        assert_eq!(order[..2], ["kv-4", "kv-2"]);
        assert_eq!(order[2], "kv-1", "once no topology holds more, the broken one goes first");
    }

    #[test]
    fn the_pd_leader_goes_last() {
        let policy = spread_policy(&[("a", 1)]);
        let mut leader = healthy("pd-1", "a");
        leader.leader = true;
        leader.priority = Some(0);
        let views = [leader.clone(), healthy("pd-2", "a"), healthy("pd-3", "a")];
        assert_eq!(removal_order(&views, &policy, true), ["pd-2", "pd-3", "pd-1"]);
        assert_eq!(removal_order(&views, &policy, false)[0], "pd-1", "TiKV has no leader rule");
    }

    #[test]
    fn updates_take_the_unavailable_first_and_the_pd_leader_last() {
        let mut leader = healthy("pd-1", "a");
        leader.leader = true;
        let views = [leader, healthy("pd-2", "a"), healthy("pd-3", "a")];
        let mut cands = candidates(&views);
        assert_eq!(to_update(&cands, true), Some(1));
        cands[2].available = false;
        assert_eq!(to_update(&cands, true), Some(2));
        assert_eq!(to_update(&cands[..1], true), Some(0), "the leader when nothing else is left");
    }

    #[test]
    fn cancellation_takes_the_newest_choice_first_and_unchosen_offlines_last() {
        let at = |s: i64| Some(Timestamp::from_second(1_800_000_000 + s).unwrap());
        let mut old = healthy("kv-1", "a");
        old.offline_chosen_at = at(0);
        let mut new = healthy("kv-2", "a");
        new.offline_chosen_at = at(60);
        let users = healthy("kv-0", "a");
        let views = [old, users, new];
        let cands = candidates(&views);
        assert_eq!(to_cancel(&cands), Some(2));
        assert_eq!(to_cancel(&[cands[0], cands[1]]), Some(0));
        assert_eq!(to_cancel(&[cands[1]]), Some(1));
    }
}
