//! The simulated pod network: how a name and port reach a simulated process.
//!
//! A name resolves through kube-sim's DNS; a Service's cluster IP (127.2.0.0/16) is
//! load-balanced to its ready endpoint pods as kube-proxy would (service port →
//! targetPort); a pod IP (127.1.0.0/16) and port reach whatever process "listens"
//! there, which the routing table maps to the real loopback listener of the pd-sim
//! member or TiKV status server. Nothing here ever yields a non-loopback address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use kube_sim::Store;
use kube_sim::cluster::Dns;
use serde_json::Value;

/// What listens at a pod address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A PD member's client URL (its pd-sim member listener).
    PdClient { cluster: usize, member: String },
    /// A PD member's peer URL (not served over HTTP; used to find a member's cluster).
    /// A member's peer listener; `tls`: it serves TLS.
    PdPeer { cluster: usize, member: String, tls: bool },
    /// A TiKV status server.
    TikvStatus { cluster: usize, store: u64 },
}

impl Target {
    pub fn cluster(&self) -> usize {
        match self {
            Target::PdClient { cluster, .. } | Target::PdPeer { cluster, .. } | Target::TikvStatus { cluster, .. } => {
                *cluster
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Route {
    pub target: Target,
    /// The real listener; `None` for ports that are not served over HTTP.
    pub real: Option<SocketAddr>,
    /// The pod owning the address (`ns/name`).
    pub pod: String,
}

/// One endpoint a name and port lead to.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub pod_addr: SocketAddr,
    pub route: Option<Route>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("lookup {0}: no such host")]
    NoSuchHost(String),
    #[error("dial tcp {0}: connect: connection refused")]
    Refused(String),
    #[error("no endpoints available for service \"{0}\"")]
    NoEndpoints(String),
    #[error("address {0} is outside the simulated cluster (only 127.1.0.0/16 and 127.2.0.0/16 are routed)")]
    Unroutable(String),
}

/// The network view shared by the processes and the proxy; cheap to clone.
#[derive(Clone)]
pub struct Network {
    store: Store,
    dns: Dns,
    routes: Arc<RwLock<HashMap<SocketAddr, Route>>>,
}

fn is_pod_ip(ip: Ipv4Addr) -> bool {
    ip.octets()[..2] == [127, 1]
}

fn is_service_ip(ip: Ipv4Addr) -> bool {
    ip.octets()[..2] == [127, 2]
}

/// Reads the store as a component's informer cache would: no request log entry, and the
/// objects shared with the store rather than copied (the readers here run on every
/// change of the store).
pub(crate) fn list(store: &Store, plural: &str, ns: Option<&str>) -> Vec<Arc<Value>> {
    let Some(info) = store.resource("", "v1", plural) else { return Vec::new() };
    store.list_shared(&info, ns)
}

pub(crate) fn get(
    store: &Store,
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<&str>,
    name: &str,
) -> Option<Arc<Value>> {
    let info = store.resource(group, version, plural)?;
    store.get_shared(&info, ns, name).ok()
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter().fold(v, |cur, p| &cur[*p]).as_str().unwrap_or_default()
}

pub(crate) fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub(crate) fn deleting(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

impl Network {
    pub fn new(store: Store, dns: Dns) -> Self {
        Network { store, dns, routes: Arc::default() }
    }

    pub fn dns(&self) -> &Dns {
        &self.dns
    }

    pub fn add_route(&self, pod_addr: SocketAddr, route: Route) {
        self.routes.write().unwrap_or_else(|p| p.into_inner()).insert(pod_addr, route);
    }

    /// Drops the routes of a pod (its process stopped).
    pub fn remove_pod(&self, pod: &str) {
        self.routes.write().unwrap_or_else(|p| p.into_inner()).retain(|_, r| r.pod != pod);
    }

    pub fn route(&self, pod_addr: SocketAddr) -> Option<Route> {
        self.routes.read().unwrap_or_else(|p| p.into_inner()).get(&pod_addr).cloned()
    }

    pub fn routes(&self) -> Vec<(SocketAddr, Route)> {
        self.routes.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(a, r)| (*a, r.clone())).collect()
    }

    /// Every endpoint `host:port` reaches, as a client in namespace `from` (or outside
    /// the cluster with `None`) would reach it. Endpoints without a listener are kept
    /// (with `route: None`) so callers can say "connection refused".
    pub fn resolve(&self, from: Option<&str>, host: &str, port: u16) -> Result<Vec<Endpoint>, NetError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let resolved = match from {
                    Some(ns) => self.dns.resolve_from(ns, host),
                    None => self.dns.resolve(host),
                };
                resolved.map_err(|_| NetError::NoSuchHost(host.to_owned()))?
            }
        };
        let mut out = Vec::new();
        for ip in ips {
            let IpAddr::V4(v4) = ip else { return Err(NetError::Unroutable(ip.to_string())) };
            if is_pod_ip(v4) {
                let pod_addr = SocketAddr::new(ip, port);
                out.push(Endpoint { pod_addr, route: self.route(pod_addr) });
            } else if is_service_ip(v4) {
                out.extend(self.service_endpoints(v4, port)?);
            } else {
                return Err(NetError::Unroutable(ip.to_string()));
            }
        }
        Ok(out)
    }

    /// Endpoints that answer over HTTP (a real listener), first ones first.
    pub fn dial(&self, from: Option<&str>, host: &str, port: u16) -> Result<(SocketAddr, Route), NetError> {
        let endpoints = self.resolve(from, host, port)?;
        if endpoints.is_empty() {
            return Err(NetError::NoEndpoints(host.to_owned()));
        }
        endpoints
            .iter()
            .find_map(|e| e.route.as_ref().and_then(|r| r.real.map(|real| (real, r.clone()))))
            .ok_or_else(|| NetError::Refused(format!("{host}:{port}")))
    }

    /// kube-proxy: the ready endpoints of the Service behind a cluster IP, at the
    /// target port of its port `port` (kube-sim's endpoints, named ports resolved).
    fn service_endpoints(&self, ip: Ipv4Addr, port: u16) -> Result<Vec<Endpoint>, NetError> {
        let refused = || NetError::Refused(format!("{ip}:{port}"));
        let (ns, name) = self.dns.service_by_cluster_ip(IpAddr::V4(ip)).ok_or_else(refused)?;
        let endpoints = self.dns.endpoints(&ns, &name, false).unwrap_or_default();
        let mut out: Vec<Endpoint> = endpoints
            .iter()
            .filter(|e| e.service_port == port)
            .map(|e| {
                let pod_addr = SocketAddr::new(e.ip, e.port);
                Endpoint { pod_addr, route: self.route(pod_addr) }
            })
            .collect();
        if out.is_empty() {
            let has_port = self.service_has_port(&ns, &name, port);
            return Err(if has_port { NetError::NoEndpoints(name) } else { refused() });
        }
        out.sort_by_key(|e| e.pod_addr);
        Ok(out)
    }

    fn service_has_port(&self, ns: &str, name: &str, port: u16) -> bool {
        get(&self.store, "", "v1", "services", Some(ns), name).is_some_and(|svc| {
            svc["spec"]["ports"].as_array().into_iter().flatten().any(|p| p["port"].as_u64() == Some(u64::from(port)))
        })
    }
}

/// `http://host:port/...` → (host, port), with the scheme's default port.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_owned();
    let port = parsed.port_or_known_default()?;
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_port() {
        assert_eq!(host_port("http://pd-0.pd-peer.db.svc:2379"), Some(("pd-0.pd-peer.db.svc".into(), 2379)));
        assert_eq!(host_port("http://basic-pd"), Some(("basic-pd".into(), 80)));
        assert_eq!(host_port("nonsense"), None);
    }
}
