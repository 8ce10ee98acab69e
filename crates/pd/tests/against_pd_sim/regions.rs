//! Region checks (down and pending peers) and region statistics.

use std::collections::BTreeSet;
use std::time::Duration;

use pd_sim::model::OpKind;
use tikv_operator_pd::StateName;

use crate::common::Env;

#[tokio::test]
async fn down_peers_appear_only_after_max_peer_down_duration() {
    let env = Env::with_stores(3, 3).await;
    let c = &env.client;
    let s3 = env.id(3);
    assert!(c.down_peer_regions().await.unwrap().is_empty());

    env.ctl().stop_store(s3).await.unwrap();
    let max_peer_down = env.ctl().knobs().max_peer_down_duration;
    // Halfway there: the store is Disconnected, but no peer is reported down yet.
    env.run(max_peer_down / 2);
    assert_eq!(c.store(s3).await.unwrap().state_name, StateName::Disconnected);
    assert!(c.down_peer_regions().await.unwrap().is_empty());

    env.run(max_peer_down / 2 + Duration::from_secs(1));
    let check = c.down_peer_regions().await.unwrap();
    let truth = env.ctl().snapshot();
    assert_eq!(check.count as usize, truth.down_peer_regions.len());
    assert_eq!(check.count, 30, "every region has a replica on the stopped store");
    let regions: BTreeSet<u64> = check.regions.iter().map(|r| r.region_id).collect();
    assert_eq!(regions, truth.down_peer_regions.iter().copied().collect());
    assert_eq!(check.store_ids(), BTreeSet::from([s3]));
    assert!(!check.involves_store_other_than(s3));
    assert!(check.involves_store_other_than(env.id(1)));
    for region in &check.regions {
        // Leaders were re-elected on live stores.
        assert!(region.leader_store_id.is_some_and(|l| l != s3), "{region:?}");
        assert!(region.peers.iter().all(|p| p.store_id == s3 && p.down_seconds.is_some_and(|s| s >= 10)));
    }
    // Still short of max-store-down-time: Disconnected, not Down.
    assert_eq!(c.store(s3).await.unwrap().state_name, StateName::Disconnected);

    // Back up: the down peers are gone.
    env.ctl().restart_store(s3, None).await.unwrap();
    env.run(Duration::from_secs(1));
    assert!(c.down_peer_regions().await.unwrap().is_empty());
    assert_eq!(c.store(s3).await.unwrap().state_name, StateName::Up);
}

#[tokio::test]
async fn pending_peers_are_the_replicas_being_added() {
    let mut env = Env::with_stores(3, 1).await;
    let c = &env.client;
    assert!(c.pending_peer_regions().await.unwrap().is_empty());

    // New stores: PD starts adding replicas; with time standing still they stay pending.
    let s2 = env.add_store(2).await;
    let s3 = env.add_store(3).await;
    let check = env.client.pending_peer_regions().await.unwrap();
    let truth = env.ctl().snapshot();
    let adding: BTreeSet<u64> =
        truth.operators.iter().filter(|op| matches!(op.kind, OpKind::AddPeer { .. })).map(|op| op.region).collect();
    assert!(!adding.is_empty());
    let pending: BTreeSet<u64> = check.regions.iter().map(|r| r.region_id).collect();
    assert_eq!(pending, adding);
    assert_eq!(check.count as usize, adding.len());
    assert!(check.store_ids().is_subset(&BTreeSet::from([s2, s3])), "{check:?}");
    assert!(check.regions.iter().all(|r| r.peers.iter().all(|p| p.down_seconds.is_none())));
    let pending_on_stores: u64 = env.client.all_stores().await.unwrap().iter().map(|s| s.pending_peer_count).sum();
    assert_eq!(pending_on_stores, adding.len() as u64);

    env.settle().await;
    assert!(env.client.pending_peer_regions().await.unwrap().is_empty());
}

#[tokio::test]
async fn region_stats_match_the_stores() {
    let env = Env::with_stores(3, 3).await;
    let stats = env.client.region_stats().await.unwrap();
    assert_eq!(stats.count, 30);
    assert_eq!(stats.empty_count, 0);
    assert_eq!(stats.storage_size, 30);
    assert!(stats.storage_keys > 0);
    let stores = env.client.all_stores().await.unwrap();
    assert_eq!(stats.store_peer_count.len(), 3);
    for store in &stores {
        assert_eq!(stats.store_peer_count.get(&store.id), Some(&store.region_count));
        assert_eq!(stats.store_leader_count.get(&store.id).copied().unwrap_or(0), store.leader_count);
    }
    assert_eq!(stats.store_leader_count.values().sum::<u64>(), 30);
}
