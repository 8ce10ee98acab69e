//! The rest of a simulated cluster, on top of the store: what the scheduler, the kubelets,
//! the volume controllers and cluster DNS of a real cluster do, so that Pods, PVCs and
//! Services behave as they would there.
//!
//! ```no_run
//! # async fn demo(store: kube_sim::Store) {
//! use kube_sim::cluster::{ClusterConfig, SimulatedCluster};
//! let cluster = SimulatedCluster::start(store, ClusterConfig { nodes: 3, zones: 3, ..ClusterConfig::default() });
//! let ips = cluster.dns().resolve("pd-0.pd-peer.tikv.svc");
//! cluster.shutdown().await;
//! # let _ = ips; }
//! ```
//!
//! Each component acts through its own named store client, so its writes show in the
//! request log under the real component's name:
//!
//! - [`nodes`]: the Node objects, and the test controls (add, remove, cordon, NotReady);
//! - [`scheduler`] (`default-scheduler`): binds pending pods, or explains why not;
//! - [`kubelet`] (`kubelet/<node>`): pod IPs, container lifecycle, probes, restarts,
//!   graceful termination, ConfigMap re-delivery, through the [`runtime`] hook;
//! - [`volumes`] (`persistentvolume-controller`, `external-provisioner`,
//!   `external-resizer`): StorageClasses, provisioning, binding, expansion, volume
//!   modification by VolumeAttributesClass, protection;
//! - [`disruption`] (`kube-controller-manager/disruption-controller`): the status of
//!   PodDisruptionBudgets, which the pod `eviction` subresource reads and spends;
//! - [`dns`]: kube-dns answers for Services and pod hostnames;
//! - [`endpoints`]: a Service's endpoints (pod IPs and target ports), as kube-proxy
//!   routes to them;
//! - [`ipam`]: pod IPs in 127.1.0.0/16 and Service IPs in 127.2.0.0/16 (loopback only:
//!   a simulated process can bind its pod IP).
//!
//! All delays are read from the store's one [`SimClock`](sim_clock::SimClock).

pub mod disruption;
pub mod dns;
pub mod endpoints;
pub mod events;
pub mod ipam;
pub mod kubelet;
pub mod nodes;
pub mod runtime;
pub mod scheduler;
pub mod volumes;

mod objects;

use std::sync::Arc;
use std::time::Duration;

use sim_clock::SimInstant;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::{Change, Store};

pub use dns::{Dns, DnsError};
pub use endpoints::ServiceEndpoint;
pub use nodes::{NodeControl, NodeSpec};
pub use runtime::{
    ContainerContext, ContainerExit, ContainerProcess, ContainerRuntime, ExitReporter, Mount, MountSource,
    RuntimeRegistry, StopRequest,
};

/// Which components run, and their timings (simulated time).
#[derive(Clone)]
pub struct ClusterConfig {
    /// Node objects `node-1`..`node-N` to ensure, spread over `zones` zones `zone-a`..
    /// (existing ones are reused).
    pub nodes: u32,
    pub zones: u32,
    pub scheduler: bool,
    pub kubelet: bool,
    pub volumes: bool,
    /// The disruption controller (PodDisruptionBudget status).
    pub disruption: bool,
    /// Create the `standard` (default, WaitForFirstConsumer) and `standard-immediate`
    /// StorageClasses if missing.
    pub storage_classes: bool,
    /// Runtimes registered from the start (more can be added with
    /// [`SimulatedCluster::runtimes`]).
    pub runtimes: RuntimeRegistry,
    pub timings: Timings,
    /// The cluster domain for DNS.
    pub cluster_domain: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nodes: 0,
            zones: 1,
            scheduler: true,
            kubelet: true,
            volumes: true,
            disruption: true,
            storage_classes: true,
            runtimes: RuntimeRegistry::default(),
            timings: Timings::default(),
            cluster_domain: "cluster.local".into(),
        }
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("nodes", &self.nodes)
            .field("zones", &self.zones)
            .field("scheduler", &self.scheduler)
            .field("kubelet", &self.kubelet)
            .field("volumes", &self.volumes)
            .field("disruption", &self.disruption)
            .field("timings", &self.timings)
            .finish_non_exhaustive()
    }
}

/// Simulated durations of what takes time on a real cluster.
#[derive(Clone, Debug)]
pub struct Timings {
    /// From sandbox creation (pod IP assigned) to the containers running.
    pub container_start: Duration,
    /// How long the kubelet takes to notice a changed ConfigMap of a mounted volume.
    pub config_sync: Duration,
    /// Provisioning a volume (PV creation) after the claim asks for it.
    pub provision: Duration,
    /// The controller side of a volume expansion.
    pub controller_resize: Duration,
    /// The node side of a volume expansion, once a running pod uses the volume.
    pub node_resize: Duration,
    /// A CSI `ControllerModifyVolume` (a VolumeAttributesClass change), once started.
    pub volume_modify: Duration,
    /// Longest wait between retries of an unschedulable pod (kube-scheduler's
    /// podMaxInUnschedulablePodsDuration).
    pub unschedulable_retry: Duration,
    /// How often a kubelet repeats a `FailedMount` event while a volume is missing.
    pub mount_retry: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            container_start: Duration::from_secs(1),
            config_sync: Duration::from_secs(60),
            provision: Duration::from_secs(1),
            controller_resize: Duration::from_secs(1),
            node_resize: Duration::from_secs(1),
            volume_modify: Duration::from_secs(1),
            unschedulable_retry: Duration::from_secs(300),
            mount_retry: Duration::from_secs(120),
        }
    }
}

/// The running components. Dropping it leaves them running; call [`shutdown`](Self::shutdown).
pub struct SimulatedCluster {
    store: Store,
    config: ClusterConfig,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    dns: Dns,
    nodes: NodeControl,
}

impl SimulatedCluster {
    /// Ensures the nodes and StorageClasses, then starts the enabled components.
    pub fn start(store: Store, config: ClusterConfig) -> SimulatedCluster {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let nodes = NodeControl::new(store.clone());
        if let Err(e) = nodes.ensure(config.nodes, config.zones) {
            tracing::warn!(error = %e, "could not create the simulated nodes");
        }
        if config.storage_classes
            && let Err(e) = volumes::ensure_storage_classes(&store)
        {
            tracing::warn!(error = %e, "could not create the StorageClasses");
        }
        let dns = Dns::new(store.clone(), &config.cluster_domain);
        let mut tasks = Vec::new();
        if config.scheduler {
            tasks.push(tokio::spawn(scheduler::run(store.clone(), config.timings.clone(), shutdown_rx.clone())));
        }
        if config.volumes {
            tasks.push(tokio::spawn(volumes::run(store.clone(), config.timings.clone(), shutdown_rx.clone())));
        }
        if config.disruption {
            tasks.push(tokio::spawn(disruption::run(store.clone(), shutdown_rx.clone())));
        }
        if config.kubelet {
            tasks.push(tokio::spawn(kubelet::run(
                store.clone(),
                config.runtimes.clone(),
                dns.clone(),
                config.timings.clone(),
                shutdown_rx.clone(),
            )));
        }
        SimulatedCluster { store, config, shutdown_tx, tasks, dns, nodes }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Cluster DNS.
    pub fn dns(&self) -> &Dns {
        &self.dns
    }

    /// Adds, removes, cordons and fails nodes.
    pub fn nodes(&self) -> &NodeControl {
        &self.nodes
    }

    /// The container runtimes the kubelets consult; register more at any time.
    pub fn runtimes(&self) -> &RuntimeRegistry {
        &self.config.runtimes
    }

    /// Stops every component; running runtime processes are stopped without grace.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// What a component's loop waits on: a committed change to a resource it cares about, a
/// deadline on the simulated clock, a message, or shutdown.
pub(crate) struct Wake {
    store: Store,
    rx: watch::Receiver<u64>,
    last: u64,
    shutdown: watch::Receiver<bool>,
    resources: &'static [&'static str],
    /// The relevant changes since the last [`take_changes`](Self::take_changes), for
    /// a component that works only on what changed; `None` when not kept, or when
    /// some were compacted away (the component then looks at everything).
    kept: Option<Vec<Arc<Change>>>,
    keep: bool,
    /// Which changes of those resources matter (all by default).
    matters: fn(&Change) -> bool,
}

impl Wake {
    pub(crate) fn new(store: &Store, shutdown: watch::Receiver<bool>, resources: &'static [&'static str]) -> Self {
        let mut rx = store.subscribe();
        rx.borrow_and_update();
        Wake { store: store.clone(), rx, last: 0, shutdown, resources, kept: None, keep: false, matters: |_| true }
    }

    /// Only the changes `matters` accepts wake the component.
    pub(crate) fn only(self, matters: fn(&Change) -> bool) -> Self {
        Wake { matters, ..self }
    }

    /// As [`new`](Self::new), also keeping the relevant changes for
    /// [`take_changes`](Self::take_changes). The first take is `None`: everything.
    pub(crate) fn keeping_changes(
        store: &Store,
        shutdown: watch::Receiver<bool>,
        resources: &'static [&'static str],
    ) -> Self {
        Wake { keep: true, ..Wake::new(store, shutdown, resources) }
    }

    /// The relevant changes since the last take, or `None` if they are not all known
    /// (the first take, or history compacted meanwhile): look at everything then.
    pub(crate) fn take_changes(&mut self) -> Option<Vec<Arc<Change>>> {
        let taken = self.kept.take();
        if self.keep {
            self.kept = Some(Vec::new());
        }
        taken
    }

    fn relevant_change(&mut self) -> bool {
        match self.store.changes_since(self.last) {
            Some((changes, rev)) => {
                self.last = rev;
                let mut relevant = false;
                let matters = self.matters;
                for c in changes.into_iter().filter(|c| self.resources.contains(&c.gr.resource.as_str()) && matters(c))
                {
                    relevant = true;
                    match &mut self.kept {
                        Some(kept) => kept.push(c),
                        None => break,
                    }
                }
                relevant
            }
            None => {
                self.last = self.store.revision();
                self.kept = None;
                true
            }
        }
    }

    /// Returns `false` on shutdown. `extra` is polled alongside (a message channel).
    pub(crate) async fn wait<F: std::future::Future<Output = ()>>(
        &mut self,
        deadline: Option<SimInstant>,
        extra: F,
    ) -> bool {
        let clock = self.store.clock().clone();
        tokio::pin!(extra);
        loop {
            if *self.shutdown.borrow() {
                return false;
            }
            if self.relevant_change() {
                return true;
            }
            if deadline.is_some_and(|d| clock.now() >= d) {
                return true;
            }
            let sleep = async {
                match deadline {
                    Some(d) => clock.sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.rx.changed() => if r.is_err() { return false },
                _ = self.shutdown.changed() => return false,
                _ = sleep => return true,
                _ = &mut extra => return true,
            }
        }
    }
}

/// Runs one pass of a component on a thread of the blocking pool, as the component would
/// run in a process of its own: a pass is synchronous work (milliseconds over hundreds
/// of objects), and on the runtime's workers it held up the API server's requests
/// behind it. `None` when the runtime is shutting down.
pub(crate) async fn on_own_thread<T: Send + 'static, R: Send + 'static>(
    mut component: T,
    pass: impl FnOnce(&mut T) -> R + Send + 'static,
) -> Option<(T, R)> {
    let ran = tokio::task::spawn_blocking(move || {
        let result = pass(&mut component);
        (component, result)
    })
    .await;
    match ran {
        Ok(done) => Some(done),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => None,
    }
}

pub(crate) fn earliest(a: Option<SimInstant>, b: Option<SimInstant>) -> Option<SimInstant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

pub(crate) type Shared<T> = Arc<std::sync::Mutex<T>>;

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
