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

use super::delete_pvcs::instance_pvcs;
use crate::apply::patch_params;
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
