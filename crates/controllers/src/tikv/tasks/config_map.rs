//! `config_map`: the store's ConfigMap, rendered by [`render::config_map`] and applied
//! by the generic task (see [`crate::common::instance::config_map`]).

use tikv_operator_task::Node;

use crate::common::instance::{self, RenderedConfigMap};
use crate::common::render::RenderError;
use crate::tikv::render;
use crate::tikv::state::TikvState;

pub fn config_map() -> Node<TikvState> {
    instance::config_map(render_config_map)
}

fn render_config_map(s: &TikvState) -> Result<RenderedConfigMap, RenderError> {
    let tikv = s.pass.object.as_ref().ok_or(RenderError::NoGroup)?;
    render::config_map(tikv, s.pass.tls_enabled())
}
