//! When the cache polls next, and what it reads: a pure function of its state, so the
//! whole policy is tested without a clock.
//!
//! - **Fast** while a wait is registered: something is in motion and will judge PD
//!   soon.
//! - **Slow** for [`CacheConfig::idle_after`] after the last activity (a write, a wait
//!   registered or released, a change seen): things may still be settling.
//! - **Idle** otherwise: a Ready cluster nobody waits on.
//!
//! Every poll reads everything (see `read_view`). A refresh (asked for, or after a
//! write) polls at once.

use std::time::Duration;

use tokio::time::Instant;

use super::CacheConfig;

/// How often the cache polls now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollMode {
    Fast,
    Slow,
    Idle,
}

/// What the schedule looks at.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Inputs {
    /// A wait is registered.
    pub waiting: bool,
    /// A refresh was asked for (or a write made) that no started poll covers.
    pub refresh_wanted: bool,
    pub last_poll_started: Option<Instant>,
    /// The last write, wait registered or released, or change seen.
    pub last_activity: Option<Instant>,
}

/// What the poll loop does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Poll,
    SleepUntil(Instant),
}

pub(crate) fn mode(config: &CacheConfig, inputs: &Inputs, now: Instant) -> PollMode {
    if inputs.waiting {
        PollMode::Fast
    } else if inputs.last_activity.is_some_and(|at| now.saturating_duration_since(at) < config.idle_after) {
        PollMode::Slow
    } else {
        PollMode::Idle
    }
}

pub(crate) fn interval(config: &CacheConfig, mode: PollMode) -> Duration {
    match mode {
        PollMode::Fast => config.fast_interval,
        PollMode::Slow => config.slow_interval,
        PollMode::Idle => config.idle_interval,
    }
}

pub(crate) fn next(config: &CacheConfig, inputs: &Inputs, now: Instant) -> Next {
    let Some(last) = inputs.last_poll_started else {
        return Next::Poll;
    };
    if inputs.refresh_wanted {
        return Next::Poll;
    }
    let mode = mode(config, inputs, now);
    let due = last + interval(config, mode);
    if now >= due { Next::Poll } else { Next::SleepUntil(due) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CacheConfig {
        CacheConfig {
            fast_interval: Duration::from_secs(1),
            slow_interval: Duration::from_secs(30),
            idle_interval: Duration::from_secs(60),
            idle_after: Duration::from_secs(120),
            ..CacheConfig::default()
        }
    }

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn the_first_poll_and_a_refresh_are_at_once() {
        let t0 = Instant::now();
        assert_eq!(next(&config(), &Inputs::default(), t0), Next::Poll);
        let inputs = Inputs { refresh_wanted: true, last_poll_started: Some(t0), ..Inputs::default() };
        assert_eq!(next(&config(), &inputs, at(t0, 0)), Next::Poll);
    }

    #[test]
    fn a_wait_polls_every_fast_interval() {
        let t0 = Instant::now();
        let inputs =
            Inputs { waiting: true, last_poll_started: Some(t0), last_activity: Some(t0), ..Inputs::default() };
        assert_eq!(mode(&config(), &inputs, t0), PollMode::Fast);
        assert_eq!(next(&config(), &inputs, t0), Next::SleepUntil(at(t0, 1)));
        assert_eq!(next(&config(), &inputs, at(t0, 1)), Next::Poll);
    }

    #[test]
    fn after_activity_polls_slowly_then_idle() {
        let t0 = Instant::now();
        let mut inputs = Inputs { last_poll_started: Some(t0), last_activity: Some(t0), ..Inputs::default() };
        assert_eq!(mode(&config(), &inputs, at(t0, 10)), PollMode::Slow);
        assert_eq!(next(&config(), &inputs, at(t0, 10)), Next::SleepUntil(at(t0, 30)));
        assert_eq!(next(&config(), &inputs, at(t0, 30)), Next::Poll);
        // Two minutes after the last activity the cluster is idle.
        inputs.last_poll_started = Some(at(t0, 120));
        assert_eq!(mode(&config(), &inputs, at(t0, 120)), PollMode::Idle);
        assert_eq!(next(&config(), &inputs, at(t0, 150)), Next::SleepUntil(at(t0, 180)));
        assert_eq!(next(&config(), &inputs, at(t0, 180)), Next::Poll);
    }

    #[test]
    fn never_any_activity_is_idle() {
        let t0 = Instant::now();
        let inputs = Inputs { last_poll_started: Some(t0), ..Inputs::default() };
        assert_eq!(mode(&config(), &inputs, t0), PollMode::Idle);
    }
}
