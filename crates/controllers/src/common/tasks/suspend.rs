//! Suspension (`Cluster.spec.suspendAction.suspendCompute`), the parts both components
//! and both group kinds share: deleting an instance's Pod for it, and the `Suspended`
//! condition of instances and groups.
//!
//! An instance is `Suspended` True (reason `Suspended`) once its Pod is gone while the
//! Cluster is suspended; False `Suspending` while its Pod is still there; False
//! `Resuming` once the Cluster is resumed until its Pod is back; False `Unsuspended`
//! otherwise. While suspended, Synced is False (reason `Suspended`): what the spec asks
//! for applies on resume. A group is `Suspended` True once every instance is; the same
//! reasons otherwise, counted over its instances.
//!
//! `instance_suspended` and `group_suspended` read what the pass loaded and write only
//! the status being built (before the components' own condition tasks, so that Synced
//! says why), with an Event when an instance's suspension completes and when its Pod is
//! back. `delete_for_suspension` deletes the Pod read, by its UID.

use kube::{Resource, ResourceExt};
use tikv_operator_api::condition::{find_condition, reasons, types};
use tikv_operator_task::{Node, Outcome, task};

use crate::common::group::GroupState;
use crate::common::instance::{InstanceState, delete_pod_by_uid, pod_terminating};
use crate::common::{Group, Instance, Object};

/// Whether a `Suspended` reason says the instance has been (or was being) suspended and
/// its Pod is not known to be back.
pub fn suspension_reason(reason: Option<&str>) -> bool {
    matches!(reason, Some(reasons::SUSPENDED | reasons::SUSPENDING | reasons::RESUMING))
}

/// Deletes the instance's Pod for the suspension (the Pod read, by its UID; `grace`
/// seconds if given) and announces it. Outcomes: Complete once no Pod is left; Wait
/// while it terminates or after the deletion (the Pod's events re-trigger the pass);
/// Fail on unexpected API errors.
pub async fn delete_for_suspension<S: InstanceState>(s: &mut S, grace: Option<u32>) -> Outcome {
    let Some(pod) = s.parts().pod.clone() else {
        return Outcome::complete("suspended: no pod");
    };
    let name = pod.name_any();
    if pod_terminating(&pod) {
        return Outcome::wait(format!("pod {name} is terminating; waiting for it to go"));
    }
    if let Err(outcome) = delete_pod_by_uid(s, &pod, grace).await {
        return outcome;
    }
    let how = grace.map(|g| format!(" (grace {g}s)")).unwrap_or_default();
    let message = format!("deleted pod {name}{how}: the Cluster is suspended; its volumes and identity are kept");
    s.pass().event("SuspendingPod", "Suspend", message.clone()).await;
    Outcome::wait(message)
}

/// The instance's `Suspended` condition (and Synced False while suspended).
pub fn instance_suspended<S: InstanceState>() -> Node<S> {
    task("instance_suspended", |s: &mut S| Box::pin(run_instance(s)))
}

async fn run_instance<S: InstanceState>(s: &mut S) -> Outcome {
    if !s.parts().pod_loaded {
        return Outcome::complete("pod not read; left as read");
    }
    let read = s.pass().reason_as_read(types::SUSPENDED).map(str::to_owned);
    let pod = s.parts().pod.as_ref().map(|p| (p.name_any(), pod_terminating(p)));
    let suspended = s.pass().suspended();
    let (status, reason, message) = match (suspended, pod) {
        (true, None) => (
            true,
            reasons::SUSPENDED,
            "the Cluster is suspended: the pod is deleted; its volumes and identity are kept".to_string(),
        ),
        (true, Some((name, true))) => {
            (false, reasons::SUSPENDING, format!("the Cluster is suspended: pod {name} is terminating"))
        }
        (true, Some((name, false))) => (
            false,
            reasons::SUSPENDING,
            format!("the Cluster is suspended: pod {name} is to be deleted (TiKV pods go before PD pods)"),
        ),
        (false, None) if suspension_reason(read.as_deref()) => (
            false,
            reasons::RESUMING,
            "the Cluster is resumed: the pod is not back yet (TiKV pods wait for every PD member)".to_string(),
        ),
        (false, _) => (false, reasons::UNSUSPENDED, String::new()),
    };
    if suspended {
        let synced = match reason {
            reasons::SUSPENDED => "the Cluster is suspended: no pod runs; the spec applies on resume",
            _ => "the Cluster is suspended: the pod is being deleted",
        };
        let finding = if reason == reasons::SUSPENDED { reasons::SUSPENDED } else { reasons::POD_NOT_DELETED };
        s.pass_mut().unsynced.insert(0, crate::common::Finding { reason: finding, message: synced.into() });
    }
    let name = s.pass().name.clone();
    if reason == reasons::SUSPENDED && read.as_deref() != Some(reasons::SUSPENDED) {
        let note = format!("{} {name} is suspended: its pod is gone", S::I::COMPONENT);
        s.pass().event("Suspended", "Suspend", note).await;
    }
    if reason == reasons::UNSUSPENDED && suspension_reason(read.as_deref()) {
        let note = format!("{} {name} is resumed: its pod is back", S::I::COMPONENT);
        s.pass().event("Resumed", "Resume", note).await;
    }
    s.pass_mut().set_condition(types::SUSPENDED, status, reason, message);
    Outcome::complete(reason)
}

/// The group's `Suspended` condition from its instances' (and Synced False while
/// suspended: the group plans nothing, its spec applies on resume).
pub fn group_suspended<S: GroupState>() -> Node<S> {
    task("group_suspended", |s: &mut S| {
        Box::pin(async move {
            if !s.group().instances_loaded || s.pass().cluster.is_none() {
                return Outcome::complete("instances or Cluster not read; left as read");
            }
            let reasons_of: Vec<Option<String>> = s
                .group()
                .instances
                .iter()
                .filter(|i| i.meta().deletion_timestamp.is_none())
                .map(|i| {
                    let conditions = i.status().map(<S::G as Group>::Instance::conditions).unwrap_or_default();
                    find_condition(conditions, types::SUSPENDED)
                        .map(|c| if c.status == "True" { reasons::SUSPENDED.to_string() } else { c.reason.clone() })
                })
                .collect();
            let total = reasons_of.len();
            let done = reasons_of.iter().filter(|r| r.as_deref() == Some(reasons::SUSPENDED)).count();
            let away = reasons_of.iter().filter(|r| suspension_reason(r.as_deref())).count();
            let (status, reason, message) = if s.pass().suspended() {
                if done == total {
                    (true, reasons::SUSPENDED, format!("every instance is suspended ({total})"))
                } else {
                    (false, reasons::SUSPENDING, format!("{done} of {total} instances suspended"))
                }
            } else if away > 0 {
                (false, reasons::RESUMING, format!("{} of {total} instances back", total - away))
            } else {
                (false, reasons::UNSUSPENDED, String::new())
            };
            let pass = s.pass_mut();
            if pass.suspended() {
                pass.not_synced(
                    reasons::SUSPENDED,
                    "the Cluster is suspended: nothing is planned; spec changes apply on resume",
                );
            }
            pass.set_condition(types::SUSPENDED, status, reason, message.clone());
            Outcome::complete(format!("{reason}: {message}"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, pd_group_pass, sample_cluster, sample_pd, sample_pd_group};
    use crate::tikv::state::TikvState;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tikv_operator_api::cluster::SuspendAction;
    use tikv_operator_api::condition::{DesiredCondition, set_condition};
    use tikv_operator_api::{Cluster, PD, TiKV};
    use tikv_operator_task::Runner;

    fn cluster(suspended: bool) -> Cluster {
        let mut cluster = sample_cluster("basic");
        cluster.spec.suspend_action = Some(SuspendAction { suspend_compute: suspended });
        cluster
    }

    /// `tikv` with `Suspended` as an earlier pass wrote it.
    fn with_suspended<K: Object>(mut object: K, status: bool, reason: &str) -> K {
        let mut st = object.status().cloned().unwrap_or_default();
        let desired = DesiredCondition::new(types::SUSPENDED, status, reason, "");
        set_condition(K::conditions_mut(&mut st), desired, crate::testing::t0());
        object.set_status(st);
        object
    }

    fn state(env: &TestEnv, tikv: TiKV, suspended: bool, pod: Option<Pod>) -> TikvState {
        let mut s = TikvState::new(env.ctx.clone(), "default", "tikv-abc123");
        s.pass = s.pass.with_object(tikv).with_cluster(cluster(suspended));
        s.parts.pod_loaded = true;
        s.parts.pod = pod;
        s
    }

    fn condition(s: &TikvState) -> (String, String) {
        let c = find_condition(&s.pass.status.common.conditions, types::SUSPENDED).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    fn pod(terminating: bool) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some("tikv-tikv-abc123".into());
        if terminating {
            pod.metadata.deletion_timestamp = Some(Time(crate::testing::t0()));
        }
        pod
    }

    async fn run(env: &TestEnv, s: &mut TikvState) {
        env.run(&Runner::new("t", [instance_suspended::<TikvState>()]), "k", s).await;
    }

    #[tokio::test]
    async fn an_instance_says_where_its_suspension_stands() {
        let env = TestEnv::start().await;
        let tikv = crate::testing::sample_tikv("tikv-abc123", "tikv");
        // Never suspended: Unsuspended, no Event.
        let mut s = state(&env, tikv.clone(), false, Some(pod(false)));
        run(&env, &mut s).await;
        assert_eq!(condition(&s), ("False".into(), "Unsuspended".into()));
        assert!(s.pass.unsynced.is_empty());
        // Suspended, the pod still there or terminating: Suspending, not synced.
        for terminating in [false, true] {
            let mut s = state(&env, tikv.clone(), true, Some(pod(terminating)));
            run(&env, &mut s).await;
            assert_eq!(condition(&s), ("False".into(), "Suspending".into()));
            assert_eq!(s.pass.unsynced[0].reason, reasons::POD_NOT_DELETED);
        }
        // The pod gone: Suspended, announced once.
        let suspending = with_suspended(tikv.clone(), false, reasons::SUSPENDING);
        let mut s = state(&env, suspending, true, None);
        run(&env, &mut s).await;
        assert_eq!(condition(&s), ("True".into(), "Suspended".into()));
        assert_eq!(s.pass.unsynced[0].reason, reasons::SUSPENDED);
        let suspended = with_suspended(tikv.clone(), true, reasons::SUSPENDED);
        let mut s = state(&env, suspended.clone(), true, None);
        run(&env, &mut s).await;
        assert_eq!(env.event_writes().await, 1, "announced once");
        // Resumed, no pod yet: Resuming; then the pod back: Unsuspended, announced.
        let mut s = state(&env, suspended, false, None);
        run(&env, &mut s).await;
        assert_eq!(condition(&s), ("False".into(), "Resuming".into()));
        assert!(s.pass.unsynced.is_empty());
        let resuming = with_suspended(tikv.clone(), false, reasons::RESUMING);
        let mut s = state(&env, resuming, false, Some(pod(false)));
        run(&env, &mut s).await;
        assert_eq!(condition(&s), ("False".into(), "Unsuspended".into()));
        let events = env.events().await;
        let reasons: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(reasons, ["Suspended", "Resumed"], "{events:?}");
        // A pass that did not read the pod leaves the condition as read.
        let mut s = state(&env, tikv, true, None);
        s.parts.pod_loaded = false;
        run(&env, &mut s).await;
        assert!(find_condition(&s.pass.status.common.conditions, types::SUSPENDED).is_none());
    }

    fn pd_in(name: &str, status: Option<(bool, &str)>) -> PD {
        let pd = sample_pd(name, "pd");
        match status {
            Some((status, reason)) => with_suspended(pd, status, reason),
            None => pd,
        }
    }

    async fn group_condition(env: &TestEnv, suspended: bool, instances: Vec<PD>) -> (String, String, String, bool) {
        let mut s = pd_group_pass(env, sample_pd_group("pd", 3), Some(cluster(suspended)));
        s.group.instances = instances;
        s.group.instances_loaded = true;
        env.run(&Runner::new("t", [group_suspended()]), "k", &mut s).await;
        let c = find_condition(&s.pass.status.common.conditions, types::SUSPENDED).unwrap();
        let unsynced = s.pass.unsynced.iter().any(|f| f.reason == reasons::SUSPENDED);
        (c.status.clone(), c.reason.clone(), c.message.clone(), unsynced)
    }

    #[tokio::test]
    async fn a_group_is_suspended_once_every_instance_is() {
        let env = TestEnv::start().await;
        let done = |n: &str| pd_in(n, Some((true, reasons::SUSPENDED)));
        let going = |n: &str| pd_in(n, Some((false, reasons::SUSPENDING)));
        let back = |n: &str| pd_in(n, Some((false, reasons::UNSUSPENDED)));
        let c = group_condition(&env, true, vec![done("a"), going("b"), pd_in("c", None)]).await;
        assert_eq!(c, ("False".into(), "Suspending".into(), "1 of 3 instances suspended".into(), true));
        let c = group_condition(&env, true, vec![done("a"), done("b"), done("c")]).await;
        assert_eq!(c, ("True".into(), "Suspended".into(), "every instance is suspended (3)".into(), true));
        let resuming = pd_in("b", Some((false, reasons::RESUMING)));
        let c = group_condition(&env, false, vec![back("a"), resuming, done("c")]).await;
        assert_eq!(c, ("False".into(), "Resuming".into(), "1 of 3 instances back".into(), false));
        let c = group_condition(&env, false, vec![back("a"), back("b"), pd_in("c", None)]).await;
        assert_eq!(c, ("False".into(), "Unsuspended".into(), String::new(), false));
    }
}
