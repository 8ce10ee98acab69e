//! core/v1 Events as the components record them, with client-go's aggregation: a
//! repeat of the same reason and message for the same object bumps `count` and
//! `lastTimestamp` of the existing Event instead of creating another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::objects::{EVENTS, str_of};
use super::{Shared, lock};
use crate::patch::PatchType;
use crate::store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Who reports: the client name for the request log, and the Event's `source`.
#[derive(Clone, Debug)]
pub struct Source {
    pub client: String,
    pub component: String,
    pub host: Option<String>,
}

impl Source {
    pub fn new(client: &str, component: &str) -> Self {
        Source { client: client.into(), component: component.into(), host: None }
    }

    pub fn kubelet(node: &str) -> Self {
        Source { client: format!("kubelet/{node}"), component: "kubelet".into(), host: Some(node.into()) }
    }
}

type Key = (String, String, String, String, String);

/// Records Events; cheap to clone, aggregation shared between clones.
#[derive(Clone)]
pub struct Recorder {
    store: Store,
    seen: Shared<HashMap<Key, (String, String, i64)>>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Recorder {
    pub fn new(store: &Store) -> Self {
        Recorder { store: store.clone(), seen: Default::default() }
    }

    /// Records an Event about `obj` (errors, e.g. a terminating namespace, are ignored).
    pub fn record(&self, source: &Source, obj: &Value, ty: EventType, reason: &str, message: &str) {
        let ns = match str_of(obj, &["metadata", "namespace"]) {
            "" => "default",
            ns => ns,
        }
        .to_string();
        let uid = str_of(obj, &["metadata", "uid"]).to_string();
        let key = (uid.clone(), reason.to_string(), message.to_string(), source.component.clone(), ns.clone());
        let client = self.store.client(source.client.clone());
        let now = super::objects::now_time(&self.store);
        let existing = lock(&self.seen).get(&key).cloned();
        if let Some((name, event_ns, count)) = existing {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            if client.patch(&EVENTS.r(), Some(&event_ns), &name, None, PatchType::Merge, &patch).is_ok() {
                lock(&self.seen).insert(key, (name, event_ns, count + 1));
                return;
            }
        }
        let nanos = self.store.clock().wall().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let name = format!(
            "{}.{:x}",
            str_of(obj, &["metadata", "name"]),
            nanos + u128::from(SEQ.fetch_add(1, Ordering::Relaxed))
        );
        let mut involved = json!({
            "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": uid, "resourceVersion": obj["metadata"]["resourceVersion"],
        });
        if let Some(n) = obj["metadata"]["namespace"].as_str() {
            involved["namespace"] = json!(n);
        }
        let mut src = json!({"component": source.component});
        if let Some(h) = &source.host {
            src["host"] = json!(h);
        }
        let event = json!({
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": src,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": ty.as_str(),
            "eventTime": null,
            "reportingComponent": source.component,
            "reportingInstance": source.host.clone().unwrap_or_default(),
        });
        if client.create(&EVENTS.r(), Some(&ns), event).is_ok() {
            lock(&self.seen).insert(key, (name, ns, 1));
        }
    }
}
