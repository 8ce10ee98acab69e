//! What the Cluster controller's tasks share during one pass.

use std::sync::Arc;

use tikv_operator_api::{Cluster, PDGroup, TiKVGroup};

use crate::common::{Pass, PassState};
use crate::context::Context;

pub struct ClusterState {
    pub pass: Pass<Cluster>,
    pub pd_groups: Vec<PDGroup>,
    pub tikv_groups: Vec<TiKVGroup>,
    pub groups_loaded: bool,
    /// The PD answers with another cluster ID than the one recorded.
    pub id_mismatch: Option<String>,
}

impl ClusterState {
    pub fn new(ctx: Arc<Context>, namespace: &str, name: &str) -> Self {
        Self {
            pass: Pass::new(ctx, namespace, name),
            pd_groups: Vec::new(),
            tikv_groups: Vec::new(),
            groups_loaded: false,
            id_mismatch: None,
        }
    }
}

impl PassState for ClusterState {
    type Object = Cluster;
    fn pass(&self) -> &Pass<Cluster> {
        &self.pass
    }
    fn pass_mut(&mut self) -> &mut Pass<Cluster> {
        &mut self.pass
    }
}
