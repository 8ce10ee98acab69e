//! Health, members, leader, identity, readiness, member removal, leader moves.

use std::time::Duration;

use pd_sim::{Config, MemberSpec};
use tikv_operator_pd::{MemberReadiness, PdError, Subject};

use crate::common::{Env, config, expect_err};

#[tokio::test]
async fn health_members_leader_and_status_agree_with_the_simulator() {
    let env = Env::start(Config { members: 3, ..config() }).await;
    let truth = env.ctl().snapshot();

    let health = env.client.health().await.unwrap();
    assert_eq!(health.len(), 3);
    assert!(health.iter().all(|h| h.health), "{health:?}");

    let members = env.client.members().await.unwrap();
    assert_eq!(members.cluster_id, truth.cluster_id);
    assert_eq!(members.members.len(), 3);
    for m in &truth.members {
        let seen = members.get(&m.name).unwrap();
        assert_eq!(seen.member_id, m.member_id, "member IDs are above 2^53 and must be exact");
        assert!(seen.member_id > 1 << 53);
        assert_eq!(seen.client_urls, m.client_urls);
        assert_eq!(seen.peer_urls, m.peer_urls);
        assert_eq!(seen.binary_version, "v8.5.0");
        // /health lists the same member set as /members (tidb-operator relies on it).
        assert!(health.iter().any(|h| h.member_id == m.member_id && h.name == m.name));
    }
    assert_eq!(members.leader_name(), truth.leader.as_deref());
    assert_eq!(members.etcd_leader.as_ref().map(|m| m.name.as_str()), truth.etcd_leader.as_deref());

    let leader = env.client.leader().await.unwrap().unwrap();
    assert_eq!(Some(leader.name.as_str()), truth.leader.as_deref());
    assert_eq!(Some(&leader), members.leader.as_ref());

    let status = env.client.status().await.unwrap();
    assert_eq!(status.version, "v8.5.0");
    assert!(status.start_timestamp > 0);
}

#[tokio::test]
async fn cluster_id_above_2_pow_53_round_trips_exactly() {
    // Not representable as f64: any float detour changes it.
    let id = (1u64 << 62) + 1;
    assert_ne!(id as f64 as u64, id);
    let env = Env::start(Config { cluster_id: Some(id), max_replicas: 5, ..config() }).await;
    assert_eq!(env.client.cluster_id().await.unwrap(), id);
    let cluster = env.client.cluster().await.unwrap();
    assert_eq!((cluster.id, cluster.max_peer_count), (id, 5));
    assert_eq!(env.client.members().await.unwrap().cluster_id, id);
}

#[tokio::test]
async fn member_readiness_follows_region_loading() {
    let mut env = Env::start(config()).await;
    // Before bootstrap a fresh member is ready at once (nothing to load).
    let early = env.ctl().add_member(MemberSpec::default()).await.unwrap();
    assert_eq!(env.client.member_ready(&early.url).await.unwrap(), MemberReadiness::Ready);

    env.add_store(1).await;
    let late = env.ctl().add_member(MemberSpec::default()).await.unwrap();
    assert_eq!(env.client.member_ready(&late.url).await.unwrap(), MemberReadiness::NotReady);
    env.run(Duration::from_millis(200));
    assert_eq!(env.client.member_ready(&late.url).await.unwrap(), MemberReadiness::Ready);

    // The URLs /members advertises are the ones readiness is asked on.
    let members = env.client.members().await.unwrap();
    let advertised = &members.get(&late.name).unwrap().client_urls[0];
    assert_eq!(env.client.member_ready(advertised).await.unwrap(), MemberReadiness::Ready);

    // A PD older than v8.5.2 has no such route: gorilla/mux's plain 404.
    env.ctl().inject_fault(pd_sim::Fault {
        path: "/pd/api/v2/ready".into(),
        status: Some(404),
        body: Some("404 page not found\n".into()),
        count: Some(1),
        ..Default::default()
    });
    assert_eq!(env.client.member_ready(&late.url).await.unwrap(), MemberReadiness::Unsupported);

    // A stopped member does not answer; no failover for a per-member call.
    env.ctl().stop_member(&late.name).await.unwrap();
    let error = expect_err(env.client.member_ready(&late.url).await, "stopped member");
    assert!(matches!(error, PdError::Transport { .. }), "{error:?}");
    let error = expect_err(env.client.member_ready("not a url").await, "bad URL");
    assert!(matches!(error, PdError::Config(_)), "{error:?}");
}

#[tokio::test]
async fn members_are_deleted_by_name_and_by_id_and_unknown_ones_are_not_found() {
    let env = Env::start(Config { members: 3, ..config() }).await;
    let extra = env.ctl().add_member(MemberSpec::default()).await.unwrap();
    let followers: Vec<String> = env.followers().into_iter().filter(|n| *n != extra.name).collect();
    let by_name = followers[0].clone();

    env.client.delete_member_by_name(&by_name).await.unwrap();
    let error = expect_err(env.client.delete_member_by_name(&by_name).await, "second delete by name");
    assert!(matches!(&error, PdError::NotFound { subject: Subject::MemberName(n), .. } if *n == by_name), "{error:?}");
    assert_eq!(error.status(), Some(404));

    env.client.delete_member_by_id(extra.member_id).await.unwrap();
    // PD answers an unknown ID with etcd's 500 "member not found".
    let error = expect_err(env.client.delete_member_by_id(extra.member_id).await, "second delete by ID");
    assert!(
        matches!(error, PdError::NotFound { subject: Subject::MemberId(id), .. } if id == extra.member_id),
        "{error:?}"
    );

    let members = env.client.members().await.unwrap();
    assert_eq!(members.members.len(), 2);
    assert!(members.get(&by_name).is_none() && members.get(&extra.name).is_none());
    let health = env.client.health().await.unwrap();
    assert_eq!(health.len(), 2);
    assert!(members.leader.is_some());
}

#[tokio::test]
async fn leader_transfer_and_resign_move_the_leader() {
    let env = Env::start(Config { members: 3, ..config() }).await;
    let before = env.client.leader().await.unwrap().unwrap().name;
    let target = env.followers()[0].clone();

    env.client.transfer_leader(&target).await.unwrap();
    // The PD leader follows the etcd leader after a campaign.
    env.eventually("the transfer target leads", Duration::from_secs(10), async |env| {
        env.client.leader().await.ok().flatten().is_some_and(|l| l.name == target)
    })
    .await;
    assert_ne!(before, target);
    let members = env.client.members().await.unwrap();
    assert_eq!(members.leader_name(), Some(target.as_str()));
    assert_eq!(members.etcd_leader.unwrap().name, target);

    let error = expect_err(env.client.transfer_leader("pd-nope").await, "unknown target");
    assert!(matches!(&error, PdError::UnknownTransferTarget { name, .. } if name == "pd-nope"), "{error:?}");
    assert!(!error.is_retryable());

    env.client.resign_leader().await.unwrap();
    env.eventually("another member leads after resign", Duration::from_secs(10), async |env| {
        env.client.leader().await.ok().flatten().is_some_and(|l| l.name != target)
    })
    .await;
}

#[tokio::test]
async fn a_single_member_resign_keeps_the_leader() {
    let env = Env::start(config()).await;
    let before = env.client.leader().await.unwrap().unwrap();
    env.client.resign_leader().await.unwrap();
    env.run(Duration::from_secs(1));
    assert_eq!(env.client.leader().await.unwrap(), Some(before));
}

#[tokio::test]
async fn a_members_peer_urls_change_through_etcds_gateway_with_typed_errors() {
    let env = Env::start(Config { members: 3, ..config() }).await;
    let truth = env.ctl().snapshot();
    let (first, second) = (&truth.members[0], &truth.members[1]);
    let moved = vec![first.peer_urls[0].replace("http://", "https://")];
    env.client.update_member_peer_urls(first.member_id, &moved).await.unwrap();
    let members = env.client.members().await.unwrap();
    assert_eq!(members.get(&first.name).unwrap().peer_urls, moved);

    let err = expect_err(env.client.update_member_peer_urls(7, &moved).await, "unknown ID");
    assert!(err.is_not_found(), "{err:?}");
    assert!(matches!(&err, PdError::NotFound { subject: Subject::MemberId(7), .. }), "{err:?}");
    let err = expect_err(env.client.update_member_peer_urls(first.member_id, &second.peer_urls).await, "taken");
    assert!(err.to_string().contains("Peer URLs already exists"), "{err}");
}
