//! `restart`: recreates the store's Pod when only a restart applies its spec, safely,
//! and follows the restart until the store serves again.
//!
//! Destructive (the Pod's deletion), so checked here against the safety contract
//! (DESIGN.md section 5 items 1, 2 and 4): the right PD and a fresh view, read under a
//! PD leader that an earlier poll saw too; the store's leaders evicted (`evict_leaders`
//! moves them away while a restart is wanted; a stalled eviction never lets a restart
//! through); every other store that is not Tombstone Up with a heartbeat at most two
//! heartbeat intervals old, and its Pod Ready and not terminating; and PD's region
//! checks, read right before, showing no down or pending peer on another store and no
//! region already missing a peer that has one here. A Pod whose process does not run
//! holds nothing and is deleted without these. Refusals are in Synced
//! (`RestartBlocked`, naming the gate) and retried.
//!
//! The restart is recorded on the instance (`core.tikv.org/restart: <pod UID>/<leaders
//! before>`) before the Pod is deleted, with a grace period of one second per 200
//! regions plus one, at least 30 s, and a UID precondition. A Pod deleted by someone
//! else (a user, a node drain) is recorded the same way when first seen terminating, so
//! its leaders are moved too and its return followed alike. Once the new Pod runs and PD
//! shows the store started after it (the dead process looks Up for a while),
//! `evict_leaders` gives the leaders back; the restart ends when half the leaders of
//! before are back, or when their count stopped rising for two minutes
//! (`LeadersNotBack`, a Warning, then on) — and only then is the instance Ready again,
//! so the group restarts the next one.
//!
//! Writes: the instance's annotation (merge patch with the resourceVersion), the Pod's
//! deletion, Events. Outcomes: Complete; Wait while a Pod terminates; Retry while a
//! gate refuses or the restarted store comes back; Fail on unexpected errors.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Preconditions};
use kube::{Api, ResourceExt};
use tikv_operator_api::TiKV;
use tikv_operator_api::condition::reasons;
use tikv_operator_api::names::{ANNOTATION_RESTART, LABEL_CLUSTER};
use tikv_operator_api::tikv::LeadersReturn;
use tikv_operator_pd::{NodeState, PdView};
use tikv_operator_task::{Node, Outcome, task};

use crate::common::Instance;
use crate::common::instance::{pod_ready_since, pod_running, pod_terminating};
use crate::error::is_not_found;
use crate::tikv::state::{Leaders, Refusal, RestartRecord, TikvState};

/// How often a blocked restart, or a restarted store coming back, is looked at again.
pub const RESTART_RECHECK: Duration = Duration::from_secs(5);
/// TiKV's store heartbeat interval (`pd-store-heartbeat-tick-interval`).
pub const STORE_HEARTBEAT: Duration = Duration::from_secs(10);
/// How long leaders may stop coming back before the restart is called done anyway.
pub const LEADERS_BACK_PATIENCE: Duration = Duration::from_secs(120);

pub fn restart() -> Node<TikvState> {
    task("restart", |s: &mut TikvState| Box::pin(run(s)))
}

async fn run(s: &mut TikvState) -> Outcome {
    let record = s.restart_record();
    let Some(pod) = s.parts.pod.clone() else {
        return match record {
            Some(_) => Outcome::wait("restart under way: waiting for the new pod"),
            None => Outcome::complete("no pod"),
        };
    };
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    if pod_terminating(&pod) {
        if record.is_none() && pod_running(&pod) && s.store_id().is_some() {
            let before = leaders_now(s);
            let record = RestartRecord { pod_uid: uid, leaders_before: before };
            if let Err(outcome) = s.annotate(ANNOTATION_RESTART, Some(record.to_string())).await {
                return outcome;
            }
            let message = format!(
                "pod {name} is being deleted by someone else: its leaders are moved away while it stops, and its \
                 return followed"
            );
            s.pass.warning("PodDeletedElsewhere", "Restart", message).await;
        }
        return Outcome::wait(format!("pod {name} is terminating; waiting for it to go"));
    }
    if let Some(record) = record.as_ref().filter(|r| r.pod_uid != uid) {
        return leaders_back(s, record).await;
    }
    let drift = s.parts.drift.clone();
    if !drift.needs_restart() {
        if record.is_some() {
            // Recorded, then the spec went back before the Pod was deleted.
            if let Err(outcome) = s.annotate(ANNOTATION_RESTART, None).await {
                return outcome;
            }
        }
        return Outcome::complete("not needed");
    }
    let what = drift.restart.join(", ");
    let running = pod_running(&pod) && s.store_id().is_some();
    if running && let Err(Refusal { reason, message }) = gates(s).await {
        let message = format!("pod {name} needs a restart for {what}, held: {message}");
        s.pass.unsynced.retain(|f| f.reason != reasons::POD_NOT_UP_TO_DATE);
        s.pass.not_synced(reason, message.clone());
        return match reason {
            reasons::RESTART_BLOCKED | reasons::PD_VIEW_NOT_FRESH => Outcome::retry(RESTART_RECHECK, message),
            _ => Refusal::outcome(reason, message),
        };
    }
    if record.is_none() {
        let before = s.pass.status.eviction.as_ref().map_or_else(|| leaders_now(s), |e| e.start);
        let record = RestartRecord { pod_uid: uid.clone(), leaders_before: before };
        if let Err(outcome) = s.annotate(ANNOTATION_RESTART, Some(record.to_string())).await {
            return outcome;
        }
    }
    let grace = grace_seconds(s);
    let api: Api<Pod> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
    let params = DeleteParams {
        grace_period_seconds: Some(grace),
        preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {}
        Err(error) if is_not_found(&error) => return Outcome::wait(format!("pod {name} already gone")),
        Err(error) if crate::error::is_conflict(&error) => {
            return Outcome::wait(format!("pod {name} was replaced meanwhile; waiting for the cache"));
        }
        Err(error) => return Outcome::fail(error),
    }
    let how = if running { "leaders moved away first" } else { "its process was not running" };
    let message = format!("restarting pod {name} for {what} ({how}; grace {grace}s)");
    s.pass.event("RestartingPod", "Restart", message.clone()).await;
    s.restarting = Some(message.clone());
    Outcome::wait(message)
}

/// The store's leader count in the view read, 0 without one.
fn leaders_now(s: &TikvState) -> u64 {
    let id = s.store_id();
    s.store.observed().and_then(|o| id.and_then(|id| o.view.store(id)).map(|st| st.leader_count)).unwrap_or(0)
}

/// One second per 200 regions plus one, at least 30 s (v2's rule): TiKV flushes and
/// closes its regions on SIGTERM.
fn grace_seconds(s: &TikvState) -> u32 {
    let id = s.store_id();
    let regions = s.store.observed().and_then(|o| id.and_then(|id| o.view.store(id)).map(|st| st.region_count));
    u32::try_from(regions.unwrap_or(0) / 200 + 1).unwrap_or(u32::MAX).max(30)
}

/// Every gate of a restart, in order; the first refusal.
async fn gates(s: &TikvState) -> Result<(), Refusal> {
    let observed = s.destructive_allowed()?;
    let blocked = |message: String| Refusal { reason: reasons::RESTART_BLOCKED, message };
    let id = s.store_id().ok_or_else(|| blocked("the store ID is not recorded yet".into()))?;
    match s.leaders {
        Leaders::Evicted | Leaders::CannotMove => {}
        Leaders::Moving(left) => return Err(blocked(format!("{left} leaders still on store {id}"))),
        Leaders::Stay | Leaders::NotYet => return Err(blocked(format!("store {id}'s leaders are not evicted yet"))),
    }
    let view = &observed.view;
    if view.leader_for().is_zero() {
        return Err(blocked("PD's leader just changed: waiting for a view read under a settled leader".into()));
    }
    let now = s.pass.ctx.now();
    if let Some(why) = unhealthy_other_store(view, id, now) {
        return Err(blocked(why));
    }
    if let Some(why) = other_pod_not_ready(s, view, id) {
        return Err(blocked(why));
    }
    let Some(pd) = s.pass.pd() else {
        return Err(Refusal { reason: reasons::PD_UNAVAILABLE, message: "the cluster's PD is not registered".into() });
    };
    match pd.region_health().await {
        Ok(health) => match health.restart_blocker(id) {
            Some(why) => Err(blocked(why)),
            None => Ok(()),
        },
        Err(error) => Err(blocked(format!("PD's region checks failed: {error}"))),
    }
}

/// Another store that is not Tombstone and not Up with a recent heartbeat, if any.
pub fn unhealthy_other_store(view: &PdView, id: u64, now: Timestamp) -> Option<String> {
    let limit = 2 * STORE_HEARTBEAT.as_secs();
    view.stores.values().filter(|st| st.id != id && !st.is_tiflash() && st.node_state != NodeState::Removed).find_map(
        |st| {
            if !matches!(st.node_state, NodeState::Preparing | NodeState::Serving | NodeState::Removing) {
                return Some(format!("store {} is {}", st.id, st.node_state.name()));
            }
            let age = st.last_heartbeat.map(|at| now.duration_since(at).as_secs().max(0).unsigned_abs());
            match age {
                Some(age) if age <= limit => None,
                Some(age) => Some(format!("store {}'s last heartbeat is {age}s old (more than {limit}s)", st.id)),
                None => Some(format!("store {} has not sent a heartbeat", st.id)),
            }
        },
    )
}

/// The Pod of another store of the cluster (found through its instance) that is not
/// Ready or is terminating, if any.
fn other_pod_not_ready(s: &TikvState, view: &PdView, id: u64) -> Option<String> {
    let cluster = s.pass.object.as_ref()?.spec.cluster.name.clone();
    let selector = std::collections::BTreeMap::from([(LABEL_CLUSTER.to_string(), cluster)]);
    let tikvs = s.pass.ctx.caches.list::<TiKV>(&s.pass.namespace, &selector);
    for tikv in tikvs.iter().filter(|t| t.metadata.name.as_deref() != Some(s.pass.name.as_str())) {
        let Some(other) = tikv.status.as_ref().and_then(|st| st.id.as_deref()).and_then(|i| i.parse::<u64>().ok())
        else {
            continue;
        };
        if other == id || view.store(other).is_none_or(|st| st.node_state == NodeState::Removed) {
            continue;
        }
        let pod_name = tikv.pod_name();
        let pod = s.pass.ctx.caches.get::<Pod>(&s.pass.namespace, &pod_name);
        match pod {
            None => return Some(format!("store {other}'s pod {pod_name} does not exist")),
            Some(pod) if pod_terminating(&pod) => {
                return Some(format!("store {other}'s pod {pod_name} is terminating"));
            }
            Some(pod) if pod_ready_since(&pod).is_none() => {
                return Some(format!("store {other}'s pod {pod_name} is not Ready"));
            }
            Some(_) => {}
        }
    }
    None
}

/// Follows a restarted store back: the new process reporting to PD, then its leaders.
async fn leaders_back(s: &mut TikvState, record: &RestartRecord) -> Outcome {
    if !s.new_process_serving() {
        s.restarting = Some("restarted; waiting for the new process to report to PD".into());
        return Outcome::retry(RESTART_RECHECK, "restarted; waiting for the new process to report to PD");
    }
    let now = s.pass.ctx.now();
    let leaders = leaders_now(s);
    let before = record.leaders_before;
    let back = s.pass.status.leaders_return.get_or_insert(LeadersReturn { before, leaders, last_rise_at: Time(now) });
    if leaders > back.leaders {
        back.last_rise_at = Time(now);
    }
    back.leaders = leaders;
    let still_for = now.duration_since(back.last_rise_at.0).as_secs().max(0).unsigned_abs();
    let id = s.store_id().unwrap_or_default();
    let half = before.div_ceil(2);
    let done = if leaders >= half {
        Some((false, format!("store {id} serves again with {leaders} leaders ({before} before the restart)")))
    } else if still_for >= LEADERS_BACK_PATIENCE.as_secs() {
        Some((
            true,
            format!(
                "store {id} serves again, but its leaders stopped coming back at {leaders} of {before} for {still_for}s; \
                 the rollout goes on"
            ),
        ))
    } else {
        None
    };
    let Some((short, message)) = done else {
        let message = format!("store {id} restarted: {leaders} of {before} leaders back (done at {half})");
        s.restarting = Some(message.clone());
        return Outcome::retry(RESTART_RECHECK, message);
    };
    if let Err(outcome) = s.annotate(ANNOTATION_RESTART, None).await {
        return outcome;
    }
    s.pass.status.leaders_return = None;
    s.restarting = None;
    if short {
        s.pass.warning(reasons::LEADERS_NOT_BACK, "Restart", message.clone()).await;
    } else {
        s.pass.event("Restarted", "Restart", message.clone()).await;
    }
    Outcome::complete(message)
}
