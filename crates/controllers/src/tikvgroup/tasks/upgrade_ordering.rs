//! `upgrade_ordering`: TiKV moves to a new version only after PD has (upgrade policy
//! `Default`). While PD has not, the updater neither updates nor creates instances at
//! the new revision (`rollout_held`).
//!
//! Reads: the cluster's PD groups (watch cache). Writes nothing. Always Complete (the
//! message says whether the rollout waits, and for what).

use kube::Resource;
use tikv_operator_api::cluster::UpgradePolicy;
use tikv_operator_api::condition::{is_true_at, types};
use tikv_operator_api::{PDGroup, TiKVGroup};
use tikv_operator_task::{Node, Outcome, task};

use crate::tikvgroup::state::TikvGroupState;

/// Whether every PD group runs its own template version everywhere (Synced at its
/// generation and the version recorded).
pub fn pd_upgraded(pd_groups: &[PDGroup]) -> bool {
    pd_groups.iter().all(|g| {
        let status = g.status.as_ref();
        status.is_some_and(|s| {
            is_true_at(&s.common.conditions, types::SYNCED, g.meta().generation)
                && s.group.version.as_deref() == Some(g.spec.template.spec.version.as_str())
        })
    })
}

/// Whether the group asks for another version than it runs.
pub fn version_change(group: &TiKVGroup) -> bool {
    group
        .status
        .as_ref()
        .and_then(|s| s.group.version.as_deref())
        .is_some_and(|v| v != group.spec.template.spec.version)
}

pub fn upgrade_ordering() -> Node<TikvGroupState> {
    task("upgrade_ordering", |s: &mut TikvGroupState| {
        Box::pin(async move {
            let (Some(group), Some(cluster)) = (&s.pass.object, &s.pass.cluster) else {
                return Outcome::complete("nothing loaded");
            };
            if !version_change(group) || cluster.spec.upgrade_policy == UpgradePolicy::NoConstraints {
                return Outcome::complete("no ordering constraint");
            }
            let cluster_name = group.spec.cluster.name.clone();
            s.pd_groups = s
                .pass
                .ctx
                .caches
                .pd_groups
                .list(&s.pass.namespace, &Default::default())
                .iter()
                .filter(|g| g.spec.cluster.name == cluster_name)
                .map(|g| PDGroup::clone(g))
                .collect();
            if pd_upgraded(&s.pd_groups) {
                return Outcome::complete("PD is upgraded; TiKV may follow");
            }
            let version = &group.spec.template.spec.version;
            let why = format!("TiKV moves to {version} once every PD group runs its new version");
            s.group.rollout_held = Some(why.clone());
            Outcome::complete(why)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sample_pd_group, sample_tikv_group, t0};
    use tikv_operator_api::condition::{DesiredCondition, set_condition};

    #[test]
    fn tikv_waits_until_every_pd_group_runs_its_version() {
        let mut pd = sample_pd_group("pd", 3);
        assert!(!pd_upgraded(std::slice::from_ref(&pd)));
        let status = pd.status.get_or_insert_default();
        set_condition(
            &mut status.common.conditions,
            DesiredCondition::new(types::SYNCED, true, "Synced", "").observed(Some(1)),
            t0(),
        );
        status.group.version = Some("v8.5.0".into());
        assert!(pd_upgraded(std::slice::from_ref(&pd)));
        pd.spec.template.spec.version = "v8.5.1".into();
        assert!(!pd_upgraded(&[pd]));
    }

    #[test]
    fn only_a_version_change_is_ordered() {
        let mut kv = sample_tikv_group("kv", 3);
        assert!(!version_change(&kv), "a new group has no version yet");
        kv.status.get_or_insert_default().group.version = Some("v8.5.0".into());
        assert!(!version_change(&kv));
        kv.spec.template.spec.version = "v8.5.1".into();
        assert!(version_change(&kv));
    }
}
