//! `peer_service`: the group's headless peer Service.
//!
//! Reads the Service. Writes: create, or one merge patch when the rendered Service
//! changed (nothing when unchanged). Complete; Retry on a 409; Fail otherwise.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::{Api, ResourceExt};
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::{Applied, apply};
use crate::error::is_conflict;
use crate::tikv::render;
use crate::tikvgroup::state::TikvGroupState;

pub fn peer_service() -> Node<TikvGroupState> {
    task("peer_service", |s: &mut TikvGroupState| {
        Box::pin(async move {
            let Some(group) = &s.pass.object else {
                return Outcome::complete("no group");
            };
            let desired = render::peer_service(group);
            let name = desired.name_any();
            let api: Api<Service> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
            let live = match api.get_opt(&name).await {
                Ok(live) => live,
                Err(error) => return Outcome::fail(error),
            };
            match apply(&api, live.as_ref(), desired).await {
                Ok(Applied::Unchanged) => Outcome::complete("up to date"),
                Ok(applied) => {
                    s.pass.event("ServiceApplied", "Apply", format!("{applied:?} Service {name}")).await;
                    Outcome::complete(format!("{applied:?} {name}"))
                }
                Err(error) if is_conflict(&error) => {
                    Outcome::retry(Duration::from_secs(1), "Service changed meanwhile; retrying")
                }
                Err(error) => Outcome::fail(error),
            }
        })
    })
}
