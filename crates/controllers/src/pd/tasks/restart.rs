//! `restart`: recreates the member's Pod when only a restart applies its spec, without
//! ever costing PD its quorum or its leader mid-request.
//!
//! Destructive, so checked here (DESIGN.md section 5 items 1, 2 and 4): the right PD
//! and a fresh view; every other member healthy in PD with its Pod Ready and not
//! terminating, so the quorum survives this member's absence. The PD leader is not
//! restarted while it leads: leadership is first transferred to the other healthy
//! member whose Pod has been Ready longest, and `/members` is read again right before
//! the deletion (PD's leader-priority loop may have moved it back). A Pod whose process
//! does not run is deleted without these. Refusals are in Synced (`RestartBlocked`)
//! and retried.
//!
//! Writes: PD's leader transfer, the Pod's deletion (UID precondition), Events.
//! Outcomes: Complete; Wait while the Pod terminates; Retry while a gate refuses or
//! leadership moves; Fail on unexpected errors.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use tikv_operator_api::condition::reasons;
use tikv_operator_pd::PdView;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::guards::destructive_allowed;
use crate::common::instance::{delete_pod_by_uid, pod_ready_since, pod_running, pod_terminating};
use crate::pd::state::{MemberView, PdState};

/// How often a blocked restart, or a leadership transfer, is looked at again.
pub const RESTART_RECHECK: Duration = Duration::from_secs(2);

pub fn restart() -> Node<PdState> {
    task("restart", |s: &mut PdState| Box::pin(run(s)))
}

async fn run(s: &mut PdState) -> Outcome {
    let Some(pod) = s.parts.pod.clone() else {
        return Outcome::complete("no pod");
    };
    let name = pod.name_any();
    if pod_terminating(&pod) {
        return Outcome::wait(format!("pod {name} is terminating; waiting for it to go"));
    }
    let drift = s.parts.drift.clone();
    if !drift.needs_restart() {
        return Outcome::complete("not needed");
    }
    let what = drift.restart.join(", ");
    let running = pod_running(&pod);
    if running {
        match gates(s, &name).await {
            Ok(Gate::Go) => {}
            Ok(Gate::Moved(message)) => return Outcome::retry(RESTART_RECHECK, message),
            Err((reason, message)) => {
                let message = format!("pod {name} needs a restart for {what}, held: {message}");
                s.pass.unsynced.retain(|f| f.reason != reasons::POD_NOT_UP_TO_DATE);
                s.pass.not_synced(reason, message.clone());
                return Outcome::retry(RESTART_RECHECK, message);
            }
        }
    }
    if let Err(outcome) = delete_pod_by_uid(s, &pod, None).await {
        return outcome;
    }
    let how = if running { "every other member healthy" } else { "its process was not running" };
    let message = format!("restarting pod {name} for {what} ({how})");
    s.pass.event("RestartingPod", "Restart", message.clone()).await;
    Outcome::wait(message)
}

enum Gate {
    /// Restart now.
    Go,
    /// Leadership is moving away first.
    Moved(String),
}

type Refused = (&'static str, String);

async fn gates(s: &PdState, member: &str) -> Result<Gate, Refused> {
    let blocked = |message: String| (reasons::RESTART_BLOCKED, message);
    let cluster = s.pass.cluster.as_ref().ok_or_else(|| blocked("the Cluster is not loaded".into()))?;
    let pd = s.pass.pd();
    destructive_allowed(cluster, pd.as_ref()).map_err(|m| (reasons::CLUSTER_ID_MISMATCH, m))?;
    let Some(pd) = pd else {
        return Err((reasons::PD_UNAVAILABLE, "the cluster's PD is not registered".into()));
    };
    let observed = match &s.member {
        MemberView::Found(_, observed) if observed.is_fresh() => observed.clone(),
        MemberView::Found(_, observed) => {
            return Err((reasons::PD_VIEW_NOT_FRESH, format!("the PD view is not fresh ({})", observed.freshness)));
        }
        _ => return Err(blocked("PD does not list this member".into())),
    };
    if let Some(why) = quorum_blocker(&observed.view, member) {
        return Err(blocked(why));
    }
    let ready_since = |name: &str| {
        let pod = s.pass.ctx.caches.get::<Pod>(&s.pass.namespace, name)?;
        if pod_terminating(&pod) { None } else { pod_ready_since(&pod) }
    };
    let others: Vec<&str> = observed.view.members.keys().map(String::as_str).filter(|n| *n != member).collect();
    if let Some(other) = others.iter().find(|n| ready_since(n).is_none()) {
        return Err(blocked(format!("the pod of member {other} is not Ready")));
    }
    if others.is_empty() {
        return Ok(Gate::Go);
    }
    // Re-read right before the deletion: the leader may have moved back.
    let view = pd.cache.refresh().await.map_err(|e| (reasons::PD_UNAVAILABLE, format!("PD could not be read: {e}")))?;
    if view.leader.as_deref() != Some(member) {
        return Ok(Gate::Go);
    }
    let Some(target) = others.iter().min_by_key(|n| ready_since(n)).map(|n| n.to_string()) else {
        return Err(blocked("no other member can lead".into()));
    };
    if let Err(error) = pd.transfer_leader(&target).await {
        return Err(blocked(format!("PD refused to move its leadership to {target}: {error}")));
    }
    let message = format!("member {member} leads PD: leadership moves to {target} before its restart");
    s.pass.event("TransferredPDLeader", "Restart", message.clone()).await;
    Ok(Gate::Moved(message))
}

/// Why stopping `member` now could cost PD its quorum, if it could: every other member
/// must be healthy, and those must be a majority of all. A single member is restarted
/// anyway (there is no other way, and the user chose no redundancy).
pub fn quorum_blocker(view: &PdView, member: &str) -> Option<String> {
    let total = view.members.len();
    if total <= 1 {
        return None;
    }
    let unhealthy: Vec<&str> = view
        .members
        .iter()
        .filter(|(name, m)| name.as_str() != member && m.healthy != Some(true))
        .map(|(name, _)| name.as_str())
        .collect();
    if !unhealthy.is_empty() {
        return Some(format!("members {} are not healthy", unhealthy.join(", ")));
    }
    let others = total.saturating_sub(1);
    (others < total / 2 + 1)
        .then(|| format!("{others} other members of {total} would not keep PD's quorum of {}", total / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePd;

    async fn view(pd: FakePd) -> std::sync::Arc<PdView> {
        pd.fresh_handle().await.cache.snapshot().view.unwrap()
    }

    #[tokio::test]
    async fn quorum_needs_every_other_member_healthy_and_a_majority_left() {
        let three = FakePd::bootstrapped().member("pd-a", 1).member("pd-b", 2).member("pd-c", 3);
        assert_eq!(quorum_blocker(&*view(three).await, "pd-a"), None);
        let one = FakePd::bootstrapped().member("pd-a", 1);
        assert_eq!(quorum_blocker(&*view(one).await, "pd-a"), None, "a single member: no other way");
        let two = FakePd::bootstrapped().member("pd-a", 1).member("pd-b", 2);
        assert_eq!(
            quorum_blocker(&*view(two).await, "pd-a").as_deref(),
            Some("1 other members of 2 would not keep PD's quorum of 2"),
            "two members: one alone is no majority"
        );
    }
}
