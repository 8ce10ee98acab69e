//! Converting between the stored shape of an object and the shape a version serves.
//!
//! Events are stored once, as core/v1 Events, and served under both `v1` and
//! `events.k8s.io/v1`, the field mapping following kube-apiserver's conversion.

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
}
