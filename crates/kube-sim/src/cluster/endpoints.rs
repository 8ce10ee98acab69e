//! Service endpoints, as the EndpointSlice controller publishes them and kube-proxy
//! routes to them, answered from the store on each query (like [`Dns`](super::Dns)):
//! the pods a Service's selector matches that have an IP and are not terminated, each
//! at each Service port's target port. A numeric `targetPort` is taken as is, a named
//! one is looked up in the pod's container ports (a pod without that port is no
//! endpoint for it), none means the Service port. An endpoint is ready when its pod is
//! Ready and not being deleted, or the Service publishes not-ready addresses. A Service
//! without a selector has no endpoints (its Endpoints would be managed by hand, which
//! the simulation does not model).

use std::net::IpAddr;

use serde_json::Value;

use super::dns::{endpoint, pod_ips, selects};
use super::objects::{PODS, SERVICES, get, list, str_of};
use crate::store::Store;

/// One pod address behind one Service port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceEndpoint {
    /// The Service port (`spec.ports[].port`).
    pub service_port: u16,
    /// Its name (`spec.ports[].name`; empty when unnamed).
    pub port_name: String,
    pub ip: IpAddr,
    /// The target port on the pod, named ports resolved.
    pub port: u16,
    /// The pod's name (in the Service's namespace).
    pub pod: String,
    pub ready: bool,
}

/// The Service `namespace/name` whose cluster IP is `ip` (headless Services have none).
pub fn service_by_cluster_ip(store: &Store, ip: IpAddr) -> Option<(String, String)> {
    let ip = ip.to_string();
    list(store, SERVICES, None)
        .into_iter()
        .find(|s| str_of(s, &["spec", "clusterIP"]) == ip)
        .map(|s| (str_of(&s, &["metadata", "namespace"]).to_owned(), str_of(&s, &["metadata", "name"]).to_owned()))
}

/// The endpoints of the Service `namespace/name`, ready ones only unless
/// `include_not_ready`, sorted by Service port, IP and target port; `None` when no such
/// Service exists.
pub fn endpoints(store: &Store, namespace: &str, name: &str, include_not_ready: bool) -> Option<Vec<ServiceEndpoint>> {
    let svc = get(store, SERVICES, Some(namespace), name)?;
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let ports: Vec<&Value> = svc["spec"]["ports"].as_array().into_iter().flatten().collect();
    let mut out = Vec::new();
    for pod in list(store, PODS, Some(namespace)) {
        if !selects(&svc, &pod) || !endpoint(&pod, true) {
            continue;
        }
        let ready = endpoint(&pod, publish);
        if !ready && !include_not_ready {
            continue;
        }
        let pod_name = str_of(&pod, &["metadata", "name"]);
        for p in &ports {
            let Some(service_port) = p["port"].as_u64().and_then(|n| u16::try_from(n).ok()) else { continue };
            let Some(port) = target_port(&p["targetPort"], &pod, service_port) else { continue };
            for ip in pod_ips(&pod) {
                out.push(ServiceEndpoint {
                    service_port,
                    port_name: p["name"].as_str().unwrap_or_default().to_owned(),
                    ip,
                    port,
                    pod: pod_name.to_owned(),
                    ready,
                });
            }
        }
    }
    out.sort();
    Some(out)
}

/// A Service port's target port on `pod`: a number, a container port's name, or
/// (absent) the Service port itself.
pub fn target_port(target: &Value, pod: &Value, service_port: u16) -> Option<u16> {
    match target {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => match s.parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|p| p["name"] == s.as_str())
                .and_then(|p| p["containerPort"].as_u64())
                .and_then(|n| u16::try_from(n).ok()),
        },
        _ => Some(service_port),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::ResourceRef;

    fn store() -> Store {
        let store = Store::new(sim_clock::SimClock::new(1.0), 1000, 0);
        let c = store.client("test");
        c.create(&ResourceRef::new("", "v1", "namespaces"), None, json!({"metadata": {"name": "ns"}})).unwrap();
        store
    }

    fn add_pod(store: &Store, name: &str, ip: &str, ready: bool, client_port: Option<u16>) {
        let c = store.client("test");
        let pods = ResourceRef::new("", "v1", "pods");
        let ports: Vec<Value> =
            client_port.into_iter().map(|p| json!({"name": "client", "containerPort": p})).collect();
        let pod = json!({"metadata": {"name": name, "labels": {"app": "pd"}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}]}});
        c.create(&pods, Some("ns"), pod).unwrap();
        let status = json!({"status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
        c.patch_status(&pods, Some("ns"), name, &status).unwrap();
    }

    fn add_service(store: &Store, name: &str, spec: Value) {
        let c = store.client("test");
        c.create(
            &ResourceRef::new("", "v1", "services"),
            Some("ns"),
            json!({"metadata": {"name": name}, "spec": spec}),
        )
        .unwrap();
    }

    fn addrs(eps: &[ServiceEndpoint]) -> Vec<(u16, String, u16, bool)> {
        eps.iter().map(|e| (e.service_port, e.ip.to_string(), e.port, e.ready)).collect()
    }

    #[test]
    fn endpoints_follow_readiness_and_resolve_named_target_ports() {
        let store = store();
        add_pod(&store, "pd-0", "127.1.0.1", true, Some(2379));
        add_pod(&store, "pd-1", "127.1.0.2", false, Some(2379));
        add_pod(&store, "pd-2", "127.1.0.3", true, None);
        add_service(
            &store,
            "pd",
            json!({"clusterIP": "127.2.0.9", "selector": {"app": "pd"},
                   "ports": [{"name": "client", "port": 80, "targetPort": "client"},
                             {"name": "peer", "port": 2380, "targetPort": 2380},
                             {"name": "same", "port": 9000}]}),
        );
        let ready = endpoints(&store, "ns", "pd", false).unwrap();
        assert_eq!(
            addrs(&ready),
            [
                (80, "127.1.0.1".into(), 2379, true),
                (2380, "127.1.0.1".into(), 2380, true),
                (2380, "127.1.0.3".into(), 2380, true),
                (9000, "127.1.0.1".into(), 9000, true),
                (9000, "127.1.0.3".into(), 9000, true),
            ],
            "pd-2 has no port named client; pd-1 is not ready"
        );
        assert_eq!(ready[0].pod, "pd-0");
        assert_eq!(ready[0].port_name, "client");
        let all = endpoints(&store, "ns", "pd", true).unwrap();
        assert!(addrs(&all).contains(&(80, "127.1.0.2".into(), 2379, false)), "{all:?}");
        assert_eq!(all.len(), 8);

        assert_eq!(service_by_cluster_ip(&store, "127.2.0.9".parse().unwrap()), Some(("ns".into(), "pd".into())));
        assert_eq!(service_by_cluster_ip(&store, "127.2.0.10".parse().unwrap()), None);
        assert_eq!(endpoints(&store, "ns", "nope", true), None);
    }

    #[test]
    fn publishing_not_ready_addresses_makes_them_ready_and_no_selector_means_none() {
        let store = store();
        add_pod(&store, "pd-0", "127.1.0.1", false, None);
        add_service(
            &store,
            "peer",
            json!({"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"app": "pd"},
                   "ports": [{"port": 2380}]}),
        );
        add_service(&store, "manual", json!({"clusterIP": "127.2.0.4", "ports": [{"port": 2380}]}));
        assert_eq!(addrs(&endpoints(&store, "ns", "peer", false).unwrap()), [(2380, "127.1.0.1".into(), 2380, true)]);
        assert_eq!(endpoints(&store, "ns", "manual", true), Some(vec![]));
        assert_eq!(service_by_cluster_ip(&store, "127.2.0.4".parse().unwrap()), Some(("ns".into(), "manual".into())));
    }

    #[test]
    fn named_target_ports_come_from_the_pod() {
        let pod = json!({"spec": {"containers": [{"ports": [{"name": "client", "containerPort": 2379}]}]}});
        assert_eq!(target_port(&json!("client"), &pod, 80), Some(2379));
        assert_eq!(target_port(&json!("status"), &pod, 80), None);
        assert_eq!(target_port(&json!(2380), &pod, 80), Some(2380));
        assert_eq!(target_port(&Value::Null, &pod, 80), Some(80));
    }
}
