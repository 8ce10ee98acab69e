//! End-to-end tests of the first cluster: kube-sim + pd-sim (sim-harness) with a watch
//! delay and the safety-invariant watcher on, `examples/basic` applied as a user
//! would, and the operator run exactly as the playground runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "e2e/env.rs"]
mod env;
#[path = "e2e/scale_in.rs"]
mod scale_in;

use std::collections::BTreeSet;
use std::time::Duration;

use kube_sim::Verb;
use serde_json::json;
use tikv_operator_api::condition::{reasons, types};

use env::{CLUSTER, Env, PD_GROUP, TIKV_GROUP, check_condition, condition, name};

/// create → Ready (every status and condition); idle for a simulated minute with zero
/// API and PD writes; scale TiKV 3 → 5 and PD 3 → 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_ready_idle_then_scale_out() {
    let env = Env::start().await;
    env.wait_for("Ready with 3 PD members and 3 TiKV stores", |e| e.converged(3, 3)).await;

    // Idle: once Ready and settled, a minute of simulated time writes nothing.
    env.settle(Duration::from_secs(2)).await;
    let (api, pd) = (env.api_seq(), env.pd_seq());
    env.let_time_pass(Duration::from_secs(60), Duration::from_secs(5)).await;
    // Reads come from the watch caches: idle, the operator asks the API server nothing.
    let (all, _) = env.h.kube_sim().requests().since(api);
    let requests: Vec<String> = all
        .iter()
        .filter(|r| env::is_operator(r) && r.verb != Verb::Watch)
        .map(|r| format!("{} {} {}", r.verb, r.resource_path(), r.name.as_deref().unwrap_or("-")))
        .collect();
    assert!(requests.is_empty(), "idle cluster: the operator made API requests: {requests:#?}");
    let writes = env.operator_writes(api);
    let described: Vec<String> = writes
        .iter()
        .map(|r| {
            format!(
                "{} {} {}/{}",
                r.verb,
                r.resource_path(),
                r.namespace.as_deref().unwrap_or("-"),
                r.name.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert!(described.is_empty(), "idle cluster: the operator wrote to the API: {described:#?}");
    let pd_writes: Vec<String> =
        env.operator_pd_writes(pd).iter().map(|w| format!("{} {}", w.method, w.path)).collect();
    assert!(pd_writes.is_empty(), "idle cluster: the operator wrote to PD: {pd_writes:#?}");
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
    let (api, pd) = (env.api_seq(), env.pd_seq());
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
    assert!(not_status.is_empty(), "paused: only status is written, yet: {not_status:#?}");
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
