//! One scheduling round: raft re-elections on stopped stores, the replica checker,
//! evict-leader, balance-leader and balance-region, all under PD's limits; and the
//! completion of the operators they start.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

use super::limit::step_cost;
use super::region::{Peer, Region};
use super::{BALANCE_LEADER, BALANCE_REGION, Cluster, OpKind, OpOrigin, Operator, StoreStats, random_between};

impl Cluster {
    pub(super) fn schedule_round(&mut self) -> bool {
        let mut acted = self.elect_region_leaders();
        acted |= self.check_replicas();
        acted |= self.evict_leaders();
        if self.schedulers.contains(BALANCE_LEADER) {
            acted |= self.balance_leaders();
        }
        if self.schedulers.contains(BALANCE_REGION) {
            acted |= self.balance_regions();
        }
        acted
    }

    fn store_running(&self, id: u64) -> bool {
        self.stores.get(&id).is_some_and(|s| s.running)
    }

    fn leader_running(&self, region: &Region) -> bool {
        region.leader.is_some_and(|s| self.store_running(s))
    }

    /// Raft: a region whose leader's TiKV stopped elects a running voter after the
    /// election timeout, if a majority of its voters run.
    fn elect_region_leaders(&mut self) -> bool {
        let timeout = self.knobs.raft_election_timeout;
        let now = self.now;
        let mut changes = Vec::new();
        for region in self.regions.values() {
            let leader_gone = match region.leader.and_then(|s| self.stores.get(&s)) {
                None => true,
                Some(s) => !s.running && s.stopped_at.is_some_and(|t| now.saturating_duration_since(t) >= timeout),
            };
            if !leader_gone {
                continue;
            }
            let voters: Vec<u64> = region.voters().map(|p| p.store_id).collect();
            let alive: Vec<u64> = voters.iter().copied().filter(|s| self.store_running(*s)).collect();
            if alive.is_empty() || alive.len() * 2 <= voters.len() {
                continue;
            }
            let alive = self.most_up_to_date(region, alive);
            let preferred: Vec<u64> = alive.iter().copied().filter(|s| !self.is_evicted(*s)).collect();
            let pool = if preferred.is_empty() { alive } else { preferred };
            changes.push((region.id, pool));
        }
        let acted = !changes.is_empty();
        for (id, pool) in changes {
            let pick = pool[self.rng.random_range(0..pool.len())];
            if let Some(region) = self.regions.get_mut(&id) {
                region.leader = Some(pick);
            }
            self.catch_up_region(id);
        }
        acted
    }

    /// Region counts as they will be once the operators in flight finish.
    fn planned_region_counts(&self) -> BTreeMap<u64, i64> {
        let mut counts: BTreeMap<u64, i64> =
            self.store_stats().into_iter().map(|(id, s)| (id, s.region_count as i64)).collect();
        for op in self.ops.values() {
            match op.kind {
                OpKind::AddPeer { replace: Some(store), .. } | OpKind::RemovePeer { store } => {
                    *counts.entry(store).or_default() -= 1;
                }
                _ => {}
            }
        }
        counts
    }

    fn planned_leader_counts(&self) -> BTreeMap<u64, i64> {
        let mut counts: BTreeMap<u64, i64> =
            self.store_stats().into_iter().map(|(id, s)| (id, s.leader_count as i64)).collect();
        for op in self.ops.values() {
            if let OpKind::TransferLeader { from, to } = op.kind {
                *counts.entry(from).or_default() -= 1;
                *counts.entry(to).or_default() += 1;
            }
        }
        counts
    }

    fn used_ratio(&self, store: u64, region_size_mib: u64) -> f64 {
        let capacity = self.stores.get(&store).map(|s| s.capacity).unwrap_or(1).max(1);
        (region_size_mib << 20) as f64 / capacity as f64
    }

    /// How badly a replica on `candidate` would share a location with `others`:
    /// the longest run of equal location labels, from the top level down.
    fn isolation_clash(&self, candidate: u64, others: &[u64]) -> usize {
        let labels = &self.replication.location_labels;
        let Some(c) = self.stores.get(&candidate) else { return usize::MAX };
        others
            .iter()
            .filter_map(|o| self.stores.get(o))
            .map(|o| labels.iter().take_while(|key| c.label(key).is_some() && c.label(key) == o.label(key)).count())
            .max()
            .unwrap_or(0)
    }

    /// The replica checker's target: accepts replicas, has room and an add-peer token,
    /// does not hold the region; best isolated, then emptiest. `sizes` are the current
    /// [`store_stats`](Cluster::store_stats).
    fn pick_target(
        &mut self,
        region: &Region,
        replacing: Option<u64>,
        counts: &BTreeMap<u64, i64>,
        sizes: &BTreeMap<u64, StoreStats>,
    ) -> Option<u64> {
        let now = self.now;
        let cost = step_cost(region.size_mib);
        let others: Vec<u64> = region.peers.iter().map(|p| p.store_id).filter(|s| Some(*s) != replacing).collect();
        let mut candidates: Vec<(usize, i64, u64)> = Vec::new();
        let ids: Vec<u64> = self.stores.keys().copied().collect();
        for id in ids {
            if region.has_peer_on(id) {
                continue;
            }
            let size = sizes.get(&id).map(|s| s.region_size).unwrap_or(0) + region.size_mib;
            if self.used_ratio(id, size) >= self.knobs.low_space_ratio {
                continue;
            }
            let knobs = self.knobs.clone();
            let Some(store) = self.stores.get_mut(&id) else { continue };
            if !store.accepts_replicas(now, &knobs) {
                continue;
            }
            if !store.add_peer.available(now, cost) {
                self.round_blocked = true;
                continue;
            }
            candidates.push((self.isolation_clash(id, &others), counts.get(&id).copied().unwrap_or(0), id));
        }
        candidates.sort();
        candidates.first().map(|c| c.2)
    }

    fn source_can_give(&mut self, store: u64, cost: f64) -> bool {
        let now = self.now;
        self.stores.get_mut(&store).is_none_or(|s| s.remove_peer.available(now, cost))
    }

    /// A voter that needs replacing: on a Removing, Down, destroyed or unknown store.
    fn unhealthy_voter(&self, region: &Region) -> Option<u64> {
        region.voters().map(|p| p.store_id).find(|s| match self.stores.get(s) {
            None => true,
            Some(store) => {
                store.is_removing()
                    || store.is_removed()
                    || store.physically_destroyed
                    || store.is_down(self.now, &self.knobs)
            }
        })
    }

    fn check_replicas(&mut self) -> bool {
        let limit = self.knobs.replica_schedule_limit;
        let mut in_flight = self.ops.values().filter(|op| op.origin == OpOrigin::Replica).count();
        let mut acted = false;
        let mut counts = self.planned_region_counts();
        let mut sizes = self.store_stats();
        let ids: Vec<u64> = self.regions.keys().copied().collect();
        for id in ids {
            if in_flight >= limit {
                break;
            }
            if self.ops.contains_key(&id) {
                continue;
            }
            let Some(region) = self.regions.get(&id).cloned() else { continue };
            if !self.leader_running(&region) || !self.has_running_quorum(&region) {
                continue;
            }
            let voters = region.voter_count();
            let max = self.replication.max_replicas;
            let unhealthy = self.unhealthy_voter(&region);
            let started = if voters < max {
                match self.pick_target(&region, None, &counts, &sizes) {
                    Some(target) => self.start_add_peer(&region, target, None, OpOrigin::Replica),
                    None => false,
                }
            } else if voters > max {
                let victim = unhealthy.or_else(|| {
                    region
                        .voters()
                        .map(|p| p.store_id)
                        .filter(|s| region.leader != Some(*s))
                        .max_by_key(|s| (counts.get(s).copied().unwrap_or(0), *s))
                });
                match victim {
                    Some(store) => self.start_remove_peer(&region, store),
                    None => false,
                }
            } else if let Some((worse, target)) =
                unhealthy.is_none().then(|| self.better_location(&region, &counts, &sizes)).flatten()
            {
                let cost = step_cost(region.size_mib);
                if self.source_can_give(worse, cost) {
                    self.start_add_peer(&region, target, Some(worse), OpOrigin::Replica)
                } else {
                    self.round_blocked = true;
                    false
                }
            } else if let Some(bad) = unhealthy {
                let cost = step_cost(region.size_mib);
                match self.pick_target(&region, Some(bad), &counts, &sizes) {
                    Some(target) if self.source_can_give(bad, cost) => {
                        self.start_add_peer(&region, target, Some(bad), OpOrigin::Replica)
                    }
                    Some(_) => {
                        self.round_blocked = true;
                        false
                    }
                    None => false,
                }
            } else {
                false
            };
            if started {
                in_flight += 1;
                acted = true;
                counts = self.planned_region_counts();
                sizes = self.store_stats();
            }
        }
        acted
    }

    /// Location replacement: a voter sharing location labels with another replica, and
    /// a store that would share fewer.
    fn better_location(
        &mut self,
        region: &Region,
        counts: &BTreeMap<u64, i64>,
        sizes: &BTreeMap<u64, StoreStats>,
    ) -> Option<(u64, u64)> {
        if self.replication.location_labels.is_empty() {
            return None;
        }
        let voters: Vec<u64> = region.voters().map(|p| p.store_id).collect();
        let mut worst: Option<(usize, u64)> = None;
        for v in &voters {
            let others: Vec<u64> = voters.iter().copied().filter(|o| o != v).collect();
            let clash = self.isolation_clash(*v, &others);
            if clash > 0
                && worst.is_none_or(|(c, s)| (clash, region.leader != Some(*v)) > (c, region.leader != Some(s)))
            {
                worst = Some((clash, *v));
            }
        }
        let (clash, victim) = worst?;
        let target = self.pick_target(region, Some(victim), counts, sizes)?;
        let others: Vec<u64> = voters.iter().copied().filter(|o| *o != victim).collect();
        (self.isolation_clash(target, &others) < clash).then_some((victim, target))
    }

    fn start_add_peer(&mut self, region: &Region, target: u64, replace: Option<u64>, origin: OpOrigin) -> bool {
        let now = self.now;
        let cost = step_cost(region.size_mib);
        let peer_id = self.alloc_id();
        if let Some(store) = self.stores.get_mut(&target) {
            store.add_peer.take(now, cost);
        }
        if let Some(source) = replace
            && let Some(store) = self.stores.get_mut(&source)
        {
            store.remove_peer.take(now, cost);
        }
        let Some(r) = self.regions.get_mut(&region.id) else { return false };
        r.peers.push(Peer { id: peer_id, store_id: target, learner: true });
        r.conf_ver += 1;
        let snapshot = if self.knobs.snapshot_mib_per_sec > 0.0 {
            Duration::from_secs_f64(region.size_mib as f64 / self.knobs.snapshot_mib_per_sec)
        } else {
            Duration::ZERO
        };
        let finish_at = now + self.knobs.region_move_base + snapshot;
        self.send_snapshot(region.id, target);
        self.ops.insert(
            region.id,
            Operator { region: region.id, kind: OpKind::AddPeer { target, replace }, origin, finish_at },
        );
        true
    }

    fn start_remove_peer(&mut self, region: &Region, store: u64) -> bool {
        let finish_at = self.now + self.knobs.leader_transfer_min;
        self.ops.insert(
            region.id,
            Operator { region: region.id, kind: OpKind::RemovePeer { store }, origin: OpOrigin::Replica, finish_at },
        );
        true
    }

    fn start_transfer(&mut self, region: u64, from: u64, to: u64, origin: OpOrigin) {
        let delay = random_between(&mut self.rng, self.knobs.leader_transfer_min, self.knobs.leader_transfer_max);
        let finish_at = self.now + delay;
        self.ops.insert(region, Operator { region, kind: OpKind::TransferLeader { from, to }, origin, finish_at });
    }

    fn leader_ops_in_flight(&self) -> usize {
        self.ops.values().filter(|op| matches!(op.kind, OpKind::TransferLeader { .. })).count()
    }

    /// evict-leader: while fewer than `leader-schedule-limit` leader operators run, move
    /// up to `batch` leaders off each evicted store, each to a random follower that may lead.
    fn evict_leaders(&mut self) -> bool {
        let Some(evict) = self.evict_leader.as_ref() else { return false };
        if self.leader_ops_in_flight() >= self.knobs.leader_schedule_limit {
            return false;
        }
        let batch = evict.batch;
        let evicted: Vec<u64> = evict.stores.iter().copied().collect();
        let mut acted = false;
        for store in evicted {
            if !self.store_running(store) {
                continue;
            }
            let mut led: Vec<u64> = self
                .regions
                .values()
                .filter(|r| r.leader == Some(store) && !self.ops.contains_key(&r.id))
                .map(|r| r.id)
                .collect();
            led.shuffle(&mut self.rng);
            let mut made = 0;
            for id in led {
                if made >= batch {
                    break;
                }
                let Some(region) = self.regions.get(&id) else { continue };
                let down: Vec<u64> = self.down_peers(region).iter().map(|(p, _)| p.store_id).collect();
                let targets: Vec<u64> = region
                    .voters()
                    .map(|p| p.store_id)
                    .filter(|s| *s != store && !down.contains(s) && self.can_lead(*s))
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                let to = targets[self.rng.random_range(0..targets.len())];
                self.start_transfer(id, store, to, OpOrigin::EvictLeader);
                made += 1;
                acted = true;
            }
        }
        acted
    }

    /// balance-leader: from the store with the most leaders to a follower store with
    /// fewer, when they differ by more than one.
    fn balance_leaders(&mut self) -> bool {
        let mut acted = false;
        while self.leader_ops_in_flight() < self.knobs.leader_schedule_limit {
            let counts = self.planned_leader_counts();
            let mut sources: Vec<(i64, u64)> = counts
                .iter()
                .filter(|(id, n)| **n > 0 && self.store_running(**id) && !self.is_evicted(**id))
                .map(|(id, n)| (*n, *id))
                .collect();
            sources.sort_by(|a, b| b.cmp(a));
            let mut chosen = None;
            'sources: for (source_count, source) in sources {
                let mut led: Vec<&Region> = self
                    .regions
                    .values()
                    .filter(|r| r.leader == Some(source) && !self.ops.contains_key(&r.id))
                    .collect();
                led.sort_by_key(|r| r.id);
                for region in led {
                    let best = region
                        .voters()
                        .map(|p| p.store_id)
                        .filter(|s| *s != source && self.can_lead(*s) && self.store_running(*s))
                        .map(|s| (counts.get(&s).copied().unwrap_or(0), s))
                        .min();
                    if let Some((count, target)) = best
                        && source_count - count > 1
                    {
                        chosen = Some((region.id, source, target));
                        break 'sources;
                    }
                }
            }
            let Some((region, from, to)) = chosen else { break };
            self.start_transfer(region, from, to, OpOrigin::BalanceLeader);
            acted = true;
        }
        acted
    }

    /// balance-region: moves a replica from the fullest Up store to the emptiest one
    /// that accepts replicas, under the store limits, without hurting isolation.
    fn balance_regions(&mut self) -> bool {
        let mut acted = false;
        for _ in 0..64 {
            let in_flight = self.ops.values().filter(|op| op.origin == OpOrigin::BalanceRegion).count();
            if in_flight >= self.knobs.region_schedule_limit {
                break;
            }
            let counts = self.planned_region_counts();
            let now = self.now;
            let knobs = self.knobs.clone();
            let targets: Vec<u64> =
                self.stores.values().filter(|s| s.accepts_replicas(now, &knobs)).map(|s| s.id).collect();
            let mut sources: Vec<(i64, u64)> = self
                .stores
                .values()
                .filter(|s| s.is_up() && !s.is_tiflash() && !s.is_disconnected(now, &knobs))
                .map(|s| (counts.get(&s.id).copied().unwrap_or(0), s.id))
                .collect();
            sources.sort_by(|a, b| b.cmp(a));
            let Some(&(source_count, source)) = sources.first() else { break };
            let mut by_count: Vec<(i64, u64)> =
                targets.iter().filter(|t| **t != source).map(|t| (counts.get(t).copied().unwrap_or(0), *t)).collect();
            by_count.sort();
            let mut moved = false;
            for (target_count, target) in by_count {
                if source_count - target_count < 2 {
                    break;
                }
                if let Some(region) = self.balance_candidate(source, target) {
                    moved = self.start_add_peer(&region, target, Some(source), OpOrigin::BalanceRegion);
                    if moved {
                        break;
                    }
                }
            }
            if !moved {
                break;
            }
            acted = true;
        }
        acted
    }

    fn balance_candidate(&mut self, source: u64, target: u64) -> Option<Region> {
        let now = self.now;
        let ids: Vec<u64> = self
            .regions
            .values()
            .filter(|r| r.has_peer_on(source) && !r.has_peer_on(target) && !self.ops.contains_key(&r.id))
            .filter(|r| self.leader_running(r) && self.has_running_quorum(r) && self.down_peers(r).is_empty())
            .filter(|r| r.peer_on(source).is_some_and(|p| !p.learner))
            .filter(|r| !self.leader_stuck(r.id, source))
            .map(|r| r.id)
            .collect();
        let size_on_target = self.store_stats().get(&target).map(|s| s.region_size).unwrap_or(0);
        for id in ids {
            let region = self.regions.get(&id)?.clone();
            let cost = step_cost(region.size_mib);
            let others: Vec<u64> = region.peers.iter().map(|p| p.store_id).filter(|s| *s != source).collect();
            if self.isolation_clash(target, &others) > self.isolation_clash(source, &others) {
                continue;
            }
            if self.used_ratio(target, size_on_target + region.size_mib) >= self.knobs.low_space_ratio {
                return None;
            }
            let target_ok = self.stores.get_mut(&target).is_some_and(|s| s.add_peer.available(now, cost));
            if !target_ok || !self.source_can_give(source, cost) {
                self.round_blocked = true;
                return None;
            }
            return Some(region);
        }
        None
    }

    /// Whether the leader of `region_id` is on `store`, running with its leader transfers
    /// stalled: an operator that must move that leader first fails at that step.
    fn leader_stuck(&self, region_id: u64, store: u64) -> bool {
        self.stalled_leader_transfers.contains(&store)
            && self.store_running(store)
            && self.regions.get(&region_id).is_some_and(|r| r.leader == Some(store))
    }

    /// Moves the leader off `store` before its peer goes: to a voter that may lead if
    /// possible, else to any running voter.
    fn hand_off_leader(&mut self, region_id: u64, store: u64, prefer: Option<u64>) {
        let Some(region) = self.regions.get(&region_id) else { return };
        if region.leader != Some(store) {
            return;
        }
        let voters: Vec<u64> = region.voters().map(|p| p.store_id).filter(|s| *s != store).collect();
        let pick = prefer
            .filter(|p| voters.contains(p) && self.can_lead(*p) && self.store_running(*p))
            .or_else(|| voters.iter().copied().find(|s| self.can_lead(*s) && self.store_running(*s)))
            .or_else(|| voters.iter().copied().find(|s| self.store_running(*s)));
        if let Some(region) = self.regions.get_mut(&region_id) {
            region.leader = pick;
        }
        self.catch_up_region(region_id);
    }

    pub(super) fn finish_op(&mut self, region_id: u64) {
        let Some(op) = self.ops.remove(&region_id) else { return };
        match op.kind {
            OpKind::AddPeer { target, replace } => {
                let target_ok = self.stores.get(&target).is_some_and(|s| s.running && !s.is_removed());
                let stuck = replace.is_some_and(|old| self.leader_stuck(region_id, old));
                // Promoting the learner is a conf change: it commits only with a quorum.
                let quorum = self.regions.get(&region_id).is_some_and(|r| self.has_running_quorum(r));
                let Some(region) = self.regions.get_mut(&region_id) else { return };
                if !target_ok || stuck || !quorum {
                    region.peers.retain(|p| !(p.store_id == target && p.learner));
                    region.conf_ver += 1;
                    return;
                }
                for peer in region.peers.iter_mut().filter(|p| p.store_id == target) {
                    peer.learner = false;
                }
                region.conf_ver += 1;
                if let Some(old) = replace {
                    self.hand_off_leader(region_id, old, Some(target));
                    if let Some(region) = self.regions.get_mut(&region_id) {
                        region.remove_peer(old);
                    }
                }
            }
            OpKind::RemovePeer { store } => {
                let quorum = self.regions.get(&region_id).is_some_and(|r| self.has_running_quorum(r));
                if self.leader_stuck(region_id, store) || !quorum {
                    return;
                }
                self.hand_off_leader(region_id, store, None);
                if let Some(region) = self.regions.get_mut(&region_id) {
                    region.remove_peer(store);
                }
            }
            OpKind::TransferLeader { from, to } => {
                // A stalled source never applies the transfer: the operator ends
                // without effect and the scheduler that made it tries again later.
                let stalled = self.stalled_leader_transfers.contains(&from);
                let to_ok = self.store_running(to) && !self.is_evicted(to) && !stalled;
                let Some(region) = self.regions.get_mut(&region_id) else { return };
                let to_is_voter = region.peer_on(to).is_some_and(|p| !p.learner);
                if region.leader == Some(from) && to_is_voter && to_ok {
                    region.leader = Some(to);
                    self.catch_up_region(region_id);
                }
            }
        }
    }
}
