//! What happens to a TiKV store's data when its data directory goes: a store's
//! identity follows its PVC, and once the claim's volume is deleted (the PV controller
//! deletes a Released volume whose reclaim policy is Delete) the store's data is gone.
//! pd-sim is told ([`pd_sim::Control::destroy_store_data`]): every replica that store
//! held is lost. A volume kept by `Retain` keeps the data (nothing mounts it again, but
//! it is not destroyed). A data directory on the pod's own filesystem goes with the pod.
//!
//! PD members are not handled here: a member's wiped data shows when it starts again
//! (see `processes::pd`).

use std::collections::HashSet;
use std::sync::Arc;

use kube_sim::Store;
use kube_sim::store::{Change, ChangeKind};
use tokio::task::JoinHandle;

use crate::clusters::{DataDir, PdClusters};
use crate::network::{list, str_at};

/// Watches kube-sim's store until aborted: a pass at start, then after every write
/// that can take a data directory away.
pub(crate) fn start(store: Store, clusters: Arc<PdClusters>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = store.subscribe();
        let mut destroyed = HashSet::new();
        let mut read_up_to = store.revision();
        pass(&store, &clusters, &mut destroyed).await;
        loop {
            if changes.changed().await.is_err() {
                return;
            }
            let relevant = match store.changes_since(read_up_to) {
                Some((changes, rev)) => {
                    read_up_to = rev;
                    changes.iter().any(|c| takes_data_away(c))
                }
                // History compacted meanwhile: look at everything.
                None => {
                    read_up_to = store.revision();
                    true
                }
            };
            if relevant {
                pass(&store, &clusters, &mut destroyed).await;
            }
        }
    })
}

/// A pod or volume deleted, or a volume bound to another claim: the only writes after
/// which a data directory ([`DataDir`], keyed by pod or claim uid) can be gone.
fn takes_data_away(c: &Change) -> bool {
    let claim = |pv: &serde_json::Value| str_at(pv, &["spec", "claimRef", "uid"]).to_owned();
    match (c.gr.group.as_str(), c.gr.resource.as_str(), c.kind) {
        ("", "pods" | "persistentvolumes", ChangeKind::Deleted) => true,
        ("", "persistentvolumes", ChangeKind::Modified) => {
            c.old.as_deref().is_none_or(|old| claim(old) != claim(&c.new))
        }
        _ => false,
    }
}

/// Destroys the data of every store whose data directory is gone; `destroyed` keeps
/// the (data key, store) pairs already handled.
pub(crate) async fn pass(store: &Store, clusters: &PdClusters, destroyed: &mut HashSet<(String, u64)>) {
    let dirs: Vec<(String, usize, u64)> = clusters
        .data_dirs()
        .into_iter()
        .filter_map(|(key, dir)| match dir {
            DataDir::Store { cluster, id } => Some((key, cluster, id)),
            DataDir::PdMember { .. } => None,
        })
        .filter(|(key, _, id)| !destroyed.contains(&(key.clone(), *id)))
        .collect();
    if dirs.is_empty() {
        return;
    }
    let claims: HashSet<String> = if dirs.iter().any(|(key, ..)| key.starts_with("pvc:")) {
        list(store, "persistentvolumes", None)
            .iter()
            .map(|pv| str_at(pv, &["spec", "claimRef", "uid"]).to_owned())
            .collect()
    } else {
        HashSet::new()
    };
    let pods: HashSet<String> = if dirs.iter().any(|(key, ..)| key.starts_with("pod:")) {
        list(store, "pods", None).iter().map(|pod| str_at(pod, &["metadata", "uid"]).to_owned()).collect()
    } else {
        HashSet::new()
    };
    for (key, cluster, id) in dirs {
        let gone = if let Some(uid) = key.strip_prefix("pvc:") {
            !claims.contains(uid)
        } else if let Some(rest) = key.strip_prefix("pod:") {
            !pods.contains(rest.split(':').next().unwrap_or_default())
        } else {
            false
        };
        if !gone {
            continue;
        }
        let Some(pd) = clusters.get(cluster) else { continue };
        match pd.control().destroy_store_data(id).await {
            Ok(()) => tracing::info!(store = id, cluster, data = %key, "store data destroyed with its volume"),
            Err(error) => tracing::warn!(store = id, cluster, %error, "could not destroy store data"),
        }
        destroyed.insert((key, id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_sim::registry::GroupResource;
    use serde_json::json;

    fn change(resource: &str, kind: ChangeKind, old: Option<serde_json::Value>, new: serde_json::Value) -> Change {
        Change {
            rev: 1,
            gr: GroupResource::new("", resource),
            kind,
            old: old.map(Arc::new),
            new: Arc::new(new),
            at: sim_clock::SimClock::new(1.0).now(),
        }
    }

    #[test]
    fn only_a_deleted_pod_or_volume_or_a_volume_bound_elsewhere_can_take_data_away() {
        let pv = |uid: &str| json!({"spec": {"claimRef": {"uid": uid}}, "status": {"phase": "Bound"}});
        assert!(takes_data_away(&change("pods", ChangeKind::Deleted, None, json!({}))));
        assert!(takes_data_away(&change("persistentvolumes", ChangeKind::Deleted, None, pv("a"))));
        assert!(takes_data_away(&change("persistentvolumes", ChangeKind::Modified, Some(pv("a")), pv("b"))));
        let released = json!({"spec": {"claimRef": {"uid": "a"}}, "status": {"phase": "Released"}});
        assert!(!takes_data_away(&change("persistentvolumes", ChangeKind::Modified, Some(pv("a")), released)));
        assert!(!takes_data_away(&change("pods", ChangeKind::Modified, Some(json!({})), json!({"status": {}}))));
        assert!(!takes_data_away(&change("persistentvolumeclaims", ChangeKind::Deleted, None, json!({}))));
    }
}
