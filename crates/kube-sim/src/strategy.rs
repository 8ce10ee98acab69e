//! Per-kind behaviour of built-in types on write: defaulting (as the API types' defaulters
//! and the always-on admission plugins do) and the status a create starts from.

use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let Value::Object(m) = v else { return None };
    let e = m.entry(key).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e.as_object_mut()
}

fn default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), value);
    }
}

/// A Secret's `stringData` is write-only: every write merges it into `data` (base64,
/// its keys winning over `data`'s) and it is never stored, as kube-apiserver converts
/// it. A later write of `data` alone then changes what the volumes hold.
fn fold_string_data(secret: &mut Map<String, Value>) {
    use base64::Engine;
    let Some(Value::Object(strings)) = secret.remove("stringData") else { return };
    let Some(data) = obj_mut_map(secret, "data") else { return };
    for (key, value) in strings {
        let text = value.as_str().unwrap_or_default();
        data.insert(key, json!(base64::engine::general_purpose::STANDARD.encode(text)));
    }
}

fn obj_mut_map<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let e = m.entry(key).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e.as_object_mut()
}

/// Fills the defaults kube-apiserver fills on every write of a built-in object.
pub fn apply_defaults(info: &ResourceInfo, obj: &mut Value) {
    if info.custom {
        return;
    }
    match (info.storage.group.as_str(), info.storage.resource.as_str()) {
        ("", "pods") => default_pod(obj),
        ("", "services") => default_service(obj),
        ("", "secrets") => {
            if let Value::Object(m) = obj {
                default(m, "type", json!("Opaque"));
                fold_string_data(m);
            }
        }
        ("", "persistentvolumeclaims") => {
            if let Some(spec) = obj_mut(obj, "spec") {
                default(spec, "volumeMode", json!("Filesystem"));
            }
        }
        ("", "persistentvolumes") => {
            if let Some(spec) = obj_mut(obj, "spec") {
                default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
                default(spec, "volumeMode", json!("Filesystem"));
            }
        }
        ("storage.k8s.io", "storageclasses") => {
            if let Value::Object(m) = obj {
                default(m, "reclaimPolicy", json!("Delete"));
                default(m, "volumeBindingMode", json!("Immediate"));
            }
        }
        ("", "namespaces") => {
            if let Some(spec) = obj_mut(obj, "spec") {
                default(spec, "finalizers", json!(["kubernetes"]));
            }
        }
        ("apps", "deployments") => default_deployment(obj),
        (crate::registry::RBAC_GROUP, "rolebindings" | "clusterrolebindings") => {
            crate::validation::rbac::default_binding(obj)
        }
        _ => {}
    }
}

/// apps/v1's Deployment defaults, and the pod spec defaults of its template.
fn default_deployment(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if let Value::Object(strategy) = strategy {
        default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type") == Some(&json!("RollingUpdate")) {
            let rolling = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Value::Object(rolling) = rolling {
                default(rolling, "maxUnavailable", json!("25%"));
                default(rolling, "maxSurge", json!("25%"));
            }
        }
    }
    let Some(template) = spec.get_mut("template") else { return };
    if let Some(pod_spec) = obj_mut(template, "spec") {
        default_pod_spec(pod_spec);
    }
}

fn default_container(c: &mut Value) {
    let Value::Object(m) = c else { return };
    let image = m.get("image").and_then(Value::as_str).unwrap_or_default().to_string();
    let tag = image.rsplit('/').next().unwrap_or_default();
    let pull =
        if image.contains('@') || (tag.contains(':') && !tag.ends_with(":latest")) { "IfNotPresent" } else { "Always" };
    default(m, "imagePullPolicy", json!(pull));
    default(m, "terminationMessagePath", json!("/dev/termination-log"));
    default(m, "terminationMessagePolicy", json!("File"));
    default(m, "resources", json!({}));
    if let Some(Value::Array(ports)) = m.get_mut("ports") {
        for p in ports {
            if let Value::Object(p) = p {
                default(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// What every pod spec gets, in a Pod or in a template.
fn default_pod_spec(spec: &mut Map<String, Value>) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

fn default_pod(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    default_pod_spec(spec);
    default(spec, "enableServiceLinks", json!(true));
    default(spec, "priority", json!(0));
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    default(spec, "serviceAccountName", json!("default"));
    default(spec, "serviceAccount", json!("default"));
    // The DefaultTolerationSeconds admission plugin.
    let mut tolerations = spec.get("tolerations").and_then(Value::as_array).cloned().unwrap_or_default();
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        let present = tolerations.iter().any(|t| {
            t["effect"] == "NoExecute" && (t["key"] == key || (t["key"].is_null() && t["operator"] == "Exists"))
        });
        if !present {
            tolerations
                .push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    spec.insert("tolerations".into(), Value::Array(tolerations));
}

fn default_service(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else { return };
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    default(spec, "internalTrafficPolicy", json!("Cluster"));
    default(spec, "ipFamilyPolicy", json!("SingleStack"));
    default(spec, "ipFamilies", json!(["IPv4"]));
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports {
            if let Value::Object(p) = p {
                default(p, "protocol", json!("TCP"));
                if let Some(port) = p.get("port").cloned() {
                    default(p, "targetPort", port);
                }
            }
        }
    }
}

/// The status a new object starts with (clients cannot create status where the type has
/// a status subresource), and other create-only preparation.
pub fn prepare_create(info: &ResourceInfo, obj: &mut Value) {
    let Value::Object(m) = obj else { return };
    if info.custom {
        if info.status_subresource {
            m.remove("status");
        }
        return;
    }
    match (info.storage.group.as_str(), info.storage.resource.as_str()) {
        ("", "pods") => {
            let qos = qos_class(m.get("spec").unwrap_or(&Value::Null));
            m.insert("status".into(), json!({"phase": "Pending", "qosClass": qos}));
        }
        ("", "persistentvolumeclaims") | ("", "persistentvolumes") => {
            m.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "namespaces") => {
            m.insert("status".into(), json!({"phase": "Active"}));
        }
        ("", "services") => {
            m.insert("status".into(), json!({"loadBalancer": {}}));
        }
        // The Deployment controller writes the status; a new one starts empty.
        ("apps", "deployments") => {
            m.insert("status".into(), json!({}));
        }
        ("policy", "poddisruptionbudgets") => {
            m.insert(
                "status".into(),
                json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
            );
        }
        _ => {}
    }
}

/// The pod's QoS class, from its containers' requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> =
        ["containers", "initContainers"].iter().flat_map(|k| spec[*k].as_array().into_iter().flatten()).collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = c["resources"]["requests"].as_object();
        let lim = c["resources"]["limits"].as_object();
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(plural: &str) -> ResourceInfo {
        crate::registry::builtins().into_iter().find(|r| r.plural == plural && r.group.is_empty()).unwrap()
    }

    #[test]
    fn pods_get_kube_defaults_and_pending_status() {
        let mut pod =
            json!({"spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}, "status": {"phase": "Running"}});
        apply_defaults(&info("pods"), &mut pod);
        prepare_create(&info("pods"), &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(pod["status"], json!({"phase": "Pending", "qosClass": "BestEffort"}));
        let before = pod.clone();
        apply_defaults(&info("pods"), &mut pod);
        assert_eq!(pod, before, "defaulting is idempotent");
    }

    #[test]
    fn qos_follows_requests_and_limits() {
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        assert_eq!(qos_class(&b), "Burstable");
    }
}
