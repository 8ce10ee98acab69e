//! The cache on tokio's paused clock, driven by an in-memory PD: poll counts, refresh
//! after writes, stale views on failure, events once per change, cluster ID.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::types::{Member, MemberHealth, Members, NodeState, ReplicationConfig, StateName, Store, StoreState};

#[derive(Default)]
struct FakeState {
    cluster_id: u64,
    bootstrapped: bool,
    stores: BTreeMap<u64, Store>,
    members: Vec<Member>,
    leader: Option<String>,
    unhealthy: Vec<String>,
    evicting: BTreeSet<u64>,
    replication: ReplicationConfig,
    fail_with: Option<PdError>,
    polls: usize,
    /// Requests per endpoint.
    reads: BTreeMap<&'static str, usize>,
}

#[derive(Clone, Default)]
struct FakePd(Arc<Mutex<FakeState>>);

impl FakePd {
    fn new() -> Self {
        let fake = FakePd::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.cluster_id = 7_401_234_567_890_123_456;
            s.bootstrapped = true;
            for id in [1, 4, 5] {
                s.stores.insert(id, store(id));
            }
            for i in 0..3 {
                s.members.push(Member {
                    name: format!("pd-{i}"),
                    member_id: 13_405_214_531_421_069_331 - i,
                    client_urls: vec![format!("http://pd-{i}.pd-peer:2379")],
                    ..Member::default()
                });
            }
            s.leader = Some("pd-0".into());
            s.replication = replication(3, &["zone", "host"]);
        }
        fake
    }

    fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }

    fn polls(&self) -> usize {
        self.with(|s| s.polls)
    }

    fn reads(&self) -> BTreeMap<&'static str, usize> {
        self.with(|s| s.reads.clone())
    }

    fn total_reads(&self) -> usize {
        self.with(|s| s.reads.values().sum())
    }

    fn read(&self, endpoint: &'static str) {
        self.with(|s| *s.reads.entry(endpoint).or_default() += 1);
    }
}

fn replication(max_replicas: u64, location_labels: &[&str]) -> ReplicationConfig {
    ReplicationConfig {
        max_replicas,
        location_labels: location_labels.iter().map(|l| l.to_string()).collect(),
        enable_placement_rules: true,
        ..ReplicationConfig::default()
    }
}

fn store(id: u64) -> Store {
    Store {
        id,
        address: format!("tikv-{id}.tikv-peer:20160"),
        peer_address: None,
        status_address: format!("tikv-{id}.tikv-peer:20180"),
        labels: BTreeMap::new(),
        version: "8.5.0".into(),
        git_hash: String::new(),
        state: StoreState::Up,
        node_state: NodeState::Serving,
        state_name: StateName::Up,
        physically_destroyed: false,
        start_time: None,
        last_heartbeat: None,
        uptime: None,
        capacity_bytes: Some(100 << 30),
        available_bytes: Some(90 << 30),
        used_bytes: Some(1 << 30),
        leader_count: 10,
        region_count: 30,
        leader_size: 10,
        region_size: 30,
        leader_weight: 1.0,
        region_weight: 1.0,
        learner_count: 0,
        pending_peer_count: 0,
        is_busy: false,
        pause_leader_transfer_in: false,
        pause_leader_transfer_out: false,
    }
}

impl PdApi for FakePd {
    async fn cluster_id(&self) -> Result<u64> {
        self.read("cluster");
        self.with(|s| s.fail_with.clone().map_or(Ok(s.cluster_id), Err))
    }

    async fn all_stores(&self) -> Result<Vec<Store>> {
        self.read("stores");
        self.with(|s| {
            s.polls += 1;
            if let Some(e) = &s.fail_with {
                return Err(e.clone());
            }
            if !s.bootstrapped {
                return Err(PdError::NotBootstrapped);
            }
            Ok(s.stores.values().cloned().collect())
        })
    }

    async fn members(&self) -> Result<Members> {
        self.read("members");
        self.with(|s| {
            let leader = s.leader.as_ref().and_then(|l| s.members.iter().find(|m| &m.name == l)).cloned();
            Ok(Members {
                cluster_id: s.cluster_id,
                members: s.members.clone(),
                leader: leader.clone(),
                etcd_leader: leader,
            })
        })
    }

    async fn health(&self) -> Result<Vec<MemberHealth>> {
        self.read("health");
        self.with(|s| {
            Ok(s.members
                .iter()
                .map(|m| MemberHealth {
                    name: m.name.clone(),
                    member_id: m.member_id,
                    client_urls: m.client_urls.clone(),
                    health: !s.unhealthy.contains(&m.name),
                })
                .collect())
        })
    }

    async fn evict_leader_stores(&self) -> Result<BTreeSet<u64>> {
        self.read("schedulers");
        self.with(|s| Ok(s.evicting.clone()))
    }

    async fn replication_config(&self) -> Result<ReplicationConfig> {
        self.read("config");
        self.with(|s| Ok(s.replication.clone()))
    }
}

fn config() -> CacheConfig {
    CacheConfig {
        fast_interval: Duration::from_secs(1),
        slow_interval: Duration::from_secs(30),
        idle_interval: Duration::from_secs(60),
        idle_after: Duration::from_secs(120),
        fresh_for: Duration::from_secs(5),
        event_capacity: 64,
        ..CacheConfig::default()
    }
}

/// Lets time pass on the paused clock; the cache's timers fire in order meanwhile.
async fn pass(seconds: f64) {
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<PdEvent>) -> Vec<PdEvent> {
    let mut events = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(event) => events.push(event),
            Err(TryRecvError::Empty) => return events,
            Err(other) => panic!("{other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn polls_slowly_and_fast_while_a_wait_is_registered() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), config());

    pass(95.5).await;
    assert_eq!(pd.polls(), 4, "t = 0, 30, 60, 90");

    let guard = cache.register_wait("evict leaders of store 4");
    assert_eq!(cache.waits(), ["evict leaders of store 4"]);
    pass(10.25).await;
    // Registered at 95.5, last poll at 90: due at once, then every second: 95.5, 96.5 ... 105.5.
    assert_eq!(pd.polls(), 4 + 11);

    drop(guard);
    assert!(cache.waits().is_empty());
    pass(61.0).await;
    // Back to 30 s from the last poll (105.5): 135.5, 165.5.
    assert_eq!(pd.polls(), 15 + 2);
}

#[tokio::test(start_paused = true)]
async fn a_write_refreshes_at_once_and_makes_older_views_stale() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), config());
    pass(1.0).await;
    assert_eq!(pd.polls(), 1);
    assert!(cache.fresh_view().is_ok());

    cache.note_write();
    let snapshot = cache.snapshot();
    assert_eq!(snapshot.freshness, Freshness::Stale(StaleReason::OlderThanLastWrite), "read before the write");
    pass(0.001).await;
    assert_eq!(pd.polls(), 2, "polled right after the write, not 30 s later");
    assert!(cache.fresh_view().is_ok());

    pass(5.5).await;
    let err = cache.fresh_view().unwrap_err();
    assert!(matches!(err.freshness, Freshness::Stale(StaleReason::TooOld { .. })), "{err}");
    pass(0.001).await;
    assert_eq!(pd.polls(), 3, "asking for a fresh view of an old one requests a poll");
    assert!(cache.fresh_view().is_ok());
}

/// Real time and a real socket here: the client writes to an HTTP fake, and the cache
/// (reading an in-memory PD) must poll at once although its intervals are an hour.
#[tokio::test]
async fn writes_through_the_client_refresh_the_cache() {
    use crate::client::fake::{FakePd as HttpFake, Reply};

    let http = HttpFake::start().await;
    http.on("DELETE", "/pd/api/v1/store/4", Reply::json(200, "\"The store is set as Offline.\""));
    let client = PdClient::builder([http.url()]).system_proxy(false).build().unwrap();
    let pd = FakePd::new();
    let hour = Duration::from_secs(3600);
    let cache = PdCache::spawn(pd.clone(), CacheConfig { fast_interval: hour, slow_interval: hour, ..config() });
    client.set_write_observer(Some(cache.write_observer()));
    let mut events = cache.subscribe();
    cache.refresh().await.unwrap();
    drain(&mut events);
    assert!(cache.last_write_at().is_none());

    pd.with(|s| s.stores.get_mut(&4).unwrap().node_state = NodeState::Removing);
    client.delete_store(4, false).await.unwrap();
    assert!(cache.last_write_at().is_some());
    // The bound only keeps a broken build from hanging; the poll follows the write at once.
    let event =
        tokio::time::timeout(Duration::from_secs(60), events.recv()).await.expect("no poll after the write").unwrap();
    assert!(matches!(event, PdEvent::StoreChanged { store_id: 4, .. }), "{event:?}");
    assert_eq!(pd.polls(), 2);
}

#[tokio::test(start_paused = true)]
async fn refresh_waits_for_a_poll_that_started_after_it() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), config());
    let view = cache.refresh().await.unwrap();
    assert_eq!(view.stores.len(), 3);
    pd.with(|s| s.stores.remove(&5));
    let view = cache.refresh().await.unwrap();
    assert_eq!(view.stores.len(), 2);
    assert_eq!(pd.polls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_poll_keeps_the_last_view_and_marks_it_stale() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), config());
    assert_eq!(cache.snapshot().freshness, Freshness::Unavailable);
    let mut events = cache.subscribe();
    cache.refresh().await.unwrap();
    drain(&mut events);

    let no_leader = PdError::NoLeader { status: 503, message: "redirect finds no leader".into() };
    pd.with(|s| {
        s.fail_with = Some(no_leader.clone());
        s.stores.clear();
    });
    let err = cache.refresh().await.unwrap_err();
    assert!(matches!(err, PdError::NoLeader { .. }));
    let snapshot = cache.snapshot();
    assert_eq!(snapshot.freshness, Freshness::Stale(StaleReason::PollFailing));
    assert_eq!(snapshot.view.unwrap().stores.len(), 3, "a failed poll is not \"no stores\"");
    assert_eq!(snapshot.last_error.as_ref().map(|f| f.consecutive), Some(1));
    assert!(cache.fresh_view().is_err());
    let _ = cache.refresh().await;
    assert_eq!(cache.snapshot().last_error.map(|f| f.consecutive), Some(2));

    let seen = drain(&mut events);
    assert_eq!(seen.len(), 1, "one PollFailing per outage: {seen:?}");
    assert!(matches!(seen[0], PdEvent::PollFailing { .. }));

    pd.with(|s| s.fail_with = None);
    let view = cache.refresh().await.unwrap();
    assert!(view.stores.is_empty(), "now PD really says there are none");
    assert_eq!(cache.snapshot().freshness, Freshness::Fresh);
    let seen = drain(&mut events);
    assert!(seen.iter().any(|e| matches!(e, PdEvent::PollRecovered)));
    assert_eq!(seen.iter().filter(|e| matches!(e, PdEvent::StoreRemoved { .. })).count(), 3);
}

#[tokio::test(start_paused = true)]
async fn never_polled_successfully_is_unavailable() {
    let pd = FakePd::new();
    pd.with(|s| s.fail_with = Some(PdError::Config("boom".into())));
    let cache = PdCache::spawn(pd, config());
    assert!(cache.refresh().await.is_err());
    let err = cache.fresh_view().unwrap_err();
    assert_eq!(err.freshness, Freshness::Unavailable);
    assert!(err.to_string().contains("boom"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn not_bootstrapped_is_an_empty_view() {
    let pd = FakePd::new();
    pd.with(|s| s.bootstrapped = false);
    let cache = PdCache::spawn(pd, config());
    let view = cache.refresh().await.unwrap();
    assert!(!view.bootstrapped && view.stores.is_empty());
    assert_eq!(cache.snapshot().freshness, Freshness::Fresh);
}

#[tokio::test(start_paused = true)]
async fn change_events_are_emitted_once_per_change() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), config());
    let mut events = cache.subscribe();
    cache.refresh().await.unwrap();
    let initial = drain(&mut events);
    assert_eq!(initial.iter().filter(|e| matches!(e, PdEvent::StoreAdded { .. })).count(), 3);
    assert_eq!(initial.iter().filter(|e| matches!(e, PdEvent::MemberAdded { .. })).count(), 3);
    assert!(initial.iter().any(|e| matches!(e, PdEvent::LeaderChanged { from: None, to: Some(to) } if to == "pd-0")));

    // Noise that changes every heartbeat is not a change.
    pd.with(|s| {
        let st = s.stores.get_mut(&4).unwrap();
        st.available_bytes = Some(80 << 30);
        st.leader_count = 7;
        st.region_count = 31;
    });
    cache.refresh().await.unwrap();
    assert!(drain(&mut events).is_empty());

    // Store 4 taken offline and its leaders gone; a new store; pd-2 unhealthy; leader moves.
    pd.with(|s| {
        let st = s.stores.get_mut(&4).unwrap();
        st.state = StoreState::Offline;
        st.node_state = NodeState::Removing;
        st.state_name = StateName::Offline;
        st.leader_count = 0;
        s.stores.insert(9, store(9));
        s.unhealthy.push("pd-2".into());
        s.leader = Some("pd-1".into());
    });
    cache.refresh().await.unwrap();
    let seen = drain(&mut events);
    let changed: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            PdEvent::StoreChanged { store_id, changes, .. } => Some((*store_id, changes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(changed, [(4, vec!["state", "node_state", "state_name", "leader_count_zero"])]);
    assert!(seen.iter().any(|e| e.store_id() == Some(9) && matches!(e, PdEvent::StoreAdded { .. })));
    assert!(seen.iter().any(
        |e| matches!(e, PdEvent::MemberChanged { name, changes, .. } if name == "pd-2" && changes == &["health"])
    ));
    assert!(
        seen.iter()
            .any(|e| matches!(e, PdEvent::LeaderChanged { from: Some(f), to: Some(t) } if f == "pd-0" && t == "pd-1"))
    );
    assert_eq!(seen.len(), 4, "{seen:?}");

    // Polling again with nothing changed emits nothing.
    cache.refresh().await.unwrap();
    pass(31.0).await;
    assert!(drain(&mut events).is_empty());

    // The record disappears (remove-tombstone); a member leaves.
    pd.with(|s| {
        s.stores.remove(&4);
        s.members.retain(|m| m.name != "pd-2");
    });
    cache.refresh().await.unwrap();
    let seen = drain(&mut events);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().any(
            |e| matches!(e, PdEvent::StoreRemoved { store_id: 4, address } if address == "tikv-4.tikv-peer:20160")
        )
    );
    assert!(seen.iter().any(|e| e.member_name() == Some("pd-2") && matches!(e, PdEvent::MemberRemoved { .. })));
}

#[tokio::test(start_paused = true)]
async fn the_cluster_id_is_recorded_and_a_change_is_reported() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), config());
    assert_eq!(cache.cluster_id(), None);
    let mut events = cache.subscribe();
    cache.refresh().await.unwrap();
    assert_eq!(cache.cluster_id(), Some(7_401_234_567_890_123_456));
    drain(&mut events);

    pd.with(|s| s.cluster_id = 7_401_234_567_890_123_457);
    cache.refresh().await.unwrap();
    assert_eq!(cache.cluster_id(), Some(7_401_234_567_890_123_457));
    let seen = drain(&mut events);
    assert!(matches!(
        seen.as_slice(),
        [PdEvent::ClusterIdChanged { from: 7_401_234_567_890_123_456, to: 7_401_234_567_890_123_457 }]
    ));
    assert!(seen[0].is_cluster_wide());
}

#[tokio::test(start_paused = true)]
async fn the_view_finds_stores_and_members() {
    let pd = FakePd::new();
    pd.with(|s| {
        // A tombstone that used the same address before store 4 took it over.
        let mut old = store(2);
        old.address = "tikv-4.tikv-peer:20160".into();
        old.state = StoreState::Tombstone;
        old.node_state = NodeState::Removed;
        s.stores.insert(2, old);
        s.unhealthy.push("pd-1".into());
    });
    let cache = PdCache::spawn(pd, config());
    let view = cache.refresh().await.unwrap();
    assert_eq!(view.store_by_address("tikv-4.tikv-peer:20160").map(|s| s.id), Some(4));
    assert_eq!(view.store(2).map(Store::is_removed), Some(true));
    assert_eq!(view.member("pd-1").and_then(|m| m.healthy), Some(false));
    assert_eq!(view.member("pd-0").and_then(|m| m.healthy), Some(true));
    assert_eq!(view.member_by_id(13_405_214_531_421_069_331).map(|m| m.member.name.as_str()), Some("pd-0"));
    assert_eq!((view.leader.as_deref(), view.etcd_leader.as_deref()), (Some("pd-0"), Some("pd-0")));
}

#[tokio::test(start_paused = true)]
async fn polling_stops_when_the_cache_is_dropped() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), config());
    let guard = cache.register_wait("w");
    pass(2.5).await;
    let polls = pd.polls();
    drop(cache);
    pass(10.0).await;
    assert_eq!(pd.polls(), polls);
    drop(guard);
}

struct PanickingPd;

impl PdApi for PanickingPd {
    async fn cluster_id(&self) -> Result<u64> {
        panic!("simulated bug in the PD reader")
    }
    async fn all_stores(&self) -> Result<Vec<Store>> {
        Ok(Vec::new())
    }
    async fn members(&self) -> Result<Members> {
        Ok(Members::default())
    }
    async fn health(&self) -> Result<Vec<MemberHealth>> {
        Ok(Vec::new())
    }
    async fn evict_leader_stores(&self) -> Result<BTreeSet<u64>> {
        Ok(BTreeSet::new())
    }
    async fn replication_config(&self) -> Result<ReplicationConfig> {
        Ok(ReplicationConfig::default())
    }
}

#[tokio::test(start_paused = true)]
async fn refresh_reports_a_dead_poll_task_instead_of_hanging() {
    let cache = PdCache::spawn(PanickingPd, config());
    assert!(matches!(cache.refresh().await, Err(PdError::CacheStopped)));
    assert_eq!(cache.snapshot().freshness, Freshness::Unavailable);
}

#[tokio::test(start_paused = true)]
async fn the_view_knows_the_evict_leader_entries_and_the_replication_config() {
    let pd = FakePd::new();
    pd.with(|s| {
        s.evicting.insert(4);
        // An entry left on a store PD no longer lists is still an entry.
        s.evicting.insert(12);
    });
    let cache = PdCache::spawn(pd.clone(), config());
    let view = cache.refresh().await.unwrap();
    assert_eq!(view.evict_leader_stores, BTreeSet::from([4, 12]));
    assert!(view.is_evicting_leaders(4) && view.is_evicting_leaders(12) && !view.is_evicting_leaders(5));
    assert_eq!(view.replication.max_replicas, 3);
    assert_eq!(view.replication.location_labels, ["zone", "host"]);
    assert!(view.replication.enable_placement_rules);
    assert_eq!(pd.polls(), 1, "read in the same poll as the stores");
}

#[tokio::test(start_paused = true)]
async fn evict_leader_and_replication_changes_are_events() {
    let pd = FakePd::new();
    pd.with(|s| s.evicting.insert(4));
    let cache = PdCache::spawn(pd.clone(), config());
    let mut events = cache.subscribe();
    cache.refresh().await.unwrap();
    let initial = drain(&mut events);
    let evictions: Vec<_> = initial.iter().filter(|e| matches!(e, PdEvent::EvictLeaderChanged { .. })).collect();
    assert!(matches!(evictions.as_slice(), [PdEvent::EvictLeaderChanged { store_id: 4, evicting: true }]));
    assert!(!initial.iter().any(|e| matches!(e, PdEvent::ReplicationChanged { .. })), "nothing to change from");

    cache.refresh().await.unwrap();
    assert!(drain(&mut events).is_empty(), "unchanged entries and config are no event");

    // Store 4's entry removed, store 12's (unknown to PD's store list) added.
    pd.with(|s| s.evicting = BTreeSet::from([12]));
    cache.refresh().await.unwrap();
    let seen = drain(&mut events);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, PdEvent::EvictLeaderChanged { store_id: 12, evicting: true })));
    assert!(seen.iter().any(|e| matches!(e, PdEvent::EvictLeaderChanged { store_id: 4, evicting: false })));
    assert!(seen.iter().all(|e| e.store_address().is_none() && !e.is_cluster_wide()));
    assert_eq!(seen[0].store_id().max(seen[1].store_id()), Some(12), "routed by store ID");

    pd.with(|s| s.replication = replication(5, &["zone"]));
    cache.refresh().await.unwrap();
    let seen = drain(&mut events);
    match seen.as_slice() {
        [event @ PdEvent::ReplicationChanged { from, to }] => {
            assert_eq!((from.max_replicas, to.max_replicas), (3, 5));
            assert_eq!(to.location_labels, ["zone"]);
            assert!(event.is_cluster_wide());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_evict_leader_or_config_read_fails_the_poll() {
    struct FailingConfig(FakePd);
    impl PdApi for FailingConfig {
        async fn cluster_id(&self) -> Result<u64> {
            self.0.cluster_id().await
        }
        async fn all_stores(&self) -> Result<Vec<Store>> {
            self.0.all_stores().await
        }
        async fn members(&self) -> Result<Members> {
            self.0.members().await
        }
        async fn health(&self) -> Result<Vec<MemberHealth>> {
            self.0.health().await
        }
        async fn evict_leader_stores(&self) -> Result<BTreeSet<u64>> {
            self.0.evict_leader_stores().await
        }
        async fn replication_config(&self) -> Result<ReplicationConfig> {
            Err(PdError::NoLeader { status: 503, message: "no leader".into() })
        }
    }
    let cache = PdCache::spawn(FailingConfig(FakePd::new()), config());
    assert!(cache.refresh().await.is_err());
    assert_eq!(cache.snapshot().freshness, Freshness::Unavailable, "no view without every part of it");
}

#[tokio::test(start_paused = true)]
async fn an_idle_cluster_costs_two_reads_a_minute() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), CacheConfig::default());
    pass(0.5).await;
    let first = pd.reads();
    assert_eq!(first.values().sum::<usize>(), 5, "a poll reads everything but the cluster ID: {first:?}");
    assert_eq!(first.get("cluster"), None, "the members' header carries the cluster ID");
    assert_eq!(cache.poll_mode(), PollMode::Slow, "the first view was a change");
    // Slow until two minutes after that change, then idle.
    pass(150.0).await;
    assert_eq!(cache.poll_mode(), PollMode::Idle);
    let before = pd.total_reads();
    pass(900.0).await;
    let reads = pd.total_reads() - before;
    assert!(reads <= 30, "{reads} reads in fifteen idle minutes (at most 2 a minute)");
    assert!(reads >= 20, "{reads} reads in fifteen idle minutes: the cluster is still watched");
}

#[tokio::test(start_paused = true)]
async fn every_poll_reads_health_entries_and_config_anew() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), config());
    pass(200.0).await;
    pd.with(|s| {
        s.evicting.insert(4);
        s.unhealthy.push("pd-1".into());
    });
    // The next idle poll (at 240 s) sees them, though no store or member changed.
    pass(41.0).await;
    let view = cache.snapshot().view.unwrap();
    assert!(view.is_evicting_leaders(4));
    assert_eq!(view.member("pd-1").and_then(|m| m.healthy), Some(false));
}

#[tokio::test(start_paused = true)]
async fn a_write_or_a_wait_polls_at_once_and_fast() {
    let pd = FakePd::new();
    let cache = PdCache::spawn(pd.clone(), config());
    pass(200.0).await;
    let before = pd.polls();
    cache.note_write();
    pass(0.001).await;
    assert_eq!(pd.polls(), before + 1);
    assert_eq!(cache.snapshot().freshness, Freshness::Fresh);
    let guard = cache.register_wait("leaders to move");
    assert_eq!(cache.poll_mode(), PollMode::Fast);
    pass(3.0).await;
    assert_eq!(pd.polls(), before + 1 + 3, "a poll every fast interval");
    drop(guard);
    assert_eq!(cache.poll_mode(), PollMode::Slow);
}

#[tokio::test(start_paused = true)]
async fn the_v2_way_reports_every_object_every_poll() {
    let pd = FakePd::new();
    let v2 = CacheConfig {
        fast_interval: Duration::from_secs(30),
        slow_interval: Duration::from_secs(30),
        idle_interval: Duration::from_secs(30),
        events_every_poll: true,
        ..config()
    };
    let cache = PdCache::spawn(pd.clone(), v2);
    let mut events = cache.subscribe();
    pass(0.5).await;
    drain(&mut events);
    let before = pd.polls();
    pass(60.0).await;
    assert_eq!(pd.polls() - before, 2);
    let seen = drain(&mut events);
    let stores = seen.iter().filter(|e| matches!(e, PdEvent::StoreChanged { changes, .. } if changes == &["polled"]));
    let members = seen.iter().filter(|e| matches!(e, PdEvent::MemberChanged { changes, .. } if changes == &["polled"]));
    assert_eq!((stores.count(), members.count()), (6, 6), "three stores and three members, twice: {seen:?}");
}

/// A clock running `speed` times tokio's (paused) one, as the simulators' does.
struct FastClock {
    base: Instant,
    speed: u32,
}

impl CacheClock for FastClock {
    fn now(&self) -> Instant {
        self.base + (Instant::now() - self.base) * self.speed
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        let real = self.base + deadline.saturating_duration_since(self.base) / self.speed;
        Box::pin(tokio::time::sleep_until(real))
    }
}

#[tokio::test(start_paused = true)]
async fn intervals_and_ages_are_on_the_caches_clock() {
    let pd = FakePd::new();
    let clock = Arc::new(FastClock { base: Instant::now(), speed: 20 });
    let cache = PdCache::spawn_on(pd.clone(), config(), clock);
    // 4.6 s of tokio time are 92 simulated seconds: polls at 0, 30, 60 and 90.
    pass(4.6).await;
    assert_eq!(pd.polls(), 4);
    let age = cache.view_age().unwrap();
    assert_eq!(age, Duration::from_secs(2), "aged on the cache's clock");
    assert_eq!(cache.snapshot().freshness, Freshness::Fresh, "2 simulated seconds old");
    cache.refresh().await.unwrap();
    pass(0.3).await;
    assert!(
        matches!(cache.snapshot().freshness, Freshness::Stale(StaleReason::TooOld { .. })),
        "6 simulated seconds old"
    );
}
