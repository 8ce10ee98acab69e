//! The `scale` subresource: an `autoscaling/v1` Scale read from and written to the paths
//! a CRD declares.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, FieldErr};
use crate::meta;
use crate::registry::ResourceInfo;

pub fn view(info: &ResourceInfo, obj: &Value) -> ApiResult<Value> {
    let spec = info.scale.as_ref().ok_or_else(ApiError::no_route)?;
    let replicas = meta::get_path(obj, &spec.spec_replicas_path).as_i64().unwrap_or(0);
    let status_replicas = meta::get_path(obj, &spec.status_replicas_path).as_i64().unwrap_or(0);
    let mut status = json!({"replicas": status_replicas});
    if let Some(sel) = &spec.label_selector_path {
        match meta::get_path(obj, sel) {
            Value::String(s) => status["selector"] = json!(s),
            // Built-in kinds (Deployment) hold a LabelSelector; Scale shows it as a string.
            v @ Value::Object(_) => status["selector"] = json!(selector_string(v)),
            _ => {}
        }
    }
    let m = &obj["metadata"];
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]
        },
        "spec": {"replicas": replicas},
        "status": status
    }))
}

/// A `LabelSelector` as apimachinery prints it: requirements sorted by key, joined by `,`.
pub(crate) fn selector_string(sel: &Value) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel["matchLabels"].as_object().into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
    }
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let mut values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        values.sort_unstable();
        let text = match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort();
    reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(",")
}

/// The object after a Scale write: only the spec replicas path changes.
pub fn apply(info: &ResourceInfo, obj: &Value, scale: &Value) -> ApiResult<Value> {
    let spec = info.scale.as_ref().ok_or_else(ApiError::no_route)?;
    let replicas = &scale["spec"]["replicas"];
    let n = match replicas {
        Value::Null => 0,
        v => {
            v.as_i64().ok_or_else(|| ApiError::bad_request("Scale.autoscaling/v1: spec.replicas must be an integer"))?
        }
    };
    if n < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            meta::name(obj),
            &[FieldErr::invalid("spec.replicas", json!(n), "must be greater than or equal to 0")],
        ));
    }
    let mut new = obj.clone();
    meta::set_path(&mut new, &spec.spec_replicas_path, json!(n));
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_print_sorted_by_key() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"},
                         "matchExpressions": [{"key": "c", "operator": "In", "values": ["y", "x"]},
                                              {"key": "d", "operator": "DoesNotExist"}]});
        assert_eq!(selector_string(&sel), "a=1,b=2,c in (x,y),!d");
    }
}
