//! `pdb`: the group's PodDisruptionBudget, so that a node drain (the pod `eviction`
//! subresource) takes down no more of the group's pods at once than the updater would.
//!
//! The budget `<group>-<component>` selects the group's pods (the group selector), is
//! owned by the group, and says `minAvailable = max(count − budget, 0)`: `budget` is the
//! updater's (`maxUnavailable`, for PD clamped to the failures its quorum tolerates, and
//! at least 1), `count` the larger of `replicas` and the instances the group still has,
//! so that a scale-in lowers the floor only once its instances are gone, not while a
//! store is still leaving. An integer `minAvailable` is used because a percentage or a
//! `maxUnavailable` would need a `scale` subresource on the pods' owner (the PD and TiKV
//! instances have none), which kube-controller-manager reads to count expected pods.
//!
//! Reads the budget from the watch cache. Writes: create, or one merge patch when the
//! rendered budget changed (hash-guarded); nothing otherwise. Complete; Retry on a 409
//! (it changed meanwhile, or exists unseen by the cache yet); Fail on other errors.

use std::time::Duration;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use kube::{Api, ResourceExt};
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::{Applied, apply};
use crate::common::Group;
use crate::common::group::GroupState;
use crate::common::render::{controller_ref, group_selector};
use crate::error::is_conflict;
use crate::updater::budget;

/// The budget's name: `<group>-<component>` (`tikv-tikv`, `pd-pd`).
pub fn pdb_name<G: Group>(group: &G) -> String {
    format!("{}-{}", group.name_any(), G::COMPONENT)
}

/// The floor of available pods for a group that has `instances` instances.
pub fn min_available<G: Group>(group: &G, instances: usize) -> i32 {
    let count = usize::try_from(group.replicas().max(0)).unwrap_or(0).max(instances);
    let allowed = budget(group.max_unavailable(), group.removal(), count);
    i32::try_from(count.saturating_sub(allowed)).unwrap_or(i32::MAX)
}

/// The PodDisruptionBudget of a group that has `instances` instances.
pub fn render_pdb<G: Group>(group: &G, instances: usize) -> PodDisruptionBudget {
    let selector = group_selector(&group.cluster_name(), G::COMPONENT, &group.name_any());
    PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(pdb_name(group)),
            namespace: group.namespace(),
            labels: Some(selector.clone()),
            owner_references: Some(controller_ref(group)),
            ..ObjectMeta::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(min_available(group, instances))),
            selector: Some(LabelSelector { match_labels: Some(selector), match_expressions: None }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}

pub fn pdb<S: GroupState>() -> Node<S> {
    task("pdb", |s: &mut S| {
        Box::pin(async move {
            let Some(group) = &s.pass().object else {
                return Outcome::complete("no group");
            };
            let desired = render_pdb(group, s.group().instances.len());
            let name = pdb_name(group);
            let min = min_available(group, s.group().instances.len());
            let pass = s.pass();
            let api: Api<PodDisruptionBudget> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
            let live = pass.ctx.caches.get::<PodDisruptionBudget>(&pass.namespace, &name);
            match apply(&api, live.as_deref(), desired).await {
                Ok(Applied::Unchanged) => Outcome::complete(format!("minAvailable {min}")),
                Ok(applied) => {
                    let note = format!("{applied:?} PodDisruptionBudget {name}: minAvailable {min}");
                    pass.event("PodDisruptionBudgetApplied", "Apply", note).await;
                    Outcome::complete(format!("{applied:?} {name}: minAvailable {min}"))
                }
                Err(error) if is_conflict(&error) => {
                    Outcome::retry(Duration::from_secs(1), "PodDisruptionBudget changed meanwhile; retrying")
                }
                Err(error) => Outcome::fail(error),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdgroup::state::PdGroupState;
    use crate::testing::{TestEnv, sample_pd_group, sample_tikv, sample_tikv_group};
    use crate::tikvgroup::state::TikvGroupState;
    use kube_sim::{FaultAction, FaultRule, Verb};
    use std::collections::BTreeMap;
    use tikv_operator_api::names;
    use tikv_operator_api::{PDGroup, TiKVGroup};
    use tikv_operator_task::{OutcomeKind, Report, Runner};

    async fn tikv_pass(env: &TestEnv, group: &TiKVGroup, instances: usize) -> Report {
        let mut s = TikvGroupState::new(env.ctx.clone(), "default", &group.name_any());
        s.pass = s.pass.with_object(group.clone());
        s.group.instances = (0..instances).map(|i| sample_tikv(&format!("tikv-{i}"), "tikv")).collect();
        env.run(&Runner::new("t", [pdb()]), "k", &mut s).await
    }

    /// The budget as the API server holds it (the cache keeps its metadata only).
    async fn live(env: &TestEnv, name: &str) -> PodDisruptionBudget {
        env.get(name).await
    }

    fn min_of(budget: &PodDisruptionBudget) -> Option<IntOrString> {
        budget.spec.as_ref().and_then(|s| s.min_available.clone())
    }

    #[test]
    fn the_floor_follows_replicas_max_unavailable_and_the_pd_quorum() {
        let tikv = |replicas, max_unavailable| {
            let mut g = sample_tikv_group("tikv", replicas);
            g.spec.max_unavailable = max_unavailable;
            g
        };
        assert_eq!(min_available(&tikv(3, 1), 3), 2);
        assert_eq!(min_available(&tikv(6, 2), 6), 4);
        assert_eq!(min_available(&tikv(1, 3), 1), 0, "never below 0");
        assert_eq!(min_available(&tikv(3, 0), 3), 2, "at least one may go, as for the updater");
        assert_eq!(min_available(&tikv(3, 1), 0), 2, "a scale-out raises it at once");
        assert_eq!(min_available(&tikv(2, 1), 3), 2, "a scale-in lowers it once the instance is gone");
        let pd = |replicas, max_unavailable| {
            let mut g = sample_pd_group("pd", replicas);
            g.spec.max_unavailable = max_unavailable;
            g
        };
        assert_eq!(min_available(&pd(3, 2), 3), 2, "3 members tolerate 1 failure");
        assert_eq!(min_available(&pd(5, 3), 5), 3, "5 members tolerate 2");
        assert_eq!(min_available(&pd(1, 1), 1), 0, "a lone member can still be moved");
    }

    #[tokio::test]
    async fn a_budget_is_created_over_the_group_pods_then_left_alone() {
        let env = TestEnv::start().await;
        let group = env.create(sample_tikv_group("tikv", 3)).await;
        let report = tikv_pass(&env, &group, 0).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("pdb").unwrap().message(), "Created tikv-tikv: minAvailable 2");
        assert_eq!(env.write_log(), ["create policy/poddisruptionbudgets/"]);
        assert_eq!(env.event_writes().await, 1);

        let budget: PodDisruptionBudget = env.get("tikv-tikv").await;
        assert_eq!(budget.owner_references()[0].uid, group.uid().unwrap());
        assert_eq!(budget.owner_references()[0].controller, Some(true));
        let spec = budget.spec.unwrap();
        assert_eq!(spec.min_available, Some(IntOrString::Int(2)));
        assert_eq!(spec.max_unavailable, None);
        let selector: BTreeMap<String, String> = [
            (names::LABEL_MANAGED_BY, names::MANAGED_BY_OPERATOR),
            (names::LABEL_CLUSTER, "basic"),
            (names::LABEL_COMPONENT, names::COMPONENT_TIKV),
            (names::LABEL_GROUP, "tikv"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(spec.selector.unwrap().match_labels, Some(selector));

        // Up to date: no request at all.
        env.synced().await;
        env.sim.requests().reset();
        let report = tikv_pass(&env, &group, 3).await;
        assert_eq!(report.entry("pdb").unwrap().message(), "minAvailable 2");
        assert_eq!(env.requests(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_replicas_change_is_one_patch() {
        let env = TestEnv::start().await;
        let mut group = env.create(sample_tikv_group("tikv", 3)).await;
        tikv_pass(&env, &group, 0).await;
        env.synced().await;
        env.sim.requests().reset();
        group.spec.replicas = 5;
        let report = tikv_pass(&env, &group, 3).await;
        assert_eq!(report.entry("pdb").unwrap().message(), "Patched tikv-tikv: minAvailable 4");
        assert_eq!(env.write_log(), ["patch policy/poddisruptionbudgets/tikv-tikv"]);
        env.synced().await;
        assert_eq!(min_of(&live(&env, "tikv-tikv").await), Some(IntOrString::Int(4)));

        // A scale-in: nothing while the leaving instances exist, one patch once they are gone.
        group.spec.replicas = 3;
        env.sim.requests().reset();
        tikv_pass(&env, &group, 5).await;
        assert_eq!(env.write_log(), Vec::<String>::new());
        tikv_pass(&env, &group, 3).await;
        assert_eq!(env.write_log(), ["patch policy/poddisruptionbudgets/tikv-tikv"]);
    }

    #[tokio::test]
    async fn a_pd_group_gets_its_quorum_floor() {
        let env = TestEnv::start().await;
        let group: PDGroup = env.create(sample_pd_group("pd", 3)).await;
        let mut s = PdGroupState::new(env.ctx.clone(), "default", "pd");
        s.pass = s.pass.with_object(group);
        let report = env.run(&Runner::new("t", [pdb()]), "k", &mut s).await;
        assert_eq!(report.entry("pdb").unwrap().message(), "Created pd-pd: minAvailable 2", "{report}");
        let budget: PodDisruptionBudget = env.get("pd-pd").await;
        let labels = budget.spec.unwrap().selector.unwrap().match_labels.unwrap();
        assert_eq!(labels[names::LABEL_COMPONENT], names::COMPONENT_PD);
    }

    #[tokio::test]
    async fn an_api_error_fails_the_task_and_a_conflict_retries() {
        let env = TestEnv::start().await;
        let group = env.create(sample_tikv_group("tikv", 3)).await;
        let rule = FaultRule::new(FaultAction::InternalError).verb(Verb::Create).resource("poddisruptionbudgets");
        let fault = env.sim.faults().inject(rule);
        let report = tikv_pass(&env, &group, 0).await;
        assert_eq!(report.outcome(), OutcomeKind::Fail, "{report}");
        env.sim.faults().remove(fault);

        tikv_pass(&env, &group, 0).await;
        env.synced().await;
        let mut changed = group.clone();
        changed.spec.replicas = 4;
        let rule = FaultRule::new(FaultAction::Conflict).verb(Verb::Patch).resource("poddisruptionbudgets");
        env.sim.faults().inject(rule.times(1));
        let report = tikv_pass(&env, &changed, 3).await;
        assert!(report.entry("pdb").unwrap().retry_after().is_some(), "{report}");
    }
}
