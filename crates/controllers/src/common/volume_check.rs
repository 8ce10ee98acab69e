//! How a live PVC differs from the one an instance's spec asks for, in a way the
//! operator does not change in place: its storage class (immutable in Kubernetes) and
//! its requested size (volumes never shrink; growing them is not carried out yet).
//! Pure; the `pvcs` task turns a difference into Synced=False `VolumeMismatch`.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;

/// Why `live` does not match `desired`, or `None` when it does.
pub fn pvc_mismatch(desired: &PersistentVolumeClaim, live: &PersistentVolumeClaim) -> Option<String> {
    let name = live.name_any();
    let wanted_class = desired.spec.as_ref().and_then(|s| s.storage_class_name.as_deref());
    let live_class = live.spec.as_ref().and_then(|s| s.storage_class_name.as_deref());
    // No class asked for: the cluster's default applies, whatever it was.
    if let Some(wanted) = wanted_class
        && live_class != Some(wanted)
    {
        let live_class = live_class.unwrap_or("(none)");
        return Some(format!(
            "PVC {name} has storage class {live_class}, the spec asks for {wanted}: a PVC's storage class cannot \
             change; set storageClassName back to {live_class} (moving the data to another class needs a new instance)"
        ));
    }
    let (wanted_size, live_size) = (storage_request(desired)?, storage_request(live)?);
    let (wanted_bytes, live_bytes) = (quantity_value(&wanted_size)?, quantity_value(&live_size)?);
    if live_bytes > wanted_bytes {
        Some(format!(
            "PVC {name} requests {live_size}, the spec asks for {wanted_size}: volumes never shrink; set the storage \
             back to {live_size}"
        ))
    } else if live_bytes < wanted_bytes {
        Some(format!(
            "PVC {name} requests {live_size}, the spec asks for {wanted_size}: resizing volumes is not supported yet"
        ))
    } else {
        None
    }
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

    #[test]
    fn a_changed_storage_class_is_a_mismatch_naming_both_classes() {
        assert_eq!(
            pvc_mismatch(&pvc(Some("fast"), "10Gi"), &pvc(Some("standard"), "10Gi")).as_deref(),
            Some(
                "PVC data-tikv-a has storage class standard, the spec asks for fast: a PVC's storage class cannot \
                 change; set storageClassName back to standard (moving the data to another class needs a new instance)"
            )
        );
        assert!(pvc_mismatch(&pvc(Some("fast"), "10Gi"), &pvc(None, "10Gi")).unwrap().contains("class (none)"));
        assert_eq!(pvc_mismatch(&pvc(Some("fast"), "10Gi"), &pvc(Some("fast"), "10Gi")), None);
        assert_eq!(pvc_mismatch(&pvc(None, "10Gi"), &pvc(Some("standard"), "10Gi")), None, "the default applied");
    }

    #[test]
    fn sizes_are_compared_by_value_in_both_directions() {
        assert_eq!(pvc_mismatch(&pvc(None, "10Gi"), &pvc(None, "10737418240")), None);
        assert_eq!(
            pvc_mismatch(&pvc(None, "5Gi"), &pvc(None, "10Gi")).as_deref(),
            Some(
                "PVC data-tikv-a requests 10Gi, the spec asks for 5Gi: volumes never shrink; set the storage back to 10Gi"
            )
        );
        assert_eq!(
            pvc_mismatch(&pvc(None, "20Gi"), &pvc(None, "10Gi")).as_deref(),
            Some("PVC data-tikv-a requests 10Gi, the spec asks for 20Gi: resizing volumes is not supported yet")
        );
        assert_eq!(pvc_mismatch(&pvc(None, "20Gi"), &pvc(None, "lots")), None, "not comparable: not reported");
    }
}
