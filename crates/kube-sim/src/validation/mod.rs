//! What kube-apiserver validates on writes of the built-in types this server serves,
//! and admission of custom resources against their CRD's schema.

pub mod custom;
pub mod deployments;
pub mod names;
pub mod pods;
pub mod pvcs;
pub mod quantity;
pub mod rbac;
pub mod vacs;

use serde_json::Value;

use crate::error::FieldErr;
use crate::registry::{RBAC_GROUP, ResourceInfo};

/// Validation of a new object.
pub fn validate_create(info: &ResourceInfo, obj: &Value) -> Vec<FieldErr> {
    let mut errs = names::validate_object_name(info, obj);
    if !info.custom {
        match (info.storage.group.as_str(), info.storage.resource.as_str()) {
            ("", "pods") => errs.extend(pods::validate_pod(obj)),
            ("", "persistentvolumeclaims") => errs.extend(pvcs::validate_pvc(obj)),
            ("storage.k8s.io", "volumeattributesclasses") => errs.extend(vacs::validate_vac(obj)),
            ("apps", "deployments") => errs.extend(deployments::validate_deployment(obj)),
            (RBAC_GROUP, "roles") => errs.extend(rbac::validate_role(obj, true)),
            (RBAC_GROUP, "clusterroles") => errs.extend(rbac::validate_role(obj, false)),
            (RBAC_GROUP, "rolebindings") => errs.extend(rbac::validate_binding(obj, true)),
            (RBAC_GROUP, "clusterrolebindings") => errs.extend(rbac::validate_binding(obj, false)),
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
        ("apps", "deployments") => errs.extend(deployments::validate_deployment_update(old, new)),
        (RBAC_GROUP, "roles") => errs.extend(rbac::validate_role(new, true)),
        (RBAC_GROUP, "clusterroles") => errs.extend(rbac::validate_role(new, false)),
        (RBAC_GROUP, "rolebindings") => errs.extend(rbac::validate_binding_update(old, new, true)),
        (RBAC_GROUP, "clusterrolebindings") => errs.extend(rbac::validate_binding_update(old, new, false)),
        _ => {}
    }
    errs
}
