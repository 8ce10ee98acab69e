//! The controllers of tikv-operator, on the task framework: one folder per controller
//! (wiring in `mod.rs`, the runbook in `builder.rs`, the pass state in `state.rs`, one
//! task per file in `tasks/`), generic tasks in [`common`], and the pure [`updater`].

pub mod apply;
pub mod cache;
pub mod cluster;
pub mod common;
pub mod context;
pub mod controller;
pub mod error;
pub mod fence;
pub mod leader;
pub mod metrics;
pub mod pd;
pub mod pd_registry;
pub mod pdgroup;
pub mod recorder;
pub mod revision;
pub mod runbooks;
pub mod tikv;
pub mod tikvgroup;
pub mod triggers;
pub mod updater;

#[cfg(test)]
pub(crate) mod testing;

pub use context::{
    Clock, Concurrency, Context, DEFAULT_TOOLS_IMAGE, FixedClock, LeadersBack, OperatorConfig, SystemClock, Timing,
};
pub use error::Error;
pub mod run;
pub mod telemetry;

pub use run::{
    RunConfig, USER_AGENT, run, run_controllers, run_until, run_until_serving, run_until_with_clock,
    run_until_with_metrics,
};
