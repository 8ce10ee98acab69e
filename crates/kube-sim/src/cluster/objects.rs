//! Reading the store the way a component reads its informer cache (no request log
//! entry), and small accessors shared by the components.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::store::{ResourceRef, Store};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Res {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
}

impl Res {
    pub fn r(self) -> ResourceRef {
        ResourceRef::new(self.group, self.version, self.plural)
    }
}

pub(crate) const PODS: Res = Res { group: "", version: "v1", plural: "pods" };
pub(crate) const NODES: Res = Res { group: "", version: "v1", plural: "nodes" };
pub(crate) const PVCS: Res = Res { group: "", version: "v1", plural: "persistentvolumeclaims" };
pub(crate) const PVS: Res = Res { group: "", version: "v1", plural: "persistentvolumes" };
pub(crate) const SERVICES: Res = Res { group: "", version: "v1", plural: "services" };
pub(crate) const CONFIGMAPS: Res = Res { group: "", version: "v1", plural: "configmaps" };
pub(crate) const SECRETS: Res = Res { group: "", version: "v1", plural: "secrets" };
pub(crate) const EVENTS: Res = Res { group: "", version: "v1", plural: "events" };
pub(crate) const PDBS: Res = Res { group: "policy", version: "v1", plural: "poddisruptionbudgets" };
pub(crate) const STORAGE_CLASSES: Res = Res { group: "storage.k8s.io", version: "v1", plural: "storageclasses" };
pub(crate) const VOLUME_ATTRIBUTES_CLASSES: Res =
    Res { group: "storage.k8s.io", version: "v1beta1", plural: "volumeattributesclasses" };

pub(crate) const ZONE: &str = "topology.kubernetes.io/zone";
pub(crate) const REGION: &str = "topology.kubernetes.io/region";
pub(crate) const HOSTNAME: &str = "kubernetes.io/hostname";

/// Every object of a resource (in `ns`, or all namespaces), shared with the store: the
/// components read whole resources on every change they wake for, and copying them each
/// time was most of the simulators' work.
pub(crate) fn list(store: &Store, res: Res, ns: Option<&str>) -> Vec<Arc<Value>> {
    let Some(info) = store.resource(res.group, res.version, res.plural) else { return Vec::new() };
    store.list_shared(&info, ns)
}

pub(crate) fn get(store: &Store, res: Res, ns: Option<&str>, name: &str) -> Option<Arc<Value>> {
    let info = store.resource(res.group, res.version, res.plural)?;
    store.get_shared(&info, ns, name).ok()
}

pub(crate) fn str_of<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or_default()
}

pub(crate) fn labels(obj: &Value) -> BTreeMap<String, String> {
    crate::selectors::labels_of(obj)
}

/// A map selector (`Service.spec.selector`, `nodeSelector`): every pair must match.
pub(crate) fn map_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    selector
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k).is_some_and(|l| Some(l.as_str()) == v.as_str())))
}

/// A quantity in base units (bytes, cores), 0 if absent or malformed.
pub(crate) fn quantity(v: &Value) -> f64 {
    match v {
        Value::String(s) => crate::validation::quantity::parse(s).unwrap_or(0.0),
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        _ => 0.0,
    }
}

pub(crate) fn now_time(store: &Store) -> String {
    crate::meta::time(store.clock().wall())
}

/// The conditions array with `cond` set: the transition time is kept when the status
/// did not change.
pub(crate) fn set_condition(conditions: &Value, cond: Value, now: &str) -> Vec<Value> {
    let mut out: Vec<Value> = conditions.as_array().cloned().unwrap_or_default();
    put_condition(&mut out, cond, now);
    out
}

/// [`set_condition`] in place, for a status built from several conditions (the
/// kubelet's, for every pod on every pass) without copying the array for each.
pub(crate) fn put_condition(conditions: &mut Vec<Value>, mut cond: Value, now: &str) {
    let ty = cond["type"].clone();
    match conditions.iter_mut().find(|c| c["type"] == ty) {
        Some(existing) => {
            let same = existing["status"] == cond["status"];
            cond["lastTransitionTime"] = if same && !existing["lastTransitionTime"].is_null() {
                existing["lastTransitionTime"].clone()
            } else {
                json!(now)
            };
            if cond.get("lastProbeTime").is_none() {
                cond["lastProbeTime"] = existing.get("lastProbeTime").cloned().unwrap_or(Value::Null);
            }
            *existing = cond;
        }
        None => {
            cond["lastTransitionTime"] = json!(now);
            if cond.get("lastProbeTime").is_none() {
                cond["lastProbeTime"] = Value::Null;
            }
            conditions.push(cond);
        }
    }
}

pub(crate) fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == ty)
}

/// The claim names a pod's volumes use (`persistentVolumeClaim` and generic ephemeral
/// volumes are not distinguished: ephemeral ones are named `<pod>-<volume>`).
pub(crate) fn pod_claims(pod: &Value) -> Vec<(String, String)> {
    let pod_name = str_of(pod, &["metadata", "name"]);
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let vol = v["name"].as_str().unwrap_or_default().to_string();
            if let Some(c) = v["persistentVolumeClaim"]["claimName"].as_str() {
                Some((vol, c.to_string()))
            } else if v["ephemeral"].is_object() {
                Some((vol.clone(), format!("{pod_name}-{vol}")))
            } else {
                None
            }
        })
        .collect()
}

pub(crate) fn is_terminal(pod: &Value) -> bool {
    matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}
