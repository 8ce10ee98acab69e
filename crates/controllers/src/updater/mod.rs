//! The group updater: one pure function from a group's state to the actions that bring
//! it toward its spec. Groups plan, instances execute: the executor task
//! ([`crate::common::tasks::updater`]) carries the plan out, and the instance
//! controllers do the rest (a TiKV with `spec.offline` leaves PD on its own).
//!
//! A plan, in order:
//! - instances whose store left PD (`Offlined`) are deleted: they cannot serve again;
//! - with fewer instances staying (not offline, not deleting) than wanted, offlines are
//!   cancelled, newest choice first, before anything is created;
//! - with more, the surplus leaves ([`choice`]): a TiKV store is set offline (at most
//!   `scaleInParallelism` leaving at once) and deleted once `Offlined`; a PD instance
//!   is deleted (its controller takes its member out of PD before its Pod and volumes
//!   go), one at a time, never the leader while another can go, and only while every
//!   other member is healthy (else `MemberRemovalBlocked`);
//! - a TiKV instance chosen by failover (its store Down) leaves: a replacement is
//!   created in its place, and once every wanted instance besides it is available it
//!   is set offline (it is never the offline cancelled to make up the count);
//! - outdated instances (another revision than the group's) are updated, the
//!   unavailable ones first, with up to `maxSurge` extra instances created at the new
//!   revision and outdated ones taken out once they are surplus (v2's rules).
//!
//! The budget: an instance is unavailable when it is not Ready, being deleted, or
//! offline; an instance created and not yet Ready is too. An action that takes an
//! available instance down (an update, an offline) is planned only while the group
//! then has at most `maxUnavailable` unavailable instances (for PD clamped to the
//! failures the quorum tolerates, at least 1). Creating an instance, cancelling an
//! offline and deleting an instance that already left take nothing down. An instance
//! that is offline or being deleted is never updated.

mod choice;
mod expectations;
#[cfg(test)]
mod properties;

use std::collections::BTreeSet;

use jiff::Timestamp;
use tikv_operator_api::{Topology, WeightedTopology};

pub use choice::choose_topology;
pub use expectations::{Change, ChangeKind, Expectations, Pending};

/// One instance of the group as the updater sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceView {
    pub name: String,
    pub topology: Option<Topology>,
    pub revision: Option<String>,
    /// Ready at its generation (for `minReadySeconds`).
    pub ready: bool,
    /// Its containers run.
    pub running: bool,
    /// Has a deletionTimestamp: no longer counts toward the replicas.
    pub deleting: bool,
    /// `spec.offline` (TiKV): leaving PD.
    pub offline: bool,
    /// `Offlined` True: PD removed its store; it can never serve again.
    pub offlined: bool,
    /// The `core.tikv.org/priority` annotation: lower goes first.
    pub priority: Option<u64>,
    /// When the group chose it to leave.
    pub offline_chosen_at: Option<Timestamp>,
    /// PD: the member is the leader.
    pub leader: bool,
    /// TiKV: chosen by the group's failover to be replaced (its store is Down). It
    /// leaves — never cancelled to make up the count — and is set offline once the
    /// group has every wanted instance besides it available.
    pub failover: bool,
}

impl InstanceView {
    /// A running, Ready instance at `revision`.
    pub fn healthy(name: &str, topology: Option<Topology>, revision: &str) -> Self {
        Self {
            name: name.into(),
            topology,
            revision: Some(revision.into()),
            ready: true,
            running: true,
            ..Self::default()
        }
    }

    /// Serves as wanted: Ready, not being deleted, not leaving or gone from PD.
    pub fn available(&self) -> bool {
        self.ready && !self.deleting && !self.offline && !self.offlined
    }
}

/// An instance created recently and not yet seen in a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub topology: Option<Topology>,
    pub revision: String,
}

/// How a surplus instance leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// TiKV: `spec.offline` (the store leaves PD), then the instance is deleted once
    /// `Offlined`; at most `parallelism` leaving at once.
    Offline { parallelism: usize },
    /// PD: the instance is deleted and leaves PD's membership on its own; one member at
    /// a time, never the leader while another can go, and only while every other member
    /// is healthy.
    Member,
}

/// Why a removal the plan needs is not started; shown as the group's `ScaleInBlocked`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub reason: &'static str,
    pub message: String,
}

/// What the updater reads.
#[derive(Clone, Debug)]
pub struct GroupView<'a> {
    pub group: &'a str,
    pub desired: i32,
    /// The group's update revision.
    pub revision: &'a str,
    pub instances: &'a [InstanceView],
    pub expected: &'a [Expected],
    pub topologies: &'a [WeightedTopology],
    pub max_unavailable: i32,
    pub max_surge: i32,
    pub removal: Removal,
    /// Set by a check before the updater (a scale-in PD could never finish): no new
    /// offline is started, and this is reported.
    pub scale_in_blocked: Option<Blocked>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `surge`: beyond `replicas`, for an update.
    Create { name: String, topology: Option<Topology>, revision: String, surge: bool },
    /// `spec.offline: false`: the instance stays after all.
    CancelOffline { name: String },
    /// `spec.offline: true`: the instance leaves (TiKV: its store leaves PD).
    SetOffline { name: String },
    /// The instance already left (`Offlined`): its object goes.
    Delete { name: String },
    /// PD: the instance is deleted; its controller removes its member from PD first.
    RemoveMember { name: String },
    /// Bring the instance to the revision (planned only; carried out by rolling updates).
    Update { name: String, revision: String },
}

impl Action {
    pub fn name(&self) -> &str {
        match self {
            Action::Create { name, .. }
            | Action::CancelOffline { name }
            | Action::SetOffline { name }
            | Action::Delete { name }
            | Action::RemoveMember { name }
            | Action::Update { name, .. } => name,
        }
    }
}

/// A scale-in under way: instances that exist (not being deleted) and the ones leaving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleIn {
    pub from: usize,
    pub to: usize,
    pub leaving: Vec<String>,
}

impl ScaleIn {
    /// `"scaling in from 5 to 3: 1 of 2 leaving (kv-a)"`.
    pub fn message(&self) -> String {
        let going = self.from.saturating_sub(self.to);
        let mut message =
            format!("scaling in from {} to {}: {} of {going} leaving", self.from, self.to, self.leaving.len());
        if !self.leaving.is_empty() {
            message.push_str(&format!(" ({})", self.leaving.join(", ")));
        }
        message
    }
}

/// The plan of one pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// More instances exist than are wanted.
    pub scale_in: Option<ScaleIn>,
    /// A removal the plan needs and does not start, and why.
    pub blocked: Option<Blocked>,
    /// Why the plan stops short of the spec for now (the budget, the parallelism).
    pub waiting: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Staying,
    Leaving,
}

/// An instance (or one created and not yet listed) during planning.
struct Slot<'v> {
    name: String,
    /// `None` for an instance not yet listed: no action can take it.
    view: Option<&'v InstanceView>,
    topology: Option<Topology>,
    updated: bool,
    available: bool,
    fate: Fate,
    /// An action of this plan already takes it.
    touched: bool,
}

enum Step {
    Continue,
    Stop,
}

struct Planner<'a, 'v> {
    view: &'v GroupView<'a>,
    slots: Vec<Slot<'v>>,
    /// Unavailable instances of the whole group, those being deleted included.
    unavailable: usize,
    budget: usize,
    taken: BTreeSet<String>,
    plan: Plan,
}

/// How many instances may be unavailable at once: `maxUnavailable`, for PD clamped to
/// the failures a quorum of `members` tolerates, and at least 1 (one or two PD members
/// tolerate none, yet must be changeable).
pub fn budget(max_unavailable: i32, removal: Removal, members: usize) -> usize {
    let wanted = usize::try_from(max_unavailable.max(1)).unwrap_or(1);
    match removal {
        Removal::Offline { .. } => wanted,
        Removal::Member => wanted.min((members.saturating_sub(1) / 2).max(1)),
    }
}

/// Plans the group's next actions. `suffixes` yields candidate name suffixes (random in
/// production); candidates already taken are skipped.
pub fn plan(view: &GroupView<'_>, suffixes: &mut dyn FnMut() -> String) -> Plan {
    let mut planner = Planner::new(view);
    planner.run(suffixes);
    planner.finish()
}

impl<'a, 'v> Planner<'a, 'v> {
    fn new(view: &'v GroupView<'a>) -> Self {
        let mut plan = Plan::default();
        let mut slots = Vec::new();
        for instance in view.instances.iter().filter(|i| !i.deleting) {
            if instance.offlined {
                plan.actions.push(Action::Delete { name: instance.name.clone() });
                continue;
            }
            slots.push(Slot {
                name: instance.name.clone(),
                view: Some(instance),
                topology: instance.topology.clone(),
                updated: instance.revision.as_deref() == Some(view.revision),
                available: instance.available(),
                fate: if instance.offline || instance.failover { Fate::Leaving } else { Fate::Staying },
                touched: false,
            });
        }
        let unseen: Vec<&Expected> =
            view.expected.iter().filter(|e| !view.instances.iter().any(|i| i.name == e.name)).collect();
        for expected in &unseen {
            slots.push(Slot {
                name: expected.name.clone(),
                view: None,
                topology: expected.topology.clone(),
                updated: expected.revision == view.revision,
                available: false,
                fate: Fate::Staying,
                touched: true,
            });
        }
        let unavailable = view.instances.iter().filter(|i| !i.available()).count() + unseen.len();
        let members = view.instances.len() + unseen.len();
        let mut taken: BTreeSet<String> = view.instances.iter().map(|i| i.name.clone()).collect();
        taken.extend(view.expected.iter().map(|e| e.name.clone()));
        Planner { view, slots, unavailable, budget: budget(view.max_unavailable, view.removal, members), taken, plan }
    }

    fn desired(&self) -> usize {
        usize::try_from(self.view.desired).unwrap_or(0)
    }

    fn count(&self, f: impl Fn(&Slot<'_>) -> bool) -> usize {
        self.slots.iter().filter(|s| f(s)).count()
    }

    fn candidates(&self, f: impl Fn(&Slot<'_>) -> bool) -> Vec<choice::Candidate<'v>> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.touched && f(s))
            .filter_map(|(index, s)| {
                s.view.map(|view| choice::Candidate { index, view, updated: s.updated, available: s.available })
            })
            .collect()
    }

    fn run(&mut self, suffixes: &mut dyn FnMut() -> String) {
        self.failover_offline();
        let desired = self.desired();
        let surge_allowed = matches!(self.view.removal, Removal::Offline { .. });
        // Each step acts on an instance no earlier step took, or creates one; this only
        // bounds a mistake.
        let limit = 4 * (self.slots.len() + desired) + 8;
        for _ in 0..limit {
            let staying = self.count(|s| s.fate == Fate::Staying);
            let outdated = self.count(|s| s.fate == Fate::Staying && !s.updated);
            let updated = staying - outdated;
            let surge = if surge_allowed { usize::try_from(self.view.max_surge).unwrap_or(0).min(outdated) } else { 0 };
            let maximum = desired + surge;
            let step = if staying < maximum {
                self.scale_out(staying >= desired, suffixes)
            } else if staying == maximum && outdated == 0 {
                Step::Stop
            } else if staying == maximum && updated < desired {
                self.update()
            } else {
                // More than wanted, or (after a surge) outdated instances now surplus.
                self.scale_in(staying == maximum)
            };
            if let Step::Stop = step {
                return;
            }
        }
    }

    /// A Down store being replaced goes offline once every wanted instance besides it
    /// is available: PD then rebuilds its replicas on them.
    fn failover_offline(&mut self) {
        let desired = self.desired();
        if self.count(|s| s.fate == Fate::Staying && s.available) < desired {
            return;
        }
        for slot in self.slots.iter_mut().filter(|s| s.view.is_some_and(|v| v.failover && !v.offline)) {
            slot.touched = true;
            self.plan.actions.push(Action::SetOffline { name: slot.name.clone() });
        }
    }

    fn scale_out(&mut self, surge: bool, suffixes: &mut dyn FnMut() -> String) -> Step {
        let leaving = self.candidates(|s| s.fate == Fate::Leaving && !s.view.is_some_and(|v| v.failover));
        if let Some(index) = choice::to_cancel(&leaving) {
            let slot = &mut self.slots[index];
            slot.fate = Fate::Staying;
            slot.touched = true;
            self.plan.actions.push(Action::CancelOffline { name: slot.name.clone() });
            return Step::Continue;
        }
        let name = loop {
            let name = format!("{}-{}", self.view.group, suffixes());
            if !self.taken.contains(&name) {
                break name;
            }
        };
        self.taken.insert(name.clone());
        let placed: Vec<Option<Topology>> =
            self.slots.iter().filter(|s| s.fate == Fate::Staying).map(|s| s.topology.clone()).collect();
        let topology = choose_topology(self.view.topologies, &placed);
        self.slots.push(Slot {
            name: name.clone(),
            view: None,
            topology: topology.clone(),
            updated: true,
            available: false,
            fate: Fate::Staying,
            touched: true,
        });
        self.unavailable += 1;
        self.plan.actions.push(Action::Create { name, topology, revision: self.view.revision.to_string(), surge });
        Step::Continue
    }

    /// Whether one more available instance may be taken down.
    fn may_take_down(&self) -> bool {
        self.unavailable < self.budget
    }

    fn over_budget(&mut self, name: &str, what: &str) -> Step {
        self.plan.waiting = Some(format!(
            "{name} would {what}, but {} instances are unavailable and {} may be at once (maxUnavailable)",
            self.unavailable, self.budget
        ));
        Step::Stop
    }

    fn take_down(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.touched = true;
        if slot.available {
            slot.available = false;
            self.unavailable += 1;
        }
    }

    fn update(&mut self) -> Step {
        let outdated = self.candidates(|s| s.fate == Fate::Staying && !s.updated);
        let Some(index) = choice::to_update(&outdated, self.view.removal == Removal::Member) else {
            self.plan.waiting = Some("the outdated instances are not listed yet".into());
            return Step::Stop;
        };
        if self.slots[index].available && !self.may_take_down() {
            let name = self.slots[index].name.clone();
            return self.over_budget(&name, "be updated");
        }
        self.take_down(index);
        let slot = &mut self.slots[index];
        slot.updated = true;
        self.plan.actions.push(Action::Update { name: slot.name.clone(), revision: self.view.revision.to_string() });
        Step::Continue
    }

    fn scale_in(&mut self, only_outdated: bool) -> Step {
        if let Some(blocked) = &self.view.scale_in_blocked {
            self.plan.blocked = Some(blocked.clone());
            return Step::Stop;
        }
        let staying: Vec<&Option<Topology>> =
            self.slots.iter().filter(|s| s.fate == Fate::Staying).map(|s| &s.topology).collect();
        let spread = choice::Spread::new(self.view.topologies, staying.into_iter());
        let candidates = self.candidates(|s| s.fate == Fate::Staying && !(only_outdated && s.updated));
        if only_outdated && !candidates.is_empty() && candidates.iter().all(|c| spread.protects(&c.view.topology)) {
            // After a surge the outdated instances are the surplus; each being the last
            // of its topology, one is updated instead, and an updated one from a
            // crowded topology becomes the surplus.
            return self.update();
        }
        match self.view.removal {
            Removal::Offline { parallelism } => {
                let leaving = self.count(|s| s.fate == Fate::Leaving);
                if leaving >= parallelism.max(1) {
                    self.plan.waiting =
                        Some(format!("{leaving} instances leaving; scaleInParallelism {parallelism} allows no more"));
                    return Step::Stop;
                }
                let Some(index) = choice::to_remove(&candidates, &spread, false) else {
                    self.plan.waiting = Some(if candidates.is_empty() {
                        "the instances to choose from are not listed yet".into()
                    } else {
                        "no instance can leave now without emptying a topology".into()
                    });
                    return Step::Stop;
                };
                if self.slots[index].available && !self.may_take_down() {
                    let name = self.slots[index].name.clone();
                    return self.over_budget(&name, "leave");
                }
                self.take_down(index);
                let slot = &mut self.slots[index];
                slot.fate = Fate::Leaving;
                self.plan.actions.push(Action::SetOffline { name: slot.name.clone() });
                Step::Continue
            }
            Removal::Member => {
                if let Some(gone) = self.view.instances.iter().find(|i| i.deleting) {
                    self.plan.waiting = Some(format!("{} is still leaving PD; one member leaves at a time", gone.name));
                    return Step::Stop;
                }
                let Some(index) = choice::to_remove(&candidates, &spread, true) else {
                    self.plan.waiting = Some(if candidates.is_empty() {
                        "the members to choose from are not listed yet".into()
                    } else {
                        "no member can go now without emptying a topology".into()
                    });
                    return Step::Stop;
                };
                let name = self.slots[index].name.clone();
                let unhealthy: Vec<&str> = self
                    .slots
                    .iter()
                    .filter(|s| s.fate == Fate::Staying && s.name != name && !s.available)
                    .map(|s| s.name.as_str())
                    .collect();
                if !unhealthy.is_empty() {
                    self.plan.blocked = Some(Blocked {
                        reason: tikv_operator_api::condition::reasons::MEMBER_REMOVAL_BLOCKED,
                        message: format!(
                            "{name} would leave PD next, but every other member must be healthy first: {} not ready",
                            unhealthy.join(", ")
                        ),
                    });
                    return Step::Stop;
                }
                if self.slots[index].available && !self.may_take_down() {
                    return self.over_budget(&name, "leave PD");
                }
                self.take_down(index);
                self.slots[index].fate = Fate::Leaving;
                self.plan.actions.push(Action::RemoveMember { name });
                // One member leaves at a time.
                Step::Stop
            }
        }
    }

    fn finish(mut self) -> Plan {
        let remaining = self.slots.len();
        if remaining > self.desired() {
            let leaving = self.slots.iter().filter(|s| s.fate == Fate::Leaving).map(|s| s.name.clone()).collect();
            self.plan.scale_in = Some(ScaleIn { from: remaining, to: self.desired(), leaving });
        }
        self.plan
    }
}

/// A random name suffix: `INSTANCE_SUFFIX_LEN` characters of `[a-z0-9]`.
pub fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..tikv_operator_api::names::INSTANCE_SUFFIX_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests;
