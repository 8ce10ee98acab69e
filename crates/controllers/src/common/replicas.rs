//! What a group's Ready condition says about its replicas: ready counted against what
//! is wanted and what exists, instances the scheduler cannot place (with its reason,
//! read from the instances' own Ready condition), and the component's remark on the
//! count (PD: an even number of members). Pure.

use tikv_operator_api::condition::{find_condition, reasons, types};

use super::Instance;
use super::group::instance_ready;

/// The counts behind a group's Ready condition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replicas {
    pub desired: i32,
    /// Instances not being deleted nor leaving (offline).
    pub existing: i32,
    /// Of those, Ready at their generation.
    pub ready: i32,
    /// Of those, not ready because their Pod cannot be scheduled.
    pub unschedulable: i32,
    /// The scheduler's message for the first of them.
    pub unschedulable_message: Option<String>,
}

impl Replicas {
    /// Counts the instances that stay (not being deleted, not offline).
    pub fn count<I: Instance>(desired: i32, instances: &[I]) -> Self {
        let mut replicas = Replicas { desired, ..Replicas::default() };
        for instance in instances.iter().filter(|i| i.meta().deletion_timestamp.is_none() && !i.offline()) {
            replicas.existing += 1;
            if instance_ready(instance) {
                replicas.ready += 1;
                continue;
            }
            let ready = instance.status().and_then(|s| find_condition(I::conditions(s), types::READY));
            if let Some(condition) = ready.filter(|c| c.status == "False" && c.reason == reasons::UNSCHEDULABLE) {
                replicas.unschedulable += 1;
                replicas.unschedulable_message.get_or_insert_with(|| condition.message.clone());
            }
        }
        replicas
    }

    /// `(status, reason, message)` of the group's Ready condition: True when at least as
    /// many instances exist as are wanted and all of them are ready (a surplus that has
    /// not left yet — a scale-in under way or refused — serves too: Synced tells that).
    pub fn ready_condition(&self, min_replicas: i32, note: Option<String>) -> (bool, &'static str, String) {
        let Replicas { desired, existing, ready, unschedulable, .. } = *self;
        let (status, reason, mut message) = if desired < min_replicas {
            (false, reasons::INVALID_SPEC, format!("spec.replicas is {desired}; at least {min_replicas} is needed"))
        } else if ready == desired && existing == desired {
            (true, reasons::READY, format!("{ready} of {desired} instances ready"))
        } else if ready == existing && existing > desired {
            let extra = existing - desired;
            (
                true,
                reasons::READY,
                format!("{ready} instances ready, {desired} wanted: {extra} more until the scale-in ends"),
            )
        } else {
            let mut details = Vec::new();
            if existing < desired {
                details.push(format!("{} not yet created", desired - existing));
            }
            if existing > desired {
                details.push(format!("{} more than wanted", existing - desired));
            }
            if existing > ready {
                details.push(format!("{} not ready", existing - ready));
            }
            if unschedulable > 0 {
                let why = self.unschedulable_message.as_deref().unwrap_or_default();
                details.push(format!("{unschedulable} cannot be scheduled: {why}"));
            }
            let reason = if unschedulable > 0 { reasons::UNSCHEDULABLE } else { reasons::NOT_ALL_INSTANCES_READY };
            (false, reason, format!("{ready} of {desired} wanted instances ready; {}", details.join(", ")))
        };
        if let Some(note) = note {
            message = format!("{message}; {note}");
        }
        (status, reason, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_pd;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tikv_operator_api::PD;

    fn with_ready(name: &str, status: &str, reason: &str, message: &str) -> PD {
        let mut pd = sample_pd(name, "pd");
        pd.status = Some(
            serde_json::from_value(serde_json::json!({"conditions": [{
                "type": "Ready", "status": status, "reason": reason, "message": message,
                "observedGeneration": 1, "lastTransitionTime": "2027-01-15T08:00:00Z"}]}))
            .unwrap(),
        );
        pd
    }

    fn ready(name: &str) -> PD {
        with_ready(name, "True", reasons::READY, "ready")
    }

    fn unschedulable(name: &str) -> PD {
        with_ready(name, "False", reasons::UNSCHEDULABLE, "0/3 nodes are available: 3 Insufficient cpu.")
    }

    #[test]
    fn ready_only_when_every_wanted_instance_exists_and_is_ready() {
        let r = Replicas::count(3, &[ready("a"), ready("b"), ready("c")]);
        assert_eq!(r.ready_condition(1, None), (true, reasons::READY, "3 of 3 instances ready".into()));

        // The typo: 1000 wanted, 3 exist and are ready.
        let r = Replicas::count(1000, &[ready("a"), ready("b"), ready("c")]);
        assert_eq!(
            r.ready_condition(1, None),
            (false, reasons::NOT_ALL_INSTANCES_READY, "3 of 1000 wanted instances ready; 997 not yet created".into())
        );

        // More exist than wanted (a PD scale-in that is not carried out), one not ready.
        let r = Replicas::count(2, &[ready("a"), ready("b"), with_ready("c", "False", reasons::POD_NOT_READY, "")]);
        assert_eq!(r.ready_condition(1, None).2, "2 of 2 wanted instances ready; 1 more than wanted, 1 not ready");
        // All ready, one more than wanted (a scale-in under way or refused): serving.
        let r = Replicas::count(2, &[ready("a"), ready("b"), ready("c")]);
        assert_eq!(
            r.ready_condition(1, None),
            (true, reasons::READY, "3 instances ready, 2 wanted: 1 more until the scale-in ends".into())
        );
    }

    #[test]
    fn a_store_leaving_does_not_count_as_existing() {
        let mut leaving = crate::testing::sample_tikv("c", "tikv");
        leaving.spec.offline = true;
        let staying = [crate::testing::sample_tikv("a", "tikv"), crate::testing::sample_tikv("b", "tikv"), leaving];
        let r = Replicas::count(2, &staying);
        assert_eq!((r.existing, r.ready), (2, 0));
    }

    #[test]
    fn unschedulable_instances_are_counted_with_the_schedulers_first_message() {
        let mut gone = unschedulable("gone");
        gone.metadata.deletion_timestamp = Some(Time(crate::testing::t0()));
        let second =
            with_ready("d", "False", reasons::UNSCHEDULABLE, "0/3 nodes are available: 3 Insufficient memory.");
        let r = Replicas::count(5, &[ready("a"), unschedulable("b"), second, gone, sample_pd("e", "pd")]);
        assert_eq!((r.existing, r.ready, r.unschedulable), (4, 1, 2), "the deleting one does not count");
        assert_eq!(
            r.ready_condition(1, None),
            (
                false,
                reasons::UNSCHEDULABLE,
                "1 of 5 wanted instances ready; 1 not yet created, 3 not ready, 2 cannot be scheduled: 0/3 nodes are \
                 available: 3 Insufficient cpu."
                    .into()
            )
        );
    }

    #[test]
    fn too_few_replicas_are_never_ready_and_a_note_is_appended() {
        let r = Replicas::count(0, &[] as &[PD]);
        assert_eq!(
            r.ready_condition(1, None),
            (false, reasons::INVALID_SPEC, "spec.replicas is 0; at least 1 is needed".into())
        );
        // For TiKV zero is allowed and trivially ready.
        assert!(r.ready_condition(0, None).0);

        let r = Replicas::count(4, &[ready("a"), ready("b"), ready("c"), ready("d")]);
        assert_eq!(r.ready_condition(1, Some("a note".into())).2, "4 of 4 instances ready; a note");
    }
}
