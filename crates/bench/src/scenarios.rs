//! The single-cluster scenarios, run under one profile: bring-up, idle, a rolling
//! restart, a scale-in; each measured from the simulators' records.

use std::collections::BTreeMap;
use std::time::Duration;

use kube_sim::{RequestRecord, Verb};
use serde_json::{Value, json};
use sim_harness::PdWrite;

use crate::env::{Env, Mode, NS, Profile, TIKV_GROUP, View, cluster_docs};
use crate::pd_count::PdRequest;
use crate::sampler::{Sample, Sampler};
use crate::timeline::{Interval, StoreRestart, covered, idle, rolling_idle};

/// Real-time bound on any one wait.
const LIMIT: Duration = Duration::from_secs(900);

#[derive(Clone, Debug, Default)]
pub struct BringUp {
    pub total: Duration,
    /// Covered by some pod between its creation and its readiness.
    pub simulators: Duration,
    pub beyond: Duration,
    /// The operator's API writes until it settled, Events apart.
    pub writes: usize,
    pub events: usize,
    pub creates: usize,
    /// Condition changes of the operator's objects, as sampled.
    pub transitions: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Idle {
    pub window: Duration,
    pub api_reads: usize,
    pub api_writes: usize,
    pub pd_reads: usize,
    pub pd_writes: usize,
}

impl Idle {
    pub fn per_minute(&self, n: usize) -> f64 {
        n as f64 * 60.0 / self.window.as_secs_f64().max(1e-9)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Rolling {
    pub total: Duration,
    pub per_store: Duration,
    /// Stores whose every step was seen.
    pub complete: usize,
}

#[derive(Clone, Debug, Default)]
pub struct ScaleIn {
    pub total: Duration,
    /// PD moving the store's leaders and regions away, and its pod stopping.
    pub simulators: Duration,
    pub beyond: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct ClusterFigures {
    pub bring_up: Option<BringUp>,
    pub idle: Option<Idle>,
    pub rolling3: Option<Rolling>,
    pub scale_in: Option<ScaleIn>,
    pub rolling9: Option<Rolling>,
    pub problems: Vec<String>,
}

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub idle_window: Duration,
    pub rolling3: bool,
    pub scale_in: bool,
    pub rolling9: bool,
}

fn is_operator(r: &RequestRecord) -> bool {
    !r.in_process
}

fn is_write(r: &RequestRecord) -> bool {
    !matches!(r.verb, Verb::Get | Verb::List | Verb::Watch)
}

/// The operator's HTTP requests from `seq` on.
fn operator_requests(env: &Env, seq: u64) -> Vec<RequestRecord> {
    env.h.kube_sim().requests().since(seq).0.into_iter().filter(is_operator).collect()
}

/// A PD write as the attribution reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdWriteAt {
    pub at: Duration,
    pub method: String,
    pub path: String,
    /// The body's `store_id`, if any.
    pub store: Option<u64>,
}

impl PdWriteAt {
    fn of(w: &PdWrite) -> PdWriteAt {
        let body: Value = serde_json::from_slice(&w.body).unwrap_or(Value::Null);
        PdWriteAt {
            at: w.at.since_start(),
            method: w.method.clone(),
            path: w.path.clone(),
            store: body["store_id"].as_u64(),
        }
    }
}

fn operator_pd_writes(env: &Env, from: Duration) -> Vec<PdWriteAt> {
    env.h
        .pd_writes()
        .snapshot()
        .iter()
        .filter(|w| w.client.starts_with("tikv-operator") && w.at.since_start() >= from)
        .map(PdWriteAt::of)
        .collect()
}

/// Waits until the operator made no API write for 3 s of real time.
async fn settle(env: &Env) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut seq = env.h.kube_sim().requests().next_seq();
    let mut quiet = std::time::Instant::now();
    while quiet.elapsed() < Duration::from_secs(3) {
        anyhow::ensure!(started.elapsed() < LIMIT, "the operator never stops writing");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if operator_requests(env, seq).iter().any(is_write) {
            seq = env.h.kube_sim().requests().next_seq();
            quiet = std::time::Instant::now();
        }
    }
    Ok(())
}

/// Runs the scenarios of `plan` under `profile`.
pub async fn run(profile: Profile, mode: Mode, plan: Plan) -> ClusterFigures {
    let mut figures = ClusterFigures::default();
    if let Err(e) = three_stores(profile, mode, plan, &mut figures).await {
        figures.problems.push(format!("{}: {e:#}", profile.name()));
    }
    match idle_of(profile, plan.idle_window).await {
        Ok(idle) => figures.idle = Some(idle),
        Err(e) => figures.problems.push(format!("{} idle: {e:#}", profile.name())),
    }
    if plan.rolling9 {
        match rolling_of(profile, mode, 9).await {
            Ok(r) => figures.rolling9 = Some(r),
            Err(e) => figures.problems.push(format!("{} rolling restart of 9: {e:#}", profile.name())),
        }
    }
    figures
}

async fn three_stores(profile: Profile, mode: Mode, plan: Plan, figures: &mut ClusterFigures) -> anyhow::Result<()> {
    let mut env = Env::prepare(mode, 6, &cluster_docs(NS, 3)?).await?;
    let result = async {
        figures.bring_up = Some(bring_up(&mut env, profile).await?);
        if plan.rolling3 {
            figures.rolling3 = Some(rolling(&env, 3).await?);
        }
        if plan.scale_in {
            figures.scale_in = Some(scale_in(&env).await?);
        }
        anyhow::Ok(())
    }
    .await;
    env.finish().await;
    result
}

/// How long PD's cache keeps polling at its "recent activity" period after anything
/// changed (2 min), and a poll more: an idle cluster is measured after it.
const ACTIVITY_TAIL: Duration = Duration::from_secs(150);

/// A Ready cluster left alone, everything on the simulated clock (the counts are per
/// simulated minute; [`Mode::SIMULATED_TIMERS`]): the requests of `window` after the
/// cluster settled and PD's activity tail passed.
async fn idle_of(profile: Profile, window: Duration) -> anyhow::Result<Idle> {
    let mut env = Env::prepare(Mode::SIMULATED_TIMERS, 6, &cluster_docs(NS, 3)?).await?;
    let result = async {
        env.start_operator(profile);
        env.wait_until("the cluster Ready", LIMIT, |e| group_done(e, 3)).await?;
        settle(&env).await?;
        env.let_pass(ACTIVITY_TAIL).await;
        idle_window(&env, window).await
    }
    .await;
    env.finish().await;
    result
}

async fn rolling_of(profile: Profile, mode: Mode, stores: usize) -> anyhow::Result<Rolling> {
    let mut env = Env::prepare(mode, 9, &cluster_docs(NS, stores)?).await?;
    let result = async {
        env.start_operator(profile);
        env.wait_until("the cluster Ready", LIMIT, |e| group_done(e, stores)).await?;
        settle(&env).await?;
        rolling(&env, stores).await
    }
    .await;
    env.finish().await;
    result
}

fn group_done(env: &Env, stores: usize) -> bool {
    let view = View::of(&env.h);
    let sample = crate::sampler::take(&view);
    sample.cluster_ready && sample.group_done && sample.tikv_instances == stores
}

async fn bring_up(env: &mut Env, profile: Profile) -> anyhow::Result<BringUp> {
    let view = View::of(&env.h);
    let sampler = Sampler::start(&view);
    let seq = env.h.kube_sim().requests().next_seq();
    let start = env.now();
    env.start_operator(profile);
    env.wait_until("the cluster Ready", LIMIT, |e| group_done(e, 3)).await?;
    settle(env).await?;
    let samples = sampler.stop(&view);
    let ready = samples.iter().find(|s| s.cluster_ready).map_or(env.now(), |s| s.at);
    let span = Interval::new(start, ready);
    let busy = pod_lifetimes(&samples, span.end);
    let simulators = covered(span, &busy);
    let requests = operator_requests(env, seq);
    let writes: Vec<&RequestRecord> = requests.iter().filter(|r| is_write(r)).collect();
    let events = writes.iter().filter(|r| r.resource == "events").count();
    let creates = writes.iter().filter(|r| r.resource != "events" && r.verb == Verb::Create).count();
    Ok(BringUp {
        total: span.len(),
        simulators,
        beyond: idle(span, &busy),
        writes: writes.len() - events,
        events,
        creates,
        transitions: transitions(&samples),
    })
}

/// Each pod from when it was first seen to when it was first seen Ready (or `end`).
pub fn pod_lifetimes(samples: &[Sample], end: Duration) -> Vec<Interval> {
    let mut seen: BTreeMap<String, (Duration, Option<Duration>)> = BTreeMap::new();
    for s in samples {
        for pod in s.pods.values() {
            let entry = seen.entry(pod.uid.clone()).or_insert((s.at, None));
            if pod.ready && entry.1.is_none() {
                entry.1 = Some(s.at);
            }
        }
    }
    seen.into_values().map(|(from, ready)| Interval::new(from, ready.unwrap_or(end))).collect()
}

/// How many times the conditions of the operator's objects changed (a new object's
/// first conditions count as one change).
pub fn transitions(samples: &[Sample]) -> usize {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    let mut changes = 0;
    for s in samples {
        for (object, conditions) in &s.conditions {
            let before = last.insert(object, conditions);
            if before.unwrap_or("") != conditions.as_str() {
                changes += 1;
            }
        }
    }
    changes
}

async fn idle_window(env: &Env, window: Duration) -> anyhow::Result<Idle> {
    let seq = env.h.kube_sim().requests().next_seq();
    let from = env.now();
    env.let_pass(window).await;
    let until = env.now();
    let api: Vec<RequestRecord> = operator_requests(env, seq)
        .into_iter()
        .filter(|r| r.verb != Verb::Watch && r.at.since_start() < until)
        .collect();
    let pd: Vec<PdRequest> = env.pd.since(from).into_iter().filter(|r| r.at < until).collect();
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        for r in &pd {
            eprintln!("idle: PD {} {} at {:.1} s", r.method, r.path, (r.at - from).as_secs_f64());
        }
    }
    Ok(Idle {
        window: until - from,
        api_reads: api.iter().filter(|r| !is_write(r)).count(),
        api_writes: api.iter().filter(|r| is_write(r)).count(),
        pd_reads: pd.iter().filter(|r| r.is_read()).count(),
        pd_writes: pd.iter().filter(|r| !r.is_read()).count(),
    })
}

/// The TiKV instances and their store IDs.
fn store_ids(env: &Env) -> BTreeMap<String, u64> {
    env.list("tikvs")
        .iter()
        .filter_map(|t| Some((crate::env::name(t).to_owned(), t["status"]["id"].as_str()?.parse().ok()?)))
        .collect()
}

/// A config change under the default update strategy (Restart): every store restarts
/// once, one at a time, as in a version upgrade.
async fn rolling(env: &Env, stores: usize) -> anyhow::Result<Rolling> {
    let view = View::of(&env.h);
    let ids = store_ids(env);
    let sampler = Sampler::start(&view);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seq = env.h.kube_sim().requests().next_seq();
    let start = env.now();
    let config = "[raftstore]\nraft-log-gc-threshold = 100\n";
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"config": config}}}}))?;
    let before = crate::sampler::take(&view).update_revision;
    env.wait_until("every store restarted", LIMIT, |e| {
        let s = crate::sampler::take(&View::of(&e.h));
        s.group_done && s.update_revision != before && s.tikv_instances == stores
    })
    .await?;
    let samples = sampler.stop(&view);
    let end = samples
        .iter()
        .find(|s| s.at > start && s.group_done && s.update_revision != before)
        .map_or(env.now(), |s| s.at);
    let deletes: Vec<(Duration, String)> = operator_requests(env, seq)
        .into_iter()
        .filter(|r| r.verb == Verb::Delete && r.resource == "pods")
        .map(|r| (r.at.since_start(), r.name.unwrap_or_default()))
        .collect();
    let pd = operator_pd_writes(env, start);
    let restarts: Vec<StoreRestart> =
        ids.iter().map(|(instance, &id)| store_restart(&samples, &pd, &deletes, instance, id, start)).collect();
    let span = Interval::new(start, end);
    let (idle, per_store) = rolling_idle(span, &restarts);
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        let t = |d: Option<Duration>| {
            d.map_or("-".to_owned(), |d| format!("{:.2}", (d.saturating_sub(start)).as_secs_f64()))
        };
        eprintln!("rolling {stores}: span {:.2} s, idle {:.2} s", span.len().as_secs_f64(), idle.as_secs_f64());
        for r in &restarts {
            eprintln!(
                "  store {}: evict {} gone {} | delete {} gone {} | new {} ready {} | back-entry {} back {}",
                r.store,
                t(r.evict_added),
                t(r.leaders_gone),
                t(r.pod_deleted),
                t(r.pod_gone),
                t(r.pod_created),
                t(r.pod_ready),
                t(r.evict_removed),
                t(r.leaders_back)
            );
        }
    }
    Ok(Rolling { total: span.len(), per_store, complete: restarts.iter().filter(|r| r.complete()).count() })
}

fn evict_added(w: &PdWriteAt, id: u64) -> bool {
    w.method == "POST" && w.path.ends_with("/schedulers") && w.store == Some(id)
}

fn evict_removed(w: &PdWriteAt, id: u64) -> bool {
    w.method == "DELETE" && w.path.ends_with(&format!("evict-leader-scheduler-{id}"))
}

/// One store's restart, from the samples and the write logs.
pub fn store_restart(
    samples: &[Sample],
    pd: &[PdWriteAt],
    pod_deletes: &[(Duration, String)],
    instance: &str,
    id: u64,
    start: Duration,
) -> StoreRestart {
    let mut r = StoreRestart { store: id, ..StoreRestart::default() };
    let first = |from: Option<Duration>, pred: &dyn Fn(&Sample) -> bool| {
        let from = from?;
        samples.iter().find(|s| s.at >= from && pred(s)).map(|s| s.at)
    };
    r.evict_added = pd.iter().find(|w| evict_added(w, id)).map(|w| w.at);
    let leaders_before = samples
        .iter()
        .take_while(|s| r.evict_added.is_none_or(|t| s.at < t))
        .filter_map(|s| s.stores.get(&id).map(|st| st.leaders))
        .last()
        .unwrap_or(0);
    r.leaders_gone = first(r.evict_added, &|s| s.stores.get(&id).is_some_and(|st| st.leaders == 0));
    let old = samples.iter().take_while(|s| s.at <= start).filter_map(|s| s.pods.get(instance)).last().cloned();
    let Some(old) = old else { return r };
    r.pod_deleted = pod_deletes.iter().find(|(at, name)| *at >= start && *name == old.name).map(|(at, _)| *at);
    let replaced = |s: &Sample| s.pods.get(instance).is_none_or(|p| p.uid != old.uid);
    r.pod_gone = first(r.pod_deleted, &replaced);
    r.pod_created = first(Some(start), &|s| s.pods.get(instance).is_some_and(|p| p.uid != old.uid));
    r.pod_ready =
        first(r.pod_created, &|s| s.pods.get(instance).is_some_and(|p| p.uid != old.uid && p.ready && !p.terminating));
    r.evict_removed =
        pd.iter().find(|w| evict_removed(w, id) && r.evict_added.is_some_and(|t| w.at >= t)).map(|w| w.at);
    let half = leaders_before.div_ceil(2);
    r.leaders_back = first(r.evict_removed, &|s| s.stores.get(&id).is_some_and(|st| st.leaders >= half));
    r
}

/// 3 → 4 stores (not measured), then 4 → 3: the time beyond PD moving the store's
/// leaders and regions away and Kubernetes stopping its pod.
async fn scale_in(env: &Env) -> anyhow::Result<ScaleIn> {
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 4}}))?;
    env.wait_until("4 stores", LIMIT, |e| group_done(e, 4)).await?;
    settle(env).await?;
    let view = View::of(&env.h);
    let ids = store_ids(env);
    let sampler = Sampler::start(&view);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seq = env.h.kube_sim().requests().next_seq();
    let start = env.now();
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}))?;
    env.wait_until("3 stores", LIMIT, |e| {
        group_done(e, 3) && e.list("pods").iter().filter(|p| crate::env::name(p).contains("tikv")).count() == 3
    })
    .await?;
    let samples = sampler.stop(&view);
    let end = env.now();
    let left = store_ids(env);
    let (instance, id) =
        ids.iter().find(|(i, _)| !left.contains_key(*i)).map(|(i, id)| (i.clone(), *id)).unwrap_or_default();
    let pd = operator_pd_writes(env, start);
    let deletes: Vec<(Duration, String)> = operator_requests(env, seq)
        .into_iter()
        .filter(|r| r.verb == Verb::Delete && r.resource == "pods")
        .map(|r| (r.at.since_start(), r.name.unwrap_or_default()))
        .collect();
    let restart = store_restart(&samples, &pd, &deletes, &instance, id, start);
    let deleted = pd.iter().find(|w| w.method == "DELETE" && w.path.ends_with(&format!("/store/{id}"))).map(|w| w.at);
    let tombstone = deleted.and_then(|from| {
        samples
            .iter()
            .find(|s| s.at >= from && s.stores.get(&id).is_some_and(|st| st.state == "Tombstone"))
            .map(|s| s.at)
    });
    let busy: Vec<Interval> = [
        Interval::between(restart.evict_added, restart.leaders_gone),
        Interval::between(deleted, tombstone),
        Interval::between(restart.pod_deleted, restart.pod_gone),
    ]
    .into_iter()
    .flatten()
    .collect();
    let span = Interval::new(start, end);
    Ok(ScaleIn { total: span.len(), simulators: covered(span, &busy), beyond: idle(span, &busy) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{PodSample, StoreSample};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sample(at: u64, leaders: u64, pod: Option<(&str, bool, bool)>) -> Sample {
        let mut s = Sample { at: ms(at), ..Sample::default() };
        s.stores.insert(4, StoreSample { leaders, state: "Up".into() });
        if let Some((uid, ready, terminating)) = pod {
            s.pods
                .insert("tikv-a".into(), PodSample { name: "tikv-tikv-a".into(), uid: uid.into(), ready, terminating });
        }
        s
    }

    fn write(at: u64, method: &str, path: &str, store: Option<u64>) -> PdWriteAt {
        PdWriteAt { at: ms(at), method: method.into(), path: path.into(), store }
    }

    /// A hand-built restart of store 4 (10 leaders before): every step is found where
    /// the logs and samples put it.
    #[test]
    fn a_store_restart_is_read_off_the_samples_and_the_write_logs() {
        let samples = vec![
            sample(0, 10, Some(("old", true, false))),
            sample(100, 10, Some(("old", true, false))),
            sample(300, 0, Some(("old", true, false))),
            sample(500, 0, Some(("old", true, true))),
            sample(900, 0, None),
            sample(1000, 0, Some(("new", false, false))),
            sample(1500, 0, Some(("new", true, false))),
            sample(2100, 3, Some(("new", true, false))),
            sample(2300, 6, Some(("new", true, false))),
        ];
        let pd = vec![
            write(150, "POST", "/pd/api/v1/schedulers", Some(4)),
            write(160, "POST", "/pd/api/v1/schedulers", Some(5)),
            write(2000, "DELETE", "/pd/api/v1/schedulers/evict-leader-scheduler-4", None),
        ];
        let deletes = vec![(ms(450), "tikv-tikv-a".to_owned())];
        let r = store_restart(&samples, &pd, &deletes, "tikv-a", 4, ms(50));
        assert_eq!(
            r,
            StoreRestart {
                store: 4,
                evict_added: Some(ms(150)),
                leaders_gone: Some(ms(300)),
                pod_deleted: Some(ms(450)),
                pod_gone: Some(ms(900)),
                pod_created: Some(ms(1000)),
                pod_ready: Some(ms(1500)),
                evict_removed: Some(ms(2000)),
                leaders_back: Some(ms(2300)),
            }
        );
        // Idle: 50..150, 300..450, 900..1000 (none: created at once), 1500..2000, 2300..2400.
        let (idle, _) = crate::timeline::rolling_idle(Interval::new(ms(50), ms(2400)), &[r]);
        assert_eq!(idle, ms(100 + 150 + 100 + 500 + 100));
    }

    #[test]
    fn condition_changes_and_pod_lifetimes_come_from_the_samples() {
        let mut a = sample(0, 0, Some(("p", false, false)));
        a.conditions.insert("TiKV/a".into(), "Ready=False/Starting".into());
        let mut b = sample(100, 0, Some(("p", true, false)));
        b.conditions.insert("TiKV/a".into(), "Ready=False/Starting".into());
        b.conditions.insert("TiKV/b".into(), "Ready=False/Starting".into());
        let mut c = sample(200, 0, Some(("q", false, false)));
        c.conditions.insert("TiKV/a".into(), "Ready=True/Ready".into());
        c.conditions.insert("TiKV/b".into(), "Ready=False/Starting".into());
        let samples = [a, b, c];
        assert_eq!(transitions(&samples), 3);
        assert_eq!(
            pod_lifetimes(&samples, ms(500)),
            vec![Interval::new(ms(0), ms(100)), Interval::new(ms(200), ms(500))]
        );
    }
}
