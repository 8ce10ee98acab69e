//! The TiKVGroup controller: the peer Service, revision, upgrade ordering (TiKV after
//! PD), instance creation through the updater, status.
//!
//! Watches: TiKVGroups; the TiKV instances and Services it owns; its Cluster and the
//! cluster's PDGroups (upgrade ordering), fanned out to the cluster's TiKV groups.

pub mod builder;
pub mod scale_in_check;
pub mod state;
pub mod tasks;

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use tikv_operator_api::{Cluster, PDGroup, TiKVGroup};
use tikv_operator_task::Runner;

use crate::context::Context;
use crate::controller::{ControllerData, Shutdown, drain, error_policy, key_of};
use crate::error::Error;
use state::TikvGroupState;

pub const NAME: &str = "tikvgroup";

pub fn runner() -> Runner<TikvGroupState> {
    Runner::new(NAME, builder::tasks())
}

async fn reconcile(group: Arc<TiKVGroup>, data: Arc<ControllerData<TikvGroupState>>) -> Result<Action, Error> {
    let (namespace, name) = key_of(group.as_ref());
    let mut state = TikvGroupState::new(data.ctx.clone(), &namespace, &name);
    data.pass(&format!("{namespace}/{name}"), &mut state).await
}

fn of_cluster(store: &Store<TiKVGroup>, namespace: Option<String>, cluster: &str) -> Vec<ObjectRef<TiKVGroup>> {
    store
        .state()
        .iter()
        .filter(|g| g.namespace() == namespace && g.spec.cluster.name == cluster)
        .map(|g| ObjectRef::from(g.as_ref()))
        .collect()
}

pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let caches = &ctx.caches;
    let store = caches.tikv_groups.store().clone();
    let (by_cluster, by_pd) = (store.clone(), store.clone());
    let data = ControllerData::new(ctx.clone(), runner());
    let controller = Controller::for_shared_stream(caches.tikv_groups.subscribe(), store)
        .owns_shared_stream(caches.tikvs.subscribe())
        .owns_shared_stream(caches.services.subscribe())
        .owns_shared_stream(caches.pdbs.subscribe())
        .watches_shared_stream(caches.clusters.subscribe(), move |c: Arc<Cluster>| {
            of_cluster(&by_cluster, c.namespace(), &c.name_any())
        })
        .watches_shared_stream(caches.pd_groups.subscribe(), move |g: Arc<PDGroup>| {
            of_cluster(&by_pd, g.namespace(), &g.spec.cluster.name)
        })
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency.tikv_group))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, data);
    drain(controller).await;
}
