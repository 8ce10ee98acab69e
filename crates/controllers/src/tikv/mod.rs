//! The TiKV instance controller: one store's ConfigMap, PVCs and Pod, its store ID
//! (discovered once by advertise address, then read by ID) and state from the PD
//! cache, its conditions.
//!
//! Watches: TiKVs; the Pods and ConfigMaps it owns; its PVCs (by instance label); its
//! Cluster (fanned out through the reflector store); PD store events, mapped by the
//! recorded store ID or, before it is recorded, by advertise address; cluster-wide PD
//! events of its cluster; the nodes its Pods run on, when their labels change (store
//! labels follow them).

pub mod builder;
pub mod guards;
pub mod render;
pub mod state;
pub mod tasks;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use tikv_operator_api::names::{COMPONENT_TIKV, LABEL_COMPONENT, LABEL_INSTANCE};
use tikv_operator_api::{Cluster, TiKV};
use tikv_operator_pd::PdEvent;
use tikv_operator_task::Runner;

use crate::cache::NodeMeta;
use crate::common::Object;
use crate::context::Context;
use crate::controller::{ControllerData, Shutdown, drain, error_policy, key_of, pd_events};
use crate::error::Error;
use state::TikvState;

pub const NAME: &str = "tikv";

pub fn runner() -> Runner<TikvState> {
    Runner::new(NAME, builder::tasks())
}

async fn reconcile(tikv: Arc<TiKV>, data: Arc<ControllerData<TikvState>>) -> Result<Action, Error> {
    let (namespace, name) = key_of(tikv.as_ref());
    let mut state = TikvState::new(data.ctx.clone(), &namespace, &name);
    data.pass(&format!("{namespace}/{name}"), &mut state).await
}

fn refs(store: &Store<TiKV>, keep: impl Fn(&TiKV) -> bool) -> Vec<ObjectRef<TiKV>> {
    store.state().iter().filter(|t| keep(t)).map(|t| ObjectRef::from(t.as_ref())).collect()
}

/// Whether a store event is about this instance: by recorded ID, else by address.
pub fn event_matches(tikv: &TiKV, event: &PdEvent) -> bool {
    let recorded = tikv.status.as_ref().and_then(|s| s.id.as_deref()).and_then(|id| id.parse::<u64>().ok());
    match (recorded, event.store_id()) {
        (Some(id), Some(store)) => id == store,
        (None, _) => event.store_address() == Some(render::advertise_addr(tikv).as_str()),
        _ => false,
    }
}

/// The nodes whose labels changed since last seen (a node's status changes often, its
/// labels seldom): each node the first time, then only when its labels differ.
fn label_changes(
    nodes: impl Stream<Item = Arc<NodeMeta>> + Send + 'static,
) -> impl Stream<Item = Arc<NodeMeta>> + Send {
    // A hash of each node's labels, not a copy: memory stays with the node cache.
    let mut seen: HashMap<String, u64> = HashMap::new();
    nodes.filter(move |node| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        node.metadata.labels.hash(&mut hasher);
        let changed = seen.insert(node.name_any(), hasher.finish()) != Some(hasher.finish());
        futures::future::ready(changed)
    })
}

/// The TiKV instances whose Pods run on `node`.
fn instances_on(pods: &Store<Pod>, node: &str) -> Vec<ObjectRef<TiKV>> {
    let on_node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node);
    let tikv = |p: &Pod| p.labels().get(LABEL_COMPONENT).map(String::as_str) == Some(COMPONENT_TIKV);
    pods.state()
        .iter()
        .filter(|p| on_node(p) && tikv(p))
        .filter_map(|p| Some(ObjectRef::new(p.labels().get(LABEL_INSTANCE)?).within(&p.namespace()?)))
        .collect()
}

pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let caches = &ctx.caches;
    let store = caches.tikvs.store().clone();
    let events_store = store.clone();
    let pd = pd_events(&ctx).flat_map(move |e| {
        let in_cluster = |t: &TiKV| {
            t.namespace().as_deref() == Some(e.cluster.namespace.as_str()) && t.cluster_name() == e.cluster.name
        };
        let targets = match e.event.as_ref() {
            Some(event) if event.store_id().is_some() => {
                refs(&events_store, |t| in_cluster(t) && event_matches(t, event))
            }
            Some(event) if !event.is_cluster_wide() => Vec::new(),
            _ => refs(&events_store, in_cluster),
        };
        futures::stream::iter(targets)
    });
    let cluster_store = store.clone();
    let pod_store = caches.pods.store().clone();
    let data = ControllerData::new(ctx.clone(), runner());
    let controller = Controller::for_shared_stream(caches.tikvs.subscribe(), store)
        .owns_shared_stream(caches.pods.subscribe())
        .owns_shared_stream(caches.config_maps.subscribe())
        .watches_shared_stream(caches.pvcs.subscribe(), |pvc: Arc<PersistentVolumeClaim>| {
            if pvc.labels().get(LABEL_COMPONENT).map(String::as_str) != Some(COMPONENT_TIKV) {
                return None;
            }
            let name = pvc.labels().get(LABEL_INSTANCE).cloned()?;
            Some(ObjectRef::<TiKV>::new(&name).within(&pvc.namespace()?))
        })
        .watches_shared_stream(caches.clusters.subscribe(), move |cluster: Arc<Cluster>| {
            refs(&cluster_store, |t| t.namespace() == cluster.namespace() && t.cluster_name() == cluster.name_any())
        })
        .watches_shared_stream(label_changes(caches.nodes.subscribe()), move |node: Arc<NodeMeta>| {
            instances_on(&pod_store, &node.name_any())
        })
        .reconcile_on(pd)
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency.tikv))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, data);
    drain(controller).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_tikv;

    #[test]
    fn store_events_map_by_id_once_recorded_else_by_address() {
        let mut tikv = sample_tikv("tikv-abc123", "tikv");
        let address = render::advertise_addr(&tikv);
        let added = PdEvent::StoreAdded { store_id: 4, address: address.clone() };
        assert!(event_matches(&tikv, &added));
        assert!(!event_matches(&tikv, &PdEvent::StoreAdded { store_id: 4, address: "other:20160".into() }));
        tikv.status.get_or_insert_default().id = Some("5".into());
        assert!(!event_matches(&tikv, &added), "a recorded ID wins over the address");
        assert!(event_matches(&tikv, &PdEvent::StoreRemoved { store_id: 5, address: "x".into() }));
        // An evict-leader entry added or removed reaches the instance of that store ID.
        assert!(event_matches(&tikv, &PdEvent::EvictLeaderChanged { store_id: 5, evicting: true }));
        assert!(!event_matches(&tikv, &PdEvent::EvictLeaderChanged { store_id: 4, evicting: false }));
    }

    fn node(name: &str, zone: &str) -> Arc<NodeMeta> {
        let mut meta = NodeMeta { types: None, metadata: Default::default(), _phantom: Default::default() };
        meta.metadata.name = Some(name.into());
        meta.metadata.labels = Some([("topology.kubernetes.io/zone".to_string(), zone.to_string())].into());
        Arc::new(meta)
    }

    #[tokio::test]
    async fn a_node_triggers_its_tikvs_when_first_seen_and_when_its_labels_change() {
        let nodes = futures::stream::iter([node("a", "z1"), node("a", "z1"), node("b", "z1"), node("a", "z2")]);
        let passed: Vec<String> = label_changes(nodes)
            .map(|n| format!("{}/{}", n.name_any(), n.labels()["topology.kubernetes.io/zone"]))
            .collect()
            .await;
        assert_eq!(passed, ["a/z1", "b/z1", "a/z2"], "a status-only change of a passes nothing");

        let (store, mut writer) = kube::runtime::reflector::store::<Pod>();
        let pod = |name: &str, node: &str, component: &str| {
            let mut pod = Pod::default();
            pod.metadata.name = Some(name.into());
            pod.metadata.namespace = Some("default".into());
            pod.metadata.labels = Some(
                [(LABEL_COMPONENT.to_string(), component.to_string()), (LABEL_INSTANCE.to_string(), name.to_string())]
                    .into(),
            );
            pod.spec = Some(k8s_openapi::api::core::v1::PodSpec { node_name: Some(node.into()), ..Default::default() });
            pod
        };
        for p in [pod("tikv-a", "a", COMPONENT_TIKV), pod("tikv-b", "b", COMPONENT_TIKV), pod("pd-a", "a", "pd")] {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(p));
        }
        assert_eq!(instances_on(&store, "a"), [ObjectRef::<TiKV>::new("tikv-a").within("default")]);
    }
}
