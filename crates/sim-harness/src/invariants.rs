//! The safety-invariant watcher (DESIGN.md section 5): it reads both simulators'
//! ground truth and records every breach by the operator's own actions, with the
//! simulated moment, the objects and the request involved.
//!
//! - (a) the operator deletes a TiKV pod whose store is Up and still holds leaders;
//! - (b) the operator deletes a PVC holding the data of a store that is not removed:
//!   removed means Tombstone in PD, or absent from PD after the watcher saw it
//!   Removing (Offline) or Tombstone. A store absent without ever having been seen
//!   removed is not removed. Which store a PVC's data belongs to is ground truth: the
//!   store whose data the PVC's volume (by the PVC's UID, which the request log records
//!   for every object a deletion takes) holds in the simulation, whatever the PVC's
//!   name or labels say; a PVC whose volume never held a store's data (TiKV never
//!   registered) holds none. Each PVC a deletecollection takes is judged like a DELETE
//!   of it. Exempt: the Cluster's `deletionPolicy: Delete` while that Cluster is being
//!   deleted;
//! - (c) more than `maxUnavailable` instances of a group are unavailable because of the
//!   operator: pods it deleted count until a new pod of that name is Ready, or until
//!   their instance (the pod's controller, a TiKV or PD object) is deleted and gone,
//!   scaled in and so out of the group's budget. (A pod the garbage collector takes
//!   once its instance is gone is therefore out at once; one taken by a foreground
//!   deletion of its instance counts while the instance waits for it.)
//! - (d) the operator deletes a PD member's pod while the other healthy members are not
//!   a majority of the membership; or, judged at the pass after it, a member removal
//!   the operator asked PD for (`DELETE /members/...`, seen in the proxy's PD write
//!   log) or a member joining (a new member ID in etcd: the operator created the pod
//!   that joined) leaves fewer running members than a majority of the membership;
//! - (e) an evict-leader scheduler entry the operator added (seen in the proxy's PD
//!   write log) outlives the operation: still present while its instance is Ready, not
//!   being deleted and its store Up, for longer than a grace period after the instance
//!   came back (or a long timeout if it was never restarted); or still present for
//!   longer than the grace period on a store that is Tombstone or absent from PD, or
//!   after its instance was deleted and is gone;
//! - (f) a region has a majority of its voters on stores the operator stopped, judged
//!   from pd-sim's regions (ground truth) at every pass. A store is stopped by the
//!   operator from the moment the operator deletes (or evicts, through the pod's
//!   `eviction` subresource) the pod running it, while its TiKV process is not running,
//!   until a new process of that store runs; a store whose pod someone else deleted, or
//!   whose process died, does not count. Reported once per region until the majority
//!   is back;
//! - (g) the operator removes an evict-leader scheduler entry it did not add: one
//!   another PD client added (an SRE with pd-ctl: another User-Agent), or one that was
//!   already there when the operator asked to add it (the proxy records what each
//!   scheduler write found), or one the watcher never saw anyone add. Removing the
//!   whole scheduler counts for every entry it held. An entry is the operator's from
//!   the write that created it to the write that removes it (PD may show a removal
//!   before the proxy has logged it, so absence alone does not end it).
//!
//! Kubernetes writes are attributed by the request log's client name (User-Agent and
//! field manager), PD writes by the proxy's record of the User-Agent. A deletion by
//! kube-sim's garbage collector is the operator's when the operator removed an owner
//! of the deleted object: it deleted the owner, or released the finalizer that kept it
//! (the write after which the owner was gone). What the user asked for is not a
//! breach: pods whose Cluster is being deleted (or was deleted), or is suspended
//! (`spec.suspendAction.suspendCompute` true when the deletion is answered: every pod
//! of it goes, PD's quorum with them), are exempt from (a), (c), (d) and (f), and (b)
//! has the deletion-policy exemption above (a suspension deletes no PVC).
//!
//! (a), (b) and (d) are judged on the state at the moment of the deletion: a hook on
//! kube-sim's request log ([`kube_sim::RequestLog::on_record`]) runs synchronously when
//! the DELETE is answered, before the operator (or the kubelet's stopping of the
//! process, or a raft election) can change PD's state, and records what the rule
//! needs; the watcher's passes then read the log incrementally
//! ([`kube_sim::RequestLog::since`]) and turn those records into breaches. Whether a
//! store was seen removed, and (e)'s timers, come from the passes: a
//! [`manual`](SafetyWatcher::manual) watcher sees only what its passes see.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube_sim::store::ChangeKind;
use kube_sim::{HookId, RequestRecord, Store, Verb};
use pd_sim::Snapshot;
use pd_sim::model::store::NodeState;
use serde_json::Value;
use sim_clock::SimInstant;
use tokio::sync::watch;

use crate::clusters::{DataDir, Instance, PdClusters};
use crate::network::{deleting, get, list, pod_ready, str_at};
use crate::proxy::{PdWrite, PdWriteLog};

/// The API group and version of the operator's Cluster objects.
const CLUSTERS: (&str, &str, &str) = ("core.tikv.org", "v1alpha1", "clusters");
/// Garbage-collected deletions waiting for their owner's remover, kept at most.
const UNATTRIBUTED_MAX: usize = 512;

#[derive(Clone, Debug)]
pub struct WatcherConfig {
    /// A Kubernetes or PD client is the operator when its name contains this.
    pub operator_client: String,
    /// The Kubernetes client name of the garbage collector.
    pub garbage_collector: String,
    /// Default `maxUnavailable` per group.
    pub max_unavailable: usize,
    /// Per group (`ns/group`) overrides.
    pub max_unavailable_per_group: BTreeMap<String, usize>,
    /// (e): how long an evict-leader scheduler may stay once its instance came back
    /// (Ready, store Up) after being restarted or taken down, or once its store is
    /// Tombstone or gone, or its instance deleted.
    pub evict_leader_grace: Duration,
    /// (e): how long an evict-leader scheduler may stay while its instance was never
    /// restarted (an operation that never proceeds).
    pub evict_leader_timeout: Duration,
    /// How often time-based rules are checked (simulated time).
    pub tick: Duration,
    pub group_label: String,
    pub cluster_label: String,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            operator_client: "tikv-operator".into(),
            garbage_collector: "kube-controller-manager/generic-garbage-collector".into(),
            max_unavailable: 1,
            max_unavailable_per_group: BTreeMap::new(),
            evict_leader_grace: Duration::from_secs(60),
            evict_leader_timeout: Duration::from_secs(1800),
            tick: Duration::from_secs(1),
            group_label: "tikv.org/group".into(),
            cluster_label: "tikv.org/cluster".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// (a) TiKV pod deleted while its store is Up with leaders.
    PodWithLeaders,
    /// (b) PVC of a store that is not removed deleted.
    LiveStorePvc,
    /// (c) more than maxUnavailable instances of a group unavailable.
    MaxUnavailable,
    /// (d) PD quorum lost.
    PdQuorum,
    /// (e) evict-leader scheduler outlived its operation.
    LingeringEvictLeader,
    /// (f) a region's voters are in majority on stores the operator stopped.
    RegionMajorityStopped,
    /// (g) evict-leader scheduler entry the operator did not add removed by it.
    ForeignEvictLeaderRemoved,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::PodWithLeaders => "(a) TiKV pod deleted while its store holds leaders",
            Invariant::LiveStorePvc => "(b) PVC of a store that is not removed deleted",
            Invariant::MaxUnavailable => "(c) more than maxUnavailable instances unavailable",
            Invariant::PdQuorum => "(d) PD quorum lost",
            Invariant::LingeringEvictLeader => "(e) evict-leader scheduler outlived its operation",
            Invariant::RegionMajorityStopped => {
                "(f) a region has a majority of its voters on stores the operator stopped"
            }
            Invariant::ForeignEvictLeaderRemoved => "(g) evict-leader scheduler the operator did not add removed",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Breach {
    pub invariant: Invariant,
    pub at: SimInstant,
    /// The objects involved (`pod db/basic-tikv-0`, `store 4`, ...).
    pub objects: Vec<String>,
    /// The request that caused it, if one did.
    pub request: Option<String>,
    pub detail: String,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[t={:.3}s] {}: {} — {}",
            self.at.since_start().as_secs_f64(),
            self.invariant,
            self.objects.join(", "),
            self.detail
        )?;
        if let Some(r) = &self.request {
            write!(f, " (request: {r})")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct Eviction {
    added: SimInstant,
    /// The instance was down (restarted, offline) since the scheduler was added.
    disrupted: bool,
    /// Since when the instance is back (Ready, store Up).
    settled_since: Option<SimInstant>,
    /// Since when its store is Tombstone or gone, or its instance deleted.
    orphaned_since: Option<SimInstant>,
}

impl Eviction {
    fn new(added: SimInstant) -> Eviction {
        Eviction { added, disrupted: false, settled_since: None, orphaned_since: None }
    }
}

/// A store whose pod the operator deleted or evicted, for (f).
#[derive(Clone, Debug)]
struct Stop {
    /// The start of its process that was running then (a larger one is a new process).
    starts: u64,
    pod: String,
    request: String,
}

/// An owner named in an object's `ownerReferences`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owner {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    controller: bool,
}

impl Owner {
    fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
    }

    fn describe(&self, ns: &str) -> String {
        format!("{} {ns}/{}", self.kind, self.name)
    }
}

/// A pod or PVC as last seen.
#[derive(Clone, Debug, Default)]
struct Seen {
    uid: String,
    labels: Value,
    owners: Vec<Owner>,
    /// The resourceVersion this was read from: an object not changed since is not read
    /// again.
    resource_version: String,
}

impl Seen {
    fn of(object: &Value) -> Seen {
        let owners = object["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| Owner {
                api_version: str_at(o, &["apiVersion"]).to_owned(),
                kind: str_at(o, &["kind"]).to_owned(),
                name: str_at(o, &["name"]).to_owned(),
                uid: str_at(o, &["uid"]).to_owned(),
                controller: o["controller"] == true,
            })
            .collect();
        Seen {
            uid: str_at(object, &["metadata", "uid"]).to_owned(),
            labels: object["metadata"]["labels"].clone(),
            owners,
            resource_version: str_at(object, &["metadata", "resourceVersion"]).to_owned(),
        }
    }

    /// Records `object` under `key` unless what is recorded was read from the same
    /// version of it.
    fn record(seen: &mut HashMap<String, Seen>, key: String, object: &Value) {
        let version = str_at(object, &["metadata", "resourceVersion"]);
        if seen.get(&key).is_none_or(|s| s.resource_version != version || version.is_empty()) {
            seen.insert(key, Seen::of(object));
        }
    }

    /// The controller owner (the instance of a pod), else the first owner.
    fn instance(&self) -> Option<&Owner> {
        self.owners.iter().find(|o| o.controller).or_else(|| self.owners.first())
    }
}

/// An object by API group, kind, namespace and name.
type ObjectKey = (String, String, String, String);

/// Who removed an object last: the DELETE of it, or the write after which it was gone.
#[derive(Clone, Debug)]
struct Removal {
    uid: Option<String>,
    by_operator: bool,
    request: String,
}

/// Where a PD store stands, for (b).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Standing {
    /// In PD and not Tombstone (its state name: Up, Offline, Disconnected, Down).
    Live(String),
    Tombstone,
    /// Absent from PD after the watcher saw it Removing or Tombstone.
    Purged,
    /// Absent from PD, never seen removed.
    Unknown,
}

impl Standing {
    fn removed(&self) -> bool {
        matches!(self, Standing::Tombstone | Standing::Purged)
    }
}

/// What the deletion of a pod or PVC met, recorded when it was answered.
#[derive(Clone, Debug)]
enum Verdict {
    /// A TiKV pod: its store's state and leaders, and which start of its process ran.
    Tikv { cluster: usize, store: u64, state: Option<(String, u64)>, starts: Option<u64> },
    /// A PD pod: its member, how many members are in etcd and how many others are healthy
    /// (running, and their pods present and not being deleted).
    Pd { cluster: usize, member: String, total: usize, healthy_others: usize },
    /// A PVC whose volume holds a store's data: the store's standing, and whether
    /// `deletionPolicy: Delete` of its Cluster (being deleted) applies.
    Pvc { cluster: usize, store: u64, standing: Standing, policy: bool },
    /// Nothing PD-related (a pod or PVC the processes never used, a volume without data).
    None,
}

/// A deletion as recorded by the request-log hook.
#[derive(Clone, Debug)]
struct Capture {
    /// The object when it was deleted, if still readable then (or as last seen).
    object: Option<Seen>,
    verdict: Verdict,
    /// Why the deletion is the user's doing (its Cluster is being deleted, or suspended).
    exempt: Option<String>,
}

/// A deletion by the garbage collector, judged once its owner's remover is known.
#[derive(Clone, Debug)]
struct Collected {
    record: RequestRecord,
    resource: String,
    namespace: String,
    name: String,
    capture: Capture,
}

#[derive(Default)]
struct CheckState {
    /// The next request-log sequence number to read.
    next_request: u64,
    /// (request seq, `ns/name`) → what the operator's deletion met (filled by the hook,
    /// drained by passes).
    captures: HashMap<(u64, String), Capture>,
    /// Garbage-collected deletions attributed to the operator, for the next pass; the
    /// `String` says which owner the operator removed.
    collected: Vec<(Collected, String)>,
    /// Garbage-collected deletions whose owners' removal was not (yet) the operator's.
    unattributed: VecDeque<Collected>,
    removals: HashMap<ObjectKey, Removal>,
    /// Clusters (`ns/name`) someone deleted.
    clusters_deleted: BTreeSet<String>,
    writes_seen: u64,
    /// pod `ns/name` → as last seen.
    pods: HashMap<String, Seen>,
    /// PVC `ns/name` → as last seen.
    pvcs: HashMap<String, Seen>,
    /// Live pod `ns/name` → (uid, ready, deleting).
    current: HashMap<String, (String, bool, bool)>,
    /// The store revision pods and PVCs were read up to (`None`: list them again).
    read_up_to: Option<u64>,
    /// When PD's ground truth was last read.
    pd_read_at: Option<SimInstant>,
    /// The operator's deletions judged so far, and how many of them a PD reading followed.
    deletions_judged: u64,
    deletions_read: u64,
    /// (PD cluster, store) seen Removing or Tombstone.
    removed_seen: BTreeSet<(usize, u64)>,
    /// group → pod `ns/name` → the pod the operator deleted.
    disrupted: BTreeMap<String, BTreeMap<String, Seen>>,
    over_budget: BTreeSet<String>,
    /// (cluster, store) → the evict-leader entry the operator added for it.
    evictions: BTreeMap<(usize, u64), Eviction>,
    /// (cluster, store) → who added an evict-leader entry that is not the operator's.
    foreign_evictions: BTreeMap<(usize, u64), String>,
    reported_evictions: BTreeSet<(usize, u64)>,
    /// (cluster, store) → the operator's deletion of the pod running it ((f)).
    stopped: BTreeMap<(usize, u64), Stop>,
    /// PD clusters with a region (f) reported, not yet all back to a majority.
    regions_reported: BTreeSet<usize>,
    /// (d): PD cluster → the member IDs in etcd at the last pass.
    members_seen: BTreeMap<usize, BTreeSet<u64>>,
    /// (d): the operator's member removals read this pass, judged on the snapshot.
    member_removals: Vec<(usize, SimInstant, String)>,
    breaches: Vec<Breach>,
}

struct Checker {
    store: Store,
    hook: Mutex<Option<HookId>>,
    clusters: Arc<PdClusters>,
    writes: PdWriteLog,
    config: WatcherConfig,
    state: Mutex<CheckState>,
}

pub struct SafetyWatcher {
    checker: Arc<Checker>,
    shutdown: watch::Sender<bool>,
    /// The background passes; none for a [`manual`](SafetyWatcher::manual) watcher.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SafetyWatcher {
    /// Starts watching kube-sim's `store` (writes and request log), the PD clusters'
    /// ground truth and the proxy's PD write log.
    pub fn start(store: &Store, clusters: Arc<PdClusters>, writes: PdWriteLog, config: WatcherConfig) -> SafetyWatcher {
        let mut watcher = SafetyWatcher::manual(store, clusters, writes, config);
        let (shutdown, mut rx) = watch::channel(false);
        let runner = watcher.checker.clone();
        watcher.task = Some(tokio::spawn(async move {
            let mut changes = runner.store.subscribe();
            let clock = runner.store.clock().clone();
            loop {
                runner.pass(false);
                let tick = runner.config.tick;
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = runner.writes.notified() => {}
                    _ = clock.sleep(tick) => {}
                    _ = rx.wait_for(|s| *s) => break,
                }
            }
        }));
        watcher.shutdown = shutdown;
        watcher
    }

    /// A watcher without background passes: deletions are still recorded as they are
    /// answered (the request-log hook), everything else is checked only by
    /// [`check_now`](Self::check_now) and [`breaches`](Self::breaches). Time-based rules
    /// ((c) recovery, (e)) and whether a store was seen removed ((b)) then depend on
    /// when those are called.
    pub fn manual(
        store: &Store,
        clusters: Arc<PdClusters>,
        writes: PdWriteLog,
        config: WatcherConfig,
    ) -> SafetyWatcher {
        let checker = Arc::new(Checker::new(store, clusters, writes, config));
        let weak = Arc::downgrade(&checker);
        let hook = store.requests().on_record(move |r| {
            if let Some(checker) = weak.upgrade() {
                checker.on_record(r);
            }
        });
        *checker.hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
        SafetyWatcher { checker, shutdown: watch::channel(false).0, task: None }
    }

    /// Runs the checks now (a test calls this before asserting, so that the last
    /// request is judged).
    pub fn check_now(&self) {
        self.checker.pass(true);
    }

    pub fn breaches(&self) -> Vec<Breach> {
        self.checker.pass(true);
        self.checker.lock().breaches.clone()
    }

    /// Panics with a readable list if any invariant was breached.
    #[allow(clippy::panic)]
    pub fn assert_none(&self) {
        let breaches = self.breaches();
        if !breaches.is_empty() {
            let list: Vec<String> = breaches.iter().map(|b| format!("  - {b}")).collect();
            panic!("{} safety invariant breach(es):\n{}", breaches.len(), list.join("\n"));
        }
    }

    pub async fn stop(self) {
        if let Some(hook) = self.checker.hook.lock().unwrap_or_else(|p| p.into_inner()).take() {
            self.checker.store.requests().remove_hook(hook);
        }
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

fn describe(r: &RequestRecord) -> String {
    format!(
        "{} {} {}/{} by {:?} (#{})",
        r.verb.to_string().to_uppercase(),
        r.resource_path(),
        r.namespace.as_deref().unwrap_or(""),
        r.name.as_deref().unwrap_or("*"),
        r.client,
        r.seq
    )
}

fn describe_pd(w: &PdWrite) -> String {
    format!("{} {} by {:?} (PD write #{})", w.method, w.path, w.client, w.seq)
}

fn answered(r: &RequestRecord) -> bool {
    (200..300).contains(&r.code)
}

/// The objects (`namespace`, `name`, `uid`) a DELETE or deletecollection took.
fn taken(r: &RequestRecord) -> Vec<(String, String, String)> {
    r.deleted.iter().map(|d| (d.namespace.clone(), d.name.clone(), d.uid.clone())).collect()
}

/// An evict-leader scheduler write, as PD's API reads it.
enum EvictWrite {
    Add(u64),
    Remove(u64),
    /// `DELETE /schedulers/evict-leader-scheduler`: every entry.
    RemoveAll,
}

fn evict_write(w: &PdWrite) -> Option<EvictWrite> {
    let path = w.path.split('?').next().unwrap_or_default();
    let store_id = |body: &Value| body["store_id"].as_u64().or_else(|| body["store_id"].as_f64().map(|f| f as u64));
    match w.method.as_str() {
        "POST" => {
            let body: Value = serde_json::from_slice(&w.body).unwrap_or(Value::Null);
            let add = match path {
                "/pd/api/v1/schedulers" => body["name"] == "evict-leader-scheduler",
                "/pd/api/v1/scheduler-config/evict-leader-scheduler/config" => true,
                _ => false,
            };
            store_id(&body).filter(|_| add).map(EvictWrite::Add)
        }
        "DELETE" if path == "/pd/api/v1/schedulers/evict-leader-scheduler" => Some(EvictWrite::RemoveAll),
        "DELETE" => path
            .strip_prefix("/pd/api/v1/schedulers/evict-leader-scheduler-")
            .or_else(|| path.strip_prefix("/pd/api/v1/scheduler-config/evict-leader-scheduler/delete/"))
            .and_then(|s| s.parse::<u64>().ok())
            .map(EvictWrite::Remove),
        _ => None,
    }
}

impl Checker {
    fn new(store: &Store, clusters: Arc<PdClusters>, writes: PdWriteLog, config: WatcherConfig) -> Checker {
        let state = CheckState { next_request: store.requests().next_seq(), ..CheckState::default() };
        Checker { store: store.clone(), hook: Mutex::default(), clusters, writes, config, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CheckState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_operator(&self, client: &str) -> bool {
        client.contains(&self.config.operator_client)
    }

    fn group_of(&self, ns: &str, labels: &Value) -> Option<String> {
        labels[self.config.group_label.as_str()].as_str().map(|g| format!("{ns}/{g}"))
    }

    fn object_key(&self, r: &RequestRecord, ns: &str, name: &str) -> Option<ObjectKey> {
        let info = self.store.resource(&r.group, &r.version, &r.resource)?;
        Some((r.group.clone(), info.kind.clone(), ns.to_owned(), name.to_owned()))
    }

    /// Whether `owner` (of an object in `ns`) was deleted and is gone (or replaced by a
    /// new object of that name). An owner of a kind the server does not serve is not.
    fn owner_gone(&self, ns: &str, owner: &Owner) -> bool {
        let Some(info) = self.store.resource_for_kind(&owner.api_version, &owner.kind) else { return false };
        let namespace = if info.namespaced { Some(ns) } else { None };
        match self.store.get(&info, namespace, &owner.name) {
            Ok(object) => str_at(&object, &["metadata", "uid"]) != owner.uid,
            Err(_) => true,
        }
    }

    fn is_kubernetes_delete(r: &RequestRecord) -> bool {
        matches!(r.verb, Verb::Delete | Verb::DeleteCollection)
            && r.group.is_empty()
            && matches!(r.resource.as_str(), "pods" | "persistentvolumeclaims")
    }

    /// The request-log hook: what a deletion met, and who removed which object, at once.
    fn on_record(&self, r: &RequestRecord) {
        if !answered(r) {
            return;
        }
        match r.verb {
            Verb::Delete | Verb::DeleteCollection => {
                self.note_deletion(r);
                if Self::is_kubernetes_delete(r) {
                    self.capture(r);
                }
            }
            Verb::Update | Verb::Patch if r.subresource.is_none() && self.is_operator(&r.client) => {
                self.note_release(r);
            }
            Verb::Create if Self::is_eviction(r) && self.is_operator(&r.client) => {
                let (Some(ns), Some(name)) = (r.namespace.as_deref(), r.name.as_deref()) else { return };
                if let Verdict::Tikv { cluster, store, starts: Some(starts), .. } = self.judge_pod(ns, name) {
                    let key = format!("{ns}/{name}");
                    let labels = self.lock().pods.get(&key).map(|p| p.labels.clone()).unwrap_or(Value::Null);
                    let clusters_deleted = self.lock().clusters_deleted.clone();
                    let exempt = self.cluster_deletion(ns, &labels, &clusters_deleted);
                    if exempt.or_else(|| self.cluster_suspension(ns, &labels)).is_none() {
                        let stop = Stop { starts, pod: key, request: describe(r) };
                        self.lock().stopped.insert((cluster, store), stop);
                    }
                }
            }
            _ => {}
        }
    }

    /// `POST .../pods/{name}/eviction`.
    fn is_eviction(r: &RequestRecord) -> bool {
        r.group.is_empty() && r.resource == "pods" && r.subresource.as_deref() == Some("eviction")
    }

    /// Records who deleted each object a DELETE or deletecollection took.
    fn note_deletion(&self, r: &RequestRecord) {
        if r.resource == "events" {
            return;
        }
        let by_operator = self.is_operator(&r.client);
        let mut noted = Vec::new();
        for (ns, name, uid) in taken(r) {
            if (r.group.as_str(), r.resource.as_str()) == (CLUSTERS.0, CLUSTERS.2) {
                self.lock().clusters_deleted.insert(format!("{ns}/{name}"));
            }
            let Some(key) = self.object_key(r, &ns, &name) else { continue };
            noted.push((key, uid));
        }
        let mut st = self.lock();
        for (key, uid) in noted {
            let earlier = st.removals.get(&key);
            // The operator's deletion of this very object stays the operator's, whoever
            // deletes it again while it waits for its finalizers.
            if !by_operator && earlier.is_some_and(|e| e.by_operator && e.uid.as_ref() == Some(&uid)) {
                continue;
            }
            st.removals.insert(key.clone(), Removal { uid: Some(uid.clone()), by_operator, request: describe(r) });
            if by_operator {
                self.attribute_collected(&mut st, &key, Some(&uid));
            }
        }
    }

    /// An operator's write after which the object is gone released its last finalizer.
    fn note_release(&self, r: &RequestRecord) {
        let (Some(name), Some(info)) = (r.name.as_deref(), self.store.resource(&r.group, &r.version, &r.resource))
        else {
            return;
        };
        let ns = r.namespace.as_deref().unwrap_or_default();
        if self.store.get(&info, r.namespace.as_deref(), name).is_ok() {
            return;
        }
        let key = (r.group.clone(), info.kind.clone(), ns.to_owned(), name.to_owned());
        let mut st = self.lock();
        let uid = st.removals.get(&key).and_then(|e| e.uid.clone());
        st.removals.insert(key.clone(), Removal { uid: uid.clone(), by_operator: true, request: describe(r) });
        self.attribute_collected(&mut st, &key, uid.as_deref());
    }

    /// The operator's removal of `key` (if any) among `owners` of an object in `ns`.
    fn removed_owner(&self, st: &CheckState, ns: &str, owners: &[Owner]) -> Option<String> {
        owners.iter().find_map(|o| {
            let key = (o.group().to_owned(), o.kind.clone(), ns.to_owned(), o.name.clone());
            let removal = st.removals.get(&key)?;
            let same = removal.uid.as_ref().is_none_or(|u| *u == o.uid);
            (removal.by_operator && same)
                .then(|| format!("the operator removed {}: {}", o.describe(ns), removal.request))
        })
    }

    /// Garbage-collected deletions of dependents of `key`, recorded before the operator's
    /// removal of `key` was (the collector can answer first): now the operator's.
    fn attribute_collected(&self, st: &mut CheckState, key: &ObjectKey, uid: Option<&str>) {
        let (group, kind, ns, name) = key;
        let waiting = std::mem::take(&mut st.unattributed);
        for c in waiting {
            let owned = c.namespace == *ns
                && c.capture.object.as_ref().is_some_and(|o| {
                    o.owners.iter().any(|owner| {
                        owner.group() == group
                            && owner.kind == *kind
                            && owner.name == *name
                            && uid.is_none_or(|u| u == owner.uid)
                    })
                });
            if owned && let Some(why) = self.removed_owner(st, ns, c.capture.object.as_ref().map_or(&[], |o| &o.owners))
            {
                st.collected.push((c, why));
            } else {
                st.unattributed.push_back(c);
            }
        }
    }

    /// Records what the deletion of each pod or PVC a request took met, if the deletion
    /// is the operator's (directly or by garbage collection).
    fn capture(&self, r: &RequestRecord) {
        let operator = self.is_operator(&r.client);
        if !operator && r.client != self.config.garbage_collector {
            return;
        }
        for (ns, name, uid) in taken(r) {
            let key = format!("{ns}/{name}");
            let (cached, removed_seen, clusters_deleted) = {
                let st = self.lock();
                let cached = if r.resource == "pods" { st.pods.get(&key) } else { st.pvcs.get(&key) };
                (cached.cloned(), st.removed_seen.clone(), st.clusters_deleted.clone())
            };
            let capture = self.judge(&r.resource, &ns, &name, &uid, cached, &removed_seen, &clusters_deleted);
            let mut st = self.lock();
            if operator {
                // A pass that already read this record judged it itself.
                if r.seq >= st.next_request {
                    st.captures.insert((r.seq, key), capture);
                }
                continue;
            }
            let collected =
                Collected { record: r.clone(), resource: r.resource.clone(), namespace: ns.clone(), name, capture };
            let owners = collected.capture.object.as_ref().map(|o| o.owners.clone()).unwrap_or_default();
            match self.removed_owner(&st, &ns, &owners) {
                Some(why) => st.collected.push((collected, why)),
                None => {
                    if st.unattributed.len() >= UNATTRIBUTED_MAX {
                        st.unattributed.pop_front();
                    }
                    st.unattributed.push_back(collected);
                }
            }
        }
    }

    /// What the deletion of the pod or PVC `ns/name` (`uid`) meets now (ground truth of
    /// both simulators). `cached` is the object as last seen.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
        uid: &str,
        cached: Option<Seen>,
        removed_seen: &BTreeSet<(usize, u64)>,
        clusters_deleted: &BTreeSet<String>,
    ) -> Capture {
        let plural = if resource == "pods" { "pods" } else { "persistentvolumeclaims" };
        let live = get(&self.store, "", "v1", plural, Some(ns), name).map(|o| Seen::of(&o)).filter(|o| o.uid == uid);
        let object = live.or(cached.filter(|o| o.uid == uid));
        let labels = object.as_ref().map(|o| o.labels.clone()).unwrap_or(Value::Null);
        match resource {
            "pods" => Capture {
                exempt: self
                    .cluster_deletion(ns, &labels, clusters_deleted)
                    .or_else(|| self.cluster_suspension(ns, &labels)),
                object,
                verdict: self.judge_pod(ns, name),
            },
            _ => Capture { verdict: self.judge_pvc(ns, uid, &labels, removed_seen), object, exempt: None },
        }
    }

    /// Why deleting an object with these labels is the user's doing: its Cluster is being
    /// deleted, or was deleted.
    fn cluster_deletion(&self, ns: &str, labels: &Value, clusters_deleted: &BTreeSet<String>) -> Option<String> {
        let cluster = labels[self.config.cluster_label.as_str()].as_str()?;
        let (group, version, plural) = CLUSTERS;
        match get(&self.store, group, version, plural, Some(ns), cluster) {
            Some(c) if deleting(&c) => Some(format!("Cluster {ns}/{cluster} is being deleted")),
            Some(_) => None,
            None => clusters_deleted
                .contains(&format!("{ns}/{cluster}"))
                .then(|| format!("Cluster {ns}/{cluster} was deleted")),
        }
    }

    /// Why deleting a pod with these labels is the user's doing: its Cluster is
    /// suspended (`spec.suspendAction.suspendCompute`), so every pod of it goes.
    fn cluster_suspension(&self, ns: &str, labels: &Value) -> Option<String> {
        let cluster = labels[self.config.cluster_label.as_str()].as_str()?;
        let (group, version, plural) = CLUSTERS;
        let c = get(&self.store, group, version, plural, Some(ns), cluster)?;
        (c["spec"]["suspendAction"]["suspendCompute"] == true).then(|| format!("Cluster {ns}/{cluster} is suspended"))
    }

    fn judge_pod(&self, ns: &str, name: &str) -> Verdict {
        match self.clusters.pod(ns, name) {
            Some(Instance::Tikv { cluster, store }) => {
                let Some(c) = self.clusters.get(cluster) else { return Verdict::None };
                let snap = c.snapshot();
                let state = snap.store(store).map(|s| (s.state_name.clone(), s.leader_count));
                let starts = snap.store(store).map(|s| s.starts);
                Verdict::Tikv { cluster, store, state, starts }
            }
            Some(Instance::Pd { cluster, member }) => {
                let Some(c) = self.clusters.get(cluster) else { return Verdict::None };
                let snap = c.snapshot();
                let pods = self.clusters.pods();
                let total = snap.members.iter().filter(|m| m.in_etcd).count();
                // A member counts as healthy when it runs and its pod (if a pod runs it)
                // is there and not being deleted: a pod in graceful termination may still
                // run its member, but not for long.
                let pod_alive = |member: &str| {
                    let mut runners = pods.iter().filter(
                        |(_, i)| matches!(i, Instance::Pd { cluster: c, member: m } if *c == cluster && m == member),
                    );
                    runners.next().is_none_or(|(key, _)| {
                        let (pns, pname) = key.split_once('/').unwrap_or_default();
                        get(&self.store, "", "v1", "pods", Some(pns), pname).is_some_and(|p| !deleting(&p))
                    })
                };
                let healthy_others = snap
                    .members
                    .iter()
                    .filter(|m| m.in_etcd && m.running && m.name != member && pod_alive(&m.name))
                    .count();
                Verdict::Pd { cluster, member, total, healthy_others }
            }
            None => Verdict::None,
        }
    }

    /// What the deletion of the PVC `uid` meets: the standing of the store whose data
    /// its volume holds, if any.
    fn judge_pvc(&self, ns: &str, uid: &str, labels: &Value, removed_seen: &BTreeSet<(usize, u64)>) -> Verdict {
        // PD data, or a volume no TiKV ever registered a store on, is not (b)'s.
        let Some(DataDir::Store { cluster, id }) = self.clusters.data(&format!("pvc:{uid}")) else {
            return Verdict::None;
        };
        let Some(c) = self.clusters.get(cluster) else { return Verdict::None };
        let standing = match c.snapshot().store(id) {
            Some(s) if s.node_state == NodeState::Removed => Standing::Tombstone,
            Some(s) => Standing::Live(s.state_name.clone()),
            None if removed_seen.contains(&(cluster, id)) => Standing::Purged,
            None => Standing::Unknown,
        };
        Verdict::Pvc { cluster, store: id, standing, policy: self.deletion_policy_applies(ns, labels) }
    }

    /// `deletionPolicy: Delete` of the PVC's Cluster (by its cluster label), while that
    /// Cluster is being deleted.
    fn deletion_policy_applies(&self, ns: &str, labels: &Value) -> bool {
        let Some(cluster) = labels[self.config.cluster_label.as_str()].as_str() else { return false };
        let (group, version, plural) = CLUSTERS;
        match get(&self.store, group, version, plural, Some(ns), cluster) {
            Some(c) => c["spec"]["deletionPolicy"] == "Delete" && deleting(&c),
            None => false,
        }
    }

    /// Reads what was written since the last pass and judges it. PD's ground truth is
    /// read (every cluster's snapshot, the costly part) when the operator wrote to PD
    /// or deleted a pod or PVC since, when a tick has passed since the last reading
    /// (the time-based rules), or when `now` is asked for.
    fn pass(&self, now_asked: bool) {
        let mut st = self.lock();
        let now = self.store.clock().now();
        self.read_pods_and_claims(&mut st);
        let current = std::mem::take(&mut st.current);
        let (records, next) = self.store.requests().since(st.next_request);
        st.next_request = next;
        for r in &records {
            if !(answered(r) && Self::is_kubernetes_delete(r) && self.is_operator(&r.client)) {
                continue;
            }
            for (ns, name, uid) in taken(r) {
                let key = format!("{ns}/{name}");
                // Captured when the request was answered; judged now only if the hook
                // missed it (the watcher started later).
                let capture = match st.captures.remove(&(r.seq, key.clone())) {
                    Some(capture) => capture,
                    None => {
                        let cached = if r.resource == "pods" { st.pods.get(&key) } else { st.pvcs.get(&key) };
                        let cached = cached.cloned();
                        self.judge(&r.resource, &ns, &name, &uid, cached, &st.removed_seen, &st.clusters_deleted)
                    }
                };
                self.deleted(&mut st, r, &r.resource, &ns, &name, capture, None);
            }
        }
        for (c, why) in std::mem::take(&mut st.collected) {
            self.deleted(&mut st, &c.record, &c.resource, &c.namespace, &c.name, c.capture, Some(why));
        }

        let writes = self.writes.since(st.writes_seen);
        st.writes_seen += writes.len() as u64;
        let acted = !writes.is_empty() || st.deletions_judged != st.deletions_read;
        st.deletions_read = st.deletions_judged;
        let due = st.pd_read_at.is_none_or(|at| now >= at + self.config.tick);
        if !(acted || due || now_asked) {
            st.current = current;
            return;
        }
        st.pd_read_at = Some(now);
        // Writes PD accepted, and those it never answered (maybe applied: judged as if).
        for w in writes.iter().filter(|w| (200..300).contains(&w.status) || w.status == crate::proxy::UNANSWERED) {
            self.pd_write(&mut st, w);
        }
        // Read after the PD write log: every write read so far is in PD's state (the
        // proxy logs a write once PD has answered it).
        let snapshots: BTreeMap<usize, Snapshot> =
            self.clusters.clusters().iter().map(|c| (c.index, c.snapshot())).collect();
        for (cluster, snap) in &snapshots {
            for s in snap.stores.iter().filter(|s| matches!(s.node_state, NodeState::Removing | NodeState::Removed)) {
                st.removed_seen.insert((*cluster, s.id));
            }
        }
        self.check_budgets(&mut st, &current, now);
        self.check_evictions(&mut st, &current, &snapshots, now);
        Self::check_majorities(&mut st, &snapshots, now);
        Self::check_membership(&mut st, &snapshots, now);
        st.current = current;
    }

    /// Records every pod and PVC written since the last pass (all of them at first, or
    /// when the store's history no longer reaches back that far), and which pods live.
    fn read_pods_and_claims(&self, st: &mut CheckState) {
        let key = |o: &Value| format!("{}/{}", str_at(o, &["metadata", "namespace"]), str_at(o, &["metadata", "name"]));
        let live = |p: &Value| (str_at(p, &["metadata", "uid"]).to_owned(), pod_ready(p), deleting(p));
        if let Some((changes, rev)) = st.read_up_to.and_then(|rev| self.store.changes_since(rev)) {
            st.read_up_to = Some(rev);
            for c in changes.iter().filter(|c| c.gr.group.is_empty()) {
                let deleted = c.kind == ChangeKind::Deleted;
                match c.gr.resource.as_str() {
                    "pods" if deleted => {
                        st.current.remove(&key(&c.new));
                    }
                    "pods" => {
                        Seen::record(&mut st.pods, key(&c.new), &c.new);
                        st.current.insert(key(&c.new), live(&c.new));
                    }
                    "persistentvolumeclaims" if !deleted => Seen::record(&mut st.pvcs, key(&c.new), &c.new),
                    _ => {}
                }
            }
            return;
        }
        // The revision first: what is written while listing is read again next pass.
        st.read_up_to = Some(self.store.revision());
        st.current.clear();
        for p in list(&self.store, "pods", None) {
            Seen::record(&mut st.pods, key(&p), &p);
            st.current.insert(key(&p), live(&p));
        }
        for pvc in list(&self.store, "persistentvolumeclaims", None) {
            Seen::record(&mut st.pvcs, key(&pvc), &pvc);
        }
    }

    /// (d) for membership changes: after the operator's member removal, and after a
    /// member joins, the running members must be a majority of the members in etcd.
    fn check_membership(st: &mut CheckState, snapshots: &BTreeMap<usize, Snapshot>, now: SimInstant) {
        let quorum = |snap: &Snapshot| {
            let total = snap.members.iter().filter(|m| m.in_etcd).count();
            let running = snap.members.iter().filter(|m| m.in_etcd && m.running).count();
            (running, total, running * 2 > total)
        };
        for (cluster, at, request) in std::mem::take(&mut st.member_removals) {
            let Some(snap) = snapshots.get(&cluster) else { continue };
            let (running, total, ok) = quorum(snap);
            if !ok {
                st.breaches.push(Breach {
                    invariant: Invariant::PdQuorum,
                    at,
                    objects: vec![format!("PD cluster {cluster}")],
                    request: Some(request),
                    detail: format!("after the member removal {running} of {total} members run, not a majority"),
                });
            }
        }
        for (cluster, snap) in snapshots {
            let ids: BTreeSet<u64> = snap.members.iter().filter(|m| m.in_etcd).map(|m| m.member_id).collect();
            let Some(before) = st.members_seen.insert(*cluster, ids.clone()) else { continue };
            let joined: Vec<&pd_sim::model::member::Member> =
                snap.members.iter().filter(|m| m.in_etcd && !before.contains(&m.member_id)).collect();
            if joined.is_empty() {
                continue;
            }
            let (running, total, ok) = quorum(snap);
            if !ok {
                st.breaches.push(Breach {
                    invariant: Invariant::PdQuorum,
                    at: now,
                    objects: joined.iter().map(|m| format!("PD member {} (PD cluster {cluster})", m.name)).collect(),
                    request: None,
                    detail: format!("after a member joined {running} of {total} members run, not a majority"),
                });
            }
        }
    }

    /// (f): no region with a majority of its voters on stores the operator stopped.
    /// Reported once per PD cluster and episode (until no region of it is in that state
    /// any more), naming the regions and the stops.
    fn check_majorities(st: &mut CheckState, snapshots: &BTreeMap<usize, Snapshot>, now: SimInstant) {
        // A new process of the store (or the store gone from PD) ends the operator's stop.
        st.stopped.retain(|(cluster, id), stop| {
            snapshots.get(cluster).and_then(|s| s.store(*id)).is_some_and(|s| !(s.running && s.starts != stop.starts))
        });
        for (cluster, snap) in snapshots {
            let down: BTreeMap<u64, &Stop> = st
                .stopped
                .iter()
                .filter(|((c, id), _)| c == cluster && snap.store(*id).is_some_and(|s| !s.running))
                .map(|((_, id), stop)| (*id, stop))
                .collect();
            let lost: Vec<(u64, usize, Vec<u64>)> = snap
                .regions
                .iter()
                .filter_map(|region| {
                    let voters: Vec<u64> = region.voters().map(|p| p.store_id).collect();
                    let stopped: Vec<u64> = voters.iter().copied().filter(|id| down.contains_key(id)).collect();
                    (stopped.len() * 2 > voters.len()).then_some((region.id, voters.len(), stopped))
                })
                .collect();
            if lost.is_empty() {
                st.regions_reported.remove(cluster);
                continue;
            }
            if !st.regions_reported.insert(*cluster) {
                continue;
            }
            let stores: BTreeSet<u64> = lost.iter().flat_map(|(_, _, s)| s.iter().copied()).collect();
            let objects = stores
                .iter()
                .filter_map(|id| {
                    down.get(id).map(|stop| format!("store {id} (PD cluster {cluster}, pod {})", stop.pod))
                })
                .chain(lost.iter().take(5).map(|(region, _, _)| format!("region {region}")))
                .collect();
            let (region, voters, stopped) = &lost[0];
            let more = if lost.len() > 1 { format!(" and {} more region(s)", lost.len() - 1) } else { String::new() };
            let stops: Vec<String> =
                stores.iter().filter_map(|id| down.get(id).map(|s| format!("store {id} by {}", s.request))).collect();
            st.breaches.push(Breach {
                invariant: Invariant::RegionMajorityStopped,
                at: now,
                objects,
                request: stores.iter().rev().find_map(|id| down.get(id)).map(|s| s.request.clone()),
                detail: format!(
                    "region {region} has {} of its {voters} voters on stores the operator stopped{more} ({})",
                    stopped.len(),
                    stops.join("; ")
                ),
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deleted(
        &self,
        st: &mut CheckState,
        r: &RequestRecord,
        resource: &str,
        ns: &str,
        name: &str,
        capture: Capture,
        via: Option<String>,
    ) {
        st.deletions_judged += 1;
        let mut request = describe(r);
        if let Some(why) = via {
            request = format!("{request}, after {why}");
        }
        match resource {
            "pods" => self.pod_deleted(st, r.at, request, ns, name, capture),
            _ => self.pvc_deleted(st, r.at, request, ns, name, capture.verdict),
        }
    }

    fn pod_deleted(&self, st: &mut CheckState, at: SimInstant, request: String, ns: &str, name: &str, c: Capture) {
        if c.exempt.is_some() {
            return;
        }
        let key = format!("{ns}/{name}");
        if let Some(seen) = c.object.or_else(|| st.pods.get(&key).cloned())
            && let Some(group) = self.group_of(ns, &seen.labels)
        {
            st.disrupted.entry(group).or_default().insert(key.clone(), seen);
        }
        if let Verdict::Tikv { cluster, store, starts: Some(starts), .. } = &c.verdict {
            st.stopped.insert((*cluster, *store), Stop { starts: *starts, pod: key.clone(), request: request.clone() });
        }
        match c.verdict {
            // Not `running`: the kubelet may already have stopped the process this
            // deletion is about; leaders stay until the raft election timeout.
            Verdict::Tikv { cluster, store, state: Some((state, leaders)), .. } if state == "Up" && leaders > 0 => {
                st.breaches.push(Breach {
                    invariant: Invariant::PodWithLeaders,
                    at,
                    objects: vec![format!("pod {key}"), format!("store {store} (PD cluster {cluster})")],
                    request: Some(request),
                    detail: format!("store {store} is Up and holds {leaders} leader(s)"),
                });
            }
            Verdict::Pd { cluster, member, total, healthy_others } if total > 0 && healthy_others * 2 <= total => {
                st.breaches.push(Breach {
                    invariant: Invariant::PdQuorum,
                    at,
                    objects: vec![format!("pod {key}"), format!("PD member {member} (PD cluster {cluster})")],
                    request: Some(request),
                    detail: format!("{healthy_others} of {total} members would remain healthy, not a majority"),
                });
            }
            _ => {}
        }
    }

    fn pvc_deleted(&self, st: &mut CheckState, at: SimInstant, request: String, ns: &str, name: &str, v: Verdict) {
        let Verdict::Pvc { cluster, store: id, standing, policy } = v else { return };
        if standing.removed() || policy {
            return;
        }
        let standing = match standing {
            Standing::Live(state) => format!("is {state}, not Tombstone"),
            _ => "is absent from PD without having been seen Removing or Tombstone".to_owned(),
        };
        st.breaches.push(Breach {
            invariant: Invariant::LiveStorePvc,
            at,
            objects: vec![format!("pvc {ns}/{name}"), format!("store {id} (PD cluster {cluster})")],
            request: Some(request),
            detail: format!(
                "its volume holds store {id}'s data; store {id} {standing}, and no deletionPolicy: Delete applies"
            ),
        });
    }

    /// Follows the evict-leader entries through every PD write: which are the
    /// operator's ((e)), and whether the operator removes one that is not ((g)).
    fn pd_write(&self, st: &mut CheckState, w: &PdWrite) {
        let path = w.path.split('?').next().unwrap_or_default();
        if w.method == "DELETE" && path.contains("/pd/api/v1/members/") && self.is_operator(&w.client) {
            st.member_removals.push((w.cluster, w.at, describe_pd(w)));
            return;
        }
        let Some(write) = evict_write(w) else { return };
        let operator = self.is_operator(&w.client);
        let before = w.evict_leader_before.as_ref();
        let removed: Vec<u64> = match write {
            EvictWrite::Add(id) => {
                let key = (w.cluster, id);
                let existed = before.is_some_and(|b| b.contains(&id));
                if !existed && operator {
                    st.foreign_evictions.remove(&key);
                    st.evictions.insert(key, Eviction::new(w.at));
                    st.reported_evictions.remove(&key);
                } else if !existed {
                    st.evictions.remove(&key);
                    st.foreign_evictions.insert(key, format!("added by {}", describe_pd(w)));
                } else if operator && !st.evictions.contains_key(&key) {
                    // Asking for an entry already there does not make it the operator's.
                    st.foreign_evictions
                        .entry(key)
                        .or_insert_with(|| format!("already there when the operator added it ({})", describe_pd(w)));
                }
                return;
            }
            EvictWrite::Remove(id) => vec![id],
            EvictWrite::RemoveAll => match before {
                Some(before) => before.iter().copied().collect(),
                None => st
                    .evictions
                    .keys()
                    .chain(st.foreign_evictions.keys())
                    .filter(|(c, _)| *c == w.cluster)
                    .map(|(_, s)| *s)
                    .collect(),
            },
        };
        for id in removed {
            let key = (w.cluster, id);
            if operator && !st.evictions.contains_key(&key) {
                let origin = st
                    .foreign_evictions
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| "not added by the operator (no write the watcher saw added it)".into());
                st.breaches.push(Breach {
                    invariant: Invariant::ForeignEvictLeaderRemoved,
                    at: w.at,
                    objects: vec![format!("store {id} (PD cluster {})", w.cluster)],
                    request: Some(describe_pd(w)),
                    detail: format!("the operator removed an evict-leader entry it did not add: {origin}"),
                });
            }
            st.evictions.remove(&key);
            st.foreign_evictions.remove(&key);
            st.reported_evictions.remove(&key);
        }
    }

    fn check_budgets(&self, st: &mut CheckState, current: &HashMap<String, (String, bool, bool)>, now: SimInstant) {
        for members in st.disrupted.values_mut() {
            members.retain(|pod, seen| {
                let replaced =
                    current.get(pod).is_some_and(|(uid, ready, deleting)| *uid != seen.uid && *ready && !*deleting);
                let ns = pod.split_once('/').map(|(ns, _)| ns).unwrap_or_default();
                let scaled_in = seen.instance().is_some_and(|owner| self.owner_gone(ns, owner));
                !replaced && !scaled_in
            });
        }
        st.disrupted.retain(|_, m| !m.is_empty());
        let groups: Vec<(String, Vec<String>)> =
            st.disrupted.iter().map(|(g, m)| (g.clone(), m.keys().cloned().collect())).collect();
        for (group, pods) in groups {
            let budget =
                self.config.max_unavailable_per_group.get(&group).copied().unwrap_or(self.config.max_unavailable);
            if pods.len() > budget {
                if st.over_budget.insert(group.clone()) {
                    st.breaches.push(Breach {
                        invariant: Invariant::MaxUnavailable,
                        at: now,
                        objects: std::iter::once(format!("group {group}"))
                            .chain(pods.iter().map(|p| format!("pod {p}")))
                            .collect(),
                        request: None,
                        detail: format!(
                            "{} instances unavailable because of the operator, maxUnavailable {budget}",
                            pods.len()
                        ),
                    });
                }
            } else {
                st.over_budget.remove(&group);
            }
        }
        let still: BTreeSet<String> = st.disrupted.keys().cloned().collect();
        st.over_budget.retain(|g| still.contains(g));
    }

    /// Why an evict-leader entry on `id` can no longer belong to an operation: its store
    /// is Tombstone or gone from PD, or its instance was deleted and is gone.
    fn orphaned(&self, st: &CheckState, snap: &Snapshot, id: u64, pod: Option<&str>) -> Option<String> {
        match snap.store(id) {
            None => return Some(format!("store {id} is absent from PD")),
            Some(s) if s.node_state == NodeState::Removed => return Some(format!("store {id} is Tombstone")),
            Some(_) => {}
        }
        let pod = pod?;
        let ns = pod.split_once('/').map(|(ns, _)| ns).unwrap_or_default();
        let owner = st.pods.get(pod)?.instance()?;
        self.owner_gone(ns, owner).then(|| format!("its instance {} was deleted", owner.describe(ns)))
    }

    fn check_evictions(
        &self,
        st: &mut CheckState,
        current: &HashMap<String, (String, bool, bool)>,
        snapshots: &BTreeMap<usize, Snapshot>,
        now: SimInstant,
    ) {
        if st.evictions.is_empty() {
            return;
        }
        let pods = self.clusters.pods();
        let keys: Vec<(usize, u64)> = st.evictions.keys().copied().collect();
        for (cluster, id) in keys {
            let Some(snap) = snapshots.get(&cluster) else { continue };
            // An entry absent from PD outlives nothing. It stays the operator's until a
            // write removes it: PD may already show a removal the proxy has not logged yet.
            let present = snap.evict_leader_stores.as_ref().is_some_and(|s| s.contains(&id));
            if !present {
                continue;
            }
            let pod = pods.iter().find(|(_, i)| **i == Instance::Tikv { cluster, store: id }).map(|(k, _)| k.clone());
            let Some(mut ev) = st.evictions.get(&(cluster, id)).copied() else { continue };
            let objects = vec![
                format!("store {id} (PD cluster {cluster})"),
                format!("pod {}", pod.clone().unwrap_or_else(|| "?".into())),
            ];
            if let Some(why) = self.orphaned(st, snap, id, pod.as_deref()) {
                let since = *ev.orphaned_since.get_or_insert(now);
                st.evictions.insert((cluster, id), ev);
                let left = now.saturating_duration_since(since);
                if left > self.config.evict_leader_grace && st.reported_evictions.insert((cluster, id)) {
                    st.breaches.push(Breach {
                        invariant: Invariant::LingeringEvictLeader,
                        at: now,
                        objects,
                        request: None,
                        detail: format!(
                            "evict-leader scheduler added by the operator still present {:.0}s after {why}",
                            left.as_secs_f64()
                        ),
                    });
                }
                continue;
            }
            ev.orphaned_since = None;
            let settled = snap.store(id).is_some_and(|s| s.running && s.state_name == "Up")
                && pod.as_ref().and_then(|p| current.get(p)).is_some_and(|(_, ready, deleting)| *ready && !*deleting);
            if !settled {
                ev.disrupted = true;
                ev.settled_since = None;
                st.evictions.insert((cluster, id), ev);
                continue;
            }
            let since = *ev.settled_since.get_or_insert(now);
            st.evictions.insert((cluster, id), ev);
            let lingering = if ev.disrupted {
                now.saturating_duration_since(since) > self.config.evict_leader_grace
            } else {
                now.saturating_duration_since(ev.added) > self.config.evict_leader_timeout
            };
            if lingering && st.reported_evictions.insert((cluster, id)) {
                let detail = if ev.disrupted {
                    format!(
                        "evict-leader scheduler added by the operator still present {:.0}s after the instance came back",
                        now.saturating_duration_since(since).as_secs_f64()
                    )
                } else {
                    format!(
                        "evict-leader scheduler added by the operator present for {:.0}s without the instance being restarted",
                        now.saturating_duration_since(ev.added).as_secs_f64()
                    )
                };
                st.breaches.push(Breach {
                    invariant: Invariant::LingeringEvictLeader,
                    at: now,
                    objects,
                    request: None,
                    detail,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use kube_sim::{DeleteOptions, KubeSim, Propagation, ResourceRef};
    use serde_json::json;

    use super::*;

    const GC: &str = "kube-controller-manager/generic-garbage-collector";

    /// kube-sim without its garbage collector (the test plays it), an owner object and a
    /// pod it owns, and a checker whose hook the test calls itself, in the order it wants.
    async fn owned_pod() -> (KubeSim, Checker) {
        let sim = KubeSim::start(kube_sim::Config { garbage_collection: false, ..kube_sim::Config::default() })
            .await
            .unwrap();
        let user = sim.store().client("kubectl");
        let cms = ResourceRef::new("", "v1", "configmaps");
        let owner = user.create(&cms, Some("default"), json!({"metadata": {"name": "inst"}})).unwrap();
        let pod = json!({
            "metadata": {"name": "p", "labels": {"tikv.org/group": "g"}, "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "inst",
                "uid": owner["metadata"]["uid"], "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        });
        user.create(&ResourceRef::new("", "v1", "pods"), Some("default"), pod).unwrap();
        let template = pd_sim::Config::fast();
        let config = WatcherConfig { max_unavailable: 0, ..WatcherConfig::default() };
        let checker = Checker::new(sim.store(), Arc::new(PdClusters::new(template)), PdWriteLog::default(), config);
        checker.pass(true);
        (sim, checker)
    }

    #[tokio::test]
    async fn pd_is_read_after_an_operator_deletion_or_a_tick_not_after_every_write() {
        let (sim, checker) = owned_pod().await;
        let read_at = || checker.lock().pd_read_at;
        let first = read_at();
        assert!(first.is_some(), "asked for: read");
        let user = sim.store().client("kubectl");
        let cms = ResourceRef::new("", "v1", "configmaps");
        user.create(&cms, Some("default"), json!({"metadata": {"name": "other"}})).unwrap();
        checker.pass(false);
        assert_eq!(read_at(), first, "a write by someone else within the tick: not read");
        sim.store().clock().advance(Duration::from_secs(1));
        checker.pass(false);
        let ticked = read_at();
        assert!(ticked > first, "a tick later: read");
        let operator = sim.store().client(&checker.config.operator_client);
        operator.delete(&ResourceRef::new("", "v1", "pods"), Some("default"), "p", &DeleteOptions::default()).unwrap();
        sim.store().clock().advance(Duration::from_millis(10));
        checker.pass(false);
        assert!(read_at() > ticked, "the operator's deletion: read at once");
        sim.shutdown().await;
    }

    /// `owner_remover` deletes the owner in the foreground, then the collector deletes
    /// the pod (the owner stays until then, so the pod still counts for (c)); the checker
    /// hears of the collector's deletion first, as it does when the collector answers
    /// before the owner's deletion is logged.
    async fn collected_after(owner_remover: &str) -> Vec<Breach> {
        let (sim, checker) = owned_pod().await;
        let store = sim.store();
        let foreground = DeleteOptions { propagation: Some(Propagation::Foreground), ..DeleteOptions::default() };
        store
            .client(owner_remover)
            .delete(&ResourceRef::new("", "v1", "configmaps"), Some("default"), "inst", &foreground)
            .unwrap();
        store
            .client(GC)
            .delete(&ResourceRef::new("", "v1", "pods"), Some("default"), "p", &DeleteOptions::default())
            .unwrap();
        let (records, _) = store.requests().since(checker.lock().next_request);
        let deletes: Vec<&RequestRecord> = records.iter().filter(|r| r.verb == Verb::Delete).collect();
        assert_eq!(deletes.len(), 2);
        checker.on_record(deletes[1]);
        checker.on_record(deletes[0]);
        checker.pass(true);
        let breaches = checker.lock().breaches.clone();
        sim.shutdown().await;
        breaches
    }

    /// kube-sim with three TiKV pods (`tikv-0..2`, no nodes: deleting one takes it at
    /// once) running the three stores of a PD cluster whose regions all have three
    /// voters, and a manual watcher; returns the store of each pod.
    async fn three_stores() -> (KubeSim, Arc<PdClusters>, SafetyWatcher, Vec<u64>) {
        let sim = KubeSim::start(kube_sim::Config::default()).await.unwrap();
        let clusters = Arc::new(PdClusters::new(pd_sim::Config { regions: 6, ..pd_sim::Config::fast() }));
        let member = ("pd-0".to_owned(), vec!["http://pd-0:2380".to_owned()], vec!["http://pd-0:2379".to_owned()]);
        let pd = clusters.form("default", "pd-0", &[member], "pd-0", &Default::default()).await.unwrap();
        let mut stores = Vec::new();
        for i in 0..3 {
            let id = pd.control().register_store(&format!("tikv-{i}:20160")).await.unwrap().id;
            clusters.set_pod(&format!("default/tikv-{i}"), Instance::Tikv { cluster: pd.index, store: id });
            let pod = json!({
                "metadata": {"name": format!("tikv-{i}")},
                "spec": {"containers": [{"name": "tikv", "image": "pingcap/tikv"}]}
            });
            sim.store().client("kubectl").create(&ResourceRef::new("", "v1", "pods"), Some("default"), pod).unwrap();
            stores.push(id);
        }
        for _ in 0..600 {
            let snap = pd.snapshot();
            if !snap.regions.is_empty() && snap.regions.iter().all(|r| r.voters().count() == 3) {
                break;
            }
            pd.control().advance(Duration::from_millis(100));
        }
        assert!(pd.snapshot().regions.iter().all(|r| r.voters().count() == 3), "replicas never reached 3");
        let watcher =
            SafetyWatcher::manual(sim.store(), clusters.clone(), PdWriteLog::default(), WatcherConfig::default());
        (sim, clusters, watcher, stores)
    }

    fn delete_pod(sim: &KubeSim, who: &str, pod: &str) {
        let pods = ResourceRef::new("", "v1", "pods");
        sim.store().client(who).delete(&pods, Some("default"), pod, &DeleteOptions::default()).unwrap();
    }

    /// A new pod `name` (the old one was deleted).
    fn recreate_pod(sim: &KubeSim, name: &str) {
        let pod =
            json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "tikv", "image": "pingcap/tikv"}]}});
        sim.store().client("kubectl").create(&ResourceRef::new("", "v1", "pods"), Some("default"), pod).unwrap();
    }

    fn majority_breaches(watcher: &SafetyWatcher) -> Vec<Breach> {
        watcher.breaches().into_iter().filter(|b| b.invariant == Invariant::RegionMajorityStopped).collect()
    }

    #[tokio::test]
    async fn two_of_three_voters_on_stores_the_operator_stopped_is_a_breach() {
        let (sim, clusters, watcher, stores) = three_stores().await;
        let pd = clusters.get(0).unwrap();
        delete_pod(&sim, "tikv-operator", "tikv-0");
        pd.control().stop_store(stores[0]).await.unwrap();
        assert!(majority_breaches(&watcher).is_empty(), "one of three stopped");

        delete_pod(&sim, "tikv-operator", "tikv-1");
        assert!(majority_breaches(&watcher).is_empty(), "the second process still runs");
        pd.control().stop_store(stores[1]).await.unwrap();
        let breaches = majority_breaches(&watcher);
        assert_eq!(breaches.len(), 1, "once for the cluster: {breaches:#?}");
        let b = &breaches[0];
        assert!(b.objects.contains(&format!("store {} (PD cluster 0, pod default/tikv-1)", stores[1])), "{b}");
        assert!(b.detail.contains("has 2 of its 3 voters on stores the operator stopped and 5 more region(s)"), "{b}");
        assert!(b.detail.contains(&format!("store {} by DELETE pods default/tikv-0", stores[0])), "{b}");
        assert!(b.request.as_deref().is_some_and(|r| r.contains("DELETE") && r.contains("tikv-1")), "{b}");
        assert_eq!(majority_breaches(&watcher).len(), 1, "not reported again while it lasts");

        // A new process of one of them ends it; its crash later is not the operator's.
        pd.control().restart_store(stores[0], None).await.unwrap();
        watcher.check_now();
        pd.control().stop_store(stores[0]).await.unwrap();
        assert_eq!(majority_breaches(&watcher).len(), 1, "a store that crashed by itself is not the operator's");

        // Stopped again by the operator: a new episode.
        pd.control().restart_store(stores[0], None).await.unwrap();
        recreate_pod(&sim, "tikv-0");
        delete_pod(&sim, "tikv-operator", "tikv-0");
        pd.control().stop_store(stores[0]).await.unwrap();
        assert_eq!(majority_breaches(&watcher).len(), 2);
        sim.shutdown().await;
        clusters.shutdown().await;
    }

    /// An eviction the operator asked for (`POST pods/{name}/eviction`, answered 201) stops
    /// the store as a deletion does.
    #[tokio::test]
    async fn evictions_by_the_operator_count_as_stops() {
        let (sim, clusters, watcher, stores) = three_stores().await;
        let pd = clusters.get(0).unwrap();
        watcher.check_now();
        for (seq, pod) in [(1_000_000, "tikv-0"), (1_000_001, "tikv-1")] {
            let eviction = RequestRecord {
                seq,
                verb: Verb::Create,
                group: String::new(),
                version: "v1".into(),
                resource: "pods".into(),
                subresource: Some("eviction".into()),
                namespace: Some("default".into()),
                name: Some(pod.into()),
                client: "tikv-operator".into(),
                user_agent: "tikv-operator".into(),
                user: "system:admin".into(),
                field_manager: None,
                code: 201,
                at: sim.store().clock().now(),
                in_process: false,
                deleted: Vec::new(),
            };
            watcher.checker.on_record(&eviction);
        }
        pd.control().stop_store(stores[0]).await.unwrap();
        pd.control().stop_store(stores[1]).await.unwrap();
        let breaches = majority_breaches(&watcher);
        assert!(!breaches.is_empty());
        assert!(breaches[0].request.as_deref().is_some_and(|r| r.contains("eviction")), "{}", breaches[0]);
        sim.shutdown().await;
        clusters.shutdown().await;
    }

    #[tokio::test]
    async fn stores_stopped_by_someone_else_do_not_count() {
        let (sim, clusters, watcher, stores) = three_stores().await;
        let pd = clusters.get(0).unwrap();
        delete_pod(&sim, "kubectl", "tikv-0");
        pd.control().stop_store(stores[0]).await.unwrap();
        delete_pod(&sim, "tikv-operator", "tikv-1");
        pd.control().stop_store(stores[1]).await.unwrap();
        assert!(majority_breaches(&watcher).is_empty(), "only one of three is the operator's");
        sim.shutdown().await;
        clusters.shutdown().await;
    }

    /// A pod `name` of Cluster `basic`'s group `group`.
    fn cluster_pod(sim: &KubeSim, name: &str, group: &str) {
        let pod = json!({
            "metadata": {"name": name, "labels": {"tikv.org/cluster": "basic", "tikv.org/group": group}},
            "spec": {"containers": [{"name": "c", "image": "pingcap/tikv"}]}
        });
        sim.store().client("kubectl").create(&ResourceRef::new("", "v1", "pods"), Some("default"), pod).unwrap();
    }

    /// Cluster `basic`, created or updated, with `spec.suspendAction.suspendCompute`.
    fn suspend_cluster(sim: &KubeSim, suspended: bool) {
        let client = sim.store().client("kubectl");
        let clusters = ResourceRef::new("core.tikv.org", "v1alpha1", "clusters");
        let spec = json!({"suspendAction": {"suspendCompute": suspended}});
        match client.get(&clusters, Some("default"), "basic") {
            Ok(mut cluster) => {
                cluster["spec"] = spec;
                client.update(&clusters, Some("default"), cluster).unwrap();
            }
            Err(_) => {
                let cluster = json!({"apiVersion": "core.tikv.org/v1alpha1", "kind": "Cluster",
                                     "metadata": {"name": "basic"}, "spec": spec});
                client.create(&clusters, Some("default"), cluster).unwrap();
            }
        }
    }

    /// A suspension deletes every pod of the Cluster, the PD member's too, and stops
    /// every store: the user's doing, no breach of (a), (c), (d) or (f). The same
    /// deletion once the Cluster is resumed is judged as usual.
    #[tokio::test]
    async fn a_suspended_clusters_pods_are_the_users_to_delete() {
        let sim = KubeSim::start(kube_sim::Config::default()).await.unwrap();
        let crds = ResourceRef::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
        for crd in tikv_operator_api::crds::all() {
            sim.store().client("kubectl").create(&crds, None, serde_json::to_value(&crd).unwrap()).unwrap();
        }
        let clusters = Arc::new(PdClusters::new(pd_sim::Config { regions: 6, ..pd_sim::Config::fast() }));
        let member = ("pd-0".to_owned(), vec!["http://pd-0:2380".to_owned()], vec!["http://pd-0:2379".to_owned()]);
        let pd = clusters.form("default", "pd-0", &[member], "pd-0", &Default::default()).await.unwrap();
        clusters.set_pod("default/pd-0", Instance::Pd { cluster: pd.index, member: "pd-0".into() });
        cluster_pod(&sim, "pd-0", "pd");
        let mut stores = Vec::new();
        for i in 0..3 {
            let id = pd.control().register_store(&format!("tikv-{i}:20160")).await.unwrap().id;
            clusters.set_pod(&format!("default/tikv-{i}"), Instance::Tikv { cluster: pd.index, store: id });
            cluster_pod(&sim, &format!("tikv-{i}"), "tikv");
            stores.push(id);
        }
        let led = |pd: &crate::clusters::PdCluster| {
            let snap = pd.snapshot();
            let full = !snap.regions.is_empty() && snap.regions.iter().all(|r| r.voters().count() == 3);
            let leads = |i: usize| snap.store(stores[i]).is_some_and(|s| s.leader_count > 0 && s.state_name == "Up");
            full.then(|| (0..3).find(|i| leads(*i))).flatten()
        };
        for _ in 0..600 {
            if led(&pd).is_some() {
                break;
            }
            pd.control().advance(Duration::from_millis(100));
        }
        assert!(led(&pd).is_some(), "regions never reached 3 voters with a leader");
        let watcher =
            SafetyWatcher::manual(sim.store(), clusters.clone(), PdWriteLog::default(), WatcherConfig::default());

        // The watcher has seen the pods (their labels name the Cluster).
        watcher.check_now();
        suspend_cluster(&sim, true);
        for (i, id) in stores.iter().enumerate() {
            delete_pod(&sim, "tikv-operator", &format!("tikv-{i}"));
            pd.control().stop_store(*id).await.unwrap();
        }
        delete_pod(&sim, "tikv-operator", "pd-0");
        let breaches = watcher.breaches();
        assert!(breaches.is_empty(), "a suspension is the user's: {breaches:#?}");

        // Resumed: every store back; the operator deleting a leader's pod is (a) again.
        suspend_cluster(&sim, false);
        for (i, id) in stores.iter().enumerate() {
            pd.control().restart_store(*id, None).await.unwrap();
            cluster_pod(&sim, &format!("tikv-{i}"), "tikv");
        }
        cluster_pod(&sim, "pd-0", "pd");
        let mut leader = None;
        for _ in 0..600 {
            leader = led(&pd);
            if leader.is_some() {
                break;
            }
            pd.control().advance(Duration::from_millis(100));
        }
        let leader = leader.expect("a store leads again");
        watcher.check_now();
        delete_pod(&sim, "tikv-operator", &format!("tikv-{leader}"));
        let kinds: Vec<Invariant> = watcher.breaches().iter().map(|b| b.invariant).collect();
        assert_eq!(kinds, [Invariant::PodWithLeaders]);
        sim.shutdown().await;
        clusters.shutdown().await;
    }

    #[tokio::test]
    async fn a_collected_pod_is_the_operators_when_it_removed_the_owner_even_if_heard_of_later() {
        let breaches = collected_after("tikv-operator").await;
        let kinds: Vec<Invariant> = breaches.iter().map(|b| b.invariant).collect();
        assert_eq!(kinds, [Invariant::MaxUnavailable], "{breaches:#?}");
        assert!(breaches[0].objects.contains(&"pod default/p".to_owned()), "{}", breaches[0]);

        let breaches = collected_after("kubectl").await;
        assert!(breaches.is_empty(), "the user's removal of the owner: {breaches:#?}");
    }

    #[tokio::test]
    async fn d_judges_the_operators_member_removals_and_joins() {
        use crate::clusters::PdCluster;
        let clusters = Arc::new(PdClusters::new(pd_sim::Config::fast()));
        let spec = |n: &str| (n.to_owned(), vec![format!("http://{n}:2380")], vec![format!("http://{n}:2379")]);
        let members = [spec("pd-0"), spec("pd-1"), spec("pd-2")];
        let pd = clusters.form("default", "k", &members, "pd-0", &Default::default()).await.unwrap();
        for name in ["pd-1", "pd-2"] {
            pd.control().start_member(name).await.unwrap();
        }
        let snaps = |pd: &PdCluster| BTreeMap::from([(pd.index, pd.snapshot())]);
        let mut st = CheckState::default();
        let now = SimInstant::default();
        Checker::check_membership(&mut st, &snaps(&pd), now);
        assert!(st.breaches.is_empty(), "the first pass only learns the membership");

        // A join while every member runs keeps the quorum.
        pd.control().add_member(pd_sim::MemberSpec { name: Some("pd-3".into()), ..Default::default() }).await.unwrap();
        Checker::check_membership(&mut st, &snaps(&pd), now);
        assert!(st.breaches.is_empty(), "{:?}", st.breaches);

        // Two of four stopped: a removal by the operator now leaves two of three running.
        pd.control().stop_member("pd-2").await.unwrap();
        pd.control().stop_member("pd-3").await.unwrap();
        st.member_removals.push((pd.index, now, "DELETE /pd/api/v1/members/id/1".into()));
        let mut snap = pd.snapshot();
        snap.members.retain(|m| m.name != "pd-1");
        Checker::check_membership(&mut st, &BTreeMap::from([(pd.index, snap)]), now);
        assert_eq!(st.breaches.len(), 1, "{:?}", st.breaches);
        assert_eq!(st.breaches[0].invariant, Invariant::PdQuorum);
        assert_eq!(st.breaches[0].detail, "after the member removal 1 of 3 members run, not a majority");
    }
}
