//! The task framework: a controller's reconcile is an ordered, readable list of small
//! named tasks with guards, run by a [`Runner`] that reports every pass.
//!
//! Each pass builds a fresh state `S`; tasks read and fill it in order. A task returns an
//! [`Outcome`]:
//!
//! - `Complete` and `Wait` (a watch event will re-trigger us) let the next task run;
//! - `Retry` lets the next task run and makes the pass requeue at the **earliest** `after`;
//! - `Fail` stops every remaining task of the pass except the [`finally`] ones.
//!
//! Guards ([`if_`], [`if_not`], [`if_break`]) take a named [`Condition`], evaluated only
//! when reached, so it sees what earlier tasks loaded. [`if_break`] and [`break_`] end the
//! pass after their tasks. [`finally`] tasks run when their enclosing scope exits, however
//! it exits; in the top-level list that is the end of every pass.
//!
//! The pass's [`Report`] lists every task that ran or guard that was skipped, in order,
//! with outcome, message and duration; its aggregate is the strongest outcome (Fail beats
//! Retry beats Wait beats Complete). It prints as a table, logs as one `tracing` record,
//! feeds [`TaskMetrics`], and tells the controller what to do next ([`Report::action`]).
//! Failed passes back off per object with [`FailureBackoff`].
//!
//! # A runbook
//!
//! ```
//! use std::time::Duration;
//! use tikv_operator_task::*;
//!
//! #[derive(Default)]
//! struct State {
//!     instance: Option<String>,
//!     paused: bool,
//!     pod_ready: bool,
//!     status_writes: u32,
//! }
//!
//! fn load_instance() -> Node<State> {
//!     task("load_instance", |s: &mut State| {
//!         Box::pin(async move {
//!             s.instance = Some("basic-tikv-0".into()); // a real task awaits the API here
//!             Outcome::complete("loaded")
//!         })
//!     })
//! }
//! fn instance_gone() -> Condition<State> {
//!     cond("instance_gone", |s: &State| s.instance.is_none())
//! }
//! fn instance_loaded() -> Condition<State> {
//!     cond("instance_loaded", |s: &State| s.instance.is_some())
//! }
//! fn paused() -> Condition<State> {
//!     cond("paused", |s: &State| s.paused)
//! }
//! fn pod() -> Node<State> {
//!     sync_task("pod", |s: &mut State| {
//!         if s.pod_ready {
//!             Outcome::complete("pod up to date")
//!         } else {
//!             Outcome::retry(Duration::from_secs(5), "pod not ready")
//!         }
//!     })
//! }
//! fn conditions() -> Node<State> {
//!     sync_task("conditions", |_: &mut State| Outcome::complete("computed"))
//! }
//! fn write_status() -> Node<State> {
//!     sync_task("write_status", |s: &mut State| {
//!         s.status_writes += 1;
//!         Outcome::complete("written")
//!     })
//! }
//!
//! fn tasks() -> Vec<Node<State>> {
//!     vec![
//!         load_instance(),
//!         if_break(instance_gone(), []),
//!         if_break(paused(), []),
//!         pod(),
//!         // The single status write, on every pass, unless the object is gone.
//!         finally([if_(instance_loaded(), [conditions(), write_status()])]),
//!     ]
//! }
//!
//! let runner = Runner::new("tikv", tasks());
//!
//! let mut state = State::default();
//! let report = futures::executor::block_on(runner.run("default/basic-tikv-0", &mut state));
//! assert_eq!(report.ran_names(), ["load_instance", "pod", "conditions", "write_status"]);
//! assert!(report.skipped("paused"));
//! assert_eq!(report.outcome(), OutcomeKind::Retry);
//! assert!(matches!(report.action(), PassResult::RequeueAfter(d) if d == Duration::from_secs(5)));
//! report.log();
//! println!("{report}");
//!
//! // A paused instance stops early, yet still reports why.
//! let mut state = State { paused: true, ..State::default() };
//! let report = futures::executor::block_on(runner.run("default/basic-tikv-0", &mut state));
//! assert_eq!(report.ran_names(), ["load_instance", "conditions", "write_status"]);
//! assert_eq!(report.stopped(), Some(&Stop::Break { at: "paused".into() }));
//! assert!(matches!(report.action(), PassResult::Done));
//! assert_eq!(state.status_writes, 1);
//! ```

mod backoff;
mod condition;
mod metrics;
mod node;
mod outcome;
mod report;
mod runner;
mod task;

#[cfg(test)]
mod testing;

pub use backoff::{FIRST_DELAY, FailureBackoff, MAX_DELAY, delay_for};
pub use condition::{Condition, cond};
pub use metrics::{NoMetrics, TaskDone, TaskMetrics};
pub use node::{Node, block, break_, finally, if_, if_break, if_not, outline};
pub use outcome::{Outcome, OutcomeKind, TaskError};
pub use report::{Entry, EntryStatus, PassResult, Report, Stop};
pub use runner::Runner;
pub use task::{Task, sync_task, task};

/// The boxed, `Send` future a [`Task`] returns.
pub use futures::future::BoxFuture;
