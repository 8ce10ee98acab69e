//! `evict_leaders`: a reconcile of "someone needs this store's leaders gone" (the
//! instance is leaving PD: `spec.offline`, or deleted) against "PD has an evict-leader
//! entry for this store".
//!
//! The intent is recorded before PD is asked: the instance is annotated
//! `core.tikv.org/evict-leader-store: <id>` and only then is the store added to PD's
//! evict-leader scheduler, so a crash between the two cannot leak an entry (the next
//! pass finds the annotation and adds again: adding is idempotent). Only entries so
//! recorded are ever removed; an entry PD shows for the store that the operator did not
//! record belongs to someone else (an SRE's pd-ctl): it is used, never removed, and the
//! condition says so. An entry is removed once nobody needs it (the offline was
//! cancelled, the store is removed or gone, the instance deleted), then the annotation.
//!
//! Progress: the leader count is kept in `status.eviction`; when it has not fallen for
//! the template's `evictLeaderStallTimeout`, `LeadersEvicted` is False with
//! `EvictionStalled` (and a Warning event) — whoever waits for the leaders keeps waiting,
//! and goes on as soon as they move again. Where eviction cannot work (no other Up
//! store, `max-replicas` 1) it is skipped and the condition says why.
//!
//! Reads: the PD view `store` read, the instance's annotation. Writes: the annotation
//! (merge patch with the resourceVersion), PD's evict-leader scheduler (add; remove only
//! after the safety contract's checks: the right PD and a fresh view). Outcomes:
//! Complete; Retry every few seconds while leaders move (their count brings no event);
//! Wait for a fresh view; Fail on an unexpected API or PD error.

use std::time::Duration;

use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::json;
use tikv_operator_api::TiKV;
use tikv_operator_api::condition::{find_condition, reasons, types};
use tikv_operator_api::names::ANNOTATION_EVICT_LEADER_STORE;
use tikv_operator_api::tikv::DrainProgress;
use tikv_operator_pd::{NodeState, PdView};
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::patch_params;
use crate::error::is_conflict;
use crate::tikv::state::{Leaders, Refusal, StoreView, TikvState};

/// How often leader counts are looked at while they move.
pub const EVICTION_RECHECK: Duration = Duration::from_secs(5);

pub fn evict_leaders() -> Node<TikvState> {
    task("evict_leaders", |s: &mut TikvState| Box::pin(run(s)))
}

/// The store ID the instance records an entry of ours for.
fn recorded(s: &TikvState) -> Option<u64> {
    s.pass.object.as_ref()?.annotations().get(ANNOTATION_EVICT_LEADER_STORE)?.parse().ok()
}

/// Why eviction cannot work for `id` in this view, if it cannot.
fn impossible(view: &PdView, id: u64) -> Option<String> {
    if view.replication.max_replicas <= 1 {
        return Some("max-replicas is 1: a leader has no follower to move to".into());
    }
    let others_up =
        view.stores.values().filter(|s| s.id != id && !s.is_tiflash() && s.is_up_and_heartbeating()).count();
    (others_up == 0).then(|| "no other store is Up to take the leaders".into())
}

async fn run(s: &mut TikvState) -> Outcome {
    let recorded = recorded(s);
    // The store whose leaders are wanted gone this pass, with its view.
    let wanted = match &s.store {
        StoreView::Found(store, observed) if s.leaving() && store.node_state != NodeState::Removed => {
            Some((store.id, observed.clone()))
        }
        _ => None,
    };
    if let Some(old) = recorded.filter(|r| wanted.as_ref().is_none_or(|(id, _)| id != r)) {
        return remove_ours(s, old).await;
    }
    let Some((id, observed)) = wanted else {
        clear_progress(s);
        return Outcome::complete(match s.store.observed() {
            Some(view) if s.store_id().is_some_and(|id| view.view.is_evicting_leaders(id)) => {
                "not needed; the store's entry is someone else's and stays"
            }
            _ => "not needed",
        });
    };
    if let Some(why) = impossible(&observed.view, id) {
        s.leaders = Leaders::CannotMove;
        s.pass.status.eviction = None;
        let message = format!("leaders of store {id} are not evicted: {why}");
        s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::EVICTION_NOT_POSSIBLE, message.clone());
        return Outcome::complete(message);
    }
    let present = observed.view.is_evicting_leaders(id);
    let ours = recorded == Some(id);
    if present && !ours {
        // Someone else's entry, or ours but the view predates a removal we made: only a
        // fresh view may say which.
        if !observed.is_fresh() {
            return Outcome::wait(format!(
                "store {id} shows an evict-leader entry the operator did not record; waiting for a fresh view"
            ));
        }
        return progress(s, id, &observed.view, " (by an evict-leader entry the operator did not add: it stays)").await;
    }
    if !ours && let Err(outcome) = annotate(s, Some(id)).await {
        return outcome;
    }
    if !present {
        let Some(pd) = s.pass.pd() else {
            return Outcome::wait("the cluster's PD is not registered");
        };
        if let Err(error) = pd.add_evict_leader(id).await {
            return Outcome::fail(error);
        }
        if !ours {
            s.pass.event("EvictionStarted", "EvictLeaders", format!("moving the leaders off store {id}")).await;
        }
    }
    progress(s, id, &observed.view, "").await
}

/// Records the leaders left, judges a stall, and sets `LeadersEvicted`.
async fn progress(s: &mut TikvState, id: u64, view: &PdView, whose: &str) -> Outcome {
    let left = view.store(id).map_or(0, |store| store.leader_count);
    let now = s.pass.ctx.now();
    let drain = DrainProgress::record(&mut s.pass.status.eviction, left, now);
    let (start, still_for) = (drain.start, now.duration_since(drain.last_fall_at.0));
    let key = s.pass.key();
    if left == 0 {
        s.leaders = Leaders::Evicted;
        let message = format!("store {id} holds no leaders{whose}");
        if shown_reason(s).as_deref() != Some(reasons::EVICTED) {
            s.pass.event("EvictionDone", "EvictLeaders", message.clone()).await;
        }
        s.pass.set_condition(types::LEADERS_EVICTED, true, reasons::EVICTED, message.clone());
        return Outcome::complete(message);
    }
    s.leaders = Leaders::Moving(left);
    if let Some(pd) = s.pass.pd() {
        s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "leaders to move");
    }
    let timeout = s.pass.object.as_ref().map(|t| t.spec.template.evict_leader_stall_timeout()).unwrap_or_default();
    let stalled = still_for.as_secs() >= i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    if stalled {
        let message = format!(
            "{left} of {start} leaders still on store {id}{whose}; none moved for {}s (evictLeaderStallTimeout {}s); still waiting",
            still_for.as_secs(),
            timeout.as_secs()
        );
        if shown_reason(s).as_deref() != Some(reasons::EVICTION_STALLED) {
            s.pass.warning("EvictionStalled", "EvictLeaders", message.clone()).await;
        }
        s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::EVICTION_STALLED, message.clone());
        return Outcome::retry(EVICTION_RECHECK, message);
    }
    let message = format!("{left} of {start} leaders left on store {id}{whose}");
    s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::EVICTING, message.clone());
    Outcome::retry(EVICTION_RECHECK, message)
}

/// Removes the entry recorded for store `id` (nobody needs it any more), then the record.
async fn remove_ours(s: &mut TikvState, id: u64) -> Outcome {
    let observed = match s.destructive_allowed() {
        Ok(observed) => observed.clone(),
        Err(Refusal { reason, message }) => {
            s.pass.not_synced(reason, format!("the evict-leader entry of store {id} is kept for now: {message}"));
            return Outcome::wait(format!("entry of store {id} kept: {message}"));
        }
    };
    if observed.view.is_evicting_leaders(id) {
        let Some(pd) = s.pass.pd() else {
            return Outcome::wait("the cluster's PD is not registered");
        };
        match pd.remove_evict_leader(id).await {
            Ok(_) => {}
            Err(error) if error.is_not_found() => {}
            Err(error) => return Outcome::fail(error),
        }
        s.pass.event("EvictionEnded", "EvictLeaders", format!("removed the evict-leader entry of store {id}")).await;
    }
    if let Err(outcome) = annotate(s, None).await {
        return outcome;
    }
    clear_progress(s);
    Outcome::complete(format!("removed the evict-leader entry of store {id}"))
}

/// The reason of `LeadersEvicted` in the status as read (what was announced before).
fn shown_reason(s: &TikvState) -> Option<String> {
    let status = s.pass.object.as_ref()?.status.as_ref()?;
    find_condition(&status.common.conditions, types::LEADERS_EVICTED).map(|c| c.reason.clone())
}

/// No eviction asked for: forget its progress and say so where a condition was shown.
fn clear_progress(s: &mut TikvState) {
    s.pass.status.eviction = None;
    let shown = find_condition(&s.pass.status.common.conditions, types::LEADERS_EVICTED)
        .is_some_and(|c| c.reason != reasons::NOT_EVICTED);
    if shown {
        s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::NOT_EVICTED, "no eviction is asked for");
    }
}

/// Sets (or, with `None`, removes) the record of our entry on the instance.
async fn annotate(s: &mut TikvState, id: Option<u64>) -> Result<(), Outcome> {
    let Some(tikv) = &s.pass.object else {
        return Err(Outcome::complete("no instance"));
    };
    let patch = json!({"metadata": {
        "annotations": {ANNOTATION_EVICT_LEADER_STORE: id.map(|id| id.to_string())},
        "resourceVersion": tikv.resource_version(),
    }});
    let api: Api<TiKV> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
    match api.patch(&s.pass.name, &patch_params(), &Patch::Merge(&patch)).await {
        Ok(patched) => {
            s.pass.object = Some(patched);
            Ok(())
        }
        Err(error) if is_conflict(&error) => {
            Err(Outcome::retry(Duration::from_secs(1), "the instance changed since it was read; retrying"))
        }
        Err(error) => Err(Outcome::fail(error)),
    }
}
