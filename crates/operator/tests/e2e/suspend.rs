//! End-to-end suspend and resume (issue #13, item 2): `spec.suspendAction.suspendCompute`
//! deletes every pod, TiKV before PD, keeps every object, volume, store and member
//! identity; resume brings PD back first, then every TiKV pod; a change made while
//! suspended applies on resume; an eviction and offline under way wait and then go on;
//! the operator restarted in the middle of each step. The invariant watcher is on
//! throughout: a suspension's pod deletions are the user's, not a breach.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube_sim::Verb;
use serde_json::{Value, json};
use tikv_operator_api::condition::{reasons, types};

use crate::env::{CLUSTER, Env, PD_GROUP, TIKV_GROUP, check_condition, evict_annotation, expect_eq, name};

fn suspend(env: &Env, suspended: bool) {
    env.patch("clusters", CLUSTER, json!({"spec": {"suspendAction": {"suspendCompute": suspended}}}));
}

fn pods_of(env: &Env, component: &str) -> Vec<Value> {
    env.list("pods").into_iter().filter(|p| p["metadata"]["labels"]["tikv.org/component"] == component).collect()
}

/// PD instance name → recorded member ID.
fn member_ids(env: &Env) -> BTreeMap<String, String> {
    env.list("pds").iter().map(|p| (name(p), p["status"]["id"].as_str().unwrap_or_default().to_owned())).collect()
}

/// PVC name → UID: the same volumes, not new ones under the same names.
fn pvcs(env: &Env) -> BTreeMap<String, String> {
    env.list("persistentvolumeclaims")
        .iter()
        .map(|p| (name(p), p["metadata"]["uid"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// Ok once no pod is left and the Cluster, both groups and every instance say
/// `Suspended` True.
fn suspended(env: &Env) -> Result<(), String> {
    let left: Vec<String> = env.list("pods").iter().map(name).collect();
    if !left.is_empty() {
        return Err(format!("pods left: {left:?}"));
    }
    check_condition(&env.get("clusters", CLUSTER).ok_or("no Cluster")?, types::SUSPENDED, "True", reasons::SUSPENDED)?;
    for (plural, group) in [("pdgroups", PD_GROUP), ("tikvgroups", TIKV_GROUP)] {
        check_condition(&env.get(plural, group).ok_or("no group")?, types::SUSPENDED, "True", reasons::SUSPENDED)?;
    }
    for plural in ["pds", "tikvs"] {
        for i in env.list(plural) {
            check_condition(&i, types::SUSPENDED, "True", reasons::SUSPENDED)?;
        }
    }
    Ok(())
}

/// Checked at every poll while suspending: a PD pod goes (terminating, or gone) only
/// once no TiKV pod is left.
fn pd_after_tikv(env: &Env, pd_names: &BTreeSet<String>) -> Result<(), String> {
    let tikv = pods_of(env, "tikv");
    let pds = pods_of(env, "pd");
    let pd_going = pds.len() < pd_names.len() || pds.iter().any(|p| !p["metadata"]["deletionTimestamp"].is_null());
    if pd_going && !tikv.is_empty() {
        return Err(format!("a PD pod goes while TiKV pods remain: {:?}", tikv.iter().map(name).collect::<Vec<_>>()));
    }
    Ok(())
}

/// Checked at every poll while resuming: a TiKV pod exists only once every PD pod is
/// Ready.
fn tikv_after_pd(env: &Env) -> Result<(), String> {
    let tikv = pods_of(env, "tikv");
    let pds = pods_of(env, "pd");
    let ready = |p: &Value| {
        p["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    if !tikv.is_empty() && (pds.len() < 3 || !pds.iter().all(ready)) {
        return Err(format!("TiKV pods {:?} before every PD pod is Ready", tikv.iter().map(name).collect::<Vec<_>>()));
    }
    Ok(())
}

/// The operator's PD writes that remove a store or a member.
fn removals(log: &[String]) -> Vec<&String> {
    log.iter().filter(|w| w.starts_with("DELETE /store/") || w.starts_with("DELETE /members/")).collect()
}

/// Suspend with the operator restarted while the pods go, change the TiKV config while
/// suspended, resume with the operator restarted while PD comes back: the same stores,
/// members and volumes, the config running, no store or member removed in PD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_and_resume_keep_every_identity_and_apply_a_change_made_meanwhile() {
    let mut env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    let (stores, members, volumes) = (env.store_ids(), member_ids(&env), pvcs(&env));
    let pd_names: BTreeSet<String> = pods_of(&env, "pd").iter().map(name).collect();
    let (api, pd) = (env.api_seq(), env.pd_seq());

    suspend(&env, true);
    let mut order = Ok(());
    env.wait_for("a TiKV pod gone or terminating", |e| {
        order = order.clone().and(pd_after_tikv(e, &pd_names));
        let tikv = pods_of(e, "tikv");
        let going = tikv.len() < 3 || tikv.iter().any(|p| !p["metadata"]["deletionTimestamp"].is_null());
        if going { Ok(()) } else { Err("every TiKV pod still runs".into()) }
    })
    .await;
    env.restart_operator().await;
    env.wait_for("every pod gone, everything Suspended", |e| {
        order = order.clone().and(pd_after_tikv(e, &pd_names));
        suspended(e)
    })
    .await;
    order.unwrap();
    assert_eq!(env.store_ids(), stores, "store IDs kept");
    assert_eq!(member_ids(&env), members, "member IDs kept");
    assert_eq!(pvcs(&env), volumes, "every PVC kept");
    let writes = env.operator_writes(api);
    let deleted: Vec<String> = writes
        .iter()
        .filter(|r| r.verb == Verb::Delete && r.resource_path() == "pods" && r.code < 300)
        .map(|r| r.name.clone().unwrap_or_default())
        .collect();
    let first_pd = deleted.iter().position(|n| n.starts_with("pd-")).unwrap();
    assert!(deleted[..first_pd].iter().filter(|n| n.starts_with("tikv-")).count() == 3, "TiKV first: {deleted:?}");
    let evictions = writes.iter().filter(|r| r.subresource.as_deref() == Some("eviction")).count();
    assert_eq!(evictions, 0, "pods are deleted directly, not evicted");
    env.wait_for_event(CLUSTER, "Normal", "Suspended").await;

    // Suspended: a minute passes, nothing comes back and nothing is written; a config
    // change waits.
    env.settle(Duration::from_secs(2)).await;
    let idle = env.api_seq();
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(3)).await;
    assert!(env.list("pods").is_empty(), "no pod while suspended");
    assert_eq!(env.operator_api_log(idle), Vec::<String>::new(), "suspended and settled: no write");
    let config = "[raftstore]\nraft-log-gc-threshold = 100\n";
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"config": config}}}}));
    env.let_time_pass(Duration::from_secs(20), Duration::from_secs(2)).await;
    assert!(env.list("pods").is_empty(), "a change made while suspended creates no pod");
    let group = env.get("tikvgroups", TIKV_GROUP).unwrap();
    check_condition(&group, types::SYNCED, "False", reasons::SUSPENDED).unwrap();

    suspend(&env, false);
    let mut order = Ok(());
    env.wait_for("a PD pod back", |e| {
        order = order.clone().and(tikv_after_pd(e));
        if pods_of(e, "pd").is_empty() { Err("no PD pod yet".to_owned()) } else { Ok(()) }
    })
    .await;
    env.restart_operator().await;
    env.wait_for("Ready again with the new config", |e| {
        order = order.clone().and(tikv_after_pd(e));
        e.converged(3, 3)?;
        let cluster = e.get("clusters", CLUSTER).ok_or("no Cluster")?;
        check_condition(&cluster, types::SUSPENDED, "False", reasons::UNSUSPENDED)
    })
    .await;
    order.unwrap();
    assert_eq!(env.store_ids(), stores, "the same stores serve");
    assert_eq!(member_ids(&env), members, "the same members");
    assert_eq!(pvcs(&env), volumes, "the same volumes");
    let pd_ids: BTreeSet<String> = env.pd_snapshot().stores.iter().map(|s| s.id.to_string()).collect();
    let recorded: BTreeSet<String> = stores.values().cloned().collect();
    assert_eq!(pd_ids, recorded, "PD knows no other store");
    for store in env.pd_snapshot().stores {
        let (status, body) = env.proxied("GET", &store.status_address, "/config", None).await;
        assert_eq!(status, 200, "{body}");
        let running: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(running["raftstore"]["raft-log-gc-threshold"], 100, "store {} runs the new config", store.id);
    }
    let log = env.operator_pd_log(pd);
    assert!(removals(&log).is_empty(), "no store or member removed: {log:#?}");
    for event in ["Suspending", "Suspended", "Resuming", "Resumed"] {
        env.wait_for_event(CLUSTER, "Normal", event).await;
    }
    env.verify_probe(&probe);
    env.finish().await;
}

/// A store being scaled in, its leaders' eviction held (stalled transfers) when the
/// Cluster is suspended: the entry and the instance's record stay, PD is not written
/// to; resumed, the eviction ends and the store leaves PD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_under_way_waits_through_a_suspension_then_the_offline_goes_on() {
    let env = Env::start_with(|docs| {
        for doc in docs.iter_mut().filter(|d| d.kind() == "TiKVGroup") {
            doc.object["spec"]["replicas"] = json!(4);
        }
    })
    .await;
    env.wait_for("Ready with 4 stores", |e| e.converged(3, 4)).await;
    let probe = env.start_probe();
    let victim = env.tikv_sharing_a_zone();
    let id = env.store_id(&victim);
    let control = env.pd().control();
    control.update_knobs(&json!({"leader-transfer-min": "1s", "leader-transfer-max": "1s"})).unwrap();
    control.set_leader_transfer_stalled(id, true).unwrap();
    env.patch("tikvs", &victim, json!({"metadata": {"annotations": {"core.tikv.org/priority": "0"}}}));
    env.let_time_pass(Duration::from_secs(2), Duration::from_millis(200)).await;
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    env.wait_for("the victim's leaders under the operator's eviction", |e| {
        let t = e.tikv(&victim)?;
        expect_eq("annotation", evict_annotation(&t), Some(id.to_string()))?;
        expect_eq("PD's entry", e.evict_leader_stores().contains(&id), true)?;
        let leaders = e.store_of(&victim).ok_or("no store")?.leader_count;
        if leaders == 0 { Err("the store holds no leader: no eviction in flight".into()) } else { Ok(()) }
    })
    .await;
    let (api, pd) = (env.api_seq(), env.pd_seq());

    suspend(&env, true);
    env.wait_for("every pod gone, everything Suspended", suspended).await;
    env.let_time_pass(Duration::from_secs(30), Duration::from_secs(2)).await;
    let t = env.tikv(&victim).unwrap();
    assert_eq!(t["spec"]["offline"], true, "the offline is kept");
    assert_eq!(evict_annotation(&t), Some(id.to_string()), "the record is kept");
    assert!(env.evict_leader_stores().contains(&id), "PD's entry is kept");
    assert_eq!(env.operator_pd_log(pd), Vec::<String>::new(), "PD is not written to while suspended");
    let touched: Vec<String> = env
        .operator_api_log(api)
        .into_iter()
        .filter(|w| !w.contains("/status") && !w.starts_with("delete pods") && !w.contains("events"))
        .collect();
    assert!(touched.is_empty(), "a suspension only deletes pods: {touched:#?}");

    suspend(&env, false);
    control.set_leader_transfer_stalled(id, false).unwrap();
    env.wait_for("back with 3 stores, the victim's store Tombstone", |e| {
        expect_eq(
            "victim store",
            e.try_pd_snapshot()?.store(id).map(|s| s.state_name.clone()),
            Some("Tombstone".into()),
        )?;
        if e.get("tikvs", &victim).is_some() {
            return Err("the victim TiKV is still there".into());
        }
        e.converged(3, 3)
    })
    .await;
    let log = env.operator_pd_log(pd);
    assert_eq!(removals(&log), [&format!("DELETE /store/{id} -> 200")], "{log:#?}");
    assert_eq!(env.evict_leader_stores(), BTreeSet::new(), "no evict-leader entry left");
    env.verify_probe(&probe);
    env.finish().await;
}
