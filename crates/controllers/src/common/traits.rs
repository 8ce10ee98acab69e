//! What the generic tasks need to know about the five kinds: status and conditions of
//! every object, and the component-specific accessors of instances and groups (the
//! counterpart of tidb-operator v2's scopes).

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tikv_operator_api::names::{self, LABEL_GROUP};
use tikv_operator_api::pd::PDGroupStatus;
use tikv_operator_api::tikv::TiKVGroupStatus;
use tikv_operator_api::{
    Cluster, ClusterStatus, CommonStatus, ConfigUpdateStrategy, GroupStatus, ObjectMeta, Overlay, PD, PDGroup,
    PDStatus, ResourceRequirements, ServingCertificate, TiKV, TiKVGroup, TiKVStatus, Topology, Volume,
    WeightedTopology,
};

use crate::updater::Removal;

/// Any of the five kinds.
pub trait Object:
    crate::cache::Cached
    + Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    type Status: Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;

    fn status(&self) -> Option<&Self::Status>;
    fn set_status(&mut self, status: Self::Status);
    fn conditions(status: &Self::Status) -> &[Condition];
    fn conditions_mut(status: &mut Self::Status) -> &mut Vec<Condition>;
    /// The Cluster the object belongs to (a Cluster's own name for a Cluster).
    fn cluster_name(&self) -> String;
}

/// A PD or TiKV instance.
pub trait Instance: Object {
    const COMPONENT: &'static str;
    /// Where the `data` volume is mounted unless the template says otherwise.
    const DATA_DIR: &'static str;

    fn subdomain(&self) -> &str;
    fn topology(&self) -> Option<&Topology>;
    fn min_ready_seconds(&self) -> i64;
    fn version(&self) -> &str;
    fn image(&self) -> Option<&str>;
    fn resources(&self) -> &ResourceRequirements;
    fn config(&self) -> &str;
    fn volumes(&self) -> &[Volume];
    fn overlay(&self) -> Option<&Overlay>;
    /// What a change of `config` does to the running process.
    fn config_strategy(&self) -> ConfigUpdateStrategy;
    /// The server's two ports (TiKV: client and status; PD: client and peer).
    fn ports(&self) -> [i32; 2];
    fn common_status(status: &Self::Status) -> &CommonStatus;
    fn common_status_mut(status: &mut Self::Status) -> &mut CommonStatus;
    /// TiKV: `spec.offline`, the store leaving PD. PD members never are.
    fn offline(&self) -> bool;
    /// PD: the member is the PD leader.
    fn is_leader(&self) -> bool;
    /// Where the instance serves TLS with its cluster certificate, and a cheap path to
    /// ask there: PD its client URL, TiKV its status address (`https://host:port`).
    fn tls_endpoint(&self) -> (String, &'static str);
    /// The certificate the instance was last seen serving.
    fn serving_certificate(status: &Self::Status) -> Option<&ServingCertificate>;
    fn serving_certificate_mut(status: &mut Self::Status) -> &mut Option<ServingCertificate>;

    /// The group, from the instance's label.
    fn group(&self) -> String {
        self.labels().get(LABEL_GROUP).cloned().unwrap_or_default()
    }

    /// Name of the instance's Pod (and ConfigMap).
    fn pod_name(&self) -> String {
        names::pod_name(&self.group(), Self::COMPONENT, &self.name_any())
    }
}

/// A PD or TiKV group.
pub trait Group: Object {
    type Instance: Instance;
    const COMPONENT: &'static str;
    /// Config keys (dotted paths) the operator owns: the renderer's own list.
    const RESERVED_CONFIG_KEYS: &'static [&'static str];
    /// Fewer replicas than this cannot work (PD needs one member).
    const MIN_REPLICAS: i32;
    /// A deleted instance leaves the running cluster safely on its own (TiKV: offline in
    /// PD first), so the group may delete its instances while the Cluster lives. PD
    /// members cannot yet (membership changes come with the PD issue).
    const INSTANCES_LEAVE_SAFELY: bool;

    fn replicas(&self) -> i32;
    fn max_unavailable(&self) -> i32;
    fn max_surge(&self) -> i32;
    /// How a surplus instance leaves the group.
    fn removal(&self) -> Removal;
    fn min_ready_seconds(&self) -> i64;
    fn version(&self) -> &str;
    /// The template's TOML config.
    fn config(&self) -> &str;
    /// The template's volumes.
    fn volumes(&self) -> &[Volume];
    /// The topologies of the schedule policy, empty without one.
    fn topologies(&self) -> Vec<WeightedTopology>;
    /// What an instance is made from; its hash is the group's revision.
    fn revision_data(&self) -> serde_json::Value;
    fn template_meta(&self) -> Option<&ObjectMeta>;
    /// The instance object for a new member: spec from the template, no metadata yet.
    fn instance_from_template(&self, name: &str, topology: Option<Topology>) -> Self::Instance;
    fn common_status(status: &Self::Status) -> &CommonStatus;
    fn common_status_mut(status: &mut Self::Status) -> &mut CommonStatus;
    fn group_status(status: &Self::Status) -> &GroupStatus;
    fn group_status_mut(status: &mut Self::Status) -> &mut GroupStatus;

    /// Annotations a new instance gets besides the template's (PD: bootstrap members).
    fn new_instance_annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// A remark on the replica count that is allowed but worth knowing (PD: an even
    /// number of members), shown in the Ready message.
    fn replicas_note(&self) -> Option<String> {
        None
    }
}

impl Object for Cluster {
    type Status = ClusterStatus;

    fn status(&self) -> Option<&ClusterStatus> {
        self.status.as_ref()
    }
    fn set_status(&mut self, status: ClusterStatus) {
        self.status = Some(status);
    }
    fn conditions(status: &ClusterStatus) -> &[Condition] {
        &status.conditions
    }
    fn conditions_mut(status: &mut ClusterStatus) -> &mut Vec<Condition> {
        &mut status.conditions
    }
    fn cluster_name(&self) -> String {
        self.name_any()
    }
}

macro_rules! object_impl {
    ($kind:ty, $status:ty, $($path:ident).+) => {
        impl Object for $kind {
            type Status = $status;

            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn set_status(&mut self, status: $status) {
                self.status = Some(status);
            }
            fn conditions(status: &$status) -> &[Condition] {
                &status.$($path).+
            }
            fn conditions_mut(status: &mut $status) -> &mut Vec<Condition> {
                &mut status.$($path).+
            }
            fn cluster_name(&self) -> String {
                self.spec.cluster.name.clone()
            }
        }
    };
}

object_impl!(PDGroup, PDGroupStatus, common.conditions);
object_impl!(PD, PDStatus, common.conditions);
object_impl!(TiKVGroup, TiKVGroupStatus, common.conditions);
object_impl!(TiKV, TiKVStatus, common.conditions);

macro_rules! instance_impl {
    ($kind:ty, $status:ty, $component:expr, $data_dir:expr, $offline:expr, $leader:expr, $ports:expr, $tls:expr) => {
        impl Instance for $kind {
            const COMPONENT: &'static str = $component;
            const DATA_DIR: &'static str = $data_dir;

            fn subdomain(&self) -> &str {
                &self.spec.subdomain
            }
            fn topology(&self) -> Option<&Topology> {
                self.spec.topology.as_ref()
            }
            fn min_ready_seconds(&self) -> i64 {
                self.spec.min_ready_seconds
            }
            fn version(&self) -> &str {
                &self.spec.template.version
            }
            fn image(&self) -> Option<&str> {
                self.spec.template.image.as_deref()
            }
            fn resources(&self) -> &ResourceRequirements {
                &self.spec.template.resources
            }
            fn config(&self) -> &str {
                &self.spec.template.config
            }
            fn volumes(&self) -> &[Volume] {
                &self.spec.template.volumes
            }
            fn overlay(&self) -> Option<&Overlay> {
                self.spec.template.overlay.as_ref()
            }
            fn config_strategy(&self) -> ConfigUpdateStrategy {
                self.spec.template.update_strategy.config
            }
            fn ports(&self) -> [i32; 2] {
                ($ports)(self)
            }
            fn common_status(status: &$status) -> &CommonStatus {
                &status.common
            }
            fn common_status_mut(status: &mut $status) -> &mut CommonStatus {
                &mut status.common
            }
            fn offline(&self) -> bool {
                ($offline)(self)
            }
            fn is_leader(&self) -> bool {
                ($leader)(self)
            }
            fn tls_endpoint(&self) -> (String, &'static str) {
                ($tls)(self)
            }
            fn serving_certificate(status: &$status) -> Option<&ServingCertificate> {
                status.serving_certificate.as_ref()
            }
            fn serving_certificate_mut(status: &mut $status) -> &mut Option<ServingCertificate> {
                &mut status.serving_certificate
            }
        }
    };
}

instance_impl!(
    PD,
    PDStatus,
    names::COMPONENT_PD,
    "/var/lib/pd",
    |_: &PD| false,
    |pd: &PD| pd.status.as_ref().is_some_and(|s| s.is_leader),
    |pd: &PD| {
        let ports = &pd.spec.template.server.ports;
        [ports.client, ports.peer]
    },
    |pd: &PD| (crate::pd::render::advertise_client_url(pd, true), "/pd/api/v1/ping")
);
instance_impl!(
    TiKV,
    TiKVStatus,
    names::COMPONENT_TIKV,
    "/var/lib/tikv",
    |tikv: &TiKV| tikv.spec.offline,
    |_: &TiKV| { false },
    |tikv: &TiKV| {
        let ports = &tikv.spec.template.server.ports;
        [ports.client, ports.status]
    },
    |tikv: &TiKV| (crate::tikv::render::status_url(tikv, true), "/status")
);

macro_rules! group_impl {
    ($kind:ty, $status:ty, $instance:ty, $spec:ident, $component:expr, $reserved:expr, $min:expr, $leaves:expr $(, $extra:ident: $value:expr)*; $annotations:expr, $note:expr, $removal:expr) => {
        impl Group for $kind {
            type Instance = $instance;
            const COMPONENT: &'static str = $component;
            const RESERVED_CONFIG_KEYS: &'static [&'static str] = $reserved;
            const MIN_REPLICAS: i32 = $min;
            const INSTANCES_LEAVE_SAFELY: bool = $leaves;

            fn replicas(&self) -> i32 {
                self.spec.replicas
            }
            fn max_unavailable(&self) -> i32 {
                self.spec.max_unavailable
            }
            fn max_surge(&self) -> i32 {
                self.spec.max_surge
            }
            fn removal(&self) -> Removal {
                ($removal)(self)
            }
            fn min_ready_seconds(&self) -> i64 {
                self.spec.min_ready_seconds
            }
            fn version(&self) -> &str {
                &self.spec.template.spec.version
            }
            fn config(&self) -> &str {
                &self.spec.template.spec.config
            }
            fn volumes(&self) -> &[Volume] {
                &self.spec.template.spec.volumes
            }
            fn topologies(&self) -> Vec<WeightedTopology> {
                self.spec
                    .schedule_policies
                    .iter()
                    .filter_map(|p| p.evenly_spread.as_ref())
                    .flat_map(|e| e.topologies.iter().cloned())
                    .collect()
            }
            fn revision_data(&self) -> serde_json::Value {
                serde_json::json!({ "template": self.spec.template, "minReadySeconds": self.spec.min_ready_seconds })
            }
            fn template_meta(&self) -> Option<&ObjectMeta> {
                self.spec.template.metadata.as_ref()
            }
            fn instance_from_template(&self, name: &str, topology: Option<Topology>) -> $instance {
                <$instance>::new(
                    name,
                    tikv_operator_api::$spec {
                        cluster: self.spec.cluster.clone(),
                        topology,
                        subdomain: names::peer_service_name(&self.name_any(), $component),
                        min_ready_seconds: self.spec.min_ready_seconds,
                        template: self.spec.template.spec.clone(),
                        $($extra: $value,)*
                    },
                )
            }
            fn common_status(status: &$status) -> &CommonStatus {
                &status.common
            }
            fn common_status_mut(status: &mut $status) -> &mut CommonStatus {
                &mut status.common
            }
            fn group_status(status: &$status) -> &GroupStatus {
                &status.group
            }
            fn group_status_mut(status: &mut $status) -> &mut GroupStatus {
                &mut status.group
            }
            fn new_instance_annotations(&self) -> BTreeMap<String, String> {
                ($annotations)(self)
            }
            fn replicas_note(&self) -> Option<String> {
                ($note)(self)
            }
        }
    };
}

/// PD's quorum is a majority: an even member count tolerates no more failures than one
/// member fewer.
pub fn even_members_note(group: &PDGroup) -> Option<String> {
    let members = group.spec.replicas;
    if members <= 0 || members % 2 != 0 {
        return None;
    }
    let tolerated = (members - 1) / 2;
    let failures = if tolerated == 1 { "failure" } else { "failures" };
    Some(format!(
        "{members} members tolerate {tolerated} {failures}, as {} do: an odd number of PD members uses every member",
        members - 1
    ))
}

group_impl!(PDGroup, PDGroupStatus, PD, PDSpec, names::COMPONENT_PD, crate::pd::render::RESERVED_KEYS, 1, false; |group: &PDGroup| {
    // Members created before the PD cluster forms start it together.
    let mut annotations = BTreeMap::new();
    if !group.spec.bootstrapped {
        annotations.insert(names::ANNOTATION_INITIAL_CLUSTER_NUM.to_string(), group.spec.replicas.to_string());
    }
    annotations
}, even_members_note, |_: &PDGroup| Removal::Member);
group_impl!(TiKVGroup, TiKVGroupStatus, TiKV, TiKVSpec, names::COMPONENT_TIKV, crate::tikv::render::RESERVED_KEYS, 0, true, offline: false; |_: &TiKVGroup| BTreeMap::new(), |_: &TiKVGroup| None, |group: &TiKVGroup| {
    Removal::Offline { parallelism: usize::try_from(group.spec.scale_in_parallelism.max(1)).unwrap_or(1) }
});
