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
#[x_kube(validation = Rule::new(TLS_CHANGE_RULE).message(TLS_CHANGE_MESSAGE))]
pub struct ClusterSpec {
    /// Stops every controller of this cluster except status reporting.
    #[serde(default)]
    pub paused: bool,
    /// What a suspended cluster stops; everything else (volumes, stores, members,
    /// Services) is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_action: Option<SuspendAction>,
    /// TLS between components. It can change only while the Cluster is suspended
    /// (`suspendAction.suspendCompute: true`, in the same update or an earlier one): TiKV
    /// serves and dials either all TLS or all plain, so no rolling switch exists. The new
    /// setting takes effect once every pod of the cluster is gone; the pods come back
    /// with it on resume. See "Turn TLS on or off" in docs/operations.md.
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

/// `tlsCluster.enabled` (absent counts as false) changes only when the new object is
/// suspended.
pub const TLS_CHANGE_RULE: &str = "(has(self.tlsCluster) && has(self.tlsCluster.enabled) && self.tlsCluster.enabled) == (has(oldSelf.tlsCluster) && has(oldSelf.tlsCluster.enabled) && oldSelf.tlsCluster.enabled) || (has(self.suspendAction) && has(self.suspendAction.suspendCompute) && self.suspendAction.suspendCompute)";

pub const TLS_CHANGE_MESSAGE: &str = "tlsCluster.enabled can change only while the Cluster is suspended: TiKV serves and dials either all TLS or all plain, so a rolling switch would cut the cluster in two; set spec.suspendAction.suspendCompute: true in the same update, then resume once the Cluster is Suspended (every pod restarts with the new setting, as tiup cluster tls does); see docs/operations.md";

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
    /// URL of the PD client Service. Its scheme is the TLS setting in force (`https`:
    /// TLS on); after a change of `tlsCluster` it changes once no pod of the cluster is
    /// left.
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

impl Cluster {
    /// `spec.tlsCluster.enabled`: what the user asks for.
    pub fn tls_wanted(&self) -> bool {
        self.spec.tls_cluster.as_ref().is_some_and(|t| t.enabled)
    }

    /// The TLS setting in force, which every pod is rendered with: the scheme of
    /// `status.pd` once recorded, else the spec's (a new cluster).
    pub fn tls_in_force(&self) -> bool {
        match self.status.as_ref().and_then(|s| s.pd.as_deref()) {
            Some(url) => url.starts_with("https://"),
            None => self.tls_wanted(),
        }
    }

    /// `tlsCluster.enabled` differs from the setting in force: every pod goes before the
    /// new setting takes effect.
    pub fn tls_switch_pending(&self) -> bool {
        self.tls_wanted() != self.tls_in_force()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(wanted: Option<bool>, pd: Option<&str>) -> Cluster {
        let mut c = Cluster::new("basic", ClusterSpec::default());
        c.spec.tls_cluster = wanted.map(|enabled| TlsCluster { enabled });
        c.status = pd.map(|pd| ClusterStatus { pd: Some(pd.to_owned()), ..ClusterStatus::default() });
        c
    }

    #[test]
    fn the_setting_in_force_is_the_recorded_scheme_once_there_is_one() {
        let new = cluster(Some(true), None);
        assert!(new.tls_in_force() && !new.tls_switch_pending(), "a new cluster starts as asked");
        let turned_on = cluster(Some(true), Some("http://basic-pd.db.svc:2379"));
        assert!(turned_on.tls_wanted() && !turned_on.tls_in_force() && turned_on.tls_switch_pending());
        let turned_off = cluster(None, Some("https://basic-pd.db.svc:2379"));
        assert!(!turned_off.tls_wanted() && turned_off.tls_in_force() && turned_off.tls_switch_pending());
        let settled = cluster(Some(false), Some("http://basic-pd.db.svc:2379"));
        assert!(!settled.tls_in_force() && !settled.tls_switch_pending());
    }
}
