//! The PD ConfigMap: the template's TOML without the keys the operator owns (they are
//! command-line flags), plus the TLS paths when `tlsCluster` is on.

use tikv_operator_api::PD;

use crate::common::instance::RenderedConfigMap;
use crate::common::render::{RenderError, TlsConfigKeys, instance_config_map};

pub const CONFIG_DIR: &str = "/etc/pd";
pub use crate::common::render::CONFIG_FILE;

/// PD settings the operator sets through flags or owns for TLS.
pub const RESERVED_KEYS: &[&str] = &[
    "name",
    "data-dir",
    "client-urls",
    "peer-urls",
    "advertise-client-urls",
    "advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "join",
    "security.cacert-path",
    "security.cert-path",
    "security.key-path",
];

const TLS_KEYS: TlsConfigKeys =
    TlsConfigKeys { ca: "security.cacert-path", cert: "security.cert-path", key: "security.key-path" };

pub fn config_map(pd: &PD, tls: bool) -> Result<RenderedConfigMap, RenderError> {
    instance_config_map(pd, RESERVED_KEYS, tls.then_some(&TLS_KEYS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_pd;

    #[test]
    fn user_config_is_kept_and_owned_keys_reported() {
        let mut pd = sample_pd("pd-abc123", "pd");
        pd.spec.template.config = "name = \"x\"\n[replication]\nmax-replicas = 3\n".into();
        let (cm, reserved) = config_map(&pd, false).unwrap();
        assert_eq!(reserved, ["name"]);
        assert_eq!(cm.metadata.name.as_deref(), Some("pd-pd-abc123"));
        let toml: toml::Table = cm.data.unwrap()[CONFIG_FILE].parse().unwrap();
        assert!(toml.get("name").is_none());
        assert_eq!(toml["replication"]["max-replicas"].as_integer(), Some(3));
        assert!(toml.get("security").is_none());
    }

    #[test]
    fn tls_paths_point_at_the_mounted_secret() {
        let (cm, _) = config_map(&sample_pd("pd-abc123", "pd"), true).unwrap();
        let toml: toml::Table = cm.data.unwrap()[CONFIG_FILE].parse().unwrap();
        assert_eq!(toml["security"]["cacert-path"].as_str(), Some("/var/lib/cluster-tls/ca.crt"));
    }
}
