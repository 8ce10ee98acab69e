//! `down_clock`: since when this store has been Down — the clock its group's failover
//! reads (`status.downSince`).
//!
//! The clock starts at the first fresh PD view showing the store Up in PD's books
//! (Preparing or Serving) with a heartbeat older than two heartbeat intervals when the
//! view was read (not when the pass runs: a fresh view may be seconds old), or that
//! PD itself calls Disconnected or Down, and stops (is cleared) when the store
//! heartbeats again. A store whose heartbeat is late but not yet past the limit is
//! looked at again when it passes (heartbeat ages bring no PD event). It does not run while the
//! Cluster is paused or suspended, while the operator restarts the store (its restart
//! record is on the instance), or once the instance is leaving (offline or deleted):
//! those silences are the operator's or the user's, not a failure; the count starts
//! afresh after them. A view that is not fresh changes nothing.
//!
//! Reads: the PD view `store` read, the Cluster, the instance. Writes: the status being
//! built (written once, in `finally`). Outcomes: Complete; Retry at the limit while a
//! heartbeat is late.

use tikv_operator_pd::{NodeState, StateName};
use tikv_operator_task::{Node, Outcome, sync_task};

use crate::tikv::state::{STORE_HEARTBEAT, TikvState};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub fn down_clock() -> Node<TikvState> {
    sync_task("down_clock", run)
}

fn run(s: &mut TikvState) -> Outcome {
    if let Some(why) = stopped(s) {
        return clear(s, why);
    }
    let Some(observed) = s.store.fresh() else {
        return Outcome::complete("no fresh PD view: the clock stays as it is");
    };
    let Some(store) = s.store.store().and_then(|st| observed.view.store(st.id)) else {
        return clear(s, "no store in PD".into());
    };
    if !matches!(store.node_state, NodeState::Preparing | NodeState::Serving) {
        return clear(s, format!("store {} is {}", store.id, store.node_state.name()));
    }
    let now = s.pass.ctx.now();
    let limit = 2 * STORE_HEARTBEAT;
    // The silence is judged as of the view's reading, not now: a fresh view may be a few
    // seconds old (the whole fresh window, 45 s, under v2's timings), and a heartbeat PD
    // received since is not in it. To the second: less changes nothing at a 20 s limit.
    let view_age = s.pass.ctx.clock.instant().saturating_duration_since(observed.view.observed_at);
    let view_age = std::time::Duration::from_secs(view_age.as_secs());
    let age = store.last_heartbeat.map(|at| now.duration_since(at).unsigned_abs().saturating_sub(view_age));
    // PD's own word counts too: it calls a store Disconnected at 20 s without a
    // heartbeat, which is the event that brings us here, just at the limit.
    let pd_says_silent = matches!(store.state_name, StateName::Disconnected | StateName::Down);
    if let Some(age) = age.filter(|age| *age <= limit && !pd_says_silent) {
        let outcome = clear(s, format!("store {} heartbeats", store.id));
        if age <= STORE_HEARTBEAT {
            return outcome;
        }
        // A heartbeat missed: looked at again when the limit passes, whatever events
        // come or not (a Disconnected store brings one; a lost one must not stop the clock).
        // (A view older than that is refreshed or stale by then.)
        let after = limit.saturating_sub(age) + std::time::Duration::from_secs(1);
        return Outcome::retry(
            after,
            format!("{} (a heartbeat is late: looked at again in {after:?})", outcome.message()),
        );
    }
    let since = s.pass.status.down_since.get_or_insert(Time(now)).0;
    let heard = match age {
        Some(age) => format!("last heartbeat {}s ago, {}", age.as_secs(), store.state_name),
        None => "no heartbeat yet".into(),
    };
    Outcome::complete(format!("store {} Down since {since} ({heard})", store.id))
}

/// Why the clock does not run now, if it does not.
fn stopped(s: &TikvState) -> Option<String> {
    let cluster = s.pass.cluster.as_ref()?;
    if cluster.spec.paused {
        return Some("the cluster is paused".into());
    }
    if s.pass.suspended() {
        return Some("the cluster is suspended".into());
    }
    if s.restart_record().is_some() {
        return Some("the operator restarts the store".into());
    }
    if s.leaving() {
        return Some("the instance is leaving".into());
    }
    None
}

fn clear(s: &mut TikvState, why: String) -> Outcome {
    match s.pass.status.down_since.take() {
        Some(_) => Outcome::complete(format!("Down clock cleared: {why}")),
        None => Outcome::complete(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::t0;
    use crate::tikv::tasks::testkit::{ADDR, Kit};
    use jiff::{SignedDuration, Timestamp};
    use tikv_operator_api::names::ANNOTATION_RESTART;
    use tikv_operator_pd::NodeState::{Removing, Serving};

    async fn kit(heartbeat: Option<Timestamp>) -> Kit {
        let mut pd = crate::testing::FakePd::bootstrapped().store(5, ADDR, Serving);
        if let Some(at) = heartbeat {
            pd = pd.heartbeats(at);
        }
        let kit = Kit::new(pd, |_| {}).await;
        kit.status(|st| st.id = Some("5".into())).await;
        kit
    }

    async fn down_since(kit: &Kit) -> Option<Timestamp> {
        kit.live().await.status.and_then(|st| st.down_since).map(|t| t.0)
    }

    fn ago(seconds: i64) -> Timestamp {
        t0() - SignedDuration::from_secs(seconds)
    }

    #[tokio::test]
    async fn the_clock_starts_at_the_first_fresh_view_of_a_silent_store_and_keeps_that_time() {
        let kit = kit(Some(ago(21))).await;
        let (_, report) = kit.pass([down_clock()]).await;
        assert_eq!(down_since(&kit).await, Some(t0()), "{report}");
        assert!(report.entry("down_clock").unwrap().message().contains("last heartbeat 21s ago"), "{report}");

        kit.env.clock.advance(std::time::Duration::from_secs(60));
        let (_, report) = kit.pass([down_clock()]).await;
        assert_eq!(down_since(&kit).await, Some(t0()), "the start is kept: {report}");
        assert_eq!(kit.env.write_log(), Vec::<String>::new(), "nothing changed, nothing written");
    }

    #[tokio::test]
    async fn a_store_heard_within_two_intervals_has_no_clock_and_a_returning_one_clears_it() {
        let kit = kit(Some(ago(20))).await;
        kit.pass([down_clock()]).await;
        assert_eq!(down_since(&kit).await, None);

        kit.status(|st| st.down_since = Some(Time(ago(300)))).await;
        let (_, report) = kit.pass([down_clock()]).await;
        assert_eq!(down_since(&kit).await, None, "{report}");
        let message = report.entry("down_clock").unwrap().message();
        assert!(message.starts_with("Down clock cleared: store 5 heartbeats"), "{report}");
    }

    #[tokio::test]
    async fn pd_calling_the_store_disconnected_starts_the_clock_at_the_limit() {
        // Chaos seeds 1046 and 1284: PD's Disconnected event came with the heartbeat
        // just 20 s old; the clock did not start and nothing looked again until Down.
        let kit = kit(Some(ago(20))).await;
        kit.pd.set_store(5, |st| st.state_name = tikv_operator_pd::StateName::Disconnected);
        let (_, report) = kit.pass([down_clock()]).await;
        assert_eq!(down_since(&kit).await, Some(t0()), "{report}");
        assert!(report.entry("down_clock").unwrap().message().contains("Disconnected"), "{report}");
    }

    #[tokio::test]
    async fn silence_is_judged_as_of_the_views_reading_not_of_the_pass() {
        // A view read 8 s before the pass (still fresh to its cache) with a heartbeat 15 s
        // before the view: 23 s before the pass, but the store was heard 15 s before
        // what PD said last. No Down clock; looked at again as a late heartbeat.
        let heard = kit(Some(ago(15))).await;
        heard.env.clock.advance_both(std::time::Duration::from_secs(8));
        let (_, report) = heard.pass([down_clock()]).await;
        assert_eq!(down_since(&heard).await, None, "{report}");
        assert_eq!(report.entry("down_clock").unwrap().kind(), Some(tikv_operator_task::OutcomeKind::Retry));
        assert_eq!(report.requeue_after(), Some(std::time::Duration::from_secs(6)), "{report}");

        // Silent past the limit as of the view: the clock starts.
        let silent = kit(Some(ago(22))).await;
        silent.env.clock.advance_both(std::time::Duration::from_secs(8));
        let (_, report) = silent.pass([down_clock()]).await;
        assert!(down_since(&silent).await.is_some(), "{report}");
    }

    #[tokio::test]
    async fn a_late_heartbeat_is_looked_at_again_when_the_limit_passes() {
        let late = kit(Some(ago(15))).await;
        let (_, report) = late.pass([down_clock()]).await;
        assert_eq!(down_since(&late).await, None, "{report}");
        let entry = report.entry("down_clock").unwrap();
        assert_eq!(entry.kind(), Some(tikv_operator_task::OutcomeKind::Retry), "{report}");
        assert_eq!(report.requeue_after(), Some(std::time::Duration::from_secs(6)), "{report}");

        let heard = kit(Some(ago(3))).await;
        let (_, report) = heard.pass([down_clock()]).await;
        assert_eq!(report.entry("down_clock").unwrap().kind(), Some(tikv_operator_task::OutcomeKind::Complete));
    }

    #[tokio::test]
    async fn a_stale_view_changes_nothing() {
        let kit = kit(Some(ago(600))).await;
        kit.pd.unreachable(true);
        assert!(kit.handle.cache.refresh().await.is_err());
        let (_, report) = kit.pass_as_is([down_clock()]).await;
        assert_eq!(down_since(&kit).await, None, "{report}");
        assert!(report.entry("down_clock").unwrap().message().starts_with("no fresh PD view"));
    }

    #[tokio::test]
    async fn the_clock_does_not_run_while_paused_suspended_restarting_or_leaving() {
        let kit = kit(Some(ago(600))).await;
        let clusters: kube::Api<tikv_operator_api::Cluster> = kube::Api::namespaced(kit.env.client.clone(), "default");
        let pp = crate::apply::patch_params();
        for (patch, why) in [
            (serde_json::json!({"spec": {"paused": true}}), "the cluster is paused"),
            (
                serde_json::json!({"spec": {"paused": false, "suspendAction": {"suspendCompute": true}}}),
                "the cluster is suspended",
            ),
        ] {
            kit.status(|st| st.down_since = Some(Time(ago(300)))).await;
            clusters.patch("basic", &pp, &kube::api::Patch::Merge(&patch)).await.unwrap();
            let (_, report) = kit.pass([down_clock()]).await;
            assert_eq!(down_since(&kit).await, None, "{report}");
            assert_eq!(report.entry("down_clock").unwrap().message(), format!("Down clock cleared: {why}"));
        }
        let patch = serde_json::json!({"spec": {"suspendAction": null}});
        clusters.patch("basic", &pp, &kube::api::Patch::Merge(&patch)).await.unwrap();

        kit.patch(serde_json::json!({"metadata": {"annotations": {ANNOTATION_RESTART: "uid-1/3"}}})).await;
        let (_, report) = kit.pass([down_clock()]).await;
        assert_eq!(report.entry("down_clock").unwrap().message(), "the operator restarts the store");
        assert_eq!(down_since(&kit).await, None);

        kit.patch(
            serde_json::json!({"metadata": {"annotations": {ANNOTATION_RESTART: null}}, "spec": {"offline": true}}),
        )
        .await;
        let (_, report) = kit.pass([down_clock()]).await;
        assert_eq!(report.entry("down_clock").unwrap().message(), "the instance is leaving");
        assert_eq!(down_since(&kit).await, None);
    }

    #[tokio::test]
    async fn a_store_pd_is_removing_is_not_down() {
        let kit = kit(Some(ago(600))).await;
        kit.pd.set_store(5, |st| st.node_state = Removing);
        let (_, report) = kit.pass([down_clock()]).await;
        assert_eq!(report.entry("down_clock").unwrap().message(), "store 5 is Removing");
        assert_eq!(down_since(&kit).await, None);
    }
}
