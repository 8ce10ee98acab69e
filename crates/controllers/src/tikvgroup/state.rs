//! What the TiKVGroup controller's tasks share during one pass.

use std::sync::Arc;

use tikv_operator_api::{PDGroup, TiKV, TiKVGroup};

use crate::common::group::{GroupParts, GroupState};
use crate::common::{Pass, PassState};
use crate::context::Context;

pub struct TikvGroupState {
    pub pass: Pass<TiKVGroup>,
    pub group: GroupParts<TiKV>,
    /// The PD groups of the cluster (upgrade ordering).
    pub pd_groups: Vec<PDGroup>,
}

impl TikvGroupState {
    pub fn new(ctx: Arc<Context>, namespace: &str, name: &str) -> Self {
        Self { pass: Pass::new(ctx, namespace, name), group: GroupParts::default(), pd_groups: Vec::new() }
    }
}

impl PassState for TikvGroupState {
    type Object = TiKVGroup;
    fn pass(&self) -> &Pass<TiKVGroup> {
        &self.pass
    }
    fn pass_mut(&mut self) -> &mut Pass<TiKVGroup> {
        &mut self.pass
    }
}

impl GroupState for TikvGroupState {
    type G = TiKVGroup;
    fn group(&self) -> &GroupParts<TiKV> {
        &self.group
    }
    fn group_mut(&mut self) -> &mut GroupParts<TiKV> {
        &mut self.group
    }
}
