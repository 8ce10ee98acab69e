//! `member`: this instance as a PD member, from the cluster's PD cache.
//!
//! Reads: the cache's last good view (a snapshot: this is for reporting, never for a
//! destructive decision), the member named like the instance's Pod. Writes nothing;
//! while the member has not joined, holds a PD wait so the cache polls fast.
//! Outcomes: Complete; Wait while PD is not registered or never answered (the Cluster
//! controller and the cache's events re-trigger us).

use tikv_operator_task::{Node, Outcome, sync_task};

use crate::common::Instance;
use crate::pd::state::{MemberInfo, PdRead, PdState};

pub fn member() -> Node<PdState> {
    sync_task("member", |s: &mut PdState| {
        let key = s.pass.key();
        let Some(pd) = s.pass.pd() else {
            s.pd_read = PdRead::NotRegistered;
            return Outcome::wait("the cluster's PD is not registered yet");
        };
        let Some(name) = s.pass.object.as_ref().map(Instance::pod_name) else {
            return Outcome::complete("no instance");
        };
        let snapshot = pd.cache.snapshot();
        let Some(view) = snapshot.view else {
            s.pd_read = PdRead::Unavailable;
            s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "PD to answer");
            return Outcome::wait(format!("PD has not answered yet ({})", snapshot.freshness));
        };
        s.pd_read = PdRead::Read;
        s.member = view.member(&name).map(|m| MemberInfo {
            id: m.member.member_id,
            healthy: m.healthy,
            is_leader: view.leader.as_deref() == Some(name.as_str()),
        });
        match &s.member {
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

/// Releases the instance's PD wait when it is gone.
pub fn forget_waits() -> Node<PdState> {
    sync_task("forget_waits", |s: &mut PdState| {
        let key = s.pass.key();
        s.pass.ctx.pd_waits.done(&key);
        Outcome::complete("")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, offline_context, sample_pd};
    use tikv_operator_task::{OutcomeKind, Runner};

    #[tokio::test]
    async fn the_member_is_found_by_pod_name_and_waits_while_absent() {
        let ctx = offline_context();
        let mut state = PdState::new(ctx.clone(), "default", "pd-abc123");
        state.pass = state.pass.with_object(sample_pd("pd-abc123", "pd"));
        let runner = Runner::new("test", [member()]);
        assert_eq!(runner.run("k", &mut state).await.outcome(), OutcomeKind::Wait);
        assert_eq!(state.pd_read, PdRead::NotRegistered);

        let key = ClusterKey::new("default", "basic");
        ctx.pd.insert(&key, "http://pd", FakePd::bootstrapped().member("pd-pd-other", 9).fresh_handle().await);
        assert_eq!(runner.run("k", &mut state).await.outcome(), OutcomeKind::Wait);
        assert!(ctx.pd_waits.is_waiting("default/pd-abc123"), "waiting on PD makes the cache poll fast");

        ctx.pd.insert(
            &key,
            "http://pd",
            FakePd::bootstrapped().member("pd-pd-abc123", 7).leader("pd-pd-abc123").fresh_handle().await,
        );
        assert_eq!(runner.run("k", &mut state).await.outcome(), OutcomeKind::Complete);
        assert_eq!(state.member, Some(MemberInfo { id: 7, healthy: Some(true), is_leader: true }));
        assert!(!ctx.pd_waits.is_waiting("default/pd-abc123"));
    }
}
