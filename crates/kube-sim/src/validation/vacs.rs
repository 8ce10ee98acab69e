//! VolumeAttributesClass validation: a driver name is required, and neither it nor the
//! parameters change after creation (a class is a fixed set of volume attributes; a
//! PVC moves to another class instead).

use serde_json::Value;

use crate::error::FieldErr;

pub fn validate_vac(vac: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    if vac["driverName"].as_str().is_none_or(str::is_empty) {
        errs.push(FieldErr::required("driverName", ""));
    }
    errs
}

pub fn validate_vac_update(old: &Value, new: &Value) -> Vec<FieldErr> {
    let mut errs = validate_vac(new);
    if old["driverName"] != new["driverName"] {
        errs.push(FieldErr::invalid("driverName", new["driverName"].clone(), "field is immutable"));
    }
    let params = |v: &Value| v["parameters"].as_object().filter(|m| !m.is_empty()).cloned();
    if params(old) != params(new) {
        errs.push(FieldErr::forbidden("parameters", "updates to parameters are forbidden."));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vac(driver: &str, iops: &str) -> Value {
        json!({"metadata": {"name": "gold"}, "driverName": driver, "parameters": {"iops": iops}})
    }

    #[test]
    fn a_class_needs_a_driver_and_never_changes() {
        assert!(validate_vac(&vac("csi.kube-sim.io", "3000")).is_empty());
        assert_eq!(validate_vac(&json!({"metadata": {"name": "x"}}))[0].to_string(), "driverName: Required value");
        let old = vac("csi.kube-sim.io", "3000");
        assert!(validate_vac_update(&old, &old).is_empty());
        let errs = validate_vac_update(&old, &vac("csi.kube-sim.io", "6000"));
        assert_eq!(errs[0].to_string(), "parameters: Forbidden: updates to parameters are forbidden.");
        let errs = validate_vac_update(&old, &vac("other", "3000"));
        assert_eq!(errs[0].to_string(), "driverName: Invalid value: \"other\": field is immutable");
    }
}
