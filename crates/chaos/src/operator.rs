//! The operator under test, killed and restarted at task boundaries.
//!
//! Each incarnation runs on its own thread with its own single-threaded tokio runtime:
//! every task of it (controllers, watches, the HTTP connections of its Kubernetes and PD
//! clients) runs on that one thread. Its metrics forward each task boundary to a
//! [`CrashHook`]; at the boundary the schedule picked, the hook reports the crash point
//! and blocks that thread. The whole incarnation then stops at once between two tasks
//! — nothing after that boundary reaches the simulators, as after a SIGKILL — and a
//! fresh incarnation (new caches, new PD views, nothing carried over) takes its place.
//! A frozen thread is let go only once the simulators it talked to are shut down.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::FutureExt;
use sim_clock::SimClock;
use tikv_operator::playground::timing::SimulatedClock;
use tikv_operator_controllers::OperatorConfig;
use tikv_operator_controllers::metrics::Metrics;
use tikv_operator_task::{EntryStatus, OutcomeKind, TaskDone, TaskMetrics};
use tokio::sync::watch;

/// Where an incarnation was killed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashPoint {
    pub incarnation: usize,
    /// The boundary's number in this incarnation's count.
    pub boundary: u64,
    pub controller: String,
    pub object: String,
    pub pass: u64,
    pub task: String,
    pub status: String,
    /// Simulated time since the clock started.
    pub at: Duration,
}

impl std::fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "operator #{} killed at t={:.1}s after boundary {}: {} {} pass {} task {} ({})",
            self.incarnation,
            self.at.as_secs_f64(),
            self.boundary,
            self.controller,
            self.object,
            self.pass,
            self.task,
            self.status
        )
    }
}

/// Holds frozen incarnations until released.
#[derive(Default)]
struct Gate {
    released: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut released = self.released.lock().unwrap_or_else(PoisonError::into_inner);
        while !*released {
            released = self.opened.wait(released).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn release(&self) {
        *self.released.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.opened.notify_all();
    }
}

/// Counts an incarnation's task boundaries while armed and freezes its thread at
/// `crash_at`.
struct CrashHook {
    incarnation: usize,
    crash_at: Option<u64>,
    seen: AtomicU64,
    armed: Arc<AtomicBool>,
    gate: Arc<Gate>,
    crashes: Mutex<mpsc::Sender<CrashPoint>>,
    clock: SimClock,
}

impl TaskMetrics for CrashHook {
    fn task_finished(&self, _: &str, _: &str, _: EntryStatus, _: Duration) {}

    fn task_done(&self, done: &TaskDone<'_>) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let boundary = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(boundary) != self.crash_at {
            return;
        }
        let point = CrashPoint {
            incarnation: self.incarnation,
            boundary,
            controller: done.controller.to_owned(),
            object: done.object.to_owned(),
            pass: done.pass,
            task: done.task.to_owned(),
            status: done.status.as_str().to_owned(),
            at: self.clock.now().since_start(),
        };
        let _ = self.crashes.lock().unwrap_or_else(PoisonError::into_inner).send(point);
        // The kill: this thread, and with it every task of this incarnation, stops here.
        self.gate.wait();
    }

    fn pass_finished(&self, _: &str, _: OutcomeKind, _: Duration) {}
}

struct Incarnation {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

/// The operator's incarnations in one run.
pub struct Operator {
    kubeconfig: PathBuf,
    config: OperatorConfig,
    clock: SimClock,
    armed: Arc<AtomicBool>,
    gate: Arc<Gate>,
    crash_tx: mpsc::Sender<CrashPoint>,
    crash_rx: mpsc::Receiver<CrashPoint>,
    incarnations: Vec<Incarnation>,
    /// Boundaries at which the next incarnations are killed, in turn.
    crashes: Vec<u64>,
}

impl Operator {
    /// Starts the first incarnation (not armed: its boundaries count from [`arm`]).
    pub fn start(kubeconfig: PathBuf, config: OperatorConfig, clock: SimClock, crashes: Vec<u64>) -> Operator {
        let (crash_tx, crash_rx) = mpsc::channel();
        let mut operator = Operator {
            kubeconfig,
            config,
            clock,
            armed: Arc::new(AtomicBool::new(false)),
            gate: Arc::new(Gate::default()),
            crash_tx,
            crash_rx,
            incarnations: Vec::new(),
            crashes,
        };
        operator.spawn();
        operator
    }

    /// Crashes may happen from now on.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// No more crashes (a boundary being counted right now may still fire).
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    /// The crash that happened since the last call, if any; a fresh incarnation is
    /// already running when this returns one.
    pub fn poll_crash(&mut self) -> Option<CrashPoint> {
        let point = self.crash_rx.try_recv().ok()?;
        self.spawn();
        Some(point)
    }

    pub fn incarnations(&self) -> usize {
        self.incarnations.len()
    }

    fn spawn(&mut self) {
        let number = self.incarnations.len();
        let crash_at = if self.crashes.is_empty() { None } else { Some(self.crashes.remove(0)) };
        let hook = CrashHook {
            incarnation: number,
            crash_at,
            seen: AtomicU64::new(0),
            armed: self.armed.clone(),
            gate: self.gate.clone(),
            crashes: Mutex::new(self.crash_tx.clone()),
            clock: self.clock.clone(),
        };
        let metrics = Arc::new(Metrics::default());
        metrics.observe_tasks(Arc::new(hook));
        let (stop, stop_rx) = watch::channel(false);
        let shutdown = async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|s| *s).await;
        }
        .boxed()
        .shared();
        let kubeconfig = self.kubeconfig.clone();
        let config = self.config.clone();
        let clock: Arc<dyn tikv_operator_controllers::Clock> = Arc::new(SimulatedClock::new(self.clock.clone()));
        let thread = std::thread::Builder::new().name(format!("operator-{number}")).spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            let run = tikv_operator_controllers::run_until_with_metrics(kubeconfig, config, clock, metrics, shutdown);
            if let Err(error) = runtime.block_on(run) {
                eprintln!("operator #{number} ended with an error: {error}");
            }
        });
        match thread {
            Ok(thread) => self.incarnations.push(Incarnation { stop, thread }),
            Err(error) => eprintln!("operator #{number} could not start: {error}"),
        }
    }

    /// Stops every incarnation: call it after the simulators are shut down. The live
    /// one gets its shutdown signal, the frozen ones are let go (and get theirs); each
    /// thread is waited for a bounded time (a thread still busy then is left behind).
    pub fn finish(self) {
        for incarnation in &self.incarnations {
            let _ = incarnation.stop.send(true);
        }
        self.gate.release();
        let deadline = Instant::now() + Duration::from_secs(20);
        for incarnation in self.incarnations {
            while !incarnation.thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if incarnation.thread.is_finished() {
                let _ = incarnation.thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_freezes_at_its_boundary_only_while_armed_and_reports_where() {
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Gate::default());
        let armed = Arc::new(AtomicBool::new(false));
        let hook = Arc::new(CrashHook {
            incarnation: 2,
            crash_at: Some(2),
            seen: AtomicU64::new(0),
            armed: armed.clone(),
            gate: gate.clone(),
            crashes: Mutex::new(tx),
            clock: SimClock::new(1.0),
        });
        let status = EntryStatus::Ran(OutcomeKind::Complete);
        let done = move |task: &'static str| TaskDone {
            controller: "tikv",
            object: "default/basic-tikv-x",
            pass: 9,
            task,
            status,
            duration: Duration::ZERO,
        };
        // Not armed: nothing counts.
        hook.task_done(&done("a"));
        armed.store(true, Ordering::SeqCst);
        hook.task_done(&done("b"));
        let frozen = {
            let hook = hook.clone();
            std::thread::spawn(move || {
                hook.task_done(&done("c"));
                "released"
            })
        };
        let point = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!((point.incarnation, point.boundary, point.task.as_str(), point.pass), (2, 2, "c", 9));
        assert!(!frozen.is_finished(), "the thread stays frozen until released");
        gate.release();
        assert_eq!(frozen.join().unwrap(), "released");
        hook.task_done(&done("d"));
        assert!(rx.try_recv().is_err(), "one crash per incarnation");
    }
}
