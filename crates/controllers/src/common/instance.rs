//! The generic half of both instance controllers: load the Pod, write the ConfigMap,
//! PVCs and Pod from the component's pure renderers, and derive the Running and Ready
//! conditions and the common status fields. The PD and TiKV builders add what only
//! their component knows (PD member, TiKV store).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::api::{ListParams, Patch};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names;
use tikv_operator_task::{Node, Outcome, task};

use super::render::{RenderError, pvcs, selector_string};
use super::{Instance, PassState};
use crate::apply::{Applied, apply, has_hash, hash_of, patch_params, post_params};
use crate::error::{is_already_exists, is_conflict};

/// What the instance tasks share.
#[derive(Debug, Default)]
pub struct InstanceParts {
    pub pod: Option<Pod>,
    pub pod_loaded: bool,
    /// Hash of the ConfigMap content rendered this pass; `None` when it could not be rendered.
    pub config_hash: Option<String>,
    pub pvcs_ready: bool,
    /// The live Pod differs from the desired one in a way only a restart can apply
    /// (rolling restarts come with the updater's update actions).
    pub pod_outdated: bool,
}

/// An instance controller's state.
pub trait InstanceState: PassState<Object = Self::I> {
    type I: Instance;
    fn parts(&self) -> &InstanceParts;
    fn parts_mut(&mut self) -> &mut InstanceParts;
}

/// A rendered ConfigMap and the operator-owned config keys the user had set.
pub type RenderedConfigMap = (ConfigMap, Vec<String>);

pub fn pod_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Since when the Pod's Ready condition is True.
pub fn pod_ready_since(pod: &Pod) -> Option<Timestamp> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0))
}

pub fn pod_running(pod: &Pod) -> bool {
    let Some(status) = &pod.status else { return false };
    status.phase.as_deref() == Some("Running")
        && status.container_statuses.as_ref().is_some_and(|cs| {
            !cs.is_empty() && cs.iter().all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        })
}

/// `load_pod`: reads the instance's Pod from the watch cache. Writes nothing. Complete.
pub fn load_pod<S: InstanceState>() -> Node<S> {
    task("load_pod", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass();
            let Some(instance) = &pass.object else {
                return Outcome::complete("no instance");
            };
            let name = instance.pod_name();
            let pod = pass.ctx.caches.get::<Pod>(&pass.namespace, &name).map(|p| Pod::clone(&p));
            let message = match &pod {
                Some(p) if pod_terminating(p) => format!("pod {name} terminating"),
                Some(_) => format!("pod {name}"),
                None => format!("no pod {name}"),
            };
            let parts = s.parts_mut();
            parts.pod = pod;
            parts.pod_loaded = true;
            Outcome::complete(message)
        })
    })
}

/// `config_map`: renders the instance's ConfigMap (with `render`) and applies it.
/// Writes: the ConfigMap (create, or one patch when the desired content changed).
/// Reports operator-owned keys the user set (Synced=False ReservedConfigKey) and an
/// invalid config (Synced=False InvalidSpec, then Wait for the user to fix it).
pub fn config_map<S: InstanceState>(render: fn(&S) -> Result<RenderedConfigMap, RenderError>) -> Node<S> {
    task("config_map", move |s: &mut S| Box::pin(run_config_map(s, render)))
}

pub async fn run_config_map<S: InstanceState>(
    s: &mut S,
    render: fn(&S) -> Result<RenderedConfigMap, RenderError>,
) -> Outcome {
    let (desired, reserved) = match render(s) {
        Ok(rendered) => rendered,
        Err(error) => {
            s.parts_mut().config_hash = None;
            s.pass_mut().not_synced(reasons::INVALID_SPEC, error.to_string());
            return Outcome::wait(format!("{error}; waiting for the spec to be fixed"));
        }
    };
    if !reserved.is_empty() {
        s.pass_mut().not_synced(
            reasons::RESERVED_CONFIG_KEY,
            format!("config sets keys the operator owns, which were ignored: {}", reserved.join(", ")),
        );
    }
    let name = desired.name_any();
    s.parts_mut().config_hash = Some(hash_of(&desired.data));
    let pass = s.pass();
    let api: Api<ConfigMap> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
    let live = pass.ctx.caches.get::<ConfigMap>(&pass.namespace, &name).map(|c| ConfigMap::clone(&c));
    match apply(&api, live.as_ref(), desired).await {
        Ok(Applied::Unchanged) => Outcome::complete("up to date"),
        Ok(applied) => {
            s.pass().event("ConfigMapApplied", "Apply", format!("{applied:?} ConfigMap {name}")).await;
            Outcome::complete(format!("{applied:?}").to_lowercase())
        }
        Err(error) if is_conflict(&error) => {
            Outcome::retry(Duration::from_secs(1), "ConfigMap changed meanwhile; retrying")
        }
        Err(error) => Outcome::fail(error),
    }
}

/// `pvcs`: creates the instance's missing PVCs. Writes: PVCs (create only; resizing
/// comes with volume resize). A live PVC whose storage class or size differs from the
/// spec is reported (Synced=False VolumeMismatch) and left as it is. Complete;
/// InvalidSpec + Wait on a bad PVC overlay; Fail.
pub fn volumes<S: InstanceState>() -> Node<S> {
    task("pvcs", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass();
            let Some(instance) = &pass.object else {
                return Outcome::complete("no instance");
            };
            let desired = match pvcs(instance, &instance.pod_name()) {
                Ok(desired) => desired,
                Err(error) => {
                    s.pass_mut().not_synced(reasons::INVALID_SPEC, error.to_string());
                    return Outcome::wait(format!("{error}; waiting for the spec to be fixed"));
                }
            };
            let api: Api<PersistentVolumeClaim> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
            let selector = BTreeMap::from([
                (names::LABEL_COMPONENT.to_string(), S::I::COMPONENT.to_string()),
                (names::LABEL_INSTANCE.to_string(), instance.name_any()),
            ]);
            let live = pass.ctx.caches.list::<PersistentVolumeClaim>(&pass.namespace, &selector);
            let mut created = Vec::new();
            for pvc in desired {
                if let Some(existing) = live.iter().find(|l| l.name_any() == pvc.name_any()) {
                    if let Some(mismatch) = super::volume_check::pvc_mismatch(&pvc, existing) {
                        s.pass_mut().not_synced(reasons::VOLUME_MISMATCH, mismatch);
                    }
                    continue;
                }
                match api.create(&post_params(), &pvc).await {
                    Ok(_) => created.push(pvc.name_any()),
                    Err(error) if is_already_exists(&error) => {}
                    Err(error) => return Outcome::fail(error),
                }
            }
            s.parts_mut().pvcs_ready = true;
            if created.is_empty() {
                Outcome::complete("all present")
            } else {
                s.pass().event("CreatedPVC", "Create", format!("created {}", created.join(", "))).await;
                Outcome::complete(format!("created {}", created.join(", ")))
            }
        })
    })
}

/// `pod`: creates the instance's Pod from `render`, or keeps it in line.
///
/// Reads the Pod loaded earlier. Writes: the Pod (create), or its labels (one merge
/// patch carrying the resourceVersion, when the operator's labels are missing). A live
/// Pod whose spec hash differs is reported (Synced=False PodNotUpToDate) and left
/// running: restarting it is the rolling update's job. Outcomes: Complete; Wait while
/// the ConfigMap or PVCs are not ready, the Pod terminates, or a created Pod is not yet
/// visible; InvalidSpec + Wait on a bad overlay; Fail on unexpected API errors.
pub fn pod<S: InstanceState>(render: fn(&S) -> Result<Pod, RenderError>) -> Node<S> {
    task("pod", move |s: &mut S| Box::pin(run_pod(s, render)))
}

pub async fn run_pod<S: InstanceState>(s: &mut S, render: fn(&S) -> Result<Pod, RenderError>) -> Outcome {
    if s.parts().config_hash.is_none() || !s.parts().pvcs_ready {
        s.pass_mut().not_synced(reasons::POD_NOT_UP_TO_DATE, "waiting for the ConfigMap and PVCs");
        return Outcome::wait("waiting for the ConfigMap and PVCs");
    }
    let mut desired = match render(s) {
        Ok(pod) => pod,
        Err(error) => {
            s.pass_mut().not_synced(reasons::INVALID_SPEC, error.to_string());
            return Outcome::wait(format!("{error}; waiting for the spec to be fixed"));
        }
    };
    let spec_hash = hash_of(&(&desired.spec, desired.labels().get(names::LABEL_CONFIG_HASH)));
    desired.annotations_mut().insert(names::ANNOTATION_SPEC_HASH.into(), spec_hash.clone());
    let name = desired.name_any();
    let api: Api<Pod> = Api::namespaced(s.pass().ctx.client.clone(), &s.pass().namespace);
    let Some(live) = s.parts().pod.clone() else {
        return match api.create(&post_params(), &desired).await {
            Ok(created) => {
                s.pass().event("CreatedPod", "Create", format!("created pod {name}")).await;
                s.parts_mut().pod = Some(created);
                Outcome::complete(format!("created pod {name}"))
            }
            Err(error) if is_already_exists(&error) => {
                Outcome::wait(format!("pod {name} exists but was not read yet; waiting for its event"))
            }
            Err(error) => Outcome::fail(error),
        };
    };
    if pod_terminating(&live) {
        s.pass_mut().not_synced(reasons::POD_TERMINATING, format!("pod {name} is terminating"));
        return Outcome::wait(format!("pod {name} is terminating; waiting for it to go"));
    }
    let mut outcome = Outcome::complete("up to date");
    if !has_hash(&live, &spec_hash) {
        s.parts_mut().pod_outdated = true;
        s.pass_mut().not_synced(
            reasons::POD_NOT_UP_TO_DATE,
            format!("pod {name} runs an older spec; it will be restarted by a rolling update"),
        );
        outcome = Outcome::complete("pod outdated; left running until rolling updates restart it");
    }
    let missing: std::collections::BTreeMap<&String, &String> = desired
        .labels()
        .iter()
        .filter(|(k, v)| {
            k.starts_with(names::LABEL_PREFIX)
                && k.as_str() != names::LABEL_CONFIG_HASH
                && live.labels().get(*k) != Some(*v)
        })
        .collect();
    if !missing.is_empty() {
        let patch = json!({"metadata": {"labels": missing, "resourceVersion": live.resource_version()}});
        match api.patch(&name, &patch_params(), &Patch::Merge(&patch)).await {
            Ok(patched) => {
                s.parts_mut().pod = Some(patched);
                outcome = Outcome::complete("labels updated");
            }
            Err(error) if is_conflict(&error) => {
                return Outcome::retry(Duration::from_secs(1), "pod changed meanwhile; retrying");
            }
            Err(error) => return Outcome::fail(error),
        }
    }
    outcome
}

/// Sets Running from the Pod (only when the Pod was looked at this pass).
pub fn set_running<S: InstanceState>(s: &mut S) {
    if !s.parts().pod_loaded {
        return;
    }
    let (status, reason, message) = match &s.parts().pod {
        None => (false, reasons::POD_NOT_CREATED, "no pod".to_string()),
        Some(pod) if pod_terminating(pod) => (false, reasons::POD_TERMINATING, "pod is terminating".into()),
        Some(pod) if pod_running(pod) => (true, reasons::RUNNING, "all containers running".into()),
        Some(_) => (false, reasons::POD_NOT_RUNNING, "containers are not running yet".into()),
    };
    s.pass_mut().set_condition(types::RUNNING, status, reason, message);
}

/// How the component itself judges the instance (PD member joined, TiKV store Up).
pub type Health = Result<(), (&'static str, String)>;

/// Sets Ready: Pod ready for `minReadySeconds` and the component healthy. Returns how
/// long until a Pod that is ready but not for long enough will count (a time, so no
/// watch event will tell us).
pub fn set_ready<S: InstanceState>(s: &mut S, health: Health) -> Option<Duration> {
    if !s.parts().pod_loaded {
        return None;
    }
    let now = s.pass().ctx.now();
    let min_ready = s.pass().object.as_ref().map_or(0, |i| i.min_ready_seconds()).max(0);
    let mut retry = None;
    let (status, reason, message) = match &s.parts().pod {
        None => (false, reasons::POD_NOT_CREATED, "no pod".to_string()),
        Some(pod) if pod_terminating(pod) => (false, reasons::POD_TERMINATING, "pod is terminating".into()),
        Some(pod) => match (pod_ready_since(pod), health) {
            (None, _) => (false, reasons::POD_NOT_READY, "pod is not ready".into()),
            (Some(_), Err((reason, message))) => (false, reason, message),
            (Some(since), Ok(())) => {
                let ready_for = now.duration_since(since).as_secs().max(0);
                if ready_for >= min_ready {
                    (true, reasons::READY, "ready".into())
                } else {
                    retry = Some(Duration::from_secs((min_ready - ready_for).unsigned_abs()));
                    (false, reasons::POD_NOT_READY, format!("pod ready for {ready_for}s of the {min_ready}s required"))
                }
            }
        },
    };
    s.pass_mut().set_condition(types::READY, status, reason, message);
    retry
}

/// observedGeneration, and the revisions: the update revision from the instance's
/// label, the current one from the Pod's label once Ready.
pub fn set_revisions<S: InstanceState>(s: &mut S, ready: bool) {
    let pod_revision =
        s.parts().pod.as_ref().and_then(|p| p.labels().get(names::LABEL_INSTANCE_REVISION_HASH).cloned());
    let pass = s.pass_mut();
    let generation = pass.generation();
    let update = pass.object.as_ref().and_then(|o| o.labels().get(names::LABEL_INSTANCE_REVISION_HASH).cloned());
    let common = <S::I as Instance>::common_status_mut(&mut pass.status);
    common.observed_generation = generation;
    common.update_revision = update;
    if ready && pod_revision.is_some() {
        common.current_revision = pod_revision;
    }
}

/// Selector of the Pods of one group, for the Services.
pub fn pod_selector(cluster: &str, component: &str, group: &str) -> String {
    selector_string(&super::render::group_selector(cluster, component, group))
}

/// Whether a loaded object is ours to manage (a defensive check on watch input).
pub fn managed<K: Resource>(object: &K) -> bool {
    object
        .meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(names::LABEL_MANAGED_BY))
        .is_some_and(|v| v == names::MANAGED_BY_OPERATOR)
}

/// `instance_deletion`: a deleted instance whose Cluster is being deleted releases its
/// finalizer (its Pod and ConfigMap go with it by owner reference; its PVCs are deleted
/// only under `deletionPolicy: Delete`). An instance deleted while its Cluster lives
/// keeps its finalizer: leaving PD safely is scale-in's job, not supported yet. One
/// whose Cluster is gone never gets here (`release_without_cluster` confirms that first).
/// Writes: DELETE of PVCs (policy Delete), the finalizer. Wait while kept; Complete; Fail.
pub fn instance_deletion<S: InstanceState>() -> Node<S> {
    task("instance_deletion", |s: &mut S| {
        Box::pin(async move {
            let cluster = s.pass().cluster.clone();
            let cluster_going = cluster.as_ref().is_some_and(|c| c.meta().deletion_timestamp.is_some());
            if !cluster_going {
                s.pass_mut().not_synced(
                    reasons::POD_NOT_DELETED,
                    "deleting an instance while its Cluster exists needs scale-in, which is not supported yet",
                );
                return Outcome::wait("instance deleted while its Cluster exists: kept until scale-in is supported");
            }
            let delete_data = cluster
                .as_ref()
                .is_some_and(|c| c.spec.deletion_policy == tikv_operator_api::cluster::DeletionPolicy::Delete);
            if delete_data && let Some(instance) = &s.pass().object {
                let api: Api<PersistentVolumeClaim> = Api::namespaced(s.pass().ctx.client.clone(), &s.pass().namespace);
                let selector = format!(
                    "{}={},{}={}",
                    names::LABEL_COMPONENT,
                    S::I::COMPONENT,
                    names::LABEL_INSTANCE,
                    instance.name_any()
                );
                if let Err(error) = api
                    .delete_collection(&kube::api::DeleteParams::default(), &ListParams::default().labels(&selector))
                    .await
                {
                    return Outcome::fail(error);
                }
            }
            let key = s.pass().key();
            s.pass().ctx.pd_waits.done(&key);
            crate::common::tasks::set_finalizer(s, false).await
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_tikv};
    use crate::tikv::state::TikvState;
    use tikv_operator_task::{OutcomeKind, Runner};

    fn render(s: &TikvState) -> Result<Pod, RenderError> {
        let tikv = s.pass.object.as_ref().ok_or(RenderError::NoGroup)?;
        crate::tikv::render::pod(&crate::tikv::render::PodInputs {
            tikv,
            tls: false,
            pd_url: "http://pd",
            config_hash: "cfg-1",
        })
    }

    fn state(env: &TestEnv, tikv: tikv_operator_api::TiKV, live: Option<Pod>) -> TikvState {
        let mut s = TikvState::new(env.ctx.clone(), "default", &tikv.name_any());
        s.pass = s.pass.with_object(tikv).with_cluster(sample_cluster("basic"));
        s.parts.pod_loaded = true;
        s.parts.pod = live;
        s.parts.config_hash = Some("cfg-1".into());
        s.parts.pvcs_ready = true;
        s
    }

    #[tokio::test]
    async fn missing_operator_labels_are_one_patch_and_nothing_else() {
        let env = TestEnv::start().await;
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        let runner = Runner::new("t", [pod::<TikvState>(render)]);
        env.run(&runner, "k", &mut state(&env, tikv.clone(), None)).await;
        assert_eq!(env.write_log(), ["create pods/"]);

        // Someone removed one of our labels.
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let patch = json!({"metadata": {"labels": {names::LABEL_INSTANCE: null}}});
        let live = api.patch("tikv-tikv-a", &patch_params(), &Patch::Merge(&patch)).await.unwrap();
        env.sim.requests().reset();

        let mut s = state(&env, tikv.clone(), Some(live));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("pod").unwrap().message(), "labels updated");
        assert_eq!(env.write_log(), ["patch pods/tikv-tikv-a"]);
        let live: Pod = env.get("tikv-tikv-a").await;
        assert_eq!(live.labels().get(names::LABEL_INSTANCE).map(String::as_str), Some("tikv-a"));

        let report = env.run(&runner, "k", &mut state(&env, tikv, Some(live))).await;
        assert_eq!(report.entry("pod").unwrap().message(), "up to date");
        assert_eq!(env.write_log(), ["patch pods/tikv-tikv-a"]);
    }

    #[tokio::test]
    async fn no_pod_before_the_config_map_and_pvcs() {
        let env = TestEnv::start().await;
        let mut s = state(&env, sample_tikv("tikv-a", "tikv"), None);
        s.parts.config_hash = None;
        let report = env.run(&Runner::new("t", [pod::<TikvState>(render)]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::POD_NOT_UP_TO_DATE);
        assert_eq!(env.writes(), 0);
    }
}
