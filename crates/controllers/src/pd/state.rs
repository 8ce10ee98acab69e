//! What the PD instance controller's tasks share during one pass.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use tikv_operator_api::{PD, PDGroup};

use crate::common::instance::{InstanceParts, InstanceState};
use crate::common::{Pass, PassState};
use crate::context::Context;

/// This member as PD reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: u64,
    pub healthy: Option<bool>,
    pub is_leader: bool,
}

/// What the pass learned from the PD cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PdRead {
    /// Not looked at (the pass stopped before).
    #[default]
    NotRead,
    /// The Cluster controller has not registered this cluster's PD yet.
    NotRegistered,
    /// No poll has succeeded yet.
    Unavailable,
    /// A view was read (perhaps stale: good enough for reporting).
    Read,
}

pub struct PdState {
    pub pass: Pass<PD>,
    pub parts: InstanceParts,
    pub group: Option<PDGroup>,
    /// Every PD instance of the group, this one included.
    pub peers: Vec<PD>,
    /// The Pods of the group, read by `pod` only while this instance has none (they
    /// carry the `--initial-cluster` list the cluster formed with).
    pub peer_pods: Vec<Pod>,
    pub pd_read: PdRead,
    pub member: Option<MemberInfo>,
}

impl PdState {
    pub fn new(ctx: Arc<Context>, namespace: &str, name: &str) -> Self {
        Self {
            pass: Pass::new(ctx, namespace, name),
            parts: InstanceParts::default(),
            group: None,
            peers: Vec::new(),
            peer_pods: Vec::new(),
            pd_read: PdRead::NotRead,
            member: None,
        }
    }

    pub fn bootstrapped(&self) -> bool {
        self.group.as_ref().is_some_and(|g| g.spec.bootstrapped)
    }
}

impl PassState for PdState {
    type Object = PD;
    fn pass(&self) -> &Pass<PD> {
        &self.pass
    }
    fn pass_mut(&mut self) -> &mut Pass<PD> {
        &mut self.pass
    }
}

impl InstanceState for PdState {
    type I = PD;
    fn parts(&self) -> &InstanceParts {
        &self.parts
    }
    fn parts_mut(&mut self) -> &mut InstanceParts {
        &mut self.parts
    }
}
