//! `PDGroup` (desired PD members and their template) and `PD` (one member).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    ClusterReference, CommonStatus, GroupStatus, ObjectMeta, Overlay, ResourceRequirements, SchedulePolicy, Topology,
    UpdateStrategy, Volume,
};

/// Desired PD members of a cluster.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "core.tikv.org",
    version = "v1alpha1",
    kind = "PDGroup",
    plural = "pdgroups",
    namespaced,
    status = "PDGroupStatus",
    shortname = "pdg",
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
    validation = Rule::new("self.metadata.name.size() <= 40").message("a PDGroup name may have at most 40 characters"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("a PDGroup name must be a DNS label starting with a letter (it names Services)"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.cluster == oldSelf.cluster").message("cluster is immutable"))]
#[x_kube(validation = Rule::new("!has(oldSelf.bootstrapped) || !oldSelf.bootstrapped || (has(self.bootstrapped) && self.bootstrapped)").message("bootstrapped cannot be unset once the PD cluster is bootstrapped"))]
pub struct PDGroupSpec {
    pub cluster: ClusterReference,
    /// Number of PD members, at least 1. Odd numbers tolerate the same failures as the
    /// next even one.
    #[x_kube(validation = Rule::new("self >= 1").message("replicas must be at least 1: a PD cluster cannot run without members"))]
    pub replicas: i32,
    /// Set by the operator once the PD cluster has been bootstrapped; from then on
    /// members added later join, while a member of the initial cluster still starts with
    /// the initial member list the others started with.
    #[serde(default)]
    pub bootstrapped: bool,
    /// How members are spread over failure domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1))]
    pub schedule_policies: Vec<SchedulePolicy>,
    /// Seconds a new member must be ready before it counts as available.
    #[serde(default = "default_min_ready_seconds")]
    #[schemars(range(min = 0, max = 3600))]
    pub min_ready_seconds: i64,
    /// How many members may be unavailable at once because of the operator's changes
    /// (updates, scale-in), counting those already unavailable. At least 1; clamped to
    /// the failures PD's quorum tolerates (1 for 3 members, 2 for 5), but never below 1.
    #[serde(default = "crate::common::default_max_unavailable")]
    #[schemars(range(min = 1))]
    pub max_unavailable: i32,
    /// How many members may be created beyond `replicas` during an update. Not used:
    /// PD members are updated in place, one at a time, within `maxUnavailable`.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_surge: i32,
    pub template: PDTemplate,
}

pub(crate) fn default_min_ready_seconds() -> i64 {
    5
}

/// The instance template of a PD group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PDTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    pub spec: PDTemplateSpec,
}

/// What every PD member of a group runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.volumes.exists(v, v.name == 'data')").message("volumes must include one named data"))]
pub struct PDTemplateSpec {
    /// PD version, a semantic version such as `v8.5.0`; also the image tag.
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new(crate::common::SEMVER_RULE).message(crate::common::SEMVER_MESSAGE))]
    pub version: String,
    /// Image without tag; the version is the tag. Defaults to `pingcap/pd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    #[serde(default)]
    pub server: PDServer,
    #[serde(default)]
    pub resources: ResourceRequirements,
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
    /// PD configuration file (TOML). Keys the operator owns (addresses, data dir,
    /// initial cluster) are set by the operator; setting them here is reported.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 65536))]
    pub config: String,
    #[schemars(length(min = 1, max = 8), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PDServer {
    #[serde(default)]
    pub ports: PDPorts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PDPorts {
    /// Client (and status) port.
    #[serde(default = "default_pd_client_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub client: i32,
    /// Peer (raft) port.
    #[serde(default = "default_pd_peer_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub peer: i32,
}

impl Default for PDPorts {
    fn default() -> Self {
        Self { client: default_pd_client_port(), peer: default_pd_peer_port() }
    }
}

fn default_pd_client_port() -> i32 {
    2379
}

fn default_pd_peer_port() -> i32 {
    2380
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PDGroupStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    #[serde(flatten)]
    pub group: GroupStatus,
}

/// One PD member, created and owned by its PDGroup.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "core.tikv.org",
    version = "v1alpha1",
    kind = "PD",
    plural = "pds",
    namespaced,
    status = "PDStatus",
    category = "tikv-cluster",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster.name"),
    printcolumn(name = "MemberID", type_ = "string", json_path = ".status.id"),
    printcolumn(name = "Leader", type_ = "boolean", json_path = ".status.isLeader"),
    printcolumn(name = "Synced", type_ = "string", json_path = r#".status.conditions[?(@.type=="Synced")].status"#),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 47").message("a PD name may have at most 47 characters"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.cluster == oldSelf.cluster").message("cluster is immutable"))]
#[x_kube(validation = Rule::new("has(self.topology) == has(oldSelf.topology) && (!has(self.topology) || self.topology == oldSelf.topology)").message("topology is immutable"))]
#[x_kube(validation = Rule::new("self.subdomain == oldSelf.subdomain").message("subdomain is immutable"))]
pub struct PDSpec {
    pub cluster: ClusterReference,
    /// Node labels this member is pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 8))]
    pub topology: Option<Topology>,
    /// The headless peer Service that makes `<pod>.<subdomain>` resolvable.
    #[schemars(length(min = 1, max = 63))]
    pub subdomain: String,
    /// Seconds the member must be ready before it counts as available.
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub min_ready_seconds: i64,
    #[serde(flatten)]
    pub template: PDTemplateSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PDStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// PD member ID (a u64, as a string), recorded once seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Whether this member is the PD leader.
    #[serde(default)]
    pub is_leader: bool,
    /// The UID of the data PVC the member `id` keeps its data on, recorded while the
    /// member is healthy. A data PVC with another UID means that member's data is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_volume_uid: Option<String>,
    /// The peer URLs PD stores for this member (where the other members dial it), as
    /// last read from PD. Kept so that a member whose Pod is recreated while PD cannot
    /// be read (a resume after a suspension) listens where its peers will dial it.
    #[serde(default, rename = "peerURLs", skip_serializing_if = "Vec::is_empty")]
    pub peer_urls: Vec<String>,
    /// The certificate the instance serves (only with `tlsCluster`), checked at a
    /// bounded rate by a TLS handshake; written only when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_certificate: Option<crate::common::ServingCertificate>,
}
