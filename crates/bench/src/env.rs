//! One simulated Kubernetes cluster with PD and TiKV (sim-harness), `examples/basic`
//! applied as a user would, and the operator run in this process the way the
//! playground runs it, configured by a [`Profile`].

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use kube_sim::{ListOptions, PatchType, ResourceRef, StoreClient};
use serde_json::{Value, json};
use sim_harness::{Harness, HarnessConfig};
use tikv_operator::playground::apply;
use tikv_operator::playground::timing::{SimulatedClock, SimulatedTimestamps};
use tikv_operator_controllers::OperatorConfig;
use tikv_operator_controllers::metrics::Metrics;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::pd_count::PdCounter;

pub const NS: &str = "default";
pub const TIKV_GROUP: &str = "tikv";

/// The operator's timings under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Our defaults, as `tikv-operator run` has them.
    Ours,
    /// tidb-operator v2's timings (reference notes 1.4, 2.6, "Numbers").
    V2,
}

impl Profile {
    pub const BOTH: [Profile; 2] = [Profile::Ours, Profile::V2];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Ours => "ours",
            Profile::V2 => "v2",
        }
    }

    /// The operator's settings under this profile.
    pub fn configure(self, config: &mut OperatorConfig) {
        config.timing = match self {
            Profile::Ours => tikv_operator_controllers::Timing::default(),
            Profile::V2 => tikv_operator_controllers::Timing::v2(),
        };
    }

    /// The same, as `tikv-operator run` arguments.
    pub fn run_args(self) -> Vec<String> {
        match self {
            Profile::Ours => Vec::new(),
            Profile::V2 => ["--timing-profile", "v2"].map(str::to_owned).to_vec(),
        }
    }
}

/// How the simulated clock relates to the operator's timers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mode {
    /// Simulated clock speed.
    pub speed: f64,
    /// The operator's timers (requeues, PD polls, backoff) run on the simulated clock.
    pub simulated_timers: bool,
}

impl Mode {
    /// The operator's timers run on the machine's clock: the simulated clock runs at
    /// real speed so that both agree (pd-sim's fast preset keeps PD's own timings short).
    /// The operator's own work takes its real time, as it would in a cluster.
    pub const REALISTIC_SPEED: Mode = Mode { speed: 1.0, simulated_timers: false };

    /// Everything on the simulated clock at 40x: for counting what timers cause (requests
    /// per minute of an idle cluster), where the operator's own work time does not count
    /// but its polls' periods do.
    pub const SIMULATED_TIMERS: Mode = Mode { speed: 40.0, simulated_timers: true };

    pub fn describe(self) -> String {
        if self.simulated_timers {
            format!(
                "simulated clock at {}x real time, pd-sim's fast preset; the operator's timers (requeues, PD polls, \
                 backoff) run on the simulated clock too, as in the playground (used for the idle scenario only: \
                 request counts per simulated minute)",
                self.speed
            )
        } else {
            format!(
                "simulated clock at {}x real time, pd-sim's fast preset (PD's own timings shortened); the \
                 operator's timers (requeues, PD polls) run on the machine's clock, which the simulated clock \
                 matches at 1x (every scenario but idle)",
                self.speed
            )
        }
    }
}

pub fn r(plural: &str) -> ResourceRef {
    match plural {
        "pods" | "nodes" | "persistentvolumeclaims" | "services" | "configmaps" | "secrets" => {
            ResourceRef::new("", "v1", plural)
        }
        _ => ResourceRef::new(tikv_operator_api::GROUP, tikv_operator_api::VERSION, plural),
    }
}

/// `examples/basic` as a user has it.
pub fn basic() -> anyhow::Result<Vec<apply::Document>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
    apply::read_dir(&dir)
}

/// `examples/basic` with `tikv` stores, small resource requests (many pods share the
/// simulated nodes) and minReadySeconds 0 (the user's own wait after each instance,
/// the same for both profiles, left out of what the operator is measured on).
pub fn cluster_docs(namespace: &str, tikv: usize) -> anyhow::Result<Vec<apply::Document>> {
    let mut docs = basic()?;
    for doc in &mut docs {
        doc.object["metadata"]["namespace"] = json!(namespace);
        if matches!(doc.kind(), "PDGroup" | "TiKVGroup") {
            doc.object["spec"]["minReadySeconds"] = json!(0);
            doc.object["spec"]["template"]["spec"]["resources"] = json!({"cpu": "100m", "memory": "256Mi"});
        }
        if doc.kind() == "TiKVGroup" {
            doc.object["spec"]["replicas"] = json!(tikv);
        }
    }
    Ok(docs)
}

/// The harness for `nodes` nodes over 3 zones.
pub fn harness_config(mode: Mode, nodes: u32, regions: usize) -> HarnessConfig {
    HarnessConfig {
        nodes,
        zones: 3,
        speed: mode.speed,
        regions,
        watch_delay: Duration::from_millis(50),
        ..HarnessConfig::fast()
    }
}

/// Installs the CRDs and the operator's image (its preStop tool), then applies `docs`.
pub fn apply_all(h: &Harness, docs: &[apply::Document]) -> anyhow::Result<()> {
    tikv_operator::tools::register_simulated(h, tikv_operator_controllers::DEFAULT_TOOLS_IMAGE);
    let kubectl = h.store().client("kubectl");
    apply::install_crds(&kubectl)?;
    apply::ensure_namespaces(&kubectl, docs)?;
    for doc in docs {
        apply::apply(&kubectl, doc)?;
    }
    Ok(())
}

/// What the bench reads of the simulators, cheap to clone and to move onto a task.
#[derive(Clone)]
pub struct View {
    pub store: kube_sim::Store,
    pub pd: Arc<sim_harness::PdClusters>,
    pub clock: sim_clock::SimClock,
}

impl View {
    pub fn of(h: &Harness) -> View {
        View { store: h.store().clone(), pd: h.pd_registry().clone(), clock: h.clock().clone() }
    }

    pub fn now(&self) -> Duration {
        self.clock.now().since_start()
    }

    pub fn list(&self, namespace: Option<&str>, plural: &str) -> Vec<Value> {
        list_in(&self.store, namespace, plural)
    }
}

/// Objects of `plural` in `namespace`, straight from the store (not in the request log).
pub fn list(h: &Harness, namespace: Option<&str>, plural: &str) -> Vec<Value> {
    list_in(h.store(), namespace, plural)
}

fn list_in(store: &kube_sim::Store, namespace: Option<&str>, plural: &str) -> Vec<Value> {
    let r = r(plural);
    let Some(info) = store.resource(&r.group, &r.version, &r.plural) else { return Vec::new() };
    match store.list(&info, namespace, &ListOptions::default()) {
        Ok(mut list) => match list["items"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn is_true(o: &Value, type_: &str) -> bool {
    o["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == type_ && c["status"] == "True"))
}

/// Clusters Ready in any namespace.
pub fn ready_clusters(h: &Harness) -> usize {
    list(h, None, "clusters").iter().filter(|c| is_true(c, "Ready")).count()
}

/// Simulated time since the clock started.
pub fn sim_now(h: &Harness) -> Duration {
    h.clock().now().since_start()
}

/// One cluster, one operator in this process.
pub struct Env {
    pub h: Harness,
    mode: Mode,
    pub user: StoreClient,
    pub pd: PdCounter,
    pub metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    operator: Option<JoinHandle<Result<(), tikv_operator_controllers::Error>>>,
}

impl Env {
    /// Harness up, `docs` applied; the operator not started yet.
    pub async fn prepare(mode: Mode, nodes: u32, docs: &[apply::Document]) -> anyhow::Result<Env> {
        let h = Harness::start(harness_config(mode, nodes, 30)).await?;
        apply_all(&h, docs)?;
        let pd = PdCounter::start(&h.proxy_url(), h.clock().clone()).await?;
        let user = h.store().client("user");
        let (stop, _) = watch::channel(false);
        Ok(Env { h, mode, user, pd, metrics: Arc::new(Metrics::default()), stop, operator: None })
    }

    /// Starts the operator under `profile`.
    pub fn start_operator(&mut self, profile: Profile) {
        let (stop, stop_rx) = watch::channel(false);
        let shutdown = async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|s| *s).await;
        }
        .boxed()
        .shared();
        let mut config = OperatorConfig { pd_proxy: Some(self.pd.url.clone()), ..OperatorConfig::default() };
        profile.configure(&mut config);
        let clock: Arc<dyn tikv_operator_controllers::Clock> = if self.mode.simulated_timers {
            Arc::new(SimulatedClock::new(self.h.clock().clone()))
        } else {
            Arc::new(SimulatedTimestamps(self.h.clock().clone()))
        };
        let kubeconfig = self.h.kubeconfig_path().to_owned();
        self.stop = stop;
        self.operator = Some(tokio::spawn(tikv_operator_controllers::run_until_with_metrics(
            kubeconfig,
            config,
            clock,
            self.metrics.clone(),
            shutdown,
        )));
    }

    /// A user's merge patch.
    pub fn patch(&self, plural: &str, name: &str, patch: Value) -> anyhow::Result<()> {
        self.user
            .patch(&r(plural), Some(NS), name, None, PatchType::Merge, &patch)
            .map(drop)
            .map_err(|e| anyhow::anyhow!("patching {plural}/{name}: {}", e.message))
    }

    pub fn list(&self, plural: &str) -> Vec<Value> {
        list(&self.h, Some(NS), plural)
    }

    pub fn now(&self) -> Duration {
        sim_now(&self.h)
    }

    /// Polls `check` every 20 ms of real time until it holds; an error after `limit`
    /// of real time or when the operator stopped.
    pub async fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&Env) -> bool,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if check(self) {
                return Ok(());
            }
            if self.operator.as_ref().is_some_and(JoinHandle::is_finished) {
                anyhow::bail!("the operator stopped while waiting for {what}");
            }
            if started.elapsed() > limit {
                anyhow::bail!("{what}: not within {} s (real time)", limit.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `sim` of simulated time passed.
    pub async fn let_pass(&self, sim: Duration) {
        let until = self.now() + sim;
        while self.now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the operator (bounded) and the harness.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.operator.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
        self.pd.stop();
        self.h.shutdown().await;
    }
}
