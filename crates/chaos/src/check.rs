//! Reading the simulated cluster (straight from kube-sim's store and pd-sim's ground
//! truth, never through the request log) and judging whether it reached a scenario's
//! spec: the cluster Ready with the spec's replicas, versions and sizes, every status
//! saying so, and no operation left in progress.

use std::collections::BTreeSet;

use kube_sim::{ListOptions, ResourceRef};
use serde_json::Value;
use sim_harness::Harness;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names::{LABEL_GROUP, LABEL_INSTANCE, LABEL_INSTANCE_REVISION_HASH};

use crate::scenario::Target;

pub const NS: &str = "default";
pub const CLUSTER: &str = "basic";
pub const PD_GROUP: &str = "pd";
pub const TIKV_GROUP: &str = "tikv";

pub fn resource(plural: &str) -> ResourceRef {
    match plural {
        "pods" | "nodes" | "persistentvolumeclaims" | "services" | "configmaps" => ResourceRef::new("", "v1", plural),
        _ => ResourceRef::new(tikv_operator_api::GROUP, tikv_operator_api::VERSION, plural),
    }
}

/// Every object of `plural` in the scenario's namespace (nodes: cluster-wide).
pub fn list(h: &Harness, plural: &str) -> Vec<Value> {
    let r = resource(plural);
    let store = h.store();
    let Some(info) = store.resource(&r.group, &r.version, &r.plural) else { return Vec::new() };
    let namespace = if plural == "nodes" { None } else { Some(NS) };
    match store.list(&info, namespace, &ListOptions::default()) {
        Ok(mut list) => match list["items"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}

pub fn get(h: &Harness, plural: &str, name: &str) -> Option<Value> {
    list(h, plural).into_iter().find(|o| o["metadata"]["name"] == name)
}

pub fn name(o: &Value) -> String {
    o["metadata"]["name"].as_str().unwrap_or_default().to_owned()
}

pub fn condition<'v>(o: &'v Value, type_: &str) -> Option<&'v Value> {
    o["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

fn check_condition(o: &Value, type_: &str, status: &str, reason: &str) -> Result<(), String> {
    let c = condition(o, type_).ok_or_else(|| format!("{} has no {type_} condition", name(o)))?;
    if c["status"] != status || c["reason"] != reason {
        return Err(format!("{} {type_}: want {status}/{reason}, have {}/{}", name(o), c["status"], c["reason"]));
    }
    if !c["observedGeneration"].is_null() && c["observedGeneration"] != o["metadata"]["generation"] {
        return Err(format!("{} {type_} is about generation {}", name(o), c["observedGeneration"]));
    }
    Ok(())
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, have: T, want: T) -> Result<(), String> {
    if have == want { Ok(()) } else { Err(format!("{what}: have {have:?}, want {want:?}")) }
}

fn check_observed(o: &Value) -> Result<(), String> {
    expect_eq(
        &format!("{} status.observedGeneration", name(o)),
        &o["status"]["observedGeneration"],
        &o["metadata"]["generation"],
    )
}

/// The pod of an instance.
pub fn pod_of(h: &Harness, instance: &str) -> Option<Value> {
    list(h, "pods").into_iter().find(|p| p["metadata"]["labels"][LABEL_INSTANCE] == instance)
}

/// The one PD cluster the pods formed.
pub fn pd_snapshot(h: &Harness) -> Result<pd_sim::Snapshot, String> {
    match h.pd_clusters().as_slice() {
        [one] => Ok(one.snapshot()),
        many => Err(format!("{} PD clusters formed, want exactly one", many.len())),
    }
}

/// Ok once the cluster shows `target` everywhere and no operation is in progress; the
/// first difference otherwise.
pub fn converged(h: &Harness, target: &Target) -> Result<(), String> {
    let snapshot = pd_snapshot(h)?;
    let cluster = get(h, "clusters", CLUSTER).ok_or("no Cluster")?;
    check_condition(&cluster, types::READY, "True", reasons::READY)?;
    check_condition(&cluster, types::SYNCED, "True", reasons::SYNCED)?;
    check_condition(&cluster, types::PROGRESSING, "False", reasons::STABLE)?;
    check_observed(&cluster)?;
    expect_eq("Cluster status.id", cluster["status"]["id"].as_str(), Some(snapshot.cluster_id.to_string().as_str()))?;

    let pds = group_converged(h, "pdgroups", PD_GROUP, "pds", target.pd, target.pd_version)?;
    let tikvs = group_converged(h, "tikvgroups", TIKV_GROUP, "tikvs", target.kv, target.kv_version)?;

    // PD: every member running and recorded with PD's own ID, one leader, PD's.
    let members: Vec<_> = snapshot.members.iter().filter(|m| m.in_etcd).collect();
    expect_eq("PD members in etcd", members.len(), target.pd)?;
    if members.iter().any(|m| !m.running) {
        return Err("a PD member is not running".into());
    }
    let ids: BTreeSet<String> = pds.iter().filter_map(|p| p["status"]["id"].as_str().map(str::to_owned)).collect();
    let truth: BTreeSet<String> = members.iter().map(|m| m.member_id.to_string()).collect();
    expect_eq("PD member IDs recorded vs PD", &ids, &truth)?;
    let leaders = pds.iter().filter(|p| p["status"]["isLeader"] == true).count();
    expect_eq("PDs marked leader", leaders, 1)?;
    if snapshot.leader.is_none() {
        return Err("PD has no leader".into());
    }

    // TiKV: every store recorded, Serving and Up; no other live store; no offline left.
    let mut ids = BTreeSet::new();
    for t in &tikvs {
        expect_eq(&format!("TiKV {} state", name(t)), t["status"]["state"].as_str(), Some("Serving"))?;
        if t["spec"]["offline"] == true {
            return Err(format!("TiKV {} is still offline", name(t)));
        }
        let id = t["status"]["id"].as_str().ok_or_else(|| format!("TiKV {} has no store ID", name(t)))?;
        ids.insert(id.to_owned());
    }
    let up: BTreeSet<String> =
        snapshot.stores.iter().filter(|s| s.state_name == "Up").map(|s| s.id.to_string()).collect();
    expect_eq("stores Up in PD vs recorded", &up, &ids)?;
    let live = snapshot.stores.iter().filter(|s| s.state_name != "Tombstone").count();
    expect_eq("stores in PD (not Tombstone)", live, target.kv)?;
    let evicting = snapshot.evict_leader_stores.clone().unwrap_or_default();
    if !evicting.is_empty() {
        return Err(format!("evict-leader scheduler left on stores {evicting:?}"));
    }

    // Volumes: every TiKV data PVC asks for the spec's size.
    for t in &tikvs {
        let pvcs: Vec<Value> = list(h, "persistentvolumeclaims")
            .into_iter()
            .filter(|p| p["metadata"]["labels"][LABEL_INSTANCE] == name(t))
            .collect();
        if pvcs.is_empty() {
            return Err(format!("TiKV {} has no PVC", name(t)));
        }
        for pvc in pvcs {
            let size = pvc["spec"]["resources"]["requests"]["storage"].as_str();
            expect_eq(&format!("PVC {} size", name(&pvc)), size, Some(target.kv_storage))?;
        }
    }
    Ok(())
}

/// The group's status and its `n` instances, each Ready and Synced on the update
/// revision, with a Running pod of `version`.
fn group_converged(
    h: &Harness,
    plural: &str,
    group: &str,
    instances: &str,
    n: usize,
    version: &str,
) -> Result<Vec<Value>, String> {
    let g = get(h, plural, group).ok_or_else(|| format!("no {plural}/{group}"))?;
    let s = &g["status"];
    check_condition(&g, types::READY, "True", reasons::READY)?;
    check_condition(&g, types::SYNCED, "True", reasons::SYNCED)?;
    check_observed(&g)?;
    for field in ["replicas", "readyReplicas", "updatedReplicas", "currentReplicas"] {
        expect_eq(&format!("{group} status.{field}"), s[field].as_u64(), Some(n as u64))?;
    }
    let update = s["updateRevision"].as_str().filter(|r| !r.is_empty());
    let current = s["currentRevision"].as_str();
    if update.is_none() || update != current {
        return Err(format!("{group} revisions: current {current:?} update {update:?}"));
    }
    let items: Vec<Value> =
        list(h, instances).into_iter().filter(|i| i["metadata"]["labels"][LABEL_GROUP] == group).collect();
    expect_eq(&format!("{group} instances"), items.len(), n)?;
    for i in &items {
        let what = format!("{} {}", &instances[..instances.len() - 1], name(i));
        check_condition(i, types::READY, "True", reasons::READY).map_err(|e| format!("{what}: {e}"))?;
        check_condition(i, types::SYNCED, "True", reasons::SYNCED).map_err(|e| format!("{what}: {e}"))?;
        check_observed(i).map_err(|e| format!("{what}: {e}"))?;
        let revision = i["metadata"]["labels"][LABEL_INSTANCE_REVISION_HASH].as_str();
        expect_eq(&format!("{what} revision"), revision, update)?;
        let pod = pod_of(h, &name(i)).ok_or_else(|| format!("{what} has no pod"))?;
        expect_eq(&format!("{what} pod phase"), pod["status"]["phase"].as_str(), Some("Running"))?;
        let images: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["image"].as_str()).collect())
            .unwrap_or_default();
        if !images.iter().any(|image| image.ends_with(&format!(":{version}"))) {
            return Err(format!("{what} pod runs {images:?}, want {version}"));
        }
    }
    Ok(items)
}

/// Some TiKV is being taken offline.
pub fn offline_started(h: &Harness) -> bool {
    list(h, "tikvs").iter().any(|t| t["spec"]["offline"] == true)
}

/// No TiKV pod is left.
pub fn suspended(h: &Harness) -> bool {
    !list(h, "pods").iter().any(|p| p["metadata"]["labels"][LABEL_GROUP] == TIKV_GROUP)
}

/// The TiKV group's Failover condition is True.
pub fn failover_started(h: &Harness) -> bool {
    get(h, "tikvgroups", TIKV_GROUP)
        .as_ref()
        .and_then(|g| condition(g, types::FAILOVER).cloned())
        .is_some_and(|c| c["status"] == "True")
}

/// One line of what the instances show (for the trace): per PD and TiKV instance its
/// name, ID, Ready (with the reason and message when not), offline, revision (short), evict-leader record and node; and the
/// stores PD's evict-leader scheduler holds, the TiKV group's Failover condition and the
/// instances' Down clocks.
pub fn status_line(h: &Harness) -> String {
    let mut parts = Vec::new();
    for plural in ["pds", "tikvs"] {
        for i in list(h, plural) {
            let n = name(&i);
            let ready_condition = condition(&i, types::READY);
            let ready = ready_condition.is_some_and(|c| c["status"] == "True");
            let revision = i["metadata"]["labels"][LABEL_INSTANCE_REVISION_HASH].as_str().unwrap_or("-");
            let node = pod_of(h, &n).and_then(|p| p["spec"]["nodeName"].as_str().map(str::to_owned));
            let mut part = format!(
                "{n}({}) {}{} rev {} on {}",
                i["status"]["id"].as_str().unwrap_or("?"),
                match ready_condition {
                    _ if ready => "R".to_string(),
                    Some(c) => format!(
                        "notR[{}: {}]",
                        c["reason"].as_str().unwrap_or("-"),
                        c["message"].as_str().unwrap_or("-")
                    ),
                    None => "notR".to_string(),
                },
                if i["spec"]["offline"] == true { " OFFLINE" } else { "" },
                &revision[revision.len().saturating_sub(6)..],
                node.as_deref().unwrap_or("-")
            );
            if let Some(store) =
                i["metadata"]["annotations"][tikv_operator_api::names::ANNOTATION_EVICT_LEADER_STORE].as_str()
            {
                part.push_str(&format!(" evict {store}"));
            }
            parts.push(part);
        }
    }
    let evicting = pd_snapshot(h).ok().and_then(|s| s.evict_leader_stores).unwrap_or_default();
    let failover = get(h, "tikvgroups", TIKV_GROUP)
        .as_ref()
        .and_then(|g| condition(g, types::FAILOVER).cloned())
        .map(|c| format!("; failover {}[{}: {}]", c["status"], c["reason"], c["message"]))
        .unwrap_or_default();
    let down: Vec<String> = list(h, "tikvs")
        .iter()
        .filter_map(|t| Some(format!("{} since {}", name(t), t["status"]["downSince"].as_str()?)))
        .collect();
    format!("{}; PD evicts {evicting:?}{failover}; down {down:?}", parts.join(", "))
}

/// The PD instance marked for removal from PD's membership, if any.
pub fn member_leaving(h: &Harness) -> Option<String> {
    list(h, "pds")
        .into_iter()
        .find(|p| p["metadata"]["annotations"][tikv_operator_api::names::ANNOTATION_MEMBER_REMOVAL].is_string())
        .map(|p| name(&p))
}
