//! End-to-end scale-in of a TiKVGroup (issue #11): the group chooses the stores that
//! go, each leaves PD through its instance (leaders evicted, `DELETE /store`,
//! Tombstone), then its TiKV, pod and PVCs go; a scale-in raised back mid-way is
//! cancelled through PD; one PD could not finish is refused up front; stores leave in
//! parallel within the group's budgets; an operator restarted mid-way finishes the job.
//! The invariant watcher is on throughout, as in every e2e scenario.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube_sim::{RequestRecord, Verb};
use serde_json::json;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names::{ANNOTATION_EVICT_LEADER_STORE, ANNOTATION_PRIORITY, LABEL_INSTANCE, LABEL_STORE_ID};

use crate::env::{CLUSTER, Env, TIKV_GROUP, check_condition, condition, expect_eq, name};

/// pd-sim's fixed cost of a region move: slow (a big store), long enough for a test to
/// act while a store is Offline in PD, and the fast preset's.
const SLOW_MOVES: &str = "2m";
const FAST_MOVES: &str = "50ms";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// TiKV 3 → 5 → 3: two stores leave PD one at a time (Tombstone), their TiKVs, pods
/// and PVCs go, every region is back to three replicas on live stores, one store per
/// zone stays, and Synced says ScalingIn on the way. Then 3 → 4 → 3 raised back to 4
/// while the chosen store is still Offline in PD: its offline is cancelled through PD
/// (state=Up), it serves again, and nothing new is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_5_to_3_then_a_scale_in_cancelled_mid_way() {
    let env = Env::start().await;
    env.wait_for("Ready with 3 TiKV stores", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 5}}));
    env.wait_for("Ready with 5 TiKV stores", |e| settled(e, 5)).await;

    // 5 → 3.
    let before = env.store_ids();
    let (api, pd, rev) = (env.api_seq(), env.pd_seq(), env.revision());
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    let mut seen = Seen::default();
    env.wait_for("scaled in to 3 stores", |e| {
        seen.sample(e);
        settled(e, 3)
    })
    .await;
    let gone = assert_left(&env, &before, 2, api, pd);
    let said = env.condition_messages_since(rev, "tikvgroups", TIKV_GROUP, types::SYNCED, reasons::SCALING_IN);
    assert!(
        said.iter().any(|m| m.starts_with("scaling in from 5 to 3: 1 of 2 leaving")),
        "Synced said ScalingIn on the way: {said:?}"
    );
    assert_eq!(seen.offline_at_once.len(), 1, "scaleInParallelism 1: one store leaves at a time: {seen:?}");
    let zones = env.names("tikvs").iter().map(|t| zone_of(&env, t).unwrap()).collect::<BTreeSet<_>>();
    assert_eq!(zones.len(), 3, "the EvenlySpread policy keeps one store per zone: {zones:?}");
    env.h.watcher().assert_none();
    eprintln!("5 -> 3: {gone:?} left; Synced on the way: {said:?}");

    // 3 → 4 → 3 → 4, the chosen store still Offline in PD when replicas goes back up.
    // The stores holding data go first (a new store PD left empty would leave at once,
    // with nothing to cancel): the user gives them the lowest priority before the new
    // one exists, so the group has seen it by the time it sees the new one Ready.
    let old = env.names("tikvs");
    go_first(&env, &old);
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 4}}));
    env.wait_for("Ready with 4 TiKV stores", |e| settled(e, 4)).await;
    let chosen = sharing_a_zone_with_a_newcomer(&env, &old);
    let chosen_id = store_id(&env, &chosen);
    // Its regions move off slowly (a big store): it stays Offline long enough.
    pd_control(&env).update_knobs(&json!({"region-move-base": SLOW_MOVES})).unwrap();
    let tikvs = env.names("tikvs");
    let (api, pd) = (env.api_seq(), env.pd_seq());
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    env.wait_for("the chosen store Offline in PD, regions still on it", |e| {
        let offline = e.get("tikvs", &chosen).ok_or("chosen TiKV gone")?["spec"]["offline"] == true;
        let store = e.try_pd_snapshot()?.store(chosen_id).cloned().ok_or("store gone from PD")?;
        match (offline, store.state_name.as_str(), store.region_count) {
            (true, "Offline", n) if n > 0 => Ok(()),
            _ => Err(format!("offline {offline}, store {} with {} regions", store.state_name, store.region_count)),
        }
    })
    .await;
    let offlined_others: Vec<String> =
        env.list("tikvs").iter().filter(|t| t["spec"]["offline"] == true && name(t) != chosen).map(name).collect();
    assert!(offlined_others.is_empty(), "only the lowest priority leaves: {offlined_others:?}");
    let offline = [("group", TIKV_GROUP), ("operation", "offline")];
    env.wait_for("the metrics show one offline in progress", |e| {
        expect_eq("offlines in progress", e.metric("tikv_operator_operations_in_progress", &offline), 1.0)
    })
    .await;
    let taken = [("endpoint", "/pd/api/v1/store/{id}"), ("method", "DELETE"), ("outcome", "2xx")];
    assert!(env.metric("tikv_operator_pd_requests_total", &taken) >= 1.0, "the DELETE /store/{{id}} is counted");
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 4}}));
    env.wait_for("the offline cancelled: spec.offline false, the store Up and Serving", |e| {
        let tikv = e.get("tikvs", &chosen).ok_or("chosen TiKV gone")?;
        expect_eq("spec.offline", &tikv["spec"]["offline"], &json!(false))?;
        expect_eq("status.state", tikv["status"]["state"].as_str(), Some("Serving"))?;
        let store = e.try_pd_snapshot()?.store(chosen_id).cloned().ok_or("store gone from PD")?;
        expect_eq("the store in PD", store.state_name.as_str(), "Up")
    })
    .await;
    pd_control(&env).update_knobs(&json!({"region-move-base": FAST_MOVES})).unwrap();
    env.wait_for("Ready with the same 4 TiKV stores", |e| settled(e, 4)).await;
    assert_eq!(env.names("tikvs"), tikvs, "the same four TiKVs; nothing created, nothing deleted");
    let written = env.operator_writes(api);
    assert_eq!(tikvs_written(&written, Verb::Create), BTreeSet::new(), "no TiKV created");
    assert_eq!(tikvs_written(&written, Verb::Delete), BTreeSet::new(), "no TiKV deleted");
    env.wait_for("an OfflineCanceled event naming the chosen TiKV", |e| {
        let events = e.events_of(TIKV_GROUP);
        let named = events.iter().any(|e| e.starts_with("Normal OfflineCanceled:") && e.contains(&chosen));
        if named { Ok(()) } else { Err(format!("{events:#?}")) }
    })
    .await;
    let pd_log = env.operator_pd_log(pd);
    let cancel = format!("POST /store/{chosen_id}/state?state=Up");
    assert!(pd_log.iter().any(|w| w.starts_with(&cancel)), "the offline was cancelled through PD: {pd_log:#?}");
    let tikv = env.get("tikvs", &chosen).unwrap();
    check_condition(&tikv, types::OFFLINED, "False", reasons::OFFLINE_CANCELED).unwrap();
    assert_eq!(env.store_ids()[&chosen], chosen_id.to_string(), "the same store serves again");
    assert_eq!(env.metric("tikv_operator_operations_in_progress", &offline), 0.0, "no offline in progress after");
    let canceled = [("type", "Normal"), ("reason", "OfflineCanceled")];
    env.wait_for("the Event counted once answered", |e| {
        let counted = e.metric("tikv_operator_events_total", &canceled);
        if counted >= 1.0 { Ok(()) } else { Err(format!("{counted} counted")) }
    })
    .await;
    assert!(env.metric("tikv_operator_passes_total", &[("controller", "tikv")]) > 0.0);
    assert!(env.metric("tikv_operator_pd_view_age_seconds", &[("cluster", CLUSTER)]) >= 0.0);
    eprintln!("cancelled mid-way: {chosen} (store {chosen_id}); PD writes {pd_log:#?}");
    env.verify_probe(&probe);
    env.finish().await;
}

/// TiKV 3 → 2 while PD's max-replicas is 3: refused before any store is touched
/// (ScaleInBlocked NotEnoughStores, a Warning event, no PD write, no TiKV patched);
/// once an SRE lowers max-replicas to 2 through PD's API, it proceeds to 2 stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_below_max_replicas_is_refused_until_pd_allows_it() {
    let env = Env::start().await;
    env.wait_for("Ready with 3 TiKV stores", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    let before = env.store_ids();
    let (api, pd) = (env.api_seq(), env.pd_seq());
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 2}}));
    env.wait_for("ScaleInBlocked NotEnoughStores", |e| {
        let group = e.get("tikvgroups", TIKV_GROUP).ok_or("no group")?;
        check_condition(&group, types::SCALE_IN_BLOCKED, "True", reasons::NOT_ENOUGH_STORES)
    })
    .await;
    // Long enough for a refused scale-in to show any write it would make.
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(3)).await;
    let group = env.get("tikvgroups", TIKV_GROUP).unwrap();
    let blocked = condition(&group, types::SCALE_IN_BLOCKED).unwrap();
    let message = blocked["message"].as_str().unwrap();
    assert!(message.contains("max-replicas is 3"), "the condition says why: {message}");
    check_condition(&group, types::SYNCED, "False", reasons::NOT_ENOUGH_STORES).unwrap();
    let events = env.events_of(TIKV_GROUP);
    let warnings: Vec<&String> = events.iter().filter(|e| e.starts_with("Warning NotEnoughStores:")).collect();
    assert_eq!(warnings.len(), 1, "one Warning event when first refused: {events:#?}");
    let touched: Vec<RequestRecord> = env
        .operator_writes(api)
        .into_iter()
        .filter(|r| r.subresource.as_deref() != Some("status") && r.resource != "events")
        .collect();
    let touched = describe_api(&touched);
    assert!(touched.is_empty(), "refused: only status and events are written, yet: {touched:#?}");
    let pd_log = env.operator_pd_log(pd);
    assert!(pd_log.is_empty(), "refused: no PD write, yet: {pd_log:#?}");
    assert_eq!(env.store_ids(), before, "every TiKV stays");
    assert!(env.list("tikvs").iter().all(|t| t["spec"]["offline"] == false), "no TiKV set offline");

    // An SRE lowers max-replicas: the cluster status shows it and the scale-in proceeds.
    let rev = env.revision();
    let (status, body) = env.sre_pd("POST", "/pd/api/v1/config/replicate", Some(json!({"max-replicas": 2}))).await;
    assert_eq!(status, 200, "PD accepts max-replicas 2: {body}");
    let mut seen = Seen::default();
    env.wait_for("scaled in to 2 stores", |e| {
        seen.sample(e);
        settled(e, 2)
    })
    .await;
    let gone = assert_left(&env, &before, 1, api, pd);
    let group = env.get("tikvgroups", TIKV_GROUP).unwrap();
    assert!(condition(&group, types::SCALE_IN_BLOCKED).is_none(), "ScaleInBlocked removed: {}", group["status"]);
    let said = env.condition_messages_since(rev, "tikvgroups", TIKV_GROUP, types::SYNCED, reasons::SCALING_IN);
    assert!(said.iter().any(|m| m.starts_with("scaling in from 3 to 2")), "Synced said ScalingIn: {said:?}");
    let cluster = env.get("clusters", crate::env::CLUSTER).unwrap();
    assert_eq!(cluster["status"]["replication"]["maxReplicas"], 2, "{}", cluster["status"]);
    eprintln!("3 -> 2 after max-replicas 2: {gone:?} left");
    env.verify_probe(&probe);
    env.finish().await;
}

/// TiKV 5 → 3 with scaleInParallelism 2 and maxUnavailable 2: both stores leave at
/// once. Then 4 → 3 with the operator restarted while the chosen store is Offline in PD
/// (its regions moving slowly): the new process finishes the offline, the store is
/// Tombstone, its TiKV, pod and PVCs go, and no evict-leader entry is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_scale_in_then_one_finished_across_an_operator_restart() {
    let mut env = Env::start().await;
    env.wait_for("Ready with 3 TiKV stores", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    // The stores holding data go first (pd-sim may leave a new store empty, and an
    // empty store leaves PD at once): the lowest priority, given before the new ones
    // exist; the old store alone in its zone stays.
    go_first(&env, &env.names("tikvs"));
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 5}}));
    env.wait_for("Ready with 5 TiKV stores", |e| settled(e, 5)).await;

    // Their regions move off slowly, so both stay Offline in PD long enough to be seen
    // together.
    pd_control(&env).update_knobs(&json!({"region-move-base": SLOW_MOVES})).unwrap();
    let before = env.store_ids();
    let (api, pd, rev) = (env.api_seq(), env.pd_seq(), env.revision());
    let parallel = json!({"spec": {"replicas": 3, "maxUnavailable": 2, "scaleInParallelism": 2}});
    env.patch("tikvgroups", TIKV_GROUP, parallel);
    let mut seen = Seen::default();
    env.wait_for("both stores Offline in PD", |e| {
        seen.sample(e);
        match seen.removing_at_once.len() {
            2 => Ok(()),
            n => Err(format!("{n} Offline at once so far: {seen:?}")),
        }
    })
    .await;
    pd_control(&env).update_knobs(&json!({"region-move-base": FAST_MOVES})).unwrap();
    env.wait_for("scaled in to 3 stores", |e| {
        seen.sample(e);
        settled(e, 3)
    })
    .await;
    let gone = assert_left(&env, &before, 2, api, pd);
    let gone_names: BTreeSet<String> = gone.iter().map(|(n, _)| n.clone()).collect();
    let gone_ids: BTreeSet<u64> = gone.iter().map(|(_, id)| *id).collect();
    assert_eq!(seen.offline_at_once, gone_names, "both TiKVs set offline at the same time: {seen:?}");
    assert_eq!(seen.removing_at_once, gone_ids, "both stores Offline in PD at the same time: {seen:?}");
    let said = env.condition_messages_since(rev, "tikvgroups", TIKV_GROUP, types::SYNCED, reasons::SCALING_IN);
    assert!(
        said.iter().any(|m| m.starts_with("scaling in from 5 to 3: 2 of 2 leaving")),
        "Synced said both were leaving: {said:?}"
    );
    eprintln!("5 -> 3 in parallel: {gone:?}; at once: {seen:?}");

    // 3 → 4 → 3, the operator restarted while the chosen store is Offline in PD.
    let old = env.names("tikvs");
    go_first(&env, &old);
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 4}}));
    env.wait_for("Ready with 4 TiKV stores", |e| settled(e, 4)).await;
    let chosen = sharing_a_zone_with_a_newcomer(&env, &old);
    let chosen_id = store_id(&env, &chosen);
    pd_control(&env).update_knobs(&json!({"region-move-base": SLOW_MOVES})).unwrap();
    let before = env.store_ids();
    let (api, pd) = (env.api_seq(), env.pd_seq());
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    env.wait_for("the chosen store Offline in PD, its leaders evicted by our entry", |e| {
        let tikv = e.get("tikvs", &chosen).ok_or("chosen TiKV gone")?;
        let recorded = tikv["metadata"]["annotations"][ANNOTATION_EVICT_LEADER_STORE].as_str().map(str::to_owned);
        let snapshot = e.try_pd_snapshot()?;
        let store = snapshot.store(chosen_id).ok_or("store gone from PD")?;
        match (recorded, store.evicted, store.state_name.as_str(), store.region_count) {
            (Some(id), true, "Offline", n) if id == chosen_id.to_string() && n > 0 => Ok(()),
            (recorded, evicted, state, n) => {
                Err(format!("recorded {recorded:?}, in the scheduler {evicted}, {state} with {n} regions"))
            }
        }
    })
    .await;
    env.restart_operator().await;
    let store = env.pd_snapshot().store(chosen_id).cloned().unwrap();
    assert_eq!(store.state_name, "Offline", "restarted mid-way: {store:?}");
    pd_control(&env).update_knobs(&json!({"region-move-base": FAST_MOVES})).unwrap();
    env.wait_for("scaled in to 3 stores after the restart", |e| settled(e, 3)).await;
    let gone = assert_left(&env, &before, 1, api, pd);
    assert_eq!(gone, [(chosen.clone(), chosen_id)], "the chosen store left");
    let pd_log = env.operator_pd_log(pd);
    let entries_removed = pd_log.iter().filter(|w| w.starts_with("DELETE /schedulers/evict-leader-scheduler")).count();
    assert_eq!(entries_removed, 1, "the entry added for the store was removed once: {pd_log:#?}");
    eprintln!("restarted while {chosen} (store {chosen_id}) was Offline; PD writes {pd_log:#?}");
    env.verify_probe(&probe);
    env.finish().await;
}

/// What a scale-in showed on the way, sampled at every poll.
#[derive(Debug, Default)]
struct Seen {
    /// The largest set of TiKVs seen with `spec.offline` at once.
    offline_at_once: BTreeSet<String>,
    /// The largest set of stores PD showed Offline at once.
    removing_at_once: BTreeSet<u64>,
}

impl Seen {
    fn sample(&mut self, e: &Env) {
        let offline: BTreeSet<String> =
            e.list("tikvs").iter().filter(|t| t["spec"]["offline"] == true).map(name).collect();
        if offline.len() > self.offline_at_once.len() {
            self.offline_at_once = offline;
        }
        if let Ok(snapshot) = e.try_pd_snapshot() {
            let removing: BTreeSet<u64> =
                snapshot.stores.iter().filter(|s| s.state_name == "Offline").map(|s| s.id).collect();
            if removing.len() > self.removing_at_once.len() {
                self.removing_at_once = removing;
            }
        }
    }
}

/// Ok once the cluster is converged with `kv` TiKV stores (Tombstone records of stores
/// that left stay in PD, as in the real one), the stores spread over the zones, every
/// region with max-replicas voters on Up stores and no evict-leader entry.
fn settled(e: &Env, kv: usize) -> Result<(), String> {
    if let Err(error) = e.converged(3, kv) {
        // `converged` counts every store PD lists; ours are checked below.
        if !error.starts_with("stores in PD") {
            return Err(error);
        }
    }
    let snapshot = e.try_pd_snapshot()?;
    let live = snapshot.stores.iter().filter(|s| s.state_name != "Tombstone").count();
    expect_eq("stores in PD (not Tombstone)", live, kv)?;
    let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
    for tikv in e.names("tikvs") {
        *per_zone.entry(zone_of(e, &tikv).ok_or_else(|| format!("{tikv} has no zone"))?).or_default() += 1;
    }
    let (min, max) = (per_zone.values().min().copied().unwrap_or(0), per_zone.values().max().copied().unwrap_or(0));
    if per_zone.len() < kv.min(3) || max - min > 1 {
        return Err(format!("TiKV pods not spread over the zones: {per_zone:?}"));
    }
    let up: BTreeSet<u64> = snapshot.stores.iter().filter(|s| s.state_name == "Up").map(|s| s.id).collect();
    for region in &snapshot.regions {
        let voters: BTreeSet<u64> = region.voters().map(|p| p.store_id).collect();
        if voters.len() != snapshot.max_replicas || region.peers.len() != voters.len() || !voters.is_subset(&up) {
            return Err(format!("region {} has peers {:?} (Up stores {up:?})", region.id, region.peers));
        }
    }
    let evicted = snapshot.evict_leader_stores.clone().unwrap_or_default();
    expect_eq("evict-leader entries", evicted, Vec::new())
}

/// Asserts what a finished scale-in from `before` (instance → store ID) left behind:
/// `n` TiKVs gone, each one's store Tombstone in PD and its pod and PVCs deleted, the
/// others keeping their stores; from `api`/`pd` on, the operator deleted exactly those
/// TiKVs, created none, and sent `DELETE /store` for exactly their stores. Returns the
/// TiKVs gone with their store IDs.
fn assert_left(env: &Env, before: &BTreeMap<String, String>, n: usize, api: u64, pd: u64) -> Vec<(String, u64)> {
    let now = env.store_ids();
    for (tikv, id) in &now {
        if let Some(was) = before.get(tikv) {
            assert_eq!(was, id, "{tikv} keeps its store");
        }
    }
    assert!(now.keys().all(|t| before.contains_key(t)), "no TiKV created: {now:?} (before {before:?})");
    let gone: Vec<(String, u64)> =
        before.iter().filter(|(t, _)| !now.contains_key(*t)).map(|(t, id)| (t.clone(), id.parse().unwrap())).collect();
    assert_eq!(gone.len(), n, "{n} TiKVs gone: {gone:?}");
    let snapshot = env.pd_snapshot();
    let pvcs = env.list("persistentvolumeclaims");
    for (tikv, id) in &gone {
        let state = snapshot.store(*id).map(|s| s.state_name.clone());
        assert_eq!(state.as_deref(), Some("Tombstone"), "store {id} of {tikv} is Tombstone in PD");
        assert!(env.pod_of(tikv).is_none(), "the pod of {tikv} is gone");
        let left: Vec<String> = pvcs
            .iter()
            .filter(|p| {
                let labels = &p["metadata"]["labels"];
                labels[LABEL_INSTANCE] == tikv.as_str() || labels[LABEL_STORE_ID] == id.to_string().as_str()
            })
            .map(name)
            .collect();
        assert!(left.is_empty(), "the PVCs of {tikv} (store {id}) are deleted: {left:?}");
    }
    let writes = env.operator_writes(api);
    let gone_names: BTreeSet<String> = gone.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(tikvs_written(&writes, Verb::Create), BTreeSet::new(), "no TiKV created");
    assert_eq!(tikvs_written(&writes, Verb::Delete), gone_names, "exactly the TiKVs that left are deleted");
    let removed: BTreeSet<u64> = env
        .operator_pd_writes(pd)
        .iter()
        .filter(|w| w.method == "DELETE" && w.status < 300)
        .filter_map(|w| w.path.strip_prefix("/pd/api/v1/store/")?.split('?').next()?.parse().ok())
        .collect();
    let gone_ids: BTreeSet<u64> = gone.iter().map(|(_, id)| *id).collect();
    assert_eq!(removed, gone_ids, "DELETE /store for exactly the stores that left: {:#?}", env.operator_pd_log(pd));
    gone
}

/// `kubectl annotate tikv <each> core.tikv.org/priority=0`: these leave first in a
/// scale-in (unannotated ones after every annotated one).
fn go_first(env: &Env, tikvs: &BTreeSet<String>) {
    for tikv in tikvs {
        env.patch("tikvs", tikv, json!({"metadata": {"annotations": {ANNOTATION_PRIORITY: "0"}}}));
    }
}

/// Of the TiKVs in `old`, the one whose zone a newer TiKV shares (four TiKVs over
/// three zones): the group's first choice when `old` go first.
fn sharing_a_zone_with_a_newcomer(env: &Env, old: &BTreeSet<String>) -> String {
    let zones: BTreeMap<String, String> = env
        .names("tikvs")
        .into_iter()
        .map(|t| {
            let zone = zone_of(env, &t).unwrap();
            (t, zone)
        })
        .collect();
    let shared: Vec<&String> =
        old.iter().filter(|o| zones.iter().any(|(t, z)| !old.contains(t) && Some(z) == zones.get(*o))).collect();
    assert_eq!(shared.len(), 1, "one old TiKV shares its zone with the new one: {zones:?}");
    shared[0].clone()
}

/// The control knobs of the one PD cluster the pods formed.
fn pd_control(env: &Env) -> pd_sim::Control {
    let clusters = env.h.pd_clusters();
    assert_eq!(clusters.len(), 1, "exactly one PD cluster formed");
    clusters[0].control()
}

fn store_id(env: &Env, tikv: &str) -> u64 {
    env.store_ids()[tikv].parse().unwrap()
}

/// The zone of the node an instance's pod runs on.
fn zone_of(env: &Env, instance: &str) -> Option<String> {
    let pod = env.pod_of(instance)?;
    let node = pod["spec"]["nodeName"].as_str()?;
    let node = env.nodes().into_iter().find(|n| n["metadata"]["name"] == node)?;
    node["metadata"]["labels"][ZONE_LABEL].as_str().map(str::to_owned)
}

/// The TiKVs (not their status) that `verb` succeeded on in `writes`.
fn tikvs_written(writes: &[RequestRecord], verb: Verb) -> BTreeSet<String> {
    writes
        .iter()
        .filter(|r| r.verb == verb && r.resource == "tikvs" && r.subresource.is_none() && r.code < 300)
        .filter_map(|r| r.name.clone())
        .collect()
}

/// API writes, as `verb resource[/subresource] name`.
fn describe_api(writes: &[RequestRecord]) -> Vec<String> {
    writes.iter().map(|r| format!("{} {} {}", r.verb, r.resource_path(), r.name.as_deref().unwrap_or("-"))).collect()
}
