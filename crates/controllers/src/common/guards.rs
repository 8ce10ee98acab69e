//! Named guards every builder uses, and the safety check destructive tasks share.

use tikv_operator_api::Cluster;
use tikv_operator_task::{Condition, cond};

use super::PassState;
use crate::pd_registry::PdHandle;

/// The object no longer exists (deleted and its finalizers released).
pub fn object_gone<S: PassState>() -> Condition<S> {
    cond("object_gone", |s: &S| s.pass().object.is_none())
}

pub fn object_loaded<S: PassState>() -> Condition<S> {
    cond("object_loaded", |s: &S| s.pass().object.is_some())
}

/// The object has a deletionTimestamp.
pub fn object_deleting<S: PassState>() -> Condition<S> {
    cond("object_deleting", |s: &S| s.pass().deleting())
}

/// The object is being deleted and its Cluster is not in the watch cache: the Cluster
/// is gone, or the cache lags (the task it guards confirms with the API server).
pub fn deleting_and_cluster_gone<S: PassState>() -> Condition<S> {
    cond("deleting_and_cluster_gone", |s: &S| s.pass().deleting() && s.pass().cluster.is_none())
}

/// The object is being deleted because its Cluster is: it is released as the Cluster's
/// deletion policy says, without leaving PD one by one (PD goes too).
pub fn deleting_with_cluster<S: PassState>() -> Condition<S> {
    cond("deleting_with_cluster", |s: &S| {
        s.pass().deleting()
            && s.pass().cluster.as_ref().is_some_and(|c| kube::Resource::meta(c).deletion_timestamp.is_some())
    })
}

/// The object's Cluster does not exist (yet, or any more).
pub fn cluster_missing<S: PassState>() -> Condition<S> {
    cond("cluster_missing", |s: &S| s.pass().cluster.is_none())
}

/// `Cluster.spec.paused`: only status is reported.
pub fn cluster_paused<S: PassState>() -> Condition<S> {
    cond("cluster_paused", |s: &S| s.pass().paused())
}

/// `Cluster.spec.suspendAction.suspendCompute`: the cluster's Pods are deleted and
/// nothing else is changed (no restart, no offline, no eviction, no plan) until resumed.
pub fn cluster_suspended<S: PassState>() -> Condition<S> {
    cond("cluster_suspended", |s: &S| s.pass().suspended())
}

/// The PD answering is not the one this Cluster recorded: nothing may act on it.
pub fn cluster_id_mismatch<S: PassState>() -> Condition<S> {
    cond("cluster_id_mismatch", |s: &S| {
        let pass = s.pass();
        pass.cluster.as_ref().is_some_and(|c| cluster_id_check(c, pass.pd().as_ref()).is_err())
    })
}

/// Rule 1 of the safety contract: before anything destructive, the PD cluster ID
/// answering now must equal the one recorded in `Cluster.status.id`. An ID not yet
/// recorded, or no PD view yet, is not a confirmation either.
pub fn destructive_allowed(cluster: &Cluster, pd: Option<&PdHandle>) -> Result<(), String> {
    let recorded = cluster.status.as_ref().and_then(|s| s.id.as_deref());
    let Some(recorded) = recorded else {
        return Err("the PD cluster ID is not recorded yet".into());
    };
    let answering = pd.and_then(|pd| pd.cache.cluster_id());
    match answering {
        None => Err("PD has not been read yet".into()),
        Some(id) if id.to_string() == recorded => Ok(()),
        Some(id) => Err(format!("PD answers with cluster ID {id}, the Cluster recorded {recorded}")),
    }
}

/// Non-destructive variant: a mismatch only when both IDs are known and differ.
pub fn cluster_id_check(cluster: &Cluster, pd: Option<&PdHandle>) -> Result<(), String> {
    let recorded = cluster.status.as_ref().and_then(|s| s.id.as_deref());
    let answering = pd.and_then(|pd| pd.cache.cluster_id());
    match (recorded, answering) {
        (Some(recorded), Some(id)) if id.to_string() != recorded => {
            Err(format!("PD answers with cluster ID {id}, the Cluster recorded {recorded}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePd, sample_cluster};

    #[tokio::test]
    async fn destructive_steps_need_the_recorded_id_to_answer() {
        let pd = FakePd::bootstrapped().fresh_handle().await;
        let mut cluster = sample_cluster("basic");
        assert!(destructive_allowed(&cluster, Some(&pd)).is_err(), "not recorded yet");
        assert!(cluster_id_check(&cluster, Some(&pd)).is_ok());

        cluster.status.get_or_insert_default().id = Some(FakePd::CLUSTER_ID.to_string());
        assert!(destructive_allowed(&cluster, Some(&pd)).is_ok());
        assert!(destructive_allowed(&cluster, None).is_err(), "no PD view");

        cluster.status.get_or_insert_default().id = Some("1".into());
        let error = destructive_allowed(&cluster, Some(&pd)).unwrap_err();
        assert!(error.contains("recorded 1"), "{error}");
        assert!(cluster_id_check(&cluster, Some(&pd)).is_err());
    }
}
