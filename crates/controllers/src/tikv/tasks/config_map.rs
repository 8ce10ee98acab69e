//! `config_map`: the store's ConfigMap, rendered by [`render::config_map`] and applied
//! by the generic task (see [`crate::common::tasks::config_map`]).

use tikv_operator_task::Node;

use crate::common::instance::RenderedConfigMap;
use crate::common::render::RenderError;
use crate::common::tasks as common;
use crate::tikv::render;
use crate::tikv::state::TikvState;

pub fn config_map() -> Node<TikvState> {
    common::config_map(render_config_map)
}

fn render_config_map(s: &TikvState) -> Result<RenderedConfigMap, RenderError> {
    let tikv = s.pass.object.as_ref().ok_or(RenderError::NoGroup)?;
    render::config_map(tikv, s.pass.tls_enabled())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_tikv};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::ResourceExt;
    use tikv_operator_api::TiKV;
    use tikv_operator_api::cluster::TlsCluster;
    use tikv_operator_api::condition::reasons;
    use tikv_operator_task::{OutcomeKind, Runner};

    fn state(env: &TestEnv, tikv: TiKV) -> TikvState {
        let mut cluster = sample_cluster("basic");
        cluster.spec.tls_cluster = Some(TlsCluster { enabled: true });
        let mut state = TikvState::new(env.ctx.clone(), "default", &tikv.name_any());
        state.pass = state.pass.with_object(tikv).with_cluster(cluster);
        state
    }

    fn toml_of(cm: &ConfigMap) -> toml::Table {
        cm.data.as_ref().unwrap()["config.toml"].parse().unwrap()
    }

    const TLS: &str = "[security]\nca-path = \"/var/lib/cluster-tls/ca.crt\"\n\
                       cert-path = \"/var/lib/cluster-tls/tls.crt\"\nkey-path = \"/var/lib/cluster-tls/tls.key\"\n";

    #[tokio::test]
    async fn created_with_the_rendered_toml_then_unchanged_means_no_write() {
        let env = TestEnv::start().await;
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        let runner = Runner::new("t", [config_map()]);
        let mut s = state(&env, tikv.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("config_map").unwrap().message(), "created");
        assert_eq!(env.write_log(), ["create configmaps/"]);
        let cm: ConfigMap = env.get("tikv-tikv-a").await;
        let expected: toml::Table = format!("[storage]\nreserve-space = \"1GB\"\n{TLS}").parse().unwrap();
        assert_eq!(toml_of(&cm), expected);
        assert_eq!(cm.owner_references()[0].uid, tikv.uid().unwrap());
        assert!(s.parts.config_hash.is_some());
        assert!(s.pass.unsynced.is_empty());

        let mut s = state(&env, tikv);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("config_map").unwrap().message(), "up to date");
        assert_eq!(env.write_log(), ["create configmaps/"], "no write when unchanged");
    }

    #[tokio::test]
    async fn reserved_keys_are_dropped_and_reported() {
        let env = TestEnv::start().await;
        let mut tikv = sample_tikv("tikv-a", "tikv");
        tikv.spec.template.config = "[server]\naddr = \"0.0.0.0:1\"\ngrpc-concurrency = 8\n\
                                     [storage]\ndata-dir = \"/mine\"\nreserve-space = \"2GB\"\n"
            .into();
        let tikv = env.create(tikv).await;
        let mut s = state(&env, tikv);
        let report = env.run(&Runner::new("t", [config_map()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(s.pass.unsynced.len(), 1);
        assert_eq!(s.pass.unsynced[0].reason, reasons::RESERVED_CONFIG_KEY);
        assert_eq!(
            s.pass.unsynced[0].message,
            "config sets keys the operator owns, which were ignored: server.addr, storage.data-dir"
        );
        let cm: ConfigMap = env.get("tikv-tikv-a").await;
        let expected: toml::Table =
            format!("[server]\ngrpc-concurrency = 8\n[storage]\nreserve-space = \"2GB\"\n{TLS}").parse().unwrap();
        assert_eq!(toml_of(&cm), expected);
    }

    #[tokio::test]
    async fn a_changed_config_is_one_patch() {
        let env = TestEnv::start().await;
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        let runner = Runner::new("t", [config_map()]);
        env.run(&runner, "k", &mut state(&env, tikv.clone())).await;

        let mut changed = tikv;
        changed.spec.template.config = "[storage]\nreserve-space = \"5GB\"\n".into();
        let mut s = state(&env, changed);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("config_map").unwrap().message(), "patched");
        assert_eq!(env.write_log(), ["create configmaps/", "patch configmaps/tikv-tikv-a"]);
        let cm: ConfigMap = env.get("tikv-tikv-a").await;
        assert_eq!(toml_of(&cm)["storage"]["reserve-space"].as_str(), Some("5GB"));
    }
}
