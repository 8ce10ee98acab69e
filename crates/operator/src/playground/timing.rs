//! The operator's clock beside the simulators, and the timing profiles it can run with.

use std::time::Duration;

use futures::future::BoxFuture;
use sim_clock::{SimClock, SimInstant};
use tikv_operator_controllers::Timing;
use tokio::time::Instant;

/// The simulators' clock as the operator's: the conditions it stamps, the ages and
/// stalls it measures, its PD polls and view ages, and its requeue delays all run on
/// simulated time, so that at 20x a 1 s PD poll is one simulated second, not twenty.
#[derive(Clone, Debug)]
pub struct SimulatedClock {
    clock: SimClock,
    /// The operator's instants are the simulated clock's laid onto tokio's type:
    /// `base` is `sim_base`, and they move on together at the simulated pace.
    base: Instant,
    sim_base: SimInstant,
}

impl SimulatedClock {
    pub fn new(clock: SimClock) -> Self {
        SimulatedClock { sim_base: clock.now(), base: Instant::now(), clock }
    }
}

impl tikv_operator_controllers::Clock for SimulatedClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::try_from(self.clock.wall()).unwrap_or_else(|_| jiff::Timestamp::now())
    }

    fn instant(&self) -> Instant {
        self.base + self.clock.now().saturating_duration_since(self.sim_base)
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        let clock = self.clock.clone();
        let deadline = self.sim_base + deadline.saturating_duration_since(self.base);
        Box::pin(async move { clock.sleep_until(deadline).await })
    }

    fn real_duration(&self, duration: Duration) -> Duration {
        self.clock.real_duration(duration)
    }
}

/// The simulators' clock for the operator's timestamps only (conditions, ages judged
/// against PD's heartbeats), its timers left in real time: for runs written against
/// real-time requeues and PD polls (the e2e scenarios, the chaos harness) and for runs
/// at 1x (the benchmarks).
#[derive(Clone, Debug)]
pub struct SimulatedTimestamps(pub SimClock);

impl tikv_operator_controllers::Clock for SimulatedTimestamps {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::try_from(self.0.wall()).unwrap_or_else(|_| jiff::Timestamp::now())
    }
}

/// `--timing-profile`: the operator's timings, ours or tidb-operator v2's (to measure
/// both side by side; see docs/benchmarks.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TimingProfile {
    /// Ours: PD polled fast only while something waits, idle clusters read rarely.
    #[default]
    Default,
    /// tidb-operator v2's: 30 s PD polls, 5 s requeues, 15 s ready after a restart.
    V2,
}

impl TimingProfile {
    pub fn timing(self) -> Timing {
        match self {
            TimingProfile::Default => Timing::default(),
            TimingProfile::V2 => Timing::v2(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tikv_operator_controllers::Clock;

    #[tokio::test]
    async fn the_operators_timers_follow_the_simulated_clock() {
        // A clock that moves only when advanced (1e-9 x real time), as tests jump it.
        let sim = SimClock::new(1e-9);
        let clock = SimulatedClock::new(sim.clone());
        let start = clock.instant();
        sim.advance(Duration::from_secs(60));
        assert!(
            clock.instant() - start >= Duration::from_secs(60),
            "a simulated minute passed on the operator's clock"
        );
        assert_eq!(
            SimulatedClock::new(SimClock::new(20.0)).real_duration(Duration::from_secs(5)),
            Duration::from_millis(250)
        );
        // A sleeper wakes once the simulated clock passes its deadline, not before.
        let sleeper = tokio::spawn(clock.sleep_until(clock.instant() + Duration::from_secs(3600)));
        tokio::task::yield_now().await;
        sim.advance(Duration::from_secs(1800));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        sim.advance(Duration::from_secs(1800));
        tokio::time::timeout(Duration::from_secs(10), sleeper).await.unwrap().unwrap();
    }

    #[test]
    fn profiles_name_their_timings() {
        assert_eq!(TimingProfile::default().timing(), Timing::default());
        assert_eq!(TimingProfile::V2.timing(), Timing::v2());
    }
}
