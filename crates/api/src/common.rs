//! Building blocks shared by the PD and TiKV resources: the cluster reference,
//! volumes, resources, update and schedule policies, overlays, and the status
//! blocks of groups and instances.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Cluster an object belongs to. Immutable once set (enforced by the owner's rules).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterReference {
    /// Name of the Cluster in the same namespace.
    #[schemars(length(min = 1, max = 37))]
    pub name: String,
}

/// Requests and limits of the main container: requests equal limits, so a TiKV or PD
/// pod gets the Guaranteed QoS class when both are set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("cpu must be a quantity such as 500m or 2"))]
    #[schemars(length(max = 32))]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("memory must be a quantity such as 4Gi"))]
    #[schemars(length(max = 32))]
    pub memory: Option<String>,
}

/// A persistent volume of an instance: one PVC per instance and volume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.name == 'data' || has(self.mountPath)").message("mountPath is required for volumes other than data"))]
// Compared per volume name (the lists are `listType: map` keyed by name). Setting or
// removing the class counts as a change too: the PVC already exists with some class,
// maybe the cluster default, and Kubernetes never changes a PVC's class.
#[x_kube(validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)")
    .message("storageClassName of a volume cannot be set, changed or removed once the volume exists: a PVC keeps the storage class it was created with (add a volume with a new name for another class)")
    .field_path(".storageClassName"))]
pub struct Volume {
    /// Name of the volume; `data` is the component's data directory.
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    #[x_kube(validation = Rule::new("!self.startsWith('tikv-vol-')").message("volume names starting with tikv-vol- are reserved"))]
    pub name: String,
    /// Where the volume is mounted; `data` defaults to the component's data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^/"))]
    pub mount_path: Option<String>,
    /// Requested size, a Kubernetes quantity such as `100Gi`. It may grow (online, when
    /// the storage class allows expansion), never shrink.
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("storage must be a quantity such as 100Gi"))]
    // Both sides guarded: `quantity()` of an invalid string is an evaluation error, which
    // kube-apiserver reports as a second, internal-looking message next to the one above.
    #[x_kube(validation = Rule::new("!isQuantity(self) || !isQuantity(oldSelf) || quantity(self).compareTo(quantity(oldSelf)) >= 0").message("storage may grow, never shrink"))]
    pub storage: String,
    /// Storage class of the PVC. Fixed once the volume exists: setting, changing or
    /// removing it later is refused, since a PVC keeps the class it was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
    /// Volume attributes class (for online IOPS/throughput changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub volume_attributes_class_name: Option<String>,
}

/// How a configuration change reaches running instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConfigUpdateStrategy {
    /// Restart the instance (one at a time, leaders moved away first).
    #[default]
    Restart,
    /// Let the running process re-read its configuration; no restart.
    HotReload,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateStrategy {
    /// What a change of `config` does to running instances.
    #[serde(default)]
    pub config: ConfigUpdateStrategy,
}

/// How instances are placed over failure domains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'EvenlySpread' || has(self.evenlySpread)").message("evenlySpread is required for type EvenlySpread"))]
pub struct SchedulePolicy {
    #[serde(rename = "type")]
    pub type_: SchedulePolicyType,
    /// The topologies to spread over and their weights (for type `EvenlySpread`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evenly_spread: Option<EvenlySpread>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SchedulePolicyType {
    /// Spread instances over the listed topologies in proportion to their weights.
    #[default]
    EvenlySpread,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EvenlySpread {
    #[schemars(length(min = 1, max = 32))]
    pub topologies: Vec<WeightedTopology>,
}

/// One failure domain, as node labels, and its share of the instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WeightedTopology {
    /// Node labels of the domain, e.g. `topology.kubernetes.io/zone: us-east-1a`.
    #[schemars(extend("minProperties" = 1, "maxProperties" = 8))]
    pub topology: Topology,
    /// Relative share of instances; at least 1.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1))]
    pub weight: i32,
}

fn default_weight() -> i32 {
    1
}

/// Default of a group's `maxUnavailable`: one instance at a time.
pub fn default_max_unavailable() -> i32 {
    1
}

/// Default of a TiKV group's `scaleInParallelism`: one store leaves at a time.
pub fn default_scale_in_parallelism() -> i32 {
    1
}

/// Node labels an instance is pinned to (rendered into the Pod's nodeSelector).
pub type Topology = BTreeMap<String, String>;

/// Labels and annotations of a template or overlay.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct ObjectMeta {
    /// Labels added to the generated object (the `tikv.org/` prefix is the operator's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = Rule::new("self.all(k, !k.startsWith('tikv.org/'))").message("labels with the tikv.org/ prefix are reserved for the operator"))]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the generated object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: BTreeMap<String, String>,
}

/// Fields merged over what the operator generates, for what the template does not
/// cover (tolerations, affinity, sidecars, PVC settings). Kept schemaless so the CRD
/// stays small; the operator validates it before use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overlay {
    /// Merged over the generated Pod: its metadata, and a Pod spec (schemaless) merged
    /// field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodOverlay>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub volume_claims: Vec<VolumeClaimOverlay>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PodOverlay {
    /// Labels and annotations added to the Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// A partial PodSpec, merged over the generated one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schemaless_object")]
    pub spec: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeClaimOverlay {
    /// Name of the template volume whose PVC this overlays.
    #[schemars(length(min = 1, max = 40))]
    pub name: String,
    /// Labels and annotations added to the PVC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// A partial PersistentVolumeClaimSpec, merged over the generated one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schemaless_object")]
    pub spec: Option<serde_json::Value>,
}

fn schemaless_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Status every group and instance has.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// `Ready`, `Synced`, and the object's own conditions: see docs/troubleshooting.md for
    /// every reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Revision the running instances were created from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
    /// Revision of the current template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// Bumped when two templates hash to the same revision name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
}

/// The TLS certificate an instance serves, as the operator last saw it in a handshake
/// with the instance (PD: its client URL; TiKV: its status address). Learned from what
/// the process presents, so it also shows that a rotated certificate was reloaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServingCertificate {
    /// The end of the certificate's validity (`notAfter`).
    pub not_after: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// The certificate's serial number, in hex: it changes with every new certificate.
    pub serial_number: String,
}

/// Status counts of a group (the scale subresource reads `replicas` and `selector`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    /// Version most instances run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Label selector of the group's instances, as a string (scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default)]
    pub current_replicas: i32,
    #[serde(default)]
    pub updated_replicas: i32,
}

/// The CEL rule a version must pass: a semantic version with an optional leading `v`
/// (`v8.5.0`, `8.5.0-beta.1`). A CEL rule rather than a schema `pattern`, so that a
/// refusal says what is expected instead of printing the regular expression.
pub const SEMVER_RULE: &str = "self.matches('^v?(0|[1-9][0-9]*)[.](0|[1-9][0-9]*)[.](0|[1-9][0-9]*)(-[0-9A-Za-z-]+([.][0-9A-Za-z-]+)*)?([+][0-9A-Za-z-]+([.][0-9A-Za-z-]+)*)?$')";

/// What a refused version is told.
pub const SEMVER_MESSAGE: &str = "must be a semantic version such as v8.5.0 (major.minor.patch, optionally with a leading v and a -prerelease or +build suffix)";
