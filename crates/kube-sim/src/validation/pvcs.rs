//! PersistentVolumeClaim validation: the spec is immutable except growing the storage
//! request (bound claims), `volumeAttributesClassName` (never back to none once set),
//! and a first `volumeName`.

use serde_json::Value;
#[cfg(test)]
use serde_json::json;

use super::quantity;
use crate::error::FieldErr;

pub fn validate_pvc(pvc: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    if pvc["spec"]["accessModes"].as_array().is_none_or(Vec::is_empty) {
        errs.push(FieldErr::required("spec.accessModes", "at least 1 access mode is required"));
    }
    if pvc["spec"]["resources"]["requests"]["storage"].is_null() {
        errs.push(FieldErr::required("spec.resources[storage]", ""));
    }
    errs
}

fn storage(pvc: &Value) -> Option<f64> {
    pvc["spec"]["resources"]["requests"]["storage"].as_str().and_then(quantity::parse)
}

pub fn validate_pvc_update(old: &Value, new: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    let mut old_spec = old["spec"].clone();
    let mut new_spec = new["spec"].clone();
    if old_spec["volumeName"].as_str().unwrap_or_default().is_empty() {
        old_spec["volumeName"] = new_spec["volumeName"].clone();
    }
    old_spec["volumeAttributesClassName"] = new_spec["volumeAttributesClassName"].clone();
    let bound = new["status"]["phase"] == "Bound";
    if bound {
        new_spec["resources"]["requests"]["storage"] = old["spec"]["resources"]["requests"]["storage"].clone();
    }
    let strip_nulls = |mut v: Value| {
        if let Some(m) = v.as_object_mut() {
            m.retain(|_, x| !x.is_null());
        }
        v
    };
    if strip_nulls(old_spec) != strip_nulls(new_spec) {
        errs.push(FieldErr::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    if old["spec"]["volumeAttributesClassName"].is_string() {
        let field = "spec.volumeAttributesClassName";
        match new["spec"]["volumeAttributesClassName"].as_str() {
            None => errs.push(FieldErr::forbidden(field, "update from non-nil value to nil is forbidden")),
            Some("") => {
                errs.push(FieldErr::forbidden(field, "update from non-nil value to an empty string is forbidden"))
            }
            Some(_) => {}
        }
    }
    if let (Some(o), Some(n)) = (storage(old), storage(new))
        && n < o
    {
        errs.push(FieldErr::forbidden("spec.resources.requests.storage", "field can not be less than previous value"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvc(size: &str, phase: &str) -> Value {
        json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}, "status": {"phase": phase}})
    }

    #[test]
    fn bound_claims_may_grow() {
        assert!(validate_pvc_update(&pvc("1Gi", "Bound"), &pvc("2Gi", "Bound")).is_empty());
    }

    #[test]
    fn shrinking_is_refused() {
        let errs = validate_pvc_update(&pvc("2Gi", "Bound"), &pvc("1Gi", "Bound"));
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "spec.resources.requests.storage: Forbidden: field can not be less than previous value"
        );
    }

    #[test]
    fn the_attributes_class_changes_in_any_phase_but_never_back_to_none() {
        let with = |phase: &str, class: Value| {
            let mut p = pvc("1Gi", phase);
            p["spec"]["volumeAttributesClassName"] = class;
            p
        };
        assert!(validate_pvc_update(&pvc("1Gi", "Pending"), &with("Pending", json!("gold"))).is_empty());
        assert!(validate_pvc_update(&with("Bound", json!("gold")), &with("Bound", json!("silver"))).is_empty());
        let errs = validate_pvc_update(&with("Bound", json!("gold")), &pvc("1Gi", "Bound"));
        assert_eq!(
            errs[0].to_string(),
            "spec.volumeAttributesClassName: Forbidden: update from non-nil value to nil is forbidden"
        );
        let errs = validate_pvc_update(&with("Bound", json!("gold")), &with("Bound", json!("")));
        assert!(errs[0].to_string().ends_with("update from non-nil value to an empty string is forbidden"));
    }

    #[test]
    fn other_changes_and_unbound_resizes_are_refused() {
        let mut other = pvc("1Gi", "Bound");
        other["spec"]["storageClassName"] = json!("fast");
        assert!(
            validate_pvc_update(&pvc("1Gi", "Bound"), &other)[0]
                .to_string()
                .starts_with("spec: Forbidden: spec is immutable")
        );
        assert!(!validate_pvc_update(&pvc("1Gi", "Pending"), &pvc("2Gi", "Pending")).is_empty());
    }
}
