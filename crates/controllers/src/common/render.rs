//! Pure rendering helpers both components use: labels and owner references of
//! children, resources, volumes and PVCs, the TOML config with operator-owned keys,
//! and the overlay merge. No I/O here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Pod, PodSpec, ResourceRequirements as K8sResources, SecretVolumeSource,
    Volume as PodVolume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use tikv_operator_api::names::{self, RESERVED_VOLUME_PREFIX};
use tikv_operator_api::{Overlay, ResourceRequirements, Volume};

use super::Instance;

/// A user's input the operator cannot render; reported in a condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("config is not valid TOML: {0}")]
    InvalidConfig(String),
    #[error("overlay is invalid: {0}")]
    InvalidOverlay(String),
    #[error("instance has no group label")]
    NoGroup,
}

/// Mount path of the cluster TLS Secret in PD and TiKV pods.
pub const TLS_DIR: &str = "/var/lib/cluster-tls";
/// Pod volume names the operator uses (all with the reserved prefix).
pub const CONFIG_VOLUME: &str = "tikv-vol-config";
pub const TLS_VOLUME: &str = "tikv-vol-tls";

/// The labels of every child of an instance (Pod, ConfigMap, PVC).
pub fn child_labels<I: Instance>(instance: &I) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (names::LABEL_MANAGED_BY.to_string(), names::MANAGED_BY_OPERATOR.to_string()),
        (names::LABEL_CLUSTER.to_string(), instance.cluster_name()),
        (names::LABEL_COMPONENT.to_string(), I::COMPONENT.to_string()),
        (names::LABEL_GROUP.to_string(), instance.group()),
        (names::LABEL_INSTANCE.to_string(), instance.name_any()),
    ]);
    if let Some(revision) = instance.labels().get(names::LABEL_INSTANCE_REVISION_HASH) {
        labels.insert(names::LABEL_INSTANCE_REVISION_HASH.into(), revision.clone());
    }
    labels
}

/// The labels selecting a group's instances (and a group's pods, for Services).
pub fn group_selector(cluster: &str, component: &str, group: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (names::LABEL_MANAGED_BY.to_string(), names::MANAGED_BY_OPERATOR.to_string()),
        (names::LABEL_CLUSTER.to_string(), cluster.to_string()),
        (names::LABEL_COMPONENT.to_string(), component.to_string()),
        (names::LABEL_GROUP.to_string(), group.to_string()),
    ])
}

/// A selector map as the `k=v,k=v` string of a label selector.
pub fn selector_string(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// The controller owner reference to `owner` (blocking its deletion until GC).
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> Vec<OwnerReference> {
    owner.controller_owner_ref(&()).into_iter().collect()
}

/// Metadata of a child of an instance: name, namespace, labels, owner.
pub fn child_meta<I: Instance>(instance: &I, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: instance.namespace(),
        labels: Some(child_labels(instance)),
        owner_references: Some(controller_ref(instance)),
        ..ObjectMeta::default()
    }
}

/// Requests equal limits (Guaranteed QoS when both are set).
pub fn resources(requirements: &ResourceRequirements) -> Option<K8sResources> {
    let mut quantities = BTreeMap::new();
    if let Some(cpu) = &requirements.cpu {
        quantities.insert("cpu".to_string(), Quantity(cpu.clone()));
    }
    if let Some(memory) = &requirements.memory {
        quantities.insert("memory".to_string(), Quantity(memory.clone()));
    }
    (!quantities.is_empty()).then(|| K8sResources {
        limits: Some(quantities.clone()),
        requests: Some(quantities),
        ..K8sResources::default()
    })
}

/// `<image or default>:<version>`.
pub fn image(image: Option<&str>, default: &str, version: &str) -> String {
    format!("{}:{version}", image.unwrap_or(default))
}

/// The pod volume name of a template volume.
pub fn pod_volume_name(volume: &str) -> String {
    format!("{RESERVED_VOLUME_PREFIX}{volume}")
}

/// Where a template volume is mounted.
pub fn mount_path<I: Instance>(volume: &Volume) -> String {
    volume.mount_path.clone().unwrap_or_else(|| {
        if volume.name == names::DATA_VOLUME { I::DATA_DIR.to_string() } else { format!("/var/lib/{}", volume.name) }
    })
}

/// The data directory of an instance.
pub fn data_dir<I: Instance>(instance: &I) -> String {
    instance
        .volumes()
        .iter()
        .find(|v| v.name == names::DATA_VOLUME)
        .map_or_else(|| I::DATA_DIR.to_string(), mount_path::<I>)
}

/// Pod volumes and mounts of the template volumes (one PVC each).
pub fn pvc_volumes<I: Instance>(instance: &I, pod: &str) -> (Vec<PodVolume>, Vec<VolumeMount>) {
    instance
        .volumes()
        .iter()
        .map(|volume| {
            let name = pod_volume_name(&volume.name);
            let pod_volume = PodVolume {
                name: name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: names::pvc_name(&volume.name, pod),
                    read_only: None,
                }),
                ..PodVolume::default()
            };
            let mount = VolumeMount { name, mount_path: mount_path::<I>(volume), ..VolumeMount::default() };
            (pod_volume, mount)
        })
        .unzip()
}

/// The cluster TLS Secret volume and its mount.
/// Every volume of an instance's Pod and its mounts: the template's PVCs, the ConfigMap
/// (named like the Pod) at `config_dir`, and the TLS Secret when given.
pub fn pod_volumes<I: Instance>(
    instance: &I,
    pod: &str,
    config_dir: &str,
    tls_secret: Option<String>,
) -> (Vec<PodVolume>, Vec<VolumeMount>) {
    let (mut volumes, mut mounts) = pvc_volumes(instance, pod);
    volumes.push(PodVolume {
        name: CONFIG_VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource { name: pod.to_string(), ..ConfigMapVolumeSource::default() }),
        ..PodVolume::default()
    });
    mounts.push(VolumeMount {
        name: CONFIG_VOLUME.into(),
        mount_path: config_dir.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    });
    if let Some(secret) = tls_secret {
        let (volume, mount) = tls_volume(secret);
        volumes.push(volume);
        mounts.push(mount);
    }
    (volumes, mounts)
}

pub fn tls_volume(secret: String) -> (PodVolume, VolumeMount) {
    (
        PodVolume {
            name: TLS_VOLUME.into(),
            secret: Some(SecretVolumeSource { secret_name: Some(secret), ..SecretVolumeSource::default() }),
            ..PodVolume::default()
        },
        VolumeMount {
            name: TLS_VOLUME.into(),
            mount_path: TLS_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
    )
}

/// The PVCs of an instance. They carry the instance's labels but no owner reference:
/// deleting an instance or the Cluster must not take the data with it unless the
/// deletion policy says so (DESIGN.md section 5, rule 9).
pub fn pvcs<I: Instance>(instance: &I, pod: &str) -> Result<Vec<PersistentVolumeClaim>, RenderError> {
    let overlays = instance.overlay().map(|o| o.volume_claims.as_slice()).unwrap_or_default();
    instance
        .volumes()
        .iter()
        .map(|volume| {
            let mut labels = child_labels(instance);
            labels.insert(names::LABEL_VOLUME_NAME.into(), volume.name.clone());
            let mut pvc = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(names::pvc_name(&volume.name, pod)),
                    namespace: instance.namespace(),
                    labels: Some(labels),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([("storage".to_string(), Quantity(volume.storage.clone()))])),
                        limits: None,
                    }),
                    storage_class_name: volume.storage_class_name.clone(),
                    volume_attributes_class_name: volume.volume_attributes_class_name.clone(),
                    ..PersistentVolumeClaimSpec::default()
                }),
                status: None,
            };
            if let Some(overlay) = overlays.iter().find(|o| o.name == volume.name) {
                if let Some(meta) = &overlay.metadata {
                    merge_meta(&mut pvc.metadata, meta);
                }
                if let Some(spec) = &overlay.spec {
                    let mut base =
                        serde_json::to_value(&pvc.spec).map_err(|e| RenderError::InvalidOverlay(e.to_string()))?;
                    merge_json(&mut base, spec);
                    pvc.spec = serde_json::from_value(base)
                        .map_err(|e| RenderError::InvalidOverlay(format!("volumeClaims {}: {e}", volume.name)))?;
                }
            }
            Ok(pvc)
        })
        .collect()
}

fn merge_meta(meta: &mut ObjectMeta, overlay: &tikv_operator_api::ObjectMeta) {
    let labels = meta.labels.get_or_insert_default();
    for (k, v) in &overlay.labels {
        // The operator's own labels win: they are how it finds its objects.
        if !k.starts_with(names::LABEL_PREFIX) {
            labels.insert(k.clone(), v.clone());
        }
    }
    if !overlay.annotations.is_empty() {
        let annotations = meta.annotations.get_or_insert_default();
        for (k, v) in &overlay.annotations {
            if !k.starts_with(names::ANNOTATION_PREFIX) {
                annotations.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Merges `overlay` into `base`: objects merge key by key, lists of objects that all
/// have a `name` merge by name (containers, volumes, env, ports), other values replace.
/// `null` removes a key, as in a JSON merge patch.
pub fn merge_json(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                if value.is_null() {
                    base.remove(key);
                } else if let Some(existing) = base.get_mut(key) {
                    merge_json(existing, value);
                } else {
                    base.insert(key.clone(), value.clone());
                }
            }
        }
        (Value::Array(base), Value::Array(overlay)) if all_named(base) && all_named(overlay) => {
            for item in overlay {
                let name = item.get("name");
                match base.iter_mut().find(|b| b.get("name") == name) {
                    Some(existing) => merge_json(existing, item),
                    None => base.push(item.clone()),
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

fn all_named(items: &[Value]) -> bool {
    items.iter().all(|i| i.get("name").is_some_and(Value::is_string))
}

/// Applies the pod overlay of an instance to a rendered Pod. The result must still be
/// a valid PodSpec, and may not touch the operator's reserved volumes.
pub fn apply_pod_overlay(pod: &mut Pod, overlay: Option<&Overlay>) -> Result<(), RenderError> {
    let Some(overlay) = overlay.and_then(|o| o.pod.as_ref()) else {
        return Ok(());
    };
    if let Some(meta) = &overlay.metadata {
        merge_meta(&mut pod.metadata, meta);
    }
    let Some(spec_overlay) = &overlay.spec else {
        return Ok(());
    };
    if !spec_overlay.is_object() {
        return Err(RenderError::InvalidOverlay("pod.spec must be an object".into()));
    }
    let touches_reserved = spec_overlay.get("volumes").and_then(Value::as_array).is_some_and(|v| {
        v.iter().any(|v| v.get("name").and_then(Value::as_str).is_some_and(|n| n.starts_with(RESERVED_VOLUME_PREFIX)))
    });
    if touches_reserved {
        return Err(RenderError::InvalidOverlay(format!(
            "pod.spec.volumes may not use the reserved prefix {RESERVED_VOLUME_PREFIX}"
        )));
    }
    let mut spec = serde_json::to_value(&pod.spec).map_err(|e| RenderError::InvalidOverlay(e.to_string()))?;
    merge_json(&mut spec, spec_overlay);
    let merged: PodSpec =
        serde_json::from_value(spec).map_err(|e| RenderError::InvalidOverlay(format!("pod.spec: {e}")))?;
    if merged.containers.is_empty() {
        return Err(RenderError::InvalidOverlay("pod.spec.containers may not be empty".into()));
    }
    pod.spec = Some(merged);
    Ok(())
}

/// A TOML config with the operator's keys applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfig {
    pub toml: String,
    /// Operator-owned keys the user set (dotted paths); they were overridden or removed.
    pub reserved_keys_set: Vec<String>,
}

/// Name of the configuration file in every instance's ConfigMap.
pub const CONFIG_FILE: &str = "config.toml";

/// Config keys (dotted paths) naming the CA, certificate and key files.
pub struct TlsConfigKeys {
    pub ca: &'static str,
    pub cert: &'static str,
    pub key: &'static str,
}

/// An instance's ConfigMap: the template's TOML without the `reserved` keys, plus the
/// TLS file paths under `tls_keys` when TLS is on. Also returns the reserved keys the
/// user set, for the task to report.
pub fn instance_config_map<I: Instance>(
    instance: &I,
    reserved: &[&str],
    tls_keys: Option<&TlsConfigKeys>,
) -> Result<(ConfigMap, Vec<String>), RenderError> {
    let values: Vec<(&str, toml::Value)> = match tls_keys {
        Some(keys) => vec![
            (keys.ca, format!("{TLS_DIR}/ca.crt").into()),
            (keys.cert, format!("{TLS_DIR}/tls.crt").into()),
            (keys.key, format!("{TLS_DIR}/tls.key").into()),
        ],
        None => Vec::new(),
    };
    let rendered = render_config(instance.config(), reserved, &values)?;
    let config_map = ConfigMap {
        metadata: child_meta(instance, instance.pod_name()),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), rendered.toml)])),
        ..ConfigMap::default()
    };
    Ok((config_map, rendered.reserved_keys_set))
}

/// Parses `user`, removes the `reserved` keys (dotted paths) it sets, recording them,
/// then sets the operator's own `values` (dotted paths).
pub fn render_config(
    user: &str,
    reserved: &[&str],
    values: &[(&str, toml::Value)],
) -> Result<RenderedConfig, RenderError> {
    let mut table: toml::Table =
        user.parse().map_err(|e: toml::de::Error| RenderError::InvalidConfig(e.message().to_string()))?;
    let mut reserved_keys_set = Vec::new();
    for key in reserved {
        if remove_path(&mut table, key) {
            reserved_keys_set.push((*key).to_string());
        }
    }
    for (key, value) in values {
        set_path(&mut table, key, value.clone());
    }
    let toml = toml::to_string(&table).map_err(|e| RenderError::InvalidConfig(e.to_string()))?;
    Ok(RenderedConfig { toml, reserved_keys_set })
}

fn remove_path(table: &mut toml::Table, path: &str) -> bool {
    match path.split_once('.') {
        None => table.remove(path).is_some(),
        Some((head, rest)) => match table.get_mut(head) {
            Some(toml::Value::Table(inner)) => remove_path(inner, rest),
            _ => false,
        },
    }
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = table.entry(head.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_tikv;
    use serde_json::json;

    #[test]
    fn reserved_keys_are_removed_reported_and_ours_set() {
        let user = "[server]\naddr = \"1.2.3.4:1\"\ngrpc-concurrency = 4\n[storage]\nreserve-space = \"1GB\"\n";
        let rendered =
            render_config(user, &["server.addr", "storage.data-dir"], &[("security.ca-path", "/tls/ca.crt".into())])
                .unwrap();
        assert_eq!(rendered.reserved_keys_set, ["server.addr"]);
        let table: toml::Table = rendered.toml.parse().unwrap();
        assert!(table["server"].get("addr").is_none());
        assert_eq!(table["server"]["grpc-concurrency"].as_integer(), Some(4));
        assert_eq!(table["security"]["ca-path"].as_str(), Some("/tls/ca.crt"));
        assert!(matches!(render_config("not = [toml", &[], &[]), Err(RenderError::InvalidConfig(_))));
    }

    #[test]
    fn overlay_merges_containers_by_name_and_keeps_ours() {
        let base = json!({"containers": [{"name": "tikv", "image": "a", "env": [{"name": "A", "value": "1"}]}],
                          "tolerations": [{"key": "x"}]});
        let mut merged = base.clone();
        merge_json(
            &mut merged,
            &json!({
                "containers": [{"name": "tikv", "env": [{"name": "B", "value": "2"}]}, {"name": "sidecar", "image": "s"}],
                "tolerations": [{"key": "y"}],
                "priorityClassName": "high"
            }),
        );
        assert_eq!(merged["containers"][0]["image"], "a");
        assert_eq!(merged["containers"][0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(merged["containers"][1]["name"], "sidecar");
        assert_eq!(merged["tolerations"], json!([{"key": "y"}]), "unnamed lists are replaced");
        assert_eq!(merged["priorityClassName"], "high");
    }

    #[test]
    fn a_bad_overlay_is_an_error_not_a_crash() {
        let mut pod = Pod {
            spec: Some(PodSpec { containers: vec![Default::default()], ..PodSpec::default() }),
            ..Pod::default()
        };
        let overlay = |spec: Value| Overlay {
            pod: Some(tikv_operator_api::PodOverlay { metadata: None, spec: Some(spec) }),
            volume_claims: vec![],
        };
        assert!(apply_pod_overlay(&mut pod, Some(&overlay(json!({"containers": "nope"})))).is_err());
        assert!(apply_pod_overlay(&mut pod, Some(&overlay(json!({"volumes": [{"name": "tikv-vol-x"}]})))).is_err());
        assert!(apply_pod_overlay(&mut pod, Some(&overlay(json!({"hostNetwork": true})))).is_ok());
        assert_eq!(pod.spec.unwrap().host_network, Some(true));
    }

    #[test]
    fn pvcs_have_labels_size_class_and_no_owner() {
        let mut tikv = sample_tikv("tikv-abc123", "tikv");
        tikv.spec.template.volumes[0].storage_class_name = Some("fast".into());
        let pvcs = pvcs(&tikv, "tikv-tikv-abc123").unwrap();
        assert_eq!(pvcs.len(), 1);
        let pvc = &pvcs[0];
        assert_eq!(pvc.metadata.name.as_deref(), Some("data-tikv-tikv-abc123"));
        assert!(pvc.metadata.owner_references.is_none());
        let labels = pvc.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[names::LABEL_VOLUME_NAME], "data");
        assert_eq!(labels[names::LABEL_INSTANCE], "tikv-abc123");
        let spec = pvc.spec.as_ref().unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"], Quantity("100Gi".into()));
    }

    #[test]
    fn requests_equal_limits() {
        let r = resources(&ResourceRequirements { cpu: Some("2".into()), memory: None }).unwrap();
        assert_eq!(r.requests, r.limits);
        assert!(resources(&ResourceRequirements::default()).is_none());
    }
}
