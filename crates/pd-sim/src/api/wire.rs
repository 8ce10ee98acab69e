//! PD's JSON shapes, field by field in Go's order, with Go's `omitempty` rules.

use serde::Serialize;

use crate::format::{GoFloat, byte_size, go_duration, rfc3339, unix_nanos, unix_seconds};
use crate::model::member::Member;
use crate::model::region::{Peer, Region};
use crate::model::store::{Label, Store};
use crate::model::{Cluster, StoreStats};

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// `metapb.Store` plus `state_name`.
#[derive(Serialize)]
pub struct MetaStore<'a> {
    pub id: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub address: &'a str,
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub state: i32,
    #[serde(skip_serializing_if = "<[Label]>::is_empty")]
    pub labels: &'a [Label],
    #[serde(skip_serializing_if = "str::is_empty")]
    pub version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub peer_address: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub status_address: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub git_hash: &'a str,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub start_timestamp: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub deploy_path: &'a str,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub last_heartbeat: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub physically_destroyed: bool,
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub node_state: i32,
    pub state_name: &'a str,
}

#[derive(Serialize)]
pub struct StoreStatus {
    pub capacity: String,
    pub available: String,
    pub used_size: String,
    pub leader_count: u64,
    pub leader_weight: GoFloat,
    pub leader_score: GoFloat,
    pub leader_size: u64,
    pub region_count: u64,
    pub region_weight: GoFloat,
    pub region_score: GoFloat,
    pub region_size: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub learner_count: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub pending_peer_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub pause_leader_transfer_in: bool,
}

#[derive(Serialize)]
pub struct StoreInfo<'a> {
    pub store: MetaStore<'a>,
    pub status: StoreStatus,
}

/// Bytes a store uses besides its regions (RocksDB, raft log): a small constant.
const BASE_USED: u64 = 64 << 20;

pub fn store_info<'a>(c: &Cluster, s: &'a Store, stats: StoreStats) -> StoreInfo<'a> {
    let used = (stats.region_size << 20) + BASE_USED;
    let available = s.capacity.saturating_sub(used);
    StoreInfo {
        store: MetaStore {
            id: s.id,
            address: &s.address,
            state: s.state() as i32,
            labels: &s.labels,
            version: &s.version,
            peer_address: &s.peer_address,
            status_address: &s.status_address,
            git_hash: &s.git_hash,
            start_timestamp: unix_seconds(c.wall(s.start_time)),
            deploy_path: &s.deploy_path,
            last_heartbeat: s.last_heartbeat.map(|t| unix_nanos(c.wall(t))).unwrap_or(0),
            physically_destroyed: s.physically_destroyed,
            node_state: s.node_state as i32,
            state_name: s.state_name(c.now, &c.knobs),
        },
        status: StoreStatus {
            capacity: byte_size(s.capacity),
            available: byte_size(available),
            used_size: byte_size(used),
            leader_count: stats.leader_count,
            leader_weight: GoFloat(s.leader_weight),
            leader_score: GoFloat(stats.leader_count as f64 / s.leader_weight.max(1e-6)),
            leader_size: stats.leader_size,
            region_count: stats.region_count,
            region_weight: GoFloat(s.region_weight),
            region_score: GoFloat(stats.region_size as f64 / s.region_weight.max(1e-6)),
            region_size: stats.region_size,
            learner_count: stats.learner_count,
            pending_peer_count: stats.pending_peer_count,
            start_ts: s.last_heartbeat.map(|_| rfc3339(c.wall(s.start_time))),
            last_heartbeat_ts: s.last_heartbeat.map(|t| rfc3339(c.wall(t))),
            uptime: s.uptime().map(go_duration),
            pause_leader_transfer_in: c.is_evicted(s.id),
        },
    }
}

#[derive(Serialize)]
pub struct StoresInfo<'a> {
    pub count: usize,
    pub stores: Vec<StoreInfo<'a>>,
}

/// `pdpb.Member`.
#[derive(Serialize)]
pub struct MemberJson<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub name: &'a str,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub member_id: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub peer_urls: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub client_urls: &'a [String],
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub leader_priority: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub deploy_path: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub binary_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub git_hash: &'a str,
}

pub fn member(m: &Member) -> MemberJson<'_> {
    MemberJson {
        name: &m.name,
        member_id: m.member_id,
        peer_urls: &m.peer_urls,
        client_urls: &m.client_urls,
        leader_priority: m.leader_priority,
        deploy_path: &m.deploy_path,
        binary_version: &m.binary_version,
        git_hash: &m.git_hash,
    }
}

#[derive(Serialize)]
pub struct Header {
    pub cluster_id: u64,
}

#[derive(Serialize)]
pub struct MembersResponse<'a> {
    pub header: Header,
    pub members: Vec<MemberJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<MemberJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd_leader: Option<MemberJson<'a>>,
}

#[derive(Serialize)]
pub struct Health<'a> {
    pub name: &'a str,
    pub member_id: u64,
    pub client_urls: &'a [String],
    pub health: bool,
}

#[derive(Serialize)]
pub struct PeerJson {
    pub id: u64,
    pub store_id: u64,
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub role: i32,
    pub role_name: &'static str,
    #[serde(skip_serializing_if = "is_false")]
    pub is_learner: bool,
}

pub fn peer(p: &Peer) -> PeerJson {
    PeerJson {
        id: p.id,
        store_id: p.store_id,
        role: if p.learner { 1 } else { 0 },
        role_name: if p.learner { "Learner" } else { "Voter" },
        is_learner: p.learner,
    }
}

#[derive(Serialize)]
pub struct Epoch {
    pub conf_ver: u64,
    pub version: u64,
}

#[derive(Serialize)]
pub struct DownPeer {
    pub peer: PeerJson,
    pub down_seconds: u64,
}

#[derive(Serialize)]
pub struct RegionInfo {
    pub id: u64,
    pub start_key: String,
    pub end_key: String,
    pub epoch: Epoch,
    pub peers: Vec<PeerJson>,
    pub leader: PeerJson,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub down_peers: Vec<DownPeer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_peers: Vec<PeerJson>,
    pub cpu_usage: u64,
    pub written_bytes: u64,
    pub read_bytes: u64,
    pub written_keys: u64,
    pub read_keys: u64,
    pub approximate_size: u64,
    pub approximate_keys: u64,
    pub approximate_kv_size: u64,
    pub approximate_columnar_kv_size: u64,
}

pub fn region(c: &Cluster, r: &Region) -> RegionInfo {
    let leader = r.leader_peer().map(peer).unwrap_or(PeerJson {
        id: 0,
        store_id: 0,
        role: 0,
        role_name: "Voter",
        is_learner: false,
    });
    RegionInfo {
        id: r.id,
        start_key: r.start_key.clone(),
        end_key: r.end_key.clone(),
        epoch: Epoch { conf_ver: r.conf_ver, version: r.version },
        peers: r.peers.iter().map(peer).collect(),
        leader,
        down_peers: c.down_peers(r).iter().map(|(p, secs)| DownPeer { peer: peer(p), down_seconds: *secs }).collect(),
        pending_peers: c.pending_peers(r).iter().map(peer).collect(),
        cpu_usage: 0,
        written_bytes: 0,
        read_bytes: 0,
        written_keys: 0,
        read_keys: 0,
        approximate_size: r.size_mib,
        approximate_keys: r.keys,
        approximate_kv_size: r.size_mib,
        approximate_columnar_kv_size: 0,
    }
}

#[derive(Serialize)]
pub struct RegionsInfo {
    pub count: usize,
    pub regions: Option<Vec<RegionInfo>>,
}
