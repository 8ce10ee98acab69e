//! TLS material for talking to PD: the cluster CA and the client certificate, as found
//! in the cluster's client Secret (`ca.crt`, `tls.crt`, `tls.key`).
//!
//! The client trusts only `ca.crt` and always presents the client certificate (PD
//! verifies client certificates when presented and may require a listed CN).

use std::fmt;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Keys of the client Secret.
pub const CA_KEY: &str = "ca.crt";
pub const CERT_KEY: &str = "tls.crt";
pub const KEY_KEY: &str = "tls.key";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the Secret has no key {0:?}")]
    MissingKey(&'static str),
    #[error("{0:?} holds no PEM certificate")]
    NoCertificate(&'static str),
    #[error("{key:?} is not valid PEM: {message}")]
    InvalidPem { key: &'static str, message: String },
    #[error("tls.key holds no private key")]
    NoPrivateKey,
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("not an X.509 certificate: {0}")]
    InvalidCertificate(String),
}

/// SHA-256 over the CA, certificate and key, to notice when a Secret's content changed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// PEM text of the CA bundle, the client certificate chain and its private key.
/// Validated when made; the private key never appears in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial").field("fingerprint", &self.fingerprint()).finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// From PEM text; fails unless each part holds what it should.
    pub fn from_pem(
        ca_pem: impl Into<Vec<u8>>,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Result<Self, TlsError> {
        let material = TlsMaterial { ca_pem: ca_pem.into(), cert_pem: cert_pem.into(), key_pem: key_pem.into() };
        material.ca_certs()?;
        material.cert_chain()?;
        material.private_key()?;
        Ok(material)
    }

    /// From a `kubernetes.io/tls`-style Secret with `ca.crt`, `tls.crt` and `tls.key`
    /// in `data` (or, for a Secret not yet written by the API server, `stringData`).
    pub fn from_secret(secret: &Secret) -> Result<Self, TlsError> {
        let get = |key: &'static str| -> Result<Vec<u8>, TlsError> {
            if let Some(value) = secret.data.as_ref().and_then(|d| d.get(key)) {
                return Ok(value.0.clone());
            }
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.as_bytes().to_vec())
                .ok_or(TlsError::MissingKey(key))
        };
        Self::from_pem(get(CA_KEY)?, get(CERT_KEY)?, get(KEY_KEY)?)
    }

    /// Changes whenever any of the three parts changes.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [&self.ca_pem, &self.cert_pem, &self.key_pem] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Fingerprint(out)
    }

    fn ca_certs(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        certs(&self.ca_pem, CA_KEY)
    }

    fn cert_chain(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        certs(&self.cert_pem, CERT_KEY)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey,
            other => TlsError::InvalidPem { key: KEY_KEY, message: other.to_string() },
        })
    }

    /// A rustls client configuration (ring provider) trusting the CA and presenting the
    /// client certificate.
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in self.ca_certs()? {
            roots.add(cert)?;
        }
        let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(self.cert_chain()?, self.private_key()?)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.resumption = member_sessions();
        Ok(config)
    }
}

impl TlsMaterial {
    /// [`client_config`](Self::client_config), keeping the leaf certificate of the
    /// server it verifies in `seen` (for looking at what a server presents: reqwest
    /// does not hand out the handshake's details for connections through a proxy).
    pub(crate) fn recording_client_config(
        &self,
        seen: Arc<Mutex<Option<Vec<u8>>>>,
    ) -> Result<rustls::ClientConfig, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in self.ca_certs()? {
            roots.add(cert)?;
        }
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
            .build()
            .map_err(|e| TlsError::InvalidCertificate(e.to_string()))?;
        let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Recording { inner, seen }))
            .with_client_auth_cert(self.cert_chain()?, self.private_key()?)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.resumption = member_sessions();
        Ok(config)
    }
}

/// Verifies as WebPKI does, and keeps the leaf it verified.
#[derive(Debug)]
struct Recording {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
}

impl rustls::client::danger::ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(end_entity.to_vec());
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn certs(pem: &[u8], key: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::InvalidPem { key, message: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(key));
    }
    Ok(certs)
}

/// One provider for every client (each Cluster has its own PD client; a provider per
/// client cost about 14 KB each).
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<rustls::crypto::CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// A rustls configuration for plain-HTTP clients: reqwest insists on building one, and
/// we never rely on a process-wide default provider. It trusts nothing, so an
/// `https://` URL without [`TlsMaterial`] fails instead of trusting by accident.
pub(crate) fn no_tls_config() -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    // Never used for a handshake: no session cache (rustls' default allocates room for
    // 256 sessions up front, per client, i.e. per cluster).
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// TLS sessions a PD client resumes: one per member of a cluster's PD group, for the
/// largest groups run (rustls' default of 256 would be allocated per cluster).
fn member_sessions() -> rustls::client::Resumption {
    rustls::client::Resumption::in_memory_sessions(16)
}

/// What the operator reports of a certificate: when it ends and which one it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The end of its validity (`notAfter`).
    pub not_after: jiff::Timestamp,
    /// Its serial number in lowercase hex (unique per issuer: tells certificates apart).
    pub serial_number: String,
}

impl CertificateSummary {
    /// Reads a DER certificate (what a TLS handshake presents).
    pub fn from_der(der: &[u8]) -> Result<Self, TlsError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::InvalidCertificate(e.to_string()))?;
        let seconds = cert.validity().not_after.timestamp();
        let not_after = jiff::Timestamp::from_second(seconds)
            .map_err(|e| TlsError::InvalidCertificate(format!("notAfter out of range: {e}")))?;
        let serial_number = cert.tbs_certificate.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
        Ok(CertificateSummary { not_after, serial_number })
    }
}
