//! Serving PD and the TiKV status servers over TLS the way PD does: the server presents
//! its certificate, and verifies a client certificate if one is presented (Go's
//! `VerifyClientCertIfGiven`). With `cert_allowed_cn` set, a client certificate is
//! required and its subject CN must be listed (etcd's check), else the handshake fails.

use std::sync::Arc;

use anyhow::Context;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

pub type TlsAcceptor = tokio_rustls::TlsAcceptor;

/// The TLS material one listener serves with, swappable while it runs: each new
/// connection's handshake uses what the slot holds then, and connections already open
/// keep theirs. Real PD (etcd's TLS helper) loads its certificate and key files on
/// every new handshake, and TiKV reloads its CA, certificate and key once the
/// certificate file changed; a simulated process that sees its mounted files change
/// puts the new material here ([`crate::Control::set_member_tls`],
/// [`crate::Control::set_store_tls`]).
#[derive(Clone, Default)]
pub struct TlsSlot {
    acceptor: Arc<std::sync::RwLock<Option<Arc<TlsAcceptor>>>>,
    presented: PresentedLog,
}

/// Which client certificate each request over TLS came with (an observation for tests;
/// it changes nothing the server does).
pub type PresentedLog = Arc<std::sync::Mutex<Vec<Presented>>>;

/// One request over TLS and the client certificate its connection presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    /// The listener's address.
    pub listener: std::net::SocketAddr,
    pub method: String,
    pub path: String,
    /// The serial number (lowercase hex) of the client's certificate, `None` without one.
    pub client_serial: Option<String>,
}

impl TlsSlot {
    pub fn new(acceptor: Option<Arc<TlsAcceptor>>, presented: PresentedLog) -> Self {
        TlsSlot { acceptor: Arc::new(std::sync::RwLock::new(acceptor)), presented }
    }

    /// What new handshakes use from now on.
    pub fn set(&self, acceptor: Option<Arc<TlsAcceptor>>) {
        *self.acceptor.write().unwrap_or_else(|p| p.into_inner()) = acceptor;
    }

    pub fn current(&self) -> Option<Arc<TlsAcceptor>> {
        self.acceptor.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn record(&self, presented: Presented) {
        self.presented.lock().unwrap_or_else(|p| p.into_inner()).push(presented);
    }
}

/// PEM texts, like PD's `[security]` `cacert-path`, `cert-path`, `key-path`, `cert-allowed-cn`.
#[derive(Clone, Debug, Default)]
pub struct TlsConfig {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_allowed_cn: Vec<String>,
}

pub fn acceptor(config: &TlsConfig) -> anyhow::Result<Arc<TlsAcceptor>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(config.ca_pem.as_bytes()) {
        roots.add(cert.context("CA certificate")?).context("CA certificate")?;
    }
    let certs = CertificateDer::pem_slice_iter(config.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("server certificate")?;
    let key = PrivateKeyDer::from_pem_slice(config.key_pem.as_bytes()).context("server key")?;
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let webpki =
        if config.cert_allowed_cn.is_empty() { builder.allow_unauthenticated().build() } else { builder.build() }
            .context("client verifier")?;
    let verifier = Arc::new(AllowedCn { inner: webpki, allowed: config.cert_allowed_cn.clone() });
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .context("server certificate and key")?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(TlsAcceptor::from(Arc::new(server))))
}

#[derive(Debug)]
struct AllowedCn {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedCn {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if self.allowed.is_empty() {
            return Ok(verified);
        }
        match subject_cn(end_entity.as_ref()) {
            Some(cn) if self.allowed.contains(&cn) => Ok(verified),
            cn => Err(rustls::Error::General(format!("CN {cn:?} is not in cert-allowed-cn"))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One DER TLV: (tag, content, rest).
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)? as usize;
    let (len, header) = if first & 0x80 == 0 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = len << 8 | *data.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let content = data.get(header..header + len)?;
    Some((tag, content, &data[header + len..]))
}

/// The serial number of an X.509 certificate, in lowercase hex.
pub fn serial_hex(der: &[u8]) -> Option<String> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let (tag, content, rest) = tlv(tbs)?;
    let serial = if tag == 0xa0 { tlv(rest)?.1 } else { content };
    Some(serial.iter().map(|b| format!("{b:02x}")).collect())
}

/// The subject common name of an X.509 certificate.
pub fn subject_cn(der: &[u8]) -> Option<String> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let (tag, _, rest) = tlv(tbs)?;
    let rest = if tag == 0xa0 { tlv(rest)?.2 } else { rest }; // version, then serial
    let rest = tlv(rest)?.2; // signature algorithm
    let rest = tlv(rest)?.2; // issuer
    let rest = tlv(rest)?.2; // validity
    let (_, mut subject, _) = tlv(rest)?;
    while !subject.is_empty() {
        let (_, mut set, next) = tlv(subject)?;
        subject = next;
        while !set.is_empty() {
            let (_, attribute, next) = tlv(set)?;
            set = next;
            let (_, oid, value) = tlv(attribute)?;
            if oid == [0x55, 0x04, 0x03] {
                let (_, text, _) = tlv(value)?;
                return String::from_utf8(text.to_vec()).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_subject_common_name_not_the_issuers() {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::OrganizationName, "org");
        ca.distinguished_name.push(rcgen::DnType::CommonName, "the-ca");
        let issuer = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.distinguished_name.push(rcgen::DnType::CountryName, "DE");
        leaf.distinguished_name.push(rcgen::DnType::CommonName, "tikv-client");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        assert_eq!(subject_cn(cert.der()).as_deref(), Some("tikv-client"));
        assert_eq!(subject_cn(issuer.der()).as_deref(), Some("the-ca"));
        assert_eq!(subject_cn(b"garbage"), None);
    }

    struct Pki {
        issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    }

    impl Pki {
        fn new() -> Self {
            let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            Pki { issuer: rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap() }
        }

        /// (certificate PEM, key PEM) with this serial.
        fn leaf(&self, serial: u8) -> (String, String) {
            let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
            params.serial_number = Some(rcgen::SerialNumber::from(vec![serial]));
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }

        fn server(&self, serial: u8) -> TlsConfig {
            let (cert_pem, key_pem) = self.leaf(serial);
            TlsConfig { ca_pem: self.issuer.pem(), cert_pem, key_pem, cert_allowed_cn: Vec::new() }
        }

        fn client(&self, serial: u8) -> reqwest::Client {
            let (cert, key) = self.leaf(serial);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut roots = RootCertStore::empty();
            roots.add(self.issuer.der().clone()).unwrap();
            let certs = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(certs, key)
                .unwrap();
            reqwest::Client::builder().tls_backend_preconfigured(config).tls_info(true).no_proxy().build().unwrap()
        }
    }

    async fn served_serial(client: &reqwest::Client, url: &str) -> String {
        let response = client.get(format!("{url}/pd/api/v1/ping")).send().await.unwrap();
        let info = response.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
        serial_hex(info.peer_certificate().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_member_serves_new_material_on_new_connections_and_open_ones_keep_theirs() {
        let pki = Pki::new();
        let sim =
            crate::PdSim::start(crate::Config { tls: Some(pki.server(0x0a)), ..crate::Config::fast() }).await.unwrap();
        let control = sim.control();
        let member = control.snapshot().members[0].name.clone();
        let url = control.snapshot().members[0].client_urls[0].clone();
        let pooled = pki.client(0x71);
        assert_eq!(served_serial(&pooled, &url).await, "0a");

        control.set_member_tls(&member, Some(&pki.server(0x0b))).await.unwrap();
        assert_eq!(served_serial(&pooled, &url).await, "0a", "an open connection keeps its handshake");
        assert_eq!(served_serial(&pki.client(0x72), &url).await, "0b", "a new connection gets the new certificate");

        let presented: Vec<Option<String>> = control.presented().into_iter().map(|p| p.client_serial).collect();
        assert_eq!(presented, vec![Some("71".to_owned()), Some("71".to_owned()), Some("72".to_owned())]);
        assert!(control.set_member_tls("nobody", None).await.is_err());
        sim.shutdown().await;
    }

    #[test]
    fn reads_the_serial_number() {
        let pki = Pki::new();
        let (cert, _) = pki.leaf(0x3c);
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        assert_eq!(serial_hex(der.as_ref()).as_deref(), Some("3c"));
        assert_eq!(serial_hex(b"garbage"), None);
    }
}
