//! The simulated cluster as PD sees it, advanced as a discrete-event simulation on the
//! shared clock: every API call first catches the model up to "now", processing each
//! due event (node-state check, scheduling round, operator completion, PD campaign, a
//! PD member's leader-priority check) at its own simulated instant, so results do not
//! depend on when the background driver happened to wake. Store heartbeats are caught
//! up in one step before anything reads them, and checks and rounds that could find
//! nothing to do are skipped, so a jump of the clock costs the changes it brings, not
//! the time it spans.

pub mod data;
pub mod limit;
pub mod member;
pub mod region;
mod schedule;
pub mod store;
pub mod version;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sim_clock::SimInstant;

use self::data::Data;
use self::limit::TokenBucket;
use self::member::{Member, Members};
use self::region::{Peer, Region, seed_key};
use self::store::{ConfigFile, Label, NodeState, Store};
use self::version::{Version, is_compatible};
use crate::preset::Knobs;

pub const EVICT_LEADER: &str = "evict-leader-scheduler";
pub const BALANCE_LEADER: &str = "balance-leader-scheduler";
pub const BALANCE_REGION: &str = "balance-region-scheduler";
/// Schedulers a fresh PD runs (besides evict-leader, which exists only while used).
pub const DEFAULT_SCHEDULERS: [&str; 4] =
    [BALANCE_REGION, BALANCE_LEADER, "balance-hot-region-scheduler", "evict-slow-store-scheduler"];
/// PD's threshold below which new stores become Serving at once.
pub const INIT_CLUSTER_REGION_THRESHOLD: usize = 100;
/// Longest sleep of an idle scheduler with nothing time-driven pending.
const QUIESCENT_CAP: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Serialize)]
pub struct Replication {
    pub max_replicas: usize,
    pub location_labels: Vec<String>,
    pub strictly_match_label: bool,
    pub enable_placement_rules: bool,
    pub isolation_level: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvictLeader {
    pub stores: BTreeSet<u64>,
    pub batch: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum OpKind {
    AddPeer { target: u64, replace: Option<u64> },
    RemovePeer { store: u64 },
    TransferLeader { from: u64, to: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpOrigin {
    Replica,
    BalanceRegion,
    BalanceLeader,
    EvictLeader,
}

#[derive(Clone, Debug, Serialize)]
pub struct Operator {
    pub region: u64,
    pub kind: OpKind,
    pub origin: OpOrigin,
    #[serde(skip)]
    pub finish_at: SimInstant,
}

/// Per-store figures derived from the regions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub leader_count: u64,
    pub region_count: u64,
    pub leader_size: u64,
    pub region_size: u64,
    pub learner_count: u64,
    pub pending_peer_count: u64,
}

/// What a starting TiKV process brings: its advertised addresses, labels and version,
/// and the store ID from its data directory if it has one.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct StoreSpec {
    pub address: String,
    pub peer_address: String,
    /// Advertised status address; empty means the simulator's own listener address.
    pub status_address: String,
    pub labels: Vec<Label>,
    /// Empty: a new store runs the cluster version (8.5.0 before the first store), a
    /// restarted one keeps the version it had.
    pub version: String,
    pub git_hash: String,
    pub deploy_path: String,
    /// Capacity in bytes; 0 means 100 GiB.
    pub capacity: u64,
    /// The store ID kept in the data directory (a reused PVC), if any.
    pub store_id: Option<u64>,
    /// The config the process read at start (shown on the status server's `/config`);
    /// none: a restart reads what its config file holds (see [`Store::file_config`]).
    pub config: Option<serde_json::Value>,
    /// Where its config file is (none: a default `last_tikv.toml`, or the last start's
    /// file for a restart).
    pub config_file: Option<ConfigFile>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreStartError {
    #[error("store {0} is tombstone")]
    Tombstone(u64),
    #[error("duplicated store address: {address}, already registered by store {existing}")]
    DuplicatedAddress { address: String, existing: u64 },
    #[error("store address must not be empty")]
    EmptyAddress,
    #[error("store {0} is already running")]
    AlreadyRunning(u64),
    /// PD's `checkStoreVersion` (the double space is PD's).
    #[error("version should compatible with version  {cluster}, got {store}")]
    IncompatibleVersion { cluster: String, store: String },
    #[error("invalid put store id:{id} address:{address:?} version:{version:?}, error: {error}")]
    InvalidVersion { id: u64, address: String, version: String, error: String },
    /// Not PD's: the simulator refuses to start a store whose data directory was
    /// destroyed (nothing on a new disk could name that store ID).
    #[error("store {0}'s data was destroyed")]
    DataDestroyed(u64),
}

/// PD's store errors, with PD's texts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("[PD:core:ErrStoreNotFound]store {0} not found")]
    NotFound(u64),
    #[error("[PD:core:ErrStoreRemoved]store {0} has been removed")]
    Removed(u64),
    #[error("[PD:core:ErrStoreDestroyed]store {0} has been physically destroyed")]
    Destroyed(u64),
    #[error(
        "[PD:core:ErrStoresNotEnough]can not remove store {id} since the number of up stores would be {up} while need {need}"
    )]
    NotEnough { id: u64, up: usize, need: usize },
    #[error(
        "[PD:core:ErrNoStoreForRegionLeader]can not remove store {0} since there are no extra up store to store the leader"
    )]
    NoStoreForLeader(u64),
}

pub struct SeedSpec {
    pub regions: usize,
    pub region_size_mib: u64,
}

pub struct Cluster {
    pub cluster_id: u64,
    pub bootstrapped: bool,
    pub bootstrap_time: Option<SimInstant>,
    next_id: u64,
    pub replication: Replication,
    pub knobs: Knobs,
    pub stores: BTreeMap<u64, Store>,
    pub regions: BTreeMap<u64, Region>,
    pub members: Members,
    pub evict_leader: Option<EvictLeader>,
    /// Stores whose leaders cannot be transferred away (a control-API fault, as in
    /// tikv/tikv#7949): PD still creates transfer-leader operators from them, and each
    /// fails when due, the leader staying put; so does a replica move or removal that must
    /// first move a leader off such a store. Everything else about the store goes on.
    pub stalled_leader_transfers: BTreeSet<u64>,
    /// Enabled schedulers other than evict-leader.
    pub schedulers: BTreeSet<String>,
    /// At most one operator per region, keyed by region ID.
    pub ops: BTreeMap<u64, Operator>,
    sched_next: SimInstant,
    sched_interval: Duration,
    /// Set by a round that had work it could not start for lack of store-limit tokens.
    pub(crate) round_blocked: bool,
    /// The next node-state check, on the grid of checks every `node_state_check` from
    /// `node_check_anchor`; `None` while no check could change anything.
    node_check_next: Option<SimInstant>,
    node_check_anchor: SimInstant,
    pub rng: StdRng,
    /// Simulated time the model has been advanced to.
    pub now: SimInstant,
    wall_origin: SystemTime,
    seed: SeedSpec,
    pub pd_version: String,
    /// PD's `cluster-version`: 0.0.0 until the first store registers, then the lowest
    /// version among the stores that are not Removed (`OnStoreVersionChange`), or what
    /// `POST /config/cluster-version` set last.
    pub cluster_version: Version,
    /// Events processed so far: what advancing the model costs.
    pub events_run: u64,
    /// PD config items set through `POST /config` that the simulation does not act on,
    /// by their full JSON path (`schedule.max-merge-region-size`, `log.level`): shown by
    /// `GET /config`, nothing more.
    pub pd_config: BTreeMap<String, serde_json::Value>,
    /// What the regions' replicas hold (see [`data`]).
    pub data: Data,
}

impl Cluster {
    pub fn new(
        cluster_id: u64,
        replication: Replication,
        knobs: Knobs,
        seed: SeedSpec,
        rng_seed: u64,
        now: SimInstant,
        wall_now: SystemTime,
    ) -> Cluster {
        Cluster {
            cluster_id,
            bootstrapped: false,
            bootstrap_time: None,
            next_id: 1,
            replication,
            sched_interval: knobs.schedule_min_interval,
            round_blocked: false,
            knobs,
            stores: BTreeMap::new(),
            regions: BTreeMap::new(),
            members: Members::default(),
            evict_leader: None,
            stalled_leader_transfers: BTreeSet::new(),
            schedulers: DEFAULT_SCHEDULERS.iter().map(|s| s.to_string()).collect(),
            ops: BTreeMap::new(),
            sched_next: now,
            node_check_next: Some(now),
            node_check_anchor: now,
            rng: StdRng::seed_from_u64(rng_seed),
            now,
            wall_origin: wall_now - now.since_start(),
            seed,
            pd_version: "8.5.0".to_owned(),
            cluster_version: Version::ZERO,
            events_run: 0,
            pd_config: BTreeMap::new(),
            data: Data::default(),
        }
    }

    pub fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A random member ID above 2^53, as etcd's are in practice.
    pub fn alloc_member_id(&mut self) -> u64 {
        self.rng.random_range((1u64 << 60)..u64::MAX)
    }

    pub fn wall(&self, t: SimInstant) -> SystemTime {
        self.wall_origin + t.since_start()
    }

    pub fn set_knobs(&mut self, knobs: Knobs) {
        self.knobs = knobs.sanitised();
        self.poke();
    }

    /// Something changed: run a scheduling round now and at full pace.
    pub fn poke(&mut self) {
        self.sched_interval = self.knobs.schedule_min_interval;
        self.sched_next = self.sched_next.min(self.now);
        let check = self.node_check_after(self.now);
        self.node_check_next = Some(self.node_check_next.map_or(check, |next| next.min(check)));
    }

    /// The first node-state check strictly after `t` on the checks' grid.
    fn node_check_after(&self, t: SimInstant) -> SimInstant {
        next_on_grid(self.node_check_anchor, self.knobs.node_state_check, t)
    }

    /// After a check at `now`: the next one that could change something, so that idle
    /// checks cost nothing however far the clock jumps. A Preparing store is checked every
    /// period (it also serves once it has waited long enough). A Removing store becomes
    /// Tombstone only when its last region leaves, which an operator finishing does, and
    /// that pokes the checks back on ([`poke`](Self::poke)), as does any other change to
    /// the stores. A Tombstone record's garbage collection is due at the first check
    /// past it. The checks skipped in between would have found nothing to do.
    fn next_node_check(&self, now: SimInstant) -> Option<SimInstant> {
        if self.stores.values().any(|s| s.node_state == NodeState::Preparing) {
            return Some(now + self.knobs.node_state_check);
        }
        self.stores
            .values()
            .filter(|s| s.node_state == NodeState::Removed)
            .map(|s| s.last_heartbeat.unwrap_or(s.start_time) + self.knobs.tombstone_gc_after)
            .min()
            .map(|gc| self.node_check_after(gc.max(now)))
    }

    fn wake_at(&mut self, t: SimInstant) {
        self.sched_next = self.sched_next.min(t);
    }

    // ---- the event loop ----

    /// Processes every event due up to `target`, each at its own instant. The work done
    /// is proportional to the events that can change something, not to the time jumped:
    /// heartbeats are caught up in one step, idle checks and rounds are skipped.
    pub fn advance_to(&mut self, target: SimInstant) {
        loop {
            let (at, event) = self.next_event();
            if at > target {
                break;
            }
            self.catch_up_heartbeats(at, false);
            self.now = self.now.max(at);
            self.events_run += 1;
            self.run(event);
        }
        self.catch_up_heartbeats(target, true);
        self.now = self.now.max(target);
    }

    /// A heartbeat only moves a running store's `last_heartbeat`, and nothing acts on it
    /// by itself; so rather than one event per heartbeat, each store's heartbeats up to
    /// `until` (before it, or at it too if `inclusive`) are applied in one step before
    /// anything reads them.
    fn catch_up_heartbeats(&mut self, until: SimInstant, inclusive: bool) {
        let interval = self.knobs.store_heartbeat.as_nanos().max(1);
        for store in self.stores.values_mut().filter(|s| s.running && !s.is_removed()) {
            let due = if inclusive { store.next_heartbeat <= until } else { store.next_heartbeat < until };
            if !due {
                continue;
            }
            let behind = until.saturating_duration_since(store.next_heartbeat).as_nanos();
            let mut ticks = behind / interval;
            if !inclusive && ticks > 0 && behind.is_multiple_of(interval) {
                ticks -= 1;
            }
            let last = store.next_heartbeat
                + Duration::from_nanos(u64::try_from(ticks.saturating_mul(interval)).unwrap_or(u64::MAX));
            store.last_heartbeat = Some(last);
            store.next_heartbeat = last + self.knobs.store_heartbeat;
        }
    }

    /// When the next event is due (for the background driver).
    pub fn next_due(&self) -> SimInstant {
        self.next_event().0
    }

    fn next_event(&self) -> (SimInstant, Event) {
        let mut best = match self.node_check_next {
            Some(at) if at <= self.sched_next => (at, Event::NodeCheck),
            _ => (self.sched_next, Event::Schedule),
        };
        let mut consider = |at: SimInstant, event: Event| {
            if at < best.0 {
                best = (at, event);
            }
        };
        for op in self.ops.values() {
            consider(op.finish_at, Event::OpDone(op.region));
        }
        if let Some((at, _)) = self.members.election {
            consider(at, Event::Campaign);
        }
        if let Some((at, member)) = self.members.next_priority_check(self.now, self.knobs.leader_priority_check) {
            consider(at, Event::PriorityCheck(member));
        }
        best
    }

    fn run(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::NodeCheck => {
                self.node_state_check();
                self.node_check_anchor = now;
                self.node_check_next = self.next_node_check(now);
            }
            Event::Schedule => {
                self.round_blocked = false;
                let acted = self.schedule_round();
                self.sched_interval = if acted {
                    self.knobs.schedule_min_interval
                } else {
                    self.sched_interval.mul_f64(1.3).min(self.knobs.schedule_max_interval)
                };
                self.sched_next = now + self.sched_interval;
                if !acted && !self.round_blocked && self.ops.is_empty() {
                    // Nothing to do until time alone changes a store's standing; skip the
                    // idle rounds in between (they would find nothing either).
                    self.sched_next = self.sched_next.max(self.next_time_driven_change().min(now + QUIESCENT_CAP));
                }
            }
            Event::OpDone(region) => {
                self.finish_op(region);
                self.poke();
            }
            Event::Campaign => {
                self.members.campaign(&mut self.rng);
                self.reconcile_members();
            }
            Event::PriorityCheck(member) => {
                if self.members.priority_check_moves(member) {
                    let delay = self.pd_leader_change_delay();
                    self.members.check_priority(member, now, delay);
                }
            }
        }
    }

    /// The next instant at which a store's standing changes by the passage of time
    /// alone (raft election, Disconnected, down peers, Down). A store that heartbeats
    /// more often than a threshold never crosses it.
    fn next_time_driven_change(&self) -> SimInstant {
        let now = self.now;
        let k = &self.knobs;
        let mut next = now + QUIESCENT_CAP;
        for store in self.stores.values() {
            let hb = store.last_heartbeat.unwrap_or(store.start_time);
            let heartbeating = store.running && !store.is_removed();
            let mut times: Vec<SimInstant> = [k.disconnected_after, k.max_store_down_time]
                .into_iter()
                .filter(|threshold| !heartbeating || k.store_heartbeat > *threshold)
                .map(|threshold| hb + threshold)
                .collect();
            if let Some(stopped) = store.stopped_at.filter(|_| !store.running) {
                times.push(stopped + k.raft_election_timeout);
                times.push(stopped + k.max_peer_down_duration);
            }
            for t in times {
                // A threshold is crossed strictly after it: wake just past it.
                let t = t + Duration::from_millis(1);
                if t > now && t < next {
                    next = t;
                }
            }
        }
        next
    }

    // ---- stores ----

    /// A TiKV process starts (PutStore plus the first heartbeat). With `store_id` it is
    /// the same store coming back (a reused data directory); without, a new store.
    pub fn start_store(&mut self, spec: StoreSpec) -> Result<u64, StoreStartError> {
        if spec.address.is_empty() {
            return Err(StoreStartError::EmptyAddress);
        }
        let now = self.now;
        self.check_not_destroyed(spec.store_id)?;
        if let Some(id) = spec.store_id
            && let Some(store) = self.stores.get(&id)
        {
            if store.is_removed() {
                return Err(StoreStartError::Tombstone(id));
            }
            if store.running {
                return Err(StoreStartError::AlreadyRunning(id));
            }
        }
        self.check_store_version(&spec)?;
        for other in self.stores.values() {
            if Some(other.id) == spec.store_id || other.is_removed() || other.physically_destroyed {
                continue;
            }
            let clash = other.address == spec.address
                || (!spec.peer_address.is_empty() && other.peer_address == spec.peer_address);
            if clash {
                return Err(StoreStartError::DuplicatedAddress { address: spec.address.clone(), existing: other.id });
            }
        }
        let heartbeat = self.knobs.store_heartbeat;
        let id = match spec.store_id {
            Some(id) if self.stores.contains_key(&id) => {
                let store = self.stores.get_mut(&id).ok_or(StoreStartError::EmptyAddress)?;
                store.address = spec.address;
                store.peer_address = spec.peer_address;
                if !spec.status_address.is_empty() {
                    store.status_address = spec.status_address;
                }
                if !spec.version.is_empty() {
                    store.version = spec.version;
                }
                if !spec.git_hash.is_empty() {
                    store.git_hash = spec.git_hash;
                }
                if !spec.labels.is_empty() {
                    store.labels = spec.labels;
                }
                if let Some(config) = spec.config {
                    store.file_config = config;
                }
                store.config = store.file_config.clone();
                if let Some(file) = spec.config_file {
                    store.config_file = file;
                }
                store.starts += 1;
                if spec.capacity > 0 {
                    store.capacity = spec.capacity;
                }
                store.running = true;
                store.stopped_at = None;
                store.start_time = now;
                store.last_heartbeat = Some(now);
                store.next_heartbeat = now + heartbeat;
                self.catch_up_store(id);
                id
            }
            requested => {
                let id = match requested {
                    Some(id) => {
                        self.next_id = self.next_id.max(id + 1);
                        id
                    }
                    None => self.alloc_id(),
                };
                let store = Store {
                    id,
                    address: spec.address,
                    peer_address: spec.peer_address,
                    status_address: spec.status_address,
                    version: if spec.version.is_empty() { self.default_store_version() } else { spec.version },
                    git_hash: spec.git_hash,
                    deploy_path: spec.deploy_path,
                    labels: spec.labels,
                    node_state: NodeState::Preparing,
                    physically_destroyed: false,
                    capacity: if spec.capacity == 0 { 100 << 30 } else { spec.capacity },
                    start_time: now,
                    last_heartbeat: Some(now),
                    running: true,
                    stopped_at: None,
                    next_heartbeat: now + heartbeat,
                    add_peer: TokenBucket::new(self.knobs.store_limit_add_peer, now),
                    remove_peer: TokenBucket::new(self.knobs.store_limit_remove_peer, now),
                    saved_limits: None,
                    leader_weight: 1.0,
                    region_weight: 1.0,
                    config: spec.config.clone().unwrap_or(serde_json::Value::Null),
                    config_file: spec.config_file.unwrap_or_default(),
                    file_config: spec.config.unwrap_or(serde_json::Value::Null),
                    starts: 1,
                    removing_from: None,
                    preparing_from: now,
                };
                self.stores.insert(id, store);
                if !self.bootstrapped {
                    self.bootstrap(id);
                }
                id
            }
        };
        self.on_store_version_change();
        self.poke();
        Ok(id)
    }

    /// The version a store registering without one runs.
    fn default_store_version(&self) -> String {
        if self.cluster_version == Version::ZERO { "8.5.0".to_owned() } else { self.cluster_version.to_string() }
    }

    /// PD's `checkStoreVersion` on PutStore, for the version the starting process runs.
    fn check_store_version(&self, spec: &StoreSpec) -> Result<(), StoreStartError> {
        let known = spec.store_id.and_then(|id| self.stores.get(&id));
        let text = match (&spec.version, known) {
            (v, _) if !v.is_empty() => v.clone(),
            (_, Some(store)) => store.version.clone(),
            (_, None) => self.default_store_version(),
        };
        self.admits_version(spec.store_id.unwrap_or_default(), &spec.address, &text)
    }

    /// PD's `checkStoreVersion`, run on every put of a store's metadata (registration,
    /// label changes): the version must parse and be compatible with the cluster version.
    pub fn admits_version(&self, id: u64, address: &str, text: &str) -> Result<(), StoreStartError> {
        let version = Version::parse_pd(text).map_err(|error| StoreStartError::InvalidVersion {
            id,
            address: address.to_owned(),
            version: text.to_owned(),
            error,
        })?;
        if !is_compatible(&self.cluster_version, &version) {
            return Err(StoreStartError::IncompatibleVersion {
                cluster: self.cluster_version.to_string(),
                store: version.to_string(),
            });
        }
        Ok(())
    }

    /// PD's `OnStoreVersionChange`, run after a store registers or becomes Tombstone:
    /// the cluster version becomes the lowest version among the stores not Removed.
    pub fn on_store_version_change(&mut self) {
        let lowest =
            self.stores.values().filter(|s| !s.is_removed()).filter_map(|s| Version::parse_pd(&s.version).ok()).min();
        if let Some(lowest) = lowest
            && lowest != self.cluster_version
        {
            self.cluster_version = lowest;
        }
    }

    /// The first store bootstraps the cluster; its regions start with one replica each.
    fn bootstrap(&mut self, store_id: u64) {
        self.bootstrapped = true;
        self.bootstrap_time = Some(self.now);
        let count = self.seed.regions.max(1);
        for index in 0..count {
            let id = self.alloc_id();
            let peer = self.alloc_id();
            self.regions.insert(
                id,
                Region {
                    id,
                    start_key: seed_key(index),
                    end_key: if index + 1 == count { String::new() } else { seed_key(index + 1) },
                    conf_ver: 1,
                    version: 1,
                    peers: vec![Peer { id: peer, store_id, learner: false }],
                    leader: Some(store_id),
                    size_mib: self.seed.region_size_mib,
                    keys: self.seed.region_size_mib * 8_000,
                },
            );
        }
    }

    /// The TiKV process stops: heartbeats stop, its region leaders are re-elected after
    /// the raft election timeout.
    pub fn stop_store(&mut self, id: u64) -> Result<(), StoreError> {
        let now = self.now;
        let store = self.stores.get_mut(&id).ok_or(StoreError::NotFound(id))?;
        if store.running {
            store.running = false;
            store.stopped_at = Some(now);
        }
        let at = now + self.knobs.raft_election_timeout;
        self.wake_at(at);
        Ok(())
    }

    pub fn is_evicted(&self, store: u64) -> bool {
        self.evict_leader.as_ref().is_some_and(|e| e.stores.contains(&store))
    }

    /// PD may pick this store as a leader target.
    pub fn can_lead(&self, store: u64) -> bool {
        self.stores
            .get(&store)
            .is_some_and(|s| s.is_up() && !s.is_disconnected(self.now, &self.knobs) && !self.is_evicted(store))
    }

    pub fn store_stats(&self) -> BTreeMap<u64, StoreStats> {
        let mut stats: BTreeMap<u64, StoreStats> = self.stores.keys().map(|id| (*id, StoreStats::default())).collect();
        for region in self.regions.values() {
            let pending = match self.ops.get(&region.id).map(|op| op.kind) {
                Some(OpKind::AddPeer { target, .. }) => Some(target),
                _ => None,
            };
            for peer in &region.peers {
                let s = stats.entry(peer.store_id).or_default();
                s.region_count += 1;
                s.region_size += region.size_mib;
                if peer.learner {
                    s.learner_count += 1;
                }
                if pending == Some(peer.store_id) {
                    s.pending_peer_count += 1;
                }
                if region.leader == Some(peer.store_id) {
                    s.leader_count += 1;
                    s.leader_size += region.size_mib;
                }
            }
        }
        stats
    }

    /// Regions with a peer reported down: the peer's TiKV has been silent for
    /// `max-peer-down-duration`, and a live leader is there to report it.
    pub fn down_peers(&self, region: &Region) -> Vec<(Peer, u64)> {
        let leader_alive = region.leader.and_then(|s| self.stores.get(&s)).is_some_and(|s| s.running);
        if !leader_alive {
            return Vec::new();
        }
        region
            .peers
            .iter()
            .filter_map(|p| {
                let store = self.stores.get(&p.store_id)?;
                let since = store.stopped_at.filter(|_| !store.running)?;
                let down = self.now.saturating_duration_since(since);
                (down >= self.knobs.max_peer_down_duration).then(|| (p.clone(), down.as_secs()))
            })
            .collect()
    }

    pub fn pending_peers(&self, region: &Region) -> Vec<Peer> {
        match self.ops.get(&region.id).map(|op| op.kind) {
            Some(OpKind::AddPeer { target, .. }) => region.peer_on(target).cloned().into_iter().collect(),
            _ => Vec::new(),
        }
    }

    // ---- DELETE /store and state=Up ----

    /// `DELETE /store/{id}` with PD's validation order (pd-api.md 3.5).
    pub fn remove_store(&mut self, id: u64, force: bool) -> Result<(), StoreError> {
        let store = self.stores.get(&id).ok_or(StoreError::NotFound(id))?;
        if store.is_removing() && store.physically_destroyed == force {
            return Ok(());
        }
        if store.is_removed() {
            return Err(StoreError::Removed(id));
        }
        if store.physically_destroyed {
            return Err(StoreError::Destroyed(id));
        }
        if store.is_up() && !force && !store.is_tiflash() && self.knobs.refuse_remove_below_max_replicas {
            let others: Vec<&Store> =
                self.stores.values().filter(|s| s.id != id && s.is_up() && !s.is_tiflash()).collect();
            let need = self.replication.max_replicas;
            if others.len() < need {
                return Err(StoreError::NotEnough { id, up: others.len(), need });
            }
            if others.iter().all(|s| self.is_evicted(s.id)) {
                return Err(StoreError::NoStoreForLeader(id));
            }
        }
        let now = self.now;
        let region_size = self.store_stats().get(&id).map(|s| s.region_size).unwrap_or(0);
        let store = self.stores.get_mut(&id).ok_or(StoreError::NotFound(id))?;
        if !store.is_removing() {
            store.saved_limits = Some((store.add_peer.rate(), store.remove_peer.rate()));
            store.removing_from = Some((now, region_size));
        }
        store.node_state = NodeState::Removing;
        store.physically_destroyed = force;
        store.remove_peer = TokenBucket::unlimited(now);
        self.poke();
        Ok(())
    }

    /// `POST /store/{id}/state?state=Up`: cancel a removal, straight to Serving.
    pub fn up_store(&mut self, id: u64) -> Result<(), StoreError> {
        let now = self.now;
        let store = self.stores.get_mut(&id).ok_or(StoreError::NotFound(id))?;
        if store.is_removed() {
            return Err(StoreError::Removed(id));
        }
        if store.physically_destroyed {
            return Err(StoreError::Destroyed(id));
        }
        if store.is_up() {
            return Ok(());
        }
        store.node_state = NodeState::Serving;
        store.removing_from = None;
        if let Some((add, remove)) = store.saved_limits.take() {
            store.add_peer.set_rate(add, now);
            store.remove_peer = TokenBucket::new(remove, now);
        }
        self.poke();
        Ok(())
    }

    /// `DELETE /stores/remove-tombstone`: the IDs that still have regions are returned.
    pub fn remove_tombstones(&mut self) -> Vec<u64> {
        let stats = self.store_stats();
        let tombstones: Vec<u64> = self.stores.values().filter(|s| s.is_removed()).map(|s| s.id).collect();
        let mut failed = Vec::new();
        for id in tombstones {
            if stats.get(&id).is_some_and(|s| s.region_count > 0) {
                failed.push(id);
            } else {
                self.stores.remove(&id);
            }
        }
        failed
    }

    // ---- node-state check ----

    fn node_state_check(&mut self) {
        let now = self.now;
        if self.stores.values().all(|s| s.node_state == NodeState::Serving) {
            return;
        }
        let stats = self.store_stats();
        let total_regions = self.regions.len();
        let up_stores = self.stores.values().filter(|s| s.is_up() && !s.is_tiflash()).count().max(1);
        let total_size: u64 = self.regions.values().map(|r| r.size_mib).sum();
        let threshold = total_size as f64 * self.replication.max_replicas as f64 / up_stores as f64 * 0.9;
        let mut gone = Vec::new();
        let mut buried = false;
        for store in self.stores.values_mut() {
            let stat = stats.get(&store.id).copied().unwrap_or_default();
            match store.node_state {
                NodeState::Preparing => {
                    let long_enough =
                        now.saturating_duration_since(store.preparing_from) >= self.knobs.max_store_preparing_time;
                    if long_enough
                        || total_regions < INIT_CLUSTER_REGION_THRESHOLD
                        || stat.region_size as f64 >= threshold
                    {
                        store.node_state = NodeState::Serving;
                    }
                }
                NodeState::Removing => {
                    if stat.region_count == 0 {
                        buried = true;
                        store.node_state = NodeState::Removed;
                        store.saved_limits = None;
                        store.removing_from = None;
                    }
                }
                NodeState::Removed => {
                    if store.since_heartbeat(now) > self.knobs.tombstone_gc_after {
                        gone.push(store.id);
                    }
                }
                NodeState::Serving => {}
            }
        }
        for id in gone {
            self.stores.remove(&id);
        }
        if buried {
            self.on_store_version_change();
        }
    }

    // ---- members ----

    pub fn add_member(
        &mut self,
        name: String,
        peer_urls: Vec<String>,
        client_urls: Vec<String>,
    ) -> Result<u64, member::MemberError> {
        let bootstrap = self.members.list.is_empty();
        let member_id = self.alloc_member_id();
        let member = Member {
            name,
            member_id,
            peer_urls,
            client_urls,
            leader_priority: 0,
            binary_version: format!("v{}", self.pd_version),
            git_hash: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678".to_owned(),
            deploy_path: "/".to_owned(),
            running: true,
            has_data: true,
            in_etcd: true,
            started: true,
            started_at: self.now,
        };
        self.members.join(member, bootstrap)?;
        self.reconcile_members();
        Ok(member_id)
    }

    /// Re-evaluates PD leadership after any member change.
    pub fn reconcile_members(&mut self) {
        let delay = self.pd_leader_change_delay();
        self.members.reconcile(self.now, delay);
    }

    pub fn pd_leader_change_delay(&mut self) -> Duration {
        random_between(&mut self.rng, self.knobs.pd_leader_change_min, self.knobs.pd_leader_change_max)
    }

    // ---- ground truth ----

    pub fn snapshot(&self) -> Snapshot {
        let stats = self.store_stats();
        Snapshot {
            now_ms: self.now.since_start().as_millis() as u64,
            cluster_id: self.cluster_id,
            bootstrapped: self.bootstrapped,
            max_replicas: self.replication.max_replicas,
            cluster_version: self.cluster_version.to_string(),
            stores: self
                .stores
                .values()
                .map(|s| {
                    let st = stats.get(&s.id).copied().unwrap_or_default();
                    StoreTruth {
                        id: s.id,
                        address: s.address.clone(),
                        status_address: s.status_address.clone(),
                        version: s.version.clone(),
                        state_name: s.state_name(self.now, &self.knobs).to_owned(),
                        node_state: s.node_state,
                        physically_destroyed: s.physically_destroyed,
                        data_destroyed: self.data.is_destroyed(s.id),
                        running: s.running,
                        leader_count: st.leader_count,
                        region_count: st.region_count,
                        evicted: self.is_evicted(s.id),
                        leader_transfer_stalled: self.stalled_leader_transfers.contains(&s.id),
                        starts: s.starts,
                        labels: s.labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect(),
                    }
                })
                .collect(),
            regions: self.regions.values().cloned().collect(),
            down_peer_regions: self.regions.values().filter(|r| !self.down_peers(r).is_empty()).map(|r| r.id).collect(),
            members: self.members.list.clone(),
            leader: self.members.leader_member().map(|m| m.name.clone()),
            etcd_leader: self.members.etcd_leader.and_then(|id| self.members.by_id(id)).map(|m| m.name.clone()),
            evict_leader_stores: self.evict_leader.as_ref().map(|e| e.stores.iter().copied().collect()),
            schedulers: self.schedulers.iter().cloned().collect(),
            operators: self.ops.values().cloned().collect(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Event {
    NodeCheck,
    Schedule,
    OpDone(u64),
    Campaign,
    /// A member's leader-priority tick, by member ID.
    PriorityCheck(u64),
}

/// The first instant strictly after `t` among `anchor + k × period` (k ≥ 1): when a
/// timer started at `anchor` fires next.
pub(crate) fn next_on_grid(anchor: SimInstant, period: Duration, t: SimInstant) -> SimInstant {
    let period = period.as_nanos().max(1);
    let elapsed = t.saturating_duration_since(anchor).as_nanos();
    let periods = u64::try_from(elapsed / period + 1).unwrap_or(u64::MAX);
    anchor + Duration::from_nanos(periods.saturating_mul(period.try_into().unwrap_or(u64::MAX)))
}

pub(crate) fn random_between(rng: &mut StdRng, min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    let span = (max - min).as_nanos() as u64;
    min + Duration::from_nanos(rng.random_range(0..=span))
}

/// The simulator's ground truth, for tests and tools.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub now_ms: u64,
    pub cluster_id: u64,
    pub bootstrapped: bool,
    pub max_replicas: usize,
    pub cluster_version: String,
    pub stores: Vec<StoreTruth>,
    pub regions: Vec<Region>,
    pub down_peer_regions: Vec<u64>,
    pub members: Vec<Member>,
    pub leader: Option<String>,
    pub etcd_leader: Option<String>,
    pub evict_leader_stores: Option<Vec<u64>>,
    pub schedulers: Vec<String>,
    pub operators: Vec<Operator>,
}

impl Snapshot {
    pub fn store(&self, id: u64) -> Option<&StoreTruth> {
        self.stores.iter().find(|s| s.id == id)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StoreTruth {
    pub id: u64,
    pub address: String,
    pub status_address: String,
    pub version: String,
    pub state_name: String,
    pub node_state: NodeState,
    pub physically_destroyed: bool,
    /// The store's data directory is gone (ground truth, unknown to PD): see
    /// [`Cluster::destroy_store_data`].
    pub data_destroyed: bool,
    pub running: bool,
    pub leader_count: u64,
    pub region_count: u64,
    pub evicted: bool,
    /// Transfers of this store's leaders fail (see `Cluster::stalled_leader_transfers`).
    pub leader_transfer_stalled: bool,
    /// How many times a TiKV process started for this store: a new number is a new
    /// process.
    pub starts: u64,
    /// The store's labels, as `GET /store/{id}` lists them.
    pub labels: std::collections::BTreeMap<String, String>,
}

#[cfg(test)]
mod tests;
