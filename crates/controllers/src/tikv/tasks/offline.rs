//! `offline`: the PD side of an instance leaving (two-step offline, cancellable).
//!
//! While the instance is leaving (`spec.offline`, or deleted: an offline that cannot
//! be cancelled) and its leaders are evicted (or cannot be), the store is taken offline
//! with `DELETE /store/{id}` (never `force`) after the safety contract's checks (the
//! right PD, a fresh view); PD then moves its regions away (Removing) and marks it
//! Tombstone (Removed). `offline: false` before that cancels through PD (`state=Up`); a
//! 410 on the cancel means the store was removed meanwhile: completed, not an error.
//!
//! `Offlined` tells the story: False/`OfflineProcessing` with regions left, the rate
//! seen and an estimate of the time left (from `status.offline`, kept across operator
//! restarts); False/`OfflineRefused` when PD refuses (not enough stores left, retried);
//! False/`OfflineCanceled` once cancelled; True/`OfflineCompleted` once removed. A store
//! PD no longer lists counts as removed only if it was last seen Removing or Removed
//! (`status.state`); otherwise it is unknown and the condition says so.
//!
//! Reads: the PD view `store` read, what `evict_leaders` found. Writes: PD
//! (`DELETE /store`, `state=Up`), events; the status being built. Outcomes: Complete;
//! Wait (leaders moving, no fresh view); Retry while regions move (their count brings no
//! event) and after a refusal; Fail on an unexpected PD error.

use std::time::Duration;

use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::tikv::DrainProgress;
use tikv_operator_pd::{NodeState, PdError};
use tikv_operator_task::{Node, Outcome, task};

use crate::tikv::state::{Leaders, Refusal, StoreView, TikvState, offline_blocker};

/// How often region counts are looked at while PD moves them.
pub const OFFLINE_RECHECK: Duration = Duration::from_secs(10);
/// How long after a refusal PD is asked again.
pub const REFUSAL_RETRY: Duration = Duration::from_secs(30);

pub fn offline() -> Node<TikvState> {
    task("offline", |s: &mut TikvState| Box::pin(run(s)))
}

async fn run(s: &mut TikvState) -> Outcome {
    let leaving = s.leaving();
    let (store, observed) = match &s.store {
        StoreView::Found(store, observed) => (store.clone(), observed.clone()),
        StoreView::Absent(_) => return absent(s, leaving).await,
        StoreView::NotRead | StoreView::NotRegistered | StoreView::Unavailable => {
            if !leaving {
                return Outcome::complete("not leaving");
            }
            let message = "PD has not answered: the store's state is unknown";
            s.pass.set_condition(types::OFFLINED, false, reasons::PD_UNAVAILABLE, message);
            return Outcome::wait(message);
        }
    };
    let id = store.id;
    match (leaving, store.node_state) {
        (true, NodeState::Removed) | (false, NodeState::Removed) => completed(s, id, "").await,
        (true, NodeState::Removing) => {
            let regions = observed.view.store(id).map_or(0, |s| s.region_count);
            let message = record_progress(s, id, regions);
            s.pass.set_condition(types::OFFLINED, false, reasons::OFFLINE_PROCESSING, message.clone());
            Outcome::retry(OFFLINE_RECHECK, message)
        }
        (true, _) => start(s, id).await,
        (false, NodeState::Removing) if !observed.is_fresh() => {
            // Perhaps cancelled by a pass whose write this view predates.
            let message = format!("store {id} shows Removing in a view that is not fresh; waiting for a fresh one");
            s.pass.retry_for_fresh_view(message)
        }
        (false, NodeState::Removing) => cancel(s, id).await,
        (false, _) => {
            s.pass.status.offline = None;
            if s.pass.reason_as_read(types::OFFLINED).is_some_and(|r| r != reasons::OFFLINE_CANCELED) {
                let message = format!("store {id} serves; no offline is asked for");
                s.pass.set_condition(types::OFFLINED, false, reasons::OFFLINE_CANCELED, message);
            }
            Outcome::complete("not leaving")
        }
    }
}

/// Takes the store offline once its leaders are gone.
async fn start(s: &mut TikvState, id: u64) -> Outcome {
    match s.leaders {
        Leaders::Evicted | Leaders::CannotMove => {}
        Leaders::Moving(left) => {
            let message =
                format!("waiting for the leaders to move off store {id} ({left} left) before PD takes it offline");
            s.pass.set_condition(types::OFFLINED, false, reasons::OFFLINE_PROCESSING, message.clone());
            return Outcome::wait(message);
        }
        Leaders::NotYet => {
            let why = s.store.observed().and_then(|o| offline_blocker(&o.view, id)).unwrap_or_default();
            let message = format!("store {id} is not taken offline yet: {why}");
            s.pass.set_condition(types::OFFLINED, false, reasons::NOT_ENOUGH_STORES, message.clone());
            return Outcome::wait(message);
        }
        Leaders::Stay => return Outcome::wait(format!("the leaders of store {id} are not known to be evicted")),
    }
    if let Err(Refusal { reason, message }) = s.destructive_allowed() {
        s.pass.set_condition(types::OFFLINED, false, reason, format!("store {id} is not taken offline yet: {message}"));
        return Refusal::outcome(&s.pass, reason, message);
    }
    let Some(pd) = s.pass.pd() else {
        return Outcome::wait("the cluster's PD is not registered");
    };
    if s.leaders == Leaders::Evicted {
        // Right before the destructive write, PD read now: leaders judged gone from a
        // view a few seconds old may be back (an entry someone else added, removed
        // meanwhile). One read per offline started, not per pass.
        match pd.cache.refresh().await {
            Ok(view) if view.is_evicting_leaders(id) && view.store(id).is_some_and(|st| st.leader_count == 0) => {}
            Ok(_) => {
                let message =
                    format!("store {id} holds leaders again or left the evict-leader scheduler; looking again");
                return s.pass.retry_for_fresh_view(message);
            }
            Err(error) => {
                let message = format!("PD could not be read right before the offline: {error}");
                s.pass.set_condition(types::OFFLINED, false, reasons::PD_VIEW_NOT_FRESH, message.clone());
                return s.pass.retry_for_fresh_view(message);
            }
        }
    }
    match pd.delete_store(id).await {
        Ok(()) => {
            let regions = s.store.observed().and_then(|o| o.view.store(id)).map_or(0, |st| st.region_count);
            let message = record_progress(s, id, regions);
            s.pass.event("OfflineStarted", "Offline", format!("PD takes store {id} offline")).await;
            s.pass.set_condition(types::OFFLINED, false, reasons::OFFLINE_PROCESSING, message);
            Outcome::retry(OFFLINE_RECHECK, format!("PD takes store {id} offline"))
        }
        Err(PdError::StoreRemoved { .. }) => completed(s, id, "").await,
        Err(error @ (PdError::NotEnoughStores { .. } | PdError::NotFound { .. })) => {
            let message =
                format!("PD refuses to take store {id} offline: {error}; asking again in {}s", REFUSAL_RETRY.as_secs());
            if s.pass.reason_as_read(types::OFFLINED) != Some(reasons::OFFLINE_REFUSED) {
                s.pass.warning("OfflineRefused", "Offline", message.clone()).await;
            }
            s.pass.set_condition(types::OFFLINED, false, reasons::OFFLINE_REFUSED, message.clone());
            Outcome::retry(REFUSAL_RETRY, message)
        }
        Err(error) => Outcome::fail(error),
    }
}

/// Cancels an offline PD is still carrying out.
async fn cancel(s: &mut TikvState, id: u64) -> Outcome {
    let Some(pd) = s.pass.pd() else {
        return Outcome::wait("the cluster's PD is not registered");
    };
    if let Some(cluster) = &s.pass.cluster
        && let Err(message) = crate::common::guards::cluster_id_check(cluster, Some(&pd))
    {
        return Outcome::wait(message);
    }
    match pd.cancel_delete_store(id).await {
        Ok(()) => {
            s.pass.status.offline = None;
            let message = format!("offline of store {id} cancelled; it serves again");
            s.pass.event("OfflineCanceled", "Offline", message.clone()).await;
            s.pass.set_condition(types::OFFLINED, false, reasons::OFFLINE_CANCELED, message.clone());
            Outcome::complete(message)
        }
        Err(PdError::StoreRemoved { .. }) => completed(s, id, " before the cancel reached PD").await,
        Err(error) => Outcome::fail(error),
    }
}

/// The store PD no longer lists.
async fn absent(s: &mut TikvState, leaving: bool) -> Outcome {
    if s.store_removed() {
        let id = s.store_id().unwrap_or_default();
        return completed(s, id, " and PD no longer lists it").await;
    }
    if !leaving {
        return Outcome::complete("not leaving");
    }
    if s.never_registered() {
        let message = "no store ever registered for this instance: it holds no data";
        s.pass.set_condition(types::OFFLINED, true, reasons::OFFLINE_COMPLETED, message);
        return Outcome::complete(message);
    }
    let message = match s.store_id() {
        Some(id) => format!(
            "store {id} is not in PD's view and was never seen leaving: it is not counted as removed (waiting for PD to list it)"
        ),
        None => "no store registered yet, and the PD view is not fresh enough to say none will".to_string(),
    };
    s.pass.set_condition(types::OFFLINED, false, reasons::STORE_NOT_EXIST, message.clone());
    Outcome::wait(message)
}

async fn completed(s: &mut TikvState, id: u64, how: &str) -> Outcome {
    if let Some(drain) = &mut s.pass.status.offline {
        drain.left = 0;
    }
    let message = format!("store {id} is removed from PD{how}");
    if s.pass.reason_as_read(types::OFFLINED) != Some(reasons::OFFLINE_COMPLETED) {
        s.pass.event("OfflineCompleted", "Offline", message.clone()).await;
    }
    s.pass.set_condition(types::OFFLINED, true, reasons::OFFLINE_COMPLETED, message.clone());
    Outcome::complete(message)
}

/// Records the regions left and returns the progress message: regions left, the rate
/// seen since the start, and the time left at that rate.
fn record_progress(s: &mut TikvState, id: u64, regions: u64) -> String {
    let now = s.pass.ctx.now();
    let drain = DrainProgress::record(&mut s.pass.status.offline, regions, now);
    progress_message(id, drain, now)
}

/// `"store 5: 40 of 100 regions left, 12.0 regions/min, about 3m20s left"`.
pub fn progress_message(id: u64, drain: &DrainProgress, now: jiff::Timestamp) -> String {
    let moved = drain.start.saturating_sub(drain.left);
    let elapsed = now.duration_since(drain.started_at.0).as_secs_f64();
    let mut message = format!("PD is taking store {id} offline: {} of {} regions left", drain.left, drain.start);
    if moved > 0 && elapsed > 0.0 {
        let per_second = moved as f64 / elapsed;
        let eta = (drain.left as f64 / per_second).round() as u64;
        message.push_str(&format!(", {:.1} regions/min, about {} left", per_second * 60.0, human(eta)));
    }
    message
}

fn human(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{}s", seconds / 60, seconds % 60),
        _ => format!("{}h{}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePd;
    use crate::tikv::state::Leaders;
    use crate::tikv::tasks::testkit::{Kit, four_stores};
    use tikv_operator_api::TiKV;
    use tikv_operator_api::condition::find_condition;
    use tikv_operator_api::tikv::StoreState;
    use tikv_operator_pd::PdError;
    use tikv_operator_task::{OutcomeKind, sync_task};

    /// Store 5 is this instance's; three more keep max-replicas 3 satisfied.
    fn pd() -> FakePd {
        four_stores().counts(5, 0, 100).evicting_leaders(5)
    }

    fn offline_spec(tikv: &mut TiKV) {
        tikv.spec.offline = true;
    }

    /// What `evict_leaders` would have found.
    fn leaders(found: Leaders) -> Node<TikvState> {
        sync_task("leaders", move |s: &mut TikvState| {
            s.leaders = found;
            Outcome::complete("")
        })
    }

    fn condition(s: &TikvState) -> (String, String, String) {
        let c = find_condition(&s.pass.status.common.conditions, types::OFFLINED).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    #[tokio::test]
    async fn the_store_goes_offline_only_once_its_leaders_are_gone() {
        let kit = Kit::new(pd(), offline_spec).await;
        let (s, report) = kit.pass([leaders(Leaders::Moving(3)), offline()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert_eq!(report.entry("offline").unwrap().kind(), Some(OutcomeKind::Wait));
        assert!(
            condition(&s).2.starts_with("waiting for the leaders to move off store 5 (3 left)"),
            "{:?}",
            condition(&s)
        );

        let (s, report) = kit.pass([leaders(Leaders::Evicted), offline()]).await;
        assert_eq!(kit.pd.write_log(), ["delete_store(5)"], "{report}");
        assert_eq!(kit.pd.store_state(5), Some(NodeState::Removing));
        assert_eq!(condition(&s).1, reasons::OFFLINE_PROCESSING);
        assert_eq!(s.pass.status.offline.as_ref().map(|d| (d.start, d.left)), Some((100, 100)));
        assert!(kit.env.events().await.iter().any(|(_, reason, _)| reason == "OfflineStarted"));

        // Where eviction cannot work, the offline goes on without it.
        let kit = Kit::new(pd(), offline_spec).await;
        kit.pass([leaders(Leaders::CannotMove), offline()]).await;
        assert_eq!(kit.pd.write_log(), ["delete_store(5)"]);
    }

    #[tokio::test]
    async fn leaders_back_since_the_view_was_read_stop_the_offline() {
        // The pass judged the leaders gone; PD read right before the DELETE disagrees.
        let kit = Kit::new(pd(), offline_spec).await;
        kit.pd.set_store(5, |st| st.leader_count = 3);
        let (_, report) = kit.pass_as_is([leaders(Leaders::Evicted), offline()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert_eq!(report.entry("offline").unwrap().kind(), Some(OutcomeKind::Retry));
    }

    #[tokio::test]
    async fn too_few_stores_wait_without_asking_pd() {
        let kit = Kit::new(pd().purge_store(8).to_owned(), offline_spec).await;
        let (s, report) = kit.pass([leaders(Leaders::NotYet), offline()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        let (_, reason, message) = condition(&s);
        assert_eq!(reason, reasons::NOT_ENOUGH_STORES);
        assert!(message.contains("2 other Up stores would remain and max-replicas is 3"), "{message}");
    }

    #[tokio::test]
    async fn nothing_is_taken_offline_from_a_stale_view_or_another_pd() {
        let kit = Kit::new(pd(), offline_spec).await;
        kit.handle.cache.note_write();
        let (s, report) = kit.pass_as_is([leaders(Leaders::Evicted), offline()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert_eq!(condition(&s).1, reasons::PD_VIEW_NOT_FRESH);

        kit.pd.unreachable(true);
        let _ = kit.handle.cache.refresh().await;
        let (s, _) = kit.pass_as_is([leaders(Leaders::Evicted), offline()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
        assert_eq!(condition(&s).1, reasons::PD_VIEW_NOT_FRESH, "a failing poll: {:?}", condition(&s));
        kit.pd.unreachable(false);

        let clusters: kube::Api<tikv_operator_api::Cluster> = kube::Api::namespaced(kit.env.client.clone(), "default");
        let mut cluster = clusters.get("basic").await.unwrap();
        cluster.status.get_or_insert_default().id = Some("1".into());
        clusters.replace_status("basic", &Default::default(), &cluster).await.unwrap();
        let (s, _) = kit.pass([leaders(Leaders::Evicted), offline()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
        assert_eq!(condition(&s).1, reasons::CLUSTER_ID_MISMATCH);
    }

    #[tokio::test]
    async fn a_refusal_is_said_and_asked_again_later() {
        let kit = Kit::new(pd().purge_store(8).to_owned(), offline_spec).await;
        let (s, report) = kit.pass([leaders(Leaders::Evicted), offline()]).await;
        assert_eq!(kit.pd.write_log(), ["delete_store(5)"]);
        assert_eq!(report.entry("offline").unwrap().retry_after(), Some(REFUSAL_RETRY), "{report}");
        let (_, reason, message) = condition(&s);
        assert_eq!(reason, reasons::OFFLINE_REFUSED);
        assert!(message.contains("number of up stores would be 2 while need 3"), "{message}");
        assert_eq!(kit.pd.store_state(5), Some(NodeState::Serving));
        let warnings = kit.env.events().await.into_iter().filter(|(t, _, _)| t == "Warning").count();
        assert_eq!(warnings, 1);
        kit.pass([leaders(Leaders::Evicted), offline()]).await;
        let warnings = kit.env.events().await.into_iter().filter(|(t, _, _)| t == "Warning").count();
        assert_eq!(warnings, 1, "announced once");
    }

    #[tokio::test]
    async fn progress_gives_regions_left_rate_and_time_left() {
        let kit = Kit::new(pd(), offline_spec).await;
        kit.pass([leaders(Leaders::Evicted), offline()]).await;
        kit.env.clock.advance(Duration::from_secs(60));
        kit.pd.set_store(5, |st| st.region_count = 70);
        let (s, report) = kit.pass([leaders(Leaders::Evicted), offline()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "already Removing: {report}");
        assert_eq!(report.entry("offline").unwrap().retry_after(), Some(OFFLINE_RECHECK));
        assert_eq!(
            condition(&s),
            (
                "False".into(),
                reasons::OFFLINE_PROCESSING.into(),
                "PD is taking store 5 offline: 70 of 100 regions left, 30.0 regions/min, about 2m20s left".into()
            )
        );
    }

    #[tokio::test]
    async fn tombstone_completes_and_is_announced_once() {
        let kit = Kit::new(pd(), offline_spec).await;
        kit.status(|st| st.id = Some("5".into())).await;
        kit.pd.set_node_state(5, NodeState::Removed);
        let (s, _) = kit.pass([leaders(Leaders::Stay), offline()]).await;
        assert_eq!(
            condition(&s),
            ("True".into(), reasons::OFFLINE_COMPLETED.into(), "store 5 is removed from PD".into())
        );
        assert_eq!(kit.env.event_writes().await, 1);
        kit.pass([leaders(Leaders::Stay), offline()]).await;
        assert_eq!((kit.env.event_writes().await, kit.env.writes()), (0, 0), "{:?}", kit.env.write_log());
    }

    #[tokio::test]
    async fn cancelling_brings_the_store_back_and_a_410_means_it_was_already_removed() {
        let kit = Kit::new(pd(), |_| {}).await;
        kit.pd.set_node_state(5, NodeState::Removing);
        let (s, report) = kit.pass([leaders(Leaders::Stay), offline()]).await;
        assert_eq!(kit.pd.write_log(), ["cancel_delete_store(5)"], "{report}");
        assert_eq!(kit.pd.store_state(5), Some(NodeState::Serving));
        assert_eq!(condition(&s).1, reasons::OFFLINE_CANCELED);
        assert_eq!(s.pass.status.offline, None);

        let kit = Kit::new(pd(), |_| {}).await;
        kit.pd.set_node_state(5, NodeState::Removing);
        kit.pd.fail_next(
            "cancel_delete_store",
            PdError::StoreRemoved { store_id: 5, message: "[PD:core:ErrStoreRemoved]store 5 has been removed".into() },
        );
        let (s, report) = kit.pass([leaders(Leaders::Stay), offline()]).await;
        assert_eq!(report.entry("offline").unwrap().kind(), Some(OutcomeKind::Complete), "not an error: {report}");
        let (status, reason, message) = condition(&s);
        assert_eq!((status.as_str(), reason.as_str()), ("True", reasons::OFFLINE_COMPLETED));
        assert!(message.ends_with("before the cancel reached PD"), "{message}");
    }

    #[tokio::test]
    async fn a_cancel_is_not_sent_again_from_a_view_older_than_the_last_write() {
        let kit = Kit::new(pd(), |_| {}).await;
        kit.pd.set_node_state(5, NodeState::Removing);
        kit.handle.cache.refresh().await.unwrap();
        kit.handle.cache.note_write();
        let (_, report) = kit.pass_as_is([leaders(Leaders::Stay), offline()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert_eq!(report.entry("offline").unwrap().kind(), Some(OutcomeKind::Retry));
    }

    #[tokio::test]
    async fn a_store_gone_after_it_was_seen_removing_is_removed_but_never_seen_is_unknown() {
        let kit = Kit::new(pd().purge_store(5).to_owned(), offline_spec).await;
        kit.status(|st| (st.id, st.state) = (Some("5".into()), Some(StoreState::Removing))).await;
        let (s, _) = kit.pass([leaders(Leaders::Stay), offline()]).await;
        assert_eq!(condition(&s).0, "True");
        assert!(s.store_removed());

        let kit = Kit::new(pd().purge_store(5).to_owned(), offline_spec).await;
        kit.status(|st| (st.id, st.state) = (Some("5".into()), Some(StoreState::Serving))).await;
        let (s, report) = kit.pass([leaders(Leaders::Stay), offline()]).await;
        assert_eq!(report.entry("offline").unwrap().kind(), Some(OutcomeKind::Wait), "{report}");
        let (status, reason, message) = condition(&s);
        assert_eq!((status.as_str(), reason.as_str()), ("False", reasons::STORE_NOT_EXIST));
        assert!(message.contains("never seen leaving"), "{message}");
        assert!(!s.store_removed());
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn an_instance_that_never_registered_a_store_has_nothing_to_take_offline() {
        let kit = Kit::new(FakePd::bootstrapped().store(6, "tikv-b:20160", NodeState::Serving), offline_spec).await;
        let (s, _) = kit.pass([leaders(Leaders::Stay), offline()]).await;
        assert_eq!(condition(&s).0, "True");
        assert!(condition(&s).2.contains("holds no data"));
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_store_that_stays_gets_no_offlined_condition_and_no_write() {
        let kit = Kit::new(pd(), |_| {}).await;
        kit.pass([leaders(Leaders::Stay), offline()]).await;
        let (s, _) = kit.pass([leaders(Leaders::Stay), offline()]).await;
        assert!(find_condition(&s.pass.status.common.conditions, types::OFFLINED).is_none());
        assert_eq!((kit.env.write_log(), kit.pd.write_log()), (vec![], vec![]));
    }
}
