//! The safety-invariant watcher (DESIGN.md section 5): it reads both simulators'
//! ground truth and records every breach by the operator's own actions, with the
//! simulated moment, the objects and the request involved.
//!
//! - (a) the operator deletes a TiKV pod whose store is Up and still holds leaders;
//! - (b) the operator deletes the PVC of a store that is not Tombstone, unless the
//!   Cluster's `deletionPolicy: Delete` applies;
//! - (c) more than `maxUnavailable` instances of a group are unavailable because of the
//!   operator (pods it deleted, until a new pod of that name is Ready);
//! - (d) the operator deletes a PD member's pod while the other healthy members are not
//!   a majority of the membership;
//! - (e) an evict-leader scheduler the operator added (seen in the proxy's PD write log)
//!   outlives the operation: still present while its instance is Ready, not being
//!   deleted and its store Up, for longer than a grace period.
//!
//! Kubernetes writes are attributed by the request log's client name (User-Agent and
//! field manager), PD writes by the proxy's record of the User-Agent.
//!
//! (a), (b) and (d) are judged on the state at the moment of the deletion: a hook on
//! kube-sim's request log ([`kube_sim::RequestLog::on_record`]) runs synchronously when
//! the operator's DELETE is answered, before the operator (or the kubelet's stopping of
//! the process, or a raft election) can change PD's state, and records what the rule
//! needs; the watcher's passes then read the log incrementally
//! ([`kube_sim::RequestLog::since`]) and turn those records into breaches.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube_sim::{HookId, RequestRecord, Store, Verb};
use serde_json::Value;
use sim_clock::SimInstant;
use tokio::sync::watch;

use crate::clusters::{DataDir, Instance, PdClusters};
use crate::network::{deleting, get, list, pod_ready, str_at};
use crate::proxy::{PdWrite, PdWriteLog};

#[derive(Clone, Debug)]
pub struct WatcherConfig {
    /// A Kubernetes or PD client is the operator when its name contains this.
    pub operator_client: String,
    /// Default `maxUnavailable` per group.
    pub max_unavailable: usize,
    /// Per group (`ns/group`) overrides.
    pub max_unavailable_per_group: BTreeMap<String, usize>,
    /// (e): how long an evict-leader scheduler may stay once its instance came back
    /// (Ready, store Up) after being restarted or taken down.
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
    /// (b) PVC of a live store deleted.
    LiveStorePvc,
    /// (c) more than maxUnavailable instances of a group unavailable.
    MaxUnavailable,
    /// (d) PD quorum lost.
    PdQuorum,
    /// (e) evict-leader scheduler outlived its operation.
    LingeringEvictLeader,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::PodWithLeaders => "(a) TiKV pod deleted while its store holds leaders",
            Invariant::LiveStorePvc => "(b) PVC of a store that is not removed deleted",
            Invariant::MaxUnavailable => "(c) more than maxUnavailable instances unavailable",
            Invariant::PdQuorum => "(d) PD quorum lost",
            Invariant::LingeringEvictLeader => "(e) evict-leader scheduler outlived its operation",
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
}

/// What the operator's deletion of a pod or PVC met, recorded when it was answered.
#[derive(Clone, Debug)]
enum Verdict {
    /// A TiKV pod: its store's state and leaders.
    Tikv { cluster: usize, store: u64, state: Option<(String, u64)> },
    /// A PD pod: its member, how many members are in etcd and how many others are healthy
    /// (running, and their pods present and not being deleted).
    Pd { cluster: usize, member: String, total: usize, healthy_others: usize },
    /// A PVC holding a store: the store's state, and whether `deletionPolicy: Delete` of
    /// its Cluster (being deleted) applies.
    Pvc { cluster: usize, store: u64, state: String, policy: bool },
    /// Nothing PD-related (a pod or PVC the processes never used).
    None,
}

/// A deletion as recorded by the request-log hook.
#[derive(Clone, Debug)]
struct Capture {
    /// The pod's (uid, labels) when it was deleted, if still readable then.
    pod: Option<(String, Value)>,
    verdict: Verdict,
}

#[derive(Default)]
struct CheckState {
    /// The next request-log sequence number to read.
    next_request: u64,
    /// Request seq → what its deletion met (filled by the hook, drained by passes).
    captures: HashMap<u64, Capture>,
    writes_seen: u64,
    /// pod `ns/name` → (uid, labels) as last seen.
    pods: HashMap<String, (String, Value)>,
    /// PVC `ns/name` → labels as last seen.
    pvcs: HashMap<String, Value>,
    /// group → pod `ns/name` → uid of the pod the operator deleted.
    disrupted: BTreeMap<String, BTreeMap<String, String>>,
    over_budget: BTreeSet<String>,
    /// (cluster, store) → the evict-leader scheduler the operator added for it.
    evictions: BTreeMap<(usize, u64), Eviction>,
    reported_evictions: BTreeSet<(usize, u64)>,
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
                runner.pass();
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
    /// ((c) recovery, (e)) then depend on when those are called.
    pub fn manual(
        store: &Store,
        clusters: Arc<PdClusters>,
        writes: PdWriteLog,
        config: WatcherConfig,
    ) -> SafetyWatcher {
        let checker = Arc::new(Checker {
            store: store.clone(),
            hook: Mutex::default(),
            clusters,
            writes,
            config,
            state: Mutex::default(),
        });
        checker.lock().next_request = store.requests().next_seq();
        let weak = Arc::downgrade(&checker);
        let hook = store.requests().on_record(move |r| {
            if let Some(checker) = weak.upgrade() {
                checker.capture(r);
            }
        });
        *checker.hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
        SafetyWatcher { checker, shutdown: watch::channel(false).0, task: None }
    }

    /// Runs the checks now (a test calls this before asserting, so that the last
    /// request is judged).
    pub fn check_now(&self) {
        self.checker.pass();
    }

    pub fn breaches(&self) -> Vec<Breach> {
        self.checker.pass();
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
        r.name.as_deref().unwrap_or(""),
        r.client,
        r.seq
    )
}

impl Checker {
    fn lock(&self) -> std::sync::MutexGuard<'_, CheckState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_operator(&self, client: &str) -> bool {
        client.contains(&self.config.operator_client)
    }

    fn is_operator_pd(&self, w: &PdWrite) -> bool {
        self.is_operator(&w.client)
    }

    fn group_of(&self, ns: &str, labels: &Value) -> Option<String> {
        labels[self.config.group_label.as_str()].as_str().map(|g| format!("{ns}/{g}"))
    }

    fn pass(&self) {
        let mut st = self.lock();
        let now = self.store.clock().now();
        let pods = list(&self.store, "pods", None);
        let mut current: HashMap<String, (String, bool, bool)> = HashMap::new();
        for p in &pods {
            let key = format!("{}/{}", str_at(p, &["metadata", "namespace"]), str_at(p, &["metadata", "name"]));
            st.pods.insert(key.clone(), (str_at(p, &["metadata", "uid"]).to_owned(), p["metadata"]["labels"].clone()));
            current.insert(key, (str_at(p, &["metadata", "uid"]).to_owned(), pod_ready(p), deleting(p)));
        }
        for pvc in list(&self.store, "persistentvolumeclaims", None) {
            let key = format!("{}/{}", str_at(&pvc, &["metadata", "namespace"]), str_at(&pvc, &["metadata", "name"]));
            st.pvcs.insert(key, pvc["metadata"]["labels"].clone());
        }
        let (records, next) = self.store.requests().since(st.next_request);
        st.next_request = next;
        for r in &records {
            if !self.judged(r) {
                continue;
            }
            let (Some(ns), Some(name)) = (r.namespace.as_deref(), r.name.as_deref()) else { continue };
            // Captured when the request was answered; judged now only if the hook
            // missed it (the watcher started later).
            let capture = st.captures.remove(&r.seq).unwrap_or_else(|| self.judge(r, ns, name));
            match r.resource.as_str() {
                "pods" => self.pod_deleted(&mut st, r, ns, name, capture),
                "persistentvolumeclaims" => self.pvc_deleted(&mut st, r, ns, name, capture.verdict),
                _ => {}
            }
        }
        let writes = self.writes.since(st.writes_seen);
        st.writes_seen += writes.len() as u64;
        for w in writes.iter().filter(|w| self.is_operator_pd(w) && (200..300).contains(&w.status)) {
            self.pd_write(&mut st, w);
        }
        self.check_budgets(&mut st, &current, now);
        self.check_evictions(&mut st, &current, now);
    }

    /// A request (a)/(b)/(d) are about: the operator deleting a core-group pod or PVC.
    fn judged(&self, r: &RequestRecord) -> bool {
        matches!(r.verb, Verb::Delete)
            && (200..300).contains(&r.code)
            && self.is_operator(&r.client)
            && r.group.is_empty()
            && matches!(r.resource.as_str(), "pods" | "persistentvolumeclaims")
    }

    /// The request-log hook: records what the deletion met, at once.
    fn capture(&self, r: &RequestRecord) {
        if !self.judged(r) {
            return;
        }
        let (Some(ns), Some(name)) = (r.namespace.as_deref(), r.name.as_deref()) else { return };
        let capture = self.judge(r, ns, name);
        let mut st = self.lock();
        // A pass that already read this record judged it itself.
        if r.seq >= st.next_request {
            st.captures.insert(r.seq, capture);
        }
    }

    /// What the deletion of `ns/name` meets now (ground truth of both simulators).
    fn judge(&self, r: &RequestRecord, ns: &str, name: &str) -> Capture {
        match r.resource.as_str() {
            "pods" => {
                let pod = get(&self.store, "", "v1", "pods", Some(ns), name)
                    .map(|p| (str_at(&p, &["metadata", "uid"]).to_owned(), p["metadata"]["labels"].clone()));
                Capture { pod, verdict: self.judge_pod(ns, name) }
            }
            _ => Capture { pod: None, verdict: self.judge_pvc(ns, name) },
        }
    }

    fn judge_pod(&self, ns: &str, name: &str) -> Verdict {
        match self.clusters.pod(ns, name) {
            Some(Instance::Tikv { cluster, store }) => {
                let Some(c) = self.clusters.get(cluster) else { return Verdict::None };
                let snap = c.snapshot();
                let state = snap.store(store).map(|s| (s.state_name.clone(), s.leader_count));
                Verdict::Tikv { cluster, store, state }
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

    fn judge_pvc(&self, ns: &str, name: &str) -> Verdict {
        let Some(DataDir::Store { cluster, id }) = self.clusters.claim(ns, name) else { return Verdict::None };
        let Some(c) = self.clusters.get(cluster) else { return Verdict::None };
        let snap = c.snapshot();
        let state = snap.store(id).map(|s| s.state_name.clone()).unwrap_or_else(|| "unknown".into());
        let labels = match get(&self.store, "", "v1", "persistentvolumeclaims", Some(ns), name) {
            Some(pvc) => pvc["metadata"]["labels"].clone(),
            None => self.lock().pvcs.get(&format!("{ns}/{name}")).cloned().unwrap_or(Value::Null),
        };
        Verdict::Pvc { cluster, store: id, state, policy: self.deletion_policy_applies(ns, &labels) }
    }

    fn pod_deleted(&self, st: &mut CheckState, r: &RequestRecord, ns: &str, name: &str, capture: Capture) {
        let key = format!("{ns}/{name}");
        let request = Some(describe(r));
        if let Some((uid, labels)) = capture.pod.or_else(|| st.pods.get(&key).cloned())
            && let Some(group) = self.group_of(ns, &labels)
        {
            st.disrupted.entry(group).or_default().insert(key.clone(), uid);
        }
        match capture.verdict {
            // Not `running`: the kubelet may already have stopped the process this
            // deletion is about; leaders stay until the raft election timeout.
            Verdict::Tikv { cluster, store, state: Some((state, leaders)) } if state == "Up" && leaders > 0 => {
                st.breaches.push(Breach {
                    invariant: Invariant::PodWithLeaders,
                    at: r.at,
                    objects: vec![format!("pod {key}"), format!("store {store} (PD cluster {cluster})")],
                    request,
                    detail: format!("store {store} is Up and holds {leaders} leader(s)"),
                });
            }
            Verdict::Pd { cluster, member, total, healthy_others } if total > 0 && healthy_others * 2 <= total => {
                st.breaches.push(Breach {
                    invariant: Invariant::PdQuorum,
                    at: r.at,
                    objects: vec![format!("pod {key}"), format!("PD member {member} (PD cluster {cluster})")],
                    request,
                    detail: format!("{healthy_others} of {total} members would remain healthy, not a majority"),
                });
            }
            _ => {}
        }
    }

    /// `deletionPolicy: Delete` of the PVC's Cluster (by its cluster label), while that
    /// Cluster is being deleted.
    fn deletion_policy_applies(&self, ns: &str, labels: &Value) -> bool {
        let Some(cluster) = labels[self.config.cluster_label.as_str()].as_str() else { return false };
        match get(&self.store, "core.tikv.org", "v1alpha1", "clusters", Some(ns), cluster) {
            Some(c) => c["spec"]["deletionPolicy"] == "Delete" && deleting(&c),
            None => false,
        }
    }

    fn pvc_deleted(&self, st: &mut CheckState, r: &RequestRecord, ns: &str, name: &str, verdict: Verdict) {
        let Verdict::Pvc { cluster, store: id, state, policy } = verdict else { return };
        if state == "Tombstone" || policy {
            return;
        }
        st.breaches.push(Breach {
            invariant: Invariant::LiveStorePvc,
            at: r.at,
            objects: vec![format!("pvc {ns}/{name}"), format!("store {id} (PD cluster {cluster})")],
            request: Some(describe(r)),
            detail: format!("store {id} is {state}, not Tombstone, and no deletionPolicy: Delete applies"),
        });
    }

    fn pd_write(&self, st: &mut CheckState, w: &PdWrite) {
        let path = w.path.split('?').next().unwrap_or_default();
        if w.method == "POST" && path == "/pd/api/v1/schedulers" {
            let body: Value = serde_json::from_slice(&w.body).unwrap_or(Value::Null);
            if body["name"] == "evict-leader-scheduler"
                && let Some(id) = body["store_id"].as_u64()
            {
                st.evictions.insert((w.cluster, id), Eviction { added: w.at, disrupted: false, settled_since: None });
                st.reported_evictions.remove(&(w.cluster, id));
            }
        } else if w.method == "DELETE" {
            let id = path
                .strip_prefix("/pd/api/v1/schedulers/evict-leader-scheduler-")
                .or_else(|| path.strip_prefix("/pd/api/v1/scheduler-config/evict-leader-scheduler/delete/"))
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(id) = id {
                st.evictions.remove(&(w.cluster, id));
            }
        }
    }

    fn check_budgets(&self, st: &mut CheckState, current: &HashMap<String, (String, bool, bool)>, now: SimInstant) {
        for members in st.disrupted.values_mut() {
            members.retain(|pod, uid| match current.get(pod) {
                Some((new_uid, ready, deleting)) => !(new_uid != uid && *ready && !*deleting),
                None => true,
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

    fn check_evictions(&self, st: &mut CheckState, current: &HashMap<String, (String, bool, bool)>, now: SimInstant) {
        if st.evictions.is_empty() {
            return;
        }
        let pods = self.clusters.pods();
        let keys: Vec<(usize, u64)> = st.evictions.keys().copied().collect();
        for (cluster, id) in keys {
            let Some(c) = self.clusters.get(cluster) else { continue };
            let snap = c.snapshot();
            let present = snap.evict_leader_stores.as_ref().is_some_and(|s| s.contains(&id));
            if !present {
                st.evictions.remove(&(cluster, id));
                continue;
            }
            let pod = pods.iter().find(|(_, i)| **i == Instance::Tikv { cluster, store: id }).map(|(k, _)| k.clone());
            let settled = snap.store(id).is_some_and(|s| s.running && s.state_name == "Up")
                && pod.as_ref().and_then(|p| current.get(p)).is_some_and(|(_, ready, deleting)| *ready && !*deleting);
            let Some(mut ev) = st.evictions.get(&(cluster, id)).copied() else { continue };
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
                    objects: vec![
                        format!("store {id} (PD cluster {cluster})"),
                        format!("pod {}", pod.unwrap_or_else(|| "?".into())),
                    ],
                    request: None,
                    detail,
                });
            }
        }
    }
}
