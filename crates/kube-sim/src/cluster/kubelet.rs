//! The kubelets (`kubelet/<node>`): one loop acting for every Ready node.
//!
//! A bound pod waits (ContainerCreating, `FailedMount` Events) until its claims are
//! Bound and the ConfigMaps/Secrets it mounts exist; then it gets a sandbox with a pod
//! IP from 127.1.0.0/16, and after [`Timings::container_start`] its containers start:
//! through the [`runtime`](super::runtime) registered for the image, or as a default
//! process that runs until stopped. Readiness follows the readiness probe's
//! `initialDelaySeconds` and `periodSeconds`, asking the process. A container that
//! exits is restarted per `restartPolicy`, the first time at once, then with
//! CrashLoopBackOff (10 s doubling to 5 min, reset after 10 min of running). A pod
//! with a deletionTimestamp gets its preStop hooks and SIGTERM within the grace period,
//! SIGKILL after it, a final status, and is deleted with grace 0. ConfigMap and Secret
//! changes reach running processes after [`Timings::config_sync`]. A pod is synced when
//! it, its node, or a claim, ConfigMap or Secret of its namespace changed, when one of
//! its processes started or exited, and at its own next deadline (a start, a probe, a
//! retry); every pod at start and after changes were missed.
//!
//! Init containers run first, one at a time, each to completion: through the runtime
//! registered for its image (the next starts once it exits 0), or, unclaimed, as a
//! command that succeeds at once. One that fails is restarted with the same back-off
//! (the pod stays Pending, `Init:CrashLoopBackOff`), or, under `restartPolicy: Never`,
//! fails the pod. A preStop `exec` or `httpGet` hook that fails is reported as a
//! `FailedPreStopHook` Warning Event, as the kubelet does (without the hook's output).
//!
//! Simplified: restartable init containers (sidecars) are run like the others;
//! liveness and startup probes are not run; a shortened grace period of a pod already
//! terminating is not applied; no image pulls fail; init containers still running when
//! the pod is deleted are killed at once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sim_clock::{SimClock, SimInstant};
use tokio::sync::{mpsc, watch};

use super::dns::Dns;
use super::events::{EventType, Recorder, Source};
use super::ipam::Pool;
use super::objects::{CONFIGMAPS, NODES, PODS, SECRETS, get, list, now_time, put_condition, str_of};
use super::runtime::{
    ContainerContext, ContainerExit, ContainerProcess, ExitReporter, MountSource, RuntimeRegistry, StopReason,
    StopRequest, container_mounts, resolve_env, resolve_volume,
};
use super::{Timings, Wake, earliest};
use crate::store::{Change, ChangeKind, DeleteOptions, Store};

const MAX_BACKOFF: Duration = Duration::from_secs(300);
const BACKOFF_RESET: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub(crate) enum Msg {
    Started { uid: String, container: String, generation: u64, result: Result<Arc<dyn ContainerProcess>, String> },
    Exited { uid: String, container: String, generation: u64, exit: ContainerExit },
    Terminated { uid: String, exits: Vec<(String, ContainerExit)> },
}

impl std::fmt::Debug for dyn ContainerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContainerProcess")
    }
}

#[derive(Clone, Debug)]
enum Phase {
    Waiting { reason: String, message: String },
    Starting,
    Running { started_at: String, since: SimInstant },
    Terminated(Value),
}

struct Container {
    name: String,
    image: String,
    spec: Value,
    phase: Phase,
    restart_count: u32,
    last: Option<Value>,
    process: Option<Arc<dyn ContainerProcess>>,
    generation: u64,
    ready: bool,
    next_start: Option<SimInstant>,
    next_probe: Option<SimInstant>,
    backoff: u32,
    ever_started: bool,
    /// An exit reported before the start was (a process that ends at once).
    early_exit: Option<ContainerExit>,
}

impl Container {
    fn id(&self, uid: &str) -> String {
        format!("containerd://{}", hex64(&format!("{uid}/{}/{}", self.name, self.restart_count)))
    }
}

struct PodState {
    ns: String,
    name: String,
    uid: String,
    node: String,
    ip: Option<Ipv4Addr>,
    sandbox_at: Option<SimInstant>,
    start_time: Option<String>,
    containers: Vec<Container>,
    inits: Vec<Container>,
    terminating: bool,
    exits: Option<Vec<(String, ContainerExit)>>,
    mount_warned: Option<(String, SimInstant)>,
    config_versions: BTreeMap<String, String>,
    reload_due: Option<SimInstant>,
    lost: bool,
}

/// Which container of a pod: an init container or an app container, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Init(usize),
    App(usize),
}

impl PodState {
    fn c(&self, slot: Slot) -> &Container {
        match slot {
            Slot::Init(i) => &self.inits[i],
            Slot::App(i) => &self.containers[i],
        }
    }

    fn c_mut(&mut self, slot: Slot) -> &mut Container {
        match slot {
            Slot::Init(i) => &mut self.inits[i],
            Slot::App(i) => &mut self.containers[i],
        }
    }

    /// The container of this start (name and generation).
    fn slot_of(&self, name: &str, generation: u64) -> Option<Slot> {
        let at = |cs: &[Container]| cs.iter().position(|c| c.name == name && c.generation == generation);
        at(&self.inits).map(Slot::Init).or_else(|| at(&self.containers).map(Slot::App))
    }

    /// Every init container exited 0.
    fn initialized(&self) -> bool {
        self.inits.iter().all(completed)
    }

    /// An init container failed under `restartPolicy: Never`: the pod failed.
    fn init_failed(&self) -> bool {
        self.inits.iter().any(|c| matches!(&c.phase, Phase::Terminated(t) if t["exitCode"] != 0))
    }

    fn processes(&mut self) -> impl Iterator<Item = Arc<dyn ContainerProcess>> + '_ {
        self.inits.iter_mut().chain(self.containers.iter_mut()).filter_map(|c| c.process.take())
    }
}

fn completed(c: &Container) -> bool {
    matches!(&c.phase, Phase::Terminated(t) if t["exitCode"] == 0)
}

/// How far the init containers are.
enum InitProgress {
    Done,
    /// One is starting or running, or waits until then.
    Pending(Option<SimInstant>),
    Failed,
}

/// A stable 64-hex-digit digest (FNV-1a, four lanes) for container and image ids.
fn hex64(s: &str) -> String {
    (0..4u64)
        .map(|lane| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ lane;
            for b in s.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            format!("{h:016x}")
        })
        .collect()
}

/// Go's `time.Duration` formatting for whole seconds (`10s`, `1m20s`, `5m0s`).
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 { format!("{s}s") } else { format!("{}m{}s", s / 60, s % 60) }
}

/// The delay before restart number `n` (0-based count of earlier back-offs).
pub fn backoff_delay(n: u32) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(10).saturating_mul(1u32 << (n - 1).min(10)).min(MAX_BACKOFF)
}

fn image_id(image: &str) -> String {
    let short = super::runtime::strip_registry(image);
    let repo = short.split('@').next().unwrap_or(short);
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    let repo = if repo.contains('/') { format!("docker.io/{repo}") } else { format!("docker.io/library/{repo}") };
    format!("{repo}@sha256:{}", hex64(image))
}

/// Seconds a preStop handler that the kubelet can time itself takes: the `sleep`
/// action, or `exec` of `sleep N` (also through `sh -c`).
pub fn pre_stop_sleep(handler: &Value) -> Option<Duration> {
    if let Some(s) = handler["sleep"]["seconds"].as_u64() {
        return Some(Duration::from_secs(s));
    }
    let cmd: Vec<&str> = handler["exec"]["command"].as_array()?.iter().filter_map(Value::as_str).collect();
    let line = match cmd.as_slice() {
        [sh, "-c", script] if sh.ends_with("sh") => script.to_string(),
        parts => parts.join(" "),
    };
    let mut words = line.split_whitespace();
    (words.next()? == "sleep").then_some(())?;
    let secs: f64 = words.next()?.trim_end_matches('s').parse().ok()?;
    words.next().is_none().then(|| Duration::from_secs_f64(secs.max(0.0)))
}

struct Kubelet {
    store: Store,
    runtimes: RuntimeRegistry,
    dns: Dns,
    timings: Timings,
    recorder: Recorder,
    tx: mpsc::UnboundedSender<Msg>,
    pool: Pool,
    pods: HashMap<String, PodState>,
    /// Each pod's next deadline (a start, a probe, a retry).
    due: Deadlines,
    /// Pods a message from their processes concerns, synced in the next pass.
    touched: BTreeSet<(String, String)>,
}

/// Each pod's next deadline by uid, and in deadline order: a pass finds the pods due
/// and the next deadline without looking at every pod (at 800 pods that look was a
/// tenth of the kubelet's work).
#[derive(Default)]
struct Deadlines {
    by_uid: HashMap<String, SimInstant>,
    order: BTreeSet<(SimInstant, String)>,
}

impl Deadlines {
    fn insert(&mut self, uid: String, at: SimInstant) {
        self.remove(&uid);
        self.order.insert((at, uid.clone()));
        self.by_uid.insert(uid, at);
    }

    fn remove(&mut self, uid: &str) {
        if let Some(at) = self.by_uid.remove(uid) {
            self.order.remove(&(at, uid.to_string()));
        }
    }

    fn next(&self) -> Option<SimInstant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// The uids whose deadline is `now` or earlier.
    fn due(&self, now: SimInstant) -> impl Iterator<Item = &str> {
        self.order.iter().take_while(move |(at, _)| *at <= now).map(|(_, uid)| uid.as_str())
    }
}

fn restart_policy(pod: &Value) -> &str {
    pod["spec"]["restartPolicy"].as_str().unwrap_or("Always")
}

impl Kubelet {
    fn clock(&self) -> &SimClock {
        self.store.clock()
    }

    fn event(&self, st: &PodState, pod: &Value, container: Option<&str>, ty: EventType, reason: &str, message: &str) {
        let _ = container;
        self.recorder.record(&Source::kubelet(&st.node), pod, ty, reason, message);
    }

    /// Syncs the pods that `changes` may concern (every pod when `None`: at start, or
    /// when changes were missed), and the pods whose own deadline came; returns the
    /// next deadline.
    fn pass(&mut self, changes: Option<Vec<Arc<Change>>>) -> Option<SimInstant> {
        let now = self.clock().now();
        let Some(changes) = changes else { return self.full_pass(now) };
        let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
        let mut namespaces = BTreeSet::new();
        let mut nodes = HashSet::new();
        for c in &changes {
            let ns = str_of(&c.new, &["metadata", "namespace"]);
            match c.gr.resource.as_str() {
                "pods" => {
                    if c.kind == ChangeKind::Deleted {
                        self.forget(str_of(&c.new, &["metadata", "uid"]));
                    }
                    keys.insert((ns.to_string(), str_of(&c.new, &["metadata", "name"]).to_string()));
                }
                "nodes" => {
                    nodes.insert(str_of(&c.new, &["metadata", "name"]).to_string());
                }
                // Volumes, ConfigMaps and Secrets mount into the pods of their namespace.
                _ => {
                    namespaces.insert(ns.to_string());
                }
            }
        }
        std::mem::take(&mut self.touched).into_iter().for_each(|k| {
            keys.insert(k);
        });
        for st in self.due.due(now).filter_map(|uid| self.pods.get(uid)) {
            keys.insert((st.ns.clone(), st.name.clone()));
        }
        if !nodes.is_empty() {
            for st in self.pods.values().filter(|st| nodes.contains(&st.node)) {
                keys.insert((st.ns.clone(), st.name.clone()));
            }
        }
        let mut pods: Vec<Arc<Value>> = Vec::new();
        for ns in &namespaces {
            pods.extend(list(&self.store, PODS, Some(ns)));
        }
        if !nodes.is_empty() {
            // A node coming back: its pods the kubelet has not seen yet too.
            pods.extend(
                list(&self.store, PODS, None).into_iter().filter(|p| nodes.contains(str_of(p, &["spec", "nodeName"]))),
            );
        }
        for (ns, name) in &keys {
            if !namespaces.contains(ns)
                && let Some(pod) = get(&self.store, PODS, Some(ns), name)
            {
                pods.push(pod);
            }
        }
        let mut seen = HashSet::new();
        pods.retain(|p| seen.insert(str_of(p, &["metadata", "uid"]).to_string()));
        let node_objs = self.nodes_of(&pods);
        let mut missing_nodes = HashSet::new();
        for pod in &pods {
            self.sync_pod(pod, &node_objs, now, &mut missing_nodes);
        }
        for node in missing_nodes {
            super::nodes::mark_pods_not_ready(&self.store, &node);
        }
        self.next_due()
    }

    /// Every pod, as at start.
    fn full_pass(&mut self, now: SimInstant) -> Option<SimInstant> {
        self.touched.clear();
        let pods = list(&self.store, PODS, None);
        let node_objs = self.nodes_of(&pods);
        let mut seen = HashSet::new();
        let mut missing_nodes = HashSet::new();
        for pod in &pods {
            seen.insert(str_of(pod, &["metadata", "uid"]).to_string());
            self.sync_pod(pod, &node_objs, now, &mut missing_nodes);
        }
        for node in missing_nodes {
            super::nodes::mark_pods_not_ready(&self.store, &node);
        }
        let gone: Vec<String> = self.pods.keys().filter(|u| !seen.contains(*u)).cloned().collect();
        for uid in gone {
            self.forget(&uid);
        }
        self.next_due()
    }

    /// The nodes `pods` are bound to, by name.
    fn nodes_of(&self, pods: &[Arc<Value>]) -> HashMap<String, Arc<Value>> {
        let names: HashSet<&str> = pods.iter().map(|p| str_of(p, &["spec", "nodeName"])).collect();
        if names.len() > 8 {
            return list(&self.store, NODES, None)
                .into_iter()
                .map(|n| (str_of(&n, &["metadata", "name"]).to_string(), n))
                .collect();
        }
        names
            .into_iter()
            .filter(|n| !n.is_empty())
            .filter_map(|n| Some((n.to_string(), get(&self.store, NODES, None, n)?)))
            .collect()
    }

    /// The earliest deadline of any pod.
    fn next_due(&self) -> Option<SimInstant> {
        self.due.next()
    }

    /// A pod that is gone: its processes are killed and its IP released.
    fn forget(&mut self, uid: &str) {
        self.due.remove(uid);
        if let Some(mut st) = self.pods.remove(uid) {
            for p in st.processes() {
                p.kill();
            }
            if let Some(ip) = st.ip {
                self.pool.release(ip);
            }
        }
    }

    /// One pod's sync (`due`: its next deadline is kept).
    fn sync_pod(
        &mut self,
        pod: &Value,
        nodes: &HashMap<String, Arc<Value>>,
        now: SimInstant,
        missing_nodes: &mut HashSet<String>,
    ) {
        let node = str_of(pod, &["spec", "nodeName"]);
        if node.is_empty() {
            return;
        }
        let uid = str_of(pod, &["metadata", "uid"]).to_string();
        self.due.remove(&uid);
        if let Some(ip) = str_of(pod, &["status", "podIP"]).parse::<Ipv4Addr>().ok()
            && !self.pods.contains_key(&uid)
        {
            self.pool.reserve(ip);
        }
        let Some(node_obj) = nodes.get(node) else {
            missing_nodes.insert(node.to_string());
            if let Some(st) = self.pods.get_mut(&uid) {
                for p in st.processes() {
                    p.kill();
                }
                st.lost = true;
            }
            return;
        };
        if super::nodes::powered_off(node_obj) {
            // The machine is off: its processes are gone; powered on, the kubelet
            // starts the pod's containers afresh.
            if let Some(mut st) = self.pods.remove(&uid) {
                for p in st.processes() {
                    p.kill();
                }
            }
            return;
        }
        if !super::nodes::node_ready(node_obj) {
            return;
        }
        // Taken out while it syncs (`sync` borrows the kubelet too), put back after.
        let mut st = self.pods.remove(&uid).unwrap_or_else(|| new_state(pod));
        if st.lost {
            self.pods.insert(uid, st);
            return;
        }
        if let Some(due) = self.sync(&mut st, pod, node_obj, now) {
            self.due.insert(uid.clone(), due);
        }
        self.pods.insert(uid, st);
    }

    fn sync(&mut self, st: &mut PodState, pod: &Value, node: &Value, now: SimInstant) -> Option<SimInstant> {
        if crate::meta::is_deleting(pod) {
            self.terminate(st, pod);
            return None;
        }
        if super::objects::is_terminal(pod) {
            return None;
        }
        let mut next = None;
        // Volumes first: the sandbox is created only once everything mounts.
        let mut volumes = BTreeMap::new();
        let mut failures = Vec::new();
        for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            match resolve_volume(&self.store, pod, v) {
                Ok(src) => {
                    volumes.insert(str_of(v, &["name"]).to_string(), src);
                }
                Err(e) => failures.push(e),
            }
        }
        if let Some(first) = failures.first() {
            let due = match &st.mount_warned {
                Some((m, at)) if m == first => now >= *at + self.timings.mount_retry,
                _ => true,
            };
            if due {
                self.event(st, pod, None, EventType::Warning, "FailedMount", first);
                st.mount_warned = Some((first.clone(), now));
            }
            next = st.mount_warned.as_ref().map(|(_, at)| *at + self.timings.mount_retry);
            self.write_status(st, pod, node);
            return next;
        }
        st.mount_warned = None;
        if st.ip.is_none() {
            st.ip = self.pool.allocate();
            st.sandbox_at = Some(now);
            st.start_time = Some(now_time(&self.store));
            st.config_versions = self.config_versions(pod);
        }
        let ready_at = st.sandbox_at.map(|t| t + self.timings.container_start);
        match self.sync_inits(st, pod, node, &volumes, now, ready_at) {
            InitProgress::Done => {}
            InitProgress::Pending(due) => {
                self.write_status(st, pod, node);
                return due;
            }
            InitProgress::Failed => {
                self.write_status(st, pod, node);
                return None;
            }
        }
        for i in 0..st.containers.len() {
            let c = &st.containers[i];
            let start_now = match &c.phase {
                Phase::Waiting { .. } if !c.ever_started => ready_at.is_some_and(|t| now >= t),
                Phase::Waiting { .. } => c.next_start.is_none_or(|t| now >= t),
                _ => false,
            };
            if start_now {
                self.start_container(st, Slot::App(i), pod, node, &volumes);
            } else if let Phase::Waiting { .. } = &st.containers[i].phase {
                next =
                    earliest(next, if st.containers[i].ever_started { st.containers[i].next_start } else { ready_at });
            }
            let c = &mut st.containers[i];
            if let Phase::Running { since, .. } = &c.phase {
                let since = *since;
                if now >= since + BACKOFF_RESET {
                    c.backoff = 0;
                }
                let probe = &c.spec["readinessProbe"];
                if probe.is_object() {
                    let first = since + Duration::from_secs(probe["initialDelaySeconds"].as_u64().unwrap_or(0));
                    let period = Duration::from_secs(probe["periodSeconds"].as_u64().unwrap_or(10).max(1));
                    if now >= first && c.next_probe.is_none_or(|t| now >= t) {
                        c.ready = c.process.as_ref().is_none_or(|p| p.ready());
                        c.next_probe = Some(now + period);
                    }
                    next = earliest(next, Some(c.next_probe.unwrap_or(first).max(first)));
                } else {
                    c.ready = true;
                }
            }
        }
        next = earliest(next, self.config_reload(st, pod, &volumes, now));
        self.write_status(st, pod, node);
        next
    }

    /// Starts the first init container that has not completed, when due; the app
    /// containers wait until every one exited 0.
    fn sync_inits(
        &mut self,
        st: &mut PodState,
        pod: &Value,
        node: &Value,
        volumes: &BTreeMap<String, MountSource>,
        now: SimInstant,
        ready_at: Option<SimInstant>,
    ) -> InitProgress {
        for i in 0..st.inits.len() {
            if st.init_failed() {
                return InitProgress::Failed;
            }
            let c = &st.inits[i];
            if completed(c) {
                continue;
            }
            let due = if c.ever_started { c.next_start } else { ready_at };
            match c.phase {
                Phase::Waiting { .. } if due.is_some_and(|t| now >= t) || (c.ever_started && due.is_none()) => {
                    self.start_container(st, Slot::Init(i), pod, node, volumes);
                    // An unclaimed init container completed at once: on to the next.
                    if !completed(&st.inits[i]) {
                        return InitProgress::Pending(None);
                    }
                }
                Phase::Waiting { .. } => return InitProgress::Pending(due),
                _ => return InitProgress::Pending(None),
            }
        }
        if st.init_failed() { InitProgress::Failed } else { InitProgress::Done }
    }

    fn config_versions(&self, pod: &Value) -> BTreeMap<String, String> {
        let ns = str_of(pod, &["metadata", "namespace"]);
        let mut out = BTreeMap::new();
        for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            let mut refs = Vec::new();
            if let Some(n) = v["configMap"]["name"].as_str() {
                refs.push((CONFIGMAPS, n));
            }
            if let Some(n) = v["secret"]["secretName"].as_str() {
                refs.push((SECRETS, n));
            }
            for s in v["projected"]["sources"].as_array().into_iter().flatten() {
                if let Some(n) = s["configMap"]["name"].as_str() {
                    refs.push((CONFIGMAPS, n));
                }
                if let Some(n) = s["secret"]["name"].as_str() {
                    refs.push((SECRETS, n));
                }
            }
            for (res, n) in refs {
                let rv = get(&self.store, res, Some(ns), n)
                    .map(|o| str_of(&o, &["metadata", "resourceVersion"]).to_string());
                out.insert(format!("{}/{n}", res.plural), rv.unwrap_or_default());
            }
        }
        out
    }

    fn config_reload(
        &mut self,
        st: &mut PodState,
        pod: &Value,
        volumes: &BTreeMap<String, MountSource>,
        now: SimInstant,
    ) -> Option<SimInstant> {
        let current = self.config_versions(pod);
        if current == st.config_versions {
            st.reload_due = None;
            return None;
        }
        let due = *st.reload_due.get_or_insert(now + self.timings.config_sync);
        if now < due {
            return Some(due);
        }
        st.config_versions = current;
        st.reload_due = None;
        for c in &st.containers {
            let Some(p) = &c.process else { continue };
            let mounts = container_mounts(&c.spec, volumes);
            let updatable = mounts.iter().any(|m| m.sub_path.is_none() && m.source.files().is_some());
            if updatable {
                tokio::spawn(p.config_changed(mounts));
            }
        }
        None
    }

    fn start_container(
        &mut self,
        st: &mut PodState,
        slot: Slot,
        pod: &Value,
        node: &Value,
        volumes: &BTreeMap<String, MountSource>,
    ) {
        let spec = st.c(slot).spec.clone();
        let name = st.c(slot).name.clone();
        let image = st.c(slot).image.clone();
        let mut pod_view = pod.clone();
        if let Some(ip) = st.ip {
            pod_view["status"]["podIP"] = json!(ip.to_string());
        }
        let env = match resolve_env(&self.store, &pod_view, &spec) {
            Ok(env) => env,
            Err(e) => {
                let c = st.c(slot);
                let message = e.0;
                if !matches!(&c.phase, Phase::Waiting { reason, message: m } if reason == "CreateContainerConfigError" && *m == message)
                {
                    self.event(st, pod, Some(&name), EventType::Warning, "Failed", &format!("Error: {message}"));
                }
                let c = st.c_mut(slot);
                c.phase = Phase::Waiting { reason: "CreateContainerConfigError".into(), message };
                c.next_start = Some(self.clock().now() + Duration::from_secs(10));
                return;
            }
        };
        let pull = spec["imagePullPolicy"].as_str().unwrap_or("IfNotPresent");
        if pull == "Always" {
            self.event(st, pod, Some(&name), EventType::Normal, "Pulling", &format!("Pulling image \"{image}\""));
            self.event(
                st,
                pod,
                Some(&name),
                EventType::Normal,
                "Pulled",
                &format!(
                    "Successfully pulled image \"{image}\" in 1s (1s including waiting). Image size: 104857600 bytes."
                ),
            );
        } else {
            self.event(
                st,
                pod,
                Some(&name),
                EventType::Normal,
                "Pulled",
                &format!("Container image \"{image}\" already present on machine"),
            );
        }
        self.event(st, pod, Some(&name), EventType::Normal, "Created", &format!("Created container: {name}"));
        let uid = st.uid.clone();
        let c = st.c_mut(slot);
        c.generation += 1;
        c.ever_started = true;
        c.next_start = None;
        c.next_probe = None;
        c.ready = false;
        c.early_exit = None;
        let Some(runtime) = self.runtimes.for_image(&image) else {
            let wall = now_time(&self.store);
            c.phase = match slot {
                // A command that succeeds at once.
                Slot::Init(_) => Phase::Terminated(json!({"exitCode": 0, "reason": "Completed",
                    "startedAt": wall, "finishedAt": wall, "containerID": c.id(&uid)})),
                Slot::App(_) => Phase::Running { started_at: wall, since: self.clock().now() },
            };
            self.event(st, pod, Some(&name), EventType::Normal, "Started", &format!("Started container {name}"));
            return;
        };
        c.phase = Phase::Starting;
        let (restart_count, generation) = (c.restart_count, c.generation);
        let expand = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|s| super::runtime::expand(s, &env))
                .collect()
        };
        let typed_pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod_view.clone()).unwrap_or_default();
        let typed_container: k8s_openapi::api::core::v1::Container =
            serde_json::from_value(spec.clone()).unwrap_or_default();
        let ctx = ContainerContext {
            namespace: st.ns.clone(),
            pod_name: st.name.clone(),
            pod_uid: st.uid.clone(),
            pod: Arc::new(typed_pod),
            command: expand(&spec["command"]),
            args: expand(&spec["args"]),
            container: typed_container,
            env: env.clone(),
            mounts: container_mounts(&spec, volumes),
            pod_ip: st.ip.unwrap_or(Ipv4Addr::LOCALHOST),
            host_ip: host_ip(node),
            node: st.node.clone(),
            restart_count,
            exit: ExitReporter { tx: self.tx.clone(), uid: st.uid.clone(), container: name.clone(), generation },
            dns: self.dns.clone(),
            clock: self.clock().clone(),
        };
        let tx = self.tx.clone();
        let uid = st.uid.clone();
        tokio::spawn(async move {
            let result = runtime.start(ctx).await;
            let _ = tx.send(Msg::Started { uid, container: name, generation, result });
        });
    }

    fn on_message(&mut self, msg: Msg) {
        let now = self.clock().now();
        let (Msg::Started { uid, .. } | Msg::Exited { uid, .. } | Msg::Terminated { uid, .. }) = &msg;
        if let Some(st) = self.pods.get(uid) {
            self.touched.insert((st.ns.clone(), st.name.clone()));
        }
        match msg {
            Msg::Started { uid, container, generation, result } => {
                let Some(mut st) = self.pods.remove(&uid) else {
                    if let Ok(p) = result {
                        p.kill();
                    }
                    return;
                };
                let pod = get(&self.store, PODS, Some(&st.ns), &st.name).unwrap_or_default();
                if let Some(slot) = st.slot_of(&container, generation) {
                    match result {
                        Ok(p) if st.terminating || st.lost => p.kill(),
                        Ok(p) => {
                            let c = st.c_mut(slot);
                            c.process = Some(p);
                            c.phase = Phase::Running { started_at: now_time(&self.store), since: now };
                            let early = c.early_exit.take();
                            self.event(
                                &st,
                                &pod,
                                Some(&container),
                                EventType::Normal,
                                "Started",
                                &format!("Started container {container}"),
                            );
                            if let Some(exit) = early {
                                let reason = if exit.code == 0 { "Completed" } else { "Error" };
                                self.exited(&mut st, &pod, slot, exit, reason);
                            }
                        }
                        Err(e) => {
                            self.event(
                                &st,
                                &pod,
                                Some(&container),
                                EventType::Warning,
                                "Failed",
                                &format!("Error: {e}"),
                            );
                            self.exited(&mut st, &pod, slot, ContainerExit::new(128, e), "StartError");
                        }
                    }
                }
                self.pods.insert(uid, st);
            }
            Msg::Exited { uid, container, generation, exit } => {
                let Some(mut st) = self.pods.remove(&uid) else { return };
                let pod = get(&self.store, PODS, Some(&st.ns), &st.name).unwrap_or_default();
                if let Some(slot) = st.slot_of(&container, generation)
                    && !st.terminating
                {
                    match st.c(slot).phase {
                        Phase::Running { .. } => {
                            let reason = if exit.code == 0 { "Completed" } else { "Error" };
                            self.exited(&mut st, &pod, slot, exit, reason);
                        }
                        Phase::Starting => st.c_mut(slot).early_exit = Some(exit),
                        _ => {}
                    }
                }
                self.pods.insert(uid, st);
            }
            Msg::Terminated { uid, exits } => {
                if let Some(st) = self.pods.get_mut(&uid) {
                    st.exits = Some(exits);
                }
            }
        }
    }

    fn exited(&mut self, st: &mut PodState, pod: &Value, slot: Slot, exit: ContainerExit, reason: &str) {
        let now = self.clock().now();
        let policy = restart_policy(pod).to_string();
        let wall = now_time(&self.store);
        let uid = st.uid.clone();
        let (pod_name, ns) = (st.name.clone(), st.ns.clone());
        let c = st.c_mut(slot);
        let started_at = match &c.phase {
            Phase::Running { started_at, since } => {
                if now >= *since + BACKOFF_RESET {
                    // It ran long enough: the back-off starts over.
                    c.backoff = 0;
                }
                started_at.clone()
            }
            _ => wall.clone(),
        };
        let terminated = json!({"exitCode": exit.code, "reason": reason, "message": exit.message,
                                "startedAt": started_at, "finishedAt": wall, "containerID": c.id(&uid)});
        if let Some(p) = c.process.take() {
            p.kill();
        }
        c.ready = false;
        let restart = match slot {
            // An init container that succeeded is done; one that failed runs again
            // unless the pod may not restart anything.
            Slot::Init(_) => exit.code != 0 && policy != "Never",
            Slot::App(_) => policy == "Always" || (policy == "OnFailure" && exit.code != 0),
        };
        if !restart {
            c.phase = Phase::Terminated(terminated);
            return;
        }
        c.last = Some(terminated);
        c.restart_count += 1;
        let delay = backoff_delay(c.backoff);
        c.backoff += 1;
        c.next_start = Some(now + delay);
        let name = c.name.clone();
        if delay.is_zero() {
            c.phase = Phase::Waiting { reason: String::new(), message: String::new() };
        } else {
            c.phase = Phase::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!(
                    "back-off {} restarting failed container={name} pod={pod_name}_{ns}({uid})",
                    go_duration(delay)
                ),
            };
            self.event(
                st,
                pod,
                Some(&name),
                EventType::Warning,
                "BackOff",
                &format!("Back-off restarting failed container {name} in pod {pod_name}_{ns}({uid})"),
            );
        }
    }

    fn terminate(&mut self, st: &mut PodState, pod: &Value) {
        for c in &mut st.inits {
            if let Some(p) = c.process.take() {
                p.kill();
            }
        }
        let started = st.containers.iter().any(|c| c.ever_started);
        if !st.terminating && started {
            st.terminating = true;
            let grace = Duration::from_secs(pod["metadata"]["deletionGracePeriodSeconds"].as_u64().unwrap_or(0));
            let mut work = Vec::new();
            for c in &st.containers {
                if matches!(c.phase, Phase::Running { .. } | Phase::Starting) {
                    self.event(
                        st,
                        pod,
                        Some(&c.name),
                        EventType::Normal,
                        "Killing",
                        &format!("Stopping container {}", c.name),
                    );
                    work.push((c.name.clone(), c.process.clone(), c.spec["lifecycle"]["preStop"].clone()));
                }
            }
            let (recorder, pod_view, node) = (self.recorder.clone(), pod.clone(), st.node.clone());
            let on_hook_failure = move |container: &str, error: &str| {
                tracing::info!(pod = %str_of(&pod_view, &["metadata", "name"]), container, error, "PreStop hook failed");
                // Without the hook's output, as the kubelet: it may hold secrets.
                let source = Source::kubelet(&node);
                recorder.record(&source, &pod_view, EventType::Warning, "FailedPreStopHook", "PreStopHook failed");
            };
            tokio::spawn(stop_all(self.clock().clone(), work, grace, self.tx.clone(), st.uid.clone(), on_hook_failure));
            return;
        }
        if started && st.exits.is_none() {
            return;
        }
        if started {
            let exits = st.exits.clone().unwrap_or_default();
            let wall = now_time(&self.store);
            for c in &mut st.containers {
                c.ready = false;
                c.process = None;
                if let Some((_, exit)) = exits.iter().find(|(n, _)| *n == c.name) {
                    let started_at = match &c.phase {
                        Phase::Running { started_at, .. } => started_at.clone(),
                        _ => wall.clone(),
                    };
                    let reason = if exit.code == 0 { "Completed" } else { "Error" };
                    c.phase =
                        Phase::Terminated(json!({"exitCode": exit.code, "reason": reason, "message": exit.message,
                        "startedAt": started_at, "finishedAt": wall, "containerID": c.id(&st.uid)}));
                }
            }
            if let Some(node) = get(&self.store, NODES, None, &st.node) {
                self.write_status(st, pod, &node);
            }
        }
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: Some(st.uid.clone()),
            ..DeleteOptions::default()
        };
        let _ = self.store.client(format!("kubelet/{}", st.node)).delete(&PODS.r(), Some(&st.ns), &st.name, &opts);
    }

    fn write_status(&self, st: &PodState, pod: &Value, node: &Value) {
        let desired = build_status(st, pod, node, &now_time(&self.store));
        let current = &pod["status"];
        let changed = desired.as_object().into_iter().flatten().any(|(k, v)| current[k.as_str()] != *v);
        if !changed {
            return;
        }
        let client = self.store.client(format!("kubelet/{}", st.node));
        if let Err(e) = client.patch_status(&PODS.r(), Some(&st.ns), &st.name, &json!({"status": desired})) {
            tracing::debug!(error = %e, pod = st.name, "status update failed");
        }
    }
}

fn host_ip(node: &Value) -> Ipv4Addr {
    node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str()?.parse().ok())
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

fn new_state(pod: &Value) -> PodState {
    let containers_of = |key: &str, waiting: &str| -> Vec<Container> {
        pod["spec"][key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Container {
                name: str_of(c, &["name"]).into(),
                image: str_of(c, &["image"]).into(),
                spec: c.clone(),
                phase: Phase::Waiting { reason: waiting.into(), message: String::new() },
                restart_count: 0,
                last: None,
                process: None,
                generation: 0,
                ready: false,
                next_start: None,
                next_probe: None,
                backoff: 0,
                ever_started: false,
                early_exit: None,
            })
            .collect()
    };
    let inits = containers_of("initContainers", "PodInitializing");
    // The kubelet's default waiting reason: PodInitializing in a pod with init containers.
    let containers =
        containers_of("containers", if inits.is_empty() { "ContainerCreating" } else { "PodInitializing" });
    PodState {
        ns: str_of(pod, &["metadata", "namespace"]).into(),
        name: str_of(pod, &["metadata", "name"]).into(),
        uid: str_of(pod, &["metadata", "uid"]).into(),
        node: str_of(pod, &["spec", "nodeName"]).into(),
        ip: None,
        sandbox_at: None,
        start_time: None,
        containers,
        inits,
        terminating: false,
        exits: None,
        mount_warned: None,
        config_versions: BTreeMap::new(),
        reload_due: None,
        lost: false,
    }
}

/// The pod status the kubelet reports for `st`.
/// One entry of `containerStatuses` or `initContainerStatuses`.
fn container_status(c: &Container, uid: &str, ready: bool) -> Value {
    let state = match &c.phase {
        Phase::Waiting { reason, .. } if reason.is_empty() => json!({"waiting": {"reason": "ContainerCreating"}}),
        Phase::Waiting { reason, message } if message.is_empty() => json!({"waiting": {"reason": reason}}),
        Phase::Waiting { reason, message } => json!({"waiting": {"reason": reason, "message": message}}),
        Phase::Starting => json!({"waiting": {"reason": "ContainerCreating"}}),
        Phase::Running { started_at, .. } => json!({"running": {"startedAt": started_at}}),
        Phase::Terminated(t) => json!({"terminated": t}),
    };
    let running = matches!(c.phase, Phase::Running { .. });
    let mut s = json!({
        "name": c.name, "image": c.image, "imageID": if c.ever_started { image_id(&c.image) } else { String::new() },
        "ready": ready, "started": running, "restartCount": c.restart_count, "state": state,
        "lastState": c.last.as_ref().map(|t| json!({"terminated": t})).unwrap_or(json!({})),
    });
    if c.ever_started {
        s["containerID"] = json!(c.id(uid));
    }
    s
}

fn build_status(st: &PodState, pod: &Value, node: &Value, now: &str) -> Value {
    let mut statuses = Vec::new();
    let mut unready = Vec::new();
    for c in &st.containers {
        let ready = matches!(c.phase, Phase::Running { .. }) && c.ready;
        if !ready {
            unready.push(c.name.clone());
        }
        statuses.push(container_status(c, &st.uid, ready));
    }
    let done = (!st.containers.is_empty() && st.containers.iter().all(|c| matches!(c.phase, Phase::Terminated(_))))
        || st.init_failed();
    let phase = if st.init_failed() {
        "Failed"
    } else if done {
        let ok = st.containers.iter().all(|c| matches!(&c.phase, Phase::Terminated(t) if t["exitCode"] == 0));
        if ok { "Succeeded" } else { "Failed" }
    } else if st.containers.iter().any(|c| c.ever_started && !matches!(c.phase, Phase::Starting) || c.restart_count > 0)
    {
        "Running"
    } else {
        "Pending"
    };
    let all_ready = unready.is_empty();
    let not_ready = |ty: &str| {
        if all_ready {
            json!({"type": ty, "status": "True"})
        } else if done {
            json!({"type": ty, "status": "False", "reason": "PodCompleted"})
        } else {
            json!({"type": ty, "status": "False", "reason": "ContainersNotReady",
                   "message": format!("containers with unready status: [{}]", unready.join(" "))})
        }
    };
    let mut conds: Vec<Value> = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let sandbox = st.ip.is_some() && !done;
    put_condition(
        &mut conds,
        json!({"type": "PodReadyToStartContainers", "status": if sandbox { "True" } else { "False" }}),
        now,
    );
    let initialized = if st.initialized() {
        json!({"type": "Initialized", "status": "True"})
    } else {
        let incomplete: Vec<&str> = st.inits.iter().filter(|c| !completed(c)).map(|c| c.name.as_str()).collect();
        json!({"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
               "message": format!("containers with incomplete status: [{}]", incomplete.join(" "))})
    };
    put_condition(&mut conds, initialized, now);
    put_condition(&mut conds, not_ready("Ready"), now);
    put_condition(&mut conds, not_ready("ContainersReady"), now);
    // A pod bound by a `nodeName` in its spec never saw the scheduler; the kubelet reports it scheduled.
    put_condition(&mut conds, json!({"type": "PodScheduled", "status": "True"}), now);
    let order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"];
    conds.sort_by_key(|c| order.iter().position(|o| c["type"] == *o).unwrap_or(order.len()));
    let host = host_ip(node).to_string();
    let mut status = json!({
        "phase": phase,
        "conditions": conds,
        "hostIP": host,
        "hostIPs": [{"ip": host}],
        "containerStatuses": statuses,
    });
    if let Some(ip) = st.ip {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = json!([{"ip": ip.to_string()}]);
    }
    if let Some(t) = &st.start_time {
        status["startTime"] = json!(t);
    }
    if !st.inits.is_empty() {
        // An init container is ready once it completed.
        let init: Vec<Value> = st.inits.iter().map(|c| container_status(c, &st.uid, completed(c))).collect();
        status["initContainerStatuses"] = json!(init);
    }
    status
}

/// A container to stop: its name, process (none for a default one) and preStop handler.
type StopWork = (String, Option<Arc<dyn ContainerProcess>>, Value);

/// preStop hooks, then SIGTERM, within the grace period; SIGKILL (137) for the rest.
/// A hook that fails is reported (`on_hook_failure`, with the container's name) and
/// the container is stopped all the same.
async fn stop_all(
    clock: SimClock,
    work: Vec<StopWork>,
    grace: Duration,
    tx: mpsc::UnboundedSender<Msg>,
    uid: String,
    on_hook_failure: impl Fn(&str, &str) + Send + Sync,
) {
    let deadline = clock.now() + grace;
    let results: Arc<std::sync::Mutex<Vec<Option<ContainerExit>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; work.len()]));
    let on_hook_failure = &on_hook_failure;
    let tasks = work.iter().enumerate().map(|(i, (name, process, hook))| {
        let (clock, process, hook, results) = (clock.clone(), process.clone(), hook.clone(), results.clone());
        async move {
            if let Some(d) = pre_stop_sleep(&hook) {
                clock.sleep(d).await;
            } else if hook.is_object()
                && let Some(p) = &process
                && let Err(error) = p.pre_stop(&hook).await
            {
                on_hook_failure(name, &error);
            }
            let exit = match &process {
                Some(p) => {
                    let left = deadline.saturating_duration_since(clock.now());
                    p.stop(StopRequest { grace: left, reason: StopReason::PodDeleted }).await
                }
                None => ContainerExit::new(0, ""),
            };
            super::lock(&results)[i] = Some(exit);
        }
    });
    tokio::select! {
        _ = futures::future::join_all(tasks) => {}
        _ = clock.sleep_until(deadline) => {}
    }
    let results = super::lock(&results).clone();
    let exits = work
        .iter()
        .zip(results)
        .map(|((name, process, _), r)| {
            let exit = r.unwrap_or_else(|| {
                if let Some(p) = process {
                    p.kill();
                }
                ContainerExit::new(137, "")
            });
            (name.clone(), exit)
        })
        .collect();
    let _ = tx.send(Msg::Terminated { uid, exits });
}

pub(crate) async fn run(
    store: Store,
    runtimes: RuntimeRegistry,
    dns: Dns,
    timings: Timings,
    shutdown: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut wake =
        Wake::keeping_changes(&store, shutdown, &["pods", "nodes", "persistentvolumeclaims", "configmaps", "secrets"]);
    let mut kubelet = Kubelet {
        recorder: Recorder::new(&store),
        store,
        runtimes,
        dns,
        timings,
        tx,
        pool: Pool::pods(),
        pods: HashMap::new(),
        due: Deadlines::default(),
        touched: BTreeSet::new(),
    };
    let mut pending: Option<Msg> = None;
    loop {
        if let Some(m) = pending.take() {
            kubelet.on_message(m);
        }
        while let Ok(m) = rx.try_recv() {
            kubelet.on_message(m);
        }
        let changes = wake.take_changes();
        let Some((synced, next)) = super::on_own_thread(kubelet, move |k| k.pass(changes)).await else { return };
        kubelet = synced;
        let received = async {
            if let Some(m) = rx.recv().await {
                pending = Some(m);
            } else {
                std::future::pending::<()>().await;
            }
        };
        if !wake.wait(next, received).await {
            break;
        }
    }
    for st in kubelet.pods.values() {
        for c in &st.containers {
            if let Some(p) = &c.process {
                p.kill();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_come_in_order_and_a_new_one_replaces_the_old() {
        let at = |secs| SimInstant::default() + Duration::from_secs(secs);
        let mut due = Deadlines::default();
        due.insert("b".into(), at(5));
        due.insert("a".into(), at(9));
        due.insert("c".into(), at(1));
        due.insert("c".into(), at(7));
        assert_eq!(due.next(), Some(at(5)));
        assert_eq!(due.due(at(7)).collect::<Vec<_>>(), ["b", "c"], "c's old deadline is gone");
        due.remove("b");
        assert_eq!(due.due(at(7)).collect::<Vec<_>>(), ["c"]);
        assert_eq!(due.next(), Some(at(7)));
        due.remove("c");
        due.remove("a");
        assert_eq!(due.next(), None);
        assert!(due.by_uid.is_empty() && due.order.is_empty());
    }

    #[test]
    fn back_off_doubles_from_ten_seconds_to_five_minutes() {
        let d: Vec<u64> = (0..8).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(d, [0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
    }

    #[test]
    fn pre_stop_sleeps_are_recognised() {
        assert_eq!(pre_stop_sleep(&json!({"sleep": {"seconds": 5}})), Some(Duration::from_secs(5)));
        assert_eq!(
            pre_stop_sleep(&json!({"exec": {"command": ["sh", "-c", "sleep 20"]}})),
            Some(Duration::from_secs(20))
        );
        assert_eq!(pre_stop_sleep(&json!({"exec": {"command": ["sleep", "3"]}})), Some(Duration::from_secs(3)));
        assert_eq!(pre_stop_sleep(&json!({"exec": {"command": ["/stop.sh"]}})), None);
        assert_eq!(pre_stop_sleep(&json!({"exec": {"command": ["sh", "-c", "sleep 2; kill 1"]}})), None);
    }

    #[test]
    fn image_ids_name_the_repository() {
        assert!(image_id("pingcap/pd:v8.5.0").starts_with("docker.io/pingcap/pd@sha256:"));
        assert!(image_id("busybox").starts_with("docker.io/library/busybox@sha256:"));
        assert_eq!(hex64("x").len(), 64);
    }

    fn state(phases: Vec<Phase>) -> PodState {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"nodeName": "n",
            "containers": phases.iter().enumerate().map(|(i, _)| json!({"name": format!("c{i}"), "image": "i"})).collect::<Vec<_>>()}});
        let mut st = new_state(&pod);
        for (c, p) in st.containers.iter_mut().zip(phases) {
            c.ever_started = !matches!(p, Phase::Waiting { .. });
            c.phase = p;
        }
        st
    }

    #[test]
    fn phases_follow_the_containers() {
        let node = json!({"status": {"addresses": [{"type": "InternalIP", "address": "127.3.0.2"}]}});
        let pod = json!({"status": {}});
        let creating = build_status(
            &state(vec![Phase::Waiting { reason: "ContainerCreating".into(), message: String::new() }]),
            &pod,
            &node,
            "t",
        );
        assert_eq!(creating["phase"], "Pending");
        assert_eq!(creating["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");
        assert_eq!(creating["hostIP"], "127.3.0.2");
        let mut running = state(vec![Phase::Running { started_at: "t".into(), since: SimInstant::default() }]);
        running.ip = Some(Ipv4Addr::new(127, 1, 0, 1));
        let s = build_status(&running, &pod, &node, "t");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "127.1.0.1");
        let ready = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["message"], "containers with unready status: [c0]");
        running.containers[0].ready = true;
        let s = build_status(&running, &pod, &node, "t");
        let types: Vec<&str> =
            s["conditions"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]);
        assert!(s["conditions"].as_array().unwrap().iter().all(|c| c["status"] == "True"));
        let failed = build_status(&state(vec![Phase::Terminated(json!({"exitCode": 1}))]), &pod, &node, "t");
        assert_eq!(failed["phase"], "Failed");
        let done = build_status(&state(vec![Phase::Terminated(json!({"exitCode": 0}))]), &pod, &node, "t");
        assert_eq!(done["phase"], "Succeeded");
    }
}
