//! Converting between the stored shape of an object and the shape a version serves.
//!
//! Events are stored once, as core/v1 Events, and served under both `v1` and
//! `events.k8s.io/v1`, the field mapping following kube-apiserver's conversion.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::registry::{ResourceInfo, Shape};

/// (core/v1 field, events.k8s.io/v1 field)
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn remap(obj: &Value, api_version: &str, pairs: impl Iterator<Item = (&'static str, &'static str)>) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), api_version.into());
    out.insert("kind".into(), "Event".into());
    out.insert("metadata".into(), obj.get("metadata").cloned().unwrap_or_else(|| Value::Object(Map::new())));
    for (from, to) in pairs {
        if let Some(v) = obj.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// The object as `info`'s version serves it.
pub fn to_served(info: &ResourceInfo, stored: &Value) -> Value {
    match info.shape {
        Shape::Plain => {
            let mut v = stored.clone();
            if let Value::Object(m) = &mut v {
                m.insert("apiVersion".into(), info.api_version().into());
                m.insert("kind".into(), info.kind.clone().into());
            }
            v
        }
        Shape::EventsV1 => remap(stored, "events.k8s.io/v1", EVENT_FIELDS.iter().copied()),
    }
}

/// The same as [`to_served`], sharing the stored object when it already is what the
/// version serves (a plain object carrying that apiVersion and kind, as nearly every
/// stored object does): the components that read the whole store on every change then
/// do not copy it each time.
pub fn to_served_shared(info: &ResourceInfo, stored: &Arc<Value>) -> Arc<Value> {
    let served_as_stored = info.shape == Shape::Plain
        && stored.get("apiVersion").and_then(Value::as_str).is_some_and(|v| is_api_version_of(info, v))
        && stored.get("kind").and_then(Value::as_str) == Some(info.kind.as_str());
    if served_as_stored { stored.clone() } else { Arc::new(to_served(info, stored)) }
}

/// `api_version` is `info.api_version()` (without building that string).
fn is_api_version_of(info: &ResourceInfo, api_version: &str) -> bool {
    if info.group.is_empty() {
        return api_version == info.version;
    }
    api_version.strip_prefix(info.group.as_str()).and_then(|v| v.strip_prefix('/')) == Some(info.version.as_str())
}

/// The object to store, from what a client sent to `info`'s version.
pub fn from_served(info: &ResourceInfo, served: Value) -> Value {
    match info.shape {
        Shape::Plain => served,
        Shape::EventsV1 => {
            let mut core = remap(&served, "v1", EVENT_FIELDS.iter().map(|(c, e)| (*e, *c)));
            // kube-apiserver fills the deprecated source from the reporting controller so
            // core clients (kubectl describe) can show where an event came from.
            if core["source"].is_null()
                && let Some(rc) = served["reportingController"].as_str()
            {
                core["source"] = serde_json::json!({"component": rc});
            }
            core
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip_between_the_two_shapes() {
        let infos = crate::registry::builtins();
        let v1 = infos.iter().find(|r| r.group == "events.k8s.io").unwrap();
        let served = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Pod", "name": "p"},
            "note": "hello", "reason": "Started", "type": "Normal",
            "reportingController": "ctl", "reportingInstance": "ctl-1",
            "eventTime": "2024-01-01T00:00:00.000000Z"
        });
        let core = from_served(v1, served.clone());
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "ctl");
        assert_eq!(core["source"]["component"], "ctl");
        let back = to_served(v1, &core);
        assert_eq!(back["regarding"], served["regarding"]);
        assert_eq!(back["note"], "hello");
        assert_eq!(back["deprecatedSource"]["component"], "ctl");
    }

    #[test]
    fn the_shared_view_is_the_served_one_and_shares_it_when_it_can() {
        let infos = crate::registry::builtins();
        let find = |group: &str, plural: &str| infos.iter().find(|r| r.group == group && r.plural == plural).unwrap();
        let (pods, deployments) = (find("", "pods"), find("apps", "deployments"));
        let events_v1 = infos.iter().find(|r| r.group == "events.k8s.io").unwrap();
        let stored = [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
            json!({"metadata": {"name": "p"}}),
            json!({"apiVersion": "v2", "kind": "Pod", "metadata": {"name": "p"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
            json!({"apiVersion": "appsv1", "kind": "Deployment", "metadata": {"name": "d"}}),
            json!({"apiVersion": "v1", "kind": "Event", "message": "m", "metadata": {"name": "e"}}),
        ];
        for info in [pods, deployments, events_v1] {
            for o in &stored {
                let o = Arc::new(o.clone());
                let shared = to_served_shared(info, &o);
                assert_eq!(*shared, to_served(info, &o), "{} {o}", info.plural);
                assert_eq!(Arc::ptr_eq(&shared, &o), *shared == *o && info.shape == Shape::Plain);
            }
        }
    }
}
