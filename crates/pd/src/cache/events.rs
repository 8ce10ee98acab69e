//! Change events between two views, which controllers turn into reconcile triggers:
//! a store event goes to the TiKV instance with that store ID (or, before the ID is
//! recorded, that advertise address); a member event to the PD instance with that name.
//! An evict-leader entry added or removed is a store event (by ID only: PD may hold an
//! entry for a store it no longer lists).

use crate::error::PdError;
use crate::types::{ReplicationConfig, Store};

use super::view::{PdMember, PdView};

/// Something PD-side changed.
#[derive(Clone, Debug)]
pub enum PdEvent {
    StoreAdded {
        store_id: u64,
        address: String,
    },
    /// `changes` names what changed (see [`store_changes`]).
    StoreChanged {
        store_id: u64,
        address: String,
        changes: Vec<&'static str>,
    },
    /// The record is gone (remove-tombstone, or PD's 30-day cleanup).
    StoreRemoved {
        store_id: u64,
        address: String,
    },
    /// The store entered (`evicting`) or left PD's evict-leader scheduler.
    EvictLeaderChanged {
        store_id: u64,
        evicting: bool,
    },
    /// `max-replicas`, `location-labels` or placement rules changed.
    ReplicationChanged {
        from: ReplicationConfig,
        to: ReplicationConfig,
    },
    MemberAdded {
        name: String,
        member_id: u64,
    },
    MemberChanged {
        name: String,
        member_id: u64,
        changes: Vec<&'static str>,
    },
    MemberRemoved {
        name: String,
        member_id: u64,
    },
    /// The PD leader moved (names; `None` while there is no leader).
    LeaderChanged {
        from: Option<String>,
        to: Option<String>,
    },
    /// The cluster ID answering differs from the one seen before.
    ClusterIdChanged {
        from: u64,
        to: u64,
    },
    /// Polling started failing (once per outage); the view is kept but stale.
    PollFailing {
        error: PdError,
    },
    /// Polling works again after failures.
    PollRecovered,
}

impl PdEvent {
    /// The store the event is about.
    pub fn store_id(&self) -> Option<u64> {
        match self {
            PdEvent::StoreAdded { store_id, .. }
            | PdEvent::StoreChanged { store_id, .. }
            | PdEvent::StoreRemoved { store_id, .. }
            | PdEvent::EvictLeaderChanged { store_id, .. } => Some(*store_id),
            _ => None,
        }
    }

    /// The store's advertise address, for instances that have not recorded their ID yet.
    pub fn store_address(&self) -> Option<&str> {
        match self {
            PdEvent::StoreAdded { address, .. }
            | PdEvent::StoreChanged { address, .. }
            | PdEvent::StoreRemoved { address, .. } => Some(address),
            _ => None,
        }
    }

    /// The PD member the event is about.
    pub fn member_name(&self) -> Option<&str> {
        match self {
            PdEvent::MemberAdded { name, .. }
            | PdEvent::MemberChanged { name, .. }
            | PdEvent::MemberRemoved { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Events about the whole cluster (leader, identity, availability): every instance
    /// of the cluster may care.
    pub fn is_cluster_wide(&self) -> bool {
        matches!(
            self,
            PdEvent::LeaderChanged { .. }
                | PdEvent::ClusterIdChanged { .. }
                | PdEvent::ReplicationChanged { .. }
                | PdEvent::PollFailing { .. }
                | PdEvent::PollRecovered
        )
    }
}

/// What changed between two readings of a store that a controller acts on.
///
/// Heartbeat times, sizes, scores and exact counts change on every poll and would
/// flood reconciles, so counts only count when they cross zero: "leaders gone"
/// (eviction done) and "regions gone" (drain done) are the moments tasks wait for.
pub fn store_changes(old: &Store, new: &Store) -> Vec<&'static str> {
    let mut changes = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            changes.push(name);
        }
    };
    check(old.address != new.address, "address");
    check(old.state != new.state, "state");
    check(old.node_state != new.node_state, "node_state");
    check(old.state_name != new.state_name, "state_name");
    check(old.labels != new.labels, "labels");
    check(old.version != new.version, "version");
    check(old.status_address != new.status_address, "status_address");
    check(old.physically_destroyed != new.physically_destroyed, "physically_destroyed");
    check(old.start_time != new.start_time, "start_time");
    check(old.is_busy != new.is_busy, "is_busy");
    check(old.pause_leader_transfer_in != new.pause_leader_transfer_in, "pause_leader_transfer_in");
    check((old.leader_count == 0) != (new.leader_count == 0), "leader_count_zero");
    check((old.region_count == 0) != (new.region_count == 0), "region_count_zero");
    changes
}

fn member_changes(old: &PdMember, new: &PdMember) -> Vec<&'static str> {
    let mut changes = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            changes.push(name);
        }
    };
    check(old.member.member_id != new.member.member_id, "member_id");
    check(old.member.client_urls != new.member.client_urls, "client_urls");
    check(old.member.peer_urls != new.member.peer_urls, "peer_urls");
    check(old.member.binary_version != new.member.binary_version, "binary_version");
    check(old.member.leader_priority != new.member.leader_priority, "leader_priority");
    check(old.healthy != new.healthy, "health");
    changes
}

/// The events that lead from `old` to `new`; with no `old`, everything is added.
pub(crate) fn diff(old: Option<&PdView>, new: &PdView) -> Vec<PdEvent> {
    let mut events = Vec::new();
    if let Some(old) = old
        && old.cluster_id != new.cluster_id
    {
        events.push(PdEvent::ClusterIdChanged { from: old.cluster_id, to: new.cluster_id });
    }

    for (id, store) in &new.stores {
        match old.and_then(|o| o.stores.get(id)) {
            None => events.push(PdEvent::StoreAdded { store_id: *id, address: store.address.clone() }),
            Some(before) => {
                let changes = store_changes(before, store);
                if !changes.is_empty() {
                    events.push(PdEvent::StoreChanged { store_id: *id, address: store.address.clone(), changes });
                }
            }
        }
    }
    if let Some(old) = old {
        for (id, store) in &old.stores {
            if !new.stores.contains_key(id) {
                events.push(PdEvent::StoreRemoved { store_id: *id, address: store.address.clone() });
            }
        }
    }

    let old_evicting = old.map(|o| &o.evict_leader_stores);
    for store_id in &new.evict_leader_stores {
        if !old_evicting.is_some_and(|o| o.contains(store_id)) {
            events.push(PdEvent::EvictLeaderChanged { store_id: *store_id, evicting: true });
        }
    }
    if let Some(old) = old_evicting {
        for store_id in old.difference(&new.evict_leader_stores) {
            events.push(PdEvent::EvictLeaderChanged { store_id: *store_id, evicting: false });
        }
    }
    // The first view brings no replication event: there was nothing to change from.
    if let Some(old) = old
        && old.replication != new.replication
    {
        events.push(PdEvent::ReplicationChanged { from: old.replication.clone(), to: new.replication.clone() });
    }

    for (name, member) in &new.members {
        let member_id = member.member.member_id;
        match old.and_then(|o| o.members.get(name)) {
            None => events.push(PdEvent::MemberAdded { name: name.clone(), member_id }),
            Some(before) => {
                let changes = member_changes(before, member);
                if !changes.is_empty() {
                    events.push(PdEvent::MemberChanged { name: name.clone(), member_id, changes });
                }
            }
        }
    }
    if let Some(old) = old {
        for (name, member) in &old.members {
            if !new.members.contains_key(name) {
                events.push(PdEvent::MemberRemoved { name: name.clone(), member_id: member.member.member_id });
            }
        }
    }

    let leader_changed = match old {
        None => new.leader.is_some(),
        Some(old) => old.leader != new.leader,
    };
    if leader_changed {
        events.push(PdEvent::LeaderChanged { from: old.and_then(|o| o.leader.clone()), to: new.leader.clone() });
    }
    events
}
