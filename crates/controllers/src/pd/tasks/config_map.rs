//! `config_map`: the member's ConfigMap, rendered by [`render::config_map`] and applied
//! by the generic task (see [`crate::common::tasks::config_map`] for writes and
//! outcomes).

use tikv_operator_task::Node;

use crate::common::instance::RenderedConfigMap;
use crate::common::render::RenderError;
use crate::common::tasks as common;
use crate::pd::render;
use crate::pd::state::PdState;

pub fn config_map() -> Node<PdState> {
    common::config_map(render_config_map)
}

fn render_config_map(s: &PdState) -> Result<RenderedConfigMap, RenderError> {
    let Some(pd) = &s.pass.object else {
        return Err(RenderError::InvalidConfig("no instance".into()));
    };
    let certificates = s.pass.tls_enabled() || s.peer_urls().is_some_and(|p| p.needs_certificates());
    render::config_map(pd, certificates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_pd};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::ResourceExt;
    use tikv_operator_api::PD;
    use tikv_operator_api::cluster::TlsCluster;
    use tikv_operator_api::condition::reasons;
    use tikv_operator_task::{OutcomeKind, Runner};

    fn state(env: &TestEnv, pd: PD) -> PdState {
        let mut cluster = sample_cluster("basic");
        cluster.spec.tls_cluster = Some(TlsCluster { enabled: true });
        let mut state = PdState::new(env.ctx.clone(), "default", &pd.name_any());
        state.pass = state.pass.with_object(pd).with_cluster(cluster);
        state
    }

    fn toml_of(cm: &ConfigMap) -> toml::Table {
        cm.data.as_ref().unwrap()["config.toml"].parse().unwrap()
    }

    const TLS: &str = "[security]\ncacert-path = \"/var/lib/cluster-tls/ca.crt\"\n\
                       cert-path = \"/var/lib/cluster-tls/tls.crt\"\nkey-path = \"/var/lib/cluster-tls/tls.key\"\n";

    #[tokio::test]
    async fn created_with_the_rendered_toml_then_unchanged_means_no_write() {
        let env = TestEnv::start().await;
        let pd = env.create(sample_pd("pd-a", "pd")).await;
        let runner = Runner::new("t", [config_map()]);
        let mut s = state(&env, pd.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("config_map").unwrap().message(), "created");
        assert_eq!(env.write_log(), ["create configmaps/"]);
        let cm: ConfigMap = env.get("pd-pd-a").await;
        let expected: toml::Table = format!("[replication]\nmax-replicas = 3\n{TLS}").parse().unwrap();
        assert_eq!(toml_of(&cm), expected);
        assert_eq!(cm.owner_references()[0].uid, pd.uid().unwrap());
        assert_eq!(cm.labels()[tikv_operator_api::names::LABEL_INSTANCE], "pd-a");
        assert!(s.parts.config_hash.is_some());
        assert!(s.pass.unsynced.is_empty());

        let mut s = state(&env, pd);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("config_map").unwrap().message(), "up to date");
        assert_eq!(env.write_log(), ["create configmaps/"], "no write when unchanged");
    }

    #[tokio::test]
    async fn reserved_keys_are_dropped_and_reported() {
        let env = TestEnv::start().await;
        let mut pd = sample_pd("pd-a", "pd");
        pd.spec.template.config =
            "name = \"mine\"\njoin = \"http://x\"\n[security]\ncert-path = \"/mine\"\n[replication]\nmax-replicas = 5\n"
                .into();
        let pd = env.create(pd).await;
        let mut s = state(&env, pd);
        let report = env.run(&Runner::new("t", [config_map()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(s.pass.unsynced.len(), 1);
        assert_eq!(s.pass.unsynced[0].reason, reasons::RESERVED_CONFIG_KEY);
        assert_eq!(
            s.pass.unsynced[0].message,
            "config sets keys the operator owns, which were ignored: name, join, security.cert-path"
        );
        let cm: ConfigMap = env.get("pd-pd-a").await;
        let expected: toml::Table = format!("[replication]\nmax-replicas = 5\n{TLS}").parse().unwrap();
        assert_eq!(toml_of(&cm), expected, "the operator's values win");
    }

    #[tokio::test]
    async fn a_changed_config_is_one_patch() {
        let env = TestEnv::start().await;
        let pd = env.create(sample_pd("pd-a", "pd")).await;
        let runner = Runner::new("t", [config_map()]);
        let mut s = state(&env, pd.clone());
        env.run(&runner, "k", &mut s).await;
        let first_hash = s.parts.config_hash.clone();

        let mut changed = pd;
        changed.spec.template.config = "[replication]\nmax-replicas = 5\n".into();
        let mut s = state(&env, changed);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("config_map").unwrap().message(), "patched");
        assert_eq!(env.write_log(), ["create configmaps/", "patch configmaps/pd-pd-a"]);
        let cm: ConfigMap = env.get("pd-pd-a").await;
        assert_eq!(toml_of(&cm)["replication"]["max-replicas"].as_integer(), Some(5));
        assert_ne!(s.parts.config_hash, first_hash, "the Pod sees the new config hash");
    }

    #[tokio::test]
    async fn an_invalid_config_is_reported_and_waits() {
        let env = TestEnv::start().await;
        let mut pd = sample_pd("pd-a", "pd");
        pd.spec.template.config = "[replication".into();
        let mut s = state(&env, pd);
        let report = env.run(&Runner::new("t", [config_map()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::INVALID_SPEC);
        assert_eq!(s.parts.config_hash, None);
        assert_eq!(env.write_log(), Vec::<String>::new());
    }
}
