//! In place or restart: what in an instance's spec only a restart can apply, recorded
//! on its Pod as compact JSON (`core.tikv.org/restart-intent`) and compared key by key.
//!
//! The record is the user's intent, not the rendered Pod: a newer operator build that
//! renders the same intent differently (a new probe, an init container, a field's
//! default) changes nothing recorded and restarts nothing — the new rendering reaches
//! each Pod at its next restart. Keys a newer build adds to the intent count only once
//! a Pod records them, and a Pod without the record (from an older build) counts as up
//! to date. What needs a restart: the version and image, resources, the volumes and
//! where they are mounted, the server's ports, TLS on or off, the pod overlay's spec,
//! and `config` under the `Restart` strategy (compared as data: comments, order and
//! spacing do not count). What does not: labels and annotations (patched in place),
//! `config` under `HotReload` (applied online), server labels, volume sizes and
//! storage classes (the PVC task resizes).

use serde_json::{Map, Value, json};
use tikv_operator_api::ConfigUpdateStrategy;

use super::Instance;
use crate::apply::short_hash;

/// The key of the config's hash in the intent.
pub const CONFIG: &str = "config";

/// A restart the gates hold: Synced says why (in place of "not up to date"), and the PD
/// view the hold is read from is polled fast meanwhile.
pub fn hold_restart<K: super::Object>(pass: &mut super::Pass<K>, reason: &'static str, message: String) {
    pass.unsynced.retain(|f| f.reason != tikv_operator_api::condition::reasons::POD_NOT_UP_TO_DATE);
    pass.not_synced(reason, message);
    if let Some(pd) = pass.pd() {
        let key = pass.key();
        pass.ctx.pd_waits.waiting(&key, &pd.cache, "a held restart");
    }
}

/// The intent of `instance` as recorded on its Pod.
pub fn restart_intent<I: Instance>(instance: &I, tls: bool) -> Map<String, Value> {
    let volumes: Vec<Value> =
        instance.volumes().iter().map(|v| json!({"name": v.name, "mountPath": v.mount_path})).collect();
    let intent = json!({
        "version": instance.version(),
        "image": instance.image(),
        "resources": instance.resources(),
        "volumes": volumes,
        "ports": instance.ports(),
        "tls": tls,
        "podSpec": instance.overlay().and_then(|o| o.pod.as_ref()).and_then(|p| p.spec.clone()),
        CONFIG: config_hash(instance.config()),
    });
    match intent {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The hash of a config as data (keys sorted, comments and layout gone); text that is
/// not TOML (refused by the group's validation before it reaches an instance) as is.
pub fn config_hash(text: &str) -> String {
    match text.parse::<toml::Table>() {
        Ok(table) => short_hash(&table, 16),
        Err(_) => short_hash(&text, 16),
    }
}

/// What a live Pod needs to match the intent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodDrift {
    /// Recorded keys whose values differ and only a restart applies (`version`,
    /// `config`, ...), in the intent's order.
    pub restart: Vec<String>,
    /// `config` differs under `HotReload`: applied online, no restart.
    pub hot_reload: bool,
}

impl PodDrift {
    pub fn needs_restart(&self) -> bool {
        !self.restart.is_empty()
    }
}

/// Compares the intent recorded on a Pod (its annotation, `None` without one) with
/// the instance's.
pub fn drift(recorded: Option<&str>, intent: &Map<String, Value>, strategy: ConfigUpdateStrategy) -> PodDrift {
    let Some(recorded) = recorded.and_then(|text| serde_json::from_str::<Map<String, Value>>(text).ok()) else {
        return PodDrift::default();
    };
    let mut drift = PodDrift::default();
    for (key, value) in intent {
        let Some(was) = recorded.get(key) else { continue };
        if was == value {
            continue;
        }
        if key == CONFIG && strategy == ConfigUpdateStrategy::HotReload {
            drift.hot_reload = true;
        } else {
            drift.restart.push(key.clone());
        }
    }
    drift
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sample_pd, sample_tikv};
    use std::path::PathBuf;
    use tikv_operator_api::{ObjectMeta, Overlay, PodOverlay, TiKV, Volume};

    /// Compares with (or, with `UPDATE_GOLDEN=1`, writes) `src/common/testdata/<name>`.
    fn golden(name: &str, actual: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/common/testdata").join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(actual, expected, "{name} changed: rerun with UPDATE_GOLDEN=1 and review the diff");
    }

    fn recorded(intent: &Map<String, Value>) -> String {
        serde_json::to_string(intent).unwrap()
    }

    /// What an earlier build recorded on the Pods of the sample instances
    /// (`testdata/restart-intent-*.json`, written once and never regenerated) still
    /// matches what this build wants: upgrading the operator restarts nothing. The
    /// rendered Pod (`tikv-pod.json`) may change from build to build.
    #[test]
    fn an_intent_recorded_by_an_earlier_build_restarts_nothing() {
        let tikv = sample_tikv("tikv-abc123", "tikv");
        let pd = sample_pd("pd-abc123", "pd");
        for (name, intent, strategy) in [
            ("restart-intent-tikv.json", restart_intent(&tikv, false), tikv.config_strategy()),
            ("restart-intent-pd.json", restart_intent(&pd, false), pd.config_strategy()),
        ] {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/common/testdata").join(name);
            if !path.exists() {
                golden(name, &recorded(&intent));
            }
            let earlier = std::fs::read_to_string(&path).unwrap();
            assert_eq!(drift(Some(&earlier), &intent, strategy), PodDrift::default(), "{name}");
        }
        let rendered = crate::tikv::render::pod(&crate::tikv::render::PodInputs {
            tikv: &tikv,
            tls: false,
            pd_url: "http://basic-pd.default.svc:2379",
            tools_image: crate::context::DEFAULT_TOOLS_IMAGE,
        })
        .unwrap();
        golden("tikv-pod.json", &format!("{}\n", serde_json::to_string_pretty(&rendered).unwrap()));
    }

    type Change = Box<dyn Fn(&mut TiKV)>;

    fn drift_after(change: impl Fn(&mut TiKV)) -> PodDrift {
        let base = sample_tikv("tikv-abc123", "tikv");
        let mut changed = base.clone();
        change(&mut changed);
        let before = recorded(&restart_intent(&base, false));
        drift(Some(&before), &restart_intent(&changed, false), changed.config_strategy())
    }

    #[test]
    fn what_needs_a_restart_is_named_and_nothing_else_restarts() {
        let restarts: Vec<(&str, Change)> = vec![
            ("version", Box::new(|t| t.spec.template.version = "v8.5.1".into())),
            ("image", Box::new(|t| t.spec.template.image = Some("mirror/tikv".into()))),
            ("resources", Box::new(|t| t.spec.template.resources.memory = Some("8Gi".into()))),
            ("config", Box::new(|t| t.spec.template.config = "[raftstore]\nraft-log-gc-threshold = 100\n".into())),
            ("ports", Box::new(|t| t.spec.template.server.ports.status = 20181)),
            (
                "volumes",
                Box::new(|t| {
                    t.spec.template.volumes.push(Volume {
                        name: "raft".into(),
                        mount_path: Some("/raft".into()),
                        storage: "1Gi".into(),
                        storage_class_name: None,
                        volume_attributes_class_name: None,
                    })
                }),
            ),
            (
                "podSpec",
                Box::new(|t| {
                    let pod = PodOverlay { metadata: None, spec: Some(json!({"priorityClassName": "high"})) };
                    t.spec.template.overlay = Some(Overlay { pod: Some(pod), volume_claims: Vec::new() })
                }),
            ),
        ];
        for (what, change) in restarts {
            assert_eq!(drift_after(change).restart, [what], "{what} needs a restart");
        }
        let tikv = sample_tikv("tikv-abc123", "tikv");
        let plain = recorded(&restart_intent(&tikv, false));
        assert_eq!(drift(Some(&plain), &restart_intent(&tikv, true), tikv.config_strategy()).restart, ["tls"]);

        let in_place: Vec<(&str, Change)> = vec![
            (
                "a label",
                Box::new(|t| drop(t.metadata.labels.get_or_insert_default().insert("team".into(), "a".into()))),
            ),
            ("server labels", Box::new(|t| drop(t.spec.template.server.labels.insert("rack".into(), "r1".into())))),
            ("volume size", Box::new(|t| t.spec.template.volumes[0].storage = "200Gi".into())),
            (
                "volume attributes class",
                Box::new(|t| t.spec.template.volumes[0].volume_attributes_class_name = Some("gold".into())),
            ),
            ("min ready seconds", Box::new(|t| t.spec.min_ready_seconds = 30)),
            ("offline", Box::new(|t| t.spec.offline = true)),
            (
                "pod overlay labels",
                Box::new(|t| {
                    let metadata = ObjectMeta {
                        labels: [("team".to_string(), "a".to_string())].into(),
                        annotations: Default::default(),
                    };
                    let pod = PodOverlay { metadata: Some(metadata), spec: None };
                    t.spec.template.overlay = Some(Overlay { pod: Some(pod), volume_claims: Vec::new() })
                }),
            ),
        ];
        for (what, change) in in_place {
            assert_eq!(drift_after(change), PodDrift::default(), "{what} is applied in place");
        }
    }

    #[test]
    fn config_counts_as_data_and_under_hot_reload_is_applied_online() {
        let comments = drift_after(|t| {
            t.spec.template.config = format!("# tuned\n{}\n\n", t.spec.template.config);
        });
        assert_eq!(comments, PodDrift::default(), "a comment is no change");
        let mut a = sample_tikv("tikv-abc123", "tikv");
        a.spec.template.config = "[raftstore]\nraft-log-gc-threshold = 100\nraft-log-gc-count-limit = 7\n".into();
        let mut b = a.clone();
        b.spec.template.config = "[raftstore]\nraft-log-gc-count-limit = 7\n  raft-log-gc-threshold   = 100\n".into();
        assert_eq!(config_hash(&a.spec.template.config), config_hash(&b.spec.template.config));

        let hot = drift_after(|t| {
            t.spec.template.update_strategy.config = ConfigUpdateStrategy::HotReload;
            t.spec.template.config = "[raftstore]\nraft-log-gc-threshold = 200\n".into();
        });
        assert_eq!(hot, PodDrift { restart: Vec::new(), hot_reload: true });
        let switched = drift_after(|t| t.spec.template.update_strategy.config = ConfigUpdateStrategy::HotReload);
        assert_eq!(switched, PodDrift::default(), "switching the strategy alone restarts nothing");
    }

    #[test]
    fn keys_unknown_to_either_side_and_missing_records_count_as_up_to_date() {
        let tikv = sample_tikv("tikv-abc123", "tikv");
        let intent = restart_intent(&tikv, false);
        assert_eq!(drift(None, &intent, tikv.config_strategy()), PodDrift::default(), "no record: an older build");
        assert_eq!(drift(Some("not json"), &intent, tikv.config_strategy()), PodDrift::default());
        let mut older = intent.clone();
        older.remove("podSpec");
        older.insert("retired".into(), json!(1));
        assert_eq!(drift(Some(&recorded(&older)), &intent, tikv.config_strategy()), PodDrift::default());
    }
}
