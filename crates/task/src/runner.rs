//! Walks the task tree for one object and turns what happened into a [`Report`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::future::BoxFuture;

use crate::metrics::{NoMetrics, TaskDone, TaskMetrics};
use crate::node::{Kind, Node};
use crate::outcome::Outcome;
use crate::report::{EntryStatus, Place, Recorder, Report, Stop};

/// Runs a controller's task list, one pass per call. Build it once, reuse it for every
/// object and pass; it is `Send + Sync`.
pub struct Runner<S> {
    controller: String,
    tasks: Vec<Node<S>>,
    metrics: Arc<dyn TaskMetrics>,
    passes: AtomicU64,
}

impl<S> Runner<S> {
    pub fn new(controller: impl Into<String>, tasks: impl IntoIterator<Item = Node<S>>) -> Self {
        Self {
            controller: controller.into(),
            tasks: tasks.into_iter().collect(),
            metrics: Arc::new(NoMetrics),
            passes: AtomicU64::new(0),
        }
    }

    /// Reports every entry (as it finishes) and every pass to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn TaskMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn controller(&self) -> &str {
        &self.controller
    }
}

impl<S: Send> Runner<S> {
    /// Runs one pass over `state` for the object named `object_key`. The caller logs the
    /// report ([`Report::log`]) and maps [`Report::action`] to its requeue decision.
    pub async fn run(&self, object_key: &str, state: &mut S) -> Report {
        let pass = self.passes.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        let mut recorder = Recorder::default();
        let top = Scope { place: Place::default(), in_finally: false };
        let pass_of = PassOf { metrics: &*self.metrics, controller: &self.controller, object: object_key, pass };
        run_scope(&self.tasks, top, state, &mut recorder, &pass_of).await;
        let report = recorder.finish(&self.controller, object_key, pass, started.elapsed());
        self.metrics.pass_finished(&self.controller, report.outcome(), report.duration());
        report
    }
}

/// The pass being run, to report each entry to the metrics as it finishes.
struct PassOf<'a> {
    metrics: &'a dyn TaskMetrics,
    controller: &'a str,
    object: &'a str,
    pass: u64,
}

impl PassOf<'_> {
    fn done(&self, task: &str, status: EntryStatus, duration: std::time::Duration) {
        let done =
            TaskDone { controller: self.controller, object: self.object, pass: self.pass, task, status, duration };
        self.metrics.task_done(&done);
    }
}

/// How a scope ended; ordered so that merging two endings is `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Flow {
    Continue,
    Break,
    Fail,
}

#[derive(Clone)]
struct Scope {
    place: Place,
    /// A break inside a `finally` ends only that `finally`, so it is not the pass's stop.
    in_finally: bool,
}

/// Runs the non-`finally` nodes of a scope until a break or a `Fail`, then its `finally`
/// nodes, and tells the parent how the scope ended.
fn run_scope<'a, S: Send>(
    nodes: &'a [Node<S>],
    scope: Scope,
    state: &'a mut S,
    recorder: &'a mut Recorder,
    pass: &'a PassOf<'a>,
) -> BoxFuture<'a, Flow> {
    Box::pin(async move {
        let mut flow = Flow::Continue;
        for node in nodes {
            if flow != Flow::Continue {
                break;
            }
            flow = match &node.0 {
                Kind::Task(task) => {
                    let started = Instant::now();
                    let outcome = task.run(state).await;
                    let failed = matches!(outcome, Outcome::Fail(_));
                    let (kind, took) = (outcome.kind(), started.elapsed());
                    recorder.ran(task.name(), &scope.place, outcome, took);
                    pass.done(task.name(), EntryStatus::Ran(kind), took);
                    if failed {
                        recorder.stop(Stop::Fail { at: task.name().to_owned() });
                        Flow::Fail
                    } else {
                        Flow::Continue
                    }
                }
                Kind::Block(body) => run_scope(body, scope.clone(), state, recorder, pass).await,
                Kind::Guard { condition, then_break, body } => {
                    if condition.holds(state) {
                        let combinator = if *then_break { "if_break" } else { "if" };
                        let label = format!("{combinator} {}", condition.name());
                        let inner = scope.child(label, recorder);
                        let ended = run_scope(body, inner, state, recorder, pass).await;
                        if *then_break { scope.break_after(ended, condition.name(), recorder) } else { ended }
                    } else {
                        recorder.skipped(condition.name(), &scope.place);
                        pass.done(condition.name(), EntryStatus::Skipped, std::time::Duration::ZERO);
                        Flow::Continue
                    }
                }
                Kind::Break(body) => {
                    let inner = scope.child("break".to_owned(), recorder);
                    let ended = run_scope(body, inner, state, recorder, pass).await;
                    scope.break_after(ended, "break", recorder)
                }
                Kind::Finally(_) => Flow::Continue,
            };
        }

        for node in nodes {
            if let Kind::Finally(body) = &node.0 {
                let mut inner = scope.child("finally".to_owned(), recorder);
                inner.in_finally = true;
                if run_scope(body, inner, state, recorder, pass).await == Flow::Fail {
                    flow = Flow::Fail;
                }
            }
        }
        flow
    })
}

impl Scope {
    fn child(&self, label: String, recorder: &mut Recorder) -> Scope {
        Scope { place: recorder.enter(&self.place, label), in_finally: self.in_finally }
    }

    /// The ending of a breaking combinator whose body ended with `body`.
    fn break_after(&self, body: Flow, at: &str, recorder: &mut Recorder) -> Flow {
        if body == Flow::Continue && !self.in_finally {
            recorder.stop(Stop::Break { at: at.to_owned() });
        }
        body.max(Flow::Break)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::testing::*;
    use crate::{EntryStatus, OutcomeKind, PassResult, block, finally, if_, sync_task};

    fn outcome_of(kind: OutcomeKind, name: &'static str) -> Node<Trace> {
        match kind {
            OutcomeKind::Complete => step(name),
            OutcomeKind::Wait => waits(name),
            OutcomeKind::Retry => retries(name, 4),
            OutcomeKind::Fail => fails(name),
        }
    }

    #[test]
    fn aggregate_is_the_strongest_outcome_for_every_pair_in_either_order() {
        use OutcomeKind::*;
        let by_strength = [Complete, Wait, Retry, Fail];
        for (i, first) in by_strength.into_iter().enumerate() {
            for (j, second) in by_strength.into_iter().enumerate() {
                let (report, _) = run([outcome_of(first, "x"), outcome_of(second, "y")]);
                assert_eq!(report.outcome(), by_strength[i.max(j)], "{first} then {second}");
            }
        }
    }

    #[test]
    fn an_empty_pass_is_complete_and_done() {
        let (report, _) = run([]);
        assert_eq!(report.outcome(), OutcomeKind::Complete);
        assert!(report.entries().is_empty());
        assert!(matches!(report.action(), PassResult::Done));
    }

    #[test]
    fn a_pass_of_only_skipped_guards_is_complete() {
        let (report, _) = run([if_(is("x"), [fails("never")])]);
        assert_eq!(report.outcome(), OutcomeKind::Complete);
        assert!(matches!(report.action(), PassResult::Done));
    }

    #[test]
    fn requeue_is_at_the_earliest_retry_across_nested_blocks_and_finally() {
        let mut trace = Trace::with_flags(&["x"]);
        let tasks = [
            retries("slow", 30),
            block([waits("w"), block([if_(is("x"), [retries("soonest", 2)])]), retries("mid", 10)]),
            finally([retries("cleanup", 7)]),
        ];
        let report = run_on(&mut trace, tasks);
        assert_eq!(report.outcome(), OutcomeKind::Retry);
        assert_eq!(report.requeue_after(), Some(Duration::from_secs(2)));
        assert!(matches!(
            report.action(),
            PassResult::RequeueAfter(after) if after == Duration::from_secs(2)
        ));
        assert_eq!(report.entry("slow").and_then(|e| e.retry_after()), Some(Duration::from_secs(30)));
    }

    #[test]
    fn complete_and_wait_passes_do_not_requeue() {
        let (report, _) = run([step("a")]);
        assert!(matches!(report.action(), PassResult::Done));
        let (report, _) = run([step("a"), waits("w")]);
        assert_eq!(report.outcome(), OutcomeKind::Wait);
        assert_eq!(report.requeue_after(), None);
        assert!(matches!(report.action(), PassResult::Done));
    }

    #[test]
    fn a_failed_pass_reports_the_error_even_when_tasks_retried() {
        let (report, _) = run([retries("r", 3), fails("boom")]);
        assert_eq!(report.requeue_after(), Some(Duration::from_secs(3)));
        match report.action() {
            PassResult::Failed(error) => assert_eq!(error.to_string(), "boom broke"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn the_runner_is_reused_and_counts_passes() {
        let runner = Runner::new("tikv", [step("a")]);
        assert_eq!(runner.controller(), "tikv");
        let mut passes = Vec::new();
        for object in ["ns/a", "ns/b", "ns/a"] {
            let mut trace = Trace::default();
            let report = futures::executor::block_on(runner.run(object, &mut trace));
            assert_eq!(trace.ran, ["a"]);
            assert_eq!(report.controller(), "tikv");
            assert_eq!(report.object(), object);
            passes.push(report.pass());
        }
        assert_eq!(passes, [1, 2, 3]);
    }

    #[derive(Default)]
    struct Recording {
        calls: Mutex<Vec<String>>,
    }

    impl TaskMetrics for Recording {
        fn task_finished(&self, controller: &str, task: &str, status: EntryStatus, _: Duration) {
            let call = format!("task {controller} {task} {status}");
            self.calls.lock().unwrap().push(call);
        }

        fn pass_finished(&self, controller: &str, outcome: OutcomeKind, _: Duration) {
            let call = format!("pass {controller} {outcome}");
            self.calls.lock().unwrap().push(call);
        }
    }

    #[test]
    fn metrics_see_each_entry_once_and_each_pass_once() {
        let metrics = Arc::new(Recording::default());
        let runner =
            Runner::new("pd", [step("a"), if_(is("x"), [step("hidden")]), retries("r", 1), finally([step("status")])])
                .with_metrics(metrics.clone());
        for _ in 0..2 {
            futures::executor::block_on(runner.run("ns/o", &mut Trace::default()));
        }
        let one_pass =
            ["task pd a complete", "task pd x skipped", "task pd r retry", "task pd status complete", "pass pd retry"];
        let expected: Vec<&str> = one_pass.iter().chain(&one_pass).copied().collect();
        assert_eq!(*metrics.calls.lock().unwrap(), expected);
    }

    /// Records every boundary with its object and pass.
    #[derive(Default)]
    struct Boundaries {
        seen: Mutex<Vec<String>>,
    }

    impl TaskMetrics for Boundaries {
        fn task_finished(&self, _: &str, _: &str, _: EntryStatus, _: Duration) {
            unreachable!("task_done is overridden");
        }

        fn task_done(&self, done: &TaskDone<'_>) {
            let seen = format!("{} {} #{} {} {}", done.controller, done.object, done.pass, done.task, done.status);
            self.seen.lock().unwrap().push(seen);
        }

        fn pass_finished(&self, _: &str, _: OutcomeKind, _: Duration) {}
    }

    #[test]
    fn each_entry_is_reported_before_the_next_task_runs() {
        let metrics = Arc::new(Boundaries::default());
        let seen_by_b = Arc::new(Mutex::new(Vec::new()));
        let (m, out) = (metrics.clone(), seen_by_b.clone());
        let b = sync_task("b", move |_: &mut Trace| {
            *out.lock().unwrap() = m.seen.lock().unwrap().clone();
            Outcome::complete("")
        });
        let runner = Runner::new("tikv", [step("a"), if_(is("x"), [step("hidden")]), b]).with_metrics(metrics.clone());
        futures::executor::block_on(runner.run("ns/o", &mut Trace::default()));
        futures::executor::block_on(runner.run("ns/p", &mut Trace::default()));
        // What b saw in the second pass: everything of the first, and a and x of its own.
        let expected = [
            "tikv ns/o #1 a complete",
            "tikv ns/o #1 x skipped",
            "tikv ns/o #1 b complete",
            "tikv ns/p #2 a complete",
            "tikv ns/p #2 x skipped",
        ];
        assert_eq!(*seen_by_b.lock().unwrap(), expected);
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_runner_is_send_and_sync() {
        assert_send_sync::<Runner<Trace>>();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pass_future_is_send_and_runs_on_a_spawned_task() {
        let runner = Arc::new(Runner::new(
            "test",
            [
                crate::task("yield", |t: &mut Trace| {
                    Box::pin(async move {
                        tokio::task::yield_now().await;
                        t.ran.push("yield".into());
                        Outcome::retry(Duration::from_secs(1), "again")
                    })
                }),
                sync_task("after", |t: &mut Trace| {
                    t.ran.push("after".into());
                    Outcome::complete("")
                }),
            ],
        ));
        let spawned = {
            let runner = runner.clone();
            tokio::spawn(async move {
                let mut trace = Trace::default();
                let report = runner.run("ns/o", &mut trace).await;
                (report, trace.ran)
            })
        };
        let (report, ran) = spawned.await.unwrap();
        assert_eq!(ran, ["yield", "after"]);
        assert_eq!(report.requeue_after(), Some(Duration::from_secs(1)));
    }
}
