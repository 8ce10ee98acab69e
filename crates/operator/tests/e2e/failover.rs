//! End-to-end failover of TiKV stores (issue #13, item 5): a node is powered off (its
//! pods' processes stop, it goes NotReady), so a store really goes Down in PD. With
//! `spec.failover` on, once it has been Down for `afterDown` the group creates a
//! replacement in its zone, takes the dead store offline when the replacement serves
//! (PD rebuilds its replicas), and deletes its pod and PVC once it is Tombstone; with
//! two stores Down it refuses; a user's `kubectl delete tikv` of a Down store works
//! the same way without failover. The invariant watcher is on throughout.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tikv_operator_api::condition::{reasons, types};

use crate::env::{Env, TIKV_GROUP, check_condition};

fn node_of(env: &Env, instance: &str) -> Option<String> {
    env.pod_of(instance)?["spec"]["nodeName"].as_str().map(str::to_owned)
}

/// The TiKVs whose pods run on a node with no PD pod (so powering it off costs PD no
/// member), at most one per node.
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

/// The store of `tikv` is Tombstone in PD, its TiKV, pod and PVCs gone, and the cluster
/// Ready again with three stores.
fn replaced(env: &Env, tikv: &str, id: u64) -> Result<(), String> {
    let store = env.try_pd_snapshot()?.store(id).cloned().ok_or("the dead store is gone from PD")?;
    if store.state_name != "Tombstone" {
        return Err(format!("store {id} is {}", store.state_name));
    }
    if env.get("tikvs", tikv).is_some() || env.pod_of(tikv).is_some() || !env.pvcs_of(tikv).is_empty() {
        return Err(format!("{tikv}, its pod or its PVC is still there"));
    }
    env.converged(3, 3)
}

fn with_failover(after_down: &str) -> impl FnOnce(&mut [tikv_operator::playground::apply::Document]) + use<'_> {
    move |docs| {
        for doc in docs.iter_mut().filter(|d| d.kind() == "TiKVGroup") {
            doc.object["spec"]["failover"] = json!({"enabled": true, "afterDown": after_down});
        }
    }
}

/// A node powered off for longer than `afterDown`: the group creates a replacement in
/// the same zone, takes the dead store offline once it serves, and the cluster is back
/// to three serving stores with the dead one Tombstone and its volume deleted — the
/// operator restarted in the middle. The node powered on again later runs nothing of
/// the old store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_longer_than_after_down_is_replaced() {
    let mut env = Env::start_with(with_failover("1m")).await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let (dead, node) = tikvs_alone(&env).into_iter().next().expect("a TiKV on a node without PD");
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
    assert!(env.has_event(TIKV_GROUP, "Normal", "FailoverStarted"), "{:?}", env.events_of(TIKV_GROUP));
    env.restart_operator().await;

    env.wait_for("the dead store replaced", |e| replaced(e, &dead, id)).await;
    let added: Vec<String> = env.names("tikvs").difference(&before).cloned().collect();
    assert_eq!(added.len(), 1, "one replacement: {added:?}");
    assert_eq!(env.zone_of(&added[0]), zone, "the replacement takes the dead store's zone");
    let condition = failover_condition(&env).expect("a Failover condition");
    assert_eq!(condition["reason"], reasons::NO_STORE_DOWN, "{condition}");

    power(&env, &node, true);
    env.settle(std::time::Duration::from_secs(30)).await;
    env.wait_for("still Ready, the Tombstone store never back", |e| {
        let store = e.try_pd_snapshot()?.store(id).cloned().ok_or("store gone")?;
        if store.state_name != "Tombstone" {
            return Err(format!("store {id} is {}", store.state_name));
        }
        e.converged(3, 3)
    })
    .await;
    env.h.watcher().assert_none();
    env.finish().await;
}

/// Two nodes off: failover refuses (two stores not Up), creating and deleting nothing;
/// one powered on again, the other is the only store Down and is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_stores_down_failover_refuses_until_one_returns() {
    let env = Env::start_with(with_failover("1m")).await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let alone = tikvs_alone(&env);
    // The scheduler spreads pods over the six nodes (fewest pods first): no TiKV shares
    // a node with a PD member, so powering two TiKV nodes off leaves PD its quorum.
    assert!(alone.len() >= 2, "two TiKV nodes without a PD member: {alone:?}");
    let before = env.names("tikvs");
    let (pd, api) = (env.pd_seq(), env.api_seq());
    power(&env, &alone[0].1, false);
    power(&env, &alone[1].1, false);
    env.wait_for("failover refused", |e| {
        let condition = failover_condition(e)?;
        match condition["reason"].as_str() {
            Some(reasons::FAILOVER_REFUSED) => Ok(()),
            other => Err(format!("Failover {other:?}: {}", condition["message"])),
        }
    })
    .await;
    let message = failover_condition(&env).expect("condition")["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("2 stores are Down") || message.contains("too"), "{message}");
    assert_eq!(env.names("tikvs"), before, "nothing created while refused");
    let removing: Vec<String> =
        env.operator_pd_log(pd).into_iter().filter(|w| w.contains("DELETE") && w.contains("/store/")).collect();
    assert!(removing.is_empty(), "no store taken offline: {removing:?}");
    let pvc_deletes: Vec<String> =
        env.operator_api_log(api).into_iter().filter(|w| w.contains("delete persistentvolumeclaims")).collect();
    assert!(pvc_deletes.is_empty(), "{pvc_deletes:?}");

    power(&env, &alone[0].1, true);
    let (dead, id) = (alone[1].0.clone(), env.store_id(&alone[1].0));
    env.wait_for("the one store still Down replaced", |e| replaced(e, &dead, id)).await;
    env.h.watcher().assert_none();
    env.finish().await;
}

/// Without failover, `kubectl delete tikv` of a store whose node is off: a replacement
/// is created, the dead store leaves PD (its replicas rebuilt from the others), its pod
/// (stuck terminating on the dead node) and PVC go, and the cluster is Ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_down_store_replaces_it() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let (dead, node) = tikvs_alone(&env).into_iter().next().expect("a TiKV on a node without PD");
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
    assert!(env.has_event(&dead, "Normal", "ForceDeletedPod"), "{:?}", env.events_of(&dead));
    env.h.watcher().assert_none();
    env.finish().await;
}
