//! One writer: operator *processes* (the real binary, `tikv-operator run`, as
//! `playground --no-operator` prints it) against one harness at real speed (they read
//! the system clock), with short leases. Each names itself in its User-Agent (`POD_NAME`
//! → identity), so kube-sim's request log and pd-sim's write log say which process
//! wrote what.
//!
//! One chain: A leads and B stands by (only A writes); kill -9 A, B takes over and the
//! cluster follows a scale-out; C stands by, B is paused (SIGSTOP) in the middle of a
//! scale-out until C took over, then resumed: nothing B sends after C acquired lands,
//! and B exits non-zero; D stands by, C gets SIGTERM: C releases the Lease (empty
//! holder) and exits 0, and D takes it on its first try.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kube_sim::{ListOptions, PatchType, RequestRecord, Verb};
use serde_json::{Value, json};
use sim_clock::SimInstant;
use sim_harness::{Harness, HarnessConfig};
use tikv_operator::playground::{apply, run_args};
use tikv_operator_api::condition::{reasons, types};

use crate::env::{self, CLUSTER, NS, TIKV_GROUP, check_condition};

const LEASE: &str = "tikv-operator";
/// Short lease settings: a 3 s lease, renewed every 0.5 s, given up after 2 s; the
/// fence keeps a 1 s margin.
const LEASE_ARGS: [&str; 6] = [
    "--leader-elect-lease-duration",
    "3s",
    "--leader-elect-renew-deadline",
    "2s",
    "--leader-elect-retry-period",
    "500ms",
];
const LEASE_DURATION: Duration = Duration::from_secs(3);
const DEADLINE: Duration = Duration::from_secs(60);

/// A `tikv-operator run` process; killed (SIGKILL) when dropped, its log printed if
/// the test is failing.
struct Operator {
    name: &'static str,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Operator {
    fn start(h: &Harness, name: &'static str) -> Operator {
        let log = std::env::temp_dir().join(format!("tikv-operator-e2e-leader-{}-{name}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tikv-operator"))
            .args(run_args(h.kubeconfig_path(), &h.proxy_url()))
            .args(LEASE_ARGS)
            .args(["--pd-poll-fast", "200ms", "--pd-poll-slow", "2s", "--shutdown-grace", "5s"])
            .env("POD_NAME", name)
            .env_remove("POD_NAMESPACE")
            .env("RUST_LOG", "info,tikv_operator_controllers::fence=debug")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Operator { name, child, log, exited: None }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    /// Waits (bounded) for the process to end.
    async fn exit(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = Some(status);
                return status;
            }
            assert!(started.elapsed() < DEADLINE, "{} did not exit", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether a request came from this process (its identity is `<name>_<suffix>`).
    fn sent(&self, user_agent: &str) -> bool {
        user_agent.contains(&format!("({}_", self.name))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "---- last lines of operator {} ({}) ----", self.name, self.log.display());
            for line in tail.into_iter().rev() {
                let _ = writeln!(err, "{line}");
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn list(h: &Harness, group: &str, plural: &str) -> Vec<Value> {
    let store = h.store();
    let Some(info) = store.resource(group, "v1", plural) else { return Vec::new() };
    let Ok(mut list) = store.list(&info, Some(NS), &ListOptions::default()) else { return Vec::new() };
    match list["items"].take() {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

fn lease(h: &Harness) -> Value {
    list(h, "coordination.k8s.io", "leases").into_iter().find(|l| l["metadata"]["name"] == LEASE).unwrap_or_default()
}

fn holder(h: &Harness) -> String {
    lease(h)["spec"]["holderIdentity"].as_str().unwrap_or_default().to_owned()
}

fn get(h: &Harness, plural: &str, name: &str) -> Option<Value> {
    let r = env::r(plural);
    let store = h.store();
    let info = store.resource(&r.group, &r.version, &r.plural)?;
    let list = store.list(&info, Some(NS), &ListOptions::default()).ok()?;
    list["items"].as_array()?.iter().find(|o| o["metadata"]["name"] == name).cloned()
}

/// The Cluster Ready with `kv` stores Up in PD and the TiKV group saying so.
fn ready(h: &Harness, kv: usize) -> Result<(), String> {
    let cluster = get(h, "clusters", CLUSTER).ok_or("no Cluster")?;
    check_condition(&cluster, types::READY, "True", reasons::READY)?;
    let group = get(h, "tikvgroups", TIKV_GROUP).ok_or("no TiKVGroup")?;
    check_condition(&group, types::READY, "True", reasons::READY)?;
    env::expect_eq("tikv group readyReplicas", group["status"]["readyReplicas"].as_u64(), Some(kv as u64))?;
    let clusters = h.pd_clusters();
    let [pd] = clusters.as_slice() else { return Err(format!("{} PD clusters", clusters.len())) };
    let up = pd.snapshot().stores.iter().filter(|s| s.state_name == "Up").count();
    env::expect_eq("stores Up", up, kv)
}

async fn wait_for<T>(h: &Harness, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        let last = match check() {
            Ok(t) => return t,
            Err(e) => e,
        };
        h.watcher().assert_none();
        assert!(started.elapsed() < DEADLINE, "{what}: not within {}s; last: {last}", DEADLINE.as_secs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn requests(h: &Harness, seq: u64) -> Vec<RequestRecord> {
    h.kube_sim().requests().since(seq).0
}

fn is_write(r: &RequestRecord) -> bool {
    !matches!(r.verb, Verb::Get | Verb::List | Verb::Watch)
}

fn describe(r: &RequestRecord) -> String {
    format!("{} {} {} -> {}", r.verb, r.resource_path(), r.name.as_deref().unwrap_or("-"), r.code)
}

/// When `op`'s write of the Lease that made it the holder landed.
fn acquired_at(h: &Harness, op: &Operator) -> SimInstant {
    requests(h, 0)
        .iter()
        .filter(|r| r.resource == "leases" && is_write(r) && r.code < 300 && op.sent(&r.user_agent))
        .map(|r| r.at)
        .min()
        .unwrap_or_else(|| panic!("{} never wrote the Lease", op.name))
}

fn scale(h: &Harness, replicas: u64) {
    let user = h.store().client("user");
    let patch = json!({"spec": {"replicas": replicas}});
    user.patch(&env::r("tikvgroups"), Some(NS), TIKV_GROUP, None, PatchType::Merge, &patch).unwrap();
}

/// Waits until `op` holds the Lease; then `standby` must have sent only Lease reads.
async fn wait_leader(h: &Harness, op: &Operator) {
    wait_for(h, &format!("{} holds the lease", op.name), || match holder(h) {
        holder if op.sent(&format!("({holder}")) => Ok(()),
        holder => Err(format!("held by {holder:?}")),
    })
    .await;
}

async fn wait_standing_by(h: &Harness, op: &Operator, since: u64) {
    wait_for(h, &format!("{} reads the lease", op.name), || {
        match requests(h, since).iter().any(|r| op.sent(&r.user_agent) && r.resource == "leases") {
            true => Ok(()),
            false => Err("not yet".into()),
        }
    })
    .await;
}

/// What `op` sent from `seq` on: `(everything but Lease reads, successful writes)`.
fn sent_by(h: &Harness, op: &Operator, seq: u64) -> (Vec<String>, Vec<String>) {
    let mine: Vec<RequestRecord> = requests(h, seq).into_iter().filter(|r| op.sent(&r.user_agent)).collect();
    let not_lease_reads = mine.iter().filter(|r| r.resource != "leases" || is_write(r)).map(describe).collect();
    let writes = mine.iter().filter(|r| is_write(r) && r.code < 300).map(describe).collect();
    (not_lease_reads, writes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operator_processes_one_writer_with_fencing_and_release() {
    let config = HarnessConfig {
        nodes: 6,
        zones: 3,
        speed: 1.0,
        watch_delay: Duration::from_millis(50),
        ..HarnessConfig::fast()
    };
    let h = Harness::start(config).await.unwrap();
    tikv_operator::tools::register_simulated(&h, tikv_operator_controllers::DEFAULT_TOOLS_IMAGE);
    let kubectl = h.store().client("kubectl");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
    let mut docs = apply::read_dir(&examples).unwrap();
    for doc in &mut docs {
        if matches!(doc.kind(), "PDGroup" | "TiKVGroup") {
            doc.object["spec"]["minReadySeconds"] = json!(0);
        }
    }
    apply::install_crds(&kubectl).unwrap();
    apply::ensure_namespaces(&kubectl, &docs).unwrap();
    for doc in &docs {
        apply::apply(&kubectl, doc).unwrap();
    }

    // A leads, B stands by: only A reconciles.
    let started = Instant::now();
    let a = Operator::start(&h, "op-a");
    wait_leader(&h, &a).await;
    let seq = h.kube_sim().requests().next_seq();
    let b = Operator::start(&h, "op-b");
    wait_standing_by(&h, &b, seq).await;
    wait_for(&h, "Ready with 3 stores", || ready(&h, 3)).await;
    let (b_sent, _) = sent_by(&h, &b, seq);
    assert!(b_sent.is_empty(), "the standby only reads the Lease: {b_sent:#?}");
    let (_, a_writes) = sent_by(&h, &a, 0);
    assert!(a_writes.iter().any(|w| w.contains("core.tikv.org/tikvs")), "A reconciles: {a_writes:#?}");
    let pd_clients: BTreeSet<String> = h.pd_writes().snapshot().into_iter().map(|w| w.client).collect();
    assert!(pd_clients.iter().all(|c| a.sent(c)), "only A writes to PD: {pd_clients:?}");
    eprintln!("A led and the cluster was Ready after {:?}", started.elapsed());

    // kill -9 A: B takes over within the lease duration (plus its retry period) and
    // carries out a scale-out.
    let mut a = a;
    let killed = h.clock().now();
    a.signal("-KILL");
    assert!(!a.exit().await.success());
    wait_leader(&h, &b).await;
    let takeover = acquired_at(&h, &b) - killed;
    eprintln!("B took over {takeover:?} after A was killed (lease {LEASE_DURATION:?})");
    assert_eq!(lease(&h)["spec"]["leaseTransitions"], 1);
    scale(&h, 4);
    wait_for(&h, "Ready with 4 stores, under B", || ready(&h, 4)).await;

    // C stands by; B is paused in the middle of a scale-out until C took over.
    let seq = h.kube_sim().requests().next_seq();
    let c = Operator::start(&h, "op-c");
    wait_standing_by(&h, &c, seq).await;
    let mut b = b;
    let seq = h.kube_sim().requests().next_seq();
    scale(&h, 5);
    wait_for(&h, "B acting on the scale-out", || match sent_by(&h, &b, seq).1.is_empty() {
        true => Err("no write yet".into()),
        false => Ok(()),
    })
    .await;
    b.signal("-STOP");
    // `kill` has returned: B is stopped. Whatever B checks against its fence from now on
    // must be refused.
    let stopped = std::time::SystemTime::now();
    wait_leader(&h, &c).await;
    let passed = acquired_at(&h, &c);
    // Leave B stopped well past its lease, as a long GC pause or a frozen VM would.
    tokio::time::sleep(LEASE_DURATION).await;
    let resumed = h.clock().now();
    b.signal("-CONT");
    let status = b.exit().await;
    assert!(!status.success(), "a replica that lost the Lease exits non-zero: {status}");
    // Writes of B landing after C acquired can only be ones already past B's fence when
    // it was stopped (in flight, like a delayed packet: no client-side check can recall
    // them). The fence's promise is that none is *decided* after: no write allowed
    // after the stop, in B's own log (every write passes the fence, which logs it).
    let late: Vec<String> = requests(&h, 0)
        .iter()
        .filter(|r| b.sent(&r.user_agent) && is_write(r) && r.code < 300 && r.at >= passed)
        .map(describe)
        .collect();
    let late_pd: Vec<String> = h
        .pd_writes()
        .snapshot()
        .iter()
        .filter(|w| b.sent(&w.client) && w.at >= passed)
        .map(env::describe_pd_write)
        .collect();
    eprintln!("B's writes in flight when stopped, landing after C acquired: {late:?} {late_pd:?}");
    assert!(!late.iter().any(|w| w.contains("leases")), "B wrote the Lease after C acquired it: {late:#?}");
    let log = std::fs::read_to_string(&b.log).unwrap_or_default();
    let (before, after): (Vec<&str>, Vec<&str>) =
        log.lines().filter(|l| l.contains("write allowed")).partition(|l| logged_at(l).is_some_and(|at| at < stopped));
    assert!(!before.is_empty(), "B's fence logs the writes it lets through (it wrote while leading)");
    assert!(after.is_empty(), "B's fence let writes through after it was stopped: {after:#?}");
    let refused = log.lines().filter(|l| l.contains("refused")).count();
    eprintln!("B resumed {:?} after C acquired; {refused} write(s) refused by its fence", resumed - passed);
    wait_for(&h, "Ready with 5 stores, under C", || ready(&h, 5)).await;

    // D stands by (paused, to look at the Lease in between); C gets SIGTERM.
    let seq = h.kube_sim().requests().next_seq();
    let d = Operator::start(&h, "op-d");
    wait_standing_by(&h, &d, seq).await;
    d.signal("-STOP");
    let mut c = c;
    c.signal("-TERM");
    let status = c.exit().await;
    assert!(status.success(), "SIGTERM: a clean exit: {status}");
    let released = lease(&h);
    assert_eq!(released["spec"]["holderIdentity"], "", "released: {released}");
    assert_eq!(released["spec"]["leaseDurationSeconds"], 1, "{released}");
    let seq = h.kube_sim().requests().next_seq();
    d.signal("-CONT");
    wait_leader(&h, &d).await;
    let first_write = requests(&h, seq)
        .into_iter()
        .find(|r| d.sent(&r.user_agent) && r.resource == "leases" && is_write(r))
        .map(|r| describe(&r));
    assert_eq!(
        first_write.as_deref(),
        Some("update coordination.k8s.io/leases tikv-operator -> 200"),
        "D takes a released Lease on its first try"
    );
    wait_for(&h, "Ready with 5 stores, under D", || ready(&h, 5)).await;
    drop(d);
    h.watcher().assert_none();
    eprintln!("the whole chain took {:?}", started.elapsed());
    h.shutdown().await;
}

/// When a log line of the operator (text format, RFC 3339 UTC timestamp first) was
/// written.
fn logged_at(line: &str) -> Option<std::time::SystemTime> {
    let stamp = line.split_whitespace().next()?;
    let at: jiff::Timestamp = stamp.parse().ok()?;
    Some(std::time::SystemTime::from(at))
}
