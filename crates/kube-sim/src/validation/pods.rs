//! Pod validation: required containers on create, and the narrow set of spec changes
//! kube-apiserver allows on update.

use serde_json::{Value, json};

use crate::error::FieldErr;

pub const UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub fn validate_pod(pod: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    let containers = pod["spec"]["containers"].as_array();
    if containers.is_none_or(Vec::is_empty) {
        errs.push(FieldErr::required("spec.containers", ""));
    }
    let mut seen = Vec::new();
    for (list, cs) in [("containers", containers), ("initContainers", pod["spec"]["initContainers"].as_array())] {
        for (i, c) in cs.into_iter().flatten().enumerate() {
            let name = c["name"].as_str().unwrap_or_default();
            if name.is_empty() {
                errs.push(FieldErr::required(format!("spec.{list}[{i}].name"), ""));
            } else if seen.contains(&name) {
                errs.push(FieldErr::new(
                    format!("spec.{list}[{i}].name"),
                    crate::error::FieldErrKind::Duplicate,
                    Some(json!(name)),
                    "",
                ));
            } else {
                seen.push(name);
            }
            if c["image"].as_str().unwrap_or_default().is_empty() {
                errs.push(FieldErr::required(format!("spec.{list}[{i}].image"), ""));
            }
        }
    }
    errs
}

/// Paths (JSON-pointer-like) where two values differ, for the error's diff summary.
fn diff_paths(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                diff_paths(
                    &x.get(k).cloned().unwrap_or(Value::Null),
                    &y.get(k).cloned().unwrap_or(Value::Null),
                    &format!("{path}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_paths(p, q, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

pub fn validate_pod_update(old: &Value, new: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    let mut old_spec = old["spec"].clone();
    let new_spec = &new["spec"];
    // Mutable fields: copy the new values over the old spec, then require equality.
    for list in ["containers", "initContainers"] {
        if let (Some(o), Some(n)) = (old_spec[list].as_array_mut(), new_spec[list].as_array())
            && o.len() == n.len()
        {
            for (oc, nc) in o.iter_mut().zip(n) {
                oc["image"] = nc["image"].clone();
            }
        }
    }
    let old_deadline = old["spec"]["activeDeadlineSeconds"].as_i64();
    let new_deadline = new_spec["activeDeadlineSeconds"].as_i64();
    match (old_deadline, new_deadline) {
        (Some(_), None) => errs.push(FieldErr::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (Some(o), Some(n)) if n > o => errs.push(FieldErr::invalid(
            "spec.activeDeadlineSeconds",
            json!(n),
            "must be less than or equal to previous value",
        )),
        _ => {}
    }
    old_spec["activeDeadlineSeconds"] = new_spec["activeDeadlineSeconds"].clone();
    if old_spec["activeDeadlineSeconds"].is_null()
        && let Some(m) = old_spec.as_object_mut()
    {
        m.remove("activeDeadlineSeconds");
    }
    let old_tol = old["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    let new_tol = new_spec["tolerations"].as_array().cloned().unwrap_or_default();
    if old_tol.iter().all(|t| new_tol.contains(t)) {
        old_spec["tolerations"] = new_spec["tolerations"].clone();
    }
    if old["spec"]["terminationGracePeriodSeconds"].as_i64().is_some_and(|g| g < 0)
        && new_spec["terminationGracePeriodSeconds"].as_i64() == Some(1)
    {
        old_spec["terminationGracePeriodSeconds"] = json!(1);
    }
    // Scheduling gates may be removed.
    if let (Some(o), n) = (old["spec"]["schedulingGates"].as_array(), new_spec["schedulingGates"].as_array())
        && n.is_none_or(|n| n.iter().all(|g| o.contains(g)))
    {
        old_spec["schedulingGates"] = new_spec["schedulingGates"].clone();
    }
    let normalize = |mut v: Value| {
        if let Some(m) = v.as_object_mut() {
            m.retain(|_, x| !x.is_null());
        }
        v
    };
    let (o, n) = (normalize(old_spec), normalize(new_spec.clone()));
    if o != n {
        let mut paths = Vec::new();
        diff_paths(&o, &n, "spec", &mut paths);
        errs.push(FieldErr::forbidden("spec", format!("{UPDATE_FORBIDDEN}\n  changed: {}", paths.join(", "))));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(image: &str, port: i64) -> Value {
        json!({"spec": {"containers": [{"name": "c", "image": image, "ports": [{"containerPort": port}]}], "tolerations": [{"key": "a"}]}})
    }

    #[test]
    fn image_changes_are_allowed() {
        assert!(validate_pod_update(&pod("a:1", 80), &pod("a:2", 80)).is_empty());
    }

    #[test]
    fn other_spec_changes_are_forbidden_with_the_real_message() {
        let errs = validate_pod_update(&pod("a:1", 80), &pod("a:1", 81));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].to_string().starts_with(
                "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
            )
        );
    }

    #[test]
    fn tolerations_may_only_be_added() {
        let mut more = pod("a:1", 80);
        more["spec"]["tolerations"] = json!([{"key": "a"}, {"key": "b"}]);
        assert!(validate_pod_update(&pod("a:1", 80), &more).is_empty());
        assert!(!validate_pod_update(&more, &pod("a:1", 80)).is_empty());
    }

    #[test]
    fn create_requires_containers() {
        assert_eq!(validate_pod(&json!({"spec": {}}))[0].to_string(), "spec.containers: Required value");
    }
}
