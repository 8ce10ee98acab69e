//! `suspended`: the Cluster's `Suspended` condition, from `spec.suspendAction` and its
//! groups' own `Suspended` conditions.
//!
//! True (`Suspended`) once every group says its instances are suspended; False
//! `Suspending` before that; once resumed, False `Resuming` while a group still has an
//! instance whose Pod is not back, then False `Unsuspended`. Each step is announced with
//! an Event when the condition first shows it. Reads the groups loaded; writes only the
//! status being built. Always Complete.

use tikv_operator_api::condition::{find_condition, reasons, types};
use tikv_operator_task::{Node, Outcome, task};

use crate::cluster::state::ClusterState;
use crate::common::Group;

/// The reason of a group's `Suspended` condition (`Suspended` for True), if any.
fn group_reason<G: Group>(group: &G) -> Option<String> {
    let c = find_condition(group.status().map(G::conditions).unwrap_or_default(), types::SUSPENDED)?;
    Some(if c.status == "True" { reasons::SUSPENDED.to_string() } else { c.reason.clone() })
}

pub fn suspended() -> Node<ClusterState> {
    task("suspended", |s: &mut ClusterState| {
        Box::pin(async move {
            let Some(cluster) = &s.pass.object else {
                return Outcome::complete("no Cluster");
            };
            if !s.groups_loaded {
                return Outcome::complete("groups not read; left as read");
            }
            // A pending TLS switch deletes every pod as a suspension does.
            let wanted =
                cluster.spec.suspend_action.as_ref().is_some_and(|a| a.suspend_compute) || cluster.tls_switch_pending();
            let groups: Vec<Option<String>> =
                s.pd_groups.iter().map(group_reason).chain(s.tikv_groups.iter().map(group_reason)).collect();
            let total = groups.len();
            let done = groups.iter().filter(|r| r.as_deref() == Some(reasons::SUSPENDED)).count();
            let away = groups
                .iter()
                .filter(|r| matches!(r.as_deref(), Some(reasons::SUSPENDED | reasons::SUSPENDING | reasons::RESUMING)))
                .count();
            let (status, reason, message) = if wanted && done == total {
                (
                    true,
                    reasons::SUSPENDED,
                    "every pod of the cluster is deleted; volumes and identities are kept".to_string(),
                )
            } else if wanted {
                (
                    false,
                    reasons::SUSPENDING,
                    format!("deleting the cluster's pods, TiKV before PD: {done} of {total} groups suspended"),
                )
            } else if away > 0 {
                (
                    false,
                    reasons::RESUMING,
                    format!("PD pods first, then every TiKV pod together: {} of {total} groups back", total - away),
                )
            } else {
                (false, reasons::UNSUSPENDED, String::new())
            };
            let read = s.pass.reason_as_read(types::SUSPENDED).map(str::to_owned);
            if read.as_deref() != Some(reason) {
                let announce = match (reason, read.as_deref()) {
                    (reasons::SUSPENDING, _) => Some(("Suspending", "Suspend")),
                    (reasons::SUSPENDED, _) => Some(("Suspended", "Suspend")),
                    (reasons::RESUMING, _) => Some(("Resuming", "Resume")),
                    (_, Some(reasons::SUSPENDED | reasons::SUSPENDING | reasons::RESUMING)) => {
                        Some(("Resumed", "Resume"))
                    }
                    _ => None,
                };
                if let Some((event, action)) = announce {
                    let note = if message.is_empty() {
                        "every pod of the cluster is back".to_string()
                    } else {
                        message.clone()
                    };
                    s.pass.event(event, action, note).await;
                }
            }
            s.pass.set_condition(types::SUSPENDED, status, reason, message.clone());
            Outcome::complete(format!("{reason}: {message}"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_pd_group, sample_tikv_group};
    use tikv_operator_api::cluster::SuspendAction;
    use tikv_operator_api::condition::{DesiredCondition, set_condition};
    use tikv_operator_api::{PDGroup, TiKVGroup};
    use tikv_operator_task::Runner;

    fn with<G: Group>(mut group: G, reason: &str) -> G {
        let mut status = G::Status::default();
        let desired = DesiredCondition::new(types::SUSPENDED, reason == reasons::SUSPENDED, reason, "");
        set_condition(G::conditions_mut(&mut status), desired, crate::testing::t0());
        group.set_status(status);
        group
    }

    /// One pass over a Cluster (`wanted` suspended, `read` its Suspended reason as
    /// read) with groups in these states: the condition's reason and the Events.
    async fn pass(env: &TestEnv, wanted: bool, read: Option<&str>, pd: &str, tikv: &str) -> (String, String, usize) {
        let mut cluster = sample_cluster("basic");
        cluster.spec.suspend_action = Some(SuspendAction { suspend_compute: wanted });
        let cluster = env.create(cluster).await;
        let mut cluster = cluster;
        if let Some(read) = read {
            let mut status = cluster.status.clone().unwrap_or_default();
            let desired = DesiredCondition::new(types::SUSPENDED, read == reasons::SUSPENDED, read, "");
            set_condition(&mut status.conditions, desired, crate::testing::t0());
            cluster.status = Some(status);
        }
        let mut s = ClusterState::new(env.ctx.clone(), "default", "basic");
        s.pass = s.pass.with_object(cluster);
        s.pd_groups = vec![with::<PDGroup>(sample_pd_group("pd", 3), pd)];
        s.tikv_groups = vec![with::<TiKVGroup>(sample_tikv_group("tikv", 3), tikv)];
        s.groups_loaded = true;
        let before = env.event_writes().await;
        env.run(&Runner::new("t", [suspended()]), "k", &mut s).await;
        let api: kube::Api<tikv_operator_api::Cluster> = kube::Api::namespaced(env.client.clone(), "default");
        api.delete("basic", &Default::default()).await.unwrap();
        let c = find_condition(&s.pass.status.conditions, types::SUSPENDED).unwrap();
        (c.status.clone(), c.reason.clone(), env.event_writes().await - before)
    }

    #[tokio::test]
    async fn the_cluster_follows_its_groups_and_announces_each_step_once() {
        let env = TestEnv::start().await;
        let (s, u, r) = (reasons::SUSPENDED, reasons::UNSUSPENDED, reasons::RESUMING);
        let case = |status: &str, reason: &str, events: usize| (status.to_string(), reason.to_string(), events);
        assert_eq!(pass(&env, false, None, u, u).await, case("False", "Unsuspended", 0), "never suspended");
        assert_eq!(pass(&env, true, Some(u), s, reasons::SUSPENDING).await, case("False", "Suspending", 1));
        assert_eq!(
            pass(&env, true, Some(reasons::SUSPENDING), s, reasons::SUSPENDING).await,
            case("False", "Suspending", 0)
        );
        assert_eq!(pass(&env, true, Some(reasons::SUSPENDING), s, s).await, case("True", "Suspended", 1));
        assert_eq!(pass(&env, true, Some(s), s, s).await, case("True", "Suspended", 0));
        assert_eq!(pass(&env, false, Some(s), u, r).await, case("False", "Resuming", 1));
        assert_eq!(pass(&env, false, Some(r), u, u).await, case("False", "Unsuspended", 1));
        assert_eq!(pass(&env, false, Some(u), u, u).await, case("False", "Unsuspended", 0));
        let events: Vec<String> = env.events().await.into_iter().map(|e| e.1).collect();
        assert_eq!(events, ["Suspending", "Suspended", "Resuming", "Resumed"]);
    }
}
