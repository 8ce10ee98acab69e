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
            let live = s.pass.ctx.caches.get::<Service>(&s.pass.namespace, &name).map(|l| Service::clone(&l));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_tikv_group};
    use std::collections::BTreeMap;
    use tikv_operator_api::names;
    use tikv_operator_task::{OutcomeKind, Runner};

    #[tokio::test]
    async fn a_headless_service_is_created_once() {
        let env = TestEnv::start().await;
        let group = env.create(sample_tikv_group("tikv", 3)).await;
        let runner = Runner::new("t", [peer_service()]);
        let mut s = TikvGroupState::new(env.ctx.clone(), "default", "tikv");
        s.pass = s.pass.with_object(group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("peer_service").unwrap().message(), "Created tikv-tikv-peer");
        assert_eq!(env.write_log(), ["create services/"]);

        let svc: Service = env.get("tikv-tikv-peer").await;
        assert_eq!(svc.owner_references()[0].uid, group.uid().unwrap());
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        let selector: BTreeMap<String, String> = [
            (names::LABEL_MANAGED_BY, names::MANAGED_BY_OPERATOR),
            (names::LABEL_CLUSTER, "basic"),
            (names::LABEL_COMPONENT, names::COMPONENT_TIKV),
            (names::LABEL_GROUP, "tikv"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(spec.selector, Some(selector));
        let ports: Vec<(String, i32)> =
            spec.ports.unwrap().into_iter().map(|p| (p.name.unwrap_or_default(), p.port)).collect();
        assert_eq!(ports, [("client".to_string(), 20160), ("status".to_string(), 20180)]);

        let mut s = TikvGroupState::new(env.ctx.clone(), "default", "tikv");
        s.pass = s.pass.with_object(group);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("peer_service").unwrap().message(), "up to date");
        assert_eq!(env.write_log(), ["create services/"], "no write when unchanged");
    }

    #[tokio::test]
    async fn changed_ports_are_one_patch() {
        let env = TestEnv::start().await;
        let group = env.create(sample_tikv_group("tikv", 3)).await;
        let runner = Runner::new("t", [peer_service()]);
        let mut s = TikvGroupState::new(env.ctx.clone(), "default", "tikv");
        s.pass = s.pass.with_object(group.clone());
        env.run(&runner, "k", &mut s).await;

        let mut changed = group;
        changed.spec.template.spec.server.ports.status = 20181;
        let mut s = TikvGroupState::new(env.ctx.clone(), "default", "tikv");
        s.pass = s.pass.with_object(changed);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("peer_service").unwrap().message(), "Patched tikv-tikv-peer");
        assert_eq!(env.write_log(), ["create services/", "patch services/tikv-tikv-peer"]);
        let svc: Service = env.get("tikv-tikv-peer").await;
        let ports: Vec<i32> = svc.spec.unwrap().ports.unwrap().iter().map(|p| p.port).collect();
        assert_eq!(ports, [20160, 20181]);
    }
}
