//! The TiKV ConfigMap: the template's TOML without the keys the operator owns
//! (addresses, data dir, PD endpoints, store labels are flags), plus TLS paths.

use tikv_operator_api::TiKV;

use crate::common::instance::RenderedConfigMap;
use crate::common::render::{RenderError, TlsConfigKeys, instance_config_map};

pub const CONFIG_DIR: &str = "/etc/tikv";
pub use crate::common::render::CONFIG_FILE;

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

const TLS_KEYS: TlsConfigKeys =
    TlsConfigKeys { ca: "security.ca-path", cert: "security.cert-path", key: "security.key-path" };

pub fn config_map(tikv: &TiKV, tls: bool) -> Result<RenderedConfigMap, RenderError> {
    instance_config_map(tikv, RESERVED_KEYS, tls.then_some(&TLS_KEYS))
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
