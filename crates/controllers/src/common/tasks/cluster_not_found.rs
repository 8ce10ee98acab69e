//! `cluster_not_found`: a group or instance whose Cluster does not exist says so.
//!
//! Runs where the pass stops for a missing Cluster. Reads: the object and its status as
//! read. Writes: only the status being built (Ready=False and a Synced=False finding,
//! both `ClusterNotFound` with the name looked for; `finally` writes them), and a Warning
//! Event when the status read did not already say it. The Cluster's creation triggers
//! the object again (every controller watches Clusters), and the pass then goes on as
//! usual. Outcome: Wait for the Cluster.

use tikv_operator_api::condition::{reasons, types};
use tikv_operator_task::{Node, Outcome, task};

use crate::common::{Object, PassState};

/// What a group or instance says when its Cluster `name` is not in `namespace`.
pub fn cluster_not_found_message(namespace: &str, name: &str) -> String {
    format!(
        "Cluster {name} does not exist in namespace {namespace}: create it, or set spec.cluster.name to an existing Cluster"
    )
}

pub fn cluster_not_found<S: PassState>() -> Node<S> {
    task("cluster_not_found", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass_mut();
            let Some(name) = pass.object.as_ref().map(Object::cluster_name) else {
                return Outcome::complete("no object");
            };
            let message = cluster_not_found_message(&pass.namespace, &name);
            let new = !pass.reported(types::SYNCED, false, reasons::CLUSTER_NOT_FOUND, &message);
            pass.set_condition(types::READY, false, reasons::CLUSTER_NOT_FOUND, message.clone());
            pass.not_synced(reasons::CLUSTER_NOT_FOUND, message.clone());
            if new {
                pass.warning(reasons::CLUSTER_NOT_FOUND, "Reconcile", message).await;
            }
            Outcome::wait(format!("cluster {name} does not exist; waiting for it to be created"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::tasks::{load_cluster, load_object, write_status};
    use crate::testing::{PdOnly, TestEnv, sample_pd};
    use tikv_operator_api::PD;
    use tikv_operator_api::condition::find_condition;
    use tikv_operator_task::{OutcomeKind, Runner, sync_task};

    fn condition(pd: &PD, type_: &str) -> (String, String, String) {
        let c = find_condition(&pd.status.as_ref().unwrap().common.conditions, type_).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    #[tokio::test]
    async fn the_missing_cluster_is_named_once_and_the_second_pass_writes_nothing() {
        let env = TestEnv::start().await;
        env.create(sample_pd("pd-abc123", "pd")).await;
        let set_synced = sync_task("synced", |s: &mut PdOnly| {
            s.pass.set_synced("");
            Outcome::complete("")
        });
        let runner = Runner::new("t", [load_object(), load_cluster(), cluster_not_found(), set_synced, write_status()]);

        let report = env.run(&runner, "k", &mut PdOnly::new(&env, "pd-abc123")).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(
            report.entry("cluster_not_found").unwrap().message(),
            "cluster basic does not exist; waiting for it to be created"
        );
        assert_eq!(env.write_log(), ["update core.tikv.org/pds/status/pd-abc123"]);
        let message = "Cluster basic does not exist in namespace default: create it, or set spec.cluster.name to an \
                       existing Cluster";
        let live: PD = env.get("pd-abc123").await;
        let expected = ("False".to_string(), reasons::CLUSTER_NOT_FOUND.to_string(), message.to_string());
        assert_eq!(condition(&live, types::READY), expected);
        assert_eq!(condition(&live, types::SYNCED), expected);
        assert_eq!(env.events().await, [("Warning".into(), reasons::CLUSTER_NOT_FOUND.into(), message.into())]);

        env.sim.requests().reset();
        let report = env.run(&runner, "k", &mut PdOnly::new(&env, "pd-abc123")).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(env.write_log(), Vec::<String>::new());
        assert_eq!(env.event_writes().await, 0);
    }
}
