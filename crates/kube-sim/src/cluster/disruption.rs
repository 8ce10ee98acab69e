//! kube-controller-manager's disruption controller (`disruption-controller`): the status
//! of every PodDisruptionBudget, and the clean-up of stale `DisruptionTarget` pod
//! conditions. It syncs a namespace's budgets and pods on every change to a pod or
//! budget of the namespace, and when an eviction's `disruptedPods` entry or a pod's
//! stale condition there comes due (simulated time); every namespace at start and
//! after changes were missed.
//!
//! For each budget, from the pods of its namespace its selector matches:
//!
//! - `expectedPods` and `desiredHealthy`: an integer `minAvailable` is taken as it is,
//!   with every selected pod expected; a percentage `minAvailable` or any
//!   `maxUnavailable` needs the sum of the scales of the pods' controllers, read through
//!   their `scale` subresource (custom resources that declare one; kube-sim serves no
//!   Deployments or StatefulSets). A controller without `scale` fails the sync, as
//!   kube-controller-manager does ("... does not implement the scale subresource"):
//!   the budget then allows nothing and says `SyncFailed` in its condition. Pods without
//!   a controller are left out of the scale sum.
//! - `currentHealthy`: selected pods that are Ready, not terminating, and not in
//!   `disruptedPods` (an eviction approved less than two minutes ago);
//! - `disruptionsAllowed = currentHealthy - desiredHealthy`, never below 0, and 0 while
//!   no pod is expected;
//! - `disruptedPods` keeps the entries of pods that still exist, are not terminating and
//!   were evicted less than two minutes ago (an expired one gets a `NotDeleted` Event on
//!   the pod);
//! - `observedGeneration` and the `DisruptionAllowed` condition (`SufficientPods` /
//!   `InsufficientPods`).
//!
//! The status is written (PUT of `status`, as client
//! `kube-controller-manager/disruption-controller`) only when it changed.
//!
//! A pod whose `DisruptionTarget` condition (set by an eviction) has been `True` for two
//! minutes without the pod terminating gets it reset to `False`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use sim_clock::SimInstant;
use tokio::sync::watch;

use super::Wake;
use super::events::{EventType, Recorder, Source};
use super::objects::{PDBS, PODS, is_terminal, list, set_condition, str_of};
use crate::meta;
use crate::pdb;
use crate::store::{Change, Store};

const CLIENT: &str = "kube-controller-manager/disruption-controller";
const COMPONENT: &str = "controllermanager";
/// How long a `DisruptionTarget` condition may stay on a pod that is not terminating.
const STALE_POD_DISRUPTION_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) async fn run(store: Store, shutdown: watch::Receiver<bool>) {
    let mut wake = Wake::keeping_changes(&store, shutdown, &["pods", "poddisruptionbudgets"]);
    let mut controller = Disruption {
        recorder: Recorder::new(&store),
        source: Source::new(CLIENT, COMPONENT),
        store,
        due: HashMap::new(),
    };
    let mut next = None;
    while wake.wait(next, std::future::pending()).await {
        next = controller.pass(wake.take_changes());
    }
}

struct Disruption {
    store: Store,
    recorder: Recorder,
    source: Source,
    /// Each namespace's next deadline (an expiring `disruptedPods` entry or a stale
    /// condition).
    due: HashMap<String, SimInstant>,
}

/// The simulated instant at which the wall-clock time `due` comes.
fn instant_of(now: SimInstant, wall: SystemTime, due: SystemTime) -> SimInstant {
    now + due.duration_since(wall).unwrap_or(Duration::ZERO)
}

fn wall_of(v: &Value) -> Option<SystemTime> {
    meta::parse_time(v.as_str()?).map(SystemTime::from)
}

/// Pods by namespace, each namespace's in the store's order: a budget selects pods of
/// its own namespace only, and looking at every pod for every budget grew with the
/// square of the cluster's size.
fn by_namespace(pods: &[Arc<Value>]) -> HashMap<&str, Vec<&Value>> {
    let mut out: HashMap<&str, Vec<&Value>> = HashMap::new();
    for pod in pods {
        out.entry(str_of(pod, &["metadata", "namespace"])).or_default().push(pod);
    }
    out
}

impl Disruption {
    /// Syncs the budgets and stale conditions of the namespaces where a pod or budget
    /// changed (every namespace when `changes` is `None`: at start, or when changes
    /// were missed) or a deadline came; returns when to look again.
    fn pass(&mut self, changes: Option<Vec<Arc<Change>>>) -> Option<SimInstant> {
        let now = self.store.clock().now();
        let wall = self.store.clock().wall();
        let (pods, budgets) = match changes {
            None => {
                self.due.clear();
                (list(&self.store, PODS, None), list(&self.store, PDBS, None))
            }
            Some(changes) => {
                let mut namespaces: HashSet<String> =
                    changes.iter().map(|c| meta::namespace(&c.new).to_string()).collect();
                namespaces.extend(self.due.iter().filter(|(_, due)| **due <= now).map(|(ns, _)| ns.clone()));
                let (mut pods, mut budgets) = (Vec::new(), Vec::new());
                for ns in &namespaces {
                    self.due.remove(ns);
                    pods.extend(list(&self.store, PODS, Some(ns)));
                    budgets.extend(list(&self.store, PDBS, Some(ns)));
                }
                (pods, budgets)
            }
        };
        let by_namespace = by_namespace(&pods);
        let mut deadlines: Vec<(&str, SystemTime)> = Vec::new();
        for budget in &budgets {
            let ns = str_of(budget, &["metadata", "namespace"]);
            let candidates = by_namespace.get(ns).map(Vec::as_slice);
            let selected: Vec<&Value> =
                candidates.unwrap_or_default().iter().copied().filter(|p| pdb::selects(budget, p)).collect();
            if let Some(at) = self.sync(budget, &selected, wall) {
                deadlines.push((ns, at));
            }
        }
        for pod in &pods {
            if let Some(at) = self.clear_stale_disruption(pod, wall) {
                deadlines.push((meta::namespace(pod), at));
            }
        }
        for (ns, at) in deadlines {
            let at = instant_of(now, wall, at);
            let entry = self.due.entry(ns.to_string()).or_insert(at);
            *entry = (*entry).min(at);
        }
        self.due.values().copied().min()
    }

    /// One budget; returns when its next `disruptedPods` entry expires.
    fn sync(&self, budget: &Value, pods: &[&Value], wall: SystemTime) -> Option<SystemTime> {
        let (expected, desired) = match expected_pods(&self.store, budget, pods) {
            Ok(counts) => counts,
            Err(message) => {
                self.fail_safe(budget, &message, wall);
                return None;
            }
        };
        let (disrupted, recheck) = self.disrupted_pods(budget, pods, wall);
        let current = healthy_pods(pods, &disrupted, wall);
        let mut allowed = current - desired;
        if expected <= 0 || allowed <= 0 {
            allowed = 0;
        }
        let generation = budget["metadata"]["generation"].as_i64().unwrap_or(0);
        let old = &budget["status"];
        let old_disrupted = old["disruptedPods"].as_object().cloned().unwrap_or_default();
        let unchanged = pdb::status_i64(budget, "currentHealthy") == current
            && pdb::status_i64(budget, "desiredHealthy") == desired
            && pdb::status_i64(budget, "expectedPods") == expected
            && pdb::status_i64(budget, "disruptionsAllowed") == allowed
            && old_disrupted == disrupted
            && pdb::status_i64(budget, "observedGeneration") == generation
            && pdb::conditions_up_to_date(budget);
        if !unchanged {
            let mut status = json!({
                "currentHealthy": current, "desiredHealthy": desired, "expectedPods": expected,
                "disruptionsAllowed": allowed,
            });
            if !disrupted.is_empty() {
                status["disruptedPods"] = Value::Object(disrupted);
            }
            if generation != 0 {
                status["observedGeneration"] = json!(generation);
            }
            if old["conditions"].is_array() {
                status["conditions"] = old["conditions"].clone();
            }
            pdb::update_disruption_allowed_condition(&mut status, &meta::time(wall));
            self.write(budget, status);
        }
        recheck
    }

    /// `disruptedPods` without the entries that are done with: pods gone or terminating,
    /// and evictions that did not delete their pod within the deletion timeout.
    fn disrupted_pods(
        &self,
        budget: &Value,
        pods: &[&Value],
        wall: SystemTime,
    ) -> (Map<String, Value>, Option<SystemTime>) {
        let mut kept = Map::new();
        let mut recheck: Option<SystemTime> = None;
        let Some(entries) = budget["status"]["disruptedPods"].as_object() else { return (kept, None) };
        for pod in pods {
            if meta::is_deleting(pod) {
                continue;
            }
            let name = meta::name(pod);
            let Some(at) = entries.get(name) else { continue };
            let Some(expires) = wall_of(at).map(|t| t + pdb::DELETION_TIMEOUT) else { continue };
            if expires < wall {
                // kube-controller-manager names the budget's namespace twice here.
                let ns = meta::namespace(budget);
                let message = format!("Pod was expected by PDB {ns}/{ns} to be deleted but it wasn't");
                self.recorder.record(&self.source, pod, EventType::Warning, "NotDeleted", &message);
            } else {
                recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
                kept.insert(name.to_string(), at.clone());
            }
        }
        (kept, recheck)
    }

    /// What kube-controller-manager writes when it cannot compute a budget: nothing
    /// allowed, and why.
    fn fail_safe(&self, budget: &Value, message: &str, wall: SystemTime) {
        let mut status = budget["status"].clone();
        if !status.is_object() {
            status = json!({});
        }
        status["disruptionsAllowed"] = json!(0);
        pdb::set_sync_failed(&mut status, message, &meta::time(wall));
        if status != budget["status"] {
            let event = format!("Failed to calculate the number of expected pods: {message}");
            self.recorder.record(&self.source, budget, EventType::Warning, "CalculateExpectedPodCountFailed", &event);
            self.write(budget, status);
        }
    }

    fn write(&self, budget: &Value, status: Value) {
        let mut obj = budget.clone();
        obj["status"] = status;
        let ns = meta::namespace(budget).to_string();
        // A conflict means the budget or its pods changed: the next pass recomputes.
        if let Err(e) = self.store.client(CLIENT).update_status(&PDBS.r(), Some(&ns), obj) {
            tracing::debug!(error = %e, budget = meta::name(budget), "PodDisruptionBudget status not written");
        }
    }

    /// Resets a `DisruptionTarget` condition left on a pod that did not terminate;
    /// returns when a condition not yet stale will be.
    fn clear_stale_disruption(&self, pod: &Value, wall: SystemTime) -> Option<SystemTime> {
        if meta::is_deleting(pod) || is_terminal(pod) {
            return None;
        }
        let cond = super::objects::condition(pod, "DisruptionTarget")?;
        if cond["status"] != "True" || cond["reason"] == "TerminationByKubelet" {
            return None;
        }
        let due = wall_of(&cond["lastTransitionTime"]).unwrap_or(wall) + STALE_POD_DISRUPTION_TIMEOUT;
        if due > wall {
            return Some(due);
        }
        let mut updated = pod.clone();
        let reset = json!({"type": "DisruptionTarget", "status": "False", "lastProbeTime": null});
        let mut conds = set_condition(&pod["status"]["conditions"], reset, &meta::time(wall));
        for c in conds.iter_mut().filter(|c| c["type"] == "DisruptionTarget") {
            if let Some(m) = c.as_object_mut() {
                m.remove("reason");
                m.remove("message");
            }
        }
        updated["status"]["conditions"] = Value::Array(conds);
        let ns = meta::namespace(pod).to_string();
        if let Err(e) = self.store.client(CLIENT).update_status(&PODS.r(), Some(&ns), updated) {
            tracing::debug!(error = %e, pod = meta::name(pod), "stale DisruptionTarget not cleared");
        }
        None
    }
}

/// Ready pods that are neither terminating nor recently evicted.
fn healthy_pods(pods: &[&Value], disrupted: &Map<String, Value>, wall: SystemTime) -> i64 {
    let recently_evicted = |pod: &Value| {
        disrupted.get(meta::name(pod)).and_then(wall_of).is_some_and(|at| at + pdb::DELETION_TIMEOUT > wall)
    };
    pods.iter().filter(|p| !meta::is_deleting(p) && !recently_evicted(p) && pdb::pod_ready(p)).count() as i64
}

/// `(expectedPods, desiredHealthy)`, or the error that fails the sync.
fn expected_pods(store: &Store, budget: &Value, pods: &[&Value]) -> Result<(i64, i64), String> {
    let spec = &budget["spec"];
    if !spec["maxUnavailable"].is_null() {
        let expected = controllers_scale(store, pods)?;
        let unavailable = scaled(&spec["maxUnavailable"], expected)?;
        return Ok((expected, (expected - unavailable).max(0)));
    }
    match &spec["minAvailable"] {
        Value::Null => Ok((0, 0)),
        Value::Number(n) => Ok((pods.len() as i64, n.as_i64().unwrap_or(0))),
        min => {
            let expected = controllers_scale(store, pods)?;
            Ok((expected, scaled(min, expected)?))
        }
    }
}

/// An int-or-percent against `total`, percentages rounded up.
fn scaled(v: &Value, total: i64) -> Result<i64, String> {
    match v {
        Value::Number(n) => Ok(n.as_i64().unwrap_or(0)),
        Value::String(s) => {
            let Some(digits) = s.strip_suffix('%') else {
                return Err("invalid value for IntOrString: invalid type: string is not a percentage".into());
            };
            let pct: i64 = digits.parse().map_err(|_| {
                format!(
                    "invalid value for IntOrString: invalid value \"{s}\": strconv.Atoi: parsing \"{digits}\": invalid syntax"
                )
            })?;
            Ok((pct * total + 99).div_euclid(100))
        }
        _ => Err("invalid value for IntOrString: invalid type: neither int nor percentage".into()),
    }
}

/// The sum of the scales of the selected pods' controllers.
fn controllers_scale(store: &Store, pods: &[&Value]) -> Result<i64, String> {
    let mut scales: BTreeMap<String, i64> = BTreeMap::new();
    for pod in pods {
        let refs = pod["metadata"]["ownerReferences"].as_array();
        let Some(owner) = refs.into_iter().flatten().find(|r| r["controller"] == true) else { continue };
        let uid = owner["uid"].as_str().unwrap_or_default();
        if scales.contains_key(uid) {
            continue;
        }
        let api_version = owner["apiVersion"].as_str().unwrap_or_default();
        let kind = owner["kind"].as_str().unwrap_or_default();
        let Some(info) = store.resource_for_kind(api_version, kind) else {
            return Err(format!("no matches for kind \"{kind}\" in version \"{api_version}\""));
        };
        if info.scale.is_none() {
            return Err(format!("{} does not implement the scale subresource", info.qualified()));
        }
        let ns = meta::namespace(pod);
        let owner_name = owner["name"].as_str().unwrap_or_default();
        let scale = store.get_subresource(&info, Some(ns), owner_name, crate::store::Subresource::Scale).ok();
        match scale.filter(|s| s["metadata"]["uid"] == uid) {
            Some(s) => {
                scales.insert(uid.to_string(), s["spec"]["replicas"].as_i64().unwrap_or(0));
            }
            None => return Err(format!("found no controllers for pod \"{}\"", meta::name(pod))),
        }
    }
    Ok(scales.values().sum())
}

#[cfg(test)]
mod tests;
