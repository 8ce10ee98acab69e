//! The task tree: tasks and the combinators that guard, group and order them.
//!
//! Every list of nodes (the runner's top-level list and the body of each combinator) is a
//! *scope*. A scope runs its nodes in order until a `Fail` or a break, then runs its
//! `finally` nodes. The exact rules are on each constructor; the runner applies them.

use crate::condition::Condition;
use crate::task::Task;

/// One node of the task tree: a task or a combinator over more nodes.
pub struct Node<S>(pub(crate) Kind<S>);

pub(crate) enum Kind<S> {
    Task(Box<dyn Task<S>>),
    Block(Vec<Node<S>>),
    Guard { condition: Condition<S>, then_break: bool, body: Vec<Node<S>> },
    Break(Vec<Node<S>>),
    Finally(Vec<Node<S>>),
}

impl<S> Node<S> {
    /// A node running a task written as a struct.
    pub fn task(task: impl Task<S> + 'static) -> Self {
        Self(Kind::Task(Box::new(task)))
    }
}

fn nodes<S>(tasks: impl IntoIterator<Item = Node<S>>) -> Vec<Node<S>> {
    tasks.into_iter().collect()
}

/// Groups tasks into one node. A block is its own scope: `finally` nodes directly in it
/// run when it exits.
pub fn block<S>(tasks: impl IntoIterator<Item = Node<S>>) -> Node<S> {
    Node(Kind::Block(nodes(tasks)))
}

/// Runs `tasks` if `condition` holds when reached; otherwise the report shows one
/// skipped entry named after the condition.
pub fn if_<S>(condition: Condition<S>, tasks: impl IntoIterator<Item = Node<S>>) -> Node<S> {
    Node(Kind::Guard { condition, then_break: false, body: nodes(tasks) })
}

/// Runs `tasks` unless `condition` holds; the same as `if_(!condition, tasks)`, so a
/// skip is reported under the name `not <condition>`.
pub fn if_not<S>(condition: Condition<S>, tasks: impl IntoIterator<Item = Node<S>>) -> Node<S> {
    if_(!condition, tasks)
}

/// If `condition` holds, runs `tasks` and then ends the pass (the `finally` tasks of
/// every scope being left still run). With no tasks it is a pure early exit. If the
/// condition does not hold, the report shows it skipped and the pass goes on.
pub fn if_break<S>(condition: Condition<S>, tasks: impl IntoIterator<Item = Node<S>>) -> Node<S> {
    Node(Kind::Guard { condition, then_break: true, body: nodes(tasks) })
}

/// Runs `tasks` and then ends the pass, unconditionally.
pub fn break_<S>(tasks: impl IntoIterator<Item = Node<S>>) -> Node<S> {
    Node(Kind::Break(nodes(tasks)))
}

/// Tasks that run when the enclosing scope exits, however it exits: normally, by a
/// break, or by a `Fail`. In the top-level list that is the end of every pass.
///
/// The node's position in its scope does not matter (put it last, where it reads
/// naturally); several `finally` nodes in one scope run in the order written. Inside,
/// tasks run in order and guards work as usual; a `Fail` stops the rest of this
/// `finally` and fails the pass, a break ends only this `finally`.
pub fn finally<S>(tasks: impl IntoIterator<Item = Node<S>>) -> Node<S> {
    Node(Kind::Finally(nodes(tasks)))
}

/// The task tree as an indented outline, one line a node: task names as the report
/// shows them, guards as `if <condition>` (`… then stop` for a breaking guard), `stop`
/// and `finally` blocks. What the runbook documentation is generated from.
pub fn outline<S>(tasks: &[Node<S>]) -> String {
    let mut out = String::new();
    outline_into(tasks, 0, &mut out);
    out
}

fn outline_into<S>(tasks: &[Node<S>], depth: usize, out: &mut String) {
    for node in tasks {
        let indent = "  ".repeat(depth);
        match &node.0 {
            Kind::Task(task) => out.push_str(&format!("{indent}- {}\n", task.name())),
            Kind::Block(body) => {
                out.push_str(&format!("{indent}- block\n"));
                outline_into(body, depth + 1, out);
            }
            Kind::Guard { condition, then_break, body } => {
                let name = condition.name();
                let line = match (then_break, body.is_empty()) {
                    (false, _) => format!("if {name}"),
                    (true, true) => format!("if {name}: stop"),
                    (true, false) => format!("if {name}, then stop"),
                };
                out.push_str(&format!("{indent}- {line}\n"));
                outline_into(body, depth + 1, out);
            }
            Kind::Break(body) => {
                out.push_str(&format!("{indent}- then stop\n"));
                outline_into(body, depth + 1, out);
            }
            Kind::Finally(body) => {
                out.push_str(&format!("{indent}- finally\n"));
                outline_into(body, depth + 1, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::{EntryStatus, OutcomeKind, Stop};

    fn path_of<'r>(report: &'r crate::Report, name: &str) -> Vec<&'r str> {
        let entry = report.entry(name).unwrap_or_else(|| panic!("no entry {name}"));
        entry.path().iter().map(String::as_str).collect()
    }

    #[test]
    fn tasks_run_in_the_order_written_through_nested_blocks() {
        let (report, trace) = run([step("a"), block([step("b"), block([step("c")]), step("d")]), step("e")]);
        assert_eq!(trace.ran, ["a", "b", "c", "d", "e"]);
        assert_eq!(report.ran_names(), ["a", "b", "c", "d", "e"]);
        assert!(report.entries().iter().all(|e| e.depth() == 0));
    }

    #[test]
    fn complete_wait_and_retry_all_let_the_next_task_run() {
        let (report, trace) =
            run([waits("w"), retries("r", 3), step("c"), block([waits("w2"), retries("r2", 9)]), step("last")]);
        assert_eq!(trace.ran, ["w", "r", "c", "w2", "r2", "last"]);
        assert_eq!(report.stopped(), None);
    }

    #[test]
    fn fail_stops_the_rest_of_every_enclosing_block_but_finally_runs() {
        let (report, trace) = run([
            step("a"),
            block([step("b"), block([fails("broken"), step("after_in_inner")]), step("after_in_outer")]),
            step("after_at_top"),
            finally([step("cleanup")]),
        ]);
        assert_eq!(trace.ran, ["a", "b", "broken", "cleanup"]);
        assert_eq!(report.outcome(), OutcomeKind::Fail);
        assert_eq!(report.stopped(), Some(&Stop::Fail { at: "broken".into() }));
        assert!(!report.ran("after_in_inner"));
        assert!(report.entry("after_at_top").is_none());
    }

    #[test]
    fn top_level_finally_runs_after_if_break() {
        let mut trace = Trace::with_flags(&["paused"]);
        let report = run_on(
            &mut trace,
            [step("load"), if_break(is("paused"), [step("note_paused")]), step("pod"), finally([step("status")])],
        );
        assert_eq!(trace.ran, ["load", "note_paused", "status"]);
        assert_eq!(report.stopped(), Some(&Stop::Break { at: "paused".into() }));
        assert_eq!(path_of(&report, "note_paused"), ["if_break paused"]);
        assert_eq!(report.outcome(), OutcomeKind::Complete);
    }

    #[test]
    fn top_level_finally_runs_after_break() {
        let (report, trace) = run([
            step("load"),
            block([break_([step("last_words")]), step("not_reached")]),
            step("pod"),
            finally([step("status")]),
        ]);
        assert_eq!(trace.ran, ["load", "last_words", "status"]);
        assert_eq!(report.stopped(), Some(&Stop::Break { at: "break".into() }));
        assert_eq!(path_of(&report, "last_words"), ["break"]);
    }

    #[test]
    fn finally_runs_regardless_of_its_position_in_the_scope() {
        let (_, trace) = run([finally([step("status")]), step("a"), step("b")]);
        assert_eq!(trace.ran, ["a", "b", "status"]);
    }

    #[test]
    fn several_finally_nodes_run_in_the_order_written() {
        let (report, trace) = run([finally([step("first")]), step("a"), finally([step("second")])]);
        assert_eq!(trace.ran, ["a", "first", "second"]);
        assert_eq!(path_of(&report, "second"), ["finally"]);
    }

    #[test]
    fn nested_finally_runs_when_its_block_exits_normally() {
        let (report, trace) = run([
            step("a"),
            block([step("b"), finally([step("block_cleanup")]), step("c")]),
            step("d"),
            finally([step("pass_cleanup")]),
        ]);
        assert_eq!(trace.ran, ["a", "b", "c", "block_cleanup", "d", "pass_cleanup"]);
        assert_eq!(path_of(&report, "block_cleanup"), ["finally"]);
    }

    #[test]
    fn nested_finally_runs_at_block_exit_after_a_fail_then_the_outer_one() {
        let (report, trace) = run([
            block([
                block([fails("inner"), finally([step("inner_cleanup")])]),
                step("skipped_by_fail"),
                finally([step("outer_cleanup")]),
            ]),
            step("d"),
            finally([step("pass_cleanup")]),
        ]);
        assert_eq!(trace.ran, ["inner", "inner_cleanup", "outer_cleanup", "pass_cleanup"]);
        assert_eq!(report.outcome(), OutcomeKind::Fail);
    }

    #[test]
    fn nested_finally_runs_at_block_exit_after_a_break() {
        let mut trace = Trace::with_flags(&["done"]);
        run_on(
            &mut trace,
            [
                block([if_break(is("done"), [step("b")]), step("c"), finally([step("block_cleanup")])]),
                step("d"),
                finally([step("pass_cleanup")]),
            ],
        );
        assert_eq!(trace.ran, ["b", "block_cleanup", "pass_cleanup"]);
    }

    #[test]
    fn finally_inside_a_guard_body_runs_before_the_break() {
        let mut trace = Trace::with_flags(&["gone"]);
        let report = run_on(
            &mut trace,
            [if_break(is("gone"), [step("a"), finally([step("body_cleanup")])]), step("b"), finally([step("status")])],
        );
        assert_eq!(trace.ran, ["a", "body_cleanup", "status"]);
        assert_eq!(path_of(&report, "body_cleanup"), ["if_break gone", "finally"]);
    }

    #[test]
    fn finally_of_a_scope_never_entered_does_not_run() {
        let (report, trace) = run([
            if_(is("loaded"), [step("a"), finally([step("guarded_cleanup")])]),
            fails("boom"),
            block([step("b"), finally([step("unreached_cleanup")])]),
        ]);
        assert_eq!(trace.ran, ["boom"]);
        assert!(report.skipped("loaded"));
    }

    #[test]
    fn fail_inside_finally_stops_the_rest_of_that_finally_only() {
        let (report, trace) = run([step("a"), finally([step("f1"), fails("f2"), step("f3")]), finally([step("g")])]);
        assert_eq!(trace.ran, ["a", "f1", "f2", "g"]);
        assert_eq!(report.outcome(), OutcomeKind::Fail);
        assert_eq!(report.error().map(|e| e.to_string()), Some("f2 broke".into()));
        assert_eq!(report.stopped(), Some(&Stop::Fail { at: "f2".into() }));
    }

    #[test]
    fn fail_inside_finally_after_a_fail_keeps_the_first_error() {
        let (report, trace) = run([fails("main"), finally([fails("cleanup"), step("x")])]);
        assert_eq!(trace.ran, ["main", "cleanup"]);
        assert_eq!(report.error().map(|e| e.to_string()), Some("main broke".into()));
        assert_eq!(report.stopped(), Some(&Stop::Fail { at: "main".into() }));
    }

    #[test]
    fn fail_in_a_nested_finally_fails_the_pass_and_stops_later_tasks() {
        let (report, trace) =
            run([block([step("a"), finally([fails("release")])]), step("b"), finally([step("status")])]);
        assert_eq!(trace.ran, ["a", "release", "status"]);
        assert_eq!(report.outcome(), OutcomeKind::Fail);
    }

    #[test]
    fn break_inside_finally_ends_only_that_finally() {
        let mut trace = Trace::with_flags(&["x"]);
        let report = run_on(
            &mut trace,
            [
                step("a"),
                finally([step("f1"), block([if_break(is("x"), [step("f2")]), step("f3")]), step("f4")]),
                finally([break_([]), step("g1")]),
                finally([step("h")]),
                step("b"),
            ],
        );
        assert_eq!(trace.ran, ["a", "b", "f1", "f2", "h"]);
        assert_eq!(report.stopped(), None);
        assert_eq!(report.outcome(), OutcomeKind::Complete);
    }

    #[test]
    fn wait_and_retry_inside_finally_do_not_stop_it() {
        let (report, trace) = run([finally([waits("w"), retries("r", 2), step("c")])]);
        assert_eq!(trace.ran, ["w", "r", "c"]);
        assert_eq!(report.outcome(), OutcomeKind::Retry);
    }

    #[test]
    fn if_runs_its_tasks_when_the_condition_holds() {
        let mut trace = Trace::with_flags(&["loaded"]);
        let report = run_on(&mut trace, [if_(is("loaded"), [step("a"), step("b")]), step("c")]);
        assert_eq!(trace.ran, ["a", "b", "c"]);
        assert_eq!(path_of(&report, "a"), ["if loaded"]);
        assert_eq!(report.entry("a").map(|e| e.depth()), Some(1));
        assert_eq!(path_of(&report, "c"), Vec::<&str>::new());
        assert!(!report.skipped("loaded"));
        assert_eq!(report.entries().len(), 3);
    }

    #[test]
    fn if_with_a_false_condition_is_one_skipped_entry() {
        let (report, trace) = run([step("a"), if_(is("loaded"), [step("b"), step("c")]), step("d")]);
        assert_eq!(trace.ran, ["a", "d"]);
        let names: Vec<&str> = report.entries().iter().map(|e| e.name()).collect();
        assert_eq!(names, ["a", "loaded", "d"]);
        let skipped = report.entry("loaded").unwrap();
        assert_eq!(skipped.status(), EntryStatus::Skipped);
        assert_eq!(skipped.message(), "condition false");
        assert_eq!(skipped.depth(), 0);
        assert!(report.skipped("loaded"));
        assert!(!report.ran("loaded"));
    }

    #[test]
    fn if_not_runs_when_the_condition_does_not_hold() {
        let (report, trace) = run([if_not(is("paused"), [step("a")])]);
        assert_eq!(trace.ran, ["a"]);
        assert_eq!(path_of(&report, "a"), ["if not paused"]);

        let mut trace = Trace::with_flags(&["paused"]);
        let report = run_on(&mut trace, [if_not(is("paused"), [step("a")]), step("b")]);
        assert_eq!(trace.ran, ["b"]);
        assert!(report.skipped("not paused"));
    }

    #[test]
    fn if_break_with_a_false_condition_is_skipped_and_the_pass_goes_on() {
        let (report, trace) = run([if_break(is("gone"), [step("a")]), step("b")]);
        assert_eq!(trace.ran, ["b"]);
        assert!(report.skipped("gone"));
        assert_eq!(report.stopped(), None);
    }

    #[test]
    fn if_break_with_no_tasks_is_a_pure_early_exit() {
        let tasks = || [step("load"), if_break(is("gone"), []), step("pod"), finally([step("status")])];
        let mut trace = Trace::with_flags(&["gone"]);
        let report = run_on(&mut trace, tasks());
        assert_eq!(trace.ran, ["load", "status"]);
        assert_eq!(report.ran_names(), ["load", "status"]);
        assert_eq!(report.stopped(), Some(&Stop::Break { at: "gone".into() }));

        let (report, trace) = run(tasks());
        assert_eq!(trace.ran, ["load", "pod", "status"]);
        assert!(report.skipped("gone"));
    }

    #[test]
    fn break_inside_an_if_break_body_ends_the_pass_at_the_inner_break() {
        let mut trace = Trace::with_flags(&["x"]);
        let report = run_on(&mut trace, [if_break(is("x"), [step("a"), break_([step("b")]), step("c")]), step("d")]);
        assert_eq!(trace.ran, ["a", "b"]);
        assert_eq!(report.stopped(), Some(&Stop::Break { at: "break".into() }));
        assert_eq!(path_of(&report, "b"), ["if_break x", "break"]);
    }

    #[test]
    fn fail_inside_an_if_break_body_is_a_fail() {
        let mut trace = Trace::with_flags(&["x"]);
        let report = run_on(&mut trace, [if_break(is("x"), [fails("a"), step("b")]), step("c")]);
        assert_eq!(trace.ran, ["a"]);
        assert_eq!(report.stopped(), Some(&Stop::Fail { at: "a".into() }));
        assert_eq!(report.outcome(), OutcomeKind::Fail);
    }

    #[test]
    fn conditions_are_evaluated_when_reached_and_see_earlier_writes() {
        let (loaded, evaluations) = flag("loaded");
        let (report, trace) = run([sets("load", "loaded"), if_(loaded, [step("uses_loaded")])]);
        assert_eq!(trace.ran, ["load", "uses_loaded"]);
        assert_eq!(evaluations.get(), 1);
        assert!(report.ran("uses_loaded"));
    }

    #[test]
    fn a_condition_after_a_fail_is_never_evaluated() {
        let (late, evaluations) = flag("late");
        let (in_finally, finally_evaluations) = flag("in_finally");
        let (_, trace) = run([fails("boom"), if_(late, [step("a")]), finally([if_(in_finally, [step("b")])])]);
        assert_eq!(trace.ran, ["boom"]);
        assert_eq!(evaluations.get(), 0);
        assert_eq!(finally_evaluations.get(), 1);
    }

    #[test]
    fn a_condition_after_a_break_is_never_evaluated() {
        let (late, evaluations) = flag("late");
        let (late_break, break_evaluations) = flag("late_break");
        let (_, trace) = run([break_([]), if_(late, [step("a")]), if_break(late_break, [])]);
        assert!(trace.ran.is_empty());
        assert_eq!(evaluations.get(), 0);
        assert_eq!(break_evaluations.get(), 0);
    }

    #[test]
    fn status_is_written_in_finally_unless_the_object_is_gone() {
        let tasks = |object_exists: bool| {
            [
                sync_task_loading(object_exists),
                if_break(!is("object_loaded"), []),
                fails("pod"),
                finally([if_(is("object_loaded"), [step("conditions"), step("write_status")])]),
            ]
        };

        let (report, trace) = run(tasks(true));
        assert_eq!(trace.ran, ["load", "pod", "conditions", "write_status"]);
        assert_eq!(path_of(&report, "write_status"), ["finally", "if object_loaded"]);
        assert_eq!(report.entry("write_status").map(|e| e.depth()), Some(2));

        let (report, trace) = run(tasks(false));
        assert_eq!(trace.ran, ["load"]);
        assert!(report.skipped("object_loaded"));
        assert_eq!(report.entry("object_loaded").map(|e| e.path().to_vec()), Some(vec!["finally".to_owned()]));
        assert_eq!(report.stopped(), Some(&Stop::Break { at: "not object_loaded".into() }));
    }

    fn sync_task_loading(object_exists: bool) -> Node<Trace> {
        if object_exists { sets("load", "object_loaded") } else { step("load") }
    }

    #[test]
    fn the_outline_shows_every_node_with_its_guard() {
        let tree = vec![
            step("load"),
            if_break(is("gone"), []),
            if_break(is("deleting"), [step("release")]),
            if_(!is("paused"), [block([step("a"), step("b")])]),
            break_([step("last")]),
            finally([step("status")]),
        ];
        let expected = "- load\n- if gone: stop\n- if deleting, then stop\n  - release\n- if not paused\n  - block\n    - a\n    - b\n- then stop\n  - last\n- finally\n  - status\n";
        assert_eq!(outline(&tree), expected);
    }
}
