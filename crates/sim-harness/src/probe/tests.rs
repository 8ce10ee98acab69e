//! The probe against a bare pd-sim (no Kubernetes), on tokio's paused clock so the
//! simulated time, and so every write, is deterministic.

use std::collections::BTreeSet;
use std::time::Duration;

use pd_sim::{Config, PdSim};
use sim_clock::SimClock;

use super::*;

async fn three_stores(regions: usize) -> (PdSim, Vec<u64>) {
    let clock = SimClock::new(1.0);
    let sim = PdSim::start(Config { regions, clock: Some(clock), ..Config::fast() }).await.unwrap();
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(sim.control().register_store(&format!("tikv-{n}:20160")).await.unwrap().id);
    }
    sim.clock().sleep(Duration::from_secs(3)).await;
    assert!(sim.control().snapshot().regions.iter().all(|r| r.voter_count() == 3));
    (sim, ids)
}

fn config(seed: u64) -> ProbeConfig {
    ProbeConfig { interval: Duration::from_millis(100), seed }
}

#[tokio::test(start_paused = true)]
async fn writes_every_interval_of_simulated_time_and_verifies_clean() {
    let (sim, _) = three_stores(6).await;
    let probe = WorkloadProbe::start(sim.control(), sim.clock(), config(7));
    sim.clock().sleep(Duration::from_millis(2050)).await;
    let report = probe.report();
    assert_eq!(report.acknowledged.len(), 20);
    assert!(report.refused.is_empty());
    assert_eq!(report.availability(), 1.0);
    let gaps: BTreeSet<Duration> = report.acknowledged.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert_eq!(gaps, BTreeSet::from([Duration::from_millis(100)]), "one write per interval");
    let snap = sim.control().snapshot();
    let regions: BTreeSet<u64> = report
        .acknowledged
        .iter()
        .filter_map(|w| {
            snap.regions
                .iter()
                .find(|r| r.start_key <= w.key && (r.end_key.is_empty() || w.key < r.end_key))
                .map(|r| r.id)
        })
        .collect();
    assert!(regions.len() >= 4, "writes spread over the regions: {regions:?}");
    let first = snap.regions.iter().find(|r| r.start_key.is_empty()).map(|r| r.id);
    let aimed_first = report.acknowledged.iter().filter(|w| w.key.starts_with("00")).count();
    let landed_first = report
        .acknowledged
        .iter()
        .filter(|w| snap.regions.iter().any(|r| Some(r.id) == first && (r.end_key.is_empty() || w.key < r.end_key)))
        .count();
    assert!(aimed_first > 0);
    assert_eq!(aimed_first, landed_first, "keys aimed at the first region land there");
    let verdict = probe.verify();
    assert_eq!((verdict.acknowledged, verdict.refused), (20, 0));
    assert!(verdict.lost.is_empty() && verdict.unreadable.is_empty(), "{verdict:?}");
    sim.clock().sleep(Duration::from_secs(1)).await;
    assert_eq!(probe.report().acknowledged.len(), 20, "verify stops the writes");
    verdict.assert_nothing_lost();
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn refused_writes_are_recorded_with_their_time_and_reason() {
    let (sim, ids) = three_stores(1).await;
    let probe = WorkloadProbe::start(sim.control(), sim.clock(), config(1));
    sim.clock().sleep(Duration::from_millis(550)).await;
    let leader = sim.control().snapshot().regions[0].leader.unwrap();
    let followers: Vec<u64> = ids.iter().copied().filter(|s| *s != leader).collect();
    for s in &followers {
        sim.control().stop_store(*s).await.unwrap();
    }
    let stopped_at = sim.clock().now().since_start();
    sim.clock().sleep(Duration::from_millis(500)).await;
    for s in &followers {
        sim.control().restart_store(*s, None).await.unwrap();
    }
    sim.clock().sleep(Duration::from_millis(500)).await;
    let report = probe.report();
    assert_eq!((report.acknowledged.len(), report.refused.len()), (10, 5), "{report:?}");
    assert!(report.refused.iter().all(|r| r.at > stopped_at && matches!(r.reason, Unavailable::NoQuorum { .. })));
    assert!((report.availability() - 10.0 / 15.0).abs() < 1e-9);
    let verdict = probe.verify();
    assert_eq!((verdict.acknowledged, verdict.refused), (10, 5));
    assert!(verdict.lost.is_empty() && verdict.unreadable.is_empty(), "{verdict:?}");
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_writes_the_same_keys() {
    let keys = |seed| async move {
        let (sim, _) = three_stores(6).await;
        let probe = WorkloadProbe::start(sim.control(), sim.clock(), config(seed));
        let keys: Vec<String> = (0..10).map(|_| probe.write_once().unwrap()).collect();
        probe.stop();
        sim.shutdown().await;
        keys
    };
    let a = keys(3).await;
    assert_eq!(a, keys(3).await);
    assert_ne!(a, keys(4).await);
    assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 10, "every key is new");
}

#[tokio::test(start_paused = true)]
async fn losing_two_of_three_replicas_fails_the_verdict() {
    let (sim, ids) = three_stores(4).await;
    let probe = WorkloadProbe::start(sim.control(), sim.clock(), config(9));
    sim.clock().sleep(Duration::from_millis(1050)).await;
    sim.control().destroy_store_data(ids[0]).await.unwrap();
    let verdict = probe.verify();
    assert!(verdict.lost.is_empty(), "one of three replicas: {verdict:?}");
    sim.control().destroy_store_data(ids[1]).await.unwrap();
    let verdict = probe.verify();
    assert_eq!(verdict.lost.len(), 10, "every key was on the two destroyed stores: {verdict:?}");
    let failed = std::panic::catch_unwind(|| verdict.assert_nothing_lost());
    assert!(failed.is_err());
    sim.shutdown().await;
}
