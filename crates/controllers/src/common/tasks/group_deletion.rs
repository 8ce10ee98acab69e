//! `group_deletion`: a deleted group deletes its instances and releases its finalizer
//! once none remain (confirmed by a fresh list, not the cache).
//!
//! While its Cluster is going (or gone) that is all: PD goes too. While the Cluster
//! lives, only a group whose instances leave safely on their own does it (TiKV: each
//! deleted store goes offline in PD first, as far as PD allows: with too few stores
//! left for max-replicas the last ones stay), and the group says which instances remain
//! and why, from their own conditions. A PD group deleted while its Cluster lives keeps
//! its finalizer and says so: member removal comes with PD membership changes.
//! Writes: DELETE of instances, the group's finalizer. Wait while instances remain;
//! Complete once released; Fail on API errors.

use kube::api::{DeleteParams, ListParams};
use kube::{Api, Resource, ResourceExt};
use tikv_operator_api::condition::{find_condition, reasons, types};
use tikv_operator_task::{Node, Outcome, task};

use super::set_finalizer;
use crate::common::group::GroupState;
use crate::common::render::{group_selector, selector_string};
use crate::common::{Group, Object};
use crate::error::is_not_found;

pub fn group_deletion<S: GroupState>() -> Node<S> {
    task("group_deletion", |s: &mut S| {
        Box::pin(async move {
            let cluster_going = s.pass().cluster.as_ref().is_none_or(|c| c.meta().deletion_timestamp.is_some());
            if !cluster_going && !S::G::INSTANCES_LEAVE_SAFELY {
                s.pass_mut().not_synced(
                    reasons::DELETION_REFUSED,
                    "the PD group of a live Cluster is kept (every store needs PD): delete the Cluster instead, or lower the group's replicas",
                );
                return Outcome::wait("PD group deleted while its Cluster exists: kept");
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
                    Ok(list) if list.items.is_empty() => return set_finalizer(s, false).await,
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
                if let Err(error) = api.delete(&instance.name_any(), &DeleteParams::default()).await
                    && !is_not_found(&error)
                {
                    return Outcome::fail(error);
                }
            }
            if !cluster_going {
                let message = remaining_message(s.group().instances.as_slice());
                s.pass_mut().not_synced(reasons::INSTANCES_REMAINING, message);
            }
            Outcome::wait(format!("waiting for {} instances to go", remaining.len()))
        })
    })
}

/// `"2 instances still leaving: tikv-a (PD refuses …), tikv-b (3 of 9 leaders left …)"`,
/// each with what its own not-True lifecycle condition says.
fn remaining_message<I: crate::common::Instance>(instances: &[I]) -> String {
    let what: Vec<String> = instances
        .iter()
        .map(|instance| {
            let why = instance
                .status()
                .map(|status| I::conditions(status))
                .and_then(|conditions| {
                    [types::OFFLINED, types::LEADERS_EVICTED, types::SYNCED]
                        .iter()
                        .filter_map(|t| find_condition(conditions, t))
                        .find(|c| c.status != "True")
                        .map(|c| c.message.clone())
                })
                .unwrap_or_else(|| "leaving".into());
            format!("{} ({why})", instance.name_any())
        })
        .collect();
    format!("{} instances still leaving: {}", what.len(), what.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Finding;
    use crate::common::tasks::load_instances;
    use crate::testing::{TestEnv, pd_group_pass, sample_cluster, sample_pd, sample_pd_group};
    use tikv_operator_api::names::FINALIZER;
    use tikv_operator_api::{PD, PDGroup};
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

    #[tokio::test]
    async fn a_group_deleted_while_its_cluster_lives_is_kept_and_reported() {
        let env = TestEnv::start().await;
        let cluster = env.create(sample_cluster("basic")).await;
        let group = deleting(&env, sample_pd_group("pd", 2)).await;
        let a = env.create(sample_pd("pd-a", "pd")).await;
        let b = env.create(sample_pd("pd-b", "pd")).await;
        let mut s = pd_group_pass(&env, group, Some(cluster));
        s.group.instances = vec![a, b];
        s.group.instances_loaded = true;

        let report = env.run(&Runner::new("t", [group_deletion()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(
            report.entry("group_deletion").unwrap().message(),
            "PD group deleted while its Cluster exists: kept"
        );
        assert_eq!(
            s.pass.unsynced,
            [Finding {
                reason: reasons::DELETION_REFUSED,
                message:
                    "the PD group of a live Cluster is kept (every store needs PD): delete the Cluster instead, or lower the group's replicas"
                        .into(),
            }]
        );
        assert_eq!(env.write_log(), Vec::<String>::new(), "nothing deleted, finalizer kept");
        assert_eq!(env.names::<PD>().await, ["pd-a", "pd-b"]);
        let live: PDGroup = env.get("pd").await;
        assert_eq!(live.finalizers(), [FINALIZER]);
        assert!(s.pass.object.is_some());
    }

    #[tokio::test]
    async fn a_tikv_group_deleted_while_its_cluster_lives_deletes_its_stores_and_says_what_remains() {
        use crate::testing::{sample_tikv, sample_tikv_group};
        use crate::tikvgroup::state::TikvGroupState;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
        use tikv_operator_api::{TiKV, TiKVGroup};
        let env = TestEnv::start().await;
        let cluster = env.create(sample_cluster("basic")).await;
        let group: TiKVGroup = deleting(&env, sample_tikv_group("tikv", 2)).await;
        // tikv-a says why it is still there, as its own controller would.
        let mut a = env.create(with_finalizer(sample_tikv("tikv-a", "tikv"))).await;
        let message = "PD refuses to take store 5 offline: not enough stores";
        a.status.get_or_insert_default().common.conditions = vec![Condition {
            type_: types::OFFLINED.into(),
            status: "False".into(),
            reason: reasons::OFFLINE_REFUSED.into(),
            message: message.into(),
            last_transition_time: Time(crate::testing::t0()),
            observed_generation: None,
        }];
        let api: Api<TiKV> = Api::namespaced(env.client.clone(), "default");
        api.replace_status("tikv-a", &Default::default(), &a).await.unwrap();
        env.create(with_finalizer(sample_tikv("tikv-b", "tikv"))).await;
        let mut s = TikvGroupState::new(env.ctx.clone(), "default", "tikv");
        s.pass = s.pass.with_object(group).with_cluster(cluster);

        let report = env.run(&Runner::new("t", [load_instances(), group_deletion()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(env.write_log(), ["delete core.tikv.org/tikvs/tikv-a", "delete core.tikv.org/tikvs/tikv-b"]);
        assert_eq!(s.pass.unsynced[0].reason, reasons::INSTANCES_REMAINING);
        assert_eq!(
            s.pass.unsynced[0].message,
            format!("2 instances still leaving: tikv-a ({message}); tikv-b (leaving)")
        );
        let live: TiKVGroup = env.get("tikv").await;
        assert_eq!(live.finalizers(), [FINALIZER], "kept while stores leave");
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

        let mut s = pd_group_pass(&env, group, Some(cluster.clone()));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(report.entry("group_deletion").unwrap().message(), "waiting for 2 instances to go");
        let deletes = ["delete core.tikv.org/pds/pd-a", "delete core.tikv.org/pds/pd-b"];
        assert_eq!(env.write_log(), deletes);
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);
        assert_eq!(env.names::<PD>().await, ["other-a", "pd-b"]);
        let live: PDGroup = env.get("pd").await;
        assert_eq!(live.finalizers(), [FINALIZER], "kept while an instance remains");

        // Next pass: pd-b is still going; it is not deleted again and the finalizer stays.
        let mut s = pd_group_pass(&env, live, Some(cluster.clone()));
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
        let mut s = pd_group_pass(&env, live, Some(cluster));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("group_deletion").unwrap().message(), "released");
        assert_eq!(env.write_log(), ["patch core.tikv.org/pdgroups/pd"]);
        assert!(s.pass.object.is_none());
        let groups: Api<PDGroup> = Api::namespaced(env.client.clone(), "default");
        assert!(groups.get_opt("pd").await.unwrap().is_none());
        assert_eq!(env.names::<PD>().await, ["other-a"]);
    }

    #[tokio::test]
    async fn with_the_cluster_gone_a_group_without_instances_is_released() {
        let env = TestEnv::start().await;
        let group = deleting(&env, sample_pd_group("pd", 2)).await;
        let mut s = pd_group_pass(&env, group, None);
        let report = env.run(&Runner::new("t", [load_instances(), group_deletion()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(env.write_log(), ["patch core.tikv.org/pdgroups/pd"]);
        assert!(s.pass.unsynced.is_empty());
    }
}
