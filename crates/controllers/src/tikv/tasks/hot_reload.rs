//! `hot_reload`: under the `HotReload` config strategy, a config change reaches the
//! running store through TiKV's online config API instead of a restart (tikv-server
//! never re-reads its config file; the ConfigMap holds the new file for the next start).
//!
//! Reads the store's running config (`GET <status address>/config`) and sends the keys
//! of the instance's config whose running value differs, all at once
//! (`POST /config?persist=false`: all or nothing). When TiKV refuses, each key is sent
//! alone to tell the ones it cannot change online from the others; those are recorded on
//! the Pod and reported (`ConfigNeedsRestart`) — no restart is forced. The Pod then
//! records the config as running (its restart intent), so a later pass sends nothing.
//!
//! Writes: the store's config, the Pod's annotations (merge patch with the
//! resourceVersion), an Event. Outcomes: Complete; Wait while the Pod or its process
//! is not up; Retry when the status server does not answer; Fail on Pod write errors.

use std::time::Duration;

use serde_json::Map;
use tikv_operator_pd::PdError;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::Instance;
use crate::common::hot_reload::{changed_keys, describe, desired_keys, record_applied, target};
use crate::tikv::render::status_url;
use crate::tikv::state::TikvState;

/// How soon an unanswered status server is asked again.
const STATUS_RECHECK: Duration = Duration::from_secs(5);

pub fn hot_reload() -> Node<TikvState> {
    task("hot_reload", |s: &mut TikvState| Box::pin(run(s)))
}

async fn run(s: &mut TikvState) -> Outcome {
    let (_, tikv, pd) = match target(s, "store") {
        Ok(target) => target,
        Err(outcome) => return outcome,
    };
    let url = status_url(&tikv, s.pass.tls_enabled());
    let running = match pd.store_config(&url).await {
        Ok(running) => running,
        Err(error) => {
            return Outcome::retry(STATUS_RECHECK, format!("the store's status server did not answer: {error}"));
        }
    };
    let changes = changed_keys(&desired_keys(tikv.config()), &running);
    let mut refused = Vec::new();
    if !changes.is_empty() {
        match pd.update_store_config(&url, &changes).await {
            Ok(()) => {}
            Err(error) if refused_online(&error) => {
                for (key, value) in &changes {
                    let one = Map::from_iter([(key.clone(), value.clone())]);
                    match pd.update_store_config(&url, &one).await {
                        Ok(()) => {}
                        Err(error) if refused_online(&error) => refused.push(key.clone()),
                        Err(error) => return Outcome::retry(STATUS_RECHECK, format!("changing {key} failed: {error}")),
                    }
                }
            }
            Err(error) => return Outcome::retry(STATUS_RECHECK, format!("the config change failed: {error}")),
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

/// TiKV's answer to a key it cannot change (500 `failed to update, error: ...`).
fn refused_online(error: &PdError) -> bool {
    matches!(error, PdError::Http { status: 500, body, .. } if body.starts_with("failed to update"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::restart::{config_hash, restart_intent};
    use crate::tikv::tasks::testkit::{Kit, four_stores};
    use k8s_openapi::api::core::v1::Pod;
    use kube::{Api, ResourceExt};
    use serde_json::json;
    use tikv_operator_api::ConfigUpdateStrategy;
    use tikv_operator_api::names::{ANNOTATION_CONFIG_NEEDS_RESTART, ANNOTATION_RESTART_INTENT};
    use tikv_operator_task::{OutcomeKind, sync_task};

    const URL: &str = "http://tikv-tikv-abc123.tikv-tikv-peer.default.svc:20180";
    const CONFIG: &str = "[raftstore]\nraft-log-gc-threshold = 100\nraft-log-gc-count-limit = 7\n";

    /// The instance under HotReload with `CONFIG`, its Pod running and recording the
    /// config it started with (`old`).
    async fn kit(pd: crate::testing::FakePd, old: &str) -> Kit {
        let kit = Kit::new(pd, |t| {
            t.spec.template.update_strategy.config = ConfigUpdateStrategy::HotReload;
            t.spec.template.config = CONFIG.into();
        })
        .await;
        kit.pod_and_pvc(None).await;
        let api: Api<Pod> = Api::namespaced(kit.env.client.clone(), "default");
        let mut pod = api.get("tikv-tikv-abc123").await.unwrap();
        let mut intent = restart_intent(&kit.live().await, false);
        intent.insert("config".into(), json!(config_hash(old)));
        pod.annotations_mut().insert(ANNOTATION_RESTART_INTENT.into(), serde_json::Value::Object(intent).to_string());
        let mut pod = api.replace("tikv-tikv-abc123", &Default::default(), &pod).await.unwrap();
        pod.status = Some(
            serde_json::from_value(json!({
                "phase": "Running",
                "containerStatuses": [{"name": "tikv", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                    "state": {"running": {}}}],
            }))
            .unwrap(),
        );
        api.replace_status("tikv-tikv-abc123", &Default::default(), &pod).await.unwrap();
        kit
    }

    fn drift() -> Node<TikvState> {
        sync_task("drift", |s: &mut TikvState| {
            s.parts.drift = s.pod_drift();
            Outcome::complete("")
        })
    }

    #[tokio::test]
    async fn changed_keys_go_online_in_one_request_and_the_pod_records_the_config() {
        let pd = four_stores()
            .store_config(URL, json!({"raftstore": {"raft-log-gc-threshold": 50, "raft-log-gc-count-limit": 7}}));
        let kit = kit(pd, "[raftstore]\nraft-log-gc-threshold = 50\n").await;
        let (s, report) = kit.pass([drift(), hot_reload()]).await;
        assert_eq!(report.entry("hot_reload").unwrap().message(), "applied raftstore.raft-log-gc-threshold online");
        assert_eq!(
            kit.pd.write_log(),
            [format!("update_store_config({URL}, {{\"raftstore.raft-log-gc-threshold\":100}})")]
        );
        assert_eq!(kit.writes(), ["patch pods/tikv-tikv-abc123"]);
        assert!(!s.parts.drift.hot_reload);
        assert_eq!(kit.pd.running_store_config(URL).unwrap()["raftstore"]["raft-log-gc-threshold"], json!(100));

        let (_, report) = kit.pass([drift(), hot_reload()]).await;
        assert_eq!(report.entry("hot_reload").unwrap().message(), "not needed", "recorded: nothing to send");
        assert_eq!((kit.pd.write_log(), kit.writes()), (Vec::<String>::new(), Vec::<String>::new()));
    }

    #[tokio::test]
    async fn keys_that_cannot_change_online_are_found_one_by_one_and_recorded_for_the_next_restart() {
        let pd = four_stores()
            .store_config(URL, json!({"raftstore": {"raft-log-gc-threshold": 50, "raft-log-gc-count-limit": 3}}))
            .refuse_online("raftstore.raft-log-gc-count-limit");
        let kit = kit(pd, "").await;
        let (_, report) = kit.pass([drift(), hot_reload()]).await;
        assert_eq!(report.entry("hot_reload").unwrap().kind(), Some(OutcomeKind::Complete), "{report}");
        assert_eq!(
            report.entry("hot_reload").unwrap().message(),
            "applied raftstore.raft-log-gc-threshold online; raftstore.raft-log-gc-count-limit cannot change online: \
             at the next restart"
        );
        assert_eq!(kit.pd.write_log().len(), 3, "all at once, refused, then each alone: {:?}", kit.pd.write_log());
        let pod: Pod = kit.env.get("tikv-tikv-abc123").await;
        assert_eq!(pod.annotations()[ANNOTATION_CONFIG_NEEDS_RESTART], "raftstore.raft-log-gc-count-limit");
        let (s, _) = kit.pass([drift(), crate::tikv::tasks::conditions()]).await;
        let c = tikv_operator_api::condition::find_condition(&s.pass.status.common.conditions, "ConfigNeedsRestart")
            .unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "ConfigNeedsRestart"));
    }

    #[test]
    fn only_a_refused_update_counts_as_a_key_that_cannot_change_online() {
        let refused =
            PdError::Http { status: 500, path: "/config".into(), body: "failed to update, error: \"x\"".into() };
        assert!(refused_online(&refused));
        assert!(!refused_online(&PdError::Http { status: 500, path: "/config".into(), body: "boom".into() }));
    }
}
