//! `load_instances`: lists the group's instances from the watch cache (instances
//! created but not yet seen there are covered by the expectations). Writes nothing.
//! Complete.

use tikv_operator_task::{Node, Outcome, task};

use crate::common::group::GroupState;
use crate::common::render::group_selector;
use crate::common::{Group, Object};

pub fn load_instances<S: GroupState>() -> Node<S> {
    task("load_instances", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass();
            let Some(group) = &pass.object else {
                return Outcome::complete("no group");
            };
            let selector = group_selector(&group.cluster_name(), S::G::COMPONENT, &pass.name);
            let instances: Vec<<S::G as Group>::Instance> = pass
                .ctx
                .caches
                .list::<<S::G as Group>::Instance>(&pass.namespace, &selector)
                .iter()
                .map(|i| (**i).clone())
                .collect();
            let count = instances.len();
            let parts = s.group_mut();
            parts.instances = instances;
            parts.instances_loaded = true;
            Outcome::complete(format!("{count} instances"))
        })
    })
}
