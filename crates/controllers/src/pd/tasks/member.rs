//! `member`: this instance as a PD member, from the cluster's PD cache.
//!
//! Reads: the cache's last good view, the member named like the instance's Pod, and
//! records what it found as the pass's [`MemberView`] with the view's freshness (any
//! view will do for reporting; `restart` checks the view's freshness itself).
//! Writes nothing; while the member has not joined, holds a PD wait so the cache polls
//! fast. Outcomes: Complete; Wait while PD is not registered or never answered (the
//! Cluster controller and the cache's events re-trigger us), or the member is absent
//! or unhealthy.

use tikv_operator_task::{Node, Outcome, sync_task};

use crate::common::Instance;
use crate::common::pd_view::{Observed, ViewFreshness};
use crate::pd::state::{MemberInfo, MemberView, PdState};

pub fn member() -> Node<PdState> {
    sync_task("member", |s: &mut PdState| {
        let key = s.pass.key();
        let Some(pd) = s.pass.pd() else {
            s.member = MemberView::NotRegistered;
            return Outcome::wait("the cluster's PD is not registered yet");
        };
        let Some(name) = s.pass.object.as_ref().map(Instance::pod_name) else {
            return Outcome::complete("no instance");
        };
        let snapshot = pd.cache.snapshot();
        let (Some(view), Some(freshness)) = (snapshot.view, ViewFreshness::of(snapshot.freshness.clone())) else {
            s.member = MemberView::Unavailable;
            s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "PD to answer");
            return Outcome::wait(format!("PD has not answered yet ({})", snapshot.freshness));
        };
        let found = view.member(&name).map(|m| MemberInfo {
            id: m.member.member_id,
            healthy: m.healthy,
            is_leader: view.leader.as_deref() == Some(name.as_str()),
            peer_urls: m.member.peer_urls.clone(),
        });
        let observed = Observed { view, freshness };
        s.member = match found {
            Some(member) => MemberView::Found(member, observed),
            None => MemberView::Absent(observed),
        };
        match s.member.member() {
            Some(member) if member.healthy != Some(false) => {
                s.pass.ctx.pd_waits.done(&key);
                Outcome::complete(format!("member {} {}", member.id, if member.is_leader { "(leader)" } else { "" }))
            }
            Some(member) => {
                s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "member to be healthy");
                Outcome::wait(format!("member {} is not healthy; waiting for PD to report it healthy", member.id))
            }
            None => {
                s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "member to join");
                Outcome::wait(format!("{name} is not a PD member yet; waiting for it to join"))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::{ClusterKey, PdHandle};
    use crate::testing::{FakePd, offline_context, sample_pd};
    use std::time::Duration;
    use tikv_operator_pd::StaleReason;
    use tikv_operator_task::{OutcomeKind, Report, Runner};

    const POD: &str = "pd-pd-abc123";

    fn state(handle: Option<PdHandle>) -> PdState {
        let ctx = offline_context();
        if let Some(handle) = handle {
            ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", handle);
        }
        let mut state = PdState::new(ctx, "default", "pd-abc123");
        state.pass = state.pass.with_object(sample_pd("pd-abc123", "pd"));
        state
    }

    async fn run(state: &mut PdState) -> Report {
        Runner::new("test", [member()]).run("k", state).await
    }

    fn waiting(state: &PdState) -> bool {
        state.pass.ctx.pd_waits.is_waiting("default/pd-abc123")
    }

    #[tokio::test]
    async fn the_member_is_found_by_pod_name_in_a_fresh_view() {
        let pd = FakePd::bootstrapped().member(POD, 7).member("pd-pd-other", 9).leader(POD);
        let mut state = state(Some(pd.fresh_handle().await));
        let report = run(&mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("member").unwrap().message(), "member 7 (leader)");
        let MemberView::Found(member, observed) = &state.member else { panic!("{:?}", state.member) };
        assert_eq!(*member, MemberInfo { id: 7, healthy: Some(true), is_leader: true, peer_urls: vec![] });
        assert!(observed.is_fresh());
        assert_eq!(observed.view.members.len(), 2, "the pass keeps the view it read");
        assert!(!waiting(&state), "a joined member needs no fast polls");
    }

    #[tokio::test]
    async fn a_member_absent_from_a_fresh_view_waits_to_join() {
        let pd = FakePd::bootstrapped().member("pd-pd-other", 9).leader("pd-pd-other");
        let mut state = state(Some(pd.fresh_handle().await));
        let report = run(&mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert!(matches!(&state.member, MemberView::Absent(observed) if observed.is_fresh()), "{:?}", state.member);
        assert!(waiting(&state), "waiting on PD makes the cache poll fast");
    }

    #[tokio::test]
    async fn a_failing_poll_leaves_a_stale_view_still_good_for_reporting() {
        let pd = FakePd::bootstrapped().member(POD, 7);
        let handle = pd.fresh_handle().await;
        pd.unreachable(true);
        assert!(handle.cache.refresh().await.is_err());
        let mut state = state(Some(handle));
        assert_eq!(run(&mut state).await.outcome(), OutcomeKind::Complete);
        let MemberView::Found(member, observed) = &state.member else { panic!("{:?}", state.member) };
        assert_eq!(member.id, 7);
        assert_eq!(observed.freshness, ViewFreshness::Stale(StaleReason::PollFailing));
    }

    #[tokio::test(start_paused = true)]
    async fn an_old_view_without_the_member_is_absent_but_not_fresh() {
        let pd = FakePd::bootstrapped().member("pd-pd-other", 9);
        let handle = pd.fresh_handle().await;
        // Past the freshness bound (5 s), before the next slow poll (30 s).
        tokio::time::advance(Duration::from_secs(10)).await;
        let mut state = state(Some(handle));
        assert_eq!(run(&mut state).await.outcome(), OutcomeKind::Wait);
        let MemberView::Absent(observed) = &state.member else { panic!("{:?}", state.member) };
        assert!(matches!(observed.freshness, ViewFreshness::Stale(StaleReason::TooOld { .. })), "{observed:?}");
    }

    #[tokio::test]
    async fn pd_that_never_answered_is_unavailable_not_absent() {
        let pd = FakePd::bootstrapped().member(POD, 7);
        pd.unreachable(true);
        let handle = pd.handle();
        assert!(handle.cache.refresh().await.is_err());
        let mut state = state(Some(handle));
        let report = run(&mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(state.member, MemberView::Unavailable);
        assert!(waiting(&state), "polls fast until PD answers");
    }

    #[tokio::test]
    async fn an_unregistered_pd_waits_and_reads_nothing() {
        let mut state = state(None);
        let report = run(&mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(report.entry("member").unwrap().message(), "the cluster's PD is not registered yet");
        assert_eq!(state.member, MemberView::NotRegistered);
        assert!(!waiting(&state), "the Cluster controller's registration re-triggers us, not the cache");
    }
}
