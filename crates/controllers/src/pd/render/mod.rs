//! Pure renderers of everything a PD instance and a PD group own: ConfigMap, Pod, the
//! bootstrap/join decision, and the group's Services.

mod config;
mod membership;
mod peer_urls;
mod pod;
mod service;

pub use config::{CONFIG_DIR, CONFIG_FILE, RESERVED_KEYS, config_map};
pub use membership::{Membership, MembershipInputs, membership};
pub use peer_urls::{PeerUrls, peer_urls};
pub use pod::{PodInputs, pod};
pub use service::{client_service, peer_service};

use kube::ResourceExt;
use tikv_operator_api::PD;

use crate::common::Instance;

/// `http` or `https`.
pub fn scheme(tls: bool) -> &'static str {
    if tls { "https" } else { "http" }
}

/// `<pod>.<peer service>.<namespace>.svc`: resolvable through the headless peer Service.
pub fn host(pd: &PD) -> String {
    format!("{}.{}.{}.svc", pd.pod_name(), pd.spec.subdomain, pd.namespace().unwrap_or_default())
}

pub fn advertise_client_url(pd: &PD, tls: bool) -> String {
    format!("{}://{}:{}", scheme(tls), host(pd), pd.spec.template.server.ports.client)
}

pub fn advertise_peer_url(pd: &PD, tls: bool) -> String {
    format!("{}://{}:{}", scheme(tls), host(pd), pd.spec.template.server.ports.peer)
}
