//! No leader (quorum loss), failover between member URLs, timeouts, injected errors.

use std::collections::BTreeMap;
use std::time::Duration;

use pd_sim::{Config, Fault};
use tikv_operator_pd::{PdClient, PdError, RetryPolicy};

use crate::common::{Env, client_for, config, expect_err};

#[tokio::test]
async fn no_leader_during_quorum_loss_then_recovery() {
    let mut env = Env::start(Config { members: 3, ..config() }).await;
    env.add_store(1).await;
    let c = &env.client;
    assert!(c.leader().await.unwrap().is_some());

    env.ctl().stop_member("pd-0").await.unwrap();
    env.ctl().stop_member("pd-1").await.unwrap();
    for (what, result) in [
        ("members", c.members().await.map(drop)),
        ("leader", c.leader().await.map(drop)),
        ("stores", c.stores(&[]).await.map(drop)),
        ("cluster", c.cluster_id().await.map(drop)),
        ("delete store", c.delete_store(env.id(1), false).await),
    ] {
        let error = expect_err(result, what);
        assert!(matches!(error, PdError::NoLeader { status: 503, .. }), "{what}: {error:?}");
        assert!(error.is_retryable());
    }
    // /health is answered locally: the live member says who is down.
    let health = c.health().await.unwrap();
    assert_eq!(health.len(), 3);
    assert_eq!(health.iter().filter(|h| h.health).map(|h| h.name.as_str()).collect::<Vec<_>>(), ["pd-2"]);

    env.ctl().start_member("pd-1").await.unwrap();
    env.eventually("a leader is elected again", Duration::from_secs(10), async |env| {
        env.client.leader().await.ok().flatten().is_some()
    })
    .await;
    let members = c.members().await.unwrap();
    assert!(matches!(members.leader_name(), Some("pd-1" | "pd-2")), "{members:?}");
    assert_eq!(c.stores(&[]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_leader_change_leaves_a_no_leader_gap() {
    let env = Env::start(Config { members: 3, ..config() }).await;
    let target = env.followers()[0].clone();
    env.client.transfer_leader(&target).await.unwrap();
    // During the campaign gap every forwarded call is 503.
    let error = expect_err(env.client.members().await, "members during the gap");
    assert!(matches!(error, PdError::NoLeader { .. }), "{error:?}");

    env.run(Duration::from_secs(1));
    let members = env.client.members().await.unwrap();
    assert_eq!(members.leader_name(), Some(target.as_str()));
}

#[tokio::test]
async fn failover_from_a_stopped_member_to_a_live_one() {
    let mut env = Env::start(Config { members: 3, ..config() }).await;
    let id = env.add_store(1).await;
    let followers = env.followers();
    let (dead, live) = (followers[0].clone(), followers[1].clone());
    let dead_url = env.ctl().member_url(&dead).await.unwrap();
    let live_url = env.ctl().member_url(&live).await.unwrap();
    env.ctl().stop_member(&dead).await.unwrap();

    let client = client_for([dead_url.clone(), live_url.clone()]);
    // Reads and writes fail over when the connection cannot be made.
    assert_eq!(client.members().await.unwrap().members.len(), 3);
    client.set_store_labels(id, &BTreeMap::from([("zone".to_owned(), "z1".to_owned())])).await.unwrap();
    assert_eq!(client.store(id).await.unwrap().labels["zone"], "z1");
    // A follower forwards to the leader; /status is the follower's own.
    assert!(client.status().await.is_ok());
    // Only the dead member: a transport error that says it could not connect.
    let error = expect_err(client_for([dead_url]).members().await, "dead member only");
    match &error {
        PdError::Transport { source, .. } => assert!(source.is_connect(), "{error:?}"),
        other => panic!("{other:?}"),
    }
    assert!(error.is_retryable());
}

#[tokio::test]
async fn latency_beyond_the_timeout_is_a_timeout() {
    let mut env = Env::start(config()).await;
    let id = env.add_store(1).await;
    let client = PdClient::builder([env.sim.url()])
        .timeout(Duration::from_millis(300))
        .retry(RetryPolicy { max_retries: 0, ..RetryPolicy::default() })
        .system_proxy(false)
        .build()
        .unwrap();
    // An hour of simulated latency; simulated time stands still, so it never ends.
    env.ctl().inject_fault(Fault {
        path: "/pd/api/v1/store".into(),
        latency_ms: Some(3_600_000),
        ..Default::default()
    });
    let error = expect_err(client.store(id).await, "slow read");
    assert!(matches!(&error, PdError::Timeout { path, .. } if path.ends_with(&format!("/store/{id}"))), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(error.status(), None);
    let error = expect_err(client.stores(&[]).await, "slow read");
    assert!(matches!(error, PdError::Timeout { .. }), "{error:?}");
    let error = expect_err(client.delete_store(id, false).await, "slow write");
    assert!(matches!(error, PdError::Timeout { .. }), "{error:?}");
    // Other paths are not slowed.
    client.members().await.unwrap();

    env.ctl().clear_faults();
    assert_eq!(client.store(id).await.unwrap().id, id);
    // The timed-out write is still waiting on its latency: the store was not touched.
    assert!(client.store(id).await.unwrap().is_up_and_heartbeating());
}

#[tokio::test]
async fn injected_error_answers_are_typed() {
    let mut env = Env::start(config()).await;
    env.add_store(1).await;
    let c = &env.client;
    let fault = |status: u16, body: &str| Fault {
        path: "/pd/api/v1/stores".into(),
        status: Some(status),
        body: Some(body.into()),
        count: Some(1),
        ..Default::default()
    };
    for (status, body) in [
        (500, "[PD:apiutil:ErrRedirectToNotLeader]redirect to not leader\n"),
        (500, "[PD:server:ErrServerNotStarted]server not started\n"),
        (503, "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader\n"),
    ] {
        env.ctl().inject_fault(fault(status, body));
        let error = expect_err(c.stores(&[]).await, body);
        assert!(matches!(error, PdError::NoLeader { status: s, .. } if s == status), "{error:?}");
    }
    env.ctl().inject_fault(fault(500, "\"etcdserver: request timed out\"\n"));
    let error = expect_err(c.stores(&[]).await, "etcd error");
    assert!(matches!(&error, PdError::Http { status: 500, body, .. } if body == "etcdserver: request timed out"));
    assert!(error.is_retryable());
    // A counted fault is used up: the next call goes through.
    assert_eq!(c.stores(&[]).await.unwrap().len(), 1);

    // An older PD without the route: gorilla/mux's plain-text 404.
    env.ctl().inject_fault(fault(404, "404 page not found\n"));
    let error = expect_err(c.stores(&[]).await, "unknown route");
    assert!(matches!(&error, PdError::EndpointNotFound { path } if path == "/pd/api/v1/stores"), "{error:?}");
    // A 200 that is not what PD writes.
    env.ctl().inject_fault(fault(200, "<html>proxy</html>"));
    let error = expect_err(c.stores(&[]).await, "garbage body");
    assert!(matches!(&error, PdError::Decode { excerpt, .. } if excerpt.starts_with("<html>")), "{error:?}");
    assert!(!error.is_retryable());

    // A retrying client gets past transient 5xx answers.
    env.ctl().inject_fault(Fault {
        count: Some(2),
        ..fault(503, "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader\n")
    });
    let retrying = PdClient::builder([env.sim.url()])
        .retry(RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(10),
        })
        .system_proxy(false)
        .build()
        .unwrap();
    assert_eq!(retrying.stores(&[]).await.unwrap().len(), 1);
}
