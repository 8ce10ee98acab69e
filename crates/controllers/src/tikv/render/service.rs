//! The TiKV group's headless peer Service: stable DNS names for the stores, published
//! before they are ready (a store must be reachable to become ready).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use tikv_operator_api::TiKVGroup;
use tikv_operator_api::names::{self, COMPONENT_TIKV};

use crate::common::render::{controller_ref, group_selector};

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

pub fn peer_service(group: &TiKVGroup) -> Service {
    let ports = &group.spec.template.spec.server.ports;
    let selector = group_selector(&group.spec.cluster.name, COMPONENT_TIKV, &group.name_any());
    Service {
        metadata: ObjectMeta {
            name: Some(names::peer_service_name(&group.name_any(), COMPONENT_TIKV)),
            namespace: group.namespace(),
            labels: Some(selector.clone()),
            owner_references: Some(controller_ref(group)),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector),
            ports: Some(vec![port("client", ports.client), port("status", ports.status)]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_tikv_group;

    #[test]
    fn headless_with_client_and_status_ports() {
        let svc = peer_service(&sample_tikv_group("tikv", 3));
        assert_eq!(svc.metadata.name.as_deref(), Some("tikv-tikv-peer"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.ports.unwrap().iter().map(|p| p.port).collect::<Vec<_>>(), [20160, 20180]);
    }
}
