//! How a PD member finds its cluster: the first members start together with
//! `--initial-cluster`, every later one `--join`s the running ones.
//!
//! The decision is made once, when the Pod is created, and carried forward from the
//! live Pod after that (PD ignores both flags once its data directory is initialised,
//! and a Pod's command cannot change without a restart). The initial list is rendered
//! only while the group is not bootstrapped, for instances created as initial members
//! (annotation `initial-cluster-num`); after bootstrap every new member joins.

use k8s_openapi::api::core::v1::Pod;
use kube::{Resource, ResourceExt};
use tikv_operator_api::PD;
use tikv_operator_api::names::ANNOTATION_INITIAL_CLUSTER_NUM;

use super::{advertise_client_url, advertise_peer_url};
use crate::common::Instance;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// `--initial-cluster=<name>=<peer url>,...`
    Initial(String),
    /// `--join=<client url>,...`
    Join(String),
}

impl Membership {
    pub fn flag(&self) -> String {
        match self {
            Membership::Initial(list) => format!("--initial-cluster={list}"),
            Membership::Join(urls) => format!("--join={urls}"),
        }
    }

    /// The flag in a live Pod's command, if any.
    pub fn from_pod(pod: &Pod) -> Option<Membership> {
        let container = pod.spec.as_ref()?.containers.first()?;
        let args = container.command.iter().flatten().chain(container.args.iter().flatten());
        for arg in args {
            if let Some(list) = arg.strip_prefix("--initial-cluster=") {
                return Some(Membership::Initial(list.to_string()));
            }
            if let Some(urls) = arg.strip_prefix("--join=") {
                return Some(Membership::Join(urls.to_string()));
            }
        }
        None
    }
}

/// Decides the membership flag of `pd`; `Err` names what to wait for.
pub fn membership(
    pd: &PD,
    bootstrapped: bool,
    peers: &[PD],
    live_pod: Option<&Pod>,
    tls: bool,
) -> Result<Membership, String> {
    if let Some(existing) = live_pod.and_then(Membership::from_pod) {
        return Ok(existing);
    }
    let initial_num = pd.annotations().get(ANNOTATION_INITIAL_CLUSTER_NUM);
    if !bootstrapped && let Some(num) = initial_num {
        let wanted: usize =
            num.parse().map_err(|_| format!("annotation {ANNOTATION_INITIAL_CLUSTER_NUM}={num} is not a number"))?;
        let mut initial: Vec<&PD> =
            peers.iter().filter(|p| p.annotations().get(ANNOTATION_INITIAL_CLUSTER_NUM) == Some(num)).collect();
        initial.sort_by_key(|p| p.name_any());
        if initial.len() != wanted {
            return Err(format!("{} of the {wanted} initial PD members exist; waiting for the rest", initial.len()));
        }
        let list: Vec<String> =
            initial.iter().map(|p| format!("{}={}", p.pod_name(), advertise_peer_url(p, tls))).collect();
        return Ok(Membership::Initial(list.join(",")));
    }
    let mut others: Vec<&PD> =
        peers.iter().filter(|p| p.name_any() != pd.name_any() && p.meta().deletion_timestamp.is_none()).collect();
    others.sort_by_key(|p| p.name_any());
    if others.is_empty() {
        return Err("no other PD member to join; waiting for one".into());
    }
    Ok(Membership::Join(others.iter().map(|p| advertise_client_url(p, tls)).collect::<Vec<_>>().join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_pd;

    fn initial(name: &str, num: &str) -> PD {
        let mut pd = sample_pd(name, "pd");
        pd.metadata.annotations = Some([(ANNOTATION_INITIAL_CLUSTER_NUM.to_string(), num.to_string())].into());
        pd
    }

    #[test]
    fn initial_members_list_each_other_once_all_exist() {
        let peers = [initial("pd-aaaaaa", "3"), initial("pd-bbbbbb", "3")];
        let error = membership(&peers[0], false, &peers, None, false).unwrap_err();
        assert!(error.contains("2 of the 3"), "{error}");

        let peers = [initial("pd-aaaaaa", "3"), initial("pd-bbbbbb", "3"), initial("pd-cccccc", "3")];
        let flag = membership(&peers[1], false, &peers, None, false).unwrap().flag();
        assert_eq!(
            flag,
            "--initial-cluster=pd-pd-aaaaaa=http://pd-pd-aaaaaa.pd-pd-peer.default.svc:2380,\
             pd-pd-bbbbbb=http://pd-pd-bbbbbb.pd-pd-peer.default.svc:2380,\
             pd-pd-cccccc=http://pd-pd-cccccc.pd-pd-peer.default.svc:2380"
        );
    }

    #[test]
    fn after_bootstrap_even_initial_members_join() {
        let peers = [initial("pd-aaaaaa", "1"), sample_pd("pd-bbbbbb", "pd")];
        let flag = membership(&peers[1], true, &peers, None, true).unwrap().flag();
        assert_eq!(flag, "--join=https://pd-pd-aaaaaa.pd-pd-peer.default.svc:2379");
        let flag = membership(&peers[0], true, &peers, None, false).unwrap().flag();
        assert!(flag.starts_with("--join="), "the initial list is never rendered again: {flag}");
    }

    #[test]
    fn a_live_pod_keeps_its_flag() {
        let peers = [initial("pd-aaaaaa", "1")];
        let pod = Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![k8s_openapi::api::core::v1::Container {
                    command: Some(vec!["/pd-server".into(), "--initial-cluster=a=b".into()]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Pod::default()
        };
        assert_eq!(membership(&peers[0], true, &peers, Some(&pod), false), Ok(Membership::Initial("a=b".into())));
    }

    #[test]
    fn a_lone_non_initial_member_waits() {
        let peers = [sample_pd("pd-aaaaaa", "pd")];
        assert!(membership(&peers[0], true, &peers, None, false).is_err());
    }
}
