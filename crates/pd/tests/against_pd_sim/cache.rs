//! The PD cache polling a running pd-sim.

use std::time::Duration;

use pd_sim::Config;
use tikv_operator_pd::{CacheConfig, Freshness, PdCache, PdError, PdEvent, StaleReason, StateName};
use tokio::sync::broadcast;

use crate::common::{Env, REAL_BOUND, config};

/// Polls only when asked (or after a write): the slow interval never comes round.
fn cache_config() -> CacheConfig {
    CacheConfig {
        fast_interval: Duration::from_millis(20),
        slow_interval: Duration::from_secs(3600),
        idle_interval: Duration::from_secs(3600),
        fresh_for: Duration::from_secs(3600),
        ..CacheConfig::default()
    }
}

/// The next event that `pick` accepts, within a real-time bound.
async fn next_event<T>(events: &mut broadcast::Receiver<PdEvent>, mut pick: impl FnMut(&PdEvent) -> Option<T>) -> T {
    let wait = async {
        loop {
            let event = events.recv().await.unwrap();
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    };
    tokio::time::timeout(REAL_BOUND, wait).await.expect("the event did not come")
}

#[tokio::test]
async fn first_poll_sees_the_stores_members_and_identity() {
    let env = Env::with_stores_and(Config { members: 3, cluster_id: Some(u64::MAX - 7), ..config() }, 3).await;
    let cache = PdCache::for_client(env.client.clone(), cache_config());
    let view = cache.refresh().await.unwrap();
    assert_eq!(view.cluster_id, u64::MAX - 7);
    assert_eq!(cache.cluster_id(), Some(u64::MAX - 7));
    assert!(view.bootstrapped);
    assert_eq!(view.stores.len(), 3);
    for id in &env.ids {
        let store = view.store(*id).unwrap();
        assert!(store.is_up_and_heartbeating(), "{store:?}");
        assert_eq!(view.store_by_address(&store.address).map(|s| s.id), Some(*id));
    }
    let truth = env.ctl().snapshot();
    assert_eq!(view.members.len(), 3);
    assert!(view.members.values().all(|m| m.healthy == Some(true)));
    assert_eq!(view.leader, truth.leader);
    assert_eq!(view.etcd_leader, truth.etcd_leader);
    assert_eq!(cache.snapshot().freshness, Freshness::Fresh);
    assert!(cache.fresh_view().is_ok());
}

#[tokio::test]
async fn before_bootstrap_the_view_has_no_stores() {
    let mut env = Env::start(config()).await;
    let cache = PdCache::for_client(env.client.clone(), cache_config());
    let view = cache.refresh().await.unwrap();
    assert!(!view.bootstrapped && view.stores.is_empty());

    let mut events = cache.subscribe();
    let id = env.add_store(1).await;
    cache.request_refresh();
    let added = next_event(&mut events, |e| match e {
        PdEvent::StoreAdded { store_id, address } => Some((*store_id, address.clone())),
        _ => None,
    })
    .await;
    assert_eq!(added, (id, "tikv-1:20160".to_owned()));
    assert!(cache.snapshot().view.unwrap().bootstrapped);
}

#[tokio::test]
async fn a_stopped_store_changing_state_is_an_event() {
    let env = Env::with_stores(3, 3).await;
    let cache = PdCache::for_client(env.client.clone(), cache_config());
    cache.refresh().await.unwrap();
    let mut events = cache.subscribe();
    // A registered wait makes the cache poll fast on its own.
    let _wait = cache.register_wait("store 3 stops");

    let s3 = env.id(3);
    env.ctl().stop_store(s3).await.unwrap();
    env.run(Duration::from_secs(3));
    let changes = next_event(&mut events, |e| match e {
        PdEvent::StoreChanged { store_id, changes, .. } if *store_id == s3 => Some(changes.clone()),
        _ => None,
    })
    .await;
    assert!(changes.contains(&"state_name"), "{changes:?}");
    let view = cache.snapshot().view.unwrap();
    assert_eq!(view.store(s3).unwrap().state_name, StateName::Disconnected);
    assert_eq!(view.store(env.id(1)).unwrap().state_name, StateName::Up);
}

#[tokio::test]
async fn a_write_through_the_client_refreshes_the_cache_at_once() {
    let env = Env::with_stores(3, 3).await;
    let cache = PdCache::for_client(env.client.clone(), cache_config());
    cache.refresh().await.unwrap();
    let polls = cache.polls_completed();
    let mut events = cache.subscribe();
    assert!(cache.last_write_at().is_none());

    // No wait is registered and the slow interval is an hour: only the write can poll.
    let s2 = env.id(2);
    env.client.add_evict_leader(s2).await.unwrap();
    assert!(cache.last_write_at().is_some());
    let changes = next_event(&mut events, |e| match e {
        PdEvent::StoreChanged { store_id, changes, .. } if *store_id == s2 => Some(changes.clone()),
        _ => None,
    })
    .await;
    assert!(changes.contains(&"pause_leader_transfer_in"), "{changes:?}");
    assert!(cache.polls_completed() > polls);
    let snapshot = cache.snapshot();
    assert_eq!(snapshot.freshness, Freshness::Fresh);
    assert!(snapshot.view.unwrap().store(s2).unwrap().pause_leader_transfer_in);

    // A refused write is a write too (PD answered): the view before it is not fresh.
    let before = cache.polls_completed();
    let error = env.client.delete_store(999_999, false).await.unwrap_err();
    assert!(error.is_not_found());
    tokio::time::timeout(REAL_BOUND, async {
        while cache.polls_completed() == before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("no poll after the refused write");
}

#[tokio::test]
async fn polls_fail_during_quorum_loss_keeping_the_last_view_then_recover() {
    let env = Env::with_stores_and(Config { members: 3, ..config() }, 1).await;
    let cache = PdCache::for_client(env.client.clone(), cache_config());
    let good = cache.refresh().await.unwrap();
    let mut events = cache.subscribe();

    env.ctl().stop_member("pd-0").await.unwrap();
    env.ctl().stop_member("pd-2").await.unwrap();
    let error = cache.refresh().await.unwrap_err();
    assert!(matches!(error, PdError::NoLeader { .. }), "{error:?}");
    let failing = next_event(&mut events, |e| match e {
        PdEvent::PollFailing { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(failing, PdError::NoLeader { .. }), "{failing:?}");

    // The last good view stays, marked stale.
    let snapshot = cache.snapshot();
    assert_eq!(snapshot.freshness, Freshness::Stale(StaleReason::PollFailing));
    assert_eq!(snapshot.view.as_deref(), Some(&*good));
    assert!(snapshot.last_error.is_some());
    let not_fresh = cache.fresh_view().unwrap_err();
    assert_eq!(not_fresh.freshness, Freshness::Stale(StaleReason::PollFailing));
    // A second failure is not a second PollFailing event.
    assert!(cache.refresh().await.is_err());
    assert_eq!(cache.snapshot().last_error.unwrap().consecutive, 2);

    env.ctl().start_member("pd-2").await.unwrap();
    env.run(Duration::from_secs(1));
    let view = cache.refresh().await.unwrap();
    next_event(&mut events, |e| matches!(e, PdEvent::PollRecovered).then_some(())).await;
    assert_eq!(cache.snapshot().freshness, Freshness::Fresh);
    assert_eq!(view.stores.len(), 1);
    assert!(view.leader.is_some());
    // The stopped member shows unhealthy.
    assert_eq!(view.member("pd-0").unwrap().healthy, Some(false));
}

#[tokio::test]
async fn the_view_carries_the_evict_leader_entries_and_the_replication_config() {
    let env = Env::with_stores_and(
        Config { max_replicas: 3, location_labels: vec!["zone".into(), "host".into()], ..config() },
        3,
    )
    .await;
    let cache = PdCache::for_client(env.client.clone(), cache_config());
    let view = cache.refresh().await.unwrap();
    // No evict-leader scheduler (its config answers 404): no entry, and no poll error.
    assert!(view.evict_leader_stores.is_empty());
    assert_eq!(view.replication.max_replicas, 3);
    assert_eq!(view.replication.location_labels, ["zone", "host"]);
    assert!(view.replication.enable_placement_rules);
    let mut events = cache.subscribe();

    let (s1, s2) = (env.id(1), env.id(2));
    env.client.add_evict_leader(s2).await.unwrap();
    let evicting = next_event(&mut events, |e| match e {
        PdEvent::EvictLeaderChanged { store_id, evicting } if *store_id == s2 => Some(*evicting),
        _ => None,
    })
    .await;
    assert!(evicting);
    env.client.add_evict_leader(s1).await.unwrap();
    next_event(&mut events, |e| {
        matches!(e, PdEvent::EvictLeaderChanged { store_id, evicting: true } if *store_id == s1).then_some(())
    })
    .await;
    let view = cache.snapshot().view.unwrap();
    assert_eq!(view.evict_leader_stores, std::collections::BTreeSet::from([s1, s2]));
    assert_eq!(cache.snapshot().freshness, Freshness::Fresh);

    // An SRE changes the replication config (as pd-ctl does); the next poll sees it.
    let url = format!("{}/pd/api/v1/config/replicate", env.sim.url());
    let answer = plain_http()
        .post(url)
        .json(&serde_json::json!({ "max-replicas": 5, "location-labels": "zone" }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
    cache.request_refresh();
    let (from, to) = next_event(&mut events, |e| match e {
        PdEvent::ReplicationChanged { from, to } => Some((from.clone(), to.clone())),
        _ => None,
    })
    .await;
    assert_eq!((from.max_replicas, to.max_replicas), (3, 5));
    assert_eq!(to.location_labels, ["zone"]);

    // Removing the last entry removes the scheduler: the set is empty again.
    assert!(env.client.remove_evict_leader(s1).await.unwrap());
    assert!(env.client.remove_evict_leader(s2).await.unwrap());
    let view = cache.refresh().await.unwrap();
    assert!(view.evict_leader_stores.is_empty());
    assert!(cache.snapshot().last_error.is_none());
}

/// A plain-HTTP client outside the operator's, as an SRE's tool would be.
fn plain_http() -> reqwest::Client {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder().tls_backend_preconfigured(tls).no_proxy().build().unwrap()
}
