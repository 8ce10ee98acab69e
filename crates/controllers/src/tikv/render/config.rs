//! The TiKV ConfigMap: the template's TOML without the keys the operator owns
//! (addresses, data dir, PD endpoints, store labels are flags), plus TLS paths.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use tikv_operator_api::TiKV;

use crate::common::Instance;
use crate::common::instance::RenderedConfigMap;
use crate::common::render::{RenderError, TLS_DIR, child_meta, render_config};

pub const CONFIG_DIR: &str = "/etc/tikv";
pub const CONFIG_FILE: &str = "config.toml";

pub const RESERVED_KEYS: &[&str] = &[
    "server.addr",
    "server.advertise-addr",
    "server.status-addr",
    "server.advertise-status-addr",
    "server.labels",
    "storage.data-dir",
    "pd.endpoints",
    "security.ca-path",
    "security.cert-path",
    "security.key-path",
];

pub fn config_map(tikv: &TiKV, tls: bool) -> Result<RenderedConfigMap, RenderError> {
    let values: Vec<(&str, toml::Value)> = if tls {
        vec![
            ("security.ca-path", format!("{TLS_DIR}/ca.crt").into()),
            ("security.cert-path", format!("{TLS_DIR}/tls.crt").into()),
            ("security.key-path", format!("{TLS_DIR}/tls.key").into()),
        ]
    } else {
        Vec::new()
    };
    let rendered = render_config(tikv.config(), RESERVED_KEYS, &values)?;
    let config_map = ConfigMap {
        metadata: child_meta(tikv, tikv.pod_name()),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), rendered.toml)])),
        ..ConfigMap::default()
    };
    Ok((config_map, rendered.reserved_keys_set))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_tikv;

    #[test]
    fn owned_keys_are_dropped_and_reported() {
        let mut tikv = sample_tikv("tikv-abc123", "tikv");
        tikv.spec.template.config = "[pd]\nendpoints = [\"x\"]\n[storage]\nreserve-space = \"1GB\"\n".into();
        let (cm, reserved) = config_map(&tikv, true).unwrap();
        assert_eq!(reserved, ["pd.endpoints"]);
        let toml: toml::Table = cm.data.unwrap()[CONFIG_FILE].parse().unwrap();
        assert_eq!(toml["storage"]["reserve-space"].as_str(), Some("1GB"));
        assert_eq!(toml["security"]["ca-path"].as_str(), Some("/var/lib/cluster-tls/ca.crt"));
        assert!(toml["pd"].get("endpoints").is_none());
    }
}
