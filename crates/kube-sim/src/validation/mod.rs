//! What kube-apiserver validates on writes of the built-in types this server serves,
//! and admission of custom resources against their CRD's schema.

pub mod custom;
pub mod names;
pub mod pods;
pub mod pvcs;
pub mod quantity;
pub mod vacs;

use serde_json::Value;

use crate::error::FieldErr;
use crate::registry::ResourceInfo;

/// Validation of a new object.
pub fn validate_create(info: &ResourceInfo, obj: &Value) -> Vec<FieldErr> {
    let mut errs = names::validate_object_name(info, obj);
    if !info.custom {
        match (info.storage.group.as_str(), info.storage.resource.as_str()) {
            ("", "pods") => errs.extend(pods::validate_pod(obj)),
            ("", "persistentvolumeclaims") => errs.extend(pvcs::validate_pvc(obj)),
            ("storage.k8s.io", "volumeattributesclasses") => errs.extend(vacs::validate_vac(obj)),
            _ => {}
        }
    }
    errs
}

/// Validation of an update (any write to an existing object).
pub fn validate_update(info: &ResourceInfo, old: &Value, new: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    if info.custom {
        return errs;
    }
    match (info.storage.group.as_str(), info.storage.resource.as_str()) {
        ("", "pods") => errs.extend(pods::validate_pod_update(old, new)),
        ("", "persistentvolumeclaims") => errs.extend(pvcs::validate_pvc_update(old, new)),
        ("storage.k8s.io", "volumeattributesclasses") => errs.extend(vacs::validate_vac_update(old, new)),
        _ => {}
    }
    errs
}
