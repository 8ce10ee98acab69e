//! What both group controllers share apart from their tasks: the parts of the pass
//! state every group has, and the pure helpers the group tasks use (the instance object
//! to create, the updater's view of an instance, readiness). The generic group tasks
//! (load instances, revision, updater, status, deletion) are in [`super::tasks`].

use std::collections::BTreeMap;

use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use tikv_operator_api::condition::{find_condition, is_true_at, types};
use tikv_operator_api::names;

use super::render::{controller_ref, group_selector};
use super::{Group, Instance, PassState};
use crate::updater::{Blocked, InstanceView, ScaleIn};

/// What the group tasks share.
#[derive(Debug)]
pub struct GroupParts<I> {
    pub instances: Vec<I>,
    pub instances_loaded: bool,
    pub update_revision: Option<String>,
    /// Set by a check before the updater when a scale-in could not finish: the updater
    /// starts no new offline and reports this instead.
    pub scale_in_blocked: Option<Blocked>,
    /// What the updater planned, once it ran this pass.
    pub planned: Option<Planned>,
    /// Instances created in this pass.
    pub created: Vec<String>,
    /// What `validate_template` found wrong with the template: it is not rolled out.
    pub template_findings: Vec<super::Finding>,
    /// Why the group's revision may not reach instances yet (TiKV: PD is not on its new
    /// version everywhere): no instance is updated or created at it.
    pub rollout_held: Option<String>,
}

impl<I> Default for GroupParts<I> {
    fn default() -> Self {
        Self {
            instances: Vec::new(),
            instances_loaded: false,
            update_revision: None,
            scale_in_blocked: None,
            planned: None,
            created: Vec::new(),
            template_findings: Vec::new(),
            rollout_held: None,
        }
    }
}

/// What the group's status reports of the updater's plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Planned {
    /// More instances exist than are wanted.
    pub scale_in: Option<ScaleIn>,
    /// A removal the plan needs and does not start (`ScaleInBlocked`).
    pub blocked: Option<Blocked>,
}

/// A group controller's state.
pub trait GroupState: PassState<Object = Self::G> {
    type G: Group;
    fn group(&self) -> &GroupParts<<Self::G as Group>::Instance>;
    fn group_mut(&mut self) -> &mut GroupParts<<Self::G as Group>::Instance>;
}

/// The instance object the updater asked for.
pub fn new_instance<G: Group>(
    group: &G,
    name: &str,
    topology: Option<tikv_operator_api::Topology>,
    revision: &str,
) -> G::Instance {
    let mut instance = group.instance_from_template(name, topology);
    let template = group.template_meta();
    let mut labels: BTreeMap<String, String> = template.map(|t| t.labels.clone()).unwrap_or_default();
    labels.extend(group_selector(&group.cluster_name(), G::COMPONENT, &group.name_any()));
    labels.insert(names::LABEL_INSTANCE.into(), name.into());
    labels.insert(names::LABEL_INSTANCE_REVISION_HASH.into(), revision.into());
    let mut annotations: BTreeMap<String, String> = template.map(|t| t.annotations.clone()).unwrap_or_default();
    annotations.extend(group.new_instance_annotations());
    *instance.meta_mut() = ObjectMeta {
        name: Some(name.into()),
        namespace: group.namespace(),
        labels: Some(labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        owner_references: Some(controller_ref(group)),
        // Born with the finalizer its controller would add in its first pass: one write
        // fewer per instance, and no moment in which it could go without its cleanup.
        finalizers: Some(vec![names::FINALIZER.into()]),
        ..ObjectMeta::default()
    };
    instance
}

/// What the updater needs to know of an instance. An unreadable priority or choice time
/// counts as absent.
pub fn instance_view<I: Instance>(instance: &I) -> InstanceView {
    let conditions = instance.status().map(|s| I::conditions(s)).unwrap_or_default();
    let is_true = |type_: &str| find_condition(conditions, type_).is_some_and(|c| c.status == "True");
    let annotation = |key: &str| instance.annotations().get(key).map(|v| v.trim().to_string());
    InstanceView {
        name: instance.name_any(),
        topology: instance.topology().cloned(),
        revision: instance.labels().get(names::LABEL_INSTANCE_REVISION_HASH).cloned(),
        ready: instance_ready(instance),
        running: is_true(types::RUNNING),
        deleting: instance.meta().deletion_timestamp.is_some(),
        offline: instance.offline(),
        offlined: is_true(types::OFFLINED),
        priority: annotation(names::ANNOTATION_PRIORITY).and_then(|v| v.parse().ok()),
        offline_chosen_at: annotation(names::ANNOTATION_OFFLINE_CHOSEN_AT).and_then(|v| v.parse().ok()),
        leader: instance.is_leader(),
        failover: instance.annotations().contains_key(names::ANNOTATION_FAILOVER),
    }
}

/// Ready at the instance's current generation.
pub fn instance_ready<I: Instance>(instance: &I) -> bool {
    instance.status().is_some_and(|s| is_true_at(I::conditions(s), types::READY, instance.meta().generation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sample_pd, sample_tikv, t0};
    use tikv_operator_api::condition::{DesiredCondition, set_condition};

    fn with_conditions<I: Instance>(mut instance: I, conditions: &[(&str, bool, Option<i64>)]) -> I {
        let mut status = I::Status::default();
        for (type_, value, generation) in conditions {
            let desired = DesiredCondition::new(type_, *value, "Test", "").observed(*generation);
            set_condition(I::conditions_mut(&mut status), desired, t0());
        }
        instance.set_status(status);
        instance
    }

    #[test]
    fn the_updater_sees_readiness_offline_priority_and_choice_time() {
        let mut tikv = sample_tikv("tikv-a", "tikv");
        tikv.spec.offline = true;
        tikv.annotations_mut().insert(names::ANNOTATION_PRIORITY.into(), " 3 ".into());
        tikv.annotations_mut().insert(names::ANNOTATION_OFFLINE_CHOSEN_AT.into(), "2027-01-15T08:00:00Z".into());
        let tikv = with_conditions(
            tikv,
            &[(types::READY, true, Some(1)), (types::RUNNING, true, None), (types::OFFLINED, true, None)],
        );
        let view = instance_view(&tikv);
        assert!(view.ready && view.running && view.offline && view.offlined && !view.deleting && !view.leader);
        assert_eq!(view.priority, Some(3));
        assert_eq!(view.offline_chosen_at, Some(t0()));
        assert_eq!(view.revision.as_deref(), Some("rev-1"));

        // Ready observed at an older generation says nothing; unreadable annotations are absent.
        let mut tikv = sample_tikv("tikv-b", "tikv");
        tikv.annotations_mut().insert(names::ANNOTATION_PRIORITY.into(), "-1".into());
        tikv.annotations_mut().insert(names::ANNOTATION_OFFLINE_CHOSEN_AT.into(), "yesterday".into());
        let view = instance_view(&with_conditions(tikv, &[(types::READY, true, Some(0))]));
        assert!(!view.ready && !view.running && !view.offline && !view.offlined);
        assert_eq!((view.priority, view.offline_chosen_at), (None, None));

        let mut pd = sample_pd("pd-a", "pd");
        pd.status = Some(tikv_operator_api::PDStatus { is_leader: true, ..Default::default() });
        assert!(instance_view(&pd).leader);
    }
}
