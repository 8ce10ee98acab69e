//! What the PD instance controller's tasks share during one pass.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use tikv_operator_api::{PD, PDGroup};

use crate::common::instance::{InstanceParts, InstanceState};
use crate::common::pd_view::Observed;
use crate::common::{Pass, PassState};
use crate::context::Context;

/// This member as PD reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: u64,
    pub healthy: Option<bool>,
    pub is_leader: bool,
}

/// This instance's member as the pass found it in the PD cache, set by `member` and
/// read by every later task. Reporting may use any view; a destructive step must check
/// [`Observed::is_fresh`] (DESIGN.md section 5 item 2): a stale view never says "absent".
#[derive(Clone, Debug, Default, PartialEq)]
pub enum MemberView {
    /// Not looked at: the pass stopped before `member`.
    #[default]
    NotRead,
    /// The Cluster controller has not registered this cluster's PD with the operator yet.
    NotRegistered,
    /// PD has never answered a poll: nothing is known.
    Unavailable,
    /// PD's view has no member named like this instance's Pod.
    Absent(Observed),
    /// The member, by the name of this instance's Pod.
    Found(MemberInfo, Observed),
}

impl MemberView {
    /// The member, from any view (for reporting).
    pub fn member(&self) -> Option<&MemberInfo> {
        match self {
            MemberView::Found(member, _) => Some(member),
            _ => None,
        }
    }
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
    pub member: MemberView,
}

impl PdState {
    pub fn new(ctx: Arc<Context>, namespace: &str, name: &str) -> Self {
        Self {
            pass: Pass::new(ctx, namespace, name),
            parts: InstanceParts::default(),
            group: None,
            peers: Vec::new(),
            peer_pods: Vec::new(),
            member: MemberView::NotRead,
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
