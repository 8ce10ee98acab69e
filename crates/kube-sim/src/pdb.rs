//! What the pod `eviction` subresource and the disruption controller share about a
//! PodDisruptionBudget: which pods it selects, when a pod counts as healthy, and the
//! `DisruptionAllowed` condition (as `k8s.io/component-helpers`' poddisruptionbudget
//! helpers keep it).

use std::time::Duration;

use serde_json::{Value, json};

use crate::selectors::LabelSelector;

/// The condition type on a PDB's status.
pub(crate) const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// How long an eviction's `disruptedPods` entry keeps its pod out of the healthy count
/// while the pod has not started terminating (kube-controller-manager's
/// `DeletionTimeout`).
pub(crate) const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// Above this many `disruptedPods` entries the eviction subresource refuses.
pub(crate) const MAX_DISRUPTED_PODS: usize = 2000;

/// The PDB's selector as a label selector; `None` when it selects nothing: a missing
/// (null) selector, or one that does not parse. An empty selector (`{}`) selects every
/// pod of the namespace, as in policy/v1.
pub(crate) fn selector(pdb: &Value) -> Option<LabelSelector> {
    let sel = &pdb["spec"]["selector"];
    if !sel.is_object() {
        return None;
    }
    let ops_valid = sel["matchExpressions"].as_array().into_iter().flatten().all(|e| {
        let values = e["values"].as_array().map_or(0, Vec::len);
        match e["operator"].as_str().unwrap_or_default() {
            "In" | "NotIn" => values > 0,
            "Exists" | "DoesNotExist" => values == 0,
            _ => false,
        }
    });
    ops_valid.then(|| LabelSelector::from_object(sel))
}

/// Whether the PDB (in the pod's namespace) selects the pod.
pub(crate) fn selects(pdb: &Value, pod: &Value) -> bool {
    pdb["metadata"]["namespace"] == pod["metadata"]["namespace"]
        && selector(pdb).is_some_and(|s| s.matches(&crate::selectors::labels_of(pod)))
}

/// A pod counts as healthy when its `Ready` condition is `True`.
pub(crate) fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// `unhealthyPodEvictionPolicy: AlwaysAllow`.
pub(crate) fn always_allow_unhealthy(pdb: &Value) -> bool {
    pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
}

pub(crate) fn status_i64(pdb: &Value, field: &str) -> i64 {
    pdb["status"][field].as_i64().unwrap_or(0)
}

/// Sets a `metav1.Condition` in `status.conditions` as apimachinery's
/// `SetStatusCondition` does: `lastTransitionTime` moves only when the status changes.
pub(crate) fn set_condition(status: &mut Value, cond: Value, now: &str) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let Some(conds) = status["conditions"].as_array_mut() else { return };
    match conds.iter_mut().find(|c| c["type"] == cond["type"]) {
        None => {
            let mut cond = cond;
            cond["lastTransitionTime"] = json!(now);
            conds.push(cond);
        }
        Some(existing) => {
            if existing["status"] != cond["status"] {
                existing["lastTransitionTime"] = json!(now);
            }
            for f in ["status", "reason", "message"] {
                existing[f] = cond[f].clone();
            }
            match cond.get("observedGeneration") {
                Some(g) => existing["observedGeneration"] = g.clone(),
                None => {
                    if let Some(m) = existing.as_object_mut() {
                        m.remove("observedGeneration");
                    }
                }
            }
        }
    }
}

fn condition(status: &str, reason: &str, message: &str, observed_generation: i64) -> Value {
    let mut c = json!({"type": DISRUPTION_ALLOWED, "status": status, "reason": reason, "message": message});
    if observed_generation != 0 {
        c["observedGeneration"] = json!(observed_generation);
    }
    c
}

/// The `DisruptionAllowed` condition as the status's `disruptionsAllowed` implies it.
pub(crate) fn update_disruption_allowed_condition(status: &mut Value, now: &str) {
    let generation = status["observedGeneration"].as_i64().unwrap_or(0);
    let cond = if status["disruptionsAllowed"].as_i64().unwrap_or(0) > 0 {
        condition("True", "SufficientPods", "", generation)
    } else {
        condition("False", "InsufficientPods", "", generation)
    };
    set_condition(status, cond, now);
}

/// The failed-sync condition the disruption controller writes when it cannot compute.
pub(crate) fn set_sync_failed(status: &mut Value, message: &str, now: &str) {
    let generation = status["observedGeneration"].as_i64().unwrap_or(0);
    set_condition(status, condition("False", "SyncFailed", message, generation), now);
}

/// Whether `DisruptionAllowed` agrees with `disruptionsAllowed` for the current generation.
pub(crate) fn conditions_up_to_date(pdb: &Value) -> bool {
    let status = &pdb["status"];
    let Some(cond) = status["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == DISRUPTION_ALLOWED)
    else {
        return false;
    };
    if status["observedGeneration"].as_i64().unwrap_or(0) != pdb["metadata"]["generation"].as_i64().unwrap_or(0) {
        return false;
    }
    if status["disruptionsAllowed"].as_i64().unwrap_or(0) > 0 {
        cond["status"] == "True" && cond["reason"] == "SufficientPods"
    } else {
        cond["status"] == "False" && cond["reason"] == "InsufficientPods"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(selector: Value) -> Value {
        json!({"metadata": {"name": "b", "namespace": "ns", "generation": 1}, "spec": {"selector": selector}})
    }

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn selection_follows_policy_v1() {
        let web = pod(json!({"app": "web"}));
        assert!(selects(&pdb(json!({"matchLabels": {"app": "web"}})), &web));
        assert!(!selects(&pdb(json!({"matchLabels": {"app": "db"}})), &web));
        // An empty selector selects every pod of the namespace, a missing one none.
        assert!(selects(&pdb(json!({})), &web));
        assert!(!selects(&pdb(Value::Null), &web));
        // An invalid one selects nothing.
        assert!(!selects(&pdb(json!({"matchExpressions": [{"key": "app", "operator": "In"}]})), &web));
        // Only in its own namespace.
        let mut other = web.clone();
        other["metadata"]["namespace"] = json!("other");
        assert!(!selects(&pdb(json!({})), &other));
    }

    #[test]
    fn the_condition_moves_its_transition_time_only_on_a_status_change() {
        let mut status = json!({"disruptionsAllowed": 1, "observedGeneration": 2});
        update_disruption_allowed_condition(&mut status, "t1");
        assert_eq!(
            status["conditions"],
            json!([{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "",
                    "observedGeneration": 2, "lastTransitionTime": "t1"}])
        );
        update_disruption_allowed_condition(&mut status, "t2");
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "t1");
        status["disruptionsAllowed"] = json!(0);
        update_disruption_allowed_condition(&mut status, "t3");
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "t3");
        assert_eq!(status["conditions"][0]["reason"], "InsufficientPods");
        let mut b = pdb(json!({}));
        b["metadata"]["generation"] = json!(2);
        b["status"] = status;
        assert!(conditions_up_to_date(&b));
        b["status"]["disruptionsAllowed"] = json!(1);
        assert!(!conditions_up_to_date(&b));
    }
}
