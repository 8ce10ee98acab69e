//! Watches: initial events or history replay from a resourceVersion, then live changes,
//! filtered by namespace and selectors (with selector transitions), delayed by the
//! configured watch delay, ending in a 410 ERROR when history was compacted past them.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{Value, json};
use sim_clock::SimInstant;

use super::list::parse_rv;
use super::{Change, ChangeKind, Store};
use crate::convert::to_served_shared;
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};

/// Watch query parameters.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    pub resource_version: Option<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub send_initial_events: Option<bool>,
}

/// One event, its object as the watched version serves it (the stored object itself
/// when it already is that, as nearly always: not copied for every watcher).
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    Added(Arc<Value>),
    Modified(Arc<Value>),
    Deleted(Arc<Value>),
    Bookmark(Arc<Value>),
    /// A `Status` object (410 Expired when history is gone).
    Error(Arc<Value>),
}

impl WatchEvent {
    /// The wire form: `{"type":"ADDED","object":{...}}`.
    pub fn to_json(&self) -> Vec<u8> {
        wire_line(self.type_name(), self.object())
    }

    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        }
    }

    pub fn object(&self) -> &Value {
        match self {
            WatchEvent::Added(o)
            | WatchEvent::Modified(o)
            | WatchEvent::Deleted(o)
            | WatchEvent::Bookmark(o)
            | WatchEvent::Error(o) => o,
        }
    }
}

/// A watch event's wire form, written straight from the object (building it as a
/// `Value` first copied every object sent to every watcher).
pub fn wire_line(type_: &str, object: &Value) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        type_: &'a str,
        object: &'a Value,
    }
    serde_json::to_vec(&Line { type_, object }).unwrap_or_default()
}

/// An open watch. [`Watcher::next`] is cancel-safe.
pub struct Watcher {
    store: Store,
    info: Arc<ResourceInfo>,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    /// (revision, when written, event)
    pending: VecDeque<(u64, SimInstant, WatchEvent)>,
    last: u64,
    rev_rx: tokio::sync::watch::Receiver<u64>,
    failed: bool,
}

impl Store {
    /// Opens a watch on a resource (one namespace or all).
    pub fn watch(&self, info: Arc<ResourceInfo>, ns: Option<&str>, opts: &WatchOptions) -> ApiResult<Watcher> {
        let labels = LabelSelector::parse(opts.label_selector.as_deref().unwrap_or(""))?;
        let fields = FieldSelector::parse(opts.field_selector.as_deref().unwrap_or(""), &info)?;
        let ns = if info.namespaced { ns.filter(|n| !n.is_empty()).map(str::to_string) } else { None };
        let rev_rx = self.subscribe();
        let mut w = Watcher {
            store: self.clone(),
            info,
            ns,
            labels,
            fields,
            pending: VecDeque::new(),
            last: 0,
            rev_rx,
            failed: false,
        };
        let now = self.shared.clock.now();
        let st = self.lock();
        let rv = opts.resource_version.as_deref().filter(|r| !r.is_empty());
        let initial = match (rv, opts.send_initial_events) {
            (_, Some(true)) => true,
            (None | Some("0"), Some(false)) => false,
            (None | Some("0"), None) => true,
            (Some(_), _) => false,
        };
        if initial {
            for (_, o) in st.iter(&w.info.storage, w.ns.as_deref()) {
                if w.matches(o) {
                    w.pending.push_back((st.rev, now, WatchEvent::Added(to_served_shared(&w.info, o))));
                }
            }
            if opts.send_initial_events == Some(true) {
                let bm = w.bookmark_object(st.rev, true);
                w.pending.push_back((st.rev, now, WatchEvent::Bookmark(Arc::new(bm))));
            }
            w.last = st.rev;
        } else {
            let n = match rv {
                Some(rv) => parse_rv(rv)?,
                None => st.rev,
            };
            w.last = n;
            if n < st.compacted {
                let status = ApiError::gone(format!("too old resource version: {n} ({})", st.compacted + 1)).status();
                w.pending.push_back((n, now, WatchEvent::Error(Arc::new(status))));
                w.failed = true;
            }
        }
        Ok(w)
    }
}

impl Watcher {
    fn matches(&self, o: &Value) -> bool {
        self.ns.as_deref().is_none_or(|n| meta::namespace(o) == n)
            && self.labels.matches_object(o)
            && self.fields.matches(&self.info, o)
    }

    fn bookmark_object(&self, rev: u64, initial_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": metadata})
    }

    /// A bookmark at the revision every delivered event has reached, if nothing is pending.
    pub fn bookmark(&self) -> Option<WatchEvent> {
        if self.failed || !self.pending.is_empty() {
            return None;
        }
        Some(WatchEvent::Bookmark(Arc::new(self.bookmark_object(self.last, false))))
    }

    fn consider(&mut self, c: &Change) {
        if c.gr != self.info.storage {
            return;
        }
        let new_m = self.matches(&c.new);
        let old_m = c.old.as_deref().is_some_and(|o| self.matches(o));
        let view = || to_served_shared(&self.info, &c.new);
        let ev = match c.kind {
            ChangeKind::Added => new_m.then(|| WatchEvent::Added(view())),
            ChangeKind::Modified => match (old_m, new_m) {
                (true, true) => Some(WatchEvent::Modified(view())),
                (false, true) => Some(WatchEvent::Added(view())),
                (true, false) => Some(WatchEvent::Deleted(view())),
                (false, false) => None,
            },
            ChangeKind::Deleted => (old_m || new_m).then(|| WatchEvent::Deleted(view())),
        };
        if let Some(ev) = ev {
            self.pending.push_back((c.rev, c.at, ev));
        }
    }

    fn poll(&mut self) {
        let store = self.store.clone();
        let st = store.lock();
        if self.last < st.compacted {
            let status =
                ApiError::gone(format!("too old resource version: {} ({})", self.last, st.compacted + 1)).status();
            self.pending.push_back((self.last, store.shared.clock.now(), WatchEvent::Error(Arc::new(status))));
            self.failed = true;
            return;
        }
        let start = st.history.partition_point(|c| c.rev <= self.last);
        let changes: Vec<Arc<Change>> = st.history.range(start..).cloned().collect();
        let rev = st.rev;
        drop(st);
        for c in &changes {
            self.consider(c);
        }
        self.last = self.last.max(rev);
    }

    /// The next event; `None` once the watch has ended (after an ERROR event).
    pub async fn next(&mut self) -> Option<WatchEvent> {
        loop {
            if let Some((_, at, _)) = self.pending.front() {
                let delay = self.store.watch_delay();
                if !delay.is_zero() {
                    self.store.shared.clock.sleep_until(*at + delay).await;
                }
                return self.pending.pop_front().map(|(_, _, e)| e);
            }
            if self.failed {
                return None;
            }
            self.rev_rx.borrow_and_update();
            self.poll();
            if self.pending.is_empty() && !self.failed && self.rev_rx.changed().await.is_err() {
                return None;
            }
        }
    }
}
