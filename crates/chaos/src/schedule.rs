//! The fault schedule of one run, drawn from its seed by one seeded RNG: the same seed
//! always gives the same schedule (simulated times, durations, crash boundaries).

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultKind {
    /// This fraction of the operator's Kubernetes writes (create, update, patch, delete)
    /// fail, with 500 or 409.
    ApiWriteFailures { fraction: f64, conflict: bool },
    /// Every watch event reaches its watchers this late (simulated time).
    WatchDelay { delay: Duration },
    /// Every open watch is closed at once (clients reconnect from their last version).
    DropWatches,
    /// The PD leader resigns (pd-ctl `member leader resign`): no leader until PD elects.
    PdLeaderLoss,
    /// This fraction of PD requests get 503.
    Pd503 { fraction: f64 },
    /// The node of one TiKV (picked by `pick`) is powered off: its store goes Down.
    StoreDown { pick: u64 },
}

impl FaultKind {
    /// A short name, one per kind.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::ApiWriteFailures { .. } => "api-write-failures",
            FaultKind::WatchDelay { .. } => "watch-delay",
            FaultKind::DropWatches => "drop-watches",
            FaultKind::PdLeaderLoss => "pd-leader-loss",
            FaultKind::Pd503 { .. } => "pd-503",
            FaultKind::StoreDown { .. } => "store-down",
        }
    }

    /// Every kind's name.
    pub const NAMES: [&'static str; 6] =
        ["api-write-failures", "watch-delay", "drop-watches", "pd-leader-loss", "pd-503", "store-down"];
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::ApiWriteFailures { fraction, conflict } => {
                let status = if *conflict { 409 } else { 500 };
                write!(f, "api-write-failures {:.0}% -> {status}", fraction * 100.0)
            }
            FaultKind::WatchDelay { delay } => write!(f, "watch-delay {}ms", delay.as_millis()),
            FaultKind::Pd503 { fraction } => write!(f, "pd-503 {:.0}%", fraction * 100.0),
            FaultKind::StoreDown { pick } => write!(f, "store-down (TiKV #{pick})"),
            other => f.write_str(other.name()),
        }
    }
}

/// A fault injected `at` (simulated time since the operation started) and healed
/// `lasts` later (instant faults — dropped watches, a leader resigning — have nothing
/// to heal).
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub at: Duration,
    pub lasts: Duration,
    pub kind: FaultKind,
}

impl Fault {
    pub fn heals_at(&self) -> Duration {
        self.at + self.lasts
    }
}

/// Everything a seed decides about faults.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub seed: u64,
    /// Sorted by `at`.
    pub faults: Vec<Fault>,
    /// The operator is killed at this task boundary of each incarnation in turn (the
    /// first entry for the first incarnation, ...), counted from the operation's start
    /// for the first and from its own start for each later one.
    pub crashes: Vec<u64>,
    /// Every fault is healed and crashes stop here (simulated time since the operation
    /// started); the convergence bound starts then.
    pub heal_at: Duration,
}

/// Simulated time in which faults happen.
pub const FAULT_WINDOW: Duration = Duration::from_secs(150);

impl Schedule {
    /// The schedule of `seed`: two to four operator crashes, and of each fault kind a
    /// chance of one occurrence (at least two kinds per run), all inside the window.
    pub fn from_seed(seed: u64) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xc4a0_5eed);
        let crashes = (0..rng.random_range(2..=4)).map(|_| rng.random_range(1..=600)).collect();
        let window = FAULT_WINDOW.as_secs();
        let mut faults = Vec::new();
        let mut kinds: Vec<FaultKind> = Vec::new();
        // Drawn in a fixed order, so the schedule depends on the seed alone.
        let candidates = [
            (0.7, FaultKind::ApiWriteFailures { fraction: 0.1, conflict: rng.random_bool(0.5) }),
            (0.5, FaultKind::WatchDelay { delay: Duration::from_millis(rng.random_range(500..=3000)) }),
            (0.6, FaultKind::DropWatches),
            (0.5, FaultKind::PdLeaderLoss),
            (0.5, FaultKind::Pd503 { fraction: 0.1 * f64::from(rng.random_range(1..=3u8)) }),
            (0.4, FaultKind::StoreDown { pick: rng.random_range(0..16) }),
        ];
        for (chance, kind) in candidates {
            if rng.random_bool(chance) {
                kinds.push(kind);
            }
        }
        while kinds.len() < 2 {
            let (_, kind) = candidates[rng.random_range(0..candidates.len())];
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        for kind in kinds {
            let at = rng.random_range(0..window - 60);
            let lasts = match kind {
                FaultKind::DropWatches | FaultKind::PdLeaderLoss => 0,
                _ => rng.random_range(10..=(window - at).min(60)),
            };
            faults.push(Fault { at: Duration::from_secs(at), lasts: Duration::from_secs(lasts), kind });
        }
        faults.sort_by_key(|f| f.at);
        Schedule { seed, faults, crashes, heal_at: FAULT_WINDOW }
    }

    /// The schedule as trace lines.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "schedule: crashes at task boundaries {:?}, faults heal by {}s",
            self.crashes,
            self.heal_at.as_secs()
        )];
        for f in &self.faults {
            lines.push(format!("  fault at {:>4}s for {:>3}s: {}", f.at.as_secs(), f.lasts.as_secs(), f.kind));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        for seed in 0..50 {
            assert_eq!(Schedule::from_seed(seed), Schedule::from_seed(seed));
        }
        assert_ne!(Schedule::from_seed(1), Schedule::from_seed(2));
    }

    #[test]
    fn every_fault_kind_occurs_over_a_few_seeds() {
        let seen: BTreeSet<&str> = (0..20).flat_map(|s| Schedule::from_seed(s).faults).map(|f| f.kind.name()).collect();
        assert_eq!(seen, FaultKind::NAMES.into_iter().collect());
    }

    #[test]
    fn faults_heal_before_the_window_ends_and_crashes_are_several() {
        for seed in 0..200 {
            let s = Schedule::from_seed(seed);
            assert!(s.faults.len() >= 2, "seed {seed}: {s:?}");
            assert!((2..=4).contains(&s.crashes.len()), "seed {seed}: {s:?}");
            assert!(s.faults.iter().all(|f| f.heals_at() <= s.heal_at), "seed {seed}: {s:?}");
            assert!(s.faults.windows(2).all(|w| w[0].at <= w[1].at));
            let kinds: BTreeSet<&str> = s.faults.iter().map(|f| f.kind.name()).collect();
            assert_eq!(kinds.len(), s.faults.len(), "one of each kind at most");
        }
    }

    #[test]
    fn the_schedule_reads_as_lines() {
        let lines = Schedule::from_seed(3).describe();
        assert!(lines[0].starts_with("schedule: crashes at task boundaries ["), "{lines:?}");
        assert!(lines.len() >= 3);
    }
}
