//! `restart`: recreates the store's Pod when only a restart applies its spec, safely,
//! and follows the restart until the store serves again.
//!
//! Destructive (the Pod's deletion), so checked here against the safety contract
//! (DESIGN.md section 5 items 1, 2 and 4), in this order: the right PD and a fresh
//! view, read under a PD leader that an earlier poll saw too; every other store that is
//! not Tombstone Up with a heartbeat at most two heartbeat intervals old, and its Pod
//! Ready and not terminating (`TikvState::others_unhealthy`, which `evict_leaders` also
//! checks before it starts a restart's eviction); the store's leaders evicted (a
//! stalled eviction never lets a restart through), at 0 in PD's view and on the
//! store's own metrics (read right then); and PD's region checks, read right before,
//! showing no down or pending peer on another store and no region already missing a
//! peer that has one here. A Pod whose process does not run holds nothing and is
//! deleted without these. Refusals are in Synced (`RestartBlocked`, naming the gate)
//! and retried.
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

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use tikv_operator_api::condition::reasons;
use tikv_operator_api::names::ANNOTATION_RESTART;
use tikv_operator_api::tikv::LeadersReturn;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::instance::{delete_pod_by_uid, pod_running, pod_terminating};
use crate::common::restart::hold_restart;
use crate::context::LeadersBack;
use crate::tikv::state::{Leaders, Refusal, RestartRecord, TikvState};

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
        hold_restart(&mut s.pass, reason, message.clone());
        return match reason {
            reasons::RESTART_BLOCKED | reasons::PD_VIEW_NOT_FRESH => {
                Outcome::retry(s.pass.ctx.timing().restart_recheck, message)
            }
            _ => Refusal::outcome(&s.pass, reason, message),
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
    if let Err(outcome) = delete_pod_by_uid(s, &pod, Some(grace)).await {
        return outcome;
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
pub(crate) fn grace_seconds(s: &TikvState) -> u32 {
    let id = s.store_id();
    let regions = s.store.observed().and_then(|o| id.and_then(|id| o.view.store(id)).map(|st| st.region_count));
    u32::try_from(regions.unwrap_or(0) / 200 + 1).unwrap_or(u32::MAX).max(30)
}

/// Every gate of a restart, in order; the first refusal.
async fn gates(s: &TikvState) -> Result<(), Refusal> {
    let observed = s.destructive_allowed()?;
    let blocked = |message: String| Refusal { reason: reasons::RESTART_BLOCKED, message };
    let id = s.store_id().ok_or_else(|| blocked("the store ID is not recorded yet".into()))?;
    let view = &observed.view;
    if view.leader_for().is_zero() {
        return Err(blocked("PD's leader just changed: waiting for a view read under a settled leader".into()));
    }
    if let Some(why) = s.others_unhealthy(view, id) {
        return Err(blocked(why));
    }
    match s.leaders {
        Leaders::Evicted | Leaders::CannotMove => {}
        Leaders::Moving(left) => return Err(blocked(format!("{left} leaders still on store {id}"))),
        Leaders::Stay | Leaders::NotYet => return Err(blocked(format!("store {id}'s leaders are not evicted yet"))),
    }
    let Some(pd) = s.pass.pd() else {
        return Err(Refusal { reason: reasons::PD_UNAVAILABLE, message: "the cluster's PD is not registered".into() });
    };
    if s.leaders == Leaders::Evicted
        && let Some(tikv) = &s.pass.object
    {
        // PD's count comes with the store's heartbeat; the store's own is current.
        let url = crate::tikv::render::status_url(tikv, s.pass.tls_enabled());
        match pd.store_leader_count(&url).await {
            Ok(0) => {}
            Ok(left) => return Err(blocked(format!("store {id} still counts {left} leaders on its own metrics"))),
            Err(error) => return Err(blocked(format!("store {id}'s own metrics did not answer: {error}"))),
        }
    }
    match pd.region_health().await {
        Ok(health) => match health.restart_blocker(id) {
            Some(why) => Err(blocked(why)),
            None => Ok(()),
        },
        Err(error) => Err(blocked(format!("PD's region checks failed: {error}"))),
    }
}

/// Follows a restarted store back: the new process reporting to PD, then its leaders.
async fn leaders_back(s: &mut TikvState, record: &RestartRecord) -> Outcome {
    // Nothing but PD's view tells when the new process reports and its leaders come
    // back: the cache polls fast meanwhile.
    if let Some(pd) = s.pass.pd() {
        let key = s.pass.key();
        s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "a restarted store to serve again");
    }
    if !s.new_process_serving() {
        s.restarting = Some("restarted; waiting for the new process to report to PD".into());
        return Outcome::retry(
            s.pass.ctx.timing().restart_recheck,
            "restarted; waiting for the new process to report to PD",
        );
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
    let timing = *s.pass.ctx.timing();
    let regions = s.store.observed().and_then(|o| o.view.store(id)).map_or(0, |st| st.region_count);
    let (enough, target) = match timing.leaders_back_share {
        LeadersBack::Half => (leaders >= before.div_ceil(2), before.div_ceil(2)),
        LeadersBack::AnyOnLargeStores => (regions < 100 || leaders > 0, u64::from(regions >= 100)),
    };
    let done = if enough {
        Some((false, format!("store {id} serves again with {leaders} leaders ({before} before the restart)")))
    } else if still_for >= timing.leaders_back_patience.as_secs() {
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
        let message = format!("store {id} restarted: {leaders} of {before} leaders back (done at {target})");
        s.restarting = Some(message.clone());
        return Outcome::retry(s.pass.ctx.timing().restart_recheck, message);
    };
    if let Err(outcome) = s.annotate(ANNOTATION_RESTART, None).await {
        return outcome;
    }
    s.pass.status.leaders_return = None;
    s.restarting = None;
    let key = s.pass.key();
    s.pass.ctx.pd_waits.done(&key);
    if short {
        s.pass.warning(reasons::LEADERS_NOT_BACK, "Restart", message.clone()).await;
    } else {
        s.pass.event("Restarted", "Restart", message.clone()).await;
    }
    Outcome::complete(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePd, t0};
    use crate::tikv::tasks::evict_leaders;
    use crate::tikv::tasks::testkit::{Kit, drift, four_stores, not_running, running};
    use jiff::Timestamp;
    use k8s_openapi::api::core::v1::Pod;
    use kube::Api;
    use kube::api::DeleteParams;
    use serde_json::json;
    use std::time::Duration;
    use tikv_operator_api::TiKV;
    use tikv_operator_api::names::ANNOTATION_EVICT_LEADER_STORE;
    use tikv_operator_pd::{CheckedPeer, PdError, PeerCheck, RegionHealth, RegionPeers};
    use tikv_operator_task::{OutcomeKind, Report};

    const POD: &str = "tikv-tikv-abc123";
    const TIKV: &str = "patch core.tikv.org/tikvs/tikv-abc123";
    const DELETE: &str = "delete pods/tikv-tikv-abc123";
    /// How a refusal's message starts.
    const HELD: &str = "pod tikv-tikv-abc123 needs a restart for version, held: ";

    /// Four stores heartbeating now under a PD leader that has led for a poll; store 5
    /// (this instance's) holds `leaders` leaders of 10,000 regions and is in PD's
    /// evict-leader scheduler.
    fn pd(leaders: u64) -> FakePd {
        four_stores().member("pd-0", 1).leader("pd-0").counts(5, leaders, 10_000).evicting_leaders(5).heartbeats(t0())
    }

    /// This instance, the eviction of its leaders recorded as the operator's, its Pod
    /// running, and its version changed since: only a restart applies it.
    async fn outdated(pd: FakePd) -> (Kit, Pod) {
        let kit = Kit::new(pd, |t| {
            t.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "5".to_string())].into());
        })
        .await;
        let pod = kit.running_pod().await;
        kit.patch(json!({"spec": {"version": "v8.5.1"}})).await;
        (kit, pod)
    }

    async fn pass(kit: &Kit) -> (TikvState, Report) {
        kit.pass([evict_leaders(), drift(), restart()]).await
    }

    /// One pass whose restart is held: nothing is written to Kubernetes or to PD. The
    /// finding in Synced and the outcome.
    async fn held(kit: &Kit) -> (String, String, OutcomeKind) {
        let (s, report) = pass(kit).await;
        held_after(kit, &s, &report)
    }

    fn held_after(kit: &Kit, s: &TikvState, report: &Report) -> (String, String, OutcomeKind) {
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(s.pass.unsynced.len(), 1, "{:?}", s.pass.unsynced);
        let finding = &s.pass.unsynced[0];
        let outcome = report.entry("restart").unwrap();
        assert_eq!(outcome.message(), finding.message);
        (finding.reason.to_string(), finding.message.clone(), outcome.kind().unwrap())
    }

    fn blocked(why: &str) -> (String, String, OutcomeKind) {
        (reasons::RESTART_BLOCKED.into(), format!("{HELD}{why}"), OutcomeKind::Retry)
    }

    fn annotation(tikv: &TiKV, key: &str) -> Option<String> {
        tikv.annotations().get(key).cloned()
    }

    async fn pod(kit: &Kit) -> Option<Pod> {
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        api.get_opt(POD).await.unwrap()
    }

    /// The Pod as its kubelet finishes a deletion: gone.
    async fn pod_gone(kit: &Kit) {
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        api.delete(POD, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
        kit.env.synced().await;
    }

    #[tokio::test]
    async fn a_restart_waits_for_the_leaders_to_be_evicted() {
        let (kit, _) = outdated(pd(3)).await;
        assert_eq!(held(&kit).await, blocked("3 leaders still on store 5"));

        // Without an eviction under way (Stay, or NotYet) nothing is restarted either.
        let (s, report) = kit.pass([drift(), restart()]).await;
        assert_eq!(held_after(&kit, &s, &report), blocked("store 5's leaders are not evicted yet"));
    }

    #[tokio::test]
    async fn leaders_the_store_still_counts_on_its_own_metrics_hold_the_restart() {
        let (kit, _) = outdated(pd(0)).await;
        let url = "http://tikv-tikv-abc123.tikv-tikv-peer.default.svc:20180";
        kit.pd.metrics_leaders(url, 2);
        assert_eq!(held(&kit).await, blocked("store 5 still counts 2 leaders on its own metrics"));
        kit.pd.metrics_leaders(url, 0);
        let (_, report) = pass(&kit).await;
        assert_eq!(kit.writes(), [TIKV, DELETE], "{report}");
    }

    #[tokio::test]
    async fn with_tls_in_force_the_store_is_asked_for_its_leaders_over_https() {
        let (kit, _) = outdated(pd(0)).await;
        // TLS wanted and in force (status.pd's scheme is https): the pods serve TLS.
        let clusters: Api<tikv_operator_api::Cluster> = Api::namespaced(kit.env.client.clone(), "default");
        // (turned on while suspended, as admission demands, and resumed)
        let mut cluster = clusters.get("basic").await.unwrap();
        cluster.spec.tls_cluster = Some(tikv_operator_api::cluster::TlsCluster { enabled: true });
        cluster.spec.suspend_action = Some(tikv_operator_api::cluster::SuspendAction { suspend_compute: true });
        let mut cluster = clusters.replace("basic", &Default::default(), &cluster).await.unwrap();
        cluster.spec.suspend_action = Some(tikv_operator_api::cluster::SuspendAction { suspend_compute: false });
        let mut cluster = clusters.replace("basic", &Default::default(), &cluster).await.unwrap();
        cluster.status.get_or_insert_default().pd = Some("https://basic-pd.default.svc:2379".into());
        clusters.replace_status("basic", &Default::default(), &cluster).await.unwrap();
        let url = "https://tikv-tikv-abc123.tikv-tikv-peer.default.svc:20180";
        kit.pd.metrics_leaders(url, 2);
        // (the pod was rendered plain, so TLS is a reason of the restart too)
        let (reason, message, kind) = held(&kit).await;
        assert_eq!((reason.as_str(), kind), (reasons::RESTART_BLOCKED, OutcomeKind::Retry));
        assert!(message.ends_with("held: store 5 still counts 2 leaders on its own metrics"), "{message}");
        kit.pd.metrics_leaders(url, 0);
        let (_, report) = pass(&kit).await;
        assert_eq!(kit.writes(), [TIKV, DELETE], "{report}");
    }

    #[tokio::test]
    async fn a_view_that_is_not_fresh_or_from_another_pd_holds_the_restart() {
        let (kit, _) = outdated(pd(0)).await;
        kit.handle.cache.note_write();
        let (s, report) = kit.pass_as_is([evict_leaders(), drift(), restart()]).await;
        let (reason, message, kind) = held_after(&kit, &s, &report);
        assert_eq!((reason.as_str(), kind), (reasons::PD_VIEW_NOT_FRESH, OutcomeKind::Retry));
        assert!(message.starts_with(&format!("{HELD}the PD view is not fresh")), "{message}");

        let clusters: Api<tikv_operator_api::Cluster> = Api::namespaced(kit.env.client.clone(), "default");
        let mut cluster = clusters.get("basic").await.unwrap();
        cluster.status.get_or_insert_default().id = Some("1".into());
        clusters.replace_status("basic", &Default::default(), &cluster).await.unwrap();
        let (reason, message, kind) = held(&kit).await;
        assert_eq!((reason.as_str(), kind), (reasons::CLUSTER_ID_MISMATCH, OutcomeKind::Wait), "{message}");
        assert!(message.starts_with(HELD), "{message}");
    }

    #[tokio::test]
    async fn a_restart_waits_for_a_pd_leader_seen_by_an_earlier_poll() {
        let (kit, _) = outdated(pd(0).member("pd-1", 2)).await;
        kit.pd.set_leader("pd-1");
        assert_eq!(
            held(&kit).await,
            blocked("PD's leader just changed: waiting for a view read under a settled leader")
        );
        // The next poll sees the same leader: it has led for a poll.
        let (_, report) = pass(&kit).await;
        assert_eq!(kit.writes(), [TIKV, DELETE], "{report}");
    }

    #[tokio::test]
    async fn every_other_store_must_be_up_with_a_heartbeat_at_most_20_s_old() {
        let (kit, _) = outdated(pd(0)).await;
        let ago = |secs: i64| t0() - jiff::SignedDuration::from_secs(secs);
        kit.pd.set_store(6, |st| st.last_heartbeat = Some(ago(21)));
        assert_eq!(held(&kit).await, blocked("store 6's last heartbeat is 21s old (more than 20s)"));

        // Two heartbeat intervals are enough: store 7 is the one that holds it now.
        kit.pd.set_store(6, |st| st.last_heartbeat = Some(ago(20)));
        kit.pd.set_store(7, |st| st.last_heartbeat = None);
        assert_eq!(held(&kit).await, blocked("store 7 has not sent a heartbeat"));

        kit.pd.set_store(7, |st| st.last_heartbeat = Some(t0()));
        kit.pd.set_node_state(8, tikv_operator_pd::NodeState::Unknown(9));
        assert_eq!(held(&kit).await, blocked("store 8 is Unknown"));

        // A Tombstone counts no more, whatever its heartbeat.
        kit.pd.set_node_state(8, tikv_operator_pd::NodeState::Removed);
        kit.pd.set_store(8, |st| st.last_heartbeat = None);
        let (_, report) = pass(&kit).await;
        assert_eq!(kit.writes(), [TIKV, DELETE], "{report}");
    }

    #[tokio::test]
    async fn every_other_stores_pod_must_be_ready_and_not_terminating() {
        let (kit, _) = outdated(pd(0)).await;
        kit.other_store("tikv-b", 6).await;
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");

        kit.pod_status("tikv-tikv-b", running(t0(), false)).await;
        assert_eq!(held(&kit).await, blocked("store 6's pod tikv-tikv-b is not Ready"));

        kit.pod_status("tikv-tikv-b", running(t0(), true)).await;
        api.delete("tikv-tikv-b", &Default::default()).await.unwrap();
        kit.env.synced().await;
        assert_eq!(held(&kit).await, blocked("store 6's pod tikv-tikv-b is terminating"));

        api.delete("tikv-tikv-b", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
        kit.env.synced().await;
        assert_eq!(held(&kit).await, blocked("store 6's pod tikv-tikv-b does not exist"));

        // An instance whose store is a Tombstone is not looked at.
        kit.pd.set_node_state(6, tikv_operator_pd::NodeState::Removed);
        let (_, report) = pass(&kit).await;
        assert_eq!(kit.writes(), [TIKV, DELETE], "{report}");
    }

    fn peers(region_id: u64, stores: &[u64]) -> PeerCheck {
        let peers = stores
            .iter()
            .map(|store_id| CheckedPeer { peer_id: region_id * 10 + store_id, store_id: *store_id, down_seconds: None })
            .collect();
        PeerCheck {
            count: 1,
            regions: vec![RegionPeers { region_id, leader_store_id: stores.first().copied(), peers }],
        }
    }

    #[tokio::test]
    async fn down_pending_or_missing_peers_hold_the_restart() {
        let (kit, _) = outdated(pd(0)).await;
        kit.pd.set_region_health(RegionHealth { down: peers(9, &[7]), ..Default::default() });
        assert_eq!(held(&kit).await, blocked("regions have down peers on stores 7"));

        kit.pd.set_region_health(RegionHealth { pending: peers(9, &[6]), ..Default::default() });
        assert_eq!(held(&kit).await, blocked("regions have pending peers on stores 6"));

        kit.pd.set_region_health(RegionHealth { missing: peers(11, &[6, 5]), ..Default::default() });
        assert_eq!(
            held(&kit).await,
            blocked("1 regions with a peer on this store already miss a peer (region 11 first)")
        );

        kit.pd.set_region_health(RegionHealth::default());
        kit.pd.fail_next("region_health", PdError::NoLeader { status: 503, message: "no leader".into() });
        let (reason, message, kind) = held(&kit).await;
        assert_eq!((reason.as_str(), kind), (reasons::RESTART_BLOCKED, OutcomeKind::Retry));
        assert!(message.starts_with(&format!("{HELD}PD's region checks failed: ")), "{message}");

        // A down or pending peer on this store, a region short of a peer elsewhere: no
        // other region loses its majority by this restart.
        kit.pd.set_region_health(RegionHealth {
            down: peers(9, &[5]),
            pending: peers(10, &[5]),
            missing: peers(11, &[6, 7]),
        });
        let (_, report) = pass(&kit).await;
        assert_eq!(kit.writes(), [TIKV, DELETE], "{report}");
    }

    /// The whole restart: leaders evicted, the restart recorded, the Pod deleted with its
    /// UID and grace, the new Pod's process reporting, the leaders given back and half of
    /// them back.
    #[tokio::test]
    async fn a_restart_is_recorded_before_the_pod_goes_and_followed_until_the_leaders_are_back() {
        let (kit, old) = outdated(pd(4)).await;
        assert_eq!(held(&kit).await, blocked("4 leaders still on store 5"));

        kit.pd.set_store(5, |st| st.leader_count = 0);
        let (s, report) = pass(&kit).await;
        assert_eq!(kit.writes(), [TIKV, DELETE], "the record first, then the Pod: {report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
        let uid = old.uid().unwrap();
        assert_eq!(annotation(&kit.live().await, ANNOTATION_RESTART), Some(format!("{uid}/4")), "4 leaders before");
        let deleting = pod(&kit).await.unwrap();
        assert!(deleting.metadata.deletion_timestamp.is_some());
        assert_eq!(deleting.metadata.deletion_grace_period_seconds, Some(51), "10,000 regions / 200 + 1");
        let message = "restarting pod tikv-tikv-abc123 for version (leaders moved away first; grace 51s)";
        assert_eq!(report.entry("restart").unwrap().kind(), Some(OutcomeKind::Wait));
        assert_eq!(s.restarting.as_deref(), Some(message));
        assert!(kit.env.events().await.contains(&("Normal".into(), "RestartingPod".into(), message.into())));

        // Terminating: nothing to do but wait; the leaders stay away.
        let (s, report) = pass(&kit).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(report.entry("restart").unwrap().kind(), Some(OutcomeKind::Wait));
        assert_eq!(s.leaders, Leaders::Evicted);

        pod_gone(&kit).await;
        let (_, report) = pass(&kit).await;
        assert_eq!(report.entry("restart").unwrap().message(), "restart under way: waiting for the new pod");
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]));

        // The new Pod runs; PD still shows the old process (it looks Up for a while).
        kit.env.clock.advance(Duration::from_secs(60));
        let new = kit.running_pod().await;
        assert_ne!(new.uid(), old.uid());
        kit.pd.set_store(5, |st| st.start_time = Some(t0()));
        let (s, report) = pass(&kit).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        let waiting = "restarted; waiting for the new process to report to PD";
        assert_eq!(report.entry("restart").unwrap().message(), waiting);
        assert_eq!(report.entry("restart").unwrap().kind(), Some(OutcomeKind::Retry));
        assert_eq!(s.restarting.as_deref(), Some(waiting));

        // The new process reports: its leaders are given back and counted.
        let started = t0() + jiff::SignedDuration::from_secs(60);
        kit.pd.set_store(5, |st| st.start_time = Some(started));
        let (s, report) = pass(&kit).await;
        assert_eq!(kit.pd.write_log(), ["remove_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), [TIKV], "the eviction's record goes");
        let coming = "store 5 restarted: 0 of 4 leaders back (done at 2)";
        assert_eq!(report.entry("restart").unwrap().message(), coming);
        assert_eq!(s.restarting.as_deref(), Some(coming));
        let back = kit.live().await.status.unwrap().leaders_return.unwrap();
        assert_eq!(back, LeadersReturn { before: 4, leaders: 0, last_rise_at: Time(started) });

        kit.pd.set_store(5, |st| st.leader_count = 2);
        let (s, report) = pass(&kit).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![TIKV.to_string()], vec![]), "{report}");
        let live = kit.live().await;
        assert_eq!(annotation(&live, ANNOTATION_RESTART), None);
        assert_eq!(live.status.unwrap().leaders_return, None);
        assert_eq!(s.restarting, None);
        let done = "store 5 serves again with 2 leaders (4 before the restart)";
        assert_eq!(report.entry("restart").unwrap().message(), done);
        assert!(kit.env.events().await.contains(&("Normal".into(), "Restarted".into(), done.into())));

        let (_, report) = pass(&kit).await;
        assert_eq!(report.entry("restart").unwrap().message(), "not needed");
        assert_eq!(kit.env.write_log(), Vec::<String>::new(), "nothing more to write");
    }

    #[tokio::test]
    async fn the_grace_period_is_at_least_30_s() {
        let (kit, _) = outdated(pd(0).counts(5, 0, 5_999)).await;
        let (_, report) = pass(&kit).await;
        assert_eq!(kit.writes(), [TIKV, DELETE], "{report}");
        assert_eq!(pod(&kit).await.unwrap().metadata.deletion_grace_period_seconds, Some(30));
    }

    #[tokio::test]
    async fn a_pod_replaced_since_it_was_read_is_not_deleted() {
        let (kit, old) = outdated(pd(0)).await;
        // The caches will not see the new pod for a (simulated) hour.
        kit.env.sim.faults().set_watch_delay(Duration::from_secs(3600));
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        api.delete(POD, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
        let mut new = old.clone();
        new.metadata = kube::api::ObjectMeta {
            name: old.metadata.name.clone(),
            labels: old.metadata.labels,
            ..Default::default()
        };
        let new = api.create(&Default::default(), &new).await.unwrap();
        kit.handle.cache.refresh().await.unwrap();

        let (_, report) = kit.pass_from_caches([evict_leaders(), drift(), restart()]).await;
        let entry = report.entry("restart").unwrap();
        assert_eq!(entry.message(), "pod tikv-tikv-abc123 was replaced meanwhile; waiting for the cache", "{report}");
        assert_eq!(kit.writes(), [TIKV, DELETE], "the DELETE named the old UID");
        let live = api.get(POD).await.unwrap();
        assert_eq!((live.uid(), live.metadata.deletion_timestamp), (new.uid(), None), "the new pod is untouched");
    }

    #[tokio::test]
    async fn a_pod_whose_process_is_not_running_is_restarted_without_the_gates() {
        // Its leaders not evicted, another store silent: no gate would let it through.
        let (kit, old) = outdated(pd(4)).await;
        kit.pd.set_store(6, |st| st.last_heartbeat = None);
        kit.pod_status(POD, not_running(t0())).await;
        let (s, report) = pass(&kit).await;
        assert_eq!(kit.writes(), [TIKV, DELETE], "{report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);
        let record = format!("{}/4", old.uid().unwrap());
        assert_eq!(annotation(&kit.live().await, ANNOTATION_RESTART), Some(record));
        let message = "restarting pod tikv-tikv-abc123 for version (its process was not running; grace 51s)";
        assert_eq!(report.entry("restart").unwrap().message(), message);
    }

    #[tokio::test]
    async fn a_pod_deleted_by_someone_else_is_recorded_and_its_leaders_moved() {
        // Nothing needed a restart, nor the leaders gone.
        let pd = four_stores().member("pd-0", 1).leader("pd-0").counts(5, 4, 10_000).heartbeats(t0());
        let kit = Kit::new(pd, |_| {}).await;
        let old = kit.running_pod().await;
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        api.delete(POD, &Default::default()).await.unwrap();
        kit.env.synced().await;

        let (_, report) = pass(&kit).await;
        assert_eq!(kit.pd.write_log(), ["add_evict_leader(5)"], "{report}");
        assert_eq!(kit.writes(), [TIKV, TIKV], "the eviction's record, then the restart's");
        let live = kit.live().await;
        assert_eq!(annotation(&live, ANNOTATION_RESTART), Some(format!("{}/4", old.uid().unwrap())));
        assert_eq!(annotation(&live, ANNOTATION_EVICT_LEADER_STORE).as_deref(), Some("5"));
        assert_eq!(report.entry("restart").unwrap().kind(), Some(OutcomeKind::Wait));
        let warning = (
            "Warning".to_string(),
            "PodDeletedElsewhere".to_string(),
            "pod tikv-tikv-abc123 is being deleted by someone else: its leaders are moved away while it stops, \
             and its return followed"
                .to_string(),
        );
        assert!(kit.env.events().await.contains(&warning));

        let (_, report) = pass(&kit).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "recorded once: {report}");
        let warnings = kit.env.events().await.into_iter().filter(|(t, _, _)| t == "Warning").count();
        assert_eq!(warnings, 1);
    }

    #[tokio::test]
    async fn a_terminating_pod_whose_process_stopped_is_let_go() {
        let pd = four_stores().member("pd-0", 1).leader("pd-0").counts(5, 4, 10_000).heartbeats(t0());
        let kit = Kit::new(pd, |_| {}).await;
        kit.running_pod().await;
        kit.pod_status(POD, not_running(t0())).await;
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        api.delete(POD, &Default::default()).await.unwrap();
        kit.env.synced().await;
        let (_, report) = pass(&kit).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
        assert_eq!(report.entry("restart").unwrap().kind(), Some(OutcomeKind::Wait));
    }

    /// A restart recorded for a Pod (UID `old-uid`, 10 leaders before) that has been
    /// replaced by one running since now; store 5's new process started at `process`.
    async fn restarted(process: Option<Timestamp>, leaders: u64) -> Kit {
        let pd = four_stores().member("pd-0", 1).leader("pd-0").counts(5, leaders, 10_000).heartbeats(t0());
        pd.set_store(5, |st| st.start_time = process);
        let kit = Kit::new(pd, |t| {
            t.metadata.annotations = Some([(ANNOTATION_RESTART.to_string(), "old-uid/10".to_string())].into());
        })
        .await;
        // A store restarted long after it joined: its ID is recorded.
        kit.status(|st| st.id = Some("5".into())).await;
        kit.running_pod().await;
        kit
    }

    #[tokio::test]
    async fn the_new_process_must_report_after_the_new_pod_started() {
        let waiting = "restarted; waiting for the new process to report to PD";
        for process in [None, Some(t0() - jiff::SignedDuration::from_secs(1))] {
            let kit = restarted(process, 5).await;
            let (s, report) = kit.pass([restart()]).await;
            assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]), "{report}");
            let entry = report.entry("restart").unwrap();
            assert_eq!((entry.kind(), entry.message()), (Some(OutcomeKind::Retry), waiting), "{process:?}");
            assert_eq!(s.restarting.as_deref(), Some(waiting));
        }

        // Reported since, but the new Pod's process is not running (yet).
        let kit = restarted(Some(t0()), 5).await;
        kit.pod_status(POD, not_running(t0())).await;
        let (_, report) = kit.pass([restart()]).await;
        assert_eq!(report.entry("restart").unwrap().message(), waiting);
        assert_eq!(kit.writes(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn half_the_leaders_back_ends_the_restart() {
        let kit = restarted(Some(t0()), 5).await;
        let (s, report) = kit.pass([restart()]).await;
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![TIKV.to_string()], vec![]), "{report}");
        let done = "store 5 serves again with 5 leaders (10 before the restart)";
        let entry = report.entry("restart").unwrap();
        assert_eq!((entry.kind(), entry.message()), (Some(OutcomeKind::Complete), done));
        assert_eq!((s.restarting, s.pass.status.leaders_return), (None, None));
        let live = kit.live().await;
        assert_eq!(annotation(&live, ANNOTATION_RESTART), None);
        assert_eq!(live.status.unwrap().leaders_return, None);
        assert_eq!(kit.env.events().await, [("Normal".to_string(), "Restarted".to_string(), done.to_string())]);
    }

    #[tokio::test]
    async fn leaders_that_stop_coming_back_for_two_minutes_end_the_restart_with_a_warning() {
        let kit = restarted(Some(t0()), 2).await;
        let (s, report) = kit.pass([restart()]).await;
        assert_eq!(report.entry("restart").unwrap().message(), "store 5 restarted: 2 of 10 leaders back (done at 5)");
        let rose = |at: Timestamp, leaders: u64| Some(LeadersReturn { before: 10, leaders, last_rise_at: Time(at) });
        assert_eq!(s.pass.status.leaders_return, rose(t0(), 2));

        kit.env.clock.advance(Duration::from_secs(60));
        kit.pd.set_store(5, |st| st.leader_count = 3);
        let (s, _) = kit.pass([restart()]).await;
        let risen = t0() + jiff::SignedDuration::from_secs(60);
        assert_eq!(s.pass.status.leaders_return, rose(risen, 3), "a rise restarts the wait");

        kit.env.clock.advance(Duration::from_secs(119));
        let (s, report) = kit.pass([restart()]).await;
        assert_eq!(report.entry("restart").unwrap().kind(), Some(OutcomeKind::Retry), "119 s is not yet two minutes");
        assert_eq!(s.pass.status.leaders_return, rose(risen, 3));
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]));

        kit.env.clock.advance(Duration::from_secs(1));
        let (s, report) = kit.pass([restart()]).await;
        let message =
            "store 5 serves again, but its leaders stopped coming back at 3 of 10 for 120s; the rollout goes on";
        let entry = report.entry("restart").unwrap();
        assert_eq!((entry.kind(), entry.message()), (Some(OutcomeKind::Complete), message));
        assert_eq!(kit.writes(), [TIKV], "the record goes");
        assert_eq!(annotation(&kit.live().await, ANNOTATION_RESTART), None);
        assert_eq!((s.restarting, s.pass.status.leaders_return), (None, None));
        let warning = ("Warning".to_string(), reasons::LEADERS_NOT_BACK.to_string(), message.to_string());
        assert_eq!(kit.env.events().await, [warning]);
    }

    #[tokio::test]
    async fn a_record_whose_spec_went_back_before_the_pod_was_deleted_is_removed() {
        let kit = Kit::new(pd(0), |_| {}).await;
        let pod = kit.running_pod().await;
        kit.patch(json!({"metadata": {"annotations": {ANNOTATION_RESTART: format!("{}/4", pod.uid().unwrap())}}}))
            .await;
        let (_, report) = kit.pass([drift(), restart()]).await;
        assert_eq!(report.entry("restart").unwrap().message(), "not needed", "{report}");
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![TIKV.to_string()], vec![]));
        assert_eq!(annotation(&kit.live().await, ANNOTATION_RESTART), None);
    }

    #[tokio::test]
    async fn without_a_pod_a_recorded_restart_waits_for_the_new_one() {
        let kit = Kit::new(pd(0), |t| {
            t.metadata.annotations = Some([(ANNOTATION_RESTART.to_string(), "old-uid/10".to_string())].into());
        })
        .await;
        let (_, report) = kit.pass([restart()]).await;
        let entry = report.entry("restart").unwrap();
        assert_eq!(
            (entry.kind(), entry.message()),
            (Some(OutcomeKind::Wait), "restart under way: waiting for the new pod")
        );

        let kit = Kit::new(pd(0), |_| {}).await;
        let (_, report) = kit.pass([restart()]).await;
        assert_eq!(report.entry("restart").unwrap().message(), "no pod");
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]));
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let record = RestartRecord { pod_uid: "3f1c".into(), leaders_before: 12 };
        assert_eq!(RestartRecord::parse(&record.to_string()), Some(record));
        assert_eq!(RestartRecord::parse("3f1c"), None);
        assert_eq!(RestartRecord::parse("3f1c/many"), None);
    }
}
