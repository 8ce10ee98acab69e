//! The simulated Nodes: created (or adopted) at start, and changed by tests the way
//! machines change on a real cluster: added, removed, cordoned, failing.
//!
//! A failing node is modelled as kube-controller-manager sees a kubelet that stopped
//! posting status: `Ready=Unknown` (`NodeStatusUnknown`), the `unreachable` NoSchedule
//! and NoExecute taints, and the node's pods marked `Ready=False`. Its kubelet stops
//! acting until the node is Ready again (its processes keep running: a network
//! partition). A node powered off looks the same to the API, but its pods' processes
//! stop too; powered on again, its kubelet starts their containers anew, as after a
//! reboot (pods deleted meanwhile stay terminating until then, as on a real cluster).

use std::net::Ipv4Addr;
use std::sync::Arc;

use serde_json::{Value, json};

use super::objects::{HOSTNAME, NODES, PODS, REGION, ZONE, list, now_time, set_condition, str_of};
use crate::error::ApiResult;
use crate::patch::PatchType;
use crate::store::{DeleteOptions, Store};

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Marks a node whose machine is powered off (kube-sim's own annotation: the hardware
/// state no Kubernetes API has).
pub const POWERED_OFF: &str = "kube-sim.tikv.org/powered-off";
const NODE_CONTROLLER: &str = "kube-controller-manager/node-lifecycle-controller";

/// A node to add.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub name: String,
    pub zone: String,
    pub region: String,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub labels: Vec<(String, String)>,
    /// `(key, value, effect)`.
    pub taints: Vec<(String, String, String)>,
}

impl NodeSpec {
    pub fn new(name: &str, zone: &str) -> Self {
        NodeSpec {
            name: name.into(),
            zone: zone.into(),
            region: "region-1".into(),
            cpu: "8".into(),
            memory: "32Gi".into(),
            pods: 110,
            labels: Vec::new(),
            taints: Vec::new(),
        }
    }
}

/// `zone-a`, `zone-b`, ... (the API server's seeding uses the same names).
pub fn zone_name(i: u32) -> String {
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

/// A node's address: loopback, 127.3.0.0/16, from its position.
pub fn node_ip(index: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 3, ((index / 254) & 0xff) as u8, (index % 254 + 1) as u8)
}

/// Test and playground controls over the Nodes.
#[derive(Clone, Debug)]
pub struct NodeControl {
    store: Store,
}

impl NodeControl {
    pub(crate) fn new(store: Store) -> Self {
        NodeControl { store }
    }

    /// Makes `node-1`..`node-n` exist (spread over `zones`), and gives every node a
    /// loopback address, as its kubelet would post on registration.
    pub fn ensure(&self, n: u32, zones: u32) -> ApiResult<()> {
        let zones = zones.max(1);
        for i in 0..n {
            let name = format!("node-{}", i + 1);
            if super::objects::get(&self.store, NODES, None, &name).is_none() {
                self.add(NodeSpec::new(&name, &zone_name(i % zones)))?;
            }
        }
        for (i, node) in list(&self.store, NODES, None).iter().enumerate() {
            let name = str_of(node, &["metadata", "name"]);
            let ip = node["status"]["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["type"] == "InternalIP")
                .and_then(|a| a["address"].as_str())
                .and_then(|a| a.parse::<Ipv4Addr>().ok());
            if ip.is_none_or(|ip| !ip.is_loopback()) {
                let ip = node_ip(index_of(name).unwrap_or(i as u32 + 1));
                let patch = json!({"status": {"addresses": [
                    {"type": "InternalIP", "address": ip.to_string()}, {"type": "Hostname", "address": name}]}});
                self.store.client(format!("kubelet/{name}")).patch_status(&NODES.r(), None, name, &patch)?;
            }
        }
        Ok(())
    }

    /// Registers a node, Ready.
    pub fn add(&self, spec: NodeSpec) -> ApiResult<Value> {
        let now = now_time(&self.store);
        let index = index_of(&spec.name).unwrap_or_else(|| list(&self.store, NODES, None).len() as u32 + 1);
        let mut labels = json!({
            HOSTNAME: spec.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            ZONE: spec.zone, REGION: spec.region,
        });
        for (k, v) in &spec.labels {
            labels[k] = json!(v);
        }
        let taints: Vec<Value> =
            spec.taints.iter().map(|(k, v, e)| json!({"key": k, "value": v, "effect": e})).collect();
        let resources = json!({"cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods.to_string(), "ephemeral-storage": "100Gi"});
        let node = json!({
            "metadata": {"name": spec.name, "labels": labels},
            "spec": if taints.is_empty() { json!({}) } else { json!({"taints": taints}) },
            "status": {
                "capacity": resources, "allocatable": resources,
                "conditions": [ready_condition(true, &now)],
                "addresses": [{"type": "InternalIP", "address": node_ip(index).to_string()},
                              {"type": "Hostname", "address": spec.name}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "operatingSystem": "linux", "architecture": "amd64",
                             "containerRuntimeVersion": "containerd://2.0.0", "osImage": "kube-sim", "kernelVersion": "6.1.0",
                             "kubeProxyVersion": "v1.33.0", "machineID": "", "systemUUID": "", "bootID": ""}
            }
        });
        self.store.client(format!("kubelet/{}", spec.name)).create(&NODES.r(), None, node)
    }

    /// Deletes the Node object (the machine is gone).
    pub fn remove(&self, name: &str) -> ApiResult<()> {
        self.store.client("kubectl").delete(&NODES.r(), None, name, &DeleteOptions::default()).map(|_| ())
    }

    /// `kubectl cordon` / `uncordon`.
    pub fn cordon(&self, name: &str, unschedulable: bool) -> ApiResult<()> {
        let patch = json!({"spec": {"unschedulable": if unschedulable { json!(true) } else { Value::Null }}});
        self.store.client("kubectl").patch(&NODES.r(), None, name, None, PatchType::Merge, &patch).map(|_| ())
    }

    /// Adds a taint (`kubectl taint`).
    pub fn taint(&self, name: &str, key: &str, value: &str, effect: &str) -> ApiResult<()> {
        let node = self.get(name)?;
        let mut taints: Vec<Value> = node["spec"]["taints"].as_array().cloned().unwrap_or_default();
        taints.retain(|t| !(t["key"] == key && t["effect"] == effect));
        taints.push(json!({"key": key, "value": value, "effect": effect}));
        let patch = json!({"spec": {"taints": taints}});
        self.store.client("kubectl").patch(&NODES.r(), None, name, None, PatchType::Merge, &patch).map(|_| ())
    }

    /// Makes the node fail (its kubelet stops reporting) or recover.
    pub fn set_ready(&self, name: &str, ready: bool) -> ApiResult<()> {
        let node = self.get(name)?;
        let now = now_time(&self.store);
        let client = self.store.client(NODE_CONTROLLER);
        let conds = set_condition(&node["status"]["conditions"], ready_condition(ready, &now), &now);
        client.patch_status(&NODES.r(), None, name, &json!({"status": {"conditions": conds}}))?;
        let mut taints: Vec<Value> = node["spec"]["taints"].as_array().cloned().unwrap_or_default();
        taints.retain(|t| t["key"] != UNREACHABLE);
        if !ready {
            for effect in ["NoSchedule", "NoExecute"] {
                taints.push(json!({"key": UNREACHABLE, "effect": effect, "timeAdded": now}));
            }
        }
        let taints = if taints.is_empty() { Value::Null } else { Value::Array(taints) };
        client.patch(&NODES.r(), None, name, None, PatchType::Merge, &json!({"spec": {"taints": taints}}))?;
        if !ready {
            mark_pods_not_ready(&self.store, name);
        }
        Ok(())
    }

    /// Powers the node's machine off (its pods' processes stop, the node goes NotReady)
    /// or on again (the node is Ready and its kubelet starts the pods' containers).
    pub fn set_powered(&self, name: &str, on: bool) -> ApiResult<()> {
        self.get(name)?;
        let value = if on { Value::Null } else { json!("true") };
        let patch = json!({"metadata": {"annotations": {POWERED_OFF: value}}});
        self.store.client("kube-sim/power").patch(&NODES.r(), None, name, None, PatchType::Merge, &patch)?;
        self.set_ready(name, on)
    }

    fn get(&self, name: &str) -> ApiResult<Arc<Value>> {
        super::objects::get(&self.store, NODES, None, name)
            .ok_or_else(|| crate::error::ApiError::not_found("", "nodes", name))
    }
}

fn index_of(name: &str) -> Option<u32> {
    name.strip_prefix("node-").and_then(|n| n.parse().ok())
}

fn ready_condition(ready: bool, now: &str) -> Value {
    if ready {
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
               "message": "kubelet is posting ready status", "lastHeartbeatTime": now})
    } else {
        json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
               "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": now})
    }
}

/// Whether a node object says its kubelet is working.
pub fn node_ready(node: &Value) -> bool {
    super::objects::condition(node, "Ready").is_some_and(|c| c["status"] == "True")
}

/// Whether the node's machine is powered off ([`NodeControl::set_powered`]).
pub fn powered_off(node: &Value) -> bool {
    node["metadata"]["annotations"][POWERED_OFF] == "true"
}

/// What the node lifecycle controller does to the pods of a node that stopped reporting
/// (or is gone): `Ready=False`; the pods are not deleted.
pub(crate) fn mark_pods_not_ready(store: &Store, node: &str) {
    let client = store.client(NODE_CONTROLLER);
    let now = now_time(store);
    for pod in list(store, PODS, None) {
        if str_of(&pod, &["spec", "nodeName"]) != node || super::objects::is_terminal(&pod) {
            continue;
        }
        if super::objects::condition(&pod, "Ready").is_some_and(|c| c["status"] == "False") {
            continue;
        }
        let conds = set_condition(&pod["status"]["conditions"], json!({"type": "Ready", "status": "False"}), &now);
        let (ns, name) = (str_of(&pod, &["metadata", "namespace"]), str_of(&pod, &["metadata", "name"]));
        let _ = client.patch_status(&PODS.r(), Some(ns), name, &json!({"status": {"conditions": conds}}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_named_like_the_seeded_ones() {
        assert_eq!(zone_name(0), "zone-a");
        assert_eq!(zone_name(2), "zone-c");
        assert_eq!(zone_name(26), "zone-aa");
    }

    #[test]
    fn node_addresses_are_loopback() {
        assert!(node_ip(1).is_loopback());
        assert_eq!(node_ip(1), Ipv4Addr::new(127, 3, 0, 2));
        assert_ne!(node_ip(253), node_ip(254));
    }
}
