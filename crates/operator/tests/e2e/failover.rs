//! End-to-end failover of TiKV stores (issue #13, item 5): a node is powered off (its
//! pods' processes stop, it goes NotReady), so a store really goes Down in PD. With
//! `spec.failover` on, once it has been Down for `afterDown` the group creates a
//! replacement in its zone, takes the dead store offline when the replacement serves
//! (PD rebuilds its replicas), and deletes its pod and PVC once it is Tombstone; with
//! two stores Down it refuses; a user's `kubectl delete tikv` of a Down store works
//! the same way without failover. The invariant watcher is on throughout.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tikv_operator_api::condition::{reasons, types};

use crate::env::{Env, TIKV_GROUP, check_condition};

fn node_of(env: &Env, instance: &str) -> Option<String> {
    env.pod_of(instance)?["spec"]["nodeName"].as_str().map(str::to_owned)
}

/// The TiKVs whose pods run on a node with no PD pod, at most one per node.
fn tikvs_alone(env: &Env) -> Vec<(String, String)> {
    let pd_nodes: BTreeSet<String> = env.names("pds").iter().filter_map(|p| node_of(env, p)).collect();
    let mut seen = BTreeSet::new();
    env.names("tikvs")
        .into_iter()
        .filter_map(|t| node_of(env, &t).map(|n| (t, n)))
        .filter(|(_, n)| !pd_nodes.contains(n) && seen.insert(n.clone()))
        .collect()
}

fn power(env: &Env, node: &str, on: bool) {
    env.h.cluster().nodes().set_powered(node, on).expect("the node exists");
}

fn failover_condition(env: &Env) -> Result<Value, String> {
    let group = env.get("tikvgroups", TIKV_GROUP).ok_or("no TiKVGroup")?;
    crate::env::condition(&group, types::FAILOVER).cloned().ok_or_else(|| "no Failover condition".into())
}

/// The store of `tikv` is Tombstone in PD, its TiKV, pod and PVCs gone, and the TiKV
/// group Ready again with three stores Up. (The whole cluster is judged once the node
/// is back: it may hold a PD member too.)
fn replaced(env: &Env, tikv: &str, id: u64) -> Result<(), String> {
    let snapshot = env.try_pd_snapshot()?;
    let store = snapshot.store(id).cloned().ok_or("the dead store is gone from PD")?;
    if store.state_name != "Tombstone" {
        return Err(format!("store {id} is {}", store.state_name));
    }
    if env.get("tikvs", tikv).is_some() || env.pod_of(tikv).is_some() || !env.pvcs_of(tikv).is_empty() {
        return Err(format!("{tikv}, its pod or its PVC is still there"));
    }
    let up = snapshot.stores.iter().filter(|s| s.state_name == "Up").count();
    if up != 3 || env.names("tikvs").len() != 3 {
        return Err(format!("{up} stores Up, {} TiKVs", env.names("tikvs").len()));
    }
    let group = env.get("tikvgroups", TIKV_GROUP).ok_or("no TiKVGroup")?;
    check_condition(&group, types::READY, "True", reasons::READY)
}

/// `examples/basic`, with failover on after `failover` if given.
async fn start(failover: Option<&str>) -> Env {
    Env::start_with(|docs| {
        for doc in docs.iter_mut().filter(|d| d.kind() == "TiKVGroup") {
            if let Some(after_down) = failover {
                doc.object["spec"]["failover"] = json!({"enabled": true, "afterDown": after_down});
            }
        }
    })
    .await
}

/// A TiKV to power off with its node, one whose node holds no PD member if there is
/// one (the scheduler may place a TiKV beside a PD member; powering that node off costs
/// PD one member of three, which it survives).
fn victim(env: &Env) -> (String, String) {
    tikvs_alone(env)
        .into_iter()
        .next()
        .or_else(|| env.names("tikvs").into_iter().find_map(|t| node_of(env, &t).map(|n| (t, n))))
        .expect("a TiKV with a pod on a node")
}

/// A node powered off for longer than `afterDown`: the group creates a replacement in
/// the same zone, takes the dead store offline once it serves, and the cluster is back
/// to three serving stores with the dead one Tombstone and its volume deleted — the
/// operator restarted in the middle. The node powered on again later runs nothing of
/// the old store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_longer_than_after_down_is_replaced() {
    let mut env = start(Some("1m")).await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    let (dead, node) = victim(&env);
    let id = env.store_id(&dead);
    let zone = env.zone_of(&dead);
    let before = env.names("tikvs");
    power(&env, &node, false);

    env.wait_for("the store Down and its clock running", |e| {
        let tikv = e.get("tikvs", &dead).ok_or("the TiKV is gone")?;
        tikv["status"]["downSince"].as_str().map(|_| ()).ok_or_else(|| "no downSince yet".into())
    })
    .await;
    env.wait_for("the failover started", |e| {
        check_condition(
            &e.get("tikvgroups", TIKV_GROUP).ok_or("no group")?,
            types::FAILOVER,
            "True",
            reasons::FAILING_OVER,
        )
    })
    .await;
    env.wait_for_event(TIKV_GROUP, "Normal", "FailoverStarted").await;
    env.restart_operator().await;

    env.wait_for("the dead store replaced", |e| replaced(e, &dead, id)).await;
    let added: Vec<String> = env.names("tikvs").difference(&before).cloned().collect();
    assert_eq!(added.len(), 1, "one replacement: {added:?}");
    assert_eq!(env.zone_of(&added[0]), zone, "the replacement takes the dead store's zone");
    env.wait_for("the group's Failover condition back to NoStoreDown", |e| {
        let condition = failover_condition(e)?;
        (condition["reason"] == reasons::NO_STORE_DOWN).then_some(()).ok_or_else(|| condition.to_string())
    })
    .await;

    power(&env, &node, true);
    env.let_time_pass(Duration::from_secs(120), Duration::ZERO).await;
    env.wait_for("still Ready, the Tombstone store never back", |e| {
        let store = e.try_pd_snapshot()?.store(id).cloned().ok_or("store gone")?;
        if store.state_name != "Tombstone" {
            return Err(format!("store {id} is {}", store.state_name));
        }
        e.converged(3, 3)
    })
    .await;
    env.h.watcher().assert_none();
    env.verify_probe(&probe);
    env.finish().await;
}

/// A node powered off while another store is cut off from PD (its process stops
/// heartbeating; its pod runs on): failover refuses (two stores not Up), creating and
/// deleting nothing; once the other store is back, the one still Down is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_another_store_down_failover_refuses_until_it_returns() {
    let env = start(Some("1m")).await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    let (dead, node) = victim(&env);
    let other = env.names("tikvs").into_iter().find(|t| *t != dead).expect("another TiKV");
    let (dead_id, other_id) = (env.store_id(&dead), env.store_id(&other));
    let before = env.names("tikvs");
    let (pd, api) = (env.pd_seq(), env.api_seq());
    env.pd().control().stop_store(other_id).await.expect("the store stops heartbeating");
    power(&env, &node, false);
    env.wait_for("failover refused", |e| {
        let condition = failover_condition(e)?;
        match condition["reason"].as_str() {
            Some(reasons::FAILOVER_REFUSED) => Ok(()),
            other => Err(format!("Failover {other:?}: {}", condition["message"])),
        }
    })
    .await;
    let message = failover_condition(&env).expect("condition")["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("2 stores are Down") || message.contains(&format!("store {other_id} is")), "{message}");
    // Three times afterDown of simulated time: still refused, nothing touched.
    env.let_time_pass(Duration::from_secs(180), Duration::ZERO).await;
    assert_eq!(env.names("tikvs"), before, "nothing created while refused");
    let removing: Vec<String> =
        env.operator_pd_log(pd).into_iter().filter(|w| w.contains("DELETE") && w.contains("/store/")).collect();
    assert!(removing.is_empty(), "no store taken offline: {removing:?}");
    let pvc_deletes: Vec<String> =
        env.operator_api_log(api).into_iter().filter(|w| w.contains("delete persistentvolumeclaims")).collect();
    assert!(pvc_deletes.is_empty(), "{pvc_deletes:?}");

    env.pd().control().restart_store(other_id, None).await.expect("the store heartbeats again");
    env.wait_for("the store still Down replaced", |e| replaced(e, &dead, dead_id)).await;
    power(&env, &node, true);
    env.wait_for("Ready once the node is back", |e| e.converged(3, 3)).await;
    env.h.watcher().assert_none();
    env.verify_probe(&probe);
    env.finish().await;
}

/// Without failover, `kubectl delete tikv` of a store whose node is off: a replacement
/// is created, the dead store leaves PD (its replicas rebuilt from the others), its pod
/// (stuck terminating on the dead node) and PVC go, and the cluster is Ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_down_store_replaces_it() {
    let env = start(None).await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    let (dead, node) = victim(&env);
    let id = env.store_id(&dead);
    power(&env, &node, false);
    env.wait_for("the store Down in PD", |e| {
        let store = e.try_pd_snapshot()?.store(id).cloned().ok_or("store gone")?;
        (store.state_name == "Down" || store.state_name == "Disconnected")
            .then_some(())
            .ok_or_else(|| format!("store {id} is {}", store.state_name))
    })
    .await;
    env.delete("tikvs", &dead);
    env.wait_for("the deleted Down store replaced", |e| replaced(e, &dead, id)).await;
    env.wait_for_event(&dead, "Normal", "ForceDeletedPod").await;
    power(&env, &node, true);
    env.wait_for("Ready once the node is back", |e| e.converged(3, 3)).await;
    env.h.watcher().assert_none();
    env.verify_probe(&probe);
    env.finish().await;
}

/// `kubectl delete pd X` while X's node is off: the member (down) leaves PD by its ID,
/// a replacement joins, X's pod — stuck terminating on the dead node — is deleted
/// without grace, then its PVC; powered on again, the node runs nothing of X and the
/// cluster is Ready with three members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pd_member_whose_node_is_off_replaces_it() {
    let env = start(None).await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let deleted = env.names("pds").into_iter().next().expect("a PD instance");
    let member = format!("pd-{deleted}");
    let node = node_of(&env, &deleted).expect("its pod runs on a node");
    power(&env, &node, false);
    env.wait_for("the member down", |e| {
        let snapshot = e.try_pd_snapshot()?;
        let down = snapshot.members.iter().any(|m| m.name == member && m.in_etcd && !m.running);
        down.then_some(()).ok_or_else(|| format!("{member} still runs"))
    })
    .await;
    env.delete("pds", &deleted);
    env.wait_for("the member out of PD, its PD object, pod and PVC gone", |e| {
        let snapshot = e.try_pd_snapshot()?;
        if snapshot.members.iter().any(|m| m.name == member && m.in_etcd) {
            return Err(format!("{member} is still a member"));
        }
        if e.get("pds", &deleted).is_some() || e.pod_of(&deleted).is_some() || !e.pvcs_of(&deleted).is_empty() {
            return Err(format!("{deleted}, its pod or its PVC is still there"));
        }
        Ok(())
    })
    .await;
    env.wait_for_event(&deleted, "Normal", "ForceDeletedPod").await;
    power(&env, &node, true);
    env.wait_for("Ready with three members", |e| e.converged(3, 3)).await;
    env.h.watcher().assert_none();
    env.finish().await;
}
