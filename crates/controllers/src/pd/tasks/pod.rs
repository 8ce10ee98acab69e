//! `pod`: the member's Pod, rendered by [`render::pod`] with the membership flag decided
//! by [`render::membership`] (initial member or join), applied by the generic task (see
//! [`crate::common::tasks::pod`] for writes and outcomes). Before creating the Pod it
//! reads the group's Pods from the cache (the `--initial-cluster` list they started with is the one a
//! late initial member must use). While the membership cannot
//! be decided yet (initial members missing, nobody to join, the list unknown), the Pod
//! is not created and the pass waits for the instances' and Pods' events.

use k8s_openapi::api::core::v1::Pod;
use tikv_operator_api::names::COMPONENT_PD;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::render::{RenderError, group_selector};
use crate::common::tasks as common;
use crate::common::{Instance, Object};
use crate::pd::render::{self, PodInputs};
use crate::pd::state::PdState;

pub fn pod() -> Node<PdState> {
    task("pod", |s: &mut PdState| {
        Box::pin(async move {
            if s.parts.pod.is_none() {
                s.peer_pods = peer_pods(s);
            }
            if s.parts.pod.is_none()
                && let Err(reason) = membership(s)
            {
                s.pass.not_synced(tikv_operator_api::condition::reasons::POD_NOT_CREATED, reason.clone());
                return Outcome::wait(reason);
            }
            common::run_pod(s, render_pod).await
        })
    })
}

/// The group's Pods, from the watch cache.
fn peer_pods(s: &PdState) -> Vec<Pod> {
    let Some(pd) = &s.pass.object else { return Vec::new() };
    let selector = group_selector(&pd.cluster_name(), COMPONENT_PD, &pd.group());
    s.pass.ctx.caches.list::<Pod>(&s.pass.namespace, &selector).iter().map(|p| Pod::clone(p)).collect()
}

fn membership(s: &PdState) -> Result<render::Membership, String> {
    let pd = s.pass.object.as_ref().ok_or("no instance")?;
    render::membership(&render::MembershipInputs {
        pd,
        bootstrapped: s.bootstrapped(),
        peers: &s.peers,
        live_pod: s.parts.pod.as_ref(),
        peer_pods: &s.peer_pods,
        tls: s.pass.tls_enabled(),
    })
}

fn render_pod(s: &PdState) -> Result<k8s_openapi::api::core::v1::Pod, RenderError> {
    let pd = s.pass.object.as_ref().ok_or(RenderError::NoGroup)?;
    let membership = membership(s).map_err(RenderError::InvalidConfig)?;
    render::pod(&PodInputs { pd, tls: s.pass.tls_enabled(), membership: &membership })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_pd, sample_pd_group};
    use k8s_openapi::api::core::v1::Pod;
    use tikv_operator_api::PD;
    use tikv_operator_api::condition::reasons;
    use tikv_operator_api::names::ANNOTATION_INITIAL_CLUSTER_NUM;
    use tikv_operator_task::{OutcomeKind, Runner};

    fn initial(name: &str) -> PD {
        let mut pd = sample_pd(name, "pd");
        pd.metadata.annotations = Some([(ANNOTATION_INITIAL_CLUSTER_NUM.to_string(), "2".to_string())].into());
        pd
    }

    /// The state after `load_group`, `config_map` and `pvcs` of a pass over `pd`.
    fn state(env: &TestEnv, pd: PD, bootstrapped: bool, peers: Vec<PD>, live: Option<Pod>) -> PdState {
        let mut state = PdState::new(env.ctx.clone(), "default", &kube::ResourceExt::name_any(&pd));
        state.pass = state.pass.with_object(pd);
        let mut group = sample_pd_group("pd", 2);
        group.spec.bootstrapped = bootstrapped;
        state.group = Some(group);
        state.peers = peers;
        state.parts.pod_loaded = true;
        state.parts.pod = live;
        state.parts.config_hash = Some("cfg-1".into());
        state.parts.pvcs_ready = true;
        state
    }

    fn membership_flags(pod: &Pod) -> Vec<String> {
        let command = pod.spec.as_ref().unwrap().containers[0].command.clone().unwrap();
        command.into_iter().filter(|a| a.starts_with("--initial-cluster") || a.starts_with("--join")).collect()
    }

    #[tokio::test]
    async fn an_undecided_membership_waits_and_creates_no_pod() {
        let env = TestEnv::start().await;
        // One of the two initial members exists.
        let mut s = state(&env, initial("pd-a"), false, vec![initial("pd-a")], None);
        let report = env.run(&Runner::new("t", [pod()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(report.entry("pod").unwrap().message(), "1 of the 2 initial PD members exist; waiting for the rest");
        assert_eq!(s.pass.unsynced.len(), 1);
        assert_eq!(s.pass.unsynced[0].reason, reasons::POD_NOT_CREATED);
        assert!(s.parts.pod.is_none());
        assert_eq!(env.write_log(), Vec::<String>::new());

        // Bootstrapped, and nobody else to join.
        let mut s = state(&env, sample_pd("pd-c", "pd"), true, vec![sample_pd("pd-c", "pd")], None);
        let report = env.run(&Runner::new("t", [pod()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::POD_NOT_CREATED);
        assert_eq!(env.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn initial_members_get_initial_cluster_then_a_second_pass_writes_nothing() {
        let env = TestEnv::start().await;
        // The owner must exist, or kube-sim's garbage collector takes the Pod.
        let (a, b) = (env.create(initial("pd-a")).await, env.create(initial("pd-b")).await);
        let peers = vec![b, a.clone()];
        let mut s = state(&env, a.clone(), false, peers.clone(), None);
        let runner = Runner::new("t", [pod()]);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("pod").unwrap().message(), "created pod pd-pd-a");
        assert_eq!(env.write_log(), ["create pods/"]);
        let live: Pod = env.get("pd-pd-a").await;
        assert_eq!(
            membership_flags(&live),
            ["--initial-cluster=pd-pd-a=http://pd-pd-a.pd-pd-peer.default.svc:2380,\
              pd-pd-b=http://pd-pd-b.pd-pd-peer.default.svc:2380"]
        );
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);

        // Next pass: the Pod is loaded, nothing changed. Even with the group bootstrapped
        // meanwhile, the flag is carried forward from the live Pod.
        let mut s = state(&env, a, true, peers, Some(live));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("pod").unwrap().message(), "up to date");
        assert_eq!(env.write_log(), ["create pods/"], "no write on the second pass");
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);
    }

    #[tokio::test]
    async fn a_late_initial_member_starts_with_the_list_a_running_pod_started_with() {
        let env = TestEnv::start().await;
        let (a, b) = (env.create(initial("pd-a")).await, env.create(initial("pd-b")).await);
        let mut s = state(&env, a.clone(), false, vec![a, b.clone()], None);
        env.run(&Runner::new("t", [pod()]), "k", &mut s).await;
        let started: Pod = env.get("pd-pd-a").await;

        // After bootstrap, with a's instance gone from the list of peers (only its Pod
        // remembers the list), b still starts with exactly a's list, not --join.
        let mut s = state(&env, b.clone(), true, vec![b], None);
        let report = env.run(&Runner::new("t", [pod()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        let late: Pod = env.get("pd-pd-b").await;
        assert_eq!(membership_flags(&late), membership_flags(&started));
        assert!(membership_flags(&late)[0].starts_with("--initial-cluster="));
    }

    #[tokio::test]
    async fn a_member_added_after_bootstrap_joins() {
        let env = TestEnv::start().await;
        let c = env.create(sample_pd("pd-c", "pd")).await;
        let peers = vec![sample_pd("pd-a", "pd"), sample_pd("pd-b", "pd"), c.clone()];
        let mut s = state(&env, c, true, peers, None);
        let report = env.run(&Runner::new("t", [pod()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(env.write_log(), ["create pods/"]);
        let live: Pod = env.get("pd-pd-c").await;
        assert_eq!(
            membership_flags(&live),
            ["--join=http://pd-pd-a.pd-pd-peer.default.svc:2379,http://pd-pd-b.pd-pd-peer.default.svc:2379"]
        );
    }
}
