//! `TiKVGroup` (desired stores and their template) and `TiKV` (one store).

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    ClusterReference, CommonStatus, GroupStatus, ObjectMeta, Overlay, ResourceRequirements, SchedulePolicy, Topology,
    UpdateStrategy, Volume,
};
use crate::pd::default_min_ready_seconds;

/// Desired TiKV stores of a cluster.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "core.tikv.org",
    version = "v1alpha1",
    kind = "TiKVGroup",
    plural = "tikvgroups",
    namespaced,
    status = "TiKVGroupStatus",
    shortname = "kvg",
    category = "tikv-cluster",
    scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas", label_selector_path = ".status.selector"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster.name"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Updated", type_ = "integer", json_path = ".status.updatedReplicas"),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version"),
    printcolumn(name = "Synced", type_ = "string", json_path = r#".status.conditions[?(@.type=="Synced")].status"#),
    printcolumn(name = "Available", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 40").message("a TiKVGroup name may have at most 40 characters"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("a TiKVGroup name must be a DNS label starting with a letter (it names Services)"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.cluster == oldSelf.cluster").message("cluster is immutable"))]
pub struct TiKVGroupSpec {
    pub cluster: ClusterReference,
    /// Number of stores. Scale-in takes stores offline in PD first; it is refused when
    /// the remaining stores could not hold every replica.
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// How stores are spread over failure domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1))]
    pub schedule_policies: Vec<SchedulePolicy>,
    /// Seconds a new store must be Up and its pod ready before it counts as available.
    #[serde(default = "default_min_ready_seconds")]
    #[schemars(range(min = 0, max = 3600))]
    pub min_ready_seconds: i64,
    pub template: TiKVTemplate,
}

/// The instance template of a TiKV group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TiKVTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    pub spec: TiKVTemplateSpec,
}

/// What every store of a group runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.volumes.exists(v, v.name == 'data')").message("volumes must include one named data"))]
pub struct TiKVTemplateSpec {
    /// TiKV version, a semantic version such as `v8.5.0`; also the image tag.
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new(crate::common::SEMVER_RULE).message(crate::common::SEMVER_MESSAGE))]
    pub version: String,
    /// Image without tag; the version is the tag. Defaults to `pingcap/tikv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    #[serde(default)]
    pub server: TiKVServer,
    #[serde(default)]
    pub resources: ResourceRequirements,
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
    /// TiKV configuration file (TOML). Keys the operator owns (addresses, data dir, PD
    /// endpoints) are set by the operator; setting them here is reported.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 65536))]
    pub config: String,
    #[schemars(length(min = 1, max = 8), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct TiKVServer {
    #[serde(default)]
    pub ports: TiKVPorts,
    /// Extra store labels reported to PD. The topology labels (zone, host, …) are set
    /// by the operator from the node and may not be set here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    #[x_kube(validation = Rule::new("self.all(k, !(k in ['host', 'zone', 'region', 'rack']))").message("store labels host, zone, region and rack are set by the operator"))]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TiKVPorts {
    /// Client (gRPC) port.
    #[serde(default = "default_tikv_client_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub client: i32,
    /// Status (HTTP) port.
    #[serde(default = "default_tikv_status_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub status: i32,
}

impl Default for TiKVPorts {
    fn default() -> Self {
        Self { client: default_tikv_client_port(), status: default_tikv_status_port() }
    }
}

fn default_tikv_client_port() -> i32 {
    20160
}

fn default_tikv_status_port() -> i32 {
    20180
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TiKVGroupStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    #[serde(flatten)]
    pub group: GroupStatus,
}

/// One TiKV store, created and owned by its TiKVGroup.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "core.tikv.org",
    version = "v1alpha1",
    kind = "TiKV",
    plural = "tikvs",
    namespaced,
    status = "TiKVStatus",
    category = "tikv-cluster",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster.name"),
    printcolumn(name = "StoreID", type_ = "string", json_path = ".status.id"),
    printcolumn(name = "StoreState", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Offline", type_ = "boolean", json_path = ".spec.offline"),
    printcolumn(name = "Synced", type_ = "string", json_path = r#".status.conditions[?(@.type=="Synced")].status"#),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 47").message("a TiKV name may have at most 47 characters"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.cluster == oldSelf.cluster").message("cluster is immutable"))]
#[x_kube(validation = Rule::new("has(self.topology) == has(oldSelf.topology) && (!has(self.topology) || self.topology == oldSelf.topology)").message("topology is immutable"))]
#[x_kube(validation = Rule::new("self.subdomain == oldSelf.subdomain").message("subdomain is immutable"))]
pub struct TiKVSpec {
    pub cluster: ClusterReference,
    /// Node labels this store is pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 8))]
    pub topology: Option<Topology>,
    /// The headless peer Service that makes `<pod>.<subdomain>` resolvable.
    #[schemars(length(min = 1, max = 63))]
    pub subdomain: String,
    /// Take the store offline in PD (scale-in). Can be cancelled by setting it back to
    /// false until PD reports the store removed.
    #[serde(default)]
    pub offline: bool,
    /// Seconds the store must be Up and its pod ready before it counts as available.
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub min_ready_seconds: i64,
    #[serde(flatten)]
    pub template: TiKVTemplateSpec,
}

/// Node state of a store as PD reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StoreState {
    Preparing,
    Serving,
    Removing,
    Removed,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TiKVStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// PD store ID (a u64, as a string), recorded once seen; the store's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The store's node state in PD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StoreState>,
}
