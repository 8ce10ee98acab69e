//! `services`: the headless peer Service and the client Service of the PD group.
//!
//! Reads: both Services. Writes: creates them, or one merge patch each when the
//! rendered Service changed (hash-guarded: nothing when unchanged). Complete; Retry
//! shortly on a 409; Fail on other API errors.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::{Api, ResourceExt};
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::{Applied, apply};
use crate::error::is_conflict;
use crate::pd::render::{client_service, peer_service};
use crate::pdgroup::state::PdGroupState;

pub fn services() -> Node<PdGroupState> {
    task("services", |s: &mut PdGroupState| {
        Box::pin(async move {
            let Some(group) = &s.pass.object else {
                return Outcome::complete("no group");
            };
            let api: Api<Service> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
            let mut changed = Vec::new();
            for desired in [peer_service(group), client_service(group)] {
                let name = desired.name_any();
                let live = s.pass.ctx.caches.get::<Service>(&s.pass.namespace, &name).map(|l| Service::clone(&l));
                match apply(&api, live.as_ref(), desired).await {
                    Ok(Applied::Unchanged) => {}
                    Ok(applied) => changed.push(format!("{applied:?} {name}")),
                    Err(error) if is_conflict(&error) => {
                        return Outcome::retry(
                            Duration::from_secs(1),
                            format!("Service {name} changed meanwhile; retrying"),
                        );
                    }
                    Err(error) => return Outcome::fail(error),
                }
            }
            if changed.is_empty() {
                Outcome::complete("up to date")
            } else {
                s.pass.event("ServicesApplied", "Apply", changed.join(", ")).await;
                Outcome::complete(changed.join(", "))
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_pd_group};
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn both_services_are_created_once() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 3)).await;
        let runner = Runner::new("test", [services()]);
        let mut state = PdGroupState::new(env.ctx.clone(), "default", "pd");
        state.pass = state.pass.with_object(group.clone());
        env.run(&runner, "k", &mut state).await;
        let names: Vec<String> = env.list::<Service>().await.iter().map(|s| s.name_any()).collect();
        assert!(names.contains(&"pd-pd-peer".to_string()) && names.contains(&"pd-pd".to_string()), "{names:?}");
        let writes = env.writes();
        let mut state = PdGroupState::new(env.ctx.clone(), "default", "pd");
        state.pass = state.pass.with_object(group);
        assert_eq!(env.run(&runner, "k", &mut state).await.entry("services").unwrap().message(), "up to date");
        assert_eq!(env.writes(), writes);
    }
}
