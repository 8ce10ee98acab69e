//! Everything an end-to-end test or the playground needs, started with one call:
//! kube-sim with its simulated cluster (nodes in zones, scheduler, kubelets, volumes,
//! DNS), one shared clock, the PD/TiKV processes registered on the kubelets, the HTTP
//! proxy into the pod network and the safety watcher.

use std::sync::Arc;
use std::time::Duration;

use kube_sim::cluster::{ClusterConfig, Dns, SimulatedCluster, Timings};
use kube_sim::{KubeSim, Store};
use sim_clock::SimClock;

use crate::clusters::{PdCluster, PdClusters};
use crate::invariants::{SafetyWatcher, WatcherConfig};
use crate::network::Network;
use crate::pd_ctl::PdCtl;
use crate::processes::{ProcessSettings, Processes};
use crate::programs::{Program, ProgramRun, Programs};
use crate::proxy::{PdWriteLog, Proxy};

#[derive(Clone, Debug)]
pub struct HarnessConfig {
    pub nodes: u32,
    pub zones: u32,
    /// Simulated clock speed (1.0: real time).
    pub speed: f64,
    /// pd-sim timing preset for every PD cluster the pods form.
    pub preset: pd_sim::Preset,
    /// Regions a new PD cluster bootstraps with (on its first store).
    pub regions: usize,
    /// Delay added to every watch event (real informers lag).
    pub watch_delay: Duration,
    /// kube-sim's cluster timings (container start, ConfigMap sync, ...).
    pub timings: Timings,
    pub processes: ProcessSettings,
    pub watcher: WatcherConfig,
    /// Port of the proxy on 127.0.0.1 (0: any).
    pub proxy_port: u16,
    pub seed: u64,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        HarnessConfig {
            nodes: 3,
            zones: 3,
            speed: 1.0,
            preset: pd_sim::Preset::Realistic,
            regions: 30,
            watch_delay: Duration::from_millis(100),
            timings: Timings::default(),
            processes: ProcessSettings::default(),
            watcher: WatcherConfig::default(),
            proxy_port: 0,
            seed: 0x5eed,
        }
    }
}

impl HarnessConfig {
    /// Fast timings for tests: pd-sim's fast preset, a quick ConfigMap sync.
    pub fn fast() -> Self {
        HarnessConfig {
            preset: pd_sim::Preset::Fast,
            timings: Timings { config_sync: Duration::from_secs(5), ..Timings::default() },
            ..HarnessConfig::default()
        }
    }
}

pub struct Harness {
    sim: KubeSim,
    cluster: SimulatedCluster,
    clusters: Arc<PdClusters>,
    net: Network,
    proxy: Proxy,
    watcher: SafetyWatcher,
    programs: Arc<Programs>,
    /// Destroys a store's data in pd-sim when its volume goes ([`crate::datadirs`]).
    datadirs: tokio::task::JoinHandle<()>,
}

impl Harness {
    pub async fn start(config: HarnessConfig) -> anyhow::Result<Harness> {
        let clock = SimClock::new(config.speed);
        let sim = KubeSim::start(kube_sim::Config {
            clock: Some(clock.clone()),
            seed: config.seed,
            ..kube_sim::Config::default()
        })
        .await?;
        sim.faults().set_watch_delay(config.watch_delay);
        let cluster_config = ClusterConfig {
            nodes: config.nodes,
            zones: config.zones,
            timings: config.timings.clone(),
            ..ClusterConfig::default()
        };
        let dns = Dns::new(sim.store().clone(), &cluster_config.cluster_domain);
        let net = Network::new(sim.store().clone(), dns);
        let template = pd_sim::Config {
            preset: config.preset,
            clock: Some(clock.clone()),
            regions: config.regions,
            seed: config.seed,
            ..pd_sim::Config::default()
        };
        let clusters = Arc::new(PdClusters::new(template));
        let proxy = Proxy::start(net.clone(), clusters.clone(), clock.clone(), config.proxy_port).await?;
        let programs = Programs::new(proxy.pod_gateway(), clock);
        let processes = Processes::new(
            sim.store().clone(),
            net.clone(),
            clusters.clone(),
            config.processes.clone(),
            programs.clone(),
        );
        processes.register(&cluster_config.runtimes);
        let cluster = SimulatedCluster::start(sim.store().clone(), cluster_config);
        let watcher = SafetyWatcher::start(sim.store(), clusters.clone(), proxy.pd_writes(), config.watcher.clone());
        let datadirs = crate::datadirs::start(sim.store().clone(), clusters.clone());
        Ok(Harness { sim, cluster, clusters, net, proxy, watcher, programs, datadirs })
    }

    pub fn kubeconfig_path(&self) -> &std::path::Path {
        self.sim.kubeconfig_path()
    }

    /// The value for `HTTP_PROXY` / `HTTPS_PROXY`.
    pub fn proxy_url(&self) -> String {
        self.proxy.url()
    }

    pub fn kube_sim(&self) -> &KubeSim {
        &self.sim
    }

    pub fn store(&self) -> &Store {
        self.sim.store()
    }

    pub fn cluster(&self) -> &SimulatedCluster {
        &self.cluster
    }

    pub fn clock(&self) -> &SimClock {
        self.sim.clock()
    }

    /// Every PD cluster the pods formed so far, in formation order.
    pub fn pd_clusters(&self) -> Vec<Arc<PdCluster>> {
        self.clusters.clusters()
    }

    /// The registry behind [`pd_clusters`](Self::pd_clusters): which pod runs which
    /// member or store, and what each PVC holds.
    pub fn pd_registry(&self) -> &Arc<PdClusters> {
        &self.clusters
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    /// PD writes that went through the proxy.
    pub fn pd_writes(&self) -> PdWriteLog {
        self.proxy.pd_writes()
    }

    /// What an SRE does with pd-ctl against the PD at `pd_url`
    /// (`http://basic-pd.db.svc:2379`): PD writes through the proxy under pd-ctl's
    /// User-Agent, which the watcher never takes for the operator's.
    pub fn pd_ctl(&self, pd_url: &str) -> PdCtl {
        self.proxy.pd_ctl(pd_url)
    }

    /// Puts `program` at `path` in the images whose repository starts with
    /// `image_prefix` (`ghcr.io/tikv/tikv-operator`): containers of those images run it
    /// by that path, and so do preStop hooks of containers it was copied to (see
    /// [`crate::programs`]).
    pub fn register_program(&self, image_prefix: &str, path: &str, program: Program) {
        self.programs.register(self.cluster.runtimes(), image_prefix, path, program);
    }

    /// Every run of a registered program so far (containers and preStop hooks).
    pub fn program_runs(&self) -> Vec<ProgramRun> {
        self.programs.all_runs()
    }

    pub fn watcher(&self) -> &SafetyWatcher {
        &self.watcher
    }

    pub async fn shutdown(self) {
        self.datadirs.abort();
        self.watcher.stop().await;
        self.proxy.shutdown().await;
        self.cluster.shutdown().await;
        self.clusters.shutdown().await;
        self.sim.shutdown().await;
    }
}
