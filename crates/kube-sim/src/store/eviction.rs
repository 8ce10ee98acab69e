//! The pod `eviction` subresource: `POST pods/{name}/eviction` with a policy/v1 (or
//! v1beta1) `Eviction`, as kube-apiserver's EvictionREST answers it.
//!
//! - A pod that is Pending, Succeeded, Failed or already terminating is deleted at once,
//!   without looking at budgets.
//! - Otherwise the PodDisruptionBudgets of its namespace whose selector matches it are
//!   found: more than one is a `Status` failure with code 500 (sent with HTTP 201, as
//!   kube-apiserver's create handler does; clients turn it into an error); none lets
//!   the eviction through.
//! - With one budget: an unready pod is let through without touching the budget when
//!   the budget says `unhealthyPodEvictionPolicy: AlwaysAllow`, or when the budget is
//!   currently met (`currentHealthy >= desiredHealthy > 0`); its deletion is then pinned
//!   to the pod's resourceVersion. Otherwise the budget must have been observed at its
//!   generation (else 429 with `Retry-After: 10`, "still being processed") and allow a
//!   disruption (else 429 "needs N healthy pods and has M currently"); the eviction then
//!   decrements `disruptionsAllowed`, records the pod in `disruptedPods` and writes the
//!   budget's status, all before the pod is touched.
//! - The pod gets the `DisruptionTarget` condition (`EvictionByEvictionAPI`) and is
//!   deleted with the eviction's `deleteOptions` (grace period, preconditions,
//!   propagation, dry run).
//!
//! All of it happens under the store's lock, so the retries kube-apiserver makes on
//! write conflicts between its own steps are never needed here; a conflict with the
//! caller's own preconditions is answered at once.

use serde_json::{Value, json};
use sim_clock::SimInstant;

use super::ops::{DeleteOptions, Subresource, WriteOptions, delete_locked, update_locked};
use super::{Key, State, Store};
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::pdb;
use crate::registry::{GroupResource, ResourceInfo};
use crate::validation::custom::FieldValidation;

const BUDGET_VIOLATED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
const MULTIPLE_BUDGETS: &str =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

/// What an eviction answers: the `Status` body (HTTP 201) and `Warning`s.
#[derive(Clone, Debug)]
pub struct Evicted {
    pub status: Value,
    pub warnings: Vec<String>,
}

impl Store {
    /// Evicts a pod; `eviction` is the request body, `opts` the create options
    /// (`dryRun`, `fieldValidation`).
    pub fn evict(&self, ns: &str, name: &str, eviction: &Value, opts: &WriteOptions) -> ApiResult<Evicted> {
        let warnings = check_body(ns, name, eviction, opts.field_validation)?;
        let mut delete = super::ops::parse_delete_options(&eviction["deleteOptions"], |_| None)?;
        delete.dry_run |= opts.dry_run;
        let wall = self.shared.clock.wall();
        let at = self.shared.clock.now();
        let mut st = self.lock();
        let out = evict_locked(&mut st, ns, name, delete, wall, at);
        let rev = st.rev;
        drop(st);
        self.notify(rev);
        out.map(|status| Evicted { status, warnings })
    }
}

/// The body's kind, names and fields; returns the warnings for unknown fields.
fn check_body(ns: &str, name: &str, body: &Value, validation: FieldValidation) -> ApiResult<Vec<String>> {
    let Some(fields) = body.as_object() else {
        return Err(ApiError::bad_request("the body of the request is not a JSON object"));
    };
    let api_version = body["apiVersion"].as_str().unwrap_or_default();
    if !["", "policy/v1", "policy/v1beta1"].contains(&api_version) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version (policy/v1)"
        )));
    }
    let kind = body["kind"].as_str().unwrap_or_default();
    if !["", "Eviction"].contains(&kind) {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind (Eviction)"
        )));
    }
    let unknown: Vec<String> = fields
        .keys()
        .filter(|k| !["apiVersion", "kind", "metadata", "deleteOptions"].contains(&k.as_str()))
        .map(|k| format!("unknown field \"{k}\""))
        .collect();
    if validation == FieldValidation::Strict && !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Eviction in version \"v1\" cannot be handled as a Eviction: strict decoding error: {}",
            unknown.join(", ")
        )));
    }
    if meta::name(body) != name {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
    }
    let body_ns = meta::namespace(body);
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(if validation == FieldValidation::Warn { unknown } else { Vec::new() })
}

fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

fn info(st: &State, group: &str, plural: &str) -> ApiResult<std::sync::Arc<ResourceInfo>> {
    st.registry.find(group, "v1", plural).ok_or_else(|| ApiError::internal(format!("{plural} are not served")))
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or_default()
}

/// Pods whose eviction ignores budgets: not running yet, finished, or already going.
fn can_ignore_budgets(pod: &Value) -> bool {
    matches!(phase(pod), "Pending" | "Succeeded" | "Failed") || meta::is_deleting(pod)
}

fn evict_locked(
    st: &mut State,
    ns: &str,
    name: &str,
    mut opts: DeleteOptions,
    wall: std::time::SystemTime,
    at: SimInstant,
) -> ApiResult<Value> {
    let pods = info(st, "", "pods")?;
    let pod =
        st.get(&pods.storage, &Key::new(ns, name)).cloned().ok_or_else(|| ApiError::not_found("", "pods", name))?;
    if can_ignore_budgets(&pod) {
        // A pod still Pending is pinned, so that it cannot turn Ready meanwhile.
        let terminal = matches!(phase(&pod), "Succeeded" | "Failed") || meta::is_deleting(&pod);
        if !terminal && opts.precondition_resource_version.is_none() {
            opts.precondition_resource_version = Some(meta::resource_version(&pod).to_string());
        }
        mark_and_delete(st, &pods, ns, name, opts, wall, at)?;
        return Ok(success());
    }
    let pdb_gr = GroupResource::new("policy", "poddisruptionbudgets");
    let budgets: Vec<Value> =
        st.iter(&pdb_gr, Some(ns)).filter(|(_, b)| pdb::selects(b, &pod)).map(|(_, b)| (**b).clone()).collect();
    if budgets.len() > 1 {
        return Ok(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": MULTIPLE_BUDGETS, "code": 500
        }));
    }
    let mut pinned_budget = None;
    if let Some(budget) = budgets.first() {
        let current = pdb::status_i64(budget, "currentHealthy");
        let desired = pdb::status_i64(budget, "desiredHealthy");
        let unhealthy_allowed =
            !pdb::pod_ready(&pod) && (pdb::always_allow_unhealthy(budget) || (current >= desired && desired > 0));
        if unhealthy_allowed {
            pinned_budget = Some(meta::name(budget).to_string());
        } else {
            check_and_decrement(st, budget, name, opts.dry_run, wall, at)?;
        }
    }
    let caller_pinned = opts.precondition_resource_version.is_some();
    if pinned_budget.is_some() {
        opts.precondition_resource_version = Some(meta::resource_version(&pod).to_string());
    }
    match mark_and_delete(st, &pods, ns, name, opts, wall, at) {
        Err(e) if e.code == 409 && !caller_pinned && pinned_budget.is_some() => {
            Err(still_processing(pinned_budget.as_deref().unwrap_or_default()))
        }
        Err(e) => Err(e),
        Ok(()) => Ok(success()),
    }
}

fn budget_error(cause: String, retry_after: Option<u64>) -> ApiError {
    let mut e = ApiError::new(429, "TooManyRequests", BUDGET_VIOLATED)
        .with_causes(vec![json!({"reason": "DisruptionBudget", "message": cause})]);
    e.retry_after = retry_after;
    e
}

fn still_processing(budget: &str) -> ApiError {
    budget_error(format!("The disruption budget {budget} is still being processed by the server."), Some(10))
}

/// Checks that the budget allows one more disruption and takes it.
fn check_and_decrement(
    st: &mut State,
    budget: &Value,
    pod: &str,
    dry_run: bool,
    wall: std::time::SystemTime,
    at: SimInstant,
) -> ApiResult<()> {
    let name = meta::name(budget).to_string();
    let generation = budget["metadata"]["generation"].as_i64().unwrap_or(0);
    if pdb::status_i64(budget, "observedGeneration") < generation {
        return Err(still_processing(&name));
    }
    let allowed = pdb::status_i64(budget, "disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError::forbidden("policy", "poddisruptionbudget", &name, "pdb disruptions allowed is negative"));
    }
    if budget["status"]["disruptedPods"].as_object().is_some_and(|m| m.len() > pdb::MAX_DISRUPTED_PODS) {
        return Err(ApiError::forbidden(
            "policy",
            "poddisruptionbudget",
            &name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(budget_error(
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                pdb::status_i64(budget, "desiredHealthy"),
                pdb::status_i64(budget, "currentHealthy")
            ),
            None,
        ));
    }
    if dry_run {
        return Ok(());
    }
    let now = meta::time(wall);
    let mut status = budget["status"].clone();
    status["disruptionsAllowed"] = json!(allowed - 1);
    if allowed == 1 {
        pdb::update_disruption_allowed_condition(&mut status, &now);
    }
    if !status["disruptedPods"].is_object() {
        status["disruptedPods"] = json!({});
    }
    status["disruptedPods"][pod] = json!(now);
    let pdbs = info(st, "policy", "poddisruptionbudgets")?;
    let ns = meta::namespace(budget).to_string();
    update_locked(
        st,
        &pdbs,
        Some(&ns),
        &name,
        Some(Subresource::Status),
        &WriteOptions::default(),
        false,
        at,
        &mut |view| {
            let mut v = view.clone();
            v["status"] = status.clone();
            Ok(v)
        },
    )?;
    Ok(())
}

/// Adds the `DisruptionTarget` condition (unless dry run) and deletes the pod.
fn mark_and_delete(
    st: &mut State,
    pods: &ResourceInfo,
    ns: &str,
    name: &str,
    mut opts: DeleteOptions,
    wall: std::time::SystemTime,
    at: SimInstant,
) -> ApiResult<()> {
    if !opts.dry_run {
        let pod =
            st.get(&pods.storage, &Key::new(ns, name)).cloned().ok_or_else(|| ApiError::not_found("", "pods", name))?;
        if let Some(uid) = opts.precondition_uid.as_deref().filter(|u| !u.is_empty())
            && uid != meta::uid(&pod)
        {
            return Err(ApiError::conflict(
                "",
                "Pod",
                name,
                &format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                    meta::uid(&pod)
                ),
            ));
        }
        if let Some(rv) = opts.precondition_resource_version.as_deref().filter(|r| !r.is_empty())
            && rv != meta::resource_version(&pod)
        {
            return Err(ApiError::conflict(
                "",
                "Pod",
                name,
                &format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                    meta::resource_version(&pod)
                ),
            ));
        }
        let now = meta::time(wall);
        let written = update_locked(
            st,
            pods,
            Some(ns),
            name,
            Some(Subresource::Status),
            &WriteOptions::default(),
            false,
            at,
            &mut |view| {
                let mut v = view.clone();
                set_disruption_target(&mut v, &now);
                Ok(v)
            },
        )?;
        if opts.precondition_resource_version.is_some() {
            opts.precondition_resource_version = Some(meta::resource_version(&written.object).to_string());
        }
    }
    delete_locked(st, pods, Some(ns), name, &opts, wall, at).map(|_| ())
}

/// The pod condition an eviction leaves, as `UpdatePodCondition` sets it.
fn set_disruption_target(pod: &mut Value, now: &str) {
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let Some(conds) = pod["status"]["conditions"].as_array_mut() else { return };
    let transition = conds
        .iter()
        .find(|c| c["type"] == "DisruptionTarget" && c["status"] == "True")
        .map(|c| c["lastTransitionTime"].clone())
        .unwrap_or_else(|| json!(now));
    conds.retain(|c| c["type"] != "DisruptionTarget");
    conds.push(json!({
        "type": "DisruptionTarget", "status": "True", "lastProbeTime": null, "lastTransitionTime": transition,
        "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"
    }));
}

#[cfg(test)]
mod tests;
