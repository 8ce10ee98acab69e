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
use super::replicas::Replicas;
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
    /// What `validate_template` found wrong with the template: it is not rolled out.
    pub template_findings: Vec<super::Finding>,
}

impl<I> Default for GroupParts<I> {
    fn default() -> Self {
        Self {
            instances: Vec::new(),
            instances_loaded: false,
            update_revision: None,
            scale_in: None,
            created: Vec::new(),
            template_findings: Vec::new(),
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

/// `load_instances`: lists the group's instances from the watch cache (instances
/// created but not yet seen there are covered by the expectations). Writes nothing.
/// Complete.
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
            match ensure_revision(&pass.ctx, group, cluster.spec.revision_history_limit, &keep).await {
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

/// Instances created in one pass at most: a large scale-out (or a typo such as
/// `replicas: 1000`) is carried out over several passes, each of which writes the
/// group's status, so progress and unschedulable pods show while it happens.
const CREATES_PER_PASS: usize = 10;

/// `updater`: runs the updater over the instances read (plus those created but not yet
/// seen) and carries out its plan. Writes: creates instances, at most
/// [`CREATES_PER_PASS`] a pass, and none while an instance of the group cannot be
/// scheduled (so a typo such as `replicas: 1000` stops at what fits). A scale-in is
/// recorded for the Synced condition and not acted on. Complete; Wait without a
/// revision or while pods cannot be scheduled; Retry while more remain to create or
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
            let unschedulable = Replicas::count(group.replicas(), &s.group().instances).unschedulable;
            if unschedulable > 0 && !plan.actions.is_empty() {
                return Outcome::wait(format!(
                    "{unschedulable} instances cannot be scheduled: no more are created until they can \
                     (add capacity, or lower replicas)"
                ));
            }
            let api: Api<<S::G as Group>::Instance> = Api::namespaced(ctx.client.clone(), &s.pass().namespace);
            let planned = plan.actions.len();
            for action in plan.actions.into_iter().take(CREATES_PER_PASS) {
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
                (created, None) if planned > created.len() => Outcome::retry(
                    Duration::from_secs(1),
                    format!("created {} of {planned} missing instances; the rest in the next passes", created.len()),
                ),
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
        // A pass that stopped before the revision (a template not rolled out) counts
        // against the revision last rolled out.
        let update_revision = parts
            .update_revision
            .clone()
            .or_else(|| <S::G as Group>::common_status(&s.pass().status).update_revision.clone());
        let template_rolled_out = parts.update_revision.is_some();
        let counts = Replicas::count(group.replicas(), &parts.instances);
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
        if all_updated && template_rolled_out {
            status.version = Some(group.version().to_string());
        }

        if pass.cluster.is_none() {
            let message = crate::common::tasks::cluster_not_found_message(&pass.namespace, &group.cluster_name());
            pass.set_condition(types::READY, false, reasons::CLUSTER_NOT_FOUND, message);
        } else {
            let (ready, reason, message) = counts.ready_condition(<S::G as Group>::MIN_REPLICAS, group.replicas_note());
            pass.set_condition(types::READY, ready, reason, message);
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
/// instances and releases its finalizer once none remain (confirmed by a fresh list, not
/// the cache). A group deleted while its Cluster lives keeps its finalizer: removing
/// members and stores safely is scale-in's job, not supported yet, and is reported. Writes: DELETE of instances, the group's
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
            let mut remaining: Vec<String> = s.group().instances.iter().map(ResourceExt::name_any).collect();
            if remaining.is_empty() {
                // Releasing the finalizer lets the group go: confirm with a fresh list
                // that the cache is not merely behind.
                let pass = s.pass();
                let Some(group) = &pass.object else {
                    return Outcome::complete("no group");
                };
                let selector = selector_string(&group_selector(&group.cluster_name(), S::G::COMPONENT, &pass.name));
                let api: Api<<S::G as Group>::Instance> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
                match api.list(&ListParams::default().labels(&selector)).await {
                    Ok(list) if list.items.is_empty() => return crate::common::tasks::set_finalizer(s, false).await,
                    Ok(list) => {
                        remaining = list.items.iter().map(ResourceExt::name_any).collect();
                        s.group_mut().instances = list.items;
                    }
                    Err(error) => return Outcome::fail(error),
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Finding;
    use crate::pdgroup::state::PdGroupState;
    use crate::testing::{TestEnv, sample_cluster, sample_pd, sample_pd_group};
    use kube::api::DeleteParams;
    use tikv_operator_api::names::FINALIZER;
    use tikv_operator_api::{Cluster, PD, PDGroup};
    use tikv_operator_task::{OutcomeKind, Runner};

    fn with_finalizer<K: Resource>(mut object: K) -> K {
        object.meta_mut().finalizers = Some(vec![FINALIZER.into()]);
        object
    }

    /// Creates `name` with our finalizer, deletes it and returns it as read: deleting.
    async fn deleting<K>(env: &TestEnv, object: K) -> K
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let name = object.name_any();
        env.create(with_finalizer(object)).await;
        let api: Api<K> = Api::namespaced(env.client.clone(), "default");
        api.delete(&name, &DeleteParams::default()).await.unwrap();
        env.sim.requests().reset();
        let read: K = env.get(&name).await;
        assert!(read.meta().deletion_timestamp.is_some());
        read
    }

    fn state(env: &TestEnv, group: PDGroup, cluster: Option<Cluster>) -> PdGroupState {
        let mut s = PdGroupState::new(env.ctx.clone(), "default", &group.name_any());
        s.pass = s.pass.with_object(group);
        s.pass.cluster = cluster;
        s
    }

    async fn pd_names(env: &TestEnv) -> Vec<String> {
        let mut names: Vec<String> = env.list::<PD>().await.iter().map(ResourceExt::name_any).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_group_deleted_while_its_cluster_lives_is_kept_and_reported() {
        let env = TestEnv::start().await;
        let cluster = env.create(sample_cluster("basic")).await;
        let group = deleting(&env, sample_pd_group("pd", 2)).await;
        let a = env.create(sample_pd("pd-a", "pd")).await;
        let b = env.create(sample_pd("pd-b", "pd")).await;
        let mut s = state(&env, group, Some(cluster));
        s.group.instances = vec![a, b];
        s.group.instances_loaded = true;

        let report = env.run(&Runner::new("t", [group_deletion()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(
            report.entry("group_deletion").unwrap().message(),
            "group deleted while its Cluster exists: kept until scale-in is supported"
        );
        assert_eq!(
            s.pass.unsynced,
            [Finding {
                reason: reasons::SCALE_IN_NOT_SUPPORTED,
                message: "deleting a group while its Cluster exists needs scale-in, which is not supported yet".into(),
            }]
        );
        assert_eq!(env.write_log(), Vec::<String>::new(), "nothing deleted, finalizer kept");
        assert_eq!(pd_names(&env).await, ["pd-a", "pd-b"]);
        let live: PDGroup = env.get("pd").await;
        assert_eq!(live.finalizers(), [FINALIZER]);
        assert!(s.pass.object.is_some());
    }

    #[tokio::test]
    async fn with_the_cluster_going_instances_are_deleted_then_the_finalizer_released() {
        let env = TestEnv::start().await;
        let cluster = deleting(&env, sample_cluster("basic")).await;
        let group = deleting(&env, sample_pd_group("pd", 2)).await;
        env.create(sample_pd("pd-a", "pd")).await;
        // pd-b has a finalizer of its own: it lingers after its DELETE.
        env.create(with_finalizer(sample_pd("pd-b", "pd"))).await;
        // Another group's instance is not this group's to delete.
        env.create(sample_pd("other-a", "other")).await;
        let runner = Runner::new("t", [load_instances(), group_deletion()]);

        let mut s = state(&env, group, Some(cluster.clone()));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(report.entry("group_deletion").unwrap().message(), "waiting for 2 instances to go");
        let deletes = ["delete core.tikv.org/pds/pd-a", "delete core.tikv.org/pds/pd-b"];
        assert_eq!(env.write_log(), deletes);
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);
        assert_eq!(pd_names(&env).await, ["other-a", "pd-b"]);
        let live: PDGroup = env.get("pd").await;
        assert_eq!(live.finalizers(), [FINALIZER], "kept while an instance remains");

        // Next pass: pd-b is still going; it is not deleted again and the finalizer stays.
        let mut s = state(&env, live, Some(cluster.clone()));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(report.entry("group_deletion").unwrap().message(), "waiting for 1 instances to go");
        assert_eq!(env.write_log(), deletes, "no second DELETE");
        let live: PDGroup = env.get("pd").await;
        assert_eq!(live.finalizers(), [FINALIZER]);

        // pd-b goes; now the group's finalizer is released and the group is gone.
        let pds: Api<PD> = Api::namespaced(env.client.clone(), "default");
        let patch = serde_json::json!({"metadata": {"finalizers": null}});
        pds.patch("pd-b", &Default::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
        env.sim.requests().reset();
        let mut s = state(&env, live, Some(cluster));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("group_deletion").unwrap().message(), "released");
        assert_eq!(env.write_log(), ["patch core.tikv.org/pdgroups/pd"]);
        assert!(s.pass.object.is_none());
        let groups: Api<PDGroup> = Api::namespaced(env.client.clone(), "default");
        assert!(groups.get_opt("pd").await.unwrap().is_none());
        assert_eq!(pd_names(&env).await, ["other-a"]);
    }

    #[tokio::test]
    async fn with_the_cluster_gone_a_group_without_instances_is_released() {
        let env = TestEnv::start().await;
        let group = deleting(&env, sample_pd_group("pd", 2)).await;
        let mut s = state(&env, group, None);
        let report = env.run(&Runner::new("t", [load_instances(), group_deletion()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(env.write_log(), ["patch core.tikv.org/pdgroups/pd"]);
        assert!(s.pass.unsynced.is_empty());
    }

    fn zone_of(pd: &PD) -> String {
        pd.spec.topology.as_ref().unwrap()["topology.kubernetes.io/zone"].clone()
    }

    #[tokio::test]
    async fn the_updater_creates_exactly_the_missing_instances_and_no_duplicate_on_a_stale_list() {
        let env = TestEnv::start().await;
        // The owner must exist, or kube-sim's garbage collector takes the instances.
        let group = env.create(sample_pd_group("pd", 3)).await;
        let a = env.create(sample_pd("pd-a", "pd")).await;
        let runner = Runner::new("t", [run_updater()]);
        let stale = |group: PDGroup| {
            let mut s = state(&env, group, None);
            s.group.instances = vec![a.clone()];
            s.group.instances_loaded = true;
            s.group.update_revision = Some("rev-2".into());
            s
        };

        let mut s = stale(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(s.group.created.len(), 2, "{:?}", s.group.created);
        assert_eq!(report.entry("updater").unwrap().message(), format!("created {}", s.group.created.join(", ")));
        assert_eq!(s.group.scale_in, None);
        assert_eq!(env.write_log(), ["create core.tikv.org/pds/", "create core.tikv.org/pds/"]);
        let mut created = s.group.created.clone();
        created.sort();
        let mut expected_names = vec!["pd-a".to_string()];
        expected_names.extend(created.iter().cloned());
        expected_names.sort();
        assert_eq!(pd_names(&env).await, expected_names);
        for name in &created {
            assert!(name.starts_with("pd-") && name.len() == 3 + names::INSTANCE_SUFFIX_LEN, "{name}");
            let pd: PD = env.get(name).await;
            assert_eq!(pd.labels()[names::LABEL_INSTANCE_REVISION_HASH], "rev-2");
            assert_eq!(pd.labels()[names::LABEL_INSTANCE], *name);
            assert_eq!(pd.labels()[names::LABEL_GROUP], "pd");
            assert_eq!(pd.owner_references().len(), 1);
            assert_eq!(pd.owner_references()[0].uid, group.uid().unwrap());
        }
        // pd-a is in zone-a: the new ones fill zone-b and zone-c.
        let mut zones: Vec<String> = env.list::<PD>().await.iter().map(zone_of).collect();
        zones.sort();
        assert_eq!(zones, ["zone-a", "zone-b", "zone-c"]);

        // A second pass whose list still shows only pd-a: the expectations count the two
        // created, so nothing is created again.
        let mut s = stale(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "nothing to do");
        assert!(s.group.created.is_empty());
        assert_eq!(env.writes(), 2, "{:?}", env.write_log());
        assert_eq!(env.list::<PD>().await.len(), 3);
    }

    #[tokio::test]
    async fn a_large_scale_out_is_created_a_batch_per_pass() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 25)).await;
        let runner = Runner::new("t", [run_updater()]);
        let pass = |group: PDGroup| {
            let mut s = state(&env, group, None);
            s.group.instances_loaded = true;
            s.group.update_revision = Some("rev-1".into());
            s
        };
        let mut s = pass(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry, "{report}");
        assert_eq!(
            report.entry("updater").unwrap().message(),
            "created 10 of 25 missing instances; the rest in the next passes"
        );
        assert_eq!(env.writes(), 10, "{:?}", env.write_log());

        // The next passes (the list still stale: expectations count what was created).
        let mut s = pass(group.clone());
        assert_eq!(env.run(&runner, "k", &mut s).await.outcome(), OutcomeKind::Retry);
        let mut s = pass(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(s.group.created.len(), 5);
        assert_eq!(env.list::<PD>().await.len(), 25);
    }

    #[tokio::test]
    async fn no_instance_is_created_while_one_cannot_be_scheduled() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 5)).await;
        let mut stuck = sample_pd("pd-a", "pd");
        let mut status = tikv_operator_api::PDStatus::default();
        tikv_operator_api::condition::set_condition(
            &mut status.common.conditions,
            tikv_operator_api::condition::DesiredCondition::new(
                types::READY,
                false,
                reasons::UNSCHEDULABLE,
                "0/3 nodes are available: 3 Insufficient cpu.",
            ),
            crate::testing::t0(),
        );
        stuck.status = Some(status);
        let mut s = state(&env, group, None);
        s.group.instances = vec![stuck];
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-1".into());
        let report = env.run(&Runner::new("t", [run_updater()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert!(report.entry("updater").unwrap().message().starts_with("1 instances cannot be scheduled"), "{report}");
        assert_eq!(env.writes(), 0, "{:?}", env.write_log());
    }

    #[tokio::test]
    async fn the_updater_waits_without_a_revision_and_reports_a_scale_in() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 1)).await;
        let runner = Runner::new("t", [run_updater()]);
        let mut s = state(&env, group.clone(), None);
        s.group.instances_loaded = true;
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "no revision yet");

        let mut s = state(&env, group, None);
        s.group.instances = vec![sample_pd("pd-a", "pd"), sample_pd("pd-b", "pd")];
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-1".into());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "scale-in from 2 to 1 is not supported yet");
        assert_eq!(s.group.scale_in, Some((2, 1)));
        assert_eq!(env.write_log(), Vec::<String>::new());
    }

    /// An instance of group `pd` at `revision`, Ready (at its generation) or not.
    fn instance(name: &str, revision: &str, ready: bool) -> PD {
        let mut pd = sample_pd(name, "pd");
        pd.labels_mut().insert(names::LABEL_INSTANCE_REVISION_HASH.into(), revision.into());
        let status = if ready { "True" } else { "False" };
        pd.status = Some(
            serde_json::from_value(serde_json::json!({"conditions": [{
                "type": "Ready", "status": status, "reason": "Test", "message": "",
                "observedGeneration": 1, "lastTransitionTime": "2027-01-15T08:00:00Z"}]}))
            .unwrap(),
        );
        pd
    }

    fn condition(s: &PdGroupState, type_: &str) -> (String, String, String) {
        let c = tikv_operator_api::condition::find_condition(&s.pass.status.common.conditions, type_).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    fn status_state(env: &TestEnv, group: PDGroup, instances: Vec<PD>) -> PdGroupState {
        let mut s = state(env, group, Some(sample_cluster("basic")));
        s.group.instances = instances;
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-2".into());
        s
    }

    #[tokio::test]
    async fn group_status_counts_instances_and_keeps_the_current_revision_mid_update() {
        let env = TestEnv::start().await;
        let mut group = sample_pd_group("pd", 3);
        group.metadata.generation = Some(4);
        group.status = Some(Default::default());
        group.status.as_mut().unwrap().common.current_revision = Some("rev-1".into());
        let mut gone = instance("pd-d", "rev-2", true);
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(crate::testing::t0()));
        let instances = vec![
            instance("pd-a", "rev-2", true),
            instance("pd-b", "rev-2", false),
            instance("pd-c", "rev-1", true),
            gone,
        ];
        let mut s = status_state(&env, group, instances);
        let report = env.run(&Runner::new("t", [group_status()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("group_status").unwrap().message(), "2/3 ready, 2 updated");
        let status = &s.pass.status;
        assert_eq!(
            (status.group.replicas, status.group.ready_replicas, status.group.updated_replicas),
            (3, 2, 2),
            "the deleting instance does not count"
        );
        assert_eq!(status.group.current_replicas, 1);
        assert_eq!(status.common.current_revision.as_deref(), Some("rev-1"), "not all updated yet");
        assert_eq!(status.common.observed_generation, Some(4));
        assert_eq!(status.group.version, None);
        assert_eq!(
            status.group.selector.as_deref(),
            Some(selector_string(&group_selector("basic", names::COMPONENT_PD, "pd")).as_str())
        );
        assert_eq!(
            condition(&s, types::READY),
            (
                "False".into(),
                reasons::NOT_ALL_INSTANCES_READY.into(),
                "2 of 3 wanted instances ready; 1 not ready".into()
            )
        );
        assert_eq!(
            condition(&s, types::SYNCED),
            (
                "False".into(),
                reasons::NOT_ALL_INSTANCES_UP_TO_DATE.into(),
                "2 of 3 instances at the current revision".into()
            )
        );
        assert_eq!(env.write_log(), Vec::<String>::new(), "pure");
    }

    #[tokio::test]
    async fn group_status_of_an_updated_group_is_written_once_then_left_alone() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 2)).await;
        let instances = vec![instance("pd-a", "rev-2", true), instance("pd-b", "rev-2", true)];
        let runner = Runner::new("t", [group_status(), crate::common::tasks::write_status()]);

        let mut s = status_state(&env, group, instances.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("group_status").unwrap().message(), "2/2 ready, 2 updated");
        assert_eq!(report.entry("write_status").unwrap().message(), "written", "{report}");
        assert_eq!(env.write_log(), ["update core.tikv.org/pdgroups/status/pd"]);
        let live: PDGroup = env.get("pd").await;
        let status = live.status.clone().unwrap();
        assert_eq!(
            (
                status.group.replicas,
                status.group.ready_replicas,
                status.group.updated_replicas,
                status.group.current_replicas
            ),
            (2, 2, 2, 2)
        );
        assert_eq!(status.common.current_revision.as_deref(), Some("rev-2"), "all updated: current follows");
        assert_eq!(status.group.version.as_deref(), Some("v8.5.0"));
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);
        assert_eq!(
            condition(&s, types::READY),
            (
                "True".into(),
                reasons::READY.into(),
                "2 of 2 instances ready; 2 members tolerate 0 failures, as 1 do: an odd number of PD members uses \
                 every member"
                    .into()
            )
        );
        assert_eq!(condition(&s, types::SYNCED).0, "True");

        // The same again, from the group as written: nothing to write.
        let mut s = status_state(&env, live, instances);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("write_status").unwrap().message(), "unchanged", "{report}");
        assert_eq!(env.writes(), 1, "{:?}", env.write_log());
    }

    #[tokio::test]
    async fn group_status_reports_a_scale_in_and_creations_as_not_synced() {
        let env = TestEnv::start().await;
        let instances = vec![instance("pd-a", "rev-2", true), instance("pd-b", "rev-2", true)];
        let mut s = status_state(&env, sample_pd_group("pd", 1), instances.clone());
        s.group.scale_in = Some((2, 1));
        env.run(&Runner::new("t", [group_status()]), "k", &mut s).await;
        assert_eq!(
            condition(&s, types::SYNCED),
            (
                "False".into(),
                reasons::SCALE_IN_NOT_SUPPORTED.into(),
                "scale-in from 2 to 1 instances is not supported yet; nothing was removed".into()
            )
        );

        // Instances created this pass (not yet listed) keep Synced False.
        let mut s = status_state(&env, sample_pd_group("pd", 2), instances);
        s.group.created = vec!["pd-c".into()];
        env.run(&Runner::new("t", [group_status()]), "k", &mut s).await;
        assert_eq!(condition(&s, types::READY).0, "True");
        assert_eq!(condition(&s, types::SYNCED).1, reasons::NOT_ALL_INSTANCES_UP_TO_DATE);
    }

    #[tokio::test]
    async fn group_status_without_instances_read_sets_only_synced() {
        let env = TestEnv::start().await;
        let mut s = state(&env, sample_pd_group("pd", 2), None);
        s.pass.not_synced(reasons::SCALE_IN_NOT_SUPPORTED, "kept");
        let report = env.run(&Runner::new("t", [group_status()]), "k", &mut s).await;
        assert_eq!(report.entry("group_status").unwrap().message(), "instances not read; Synced only");
        assert_eq!(
            condition(&s, types::SYNCED),
            ("False".into(), reasons::SCALE_IN_NOT_SUPPORTED.into(), "kept".into())
        );
        assert!(tikv_operator_api::condition::find_condition(&s.pass.status.common.conditions, types::READY).is_none());
        assert_eq!(s.pass.status.group, Default::default());
    }
}
