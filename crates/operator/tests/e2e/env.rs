//! One end-to-end environment: the harness (kube-sim + pd-sim + the safety watcher),
//! `examples/basic` applied as a user would, and the operator running on its own task
//! exactly as the playground wires it (kubeconfig, proxy into the pod network,
//! shutdown signal, the simulated clock).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use kube_sim::{DeleteOptions, ListOptions, PatchType, RequestRecord, ResourceRef, StoreClient, Verb};
use serde_json::{Value, json};
use sim_harness::{Harness, HarnessConfig, PdCluster, PdWrite};
use tikv_operator::playground::timing::{SimulatedClock, SimulatedTimestamps};
use tikv_operator::playground::{apply, progress};
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names::{ANNOTATION_EVICT_LEADER_STORE, LABEL_INSTANCE};
use tikv_operator_controllers::OperatorConfig;
use tikv_operator_controllers::metrics::Metrics;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Simulated-clock speed: PD and Kubernetes timings (and the operator's clock, which
/// measures ages and stalls) pass 20x faster than real time. The operator's timers
/// (requeues, PD polls) run on that clock too in [`Env::start_on_simulated_timers`], as
/// in the playground; the other scenarios still run them in real time (see
/// [`Timers`]).
pub const SPEED: f64 = 20.0;
pub const NS: &str = "default";
pub const CLUSTER: &str = "basic";
pub const PD_GROUP: &str = "pd";
pub const TIKV_GROUP: &str = "tikv";
/// Real-time bound on any single wait (never asserted as a timing, only a deadline).
pub const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(100);
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The User-Agent of an SRE's pd-ctl, for PD writes that are not the operator's.
pub const PD_CTL: &str = "pd-ctl/v8.5.0";

pub struct Env {
    pub h: Harness,
    /// The in-process client of a user (`kubectl`), for changes the tests make.
    pub user: StoreClient,
    stop: watch::Sender<bool>,
    operator: Option<OperatorTask>,
    /// The running operator's metrics (a restarted operator starts new ones).
    pub metrics: Arc<Metrics>,
    /// The one namespace the operator watches (`--namespace`), if any.
    namespace: Option<String>,
    /// The operator's kubeconfig: the chart's ServiceAccount's token.
    kubeconfig: PathBuf,
    timers: Timers,
    /// The operator's requests RBAC refused (403), as `verb resource in namespace`.
    refused: Arc<Mutex<Vec<String>>>,
}

pub fn r(plural: &str) -> ResourceRef {
    match plural {
        "pods" | "nodes" | "persistentvolumeclaims" | "services" | "configmaps" | "secrets" => {
            ResourceRef::new("", "v1", plural)
        }
        "poddisruptionbudgets" => ResourceRef::new("policy", "v1", plural),
        _ => ResourceRef::new(tikv_operator_api::GROUP, tikv_operator_api::VERSION, plural),
    }
}

impl Env {
    /// Harness up, CRDs installed, `examples/basic` applied (minReadySeconds 0), and
    /// the operator started.
    pub async fn start() -> Env {
        Env::start_with(|_| {}).await
    }

    /// [`start`](Self::start) with the operator's timers on the simulated clock too, as
    /// the playground runs it.
    pub async fn start_on_simulated_timers() -> Env {
        let (h, docs) = Env::harness_and_examples().await;
        Env::launch_with(h, &docs, None, Timers::Simulated)
    }

    /// [`start`](Self::start), with `customize` changing the documents of
    /// `examples/basic` before they are applied.
    pub async fn start_with(customize: impl FnOnce(&mut [apply::Document])) -> Env {
        let (h, mut docs) = Env::harness_and_examples().await;
        customize(&mut docs);
        Env::launch(h, &docs)
    }

    /// The harness the scenarios run on (20x), and `examples/basic` with
    /// minReadySeconds 0.
    async fn harness_and_examples() -> (Harness, Vec<apply::Document>) {
        let config = HarnessConfig {
            nodes: 6,
            zones: 3,
            speed: SPEED,
            watch_delay: Duration::from_millis(50),
            ..HarnessConfig::fast()
        };
        let h = Harness::start(config).await.expect("harness starts");
        let mut docs = basic();
        for doc in &mut docs {
            if matches!(doc.kind(), "PDGroup" | "TiKVGroup") {
                doc.object["spec"]["minReadySeconds"] = json!(0);
            }
        }
        (h, docs)
    }

    /// `n` copies of `examples/basic`, one per namespace (returned), applied in one go
    /// as one `kubectl apply` of them all would, with small resource requests so that
    /// they fit on the simulated nodes; then the operator started.
    ///
    /// The simulators run slower (5x) and with few regions: twenty PD clusters and
    /// sixty stores heartbeating at 20x would starve the operator of CPU on a small
    /// machine.
    pub async fn start_many(n: usize) -> (Env, Vec<String>) {
        let config = HarnessConfig {
            nodes: 6,
            zones: 3,
            speed: 5.0,
            regions: 3,
            watch_delay: Duration::from_millis(50),
            ..HarnessConfig::fast()
        };
        let h = Harness::start(config).await.expect("harness starts");
        let namespaces: Vec<String> = (0..n).map(|i| format!("basic-{i:02}")).collect();
        let mut docs = Vec::new();
        for ns in &namespaces {
            for mut doc in basic() {
                doc.object["metadata"]["namespace"] = json!(ns);
                if matches!(doc.kind(), "PDGroup" | "TiKVGroup") {
                    doc.object["spec"]["minReadySeconds"] = json!(0);
                    doc.object["spec"]["template"]["spec"]["resources"] = json!({"cpu": "100m", "memory": "256Mi"});
                }
                docs.push(doc);
            }
        }
        (Env::launch(h, &docs), namespaces)
    }

    /// `examples/basic` in `namespace` (minReadySeconds 0), and the operator started
    /// with `--namespace namespace`: it watches that namespace only.
    pub async fn start_in_namespace(namespace: &str) -> Env {
        let (h, mut docs) = Env::harness_and_examples().await;
        for doc in &mut docs {
            doc.object["metadata"]["namespace"] = json!(namespace);
        }
        Env::launch_in(h, &docs, Some(namespace.to_owned()))
    }

    /// Applies `docs` and starts the operator, as the playground does (with the
    /// operator's binary in its image, for the TiKV pods' preStop hook).
    fn launch(h: Harness, docs: &[apply::Document]) -> Env {
        Env::launch_in(h, docs, None)
    }

    /// [`launch`](Self::launch) with the operator watching `namespace` only.
    fn launch_in(h: Harness, docs: &[apply::Document], namespace: Option<String>) -> Env {
        Env::launch_with(h, docs, namespace, Timers::Real)
    }

    fn launch_with(h: Harness, docs: &[apply::Document], namespace: Option<String>, timers: Timers) -> Env {
        tikv_operator::tools::register_simulated(&h, tikv_operator_controllers::DEFAULT_TOOLS_IMAGE);
        let user = h.store().client("user");
        let kubectl = h.store().client("kubectl");
        apply::install_crds(&kubectl).expect("CRDs install");
        apply::ensure_namespaces(&kubectl, docs).expect("namespaces");
        for doc in docs {
            apply::apply(&kubectl, doc).expect("apply");
        }

        let manifest = if namespace.is_some() { crate::rbac::NAMESPACED_MANIFEST } else { crate::rbac::MANIFEST };
        let kubeconfig = operator_identity(&h, manifest);
        let refused = Arc::new(Mutex::new(Vec::new()));
        let log = refused.clone();
        h.kube_sim().requests().on_record(move |r| {
            if is_operator(r) && r.code == 403 {
                let sub = r.subresource.as_deref().map(|s| format!("/{s}")).unwrap_or_default();
                let ns = r.namespace.as_deref().map(|n| format!(" in {n}")).unwrap_or_default();
                let call = format!("{} {}{sub}{ns}", r.verb, r.resource_path());
                log.lock().unwrap_or_else(PoisonError::into_inner).push(call);
            }
        });
        let (stop, operator, metrics) = spawn_operator_with(&h, &kubeconfig, namespace.clone(), timers, |_| {});
        Env { h, user, stop, operator: Some(operator), metrics, namespace, kubeconfig, timers, refused }
    }

    /// No object of a deleted Cluster is left, its volumes included (deletionPolicy
    /// Delete).
    pub fn nothing_of_the_cluster_left(&self) -> Result<(), String> {
        for plural in ["clusters", "pdgroups", "tikvgroups", "pds", "tikvs", "pods", "persistentvolumeclaims"] {
            let left = self.names(plural);
            if !left.is_empty() {
                return Err(format!("{plural} left: {left:?}"));
            }
        }
        Ok(())
    }

    /// A client acting as the operator: the chart's ServiceAccount, under its RBAC.
    pub async fn operator_client(&self) -> kube::Client {
        let file = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(file, &options).await.unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// Stops the operator as its shutdown signal does (bounded), checking it ends well.
    pub async fn stop_operator(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.operator.take() {
            let result = tokio::time::timeout(Duration::from_secs(15), task).await;
            let result = result.expect("the operator stops within 15 s of the shutdown signal");
            result.expect("the operator task ends normally").expect("the operator returns Ok");
        }
    }

    /// A new operator process: nothing of the old one's memory (caches, waits, PD
    /// views) carries over, only what it wrote to the API server.
    pub async fn restart_operator(&mut self) {
        self.restart_operator_with(|_| {}).await;
    }

    /// [`restart_operator`](Self::restart_operator) with its settings changed (another
    /// build: another tools image, ...).
    pub async fn restart_operator_with(&mut self, change: impl FnOnce(&mut OperatorConfig)) {
        self.stop_operator().await;
        let (stop, operator, metrics) =
            spawn_operator_with(&self.h, &self.kubeconfig, self.namespace.clone(), self.timers, change);
        self.stop = stop;
        self.operator = Some(operator);
        self.metrics = metrics;
    }

    /// Stops the operator (bounded), checks the watcher one last time and shuts the
    /// harness down.
    pub async fn finish(mut self) {
        self.stop_operator().await;
        self.h.watcher().assert_none();
        self.assert_nothing_refused();
        self.h.shutdown().await;
    }

    /// Panics when RBAC refused the operator a request: the chart lacks a permission
    /// the code needs (add it to deploy/helm/tikv-operator and render).
    pub fn assert_nothing_refused(&self) {
        let refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert!(refused.is_empty(), "the chart's RBAC refused the operator (403): {refused:#?}");
    }

    // ---- reading (straight from the store: not in the request log) ----

    /// The sum of the operator's samples named `name` whose labels include all of
    /// `labels` (0 when none), read from its `/metrics` exposition.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.metrics.encode();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (sample, set) = series.split_once('{').unwrap_or((series, ""));
                let wanted = sample == name && labels.iter().all(|(k, v)| set.contains(&format!("{k}=\"{v}\"")));
                wanted.then(|| value.parse::<f64>().ok()).flatten()
            })
            .sum()
    }

    pub fn list(&self, plural: &str) -> Vec<Value> {
        self.list_in(NS, plural)
    }

    pub fn list_in(&self, namespace: &str, plural: &str) -> Vec<Value> {
        let r = r(plural);
        let store = self.h.store();
        let Some(info) = store.resource(&r.group, &r.version, &r.plural) else { return Vec::new() };
        match store.list(&info, Some(namespace), &ListOptions::default()) {
            Ok(mut list) => match list["items"].take() {
                Value::Array(items) => items,
                _ => Vec::new(),
            },
            Err(_) => Vec::new(),
        }
    }

    pub fn nodes(&self) -> Vec<Value> {
        let store = self.h.store();
        let info = store.resource("", "v1", "nodes").expect("nodes");
        store.list(&info, None, &ListOptions::default()).expect("nodes list")["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn get(&self, plural: &str, name: &str) -> Option<Value> {
        self.list(plural).into_iter().find(|o| o["metadata"]["name"] == name)
    }

    pub fn names(&self, plural: &str) -> BTreeSet<String> {
        self.list(plural).iter().filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned)).collect()
    }

    /// TiKV instance name → recorded store ID.
    pub fn store_ids(&self) -> BTreeMap<String, String> {
        self.list("tikvs")
            .iter()
            .map(|t| (name(t), t["status"]["id"].as_str().unwrap_or_default().to_owned()))
            .collect()
    }

    /// What the one PD cluster the pods formed knows (an error before it formed).
    pub fn try_pd_snapshot(&self) -> Result<pd_sim::Snapshot, String> {
        let clusters = self.h.pd_clusters();
        match clusters.as_slice() {
            [one] => Ok(one.snapshot()),
            _ => Err(format!("{} PD clusters formed, want exactly one", clusters.len())),
        }
    }

    pub fn pd_snapshot(&self) -> pd_sim::Snapshot {
        self.try_pd_snapshot().unwrap()
    }

    /// A TiKV instance, or why not.
    pub fn tikv(&self, name: &str) -> Result<Value, String> {
        self.get("tikvs", name).ok_or_else(|| format!("no TiKV {name}"))
    }

    /// The store ID recorded on a TiKV instance.
    pub fn store_id(&self, tikv: &str) -> u64 {
        self.store_ids()[tikv].parse().unwrap()
    }

    /// Of the TiKV instances whose zone holds another one (without it the others stay
    /// spread over every zone), the one whose store holds the most leaders (then
    /// regions): pd-sim may leave a new store in a shared zone empty for a while, and an
    /// empty store leaves PD at once.
    pub fn tikv_sharing_a_zone(&self) -> String {
        let names = self.names("tikvs");
        let zones: BTreeMap<&String, Option<String>> = names.iter().map(|n| (n, self.zone_of(n))).collect();
        let shared = names.iter().filter(|n| zones.values().filter(|z| **z == zones[n]).count() > 1);
        let busiest = shared.max_by_key(|n| self.store_of(n).map(|s| (s.leader_count, s.region_count)));
        busiest.unwrap_or_else(|| panic!("no two TiKVs share a zone: {zones:?}")).clone()
    }

    /// The one PD cluster the pods formed, for its control knobs (faults, stalls).
    pub fn pd(&self) -> Arc<PdCluster> {
        let clusters = self.h.pd_clusters();
        assert_eq!(clusters.len(), 1, "exactly one PD cluster formed");
        clusters[0].clone()
    }

    /// The store recorded on a TiKV instance, as PD's ground truth has it.
    pub fn store_of(&self, tikv: &str) -> Option<pd_sim::StoreTruth> {
        let id: u64 = self.get("tikvs", tikv)?["status"]["id"].as_str()?.parse().ok()?;
        self.try_pd_snapshot().ok()?.store(id).cloned()
    }

    /// The stores PD's evict-leader scheduler holds (ground truth).
    pub fn evict_leader_stores(&self) -> BTreeSet<u64> {
        self.pd_snapshot().evict_leader_stores.unwrap_or_default().into_iter().collect()
    }

    /// The zone of the node an instance's pod runs on.
    pub fn zone_of(&self, instance: &str) -> Option<String> {
        let pod = self.pod_of(instance)?;
        let node = pod["spec"]["nodeName"].as_str()?;
        let node = self.nodes().into_iter().find(|n| n["metadata"]["name"] == node)?;
        node["metadata"]["labels"][ZONE_LABEL].as_str().map(str::to_owned)
    }

    /// The PVCs of an instance (by its instance label).
    pub fn pvcs_of(&self, instance: &str) -> Vec<Value> {
        self.list("persistentvolumeclaims")
            .into_iter()
            .filter(|p| p["metadata"]["labels"][LABEL_INSTANCE] == instance)
            .collect()
    }

    /// Events about `object` (any kind), as `type reason: note`, oldest first.
    pub fn events_of(&self, object: &str) -> Vec<String> {
        let store = self.h.store();
        let mut events = Vec::new();
        for (group, version) in [("events.k8s.io", "v1"), ("", "v1")] {
            let Some(info) = store.resource(group, version, "events") else { continue };
            let Ok(mut list) = store.list(&info, Some(NS), &ListOptions::default()) else { continue };
            for e in list["items"].as_array_mut().map(std::mem::take).unwrap_or_default() {
                let about = if e["regarding"].is_object() { &e["regarding"] } else { &e["involvedObject"] };
                if about["name"] != object {
                    continue;
                }
                let note = e["note"].as_str().or(e["message"].as_str()).unwrap_or_default();
                events.push(format!(
                    "{} {}: {note}",
                    e["type"].as_str().unwrap_or("?"),
                    e["reason"].as_str().unwrap_or("?")
                ));
            }
            // Both APIs serve the same Events, as in Kubernetes: one is enough.
            break;
        }
        events
    }

    /// Whether an event of this reason was recorded about `object`.
    pub fn has_event(&self, object: &str, kind: &str, reason: &str) -> bool {
        self.events_of(object).iter().any(|e| e.starts_with(&format!("{kind} {reason}:")))
    }

    /// Waits until an event of this reason about `object` is stored. The operator
    /// hands its Events to background workers, so one can land just after the state
    /// it announces is visible: an assertion on an Event waits for it.
    pub async fn wait_for_event(&self, object: &str, kind: &str, reason: &str) {
        self.wait_for(&format!("a {kind} {reason} event about {object}"), |e| {
            if e.has_event(object, kind, reason) { Ok(()) } else { Err(format!("{:#?}", e.events_of(object))) }
        })
        .await
    }

    pub fn pod_of(&self, instance: &str) -> Option<Value> {
        self.list("pods").into_iter().find(|p| p["metadata"]["labels"][LABEL_INSTANCE] == instance)
    }

    // ---- writing, as a user ----

    pub fn patch(&self, plural: &str, name: &str, patch: Value) {
        self.user.patch(&r(plural), Some(NS), name, None, PatchType::Merge, &patch).expect("user patch");
    }

    /// A user's merge patch that may be refused: the API server's message if it is.
    pub fn try_patch(&self, plural: &str, name: &str, patch: Value) -> Result<(), String> {
        self.user.patch(&r(plural), Some(NS), name, None, PatchType::Merge, &patch).map(drop).map_err(|e| e.message)
    }

    /// `kubectl cordon` (or `uncordon`) of every node: new pods cannot be scheduled.
    pub fn cordon_all(&self, cordoned: bool) {
        for node in self.nodes() {
            self.h.cluster().nodes().cordon(&name(&node), cordoned).expect("cordon");
        }
    }

    /// A PD write by an SRE's pd-ctl (not the operator): through the same proxy into
    /// the pod network, to the Cluster's PD Service, with pd-ctl's User-Agent. Returns
    /// the status and the body.
    pub async fn sre_pd(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        self.proxied(method, &format!("pd-pd.{NS}.svc:2379"), path, body).await
    }

    /// One HTTP request into the pod network through the harness' proxy, to
    /// `host:port` (a pod or Service name), with pd-ctl's User-Agent.
    pub async fn proxied(&self, method: &str, host: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let proxy = self.h.proxy_url();
        let proxy = proxy.trim_start_matches("http://").to_owned();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\
             User-Agent: {PD_CTL}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(proxy).expect("the proxy listens");
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        })
        .await
        .unwrap();
        let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    pub fn delete_pod(&self, name: &str) {
        self.delete("pods", name);
    }

    /// `kubectl delete <plural> <name>`.
    pub fn delete(&self, plural: &str, name: &str) {
        self.user.delete(&r(plural), Some(NS), name, &DeleteOptions::default()).expect("user delete");
    }

    // ---- the request logs ----

    /// The API server's store revision (for [`changes_since`](Self::changes_since)).
    pub fn revision(&self) -> u64 {
        self.h.store().revision()
    }

    /// Every message the condition `type_` of `resource`/`name` held with `reason`, in
    /// every version the API server stored since `rev`: read from the store's history,
    /// not sampled, so no step is missed however fast it went.
    pub fn condition_messages_since(
        &self,
        rev: u64,
        resource: &str,
        name: &str,
        type_: &str,
        reason: &str,
    ) -> BTreeSet<String> {
        let Some((changes, _)) = self.h.store().changes_since(rev) else {
            panic!("the API server's history no longer reaches back to revision {rev}");
        };
        changes
            .iter()
            .filter(|c| c.gr.resource == resource && c.new["metadata"]["name"] == name)
            .filter_map(|c| condition(&c.new, type_).filter(|c| c["reason"] == reason))
            .filter_map(|c| c["message"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn api_seq(&self) -> u64 {
        self.h.kube_sim().requests().next_seq()
    }

    /// Writes (every verb but get/list/watch) the operator made from `seq` on. The
    /// operator is the only client reaching kube-sim over HTTP; it names itself
    /// `tikv-operator` (field manager) on what it applies.
    pub fn operator_writes(&self, seq: u64) -> Vec<RequestRecord> {
        let (records, _) = self.h.kube_sim().requests().since(seq);
        records
            .into_iter()
            .filter(|r| is_operator(r) && !matches!(r.verb, Verb::Get | Verb::List | Verb::Watch))
            .collect()
    }

    pub fn pd_seq(&self) -> u64 {
        self.h.pd_writes().snapshot().len() as u64
    }

    pub fn operator_pd_writes(&self, seq: u64) -> Vec<PdWrite> {
        self.h.pd_writes().since(seq).into_iter().filter(|w| w.client.starts_with("tikv-operator")).collect()
    }

    /// The operator's PD writes from `seq` on, as `METHOD /path -> status` (the path
    /// without `/pd/api/v1`, the evict-leader body's store ID after the path).
    pub fn operator_pd_log(&self, seq: u64) -> Vec<String> {
        self.operator_pd_writes(seq).iter().map(describe_pd_write).collect()
    }

    /// The operator's API writes from `seq` on, as `verb resource[/subresource] name`.
    pub fn operator_api_log(&self, seq: u64) -> Vec<String> {
        self.operator_writes(seq)
            .iter()
            .map(|r| {
                let sub = r.subresource.as_deref().map(|s| format!("/{s}")).unwrap_or_default();
                format!("{} {}{sub} {}", r.verb, r.resource_path(), r.name.as_deref().unwrap_or("-"))
            })
            .collect()
    }

    /// What changed, since store revision `rev`, in the objects `requests` wrote: each
    /// change's fields that differ (`resource ns/name: path: old -> new`), to say why
    /// the operator wrote when it should not have.
    pub fn changes_since(&self, rev: u64, requests: &[RequestRecord]) -> Vec<String> {
        let written: BTreeSet<(String, String, String)> = requests
            .iter()
            .filter(|r| r.verb != Verb::Watch && r.verb != Verb::Get && r.verb != Verb::List)
            .map(|r| (r.resource.clone(), r.namespace.clone().unwrap_or_default(), r.name.clone().unwrap_or_default()))
            .collect();
        let Some((changes, _)) = self.h.store().changes_since(rev) else {
            return vec!["(history compacted)".to_owned()];
        };
        let mut out = Vec::new();
        for c in changes {
            let ns = c.new["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
            let name = c.new["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            if !written.contains(&(c.gr.resource.clone(), ns.clone(), name.clone())) {
                continue;
            }
            let mut diffs = Vec::new();
            json_diff("", c.old.as_deref().unwrap_or(&Value::Null), &c.new, &mut diffs);
            diffs.retain(|d| !d.starts_with("metadata."));
            out.push(format!("{} {ns}/{name}: {}", c.gr.resource, diffs.join("; ")));
        }
        out
    }

    /// Asserts that, Ready and settled, a simulated minute makes no operator API
    /// request (but watches) and no PD write.
    pub async fn assert_idle_for_a_minute(&self) {
        self.settle(Duration::from_secs(2)).await;
        let (api, pd) = (self.api_seq(), self.pd_seq());
        let rev = self.h.store().revision();
        self.let_time_pass(Duration::from_secs(60), Duration::from_secs(5)).await;
        // Reads come from the watch caches: idle, the operator asks the API server nothing.
        let (all, _) = self.h.kube_sim().requests().since(api);
        let requests: Vec<String> = all
            .iter()
            .filter(|r| is_operator(r) && r.verb != Verb::Watch)
            .map(|r| {
                format!(
                    "{} {} {}/{}",
                    r.verb,
                    r.resource_path(),
                    r.namespace.as_deref().unwrap_or("-"),
                    r.name.as_deref().unwrap_or("-")
                )
            })
            .collect();
        assert!(
            requests.is_empty(),
            "idle cluster: the operator made API requests: {requests:#?}\nwhat changed meanwhile: {:#?}",
            self.changes_since(rev, &all.iter().filter(|r| is_operator(r)).cloned().collect::<Vec<_>>())
        );
        let pd_writes = self.operator_pd_log(pd);
        assert!(pd_writes.is_empty(), "idle cluster: the operator wrote to PD: {pd_writes:#?}");
    }

    // ---- waiting ----

    /// Polls `check` until it is Ok, for at most [`DEADLINE`] of real time; panics
    /// with its last complaint and the whole view otherwise. Fails fast when the
    /// operator stops or the safety watcher reports a breach.
    pub async fn wait_for<T>(&self, what: &str, check: impl FnMut(&Env) -> Result<T, String>) -> T {
        self.wait_for_within(what, DEADLINE, check).await
    }

    /// [`wait_for`](Self::wait_for) with another real-time bound.
    pub async fn wait_for_within<T>(
        &self,
        what: &str,
        deadline: Duration,
        mut check: impl FnMut(&Env) -> Result<T, String>,
    ) -> T {
        let started = Instant::now();
        loop {
            let last = match check(self) {
                Ok(t) => return t,
                Err(e) => e,
            };
            self.h.watcher().assert_none();
            self.assert_nothing_refused();
            if self.operator.as_ref().is_some_and(|t| t.is_finished()) {
                panic!("the operator stopped while waiting for {what}; last: {last}");
            }
            if started.elapsed() > deadline {
                let observed = progress::read(self.h.store(), &self.h.pd_clusters());
                panic!(
                    "{what}: not within {}s (real time); last: {last}\nview:\n{}",
                    deadline.as_secs(),
                    progress::table(&progress::rows(&observed), &observed)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the simulated clock moved `sim` and at least `real` passed.
    pub async fn let_time_pass(&self, sim: Duration, real: Duration) {
        let clock = self.h.clock();
        let from = clock.now();
        let started = Instant::now();
        while clock.now().saturating_duration_since(from) < sim || started.elapsed() < real {
            self.h.watcher().assert_none();
            self.assert_nothing_refused();
            assert!(
                started.elapsed() < DEADLINE,
                "{}s of simulated time did not pass within {}s (real time): only {:?}",
                sim.as_secs(),
                DEADLINE.as_secs(),
                clock.now().saturating_duration_since(from)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the operator made no API write for `quiet` of real time (bounded):
    /// the tail of what it did reaching Ready is allowed to land first.
    pub async fn settle(&self, quiet: Duration) {
        let started = Instant::now();
        let mut seq = self.api_seq();
        let mut since = Instant::now();
        while since.elapsed() < quiet {
            assert!(started.elapsed() < DEADLINE, "the operator never stops writing: {:?}", self.operator_writes(seq));
            tokio::time::sleep(POLL).await;
            if !self.operator_writes(seq).is_empty() {
                seq = self.api_seq();
                since = Instant::now();
            }
        }
    }

    // ---- the converged state, every status and condition ----

    /// Ok once the cluster is Ready with `pd` members and `kv` stores and every status
    /// says so; the first difference otherwise.
    pub fn converged(&self, pd: usize, kv: usize) -> Result<(), String> {
        let snapshot = self.try_pd_snapshot()?;
        let cluster = self.get("clusters", CLUSTER).ok_or("no Cluster")?;
        let status = &cluster["status"];
        check_condition(&cluster, types::READY, "True", reasons::READY)?;
        check_condition(&cluster, types::SYNCED, "True", reasons::SYNCED)?;
        check_condition(&cluster, types::PAUSED, "False", reasons::UNPAUSED)?;
        check_condition(&cluster, types::PROGRESSING, "False", reasons::STABLE)?;
        check_observed(&cluster)?;
        expect_eq("Cluster status.pd", status["pd"].as_str(), Some("http://pd-pd.default.svc:2379"))?;
        expect_eq("Cluster status.id", status["id"].as_str(), Some(snapshot.cluster_id.to_string().as_str()))?;
        let components = json!([
            {"kind": "PD", "replicas": pd, "readyReplicas": pd},
            {"kind": "TiKV", "replicas": kv, "readyReplicas": kv},
        ]);
        expect_eq("Cluster status.components", &status["components"], &components)?;

        let pds = self.group_converged("pdgroups", PD_GROUP, "pds", pd)?;
        let tikvs = self.group_converged("tikvgroups", TIKV_GROUP, "tikvs", kv)?;

        // PD: every member recorded with PD's own ID, exactly one leader, PD's.
        let members: BTreeMap<&str, u64> =
            snapshot.members.iter().filter(|m| m.in_etcd).map(|m| (m.name.as_str(), m.member_id)).collect();
        expect_eq("PD members in etcd", members.len(), pd)?;
        if snapshot.members.iter().any(|m| m.in_etcd && !m.running) {
            return Err("a PD member is not running".into());
        }
        let ids: BTreeSet<String> = pds.iter().filter_map(|p| p["status"]["id"].as_str().map(str::to_owned)).collect();
        let truth: BTreeSet<String> = members.values().map(u64::to_string).collect();
        expect_eq("PD member IDs recorded (PD objects vs pd-sim)", &ids, &truth)?;
        let leaders: Vec<&Value> = pds.iter().filter(|p| p["status"]["isLeader"] == true).collect();
        expect_eq("PDs marked leader", leaders.len(), 1)?;
        let leader_id = snapshot.leader.as_deref().and_then(|l| members.get(l)).map(u64::to_string);
        expect_eq("the leader's member ID", leaders[0]["status"]["id"].as_str().map(str::to_owned), leader_id)?;

        // TiKV: every store recorded, Serving, and Up in PD; no other store in PD.
        let mut ids = BTreeSet::new();
        for t in &tikvs {
            expect_eq(&format!("TiKV {} state", name(t)), t["status"]["state"].as_str(), Some("Serving"))?;
            let id = t["status"]["id"].as_str().ok_or_else(|| format!("TiKV {} has no store ID", name(t)))?;
            if !ids.insert(id.to_owned()) {
                return Err(format!("store ID {id} recorded twice"));
            }
        }
        let up: BTreeSet<String> =
            snapshot.stores.iter().filter(|s| s.state_name == "Up").map(|s| s.id.to_string()).collect();
        expect_eq("stores Up in PD vs recorded", &up, &ids)?;
        // Tombstone records of stores taken offline stay in PD (until remove-tombstone).
        let live = snapshot.stores.iter().filter(|s| s.state_name != "Tombstone").count();
        expect_eq("stores in PD (not Tombstone)", live, kv)?;

        // Pods: spread over the three zones of the EvenlySpread policy.
        self.spread("pd", &pds)?;
        self.spread("tikv", &tikvs)?;
        Ok(())
    }

    /// Ok once the copy of `examples/basic` in `namespace` formed its own PD cluster
    /// with `pd` running members and `kv` Up stores, each recorded on its instance, and
    /// the Cluster, both groups and every instance are Ready; the first difference
    /// otherwise.
    pub fn cluster_ready_in(&self, namespace: &str, pd: usize, kv: usize) -> Result<(), String> {
        let clusters: Vec<_> = self.h.pd_clusters().into_iter().filter(|c| c.namespace == namespace).collect();
        let [one] = clusters.as_slice() else {
            return Err(format!("{namespace}: {} PD clusters formed, want exactly one", clusters.len()));
        };
        let snapshot = one.snapshot();
        let get = |plural: &str, n: &str| {
            self.list_in(namespace, plural)
                .into_iter()
                .find(|o| o["metadata"]["name"] == n)
                .ok_or_else(|| format!("{namespace}: no {plural}/{n}"))
        };
        let at = |e: String| format!("{namespace}: {e}");
        check_condition(&get("clusters", CLUSTER)?, types::READY, "True", reasons::READY).map_err(at)?;
        check_condition(&get("pdgroups", PD_GROUP)?, types::READY, "True", reasons::READY).map_err(at)?;
        check_condition(&get("tikvgroups", TIKV_GROUP)?, types::READY, "True", reasons::READY).map_err(at)?;

        let members: BTreeSet<String> =
            snapshot.members.iter().filter(|m| m.in_etcd && m.running).map(|m| m.member_id.to_string()).collect();
        expect_eq(&format!("{namespace}: running PD members"), members.len(), pd)?;
        let pds = self.list_in(namespace, "pds");
        expect_eq(&format!("{namespace}: PD instances"), pds.len(), pd)?;
        for p in &pds {
            check_condition(p, types::READY, "True", reasons::READY).map_err(at)?;
        }
        let ids: BTreeSet<String> = pds.iter().filter_map(|p| p["status"]["id"].as_str().map(str::to_owned)).collect();
        expect_eq(&format!("{namespace}: PD member IDs recorded vs pd-sim"), &ids, &members)?;

        let up: BTreeSet<String> =
            snapshot.stores.iter().filter(|s| s.state_name == "Up").map(|s| s.id.to_string()).collect();
        expect_eq(&format!("{namespace}: stores Up"), up.len(), kv)?;
        let tikvs = self.list_in(namespace, "tikvs");
        expect_eq(&format!("{namespace}: TiKV instances"), tikvs.len(), kv)?;
        for t in &tikvs {
            check_condition(t, types::READY, "True", reasons::READY).map_err(at)?;
        }
        let ids: BTreeSet<String> =
            tikvs.iter().filter_map(|t| t["status"]["id"].as_str().map(str::to_owned)).collect();
        expect_eq(&format!("{namespace}: store IDs recorded vs Up in PD"), &ids, &up)?;
        Ok(())
    }

    /// The group's status and its `n` instances, each Ready and Synced, with a Running
    /// and ready pod.
    fn group_converged(&self, plural: &str, group: &str, instances: &str, n: usize) -> Result<Vec<Value>, String> {
        let g = self.get(plural, group).ok_or_else(|| format!("no {plural}/{group}"))?;
        let s = &g["status"];
        check_condition(&g, types::READY, "True", reasons::READY)?;
        check_condition(&g, types::SYNCED, "True", reasons::SYNCED)?;
        check_observed(&g)?;
        expect_eq(&format!("{group} spec.replicas"), g["spec"]["replicas"].as_u64(), Some(n as u64))?;
        for field in ["replicas", "readyReplicas", "updatedReplicas", "currentReplicas"] {
            expect_eq(&format!("{group} status.{field}"), s[field].as_u64(), Some(n as u64))?;
        }
        let update = s["updateRevision"].as_str().filter(|r| !r.is_empty());
        let current = s["currentRevision"].as_str();
        if update.is_none() || update != current {
            return Err(format!("{group} revisions: current {current:?} update {update:?}"));
        }
        let selector = s["selector"].as_str().filter(|s| !s.is_empty()).ok_or(format!("{group} has no selector"))?;

        let items: Vec<Value> =
            self.list(instances).into_iter().filter(|i| i["metadata"]["labels"]["tikv.org/group"] == group).collect();
        expect_eq(&format!("{group} instances"), items.len(), n)?;
        let all = self.list(instances);
        let selected = all.iter().filter(|i| matches_selector(selector, &i["metadata"]["labels"])).count();
        expect_eq(&format!("{instances} the selector {selector:?} matches"), selected, n)?;
        for i in &items {
            let what = format!("{} {}", &instances[..instances.len() - 1], name(i));
            check_condition(i, types::READY, "True", reasons::READY).map_err(|e| format!("{what}: {e}"))?;
            check_condition(i, types::SYNCED, "True", reasons::SYNCED).map_err(|e| format!("{what}: {e}"))?;
            check_observed(i).map_err(|e| format!("{what}: {e}"))?;
            let revision = i["metadata"]["labels"]["tikv.org/instance-revision-hash"].as_str();
            expect_eq(&format!("{what} revision"), revision, update)?;
            let pod = self.pod_of(&name(i)).ok_or_else(|| format!("{what} has no pod"))?;
            expect_eq(&format!("{what} pod phase"), pod["status"]["phase"].as_str(), Some("Running"))?;
        }
        Ok(items)
    }

    /// The instances' pods over the zones: 3 zones, counts within one of each other.
    fn spread(&self, what: &str, instances: &[Value]) -> Result<(), String> {
        let zones: BTreeMap<String, String> = self
            .nodes()
            .iter()
            .map(|n| (name(n), n["metadata"]["labels"][ZONE_LABEL].as_str().unwrap_or_default().to_owned()))
            .collect();
        let mut per_zone: BTreeMap<String, usize> = zones.values().map(|z| (z.clone(), 0)).collect::<BTreeMap<_, _>>();
        for i in instances {
            let pod = self.pod_of(&name(i)).ok_or("no pod")?;
            let node = pod["spec"]["nodeName"].as_str().ok_or_else(|| format!("pod of {} unscheduled", name(i)))?;
            *per_zone.entry(zones.get(node).cloned().unwrap_or_default()).or_default() += 1;
        }
        let (min, max) = (per_zone.values().min().copied(), per_zone.values().max().copied());
        expect_eq(&format!("{what} zones"), per_zone.len(), 3)?;
        if max.unwrap_or(0) - min.unwrap_or(0) > 1 {
            return Err(format!("{what} pods not evenly spread over zones: {per_zone:?}"));
        }
        Ok(())
    }

    /// The workload probe (issue #15) on the one PD cluster: a key written through its
    /// regions every 200 ms of simulated time from now on.
    pub fn start_probe(&self) -> sim_harness::WorkloadProbe {
        let config = sim_harness::ProbeConfig::default();
        sim_harness::WorkloadProbe::start(self.pd().control(), self.h.clock().clone(), config)
    }

    /// Stops the probe and fails the test if an acknowledged write was lost (no quorum
    /// of its region holds it); says how many writes were refused and why.
    pub fn verify_probe(&self, probe: &sim_harness::WorkloadProbe) {
        let verdict = probe.verify();
        let report = probe.report();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for refusal in &report.refused {
            let kind = serde_json::to_value(&refusal.reason).ok();
            let kind = kind.as_ref().and_then(|v| v["reason"].as_str()).unwrap_or("?").to_owned();
            *reasons.entry(kind).or_default() += 1;
        }
        eprintln!(
            "probe: {} writes acknowledged, {} refused {reasons:?}, {} lost, {} unreadable at the end",
            verdict.acknowledged,
            verdict.refused,
            verdict.lost.len(),
            verdict.unreadable.len()
        );
        assert!(verdict.acknowledged > 0, "the probe wrote nothing: {report:?}");
        verdict.assert_nothing_lost();
    }
}

type OperatorTask = JoinHandle<Result<(), tikv_operator_controllers::Error>>;

/// What the operator's timers run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timers {
    /// The simulated clock (timestamps and timers), as in the playground.
    Simulated,
    /// Timestamps on the simulated clock, timers in real time with short PD polls (200
    /// ms while waiting, 2 s otherwise): how the scenarios were written. Under
    /// simulated timers some of them fail (the operator acts 20x sooner against
    /// kube-sim's real-time watch delay; issue #16's report lists them).
    Real,
}

/// The operator on its own task, as the playground runs it, watching `namespace` (every
/// namespace with `None`), with `change` made to its settings.
fn spawn_operator_with(
    h: &Harness,
    kubeconfig: &Path,
    namespace: Option<String>,
    timers: Timers,
    change: impl FnOnce(&mut OperatorConfig),
) -> (watch::Sender<bool>, OperatorTask, Arc<Metrics>) {
    let (stop, stop_rx) = watch::channel(false);
    let shutdown = async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
    }
    .boxed()
    .shared();
    let mut operator = OperatorConfig { pd_proxy: Some(h.proxy_url()), namespace, ..OperatorConfig::default() };
    if timers == Timers::Real {
        operator.timing.pd_poll_fast = Duration::from_millis(200);
        operator.timing.pd_poll_slow = Duration::from_secs(2);
        operator.timing.pd_poll_idle = Duration::from_secs(2);
    }
    change(&mut operator);
    let kubeconfig = kubeconfig.to_owned();
    let clock: Arc<dyn tikv_operator_controllers::Clock> = match timers {
        Timers::Simulated => Arc::new(SimulatedClock::new(h.clock().clone())),
        Timers::Real => Arc::new(SimulatedTimestamps(h.clock().clone())),
    };
    let metrics = Arc::new(Metrics::default());
    let task = tokio::spawn(tikv_operator_controllers::run_until_with_metrics(
        kubeconfig,
        operator,
        clock,
        metrics.clone(),
        shutdown,
    ));
    (stop, task, metrics)
}

/// The operator's identity, as the rendered `manifest` installs it: its Namespace,
/// ServiceAccount and RBAC objects applied (nothing else of the manifest: kube-sim runs
/// no Deployment), and a kubeconfig presenting that ServiceAccount's token, returned.
/// kube-sim then authorizes every request of the operator by exactly the chart's rules:
/// a call they do not allow fails as on a real cluster (403).
fn operator_identity(h: &Harness, manifest: &str) -> PathBuf {
    let docs = crate::rbac::manifest_documents(manifest);
    let admin = h.store().client("kubectl");
    let identity: Vec<apply::Document> = docs
        .into_iter()
        .filter(|d| {
            matches!(
                d.kind(),
                "Namespace" | "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding"
            )
        })
        .collect();
    apply::ensure_namespaces(&admin, &identity.iter().filter(|d| d.kind() != "Namespace").cloned().collect::<Vec<_>>())
        .expect("the manifest's namespaces");
    for doc in identity.iter().filter(|d| d.kind() != "Namespace") {
        apply::apply(&admin, doc).unwrap_or_else(|e| panic!("applying {} {}: {e:#}", doc.kind(), doc.name()));
    }
    let (namespace, name) = crate::rbac::Rbac::service_account(&crate::rbac::manifest_documents(manifest));
    let token = h.kube_sim().service_account_token(&namespace, &name);
    let path = h.kubeconfig_path().with_extension("operator.kubeconfig");
    h.kube_sim().write_kubeconfig_with_token(&path, &token).expect("the operator's kubeconfig is written");
    path
}

/// The documents of `examples/basic`, as a user has them.
fn basic() -> Vec<apply::Document> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
    apply::read_dir(&examples).expect("examples/basic reads")
}

/// `DELETE /store/4 -> 200`, `POST /schedulers {store 4} -> 200`.
pub fn describe_pd_write(w: &PdWrite) -> String {
    let path = w.path.strip_prefix("/pd/api/v1").unwrap_or(&w.path);
    let body: Value = serde_json::from_slice(&w.body).unwrap_or(Value::Null);
    let store = body["store_id"].as_u64().map(|id| format!(" {{store {id}}}")).unwrap_or_default();
    format!("{} {path}{store} -> {}", w.method, w.status)
}

/// The user the operator acts as: the chart's ServiceAccount (see [`operator_identity`]).
pub const OPERATOR_USER: &str = "system:serviceaccount:tikv-operator:tikv-operator";

/// A request the operator made (not a test's, a user's kubectl's or a simulator's).
pub fn is_operator(r: &RequestRecord) -> bool {
    r.user == OPERATOR_USER
}

/// The store ID an instance records its evict-leader entry for, if any.
pub fn evict_annotation(o: &Value) -> Option<String> {
    o["metadata"]["annotations"][ANNOTATION_EVICT_LEADER_STORE].as_str().map(str::to_owned)
}

pub fn name(o: &Value) -> String {
    o["metadata"]["name"].as_str().unwrap_or_default().to_owned()
}

pub fn condition<'v>(o: &'v Value, type_: &str) -> Option<&'v Value> {
    o["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

pub fn check_condition(o: &Value, type_: &str, status: &str, reason: &str) -> Result<(), String> {
    let c = condition(o, type_).ok_or_else(|| format!("{} has no {type_} condition", name(o)))?;
    if c["status"] != status || c["reason"] != reason {
        return Err(format!("{} {type_}: want {status}/{reason}, have {c}", name(o)));
    }
    if !c["observedGeneration"].is_null() && c["observedGeneration"] != o["metadata"]["generation"] {
        return Err(format!("{} {type_} is about generation {}", name(o), c["observedGeneration"]));
    }
    Ok(())
}

fn check_observed(o: &Value) -> Result<(), String> {
    expect_eq(
        &format!("{} status.observedGeneration", name(o)),
        &o["status"]["observedGeneration"],
        &o["metadata"]["generation"],
    )
}

pub fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, have: T, want: T) -> Result<(), String> {
    if have == want { Ok(()) } else { Err(format!("{what}: have {have:?}, want {want:?}")) }
}

/// `a=b,c=d` (equality terms only, which is what the groups publish).
fn matches_selector(selector: &str, labels: &Value) -> bool {
    selector.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => labels[k.trim()] == v.trim().trim_start_matches('='),
        None => false,
    })
}

/// The leaf paths where `a` and `b` differ, as `path: a -> b`.
fn json_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                json_diff(&sub, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}
