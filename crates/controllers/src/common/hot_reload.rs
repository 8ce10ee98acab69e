//! What both components' `hot_reload` tasks share: the user's config as dotted keys,
//! the keys whose running value differs, and recording on the Pod what the process
//! now runs (the config's hash in its restart intent, and the keys it could not take,
//! which apply at its next restart).

use k8s_openapi::api::core::v1::Pod;
use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::{Map, Value, json};
use tikv_operator_api::condition::{find_condition, reasons, types};
use tikv_operator_api::names::{ANNOTATION_CONFIG_NEEDS_RESTART, ANNOTATION_RESTART_INTENT};
use tikv_operator_pd::flatten;
use tikv_operator_task::Outcome;

use super::instance::InstanceState;
use super::restart::{CONFIG, config_hash};
use super::{Instance, Object};
use crate::apply::patch_params;
use crate::error::is_conflict;

/// What an online config change needs, or the outcome that ends the task: a config
/// change under `HotReload` no restart applies anyway, the Pod running, and PD.
pub fn target<S: InstanceState>(s: &S, what: &str) -> Result<(Pod, S::I, crate::pd_registry::PdHandle), Outcome> {
    let drift = &s.parts().drift;
    if !drift.hot_reload || drift.needs_restart() {
        return Err(Outcome::complete("not needed"));
    }
    let (Some(pod), Some(instance)) = (s.parts().pod.clone(), s.pass().object.clone()) else {
        return Err(Outcome::complete("no pod"));
    };
    if super::instance::pod_terminating(&pod) || !super::instance::pod_running(&pod) {
        return Err(Outcome::wait(format!("the config is applied online once the {what} runs")));
    }
    let Some(pd) = s.pass().pd() else {
        return Err(Outcome::wait("the cluster's PD is not registered"));
    };
    Ok((pod, instance, pd))
}

/// The instance's config as dotted keys; empty when it is not TOML (the group refuses
/// such a template before it reaches an instance).
pub fn desired_keys(config: &str) -> Map<String, Value> {
    config
        .parse::<toml::Table>()
        .ok()
        .and_then(|table| serde_json::to_value(table).ok())
        .map(|value| flatten(&value))
        .unwrap_or_default()
}

/// The desired keys whose running value (`running`, as the process shows its config)
/// differs or is not shown.
pub fn changed_keys(desired: &Map<String, Value>, running: &Value) -> Map<String, Value> {
    let running = flatten(running);
    desired
        .iter()
        .filter(|(key, value)| running.get(*key) != Some(*value))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Records on the Pod that its process runs the instance's config now, but for the
/// `refused` keys (applied at its next restart): one merge patch with the
/// resourceVersion read.
pub async fn record_applied<S: InstanceState>(s: &mut S, refused: &[String]) -> Result<(), Outcome> {
    let (Some(pod), Some(instance)) = (s.parts().pod.clone(), s.pass().object.clone()) else {
        return Err(Outcome::complete("no pod"));
    };
    let mut intent: Map<String, Value> = pod
        .annotations()
        .get(ANNOTATION_RESTART_INTENT)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    intent.insert(CONFIG.into(), json!(config_hash(instance.config())));
    let needs_restart = (!refused.is_empty()).then(|| refused.join(","));
    let patch = json!({"metadata": {
        "annotations": {
            ANNOTATION_RESTART_INTENT: Value::Object(intent).to_string(),
            ANNOTATION_CONFIG_NEEDS_RESTART: needs_restart,
        },
        "resourceVersion": pod.resource_version(),
    }});
    let api: Api<Pod> = Api::namespaced(s.pass().ctx.client.clone(), &s.pass().namespace);
    match api.patch(&pod.name_any(), &patch_params(), &Patch::Merge(&patch)).await {
        Ok(patched) => {
            s.parts_mut().pod = Some(patched);
            s.parts_mut().drift.hot_reload = false;
            Ok(())
        }
        Err(error) if is_conflict(&error) => {
            Err(Outcome::retry(std::time::Duration::from_secs(1), "the pod changed since it was read; retrying"))
        }
        Err(error) => Err(Outcome::fail(error)),
    }
}

/// `ConfigNeedsRestart` from the Pod's record: True naming the keys while some wait for
/// a restart; False once they run (only where it was reported before).
pub fn set_config_condition<S: InstanceState>(s: &mut S) {
    let pending = s.parts().pod.as_ref().and_then(|p| p.annotations().get(ANNOTATION_CONFIG_NEEDS_RESTART).cloned());
    let shown = s
        .pass()
        .object
        .as_ref()
        .and_then(|o| o.status())
        .and_then(|st| find_condition(<S::I as Object>::conditions(st), types::CONFIG_NEEDS_RESTART))
        .is_some();
    match pending {
        Some(keys) => {
            let message = format!(
                "{keys} cannot change while the process runs: they apply at its next restart (the rest of the config \
                 runs)"
            );
            s.pass_mut().set_condition(types::CONFIG_NEEDS_RESTART, true, reasons::CONFIG_NEEDS_RESTART, message);
        }
        None if shown => {
            s.pass_mut().set_condition(
                types::CONFIG_NEEDS_RESTART,
                false,
                reasons::CONFIG_APPLIED,
                "the running process has the whole config",
            );
        }
        None => {}
    }
}

/// `applied raftstore.x online; storage.y needs a restart`.
pub fn describe(applied: &[&String], refused: &[String]) -> String {
    let list = |keys: Vec<&str>| keys.join(", ");
    let mut parts = Vec::new();
    if !applied.is_empty() {
        parts.push(format!("applied {} online", list(applied.iter().map(|k| k.as_str()).collect())));
    }
    if !refused.is_empty() {
        parts.push(format!(
            "{} cannot change online: at the next restart",
            list(refused.iter().map(String::as_str).collect())
        ));
    }
    if parts.is_empty() {
        return "the running config already matches".into();
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_whose_running_value_differs_are_changed() {
        let desired = desired_keys("[raftstore]\nraft-log-gc-threshold = 100\nraft-log-gc-count-limit = 7\n");
        let running = json!({"raftstore": {"raft-log-gc-threshold": 50, "raft-log-gc-count-limit": 7}});
        let changed = changed_keys(&desired, &running);
        assert_eq!(Value::Object(changed), json!({"raftstore.raft-log-gc-threshold": 100}));
        assert!(desired_keys("not toml [").is_empty());
    }

    #[test]
    fn the_message_names_what_was_applied_and_what_waits() {
        let (a, b) = ("raftstore.raft-log-gc-threshold".to_string(), "storage.data-dir".to_string());
        assert_eq!(describe(&[&a], &[]), "applied raftstore.raft-log-gc-threshold online");
        assert_eq!(
            describe(&[&a], std::slice::from_ref(&b)),
            "applied raftstore.raft-log-gc-threshold online; storage.data-dir cannot change online: at the next restart"
        );
        assert_eq!(describe(&[], &[]), "the running config already matches");
    }
}
