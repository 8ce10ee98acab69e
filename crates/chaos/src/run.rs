//! One seeded run: the harness and `examples/basic` as the scenario starts it, the
//! operator (killed and restarted per the schedule), the user's steps and the faults
//! during the fault window, everything healed, then the convergence bound; judged by
//! the spec reached, the safety watcher and the workload probe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube_sim::{FaultAction, FaultId, FaultRule, PatchType, Verb};
use serde_json::{Value, json};
use sim_harness::{Harness, HarnessConfig, ProbeConfig, WorkloadProbe};
use tikv_operator::playground::apply;
use tikv_operator_controllers::OperatorConfig;

use crate::check::{self, NS};
use crate::operator::Operator;
use crate::scenario::{Action, Cond, Plan, Scenario, Trigger};
use crate::schedule::{FaultKind, Schedule};

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Simulated-clock speed.
    pub speed: f64,
    /// Where each run's trace is written (none: not written).
    pub trace_dir: Option<PathBuf>,
    /// Real-time bound on the cluster's first convergence, before anything happens.
    pub setup_deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            speed: 20.0,
            trace_dir: Some(PathBuf::from("target/chaos")),
            setup_deadline: Duration::from_secs(120),
        }
    }
}

/// How one run ended.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub seed: u64,
    pub scenario: String,
    /// Converged within the bound.
    pub converged: bool,
    /// Why not (the last difference seen), or why the run could not start.
    pub failure: Option<String>,
    /// Safety breaches (DESIGN §5), and acknowledged writes lost (a breach too).
    pub breaches: Vec<String>,
    pub crashes: usize,
    pub acknowledged: usize,
    pub refused: usize,
    /// Simulated time from the faults' healing to convergence.
    pub converged_after: Option<Duration>,
    pub real: Duration,
    pub trace: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.converged && self.breaches.is_empty() && self.failure.is_none()
    }

    /// The line printed for a failing run, with the command that replays it.
    pub fn failure_line(&self) -> String {
        let mut why = Vec::new();
        if let Some(f) = &self.failure {
            why.push(f.clone());
        }
        if !self.breaches.is_empty() {
            why.push(format!("{} breach(es): {}", self.breaches.len(), self.breaches[0]));
        }
        format!(
            "FAIL seed {} ({}): {} — replay: {}",
            self.seed,
            self.scenario,
            why.join("; "),
            replay_command(self.seed, &self.scenario)
        )
    }

    /// One line for a passing run.
    pub fn ok_line(&self) -> String {
        let after = self.converged_after.map(|d| format!("{}s", d.as_secs())).unwrap_or_default();
        format!(
            "ok   seed {} ({}): converged {after} after healing, {} crashes, {} writes acknowledged, {} refused, {:.1}s",
            self.seed,
            self.scenario,
            self.crashes,
            self.acknowledged,
            self.refused,
            self.real.as_secs_f64()
        )
    }
}

/// The command that runs this seed again.
pub fn replay_command(seed: u64, scenario: &str) -> String {
    let forced =
        if Scenario::for_seed(seed).name() == scenario { String::new() } else { format!(" --scenario {scenario}") };
    format!("cargo run --release -p tikv-operator-chaos -- --seed {seed}{forced}")
}

/// The last line of a set of runs.
pub fn summary(outcomes: &[Outcome]) -> String {
    let converged = outcomes.iter().filter(|o| o.converged && o.failure.is_none()).count();
    let breaches: usize = outcomes.iter().map(|o| o.breaches.len()).sum();
    format!("chaos: {converged}/{} converged, {breaches} invariant breaches", outcomes.len())
}

/// Poll period of the driver (real time).
const TICK: Duration = Duration::from_millis(100);
/// Watch delay outside faults (informers lag).
const WATCH_DELAY: Duration = Duration::from_millis(50);
/// Regions moving off a store, slow (a big store) and as the e2e tests run them.
const SLOW_MOVES: &str = "2m";
const FAST_MOVES: &str = "50ms";

struct Trace {
    lines: Vec<String>,
    clock: sim_clock::SimClock,
}

impl Trace {
    fn log(&mut self, line: impl Into<String>) {
        let at = self.clock.now().since_start().as_secs_f64();
        self.lines.push(format!("[t={at:>7.1}s] {}", line.into()));
    }
}

/// Runs `seed` (its scenario, or `forced`).
pub async fn run_seed(seed: u64, forced: Option<Scenario>, settings: &Settings) -> Outcome {
    let started = Instant::now();
    let scenario = forced.unwrap_or_else(|| Scenario::for_seed(seed));
    let schedule = Schedule::from_seed(seed);
    let mut outcome = Outcome { seed, scenario: scenario.name().to_owned(), ..Outcome::default() };
    let config = HarnessConfig {
        nodes: 6,
        zones: 3,
        speed: settings.speed,
        watch_delay: WATCH_DELAY,
        seed,
        ..HarnessConfig::fast()
    };
    let h = match Harness::start(config).await {
        Ok(h) => h,
        Err(error) => {
            outcome.failure = Some(format!("the harness did not start: {error:#}"));
            return outcome;
        }
    };
    let mut trace = Trace { lines: Vec::new(), clock: h.clock().clone() };
    trace.log(format!("seed {seed}, scenario {scenario}, speed {}x", settings.speed));
    for line in schedule.describe() {
        trace.log(line);
    }
    let plan = scenario.plan();
    let mut operator = None;
    let result = drive(&h, &plan, &schedule, settings, &mut trace, &mut operator, &mut outcome).await;
    if let Err(failure) = result {
        trace.log(format!("FAILED: {failure}"));
        outcome.failure = Some(failure);
    }
    for breach in h.watcher().breaches() {
        trace.log(format!("BREACH {breach}"));
        outcome.breaches.push(breach.to_string());
    }
    trace.log(writes_summary(&h));
    h.shutdown().await;
    if let Some(operator) = operator {
        operator.finish();
    }
    outcome.real = started.elapsed();
    trace.log(format!("real time {:.1}s", outcome.real.as_secs_f64()));
    outcome.trace = trace.lines;
    if let Some(dir) = &settings.trace_dir {
        write_trace(dir, &outcome);
    }
    outcome
}

fn write_trace(dir: &Path, outcome: &Outcome) {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("seed-{}-{}.log", outcome.seed, outcome.scenario));
    let verdict = if outcome.ok() { outcome.ok_line() } else { outcome.failure_line() };
    let text = format!("{}\n{verdict}\n", outcome.trace.join("\n"));
    if let Err(error) = std::fs::write(&path, text) {
        eprintln!("chaos: cannot write {}: {error}", path.display());
    }
}

/// Everything between the harness's start and its shutdown.
async fn drive(
    h: &Harness,
    plan: &Plan,
    schedule: &Schedule,
    settings: &Settings,
    trace: &mut Trace,
    operator_slot: &mut Option<Operator>,
    outcome: &mut Outcome,
) -> Result<(), String> {
    setup(h, plan)?;
    // The operator's timers (requeues, PD polls, backoff) follow the simulated clock
    // with their default settings, as in the playground: a 10 s recheck is 10 s of the
    // simulators' time, whatever the speed.
    let config = OperatorConfig { pd_proxy: Some(h.proxy_url()), ..OperatorConfig::default() };
    let kubeconfig = h.kubeconfig_path().to_owned();
    let operator =
        operator_slot.insert(Operator::start(kubeconfig, config, h.clock().clone(), schedule.crashes.clone()));
    let start = &plan.start;
    let initial = crate::scenario::Target {
        pd: start.pd as usize,
        kv: start.kv as usize,
        ..crate::scenario::Scenario::ScaleOut.plan().target
    };
    let setup_started = Instant::now();
    let mut shown = String::new();
    loop {
        show_status(h, trace, &mut shown);
        match check::converged(h, &initial) {
            Ok(()) => break,
            Err(last) if setup_started.elapsed() > settings.setup_deadline => {
                return Err(format!("the starting cluster never converged: {last}"));
            }
            Err(_) => tokio::time::sleep(TICK).await,
        }
    }
    trace.log(format!("started: {} PD, {} TiKV, Ready", start.pd, start.kv));
    let probe =
        WorkloadProbe::start_in(h, NS, ProbeConfig { interval: Duration::from_millis(200), seed: schedule.seed })
            .ok_or("no PD cluster for the probe")?;

    // The fault window: steps, faults and crashes.
    let t0 = h.clock().now();
    let since = |h: &Harness| h.clock().now().saturating_duration_since(t0);
    operator.arm();
    let mut faults = Faults::default();
    let mut steps = plan.steps.iter().peekable();
    let mut next_fault = 0;
    loop {
        let now = since(h);
        show_status(h, trace, &mut shown);
        if let Some(point) = operator.poll_crash() {
            trace.log(format!("CRASH {point}; operator #{} started", operator.incarnations() - 1));
            outcome.crashes += 1;
        }
        while let Some(step) = steps.peek() {
            let due = match &step.when {
                Trigger::Now => true,
                Trigger::When(cond) => holds(h, *cond),
            };
            if !due {
                break;
            }
            trace.log(format!("step: {}", step.action));
            perform(h, &step.action, &mut faults, trace).await;
            steps.next();
        }
        while next_fault < schedule.faults.len() && schedule.faults[next_fault].at <= now {
            let fault = &schedule.faults[next_fault];
            faults.inject(h, fault.kind, trace).await;
            next_fault += 1;
        }
        for (i, fault) in schedule.faults.iter().enumerate().take(next_fault) {
            if fault.heals_at() <= now {
                faults.heal_one(h, i, fault.kind, trace);
            }
        }
        if now >= schedule.heal_at {
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    // Steps whose condition never held happen now, before the bound starts.
    for step in steps {
        trace.log(format!("step (its condition never held in the window): {}", step.action));
        perform(h, &step.action, &mut faults, trace).await;
    }
    operator.disarm();
    faults.heal_all(h, trace);
    trace.log("every fault healed; the convergence bound starts");

    // The bound.
    let t1 = h.clock().now();
    let mut last = String::new();
    loop {
        show_status(h, trace, &mut shown);
        if let Some(point) = operator.poll_crash() {
            trace.log(format!("CRASH {point}; operator #{} started", operator.incarnations() - 1));
            outcome.crashes += 1;
        }
        match check::converged(h, &plan.target) {
            Ok(()) => {
                let after = h.clock().now().saturating_duration_since(t1);
                trace.log(format!("converged {}s after healing", after.as_secs()));
                outcome.converged = true;
                outcome.converged_after = Some(after);
                break;
            }
            Err(e) => {
                if e != last {
                    trace.log(format!("not yet: {e}"));
                    last = e;
                }
            }
        }
        if h.clock().now().saturating_duration_since(t1) > plan.bound {
            break;
        }
        tokio::time::sleep(TICK).await;
    }

    let verdict = probe.verify();
    outcome.acknowledged = verdict.acknowledged;
    outcome.refused = verdict.refused;
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for r in probe.report().refused {
        let kind = serde_json::to_value(&r.reason).ok();
        let kind = kind.as_ref().and_then(|v| v["reason"].as_str()).unwrap_or("?").to_owned();
        *refusals.entry(kind).or_default() += 1;
    }
    trace.log(format!(
        "probe: {} acknowledged, {} refused {refusals:?}, {} lost, {} unreadable",
        verdict.acknowledged,
        verdict.refused,
        verdict.lost.len(),
        verdict.unreadable.len()
    ));
    if !verdict.lost.is_empty() {
        let first = &verdict.lost[0];
        outcome.breaches.push(format!(
            "data loss: {} acknowledged writes lost (first: {} in region {:?}: {})",
            verdict.lost.len(),
            first.key,
            first.region,
            first.reason
        ));
    }
    if !outcome.converged {
        return Err(format!("not converged within {}s: {last}", plan.bound.as_secs()));
    }
    if let Some(first) = verdict.unreadable.first() {
        return Err(format!(
            "{} acknowledged keys unreadable after convergence (first: {})",
            verdict.unreadable.len(),
            first.key
        ));
    }
    Ok(())
}

/// CRDs and `examples/basic` as the plan starts it (minReadySeconds 0), applied as a
/// user would; the tools image registered for the TiKV pods' preStop hook.
fn setup(h: &Harness, plan: &Plan) -> Result<(), String> {
    tikv_operator::tools::register_simulated(h, tikv_operator_controllers::DEFAULT_TOOLS_IMAGE);
    let kubectl = h.store().client("kubectl");
    apply::install_crds(&kubectl).map_err(|e| format!("CRDs: {e:#}"))?;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
    let mut docs = apply::read_dir(&examples).map_err(|e| format!("examples/basic: {e:#}"))?;
    for doc in &mut docs {
        match doc.kind() {
            "PDGroup" => {
                doc.object["spec"]["minReadySeconds"] = json!(0);
                doc.object["spec"]["replicas"] = json!(plan.start.pd);
            }
            "TiKVGroup" => {
                doc.object["spec"]["minReadySeconds"] = json!(0);
                doc.object["spec"]["replicas"] = json!(plan.start.kv);
                if plan.start.failover {
                    doc.object["spec"]["failover"] = json!({"enabled": true, "afterDown": "1m"});
                }
            }
            _ => {}
        }
    }
    apply::ensure_namespaces(&kubectl, &docs).map_err(|e| format!("namespaces: {e:#}"))?;
    for doc in &docs {
        apply::apply(&kubectl, doc).map_err(|e| format!("apply {}: {e:#}", doc.kind()))?;
    }
    Ok(())
}

/// Logs the instances' status line when it changed.
fn show_status(h: &Harness, trace: &mut Trace, shown: &mut String) {
    let line = check::status_line(h);
    if line != *shown {
        trace.log(format!("status: {line}"));
        *shown = line;
    }
}

fn holds(h: &Harness, cond: Cond) -> bool {
    match cond {
        Cond::OfflineStarted => check::offline_started(h),
        Cond::Suspended => check::suspended(h),
        Cond::FailoverStarted => check::failover_started(h),
        Cond::MemberRemovalAsked => check::member_leaving(h).is_some(),
    }
}

fn user_patch(h: &Harness, plural: &str, name: &str, patch: &Value) -> Result<(), String> {
    let user = h.store().client("user");
    user.patch(&check::resource(plural), Some(NS), name, None, PatchType::Merge, patch).map(drop).map_err(|e| e.message)
}

async fn perform(h: &Harness, action: &Action, faults: &mut Faults, trace: &mut Trace) {
    let result = match action {
        Action::Patch { plural, name, patch } => user_patch(h, plural, name, patch),
        Action::SlowMoves => set_moves(h, SLOW_MOVES).map(|()| faults.slow_moves = true),
        Action::RefuseMemberRemovals => {
            faults.refuse_member_removals(h, true);
            Ok(())
        }
        Action::AllowMemberRemovals => {
            faults.refuse_member_removals(h, false);
            Ok(())
        }
        Action::LeaderToTheLeaving => leader_to_the_leaving(h).await.map(|m| trace.log(format!("  {m} leads"))),
        Action::PowerOffTikvNode => match tikv_node(h, None) {
            Some((tikv, node)) => {
                trace.log(format!("  {tikv} on {node}"));
                faults.power_off(h, &node)
            }
            None => Err("no TiKV on a node".into()),
        },
    };
    if let Err(e) = result {
        trace.log(format!("  step failed: {e}"));
    }
}

fn set_moves(h: &Harness, base: &str) -> Result<(), String> {
    for pd in h.pd_clusters() {
        pd.control().update_knobs(&json!({"region-move-base": base})).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// pd-ctl `member leader transfer` to the member of the PD instance marked to leave.
async fn leader_to_the_leaving(h: &Harness) -> Result<String, String> {
    let leaving = check::member_leaving(h).ok_or("no PD instance is leaving")?;
    let snapshot = check::pd_snapshot(h)?;
    let member = snapshot
        .members
        .iter()
        .find(|m| m.name == leaving || m.name.ends_with(&format!("-{leaving}")))
        .map(|m| m.name.clone())
        .ok_or_else(|| format!("no PD member for {leaving}"))?;
    h.pd_ctl(&pd_url(h)).leader_transfer(&member).await.map_err(|e| e.to_string())?;
    Ok(member)
}

/// The Cluster's PD URL.
fn pd_url(h: &Harness) -> String {
    check::get(h, "clusters", check::CLUSTER)
        .and_then(|c| c["status"]["pd"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("http://pd-pd.{NS}.svc:2379"))
}

/// A TiKV and its node: the `pick`-th TiKV (by name) if given, else the first whose
/// node holds no PD pod (else any).
fn tikv_node(h: &Harness, pick: Option<u64>) -> Option<(String, String)> {
    let node_of =
        |instance: &str| check::pod_of(h, instance).and_then(|p| p["spec"]["nodeName"].as_str().map(str::to_owned));
    let tikvs: Vec<(String, String)> =
        check::list(h, "tikvs").iter().filter_map(|t| node_of(&check::name(t)).map(|n| (check::name(t), n))).collect();
    if tikvs.is_empty() {
        return None;
    }
    if let Some(pick) = pick {
        return tikvs.get((pick % tikvs.len() as u64) as usize).cloned();
    }
    let pd_nodes: Vec<String> = check::list(h, "pds").iter().filter_map(|p| node_of(&check::name(p))).collect();
    tikvs.iter().find(|(_, n)| !pd_nodes.contains(n)).or(tikvs.first()).cloned()
}

/// What is injected now, to heal.
#[derive(Default)]
struct Faults {
    api_rules: Vec<FaultId>,
    powered_off: Vec<String>,
    /// Nodes powered off by the store-down fault.
    store_down: Vec<String>,
    healed: Vec<usize>,
    slow_moves: bool,
    /// The PD 503 fraction while that fault is on.
    pd_503: Option<f64>,
    /// PD refuses member removals (a scenario step).
    refusing_removals: bool,
}

impl Faults {
    fn power_off(&mut self, h: &Harness, node: &str) -> Result<(), String> {
        if self.powered_off.iter().any(|n| n == node) {
            return Ok(());
        }
        h.cluster().nodes().set_powered(node, false).map_err(|e| e.message)?;
        self.powered_off.push(node.to_owned());
        Ok(())
    }

    async fn inject(&mut self, h: &Harness, kind: FaultKind, trace: &mut Trace) {
        trace.log(format!("fault: {kind}"));
        match kind {
            FaultKind::ApiWriteFailures { fraction, conflict } => {
                let action = if conflict { FaultAction::Conflict } else { FaultAction::InternalError };
                for verb in [Verb::Create, Verb::Update, Verb::Patch, Verb::Delete] {
                    let rule = FaultRule::new(action).verb(verb).client("tikv-operator").fraction(fraction);
                    self.api_rules.push(h.kube_sim().faults().inject(rule));
                }
            }
            FaultKind::WatchDelay { delay } => h.kube_sim().faults().set_watch_delay(delay),
            FaultKind::DropWatches => h.kube_sim().faults().drop_watches(),
            FaultKind::PdLeaderLoss => {
                if let Err(e) = h.pd_ctl(&pd_url(h)).leader_resign().await {
                    trace.log(format!("  the leader did not resign: {e}"));
                }
            }
            FaultKind::Pd503 { fraction } => {
                self.pd_503 = Some(fraction);
                self.set_pd_faults(h);
            }
            FaultKind::StoreDown { pick } => match tikv_node(h, Some(pick)) {
                Some((tikv, node)) if !self.powered_off.contains(&node) && !self.store_down.contains(&node) => {
                    trace.log(format!("  {tikv}'s node {node} powered off"));
                    if let Err(e) = h.cluster().nodes().set_powered(&node, false) {
                        trace.log(format!("  power off failed: {}", e.message));
                    } else {
                        self.store_down.push(node);
                    }
                }
                _ => trace.log("  no TiKV node to power off (already off or none)"),
            },
        }
    }

    fn refuse_member_removals(&mut self, h: &Harness, refuse: bool) {
        self.refusing_removals = refuse;
        self.set_pd_faults(h);
    }

    /// PD's fault list as the flags say (pd-sim clears its faults only all at once).
    fn set_pd_faults(&self, h: &Harness) {
        for pd in h.pd_clusters() {
            let control = pd.control();
            control.clear_faults();
            if self.refusing_removals {
                control.inject_fault(pd_sim::Fault {
                    path: "/pd/api/v1/members/".into(),
                    method: Some("DELETE".into()),
                    status: Some(500),
                    body: Some("\"etcdserver: request timed out\"".into()),
                    ..pd_sim::Fault::default()
                });
            }
            if let Some(fraction) = self.pd_503 {
                control.inject_fault(pd_sim::Fault {
                    status: Some(503),
                    body: Some("[PD:server:ErrServerNotStarted]server not started".into()),
                    probability: Some(fraction),
                    ..pd_sim::Fault::default()
                });
            }
        }
    }

    /// Heals the fault with index `i` of the schedule (once).
    fn heal_one(&mut self, h: &Harness, i: usize, kind: FaultKind, trace: &mut Trace) {
        if self.healed.contains(&i) {
            return;
        }
        self.healed.push(i);
        match kind {
            FaultKind::ApiWriteFailures { .. } => {
                for id in self.api_rules.drain(..) {
                    h.kube_sim().faults().remove(id);
                }
            }
            FaultKind::WatchDelay { .. } => h.kube_sim().faults().set_watch_delay(WATCH_DELAY),
            FaultKind::Pd503 { .. } => {
                self.pd_503 = None;
                self.set_pd_faults(h);
            }
            FaultKind::StoreDown { .. } => {
                for node in self.store_down.drain(..) {
                    let _ = h.cluster().nodes().set_powered(&node, true);
                }
            }
            FaultKind::DropWatches | FaultKind::PdLeaderLoss => return,
        }
        trace.log(format!("healed: {kind}"));
    }

    /// Everything back to normal: no API or PD faults, the usual watch delay, every
    /// node powered, regions moving fast.
    fn heal_all(&mut self, h: &Harness, trace: &mut Trace) {
        let faults = h.kube_sim().faults();
        for id in self.api_rules.drain(..) {
            faults.remove(id);
        }
        faults.set_watch_delay(WATCH_DELAY);
        self.pd_503 = None;
        self.refusing_removals = false;
        self.set_pd_faults(h);
        for node in self.powered_off.drain(..).chain(self.store_down.drain(..)) {
            trace.log(format!("node {node} powered on"));
            let _ = h.cluster().nodes().set_powered(&node, true);
        }
        if self.slow_moves {
            if let Err(e) = set_moves(h, FAST_MOVES) {
                trace.log(format!("regions could not be sped up: {e}"));
            }
            self.slow_moves = false;
        }
    }
}

/// The operator's writes over the run: Kubernetes writes by verb and answer class, PD
/// writes by method.
fn writes_summary(h: &Harness) -> String {
    let (records, _) = h.kube_sim().requests().since(0);
    let mut api: BTreeMap<String, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.client.contains("tikv-operator")) {
        if matches!(r.verb, Verb::Get | Verb::List | Verb::Watch) {
            continue;
        }
        *api.entry(format!("{} {}xx", r.verb, r.code / 100)).or_default() += 1;
    }
    let mut pd = Vec::new();
    for w in h.pd_writes().snapshot().iter().filter(|w| w.client.starts_with("tikv-operator")) {
        let path = w.path.strip_prefix("/pd/api/v1").unwrap_or(&w.path);
        let body: Value = serde_json::from_slice(&w.body).unwrap_or(Value::Null);
        let store = body["store_id"].as_u64().map(|id| format!(" {{store {id}}}")).unwrap_or_default();
        pd.push(format!("t={:.1}s {} {path}{store} -> {}", w.at.since_start().as_secs_f64(), w.method, w.status));
    }
    format!("operator writes: kubernetes {api:?}; PD [{}]", pd.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(seed: u64, converged: bool, breaches: usize) -> Outcome {
        Outcome {
            seed,
            scenario: Scenario::for_seed(seed).name().to_owned(),
            converged,
            failure: (!converged).then(|| "not converged within 900s: TiKV x not Ready".to_owned()),
            breaches: (0..breaches).map(|i| format!("breach {i}")).collect(),
            ..Outcome::default()
        }
    }

    #[test]
    fn the_summary_counts_converged_runs_and_breaches() {
        let runs = [outcome(1, true, 0), outcome(2, false, 0), outcome(3, true, 2)];
        assert_eq!(summary(&runs), "chaos: 2/3 converged, 2 invariant breaches");
        assert!(runs[0].ok() && !runs[1].ok() && !runs[2].ok());
    }

    #[test]
    fn a_failing_seed_prints_the_command_that_replays_it() {
        let line = outcome(2, false, 1).failure_line();
        assert!(line.starts_with("FAIL seed 2 (cancelled-scale-in): not converged within 900s"), "{line}");
        assert!(line.ends_with("replay: cargo run --release -p tikv-operator-chaos -- --seed 2"), "{line}");
        assert_eq!(
            replay_command(2, "volume-grow"),
            "cargo run --release -p tikv-operator-chaos -- --seed 2 --scenario volume-grow"
        );
    }
}
