//! `lost_data`: a member whose data is lost leaves PD by its recorded ID and the same
//! instance joins again as a new member — the same PD cluster, never a new one, and no
//! quorum lost on the way.
//!
//! How the data is known to be lost: the member's data directory lives on the
//! instance's `data` PVC, so while the member recorded in `status.id` is healthy in PD
//! the UID of that PVC is recorded beside it (`status.dataVolumeUid`). A `data` PVC with
//! another UID later (the PVC was deleted and the operator created it anew) holds none
//! of that member's data. A crash-looping process alone proves nothing (PD exits for
//! many reasons, and "missing data or join a duplicated pd" is also what an initial
//! member started with `--join` says); a PVC the member never ran on does. The member
//! must also be down in PD (a member that still runs has its data).
//!
//! Then, with the checks of [`leave::remove`] (right PD, fresh view, one removal at a
//! time, the healthy members left a majority: a member that is down may go), the old
//! member is removed by its recorded ID, which the `member-removal` annotation records.
//! Once a fresh view no longer lists it, the instance's Pod — if it started with
//! `--initial-cluster`, which can never join again — is deleted; while the annotation
//! is on the instance its next Pod starts with `--join` (see [`crate::pd::render`]).
//! When PD lists a member under the instance's name with a new ID, that ID and the
//! PVC's UID are recorded and the annotation removed.
//!
//! Reads: the member view, `status`, the annotation, the PVCs (watch cache). Writes: PD
//! member deletion (through [`leave::remove`]), the instance's annotation, the Pod's
//! deletion (UID precondition), the status fields above (in `finally`), Events.
//! Outcomes: Complete when nothing is lost; Retry while the replacement goes on (PD is
//! polled fast); Wait for the pod or PVC to go; Fail on unexpected API errors.

use kube::ResourceExt;
use tikv_operator_api::condition::reasons;
use tikv_operator_api::names::{ANNOTATION_MEMBER_REMOVAL, pvc_name};
use tikv_operator_task::{Node, Outcome, task};

use super::leave::{self, fresh_and_right_pd};
use crate::common::Instance;
use crate::common::instance::{delete_pod_by_uid, instance_pvcs, pod_terminating};
use crate::pd::render::Membership;
use crate::pd::state::{MemberView, PdState};

pub fn lost_data() -> Node<PdState> {
    task("lost_data", |s: &mut PdState| Box::pin(run(s)))
}

async fn run(s: &mut PdState) -> Outcome {
    let Some(name) = s.pass.object.as_ref().map(Instance::pod_name) else {
        return Outcome::complete("no instance");
    };
    let data = pvc_name("data", &name);
    let volume = instance_pvcs(s)
        .into_iter()
        .find(|p| p.name_any() == data && p.metadata.deletion_timestamp.is_none())
        .and_then(|p| p.uid());
    if let Some(old) = s.removal_asked() {
        return rejoin(s, &name, old, volume).await;
    }
    let recorded = s.pass.object.as_ref().and_then(|p| p.status.as_ref()).and_then(|st| st.data_volume_uid.clone());
    let (Some(id), Some(recorded), Some(volume)) = (s.recorded_id(), recorded, volume.clone()) else {
        // Recorded while the member with the recorded ID runs healthy on this volume.
        if let (MemberView::Found(member, _), Some(volume)) = (&s.member, volume)
            && member.healthy == Some(true)
            && s.recorded_id().is_none_or(|id| id == member.id)
        {
            s.pass.status.data_volume_uid = Some(volume);
        }
        return Outcome::complete("no data loss known");
    };
    if recorded == volume {
        return Outcome::complete("the member runs on the volume it joined with");
    }
    let why = format!("member {id}'s data was on PVC UID {recorded}; PVC {data} is now UID {volume}");
    if s.pass.reason_as_read(tikv_operator_api::condition::types::SYNCED) != Some(reasons::MEMBER_DATA_LOST) {
        s.pass.warning(reasons::MEMBER_DATA_LOST, "Replace", format!("{why}: replacing the member")).await;
    }
    if let MemberView::Found(member, _) = &s.member
        && member.id == id
        && member.healthy == Some(true)
    {
        let message = format!("{why}, yet the member runs: waiting for it to stop before replacing it");
        s.pass.not_synced(reasons::MEMBER_DATA_LOST, message.clone());
        return Outcome::wait(message);
    }
    let observed = match fresh_and_right_pd(s) {
        Ok(observed) => observed,
        Err(outcome) => return outcome,
    };
    s.pass.not_synced(reasons::MEMBER_DATA_LOST, format!("{why}: it leaves PD and joins again as a new member"));
    leave::remove(s, id, &observed, "its data is lost").await
}

/// The old member `old` was asked to leave: finish that, then let the instance join
/// anew and record its new identity.
async fn rejoin(s: &mut PdState, name: &str, old: u64, volume: Option<String>) -> Outcome {
    let observed = match fresh_and_right_pd(s) {
        Ok(observed) => observed,
        Err(outcome) => return outcome,
    };
    if observed.view.member_by_id(old).is_some() {
        return leave::remove(s, old, &observed, "its data is lost").await;
    }
    if let Some(member) = observed.view.member(name).filter(|m| m.member.member_id != old) {
        let Some(volume) = volume else {
            return Outcome::wait("the new member's data PVC is not in the cache yet");
        };
        let id = member.member.member_id;
        s.pass.status.id = Some(id.to_string());
        s.pass.status.data_volume_uid = Some(volume);
        if let Err(outcome) = s.annotate(ANNOTATION_MEMBER_REMOVAL, None).await {
            return outcome;
        }
        let message = format!("joined PD again as member {id} in place of member {old}, whose data was lost");
        s.pass.event("MemberReplaced", "Replace", message.clone()).await;
        return Outcome::complete(message);
    }
    let waiting = format!("member {old} left PD; waiting for this instance to join again as a new member");
    s.pass.not_synced(reasons::MEMBER_DATA_LOST, waiting.clone());
    if let Some(pd) = s.pass.pd() {
        s.pass.ctx.pd_waits.waiting(&s.pass.key(), &pd.cache, "a member to join again");
    }
    if let Some(pod) = s.parts.pod.clone() {
        if pod_terminating(&pod) {
            return Outcome::wait(format!("pod {} is terminating; waiting for it to go", pod.name_any()));
        }
        // A Pod started with the initial member list can never join again: it goes, and
        // the next one joins. One started with --join joins at its next restart.
        if matches!(Membership::from_pod(&pod), Some(Membership::Initial(_))) {
            if let Err(outcome) = delete_pod_by_uid(s, &pod, None).await {
                return outcome;
            }
            let message = format!("deleted pod {}: its next start joins PD as a new member", pod.name_any());
            s.pass.event("DeletedPod", "Replace", message.clone()).await;
            return Outcome::wait(message);
        }
    }
    s.pass.retry_for_fresh_view(waiting)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd::tasks::testkit::{Kit, member_pod};
    use tikv_operator_task::OutcomeKind;

    const INITIAL: &str = "--initial-cluster=pd-pd-a=http://a:2380,pd-pd-b=http://b:2380,pd-pd-c=http://c:2380";

    async fn pvc_uid(kit: &Kit) -> String {
        let pvc: k8s_openapi::api::core::v1::PersistentVolumeClaim = kit.env.get("data-pd-pd-a").await;
        pvc.uid().unwrap()
    }

    #[tokio::test]
    async fn the_volume_a_healthy_member_runs_on_is_recorded_once() {
        let kit = Kit::new("pd-pd-b", INITIAL).await;
        let (_, report) = kit.pass([lost_data()]).await;
        assert_eq!(report.entry("lost_data").unwrap().message(), "no data loss known");
        let uid = pvc_uid(&kit).await;
        assert_eq!(kit.live().await.status.unwrap().data_volume_uid, Some(uid));
        assert_eq!(kit.env.write_log(), ["update core.tikv.org/pds/status/pd-a"]);
        let (_, report) = kit.pass([lost_data()]).await;
        assert_eq!(report.entry("lost_data").unwrap().message(), "the member runs on the volume it joined with");
        assert_eq!((kit.env.writes(), kit.pd.write_log()), (0, Vec::<String>::new()));
    }

    #[tokio::test]
    async fn a_member_whose_volume_changed_leaves_pd_and_joins_again_as_a_new_member() {
        let kit = Kit::new("pd-pd-b", INITIAL).await;
        kit.status(|st| st.data_volume_uid = Some("uid-of-the-lost-pvc".into())).await;
        // Still running: its data is where it runs; nothing happens yet.
        let (s, report) = kit.pass([lost_data()]).await;
        assert_eq!(report.entry("lost_data").unwrap().kind(), Some(OutcomeKind::Wait), "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::MEMBER_DATA_LOST);
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());

        // Down (its process refuses to start): removed by its recorded ID.
        kit.pd.member_unhealthy("pd-pd-a", true);
        let (s, report) = kit.pass([lost_data()]).await;
        assert_eq!(report.entry("lost_data").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        assert_eq!(kit.pd.write_log(), ["delete_member_by_id(1)"]);
        assert_eq!(kit.writes(), ["patch core.tikv.org/pds/pd-a"], "the removal is recorded first");
        assert_eq!(s.pass.unsynced[0].reason, reasons::MEMBER_DATA_LOST);
        let events: Vec<String> = kit.env.events().await.into_iter().map(|e| e.1).collect();
        assert_eq!(events, ["MemberDataLost", "RemovedMember"], "the loss is announced once");

        // Gone: its Pod (started with the initial list) goes; the next one joins.
        let (_, report) = kit.pass([lost_data()]).await;
        assert_eq!(kit.writes(), ["delete pods/pd-pd-a"], "{report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
        let (s, report) = kit.pass([lost_data()]).await;
        assert_eq!(report.entry("lost_data").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        assert_eq!(kit.writes(), Vec::<String>::new());
        assert_eq!(
            s.pass.unsynced[0].message,
            "member 1 left PD; waiting for this instance to join again as a new member"
        );

        // Joined as member 9: recorded with its volume, the annotation removed.
        member_pod(&kit.env, "pd-pd-a", "2026-02-01T00:00:00Z", "--join=http://pd-pd-b:2379").await;
        kit.pd.rejoin_member("pd-pd-a", 9);
        let (_, report) = kit.pass([lost_data()]).await;
        assert_eq!(
            report.entry("lost_data").unwrap().message(),
            "joined PD again as member 9 in place of member 1, whose data was lost"
        );
        assert_eq!(kit.writes(), ["patch core.tikv.org/pds/pd-a"]);
        let live = kit.live().await;
        assert!(!live.annotations().contains_key(ANNOTATION_MEMBER_REMOVAL));
        let status = live.status.unwrap();
        assert_eq!((status.id, status.data_volume_uid), (Some("9".into()), Some(pvc_uid(&kit).await)));
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_lost_member_is_not_removed_while_the_rest_could_not_keep_quorum() {
        let kit = Kit::new("pd-pd-b", INITIAL).await;
        kit.status(|st| st.data_volume_uid = Some("uid-of-the-lost-pvc".into())).await;
        kit.pd.member_unhealthy("pd-pd-a", true);
        kit.pd.member_unhealthy("pd-pd-c", true);
        let (s, _) = kit.pass([lost_data()]).await;
        assert_eq!((kit.pd.write_log(), kit.writes()), (Vec::<String>::new(), Vec::<String>::new()));
        let blocked = s.pass.unsynced.iter().find(|f| f.reason == reasons::MEMBER_REMOVAL_BLOCKED).unwrap();
        assert_eq!(
            blocked.message,
            "member 1 (pd-pd-a) may not leave PD now: 1 of the 2 other members are healthy; the membership left needs 2"
        );
    }

    #[tokio::test]
    async fn a_pod_started_with_join_is_kept_to_join_at_its_next_start() {
        let kit = Kit::new("pd-pd-b", "--join=http://pd-pd-b:2379").await;
        kit.status(|st| st.data_volume_uid = Some("uid-of-the-lost-pvc".into())).await;
        kit.pd.member_unhealthy("pd-pd-a", true);
        kit.pass([lost_data()]).await;
        assert_eq!(kit.pd.write_log(), ["delete_member_by_id(1)"]);
        let (_, report) = kit.pass([lost_data()]).await;
        assert_eq!(report.entry("lost_data").unwrap().kind(), Some(OutcomeKind::Retry), "{report}");
        assert_eq!((kit.pd.write_log(), kit.writes()), (Vec::<String>::new(), Vec::<String>::new()));
    }

    #[tokio::test]
    async fn a_lost_member_someone_else_removed_is_asked_once_then_rejoins() {
        let kit = Kit::new("pd-pd-b", INITIAL).await;
        kit.status(|st| st.data_volume_uid = Some("uid-of-the-lost-pvc".into())).await;
        kit.pd.remove_member(1);
        let (_, report) = kit.pass([lost_data()]).await;
        assert_eq!(kit.pd.write_log(), ["delete_member_by_id(1)"], "{report}");
        assert_eq!(kit.writes(), ["patch core.tikv.org/pds/pd-a"]);
        let (_, report) = kit.pass([lost_data()]).await;
        assert_eq!(kit.writes(), ["delete pods/pd-pd-a"], "{report}");
    }
}
