//! `ensure_finalizer` and `release_finalizer`.
//!
//! Reads: the loaded object. Writes: the object's `metadata.finalizers`, by a JSON merge
//! patch carrying the resourceVersion read (no write when already as wanted).
//! Outcomes: Complete; Retry shortly on a 409 (the object changed since it was read; its
//! watch event re-runs the pass anyway); Fail otherwise. Releasing the finalizer is
//! destructive: builders reach it only once cleanup is done.

use std::time::Duration;

use kube::api::Patch;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tikv_operator_api::names::FINALIZER;
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::patch_params;
use crate::common::PassState;
use crate::error::{is_conflict, is_not_found};

pub fn ensure_finalizer<S: PassState>() -> Node<S> {
    task("ensure_finalizer", |s: &mut S| Box::pin(set_finalizer(s, true)))
}

pub fn release_finalizer<S: PassState>() -> Node<S> {
    task("release_finalizer", |s: &mut S| Box::pin(set_finalizer(s, false)))
}

pub(crate) async fn set_finalizer<S: PassState>(s: &mut S, present: bool) -> Outcome {
    let pass = s.pass_mut();
    let Some(object) = &pass.object else {
        return Outcome::complete("object gone");
    };
    let has = object.finalizers().iter().any(|f| f == FINALIZER);
    if has == present {
        return Outcome::complete(if present { "present" } else { "absent" });
    }
    let mut finalizers: Vec<String> = object.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    if present {
        finalizers.push(FINALIZER.into());
    }
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": object.resource_version()}});
    let api: Api<S::Object> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
    match api.patch(&pass.name, &patch_params(), &Patch::Merge(&patch)).await {
        Ok(patched) => {
            let released = patched.meta().deletion_timestamp.is_some() && !present;
            pass.object = if released && patched.finalizers().is_empty() { None } else { Some(patched) };
            Outcome::complete(if present { "added" } else { "released" })
        }
        Err(error) if is_conflict(&error) => {
            Outcome::retry(Duration::from_secs(1), "the object changed since it was read; retrying")
        }
        Err(error) if is_not_found(&error) => {
            pass.object = None;
            Outcome::complete("object gone")
        }
        Err(error) => Outcome::fail(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::tasks::load_object;
    use crate::testing::{PdOnly, TestEnv, sample_pd};
    use tikv_operator_api::PD;
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn the_finalizer_is_added_once() {
        let env = TestEnv::start().await;
        env.create(sample_pd("pd-abc123", "pd")).await;
        let runner = Runner::new("test", [load_object(), ensure_finalizer()]);
        let mut state = PdOnly::new(&env, "pd-abc123");
        env.run(&runner, "k", &mut state).await;
        let live: PD = env.get("pd-abc123").await;
        assert_eq!(live.finalizers(), [FINALIZER]);
        assert_eq!(
            state.pass.object.unwrap().resource_version(),
            live.resource_version(),
            "pass keeps the new version"
        );

        let writes = env.writes();
        let mut state = PdOnly::new(&env, "pd-abc123");
        let report = env.run(&runner, "k", &mut state).await;
        assert_eq!(report.entry("ensure_finalizer").unwrap().message(), "present");
        assert_eq!(env.writes(), writes);
    }

    #[tokio::test]
    async fn a_stale_read_retries_instead_of_overwriting() {
        let env = TestEnv::start().await;
        env.create(sample_pd("pd-abc123", "pd")).await;
        let mut state = PdOnly::new(&env, "pd-abc123");
        env.run(&Runner::new("test", [load_object()]), "k", &mut state).await;
        // Someone else changes the object after our read.
        let api: Api<PD> = Api::namespaced(env.client.clone(), "default");
        api.patch("pd-abc123", &patch_params(), &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})))
            .await
            .unwrap();
        let report = env.run(&Runner::new("test", [ensure_finalizer()]), "k", &mut state).await;
        assert!(matches!(report.action(), tikv_operator_task::PassResult::RequeueAfter(_)), "{report}");
    }
}
