//! The Cluster controller: PD URL and PD cache registration, the PD cluster ID
//! (recorded once, then checked), conditions aggregated from the groups, and deletion.
//!
//! Watches: Clusters; PDGroups and TiKVGroups (mapped to their Cluster by
//! `spec.cluster.name`); PD events of the cluster (members, leader, cluster ID, poll
//! health), mapped to the Cluster.

pub mod builder;
pub mod state;
pub mod tasks;

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use tikv_operator_api::{Cluster, PDGroup, TiKVGroup};
use tikv_operator_task::Runner;

use crate::context::Context;
use crate::controller::{ControllerData, Shutdown, drain, error_policy, key_of, pd_events};
use crate::error::Error;
use state::ClusterState;

pub const NAME: &str = "cluster";

pub fn runner() -> Runner<ClusterState> {
    Runner::new(NAME, builder::tasks())
}

async fn reconcile(cluster: Arc<Cluster>, data: Arc<ControllerData<ClusterState>>) -> Result<Action, Error> {
    let (namespace, name) = key_of(cluster.as_ref());
    let mut state = ClusterState::new(data.ctx.clone(), &namespace, &name);
    data.pass(&format!("{namespace}/{name}"), &mut state).await
}

pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let caches = &ctx.caches;
    let pd = pd_events(&ctx).filter_map(|e| async move {
        let relevant = e.event.as_ref().is_none_or(|ev| ev.is_cluster_wide() || ev.member_name().is_some());
        relevant.then(|| ObjectRef::<Cluster>::new(&e.cluster.name).within(&e.cluster.namespace))
    });
    let data = ControllerData::new(ctx.clone(), runner());
    let controller = Controller::for_shared_stream(caches.clusters.subscribe(), caches.clusters.store().clone())
        .watches_shared_stream(caches.pd_groups.subscribe(), |g: Arc<PDGroup>| {
            cluster_of(&g.metadata.namespace, &g.spec.cluster.name)
        })
        .watches_shared_stream(caches.tikv_groups.subscribe(), |g: Arc<TiKVGroup>| {
            cluster_of(&g.metadata.namespace, &g.spec.cluster.name)
        })
        .reconcile_on(pd)
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency.cluster))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, data);
    drain(controller).await;
}

fn cluster_of(namespace: &Option<String>, name: &str) -> Option<ObjectRef<Cluster>> {
    namespace.as_deref().map(|ns| ObjectRef::new(name).within(ns))
}
