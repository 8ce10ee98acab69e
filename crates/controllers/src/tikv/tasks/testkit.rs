//! A hand-built pass for the TiKV lifecycle tasks' tests: kube-sim holding the Cluster
//! (its PD cluster ID recorded) and the instance, a recording fake PD registered for
//! the cluster, and the real loading tasks in front of the tasks under test, so each
//! test reads its state as a pass of the operator would.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus, PersistentVolumeClaim, Pod,
    PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use tikv_operator_api::names::{self, FINALIZER};
use tikv_operator_api::tikv::TiKVStatus;
use tikv_operator_api::{Cluster, TiKV};
use tikv_operator_task::{Node, Outcome, Report, Runner, sync_task};

use crate::common::tasks::load_pod;
use crate::common::tasks::{load_cluster, load_object, write_status};
use crate::pd_registry::{ClusterKey, PdHandle};
use crate::testing::{FakePd, TestEnv, sample_cluster, sample_tikv};
use crate::tikv::state::TikvState;

pub const NAME: &str = "tikv-abc123";
pub const ADDR: &str = "tikv-tikv-abc123.tikv-tikv-peer.default.svc:20160";

/// Store 5 on this instance's address, and three more stores, so that max-replicas 3
/// still holds once store 5 has left.
pub fn four_stores() -> FakePd {
    use tikv_operator_pd::NodeState::Serving;
    FakePd::bootstrapped()
        .store(5, ADDR, Serving)
        .store(6, "tikv-b:20160", Serving)
        .store(7, "tikv-c:20160", Serving)
        .store(8, "tikv-d:20160", Serving)
}

pub struct Kit {
    pub env: TestEnv,
    pub pd: FakePd,
    pub handle: PdHandle,
}

impl Kit {
    /// The Cluster (ID recorded), the instance (with our finalizer) and `pd` registered.
    pub async fn new(pd: FakePd, tikv: impl FnOnce(&mut TiKV)) -> Kit {
        let env = TestEnv::start().await;
        let cluster = env.create(sample_cluster("basic")).await;
        let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), "default");
        let mut cluster = cluster;
        cluster.status.get_or_insert_default().id = Some(FakePd::CLUSTER_ID.to_string());
        clusters.replace_status("basic", &PostParams::default(), &cluster).await.unwrap();
        let mut object = sample_tikv(NAME, "tikv");
        object.metadata.finalizers = Some(vec![FINALIZER.into()]);
        tikv(&mut object);
        env.create(object).await;
        let handle = pd.fresh_handle().await;
        env.ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", handle.clone());
        Kit { env, pd, handle }
    }

    /// Replaces the instance's status (what earlier passes recorded).
    pub async fn status(&self, change: impl FnOnce(&mut TiKVStatus)) {
        let api: Api<TiKV> = Api::namespaced(self.env.client.clone(), "default");
        let mut tikv = api.get(NAME).await.unwrap();
        change(tikv.status.get_or_insert_default());
        api.replace_status(NAME, &PostParams::default(), &tikv).await.unwrap();
    }

    pub async fn patch(&self, patch: serde_json::Value) {
        let api: Api<TiKV> = Api::namespaced(self.env.client.clone(), "default");
        api.patch(NAME, &crate::apply::patch_params(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    }

    /// Deletes the instance (it stays, deleting, held by our finalizer).
    pub async fn delete(&self) {
        let api: Api<TiKV> = Api::namespaced(self.env.client.clone(), "default");
        api.delete(NAME, &Default::default()).await.unwrap();
    }

    /// The instance's Pod and its data PVC, as the instance controller made them.
    pub async fn pod_and_pvc(&self, store_label: Option<&str>) {
        let tikv: TiKV = self.env.get(NAME).await;
        let pod = crate::tikv::render::pod(&crate::tikv::render::PodInputs {
            tikv: &tikv,
            tls: false,
            pd_url: "http://pd",
            tools_image: crate::DEFAULT_TOOLS_IMAGE,
        })
        .unwrap();
        self.env.create::<Pod>(pod).await;
        for mut pvc in crate::common::render::pvcs(&tikv, &format!("tikv-{NAME}")).unwrap() {
            if let Some(id) = store_label {
                pvc.metadata.labels.get_or_insert_default().insert(names::LABEL_STORE_ID.into(), id.into());
            }
            self.env.create::<PersistentVolumeClaim>(pvc).await;
        }
    }

    /// One pass: a fresh PD poll, the loading tasks, `tasks`, and the status write;
    /// the request log and PD's write log start empty.
    pub async fn pass(&self, tasks: impl IntoIterator<Item = Node<TikvState>>) -> (TikvState, Report) {
        self.handle.cache.refresh().await.unwrap();
        self.pass_as_is(tasks).await
    }

    /// As [`Kit::pass`], with the PD view as it is (not polled first).
    pub async fn pass_as_is(&self, tasks: impl IntoIterator<Item = Node<TikvState>>) -> (TikvState, Report) {
        self.env.synced().await;
        self.pass_from_caches(tasks).await
    }

    /// As [`Kit::pass_as_is`], reading the watch caches as they are, however behind.
    pub async fn pass_from_caches(&self, tasks: impl IntoIterator<Item = Node<TikvState>>) -> (TikvState, Report) {
        let mut all = vec![load_object(), load_cluster(), load_pod(), crate::tikv::tasks::store()];
        all.extend(tasks);
        all.push(write_status());
        let runner = Runner::new("tikv", all);
        self.env.sim.requests().reset();
        self.pd.clear_write_log();
        let mut state = TikvState::new(self.env.ctx.clone(), "default", NAME);
        let report = runner.run("default/tikv-abc123", &mut state).await;
        (state, report)
    }

    /// One pass of the whole runbook (`builder::tasks`), after a fresh PD poll.
    pub async fn runbook(&self) -> (TikvState, Report) {
        self.handle.cache.refresh().await.unwrap();
        let runner = Runner::new("tikv", crate::tikv::builder::tasks());
        self.env.synced().await;
        self.env.sim.requests().reset();
        self.pd.clear_write_log();
        let mut state = TikvState::new(self.env.ctx.clone(), "default", NAME);
        let report = runner.run("default/tikv-abc123", &mut state).await;
        (state, report)
    }

    /// The pass' Kubernetes writes, its status write left out.
    pub fn writes(&self) -> Vec<String> {
        self.env.write_log().into_iter().filter(|w| !w.contains("/status/")).collect()
    }

    pub async fn live(&self) -> TiKV {
        self.env.get(NAME).await
    }

    /// The instance's Pod as the `pod` task makes it for the instance as it is now (its
    /// restart intent recorded), on a node, its process running and Ready since now.
    pub async fn running_pod(&self) -> Pod {
        let tikv = self.live().await;
        running_pod(&self.env, &tikv).await
    }

    /// Another instance of the cluster, `name`, with store `id` recorded and its Pod
    /// running and Ready.
    pub async fn other_store(&self, name: &str, id: u64) -> Pod {
        let tikv = self.env.create(sample_tikv(name, "tikv")).await;
        let api: Api<TiKV> = Api::namespaced(self.env.client.clone(), "default");
        let mut tikv = tikv;
        tikv.status.get_or_insert_default().id = Some(id.to_string());
        let tikv = api.replace_status(name, &PostParams::default(), &tikv).await.unwrap();
        running_pod(&self.env, &tikv).await
    }

    /// Replaces a Pod's status, as its kubelet reports it.
    pub async fn pod_status(&self, pod: &str, status: PodStatus) -> Pod {
        pod_status(&self.env, pod, status).await
    }
}

/// A test-only task: the Pod's drift as the `pod` task finds it, without `pod`'s writes,
/// for the tasks after it (`restart`, `conditions`).
pub fn drift() -> Node<TikvState> {
    sync_task("drift", |s: &mut TikvState| {
        s.parts.drift = s.pod_drift();
        Outcome::complete(format!("{:?}", s.parts.drift))
    })
}

/// `tikv`'s Pod as the `pod` task makes it (its restart intent recorded), bound to a
/// node (so a deletion is graceful, as for a Pod a kubelet runs), its process running
/// and Ready since the operator's now.
pub async fn running_pod(env: &TestEnv, tikv: &TiKV) -> Pod {
    let mut pod = crate::tikv::render::pod(&crate::tikv::render::PodInputs {
        tikv,
        tls: false,
        pd_url: "http://pd",
        tools_image: crate::DEFAULT_TOOLS_IMAGE,
    })
    .unwrap();
    let intent = crate::common::restart::restart_intent(tikv, false);
    pod.annotations_mut().insert(names::ANNOTATION_RESTART_INTENT.into(), serde_json::to_string(&intent).unwrap());
    pod.spec.get_or_insert_default().node_name = Some("node-1".into());
    let pod = env.create::<Pod>(pod).await;
    let now = crate::context::Clock::now(env.clock.as_ref());
    pod_status(env, &pod.name_any(), running(now, true)).await
}

/// Replaces a Pod's status, as its kubelet reports it; the caches then have it.
pub async fn pod_status(env: &TestEnv, pod: &str, status: PodStatus) -> Pod {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let mut live = api.get(pod).await.unwrap();
    live.status = Some(status);
    let live = api.replace_status(pod, &PostParams::default(), &live).await.unwrap();
    env.synced().await;
    env.sim.requests().reset();
    live
}

/// A Pod status as the kubelet reports it: started at `started`, its `tikv` container
/// running, Ready (since `started`) or not.
pub fn running(started: Timestamp, ready: bool) -> PodStatus {
    PodStatus {
        phase: Some("Running".into()),
        start_time: Some(Time(started)),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: Some(Time(started)),
            ..Default::default()
        }]),
        container_statuses: Some(vec![ContainerStatus {
            name: names::COMPONENT_TIKV.into(),
            ready,
            state: Some(ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(Time(started)) }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// A Pod status whose `tikv` container has not started (pulling its image).
pub fn not_running(started: Timestamp) -> PodStatus {
    PodStatus {
        phase: Some("Pending".into()),
        start_time: Some(Time(started)),
        container_statuses: Some(vec![ContainerStatus {
            name: names::COMPONENT_TIKV.into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting { reason: Some("ContainerCreating".into()), message: None }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}
