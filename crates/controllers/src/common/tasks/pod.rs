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
    let mut intent = restart_intent(&instance, s.pass().tls_enabled());
    intent.extend(s.intent_extras());
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
            (settled || k.as_str() != names::LABEL_INSTANCE_REVISION_HASH) && live.labels().get(*k) != Some(*v)
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

    /// `tikv` with pod labels and annotations from its overlay (applied in place).
    fn overlaid(mut tikv: tikv_operator_api::TiKV, label: &str, annotation: &str) -> tikv_operator_api::TiKV {
        let metadata = tikv_operator_api::ObjectMeta {
            labels: [("team".to_string(), label.to_string())].into(),
            annotations: [("note".to_string(), annotation.to_string())].into(),
        };
        let pod = tikv_operator_api::PodOverlay { metadata: Some(metadata), spec: None };
        tikv.spec.template.overlay = Some(tikv_operator_api::Overlay { pod: Some(pod), volume_claims: Vec::new() });
        tikv
    }

    fn revision(tikv: &mut tikv_operator_api::TiKV, revision: &str) {
        tikv.labels_mut().insert(names::LABEL_INSTANCE_REVISION_HASH.into(), revision.into());
    }

    /// Creates `tikv`'s Pod with the task; the live Pod.
    async fn created(env: &TestEnv, tikv: &tikv_operator_api::TiKV) -> Pod {
        env.run(&Runner::new("t", [pod::<TikvState>(render)]), "k", &mut state(env, tikv.clone(), None)).await;
        env.synced().await;
        env.sim.requests().reset();
        env.get("tikv-tikv-a").await
    }

    #[tokio::test]
    async fn labels_and_annotations_that_differ_are_one_patch_guarded_by_the_resource_version() {
        let env = TestEnv::start().await;
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        let live = created(&env, &tikv).await;
        let runner = Runner::new("t", [pod::<TikvState>(render)]);

        let mut s = state(&env, overlaid(tikv.clone(), "a", "x"), Some(live.clone()));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("pod").unwrap().message(), "updated in place", "{report}");
        assert_eq!(env.write_log(), ["patch pods/tikv-tikv-a"], "labels and annotations in one patch");
        let patched: Pod = env.get("tikv-tikv-a").await;
        assert_eq!(patched.labels().get("team").map(String::as_str), Some("a"));
        assert_eq!(patched.annotations().get("note").map(String::as_str), Some("x"));
        assert_eq!(
            patched.annotations().get(names::ANNOTATION_RESTART_INTENT),
            live.annotations().get(names::ANNOTATION_RESTART_INTENT),
            "nothing that needs a restart changed"
        );
        assert_eq!(s.parts.pod.as_ref().and_then(|p| p.resource_version()), patched.resource_version());

        // Patching from the Pod as read before: its resourceVersion is old, so the
        // patch fails and the pass looks again.
        env.sim.requests().reset();
        let mut s = state(&env, overlaid(tikv, "b", "y"), Some(live));
        let report = env.run(&runner, "k", &mut s).await;
        let entry = report.entry("pod").unwrap();
        assert_eq!((entry.kind(), entry.message()), (Some(OutcomeKind::Retry), "pod changed meanwhile; retrying"));
        let unchanged: Pod = env.get("tikv-tikv-a").await;
        assert_eq!(unchanged.labels().get("team").map(String::as_str), Some("a"));
        assert_eq!(unchanged.resource_version(), patched.resource_version());
    }

    #[tokio::test]
    async fn the_revision_label_waits_while_a_restart_is_pending() {
        let env = TestEnv::start().await;
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        let live = created(&env, &tikv).await;
        let runner = Runner::new("t", [pod::<TikvState>(render)]);

        // Revision rev-2 changes the version (a restart) and a label (in place).
        let mut next = overlaid(tikv.clone(), "a", "x");
        next.spec.template.version = "v8.5.1".into();
        revision(&mut next, "rev-2");
        let mut s = state(&env, next.clone(), Some(live));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("pod").unwrap().message(), "pod needs a restart for: version", "{report}");
        assert_eq!(env.write_log(), ["patch pods/tikv-tikv-a"]);
        let live: Pod = env.get("tikv-tikv-a").await;
        assert_eq!(live.labels().get("team").map(String::as_str), Some("a"), "in place now");
        assert_eq!(live.labels()[names::LABEL_INSTANCE_REVISION_HASH], "rev-1", "it still runs rev-1");
        assert_eq!(s.parts.drift.restart, ["version"]);
        assert_eq!(s.pass.unsynced.len(), 1);
        assert_eq!(s.pass.unsynced[0].reason, reasons::POD_NOT_UP_TO_DATE);
        assert_eq!(s.pass.unsynced[0].message, "pod tikv-tikv-a needs a restart for: version");

        // Nothing more to patch while it waits.
        env.sim.requests().reset();
        env.run(&runner, "k", &mut state(&env, next, Some(live))).await;
        assert_eq!(env.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_revision_label_waits_while_a_config_change_is_applied_online() {
        use tikv_operator_api::ConfigUpdateStrategy;
        let env = TestEnv::start().await;
        let mut tikv = sample_tikv("tikv-a", "tikv");
        tikv.spec.template.update_strategy.config = ConfigUpdateStrategy::HotReload;
        let tikv = env.create(tikv).await;
        let live = created(&env, &tikv).await;
        let runner = Runner::new("t", [pod::<TikvState>(render)]);

        let mut next = tikv.clone();
        next.spec.template.config = "[raftstore]\nraft-log-gc-threshold = 100\n".into();
        revision(&mut next, "rev-2");
        let mut s = state(&env, next, Some(live.clone()));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("pod").unwrap().message(), "up to date", "{report}");
        assert_eq!(env.write_log(), Vec::<String>::new(), "the revision label waits");
        assert!(s.parts.drift.hot_reload && !s.parts.drift.needs_restart(), "{:?}", s.parts.drift);
        assert!(s.pass.unsynced.is_empty(), "no restart: {:?}", s.pass.unsynced);

        // Once the Pod records what the instance wants, it runs rev-2.
        let mut settled = tikv;
        revision(&mut settled, "rev-2");
        let report = env.run(&runner, "k", &mut state(&env, settled, Some(live))).await;
        assert_eq!(report.entry("pod").unwrap().message(), "updated in place", "{report}");
        assert_eq!(env.write_log(), ["patch pods/tikv-tikv-a"]);
        let live: Pod = env.get("tikv-tikv-a").await;
        assert_eq!(live.labels()[names::LABEL_INSTANCE_REVISION_HASH], "rev-2");
    }

    #[tokio::test]
    async fn a_pod_of_an_older_build_is_stamped_with_the_intent_and_counts_as_up_to_date() {
        let env = TestEnv::start().await;
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        // As an operator build that recorded no intent made it.
        let old = env.create(render(&state(&env, tikv.clone(), None)).unwrap()).await;
        assert!(!old.annotations().contains_key(names::ANNOTATION_RESTART_INTENT));
        let runner = Runner::new("t", [pod::<TikvState>(render)]);

        let mut s = state(&env, tikv.clone(), Some(old));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("pod").unwrap().message(), "updated in place", "{report}");
        assert_eq!(env.write_log(), ["patch pods/tikv-tikv-a"]);
        assert_eq!(s.parts.drift, Default::default());
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);
        let live: Pod = env.get("tikv-tikv-a").await;
        let stamped = serde_json::to_string(&restart_intent(&tikv, false)).unwrap();
        assert_eq!(live.annotations().get(names::ANNOTATION_RESTART_INTENT), Some(&stamped));

        // From now on a change that needs a restart is seen.
        let mut next = tikv;
        next.spec.template.version = "v8.5.1".into();
        env.sim.requests().reset();
        let mut s = state(&env, next, Some(live));
        env.run(&runner, "k", &mut s).await;
        assert_eq!(s.parts.drift.restart, ["version"]);
        assert_eq!(env.write_log(), Vec::<String>::new());
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
