//! What the PD instance controller's tasks share during one pass.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use tikv_operator_api::names::ANNOTATION_MEMBER_REMOVAL;

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

    /// The view, only if it may back a destructive step: read after the operator's
    /// last write to PD, recent, and the latest poll good.
    pub fn fresh(&self) -> Option<&Observed> {
        match self {
            MemberView::Found(_, observed) | MemberView::Absent(observed) if observed.is_fresh() => Some(observed),
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
    /// Set by `leave`: PD no longer lists this instance's member (removed by its
    /// recorded ID as a fresh view shows, or it never joined).
    pub left: bool,
    /// Set by `remove_data`: neither the Pod nor a PVC of the instance is left.
    pub data_removed: bool,
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
            left: false,
            data_removed: false,
        }
    }

    /// The member ID recorded in status (the instance's identity in PD).
    pub fn recorded_id(&self) -> Option<u64> {
        let status = self.pass.object.as_ref()?.status.as_ref()?;
        status.id.as_deref()?.parse().ok()
    }

    /// The member ID whose removal the operator asked PD for (its annotation).
    pub fn removal_asked(&self) -> Option<u64> {
        self.pass.object.as_ref()?.annotations().get(ANNOTATION_MEMBER_REMOVAL)?.parse().ok()
    }

    /// Sets (or with `None` removes) an annotation of the instance ([`Pass::annotate`]).
    pub async fn annotate(&mut self, key: &str, value: Option<String>) -> Result<(), tikv_operator_task::Outcome> {
        self.pass.annotate(key, value).await
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
