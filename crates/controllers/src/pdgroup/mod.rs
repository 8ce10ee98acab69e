//! The PDGroup controller: the group's Services, revision, PD bootstrap (initial
//! members, then `spec.bootstrapped`), instance creation through the updater, status.
//!
//! Watches: PDGroups; the PD instances and Services it owns (owner reference); its
//! Cluster (fanned out to the Cluster's groups); PD member and leader events of its
//! cluster (bootstrap).

pub mod builder;
pub mod state;
pub mod tasks;

use std::sync::Arc;

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use tikv_operator_api::{Cluster, PDGroup};
use tikv_operator_task::Runner;

use crate::context::Context;
use crate::controller::{ControllerData, Shutdown, drain, error_policy, key_of, pd_events};
use crate::error::Error;
use state::PdGroupState;

pub const NAME: &str = "pdgroup";

pub fn runner() -> Runner<PdGroupState> {
    Runner::new(NAME, builder::tasks())
}

async fn reconcile(group: Arc<PDGroup>, data: Arc<ControllerData<PdGroupState>>) -> Result<Action, Error> {
    let (namespace, name) = key_of(group.as_ref());
    let mut state = PdGroupState::new(data.ctx.clone(), &namespace, &name);
    data.pass(&format!("{namespace}/{name}"), &mut state).await
}

fn of_cluster(store: &Store<PDGroup>, namespace: &str, cluster: &str) -> Vec<ObjectRef<PDGroup>> {
    store
        .state()
        .iter()
        .filter(|g| g.namespace().as_deref() == Some(namespace) && g.spec.cluster.name == cluster)
        .map(|g| ObjectRef::from(g.as_ref()))
        .collect()
}

pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let caches = &ctx.caches;
    let store = caches.pd_groups.store().clone();
    let events_store = store.clone();
    let pd = pd_events(&ctx).flat_map(move |e| {
        let wanted = e.event.as_ref().is_none_or(|ev| ev.member_name().is_some() || ev.is_cluster_wide());
        let targets =
            if wanted { of_cluster(&events_store, &e.cluster.namespace, &e.cluster.name) } else { Vec::new() };
        futures::stream::iter(targets)
    });
    let cluster_store = store.clone();
    let data = ControllerData::new(ctx.clone(), runner());
    let controller = Controller::for_shared_stream(caches.pd_groups.subscribe(), store)
        .owns_shared_stream(caches.pds.subscribe())
        .owns_shared_stream(caches.services.subscribe())
        .owns_shared_stream(caches.pdbs.subscribe())
        .watches_shared_stream(caches.clusters.subscribe(), move |c: Arc<Cluster>| {
            of_cluster(&cluster_store, &c.namespace().unwrap_or_default(), &c.name_any())
        })
        .reconcile_on(pd)
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency.pd_group))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, data);
    drain(controller).await;
}
