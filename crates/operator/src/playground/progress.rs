//! The live view: one line per Cluster, group, instance and PD-side member and store,
//! rebuilt from what the store and the simulated PD hold, and printed only where a
//! line changed.
//!
//! Objects are read as JSON rather than decoded into the API types on purpose: the
//! view must show whatever the operator has written so far, partial statuses included.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube_sim::{ListOptions, Store};
use serde_json::Value;
use sim_harness::PdCluster;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names::LABEL_INSTANCE;

use super::apply::DEFAULT_NAMESPACE;

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Everything the view shows, read at one moment.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub clusters: Vec<Value>,
    pub pd_groups: Vec<Value>,
    pub tikv_groups: Vec<Value>,
    pub pds: Vec<Value>,
    pub tikvs: Vec<Value>,
    pub pods: Vec<Value>,
    pub nodes: Vec<Value>,
    /// One per PD cluster the pods formed, in formation order.
    pub pd: Vec<PdTruth>,
}

/// What the simulated PD knows (the truth, not what the operator reported).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PdTruth {
    pub members: Vec<PdMemberTruth>,
    pub stores: Vec<PdStoreTruth>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdMemberTruth {
    pub name: String,
    pub running: bool,
    pub leader: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdStoreTruth {
    pub id: u64,
    /// PD's `state_name`: Up, Disconnected, Down, Offline, Tombstone.
    pub state: String,
    pub regions: u64,
    pub leaders: u64,
}

/// Reads the objects straight from the store: the view polls, and its reads must not
/// fill the request log that measures the operator and the simulated cluster.
pub fn read(store: &Store, pd_clusters: &[Arc<PdCluster>]) -> Observed {
    let list = |group: &str, version: &str, plural: &str| -> Vec<Value> {
        let Some(info) = store.resource(group, version, plural) else { return Vec::new() };
        match store.list(&info, None, &ListOptions::default()) {
            Ok(mut list) => match list["items"].take() {
                Value::Array(items) => items,
                _ => Vec::new(),
            },
            Err(_) => Vec::new(),
        }
    };
    let (group, version) = (tikv_operator_api::GROUP, tikv_operator_api::VERSION);
    Observed {
        clusters: list(group, version, "clusters"),
        pd_groups: list(group, version, "pdgroups"),
        tikv_groups: list(group, version, "tikvgroups"),
        pds: list(group, version, "pds"),
        tikvs: list(group, version, "tikvs"),
        pods: list("", "v1", "pods"),
        nodes: list("", "v1", "nodes"),
        pd: pd_clusters.iter().map(|c| pd_truth(c)).collect(),
    }
}

fn pd_truth(cluster: &PdCluster) -> PdTruth {
    let snapshot = cluster.snapshot();
    let leader = snapshot.leader.as_deref();
    PdTruth {
        members: snapshot
            .members
            .iter()
            .filter(|m| m.in_etcd)
            .map(|m| PdMemberTruth {
                name: m.name.clone(),
                running: m.running,
                leader: leader == Some(m.name.as_str()),
            })
            .collect(),
        stores: snapshot
            .stores
            .iter()
            .map(|s| PdStoreTruth {
                id: s.id,
                state: s.state_name.clone(),
                regions: s.region_count,
                leaders: s.leader_count,
            })
            .collect(),
    }
}

/// One line of the view; `key` names what the line is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub text: String,
}

impl Row {
    fn new(kind: &str, name: &str, detail: String) -> Row {
        let key = format!("{kind} {name}");
        Row { text: format!("{kind:<9} {name:<20} {detail}").trim_end().to_owned(), key }
    }
}

/// The whole view: clusters, PD groups and members, TiKV groups and stores, then what
/// PD itself says.
pub fn rows(o: &Observed) -> Vec<Row> {
    let mut rows = Vec::new();
    for cluster in sorted(&o.clusters) {
        rows.push(Row::new("cluster", &display_name(cluster), conditions_or_pending(cluster)));
    }
    for group in sorted(&o.pd_groups) {
        rows.push(Row::new("pdgroup", &display_name(group), group_detail(group)));
    }
    for pd in sorted(&o.pds) {
        let status = &pd["status"];
        let mut detail = pod_detail(o, pd);
        if let Some(id) = status["id"].as_str() {
            detail.push_str(&format!("  member {id}"));
        }
        if status["isLeader"].as_bool() == Some(true) {
            detail.push_str(" leader");
        }
        detail.push_str(&format!("  {}", instance_ready(pd)));
        rows.push(Row::new("pd", &display_name(pd), detail));
    }
    for group in sorted(&o.tikv_groups) {
        rows.push(Row::new("tikvgroup", &display_name(group), group_detail(group)));
    }
    for tikv in sorted(&o.tikvs) {
        let status = &tikv["status"];
        let mut detail = pod_detail(o, tikv);
        if let Some(id) = status["id"].as_str() {
            detail.push_str(&format!("  store {id}"));
            if let Some(state) = status["state"].as_str() {
                detail.push_str(&format!(" {state}"));
            }
        }
        if tikv["spec"]["offline"].as_bool() == Some(true) {
            detail.push_str(" offline-requested");
        }
        detail.push_str(&format!("  {}", instance_ready(tikv)));
        rows.push(Row::new("tikv", &display_name(tikv), detail));
    }
    for (i, pd) in o.pd.iter().enumerate() {
        let kind = if i == 0 { "pd-sim".to_owned() } else { format!("pd-sim#{i}") };
        for m in &pd.members {
            let state = match (m.running, m.leader) {
                (true, true) => "running leader",
                (true, false) => "running",
                (false, _) => "stopped",
            };
            rows.push(Row::new(&kind, &format!("member {}", m.name), state.to_owned()));
        }
        for s in &pd.stores {
            rows.push(Row::new(&kind, &format!("store {}", s.id), s.state.clone()));
        }
    }
    rows
}

/// The view as a block of text, with region and leader counts (too lively for the
/// change log, useful in a summary).
pub fn table(rows: &[Row], o: &Observed) -> String {
    let counts: BTreeMap<String, String> =
        o.pd.iter()
            .enumerate()
            .flat_map(|(i, pd)| {
                let kind = if i == 0 { "pd-sim".to_owned() } else { format!("pd-sim#{i}") };
                pd.stores.iter().map(move |s| {
                    (format!("{kind} store {}", s.id), format!("  {} regions, {} leaders", s.regions, s.leaders))
                })
            })
            .collect();
    let mut out = String::new();
    for row in rows {
        out.push_str("  ");
        out.push_str(&row.text);
        if let Some(c) = counts.get(&row.key) {
            out.push_str(c);
        }
        out.push('\n');
    }
    out
}

/// Remembers the last view and tells what changed.
#[derive(Debug, Default)]
pub struct Changes {
    last: BTreeMap<String, String>,
}

impl Changes {
    /// The lines to print: new and changed rows in view order, then rows that are gone.
    pub fn update(&mut self, rows: &[Row]) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = BTreeMap::new();
        for row in rows {
            if self.last.get(&row.key) != Some(&row.text) {
                out.push(row.text.clone());
            }
            next.insert(row.key.clone(), row.text.clone());
        }
        for key in self.last.keys().filter(|k| !next.contains_key(*k)) {
            out.push(format!("{key}: gone"));
        }
        self.last = next;
        out
    }
}

/// Whether every named Cluster (`namespace`, `name`) says Ready for its current spec.
pub fn clusters_ready(o: &Observed, wanted: &[(String, String)]) -> bool {
    !wanted.is_empty()
        && wanted.iter().all(|(ns, name)| {
            o.clusters
                .iter()
                .find(|c| {
                    c["metadata"]["namespace"].as_str() == Some(ns) && c["metadata"]["name"].as_str() == Some(name)
                })
                .is_some_and(ready_for_current_generation)
        })
}

/// Ready is True, and if the condition says which generation it observed, it is the
/// current one (a Ready about an older spec says nothing).
fn ready_for_current_generation(obj: &Value) -> bool {
    condition(obj, types::READY).is_some_and(|c| {
        c["status"] == "True"
            && (c["observedGeneration"].is_null() || c["observedGeneration"] == obj["metadata"]["generation"])
    })
}

fn condition<'v>(obj: &'v Value, type_: &str) -> Option<&'v Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

fn sorted(objects: &[Value]) -> Vec<&Value> {
    let mut v: Vec<&Value> = objects.iter().collect();
    v.sort_by_key(|o| (o["metadata"]["namespace"].as_str(), o["metadata"]["name"].as_str()));
    v
}

/// `name` in the default namespace, `namespace/name` elsewhere.
fn display_name(obj: &Value) -> String {
    let name = obj["metadata"]["name"].as_str().unwrap_or("?");
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) if ns != DEFAULT_NAMESPACE => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// `Ready=False NotAllGroupsReady, Progressing=True Progressing`.
fn conditions(obj: &Value) -> String {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let (t, s, r) = (c["type"].as_str(), c["status"].as_str(), c["reason"].as_str());
            format!("{}={} {}", t.unwrap_or("?"), s.unwrap_or("?"), r.unwrap_or_default()).trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn conditions_or_pending(obj: &Value) -> String {
    let text = conditions(obj);
    if text.is_empty() { "(no status yet)".to_owned() } else { text }
}

/// `3/3 ready  Ready=True Ready, Synced=True Synced`.
fn group_detail(group: &Value) -> String {
    let desired = group["spec"]["replicas"].as_i64().unwrap_or(0);
    let ready = group["status"]["readyReplicas"].as_i64().unwrap_or(0);
    format!("{ready}/{desired} ready  {}", conditions_or_pending(group))
}

/// `Ready=True`, or with the reason when it is not: `Ready=False StoreNotUp`.
fn instance_ready(instance: &Value) -> String {
    match condition(instance, types::READY) {
        None => "Ready=?".to_owned(),
        Some(c) if c["status"] == "True" => "Ready=True".to_owned(),
        Some(c) => {
            let reason = c["reason"].as_str().unwrap_or(reasons::POD_NOT_READY);
            format!("Ready={} {reason}", c["status"].as_str().unwrap_or("?"))
        }
    }
}

/// `pod Running ready node-1/zone-a`, `pod Pending`, `no pod`.
fn pod_detail(o: &Observed, instance: &Value) -> String {
    let ns = instance["metadata"]["namespace"].as_str();
    let name = instance["metadata"]["name"].as_str();
    let pod = o.pods.iter().find(|p| {
        p["metadata"]["namespace"].as_str() == ns && p["metadata"]["labels"][LABEL_INSTANCE].as_str() == name
    });
    let Some(pod) = pod else { return "no pod".to_owned() };
    let phase = if pod["metadata"]["deletionTimestamp"].is_string() {
        "Terminating"
    } else {
        pod["status"]["phase"].as_str().unwrap_or("Pending")
    };
    let ready = condition(pod, "Ready").is_some_and(|c| c["status"] == "True");
    let mut out = format!("pod {phase}{}", if ready { " ready" } else { "" });
    if !ready {
        out.push_str(&containers_not_running(pod));
    }
    if let Some(node) = pod["spec"]["nodeName"].as_str() {
        let zone = o
            .nodes
            .iter()
            .find(|n| n["metadata"]["name"].as_str() == Some(node))
            .and_then(|n| n["metadata"]["labels"][ZONE_LABEL].as_str());
        out.push_str(&format!(" {node}"));
        if let Some(zone) = zone {
            out.push_str(&format!("/{zone}"));
        }
    }
    out
}

/// ` (tikv waiting CrashLoopBackOff, 3 restarts, last exit 1: <message>)` for each
/// container of a Pod that is not running: why a pod that is there is not ready.
fn containers_not_running(pod: &Value) -> String {
    let mut out = String::new();
    for c in pod["status"]["containerStatuses"].as_array().into_iter().flatten() {
        let state = &c["state"];
        if state["running"].is_object() {
            continue;
        }
        let name = c["name"].as_str().unwrap_or("?");
        let now = if let Some(reason) = state["waiting"]["reason"].as_str() {
            format!("waiting {reason}")
        } else if state["terminated"].is_object() {
            format!("exited {}", state["terminated"]["exitCode"].as_i64().unwrap_or(-1))
        } else {
            "not started".to_owned()
        };
        let mut detail = format!("{name} {now}, {} restarts", c["restartCount"].as_i64().unwrap_or(0));
        let last = &c["lastState"]["terminated"];
        if last.is_object() {
            let message: String =
                last["message"].as_str().unwrap_or("").lines().last().unwrap_or("").chars().take(160).collect();
            detail.push_str(&format!(", last exit {}: {message}", last["exitCode"].as_i64().unwrap_or(-1)));
        }
        out.push_str(&format!(" ({detail})"));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn cond(type_: &str, status: &str, reason: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"})
    }

    fn tikv(name: &str, status: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "generation": 1}, "spec": {}, "status": status})
    }

    fn pod(instance: &str, node: &str, phase: &str, ready: bool) -> Value {
        json!({"metadata": {"name": format!("pod-of-{instance}"), "namespace": "default",
                            "labels": {LABEL_INSTANCE: instance}},
               "spec": {"nodeName": node},
               "status": {"phase": phase, "conditions": [cond("Ready", if ready { "True" } else { "False" }, "")]}})
    }

    fn node(name: &str, zone: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {ZONE_LABEL: zone}}})
    }

    fn observed() -> Observed {
        Observed {
            clusters: vec![json!({"metadata": {"name": "basic", "namespace": "default", "generation": 1},
                                  "status": {"conditions": [cond("Ready", "False", "NotAllGroupsReady"),
                                                            cond("Progressing", "True", "Progressing")]}})],
            tikv_groups: vec![json!({"metadata": {"name": "tikv", "namespace": "default"}, "spec": {"replicas": 3},
                                     "status": {"readyReplicas": 1, "conditions": [cond("Ready", "False", "NotAllInstancesReady")]}})],
            pds: vec![json!({"metadata": {"name": "pd-x1", "namespace": "default"},
                             "status": {"id": "42", "isLeader": true, "conditions": [cond("Ready", "True", "Ready")]}})],
            tikvs: vec![
                tikv("tikv-b2", json!({})),
                tikv("tikv-a1", json!({"id": "4", "state": "Serving", "conditions": [cond("Ready", "True", "Ready")]})),
            ],
            pods: vec![pod("tikv-a1", "node-2", "Running", true), pod("pd-x1", "node-1", "Running", true)],
            nodes: vec![node("node-1", "zone-a"), node("node-2", "zone-b")],
            pd: vec![PdTruth {
                members: vec![PdMemberTruth { name: "pd-pd-x1".into(), running: true, leader: true }],
                stores: vec![PdStoreTruth { id: 4, state: "Up".into(), regions: 30, leaders: 10 }],
            }],
            ..Observed::default()
        }
    }

    #[test]
    fn one_line_per_object_in_a_stable_order() {
        let texts: Vec<String> = rows(&observed()).into_iter().map(|r| r.text).collect();
        assert_eq!(
            texts,
            [
                "cluster   basic                Ready=False NotAllGroupsReady, Progressing=True Progressing",
                "pd        pd-x1                pod Running ready node-1/zone-a  member 42 leader  Ready=True",
                "tikvgroup tikv                 1/3 ready  Ready=False NotAllInstancesReady",
                "tikv      tikv-a1              pod Running ready node-2/zone-b  store 4 Serving  Ready=True",
                "tikv      tikv-b2              no pod  Ready=?",
                "pd-sim    member pd-pd-x1      running leader",
                "pd-sim    store 4              Up",
            ]
        );
    }

    #[test]
    fn objects_outside_the_default_namespace_show_it() {
        let mut o = Observed::default();
        o.clusters.push(json!({"metadata": {"name": "basic", "namespace": "db"}}));
        assert_eq!(rows(&o)[0].text, "cluster   db/basic             (no status yet)");
    }

    #[test]
    fn a_pod_that_is_not_ready_says_what_its_containers_do() {
        let mut o = observed();
        o.pods[1]["status"]["containerStatuses"] = json!([{
            "name": "pd", "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "message": "starting\n[FATAL] boom"}},
        }]);
        o.pods[1]["status"]["conditions"] = json!([cond("Ready", "False", "")]);
        let texts: Vec<String> = rows(&o).into_iter().map(|r| r.text).collect();
        assert!(
            texts.iter().any(|t| t.contains(
                "pd-x1                pod Running (pd waiting CrashLoopBackOff, 3 restarts, last exit 1: [FATAL] boom) node-1/zone-a"
            )),
            "{texts:#?}"
        );
    }

    #[test]
    fn only_what_changed_is_printed() {
        let mut changes = Changes::default();
        let mut o = observed();
        assert_eq!(changes.update(&rows(&o)).len(), 7, "everything is new");
        assert!(changes.update(&rows(&o)).is_empty(), "nothing changed");

        o.tikvs[0] = tikv("tikv-b2", json!({"id": "5", "state": "Preparing"}));
        o.pd[0].stores[0].regions = 12;
        assert_eq!(
            changes.update(&rows(&o)),
            ["tikv      tikv-b2              no pod  store 5 Preparing  Ready=?"],
            "a region count moving is not a change worth a line"
        );

        o.tikvs.remove(0);
        assert_eq!(changes.update(&rows(&o)), ["tikv tikv-b2: gone"]);
    }

    #[test]
    fn the_summary_adds_region_and_leader_counts() {
        let o = observed();
        let table = table(&rows(&o), &o);
        assert!(table.contains("  pd-sim    store 4              Up  30 regions, 10 leaders\n"), "{table}");
    }

    #[test]
    fn ready_means_ready_for_the_current_generation() {
        let wanted = [("default".to_owned(), "basic".to_owned())];
        let mut o = observed();
        assert!(!clusters_ready(&o, &wanted));
        let mut ready = cond("Ready", "True", "Ready");
        ready["observedGeneration"] = json!(1);
        o.clusters[0]["status"]["conditions"] = json!([ready.clone()]);
        assert!(clusters_ready(&o, &wanted));
        o.clusters[0]["metadata"]["generation"] = json!(2);
        assert!(!clusters_ready(&o, &wanted), "observed an older spec");
        assert!(!clusters_ready(&o, &[]), "no cluster to wait for is never ready");
    }
}
