//! `config_map`: renders the instance's ConfigMap (with `render`) and applies it.
//! Writes: the ConfigMap (create, or one patch when the desired content changed).
//! Reports operator-owned keys the user set (Synced=False ReservedConfigKey) and an
//! invalid config (Synced=False InvalidSpec, then Wait for the user to fix it).

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, ResourceExt};
use tikv_operator_api::condition::reasons;
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::{Applied, apply, hash_of};
use crate::common::instance::{InstanceState, RenderedConfigMap};
use crate::common::render::RenderError;
use crate::error::is_conflict;

pub fn config_map<S: InstanceState>(render: fn(&S) -> Result<RenderedConfigMap, RenderError>) -> Node<S> {
    task("config_map", move |s: &mut S| Box::pin(run_config_map(s, render)))
}

async fn run_config_map<S: InstanceState>(
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
