//! `pod`: the member's Pod, rendered by [`render::pod`] with the membership flag decided
//! by [`render::membership`] (initial member or join), applied by the generic task (see
//! [`crate::common::instance::pod`] for writes and outcomes). While the membership
//! cannot be decided yet (initial members missing, nobody to join), the Pod is not
//! created and the pass waits for the instances' events.

use tikv_operator_task::{Node, Outcome, task};

use crate::common::instance;
use crate::common::render::RenderError;
use crate::pd::render::{self, PodInputs};
use crate::pd::state::PdState;

pub fn pod() -> Node<PdState> {
    task("pod", |s: &mut PdState| {
        Box::pin(async move {
            if s.parts.pod.is_none()
                && let Err(reason) = membership(s)
            {
                s.pass.not_synced(tikv_operator_api::condition::reasons::POD_NOT_CREATED, reason.clone());
                return Outcome::wait(reason);
            }
            instance::run_pod(s, render_pod).await
        })
    })
}

fn membership(s: &PdState) -> Result<render::Membership, String> {
    let pd = s.pass.object.as_ref().ok_or("no instance")?;
    render::membership(pd, s.bootstrapped(), &s.peers, s.parts.pod.as_ref(), s.pass.tls_enabled())
}

fn render_pod(s: &PdState) -> Result<k8s_openapi::api::core::v1::Pod, RenderError> {
    let pd = s.pass.object.as_ref().ok_or(RenderError::NoGroup)?;
    let membership = membership(s).map_err(RenderError::InvalidConfig)?;
    let config_hash = s.parts.config_hash.clone().unwrap_or_default();
    render::pod(&PodInputs { pd, tls: s.pass.tls_enabled(), membership: &membership, config_hash: &config_hash })
}
