//! `pod`: creates the instance's Pod from `render`, or keeps it in line.
//!
//! Reads the Pod loaded earlier. The Pod records the instance's restart intent
//! ([`crate::common::restart`]); a live Pod whose record differs where only a restart
//! applies is left running and marked outdated (Synced=False PodNotUpToDate, naming
//! what changed): restarting it safely is the component's `restart` task. Everything
//! else is applied in place: one merge patch carrying the resourceVersion sets the
//! labels and annotations that differ (the revision label only once nothing waits for
//! a restart or an online config change, as it says what the process runs). Outcomes:
//! Complete; Wait while the ConfigMap or PVCs are not ready, the Pod terminates, or a
//! created Pod is not yet visible; InvalidSpec + Wait on a bad overlay; Fail on
//! unexpected API errors.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::json;
use tikv_operator_api::condition::reasons;
use tikv_operator_api::names;
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::{patch_params, post_params};
use crate::common::Instance;
use crate::common::instance::{InstanceState, pod_terminating};
use crate::common::render::RenderError;
use crate::common::restart::{drift, restart_intent};
use crate::error::{is_already_exists, is_conflict};

pub fn pod<S: InstanceState>(render: fn(&S) -> Result<Pod, RenderError>) -> Node<S> {
    task("pod", move |s: &mut S| Box::pin(run_pod(s, render)))
}

/// The body of [`pod`], for a component's own `pod` task that checks its preconditions
/// (a PD URL, a decided membership) first.
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
    let Some(instance) = s.pass().object.clone() else {
        return Outcome::complete("no instance");
    };
    let intent = restart_intent(&instance, s.pass().tls_enabled());
    let recorded = serde_json::to_string(&intent).unwrap_or_default();
    desired.annotations_mut().insert(names::ANNOTATION_RESTART_INTENT.into(), recorded.clone());
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
    let live_record = live.annotations().get(names::ANNOTATION_RESTART_INTENT).cloned();
    let drift = drift(live_record.as_deref(), &intent, instance.config_strategy());
    let mut outcome = Outcome::complete("up to date");
    if drift.needs_restart() {
        let what = drift.restart.join(", ");
        s.pass_mut().not_synced(reasons::POD_NOT_UP_TO_DATE, format!("pod {name} needs a restart for: {what}"));
        outcome = Outcome::complete(format!("pod needs a restart for: {what}"));
    }
    let settled = !drift.needs_restart() && !drift.hot_reload;
    let missing_labels: BTreeMap<&String, &String> = desired
        .labels()
        .iter()
        .filter(|(k, v)| {
            k.as_str() != names::LABEL_CONFIG_HASH
                && (settled || k.as_str() != names::LABEL_INSTANCE_REVISION_HASH)
                && live.labels().get(*k) != Some(*v)
        })
        .collect();
    let mut missing_annotations: BTreeMap<&String, &String> = desired
        .annotations()
        .iter()
        .filter(|(k, v)| k.as_str() != names::ANNOTATION_RESTART_INTENT && live.annotations().get(*k) != Some(*v))
        .collect();
    // A Pod of an older build records nothing: it counts as up to date, now recorded.
    let stamp = (names::ANNOTATION_RESTART_INTENT.to_string(), recorded);
    if live_record.is_none() {
        missing_annotations.insert(&stamp.0, &stamp.1);
    }
    s.parts_mut().drift = drift;
    if !missing_labels.is_empty() || !missing_annotations.is_empty() {
        let patch = json!({"metadata": {
            "labels": missing_labels,
            "annotations": missing_annotations,
            "resourceVersion": live.resource_version(),
        }});
        match api.patch(&name, &patch_params(), &Patch::Merge(&patch)).await {
            Ok(patched) => {
                s.parts_mut().pod = Some(patched);
                if outcome.message() == "up to date" {
                    outcome = Outcome::complete("updated in place");
                }
            }
            Err(error) if is_conflict(&error) => {
                return Outcome::retry(Duration::from_secs(1), "pod changed meanwhile; retrying");
            }
            Err(error) => return Outcome::fail(error),
        }
    }
    outcome
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
            tools_image: crate::DEFAULT_TOOLS_IMAGE,
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
        assert_eq!(report.entry("pod").unwrap().message(), "updated in place");
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
