//! Store limit v1: a token bucket per store and direction, refilled at `rate`
//! operations per minute. A step on a region of at most 20 MiB costs a fifth.

use sim_clock::SimInstant;

pub const SMALL_REGION_MIB: u64 = 20;

/// The cost of one add-peer or remove-peer step on a region of this size.
pub fn step_cost(region_size_mib: u64) -> f64 {
    if region_size_mib <= SMALL_REGION_MIB { 0.2 } else { 1.0 }
}

#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate_per_min: f64,
    tokens: f64,
    updated: SimInstant,
}

impl TokenBucket {
    pub fn new(rate_per_min: f64, now: SimInstant) -> Self {
        let mut bucket = TokenBucket { rate_per_min, tokens: 0.0, updated: now };
        bucket.tokens = bucket.capacity();
        bucket
    }

    pub fn unlimited(now: SimInstant) -> Self {
        TokenBucket::new(f64::INFINITY, now)
    }

    pub fn rate(&self) -> f64 {
        self.rate_per_min
    }

    /// PD's bucket holds about one second of refill, and at least one full step.
    fn capacity(&self) -> f64 {
        (self.rate_per_min / 60.0).max(1.0)
    }

    fn refill(&mut self, now: SimInstant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = self.updated.max(now);
        if self.rate_per_min.is_finite() {
            self.tokens = (self.tokens + elapsed * self.rate_per_min / 60.0).min(self.capacity());
        }
    }

    pub fn available(&mut self, now: SimInstant, cost: f64) -> bool {
        if !self.rate_per_min.is_finite() {
            return true;
        }
        self.refill(now);
        self.tokens + 1e-9 >= cost
    }

    pub fn take(&mut self, now: SimInstant, cost: f64) {
        if self.available(now, cost) && self.rate_per_min.is_finite() {
            self.tokens -= cost;
        }
    }

    pub fn set_rate(&mut self, rate_per_min: f64, now: SimInstant) {
        self.refill(now);
        self.rate_per_min = rate_per_min;
        self.tokens = self.tokens.min(self.capacity());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn fifteen_per_minute_allows_one_large_step_every_four_seconds() {
        let t0 = SimInstant::default();
        let mut bucket = TokenBucket::new(15.0, t0);
        assert!(bucket.available(t0, 1.0));
        bucket.take(t0, 1.0);
        assert!(!bucket.available(t0 + Duration::from_secs(3), 1.0));
        assert!(bucket.available(t0 + Duration::from_secs(4), 1.0));
    }

    #[test]
    fn small_regions_cost_a_fifth() {
        let t0 = SimInstant::default();
        let mut bucket = TokenBucket::new(15.0, t0);
        for _ in 0..5 {
            assert!(bucket.available(t0, step_cost(1)));
            bucket.take(t0, step_cost(1));
        }
        assert!(!bucket.available(t0, step_cost(1)));
    }

    #[test]
    fn unlimited_never_runs_out() {
        let t0 = SimInstant::default();
        let mut bucket = TokenBucket::unlimited(t0);
        for _ in 0..1000 {
            bucket.take(t0, 1.0);
        }
        assert!(bucket.available(t0, 1.0));
    }
}
