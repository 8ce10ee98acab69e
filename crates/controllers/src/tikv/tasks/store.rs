//! `store`: this instance's store in PD.
//!
//! The store ID is discovered once, by advertise address, and recorded in
//! `status.id`; from then on the store is read by that ID only, never re-discovered
//! (a store's identity is its ID: an address can be reused after a store is removed).
//! Reads: the PD cache's last view (a snapshot, for reporting). Writes nothing (an Event
//! `StoreJoined` when the ID is first recorded); while
//! the store is not up, holds a PD wait so the cache polls fast.
//! Outcomes: Complete; Wait while PD is not registered, not read, or the store is not
//! up yet (the cache's store events re-trigger us).

use tikv_operator_pd::NodeState;
use tikv_operator_task::{Node, Outcome, task};

use crate::tikv::render::advertise_addr;
use crate::tikv::state::{Observed, StoreInfo, StoreView, TikvState, ViewFreshness};

pub fn store() -> Node<TikvState> {
    task("store", |s: &mut TikvState| Box::pin(run(s)))
}

async fn run(s: &mut TikvState) -> Outcome {
    {
        let key = s.pass.key();
        let Some(pd) = s.pass.pd() else {
            s.store = StoreView::NotRegistered;
            return Outcome::wait("the cluster's PD is not registered yet");
        };
        let Some(tikv) = &s.pass.object else {
            return Outcome::complete("no instance");
        };
        let snapshot = pd.cache.snapshot();
        let (Some(view), Some(freshness)) = (snapshot.view, ViewFreshness::of(snapshot.freshness.clone())) else {
            s.store = StoreView::Unavailable;
            s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "PD to answer");
            return Outcome::wait(format!("PD has not answered yet ({})", snapshot.freshness));
        };
        let recorded = s.pass.status.id.as_deref().and_then(|id| id.parse::<u64>().ok());
        let found = match recorded {
            Some(id) => view.store(id),
            None => view.store_by_address(&advertise_addr(tikv)).filter(|store| !store.is_removed()),
        }
        .map(|store| StoreInfo {
            id: store.id,
            node_state: store.node_state,
            up: store.is_up_and_heartbeating(),
        });
        if s.pass.ctx.timing().schedulers_read_every_tikv_pass {
            // Timing profile v2: its ContextInfoFromPD lists PD's schedulers on every
            // TiKV reconcile; the cost is modelled, the view still decides.
            if let Err(error) = pd.schedulers().await {
                tracing::debug!(%error, "reading PD's schedulers");
            }
        }
        let observed = Observed { view, freshness };
        s.store = match found {
            Some(store) => StoreView::Found(store, observed),
            None => StoreView::Absent(observed),
        };
        match s.store.store() {
            Some(store) => {
                if s.pass.status.id.is_none() {
                    s.pass.status.id = Some(store.id.to_string());
                    let note = format!("store {} joined PD as {}", store.id, advertise_addr(tikv));
                    s.pass.event("StoreJoined", "Register", note).await;
                }
                if let Some(state) = store.node_state.to_api() {
                    s.pass.status.state = Some(state);
                }
                if store.up {
                    s.pass.ctx.pd_waits.done(&key);
                    Outcome::complete(format!("store {} {}", store.id, store.node_state.name()))
                } else if store.node_state == NodeState::Removed {
                    // Never up again: nothing to poll fast for.
                    s.pass.ctx.pd_waits.done(&key);
                    Outcome::complete(format!("store {} is removed", store.id))
                } else {
                    s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "store to be up");
                    Outcome::wait(format!("store {} is {}; waiting for it to be up", store.id, store.node_state.name()))
                }
            }
            None => {
                s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "store to register");
                match recorded {
                    Some(id) => Outcome::wait(format!("store {id} is not in PD's view; waiting for PD to list it")),
                    None => Outcome::wait("no store registered with this address yet; waiting for TiKV to join PD"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::{ClusterKey, PdHandle};
    use crate::testing::{FakePd, offline_context, sample_tikv};
    use std::time::Duration;
    use tikv_operator_api::tikv::StoreState;
    use tikv_operator_pd::StaleReason;
    use tikv_operator_task::{OutcomeKind, Runner};

    const ADDR: &str = "tikv-tikv-abc123.tikv-tikv-peer.default.svc:20160";

    async fn run_with(pd: FakePd, recorded: Option<&str>) -> TikvState {
        run_on(pd.fresh_handle().await, recorded).await
    }

    async fn run_on(handle: PdHandle, recorded: Option<&str>) -> TikvState {
        run_in(offline_context(), handle, recorded).await
    }

    async fn run_in(ctx: std::sync::Arc<crate::Context>, handle: PdHandle, recorded: Option<&str>) -> TikvState {
        ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", handle);
        let mut state = TikvState::new(ctx, "default", "tikv-abc123");
        state.pass = state.pass.with_object(sample_tikv("tikv-abc123", "tikv"));
        state.pass.status.id = recorded.map(str::to_string);
        Runner::new("test", [store()]).run("k", &mut state).await;
        state
    }

    #[tokio::test]
    async fn the_v2_profile_reads_the_schedulers_uncached_on_every_pass() {
        let pd = FakePd::bootstrapped().store(5, ADDR, NodeState::Serving);
        let handle = pd.fresh_handle().await;
        run_on(handle.clone(), Some("5")).await;
        assert_eq!(pd.scheduler_reads(), 0, "ours reads the cache only");
        let ctx = offline_context();
        let mut config = ctx.config.clone();
        config.timing = crate::Timing::v2();
        let client = ctx.client.clone();
        let v2 = std::sync::Arc::new(crate::Context::new(
            client,
            config,
            std::sync::Arc::new(crate::FixedClock::new(crate::testing::t0())),
            ctx.metrics.clone(),
        ));
        run_in(v2.clone(), handle.clone(), Some("5")).await;
        run_in(v2, handle, Some("5")).await;
        assert_eq!(pd.scheduler_reads(), 2);
    }

    fn freshness(view: &StoreView) -> Option<ViewFreshness> {
        view.observed().map(|observed| observed.freshness.clone())
    }

    #[tokio::test]
    async fn the_id_is_discovered_by_address_once() {
        let state = run_with(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), None).await;
        assert_eq!(state.pass.status.id.as_deref(), Some("5"));
        assert_eq!(state.pass.status.state, Some(StoreState::Serving));
        let StoreView::Found(store, observed) = &state.store else { panic!("{:?}", state.store) };
        assert_eq!(*store, StoreInfo { id: 5, node_state: NodeState::Serving, up: true });
        assert!(observed.is_fresh());
        assert_eq!(observed.view.store(5).map(|s| s.address.as_str()), Some(ADDR), "the pass keeps the view it read");
        assert!(state.store.fresh().is_some() && !state.store.absent_from_fresh_view());
    }

    #[tokio::test]
    async fn the_store_joining_is_announced_once_when_its_id_is_recorded() {
        let env = crate::testing::TestEnv::start().await;
        let handle = FakePd::bootstrapped().store(5, ADDR, NodeState::Serving).fresh_handle().await;
        env.ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", handle);
        let tikv = env.create(sample_tikv("tikv-abc123", "tikv")).await;
        let runner = Runner::new("test", [store()]);
        let mut state = TikvState::new(env.ctx.clone(), "default", "tikv-abc123");
        state.pass = state.pass.with_object(tikv.clone());
        env.run(&runner, "k", &mut state).await;
        let events = env.events().await;
        assert_eq!(events, [("Normal".to_string(), "StoreJoined".to_string(), format!("store 5 joined PD as {ADDR}"))]);
        // Recorded: a pass finds it and says nothing.
        let mut state = TikvState::new(env.ctx.clone(), "default", "tikv-abc123");
        state.pass = state.pass.with_object(tikv);
        state.pass.status.id = Some("5".into());
        env.run(&runner, "k", &mut state).await;
        assert_eq!(env.events().await.len(), 1);
    }

    #[tokio::test]
    async fn a_recorded_id_is_never_rediscovered() {
        // Store 5 is gone from PD's view; a new store 9 has the same address.
        let state = run_with(FakePd::bootstrapped().store(9, ADDR, NodeState::Serving), Some("5")).await;
        assert_eq!(state.pass.status.id.as_deref(), Some("5"));
        assert!(matches!(&state.store, StoreView::Absent(observed) if observed.is_fresh()), "{:?}", state.store);
        assert!(state.store.absent_from_fresh_view());
        assert!(state.pass.ctx.pd_waits.is_waiting("default/tikv-abc123"));
    }

    #[tokio::test]
    async fn a_removed_store_on_the_address_is_not_adopted() {
        let state = run_with(FakePd::bootstrapped().store(3, ADDR, NodeState::Removed), None).await;
        assert_eq!(state.pass.status.id, None);
        assert!(matches!(state.store, StoreView::Absent(_)), "{:?}", state.store);
    }

    #[tokio::test]
    async fn a_tombstone_with_the_recorded_id_is_found() {
        let state = run_with(FakePd::bootstrapped().store(3, ADDR, NodeState::Removed), Some("3")).await;
        assert_eq!(state.store.store().map(|s| (s.id, s.node_state, s.up)), Some((3, NodeState::Removed, false)));
        assert_eq!(state.pass.status.state, Some(StoreState::Removed));
        assert!(!state.pass.ctx.pd_waits.is_waiting("default/tikv-abc123"), "a removed store is not polled for");
    }

    #[tokio::test]
    async fn not_registered_waits() {
        let mut state = TikvState::new(offline_context(), "default", "tikv-abc123");
        state.pass = state.pass.with_object(sample_tikv("tikv-abc123", "tikv"));
        let report = Runner::new("test", [store()]).run("k", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait);
        assert_eq!(state.store, StoreView::NotRegistered);
        assert!(state.store.observed().is_none());
    }

    #[tokio::test]
    async fn pd_that_never_answered_is_unavailable_not_absent() {
        let pd = FakePd::bootstrapped().store(5, ADDR, NodeState::Serving);
        pd.unreachable(true);
        let handle = pd.handle();
        assert!(handle.cache.refresh().await.is_err());
        let state = run_on(handle, Some("5")).await;
        assert_eq!(state.store, StoreView::Unavailable);
        assert!(!state.store.absent_from_fresh_view());
        assert_eq!(state.pass.status.state, None);
        assert!(state.pass.ctx.pd_waits.is_waiting("default/tikv-abc123"), "polls fast until PD answers");
    }

    #[tokio::test]
    async fn a_failing_poll_leaves_a_stale_view_that_is_never_fresh_absence() {
        // The last good view has no store 5; PD stops answering.
        let pd = FakePd::bootstrapped().store(9, ADDR, NodeState::Serving);
        let handle = pd.fresh_handle().await;
        pd.unreachable(true);
        assert!(handle.cache.refresh().await.is_err());
        let state = run_on(handle, Some("5")).await;
        assert!(matches!(state.store, StoreView::Absent(_)), "{:?}", state.store);
        assert_eq!(freshness(&state.store), Some(ViewFreshness::Stale(StaleReason::PollFailing)));
        assert!(!state.store.absent_from_fresh_view());
        assert!(state.store.fresh().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_old_view_still_reports_the_store_but_is_not_fresh() {
        let pd = FakePd::bootstrapped().store(5, ADDR, NodeState::Serving);
        let handle = pd.fresh_handle().await;
        // Past the freshness bound (5 s), before the next slow poll (30 s).
        tokio::time::advance(Duration::from_secs(10)).await;
        let state = run_on(handle, Some("5")).await;
        assert!(state.store.store().is_some_and(|s| s.up), "good enough for reporting");
        assert!(matches!(freshness(&state.store), Some(ViewFreshness::Stale(StaleReason::TooOld { .. }))));
        assert!(state.store.fresh().is_none());
    }

    #[tokio::test]
    async fn a_view_read_before_the_operators_last_write_is_stale() {
        let pd = FakePd::bootstrapped().store(9, ADDR, NodeState::Serving);
        let handle = pd.fresh_handle().await;
        // The poll the write requests has not run yet: this pass reads the old view.
        handle.cache.note_write();
        let state = run_on(handle, Some("5")).await;
        assert!(matches!(state.store, StoreView::Absent(_)), "{:?}", state.store);
        assert_eq!(freshness(&state.store), Some(ViewFreshness::Stale(StaleReason::OlderThanLastWrite)));
        assert!(!state.store.absent_from_fresh_view());
    }
}
