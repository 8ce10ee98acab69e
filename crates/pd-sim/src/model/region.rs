//! Regions, explicitly: each with its peers and one leader. Every per-store count PD
//! shows is derived from this list.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Peer {
    pub id: u64,
    pub store_id: u64,
    pub learner: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Region {
    pub id: u64,
    /// Upper-case hex of the encoded start key; empty is the start of the key space.
    pub start_key: String,
    pub end_key: String,
    pub conf_ver: u64,
    pub version: u64,
    pub peers: Vec<Peer>,
    /// The store holding the leader peer, if the region has a leader.
    pub leader: Option<u64>,
    pub size_mib: u64,
    pub keys: u64,
}

impl Region {
    pub fn peer_on(&self, store_id: u64) -> Option<&Peer> {
        self.peers.iter().find(|p| p.store_id == store_id)
    }

    pub fn has_peer_on(&self, store_id: u64) -> bool {
        self.peer_on(store_id).is_some()
    }

    pub fn voters(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().filter(|p| !p.learner)
    }

    pub fn voter_count(&self) -> usize {
        self.voters().count()
    }

    pub fn leader_peer(&self) -> Option<&Peer> {
        self.leader.and_then(|s| self.peer_on(s))
    }

    pub fn remove_peer(&mut self, store_id: u64) {
        self.peers.retain(|p| p.store_id != store_id);
        if self.leader == Some(store_id) {
            self.leader = None;
        }
        self.conf_ver += 1;
    }
}

/// The encoded key at which seeded region `index` starts (a table-prefix-like key).
pub fn seed_key(index: usize) -> String {
    if index == 0 {
        return String::new();
    }
    format!("7480000000000000FF{:04X}5F720000000000FA", index * 5)
}
