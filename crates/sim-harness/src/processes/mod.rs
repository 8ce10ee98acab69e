//! `pd-server` and `tikv-server` as kube-sim's kubelet runs them: a
//! [`ContainerRuntime`] for images whose repository is `pingcap/pd` or `pingcap/tikv`
//! (any registry, any tag) that reads the pod's command line and mounted config file
//! the way the real binaries do, reaches its peers only through the simulated
//! network ([`Network`]), and starts or stops the matching pd-sim member or store.
//!
//! Failures look like the real binary's: the container runs, then exits 1 with the
//! binary's kind of fatal log line as its termination message.

mod pd;
pub mod security;
mod tikv;

use std::sync::Arc;
use std::time::Duration;

use kube_sim::Store;
use kube_sim::cluster::runtime::BoxFuture;
use kube_sim::cluster::runtime::Mount;
use kube_sim::cluster::{ContainerContext, ContainerProcess, ContainerRuntime, RuntimeRegistry};
use sim_clock::SimClock;

use crate::clusters::PdClusters;
use crate::network::{Network, get};
use crate::programs::Programs;

pub use pd::PD_FLAGS;
pub use tikv::TIKV_FLAGS;

/// How long the simulated binaries keep retrying before they give up (simulated time).
#[derive(Clone, Debug)]
pub struct ProcessSettings {
    /// etcd resolving its own advertised peer URL against `--initial-cluster`.
    pub pd_resolve_timeout: Duration,
    /// PD waiting for its embedded etcd to become ready (a quorum).
    pub pd_start_timeout: Duration,
    /// PD `--join` reaching an existing member.
    pub pd_join_timeout: Duration,
    /// TiKV reaching PD (the real binary retries `pd.retry-max-count` times).
    pub tikv_pd_timeout: Duration,
    /// Between retries.
    pub retry_interval: Duration,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        ProcessSettings {
            pd_resolve_timeout: Duration::from_secs(30),
            pd_start_timeout: Duration::from_secs(300),
            pd_join_timeout: Duration::from_secs(10),
            tikv_pd_timeout: Duration::from_secs(60),
            retry_interval: Duration::from_secs(1),
        }
    }
}

/// What the PD and TiKV runtimes share.
pub struct Processes {
    pub(crate) store: Store,
    pub(crate) net: Network,
    pub(crate) clusters: Arc<PdClusters>,
    pub(crate) settings: ProcessSettings,
    /// What the containers' preStop hooks run.
    pub(crate) programs: Arc<Programs>,
}

impl Processes {
    pub fn new(
        store: Store,
        net: Network,
        clusters: Arc<PdClusters>,
        settings: ProcessSettings,
        programs: Arc<Programs>,
    ) -> Arc<Self> {
        Arc::new(Processes { store, net, clusters, settings, programs })
    }

    /// Registers the PD and TiKV runtimes on the kubelets' registry.
    pub fn register(self: &Arc<Self>, registry: &RuntimeRegistry) {
        registry.register("pingcap/pd", Arc::new(PdRuntime(self.clone())));
        registry.register("pingcap/tikv", Arc::new(TikvRuntime(self.clone())));
    }

    pub(crate) fn clock(&self) -> &SimClock {
        self.store.clock()
    }
}

struct PdRuntime(Arc<Processes>);
struct TikvRuntime(Arc<Processes>);

impl ContainerRuntime for PdRuntime {
    fn start(&self, ctx: ContainerContext) -> BoxFuture<Result<Arc<dyn ContainerProcess>, String>> {
        let procs = self.0.clone();
        Box::pin(async move { Ok(pd::start(procs, ctx) as Arc<dyn ContainerProcess>) })
    }
}

impl ContainerRuntime for TikvRuntime {
    fn start(&self, ctx: ContainerContext) -> BoxFuture<Result<Arc<dyn ContainerProcess>, String>> {
        let procs = self.0.clone();
        Box::pin(async move { Ok(tikv::start(procs, ctx) as Arc<dyn ContainerProcess>) })
    }
}

/// Where a process reads its TLS files (PD `--cacert/--cert/--key` or `[security]
/// cacert-path/cert-path/key-path`; TiKV `[security] ca-path/cert-path/key-path`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsPaths {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

impl TlsPaths {
    /// The three files as the container sees them through `mounts`; the real binaries
    /// fail to start (or keep their material) when one cannot be read.
    pub fn load(&self, ctx: &ContainerContext, mounts: &[Mount]) -> Result<pd_sim::TlsConfig, String> {
        let mut view = ctx.clone();
        view.mounts = mounts.to_vec();
        let read = |path: &str| view.read_file(path).ok_or_else(|| format!("open {path}: no such file or directory"));
        Ok(pd_sim::TlsConfig {
            ca_pem: if self.ca.is_empty() { String::new() } else { read(&self.ca)? },
            cert_pem: read(&self.cert)?,
            key_pem: read(&self.key)?,
            cert_allowed_cn: Vec::new(),
        })
    }
}

/// `ns/name`.
pub(crate) fn pod_key(ctx: &ContainerContext) -> String {
    format!("{}/{}", ctx.namespace, ctx.pod_name)
}

/// The identity of the data directory at `path`: the PVC mounted there, or this pod's
/// own filesystem. Returns (key, `ns/claim`).
pub(crate) fn data_identity(ctx: &ContainerContext, path: &str) -> (String, Option<String>) {
    match ctx.claim_at(path) {
        Some(claim) => (format!("pvc:{}", claim.uid), Some(format!("{}/{}", claim.namespace, claim.name))),
        None => (format!("pod:{}:{path}", ctx.pod_uid), None),
    }
}

/// The image tag as a version (`pingcap/tikv:v8.5.1` → `8.5.1`); empty when untagged.
pub(crate) fn image_version(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" && tag != "nightly" => tag.trim_start_matches('v').to_owned(),
        _ => String::new(),
    }
}

/// Waits (bounded) until the kubelet shows this start of the container as running, so
/// that an exit reported now is not taken for an exit of the previous start.
pub(crate) async fn until_running(procs: &Processes, ctx: &ContainerContext) {
    let mut rx = procs.store.subscribe();
    let clock = procs.clock().clone();
    let deadline = clock.now() + Duration::from_secs(30);
    loop {
        let Some(pod) = get(&procs.store, "", "v1", "pods", Some(&ctx.namespace), &ctx.pod_name) else { return };
        if pod["metadata"]["uid"] != ctx.pod_uid.as_str() {
            return;
        }
        let running = pod["status"]["containerStatuses"].as_array().into_iter().flatten().any(|s| {
            s["name"] == ctx.container.name.as_str()
                && s["restartCount"].as_u64() == Some(u64::from(ctx.restart_count))
                && s["state"]["running"].is_object()
        });
        if running || clock.now() >= deadline {
            return;
        }
        tokio::select! {
            _ = rx.changed() => {}
            _ = clock.sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// TOML value kinds, in Go's words (PD) and serde's words (TiKV).
pub(crate) fn go_type(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "string",
        toml::Value::Integer(_) => "int64",
        toml::Value::Float(_) => "float64",
        toml::Value::Boolean(_) => "bool",
        toml::Value::Datetime(_) => "time.Time",
        toml::Value::Array(_) => "[]interface {}",
        toml::Value::Table(_) => "map[string]interface {}",
    }
}

pub(crate) fn serde_unexpected(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("string {s:?}"),
        toml::Value::Integer(i) => format!("integer `{i}`"),
        toml::Value::Float(f) => format!("floating point `{f}`"),
        toml::Value::Boolean(b) => format!("boolean `{b}`"),
        toml::Value::Datetime(d) => format!("datetime `{d}`"),
        toml::Value::Array(_) => "sequence".into(),
        toml::Value::Table(_) => "map".into(),
    }
}

/// The value at a dotted path of a TOML table.
pub(crate) fn toml_at<'a>(table: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = table;
    for p in parents {
        cur = cur.get(*p)?.as_table()?;
    }
    cur.get(*last)
}

/// A TiKV `ReadableSize` (`100GB`, `512MiB`, `1024`; binary units).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        "P" | "PB" | "PIB" => 1 << 50,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_tag() {
        assert_eq!(image_version("pingcap/tikv:v8.5.1"), "8.5.1");
        assert_eq!(image_version("localhost:5000/pingcap/tikv:v7.5.0"), "7.5.0");
        assert_eq!(image_version("localhost:5000/pingcap/tikv"), "");
        assert_eq!(image_version("pingcap/tikv:latest"), "");
    }

    #[test]
    fn sizes_are_binary() {
        assert_eq!(parse_size("100GB"), Some(100 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("lots"), None);
    }
}
