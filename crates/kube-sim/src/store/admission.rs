//! Admission plugins of kube-apiserver that read other objects, for the built-in
//! types we serve: `DefaultStorageClass` and `PersistentVolumeClaimResize`.

use serde_json::{Value, json};

use super::{Key, State};
use crate::error::{ApiError, ApiResult};
use crate::registry::GroupResource;
use crate::validation::quantity;

const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

fn storage_classes() -> GroupResource {
    GroupResource::new("storage.k8s.io", "storageclasses")
}

/// `DefaultStorageClass`: a claim created without `storageClassName` gets the default
/// class (the newest one, when several are marked default).
pub fn default_storage_class(st: &State, pvc: &mut Value) {
    if !pvc["spec"]["storageClassName"].is_null() {
        return;
    }
    let default = st
        .iter(&storage_classes(), None)
        .map(|(_, class)| class)
        .filter(|class| class["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true")
        .max_by(|a, b| {
            let created = |c: &Value| c["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string();
            created(a).cmp(&created(b))
        });
    if let Some(name) = default.and_then(|class| class["metadata"]["name"].as_str()) {
        pvc["spec"]["storageClassName"] = json!(name);
    }
}

/// `PersistentVolumeClaimResize`: a larger request is allowed only for a bound claim
/// whose class allows expansion.
pub fn claim_resize(st: &State, name: &str, old: &Value, new: &Value) -> ApiResult<()> {
    let request = |pvc: &Value| pvc["spec"]["resources"]["requests"]["storage"].as_str().and_then(quantity::parse);
    let (Some(before), Some(after)) = (request(old), request(new)) else {
        return Ok(());
    };
    if after <= before {
        return Ok(());
    }
    let expandable = old["spec"]["storageClassName"]
        .as_str()
        .and_then(|class| st.get(&storage_classes(), &Key::new("", class)))
        .is_some_and(|class| class["allowVolumeExpansion"] == true);
    if expandable {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "",
            "persistentvolumeclaims",
            name,
            "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
        ))
    }
}
