//! `failover`: a store that stays Down is replaced (`spec.failover`), one at a time.
//!
//! Each instance keeps its own Down clock (`status.downSince`, see the TiKV task
//! `down_clock`). Once a store has been Down for `afterDown`, this task judges it with a
//! fresh PD view: it acts only when that store is the only TiKV store that is not Up
//! (not Removed, and not Up with a heartbeat) and no region with a peer on it would be
//! left without a quorum of voters on the other stores (read from PD now) — otherwise
//! PD could not rebuild its replicas, and taking it offline would wait forever or lose
//! data. Acting is marking the instance (`core.tikv.org/failover`): the updater then
//! creates a replacement in its topology and, once every wanted instance besides it is
//! available, sets it offline; the instance controller takes the store offline with
//! `DELETE /store` (never `force`) under the safety contract, and deletes its volumes
//! only once PD says Tombstone. A store that heartbeats again before it was set offline
//! is unmarked (the extra instance then goes by scale-in).
//!
//! Reads: the group, its instances, the Cluster, the PD cache's view, and PD's regions
//! of the store (`GET /regions/store/{id}`). Writes: the instance's annotation (merge
//! patch with its resourceVersion), Events, the group's `Failover` condition (only
//! while failover is enabled). Outcomes: Complete; Retry until a Down store's time is up
//! or while refused; Wait without a fresh view; Fail on an API error.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::json;
use tikv_operator_api::TiKV;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names::ANNOTATION_FAILOVER;
use tikv_operator_pd::{NodeState, PdView};
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::patch_params;
use crate::common::pd_view::{Observed, ViewFreshness};
use crate::error::{is_conflict, is_not_found};
use crate::tikvgroup::state::TikvGroupState;

/// How often a refused failover is judged again.
pub const REFUSED_RECHECK: Duration = Duration::from_secs(30);
/// How often a Down store's time is looked at again while it runs.
pub const DOWN_RECHECK: Duration = Duration::from_secs(10);

pub fn failover() -> Node<TikvGroupState> {
    task("failover", |s: &mut TikvGroupState| Box::pin(run(s)))
}

fn store_id(t: &TiKV) -> Option<u64> {
    t.status.as_ref()?.id.as_deref()?.parse().ok()
}

fn down_since(t: &TiKV) -> Option<Timestamp> {
    t.status.as_ref()?.down_since.as_ref().map(|t| t.0)
}

async fn run(s: &mut TikvGroupState) -> Outcome {
    let Some(group) = &s.pass.object else {
        return Outcome::complete("no group");
    };
    let config = group.spec.failover.clone().unwrap_or_default();
    let suspended = s.pass.suspended();
    if let Some(chosen) = s.group.instances.iter().find(|t| t.annotations().contains_key(ANNOTATION_FAILOVER)).cloned()
    {
        return in_progress(s, &chosen).await;
    }
    let mut down: Vec<(TiKV, Timestamp)> = s
        .group
        .instances
        .iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none() && !t.spec.offline)
        .filter_map(|t| down_since(t).map(|since| (t.clone(), since)))
        .collect();
    down.sort_by_key(|(_, since)| *since);
    if !config.enabled {
        s.pass.remove_condition(types::FAILOVER);
        return match down.first() {
            Some((t, _)) => Outcome::complete(format!("{} is Down; failover is not enabled", t.name_any())),
            None => Outcome::complete("failover is not enabled"),
        };
    }
    if suspended {
        return Outcome::complete("the cluster is suspended");
    }
    let Some((chosen, since)) = down.first().cloned() else {
        s.pass.set_condition(types::FAILOVER, false, reasons::NO_STORE_DOWN, "no store is Down");
        return Outcome::complete("no store is Down");
    };
    let name = chosen.name_any();
    let Some(id) = store_id(&chosen) else {
        return Outcome::complete(format!("{name} has no store ID"));
    };
    let after = config.after_down();
    let elapsed = s.pass.ctx.now().duration_since(since).as_secs().max(0).unsigned_abs();
    if elapsed < after.as_secs() {
        let left = after.as_secs() - elapsed;
        let due = since.checked_add(after).unwrap_or(since);
        // A stable message (no write per pass while the time runs), and a bounded wait,
        // so a clock that runs faster than the operator's timers (the playground) is
        // followed within a few seconds.
        let message =
            format!("store {id} ({name}) has been Down since {since}; it is replaced at {due} unless it comes back");
        s.pass.set_condition(types::FAILOVER, false, reasons::STORE_DOWN, message.clone());
        return Outcome::retry(Duration::from_secs(left).min(DOWN_RECHECK), format!("{message} ({left}s left)"));
    }
    if down.len() > 1 {
        let names: Vec<String> = down.iter().map(|(t, _)| t.name_any()).collect();
        return refuse(
            s,
            format!(
                "{} stores are Down ({}): failover replaces a store only while it is the only one not Up",
                down.len(),
                names.join(", ")
            ),
        );
    }
    let Some(pd) = s.pass.pd() else {
        return Outcome::wait("the cluster's PD is not registered yet");
    };
    let snapshot = pd.cache.snapshot();
    let observed = match (snapshot.view, ViewFreshness::of(snapshot.freshness)) {
        (Some(view), Some(freshness)) => Observed { view, freshness },
        _ => return Outcome::wait("PD has not answered: a failover waits for a fresh view"),
    };
    if !observed.is_fresh() {
        s.pass.ctx.pd_waits.waiting(&s.pass.key(), &pd.cache, "a fresh view to judge a failover");
        return Outcome::wait(format!("the PD view is not fresh ({}): a failover waits for one", observed.freshness));
    }
    s.pass.ctx.pd_waits.done(&s.pass.key());
    if let Some(why) = other_not_up(&observed.view, id) {
        return refuse(s, format!("store {id} ({name}) is Down, but {why}: only the only store not Up is replaced"));
    }
    let regions = match pd.store_regions(id).await {
        Ok(regions) => regions,
        Err(error) => return Outcome::retry(REFUSED_RECHECK, format!("reading store {id}'s regions from PD: {error}")),
    };
    let down_stores = BTreeSet::from([id]);
    let lost: Vec<u64> = regions.iter().filter(|r| r.quorum_lost_with(&down_stores)).map(|r| r.region_id).collect();
    if let Some(first) = lost.first() {
        return refuse(
            s,
            format!(
                "store {id} ({name}) is Down, but {} of its regions have no quorum of voters on other stores (region \
                 {first} first): PD could not rebuild them",
                lost.len()
            ),
        );
    }
    mark(s, &chosen, id, since).await
}

/// Why a store other than `id` is not Up, if one is not.
fn other_not_up(view: &PdView, id: u64) -> Option<String> {
    view.stores
        .values()
        .filter(|st| st.id != id && !st.is_tiflash() && st.node_state != NodeState::Removed)
        .find(|st| !st.is_up_and_heartbeating())
        .map(|st| format!("store {} is {} too", st.id, st.state_name))
}

fn refuse(s: &mut TikvGroupState, message: String) -> Outcome {
    s.pass.set_condition(types::FAILOVER, false, reasons::FAILOVER_REFUSED, message.clone());
    Outcome::retry(REFUSED_RECHECK, message)
}

/// Sets (or with `None` removes) the failover mark on `chosen`: a merge patch with the
/// resourceVersion read; the pass's copy is replaced by the patched one, so the updater
/// acts on it in this pass.
async fn set_mark(s: &mut TikvGroupState, chosen: &TiKV, value: Option<String>) -> Result<(), Outcome> {
    let name = chosen.name_any();
    let patch = json!({"metadata": {
        "resourceVersion": chosen.resource_version(),
        "annotations": {ANNOTATION_FAILOVER: value},
    }});
    let api: Api<TiKV> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
    match api.patch(&name, &patch_params(), &Patch::Merge(&patch)).await {
        Ok(updated) => {
            if let Some(slot) = s.group.instances.iter_mut().find(|t| t.name_any() == name) {
                *slot = updated;
            }
            Ok(())
        }
        Err(error) if is_conflict(&error) || is_not_found(&error) => {
            Err(Outcome::wait(format!("{name} changed meanwhile; judged again at its next event")))
        }
        Err(error) => Err(Outcome::fail(error)),
    }
}

async fn mark(s: &mut TikvGroupState, chosen: &TiKV, id: u64, since: Timestamp) -> Outcome {
    let name = chosen.name_any();
    let now = s.pass.ctx.now();
    if let Err(outcome) = set_mark(s, chosen, Some(now.to_string())).await {
        return outcome;
    }
    let message = format!("replacing store {id} ({name}), Down since {since}: a new store is created in its topology");
    s.pass.event("FailoverStarted", "Failover", message.clone()).await;
    s.pass.set_condition(types::FAILOVER, true, reasons::FAILING_OVER, message.clone());
    Outcome::complete(message)
}

async fn in_progress(s: &mut TikvGroupState, chosen: &TiKV) -> Outcome {
    let name = chosen.name_any();
    let id = store_id(chosen).map(|id| id.to_string()).unwrap_or_else(|| "?".into());
    if chosen.spec.offline || chosen.metadata.deletion_timestamp.is_some() {
        let message = format!(
            "store {id} ({name}) leaves PD: its replicas are rebuilt on the other stores; its volumes go once it is \
             Tombstone"
        );
        s.pass.set_condition(types::FAILOVER, true, reasons::FAILING_OVER, message.clone());
        return Outcome::complete(message);
    }
    let back = down_since(chosen).is_none()
        && s.pass
            .pd()
            .and_then(|pd| pd.cache.snapshot().view)
            .zip(store_id(chosen))
            .and_then(|(view, id)| view.store(id).map(|st| st.is_up_and_heartbeating()))
            .unwrap_or(false);
    if back {
        if let Err(outcome) = set_mark(s, chosen, None).await {
            return outcome;
        }
        let message = format!(
            "store {id} ({name}) is Up again before it was taken offline: failover canceled (a store more than \
             wanted now leaves by scale-in)"
        );
        s.pass.event("FailoverCanceled", "Failover", message.clone()).await;
        s.pass.set_condition(types::FAILOVER, false, reasons::NO_STORE_DOWN, message.clone());
        return Outcome::complete(message);
    }
    let message = format!("replacing store {id} ({name}): it is taken offline once its replacement serves");
    s.pass.set_condition(types::FAILOVER, true, reasons::FAILING_OVER, message.clone());
    Outcome::complete(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, TestEnv, sample_cluster, sample_tikv, sample_tikv_group, t0};
    use jiff::SignedDuration;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tikv_operator_api::condition::find_condition;
    use tikv_operator_api::tikv::Failover;
    use tikv_operator_pd::RegionVoters;
    use tikv_operator_task::{OutcomeKind, Report, Runner};

    /// Stores 1–3 Up with fresh heartbeats, one per instance `tikv-1`..`tikv-3`.
    fn three_stores() -> FakePd {
        (1..=3)
            .fold(FakePd::bootstrapped(), |pd, id| pd.store(id, &format!("tikv-{id}:20160"), NodeState::Serving))
            .heartbeats(t0())
    }

    struct Kit {
        env: TestEnv,
        pd: FakePd,
    }

    impl Kit {
        /// The group (failover on, `afterDown` 10m) and its three instances, created;
        /// `down` maps an instance number to how long ago its Down clock started.
        async fn new(pd: FakePd, enabled: bool, down: &[(u64, i64)]) -> Kit {
            let env = TestEnv::start().await;
            env.create(sample_cluster("basic")).await;
            for id in 1..=3u64 {
                let tikv = env.create(sample_tikv(&format!("tikv-{id}"), "tikv")).await;
                let api: Api<TiKV> = Api::namespaced(env.client.clone(), "default");
                let mut tikv = tikv;
                let status = tikv.status.get_or_insert_default();
                status.id = Some(id.to_string());
                status.down_since =
                    down.iter().find(|(n, _)| *n == id).map(|(_, ago)| Time(t0() - SignedDuration::from_secs(*ago)));
                api.replace_status(&tikv.name_any(), &Default::default(), &tikv).await.unwrap();
            }
            env.ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", pd.fresh_handle().await);
            let _ = enabled;
            Kit { env, pd }
        }

        fn group(enabled: bool) -> tikv_operator_api::TiKVGroup {
            let mut group = sample_tikv_group("tikv", 3);
            group.spec.failover = Some(Failover { enabled, after_down: Some("10m".into()) });
            group
        }

        async fn pass(&self, enabled: bool) -> (TikvGroupState, Report) {
            self.env.synced().await;
            let mut s = TikvGroupState::new(self.env.ctx.clone(), "default", "tikv");
            s.pass = s.pass.with_object(Self::group(enabled)).with_cluster(sample_cluster("basic"));
            s.group.instances = self.env.list::<TiKV>().await;
            self.env.sim.requests().reset();
            self.pd.clear_write_log();
            let report = Runner::new("t", [failover()]).run("k", &mut s).await;
            (s, report)
        }

        async fn marked(&self) -> Vec<String> {
            let mut names: Vec<String> = self
                .env
                .list::<TiKV>()
                .await
                .into_iter()
                .filter(|t| t.annotations().contains_key(ANNOTATION_FAILOVER))
                .map(|t| t.name_any())
                .collect();
            names.sort();
            names
        }
    }

    fn condition(s: &TikvGroupState) -> Option<(String, String, String)> {
        let status = &s.pass.status.common.conditions;
        find_condition(status, types::FAILOVER).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    fn silent(pd: FakePd, id: u64) -> FakePd {
        pd.set_store(id, |st| st.last_heartbeat = Some(t0() - SignedDuration::from_secs(700)));
        pd.set_store(id, |st| st.state_name = tikv_operator_pd::StateName::parse("Down"));
        pd
    }

    fn regions(pd: &FakePd, store: u64, voters: &[&[u64]]) {
        let list = voters
            .iter()
            .enumerate()
            .map(|(i, v)| RegionVoters { region_id: i as u64 + 10, voter_stores: v.to_vec() })
            .collect();
        pd.set_store_regions(store, list);
    }

    #[tokio::test]
    async fn a_store_down_for_after_down_is_marked_once_and_the_updater_sees_it_at_once() {
        let pd = silent(three_stores(), 3);
        regions(&pd, 3, &[&[1, 2, 3], &[1, 2, 3]]);
        let kit = Kit::new(pd, true, &[(3, 601)]).await;
        let (s, report) = kit.pass(true).await;
        assert_eq!(kit.env.write_log(), ["patch core.tikv.org/tikvs/tikv-3"], "{report}");
        assert_eq!(kit.marked().await, ["tikv-3"]);
        assert!(s.group.instances.iter().any(|t| t.annotations().contains_key(ANNOTATION_FAILOVER)));
        let (status, reason, message) = condition(&s).unwrap();
        assert_eq!((status.as_str(), reason.as_str()), ("True", reasons::FAILING_OVER));
        assert!(message.starts_with("replacing store 3 (tikv-3), Down since"), "{message}");
        let events = kit.env.events().await;
        assert_eq!(events.last().map(|e| e.1.as_str()), Some("FailoverStarted"));
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "nothing is written to PD by the group");

        let (s, report) = kit.pass(true).await;
        assert_eq!(kit.env.writes(), 0, "{report}");
        assert!(condition(&s).unwrap().2.ends_with("it is taken offline once its replacement serves"));
    }

    #[tokio::test]
    async fn a_store_down_for_less_than_after_down_waits_for_the_rest_of_the_time() {
        let kit = Kit::new(silent(three_stores(), 3), true, &[(3, 120)]).await;
        let (s, report) = kit.pass(true).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry);
        assert_eq!(kit.env.writes(), 0);
        let (status, reason, message) = condition(&s).unwrap();
        assert_eq!((status.as_str(), reason.as_str()), ("False", reasons::STORE_DOWN));
        assert!(message.ends_with("; it is replaced at 2027-01-15T08:08:00Z unless it comes back"), "{message}");
        assert!(report.entry("failover").unwrap().message().ends_with("(480s left)"), "{report}");
        assert!(matches!(report.action(), tikv_operator_task::PassResult::RequeueAfter(d) if d == DOWN_RECHECK));
        kit.env.clock.advance(Duration::from_secs(10));
        let (_, report) = kit.pass(true).await;
        assert_eq!(kit.env.writes(), 0, "the same message: no write while the time runs: {report}");
    }

    #[tokio::test]
    async fn two_stores_down_or_another_not_up_refuse() {
        let kit = Kit::new(silent(silent(three_stores(), 3), 2), true, &[(3, 700), (2, 650)]).await;
        let (s, report) = kit.pass(true).await;
        assert_eq!((report.outcome(), kit.env.writes()), (OutcomeKind::Retry, 0));
        let (_, reason, message) = condition(&s).unwrap();
        assert_eq!(reason, reasons::FAILOVER_REFUSED);
        assert!(message.starts_with("2 stores are Down (tikv-3, tikv-2)"), "{message}");

        // Store 2's instance has no clock yet (say its view was stale), but PD shows it Down.
        let kit = Kit::new(silent(silent(three_stores(), 3), 2), true, &[(3, 700)]).await;
        let (s, _) = kit.pass(true).await;
        assert_eq!(kit.env.writes(), 0);
        let message = condition(&s).unwrap().2;
        assert!(message.contains("but store 2 is Down too"), "{message}");
    }

    #[tokio::test]
    async fn regions_without_a_quorum_elsewhere_refuse() {
        let pd = silent(three_stores(), 3);
        regions(&pd, 3, &[&[1, 2, 3], &[3, 2]]);
        let kit = Kit::new(pd, true, &[(3, 700)]).await;
        let (s, _) = kit.pass(true).await;
        assert_eq!(kit.env.writes(), 0);
        let (_, reason, message) = condition(&s).unwrap();
        assert_eq!(reason, reasons::FAILOVER_REFUSED);
        assert!(message.contains("1 of its regions have no quorum of voters on other stores (region 11 first)"));

        kit.pd.fail_next(
            "store_regions",
            tikv_operator_pd::PdError::NoLeader { status: 503, message: "redirect finds no leader".into() },
        );
        let (_, report) = kit.pass(true).await;
        assert_eq!((report.outcome(), kit.env.writes()), (OutcomeKind::Retry, 0), "{report}");
    }

    #[tokio::test]
    async fn a_stale_view_decides_nothing() {
        let kit = Kit::new(silent(three_stores(), 3), true, &[(3, 700)]).await;
        let handle = kit.env.ctx.pd.get(&ClusterKey::new("default", "basic")).unwrap();
        kit.pd.unreachable(true);
        assert!(handle.cache.refresh().await.is_err());
        let (_, report) = kit.pass(true).await;
        assert_eq!((report.outcome(), kit.env.writes()), (OutcomeKind::Wait, 0), "{report}");
    }

    #[tokio::test]
    async fn disabled_failover_only_says_so() {
        let kit = Kit::new(silent(three_stores(), 3), false, &[(3, 7000)]).await;
        let (s, report) = kit.pass(false).await;
        assert_eq!(kit.env.writes(), 0);
        assert_eq!(condition(&s), None);
        assert_eq!(report.entry("failover").unwrap().message(), "tikv-3 is Down; failover is not enabled");
    }

    #[tokio::test]
    async fn no_store_down_is_reported_while_enabled() {
        let kit = Kit::new(three_stores(), true, &[]).await;
        let (s, _) = kit.pass(true).await;
        assert_eq!(kit.env.writes(), 0);
        assert_eq!(condition(&s).unwrap().1, reasons::NO_STORE_DOWN);
    }

    #[tokio::test]
    async fn a_marked_store_that_heartbeats_again_before_going_offline_is_unmarked() {
        let kit = Kit::new(three_stores(), true, &[]).await;
        let api: Api<TiKV> = Api::namespaced(kit.env.client.clone(), "default");
        let patch = json!({"metadata": {"annotations": {ANNOTATION_FAILOVER: "2027-01-15T08:00:00Z"}}});
        api.patch("tikv-3", &patch_params(), &Patch::Merge(&patch)).await.unwrap();
        let (s, report) = kit.pass(true).await;
        assert_eq!(kit.env.write_log(), ["patch core.tikv.org/tikvs/tikv-3"], "{report}");
        assert_eq!(kit.marked().await, Vec::<String>::new());
        assert!(condition(&s).unwrap().2.contains("failover canceled"));
        assert_eq!(kit.env.events().await.last().map(|e| e.1.clone()), Some("FailoverCanceled".into()));

        // Once offline, a marked store goes on leaving whatever its heartbeat.
        let patch = json!({"metadata": {"annotations": {ANNOTATION_FAILOVER: "x"}}, "spec": {"offline": true}});
        api.patch("tikv-3", &patch_params(), &Patch::Merge(&patch)).await.unwrap();
        let (s, _) = kit.pass(true).await;
        assert_eq!(kit.env.writes(), 0);
        assert!(condition(&s).unwrap().2.contains("leaves PD"));
    }
}
