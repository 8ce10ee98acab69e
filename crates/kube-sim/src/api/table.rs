//! Server-side printing: `meta.k8s.io/v1` Tables, with CRD printer columns and default
//! columns for the built-in kinds (kubectl prints what the server returns).

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::jsonpath;
use crate::meta;
use crate::registry::{PrinterColumn, ResourceInfo};

/// kube's `HumanDuration` (`5s`, `3m20s`, `2d5h`).
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let m = s / 60;
    let h = s / 3600;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", s % 60) }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 { format!("{}d", h / 24) } else { format!("{}d{}h", h / 24, h % 24) }
    } else if h < 24 * 365 * 2 {
        format!("{}d", h / 24)
    } else if h < 24 * 365 * 8 {
        let y = h / 24 / 365;
        let d = (h / 24) % 365;
        if d == 0 { format!("{y}y") } else { format!("{y}y{d}d") }
    } else {
        format!("{}y", h / 24 / 365)
    }
}

fn age(ts: &Value, now: SystemTime) -> String {
    let Some(t) = ts.as_str().and_then(meta::parse_time) else { return "<unknown>".into() };
    let now = jiff::Timestamp::try_from(now).map(|n| n.as_second()).unwrap_or(0);
    human_duration(now - t.as_second())
}

fn col(name: &str, type_: &str, format: &str, priority: i64) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: format.into(),
        description: String::new(),
        priority,
        json_path: String::new(),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

fn builtin_columns(info: &ResourceInfo) -> Vec<PrinterColumn> {
    let name = col("Name", "string", "name", 0);
    let age = col("Age", "string", "", 0);
    let mut cols = vec![name];
    match (info.storage.group.as_str(), info.storage.resource.as_str()) {
        ("", "pods") => {
            cols.extend([
                col("Ready", "string", "", 0),
                col("Status", "string", "", 0),
                col("Restarts", "string", "", 0),
                age,
            ]);
            cols.extend([col("IP", "string", "", 1), col("Node", "string", "", 1)]);
        }
        ("", "services") => cols.extend([
            col("Type", "string", "", 0),
            col("Cluster-IP", "string", "", 0),
            col("External-IP", "string", "", 0),
            col("Port(s)", "string", "", 0),
            age,
        ]),
        ("", "configmaps") => cols.extend([col("Data", "integer", "", 0), age]),
        ("", "secrets") => cols.extend([col("Type", "string", "", 0), col("Data", "integer", "", 0), age]),
        ("", "persistentvolumeclaims") => cols.extend([
            col("Status", "string", "", 0),
            col("Volume", "string", "", 0),
            col("Capacity", "string", "", 0),
            col("Access Modes", "string", "", 0),
            col("StorageClass", "string", "", 0),
            age,
        ]),
        ("", "persistentvolumes") => cols.extend([
            col("Capacity", "string", "", 0),
            col("Access Modes", "string", "", 0),
            col("Reclaim Policy", "string", "", 0),
            col("Status", "string", "", 0),
            col("Claim", "string", "", 0),
            col("StorageClass", "string", "", 0),
            age,
        ]),
        ("", "nodes") => cols.extend([
            col("Status", "string", "", 0),
            col("Roles", "string", "", 0),
            age,
            col("Version", "string", "", 0),
        ]),
        ("", "namespaces") => cols.extend([col("Status", "string", "", 0), age]),
        ("", "events") => {
            cols = vec![
                col("Last Seen", "string", "", 0),
                col("Type", "string", "", 0),
                col("Reason", "string", "", 0),
                col("Object", "string", "", 0),
                col("Message", "string", "", 0),
            ];
        }
        ("coordination.k8s.io", "leases") => cols.extend([col("Holder", "string", "", 0), age]),
        ("policy", "poddisruptionbudgets") => cols.extend([
            col("Min Available", "string", "", 0),
            col("Max Unavailable", "string", "", 0),
            col("Allowed Disruptions", "integer", "", 0),
            age,
        ]),
        ("storage.k8s.io", "storageclasses") => cols.extend([
            col("Provisioner", "string", "", 0),
            col("ReclaimPolicy", "string", "", 0),
            col("VolumeBindingMode", "string", "", 0),
            col("AllowVolumeExpansion", "string", "", 0),
            age,
        ]),
        ("apps", "controllerrevisions") => {
            cols.extend([col("Controller", "string", "", 0), col("Revision", "integer", "", 0), age])
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => cols.push(col("Created At", "date", "", 0)),
        ("", "serviceaccounts") => cols.extend([col("Secrets", "string", "", 0), age]),
        ("apps", "deployments") => cols.extend([
            col("Ready", "string", "", 0),
            col("Up-to-date", "string", "", 0),
            col("Available", "string", "", 0),
            age,
            col("Containers", "string", "", 1),
            col("Images", "string", "", 1),
            col("Selector", "string", "", 1),
        ]),
        (crate::registry::RBAC_GROUP, "roles" | "clusterroles") => cols.push(col("Created At", "string", "date", 0)),
        (crate::registry::RBAC_GROUP, "rolebindings" | "clusterrolebindings") => cols.extend([
            col("Role", "string", "", 0),
            age,
            col("Users", "string", "", 1),
            col("Groups", "string", "", 1),
            col("ServiceAccounts", "string", "", 1),
        ]),
        _ => cols.push(age),
    }
    cols
}

fn pod_cells(o: &Value, now: SystemTime) -> Vec<Value> {
    let total = o["spec"]["containers"].as_array().map(Vec::len).unwrap_or(0);
    let statuses = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses.iter().filter_map(|c| c["restartCount"].as_i64()).sum();
    let mut status = o["status"]["reason"].as_str().or(o["status"]["phase"].as_str()).unwrap_or("Unknown").to_string();
    for c in &statuses {
        if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
            status = r.into();
        } else if let Some(r) = c["state"]["terminated"]["reason"].as_str() {
            status = r.into();
        }
    }
    if meta::is_deleting(o) {
        status = "Terminating".into();
    }
    vec![
        json!(meta::name(o)),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts.to_string()),
        json!(age(&o["metadata"]["creationTimestamp"], now)),
        json!(o["status"]["podIP"].as_str().unwrap_or("<none>")),
        json!(o["spec"]["nodeName"].as_str().unwrap_or("<none>")),
    ]
}

fn builtin_cells(info: &ResourceInfo, o: &Value, now: SystemTime) -> Vec<Value> {
    let name = json!(meta::name(o));
    let created = age(&o["metadata"]["creationTimestamp"], now);
    let count = |v: &Value| v.as_object().map(|m| m.len()).unwrap_or(0);
    let modes = |v: &Value| {
        meta::strings(v)
            .iter()
            .map(|m| match m.as_str() {
                "ReadWriteOnce" => "RWO",
                "ReadOnlyMany" => "ROX",
                "ReadWriteMany" => "RWX",
                "ReadWriteOncePod" => "RWOP",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    match (info.storage.group.as_str(), info.storage.resource.as_str()) {
        ("", "pods") => pod_cells(o, now),
        ("", "services") => {
            let ports: Vec<String> = o["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", s(&p["port"]), p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            let ext = o["status"]["loadBalancer"]["ingress"][0]["ip"].as_str().unwrap_or("<none>");
            vec![
                name,
                json!(o["spec"]["type"].as_str().unwrap_or("ClusterIP")),
                json!(o["spec"]["clusterIP"].as_str().unwrap_or("<none>")),
                json!(ext),
                json!(if ports.is_empty() { "<none>".to_string() } else { ports.join(",") }),
                json!(created),
            ]
        }
        ("", "configmaps") => vec![name, json!(count(&o["data"]) + count(&o["binaryData"])), json!(created)],
        ("", "secrets") => {
            vec![name, json!(o["type"].as_str().unwrap_or("Opaque")), json!(count(&o["data"])), json!(created)]
        }
        ("", "persistentvolumeclaims") => vec![
            name,
            json!(o["status"]["phase"].as_str().unwrap_or("")),
            json!(o["spec"]["volumeName"].as_str().unwrap_or("")),
            json!(o["status"]["capacity"]["storage"].as_str().unwrap_or("")),
            json!(modes(&o["status"]["accessModes"])),
            json!(o["spec"]["storageClassName"].as_str().unwrap_or("<unset>")),
            json!(created),
        ],
        ("", "persistentvolumes") => {
            let claim = &o["spec"]["claimRef"];
            let claim = if claim.is_null() {
                String::new()
            } else {
                format!("{}/{}", s(&claim["namespace"]), s(&claim["name"]))
            };
            vec![
                name,
                json!(o["spec"]["capacity"]["storage"].as_str().unwrap_or("")),
                json!(modes(&o["spec"]["accessModes"])),
                json!(o["spec"]["persistentVolumeReclaimPolicy"].as_str().unwrap_or("")),
                json!(o["status"]["phase"].as_str().unwrap_or("")),
                json!(claim),
                json!(o["spec"]["storageClassName"].as_str().unwrap_or("")),
                json!(created),
            ]
        }
        ("", "nodes") => {
            let ready = o["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready");
            let mut status = match ready.map(|c| c["status"].as_str().unwrap_or_default()) {
                Some("True") => "Ready".to_string(),
                _ => "NotReady".to_string(),
            };
            if o["spec"]["unschedulable"] == true {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = o["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/").map(str::to_string))
                .collect();
            vec![
                name,
                json!(status),
                json!(if roles.is_empty() { "<none>".to_string() } else { roles.join(",") }),
                json!(created),
                json!(o["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap_or("")),
            ]
        }
        ("", "namespaces") => vec![name, json!(o["status"]["phase"].as_str().unwrap_or("")), json!(created)],
        ("", "events") => {
            let last = [
                &o["lastTimestamp"],
                &o["eventTime"],
                &o["deprecatedLastTimestamp"],
                &o["metadata"]["creationTimestamp"],
            ]
            .into_iter()
            .find(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            .map(|v| age(v, now))
            .unwrap_or_else(|| "<unknown>".into());
            let io = if o["involvedObject"].is_null() { &o["regarding"] } else { &o["involvedObject"] };
            let kind = io["kind"].as_str().unwrap_or_default().to_lowercase();
            let message = o["message"].as_str().or(o["note"].as_str()).unwrap_or_default();
            vec![
                json!(last),
                json!(o["type"].as_str().unwrap_or("")),
                json!(o["reason"].as_str().unwrap_or("")),
                json!(format!("{kind}/{}", io["name"].as_str().unwrap_or_default())),
                json!(message),
            ]
        }
        ("coordination.k8s.io", "leases") => {
            vec![name, json!(o["spec"]["holderIdentity"].as_str().unwrap_or("")), json!(created)]
        }
        ("policy", "poddisruptionbudgets") => vec![
            name,
            json!(if o["spec"]["minAvailable"].is_null() { "N/A".into() } else { s(&o["spec"]["minAvailable"]) }),
            json!(if o["spec"]["maxUnavailable"].is_null() { "N/A".into() } else { s(&o["spec"]["maxUnavailable"]) }),
            json!(o["status"]["disruptionsAllowed"].as_i64().unwrap_or(0)),
            json!(created),
        ],
        ("storage.k8s.io", "storageclasses") => vec![
            name,
            json!(o["provisioner"].as_str().unwrap_or("")),
            json!(o["reclaimPolicy"].as_str().unwrap_or("Delete")),
            json!(o["volumeBindingMode"].as_str().unwrap_or("Immediate")),
            json!(o["allowVolumeExpansion"].as_bool().unwrap_or(false).to_string()),
            json!(created),
        ],
        ("apps", "controllerrevisions") => {
            let owner = o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["controller"] == true)
                .map(|r| format!("{}/{}", r["kind"].as_str().unwrap_or_default().to_lowercase(), s(&r["name"])))
                .unwrap_or_else(|| "<none>".into());
            vec![name, json!(owner), json!(o["revision"].as_i64().unwrap_or(0)), json!(created)]
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![name, json!(o["metadata"]["creationTimestamp"].as_str().unwrap_or(""))]
        }
        ("", "serviceaccounts") => vec![name, json!(o["secrets"].as_array().map_or(0, Vec::len)), json!(created)],
        ("apps", "deployments") => deployment_cells(o, name, created),
        (crate::registry::RBAC_GROUP, "roles" | "clusterroles") => {
            vec![name, json!(o["metadata"]["creationTimestamp"].as_str().unwrap_or(""))]
        }
        (crate::registry::RBAC_GROUP, "rolebindings" | "clusterrolebindings") => {
            let role = format!("{}/{}", s(&o["roleRef"]["kind"]), s(&o["roleRef"]["name"]));
            let subjects = |kind: &str| {
                let names: Vec<String> = o["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|x| x["kind"] == kind)
                    .map(|x| match kind {
                        "ServiceAccount" => format!("{}/{}", x["namespace"].as_str().unwrap_or(""), s(&x["name"])),
                        _ => s(&x["name"]),
                    })
                    .collect();
                json!(names.join(", "))
            };
            vec![name, json!(role), json!(created), subjects("User"), subjects("Group"), subjects("ServiceAccount")]
        }
        _ => vec![name, json!(created)],
    }
}

fn deployment_cells(o: &Value, name: Value, created: String) -> Vec<Value> {
    let status = &o["status"];
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let containers = o["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let join = |key: &str| containers.iter().map(|c| s(&c[key])).collect::<Vec<_>>().join(",");
    let selector = crate::store::selector_string(&o["spec"]["selector"]);
    vec![
        name,
        json!(format!("{}/{}", n(&status["readyReplicas"]), n(&o["spec"]["replicas"]))),
        json!(n(&status["updatedReplicas"])),
        json!(n(&status["availableReplicas"])),
        json!(created),
        json!(join("name")),
        json!(join("image")),
        json!(if selector.is_empty() { "<none>".to_string() } else { selector }),
    ]
}

fn custom_cell(c: &PrinterColumn, o: &Value, now: SystemTime) -> Value {
    let found = jsonpath::find(o, &c.json_path);
    let Some(v) = found.first() else { return Value::Null };
    match c.type_.as_str() {
        "date" => json!(age(v, now)),
        "integer" => v.as_i64().map(|n| json!(n)).unwrap_or_else(|| json!(s(v))),
        "number" => v.as_f64().map(|n| json!(n)).unwrap_or_else(|| json!(s(v))),
        "boolean" => v.as_bool().map(|b| json!(b)).unwrap_or_else(|| json!(s(v))),
        _ => match v {
            Value::String(x) => json!(x),
            other => json!(other.to_string()),
        },
    }
}

fn columns(info: &ResourceInfo) -> Vec<PrinterColumn> {
    if !info.custom {
        return builtin_columns(info);
    }
    let mut cols = vec![col("Name", "string", "name", 0)];
    if info.printer_columns.is_empty() {
        cols.push(col("Age", "date", "", 0));
    } else {
        cols.extend(info.printer_columns.iter().cloned());
    }
    cols
}

fn cells(info: &ResourceInfo, o: &Value, now: SystemTime) -> Vec<Value> {
    if !info.custom {
        return builtin_cells(info, o, now);
    }
    let mut out = vec![json!(meta::name(o))];
    if info.printer_columns.is_empty() {
        out.push(json!(age(&o["metadata"]["creationTimestamp"], now)));
    } else {
        out.extend(info.printer_columns.iter().map(|c| custom_cell(c, o, now)));
    }
    out
}

/// How much of each object a Table row embeds (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// A Table of `objects` (as served); `headers` false leaves out column definitions
/// (watch events after the first).
pub fn table(
    info: &ResourceInfo,
    objects: &[Value],
    rv: &str,
    cont: Option<&str>,
    include: IncludeObject,
    headers: bool,
    now: SystemTime,
) -> Value {
    let defs: Vec<Value> = if headers {
        columns(info)
            .iter()
            .map(|c| {
                let description = if c.description.is_empty() && c.name == "Name" {
                    "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names".to_string()
                } else {
                    c.description.clone()
                };
                json!({"name": c.name, "type": c.type_, "format": c.format, "description": description, "priority": c.priority})
            })
            .collect()
    } else {
        vec![]
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(info, o, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]});
                }
                IncludeObject::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        metadata["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
    }

    #[test]
    fn crd_printer_columns_are_evaluated() {
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "additionalPrinterColumns": [
                {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]}]}});
        let info = crate::registry::from_crd(&crd).remove(0);
        let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": {"size": 3},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let t = table(&info, &[obj], "5", None, IncludeObject::Metadata, true, SystemTime::now());
        assert_eq!(t["rows"][0]["cells"], json!(["w", "True", 3]));
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 3);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
