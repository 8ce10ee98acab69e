//! kube-sim: an in-memory Kubernetes API server emulator over real HTTP on loopback,
//! faithful enough that unmodified kube-rs and kubectl work against it.
//!
//! # Starting it
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = kube_sim::KubeSim::start(kube_sim::Config::default()).await?;
//! println!("serving {} (kubeconfig {})", sim.url(), sim.kubeconfig_path().display());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Tests build their kube client from [`KubeSim::url`] or [`KubeSim::kubeconfig_path`];
//! kubectl takes `--kubeconfig`.
//!
//! # What it serves
//!
//! core/v1 Namespace, Pod (with `binding` and `eviction`), Service, ConfigMap, Secret,
//! PersistentVolumeClaim, PersistentVolume, Node, Event, ServiceAccount; apps/v1
//! ControllerRevision and Deployment (stored and validated; no Deployment controller
//! runs, so none of its Pods appear); rbac.authorization.k8s.io/v1 Role, RoleBinding,
//! ClusterRole, ClusterRoleBinding (enforced for token users, see [`auth`]; with the
//! ServiceAccount `token` subresource and the create-only authorization.k8s.io and
//! authentication.k8s.io reviews behind `kubectl auth can-i [--list]` and `auth whoami`);
//! policy/v1 PodDisruptionBudget; coordination.k8s.io/v1 Lease; events.k8s.io/v1 Event
//! (one store with core Events); storage.k8s.io/v1 StorageClass and v1beta1
//! VolumeAttributesClass (as Kubernetes 1.33 with its feature gate on); apiextensions.k8s.io/v1
//! CustomResourceDefinition, and the custom resources CRDs define. Semantics follow
//! kube-apiserver: see [`store`] for writes, lists and watches, [`controllers`] for
//! garbage collection and namespace/CRD termination, [`api`] for discovery, OpenAPI and
//! Tables. Request bodies are JSON or YAML, and for the built-in kinds also Kubernetes
//! protobuf, as kubectl's typed commands send it (converted to JSON on arrival; responses
//! are always JSON); custom resources refuse protobuf with 415.
//!
//! # The in-process API (for the simulated cluster components)
//!
//! [`KubeSim::store`] gives the [`Store`]. A component acts as a named client:
//!
//! ```no_run
//! # fn demo(store: &kube_sim::Store) -> kube_sim::ApiResult<()> {
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_sim::{ListOptions, ResourceRef};
//! let kubelet = store.client("kubelet/node-1");
//! let pods: Vec<Pod> = kubelet.list_typed(None, &ListOptions::default().fields("spec.nodeName=node-1"))?;
//! kubelet.patch_status(&ResourceRef::of::<Pod>(), Some("default"), "web-0",
//!     &serde_json::json!({"status": {"phase": "Running"}}))?;
//! store.client("default-scheduler").bind("default", "web-1", "node-2")?;
//! # Ok(()) }
//! ```
//!
//! Every call is recorded in the request log under the client's name and is subject to
//! injected faults, like an HTTP request. [`StoreClient::watch`] returns a [`Watcher`]
//! (history replay from a resourceVersion, selector transitions, watch delay), and
//! [`Store::subscribe`] wakes a component on every committed write: that is the hook
//! point for simulated components (the built-in controllers use it the same way).
//!
//! # Identities
//!
//! Requests without a bearer token act as the administrator (`system:admin` in
//! `system:masters`), so the default kubeconfig can do anything. [`KubeSim::add_token`]
//! and [`KubeSim::service_account_token`] register tokens whose requests RBAC authorizes
//! (see [`auth`]); [`KubeSim::write_kubeconfig_with_token`] writes a kubeconfig presenting
//! one. kube-rs sends a token over the plain-http URL; kubectl sends one only over TLS,
//! so for kubectl start with [`Config::https`].
//!
//! # Measurement and faults
//!
//! [`KubeSim::requests`] is the [`RequestLog`]; [`KubeSim::faults`] injects 409 / 429 /
//! 500 / hangs for chosen requests, delays or drops watches, and compacts history.

pub mod api;
pub mod auth;
pub mod cluster;
pub mod controllers;
mod convert;
pub mod error;
pub mod faults;
pub mod jsonpath;
pub mod kubeconfig;
pub mod meta;
pub mod patch;
mod pdb;
pub mod registry;
pub mod request_log;
pub mod selectors;
pub mod store;
mod strategy;
mod tls;
pub mod validation;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sim_clock::SimClock;

pub use auth::{Tokens, UserInfo};
pub use error::{ApiError, ApiResult, FieldErr};
pub use faults::{FaultAction, FaultId, FaultRule, Faults};
pub use patch::PatchType;
pub use registry::ResourceInfo;
pub use request_log::{DeletedObject, HookId, RecordHook, RequestLog, RequestRecord, Verb};
pub use store::{
    DeleteOptions, Deleted, Evicted, ListOptions, Propagation, ResourceRef, Store, StoreClient, Subresource,
    WatchEvent, WatchOptions, Watcher, WriteOptions, Written,
};
pub use validation::custom::FieldValidation;

/// How to start the server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where to write the kubeconfig; by default a file in the system temp directory.
    pub kubeconfig: Option<PathBuf>,
    /// Simulated clock speed (ignored when `clock` is given).
    pub speed: f64,
    /// A clock shared with other simulators.
    pub clock: Option<SimClock>,
    /// Node objects to create (`node-1`..), spread over `zones` zones (`zone-a`..).
    pub nodes: u32,
    pub zones: u32,
    /// Changes kept for watches and exact lists before older ones are compacted away.
    pub history_limit: usize,
    /// Run the ownerReference garbage collector.
    pub garbage_collection: bool,
    /// Seed for fault injection's choices.
    pub seed: u64,
    /// How often watches with `allowWatchBookmarks` get a bookmark (real time).
    pub bookmark_interval: Duration,
    /// The simulated rest of a cluster (scheduler, kubelet, volumes, DNS); `None` serves
    /// the API alone. Its `nodes`/`zones` are taken from this config.
    pub cluster: Option<cluster::ClusterConfig>,
    /// Also serve the API over HTTPS on another loopback port ([`KubeSim::https_url`]),
    /// with a certificate signed by a CA made at start ([`KubeSim::ca_pem`]).
    pub https: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            kubeconfig: None,
            speed: 1.0,
            clock: None,
            nodes: 0,
            zones: 1,
            history_limit: 100_000,
            garbage_collection: true,
            seed: 0,
            bookmark_interval: Duration::from_secs(60),
            cluster: None,
            https: false,
        }
    }
}

/// A running server.
pub struct KubeSim {
    url: String,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    store: Store,
    config: Config,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    controllers: tokio::task::JoinHandle<()>,
    cluster: Option<cluster::SimulatedCluster>,
    tokens: Tokens,
    https: Option<Https>,
}

struct Https {
    url: String,
    ca_pem: String,
    server: tokio::task::JoinHandle<()>,
}

impl KubeSim {
    /// Binds, seeds the cluster (namespaces, the `kubernetes` Service, nodes), writes the
    /// kubeconfig and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<KubeSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let clock = config.clock.clone().unwrap_or_else(|| SimClock::new(config.speed));
        let store = Store::new(clock, config.history_limit, config.seed);
        seed(&store, &config)?;
        let kubeconfig = config.kubeconfig.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("kube-sim-{}-{}.kubeconfig", std::process::id(), addr.port()))
        });
        kubeconfig::write(&kubeconfig, &url)?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let tokens = Tokens::default();
        let app = Arc::new(api::AppState {
            store: store.clone(),
            tokens: tokens.clone(),
            addr: addr.to_string(),
            shutdown: shutdown_rx.clone(),
            bookmark_interval: config.bookmark_interval,
        });
        let router = api::router(app);
        let https = if config.https {
            let cert = tls::ServingCert::generate()?;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
            let url = format!("https://{}", listener.local_addr()?);
            let server = tokio::spawn(tls::serve(listener, router.clone(), cert.acceptor, shutdown_rx.clone()));
            Some(Https { url, ca_pem: cert.ca_pem, server })
        } else {
            None
        };
        let mut graceful = shutdown_rx.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = graceful.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "kube-sim server stopped");
            }
        });
        let controllers = tokio::spawn(controllers::run(store.clone(), config.garbage_collection, shutdown_rx));
        let cluster = config.cluster.clone().map(|cluster| {
            let cluster = cluster::ClusterConfig { nodes: config.nodes, zones: config.zones, ..cluster };
            cluster::SimulatedCluster::start(store.clone(), cluster)
        });
        Ok(KubeSim { url, addr, kubeconfig, store, config, shutdown_tx, server, controllers, cluster, tokens, https })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn clock(&self) -> &SimClock {
        self.store.clock()
    }

    pub fn requests(&self) -> &RequestLog {
        self.store.requests()
    }

    pub fn faults(&self) -> Faults {
        Faults { store: self.store.clone() }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The simulated cluster, when [`Config::cluster`] asked for one.
    pub fn cluster(&self) -> Option<&cluster::SimulatedCluster> {
        self.cluster.as_ref()
    }

    /// The bearer tokens the server accepts (see [`auth`]).
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Accepts `token` as `user` in `groups` (plus `system:authenticated`), like a line of
    /// kube-apiserver's `--token-auth-file`. Requests presenting it are authorized by RBAC
    /// unless `groups` holds `system:masters`.
    pub fn add_token(&self, token: &str, user: &str, groups: &[&str]) {
        self.tokens.add(token, user, groups);
    }

    /// A new bearer token for the ServiceAccount `namespace/name`: it authenticates as
    /// `system:serviceaccount:<namespace>:<name>` (groups `system:serviceaccounts`,
    /// `system:serviceaccounts:<namespace>`, `system:authenticated`) while that
    /// ServiceAccount exists. A real cluster issues such tokens through TokenRequest;
    /// this static token stands in for one.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        self.tokens.issue_service_account(namespace, name)
    }

    /// Writes a kubeconfig for this server that presents `token`: over https with the CA
    /// when [`Config::https`] is on (kubectl needs that to send a token), else over http
    /// (enough for kube-rs).
    pub fn write_kubeconfig_with_token(&self, path: &Path, token: &str) -> std::io::Result<()> {
        match &self.https {
            Some(h) => kubeconfig::write_with_token_and_ca(path, &h.url, token, &h.ca_pem),
            None => kubeconfig::write_with_token(path, &self.url, token),
        }
    }

    /// `https://127.0.0.1:PORT`, when [`Config::https`] is on.
    pub fn https_url(&self) -> Option<&str> {
        self.https.as_ref().map(|h| h.url.as_str())
    }

    /// The PEM of the CA that signed the https certificate, when [`Config::https`] is on.
    pub fn ca_pem(&self) -> Option<&str> {
        self.https.as_ref().map(|h| h.ca_pem.as_str())
    }

    /// Stops serving: open watches and hung requests end, the controllers stop.
    pub async fn shutdown(self) {
        if let Some(cluster) = self.cluster {
            cluster.shutdown().await;
        }
        let _ = self.shutdown_tx.send(true);
        let _ = self.server.await;
        if let Some(h) = self.https {
            let _ = h.server.await;
        }
        let _ = self.controllers.await;
    }
}

fn seed(store: &Store, config: &Config) -> anyhow::Result<()> {
    let system = store.client("kube-apiserver");
    let namespaces = ResourceRef::new("", "v1", "namespaces");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        system.create(&namespaces, None, json!({"metadata": {"name": ns}}))?;
    }
    system.create(
        &ResourceRef::new("", "v1", "services"),
        Some("default"),
        json!({"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
               "spec": {"clusterIP": "127.2.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}}),
    )?;
    let rbac = |plural: &str| ResourceRef::new(registry::RBAC_GROUP, "v1", plural);
    for role in auth::bootstrap::cluster_roles() {
        system.create(&rbac("clusterroles"), None, role)?;
    }
    for binding in auth::bootstrap::cluster_role_bindings() {
        system.create(&rbac("clusterrolebindings"), None, binding)?;
    }
    let nodes = ResourceRef::new("", "v1", "nodes");
    let zones = config.zones.max(1);
    for i in 0..config.nodes {
        let name = format!("node-{}", i + 1);
        let zone = zone_name(i % zones);
        system.create(&nodes, None, node(&name, &zone, i + 1, store))?;
    }
    store.requests().reset();
    Ok(())
}

/// `zone-a`, `zone-b`, ... `zone-z`, `zone-aa`, ...
fn zone_name(i: u32) -> String {
    let mut n = i;
    let mut s = String::new();
    loop {
        s.insert(0, (b'a' + (n % 26) as u8) as char);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    format!("zone-{s}")
}

fn node(name: &str, zone: &str, index: u32, store: &Store) -> Value {
    let now = meta::time(store.clock().wall());
    // Every simulated address is on loopback: nothing here may ever route off the machine.
    let ip = format!("127.3.{}.{}", index / 250, index % 250 + 1);
    json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "region-1"
        }},
        "spec": {"podCIDR": format!("127.1.{index}.0/24")},
        "status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "operatingSystem": "linux", "architecture": "amd64",
                          "containerRuntimeVersion": "containerd://2.0.0", "osImage": "kube-sim", "kernelVersion": "6.1.0",
                          "kubeProxyVersion": "v1.33.0", "machineID": "", "systemUUID": "", "bootID": ""}
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn zone_names() {
        assert_eq!(super::zone_name(0), "zone-a");
        assert_eq!(super::zone_name(25), "zone-z");
        assert_eq!(super::zone_name(26), "zone-aa");
    }
}
