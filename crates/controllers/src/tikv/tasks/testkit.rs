//! A hand-built pass for the TiKV lifecycle tasks' tests: kube-sim holding the Cluster
//! (its PD cluster ID recorded) and the instance, a recording fake PD registered for
//! the cluster, and the real loading tasks in front of the tasks under test, so each
//! test reads its state as a pass of the operator would.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::PostParams;
use tikv_operator_api::names::{self, FINALIZER};
use tikv_operator_api::tikv::TiKVStatus;
use tikv_operator_api::{Cluster, TiKV};
use tikv_operator_task::{Node, Report, Runner};

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
            config_hash: "cfg-1",
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
}
