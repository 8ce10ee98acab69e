//! `pod`: the store's Pod, rendered by [`render::pod`] against the PD URL the Cluster
//! recorded, applied by the generic task (see [`crate::common::tasks::pod`]).
//! Without a PD URL yet the Pod is not created: Wait for the Cluster's update.

use k8s_openapi::api::core::v1::Pod;
use tikv_operator_api::condition::reasons;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::render::RenderError;
use crate::common::tasks as common;
use crate::tikv::render::{self, PodInputs};
use crate::tikv::state::TikvState;

fn pd_url(s: &TikvState) -> Option<String> {
    s.pass.cluster.as_ref().and_then(|c| c.status.as_ref()).and_then(|st| st.pd.clone())
}

pub fn pod() -> Node<TikvState> {
    task("pod", |s: &mut TikvState| {
        Box::pin(async move {
            if s.parts.pod.is_none() && pd_url(s).is_none() {
                s.pass.not_synced(reasons::POD_NOT_CREATED, "the Cluster has no PD URL yet");
                return Outcome::wait("the Cluster has no PD URL yet; waiting for it");
            }
            common::run_pod(s, render_pod).await
        })
    })
}

fn render_pod(s: &TikvState) -> Result<Pod, RenderError> {
    let tikv = s.pass.object.as_ref().ok_or(RenderError::NoGroup)?;
    let pd_url = pd_url(s).unwrap_or_default();
    render::pod(&PodInputs {
        tikv,
        tls: s.pass.tls_enabled(),
        pd_url: &pd_url,
        tools_image: &s.pass.ctx.config.tools_image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_tikv};
    use kube::ResourceExt;
    use tikv_operator_api::names;
    use tikv_operator_api::{ClusterStatus, TiKV};
    use tikv_operator_task::{OutcomeKind, Runner};

    const PD_URL: &str = "http://pd-pd.default.svc:2379";

    /// The state after `config_map` and `pvcs` of a pass over `tikv`.
    fn state(env: &TestEnv, tikv: TiKV, pd_url: Option<&str>, live: Option<Pod>) -> TikvState {
        let mut cluster = sample_cluster("basic");
        cluster.status = Some(ClusterStatus { pd: pd_url.map(str::to_string), ..ClusterStatus::default() });
        let mut state = TikvState::new(env.ctx.clone(), "default", &tikv.name_any());
        state.pass = state.pass.with_object(tikv).with_cluster(cluster);
        state.parts.pod_loaded = true;
        state.parts.pod = live;
        state.parts.config_hash = Some("cfg-1".into());
        state.parts.pvcs_ready = true;
        state
    }

    #[tokio::test]
    async fn no_pd_url_waits_and_creates_nothing() {
        let env = TestEnv::start().await;
        let mut s = state(&env, sample_tikv("tikv-a", "tikv"), None, None);
        let report = env.run(&Runner::new("t", [pod()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::POD_NOT_CREATED);
        assert_eq!(env.write_log(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_pod_is_created_with_flags_labels_and_owner_then_left_alone() {
        let env = TestEnv::start().await;
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        let runner = Runner::new("t", [pod()]);
        let mut s = state(&env, tikv.clone(), Some(PD_URL), None);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("pod").unwrap().message(), "created pod tikv-tikv-a");
        assert_eq!(env.write_log(), ["create pods/"]);

        let live: Pod = env.get("tikv-tikv-a").await;
        let host = "tikv-tikv-a.tikv-tikv-peer.default.svc";
        assert_eq!(
            live.spec.as_ref().unwrap().containers[0].command.as_deref().unwrap(),
            [
                "/tikv-server".to_string(),
                format!("--pd={PD_URL}"),
                "--addr=0.0.0.0:20160".into(),
                format!("--advertise-addr={host}:20160"),
                "--status-addr=0.0.0.0:20180".into(),
                format!("--advertise-status-addr={host}:20180"),
                "--data-dir=/var/lib/tikv".into(),
                "--config=/etc/tikv/config.toml".into(),
                "--labels=host=$(NODE_NAME),zone=zone-a".into(),
            ]
        );
        let labels = live.labels();
        for (key, value) in [
            (names::LABEL_MANAGED_BY, names::MANAGED_BY_OPERATOR),
            (names::LABEL_CLUSTER, "basic"),
            (names::LABEL_COMPONENT, names::COMPONENT_TIKV),
            (names::LABEL_GROUP, "tikv"),
            (names::LABEL_INSTANCE, "tikv-a"),
            (names::LABEL_INSTANCE_REVISION_HASH, "rev-1"),
        ] {
            assert_eq!(labels.get(key).map(String::as_str), Some(value), "label {key}");
        }
        let owner = &live.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("TiKV", "tikv-a", Some(true)));
        assert_eq!(owner.uid, tikv.uid().unwrap());
        assert!(live.annotations().contains_key(names::ANNOTATION_RESTART_INTENT));

        // Next pass, nothing changed: no write.
        let mut s = state(&env, tikv, Some(PD_URL), Some(live));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.entry("pod").unwrap().message(), "up to date");
        assert!(!s.parts.drift.needs_restart());
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);
        assert_eq!(env.write_log(), ["create pods/"], "no write when unchanged");
    }

    #[tokio::test]
    async fn an_outdated_pod_is_reported_and_left_to_the_restart_task() {
        let env = TestEnv::start().await;
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        let runner = Runner::new("t", [pod()]);
        env.run(&runner, "k", &mut state(&env, tikv.clone(), Some(PD_URL), None)).await;
        let live: Pod = env.get("tikv-tikv-a").await;

        let mut upgraded = tikv;
        upgraded.spec.template.version = "v8.5.1".into();
        let mut s = state(&env, upgraded, Some(PD_URL), Some(live.clone()));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("pod").unwrap().message(), "pod needs a restart for: version");
        assert!(s.parts.drift.needs_restart());
        assert_eq!(s.pass.unsynced.len(), 1);
        assert_eq!(s.pass.unsynced[0].reason, reasons::POD_NOT_UP_TO_DATE);
        assert_eq!(env.write_log(), ["create pods/"], "the outdated Pod is neither deleted nor patched");
        let still: Pod = env.get("tikv-tikv-a").await;
        assert_eq!(still.uid(), live.uid());
        assert_eq!(still.spec.unwrap().containers[0].image.as_deref(), Some("pingcap/tikv:v8.5.0"));
    }
}
