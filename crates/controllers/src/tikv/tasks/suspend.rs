//! Suspend and resume of a store (`Cluster.spec.suspendAction.suspendCompute`).
//!
//! `suspend_pod` (behind the `cluster_suspended` guard, before any eviction, offline or
//! restart, which all stay as they are — an evict-leader entry and its record are kept,
//! PD is not written to): deletes the store's Pod directly, by its UID, with the grace
//! of a restart (one second per 200 regions plus one, at least 30 s) — not through an
//! eviction; the ConfigMap, PVCs and the store ID are kept. It releases the instance's
//! PD wait: a suspended store is not up, and nothing need be polled fast for it.
//!
//! `resume_held` / `hold_resume` (before `pod`): once resumed, an instance whose Pod
//! went with the suspension gets it back only when every PD member of the cluster is
//! back — PD's fresh view lists every PD instance's member healthy, under a leader,
//! each Pod Ready — so that every store comes back at once: a store back before the
//! others would let PD count them down and start re-replicating their regions. No store
//! waits for another store. Outcomes: Retry every second while held (member health
//! brings no event to TiKV instances), with a PD wait so the cache polls fast.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tikv_operator_api::PD;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names::LABEL_CLUSTER;
use tikv_operator_task::{Condition, Node, Outcome, cond, task};

use super::restart::grace_seconds;
use crate::common::Instance;
use crate::common::instance::{pod_ready_since, pod_terminating};
use crate::common::tasks::{delete_for_suspension, suspension_reason};
use crate::tikv::state::TikvState;

/// How often a held resume looks at PD again.
pub const RESUME_RECHECK: Duration = Duration::from_secs(1);

pub fn suspend_pod() -> Node<TikvState> {
    task("suspend_pod", |s: &mut TikvState| {
        Box::pin(async move {
            let key = s.pass.key();
            s.pass.ctx.pd_waits.done(&key);
            let grace = grace_seconds(s);
            delete_for_suspension(s, Some(grace)).await
        })
    })
}

/// Resumed, the Pod gone with the suspension, and PD not back yet.
pub fn resume_held() -> Condition<TikvState> {
    cond("resume_held", |s: &TikvState| held(s).is_some())
}

pub fn hold_resume() -> Node<TikvState> {
    task("hold_resume", |s: &mut TikvState| {
        Box::pin(async move {
            let Some(why) = held(s) else {
                return Outcome::complete("every PD member is back");
            };
            let message = format!(
                "the Cluster is resumed: the pod waits until every PD member is back and healthy ({why}); then every \
                 TiKV pod returns together"
            );
            s.pass.not_synced(reasons::POD_NOT_CREATED, message.clone());
            if let Some(pd) = s.pass.pd() {
                let key = s.pass.key();
                s.pass.ctx.pd_waits.waiting(&key, &pd.cache, "PD members to come back");
            }
            Outcome::retry(RESUME_RECHECK, message)
        })
    })
}

/// Why the Pod may not come back yet, if it may not.
fn held(s: &TikvState) -> Option<String> {
    if !s.parts.pod_loaded || s.parts.pod.is_some() || s.pass.suspended() {
        return None;
    }
    if !suspension_reason(s.pass.reason_as_read(types::SUSPENDED)) {
        return None;
    }
    pd_back(s).err()
}

/// Every PD member of the cluster back: in a fresh view, healthy, under a leader, its
/// Pod Ready and not terminating.
fn pd_back(s: &TikvState) -> Result<(), String> {
    let pd = s.pass.pd().ok_or("the cluster's PD is not registered")?;
    let view = pd.cache.fresh_view().map_err(|e| format!("PD's view is {}", e.freshness))?;
    let cluster = s.pass.object.as_ref().map(|t| t.spec.cluster.name.clone()).unwrap_or_default();
    let selector = BTreeMap::from([(LABEL_CLUSTER.to_string(), cluster)]);
    let mut members: Vec<String> = s
        .pass
        .ctx
        .caches
        .list::<PD>(&s.pass.namespace, &selector)
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.pod_name())
        .collect();
    members.sort();
    if members.is_empty() {
        return Err("the cluster has no PD instance".into());
    }
    for name in &members {
        match view.member(name) {
            None => return Err(format!("PD does not list member {name} yet")),
            Some(m) if m.healthy != Some(true) => return Err(format!("PD member {name} is not healthy yet")),
            Some(_) => {}
        }
        match s.pass.ctx.caches.get::<Pod>(&s.pass.namespace, name) {
            None => return Err(format!("pod {name} does not exist yet")),
            Some(pod) if pod_terminating(&pod) => return Err(format!("pod {name} is terminating")),
            Some(pod) if pod_ready_since(&pod).is_none() => return Err(format!("pod {name} is not Ready yet")),
            Some(_) => {}
        }
    }
    if view.leader.is_none() {
        return Err("PD has no leader yet".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePd, sample_pd};
    use crate::tikv::tasks::testkit::{Kit, four_stores, running};
    use crate::tikv::tasks::{evict_leaders, offline};
    use kube::Api;
    use kube::api::PostParams;
    use tikv_operator_api::cluster::SuspendAction;
    use tikv_operator_api::condition::{DesiredCondition, set_condition};
    use tikv_operator_api::names::{self, ANNOTATION_EVICT_LEADER_STORE};
    use tikv_operator_api::{Cluster, TiKV};
    use tikv_operator_task::{OutcomeKind, if_break};

    async fn suspend(kit: &Kit, suspended: bool) {
        let api: Api<Cluster> = Api::namespaced(kit.env.client.clone(), "default");
        let mut cluster = api.get("basic").await.unwrap();
        cluster.spec.suspend_action = Some(SuspendAction { suspend_compute: suspended });
        api.replace("basic", &PostParams::default(), &cluster).await.unwrap();
    }

    /// The suspension's part of the runbook, as the builder orders it.
    fn suspension() -> Vec<Node<TikvState>> {
        vec![
            if_break(crate::common::guards::cluster_suspended(), [suspend_pod()]),
            evict_leaders(),
            offline(),
            if_break(resume_held(), [hold_resume()]),
        ]
    }

    /// Store 5 being taken offline, its leaders moving under the operator's recorded
    /// entry; its Pod running.
    async fn leaving() -> Kit {
        let pd = four_stores().counts(5, 4, 1000).evicting_leaders(5);
        let kit = Kit::new(pd, |t| {
            t.spec.offline = true;
            t.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "5".to_string())].into());
        })
        .await;
        kit.status(|st| st.id = Some("5".into())).await;
        kit.running_pod().await;
        kit
    }

    #[tokio::test]
    async fn a_suspension_deletes_the_pod_by_uid_and_pauses_the_offline() {
        let kit = leaving().await;
        suspend(&kit, true).await;
        let (_, report) = kit.pass(suspension()).await;
        assert_eq!(kit.writes(), ["delete pods/tikv-tikv-abc123"], "{report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "PD is not written to");
        assert!(!report.ran("evict_leaders") && !report.ran("offline"), "{report}");
        let entry = report.entry("suspend_pod").unwrap();
        assert_eq!(entry.kind(), Some(OutcomeKind::Wait), "{report}");
        assert!(entry.message().contains("grace 30s"), "{report}");
        assert!(kit.env.events().await.iter().any(|e| e.1 == "SuspendingPod"));
        let pods: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        let going = pods.get("tikv-tikv-abc123").await.unwrap();
        assert_eq!(going.metadata.deletion_grace_period_seconds, Some(30), "a restart's grace, not the pod's 65535 s");

        // Terminating, then gone: nothing more is written; the record and entry stay.
        let (_, report) = kit.pass(suspension()).await;
        assert_eq!(report.entry("suspend_pod").unwrap().kind(), Some(OutcomeKind::Wait), "{report}");
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        api.delete("tikv-tikv-abc123", &kube::api::DeleteParams::default().grace_period(0)).await.unwrap();
        let (_, report) = kit.pass(suspension()).await;
        assert_eq!(report.entry("suspend_pod").unwrap().message(), "suspended: no pod", "{report}");
        assert_eq!((kit.writes(), kit.pd.write_log()), (vec![], vec![]));
        assert_eq!(kit.pd.evicting(), [5].into());
        let live: TiKV = kit.live().await;
        assert!(live.spec.offline);
        assert_eq!(live.metadata.annotations.unwrap()[ANNOTATION_EVICT_LEADER_STORE], "5");
    }

    /// Resumed: PD members named like the PD instances' Pods.
    async fn resumed(kit: &Kit) {
        suspend(kit, false).await;
        let status = |t: &mut TiKV| {
            let st = t.status.get_or_insert_default();
            let desired = DesiredCondition::new(types::SUSPENDED, true, reasons::SUSPENDED, "");
            set_condition(&mut st.common.conditions, desired, crate::testing::t0());
        };
        let api: Api<TiKV> = Api::namespaced(kit.env.client.clone(), "default");
        let mut tikv = api.get("tikv-abc123").await.unwrap();
        status(&mut tikv);
        api.replace_status("tikv-abc123", &PostParams::default(), &tikv).await.unwrap();
        for name in ["pd-a", "pd-b"] {
            let mut pd = sample_pd(name, "pd");
            pd.metadata.labels.get_or_insert_default().insert(LABEL_CLUSTER.into(), "basic".into());
            kit.env.create(pd).await;
        }
    }

    async fn pd_pod(kit: &Kit, name: &str, ready: bool) {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        let managed = (names::LABEL_MANAGED_BY.to_string(), names::MANAGED_BY_OPERATOR.to_string());
        pod.metadata.labels = Some([managed].into());
        pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![k8s_openapi::api::core::v1::Container {
                name: "pd".into(),
                image: Some("pd".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        kit.env.create(pod).await;
        kit.pod_status(name, running(crate::testing::t0(), ready)).await;
    }

    #[tokio::test]
    async fn a_resumed_store_waits_for_every_pd_member_then_its_offline_goes_on() {
        let pd = four_stores().counts(5, 4, 1000).evicting_leaders(5).member("pd-pd-a", 1).member("pd-pd-b", 2);
        pd.member_unhealthy("pd-pd-b", true);
        let kit = Kit::new(pd, |t| {
            t.spec.offline = true;
            t.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "5".to_string())].into());
        })
        .await;
        kit.status(|st| st.id = Some("5".into())).await;
        resumed(&kit).await;
        pd_pod(&kit, "pd-pd-a", true).await;

        let hold = |report: &tikv_operator_task::Report| report.entry("hold_resume").unwrap().message().to_string();
        // Member b is unhealthy, then its pod missing, not Ready; and PD has no leader.
        let (s, report) = kit.pass(suspension()).await;
        assert!(hold(&report).contains("PD member pd-pd-b is not healthy yet"), "{report}");
        assert_eq!(report.entry("hold_resume").unwrap().retry_after(), Some(RESUME_RECHECK));
        assert_eq!(s.pass.unsynced.last().unwrap().reason, reasons::POD_NOT_CREATED);
        kit.pd.member_unhealthy("pd-pd-b", false);
        let (_, report) = kit.pass(suspension()).await;
        assert!(hold(&report).contains("pod pd-pd-b does not exist yet"), "{report}");
        pd_pod(&kit, "pd-pd-b", false).await;
        let (_, report) = kit.pass(suspension()).await;
        assert!(hold(&report).contains("pod pd-pd-b is not Ready yet"), "{report}");
        kit.pod_status("pd-pd-b", running(crate::testing::t0(), true)).await;
        let (_, report) = kit.pass(suspension()).await;
        assert!(hold(&report).contains("PD has no leader yet"), "{report}");
        kit.pd.set_leader("pd-pd-a");
        // A stale view says nothing.
        kit.handle.cache.note_write();
        let (_, report) = kit.pass_as_is(suspension()).await;
        assert!(hold(&report).contains("PD's view is"), "{report}");
        assert_eq!(kit.writes(), Vec::<String>::new(), "nothing written while held");

        // Every member back: the pod may come; the paused offline goes on (its leaders
        // still moving: nothing to write yet).
        let (_, report) = kit.pass(suspension()).await;
        assert!(!report.ran("hold_resume"), "{report}");
        assert!(report.ran("evict_leaders") && report.ran("offline"), "{report}");
        kit.pd.set_store(5, |st| st.leader_count = 0);
        let (_, report) = kit.pass(suspension()).await;
        assert_eq!(kit.pd.write_log(), ["delete_store(5)"], "{report}");
    }

    #[tokio::test]
    async fn a_pod_replaced_since_it_was_read_is_not_deleted() {
        let kit = leaving().await;
        suspend(&kit, true).await;
        kit.env.synced().await;
        let old: Pod = kit.env.get("tikv-tikv-abc123").await;
        // The caches will not see the new pod for a (simulated) hour.
        kit.env.sim.faults().set_watch_delay(Duration::from_secs(3600));
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        api.delete("tikv-tikv-abc123", &kube::api::DeleteParams::default().grace_period(0)).await.unwrap();
        let mut new = old.clone();
        new.metadata = kube::api::ObjectMeta {
            name: old.metadata.name.clone(),
            labels: old.metadata.labels,
            ..Default::default()
        };
        let new = api.create(&PostParams::default(), &new).await.unwrap();
        kit.handle.cache.refresh().await.unwrap();
        let (_, report) = kit.pass_from_caches(suspension()).await;
        let entry = report.entry("suspend_pod").unwrap();
        assert_eq!(entry.message(), "pod tikv-tikv-abc123 was replaced meanwhile; waiting for the cache", "{report}");
        let live = api.get("tikv-tikv-abc123").await.unwrap();
        assert_eq!((live.metadata.uid, live.metadata.deletion_timestamp), (new.metadata.uid, None), "untouched");
    }

    #[tokio::test]
    async fn an_offline_under_way_waits_through_a_suspension_and_goes_on_after() {
        use tikv_operator_pd::NodeState;
        let pd = four_stores()
            .counts(5, 0, 1000)
            .evicting_leaders(5)
            .member("pd-pd-a", 1)
            .member("pd-pd-b", 2)
            .leader("pd-pd-a");
        pd.set_node_state(5, NodeState::Removing);
        let kit = Kit::new(pd, |t| {
            t.spec.offline = true;
            t.metadata.annotations = Some([(ANNOTATION_EVICT_LEADER_STORE.to_string(), "5".to_string())].into());
        })
        .await;
        kit.status(|st| st.id = Some("5".into())).await;
        kit.running_pod().await;
        suspend(&kit, true).await;
        let (_, report) = kit.pass(suspension()).await;
        assert_eq!(kit.writes(), ["delete pods/tikv-tikv-abc123"], "{report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert!(!report.ran("offline"), "{report}");

        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        api.delete("tikv-tikv-abc123", &kube::api::DeleteParams::default().grace_period(0)).await.unwrap();
        resumed(&kit).await;
        pd_pod(&kit, "pd-pd-a", true).await;
        pd_pod(&kit, "pd-pd-b", true).await;
        let (_, report) = kit.pass(suspension()).await;
        assert!(!report.ran("hold_resume"), "{report}");
        let offline = report.entry("offline").unwrap();
        assert!(offline.message().contains("regions"), "the offline's progress again: {report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "PD still carries it out: nothing to ask");
        assert_eq!(kit.pd.store_state(5), Some(NodeState::Removing));
    }

    #[tokio::test]
    async fn an_instance_never_suspended_is_not_held() {
        let pd = FakePd::bootstrapped();
        let kit = Kit::new(pd, |_| {}).await;
        let (_, report) = kit.pass(suspension()).await;
        assert!(!report.ran("hold_resume") && !report.ran("suspend_pod"), "{report}");
    }
}
