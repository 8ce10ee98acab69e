//! The scale-in pre-check (DESIGN.md section 5 item 8): a scale-in PD could never
//! finish is refused before any store is touched.
//!
//! Counted over the whole cluster's TiKV stores that are Up with a fresh heartbeat and
//! not already leaving, against `max-replicas` (the default placement rule holds that
//! many voters; rules beyond it are not read): after `leaving` more stores go,
//! - too few would remain to hold every replica (`NotEnoughStores`);
//! - with an `isolation-level`, too few distinct values of that label would remain for
//!   each replica to sit in its own (`IsolationUnsatisfiable`);
//! - the data on the stores that go would not fit in what the others can still take
//!   below PD's low-space mark (`NotEnoughCapacity`).
//!
//! Pure: the PD view and the stores that would go in, a verdict out. The message says
//! what would unblock it.

use std::collections::BTreeSet;

use tikv_operator_api::condition::reasons;
use tikv_operator_pd::{PdView, Store};

use crate::updater::Blocked;

/// PD counts a store low on space above this share of its capacity used
/// (`low-space-ratio`, default 0.8): regions are not moved onto it.
pub const LOW_SPACE_RATIO: f64 = 0.8;

/// Judges taking `leaving` more stores away: the stores of the group that would go,
/// by ID, the worst case first (the updater picks among them). `Ok` when PD could
/// finish; the first reason it could not otherwise.
pub fn check(view: &PdView, leaving: &[u64]) -> Result<(), Blocked> {
    if leaving.is_empty() {
        return Ok(());
    }
    let going: BTreeSet<u64> = leaving.iter().copied().collect();
    let serving: Vec<&Store> =
        view.stores.values().filter(|s| !s.is_tiflash() && s.is_up_and_heartbeating() && !s.is_removing()).collect();
    let remaining: Vec<&Store> = serving.iter().copied().filter(|s| !going.contains(&s.id)).collect();
    let max_replicas = view.replication.max_replicas;
    let n = remaining.len() as u64;
    if n < max_replicas {
        return Err(Blocked {
            reason: reasons::NOT_ENOUGH_STORES,
            message: format!(
                "removing {} would leave {n} Up {} and max-replicas is {max_replicas}: \
                 raise replicas, add stores, or lower max-replicas",
                stores(going.len() as u64),
                if n == 1 { "store" } else { "stores" }
            ),
        });
    }
    let level = view.replication.isolation_level.as_str();
    if !level.is_empty() {
        let domains: BTreeSet<&str> =
            remaining.iter().filter_map(|s| s.labels.get(level).map(String::as_str)).collect();
        if (domains.len() as u64) < max_replicas {
            return Err(Blocked {
                reason: reasons::ISOLATION_UNSATISFIABLE,
                message: format!(
                    "removing {} would leave {} distinct {level} values for {max_replicas} replicas \
                     (isolation-level {level}): add stores in other {level}s or choose which go",
                    stores(going.len() as u64),
                    domains.len()
                ),
            });
        }
    }
    let to_move: u64 = view.stores.values().filter(|s| going.contains(&s.id)).filter_map(|s| s.used_bytes).sum();
    let room: u64 = remaining
        .iter()
        .filter_map(|s| {
            let capacity = s.capacity_bytes?;
            let used = s.used_bytes.unwrap_or(0);
            Some(((capacity as f64 * LOW_SPACE_RATIO) as u64).saturating_sub(used))
        })
        .sum();
    let known = remaining.iter().all(|s| s.capacity_bytes.is_some());
    if known && to_move > room {
        return Err(Blocked {
            reason: reasons::NOT_ENOUGH_CAPACITY,
            message: format!(
                "the stores that would go hold {} and the others can take {} before PD counts them low on \
                 space ({}% used): add stores or capacity",
                gib(to_move),
                gib(room),
                (LOW_SPACE_RATIO * 100.0) as u64
            ),
        });
    }
    Ok(())
}

/// The `count` stores of `candidates` whose going leaves PD the best chance: from the
/// isolation domain with the most serving stores first, then the least data. If even
/// these could not go, no choice could.
pub fn best_case(view: &PdView, candidates: &[u64], count: usize) -> Vec<u64> {
    let level = view.replication.isolation_level.as_str();
    let domain = |id: u64| view.store(id).and_then(|s| s.labels.get(level).cloned()).unwrap_or_default();
    let mut per_domain: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for s in view.stores.values().filter(|s| !s.is_tiflash() && s.is_up_and_heartbeating() && !s.is_removing()) {
        *per_domain.entry(s.labels.get(level).cloned().unwrap_or_default()).or_default() += 1;
    }
    let mut left: Vec<u64> = candidates.to_vec();
    let mut chosen = Vec::new();
    while chosen.len() < count && !left.is_empty() {
        let used = |id: u64| view.store(id).and_then(|s| s.used_bytes).unwrap_or(0);
        let Some((at, _)) = left
            .iter()
            .enumerate()
            .max_by_key(|(_, id)| (per_domain.get(&domain(**id)).copied().unwrap_or(0), std::cmp::Reverse(used(**id))))
        else {
            break;
        };
        let id = left.remove(at);
        if let Some(n) = per_domain.get_mut(&domain(id)) {
            *n = n.saturating_sub(1);
        }
        chosen.push(id);
    }
    chosen
}

/// `"1 store"`, `"2 stores"`.
fn stores(n: u64) -> String {
    if n == 1 { "1 store".into() } else { format!("{n} stores") }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePd, store};
    use tikv_operator_pd::{NodeState, ReplicationConfig};

    const GIB: u64 = 1 << 30;

    /// A view as the PD cache reads it, with these stores and replication config.
    async fn view(stores: Vec<Store>, replication: ReplicationConfig) -> PdView {
        let mut pd = FakePd::bootstrapped().replication(replication.max_replicas, &[]);
        for s in &stores {
            pd = pd.store(s.id, &s.address, s.node_state);
        }
        let mut view = PdView::clone(&pd.fresh_handle().await.cache.snapshot().view.unwrap());
        view.stores = stores.into_iter().map(|s| (s.id, s)).collect();
        view.replication = replication;
        view
    }

    fn up(id: u64, zone: &str, capacity_gib: u64, used_gib: u64) -> Store {
        let mut s = store(id, &format!("tikv-{id}:20160"), NodeState::Serving);
        s.labels.insert("zone".into(), zone.into());
        s.capacity_bytes = Some(capacity_gib * GIB);
        s.used_bytes = Some(used_gib * GIB);
        s
    }

    fn three() -> ReplicationConfig {
        ReplicationConfig { max_replicas: 3, ..ReplicationConfig::default() }
    }

    #[tokio::test]
    async fn enough_stores_left_passes_and_nothing_leaving_always_does() {
        let stores = vec![up(1, "a", 100, 10), up(2, "b", 100, 10), up(3, "c", 100, 10), up(4, "a", 100, 10)];
        let v = view(stores, three()).await;
        assert_eq!(check(&v, &[4]), Ok(()));
        assert_eq!(check(&v, &[]), Ok(()));
    }

    #[tokio::test]
    async fn too_few_stores_left_is_refused_counting_only_serving_ones() {
        let mut down = up(4, "a", 100, 10);
        down.state_name = tikv_operator_pd::StateName::Disconnected;
        let stores = vec![up(1, "a", 100, 10), up(2, "b", 100, 10), up(3, "c", 100, 10), down];
        let blocked = check(&view(stores, three()).await, &[3]).unwrap_err();
        assert_eq!(blocked.reason, reasons::NOT_ENOUGH_STORES);
        assert!(blocked.message.starts_with("removing 1 store would leave 2 Up stores and max-replicas is 3"));
        let lowered = ReplicationConfig { max_replicas: 2, ..ReplicationConfig::default() };
        let stores = vec![up(1, "a", 100, 10), up(2, "b", 100, 10), up(3, "c", 100, 10)];
        assert_eq!(check(&view(stores, lowered).await, &[3]), Ok(()), "released by lowering max-replicas");
    }

    #[tokio::test]
    async fn an_isolation_level_that_could_no_longer_be_met_is_refused() {
        let zoned = ReplicationConfig {
            max_replicas: 3,
            location_labels: vec!["zone".into()],
            isolation_level: "zone".into(),
            ..ReplicationConfig::default()
        };
        let stores = vec![up(1, "a", 100, 10), up(2, "b", 100, 10), up(3, "c", 100, 10), up(4, "a", 100, 10)];
        let v = view(stores, zoned).await;
        assert_eq!(check(&v, &[4]), Ok(()), "zone a keeps store 1");
        let blocked = check(&v, &[3]).unwrap_err();
        assert_eq!(blocked.reason, reasons::ISOLATION_UNSATISFIABLE);
        assert!(blocked.message.contains("2 distinct zone values for 3 replicas"), "{}", blocked.message);
    }

    #[tokio::test]
    async fn the_best_case_takes_from_the_most_crowded_domain_and_the_least_data() {
        let zoned =
            ReplicationConfig { max_replicas: 3, isolation_level: "zone".into(), ..ReplicationConfig::default() };
        let stores = vec![up(1, "a", 100, 30), up(2, "b", 100, 10), up(3, "c", 100, 15), up(4, "a", 100, 20)];
        let v = view(stores, zoned).await;
        assert_eq!(best_case(&v, &[1, 2, 3, 4], 1), [4], "zone a has two; store 4 holds less");
        assert_eq!(best_case(&v, &[1, 2, 3, 4], 2), [4, 2]);
        assert_eq!(check(&v, &best_case(&v, &[1, 2, 3, 4], 1)), Ok(()));
    }

    #[tokio::test]
    async fn data_that_would_not_fit_below_the_low_space_mark_is_refused() {
        let stores = vec![up(1, "a", 100, 70), up(2, "b", 100, 70), up(3, "c", 100, 70), up(4, "a", 100, 60)];
        let blocked = check(&view(stores, three()).await, &[4]).unwrap_err();
        assert_eq!(blocked.reason, reasons::NOT_ENOUGH_CAPACITY);
        assert_eq!(
            blocked.message,
            "the stores that would go hold 60.0 GiB and the others can take 30.0 GiB before PD counts them low on \
             space (80% used): add stores or capacity"
        );
        let stores = vec![up(1, "a", 100, 50), up(2, "b", 100, 50), up(3, "c", 100, 50), up(4, "a", 100, 60)];
        assert_eq!(check(&view(stores, three()).await, &[4]), Ok(()), "90 GiB of room");
    }
}
