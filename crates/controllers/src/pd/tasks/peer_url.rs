//! `peer_url`: after a TLS switch, moves the peer URL PD stores for this member to the
//! new scheme (see [`render::peer_urls`] for the plan).
//!
//! Reads: the plan (from the pass's PD view, or status), the live Pod's recorded peer
//! listeners, this member from a fresh PD view. Writes: etcd's MemberUpdate through PD
//! (`POST /v3/cluster/member/update`, fenced), an Event. Only once the Pod runs, is
//! Ready and listens at the new URL as well as the old one: PD then dials it at the
//! new URL at once and the member never stops being reachable. The next pass renders
//! the Pod without the old listener, and `restart` restarts it under its usual gates.
//! Outcomes: Complete when nothing is to change, or while the Pod is not there yet
//! (`restart` brings it); Retry after the update (to see PD store it), while the view
//! is not fresh, or when PD refuses (its words in Synced, `PeerURLPending`).
//!
//! [`render::peer_urls`]: crate::pd::render::peer_urls

use kube::ResourceExt;
use serde_json::Value;
use tikv_operator_api::condition::reasons;
use tikv_operator_api::names;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::instance::{pod_ready_since, pod_running, pod_terminating};
use crate::pd::state::{MemberView, PEER_LISTEN_INTENT, PdState};

pub fn peer_url() -> Node<PdState> {
    task("peer_url", |s: &mut PdState| Box::pin(run(s)))
}

async fn run(s: &mut PdState) -> Outcome {
    let Some(plan) = s.peer_urls() else { return Outcome::complete("no instance") };
    let Some(target) = plan.update_to.clone() else {
        return Outcome::complete("PD stores the peer URL the member is rendered with");
    };
    let stored = s.stored_peer_url().unwrap_or_default().to_owned();
    let pending = format!("PD dials this member at {stored}; it is to be {target}");
    let Some(pod) = s.parts.pod.clone() else {
        return Outcome::complete(held(s, format!("{pending}: waiting for the pod")));
    };
    if pod_terminating(&pod) || !pod_running(&pod) || pod_ready_since(&pod).is_none() {
        return Outcome::complete(held(
            s,
            format!("{pending}: waiting for pod {} to run and be Ready", pod.name_any()),
        ));
    }
    if listens(&pod) != Some(plan.listen.clone()) {
        return Outcome::complete(held(
            s,
            format!("{pending}: pod {} restarts to listen at both first", pod.name_any()),
        ));
    }
    let id = match &s.member {
        MemberView::Found(member, observed) if observed.is_fresh() => member.id,
        _ => {
            let message = held(s, format!("{pending}: waiting for a fresh view of PD's members"));
            return s.pass.retry_for_fresh_view(message);
        }
    };
    let Some(pd) = s.pass.pd() else {
        return Outcome::wait(held(s, format!("{pending}: the cluster's PD is not registered")));
    };
    // PD's answer changes the member's URL in the next poll (a change event); this is the fallback.
    let recheck = s.pass.ctx.timing().restart_recheck;
    match pd.update_member_peer_urls(id, std::slice::from_ref(&target)).await {
        Ok(()) => {
            let note = format!("PD now dials member {id} at {target} (was {stored})");
            s.pass.event("PeerURLChanged", "UpdatePeerURL", note.clone()).await;
            Outcome::retry(recheck, held(s, format!("{note}; the pod restarts without the old listener next")))
        }
        Err(error) => Outcome::retry(recheck, held(s, format!("{pending}: PD refused the change: {error}"))),
    }
}

/// Records why the member is not in sync yet (`Synced` shows a pass's first finding,
/// so there is one per pass, with the whole story) and returns the message.
fn held(s: &mut PdState, message: String) -> String {
    s.pass.not_synced(reasons::PEER_URL_PENDING, message.clone());
    message
}

/// The peer listeners the live Pod was created with (its recorded restart intent).
fn listens(pod: &k8s_openapi::api::core::v1::Pod) -> Option<Vec<String>> {
    let recorded = pod.annotations().get(names::ANNOTATION_RESTART_INTENT)?;
    let intent: Value = serde_json::from_str(recorded).ok()?;
    serde_json::from_value(intent.get(PEER_LISTEN_INTENT)?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd::tasks::testkit::Kit;
    use k8s_openapi::api::core::v1::Pod;
    use kube::Api;
    use kube::api::{Patch, PatchParams};
    use serde_json::json;
    use tikv_operator_task::OutcomeKind;

    const HOST: &str = "pd-pd-a.pd-pd-peer.default.svc";

    /// A plain member (its Pod Ready) of a cluster whose TLS was turned on: PD stores
    /// `http://…:2380`, the pod listens where `listen` says.
    async fn kit(listen: &[&str]) -> Kit {
        let kit = Kit::new("pd-pd-b", "--join=http://pd-pd-b:2379").await;
        kit.pd.member_peer_urls("pd-pd-a", &[&format!("http://{HOST}:2380")]);
        let mut cluster: tikv_operator_api::Cluster = kit.env.get("basic").await;
        cluster.status.get_or_insert_default().pd = Some("https://pd-pd.default.svc:2379".into());
        let clusters: Api<tikv_operator_api::Cluster> = Api::namespaced(kit.env.client.clone(), "default");
        clusters.replace_status("basic", &Default::default(), &cluster).await.unwrap();
        let intent = json!({PEER_LISTEN_INTENT: listen}).to_string();
        let pods: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        let patch = json!({"metadata": {"annotations": {names::ANNOTATION_RESTART_INTENT: intent}}});
        pods.patch("pd-pd-a", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        kit
    }

    #[tokio::test]
    async fn a_member_listening_at_both_urls_gets_the_new_one_in_pd() {
        let kit = kit(&["http://0.0.0.0:2380", "https://0.0.0.0:2381"]).await;
        let (state, report) = kit.pass([peer_url()]).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry, "{report}");
        assert_eq!(kit.pd.write_log(), [format!("update_member_peer_urls(1, https://{HOST}:2381)")]);
        assert_eq!(kit.writes(), Vec::<String>::new(), "nothing else is written");
        assert_eq!(state.pass.unsynced[0].reason, reasons::PEER_URL_PENDING);
        assert!(kit.env.events().await.iter().any(|e| e.1 == "PeerURLChanged"), "the change is announced");

        // PD stores it: nothing left to do, and the next render listens at the new URL only.
        let (state, report) = kit.pass([peer_url()]).await;
        assert_eq!(report.entry("peer_url").unwrap().message(), "PD stores the peer URL the member is rendered with");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
        assert_eq!(state.peer_urls().unwrap().listen, ["https://0.0.0.0:2381"]);
        let live = kit.live().await;
        assert_eq!(live.status.unwrap().peer_urls, Vec::<String>::new(), "status is written by `conditions`");
    }

    #[tokio::test]
    async fn a_pod_not_yet_listening_at_the_new_url_is_left_to_restart() {
        let kit = kit(&["http://0.0.0.0:2380"]).await;
        let (state, report) = kit.pass([peer_url()]).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(
            report.entry("peer_url").unwrap().message(),
            format!(
                "PD dials this member at http://{HOST}:2380; it is to be https://{HOST}:2381: pod pd-pd-a restarts to listen at both first"
            )
        );
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "PD is not told yet");
        assert_eq!(state.pass.unsynced[0].reason, reasons::PEER_URL_PENDING);
    }

    #[tokio::test]
    async fn a_refusal_is_reported_and_retried() {
        let kit = kit(&["http://0.0.0.0:2380", "https://0.0.0.0:2381"]).await;
        kit.pd.fail_next(
            "update_member_peer_urls",
            tikv_operator_pd::PdError::NoLeader { status: 503, message: "etcdserver: request timed out".into() },
        );
        let (state, report) = kit.pass([peer_url()]).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry, "{report}");
        assert!(
            state.pass.unsynced.iter().any(|u| u.message.contains("PD refused the change")),
            "{:?}",
            state.pass.unsynced
        );
        assert_eq!(state.pass.unsynced.len(), 1, "Synced shows a pass's first finding: the refusal is it");
        assert!(!kit.env.events().await.iter().any(|e| e.1 == "PeerURLChanged"));
    }

    #[tokio::test]
    async fn a_member_whose_url_has_the_scheme_in_force_is_left_alone() {
        let kit = Kit::new("pd-pd-b", "--join=http://pd-pd-b:2379").await;
        kit.pd.member_peer_urls("pd-pd-a", &[&format!("http://{HOST}:2380")]);
        let (state, report) = kit.pass([peer_url()]).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
        assert!(state.pass.unsynced.is_empty());
    }
}
