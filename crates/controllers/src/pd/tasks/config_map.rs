//! `config_map`: the member's ConfigMap, rendered by [`render::config_map`] and applied
//! by the generic task (see [`crate::common::instance::config_map`] for writes and
//! outcomes).

use tikv_operator_task::Node;

use crate::common::instance::{self, RenderedConfigMap};
use crate::common::render::RenderError;
use crate::pd::render;
use crate::pd::state::PdState;

pub fn config_map() -> Node<PdState> {
    instance::config_map(render_config_map)
}

fn render_config_map(s: &PdState) -> Result<RenderedConfigMap, RenderError> {
    let Some(pd) = &s.pass.object else {
        return Err(RenderError::InvalidConfig("no instance".into()));
    };
    render::config_map(pd, s.pass.tls_enabled())
}
