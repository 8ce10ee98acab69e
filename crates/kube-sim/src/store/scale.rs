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
    if let Some(sel) = &spec.label_selector_path
        && let Some(s) = meta::get_path(obj, sel).as_str()
    {
        status["selector"] = json!(s);
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
