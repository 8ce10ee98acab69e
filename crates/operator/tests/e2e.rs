//! End-to-end tests of the first cluster: kube-sim + pd-sim (sim-harness) with a watch
//! delay and the safety-invariant watcher on, `examples/basic` applied as a user
//! would, and the operator run exactly as the playground runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "e2e/env.rs"]
mod env;
#[path = "e2e/failover.rs"]
mod failover;
#[path = "e2e/idle.rs"]
mod idle;
#[path = "e2e/labels.rs"]
mod labels;
#[path = "e2e/leader.rs"]
mod leader;
#[path = "e2e/pd_membership.rs"]
mod pd_membership;
#[path = "e2e/rbac.rs"]
mod rbac;
#[path = "e2e/rolling.rs"]
mod rolling;
#[path = "e2e/scale_in.rs"]
mod scale_in;
#[path = "e2e/suspend.rs"]
mod suspend;
#[path = "e2e/tls.rs"]
mod tls;
#[path = "e2e/volumes.rs"]
mod volumes;

use std::collections::BTreeSet;
use std::time::Duration;

use kube_sim::Verb;
use serde_json::{Value, json};
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names::LABEL_STORE_ID;

use env::{CLUSTER, Env, PD_GROUP, TIKV_GROUP, check_condition, condition, evict_annotation, expect_eq, name};

/// create → Ready (every status and condition); idle for a simulated minute with zero
/// API and PD writes; scale TiKV 3 → 5 and PD 3 → 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_ready_idle_then_scale_out() {
    let env = Env::start().await;
    env.wait_for("Ready with 3 PD members and 3 TiKV stores", |e| e.converged(3, 3)).await;

    // Idle: once Ready and settled, a minute of simulated time writes nothing.
    env.assert_idle_for_a_minute().await;
    env.converged(3, 3).unwrap();

    // Scale out: exactly the missing instances, new members and stores register.
    let pds_before = env.names("pds");
    let stores_before = env.store_ids();
    let api = env.api_seq();
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 5}}));
    env.patch("pdgroups", PD_GROUP, json!({"spec": {"replicas": 5}}));
    env.wait_for("Ready with 5 PD members and 5 TiKV stores", |e| e.converged(5, 5)).await;
    let writes = env.operator_writes(api);
    let creates = |resource: &str| {
        writes.iter().filter(|r| r.verb == Verb::Create && r.resource_path() == resource && r.code < 300).count()
    };
    assert_eq!(creates("core.tikv.org/tikvs"), 2, "exactly the two missing TiKVs are created");
    assert_eq!(creates("core.tikv.org/pds"), 2, "exactly the two missing PDs are created");
    assert_eq!(creates("pods"), 4, "one pod per new instance");
    let deletes: Vec<_> = writes.iter().filter(|r| r.verb == Verb::Delete).collect();
    assert!(deletes.is_empty(), "scale-out deletes nothing: {deletes:?}");
    assert!(pds_before.is_subset(&env.names("pds")), "the first PDs stay");
    let stores_after = env.store_ids();
    for (tikv, id) in &stores_before {
        assert_eq!(stores_after.get(tikv), Some(id), "TiKV {tikv} keeps its store");
    }
    let ids: BTreeSet<&String> = stores_after.values().collect();
    assert_eq!(ids.len(), 5, "five distinct stores: {stores_after:?}");
    env.finish().await;
}

/// Twenty copies of `examples/basic` applied at once: the load backlogs the instance
/// queues, so some initial PD members get their Pod only after their group was marked
/// bootstrapped. Every cluster still forms with its three members and three stores and
/// reaches Ready (issue #18: such a member used to `--join` and be refused forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clusters_applied_at_once_all_become_ready() {
    let (env, namespaces) = Env::start_many(20).await;
    env.wait_for_within("20 clusters Ready", Duration::from_secs(600), |e| {
        let waiting: Vec<String> = namespaces.iter().filter_map(|ns| e.cluster_ready_in(ns, 3, 3).err()).collect();
        match waiting.is_empty() {
            true => Ok(()),
            false => {
                Err(format!("{} of {} clusters not Ready:\n{}", waiting.len(), namespaces.len(), waiting.join("\n")))
            }
        }
    })
    .await;
    env.finish().await;
}

/// Pause: spec changes make nothing happen but a Paused condition; unpause converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_cluster_does_nothing_until_unpaused() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;

    env.patch("clusters", CLUSTER, json!({"spec": {"paused": true}}));
    env.wait_for("the Cluster reports Paused", |e| {
        let cluster = e.get("clusters", CLUSTER).ok_or("no Cluster")?;
        check_condition(&cluster, types::PAUSED, "True", reasons::PAUSED)
    })
    .await;
    let tikvs = env.names("tikvs");
    let pods = env.names("pods");
    let (api, pd, rev) = (env.api_seq(), env.pd_seq(), env.revision());
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 4}}));
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(4)).await;
    assert_eq!(env.names("tikvs"), tikvs, "no TiKV is created while paused");
    assert_eq!(env.names("pods"), pods, "no pod is created while paused");
    let not_status: Vec<String> = env
        .operator_writes(api)
        .iter()
        .filter(|r| r.subresource.as_deref() != Some("status"))
        .map(|r| format!("{} {} {}", r.verb, r.resource_path(), r.name.as_deref().unwrap_or("-")))
        .collect();
    assert!(
        not_status.is_empty(),
        "paused: only status is written, yet: {not_status:#?}\nwhat changed meanwhile: {:#?}",
        env.changes_since(rev, &env.operator_writes(api))
    );
    assert!(env.operator_pd_writes(pd).is_empty(), "paused: no PD writes");
    let cluster = env.get("clusters", CLUSTER).unwrap();
    check_condition(&cluster, types::PAUSED, "True", reasons::PAUSED).unwrap();

    env.patch("clusters", CLUSTER, json!({"spec": {"paused": false}}));
    env.wait_for("converged with 4 TiKV after unpausing", |e| e.converged(3, 4)).await;
    env.finish().await;
}

/// A TiKV pod deleted by a user comes back, with the same store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_deleted_tikv_pod_comes_back_as_the_same_store() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let stores = env.store_ids();
    let pd_stores: BTreeSet<u64> = env.pd_snapshot().stores.iter().map(|s| s.id).collect();
    let victim = stores.keys().next().unwrap().clone();
    let pod = env.pod_of(&victim).unwrap();
    let old_uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    env.delete_pod(&name(&pod));

    env.wait_for("a new pod for the TiKV", |e| {
        let pod = e.pod_of(&victim).ok_or("no pod yet")?;
        if pod["metadata"]["uid"] == old_uid.as_str() { Err("the old pod is still there".into()) } else { Ok(()) }
    })
    .await;
    env.wait_for("Ready again", |e| e.converged(3, 3)).await;
    assert_eq!(env.store_ids(), stores, "every TiKV keeps its store ID");
    let after: BTreeSet<u64> = env.pd_snapshot().stores.iter().map(|s| s.id).collect();
    assert_eq!(after, pd_stores, "PD has the same stores, no new one");
    env.finish().await;
}

/// A TiKV pod deleted by a user with kubectl's default grace (the pod's own) runs its
/// preStop hook, the operator's binary its init container copied in: while an SRE's
/// evict-leader entry moves the store's leaders (slowly here), tikv-server keeps
/// serving; the hook watches the count fall to 0 on the store's own /metrics, and only
/// then is the store stopped. The pod comes back as the same store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deleted_tikv_pod_stops_only_once_its_leaders_moved() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let victim = env.names("tikvs").into_iter().max_by_key(|t| env.store_of(t).map(|s| s.leader_count)).unwrap();
    let id = env.store_id(&victim);
    let pod = name(&env.pod_of(&victim).unwrap());
    let control = env.pd().control();
    let knobs = control.knobs();
    control
        .update_knobs(&json!({"leader-transfer-min": "2s", "leader-transfer-max": "2s", "leader-schedule-limit": 1}))
        .unwrap();
    let pd_ctl = env.h.pd_ctl("http://pd-pd.default.svc:2379").user_agent(env::PD_CTL);
    pd_ctl.evict_leader_add(id).await.unwrap();
    env.delete_pod(&pod);

    let hook = env
        .wait_for("the deleted pod's preStop hook to end", |e| {
            let runs = e.h.program_runs();
            runs.into_iter().find(|r| r.pod == pod && r.hook && r.ended.is_some()).ok_or_else(|| "not yet".to_owned())
        })
        .await;
    assert_eq!(hook.exit, Some(0), "{:#?}", hook.output);
    assert_eq!(hook.argv[..2], ["/var/lib/tikv-operator/tikv-operator", "tikv-prestop"]);
    let counts: Vec<u64> = hook
        .output
        .iter()
        .filter_map(|l| l.strip_prefix(&format!("store {id} leads "))?.strip_suffix(" regions")?.parse().ok())
        .collect();
    assert!(counts.len() > 1 && counts[0] > 0, "the hook saw the leaders leave: {:#?}", hook.output);
    assert!(counts.windows(2).all(|w| w[1] < w[0]), "{counts:?}");
    assert_eq!(
        hook.output.last().map(String::as_str),
        Some(format!("store {id} leads no region: tikv-server may stop").as_str())
    );
    let install = env.h.program_runs().into_iter().find(|r| r.pod == pod && !r.hook).unwrap();
    assert_eq!((install.container.as_str(), install.exit), ("install-prestop", Some(0)));

    control.update_knobs(&serde_json::to_value(&knobs).unwrap()).unwrap();
    pd_ctl.evict_leader_remove(id).await.unwrap();
    env.wait_for("Ready again, the same stores", |e| e.converged(3, 3)).await;
    assert_eq!(env.store_id(&victim), id);
    env.finish().await;
}

/// A PD answering with another cluster ID than the one recorded blocks the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_id_mismatch_blocks() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let real_id = env.pd_snapshot().cluster_id;
    let (api, pd) = (env.api_seq(), env.pd_seq());
    let other = real_id.wrapping_add(1).to_string();
    env.h
        .store()
        .client("intruder")
        .patch_status(&env::r("clusters"), Some(env::NS), CLUSTER, &json!({"status": {"id": other}}))
        .unwrap();
    env.wait_for("Synced=False with reason ClusterIDMismatch", |e| {
        let cluster = e.get("clusters", CLUSTER).ok_or("no Cluster")?;
        let synced = condition(&cluster, types::SYNCED).ok_or("no Synced")?;
        if synced["status"] == "False" && synced["reason"] == reasons::CLUSTER_ID_MISMATCH {
            Ok(())
        } else {
            Err(format!("Synced is {synced}"))
        }
    })
    .await;
    // Nothing acts on that PD any more: a TiKV scale-out (carried out within this
    // window when the IDs match) is not, and nothing is deleted.
    let (tikvs, pds, pods) = (env.names("tikvs"), env.names("pds"), env.names("pods"));
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 4}}));
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(4)).await;
    assert_eq!(env.names("tikvs"), tikvs, "no TiKV is created against a mismatched PD");
    assert_eq!(env.names("pds"), pds, "every PD stays");
    assert_eq!(env.names("pods"), pods, "no pod is created or deleted");
    let members = env.pd_snapshot().members.iter().filter(|m| m.in_etcd).count();
    assert_eq!(members, 3, "PD keeps its three members");
    let cluster = env.get("clusters", CLUSTER).unwrap();
    assert_eq!(cluster["status"]["id"].as_str(), Some(other.as_str()), "the recorded ID is not overwritten");
    let destructive: Vec<String> = env
        .operator_writes(api)
        .iter()
        .filter(|r| r.subresource.as_deref() != Some("status"))
        .map(|r| format!("{} {} {}", r.verb, r.resource_path(), r.name.as_deref().unwrap_or("-")))
        .collect();
    assert!(destructive.is_empty(), "mismatch: only status is written, yet: {destructive:#?}");
    assert!(env.operator_pd_writes(pd).is_empty(), "mismatch: no PD writes");
    env.finish().await;
}

/// Deleting the Cluster (deletionPolicy Retain, the default): the groups delete their
/// instances, every finalizer is released, the pods go with their instances, the PVCs
/// stay — with the invariant watcher on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_deleted_under_retain_keeps_the_volumes() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let pvcs = env.names("persistentvolumeclaims");
    assert_eq!(pvcs.len(), 6, "{pvcs:?}");

    env.delete("clusters", CLUSTER);
    env.wait_for("the Cluster, its groups, instances and pods gone", |e| {
        for plural in ["clusters", "pdgroups", "tikvgroups", "pds", "tikvs", "pods"] {
            let left = e.names(plural);
            if !left.is_empty() {
                return Err(format!("{plural} left: {left:?}"));
            }
        }
        Ok(())
    })
    .await;
    assert_eq!(env.names("persistentvolumeclaims"), pvcs, "Retain keeps every PVC");
    env.finish().await;
}

/// A user strips the Cluster's finalizer and deletes it: the groups are left without a
/// Cluster and say so; deleting them then releases every instance as under Retain (no
/// Cluster, no PD to ask), keeping the PVCs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_left_without_their_cluster_are_released_as_under_retain() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let pvcs = env.names("persistentvolumeclaims");

    // Back to back: the operator would put its finalizer back once it sees the patch
    // (with kubectl, seconds apart, it does, and the deletion takes the ordinary path),
    // but the watch delay lets the delete land first.
    env.patch("clusters", CLUSTER, json!({"metadata": {"finalizers": null}}));
    env.delete("clusters", CLUSTER);
    env.wait_for("both groups say their Cluster is gone", |e| {
        for (plural, group) in [("pdgroups", PD_GROUP), ("tikvgroups", TIKV_GROUP)] {
            let group = e.get(plural, group).ok_or("group gone too early")?;
            check_condition(&group, types::READY, "False", reasons::CLUSTER_NOT_FOUND)?;
        }
        Ok(())
    })
    .await;

    let api = env.api_seq();
    env.delete("tikvgroups", TIKV_GROUP);
    env.delete("pdgroups", PD_GROUP);
    env.wait_for("groups, instances and pods gone", |e| {
        for plural in ["pdgroups", "tikvgroups", "pds", "tikvs", "pods"] {
            let left = e.names(plural);
            if !left.is_empty() {
                return Err(format!("{plural} left: {left:?}"));
            }
        }
        Ok(())
    })
    .await;
    assert_eq!(env.names("persistentvolumeclaims"), pvcs, "PVCs are kept");
    let (requests, _) = env.h.kube_sim().requests().since(api);
    let confirmed = requests.iter().any(|r| {
        env::is_operator(r) && r.verb == Verb::Get && r.resource == "clusters" && r.name.as_deref() == Some(CLUSTER)
    });
    assert!(confirmed, "each release confirmed the Cluster gone with a fresh GET, not the cache");
    env.finish().await;
}

/// Waits for `tikv`'s conditions and PD's ground truth to say the same thing. Each
/// check is `(condition type, status, reason)`.
fn tikv_says(env: &Env, tikv: &str, checks: &[(&str, &str, &str)]) -> Result<Value, String> {
    let t = env.tikv(tikv)?;
    for (type_, status, reason) in checks {
        check_condition(&t, type_, status, reason)?;
    }
    Ok(t)
}

fn message<'v>(t: &'v Value, type_: &str) -> &'v str {
    condition(t, type_).and_then(|c| c["message"].as_str()).unwrap_or_default()
}

/// Every region has max-replicas (3) voters, each on a store that is Up, none on `gone`.
fn regions_replicated_without(env: &Env, gone: u64) -> Result<(), String> {
    let snapshot = env.try_pd_snapshot()?;
    let up: BTreeSet<u64> = snapshot.stores.iter().filter(|s| s.state_name == "Up").map(|s| s.id).collect();
    for region in &snapshot.regions {
        let voters: Vec<u64> = region.voters().map(|p| p.store_id).collect();
        if voters.len() != snapshot.max_replicas || voters.iter().any(|s| *s == gone || !up.contains(s)) {
            return Err(format!("region {} has voters on {voters:?} (Up: {up:?})", region.id));
        }
    }
    Ok(())
}

/// Knobs that keep a store Removing for a while: one replica moved at a time, each
/// taking a minute (simulated).
fn slow_region_moves(env: &Env) -> pd_sim::Knobs {
    let control = env.pd().control();
    let before = control.knobs();
    control.update_knobs(&json!({"region-move-base": "1m", "replica-schedule-limit": 1})).unwrap();
    before
}

/// A TiKVGroup scaled in from four stores to three, the store to go steered by its
/// priority annotation: cancelled mid-way by raising replicas again (the store serves
/// again, no evict-leader entry or annotation left), then carried out to Tombstone
/// (regions re-replicated on the other three), after which the group deletes the TiKV
/// and it loses its pod, its PVCs and its finalizer; three stores serve and the idle
/// cluster writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_cancelled_mid_way_then_carried_out_and_the_tikv_deleted() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 4}}));
    env.wait_for("Ready with 4 stores", |e| e.converged(3, 4)).await;
    let victim = env.tikv_sharing_a_zone();
    let id = env.store_id(&victim);
    // The lowest priority goes first when the group scales in.
    env.patch("tikvs", &victim, json!({"metadata": {"annotations": {"core.tikv.org/priority": "0"}}}));
    // The operator's caches see the annotation before the group is scaled in.
    env.let_time_pass(Duration::from_secs(2), Duration::from_millis(200)).await;

    // Cancelled mid-way: regions move slowly, so the store stays Removing.
    let knobs = slow_region_moves(&env);
    let (api, pd) = (env.api_seq(), env.pd_seq());
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    env.wait_for("the store Removing, with its leaders evicted", |e| {
        let t = tikv_says(
            e,
            &victim,
            &[
                (types::LEADERS_EVICTED, "True", reasons::EVICTED),
                (types::OFFLINED, "False", reasons::OFFLINE_PROCESSING),
            ],
        )?;
        let store = e.store_of(&victim).ok_or("no store")?;
        expect_eq("store state in PD", store.state_name.as_str(), "Offline")?;
        expect_eq("status.state", t["status"]["state"].as_str(), Some("Removing"))?;
        expect_eq("annotation", evict_annotation(&t), Some(id.to_string()))?;
        if !message(&t, types::OFFLINED).contains("regions left") {
            return Err(format!("Offlined gives no progress: {}", message(&t, types::OFFLINED)));
        }
        Ok(())
    })
    .await;
    assert!(env.evict_leader_stores().contains(&id), "the store is under eviction while it leaves");
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 4}}));
    env.wait_for("the offline cancelled: the store serves, no entry or annotation left", |e| {
        let t = tikv_says(
            e,
            &victim,
            &[
                (types::OFFLINED, "False", reasons::OFFLINE_CANCELED),
                (types::LEADERS_EVICTED, "False", reasons::NOT_EVICTED),
                (types::READY, "True", reasons::READY),
            ],
        )?;
        expect_eq("store state in PD", e.store_of(&victim).ok_or("no store")?.state_name.as_str(), "Up")?;
        expect_eq("status.state", t["status"]["state"].as_str(), Some("Serving"))?;
        expect_eq("annotation", evict_annotation(&t), None)?;
        expect_eq("evict-leader entries", e.evict_leader_stores(), BTreeSet::new())
    })
    .await;
    env.pd().control().set_knobs(knobs);
    assert_eq!(
        env.operator_pd_log(pd),
        [
            format!("POST /schedulers {{store {id}}} -> 200"),
            format!("DELETE /store/{id} -> 200"),
            format!("DELETE /schedulers/evict-leader-scheduler-{id} -> 200"),
            format!("POST /store/{id}/state?state=Up -> 200"),
        ],
        "evict, offline; on the cancel: the entry removed, the store back Up"
    );
    for reason in ["EvictionStarted", "EvictionDone", "OfflineStarted", "EvictionEnded", "OfflineCanceled"] {
        env.wait_for_event(&victim, "Normal", reason).await;
    }
    let deletes: Vec<String> = env.operator_api_log(api).into_iter().filter(|w| w.starts_with("delete")).collect();
    assert!(deletes.is_empty(), "an offline deletes nothing: {deletes:?}");
    env.wait_for("Ready with 4 stores again", |e| e.converged(3, 4)).await;

    // Carried out to Tombstone: regions re-replicated on the other stores; then the
    // group deletes the TiKV, which loses its pod, its PVCs and its finalizer.
    let pvcs: BTreeSet<String> = env.pvcs_of(&victim).iter().map(name).collect();
    assert!(!pvcs.is_empty());
    for pvc in env.pvcs_of(&victim) {
        assert_eq!(pvc["metadata"]["labels"][LABEL_STORE_ID], id.to_string(), "{} carries its store ID", name(&pvc));
    }
    let pod_name = name(&env.pod_of(&victim).unwrap());
    let (api, pd) = (env.api_seq(), env.pd_seq());
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    env.wait_for("the TiKV, its pod and its PVCs gone, the store Tombstone", |e| {
        if e.get("tikvs", &victim).is_some() {
            return Err("the TiKV is still there".into());
        }
        if e.pod_of(&victim).is_some() {
            return Err("the pod is still there".into());
        }
        let left = e.pvcs_of(&victim);
        if !left.is_empty() {
            return Err(format!("PVCs left: {:?}", left.iter().map(name).collect::<Vec<_>>()));
        }
        let state = e.pd_snapshot().store(id).map(|s| s.state_name.clone());
        expect_eq("store state in PD", state.as_deref(), Some("Tombstone"))?;
        expect_eq("evict-leader entries", e.evict_leader_stores(), BTreeSet::new())?;
        regions_replicated_without(e, id)
    })
    .await;
    assert_eq!(
        env.operator_pd_log(pd),
        [
            format!("POST /schedulers {{store {id}}} -> 200"),
            format!("DELETE /store/{id} -> 200"),
            format!("DELETE /schedulers/evict-leader-scheduler-{id} -> 200"),
        ]
    );
    env.wait_for_event(&victim, "Normal", "OfflineCompleted").await;
    env.wait_for("Ready with the 3 other stores", |e| e.converged(3, 3)).await;
    let writes = env.operator_api_log(api);
    assert!(writes.contains(&format!("delete core.tikv.org/tikvs {victim}")), "the group deleted it: {writes:#?}");
    assert!(writes.contains(&format!("delete pods {pod_name}")), "the operator deleted the pod: {writes:#?}");
    for pvc in &pvcs {
        assert!(writes.contains(&format!("delete persistentvolumeclaims {pvc}")), "{pvc} deleted: {writes:#?}");
    }
    let creates: Vec<&String> = writes.iter().filter(|w| w.starts_with("create core.tikv.org/tikvs")).collect();
    assert!(creates.is_empty(), "no replacement: {creates:?}");

    env.assert_idle_for_a_minute().await;
    env.converged(3, 3).unwrap();
    env.finish().await;
}

/// `kubectl delete tikv X` on a 3-store cluster with max-replicas 3: the group creates
/// the replacement at once; X is not taken offline (PD would refuse) and keeps its
/// leaders until the replacement is Up (held Pending here by cordoned nodes), and the
/// condition says so; then X's leaders
/// move, X goes Tombstone, its pod and PVCs go, three stores serve. Then the Cluster is
/// deleted under `deletionPolicy: Delete`: every PVC goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_tikv_is_replaced_first_then_removed_and_cluster_deletion_deletes_volumes() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let before = env.names("tikvs");
    let victim = before.first().unwrap().clone();
    let id = env.store_id(&victim);
    let pod = name(&env.pod_of(&victim).unwrap());
    let pvcs: BTreeSet<String> = env.pvcs_of(&victim).iter().map(name).collect();

    // No node takes new pods for now: the replacement waits Pending.
    env.cordon_all(true);
    let (api, pd) = (env.api_seq(), env.pd_seq());
    env.delete("tikvs", &victim);
    let replacement = env
        .wait_for("a replacement created at once", |e| {
            let new: Vec<String> = e.names("tikvs").difference(&before).cloned().collect();
            match new.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(format!("new TiKVs: {new:?}")),
            }
        })
        .await;
    env.wait_for("the offline waits while only two other stores are Up", |e| {
        let t = tikv_says(
            e,
            &victim,
            &[
                (types::LEADERS_EVICTED, "False", reasons::NOT_ENOUGH_STORES),
                (types::OFFLINED, "False", reasons::NOT_ENOUGH_STORES),
            ],
        )?;
        if !message(&t, types::OFFLINED).contains("2 other Up stores would remain and max-replicas is 3") {
            return Err(format!("Offlined does not say why: {}", message(&t, types::OFFLINED)));
        }
        Ok(())
    })
    .await;
    // PD is not asked what it would refuse, and the leaders stay where they serve.
    assert_eq!(env.operator_pd_log(pd), Vec::<String>::new());
    assert_eq!(env.store_of(&victim).unwrap().state_name, "Up", "the store still serves");
    assert!(env.pod_of(&victim).is_some() && env.pvcs_of(&victim).len() == pvcs.len(), "pod and PVCs stay");
    let deletes: Vec<String> = env.operator_api_log(api).into_iter().filter(|w| w.starts_with("delete")).collect();
    assert!(deletes.is_empty(), "nothing is deleted while the store is in PD: {deletes:?}");

    env.cordon_all(false);
    env.wait_for("the replacement serves and X is gone with its pod and PVCs", |e| {
        if e.get("tikvs", &victim).is_some() || e.pod_of(&victim).is_some() || !e.pvcs_of(&victim).is_empty() {
            return Err("the TiKV, its pod or its PVCs are still there".into());
        }
        e.converged(3, 3)
    })
    .await;
    assert!(env.names("tikvs").contains(&replacement));
    assert_eq!(env.pd_snapshot().store(id).map(|s| s.state_name.clone()).as_deref(), Some("Tombstone"));
    assert_eq!(env.evict_leader_stores(), BTreeSet::new(), "no evict-leader entry left");
    regions_replicated_without(&env, id).unwrap();
    let writes = env.operator_api_log(api);
    assert!(writes.contains(&format!("delete pods {pod}")), "{writes:#?}");
    for pvc in &pvcs {
        assert!(writes.contains(&format!("delete persistentvolumeclaims {pvc}")), "{pvc} deleted: {writes:#?}");
    }
    let log = env.operator_pd_log(pd);
    let accepted: Vec<&String> = log.iter().filter(|w| w.starts_with(&format!("DELETE /store/{id} -> 2"))).collect();
    assert_eq!(accepted.len(), 1, "{log:#?}");
    assert_eq!(
        log.last(),
        Some(&format!("DELETE /schedulers/evict-leader-scheduler-{id} -> 200")),
        "the entry goes last: {log:#?}"
    );
    for reason in ["OfflineStarted", "OfflineCompleted"] {
        env.wait_for_event(&victim, "Normal", reason).await;
    }

    // The Cluster deleted under deletionPolicy: Delete — the data goes with it.
    env.patch("clusters", CLUSTER, json!({"spec": {"deletionPolicy": "Delete"}}));
    env.wait_for("the Cluster's spec seen", |e| {
        let cluster = e.get("clusters", CLUSTER).ok_or("no Cluster")?;
        expect_eq("observedGeneration", &cluster["status"]["observedGeneration"], &cluster["metadata"]["generation"])
    })
    .await;
    assert_eq!(env.names("persistentvolumeclaims").len(), 6);
    env.delete("clusters", CLUSTER);
    env.wait_for("everything gone, PVCs included", |e| e.nothing_of_the_cluster_left()).await;
    env.finish().await;
}

/// No DELETE /store in these PD log lines.
fn no_store_deletion(log: &[String]) -> Result<(), String> {
    match log.iter().find(|w| w.starts_with("DELETE /store/")) {
        Some(w) => Err(format!("the operator asked PD to take a store offline: {w} (log: {log:#?})")),
        None => Ok(()),
    }
}

/// Four stores, `evictLeaderStallTimeout: 30s`.
///
/// - An SRE's evict-leader entry (pd-ctl) on a store that is not leaving stays; on a
///   store then taken offline it is used (no entry or annotation of the operator's),
///   and it outlives the cancelled offline.
/// - A stalled eviction says so (`EvictionStalled`) and nothing is taken offline; the
///   operator restarted meanwhile picks it up where it was.
/// - PD unavailable while the leaders leave: no offline until PD answers again.
/// - The operator restarted while PD moves the regions: the offline goes on.
/// - PD unavailable while the deleted TiKV's store becomes Tombstone: its pod and PVCs
///   stay until a fresh view shows it, then go.
///
/// No evict-leader entry of the operator's is left at the end, and the idle cluster
/// writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sre_entries_stalls_pd_outages_and_operator_restarts_around_offline() {
    let mut env = Env::start_with(|docs| {
        for doc in docs.iter_mut().filter(|d| d.kind() == "TiKVGroup") {
            doc.object["spec"]["replicas"] = json!(4);
            doc.object["spec"]["template"]["spec"]["evictLeaderStallTimeout"] = json!("30s");
        }
    })
    .await;
    env.wait_for("Ready with 4 stores", |e| e.converged(3, 4)).await;
    let victim = env.tikv_sharing_a_zone();
    let id = env.store_id(&victim);
    // The SRE works on the same store: the group may take it out (its zone keeps
    // another store), and it holds leaders and regions to move.
    let sre = victim.clone();
    let sre_id = env.store_id(&sre);
    let control = env.pd().control();

    // An SRE's entry on a store nobody takes offline: PD moves its leaders, the
    // operator leaves it alone.
    let (api, pd) = (env.api_seq(), env.pd_seq());
    let (status, body) = env
        .sre_pd("POST", "/pd/api/v1/schedulers", Some(json!({"name": "evict-leader-scheduler", "store_id": sre_id})))
        .await;
    assert_eq!(status, 200, "{body}");
    env.wait_for("the SRE's store without leaders", |e| {
        expect_eq("leaders", e.store_of(&sre).ok_or("no store")?.leader_count, 0)
    })
    .await;
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(3)).await;
    assert_eq!(env.evict_leader_stores(), BTreeSet::from([sre_id]), "the SRE's entry stays");
    assert_eq!(env.operator_pd_log(pd), Vec::<String>::new(), "the operator writes nothing to PD");
    assert_eq!(evict_annotation(&env.tikv(&sre).unwrap()), None);
    let touched: Vec<String> =
        env.operator_api_log(api).into_iter().filter(|w| w.contains(&sre) && !w.contains("/status")).collect();
    assert!(touched.is_empty(), "the operator does not touch the SRE's store's TiKV: {touched:?}");

    // That store taken offline: the SRE's entry is used, and stays after the cancel.
    let knobs = slow_region_moves(&env);
    let pd = env.pd_seq();
    // The group scales in by one; the lowest priority goes first.
    env.patch("tikvs", &sre, json!({"metadata": {"annotations": {"core.tikv.org/priority": "0"}}}));
    // The operator's caches see the annotation before the group is scaled in.
    env.let_time_pass(Duration::from_secs(2), Duration::from_millis(200)).await;
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    env.wait_for("the store Removing under the SRE's entry", |e| {
        let t = tikv_says(
            e,
            &sre,
            &[
                (types::LEADERS_EVICTED, "True", reasons::EVICTED),
                (types::OFFLINED, "False", reasons::OFFLINE_PROCESSING),
            ],
        )?;
        expect_eq("store state in PD", e.store_of(&sre).ok_or("no store")?.state_name.as_str(), "Offline")?;
        if !message(&t, types::LEADERS_EVICTED).contains("did not add") {
            return Err(format!("LeadersEvicted does not say whose entry: {}", message(&t, types::LEADERS_EVICTED)));
        }
        expect_eq("annotation", evict_annotation(&t), None)
    })
    .await;
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 4}}));
    env.wait_for("the offline cancelled", |e| {
        tikv_says(e, &sre, &[(types::OFFLINED, "False", reasons::OFFLINE_CANCELED)])?;
        expect_eq("store state in PD", e.store_of(&sre).ok_or("no store")?.state_name.as_str(), "Up")
    })
    .await;
    control.set_knobs(knobs.clone());
    env.let_time_pass(Duration::from_secs(30), Duration::from_secs(2)).await;
    assert_eq!(
        env.operator_pd_log(pd),
        [format!("DELETE /store/{sre_id} -> 200"), format!("POST /store/{sre_id}/state?state=Up -> 200")],
        "the SRE's entry is neither added again nor removed"
    );
    assert_eq!(env.evict_leader_stores(), BTreeSet::from([sre_id]), "the SRE's entry stays");
    let (status, body) =
        env.sre_pd("DELETE", &format!("/pd/api/v1/schedulers/evict-leader-scheduler-{sre_id}"), None).await;
    assert_eq!(status, 200, "{body}");
    env.wait_for("Ready with 4 stores", |e| e.converged(3, 4)).await;

    // A stalled eviction: reported, never followed by an offline.
    env.wait_for("the store holds leaders", |e| {
        let leaders = e.store_of(&victim).ok_or("no store")?.leader_count;
        if leaders == 0 {
            let counts: Vec<String> = e
                .pd_snapshot()
                .stores
                .iter()
                .map(|s| format!("{}: {} leaders {} regions", s.id, s.leader_count, s.region_count))
                .collect();
            Err(format!("no leaders yet: {counts:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    // pd-sim ends a stalled transfer when a transfer would have finished (5 ms in the
    // fast preset) and evict-leader issues the next at once: at 20x that busy-loops the
    // simulator. Transfers that take a second (PD waits far longer for one) keep it
    // responsive.
    control.update_knobs(&json!({"leader-transfer-min": "1s", "leader-transfer-max": "1s"})).unwrap();
    control.set_leader_transfer_stalled(id, true).unwrap();
    let pd = env.pd_seq();
    env.patch("tikvs", &sre, json!({"metadata": {"annotations": {"core.tikv.org/priority": "10"}}}));
    env.patch("tikvs", &victim, json!({"metadata": {"annotations": {"core.tikv.org/priority": "0"}}}));
    // The operator's caches see the annotation before the group is scaled in.
    env.let_time_pass(Duration::from_secs(2), Duration::from_millis(200)).await;
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    env.wait_for("LeadersEvicted False EvictionStalled", |e| {
        let t = tikv_says(e, &victim, &[(types::LEADERS_EVICTED, "False", reasons::EVICTION_STALLED)])?;
        expect_eq("annotation", evict_annotation(&t), Some(id.to_string()))?;
        no_store_deletion(&e.operator_pd_log(pd))
    })
    .await;
    env.wait_for_event(&victim, "Warning", "EvictionStalled").await;
    let leaders = env.store_of(&victim).unwrap().leader_count;
    assert!(leaders > 0, "the store keeps its leaders");
    assert!(
        message(&env.tikv(&victim).unwrap(), types::LEADERS_EVICTED).contains(&format!("{leaders} of")),
        "the condition counts the leaders left: {}",
        message(&env.tikv(&victim).unwrap(), types::LEADERS_EVICTED)
    );
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(3)).await;
    no_store_deletion(&env.operator_pd_log(pd)).unwrap();
    assert_eq!(env.store_of(&victim).unwrap().state_name, "Up");

    // The operator restarted during the eviction: the same entry, the same stall.
    env.restart_operator().await;
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(3)).await;
    let t = tikv_says(&env, &victim, &[(types::LEADERS_EVICTED, "False", reasons::EVICTION_STALLED)]).unwrap();
    assert_eq!(evict_annotation(&t), Some(id.to_string()));
    assert_eq!(env.evict_leader_stores(), BTreeSet::from([id]));
    let log = env.operator_pd_log(pd);
    no_store_deletion(&log).unwrap();
    assert_eq!(log, [format!("POST /schedulers {{store {id}}} -> 200")], "the entry is added once");

    // PD unavailable while the leaders leave: the operator cannot see it, and does not
    // take the store offline until it can.
    control.inject_fault(pd_sim::Fault {
        path: "/pd/api/v1".into(),
        status: Some(503),
        body: Some("PD unavailable (test fault)".into()),
        ..Default::default()
    });
    control.set_leader_transfer_stalled(id, false).unwrap();
    env.wait_for("the leaders gone (PD's ground truth)", |e| {
        expect_eq("leaders", e.store_of(&victim).ok_or("no store")?.leader_count, 0)
    })
    .await;
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(3)).await;
    no_store_deletion(&env.operator_pd_log(pd)).unwrap();
    assert_eq!(env.store_of(&victim).unwrap().state_name, "Up", "not taken offline");

    // PD back (regions moving slowly): the offline proceeds.
    slow_region_moves(&env);
    control.clear_faults();
    env.wait_for("the store Removing once PD answers", |e| {
        tikv_says(
            e,
            &victim,
            &[
                (types::LEADERS_EVICTED, "True", reasons::EVICTED),
                (types::OFFLINED, "False", reasons::OFFLINE_PROCESSING),
            ],
        )?;
        expect_eq("store state in PD", e.store_of(&victim).ok_or("no store")?.state_name.as_str(), "Offline")
    })
    .await;

    // The operator restarted while PD moves the regions: the progress goes on, with
    // the rate seen since the offline started.
    env.wait_for("a region moved off the store", |e| {
        let start = e.tikv(&victim)?["status"]["offline"]["start"].as_u64().ok_or("no status.offline")?;
        let left = e.store_of(&victim).ok_or("no store")?.region_count;
        if left < start { Ok(()) } else { Err(format!("{left} of {start} regions left")) }
    })
    .await;
    env.restart_operator().await;
    env.wait_for("the offline's progress, with a rate, after the restart", |e| {
        let t = tikv_says(e, &victim, &[(types::OFFLINED, "False", reasons::OFFLINE_PROCESSING)])?;
        let text = message(&t, types::OFFLINED);
        if !text.contains("regions/min") {
            return Err(format!("no rate in Offlined: {text}"));
        }
        Ok(())
    })
    .await;

    // Deleted while Removing (the group lowered first), then PD unavailable while the
    // store becomes Tombstone: nothing is deleted until a fresh view shows it.
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    let pod = name(&env.pod_of(&victim).unwrap());
    let pvcs: BTreeSet<String> = env.pvcs_of(&victim).iter().map(name).collect();
    env.delete("tikvs", &victim);
    env.let_time_pass(Duration::from_secs(5), Duration::from_millis(500)).await;
    let api = env.api_seq();
    control.inject_fault(pd_sim::Fault { path: "/pd/api/v1".into(), status: Some(503), ..Default::default() });
    control.set_knobs(knobs);
    env.wait_for("the store Tombstone (PD's ground truth)", |e| {
        expect_eq("store state", e.store_of(&victim).ok_or("no store")?.state_name.as_str(), "Tombstone")
    })
    .await;
    // Shorter than the watcher's grace for an entry left on a Tombstone store: the
    // operator cannot remove it while PD does not answer.
    env.let_time_pass(Duration::from_secs(30), Duration::from_secs(2)).await;
    let deletes: Vec<String> = env.operator_api_log(api).into_iter().filter(|w| w.starts_with("delete")).collect();
    assert!(deletes.is_empty(), "nothing deleted without a fresh view: {deletes:?}");
    assert!(env.get("tikvs", &victim).is_some(), "the finalizer holds");
    assert_eq!(env.pvcs_of(&victim).len(), pvcs.len());
    assert!(env.pod_of(&victim).is_some());

    control.clear_faults();
    env.wait_for("the TiKV, its pod and PVCs gone once PD answers", |e| {
        if e.get("tikvs", &victim).is_some() || e.pod_of(&victim).is_some() || !e.pvcs_of(&victim).is_empty() {
            return Err("the TiKV, its pod or its PVCs are still there".into());
        }
        e.converged(3, 3)
    })
    .await;
    let writes = env.operator_api_log(api);
    assert!(writes.contains(&format!("delete pods {pod}")), "{writes:#?}");
    for pvc in &pvcs {
        assert!(writes.contains(&format!("delete persistentvolumeclaims {pvc}")), "{pvc}: {writes:#?}");
    }
    assert_eq!(env.evict_leader_stores(), BTreeSet::new(), "no evict-leader entry left");
    let log = env.operator_pd_log(pd);
    let removed = format!("DELETE /schedulers/evict-leader-scheduler-{id} -> 200");
    assert_eq!(log.iter().filter(|w| **w == removed).count(), 1, "{log:#?}");
    regions_replicated_without(&env, id).unwrap();
    env.assert_idle_for_a_minute().await;
    env.finish().await;
}

/// A TiKVGroup deleted while its Cluster lives (issue #10): its stores are taken
/// offline as far as PD allows — with four stores and max-replicas 3, one — and the
/// group says in a condition what remains; the stores PD keeps go on serving with their
/// pods and volumes. Deleting the Cluster then releases the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tikv_group_deleted_while_its_cluster_lives_goes_as_far_as_pd_allows() {
    let env = Env::start_with(|docs| {
        for doc in docs.iter_mut().filter(|d| d.kind() == "TiKVGroup") {
            doc.object["spec"]["replicas"] = json!(4);
        }
    })
    .await;
    env.wait_for("Ready with 4 stores", |e| e.converged(3, 4)).await;
    let tikvs = env.names("tikvs");

    env.delete("tikvgroups", TIKV_GROUP);
    let remaining = env
        .wait_for("one store removed, the group saying which instances remain", |e| {
            let snapshot = e.try_pd_snapshot()?;
            let up: Vec<u64> = snapshot.stores.iter().filter(|s| s.state_name == "Up").map(|s| s.id).collect();
            let tombstones = snapshot.stores.iter().filter(|s| s.state_name == "Tombstone").count();
            expect_eq("stores Up", up.len(), snapshot.max_replicas)?;
            expect_eq("stores Tombstone", tombstones, 1)?;
            let left = e.names("tikvs");
            expect_eq("TiKVs left", left.len(), 3)?;
            let group = e.get("tikvgroups", TIKV_GROUP).ok_or("the group is gone")?;
            let conditions = group["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let remains = conditions
                .iter()
                .find(|c| c["reason"] == reasons::INSTANCES_REMAINING)
                .ok_or_else(|| format!("no condition says what remains: {conditions:?}"))?;
            let text = remains["message"].as_str().unwrap_or_default();
            match left.iter().find(|t| !text.contains(t.as_str())) {
                Some(t) => Err(format!("the condition does not name {t}: {text}")),
                None => Ok(left),
            }
        })
        .await;
    let gone: Vec<&String> = tikvs.difference(&remaining).collect();
    assert_eq!(gone.len(), 1);
    assert!(env.pod_of(gone[0]).is_none() && env.pvcs_of(gone[0]).is_empty(), "the removed store's pod and PVCs go");
    for t in &remaining {
        let pod = env.pod_of(t).unwrap_or_else(|| panic!("{t} keeps its pod"));
        assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{t}'s pod is not deleted");
        assert!(!env.pvcs_of(t).is_empty(), "{t} keeps its PVCs");
        assert_eq!(env.store_of(t).unwrap().state_name, "Up", "{t}'s store serves");
    }
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(3)).await;
    assert_eq!(env.names("tikvs"), remaining, "PD allows no more");
    assert_eq!(env.evict_leader_stores(), BTreeSet::new(), "no evict-leader entry left on the stores that stay");

    env.delete("clusters", CLUSTER);
    env.wait_for("the Cluster and everything of it gone", |e| {
        for plural in ["clusters", "pdgroups", "tikvgroups", "pds", "tikvs", "pods"] {
            let left = e.names(plural);
            if !left.is_empty() {
                return Err(format!("{plural} left: {left:?}"));
            }
        }
        Ok(())
    })
    .await;
    env.finish().await;
}
