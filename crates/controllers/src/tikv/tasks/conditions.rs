//! `conditions`: Running, Ready and Synced of the store, and its status (store ID and
//! state are set by `store`; revisions and observedGeneration here).
//!
//! Reads what the pass loaded; writes only the status being built. Ready needs the
//! store Up with a fresh heartbeat and the Pod ready for `minReadySeconds`. A Pod that
//! cannot be scheduled or crash-loops says so in Ready and Running (see
//! [`crate::common::pod_status`]). Outcomes:
//! Complete; Retry when only the readiness age is missing.

use tikv_operator_api::condition::{is_true_at, reasons, types};
use tikv_operator_task::{Node, Outcome, sync_task};

use crate::common::hot_reload::set_config_condition;
use crate::common::instance::{Health, set_ready, set_revisions, set_running};
use crate::common::pod_status::report_pod_problem;
use crate::tikv::state::{StoreView, TikvState};

/// From whatever view the pass read: reporting may use a stale one. A store whose Pod
/// waits for a restart, or whose restart is under way, is not Ready: the group then
/// restarts no other until it serves again.
fn health(s: &TikvState) -> Health {
    if let Some(why) = &s.restarting {
        return Err((reasons::RESTARTING, why.clone()));
    }
    if s.restart_record().is_some() {
        return Err((reasons::RESTARTING, "a restart is under way".into()));
    }
    let drift = &s.parts.drift;
    if drift.needs_restart() {
        return Err((reasons::POD_NOT_UP_TO_DATE, format!("the pod needs a restart for {}", drift.restart.join(", "))));
    }
    match &s.store {
        StoreView::Found(store, _) if store.up => Ok(()),
        StoreView::Found(store, _) => {
            Err((reasons::STORE_NOT_UP, format!("store {} is {}", store.id, store.node_state.name())))
        }
        StoreView::Absent(_) => Err((reasons::STORE_NOT_EXIST, "PD has no store for this instance yet".into())),
        StoreView::Unavailable => Err((reasons::PD_UNAVAILABLE, "PD has not answered yet".into())),
        StoreView::NotRegistered => {
            Err((reasons::PD_UNAVAILABLE, "the cluster's PD is not registered with the operator yet".into()))
        }
        StoreView::NotRead => Err((reasons::PD_UNAVAILABLE, "PD has not been read".into())),
    }
}

pub fn conditions() -> Node<TikvState> {
    sync_task("conditions", |s: &mut TikvState| {
        set_running(s);
        set_config_condition(s);
        let retry = set_ready(s, health(s), s.pass.ctx.timing().tikv_ready_after);
        report_pod_problem(s, |_| None);
        let ready = is_true_at(&s.pass.status.common.conditions, types::READY, s.pass.generation());
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
    use crate::common::pod_status::fixtures::{crash_looping, unschedulable};
    use crate::testing::FakePd;
    use crate::testing::{offline_context, sample_tikv};
    use crate::tikv::state::{Observed, StoreInfo, ViewFreshness};
    use tikv_operator_api::condition::find_condition;
    use tikv_operator_pd::NodeState;
    use tikv_operator_task::Runner;

    /// A view as the `store` task would have read it (fresh; conditions do not care).
    async fn observed() -> Observed {
        let view = FakePd::bootstrapped().fresh_handle().await.cache.snapshot().view.unwrap();
        Observed { view, freshness: ViewFreshness::Fresh }
    }

    async fn found(store: StoreInfo) -> StoreView {
        StoreView::Found(store, observed().await)
    }

    async fn absent() -> StoreView {
        StoreView::Absent(observed().await)
    }

    fn state(store: StoreView, paused: bool) -> TikvState {
        let mut state = TikvState::new(offline_context(), "default", "tikv-abc123");
        let mut cluster = crate::testing::sample_cluster("basic");
        cluster.spec.paused = paused;
        state.pass = state.pass.with_object(sample_tikv("tikv-abc123", "tikv")).with_cluster(cluster);
        state.parts.pod_loaded = true;
        state.store = store;
        state
    }

    fn reason(s: &TikvState, type_: &str) -> String {
        find_condition(&s.pass.status.common.conditions, type_).unwrap().reason.clone()
    }

    #[tokio::test]
    async fn a_store_that_is_not_up_is_not_ready() {
        let mut s = state(found(StoreInfo { id: 1, node_state: NodeState::Preparing, up: false }).await, false);
        s.parts.pod = Some(Default::default());
        Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(reason(&s, types::READY), reasons::POD_NOT_READY, "the pod is checked first");
        assert_eq!(reason(&s, types::SYNCED), reasons::SYNCED);
    }

    #[tokio::test]
    async fn a_crash_looping_or_unschedulable_pod_says_why() {
        let mut s = state(absent().await, false);
        s.parts.pod = Some(crash_looping("CrashLoopBackOff", 1, Some("[FATAL] invalid configuration")));
        Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(reason(&s, types::READY), reasons::POD_NOT_RUNNING);
        assert_eq!(reason(&s, types::RUNNING), reasons::POD_NOT_RUNNING);
        let ready = find_condition(&s.pass.status.common.conditions, types::READY).unwrap();
        assert_eq!(ready.message, "container pd crash-loops (4 restarts, exit code 1): [FATAL] invalid configuration");

        let mut s = state(absent().await, false);
        s.parts.pod = Some(unschedulable());
        Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(reason(&s, types::READY), reasons::UNSCHEDULABLE);
        assert_eq!(reason(&s, types::RUNNING), reasons::UNSCHEDULABLE);
    }

    #[tokio::test]
    async fn paused_is_reported_in_synced() {
        let mut s = state(absent().await, true);
        Runner::new("t", [conditions()]).run("k", &mut s).await;
        assert_eq!(reason(&s, types::SYNCED), reasons::PAUSED);
        assert_eq!(reason(&s, types::READY), reasons::POD_NOT_CREATED);
    }

    fn ready(s: &TikvState) -> (String, String, String) {
        let c = find_condition(&s.pass.status.common.conditions, types::READY).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    /// Store 5 Up, its Pod Ready for an hour: Ready but for what a restart says.
    async fn serving(change: impl FnOnce(&mut TikvState)) -> (String, String, String) {
        let mut s = state(found(StoreInfo { id: 5, node_state: NodeState::Serving, up: true }).await, false);
        let an_hour_ago = crate::testing::t0() - jiff::SignedDuration::from_hours(1);
        s.parts.pod = Some(k8s_openapi::api::core::v1::Pod {
            status: Some(crate::tikv::tasks::testkit::running(an_hour_ago, true)),
            ..Default::default()
        });
        change(&mut s);
        Runner::new("t", [conditions()]).run("k", &mut s).await;
        ready(&s)
    }

    #[tokio::test]
    async fn a_pod_that_needs_a_restart_or_restarts_is_not_ready() {
        use crate::common::restart::PodDrift;
        use tikv_operator_api::names::ANNOTATION_RESTART;
        assert_eq!(serving(|_| {}).await, ("True".into(), reasons::READY.into(), "ready".into()));

        let outdated = |s: &mut TikvState| {
            s.parts.drift = PodDrift { restart: vec!["version".into(), "config".into()], hot_reload: false };
        };
        assert_eq!(
            serving(outdated).await,
            ("False".into(), reasons::POD_NOT_UP_TO_DATE.into(), "the pod needs a restart for version, config".into())
        );
        let hot = |s: &mut TikvState| s.parts.drift = PodDrift { restart: Vec::new(), hot_reload: true };
        assert_eq!(serving(hot).await.1, reasons::READY, "a config applied online restarts nothing");

        let recorded = |s: &mut TikvState| {
            outdated(s);
            let tikv = s.pass.object.as_mut().unwrap();
            tikv.metadata.annotations = Some([(ANNOTATION_RESTART.to_string(), "3f1c/4".to_string())].into());
        };
        assert_eq!(
            serving(recorded).await,
            ("False".into(), reasons::RESTARTING.into(), "a restart is under way".into()),
            "the record comes first"
        );
        let followed = |s: &mut TikvState| {
            recorded(s);
            s.restarting = Some("store 5 restarted: 1 of 4 leaders back (done at 2)".into());
        };
        assert_eq!(
            serving(followed).await,
            ("False".into(), reasons::RESTARTING.into(), "store 5 restarted: 1 of 4 leaders back (done at 2)".into()),
            "what the restart task says"
        );
    }

    #[tokio::test]
    async fn health_follows_the_store() {
        let s = state(found(StoreInfo { id: 1, node_state: NodeState::Serving, up: true }).await, false);
        assert!(health(&s).is_ok());
        let s = state(found(StoreInfo { id: 1, node_state: NodeState::Removing, up: false }).await, false);
        assert_eq!(health(&s).unwrap_err(), (reasons::STORE_NOT_UP, "store 1 is Removing".to_string()));
        let s = state(absent().await, false);
        assert_eq!(health(&s).unwrap_err().0, reasons::STORE_NOT_EXIST);
        for view in [StoreView::Unavailable, StoreView::NotRegistered, StoreView::NotRead] {
            assert_eq!(health(&state(view, false)).unwrap_err().0, reasons::PD_UNAVAILABLE);
        }
    }
}
