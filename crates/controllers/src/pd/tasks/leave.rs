//! `leave`: a deleted PD instance (scale-in, or `kubectl delete pd`) takes its member out
//! of PD's membership before anything else of it goes.
//!
//! Destructive, so checked here (DESIGN.md section 5): the right PD (cluster ID); a
//! fresh view (read after the operator's last PD write, recent, the latest poll good);
//! the member present under the ID recorded in status; healthy peers and a quorum that
//! survives ([`removal_blocker`]); one member removal at a time per cluster (another
//! instance's removal whose member PD still lists holds this one). Right before the
//! removal of a running member PD's `/members` is read afresh: if it leads (whatever
//! the cache said), it first hands leadership to the other member whose Pod has been
//! Ready longest. The ID is
//! written in the instance's `member-removal` annotation before `DELETE
//! /members/id/{id}`, and the member counts as gone only once a fresh view (so one read
//! after that write) no longer lists the ID; absence without our removal is never
//! taken as gone (the removal is asked first, and is then judged the same way). An
//! instance whose member never joined (no ID recorded, none listed under its name) has
//! nothing to leave. A member listed under the instance's name with another ID (it
//! joined again after its data was lost, before the new ID was recorded) leaves too.
//!
//! Reads: the pass's member view, `status.id`, the annotation, the cluster's other PD
//! instances (watch cache), their Pods' readiness. Writes: PD's leader transfer and
//! member deletion, the annotation, Events. A refusal is in Synced
//! (`MemberRemovalBlocked`, a Warning Event when first reported).
//! Outcomes: Complete once the member is gone (sets `left`); Retry while leadership
//! moves, after the removal is asked (until a fresh view shows it gone), while the view
//! is not fresh or a gate refuses (what holds it is read from PD: the cache polls fast
//! meanwhile); Wait for the member ID to be recorded; Fail on unexpected API errors.

use kube::ResourceExt;
use tikv_operator_api::PD;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names::{ANNOTATION_MEMBER_REMOVAL, LABEL_CLUSTER};
use tikv_operator_pd::PdView;
use tikv_operator_task::{Condition, Node, Outcome, cond, task};

use super::restart::{RESTART_RECHECK, hand_over_leadership, member_ready_since};
use crate::common::guards::destructive_allowed;
use crate::common::pd_view::Observed;
use crate::common::{Instance, Object};
use crate::pd::state::PdState;

pub fn leave() -> Node<PdState> {
    task("leave", |s: &mut PdState| Box::pin(run(s)))
}

/// The member has left PD (or never joined): what is left of the instance is local.
pub fn member_left() -> Condition<PdState> {
    cond("member_left", |s: &PdState| s.left)
}

async fn run(s: &mut PdState) -> Outcome {
    let Some(name) = s.pass.object.as_ref().map(Instance::pod_name) else {
        return Outcome::complete("no instance");
    };
    let observed = match fresh_and_right_pd(s) {
        Ok(observed) => observed,
        Err(outcome) => return outcome,
    };
    let view = &observed.view;
    let by_name = view.member(&name).map(|m| m.member.member_id);
    match s.recorded_id() {
        None if by_name.is_some() => Outcome::wait("the member ID is not recorded yet; this pass records it"),
        None => {
            s.left = true;
            Outcome::complete(format!("{name} never joined PD"))
        }
        Some(id) => {
            // This instance's member: by its recorded ID, else one under its name.
            let target = if view.member_by_id(id).is_some() { Some(id) } else { by_name };
            match target {
                Some(target) => remove(s, target, &observed, "it is deleted").await,
                None if s.removal_asked().is_some() => {
                    s.left = true;
                    s.pass.ctx.pd_waits.done(&s.pass.key());
                    Outcome::complete(format!("member {id} left PD"))
                }
                // Absent without our removal: asked (PD answers an unknown ID with an
                // error), so that "gone" is judged on a view read after our request.
                None => remove(s, id, &observed, "it is deleted").await,
            }
        }
    }
}

/// The view a destructive step may act on: fresh, from the PD whose cluster ID the
/// Cluster recorded. `Err` with the outcome that holds the step (and says why).
pub fn fresh_and_right_pd(s: &mut PdState) -> Result<Observed, Outcome> {
    let Some(cluster) = s.pass.cluster.as_ref() else {
        return Err(Outcome::wait("the Cluster is not loaded"));
    };
    if let Err(message) = destructive_allowed(cluster, s.pass.pd().as_ref()) {
        s.pass.not_synced(reasons::CLUSTER_ID_MISMATCH, format!("the member does not leave PD: {message}"));
        return Err(Outcome::wait(message));
    }
    match s.member.fresh() {
        Some(observed) => Ok(observed.clone()),
        None => {
            let message = "waiting for a fresh view of PD before a member change".to_string();
            s.pass.not_synced(reasons::PD_VIEW_NOT_FRESH, message.clone());
            hold_polling(s);
            Err(s.pass.retry_for_fresh_view(message))
        }
    }
}

/// Why member `name` may not leave PD now, if so (DESIGN.md section 5 item 4, and what
/// PD's etcd would refuse). The last member never leaves. A member that runs leaves only
/// while every other member is healthy (the rest then keep the quorum of the smaller
/// membership); one that is down (its data lost) leaves while the healthy others are a
/// majority of the members that stay.
pub fn removal_blocker(view: &PdView, name: &str) -> Option<String> {
    let total = view.members.len();
    if total <= 1 {
        return Some("it is the last PD member".into());
    }
    let others: Vec<(&str, bool)> = view
        .members
        .iter()
        .filter(|(n, _)| n.as_str() != name)
        .map(|(n, m)| (n.as_str(), m.healthy == Some(true)))
        .collect();
    let running = view.member(name).is_some_and(|m| m.healthy == Some(true));
    if running {
        let unhealthy: Vec<&str> = others.iter().filter(|(_, h)| !h).map(|(n, _)| *n).collect();
        return (!unhealthy.is_empty()).then(|| format!("members {} are not healthy", unhealthy.join(", ")));
    }
    let healthy = others.iter().filter(|(_, h)| *h).count();
    let quorum = others.len() / 2 + 1;
    (healthy < quorum).then(|| {
        format!("{healthy} of the {} other members are healthy; the membership left needs {quorum}", others.len())
    })
}

/// Another instance of the cluster whose member removal the operator asked for and PD
/// still lists: one member change at a time.
fn other_removal(s: &PdState, view: &PdView) -> Option<String> {
    let cluster = s.pass.object.as_ref()?.cluster_name();
    let selector = std::collections::BTreeMap::from([(LABEL_CLUSTER.to_string(), cluster)]);
    let pds = s.pass.ctx.caches.list::<PD>(&s.pass.namespace, &selector);
    pds.iter().filter(|p| p.name_any() != s.pass.name).find_map(|p| {
        let id: u64 = p.annotations().get(ANNOTATION_MEMBER_REMOVAL)?.parse().ok()?;
        view.member_by_id(id).map(|_| format!("member {id} of {} is leaving PD first", p.name_any()))
    })
}

/// Takes member `id` (listed in `observed`) out of PD, `because` says why: the gates,
/// leadership handed over, the ID recorded on the instance, then `DELETE
/// /members/id/{id}`. Returns how the task goes on.
pub async fn remove(s: &mut PdState, id: u64, observed: &Observed, because: &str) -> Outcome {
    let Some(pd) = s.pass.pd() else {
        return Outcome::wait("the cluster's PD is not registered");
    };
    let view = &observed.view;
    let listed = view.member_by_id(id).map(|m| m.member.name.clone());
    if let Some(member) = &listed {
        let held = other_removal(s, view).or_else(|| removal_blocker(view, member));
        if let Some(why) = held {
            return refuse(s, format!("member {id} ({member}) may not leave PD now: {why}")).await;
        }
        // A running member may lead: PD's members are read afresh right before the
        // removal (leadership may have moved since the cache's poll), and if it leads,
        // leadership goes to the other member Ready longest first.
        if view.member(member).is_some_and(|m| m.healthy == Some(true)) {
            let others: Vec<&str> = view
                .members
                .iter()
                .filter(|(n, m)| n.as_str() != member && m.healthy == Some(true))
                .map(|(n, _)| n.as_str())
                .filter(|n| member_ready_since(s, n).is_some())
                .collect();
            if others.is_empty() {
                return refuse(s, format!("member {id} ({member}): no other member's Pod is Ready to lead")).await;
            }
            match hand_over_leadership(s, &pd, member, &others, ("Delete", "it leaves PD")).await {
                Ok(Some(message)) => return moving(s, message),
                Ok(None) => {}
                Err((_, message)) => return refuse(s, message).await,
            }
        }
    }
    if s.removal_asked() != Some(id)
        && let Err(outcome) = s.annotate(ANNOTATION_MEMBER_REMOVAL, Some(id.to_string())).await
    {
        return outcome;
    }
    let message = match pd.delete_member_by_id(id).await {
        Ok(()) => {
            let message = format!("asked PD to remove member {id} ({because}); waiting for PD to no longer list it");
            s.pass.event("RemovedMember", "Delete", format!("removed PD member {id}: {because}")).await;
            message
        }
        Err(error) => format!("PD answered the removal of member {id} with: {error}; looking again"),
    };
    moving(s, message)
}

/// Leaving is under way: Synced says so, and PD is polled fast.
fn moving(s: &mut PdState, message: String) -> Outcome {
    s.pass.not_synced(reasons::MEMBER_REMOVING, message.clone());
    hold_polling(s);
    s.pass.retry_for_fresh_view(message)
}

async fn refuse(s: &mut PdState, message: String) -> Outcome {
    if s.pass.reason_as_read(types::SYNCED) != Some(reasons::MEMBER_REMOVAL_BLOCKED) {
        s.pass.warning(reasons::MEMBER_REMOVAL_BLOCKED, "Delete", message.clone()).await;
    }
    s.pass.not_synced(reasons::MEMBER_REMOVAL_BLOCKED, message.clone());
    hold_polling(s);
    Outcome::retry(RESTART_RECHECK, message)
}

/// What holds the step is read from PD's view: the cache polls fast meanwhile.
fn hold_polling(s: &PdState) {
    if let Some(pd) = s.pass.pd() {
        s.pass.ctx.pd_waits.waiting(&s.pass.key(), &pd.cache, "a member change");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd::tasks::testkit::{Kit, NAME};
    use crate::pd::tasks::{data_removed, remove_data};
    use crate::testing::FakePd;
    use tikv_operator_task::{OutcomeKind, if_};

    const JOIN: &str = "--join=http://pd-pd-b.pd-pd-peer.default.svc:2379";

    fn tasks() -> Vec<Node<PdState>> {
        vec![
            leave(),
            if_(member_left(), [remove_data(), if_(data_removed(), [crate::common::tasks::release_finalizer()])]),
        ]
    }

    #[tokio::test]
    async fn a_deleted_follower_leaves_pd_by_its_recorded_id_before_its_pod_and_volumes_go() {
        let kit = Kit::new("pd-pd-b", JOIN).await;
        kit.delete().await;
        let (s, report) = kit.pass(tasks()).await;
        assert_eq!(report.entry("leave").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        assert_eq!(kit.pd.write_log(), ["delete_member_by_id(1)"]);
        assert_eq!(kit.writes(), ["patch core.tikv.org/pds/pd-a"], "the removal recorded first, nothing deleted");
        assert_eq!(kit.live().await.annotations().get(ANNOTATION_MEMBER_REMOVAL).map(String::as_str), Some("1"));
        assert_eq!(s.pass.unsynced[0].reason, reasons::MEMBER_REMOVING);
        assert!(!report.ran("remove_data"), "{report}");

        // A fresh view without member 1: the Pod goes, then the PVC, then the finalizer.
        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(report.entry("leave").unwrap().message(), "member 1 left PD");
        assert_eq!(kit.writes(), ["delete pods/pd-pd-a"], "{report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(kit.writes(), ["delete persistentvolumeclaims/data-pd-pd-a"], "{report}");
        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(kit.writes(), ["patch core.tikv.org/pds/pd-a"], "the finalizer, last: {report}");
        assert!(kit.env.list::<PD>().await.is_empty());
    }

    #[tokio::test]
    async fn a_left_member_s_pod_stuck_on_a_dead_node_goes_without_grace() {
        use k8s_openapi::api::core::v1::Pod;
        use kube::Api;
        let kit = Kit::new("pd-pd-b", JOIN).await;
        kit.delete().await;
        kit.pass(tasks()).await;
        assert_eq!(kit.pd.write_log(), ["delete_member_by_id(1)"]);
        // Its node is gone: a deletion of its Pod never finishes.
        let pods: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        let mut pod = pods.get("pd-pd-a").await.unwrap();
        pods.delete("pd-pd-a", &Default::default()).await.unwrap();
        pod.metadata = kube::api::ObjectMeta {
            name: pod.metadata.name.clone(),
            labels: pod.metadata.labels.clone(),
            ..Default::default()
        };
        pod.spec.get_or_insert_default().node_name = Some("node-gone".into());
        pod.status = None;
        pods.create(&Default::default(), &pod).await.unwrap();
        pods.delete("pd-pd-a", &Default::default()).await.unwrap();
        assert!(pods.get("pd-pd-a").await.unwrap().metadata.deletion_timestamp.is_some());

        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(kit.writes(), ["delete pods/pd-pd-a"], "{report}");
        let events = kit.env.events().await;
        let forced = events.iter().find(|e| e.1 == "ForceDeletedPod").map(|e| e.2.clone()).unwrap_or_default();
        assert!(
            forced.contains("its node node-gone is gone") && forced.ends_with("its member has left PD"),
            "{events:?}"
        );
        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(kit.writes(), ["delete persistentvolumeclaims/data-pd-pd-a"], "then its volume: {report}");
    }

    #[tokio::test]
    async fn the_leader_hands_leadership_to_the_member_ready_longest_before_it_leaves() {
        let kit = Kit::new("pd-pd-a", JOIN).await;
        kit.delete().await;
        let (_, report) = kit.pass(tasks()).await;
        let entry = report.entry("leave").unwrap();
        assert_eq!(entry.kind(), Some(OutcomeKind::Retry), "{report}");
        assert_eq!(entry.message(), "member pd-pd-a leads PD: leadership moves to pd-pd-b before it leaves PD");
        assert_eq!(kit.pd.write_log(), ["transfer_leader(pd-pd-b)"]);
        assert_eq!(kit.writes(), Vec::<String>::new());

        let (_, _) = kit.pass(tasks()).await;
        assert_eq!(kit.pd.write_log(), ["delete_member_by_id(1)"], "no longer the leader: it goes");
    }

    #[tokio::test]
    async fn an_unhealthy_other_member_or_another_removal_holds_it_with_a_condition_and_one_event() {
        let kit = Kit::new("pd-pd-b", JOIN).await;
        kit.delete().await;
        kit.pd.member_unhealthy("pd-pd-c", true);
        let (s, report) = kit.pass(tasks()).await;
        assert_eq!(report.entry("leave").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        let message = "member 1 (pd-pd-a) may not leave PD now: members pd-pd-c are not healthy";
        assert_eq!(
            (s.pass.unsynced[0].reason, s.pass.unsynced[0].message.as_str()),
            (reasons::MEMBER_REMOVAL_BLOCKED, message)
        );
        assert_eq!((kit.pd.write_log(), kit.writes()), (Vec::<String>::new(), Vec::<String>::new()));
        assert_eq!(
            kit.env.events().await,
            [("Warning".into(), reasons::MEMBER_REMOVAL_BLOCKED.into(), message.into())]
        );
        kit.pass(tasks()).await;
        assert_eq!(kit.env.events().await.len(), 1, "reported once");

        // Another instance's removal still listed in PD holds this one.
        kit.pd.member_unhealthy("pd-pd-c", false);
        let mut other = crate::testing::sample_pd("pd-c", "pd");
        other.metadata.annotations = Some([(ANNOTATION_MEMBER_REMOVAL.to_string(), "3".to_string())].into());
        kit.env.create(other).await;
        let (s, _) = kit.pass(tasks()).await;
        assert_eq!(
            s.pass.unsynced[0].message,
            "member 1 (pd-pd-a) may not leave PD now: member 3 of pd-c is leaving PD first"
        );
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_stale_view_or_another_pds_cluster_id_changes_nothing() {
        let kit = Kit::new("pd-pd-b", JOIN).await;
        kit.delete().await;
        kit.pd.unreachable(true);
        let _ = kit.handle.cache.refresh().await;
        kit.env.synced().await;
        let mut all = vec![
            crate::common::tasks::load_object(),
            crate::common::tasks::load_cluster(),
            crate::common::tasks::load_pod(),
            crate::pd::tasks::member(),
        ];
        all.extend(tasks());
        kit.env.sim.requests().reset();
        let mut s = PdState::new(kit.env.ctx.clone(), "default", NAME);
        let report = tikv_operator_task::Runner::new("pd", all).run("k", &mut s).await;
        assert_eq!(report.entry("leave").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::PD_VIEW_NOT_FRESH);
        assert_eq!((kit.pd.write_log(), kit.env.writes()), (Vec::<String>::new(), 0));

        kit.pd.unreachable(false);
        let mut cluster: tikv_operator_api::Cluster = kit.env.get("basic").await;
        cluster.status.get_or_insert_default().id = Some("1".into());
        let clusters: kube::Api<tikv_operator_api::Cluster> = kube::Api::namespaced(kit.env.client.clone(), "default");
        clusters.replace_status("basic", &Default::default(), &cluster).await.unwrap();
        let (s, _) = kit.pass(tasks()).await;
        assert_eq!(s.pass.unsynced[0].reason, reasons::CLUSTER_ID_MISMATCH);
        assert_eq!((kit.pd.write_log(), kit.writes()), (Vec::<String>::new(), Vec::<String>::new()));
    }

    #[tokio::test]
    async fn absent_counts_as_gone_only_after_the_operators_own_removal() {
        let kit = Kit::new("pd-pd-b", JOIN).await;
        kit.delete().await;
        // Someone else removed member 1: absent, yet not removed by us.
        kit.pd.remove_member(1);
        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(kit.pd.write_log(), ["delete_member_by_id(1)"], "asked, to judge on a view after it: {report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/pds/pd-a"]);
        assert!(report.entry("leave").unwrap().message().contains("PD answered the removal of member 1"), "{report}");
        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(report.entry("leave").unwrap().message(), "member 1 left PD");
        assert_eq!(kit.writes(), ["delete pods/pd-pd-a"]);
    }

    #[tokio::test]
    async fn a_member_that_never_joined_has_nothing_to_leave() {
        let kit = Kit::new("pd-pd-b", JOIN).await;
        kit.status(|st| st.id = None).await;
        kit.pd.remove_member(1);
        kit.delete().await;
        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(report.entry("leave").unwrap().message(), "pd-pd-a never joined PD");
        assert_eq!((kit.pd.write_log(), kit.writes()), (Vec::<String>::new(), vec!["delete pods/pd-pd-a".to_string()]));
    }

    #[tokio::test]
    async fn the_removal_gates() {
        async fn view(pd: FakePd) -> std::sync::Arc<PdView> {
            pd.fresh_handle().await.cache.snapshot().view.unwrap()
        }
        let one = FakePd::bootstrapped().member("a", 1);
        assert_eq!(removal_blocker(&*view(one).await, "a").as_deref(), Some("it is the last PD member"));
        let two = FakePd::bootstrapped().member("a", 1).member("b", 2);
        assert_eq!(removal_blocker(&*view(two).await, "a"), None, "two healthy members: one may go");
        let three = FakePd::bootstrapped().member("a", 1).member("b", 2).member("c", 3);
        three.member_unhealthy("a", true);
        let down = view(three.clone()).await;
        assert_eq!(removal_blocker(&down, "a"), None, "a member that is down goes while the rest keep quorum");
        assert_eq!(removal_blocker(&down, "b").as_deref(), Some("members a are not healthy"));
        three.member_unhealthy("b", true);
        let two_down = view(three).await;
        assert_eq!(
            removal_blocker(&two_down, "a").as_deref(),
            Some("1 of the 2 other members are healthy; the membership left needs 2")
        );
    }

    #[tokio::test]
    async fn a_member_whose_id_is_not_recorded_waits_and_one_rejoined_under_its_name_leaves_too() {
        let kit = Kit::new("pd-pd-b", JOIN).await;
        kit.status(|st| st.id = None).await;
        kit.delete().await;
        let (_, report) = kit.pass(tasks()).await;
        let entry = report.entry("leave").unwrap();
        assert_eq!(entry.kind(), Some(OutcomeKind::Wait), "{report}");
        assert_eq!(entry.message(), "the member ID is not recorded yet; this pass records it");
        assert_eq!((kit.pd.write_log(), kit.writes()), (Vec::<String>::new(), Vec::<String>::new()));

        // Recorded 1, removal asked, but the instance joined again as 9 meanwhile.
        kit.status(|st| st.id = Some("1".into())).await;
        let api: kube::Api<PD> = kube::Api::namespaced(kit.env.client.clone(), "default");
        let patch = serde_json::json!({"metadata": {"annotations": {ANNOTATION_MEMBER_REMOVAL: "1"}}});
        api.patch(NAME, &Default::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
        kit.pd.rejoin_member("pd-pd-a", 9);
        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(kit.pd.write_log(), ["delete_member_by_id(9)"], "{report}");
        assert_eq!(kit.live().await.annotations().get(ANNOTATION_MEMBER_REMOVAL).map(String::as_str), Some("9"));
        let (_, report) = kit.pass(tasks()).await;
        assert_eq!(report.entry("leave").unwrap().message(), "member 1 left PD");
        assert_eq!(kit.writes(), ["delete pods/pd-pd-a"]);
    }

    #[tokio::test]
    async fn a_leader_with_no_other_ready_pod_to_take_over_stays() {
        let kit = Kit::new("pd-pd-a", JOIN).await;
        kit.delete().await;
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(kit.env.client.clone(), "default");
        for other in ["pd-pd-b", "pd-pd-c"] {
            let mut pod = pods.get(other).await.unwrap();
            pod.status.as_mut().unwrap().conditions = None;
            pods.replace_status(other, &Default::default(), &pod).await.unwrap();
        }
        let (s, _) = kit.pass(tasks()).await;
        assert_eq!(s.pass.unsynced[0].reason, reasons::MEMBER_REMOVAL_BLOCKED);
        assert_eq!(s.pass.unsynced[0].message, "member 1 (pd-pd-a): no other member's Pod is Ready to lead");
        assert_eq!((kit.pd.write_log(), kit.writes()), (Vec::<String>::new(), Vec::<String>::new()));
    }
}
