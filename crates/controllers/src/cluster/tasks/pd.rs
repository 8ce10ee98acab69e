//! `pd_url` and `register_pd`.
//!
//! `pd_url` reads the first PD group and records the URL of its client Service
//! (`http(s)://<group>-pd.<ns>.svc:<client port>`) in the status being built. The URL is
//! kept; its scheme is the TLS setting in force, which every pod is rendered with. When
//! `tlsCluster.enabled` differs from it (a change admitted only while suspended), the
//! scheme changes once a fresh list shows no pod of the cluster left (every instance
//! deletes its pod meanwhile, as for a suspension); until then Synced is False with
//! `TLSSwitchPending`. PD's members keep the peer URLs PD stores for them: each comes
//! back listening at its old one as well, until PD is told the new one (the PD
//! controller's `peer_url`). Reads the groups loaded and, only while a switch is
//! pending, the cluster's Pods from the API server.
//! Writes only the status being built (and an Event when the scheme changes). Complete;
//! Wait while there is no PD group; Fail if the Pods cannot be listed.
//!
//! `register_pd` starts (or keeps) the cluster's PD client and cache with that URL,
//! with the client certificate Secret when the URL is `https`. Writes nothing to
//! Kubernetes or PD. Complete; Wait while there is no URL or the Secret is missing or
//! invalid (its creation is the user's); Fail on an unexpected error. With TLS, Retry
//! after [`OperatorConfig::client_secret_recheck`]: see below.
//!
//! How a rotated client Secret reaches the PD client, without an operator restart:
//! every pass of a TLS cluster reads the Secret by name (one GET) and hands its content
//! to the registry, which rebuilds the client's connection pool when the content's
//! fingerprint changed (requests in flight finish on their old connections; new ones
//! present the new certificate). Passes come from the cluster's own changes, from a
//! PD poll that starts failing (a handshake refused because the old certificate expired
//! or its CA is no longer trusted shows up there, and the Secret is read at once), and
//! from this task's requeue at a bounded interval (1 min by default), so an idle
//! cluster picks up a rotation within a minute at the cost of one GET a minute and no
//! write.
//!
//! Chosen over a watch on the named Secrets (a field-selected watch per TLS cluster):
//! a watch needs `list` and `watch` on Secrets, which RBAC cannot narrow to these names
//! (they follow the Clusters' names, unknown to the chart), so the operator could then
//! enumerate every Secret of the namespaces it serves, where `get` alone names the one
//! it reads; and a watch per cluster is a long-lived connection per cluster for an
//! event that happens every few weeks, which the kubelet itself delivers to the pods
//! only a minute or so late. The operator's own certificate is renewed well before it
//! expires (cert-manager renews at two thirds of its life), so a minute does not matter.
//!
//! [`OperatorConfig::client_secret_recheck`]: crate::context::OperatorConfig::client_secret_recheck

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use tikv_operator_api::condition::reasons;
use tikv_operator_api::names;
use tikv_operator_pd::TlsMaterial;
use tikv_operator_task::{Node, Outcome, task};

use crate::cluster::state::ClusterState;
use crate::pd_registry::ClusterKey;

/// `url` with the scheme of the TLS setting `tls`.
fn with_scheme(url: &str, tls: bool) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    format!("{}://{rest}", if tls { "https" } else { "http" })
}

pub fn pd_url() -> Node<ClusterState> {
    task("pd_url", |s: &mut ClusterState| {
        Box::pin(async move {
            let wanted = s.pass.object.as_ref().is_some_and(tikv_operator_api::Cluster::tls_wanted);
            if let Some(url) = s.pass.status.pd.clone() {
                if url.starts_with("https://") == wanted {
                    return Outcome::complete(url);
                }
                let to = if wanted { "on" } else { "off" };
                let api: Api<Pod> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
                let params = ListParams::default().labels(&format!("{}={}", names::LABEL_CLUSTER, s.pass.name));
                let pods = match api.list(&params).await {
                    Ok(list) => list.items.len(),
                    Err(error) => return Outcome::fail(error),
                };
                if pods > 0 {
                    let message = format!(
                        "tlsCluster.enabled turned {to}: takes effect once every pod of the cluster is gone ({pods} left)"
                    );
                    s.pass.not_synced(reasons::TLS_SWITCH_PENDING, message.clone());
                    return Outcome::complete(message);
                }
                let new = with_scheme(&url, wanted);
                s.pass.status.pd = Some(new.clone());
                let note = format!("TLS turned {to}: no pod of the cluster is left; PD is now {new}");
                s.pass.event("TLSSwitched", "SwitchTLS", note.clone()).await;
                return Outcome::complete(note);
            }
            let Some(group) = s.pd_groups.iter().min_by_key(|g| g.metadata.creation_timestamp.clone().map(|t| t.0))
            else {
                return Outcome::wait("no PD group yet; waiting for one to be created");
            };
            let url = with_scheme(
                &format!(
                    "{}.{}.svc:{}",
                    names::pd_client_service_name(&group.name_any()),
                    s.pass.namespace,
                    group.spec.template.spec.server.ports.client
                ),
                wanted,
            );
            s.pass.status.pd = Some(url.clone());
            Outcome::complete(url)
        })
    })
}

pub fn register_pd() -> Node<ClusterState> {
    task("register_pd", |s: &mut ClusterState| {
        Box::pin(async move {
            let Some(url) = s.pass.status.pd.clone() else {
                return Outcome::wait("no PD URL yet");
            };
            let tls = if url.starts_with("https://") {
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
            let tls_on = tls.is_some();
            let recheck = s.pass.ctx.config.client_secret_recheck;
            match s.pass.ctx.pd.register(&key, &url, tls) {
                Ok(true) if tls_on => Outcome::retry(recheck, format!("polling PD at {url}")),
                Ok(true) => Outcome::complete(format!("polling PD at {url}")),
                Ok(false) if tls_on => Outcome::retry(recheck, "registered; the client Secret is read again later"),
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

    #[test]
    fn a_switch_changes_only_the_scheme() {
        assert_eq!(with_scheme("http://pd-pd.ns.svc:2379", true), "https://pd-pd.ns.svc:2379");
        assert_eq!(with_scheme("https://pd-pd.ns.svc:2379", false), "http://pd-pd.ns.svc:2379");
        assert_eq!(with_scheme("https://pd-pd.ns.svc:2379", true), "https://pd-pd.ns.svc:2379");
        assert_eq!(with_scheme("pd-pd.ns.svc:2379", false), "http://pd-pd.ns.svc:2379");
    }

    /// A Cluster recorded with `http`, asking for TLS (suspended).
    async fn turned_on(env: &crate::testing::TestEnv, pd_replicas: i32) -> ClusterState {
        let mut cluster = sample_cluster("basic");
        cluster.spec.tls_cluster = Some(tikv_operator_api::cluster::TlsCluster { enabled: true });
        cluster.spec.suspend_action = Some(tikv_operator_api::cluster::SuspendAction { suspend_compute: true });
        let cluster = env.create(cluster).await;
        let mut state = ClusterState::new(env.ctx.clone(), "default", "basic");
        state.pass = state.pass.with_object(cluster.clone()).with_cluster(cluster);
        state.pass.status.pd = Some("http://pd-pd.default.svc:2379".into());
        state.pd_groups = vec![sample_pd_group("pd", pd_replicas)];
        state
    }

    fn pod(name: &str) -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "labels": {names::LABEL_CLUSTER: "basic"}},
            "spec": {"containers": [{"name": "pd", "image": "pingcap/pd"}]}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn the_scheme_changes_once_no_pod_of_the_cluster_is_left() {
        let env = crate::testing::TestEnv::start().await;
        let mut state = turned_on(&env, 3).await;
        env.create(pod("pd-pd-abc123")).await;
        let runner = Runner::new("test", [pd_url()]);
        let report = env.run(&runner, "k", &mut state).await;
        assert_eq!(
            report.entry("pd_url").unwrap().message(),
            "tlsCluster.enabled turned on: takes effect once every pod of the cluster is gone (1 left)"
        );
        assert_eq!(state.pass.status.pd.as_deref(), Some("http://pd-pd.default.svc:2379"), "kept while a pod is left");
        assert_eq!(state.pass.unsynced[0].reason, reasons::TLS_SWITCH_PENDING);
        assert_eq!(env.requests(), ["list pods/"], "a fresh list of the cluster's pods, nothing written");

        let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(env.client.clone(), "default");
        api.delete("pd-pd-abc123", &Default::default()).await.unwrap();
        let mut state = ClusterState { pass: state.pass, ..turned_on_groups(3) };
        state.pass.unsynced.clear();
        env.sim.requests().reset();
        env.run(&runner, "k", &mut state).await;
        assert_eq!(state.pass.status.pd.as_deref(), Some("https://pd-pd.default.svc:2379"));
        assert!(state.pass.unsynced.is_empty());
        let requests = env.requests();
        assert_eq!(requests.iter().filter(|r| !r.starts_with("create events")).collect::<Vec<_>>(), ["list pods/"]);
        let events = env.events().await;
        assert_eq!(events.last().unwrap().1, "TLSSwitched", "{events:?}");

        // settled: nothing read, nothing written
        let mut cluster: tikv_operator_api::Cluster = env.get("basic").await;
        env.sim.requests().reset();
        cluster.status =
            Some(tikv_operator_api::cluster::ClusterStatus { pd: state.pass.status.pd.clone(), ..Default::default() });
        state.pass.object = Some(cluster);
        env.run(&runner, "k", &mut state).await;
        assert_eq!(env.requests(), Vec::<String>::new());
    }

    fn turned_on_groups(pd_replicas: i32) -> ClusterState {
        let mut s = ClusterState::new(offline_context(), "default", "basic");
        s.pd_groups = vec![sample_pd_group("pd", pd_replicas)];
        s
    }

    #[tokio::test]
    async fn an_https_url_registers_with_the_client_secret() {
        let ctx = offline_context();
        let mut state = ClusterState::new(ctx.clone(), "ns", "basic");
        state.pass = state.pass.with_object(sample_cluster("basic"));
        state.pass.status.pd = Some("https://127.0.0.1:9".into());
        // the Secret cannot be read (no API server here): the scheme, not the spec, asked for it
        let report = Runner::new("test", [register_pd()]).run("k", &mut state).await;
        assert_eq!(report.outcome(), tikv_operator_task::OutcomeKind::Fail, "{report}");
        assert!(ctx.pd.get(&ClusterKey::new("ns", "basic")).is_none());
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

    /// A client Secret: a CA and a client certificate it signed, with its key.
    fn client_secret(ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>) -> Secret {
        use k8s_openapi::ByteString;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap().signed_by(&key, ca).unwrap();
        let mut secret = Secret {
            data: Some(
                [
                    ("ca.crt".to_owned(), ByteString(ca.pem().into_bytes())),
                    ("tls.crt".to_owned(), ByteString(cert.pem().into_bytes())),
                    ("tls.key".to_owned(), ByteString(key.serialize_pem().into_bytes())),
                ]
                .into(),
            ),
            ..Secret::default()
        };
        secret.metadata.name = Some(names::cluster_client_secret_name("basic"));
        secret.metadata.namespace = Some("default".into());
        secret
    }

    #[tokio::test]
    async fn a_rotated_client_secret_reaches_the_pd_client_and_is_read_again_at_an_interval() {
        let env = crate::testing::TestEnv::start().await;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let first = env.create(client_secret(&ca)).await;
        let mut cluster = sample_cluster("basic");
        cluster.spec.tls_cluster = Some(tikv_operator_api::cluster::TlsCluster { enabled: true });
        let key = ClusterKey::new("default", "basic");
        let pass = |cluster: &tikv_operator_api::Cluster| {
            let mut state = ClusterState::new(env.ctx.clone(), "default", "basic");
            state.pass = state.pass.with_object(cluster.clone()).with_cluster(cluster.clone());
            state.pass.status.pd = Some("https://127.0.0.1:9".into());
            state
        };
        let runner = Runner::new("test", [register_pd()]);
        let report = runner.run("k", &mut pass(&cluster)).await;
        assert!(
            matches!(report.action(), tikv_operator_task::PassResult::RequeueAfter(d) if d == env.ctx.config.client_secret_recheck)
        );
        let before = env.ctx.pd.tls_fingerprint(&key).expect("TLS material in use");
        assert_eq!(before, TlsMaterial::from_secret(&first).unwrap().fingerprint());

        // Nothing changed: the same client, one read, no write.
        env.sim.requests().reset();
        let report = runner.run("k", &mut pass(&cluster)).await;
        assert_eq!(report.entry("register_pd").unwrap().message(), "registered; the client Secret is read again later");
        assert_eq!(env.ctx.pd.tls_fingerprint(&key), Some(before));
        assert_eq!(env.requests(), vec!["get secrets/basic-cluster-client-secret".to_string()]);
        assert_eq!(env.writes(), 0);

        // A new leaf from the same CA: the client follows, no restart, no new cache.
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "default");
        let rotated = client_secret(&ca);
        secrets
            .replace(
                &names::cluster_client_secret_name("basic"),
                &Default::default(),
                &Secret { metadata: first.metadata.clone(), ..rotated.clone() },
            )
            .await
            .unwrap();
        let report = runner.run("k", &mut pass(&cluster)).await;
        assert!(!report.entry("register_pd").unwrap().message().starts_with("polling"), "the cache is kept");
        let after = env.ctx.pd.tls_fingerprint(&key).unwrap();
        assert_ne!(after, before);
        assert_eq!(after, TlsMaterial::from_secret(&rotated).unwrap().fingerprint());
    }
}
