//! Trigger filters: which changes of a watched object wake a controller that reads only
//! part of it.
//!
//! A Cluster's status changes with every count its controller reports, a PDGroup's with
//! every member that gets ready, a Node's with every kubelet heartbeat. The instances
//! that watch them read a few fields; [`changes_in`] passes an object on only when what
//! its `fingerprint` covers changed, and always when it is deleted or replaced. A
//! subscriber's replay of the store (after it lagged) passes only what changed.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use serde::Serialize;
use tikv_operator_api::{Cluster, PDGroup};

use crate::apply::fnv1a64;
use crate::cache::Watched;

/// The objects of `changes` whose fingerprint differs from the one last passed for the
/// same object (by UID), and every object no longer in `store` as it is (deleted, or
/// replaced under a new UID). The first sight of an object always passes.
pub fn changes_in<K: Watched>(
    changes: impl Stream<Item = Arc<K>> + Send + 'static,
    store: Store<K>,
    fingerprint: fn(&K) -> u64,
) -> impl Stream<Item = Arc<K>> + Send + 'static {
    // A hash per object, not a copy: memory stays with the cache.
    let mut seen: HashMap<ObjectRef<K>, (Option<String>, u64)> = HashMap::new();
    changes.filter(move |object| {
        let key = ObjectRef::from(object.as_ref());
        let uid = object.meta().uid.clone();
        let current = store.get(&key).is_some_and(|stored| stored.meta().uid == uid);
        let pass = if current {
            let entry = (uid, fingerprint(object));
            seen.insert(key, entry.clone()) != Some(entry)
        } else {
            seen.remove(&key);
            true
        };
        futures::future::ready(pass)
    })
}

fn hash<T: Serialize>(value: &T) -> u64 {
    // Objects read from the API always encode back; an empty encoding only passes a change.
    fnv1a64(&serde_json::to_vec(value).unwrap_or_default())
}

/// What PD and TiKV instances read of their Cluster: its metadata and spec, and of its
/// status the PD URL, cluster ID and replication. Not the Cluster's own report
/// (conditions, component counts, observed generation), which its controller rewrites
/// as the instances progress.
pub fn cluster_as_instances_read(cluster: &Cluster) -> u64 {
    let mut read = cluster.clone();
    read.metadata.resource_version = None;
    read.metadata.managed_fields = None;
    if let Some(status) = &mut read.status {
        status.conditions.clear();
        status.components.clear();
        status.observed_generation = None;
    }
    if read.status.as_ref().is_some_and(|status| *status == Default::default()) {
        read.status = None;
    }
    hash(&read)
}

/// What PD instances read of their group: its metadata and spec (whether it is
/// bootstrapped), not its status (ready counts, conditions).
pub fn pd_group_as_instances_read(group: &PDGroup) -> u64 {
    let mut metadata = group.metadata.clone();
    metadata.resource_version = None;
    metadata.managed_fields = None;
    hash(&(metadata, &group.spec))
}

/// A node's labels (store labels follow them); its status changes with every heartbeat.
pub fn node_labels(node: &PartialObjectMeta<Node>) -> u64 {
    hash(&node.metadata.labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sample_cluster, sample_pd_group};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

    fn versioned(mut cluster: Cluster, version: &str) -> Cluster {
        cluster.metadata.resource_version = Some(version.into());
        cluster.metadata.uid = Some("uid-1".into());
        cluster
    }

    /// Feeds `objects` through `changes_in` with each one applied to the store first
    /// (deletions removed from it first), as the cache does.
    async fn passed<K: Watched>(objects: Vec<(K, bool)>, fingerprint: fn(&K) -> u64) -> Vec<Arc<K>> {
        let mut writer: Writer<K> = Writer::default();
        let store = writer.as_reader();
        let mut out = Vec::new();
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        let mut filtered = Box::pin(changes_in(receiver, store, fingerprint));
        for (object, deleted) in objects {
            let event = if deleted { Event::Delete(object.clone()) } else { Event::Apply(object.clone()) };
            writer.apply_watcher_event(&event);
            sender.unbounded_send(Arc::new(object)).ok();
            if let Some(Some(object)) = futures::FutureExt::now_or_never(filtered.next()) {
                out.push(object);
            }
        }
        out
    }

    #[tokio::test]
    async fn a_clusters_own_report_does_not_wake_its_instances_what_they_read_does() {
        let first = versioned(sample_cluster("basic"), "1");
        let mut report = versioned(first.clone(), "2");
        let status = report.status.get_or_insert_default();
        status.conditions.push(Condition {
            type_: "Available".into(),
            status: "True".into(),
            reason: "Ready".into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(crate::testing::t0()),
            observed_generation: None,
        });
        status.observed_generation = Some(1);
        let mut pd_url = versioned(report.clone(), "3");
        pd_url.status.get_or_insert_default().pd = Some("http://basic-pd.default.svc:2379".into());
        let mut paused = versioned(pd_url.clone(), "4");
        paused.spec.paused = true;
        let mut recreated = paused.clone();
        recreated.metadata.uid = Some("uid-2".into());
        let objects = vec![
            (first, false),
            (report, false),
            (pd_url, false),
            (paused.clone(), false),
            (paused.clone(), false),
            (paused, true),
            (recreated, false),
        ];
        let versions: Vec<_> = passed(objects, cluster_as_instances_read)
            .await
            .iter()
            .map(|c| {
                (c.metadata.resource_version.clone().unwrap_or_default(), c.metadata.uid.clone().unwrap_or_default())
            })
            .collect();
        let expected = [("1", "uid-1"), ("3", "uid-1"), ("4", "uid-1"), ("4", "uid-1"), ("4", "uid-2")];
        assert_eq!(
            versions,
            expected.map(|(v, u)| (v.to_string(), u.to_string())),
            "the deletion and the new UID pass"
        );
    }

    fn node(name: &str, zone: &str) -> PartialObjectMeta<Node> {
        let mut meta =
            PartialObjectMeta::<Node> { types: None, metadata: Default::default(), _phantom: Default::default() };
        meta.metadata.name = Some(name.into());
        meta.metadata.uid = Some(format!("uid-{name}"));
        meta.metadata.labels = Some([("topology.kubernetes.io/zone".to_string(), zone.to_string())].into());
        meta
    }

    #[tokio::test]
    async fn a_node_passes_when_first_seen_and_when_its_labels_change() {
        let mut heartbeat = node("a", "z1");
        heartbeat.metadata.resource_version = Some("2".into());
        let objects =
            vec![(node("a", "z1"), false), (heartbeat, false), (node("b", "z1"), false), (node("a", "z2"), false)];
        let zones: Vec<String> = passed(objects, node_labels)
            .await
            .iter()
            .map(|n| {
                format!(
                    "{}/{}",
                    n.metadata.name.as_deref().unwrap_or_default(),
                    n.metadata.labels.as_ref().map(|l| l["topology.kubernetes.io/zone"].clone()).unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(zones, ["a/z1", "b/z1", "a/z2"], "a change of a that leaves its labels passes nothing");
    }

    #[tokio::test]
    async fn a_pd_groups_status_does_not_wake_its_members_its_spec_does() {
        let mut group = sample_pd_group("pd", 3);
        group.metadata.resource_version = Some("1".into());
        let mut ready = group.clone();
        ready.metadata.resource_version = Some("2".into());
        ready.status.get_or_insert_default().group.ready_replicas = 3;
        let mut bootstrapped = ready.clone();
        bootstrapped.metadata.resource_version = Some("3".into());
        bootstrapped.spec.bootstrapped = true;
        let objects = vec![(group, false), (ready, false), (bootstrapped, false)];
        let versions: Vec<_> = passed(objects, pd_group_as_instances_read)
            .await
            .iter()
            .map(|g| g.metadata.resource_version.clone().unwrap_or_default())
            .collect();
        assert_eq!(versions, ["1", "3"]);
    }
}
