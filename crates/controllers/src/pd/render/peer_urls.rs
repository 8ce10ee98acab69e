//! Where a PD member's peers reach it, and where it listens: the planning behind a TLS
//! switch of a running PD membership.
//!
//! PD's etcd keeps each member's peer URL in its membership and dials the member there,
//! whatever the member's flags say after its first start; only etcd's MemberUpdate
//! changes it. So a member whose stored URL has the old scheme cannot simply restart
//! with the new one: its peers would dial it with the wrong scheme. It restarts
//! listening at both — the stored URL, and the new scheme on the other peer port (one
//! port serves one scheme) — PD is told the new URL, and a last restart drops the old
//! listener. With no stored URL known (a new member, or PD never read), the member is
//! rendered as a new one: the new scheme on the group's peer port.

use tikv_operator_api::PD;

use super::{host, scheme};

/// A member's peer URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerUrls {
    /// `--advertise-peer-urls`: where the member asks to be reached (used when it joins).
    pub advertise: String,
    /// `--peer-urls`: what it listens at.
    pub listen: Vec<String>,
    /// The URL PD is to store for it, while PD stores one with the other scheme.
    pub update_to: Option<String>,
}

impl PeerUrls {
    /// The ports listened at, in the order of [`PeerUrls::listen`].
    pub fn listen_ports(&self) -> Vec<i32> {
        self.listen.iter().filter_map(|u| scheme_and_port(u)).map(|(_, port)| port).collect()
    }

    /// A listener serves TLS: the member needs the cluster certificates, even while
    /// TLS is being turned off (its old listener serves them until PD stops dialing it).
    pub fn needs_certificates(&self) -> bool {
        self.listen.iter().any(|u| u.starts_with("https://"))
    }
}

/// `scheme://host:port` → (TLS, port).
fn scheme_and_port(url: &str) -> Option<(bool, i32)> {
    let (scheme, rest) = url.split_once("://")?;
    let tls = match scheme {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let authority = rest.split('/').next()?;
    let port = authority.rsplit_once(':')?.1.parse().ok()?;
    Some((tls, port))
}

/// The peer port the new scheme takes while the old one still serves `port`.
fn other_port(port: i32, group_port: i32) -> i32 {
    if port != group_port {
        group_port
    } else if group_port < 65535 {
        group_port + 1
    } else {
        group_port - 1
    }
}

/// The peer URLs of `pd` under the TLS setting `tls`, given the URL PD stores for it
/// (`None`: unknown, or not a member yet).
pub fn peer_urls(pd: &PD, tls: bool, stored: Option<&str>) -> PeerUrls {
    let group_port = pd.spec.template.server.ports.peer;
    let url = |tls: bool, port: i32| format!("{}://{}:{port}", scheme(tls), host(pd));
    let listen = |tls: bool, port: i32| format!("{}://0.0.0.0:{port}", scheme(tls));
    match stored.and_then(scheme_and_port) {
        None => PeerUrls { advertise: url(tls, group_port), listen: vec![listen(tls, group_port)], update_to: None },
        Some((stored_tls, port)) if stored_tls == tls => {
            PeerUrls { advertise: url(tls, port), listen: vec![listen(tls, port)], update_to: None }
        }
        Some((stored_tls, port)) => {
            let new_port = other_port(port, group_port);
            PeerUrls {
                advertise: url(tls, new_port),
                listen: vec![listen(stored_tls, port), listen(tls, new_port)],
                update_to: Some(url(tls, new_port)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_pd;

    const HOST: &str = "pd-pd-abc123.pd-pd-peer.default.svc";

    #[test]
    fn a_new_member_takes_the_groups_port_with_the_setting_in_force() {
        let pd = sample_pd("pd-abc123", "pd");
        for tls in [false, true] {
            let s = scheme(tls);
            assert_eq!(
                peer_urls(&pd, tls, None),
                PeerUrls {
                    advertise: format!("{s}://{HOST}:2380"),
                    listen: vec![format!("{s}://0.0.0.0:2380")],
                    update_to: None
                }
            );
        }
    }

    #[test]
    fn a_stored_url_of_the_same_scheme_is_kept_with_its_port() {
        let pd = sample_pd("pd-abc123", "pd");
        let stored = format!("https://{HOST}:2381");
        assert_eq!(
            peer_urls(&pd, true, Some(&stored)),
            PeerUrls { advertise: stored.clone(), listen: vec!["https://0.0.0.0:2381".into()], update_to: None }
        );
    }

    #[test]
    fn a_stored_url_of_the_other_scheme_is_served_beside_the_new_one_until_pd_stores_the_new() {
        let pd = sample_pd("pd-abc123", "pd");
        // On: plain on the group's port stays, TLS on the next one.
        let on = peer_urls(&pd, true, Some(&format!("http://{HOST}:2380")));
        assert_eq!(on.listen, ["http://0.0.0.0:2380", "https://0.0.0.0:2381"]);
        assert_eq!(on.update_to.as_deref(), Some(format!("https://{HOST}:2381").as_str()));
        assert_eq!(on.advertise, format!("https://{HOST}:2381"));
        // Off again: TLS on 2381 stays, plain goes back to the group's port.
        assert!(on.needs_certificates());
        let off = peer_urls(&pd, false, Some(&format!("https://{HOST}:2381")));
        assert_eq!(off.listen, ["https://0.0.0.0:2381", "http://0.0.0.0:2380"]);
        assert!(off.needs_certificates(), "the old listener serves TLS until PD stops dialing it");
        assert!(!peer_urls(&pd, false, Some(&format!("http://{HOST}:2380"))).needs_certificates());
        assert_eq!(off.update_to.as_deref(), Some(format!("http://{HOST}:2380").as_str()));
        // A member born with TLS on the group's port.
        let born = peer_urls(&pd, false, Some(&format!("https://{HOST}:2380")));
        assert_eq!(born.listen, ["https://0.0.0.0:2380", "http://0.0.0.0:2381"]);
    }

    #[test]
    fn an_unreadable_stored_url_counts_as_unknown() {
        let pd = sample_pd("pd-abc123", "pd");
        for stored in ["", "unix:///x", "https://host", "http://host:port"] {
            assert_eq!(peer_urls(&pd, false, Some(stored)), peer_urls(&pd, false, None), "{stored:?}");
        }
    }
}
