//! Attributing elapsed time: what part of a span the cluster waited on the simulated
//! systems (Kubernetes starting or stopping a pod, PD moving leaders or data) and what
//! part it waited on nothing but the operator. Times are simulated, since the start of
//! the simulated clock.

use std::time::Duration;

/// `[start, end)` on the simulated clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub start: Duration,
    pub end: Duration,
}

impl Interval {
    pub fn new(start: Duration, end: Duration) -> Interval {
        Interval { start, end: end.max(start) }
    }

    pub fn len(&self) -> Duration {
        self.end - self.start
    }

    /// An interval from two moments, when both are known.
    pub fn between(start: Option<Duration>, end: Option<Duration>) -> Option<Interval> {
        Some(Interval::new(start?, end?))
    }
}

/// The total length of the union of `intervals` clipped to `span`.
pub fn covered(span: Interval, intervals: &[Interval]) -> Duration {
    let mut clipped: Vec<Interval> = intervals
        .iter()
        .map(|i| Interval::new(i.start.max(span.start), i.end.min(span.end)))
        .filter(|i| i.end > i.start)
        .collect();
    clipped.sort_by_key(|i| i.start);
    let mut total = Duration::ZERO;
    let mut current: Option<Interval> = None;
    for i in clipped {
        match current.as_mut() {
            Some(c) if i.start <= c.end => c.end = c.end.max(i.end),
            _ => {
                if let Some(c) = current.replace(i) {
                    total += c.len();
                }
            }
        }
    }
    total + current.map_or(Duration::ZERO, |c| c.len())
}

/// The part of `span` no busy interval covers: time the cluster waited on the operator.
pub fn idle(span: Interval, busy: &[Interval]) -> Duration {
    span.len().saturating_sub(covered(span, busy))
}

/// One store's restart as the simulators recorded it (each moment when seen).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreRestart {
    pub store: u64,
    /// The evict-leader scheduler got this store (pd write log).
    pub evict_added: Option<Duration>,
    /// The store held no leader any more (pd-sim's ground truth, sampled).
    pub leaders_gone: Option<Duration>,
    /// The old pod's deletion (kube-sim's request log).
    pub pod_deleted: Option<Duration>,
    /// The old pod was gone from the API server (sampled).
    pub pod_gone: Option<Duration>,
    /// The new pod's creation (kube-sim's request log).
    pub pod_created: Option<Duration>,
    /// The new pod Ready: its process serves again (sampled).
    pub pod_ready: Option<Duration>,
    /// The evict-leader entry removed (pd write log).
    pub evict_removed: Option<Duration>,
    /// Half of the store's leaders of before back (what a restart waits for; sampled).
    pub leaders_back: Option<Duration>,
}

impl StoreRestart {
    /// What the simulated systems were doing for this store: PD evicting its leaders,
    /// Kubernetes stopping the old pod and starting the new one, PD giving leaders back.
    pub fn busy(&self) -> Vec<Interval> {
        [
            Interval::between(self.evict_added, self.leaders_gone),
            Interval::between(self.pod_deleted, self.pod_gone),
            Interval::between(self.pod_created, self.pod_ready),
            Interval::between(self.evict_removed, self.leaders_back),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Whether every step was seen.
    pub fn complete(&self) -> bool {
        [
            self.evict_added,
            self.leaders_gone,
            self.pod_deleted,
            self.pod_gone,
            self.pod_created,
            self.pod_ready,
            self.evict_removed,
            self.leaders_back,
        ]
        .iter()
        .all(Option::is_some)
    }
}

/// Operator-induced idle of a rolling restart: the span from the user's change to the
/// group reporting every store updated, less every moment some store was being
/// evicted, restarted or given its leaders back; returned whole and per store.
pub fn rolling_idle(span: Interval, stores: &[StoreRestart]) -> (Duration, Duration) {
    let busy: Vec<Interval> = stores.iter().flat_map(StoreRestart::busy).collect();
    let idle = idle(span, &busy);
    let per_store = idle / u32::try_from(stores.len().max(1)).unwrap_or(u32::MAX);
    (idle, per_store)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn i(a: f64, b: f64) -> Interval {
        Interval::new(s(a), s(b))
    }

    #[test]
    fn overlapping_and_touching_intervals_count_once() {
        let span = i(0.0, 10.0);
        assert_eq!(covered(span, &[i(1.0, 3.0), i(2.0, 4.0), i(4.0, 5.0), i(7.0, 8.0)]), s(5.0));
        assert_eq!(idle(span, &[i(1.0, 3.0), i(2.0, 4.0), i(4.0, 5.0), i(7.0, 8.0)]), s(5.0));
    }

    #[test]
    fn intervals_are_clipped_to_the_span() {
        let span = i(2.0, 6.0);
        assert_eq!(covered(span, &[i(0.0, 3.0), i(5.0, 9.0), i(10.0, 11.0)]), s(2.0));
        assert_eq!(idle(span, &[]), s(4.0));
        assert_eq!(idle(span, &[i(0.0, 20.0)]), Duration::ZERO);
    }

    /// Two stores restarted one after the other; the gaps between the simulators'
    /// steps are the operator's: 0.5 s before the first eviction, 0.2 s from "leaders
    /// gone" to the delete, 0.3 s from the old pod gone to the new one created, 1 s
    /// from Ready to the evict entry's removal, 2 s before the second store starts,
    /// and 0.5 s at the end.
    #[test]
    fn a_rolling_restart_is_attributed_step_by_step() {
        let first = StoreRestart {
            store: 1,
            evict_added: Some(s(0.5)),
            leaders_gone: Some(s(1.5)),
            pod_deleted: Some(s(1.7)),
            pod_gone: Some(s(3.0)),
            pod_created: Some(s(3.3)),
            pod_ready: Some(s(5.0)),
            evict_removed: Some(s(6.0)),
            leaders_back: Some(s(7.0)),
        };
        let second = StoreRestart {
            store: 2,
            evict_added: Some(s(9.0)),
            leaders_gone: Some(s(10.0)),
            pod_deleted: Some(s(10.0)),
            pod_gone: Some(s(11.0)),
            pod_created: Some(s(11.0)),
            pod_ready: Some(s(12.0)),
            evict_removed: Some(s(12.0)),
            leaders_back: Some(s(13.0)),
        };
        assert!(first.complete() && second.complete());
        let (idle, per_store) = rolling_idle(i(0.0, 13.5), &[first, second]);
        assert_eq!(idle, s(0.5 + 0.2 + 0.3 + 1.0 + 2.0 + 0.5));
        assert_eq!(per_store, s(4.5 / 2.0));
    }

    #[test]
    fn a_step_not_seen_leaves_its_time_to_the_operator() {
        let partial = StoreRestart { store: 1, evict_added: Some(s(1.0)), ..StoreRestart::default() };
        assert!(!partial.complete());
        assert!(partial.busy().is_empty());
        assert_eq!(rolling_idle(i(0.0, 4.0), &[partial]), (s(4.0), s(4.0)));
    }
}
