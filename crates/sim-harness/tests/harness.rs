//! Acceptance tests: PD and TiKV pods inside kube-sim, reached through the proxy, and
//! the safety watcher.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use kube_sim::{DeleteOptions, PatchType, ResourceRef, StoreClient};
use serde_json::{Value, json};
use sim_harness::{
    Harness, HarnessConfig, Instance, Invariant, ProbeConfig, SafetyWatcher, WatcherConfig, WorkloadProbe,
};

const NS: &str = "db";
const SPEED: f64 = 25.0;

fn r(plural: &str) -> ResourceRef {
    ResourceRef::new("", "v1", plural)
}

struct Env {
    h: Harness,
    client: StoreClient,
    http: reqwest::Client,
}

impl Env {
    async fn start() -> Env {
        Env::start_with(HarnessConfig::fast()).await
    }

    async fn start_with(config: HarnessConfig) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let h = Harness::start(HarnessConfig { speed: SPEED, ..config }).await.unwrap();
        let client = h.store().client("test");
        client.create(&r("namespaces"), None, json!({"metadata": {"name": NS}})).unwrap();
        let http = reqwest::Client::builder().proxy(reqwest::Proxy::all(h.proxy_url()).unwrap()).build().unwrap();
        Env { h, client, http }
    }

    fn create(&self, plural: &str, obj: Value) {
        self.client.create(&r(plural), Some(NS), obj).unwrap();
    }

    fn pod(&self, name: &str) -> Option<Value> {
        self.client.get(&r("pods"), Some(NS), name).ok()
    }

    /// Waits (bounded, 60 s real) until `cond` holds, re-checking after every store write
    /// and every few milliseconds while simulated time runs.
    async fn wait<T>(&self, what: &str, mut cond: impl FnMut(&Env) -> Option<T>) -> T {
        let mut rx = self.h.store().subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = cond(self) {
                return v;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    }

    async fn wait_ready(&self, name: &str) -> Value {
        self.wait(&format!("pod {name} Ready"), |e| e.pod(name).filter(is_ready)).await
    }

    /// GET through the proxy until `ok` accepts the answer.
    async fn get_until(&self, url: &str, ok: impl Fn(u16, &str) -> bool) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(url).await;
            if ok(status, &body) {
                return (status, body);
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out on {url}: last {status} {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn get(&self, url: &str) -> (u16, String) {
        match self.http.get(url).send().await {
            Ok(resp) => (resp.status().as_u16(), resp.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    fn delete_as(&self, who: &str, plural: &str, name: &str) {
        self.h.store().client(who).delete(&r(plural), Some(NS), name, &DeleteOptions::default()).unwrap();
    }

    async fn wait_gone(&self, name: &str) {
        self.wait(&format!("pod {name} gone"), |e| e.pod(name).is_none().then_some(())).await;
    }

    fn store_of(&self, pod: &str) -> u64 {
        match self.h.pd_registry().pod(NS, pod) {
            Some(Instance::Tikv { store, .. }) => store,
            other => panic!("pod {pod} runs {other:?}"),
        }
    }

    fn snapshot(&self) -> pd_sim::Snapshot {
        self.h.pd_clusters()[0].snapshot()
    }

    async fn shutdown(self) {
        self.h.shutdown().await;
    }

    /// A request to PD through the proxy as `who` (its User-Agent).
    async fn pd_as(&self, who: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, String) {
        let mut request = self.http.request(method, format!("{PD}{path}")).header("User-Agent", who);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let resp = request.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap_or_default())
    }

    async fn evict_as(&self, who: &str, id: u64) {
        let body = json!({"name": "evict-leader-scheduler", "store_id": id});
        let (status, text) = self.pd_as(who, reqwest::Method::POST, "/pd/api/v1/schedulers", Some(body)).await;
        assert_eq!(status, 200, "{text}");
    }

    async fn end_evict_as(&self, who: &str, id: u64) {
        let path = format!("/pd/api/v1/schedulers/evict-leader-scheduler-{id}");
        let (status, text) = self.pd_as(who, reqwest::Method::DELETE, &path, None).await;
        assert_eq!(status, 200, "{text}");
    }

    /// `DELETE /store/{id}` as `who`, then waits for PD to show it Tombstone.
    async fn offline(&self, who: &str, id: u64) {
        let (status, text) = self.pd_as(who, reqwest::Method::DELETE, &format!("/pd/api/v1/store/{id}"), None).await;
        assert_eq!(status, 200, "{text}");
        self.wait(&format!("store {id} Tombstone"), |e| {
            e.snapshot().store(id).is_some_and(|s| s.state_name == "Tombstone").then_some(())
        })
        .await;
    }

    fn leaders(&self, id: u64) -> u64 {
        self.snapshot().store(id).map(|s| s.leader_count).unwrap_or(0)
    }

    async fn wait_leading(&self, id: u64) {
        self.wait(&format!("store {id} leads regions"), |e| (e.leaders(id) > 0).then_some(())).await;
    }

    fn label(&self, plural: &str, name: &str, key: &str, value: &str) {
        let patch = json!({"metadata": {"labels": {key: value}}});
        self.client.patch(&r(plural), Some(NS), name, None, PatchType::Merge, &patch).unwrap();
    }

    /// One deletecollection over HTTP as `who` (`kubectl delete pvc -l <selector>`).
    async fn delete_collection_as(&self, who: &str, plural: &str, selector: &str) {
        let url = format!("{}/api/v1/namespaces/{NS}/{plural}?labelSelector={selector}", self.h.kube_sim().url());
        let direct = reqwest::Client::builder().no_proxy().build().unwrap();
        let resp = direct.delete(url).header("User-Agent", who).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    }

    /// Deletes the TiKV object `basic-tikv-{i}` as `who`.
    fn delete_tikv_as(&self, who: &str, i: usize) {
        let name = format!("basic-tikv-{i}");
        self.h.store().client(who).delete(&tikvs(), Some(NS), &name, &DeleteOptions::default()).unwrap();
    }

    /// Releases the finalizers of the TiKV object `basic-tikv-{i}` as `who`.
    fn release_tikv_as(&self, who: &str, i: usize) {
        let patch = json!({"metadata": {"finalizers": null}});
        let name = format!("basic-tikv-{i}");
        self.h.store().client(who).patch(&tikvs(), Some(NS), &name, None, PatchType::Merge, &patch).unwrap();
    }

    fn tikv_gone(&self, i: usize) -> bool {
        self.client.get(&tikvs(), Some(NS), &format!("basic-tikv-{i}")).is_err()
    }
}

const PD: &str = "http://basic-pd.db.svc:2379";
const OPERATOR: &str = "tikv-operator/0.1";

fn tikvs() -> ResourceRef {
    ResourceRef::new("core.tikv.org", "v1alpha1", "tikvs")
}

fn install_crds(env: &Env) {
    let crds = ResourceRef::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    for crd in tikv_operator_api::crds::all() {
        env.client.create(&crds, None, serde_json::to_value(&crd).unwrap()).unwrap();
    }
}

/// The TiKV object `basic-tikv-{i}`, held by the operator's finalizer.
fn tikv_instance(i: usize) -> Value {
    json!({"apiVersion": "core.tikv.org/v1alpha1", "kind": "TiKV",
           "metadata": {"name": format!("basic-tikv-{i}"), "labels": labels("basic", "tikv"),
                        "finalizers": ["core.tikv.org/finalizer"]},
           "spec": {"cluster": {"name": "basic"}, "subdomain": "basic-tikv-peer", "version": "v8.5.0",
                    "volumes": [{"name": "data", "storage": "1Gi"}]}})
}

/// The TiKV object `basic-tikv-{i}` and its pod, owned by it as the operator renders it
/// (its ConfigMap and PVC must exist).
fn owned_tikv(env: &Env, i: usize) {
    let instance = env.client.create(&tikvs(), Some(NS), tikv_instance(i)).unwrap();
    let mut pod = tikv_pod(i, "pingcap/tikv:v8.5.0");
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "core.tikv.org/v1alpha1", "kind": "TiKV",
        "name": instance["metadata"]["name"], "uid": instance["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true}]);
    env.create("pods", pod);
}

/// `n` TiKV instances whose pods their TiKV objects own.
async fn start_owned_tikv(env: &Env, n: usize) {
    env.create("services", headless("basic-tikv-peer", "basic", "tikv", &[("client", 20160), ("status", 20180)]));
    for i in 0..n {
        env.create("configmaps", tikv_config(i, ""));
        env.create("persistentvolumeclaims", pvc(&format!("tikv-basic-tikv-{i}"), "tikv"));
        owned_tikv(env, i);
    }
    for i in 0..n {
        env.wait_ready(&format!("basic-tikv-{i}")).await;
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn last_exit(pod: &Value) -> Option<String> {
    pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"].as_str().map(str::to_owned)
}

fn labels(group: &str, component: &str) -> Value {
    json!({"tikv.org/managed-by": "tikv-operator", "tikv.org/cluster": "basic", "tikv.org/component": component, "tikv.org/group": group})
}

fn headless(name: &str, group: &str, component: &str, ports: &[(&str, u16)]) -> Value {
    let ports: Vec<Value> = ports.iter().map(|(n, p)| json!({"name": n, "port": p, "targetPort": p})).collect();
    json!({"metadata": {"name": name, "labels": labels(group, component)},
           "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": labels(group, component), "ports": ports}})
}

fn pvc(name: &str, component: &str) -> Value {
    json!({"metadata": {"name": name, "labels": labels("basic", component)},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
}

/// A PD pod as an operator renders it: stable DNS name, config in a ConfigMap at
/// /etc/pd, data on a PVC, flags for bootstrap or join.
fn pd_pod(group: &str, i: usize, bootstrap: &str, image: &str) -> Value {
    let name = format!("{group}-pd-{i}");
    json!({
        "metadata": {"name": name, "labels": labels(group, "pd")},
        "spec": {
            "hostname": name, "subdomain": format!("{group}-pd-peer"),
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "pd", "image": image,
                "command": ["/pd-server", "--config=/etc/pd/config.toml", bootstrap],
                "ports": [{"name": "client", "containerPort": 2379}, {"name": "peer", "containerPort": 2380}],
                "volumeMounts": [{"name": "config", "mountPath": "/etc/pd"}, {"name": "data", "mountPath": "/var/lib/pd"}],
                "readinessProbe": {"tcpSocket": {"port": 2379}, "periodSeconds": 1}
            }],
            "volumes": [{"name": "config", "configMap": {"name": name}},
                        {"name": "data", "persistentVolumeClaim": {"claimName": format!("pd-{name}")}}]
        }
    })
}

fn pd_config(group: &str, i: usize) -> Value {
    let name = format!("{group}-pd-{i}");
    let host = format!("{name}.{group}-pd-peer.{NS}.svc");
    let toml = format!(
        "name = \"{name}\"\ndata-dir = \"/var/lib/pd\"\nclient-urls = \"http://0.0.0.0:2379\"\npeer-urls = \"http://0.0.0.0:2380\"\nadvertise-client-urls = \"http://{host}:2379\"\nadvertise-peer-urls = \"http://{host}:2380\"\ninitial-cluster-state = \"new\"\n\n[replication]\nmax-replicas = 3\nlocation-labels = [\"zone\", \"host\"]\n"
    );
    json!({"metadata": {"name": name, "labels": labels(group, "pd")}, "data": {"config.toml": toml}})
}

fn initial_cluster(group: &str, n: usize) -> String {
    let members: Vec<String> =
        (0..n).map(|i| format!("{group}-pd-{i}=http://{group}-pd-{i}.{group}-pd-peer.{NS}.svc:2380")).collect();
    format!("--initial-cluster={}", members.join(","))
}

/// A TiKV pod: a shell wrapper with the flags, config at /etc/tikv, data on a PVC.
fn tikv_pod(i: usize, image: &str) -> Value {
    let name = format!("basic-tikv-{i}");
    let script = format!(
        "set -e\necho starting tikv\nexec /tikv-server --pd=http://basic-pd.{NS}.svc:2379 --addr=0.0.0.0:20160 \\\n  --advertise-addr=${{POD_NAME}}.basic-tikv-peer.{NS}.svc:20160 --status-addr=0.0.0.0:20180 \\\n  --advertise-status-addr=$POD_NAME.basic-tikv-peer.{NS}.svc:20180 --data-dir=/var/lib/tikv --config=/etc/tikv/config.toml"
    );
    json!({
        "metadata": {"name": name, "labels": labels("basic", "tikv")},
        "spec": {
            "hostname": name, "subdomain": "basic-tikv-peer",
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "tikv", "image": image,
                "command": ["/bin/sh", "-c", script],
                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "ports": [{"name": "client", "containerPort": 20160}, {"name": "status", "containerPort": 20180}],
                "volumeMounts": [{"name": "config", "mountPath": "/etc/tikv"}, {"name": "data", "mountPath": "/var/lib/tikv"}],
                "readinessProbe": {"tcpSocket": {"port": 20160}, "periodSeconds": 1}
            }],
            "volumes": [{"name": "config", "configMap": {"name": name}},
                        {"name": "data", "persistentVolumeClaim": {"claimName": format!("tikv-{name}")}}]
        }
    })
}

fn tikv_config(i: usize, extra: &str) -> Value {
    let name = format!("basic-tikv-{i}");
    let toml = format!(
        "[server]\ngrpc-concurrency = 4\n[server.labels]\nhost = \"{name}\"\n[raftstore]\ncapacity = \"10GiB\"\n{extra}"
    );
    json!({"metadata": {"name": name, "labels": labels("basic", "tikv")}, "data": {"config.toml": toml}})
}

/// Three PD pods bootstrapping one cluster, plus the Services an operator renders.
async fn start_pd(env: &Env) {
    env.create("services", headless("basic-pd-peer", "basic", "pd", &[("client", 2379), ("peer", 2380)]));
    env.create(
        "services",
        json!({"metadata": {"name": "basic-pd", "labels": labels("basic", "pd")},
               "spec": {"selector": labels("basic", "pd"), "ports": [{"name": "client", "port": 2379, "targetPort": "client"}]}}),
    );
    for i in 0..3 {
        env.create("configmaps", pd_config("basic", i));
        env.create("persistentvolumeclaims", pvc(&format!("pd-basic-pd-{i}"), "pd"));
        env.create("pods", pd_pod("basic", i, &initial_cluster("basic", 3), "pingcap/pd:v8.5.0"));
    }
    for i in 0..3 {
        env.wait_ready(&format!("basic-pd-{i}")).await;
    }
}

async fn start_tikv(env: &Env, n: usize) {
    env.create("services", headless("basic-tikv-peer", "basic", "tikv", &[("client", 20160), ("status", 20180)]));
    for i in 0..n {
        env.create("configmaps", tikv_config(i, ""));
        env.create("persistentvolumeclaims", pvc(&format!("tikv-basic-tikv-{i}"), "tikv"));
        env.create("pods", tikv_pod(i, "docker.io/pingcap/tikv:v8.5.0"));
    }
    for i in 0..n {
        env.wait_ready(&format!("basic-tikv-{i}")).await;
    }
}

const MEMBERS: &str = "http://basic-pd.db.svc:2379/pd/api/v1/members";

fn member_names(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut names: Vec<String> =
        v["members"].as_array().into_iter().flatten().filter_map(|m| m["name"].as_str().map(str::to_owned)).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pd_and_tikv_pods_form_a_cluster_reached_through_dns_and_the_proxy() {
    let env = Env::start().await;
    start_pd(&env).await;
    assert_eq!(env.h.pd_clusters().len(), 1, "the three members form one PD cluster");

    let (_, body) = env.get_until(MEMBERS, |s, b| s == 200 && member_names(b).len() == 3).await;
    assert_eq!(member_names(&body), ["basic-pd-0", "basic-pd-1", "basic-pd-2"]);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["leader"]["name"].as_str().is_some_and(|n| n.starts_with("basic-pd-")), "a leader: {body}");
    assert_eq!(v["members"][0]["client_urls"][0].as_str().unwrap().split(':').next_back(), Some("2379"));
    let (status, body) = env.get("http://basic-pd-1.basic-pd-peer.db.svc:2379/pd/api/v1/health").await;
    assert_eq!(status, 200, "{body}");

    // A fourth member joins through the client Service.
    env.create("configmaps", pd_config("basic", 3));
    env.create("persistentvolumeclaims", pvc("pd-basic-pd-3", "pd"));
    env.create("pods", pd_pod("basic", 3, "--join=http://basic-pd.db.svc:2379", "pingcap/pd:v8.5.0"));
    env.wait_ready("basic-pd-3").await;
    let (_, body) = env.get_until(MEMBERS, |s, b| s == 200 && member_names(b).len() == 4).await;
    assert_eq!(member_names(&body), ["basic-pd-0", "basic-pd-1", "basic-pd-2", "basic-pd-3"]);
    assert_eq!(env.h.pd_clusters().len(), 1);

    // Three stores register and become Up/Serving; their pods become Ready.
    start_tikv(&env, 3).await;
    let stores: Vec<u64> = (0..3).map(|i| env.store_of(&format!("basic-tikv-{i}"))).collect();
    let (_, body) = env
        .get_until("http://basic-pd.db.svc:2379/pd/api/v1/stores", |s, b| {
            s == 200 && serde_json::from_str::<Value>(b).is_ok_and(|v| v["count"] == 3)
        })
        .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    for s in v["stores"].as_array().unwrap() {
        assert_eq!(s["store"]["state_name"], "Up");
        assert!(s["store"]["address"].as_str().unwrap().ends_with(".basic-tikv-peer.db.svc:20160"));
        assert_eq!(s["store"]["version"], "8.5.0");
    }
    env.wait("stores Serving", |e| {
        let snap = e.snapshot();
        stores
            .iter()
            .all(|id| snap.store(*id).is_some_and(|s| format!("{:?}", s.node_state) == "Serving"))
            .then_some(())
    })
    .await;

    // The operator's own PD client needs nothing but a proxy setting to reach PD by its
    // Service name, as it would from inside a cluster; its writes carry its user agent.
    let pd = tikv_operator_pd::PdClient::builder(["http://basic-pd.db.svc:2379"])
        .proxy(&env.h.proxy_url())
        .unwrap()
        .build()
        .unwrap();
    let members = pd.members().await.unwrap();
    assert_eq!(members.members.len(), 4);
    let seen: Vec<u64> = pd.stores(&[]).await.unwrap().iter().map(|s| s.id).collect();
    assert!(stores.iter().all(|id| seen.contains(id)), "{seen:?} vs {stores:?}");
    let labels = std::collections::BTreeMap::from([("disk".to_string(), "nvme".to_string())]);
    pd.set_store_labels(stores[0], &labels).await.unwrap();
    let write = env.h.pd_writes().snapshot().into_iter().last().unwrap();
    assert_eq!(write.client, tikv_operator_pd::USER_AGENT);
    assert!(write.uri.starts_with("http://basic-pd.db.svc:2379/pd/api/v1/store/"), "{}", write.uri);

    // The status server answers through the proxy at the pod's DNS name.
    let status_url = "http://basic-tikv-1.basic-tikv-peer.db.svc:20180/config";
    let (status, body) = env.get(status_url).await;
    assert_eq!(status, 200, "{body}");
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["server"]["labels"]["host"], "basic-tikv-1");
    assert_eq!(config["server"]["advertise-addr"], "basic-tikv-1.basic-tikv-peer.db.svc:20160");

    // TiKV never re-reads its config file: a changed ConfigMap, delivered by the kubelet,
    // changes nothing in the running process.
    let mut cm = env.client.get(&r("configmaps"), Some(NS), "basic-tikv-1").unwrap();
    cm["data"]["config.toml"] = json!(tikv_config(1, "[gc]\nbatch-keys = 256\n")["data"]["config.toml"]);
    env.client.update(&r("configmaps"), Some(NS), cm).unwrap();
    env.h.store().clock().sleep(Duration::from_secs(120)).await;
    let (_, body) = env.get(status_url).await;
    assert!(serde_json::from_str::<Value>(&body).unwrap()["gc"].get("batch-keys").is_none(), "{body}");

    // Online changes go through the status server, as TiKV's do; with `persist` (the
    // default) the write into the read-only ConfigMap volume fails after the change.
    let post = async |query: &str, body: &str| {
        let resp = env.http.post(format!("{status_url}{query}")).body(body.to_owned()).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    };
    let (status, text) = post("?persist=false", r#"{"storage.reserve-space": "1GB"}"#).await;
    assert_eq!((status, text.as_str()), (500, r#"failed to update, error: "config reserve_space can not be changed""#));
    assert_eq!(post("?persist=false", r#"{"gc.batch-keys": 256}"#).await, (200, String::new()));
    let (status, text) = post("", r#"{"gc.num-threads": 2}"#).await;
    assert_eq!(status, 500);
    assert!(text.starts_with("config changed, but failed to persist change due to err: Os { code: 30"), "{text}");
    let (_, body) = env.get(status_url).await;
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((config["gc"]["batch-keys"].as_u64(), config["gc"]["num-threads"].as_u64()), (Some(256), Some(2)));

    // A deleted pod's store stops heartbeating; a new pod on the same PVC is the same
    // store, at the new image's version.
    let old_id = env.store_of("basic-tikv-2");
    env.delete_as("test", "pods", "basic-tikv-2");
    env.wait_gone("basic-tikv-2").await;
    env.wait("store Disconnected", |e| {
        e.snapshot().store(old_id).is_some_and(|s| !s.running && s.state_name == "Disconnected").then_some(())
    })
    .await;
    env.create("pods", tikv_pod(2, "docker.io/pingcap/tikv:v8.5.1"));
    env.wait_ready("basic-tikv-2").await;
    assert_eq!(env.store_of("basic-tikv-2"), old_id, "the PVC keeps the store ID");
    let snap = env.snapshot();
    let store = snap.store(old_id).unwrap();
    assert_eq!((store.state_name.as_str(), store.version.as_str(), store.running), ("Up", "8.5.1", true));
    assert_eq!(snap.stores.len(), 3, "no new store");

    env.h.watcher().assert_none();
    env.shutdown().await;
}

/// PD refuses a store older than the cluster version (tikv/pd `checkStoreVersion`), and
/// TiKV exits on the refused PutStore: the kubelet restarts it into CrashLoopBackOff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tikv_older_than_the_cluster_version_fails_with_pds_text() {
    let env = Env::start().await;
    start_pd(&env).await;
    start_tikv(&env, 3).await;
    assert_eq!(env.snapshot().cluster_version, "8.5.0");
    let refused = "version should compatible with version  8.5.0, got 8.4.0";

    // A new store at an older minor version.
    env.create("configmaps", tikv_config(3, ""));
    env.create("persistentvolumeclaims", pvc("tikv-basic-tikv-3", "tikv"));
    env.create("pods", tikv_pod(3, "pingcap/tikv:v8.4.0"));
    let message = env.wait("TiKV refused by PD", |e| e.pod("basic-tikv-3").and_then(|p| last_exit(&p))).await;
    assert!(message.contains("[FATAL]") && message.contains(refused), "{message}");
    let pod = env.pod("basic-tikv-3").unwrap();
    assert_eq!(pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 1);
    env.wait("CrashLoopBackOff", |e| {
        let pod = e.pod("basic-tikv-3")?;
        (pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff").then_some(())
    })
    .await;
    assert_eq!(env.snapshot().stores.len(), 3, "PD recorded no store for it");

    // An existing store rolled back to the older version: same refusal, the store stays down.
    let id = env.store_of("basic-tikv-2");
    env.delete_as("test", "pods", "basic-tikv-2");
    env.wait_gone("basic-tikv-2").await;
    env.create("pods", tikv_pod(2, "pingcap/tikv:v8.4.0"));
    let message = env.wait("rollback refused", |e| e.pod("basic-tikv-2").and_then(|p| last_exit(&p))).await;
    assert!(message.contains(refused), "{message}");
    let snap = env.snapshot();
    let store = snap.store(id).unwrap();
    assert_eq!((store.running, store.version.as_str()), (false, "8.5.0"));
    assert_eq!(snap.cluster_version, "8.5.0");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_services_config_and_flags_fail_visibly() {
    let env = Env::start().await;

    // No headless Service: etcd cannot resolve its own peer URL and PD exits.
    env.create("configmaps", pd_config("lonely", 0));
    env.create("persistentvolumeclaims", pvc("pd-lonely-pd-0", "pd"));
    env.create("pods", pd_pod("lonely", 0, &initial_cluster("lonely", 1), "pingcap/pd:v8.5.0"));
    let message = env.wait("PD exits for lack of DNS", |e| e.pod("lonely-pd-0").and_then(|p| last_exit(&p))).await;
    assert!(message.contains("failed to resolve") && message.contains("--initial-cluster"), "{message}");
    assert!(message.contains("lonely-pd-0.lonely-pd-peer.db.svc"), "{message}");
    let pod = env.pod("lonely-pd-0").unwrap();
    assert_eq!(pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 1);

    // A config value of the wrong type.
    env.create("services", headless("typo-pd-peer", "typo", "pd", &[("client", 2379), ("peer", 2380)]));
    let mut cm = pd_config("typo", 0);
    cm["data"]["config.toml"] = json!("name = 7\n");
    env.create("configmaps", cm);
    env.create("persistentvolumeclaims", pvc("pd-typo-pd-0", "pd"));
    env.create("pods", pd_pod("typo", 0, &initial_cluster("typo", 1), "pingcap/pd:v8.5.0"));
    let message = env.wait("PD exits on its config", |e| e.pod("typo-pd-0").and_then(|p| last_exit(&p))).await;
    assert!(message.contains("parse cmd flags error") && message.contains("incompatible types"), "{message}");

    // A TOML syntax error in TiKV's config, an unknown flag, and a PD nobody serves.
    env.create("services", headless("basic-tikv-peer", "basic", "tikv", &[("client", 20160), ("status", 20180)]));
    let mut cm = tikv_config(0, "");
    cm["data"]["config.toml"] = json!("[server\naddr = 1\n");
    env.create("configmaps", cm);
    env.create("persistentvolumeclaims", pvc("tikv-basic-tikv-0", "tikv"));
    env.create("pods", tikv_pod(0, "pingcap/tikv:v8.5.0"));
    let message = env.wait("TiKV exits on its config", |e| e.pod("basic-tikv-0").and_then(|p| last_exit(&p))).await;
    assert!(message.starts_with("invalid auto generated configuration file /etc/tikv/config.toml"), "{message}");

    let mut cm = tikv_config(1, "");
    cm["data"]["config.toml"] = json!("[server]\naddr = 20160\n");
    env.create("configmaps", cm);
    env.create("persistentvolumeclaims", pvc("tikv-basic-tikv-1", "tikv"));
    env.create("pods", tikv_pod(1, "pingcap/tikv:v8.5.0"));
    let message = env.wait("TiKV exits on a value", |e| e.pod("basic-tikv-1").and_then(|p| last_exit(&p))).await;
    assert!(message.contains("invalid type: integer `20160`, expected a string for key `server.addr`"), "{message}");

    env.create("configmaps", tikv_config(2, ""));
    env.create("persistentvolumeclaims", pvc("tikv-basic-tikv-2", "tikv"));
    let mut pod = tikv_pod(2, "pingcap/tikv:v8.5.0");
    pod["spec"]["containers"][0]["command"] =
        json!(["/tikv-server", "--pd=http://basic-pd.db.svc:2379", "--no-such-flag"]);
    env.create("pods", pod);
    let message = env.wait("TiKV exits on a flag", |e| e.pod("basic-tikv-2").and_then(|p| last_exit(&p))).await;
    assert!(message.contains("'--no-such-flag' which wasn't expected"), "{message}");

    env.create("configmaps", tikv_config(3, ""));
    env.create("persistentvolumeclaims", pvc("tikv-basic-tikv-3", "tikv"));
    env.create("pods", tikv_pod(3, "pingcap/tikv:v8.5.0"));
    let message = env.wait("TiKV exits without PD", |e| e.pod("basic-tikv-3").and_then(|p| last_exit(&p))).await;
    assert!(message.contains("[FATAL]") && message.contains("failed to connect to PD"), "{message}");
    assert!(message.contains("basic-pd.db.svc: no such host"), "{message}");

    // The proxy says why a name does not resolve.
    let (status, body) = env.get("http://nothing.db.svc:2379/pd/api/v1/members").await;
    assert_eq!(status, 502);
    assert!(body.contains("nothing.db.svc") && body.contains("no such host"), "{body}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_is_silent_for_a_safe_restart_and_catches_unsafe_deletes() {
    let env = Env::start().await;
    start_pd(&env).await;
    start_tikv(&env, 3).await;
    let leaders = |e: &Env, id: u64| e.snapshot().store(id).map(|s| s.leader_count).unwrap_or(0);

    // Safe: evict leaders, wait for none, delete the pod, recreate it, end eviction.
    let id = env.store_of("basic-tikv-0");
    env.wait("store 0 leads regions", |e| (leaders(e, id) > 0).then_some(())).await;
    let resp = env
        .http
        .post("http://basic-pd.db.svc:2379/pd/api/v1/schedulers")
        .header("User-Agent", "tikv-operator/0.1")
        .json(&json!({"name": "evict-leader-scheduler", "store_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    env.wait("leaders evicted", |e| (leaders(e, id) == 0).then_some(())).await;
    env.delete_as("tikv-operator", "pods", "basic-tikv-0");
    env.wait_gone("basic-tikv-0").await;
    env.create("pods", tikv_pod(0, "pingcap/tikv:v8.5.0"));
    env.wait_ready("basic-tikv-0").await;
    let resp = env
        .http
        .delete(format!("http://basic-pd.db.svc:2379/pd/api/v1/schedulers/evict-leader-scheduler-{id}"))
        .header("User-Agent", "tikv-operator/0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(env.h.pd_writes().snapshot().len(), 2, "both PD writes recorded");
    env.h.watcher().check_now();
    env.h.watcher().assert_none();

    // Unsafe: delete a pod whose store leads regions, and a live store's PVC.
    let id1 = env.store_of("basic-tikv-1");
    env.wait("store 1 leads regions", |e| (leaders(e, id1) > 0).then_some(())).await;
    env.delete_as("tikv-operator", "pods", "basic-tikv-1");
    env.delete_as("tikv-operator", "persistentvolumeclaims", "tikv-basic-tikv-2");
    env.h.watcher().check_now();
    let breaches = env.h.watcher().breaches();
    let kinds: Vec<Invariant> = breaches.iter().map(|b| b.invariant).collect();
    assert_eq!(kinds, [Invariant::PodWithLeaders, Invariant::LiveStorePvc], "{breaches:#?}");
    let text = breaches[0].to_string();
    assert!(text.contains("pod db/basic-tikv-1") && text.contains(&format!("store {id1}")), "{text}");
    assert!(breaches[0].request.as_deref().is_some_and(|r| r.contains("tikv-operator")), "{text}");
    assert!(breaches[1].to_string().contains("pvc db/tikv-basic-tikv-2"), "{}", breaches[1]);
    let watcher = env.h.watcher();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| watcher.assert_none()));
    assert!(caught.is_err(), "assert_none panics with the list");

    // With basic-tikv-1 still down, restarting basic-tikv-0 (leaders evicted first)
    // makes two instances of the group unavailable: (c). Then an eviction left in
    // place after the instance came back: (e).
    let resp = env
        .http
        .post("http://basic-pd.db.svc:2379/pd/api/v1/schedulers")
        .header("User-Agent", "tikv-operator/0.1")
        .json(&json!({"name": "evict-leader-scheduler", "store_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    env.wait("leaders evicted again", |e| (leaders(e, id) == 0).then_some(())).await;
    env.delete_as("tikv-operator", "pods", "basic-tikv-0");
    watcher.check_now();
    let kinds: Vec<Invariant> = watcher.breaches().iter().map(|b| b.invariant).collect();
    assert_eq!(kinds[2], Invariant::MaxUnavailable, "{:#?}", watcher.breaches());
    // Once basic-tikv-0's process stops too, two of every region's three voters are on
    // stores the operator stopped: (f), reported once.
    env.wait_gone("basic-tikv-0").await;
    watcher.check_now();
    let kinds: Vec<Invariant> = watcher.breaches().iter().map(|b| b.invariant).collect();
    assert_eq!(kinds[2..], [Invariant::MaxUnavailable, Invariant::RegionMajorityStopped], "{:#?}", watcher.breaches());
    env.create("pods", tikv_pod(0, "pingcap/tikv:v8.5.0"));
    env.wait_ready("basic-tikv-0").await;
    watcher.check_now();
    env.h.clock().advance(Duration::from_secs(61));
    watcher.check_now();
    env.h.clock().advance(Duration::from_secs(1));
    let breaches = env.wait("breach (e)", |_| Some(watcher.breaches()).filter(|b| b.len() == 5)).await;
    assert_eq!(breaches[4].invariant, Invariant::LingeringEvictLeader, "{breaches:#?}");
    assert!(breaches[4].to_string().contains(&format!("store {id}")), "{}", breaches[4]);
    env.shutdown().await;
}

/// The test helpers give PD and TiKV pods the same group label; a budget that (c) never
/// hits keeps these tests about (a), (b) and (d).
fn without_budgets() -> HarnessConfig {
    HarnessConfig {
        watcher: WatcherConfig { max_unavailable: 10, ..WatcherConfig::default() },
        ..HarnessConfig::fast()
    }
}

fn invariants(env: &Env) -> Vec<Invariant> {
    env.h.watcher().breaches().iter().map(|b| b.invariant).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_allows_pd_restarts_one_at_a_time_and_catches_a_lost_quorum() {
    let env = Env::start_with(without_budgets()).await;
    start_pd(&env).await;
    assert_eq!(env.snapshot().members.iter().filter(|m| m.in_etcd).count(), 3, "no extra bootstrap member");

    // Safe: each member restarts while the other two are healthy.
    for i in 0..3 {
        let name = format!("basic-pd-{i}");
        env.delete_as("tikv-operator", "pods", &name);
        env.wait_gone(&name).await;
        env.create("pods", pd_pod("basic", i, &initial_cluster("basic", 3), "pingcap/pd:v8.5.0"));
        env.wait_ready(&name).await;
    }
    assert_eq!(env.h.pd_clusters().len(), 1);
    env.h.watcher().check_now();
    env.h.watcher().assert_none();

    // Unsafe: the second deletion leaves one healthy member of three.
    env.delete_as("tikv-operator", "pods", "basic-pd-0");
    env.delete_as("tikv-operator", "pods", "basic-pd-1");
    env.h.watcher().check_now();
    let breaches = env.h.watcher().breaches();
    assert_eq!(invariants(&env), [Invariant::PdQuorum], "{breaches:#?}");
    let text = breaches[0].to_string();
    assert!(text.contains("pod db/basic-pd-1") && text.contains("PD member basic-pd-1"), "{text}");
    assert!(text.contains("1 of 3 members would remain healthy"), "{text}");
    env.shutdown().await;
}

/// Found by the chaos harness (issue #15): a member asked to remove itself stops before
/// its answer reaches the client, and the proxy left that write out of its log, so the
/// watcher never judged the removal (d). A write PD did not answer is logged as
/// UNANSWERED and judged as if applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removal_whose_answer_is_lost_is_still_logged_and_judged() {
    let env = Env::start_with(without_budgets()).await;
    start_pd(&env).await;
    let own = env.h.pd_ctl("http://basic-pd-0.basic-pd-peer.db.svc:2379").user_agent("tikv-operator/test");
    let _ = own.member_delete("basic-pd-0").await;
    let writes = env.h.pd_writes().snapshot();
    let removal = writes.iter().find(|w| w.method == "DELETE" && w.path.ends_with("/members/name/basic-pd-0"));
    let removal = removal.unwrap_or_else(|| panic!("the removal is logged: {:?}", writes.len()));
    assert!(removal.status == sim_harness::proxy::UNANSWERED || removal.status == 200, "status {}", removal.status);
    assert_eq!(env.snapshot().members.iter().filter(|m| m.in_etcd).count(), 2, "PD applied it");
    env.shutdown().await;
}

fn cluster(deletion_policy: &str) -> Value {
    json!({"apiVersion": "core.tikv.org/v1alpha1", "kind": "Cluster",
           "metadata": {"name": "basic", "finalizers": ["test.tikv.org/hold"]},
           "spec": {"deletionPolicy": deletion_policy}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_exempts_pvcs_only_under_deletion_policy_delete_while_the_cluster_is_deleted() {
    let env = Env::start_with(without_budgets()).await;
    let crds = ResourceRef::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    for crd in tikv_operator_api::crds::all() {
        env.client.create(&crds, None, serde_json::to_value(&crd).unwrap()).unwrap();
    }
    let clusters = ResourceRef::new("core.tikv.org", "v1alpha1", "clusters");
    start_pd(&env).await;
    start_tikv(&env, 3).await;
    let ids: Vec<u64> = (0..3).map(|i| env.store_of(&format!("basic-tikv-{i}"))).collect();

    // Retain: deleting the Cluster keeps the data, so deleting a live store's PVC is (b).
    env.client.create(&clusters, Some(NS), cluster("Retain")).unwrap();
    env.client.delete(&clusters, Some(NS), "basic", &DeleteOptions::default()).unwrap();
    env.delete_as("tikv-operator", "persistentvolumeclaims", "tikv-basic-tikv-2");
    env.h.watcher().check_now();
    assert_eq!(invariants(&env), [Invariant::LiveStorePvc]);
    let text = env.h.watcher().breaches()[0].to_string();
    assert!(text.contains("pvc db/tikv-basic-tikv-2") && text.contains(&format!("store {}", ids[2])), "{text}");

    // The Cluster goes; a new one says Delete. While it lives, its PVCs are still kept.
    let mut held = env.client.get(&clusters, Some(NS), "basic").unwrap();
    held["metadata"]["finalizers"] = json!([]);
    env.client.update(&clusters, Some(NS), held).unwrap();
    assert!(env.client.get(&clusters, Some(NS), "basic").is_err(), "released");
    env.client.create(&clusters, Some(NS), cluster("Delete")).unwrap();
    env.delete_as("tikv-operator", "persistentvolumeclaims", "tikv-basic-tikv-1");
    env.h.watcher().check_now();
    assert_eq!(invariants(&env), [Invariant::LiveStorePvc, Invariant::LiveStorePvc]);

    // Deleting the Cluster with deletionPolicy: Delete deletes the data: no breach.
    env.client.delete(&clusters, Some(NS), "basic", &DeleteOptions::default()).unwrap();
    env.delete_as("tikv-operator", "persistentvolumeclaims", "tikv-basic-tikv-0");
    env.h.watcher().check_now();
    let breaches = env.h.watcher().breaches();
    assert_eq!(breaches.len(), 2, "{breaches:#?}");
    assert!(breaches[1].to_string().contains("pvc db/tikv-basic-tikv-1"), "{}", breaches[1]);
    assert_eq!(env.snapshot().store(ids[0]).map(|s| s.state_name.clone()).as_deref(), Some("Up"), "a live store");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_judges_a_pod_deletion_on_pd_state_when_it_was_requested() {
    let env = Env::start_with(without_budgets()).await;
    start_pd(&env).await;
    start_tikv(&env, 3).await;
    let leaders = |e: &Env, id: u64| e.snapshot().store(id).map(|s| s.leader_count).unwrap_or(0);
    let id = env.store_of("basic-tikv-0");
    env.wait("store 0 leads regions", |e| (leaders(e, id) > 0).then_some(())).await;

    // A watcher whose first pass comes only after the leaders have moved.
    let config = WatcherConfig { max_unavailable: 10, ..WatcherConfig::default() };
    let late = SafetyWatcher::manual(env.h.store(), env.h.pd_registry().clone(), env.h.pd_writes(), config);

    env.delete_as("tikv-operator", "pods", "basic-tikv-0");
    // Past the raft election timeout the store's leaders have moved: a watcher reading PD
    // only now would see nothing wrong.
    env.h.clock().advance(Duration::from_secs(120));
    env.wait("leaders moved away", |e| (leaders(e, id) == 0).then_some(())).await;
    for watcher in [env.h.watcher(), &late] {
        let breaches = watcher.breaches();
        let kinds: Vec<Invariant> = breaches.iter().map(|b| b.invariant).collect();
        assert_eq!(kinds, [Invariant::PodWithLeaders], "{breaches:#?}");
        assert!(breaches[0].to_string().contains("pod db/basic-tikv-0"), "{}", breaches[0]);
    }
    late.stop().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_pvc_starts_empty_so_its_pod_is_a_new_store() {
    let env = Env::start_with(without_budgets()).await;
    start_pd(&env).await;
    start_tikv(&env, 4).await;
    let old = env.store_of("basic-tikv-3");
    let pvcs = r("persistentvolumeclaims");
    let uid = |e: &Env| e.client.get(&pvcs, Some(NS), "tikv-basic-tikv-3").ok().map(|p| p["metadata"]["uid"].clone());
    let old_uid = uid(&env).unwrap();

    // The pod and its PVC are deleted; a PVC of the same name and the pod come back.
    env.delete_as("test", "pods", "basic-tikv-3");
    env.wait_gone("basic-tikv-3").await;
    env.delete_as("test", "persistentvolumeclaims", "tikv-basic-tikv-3");
    env.wait("PVC gone", |e| uid(e).is_none().then_some(())).await;
    env.create("persistentvolumeclaims", pvc("tikv-basic-tikv-3", "tikv"));
    assert_ne!(uid(&env).unwrap(), old_uid);
    env.create("pods", tikv_pod(3, "pingcap/tikv:v8.5.0"));

    // Empty data: TiKV asks PD for a new ID, and PD refuses the address of the old store,
    // which is neither revived nor replaced while it is not Removed.
    let message = env.wait("new store refused", |e| e.pod("basic-tikv-3").and_then(|p| last_exit(&p))).await;
    assert!(message.contains("duplicated store address") && message.contains(&format!("store {old}")), "{message}");
    let snap = env.snapshot();
    assert_eq!(snap.stores.len(), 4, "no store registered for the empty PVC");
    assert!(!snap.store(old).unwrap().running, "the old store is not revived");

    // Once the old store is Tombstone, the pod registers as a new store with a new ID.
    let resp = env
        .http
        .delete(format!("http://basic-pd.db.svc:2379/pd/api/v1/store/{old}"))
        .header("User-Agent", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    env.wait("old store Tombstone", |e| {
        e.snapshot().store(old).is_some_and(|s| s.state_name == "Tombstone").then_some(())
    })
    .await;
    let new = env
        .wait("a new store for the pod", |e| match e.h.pd_registry().pod(NS, "basic-tikv-3") {
            Some(Instance::Tikv { store, .. }) if store != old => Some(store),
            _ => None,
        })
        .await;
    env.wait_ready("basic-tikv-3").await;
    let snap = env.snapshot();
    let (old_store, new_store) = (snap.store(old).unwrap(), snap.store(new).unwrap());
    assert_eq!((old_store.state_name.as_str(), old_store.running), ("Tombstone", false));
    assert_eq!((new_store.state_name.as_str(), new_store.running), ("Up", true));
    assert_eq!(new_store.address, old_store.address, "same pod, same address");
    env.shutdown().await;
}

fn breaches_of(env: &Env, invariant: Invariant) -> Vec<String> {
    env.h.watcher().breaches().iter().filter(|b| b.invariant == invariant).map(|b| b.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_judges_every_pvc_a_deletecollection_takes_by_what_its_volume_holds() {
    let env = Env::start_with(without_budgets()).await;
    start_pd(&env).await;
    start_tikv(&env, 5).await;
    let ids: Vec<u64> = (0..5).map(|i| env.store_of(&format!("basic-tikv-{i}"))).collect();
    // A watcher that looks at PD only in its own passes, and has none until the end.
    let config = WatcherConfig { max_unavailable: 10, ..WatcherConfig::default() };
    let blind = SafetyWatcher::manual(env.h.store(), env.h.pd_registry().clone(), env.h.pd_writes(), config);

    // One deletecollection takes a live store's PVC and a PVC no TiKV ever used: only
    // the first holds data.
    env.create("persistentvolumeclaims", pvc("tikv-spare", "tikv"));
    env.label("persistentvolumeclaims", "tikv-spare", "doomed", "first");
    env.label("persistentvolumeclaims", "tikv-basic-tikv-4", "doomed", "first");
    env.delete_collection_as(OPERATOR, "persistentvolumeclaims", "doomed=first").await;
    let breaches = env.h.watcher().breaches();
    assert_eq!(invariants(&env), [Invariant::LiveStorePvc], "{breaches:#?}");
    let text = breaches[0].to_string();
    assert!(text.contains("pvc db/tikv-basic-tikv-4") && text.contains(&format!("store {} is Up", ids[4])), "{text}");
    assert!(text.contains("DELETECOLLECTION persistentvolumeclaims"), "{text}");

    // Store 3 goes to Tombstone, loses its pod and is purged from PD; store 2 goes to
    // Tombstone and loses its pod. Then their PVCs go, in one deletecollection.
    env.offline("test", ids[3]).await;
    env.h.watcher().check_now();
    env.delete_as("tikv-operator", "pods", "basic-tikv-3");
    env.wait_gone("basic-tikv-3").await;
    let (status, text) = env.pd_as("test", reqwest::Method::DELETE, "/pd/api/v1/stores/remove-tombstone", None).await;
    assert_eq!(status, 200, "{text}");
    env.wait("store 3 purged", |e| e.snapshot().store(ids[3]).is_none().then_some(())).await;
    env.offline("test", ids[2]).await;
    env.delete_as("tikv-operator", "pods", "basic-tikv-2");
    env.wait_gone("basic-tikv-2").await;
    env.label("persistentvolumeclaims", "tikv-basic-tikv-3", "doomed", "second");
    env.label("persistentvolumeclaims", "tikv-basic-tikv-2", "doomed", "second");
    env.delete_collection_as(OPERATOR, "persistentvolumeclaims", "doomed=second").await;
    let breaches = env.h.watcher().breaches();
    assert_eq!(
        invariants(&env),
        [Invariant::LiveStorePvc],
        "Tombstone, and purged after seen Tombstone: {breaches:#?}"
    );

    // A watcher that never saw store 3 removed cannot tell it from a store that vanished.
    let breaches = blind.breaches();
    let kinds: Vec<Invariant> = breaches.iter().map(|b| b.invariant).collect();
    assert_eq!(kinds, [Invariant::LiveStorePvc, Invariant::LiveStorePvc], "{breaches:#?}");
    let text = breaches[1].to_string();
    assert!(
        text.contains("pvc db/tikv-basic-tikv-3") && text.contains("absent from PD without having been seen"),
        "{text}"
    );
    blind.stop().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_attributes_a_garbage_collected_pod_to_whoever_removed_its_instance() {
    let env = Env::start_with(without_budgets()).await;
    install_crds(&env);
    start_pd(&env).await;
    start_owned_tikv(&env, 4).await;
    let ids: Vec<u64> = (0..4).map(|i| env.store_of(&format!("basic-tikv-{i}"))).collect();
    let collected = async |env: &Env, i: usize| {
        env.wait_gone(&format!("basic-tikv-{i}")).await;
        assert!(env.tikv_gone(i));
        env.h.watcher().check_now();
    };

    // The user deletes an instance and releases it: the collector's deletion of its pod,
    // whose store leads regions, is the user's doing.
    env.wait_leading(ids[3]).await;
    env.delete_tikv_as("kubectl", 3);
    env.release_tikv_as("kubectl", 3);
    collected(&env, 3).await;
    assert_eq!(invariants(&env), []);

    // The user deletes one, the operator releases its finalizer: the collector's
    // deletion of the pod of a store with leaders is the operator's.
    env.wait_leading(ids[2]).await;
    env.delete_tikv_as("kubectl", 2);
    env.h.watcher().check_now();
    env.release_tikv_as("tikv-operator", 2);
    collected(&env, 2).await;
    let breaches = breaches_of(&env, Invariant::PodWithLeaders);
    assert_eq!(breaches.len(), 1, "{breaches:#?}");
    assert!(
        breaches[0].contains("pod db/basic-tikv-2") && breaches[0].contains("generic-garbage-collector"),
        "{}",
        breaches[0]
    );
    assert!(breaches[0].contains("the operator removed TiKV db/basic-tikv-2: PATCH"), "{}", breaches[0]);

    // The operator deletes one that nothing holds any more.
    env.wait_leading(ids[1]).await;
    env.release_tikv_as("tikv-operator", 1);
    env.delete_tikv_as("tikv-operator", 1);
    collected(&env, 1).await;
    let breaches = breaches_of(&env, Invariant::PodWithLeaders);
    assert_eq!(breaches.len(), 2, "{breaches:#?}");
    assert!(
        breaches[1].contains("pod db/basic-tikv-1") && breaches[1].contains("TiKV db/basic-tikv-1: DELETE"),
        "{}",
        breaches[1]
    );

    // The user deletes the Cluster: the operator releasing its instances is what was asked.
    let clusters = ResourceRef::new("core.tikv.org", "v1alpha1", "clusters");
    env.client.create(&clusters, Some(NS), cluster("Retain")).unwrap();
    env.client.delete(&clusters, Some(NS), "basic", &DeleteOptions::default()).unwrap();
    env.wait_leading(ids[0]).await;
    env.delete_tikv_as("kubectl", 0);
    env.release_tikv_as("tikv-operator", 0);
    collected(&env, 0).await;
    // (f) may also hold here (stores 1 and 2, both stopped by the operator, may be two
    // of a region's three voters); it is tested on its own.
    let kinds: Vec<Invariant> =
        invariants(&env).into_iter().filter(|i| *i != Invariant::RegionMajorityStopped).collect();
    assert_eq!(kinds, [Invariant::PodWithLeaders, Invariant::PodWithLeaders]);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_counts_a_deleted_pod_until_replaced_or_its_instance_is_scaled_in() {
    let env = Env::start().await;
    install_crds(&env);
    start_pd(&env).await;
    start_owned_tikv(&env, 3).await;

    // The operator deletes a pod and then scales its instance in: out of the budget.
    env.delete_as("tikv-operator", "pods", "basic-tikv-0");
    env.release_tikv_as("tikv-operator", 0);
    env.delete_tikv_as("tikv-operator", 0);
    assert!(env.tikv_gone(0));
    env.h.watcher().check_now();
    // One more deleted pod is within maxUnavailable 1.
    env.delete_as("tikv-operator", "pods", "basic-tikv-1");
    env.h.watcher().check_now();
    assert_eq!(breaches_of(&env, Invariant::MaxUnavailable), Vec::<String>::new());

    // A second one while the first's instance stays is not.
    env.delete_as("tikv-operator", "pods", "basic-tikv-2");
    env.h.watcher().check_now();
    let breaches = breaches_of(&env, Invariant::MaxUnavailable);
    assert_eq!(breaches.len(), 1, "{breaches:#?}");
    assert!(breaches[0].contains("pod db/basic-tikv-1, pod db/basic-tikv-2 — 2 instances"), "{}", breaches[0]);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_catches_evict_leader_entries_left_on_removed_stores_or_deleted_instances() {
    let env = Env::start_with(without_budgets()).await;
    install_crds(&env);
    start_pd(&env).await;
    start_owned_tikv(&env, 6).await;
    let ids: Vec<u64> = (0..6).map(|i| env.store_of(&format!("basic-tikv-{i}"))).collect();

    // Store 5: evicted, taken offline and purged from PD; its entry stays.
    env.evict_as(OPERATOR, ids[5]).await;
    env.offline(OPERATOR, ids[5]).await;
    let (status, text) = env.pd_as("test", reqwest::Method::DELETE, "/pd/api/v1/stores/remove-tombstone", None).await;
    assert_eq!(status, 200, "{text}");
    // Store 4: evicted and taken offline; its entry stays on the Tombstone store.
    env.evict_as(OPERATOR, ids[4]).await;
    env.offline(OPERATOR, ids[4]).await;
    // Store 3: the same, but the operator ends the eviction once the store is Tombstone.
    env.evict_as(OPERATOR, ids[3]).await;
    env.offline(OPERATOR, ids[3]).await;
    env.end_evict_as(OPERATOR, ids[3]).await;
    // Store 2: evicted, then its instance scaled in and gone; its entry stays.
    env.evict_as(OPERATOR, ids[2]).await;
    env.wait("store 2 evicted", |e| (e.leaders(ids[2]) == 0).then_some(())).await;
    env.release_tikv_as("tikv-operator", 2);
    env.delete_tikv_as("tikv-operator", 2);
    env.wait_gone("basic-tikv-2").await;
    env.h.watcher().check_now();

    env.h.clock().advance(Duration::from_secs(61));
    let lingering = env
        .wait("three entries outlive the grace period", |e| {
            Some(breaches_of(e, Invariant::LingeringEvictLeader)).filter(|b| b.len() == 3)
        })
        .await;
    let on = |id: u64| lingering.iter().find(|b| b.contains(&format!("store {id} ("))).cloned().unwrap_or_default();
    assert!(on(ids[5]).contains(&format!("after store {} is absent from PD", ids[5])), "{lingering:#?}");
    assert!(on(ids[4]).contains(&format!("after store {} is Tombstone", ids[4])), "{lingering:#?}");
    assert!(on(ids[2]).contains("after its instance TiKV db/basic-tikv-2 was deleted"), "{lingering:#?}");
    env.h.clock().advance(Duration::from_secs(61));
    env.h.watcher().check_now();
    assert_eq!(breaches_of(&env, Invariant::LingeringEvictLeader).len(), 3, "none for store 3, whose entry ended");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_catches_the_operator_removing_an_evict_leader_entry_it_did_not_add() {
    let env = Env::start_with(without_budgets()).await;
    start_pd(&env).await;
    start_tikv(&env, 4).await;
    let ids: Vec<u64> = (0..4).map(|i| env.store_of(&format!("basic-tikv-{i}"))).collect();
    let sre = env.h.pd_ctl(PD);

    // An SRE evicts store 0 with pd-ctl; the operator asks for the same and later ends
    // "its" eviction: the entry was never its own.
    sre.evict_leader_add(ids[0]).await.unwrap();
    assert_eq!(sre.evict_leader_stores().await.unwrap(), [ids[0]]);
    assert_eq!(env.h.pd_writes().snapshot().last().map(|w| w.client.clone()).as_deref(), Some("pd-ctl"));
    env.evict_as(OPERATOR, ids[0]).await;
    env.end_evict_as(OPERATOR, ids[0]).await;
    let breaches = env.h.watcher().breaches();
    assert_eq!(invariants(&env), [Invariant::ForeignEvictLeaderRemoved], "{breaches:#?}");
    let text = breaches[0].to_string();
    assert!(text.contains(&format!("store {} (PD cluster 0)", ids[0])) && text.contains("by \"pd-ctl\""), "{text}");
    assert!(text.contains("DELETE /pd/api/v1/schedulers/evict-leader-scheduler-"), "{text}");

    // Its own entry, added and removed: fine.
    env.evict_as(OPERATOR, ids[1]).await;
    env.end_evict_as(OPERATOR, ids[1]).await;
    // An SRE's entry is never (e)'s, however long it stays; the SRE removes it.
    sre.evict_leader_add(ids[2]).await.unwrap();
    env.h.watcher().check_now();
    env.h.clock().advance(Duration::from_secs(3600));
    env.h.watcher().check_now();
    sre.evict_leader_remove(ids[2]).await.unwrap();
    assert_eq!(sre.evict_leader_remove(ids[2]).await.map_err(|e| e.status), Err(404));
    assert_eq!(invariants(&env), [Invariant::ForeignEvictLeaderRemoved]);

    // An entry added straight to PD, past the proxy, then the operator removes the whole
    // scheduler.
    let direct = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = direct
        .post(format!("{}/pd/api/v1/schedulers", env.h.pd_clusters()[0].sim.url()))
        .json(&json!({"name": "evict-leader-scheduler", "store_id": ids[3]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, text) =
        env.pd_as(OPERATOR, reqwest::Method::DELETE, "/pd/api/v1/schedulers/evict-leader-scheduler", None).await;
    assert_eq!(status, 200, "{text}");
    let breaches = env.h.watcher().breaches();
    assert_eq!(invariants(&env), [Invariant::ForeignEvictLeaderRemoved; 2], "{breaches:#?}");
    let text = breaches[1].to_string();
    assert!(
        text.contains(&format!("store {} (PD cluster 0)", ids[3])) && text.contains("no write the watcher saw"),
        "{text}"
    );
    env.shutdown().await;
}

/// A tool image's one program: `install <path>` copies itself there; `wait-leaders`
/// reaches PD by its short Service name and polls the store's own `/metrics` on
/// `localhost` until it leads nothing, printing each count.
fn tool() -> sim_harness::Program {
    std::sync::Arc::new(|env: sim_harness::ProgramEnv| {
        Box::pin(async move {
            match env.argv.get(1).map(String::as_str) {
                Some("install") => match env.copy_self_to(&env.argv[2]) {
                    Ok(()) => 0,
                    Err(e) => {
                        env.print(e);
                        1
                    }
                },
                Some("wait-leaders") => {
                    let proxy = reqwest::Proxy::all(&env.http_proxy).unwrap();
                    let http = reqwest::Client::builder().proxy(proxy).build().unwrap();
                    let pd = http.get("http://basic-pd:2379/pd/api/v1/stores").send().await.unwrap();
                    env.print(format!("pd {}", pd.status().as_u16()));
                    for _ in 0..120 {
                        let text =
                            http.get("http://localhost:20180/metrics").send().await.unwrap().text().await.unwrap();
                        let line = text.lines().find(|l| l.starts_with("tikv_raftstore_region_count{type=\"leader\"}"));
                        let leaders: u64 = line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap();
                        env.print(format!("leaders {leaders}"));
                        if leaders == 0 {
                            return 0;
                        }
                        env.clock.sleep(Duration::from_secs(1)).await;
                    }
                    1
                }
                _ => 2,
            }
        })
    })
}

/// The TiKV pod `basic-tikv-{i}` with a preStop hook running the tool from an
/// `emptyDir`, where an init container of the tool image copied it (unless `install`
/// is false: then nothing is there to run).
fn tikv_pod_with_hook(i: usize, install: bool) -> Value {
    let mut pod = tikv_pod(i, "pingcap/tikv:v8.5.0");
    let spec = &mut pod["spec"];
    spec["terminationGracePeriodSeconds"] = json!(600);
    spec["volumes"].as_array_mut().unwrap().push(json!({"name": "hooks", "emptyDir": {}}));
    let tikv = &mut spec["containers"][0];
    tikv["volumeMounts"].as_array_mut().unwrap().push(json!({"name": "hooks", "mountPath": "/hooks"}));
    tikv["lifecycle"] = json!({"preStop": {"exec": {"command": ["/hooks/tool", "wait-leaders"]}}});
    if install {
        spec["initContainers"] = json!([{"name": "install", "image": "example.com/tools/hook:v1",
            "command": ["/bin/tool", "install", "/hooks/tool"],
            "volumeMounts": [{"name": "hooks", "mountPath": "/hooks"}]}]);
    }
    pod
}

/// A preStop hook runs as the kubelet runs it: the program an init container copied
/// into an emptyDir runs in the TiKV container, with the pod's network (PD by a short
/// name, the store on localhost), and the store keeps serving until it returns: here
/// until its leaders, evicted by an SRE, are gone. A hook whose program is not there
/// fails as a missing binary does, and the pod stops all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_stop_hook_runs_the_copied_program_before_the_store_stops() {
    let env = Env::start().await;
    env.h.register_program("tools/hook", "/bin/tool", tool());
    start_pd(&env).await;
    env.create("services", headless("basic-tikv-peer", "basic", "tikv", &[("client", 20160), ("status", 20180)]));
    for i in 0..3 {
        env.create("configmaps", tikv_config(i, ""));
        env.create("persistentvolumeclaims", pvc(&format!("tikv-basic-tikv-{i}"), "tikv"));
        env.create("pods", if i == 2 { tikv_pod(i, "pingcap/tikv:v8.5.0") } else { tikv_pod_with_hook(i, i == 0) });
    }
    for i in 0..3 {
        env.wait_ready(&format!("basic-tikv-{i}")).await;
    }
    let id = env.store_of("basic-tikv-0");
    env.wait_leading(id).await;

    // Leaders move one at a time, two seconds each: the hook sees them go.
    let pd = env.h.pd_clusters()[0].clone();
    pd.control()
        .update_knobs(&json!({"leader-transfer-min": "2s", "leader-transfer-max": "2s", "leader-schedule-limit": 1}))
        .unwrap();
    env.evict_as("pd-ctl", id).await;
    env.delete_as("kubectl", "pods", "basic-tikv-0");
    env.wait_gone("basic-tikv-0").await;

    let runs = env.h.program_runs();
    let install = runs.iter().find(|r| r.pod == "basic-tikv-0" && !r.hook).unwrap();
    assert_eq!((install.container.as_str(), install.exit), ("install", Some(0)));
    let hook = runs.iter().find(|r| r.pod == "basic-tikv-0" && r.hook).unwrap();
    assert_eq!((hook.container.as_str(), hook.exit), ("tikv", Some(0)), "{:?}", hook.output);
    assert_eq!(hook.argv, ["/hooks/tool", "wait-leaders"]);
    assert_eq!(hook.output[0], "pd 200", "PD by its short name, from the pod's namespace");
    let counts: Vec<u64> =
        hook.output[1..].iter().map(|l| l.strip_prefix("leaders ").unwrap().parse().unwrap()).collect();
    assert!(counts[0] > 0 && counts.last() == Some(&0), "{counts:?}");
    assert!(counts.windows(2).all(|w| w[1] <= w[0]), "{counts:?}");
    assert!(!env.snapshot().store(id).unwrap().running, "the store stopped after the hook");

    // No init container copied the tool into basic-tikv-1's emptyDir.
    env.delete_as("kubectl", "pods", "basic-tikv-1");
    env.wait_gone("basic-tikv-1").await;
    let events = env.client.list(&r("events"), Some(NS), &Default::default()).unwrap();
    let failed = events["items"].as_array().unwrap().iter().any(|e| {
        e["involvedObject"]["name"] == "basic-tikv-1"
            && e["reason"] == "FailedPreStopHook"
            && e["message"] == "PreStopHook failed"
    });
    assert!(failed, "the failed hook is reported: {events}");
    assert!(!env.h.program_runs().iter().any(|r| r.pod == "basic-tikv-1"), "nothing ran");
    env.h.watcher().assert_none();
    env.shutdown().await;
}

/// etcd's strict reconfiguration check as PD's embedded etcd runs it: a member joining
/// while another member is down is refused ("unhealthy cluster") and its pd-server
/// exits; once every member runs again, the next start joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pd_joining_while_a_member_is_down_exits_with_etcds_refusal() {
    let env = Env::start_with(without_budgets()).await;
    start_pd(&env).await;
    env.delete_as("kubectl", "pods", "basic-pd-2");
    env.wait_gone("basic-pd-2").await;
    env.create("configmaps", pd_config("basic", 3));
    env.create("persistentvolumeclaims", pvc("pd-basic-pd-3", "pd"));
    env.create("pods", pd_pod("basic", 3, "--join=http://basic-pd.db.svc:2379", "pingcap/pd:v8.5.0"));
    let message = env.wait("the joiner exits", |e| e.pod("basic-pd-3").and_then(|p| last_exit(&p))).await;
    assert!(message.contains("join meet error") && message.contains("etcdserver: unhealthy cluster"), "{message}");
    assert_eq!(env.snapshot().members.iter().filter(|m| m.in_etcd).count(), 3, "nothing added");

    env.create("pods", pd_pod("basic", 2, &initial_cluster("basic", 3), "pingcap/pd:v8.5.0"));
    env.wait_ready("basic-pd-2").await;
    env.wait_ready("basic-pd-3").await;
    assert_eq!(env.snapshot().members.iter().filter(|m| m.in_etcd).count(), 4);
    env.shutdown().await;
}

/// A CA and leaves it signs for the TLS tests.
struct Pki(rcgen::CertifiedIssuer<'static, rcgen::KeyPair>);

impl Pki {
    fn new() -> Self {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        Pki(rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap())
    }

    /// (certificate PEM, key PEM) for `sans`, with this serial.
    fn leaf(&self, sans: &[&str], serial: u8) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from(vec![serial]));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn secret(&self, name: &str, sans: &[&str], serial: u8) -> Value {
        let (cert, key) = self.leaf(sans, serial);
        json!({"metadata": {"name": name}, "stringData": {"ca.crt": self.0.pem(), "tls.crt": cert, "tls.key": key}})
    }
}

/// The Secret a TLS pod mounts at /var/lib/cluster-tls: a CA and a certificate for the
/// cluster's names.
fn tls_secret() -> Value {
    Pki::new().secret("tls", &["basic-pd.db.svc", "*.basic-pd-peer.db.svc", "*.basic-tikv-peer.db.svc"], 0x01)
}

fn with_tls_mount(mut pod: Value) -> Value {
    pod["spec"]["volumes"].as_array_mut().unwrap().push(json!({"name": "tls", "secret": {"secretName": "tls"}}));
    pod["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "tls", "mountPath": "/var/lib/cluster-tls"}));
    pod
}

const TIKV_SECURITY: &str = "[security]\nca-path = \"/var/lib/cluster-tls/ca.crt\"\ncert-path = \"/var/lib/cluster-tls/tls.crt\"\nkey-path = \"/var/lib/cluster-tls/tls.key\"\n";
const PD_SECURITY: &str = "[security]\ncacert-path = \"/var/lib/cluster-tls/ca.crt\"\ncert-path = \"/var/lib/cluster-tls/tls.crt\"\nkey-path = \"/var/lib/cluster-tls/tls.key\"\n";

/// Restarts PD member `i` (same data) with its config's URLs switched to `https` where
/// `client`/`peer` say so, with certificates.
async fn restart_pd_with(env: &Env, i: usize, client: bool, peer: bool) {
    let name = format!("basic-pd-{i}");
    env.delete_as("test", "pods", &name);
    env.wait_gone(&name).await;
    let mut cm = pd_config("basic", i);
    let mut toml = cm["data"]["config.toml"].as_str().unwrap().to_owned();
    if client {
        toml = toml.replace("client-urls = \"http://", "client-urls = \"https://");
    }
    if peer {
        toml = toml.replace("peer-urls = \"http://", "peer-urls = \"https://");
    }
    cm["data"]["config.toml"] = json!(format!("{toml}{PD_SECURITY}"));
    env.delete_as("test", "configmaps", &name);
    env.create("configmaps", cm);
    env.create("pods", with_tls_mount(pd_pod("basic", i, &initial_cluster("basic", 3), "pingcap/pd:v8.5.0")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_plain_processes_cannot_talk() {
    let env = Env::start().await;
    start_pd(&env).await;
    start_tikv(&env, 3).await;
    env.create("secrets", tls_secret());
    assert_eq!(env.h.pd_registry().mixed_starts(), [], "a plain cluster is not mixed");

    // A TLS TiKV cannot reach a plain PD (it dials with its own setting).
    let mut cm = tikv_config(3, TIKV_SECURITY);
    cm["metadata"]["name"] = json!("basic-tikv-3");
    env.create("configmaps", cm);
    env.create("persistentvolumeclaims", pvc("tikv-basic-tikv-3", "tikv"));
    env.create("pods", with_tls_mount(tikv_pod(3, "pingcap/tikv:v8.5.0")));
    let message =
        env.wait("TLS TiKV gives up on plain PD", |e| e.pod("basic-tikv-3").and_then(|p| last_exit(&p))).await;
    assert!(
        message.contains("failed to connect to PD") && message.contains("does not look like a TLS handshake"),
        "{message}"
    );

    // Half-configured security is fatal, as TiKV's validation is.
    let mut cm = tikv_config(4, "[security]\nca-path = \"/var/lib/cluster-tls/ca.crt\"\n");
    cm["metadata"]["name"] = json!("basic-tikv-4");
    env.create("configmaps", cm);
    env.create("persistentvolumeclaims", pvc("tikv-basic-tikv-4", "tikv"));
    env.create("pods", with_tls_mount(tikv_pod(4, "pingcap/tikv:v8.5.0")));
    let message = env.wait("half TLS config", |e| e.pod("basic-tikv-4").and_then(|p| last_exit(&p))).await;
    assert!(message.contains("ca, cert and private key should be all configured"), "{message}");

    // A PD member whose client URL turns https (peer URL kept) serves TLS to clients: it
    // rejoins, and it is recorded as speaking TLS among plain processes.
    restart_pd_with(&env, 0, true, false).await;
    env.wait_ready("basic-pd-0").await;
    let mixed = env.h.pd_registry().mixed_starts();
    assert_eq!(mixed.len(), 1, "{mixed:?}");
    assert_eq!(mixed[0].pod, "db/basic-pd-0");
    assert_eq!(mixed[0].peers.len(), 5, "two PD members and three TiKVs speak plain: {mixed:?}");

    // A PD member restarted with an https peer URL is not reachable at the http URL the
    // membership keeps for it: no quorum with its peers, and etcd gives up.
    restart_pd_with(&env, 1, true, true).await;
    let message = env
        .wait("PD member with the other peer scheme exits", |e| e.pod("basic-pd-1").and_then(|p| last_exit(&p)))
        .await;
    assert!(
        message.contains("etcd start canceled")
            && message.contains("but it listens at")
            && message.contains("https://0.0.0.0:2380"),
        "{message}"
    );
    assert!(!env.snapshot().members.iter().any(|m| m.name == "basic-pd-1" && m.running), "never rejoined");
    env.shutdown().await;
}

#[tokio::test]
async fn a_rotated_secret_reaches_a_running_pd_which_serves_it_on_new_connections_without_a_restart() {
    let env = Env::start().await;
    let pki = Pki::new();
    let host = format!("solo-pd-0.solo-pd-peer.{NS}.svc");
    env.create("secrets", pki.secret("solo-tls", &[&host], 0x0a));
    env.create("services", headless("solo-pd-peer", "solo", "pd", &[("client", 2379), ("peer", 2380)]));
    // PD serves TLS on a listener whose URL says https (its certificates from the flags).
    let mut cm = pd_config("solo", 0);
    let toml =
        cm["data"]["config.toml"].as_str().unwrap().replace("client-urls = \"http://", "client-urls = \"https://");
    cm["data"]["config.toml"] = json!(toml);
    env.create("configmaps", cm);
    env.create("persistentvolumeclaims", pvc("pd-solo-pd-0", "pd"));
    let mut pod = pd_pod("solo", 0, &initial_cluster("solo", 1), "pingcap/pd:v8.5.0");
    let command = pod["spec"]["containers"][0]["command"].as_array_mut().unwrap();
    command.extend(["--cacert=/tls/ca.crt", "--cert=/tls/tls.crt", "--key=/tls/tls.key"].map(|f| json!(f)));
    pod["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "tls", "mountPath": "/tls"}));
    pod["spec"]["volumes"].as_array_mut().unwrap().push(json!({"name": "tls", "secret": {"secretName": "solo-tls"}}));
    env.create("pods", pod);
    let uid = env.wait_ready("solo-pd-0").await["metadata"]["uid"].clone();

    // The operator's PD client, through the proxy, with a client certificate of the CA.
    let (cert, key) = pki.leaf(&[], 0x71);
    let material = tikv_operator_pd::TlsMaterial::from_pem(pki.0.pem(), cert, key).unwrap();
    let url = format!("https://{host}:2379");
    let client = tikv_operator_pd::PdClient::builder([url.as_str()])
        .tls(material)
        .proxy(&env.h.proxy_url())
        .unwrap()
        .build()
        .unwrap();
    let served = client.serving_certificate(&url, "/pd/api/v1/ping").await.unwrap();
    assert_eq!(served.serial_number, "0a");

    // A new leaf of the same CA: the kubelet updates the files, PD serves it on new
    // handshakes; the pod is neither restarted nor recreated.
    let rotated = pki.secret("solo-tls", &[&host], 0x0b);
    env.client.patch(&r("secrets"), Some(NS), "solo-tls", None, PatchType::Merge, &rotated).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let served = client.serving_certificate(&url, "/pd/api/v1/ping").await.unwrap();
        if served.serial_number == "0b" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the rotated certificate was never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pod = env.pod("solo-pd-0").unwrap();
    assert_eq!(pod["metadata"]["uid"], uid, "the same pod");
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0, "not restarted");
    let cluster = env.h.pd_registry().clusters()[0].clone();
    let presented: Vec<Option<String>> = cluster.control().presented().into_iter().map(|p| p.client_serial).collect();
    assert!(!presented.is_empty() && presented.iter().all(|s| s.as_deref() == Some("71")), "{presented:?}");
    env.shutdown().await;
}

/// Deletes the pod `basic-tikv-{i}` and its PVC at once, and waits until pd-sim shows
/// the store's data destroyed (its volume gone).
async fn delete_pod_and_pvc(env: &Env, i: usize) -> u64 {
    let id = env.store_of(&format!("basic-tikv-{i}"));
    env.delete_as("test", "persistentvolumeclaims", &format!("tikv-basic-tikv-{i}"));
    env.delete_as("test", "pods", &format!("basic-tikv-{i}"));
    env.wait(&format!("store {id}'s data destroyed"), |e| {
        e.snapshot().store(id).is_some_and(|s| s.data_destroyed).then_some(())
    })
    .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_pvcs_of_two_of_three_stores_loses_the_probes_writes() {
    let env = Env::start_with(without_budgets()).await;
    start_pd(&env).await;
    start_tikv(&env, 3).await;
    env.wait("three replicas everywhere", |e| {
        let snap = e.snapshot();
        (!snap.regions.is_empty() && snap.regions.iter().all(|r| r.voter_count() == 3)).then_some(())
    })
    .await;
    let probe = WorkloadProbe::start_in(&env.h, NS, ProbeConfig::default()).unwrap();
    assert!(WorkloadProbe::start_in(&env.h, "elsewhere", ProbeConfig::default()).is_none());
    env.wait("ten writes", |_| (probe.report().acknowledged.len() >= 10).then_some(())).await;

    // One of three: the other two hold every write.
    let first = delete_pod_and_pvc(&env, 0).await;
    let verdict = probe.verify();
    assert!(verdict.acknowledged >= 10 && verdict.lost.is_empty(), "{verdict:?}");
    assert!(!env.snapshot().store(first).unwrap().running);

    // A second one before PD replaced the first: no region keeps a majority.
    delete_pod_and_pvc(&env, 1).await;
    let verdict = probe.verify();
    assert_eq!(verdict.lost.len(), verdict.acknowledged, "{verdict:?}");
    env.shutdown().await;
}

/// PD's etcd dials a member at the peer URL its membership stores, which only etcd's
/// MemberUpdate (the gateway on the client URL) changes: a member listening at its
/// stored URL and another of the other scheme keeps its peers through the update; a
/// member whose stored URL it does not listen at is cut off from its peers until the
/// URL is changed back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_reached_at_its_stored_peer_url_which_member_update_changes() {
    let env = Env::start().await;
    start_pd(&env).await;
    env.create("secrets", tls_secret());
    let peer = |i: usize, scheme: &str, port: u16| format!("{scheme}://basic-pd-{i}.basic-pd-peer.{NS}.svc:{port}");
    let member_id = |e: &Env, i: usize| {
        e.snapshot().members.iter().find(|m| m.name == format!("basic-pd-{i}")).map(|m| m.member_id).unwrap()
    };
    let running =
        |e: &Env, i: usize| e.snapshot().members.iter().any(|m| m.name == format!("basic-pd-{i}") && m.running);
    let update = |i: usize, url: String| {
        let id = member_id(&env, i);
        let control = env.h.pd_clusters()[0].control();
        async move {
            let base = control.member_url("basic-pd-0").await.unwrap();
            let body = json!({"ID": id.to_string(), "peerURLs": [url]});
            let reply = reqwest::Client::new()
                .post(format!("{base}/v3/cluster/member/update"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 200, "{}", reply.text().await.unwrap());
        }
    };

    // basic-pd-1 restarts listening plain at 2380 (stored) and TLS at 2381: it rejoins.
    let name = "basic-pd-1";
    env.delete_as("test", "pods", name);
    env.wait_gone(name).await;
    let mut cm = pd_config("basic", 1);
    let toml = cm["data"]["config.toml"]
        .as_str()
        .unwrap()
        .replace("peer-urls = \"http://0.0.0.0:2380\"", "peer-urls = \"http://0.0.0.0:2380,https://0.0.0.0:2381\"");
    assert!(toml.contains("2381"), "{toml}");
    cm["data"]["config.toml"] = json!(format!("{toml}{PD_SECURITY}"));
    env.delete_as("test", "configmaps", name);
    env.create("configmaps", cm);
    env.create("pods", with_tls_mount(pd_pod("basic", 1, &initial_cluster("basic", 3), "pingcap/pd:v8.5.0")));
    env.wait_ready(name).await;
    env.wait("basic-pd-1 running", |e| running(e, 1).then_some(())).await;

    // PD is told its TLS URL: it listens there too, and stays reachable.
    update(1, peer(1, "https", 2381)).await;
    assert_eq!(env.snapshot().members.iter().find(|m| m.name == name).unwrap().peer_urls, [peer(1, "https", 2381)]);
    env.h.clock().advance(Duration::from_secs(5));
    assert!(running(&env, 1), "a member listening at its new URL keeps its peers");

    // basic-pd-2 listens plain at 2380 only: stored elsewhere, its peers cannot reach it.
    update(2, peer(2, "https", 2381)).await;
    env.wait("basic-pd-2 cut off", |e| (!running(e, 2)).then_some(())).await;
    update(2, peer(2, "http", 2380)).await;
    env.wait("basic-pd-2 reached again", |e| running(e, 2).then_some(())).await;
}
