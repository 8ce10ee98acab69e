//! `suspend_pod`: the member's Pod goes with the suspension
//! (`Cluster.spec.suspendAction.suspendCompute`), after every TiKV Pod of the cluster —
//! the stores stop while PD still runs, so they leave no request unanswered by PD.
//!
//! Runs behind the `cluster_suspended` guard, before any restart: the member, its
//! ConfigMap and PVCs stay (no member is removed because its Pod is gone), PD is not
//! written to. Reads the Pods of the cluster from the cache. Writes: the Pod's deletion
//! (UID precondition, the Pod's own grace period), an Event. Releases the instance's
//! PD wait. Outcomes: Retry every second while TiKV Pods remain (their deletion brings
//! no event to PD instances); Wait while the Pod terminates; Complete once it is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tikv_operator_api::names::{COMPONENT_TIKV, LABEL_CLUSTER, LABEL_COMPONENT};
use tikv_operator_task::{Node, Outcome, task};

use crate::common::instance::pod_terminating;
use crate::common::tasks::delete_for_suspension;
use crate::pd::state::PdState;

/// How often a PD Pod waiting for the TiKV Pods to go looks again.
pub const SUSPEND_RECHECK: Duration = Duration::from_secs(1);

pub fn suspend_pod() -> Node<PdState> {
    task("suspend_pod", |s: &mut PdState| {
        Box::pin(async move {
            let key = s.pass.key();
            s.pass.ctx.pd_waits.done(&key);
            if let Some(pod) = s.parts.pod.as_ref().filter(|p| !pod_terminating(p)) {
                let left = tikv_pods(s);
                if left > 0 {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    return Outcome::retry(
                        SUSPEND_RECHECK,
                        format!("pod {name} goes once the cluster's TiKV pods are gone ({left} left)"),
                    );
                }
            }
            delete_for_suspension(s, None).await
        })
    })
}

/// The TiKV Pods of the cluster in the cache, terminating ones included.
fn tikv_pods(s: &PdState) -> usize {
    let cluster = s.pass.object.as_ref().map(|p| p.spec.cluster.name.clone()).unwrap_or_default();
    let selector = BTreeMap::from([
        (LABEL_CLUSTER.to_string(), cluster),
        (LABEL_COMPONENT.to_string(), COMPONENT_TIKV.to_string()),
    ]);
    s.pass.ctx.caches.list::<Pod>(&s.pass.namespace, &selector).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::tasks::{load_cluster, load_object, load_pod};
    use crate::testing::{TestEnv, sample_cluster, sample_pd};
    use kube::Api;
    use kube::api::DeleteParams;
    use tikv_operator_api::cluster::SuspendAction;
    use tikv_operator_api::names::{LABEL_MANAGED_BY as MANAGED_BY, MANAGED_BY_OPERATOR};
    use tikv_operator_task::{OutcomeKind, Runner};

    fn pod(name: &str, component: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.metadata.labels = Some(
            [
                (LABEL_CLUSTER.to_string(), "basic".to_string()),
                (LABEL_COMPONENT.to_string(), component.to_string()),
                (tikv_operator_api::names::LABEL_INSTANCE.to_string(), "pd-abc123".to_string()),
                (MANAGED_BY.to_string(), MANAGED_BY_OPERATOR.to_string()),
            ]
            .into(),
        );
        pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![k8s_openapi::api::core::v1::Container {
                name: "c".into(),
                image: Some("pd".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        pod
    }

    #[tokio::test]
    async fn the_pd_pod_goes_only_after_every_tikv_pod_of_the_cluster() {
        let env = TestEnv::start().await;
        let mut cluster = sample_cluster("basic");
        cluster.spec.suspend_action = Some(SuspendAction { suspend_compute: true });
        env.create(cluster).await;
        env.create(sample_pd("pd-abc123", "pd")).await;
        env.create(pod("pd-pd-abc123", "pd")).await;
        env.create(pod("tikv-tikv-x", COMPONENT_TIKV)).await;
        let runner = Runner::new("pd", [load_object(), load_cluster(), load_pod(), suspend_pod()]);
        let pass = || async {
            env.synced().await;
            env.sim.requests().reset();
            env.run(&runner, "k", &mut PdState::new(env.ctx.clone(), "default", "pd-abc123")).await
        };
        let report = pass().await;
        let entry = report.entry("suspend_pod").unwrap();
        assert_eq!(entry.retry_after(), Some(SUSPEND_RECHECK), "{report}");
        assert_eq!(entry.message(), "pod pd-pd-abc123 goes once the cluster's TiKV pods are gone (1 left)");
        assert_eq!(env.write_log(), Vec::<String>::new());

        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        pods.delete("tikv-tikv-x", &DeleteParams::default()).await.unwrap();
        let report = pass().await;
        assert_eq!(report.entry("suspend_pod").unwrap().kind(), Some(OutcomeKind::Wait), "{report}");
        assert_eq!(env.write_log(), ["delete pods/pd-pd-abc123"]);
        assert!(env.events().await.iter().any(|e| e.1 == "SuspendingPod"));

        let report = pass().await;
        assert_eq!(report.entry("suspend_pod").unwrap().message(), "suspended: no pod", "{report}");
        assert_eq!(env.write_log(), Vec::<String>::new());
    }
}
