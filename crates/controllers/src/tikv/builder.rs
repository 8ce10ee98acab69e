//! The TiKV instance controller's runbook.

use tikv_operator_task::{Node, finally, if_, if_break};

use super::state::TikvState;
use super::tasks::*;
use crate::common::guards::{
    cluster_id_mismatch, cluster_missing, cluster_paused, object_deleting, object_gone, object_loaded,
};
use crate::common::instance::{instance_deletion, load_pod, volumes};
use crate::common::tasks::{cluster_not_found, ensure_finalizer, load_cluster, load_object, write_status};

pub fn tasks() -> Vec<Node<TikvState>> {
    vec![
        load_object(),
        if_break(object_gone(), [forget_waits()]),
        load_cluster(),
        if_break(cluster_missing(), [cluster_not_found()]),
        if_break(object_deleting(), [instance_deletion()]),
        load_pod(),
        store(),
        if_break(cluster_paused(), []),
        if_break(cluster_id_mismatch(), []),
        ensure_finalizer(),
        config_map(),
        volumes(),
        pod(),
        finally([if_(object_loaded(), [conditions(), write_status()])]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_tikv};
    use k8s_openapi::api::core::v1::Pod;
    use kube::Api;
    use tikv_operator_api::Cluster;
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn the_pod_waits_for_the_pd_url_then_nothing_is_written_twice() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_tikv("tikv-abc123", "tikv")).await;
        let runner = Runner::new("tikv", tasks());
        let report = env.run(&runner, "k", &mut TikvState::new(env.ctx.clone(), "default", "tikv-abc123")).await;
        assert!(report.entry("pod").unwrap().message().contains("no PD URL"), "{report}");

        let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), "default");
        let mut cluster = clusters.get("basic").await.unwrap();
        cluster.status.get_or_insert_default().pd = Some("http://pd-pd.default.svc:2379".into());
        clusters.replace_status("basic", &Default::default(), &cluster).await.unwrap();

        env.run(&runner, "k", &mut TikvState::new(env.ctx.clone(), "default", "tikv-abc123")).await;
        let pod: Pod = env.get("tikv-tikv-abc123").await;
        assert!(
            pod.spec.unwrap().containers[0]
                .command
                .as_ref()
                .unwrap()
                .contains(&"--pd=http://pd-pd.default.svc:2379".to_string())
        );

        env.synced().await;
        env.sim.requests().reset();
        let report = env.run(&runner, "k", &mut TikvState::new(env.ctx.clone(), "default", "tikv-abc123")).await;
        assert_eq!(env.requests(), Vec::<String>::new(), "a pass with nothing to do makes no API request: {report}");
    }
}
