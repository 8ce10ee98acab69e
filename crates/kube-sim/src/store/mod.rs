//! The in-memory object store: one global resourceVersion, objects per group/resource,
//! a bounded history of changes (for watches, exact lists and the controllers), and the
//! write semantics of kube-apiserver (see [`ops`]).

mod admission;
mod client;
mod eviction;
mod list;
mod ops;
mod scale;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use sim_clock::{SimClock, SimInstant};

pub use client::{ResourceRef, StoreClient};
pub use eviction::Evicted;
pub use list::ListOptions;
pub(crate) use ops::{CRD_CLEANUP, FOREGROUND, ORPHAN, parse_delete_options};
pub use ops::{DeleteOptions, Deleted, Propagation, Subresource, WriteOptions, Written};
pub(crate) use scale::selector_string;
pub use watch::{WatchEvent, WatchOptions, Watcher, wire_line};

use crate::error::ApiError;
use crate::faults::FaultRules;
use crate::meta;
use crate::registry::{GroupResource, Registry, ResourceInfo};
use crate::request_log::RequestLog;

/// Where an object lives within its resource: namespace ("" if cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(namespace: &str, name: &str) -> Self {
        Key { namespace: namespace.into(), name: name.into() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjRef {
    pub gr: GroupResource,
    pub key: Key,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One committed write. `new` is the object after the write; for a deletion, the final
/// object carrying the deletion's resourceVersion.
#[derive(Debug)]
pub struct Change {
    pub rev: u64,
    pub gr: GroupResource,
    pub kind: ChangeKind,
    pub old: Option<Arc<Value>>,
    pub new: Arc<Value>,
    pub at: SimInstant,
}

pub(crate) struct State {
    pub rev: u64,
    pub registry: Registry,
    pub objects: HashMap<GroupResource, BTreeMap<Key, Arc<Value>>>,
    pub uids: HashMap<String, ObjRef>,
    /// Owner uid to the objects whose ownerReferences name it.
    pub dependents: HashMap<String, BTreeSet<ObjRef>>,
    pub history: VecDeque<Arc<Change>>,
    /// Every change up to this revision may be missing from `history`.
    pub compacted: u64,
    pub history_limit: usize,
    /// Server-side apply: the last configuration each manager applied, by (uid, manager).
    pub applied: HashMap<(String, String), Value>,
    pub next_cluster_ip: u32,
    pub validators: crate::validation::custom::Validators,
}

impl State {
    pub fn get(&self, gr: &GroupResource, key: &Key) -> Option<&Arc<Value>> {
        self.objects.get(gr).and_then(|m| m.get(key))
    }

    pub fn get_uid(&self, uid: &str) -> Option<&Arc<Value>> {
        self.uids.get(uid).and_then(|r| self.get(&r.gr, &r.key))
    }

    /// Objects of a resource, in one namespace or all, in key order.
    pub fn iter<'a>(
        &'a self,
        gr: &GroupResource,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a {
        self.objects.get(gr).into_iter().flat_map(move |m| {
            let start = Key::new(ns.unwrap_or(""), "");
            m.range(start..).take_while(move |(k, _)| ns.is_none_or(|n| k.namespace == n))
        })
    }

    fn index(&mut self, r: &ObjRef, old: Option<&Value>, new: Option<&Value>) {
        if let Some(o) = old {
            for owner in meta::owner_uids(o) {
                if let Some(set) = self.dependents.get_mut(&owner) {
                    set.remove(r);
                    if set.is_empty() {
                        self.dependents.remove(&owner);
                    }
                }
            }
            if new.is_none() {
                self.uids.remove(meta::uid(o));
            }
        }
        if let Some(n) = new {
            for owner in meta::owner_uids(n) {
                self.dependents.entry(owner).or_default().insert(r.clone());
            }
            self.uids.insert(meta::uid(n).to_string(), r.clone());
        }
    }

    fn push(&mut self, change: Change) -> Arc<Change> {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(c) = self.history.pop_front() {
                self.compacted = c.rev;
            }
        }
        change
    }

    /// Stores an added or modified object under a new resourceVersion.
    pub fn commit(
        &mut self,
        gr: &GroupResource,
        key: &Key,
        mut obj: Value,
        kind: ChangeKind,
        at: SimInstant,
    ) -> Arc<Value> {
        self.rev += 1;
        meta::set_meta(&mut obj, "resourceVersion", Some(Value::String(self.rev.to_string())));
        let obj = Arc::new(obj);
        let old = self.objects.entry(gr.clone()).or_default().insert(key.clone(), obj.clone());
        let r = ObjRef { gr: gr.clone(), key: key.clone() };
        self.index(&r, old.as_deref(), Some(&obj));
        self.push(Change { rev: self.rev, gr: gr.clone(), kind, old, new: obj.clone(), at });
        obj
    }

    /// Removes an object; `last` is its final state, which gets the deletion's resourceVersion.
    pub fn commit_delete(&mut self, gr: &GroupResource, key: &Key, mut last: Value, at: SimInstant) -> Arc<Value> {
        self.rev += 1;
        meta::set_meta(&mut last, "resourceVersion", Some(Value::String(self.rev.to_string())));
        let last = Arc::new(last);
        let old = self.objects.get_mut(gr).and_then(|m| m.remove(key));
        let r = ObjRef { gr: gr.clone(), key: key.clone() };
        self.index(&r, old.as_deref(), None);
        if let Some(o) = &old {
            let uid = meta::uid(o).to_string();
            self.applied.retain(|(u, _), _| *u != uid);
        }
        self.push(Change { rev: self.rev, gr: gr.clone(), kind: ChangeKind::Deleted, old, new: last.clone(), at });
        last
    }

    /// The objects of a resource as they were at revision `rev`, rebuilt from history.
    pub fn state_at(&self, gr: &GroupResource, rev: u64) -> Result<BTreeMap<Key, Arc<Value>>, ApiError> {
        if rev < self.compacted {
            return Err(ApiError::gone(format!("too old resource version: {rev} ({})", self.compacted + 1)));
        }
        let mut map = self.objects.get(gr).cloned().unwrap_or_default();
        for c in self.history.iter().rev().take_while(|c| c.rev > rev) {
            if c.gr != *gr {
                continue;
            }
            let key = Key::new(meta::namespace(&c.new), meta::name(&c.new));
            match (&c.kind, &c.old) {
                (ChangeKind::Added, _) => {
                    map.remove(&key);
                }
                (_, Some(old)) => {
                    map.insert(key, old.clone());
                }
                (_, None) => {}
            }
        }
        Ok(map)
    }

    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rev;
    }
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub rev_tx: tokio::sync::watch::Sender<u64>,
    pub clock: SimClock,
    pub watch_delay: Mutex<Duration>,
    pub drop_tx: tokio::sync::watch::Sender<u64>,
    pub log: RequestLog,
    pub faults: FaultRules,
}

/// A cheap-to-clone handle on the store. Its methods act as the API server itself (no
/// request log entry); use [`Store::client`] to act as a named client.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("revision", &self.revision()).finish()
    }
}

impl Store {
    pub(crate) fn new(clock: SimClock, history_limit: usize, seed: u64) -> Self {
        let (rev_tx, _) = tokio::sync::watch::channel(0);
        let (drop_tx, _) = tokio::sync::watch::channel(0);
        Store {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    rev: 0,
                    registry: Registry::with_builtins(),
                    objects: HashMap::new(),
                    uids: HashMap::new(),
                    dependents: HashMap::new(),
                    history: VecDeque::new(),
                    compacted: 0,
                    history_limit: history_limit.max(1),
                    applied: HashMap::new(),
                    next_cluster_ip: 10,
                    validators: Default::default(),
                }),
                rev_tx,
                clock,
                watch_delay: Mutex::new(Duration::ZERO),
                drop_tx,
                log: RequestLog::default(),
                faults: FaultRules::new(seed),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes watchers after a write; call with the lock released or held (it does not block).
    pub(crate) fn notify(&self, rev: u64) {
        self.shared.rev_tx.send_replace(rev);
    }

    pub fn clock(&self) -> &SimClock {
        &self.shared.clock
    }

    pub fn requests(&self) -> &RequestLog {
        &self.shared.log
    }

    /// The current global resourceVersion.
    pub fn revision(&self) -> u64 {
        self.lock().rev
    }

    /// A served resource by group, version and plural name.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.lock().registry.find(group, version, plural)
    }

    /// A served resource by apiVersion and kind.
    pub fn resource_for_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.lock().registry.find_kind(group, version, kind)
    }

    pub(crate) fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    /// A receiver that sees the global revision after every write.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.rev_tx.subscribe()
    }

    pub(crate) fn watch_delay(&self) -> Duration {
        *self.shared.watch_delay.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_watch_delay(&self, d: Duration) {
        *self.shared.watch_delay.lock().unwrap_or_else(|p| p.into_inner()) = d;
    }

    pub(crate) fn drop_watches(&self) {
        self.shared.drop_tx.send_modify(|g| *g += 1);
    }

    pub(crate) fn drop_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.drop_tx.subscribe()
    }

    pub(crate) fn compact(&self) {
        self.lock().compact();
    }

    /// Changes after `rev`, or `None` if some were compacted away.
    pub fn changes_since(&self, rev: u64) -> Option<(Vec<Arc<Change>>, u64)> {
        let st = self.lock();
        if rev < st.compacted {
            return None;
        }
        let start = st.history.partition_point(|c| c.rev <= rev);
        Some((st.history.range(start..).cloned().collect(), st.rev))
    }
}
