//! HTTPS with client certificates: pd-sim's `[security]` (with `cert-allowed-cn`) and
//! the client's `TlsMaterial` from the cluster client Secret.

use pd_sim::{Config, MemberSpec, PdSim, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tikv_operator_pd::{MemberReadiness, PdClient, PdError, RetryPolicy, TlsMaterial};

use crate::common::config;

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// (certificate PEM, key PEM)
    fn leaf(&self, cn: &str, sans: &[&str]) -> (String, String) {
        let mut params = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// The client Secret's content for a client certificate with this CN.
    fn material(&self, trusted: &Ca, cn: &str) -> TlsMaterial {
        let (cert, key) = self.leaf(cn, &[]);
        TlsMaterial::from_pem(trusted.pem(), cert, key).unwrap()
    }
}

async fn tls_sim(ca: &Ca, allowed_cn: &[&str]) -> PdSim {
    let (cert_pem, key_pem) = ca.leaf("pd", &["127.0.0.1", "localhost"]);
    let tls = TlsConfig {
        ca_pem: ca.pem(),
        cert_pem,
        key_pem,
        cert_allowed_cn: allowed_cn.iter().map(|s| (*s).to_owned()).collect(),
    };
    PdSim::start(Config { tls: Some(tls), members: 2, ..config() }).await.unwrap()
}

fn tls_client(urls: &[String], tls: TlsMaterial) -> PdClient {
    PdClient::builder(urls)
        .tls(tls)
        .retry(RetryPolicy { max_retries: 0, ..RetryPolicy::default() })
        .system_proxy(false)
        .build()
        .unwrap()
}

#[tokio::test]
async fn tls_with_client_certificates_and_allowed_cn() {
    let ca = Ca::new("cluster-ca");
    let sim = tls_sim(&ca, &["tikv-operator"]).await;
    assert!(sim.url().starts_with("https://"));
    let material = ca.material(&ca, "tikv-operator");
    let client = tls_client(&[sim.url()], material.clone());
    assert_eq!(client.tls_fingerprint(), Some(material.fingerprint()));

    let health = client.health().await.unwrap();
    assert_eq!(health.len(), 2);
    let members = client.members().await.unwrap();
    assert!(members.members.iter().all(|m| m.client_urls.iter().all(|u| u.starts_with("https://"))));
    sim.control().register_store("tikv-1:20160").await.unwrap();
    assert_eq!(client.stores(&[]).await.unwrap().len(), 1);
    // The members have loaded their regions a moment after bootstrap.
    sim.control().advance(std::time::Duration::from_secs(1));
    // Per-member readiness over TLS, on the advertised URL.
    let url = &members.members[0].client_urls[0];
    assert_eq!(client.member_ready(url).await.unwrap(), MemberReadiness::Ready);
    let joined = sim.control().add_member(MemberSpec::default()).await.unwrap();
    assert_eq!(client.member_ready(&joined.url).await.unwrap(), MemberReadiness::NotReady);

    // Without a scheme an endpoint gets https when TLS is set.
    let bare = sim.url().trim_start_matches("https://").to_owned();
    assert_eq!(tls_client(&[bare], material.clone()).cluster_id().await.unwrap(), members.cluster_id);

    // A CN that is not allowed, a client certificate from another CA, and plain HTTP:
    // all fail in the handshake (a transport error, never an answer).
    let intruder = tls_client(&[sim.url()], ca.material(&ca, "intruder"));
    let error = intruder.health().await.unwrap_err();
    assert!(matches!(error, PdError::Transport { .. }), "{error:?}");
    let stranger = tls_client(&[sim.url()], Ca::new("other-ca").material(&ca, "tikv-operator"));
    let error = stranger.health().await.unwrap_err();
    assert!(matches!(error, PdError::Transport { .. }), "{error:?}");
    let plain = crate::common::client_for([sim.url()]);
    let error = plain.health().await.unwrap_err();
    assert!(matches!(error, PdError::Transport { .. }), "{error:?}");
    // A client that does not trust the server's CA refuses it.
    let distrustful = tls_client(&[sim.url()], ca.material(&Ca::new("other-ca"), "tikv-operator"));
    let error = distrustful.health().await.unwrap_err();
    assert!(matches!(error, PdError::Transport { .. }), "{error:?}");

    // Rotating to good material fixes the intruder client in place.
    assert!(intruder.update_tls(Some(material.clone())).unwrap());
    assert!(!intruder.update_tls(Some(material)).unwrap());
    assert_eq!(intruder.health().await.unwrap().len(), 3);
}

#[tokio::test]
async fn tls_without_allowed_cn_accepts_any_certificate_of_the_ca() {
    let ca = Ca::new("cluster-ca");
    let sim = tls_sim(&ca, &[]).await;
    let client = tls_client(&[sim.url()], ca.material(&ca, "anyone"));
    assert_eq!(client.health().await.unwrap().len(), 2);
    assert_eq!(client.leader().await.unwrap().map(|m| m.client_urls[0].starts_with("https://")), Some(true));
}
