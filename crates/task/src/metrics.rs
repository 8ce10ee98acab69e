//! The seam to a metrics backend, kept as a trait so this crate depends on none.

use std::time::Duration;

use crate::outcome::OutcomeKind;
use crate::report::EntryStatus;

/// Receives per-task and per-pass measurements from a [`Runner`](crate::Runner).
///
/// The runner reports each report entry (a task that ran, a guard that was skipped) as
/// it finishes, in order, through [`task_done`](Self::task_done), and `pass_finished`
/// once after the pass. A backend typically feeds a duration histogram and an outcome
/// counter from these.
pub trait TaskMetrics: Send + Sync {
    fn task_finished(&self, controller: &str, task: &str, status: EntryStatus, duration: Duration);

    /// One entry finished, with the object and the pass it belongs to; by default
    /// [`task_finished`](Self::task_finished). The call is made before the runner
    /// goes on to the next task: an observer sees every task boundary as it happens.
    fn task_done(&self, done: &TaskDone<'_>) {
        self.task_finished(done.controller, done.task, done.status, done.duration);
    }

    fn pass_finished(&self, controller: &str, outcome: OutcomeKind, duration: Duration);
}

/// One entry of a pass, reported as it finishes.
#[derive(Debug, Clone, Copy)]
pub struct TaskDone<'a> {
    pub controller: &'a str,
    /// The object's key (`namespace/name`).
    pub object: &'a str,
    /// The runner's pass number (counted over every object of the controller).
    pub pass: u64,
    /// The task's name, or a skipped guard's condition name.
    pub task: &'a str,
    pub status: EntryStatus,
    pub duration: Duration,
}

/// Discards everything; the runner's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl TaskMetrics for NoMetrics {
    fn task_finished(&self, _: &str, _: &str, _: EntryStatus, _: Duration) {}

    fn pass_finished(&self, _: &str, _: OutcomeKind, _: Duration) {}
}
