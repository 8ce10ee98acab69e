//! `release_without_cluster`: an instance deleted after its Cluster is gone is cleaned up
//! as under `deletionPolicy: Retain`.
//!
//! Runs where the pass stops for a deleting instance whose Cluster is not in the watch
//! cache. The cache may lag behind the API server, and releasing a live store's
//! finalizer is not undoable, so "the Cluster is gone" is first confirmed by a GET of the
//! Cluster from the API server. Reads: the instance, that GET. Writes: the instance's
//! finalizer (released), nothing else: its Pod and ConfigMap go by owner reference, its
//! PVCs are kept (there is no Cluster left to say `Delete`), and no PD call is made (there
//! is no PD to ask). Outcomes: Complete once released; Retry shortly when the Cluster
//! does exist (the cache lags; its watch event re-runs the pass on the usual path); Fail
//! when the GET fails.

use std::time::Duration;

use kube::Api;
use tikv_operator_api::Cluster;
use tikv_operator_task::{Node, Outcome, OutcomeKind, task};

use crate::common::tasks::set_finalizer;
use crate::common::{Object, PassState};

pub fn release_without_cluster<S: PassState>() -> Node<S> {
    task("release_without_cluster", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass();
            let Some(name) = pass.object.as_ref().map(Object::cluster_name) else {
                return Outcome::complete("no object");
            };
            let clusters: Api<Cluster> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
            match clusters.get_opt(&name).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    return Outcome::retry(
                        Duration::from_secs(1),
                        format!("cluster {name} exists though the cache does not have it yet; retrying"),
                    );
                }
                Err(error) => return Outcome::fail(error),
            }
            let key = pass.key();
            pass.ctx.pd_waits.done(&key);
            match set_finalizer(s, false).await {
                outcome if outcome.kind() == OutcomeKind::Complete => {
                    Outcome::complete(format!("cluster {name} is gone: finalizer released, PVCs kept"))
                }
                outcome => outcome,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{PdOnly, TestEnv, sample_cluster, sample_pd};
    use kube::api::DeleteParams;
    use kube::{Resource, ResourceExt};
    use tikv_operator_api::PD;
    use tikv_operator_api::names::FINALIZER;
    use tikv_operator_task::Runner;

    /// A PD instance with our finalizer, deleted: as read, with its deletionTimestamp.
    async fn deleting_pd(env: &TestEnv) -> PD {
        let mut pd = sample_pd("pd-abc123", "pd");
        pd.metadata.finalizers = Some(vec![FINALIZER.into()]);
        env.create(pd).await;
        let api: Api<PD> = Api::namespaced(env.client.clone(), "default");
        api.delete("pd-abc123", &DeleteParams::default()).await.unwrap();
        let read: PD = env.get("pd-abc123").await;
        assert!(read.meta().deletion_timestamp.is_some());
        env.sim.requests().reset();
        read
    }

    #[tokio::test]
    async fn with_the_cluster_gone_from_the_api_server_the_finalizer_is_released() {
        let env = TestEnv::start().await;
        let pd = deleting_pd(&env).await;
        let mut state = PdOnly::new(&env, "pd-abc123");
        state.pass = state.pass.with_object(pd);
        let report = Runner::new("t", [release_without_cluster()]).run("k", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(
            report.entry("release_without_cluster").unwrap().message(),
            "cluster basic is gone: finalizer released, PVCs kept"
        );
        assert_eq!(env.requests(), ["get core.tikv.org/clusters/basic", "patch core.tikv.org/pds/pd-abc123"]);
        assert!(env.list::<PD>().await.is_empty(), "released, the instance is gone");
    }

    /// The watch cache has not seen the Cluster (the pass holds none), the API server has it.
    #[tokio::test]
    async fn a_cluster_missing_only_from_a_stale_cache_keeps_the_finalizer() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        let pd = deleting_pd(&env).await;
        let mut state = PdOnly::new(&env, "pd-abc123");
        state.pass = state.pass.with_object(pd);
        assert!(state.pass.cluster.is_none());
        let report = Runner::new("t", [release_without_cluster()]).run("k", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry, "{report}");
        assert_eq!(env.write_log(), Vec::<String>::new());
        let live: PD = env.get("pd-abc123").await;
        assert_eq!(live.finalizers(), [FINALIZER]);
    }
}
