//! `write_status`: the single status write of a pass, in `finally`.
//!
//! Reads: the status built by the pass and the status read. Writes: the status
//! subresource (a replace carrying the resourceVersion), only if they differ.
//! Outcomes: Complete (written, or unchanged); Retry shortly on a 409; Fail otherwise.

use std::time::Duration;

use kube::{Api, ResourceExt};
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::post_params;
use crate::common::{Object, PassState};
use crate::error::{is_conflict, is_not_found};

pub fn write_status<S: PassState>() -> Node<S> {
    task("write_status", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass_mut();
            let Some(object) = &pass.object else {
                return Outcome::complete("object gone");
            };
            let read = object.status().cloned().unwrap_or_default();
            if read == pass.status {
                return Outcome::complete("unchanged");
            }
            let mut desired = object.clone();
            desired.set_status(pass.status.clone());
            let api: Api<S::Object> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
            match api.replace_status(&object.name_any(), &post_params(), &desired).await {
                Ok(written) => {
                    pass.object = Some(written);
                    Outcome::complete("written")
                }
                Err(error) if is_conflict(&error) => {
                    Outcome::retry(Duration::from_secs(1), "the object changed since it was read; retrying")
                }
                Err(error) if is_not_found(&error) => Outcome::complete("object gone"),
                Err(error) => Outcome::fail(error),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::tasks::load_object;
    use crate::testing::{PdOnly, TestEnv, sample_pd};
    use tikv_operator_api::PD;
    use tikv_operator_api::condition::{reasons, types};
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn status_is_written_once_and_only_when_changed() {
        let env = TestEnv::start().await;
        env.create(sample_pd("pd-abc123", "pd")).await;
        let runner = Runner::new("test", [load_object(), write_status()]);

        let mut state = PdOnly::new(&env, "pd-abc123");
        let report = env.run(&runner, "k", &mut state).await;
        assert_eq!(report.entry("write_status").unwrap().message(), "unchanged");
        assert_eq!(env.writes(), 0);

        let set_ready = tikv_operator_task::sync_task("conditions", |s: &mut PdOnly| {
            s.pass.set_condition(types::READY, false, reasons::POD_NOT_CREATED, "no pod");
            s.pass.status.id = Some("7".into());
            Outcome::complete("")
        });
        let runner = Runner::new("test", [load_object(), set_ready, write_status()]);
        let mut state = PdOnly::new(&env, "pd-abc123");
        assert_eq!(env.run(&runner, "k", &mut state).await.entry("write_status").unwrap().message(), "written");
        let live: PD = env.get("pd-abc123").await;
        assert_eq!(live.status.as_ref().and_then(|s| s.id.as_deref()), Some("7"));

        let writes = env.writes();
        let mut state = PdOnly::new(&env, "pd-abc123");
        assert_eq!(env.run(&runner, "k", &mut state).await.entry("write_status").unwrap().message(), "unchanged");
        assert_eq!(env.writes(), writes, "the same conditions again make no write");
    }
}
