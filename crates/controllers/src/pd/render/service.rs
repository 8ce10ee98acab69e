//! The PD group's Services: the headless peer Service (DNS names of members, published
//! before they are ready, since members must find each other to become ready) and the
//! client Service the operator and TiKV use.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use tikv_operator_api::PDGroup;
use tikv_operator_api::names::{self, COMPONENT_PD};

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

fn meta(group: &PDGroup, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: group.namespace(),
        labels: Some(group_selector(&group.spec.cluster.name, COMPONENT_PD, &group.name_any())),
        owner_references: Some(controller_ref(group)),
        ..ObjectMeta::default()
    }
}

pub fn peer_service(group: &PDGroup) -> Service {
    let ports = &group.spec.template.spec.server.ports;
    Service {
        metadata: meta(group, names::peer_service_name(&group.name_any(), COMPONENT_PD)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(group_selector(&group.spec.cluster.name, COMPONENT_PD, &group.name_any())),
            ports: Some(vec![port("client", ports.client), port("peer", ports.peer)]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

pub fn client_service(group: &PDGroup) -> Service {
    let ports = &group.spec.template.spec.server.ports;
    Service {
        metadata: meta(group, names::pd_client_service_name(&group.name_any())),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(group_selector(&group.spec.cluster.name, COMPONENT_PD, &group.name_any())),
            ports: Some(vec![port("client", ports.client)]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_pd_group;

    #[test]
    fn peer_service_is_headless_and_publishes_not_ready_members() {
        let svc = peer_service(&sample_pd_group("pd", 3));
        assert_eq!(svc.metadata.name.as_deref(), Some("pd-pd-peer"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.ports.unwrap().iter().map(|p| p.port).collect::<Vec<_>>(), [2379, 2380]);
        assert_eq!(spec.selector.unwrap()[names::LABEL_GROUP], "pd");
        assert_eq!(svc.metadata.owner_references.unwrap()[0].kind, "PDGroup");
    }

    #[test]
    fn client_service_serves_the_client_port() {
        let svc = client_service(&sample_pd_group("pd", 3));
        assert_eq!(svc.metadata.name.as_deref(), Some("pd-pd"));
        assert_eq!(svc.spec.unwrap().ports.unwrap()[0].port, 2379);
    }
}
