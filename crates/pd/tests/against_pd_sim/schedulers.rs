//! Schedulers and the evict-leader scheduler.

use std::collections::BTreeSet;
use std::time::Duration;

use tikv_operator_pd::{PdError, Subject};

use crate::common::{Env, expect_err};

const EVICT_LEADER_SCHEDULER_NAME: &str = "evict-leader-scheduler";

#[tokio::test]
async fn evict_leader_lifecycle_drains_the_leaders_of_the_store() {
    let env = Env::with_stores(3, 3).await;
    let c = &env.client;
    let s1 = env.id(1);
    // Balance-leader spreads the leaders of the bootstrap store.
    env.eventually("every store leads some regions", Duration::from_secs(60), async |env| {
        env.client.all_stores().await.unwrap().iter().all(|s| s.leader_count > 0)
    })
    .await;

    let schedulers = c.schedulers().await.unwrap();
    assert!(schedulers.iter().any(|s| s == "balance-leader-scheduler"), "{schedulers:?}");
    assert!(!schedulers.iter().any(|s| s == EVICT_LEADER_SCHEDULER_NAME));
    // No evict-leader scheduler: its config is PD's plain 404, which means "nobody".
    assert_eq!(c.evict_leader_config().await.unwrap(), None);
    assert!(!c.is_evicting_leaders(s1).await.unwrap());
    assert!(!c.remove_evict_leader(s1).await.unwrap());

    // An unknown store: 400 ErrStoreNotFound while the scheduler does not exist.
    let error = expect_err(c.add_evict_leader(999_999).await, "evict an unknown store");
    assert!(matches!(error, PdError::NotFound { subject: Subject::Store(999_999), .. }), "{error:?}");

    c.add_evict_leader(s1).await.unwrap();
    c.add_evict_leader(s1).await.unwrap();
    let schedulers = c.schedulers().await.unwrap();
    assert!(schedulers.iter().any(|s| s == EVICT_LEADER_SCHEDULER_NAME), "{schedulers:?}");
    let config = c.evict_leader_config().await.unwrap().unwrap();
    assert_eq!(config.store_ids(), BTreeSet::from([s1]));
    assert_eq!(config.batch, Some(3));
    assert!(config.store_id_ranges[&s1].iter().all(|r| r.start_key.is_empty() && r.end_key.is_empty()));
    assert!(c.is_evicting_leaders(s1).await.unwrap());
    assert!(c.store(s1).await.unwrap().pause_leader_transfer_in);

    // The scheduler exists now: PD's 500 from the internal update still names the store.
    let error = expect_err(c.add_evict_leader(999_999).await, "evict an unknown store");
    assert!(matches!(error, PdError::NotFound { subject: Subject::Store(999_999), .. }), "{error:?}");

    // The leader count, as the operator reads it, falls to 0.
    let mut seen = Vec::new();
    env.eventually("store 1 has no leaders", Duration::from_secs(60), async |env| {
        let count = env.client.store(s1).await.unwrap().leader_count;
        seen.push(count);
        count == 0
    })
    .await;
    assert!(seen[0] > 0, "{seen:?}");
    // Leaders stay away while evicted.
    env.run(Duration::from_secs(5));
    assert_eq!(c.store(s1).await.unwrap().leader_count, 0);

    // A second store, then removal one by one; the last one removes the scheduler.
    let s2 = env.id(2);
    c.add_evict_leader(s2).await.unwrap();
    assert_eq!(c.evict_leader_config().await.unwrap().unwrap().store_ids(), BTreeSet::from([s1, s2]));
    assert!(c.remove_evict_leader(s1).await.unwrap());
    assert!(!c.remove_evict_leader(s1).await.unwrap());
    assert!(!c.store(s1).await.unwrap().pause_leader_transfer_in);
    assert_eq!(c.evict_leader_config().await.unwrap().unwrap().store_ids(), BTreeSet::from([s2]));
    assert!(c.remove_evict_leader(s2).await.unwrap());
    assert_eq!(c.evict_leader_config().await.unwrap(), None);
    assert!(!c.schedulers().await.unwrap().iter().any(|s| s == EVICT_LEADER_SCHEDULER_NAME));
    assert!(!c.remove_evict_leader(s2).await.unwrap());

    // Balance-leader brings leaders back.
    env.eventually("store 1 leads again", Duration::from_secs(60), async |env| {
        env.client.store(s1).await.unwrap().leader_count > 0
    })
    .await;
}

#[tokio::test]
async fn no_store_for_region_leader_when_every_other_store_is_evicted() {
    let env = Env::with_stores(3, 4).await;
    let c = &env.client;
    for n in 1..=3 {
        c.add_evict_leader(env.id(n)).await.unwrap();
    }
    let error = expect_err(c.delete_store(env.id(4), false).await, "delete with every other store evicted");
    assert!(
        matches!(
            error,
            PdError::NotEnoughStores { reason: tikv_operator_pd::NotEnoughStoresReason::NoLeaderTarget, .. }
        ),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(400));
    // Ending one eviction lifts the refusal.
    assert!(c.remove_evict_leader(env.id(1)).await.unwrap());
    c.delete_store(env.id(4), false).await.unwrap();
}
