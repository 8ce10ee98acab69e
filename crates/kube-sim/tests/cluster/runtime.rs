use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube_sim::ResourceRef;
use kube_sim::cluster::runtime::BoxFuture;
use kube_sim::cluster::{
    ContainerContext, ContainerExit, ContainerProcess, ContainerRuntime, ExitReporter, Mount, StopRequest,
};
use kube_sim::patch::PatchType;
use serde_json::json;

use crate::common::{Env, condition, is_ready, pod};

#[derive(Default)]
struct Fake {
    log: Mutex<Vec<String>>,
    exits: Mutex<Vec<ExitReporter>>,
    ready: Arc<AtomicBool>,
}

struct FakeProcess {
    fake: Arc<Fake>,
    ready: Arc<AtomicBool>,
}

impl Fake {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn push(&self, s: String) {
        self.log.lock().unwrap().push(s);
    }
}

struct FakeRuntime(Arc<Fake>);

impl ContainerRuntime for FakeRuntime {
    fn start(&self, ctx: ContainerContext) -> BoxFuture<Result<Arc<dyn ContainerProcess>, String>> {
        let fake = self.0.clone();
        Box::pin(async move {
            fake.push(format!(
                "start {} ip={} restart={} args={:?} config={:?} name={:?}",
                ctx.pod_name,
                ctx.pod_ip,
                ctx.restart_count,
                ctx.args,
                ctx.read_file("/etc/pd/pd.toml"),
                ctx.env_var("POD_NAME")
            ));
            fake.exits.lock().unwrap().push(ctx.exit.clone());
            let ready = fake.ready.clone();
            Ok(Arc::new(FakeProcess { fake, ready }) as Arc<dyn ContainerProcess>)
        })
    }
}

impl ContainerProcess for FakeProcess {
    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
    fn stop(&self, request: StopRequest) -> BoxFuture<ContainerExit> {
        self.fake.push(format!("stop grace={}", request.grace.as_secs()));
        Box::pin(async { ContainerExit::new(0, "") })
    }
    fn kill(&self) {
        self.fake.push("kill".into());
    }
    fn config_changed(&self, mounts: Vec<Mount>) -> BoxFuture<()> {
        let content =
            kube_sim::cluster::runtime::MountSource::files(&mounts[0].source).and_then(|f| f.get("pd.toml").cloned());
        self.fake.push(format!("config {content:?}"));
        Box::pin(async {})
    }
}

#[tokio::test]
async fn the_runtime_hook_starts_probes_reloads_restarts_and_stops_processes() {
    let env = Env::start(20.0).await;
    let fake = Arc::new(Fake::default());
    env.cluster.runtimes().register("pingcap/pd", Arc::new(FakeRuntime(fake.clone())));
    env.create("configmaps", Some("default"), json!({"metadata": {"name": "pd"}, "data": {"pd.toml": "a = 1"}}));
    let containers = json!([{"name": "pd", "image": "docker.io/pingcap/pd:v8.5.0", "args": ["--name=$(POD_NAME)"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/pd"}],
        "readinessProbe": {"tcpSocket": {"port": 2379}, "periodSeconds": 5}}]);
    env.create(
        "pods",
        Some("default"),
        pod(
            "pd-0",
            json!({"nodeName": "node-1", "containers": containers,
        "terminationGracePeriodSeconds": 40, "volumes": [{"name": "config", "configMap": {"name": "pd"}}]}),
        ),
    );

    let p = env.wait_pod("pd-0", "Running", |p| p["status"]["phase"] == "Running").await;
    let ip = p["status"]["podIP"].as_str().unwrap().to_string();
    assert_eq!(
        fake.log()[0],
        format!("start pd-0 ip={ip} restart=0 args=[\"--name=pd-0\"] config=Some(\"a = 1\") name=Some(\"pd-0\")")
    );
    assert!(!is_ready(&p), "the process says it is not ready");
    fake.ready.store(true, Ordering::SeqCst);
    env.wait_pod("pd-0", "Ready at the next probe", is_ready).await;

    env.client
        .patch(
            &ResourceRef::new("", "v1", "configmaps"),
            Some("default"),
            "pd",
            None,
            PatchType::Merge,
            &json!({"data": {"pd.toml": "a = 2"}}),
        )
        .unwrap();
    env.sim.clock().advance(Duration::from_secs(60));
    env.wait("the config re-delivered", |_| fake.log().contains(&"config Some(\"a = 2\")".to_string()).then_some(()))
        .await;

    let crash = |n: usize| fake.exits.lock().unwrap()[n].exited(1, "boom");
    crash(0);
    let p = env
        .wait_pod("pd-0", "restarted once", |p| {
            p["status"]["containerStatuses"][0]["restartCount"] == 1
                && p["status"]["containerStatuses"][0]["state"]["running"].is_object()
        })
        .await;
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(
        (last["exitCode"].clone(), last["reason"].clone(), last["message"].clone()),
        (json!(1), json!("Error"), json!("boom"))
    );
    env.wait("the second start", |_| (fake.exits.lock().unwrap().len() == 2).then_some(())).await;
    crash(1);
    let p = env
        .wait_pod("pd-0", "CrashLoopBackOff", |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
        .await;
    let message = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"].as_str().unwrap();
    assert!(message.starts_with("back-off 10s restarting failed container=pd pod=pd-0_default("), "{message}");
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 2);
    env.wait_event("pd-0", "BackOff: Back-off restarting failed container pd in pod pd-0_default(").await;
    env.sim.clock().advance(Duration::from_secs(10));
    env.wait_pod("pd-0", "running after the back-off", |p| {
        p["status"]["containerStatuses"][0]["state"]["running"].is_object()
    })
    .await;
    assert!(fake.log().iter().any(|l| l.contains("restart=2")));

    env.client.delete(&ResourceRef::new("", "v1", "pods"), Some("default"), "pd-0", &Default::default()).unwrap();
    env.wait("the pod gone", |e| e.get("pods", Some("default"), "pd-0").is_none().then_some(())).await;
    assert!(fake.log().iter().any(|l| l.starts_with("stop grace=")), "{:?}", fake.log());
    env.shutdown().await;
}

/// A runtime whose processes exit when the test says (by container name), or at once
/// when started with `--exit-now`; its preStop hooks fail for `/missing`.
#[derive(Default)]
struct Scripted {
    starts: Mutex<Vec<String>>,
    exits: Mutex<Vec<(String, ExitReporter)>>,
    stops: Mutex<Vec<String>>,
}

impl Scripted {
    fn starts(&self) -> Vec<String> {
        self.starts.lock().unwrap().clone()
    }
    /// The latest start of `container` exits with `code`.
    fn exit(&self, container: &str, code: i32) {
        let exits = self.exits.lock().unwrap();
        let (_, reporter) = exits.iter().rev().find(|(name, _)| name == container).unwrap();
        reporter.exited(code, if code == 0 { "" } else { "failed" });
    }
}

struct ScriptedRuntime(Arc<Scripted>);
struct ScriptedProcess(Arc<Scripted>, String);

impl ContainerRuntime for ScriptedRuntime {
    fn start(&self, ctx: ContainerContext) -> BoxFuture<Result<Arc<dyn ContainerProcess>, String>> {
        let scripted = self.0.clone();
        Box::pin(async move {
            let name = ctx.container.name.clone();
            scripted.starts.lock().unwrap().push(format!("{name} restart={}", ctx.restart_count));
            if ctx.args.iter().any(|a| a == "--exit-now") {
                ctx.exit.exited(0, "");
            }
            scripted.exits.lock().unwrap().push((name.clone(), ctx.exit.clone()));
            Ok(Arc::new(ScriptedProcess(scripted, name)) as Arc<dyn ContainerProcess>)
        })
    }
}

impl ContainerProcess for ScriptedProcess {
    fn pre_stop(&self, handler: &serde_json::Value) -> BoxFuture<Result<(), String>> {
        let missing = handler["exec"]["command"][0] == "/missing";
        Box::pin(async move {
            if missing { Err("exec: \"/missing\": stat /missing: no such file or directory".into()) } else { Ok(()) }
        })
    }
    fn stop(&self, _request: StopRequest) -> BoxFuture<ContainerExit> {
        self.0.stops.lock().unwrap().push(self.1.clone());
        Box::pin(async { ContainerExit::new(0, "") })
    }
}

fn init_status(p: &serde_json::Value, i: usize) -> &serde_json::Value {
    &p["status"]["initContainerStatuses"][i]
}

/// Init containers run one at a time, each to completion: a claimed one until its
/// process exits (a failure restarts it), an unclaimed one at once; the app container
/// starts only then, and the statuses say where the pod is.
#[tokio::test]
async fn init_containers_run_to_completion_before_the_app_containers() {
    let env = Env::start(20.0).await;
    let scripted = Arc::new(Scripted::default());
    env.cluster.runtimes().register("tools/copy", Arc::new(ScriptedRuntime(scripted.clone())));
    env.cluster.runtimes().register("pingcap/tikv", Arc::new(ScriptedRuntime(scripted.clone())));
    let spec = json!({"nodeName": "node-1",
        "initContainers": [
            {"name": "copy", "image": "tools/copy:v1"},
            {"name": "quick", "image": "tools/copy:v1", "args": ["--exit-now"]},
            {"name": "plain", "image": "busybox"}],
        "containers": [{"name": "tikv", "image": "pingcap/tikv:v8.5.0"}]});
    env.create("pods", Some("default"), pod("kv", spec));

    let p = env
        .wait_pod("kv", "the first init container running", |p| init_status(p, 0)["state"]["running"].is_object())
        .await;
    assert_eq!(p["status"]["phase"], "Pending");
    let initialized = condition(&p, "Initialized");
    assert_eq!(
        (initialized["status"].clone(), initialized["reason"].clone(), initialized["message"].clone()),
        (
            json!("False"),
            json!("ContainersNotInitialized"),
            json!("containers with incomplete status: [copy quick plain]")
        )
    );
    assert_eq!(init_status(&p, 1)["state"]["waiting"]["reason"], "PodInitializing");
    assert_eq!(p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");
    assert_eq!(scripted.starts(), ["copy restart=0"]);

    scripted.exit("copy", 1);
    env.wait("the failed init container started again", |_| (scripted.starts().len() == 2).then_some(())).await;
    assert_eq!(scripted.starts(), ["copy restart=0", "copy restart=1"], "nothing after it started");
    let p = env.get("pods", Some("default"), "kv").unwrap();
    assert_eq!(init_status(&p, 0)["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(p["status"]["phase"], "Pending");

    scripted.exit("copy", 0);
    let p = env.wait_pod("kv", "Running", |p| p["status"]["phase"] == "Running").await;
    assert_eq!(scripted.starts(), ["copy restart=0", "copy restart=1", "quick restart=0", "tikv restart=0"]);
    assert_eq!(condition(&p, "Initialized")["status"], "True");
    for i in 0..3 {
        let s = init_status(&p, i);
        assert_eq!((s["state"]["terminated"]["reason"].clone(), s["ready"].clone()), (json!("Completed"), json!(true)));
    }
    assert_eq!(init_status(&p, 0)["restartCount"], 1);
    let events = env.wait_event("kv", "Started: Started container plain").await;
    assert!(events.contains(&"Started: Started container plain".to_string()), "{events:?}");
    env.shutdown().await;
}

#[tokio::test]
async fn an_init_container_failing_under_restart_policy_never_fails_the_pod() {
    let env = Env::start(20.0).await;
    let scripted = Arc::new(Scripted::default());
    env.cluster.runtimes().register("tools/copy", Arc::new(ScriptedRuntime(scripted.clone())));
    let spec = json!({"nodeName": "node-1", "restartPolicy": "Never",
        "initContainers": [{"name": "copy", "image": "tools/copy:v1"}]});
    env.create("pods", Some("default"), pod("once", spec));
    env.wait("the init container started", |_| (!scripted.starts().is_empty()).then_some(())).await;
    scripted.exit("copy", 2);
    let p = env.wait_pod("once", "Failed", |p| p["status"]["phase"] == "Failed").await;
    assert_eq!(init_status(&p, 0)["state"]["terminated"]["exitCode"], 2);
    assert_eq!(p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");
    assert_eq!(scripted.starts(), ["copy restart=0"], "the app container never starts");
    env.shutdown().await;
}

/// A preStop hook that fails is a Warning Event without its output; the container is
/// stopped all the same.
#[tokio::test]
async fn a_failed_pre_stop_hook_is_reported_and_the_container_stopped() {
    let env = Env::start(20.0).await;
    let scripted = Arc::new(Scripted::default());
    env.cluster.runtimes().register("pingcap/tikv", Arc::new(ScriptedRuntime(scripted.clone())));
    let containers = json!([{"name": "tikv", "image": "pingcap/tikv:v8.5.0",
        "lifecycle": {"preStop": {"exec": {"command": ["/missing", "--flag"]}}}}]);
    env.create("pods", Some("default"), pod("kv", json!({"nodeName": "node-1", "containers": containers})));
    env.wait_pod("kv", "Ready", is_ready).await;
    env.client.delete(&ResourceRef::new("", "v1", "pods"), Some("default"), "kv", &Default::default()).unwrap();
    env.wait("the pod gone", |e| e.get("pods", Some("default"), "kv").is_none().then_some(())).await;
    let events = env.wait_event("kv", "FailedPreStopHook: PreStopHook failed").await;
    assert!(events.contains(&"FailedPreStopHook: PreStopHook failed".to_string()), "{events:?}");
    assert_eq!(*scripted.stops.lock().unwrap(), ["tikv"]);
    env.shutdown().await;
}

/// A node powered off stops its pods' processes and goes NotReady; a pod deleted
/// meanwhile stays terminating; powered on, the kubelet starts the containers again and
/// only then finishes the deletion it was asked for.
#[tokio::test]
async fn a_powered_off_node_stops_its_processes_until_it_is_powered_on() {
    let env = Env::start(20.0).await;
    let fake = Arc::new(Fake::default());
    fake.ready.store(true, Ordering::SeqCst);
    env.cluster.runtimes().register("pingcap/pd", Arc::new(FakeRuntime(fake.clone())));
    let containers = json!([{"name": "pd", "image": "pingcap/pd:v8.5.0"}]);
    for name in ["on-1", "also-1"] {
        env.create("pods", Some("default"), pod(name, json!({"nodeName": "node-1", "containers": containers})));
        env.wait_pod(name, "Ready", is_ready).await;
    }
    let starts = |f: &Fake| f.log().iter().filter(|l| l.starts_with("start ")).count();
    assert_eq!(starts(&fake), 2);

    env.cluster.nodes().set_powered("node-1", false).unwrap();
    env.wait("both processes killed", |_| (fake.log().iter().filter(|l| *l == "kill").count() == 2).then_some(()))
        .await;
    let p = env.wait_pod("on-1", "not Ready", |p| condition(p, "Ready")["status"] == "False").await;
    assert_eq!(p["status"]["phase"], "Running", "the API still shows it running, as a real cluster would");
    let node = env.get("nodes", None, "node-1").unwrap();
    assert_eq!(condition(&node, "Ready")["status"], "Unknown");

    env.client.delete(&ResourceRef::new("", "v1", "pods"), Some("default"), "also-1", &Default::default()).unwrap();
    env.sim.clock().advance(Duration::from_secs(600));
    let p = env.get("pods", Some("default"), "also-1").expect("no kubelet confirms the deletion");
    assert!(p["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(starts(&fake), 2, "nothing starts on a machine that is off");

    env.cluster.nodes().set_powered("node-1", true).unwrap();
    env.wait_pod("on-1", "Ready again", is_ready).await;
    env.wait("the deleted pod gone", |e| e.get("pods", Some("default"), "also-1").is_none().then_some(())).await;
    assert!(starts(&fake) >= 3, "the pod's container started again: {:?}", fake.log());
    let node = env.get("nodes", None, "node-1").unwrap();
    assert_eq!(condition(&node, "Ready")["status"], "True");
    env.shutdown().await;
}

/// Records what its process finds at `/tls/tls.crt` (a whole Secret volume) whenever
/// the kubelet reports a change.
struct TlsRuntime(Arc<Mutex<Vec<String>>>);

struct TlsProcess(Arc<Mutex<Vec<String>>>);

fn seen(mounts: &[Mount], mount_path: &str) -> Option<String> {
    let mount = mounts.iter().find(|m| m.mount_path == mount_path)?;
    let files = mount.source.files()?;
    let key = mount.sub_path.as_deref().unwrap_or("tls.crt");
    files.get(key).cloned()
}

impl ContainerRuntime for TlsRuntime {
    fn start(&self, ctx: ContainerContext) -> BoxFuture<Result<Arc<dyn ContainerProcess>, String>> {
        let log = self.0.clone();
        Box::pin(async move {
            log.lock().unwrap().push(format!("start {:?}", ctx.read_file("/tls/tls.crt")));
            Ok(Arc::new(TlsProcess(log)) as Arc<dyn ContainerProcess>)
        })
    }
}

impl ContainerProcess for TlsProcess {
    fn stop(&self, _request: StopRequest) -> BoxFuture<ContainerExit> {
        Box::pin(async { ContainerExit::new(0, "") })
    }
    fn config_changed(&self, mounts: Vec<Mount>) -> BoxFuture<()> {
        self.0.lock().unwrap().push(format!("changed {:?}", seen(&mounts, "/tls")));
        Box::pin(async {})
    }
}

#[tokio::test]
async fn a_changed_secret_reaches_a_running_process_after_the_sync_delay_without_a_restart() {
    let env = Env::start(20.0).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    env.cluster.runtimes().register("pingcap/tikv", Arc::new(TlsRuntime(log.clone())));
    let secret = |cert: &str| json!({"metadata": {"name": "tls"}, "stringData": {"tls.crt": cert}});
    env.create("secrets", Some("default"), secret("one"));
    let containers = json!([{"name": "tikv", "image": "pingcap/tikv:v8.5.0",
        "volumeMounts": [{"name": "tls", "mountPath": "/tls"}]}]);
    env.create(
        "pods",
        Some("default"),
        pod("kv-0", json!({"nodeName": "node-1", "containers": containers, "volumes": [{"name": "tls", "secret": {"secretName": "tls"}}]})),
    );
    let p = env.wait_pod("kv-0", "Running", |p| p["status"]["phase"] == "Running").await;
    assert_eq!(log.lock().unwrap().clone(), vec!["start Some(\"one\")".to_string()]);

    let data = json!({"data": {"tls.crt": "dHdv"}}); // "two"
    env.client
        .patch(&ResourceRef::new("", "v1", "secrets"), Some("default"), "tls", None, PatchType::Merge, &data)
        .unwrap();
    env.sim.clock().advance(Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(log.lock().unwrap().len(), 1, "not before the kubelet's sync delay: {:?}", log.lock().unwrap());
    env.sim.clock().advance(Duration::from_secs(40));
    env.wait("the new files delivered", |_| (log.lock().unwrap().len() == 2).then_some(())).await;
    assert_eq!(log.lock().unwrap()[1], "changed Some(\"two\")");
    let now = env.get("pods", Some("default"), "kv-0").unwrap();
    assert_eq!(now["metadata"]["uid"], p["metadata"]["uid"]);
    assert_eq!(now["status"]["containerStatuses"][0]["restartCount"], 0, "no restart");
    env.shutdown().await;
}
