//! `conditions`: Running, Ready, Initialized and Synced of the member, and its status
//! (member ID, leader, revisions, observedGeneration).
//!
//! Reads what the pass loaded. Writes only the status being built. Ready needs the Pod
//! ready for `minReadySeconds` and the member present and healthy in PD; Initialized
//! is True once PD lists the member. A Pod that cannot be scheduled or crash-loops
//! says so in Ready and Running (see [`crate::common::pod_status`]); a member PD
//! refuses to let join ("join a duplicated pd") is `MemberJoinRefused`. Outcomes: Complete; Retry when only the
//! readiness age is missing (no event will tell us when it is reached).

use tikv_operator_api::condition::{reasons, types};
use tikv_operator_task::{Node, Outcome, sync_task};

use crate::common::hot_reload::set_config_condition;
use crate::common::instance::{Health, set_ready, set_revisions, set_running};
use crate::common::pod_status::{PodProblem, report_pod_problem};
use crate::pd::state::{MemberView, PdState};

fn health(s: &PdState) -> Health {
    let drift = &s.parts.drift;
    if drift.needs_restart() {
        return Err((reasons::POD_NOT_UP_TO_DATE, format!("the pod needs a restart for {}", drift.restart.join(", "))));
    }
    match &s.member {
        MemberView::Found(member, _) if member.healthy == Some(false) => {
            Err((reasons::INSTANCE_NOT_HEALTHY, "PD reports the member unhealthy".into()))
        }
        MemberView::Found(..) => Ok(()),
        MemberView::Absent(_) => Err((reasons::MEMBER_NOT_JOINED, "not a PD member yet".into())),
        MemberView::NotRead | MemberView::NotRegistered | MemberView::Unavailable => {
            Err((reasons::PD_UNAVAILABLE, "PD has not been read".into()))
        }
    }
}

/// PD's refusal of a member already in its membership (data lost, or an initial
/// member started with `--join`): it will never start by itself.
fn join_refused(problem: &PodProblem) -> Option<(&'static str, String)> {
    match problem {
        PodProblem::CrashLoop { message, .. } if message.contains("join a duplicated pd") => Some((
            reasons::MEMBER_JOIN_REFUSED,
            format!("PD refuses to let this member join: {}", problem.crash_summary()),
        )),
        _ => None,
    }
}

pub fn conditions() -> Node<PdState> {
    sync_task("conditions", |s: &mut PdState| {
        set_running(s);
        set_config_condition(s);
        let retry = set_ready(s, health(s), std::time::Duration::ZERO);
        report_pod_problem(s, join_refused);
        match &s.member {
            MemberView::Found(member, _) => {
                let (id, is_leader) = (member.id.to_string(), member.is_leader);
                s.pass.set_condition(types::INITIALIZED, true, reasons::READY, "the member joined the PD cluster");
                s.pass.status.id.get_or_insert(id);
                s.pass.status.is_leader = is_leader;
                if !member.peer_urls.is_empty() {
                    s.pass.status.peer_urls = member.peer_urls.clone();
                }
            }
            MemberView::Absent(_) => {
                s.pass.set_condition(types::INITIALIZED, false, reasons::MEMBER_NOT_JOINED, "not a PD member yet");
                s.pass.status.is_leader = false;
            }
            MemberView::NotRead | MemberView::NotRegistered | MemberView::Unavailable => {}
        }
        let ready = tikv_operator_api::condition::is_true_at(
            &s.pass.status.common.conditions,
            types::READY,
            s.pass.generation(),
        );
        set_revisions(s, ready);
        s.pass.set_synced("Pod, ConfigMap and PVCs are up to date");
        match retry {
            Some(after) => Outcome::retry(after, "pod ready but not yet for minReadySeconds"),
            None => Outcome::complete(if ready { "ready" } else { "not ready" }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::pd_view::{Observed, ViewFreshness};
    use crate::common::pod_status::fixtures::{crash_looping, unschedulable};
    use crate::pd::state::MemberInfo;
    use crate::testing::{FakePd, offline_context, sample_pd, t0};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStatus, Pod, PodCondition, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tikv_operator_api::condition::find_condition;
    use tikv_operator_task::{OutcomeKind, Runner};

    fn ready_pod(since_secs_ago: i64) -> Pod {
        let since = t0().checked_sub(jiff::SignedDuration::from_secs(since_secs_ago)).unwrap();
        Pod {
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(since)),
                    ..Default::default()
                }]),
                container_statuses: Some(vec![ContainerStatus {
                    name: "pd".into(),
                    state: Some(ContainerState {
                        running: Some(ContainerStateRunning::default()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Pod::default()
        }
    }

    /// A view as the `member` task would have read it (fresh; conditions do not care).
    async fn observed() -> Observed {
        let view = FakePd::bootstrapped().fresh_handle().await.cache.snapshot().view.unwrap();
        Observed { view, freshness: ViewFreshness::Fresh }
    }

    /// The state after `member` found `member` (or found it absent) in a fresh view.
    async fn state(pod: Option<Pod>, member: Option<MemberInfo>) -> PdState {
        let mut state = PdState::new(offline_context(), "default", "pd-abc123");
        let mut pd = sample_pd("pd-abc123", "pd");
        pd.spec.min_ready_seconds = 5;
        state.pass = state.pass.with_object(pd);
        state.parts.pod_loaded = true;
        state.parts.pod = pod;
        state.member = match member {
            Some(member) => MemberView::Found(member, observed().await),
            None => MemberView::Absent(observed().await),
        };
        state
    }

    fn condition(s: &PdState, type_: &str) -> (String, String) {
        let c = find_condition(&s.pass.status.common.conditions, type_).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[tokio::test]
    async fn ready_needs_a_ready_pod_and_a_joined_member() {
        let peer_urls = vec!["https://pd-pd-abc123.pd-pd-peer.default.svc:2381".to_string()];
        let member = MemberInfo { id: 7, healthy: Some(true), is_leader: true, peer_urls: peer_urls.clone() };
        let mut s = state(Some(ready_pod(60)), Some(member)).await;
        let report = Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete);
        assert_eq!(condition(&s, types::READY), ("True".into(), reasons::READY.into()));
        assert_eq!(condition(&s, types::RUNNING).0, "True");
        assert_eq!(condition(&s, types::INITIALIZED).0, "True");
        assert_eq!(s.pass.status.id.as_deref(), Some("7"));
        assert!(s.pass.status.is_leader);
        assert_eq!(s.pass.status.peer_urls, peer_urls, "the peer URL PD stores is recorded");
        assert_eq!(s.pass.status.common.current_revision.as_deref(), None, "the sample pod has no revision label");

        let mut s = state(Some(ready_pod(60)), None).await;
        Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(condition(&s, types::READY), ("False".into(), reasons::MEMBER_NOT_JOINED.into()));
        assert_eq!(condition(&s, types::INITIALIZED).0, "False");
    }

    #[tokio::test]
    async fn a_freshly_ready_pod_retries_when_min_ready_seconds_pass() {
        let member = MemberInfo { id: 7, healthy: Some(true), is_leader: false, peer_urls: vec![] };
        let mut s = state(Some(ready_pod(2)), Some(member)).await;
        let report = Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(report.requeue_after(), Some(std::time::Duration::from_secs(3)));
        assert_eq!(condition(&s, types::READY), ("False".into(), reasons::POD_NOT_READY.into()));
    }

    fn message(s: &PdState, type_: &str) -> String {
        find_condition(&s.pass.status.common.conditions, type_).unwrap().message.clone()
    }

    #[tokio::test]
    async fn a_member_refused_by_pd_is_reported_as_such() {
        let refused =
            "[FATAL] [main.go] [\"join meet error\"] [error=\"missing data or join a duplicated pd pd-pd-abc123\"]";
        let mut s = state(Some(crash_looping("CrashLoopBackOff", 1, Some(refused))), None).await;
        let report = Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete);
        assert_eq!(condition(&s, types::READY), ("False".into(), reasons::MEMBER_JOIN_REFUSED.into()));
        assert_eq!(condition(&s, types::RUNNING), ("False".into(), reasons::MEMBER_JOIN_REFUSED.into()));
        assert_eq!(
            message(&s, types::READY),
            format!(
                "PD refuses to let this member join: container pd crash-loops (4 restarts, exit code 1): {refused}"
            )
        );
    }

    #[tokio::test]
    async fn any_other_crash_loop_is_pod_not_running_with_its_message() {
        let mut s = state(Some(crash_looping("CrashLoopBackOff", 1, Some("couldn't find local name"))), None).await;
        Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(condition(&s, types::READY), ("False".into(), reasons::POD_NOT_RUNNING.into()));
        assert_eq!(
            message(&s, types::READY),
            "container pd crash-loops (4 restarts, exit code 1): couldn't find local name"
        );
    }

    #[tokio::test]
    async fn an_unschedulable_pod_is_reported() {
        let mut s = state(Some(unschedulable()), None).await;
        Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(condition(&s, types::READY), ("False".into(), reasons::UNSCHEDULABLE.into()));
        assert_eq!(message(&s, types::READY), "pod cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu.");
    }

    #[tokio::test]
    async fn no_pod_is_reported() {
        let mut s = state(None, None).await;
        Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(condition(&s, types::READY), ("False".into(), reasons::POD_NOT_CREATED.into()));
        assert_eq!(condition(&s, types::RUNNING), ("False".into(), reasons::POD_NOT_CREATED.into()));
    }
}
