//! `TiKVGroup` (desired stores and their template) and `TiKV` (one store).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
    /// How many stores may be unavailable at once because of the operator's changes
    /// (updates, scale-in), counting those already unavailable (not Ready, being
    /// deleted, or offline). At least 1.
    #[serde(default = "crate::common::default_max_unavailable")]
    #[schemars(range(min = 1))]
    pub max_unavailable: i32,
    /// How many stores may be created beyond `replicas` during an update, each taken
    /// offline again once an updated one serves in its place.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_surge: i32,
    /// How many stores may leave PD at once in a scale-in. More move data faster and
    /// load the remaining stores more. A leaving store counts as unavailable, so more
    /// than one leave at once only with `maxUnavailable` raised too. At least 1.
    #[serde(default = "crate::common::default_scale_in_parallelism")]
    #[schemars(range(min = 1))]
    pub scale_in_parallelism: i32,
    /// Replacing a store whose TiKV stays Down (off unless enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    pub template: TiKVTemplate,
}

/// Failover: a store whose heartbeat stays missing longer than `afterDown` is replaced.
/// The operator creates a new store in the same topology, takes the dead one offline in
/// PD once the new one serves (PD rebuilds its replicas from the others; never a forced
/// removal), and deletes its volumes only after PD reports it Tombstone. One store at a
/// time, and only while it is the only store that is not Up and no region has a
/// majority of its voters on stores that are not Up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.afterDown) || duration(self.afterDown) >= duration('1m')").message("afterDown must be at least 1m: a store that restarts or is cut off for a moment must not be replaced"))]
pub struct Failover {
    /// Replace a store that stays Down longer than `afterDown`.
    #[serde(default)]
    pub enabled: bool,
    /// How long a store's heartbeat must stay missing (counted while the cluster is
    /// neither paused nor suspended and the operator is not restarting the store)
    /// before it is replaced. Hours, minutes and seconds, e.g. `10m`, `1h`, `90s`;
    /// default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 16), regex(pattern = r"^([0-9]{1,4}h)?([0-9]{1,4}m)?([0-9]{1,6}s)?$"))]
    pub after_down: Option<String>,
}

/// Default of [`Failover::after_down`].
pub const DEFAULT_FAILOVER_AFTER_DOWN: std::time::Duration = std::time::Duration::from_secs(600);

impl Failover {
    /// How long a store stays Down before it is replaced; the default when unset or
    /// unreadable (the schema admits only readable values).
    pub fn after_down(&self) -> std::time::Duration {
        self.after_down.as_deref().and_then(parse_hms).unwrap_or(DEFAULT_FAILOVER_AFTER_DOWN)
    }
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
    /// How long the leader count of a store may stay without falling while its leaders
    /// are evicted before the eviction is reported stalled (`LeadersEvicted=False`,
    /// `EvictionStalled`). A stalled eviction keeps waiting: a store is never taken
    /// offline with leaders. Hours, minutes and seconds, e.g. `5m`, `1h30m`, `90s`.
    /// Default `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 16), regex(pattern = r"^([0-9]{1,4}h)?([0-9]{1,4}m)?([0-9]{1,6}s)?$"))]
    pub evict_leader_stall_timeout: Option<String>,
}

/// Default of [`TiKVTemplateSpec::evict_leader_stall_timeout`].
pub const DEFAULT_EVICT_LEADER_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

impl TiKVTemplateSpec {
    /// The eviction stall timeout; the default when unset or unreadable (the schema
    /// admits only readable values).
    pub fn evict_leader_stall_timeout(&self) -> std::time::Duration {
        self.evict_leader_stall_timeout.as_deref().and_then(parse_hms).unwrap_or(DEFAULT_EVICT_LEADER_STALL_TIMEOUT)
    }
}

/// Parses `1h30m`, `5m`, `90s` (each unit at most once, in that order).
fn parse_hms(text: &str) -> Option<std::time::Duration> {
    let mut seconds: u64 = 0;
    let mut number: Option<u64> = None;
    let mut last_unit = 0;
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            number = Some(number.unwrap_or(0).checked_mul(10)?.checked_add(u64::from(digit))?);
            continue;
        }
        let (rank, factor) = match c {
            'h' => (1, 3600),
            'm' => (2, 60),
            's' => (3, 1),
            _ => return None,
        };
        if rank <= last_unit {
            return None;
        }
        last_unit = rank;
        seconds = seconds.checked_add(number.take()?.checked_mul(factor)?)?;
    }
    (number.is_none() && last_unit > 0).then(|| std::time::Duration::from_secs(seconds))
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
    /// The store's node state in PD, as last seen. Kept when the store disappears from
    /// PD: a store last seen Removing or Removed that PD no longer lists was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StoreState>,
    /// Leaders left on the store while the operator evicts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction: Option<DrainProgress>,
    /// Regions left on the store while PD takes it offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<DrainProgress>,
    /// After a restart, leaders coming back to the store's new process: the count
    /// before the eviction, the count now, and when it last rose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaders_return: Option<LeadersReturn>,
    /// When a fresh PD view first showed the store's heartbeat missing (older than two
    /// heartbeat intervals): the failover clock. Cleared when the store heartbeats again,
    /// and while the cluster is paused or suspended or the operator restarts the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since: Option<Time>,
    /// The certificate the instance serves (only with `tlsCluster`), checked at a
    /// bounded rate by a TLS handshake; written only when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_certificate: Option<crate::common::ServingCertificate>,
}

/// Leaders coming back to a restarted store; the restart is done at half the count
/// before, or once it stops rising for a while.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadersReturn {
    pub before: u64,
    pub leaders: u64,
    pub last_rise_at: Time,
}

/// How far a drain (leaders or regions moving off a store) got: the count it started
/// from, the count left, and when that count last fell. The rate, the time left and a
/// stall are judged from these, across operator restarts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainProgress {
    pub start: u64,
    pub started_at: Time,
    pub left: u64,
    pub last_fall_at: Time,
}

impl DrainProgress {
    /// Records `left` at `now` in `slot` (starting the drain there if none was
    /// recorded): the time of the last fall moves only when the count falls.
    pub fn record(slot: &mut Option<Self>, left: u64, now: k8s_openapi::jiff::Timestamp) -> &Self {
        let drain =
            slot.get_or_insert(DrainProgress { start: left, started_at: Time(now), left, last_fall_at: Time(now) });
        if left < drain.left {
            drain.last_fall_at = Time(now);
        }
        drain.left = left;
        drain
    }
}

#[cfg(test)]
mod tests {
    use super::parse_hms;
    use std::time::Duration;

    #[test]
    fn stall_timeouts_read_as_hours_minutes_seconds() {
        assert_eq!(parse_hms("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_hms("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_hms("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_hms("1h2m3s"), Some(Duration::from_secs(3723)));
        for bad in ["", "5", "m", "5m1h", "5mm", "5x", "1h1h"] {
            assert_eq!(parse_hms(bad), None, "{bad}");
        }
    }
}
