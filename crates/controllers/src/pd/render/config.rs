//! The PD ConfigMap: the template's TOML without the keys the operator owns (they are
//! command-line flags), plus the TLS paths when `tlsCluster` is on.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use tikv_operator_api::PD;

use crate::common::Instance;
use crate::common::instance::RenderedConfigMap;
use crate::common::render::{RenderError, TLS_DIR, child_meta, render_config};

pub const CONFIG_DIR: &str = "/etc/pd";
pub const CONFIG_FILE: &str = "config.toml";

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

pub fn config_map(pd: &PD, tls: bool) -> Result<RenderedConfigMap, RenderError> {
    let values: Vec<(&str, toml::Value)> = if tls {
        vec![
            ("security.cacert-path", format!("{TLS_DIR}/ca.crt").into()),
            ("security.cert-path", format!("{TLS_DIR}/tls.crt").into()),
            ("security.key-path", format!("{TLS_DIR}/tls.key").into()),
        ]
    } else {
        Vec::new()
    };
    let rendered = render_config(pd.config(), RESERVED_KEYS, &values)?;
    let config_map = ConfigMap {
        metadata: child_meta(pd, pd.pod_name()),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), rendered.toml)])),
        ..ConfigMap::default()
    };
    Ok((config_map, rendered.reserved_keys_set))
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
