//! `pod`: the store's Pod, rendered by [`render::pod`] against the PD URL the Cluster
//! recorded, applied by the generic task (see [`crate::common::instance::pod`]).
//! Without a PD URL yet the Pod is not created: Wait for the Cluster's update.

use k8s_openapi::api::core::v1::Pod;
use tikv_operator_api::condition::reasons;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::instance;
use crate::common::render::RenderError;
use crate::tikv::render::{self, PodInputs};
use crate::tikv::state::TikvState;

fn pd_url(s: &TikvState) -> Option<String> {
    s.pass.cluster.as_ref().and_then(|c| c.status.as_ref()).and_then(|st| st.pd.clone())
}

pub fn pod() -> Node<TikvState> {
    task("pod", |s: &mut TikvState| {
        Box::pin(async move {
            if s.parts.pod.is_none() && pd_url(s).is_none() {
                s.pass.not_synced(reasons::POD_NOT_CREATED, "the Cluster has no PD URL yet");
                return Outcome::wait("the Cluster has no PD URL yet; waiting for it");
            }
            instance::run_pod(s, render_pod).await
        })
    })
}

fn render_pod(s: &TikvState) -> Result<Pod, RenderError> {
    let tikv = s.pass.object.as_ref().ok_or(RenderError::NoGroup)?;
    let pd_url = pd_url(s).unwrap_or_default();
    let config_hash = s.parts.config_hash.clone().unwrap_or_default();
    render::pod(&PodInputs { tikv, tls: s.pass.tls_enabled(), pd_url: &pd_url, config_hash: &config_hash })
}
