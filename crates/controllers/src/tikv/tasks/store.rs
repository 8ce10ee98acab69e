//! `store`: this instance's store in PD.
//!
//! The store ID is discovered once, by advertise address, and recorded in
//! `status.id`; from then on the store is read by that ID only, never re-discovered
//! (a store's identity is its ID: an address can be reused after a store is removed).
//! Reads: the PD cache's last view (a snapshot, for reporting). Writes nothing; while
//! the store is not up, holds a PD wait so the cache polls fast.
//! Outcomes: Complete; Wait while PD is not registered, not read, or the store is not
//! up yet (the cache's store events re-trigger us).

use tikv_operator_task::{Node, Outcome, sync_task};

use crate::tikv::render::advertise_addr;
use crate::tikv::state::{PdRead, StoreInfo, TikvState};

pub fn store() -> Node<TikvState> {
    sync_task("store", |s: &mut TikvState| {
        let key = s.pass.key();
        let Some(pd) = s.pass.pd() else {
            s.pd_read = PdRead::NotRegistered;
            return Outcome::wait("the cluster's PD is not registered yet");
        };
        let Some(tikv) = &s.pass.object else {
            return Outcome::complete("no instance");
        };
        let snapshot = pd.cache.snapshot();
        let Some(view) = snapshot.view else {
            s.pd_read = PdRead::Unavailable;
            s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "PD to answer");
            return Outcome::wait(format!("PD has not answered yet ({})", snapshot.freshness));
        };
        s.pd_read = PdRead::Read;
        let recorded = s.pass.status.id.as_deref().and_then(|id| id.parse::<u64>().ok());
        let found = match recorded {
            Some(id) => view.store(id),
            None => view.store_by_address(&advertise_addr(tikv)).filter(|store| !store.is_removed()),
        };
        s.store = found.map(|store| StoreInfo {
            id: store.id,
            node_state: store.node_state,
            up: store.is_up_and_heartbeating(),
        });
        match &s.store {
            Some(store) => {
                s.pass.status.id.get_or_insert_with(|| store.id.to_string());
                if let Some(state) = store.node_state.to_api() {
                    s.pass.status.state = Some(state);
                }
                if store.up {
                    s.pass.ctx.pd_waits.done(&key);
                    Outcome::complete(format!("store {} {}", store.id, store.node_state.name()))
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
    })
}

/// Releases the instance's PD wait when it is gone.
pub fn forget_waits() -> Node<TikvState> {
    sync_task("forget_waits", |s: &mut TikvState| {
        let key = s.pass.key();
        s.pass.ctx.pd_waits.done(&key);
        Outcome::complete("")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, offline_context, sample_tikv};
    use tikv_operator_api::tikv::StoreState;
    use tikv_operator_pd::NodeState;
    use tikv_operator_task::{OutcomeKind, Runner};

    const ADDR: &str = "tikv-tikv-abc123.tikv-tikv-peer.default.svc:20160";

    async fn run_with(pd: FakePd, recorded: Option<&str>) -> TikvState {
        let ctx = offline_context();
        ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", pd.fresh_handle().await);
        let mut state = TikvState::new(ctx, "default", "tikv-abc123");
        state.pass = state.pass.with_object(sample_tikv("tikv-abc123", "tikv"));
        state.pass.status.id = recorded.map(str::to_string);
        Runner::new("test", [store()]).run("k", &mut state).await;
        state
    }

    #[tokio::test]
    async fn the_id_is_discovered_by_address_once() {
        let state = run_with(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), None).await;
        assert_eq!(state.pass.status.id.as_deref(), Some("5"));
        assert_eq!(state.pass.status.state, Some(StoreState::Serving));
        assert!(state.store.as_ref().unwrap().up);
    }

    #[tokio::test]
    async fn a_recorded_id_is_never_rediscovered() {
        // Store 5 is gone from PD's view; a new store 9 has the same address.
        let state = run_with(FakePd::bootstrapped().store(9, ADDR, NodeState::Serving), Some("5")).await;
        assert_eq!(state.pass.status.id.as_deref(), Some("5"));
        assert!(state.store.is_none());
        assert!(state.pass.ctx.pd_waits.is_waiting("default/tikv-abc123"));
    }

    #[tokio::test]
    async fn a_removed_store_on_the_address_is_not_adopted() {
        let state = run_with(FakePd::bootstrapped().store(3, ADDR, NodeState::Removed), None).await;
        assert_eq!(state.pass.status.id, None);
    }

    #[tokio::test]
    async fn not_registered_waits() {
        let mut state = TikvState::new(offline_context(), "default", "tikv-abc123");
        state.pass = state.pass.with_object(sample_tikv("tikv-abc123", "tikv"));
        let report = Runner::new("test", [store()]).run("k", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait);
        assert_eq!(state.pd_read, PdRead::NotRegistered);
    }
}
