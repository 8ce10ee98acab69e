//! The seam to a metrics backend, kept as a trait so this crate depends on none.

use std::time::Duration;

use crate::outcome::OutcomeKind;
use crate::report::EntryStatus;

/// Receives per-task and per-pass measurements from a [`Runner`](crate::Runner).
///
/// After each pass the runner calls `task_finished` once per report entry (tasks that
/// ran and guards that were skipped, in order), then `pass_finished` once. A backend
/// typically feeds a duration histogram and an outcome counter from these.
pub trait TaskMetrics: Send + Sync {
    fn task_finished(&self, controller: &str, task: &str, status: EntryStatus, duration: Duration);

    fn pass_finished(&self, controller: &str, outcome: OutcomeKind, duration: Duration);
}

/// Discards everything; the runner's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl TaskMetrics for NoMetrics {
    fn task_finished(&self, _: &str, _: &str, _: EntryStatus, _: Duration) {}

    fn pass_finished(&self, _: &str, _: OutcomeKind, _: Duration) {}
}
