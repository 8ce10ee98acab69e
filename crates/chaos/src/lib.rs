//! tikv-operator-chaos: seeded crash and fault runs of the operator against the
//! simulators (issue #15).
//!
//! Each seed picks a [`Scenario`] (every operation, and overlapping pairs) and a
//! [`Schedule`] of faults (operator kills at task boundaries, Kubernetes write
//! failures, dropped and delayed watches, PD leader loss, PD 503s, a store Down); the
//! run is judged by convergence to the scenario's spec within its bound, by the safety
//! watcher (DESIGN §5) and by the workload probe (no acknowledged write lost). See
//! `docs/reliability.md`.

pub mod check;
pub mod operator;
pub mod run;
pub mod scenario;
pub mod schedule;

pub use run::{Outcome, Settings, replay_command, run_seed, summary};
pub use scenario::Scenario;
pub use schedule::Schedule;

/// Runs `seeds` one after another (each on a fresh harness), printing one line per
/// run as it ends (`ok ...`, or `FAIL ...` with the replay command); returns every
/// outcome.
pub async fn run_seeds(seeds: &[u64], forced: Option<Scenario>, settings: &Settings) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for &seed in seeds {
        let outcome = run_seed(seed, forced, settings).await;
        if outcome.ok() {
            println!("{}", outcome.ok_line());
        } else {
            println!("{}", outcome.failure_line());
        }
        outcomes.push(outcome);
    }
    outcomes
}
