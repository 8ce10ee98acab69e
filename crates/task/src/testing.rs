//! A hand-built state and small tasks for the framework's own tests.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::{Condition, Node, Outcome, Report, Runner, cond, sync_task};

/// Records which tasks ran and which flags are set.
#[derive(Default)]
pub struct Trace {
    pub ran: Vec<String>,
    pub flags: BTreeSet<&'static str>,
}

impl Trace {
    pub fn with_flags(flags: &[&'static str]) -> Self {
        Self { flags: flags.iter().copied().collect(), ..Self::default() }
    }
}

/// A task that records its name and completes with the message `<name> done`.
pub fn step(name: &'static str) -> Node<Trace> {
    sync_task(name, move |t: &mut Trace| {
        t.ran.push(name.to_owned());
        Outcome::complete(format!("{name} done"))
    })
}

/// A task that records its name and returns `outcome`.
pub fn step_with(name: &'static str, outcome: Outcome) -> Node<Trace> {
    sync_task(name, move |t: &mut Trace| {
        t.ran.push(name.to_owned());
        outcome.clone()
    })
}

pub fn waits(name: &'static str) -> Node<Trace> {
    step_with(name, Outcome::wait(format!("{name} waits")))
}

pub fn retries(name: &'static str, secs: u64) -> Node<Trace> {
    step_with(name, Outcome::retry(Duration::from_secs(secs), format!("{name} retries")))
}

pub fn fails(name: &'static str) -> Node<Trace> {
    step_with(name, Outcome::fail(format!("{name} broke")))
}

/// A task that records its name and sets `flag`.
pub fn sets(name: &'static str, flag: &'static str) -> Node<Trace> {
    sync_task(name, move |t: &mut Trace| {
        t.ran.push(name.to_owned());
        t.flags.insert(flag);
        Outcome::complete(format!("set {flag}"))
    })
}

/// A condition named `flag` that holds when the flag is set; each evaluation is counted.
///
/// Conditions only read the state, so the count lives in a shared cell.
pub fn flag(flag: &'static str) -> (Condition<Trace>, Counter) {
    let counter = Counter::default();
    let seen = counter.clone();
    let condition = cond(flag, move |t: &Trace| {
        seen.bump();
        t.flags.contains(flag)
    });
    (condition, counter)
}

/// A condition named `flag` whose evaluations are not counted.
pub fn is(name: &'static str) -> Condition<Trace> {
    flag(name).0
}

#[derive(Clone, Default)]
pub struct Counter(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl Counter {
    fn bump(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Runs one pass of `tasks` over `trace`.
pub fn run_on(trace: &mut Trace, tasks: impl IntoIterator<Item = Node<Trace>>) -> Report {
    let runner = Runner::new("test", tasks);
    futures::executor::block_on(runner.run("ns/obj", trace))
}

/// Runs one pass of `tasks` over an empty trace.
pub fn run(tasks: impl IntoIterator<Item = Node<Trace>>) -> (Report, Trace) {
    let mut trace = Trace::default();
    let report = run_on(&mut trace, tasks);
    (report, trace)
}
