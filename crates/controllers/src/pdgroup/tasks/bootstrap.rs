//! `bootstrap`: records, once and for good, that the PD cluster has formed.
//!
//! Reads: the PD cache's last view (members, leader). Writes: `spec.bootstrapped =
//! true` on the group (one merge patch carrying the resourceVersion; CEL keeps it from
//! ever going back). From then on new instances are not initial members and join (an
//! initial member whose Pod comes late still starts with the initial list: see
//! `pd::render::membership`). While PD has not formed, holds a PD wait (fast polls) and
//! Waits for the cache's events. Complete when bootstrapped; Retry on a 409; Fail.

use std::time::Duration;

use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::json;
use tikv_operator_api::PDGroup;
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::patch_params;
use crate::error::is_conflict;
use crate::pdgroup::state::PdGroupState;

/// Whether PD reports a formed cluster: members and a leader.
pub fn formed(members: usize, leader: Option<&str>) -> bool {
    members > 0 && leader.is_some()
}

pub fn bootstrap() -> Node<PdGroupState> {
    task("bootstrap", |s: &mut PdGroupState| {
        Box::pin(async move {
            let Some(group) = &s.pass.object else {
                return Outcome::complete("no group");
            };
            let key = s.pass.key();
            if group.spec.bootstrapped {
                s.pass.ctx.pd_waits.done(&key);
                return Outcome::complete("bootstrapped");
            }
            let Some(pd) = s.pass.pd() else {
                return Outcome::wait("the cluster's PD is not registered yet");
            };
            let view = pd.cache.snapshot().view;
            let is_formed = view.as_ref().is_some_and(|v| formed(v.members.len(), v.leader.as_deref()));
            if !is_formed {
                s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "PD to elect its first leader");
                return Outcome::wait("waiting for the PD cluster to form (members with a leader)");
            }
            let patch =
                json!({"metadata": {"resourceVersion": group.resource_version()}, "spec": {"bootstrapped": true}});
            let api: Api<PDGroup> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
            match api.patch(&group.name_any(), &patch_params(), &Patch::Merge(&patch)).await {
                Ok(patched) => {
                    s.pass.ctx.pd_waits.done(&key);
                    s.pass.object = Some(patched);
                    s.pass
                        .event(
                            "Bootstrapped",
                            "Bootstrap",
                            "the PD cluster has formed; new members join from now on".into(),
                        )
                        .await;
                    Outcome::complete("marked bootstrapped")
                }
                Err(error) if is_conflict(&error) => {
                    Outcome::retry(Duration::from_secs(1), "the group changed meanwhile; retrying")
                }
                Err(error) => Outcome::fail(error),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, TestEnv, sample_pd_group};
    use tikv_operator_task::{OutcomeKind, Runner};

    #[test]
    fn formed_needs_members_and_a_leader() {
        assert!(!formed(0, None));
        assert!(!formed(3, None));
        assert!(formed(1, Some("pd-0")));
    }

    #[tokio::test]
    async fn bootstrapped_is_set_once_pd_has_a_leader() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 1)).await;
        let key = ClusterKey::new("default", "basic");
        let runner = Runner::new("test", [bootstrap()]);

        env.ctx.pd.insert(&key, "http://pd", FakePd::bootstrapped().member("pd-pd-a", 1).fresh_handle().await);
        let mut state = PdGroupState::new(env.ctx.clone(), "default", "pd");
        state.pass = state.pass.with_object(group.clone());
        assert_eq!(env.run(&runner, "k", &mut state).await.outcome(), OutcomeKind::Wait);
        assert_eq!(env.writes(), 0);

        env.ctx.pd.insert(
            &key,
            "http://pd",
            FakePd::bootstrapped().member("pd-pd-a", 1).leader("pd-pd-a").fresh_handle().await,
        );
        let mut state = PdGroupState::new(env.ctx.clone(), "default", "pd");
        state.pass = state.pass.with_object(group);
        env.run(&runner, "k", &mut state).await;
        assert!(env.get::<PDGroup>("pd").await.spec.bootstrapped);

        let writes = env.writes();
        let mut state = PdGroupState::new(env.ctx.clone(), "default", "pd");
        state.pass = state.pass.with_object(env.get::<PDGroup>("pd").await);
        assert_eq!(env.run(&runner, "k", &mut state).await.entry("bootstrap").unwrap().message(), "bootstrapped");
        assert_eq!(env.writes(), writes);
    }
}
