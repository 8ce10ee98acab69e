//! How long a controller waits before retrying an object whose pass failed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The delay after the first failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The delay never grows past this.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// The delay after `failures` consecutive failures: zero for none, then 1 s doubling
/// to a 60 s cap (1, 2, 4, 8, 16, 32, 60, 60, …).
pub fn delay_for(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => 1u32
            .checked_shl(n - 1)
            .and_then(|factor| FIRST_DELAY.checked_mul(factor))
            .map_or(MAX_DELAY, |delay| delay.min(MAX_DELAY)),
    }
}

/// Counts consecutive failed passes per object key.
#[derive(Debug, Default)]
pub struct FailureBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl FailureBackoff {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a failed pass of `key` and returns how long to wait before the next.
    pub fn on_failure(&self, key: &str) -> Duration {
        let mut failures = self.lock();
        let count = failures.entry(key.to_owned()).or_default();
        *count = count.saturating_add(1);
        delay_for(*count)
    }

    /// Records a pass of `key` that did not fail; the next failure starts again at 1 s.
    pub fn on_success(&self, key: &str) {
        self.lock().remove(key);
    }

    /// The consecutive failures recorded for `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.lock().get(key).copied().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // The map stays consistent even if a holder panicked: every update is one store.
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(list: &[u64]) -> Vec<Duration> {
        list.iter().copied().map(Duration::from_secs).collect()
    }

    #[test]
    fn delay_doubles_from_one_second_to_a_sixty_second_cap() {
        let delays: Vec<Duration> = (1..=8).map(delay_for).collect();
        assert_eq!(delays, secs(&[1, 2, 4, 8, 16, 32, 60, 60]));
    }

    #[test]
    fn no_failures_means_no_delay_and_huge_counts_stay_capped() {
        assert_eq!(delay_for(0), Duration::ZERO);
        for n in [31, 32, 33, 64, u32::MAX] {
            assert_eq!(delay_for(n), MAX_DELAY, "{n} failures");
        }
    }

    #[test]
    fn on_failure_follows_the_sequence_per_key_and_success_resets() {
        let backoff = FailureBackoff::new();
        let first: Vec<Duration> = (0..8).map(|_| backoff.on_failure("a")).collect();
        assert_eq!(first, secs(&[1, 2, 4, 8, 16, 32, 60, 60]));
        assert_eq!(backoff.failures("a"), 8);

        assert_eq!(backoff.on_failure("b"), Duration::from_secs(1));

        backoff.on_success("a");
        assert_eq!(backoff.failures("a"), 0);
        assert_eq!(backoff.on_failure("a"), Duration::from_secs(1));
        assert_eq!(backoff.on_failure("b"), Duration::from_secs(2));
    }

    #[test]
    fn is_shared_across_threads() {
        let backoff = std::sync::Arc::new(FailureBackoff::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let backoff = backoff.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        backoff.on_failure("shared");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(backoff.failures("shared"), 20);
    }
}
