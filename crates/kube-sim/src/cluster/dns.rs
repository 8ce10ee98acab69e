//! Cluster DNS with kube-dns semantics, answered from the store on each query:
//!
//! - `svc.ns`, `svc.ns.svc`, `svc.ns.svc.<domain>`: a Service's cluster IP; for a
//!   headless Service (`clusterIP: None`), the IPs of the ready pods its selector
//!   matches (also not-ready ones with `publishNotReadyAddresses: true`);
//! - `hostname.subdomain.ns.svc[.<domain>]`: a pod with that `spec.hostname` and
//!   `spec.subdomain`, only when a headless Service named `subdomain` in `ns` selects
//!   it, under the same readiness rule;
//! - anything else, or no address: NXDOMAIN.
//!
//! [`Dns::resolve_from`] applies a pod's search path (`<ns>.svc.<domain>`,
//! `svc.<domain>`, `<domain>`) first, so a bare `svc` works from inside a namespace.

use std::net::IpAddr;

use serde_json::Value;

use super::objects::{PODS, SERVICES, condition, get, labels, list, map_matches, str_of};
use crate::store::Store;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("NXDOMAIN: {0}")]
    NxDomain(String),
}

#[derive(Clone)]
pub struct Dns {
    store: Store,
    domain: String,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns").field("domain", &self.domain).finish()
    }
}

/// Whether a pod counts as an endpoint of a Service (ready, or the Service publishes
/// not-ready addresses; terminating pods only in the latter case).
pub(crate) fn endpoint(pod: &Value, publish_not_ready: bool) -> bool {
    if str_of(pod, &["status", "podIP"]).is_empty() || super::objects::is_terminal(pod) {
        return false;
    }
    if publish_not_ready {
        return true;
    }
    !crate::meta::is_deleting(pod) && condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

pub(crate) fn selects(service: &Value, pod: &Value) -> bool {
    let selector = &service["spec"]["selector"];
    selector.as_object().is_some_and(|m| !m.is_empty()) && map_matches(selector, &labels(pod))
}

pub(crate) fn pod_ips(pod: &Value) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = pod["status"]["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["ip"].as_str()?.parse().ok())
        .collect();
    if ips.is_empty()
        && let Ok(ip) = str_of(pod, &["status", "podIP"]).parse()
    {
        ips.push(ip);
    }
    ips
}

impl Dns {
    pub fn new(store: Store, cluster_domain: &str) -> Self {
        Dns { store, domain: cluster_domain.trim_matches('.').to_ascii_lowercase() }
    }

    pub fn cluster_domain(&self) -> &str {
        &self.domain
    }

    /// Resolves a name as a resolver outside any pod would (no search path).
    pub fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let fqdn = name.trim_end_matches('.').to_ascii_lowercase();
        self.lookup(&fqdn).filter(|ips| !ips.is_empty()).ok_or_else(|| DnsError::NxDomain(name.to_string()))
    }

    /// Resolves a name as a pod in `namespace` would (ndots 5 and its search path).
    pub fn resolve_from(&self, namespace: &str, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        if name.ends_with('.') {
            return self.resolve(name);
        }
        let d = &self.domain;
        for search in [format!("{namespace}.svc.{d}"), format!("svc.{d}"), d.clone()] {
            if let Ok(ips) = self.resolve(&format!("{name}.{search}")) {
                return Ok(ips);
            }
        }
        self.resolve(name)
    }

    /// The endpoints of the Service `namespace/name` (see [`super::endpoints`]).
    pub fn endpoints(
        &self,
        namespace: &str,
        name: &str,
        include_not_ready: bool,
    ) -> Option<Vec<super::ServiceEndpoint>> {
        super::endpoints::endpoints(&self.store, namespace, name, include_not_ready)
    }

    /// The Service `namespace/name` whose cluster IP is `ip`.
    pub fn service_by_cluster_ip(&self, ip: IpAddr) -> Option<(String, String)> {
        super::endpoints::service_by_cluster_ip(&self.store, ip)
    }

    fn lookup(&self, fqdn: &str) -> Option<Vec<IpAddr>> {
        let suffix = format!(".{}", self.domain);
        let short = fqdn.strip_suffix(&suffix).unwrap_or(fqdn);
        let parts: Vec<&str> = short.split('.').collect();
        match parts.as_slice() {
            [svc, ns] if short.len() == fqdn.len() => self.service(ns, svc),
            [svc, ns, "svc"] => self.service(ns, svc),
            [host, sub, ns, "svc"] => self.hostname(ns, sub, host),
            _ => None,
        }
    }

    fn service(&self, ns: &str, name: &str) -> Option<Vec<IpAddr>> {
        let svc = get(&self.store, SERVICES, Some(ns), name)?;
        let cluster_ip = str_of(&svc, &["spec", "clusterIP"]);
        if cluster_ip != "None" {
            return cluster_ip.parse().ok().map(|ip| vec![ip]);
        }
        let publish = svc["spec"]["publishNotReadyAddresses"] == true;
        let mut ips: Vec<IpAddr> = list(&self.store, PODS, Some(ns))
            .iter()
            .filter(|p| selects(&svc, p) && endpoint(p, publish))
            .flat_map(|p| pod_ips(p))
            .collect();
        ips.sort();
        ips.dedup();
        Some(ips)
    }

    fn hostname(&self, ns: &str, subdomain: &str, host: &str) -> Option<Vec<IpAddr>> {
        let svc = get(&self.store, SERVICES, Some(ns), subdomain)?;
        if str_of(&svc, &["spec", "clusterIP"]) != "None" {
            return None;
        }
        let publish = svc["spec"]["publishNotReadyAddresses"] == true;
        let mut ips: Vec<IpAddr> = list(&self.store, PODS, Some(ns))
            .iter()
            .filter(|p| {
                str_of(p, &["spec", "hostname"]) == host
                    && str_of(p, &["spec", "subdomain"]) == subdomain
                    && selects(&svc, p)
                    && endpoint(p, publish)
            })
            .flat_map(|p| pod_ips(p))
            .collect();
        ips.sort();
        Some(ips)
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

    fn add_pod(store: &Store, name: &str, ip: &str, ready: bool) {
        let c = store.client("test");
        let pods = ResourceRef::new("", "v1", "pods");
        let pod = json!({"metadata": {"name": name, "labels": {"app": "pd"}},
            "spec": {"hostname": name, "subdomain": "peer", "containers": [{"name": "c", "image": "i"}]}});
        c.create(&pods, Some("ns"), pod).unwrap();
        let status = json!({"status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
        c.patch_status(&pods, Some("ns"), name, &status).unwrap();
    }

    fn add_service(store: &Store, name: &str, spec: serde_json::Value) {
        let c = store.client("test");
        c.create(
            &ResourceRef::new("", "v1", "services"),
            Some("ns"),
            json!({"metadata": {"name": name}, "spec": spec}),
        )
        .unwrap();
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn the_name_forms_kube_dns_answers() {
        let store = store();
        add_service(&store, "pd", json!({"clusterIP": "127.2.0.9", "selector": {"app": "pd"}}));
        let dns = Dns::new(store, "cluster.local");
        for name in ["pd.ns", "pd.ns.svc", "pd.ns.svc.cluster.local", "PD.ns.svc.cluster.local."] {
            assert_eq!(dns.resolve(name).unwrap(), ips(&["127.2.0.9"]), "{name}");
        }
        assert_eq!(dns.resolve_from("ns", "pd").unwrap(), ips(&["127.2.0.9"]));
        for name in ["pd", "pd.other", "pd.ns.cluster.local", "x.pd.ns.svc", "pd.ns.svc.other.domain"] {
            assert_eq!(dns.resolve(name), Err(DnsError::NxDomain(name.into())), "{name}");
        }
    }

    #[test]
    fn headless_services_answer_with_ready_pods_unless_publishing_not_ready() {
        let store = store();
        add_pod(&store, "pd-0", "127.1.0.1", true);
        add_pod(&store, "pd-1", "127.1.0.2", false);
        add_service(&store, "peer", json!({"clusterIP": "None", "selector": {"app": "pd"}}));
        add_service(
            &store,
            "all",
            json!({"clusterIP": "None", "selector": {"app": "pd"}, "publishNotReadyAddresses": true}),
        );
        let dns = Dns::new(store, "cluster.local");
        assert_eq!(dns.resolve("peer.ns.svc").unwrap(), ips(&["127.1.0.1"]));
        assert_eq!(dns.resolve("all.ns.svc").unwrap(), ips(&["127.1.0.1", "127.1.0.2"]));
        assert_eq!(dns.resolve("pd-0.peer.ns.svc").unwrap(), ips(&["127.1.0.1"]));
        assert!(dns.resolve("pd-1.peer.ns.svc").is_err(), "not ready");
        assert!(dns.resolve("pd-0.all.ns.svc").is_err(), "the subdomain names the Service");
    }
}
