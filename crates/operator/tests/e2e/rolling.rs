//! End-to-end rolling updates (issue #12): a version change rolls PD first, one member
//! at a time (the leader last, after handing leadership over), then TiKV one store at a
//! time with its leaders evicted before its Pod goes and back before the next; a config
//! change under `Restart` restarts the stores the same way. The invariant watcher is on
//! throughout, as in every e2e scenario.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::env::{Env, PD_GROUP, TIKV_GROUP, name};

/// The image tag of an instance's pod, and whether the pod is Ready and not terminating.
fn pod_state(env: &Env, instance: &str) -> Option<(String, bool)> {
    let pod = env.pod_of(instance)?;
    let image = pod["spec"]["containers"][0]["image"].as_str().unwrap_or_default();
    let tag = image.rsplit_once(':').map(|(_, t)| t.to_owned()).unwrap_or_default();
    let ready = pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    Some((tag, ready))
}

/// What the rollout looked like, sampled at every poll.
#[derive(Debug, Default)]
struct Rollout {
    /// Most TiKV (and PD) pods not Ready at one time.
    tikv_down_at_once: usize,
    pd_down_at_once: usize,
    /// A TiKV pod ran the new version while a PD pod still ran the old one.
    tikv_before_pd: bool,
    /// TiKV instances whose pod changed, in order.
    restarted: Vec<String>,
    last_uid: std::collections::BTreeMap<String, String>,
    /// The Cluster said Progressing=True at some sample.
    progressing_seen: bool,
    /// A group said its current revision was its (new) update revision while one of its
    /// pods still ran another version.
    current_flipped_early: Vec<String>,
    /// Each group's update revision at the first sample (before the change).
    first_update: std::collections::BTreeMap<String, String>,
}

impl Rollout {
    fn sample(&mut self, env: &Env, version: &str) {
        let count_down = |plural: &str| {
            env.names(plural).iter().filter(|i| pod_state(env, i).is_none_or(|(_, ready)| !ready)).count()
        };
        self.tikv_down_at_once = self.tikv_down_at_once.max(count_down("tikvs"));
        self.pd_down_at_once = self.pd_down_at_once.max(count_down("pds"));
        let pd_old = env.names("pds").iter().any(|p| pod_state(env, p).is_some_and(|(tag, _)| tag != version));
        let kv_new = env.names("tikvs").iter().any(|t| pod_state(env, t).is_some_and(|(tag, _)| tag == version));
        self.tikv_before_pd |= pd_old && kv_new;
        let cluster = env.get("clusters", crate::env::CLUSTER);
        self.progressing_seen |= cluster
            .as_ref()
            .and_then(|c| crate::env::condition(c, "Progressing"))
            .is_some_and(|c| c["status"] == "True");
        for (plural, group, instances) in [("pdgroups", PD_GROUP, "pds"), ("tikvgroups", TIKV_GROUP, "tikvs")] {
            let Some(g) = env.get(plural, group) else { continue };
            let (current, update) = (&g["status"]["currentRevision"], &g["status"]["updateRevision"]);
            let update = update.as_str().unwrap_or_default().to_owned();
            let first = self.first_update.entry(group.to_owned()).or_insert_with(|| update.clone());
            let old = env.names(instances).iter().any(|i| pod_state(env, i).is_some_and(|(tag, _)| tag != version));
            if *first != update && old && current == update.as_str() {
                self.current_flipped_early.push(format!("{group}: {current}"));
            }
        }
        for t in env.names("tikvs") {
            let Some(uid) = env.pod_of(&t).and_then(|p| p["metadata"]["uid"].as_str().map(str::to_owned)) else {
                continue;
            };
            if let Some(before) = self.last_uid.insert(t.clone(), uid.clone())
                && before != uid
            {
                self.restarted.push(t);
            }
        }
    }
}

/// Every pod on `version`, and both groups say so (status.version, revisions, Synced).
fn rolled_out(env: &Env, version: &str) -> Result<(), String> {
    env.converged(3, 3)?;
    for plural in ["pds", "tikvs"] {
        for i in env.names(plural) {
            let (tag, _) = pod_state(env, &i).ok_or(format!("{i} has no pod"))?;
            if tag != version {
                return Err(format!("{i} runs {tag}"));
            }
        }
    }
    for (plural, group) in [("pdgroups", PD_GROUP), ("tikvgroups", TIKV_GROUP)] {
        let g = env.get(plural, group).ok_or("no group")?;
        if g["status"]["version"] != version {
            return Err(format!("{group} status.version is {}", g["status"]["version"]));
        }
    }
    Ok(())
}

/// PD then TiKV from v8.5.0 to v8.5.1: PD members one at a time, TiKV stores one at a
/// time and only once PD is done, leaders evicted before each TiKV pod goes (the watcher
/// checks every deletion) and no evict-leader entry left; the stores report the new
/// version to PD. Then a config change under `Restart` restarts every store once more,
/// the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_upgrade_of_pd_then_tikv_and_a_config_change() {
    let mut env = Env::start().await;
    env.wait_for("Ready with 3 PD members and 3 TiKV stores", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    let stores = env.store_ids();

    let version = "v8.5.1";
    let mut rollout = Rollout::default();
    rollout.sample(&env, version);
    env.patch("pdgroups", PD_GROUP, json!({"spec": {"template": {"spec": {"version": version}}}}));
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"version": version}}}}));
    env.wait_for("every pod on v8.5.1 and the groups saying so", |e| {
        rollout.sample(e, version);
        rolled_out(e, version)
    })
    .await;
    eprintln!("upgrade: {rollout:?}");
    assert_eq!(rollout.tikv_down_at_once, 1, "one TiKV pod down at a time: {rollout:?}");
    assert_eq!(rollout.pd_down_at_once, 1, "one PD pod down at a time: {rollout:?}");
    assert!(!rollout.tikv_before_pd, "TiKV moves only once PD runs the new version everywhere");
    assert!(rollout.progressing_seen, "the Cluster says Progressing while a group rolls");
    assert!(
        rollout.current_flipped_early.is_empty(),
        "currentRevision flips only once every pod is on it: {rollout:?}"
    );
    let restarted: BTreeSet<&String> = rollout.restarted.iter().collect();
    assert_eq!(restarted.len(), 3, "every store restarted: {:?}", rollout.restarted);
    assert_eq!(rollout.restarted.len(), 3, "each once: {:?}", rollout.restarted);
    assert_eq!(env.store_ids(), stores, "every TiKV keeps its store");
    let snapshot = env.pd_snapshot();
    for store in snapshot.stores.iter().filter(|s| s.state_name == "Up") {
        assert_eq!(store.version, "8.5.1", "store {} reports the new version", store.id);
    }
    assert!(env.evict_leader_stores().is_empty(), "no evict-leader entry left: {:?}", env.evict_leader_stores());
    for t in env.names("tikvs") {
        let tikv: Value = env.get("tikvs", &t).unwrap();
        env.wait_for_event(&name(&tikv), "Normal", "RestartingPod").await;
    }
    env.h.watcher().assert_none();

    // A config change under Restart: every store restarts once more, one at a time —
    // by a new operator at its default timings (polling PD fast only while waiting,
    // which once hid a restart waiting for the slow poll).
    env.restart_operator_with(|config| {
        let defaults = tikv_operator_controllers::Timing::default();
        (config.timing.pd_poll_fast, config.timing.pd_poll_slow, config.timing.pd_poll_idle) =
            (defaults.pd_poll_fast, defaults.pd_poll_slow, defaults.pd_poll_idle);
    })
    .await;
    let mut config_rollout = Rollout::default();
    config_rollout.sample(&env, version);
    let config = "[raftstore]\nraft-log-gc-threshold = 100\n";
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"config": config}}}}));
    env.wait_for("every store restarted with the new config", |e| {
        config_rollout.sample(e, version);
        e.converged(3, 3)?;
        if config_rollout.restarted.len() < 3 {
            return Err(format!("restarted so far: {:?}", config_rollout.restarted));
        }
        Ok(())
    })
    .await;
    assert_eq!(config_rollout.tikv_down_at_once, 1, "{config_rollout:?}");
    assert!(env.evict_leader_stores().is_empty());
    env.verify_probe(&probe);
    env.finish().await;
}

/// The running config of every store, from its status server (`GET /config`).
async fn running_configs(env: &Env) -> Vec<Value> {
    let mut configs = Vec::new();
    for store in env.pd_snapshot().stores.iter().filter(|s| s.state_name == "Up") {
        let (status, body) = env.proxied("GET", &store.status_address, "/config", None).await;
        assert_eq!(status, 200, "GET {}/config: {body}", store.status_address);
        configs.push(serde_json::from_str(&body).unwrap());
    }
    configs
}

/// Under `HotReload` a config change reaches every running store and PD through their
/// online config APIs and restarts no pod; a key that cannot change online is reported
/// on each instance (`ConfigNeedsRestart`) and still restarts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_reload_config_change_restarts_nothing() {
    let env = Env::start().await;
    env.wait_for("Ready with 3 PD members and 3 TiKV stores", |e| e.converged(3, 3)).await;
    let pods = |e: &Env| -> Vec<String> {
        let mut uids: Vec<String> =
            e.list("pods").iter().map(|p| p["metadata"]["uid"].as_str().unwrap_or_default().to_owned()).collect();
        uids.sort();
        uids
    };
    let before = pods(&env);
    let starts: Vec<u64> = env.pd_snapshot().stores.iter().map(|s| s.starts).collect();

    let strategy = json!({"config": "HotReload"});
    let tikv_config = "[raftstore]\nraft-log-gc-threshold = 100\n";
    let spec = json!({"updateStrategy": strategy, "config": tikv_config});
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": spec}}}));
    let pd_config = "[schedule]\nleader-schedule-limit = 8\n";
    env.patch(
        "pdgroups",
        PD_GROUP,
        json!({"spec": {"template": {"spec": {"updateStrategy": strategy, "config": pd_config}}}}),
    );
    env.wait_for("the groups on their new revision", |e| e.converged(3, 3)).await;
    for config in running_configs(&env).await {
        assert_eq!(config["raftstore"]["raft-log-gc-threshold"], 100, "the running store took it");
    }
    let (_, body) = env.sre_pd("GET", "/pd/api/v1/config", None).await;
    let pd: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(pd["schedule"]["leader-schedule-limit"], 8, "PD took it: {body}");
    assert_eq!(pods(&env), before, "no pod was restarted");
    let after: Vec<u64> = env.pd_snapshot().stores.iter().map(|s| s.starts).collect();
    assert_eq!(after, starts, "no store process started again");
    for t in env.names("tikvs") {
        env.wait_for_event(&t, "Normal", "ConfigApplied").await;
    }

    // A key TiKV cannot change while it runs: reported, nothing restarted.
    let fixed = "[raftstore]\nraft-log-gc-threshold = 100\ncapacity = \"100GiB\"\n";
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"config": fixed}}}}));
    env.wait_for("ConfigNeedsRestart on every store", |e| {
        for t in e.list("tikvs") {
            crate::env::check_condition(&t, "ConfigNeedsRestart", "True", "ConfigNeedsRestart")?;
        }
        Ok(())
    })
    .await;
    let t = env.list("tikvs").remove(0);
    let message = crate::env::condition(&t, "ConfigNeedsRestart").unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("raftstore.capacity cannot change"), "{message}");
    assert_eq!(pods(&env), before, "still no pod restarted");
    env.h.watcher().assert_none();
    env.finish().await;
}

/// A store of the cluster on another node, not the operator's (registered straight
/// with PD), stops: a TiKV upgrade started then restarts no TiKV pod, evicts no store's
/// leaders, and says why on the instance it would restart (`RestartBlocked`, naming the
/// store); the operator
/// restarted meanwhile keeps holding; once the store serves again the upgrade resumes
/// and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_elsewhere_holds_the_upgrade_until_it_returns() {
    let mut env = Env::start().await;
    env.wait_for("Ready with 3 PD members and 3 TiKV stores", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    let control = env.pd().control();
    let foreign = control.register_store("tikv-elsewhere.example:20160").await.unwrap().id;
    env.wait_for("the foreign store Up", |e| {
        let up = e.pd_snapshot().stores.iter().any(|s| s.id == foreign && s.state_name == "Up");
        if up { Ok(()) } else { Err("not yet".to_string()) }
    })
    .await;
    control.stop_store(foreign).await.unwrap();
    // Two missed heartbeats: within them a store that just died looks alive.
    env.let_time_pass(std::time::Duration::from_secs(25), std::time::Duration::ZERO).await;
    let uids = |e: &Env| -> Vec<String> {
        e.names("tikvs")
            .iter()
            .map(|t| e.pod_of(t).and_then(|p| p["metadata"]["uid"].as_str().map(str::to_owned)).unwrap_or_default())
            .collect()
    };
    let before = uids(&env);
    let seq = env.api_seq();
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"version": "v8.5.1"}}}}));
    let blocked = env
        .wait_for("an instance saying its restart is held by the stopped store", |e| {
            for t in e.list("tikvs") {
                let Some(synced) = crate::env::condition(&t, "Synced") else { continue };
                let message = synced["message"].as_str().unwrap_or_default();
                if synced["reason"] == "RestartBlocked" && message.contains(&format!("store {foreign}")) {
                    return Ok(message.to_owned());
                }
            }
            Err("no RestartBlocked yet".to_string())
        })
        .await;
    eprintln!("held: {blocked}");
    let held = [("group", TIKV_GROUP), ("operation", "restart"), ("reason", "RestartBlocked")];
    let rolling = [("group", TIKV_GROUP), ("operation", "rolling_update")];
    env.wait_for("the metrics show the held restart within the rolling update", |e| {
        let (held, rolling) = (e.metric(OPERATIONS, &held), e.metric(OPERATIONS, &rolling));
        if held >= 1.0 && rolling == 1.0 { Ok(()) } else { Err(format!("held {held}, rolling {rolling}")) }
    })
    .await;
    env.restart_operator().await;
    env.let_time_pass(std::time::Duration::from_secs(60), std::time::Duration::from_millis(500)).await;
    let pod_deletes: Vec<String> = env
        .operator_writes(seq)
        .iter()
        .filter(|r| r.verb == kube_sim::Verb::Delete && r.resource_path() == "pods")
        .map(|r| format!("{:?}", r.name))
        .collect();
    assert!(pod_deletes.is_empty(), "no TiKV pod restarted while a store is down: {pod_deletes:?}");
    assert_eq!(uids(&env), before);
    let evicting = env.evict_leader_stores();
    assert!(evicting.is_empty(), "no store is kept without leaders while the upgrade is held: {evicting:?}");

    control.restart_store(foreign, None).await.unwrap();
    env.wait_for("every TiKV pod restarted on v8.5.1 and the group Synced", |e| {
        let now = uids(e);
        if now.iter().zip(&before).any(|(a, b)| a == b) {
            return Err(format!("not every pod restarted: {now:?}"));
        }
        let g = e.get("tikvgroups", TIKV_GROUP).ok_or("no group")?;
        crate::env::check_condition(&g, "Synced", "True", "Synced")?;
        crate::env::check_condition(&g, "Ready", "True", "Ready")?;
        if g["status"]["version"] != "v8.5.1" {
            return Err(format!("version {}", g["status"]["version"]));
        }
        Ok(())
    })
    .await;
    assert!(env.evict_leader_stores().is_empty(), "no entry left: {:?}", env.evict_leader_stores());
    env.wait_for("no operation in progress in the metrics", |e| {
        let left = e.metric(OPERATIONS, &[("group", TIKV_GROUP)]);
        if left == 0.0 { Ok(()) } else { Err(format!("{left} in progress")) }
    })
    .await;
    env.h.watcher().assert_none();
    env.verify_probe(&probe);
    env.finish().await;
}

const OPERATIONS: &str = "tikv_operator_operations_in_progress";

/// `kubectl drain` of a node holding a TiKV pod: the group's PodDisruptionBudget lets
/// one TiKV pod go at a time, the evicted pod's preStop hook keeps it up until its
/// leaders moved (the operator evicts them as soon as it sees the pod terminating), the
/// pod comes back on another node of its zone as the same store, and no evict-leader
/// entry is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drain_respects_the_budget_and_moves_leaders_first() {
    let env = Env::start().await;
    env.wait_for("Ready with 3 PD members and 3 TiKV stores", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    let pdb = env.get("poddisruptionbudgets", "tikv-tikv").expect("the TiKV group's budget");
    assert_eq!(pdb["spec"]["minAvailable"], 2, "{pdb}");
    let victim = env.names("tikvs").into_iter().max_by_key(|t| env.store_of(t).map(|s| s.leader_count)).unwrap();
    let id = env.store_id(&victim);
    let pod = env.pod_of(&victim).unwrap();
    let (pod_name, node) = (name(&pod), pod["spec"]["nodeName"].as_str().unwrap().to_owned());

    let cache = tempfile_dir();
    let mut drain = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(env.h.kubeconfig_path())
        .arg("--cache-dir")
        .arg(&cache)
        .args(["drain", &node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut down_at_once = 0;
    let status = env
        .wait_for_within("kubectl drain to finish", std::time::Duration::from_secs(150), |e| {
            let down = e.names("tikvs").iter().filter(|t| pod_state(e, t).is_none_or(|(_, ready)| !ready)).count();
            down_at_once = down_at_once.max(down);
            drain.try_wait().unwrap().ok_or_else(|| "still draining".to_string())
        })
        .await;
    let out = drain.wait_with_output().unwrap();
    assert!(
        status.success(),
        "kubectl drain: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(down_at_once, 1, "the budget lets one TiKV pod go at a time");

    let hook = env.h.program_runs().into_iter().find(|r| r.pod == pod_name && r.hook && r.ended.is_some());
    let hook = hook.expect("the evicted pod's preStop hook ran");
    assert_eq!(
        hook.output.last().map(String::as_str),
        Some(format!("store {id} leads no region: tikv-server may stop").as_str()),
        "{:#?}",
        hook.output
    );
    env.wait_for("Ready again with the same stores", |e| e.converged(3, 3)).await;
    assert_eq!(env.store_id(&victim), id, "the same store came back");
    let moved = env.pod_of(&victim).unwrap();
    assert_ne!(moved["spec"]["nodeName"].as_str(), Some(node.as_str()), "rescheduled off the drained node");
    assert!(env.evict_leader_stores().is_empty(), "no entry left: {:?}", env.evict_leader_stores());
    env.h.watcher().assert_none();
    env.verify_probe(&probe);
    env.finish().await;
}

/// A private directory for kubectl's discovery cache.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kubectl-cache-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Six stores upgraded one at a time, the operator restarted mid-way (nothing of its
/// memory carries over): it resumes where the instances' records say, restarts every
/// store exactly once and leaves no entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_stores_upgrade_one_at_a_time_across_an_operator_restart() {
    let mut env = Env::start().await;
    env.wait_for("Ready with 3 TiKV stores", |e| e.converged(3, 3)).await;
    let probe = env.start_probe();
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 6}}));
    env.wait_for("Ready with 6 TiKV stores", |e| e.converged(3, 6)).await;
    let stores = env.store_ids();
    let version = "v8.5.1";
    let mut rollout = Rollout::default();
    rollout.sample(&env, version);
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"template": {"spec": {"version": version}}}}));
    env.wait_for("two stores restarted", |e| {
        rollout.sample(e, version);
        if rollout.restarted.len() >= 2 { Ok(()) } else { Err(format!("{:?}", rollout.restarted)) }
    })
    .await;
    env.restart_operator().await;
    env.wait_for("every TiKV pod on v8.5.1", |e| {
        rollout.sample(e, version);
        e.converged(3, 6)?;
        let old: Vec<String> =
            e.names("tikvs").into_iter().filter(|t| pod_state(e, t).is_none_or(|(tag, _)| tag != version)).collect();
        if old.is_empty() { Ok(()) } else { Err(format!("still old: {old:?}")) }
    })
    .await;
    eprintln!("six stores: {rollout:?}");
    assert_eq!(rollout.tikv_down_at_once, 1, "{rollout:?}");
    assert_eq!(rollout.restarted.len(), 6, "each store restarted once: {:?}", rollout.restarted);
    assert_eq!(rollout.restarted.iter().collect::<BTreeSet<_>>().len(), 6);
    assert_eq!(env.store_ids(), stores);
    assert!(env.evict_leader_stores().is_empty(), "{:?}", env.evict_leader_stores());
    env.verify_probe(&probe);
    env.finish().await;
}

/// The same intent under a newer operator build that renders Pods differently (here:
/// another tools image for the preStop hook's init container) restarts nothing, and
/// writes nothing once settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_operator_build_restarts_nothing() {
    let mut env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let uids = |e: &Env| -> BTreeSet<String> {
        e.list("pods").iter().map(|p| p["metadata"]["uid"].as_str().unwrap_or_default().to_owned()).collect()
    };
    let before = uids(&env);
    env.restart_operator_with(|config| config.tools_image = "registry.example/tikv-operator:v9.9.9".into()).await;
    env.let_time_pass(std::time::Duration::from_secs(120), std::time::Duration::from_secs(2)).await;
    env.converged(3, 3).unwrap();
    assert_eq!(uids(&env), before, "no pod was recreated");
    env.assert_idle_for_a_minute().await;
    env.finish().await;
}

/// The PD leader with the highest leader priority: PD's priority loop moves leadership
/// back to it after the operator hands it over for its restart, so the operator reads
/// `/members` again right before deleting its pod and transfers again if needed; every
/// member still ends on the new version, one at a time, with quorum kept throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pd_upgrade_with_a_preferred_leader_restarts_every_member_once() {
    let env = Env::start().await;
    env.wait_for("Ready", |e| e.converged(3, 3)).await;
    let leader = env.pd_snapshot().leader.clone().expect("a PD leader");
    let (status, body) =
        env.sre_pd("POST", &format!("/pd/api/v1/members/name/{leader}"), Some(json!({"leader-priority": 10}))).await;
    assert_eq!(status, 200, "{body}");
    let version = "v8.5.1";
    let mut rollout = Rollout::default();
    env.patch("pdgroups", PD_GROUP, json!({"spec": {"template": {"spec": {"version": version}}}}));
    env.wait_for("every PD pod on v8.5.1", |e| {
        rollout.sample(e, version);
        e.converged(3, 3)?;
        let old: Vec<String> =
            e.names("pds").into_iter().filter(|p| pod_state(e, p).is_none_or(|(tag, _)| tag != version)).collect();
        if old.is_empty() { Ok(()) } else { Err(format!("still old: {old:?}")) }
    })
    .await;
    assert_eq!(rollout.pd_down_at_once, 1, "{rollout:?}");
    let leader_instance = env
        .names("pds")
        .into_iter()
        .find(|p| env.pod_of(p).is_some_and(|pod| name(&pod) == leader))
        .expect("the preferred leader's instance");
    env.wait_for_event(&leader_instance, "Normal", "TransferredPDLeader").await;
    env.let_time_pass(std::time::Duration::from_secs(10), std::time::Duration::ZERO).await;
    assert_eq!(env.pd_snapshot().leader.as_deref(), Some(leader.as_str()), "PD's loop gives it back its leadership");
    env.h.watcher().assert_none();
    env.finish().await;
}
