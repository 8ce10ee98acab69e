//! The generic half of both group controllers: load the group's instances, keep the
//! revision, create missing instances through the updater, and report status and
//! conditions. The PD and TiKV group builders add their own tasks around these.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{ListParams, ObjectMeta};
use kube::{Api, Resource, ResourceExt};
use tikv_operator_api::condition::{is_true_at, reasons, types};
use tikv_operator_api::names;
use tikv_operator_task::{Node, Outcome, sync_task, task};

use super::render::{controller_ref, group_selector, selector_string};
use super::{Group, Instance, Object, PassState};
use crate::apply::post_params;
use crate::error::is_already_exists;
use crate::revision::ensure_revision;
use crate::updater::{self, Action, Expected, GroupView, InstanceView};

/// What the group tasks share.
#[derive(Debug)]
pub struct GroupParts<I> {
    pub instances: Vec<I>,
    pub instances_loaded: bool,
    pub update_revision: Option<String>,
    /// `(current, desired)` when a scale-in was asked for.
    pub scale_in: Option<(i32, i32)>,
    /// Instances created in this pass.
    pub created: Vec<String>,
}

impl<I> Default for GroupParts<I> {
    fn default() -> Self {
        Self {
            instances: Vec::new(),
            instances_loaded: false,
            update_revision: None,
            scale_in: None,
            created: Vec::new(),
        }
    }
}

/// A group controller's state.
pub trait GroupState: PassState<Object = Self::G> {
    type G: Group;
    fn group(&self) -> &GroupParts<<Self::G as Group>::Instance>;
    fn group_mut(&mut self) -> &mut GroupParts<<Self::G as Group>::Instance>;
}

fn expectations_key<G: Group>(namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", G::COMPONENT)
}

/// `load_instances`: lists the group's instances from the API server (a consistent
/// read, not a cache). Writes nothing. Complete, or Fail on an API error.
pub fn load_instances<S: GroupState>() -> Node<S> {
    task("load_instances", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass();
            let Some(group) = &pass.object else {
                return Outcome::complete("no group");
            };
            let selector = selector_string(&group_selector(&group.cluster_name(), S::G::COMPONENT, &pass.name));
            let api: Api<<S::G as Group>::Instance> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
            match api.list(&ListParams::default().labels(&selector)).await {
                Ok(list) => {
                    let count = list.items.len();
                    let parts = s.group_mut();
                    parts.instances = list.items;
                    parts.instances_loaded = true;
                    Outcome::complete(format!("{count} instances"))
                }
                Err(error) => Outcome::fail(error),
            }
        })
    })
}

/// `revision`: makes sure the ControllerRevision of the current template exists and
/// history stays within the Cluster's `revisionHistoryLimit`. Writes ControllerRevisions
/// (only when the template changed or history overflows). Complete, or Fail.
pub fn sync_revision<S: GroupState>() -> Node<S> {
    task("revision", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass();
            let (Some(group), Some(cluster)) = (&pass.object, &pass.cluster) else {
                return Outcome::complete("nothing loaded");
            };
            let current = <S::G as Group>::common_status(&pass.status).current_revision.clone();
            let keep: Vec<&str> = current.iter().map(String::as_str).collect();
            match ensure_revision(&pass.ctx.client, group, cluster.spec.revision_history_limit, &keep).await {
                Ok(sync) => {
                    let name = crate::revision::revision_name(group);
                    let message =
                        if sync.created { format!("created revision {name}") } else { format!("revision {name}") };
                    let status = <S::G as Group>::common_status_mut(&mut s.pass_mut().status);
                    status.update_revision = Some(name.clone());
                    status.current_revision.get_or_insert_with(|| name.clone());
                    s.group_mut().update_revision = Some(name);
                    Outcome::complete(message)
                }
                Err(error) => Outcome::fail(error),
            }
        })
    })
}

/// The instance object the updater asked for.
pub fn new_instance<G: Group>(
    group: &G,
    name: &str,
    topology: Option<tikv_operator_api::Topology>,
    revision: &str,
) -> G::Instance {
    let mut instance = group.instance_from_template(name, topology);
    let template = group.template_meta();
    let mut labels: BTreeMap<String, String> = template.map(|t| t.labels.clone()).unwrap_or_default();
    labels.extend(group_selector(&group.cluster_name(), G::COMPONENT, &group.name_any()));
    labels.insert(names::LABEL_INSTANCE.into(), name.into());
    labels.insert(names::LABEL_INSTANCE_REVISION_HASH.into(), revision.into());
    let mut annotations: BTreeMap<String, String> = template.map(|t| t.annotations.clone()).unwrap_or_default();
    annotations.extend(group.new_instance_annotations());
    *instance.meta_mut() = ObjectMeta {
        name: Some(name.into()),
        namespace: group.namespace(),
        labels: Some(labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        owner_references: Some(controller_ref(group)),
        ..ObjectMeta::default()
    };
    instance
}

/// `updater`: runs the updater over the instances read (plus those created but not yet
/// seen) and carries out its plan. Writes: creates instances. A scale-in is recorded
/// for the Synced condition and not acted on. Complete; Wait without a revision; Retry
/// when a chosen name was taken meanwhile; Fail on other API errors.
pub fn run_updater<S: GroupState>() -> Node<S> {
    task("updater", |s: &mut S| {
        Box::pin(async move {
            let Some(revision) = s.group().update_revision.clone() else {
                return Outcome::wait("no revision yet");
            };
            let pass = s.pass();
            let Some(group) = pass.object.clone() else {
                return Outcome::complete("no group");
            };
            let ctx = pass.ctx.clone();
            let key = expectations_key::<S::G>(&pass.namespace, &pass.name);
            let instances: Vec<InstanceView> = s.group().instances.iter().map(instance_view).collect();
            let seen: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
            let expected = ctx.expectations.unseen(&key, &seen);
            let topologies = group.topologies();
            let view = GroupView {
                group: &pass.name,
                desired: group.replicas(),
                revision: &revision,
                instances: &instances,
                expected: &expected,
                topologies: &topologies,
            };
            let plan = updater::plan(&view, &mut updater::random_suffix);
            s.group_mut().scale_in = plan.scale_in;
            let api: Api<<S::G as Group>::Instance> = Api::namespaced(ctx.client.clone(), &s.pass().namespace);
            for action in plan.actions {
                let Action::Create { name, topology, revision } = action;
                let instance = new_instance(&group, &name, topology.clone(), &revision);
                match api.create(&post_params(), &instance).await {
                    Ok(_) => {
                        ctx.expectations.created(&key, Expected { name: name.clone(), topology });
                        s.pass()
                            .event("CreatedInstance", "Create", format!("created {} instance {name}", S::G::COMPONENT))
                            .await;
                        s.group_mut().created.push(name);
                    }
                    Err(error) if is_already_exists(&error) => {
                        return Outcome::retry(
                            Duration::from_secs(1),
                            format!("instance name {name} is taken; choosing another"),
                        );
                    }
                    Err(error) => return Outcome::fail(error),
                }
            }
            match (&s.group().created[..], s.group().scale_in) {
                (_, Some((current, desired))) => {
                    Outcome::complete(format!("scale-in from {current} to {desired} is not supported yet"))
                }
                ([], None) => Outcome::complete("nothing to do"),
                (created, None) => Outcome::complete(format!("created {}", created.join(", "))),
            }
        })
    })
}

fn instance_view<I: Instance>(instance: &I) -> InstanceView {
    InstanceView {
        name: instance.name_any(),
        topology: instance.topology().cloned(),
        revision: instance.labels().get(names::LABEL_INSTANCE_REVISION_HASH).cloned(),
        deleting: instance.meta().deletion_timestamp.is_some(),
    }
}

/// Ready at the instance's current generation.
pub fn instance_ready<I: Instance>(instance: &I) -> bool {
    instance.status().is_some_and(|s| is_true_at(I::conditions(s), types::READY, instance.meta().generation))
}

/// `group_status`: replicas, ready/updated/current counts, revisions, version,
/// selector, observedGeneration, and the Ready and Synced conditions, from the
/// instances read. Pure: writes only the status being built (written in `finally`).
pub fn group_status<S: GroupState>() -> Node<S> {
    sync_task("group_status", |s: &mut S| {
        let parts = s.group();
        if !parts.instances_loaded {
            let pass = s.pass_mut();
            pass.set_synced("");
            return Outcome::complete("instances not read; Synced only");
        }
        let Some(group) = s.pass().object.clone() else {
            return Outcome::complete("no group");
        };
        // (ready, revision) of every instance not being deleted.
        let live: Vec<(bool, Option<String>)> = parts
            .instances
            .iter()
            .filter(|i| i.meta().deletion_timestamp.is_none())
            .map(|i| (instance_ready(i), i.labels().get(names::LABEL_INSTANCE_REVISION_HASH).cloned()))
            .collect();
        let update_revision = parts.update_revision.clone();
        let replicas = live.len() as i32;
        let ready = live.iter().filter(|(r, _)| *r).count() as i32;
        let updated =
            live.iter().filter(|(_, rev)| update_revision.is_some() && *rev == update_revision).count() as i32;
        let scale_in = parts.scale_in;
        let creating = parts.created.len();
        let desired = group.replicas();

        let pass = s.pass_mut();
        let generation = pass.generation();
        let common = <S::G as Group>::common_status_mut(&mut pass.status);
        common.observed_generation = generation;
        let all_updated = updated == replicas && replicas == desired;
        if all_updated && let Some(update) = &update_revision {
            common.current_revision = Some(update.clone());
        }
        let current_revision = common.current_revision.clone();
        let current =
            live.iter().filter(|(_, rev)| current_revision.is_some() && *rev == current_revision).count() as i32;
        let selector = selector_string(&group_selector(&group.cluster_name(), S::G::COMPONENT, &pass.name));
        let status = <S::G as Group>::group_status_mut(&mut pass.status);
        status.replicas = replicas;
        status.ready_replicas = ready;
        status.updated_replicas = updated;
        status.current_replicas = current;
        status.selector = Some(selector);
        if all_updated {
            status.version = Some(group.version().to_string());
        }

        if ready == desired && replicas == desired {
            pass.set_condition(types::READY, true, reasons::READY, format!("{ready} of {desired} instances ready"));
        } else {
            pass.set_condition(
                types::READY,
                false,
                reasons::NOT_ALL_INSTANCES_READY,
                format!("{ready} of {desired} instances ready"),
            );
        }
        if let Some((current, desired)) = scale_in {
            pass.not_synced(
                reasons::SCALE_IN_NOT_SUPPORTED,
                format!("scale-in from {current} to {desired} instances is not supported yet; nothing was removed"),
            );
        }
        if !all_updated || creating > 0 {
            pass.not_synced(
                reasons::NOT_ALL_INSTANCES_UP_TO_DATE,
                format!("{updated} of {desired} instances at the current revision"),
            );
        }
        pass.set_synced("every instance exists at the current revision");
        Outcome::complete(format!("{ready}/{replicas} ready, {updated} updated"))
    })
}

/// `group_deletion`: a deleted group whose Cluster is going (or gone) deletes its
/// instances and releases its finalizer once none remain. A group deleted while its
/// Cluster lives keeps its finalizer: removing members and stores safely is scale-in's
/// job, not supported yet, and is reported. Writes: DELETE of instances, the group's
/// finalizer. Wait while instances remain; Complete once released; Fail on API errors.
pub fn group_deletion<S: GroupState>() -> Node<S> {
    task("group_deletion", |s: &mut S| {
        Box::pin(async move {
            let cluster_going = s.pass().cluster.as_ref().is_none_or(|c| c.meta().deletion_timestamp.is_some());
            if !cluster_going {
                s.pass_mut().not_synced(
                    reasons::SCALE_IN_NOT_SUPPORTED,
                    "deleting a group while its Cluster exists needs scale-in, which is not supported yet",
                );
                return Outcome::wait("group deleted while its Cluster exists: kept until scale-in is supported");
            }
            let remaining: Vec<String> = s.group().instances.iter().map(ResourceExt::name_any).collect();
            if remaining.is_empty() {
                return crate::common::tasks::set_finalizer(s, false).await;
            }
            let pass = s.pass();
            let api: Api<<S::G as Group>::Instance> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
            for instance in s.group().instances.iter().filter(|i| i.meta().deletion_timestamp.is_none()) {
                if let Err(error) = api.delete(&instance.name_any(), &kube::api::DeleteParams::default()).await
                    && !crate::error::is_not_found(&error)
                {
                    return Outcome::fail(error);
                }
            }
            Outcome::wait(format!("waiting for {} instances to go", remaining.len()))
        })
    })
}
