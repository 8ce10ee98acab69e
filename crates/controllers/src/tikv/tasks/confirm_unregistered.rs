//! `confirm_unregistered`: a deleted instance that never recorded a store ID keeps its
//! volumes and its finalizer until PD, read once its Pod is gone, has no store at its
//! address either.
//!
//! The view that found no store may predate the TiKV process registering one in the
//! moment before its Pod was deleted (chaos seed 1046: a failover's replacement,
//! cancelled as it started, left such a store in PD for good, Up and then Down). Read
//! after the Pod is gone, no process can register any more: a store found then has its
//! ID recorded and leaves PD like any other; none found confirms there is nothing to
//! take out of PD.
//!
//! Reads: PD directly, once per pass and only on this path (no ID recorded, the Pod
//! gone). Writes: nothing but the status being built (the store ID). Sets
//! `cleanup.pd_confirmed`, which the volumes' deletion and the finalizer's release wait
//! for. Outcomes: Complete (an ID was recorded before, or PD confirms no store); Wait
//! while the Pod is there, or once a late store is found; Retry while PD cannot be read.

use tikv_operator_task::{Node, Outcome, task};

use crate::tikv::render::advertise_addr;
use crate::tikv::state::{StoreInfo, StoreView, TikvState};

pub fn confirm_unregistered() -> Node<TikvState> {
    task("confirm_unregistered", |s: &mut TikvState| Box::pin(run(s)))
}

async fn run(s: &mut TikvState) -> Outcome {
    if let Some(id) = s.store_id() {
        s.cleanup.pd_confirmed = true;
        return Outcome::complete(format!("store {id} is recorded"));
    }
    if !s.cleanup.pod_gone {
        return Outcome::wait("no store recorded: PD is read once more after the pod is gone");
    }
    let Some(address) = s.pass.object.as_ref().map(advertise_addr) else {
        return Outcome::complete("no instance");
    };
    let Some(now) = s.read_pd_now().await else {
        return s
            .pass
            .retry_for_fresh_view(format!("PD could not be read to confirm no store registered at {address}"));
    };
    let late = now.view.store_by_address(&address).filter(|store| !store.is_removed()).map(|store| StoreInfo {
        id: store.id,
        node_state: store.node_state,
        up: store.is_up_and_heartbeating(),
    });
    match late {
        Some(store) => {
            let message = format!("store {} registered at {address} before the pod went: it leaves PD first", store.id);
            s.pass.status.id = Some(store.id.to_string());
            s.store = StoreView::Found(store, now);
            Outcome::wait(message)
        }
        None => {
            s.pass.ctx.pd_waits.done(&s.pass.key());
            s.cleanup.pd_confirmed = true;
            Outcome::complete(format!("PD has no store at {address}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePd;
    use crate::tikv::tasks::delete_pod;
    use crate::tikv::tasks::testkit::{ADDR, Kit};
    use tikv_operator_api::TiKV;
    use tikv_operator_pd::NodeState;
    use tikv_operator_task::OutcomeKind;

    /// A deleted instance with no store ID recorded; PD has store 5 elsewhere.
    async fn kit() -> Kit {
        let pd = FakePd::bootstrapped().store(5, "tikv-late:20160", NodeState::Serving);
        let kit = Kit::new(pd, |_| {}).await;
        kit.delete().await;
        kit
    }

    #[tokio::test]
    async fn a_store_that_registered_after_the_view_is_found_and_recorded() {
        let kit = kit().await;
        kit.handle.cache.refresh().await.unwrap();
        // The TiKV registered at the instance's address after the cache's last poll.
        kit.pd.set_store(5, |st| st.address = ADDR.into());
        let (s, report) = kit.pass_as_is([delete_pod(), confirm_unregistered()]).await;
        let entry = report.entry("confirm_unregistered").unwrap();
        assert_eq!(entry.kind(), Some(OutcomeKind::Wait), "{report}");
        assert!(entry.message().contains("store 5 registered"), "{report}");
        assert!(!s.cleanup.pd_confirmed);
        let live: TiKV = kit.env.get(crate::tikv::tasks::testkit::NAME).await;
        assert_eq!(live.status.unwrap().id.as_deref(), Some("5"), "the ID is recorded");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn no_store_at_the_address_once_the_pod_is_gone_is_confirmed() {
        let kit = kit().await;
        let (s, report) = kit.pass([delete_pod(), confirm_unregistered()]).await;
        assert_eq!(report.entry("confirm_unregistered").unwrap().kind(), Some(OutcomeKind::Complete), "{report}");
        assert!(s.cleanup.pd_confirmed);
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "a read only: {report}");
    }

    #[tokio::test]
    async fn while_the_pod_is_there_nothing_is_confirmed() {
        let kit = kit().await;
        kit.running_pod().await;
        let (s, report) = kit.pass([confirm_unregistered()]).await;
        assert_eq!(report.entry("confirm_unregistered").unwrap().kind(), Some(OutcomeKind::Wait), "{report}");
        assert!(!s.cleanup.pd_confirmed);
    }

    #[tokio::test]
    async fn a_recorded_store_needs_no_confirmation() {
        let kit = kit().await;
        kit.status(|st| st.id = Some("5".into())).await;
        let (s, report) = kit.pass([confirm_unregistered()]).await;
        assert_eq!(report.entry("confirm_unregistered").unwrap().kind(), Some(OutcomeKind::Complete), "{report}");
        assert!(s.cleanup.pd_confirmed);
    }
}
