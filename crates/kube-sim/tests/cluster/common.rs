//! A kube-sim with the simulated cluster, and waiting on the store.

use std::time::Duration;

use kube_sim::cluster::{ClusterConfig, SimulatedCluster};
use kube_sim::{Config, KubeSim, ResourceRef, Store, StoreClient};
use serde_json::{Value, json};

pub struct Env {
    pub sim: KubeSim,
    pub cluster: SimulatedCluster,
    pub client: StoreClient,
}

impl Env {
    /// Three nodes in three zones, the clock at `speed`.
    pub async fn start(speed: f64) -> Env {
        Self::with(speed, ClusterConfig { nodes: 3, zones: 3, ..ClusterConfig::default() }).await
    }

    pub async fn with(speed: f64, config: ClusterConfig) -> Env {
        let dir = std::env::temp_dir().join(format!("kube-sim-cluster-{}-{}", std::process::id(), rand_suffix()));
        let sim = KubeSim::start(Config { speed, kubeconfig: Some(dir), ..Config::default() }).await.unwrap();
        let cluster = SimulatedCluster::start(sim.store().clone(), config);
        let client = sim.store().client("test");
        Env { sim, cluster, client }
    }

    pub fn store(&self) -> &Store {
        self.sim.store()
    }

    pub fn create(&self, plural: &str, ns: Option<&str>, obj: Value) -> Value {
        let (group, version) = group_of(plural);
        self.client.create(&ResourceRef::new(group, version, plural), ns, obj).unwrap()
    }

    pub fn get(&self, plural: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        let (group, version) = group_of(plural);
        self.client.get(&ResourceRef::new(group, version, plural), ns, name).ok()
    }

    /// Polls `cond` after every write and every few milliseconds (simulated time moves
    /// on its own) until it returns a value; panics after 20 s of real time.
    pub async fn wait<T>(&self, what: &str, mut cond: impl FnMut(&Env) -> Option<T>) -> T {
        let mut rx = self.store().subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = cond(self) {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}");
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }

    pub async fn wait_pod(&self, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        self.wait(what, |e| e.get("pods", Some("default"), name).filter(|p| cond(p))).await
    }

    /// Events about an object, as `reason: message`.
    pub fn events_of(&self, name: &str) -> Vec<String> {
        let list = self.client.list(&ResourceRef::new("", "v1", "events"), None, &Default::default()).unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["involvedObject"]["name"] == name)
            .map(|e| format!("{}: {}", e["reason"].as_str().unwrap(), e["message"].as_str().unwrap()))
            .collect()
    }

    /// Waits for an Event about `name` whose `reason: message` starts with `prefix`:
    /// components run their passes on threads of their own and record an Event just
    /// after the write it tells of, so it may land a moment after that write is seen.
    pub async fn wait_event(&self, name: &str, prefix: &str) -> Vec<String> {
        self.wait(prefix, |e| {
            let events = e.events_of(name);
            events.iter().any(|m| m.starts_with(prefix)).then_some(events)
        })
        .await
    }

    pub async fn shutdown(self) {
        self.cluster.shutdown().await;
        self.sim.shutdown().await;
    }
}

fn rand_suffix() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn group_of(plural: &str) -> (&'static str, &'static str) {
    match plural {
        "storageclasses" => ("storage.k8s.io", "v1"),
        "volumeattributesclasses" => ("storage.k8s.io", "v1beta1"),
        _ => ("", "v1"),
    }
}

pub fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec["containers"].is_null() {
        spec["containers"] = json!([{"name": "main", "image": "busybox:1.36"}]);
    }
    json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": spec})
}

pub fn condition(obj: &Value, ty: &str) -> Value {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == ty)
        .cloned()
        .unwrap_or(Value::Null)
}

pub fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready")["status"] == "True"
}

pub fn pvc(name: &str, class: Option<&str>, size: &str) -> Value {
    let mut p = json!({"metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}});
    if let Some(c) = class {
        p["spec"]["storageClassName"] = json!(c);
    }
    p
}

pub fn zone_of(env: &Env, node: &str) -> String {
    env.get("nodes", None, node).unwrap()["metadata"]["labels"]["topology.kubernetes.io/zone"]
        .as_str()
        .unwrap()
        .to_string()
}
