//! The scenarios: every operation, and overlapping pairs of them, each as the cluster
//! it starts from, the user's steps, and the spec it must reach.

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

/// The version every example starts on, and the one upgrades go to.
pub const FROM_VERSION: &str = "v8.5.0";
pub const TO_VERSION: &str = "v8.5.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    ScaleOut,
    ScaleIn,
    CancelledScaleIn,
    UpgradePd,
    UpgradeTikv,
    ConfigRestart,
    ConfigHotReload,
    SuspendResume,
    PdScaleInLeader,
    VolumeGrow,
    Failover,
    UpgradeDuringScaleIn,
    ScaleInDuringFailover,
    SuspendDuringOffline,
}

impl Scenario {
    pub const ALL: [Scenario; 14] = [
        Scenario::ScaleOut,
        Scenario::ScaleIn,
        Scenario::CancelledScaleIn,
        Scenario::UpgradePd,
        Scenario::UpgradeTikv,
        Scenario::ConfigRestart,
        Scenario::ConfigHotReload,
        Scenario::SuspendResume,
        Scenario::PdScaleInLeader,
        Scenario::VolumeGrow,
        Scenario::Failover,
        Scenario::UpgradeDuringScaleIn,
        Scenario::ScaleInDuringFailover,
        Scenario::SuspendDuringOffline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::ScaleOut => "scale-out",
            Scenario::ScaleIn => "scale-in",
            Scenario::CancelledScaleIn => "cancelled-scale-in",
            Scenario::UpgradePd => "upgrade-pd",
            Scenario::UpgradeTikv => "upgrade-tikv",
            Scenario::ConfigRestart => "config-restart",
            Scenario::ConfigHotReload => "config-hot-reload",
            Scenario::SuspendResume => "suspend-resume",
            Scenario::PdScaleInLeader => "pd-scale-in-leader",
            Scenario::VolumeGrow => "volume-grow",
            Scenario::Failover => "failover",
            Scenario::UpgradeDuringScaleIn => "upgrade-during-scale-in",
            Scenario::ScaleInDuringFailover => "scale-in-during-failover",
            Scenario::SuspendDuringOffline => "suspend-during-offline",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scenario a seed picks: the seeds in turn go through every one.
    pub fn for_seed(seed: u64) -> Scenario {
        Scenario::ALL[(seed % Scenario::ALL.len() as u64) as usize]
    }

    /// Whether two operations overlap in this scenario.
    pub fn is_pair(self) -> bool {
        matches!(
            self,
            Scenario::UpgradeDuringScaleIn | Scenario::ScaleInDuringFailover | Scenario::SuspendDuringOffline
        )
    }

    /// What the scenario starts from, does and must reach.
    pub fn plan(self) -> Plan {
        let mut plan = Plan {
            start: Start { pd: 3, kv: 3, failover: false },
            steps: Vec::new(),
            target: Target { pd: 3, kv: 3, pd_version: FROM_VERSION, kv_version: FROM_VERSION, kv_storage: "100Gi" },
            bound: Duration::from_secs(900),
        };
        let kv_replicas =
            |n: u64| Action::Patch { plural: "tikvgroups", name: "tikv", patch: json!({"spec": {"replicas": n}}) };
        let kv_template = |spec: Value| Action::Patch {
            plural: "tikvgroups",
            name: "tikv",
            patch: json!({"spec": {"template": {"spec": spec}}}),
        };
        let suspend = |on: bool| Action::Patch {
            plural: "clusters",
            name: "basic",
            patch: json!({"spec": {"suspendAction": {"suspendCompute": on}}}),
        };
        let now = |action| Step { when: Trigger::Now, action };
        let when = |cond, action| Step { when: Trigger::When(cond), action };
        match self {
            Scenario::ScaleOut => {
                plan.steps = vec![now(kv_replicas(4))];
                plan.target.kv = 4;
            }
            Scenario::ScaleIn => {
                plan.start.kv = 4;
                plan.steps = vec![now(kv_replicas(3))];
            }
            Scenario::CancelledScaleIn => {
                plan.start.kv = 4;
                plan.steps =
                    vec![now(Action::SlowMoves), now(kv_replicas(3)), when(Cond::OfflineStarted, kv_replicas(4))];
                plan.target.kv = 4;
            }
            Scenario::UpgradePd => {
                plan.steps = vec![now(Action::Patch {
                    plural: "pdgroups",
                    name: "pd",
                    patch: json!({"spec": {"template": {"spec": {"version": TO_VERSION}}}}),
                })];
                plan.target.pd_version = TO_VERSION;
            }
            Scenario::UpgradeTikv => {
                plan.steps = vec![now(kv_template(json!({"version": TO_VERSION})))];
                plan.target.kv_version = TO_VERSION;
            }
            Scenario::ConfigRestart => {
                plan.steps = vec![now(kv_template(json!({"config": "[storage]\nreserve-space = \"2GB\"\n"})))];
            }
            Scenario::ConfigHotReload => {
                let spec = json!({
                    "updateStrategy": {"config": "HotReload"},
                    "config": "[raftstore]\nraft-log-gc-threshold = 100\n",
                });
                plan.steps = vec![now(kv_template(spec))];
            }
            Scenario::SuspendResume => {
                plan.steps = vec![now(suspend(true)), when(Cond::Suspended, suspend(false))];
            }
            Scenario::PdScaleInLeader => {
                // As in an SRE's day: PD refuses member removals for a moment, and the
                // member chosen to leave is made the leader meanwhile.
                plan.start.pd = 4;
                plan.steps = vec![
                    now(Action::RefuseMemberRemovals),
                    now(Action::Patch { plural: "pdgroups", name: "pd", patch: json!({"spec": {"replicas": 3}}) }),
                    when(Cond::MemberRemovalAsked, Action::LeaderToTheLeaving),
                    now(Action::AllowMemberRemovals),
                ];
            }
            Scenario::VolumeGrow => {
                plan.steps = vec![now(kv_template(json!({"volumes": [{"name": "data", "storage": "200Gi"}]})))];
                plan.target.kv_storage = "200Gi";
            }
            Scenario::Failover => {
                plan.start.failover = true;
                plan.steps = vec![now(Action::PowerOffTikvNode)];
            }
            Scenario::UpgradeDuringScaleIn => {
                plan.start.kv = 4;
                plan.steps = vec![
                    now(Action::SlowMoves),
                    now(kv_replicas(3)),
                    when(Cond::OfflineStarted, kv_template(json!({"version": TO_VERSION}))),
                ];
                plan.target.kv_version = TO_VERSION;
            }
            Scenario::ScaleInDuringFailover => {
                plan.start = Start { pd: 3, kv: 4, failover: true };
                plan.steps = vec![now(Action::PowerOffTikvNode), when(Cond::FailoverStarted, kv_replicas(3))];
            }
            Scenario::SuspendDuringOffline => {
                plan.start.kv = 4;
                plan.steps = vec![
                    now(Action::SlowMoves),
                    now(kv_replicas(3)),
                    when(Cond::OfflineStarted, suspend(true)),
                    when(Cond::Suspended, suspend(false)),
                ];
            }
        }
        plan
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The cluster a scenario starts from (`examples/basic` with these replicas).
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub pd: u64,
    pub kv: u64,
    /// TiKV failover on (`afterDown: 1m`).
    pub failover: bool,
}

/// What the cluster must show once converged.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub pd: usize,
    pub kv: usize,
    pub pd_version: &'static str,
    pub kv_version: &'static str,
    /// Every TiKV data PVC's requested size.
    pub kv_storage: &'static str,
}

/// One user step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub when: Trigger,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// Right after the previous step.
    Now,
    /// Once the condition holds (or, if it never does, when the faults heal).
    When(Cond),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cond {
    /// Some TiKV has `spec.offline: true`.
    OfflineStarted,
    /// No TiKV pod is left (the suspension took effect).
    Suspended,
    /// The TiKV group's Failover condition is True.
    FailoverStarted,
    /// A PD instance is marked for removal from PD's membership.
    MemberRemovalAsked,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A user's merge patch of `plural/name`.
    Patch { plural: &'static str, name: &'static str, patch: Value },
    /// Regions move off a store slowly (a big store), so an offline store stays
    /// Offline for a while; fast again when the faults heal.
    SlowMoves,
    /// PD answers member removals with 500 (etcd timing out).
    RefuseMemberRemovals,
    /// PD takes member removals again.
    AllowMemberRemovals,
    /// An SRE makes the PD member chosen to leave PD's leader (pd-ctl).
    LeaderToTheLeaving,
    /// The node of a TiKV holding no PD member (if any) is powered off until the
    /// faults heal.
    PowerOffTikvNode,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Patch { plural, name, patch } => write!(f, "patch {plural}/{name} {patch}"),
            Action::SlowMoves => f.write_str("slow region moves"),
            Action::RefuseMemberRemovals => f.write_str("PD refuses member removals"),
            Action::AllowMemberRemovals => f.write_str("PD takes member removals again"),
            Action::LeaderToTheLeaving => f.write_str("the member chosen to leave made PD's leader"),
            Action::PowerOffTikvNode => f.write_str("power off the node of a TiKV"),
        }
    }
}

/// A scenario's whole plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub start: Start,
    pub steps: Vec<Step>,
    pub target: Target,
    /// Simulated time the cluster has to converge once the faults healed.
    pub bound: Duration,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn consecutive_seeds_cover_every_scenario_and_pair() {
        let n = Scenario::ALL.len() as u64;
        let seen: BTreeSet<Scenario> = (100..100 + n).map(Scenario::for_seed).collect();
        assert_eq!(seen.len(), Scenario::ALL.len());
        assert_eq!(Scenario::ALL.iter().filter(|s| s.is_pair()).count(), 3);
    }

    #[test]
    fn names_round_trip_and_are_distinct() {
        let names: BTreeSet<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Scenario::ALL.len());
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_name("nope"), None);
    }

    #[test]
    fn every_plan_changes_something_and_pairs_overlap_on_a_condition() {
        for s in Scenario::ALL {
            let plan = s.plan();
            assert!(!plan.steps.is_empty(), "{s}");
            if s.is_pair() {
                assert!(plan.steps.iter().any(|st| matches!(st.when, Trigger::When(_))), "{s}");
            }
        }
        assert_eq!(Scenario::CancelledScaleIn.plan().target.kv, 4);
        assert_eq!(Scenario::UpgradeDuringScaleIn.plan().target.kv_version, TO_VERSION);
    }
}
