//! What the TiKV instance controller's tasks share during one pass.

use std::sync::Arc;

use tikv_operator_api::TiKV;
use tikv_operator_pd::NodeState;

use crate::common::instance::{InstanceParts, InstanceState};
use crate::common::{Pass, PassState};
use crate::context::Context;

pub use crate::pd::state::PdRead;

/// The store as PD reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreInfo {
    pub id: u64,
    pub node_state: NodeState,
    /// Up with a recent heartbeat.
    pub up: bool,
}

pub struct TikvState {
    pub pass: Pass<TiKV>,
    pub parts: InstanceParts,
    pub pd_read: PdRead,
    pub store: Option<StoreInfo>,
}

impl TikvState {
    pub fn new(ctx: Arc<Context>, namespace: &str, name: &str) -> Self {
        Self {
            pass: Pass::new(ctx, namespace, name),
            parts: InstanceParts::default(),
            pd_read: PdRead::NotRead,
            store: None,
        }
    }
}

impl PassState for TikvState {
    type Object = TiKV;
    fn pass(&self) -> &Pass<TiKV> {
        &self.pass
    }
    fn pass_mut(&mut self) -> &mut Pass<TiKV> {
        &mut self.pass
    }
}

impl InstanceState for TikvState {
    type I = TiKV;
    fn parts(&self) -> &InstanceParts {
        &self.parts
    }
    fn parts_mut(&mut self) -> &mut InstanceParts {
        &mut self.parts
    }
}
