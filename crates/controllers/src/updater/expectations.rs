//! What a group controller wrote to its instances and has not yet seen in a list
//! (tidb-operator v2's tracker, extended to changes): the updater plans over the list
//! with these applied, so a lagging read never causes a duplicate instance, nor a
//! second store set offline in place of one already chosen.
//!
//! Kept per group UID: a group deleted and re-created under the same name starts with
//! nothing remembered, so what its predecessor created cannot hide a missing instance.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::{Expected, InstanceView};

/// How long an unseen write is remembered; far longer than any read lag.
const REMEMBER_FOR: Duration = Duration::from_secs(300);

/// A write to an existing instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    /// The resourceVersion the instance had when it was written: a list showing it
    /// still predates the write.
    pub from_version: String,
    pub kind: ChangeKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    SetOffline {
        at: Timestamp,
    },
    CancelOffline,
    Delete,
    /// Brought to the revision: not Ready until its restart (if any) is done.
    Update {
        revision: String,
    },
}

impl Change {
    /// The instance as it is after the write.
    pub fn apply(&self, view: &mut InstanceView) {
        match &self.kind {
            ChangeKind::SetOffline { at } => {
                let at = *at;
                view.offline = true;
                view.offline_chosen_at = Some(at);
            }
            ChangeKind::CancelOffline => {
                view.offline = false;
                view.offline_chosen_at = None;
            }
            ChangeKind::Delete => view.deleting = true,
            ChangeKind::Update { revision } => {
                view.revision = Some(revision.clone());
                view.ready = false;
            }
        }
    }
}

/// What the list does not show yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    pub created: Vec<Expected>,
    pub changed: Vec<Change>,
}

#[derive(Default)]
struct Remembered {
    created: Vec<(Expected, Instant)>,
    changed: Vec<(Change, Instant)>,
}

#[derive(Default)]
pub struct Expectations {
    by_group: Mutex<HashMap<String, Remembered>>,
}

impl Expectations {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Remembered>> {
        self.by_group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a creation by the group with UID `group`.
    pub fn created(&self, group: &str, expected: Expected) {
        self.lock().entry(group.to_string()).or_default().created.push((expected, Instant::now()));
    }

    /// Records a write to an instance of the group with UID `group`.
    pub fn changed(&self, group: &str, change: Change) {
        self.lock().entry(group.to_string()).or_default().changed.push((change, Instant::now()));
    }

    /// Forgets what `listed` (name and resourceVersion of each instance) now shows, or
    /// what is too old, and returns the rest. A change is shown once the instance has
    /// another resourceVersion than the one written over, or is gone.
    pub fn pending(&self, group: &str, listed: &[(String, String)]) -> Pending {
        let mut groups = self.lock();
        let Some(remembered) = groups.get_mut(group) else {
            return Pending::default();
        };
        remembered
            .created
            .retain(|(e, at)| !listed.iter().any(|(name, _)| *name == e.name) && at.elapsed() < REMEMBER_FOR);
        remembered.changed.retain(|(c, at)| {
            listed.iter().any(|(name, version)| *name == c.name && *version == c.from_version)
                && at.elapsed() < REMEMBER_FOR
        });
        let pending = Pending {
            created: remembered.created.iter().map(|(e, _)| e.clone()).collect(),
            changed: remembered.changed.iter().map(|(c, _)| c.clone()).collect(),
        };
        if remembered.created.is_empty() && remembered.changed.is_empty() {
            groups.remove(group);
        }
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(name: &str) -> Expected {
        Expected { name: name.into(), topology: None, revision: "r1".into() }
    }

    fn listed(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn creations_are_remembered_per_group_uid_until_seen() {
        let expectations = Expectations::default();
        expectations.created("uid-1", expected("kv-a"));
        expectations.created("uid-1", expected("kv-b"));
        let pending = expectations.pending("uid-1", &listed(&[("kv-a", "7")]));
        assert_eq!(pending.created, [expected("kv-b")]);
        // A group of the same name with another UID knows nothing of them.
        assert_eq!(expectations.pending("uid-2", &[]), Pending::default());
        assert!(expectations.pending("uid-1", &listed(&[("kv-b", "8")])).created.is_empty());
    }

    #[test]
    fn a_change_is_pending_while_the_list_shows_the_version_it_was_written_over() {
        let expectations = Expectations::default();
        let change = Change { name: "kv-a".into(), from_version: "7".into(), kind: ChangeKind::Delete };
        expectations.changed("uid-1", change.clone());
        assert_eq!(expectations.pending("uid-1", &listed(&[("kv-a", "7")])).changed, [change]);
        assert!(expectations.pending("uid-1", &listed(&[("kv-a", "9")])).changed.is_empty(), "seen");

        expectations
            .changed("uid-1", Change { name: "kv-b".into(), from_version: "3".into(), kind: ChangeKind::Delete });
        assert!(expectations.pending("uid-1", &[]).changed.is_empty(), "gone counts as seen");
    }

    #[test]
    fn changes_apply_to_the_view() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let mut view = InstanceView::healthy("kv-a", None, "r1");
        let change = |kind| Change { name: "kv-a".into(), from_version: "1".into(), kind };
        change(ChangeKind::SetOffline { at }).apply(&mut view);
        assert!(view.offline && view.offline_chosen_at == Some(at));
        change(ChangeKind::CancelOffline).apply(&mut view);
        assert!(!view.offline && view.offline_chosen_at.is_none());
        change(ChangeKind::Update { revision: "r2".into() }).apply(&mut view);
        assert!(view.revision.as_deref() == Some("r2") && !view.ready, "not available until restarted");
        change(ChangeKind::Delete).apply(&mut view);
        assert!(view.deleting);
    }
}
