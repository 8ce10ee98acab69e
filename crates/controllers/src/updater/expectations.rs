//! Instances a group controller created and has not yet seen in a list (tidb-operator
//! v2's tracker): counted by the updater so a lagging read never causes a duplicate.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Expected;

/// How long an unseen creation is remembered; far longer than any read lag.
const REMEMBER_FOR: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Expectations {
    by_group: Mutex<HashMap<String, Vec<(Expected, Instant)>>>,
}

impl Expectations {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<(Expected, Instant)>>> {
        self.by_group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a creation for the group `key` (`<kind>/<namespace>/<group>`).
    pub fn created(&self, key: &str, expected: Expected) {
        self.lock().entry(key.to_string()).or_default().push((expected, Instant::now()));
    }

    /// Forgets the creations now seen (or too old) and returns the rest.
    pub fn unseen(&self, key: &str, seen: &[String]) -> Vec<Expected> {
        let mut groups = self.lock();
        let Some(list) = groups.get_mut(key) else {
            return Vec::new();
        };
        list.retain(|(e, at)| !seen.contains(&e.name) && at.elapsed() < REMEMBER_FOR);
        let unseen = list.iter().map(|(e, _)| e.clone()).collect();
        if list.is_empty() {
            groups.remove(key);
        }
        unseen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_are_remembered_until_seen() {
        let expectations = Expectations::default();
        expectations.created("tikv/ns/kv", Expected { name: "kv-a".into(), topology: None });
        expectations.created("tikv/ns/kv", Expected { name: "kv-b".into(), topology: None });
        let unseen = expectations.unseen("tikv/ns/kv", &["kv-a".into()]);
        assert_eq!(unseen.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["kv-b"]);
        assert!(expectations.unseen("tikv/ns/kv", &["kv-b".into()]).is_empty());
        assert!(expectations.unseen("pd/ns/kv", &[]).is_empty());
    }
}
