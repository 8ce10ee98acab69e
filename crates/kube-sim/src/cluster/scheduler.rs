//! kube-scheduler (`default-scheduler`): binds pending pods to a node that passes the
//! filters kube-scheduler runs, in its order (NodeUnschedulable, NodeName,
//! TaintToleration, NodeAffinity, NodeResourcesFit, VolumeBinding/VolumeZone,
//! PodTopologySpread, InterPodAffinity), and explains a failure the way it does:
//! `PodScheduled=False` with reason `Unschedulable` and a `FailedScheduling` Event
//! carrying `0/3 nodes are available: ...`.
//!
//! WaitForFirstConsumer: the chosen node is written to the claims' annotation
//! `volume.kubernetes.io/selected-node`, and the pod is bound only once the provisioner
//! bound them (kube-scheduler's PreBind waits the same way).

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use sim_clock::SimInstant;
use tokio::sync::watch;

use super::events::{EventType, Recorder, Source};
use super::objects::{
    NODES, PODS, PVCS, PVS, STORAGE_CLASSES, ZONE, condition, get, is_terminal, labels, list, map_matches, now_time,
    pod_claims, quantity, set_condition, str_of,
};
use super::{Timings, Wake};
use crate::patch::PatchType;
use crate::selectors::LabelSelector;
use crate::store::{Change, ChangeKind, Store};

pub const NAME: &str = "default-scheduler";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

/// Why a node was filtered out, worded as kube-scheduler words it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reject {
    Unschedulable,
    NodeName,
    Taint(String),
    NodeAffinity,
    Insufficient(Vec<&'static str>),
    TooManyPods,
    VolumeNodeAffinity,
    NoVolumeToBind,
    TopologySpread,
    PodAffinity,
    PodAntiAffinity,
}

impl Reject {
    fn texts(&self) -> Vec<String> {
        match self {
            Reject::Unschedulable => vec!["node(s) were unschedulable".into()],
            Reject::NodeName => vec!["node(s) didn't match the requested node name".into()],
            Reject::Taint(t) => vec![format!("node(s) had untolerated taint {t}")],
            Reject::NodeAffinity => vec!["node(s) didn't match Pod's node affinity/selector".into()],
            Reject::Insufficient(rs) => rs.iter().map(|r| format!("Insufficient {r}")).collect(),
            Reject::TooManyPods => vec!["Too many pods".into()],
            Reject::VolumeNodeAffinity => vec!["node(s) had volume node affinity conflict".into()],
            Reject::NoVolumeToBind => vec!["node(s) didn't find available persistent volumes to bind".into()],
            Reject::TopologySpread => vec!["node(s) didn't match pod topology spread constraints".into()],
            Reject::PodAffinity => vec!["node(s) didn't match pod affinity rules".into()],
            Reject::PodAntiAffinity => vec!["node(s) didn't match pod anti-affinity rules".into()],
        }
    }

    /// Preemption could help only when resources are short.
    fn preemptable(&self) -> bool {
        matches!(self, Reject::Insufficient(_) | Reject::TooManyPods)
    }
}

/// kube-scheduler's summary of a failed attempt over `total` nodes.
pub fn failure_message(total: usize, rejects: &[Reject]) -> String {
    if total == 0 {
        return "no nodes available to schedule pods".into();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in rejects {
        for t in r.texts() {
            *counts.entry(t).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    parts.sort();
    let victims = rejects.iter().filter(|r| r.preemptable()).count();
    let hopeless = rejects.len() - victims;
    let mut pre = Vec::new();
    if victims > 0 {
        pre.push(format!("{victims} No preemption victims found for incoming pod"));
    }
    if hopeless > 0 {
        pre.push(format!("{hopeless} Preemption is not helpful for scheduling"));
    }
    format!(
        "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {}.",
        parts.join(", "),
        pre.join(", ")
    )
}

/// A failure of the whole pod, before any node is looked at.
pub fn pod_failure_message(total: usize, why: &str) -> String {
    format!(
        "0/{total} nodes are available: {why}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
    )
}

/// One node-selector requirement (`matchExpressions` of node affinity).
pub fn requirement_matches(req: &Value, labels: &BTreeMap<String, String>) -> bool {
    let key = req["key"].as_str().unwrap_or_default();
    let values: Vec<&str> = req["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let value = labels.get(key);
    match req["operator"].as_str().unwrap_or_default() {
        "In" => value.is_some_and(|v| values.contains(&v.as_str())),
        "NotIn" => value.is_none_or(|v| !values.contains(&v.as_str())),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), Some(bound)) =
                (value.and_then(|v| v.parse::<i64>().ok()), values.first().and_then(|b| b.parse::<i64>().ok()))
            else {
                return false;
            };
            if op == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// A `nodeSelectorTerm`: all of its expressions and fields hold (an empty term matches nothing).
pub fn term_matches(term: &Value, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
    let exprs = term["matchExpressions"].as_array().map(Vec::as_slice).unwrap_or_default();
    let fields = term["matchFields"].as_array().map(Vec::as_slice).unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    if !exprs.iter().all(|e| requirement_matches(e, labels)) {
        return false;
    }
    if fields.is_empty() {
        return true;
    }
    let name_labels: BTreeMap<String, String> = [("metadata.name".to_string(), node_name.to_string())].into();
    fields.iter().all(|f| requirement_matches(f, &name_labels))
}

/// `nodeSelector` and required node affinity.
pub fn node_affinity_matches(pod: &Value, node: &Value) -> bool {
    affinity_matches(pod, str_of(node, &["metadata", "name"]), &labels(node))
}

/// [`node_affinity_matches`] with the node's labels worked out already.
fn affinity_matches(pod: &Value, name: &str, node_labels: &BTreeMap<String, String>) -> bool {
    if !map_matches(&pod["spec"]["nodeSelector"], node_labels) {
        return false;
    }
    let required = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    match required["nodeSelectorTerms"].as_array() {
        Some(terms) => terms.iter().any(|t| term_matches(t, name, node_labels)),
        None => true,
    }
}

pub fn tolerates(tolerations: &Value, taint: &Value) -> bool {
    tolerations.as_array().into_iter().flatten().any(|t| {
        let key = t["key"].as_str().unwrap_or_default();
        let op = t["operator"].as_str().unwrap_or("Equal");
        let effect = t["effect"].as_str().unwrap_or_default();
        if !effect.is_empty() && taint["effect"] != effect {
            return false;
        }
        if key.is_empty() {
            return op == "Exists";
        }
        if taint["key"] != key {
            return false;
        }
        op == "Exists" || t["value"].as_str().unwrap_or_default() == taint["value"].as_str().unwrap_or_default()
    })
}

/// The first NoSchedule/NoExecute taint the pod does not tolerate, as `{key: value}`.
pub fn untolerated_taint(pod: &Value, node: &Value) -> Option<String> {
    node["spec"]["taints"].as_array().into_iter().flatten().find_map(|taint| {
        let effect = taint["effect"].as_str().unwrap_or_default();
        if effect != "NoSchedule" && effect != "NoExecute" {
            return None;
        }
        if tolerates(&pod["spec"]["tolerations"], taint) {
            return None;
        }
        Some(format!("{{{}: {}}}", str_of(taint, &["key"]), str_of(taint, &["value"])))
    })
}

/// CPU (cores) and memory (bytes) a pod requests: requests, or limits where requests are unset.
pub fn pod_requests(pod: &Value) -> (f64, f64) {
    let mut cpu = 0.0;
    let mut mem = 0.0;
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let get = |r: &str| {
            let req = &c["resources"]["requests"][r];
            if req.is_null() { quantity(&c["resources"]["limits"][r]) } else { quantity(req) }
        };
        cpu += get("cpu");
        mem += get("memory");
    }
    (cpu, mem)
}

/// A node's score for a pod (lower is better), ending with the node name as tie-break.
pub type Score = (i64, i64, i64, i64, i64, String);

/// A node as the filters and scores read it: its name, labels and allocatable worked
/// out once per pass (kube-scheduler's NodeInfo), not once per pod and node.
pub struct NodeInfo {
    pub node: Arc<Value>,
    name: String,
    labels: BTreeMap<String, String>,
    /// Allocatable CPU (cores), memory (bytes) and pods.
    cpu: f64,
    memory: f64,
    pods: f64,
}

impl NodeInfo {
    fn new(node: Arc<Value>) -> Self {
        let alloc = &node["status"]["allocatable"];
        let (cpu, memory, pods) = (quantity(&alloc["cpu"]), quantity(&alloc["memory"]), quantity(&alloc["pods"]));
        NodeInfo {
            name: str_of(&node, &["metadata", "name"]).to_string(),
            labels: labels(&node),
            cpu,
            memory,
            pods,
            node,
        }
    }
}

/// A pod on a node, with what spreading and affinity read of it worked out once.
struct Placed {
    node: String,
    pod: Arc<Value>,
    /// Its labels, parsed on the first look: only the pods of the namespaces of the
    /// pods placed in a pass are looked at.
    labels: OnceCell<BTreeMap<String, String>>,
    deleting: bool,
}

impl Placed {
    fn labels(&self) -> &BTreeMap<String, String> {
        self.labels.get_or_init(|| labels(&self.pod))
    }
}

/// What is placed on one node: the pod count and summed requests NodeResourcesFit
/// checks, summed in the order the pods were placed.
#[derive(Default)]
struct NodeLoad {
    pods: usize,
    cpu: f64,
    memory: f64,
}

/// What the scheduler knows while placing pods, indexed the way kube-scheduler's cache
/// is (nodes by name, pods by node and by namespace): scanning every placed pod for
/// every node of every pending pod was a fifth of the simulator's CPU at 800 pods.
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    /// Node name to its position in `nodes` (the first node of that name).
    node_index: HashMap<String, usize>,
    /// Non-terminal pods with a node, and pods placed earlier in this pass, in that
    /// order; only [`Snapshot::add_placed`] adds to it, keeping the indexes below.
    placed: Vec<Placed>,
    /// Node name to what is placed on it (nodes not in `nodes` too).
    load: HashMap<String, NodeLoad>,
    /// Namespace to the positions in `placed` of its pods, in placed order: spreading,
    /// affinity and the alike-pods score only look at the pod's own namespaces.
    by_namespace: HashMap<String, Vec<usize>>,
    pub pvcs: HashMap<(String, String), Arc<Value>>,
    pub pvs: HashMap<String, Arc<Value>>,
    pub classes: HashMap<String, Arc<Value>>,
}

impl Snapshot {
    /// The nodes, nothing placed, no claims, volumes or classes.
    pub fn new(nodes: Vec<Arc<Value>>) -> Self {
        let nodes: Vec<NodeInfo> = nodes.into_iter().map(NodeInfo::new).collect();
        let mut node_index = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            node_index.entry(n.name.clone()).or_insert(i);
        }
        Snapshot {
            nodes,
            node_index,
            placed: Vec::new(),
            load: HashMap::new(),
            by_namespace: HashMap::new(),
            pvcs: HashMap::new(),
            pvs: HashMap::new(),
            classes: HashMap::new(),
        }
    }

    /// Counts `pod` as placed on `node` for the pods placed after it.
    pub fn add_placed(&mut self, node: String, pod: Arc<Value>) {
        let (cpu, memory) = pod_requests(&pod);
        let load = self.load.entry(node.clone()).or_default();
        load.pods += 1;
        load.cpu += cpu;
        load.memory += memory;
        let ns = str_of(&pod, &["metadata", "namespace"]);
        match self.by_namespace.get_mut(ns) {
            Some(positions) => positions.push(self.placed.len()),
            None => {
                self.by_namespace.insert(ns.to_string(), vec![self.placed.len()]);
            }
        }
        let deleting = crate::meta::is_deleting(&pod);
        self.placed.push(Placed { node, pod, labels: OnceCell::new(), deleting });
    }

    /// The nodes, in the order they are tried.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    fn node_by_name(&self, name: &str) -> Option<&NodeInfo> {
        self.node_index.get(name).and_then(|&i| self.nodes.get(i))
    }

    fn topology_value<'a>(&'a self, node: &str, key: &str) -> Option<&'a str> {
        self.node_by_name(node).and_then(|n| n.node["metadata"]["labels"][key].as_str())
    }

    /// The placed pods of namespace `ns`, in placed order.
    fn in_namespace<'a>(&'a self, ns: &str) -> impl Iterator<Item = &'a Placed> + Clone + use<'a> {
        self.by_namespace.get(ns).into_iter().flatten().filter_map(|&i| self.placed.get(i))
    }

    /// The storage class a claim uses (`None` in the spec means the default class).
    pub fn class_of(&self, pvc: &Value) -> Option<&Value> {
        match pvc["spec"]["storageClassName"].as_str() {
            Some("") => None,
            Some(name) => self.classes.get(name).map(|c| &**c),
            None => self
                .classes
                .values()
                .map(|c| &**c)
                .find(|c| c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"),
        }
    }

    /// Checks of the pod alone (its claims): `Err` is the reason for every node.
    pub fn pod_check(&self, pod: &Value) -> Result<(), String> {
        let ns = str_of(pod, &["metadata", "namespace"]);
        for (_, claim) in pod_claims(pod) {
            let Some(pvc) = self.pvcs.get(&(ns.to_string(), claim.clone())) else {
                return Err(format!("persistentvolumeclaim \"{claim}\" not found"));
            };
            if crate::meta::is_deleting(pvc) {
                return Err(format!("persistentvolumeclaim \"{claim}\" is being deleted"));
            }
            let bound = !str_of(pvc, &["spec", "volumeName"]).is_empty();
            let wffc = self.class_of(pvc).is_some_and(|c| c["volumeBindingMode"] == "WaitForFirstConsumer");
            if !bound && !wffc {
                return Err("pod has unbound immediate PersistentVolumeClaims".into());
            }
        }
        Ok(())
    }

    /// Every filter, in kube-scheduler's order; the first failing one rejects the node.
    pub fn filter(&self, pod: &Value, node: &NodeInfo) -> Result<(), Reject> {
        if node.node["spec"]["unschedulable"] == true {
            let unschedulable_taint = json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"});
            if !tolerates(&pod["spec"]["tolerations"], &unschedulable_taint) {
                return Err(Reject::Unschedulable);
            }
        }
        if let Some(wanted) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
            && wanted != node.name
        {
            return Err(Reject::NodeName);
        }
        if let Some(t) = untolerated_taint(pod, &node.node) {
            return Err(Reject::Taint(t));
        }
        if !affinity_matches(pod, &node.name, &node.labels) {
            return Err(Reject::NodeAffinity);
        }
        self.fit(pod, node)?;
        self.volumes(pod, node)?;
        self.topology_spread(pod, node)?;
        self.inter_pod_affinity(pod, node)
    }

    fn fit(&self, pod: &Value, node: &NodeInfo) -> Result<(), Reject> {
        let (cpu, mem, count) = self.load.get(&node.name).map_or((0.0, 0.0, 0), |l| (l.cpu, l.memory, l.pods));
        let max_pods = node.pods;
        if max_pods > 0.0 && count as f64 + 1.0 > max_pods {
            return Err(Reject::TooManyPods);
        }
        let (want_cpu, want_mem) = pod_requests(pod);
        let mut short = Vec::new();
        if want_cpu > 0.0 && cpu + want_cpu > node.cpu + 1e-9 {
            short.push("cpu");
        }
        if want_mem > 0.0 && mem + want_mem > node.memory {
            short.push("memory");
        }
        if short.is_empty() { Ok(()) } else { Err(Reject::Insufficient(short)) }
    }

    fn volumes(&self, pod: &Value, node: &NodeInfo) -> Result<(), Reject> {
        let ns = str_of(pod, &["metadata", "namespace"]);
        let (name, node_labels) = (node.name.as_str(), &node.labels);
        for (_, claim) in pod_claims(pod) {
            let Some(pvc) = self.pvcs.get(&(ns.to_string(), claim)) else { continue };
            let volume = str_of(pvc, &["spec", "volumeName"]);
            if !volume.is_empty() {
                let Some(pv) = self.pvs.get(volume) else { return Err(Reject::NoVolumeToBind) };
                let required = &pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"];
                if let Some(terms) = required.as_array()
                    && !terms.iter().any(|t| term_matches(t, name, node_labels))
                {
                    return Err(Reject::VolumeNodeAffinity);
                }
            } else if let Some(class) = self.class_of(pvc)
                && let Some(allowed) = class["allowedTopologies"].as_array()
            {
                let ok = allowed.iter().any(|t| {
                    t["matchLabelExpressions"].as_array().into_iter().flatten().all(|e| {
                        let values: Vec<&str> =
                            e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                        node_labels.get(str_of(e, &["key"])).is_some_and(|v| values.contains(&v.as_str()))
                    })
                });
                if !ok {
                    return Err(Reject::NoVolumeToBind);
                }
            }
        }
        Ok(())
    }

    /// The placed pods of `ns` the selector matches, not being deleted, in placed order.
    fn matching_pods<'a>(&'a self, ns: &str, selector: &Value) -> impl Iterator<Item = &'a Placed> + use<'a> {
        let sel = LabelSelector::from_object(selector);
        self.in_namespace(ns).filter(move |p| !p.deleting && sel.matches(p.labels()))
    }

    fn topology_spread(&self, pod: &Value, node: &NodeInfo) -> Result<(), Reject> {
        let ns = str_of(pod, &["metadata", "namespace"]);
        let pod_labels = labels(pod);
        for c in pod["spec"]["topologySpreadConstraints"].as_array().into_iter().flatten() {
            if c["whenUnsatisfiable"] != "DoNotSchedule" {
                continue;
            }
            let key = str_of(c, &["topologyKey"]);
            let Some(here) = node.node["metadata"]["labels"][key].as_str() else {
                return Err(Reject::TopologySpread);
            };
            let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
            for n in self.nodes.iter().filter(|n| affinity_matches(pod, &n.name, &n.labels)) {
                if let Some(v) = n.node["metadata"]["labels"][key].as_str() {
                    counts.entry(v).or_default();
                }
            }
            for p in self.matching_pods(ns, &c["labelSelector"]) {
                if let Some(v) = self.topology_value(&p.node, key)
                    && let Some(count) = counts.get_mut(v)
                {
                    *count += 1;
                }
            }
            let self_match = i64::from(LabelSelector::from_object(&c["labelSelector"]).matches(&pod_labels));
            let min_domains = c["minDomains"].as_u64().unwrap_or(1) as usize;
            let min = if counts.len() < min_domains { 0 } else { counts.values().copied().min().unwrap_or(0) };
            let skew = counts.get(here).copied().unwrap_or(0) + self_match - min;
            if skew > c["maxSkew"].as_i64().unwrap_or(1) {
                return Err(Reject::TopologySpread);
            }
        }
        Ok(())
    }

    fn inter_pod_affinity(&self, pod: &Value, node: &NodeInfo) -> Result<(), Reject> {
        let ns = str_of(pod, &["metadata", "namespace"]).to_string();
        let affinity = &pod["spec"]["affinity"];
        let same_domain = |term: &Value, other_node: &str| {
            let key = str_of(term, &["topologyKey"]);
            node.node["metadata"]["labels"][key]
                .as_str()
                .is_some_and(|v| self.topology_value(other_node, key) == Some(v))
        };
        let term_namespaces = |term: &Value| -> Vec<String> {
            let listed: Vec<String> = crate::meta::strings(&term["namespaces"]);
            if listed.is_empty() { vec![ns.clone()] } else { listed }
        };
        let required = "requiredDuringSchedulingIgnoredDuringExecution";
        for term in affinity["podAntiAffinity"][required].as_array().into_iter().flatten() {
            for tns in term_namespaces(term) {
                if self.matching_pods(&tns, &term["labelSelector"]).any(|p| same_domain(term, &p.node)) {
                    return Err(Reject::PodAntiAffinity);
                }
            }
        }
        for term in affinity["podAffinity"][required].as_array().into_iter().flatten() {
            let namespaces = term_namespaces(term);
            let anywhere =
                namespaces.iter().any(|tns| self.matching_pods(tns, &term["labelSelector"]).next().is_some());
            let here = namespaces
                .iter()
                .any(|tns| self.matching_pods(tns, &term["labelSelector"]).any(|p| same_domain(term, &p.node)));
            let self_match = LabelSelector::from_object(&term["labelSelector"]).matches(&labels(pod));
            if !here && (anywhere || !self_match) {
                return Err(Reject::PodAffinity);
            }
        }
        Ok(())
    }

    /// Lower is better: preferred node affinity, then spreading pods that look alike
    /// over zones and nodes, then the emptiest node, then the name.
    pub fn score(&self, pod: &Value, node: &NodeInfo) -> Score {
        let name = node.name.clone();
        let node_labels = &node.labels;
        let preferred: i64 = pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| term_matches(&p["preference"], &name, node_labels))
            .map(|p| p["weight"].as_i64().unwrap_or(0))
            .sum();
        let ns = str_of(pod, &["metadata", "namespace"]);
        let mut soft_spread = 0;
        for c in pod["spec"]["topologySpreadConstraints"].as_array().into_iter().flatten() {
            let key = str_of(c, &["topologyKey"]);
            let here = node_labels.get(key).map(String::as_str);
            soft_spread += self
                .matching_pods(ns, &c["labelSelector"])
                .filter(|p| self.topology_value(&p.node, key) == here)
                .count() as i64;
        }
        // Alike pods share the pod's namespace and carry all its labels.
        let pod_labels = labels(pod);
        let alike = |p: &Placed| !pod_labels.is_empty() && pod_labels.iter().all(|(k, v)| p.labels().get(k) == Some(v));
        let zone = node_labels.get(ZONE).map(String::as_str);
        let neighbours = self.in_namespace(ns);
        let alike_zone = neighbours
            .clone()
            .filter(|p| alike(p) && zone.is_some() && self.topology_value(&p.node, ZONE) == zone)
            .count() as i64;
        let alike_node = neighbours.filter(|p| p.node == name && alike(p)).count() as i64;
        let total = self.load.get(&name).map_or(0, |l| l.pods) as i64;
        (-preferred, soft_spread, alike_zone, alike_node, total, name)
    }

    /// The best node for the pod, or why there is none.
    pub fn place(&self, pod: &Value) -> Result<String, String> {
        self.pod_check(pod).map_err(|why| pod_failure_message(self.nodes.len(), &why))?;
        let mut rejects = Vec::new();
        let mut best: Option<(Score, String)> = None;
        for node in &self.nodes {
            match self.filter(pod, node) {
                Ok(()) => {
                    let s = self.score(pod, node);
                    if best.as_ref().is_none_or(|(b, _)| s < *b) {
                        let name = s.5.clone();
                        best = Some((s, name));
                    }
                }
                Err(r) => rejects.push(r),
            }
        }
        best.map(|(_, n)| n).ok_or_else(|| failure_message(self.nodes.len(), &rejects))
    }
}

/// Whether a pod's change can change a placement: a pod appears or goes, a pending pod
/// changes, or a placed one moves, ends, starts terminating, or changes its spec or
/// labels (what it requests, what other pods' affinity and spreading match). The
/// kubelet's status reports of a placed pod cannot.
fn placement_input_changed(c: &Change) -> bool {
    let Some(old) = &c.old else { return true };
    let differs = |path: &[&str]| str_of(old, path) != str_of(&c.new, path);
    c.kind != ChangeKind::Modified
        || str_of(&c.new, &["spec", "nodeName"]).is_empty()
        || differs(&["status", "phase"])
        || differs(&["metadata", "deletionTimestamp"])
        || old["metadata"]["labels"] != c.new["metadata"]["labels"]
        || old["spec"] != c.new["spec"]
}

/// Whether a claim or volume change can change a placement: one added or deleted, its
/// spec (binding, class, node affinity) or its deletion. Labels, annotations and status
/// (the operator's labels, resize and modify progress) cannot.
fn volume_input_changed(c: &Change) -> bool {
    let Some(old) = &c.old else { return true };
    c.kind != ChangeKind::Modified
        || old["spec"] != c.new["spec"]
        || old["metadata"]["deletionTimestamp"] != c.new["metadata"]["deletionTimestamp"]
}

fn pending(pod: &Value) -> bool {
    str_of(pod, &["spec", "nodeName"]).is_empty()
        && matches!(pod["spec"]["schedulerName"].as_str(), None | Some(NAME))
        && !crate::meta::is_deleting(pod)
        && !is_terminal(pod)
        && pod["spec"]["schedulingGates"].as_array().is_none_or(Vec::is_empty)
}

fn load(store: &Store, pods: Vec<Arc<Value>>) -> (Snapshot, Vec<Arc<Value>>) {
    let key =
        |o: &Value| (str_of(o, &["metadata", "namespace"]).to_string(), str_of(o, &["metadata", "name"]).to_string());
    let mut pending_pods = Vec::new();
    let mut placed = Vec::new();
    for p in pods {
        let node = str_of(&p, &["spec", "nodeName"]).to_string();
        if !node.is_empty() {
            if !is_terminal(&p) {
                placed.push((node, p));
            }
        } else if pending(&p) {
            pending_pods.push(p);
        }
    }
    pending_pods.sort_by_key(|p| {
        (
            -p["spec"]["priority"].as_i64().unwrap_or(0),
            str_of(p, &["metadata", "creationTimestamp"]).to_string(),
            key(p),
        )
    });
    // Placement reads the claims of the pods it places and the volumes bound to them:
    // only those are looked up, not every claim and volume of the cluster.
    let mut pvcs = HashMap::new();
    let mut pvs = HashMap::new();
    for pod in &pending_pods {
        let ns = str_of(pod, &["metadata", "namespace"]);
        for (_, claim) in pod_claims(pod) {
            let Some(pvc) = get(store, PVCS, Some(ns), &claim) else { continue };
            let volume = str_of(&pvc, &["spec", "volumeName"]);
            if !volume.is_empty()
                && !pvs.contains_key(volume)
                && let Some(pv) = get(store, PVS, None, volume)
            {
                pvs.insert(volume.to_string(), pv);
            }
            pvcs.insert((ns.to_string(), claim), pvc);
        }
    }
    let mut snapshot = Snapshot::new(list(store, NODES, None));
    for (node, pod) in placed {
        snapshot.add_placed(node, pod);
    }
    snapshot.pvcs = pvcs;
    snapshot.pvs = pvs;
    snapshot.classes = list(store, STORAGE_CLASSES, None)
        .into_iter()
        .map(|c| (str_of(&c, &["metadata", "name"]).to_string(), c))
        .collect();
    (snapshot, pending_pods)
}

struct Scheduler {
    store: Store,
    recorder: Recorder,
    source: Source,
    timings: Timings,
    /// Pods waiting for their WaitForFirstConsumer claims, by uid: the chosen node.
    waiting: HashMap<String, String>,
    /// Unschedulable pods by uid: the last message and when it was reported.
    reported: HashMap<String, (String, SimInstant)>,
}

impl Scheduler {
    fn pass(&mut self) -> Option<SimInstant> {
        let pods = list(&self.store, PODS, None);
        if !pods.iter().any(|p| pending(p)) {
            // Nothing to place, nothing waiting for its claims (a waiting pod is pending).
            self.waiting.clear();
            self.reported.clear();
            return None;
        }
        let (mut snapshot, pending_pods) = load(&self.store, pods);
        let now = self.store.clock().now();
        let live: std::collections::HashSet<String> =
            pending_pods.iter().map(|p| str_of(p, &["metadata", "uid"]).to_string()).collect();
        self.waiting.retain(|uid, _| live.contains(uid));
        self.reported.retain(|uid, _| live.contains(uid));
        let mut next = None;
        for pod in pending_pods {
            let uid = str_of(&pod, &["metadata", "uid"]).to_string();
            if let Some(node) = self.waiting.get(&uid).cloned() {
                match self.claims_ready(&snapshot, &pod, &node) {
                    Some(true) => {
                        self.bind(&pod, &node);
                        self.waiting.remove(&uid);
                        snapshot.add_placed(node, pod);
                    }
                    Some(false) => snapshot.add_placed(node, pod),
                    None => {
                        self.waiting.remove(&uid);
                    }
                }
                continue;
            }
            match snapshot.place(&pod) {
                Ok(node) => {
                    self.reported.remove(&uid);
                    let unbound = self.unbound_claims(&snapshot, &pod);
                    if unbound.is_empty() {
                        self.bind(&pod, &node);
                    } else {
                        self.select_node(&pod, &unbound, &node);
                        self.waiting.insert(uid, node.clone());
                    }
                    snapshot.add_placed(node, pod);
                }
                Err(message) => {
                    let retry = self.unschedulable(&pod, &uid, message, now);
                    next = super::earliest(next, Some(retry));
                }
            }
        }
        next
    }

    fn unbound_claims(&self, snapshot: &Snapshot, pod: &Value) -> Vec<String> {
        let ns = str_of(pod, &["metadata", "namespace"]);
        pod_claims(pod)
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| {
                snapshot
                    .pvcs
                    .get(&(ns.to_string(), c.clone()))
                    .is_some_and(|p| str_of(p, &["spec", "volumeName"]).is_empty())
            })
            .collect()
    }

    /// `Some(true)` when every claim is bound to a volume usable on `node`, `Some(false)`
    /// while waiting, `None` when the choice no longer works.
    fn claims_ready(&self, snapshot: &Snapshot, pod: &Value, node: &str) -> Option<bool> {
        let n = snapshot.node_by_name(node)?;
        if snapshot.pod_check(pod).is_err() {
            return None;
        }
        if !self.unbound_claims(snapshot, pod).is_empty() {
            return Some(false);
        }
        snapshot.volumes(pod, n).ok().map(|_| true)
    }

    fn select_node(&self, pod: &Value, claims: &[String], node: &str) {
        let ns = str_of(pod, &["metadata", "namespace"]);
        let client = self.store.client(NAME);
        for c in claims {
            let patch = json!({"metadata": {"annotations": {SELECTED_NODE: node}}});
            if let Err(e) = client.patch(&PVCS.r(), Some(ns), c, None, PatchType::Merge, &patch) {
                tracing::debug!(error = %e, claim = c, "could not select a node for the claim");
            }
        }
    }

    fn bind(&self, pod: &Value, node: &str) {
        let ns = str_of(pod, &["metadata", "namespace"]);
        let name = str_of(pod, &["metadata", "name"]);
        match self.store.client(NAME).bind(ns, name, node) {
            Ok(()) => self.recorder.record(
                &self.source,
                pod,
                EventType::Normal,
                "Scheduled",
                &format!("Successfully assigned {ns}/{name} to {node}"),
            ),
            Err(e) => tracing::debug!(error = %e, pod = name, "binding failed"),
        }
    }

    /// Records the failure (condition, Event) when it is new or due again; returns when
    /// to report again.
    fn unschedulable(&mut self, pod: &Value, uid: &str, message: String, now: SimInstant) -> SimInstant {
        let due = match self.reported.get(uid) {
            Some((m, at)) => *m != message || now >= *at + self.timings.unschedulable_retry,
            None => true,
        };
        if due {
            let current = condition(pod, "PodScheduled");
            let stale = current.is_none_or(|c| c["status"] != "False" || c["message"] != message.as_str());
            if stale {
                let t = now_time(&self.store);
                let cond =
                    json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message});
                let conds = set_condition(&pod["status"]["conditions"], cond, &t);
                let ns = str_of(pod, &["metadata", "namespace"]);
                let name = str_of(pod, &["metadata", "name"]);
                let _ = self.store.client(NAME).patch_status(
                    &PODS.r(),
                    Some(ns),
                    name,
                    &json!({"status": {"conditions": conds}}),
                );
            }
            self.recorder.record(&self.source, pod, EventType::Warning, "FailedScheduling", &message);
            self.reported.insert(uid.to_string(), (message, now));
        }
        self.reported.get(uid).map(|(_, at)| *at + self.timings.unschedulable_retry).unwrap_or(now)
    }
}

pub(crate) async fn run(store: Store, timings: Timings, shutdown: watch::Receiver<bool>) {
    let mut wake = Wake::new(
        &store,
        shutdown,
        &["pods", "nodes", "persistentvolumeclaims", "persistentvolumes", "storageclasses"],
    )
    .only(|c| match c.gr.resource.as_str() {
        "pods" => placement_input_changed(c),
        "persistentvolumeclaims" | "persistentvolumes" => volume_input_changed(c),
        _ => true,
    });
    let mut scheduler = Scheduler {
        recorder: Recorder::new(&store),
        source: Source::new(NAME, NAME),
        store,
        timings,
        waiting: HashMap::new(),
        reported: HashMap::new(),
    };
    let mut next = None;
    while wake.wait(next, std::future::pending()).await {
        let Some(passed) = super::on_own_thread(scheduler, Scheduler::pass).await else { return };
        (scheduler, next) = passed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, zone: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name, "rack": "3"}},
               "spec": {}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}}})
    }

    fn pod(spec: Value) -> Value {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "image": "i"}]);
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}}, "spec": spec})
    }

    #[test]
    fn a_placed_pods_status_report_does_not_wake_the_scheduler_what_placement_reads_does() {
        let change = |kind: ChangeKind, old: Option<Value>, new: Value| Change {
            rev: 1,
            gr: crate::registry::GroupResource::new("", "pods"),
            kind,
            old: old.map(Arc::new),
            new: Arc::new(new),
            at: sim_clock::SimClock::new(1.0).now(),
        };
        let placed =
            json!({"metadata": {"labels": {"app": "x"}}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let with = |path: &[&str], value: Value| {
            let mut pod = placed.clone();
            let mut at = &mut pod;
            for key in path {
                at = &mut at[*key];
            }
            *at = value;
            pod
        };
        let modified = |new: Value| placement_input_changed(&change(ChangeKind::Modified, Some(placed.clone()), new));
        assert!(!modified(with(&["status", "conditions"], json!([{"type": "Ready", "status": "True"}]))));
        assert!(modified(with(&["status", "phase"], json!("Succeeded"))), "a finished pod frees its node");
        assert!(modified(with(&["metadata", "labels", "app"], json!("y"))), "affinity reads labels");
        assert!(modified(with(&["metadata", "deletionTimestamp"], json!("2026-01-01T00:00:00Z"))));
        assert!(modified(with(&["spec", "priority"], json!(5))));
        let pending = with(&["spec", "nodeName"], Value::Null);
        let later = with(&["status", "conditions"], json!([]));
        let pending_later = {
            let mut p = later.clone();
            p["spec"]["nodeName"] = Value::Null;
            p
        };
        assert!(placement_input_changed(&change(ChangeKind::Modified, Some(pending), pending_later)));
        assert!(placement_input_changed(&change(ChangeKind::Deleted, Some(placed.clone()), placed.clone())));
        assert!(placement_input_changed(&change(ChangeKind::Added, None, placed.clone())));
    }

    #[test]
    fn a_claims_labels_or_status_do_not_wake_the_scheduler_its_binding_does() {
        let claim = json!({"metadata": {"name": "c", "labels": {"a": "1"}}, "spec": {"volumeName": ""}, "status": {}});
        let modified = |new: Value| {
            volume_input_changed(&Change {
                rev: 1,
                gr: crate::registry::GroupResource::new("", "persistentvolumeclaims"),
                kind: ChangeKind::Modified,
                old: Some(Arc::new(claim.clone())),
                new: Arc::new(new),
                at: sim_clock::SimClock::new(1.0).now(),
            })
        };
        let mut labelled = claim.clone();
        labelled["metadata"]["labels"]["b"] = json!("2");
        labelled["status"]["phase"] = json!("Pending");
        assert!(!modified(labelled), "the operator's labels, a status report");
        let mut bound = claim.clone();
        bound["spec"]["volumeName"] = json!("pv-1");
        assert!(modified(bound), "a waiting pod binds once its claim is");
        let mut deleting = claim.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(modified(deleting), "a claim being deleted stops placement");
    }

    fn snapshot(nodes: Vec<Value>) -> Snapshot {
        Snapshot::new(nodes.into_iter().map(Arc::new).collect())
    }

    fn expr(op: &str, values: &[&str]) -> Value {
        json!({"key": "rack", "operator": op, "values": values})
    }

    #[test]
    fn affinity_operators() {
        let l: BTreeMap<String, String> = [("rack".to_string(), "3".to_string())].into();
        assert!(requirement_matches(&expr("In", &["3", "4"]), &l));
        assert!(!requirement_matches(&expr("NotIn", &["3"]), &l));
        assert!(requirement_matches(&expr("Exists", &[]), &l));
        assert!(!requirement_matches(&expr("DoesNotExist", &[]), &l));
        assert!(requirement_matches(&expr("Gt", &["2"]), &l));
        assert!(!requirement_matches(&expr("Lt", &["3"]), &l));
        assert!(requirement_matches(&expr("NotIn", &["3"]), &BTreeMap::new()), "NotIn holds for a missing label");
        assert!(!requirement_matches(&expr("Gt", &["x"]), &l));
    }

    #[test]
    fn node_selector_and_required_affinity_pick_the_zone() {
        let s = snapshot(vec![node("n1", "zone-a"), node("n2", "zone-b")]);
        let p = pod(json!({"nodeSelector": {"topology.kubernetes.io/zone": "zone-b"}}));
        assert_eq!(s.place(&p).unwrap(), "n2");
        let term = json!({"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-a"]}]});
        let p = pod(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}}),
        );
        assert_eq!(s.place(&p).unwrap(), "n1");
        let fields = json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]});
        let p = pod(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [fields]}}}}),
        );
        assert_eq!(s.place(&p).unwrap(), "n2");
    }

    #[test]
    fn nothing_fits_reads_like_kube_scheduler() {
        let s = snapshot(vec![node("n1", "zone-a"), node("n2", "zone-a"), node("n3", "zone-a")]);
        let p = pod(json!({"nodeSelector": {"topology.kubernetes.io/zone": "zone-z"}}));
        assert_eq!(
            s.place(&p).unwrap_err(),
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn taints_need_tolerations() {
        let mut tainted = node("n1", "zone-a");
        tainted["spec"]["taints"] = json!([{"key": "dedicated", "value": "tikv", "effect": "NoSchedule"}]);
        let s = snapshot(vec![tainted.clone()]);
        let err = s.place(&pod(json!({}))).unwrap_err();
        assert!(err.contains("1 node(s) had untolerated taint {dedicated: tikv}"), "{err}");
        let tolerating = pod(
            json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "tikv", "effect": "NoSchedule"}]}),
        );
        assert_eq!(s.place(&tolerating).unwrap(), "n1");
        let wrong_value = pod(json!({"tolerations": [{"key": "dedicated", "value": "pd"}]}));
        assert!(s.place(&wrong_value).is_err());
        let everything = pod(json!({"tolerations": [{"operator": "Exists"}]}));
        assert_eq!(s.place(&everything).unwrap(), "n1");
        tainted["spec"]["taints"] = json!([{"key": "soft", "effect": "PreferNoSchedule"}]);
        assert_eq!(snapshot(vec![tainted]).place(&pod(json!({}))).unwrap(), "n1");
    }

    #[test]
    fn cordoned_nodes_and_full_nodes_are_skipped() {
        let mut cordoned = node("n1", "zone-a");
        cordoned["spec"]["unschedulable"] = json!(true);
        let s = snapshot(vec![cordoned, node("n2", "zone-a")]);
        let mut big = pod(json!({}));
        big["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "6", "memory": "1Gi"}});
        assert_eq!(
            s.place(&big).unwrap_err(),
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
        let mut small = pod(json!({}));
        small["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "2"}});
        assert_eq!(s.place(&small).unwrap(), "n2");
    }

    #[test]
    fn bound_volumes_pin_the_zone() {
        let mut s = snapshot(vec![node("n1", "zone-a"), node("n2", "zone-b")]);
        s.pvcs.insert(
            ("ns".into(), "data".into()),
            json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv1"}}).into(),
        );
        let term = json!({"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-b"]}]});
        s.pvs.insert(
            "pv1".into(),
            json!({"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [term]}}}}).into(),
        );
        let p = pod(json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}));
        assert_eq!(s.place(&p).unwrap(), "n2");
        let p = pod(
            json!({"nodeSelector": {"topology.kubernetes.io/zone": "zone-a"}, "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}),
        );
        let err = s.place(&p).unwrap_err();
        assert!(err.contains("1 node(s) had volume node affinity conflict"), "{err}");
        assert!(err.contains("1 node(s) didn't match Pod's node affinity/selector"), "{err}");
    }

    #[test]
    fn unbound_immediate_claims_block_the_pod() {
        let mut s = snapshot(vec![node("n1", "zone-a")]);
        s.pvcs.insert(
            ("ns".into(), "data".into()),
            json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "fast"}}).into(),
        );
        s.classes.insert("fast".into(), json!({"volumeBindingMode": "Immediate"}).into());
        let p = pod(json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}));
        assert!(
            s.place(&p)
                .unwrap_err()
                .starts_with("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
        );
        let missing = pod(json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "nope"}}]}));
        assert!(s.place(&missing).unwrap_err().contains("persistentvolumeclaim \"nope\" not found"));
        s.classes.insert("fast".into(), json!({"volumeBindingMode": "WaitForFirstConsumer"}).into());
        assert_eq!(s.place(&p).unwrap(), "n1");
    }

    #[test]
    fn topology_spread_and_anti_affinity() {
        let mut s = snapshot(vec![node("n1", "zone-a"), node("n2", "zone-b")]);
        let mut existing = pod(json!({}));
        existing["spec"]["nodeName"] = json!("n1");
        s.add_placed("n1".into(), existing.into());
        let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}]});
        assert_eq!(s.place(&pod(spread.clone())).unwrap(), "n2");
        // Taints do not remove a zone from the skew computation; node affinity does.
        let mut tainted = Value::clone(&s.nodes[1].node);
        tainted["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
        let mut t = Snapshot::new(vec![s.nodes[0].node.clone(), tainted.into()]);
        for p in &s.placed {
            t.add_placed(p.node.clone(), p.pod.clone());
        }
        let err = t.place(&pod(spread.clone())).unwrap_err();
        assert!(err.contains("1 node(s) didn't match pod topology spread constraints"), "{err}");
        let mut only_a = spread;
        only_a["nodeSelector"] = json!({"topology.kubernetes.io/zone": "zone-a"});
        assert_eq!(s.place(&pod(only_a)).unwrap(), "n1");
        let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}]}}});
        assert_eq!(s.place(&pod(anti)).unwrap(), "n2");
        assert_eq!(s.place(&pod(json!({}))).unwrap(), "n2", "alike pods spread over zones");
    }

    fn requesting(cpu: &str, spec: Value) -> Value {
        let mut p = pod(spec);
        p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": cpu}});
        p
    }

    #[test]
    fn pods_placed_earlier_in_the_pass_count_for_the_next_pods_fit_spreading_and_anti_affinity() {
        let place_all = |s: &mut Snapshot, p: &Value, n: usize| -> Vec<Result<String, String>> {
            (0..n)
                .map(|_| {
                    let placed = s.place(p);
                    if let Ok(node) = &placed {
                        s.add_placed(node.clone(), Arc::new(p.clone()));
                    }
                    placed
                })
                .collect()
        };
        // NodeResourcesFit: 3 of 4 cores taken on n1 leaves no room for another 3.
        let mut s = snapshot(vec![node("n1", "zone-a"), node("n2", "zone-b")]);
        let placed = place_all(&mut s, &requesting("3", json!({})), 3);
        assert_eq!(placed[..2], [Ok("n1".to_string()), Ok("n2".to_string())]);
        let err = placed[2].clone().unwrap_err();
        assert!(err.starts_with("0/2 nodes are available: 2 Insufficient cpu."), "{err}");
        // The pod count.
        let mut one_pod = node("n1", "zone-a");
        one_pod["status"]["allocatable"]["pods"] = json!("1");
        let mut s = snapshot(vec![one_pod]);
        let placed = place_all(&mut s, &pod(json!({})), 2);
        assert_eq!(placed[0], Ok("n1".to_string()));
        assert!(placed[1].clone().unwrap_err().contains("1 Too many pods"), "{placed:?}");
        // PodTopologySpread: zone-a is preferred, but the second pod would skew it.
        let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                "preference": {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["zone-a"]}]}}]}}});
        let mut s = snapshot(vec![node("n1", "zone-a"), node("n2", "zone-a"), node("n3", "zone-b")]);
        let placed = place_all(&mut s, &pod(spread), 3);
        let nodes = ["n1", "n3", "n2"].map(|n| Ok(n.to_string()));
        assert_eq!(placed, nodes, "then back in zone-a, on the node without an alike pod");
        // InterPodAffinity: one pod per host.
        let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}]}}});
        let mut s = snapshot(vec![node("n1", "zone-a"), node("n2", "zone-a")]);
        let placed = place_all(&mut s, &pod(anti), 3);
        assert_eq!(placed[..2], [Ok("n1".to_string()), Ok("n2".to_string())]);
        assert!(placed[2].clone().unwrap_err().contains("2 node(s) didn't match pod anti-affinity rules"));
    }

    #[test]
    fn the_indexes_answer_what_scanning_every_placed_pod_does() {
        let mut s = snapshot(vec![node("n1", "zone-a"), node("n2", "zone-b"), node("n1", "zone-z")]);
        let mut placed: Vec<(String, Value)> = Vec::new();
        let specs = [
            ("n1", "ns", "x", "0.5", false),
            ("n2", "ns", "y", "1", false),
            ("gone", "ns", "x", "1", false),
            ("n1", "other", "x", "0.25", false),
            ("n2", "ns", "x", "2", true),
            ("n1", "ns", "x", "0.1", false),
            ("n1", "ns", "x", "0.2", false),
        ];
        for (node, ns, app, cpu, deleting) in specs {
            let mut p = requesting(cpu, json!({"nodeName": node}));
            p["metadata"]["namespace"] = json!(ns);
            p["metadata"]["labels"]["app"] = json!(app);
            p["spec"]["containers"][0]["resources"]["requests"]["memory"] = json!("1Mi");
            if deleting {
                p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            }
            s.add_placed(node.into(), Arc::new(p.clone()));
            placed.push((node.into(), p));
        }
        for node in ["n1", "n2", "gone", "n3"] {
            let (mut cpu, mut memory, mut pods) = (0.0, 0.0, 0);
            for (_, p) in placed.iter().filter(|(n, _)| n == node) {
                let (c, m) = pod_requests(p);
                cpu += c;
                memory += m;
                pods += 1;
            }
            let load = s.load.get(node).map(|l| (l.cpu, l.memory, l.pods));
            assert_eq!(load, (pods > 0).then_some((cpu, memory, pods)), "{node}: the same sums, in the same order");
        }
        for (ns, selector) in [
            ("ns", json!({"matchLabels": {"app": "x"}})),
            ("ns", json!({})),
            ("other", json!({"matchLabels": {"app": "x"}})),
            ("none", json!({})),
        ] {
            let sel = LabelSelector::from_object(&selector);
            let scanned: Vec<&str> = placed
                .iter()
                .filter(|(_, p)| {
                    str_of(p, &["metadata", "namespace"]) == ns
                        && !crate::meta::is_deleting(p)
                        && sel.matches(&labels(p))
                })
                .map(|(n, _)| n.as_str())
                .collect();
            let found: Vec<&str> = s.matching_pods(ns, &selector).map(|p| p.node.as_str()).collect();
            assert_eq!(found, scanned, "{ns} {selector}");
        }
        assert_eq!(s.topology_value("n1", ZONE), Some("zone-a"), "the first node of a name, as the scan found");
        assert_eq!(s.topology_value("gone", ZONE), None);
    }
}
