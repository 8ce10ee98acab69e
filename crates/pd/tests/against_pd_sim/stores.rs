//! Stores: listing with state filters, get, delete (every refusal), cancel, labels,
//! tombstone cleanup, configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use pd_sim::Config;
use tikv_operator_pd::{NodeState, NotEnoughStoresReason, PdError, StateName, StoreState, Subject};

use crate::common::{Env, config, expect_err};

#[tokio::test]
async fn not_bootstrapped_before_the_first_store() {
    let mut env = Env::start(config()).await;
    let c = &env.client;
    assert!(matches!(expect_err(c.stores(&[]).await, "stores"), PdError::NotBootstrapped));
    assert!(matches!(expect_err(c.all_stores().await, "all stores"), PdError::NotBootstrapped));
    assert!(matches!(expect_err(c.store(1).await, "store"), PdError::NotBootstrapped));
    assert!(matches!(expect_err(c.delete_store(1, false).await, "delete"), PdError::NotBootstrapped));
    assert!(matches!(expect_err(c.down_peer_regions().await, "down peers"), PdError::NotBootstrapped));
    assert!(matches!(expect_err(c.region_stats().await, "stats"), PdError::NotBootstrapped));
    assert!(matches!(expect_err(c.schedulers().await, "schedulers"), PdError::NotBootstrapped));
    let error = expect_err(c.stores(&[]).await, "stores");
    assert!(!error.is_retryable());
    assert_eq!(error.status(), Some(500));
    // Identity and membership work before bootstrap.
    c.cluster_id().await.unwrap();
    c.members().await.unwrap();

    let id = env.add_store(1).await;
    let stores = env.client.stores(&[]).await.unwrap();
    assert_eq!(stores.len(), 1);
    let store = &stores[0];
    assert_eq!((store.id, store.address.as_str()), (id, "tikv-1:20160"));
    // A new store has neither `state` nor `node_state` on the wire.
    assert_eq!(
        (store.state, store.node_state, &store.state_name),
        (StoreState::Up, NodeState::Preparing, &StateName::Up)
    );
    assert_eq!(store.region_count, 30);
    assert_eq!(store.leader_count, 30);
    assert!(store.capacity_bytes.is_some() && store.last_heartbeat.is_some() && store.start_time.is_some());
    assert_eq!(store.version, "8.5.0");
    // The node-state check makes it Serving (fewer than 100 regions in the cluster).
    env.run(Duration::from_secs(1));
    assert_eq!(env.client.store(id).await.unwrap().node_state, NodeState::Serving);
}

#[tokio::test]
async fn store_get_delete_tombstone_filters_and_every_refusal() {
    let env = Env::with_stores(3, 4).await;
    let c = &env.client;
    let (s3, s4) = (env.id(3), env.id(4));

    let store = c.store(s4).await.unwrap();
    assert_eq!(
        (store.state, store.node_state, &store.state_name),
        (StoreState::Up, NodeState::Serving, &StateName::Up)
    );
    assert!(store.is_up_and_heartbeating());
    assert!(store.region_count > 0);
    assert_eq!(store.address, "tikv-4:20160");

    let error = expect_err(c.store(999_999).await, "unknown store");
    assert!(matches!(error, PdError::NotFound { subject: Subject::Store(999_999), .. }), "{error:?}");
    let error = expect_err(c.delete_store(999_999, false).await, "delete unknown store");
    assert!(matches!(error, PdError::NotFound { subject: Subject::Store(999_999), .. }), "{error:?}");
    let error = expect_err(c.cancel_delete_store(999_999).await, "cancel unknown store");
    assert!(matches!(error, PdError::NotFound { subject: Subject::Store(999_999), .. }), "{error:?}");

    // Take store 4 offline; a second delete of an Offline store is a 200.
    c.delete_store(s4, false).await.unwrap();
    c.delete_store(s4, false).await.unwrap();
    let store = c.store(s4).await.unwrap();
    assert_eq!(
        (store.state, store.node_state, &store.state_name),
        (StoreState::Offline, NodeState::Removing, &StateName::Offline)
    );
    assert!(store.is_removing() && !store.is_removed());
    // The default listing still shows Offline stores.
    assert!(c.stores(&[]).await.unwrap().iter().any(|s| s.id == s4));

    env.eventually("store 4 drains to Tombstone", Duration::from_secs(120), async |env| {
        env.client.store(s4).await.unwrap().is_removed()
    })
    .await;
    let store = c.store(s4).await.unwrap();
    assert_eq!(
        (store.state, store.node_state, &store.state_name),
        (StoreState::Tombstone, NodeState::Removed, &StateName::Tombstone)
    );
    assert_eq!(store.region_count, 0);

    // Tombstones are hidden by default and shown with the filter.
    let ids = |stores: Vec<tikv_operator_pd::Store>| stores.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert!(!ids(c.stores(&[]).await.unwrap()).contains(&s4));
    assert!(!ids(c.stores(&[StoreState::Up, StoreState::Offline]).await.unwrap()).contains(&s4));
    assert_eq!(ids(c.stores(&[StoreState::Tombstone]).await.unwrap()), vec![s4]);
    assert_eq!(ids(c.stores(&[StoreState::Offline]).await.unwrap()), Vec::<u64>::new());
    assert_eq!(ids(c.all_stores().await.unwrap()).len(), 4);
    // A value PD does not know is its 500.
    let error = expect_err(c.stores(&[StoreState::Unknown(7)]).await, "unknown state filter");
    assert!(matches!(&error, PdError::Http { status: 500, body, .. } if body == "unknown StoreState: 7"), "{error:?}");

    // Removed: deleting or cancelling is 410.
    let error = expect_err(c.delete_store(s4, false).await, "delete a tombstone");
    assert!(matches!(error, PdError::StoreRemoved { store_id, .. } if store_id == s4), "{error:?}");
    assert_eq!(error.status(), Some(410));
    let error = expect_err(c.cancel_delete_store(s4).await, "cancel a tombstone");
    assert!(matches!(error, PdError::StoreRemoved { store_id, .. } if store_id == s4), "{error:?}");

    // Three Up stores with max-replicas 3: PD refuses to go below.
    let error = expect_err(c.delete_store(s3, false).await, "below max-replicas");
    match &error {
        PdError::NotEnoughStores { reason, .. } => {
            assert_eq!(*reason, NotEnoughStoresReason::Replicas { up_stores_after: Some(2), max_replicas: Some(3) })
        }
        other => panic!("{other:?}"),
    }
    assert!(!error.is_retryable());
    assert_eq!(c.store(s3).await.unwrap().node_state, NodeState::Serving);

    // The tombstone record goes away.
    c.remove_tombstones().await.unwrap();
    let error = expect_err(c.store(s4).await, "removed record");
    assert!(error.is_not_found(), "{error:?}");
    assert_eq!(ids(c.all_stores().await.unwrap()).len(), 3);

    // Force skips the count check and marks the store destroyed, for good.
    c.delete_store(s3, true).await.unwrap();
    let store = c.store(s3).await.unwrap();
    assert!(store.physically_destroyed && store.is_removing(), "{store:?}");
    c.delete_store(s3, true).await.unwrap();
    let error = expect_err(c.delete_store(s3, false).await, "delete a destroyed store without force");
    assert!(matches!(error, PdError::StoreDestroyed { store_id, .. } if store_id == s3), "{error:?}");
    let error = expect_err(c.cancel_delete_store(s3).await, "cancel a destroyed store");
    assert!(matches!(error, PdError::StoreDestroyed { store_id, .. } if store_id == s3), "{error:?}");
    // Its replicas have nowhere to go: it stays Offline.
    env.run(Duration::from_secs(10));
    let store = c.store(s3).await.unwrap();
    assert!(store.is_removing() && store.region_count > 0, "{store:?}");
}

#[tokio::test]
async fn cancel_delete_while_removing_goes_back_to_serving() {
    let env = Env::with_stores(3, 4).await;
    let c = &env.client;
    let s4 = env.id(4);
    // Already Up: a 200 that changes nothing.
    c.cancel_delete_store(s4).await.unwrap();

    c.delete_store(s4, false).await.unwrap();
    // Simulated time stands still: the store cannot have drained yet.
    let store = c.store(s4).await.unwrap();
    assert_eq!(store.node_state, NodeState::Removing);
    assert!(store.region_count > 0);

    c.cancel_delete_store(s4).await.unwrap();
    let store = c.store(s4).await.unwrap();
    // Straight to Serving, not Preparing.
    assert_eq!(
        (store.state, store.node_state, &store.state_name),
        (StoreState::Up, NodeState::Serving, &StateName::Up)
    );
    env.run(Duration::from_secs(5));
    let store = c.store(s4).await.unwrap();
    assert!(store.is_up_and_heartbeating() && store.region_count > 0, "{store:?}");
}

#[tokio::test]
async fn store_labels_are_merged_and_deleted() {
    let env = Env::with_stores(1, 1).await;
    let c = &env.client;
    let id = env.id(1);
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };

    c.set_store_labels(id, &labels(&[("zone", "z1"), ("host", "h1")])).await.unwrap();
    assert_eq!(c.store(id).await.unwrap().labels, labels(&[("zone", "z1"), ("host", "h1")]));
    c.set_store_labels(id, &labels(&[("zone", "z2")])).await.unwrap();
    assert_eq!(c.store(id).await.unwrap().labels, labels(&[("zone", "z2"), ("host", "h1")]));

    // `engine` is reserved: a structured 400.
    let error = expect_err(c.set_store_labels(id, &labels(&[("engine", "tiflash")])).await, "engine label");
    assert!(matches!(error, PdError::Http { status: 400, .. }), "{error:?}");
    // PD answers an unknown store with 500 ErrInvalidStoreID, typed as not found.
    let error = expect_err(c.set_store_labels(999_999, &labels(&[("zone", "z1")])).await, "unknown store");
    assert!(matches!(error, PdError::NotFound { subject: Subject::Store(999_999), .. }), "{error:?}");

    c.delete_store_label(id, "host").await.unwrap();
    assert_eq!(c.store(id).await.unwrap().labels, labels(&[("zone", "z2")]));
    let error = expect_err(c.delete_store_label(id, "host").await, "absent label key");
    assert!(matches!(error, PdError::Http { status: 500, .. }), "{error:?}");
    let error = expect_err(c.delete_store_label(id, "engine").await, "engine label");
    assert!(matches!(error, PdError::Http { status: 400, .. }), "{error:?}");
    let error = expect_err(c.delete_store_label(999_999, "zone").await, "unknown store");
    assert!(matches!(error, PdError::NotFound { subject: Subject::Store(999_999), .. }), "{error:?}");
}

#[tokio::test]
async fn config_and_replication_config_decode() {
    let env = Env::start(Config {
        max_replicas: 5,
        location_labels: vec!["zone".into(), "rack".into(), "host".into()],
        ..config()
    })
    .await;
    let replication = env.client.replication_config().await.unwrap();
    assert_eq!(replication.max_replicas, 5);
    assert_eq!(replication.location_labels, ["zone", "rack", "host"]);
    assert!(replication.enable_placement_rules);
    assert!(!replication.strictly_match_label);

    let config = env.client.config().await.unwrap();
    assert_eq!(config.replication, replication);
    let knobs = env.ctl().knobs();
    assert_eq!(config.schedule.max_store_down_time, Some(knobs.max_store_down_time));
    assert_eq!(config.schedule.max_store_preparing_time, Some(knobs.max_store_preparing_time));
    assert_eq!(config.schedule.leader_schedule_limit, knobs.leader_schedule_limit as u64);
    assert_eq!(config.schedule.replica_schedule_limit, knobs.replica_schedule_limit as u64);
    assert_eq!(config.schedule.store_limit_version, "v1");

    // No location labels: an empty string on the wire, an empty list here.
    let env = Env::start(config_without_labels()).await;
    assert!(env.client.replication_config().await.unwrap().location_labels.is_empty());
}

fn config_without_labels() -> Config {
    Config { location_labels: Vec::new(), ..config() }
}
