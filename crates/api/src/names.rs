//! Label, annotation and finalizer names, and the limits on object names that keep
//! every generated name valid.

/// Prefix of every label the operator sets. Users may not set labels with it in overlays.
pub const LABEL_PREFIX: &str = "tikv.org/";

/// Marks objects the operator manages; its watches are filtered by it.
pub const LABEL_MANAGED_BY: &str = "tikv.org/managed-by";
/// The value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY_OPERATOR: &str = "tikv-operator";
/// Name of the Cluster an object belongs to.
pub const LABEL_CLUSTER: &str = "tikv.org/cluster";
/// Component of an object: [`COMPONENT_PD`] or [`COMPONENT_TIKV`].
pub const LABEL_COMPONENT: &str = "tikv.org/component";
/// Name of the group an instance (and its children) belongs to.
pub const LABEL_GROUP: &str = "tikv.org/group";
/// Name of the instance a Pod, ConfigMap or PVC belongs to.
pub const LABEL_INSTANCE: &str = "tikv.org/instance";
/// The group revision an instance and its Pod were rendered from.
pub const LABEL_INSTANCE_REVISION_HASH: &str = "tikv.org/instance-revision-hash";
/// Name of the template volume a PVC was made for.
pub const LABEL_VOLUME_NAME: &str = "tikv.org/volume-name";
/// PD store ID of the TiKV store whose data a PVC holds, set once the store is known.
/// A PVC is deleted only when the store with this ID is removed in PD.
pub const LABEL_STORE_ID: &str = "tikv.org/store-id";

/// Value of [`LABEL_COMPONENT`] for PD.
pub const COMPONENT_PD: &str = "pd";
/// Value of [`LABEL_COMPONENT`] for TiKV.
pub const COMPONENT_TIKV: &str = "tikv";

/// Set by a TiKV group on the instance whose Down store it replaces (failover): the
/// time it was chosen. The group creates a replacement, then takes the instance offline.
pub const ANNOTATION_FAILOVER: &str = "core.tikv.org/failover";

/// Prefix of every annotation the operator sets.
pub const ANNOTATION_PREFIX: &str = "core.tikv.org/";
/// Hash of the desired state of a child object; an unchanged hash means no write.
pub const ANNOTATION_SPEC_HASH: &str = "core.tikv.org/spec-hash";
/// JSON of the instance template a Pod was created from (decides in-place vs recreate).
pub const ANNOTATION_LAST_INSTANCE_TEMPLATE: &str = "core.tikv.org/last-instance-template";
/// Instance marked for deletion after its replacement is ready.
pub const ANNOTATION_DEFER_DELETE: &str = "core.tikv.org/defer-delete";
/// Non-negative integer on an instance; lower values are chosen first for scale-in and
/// update, and an instance without it (or with another value) after every annotated one.
pub const ANNOTATION_PRIORITY: &str = "core.tikv.org/priority";
/// When the group chose an instance to leave (an RFC 3339 time), set with
/// `spec.offline: true`: a scale-in cancelled by raising replicas brings back the
/// newest choices first. An offline without it was not the group's choice.
pub const ANNOTATION_OFFLINE_CHOSEN_AT: &str = "core.tikv.org/offline-chosen-at";
/// Store ID of the evict-leader scheduler this operator added for an instance; only
/// schedulers recorded here are ever removed by the operator.
pub const ANNOTATION_EVICT_LEADER_STORE: &str = "core.tikv.org/evict-leader-store";
/// Set to `"true"` on a group to accept a version downgrade or a jump across major
/// versions that the operator otherwise refuses (PD and TiKV do not support them in
/// general: the user takes the responsibility). Without it, such a template shows as
/// `Synced=False` (`VersionDowngrade`, `VersionMajorJump`) and is not rolled out; any
/// other value counts as absent. Versions are compared as semver, with or without `v`,
/// against the group's `status.version` and the versions its instances run.
pub const ANNOTATION_ALLOW_VERSION_CHANGE: &str = "core.tikv.org/allow-unsupported-version-change";
/// On a Pod: the part of its instance's spec that only a restart applies (version,
/// image, resources, volumes and mounts, ports, TLS, the pod overlay's spec) and the
/// hash of the user's `config`, as compact JSON. A Pod whose recorded values differ from
/// the instance's is recreated (a `config` difference only under `Restart`; under
/// `HotReload` it is applied online); anything else (labels, annotations, server
/// labels, volume sizes) is applied in place. Keys a newer operator adds are compared
/// only once recorded, and a Pod without the annotation counts as up to date, so a new
/// operator build restarts nothing by itself.
pub const ANNOTATION_RESTART_INTENT: &str = "core.tikv.org/restart-intent";
/// On a Pod: the keys of its instance's `config` that its running process could not
/// take online (under `HotReload`), comma-separated; they apply at its next restart.
pub const ANNOTATION_CONFIG_NEEDS_RESTART: &str = "core.tikv.org/config-needs-restart";
/// On an instance: the restart under way, `<old pod UID>` — recorded before the old
/// Pod is deleted, removed once the new process serves again (TiKV: its leaders back).
pub const ANNOTATION_RESTART: &str = "core.tikv.org/restart";
/// On a TiKV instance's PVC: the PersistentVolume bound to it that carries the
/// instance's cluster, group, instance and store-ID labels (set once it does), so a
/// pass reads the PV only when it is new to it.
pub const ANNOTATION_PV_LABELLED: &str = "core.tikv.org/pv-labelled";
/// Number of members in the initial PD cluster a PD instance was rendered with.
pub const ANNOTATION_INITIAL_CLUSTER_NUM: &str = "core.tikv.org/initial-cluster-num";
/// On a PD instance: the member ID whose removal from PD the operator asked for,
/// written before the request. The member counts as gone once a fresh view no longer
/// lists that ID; while it is set on an instance that is not being deleted (its data
/// was lost), the instance's next Pod joins the cluster as a new member.
pub const ANNOTATION_MEMBER_REMOVAL: &str = "core.tikv.org/member-removal";

/// Finalizer on Clusters, groups and instances: the operator releases it only when it
/// has finished cleaning up (for TiKV, once PD reports the store removed).
pub const FINALIZER: &str = "core.tikv.org/finalizer";

/// Field manager and user agent of the operator's writes.
pub const FIELD_MANAGER: &str = "tikv-operator";

/// Longest Cluster name: it appears in label values and in generated Secret and
/// Service names.
pub const MAX_CLUSTER_NAME_LEN: usize = 37;
/// Longest group name: `<group>-<component>-peer` must stay a 63-character DNS label.
pub const MAX_GROUP_NAME_LEN: usize = 40;
/// Longest instance name: `<group>-<6-char suffix>`.
pub const MAX_INSTANCE_NAME_LEN: usize = 47;
/// Length of the random suffix of generated instance names.
pub const INSTANCE_SUFFIX_LEN: usize = 6;

/// Reserved prefix of volume names the operator adds to Pods itself.
pub const RESERVED_VOLUME_PREFIX: &str = "tikv-vol-";
/// Name of the data volume every template must declare.
pub const DATA_VOLUME: &str = "data";

/// Headless peer Service of a group: `<group>-<component>-peer`.
pub fn peer_service_name(group: &str, component: &str) -> String {
    format!("{group}-{component}-peer")
}

/// Client Service of a PD group: `<group>-pd`.
pub fn pd_client_service_name(group: &str) -> String {
    format!("{group}-{COMPONENT_PD}")
}

/// Pod (and ConfigMap) of an instance: `<group>-<component>-<suffix>`, where the
/// instance itself is named `<group>-<suffix>`.
pub fn pod_name(group: &str, component: &str, instance: &str) -> String {
    let suffix = instance.strip_prefix(group).and_then(|rest| rest.strip_prefix('-')).unwrap_or(instance);
    format!("{group}-{component}-{suffix}")
}

/// Secret with the certificates components of a group use between themselves when
/// `tlsCluster` is on: `<group>-<component>-cluster-secret`.
pub fn cluster_tls_secret_name(group: &str, component: &str) -> String {
    format!("{group}-{component}-cluster-secret")
}

/// Secret with the client certificate the operator uses to talk to PD when
/// `tlsCluster` is on: `<cluster>-cluster-client-secret`.
pub fn cluster_client_secret_name(cluster: &str) -> String {
    format!("{cluster}-cluster-client-secret")
}

/// PVC of one template volume of a Pod: `<volume>-<pod>`.
pub fn pvc_name(volume: &str, pod: &str) -> String {
    format!("{volume}-{pod}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_names_stay_valid_dns_labels() {
        let group = "g".repeat(MAX_GROUP_NAME_LEN);
        let instance = format!("{group}-{}", "x".repeat(INSTANCE_SUFFIX_LEN));
        assert_eq!(instance.len(), MAX_INSTANCE_NAME_LEN);
        for component in [COMPONENT_PD, COMPONENT_TIKV] {
            assert!(peer_service_name(&group, component).len() <= 63);
            assert!(pod_name(&group, component, &instance).len() <= 63);
        }
        assert!(pd_client_service_name(&group).len() <= 63);
    }

    #[test]
    fn pod_name_keeps_the_instance_suffix() {
        assert_eq!(pod_name("basic", "tikv", "basic-ab12cd"), "basic-tikv-ab12cd");
        assert_eq!(pvc_name("data", "basic-tikv-ab12cd"), "data-basic-tikv-ab12cd");
    }
}
