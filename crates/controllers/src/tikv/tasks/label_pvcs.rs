//! `label_pvcs`: once the store ID is known, the instance's PVCs carry it
//! (`tikv.org/store-id`), so the data on a volume is tied to its store: deletion removes
//! only the volumes of the store PD removed.
//!
//! Reads the PVCs from the watch cache. Writes: one merge patch per PVC missing the
//! label (with its resourceVersion), none when all carry it. A PVC labelled with another
//! store is reported, not relabelled. Outcomes: Complete; Retry on a conflict; Fail.

use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::json;
use tikv_operator_api::condition::reasons;
use tikv_operator_api::names::LABEL_STORE_ID;
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::patch_params;
use crate::common::instance::instance_pvcs;
use crate::error::is_conflict;
use crate::tikv::state::TikvState;

pub fn label_pvcs() -> Node<TikvState> {
    task("label_pvcs", |s: &mut TikvState| Box::pin(run(s)))
}

async fn run(s: &mut TikvState) -> Outcome {
    let Some(id) = s.store_id().map(|id| id.to_string()) else {
        return Outcome::complete("no store ID yet");
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
    let mut labelled = Vec::new();
    for pvc in instance_pvcs(s) {
        let name = pvc.name_any();
        match pvc.labels().get(LABEL_STORE_ID) {
            Some(label) if *label == id => {}
            Some(other) => {
                let message = format!("PVC {name} holds the data of store {other}, not of this instance's store {id}");
                s.pass.not_synced(reasons::VOLUME_MISMATCH, message);
            }
            None => {
                let patch =
                    json!({"metadata": {"labels": {LABEL_STORE_ID: id}, "resourceVersion": pvc.resource_version()}});
                match api.patch(&name, &patch_params(), &Patch::Merge(&patch)).await {
                    Ok(_) => labelled.push(name),
                    Err(error) if is_conflict(&error) => {
                        return Outcome::retry(
                            Duration::from_secs(1),
                            format!("PVC {name} changed meanwhile; retrying"),
                        );
                    }
                    Err(error) => return Outcome::fail(error),
                }
            }
        }
    }
    if labelled.is_empty() {
        Outcome::complete("labelled")
    } else {
        Outcome::complete(format!("labelled {}", labelled.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePd;
    use crate::tikv::tasks::testkit::{ADDR, Kit};
    use tikv_operator_pd::NodeState;

    #[tokio::test]
    async fn volumes_get_the_store_id_once_it_is_known() {
        let kit = Kit::new(FakePd::bootstrapped(), |_| {}).await;
        kit.pod_and_pvc(None).await;
        kit.pass([label_pvcs()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new(), "no store yet");

        let kit2 = Kit::new(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), |_| {}).await;
        kit2.pod_and_pvc(None).await;
        let (_, report) = kit2.pass([label_pvcs()]).await;
        assert_eq!(kit2.writes(), ["patch persistentvolumeclaims/data-tikv-tikv-abc123"], "{report}");
        let pvc: PersistentVolumeClaim = kit2.env.get("data-tikv-tikv-abc123").await;
        assert_eq!(pvc.labels().get(LABEL_STORE_ID).map(String::as_str), Some("5"));
        kit2.pass([label_pvcs()]).await;
        assert_eq!(kit2.writes(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_volume_of_another_store_is_reported_not_relabelled() {
        let kit = Kit::new(FakePd::bootstrapped().store(5, ADDR, NodeState::Serving), |_| {}).await;
        kit.pod_and_pvc(Some("9")).await;
        let (s, _) = kit.pass([label_pvcs()]).await;
        assert_eq!(kit.writes(), Vec::<String>::new());
        assert_eq!(s.pass.unsynced[0].reason, reasons::VOLUME_MISMATCH);
    }
}
