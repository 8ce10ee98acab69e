//! `Cluster`: a TiKV cluster as a whole.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// A TiKV cluster: its PD and TiKV groups refer to it by name.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "core.tikv.org",
    version = "v1alpha1",
    kind = "Cluster",
    plural = "clusters",
    namespaced,
    status = "ClusterStatus",
    shortname = "tkc",
    category = "tikv-cluster",
    printcolumn(name = "PD", type_ = "string", json_path = ".status.pd"),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused"),
    printcolumn(name = "Progressing", type_ = "string", json_path = r#".status.conditions[?(@.type=="Progressing")].status"#),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 37").message("a Cluster name may have at most 37 characters"),
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Stops every controller of this cluster except status reporting.
    #[serde(default)]
    pub paused: bool,
    /// What a suspended cluster stops; everything else (volumes, stores, members,
    /// Services) is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_action: Option<SuspendAction>,
    /// TLS between components. Turning it on or off is a rolling change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cluster: Option<TlsCluster>,
    #[serde(default)]
    pub upgrade_policy: UpgradePolicy,
    /// ControllerRevisions kept per group.
    #[serde(default = "default_revision_history_limit")]
    #[schemars(range(min = 0, max = 100))]
    pub revision_history_limit: i32,
    /// What deleting the Cluster does to its data.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_revision_history_limit() -> i32 {
    10
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspendAction {
    /// Delete every Pod of the cluster, keeping PVCs and all other objects.
    #[serde(default)]
    pub suspend_compute: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TlsCluster {
    /// Components talk TLS to each other, with certificates from Secrets named
    /// `<group>-<component>-cluster-secret`.
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum UpgradePolicy {
    /// PD is upgraded before TiKV.
    #[default]
    Default,
    /// Groups are upgraded independently.
    NoConstraints,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Deleting the Cluster keeps the PVCs (and so the data).
    #[default]
    Retain,
    /// Deleting the Cluster deletes the PVCs too.
    Delete,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Available`, `Progressing`, `Synced`, `Suspended`, `ClusterIDMismatch`: see
    /// docs/troubleshooting.md for every reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// URL of the PD client Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pd: Option<String>,
    /// PD cluster ID (a u64, as a string), recorded once; every later pass checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Per-component summary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["kind"]))]
    pub components: Vec<ComponentStatus>,
    /// PD's replication settings as the operator last read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationStatus>,
}

/// PD's `max-replicas` and `location-labels` (set in PD, e.g. with pd-ctl; shown here).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationStatus {
    /// Replicas PD keeps of each region.
    pub max_replicas: i64,
    /// Store labels PD spreads the replicas of a region over, most significant first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub location_labels: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// `PD` or `TiKV`.
    pub kind: String,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
}
