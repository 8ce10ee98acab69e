//! Evictions against hand-built pods and budgets (no disruption controller runs here:
//! each budget's status is written by the test).

use serde_json::{Value, json};

use crate::store::{ResourceRef, Store, WriteOptions};
use crate::validation::custom::FieldValidation;

fn pods() -> ResourceRef {
    ResourceRef::new("", "v1", "pods")
}

fn pdbs() -> ResourceRef {
    ResourceRef::new("policy", "v1", "poddisruptionbudgets")
}

fn store() -> Store {
    let store = Store::new(sim_clock::SimClock::new(1.0), 1000, 0);
    let c = store.client("test");
    c.create(&ResourceRef::new("", "v1", "namespaces"), None, json!({"metadata": {"name": "ns"}})).unwrap();
    store
}

/// A pod on a node, in `phase`, Ready or not.
fn add_pod(store: &Store, name: &str, phase: &str, ready: bool) {
    let c = store.client("test");
    let pod = json!({"metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 30, "containers": [{"name": "c", "image": "i"}]}});
    c.create(&pods(), Some("ns"), pod).unwrap();
    let status = json!({"status": {"phase": phase,
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    c.patch_status(&pods(), Some("ns"), name, &status).unwrap();
}

/// A budget over `app=web` with the status a disruption controller would have written.
fn add_budget(store: &Store, name: &str, spec: Value, status: Value) {
    let c = store.client("test");
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "web"}});
    c.create(&pdbs(), Some("ns"), json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    let mut status = status;
    if status["observedGeneration"].is_null() {
        status["observedGeneration"] = json!(1);
    }
    c.patch_status(&pdbs(), Some("ns"), name, &json!({"status": status})).unwrap();
}

fn budget(store: &Store, name: &str) -> Value {
    store.client("test").get(&pdbs(), Some("ns"), name).unwrap()
}

fn pod(store: &Store, name: &str) -> Option<Value> {
    store.client("test").get(&pods(), Some("ns"), name).ok()
}

fn evict(store: &Store, name: &str) -> Result<Value, crate::ApiError> {
    evict_with(store, name, Value::Null)
}

fn evict_with(store: &Store, name: &str, delete_options: Value) -> Result<Value, crate::ApiError> {
    store.client("kubectl").evict("ns", name, delete_options)
}

fn condition<'a>(obj: &'a Value, ty: &str) -> &'a Value {
    obj["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == ty)).unwrap_or(&Value::Null)
}

#[test]
fn without_a_budget_the_pod_is_marked_and_deleted_gracefully() {
    let s = store();
    add_pod(&s, "web-0", "Running", true);
    let status = evict(&s, "web-0").unwrap();
    assert_eq!(status, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}));
    let p = pod(&s, "web-0").expect("terminating, not gone: it has a grace period");
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 30);
    let c = condition(&p, "DisruptionTarget");
    assert_eq!(
        (&c["status"], &c["reason"], &c["message"]),
        (&json!("True"), &json!("EvictionByEvictionAPI"), &json!("Eviction API: evicting"))
    );
}

#[test]
fn a_budget_with_room_is_decremented_then_refuses_with_kube_apiservers_429() {
    let s = store();
    add_pod(&s, "web-0", "Running", true);
    add_pod(&s, "web-1", "Running", true);
    add_pod(&s, "web-2", "Running", true);
    add_budget(
        &s,
        "web",
        json!({"minAvailable": 2}),
        json!({"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
               "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "",
                               "lastTransitionTime": "2020-01-01T00:00:00Z"}]}),
    );
    evict(&s, "web-0").unwrap();
    let b = budget(&s, "web");
    assert_eq!(b["status"]["disruptionsAllowed"], 0);
    assert!(b["status"]["disruptedPods"]["web-0"].is_string(), "{b}");
    let c = condition(&b, "DisruptionAllowed");
    assert_eq!((&c["status"], &c["reason"]), (&json!("False"), &json!("InsufficientPods")));
    assert!(pod(&s, "web-0").is_some_and(|p| crate::meta::is_deleting(&p)));

    let err = evict(&s, "web-1").unwrap_err();
    assert_eq!(err.code, 429);
    let st = err.status();
    assert_eq!(st["reason"], "TooManyRequests");
    assert_eq!(st["message"], "Cannot evict pod as it would violate the pod's disruption budget.");
    assert_eq!(
        st["details"],
        json!({"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 3 currently"}]})
    );
    assert_eq!(err.retry_after, None, "no Retry-After while the budget is spent");
    let p = pod(&s, "web-1").unwrap();
    assert!(!crate::meta::is_deleting(&p));
    assert!(condition(&p, "DisruptionTarget").is_null(), "a refused pod is left untouched");
}

#[test]
fn a_budget_not_yet_observed_at_its_generation_is_still_being_processed() {
    let s = store();
    add_pod(&s, "web-0", "Running", true);
    add_budget(&s, "web", json!({"minAvailable": 1}), json!({"observedGeneration": 0, "disruptionsAllowed": 5}));
    let err = evict(&s, "web-0").unwrap_err();
    assert_eq!((err.code, err.retry_after), (429, Some(10)));
    assert_eq!(
        err.status()["details"]["causes"][0]["message"],
        "The disruption budget web is still being processed by the server."
    );
    assert_eq!(err.status()["details"]["retryAfterSeconds"], 10);
}

#[test]
fn two_budgets_over_one_pod_fail_with_code_500_and_touch_nothing() {
    let s = store();
    add_pod(&s, "web-0", "Running", true);
    add_budget(&s, "a", json!({"minAvailable": 0}), json!({"disruptionsAllowed": 1}));
    add_budget(&s, "b", json!({"minAvailable": 0}), json!({"disruptionsAllowed": 1}));
    let status = evict(&s, "web-0").unwrap();
    assert_eq!(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 500,
               "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."})
    );
    assert_eq!(budget(&s, "a")["status"]["disruptionsAllowed"], 1);
    assert!(!crate::meta::is_deleting(&pod(&s, "web-0").unwrap()));
}

#[test]
fn unready_pods_follow_the_unhealthy_pod_eviction_policy() {
    let s = store();
    add_pod(&s, "web-0", "Running", false);
    // IfHealthyBudget (the default): allowed while the budget is met, without spending it.
    add_budget(
        &s,
        "web",
        json!({"minAvailable": 2}),
        json!({"disruptionsAllowed": 0, "currentHealthy": 2, "desiredHealthy": 2}),
    );
    evict(&s, "web-0").unwrap();
    assert_eq!(budget(&s, "web")["status"]["disruptionsAllowed"], 0);
    assert!(budget(&s, "web")["status"]["disruptedPods"].is_null());

    // ... refused while it is not.
    add_pod(&s, "web-1", "Running", false);
    let c = s.client("test");
    c.patch_status(&pdbs(), Some("ns"), "web", &json!({"status": {"currentHealthy": 1}})).unwrap();
    assert_eq!(evict(&s, "web-1").unwrap_err().code, 429);

    // AlwaysAllow lets it go whatever the budget says.
    c.patch(
        &pdbs(),
        Some("ns"),
        "web",
        None,
        crate::PatchType::Merge,
        &json!({"spec": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}}),
    )
    .unwrap();
    c.patch_status(&pdbs(), Some("ns"), "web", &json!({"status": {"observedGeneration": 2}})).unwrap();
    evict(&s, "web-1").unwrap();
    assert!(crate::meta::is_deleting(&pod(&s, "web-1").unwrap()));
}

#[test]
fn pending_and_terminating_pods_are_evicted_without_the_budget() {
    let s = store();
    add_pod(&s, "web-0", "Pending", false);
    add_pod(&s, "web-1", "Running", true);
    add_budget(&s, "web", json!({"minAvailable": 5}), json!({"disruptionsAllowed": 0}));
    evict(&s, "web-0").unwrap();
    assert!(crate::meta::is_deleting(&pod(&s, "web-0").unwrap()));
    s.client("test").delete(&pods(), Some("ns"), "web-1", &Default::default()).unwrap();
    assert_eq!(evict(&s, "web-1").unwrap()["status"], "Success");
    assert!(budget(&s, "web")["status"]["disruptedPods"].is_null());
}

#[test]
fn a_missing_pod_is_404() {
    let s = store();
    let err = evict(&s, "nope").unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (404, "pods \"nope\" not found"));
}

#[test]
fn delete_options_reach_the_deletion() {
    let s = store();
    add_pod(&s, "web-0", "Running", true);
    add_budget(&s, "web", json!({"minAvailable": 0}), json!({"disruptionsAllowed": 1}));
    // A UID precondition that does not hold: conflict, nothing written (the budget is
    // decremented first, as in kube-apiserver).
    let err = evict_with(&s, "web-0", json!({"preconditions": {"uid": "other"}})).unwrap_err();
    assert_eq!(err.code, 409);
    assert!(
        err.message.starts_with("Operation cannot be fulfilled on Pod \"web-0\": the UID in the precondition (other)"),
        "{}",
        err.message
    );
    assert!(!crate::meta::is_deleting(&pod(&s, "web-0").unwrap()));
    // Dry run: neither the budget nor the pod changes.
    s.client("test").patch_status(&pdbs(), Some("ns"), "web", &json!({"status": {"disruptionsAllowed": 1}})).unwrap();
    evict_with(&s, "web-0", json!({"dryRun": ["All"]})).unwrap();
    assert_eq!(budget(&s, "web")["status"]["disruptionsAllowed"], 1);
    assert!(condition(&pod(&s, "web-0").unwrap(), "DisruptionTarget").is_null());
    // The grace period is the eviction's.
    evict_with(&s, "web-0", json!({"gracePeriodSeconds": 5})).unwrap();
    assert_eq!(pod(&s, "web-0").unwrap()["metadata"]["deletionGracePeriodSeconds"], 5);
}

#[test]
fn a_negative_budget_is_forbidden() {
    let s = store();
    add_pod(&s, "web-0", "Running", true);
    add_budget(&s, "web", json!({"minAvailable": 0}), json!({"disruptionsAllowed": -1}));
    let err = evict(&s, "web-0").unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(err.message, "poddisruptionbudget.policy \"web\" is forbidden: pdb disruptions allowed is negative");
}

#[test]
fn the_body_is_checked_like_kube_apiserver_decodes_it() {
    let s = store();
    add_pod(&s, "web-0", "Running", true);
    let opts = WriteOptions::default();
    let other = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1"}});
    assert_eq!(
        s.evict("ns", "web-0", &other, &opts).unwrap_err().message,
        "name in URL does not match name in Eviction object"
    );
    let pod_kind = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0"}});
    assert_eq!(s.evict("ns", "web-0", &pod_kind, &opts).unwrap_err().code, 400);
    // kube-rs sends `delete_options` (snake case) and no kind: the kind defaults, the
    // unknown field is dropped with a warning, or refused when strict.
    let kube_rs = json!({"metadata": {"name": "web-0"}, "delete_options": {"gracePeriodSeconds": 0}});
    let strict = WriteOptions { field_validation: FieldValidation::Strict, ..Default::default() };
    let err = s.evict("ns", "web-0", &kube_rs, &strict).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(err.message.ends_with("strict decoding error: unknown field \"delete_options\""), "{}", err.message);
    let evicted = s.evict("ns", "web-0", &kube_rs, &opts).unwrap();
    assert_eq!(evicted.warnings, ["unknown field \"delete_options\""]);
    assert_eq!(pod(&s, "web-0").unwrap()["metadata"]["deletionGracePeriodSeconds"], 30, "the options were not read");
}
