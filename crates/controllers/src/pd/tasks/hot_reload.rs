//! `hot_reload`: under the `HotReload` config strategy, a config change reaches PD
//! through its online config API (`POST /pd/api/v1/config`) instead of a restart
//! (pd-server never re-reads its config file; the ConfigMap holds the new file for the
//! next start). PD keeps that config cluster-wide: every member's pass finds the keys
//! already set once one has sent them.
//!
//! Reads PD's running config (`GET /pd/api/v1/config`) and sends each key of the
//! instance's config whose running value differs, one at a time (PD stops at the first
//! key it refuses); keys PD refuses (not settable online, or a value it rejects) are
//! recorded on the Pod and reported (`ConfigNeedsRestart`) — no restart is forced. The
//! Pod then records the config as running, so a later pass sends nothing.
//!
//! Writes: PD's config, the Pod's annotations (merge patch with the resourceVersion), an
//! Event. Outcomes: Complete; Wait while the Pod or its process is not up; Retry when PD
//! does not answer; Fail on Pod write errors.

use std::time::Duration;

use serde_json::Value;
use tikv_operator_pd::PdError;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::Instance;
use crate::common::hot_reload::{changed_keys, describe, desired_keys, record_applied, target};
use crate::pd::state::PdState;

/// How soon an unanswering PD is asked again.
const PD_RECHECK: Duration = Duration::from_secs(5);

pub fn hot_reload() -> Node<PdState> {
    task("hot_reload", |s: &mut PdState| Box::pin(run(s)))
}

async fn run(s: &mut PdState) -> Outcome {
    let (_, pd_object, pd) = match target(s, "member") {
        Ok(target) => target,
        Err(outcome) => return outcome,
    };
    let running = match pd.pd_config().await {
        Ok(running) => running,
        Err(error) => return Outcome::retry(PD_RECHECK, format!("PD did not answer: {error}")),
    };
    let desired = desired_keys(pd_object.config()).into_iter().map(|(k, v)| (k, as_pd_spells_it(v))).collect();
    let changes = changed_keys(&desired, &running);
    let mut refused = Vec::new();
    for (key, value) in &changes {
        match pd.update_pd_config(key, value).await {
            Ok(()) => {}
            Err(PdError::Http { status, .. }) if (400..500).contains(&status) => refused.push(key.clone()),
            Err(error) => return Outcome::retry(PD_RECHECK, format!("changing {key} failed: {error}")),
        }
    }
    if let Err(outcome) = record_applied(s, &refused).await {
        return outcome;
    }
    let applied: Vec<&String> = changes.keys().filter(|k| !refused.contains(k)).collect();
    let message = describe(&applied, &refused);
    s.pass.event("ConfigApplied", "HotReload", message.clone()).await;
    Outcome::complete(message)
}

/// A TOML value as PD's config API takes and shows it: booleans as the strings
/// `"true"`/`"false"` (PD declares them `,string`), lists (`location-labels`) as one
/// comma-joined string; numbers and strings (durations, sizes) as they are.
fn as_pd_spells_it(value: Value) -> Value {
    match value {
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Array(items) => {
            let text: Vec<String> =
                items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect();
            Value::String(text.join(","))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, TestEnv, sample_cluster, sample_pd};
    use k8s_openapi::api::core::v1::Pod;
    use kube::ResourceExt;
    use serde_json::json;
    use tikv_operator_api::ConfigUpdateStrategy;
    use tikv_operator_api::names::ANNOTATION_CONFIG_NEEDS_RESTART;
    use tikv_operator_task::Runner;

    #[tokio::test]
    async fn each_changed_key_goes_to_pd_alone_and_refused_ones_wait_for_a_restart() {
        let env = TestEnv::start().await;
        let pd = FakePd::bootstrapped()
            .pd_config(json!({"schedule": {"leader-schedule-limit": 4}, "lease": 3}))
            .refuse_online("lease");
        env.ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", pd.fresh_handle().await);
        let mut object = sample_pd("pd-abc123", "pd");
        object.spec.template.update_strategy.config = ConfigUpdateStrategy::HotReload;
        object.spec.template.config = "lease = 5\n[schedule]\nleader-schedule-limit = 8\n".into();
        let object = env.create(object).await;
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "pd-pd-abc123", "namespace": "default"},
            "spec": {"containers": [{"name": "pd", "image": "pingcap/pd:v8.5.0"}]},
        }))
        .unwrap();
        pod = env.create(pod).await;
        pod.status = Some(
            serde_json::from_value(json!({"phase": "Running", "containerStatuses": [{"name": "pd", "image": "x",
                "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}))
            .unwrap(),
        );
        let mut s = PdState::new(env.ctx.clone(), "default", "pd-abc123");
        s.pass = s.pass.with_object(object).with_cluster(sample_cluster("basic"));
        s.parts.pod = Some(pod);
        s.parts.drift.hot_reload = true;
        env.sim.requests().reset();
        let report = env.run(&Runner::new("pd", [hot_reload()]), "k", &mut s).await;
        assert_eq!(
            report.entry("hot_reload").unwrap().message(),
            "applied schedule.leader-schedule-limit online; lease cannot change online: at the next restart"
        );
        assert_eq!(pd.write_log(), ["update_pd_config(lease=5)", "update_pd_config(schedule.leader-schedule-limit=8)"]);
        assert_eq!(env.write_log(), ["patch pods/pd-pd-abc123"]);
        let live: Pod = env.get("pd-pd-abc123").await;
        assert_eq!(live.annotations()[ANNOTATION_CONFIG_NEEDS_RESTART], "lease");
    }

    #[test]
    fn values_are_spelled_as_pd_takes_them() {
        assert_eq!(as_pd_spells_it(json!(true)), json!("true"));
        assert_eq!(as_pd_spells_it(json!(["zone", "host"])), json!("zone,host"));
        assert_eq!(as_pd_spells_it(json!(8)), json!(8));
        assert_eq!(as_pd_spells_it(json!("30m")), json!("30m"));
    }
}
