//! What the regions hold: keys written through them, replicated as raft replicates a
//! region's log, so that a mistake that would lose data on a real cluster loses it here.
//!
//! Each region has a committed log (entries numbered from 1); each peer holds a prefix
//! of it, recorded as the last index it holds. The rules, as TiKV's raft applies them:
//!
//! - **Write**: a key goes to the region whose range holds it. It commits only when the
//!   region has a leader whose TiKV runs and a majority of the region's voters run (the
//!   model has no network partitions: a running TiKV reaches every other). The entry
//!   is then held by every peer whose TiKV runs, learners included; a write that cannot
//!   commit is refused ([`Unavailable`]) and held by nobody.
//! - **Catch-up** (raft log): a peer whose TiKV was stopped receives what it missed when
//!   it runs again while its region has a running leader, or as soon as the region
//!   elects one. So, while a region has a running leader, every running peer holds the
//!   whole committed log.
//! - **Election**: only a voter holding the longest log among the running voters can
//!   win (raft's up-to-date rule), so a new leader never lacks a committed entry.
//! - **Snapshot**: a peer PD adds (replica checker, balance, a replacement) receives the
//!   region's committed data from the leader when it is added, if its TiKV runs.
//! - **Destroyed data**: a store whose data directory is gone (its PVC and volume
//!   deleted) holds nothing for any of its peers, and never runs again under its ID.
//! - **Read**: a committed key survives while a majority of the region's current voters
//!   hold it; with fewer it is lost (the region cannot elect a leader holding it without
//!   unsafe recovery). A surviving key is readable when the region has a running leader
//!   and a majority of its voters run; otherwise it is unreadable for now.
//!
//! Regions never split or merge in the model, so the region that took a key owns it for
//! good.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Cluster;
use super::region::Region;
use super::{StoreError, StoreStartError};

/// The data the regions hold (ground truth; PD knows nothing of it).
#[derive(Clone, Debug, Default)]
pub struct Data {
    /// Region ID → index of its last committed entry.
    committed: BTreeMap<u64, u64>,
    /// Peer ID → index of the last entry it holds.
    held: BTreeMap<u64, u64>,
    /// Key → (region ID, log index) of its last committed write.
    keys: BTreeMap<String, (u64, u64)>,
    /// Stores whose data directory was destroyed.
    destroyed: BTreeSet<u64>,
}

impl Data {
    fn held(&self, peer: u64) -> u64 {
        self.held.get(&peer).copied().unwrap_or(0)
    }

    pub fn is_destroyed(&self, store: u64) -> bool {
        self.destroyed.contains(&store)
    }

    /// How many writes have committed, over all regions.
    pub fn committed_writes(&self) -> u64 {
        self.committed.values().sum()
    }
}

/// Why a write was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Unavailable {
    #[error("no region holds key {key} (the cluster is not bootstrapped)")]
    NoRegion { key: String },
    #[error("region {region} has no leader")]
    NoLeader { region: u64 },
    #[error("region {region}'s leader is on store {store}, whose TiKV is not running")]
    LeaderDown { region: u64, store: u64 },
    #[error("region {region} has {running} of {voters} voters running: no quorum")]
    NoQuorum { region: u64, running: usize, voters: usize },
}

/// A key [`Cluster::check_keys`] found lost or unreadable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyProblem {
    pub key: String,
    /// The region that took the key (none: it never committed).
    pub region: Option<u64>,
    pub reason: String,
}

/// What became of the keys asked about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCheck {
    pub checked: usize,
    /// Committed keys that no majority of their region's voters holds any more, and
    /// keys that never committed.
    pub lost: Vec<KeyProblem>,
    /// Keys a majority still holds but that cannot be read now (no running leader, or
    /// no running majority).
    pub unreadable: Vec<KeyProblem>,
}

impl Cluster {
    pub(super) fn store_runs(&self, id: u64) -> bool {
        self.stores.get(&id).is_some_and(|s| s.running)
    }

    /// A majority of the region's voters run: raft can commit (a write, a conf change).
    /// Without one, PD's operators on the region cannot take effect: the replica
    /// checker cannot repair a region from a minority.
    pub(super) fn has_running_quorum(&self, region: &Region) -> bool {
        region.voters().filter(|p| self.store_runs(p.store_id)).count() * 2 > region.voter_count()
    }

    /// The region whose range holds `key` (encoded keys compare as their upper-case hex).
    pub fn region_for_key(&self, key: &str) -> Option<&Region> {
        self.regions
            .values()
            .find(|r| r.start_key.as_str() <= key && (r.end_key.is_empty() || key < r.end_key.as_str()))
    }

    /// Why the region could not commit or serve now, if it cannot.
    fn unavailable(&self, region: &Region) -> Option<Unavailable> {
        let Some(leader) = region.leader_peer() else { return Some(Unavailable::NoLeader { region: region.id }) };
        if !self.store_runs(leader.store_id) {
            return Some(Unavailable::LeaderDown { region: region.id, store: leader.store_id });
        }
        let voters = region.voter_count();
        let running = region.voters().filter(|p| self.store_runs(p.store_id)).count();
        (running * 2 <= voters).then_some(Unavailable::NoQuorum { region: region.id, running, voters })
    }

    /// A client writes `key`: it commits in the region owning it, or is refused.
    /// Returns the entry's index in the region's log.
    pub fn put_key(&mut self, key: &str) -> Result<u64, Unavailable> {
        let region = self.region_for_key(key).ok_or_else(|| Unavailable::NoRegion { key: key.to_owned() })?;
        if let Some(refusal) = self.unavailable(region) {
            return Err(refusal);
        }
        let id = region.id;
        self.catch_up_region(id);
        let Some(region) = self.regions.get(&id) else { return Err(Unavailable::NoLeader { region: id }) };
        let index = self.data.committed.get(&id).copied().unwrap_or(0) + 1;
        let holders: Vec<u64> = region.peers.iter().filter(|p| self.store_runs(p.store_id)).map(|p| p.id).collect();
        for peer in holders {
            self.data.held.insert(peer, index);
        }
        self.data.committed.insert(id, index);
        self.data.keys.insert(key.to_owned(), (id, index));
        Ok(index)
    }

    /// Which of `keys` are lost or unreadable now.
    pub fn check_keys<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> KeyCheck {
        let mut check = KeyCheck::default();
        for key in keys {
            check.checked += 1;
            let Some(&(id, index)) = self.data.keys.get(key) else {
                check.lost.push(KeyProblem { key: key.to_owned(), region: None, reason: "never committed".into() });
                continue;
            };
            let problem = |reason: String| KeyProblem { key: key.to_owned(), region: Some(id), reason };
            let Some(region) = self.regions.get(&id) else {
                check.lost.push(problem(format!("region {id} is gone")));
                continue;
            };
            let voters: Vec<u64> = region.voters().map(|p| p.store_id).collect();
            let holders: Vec<u64> = region
                .voters()
                .filter(|p| self.data.held(p.id) >= index && !self.data.is_destroyed(p.store_id))
                .map(|p| p.store_id)
                .collect();
            if holders.len() * 2 <= voters.len() {
                check.lost.push(problem(format!(
                    "entry {index} held by stores {holders:?} of voters {voters:?}: no majority"
                )));
            } else if let Some(why) = self.unavailable(region) {
                check.unreadable.push(problem(why.to_string()));
            }
        }
        check
    }

    /// Raft log catch-up: while the region has a running leader, every running peer
    /// holds what the most up-to-date running peer holds (the leader, or a follower the
    /// leader caught up before leadership moved to it).
    pub(super) fn catch_up_region(&mut self, id: u64) {
        let Some(region) = self.regions.get(&id) else { return };
        if !region.leader_peer().is_some_and(|l| self.store_runs(l.store_id)) {
            return;
        }
        let running: Vec<u64> = region.peers.iter().filter(|p| self.store_runs(p.store_id)).map(|p| p.id).collect();
        let top = running.iter().map(|p| self.data.held(*p)).max().unwrap_or(0);
        if top == 0 {
            return;
        }
        for peer in running {
            self.data.held.insert(peer, top);
        }
    }

    /// A TiKV process runs again: its peers catch up where their region has a leader.
    pub(super) fn catch_up_store(&mut self, store: u64) {
        let ids: Vec<u64> = self.regions.values().filter(|r| r.has_peer_on(store)).map(|r| r.id).collect();
        for id in ids {
            self.catch_up_region(id);
        }
    }

    /// Raft snapshot: the peer just added on `store` receives the committed data from
    /// the region's running leader, if its own TiKV runs.
    pub(super) fn send_snapshot(&mut self, region: u64, store: u64) {
        let Some(r) = self.regions.get(&region) else { return };
        let (Some(leader), Some(peer)) = (r.leader_peer(), r.peer_on(store)) else { return };
        if !self.store_runs(leader.store_id) || !self.store_runs(store) {
            return;
        }
        let (from, to) = (leader.id, peer.id);
        let index = self.data.held(from);
        self.data.held.insert(to, index);
    }

    /// Raft's up-to-date rule: of the candidate stores (running voters of `region`), the
    /// ones whose peer holds the longest log.
    pub(super) fn most_up_to_date(&self, region: &Region, candidates: Vec<u64>) -> Vec<u64> {
        let held = |store: &u64| region.peer_on(*store).map(|p| self.data.held(p.id)).unwrap_or(0);
        let top = candidates.iter().map(held).max().unwrap_or(0);
        candidates.into_iter().filter(|s| held(s) == top).collect()
    }

    /// The store's data directory is gone (its volume deleted): every replica it held
    /// is lost, and the store never runs again under this ID. A running TiKV whose disk
    /// vanished stops.
    pub fn destroy_store_data(&mut self, id: u64) -> Result<(), StoreError> {
        if !self.stores.contains_key(&id) {
            return Err(StoreError::NotFound(id));
        }
        self.stop_store(id)?;
        let peers: Vec<u64> =
            self.regions.values().flat_map(|r| r.peers.iter()).filter(|p| p.store_id == id).map(|p| p.id).collect();
        for peer in peers {
            self.data.held.remove(&peer);
        }
        self.data.destroyed.insert(id);
        Ok(())
    }

    /// A destroyed store cannot start again: nothing on disk names its ID any more.
    pub(super) fn check_not_destroyed(&self, id: Option<u64>) -> Result<(), StoreStartError> {
        match id {
            Some(id) if self.data.is_destroyed(id) => Err(StoreStartError::DataDestroyed(id)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
