//! The PD instance controller: one PD member's ConfigMap, PVCs and Pod (initial member
//! or joiner), its member ID and leadership from the PD cache, its conditions.
//!
//! Watches: PDs; the Pods and ConfigMaps it owns (by owner reference); its PVCs (by
//! the instance label: PVCs carry no owner, so data outlives the instance); its Cluster
//! and its PDGroup (bootstrap state) when what instances read of them changes, fanned
//! out to their PDs through the reflector store; PD member events (member name = Pod name) and cluster-wide PD
//! events of its cluster.

pub mod builder;
pub mod render;
pub mod state;
pub mod tasks;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use tikv_operator_api::names::{COMPONENT_PD, LABEL_COMPONENT, LABEL_GROUP, LABEL_INSTANCE};
use tikv_operator_api::{Cluster, PD, PDGroup};
use tikv_operator_task::Runner;

use crate::common::{Instance, Object};
use crate::context::Context;
use crate::controller::{ControllerData, Shutdown, drain, error_policy, key_of, pd_events};
use crate::error::Error;
use crate::triggers::{changes_in, cluster_as_instances_read, pd_group_as_instances_read};
use state::PdState;

pub const NAME: &str = "pd";

pub fn runner() -> Runner<PdState> {
    Runner::new(NAME, builder::tasks())
}

async fn reconcile(pd: Arc<PD>, data: Arc<ControllerData<PdState>>) -> Result<Action, Error> {
    let (namespace, name) = key_of(pd.as_ref());
    let mut state = PdState::new(data.ctx.clone(), &namespace, &name);
    data.pass(&format!("{namespace}/{name}"), &mut state).await
}

fn refs(store: &Store<PD>, keep: impl Fn(&PD) -> bool) -> Vec<ObjectRef<PD>> {
    store.state().iter().filter(|pd| keep(pd)).map(|pd| ObjectRef::from(pd.as_ref())).collect()
}

pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let caches = &ctx.caches;
    let store = caches.pds.store().clone();

    let events_store = store.clone();
    let pd = pd_events(&ctx).flat_map(move |e| {
        let in_cluster = |p: &PD| {
            p.namespace().as_deref() == Some(e.cluster.namespace.as_str()) && p.cluster_name() == e.cluster.name
        };
        let targets = match e.event.as_ref() {
            Some(event) if event.member_name().is_some() => {
                let member = event.member_name().unwrap_or_default().to_string();
                refs(&events_store, |p| in_cluster(p) && p.pod_name() == member)
            }
            Some(event) if !event.is_cluster_wide() => Vec::new(),
            _ => refs(&events_store, in_cluster),
        };
        futures::stream::iter(targets)
    });
    let clusters = changes_in(caches.clusters.subscribe(), caches.clusters.store().clone(), cluster_as_instances_read);
    let groups = changes_in(caches.pd_groups.subscribe(), caches.pd_groups.store().clone(), pd_group_as_instances_read);
    let (cluster_store, group_store) = (store.clone(), store.clone());
    let data = ControllerData::new(ctx.clone(), runner());
    let controller = Controller::for_shared_stream(caches.pds.subscribe(), store)
        .owns_shared_stream(caches.pods.subscribe())
        .owns_shared_stream(caches.config_maps.subscribe())
        .watches_shared_stream(caches.pvcs.subscribe(), |pvc: Arc<PersistentVolumeClaim>| {
            if pvc.labels().get(LABEL_COMPONENT).map(String::as_str) != Some(COMPONENT_PD) {
                return None;
            }
            let name = pvc.labels().get(LABEL_INSTANCE).cloned()?;
            Some(ObjectRef::<PD>::new(&name).within(&pvc.namespace()?))
        })
        .watches_shared_stream(clusters, move |cluster: Arc<Cluster>| {
            refs(&cluster_store, |p| p.namespace() == cluster.namespace() && p.cluster_name() == cluster.name_any())
        })
        .watches_shared_stream(groups, move |group: Arc<PDGroup>| {
            refs(&group_store, |p| {
                p.namespace() == group.namespace() && p.labels().get(LABEL_GROUP) == Some(&group.name_any())
            })
        })
        .reconcile_on(pd)
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency.pd))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, data);
    drain(controller).await;
}
