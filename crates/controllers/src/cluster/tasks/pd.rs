//! `pd_url` and `register_pd`.
//!
//! `pd_url` reads the first PD group and records the URL of its client Service
//! (`http(s)://<group>-pd.<ns>.svc:<client port>`) in the status being built; it is
//! set once and kept. Pure: Complete, or Wait while there is no PD group.
//!
//! `register_pd` starts (or keeps) the cluster's PD client and cache with that URL,
//! with the client certificate Secret when `tlsCluster` is on. Writes nothing to
//! Kubernetes or PD. Complete; Wait while there is no URL or the Secret is missing or
//! invalid (its creation is the user's); Fail on an unexpected error.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use tikv_operator_api::names;
use tikv_operator_pd::TlsMaterial;
use tikv_operator_task::{Node, Outcome, sync_task, task};

use crate::cluster::state::ClusterState;
use crate::pd_registry::ClusterKey;

pub fn pd_url() -> Node<ClusterState> {
    sync_task("pd_url", |s: &mut ClusterState| {
        if let Some(url) = &s.pass.status.pd {
            return Outcome::complete(url.clone());
        }
        let Some(group) = s.pd_groups.iter().min_by_key(|g| g.metadata.creation_timestamp.clone().map(|t| t.0)) else {
            return Outcome::wait("no PD group yet; waiting for one to be created");
        };
        let scheme = if s.pass.tls_enabled() { "https" } else { "http" };
        let url = format!(
            "{scheme}://{}.{}.svc:{}",
            names::pd_client_service_name(&group.name_any()),
            s.pass.namespace,
            group.spec.template.spec.server.ports.client
        );
        s.pass.status.pd = Some(url.clone());
        Outcome::complete(url)
    })
}

pub fn register_pd() -> Node<ClusterState> {
    task("register_pd", |s: &mut ClusterState| {
        Box::pin(async move {
            let Some(url) = s.pass.status.pd.clone() else {
                return Outcome::wait("no PD URL yet");
            };
            let tls = if s.pass.tls_enabled() {
                let name = names::cluster_client_secret_name(&s.pass.name);
                let secrets: Api<Secret> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
                match secrets.get_opt(&name).await {
                    Ok(Some(secret)) => match TlsMaterial::from_secret(&secret) {
                        Ok(material) => Some(material),
                        Err(error) => {
                            s.pass.not_synced(
                                tikv_operator_api::condition::reasons::INVALID_SPEC,
                                format!("Secret {name}: {error}"),
                            );
                            return Outcome::wait(format!(
                                "Secret {name} is not usable: {error}; waiting for it to be fixed"
                            ));
                        }
                    },
                    Ok(None) => {
                        s.pass.not_synced(
                            tikv_operator_api::condition::reasons::PD_UNAVAILABLE,
                            format!("Secret {name} is missing"),
                        );
                        return Outcome::wait(format!("TLS is on and Secret {name} does not exist; waiting for it"));
                    }
                    Err(error) => return Outcome::fail(error),
                }
            } else {
                None
            };
            let key = ClusterKey::new(
                s.pass.namespace.clone(),
                s.pass.object.as_ref().map(|c| c.name_any()).unwrap_or_default(),
            );
            match s.pass.ctx.pd.register(&key, &url, tls) {
                Ok(true) => Outcome::complete(format!("polling PD at {url}")),
                Ok(false) => Outcome::complete("registered"),
                Err(error) => Outcome::fail(error),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{offline_context, sample_cluster, sample_pd_group};
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn the_url_is_the_client_service_of_the_first_pd_group_and_is_kept() {
        let mut state = ClusterState::new(offline_context(), "ns", "basic");
        state.pass = state.pass.with_object(sample_cluster("basic"));
        let runner = Runner::new("test", [pd_url()]);
        let report = runner.run("k", &mut state).await;
        assert_eq!(report.outcome(), tikv_operator_task::OutcomeKind::Wait);

        state.pd_groups = vec![sample_pd_group("pd", 3)];
        runner.run("k", &mut state).await;
        assert_eq!(state.pass.status.pd.as_deref(), Some("http://pd-pd.ns.svc:2379"));

        state.pd_groups = vec![sample_pd_group("other", 3)];
        runner.run("k", &mut state).await;
        assert_eq!(state.pass.status.pd.as_deref(), Some("http://pd-pd.ns.svc:2379"), "set once");
    }

    #[tokio::test]
    async fn tls_means_https() {
        let mut cluster = sample_cluster("basic");
        cluster.spec.tls_cluster = Some(tikv_operator_api::cluster::TlsCluster { enabled: true });
        let mut state = ClusterState::new(offline_context(), "ns", "basic");
        state.pass = state.pass.with_object(cluster.clone()).with_cluster(cluster);
        state.pd_groups = vec![sample_pd_group("pd", 3)];
        Runner::new("test", [pd_url()]).run("k", &mut state).await;
        assert_eq!(state.pass.status.pd.as_deref(), Some("https://pd-pd.ns.svc:2379"));
    }

    #[tokio::test]
    async fn registering_starts_the_cache_once() {
        let ctx = offline_context();
        let mut state = ClusterState::new(ctx.clone(), "ns", "basic");
        state.pass = state.pass.with_object(sample_cluster("basic"));
        state.pass.status.pd = Some("http://127.0.0.1:9".into());
        let runner = Runner::new("test", [register_pd()]);
        assert!(runner.run("k", &mut state).await.entry("register_pd").unwrap().message().starts_with("polling"));
        assert_eq!(runner.run("k", &mut state).await.entry("register_pd").unwrap().message(), "registered");
        assert!(ctx.pd.get(&ClusterKey::new("ns", "basic")).is_some());
    }
}
