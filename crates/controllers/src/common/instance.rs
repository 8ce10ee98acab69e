//! What both instance controllers share apart from their tasks: the parts of the pass
//! state every instance has, what a Pod's status says, and the Running and Ready
//! conditions and common status fields derived from it. The generic instance tasks
//! (load the Pod, apply the ConfigMap, PVCs and Pod, deletion) are in
//! [`super::tasks`]; the PD and TiKV controllers add what only their component knows
//! (PD member, TiKV store).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names;

use super::{Instance, PassState};

/// What the instance tasks share.
#[derive(Debug, Default)]
pub struct InstanceParts {
    pub pod: Option<Pod>,
    pub pod_loaded: bool,
    /// Hash of the ConfigMap content rendered this pass; `None` when it could not be rendered.
    pub config_hash: Option<String>,
    pub pvcs_ready: bool,
    /// How the live Pod differs from the instance's intent (set by `pod`): what only a
    /// restart applies, and a config change to apply online.
    pub drift: super::restart::PodDrift,
}

/// An instance controller's state.
pub trait InstanceState: PassState<Object = Self::I> {
    type I: Instance;
    fn parts(&self) -> &InstanceParts;
    fn parts_mut(&mut self) -> &mut InstanceParts;
    /// What the restart intent records besides [`restart_intent`]'s keys (a Pod
    /// recorded without one of them is not restarted for it).
    ///
    /// [`restart_intent`]: crate::common::restart::restart_intent
    fn intent_extras(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// A rendered ConfigMap and the operator-owned config keys the user had set.
pub type RenderedConfigMap = (ConfigMap, Vec<String>);

pub fn pod_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Since when the Pod's Ready condition is True.
pub fn pod_ready_since(pod: &Pod) -> Option<Timestamp> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0))
}

pub fn pod_running(pod: &Pod) -> bool {
    let Some(status) = &pod.status else { return false };
    status.phase.as_deref() == Some("Running")
        && status.container_statuses.as_ref().is_some_and(|cs| {
            !cs.is_empty() && cs.iter().all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        })
}

/// Sets Running from the Pod (only when the Pod was looked at this pass).
pub fn set_running<S: InstanceState>(s: &mut S) {
    if !s.parts().pod_loaded {
        return;
    }
    let (status, reason, message) = match &s.parts().pod {
        None => (false, reasons::POD_NOT_CREATED, "no pod".to_string()),
        Some(pod) if pod_terminating(pod) => (false, reasons::POD_TERMINATING, "pod is terminating".into()),
        Some(pod) if pod_running(pod) => (true, reasons::RUNNING, "all containers running".into()),
        Some(_) => (false, reasons::POD_NOT_RUNNING, "containers are not running yet".into()),
    };
    s.pass_mut().set_condition(types::RUNNING, status, reason, message);
}

/// How the component itself judges the instance (PD member joined, TiKV store Up).
pub type Health = Result<(), (&'static str, String)>;

/// Sets Ready: Pod ready for `minReadySeconds` (and at least `at_least`) and the
/// component healthy. Returns how long until a Pod that is ready but not for long
/// enough will count (a time, so no watch event will tell us).
pub fn set_ready<S: InstanceState>(s: &mut S, health: Health, at_least: Duration) -> Option<Duration> {
    if !s.parts().pod_loaded {
        return None;
    }
    let now = s.pass().ctx.now();
    let floor = i64::try_from(at_least.as_secs()).unwrap_or(i64::MAX);
    let min_ready = s.pass().object.as_ref().map_or(0, |i| i.min_ready_seconds()).max(floor).max(0);
    let mut retry = None;
    let (status, reason, message) = match &s.parts().pod {
        None => (false, reasons::POD_NOT_CREATED, "no pod".to_string()),
        Some(pod) if pod_terminating(pod) => (false, reasons::POD_TERMINATING, "pod is terminating".into()),
        Some(pod) => match (pod_ready_since(pod), health) {
            (None, _) => (false, reasons::POD_NOT_READY, "pod is not ready".into()),
            (Some(_), Err((reason, message))) => (false, reason, message),
            (Some(since), Ok(())) => {
                let ready_for = now.duration_since(since).as_secs().max(0);
                if ready_for >= min_ready {
                    (true, reasons::READY, "ready".into())
                } else {
                    retry = Some(Duration::from_secs((min_ready - ready_for).unsigned_abs()));
                    (false, reasons::POD_NOT_READY, format!("pod ready for {ready_for}s of the {min_ready}s required"))
                }
            }
        },
    };
    s.pass_mut().set_condition(types::READY, status, reason, message);
    retry
}

/// observedGeneration, and the revisions: the update revision from the instance's
/// label, the current one from the Pod's label once Ready.
pub fn set_revisions<S: InstanceState>(s: &mut S, ready: bool) {
    let pod_revision =
        s.parts().pod.as_ref().and_then(|p| p.labels().get(names::LABEL_INSTANCE_REVISION_HASH).cloned());
    let pass = s.pass_mut();
    let generation = pass.generation();
    let update = pass.object.as_ref().and_then(|o| o.labels().get(names::LABEL_INSTANCE_REVISION_HASH).cloned());
    let common = <S::I as Instance>::common_status_mut(&mut pass.status);
    common.observed_generation = generation;
    common.update_revision = update;
    if ready && pod_revision.is_some() {
        common.current_revision = pod_revision;
    }
}

/// The instance's PVCs as the watch cache has them (by component and instance label).
pub fn instance_pvcs<S: InstanceState>(s: &S) -> Vec<Arc<PersistentVolumeClaim>> {
    let pass = s.pass();
    let selector = BTreeMap::from([
        (names::LABEL_COMPONENT.to_string(), S::I::COMPONENT.to_string()),
        (names::LABEL_INSTANCE.to_string(), pass.name.clone()),
    ]);
    pass.ctx.caches.list(&pass.namespace, &selector)
}

/// Deletes the instance's Pod `pod` — the one read, by its UID (not one re-created under
/// its name since) — with `grace` seconds if given. `Err` with the outcome that ends the
/// task: Wait when it is already gone or was replaced, Fail on other errors.
pub async fn delete_pod_by_uid<S: InstanceState>(
    s: &S,
    pod: &Pod,
    grace: Option<u32>,
) -> Result<(), tikv_operator_task::Outcome> {
    use kube::api::{DeleteParams, Preconditions};
    use tikv_operator_task::Outcome;
    let name = pod.name_any();
    let api: kube::Api<Pod> = kube::Api::namespaced(s.pass().ctx.client.clone(), &s.pass().namespace);
    let params = DeleteParams {
        grace_period_seconds: grace,
        preconditions: Some(Preconditions { uid: pod.uid(), resource_version: None }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(()),
        Err(error) if crate::error::is_not_found(&error) => {
            Err(Outcome::wait(format!("pod {name} already gone; waiting for the cache")))
        }
        Err(error) if crate::error::is_conflict(&error) => {
            Err(Outcome::wait(format!("pod {name} was replaced meanwhile; waiting for the cache")))
        }
        Err(error) => Err(Outcome::fail(error)),
    }
}

/// How long past its deletion deadline a terminating Pod counts as stuck (its kubelet
/// gone).
pub const STUCK_AFTER: Duration = Duration::from_secs(60);

/// Whether a Pod deleted with deadline `deadline` is stuck at `now`, or how long until
/// it would be.
pub fn overdue(deadline: Timestamp, now: Timestamp) -> Result<(), Duration> {
    let stuck_at = deadline + STUCK_AFTER;
    match stuck_at.duration_since(now).as_secs() {
        secs if secs <= 0 => Ok(()),
        secs => Err(Duration::from_secs(secs.unsigned_abs())),
    }
}

/// Why the Pod's kubelet cannot finish its deletion, if it cannot: its Node is gone or
/// not Ready (one read of that Node).
async fn node_down<S: InstanceState>(s: &S, pod: &Pod) -> Result<Option<String>, kube::Error> {
    let Some(node) = pod.spec.as_ref().and_then(|spec| spec.node_name.clone()) else {
        return Ok(None);
    };
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(s.pass().ctx.client.clone());
    let Some(live) = api.get_opt(&node).await? else {
        return Ok(Some(format!("its node {node} is gone")));
    };
    let ready = live
        .status
        .and_then(|st| st.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .is_some_and(|c| c.status == "True");
    Ok((!ready).then(|| format!("its node {node} is not Ready")))
}

/// The terminating Pod of an instance whose data may go (`safe` says why, for the
/// Event): a Pod whose kubelet is gone (its node gone or not Ready) never finishes
/// terminating, so it is deleted without grace at once; on a Ready node, once it is
/// [`STUCK_AFTER`] past its deletion deadline (Retry until then). Outcomes: Wait while
/// it goes; Retry; Fail on an API error.
pub async fn finish_termination<S: InstanceState>(s: &mut S, pod: &Pod, safe: &str) -> tikv_operator_task::Outcome {
    use tikv_operator_task::Outcome;
    let name = pod.name_any();
    let why = match node_down(s, pod).await {
        Ok(Some(why)) => why,
        Ok(None) => {
            let deadline = pod.metadata.deletion_timestamp.as_ref().map(|t| t.0);
            let waiting = format!("pod {name} is terminating; waiting for it to go");
            match deadline.map(|at| overdue(at, s.pass().ctx.now())) {
                Some(Ok(())) => format!("it is more than {}s past its deletion deadline", STUCK_AFTER.as_secs()),
                Some(Err(left)) => return Outcome::retry(left, waiting),
                None => return Outcome::wait(waiting),
            }
        }
        Err(error) => return Outcome::fail(error),
    };
    if let Err(outcome) = delete_pod_by_uid(s, pod, Some(0)).await {
        return outcome;
    }
    let note = format!("deleted pod {name} without grace: it cannot finish terminating ({why}), and {safe}");
    s.pass().event("ForceDeletedPod", "Delete", note).await;
    Outcome::wait(format!("deleted pod {name} without grace; waiting for it to go"))
}

#[cfg(test)]
mod stuck_tests {
    use super::*;

    #[test]
    fn a_terminating_pod_is_stuck_a_minute_past_its_deadline() {
        let deadline = crate::testing::t0();
        assert_eq!(overdue(deadline, deadline), Err(STUCK_AFTER));
        assert_eq!(overdue(deadline, deadline + jiff::SignedDuration::from_secs(59)), Err(Duration::from_secs(1)));
        assert_eq!(overdue(deadline, deadline + jiff::SignedDuration::from_secs(60)), Ok(()));
    }
}
