//! Client calls against a scripted fake that answers with PD's exact bodies: request
//! method/path/query/body, decoding, typed errors, retries, timeout, failover, TLS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::fake::{FakePd, Reply, dead_url};
use super::*;
use crate::types::*;

fn client(fake: &FakePd) -> PdClient {
    PdClient::builder([fake.url()]).system_proxy(false).retry(fast_retry(2)).build().unwrap()
}

fn fast_retry(max_retries: usize) -> RetryPolicy {
    RetryPolicy { max_retries, min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(5) }
}

/// Four stores as PD writes them: a new store (no `state`, no `node_state`), a Serving
/// one, an Offline/Removing one and a Tombstone with a huge ID.
const STORES: &str = r#"{
  "count": 4,
  "stores": [
    {
      "store": {
        "id": 1,
        "address": "basic-tikv-0.basic-tikv-peer.db.svc:20160",
        "version": "8.5.0",
        "status_address": "basic-tikv-0.basic-tikv-peer.db.svc:20180",
        "git_hash": "89abcdef",
        "start_timestamp": 1755655872,
        "deploy_path": "/",
        "last_heartbeat": 1755659472123456789,
        "state_name": "Up"
      },
      "status": {
        "capacity": "0B",
        "available": "0B",
        "used_size": "0B",
        "leader_count": 0,
        "leader_weight": 1,
        "leader_score": 0,
        "leader_size": 0,
        "region_count": 0,
        "region_weight": 1,
        "region_score": 0,
        "region_size": 0,
        "start_ts": "2026-08-20T02:11:12Z"
      }
    },
    {
      "store": {
        "id": 4,
        "address": "basic-tikv-1.basic-tikv-peer.db.svc:20160",
        "labels": [
          {
            "key": "zone",
            "value": "z1"
          },
          {
            "key": "host",
            "value": "h1"
          }
        ],
        "version": "8.5.0",
        "status_address": "basic-tikv-1.basic-tikv-peer.db.svc:20180",
        "git_hash": "89abcdef",
        "start_timestamp": 1755655872,
        "last_heartbeat": 1755659472123456789,
        "node_state": 1,
        "state_name": "Up"
      },
      "status": {
        "capacity": "100GiB",
        "available": "93.5GiB",
        "used_size": "1.25GiB",
        "leader_count": 12,
        "leader_weight": 1,
        "leader_score": 12,
        "leader_size": 12,
        "region_count": 36,
        "region_weight": 1,
        "region_score": 40.5,
        "region_size": 36,
        "start_ts": "2026-08-20T02:11:12Z",
        "last_heartbeat_ts": "2026-08-20T03:11:12.123456789Z",
        "uptime": "1h0m0.123456789s",
        "pause_leader_transfer_in": true
      }
    },
    {
      "store": {
        "id": 5,
        "address": "basic-tikv-2.basic-tikv-peer.db.svc:20160",
        "state": 1,
        "version": "8.5.0",
        "status_address": "basic-tikv-2.basic-tikv-peer.db.svc:20180",
        "start_timestamp": 1755655872,
        "last_heartbeat": 1755659472123456789,
        "node_state": 2,
        "state_name": "Offline"
      },
      "status": {
        "capacity": "1.968TiB",
        "available": "1.5TiB",
        "used_size": "512MiB",
        "leader_count": 0,
        "leader_weight": 1,
        "leader_score": 0,
        "leader_size": 0,
        "region_count": 7,
        "region_weight": 1,
        "region_score": 7,
        "region_size": 7,
        "is_busy": true,
        "uptime": "30m0s"
      }
    },
    {
      "store": {
        "id": 13405214531421069331,
        "address": "basic-tikv-3.basic-tikv-peer.db.svc:20160",
        "state": 2,
        "version": "8.5.0",
        "node_state": 3,
        "state_name": "Tombstone",
        "physically_destroyed": true
      },
      "status": {
        "capacity": "0B",
        "available": "0B",
        "leader_count": 0,
        "leader_weight": 1,
        "leader_score": 0,
        "leader_size": 0,
        "region_count": 0,
        "region_weight": 1,
        "region_score": 0,
        "region_size": 0
      }
    }
  ]
}"#;

#[tokio::test]
async fn stores_decode_every_state_and_ask_for_the_states_given() {
    let pd = FakePd::start().await;
    pd.on("GET", "/pd/api/v1/stores", Reply::json(200, STORES));
    let stores = client(&pd).all_stores().await.unwrap();

    let req = pd.last_request();
    assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/pd/api/v1/stores"));
    assert_eq!(req.query.as_deref(), Some("state=0&state=1&state=2"));
    assert_eq!(req.user_agent.as_deref(), Some(concat!("tikv-operator/", env!("CARGO_PKG_VERSION"))));

    assert_eq!(stores.len(), 4);
    let new = &stores[0];
    assert_eq!(
        (new.id, new.state, new.node_state, &new.state_name),
        (1, StoreState::Up, NodeState::Preparing, &StateName::Up)
    );
    assert_eq!(new.capacity_bytes, Some(0));
    assert_eq!(new.uptime, None);
    assert!(new.labels.is_empty());
    assert_eq!(new.start_time.unwrap().as_second(), 1_755_655_872);
    assert_eq!(new.last_heartbeat.unwrap().as_nanosecond(), 1_755_659_472_123_456_789);

    let serving = &stores[1];
    assert_eq!((serving.state, serving.node_state), (StoreState::Up, NodeState::Serving));
    assert_eq!(serving.labels.get("zone").map(String::as_str), Some("z1"));
    assert_eq!(serving.capacity_bytes, Some(100 << 30));
    assert_eq!(serving.available_bytes, Some(100_394_860_544)); // 93.5 GiB
    assert_eq!(serving.uptime, Some(Duration::new(3600, 123_456_789)));
    assert_eq!((serving.leader_count, serving.region_count), (12, 36));
    assert!(serving.pause_leader_transfer_in);
    assert!(serving.is_up_and_heartbeating());
    assert_eq!(serving.node_state.to_api(), Some(tikv_operator_api::tikv::StoreState::Serving));

    let offline = &stores[2];
    assert_eq!(
        (offline.state, offline.node_state, &offline.state_name),
        (StoreState::Offline, NodeState::Removing, &StateName::Offline)
    );
    assert!(offline.is_removing() && !offline.is_removed() && offline.is_busy);
    assert_eq!(offline.used_bytes, Some(512 << 20));

    let tombstone = &stores[3];
    assert_eq!(tombstone.id, 13_405_214_531_421_069_331, "u64 above 2^63 decoded exactly");
    assert_eq!((tombstone.state, tombstone.node_state), (StoreState::Tombstone, NodeState::Removed));
    assert!(tombstone.is_removed() && tombstone.physically_destroyed);
    assert_eq!(tombstone.start_time, None);
}

#[tokio::test]
async fn stores_default_filter_and_not_bootstrapped() {
    let pd = FakePd::start().await;
    pd.on("GET", "/pd/api/v1/stores", Reply::json(200, "{\n  \"count\": 0,\n  \"stores\": []\n}"));
    assert!(client(&pd).stores(&[]).await.unwrap().is_empty());
    assert_eq!(pd.last_request().query, None, "no state filter: PD's default (Up and Offline)");

    let pd = FakePd::start().await;
    pd.on(
        "GET",
        "/pd/api/v1/stores",
        Reply::json(500, "\"[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first\""),
    );
    let err = client(&pd).all_stores().await.unwrap_err();
    assert!(matches!(err, PdError::NotBootstrapped), "{err:?}");
    assert_eq!(pd.requests().len(), 1, "not bootstrapped is an answer, not retried");
}

#[tokio::test]
async fn store_get_and_not_found() {
    let pd = FakePd::start().await;
    pd.on(
        "GET",
        "/pd/api/v1/store/4",
        Reply::json(
            200,
            r#"{
  "store": {
    "id": 4,
    "address": "a:20160",
    "node_state": 1,
    "state_name": "Disconnected"
  },
  "status": {
    "capacity": "10GiB",
    "available": "9GiB",
    "used_size": "1GiB",
    "leader_count": 0,
    "leader_weight": 1,
    "leader_score": 0,
    "leader_size": 0,
    "region_count": 0,
    "region_weight": 1,
    "region_score": 0,
    "region_size": 0
  }
}"#,
        ),
    );
    pd.on("GET", "/pd/api/v1/store/42", Reply::json(404, "\"[PD:core:ErrStoreNotFound]store 42 not found\""));
    let c = client(&pd);
    let store = c.store(4).await.unwrap();
    assert_eq!(store.state_name, StateName::Disconnected);
    assert!(!store.is_up_and_heartbeating());
    let err = c.store(42).await.unwrap_err();
    assert!(matches!(err, PdError::NotFound { subject: Subject::Store(42), .. }), "{err:?}");
    assert_eq!(pd.requests().iter().filter(|r| r.path == "/pd/api/v1/store/42").count(), 1, "404 is not retried");
}

#[tokio::test]
async fn delete_store_paths_and_typed_refusals() {
    let pd = FakePd::start().await;
    pd.on("DELETE", "/pd/api/v1/store/4", Reply::json(200, "\"The store is set as Offline.\""));
    pd.on("DELETE", "/pd/api/v1/store/5", Reply::json(410, "\"[PD:core:ErrStoreRemoved]store 5 has been removed\""));
    pd.on(
        "DELETE",
        "/pd/api/v1/store/6",
        Reply::json(
            400,
            "\"[PD:core:ErrStoresNotEnough]can not remove store 6 since the number of up stores would be 2 while need 3\"",
        ),
    );
    let c = client(&pd);
    c.delete_store(4, false).await.unwrap();
    let req = pd.last_request();
    assert_eq!((req.method.as_str(), req.path.as_str(), req.query.as_deref()), ("DELETE", "/pd/api/v1/store/4", None));
    c.delete_store(4, true).await.unwrap();
    assert_eq!(pd.last_request().query.as_deref(), Some("force=true"));

    let err = c.delete_store(5, false).await.unwrap_err();
    assert!(matches!(err, PdError::StoreRemoved { store_id: 5, .. }), "{err:?}");
    let err = c.delete_store(6, false).await.unwrap_err();
    match err {
        PdError::NotEnoughStores { reason, .. } => assert_eq!(
            reason,
            crate::NotEnoughStoresReason::Replicas { up_stores_after: Some(2), max_replicas: Some(3) }
        ),
        other => panic!("{other:?}"),
    }
    let err = c.delete_store(7, false).await.unwrap_err();
    assert!(matches!(err, PdError::EndpointNotFound { .. }), "unscripted path is gorilla's 404: {err:?}");
}

#[tokio::test]
async fn cancel_offline_labels_and_tombstones() {
    let pd = FakePd::start().await;
    pd.on("POST", "/pd/api/v1/store/5/state", Reply::json(200, "\"The store's state is updated.\""));
    pd.on("POST", "/pd/api/v1/store/5/label", Reply::json(200, "\"The store's label is updated.\""));
    pd.on(
        "POST",
        "/pd/api/v1/store/9/label",
        Reply::json(500, "\"[PD:cluster:ErrInvalidStoreID]invalid store id 9, not found\""),
    );
    pd.on("DELETE", "/pd/api/v1/store/5/label", Reply::json(200, "\"The label zone is deleted for store 5.\""));
    pd.on("DELETE", "/pd/api/v1/stores/remove-tombstone", Reply::json(200, "\"Remove tombstone successfully.\""));
    pd.on("DELETE", "/pd/api/v1/stores/remove-tombstone", Reply::json(500, "\"failed stores: 5, 7\""));
    let c = client(&pd);

    c.cancel_delete_store(5).await.unwrap();
    let req = pd.last_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str(), req.query.as_deref()),
        ("POST", "/pd/api/v1/store/5/state", Some("state=Up"))
    );
    assert_eq!(req.body, "");

    let labels = BTreeMap::from([("zone".to_owned(), "z1".to_owned()), ("host".to_owned(), "h1".to_owned())]);
    c.set_store_labels(5, &labels).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&pd.last_request().body).unwrap();
    assert_eq!(body, serde_json::json!({"zone": "z1", "host": "h1"}));
    let err = c.set_store_labels(9, &labels).await.unwrap_err();
    assert!(matches!(err, PdError::NotFound { subject: Subject::Store(9), .. }), "{err:?}");
    assert_eq!(
        pd.requests().iter().filter(|r| r.path == "/pd/api/v1/store/9/label").count(),
        1,
        "writes are never retried"
    );

    c.delete_store_label(5, "zone").await.unwrap();
    assert_eq!(pd.last_request().body, "\"zone\"");

    c.remove_tombstones().await.unwrap();
    let err = c.remove_tombstones().await.unwrap_err();
    assert!(matches!(err, PdError::Http { status: 500, ref body, .. } if body == "failed stores: 5, 7"), "{err:?}");
}

const MEMBERS: &str = r#"{
  "header": {
    "cluster_id": 7401234567890123456
  },
  "members": [
    {
      "name": "basic-pd-0",
      "member_id": 13405214531421069331,
      "peer_urls": [
        "http://basic-pd-0.basic-pd-peer.db.svc:2380"
      ],
      "client_urls": [
        "http://basic-pd-0.basic-pd-peer.db.svc:2379"
      ],
      "deploy_path": "/",
      "binary_version": "v8.5.0",
      "git_hash": "0123abcd"
    },
    {
      "name": "basic-pd-1",
      "member_id": 2817412478593624412,
      "peer_urls": [
        "http://basic-pd-1.basic-pd-peer.db.svc:2380"
      ],
      "client_urls": [
        "http://basic-pd-1.basic-pd-peer.db.svc:2379"
      ],
      "leader_priority": 5,
      "binary_version": "v8.5.0"
    }
  ],
  "leader": {
    "name": "basic-pd-0",
    "member_id": 13405214531421069331,
    "peer_urls": [
      "http://basic-pd-0.basic-pd-peer.db.svc:2380"
    ],
    "client_urls": [
      "http://basic-pd-0.basic-pd-peer.db.svc:2379"
    ]
  },
  "etcd_leader": {
    "name": "basic-pd-0",
    "member_id": 13405214531421069331,
    "peer_urls": [
      "http://basic-pd-0.basic-pd-peer.db.svc:2380"
    ],
    "client_urls": [
      "http://basic-pd-0.basic-pd-peer.db.svc:2379"
    ]
  }
}"#;

#[tokio::test]
async fn members_health_leader_and_cluster_id() {
    let pd = FakePd::start().await;
    pd.on("GET", "/pd/api/v1/members", Reply::json(200, MEMBERS));
    pd.on(
        "GET",
        "/pd/api/v1/health",
        Reply::json(
            200,
            r#"[
  {
    "name": "basic-pd-0",
    "member_id": 13405214531421069331,
    "client_urls": [
      "http://basic-pd-0.basic-pd-peer.db.svc:2379"
    ],
    "health": true
  },
  {
    "name": "basic-pd-1",
    "member_id": 2817412478593624412,
    "client_urls": [
      "http://basic-pd-1.basic-pd-peer.db.svc:2379"
    ],
    "health": false
  }
]"#,
        ),
    );
    pd.on("GET", "/pd/api/v1/leader", Reply::json(200, "null"));
    pd.on(
        "GET",
        "/pd/api/v1/cluster",
        Reply::json(200, "{\n  \"id\": 18446744073709551557,\n  \"max_peer_count\": 3\n}"),
    );
    pd.on(
        "GET",
        "/pd/api/v1/status",
        Reply::json(
            200,
            r#"{
  "build_ts": "2026-08-01 10:00:00",
  "version": "v8.5.0",
  "git_hash": "0123abcd",
  "start_timestamp": 1755655000,
  "kernel_type": "Classic"
}"#,
        ),
    );
    let c = client(&pd);

    let members = c.members().await.unwrap();
    assert_eq!(members.cluster_id, 7_401_234_567_890_123_456);
    assert_eq!(members.members.len(), 2);
    assert_eq!(members.members[0].member_id, 13_405_214_531_421_069_331);
    assert_eq!(members.members[1].leader_priority, 5);
    assert_eq!(members.leader_name(), Some("basic-pd-0"));
    assert_eq!(members.etcd_leader.as_ref().map(|m| m.member_id), Some(13_405_214_531_421_069_331));

    let health = c.health().await.unwrap();
    assert_eq!(
        health.iter().map(|h| (h.member_id, h.health)).collect::<Vec<_>>(),
        [(13_405_214_531_421_069_331, true), (2_817_412_478_593_624_412, false)]
    );
    assert_eq!(c.leader().await.unwrap(), None, "PD writes null without a leader");
    assert_eq!(c.cluster_id().await.unwrap(), 18_446_744_073_709_551_557, "u64 near the top decoded exactly");
    assert_eq!(c.status().await.unwrap().version, "v8.5.0");
}

#[tokio::test]
async fn member_writes_and_their_errors() {
    let pd = FakePd::start().await;
    pd.on("DELETE", "/pd/api/v1/members/name/basic-pd-2", Reply::json(200, "\"removed, pd: basic-pd-2\""));
    pd.on("DELETE", "/pd/api/v1/members/name/basic-pd-3", Reply::json(404, "\"not found, pd: basic-pd-3\""));
    pd.on(
        "DELETE",
        "/pd/api/v1/members/id/2817412478593624412",
        Reply::json(200, "\"removed, pd: 2817412478593624412\""),
    );
    pd.on("DELETE", "/pd/api/v1/members/id/1", Reply::json(500, "\"etcdserver: member not found\""));
    pd.on("POST", "/pd/api/v1/leader/transfer/basic-pd-1", Reply::json(200, "\"The transfer command is submitted.\""));
    pd.on("POST", "/pd/api/v1/leader/transfer/nobody", Reply::json(500, "\"no valid pd to transfer etcd leader\""));
    pd.on("POST", "/pd/api/v1/leader/resign", Reply::json(200, "\"The resign command is submitted.\""));
    let c = client(&pd);

    c.delete_member_by_name("basic-pd-2").await.unwrap();
    assert_eq!(pd.last_request().method, "DELETE");
    let err = c.delete_member_by_name("basic-pd-3").await.unwrap_err();
    assert!(
        matches!(err, PdError::NotFound { subject: Subject::MemberName(ref n), .. } if n == "basic-pd-3"),
        "{err:?}"
    );
    c.delete_member_by_id(2_817_412_478_593_624_412).await.unwrap();
    let err = c.delete_member_by_id(1).await.unwrap_err();
    assert!(matches!(err, PdError::NotFound { subject: Subject::MemberId(1), .. }), "{err:?}");

    c.transfer_leader("basic-pd-1").await.unwrap();
    let req = pd.last_request();
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/pd/api/v1/leader/transfer/basic-pd-1"));
    let err = c.transfer_leader("nobody").await.unwrap_err();
    assert!(matches!(err, PdError::UnknownTransferTarget { ref name, .. } if name == "nobody"), "{err:?}");
    assert!(!err.is_retryable());
    c.resign_leader().await.unwrap();
    assert_eq!(pd.last_request().path, "/pd/api/v1/leader/resign");
    assert_eq!(pd.requests().len(), 7, "no write was retried");
}

#[tokio::test]
async fn member_readiness_goes_to_the_member_itself() {
    let ready = FakePd::start().await;
    ready.on("GET", "/pd/api/v2/ready", Reply::raw(200, "text/plain; charset=utf-8", ""));
    let loading = FakePd::start().await;
    loading.on("GET", "/pd/api/v2/ready", Reply::raw(500, "text/plain; charset=utf-8", ""));
    let old = FakePd::start().await;
    let service = FakePd::start().await;

    let c = client(&service);
    assert_eq!(c.member_ready(&ready.url()).await.unwrap(), MemberReadiness::Ready);
    assert_eq!(c.member_ready(&loading.url()).await.unwrap(), MemberReadiness::NotReady);
    assert_eq!(c.member_ready(&old.url()).await.unwrap(), MemberReadiness::Unsupported);
    assert!(service.requests().is_empty(), "readiness is asked of the member, not the service");
    assert_eq!(loading.requests().len(), 1, "500 here is an answer (not ready), not retried");
}

#[tokio::test]
async fn config_and_replicate_config() {
    let pd = FakePd::start().await;
    pd.on(
        "GET",
        "/pd/api/v1/config",
        Reply::json(
            200,
            r#"{
  "client-urls": "http://0.0.0.0:2379",
  "name": "basic-pd-0",
  "lease": 5,
  "schedule": {
    "max-snapshot-count": 64,
    "max-pending-peer-count": 64,
    "max-store-down-time": "30m0s",
    "max-store-preparing-time": "48h0m0s",
    "leader-schedule-limit": 4,
    "leader-schedule-policy": "count",
    "region-schedule-limit": 2048,
    "replica-schedule-limit": 64,
    "patrol-region-interval": "10ms",
    "store-limit-version": "v1",
    "store-limit": {
      "1": {
        "add-peer": 15,
        "remove-peer": 15
      }
    }
  },
  "replication": {
    "max-replicas": 3,
    "location-labels": "zone,rack,host",
    "strictly-match-label": "false",
    "enable-placement-rules": "true",
    "enable-placement-rules-cache": "false",
    "isolation-level": ""
  },
  "pd-server": {
    "use-region-storage": "true"
  }
}"#,
        ),
    );
    pd.on(
        "GET",
        "/pd/api/v1/config/replicate",
        Reply::json(
            200,
            r#"{
  "max-replicas": 5,
  "location-labels": "",
  "strictly-match-label": "true",
  "enable-placement-rules": "true",
  "enable-placement-rules-cache": "false",
  "isolation-level": "zone"
}"#,
        ),
    );
    let c = client(&pd);
    let config = c.config().await.unwrap();
    assert_eq!(config.replication.max_replicas, 3);
    assert_eq!(config.replication.location_labels, ["zone", "rack", "host"]);
    assert!(config.replication.enable_placement_rules && !config.replication.strictly_match_label);
    assert_eq!(config.schedule.max_store_down_time, Some(Duration::from_secs(1800)));
    assert_eq!(config.schedule.max_store_preparing_time, Some(Duration::from_secs(48 * 3600)));
    assert_eq!(config.schedule.leader_schedule_limit, 4);

    let replicate = c.replication_config().await.unwrap();
    assert_eq!(replicate.max_replicas, 5);
    assert!(replicate.location_labels.is_empty());
    assert!(replicate.strictly_match_label);
    assert_eq!(replicate.isolation_level, "zone");
}

#[tokio::test]
async fn schedulers_and_evict_leader() {
    let pd = FakePd::start().await;
    pd.on(
        "GET",
        "/pd/api/v1/schedulers",
        Reply::json(
            200,
            r#"[
  "balance-hot-region-scheduler",
  "evict-leader-scheduler",
  "balance-region-scheduler",
  "evict-slow-store-scheduler",
  "balance-leader-scheduler"
]"#,
        ),
    );
    pd.on("POST", "/pd/api/v1/schedulers", Reply::json(200, "\"The scheduler is created.\""));
    pd.on("DELETE", "/pd/api/v1/schedulers/evict-leader-scheduler-4", Reply::json(200, "null"));
    pd.on("DELETE", "/pd/api/v1/schedulers/evict-leader-scheduler-9", Reply::json(404, "null"));
    pd.on(
        "GET",
        "/pd/api/v1/scheduler-config/evict-leader-scheduler/list",
        Reply::json(
            200,
            r#"{
  "store-id-ranges": {
    "4": [
      {
        "start-key": "",
        "end-key": ""
      }
    ],
    "13405214531421069331": [
      {
        "start-key": "",
        "end-key": ""
      }
    ]
  },
  "batch": 3
}"#,
        ),
    );
    let c = client(&pd);

    let names = c.schedulers().await.unwrap();
    assert!(names.iter().any(|n| n == "evict-leader-scheduler"));

    c.add_evict_leader(4).await.unwrap();
    let req = pd.last_request();
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/pd/api/v1/schedulers"));
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body, serde_json::json!({"name": "evict-leader-scheduler", "store_id": 4}));
    assert!(body["store_id"].is_u64(), "store_id must be a JSON number");

    assert!(c.remove_evict_leader(4).await.unwrap());
    assert_eq!(pd.last_request().method, "DELETE");
    assert!(!c.remove_evict_leader(9).await.unwrap(), "404 means the store was not evicted");

    let config = c.evict_leader_config().await.unwrap().unwrap();
    assert_eq!(config.store_ids().into_iter().collect::<Vec<_>>(), [4, 13_405_214_531_421_069_331]);
    assert_eq!(config.batch, Some(3));
    assert!(c.is_evicting_leaders(4).await.unwrap());
    assert!(!c.is_evicting_leaders(5).await.unwrap());
}

#[tokio::test]
async fn evict_leader_list_absent_is_no_scheduler() {
    // Without the scheduler PD answers the list with gorilla's plain-text 404; PD before 8.x has no batch.
    let pd = FakePd::start().await;
    let c = client(&pd);
    assert_eq!(c.evict_leader_config().await.unwrap(), None);
    assert!(!c.is_evicting_leaders(4).await.unwrap());

    pd.on(
        "GET",
        "/pd/api/v1/scheduler-config/evict-leader-scheduler/list",
        Reply::json(
            200,
            r#"{
  "store-id-ranges": {
    "7": [
      {
        "start-key": "",
        "end-key": ""
      }
    ]
  }
}"#,
        ),
    );
    let config = c.evict_leader_config().await.unwrap().unwrap();
    assert_eq!((config.contains(7), config.batch), (true, None));
}

#[tokio::test]
async fn add_evict_leader_for_unknown_store() {
    let pd = FakePd::start().await;
    pd.on("POST", "/pd/api/v1/schedulers", Reply::json(400, "\"[PD:core:ErrStoreNotFound]store 77 not found\""));
    let err = client(&pd).add_evict_leader(77).await.unwrap_err();
    assert!(matches!(err, PdError::NotFound { subject: Subject::Store(77), .. }), "{err:?}");
}

#[tokio::test]
async fn down_and_pending_peer_checks() {
    // Region lists are pre-encoded by PD: compact, no newline, octet-stream.
    let pd = FakePd::start().await;
    pd.on(
        "GET",
        "/pd/api/v1/regions/check/down-peer",
        Reply::raw(
            200,
            "application/octet-stream",
            r#"{"count":2,"regions":[{"id":2,"start_key":"","end_key":"7480000000000000FF0500000000000000F8","epoch":{"conf_ver":5,"version":3},"peers":[{"role_name":"Voter","id":3,"store_id":1},{"role_name":"Voter","id":40,"store_id":4},{"role_name":"Voter","id":41,"store_id":5}],"leader":{"role_name":"Voter","id":3,"store_id":1},"down_peers":[{"peer":{"role_name":"Voter","id":40,"store_id":4},"down_seconds":120}],"cpu_usage":0,"written_bytes":0,"read_bytes":0,"written_keys":0,"read_keys":0,"approximate_size":1,"approximate_keys":0,"approximate_kv_size":0,"approximate_columnar_kv_size":0},{"id":8,"start_key":"7480000000000000FF0500000000000000F8","end_key":"","epoch":{"conf_ver":5,"version":4},"peers":[{"role_name":"Voter","id":9,"store_id":1},{"role_name":"Voter","id":10,"store_id":4}],"leader":{"role_name":"Voter"},"down_peers":[{"peer":{"role_name":"Voter","id":10,"store_id":4},"down_seconds":30},{"peer":{"role_name":"Voter","id":9,"store_id":1}}],"cpu_usage":0,"written_bytes":0,"read_bytes":0,"written_keys":0,"read_keys":0,"approximate_size":1,"approximate_keys":0,"approximate_kv_size":0,"approximate_columnar_kv_size":0}]}"#,
        ),
    );
    pd.on(
        "GET",
        "/pd/api/v1/regions/check/pending-peer",
        Reply::raw(
            200,
            "application/octet-stream",
            r#"{"count":1,"regions":[{"id":2,"start_key":"","end_key":"","peers":[{"role_name":"Voter","id":3,"store_id":1},{"role_name":"Learner","is_learner":true,"id":41,"store_id":5,"role":1}],"leader":{"role_name":"Voter","id":3,"store_id":1},"pending_peers":[{"role_name":"Learner","is_learner":true,"id":41,"store_id":5,"role":1}],"cpu_usage":0,"written_bytes":0,"read_bytes":0,"written_keys":0,"read_keys":0,"approximate_size":1,"approximate_keys":0,"approximate_kv_size":0,"approximate_columnar_kv_size":0}]}"#,
        ),
    );
    let c = client(&pd);

    let down = c.down_peer_regions().await.unwrap();
    assert_eq!(down.count, 2);
    assert_eq!(down.store_ids().into_iter().collect::<Vec<_>>(), [1, 4]);
    assert!(down.involves_store_other_than(4));
    assert_eq!(down.regions[0].peers[0].down_seconds, Some(120));
    assert_eq!(down.regions[1].leader_store_id, None, "PD writes an empty leader object when there is none");

    let pending = c.pending_peer_regions().await.unwrap();
    assert_eq!(pending.count, 1);
    assert_eq!(pending.store_ids().into_iter().collect::<Vec<_>>(), [5]);
    assert!(!pending.involves_store_other_than(5));

    let empty = FakePd::start().await;
    empty.on(
        "GET",
        "/pd/api/v1/regions/check/down-peer",
        Reply::raw(200, "application/octet-stream", r#"{"count":0,"regions":[]}"#),
    );
    assert!(client(&empty).down_peer_regions().await.unwrap().is_empty());
}

#[tokio::test]
async fn store_regions_list_each_region_s_voters_without_learners() {
    let pd = FakePd::start().await;
    pd.on(
        "GET",
        "/pd/api/v1/regions/store/4",
        Reply::json(
            200,
            r#"{"count": 2, "regions": [
  {"id": 10, "peers": [{"id": 11, "store_id": 1, "role_name": "Voter"}, {"id": 12, "store_id": 4, "role_name": "Voter"},
                       {"id": 13, "store_id": 5, "role_name": "Voter"}, {"id": 14, "store_id": 6, "role": 1, "role_name": "Learner", "is_learner": true}],
   "leader": {"id": 11, "store_id": 1, "role_name": "Voter"}},
  {"id": 20, "peers": [{"id": 21, "store_id": 4}, {"id": 22, "store_id": 5}]}
]}"#,
        ),
    );
    let regions = client(&pd).store_regions(4).await.unwrap();
    assert_eq!(regions[0], RegionVoters { region_id: 10, voter_stores: vec![1, 4, 5] });
    assert_eq!(regions[1].voter_stores, [4, 5], "peers without a role are voters (older PDs)");
    let down = BTreeSet::from([4]);
    assert!(!regions[0].quorum_lost_with(&down), "one of three");
    assert!(regions[1].quorum_lost_with(&down), "one of two: no quorum left");
    assert!(regions[0].quorum_lost_with(&BTreeSet::from([4, 5])));
    assert!(!regions[0].quorum_lost_with(&BTreeSet::new()));
}

#[tokio::test]
async fn region_stats_whole_space() {
    let pd = FakePd::start().await;
    pd.on(
        "GET",
        "/pd/api/v1/stats/region",
        Reply::json(
            200,
            r#"{
  "count": 40,
  "empty_count": 5,
  "storage_size": 120,
  "user_storage_size": 110,
  "user_columnar_storage_size": 0,
  "storage_keys": 250000,
  "store_leader_count": {
    "1": 14,
    "4": 13,
    "5": 13
  },
  "store_peer_count": {
    "1": 40,
    "4": 40,
    "5": 40
  },
  "store_leader_size": {
    "1": 42
  },
  "store_leader_keys": {
    "1": 85000
  },
  "store_peer_size": {
    "1": 120
  }
}"#,
        ),
    );
    let stats = client(&pd).region_stats().await.unwrap();
    assert_eq!(pd.last_request().query.as_deref(), Some("start_key=&end_key="));
    assert_eq!((stats.count, stats.empty_count, stats.storage_size), (40, 5, 120));
    assert_eq!(stats.store_leader_count.get(&4), Some(&13));
    assert_eq!(stats.store_peer_count.len(), 3);
}

#[tokio::test]
async fn no_leader_plain_text_is_retried_for_reads_only() {
    let pd = FakePd::start().await;
    let no_leader = Reply::text(503, "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader");
    pd.on("GET", "/pd/api/v1/leader", no_leader.clone());
    pd.on(
        "GET",
        "/pd/api/v1/leader",
        Reply::json(200, "{\n  \"name\": \"pd-1\",\n  \"member_id\": 9007199254740993\n}"),
    );
    pd.on("POST", "/pd/api/v1/leader/resign", no_leader);
    let c = client(&pd);

    let leader = c.leader().await.unwrap().unwrap();
    assert_eq!(leader.member_id, 9_007_199_254_740_993, "2^53 + 1 survives");
    assert_eq!(pd.requests().len(), 2, "one 503, then the retry");

    let err = c.resign_leader().await.unwrap_err();
    assert!(matches!(err, PdError::NoLeader { status: 503, .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(pd.requests().len(), 3, "a write is sent once");
}

#[tokio::test]
async fn reads_give_up_after_the_retry_budget() {
    let pd = FakePd::start().await;
    pd.on("GET", "/pd/api/v1/members", Reply::text(500, "[PD:apiutil:ErrRedirectToNotLeader]redirect to not leader"));
    let err = client(&pd).members().await.unwrap_err();
    assert!(matches!(err, PdError::NoLeader { status: 500, .. }), "{err:?}");
    assert_eq!(pd.requests().len(), 3, "first attempt and two retries");
}

#[tokio::test]
async fn decode_errors_carry_the_body() {
    let pd = FakePd::start().await;
    pd.on("GET", "/pd/api/v1/cluster", Reply::json(200, "{\n  \"id\": \"not a number\"\n}"));
    match client(&pd).cluster_id().await.unwrap_err() {
        PdError::Decode { path, excerpt, .. } => {
            assert_eq!(path, "/pd/api/v1/cluster");
            assert!(excerpt.contains("not a number"), "{excerpt}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_hanging_pd_times_out() {
    let pd = FakePd::start().await;
    pd.on("GET", "/pd/api/v1/health", Reply::Hang);
    let c = PdClient::builder([pd.url()])
        .system_proxy(false)
        .timeout(Duration::from_millis(200))
        .retry(fast_retry(0))
        .build()
        .unwrap();
    let err = c.health().await.unwrap_err();
    assert!(matches!(err, PdError::Timeout { timeout, .. } if timeout == Duration::from_millis(200)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn fails_over_to_the_next_endpoint_and_sticks_to_it() {
    let pd = FakePd::start().await;
    pd.on("GET", "/pd/api/v1/cluster", Reply::json(200, "{\n  \"id\": 7401234567890123456\n}"));
    pd.on("POST", "/pd/api/v1/leader/resign", Reply::json(200, "\"The resign command is submitted.\""));
    let c = PdClient::builder([dead_url().await, pd.url()]).system_proxy(false).retry(fast_retry(0)).build().unwrap();
    assert_eq!(c.cluster_id().await.unwrap(), 7_401_234_567_890_123_456);
    assert_eq!(c.shared.preferred.load(Ordering::Relaxed), 1);
    // A write whose connection was refused was never sent: failing over is safe.
    let c2 = PdClient::builder([dead_url().await, pd.url()]).system_proxy(false).build().unwrap();
    c2.resign_leader().await.unwrap();
    assert_eq!(pd.requests().iter().filter(|r| r.path == "/pd/api/v1/leader/resign").count(), 1);
}

#[tokio::test]
async fn a_write_that_timed_out_is_not_sent_elsewhere() {
    let hanging = FakePd::start().await;
    hanging.on("DELETE", "/pd/api/v1/store/4", Reply::Hang);
    let other = FakePd::start().await;
    other.on("DELETE", "/pd/api/v1/store/4", Reply::json(200, "\"The store is set as Offline.\""));
    let c = PdClient::builder([hanging.url(), other.url()])
        .system_proxy(false)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = c.delete_store(4, false).await.unwrap_err();
    assert!(matches!(err, PdError::Timeout { .. }), "{err:?}");
    assert!(other.requests().is_empty(), "the write may have been applied: never send it twice");
}

#[tokio::test]
async fn bad_endpoints_are_config_errors() {
    assert!(matches!(PdClient::new(Vec::<String>::new()), Err(PdError::Config(_))));
    assert!(matches!(PdClient::new(["ftp://pd:2379"]), Err(PdError::Config(_))));
    let c = PdClient::new(["basic-pd.db.svc:2379"]).unwrap();
    assert_eq!(c.endpoints()[0].as_str(), "http://basic-pd.db.svc:2379/");
}

struct CountingObserver(AtomicUsize);

impl WriteObserver for CountingObserver {
    fn write_sent(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_write_observer_hears_writes_not_reads() {
    let pd = FakePd::start().await;
    pd.on("POST", "/pd/api/v1/store/4/state", Reply::json(404, "\"[PD:core:ErrStoreNotFound]store 4 not found\""));
    pd.on("GET", "/pd/api/v1/schedulers", Reply::json(200, "[]"));
    let c = client(&pd);
    let observer = Arc::new(CountingObserver(AtomicUsize::new(0)));
    c.clone().set_write_observer(Some(observer.clone()));
    c.schedulers().await.unwrap();
    assert_eq!(observer.0.load(Ordering::SeqCst), 0);
    let _ = c.cancel_delete_store(4).await;
    assert_eq!(observer.0.load(Ordering::SeqCst), 1, "a refused write still counts: PD answered");
}

mod tls {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;
    use crate::tls::TlsMaterial;

    struct Ca {
        issuer: CertifiedIssuer<'static, KeyPair>,
    }

    impl Ca {
        fn new(name: &str) -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            Ca { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
        }

        /// (certificate PEM, key PEM)
        fn leaf(&self, cn: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
            let mut params = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }
    }

    fn server_config(ca: &Ca) -> rustls::ServerConfig {
        let provider = crate::tls::crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.issuer.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
        let (cert, key) = ca.leaf("pd", &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }

    fn material(ca: &Ca, signer: &Ca) -> TlsMaterial {
        let (cert, key) = signer.leaf("tikv-operator", &[], ExtendedKeyUsagePurpose::ClientAuth);
        TlsMaterial::from_pem(ca.issuer.pem(), cert, key).unwrap()
    }

    #[tokio::test]
    async fn tls_with_client_certificate() {
        let ca = Ca::new("cluster-ca");
        let pd = FakePd::start_tls(server_config(&ca)).await;
        pd.on(
            "GET",
            "/pd/api/v1/cluster",
            Reply::json(200, "{\n  \"id\": 7401234567890123456,\n  \"max_peer_count\": 3\n}"),
        );
        let url = format!("https://{}", pd.addr);

        let good = material(&ca, &ca);
        let c = PdClient::builder([url.as_str()])
            .tls(good.clone())
            .system_proxy(false)
            .retry(fast_retry(0))
            .build()
            .unwrap();
        assert_eq!(c.cluster_id().await.unwrap(), 7_401_234_567_890_123_456);
        assert_eq!(c.tls_fingerprint(), Some(good.fingerprint()));

        // A client certificate from another CA is refused by the server.
        let stranger = Ca::new("stranger-ca");
        let bad = PdClient::builder([url.as_str()])
            .tls(material(&ca, &stranger))
            .system_proxy(false)
            .retry(fast_retry(0))
            .build()
            .unwrap();
        let err = bad.cluster_id().await.unwrap_err();
        assert!(matches!(err, PdError::Transport { .. }), "{err:?}");

        // Plain HTTP material cannot reach an HTTPS PD either (no trusted roots).
        let plain = PdClient::builder([url.as_str()]).system_proxy(false).retry(fast_retry(0)).build().unwrap();
        assert!(matches!(plain.cluster_id().await.unwrap_err(), PdError::Transport { .. }));

        // Rotating the Secret's content rebuilds the client in place.
        assert!(bad.update_tls(Some(good.clone())).unwrap());
        assert!(!bad.update_tls(Some(good.clone())).unwrap(), "same content: nothing to do");
        assert_eq!(bad.cluster_id().await.unwrap(), 7_401_234_567_890_123_456);
        assert_eq!(pd.requests().len(), 2);
    }

    #[tokio::test]
    async fn the_serving_certificate_is_read_from_a_new_handshake() {
        let ca = Ca::new("cluster-ca");
        let provider = crate::tls::crypto_provider();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 1, 2);
        params.serial_number = Some(rcgen::SerialNumber::from(vec![0x1f, 0x2a, 0x03]));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let pd = FakePd::start_tls(config).await;
        pd.on("GET", "/pd/api/v1/ping", Reply::json(200, ""));
        let url = format!("https://{}", pd.addr);
        let client = PdClient::builder([url.as_str()])
            .tls(material(&ca, &ca))
            .system_proxy(false)
            .retry(fast_retry(0))
            .build()
            .unwrap();
        for _ in 0..2 {
            let seen = client.serving_certificate(&url, "/pd/api/v1/ping").await.unwrap();
            assert_eq!(seen.not_after, "2031-01-02T00:00:00Z".parse::<jiff::Timestamp>().unwrap());
            assert_eq!(seen.serial_number, "1f2a03");
        }
        assert_eq!(pd.requests().len(), 2, "one request per check");
        let plain = client.serving_certificate(&format!("http://{}", pd.addr), "/pd/api/v1/ping").await;
        assert!(matches!(plain, Err(PdError::Config(_))), "{plain:?}");
        assert!(crate::CertificateSummary::from_der(b"not a certificate").is_err());
    }

    #[test]
    fn material_from_secret_and_fingerprints() {
        use k8s_openapi::ByteString;
        use k8s_openapi::api::core::v1::Secret;

        let ca = Ca::new("cluster-ca");
        let (cert, key) = ca.leaf("tikv-operator", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let secret = |ca_pem: &str| Secret {
            data: Some(
                [
                    ("ca.crt".to_owned(), ByteString(ca_pem.as_bytes().to_vec())),
                    ("tls.crt".to_owned(), ByteString(cert.as_bytes().to_vec())),
                    ("tls.key".to_owned(), ByteString(key.as_bytes().to_vec())),
                ]
                .into(),
            ),
            ..Secret::default()
        };
        let a = TlsMaterial::from_secret(&secret(&ca.issuer.pem())).unwrap();
        let b = TlsMaterial::from_secret(&secret(&ca.issuer.pem())).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let other = Ca::new("rotated-ca");
        let c = TlsMaterial::from_secret(&secret(&other.issuer.pem())).unwrap();
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint().to_string().len(), 64);
        assert!(!format!("{a:?}").contains("PRIVATE"), "the key never shows in Debug");

        let mut missing = secret(&ca.issuer.pem());
        missing.data.as_mut().unwrap().remove("tls.key");
        assert!(matches!(TlsMaterial::from_secret(&missing), Err(crate::TlsError::MissingKey("tls.key"))));
        assert!(matches!(
            TlsMaterial::from_pem("garbage", cert.clone(), key.clone()),
            Err(crate::TlsError::NoCertificate("ca.crt"))
        ));
        assert!(matches!(
            TlsMaterial::from_pem(ca.issuer.pem(), cert.clone(), "nope"),
            Err(crate::TlsError::NoPrivateKey)
        ));
    }
}

/// The lifecycle's write seam sends exactly the client's requests, and never `force`.
#[tokio::test]
async fn pd_write_sends_the_client_requests_and_never_force() {
    let pd = FakePd::start().await;
    pd.on("DELETE", "/pd/api/v1/store/4", Reply::json(200, "\"The store is set as Offline.\""));
    pd.on("POST", "/pd/api/v1/store/4/state", Reply::json(200, "\"The store's state is updated.\""));
    pd.on("POST", "/pd/api/v1/schedulers", Reply::json(200, "\"The scheduler is created.\""));
    pd.on("DELETE", "/pd/api/v1/schedulers/evict-leader-scheduler-4", Reply::text(404, "scheduler not found"));
    pd.on("DELETE", "/pd/api/v1/members/id/9", Reply::json(200, "\"\""));
    pd.on("DELETE", "/pd/api/v1/members/name/pd-1", Reply::json(200, "\"\""));
    pd.on("POST", "/pd/api/v1/leader/transfer/pd-2", Reply::json(200, "\"\""));
    let writer: Arc<dyn crate::PdWrite> = Arc::new(client(&pd));
    writer.delete_store(4).await.unwrap();
    writer.cancel_delete_store(4).await.unwrap();
    writer.add_evict_leader(4).await.unwrap();
    assert!(!writer.remove_evict_leader(4).await.unwrap(), "404: the store was not evicted");
    writer.delete_member_by_id(9).await.unwrap();
    writer.delete_member_by_name("pd-1").await.unwrap();
    writer.transfer_leader("pd-2").await.unwrap();
    let sent: Vec<(String, String, Option<String>)> =
        pd.requests().into_iter().map(|r| (r.method, r.path, r.query)).collect();
    let expected = [
        ("DELETE", "/pd/api/v1/store/4", None),
        ("POST", "/pd/api/v1/store/4/state", Some("state=Up")),
        ("POST", "/pd/api/v1/schedulers", None),
        ("DELETE", "/pd/api/v1/schedulers/evict-leader-scheduler-4", None),
        ("DELETE", "/pd/api/v1/members/id/9", None),
        ("DELETE", "/pd/api/v1/members/name/pd-1", None),
        ("POST", "/pd/api/v1/leader/transfer/pd-2", None),
    ]
    .map(|(m, p, q)| (m.to_string(), p.to_string(), q.map(str::to_string)));
    assert_eq!(sent, expected);
}

#[derive(Default)]
struct SeenRequests(std::sync::Mutex<Vec<(String, &'static str, &'static str)>>);

impl RequestObserver for SeenRequests {
    fn request_done(&self, request: &RequestDone<'_>) {
        self.0.lock().unwrap().push((request.method.to_owned(), request.endpoint, request.outcome.class()));
    }
}

#[tokio::test]
async fn every_request_is_observed_by_its_endpoint_template_never_by_an_id() {
    let pd = FakePd::start().await;
    pd.on("GET", "/pd/api/v1/health", Reply::json(200, "[]"));
    pd.on("DELETE", "/pd/api/v1/store/4", Reply::json(200, "\"The store is set as Offline.\""));
    let seen = Arc::new(SeenRequests::default());
    let c = PdClient::builder([pd.url()]).system_proxy(false).retry(fast_retry(0)).build().unwrap();
    c.set_request_observer(Some(seen.clone()));
    c.health().await.unwrap();
    c.delete_store(4, false).await.unwrap();
    // Unscripted paths answer 404: each call still shows, under its template.
    let _ = c.store(4).await;
    let _ = c.cancel_delete_store(4).await;
    let _ = c.set_store_labels(4, &BTreeMap::from([("zone".to_string(), "a".to_string())])).await;
    let _ = c.delete_store_label(4, "zone").await;
    let _ = c.remove_evict_leader(4).await;
    let _ = c.delete_member_by_name("basic-pd-x").await;
    let _ = c.delete_member_by_id(9).await;
    let _ = c.transfer_leader("basic-pd-x").await;
    let _ = c.store_regions(4).await;
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert_eq!(seen[0], ("GET".to_string(), "/pd/api/v1/health", "2xx"));
    assert_eq!(seen[1], ("DELETE".to_string(), "/pd/api/v1/store/{id}", "2xx"));
    assert_eq!(seen[2], ("GET".to_string(), "/pd/api/v1/store/{id}", "4xx"));
    let endpoints: BTreeSet<&str> = seen.iter().map(|s| s.1).collect();
    assert_eq!(
        endpoints,
        BTreeSet::from([
            "/pd/api/v1/health",
            "/pd/api/v1/store/{id}",
            "/pd/api/v1/store/{id}/state",
            "/pd/api/v1/store/{id}/label",
            "/pd/api/v1/schedulers/evict-leader-scheduler-{store_id}",
            "/pd/api/v1/members/name/{name}",
            "/pd/api/v1/members/id/{id}",
            "/pd/api/v1/leader/transfer/{name}",
            "/pd/api/v1/regions/store/{id}",
        ])
    );
    for endpoint in endpoints {
        let raw = endpoint.replace("/v1/", "/");
        assert!(!raw.contains(|c: char| c.is_ascii_digit()) && !raw.contains("basic-pd-x"), "{endpoint}");
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_observed_as_such() {
    let pd = FakePd::start().await;
    pd.on("GET", "/pd/api/v1/health", Reply::Hang);
    let seen = Arc::new(SeenRequests::default());
    let c = PdClient::builder([pd.url()])
        .system_proxy(false)
        .timeout(Duration::from_millis(200))
        .retry(fast_retry(0))
        .build()
        .unwrap();
    c.set_request_observer(Some(seen.clone()));
    let _ = c.health().await;
    let dead = PdClient::builder([dead_url().await]).system_proxy(false).retry(fast_retry(0)).build().unwrap();
    dead.set_request_observer(Some(seen.clone()));
    let _ = dead.members().await;
    let classes: Vec<&str> = seen.0.lock().unwrap().iter().map(|s| s.2).collect();
    assert_eq!(classes, ["timeout", "transport"]);
}
