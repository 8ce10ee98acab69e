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

use tikv_operator_api::condition::{find_condition, reasons, types};
use tikv_operator_api::tikv::DrainProgress;
use tikv_operator_pd::{NodeState, PdError};
use tikv_operator_task::{Node, Outcome, task};

use crate::tikv::state::{Leaders, Refusal, StoreView, TikvState};

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
        (false, NodeState::Removing) => cancel(s, id).await,
        (false, _) => {
            s.pass.status.offline = None;
            if shown_reason(s).is_some_and(|r| r != reasons::OFFLINE_CANCELED) {
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
        Leaders::Stay => return Outcome::wait(format!("the leaders of store {id} are not known to be evicted")),
    }
    if let Err(Refusal { reason, message }) = s.destructive_allowed() {
        s.pass.set_condition(types::OFFLINED, false, reason, format!("store {id} is not taken offline yet: {message}"));
        return Outcome::wait(message);
    }
    let Some(pd) = s.pass.pd() else {
        return Outcome::wait("the cluster's PD is not registered");
    };
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
            if shown_reason(s) != Some(reasons::OFFLINE_REFUSED) {
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
    if shown_reason(s) != Some(reasons::OFFLINE_COMPLETED) {
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

/// The reason of `Offlined` in the status as read (what was announced before).
fn shown_reason(s: &TikvState) -> Option<&str> {
    let status = s.pass.object.as_ref()?.status.as_ref()?;
    find_condition(&status.common.conditions, types::OFFLINED).map(|c| c.reason.as_str())
}
