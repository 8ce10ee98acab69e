//! A simulated `tikv-server`.
//!
//! Command line (clap style, flags override the `--config` file): `--pd`/
//! `--pd-endpoints`, `--addr`/`-A`, `--advertise-addr`, `--status-addr`,
//! `--advertise-status-addr`, `--data-dir`/`-s`, `--config`/`-C`, `--capacity`,
//! `--labels k=v,...` (plus logging flags, accepted and ignored). TOML: `[pd]
//! endpoints`, `[server] addr advertise-addr status-addr advertise-status-addr
//! labels`, `[storage] data-dir`, `[raftstore] capacity`; unknown keys are ignored as
//! TiKV does without `--config-check`, a known key with a value of the wrong type is
//! fatal.
//!
//! Start-up: reach PD through the endpoints (retried, then `[FATAL] failed to create
//! rpc client`), then register the store (`start_store`) with the store ID kept in the
//! data directory's PVC and the image tag's version. PD refusing the registration (an
//! older version than the cluster version, a tombstoned store, a duplicate address) is
//! fatal with PD's text, as TiKV's PutStore error is.
//!
//! Config: like the real binary, the process reads its config file once, at start; a
//! changed ConfigMap reaches it only through a restart. Online changes go through the
//! status server's `POST /config` (pd-sim's [`pd_sim::tikv_config`]), whose `persist`
//! write fails on the read-only ConfigMap volume the `--config` file is on; without
//! `--config`, TiKV writes to `<data-dir>/last_tikv.toml`, which every start overwrites.
//!
//! A preStop `exec` hook runs as the kubelet would run it in the container: the
//! program at the command's path (see [`crate::programs`]), with the pod's network, on
//! the simulated clock, while the store still serves; the kubelet bounds it by the
//! grace period. A command found nowhere fails the hook, as a missing binary does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use kube_sim::cluster::runtime::BoxFuture;
use kube_sim::cluster::{ContainerContext, ContainerExit, ContainerProcess, StopRequest};
use pd_sim::{ConfigFile, Label, StoreSpec};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::security::{self, Transport, handshake};
use super::{Processes, data_identity, image_version, parse_size, pod_key, serde_unexpected, toml_at, until_running};
use crate::clusters::{DataDir, Instance, PdCluster, control_error};
use crate::cmdline::{FlagSpec, FlagStyle, flag, invocation, parse_flags};
use crate::network::{Route, Target, host_port};

pub const TIKV_FLAGS: &[FlagSpec] = &[
    flag("config", &["C"], true),
    flag("config-check", &[], false),
    flag("log-level", &["L"], true),
    flag("log-file", &["f"], true),
    flag("addr", &["A"], true),
    flag("advertise-addr", &[], true),
    flag("status-addr", &[], true),
    flag("advertise-status-addr", &[], true),
    flag("data-dir", &["s"], true),
    flag("capacity", &[], true),
    flag("pd", &["pd-endpoints"], true),
    flag("labels", &[], true),
    flag("metrics-addr", &[], true),
    flag("version", &["V"], false),
];

/// (TOML path, expected type in serde's words).
const TYPED_KEYS: &[(&[&str], &str)] = &[
    (&["pd", "endpoints"], "a sequence"),
    (&["server", "addr"], "a string"),
    (&["server", "advertise-addr"], "a string"),
    (&["server", "status-addr"], "a string"),
    (&["server", "advertise-status-addr"], "a string"),
    (&["server", "labels"], "a map"),
    (&["storage", "data-dir"], "a string"),
    (&["raftstore", "capacity"], "a string or an integer"),
];

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct TikvConfig {
    pub pd_endpoints: Vec<String>,
    pub addr: String,
    pub advertise_addr: String,
    pub status_addr: String,
    pub advertise_status_addr: String,
    pub data_dir: String,
    pub capacity: u64,
    pub labels: BTreeMap<String, String>,
    pub config_path: Option<String>,
    /// The whole applied config as the status server shows it.
    pub applied: Value,
    /// `[security]`: TLS on every port and every dial, or plain on all.
    pub transport: Transport,
    /// `[security]` ca-path, cert-path, key-path as read at start (with TLS).
    pub certificates: Option<security::Certificates>,
}

impl TikvConfig {
    /// Where TiKV's `cfg_path` points: the `--config` file, which the process could read
    /// only from a ConfigMap, Secret or projected volume, all read-only in Kubernetes;
    /// else `<data-dir>/last_tikv.toml`.
    pub fn config_file(&self) -> ConfigFile {
        match &self.config_path {
            Some(path) => ConfigFile::ReadOnly { path: path.clone() },
            None => ConfigFile::LastConfig { path: format!("{}/last_tikv.toml", self.data_dir.trim_end_matches('/')) },
        }
    }
}

fn fatal(message: &str) -> String {
    format!("[FATAL] [server.rs] [\"{}\"]", message.replace('"', "\\\""))
}

fn type_ok(value: &toml::Value, expected: &str) -> bool {
    match expected {
        "a sequence" => value.as_array().is_some_and(|a| a.iter().all(toml::Value::is_str)),
        "a string" => value.is_str(),
        "a map" => value.as_table().is_some_and(|t| t.values().all(toml::Value::is_str)),
        _ => value.is_str() || value.is_integer(),
    }
}

/// Reads and checks the config file (`Err`: the fatal message).
fn read_config(ctx: &ContainerContext, path: &str) -> Result<toml::Table, String> {
    let invalid = |e: &str| format!("invalid auto generated configuration file {path}, err {e}");
    let text = ctx.read_file(path).ok_or_else(|| invalid("No such file or directory (os error 2)"))?;
    let table = text.parse::<toml::Table>().map_err(|e| invalid(&e.message().replace('\n', " ")))?;
    for (key, expected) in TYPED_KEYS {
        if let Some(v) = toml_at(&table, key).filter(|v| !type_ok(v, expected)) {
            return Err(invalid(&format!(
                "invalid type: {}, expected {expected} for key `{}`",
                serde_unexpected(v),
                key.join(".")
            )));
        }
    }
    Ok(table)
}

/// The command line and config file, as `tikv-server` reads them.
pub(crate) fn parse(ctx: &ContainerContext) -> Result<TikvConfig, String> {
    let inv = invocation(&ctx.command, &ctx.args, "/tikv-server", &ctx.env)?;
    if inv.binary() != "tikv-server" {
        return Err(format!("exec: \"{}\": executable file not found in $PATH", inv.program));
    }
    let flags = parse_flags(&inv.args, TIKV_FLAGS, FlagStyle::Clap)?;
    let file = match flags.get("config") {
        Some(path) => read_config(ctx, path)?,
        None => toml::Table::new(),
    };
    let from_file = |path: &[&str]| toml_at(&file, path).and_then(|v| v.as_str()).map(str::to_owned);
    let pick = |flag: &str, path: &[&str]| flags.get(flag).cloned().or_else(|| from_file(path));
    let mut cfg = TikvConfig { config_path: flags.get("config").cloned(), ..TikvConfig::default() };
    cfg.pd_endpoints = match flags.get("pd") {
        Some(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        None => toml_at(&file, &["pd", "endpoints"])
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
    };
    cfg.addr = pick("addr", &["server", "addr"]).unwrap_or_else(|| "127.0.0.1:20160".into());
    cfg.advertise_addr = pick("advertise-addr", &["server", "advertise-addr"]).unwrap_or_default();
    cfg.status_addr = pick("status-addr", &["server", "status-addr"]).unwrap_or_else(|| "127.0.0.1:20180".into());
    cfg.advertise_status_addr = pick("advertise-status-addr", &["server", "advertise-status-addr"]).unwrap_or_default();
    cfg.data_dir = pick("data-dir", &["storage", "data-dir"]).unwrap_or_else(|| "./".into());
    let capacity = flags.get("capacity").cloned().or_else(|| match toml_at(&file, &["raftstore", "capacity"]) {
        Some(toml::Value::Integer(n)) => Some(n.to_string()),
        Some(toml::Value::String(s)) => Some(s.clone()),
        _ => None,
    });
    if let Some(c) = capacity {
        cfg.capacity = parse_size(&c)
            .ok_or_else(|| fatal(&format!("invalid configuration: raftstore.capacity {c:?} is not a size")))?;
    }
    if let Some(t) = toml_at(&file, &["server", "labels"]).and_then(|v| v.as_table()) {
        cfg.labels = t.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect();
    }
    if let Some(s) = flags.get("labels") {
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| fatal(&format!("invalid configuration: label {pair:?} is not key=value")))?;
            cfg.labels.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    if cfg.pd_endpoints.is_empty() {
        return Err(fatal("invalid configuration: please specify pd.endpoints."));
    }
    (cfg.transport, cfg.certificates) = security::tikv(ctx, &file).map_err(|e| fatal(&e))?;
    if cfg.advertise_addr.is_empty() {
        if cfg.addr.starts_with("0.0.0.0") {
            return Err(fatal(&format!("invalid configuration: invalid advertise-addr: {:?}", cfg.addr)));
        }
        cfg.advertise_addr = cfg.addr.clone();
    }
    if cfg.advertise_status_addr.is_empty() {
        cfg.advertise_status_addr = cfg.status_addr.clone();
    }
    let mut applied = serde_json::to_value(&file).unwrap_or(Value::Null);
    if !applied.is_object() {
        applied = json!({});
    }
    applied["pd"]["endpoints"] = json!(cfg.pd_endpoints);
    applied["server"]["addr"] = json!(cfg.addr);
    applied["server"]["advertise-addr"] = json!(cfg.advertise_addr);
    applied["server"]["status-addr"] = json!(cfg.status_addr);
    applied["server"]["advertise-status-addr"] = json!(cfg.advertise_status_addr);
    applied["server"]["labels"] = json!(cfg.labels);
    applied["storage"]["data-dir"] = json!(cfg.data_dir);
    cfg.applied = applied;
    Ok(cfg)
}

/// The version the store reports: the image tag's, or, when the tag is not a version
/// PD can read (a custom build's tag), none, so that pd-sim takes the cluster version.
fn store_version(image: &str) -> String {
    let version = image_version(image);
    if pd_sim::model::version::Version::parse_pd(&version).is_ok() { version } else { String::new() }
}

#[derive(Default)]
struct State {
    store: Option<(Arc<PdCluster>, u64)>,
    stopped: bool,
    /// The certificates it serves and dials with (TiKV reloads CA, certificate and key
    /// once the certificate file changed).
    tls: Option<security::Certificates>,
}

pub(crate) struct TikvProcess {
    procs: Arc<Processes>,
    ctx: ContainerContext,
    state: Mutex<State>,
    main: Mutex<Option<JoinHandle<()>>>,
}

pub(crate) fn start(procs: Arc<Processes>, ctx: ContainerContext) -> Arc<TikvProcess> {
    let process = Arc::new(TikvProcess { procs, ctx, state: Mutex::default(), main: Mutex::default() });
    let runner = process.clone();
    let handle = tokio::spawn(async move {
        if let Err(message) = runner.run().await {
            runner.fail(message).await;
        }
    });
    *process.main.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    process
}

impl TikvProcess {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn fail(&self, message: String) {
        tracing::info!(pod = %pod_key(&self.ctx), %message, "tikv-server exits");
        until_running(&self.procs, &self.ctx).await;
        let store = {
            let mut st = self.state();
            st.stopped = true;
            st.store.take()
        };
        self.procs.net.remove_pod(&pod_key(&self.ctx));
        self.procs.clusters.silence(&pod_key(&self.ctx));
        if let Some((cluster, id)) = store {
            let _ = cluster.control().stop_store(id).await;
        }
        self.ctx.exit.exited(1, message);
    }

    fn abort_main(&self) {
        if let Some(h) = self.main.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }

    fn take_store(&self) -> Option<(Arc<PdCluster>, u64)> {
        let mut st = self.state();
        st.stopped = true;
        self.procs.clusters.silence(&pod_key(&self.ctx));
        st.store.take()
    }

    /// Reaches PD through the endpoints, as TiKV's PD client does (retried).
    async fn connect(&self, cfg: &TikvConfig) -> Result<Arc<PdCluster>, String> {
        let procs = &self.procs;
        let clock = procs.clock().clone();
        let deadline = clock.now() + procs.settings.tikv_pd_timeout;
        loop {
            let mut last = String::new();
            for endpoint in &cfg.pd_endpoints {
                let url = if endpoint.contains("://") { endpoint.clone() } else { format!("http://{endpoint}") };
                let Some((host, port)) = host_port(&url) else {
                    last = format!("invalid PD endpoint {endpoint:?}");
                    continue;
                };
                match procs.net.dial(Some(&self.ctx.namespace), &host, port) {
                    Ok((_, Route { target: Target::PdClient { cluster, .. }, pod, .. })) => {
                        // The endpoint's scheme is stripped: TiKV dials with its own setting.
                        let served = procs.clusters.transport(&pod).unwrap_or(Transport::Plain);
                        if let Some(error) = handshake(cfg.transport, served) {
                            last = format!("{endpoint}: {error}");
                            continue;
                        }
                        if let Some(c) = procs.clusters.get(cluster) {
                            if c.snapshot().leader.is_some() {
                                return Ok(c);
                            }
                            last = format!("{endpoint}: no leader");
                        }
                    }
                    Ok(_) => last = format!("{endpoint}: not a PD endpoint"),
                    Err(e) => last = format!("{endpoint}: {e}"),
                }
            }
            if clock.now() >= deadline {
                return Err(fatal(&format!(
                    "failed to create rpc client: Other(\"PD cluster failed to respond\"): failed to connect to PD {:?} ({last})",
                    cfg.pd_endpoints
                )));
            }
            clock.sleep(procs.settings.retry_interval).await;
        }
    }

    async fn run(self: &Arc<Self>) -> Result<(), String> {
        let cfg = parse(&self.ctx)?;
        let cluster = self.connect(&cfg).await?;
        let procs = &self.procs;
        let (data_key, claim) = data_identity(&self.ctx, &cfg.data_dir);
        let store_id = match procs.clusters.data(&data_key) {
            Some(DataDir::Store { cluster: c, id }) if c == cluster.index => Some(id),
            Some(DataDir::Store { cluster: c, .. }) => {
                let local = procs.clusters.get(c).map(|x| x.snapshot().cluster_id).unwrap_or_default();
                return Err(fatal(&format!(
                    "failed to start node: cluster ID mismatch, local {local} != remote {}, you are trying to connect to another cluster, please reconnect to the correct PD",
                    cluster.snapshot().cluster_id
                )));
            }
            Some(DataDir::PdMember { .. }) => {
                return Err(fatal(&format!("failed to start node: {} holds PD data", cfg.data_dir)));
            }
            None => None,
        };
        let spec = StoreSpec {
            address: cfg.advertise_addr.clone(),
            status_address: cfg.advertise_status_addr.clone(),
            labels: cfg.labels.iter().map(|(k, v)| Label { key: k.clone(), value: v.clone() }).collect(),
            version: store_version(self.ctx.container.image.as_deref().unwrap_or_default()),
            capacity: cfg.capacity,
            store_id,
            config: Some(cfg.applied.clone()),
            config_file: Some(cfg.config_file()),
            ..StoreSpec::default()
        };
        let started = cluster
            .control()
            .start_store(spec)
            .await
            .map_err(|e| fatal(&format!("failed to start node: Other({:?})", control_error(&e))))?;
        // TiKV keeps its store ID in its data directory as soon as PD gave it one: a
        // start that fails after this comes back as the same store.
        procs.clusters.set_data(&data_key, claim.as_deref(), DataDir::Store { cluster: cluster.index, id: started.id });
        let serving = cfg.certificates.as_ref().map(security::Certificates::serving);
        if let Err(e) = cluster.control().set_store_tls(started.id, serving.as_ref()).await {
            let _ = cluster.control().stop_store(started.id).await;
            return Err(fatal(&format!("failed to start status server: {}", control_error(&e))));
        }
        procs.clusters.set_pod(&pod_key(&self.ctx), Instance::Tikv { cluster: cluster.index, store: started.id });
        self.state().tls = cfg.certificates.clone();
        let others = procs.clusters.speak(cluster.index, &pod_key(&self.ctx), cfg.transport);
        if !others.is_empty() {
            // Raft messages to and from these peers fail their handshakes.
            tracing::warn!(pod = %pod_key(&self.ctx), transport = cfg.transport.name(), ?others, "tikv-server cannot reach peers speaking the other transport");
        }
        let real = host_port(&started.status_url).and_then(|(h, p)| format!("{h}:{p}").parse::<SocketAddr>().ok());
        if let Some((_, port)) = host_port(&format!("http://{}", cfg.status_addr)) {
            let ip = std::net::IpAddr::V4(self.ctx.pod_ip);
            let target = Target::TikvStatus { cluster: cluster.index, store: started.id };
            procs.net.add_route(SocketAddr::new(ip, port), Route { target, real, pod: pod_key(&self.ctx) });
        }
        let stopped = {
            let mut st = self.state();
            if !st.stopped {
                st.store = Some((cluster.clone(), started.id));
            }
            st.stopped
        };
        if stopped {
            procs.net.remove_pod(&pod_key(&self.ctx));
            procs.clusters.silence(&pod_key(&self.ctx));
            let _ = cluster.control().stop_store(started.id).await;
        }
        Ok(())
    }
}

impl ContainerProcess for TikvProcess {
    /// The kubelet updated the mounted files: the status server's new handshakes use
    /// the new CA, certificate and key. Nothing else is re-read.
    fn config_changed(&self, mounts: Vec<kube_sim::cluster::runtime::Mount>) -> BoxFuture<()> {
        let (store, tls) = {
            let st = self.state();
            (st.store.clone(), st.tls.clone())
        };
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let (Some((cluster, id)), Some(started)) = (store, tls) else { return };
            match started.reload(&ctx, &mounts) {
                Ok(files) => {
                    if let Err(error) = cluster.control().set_store_tls(id, Some(&files.serving())).await {
                        tracing::debug!(%error, store = id, "TLS reload refused");
                    }
                }
                Err(error) => tracing::debug!(%error, store = id, "TLS files unreadable; the old ones stay"),
            }
        })
    }

    fn pre_stop(&self, handler: &Value) -> BoxFuture<Result<(), String>> {
        let command: Vec<String> = handler["exec"]["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let (programs, ctx) = (self.procs.programs.clone(), self.ctx.clone());
        Box::pin(async move {
            if command.is_empty() {
                // An httpGet hook: nothing in tikv-server answers one specially.
                return Ok(());
            }
            match programs.exec(&ctx, &command, true).await? {
                0 => Ok(()),
                code => Err(format!("command '{}' exited with {code}", command.join(" "))),
            }
        })
    }

    fn ready(&self) -> bool {
        let st = self.state();
        let Some((cluster, id)) = &st.store else { return false };
        cluster.snapshot().store(*id).is_some_and(|s| s.running && s.state_name == "Up")
    }

    fn stop(&self, _request: StopRequest) -> BoxFuture<ContainerExit> {
        self.abort_main();
        let store = self.take_store();
        let net = self.procs.net.clone();
        let pod = pod_key(&self.ctx);
        Box::pin(async move {
            net.remove_pod(&pod);
            if let Some((cluster, id)) = store {
                let _ = cluster.control().stop_store(id).await;
            }
            ContainerExit::new(0, "")
        })
    }

    fn kill(&self) {
        self.abort_main();
        let store = self.take_store();
        self.procs.net.remove_pod(&pod_key(&self.ctx));
        if let Some((cluster, id)) = store {
            tokio::spawn(async move {
                let _ = cluster.control().stop_store(id).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_that_is_no_version_reports_none() {
        assert_eq!(store_version("pingcap/tikv:v8.4.0"), "8.4.0");
        assert_eq!(store_version("pingcap/tikv:v9.0.0-beta.1"), "9.0.0-beta.1");
        assert_eq!(store_version("pingcap/tikv:my-build"), "");
        assert_eq!(store_version("pingcap/tikv"), "");
    }

    #[test]
    fn the_config_file_is_read_only_when_given_and_last_tikv_toml_otherwise() {
        let cfg = TikvConfig { config_path: Some("/etc/tikv/config.toml".into()), ..TikvConfig::default() };
        assert_eq!(cfg.config_file(), ConfigFile::ReadOnly { path: "/etc/tikv/config.toml".into() });
        let cfg = TikvConfig { data_dir: "/var/lib/tikv/".into(), ..TikvConfig::default() };
        assert_eq!(cfg.config_file(), ConfigFile::LastConfig { path: "/var/lib/tikv/last_tikv.toml".into() });
    }

    #[test]
    fn value_types_are_checked_for_known_keys() {
        let t: toml::Table = "[server]\naddr = 20160\n".parse().unwrap();
        let v = toml_at(&t, &["server", "addr"]).unwrap();
        assert!(!type_ok(v, "a string"));
        assert_eq!(serde_unexpected(v), "integer `20160`");
        let t: toml::Table = "[server.labels]\nzone = \"a\"\n".parse().unwrap();
        assert!(type_ok(toml_at(&t, &["server", "labels"]).unwrap(), "a map"));
    }
}
