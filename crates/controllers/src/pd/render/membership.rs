//! How a PD member finds its cluster: the members of the initial cluster start with
//! `--initial-cluster`, every member added later `--join`s the running ones.
//!
//! An initial member is a PD instance created while the group was not bootstrapped
//! (annotation `initial-cluster-num`). etcd reserves every name of the initial list
//! when the first members form the cluster, so an initial member whose Pod appears
//! late (before or after `spec.bootstrapped`) must start with exactly the list the
//! others started with (the cluster ID derives from it); with `--join` PD refuses it
//! forever ("missing data or join a duplicated pd"). Hence the decision never depends
//! on when the Pod is created, only on who belongs to the initial cluster:
//!
//! 1. A live Pod keeps its flag (its command cannot change without a restart, and PD
//!    ignores both flags once its data directory is initialised).
//! 2. A peer Pod that started with `--initial-cluster` is the record of the list: a
//!    member named in it starts with that very list; one not named in it joins.
//! 3. Otherwise the list is rebuilt from the instances: all `N` instances annotated
//!    `initial-cluster-num=N`, sorted by name (the rendering the first Pods got).
//! 4. Members that are not initial join, and only once the group is bootstrapped
//!    (joining a cluster that has not formed would change its quorum).
//!
//! 5. A member removed from PD because its data was lost joins again (a new member).
//!
//! Where the list cannot be known for sure (an initial instance is missing and no Pod
//! carries the list, or Pods disagree), the member waits with a message saying why.
//! The one exception is a member that has been Ready before: its data directory holds
//! its membership, so PD ignores the flag and it joins (without data PD would refuse
//! that loudly rather than start a second member under the same name).

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

/// What the decision reads: the instance, its group and the group's Pods.
pub struct MembershipInputs<'a> {
    pub pd: &'a PD,
    pub bootstrapped: bool,
    /// Every PD instance of the group, this one included.
    pub peers: &'a [PD],
    /// This instance's Pod.
    pub live_pod: Option<&'a Pod>,
    /// The Pods of the group's other members (read only while this one has none).
    pub peer_pods: &'a [Pod],
    pub tls: bool,
    /// The instance's member was removed from PD because its data was lost: it joins
    /// again as a new member, whatever list it started with before.
    pub rejoin: bool,
}

/// Decides the membership flag of `pd`; `Err` says what to wait for, and why.
pub fn membership(i: &MembershipInputs) -> Result<Membership, String> {
    if let Some(existing) = i.live_pod.and_then(Membership::from_pod) {
        return Ok(existing);
    }
    if i.rejoin {
        return join(i);
    }
    let me = i.pd.pod_name();
    if let Some(list) = started_initial_list(i.peer_pods, &me)? {
        return if list_names(&list).any(|name| name == me) { Ok(Membership::Initial(list)) } else { join(i) };
    }
    let Some(num) = i.pd.annotations().get(ANNOTATION_INITIAL_CLUSTER_NUM) else {
        return join(i);
    };
    let wanted: usize =
        num.parse().map_err(|_| format!("annotation {ANNOTATION_INITIAL_CLUSTER_NUM}={num} is not a number"))?;
    let mut initial: Vec<&PD> =
        i.peers.iter().filter(|p| p.annotations().get(ANNOTATION_INITIAL_CLUSTER_NUM) == Some(num)).collect();
    initial.sort_by_key(|p| p.name_any());
    if initial.len() == wanted {
        let list: Vec<String> =
            initial.iter().map(|p| format!("{}={}", p.pod_name(), advertise_peer_url(p, i.tls))).collect();
        return Ok(Membership::Initial(list.join(",")));
    }
    if !i.bootstrapped {
        return Err(format!("{} of the {wanted} initial PD members exist; waiting for the rest", initial.len()));
    }
    if has_been_ready(i.pd) {
        return join(i);
    }
    Err(format!(
        "cannot tell which --initial-cluster list this initial member must start with: {} of the {wanted} \
         initial PD instances remain and no PD Pod of the group carries the list; starting with another list \
         or with --join would be refused by PD",
        initial.len()
    ))
}

/// `--join` the other members, once the initial cluster has formed.
fn join(i: &MembershipInputs) -> Result<Membership, String> {
    if !i.bootstrapped {
        return Err("not an initial member: waiting for the PD cluster to form before joining it".into());
    }
    let mut others: Vec<&PD> =
        i.peers.iter().filter(|p| p.name_any() != i.pd.name_any() && p.meta().deletion_timestamp.is_none()).collect();
    others.sort_by_key(|p| p.name_any());
    if others.is_empty() {
        return Err("no other PD member to join; waiting for one".into());
    }
    Ok(Membership::Join(others.iter().map(|p| advertise_client_url(p, i.tls)).collect::<Vec<_>>().join(",")))
}

/// The `--initial-cluster` list the group's other Pods started with (the first by Pod
/// name when several carry it); `Err` when they disagree.
fn started_initial_list(peer_pods: &[Pod], me: &str) -> Result<Option<String>, String> {
    let mut pods: Vec<&Pod> = peer_pods.iter().filter(|p| p.name_any() != me).collect();
    pods.sort_by_key(|p| p.name_any());
    let mut found: Option<(String, String)> = None;
    for pod in pods {
        let Some(Membership::Initial(list)) = Membership::from_pod(pod) else { continue };
        match &found {
            None => found = Some((pod.name_any(), list)),
            Some((first, known)) if sorted_entries(known) != sorted_entries(&list) => {
                return Err(format!(
                    "PD Pods {first} and {} started with different --initial-cluster lists; \
                     cannot tell which one this member belongs to",
                    pod.name_any()
                ));
            }
            Some(_) => {}
        }
    }
    Ok(found.map(|(_, list)| list))
}

fn list_names(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').filter_map(|entry| entry.split_once('=').map(|(name, _)| name.trim()))
}

fn sorted_entries(list: &str) -> Vec<&str> {
    let mut entries: Vec<&str> = list.split(',').map(str::trim).collect();
    entries.sort_unstable();
    entries
}

/// Ready once means PD ran as this member: its data directory is initialised.
fn has_been_ready(pd: &PD) -> bool {
    pd.status.as_ref().is_some_and(|s| s.common.current_revision.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_pd;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    const ABC: &str = "pd-pd-a=http://pd-pd-a.pd-pd-peer.default.svc:2380,\
                       pd-pd-b=http://pd-pd-b.pd-pd-peer.default.svc:2380,\
                       pd-pd-c=http://pd-pd-c.pd-pd-peer.default.svc:2380";

    fn initial(name: &str, num: &str) -> PD {
        let mut pd = sample_pd(name, "pd");
        pd.metadata.annotations = Some([(ANNOTATION_INITIAL_CLUSTER_NUM.to_string(), num.to_string())].into());
        pd
    }

    fn abc() -> Vec<PD> {
        vec![initial("pd-a", "3"), initial("pd-b", "3"), initial("pd-c", "3")]
    }

    fn pod(name: &str, flag: &str) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(PodSpec {
                containers: vec![Container {
                    command: Some(vec!["/pd-server".into(), format!("--name={name}"), flag.into()]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Pod::default()
        }
    }

    fn ready_before(mut pd: PD) -> PD {
        let mut status = tikv_operator_api::PDStatus::default();
        status.common.current_revision = Some("rev-1".into());
        pd.status = Some(status);
        pd
    }

    /// The decision for the instance named `name` among `peers`.
    fn decide(name: &str, bootstrapped: bool, peers: &[PD], peer_pods: &[Pod]) -> Result<Membership, String> {
        let pd = peers.iter().find(|p| p.name_any() == name).unwrap();
        membership(&MembershipInputs { pd, bootstrapped, peers, live_pod: None, peer_pods, tls: false, rejoin: false })
    }

    #[test]
    fn initial_members_list_each_other_once_all_exist() {
        let peers = [initial("pd-a", "3"), initial("pd-b", "3")];
        let error = decide("pd-a", false, &peers, &[]).unwrap_err();
        assert_eq!(error, "2 of the 3 initial PD members exist; waiting for the rest");
        for name in ["pd-a", "pd-b", "pd-c"] {
            assert_eq!(decide(name, false, &abc(), &[]), Ok(Membership::Initial(ABC.into())), "{name}");
        }
    }

    #[test]
    fn an_initial_member_created_after_bootstrap_starts_with_the_same_list() {
        // One late: a and b formed the cluster with the list, c's Pod comes after bootstrap.
        let started =
            [pod("pd-pd-a", &format!("--initial-cluster={ABC}")), pod("pd-pd-b", &format!("--initial-cluster={ABC}"))];
        assert_eq!(decide("pd-c", true, &abc(), &started), Ok(Membership::Initial(ABC.into())));
        // Two late: only a started.
        assert_eq!(decide("pd-b", true, &abc(), &started[..1]), Ok(Membership::Initial(ABC.into())));
        assert_eq!(decide("pd-c", true, &abc(), &started[..1]), Ok(Membership::Initial(ABC.into())));
        // All late (no Pod read yet, or a stale read): the list is rebuilt from the instances.
        assert_eq!(decide("pd-a", true, &abc(), &[]), Ok(Membership::Initial(ABC.into())));
    }

    #[test]
    fn the_list_a_pod_started_with_wins_over_the_instances() {
        // The Pods started with a list written in another order (an older rendering),
        // or the instances changed since: etcd needs the exact list the others used.
        let old = "pd-pd-c=http://pd-pd-c.pd-pd-peer.default.svc:2380,\
                   pd-pd-a=http://pd-pd-a.pd-pd-peer.default.svc:2380,\
                   pd-pd-b=http://pd-pd-b.pd-pd-peer.default.svc:2380";
        let started = [pod("pd-pd-a", &format!("--initial-cluster={old}"))];
        assert_eq!(decide("pd-b", false, &abc(), &started), Ok(Membership::Initial(old.into())));
        assert_eq!(decide("pd-b", true, &abc(), &started), Ok(Membership::Initial(old.into())));
    }

    #[test]
    fn an_initial_member_whose_pod_is_recreated_after_bootstrap_keeps_the_list() {
        let started = [
            pod("pd-pd-b", &format!("--initial-cluster={ABC}")),
            pod("pd-pd-c", &format!("--initial-cluster={ABC}")),
            pod("pd-pd-d", "--join=http://pd-pd-a.pd-pd-peer.default.svc:2379"),
        ];
        let peers =
            [ready_before(initial("pd-a", "3")), initial("pd-b", "3"), initial("pd-c", "3"), sample_pd("pd-d", "pd")];
        assert_eq!(decide("pd-a", true, &peers, &started), Ok(Membership::Initial(ABC.into())));
    }

    #[test]
    fn members_added_after_bootstrap_join_and_never_before() {
        let mut peers = abc();
        peers.push(sample_pd("pd-d", "pd"));
        let started = [pod("pd-pd-a", &format!("--initial-cluster={ABC}"))];
        assert_eq!(
            decide("pd-d", true, &peers, &started),
            Ok(Membership::Join(
                "http://pd-pd-a.pd-pd-peer.default.svc:2379,http://pd-pd-b.pd-pd-peer.default.svc:2379,\
                 http://pd-pd-c.pd-pd-peer.default.svc:2379"
                    .into()
            ))
        );
        let error = decide("pd-d", false, &peers, &started).unwrap_err();
        assert_eq!(error, "not an initial member: waiting for the PD cluster to form before joining it");
    }

    #[test]
    fn a_scale_out_before_bootstrap_joins_once_bootstrapped() {
        // Replicas went from 3 to 5 before the cluster formed: d and e carry num 5 and
        // are in no list a Pod started with.
        let mut peers = abc();
        peers.extend([initial("pd-d", "5"), initial("pd-e", "5")]);
        let started = [pod("pd-pd-a", &format!("--initial-cluster={ABC}"))];
        assert!(decide("pd-d", false, &peers, &started).unwrap_err().contains("waiting for the PD cluster to form"));
        assert!(matches!(decide("pd-d", true, &peers, &started), Ok(Membership::Join(_))));
        // Before any Pod started, d's set of five is incomplete: it waits.
        assert_eq!(
            decide("pd-d", false, &peers, &[]).unwrap_err(),
            "2 of the 5 initial PD members exist; waiting for the rest"
        );
        // The original three are unaffected.
        assert_eq!(decide("pd-c", false, &peers, &[]), Ok(Membership::Initial(ABC.into())));
    }

    #[test]
    fn an_initial_peer_missing_after_bootstrap() {
        let peers = [initial("pd-a", "3"), initial("pd-c", "3")];
        // A Pod carries the list: start with it exactly.
        let started = [pod("pd-pd-a", &format!("--initial-cluster={ABC}"))];
        assert_eq!(decide("pd-c", true, &peers, &started), Ok(Membership::Initial(ABC.into())));
        // No Pod carries it and c never ran: any list would be a guess.
        let error = decide("pd-c", true, &peers, &[]).unwrap_err();
        assert!(error.starts_with("cannot tell which --initial-cluster list"), "{error}");
        assert!(error.contains("2 of the 3 initial PD instances remain"), "{error}");
        // c ran before: its data directory holds the membership, PD ignores the flag.
        let peers = [initial("pd-a", "3"), ready_before(initial("pd-c", "3"))];
        assert_eq!(
            decide("pd-c", true, &peers, &[]),
            Ok(Membership::Join("http://pd-pd-a.pd-pd-peer.default.svc:2379".into()))
        );
    }

    #[test]
    fn pods_that_disagree_on_the_list_are_not_guessed_between() {
        let other = "pd-pd-a=http://pd-pd-a.pd-pd-peer.default.svc:2380";
        let started = [
            pod("pd-pd-a", &format!("--initial-cluster={ABC}")),
            pod("pd-pd-b", &format!("--initial-cluster={other}")),
        ];
        let error = decide("pd-c", true, &abc(), &started).unwrap_err();
        assert!(error.contains("pd-pd-a and pd-pd-b started with different --initial-cluster lists"), "{error}");
    }

    #[test]
    fn tls_lists_https_urls() {
        let peers = [initial("pd-a", "1"), sample_pd("pd-b", "pd")];
        let i = |pd| MembershipInputs {
            pd,
            bootstrapped: true,
            peers: &peers,
            live_pod: None,
            peer_pods: &[],
            tls: true,
            rejoin: false,
        };
        assert_eq!(membership(&i(&peers[1])).unwrap().flag(), "--join=https://pd-pd-a.pd-pd-peer.default.svc:2379");
        assert_eq!(
            membership(&i(&peers[0])).unwrap().flag(),
            "--initial-cluster=pd-pd-a=https://pd-pd-a.pd-pd-peer.default.svc:2380"
        );
    }

    #[test]
    fn a_live_pod_keeps_its_flag() {
        let peers = [initial("pd-a", "1")];
        let live = pod("pd-pd-a", "--initial-cluster=a=b");
        let inputs = MembershipInputs {
            pd: &peers[0],
            bootstrapped: true,
            peers: &peers,
            live_pod: Some(&live),
            peer_pods: &[],
            tls: false,
            rejoin: false,
        };
        assert_eq!(membership(&inputs), Ok(Membership::Initial("a=b".into())));
    }

    #[test]
    fn a_member_whose_data_was_lost_joins_again_even_from_the_initial_list() {
        let started =
            [pod("pd-pd-a", &format!("--initial-cluster={ABC}")), pod("pd-pd-b", &format!("--initial-cluster={ABC}"))];
        let peers = abc();
        let inputs = MembershipInputs {
            pd: &peers[2],
            bootstrapped: true,
            peers: &peers,
            live_pod: None,
            peer_pods: &started,
            tls: false,
            rejoin: true,
        };
        assert_eq!(
            membership(&inputs),
            Ok(Membership::Join(
                "http://pd-pd-a.pd-pd-peer.default.svc:2379,http://pd-pd-b.pd-pd-peer.default.svc:2379".into()
            ))
        );
        assert_eq!(decide("pd-c", true, &peers, &started), Ok(Membership::Initial(ABC.into())), "without it");
    }

    #[test]
    fn a_lone_non_initial_member_waits() {
        let peers = [sample_pd("pd-a", "pd")];
        assert_eq!(decide("pd-a", true, &peers, &[]).unwrap_err(), "no other PD member to join; waiting for one");
    }
}
