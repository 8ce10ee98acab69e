//! `replication`: PD's `max-replicas` and `location-labels`, shown in the status.
//!
//! Reads: the cluster's PD cache (its last good view; the cache polls the replication
//! config with the stores, and a change re-triggers the Cluster). Writes: only the
//! status being built (`status.replication`); the status write skips an unchanged one.
//! Outcomes: Complete (also while PD is not registered or has not answered: the last
//! value recorded stays).

use tikv_operator_api::cluster::ReplicationStatus;
use tikv_operator_task::{Node, Outcome, sync_task};

use crate::cluster::state::ClusterState;

pub fn replication() -> Node<ClusterState> {
    sync_task("replication", |s: &mut ClusterState| {
        let Some(view) = s.pass.pd().and_then(|pd| pd.cache.snapshot().view) else {
            return Outcome::complete("PD has not been read; keeping what was recorded");
        };
        let replication = &view.replication;
        let status = ReplicationStatus {
            max_replicas: i64::try_from(replication.max_replicas).unwrap_or(i64::MAX),
            location_labels: replication.location_labels.clone(),
        };
        let message =
            format!("max-replicas {}, location-labels [{}]", status.max_replicas, status.location_labels.join(","));
        s.pass.status.replication = Some(status);
        Outcome::complete(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, offline_context, sample_cluster};
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn pds_settings_are_shown_and_kept_while_pd_is_unreadable() {
        let ctx = offline_context();
        let mut state = ClusterState::new(ctx.clone(), "default", "basic");
        state.pass = state.pass.with_object(sample_cluster("basic"));
        let runner = Runner::new("test", [replication()]);
        runner.run("k", &mut state).await;
        assert_eq!(state.pass.status.replication, None, "not registered: nothing known");

        let pd = FakePd::bootstrapped().replication(5, &["zone", "host"]);
        let handle = pd.fresh_handle().await;
        ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", handle.clone());
        runner.run("k", &mut state).await;
        let shown = ReplicationStatus { max_replicas: 5, location_labels: vec!["zone".into(), "host".into()] };
        assert_eq!(state.pass.status.replication.as_ref(), Some(&shown));

        // A failed poll keeps the last view: what is shown does not change.
        pd.unreachable(true);
        assert!(handle.cache.refresh().await.is_err());
        runner.run("k", &mut state).await;
        assert_eq!(state.pass.status.replication, Some(shown));
    }
}
