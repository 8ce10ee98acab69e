//! How a live PVC differs from the one an instance's spec asks for: a larger size is
//! applied online (the PVC's request raised; the volume and then its file system
//! grow while the Pod runs); a smaller one never (volumes do not shrink), and a storage
//! class never in place (immutable in Kubernetes; moving the data means a new
//! instance). A VolumeAttributesClass change is passed to the PVC (the storage driver
//! modifies the volume online) and followed until the PVC reports it applied, or
//! refused. Pure; the `pvcs` task acts on it and reports the rest in Synced.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use tikv_operator_api::condition::reasons;

/// What the `pvcs` task does about one live PVC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeChange {
    None,
    /// Raise the request to `to` (from `from`).
    Grow {
        from: String,
        to: String,
    },
    /// Not done; the reason and the message for Synced.
    Refused {
        reason: &'static str,
        message: String,
    },
}

/// What `live` needs to match `desired`.
pub fn volume_change(desired: &PersistentVolumeClaim, live: &PersistentVolumeClaim) -> VolumeChange {
    let name = live.name_any();
    let wanted_class = desired.spec.as_ref().and_then(|s| s.storage_class_name.as_deref());
    let live_class = live.spec.as_ref().and_then(|s| s.storage_class_name.as_deref());
    // No class asked for: the cluster's default applies, whatever it was.
    if let Some(wanted) = wanted_class
        && live_class != Some(wanted)
    {
        let live_class = live_class.unwrap_or("(none)");
        return VolumeChange::Refused {
            reason: reasons::STORAGE_CLASS_CHANGE_NOT_SUPPORTED,
            message: format!(
                "PVC {name} has storage class {live_class}, the spec asks for {wanted}: a PVC's storage class \
                 cannot change; set storageClassName back to {live_class}, or replace the instance (delete it: a \
                 new one is made with the new class and the data moves to it)"
            ),
        };
    }
    let (Some(wanted_size), Some(live_size)) = (storage_request(desired), storage_request(live)) else {
        return VolumeChange::None;
    };
    let (Some(wanted_bytes), Some(live_bytes)) = (quantity_value(&wanted_size), quantity_value(&live_size)) else {
        return VolumeChange::None;
    };
    if live_bytes > wanted_bytes {
        VolumeChange::Refused {
            reason: reasons::VOLUME_MISMATCH,
            message: format!(
                "PVC {name} requests {live_size}, the spec asks for {wanted_size}: volumes never shrink; set the \
                 storage back to {live_size}"
            ),
        }
    } else if live_bytes < wanted_bytes {
        VolumeChange::Grow { from: live_size, to: wanted_size }
    } else {
        VolumeChange::None
    }
}

/// How far a PVC's growth got, while it is not done: its request is above its
/// capacity (the volume, then the file system, grow).
pub fn resize_progress(pvc: &PersistentVolumeClaim) -> Option<String> {
    let requested = storage_request(pvc)?;
    let status = pvc.status.as_ref()?;
    let capacity = status.capacity.as_ref()?.get("storage")?.0.clone();
    if quantity_value(&capacity)? >= quantity_value(&requested)? {
        return None;
    }
    let stage = status.conditions.iter().flatten().find(|c| c.status == "True").map(|c| c.type_.as_str());
    let stage = match stage {
        Some("Resizing") => "the volume is being resized",
        Some("FileSystemResizePending") => "the volume grew; the file system grows online next",
        Some("ControllerResizeError") | Some("NodeResizeError") => "the resize failed; the storage driver retries",
        _ => "waiting for the storage driver",
    };
    Some(format!("PVC {} grows from {capacity} to {requested}: {stage}", pvc.name_any()))
}

/// The VolumeAttributesClass `desired` names when `live` names another (or none):
/// `(live's class, desired's class)`. A spec without one leaves the PVC's as it is (a
/// PVC cannot drop its class).
pub fn attributes_class_change(
    desired: &PersistentVolumeClaim,
    live: &PersistentVolumeClaim,
) -> Option<(Option<String>, String)> {
    let class = |p: &PersistentVolumeClaim| p.spec.as_ref()?.volume_attributes_class_name.clone();
    let wanted = class(desired).filter(|c| !c.is_empty())?;
    let have = class(live).filter(|c| !c.is_empty());
    (have.as_deref() != Some(wanted.as_str())).then_some((have, wanted))
}

/// How a bound PVC's move to the VolumeAttributesClass it names stands, while the
/// volume does not have it yet: the reason and message for Synced.
pub fn modify_progress(pvc: &PersistentVolumeClaim) -> Option<(&'static str, String)> {
    let wanted = pvc.spec.as_ref()?.volume_attributes_class_name.as_deref().filter(|c| !c.is_empty())?;
    let status = pvc.status.as_ref()?;
    if status.phase.as_deref() != Some("Bound") {
        return None;
    }
    let current = status.current_volume_attributes_class_name.as_deref();
    if current == Some(wanted) {
        return None;
    }
    let name = pvc.name_any();
    let from = current.unwrap_or("(none)");
    let modify = status.modify_volume_status.as_ref();
    let target = modify.and_then(|m| m.target_volume_attributes_class_name.as_deref());
    let progress = match modify.map(|m| m.status.as_str()) {
        Some("Infeasible") if target == Some(wanted) => {
            let conditions = status.conditions.iter().flatten();
            let why = conditions
                .clone()
                .find(|c| c.type_ == "ModifyVolumeError")
                .or_else(|| conditions.clone().find(|c| c.type_ == "ModifyingVolume"))
                .and_then(|c| c.message.clone())
                .unwrap_or_else(|| "no reason given".into());
            return Some((
                reasons::VOLUME_MODIFY_INFEASIBLE,
                format!(
                    "the storage driver refused VolumeAttributesClass {wanted} for PVC {name}: {why}; the volume keeps \
                     {from}: set volumeAttributesClassName back to {from}, or to a class the driver accepts"
                ),
            ));
        }
        Some("Pending") => format!("VolumeAttributesClass {wanted} does not exist; waiting for it to be created"),
        Some("InProgress") if target == Some(wanted) => "the storage driver is modifying the volume".to_string(),
        _ => "waiting for the storage driver".to_string(),
    };
    Some((
        reasons::VOLUME_MODIFYING,
        format!("PVC {name} moves from VolumeAttributesClass {from} to {wanted}: {progress}"),
    ))
}

fn storage_request(pvc: &PersistentVolumeClaim) -> Option<String> {
    let requests = pvc.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?;
    Some(requests.get("storage")?.0.clone())
}

/// The value of a Kubernetes quantity (`100Gi`, `1.5T`, `500M`, `1e9`), or `None` if it
/// is not one.
pub fn quantity_value(quantity: &str) -> Option<f64> {
    let quantity = quantity.trim();
    let split =
        quantity.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-'))).unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exponent => {
            let exponent: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(exponent)
        }
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pvc(class: Option<&str>, size: &str) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: kube::api::ObjectMeta { name: Some("data-tikv-a".into()), ..Default::default() },
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: class.map(str::to_string),
                resources: Some(VolumeResourceRequirements {
                    requests: Some([("storage".to_string(), Quantity(size.into()))].into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn quantities_are_read_in_every_notation() {
        assert_eq!(quantity_value("100Gi"), Some(100.0 * 1024f64.powi(3)));
        assert_eq!(quantity_value("1.5k"), Some(1500.0));
        assert_eq!(quantity_value("1e3"), Some(1000.0));
        assert_eq!(quantity_value("500m"), Some(0.5));
        assert_eq!(quantity_value("1024"), Some(1024.0));
        assert_eq!(quantity_value("10Gb"), None);
        assert_eq!(quantity_value("Gi"), None);
        assert_eq!(quantity_value("1Gi"), quantity_value("1073741824"), "the same size written two ways");
    }

    fn refused(change: VolumeChange) -> (String, String) {
        match change {
            VolumeChange::Refused { reason, message } => (reason.to_string(), message),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_changed_storage_class_is_refused_naming_both_classes_and_the_way_out() {
        let (reason, message) = refused(volume_change(&pvc(Some("fast"), "10Gi"), &pvc(Some("standard"), "10Gi")));
        assert_eq!(reason, reasons::STORAGE_CLASS_CHANGE_NOT_SUPPORTED);
        assert!(message.starts_with("PVC data-tikv-a has storage class standard, the spec asks for fast"), "{message}");
        assert!(message.contains("or replace the instance"), "{message}");
        assert!(refused(volume_change(&pvc(Some("fast"), "10Gi"), &pvc(None, "10Gi"))).1.contains("class (none)"));
        assert_eq!(volume_change(&pvc(Some("fast"), "10Gi"), &pvc(Some("fast"), "10Gi")), VolumeChange::None);
        assert_eq!(volume_change(&pvc(None, "10Gi"), &pvc(Some("standard"), "10Gi")), VolumeChange::None);
    }

    #[test]
    fn sizes_are_compared_by_value_growing_online_and_never_shrinking() {
        assert_eq!(volume_change(&pvc(None, "10Gi"), &pvc(None, "10737418240")), VolumeChange::None);
        assert_eq!(
            refused(volume_change(&pvc(None, "5Gi"), &pvc(None, "10Gi"))),
            (
                reasons::VOLUME_MISMATCH.to_string(),
                "PVC data-tikv-a requests 10Gi, the spec asks for 5Gi: volumes never shrink; set the storage back \
                 to 10Gi"
                    .to_string()
            )
        );
        assert_eq!(
            volume_change(&pvc(None, "20Gi"), &pvc(None, "10Gi")),
            VolumeChange::Grow { from: "10Gi".into(), to: "20Gi".into() }
        );
        assert_eq!(volume_change(&pvc(None, "20Gi"), &pvc(None, "lots")), VolumeChange::None, "not comparable");
    }

    fn bound(class: Option<&str>, status: serde_json::Value) -> PersistentVolumeClaim {
        let mut live = pvc(None, "10Gi");
        live.spec.as_mut().unwrap().volume_attributes_class_name = class.map(str::to_string);
        let mut status = status;
        status["phase"] = "Bound".into();
        live.status = Some(serde_json::from_value(status).unwrap());
        live
    }

    #[test]
    fn an_attributes_class_is_passed_to_the_pvc_and_never_dropped() {
        let with = |class: Option<&str>| bound(class, serde_json::json!({}));
        assert_eq!(attributes_class_change(&with(Some("gold")), &with(None)), Some((None, "gold".into())));
        assert_eq!(
            attributes_class_change(&with(Some("gold")), &with(Some("silver"))),
            Some((Some("silver".into()), "gold".into()))
        );
        assert_eq!(attributes_class_change(&with(Some("gold")), &with(Some("gold"))), None);
        assert_eq!(attributes_class_change(&with(None), &with(Some("gold"))), None, "a PVC keeps its class");
    }

    #[test]
    fn a_modification_says_where_it_stands_and_a_refusal_gives_the_drivers_words() {
        use serde_json::json;
        let done = bound(Some("gold"), json!({"currentVolumeAttributesClassName": "gold"}));
        assert_eq!(modify_progress(&done), None);
        let pending = bound(
            Some("gold"),
            json!({"currentVolumeAttributesClassName": "silver", "modifyVolumeStatus": {"status": "Pending"}}),
        );
        assert_eq!(
            modify_progress(&pending),
            Some((
                reasons::VOLUME_MODIFYING,
                "PVC data-tikv-a moves from VolumeAttributesClass silver to gold: VolumeAttributesClass gold does not \
                 exist; waiting for it to be created"
                    .into()
            ))
        );
        let in_progress = bound(
            Some("gold"),
            json!({"currentVolumeAttributesClassName": "silver",
                   "modifyVolumeStatus": {"status": "InProgress", "targetVolumeAttributesClassName": "gold"}}),
        );
        assert!(modify_progress(&in_progress).unwrap().1.ends_with("the storage driver is modifying the volume"));
        let infeasible = bound(
            Some("gold"),
            json!({"currentVolumeAttributesClassName": "silver",
                   "modifyVolumeStatus": {"status": "Infeasible", "targetVolumeAttributesClassName": "gold"},
                   "conditions": [{"type": "ModifyVolumeError", "status": "True",
                                   "message": "ModifyVolume failed with error: rpc error: code = InvalidArgument desc = no"}]}),
        );
        let (reason, message) = modify_progress(&infeasible).unwrap();
        assert_eq!(reason, reasons::VOLUME_MODIFY_INFEASIBLE);
        assert!(message.contains("refused VolumeAttributesClass gold for PVC data-tikv-a: ModifyVolume failed with error: rpc error: code = InvalidArgument desc = no"), "{message}");
        assert!(message.ends_with("set volumeAttributesClassName back to silver, or to a class the driver accepts"));
        let mut unbound = done.clone();
        unbound.status.as_mut().unwrap().phase = Some("Pending".into());
        unbound.status.as_mut().unwrap().current_volume_attributes_class_name = None;
        assert_eq!(modify_progress(&unbound), None, "an unbound PVC gets its class when provisioned");
    }

    #[test]
    fn a_growing_volume_says_how_far_it_got() {
        let mut growing = pvc(None, "20Gi");
        let status = |capacity: &str, condition: Option<&str>| {
            serde_json::from_value(serde_json::json!({
                "capacity": {"storage": capacity},
                "conditions": condition.map(|c| vec![serde_json::json!({"type": c, "status": "True"})]).unwrap_or_default(),
            }))
            .unwrap()
        };
        growing.status = Some(status("10Gi", Some("Resizing")));
        assert_eq!(
            resize_progress(&growing).as_deref(),
            Some("PVC data-tikv-a grows from 10Gi to 20Gi: the volume is being resized")
        );
        growing.status = Some(status("10Gi", Some("FileSystemResizePending")));
        assert!(resize_progress(&growing).unwrap().ends_with("the file system grows online next"));
        growing.status = Some(status("20Gi", None));
        assert_eq!(resize_progress(&growing), None, "done");
    }
}
