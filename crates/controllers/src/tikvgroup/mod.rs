//! The TiKVGroup controller: the peer Service, revision, upgrade ordering (TiKV after
//! PD), instance creation through the updater, status.
//!
//! Watches: TiKVGroups; the TiKV instances and Services it owns; its Cluster and the
//! cluster's PDGroups (upgrade ordering), fanned out to the cluster's TiKV groups.

pub mod builder;
pub mod state;
pub mod tasks;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tikv_operator_api::names::{COMPONENT_TIKV, LABEL_COMPONENT};
use tikv_operator_api::{Cluster, PDGroup, TiKV, TiKVGroup};
use tikv_operator_task::Runner;

use crate::context::Context;
use crate::controller::{
    ControllerData, Shutdown, api, drain, error_policy, key_of, managed_config, reflected, stream,
};
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
    let namespace = ctx.config.namespace.clone();
    let ns = namespace.as_deref();
    let (store, groups) = reflected(api::<TiKVGroup>(&ctx.client, ns), watcher::Config::default());
    let instances = stream(api::<TiKV>(&ctx.client, ns), watcher::Config::default());
    let services =
        stream(api::<Service>(&ctx.client, ns), managed_config(&format!("{LABEL_COMPONENT}={COMPONENT_TIKV}")));
    let clusters = stream(api::<Cluster>(&ctx.client, ns), watcher::Config::default());
    let pd_groups = stream(api::<PDGroup>(&ctx.client, ns), watcher::Config::default());
    let (by_cluster, by_pd) = (store.clone(), store.clone());
    let data = ControllerData::new(ctx.clone(), runner());
    let controller = Controller::for_stream(groups, store)
        .owns_stream(instances)
        .owns_stream(services)
        .watches_stream(clusters, move |c: Cluster| of_cluster(&by_cluster, c.namespace(), &c.name_any()))
        .watches_stream(pd_groups, move |g: PDGroup| of_cluster(&by_pd, g.namespace(), &g.spec.cluster.name))
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency.tikv_group))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, data);
    drain(controller).await;
}
