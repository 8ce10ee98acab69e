//! Logging setup: text or JSON, filtered by `RUST_LOG` (default `info`).
//!
//! What is logged never carries secret material: TLS Secrets are read only by the
//! Cluster controller's `register_pd`, turned at once into [`tikv_operator_pd::TlsMaterial`]
//! (whose `Debug` shows a fingerprint), and no task logs or reports a Secret's data. The
//! test below holds that with a TLS cluster, the JSON log and the Events of a full
//! reconcile of every controller, before and after every TLS Secret is rotated.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The JSON subscriber of `--log-format json`: one object per line, the event's
/// fields at the top level.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt().with_env_filter(filter).json().flatten_event(true).with_writer(writer).finish()
}

/// Installs the global subscriber; a second call does nothing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = match format {
        // Colours only on a terminal: container logs and files get plain text.
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .finish()
            .try_init(),
        LogFormat::Json => json_subscriber(filter, std::io::stdout).try_init(),
    };
}

/// Installs a text subscriber writing to stderr at `default_level` (overridden by
/// `RUST_LOG`), for modes where stdout belongs to something else.
pub fn init_stderr(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, ListParams};
    use tikv_operator_api::Cluster;
    use tikv_operator_api::cluster::TlsCluster;
    use tikv_operator_api::names;

    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_pd, sample_pd_group, sample_tikv, sample_tikv_group};

    /// Every line written, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    /// A CA and a client certificate with its key, as PEM.
    fn tls_pem() -> (String, String, String) {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["basic-pd".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
        (issuer.pem(), cert.pem(), key.serialize_pem())
    }

    /// The base64 lines of a PEM (what would leak), long enough not to occur by chance.
    fn secret_lines(pem: &str) -> Vec<String> {
        pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16).map(str::to_owned).collect()
    }

    fn secret_data(ca: &str, cert: &str, key: &str) -> BTreeMap<String, ByteString> {
        BTreeMap::from([
            ("ca.crt".to_string(), ByteString(ca.as_bytes().to_vec())),
            ("tls.crt".to_string(), ByteString(cert.as_bytes().to_vec())),
            ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
        ])
    }

    #[tokio::test]
    async fn no_secret_material_is_logged_or_put_in_events_with_a_tls_cluster_nor_when_it_is_rotated() {
        let env = TestEnv::start().await;
        let (ca, cert, key) = tls_pem();
        let secret_names = [
            names::cluster_client_secret_name("basic"),
            names::cluster_tls_secret_name("pd", names::COMPONENT_PD),
            names::cluster_tls_secret_name("tikv", names::COMPONENT_TIKV),
        ];
        for name in &secret_names {
            let mut secret = Secret { data: Some(secret_data(&ca, &cert, &key)), ..Secret::default() };
            secret.metadata.name = Some(name.clone());
            secret.metadata.namespace = Some("default".into());
            env.create(secret).await;
        }
        let mut cluster: Cluster = sample_cluster("basic");
        cluster.spec.tls_cluster = Some(TlsCluster { enabled: true });
        env.create(cluster).await;
        env.create(sample_pd_group("pd", 1)).await;
        env.create(sample_tikv_group("tikv", 1)).await;
        env.create(sample_pd("pd-aaaaaa", "pd")).await;
        env.create(sample_tikv("tikv-aaaaaa", "tikv")).await;

        let logs = Captured::default();
        let subscriber = json_subscriber(EnvFilter::new("debug"), logs.clone());
        let _guard = tracing::subscriber::set_default(subscriber);
        let ctx = env.ctx.clone();
        let key_ = crate::pd_registry::ClusterKey::new("default", "basic");
        let (rotated_ca, rotated_cert, rotated_key) = tls_pem();
        for pass in 0..4 {
            if pass == 2 {
                // Rotation: every Secret gets a new certificate and key.
                let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "default");
                for name in &secret_names {
                    let mut secret = secrets.get(name).await.unwrap();
                    secret.data = Some(secret_data(&rotated_ca, &rotated_cert, &rotated_key));
                    secrets.replace(name, &Default::default(), &secret).await.unwrap();
                }
                env.synced().await;
                env.clock.advance(ctx.config.certificate_check_interval);
            }
            let mut s = crate::cluster::state::ClusterState::new(ctx.clone(), "default", "basic");
            let report = env.run(&crate::cluster::runner(), "default/basic", &mut s).await;
            report.log();
            if pass == 0 {
                assert!(ctx.pd.get(&key_).is_some(), "{report}");
            }
            let mut s = crate::pdgroup::state::PdGroupState::new(ctx.clone(), "default", "pd");
            env.run(&crate::pdgroup::runner(), "default/pd", &mut s).await.log();
            let mut s = crate::tikvgroup::state::TikvGroupState::new(ctx.clone(), "default", "tikv");
            env.run(&crate::tikvgroup::runner(), "default/tikv", &mut s).await.log();
            let mut s = crate::pd::state::PdState::new(ctx.clone(), "default", "pd-aaaaaa");
            env.run(&crate::pd::runner(), "default/pd-aaaaaa", &mut s).await.log();
            let mut s = crate::tikv::state::TikvState::new(ctx.clone(), "default", "tikv-aaaaaa");
            env.run(&crate::tikv::runner(), "default/tikv-aaaaaa", &mut s).await.log();
        }
        let rotated =
            tikv_operator_pd::TlsMaterial::from_pem(rotated_ca.clone(), rotated_cert.clone(), rotated_key.clone())
                .unwrap();
        assert_eq!(ctx.pd.tls_fingerprint(&key_), Some(rotated.fingerprint()), "the rotation reached the PD client");

        let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let records: Vec<serde_json::Value> = logged.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let passes =
            records.iter().filter(|r| r["message"] == "reconcile pass" || r["message"] == "reconcile pass failed");
        assert!(passes.count() >= 20, "one record per pass of each controller:\n{logged}");
        let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "default");
        let events = serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items).unwrap();
        assert!(events.contains("CreatedPod") || events.contains("Created"), "events were recorded: {events}");
        let caches = &env.ctx.caches;
        let status = [
            serde_json::to_string(&caches.clusters.store().state().iter().map(|o| o.as_ref()).collect::<Vec<_>>())
                .unwrap(),
            serde_json::to_string(&caches.pds.store().state().iter().map(|o| o.as_ref()).collect::<Vec<_>>()).unwrap(),
            serde_json::to_string(&caches.tikvs.store().state().iter().map(|o| o.as_ref()).collect::<Vec<_>>())
                .unwrap(),
        ]
        .concat();
        for pem in [&ca, &cert, &key, &rotated_ca, &rotated_cert, &rotated_key] {
            for line in secret_lines(pem) {
                assert!(!logged.contains(&line), "a line of a TLS Secret was logged:\n{line}");
                assert!(!events.contains(&line), "a line of a TLS Secret is in an Event:\n{line}");
                assert!(!status.contains(&line), "a line of a TLS Secret is in a status");
            }
        }
        // Nor in any other encoding the API server would have handed out.
        for key in [key, rotated_key] {
            let key_base64 = serde_json::to_value(ByteString(key.into_bytes())).unwrap();
            let key_base64 = key_base64.as_str().unwrap();
            assert!(!logged.contains(&key_base64[..40]), "the key's base64 was logged");
        }
    }
}
