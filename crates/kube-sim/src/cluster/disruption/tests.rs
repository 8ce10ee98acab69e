//! The disruption controller's passes on hand-built stores, the clock moved by hand.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::request_log::Verb;
use crate::store::ResourceRef;

fn controller() -> Disruption {
    let clock = sim_clock::SimClock::new(1.0);
    let store = Store::new(clock, 1000, 0);
    let c = store.client("test");
    c.create(&ResourceRef::new("", "v1", "namespaces"), None, json!({"metadata": {"name": "ns"}})).unwrap();
    Disruption { recorder: Recorder::new(&store), source: Source::new(CLIENT, COMPONENT), store, due: HashMap::new() }
}

fn add_pod(d: &Disruption, name: &str, ready: bool, owner: Option<&Value>) {
    let c = d.store.client("test");
    let mut pod = json!({"metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i"}]}});
    if let Some(o) = owner {
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": o["apiVersion"], "kind": o["kind"],
            "name": o["metadata"]["name"], "uid": o["metadata"]["uid"], "controller": true}]);
    }
    c.create(&PODS.r(), Some("ns"), pod).unwrap();
    let status = json!({"status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    c.patch_status(&PODS.r(), Some("ns"), name, &status).unwrap();
}

fn add_budget(d: &Disruption, spec: Value) {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "web"}});
    d.store.client("test").create(&PDBS.r(), Some("ns"), json!({"metadata": {"name": "web"}, "spec": spec})).unwrap();
}

fn status(d: &Disruption) -> Value {
    d.store.client("test").get(&PDBS.r(), Some("ns"), "web").unwrap()["status"].clone()
}

fn counts(d: &Disruption) -> (i64, i64, i64, i64) {
    let s = status(d);
    let n = |f: &str| s[f].as_i64().unwrap_or(-1);
    (n("expectedPods"), n("desiredHealthy"), n("currentHealthy"), n("disruptionsAllowed"))
}

/// Timestamps have whole seconds, so a deadline two minutes after one is up to a
/// second earlier than two minutes from now.
fn assert_about_two_minutes_from_now(d: &Disruption, due: SimInstant) {
    let now = d.store.clock().now();
    assert!(due > now + Duration::from_secs(118) && due <= now + Duration::from_secs(120), "{due:?} from {now:?}");
}

fn status_writes(d: &Disruption) -> usize {
    d.store.requests().count(|r| r.client == CLIENT && r.verb == Verb::Update)
}

#[test]
fn integer_min_available_counts_ready_pods_and_a_second_pass_writes_nothing() {
    let mut d = controller();
    add_pod(&d, "web-0", true, None);
    add_pod(&d, "web-1", true, None);
    add_pod(&d, "web-2", false, None);
    add_budget(&d, json!({"minAvailable": 1}));
    assert_eq!(d.pass(None), None);
    assert_eq!(counts(&d), (3, 1, 2, 1));
    let s = status(&d);
    assert_eq!(s["observedGeneration"], 1);
    let c = &s["conditions"][0];
    assert_eq!(
        (&c["type"], &c["status"], &c["reason"]),
        (&json!("DisruptionAllowed"), &json!("True"), &json!("SufficientPods"))
    );
    assert_eq!(status_writes(&d), 1);
    d.pass(None);
    assert_eq!(status_writes(&d), 1, "nothing changed, nothing written");

    // A terminating pod no longer counts; the budget is spent.
    d.store.client("test").delete(&PODS.r(), Some("ns"), "web-0", &Default::default()).unwrap();
    d.pass(None);
    assert_eq!(counts(&d), (3, 1, 1, 0));
    assert_eq!(status(&d)["conditions"][0]["reason"], "InsufficientPods");
}

#[test]
fn no_expected_pod_allows_nothing() {
    let mut d = controller();
    add_budget(&d, json!({"minAvailable": 0}));
    d.pass(None);
    assert_eq!(counts(&d), (0, 0, 0, 0));
}

#[test]
fn an_eviction_holds_its_pod_out_until_deleted_or_expired() {
    let mut d = controller();
    add_pod(&d, "web-0", true, None);
    add_pod(&d, "web-1", true, None);
    add_budget(&d, json!({"minAvailable": 1}));
    d.pass(None);
    let at = meta::time(d.store.clock().wall());
    let patch = json!({"status": {"disruptionsAllowed": 0, "disruptedPods": {"web-0": at, "gone": at}}});
    d.store.client("test").patch_status(&PDBS.r(), Some("ns"), "web", &patch).unwrap();
    let due = d.pass(None).expect("a recheck when the entry expires");
    assert_about_two_minutes_from_now(&d, due);
    assert_eq!(counts(&d), (2, 1, 1, 0));
    assert_eq!(status(&d)["disruptedPods"], json!({"web-0": at}), "the entry of a pod that is gone is dropped");

    // Not deleted within two minutes: back in the count, with an Event on the pod.
    d.store.clock().advance(Duration::from_secs(121));
    assert_eq!(d.pass(None), None);
    assert_eq!(counts(&d), (2, 1, 2, 1));
    assert!(status(&d)["disruptedPods"].is_null());
    let events =
        d.store.client("test").list(&ResourceRef::new("", "v1", "events"), Some("ns"), &Default::default()).unwrap();
    let reasons: Vec<&str> = events["items"].as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(reasons, ["NotDeleted"]);
}

fn gadget_crd(d: &Disruption) {
    let crd = json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    d.store
        .client("test")
        .create(&ResourceRef::new("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None, crd)
        .unwrap();
}

#[test]
fn percentages_and_max_unavailable_use_the_controllers_scale() {
    let mut d = controller();
    gadget_crd(&d);
    let gadgets = ResourceRef::new("example.com", "v1", "gadgets");
    let g = d
        .store
        .client("test")
        .create(&gadgets, Some("ns"), json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"replicas": 5}}))
        .unwrap();
    for i in 0..3 {
        add_pod(&d, &format!("web-{i}"), true, Some(&g));
    }
    add_budget(&d, json!({"maxUnavailable": 1}));
    d.pass(None);
    assert_eq!(counts(&d), (5, 4, 3, 0), "two of five replicas missing");
    d.store
        .client("test")
        .patch(
            &PDBS.r(),
            Some("ns"),
            "web",
            None,
            crate::PatchType::Merge,
            &json!({"spec": {"maxUnavailable": null, "minAvailable": "50%"}}),
        )
        .unwrap();
    d.pass(None);
    assert_eq!(counts(&d), (5, 3, 3, 0), "50% of 5 rounds up to 3");
    assert_eq!(status(&d)["observedGeneration"], 2);
}

#[test]
fn a_controller_without_scale_fails_the_sync_safe() {
    let mut d = controller();
    let owner = d
        .store
        .client("test")
        .create(&ResourceRef::new("", "v1", "configmaps"), Some("ns"), json!({"metadata": {"name": "cm"}}))
        .unwrap();
    add_pod(&d, "web-0", true, Some(&owner));
    add_budget(&d, json!({"maxUnavailable": 1}));
    d.pass(None);
    let s = status(&d);
    assert_eq!(s["disruptionsAllowed"], 0);
    let c = &s["conditions"][0];
    assert_eq!((&c["status"], &c["reason"]), (&json!("False"), &json!("SyncFailed")));
    assert_eq!(c["message"], "configmaps does not implement the scale subresource");
    assert!(s["observedGeneration"].is_null(), "a failed sync observes nothing");
    d.pass(None);
    assert_eq!(status_writes(&d), 1);
}

#[test]
fn a_stale_disruption_target_is_reset() {
    let mut d = controller();
    add_pod(&d, "web-0", true, None);
    let now = meta::time(d.store.clock().wall());
    let cond = json!({"status": {"conditions": [{"type": "Ready", "status": "True"},
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
         "lastTransitionTime": now, "lastProbeTime": null}]}});
    d.store.client("test").patch_status(&PODS.r(), Some("ns"), "web-0", &cond).unwrap();
    let due = d.pass(None).expect("a recheck when the condition goes stale");
    assert_about_two_minutes_from_now(&d, due);
    d.store.clock().advance(STALE_POD_DISRUPTION_TIMEOUT + Duration::from_secs(1));
    d.pass(None);
    let pod = d.store.client("test").get(&PODS.r(), Some("ns"), "web-0").unwrap();
    let c = super::super::objects::condition(&pod, "DisruptionTarget").unwrap();
    assert_eq!(c["status"], "False");
    assert!(c["reason"].is_null());
}

#[test]
fn pods_are_grouped_by_namespace_in_store_order() {
    let pod = |ns: &str, name: &str| Arc::new(json!({"metadata": {"namespace": ns, "name": name}}));
    let pods = vec![pod("a", "p1"), pod("a", "p2"), pod("b", "p1"), pod("c", "p0"), pod("c", "p9")];
    let grouped = by_namespace(&pods);
    let names = |ns: &str| -> Vec<&str> { grouped[ns].iter().map(|p| str_of(p, &["metadata", "name"])).collect() };
    assert_eq!(names("a"), ["p1", "p2"]);
    assert_eq!(names("b"), ["p1"]);
    assert_eq!(names("c"), ["p0", "p9"]);
    assert!(!grouped.contains_key("d"));
}

/// The changes since `rev`, as the controller's loop hands them over.
fn changes(d: &Disruption, rev: u64) -> Option<Vec<Arc<Change>>> {
    Some(d.store.changes_since(rev).expect("history kept").0)
}

#[test]
fn a_pass_over_changes_syncs_the_namespaces_they_touch_and_those_whose_deadline_came() {
    let mut d = controller();
    add_pod(&d, "web-0", true, None);
    add_pod(&d, "web-1", true, None);
    add_budget(&d, json!({"minAvailable": 1}));
    d.pass(None);
    assert_eq!(counts(&d), (2, 1, 2, 1));

    // A change elsewhere: this namespace is not looked at.
    let rev = d.store.revision();
    let c = d.store.client("test");
    c.create(&ResourceRef::new("", "v1", "namespaces"), None, json!({"metadata": {"name": "other"}})).unwrap();
    let pod = json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    c.create(&PODS.r(), Some("other"), pod).unwrap();
    let writes = status_writes(&d);
    assert_eq!(d.pass(changes(&d, rev)), None);
    assert_eq!(status_writes(&d), writes);

    // A pod of the namespace turns not Ready: its budget follows.
    let rev = d.store.revision();
    let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    c.patch_status(&PODS.r(), Some("ns"), "web-1", &not_ready).unwrap();
    d.pass(changes(&d, rev));
    assert_eq!(counts(&d), (2, 1, 1, 0));

    // An eviction's entry: its expiry brings the namespace back without any change.
    let at = meta::time(d.store.clock().wall());
    let rev = d.store.revision();
    let patch = json!({"status": {"disruptionsAllowed": 0, "disruptedPods": {"web-0": at}}});
    c.patch_status(&PDBS.r(), Some("ns"), "web", &patch).unwrap();
    let due = d.pass(changes(&d, rev)).expect("a recheck when the entry expires");
    assert_about_two_minutes_from_now(&d, due);
    d.store.clock().advance(Duration::from_secs(121));
    let rev = d.store.revision();
    assert_eq!(d.pass(changes(&d, rev)), None);
    assert!(status(&d)["disruptedPods"].is_null(), "the expired entry is dropped");
    assert_eq!(counts(&d), (2, 1, 1, 0));
}
