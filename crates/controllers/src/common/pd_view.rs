//! A PD view one pass read, and how fresh it was: what the PD member and TiKV store
//! views of the instance controllers carry, so reporting may use any view while a
//! destructive step checks freshness (DESIGN.md section 5 item 2).

use std::sync::Arc;

use tikv_operator_pd::{Freshness, PdView, StaleReason};

/// A PD view one pass read, and how fresh it was when read.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub view: Arc<PdView>,
    pub freshness: ViewFreshness,
}

impl Observed {
    pub fn is_fresh(&self) -> bool {
        self.freshness == ViewFreshness::Fresh
    }
}

/// [`Freshness`] of a view that exists (so never "unavailable").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewFreshness {
    Fresh,
    Stale(StaleReason),
}

impl std::fmt::Display for ViewFreshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewFreshness::Fresh => Freshness::Fresh.fmt(f),
            ViewFreshness::Stale(reason) => Freshness::Stale(reason.clone()).fmt(f),
        }
    }
}

impl ViewFreshness {
    /// `None` for [`Freshness::Unavailable`]: there is no view to be fresh or stale.
    pub fn of(freshness: Freshness) -> Option<Self> {
        match freshness {
            Freshness::Fresh => Some(ViewFreshness::Fresh),
            Freshness::Stale(reason) => Some(ViewFreshness::Stale(reason)),
            Freshness::Unavailable => None,
        }
    }
}
