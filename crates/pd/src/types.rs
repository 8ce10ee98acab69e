//! What PD tells us, as typed values, decoded from PD's exact wire format.
//!
//! Traps handled here (see pd-api.md 1.3, 1.4, 11.5): protobuf-derived objects leave
//! every zero value out (`state`/`node_state` absent means Up/Preparing), enums are
//! numbers, IDs are u64 above 2^53 (decoded as integers, never through f64), sizes are
//! strings such as `"93.5GiB"`, durations are Go strings, `location-labels` is one
//! comma-joined string and some booleans are quoted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

use crate::units::serde_helpers;

/// A store's legacy state (`metapb.StoreState`), the integer `state` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreState {
    /// 0 (the key is absent on the wire).
    Up,
    /// 1.
    Offline,
    /// 2.
    Tombstone,
    /// A number this client does not know; treat as "not safe to act on".
    Unknown(i32),
}

impl StoreState {
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => StoreState::Up,
            1 => StoreState::Offline,
            2 => StoreState::Tombstone,
            other => StoreState::Unknown(other),
        }
    }

    /// PD's number for the state, as used in `GET /stores?state=N`.
    pub fn code(self) -> i32 {
        match self {
            StoreState::Up => 0,
            StoreState::Offline => 1,
            StoreState::Tombstone => 2,
            StoreState::Unknown(code) => code,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StoreState::Up => "Up",
            StoreState::Offline => "Offline",
            StoreState::Tombstone => "Tombstone",
            StoreState::Unknown(_) => "Unknown",
        }
    }
}

/// A store's node state (`metapb.NodeState`, PD 6.0 and later), the integer `node_state` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// 0 (the key is absent on the wire): a new store still being filled.
    Preparing,
    /// 1.
    Serving,
    /// 2: being drained after `DELETE /store/{id}`.
    Removing,
    /// 3: drained; the record stays until removed.
    Removed,
    /// A number this client does not know; treat as "not safe to act on".
    Unknown(i32),
}

impl NodeState {
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => NodeState::Preparing,
            1 => NodeState::Serving,
            2 => NodeState::Removing,
            3 => NodeState::Removed,
            other => NodeState::Unknown(other),
        }
    }

    pub fn code(self) -> i32 {
        match self {
            NodeState::Preparing => 0,
            NodeState::Serving => 1,
            NodeState::Removing => 2,
            NodeState::Removed => 3,
            NodeState::Unknown(code) => code,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NodeState::Preparing => "Preparing",
            NodeState::Serving => "Serving",
            NodeState::Removing => "Removing",
            NodeState::Removed => "Removed",
            NodeState::Unknown(_) => "Unknown",
        }
    }

    /// The CRD's view of the node state; `None` for a number we do not know.
    pub fn to_api(self) -> Option<tikv_operator_api::tikv::StoreState> {
        use tikv_operator_api::tikv::StoreState as Api;
        match self {
            NodeState::Preparing => Some(Api::Preparing),
            NodeState::Serving => Some(Api::Serving),
            NodeState::Removing => Some(Api::Removing),
            NodeState::Removed => Some(Api::Removed),
            NodeState::Unknown(_) => None,
        }
    }
}

/// PD's `state_name`: the state, with `Disconnected` (no heartbeat for 20 s) and
/// `Down` (none for `max-store-down-time`) overriding `Up`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StateName {
    Up,
    Disconnected,
    Down,
    Offline,
    Tombstone,
    Other(String),
}

impl StateName {
    pub fn parse(text: &str) -> Self {
        match text {
            "Up" => StateName::Up,
            "Disconnected" => StateName::Disconnected,
            "Down" => StateName::Down,
            "Offline" => StateName::Offline,
            "Tombstone" => StateName::Tombstone,
            other => StateName::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            StateName::Up => "Up",
            StateName::Disconnected => "Disconnected",
            StateName::Down => "Down",
            StateName::Offline => "Offline",
            StateName::Tombstone => "Tombstone",
            StateName::Other(other) => other,
        }
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One TiKV (or TiFlash) store as PD reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    pub id: u64,
    /// The gRPC address the store advertises (port 20160).
    pub address: String,
    /// Empty in PD means "same as `address`"; `None` here.
    pub peer_address: Option<String>,
    /// The TiKV status HTTP address (port 20180).
    pub status_address: String,
    pub labels: BTreeMap<String, String>,
    /// TiKV version without a leading `v`, e.g. `8.5.0`.
    pub version: String,
    pub git_hash: String,
    pub state: StoreState,
    pub node_state: NodeState,
    pub state_name: StateName,
    /// Set by `DELETE /store/{id}?force`; such a store can never come back.
    pub physically_destroyed: bool,
    /// When the TiKV process started (`start_timestamp`).
    pub start_time: Option<Timestamp>,
    /// The last store heartbeat (`last_heartbeat`, nanoseconds).
    pub last_heartbeat: Option<Timestamp>,
    pub uptime: Option<Duration>,
    pub capacity_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub leader_count: u64,
    pub region_count: u64,
    /// MiB.
    pub leader_size: i64,
    /// MiB.
    pub region_size: i64,
    pub leader_weight: f64,
    pub region_weight: f64,
    pub learner_count: u64,
    pub pending_peer_count: u64,
    pub is_busy: bool,
    /// True while the store is in the evict-leader scheduler.
    pub pause_leader_transfer_in: bool,
    pub pause_leader_transfer_out: bool,
}

impl Store {
    /// The store is a TiFlash store (label `engine=tiflash`).
    pub fn is_tiflash(&self) -> bool {
        self.labels.get("engine").is_some_and(|e| e == "tiflash")
    }

    /// PD says the store is gone for good: Tombstone or Removed.
    pub fn is_removed(&self) -> bool {
        self.state == StoreState::Tombstone || self.node_state == NodeState::Removed
    }

    /// PD is draining the store (Offline or Removing).
    pub fn is_removing(&self) -> bool {
        !self.is_removed() && (self.state == StoreState::Offline || self.node_state == NodeState::Removing)
    }

    /// Up (Preparing or Serving) with a recent heartbeat: `state_name` is exactly `Up`.
    pub fn is_up_and_heartbeating(&self) -> bool {
        self.state == StoreState::Up
            && matches!(self.node_state, NodeState::Preparing | NodeState::Serving)
            && self.state_name == StateName::Up
    }
}

/// A store label.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub(crate) struct LabelWire {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StoresWire {
    #[serde(default)]
    pub stores: Option<Vec<StoreInfoWire>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StoreInfoWire {
    pub store: MetaStoreWire,
    #[serde(default)]
    pub status: Option<StoreStatusWire>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MetaStoreWire {
    pub id: u64,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub state: i32,
    #[serde(default)]
    pub node_state: i32,
    #[serde(default)]
    pub state_name: Option<String>,
    #[serde(default)]
    pub labels: Option<Vec<LabelWire>>,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub peer_address: String,
    #[serde(default)]
    pub status_address: String,
    #[serde(default)]
    pub git_hash: String,
    #[serde(default)]
    pub start_timestamp: i64,
    #[serde(default)]
    pub last_heartbeat: i64,
    #[serde(default)]
    pub physically_destroyed: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StoreStatusWire {
    #[serde(default, deserialize_with = "serde_helpers::size")]
    pub capacity: Option<u64>,
    #[serde(default, deserialize_with = "serde_helpers::size")]
    pub available: Option<u64>,
    #[serde(default, deserialize_with = "serde_helpers::size")]
    pub used_size: Option<u64>,
    #[serde(default)]
    pub leader_count: u64,
    #[serde(default)]
    pub region_count: u64,
    #[serde(default)]
    pub leader_size: i64,
    #[serde(default)]
    pub region_size: i64,
    #[serde(default)]
    pub leader_weight: f64,
    #[serde(default)]
    pub region_weight: f64,
    #[serde(default)]
    pub learner_count: u64,
    #[serde(default)]
    pub pending_peer_count: u64,
    #[serde(default)]
    pub is_busy: bool,
    #[serde(default, deserialize_with = "serde_helpers::go_duration")]
    pub uptime: Option<Duration>,
    #[serde(default)]
    pub last_heartbeat_ts: Option<Timestamp>,
    #[serde(default)]
    pub start_ts: Option<Timestamp>,
    #[serde(default)]
    pub pause_leader_transfer_in: bool,
    #[serde(default)]
    pub pause_leader_transfer_out: bool,
}

impl StoreInfoWire {
    pub(crate) fn into_store(self) -> Result<Store, String> {
        let meta = self.store;
        let status = self.status.unwrap_or_default();
        let state = StoreState::from_code(meta.state);
        let state_name = match meta.state_name {
            Some(name) => StateName::parse(&name),
            None => StateName::parse(state.name()),
        };
        let start_time = match meta.start_timestamp {
            0 => status.start_ts,
            secs => Some(Timestamp::from_second(secs).map_err(|e| format!("store {}: start_timestamp: {e}", meta.id))?),
        };
        let last_heartbeat = match meta.last_heartbeat {
            0 => status.last_heartbeat_ts,
            nanos => Some(
                Timestamp::from_nanosecond(i128::from(nanos))
                    .map_err(|e| format!("store {}: last_heartbeat: {e}", meta.id))?,
            ),
        };
        let mut labels = BTreeMap::new();
        for label in meta.labels.unwrap_or_default() {
            labels.insert(label.key, label.value);
        }
        Ok(Store {
            id: meta.id,
            address: meta.address,
            peer_address: (!meta.peer_address.is_empty()).then_some(meta.peer_address),
            status_address: meta.status_address,
            labels,
            version: meta.version,
            git_hash: meta.git_hash,
            state,
            node_state: NodeState::from_code(meta.node_state),
            state_name,
            physically_destroyed: meta.physically_destroyed,
            start_time,
            last_heartbeat,
            uptime: status.uptime,
            capacity_bytes: status.capacity,
            available_bytes: status.available,
            used_bytes: status.used_size,
            leader_count: status.leader_count,
            region_count: status.region_count,
            leader_size: status.leader_size,
            region_size: status.region_size,
            leader_weight: status.leader_weight,
            region_weight: status.region_weight,
            learner_count: status.learner_count,
            pending_peer_count: status.pending_peer_count,
            is_busy: status.is_busy,
            pause_leader_transfer_in: status.pause_leader_transfer_in,
            pause_leader_transfer_out: status.pause_leader_transfer_out,
        })
    }
}

/// A PD member (`pdpb.Member`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub member_id: u64,
    #[serde(default)]
    pub client_urls: Vec<String>,
    #[serde(default)]
    pub peer_urls: Vec<String>,
    #[serde(default)]
    pub leader_priority: i32,
    #[serde(default)]
    pub binary_version: String,
    #[serde(default)]
    pub git_hash: String,
    #[serde(default)]
    pub deploy_path: String,
}

/// `GET /members`: the members, the PD leader and the etcd leader, and the cluster ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// From `header.cluster_id`; 0 when PD left the header out.
    pub cluster_id: u64,
    pub members: Vec<Member>,
    /// The PD leader (holder of PD's leader key), `None` while there is none.
    pub leader: Option<Member>,
    /// The etcd Raft leader; normally the same member as `leader`.
    pub etcd_leader: Option<Member>,
}

impl Members {
    pub fn get(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn leader_name(&self) -> Option<&str> {
        self.leader.as_ref().map(|m| m.name.as_str()).filter(|n| !n.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct HeaderWire {
    #[serde(default)]
    pub cluster_id: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MembersWire {
    #[serde(default)]
    pub header: Option<HeaderWire>,
    #[serde(default)]
    pub members: Option<Vec<Member>>,
    #[serde(default)]
    pub leader: Option<Member>,
    #[serde(default)]
    pub etcd_leader: Option<Member>,
}

impl From<MembersWire> for Members {
    fn from(wire: MembersWire) -> Self {
        // A leader object with neither name nor ID is PD's way of saying "none".
        let real = |m: Option<Member>| m.filter(|m| !m.name.is_empty() || m.member_id != 0);
        Members {
            cluster_id: wire.header.map_or(0, |h| h.cluster_id),
            members: wire.members.unwrap_or_default(),
            leader: real(wire.leader),
            etcd_leader: real(wire.etcd_leader),
        }
    }
}

/// One entry of `GET /health`: PD's probe of a member's `/ping`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MemberHealth {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub member_id: u64,
    #[serde(default)]
    pub client_urls: Vec<String>,
    #[serde(default)]
    pub health: bool,
}

/// `GET /pd/api/v2/ready` on one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberReadiness {
    /// 200: the member could become leader (regions loaded, or not bootstrapped yet).
    Ready,
    /// 500: regions not loaded yet.
    NotReady,
    /// 404: this PD has no ready API (older than v8.5.2 / v9.0.0); decide by version.
    Unsupported,
}

/// `GET /cluster` (`metapb.Cluster`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct ClusterInfo {
    pub id: u64,
    #[serde(default)]
    pub max_peer_count: u32,
}

/// `GET /status` of the member called.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct PdStatus {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub git_hash: String,
    #[serde(default)]
    pub build_ts: String,
    /// Unix seconds when the member started.
    #[serde(default)]
    pub start_timestamp: i64,
}

/// `replication` of `GET /config`, or `GET /config/replicate`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReplicationConfig {
    #[serde(default)]
    pub max_replicas: u64,
    /// Written by PD as one comma-joined string.
    #[serde(default, deserialize_with = "serde_helpers::comma_list")]
    pub location_labels: Vec<String>,
    #[serde(default, deserialize_with = "serde_helpers::quoted_bool")]
    pub strictly_match_label: bool,
    #[serde(default, deserialize_with = "serde_helpers::quoted_bool")]
    pub enable_placement_rules: bool,
    #[serde(default)]
    pub isolation_level: String,
}

/// The part of `schedule` (from `GET /config`) that governs the operator's timing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScheduleConfig {
    /// An Up store without heartbeat for this long is Down (default 30 min).
    #[serde(default, deserialize_with = "serde_helpers::go_duration")]
    pub max_store_down_time: Option<Duration>,
    /// A Preparing store is Serving after this at the latest (default 48 h).
    #[serde(default, deserialize_with = "serde_helpers::go_duration")]
    pub max_store_preparing_time: Option<Duration>,
    #[serde(default)]
    pub leader_schedule_limit: u64,
    #[serde(default)]
    pub region_schedule_limit: u64,
    #[serde(default)]
    pub replica_schedule_limit: u64,
    #[serde(default)]
    pub store_limit_version: String,
}

/// `GET /config`: the parts the operator reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct PdConfig {
    #[serde(default)]
    pub replication: ReplicationConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

/// A key range of an evicted store (base64 of raw bytes; empty means unbounded).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct KeyRange {
    #[serde(default, rename = "start-key")]
    pub start_key: String,
    #[serde(default, rename = "end-key")]
    pub end_key: String,
}

/// `GET /scheduler-config/evict-leader-scheduler/list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct EvictLeaderConfig {
    /// Evicted stores and their ranges (store IDs are string keys on the wire).
    #[serde(default, rename = "store-id-ranges")]
    pub store_id_ranges: BTreeMap<u64, Vec<KeyRange>>,
    /// Operators per round; absent before PD 8.x.
    #[serde(default)]
    pub batch: Option<u32>,
}

impl EvictLeaderConfig {
    pub fn store_ids(&self) -> BTreeSet<u64> {
        self.store_id_ranges.keys().copied().collect()
    }

    pub fn contains(&self, store_id: u64) -> bool {
        self.store_id_ranges.contains_key(&store_id)
    }
}

/// A peer reported by a region check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedPeer {
    pub peer_id: u64,
    pub store_id: u64,
    /// For down peers: how long PD has seen the peer down.
    pub down_seconds: Option<u64>,
}

/// One region in a region check, with the peers that made it match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionPeers {
    pub region_id: u64,
    pub leader_store_id: Option<u64>,
    pub peers: Vec<CheckedPeer>,
}

/// The answer of `GET /regions/check/down-peer` or `/regions/check/pending-peer`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCheck {
    /// PD's `count`: the number of regions that match.
    pub count: u64,
    pub regions: Vec<RegionPeers>,
}

impl PeerCheck {
    /// Every store holding a down (or pending) peer.
    pub fn store_ids(&self) -> BTreeSet<u64> {
        self.regions.iter().flat_map(|r| r.peers.iter().map(|p| p.store_id)).collect()
    }

    /// A down/pending peer exists on some store other than `store_id`.
    pub fn involves_store_other_than(&self, store_id: u64) -> bool {
        self.store_ids().iter().any(|id| *id != store_id)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.regions.is_empty()
    }
}

/// What PD's region checks say right now: regions with down, pending or missing peers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionHealth {
    pub down: PeerCheck,
    pub pending: PeerCheck,
    /// Regions with fewer voters than wanted (their peers listed).
    pub missing: PeerCheck,
}

impl RegionHealth {
    /// Why restarting store `store_id` now could cost a region its majority, if so: a
    /// down or pending peer on another store, or a region already missing a peer that
    /// has one on this store.
    pub fn restart_blocker(&self, store_id: u64) -> Option<String> {
        let others = |check: &PeerCheck| {
            check.store_ids().into_iter().filter(|id| *id != store_id).map(|id| id.to_string()).collect::<Vec<_>>()
        };
        let down = others(&self.down);
        if !down.is_empty() {
            return Some(format!("regions have down peers on stores {}", down.join(", ")));
        }
        let pending = others(&self.pending);
        if !pending.is_empty() {
            return Some(format!("regions have pending peers on stores {}", pending.join(", ")));
        }
        let short: Vec<u64> = self
            .missing
            .regions
            .iter()
            .filter(|r| r.peers.iter().any(|p| p.store_id == store_id))
            .map(|r| r.region_id)
            .collect();
        (!short.is_empty()).then(|| {
            format!("{} regions with a peer on this store already miss a peer (region {} first)", short.len(), short[0])
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PeerWire {
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub store_id: u64,
    /// `Voter`, `Learner`, `IncomingVoter`, `DemotingVoter` (absent on old PDs).
    #[serde(default)]
    pub role_name: String,
    #[serde(default)]
    pub is_learner: bool,
}

impl PeerWire {
    fn is_voter(&self) -> bool {
        !self.is_learner && self.role_name != "Learner"
    }
}

/// A region with a peer on some store, as `GET /regions/store/{id}` lists it: the
/// stores holding its voters (learners left out: they count for no majority).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionVoters {
    pub region_id: u64,
    pub voter_stores: Vec<u64>,
}

impl RegionVoters {
    /// Whether the voters on `down` stores leave the others short of a quorum (a
    /// majority of all voters; half of an even count is not enough): the region cannot
    /// elect a leader or change its peers until they come back.
    pub fn quorum_lost_with(&self, down: &BTreeSet<u64>) -> bool {
        let voters = self.voter_stores.len();
        let up = self.voter_stores.iter().filter(|s| !down.contains(s)).count();
        voters > 0 && up < voters / 2 + 1
    }
}

impl RegionsWire {
    pub(crate) fn into_voters(self) -> Vec<RegionVoters> {
        self.regions
            .unwrap_or_default()
            .into_iter()
            .map(|region| RegionVoters {
                region_id: region.id,
                voter_stores: region
                    .peers
                    .unwrap_or_default()
                    .iter()
                    .filter(|p| p.is_voter())
                    .map(|p| p.store_id)
                    .collect(),
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DownPeerWire {
    #[serde(default)]
    pub peer: PeerWire,
    #[serde(default)]
    pub down_seconds: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RegionWire {
    pub id: u64,
    #[serde(default)]
    pub leader: Option<PeerWire>,
    #[serde(default)]
    pub down_peers: Option<Vec<DownPeerWire>>,
    #[serde(default)]
    pub pending_peers: Option<Vec<PeerWire>>,
    #[serde(default)]
    pub peers: Option<Vec<PeerWire>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RegionsWire {
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub regions: Option<Vec<RegionWire>>,
}

/// Which peers a region check reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PeerKind {
    Down,
    Pending,
    /// `miss-peer`: regions with fewer voters than wanted; their peers are listed.
    Missing,
}

impl RegionsWire {
    pub(crate) fn into_check(self, kind: PeerKind) -> PeerCheck {
        let regions = self
            .regions
            .unwrap_or_default()
            .into_iter()
            .map(|region| {
                let peers = match kind {
                    PeerKind::Down => region
                        .down_peers
                        .unwrap_or_default()
                        .into_iter()
                        .map(|d| CheckedPeer {
                            peer_id: d.peer.id,
                            store_id: d.peer.store_id,
                            down_seconds: Some(d.down_seconds),
                        })
                        .collect(),
                    PeerKind::Pending => region
                        .pending_peers
                        .unwrap_or_default()
                        .into_iter()
                        .map(|p| CheckedPeer { peer_id: p.id, store_id: p.store_id, down_seconds: None })
                        .collect(),
                    PeerKind::Missing => region
                        .peers
                        .unwrap_or_default()
                        .into_iter()
                        .map(|p| CheckedPeer { peer_id: p.id, store_id: p.store_id, down_seconds: None })
                        .collect(),
                };
                RegionPeers {
                    region_id: region.id,
                    leader_store_id: region.leader.map(|l| l.store_id).filter(|id| *id != 0),
                    peers,
                }
            })
            .collect();
        PeerCheck { count: self.count, regions }
    }
}

/// `GET /stats/region` for the whole key space (sizes in MiB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RegionStats {
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub empty_count: u64,
    #[serde(default)]
    pub storage_size: i64,
    #[serde(default)]
    pub storage_keys: i64,
    #[serde(default)]
    pub store_leader_count: BTreeMap<u64, u64>,
    #[serde(default)]
    pub store_peer_count: BTreeMap<u64, u64>,
}
