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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube_sim::{RequestRecord, Store, Verb};
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

#[derive(Default)]
struct CheckState {
    requests_seen: usize,
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
    clusters: Arc<PdClusters>,
    writes: PdWriteLog,
    config: WatcherConfig,
    state: Mutex<CheckState>,
}

pub struct SafetyWatcher {
    checker: Arc<Checker>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SafetyWatcher {
    /// Starts watching kube-sim's `store` (writes and request log), the PD clusters'
    /// ground truth and the proxy's PD write log.
    pub fn start(store: &Store, clusters: Arc<PdClusters>, writes: PdWriteLog, config: WatcherConfig) -> SafetyWatcher {
        let checker = Arc::new(Checker { store: store.clone(), clusters, writes, config, state: Mutex::default() });
        let (shutdown, mut rx) = watch::channel(false);
        let runner = checker.clone();
        let task = tokio::spawn(async move {
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
        });
        SafetyWatcher { checker, shutdown, task }
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
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
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
        let records = self.store.requests().snapshot();
        let start = st.requests_seen.min(records.len());
        st.requests_seen = records.len();
        for r in &records[start..] {
            let delete = matches!(r.verb, Verb::Delete | Verb::DeleteCollection);
            if !delete || !(200..300).contains(&r.code) || !self.is_operator(&r.client) || !r.group.is_empty() {
                continue;
            }
            let (Some(ns), Some(name)) = (r.namespace.as_deref(), r.name.as_deref()) else { continue };
            match r.resource.as_str() {
                "pods" => self.pod_deleted(&mut st, r, ns, name),
                "persistentvolumeclaims" => self.pvc_deleted(&mut st, r, ns, name),
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

    fn pod_deleted(&self, st: &mut CheckState, r: &RequestRecord, ns: &str, name: &str) {
        let key = format!("{ns}/{name}");
        let request = Some(describe(r));
        if let Some((uid, labels)) = st.pods.get(&key).cloned()
            && let Some(group) = self.group_of(ns, &labels)
        {
            st.disrupted.entry(group).or_default().insert(key.clone(), uid);
        }
        match self.clusters.pod(ns, name) {
            Some(Instance::Tikv { cluster, store }) => {
                let Some(c) = self.clusters.get(cluster) else { return };
                let snap = c.snapshot();
                // Not `running`: the kubelet may already have stopped the process this
                // deletion is about; leaders stay until the raft election timeout.
                if let Some(s) = snap.store(store)
                    && s.state_name == "Up"
                    && s.leader_count > 0
                {
                    st.breaches.push(Breach {
                        invariant: Invariant::PodWithLeaders,
                        at: r.at,
                        objects: vec![format!("pod {key}"), format!("store {store} (PD cluster {cluster})")],
                        request,
                        detail: format!("store {store} is Up and holds {} leader(s)", s.leader_count),
                    });
                }
            }
            Some(Instance::Pd { cluster, member }) => {
                let Some(c) = self.clusters.get(cluster) else { return };
                let snap = c.snapshot();
                let total = snap.members.iter().filter(|m| m.in_etcd).count();
                let disrupted: BTreeSet<String> = st
                    .disrupted
                    .values()
                    .flat_map(|m| m.keys())
                    .filter_map(|k| match self.clusters.pods().get(k) {
                        Some(Instance::Pd { member, .. }) => Some(member.clone()),
                        _ => None,
                    })
                    .collect();
                let healthy_others = snap
                    .members
                    .iter()
                    .filter(|m| m.in_etcd && m.running && m.name != member && !disrupted.contains(&m.name))
                    .count();
                if total > 0 && healthy_others * 2 <= total {
                    st.breaches.push(Breach {
                        invariant: Invariant::PdQuorum,
                        at: r.at,
                        objects: vec![format!("pod {key}"), format!("PD member {member} (PD cluster {cluster})")],
                        request,
                        detail: format!("{healthy_others} of {total} members would remain healthy, not a majority"),
                    });
                }
            }
            None => {}
        }
    }

    fn deletion_policy_applies(&self, st: &CheckState, ns: &str, name: &str) -> bool {
        let labels = st.pvcs.get(&format!("{ns}/{name}")).cloned().unwrap_or(Value::Null);
        let Some(cluster) = labels[self.config.cluster_label.as_str()].as_str() else { return false };
        match get(&self.store, "core.tikv.org", "v1alpha1", "clusters", Some(ns), cluster) {
            Some(c) => c["spec"]["deletionPolicy"] == "Delete" && deleting(&c),
            None => false,
        }
    }

    fn pvc_deleted(&self, st: &mut CheckState, r: &RequestRecord, ns: &str, name: &str) {
        let Some(DataDir::Store { cluster, id }) = self.clusters.claim(ns, name) else { return };
        let Some(c) = self.clusters.get(cluster) else { return };
        let snap = c.snapshot();
        let state = snap.store(id).map(|s| s.state_name.clone()).unwrap_or_else(|| "unknown".into());
        if state == "Tombstone" || self.deletion_policy_applies(st, ns, name) {
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
