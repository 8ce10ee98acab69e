//! `pod`: the member's Pod, rendered by [`render::pod`] with the membership flag decided
//! by [`render::membership`] (initial member or join), applied by the generic task (see
//! [`crate::common::tasks::pod`] for writes and outcomes). Before creating the Pod it
//! reads the group's Pods from the cache (the `--initial-cluster` list they started with is the one a
//! late initial member must use). While the membership cannot
//! be decided yet (initial members missing, nobody to join, the list unknown), the Pod
//! is not created and the pass waits for the instances' and Pods' events. A member that
//! joins (`--join`, not yet listed by PD) waits while PD reports any member unhealthy,
//! on a fresh view (`MemberJoinHeld`), as PD's etcd would refuse it then;
//! a member PD knew (its ID recorded) restarts with its data without waiting.

use k8s_openapi::api::core::v1::Pod;
use tikv_operator_api::names::COMPONENT_PD;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::render::{RenderError, group_selector};
use crate::common::tasks as common;
use crate::common::{Instance, Object};
use crate::pd::render::{self, PodInputs};
use crate::pd::state::{MemberView, PdState};
use tikv_operator_api::condition::reasons;

/// How often a held join looks at PD's members again.
const JOIN_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

pub fn pod() -> Node<PdState> {
    task("pod", |s: &mut PdState| {
        Box::pin(async move {
            if s.parts.pod.is_none() {
                s.peer_pods = peer_pods(s);
            }
            if s.parts.pod.is_none() {
                let decided = match membership(s) {
                    Ok(decided) => decided,
                    Err(reason) => {
                        s.pass.not_synced(reasons::POD_NOT_CREATED, reason.clone());
                        return Outcome::wait(reason);
                    }
                };
                if let Some(why) = join_held(s, &decided) {
                    s.pass.not_synced(reasons::MEMBER_JOIN_HELD, why.clone());
                    if let Some(pd) = s.pass.pd() {
                        s.pass.ctx.pd_waits.waiting(&s.pass.key(), &pd.cache, "the members to be healthy");
                    }
                    return Outcome::retry(JOIN_RECHECK, why);
                }
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
        rejoin: !s.pass.deleting() && s.removal_asked().is_some(),
    })
}

/// Why a member that is to join PD must not start now, if so: PD's etcd adds a member
/// only while every member runs, and a join that changed the membership while one is
/// down would shrink the failures the cluster tolerates. Read from a fresh view.
fn join_held(s: &PdState, membership: &render::Membership) -> Option<String> {
    if !matches!(membership, render::Membership::Join(_)) {
        return None;
    }
    let observed = match &s.member {
        // Already a member (its Pod was deleted, say): it restarts, it does not join.
        MemberView::Found(..) => return None,
        MemberView::Absent(observed) if observed.is_fresh() => observed,
        // PD not read (every PD Pod gone, as on a resume, with a new PD client after an
        // operator restart or a TLS switch): a member PD knew restarts with its data, and
        // PD ignores `--join` then. Holding it for a view only its Pod can bring back
        // would never end.
        _ if s.recorded_id().is_some() && s.removal_asked().is_none() => return None,
        _ => {
            s.pass.want_fresh_view();
            return Some("waiting for a fresh view of PD's members before joining".into());
        }
    };
    let unhealthy: Vec<&str> =
        observed.view.members.iter().filter(|(_, m)| m.healthy != Some(true)).map(|(name, _)| name.as_str()).collect();
    (!unhealthy.is_empty())
        .then(|| format!("a new member joins only while every member is healthy: {} not healthy", unhealthy.join(", ")))
}

fn render_pod(s: &PdState) -> Result<k8s_openapi::api::core::v1::Pod, RenderError> {
    let pd = s.pass.object.as_ref().ok_or(RenderError::NoGroup)?;
    let membership = membership(s).map_err(RenderError::InvalidConfig)?;
    let peer = s.peer_urls().ok_or(RenderError::NoGroup)?;
    render::pod(&PodInputs { pd, tls: s.pass.tls_enabled(), membership: &membership, peer: &peer })
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

    /// PD's members as the `member` task read them: fresh, without `pd-pd-c`.
    async fn members_without_c(pd: &crate::testing::FakePd) -> MemberView {
        use crate::common::pd_view::{Observed, ViewFreshness};
        let view = pd.fresh_handle().await.cache.snapshot().view.unwrap();
        MemberView::Absent(Observed { view, freshness: ViewFreshness::Fresh })
    }

    #[tokio::test]
    async fn a_new_member_waits_to_join_while_another_member_is_unhealthy() {
        let env = TestEnv::start().await;
        let c = env.create(sample_pd("pd-c", "pd")).await;
        let peers = vec![sample_pd("pd-a", "pd"), sample_pd("pd-b", "pd"), c.clone()];
        let pd = crate::testing::FakePd::bootstrapped().member("pd-pd-a", 1).member("pd-pd-b", 2);
        pd.member_unhealthy("pd-pd-b", true);
        let mut s = state(&env, c.clone(), true, peers.clone(), None);
        s.member = members_without_c(&pd).await;
        let report = env.run(&Runner::new("t", [pod()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry, "{report}");
        let why = "a new member joins only while every member is healthy: pd-pd-b not healthy";
        assert_eq!((s.pass.unsynced[0].reason, s.pass.unsynced[0].message.as_str()), (reasons::MEMBER_JOIN_HELD, why));
        assert_eq!(env.write_log(), Vec::<String>::new());

        // No fresh view of the members: it waits too.
        let mut s = state(&env, c, true, peers, None);
        let report = env.run(&Runner::new("t", [pod()]), "k", &mut s).await;
        assert_eq!(report.entry("pod").unwrap().message(), "waiting for a fresh view of PD's members before joining");
        assert_eq!(env.write_log(), Vec::<String>::new());
    }

    /// A member PD knew (its ID recorded) whose Pod went while PD is not read — every PD
    /// Pod gone on a suspension, the PD client new after a TLS switch — comes back at
    /// once: its data holds its membership, and PD could not answer without it.
    #[tokio::test]
    async fn a_known_member_restarts_without_a_view_of_pd() {
        let env = TestEnv::start().await;
        let mut c = sample_pd("pd-c", "pd");
        c.status.get_or_insert_default().id = Some("3".into());
        let c = env.create(c).await;
        let peers = vec![sample_pd("pd-a", "pd"), sample_pd("pd-b", "pd"), c.clone()];
        let mut c_with_id = c.clone();
        c_with_id.status.get_or_insert_default().id = Some("3".into());
        let mut s = state(&env, c_with_id, true, peers, None);
        let report = env.run(&Runner::new("t", [pod()]), "k", &mut s).await;
        assert!(report.entry("pod").unwrap().message().starts_with("created pod"), "{report}");
        let created: Pod = env.get("pd-pd-c").await;
        assert!(membership_flags(&created)[0].starts_with("--join="), "{:?}", membership_flags(&created));
    }

    #[tokio::test]
    async fn a_member_added_after_bootstrap_joins() {
        let env = TestEnv::start().await;
        let c = env.create(sample_pd("pd-c", "pd")).await;
        let peers = vec![sample_pd("pd-a", "pd"), sample_pd("pd-b", "pd"), c.clone()];
        let mut s = state(&env, c, true, peers, None);
        let pd = crate::testing::FakePd::bootstrapped().member("pd-pd-a", 1).member("pd-pd-b", 2);
        s.member = members_without_c(&pd).await;
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
