//! The resources the server knows: built-in kinds and those registered by CRDs.

use std::sync::Arc;

use serde_json::Value;

/// Where objects are stored: one store per group and resource, whatever version serves them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource { group: group.into(), resource: resource.into() }
    }
}

/// How the served shape differs from the stored one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Same fields; only `apiVersion` changes.
    Plain,
    /// `events.k8s.io/v1` Event over the stored core/v1 Event.
    EventsV1,
}

/// Paths of the scale subresource, as a CRD declares them (`.spec.replicas`).
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleSpec {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// One served group/version/resource.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub scale: Option<ScaleSpec>,
    pub printer_columns: Vec<PrinterColumn>,
    pub storage: GroupResource,
    pub shape: Shape,
    /// Served from a CustomResourceDefinition.
    pub custom: bool,
    /// `metadata.generation` is maintained (kube-apiserver 1.33 does it for CRs, CRDs, PDBs).
    pub tracks_generation: bool,
    /// CRD `selectableFields` JSON paths (`.spec.color`), usable in field selectors.
    pub selectable_fields: Vec<String>,
    /// The owning CRD's name, for custom resources.
    pub crd: Option<String>,
    /// The version's `openAPIV3Schema`, for custom resources.
    pub schema: Option<Value>,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn gr(&self) -> &GroupResource {
        &self.storage
    }

    /// What error messages call the resource: `pods`, `widgets.example.com`.
    pub fn qualified(&self) -> String {
        crate::error::qualified(&self.group, &self.plural)
    }

    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceInfo {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: vec![],
            categories: vec![],
            status_subresource: false,
            scale: None,
            printer_columns: vec![],
            storage: GroupResource::new(group, plural),
            shape: Shape::Plain,
            custom: false,
            tracks_generation: false,
            selectable_fields: vec![],
            crd: None,
            schema: None,
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }
    fn all(mut self) -> Self {
        self.categories = vec!["all".into()];
        self
    }
    fn status(mut self) -> Self {
        self.status_subresource = true;
        self
    }
    fn generation(mut self) -> Self {
        self.tracks_generation = true;
        self
    }
    fn scale(mut self, spec: &str, status: &str, selector: &str) -> Self {
        self.scale = Some(ScaleSpec {
            spec_replicas_path: spec.into(),
            status_replicas_path: status.into(),
            label_selector_path: Some(selector.into()),
        });
        self
    }
}

/// The group of Role, RoleBinding, ClusterRole and ClusterRoleBinding.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The built-in resources this server serves.
pub fn builtins() -> Vec<ResourceInfo> {
    let mut events_v1 = ResourceInfo::builtin("events.k8s.io", "v1", "events", "Event", true).short(&["ev"]);
    events_v1.storage = GroupResource::new("", "events");
    events_v1.shape = Shape::EventsV1;
    vec![
        ResourceInfo::builtin("", "v1", "namespaces", "Namespace", false).short(&["ns"]).status(),
        ResourceInfo::builtin("", "v1", "pods", "Pod", true).short(&["po"]).all().status(),
        ResourceInfo::builtin("", "v1", "services", "Service", true).short(&["svc"]).all().status(),
        ResourceInfo::builtin("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]),
        ResourceInfo::builtin("", "v1", "secrets", "Secret", true),
        ResourceInfo::builtin("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true)
            .short(&["pvc"])
            .status(),
        ResourceInfo::builtin("", "v1", "persistentvolumes", "PersistentVolume", false).short(&["pv"]).status(),
        ResourceInfo::builtin("", "v1", "nodes", "Node", false).short(&["no"]).status(),
        ResourceInfo::builtin("", "v1", "events", "Event", true).short(&["ev"]),
        ResourceInfo::builtin("", "v1", "serviceaccounts", "ServiceAccount", true).short(&["sa"]),
        ResourceInfo::builtin("apps", "v1", "controllerrevisions", "ControllerRevision", true),
        // Served and stored like kube-apiserver does; no Deployment controller runs here, so
        // no ReplicaSets or Pods follow from one and its status stays as written.
        ResourceInfo::builtin("apps", "v1", "deployments", "Deployment", true)
            .short(&["deploy"])
            .all()
            .status()
            .generation()
            .scale(".spec.replicas", ".status.replicas", ".spec.selector"),
        ResourceInfo::builtin("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true)
            .short(&["pdb"])
            .status()
            .generation(),
        ResourceInfo::builtin("coordination.k8s.io", "v1", "leases", "Lease", true),
        ResourceInfo::builtin(RBAC_GROUP, "v1", "roles", "Role", true),
        ResourceInfo::builtin(RBAC_GROUP, "v1", "rolebindings", "RoleBinding", true),
        ResourceInfo::builtin(RBAC_GROUP, "v1", "clusterroles", "ClusterRole", false),
        ResourceInfo::builtin(RBAC_GROUP, "v1", "clusterrolebindings", "ClusterRoleBinding", false),
        events_v1,
        ResourceInfo::builtin("storage.k8s.io", "v1", "storageclasses", "StorageClass", false).short(&["sc"]),
        // Kubernetes 1.33 serves it at v1beta1 (with the VolumeAttributesClass feature on).
        ResourceInfo::builtin("storage.k8s.io", "v1beta1", "volumeattributesclasses", "VolumeAttributesClass", false)
            .short(&["vac"]),
        ResourceInfo::builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
        )
        .short(&["crd", "crds"])
        .status()
        .generation(),
    ]
}

/// The resources a CRD serves, one per served version.
pub fn from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return vec![];
    }
    let singular = names["singular"].as_str().map(str::to_string).unwrap_or_else(|| kind.to_lowercase());
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .map(|v| {
            let sub = &v["subresources"];
            let scale = sub.get("scale").filter(|s| s.is_object()).map(|s| ScaleSpec {
                spec_replicas_path: s["specReplicasPath"].as_str().unwrap_or(".spec.replicas").into(),
                status_replicas_path: s["statusReplicasPath"].as_str().unwrap_or(".status.replicas").into(),
                label_selector_path: s["labelSelectorPath"].as_str().map(str::to_string),
            });
            let printer_columns = v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .map(|c| PrinterColumn {
                            name: c["name"].as_str().unwrap_or_default().into(),
                            type_: c["type"].as_str().unwrap_or("string").into(),
                            format: c["format"].as_str().unwrap_or_default().into(),
                            description: c["description"].as_str().unwrap_or_default().into(),
                            priority: c["priority"].as_i64().unwrap_or(0),
                            json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let selectable_fields = v["selectableFields"]
                .as_array()
                .map(|f| f.iter().filter_map(|x| x["jsonPath"].as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            ResourceInfo {
                group: group.into(),
                version: v["name"].as_str().unwrap_or_default().into(),
                plural: plural.into(),
                singular: singular.clone(),
                kind: kind.into(),
                namespaced,
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                status_subresource: sub.get("status").is_some_and(Value::is_object),
                scale,
                printer_columns,
                storage: GroupResource::new(group, plural),
                shape: Shape::Plain,
                custom: true,
                tracks_generation: true,
                selectable_fields,
                crd: crd["metadata"]["name"].as_str().map(str::to_string),
                schema: v["schema"].get("openAPIV3Schema").cloned(),
            }
        })
        .collect()
}

/// Every served resource, looked up by group/version/plural.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    resources: Vec<Arc<ResourceInfo>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        Registry { resources: builtins().into_iter().map(Arc::new).collect() }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.resources.iter().find(|r| r.group == group && r.version == version && r.plural == plural).cloned()
    }

    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.resources.iter().find(|r| r.group == group && r.version == version && r.kind == kind).cloned()
    }

    /// Any served version of a stored resource (the first registered).
    pub fn any_version(&self, gr: &GroupResource) -> Option<Arc<ResourceInfo>> {
        self.resources.iter().find(|r| r.storage == *gr && r.shape == Shape::Plain).cloned()
    }

    pub fn all(&self) -> &[Arc<ResourceInfo>] {
        &self.resources
    }

    /// Replaces whatever the CRD served before with what it serves now.
    pub fn set_crd(&mut self, crd_name: &str, infos: Vec<ResourceInfo>) {
        self.remove_crd(crd_name);
        self.resources.extend(infos.into_iter().map(Arc::new));
    }

    pub fn remove_crd(&mut self, crd_name: &str) {
        self.resources.retain(|r| r.crd.as_deref() != Some(crd_name));
    }

    /// Groups in discovery order: core first, then built-in groups, then custom ones,
    /// each with its versions (the first listed is preferred).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.resources {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        for (_, versions) in &mut out {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }

    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.resources.iter().filter(|r| r.group == group && r.version == version).cloned().collect()
    }
}

/// Kubernetes version ordering: GA > beta > alpha, then by number (v2 > v1 > v1beta2).
pub fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else { return (0, 0, 0) };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else { return (0, 0, 0) };
    let tail = &rest[digits.len()..];
    let (level, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        return (0, 0, 0);
    };
    (level, major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_registers_each_served_version_with_subresources() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}}},
                    {"name": "v1alpha1", "served": false, "storage": false}
                ]
            }
        });
        let infos = from_crd(&crd);
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].singular, "widget");
        assert!(infos[0].status_subresource);
        assert_eq!(infos[0].scale.as_ref().map(|s| s.spec_replicas_path.as_str()), Some(".spec.size"));
    }

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v1beta1", "v2", "v1"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v1beta1", "v1alpha1"]);
    }
}
