//! A simulated `pd-server`.
//!
//! Command line (Go `flag` style, flags override the `--config` file): `--name
//! --data-dir --client-urls --advertise-client-urls --peer-urls --advertise-peer-urls
//! --initial-cluster --join --config` (plus the logging/TLS/metrics flags, accepted and
//! ignored). TOML keys: `name`, `data-dir`, `client-urls`, `advertise-client-urls`,
//! `peer-urls`, `advertise-peer-urls`, `initial-cluster`, `initial-cluster-state`,
//! `join`, and `[replication] max-replicas`, `location-labels` (used when the member
//! forms a new cluster).
//!
//! Start-up, as PD with its embedded etcd does it: with data in the data dir, the
//! member restarts; with `--join`, it asks a reachable member to add it; otherwise
//! it bootstraps from `--initial-cluster`, which first requires its own advertised
//! peer URL to resolve (etcd retries for 30 s, then exits). A member then waits for
//! etcd to have a quorum (5 min, then exits), and exits if it is removed from the
//! cluster.
//!
//! Config: like the real binary, the process reads its config file once, at start, and
//! never again; a changed ConfigMap reaches it only through a restart (and even then
//! `[replication]` counts only when the member forms a new cluster: PD keeps its
//! cluster-wide settings in etcd). Online changes go through PD's `POST
//! /pd/api/v1/config`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use kube_sim::cluster::runtime::BoxFuture;
use kube_sim::cluster::{ContainerContext, ContainerExit, ContainerProcess, StopRequest};
use tokio::task::JoinHandle;

use super::security::{self, Transport};
use super::{Processes, data_identity, go_type, pod_key, toml_at, until_running};
use crate::clusters::{DataDir, Instance, PdCluster, Replication, control_error};
use crate::cmdline::{FlagSpec, FlagStyle, flag, invocation, parse_flags};
use crate::network::{Route, Target, host_port};

pub const PD_FLAGS: &[FlagSpec] = &[
    flag("name", &[], true),
    flag("data-dir", &[], true),
    flag("client-urls", &[], true),
    flag("advertise-client-urls", &[], true),
    flag("peer-urls", &[], true),
    flag("advertise-peer-urls", &[], true),
    flag("initial-cluster", &[], true),
    flag("join", &[], true),
    flag("config", &[], true),
    flag("config-check", &[], false),
    flag("metrics-addr", &[], true),
    flag("L", &[], true),
    flag("log-file", &[], true),
    flag("cacert", &[], true),
    flag("cert", &[], true),
    flag("key", &[], true),
    flag("force-new-cluster", &[], false),
    flag("V", &["version"], false),
];

const STRING_KEYS: &[&str] = &[
    "name",
    "data-dir",
    "client-urls",
    "advertise-client-urls",
    "peer-urls",
    "advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "join",
];

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct PdConfig {
    pub name: String,
    pub data_dir: String,
    pub client_urls: Vec<String>,
    pub advertise_client_urls: Vec<String>,
    pub peer_urls: Vec<String>,
    pub advertise_peer_urls: Vec<String>,
    pub initial_cluster: String,
    pub join: String,
    pub max_replicas: Option<usize>,
    pub location_labels: Option<Vec<String>>,
    /// What the client and peer listeners serve (their URLs' schemes, given `[security]`).
    pub client_transport: Transport,
    /// The peer listeners: what each serves, on which port (etcd takes several peer
    /// URLs, each with its own scheme; plain ones ignore the certificates).
    pub peer_listeners: Vec<(Transport, u16)>,
    /// The certificates the flags or `[security]` name: `https` listeners serve them,
    /// peers with `https` URLs can be dialed.
    pub certificates: Option<security::Certificates>,
}

fn fatal(what: &str, error: &str) -> String {
    format!("[FATAL] [main.go] [\"{what}\"] [error=\"{}\"]", error.replace('"', "\\\""))
}

fn urls(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect()
}

/// The command line and config file, as `pd-server` reads them (`Err`: the fatal log
/// line).
pub(crate) fn parse(ctx: &ContainerContext) -> Result<PdConfig, String> {
    let inv =
        invocation(&ctx.command, &ctx.args, "/pd-server", &ctx.env).map_err(|e| fatal("parse cmd flags error", &e))?;
    if inv.binary() != "pd-server" {
        return Err(format!("exec: \"{}\": executable file not found in $PATH", inv.program));
    }
    let flags = parse_flags(&inv.args, PD_FLAGS, FlagStyle::Go).map_err(|e| fatal("parse cmd flags error", &e))?;
    let mut file = toml::Table::new();
    if let Some(path) = flags.get("config") {
        let text = ctx
            .read_file(path)
            .ok_or_else(|| fatal("parse cmd flags error", &format!("open {path}: no such file or directory")))?;
        file = text
            .parse::<toml::Table>()
            .map_err(|e| fatal("parse cmd flags error", &format!("toml: {}", e.message().replace('\n', " "))))?;
        for key in STRING_KEYS {
            if let Some(v) = file.get(*key).filter(|v| !v.is_str()) {
                return Err(fatal(
                    "parse cmd flags error",
                    &format!(
                        "toml: incompatible types: TOML value has type {}; destination has type string (key {key:?})",
                        go_type(v)
                    ),
                ));
            }
        }
    }
    let mut cfg = PdConfig::default();
    let pick = |key: &str| -> Option<String> {
        flags.get(key).cloned().or_else(|| file.get(key).and_then(|v| v.as_str()).map(str::to_owned))
    };
    cfg.name = pick("name").unwrap_or_else(|| "pd".into());
    cfg.data_dir = pick("data-dir").unwrap_or_else(|| format!("default.{}", cfg.name));
    cfg.client_urls = urls(&pick("client-urls").unwrap_or_else(|| "http://127.0.0.1:2379".into()));
    cfg.peer_urls = urls(&pick("peer-urls").unwrap_or_else(|| "http://127.0.0.1:2380".into()));
    cfg.advertise_client_urls =
        pick("advertise-client-urls").map(|s| urls(&s)).unwrap_or_else(|| cfg.client_urls.clone());
    cfg.advertise_peer_urls = pick("advertise-peer-urls").map(|s| urls(&s)).unwrap_or_else(|| cfg.peer_urls.clone());
    cfg.initial_cluster =
        pick("initial-cluster").unwrap_or_else(|| format!("{}={}", cfg.name, cfg.advertise_peer_urls.join(",")));
    cfg.join = pick("join").unwrap_or_default();
    match toml_at(&file, &["replication", "max-replicas"]) {
        Some(toml::Value::Integer(n)) if *n > 0 => cfg.max_replicas = usize::try_from(*n).ok(),
        Some(v) => {
            return Err(fatal(
                "parse cmd flags error",
                &format!(
                    "toml: incompatible types: TOML value has type {}; destination has type uint64 (key \"replication.max-replicas\")",
                    go_type(v)
                ),
            ));
        }
        None => {}
    }
    let certs =
        security::pd_certificates(ctx, &file, |f| flags.get(f).cloned()).map_err(|e| fatal("run server failed", &e))?;
    let listen = |urls: &[String], what: &str| -> Result<Transport, String> {
        let mut transport = Transport::Plain;
        for url in urls {
            transport = security::pd_listener(url, certs.as_ref(), what).map_err(|e| fatal("run server failed", &e))?;
        }
        Ok(transport)
    };
    cfg.client_transport = listen(&cfg.client_urls, "client")?;
    for url in &cfg.peer_urls {
        let transport =
            security::pd_listener(url, certs.as_ref(), "peer").map_err(|e| fatal("run server failed", &e))?;
        let port =
            host_port(url).map(|(_, p)| p).ok_or_else(|| fatal("run server failed", &format!("parse {url:?}")))?;
        cfg.peer_listeners.push((transport, port));
    }
    cfg.certificates = certs;
    match toml_at(&file, &["replication", "location-labels"]) {
        Some(toml::Value::Array(items)) => {
            cfg.location_labels = Some(items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect());
        }
        Some(toml::Value::String(s)) => cfg.location_labels = Some(urls(s)),
        Some(v) => {
            return Err(fatal(
                "parse cmd flags error",
                &format!(
                    "toml: incompatible types: TOML value has type {}; destination has type []string (key \"replication.location-labels\")",
                    go_type(v)
                ),
            ));
        }
        None => {}
    }
    Ok(cfg)
}

/// `a=http://x:2380,b=http://y:2380` → members with their peer URLs, in order.
pub(crate) fn parse_initial_cluster(s: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, url) = part.split_once('=').ok_or_else(|| format!("{part:?} is not in name=url form"))?;
        url::Url::parse(url).map_err(|e| format!("parse {url:?}: {e}"))?;
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, list)) => list.push(url.to_owned()),
            None => out.push((name.to_owned(), vec![url.to_owned()])),
        }
    }
    Ok(out)
}

#[derive(Default)]
struct State {
    member: Option<(Arc<PdCluster>, String)>,
    stopped: bool,
    /// The certificates the client listener serves, as read at start (`None`: it serves
    /// plain HTTP): etcd's TLS helper reads the certificate and key files again on every
    /// handshake but the client CA pool only once.
    serving: Option<security::Certificates>,
}

pub(crate) struct PdProcess {
    procs: Arc<Processes>,
    ctx: ContainerContext,
    state: Mutex<State>,
    main: Mutex<Option<JoinHandle<()>>>,
}

pub(crate) fn start(procs: Arc<Processes>, ctx: ContainerContext) -> Arc<PdProcess> {
    let process = Arc::new(PdProcess { procs, ctx, state: Mutex::default(), main: Mutex::default() });
    let runner = process.clone();
    let handle = tokio::spawn(async move {
        if let Err(message) = runner.run().await {
            runner.fail(message).await;
        }
    });
    *process.main.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    process
}

impl PdProcess {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn fail(&self, message: String) {
        tracing::info!(pod = %pod_key(&self.ctx), %message, "pd-server exits");
        until_running(&self.procs, &self.ctx).await;
        self.cleanup().await;
        self.ctx.exit.exited(1, message);
    }

    async fn cleanup(&self) {
        let member = {
            let mut st = self.state();
            st.stopped = true;
            st.member.take()
        };
        self.procs.net.remove_pod(&pod_key(&self.ctx));
        self.procs.clusters.silence(&pod_key(&self.ctx));
        if let Some((cluster, name)) = member {
            let _ = cluster.stop_member(&name).await;
        }
    }

    fn abort_main(&self) {
        if let Some(h) = self.main.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }

    async fn run(self: &Arc<Self>) -> Result<(), String> {
        let cfg = parse(&self.ctx)?;
        let procs = &self.procs;
        let clock = procs.clock().clone();
        let (data_key, claim) = data_identity(&self.ctx, &cfg.data_dir);
        let existing = procs.clusters.data(&data_key);
        if !matches!(existing, Some(DataDir::PdMember { .. })) && cfg.join.is_empty() {
            let members = parse_initial_cluster(&cfg.initial_cluster).map_err(|e| fatal("run server failed", &e))?;
            if !members.iter().any(|(n, _)| *n == cfg.name) {
                return Err(fatal(
                    "run server failed",
                    &format!("couldn't find local name {:?} in the initial cluster configuration", cfg.name),
                ));
            }
        }
        self.resolve_self(&cfg).await?;
        let cluster = match existing {
            Some(DataDir::PdMember { cluster, name }) => {
                let cluster = procs
                    .clusters
                    .get(cluster)
                    .ok_or_else(|| fatal("run server failed", "data directory of a vanished cluster"))?;
                self.reach_peers(&cluster, &name, &cfg).await?;
                let _guard = procs.clusters.formation().await;
                cluster.start_member(&name).await.map_err(|e| fatal("run server failed", &control_error(&e)))?;
                cluster
            }
            _ if !cfg.join.is_empty() => self.join(&cfg).await?,
            _ => self.bootstrap(&cfg).await?,
        };
        let dir = DataDir::PdMember { cluster: cluster.index, name: cfg.name.clone() };
        procs.clusters.set_data(&data_key, claim.as_deref(), dir);
        procs.clusters.set_pod(&pod_key(&self.ctx), Instance::Pd { cluster: cluster.index, member: cfg.name.clone() });
        procs.clusters.speak(cluster.index, &pod_key(&self.ctx), cfg.client_transport);
        let serving = match (cfg.client_transport, &cfg.certificates) {
            (Transport::Tls, Some(certs)) => Some(certs.serving()),
            _ => None,
        };
        if let Err(e) = cluster.control().set_member_tls(&cfg.name, serving.as_ref()).await {
            return Err(fatal("run server failed", &format!("loading the certificates: {}", control_error(&e))));
        }
        self.publish(&cluster, &cfg).await;
        if cfg.client_transport == Transport::Tls {
            self.state().serving = cfg.certificates.clone();
        }
        let stopped = {
            let mut st = self.state();
            if !st.stopped {
                st.member = Some((cluster.clone(), cfg.name.clone()));
            }
            st.stopped
        };
        if stopped {
            let _ = cluster.stop_member(&cfg.name).await;
            return Ok(());
        }
        let deadline = clock.now() + procs.settings.pd_start_timeout;
        while cluster.snapshot().leader.is_none() {
            if clock.now() >= deadline {
                return Err(fatal("run server failed", "[PD:server:ErrCancelStartEtcd]etcd start canceled"));
            }
            clock.sleep(procs.settings.retry_interval).await;
        }
        // Cut off: PD now stores a peer URL for this member that it does not listen at
        // (etcd's MemberUpdate); its peers cannot reach it until it is changed back or
        // the member restarts listening there.
        let mut cut_off = false;
        loop {
            clock.sleep(procs.settings.retry_interval * 2).await;
            let snap = cluster.snapshot();
            if snap.members.iter().any(|m| m.name == cfg.name && !m.in_etcd) {
                return Err(fatal("server stopped", "the member has been permanently removed from the cluster"));
            }
            let others = snap.members.iter().filter(|m| m.in_etcd && m.name != cfg.name).count();
            let reachable = others == 0
                || snap.members.iter().find(|m| m.name == cfg.name).is_none_or(|m| listens_at(&cfg, &m.peer_urls));
            if reachable == cut_off {
                cut_off = !cut_off;
                tracing::info!(pod = %pod_key(&self.ctx), cut_off, "pd-server: peers reach it at its stored peer URL: {reachable}");
                let _guard = procs.clusters.formation().await;
                let _ =
                    if cut_off { cluster.stop_member(&cfg.name).await } else { cluster.start_member(&cfg.name).await };
            }
        }
    }

    /// A member restarting with its data: its peers dial it at the peer URLs PD's
    /// membership holds for it, and it dials them at theirs, each by the URL's scheme (a
    /// restart does not change them: PD takes the stored ones over its flags; only
    /// etcd's MemberUpdate does). A member with no listener of the stored scheme and
    /// port, or unable to dial a peer stored as `https` (no certificates), reaches no
    /// quorum; etcd gives up after the start timeout. A lone member needs no peer.
    async fn reach_peers(&self, cluster: &PdCluster, name: &str, cfg: &PdConfig) -> Result<(), String> {
        let snap = cluster.snapshot();
        let members: Vec<_> = snap.members.iter().filter(|m| m.in_etcd).collect();
        if members.len() <= 1 {
            return Ok(());
        }
        let mut problems = Vec::new();
        for m in &members {
            if m.name == name && !listens_at(cfg, &m.peer_urls) {
                problems
                    .push(format!("peers dial this member at {:?} but it listens at {:?}", m.peer_urls, cfg.peer_urls));
            }
            if m.name != name && stored_transport(m) == Transport::Tls && cfg.certificates.is_none() {
                problems.push(format!("peer {} is at {:?} and this member has no certificates", m.name, m.peer_urls));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        tracing::info!(pod = %pod_key(&self.ctx), ?problems, "pd-server cannot reach its peers");
        let clock = self.procs.clock().clone();
        clock.sleep(self.procs.settings.pd_start_timeout).await;
        Err(fatal(
            "run server failed",
            &format!("[PD:server:ErrCancelStartEtcd]etcd start canceled: {}", problems.join("; ")),
        ))
    }

    /// Whether the other members can dial member `m` at the peer URL PD stores for it:
    /// its name resolves to a peer listener of that member with the URL's scheme.
    fn dialable(&self, m: &pd_sim::model::member::Member) -> bool {
        let Some((host, port)) = m.peer_urls.first().and_then(|u| host_port(u)) else { return false };
        let tls = stored_transport(m) == Transport::Tls;
        let endpoints = self.procs.net.resolve(Some(&self.ctx.namespace), &host, port).unwrap_or_default();
        endpoints.iter().any(|e| {
            matches!(&e.route, Some(Route { target: Target::PdPeer { member, tls: served, .. }, .. })
                if *member == m.name && *served == tls)
        })
    }

    /// etcd's check that its advertised peer URLs resolve (retried until the timeout).
    async fn resolve_self(&self, cfg: &PdConfig) -> Result<(), String> {
        let clock = self.procs.clock().clone();
        let deadline = clock.now() + self.procs.settings.pd_resolve_timeout;
        loop {
            let mut last = None;
            for url in &cfg.advertise_peer_urls {
                let Some((host, port)) = host_port(url) else {
                    return Err(fatal("run server failed", &format!("parse {url:?}: invalid URL")));
                };
                if let Err(e) = self.procs.net.resolve(Some(&self.ctx.namespace), &host, port) {
                    last = Some((url.clone(), e));
                }
            }
            let Some((url, error)) = last else { return Ok(()) };
            if clock.now() >= deadline {
                return Err(fatal(
                    "run server failed",
                    &format!(
                        "failed to resolve {} to match --initial-cluster={}={} (failed to resolve {url:?} ({error}))",
                        cfg.advertise_peer_urls.join(","),
                        cfg.name,
                        cfg.advertise_peer_urls.join(",")
                    ),
                ));
            }
            clock.sleep(self.procs.settings.retry_interval).await;
        }
    }

    /// `--initial-cluster`: the first member forms the cluster, the others start their
    /// reserved membership.
    async fn bootstrap(&self, cfg: &PdConfig) -> Result<Arc<PdCluster>, String> {
        let procs = &self.procs;
        let ns = self.ctx.namespace.clone();
        let members = parse_initial_cluster(&cfg.initial_cluster).map_err(|e| fatal("run server failed", &e))?;
        let mut sorted: Vec<String> = members.iter().map(|(n, u)| format!("{n}={}", u.join("+"))).collect();
        sorted.sort();
        let key = format!("{ns}/{}", sorted.join(","));
        let _guard = procs.clusters.formation().await;
        let found = procs.clusters.by_key(&key).or_else(|| self.find_by_peers(&members, &cfg.name));
        if let Some(index) = found {
            let cluster = procs.clusters.get(index).ok_or_else(|| fatal("run server failed", "cluster vanished"))?;
            if procs.clusters.take_pending(index, &cfg.name) {
                cluster.start_member(&cfg.name).await.map_err(|e| fatal("run server failed", &control_error(&e)))?;
                return Ok(cluster);
            }
            let snap = cluster.snapshot();
            return Err(match snap.members.iter().find(|m| m.name == cfg.name && m.in_etcd) {
                Some(m) => {
                    fatal("run server failed", &format!("member {:x} has already been bootstrapped", m.member_id))
                }
                None => fatal(
                    "run server failed",
                    &format!("error validating peerURLs {}: member count is unequal", cfg.initial_cluster),
                ),
            });
        }
        let client_port = cfg.advertise_client_urls.first().and_then(|u| host_port(u)).map(|(_, p)| p).unwrap_or(2379);
        let specs: Vec<(String, Vec<String>, Vec<String>)> = members
            .iter()
            .map(|(name, peer_urls)| {
                let client_urls = if *name == cfg.name {
                    cfg.advertise_client_urls.clone()
                } else {
                    peer_urls.iter().filter_map(|u| guess_client_url(u, client_port)).collect()
                };
                (name.clone(), peer_urls.clone(), client_urls)
            })
            .collect();
        let replication = Replication { max_replicas: cfg.max_replicas, location_labels: cfg.location_labels.clone() };
        procs
            .clusters
            .form(&ns, &key, &specs, &cfg.name, &replication)
            .await
            .map_err(|e| fatal("run server failed", &e))
    }

    /// The cluster a running peer of the initial cluster belongs to.
    fn find_by_peers(&self, members: &[(String, Vec<String>)], me: &str) -> Option<usize> {
        members.iter().filter(|(n, _)| n != me).flat_map(|(_, urls)| urls).find_map(|url| {
            let (host, port) = host_port(url)?;
            let endpoints = self.procs.net.resolve(Some(&self.ctx.namespace), &host, port).ok()?;
            endpoints.iter().find_map(|e| match e.route.as_ref().map(|r| &r.target) {
                Some(Target::PdPeer { cluster, .. } | Target::PdClient { cluster, .. }) => Some(*cluster),
                _ => None,
            })
        })
    }

    /// `--join`: a reachable member adds this one (etcd MemberAdd).
    async fn join(&self, cfg: &PdConfig) -> Result<Arc<PdCluster>, String> {
        let procs = &self.procs;
        let clock = procs.clock().clone();
        let deadline = clock.now() + procs.settings.pd_join_timeout;
        let index = loop {
            let mut last = String::from("no join URL");
            let found = urls(&cfg.join).iter().find_map(|url| {
                let Some((host, port)) = host_port(url) else {
                    last = format!("parse {url:?}: invalid URL");
                    return None;
                };
                match procs.net.dial(Some(&self.ctx.namespace), &host, port) {
                    Ok((_, Route { target: Target::PdClient { cluster, .. }, .. })) => Some(cluster),
                    Ok(_) => {
                        last = format!("{url} is not a PD client URL");
                        None
                    }
                    Err(e) => {
                        last = e.to_string();
                        None
                    }
                }
            });
            if let Some(index) = found {
                break index;
            }
            if clock.now() >= deadline {
                return Err(fatal("join meet error", &format!("context deadline exceeded ({last})")));
            }
            clock.sleep(procs.settings.retry_interval).await;
        };
        let cluster = procs.clusters.get(index).ok_or_else(|| fatal("join meet error", "cluster vanished"))?;
        let _guard = procs.clusters.formation().await;
        let control = cluster.control();
        let snap = cluster.snapshot();
        match snap.members.iter().find(|m| m.name == cfg.name) {
            Some(m) if m.in_etcd => {
                return Err(fatal("join meet error", &format!("missing data or join a duplicated pd {}", cfg.name)));
            }
            Some(_) => {
                let _ = control.wipe_member(&cfg.name);
                cluster.start_member(&cfg.name).await.map_err(|e| fatal("join meet error", &control_error(&e)))?;
            }
            None => {
                let spec = pd_sim::MemberSpec {
                    name: Some(cfg.name.clone()),
                    client_urls: Some(cfg.advertise_client_urls.clone()),
                    peer_urls: Some(cfg.advertise_peer_urls.clone()),
                };
                control.add_member(spec).await.map_err(|e| fatal("join meet error", &control_error(&e)))?;
                // etcd added it; it now dials the members at their stored peer URLs. One
                // it cannot reach leaves the grown membership short of a quorum.
                let unreachable: Vec<String> = cluster
                    .snapshot()
                    .members
                    .iter()
                    .filter(|m| m.in_etcd && m.running && m.name != cfg.name && !self.dialable(m))
                    .map(|m| format!("{} at {:?}", m.name, m.peer_urls))
                    .collect();
                if !unreachable.is_empty() {
                    tracing::info!(pod = %pod_key(&self.ctx), ?unreachable, "pd-server cannot reach its peers");
                    let _ = cluster.stop_member(&cfg.name).await;
                    drop(_guard);
                    clock.sleep(procs.settings.pd_start_timeout).await;
                    return Err(fatal(
                        "run server failed",
                        &format!(
                            "[PD:server:ErrCancelStartEtcd]etcd start canceled: cannot reach {}",
                            unreachable.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(cluster)
    }

    /// The member listens on the pod's client and peer ports.
    async fn publish(&self, cluster: &PdCluster, cfg: &PdConfig) {
        let pod = pod_key(&self.ctx);
        let ip = std::net::IpAddr::V4(self.ctx.pod_ip);
        let real = cluster.control().member_url(&cfg.name).await.and_then(|u| {
            let (host, port) = host_port(&u)?;
            format!("{host}:{port}").parse::<SocketAddr>().ok()
        });
        for url in &cfg.client_urls {
            if let Some((_, port)) = host_port(url) {
                let target = Target::PdClient { cluster: cluster.index, member: cfg.name.clone() };
                self.procs.net.add_route(SocketAddr::new(ip, port), Route { target, real, pod: pod.clone() });
            }
        }
        for url in &cfg.peer_urls {
            if let Some((_, port)) = host_port(url) {
                let tls = url.starts_with("https://");
                let target = Target::PdPeer { cluster: cluster.index, member: cfg.name.clone(), tls };
                self.procs.net.add_route(SocketAddr::new(ip, port), Route { target, real: None, pod: pod.clone() });
            }
        }
    }
}

/// The scheme PD stores for member `m`'s peers to dial it with.
fn stored_transport(m: &pd_sim::model::member::Member) -> Transport {
    m.peer_urls.first().map(|u| Transport::of_scheme(u)).unwrap_or_default()
}

/// Whether a process with `cfg` serves the first of `stored` (scheme and port).
fn listens_at(cfg: &PdConfig, stored: &[String]) -> bool {
    let Some(url) = stored.first() else { return true };
    let Some((_, port)) = host_port(url) else { return false };
    cfg.peer_listeners.contains(&(Transport::of_scheme(url), port))
}

fn guess_client_url(peer_url: &str, client_port: u16) -> Option<String> {
    let mut url = url::Url::parse(peer_url).ok()?;
    url.set_port(Some(client_port)).ok()?;
    Some(url.as_str().trim_end_matches('/').to_owned())
}

impl ContainerProcess for PdProcess {
    /// The kubelet updated the mounted files: new handshakes use the new certificate
    /// and key (the CA stays the one read at start). Nothing else is re-read.
    fn config_changed(&self, mounts: Vec<kube_sim::cluster::runtime::Mount>) -> BoxFuture<()> {
        let (member, serving) = {
            let st = self.state();
            (st.member.clone(), st.serving.clone())
        };
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let (Some((cluster, name)), Some(started)) = (member, serving) else { return };
            match started.reload(&ctx, &mounts) {
                Ok(files) => {
                    let tls = security::Certificates { ca: started.ca.clone(), ..files }.serving();
                    if let Err(error) = cluster.control().set_member_tls(&name, Some(&tls)).await {
                        tracing::debug!(%error, member = %name, "TLS reload refused");
                    }
                }
                Err(error) => tracing::debug!(%error, member = %name, "TLS files unreadable; the old ones stay"),
            }
        })
    }

    fn ready(&self) -> bool {
        let st = self.state();
        let Some((cluster, name)) = &st.member else { return false };
        let snap = cluster.snapshot();
        snap.leader.is_some() && snap.members.iter().any(|m| m.name == *name && m.running && m.in_etcd)
    }

    fn stop(&self, _request: StopRequest) -> BoxFuture<ContainerExit> {
        self.abort_main();
        let member = {
            let mut st = self.state();
            st.stopped = true;
            st.member.take()
        };
        let net = self.procs.net.clone();
        let pod = pod_key(&self.ctx);
        self.procs.clusters.silence(&pod);
        Box::pin(async move {
            net.remove_pod(&pod);
            if let Some((cluster, name)) = member {
                let _ = cluster.stop_member(&name).await;
            }
            ContainerExit::new(0, "")
        })
    }

    fn kill(&self) {
        self.abort_main();
        let member = {
            let mut st = self.state();
            st.stopped = true;
            st.member.take()
        };
        self.procs.net.remove_pod(&pod_key(&self.ctx));
        self.procs.clusters.silence(&pod_key(&self.ctx));
        if let Some((cluster, name)) = member {
            tokio::spawn(async move {
                let _ = cluster.stop_member(&name).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_cluster_groups_urls_by_name() {
        let m = parse_initial_cluster("a=http://a:2380,b=http://b:2380,a=http://a2:2380").unwrap();
        assert_eq!(
            m,
            vec![
                ("a".into(), vec!["http://a:2380".into(), "http://a2:2380".into()]),
                ("b".into(), vec!["http://b:2380".into()])
            ]
        );
        assert!(parse_initial_cluster("nonsense").is_err());
    }

    #[test]
    fn client_urls_are_guessed_from_peer_urls() {
        assert_eq!(
            guess_client_url("http://pd-1.pd-peer.db.svc:2380", 2379).as_deref(),
            Some("http://pd-1.pd-peer.db.svc:2379")
        );
    }
}
