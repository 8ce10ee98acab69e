//! End-to-end online volume resize (issue #13, item 3): a TiKVGroup's storage raised
//! reaches every PVC, the volumes and their file systems grow while the pods run, and
//! nothing restarts; a storage-class change or a shrink is refused at admission. The invariant
//! watcher is on throughout, as in every e2e scenario.

use std::collections::BTreeSet;

use serde_json::json;

use crate::env::{Env, TIKV_GROUP, name};

fn pod_uids(env: &Env) -> BTreeSet<String> {
    env.list("pods").iter().map(|p| p["metadata"]["uid"].as_str().unwrap_or_default().to_owned()).collect()
}

/// TiKV volumes 100Gi → 200Gi: every data PVC requests and then holds 200Gi, no pod is
/// recreated, the group ends Synced; a storage class change and a smaller size are
/// refused at admission, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_increase_grows_every_volume_online_and_a_class_change_is_refused() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let before = pod_uids(&env);
    let volume = json!([{"name": "data", "storage": "200Gi"}]);
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"volumes": volume}}}}));
    env.wait_for("every TiKV data volume at 200Gi, the cluster Ready", |e| {
        for t in e.names("tikvs") {
            for pvc in e.pvcs_of(&t) {
                let capacity = pvc["status"]["capacity"]["storage"].as_str().unwrap_or_default();
                if capacity != "200Gi" {
                    return Err(format!("{} holds {capacity}", name(&pvc)));
                }
            }
        }
        e.converged(3, 3)
    })
    .await;
    assert_eq!(pod_uids(&env), before, "no pod was recreated");
    for t in env.names("tikvs") {
        env.wait_for_event(&t, "Normal", "ResizingVolume").await;
    }

    // A class change is refused at admission, saying what to do instead.
    let volume = json!([{"name": "data", "storage": "200Gi", "storageClassName": "fast"}]);
    let refused = env
        .try_patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"volumes": volume}}}}))
        .expect_err("a storage class change is refused");
    assert!(refused.contains("storageClassName of a volume cannot be set, changed or removed"), "{refused}");
    // So is a smaller size.
    let volume = json!([{"name": "data", "storage": "150Gi"}]);
    let refused = env
        .try_patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"volumes": volume}}}}))
        .expect_err("a smaller size is refused");
    assert!(refused.contains("storage may grow, never shrink"), "{refused}");
    for t in env.names("tikvs") {
        for pvc in env.pvcs_of(&t) {
            assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "200Gi", "{}", name(&pvc));
        }
    }
    assert_eq!(pod_uids(&env), before, "still no pod recreated");
    env.h.watcher().assert_none();
    env.finish().await;
}
