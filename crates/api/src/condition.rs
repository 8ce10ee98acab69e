//! Condition types and reasons, in the standard Kubernetes shape
//! ([`Condition`]), and the helpers that set and read them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Condition types.
pub mod types {
    /// Instance: serving and healthy. Group: every instance ready. Cluster: every group ready.
    pub const READY: &str = "Ready";
    /// Children (Pod, ConfigMap, PVCs; instances for groups) match the desired state.
    pub const SYNCED: &str = "Synced";
    /// Instance: its Pod's containers are running.
    pub const RUNNING: &str = "Running";
    /// Pods are deleted because the Cluster's suspendAction asks for it.
    pub const SUSPENDED: &str = "Suspended";
    /// TiKV: the store was taken offline (scale-in) in PD.
    pub const OFFLINED: &str = "Offlined";
    /// TiKV: leaders have been moved off the store.
    pub const LEADERS_EVICTED: &str = "LeadersEvicted";
    /// Instance (under `HotReload`): keys of the config the running process could not
    /// take online; they apply at its next restart, which the operator does not force.
    pub const CONFIG_NEEDS_RESTART: &str = "ConfigNeedsRestart";
    /// PD: the member has joined the PD cluster.
    pub const INITIALIZED: &str = "Initialized";
    /// Group: a scale-in was refused because it could not finish safely.
    pub const SCALE_IN_BLOCKED: &str = "ScaleInBlocked";
    /// Cluster: some group is changing (scaling, updating).
    pub const PROGRESSING: &str = "Progressing";
    /// Cluster: `spec.paused` stops every controller of the cluster except status.
    pub const PAUSED: &str = "Paused";
    /// TiKV group with failover enabled: whether a Down store is being replaced (True),
    /// or why not (False: none is Down, it has not been Down long enough, or refused).
    pub const FAILOVER: &str = "Failover";
}

/// Condition reasons (CamelCase, as Kubernetes requires).
pub mod reasons {
    pub const READY: &str = "Ready";
    pub const SYNCED: &str = "Synced";
    pub const RUNNING: &str = "Running";
    pub const PAUSED: &str = "Paused";
    pub const UNPAUSED: &str = "Unpaused";
    pub const PROGRESSING: &str = "Progressing";
    pub const STABLE: &str = "Stable";

    pub const POD_NOT_CREATED: &str = "PodNotCreated";
    pub const POD_TERMINATING: &str = "PodTerminating";
    pub const POD_NOT_READY: &str = "PodNotReady";
    pub const POD_NOT_RUNNING: &str = "PodNotRunning";
    pub const POD_NOT_UP_TO_DATE: &str = "PodNotUpToDate";
    pub const POD_NOT_DELETED: &str = "PodNotDeleted";
    pub const INSTANCE_NOT_HEALTHY: &str = "InstanceNotHealthy";
    pub const STORE_NOT_UP: &str = "StoreNotUp";
    pub const STORE_NOT_EXIST: &str = "StoreNotExist";
    pub const MEMBER_NOT_JOINED: &str = "MemberNotJoined";

    pub const NOT_ALL_INSTANCES_READY: &str = "NotAllInstancesReady";
    pub const NOT_ALL_INSTANCES_UP_TO_DATE: &str = "NotAllInstancesUpToDate";
    pub const NOT_ALL_GROUPS_READY: &str = "NotAllGroupsReady";

    pub const SUSPENDED: &str = "Suspended";
    pub const SUSPENDING: &str = "Suspending";
    pub const UNSUSPENDED: &str = "Unsuspended";

    /// Leaders are moving off the store (the message counts those left).
    pub const EVICTING: &str = "Evicting";
    /// The store holds no leaders while in the evict-leader scheduler.
    pub const EVICTED: &str = "Evicted";
    /// No eviction asked for, or it ended.
    pub const NOT_EVICTED: &str = "NotEvicted";
    /// The leader count has not fallen for the template's `evictLeaderStallTimeout`.
    pub const EVICTION_STALLED: &str = "EvictionStalled";
    /// Eviction cannot work here (a single store, or `max-replicas` 1): skipped.
    pub const EVICTION_NOT_POSSIBLE: &str = "EvictionNotPossible";

    /// Keys of a `HotReload` config change could not change online (the message names them).
    pub const CONFIG_NEEDS_RESTART: &str = "ConfigNeedsRestart";
    /// Every key of the config runs in the process.
    pub const CONFIG_APPLIED: &str = "ConfigApplied";
    /// A restart is refused for now; the message says which gate (leaders, another
    /// store, regions, the PD view) holds it.
    pub const RESTART_BLOCKED: &str = "RestartBlocked";
    /// The Pod was deleted for a restart; waiting for the new process.
    pub const RESTARTING: &str = "Restarting";
    /// The restarted store's leaders came back to under half their count and stopped
    /// rising: reported, and the rollout goes on.
    pub const LEADERS_NOT_BACK: &str = "LeadersNotBack";

    /// PD is moving the store's regions away (the message gives progress).
    pub const OFFLINE_PROCESSING: &str = "OfflineProcessing";
    /// The offline was cancelled and the store serves again.
    pub const OFFLINE_CANCELED: &str = "OfflineCanceled";
    pub const OFFLINE_COMPLETED: &str = "OfflineCompleted";
    /// PD refused to take the store offline (not enough stores left, …): retried.
    pub const OFFLINE_REFUSED: &str = "OfflineRefused";
    /// A destructive step waits for a fresh view of PD (or for PD to answer).
    pub const PD_VIEW_NOT_FRESH: &str = "PDViewNotFresh";
    /// Some instances of a deleted group are still leaving PD.
    pub const INSTANCES_REMAINING: &str = "InstancesRemaining";

    pub const NOT_ENOUGH_STORES: &str = "NotEnoughStores";
    /// A scale-in would leave too few distinct values of the `isolation-level` label.
    pub const ISOLATION_UNSATISFIABLE: &str = "IsolationUnsatisfiable";
    /// A scale-in would leave too little free space for the data of the stores going.
    pub const NOT_ENOUGH_CAPACITY: &str = "NotEnoughCapacity";
    /// A PD group deleted while its Cluster exists is kept: every store needs PD.
    pub const DELETION_REFUSED: &str = "DeletionRefused";
    /// Group: instances are leaving because fewer are wanted (the message counts them).
    pub const SCALING_IN: &str = "ScalingIn";
    pub const PD_UNAVAILABLE: &str = "PDUnavailable";
    pub const CLUSTER_ID_MISMATCH: &str = "ClusterIDMismatch";
    pub const RESERVED_CONFIG_KEY: &str = "ReservedConfigKey";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The group's `config` is not valid TOML.
    pub const INVALID_CONFIG: &str = "InvalidConfig";
    /// A version change that PD and TiKV do not support (older, or across a major
    /// version) without the explicit annotation `ANNOTATION_ALLOW_VERSION_CHANGE`.
    pub const VERSION_DOWNGRADE: &str = "VersionDowngrade";
    pub const VERSION_MAJOR_JUMP: &str = "VersionMajorJump";
    /// The Cluster named by `spec.cluster.name` does not exist in the namespace.
    pub const CLUSTER_NOT_FOUND: &str = "ClusterNotFound";
    /// An even number of PD members: allowed, but one member adds no fault tolerance.
    pub const EVEN_REPLICAS: &str = "EvenReplicas";
    /// Pods that the scheduler cannot place (its reason in the message).
    pub const UNSCHEDULABLE: &str = "Unschedulable";
    /// A PD member crash-loops refusing to join ("join a duplicated pd").
    pub const MEMBER_JOIN_REFUSED: &str = "MemberJoinRefused";
    /// A volume's live PVC is larger than the spec asks: volumes never shrink.
    pub const VOLUME_MISMATCH: &str = "VolumeMismatch";
    /// A volume's storage class differs from the spec: never changed in place.
    pub const STORAGE_CLASS_CHANGE_NOT_SUPPORTED: &str = "StorageClassChangeNotSupported";
    /// The API server refused to grow a volume (its storage class does not allow
    /// expansion, or it was not dynamically provisioned); the message has its words.
    pub const VOLUME_RESIZE_REFUSED: &str = "VolumeResizeRefused";
    /// A volume grows online (the message says how far it got).
    pub const VOLUME_RESIZING: &str = "VolumeResizing";

    // Failover (TiKV groups).
    /// No store is Down.
    pub const NO_STORE_DOWN: &str = "NoStoreDown";
    /// A store is Down, not yet for `afterDown` (the message says how long is left).
    pub const STORE_DOWN: &str = "StoreDown";
    /// A Down store is being replaced (the message says which step).
    pub const FAILING_OVER: &str = "FailingOver";
    /// A Down store is not replaced: another store is not Up, or regions would lose
    /// their majority (the message says which).
    pub const FAILOVER_REFUSED: &str = "FailoverRefused";

    // Volume attributes classes and store labels.
    /// A volume moves to the VolumeAttributesClass the spec names (online, no restart):
    /// waiting for the class to exist, or for the storage driver to apply it.
    pub const VOLUME_MODIFYING: &str = "VolumeModifying";
    /// The storage driver refused the VolumeAttributesClass the spec names (its words in
    /// the message); the volume keeps its class until the spec names one it accepts.
    pub const VOLUME_MODIFY_INFEASIBLE: &str = "VolumeModifyInfeasible";
    /// A location label PD has for the store is missing from its node (or the node is
    /// unknown): the label is kept in PD, since blanking it would move data.
    pub const LOCATION_LABEL_MISSING: &str = "LocationLabelMissing";
    /// PD refused the store's labels (its words in the message).
    pub const STORE_LABELS_REFUSED: &str = "StoreLabelsRefused";

    // PD membership.
    /// A PD member may not leave now: another member is unhealthy, the quorum would not
    /// survive, or another member is leaving (the message says which).
    pub const MEMBER_REMOVAL_BLOCKED: &str = "MemberRemovalBlocked";
    /// The member is leaving PD (leadership handed over, removal asked, waiting for PD).
    pub const MEMBER_REMOVING: &str = "MemberRemoving";
    /// A new member's Pod is not created while another member is unhealthy (PD's etcd
    /// refuses a join then).
    pub const MEMBER_JOIN_HELD: &str = "MemberJoinHeld";
    /// The member's data volume is not the one it joined with: its old member leaves PD
    /// and the instance joins again as a new member.
    pub const MEMBER_DATA_LOST: &str = "MemberDataLost";

    // Suspend / resume.
    /// `Suspended` False: the Cluster is resumed and the instance's Pod is not back yet
    /// (TiKV Pods wait for every PD member to be back and healthy).
    pub const RESUMING: &str = "Resuming";

    // #17 TLS
    /// Cluster `Synced` False: `tlsCluster.enabled` changed; every pod of the cluster is
    /// deleted as for a suspension, and the new setting takes effect (`status.pd` follows)
    /// only once none is left, so no process ever starts among peers speaking the other.
    pub const TLS_SWITCH_PENDING: &str = "TLSSwitchPending";
    /// PD `Synced` False: after a TLS switch, PD still dials this member at its peer URL
    /// of the old scheme. The member listens at both; PD is told the new URL (etcd's
    /// MemberUpdate), then a restart drops the old listener.
    pub const PEER_URL_PENDING: &str = "PeerURLPending";
}

/// Status of a condition, as Kubernetes spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(value: bool) -> Self {
        if value { Status::True } else { Status::False }
    }
}

/// A condition as a controller wants it to be, before it is merged into a status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition<'a> {
    pub type_: &'a str,
    pub status: Status,
    pub reason: &'a str,
    pub message: String,
    pub observed_generation: Option<i64>,
}

impl<'a> DesiredCondition<'a> {
    pub fn new(type_: &'a str, status: impl Into<Status>, reason: &'a str, message: impl Into<String>) -> Self {
        Self { type_, status: status.into(), reason, message: message.into(), observed_generation: None }
    }

    pub fn observed(mut self, generation: Option<i64>) -> Self {
        self.observed_generation = generation;
        self
    }
}

/// Sets a condition in a list. `lastTransitionTime` moves only when the status
/// changes, so that "since when" stays true. Returns whether anything changed, so
/// that a pass that changes nothing writes nothing.
pub fn set_condition(conditions: &mut Vec<Condition>, desired: DesiredCondition<'_>, now: Timestamp) -> bool {
    let status = desired.status.as_str();
    match conditions.iter_mut().find(|c| c.type_ == desired.type_) {
        Some(existing) => {
            let unchanged = existing.status == status
                && existing.reason == desired.reason
                && existing.message == desired.message
                && existing.observed_generation == desired.observed_generation;
            if unchanged {
                return false;
            }
            if existing.status != status {
                existing.last_transition_time = Time(now);
            }
            existing.status = status.to_string();
            existing.reason = desired.reason.to_string();
            existing.message = desired.message;
            existing.observed_generation = desired.observed_generation;
            true
        }
        None => {
            conditions.push(Condition {
                type_: desired.type_.to_string(),
                status: status.to_string(),
                reason: desired.reason.to_string(),
                message: desired.message,
                observed_generation: desired.observed_generation,
                last_transition_time: Time(now),
            });
            true
        }
    }
}

/// Removes a condition; returns whether it was there.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The condition of a type, if present.
pub fn find_condition<'c>(conditions: &'c [Condition], type_: &str) -> Option<&'c Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether a condition is True for the given generation. A condition observed at an
/// older generation says nothing about the current spec and counts as absent.
pub fn is_true_at(conditions: &[Condition], type_: &str, generation: Option<i64>) -> bool {
    find_condition(conditions, type_).is_some_and(|c| {
        c.status == Status::True.as_str() && (generation.is_none() || c.observed_generation == generation)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reasons and condition types declared in this file, read from its source so a
    /// new one cannot be forgotten.
    fn declared(module: &str) -> Vec<String> {
        let source = include_str!("condition.rs");
        let start = source.find(&format!("pub mod {module} {{")).unwrap_or_default();
        let body = &source[start..];
        let body = &body[..body.find("\n}").unwrap_or(body.len())];
        body.lines()
            .filter_map(|line| line.trim().strip_prefix("pub const ")?.split('"').nth(1).map(str::to_owned))
            .collect()
    }

    #[test]
    fn every_reason_and_condition_type_is_in_the_troubleshooting_guide() {
        let guide = include_str!("../../../docs/troubleshooting.md");
        let reasons = declared("reasons");
        assert!(reasons.len() > 60, "{reasons:?}");
        let types = declared("types");
        let missing: Vec<&String> =
            reasons.iter().chain(&types).filter(|r| !guide.contains(&format!("`{r}`"))).collect();
        assert!(missing.is_empty(), "docs/troubleshooting.md does not explain: {missing:?}");
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn adding_a_condition_stamps_the_transition_time() {
        let mut conditions = Vec::new();
        let changed = set_condition(
            &mut conditions,
            DesiredCondition::new(types::READY, false, reasons::POD_NOT_READY, "pod not ready").observed(Some(1)),
            at(100),
        );
        assert!(changed);
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "False");
        assert_eq!(conditions[0].reason, "PodNotReady");
        assert_eq!(conditions[0].observed_generation, Some(1));
        assert_eq!(conditions[0].last_transition_time, Time(at(100)));
    }

    #[test]
    fn same_status_new_message_keeps_the_transition_time() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            DesiredCondition::new(types::READY, false, reasons::POD_NOT_READY, "a"),
            at(100),
        );
        let changed = set_condition(
            &mut conditions,
            DesiredCondition::new(types::READY, false, reasons::STORE_NOT_UP, "b").observed(Some(2)),
            at(200),
        );
        assert!(changed);
        assert_eq!(conditions[0].reason, "StoreNotUp");
        assert_eq!(conditions[0].message, "b");
        assert_eq!(conditions[0].observed_generation, Some(2));
        assert_eq!(conditions[0].last_transition_time, Time(at(100)));
    }

    #[test]
    fn status_change_moves_the_transition_time() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, DesiredCondition::new(types::READY, false, reasons::POD_NOT_READY, ""), at(100));
        set_condition(&mut conditions, DesiredCondition::new(types::READY, true, reasons::READY, ""), at(300));
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].last_transition_time, Time(at(300)));
    }

    #[test]
    fn identical_condition_changes_nothing() {
        let mut conditions = Vec::new();
        let desired = DesiredCondition::new(types::SYNCED, true, reasons::SYNCED, "ok").observed(Some(3));
        set_condition(&mut conditions, desired.clone(), at(100));
        let before = conditions.clone();
        assert!(!set_condition(&mut conditions, desired, at(500)));
        assert_eq!(conditions, before);
    }

    #[test]
    fn conditions_of_other_types_are_left_alone() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, DesiredCondition::new(types::READY, true, reasons::READY, ""), at(1));
        set_condition(
            &mut conditions,
            DesiredCondition::new(types::SYNCED, false, reasons::POD_NOT_UP_TO_DATE, ""),
            at(2),
        );
        assert_eq!(conditions.len(), 2);
        assert!(remove_condition(&mut conditions, types::SYNCED));
        assert!(!remove_condition(&mut conditions, types::SYNCED));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_, "Ready");
    }

    #[test]
    fn a_stale_generation_counts_as_absent() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            DesiredCondition::new(types::READY, true, reasons::READY, "").observed(Some(4)),
            at(1),
        );
        assert!(is_true_at(&conditions, types::READY, Some(4)));
        assert!(!is_true_at(&conditions, types::READY, Some(5)));
        assert!(is_true_at(&conditions, types::READY, None));
        assert!(!is_true_at(&conditions, types::SYNCED, None));
    }
}
