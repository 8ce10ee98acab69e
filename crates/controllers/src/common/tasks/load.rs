//! `load_object` and `load_cluster`.
//!
//! Reads: the object, then its Cluster, from the watch caches. Writes: nothing.
//! Outcomes: Complete when loaded or gone (guards decide what a missing object means);
//! Wait when the Cluster does not exist (its creation triggers every group and
//! instance).

use tikv_operator_api::Cluster;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::{Object, PassState};

/// Reads the object; a missing one leaves `object` empty.
pub fn load_object<S: PassState>() -> Node<S> {
    task("load_object", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass_mut();
            match pass.ctx.caches.get::<S::Object>(&pass.namespace, &pass.name) {
                Some(object) => {
                    pass.status = object.status().cloned().unwrap_or_default();
                    pass.object = Some(S::Object::clone(&object));
                    Outcome::complete("loaded")
                }
                None => {
                    pass.object = None;
                    Outcome::complete("gone")
                }
            }
        })
    })
}

/// Reads the object's Cluster.
pub fn load_cluster<S: PassState>() -> Node<S> {
    task("load_cluster", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass_mut();
            let Some(name) = pass.object.as_ref().map(Object::cluster_name) else {
                return Outcome::complete("no object");
            };
            match pass.ctx.caches.get::<Cluster>(&pass.namespace, &name) {
                Some(cluster) => {
                    pass.cluster = Some(Cluster::clone(&cluster));
                    Outcome::complete(format!("cluster {name}"))
                }
                None => {
                    pass.cluster = None;
                    Outcome::wait(format!("cluster {name} does not exist; waiting for it to be created"))
                }
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::guards::{cluster_missing, object_gone};
    use crate::testing::{PdOnly, TestEnv, sample_cluster, sample_pd};
    use tikv_operator_task::{OutcomeKind, Runner, if_break};

    #[tokio::test]
    async fn an_object_and_its_cluster_are_loaded() {
        let env = TestEnv::start().await;
        env.create(sample_cluster("basic")).await;
        env.create(sample_pd("pd-abc123", "pd")).await;
        let runner = Runner::new("test", [load_object(), if_break(object_gone(), []), load_cluster()]);
        let mut state = PdOnly::new(&env, "pd-abc123");
        let report = env.run(&runner, "default/pd-abc123", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert!(state.pass.object.is_some());
        assert_eq!(state.pass.cluster.as_ref().and_then(|c| c.metadata.name.as_deref()), Some("basic"));
        assert_eq!(env.writes(), 0);
    }

    #[tokio::test]
    async fn a_missing_object_stops_and_a_missing_cluster_waits() {
        let env = TestEnv::start().await;
        let runner = Runner::new(
            "test",
            [load_object(), if_break(object_gone(), []), load_cluster(), if_break(cluster_missing(), [])],
        );
        let mut state = PdOnly::new(&env, "nope");
        let report = env.run(&runner, "default/nope", &mut state).await;
        assert_eq!(report.ran_names(), ["load_object"]);

        env.create(sample_pd("pd-abc123", "pd")).await;
        let mut state = PdOnly::new(&env, "pd-abc123");
        let report = env.run(&runner, "default/pd-abc123", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait);
        assert!(report.entry("load_cluster").unwrap().message().contains("cluster basic does not exist"));
    }
}
