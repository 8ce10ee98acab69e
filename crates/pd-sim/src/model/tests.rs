//! Unit tests of the store state machine, the replica checker and the schedulers,
//! driven by `advance_to` on simulated instants (no clock, no server).

use std::time::{Duration, SystemTime};

use sim_clock::SimInstant;

use super::store::NodeState;
use super::*;
use crate::preset::{Knobs, Preset};

pub(super) fn cluster(max_replicas: usize, regions: usize) -> Cluster {
    Cluster::new(
        (1 << 62) + 7,
        Replication {
            max_replicas,
            location_labels: vec![],
            strictly_match_label: false,
            enable_placement_rules: true,
            isolation_level: String::new(),
        },
        Knobs::for_preset(Preset::Fast),
        SeedSpec { regions, region_size_mib: 1 },
        42,
        SimInstant::default(),
        SystemTime::UNIX_EPOCH,
    )
}

pub(super) fn add_store(c: &mut Cluster, n: u32) -> u64 {
    c.start_store(StoreSpec { address: format!("tikv-{n}:20160"), ..Default::default() }).unwrap()
}

pub(super) fn run(c: &mut Cluster, d: Duration) {
    let target = c.now + d;
    c.advance_to(target);
}

fn stats(c: &Cluster, id: u64) -> StoreStats {
    c.store_stats().get(&id).copied().unwrap_or_default()
}

#[test]
fn the_first_store_bootstraps_with_single_replica_regions() {
    let mut c = cluster(3, 10);
    assert!(!c.bootstrapped);
    let s1 = add_store(&mut c, 1);
    assert!(c.bootstrapped);
    assert_eq!(stats(&c, s1).region_count, 10);
    assert_eq!(stats(&c, s1).leader_count, 10);
    assert!(c.regions.values().all(|r| r.peers.len() == 1));
}

#[test]
fn replicas_are_added_up_to_max_replicas_as_stores_join() {
    let mut c = cluster(3, 10);
    let ids: Vec<u64> = (1..=3).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(5));
    for id in &ids {
        assert_eq!(stats(&c, *id).region_count, 10, "store {id}");
    }
    assert!(c.regions.values().all(|r| r.voter_count() == 3));
    let leaders: Vec<u64> = ids.iter().map(|id| stats(&c, *id).leader_count).collect();
    assert!(leaders.iter().all(|l| *l >= 2), "leaders balanced: {leaders:?}");
}

#[test]
fn a_new_store_is_preparing_then_serving() {
    let mut c = cluster(3, 10);
    let s = add_store(&mut c, 1);
    assert_eq!(c.stores[&s].node_state, NodeState::Preparing);
    run(&mut c, Duration::from_secs(1));
    assert_eq!(c.stores[&s].node_state, NodeState::Serving);
}

#[test]
fn with_many_regions_a_new_store_serves_only_once_filled() {
    let mut c = cluster(1, 200);
    let s1 = add_store(&mut c, 1);
    run(&mut c, Duration::from_secs(1));
    assert_eq!(c.stores[&s1].node_state, NodeState::Serving);
    let s2 = add_store(&mut c, 2);
    run(&mut c, Duration::from_millis(600));
    assert_eq!(c.stores[&s2].node_state, NodeState::Preparing);
    run(&mut c, Duration::from_secs(30));
    assert_eq!(c.stores[&s2].node_state, NodeState::Serving);
    assert!(stats(&c, s2).region_count >= 90);
}

#[test]
fn delete_drains_the_store_to_tombstone() {
    let mut c = cluster(3, 12);
    let ids: Vec<u64> = (1..=4).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(5));
    c.remove_store(ids[0], false).unwrap();
    assert_eq!(c.stores[&ids[0]].node_state, NodeState::Removing);
    run(&mut c, Duration::from_secs(10));
    assert_eq!(stats(&c, ids[0]).region_count, 0);
    assert_eq!(c.stores[&ids[0]].node_state, NodeState::Removed);
    assert!(c.regions.values().all(|r| r.voter_count() == 3 && !r.has_peer_on(ids[0])));
    assert_eq!(c.remove_store(ids[0], false), Err(StoreError::Removed(ids[0])));
    assert_eq!(c.up_store(ids[0]), Err(StoreError::Removed(ids[0])));
}

#[test]
fn delete_validation_follows_pd_order() {
    let mut c = cluster(3, 6);
    let ids: Vec<u64> = (1..=3).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(2));
    assert_eq!(c.remove_store(999, false), Err(StoreError::NotFound(999)));
    assert_eq!(c.remove_store(ids[0], false), Err(StoreError::NotEnough { id: ids[0], up: 2, need: 3 }));
    assert_eq!(c.stores[&ids[0]].node_state, NodeState::Serving);
    c.remove_store(ids[0], true).unwrap();
    assert!(c.stores[&ids[0]].physically_destroyed);
    assert_eq!(c.remove_store(ids[0], true), Ok(()), "idempotent with the same force flag");
    assert_eq!(c.remove_store(ids[0], false), Err(StoreError::Destroyed(ids[0])));
    assert_eq!(c.up_store(ids[0]), Err(StoreError::Destroyed(ids[0])));
    run(&mut c, Duration::from_secs(60));
    assert_eq!(c.stores[&ids[0]].node_state, NodeState::Removing, "nowhere to go: never Tombstone");
    assert!(stats(&c, ids[0]).region_count > 0);
}

#[test]
fn no_store_for_leader_when_all_others_are_evicted() {
    let mut c = cluster(1, 4);
    let ids: Vec<u64> = (1..=2).map(|n| add_store(&mut c, n)).collect();
    c.evict_leader = Some(EvictLeader { stores: [ids[1]].into(), batch: 3 });
    assert_eq!(c.remove_store(ids[0], false), Err(StoreError::NoStoreForLeader(ids[0])));
}

#[test]
fn old_pd_mode_lets_a_store_go_offline_but_it_never_drains() {
    let mut c = cluster(3, 6);
    c.knobs.refuse_remove_below_max_replicas = false;
    let ids: Vec<u64> = (1..=3).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(2));
    c.remove_store(ids[2], false).unwrap();
    run(&mut c, Duration::from_secs(120));
    assert_eq!(c.stores[&ids[2]].node_state, NodeState::Removing);
    assert_eq!(stats(&c, ids[2]).region_count, 6);
}

#[test]
fn cancelling_a_removal_returns_to_serving_and_restores_limits() {
    let mut c = cluster(3, 200);
    c.knobs.store_limit_add_peer = 15.0;
    let ids: Vec<u64> = (1..=4).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(1));
    c.remove_store(ids[0], false).unwrap();
    assert!(c.stores[&ids[0]].saved_limits.is_some());
    c.up_store(ids[0]).unwrap();
    assert_eq!(c.stores[&ids[0]].node_state, NodeState::Serving);
    assert_eq!(c.stores[&ids[0]].remove_peer.rate(), 600.0);
}

#[test]
fn store_limits_pace_the_replica_checker() {
    let mut c = cluster(2, 150);
    c.knobs.store_limit_add_peer = 15.0;
    c.knobs.region_move_base = Duration::from_millis(10);
    let _s1 = add_store(&mut c, 1);
    let s2 = add_store(&mut c, 2);
    run(&mut c, Duration::from_secs(60));
    let copied = stats(&c, s2).region_count;
    // 15 per minute, a fifth per small region: about 75 a minute plus the burst.
    assert!((70..=85).contains(&copied), "copied {copied}");
}

#[test]
fn eviction_moves_every_leader_unless_there_is_no_follower() {
    let mut c = cluster(3, 12);
    let ids: Vec<u64> = (1..=3).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(5));
    c.evict_leader = Some(EvictLeader { stores: [ids[0]].into(), batch: 3 });
    c.poke();
    run(&mut c, Duration::from_secs(1));
    assert_eq!(stats(&c, ids[0]).leader_count, 0);
    c.evict_leader = None;
    c.poke();
    run(&mut c, Duration::from_secs(2));
    assert!(stats(&c, ids[0]).leader_count >= 3, "leaders return after eviction");

    let mut single = cluster(1, 5);
    let s = add_store(&mut single, 1);
    add_store(&mut single, 2);
    run(&mut single, Duration::from_secs(2));
    let before = stats(&single, s).leader_count;
    single.evict_leader = Some(EvictLeader { stores: [s].into(), batch: 3 });
    single.poke();
    run(&mut single, Duration::from_secs(30));
    assert!(before > 0);
    assert_eq!(stats(&single, s).leader_count, before, "max-replicas 1: no follower to take them");
}

#[test]
fn a_stopped_store_disconnects_goes_down_and_reports_down_peers_late() {
    let mut c = cluster(3, 6);
    let ids: Vec<u64> = (1..=3).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(3));
    c.stop_store(ids[0]).unwrap();
    run(&mut c, Duration::from_secs(3));
    assert_eq!(c.stores[&ids[0]].state_name(c.now, &c.knobs), "Disconnected");
    assert_eq!(stats(&c, ids[0]).leader_count, 0, "raft re-elected leaders elsewhere");
    assert!(c.regions.values().all(|r| c.down_peers(r).is_empty()), "not before max-peer-down-duration");
    run(&mut c, Duration::from_secs(8));
    assert!(c.regions.values().all(|r| c.down_peers(r).len() == 1));
    run(&mut c, Duration::from_secs(25));
    assert_eq!(c.stores[&ids[0]].state_name(c.now, &c.knobs), "Down");
    c.start_store(StoreSpec { address: "tikv-1:20160".into(), store_id: Some(ids[0]), ..Default::default() }).unwrap();
    run(&mut c, Duration::from_secs(1));
    assert_eq!(c.stores[&ids[0]].state_name(c.now, &c.knobs), "Up");
    assert!(c.regions.values().all(|r| c.down_peers(r).is_empty()));
}

#[test]
fn replicas_on_a_down_store_are_recreated_elsewhere() {
    let mut c = cluster(3, 6);
    let ids: Vec<u64> = (1..=4).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(5));
    c.stop_store(ids[3]).unwrap();
    run(&mut c, Duration::from_secs(45));
    assert_eq!(stats(&c, ids[3]).region_count, 0);
    assert!(c.regions.values().all(|r| r.voter_count() == 3));
}

#[test]
fn registration_refuses_duplicates_and_tombstones() {
    let mut c = cluster(1, 2);
    let s1 = add_store(&mut c, 1);
    let s2 = add_store(&mut c, 2);
    let dup = c.start_store(StoreSpec { address: "tikv-1:20160".into(), ..Default::default() });
    assert_eq!(dup, Err(StoreStartError::DuplicatedAddress { address: "tikv-1:20160".into(), existing: s1 }));
    c.remove_store(s2, false).unwrap();
    run(&mut c, Duration::from_secs(3));
    assert!(c.stores[&s2].is_removed());
    c.stop_store(s2).unwrap();
    let back = c.start_store(StoreSpec { address: "tikv-2:20160".into(), store_id: Some(s2), ..Default::default() });
    assert_eq!(back, Err(StoreStartError::Tombstone(s2)));
    let reuse = c.start_store(StoreSpec { address: "tikv-2:20160".into(), ..Default::default() }).unwrap();
    assert_ne!(reuse, s2, "an address is reusable once the old store is Tombstone");
}

#[test]
fn tombstone_records_are_dropped_after_thirty_days() {
    let mut c = cluster(1, 2);
    add_store(&mut c, 1);
    let s2 = add_store(&mut c, 2);
    c.remove_store(s2, false).unwrap();
    run(&mut c, Duration::from_secs(3));
    c.stop_store(s2).unwrap();
    c.knobs.node_state_check = Duration::from_secs(3600);
    c.knobs.store_heartbeat = Duration::from_secs(3600);
    run(&mut c, Duration::from_secs(31 * 86_400));
    assert!(!c.stores.contains_key(&s2));
}

/// A jump of the clock costs the events that change something, not one per heartbeat and
/// check in the time jumped (before, days took minutes with the model lock held).
#[test]
fn advancing_days_costs_events_for_changes_not_for_time() {
    let mut c = cluster(3, 30);
    c.knobs.tombstone_gc_after = Duration::from_secs(2 * 86_400);
    let ids: Vec<u64> = (1..=5).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(5));
    c.remove_store(ids[0], false).unwrap();
    c.stop_store(ids[1]).unwrap();
    c.evict_leader = Some(EvictLeader { stores: [ids[2]].into(), batch: 3 });
    c.poke();
    let before = c.events_run;
    let days = 3;
    run(&mut c, Duration::from_secs(days * 86_400));

    let minutes = days * 24 * 60;
    let events = c.events_run - before;
    assert!(events <= 2 * minutes, "{events} events for {minutes} simulated minutes");
    assert!(!c.stores.contains_key(&ids[0]), "the Tombstone record was collected after two days");
    assert_eq!(c.stores[&ids[1]].state_name(c.now, &c.knobs), "Down");
    assert_eq!(stats(&c, ids[1]).region_count, 0, "its replicas were recreated elsewhere");
    assert_eq!(stats(&c, ids[2]).leader_count, 0, "leaders evicted");
    assert!(c.regions.values().all(|r| r.voter_count() == 3));
    for id in &ids[2..] {
        let since = c.stores[id].since_heartbeat(c.now);
        assert!(since < c.knobs.store_heartbeat, "store {id} heartbeats up to now ({since:?} ago)");
        assert_eq!(c.stores[id].state_name(c.now, &c.knobs), "Up");
    }
}

/// A cluster of `n` PD members, all started at the epoch, with a leader elected.
fn pd_members(n: usize) -> Cluster {
    let mut c = cluster(3, 1);
    for i in 0..n {
        c.add_member(format!("pd-{i}"), vec![], vec![]).unwrap();
    }
    run(&mut c, Duration::from_secs(1));
    assert!(c.members.leader.is_some());
    c
}

fn pd_leader(c: &Cluster) -> Option<String> {
    c.members.leader_member().map(|m| m.name.clone())
}

fn pd_followers(c: &Cluster) -> Vec<String> {
    c.members.list.iter().filter(|m| Some(m.member_id) != c.members.leader).map(|m| m.name.clone()).collect()
}

const JUST: Duration = Duration::from_millis(1);

#[test]
fn a_higher_priority_member_takes_pd_leadership_at_its_next_priority_check() {
    let mut c = pd_members(3);
    let (interval, gap) = (c.knobs.leader_priority_check, c.knobs.pd_leader_change_max);
    let first_tick = SimInstant::default() + interval;
    let old = pd_leader(&c);
    let target = pd_followers(&c)[0].clone();
    c.members.set_priority(&target, 10).unwrap();

    c.advance_to(SimInstant::default() + (interval - JUST));
    assert_eq!(pd_leader(&c), old, "setting a priority moves nothing by itself");
    c.advance_to(first_tick);
    assert_eq!(c.members.leader, None, "the old leader resigned");
    assert_eq!(c.members.etcd_leader, c.members.by_name(&target).map(|m| m.member_id), "etcd leadership moved");
    c.advance_to(first_tick + gap);
    assert_eq!(pd_leader(&c).as_deref(), Some(target.as_str()));

    run(&mut c, interval * 5);
    assert_eq!(pd_leader(&c).as_deref(), Some(target.as_str()), "and keeps it");
}

#[test]
fn a_stopped_higher_priority_member_does_not_take_leadership_until_it_runs_again() {
    let mut c = pd_members(3);
    let (interval, gap) = (c.knobs.leader_priority_check, c.knobs.pd_leader_change_max);
    let old = pd_leader(&c);
    let target = pd_followers(&c)[0].clone();
    c.members.set_priority(&target, 10).unwrap();
    c.members.stop(&target).unwrap();
    c.reconcile_members();

    run(&mut c, interval * 5);
    assert_eq!(pd_leader(&c), old);
    assert_eq!(c.members.election, None);

    // Its ticker starts with its process: the first check is one interval after the start.
    let started = c.now;
    let new_id = c.alloc_member_id();
    c.members.start(&target, started, new_id).unwrap();
    c.reconcile_members();
    c.advance_to(started + (interval - JUST));
    assert_eq!(pd_leader(&c), old);
    c.advance_to(started + interval + gap);
    assert_eq!(pd_leader(&c).as_deref(), Some(target.as_str()));
}

#[test]
fn equal_or_lower_priorities_never_move_leadership() {
    let mut c = pd_members(3);
    let interval = c.knobs.leader_priority_check;
    let old = pd_leader(&c);
    for name in ["pd-0", "pd-1", "pd-2"] {
        c.members.set_priority(name, 5).unwrap();
    }
    run(&mut c, interval * 5);
    assert_eq!(pd_leader(&c), old);

    c.members.set_priority(&pd_followers(&c)[0], 1).unwrap();
    let before = c.events_run;
    run(&mut c, Duration::from_secs(3600));
    assert_eq!(pd_leader(&c), old);
    assert_eq!(c.members.next_priority_check(c.now, interval), None);
    assert!(c.events_run - before < 200, "ticks that cannot move leadership cost no events");
}

#[test]
fn a_transfer_to_a_lower_priority_member_is_undone_at_the_next_priority_check() {
    let mut c = pd_members(3);
    let (interval, gap) = (c.knobs.leader_priority_check, c.knobs.pd_leader_change_max);
    let preferred = pd_leader(&c).unwrap();
    c.members.set_priority(&preferred, 10).unwrap();
    let target = pd_followers(&c)[0].clone();

    let delay = c.pd_leader_change_delay();
    let now = c.now;
    c.members.transfer(&target, now, delay).unwrap();
    run(&mut c, gap);
    assert_eq!(pd_leader(&c).as_deref(), Some(target.as_str()), "the transfer happened");

    c.advance_to(SimInstant::default() + interval + gap);
    assert_eq!(pd_leader(&c).as_deref(), Some(preferred.as_str()), "PD moved it back");
}

#[test]
fn the_highest_priority_wins_in_the_end_even_after_an_election_picked_another() {
    let mut c = pd_members(5);
    let interval = c.knobs.leader_priority_check;
    let old = pd_leader(&c).unwrap();
    let followers = pd_followers(&c);
    c.members.set_priority(&followers[0], 5).unwrap();
    c.members.set_priority(&followers[1], 10).unwrap();
    c.members.set_priority(&followers[2], 7).unwrap();
    c.members.stop(&old).unwrap();
    c.reconcile_members();

    run(&mut c, interval * 4);
    assert_eq!(pd_leader(&c).as_deref(), Some(followers[1].as_str()));
    assert_eq!(c.members.next_priority_check(c.now, interval), None, "settled");
}
