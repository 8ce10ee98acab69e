//! What the PDGroup controller's tasks share during one pass.

use std::sync::Arc;

use tikv_operator_api::{PD, PDGroup};

use crate::common::group::{GroupParts, GroupState};
use crate::common::{Pass, PassState};
use crate::context::Context;

pub struct PdGroupState {
    pub pass: Pass<PDGroup>,
    pub group: GroupParts<PD>,
}

impl PdGroupState {
    pub fn new(ctx: Arc<Context>, namespace: &str, name: &str) -> Self {
        Self { pass: Pass::new(ctx, namespace, name), group: GroupParts::default() }
    }
}

impl PassState for PdGroupState {
    type Object = PDGroup;
    fn pass(&self) -> &Pass<PDGroup> {
        &self.pass
    }
    fn pass_mut(&mut self) -> &mut Pass<PDGroup> {
        &mut self.pass
    }
}

impl GroupState for PdGroupState {
    type G = PDGroup;
    fn group(&self) -> &GroupParts<PD> {
        &self.group
    }
    fn group_mut(&mut self) -> &mut GroupParts<PD> {
        &mut self.group
    }
}
