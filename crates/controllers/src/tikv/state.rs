//! What the TiKV instance controller's tasks share during one pass.

use std::sync::Arc;

use tikv_operator_api::TiKV;
use tikv_operator_pd::NodeState;

use crate::common::instance::{InstanceParts, InstanceState};
pub use crate::common::pd_view::{Observed, ViewFreshness};
use crate::common::{Pass, PassState};
use crate::context::Context;

/// The store as PD reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreInfo {
    pub id: u64,
    pub node_state: NodeState,
    /// Up with a recent heartbeat.
    pub up: bool,
}

/// This instance's store as the pass found it in the PD cache, set by `store` and read
/// by every later task. Reporting may use any view; a destructive step must check
/// [`StoreView::fresh`] (DESIGN.md section 5 item 2): a stale view never says "absent".
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StoreView {
    /// Not looked at: the pass stopped before `store`.
    #[default]
    NotRead,
    /// The Cluster controller has not registered this cluster's PD with the operator yet.
    NotRegistered,
    /// PD has never answered a poll: nothing is known.
    Unavailable,
    /// PD's view has no store for this instance: none with the recorded ID, or, before
    /// an ID is recorded, no live store on the advertise address.
    Absent(Observed),
    /// The store, by its recorded ID (or found by address, and now recorded).
    Found(StoreInfo, Observed),
}

impl StoreView {
    /// The store, from any view (for reporting).
    pub fn store(&self) -> Option<&StoreInfo> {
        match self {
            StoreView::Found(store, _) => Some(store),
            _ => None,
        }
    }

    /// The PD view the pass read, however old.
    pub fn observed(&self) -> Option<&Observed> {
        match self {
            StoreView::Absent(observed) | StoreView::Found(_, observed) => Some(observed),
            StoreView::NotRead | StoreView::NotRegistered | StoreView::Unavailable => None,
        }
    }

    /// The view, only if it may back a destructive step: read after the operator's
    /// last write to PD, recent, and the latest poll good.
    pub fn fresh(&self) -> Option<&Observed> {
        self.observed().filter(|observed| observed.is_fresh())
    }

    /// Absent from a fresh view: PD really has no store for this instance now. (Whether
    /// that means "removed" depends on what was seen before: DESIGN.md section 5 item 3.)
    pub fn absent_from_fresh_view(&self) -> bool {
        matches!(self, StoreView::Absent(observed) if observed.is_fresh())
    }
}

pub struct TikvState {
    pub pass: Pass<TiKV>,
    pub parts: InstanceParts,
    pub store: StoreView,
}

impl TikvState {
    pub fn new(ctx: Arc<Context>, namespace: &str, name: &str) -> Self {
        Self { pass: Pass::new(ctx, namespace, name), parts: InstanceParts::default(), store: StoreView::NotRead }
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
