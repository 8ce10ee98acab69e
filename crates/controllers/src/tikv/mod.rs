//! The TiKV instance controller: one store's ConfigMap, PVCs and Pod, its store ID
//! (discovered once by advertise address, then read by ID) and state from the PD
//! cache, its conditions.
//!
//! Watches: TiKVs; the Pods and ConfigMaps it owns; its PVCs (by instance label); its
//! Cluster when what instances read of it changes (fanned out through the reflector
//! store); PD store events, mapped by the recorded store ID or, before it is recorded,
//! by advertise address, and those that change the room for an offline also to every
//! leaving instance of the cluster; cluster-wide PD events of its cluster; the nodes its
//! Pods run on, when their labels change (store labels follow them).

pub mod builder;
pub mod guards;
pub mod render;
pub mod state;
pub mod tasks;

use std::sync::Arc;

use futures::StreamExt;
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
use crate::triggers::{changes_in, cluster_as_instances_read, node_labels};
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

/// Whether a store event can change the room a leaving store waits for: a store came or
/// went or changed state (how many could take over its data), or entered or left the
/// evict-leader scheduler (which leaving store holds a place). Instances waiting for
/// that room (`NotEnoughStores`) are woken by it, not by whatever else happens to change.
fn changes_room(event: &PdEvent) -> bool {
    match event {
        PdEvent::StoreAdded { .. } | PdEvent::StoreRemoved { .. } | PdEvent::EvictLeaderChanged { .. } => true,
        PdEvent::StoreChanged { changes, .. } => changes.iter().any(|c| matches!(*c, "state" | "node_state")),
        _ => false,
    }
}

/// The instances a store event reaches: its own, and (when it changes the room left
/// for an offline) every instance of the cluster that is leaving.
fn store_event_targets(
    store: &Store<TiKV>,
    in_cluster: impl Fn(&TiKV) -> bool,
    event: &PdEvent,
) -> Vec<ObjectRef<TiKV>> {
    let room = changes_room(event);
    let leaving = |t: &TiKV| t.metadata.deletion_timestamp.is_some() || t.spec.offline;
    refs(store, |t| in_cluster(t) && (event_matches(t, event) || (room && leaving(t))))
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
            Some(event) if event.store_id().is_some() => store_event_targets(&events_store, in_cluster, event),
            Some(event) if !event.is_cluster_wide() => Vec::new(),
            _ => refs(&events_store, in_cluster),
        };
        futures::stream::iter(targets)
    });
    let clusters = changes_in(caches.clusters.subscribe(), caches.clusters.store().clone(), cluster_as_instances_read);
    let nodes = changes_in(caches.nodes.subscribe(), caches.nodes.store().clone(), node_labels);
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
        .watches_shared_stream(clusters, move |cluster: Arc<Cluster>| {
            refs(&cluster_store, |t| t.namespace() == cluster.namespace() && t.cluster_name() == cluster.name_any())
        })
        .watches_shared_stream(nodes, move |node: Arc<NodeMeta>| instances_on(&pod_store, &node.name_any()))
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

    #[test]
    fn a_store_coming_going_or_changing_state_also_reaches_the_leaving_instances_of_its_cluster() {
        let (store, mut writer) = kube::runtime::reflector::store::<TiKV>();
        let with_id = |name: &str, id: &str| {
            let mut tikv = sample_tikv(name, "tikv");
            tikv.status.get_or_insert_default().id = Some(id.into());
            tikv
        };
        let serving = with_id("tikv-a", "1");
        let mut offline = with_id("tikv-b", "2");
        offline.spec.offline = true;
        let mut deleted = with_id("tikv-c", "3");
        deleted.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(crate::testing::t0()));
        let mut elsewhere = with_id("tikv-d", "9");
        elsewhere.spec.offline = true;
        elsewhere.spec.cluster.name = "other".into();
        for t in [serving, offline, deleted, elsewhere] {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(t));
        }
        let in_cluster = |t: &TiKV| t.cluster_name() == "basic";
        let targets = |event: PdEvent| {
            let mut names: Vec<String> =
                store_event_targets(&store, in_cluster, &event).into_iter().map(|r| r.name).collect();
            names.sort();
            names
        };
        let room = ["tikv-b", "tikv-c"];
        assert_eq!(targets(PdEvent::StoreAdded { store_id: 4, address: "new:20160".into() }), room);
        assert_eq!(targets(PdEvent::StoreRemoved { store_id: 1, address: "x".into() }), ["tikv-a", "tikv-b", "tikv-c"]);
        let changed = |changes: Vec<&'static str>| PdEvent::StoreChanged { store_id: 5, address: "y".into(), changes };
        assert_eq!(targets(changed(vec!["node_state"])), room);
        assert_eq!(targets(changed(vec!["state"])), room);
        assert!(targets(changed(vec!["labels", "leader_count_zero"])).is_empty(), "no room changes: its own only");
        assert_eq!(targets(PdEvent::EvictLeaderChanged { store_id: 4, evicting: false }), room);
        assert_eq!(
            targets(PdEvent::EvictLeaderChanged { store_id: 1, evicting: true }),
            ["tikv-a", "tikv-b", "tikv-c"]
        );
    }

    #[test]
    fn a_node_reaches_the_tikvs_whose_pods_run_on_it() {
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
