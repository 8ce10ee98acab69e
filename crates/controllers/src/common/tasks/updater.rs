//! `updater`: plans the group's next actions with the pure updater ([`crate::updater`])
//! over the instances read, with the group's own writes not yet seen there applied
//! (expectations, kept per group UID), and carries the plan out in its order:
//!
//! - Delete: an instance whose store left PD, with UID and resourceVersion
//!   preconditions (the instance controller then cleans up its Pod and volumes);
//! - RemoveMember: a PD instance chosen to leave is deleted the same way (its controller
//!   takes its member out of PD before its Pod and volumes go);
//! - CancelOffline / SetOffline: a merge patch of `spec.offline` and the
//!   `core.tikv.org/offline-chosen-at` annotation, guarded by the resourceVersion read;
//! - Create: at most [`CREATES_PER_PASS`] a pass, none while an instance of the group
//!   cannot be scheduled (so `replicas: 1000` by typo stops at what fits);
//! - Update: the instance's spec is replaced by the template's (its name, topology and
//!   offline kept) and it is labelled with the revision, guarded by the resourceVersion
//!   read; its controller then applies it in place or restarts it safely.
//!
//! While the revision may not roll out yet (`rollout_held`: TiKV waits for PD), neither
//! creates nor updates happen; scale-in goes on.
//!
//! Every write brings an Event; a blocked scale-in a Warning Event when first reported.
//! The plan's scale-in and block are left for `group_status`.
//!
//! Outcomes: Complete; Wait without a revision, while instances leave, while a scale-in
//! is blocked or held back by the budget; Retry while more remain to create, or after a
//! write met a newer instance (409) or a taken name; Fail on other API errors.

use std::time::Duration;

use kube::api::{DeleteParams, Patch, Preconditions};
use kube::{Api, ResourceExt};
use serde_json::json;
use tikv_operator_api::condition::{find_condition, types};
use tikv_operator_api::names::{self, ANNOTATION_OFFLINE_CHOSEN_AT};
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::{patch_params, post_params};
use crate::common::group::{GroupState, Planned, instance_view, new_instance};
use crate::common::replicas::Replicas;
use crate::common::{Group, Instance, Object, Pass};
use crate::error::{is_already_exists, is_conflict, is_not_found};
use crate::updater::{
    Action, Blocked, Change, ChangeKind, Expected, GroupView, InstanceView, Plan, plan, random_suffix,
};

/// Instances created in one pass at most: a large scale-out (or a typo such as
/// `replicas: 1000`) is carried out over several passes, each of which writes the
/// group's status, so progress and unschedulable pods show while it happens.
const CREATES_PER_PASS: usize = 10;

pub fn updater<S: GroupState>() -> Node<S> {
    task("updater", |s: &mut S| Box::pin(run(s)))
}

async fn run<S: GroupState>(s: &mut S) -> Outcome {
    let Some(revision) = s.group().update_revision.clone() else {
        return Outcome::wait("no revision yet");
    };
    let Some(group) = s.pass().object.clone() else {
        return Outcome::complete("no group");
    };
    let Some(uid) = group.uid() else {
        return Outcome::wait("the group has no UID yet");
    };
    let ctx = s.pass().ctx.clone();
    let listed: Vec<(String, String)> =
        s.group().instances.iter().map(|i| (i.name_any(), i.resource_version().unwrap_or_default())).collect();
    let pending = ctx.expectations.pending(&uid, &listed);
    let mut instances: Vec<InstanceView> = s.group().instances.iter().map(instance_view).collect();
    for change in &pending.changed {
        if let Some(view) = instances.iter_mut().find(|v| v.name == change.name) {
            change.apply(view);
        }
    }
    let topologies = group.topologies();
    let name = s.pass().name.clone();
    let view = GroupView {
        group: &name,
        desired: group.replicas(),
        revision: &revision,
        instances: &instances,
        expected: &pending.created,
        topologies: &topologies,
        max_unavailable: group.max_unavailable(),
        max_surge: group.max_surge(),
        removal: group.removal(),
        scale_in_blocked: s.group().scale_in_blocked.clone(),
    };
    let plan = plan(&view, &mut random_suffix);
    s.group_mut().planned = Some(Planned { scale_in: plan.scale_in.clone(), blocked: plan.blocked.clone() });
    if let Some(blocked) = &plan.blocked {
        announce(s.pass(), blocked).await;
    }
    let mut executor = Executor { uid, done: Vec::new(), held: Vec::new(), updates: Vec::new(), creates_left: 0 };
    if let Err(outcome) = executor.execute(s, &group, &plan).await {
        return outcome;
    }
    executor.outcome(s, &plan)
}

/// A Warning Event the first time a block is reported (the status as read does not show
/// it with this reason yet).
async fn announce<G: Group>(pass: &Pass<G>, blocked: &Blocked) {
    let shown = pass
        .object
        .as_ref()
        .and_then(Object::status)
        .and_then(|status| find_condition(G::conditions(status), types::SCALE_IN_BLOCKED))
        .is_some_and(|c| c.status == "True" && c.reason == blocked.reason);
    if !shown {
        pass.warning(blocked.reason, "ScaleIn", blocked.message.clone()).await;
    }
}

struct Executor {
    uid: String,
    /// What was written, for the outcome's message.
    done: Vec<String>,
    /// What was planned and not done this pass, and why.
    held: Vec<String>,
    updates: Vec<String>,
    creates_left: usize,
}

impl Executor {
    /// Carries the plan out; `Err` with the outcome that ends the pass early.
    async fn execute<S: GroupState>(&mut self, s: &mut S, group: &S::G, plan: &Plan) -> Result<(), Outcome> {
        let ctx = s.pass().ctx.clone();
        let api: Api<<S::G as Group>::Instance> = Api::namespaced(ctx.client.clone(), &s.pass().namespace);
        let component = S::G::COMPONENT;
        let unschedulable = Replicas::count(group.replicas(), &s.group().instances).unschedulable;
        let mut creates = 0;
        let mut to_create = Vec::new();
        for action in &plan.actions {
            // Consecutive creates go together; whatever the plan puts after them waits
            // for them, as it would one by one.
            if !matches!(action, Action::Create { .. }) && !to_create.is_empty() {
                self.create(s, group, &api, std::mem::take(&mut to_create)).await?;
            }
            match action {
                Action::Create { .. } | Action::Update { .. } if s.group().rollout_held.is_some() => {
                    let why = s.group().rollout_held.clone().unwrap_or_default();
                    self.hold(why);
                }
                Action::Create { .. } if unschedulable > 0 => self.hold(format!(
                    "{unschedulable} instances cannot be scheduled: no more are created until they can (add \
                     capacity, or lower replicas)"
                )),
                Action::Create { .. } if creates == CREATES_PER_PASS => self.creates_left += 1,
                Action::Create { name, topology, revision, .. } => {
                    creates += 1;
                    to_create.push(Expected {
                        name: name.clone(),
                        topology: topology.clone(),
                        revision: revision.clone(),
                    });
                }
                Action::Update { name, revision } => {
                    let Some(instance) = s.group().instances.iter().find(|i| i.name_any() == *name).cloned() else {
                        continue;
                    };
                    let from_version = instance.resource_version().unwrap_or_default();
                    let updated = match updated_instance(group, &instance, revision) {
                        Ok(updated) => updated,
                        Err(error) => return Err(Outcome::fail(error)),
                    };
                    if !settled(name, api.replace(name, &post_params(), &updated).await.map(drop))? {
                        continue;
                    }
                    let (from, to) = (instance.version().to_string(), updated.version().to_string());
                    let versions = if from == to { String::new() } else { format!(" ({from} to {to})") };
                    let note = format!("updated {component} instance {name} to revision {revision}{versions}");
                    s.pass().event("UpdatedInstance", "Update", note).await;
                    self.updates.push(name.clone());
                    let kind = ChangeKind::Update { revision: revision.clone() };
                    ctx.expectations.changed(&self.uid, Change { name: name.clone(), from_version, kind });
                }
                Action::SetOffline { name }
                | Action::CancelOffline { name }
                | Action::Delete { name }
                | Action::RemoveMember { name } => {
                    let Some(instance) = s.group().instances.iter().find(|i| i.name_any() == *name).cloned() else {
                        continue;
                    };
                    let from_version = instance.resource_version().unwrap_or_default();
                    let (kind, written, reason, note, done) = match action {
                        Action::SetOffline { .. } => {
                            let at = ctx.now();
                            let patch = offline_patch(&from_version, true, Some(at.to_string()));
                            let (reason, note) = if instance.annotations().contains_key(names::ANNOTATION_FAILOVER) {
                                (
                                    "FailoverOffline",
                                    format!(
                                        "{component} instance {name} is Down and replaced: spec.offline set, PD \
                                         rebuilds its replicas on the stores that serve"
                                    ),
                                )
                            } else {
                                ("ScalingIn", format!("{component} instance {name} chosen to leave: spec.offline set"))
                            };
                            (
                                ChangeKind::SetOffline { at },
                                api.patch(name, &patch_params(), &patch).await.map(drop),
                                reason,
                                note,
                                format!("set {name} offline"),
                            )
                        }
                        Action::CancelOffline { .. } => {
                            let patch = offline_patch(&from_version, false, None);
                            (
                                ChangeKind::CancelOffline,
                                api.patch(name, &patch_params(), &patch).await.map(drop),
                                "OfflineCanceled",
                                format!(
                                    "{component} instance {name} stays: its offline is cancelled (more replicas wanted)"
                                ),
                                format!("cancelled the offline of {name}"),
                            )
                        }
                        _ => {
                            let preconditions =
                                Preconditions { uid: instance.uid(), resource_version: Some(from_version.clone()) };
                            let params = DeleteParams { preconditions: Some(preconditions), ..DeleteParams::default() };
                            let deleted = api.delete(name, &params).await.map(drop);
                            let (reason, note, done) = match action {
                                Action::RemoveMember { .. } => (
                                    "RemovingMember",
                                    format!(
                                        "{component} instance {name} chosen to leave: its member leaves PD before its \
                                         Pod and volumes go"
                                    ),
                                    format!("removing member {name}"),
                                ),
                                _ => (
                                    "DeletedInstance",
                                    format!("deleted {component} instance {name}: it has left PD"),
                                    format!("deleted {name}"),
                                ),
                            };
                            (ChangeKind::Delete, deleted, reason, note, done)
                        }
                    };
                    if !settled(name, written)? {
                        continue;
                    }
                    self.done.push(done);
                    ctx.expectations.changed(&self.uid, Change { name: name.clone(), from_version, kind });
                    s.pass().event(reason, "ScaleIn", note).await;
                }
            }
        }
        self.create(s, group, &api, to_create).await
    }

    /// Creates the planned instances at once (they are independent objects, so a
    /// scale-out of ten costs one round trip, not ten). Every instance created is
    /// expected and announced, even when another create failed; the first failure then
    /// ends the pass: Retry when a name is taken, Fail otherwise.
    async fn create<S: GroupState>(
        &mut self,
        s: &mut S,
        group: &S::G,
        api: &Api<<S::G as Group>::Instance>,
        planned: Vec<Expected>,
    ) -> Result<(), Outcome> {
        let ctx = s.pass().ctx.clone();
        let component = S::G::COMPONENT;
        let params = &post_params();
        let written = futures::future::join_all(planned.iter().map(|e| {
            let instance = new_instance(group, &e.name, e.topology.clone(), &e.revision);
            async move { api.create(params, &instance).await.map(drop) }
        }))
        .await;
        let mut first_failure = None;
        for (expected, written) in planned.into_iter().zip(written) {
            let name = expected.name.clone();
            match written {
                Ok(()) => {
                    ctx.expectations.created(&self.uid, expected);
                    s.pass().event("CreatedInstance", "Create", format!("created {component} instance {name}")).await;
                    s.group_mut().created.push(name);
                }
                Err(error) if is_already_exists(&error) => {
                    first_failure.get_or_insert_with(|| {
                        Outcome::retry(
                            Duration::from_secs(1),
                            format!("instance name {name} is taken; choosing another"),
                        )
                    });
                }
                Err(error) => {
                    first_failure.get_or_insert_with(|| Outcome::fail(error));
                }
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    fn hold(&mut self, why: String) {
        if !self.held.contains(&why) {
            self.held.push(why);
        }
    }

    fn outcome<S: GroupState>(self, s: &S, plan: &Plan) -> Outcome {
        let mut parts = Vec::new();
        let created = &s.group().created;
        if self.creates_left > 0 {
            parts.push(format!(
                "created {} of {} missing instances; the rest in the next passes",
                created.len(),
                created.len() + self.creates_left
            ));
        } else if !created.is_empty() {
            parts.push(format!("created {}", created.join(", ")));
        }
        parts.extend(self.done);
        if !self.updates.is_empty() {
            parts.push(format!("updated {}", self.updates.join(", ")));
        }
        if self.creates_left > 0 {
            return Outcome::retry(Duration::from_secs(1), parts.join("; "));
        }
        parts.extend(self.held.iter().cloned());
        let mut waiting = !self.held.is_empty();
        if let Some(blocked) = &plan.blocked {
            parts.push(format!("scale-in blocked: {}", blocked.message));
            waiting = true;
        } else if let Some(scale_in) = plan.scale_in.as_ref().filter(|s| !s.leaving.is_empty()) {
            parts.push(scale_in.message());
            waiting = true;
        }
        if let Some(why) = &plan.waiting {
            parts.push(why.clone());
            waiting = true;
        }
        match (parts.is_empty(), waiting) {
            (true, _) => Outcome::complete("nothing to do"),
            (false, true) => Outcome::wait(parts.join("; ")),
            (false, false) => Outcome::complete(parts.join("; ")),
        }
    }
}

/// How a write to instance `name` ended: `Ok(true)` written, `Ok(false)` the instance
/// is gone (nothing to do), `Err` with the outcome ending the pass: Retry when it
/// changed since it was read (409), Fail otherwise.
fn settled(name: &str, written: Result<(), kube::Error>) -> Result<bool, Outcome> {
    match written {
        Ok(()) => Ok(true),
        Err(error) if is_not_found(&error) => Ok(false),
        Err(error) if is_conflict(&error) => {
            Err(Outcome::retry(Duration::from_secs(1), format!("{name} changed since it was read; planning again")))
        }
        Err(error) => Err(Outcome::fail(error)),
    }
}

/// `instance` brought to the group's template at `revision`: the template's spec with
/// the instance's own name, topology and offline; the template's labels and
/// annotations added to its own, and the revision label.
fn updated_instance<G: Group>(group: &G, instance: &G::Instance, revision: &str) -> serde_json::Result<G::Instance> {
    let name = instance.name_any();
    let fresh = new_instance(group, &name, instance.topology().cloned(), revision);
    let mut spec = serde_json::to_value(&fresh)?.get("spec").cloned().unwrap_or_default();
    if let Some(fields) = spec.as_object_mut() {
        fields.insert("offline".into(), json!(instance.offline()));
    }
    let mut value = serde_json::to_value(instance)?;
    value["spec"] = spec;
    let mut updated: G::Instance = serde_json::from_value(value)?;
    let labels = updated.labels_mut();
    labels.extend(fresh.labels().iter().map(|(k, v)| (k.clone(), v.clone())));
    let template_annotations = group.template_meta().map(|t| t.annotations.clone()).unwrap_or_default();
    updated.annotations_mut().extend(template_annotations);
    Ok(updated)
}

/// `spec.offline` and the time of the choice (removed with `None`), as of the
/// resourceVersion read.
fn offline_patch(resource_version: &str, offline: bool, chosen_at: Option<String>) -> Patch<serde_json::Value> {
    Patch::Merge(json!({
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": { ANNOTATION_OFFLINE_CHOSEN_AT: chosen_at },
        },
        "spec": { "offline": offline },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, pd_group_pass, sample_pd, sample_pd_group, sample_tikv, sample_tikv_group};
    use crate::tikvgroup::state::TikvGroupState;
    use tikv_operator_api::condition::{DesiredCondition, reasons, types};
    use tikv_operator_api::names;
    use tikv_operator_api::{PD, PDGroup, TiKV, TiKVStatus};
    use tikv_operator_task::{OutcomeKind, Runner};

    fn zone_of(pd: &PD) -> String {
        pd.spec.topology.as_ref().unwrap()["topology.kubernetes.io/zone"].clone()
    }

    #[tokio::test]
    async fn the_updater_creates_exactly_the_missing_instances_and_no_duplicate_on_a_stale_list() {
        let env = TestEnv::start().await;
        // The owner must exist, or kube-sim's garbage collector takes the instances.
        let group = env.create(sample_pd_group("pd", 3)).await;
        let a = env.create(sample_pd("pd-a", "pd")).await;
        let runner = Runner::new("t", [updater()]);
        let stale = |group: PDGroup| {
            let mut s = pd_group_pass(&env, group, None);
            s.group.instances = vec![a.clone()];
            s.group.instances_loaded = true;
            s.group.update_revision = Some("rev-2".into());
            s
        };

        let mut s = stale(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(s.group.created.len(), 2, "{:?}", s.group.created);
        // pd-a is at the old revision and not Ready: updating it takes nothing down.
        assert_eq!(
            report.entry("updater").unwrap().message(),
            format!("created {}; updated pd-a", s.group.created.join(", "))
        );
        assert_eq!(s.group.planned, Some(Default::default()), "no scale-in, nothing blocked");
        assert_eq!(
            env.write_log(),
            ["create core.tikv.org/pds/", "create core.tikv.org/pds/", "update core.tikv.org/pds/pd-a"]
        );
        let mut created = s.group.created.clone();
        created.sort();
        let mut expected_names = vec!["pd-a".to_string()];
        expected_names.extend(created.iter().cloned());
        expected_names.sort();
        assert_eq!(env.names::<PD>().await, expected_names);
        for name in &created {
            assert!(name.starts_with("pd-") && name.len() == 3 + names::INSTANCE_SUFFIX_LEN, "{name}");
            let pd: PD = env.get(name).await;
            assert_eq!(pd.labels()[names::LABEL_INSTANCE_REVISION_HASH], "rev-2");
            assert_eq!(pd.labels()[names::LABEL_INSTANCE], *name);
            assert_eq!(pd.labels()[names::LABEL_GROUP], "pd");
            assert_eq!(pd.owner_references().len(), 1);
            assert_eq!(pd.owner_references()[0].uid, group.uid().unwrap());
            assert_eq!(pd.finalizers(), [names::FINALIZER], "born with its finalizer");
        }
        // pd-a is in zone-a: the new ones fill zone-b and zone-c.
        let mut zones: Vec<String> = env.list::<PD>().await.iter().map(zone_of).collect();
        zones.sort();
        assert_eq!(zones, ["zone-a", "zone-b", "zone-c"]);

        // A second pass whose list still shows only pd-a, unchanged: the expectations
        // count the two created and pd-a's update, so nothing is written again.
        let mut s = stale(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "nothing to do");
        assert!(s.group.created.is_empty());
        assert_eq!(env.writes(), 3, "{:?}", env.write_log());
        assert_eq!(env.list::<PD>().await.len(), 3);
    }

    #[tokio::test]
    async fn a_large_scale_out_is_created_a_batch_per_pass() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 25)).await;
        let runner = Runner::new("t", [updater()]);
        let pass = |group: PDGroup| {
            let mut s = pd_group_pass(&env, group, None);
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
    async fn a_create_refused_among_several_keeps_the_others_and_the_next_pass_makes_only_it() {
        use kube_sim::{FaultAction, FaultRule, Verb};
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 3)).await;
        let runner = Runner::new("t", [updater()]);
        let pass = |group: PDGroup| {
            let mut s = pd_group_pass(&env, group, None);
            s.group.instances_loaded = true;
            s.group.update_revision = Some("rev-1".into());
            s
        };
        let rule = FaultRule::new(FaultAction::InternalError).verb(Verb::Create).resource("pds").times(1);
        env.sim.faults().inject(rule);
        let mut s = pass(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Fail, "{report}");
        assert_eq!(s.group.created.len(), 2, "the other two were created: {:?}", s.group.created);
        assert_eq!(env.names::<PD>().await.len(), 2);
        let announced: Vec<String> = env.events().await.into_iter().map(|(_, reason, _)| reason).collect();
        assert_eq!(announced, ["CreatedInstance", "CreatedInstance"]);

        // The list is still empty: the two created are expected, only the third is made.
        let mut s = pass(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(s.group.created.len(), 1, "{:?}", s.group.created);
        assert_eq!(env.names::<PD>().await.len(), 3);
        let creates = env.write_log().iter().filter(|w| w.starts_with("create core.tikv.org/pds")).count();
        assert_eq!(creates, 4, "three at once (one refused), then one: {:?}", env.write_log());
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
        let mut s = pd_group_pass(&env, group, None);
        s.group.instances = vec![stuck];
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-1".into());
        let report = env.run(&Runner::new("t", [updater()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert!(report.entry("updater").unwrap().message().starts_with("1 instances cannot be scheduled"), "{report}");
        assert_eq!(env.writes(), 0, "{:?}", env.write_log());
    }

    #[tokio::test]
    async fn the_updater_waits_without_a_revision_then_deletes_one_pd_member_or_reports_the_block_once() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 1)).await;
        let runner = Runner::new("t", [updater()]);
        let mut s = pd_group_pass(&env, group.clone(), None);
        s.group.instances_loaded = true;
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "no revision yet");

        // The leader not Ready: the other may not leave (and the leader is not chosen).
        let (a, b) = (env.create(sample_pd("pd-a", "pd")).await, env.create(sample_pd("pd-b", "pd")).await);
        let mut s = pd_group_pass(&env, group.clone(), None);
        let mut leading = b.clone();
        leading.status.get_or_insert_default().is_leader = true;
        s.group.instances = vec![ready(a.clone()), leading];
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-1".into());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        let message = "pd-a would leave PD next, but every other member must be healthy first: pd-b not ready";
        let said = report.entry("updater").unwrap().message();
        assert!(said.starts_with(&format!("scale-in blocked: {message}")), "{said}");
        let blocked = s.group.planned.as_ref().unwrap().blocked.clone().unwrap();
        assert_eq!((blocked.reason, blocked.message.as_str()), (reasons::MEMBER_REMOVAL_BLOCKED, message));
        assert_eq!(env.write_log(), Vec::<String>::new());
        assert_eq!(env.events().await, [("Warning".into(), reasons::MEMBER_REMOVAL_BLOCKED.into(), message.into())]);

        // Both Ready: one member is deleted; its controller takes it out of PD.
        let mut s = pd_group_pass(&env, group, None);
        s.group.instances = vec![ready(a), ready(b)];
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-1".into());
        env.sim.requests().reset();
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(
            report.entry("updater").unwrap().message(),
            "removing member pd-a; scaling in from 2 to 1: 1 of 1 leaving (pd-a)"
        );
        assert_eq!(env.write_log(), ["delete core.tikv.org/pds/pd-a"]);
        let events = env.events().await;
        assert_eq!(events.last().map(|e| e.1.as_str()), Some("RemovingMember"));
    }

    // ---- TiKV: scale-in, cancellation, deletion

    /// Ready and running at its generation.
    fn ready<I: crate::common::Instance>(mut instance: I) -> I {
        let generation = instance.meta().generation;
        let mut status = I::Status::default();
        for type_ in [types::READY, types::RUNNING] {
            tikv_operator_api::condition::set_condition(
                I::conditions_mut(&mut status),
                DesiredCondition::new(type_, true, "Test", "").observed(generation),
                crate::testing::t0(),
            );
        }
        instance.set_status(status);
        instance
    }

    fn offlined(mut tikv: TiKV) -> TiKV {
        tikv.spec.offline = true;
        let mut status = TiKVStatus::default();
        tikv_operator_api::condition::set_condition(
            &mut status.common.conditions,
            DesiredCondition::new(types::OFFLINED, true, reasons::OFFLINE_COMPLETED, "store 5 is removed from PD"),
            crate::testing::t0(),
        );
        tikv.status = Some(status);
        tikv
    }

    fn in_zone(name: &str, zone: &str) -> TiKV {
        let mut tikv = sample_tikv(name, "tikv");
        tikv.spec.topology = Some(crate::testing::zone(zone));
        tikv
    }

    /// Creates the group and the instances (as given, spec and annotations) and returns
    /// a pass over them as read, each given status (not written: the pass reads it).
    async fn tikv_pass(env: &TestEnv, replicas: i32, instances: Vec<TiKV>) -> TikvGroupState {
        let group = env.create(sample_tikv_group("tikv", replicas)).await;
        let mut read = Vec::new();
        for instance in instances {
            let status = instance.status.clone();
            let mut created = env.create(instance).await;
            created.status = status;
            read.push(created);
        }
        env.sim.requests().reset();
        let mut s = TikvGroupState::new(env.ctx.clone(), "default", "tikv");
        s.pass = s.pass.with_object(group);
        s.group.instances = read;
        s.group.instances_loaded = true;
        s.group.update_revision = Some("rev-1".into());
        s
    }

    fn three_zones() -> Vec<TiKV> {
        vec![
            ready(in_zone("tikv-a", "zone-a")),
            ready(in_zone("tikv-b", "zone-b")),
            ready(in_zone("tikv-c", "zone-c")),
            ready(in_zone("tikv-d", "zone-a")),
        ]
    }

    #[tokio::test]
    async fn a_failed_over_store_is_set_offline_once_its_replacement_serves_and_the_event_says_why() {
        let env = TestEnv::start().await;
        let mut down = in_zone("tikv-d", "zone-a");
        down.annotations_mut().insert(names::ANNOTATION_FAILOVER.into(), "2027-01-15T07:00:00Z".into());
        let instances = vec![
            ready(in_zone("tikv-a", "zone-a")),
            ready(in_zone("tikv-b", "zone-b")),
            ready(in_zone("tikv-c", "zone-c")),
            down,
        ];
        let mut s = tikv_pass(&env, 3, instances).await;
        let report = env.run(&Runner::new("t", [updater()]), "k", &mut s).await;
        assert_eq!(env.write_log(), ["patch core.tikv.org/tikvs/tikv-d"], "{report}");
        assert!(env.get::<TiKV>("tikv-d").await.spec.offline);
        let events = env.events().await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, "FailoverOffline");
        assert!(events[0].2.starts_with("tikv instance tikv-d is Down and replaced: spec.offline set"), "{events:?}");
    }

    #[tokio::test]
    async fn a_tikv_scale_in_sets_one_store_offline_once_even_on_a_stale_list() {
        let env = TestEnv::start().await;
        let runner = Runner::new("t", [updater()]);
        let mut s = tikv_pass(&env, 3, three_zones()).await;
        let stale = s.group.instances.clone();
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(
            report.entry("updater").unwrap().message(),
            "set tikv-a offline; scaling in from 4 to 3: 1 of 1 leaving (tikv-a)"
        );
        assert_eq!(env.write_log(), ["patch core.tikv.org/tikvs/tikv-a"]);
        let chosen: TiKV = env.get("tikv-a").await;
        assert!(chosen.spec.offline);
        assert_eq!(chosen.annotations()[names::ANNOTATION_OFFLINE_CHOSEN_AT], "2027-01-15T08:00:00Z");
        assert_eq!(
            env.events().await,
            [("Normal".into(), "ScalingIn".into(), "tikv instance tikv-a chosen to leave: spec.offline set".into())]
        );
        let planned = s.group.planned.clone().unwrap();
        assert_eq!(planned.scale_in.unwrap().leaving, ["tikv-a"]);

        // The next pass still reads the list from before the patch: nothing more.
        env.sim.requests().reset();
        let mut again = tikv_pass_over(&env, &s, stale);
        let report = env.run(&runner, "k", &mut again).await;
        assert_eq!(report.entry("updater").unwrap().message(), "scaling in from 4 to 3: 1 of 1 leaving (tikv-a)");
        assert_eq!((env.writes(), env.event_writes().await), (0, 0), "{:?}", env.write_log());
    }

    /// Another pass of the same group over `instances` as read.
    fn tikv_pass_over(env: &TestEnv, s: &TikvGroupState, instances: Vec<TiKV>) -> TikvGroupState {
        let mut next = TikvGroupState::new(env.ctx.clone(), "default", "tikv");
        next.pass = next.pass.with_object(s.pass.object.clone().unwrap());
        next.group.instances = instances;
        next.group.instances_loaded = true;
        next.group.update_revision = Some("rev-1".into());
        next
    }

    #[tokio::test]
    async fn an_offlined_instance_is_deleted_with_preconditions() {
        let env = TestEnv::start().await;
        let mut instances = three_zones();
        instances[0] = offlined(in_zone("tikv-a", "zone-a"));
        let mut s = tikv_pass(&env, 3, instances).await;
        let report = env.run(&Runner::new("t", [updater()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "deleted tikv-a");
        assert_eq!(env.write_log(), ["delete core.tikv.org/tikvs/tikv-a"]);
        assert_eq!(env.names::<TiKV>().await, ["tikv-b", "tikv-c", "tikv-d"]);
        assert_eq!(
            env.events().await,
            [("Normal".into(), "DeletedInstance".into(), "deleted tikv instance tikv-a: it has left PD".into())]
        );
        assert_eq!(s.group.planned.unwrap().scale_in, None);
    }

    #[tokio::test]
    async fn raising_replicas_cancels_the_offline_and_a_changed_instance_is_not_written_over() {
        let env = TestEnv::start().await;
        let mut instances = three_zones();
        instances[0].spec.offline = true;
        instances[0]
            .annotations_mut()
            .insert(names::ANNOTATION_OFFLINE_CHOSEN_AT.into(), "2027-01-15T07:00:00Z".into());
        let mut s = tikv_pass(&env, 4, instances).await;
        let as_read = s.group.instances.clone();
        let runner = Runner::new("t", [updater()]);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "cancelled the offline of tikv-a");
        assert_eq!(env.write_log(), ["patch core.tikv.org/tikvs/tikv-a"], "no instance created");
        let kept: TiKV = env.get("tikv-a").await;
        assert!(!kept.spec.offline);
        assert!(!kept.annotations().contains_key(names::ANNOTATION_OFFLINE_CHOSEN_AT));
        assert_eq!(env.events().await[0].1, "OfflineCanceled");

        // After a restart (expectations are in memory) over a list from before the
        // cancel: the write carries the old resourceVersion, is refused, and the pass
        // plans again.
        env.ctx.expectations.pending(&s.pass.uid().unwrap(), &[]);
        let mut stale = tikv_pass_over(&env, &s, as_read);
        let report = env.run(&runner, "k", &mut stale).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry, "{report}");
        assert_eq!(report.entry("updater").unwrap().message(), "tikv-a changed since it was read; planning again");
        assert_eq!(env.get::<TiKV>("tikv-a").await.resource_version(), kept.resource_version());
    }

    #[tokio::test]
    async fn an_update_brings_one_instance_to_the_template_once_even_on_a_stale_list() {
        let env = TestEnv::start().await;
        let runner = Runner::new("t", [updater()]);
        let mut s = tikv_pass(&env, 4, three_zones()).await;
        let mut group = s.pass.object.clone().unwrap();
        group.spec.template.spec.version = "v8.5.1".into();
        group.spec.template.metadata =
            Some(tikv_operator_api::ObjectMeta { labels: [("team".into(), "kv".into())].into(), ..Default::default() });
        s.pass.object = Some(group.clone());
        s.group.update_revision = Some("rev-2".into());
        let stale = s.group.instances.clone();
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(
            report.entry("updater").unwrap().message(),
            "updated tikv-a; tikv-b would be updated, but 1 instances are unavailable and 1 may be at once \
             (maxUnavailable)"
        );
        assert_eq!(env.write_log(), ["update core.tikv.org/tikvs/tikv-a"]);
        let updated: TiKV = env.get("tikv-a").await;
        assert_eq!(updated.spec.template.version, "v8.5.1");
        assert_eq!(updated.spec.topology, stale[0].spec.topology, "its place is kept");
        assert_eq!(updated.labels().get(names::LABEL_INSTANCE_REVISION_HASH).map(String::as_str), Some("rev-2"));
        assert_eq!(updated.labels().get("team").map(String::as_str), Some("kv"));
        let events = env.events().await;
        assert!(
            events.iter().any(|(_, _, m)| m == "updated tikv instance tikv-a to revision rev-2 (v8.5.0 to v8.5.1)")
        );

        // The list has not caught up: tikv-a still looks old and Ready. Nothing more.
        env.sim.requests().reset();
        let mut again = TikvGroupState::new(env.ctx.clone(), "default", "tikv");
        again.pass = again.pass.with_object(group);
        again.group.instances = stale;
        again.group.instances_loaded = true;
        again.group.update_revision = Some("rev-2".into());
        let report = env.run(&runner, "k", &mut again).await;
        assert_eq!(env.writes(), 0, "{report}");
    }

    #[tokio::test]
    async fn a_held_rollout_neither_updates_nor_creates() {
        let env = TestEnv::start().await;
        let mut s = tikv_pass(&env, 5, three_zones()).await;
        s.group.update_revision = Some("rev-2".into());
        s.group.rollout_held = Some("TiKV moves to v8.5.1 once every PD group runs its new version".into());
        let report = env.run(&Runner::new("t", [updater()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert!(
            report.entry("updater").unwrap().message().contains("TiKV moves to v8.5.1 once every PD group"),
            "{report}"
        );
        assert_eq!(env.writes(), 0, "{:?}", env.write_log());
    }
}
