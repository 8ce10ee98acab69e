//! HTTPS, as a real kube-apiserver serves its API (with [`crate::Config::https`]): a
//! certificate for `127.0.0.1` and `localhost` signed by a CA made at start, which the
//! kubeconfig carries as `certificate-authority-data`. kubectl (client-go) sends a bearer
//! token only over https, so a kubeconfig with a token needs this listener; kube-rs sends
//! it over plain http too.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A CA and the server certificate it signed.
pub(crate) struct ServingCert {
    pub ca_pem: String,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

impl ServingCert {
    pub fn generate() -> anyhow::Result<ServingCert> {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "kube-sim-ca");
        let issuer = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate()?)?;
        let mut leaf = rcgen::CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "kubernetes.default.svc".to_owned(),
        ])?;
        leaf.distinguished_name.push(rcgen::DnType::CommonName, "kube-apiserver");
        let key = rcgen::KeyPair::generate()?;
        let cert = leaf.signed_by(&key, &issuer)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = vec![CertificateDer::from(cert.der().to_vec())];
        let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).context("server key")?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("server certificate and key")?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServingCert { ca_pem: issuer.pem(), acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)) })
    }
}

/// Serves `router` over TLS until `shutdown` turns true; open connections are then dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    acceptor: tokio_rustls::TlsAcceptor,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = TowerToHyperService::new(router.clone());
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}
