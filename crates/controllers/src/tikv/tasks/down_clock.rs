//! `down_clock`: since when this store has been Down — the clock its group's failover
//! reads (`status.downSince`).
//!
//! The clock starts at the first fresh PD view showing the store Up in PD's books
//! (Preparing or Serving) with a heartbeat older than two heartbeat intervals, and
//! stops (is cleared) when the store heartbeats again. It does not run while the
//! Cluster is paused or suspended, while the operator restarts the store (its restart
//! record is on the instance), or once the instance is leaving (offline or deleted):
//! those silences are the operator's or the user's, not a failure; the count starts
//! afresh after them. A view that is not fresh changes nothing.
//!
//! Reads: the PD view `store` read, the Cluster, the instance. Writes: the status being
//! built (written once, in `finally`). Outcome: Complete.

use tikv_operator_pd::NodeState;
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
    let limit = 2 * STORE_HEARTBEAT.as_secs();
    let age = store.last_heartbeat.map(|at| now.duration_since(at).as_secs().max(0).unsigned_abs());
    if age.is_some_and(|age| age <= limit) {
        return clear(s, format!("store {} heartbeats", store.id));
    }
    let since = s.pass.status.down_since.get_or_insert(Time(now)).0;
    let heard = match age {
        Some(age) => format!("last heartbeat {age}s ago"),
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
        assert_eq!(report.entry("down_clock").unwrap().message(), "Down clock cleared: store 5 heartbeats");
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
