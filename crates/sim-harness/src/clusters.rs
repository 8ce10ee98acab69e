//! The PD clusters the pods formed, and what each data directory (PVC) holds.
//!
//! One [`PdCluster`] is one `PdSim`. The first PD member of a cluster creates it, with
//! the members its `--initial-cluster` names; later members find it through their
//! peers (or their `--join` URLs) and land in the same one. A data directory's
//! identity is the PVC mounted at the data dir (its UID; an emptyDir or the container
//! filesystem lives as long as the pod): it records which member or which store it
//! belongs to, so the same PVC brings back the same store ID.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use pd_sim::{ControlError, MemberSpec, PdSim, Snapshot};

use crate::processes::security::Transport;

pub struct PdCluster {
    pub index: usize,
    pub namespace: String,
    /// The `--initial-cluster` it was formed with.
    pub initial_cluster: String,
    pub sim: PdSim,
}

impl PdCluster {
    pub fn control(&self) -> pd_sim::Control {
        self.sim.control()
    }

    pub fn snapshot(&self) -> Snapshot {
        self.sim.control().snapshot()
    }

    /// The member's process stops; its listener is closed when this returns.
    pub(crate) async fn stop_member(&self, name: &str) -> Result<(), ControlError> {
        self.sim.control().stop_member(name).await
    }

    /// The member's process starts and listens again on its address.
    pub(crate) async fn start_member(&self, name: &str) -> Result<(), ControlError> {
        self.sim.control().start_member(name).await
    }
}

impl std::fmt::Debug for PdCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdCluster").field("index", &self.index).field("initial_cluster", &self.initial_cluster).finish()
    }
}

/// What a data directory holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataDir {
    PdMember { cluster: usize, name: String },
    Store { cluster: usize, id: u64 },
}

/// What a pod runs (the last process it started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instance {
    Pd { cluster: usize, member: String },
    Tikv { cluster: usize, store: u64 },
}

#[derive(Default)]
struct Inner {
    clusters: Vec<Arc<PdCluster>>,
    keys: HashMap<String, usize>,
    data: HashMap<String, DataDir>,
    claims: HashMap<String, DataDir>,
    pods: HashMap<String, Instance>,
    /// Members named in an initial cluster whose pod has not started yet.
    pending: HashSet<(usize, String)>,
    /// The running PD and TiKV processes (by pod): their cluster and transport.
    speakers: BTreeMap<String, (usize, Transport)>,
    mixed: Vec<MixedStart>,
}

/// A process that started while a live process of its cluster spoke the other transport
/// (TLS against plain): the real ones could not talk to each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixedStart {
    /// `ns/name` of the pod that started.
    pub pod: String,
    pub transport: Transport,
    /// The live peers (`ns/name`) speaking the other transport at that moment.
    pub peers: Vec<String>,
}

/// Every PD cluster the pods formed; shared by the processes, the harness and the
/// safety watcher.
pub struct PdClusters {
    template: pd_sim::Config,
    inner: Mutex<Inner>,
    formation: tokio::sync::Mutex<()>,
}

/// Settings a new cluster takes from its first member's config.
#[derive(Clone, Debug, Default)]
pub struct Replication {
    pub max_replicas: Option<usize>,
    pub location_labels: Option<Vec<String>>,
}

impl PdClusters {
    /// `template` is the pd-sim config each new cluster starts from (preset, clock,
    /// regions, ...); its `members`, `member_specs` and `port` are ignored.
    pub fn new(template: pd_sim::Config) -> Self {
        PdClusters { template, inner: Mutex::default(), formation: tokio::sync::Mutex::new(()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn clusters(&self) -> Vec<Arc<PdCluster>> {
        self.lock().clusters.clone()
    }

    pub fn get(&self, index: usize) -> Option<Arc<PdCluster>> {
        self.lock().clusters.get(index).cloned()
    }

    /// Serialises cluster formation and joining (two first members racing must not
    /// form two clusters).
    pub(crate) async fn formation(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.formation.lock().await
    }

    pub(crate) fn by_key(&self, key: &str) -> Option<usize> {
        self.lock().keys.get(key).copied()
    }

    pub fn data(&self, key: &str) -> Option<DataDir> {
        self.lock().data.get(key).cloned()
    }

    /// Records what a data directory holds; `claim` is `ns/name` of its PVC, if any.
    pub(crate) fn set_data(&self, key: &str, claim: Option<&str>, dir: DataDir) {
        let mut inner = self.lock();
        inner.data.insert(key.to_owned(), dir.clone());
        if let Some(claim) = claim {
            inner.claims.insert(claim.to_owned(), dir);
        }
    }

    /// What the PVC `ns/name` holds (as last mounted).
    pub fn claim(&self, namespace: &str, name: &str) -> Option<DataDir> {
        self.lock().claims.get(&format!("{namespace}/{name}")).cloned()
    }

    pub fn claims(&self) -> BTreeMap<String, DataDir> {
        self.lock().claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(crate) fn set_pod(&self, pod: &str, instance: Instance) {
        self.lock().pods.insert(pod.to_owned(), instance);
    }

    /// What the pod `ns/name` runs (or ran last).
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Instance> {
        self.lock().pods.get(&format!("{namespace}/{name}")).cloned()
    }

    pub fn pods(&self) -> BTreeMap<String, Instance> {
        self.lock().pods.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(crate) fn take_pending(&self, cluster: usize, name: &str) -> bool {
        self.lock().pending.remove(&(cluster, name.to_owned()))
    }

    /// Forms a new PD cluster whose etcd membership is `members` (name, peer URLs,
    /// client URLs); only `running` starts, the others wait for their pods.
    pub(crate) async fn form(
        &self,
        namespace: &str,
        key: &str,
        members: &[(String, Vec<String>, Vec<String>)],
        running: &str,
        replication: &Replication,
    ) -> Result<Arc<PdCluster>, String> {
        let index = self.lock().clusters.len();
        let mut config = self.template.clone();
        config.port = 0;
        config.seed = self.template.seed.wrapping_add(index as u64);
        config.member_specs = members
            .iter()
            .map(|(name, peer_urls, client_urls)| MemberSpec {
                name: Some(name.clone()),
                client_urls: Some(client_urls.clone()),
                peer_urls: Some(peer_urls.clone()),
            })
            .collect();
        config.members = config.member_specs.len();
        if let Some(n) = replication.max_replicas {
            config.max_replicas = n;
        }
        if let Some(labels) = &replication.location_labels {
            config.location_labels = labels.clone();
        }
        let sim = PdSim::start(config).await.map_err(|e| format!("start PD cluster: {e}"))?;
        let cluster =
            Arc::new(PdCluster { index, namespace: namespace.to_owned(), initial_cluster: key.to_owned(), sim });
        let mut pending = Vec::new();
        for (name, _, _) in members {
            if name != running {
                cluster.control().unstart_member(name).await.map_err(|e| e.to_string())?;
                pending.push((index, name.clone()));
            }
        }
        let mut inner = self.lock();
        inner.clusters.push(cluster.clone());
        inner.keys.insert(key.to_owned(), index);
        inner.pending.extend(pending);
        Ok(cluster)
    }

    /// A process of `cluster` in `pod` now runs speaking `transport`; returns the live
    /// processes of the cluster speaking the other one (recorded as a [`MixedStart`]).
    pub(crate) fn speak(&self, cluster: usize, pod: &str, transport: Transport) -> Vec<String> {
        let mut inner = self.lock();
        inner.speakers.insert(pod.to_owned(), (cluster, transport));
        let peers: Vec<String> = inner
            .speakers
            .iter()
            .filter(|(p, (c, t))| p.as_str() != pod && *c == cluster && *t != transport)
            .map(|(p, _)| p.clone())
            .collect();
        if !peers.is_empty() {
            inner.mixed.push(MixedStart { pod: pod.to_owned(), transport, peers: peers.clone() });
        }
        peers
    }

    /// The process in `pod` stopped.
    pub(crate) fn silence(&self, pod: &str) {
        self.lock().speakers.remove(pod);
    }

    /// The transport of the process running in `pod` (`ns/name`), if one runs.
    pub fn transport(&self, pod: &str) -> Option<Transport> {
        self.lock().speakers.get(pod).map(|(_, t)| *t)
    }

    /// Every running process of `cluster` with its transport.
    pub fn speakers(&self, cluster: usize) -> BTreeMap<String, Transport> {
        self.lock().speakers.iter().filter(|(_, (c, _))| *c == cluster).map(|(p, (_, t))| (p.clone(), *t)).collect()
    }

    /// Every start among peers of the other transport so far (none, in a correct run).
    pub fn mixed_starts(&self) -> Vec<MixedStart> {
        self.lock().mixed.clone()
    }

    /// Stops every cluster's listeners and drivers.
    pub async fn shutdown(&self) {
        let clusters = std::mem::take(&mut self.lock().clusters);
        for cluster in clusters {
            if let Ok(cluster) = Arc::try_unwrap(cluster) {
                cluster.sim.shutdown().await;
            }
        }
    }

    /// Every data directory a process used, by its key (`pvc:<uid>` or
    /// `pod:<uid>:<path>`), with what it holds.
    pub fn data_dirs(&self) -> Vec<(String, DataDir)> {
        self.lock().data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// A pd-sim control error as the real binary would word it.
pub(crate) fn control_error(e: &ControlError) -> String {
    e.to_string()
}
