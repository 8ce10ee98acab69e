//! `evict_leaders`: a reconcile of "someone needs this store's leaders gone" (the
//! instance is leaving PD: `spec.offline`, or deleted; or its Pod is restarted: to be
//! recreated, deleted by anyone, or restarted and its new process not serving yet)
//! against "PD has an evict-leader entry for this store".
//!
//! The intent is recorded before PD is asked: the instance is annotated
//! `core.tikv.org/evict-leader-store: <id>` and only then is the store added to PD's
//! evict-leader scheduler, so a crash between the two cannot leak an entry (the next
//! pass finds the annotation, confirms it on the live object, and adds again: adding is
//! idempotent). Only entries so
//! recorded are ever removed; an entry PD shows for the store that the operator did not
//! record belongs to someone else (an SRE's pd-ctl): it is used, never removed, and the
//! condition says so. An entry is removed once nobody needs it (the offline was
//! cancelled, the store is removed or gone, the instance deleted), then the annotation.
//!
//! Progress: the leader count is kept in `status.eviction`; when it has not fallen for
//! the template's `evictLeaderStallTimeout`, `LeadersEvicted` is False with
//! `EvictionStalled` (and a Warning event) — whoever waits for the leaders keeps waiting,
//! and goes on as soon as they move again. Where eviction cannot work (no other Up
//! store, `max-replicas` 1) it is skipped and the condition says why. It is not started
//! while PD could not take the store offline anyway (too few other Up stores for
//! max-replicas, as when a store is deleted before its replacement is Up): moving the
//! leaders would only disturb the cluster.
//!
//! Reads: the PD view `store` read, the instance's annotation. Writes: the annotation
//! (merge patch with the resourceVersion), PD's evict-leader scheduler (add; remove only
//! after the safety contract's checks: the right PD and a fresh view). Outcomes:
//! Complete; Retry every few seconds while leaders move (their count brings no event);
//! Wait for a fresh view; Fail on an unexpected API or PD error.

use kube::ResourceExt;
use tikv_operator_api::TiKV;
use tikv_operator_api::condition::{find_condition, reasons, types};
use tikv_operator_api::names::ANNOTATION_EVICT_LEADER_STORE;
use tikv_operator_api::tikv::DrainProgress;
use tikv_operator_pd::{NodeState, PdView};
use tikv_operator_task::{Node, Outcome, task};

use crate::tikv::state::{Leaders, Refusal, StoreView, TikvState, eviction_room};

pub fn evict_leaders() -> Node<TikvState> {
    task("evict_leaders", |s: &mut TikvState| Box::pin(run(s)))
}

/// The store ID the instance records an entry of ours for.
fn recorded(s: &TikvState) -> Option<u64> {
    record_of(s.pass.object.as_ref()?)
}

/// The cluster's other TiKV instances, from the cache.
fn others(s: &TikvState) -> Vec<std::sync::Arc<TiKV>> {
    let Some(cluster) = s.pass.object.as_ref().map(|t| t.spec.cluster.name.clone()) else {
        return Vec::new();
    };
    let selector = std::collections::BTreeMap::from([(tikv_operator_api::names::LABEL_CLUSTER.to_string(), cluster)]);
    let mut others = s.pass.ctx.caches.list::<TiKV>(&s.pass.namespace, &selector);
    others.retain(|t| t.metadata.name.as_deref() != Some(s.pass.name.as_str()));
    others
}

/// The store an instance records an entry of ours for.
fn record_of(t: &TiKV) -> Option<u64> {
    t.annotations().get(ANNOTATION_EVICT_LEADER_STORE)?.parse().ok()
}

/// The stores the operator evicts for the cluster's other instances (their records).
fn ours_elsewhere(s: &TikvState) -> Vec<u64> {
    others(s).iter().filter_map(|t| record_of(t)).collect()
}

/// The stores whose leaders the operator moves off for a restart of another instance
/// of the cluster (recorded on an instance that is not leaving), still in PD.
fn restarting_elsewhere(s: &TikvState, view: &PdView) -> Vec<u64> {
    others(s)
        .iter()
        .filter(|t| !t.spec.offline && t.metadata.deletion_timestamp.is_none())
        .filter_map(|t| record_of(t))
        .filter(|id| view.store(*id).is_some_and(|st| st.node_state != NodeState::Removed))
        .collect()
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
    let leaving = s.leaving();
    let wanted = match &s.store {
        StoreView::Found(store, observed)
            if (leaving || s.restart_needs_leaders_gone()) && store.node_state != NodeState::Removed =>
        {
            Some((store.id, observed.clone()))
        }
        _ => None,
    };
    if let Some(old) = recorded.filter(|r| wanted.as_ref().is_none_or(|(id, _)| id != r)) {
        return remove_ours(s, old).await;
    }
    let Some((id, mut observed)) = wanted else {
        clear_progress(s);
        return Outcome::complete(match s.store.observed() {
            Some(view) if s.store_id().is_some_and(|id| view.view.is_evicting_leaders(id)) => {
                "not needed; the store's entry is someone else's and stays"
            }
            _ => "not needed",
        });
    };
    if recorded != Some(id)
        && !observed.is_fresh()
        && let Some(now) = s.read_pd_now().await
    {
        observed = now;
    }
    if let Some(why) = impossible(&observed.view, id) {
        s.leaders = Leaders::CannotMove;
        s.pass.status.eviction = None;
        let message = format!("leaders of store {id} are not evicted: {why}");
        s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::EVICTION_NOT_POSSIBLE, message.clone());
        return Outcome::complete(message);
    }
    let present = observed.view.is_evicting_leaders(id);
    let ours = recorded == Some(id);
    // The room rule is the offline's: a restart's eviction takes no store out of PD.
    // A restart the operator chooses does not start its eviction while the rest of the
    // cluster could not spare the store (the restart would be held anyway, the store
    // left without leaders). A Pod already going (deleted by anyone) has them moved now.
    let chosen = !s.parts.pod.as_ref().is_some_and(crate::common::instance::pod_terminating);
    // Nor while the leaders of another store are moved off for its own restart: two
    // stores without leaders at once is what a restart budget of one keeps from
    // happening, whatever the group planned (an instance that looked unavailable, as
    // when PD could not be read, is updated outside the budget). Of two that started
    // together (each before the other's record showed), the lower store ID keeps its
    // eviction and the other gives its leaders back (unless its restart has begun).
    let restarting = if !leaving && chosen { restarting_elsewhere(s, &observed.view) } else { Vec::new() };
    let restart_begun = s.restart_record().is_some();
    if ours
        && !restart_begun
        && let Some(other) = restarting.iter().copied().filter(|other| *other < id).min()
    {
        let outcome = remove_ours(s, id).await;
        if outcome.kind() != tikv_operator_task::OutcomeKind::Complete {
            return outcome;
        }
        s.leaders = Leaders::NotYet;
        let message = format!(
            "leaders of store {id} are given back until the rest of the cluster can spare it: the leaders of store \
             {other} are moved off for its restart"
        );
        s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::NOT_EVICTED, message.clone());
        return Outcome::retry(s.pass.ctx.timing().eviction_recheck, message);
    }
    let unspared = || {
        s.others_unhealthy(&observed.view, id).or_else(|| {
            restarting.iter().min().map(|other| format!("the leaders of store {other} are moved off for its restart"))
        })
    };
    if !leaving
        && chosen
        && !ours
        && !present
        && let Some(why) = unspared()
    {
        s.leaders = Leaders::NotYet;
        let message = format!("leaders of store {id} stay until the rest of the cluster can spare it: {why}");
        s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::NOT_EVICTED, message.clone());
        return Outcome::retry(s.pass.ctx.timing().eviction_recheck, message);
    }
    let blocker = if leaving { eviction_room(&observed.view, id, &ours_elsewhere(s), ours) } else { None };
    if let Some(why) = blocker {
        // Not started, or (ours, PD could no longer take the store offline) given back:
        // a store is not kept without leaders for an offline that cannot happen.
        if ours && present {
            let outcome = remove_ours(s, id).await;
            if outcome.kind() != tikv_operator_task::OutcomeKind::Complete {
                return outcome;
            }
        }
        s.leaders = Leaders::NotYet;
        let message = format!("leaders of store {id} stay until PD could take it offline: {why}");
        s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::NOT_ENOUGH_STORES, message.clone());
        return Outcome::wait(message);
    }
    if present && !ours {
        // Someone else's entry, or ours but the view predates a removal we made: only a
        // fresh view may say which.
        if !observed.is_fresh() {
            let message =
                format!("store {id} shows an evict-leader entry the operator did not record; waiting for a fresh view");
            return s.pass.retry_for_fresh_view(message);
        }
        return progress(s, id, &observed.view, " (by an evict-leader entry the operator did not add: it stays)").await;
    }
    if !ours && let Err(outcome) = annotate(s, Some(id)).await {
        return outcome;
    }
    if !present {
        if ours && !observed.is_fresh() {
            // Recorded but not in this view: added by a pass whose write the view may
            // predate. A fresh view tells "added" from "lost in a crash before the POST".
            s.leaders = Leaders::Moving(observed.view.store(id).map_or(0, |st| st.leader_count));
            let message = format!("the evict-leader entry of store {id} is recorded; waiting for a fresh view");
            return s.pass.retry_for_fresh_view(message);
        }
        // The record was read from the cache, which may still show one a previous pass
        // took back after removing the entry: added on that, the entry would outlive
        // its record and be taken for someone else's. The record is confirmed on the
        // object as read (a patch at its resourceVersion conflicts if it changed since).
        if ours && let Err(outcome) = annotate(s, Some(id)).await {
            return outcome;
        }
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
        if s.pass.reason_as_read(types::LEADERS_EVICTED) != Some(reasons::EVICTED) {
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
        if s.pass.reason_as_read(types::LEADERS_EVICTED) != Some(reasons::EVICTION_STALLED) {
            s.pass.warning("EvictionStalled", "EvictLeaders", message.clone()).await;
        }
        s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::EVICTION_STALLED, message.clone());
        return Outcome::retry(s.pass.ctx.timing().eviction_recheck, message);
    }
    let message = format!("{left} of {start} leaders left on store {id}{whose}");
    s.pass.set_condition(types::LEADERS_EVICTED, false, reasons::EVICTING, message.clone());
    Outcome::retry(s.pass.ctx.timing().eviction_recheck, message)
}

/// Removes the entry recorded for store `id` (nobody needs it any more), then the record.
async fn remove_ours(s: &mut TikvState, id: u64) -> Outcome {
    let observed = match s.destructive_allowed() {
        Ok(observed) => observed.clone(),
        Err(Refusal { reason, message }) => {
            s.pass.not_synced(reason, format!("the evict-leader entry of store {id} is kept for now: {message}"));
            return Refusal::outcome(&s.pass, reason, format!("entry of store {id} kept: {message}"));
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
    s.annotate(ANNOTATION_EVICT_LEADER_STORE, id.map(|id| id.to_string())).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePd, t0};
    use crate::tikv::tasks::testkit::{ADDR, Kit, four_stores, not_running, running};
    use serde_json::json;
    use std::time::Duration;
    use tikv_operator_api::condition::find_condition;
    use tikv_operator_api::names::ANNOTATION_RESTART;
    use tikv_operator_pd::{NodeState, PdError, Subject};
    use tikv_operator_task::OutcomeKind;

    /// Store 5 is this instance's, with 4 leaders; stores 6, 7 and 8 can take them and
    /// keep max-replicas 3 once it is gone.
    fn pd() -> FakePd {
        four_stores().counts(5, 4, 10)
    }

    fn offline(tikv: &mut TiKV) {
        tikv.spec.offline = true;
    }

    fn annotated(tikv: &mut TiKV) {
        tikv.spec.offline = true;
        tikv.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "5".to_string())].into());
    }

    fn condition(s: &TikvState) -> (String, String, String) {
        let c = find_condition(&s.pass.status.common.conditions, types::LEADERS_EVICTED).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    #[tokio::test]
    async fn the_intent_is_recorded_before_pd_is_asked() {
        let kit = Kit::new(pd(), offline).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"], "{report}");
        assert_eq!(kit.pd.write_log(), ["add_evict_leader(5)"]);
        assert_eq!(kit.live().await.annotations().get(ANNOTATION_EVICT_LEADER_STORE).map(String::as_str), Some("5"));
        assert_eq!(s.leaders, Leaders::Moving(4));
        assert_eq!(condition(&s), ("False".into(), reasons::EVICTING.into(), "4 of 4 leaders left on store 5".into()));
        assert_eq!(report.entry("evict_leaders").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        let events = kit.env.events().await;
        assert!(events.iter().any(|(_, reason, _)| reason == "EvictionStarted"), "{events:?}");

        // Nothing new to do while they move: no write but progress.
        let (s, _) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]));
        assert_eq!(s.leaders, Leaders::Moving(4));
    }

    #[tokio::test]
    async fn a_crash_between_the_annotation_and_the_post_adds_the_entry_on_the_next_pass() {
        let kit = Kit::new(pd(), annotated).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"], "the record confirmed: {report}");
        assert_eq!(kit.pd.write_log(), ["add_evict_leader(5)"]);
        assert_eq!(s.leaders, Leaders::Moving(4));
    }

    #[tokio::test]
    async fn a_record_taken_back_since_the_cache_read_it_adds_no_entry() {
        // Chaos seed 4029: a pass removed the entry, then the record; the next pass read
        // the instance from a cache still showing the record and added the entry again,
        // which then outlived its record for good.
        let kit = Kit::new(pd(), annotated).await;
        kit.env.synced().await;
        // The caches will not see the record go for a (simulated) hour.
        kit.env.sim.faults().set_watch_delay(Duration::from_secs(3600));
        kit.patch(json!({"metadata": {"annotations": {ANNOTATION_EVICT_LEADER_STORE: null}}})).await;
        kit.handle.cache.refresh().await.unwrap();

        let (_, report) = kit.pass_from_caches([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "no entry without a record: {report}");
        assert_eq!(report.entry("evict_leaders").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        assert!(!kit.live().await.annotations().contains_key(ANNOTATION_EVICT_LEADER_STORE));
    }

    #[tokio::test]
    async fn a_recorded_entry_missing_from_a_view_older_than_the_last_write_is_not_added_again() {
        let kit = Kit::new(pd(), annotated).await;
        kit.handle.cache.note_write();
        let (s, report) = kit.pass_as_is([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::Moving(4), "still waiting for the leaders");
    }

    #[tokio::test]
    async fn no_leaders_left_is_evicted_and_announced_once() {
        let kit = Kit::new(pd().evicting_leaders(5).counts(5, 0, 10), annotated).await;
        kit.status(|st| st.id = Some("5".into())).await;
        let (s, _) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]));
        assert_eq!(s.leaders, Leaders::Evicted);
        assert_eq!(condition(&s), ("True".into(), reasons::EVICTED.into(), "store 5 holds no leaders".into()));
        assert_eq!(kit.env.event_writes().await, 1);
        kit.pass([evict_leaders()]).await;
        assert_eq!(kit.env.event_writes().await, 0, "announced once");
        assert_eq!(kit.env.write_log(), Vec::<String>::new(), "a pass with nothing to do writes nothing");
    }

    #[tokio::test]
    async fn an_entry_someone_else_added_is_used_and_never_removed() {
        let kit = Kit::new(pd().evicting_leaders(5), offline).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::Moving(4));
        assert!(condition(&s).2.contains("the operator did not add: it stays"), "{:?}", condition(&s));

        // The offline is cancelled: the SRE's entry stays.
        kit.patch(json!({"spec": {"offline": false}})).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(kit.pd.evicting(), [5].into());
        assert_eq!(s.leaders, Leaders::Stay);
        assert_eq!(condition(&s).1, reasons::NOT_EVICTED);
    }

    #[tokio::test]
    async fn an_unrecorded_entry_in_a_stale_view_waits_for_a_fresh_one() {
        let kit = Kit::new(pd().evicting_leaders(5), offline).await;
        kit.handle.cache.note_write();
        // PD does not answer the read the pass makes: the stale view decides nothing.
        kit.pd.unreachable(true);
        let (s, report) = kit.pass_as_is([evict_leaders()]).await;
        assert_eq!(report.entry("evict_leaders").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]));
        assert_eq!(s.leaders, Leaders::Stay);

        // PD answers: the pass reads it now and goes by what it says (someone else's entry).
        kit.pd.unreachable(false);
        kit.handle.cache.note_write();
        let (s, report) = kit.pass_as_is([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::Moving(4));
    }

    #[tokio::test]
    async fn ours_is_removed_when_nobody_needs_it_then_the_record() {
        let kit = Kit::new(pd().evicting_leaders(5), |t| {
            annotated(t);
            t.spec.offline = false;
        })
        .await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"]);
        assert!(kit.live().await.annotations().get(ANNOTATION_EVICT_LEADER_STORE).is_none());
        assert!(kit.pd.evicting().is_empty());
        assert_eq!(s.pass.status.eviction, None);
    }

    #[tokio::test]
    async fn removing_an_entry_pd_no_longer_has_is_success() {
        let kit = Kit::new(pd().evicting_leaders(5), |t| {
            annotated(t);
            t.spec.offline = false;
        })
        .await;
        kit.pd.fail_next(
            "remove_evict_leader",
            PdError::NotFound { subject: Subject::EvictLeader(5), message: "the config does not exist".into() },
        );
        let (_, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"], "the record goes");
    }

    #[tokio::test]
    async fn ours_stays_while_the_view_is_stale_or_pd_is_another() {
        let kit = Kit::new(pd().evicting_leaders(5), |t| {
            annotated(t);
            t.spec.offline = false;
        })
        .await;
        kit.handle.cache.note_write();
        let (s, report) = kit.pass_as_is([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::PD_VIEW_NOT_FRESH, "{:?}", s.pass.unsynced);

        let clusters: kube::Api<tikv_operator_api::Cluster> = kube::Api::namespaced(kit.env.client.clone(), "default");
        let mut cluster = clusters.get("basic").await.unwrap();
        cluster.status.get_or_insert_default().id = Some("1".into());
        clusters.replace_status("basic", &Default::default(), &cluster).await.unwrap();
        let (s, _) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]));
        assert_eq!(s.pass.unsynced[0].reason, reasons::CLUSTER_ID_MISMATCH);
    }

    #[tokio::test]
    async fn an_entry_is_removed_once_the_store_is_removed() {
        let pd = pd().evicting_leaders(5);
        pd.set_node_state(5, NodeState::Removed);
        let kit = Kit::new(pd, annotated).await;
        kit.status(|st| st.id = Some("5".into())).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"]);
        assert_eq!(s.leaders, Leaders::Stay);
    }

    #[tokio::test]
    async fn a_stall_is_reported_and_progress_resumes_it() {
        let kit = Kit::new(pd().evicting_leaders(5), |t| {
            annotated(t);
            t.spec.template.evict_leader_stall_timeout = Some("2m".into());
        })
        .await;
        kit.pass([evict_leaders()]).await;
        kit.env.clock.advance(Duration::from_secs(90));
        kit.pd.set_store(5, |st| st.leader_count = 3);
        let (s, _) = kit.pass([evict_leaders()]).await;
        assert_eq!(condition(&s).1, reasons::EVICTING, "fell 90 s in");

        kit.env.clock.advance(Duration::from_secs(119));
        let (s, _) = kit.pass([evict_leaders()]).await;
        assert_eq!(condition(&s).1, reasons::EVICTING, "119 s without a fall is not yet a stall");
        kit.env.clock.advance(Duration::from_secs(1));
        let (s, report) = kit.pass([evict_leaders()]).await;
        let (status, reason, message) = condition(&s);
        assert_eq!((status.as_str(), reason.as_str()), ("False", reasons::EVICTION_STALLED), "{report}");
        assert!(message.starts_with("3 of 4 leaders still on store 5; none moved for 120s"), "{message}");
        assert_eq!(s.leaders, Leaders::Moving(3), "whoever waits keeps waiting");
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "nothing is forced");
        let warnings: Vec<_> = kit.env.events().await.into_iter().filter(|(t, _, _)| t == "Warning").collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        kit.env.clock.advance(Duration::from_secs(30));
        kit.pass([evict_leaders()]).await;
        let warnings = kit.env.events().await.into_iter().filter(|(t, _, _)| t == "Warning").count();
        assert_eq!(warnings, 1, "a stall is announced once");

        kit.pd.set_store(5, |st| st.leader_count = 1);
        let (s, _) = kit.pass([evict_leaders()]).await;
        assert_eq!(condition(&s), ("False".into(), reasons::EVICTING.into(), "1 of 4 leaders left on store 5".into()));
    }

    #[tokio::test]
    async fn eviction_is_skipped_where_it_cannot_work() {
        let kit = Kit::new(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), offline).await;
        let (s, _) = kit.pass([evict_leaders()]).await;
        assert_eq!(s.leaders, Leaders::CannotMove);
        let (_, reason, message) = condition(&s);
        assert_eq!(reason, reasons::EVICTION_NOT_POSSIBLE);
        assert!(message.ends_with("no other store is Up to take the leaders"), "{message}");
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]));

        let kit = Kit::new(pd().replication(1, &[]), offline).await;
        let (s, _) = kit.pass([evict_leaders()]).await;
        assert_eq!(s.leaders, Leaders::CannotMove);
        assert!(condition(&s).2.contains("max-replicas is 1"));
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn leaders_stay_while_pd_could_not_take_the_store_offline() {
        // Three stores and max-replicas 3: the replacement must be Up first.
        let kit = Kit::new(pd().purge_store(8).to_owned(), offline).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::NotYet);
        let (_, reason, message) = condition(&s);
        assert_eq!(reason, reasons::NOT_ENOUGH_STORES);
        assert!(
            message.ends_with(
                "3 Up stores and max-replicas 3 let 0 leave at a time, and 0 other leaving stores hold that place"
            ),
            "{message}"
        );

        // With a fourth store, eviction starts.
        let kit2 = Kit::new(pd(), offline).await;
        let (s, _) = kit2.pass([evict_leaders()]).await;
        assert_eq!(kit2.pd.write_log(), ["add_evict_leader(5)"]);
        assert_eq!(s.leaders, Leaders::Moving(4));
    }

    /// Another instance of the cluster whose store `id` the operator evicts.
    async fn leaving_elsewhere(kit: &Kit, name: &str, id: u64) {
        let mut other = crate::testing::sample_tikv(name, "tikv");
        other.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), id.to_string())].into());
        kit.env.create(other).await;
    }

    #[tokio::test]
    async fn stores_leaving_together_evict_one_after_the_other_and_someone_elses_entry_does_not_count() {
        // Four stores, max-replicas 3: one may leave at a time, and store 6 is leaving.
        let kit = Kit::new(pd().evicting_leaders(6), offline).await;
        leaving_elsewhere(&kit, "tikv-other", 6).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::NotYet);
        assert!(condition(&s).2.contains("let 1 leave at a time, and 1 other leaving stores hold that place"));

        // An SRE's entry on store 6 (no instance records it) takes no place.
        let kit = Kit::new(pd().evicting_leaders(6), offline).await;
        let (s, _) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), ["add_evict_leader(5)"]);
        assert_eq!(s.leaders, Leaders::Moving(4));
    }

    #[tokio::test]
    async fn an_eviction_pd_could_no_longer_follow_with_an_offline_is_given_back() {
        // Ours, but only two other stores remain Up: PD would refuse the offline.
        let kit = Kit::new(pd().evicting_leaders(5).purge_store(8).to_owned(), annotated).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"], "the record goes too");
        assert_eq!(s.leaders, Leaders::NotYet);
        assert_eq!(condition(&s).1, reasons::NOT_ENOUGH_STORES);
    }

    #[tokio::test]
    async fn of_evictions_started_together_the_lowest_ids_keep_theirs() {
        // Four stores, max-replicas 3: one may leave at a time. Stores 5 and 6 both
        // started; 5 has the lower ID and keeps its eviction.
        let kit = Kit::new(pd().evicting_leaders(5).evicting_leaders(6), annotated).await;
        leaving_elsewhere(&kit, "tikv-other", 6).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::Moving(4));

        // Store 4 (lower ID) instead: 4 goes first, 5 gives its eviction back.
        let pd = pd().store(4, "tikv-e:20160", NodeState::Serving).evicting_leaders(5).evicting_leaders(4);
        let kit = Kit::new(pd.purge_store(8).to_owned(), annotated).await;
        leaving_elsewhere(&kit, "tikv-other", 4).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "store 4 goes first: {report}");
        assert_eq!(s.leaders, Leaders::NotYet);
        assert!(condition(&s).2.contains("1 other leaving stores hold that place"), "{:?}", condition(&s));
    }

    #[tokio::test]
    async fn a_store_already_removing_keeps_its_eviction() {
        // Three others Up, store 5 Removing: it no longer counts as Up, and holds its place.
        let kit = Kit::new(pd().evicting_leaders(5).counts(5, 0, 10), annotated).await;
        kit.pd.set_node_state(5, NodeState::Removing);
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::Evicted);
    }

    /// This instance with its Pod running, and its version changed since: only a
    /// restart applies it.
    async fn outdated(pd: FakePd) -> Kit {
        let kit = Kit::new(pd, |_| {}).await;
        kit.running_pod().await;
        kit.patch(json!({"spec": {"version": "v8.5.1"}})).await;
        kit
    }

    #[tokio::test]
    async fn a_pod_that_needs_a_restart_has_its_leaders_evicted_whatever_room_an_offline_would_have() {
        // Three stores and max-replicas 3: no store could go offline, but a restart
        // takes none out of PD.
        let kit = outdated(pd().purge_store(8).to_owned()).await;
        // ... and not while another store has not been heard of for two heartbeats.
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::NotYet);
        let why =
            "leaders of store 5 stay until the rest of the cluster can spare it: store 6 has not sent a heartbeat";
        assert_eq!(condition(&s), ("False".into(), reasons::NOT_EVICTED.into(), why.into()));
        assert_eq!(
            report.entry("evict_leaders").unwrap().retry_after(),
            Some(crate::Timing::default().eviction_recheck)
        );

        kit.pd.set_store(6, |st| st.last_heartbeat = Some(crate::testing::t0()));
        kit.pd.set_store(7, |st| st.last_heartbeat = Some(crate::testing::t0()));
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"], "{report}");
        assert_eq!(kit.pd.write_log(), ["add_evict_leader(5)"]);
        assert_eq!(s.leaders, Leaders::Moving(4));
        assert_eq!(condition(&s), ("False".into(), reasons::EVICTING.into(), "4 of 4 leaders left on store 5".into()));

        // The spec goes back before the restart: the leaders are given back.
        kit.patch(json!({"spec": {"version": "v8.5.0"}})).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"]);
        assert_eq!(s.leaders, Leaders::Stay);
    }

    /// Found by the chaos harness (seed 11, upgrade during a scale-in, PD unreadable for
    /// a while): every instance looked unavailable, the group updated them all, and
    /// three of four stores had their leaders evicted at once for their restarts.
    #[tokio::test]
    async fn a_restart_eviction_waits_while_another_store_is_evicted_for_its_restart() {
        let kit = outdated(pd().purge_store(8).to_owned()).await;
        kit.pd.set_store(6, |st| st.last_heartbeat = Some(crate::testing::t0()));
        kit.pd.set_store(7, |st| st.last_heartbeat = Some(crate::testing::t0()));
        // Another instance (not leaving) records store 6 for its restart.
        leaving_elsewhere(&kit, "tikv-other", 6).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::NotYet);
        let why = "leaders of store 5 stay until the rest of the cluster can spare it: the leaders of store 6 are \
                   moved off for its restart";
        assert_eq!(condition(&s), ("False".into(), reasons::NOT_EVICTED.into(), why.into()));

        // A store leaving is no restart: its eviction does not hold this one.
        let kit = outdated(pd().purge_store(8).to_owned()).await;
        kit.pd.set_store(6, |st| st.last_heartbeat = Some(crate::testing::t0()));
        kit.pd.set_store(7, |st| st.last_heartbeat = Some(crate::testing::t0()));
        let mut other = crate::testing::sample_tikv("tikv-other", "tikv");
        other.spec.offline = true;
        other.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "6".to_string())].into());
        kit.env.create(other).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), ["add_evict_leader(5)"], "{report}");
        assert_eq!(s.leaders, Leaders::Moving(4));
    }

    /// This instance (not leaving) records store 5 for its restart, which its Pod still
    /// needs (its version changed).
    async fn restart_recorded(pd: FakePd) -> Kit {
        let kit = Kit::new(pd, |t| {
            t.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "5".to_string())].into());
        })
        .await;
        kit.running_pod().await;
        kit.patch(json!({"spec": {"version": "v8.5.1"}})).await;
        kit.pd.set_store(6, |st| st.last_heartbeat = Some(t0()));
        kit.pd.set_store(7, |st| st.last_heartbeat = Some(t0()));
        kit
    }

    #[tokio::test]
    async fn of_two_restart_evictions_started_together_the_lower_store_keeps_its_own() {
        let four = pd().store(4, "tikv-e:20160", NodeState::Serving).evicting_leaders(5).evicting_leaders(4);
        let kit = restart_recorded(four.purge_store(8).to_owned()).await;
        leaving_elsewhere(&kit, "tikv-other", 4).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "store 4 keeps its eviction: {report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"], "the record goes too");
        assert_eq!(s.leaders, Leaders::NotYet);
        assert_eq!(condition(&s).1, reasons::NOT_EVICTED);

        // With the other on a higher store ID, this one keeps its own.
        let kit = restart_recorded(pd().evicting_leaders(5).evicting_leaders(6).purge_store(8).to_owned()).await;
        leaving_elsewhere(&kit, "tikv-other", 6).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert_eq!(s.leaders, Leaders::Moving(4));
    }

    const POD: &str = "tikv-tikv-abc123";

    /// Someone deletes the instance's Pod; it terminates (its kubelet has yet to stop it).
    async fn delete_pod(kit: &Kit) {
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(kit.env.client.clone(), "default");
        api.delete(POD, &Default::default()).await.unwrap();
        kit.env.synced().await;
    }

    #[tokio::test]
    async fn a_terminating_pod_has_its_leaders_evicted_while_its_process_runs() {
        let kit = Kit::new(pd(), |_| {}).await;
        kit.running_pod().await;
        delete_pod(&kit).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"], "{report}");
        assert_eq!(kit.pd.write_log(), ["add_evict_leader(5)"]);
        assert_eq!(s.leaders, Leaders::Moving(4));

        // One whose process had stopped, nothing recording a restart: nobody needs the
        // leaders gone.
        let kit = Kit::new(pd(), |_| {}).await;
        kit.running_pod().await;
        kit.pod_status(POD, not_running(t0())).await;
        delete_pod(&kit).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert!(s.parts.pod.as_ref().is_some_and(crate::common::instance::pod_terminating), "{report}");
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::Stay);
    }

    #[tokio::test]
    async fn a_recorded_restart_keeps_the_leaders_away_until_its_new_process_serves() {
        let annotations = |t: &mut TiKV| {
            annotated(t);
            t.spec.offline = false;
            let restart = (ANNOTATION_RESTART.to_string(), "old-uid/4".to_string());
            t.metadata.annotations.get_or_insert_default().extend([restart]);
        };
        let kit = Kit::new(pd().evicting_leaders(5).counts(5, 0, 10), annotations).await;
        let quiet = |kit: &Kit, s: &TikvState, report: &tikv_operator_task::Report| {
            assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
            assert_eq!(s.leaders, Leaders::Evicted);
        };

        // The old Pod gone, no new one yet.
        let (s, report) = kit.pass([evict_leaders()]).await;
        quiet(&kit, &s, &report);

        // The new Pod, its process not running yet.
        kit.running_pod().await;
        kit.pod_status(POD, not_running(t0())).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        quiet(&kit, &s, &report);

        // Running; PD shows no start, then the old process's (the dead one looks Up).
        kit.pod_status(POD, running(t0(), true)).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        quiet(&kit, &s, &report);
        kit.pd.set_store(5, |st| st.start_time = Some(t0() - jiff::SignedDuration::from_secs(1)));
        let (s, report) = kit.pass([evict_leaders()]).await;
        quiet(&kit, &s, &report);

        // The new process reports: the leaders are given back, and the record goes.
        kit.pd.set_store(5, |st| st.start_time = Some(t0()));
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/tikvs/tikv-abc123"]);
        assert!(kit.pd.evicting().is_empty());
        let live = kit.live().await;
        assert!(!live.annotations().contains_key(ANNOTATION_EVICT_LEADER_STORE));
        assert!(live.annotations().contains_key(ANNOTATION_RESTART), "the restart task ends the restart");
        assert_eq!(s.leaders, Leaders::Stay);
    }

    #[tokio::test]
    async fn a_pod_stopping_for_a_recorded_restart_keeps_the_leaders_away() {
        let kit = Kit::new(pd().evicting_leaders(5).counts(5, 0, 10), |t| {
            annotated(t);
            t.spec.offline = false;
        })
        .await;
        let pod = kit.running_pod().await;
        let record = format!("{}/4", pod.uid().unwrap());
        kit.patch(json!({"metadata": {"annotations": {ANNOTATION_RESTART: record}}})).await;
        delete_pod(&kit).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::Evicted);

        // Its process has stopped, the Pod not yet gone: the new process has yet to
        // serve.
        let kit = Kit::new(pd().evicting_leaders(5).counts(5, 0, 10), |t| {
            annotated(t);
            t.spec.offline = false;
        })
        .await;
        let pod = kit.running_pod().await;
        let record = format!("{}/4", pod.uid().unwrap());
        kit.patch(json!({"metadata": {"annotations": {ANNOTATION_RESTART: record}}})).await;
        kit.pod_status(POD, not_running(t0())).await;
        delete_pod(&kit).await;
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert!(s.parts.pod.as_ref().is_some_and(crate::common::instance::pod_terminating), "{report}");
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.leaders, Leaders::Evicted);
    }

    #[tokio::test]
    async fn a_store_that_stays_has_nothing_done() {
        let kit = Kit::new(pd(), |_| {}).await;
        kit.pass([evict_leaders()]).await; // records the store ID and state
        let (s, report) = kit.pass([evict_leaders()]).await;
        assert_eq!(report.entry("evict_leaders").unwrap().message(), "not needed");
        assert_eq!((kit.env.write_log(), kit.pd.write_log()), (vec![], vec![]), "not even a status write");
        assert_eq!(s.leaders, Leaders::Stay);
    }
}
