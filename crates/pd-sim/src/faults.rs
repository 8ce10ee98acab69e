//! Fault injection on PD's paths: answer a fraction or the next N requests to a path
//! prefix with a status, and/or add simulated latency.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fault {
    /// Path prefix, e.g. `/pd/api/v1/store` (empty matches everything).
    pub path: String,
    /// Only this method, if set.
    pub method: Option<String>,
    /// Only requests reaching this member's address, if set (`None`: any address).
    pub member: Option<String>,
    /// Answer with this status instead of handling the request.
    pub status: Option<u16>,
    /// Body for `status` (plain text; empty if absent).
    pub body: Option<String>,
    /// Simulated delay before handling (or answering with `status`).
    pub latency_ms: Option<u64>,
    /// Fire for the next N matching requests only.
    pub count: Option<u32>,
    /// Fire for this fraction of matching requests (seeded randomness).
    pub probability: Option<f64>,
}

/// What to do with one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    pub latency: Option<Duration>,
    pub answer: Option<(u16, String)>,
}

pub struct Faults {
    list: Vec<Fault>,
    rng: StdRng,
}

impl Faults {
    pub fn new(seed: u64) -> Faults {
        Faults { list: Vec::new(), rng: StdRng::seed_from_u64(seed ^ 0x5eed_fa17) }
    }

    pub fn add(&mut self, fault: Fault) {
        self.list.push(fault);
    }

    pub fn clear(&mut self) {
        self.list.clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.list.clone()
    }

    /// The first matching fault that fires decides; a counted one is used up.
    pub fn decide(&mut self, method: &str, path: &str, member: Option<&str>) -> Decision {
        for index in 0..self.list.len() {
            let fault = &self.list[index];
            let matches = path.starts_with(&fault.path)
                && fault.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
                && fault.member.as_deref().is_none_or(|m| Some(m) == member);
            if !matches {
                continue;
            }
            if let Some(p) = fault.probability
                && self.rng.random::<f64>() >= p
            {
                continue;
            }
            let decision = Decision {
                latency: fault.latency_ms.map(Duration::from_millis),
                answer: fault.status.map(|s| (s, fault.body.clone().unwrap_or_default())),
            };
            if let Some(n) = self.list[index].count.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.list.remove(index);
                }
            }
            return decision;
        }
        Decision::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_fire_n_times_then_vanish() {
        let mut faults = Faults::new(1);
        faults.add(Fault { path: "/pd/api/v1/stores".into(), status: Some(500), count: Some(2), ..Default::default() });
        assert!(faults.decide("GET", "/pd/api/v1/stores", None).answer.is_some());
        assert!(faults.decide("GET", "/pd/api/v1/health", None).answer.is_none());
        assert!(faults.decide("GET", "/pd/api/v1/stores", None).answer.is_some());
        assert!(faults.decide("GET", "/pd/api/v1/stores", None).answer.is_none());
    }

    #[test]
    fn a_fraction_fires_about_that_often_and_reproducibly() {
        let run = || {
            let mut faults = Faults::new(7);
            faults.add(Fault { status: Some(503), probability: Some(0.25), ..Default::default() });
            (0..1000).filter(|_| faults.decide("GET", "/x", None).answer.is_some()).count()
        };
        let fired = run();
        assert_eq!(fired, run());
        assert!((200..300).contains(&fired), "{fired}");
    }
}
