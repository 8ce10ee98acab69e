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
use crate::common::restart::hold_restart;
use crate::pd::state::{MemberView, PdState};
use crate::pd_registry::PdHandle;

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
                hold_restart(&mut s.pass, reason, message.clone());
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

pub type Refused = (&'static str, String);

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
            s.pass.want_fresh_view();
            return Err((reasons::PD_VIEW_NOT_FRESH, format!("the PD view is not fresh ({})", observed.freshness)));
        }
        _ => return Err(blocked("PD does not list this member".into())),
    };
    if let Some(why) = quorum_blocker(&observed.view, member) {
        return Err(blocked(why));
    }
    let others: Vec<&str> = observed.view.members.keys().map(String::as_str).filter(|n| *n != member).collect();
    if let Some(other) = others.iter().find(|n| member_ready_since(s, n).is_none()) {
        return Err(blocked(format!("the pod of member {other} is not Ready")));
    }
    match hand_over_leadership(s, &pd, member, &others, ("Restart", "its restart")).await? {
        Some(message) => Ok(Gate::Moved(message)),
        None => Ok(Gate::Go),
    }
}

/// Since when the Pod of member `name` (its Pod's name) has been Ready, if it is and is
/// not terminating.
pub fn member_ready_since(s: &PdState, name: &str) -> Option<jiff::Timestamp> {
    let pod = s.pass.ctx.caches.get::<Pod>(&s.pass.namespace, name)?;
    if pod_terminating(&pod) { None } else { pod_ready_since(&pod) }
}

/// Moves PD leadership away from `member` before it stops, when it leads: PD's
/// `/members` is read afresh (PD's leader-priority loop may have moved leadership back
/// since the cache's poll) and leadership goes to the member of `others` whose Pod has
/// been Ready longest; `action` and `before` name what it makes way for in the Event.
/// `Ok(Some(message))` once asked (look again shortly), `Ok(None)`
/// when `member` does not lead or has nobody to hand over to. Writes: PD's leader
/// transfer and an Event.
pub async fn hand_over_leadership(
    s: &PdState,
    pd: &PdHandle,
    member: &str,
    others: &[&str],
    (action, before): (&str, &str),
) -> Result<Option<String>, Refused> {
    let blocked = |message: String| (reasons::RESTART_BLOCKED, message);
    if others.is_empty() {
        return Ok(None);
    }
    let view = pd.cache.refresh().await.map_err(|e| (reasons::PD_UNAVAILABLE, format!("PD could not be read: {e}")))?;
    if view.leader.as_deref() != Some(member) {
        return Ok(None);
    }
    let Some(target) = others.iter().min_by_key(|n| member_ready_since(s, n)).map(|n| n.to_string()) else {
        return Err(blocked("no other member can lead".into()));
    };
    if let Err(error) = pd.transfer_leader(&target).await {
        return Err(blocked(format!("PD refused to move its leadership to {target}: {error}")));
    }
    let message = format!("member {member} leads PD: leadership moves to {target} before {before}");
    s.pass.event("TransferredPDLeader", action, message.clone()).await;
    Ok(Some(message))
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
    use crate::common::Instance;
    use crate::common::tasks::{load_cluster, load_object, load_pod};
    use crate::pd::tasks::member;
    use crate::pd_registry::{ClusterKey, PdHandle};
    use crate::testing::{FakePd, TestEnv, sample_cluster, sample_pd};
    use k8s_openapi::api::core::v1::Pod;
    use kube::Api;
    use kube::api::PostParams;
    use serde_json::json;
    use tikv_operator_api::names::ANNOTATION_RESTART_INTENT;
    use tikv_operator_api::{Cluster, PD};
    use tikv_operator_task::{OutcomeKind, Report, Runner, sync_task};

    const MEMBERS: [&str; 3] = ["pd-pd-a", "pd-pd-b", "pd-pd-c"];

    struct Kit {
        env: TestEnv,
        pd: FakePd,
        handle: PdHandle,
    }

    /// Three members, `leader` leading; PD instance `pd-a` whose version changed since
    /// its Pod started; every member's Pod running and Ready.
    async fn kit(leader: &str) -> Kit {
        let env = TestEnv::start().await;
        let mut cluster = env.create(sample_cluster("basic")).await;
        cluster.status.get_or_insert_default().id = Some(FakePd::CLUSTER_ID.to_string());
        let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), "default");
        clusters.replace_status("basic", &PostParams::default(), &cluster).await.unwrap();
        let old = sample_pd("pd-a", "pd");
        let mut new = old.clone();
        new.spec.template.version = "v8.5.1".into();
        env.create(new).await;
        let intent = crate::common::restart::restart_intent(&old, false);
        for (i, member) in MEMBERS.iter().enumerate() {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": member, "namespace": "default",
                    "labels": {"tikv.org/managed-by": "tikv-operator", "tikv.org/cluster": "basic",
                        "tikv.org/component": "pd", "tikv.org/group": "pd",
                        "tikv.org/instance": member.trim_start_matches("pd-")},
                    "annotations": {ANNOTATION_RESTART_INTENT: serde_json::Value::Object(intent.clone()).to_string()}},
                "spec": {"nodeName": "node-1", "containers": [{"name": "pd", "image": "pingcap/pd:v8.5.0"}]},
            }))
            .unwrap();
            let mut pod = env.create(pod).await;
            let since = format!("2026-01-0{}T00:00:00Z", i + 1);
            pod.status = Some(
                serde_json::from_value(json!({"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}],
                    "containerStatuses": [{"name": "pd", "image": "x", "imageID": "", "ready": true,
                        "restartCount": 0, "state": {"running": {}}}]}))
                .unwrap(),
            );
            let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
            pods.replace_status(member, &PostParams::default(), &pod).await.unwrap();
        }
        let pd = MEMBERS
            .iter()
            .enumerate()
            .fold(FakePd::bootstrapped(), |pd, (i, m)| pd.member(m, i as u64 + 1))
            .leader(leader);
        let handle = pd.fresh_handle().await;
        env.ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", handle.clone());
        Kit { env, pd, handle }
    }

    fn drift() -> Node<PdState> {
        sync_task("drift", |s: &mut PdState| {
            let (Some(pod), Some(pd)) = (&s.parts.pod, &s.pass.object) else { return Outcome::complete("") };
            let recorded = pod.annotations().get(ANNOTATION_RESTART_INTENT).cloned();
            let intent = crate::common::restart::restart_intent(pd, false);
            s.parts.drift = crate::common::restart::drift(recorded.as_deref(), &intent, pd.config_strategy());
            Outcome::complete("")
        })
    }

    async fn pass(kit: &Kit) -> (PdState, Report) {
        kit.handle.cache.refresh().await.unwrap();
        kit.env.synced().await;
        kit.env.sim.requests().reset();
        kit.pd.clear_write_log();
        let runner = Runner::new("pd", [load_object(), load_cluster(), load_pod(), member(), drift(), restart()]);
        let mut s = PdState::new(kit.env.ctx.clone(), "default", "pd-a");
        let report = runner.run("default/pd-a", &mut s).await;
        (s, report)
    }

    #[tokio::test]
    async fn a_follower_is_restarted_while_every_other_member_is_healthy() {
        let kit = kit("pd-pd-b").await;
        let (_, report) = pass(&kit).await;
        let entry = report.entry("restart").unwrap();
        assert_eq!(entry.kind(), Some(OutcomeKind::Wait), "{report}");
        assert_eq!(entry.message(), "restarting pod pd-pd-a for version (every other member healthy)");
        assert_eq!(kit.env.write_log(), ["delete pods/pd-pd-a"]);
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn an_unhealthy_other_member_or_its_pod_holds_the_restart() {
        let kit = kit("pd-pd-b").await;
        kit.pd.member_unhealthy("pd-pd-c", true);
        let (s, report) = pass(&kit).await;
        assert_eq!(report.entry("restart").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::RESTART_BLOCKED);
        assert_eq!(
            s.pass.unsynced[0].message,
            "pod pd-pd-a needs a restart for version, held: members pd-pd-c are not healthy"
        );
        assert_eq!((kit.env.writes(), kit.pd.write_log()), (0, Vec::<String>::new()));

        kit.pd.member_unhealthy("pd-pd-c", false);
        let pods: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        let mut c = pods.get("pd-pd-c").await.unwrap();
        c.status.as_mut().unwrap().conditions = None;
        pods.replace_status("pd-pd-c", &PostParams::default(), &c).await.unwrap();
        let (s, _) = pass(&kit).await;
        assert_eq!(
            s.pass.unsynced[0].message,
            "pod pd-pd-a needs a restart for version, held: the pod of member pd-pd-c is not Ready"
        );
        assert_eq!(kit.env.writes(), 0);
    }

    #[tokio::test]
    async fn the_leader_hands_leadership_to_the_member_ready_longest_before_its_restart() {
        let kit = kit("pd-pd-a").await;
        let (_, report) = pass(&kit).await;
        let entry = report.entry("restart").unwrap();
        assert_eq!(entry.kind(), Some(OutcomeKind::Retry), "{report}");
        assert_eq!(entry.message(), "member pd-pd-a leads PD: leadership moves to pd-pd-b before its restart");
        assert_eq!(kit.pd.write_log(), ["transfer_leader(pd-pd-b)"]);
        assert_eq!(kit.env.write_log().iter().filter(|w| w.starts_with("delete")).count(), 0, "not deleted yet");

        // PD's priority loop gives leadership back before the next pass: read right
        // before the deletion, it is seen, and handed over again.
        kit.pd.set_leader("pd-pd-a");
        let (_, report) = pass(&kit).await;
        assert_eq!(kit.pd.write_log(), ["transfer_leader(pd-pd-b)"], "{report}");

        let (_, report) = pass(&kit).await;
        assert_eq!(kit.env.write_log(), ["delete pods/pd-pd-a"], "{report}");
        let _: PD = kit.env.get("pd-a").await;
    }

    #[tokio::test]
    async fn a_member_whose_process_does_not_run_is_restarted_without_the_gates() {
        let kit = kit("pd-pd-a").await;
        kit.pd.member_unhealthy("pd-pd-b", true);
        let pods: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        let mut a = pods.get("pd-pd-a").await.unwrap();
        a.status = Some(serde_json::from_value(json!({"phase": "Pending"})).unwrap());
        pods.replace_status("pd-pd-a", &PostParams::default(), &a).await.unwrap();
        let (_, report) = pass(&kit).await;
        assert_eq!(
            report.entry("restart").unwrap().message(),
            "restarting pod pd-pd-a for version (its process was not running)"
        );
        assert_eq!(kit.env.write_log(), ["delete pods/pd-pd-a"]);
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn quorum_needs_every_other_member_healthy_and_a_majority_left() {
        async fn view(pd: FakePd) -> std::sync::Arc<PdView> {
            pd.fresh_handle().await.cache.snapshot().view.unwrap()
        }
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
