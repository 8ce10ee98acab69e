//! `delete_pod`: a deleted instance whose store holds no data any more (removed in PD,
//! or never registered) loses its Pod, and the pass waits until the Pod is gone.
//!
//! Destructive: checked here against the safety contract (the right PD, a fresh view,
//! and the store removed — not merely absent — or never registered). Reads the Pod
//! `load_pod` read. Writes: DELETE of the Pod with a UID precondition (the Pod read,
//! not one re-created under its name since). Outcomes: Complete once gone; Wait while
//! it terminates or the contract refuses (the condition says why); Fail.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Preconditions};
use kube::{Api, ResourceExt};
use tikv_operator_api::condition::reasons;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::instance::pod_terminating;
use crate::error::is_not_found;
use crate::tikv::state::{Refusal, TikvState};

pub fn delete_pod() -> Node<TikvState> {
    task("delete_pod", |s: &mut TikvState| Box::pin(run(s)))
}

/// Whether the store's data may go (DESIGN.md section 5 items 1–3), or why not.
pub fn data_may_go(s: &TikvState) -> Result<(), Refusal> {
    s.destructive_allowed()?;
    if s.store_removed() || s.never_registered() {
        return Ok(());
    }
    let message = match s.store_id() {
        Some(id) => format!("store {id} is not removed in PD"),
        None => "a store may still register for this instance".to_string(),
    };
    Err(Refusal { reason: reasons::POD_NOT_DELETED, message })
}

async fn run(s: &mut TikvState) -> Outcome {
    let Some(pod) = s.parts.pod.clone() else {
        s.cleanup.pod_gone = true;
        return Outcome::complete("no pod");
    };
    let name = pod.name_any();
    if pod_terminating(&pod) {
        return Outcome::wait(format!("pod {name} is terminating; waiting for it to go"));
    }
    if let Err(Refusal { reason, message }) = data_may_go(s) {
        s.pass.not_synced(reason, format!("pod {name} is kept: {message}"));
        return Outcome::wait(format!("pod {name} kept: {message}"));
    }
    let api: Api<Pod> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: pod.uid(), resource_version: None }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {
            s.pass.event("DeletedPod", "Delete", format!("deleted pod {name}: the store holds no data any more")).await;
            Outcome::wait(format!("deleted pod {name}; waiting for it to go"))
        }
        Err(error) if is_not_found(&error) => Outcome::wait(format!("pod {name} already gone; waiting for the cache")),
        Err(error) if crate::error::is_conflict(&error) => {
            Outcome::wait(format!("pod {name} was replaced meanwhile; waiting for the cache"))
        }
        Err(error) => Outcome::fail(error),
    }
}
