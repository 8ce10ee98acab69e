//! Pure renderers of everything a TiKV instance and a TiKV group own: ConfigMap, Pod,
//! the group's peer Service.

mod config;
mod pod;
mod service;

pub use config::{CONFIG_DIR, CONFIG_FILE, RESERVED_KEYS, config_map};
pub use pod::{
    PRESTOP_DIR, PRESTOP_INIT_CONTAINER, PRESTOP_VOLUME, PodInputs, TERMINATION_GRACE_SECONDS, TOOLS_BINARY, pod,
    store_labels,
};
pub use service::peer_service;

use kube::ResourceExt;
use tikv_operator_api::TiKV;

use crate::common::Instance;

/// `<pod>.<peer service>.<namespace>.svc`.
pub fn host(tikv: &TiKV) -> String {
    format!("{}.{}.{}.svc", tikv.pod_name(), tikv.spec.subdomain, tikv.namespace().unwrap_or_default())
}

/// The address the store advertises to PD: how PD (and the operator) find it.
pub fn advertise_addr(tikv: &TiKV) -> String {
    format!("{}:{}", host(tikv), tikv.spec.template.server.ports.client)
}

pub fn advertise_status_addr(tikv: &TiKV) -> String {
    format!("{}:{}", host(tikv), tikv.spec.template.server.ports.status)
}

/// The store's status server as the operator asks it, under the TLS setting in force
/// (`tls`: what the pod was rendered with, so what its status server serves).
pub fn status_url(tikv: &TiKV, tls: bool) -> String {
    format!("{}://{}", crate::pd::render::scheme(tls), advertise_status_addr(tikv))
}
