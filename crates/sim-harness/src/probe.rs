//! The workload probe: a client that writes a new key through pd-sim's regions every
//! `interval` of simulated time while a test runs, records which writes were
//! acknowledged and which were refused (when, and why: availability figures), and at
//! the end checks that every acknowledged key is still held by a quorum of its region
//! ([`WorkloadProbe::verify`]). pd-sim models what raft does with the writes (see
//! `pd_sim::model::data`); a store whose volume is deleted loses its replicas there
//! (see [`crate::clusters`]).
//!
//! ```no_run
//! # async fn demo(harness: &sim_harness::Harness) {
//! use sim_harness::{ProbeConfig, WorkloadProbe};
//! let probe = WorkloadProbe::start_in(harness, "db", ProbeConfig::default()).expect("a PD cluster in db");
//! // ... the operation under test ...
//! probe.verify().assert_nothing_lost();
//! # }
//! ```
//!
//! Keys are chosen from the seed: each write picks a region at random (the seeded
//! generator) and writes a new key inside its range, so writes spread over every
//! region; the same seed and the same regions give the same keys.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pd_sim::{Control, KeyCheck, KeyProblem, Unavailable};
use serde::Serialize;
use sim_clock::SimClock;
use tokio::task::JoinHandle;

use crate::harness::Harness;

#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// Simulated time between two writes.
    pub interval: Duration,
    /// Seeds the choice of regions and the keys' names.
    pub seed: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { interval: Duration::from_millis(200), seed: 0x0090_be5e_ed00 }
    }
}

/// An acknowledged write: the key, at that simulated time since the clock started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeWrite {
    pub at: Duration,
    pub key: String,
}

/// A refused write, with PD's region and the reason (the region could not commit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeRefusal {
    pub at: Duration,
    pub key: String,
    pub reason: Unavailable,
}

/// Every write so far, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    pub acknowledged: Vec<ProbeWrite>,
    pub refused: Vec<ProbeRefusal>,
}

impl ProbeReport {
    /// The share of writes acknowledged (1.0 with no writes).
    pub fn availability(&self) -> f64 {
        let total = self.acknowledged.len() + self.refused.len();
        if total == 0 { 1.0 } else { self.acknowledged.len() as f64 / total as f64 }
    }
}

/// What [`WorkloadProbe::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProbeVerdict {
    pub acknowledged: usize,
    pub refused: usize,
    /// Acknowledged keys no quorum of their region holds any more.
    pub lost: Vec<KeyProblem>,
    /// Acknowledged keys a quorum holds but the region cannot serve now.
    pub unreadable: Vec<KeyProblem>,
}

impl ProbeVerdict {
    /// Panics with the lost keys (at most 20 listed) if any acknowledged write was lost.
    #[allow(clippy::panic)]
    pub fn assert_nothing_lost(&self) {
        if !self.lost.is_empty() {
            let list: Vec<String> = self
                .lost
                .iter()
                .take(20)
                .map(|p| format!("  - {} (region {:?}): {}", p.key, p.region, p.reason))
                .collect();
            panic!("{} of {} acknowledged writes lost:\n{}", self.lost.len(), self.acknowledged, list.join("\n"));
        }
    }
}

struct State {
    rng: u64,
    /// The regions' start keys, sorted; read once the cluster has regions (regions do
    /// not split or merge in pd-sim).
    starts: Vec<String>,
    /// Names this probe's keys apart from another probe's.
    tag: u32,
    next: u64,
    stopped: bool,
    report: ProbeReport,
}

/// A running probe; writing stops at [`stop`](Self::stop), [`verify`](Self::verify) or
/// drop.
pub struct WorkloadProbe {
    control: Control,
    clock: SimClock,
    state: Arc<Mutex<State>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl WorkloadProbe {
    /// Starts writing to the PD cluster `control` drives, one key every
    /// `config.interval` on `clock`, the first one interval from now.
    pub fn start(control: Control, clock: SimClock, config: ProbeConfig) -> WorkloadProbe {
        let mut rng = config.seed;
        let tag = (splitmix(&mut rng) >> 32) as u32;
        let state = Arc::new(Mutex::new(State {
            rng,
            starts: Vec::new(),
            tag,
            next: 1,
            stopped: false,
            report: ProbeReport::default(),
        }));
        let probe = WorkloadProbe { control, clock, state, task: Mutex::new(None) };
        let task = tokio::spawn(run(probe.control.clone(), probe.clock.clone(), probe.state.clone(), config.interval));
        *relock(probe.task.lock()) = Some(task);
        probe
    }

    /// Starts against the PD cluster the harness's pods formed last in `namespace`;
    /// none if no PD pod formed one there yet.
    pub fn start_in(harness: &Harness, namespace: &str, config: ProbeConfig) -> Option<WorkloadProbe> {
        let cluster = harness.pd_clusters().into_iter().rev().find(|c| c.namespace == namespace)?;
        Some(WorkloadProbe::start(cluster.control(), harness.clock().clone(), config))
    }

    /// One write now, recorded like the periodic ones: the key, or why it was refused.
    pub fn write_once(&self) -> Result<String, Unavailable> {
        write(&self.control, &self.clock, &mut lock(&self.state))
    }

    /// Every write so far.
    pub fn report(&self) -> ProbeReport {
        lock(&self.state).report.clone()
    }

    /// No more periodic writes.
    pub fn stop(&self) {
        lock(&self.state).stopped = true;
        if let Some(task) = relock(self.task.lock()).take() {
            task.abort();
        }
    }

    /// Stops writing, then checks every acknowledged key against pd-sim's ground truth.
    pub fn verify(&self) -> ProbeVerdict {
        self.stop();
        let report = self.report();
        let keys: Vec<String> = report.acknowledged.iter().map(|w| w.key.clone()).collect();
        let KeyCheck { lost, unreadable, .. } = self.control.check(&keys);
        ProbeVerdict { acknowledged: keys.len(), refused: report.refused.len(), lost, unreadable }
    }
}

impl Drop for WorkloadProbe {
    fn drop(&mut self) {
        if let Some(task) = relock(self.task.lock()).take() {
            task.abort();
        }
    }
}

async fn run(control: Control, clock: SimClock, state: Arc<Mutex<State>>, interval: Duration) {
    let interval = interval.max(Duration::from_millis(1));
    let mut next = clock.now() + interval;
    loop {
        clock.sleep_until(next).await;
        {
            let mut st = lock(&state);
            if st.stopped {
                return;
            }
            let _ = write(&control, &clock, &mut st);
        }
        // Ticks missed while the process was busy are skipped, not bunched.
        next = (next + interval).max(clock.now());
    }
}

fn write(control: &Control, clock: &SimClock, st: &mut State) -> Result<String, Unavailable> {
    if st.starts.is_empty() {
        let mut starts: Vec<String> = control.snapshot().regions.into_iter().map(|r| r.start_key).collect();
        starts.sort();
        st.starts = starts;
    }
    let start = match st.starts.len() {
        0 => String::new(),
        n => st.starts[(splitmix(&mut st.rng) % n as u64) as usize].clone(),
    };
    // A suffix after the region's start key stays inside its range: the end key
    // differs from the start key before the start key ends. The first region starts
    // at the empty key: a leading zero byte keeps its keys below the next region's.
    let lead = if start.is_empty() { "00" } else { "" };
    let key = format!("{start}{lead}{:08X}{:08X}", st.tag, st.next);
    st.next += 1;
    let at = clock.now().since_start();
    match control.put(&key) {
        Ok(()) => {
            st.report.acknowledged.push(ProbeWrite { at, key: key.clone() });
            Ok(key)
        }
        Err(reason) => {
            st.report.refused.push(ProbeRefusal { at, key, reason: reason.clone() });
            Err(reason)
        }
    }
}

/// SplitMix64: a small seeded generator, the same sequence on every platform.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    relock(state.lock())
}

fn relock<'a, T>(result: Result<MutexGuard<'a, T>, std::sync::PoisonError<MutexGuard<'a, T>>>) -> MutexGuard<'a, T> {
    result.unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
