//! One consistent view of PD, as read by one successful poll, and how fresh it is.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::PdError;
use crate::types::{Member, MemberHealth, Members, ReplicationConfig, Store};

/// A PD member with PD's health probe of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdMember {
    pub member: Member,
    /// From `/health`; `None` when `/health` did not list the member.
    pub healthy: Option<bool>,
}

/// What one successful poll read: stores (Tombstone included), members with health,
/// leaders, the cluster ID, the evict-leader entries and the replication config.
#[derive(Clone, Debug, PartialEq)]
pub struct PdView {
    pub cluster_id: u64,
    /// False while PD answered "not bootstrapped" (then there are no stores).
    pub bootstrapped: bool,
    pub stores: BTreeMap<u64, Store>,
    /// By member name.
    pub members: BTreeMap<String, PdMember>,
    /// Name of the PD leader.
    pub leader: Option<String>,
    /// Since when (the first poll that saw it) this leader leads, as far as the cache
    /// has watched: a new PD leader rebuilds store and region statistics from
    /// heartbeats, so counts read soon after a change may be old.
    pub leader_since: Instant,
    /// Name of the etcd leader.
    pub etcd_leader: Option<String>,
    /// Stores in PD's evict-leader scheduler, whoever added them (possibly stores PD
    /// no longer lists).
    pub evict_leader_stores: BTreeSet<u64>,
    /// `max-replicas`, `location-labels`, placement rules on or off.
    pub replication: ReplicationConfig,
    /// When the poll that read this view started: the data is at least this recent.
    pub observed_at: Instant,
    /// The operator's write count when the poll started; a view is fresh only if no
    /// write happened since.
    pub(crate) write_epoch: u64,
}

/// The answers of one poll.
pub(crate) struct Read {
    pub cluster_id: u64,
    /// `None` while PD is not bootstrapped.
    pub stores: Option<Vec<Store>>,
    pub members: Members,
    pub health: Vec<MemberHealth>,
    pub evict_leader_stores: BTreeSet<u64>,
    pub replication: ReplicationConfig,
}

impl PdView {
    pub(crate) fn build(read: Read, observed_at: Instant, write_epoch: u64, previous: Option<&PdView>) -> Self {
        let Read { cluster_id, stores, members, health, evict_leader_stores, replication } = read;
        let bootstrapped = stores.is_some();
        let stores = stores.unwrap_or_default().into_iter().map(|s| (s.id, s)).collect();
        let leader = members.leader_name().map(str::to_owned);
        let leader_since =
            previous.filter(|p| p.leader.is_some() && p.leader == leader).map_or(observed_at, |p| p.leader_since);
        let etcd_leader = members.etcd_leader.as_ref().map(|m| m.name.clone()).filter(|n| !n.is_empty());
        let members = members
            .members
            .into_iter()
            .map(|member| {
                let healthy = health.iter().find(|h| h.member_id == member.member_id).map(|h| h.health);
                (member.name.clone(), PdMember { member, healthy })
            })
            .collect();
        PdView {
            cluster_id,
            bootstrapped,
            stores,
            members,
            leader,
            leader_since,
            etcd_leader,
            evict_leader_stores,
            replication,
            observed_at,
            write_epoch,
        }
    }

    /// How long the current PD leader has led, as of this view.
    pub fn leader_for(&self) -> Duration {
        self.observed_at.saturating_duration_since(self.leader_since)
    }

    /// Whether the store is in the evict-leader scheduler.
    pub fn is_evicting_leaders(&self, store_id: u64) -> bool {
        self.evict_leader_stores.contains(&store_id)
    }

    pub fn store(&self, id: u64) -> Option<&Store> {
        self.stores.get(&id)
    }

    /// The store advertising this address. PD allows a new store on an address only
    /// after the old one is removed, so a live store wins over removed ones; among
    /// removed ones the newest (highest ID) wins.
    pub fn store_by_address(&self, address: &str) -> Option<&Store> {
        self.stores.values().filter(|s| s.address == address).max_by_key(|s| (!s.is_removed(), s.id))
    }

    pub fn member(&self, name: &str) -> Option<&PdMember> {
        self.members.get(name)
    }

    pub fn member_by_id(&self, member_id: u64) -> Option<&PdMember> {
        self.members.values().find(|m| m.member.member_id == member_id)
    }
}

/// Why a view may not be used for a destructive decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StaleReason {
    /// The operator wrote to PD after this view was read.
    OlderThanLastWrite,
    /// The view is older than the configured freshness bound.
    TooOld { age: Duration },
    /// The latest poll failed; the view is the last good one.
    PollFailing,
}

/// How usable the cache's view is right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Read after the operator's last write, not older than the bound, latest poll good.
    Fresh,
    /// There is a view, but it must not be trusted for destructive steps.
    Stale(StaleReason),
    /// No poll has ever succeeded.
    Unavailable,
}

impl fmt::Display for Freshness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Freshness::Fresh => f.write_str("fresh"),
            Freshness::Stale(StaleReason::OlderThanLastWrite) => f.write_str("stale: read before the last write to PD"),
            Freshness::Stale(StaleReason::TooOld { age }) => write!(f, "stale: read {age:?} ago"),
            Freshness::Stale(StaleReason::PollFailing) => f.write_str("stale: polling PD fails"),
            Freshness::Unavailable => f.write_str("unavailable: PD has never been read"),
        }
    }
}

/// A failed poll.
#[derive(Clone, Debug)]
pub struct PollFailure {
    pub error: PdError,
    pub at: Instant,
    /// Failed polls in a row.
    pub consecutive: u32,
}

/// The cache's state as one consumer sees it at one moment.
#[derive(Clone, Debug)]
pub struct PdSnapshot {
    /// The last good view, even when stale.
    pub view: Option<Arc<PdView>>,
    pub freshness: Freshness,
    /// The latest failure, while polls are failing.
    pub last_error: Option<PollFailure>,
}

/// Returned when a fresh view was asked for and there is none.
#[derive(Clone, Debug, thiserror::Error)]
#[error("PD view is {freshness}{}", last_error.as_ref().map(|e| format!(" (last error: {})", e.error)).unwrap_or_default())]
pub struct NotFresh {
    pub freshness: Freshness,
    pub last_error: Option<PollFailure>,
}
