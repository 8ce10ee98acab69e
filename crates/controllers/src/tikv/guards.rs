//! The TiKV runbook's own guards: where a deleted instance stands in leaving PD.

use kube::ResourceExt;
use tikv_operator_api::names::ANNOTATION_EVICT_LEADER_STORE;
use tikv_operator_task::{Condition, cond};

use super::state::TikvState;

/// Deleted, and its store holds no data any more: removed in PD (by its recorded ID,
/// or gone after it was seen leaving), or none ever registered. What is left is local:
/// the Pod, the volumes, the finalizer.
pub fn deleting_and_data_gone() -> Condition<TikvState> {
    cond("deleting_and_data_gone", |s: &TikvState| s.pass.deleting() && (s.store_removed() || s.never_registered()))
}

/// Nothing of the instance is left: no Pod, no PVC, no evict-leader entry of ours, and
/// no store in PD (removed, or confirmed never registered once the Pod was gone).
pub fn cleanup_done() -> Condition<TikvState> {
    cond("cleanup_done", |s: &TikvState| {
        let entry = s.pass.object.as_ref().is_some_and(|t| t.annotations().contains_key(ANNOTATION_EVICT_LEADER_STORE));
        s.cleanup.pod_gone && s.cleanup.pd_confirmed && s.cleanup.pvcs_gone && !entry
    })
}

/// The instance records an evict-leader entry of ours for a store that has left PD
/// (Tombstone, or gone after it was seen leaving): nobody needs the entry any more,
/// whatever else waits (a suspension).
pub fn eviction_left_behind() -> Condition<TikvState> {
    cond("eviction_left_behind", |s: &TikvState| {
        let recorded =
            s.pass.object.as_ref().is_some_and(|t| t.annotations().contains_key(ANNOTATION_EVICT_LEADER_STORE));
        recorded && s.store_removed()
    })
}
