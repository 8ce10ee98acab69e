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

use crate::common::{Env, is_ready, pod};

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
    assert!(
        env.events_of("pd-0")
            .iter()
            .any(|e| e.starts_with("BackOff: Back-off restarting failed container pd in pod pd-0_default("))
    );
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
