//! TLS as the real binaries decide it from their `[security]` section.
//!
//! TiKV (tikv/tikv `components/security`): `ca-path`, `cert-path`, `key-path` are all set
//! or all empty, each file must open; with them set, its gRPC and status ports serve only
//! TLS and require a client certificate, and it dials PD and other TiKVs with TLS (the
//! endpoint's `http://`/`https://` prefix is stripped first: its own setting decides);
//! with them empty, it serves and dials plain. There is no mode that accepts both.
//!
//! PD (tikv/pd `server/config`, etcd `embed`): `cacert-path`, `cert-path`, `key-path`
//! give the certificates; each client or peer listen URL serves the scheme it names
//! (`https` with certificates, client certificate required when a CA is set; `http`
//! ignores the certificates); an `https` URL without certificates is fatal. Peers are
//! dialed by the scheme of the URL PD's membership holds for them.
//!
//! A TLS listener serves the files as read at start, through pd-sim's swappable slot
//! (`Control::set_member_tls`, `set_store_tls`); when the kubelet updates the Secret
//! volume, PD serves the new certificate and key on new handshakes with the CA it read
//! at start (etcd reads the client CA pool once), TiKV reloads all three. The transport
//! itself changes only with a restart.

use kube_sim::cluster::ContainerContext;
use kube_sim::cluster::runtime::Mount;

use super::{TlsPaths, toml_at};

/// One side of a connection: speaks TLS or plain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    #[default]
    Plain,
    Tls,
}

impl Transport {
    pub fn of_scheme(url: &str) -> Transport {
        if url.trim().starts_with("https://") { Transport::Tls } else { Transport::Plain }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls => "TLS",
        }
    }
}

/// The error a client of `from` meets at a server of `to`, as TiKV's gRPC or Go's TLS
/// stack words it; `None` when they match.
pub fn handshake(from: Transport, to: Transport) -> Option<&'static str> {
    match (from, to) {
        (Transport::Tls, Transport::Plain) => Some("tls: first record does not look like a TLS handshake"),
        (Transport::Plain, Transport::Tls) => Some("connection reset by peer (the server requires TLS)"),
        _ => None,
    }
}

/// The certificate files a `[security]` section names: their contents as read at start,
/// and where they are (read again when the kubelet updates the Secret volume).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Certificates {
    pub ca: String,
    pub cert: String,
    pub key: String,
    pub paths: TlsPaths,
}

impl Certificates {
    /// What pd-sim serves a listener with.
    pub fn serving(&self) -> pd_sim::TlsConfig {
        pd_sim::TlsConfig {
            ca_pem: self.ca.clone(),
            cert_pem: self.cert.clone(),
            key_pem: self.key.clone(),
            cert_allowed_cn: Vec::new(),
        }
    }

    /// The files again, as the container sees them through `mounts` (after the kubelet
    /// updated a Secret volume); `Err` when one cannot be read (the process keeps what
    /// it has).
    pub fn reload(&self, ctx: &ContainerContext, mounts: &[Mount]) -> Result<Certificates, String> {
        let tls = self.paths.load(ctx, mounts)?;
        Ok(Certificates { ca: tls.ca_pem, cert: tls.cert_pem, key: tls.key_pem, paths: self.paths.clone() })
    }
}

fn path(file: &toml::Table, section_key: &str) -> String {
    toml_at(file, &["security", section_key]).and_then(|v| v.as_str()).unwrap_or_default().to_owned()
}

fn open(ctx: &ContainerContext, tag: &str, path: &str) -> Result<String, String> {
    ctx.read_file(path).ok_or_else(|| format!("failed to open {path} to load {tag}: No such file or directory"))
}

/// TiKV's transport from its config file (`Err`: the fatal message).
pub fn tikv(ctx: &ContainerContext, file: &toml::Table) -> Result<(Transport, Option<Certificates>), String> {
    let (ca, cert, key) = (path(file, "ca-path"), path(file, "cert-path"), path(file, "key-path"));
    if ca.is_empty() && cert.is_empty() && key.is_empty() {
        return Ok((Transport::Plain, None));
    }
    if ca.is_empty() || cert.is_empty() || key.is_empty() {
        return Err("invalid configuration: ca, cert and private key should be all configured.".into());
    }
    let certs = Certificates {
        ca: open(ctx, "ca key", &ca)?,
        cert: open(ctx, "cert key", &cert)?,
        key: open(ctx, "private key", &key)?,
        paths: TlsPaths { ca, cert, key },
    };
    Ok((Transport::Tls, Some(certs)))
}

/// PD's certificates from its flags (`--cacert`, `--cert`, `--key`, given as `flag`) or
/// config file, if any (`Err`: the fatal message).
pub fn pd_certificates(
    ctx: &ContainerContext,
    file: &toml::Table,
    flag: impl Fn(&str) -> Option<String>,
) -> Result<Option<Certificates>, String> {
    let pick = |name: &str, key: &str| flag(name).unwrap_or_else(|| path(file, key));
    let (ca, cert, key) = (pick("cacert", "cacert-path"), pick("cert", "cert-path"), pick("key", "key-path"));
    if cert.is_empty() && key.is_empty() {
        return Ok(None);
    }
    let read =
        |tag: &str, p: &str| ctx.read_file(p).ok_or_else(|| format!("open {p}: no such file or directory ({tag})"));
    Ok(Some(Certificates {
        ca: if ca.is_empty() { String::new() } else { read("CA", &ca)? },
        cert: read("certificate", &cert)?,
        key: read("key", &key)?,
        paths: TlsPaths { ca, cert, key },
    }))
}

/// What one listen URL serves; an `https` URL without certificates is etcd's fatal error.
pub fn pd_listener(url: &str, certs: Option<&Certificates>, what: &str) -> Result<Transport, String> {
    match (Transport::of_scheme(url), certs) {
        (Transport::Tls, None) => Err(format!(
            "TLS key/cert (--cert-file, --key-file) must be provided for {what} url {url} with HTTPS scheme"
        )),
        (transport, _) => Ok(transport),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matching_transports_connect() {
        assert_eq!(handshake(Transport::Tls, Transport::Tls), None);
        assert_eq!(handshake(Transport::Plain, Transport::Plain), None);
        assert!(handshake(Transport::Tls, Transport::Plain).is_some());
        assert!(handshake(Transport::Plain, Transport::Tls).is_some());
    }

    #[test]
    fn a_pd_listener_serves_its_urls_scheme() {
        let certs = Certificates::default();
        assert_eq!(pd_listener("http://0.0.0.0:2379", Some(&certs), "client"), Ok(Transport::Plain));
        assert_eq!(pd_listener("https://0.0.0.0:2379", Some(&certs), "client"), Ok(Transport::Tls));
        assert_eq!(pd_listener("http://0.0.0.0:2380", None, "peer"), Ok(Transport::Plain));
        let err = pd_listener("https://0.0.0.0:2380", None, "peer").unwrap_err();
        assert!(err.contains("must be provided for peer url https://0.0.0.0:2380"), "{err}");
    }
}
