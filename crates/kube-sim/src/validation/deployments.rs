//! What kube-apiserver checks on an `apps/v1` Deployment that matters for applying one:
//! a non-empty selector that the template's labels match, `restartPolicy: Always`, at
//! least one container, non-negative replicas, and a selector that never changes.

use serde_json::{Value, json};

use crate::error::{FieldErr, FieldErrKind};
use crate::selectors::LabelSelector;

pub fn validate_deployment(obj: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    let spec = &obj["spec"];
    if spec["replicas"].as_i64().is_some_and(|r| r < 0) {
        errs.push(FieldErr::invalid("spec.replicas", spec["replicas"].clone(), "must be greater than or equal to 0"));
    }
    let selector = &spec["selector"];
    let template_labels = &spec["template"]["metadata"]["labels"];
    if selector.is_null() {
        errs.push(FieldErr::required("spec.selector", ""));
    } else if selector["matchLabels"].as_object().is_none_or(|m| m.is_empty())
        && selector["matchExpressions"].as_array().is_none_or(Vec::is_empty)
    {
        errs.push(FieldErr::invalid("spec.selector", selector.clone(), "empty selector is invalid for deployment"));
    } else if !LabelSelector::from_object(selector).matches_object(&spec["template"]) {
        errs.push(FieldErr::invalid(
            "spec.template.metadata.labels",
            template_labels.clone(),
            "`selector` does not match template `labels`",
        ));
    }
    let pod = &spec["template"]["spec"];
    if pod["containers"].as_array().is_none_or(Vec::is_empty) {
        errs.push(FieldErr::required("spec.template.spec.containers", ""));
    }
    if let Some(policy) = pod["restartPolicy"].as_str()
        && policy != "Always"
    {
        errs.push(FieldErr::new(
            "spec.template.spec.restartPolicy",
            FieldErrKind::NotSupported,
            Some(json!(policy)),
            "supported values: \"Always\"",
        ));
    }
    errs
}

pub fn validate_deployment_update(old: &Value, new: &Value) -> Vec<FieldErr> {
    let mut errs = validate_deployment(new);
    if old["spec"]["selector"] != new["spec"]["selector"] {
        errs.push(FieldErr::invalid("spec.selector", new["spec"]["selector"].clone(), "field is immutable"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(selector: Value, labels: Value) -> Value {
        json!({"spec": {"replicas": 2, "selector": selector,
                        "template": {"metadata": {"labels": labels},
                                     "spec": {"restartPolicy": "Always", "containers": [{"name": "op", "image": "op:1"}]}}}})
    }

    #[test]
    fn the_selector_must_match_the_template_and_never_change() {
        let ok = deployment(json!({"matchLabels": {"app": "op"}}), json!({"app": "op", "tier": "x"}));
        assert!(validate_deployment(&ok).is_empty());
        let mismatch = deployment(json!({"matchLabels": {"app": "op"}}), json!({"app": "other"}));
        assert_eq!(validate_deployment(&mismatch)[0].field, "spec.template.metadata.labels");
        let empty = deployment(json!({}), json!({"app": "op"}));
        assert_eq!(validate_deployment(&empty)[0].detail, "empty selector is invalid for deployment");
        let mut none = ok.clone();
        none["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(validate_deployment(&none)[0].to_string(), "spec.selector: Required value");
        let mut moved = ok.clone();
        moved["spec"]["selector"] = json!({"matchLabels": {"tier": "x"}});
        let errs = validate_deployment_update(&ok, &moved);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].detail, "field is immutable");
    }
}
