//! `load_group`: the PD group (is it bootstrapped?) and its instances (the initial
//! members, or the members to join).
//!
//! Reads: the PDGroup named by the instance's group label, and the PD instances with
//! that group label, from the watch caches. Writes: nothing. Complete; Wait when the
//! group is missing (its creation re-triggers the instance through the owner).

use tikv_operator_api::names::COMPONENT_PD;
use tikv_operator_api::{PD, PDGroup};
use tikv_operator_task::{Node, Outcome, task};

use crate::common::render::group_selector;
use crate::common::{Instance, Object};
use crate::pd::state::PdState;

pub fn load_group() -> Node<PdState> {
    task("load_group", |s: &mut PdState| {
        Box::pin(async move {
            let Some(pd) = &s.pass.object else {
                return Outcome::complete("no instance");
            };
            let (group_name, cluster) = (pd.group(), pd.cluster_name());
            let caches = &s.pass.ctx.caches;
            let Some(group) = caches.get::<PDGroup>(&s.pass.namespace, &group_name) else {
                return Outcome::wait(format!("PD group {group_name} does not exist"));
            };
            let selector = group_selector(&cluster, COMPONENT_PD, &group_name);
            s.peers = caches.list::<PD>(&s.pass.namespace, &selector).iter().map(|p| PD::clone(p)).collect();
            s.group = Some(PDGroup::clone(&group));
            Outcome::complete(format!("group {group_name}, {} members", s.peers.len()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_pd, sample_pd_group};
    use kube::ResourceExt;
    use tikv_operator_task::{OutcomeKind, Runner};

    fn state(env: &TestEnv, pd: PD) -> PdState {
        let mut state = PdState::new(env.ctx.clone(), "default", &pd.name_any());
        state.pass = state.pass.with_object(pd);
        state
    }

    #[tokio::test]
    async fn the_group_and_its_members_are_loaded() {
        let env = TestEnv::start().await;
        env.create(sample_pd_group("pd", 2)).await;
        env.create(sample_pd("pd-a", "pd")).await;
        env.create(sample_pd("pd-b", "pd")).await;
        env.create(sample_pd("pd-x", "other")).await;
        let mut s = state(&env, sample_pd("pd-a", "pd"));
        let report = env.run(&Runner::new("t", [load_group()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("load_group").unwrap().message(), "group pd, 2 members");
        assert_eq!(s.group.as_ref().map(|g| g.name_any()).as_deref(), Some("pd"));
        let mut peers: Vec<String> = s.peers.iter().map(|p| p.name_any()).collect();
        peers.sort();
        assert_eq!(peers, ["pd-a", "pd-b"], "only the group's instances");
        assert_eq!(env.writes(), 0);
    }

    #[tokio::test]
    async fn a_missing_group_waits() {
        let env = TestEnv::start().await;
        env.create(sample_pd("pd-a", "pd")).await;
        let mut s = state(&env, sample_pd("pd-a", "pd"));
        let report = env.run(&Runner::new("t", [load_group()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(report.entry("load_group").unwrap().message(), "PD group pd does not exist");
        assert!(s.group.is_none() && s.peers.is_empty());
        assert!(!s.bootstrapped());
        assert_eq!(env.writes(), 0);
    }
}
