//! The data rules, one test each, on the bare model (fast preset, simulated instants).

use std::time::Duration;

use super::super::*;
use super::*;
use crate::model::tests::{add_store, run};

/// A cluster with max-replicas 3 and `regions` regions, no store yet.
fn cluster(regions: usize) -> Cluster {
    crate::model::tests::cluster(3, regions)
}

/// Three stores, every region on all three.
fn three() -> (Cluster, Vec<u64>) {
    let mut c = cluster(4);
    let ids: Vec<u64> = (1..=3).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(5));
    assert!(c.regions.values().all(|r| r.voter_count() == 3 && c.ops.is_empty()));
    (c, ids)
}

/// The single region of a one-region cluster.
fn region(c: &Cluster) -> Region {
    c.regions.values().next().cloned().unwrap()
}

fn one_region() -> (Cluster, Vec<u64>) {
    let mut c = cluster(1);
    let ids: Vec<u64> = (1..=3).map(|n| add_store(&mut c, n)).collect();
    run(&mut c, Duration::from_secs(5));
    assert_eq!(region(&c).voter_count(), 3);
    (c, ids)
}

fn leader(c: &Cluster) -> u64 {
    region(c).leader.unwrap()
}

fn followers(c: &Cluster) -> Vec<u64> {
    let r = region(c);
    r.voters().map(|p| p.store_id).filter(|s| Some(*s) != r.leader).collect()
}

fn lost(c: &Cluster, keys: &[&str]) -> Vec<String> {
    c.check_keys(keys.iter().copied()).lost.into_iter().map(|p| p.key).collect()
}

fn held_by(c: &Cluster, key: &str) -> Vec<u64> {
    let (id, index) = c.data.keys[key];
    let mut stores: Vec<u64> =
        c.regions[&id].peers.iter().filter(|p| c.data.held(p.id) >= index).map(|p| p.store_id).collect();
    stores.sort();
    stores
}

#[test]
fn a_key_goes_to_the_region_whose_range_holds_it() {
    let (mut c, _) = three();
    let regions: Vec<Region> = c.regions.values().cloned().collect();
    for r in &regions {
        let key = format!("{}00000001", r.start_key);
        assert_eq!(c.region_for_key(&key).map(|x| x.id), Some(r.id), "{key}");
        c.put_key(&key).unwrap();
        assert_eq!(c.data.keys[&key].0, r.id);
    }
    assert_eq!(c.data.committed_writes(), regions.len() as u64);
}

#[test]
fn a_write_with_a_quorum_up_is_held_by_every_running_peer() {
    let (mut c, ids) = one_region();
    assert_eq!(c.put_key("01"), Ok(1));
    assert_eq!(held_by(&c, "01"), ids);
    let follower = followers(&c)[0];
    c.stop_store(follower).unwrap();
    assert_eq!(c.put_key("02"), Ok(2), "two of three voters are a quorum");
    let mut expected: Vec<u64> = ids.iter().copied().filter(|s| *s != follower).collect();
    expected.sort();
    assert_eq!(held_by(&c, "02"), expected);
    let check = c.check_keys(["01", "02"]);
    assert!(check.lost.is_empty() && check.unreadable.is_empty(), "{check:?}");
}

#[test]
fn a_write_without_a_quorum_is_refused_and_held_by_nobody() {
    let (mut c, _) = one_region();
    for s in followers(&c) {
        c.stop_store(s).unwrap();
    }
    let id = region(&c).id;
    assert_eq!(c.put_key("01"), Err(Unavailable::NoQuorum { region: id, running: 1, voters: 3 }));
    assert_eq!(c.data.committed_writes(), 0);
    // The key was never acknowledged: asking about it finds it never committed.
    assert_eq!(lost(&c, &["01"]), ["01"]);
}

#[test]
fn a_leader_on_a_stopped_store_refuses_writes_until_a_new_leader_is_elected() {
    let (mut c, _) = one_region();
    c.put_key("01").unwrap();
    let old = leader(&c);
    c.stop_store(old).unwrap();
    let id = region(&c).id;
    assert_eq!(c.put_key("02"), Err(Unavailable::LeaderDown { region: id, store: old }));
    let check = c.check_keys(["01"]);
    assert!(check.lost.is_empty(), "{check:?}");
    assert_eq!(check.unreadable.len(), 1, "no running leader: {check:?}");
    let wait = c.knobs.raft_election_timeout + Duration::from_millis(100);
    run(&mut c, wait);
    assert_ne!(leader(&c), old);
    assert_eq!(c.put_key("02"), Ok(2));
    let check = c.check_keys(["01", "02"]);
    assert!(check.lost.is_empty() && check.unreadable.is_empty(), "{check:?}");
}

#[test]
fn a_stopped_peer_catches_up_when_it_runs_again() {
    let (mut c, _) = one_region();
    let (a, b) = (leader(&c), followers(&c)[0]);
    let lagging = followers(&c)[1];
    c.stop_store(lagging).unwrap();
    c.put_key("01").unwrap();
    assert!(!held_by(&c, "01").contains(&lagging));
    c.start_store(StoreSpec { address: "tikv-x:20160".into(), store_id: Some(lagging), ..Default::default() }).unwrap();
    assert!(held_by(&c, "01").contains(&lagging), "raft log catch-up from the running leader");
    // So losing the data of one of the two that took the write loses nothing.
    c.destroy_store_data(a).unwrap();
    assert!(lost(&c, &["01"]).is_empty());
    let _ = b;
}

#[test]
fn a_peer_back_while_its_region_has_no_leader_catches_up_from_the_one_elected() {
    let (mut c, _) = one_region();
    let lagging = followers(&c)[1];
    let other = followers(&c)[0];
    let old = leader(&c);
    c.stop_store(lagging).unwrap();
    c.put_key("01").unwrap();
    c.stop_store(old).unwrap();
    c.stop_store(other).unwrap();
    run(&mut c, Duration::from_secs(1));
    c.start_store(StoreSpec { address: "x:1".into(), store_id: Some(lagging), ..Default::default() }).unwrap();
    assert!(!held_by(&c, "01").contains(&lagging), "no leader to catch up from");
    c.start_store(StoreSpec { address: "y:1".into(), store_id: Some(other), ..Default::default() }).unwrap();
    let wait = c.knobs.raft_election_timeout + Duration::from_millis(100);
    run(&mut c, wait);
    assert_eq!(leader(&c), other, "only the up-to-date voter can win the election");
    assert!(held_by(&c, "01").contains(&lagging));
    c.destroy_store_data(other).unwrap();
    assert!(lost(&c, &["01"]).is_empty(), "held by the old leader's disk and the caught-up peer");
}

#[test]
fn a_new_peer_receives_the_committed_data_and_a_drained_store_can_go() {
    let (mut c, ids) = one_region();
    let keys: Vec<String> = (0..20).map(|n| format!("{n:04X}")).collect();
    for k in &keys {
        c.put_key(k).unwrap();
    }
    let s4 = add_store(&mut c, 4);
    c.remove_store(ids[0], false).unwrap();
    run(&mut c, Duration::from_secs(5));
    assert!(c.stores[&ids[0]].is_removed());
    assert!(region(&c).has_peer_on(s4));
    assert!(keys.iter().all(|k| held_by(&c, k).contains(&s4)), "snapshot from the leader");
    c.destroy_store_data(ids[0]).unwrap();
    c.destroy_store_data(ids[1]).unwrap();
    // Voters now 2, 3, 4: store 2's data gone, 3 and 4 still a majority.
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert!(lost(&c, &refs).is_empty());
}

#[test]
fn destroying_the_data_of_two_of_three_replicas_loses_the_keys() {
    let (mut c, _) = three();
    let keys: Vec<String> = c.regions.values().map(|r| format!("{}AA", r.start_key)).collect();
    for k in &keys {
        c.put_key(k).unwrap();
    }
    let ids: Vec<u64> = c.stores.keys().copied().collect();
    c.destroy_store_data(ids[0]).unwrap();
    c.destroy_store_data(ids[1]).unwrap();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let check = c.check_keys(refs.iter().copied());
    assert_eq!(check.lost.len(), keys.len(), "{check:?}");
    // Nothing brings them back: the region has no quorum to elect a leader.
    run(&mut c, Duration::from_secs(120));
    assert_eq!(lost(&c, &refs).len(), keys.len());
    assert!(c.put_key(&keys[0]).is_err(), "no quorum: writes refused");
}

#[test]
fn destroying_one_of_three_after_its_replacement_and_then_another_loses_nothing() {
    let (mut c, ids) = one_region();
    let s4 = add_store(&mut c, 4);
    c.put_key("01").unwrap();
    let victim = followers(&c)[0];
    c.destroy_store_data(victim).unwrap();
    assert!(lost(&c, &["01"]).is_empty(), "two of three still hold it");
    // PD replaces the replica on the Down store; the new peer gets a snapshot.
    let wait = c.knobs.max_store_down_time + Duration::from_secs(5);
    run(&mut c, wait);
    assert!(!region(&c).has_peer_on(victim));
    assert!(held_by(&c, "01").contains(&s4));
    let another = ids.iter().copied().find(|s| *s != victim).unwrap();
    c.destroy_store_data(another).unwrap();
    assert!(lost(&c, &["01"]).is_empty(), "the replacement and the third voter hold it");
}

#[test]
fn destroying_a_second_replica_before_the_replacement_loses_the_key() {
    let (mut c, _) = one_region();
    add_store(&mut c, 4);
    c.put_key("01").unwrap();
    let f = followers(&c);
    c.destroy_store_data(f[0]).unwrap();
    c.destroy_store_data(f[1]).unwrap();
    assert_eq!(lost(&c, &["01"]), ["01"]);
    let wait = c.knobs.max_store_down_time + Duration::from_secs(5);
    run(&mut c, wait);
    assert_eq!(lost(&c, &["01"]), ["01"], "no leader: PD cannot repair the region");
}

#[test]
fn keys_on_a_region_without_a_running_majority_are_unreadable_not_lost() {
    let (mut c, _) = one_region();
    c.put_key("01").unwrap();
    for s in followers(&c) {
        c.stop_store(s).unwrap();
    }
    let check = c.check_keys(["01"]);
    assert!(check.lost.is_empty());
    assert_eq!(check.unreadable.len(), 1);
    assert!(check.unreadable[0].reason.contains("no quorum"), "{check:?}");
}

#[test]
fn a_store_whose_data_was_destroyed_cannot_start_again() {
    let (mut c, ids) = one_region();
    c.destroy_store_data(ids[1]).unwrap();
    assert!(!c.stores[&ids[1]].running, "its disk vanished under it");
    let again =
        c.start_store(StoreSpec { address: "tikv-2:20160".into(), store_id: Some(ids[1]), ..Default::default() });
    assert_eq!(again, Err(StoreStartError::DataDestroyed(ids[1])));
    assert_eq!(c.destroy_store_data(999), Err(StoreError::NotFound(999)));
}

#[test]
fn a_learner_takes_writes_made_while_it_is_being_added() {
    let mut c = cluster(1);
    let s1 = add_store(&mut c, 1);
    c.put_key("01").unwrap();
    // Slow moves, so the second replica stays a learner for a while.
    c.knobs.region_move_base = Duration::from_secs(10);
    let s2 = add_store(&mut c, 2);
    run(&mut c, Duration::from_secs(1));
    assert!(region(&c).peer_on(s2).is_some_and(|p| p.learner));
    assert_eq!(held_by(&c, "01"), [s1, s2], "snapshot");
    c.put_key("02").unwrap();
    assert_eq!(held_by(&c, "02"), [s1, s2], "log replicated to the learner");
}
