//! `cluster_id`: the PD cluster ID, recorded once and checked on every pass.
//!
//! Reads: the cluster's PD cache (its last good view). Writes: only the status being
//! built (`status.id`, once). A different ID answering later is a mismatch: recorded in
//! the state for the Synced condition (reason ClusterIDMismatch); the shared guard
//! keeps every destructive task of the cluster from acting.
//! Outcomes: Complete; Wait while PD has not been read (PD events re-trigger the Cluster).

use tikv_operator_task::{Node, Outcome, sync_task};

use crate::cluster::state::ClusterState;

pub fn cluster_id() -> Node<ClusterState> {
    sync_task("cluster_id", |s: &mut ClusterState| {
        let Some(pd) = s.pass.pd() else {
            return Outcome::wait("PD is not registered yet");
        };
        let Some(answering) = pd.cache.cluster_id() else {
            return Outcome::wait("PD has not answered yet; waiting for its first poll");
        };
        match s.pass.status.id.clone() {
            None => {
                s.pass.status.id = Some(answering.to_string());
                Outcome::complete(format!("recorded cluster ID {answering}"))
            }
            Some(recorded) if recorded == answering.to_string() => Outcome::complete(format!("cluster ID {recorded}")),
            Some(recorded) => {
                let message = format!(
                    "PD answers with cluster ID {answering} but this Cluster recorded {recorded}: no destructive action is taken"
                );
                s.id_mismatch = Some(message.clone());
                Outcome::complete(message)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, offline_context, sample_cluster};
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn recorded_once_then_checked() {
        let ctx = offline_context();
        let key = ClusterKey::new("default", "basic");
        let mut state = ClusterState::new(ctx.clone(), "default", "basic");
        state.pass = state.pass.with_object(sample_cluster("basic"));
        let runner = Runner::new("test", [cluster_id()]);
        assert_eq!(runner.run("k", &mut state).await.outcome(), tikv_operator_task::OutcomeKind::Wait);

        ctx.pd.insert(&key, "http://pd", FakePd::bootstrapped().fresh_handle().await);
        runner.run("k", &mut state).await;
        assert_eq!(state.pass.status.id, Some(FakePd::CLUSTER_ID.to_string()));
        assert!(state.id_mismatch.is_none());

        state.pass.status.id = Some("12345".into());
        runner.run("k", &mut state).await;
        assert_eq!(state.pass.status.id.as_deref(), Some("12345"), "never overwritten");
        assert!(state.id_mismatch.as_deref().unwrap().contains("recorded 12345"));
    }
}
