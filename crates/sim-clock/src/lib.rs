//! The simulators' one clock: simulated time runs `speed` times faster than real time,
//! so every timeout of kube-sim and pd-sim keeps its ratio to the others in fast runs,
//! and tests can jump it forward with [`SimClock::advance`] instead of sleeping.
//!
//! Real time is read from `tokio::time::Instant`, so a test on tokio's paused clock
//! drives the simulation deterministically too.

use std::ops::{Add, Sub};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;

/// A moment on the simulated clock: simulated time since the clock started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimInstant(Duration);

impl SimInstant {
    /// Simulated time since the clock started.
    pub fn since_start(self) -> Duration {
        self.0
    }

    /// Simulated time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: SimInstant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for SimInstant {
    type Output = SimInstant;
    fn add(self, rhs: Duration) -> SimInstant {
        SimInstant(self.0 + rhs)
    }
}

impl Sub<SimInstant> for SimInstant {
    type Output = Duration;
    fn sub(self, rhs: SimInstant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// A cheap-to-clone handle on one simulated clock.
#[derive(Clone, Debug)]
pub struct SimClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    wall_at_start: SystemTime,
    state: Mutex<State>,
    changed: Notify,
}

/// Simulated time is `sim_at_base + (real_now - real_base) * speed`; the base moves
/// whenever the speed changes or the clock is advanced.
#[derive(Debug)]
struct State {
    real_base: Instant,
    sim_at_base: Duration,
    speed: f64,
}

impl State {
    fn elapsed(&self, real_now: Instant) -> Duration {
        self.sim_at_base + real_now.saturating_duration_since(self.real_base).mul_f64(self.speed)
    }
}

impl SimClock {
    /// A clock running `speed` times real time (1.0 is real time). Speeds that are not
    /// finite and positive are treated as 1.0.
    pub fn new(speed: f64) -> Self {
        SimClock {
            inner: Arc::new(Inner {
                wall_at_start: SystemTime::now(),
                state: Mutex::new(State { real_base: Instant::now(), sim_at_base: Duration::ZERO, speed: sane(speed) }),
                changed: Notify::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (every
        // update is a plain assignment), so a poisoned lock is still usable.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Now, on the simulated clock.
    pub fn now(&self) -> SimInstant {
        SimInstant(self.state().elapsed(Instant::now()))
    }

    /// Simulated wall-clock time, for timestamps the simulators show (creation times,
    /// heartbeats): the real time at start plus the simulated time since.
    pub fn wall(&self) -> SystemTime {
        self.inner.wall_at_start + self.now().since_start()
    }

    pub fn speed(&self) -> f64 {
        self.state().speed
    }

    /// Changes the speed from now on; simulated time already passed is kept.
    pub fn set_speed(&self, speed: f64) {
        let mut state = self.state();
        let now = Instant::now();
        state.sim_at_base = state.elapsed(now);
        state.real_base = now;
        state.speed = sane(speed);
        drop(state);
        self.inner.changed.notify_waiters();
    }

    /// Jumps simulated time forward; every sleeper whose deadline passed wakes up.
    pub fn advance(&self, by: Duration) {
        self.state().sim_at_base += by;
        self.inner.changed.notify_waiters();
    }

    /// The real time that `simulated` takes at the current speed.
    pub fn real_duration(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.speed())
    }

    /// Sleeps for a simulated duration.
    pub async fn sleep(&self, simulated: Duration) {
        let deadline = self.now() + simulated;
        self.sleep_until(deadline).await;
    }

    /// Sleeps until a simulated moment; wakes early to re-check when the clock is
    /// advanced or its speed changes.
    pub async fn sleep_until(&self, deadline: SimInstant) {
        loop {
            let changed = self.inner.changed.notified();
            let now = self.now();
            if now >= deadline {
                return;
            }
            let real = self.real_duration(deadline - now);
            tokio::select! {
                _ = tokio::time::sleep(real) => {}
                _ = changed => {}
            }
        }
    }
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock::new(1.0)
    }
}

fn sane(speed: f64) -> f64 {
    if speed.is_finite() && speed > 0.0 { speed } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn simulated_time_runs_at_the_speed_factor() {
        let clock = SimClock::new(10.0);
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(clock.now().since_start(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_speed_change_keeps_the_time_already_passed() {
        let clock = SimClock::new(2.0);
        tokio::time::advance(Duration::from_secs(5)).await;
        clock.set_speed(100.0);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(clock.now().since_start(), Duration::from_secs(110));
        assert_eq!(clock.speed(), 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_takes_the_simulated_duration_divided_by_speed() {
        let clock = SimClock::new(60.0);
        let start = Instant::now();
        clock.sleep(Duration::from_secs(120)).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
        assert!(clock.now().since_start() >= Duration::from_secs(120));
    }

    #[tokio::test(start_paused = true)]
    async fn advance_wakes_sleepers_whose_deadline_passed() {
        let clock = SimClock::new(1.0);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(3600)).await }
        });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(3600));
        tokio::time::timeout(Duration::from_millis(1), sleeper).await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn advancing_less_than_the_deadline_keeps_the_sleeper_asleep() {
        let clock = SimClock::new(1.0);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(100)).await }
        });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(60));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        tokio::time::advance(Duration::from_secs(40)).await;
        tokio::time::timeout(Duration::from_millis(1), sleeper).await.unwrap().unwrap();
    }

    #[test]
    fn nonsense_speeds_fall_back_to_real_time() {
        assert_eq!(SimClock::new(0.0).speed(), 1.0);
        assert_eq!(SimClock::new(f64::NAN).speed(), 1.0);
        assert_eq!(SimClock::new(-3.0).speed(), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn wall_time_moves_with_simulated_time() {
        let clock = SimClock::new(1.0);
        let before = clock.wall();
        clock.advance(Duration::from_secs(86_400));
        assert_eq!(clock.wall().duration_since(before).unwrap(), Duration::from_secs(86_400));
    }
}
