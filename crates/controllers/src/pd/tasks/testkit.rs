//! A hand-built pass for the PD membership tasks' tests: kube-sim holding the Cluster
//! (its PD cluster ID recorded), PD instance `pd-a` (member 1, our finalizer, its data
//! PVC) and the Pods of members `pd-pd-a`, `pd-pd-b`, `pd-pd-c` (Ready since the 1st,
//! 2nd and 3rd of January: `pd-pd-a` longest), and a recording fake PD listing them as
//! members 1, 2, 3; the real loading tasks run before the tasks under test.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use tikv_operator_api::names::FINALIZER;
use tikv_operator_api::{Cluster, PD, PDStatus};
use tikv_operator_task::{Node, Report, Runner};

use crate::common::tasks::{load_cluster, load_object, load_pod, write_status};
use crate::pd::state::PdState;
use crate::pd::tasks::member;
use crate::pd_registry::{ClusterKey, PdHandle};
use crate::testing::{FakePd, TestEnv, sample_cluster, sample_pd};

pub const NAME: &str = "pd-a";
pub const MEMBERS: [&str; 3] = ["pd-pd-a", "pd-pd-b", "pd-pd-c"];

pub struct Kit {
    pub env: TestEnv,
    pub pd: FakePd,
    pub handle: PdHandle,
}

impl Kit {
    /// Three members, `leader` leading; instance `pd-a` (member 1 recorded) with its
    /// data PVC; every member's Pod running and Ready, `flag` its membership flag.
    pub async fn new(leader: &str, flag: &str) -> Kit {
        let env = TestEnv::start().await;
        let mut cluster = env.create(sample_cluster("basic")).await;
        cluster.status.get_or_insert_default().id = Some(FakePd::CLUSTER_ID.to_string());
        let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), "default");
        clusters.replace_status("basic", &PostParams::default(), &cluster).await.unwrap();
        let mut pd = sample_pd(NAME, "pd");
        pd.metadata.finalizers = Some(vec![FINALIZER.into()]);
        let pd = env.create(pd).await;
        for mut pvc in crate::common::render::pvcs(&pd, "pd-pd-a").unwrap() {
            pvc.metadata.namespace = Some("default".into());
            env.create::<PersistentVolumeClaim>(pvc).await;
        }
        for (i, member) in MEMBERS.iter().enumerate() {
            member_pod(&env, member, &format!("2026-01-0{}T00:00:00Z", i + 1), flag).await;
        }
        let pd = MEMBERS
            .iter()
            .enumerate()
            .fold(FakePd::bootstrapped(), |pd, (i, m)| pd.member(m, i as u64 + 1))
            .leader(leader);
        let handle = pd.fresh_handle().await;
        env.ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", handle.clone());
        let kit = Kit { env, pd, handle };
        kit.status(|st| st.id = Some("1".into())).await;
        kit
    }

    /// Replaces the instance's status (what earlier passes recorded).
    pub async fn status(&self, change: impl FnOnce(&mut PDStatus)) {
        let api: Api<PD> = Api::namespaced(self.env.client.clone(), "default");
        let mut pd = api.get(NAME).await.unwrap();
        change(pd.status.get_or_insert_default());
        api.replace_status(NAME, &PostParams::default(), &pd).await.unwrap();
    }

    /// Deletes the instance (it stays, deleting, held by our finalizer).
    pub async fn delete(&self) {
        let api: Api<PD> = Api::namespaced(self.env.client.clone(), "default");
        api.delete(NAME, &Default::default()).await.unwrap();
    }

    /// One pass: a fresh PD poll, the loading tasks and `member`, `tasks`, and the
    /// status write; the request log and PD's write log start empty.
    pub async fn pass(&self, tasks: impl IntoIterator<Item = Node<PdState>>) -> (PdState, Report) {
        self.handle.cache.refresh().await.unwrap();
        self.env.synced().await;
        let mut all = vec![load_object(), load_cluster(), load_pod(), member()];
        all.extend(tasks);
        all.push(write_status());
        self.run(Runner::new("pd", all)).await
    }

    /// One pass of the whole runbook, after a fresh PD poll.
    pub async fn runbook(&self) -> (PdState, Report) {
        self.handle.cache.refresh().await.unwrap();
        self.env.synced().await;
        self.run(Runner::new("pd", crate::pd::builder::tasks())).await
    }

    async fn run(&self, runner: Runner<PdState>) -> (PdState, Report) {
        self.env.sim.requests().reset();
        self.pd.clear_write_log();
        let mut state = PdState::new(self.env.ctx.clone(), "default", NAME);
        let report = runner.run("default/pd-a", &mut state).await;
        (state, report)
    }

    /// The pass' Kubernetes writes, its status write left out.
    pub fn writes(&self) -> Vec<String> {
        self.env.write_log().into_iter().filter(|w| !w.contains("/status/")).collect()
    }

    pub async fn live(&self) -> PD {
        self.env.get(NAME).await
    }
}

/// The Pod of `member`, running and Ready since `since`, started with `flag`.
pub async fn member_pod(env: &TestEnv, member: &str, since: &str, flag: &str) -> Pod {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": member, "namespace": "default",
            "labels": {"tikv.org/managed-by": "tikv-operator", "tikv.org/cluster": "basic",
                "tikv.org/component": "pd", "tikv.org/group": "pd",
                "tikv.org/instance": member.trim_start_matches("pd-")}},
        "spec": {"containers": [{"name": "pd", "image": "pingcap/pd:v8.5.0",
            "command": ["/pd-server", format!("--name={member}"), flag]}]},
    }))
    .unwrap();
    let mut pod = env.create(pod).await;
    pod.status = Some(
        serde_json::from_value(json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}],
            "containerStatuses": [{"name": "pd", "image": "x", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {}}}]}))
        .unwrap(),
    );
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    pods.replace_status(member, &PostParams::default(), &pod).await.unwrap()
}
