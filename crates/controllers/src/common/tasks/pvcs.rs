//! `pvcs`: creates the instance's missing PVCs and grows the ones the spec now asks to
//! be larger, online: the PVC's request is raised (one merge patch carrying its
//! resourceVersion) and the storage driver grows the volume, then the kubelet its file
//! system, while the Pod runs — no restart. While a PVC grows, Synced is False
//! (`VolumeResizing`, with the stage it reached). A smaller size (`VolumeMismatch`) or
//! another storage class (`StorageClassChangeNotSupported`) is reported and not done
//! (see [`crate::common::volume_check`]), as is the API server's refusal to grow one
//! (`VolumeResizeRefused`: a class without `allowVolumeExpansion`, with its words).
//! A VolumeAttributesClass the spec names is set on the PVC (in the same patch), and
//! the storage driver modifies the volume online; until the PVC reports it applied,
//! Synced is False (`VolumeModifying`: the class is missing, or the driver works), or
//! `VolumeModifyInfeasible` with the driver's words (and a Warning Event when that is
//! new) when it refused the class.
//! Outcomes: Complete; Retry after a write met a newer PVC (409); InvalidSpec + Wait on
//! a bad PVC overlay; Fail.

use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::json;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::{patch_params, post_params};
use crate::common::instance::InstanceState;
use crate::common::volume_check::{
    VolumeChange, attributes_class_change, modify_progress, resize_progress, volume_change,
};
use crate::common::{Instance, render};
use crate::error::{is_already_exists, is_conflict, is_forbidden};

pub fn pvcs<S: InstanceState>() -> Node<S> {
    task("pvcs", |s: &mut S| Box::pin(run(s)))
}

async fn run<S: InstanceState>(s: &mut S) -> Outcome {
    let pass = s.pass();
    let Some(instance) = &pass.object else {
        return Outcome::complete("no instance");
    };
    let desired = match render::pvcs(instance, &instance.pod_name()) {
        Ok(desired) => desired,
        Err(error) => {
            s.pass_mut().not_synced(reasons::INVALID_SPEC, error.to_string());
            return Outcome::wait(format!("{error}; waiting for the spec to be fixed"));
        }
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace);
    let live = crate::common::instance::instance_pvcs(s);
    let (mut created, mut grown, mut modified) = (Vec::new(), Vec::new(), Vec::new());
    let mut still_growing = false;
    for pvc in desired {
        let name = pvc.name_any();
        let Some(existing) = live.iter().find(|l| l.name_any() == name) else {
            match api.create(&post_params(), &pvc).await {
                Ok(_) => created.push(name),
                Err(error) if is_already_exists(&error) => {}
                Err(error) => return Outcome::fail(error),
            }
            continue;
        };
        let grow = match volume_change(&pvc, existing) {
            VolumeChange::None => None,
            VolumeChange::Refused { reason, message } => {
                s.pass_mut().not_synced(reason, message);
                None
            }
            VolumeChange::Grow { from, to } => Some((from, to)),
        };
        let modify = attributes_class_change(&pvc, existing);
        if grow.is_some() || modify.is_some() {
            // One patch for both, so the second never meets the first's resourceVersion.
            let mut spec = json!({});
            if let Some((_, to)) = &grow {
                spec["resources"] = json!({"requests": {"storage": to}});
            }
            if let Some((_, to)) = &modify {
                spec["volumeAttributesClassName"] = json!(to);
            }
            let patch = json!({"metadata": {"resourceVersion": existing.resource_version()}, "spec": spec});
            match api.patch(&name, &patch_params(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(error) if is_conflict(&error) => {
                    return Outcome::retry(Duration::from_secs(1), format!("PVC {name} changed meanwhile; retrying"));
                }
                Err(error) if is_forbidden(&error) && grow.is_some() => {
                    let (from, to) = grow.unwrap_or_default();
                    let why = match &error {
                        kube::Error::Api(status) => status.message.clone(),
                        other => other.to_string(),
                    };
                    let message = format!(
                        "PVC {name} cannot grow from {from} to {to}: {why}; set the storage back to {from}, or use \
                         a storage class that allows expansion for new instances"
                    );
                    s.pass_mut().not_synced(reasons::VOLUME_RESIZE_REFUSED, message);
                    continue;
                }
                Err(error) => return Outcome::fail(error),
            }
            if let Some((from, to)) = grow {
                s.pass_mut().not_synced(reasons::VOLUME_RESIZING, format!("PVC {name} grows from {from} to {to}"));
                grown.push(format!("{name} from {from} to {to}"));
            }
            if let Some((from, to)) = modify {
                let from = from.unwrap_or_else(|| "(none)".into());
                let message = format!("PVC {name} moves from VolumeAttributesClass {from} to {to}");
                s.pass_mut().not_synced(reasons::VOLUME_MODIFYING, message);
                modified.push(format!("{name} to VolumeAttributesClass {to}"));
            }
            continue;
        }
        if let Some(progress) = resize_progress(existing) {
            s.pass_mut().not_synced(reasons::VOLUME_RESIZING, progress);
            still_growing = true;
        }
        if let Some((reason, message)) = modify_progress(existing) {
            if reason == reasons::VOLUME_MODIFY_INFEASIBLE
                && s.pass().reason_as_read(types::SYNCED) != Some(reasons::VOLUME_MODIFY_INFEASIBLE)
            {
                s.pass().warning("VolumeModifyInfeasible", "Modify", message.clone()).await;
            }
            s.pass_mut().not_synced(reason, message);
        }
    }
    s.parts_mut().pvcs_ready = true;
    let mut done = Vec::new();
    if !created.is_empty() {
        let message = format!("created {}", created.join(", "));
        s.pass().event("CreatedPVC", "Create", message.clone()).await;
        done.push(message);
    }
    if !grown.is_empty() {
        let message = format!("growing {} online", grown.join(", "));
        s.pass().event("ResizingVolume", "Resize", message.clone()).await;
        done.push(message);
    }
    if !modified.is_empty() {
        let message = format!("moving {} online", modified.join(", "));
        s.pass().event("ModifyingVolume", "Modify", message.clone()).await;
        done.push(message);
    }
    // The end of a resize the last status announced: once, as the next status says so.
    if grown.is_empty() && !still_growing && s.pass().reason_as_read(types::SYNCED) == Some(reasons::VOLUME_RESIZING) {
        let sizes: Vec<String> = live
            .iter()
            .filter_map(|p| {
                let capacity = p.status.as_ref()?.capacity.as_ref()?.get("storage")?;
                Some(format!("{} {}", p.name_any(), capacity.0))
            })
            .collect();
        let message = format!("volumes grew online: {}", sizes.join(", "));
        s.pass().event("VolumeResized", "Resize", message.clone()).await;
        done.push(message);
    }
    Outcome::complete(if done.is_empty() { "all present".to_string() } else { done.join("; ") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_tikv};
    use crate::tikv::state::TikvState;
    use tikv_operator_api::TiKV;
    use tikv_operator_api::condition::{find_condition, types};
    use tikv_operator_task::{OutcomeKind, Runner};

    #[tokio::test]
    async fn an_instance_whose_pvc_kept_its_old_class_is_not_synced() {
        let env = TestEnv::start().await;
        let mut before = sample_tikv("tikv-a", "tikv");
        before.spec.template.volumes[0].storage_class_name = Some("standard".into());
        for pvc in render::pvcs(&before, "tikv-tikv-a").unwrap() {
            env.create(pvc).await;
        }
        // The class changed on the spec after the PVC was made (or the PVC outside).
        let mut tikv = before.clone();
        tikv.spec.template.volumes[0].storage_class_name = Some("fast".into());
        let state = |tikv| {
            let mut s = TikvState::new(env.ctx.clone(), "default", "tikv-a");
            s.pass = s.pass.with_object(tikv).with_cluster(sample_cluster("basic"));
            s
        };
        let runner = Runner::new("t", [pvcs::<TikvState>(), crate::tikv::tasks::conditions()]);

        let mut s = state(tikv);
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(env.write_log(), Vec::<String>::new(), "the PVC is left as it is");
        let synced = find_condition(&s.pass.status.common.conditions, types::SYNCED).unwrap();
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", reasons::STORAGE_CLASS_CHANGE_NOT_SUPPORTED)
        );
        assert!(synced.message.contains("storage class standard, the spec asks for fast"), "{}", synced.message);

        let mut s = state(before);
        env.run(&runner, "k", &mut s).await;
        let synced = find_condition(&s.pass.status.common.conditions, types::SYNCED).unwrap();
        assert_eq!(synced.status, "True", "{synced:?}");
    }

    #[tokio::test]
    async fn a_larger_volume_is_one_patch_of_the_request_then_its_growth_is_reported() {
        let env = TestEnv::start().await;
        let class: k8s_openapi::api::storage::v1::StorageClass = serde_json::from_value(json!({
            "metadata": {"name": "expandable"}, "provisioner": "example.com/csi", "allowVolumeExpansion": true,
        }))
        .unwrap();
        let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(env.client.clone());
        classes.create(&Default::default(), &class).await.unwrap();
        let mut before = sample_tikv("tikv-a", "tikv");
        before.spec.template.volumes[0].storage_class_name = Some("expandable".into());
        let pvcs_api: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), "default");
        for mut pvc in render::pvcs(&before, "tikv-tikv-a").unwrap() {
            // Bound, as the PV controller leaves it.
            pvc.spec.as_mut().unwrap().volume_name = Some("pv-1".into());
            let mut pvc = env.create(pvc).await;
            pvc.status = Some(serde_json::from_value(json!({"phase": "Bound"})).unwrap());
            pvcs_api.replace_status(&pvc.name_any(), &Default::default(), &pvc).await.unwrap();
        }
        env.synced().await;
        env.sim.requests().reset();
        let mut tikv = before.clone();
        tikv.spec.template.volumes[0].storage = "200Gi".into();
        let runner = Runner::new("t", [pvcs::<TikvState>()]);
        let mut s = TikvState::new(env.ctx.clone(), "default", "tikv-a");
        s.pass = s.pass.with_object(tikv.clone()).with_cluster(sample_cluster("basic"));
        let report = env.run(&runner, "k", &mut s).await;
        let entry = report.entry("pvcs").unwrap();
        assert_eq!(entry.kind(), Some(OutcomeKind::Complete), "{report}");
        let old = &before.spec.template.volumes[0].storage;
        assert_eq!(entry.message(), format!("growing data-tikv-tikv-a from {old} to 200Gi online"));
        assert_eq!(env.write_log(), ["patch persistentvolumeclaims/data-tikv-tikv-a"]);
        assert_eq!(s.pass.unsynced[0].reason, reasons::VOLUME_RESIZING);
        let live: PersistentVolumeClaim = env.get("data-tikv-tikv-a").await;
        let request = &live.spec.unwrap().resources.unwrap().requests.unwrap()["storage"];
        assert_eq!(request.0, "200Gi");

        // The next pass: the request is there; while the capacity lags, it says so and
        // writes nothing.
        let api: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), "default");
        let mut live: PersistentVolumeClaim = env.get("data-tikv-tikv-a").await;
        live.status = Some(
            serde_json::from_value(json!({"phase": "Bound", "capacity": {"storage": old},
                "conditions": [{"type": "FileSystemResizePending", "status": "True"}]}))
            .unwrap(),
        );
        api.replace_status("data-tikv-tikv-a", &Default::default(), &live).await.unwrap();
        env.synced().await;
        env.sim.requests().reset();
        let mut s = TikvState::new(env.ctx.clone(), "default", "tikv-a");
        s.pass = s.pass.with_object(tikv.clone()).with_cluster(sample_cluster("basic"));
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(env.writes(), 0, "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::VOLUME_RESIZING);
        assert_eq!(
            s.pass.unsynced[0].message,
            format!(
                "PVC data-tikv-tikv-a grows from {old} to 200Gi: the volume grew; the file system grows online next"
            )
        );

        // The file system grew: the resize the status announced ends with one Event.
        let mut live: PersistentVolumeClaim = env.get("data-tikv-tikv-a").await;
        live.status =
            Some(serde_json::from_value(json!({"phase": "Bound", "capacity": {"storage": "200Gi"}})).unwrap());
        api.replace_status("data-tikv-tikv-a", &Default::default(), &live).await.unwrap();
        let mut announced = tikv.clone();
        let resizing = tikv_operator_api::condition::DesiredCondition::new(
            types::SYNCED,
            false,
            reasons::VOLUME_RESIZING,
            "PVC data-tikv-tikv-a grows",
        );
        let mut status = tikv_operator_api::TiKVStatus::default();
        tikv_operator_api::condition::set_condition(&mut status.common.conditions, resizing, env.ctx.now());
        announced.status = Some(status);
        env.synced().await;
        let mut s = TikvState::new(env.ctx.clone(), "default", "tikv-a");
        s.pass = s.pass.with_object(announced).with_cluster(sample_cluster("basic"));
        env.run(&runner, "k", &mut s).await;
        assert!(s.pass.unsynced.is_empty(), "{:?}", s.pass.unsynced);
        let events = env.events().await;
        let resized: Vec<_> = events.iter().filter(|e| e.1 == "VolumeResized").collect();
        assert_eq!(resized.len(), 1, "{events:?}");
        assert_eq!(resized[0].2, "volumes grew online: data-tikv-tikv-a 200Gi");
        // Once the status no longer says VolumeResizing, nothing more is announced.
        env.sim.requests().reset();
        let mut s = TikvState::new(env.ctx.clone(), "default", "tikv-a");
        s.pass = s.pass.with_object(tikv).with_cluster(sample_cluster("basic"));
        env.run(&runner, "k", &mut s).await;
        assert_eq!(env.event_writes().await, 0);
    }

    #[tokio::test]
    async fn a_volume_its_class_cannot_grow_is_reported_in_the_api_servers_words() {
        let env = TestEnv::start().await;
        let before = sample_tikv("tikv-a", "tikv");
        for pvc in render::pvcs(&before, "tikv-tikv-a").unwrap() {
            env.create(pvc).await;
        }
        env.synced().await;
        let mut tikv = before.clone();
        tikv.spec.template.volumes[0].storage = "200Gi".into();
        let mut s = TikvState::new(env.ctx.clone(), "default", "tikv-a");
        s.pass = s.pass.with_object(tikv).with_cluster(sample_cluster("basic"));
        let report = env.run(&Runner::new("t", [pvcs::<TikvState>()]), "k", &mut s).await;
        assert_eq!(report.entry("pvcs").unwrap().kind(), Some(OutcomeKind::Complete), "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::VOLUME_RESIZE_REFUSED);
        assert!(
            s.pass.unsynced[0].message.contains("only dynamically provisioned pvc can be resized"),
            "{}",
            s.pass.unsynced[0].message
        );
    }

    #[tokio::test]
    async fn an_attributes_class_change_is_passed_to_the_pvc_then_followed_until_applied_or_refused() {
        let env = TestEnv::start().await;
        let class: k8s_openapi::api::storage::v1::StorageClass = serde_json::from_value(json!({
            "metadata": {"name": "expandable"}, "provisioner": "example.com/csi", "allowVolumeExpansion": true,
        }))
        .unwrap();
        let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(env.client.clone());
        classes.create(&Default::default(), &class).await.unwrap();
        let mut before = sample_tikv("tikv-a", "tikv");
        before.spec.template.volumes[0].storage_class_name = Some("expandable".into());
        before.spec.template.volumes[0].volume_attributes_class_name = Some("silver".into());
        let api: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), "default");
        let set_status = |status: serde_json::Value| {
            let api = api.clone();
            async move {
                let mut live = api.get("data-tikv-tikv-a").await.unwrap();
                let mut status = status;
                status["phase"] = json!("Bound");
                live.status = Some(serde_json::from_value(status).unwrap());
                api.replace_status("data-tikv-tikv-a", &Default::default(), &live).await.unwrap();
            }
        };
        for mut pvc in render::pvcs(&before, "tikv-tikv-a").unwrap() {
            pvc.spec.as_mut().unwrap().volume_name = Some("pv-1".into());
            env.create(pvc).await;
        }
        set_status(json!({"currentVolumeAttributesClassName": "silver"})).await;
        let mut tikv = before.clone();
        tikv.spec.template.volumes[0].volume_attributes_class_name = Some("gold".into());
        tikv.spec.template.volumes[0].storage = "200Gi".into();
        let runner = Runner::new("t", [pvcs::<TikvState>()]);
        let pass = |tikv: TiKV| {
            let env = &env;
            let runner = &runner;
            async move {
                env.synced().await;
                env.sim.requests().reset();
                let mut s = TikvState::new(env.ctx.clone(), "default", "tikv-a");
                s.pass = s.pass.with_object(tikv).with_cluster(sample_cluster("basic"));
                let report = env.run(runner, "k", &mut s).await;
                (s, report)
            }
        };

        // Grown and moved in one patch; the Pod is not touched.
        let (s, report) = pass(tikv.clone()).await;
        assert_eq!(env.write_log(), ["patch persistentvolumeclaims/data-tikv-tikv-a"], "{report}");
        let live: PersistentVolumeClaim = env.get("data-tikv-tikv-a").await;
        let spec = live.spec.unwrap();
        assert_eq!(spec.volume_attributes_class_name.as_deref(), Some("gold"));
        assert_eq!(spec.resources.unwrap().requests.unwrap()["storage"].0, "200Gi");
        let found: Vec<_> = s.pass.unsynced.iter().map(|f| (f.reason, f.message.as_str())).collect();
        assert_eq!(
            found[1],
            (reasons::VOLUME_MODIFYING, "PVC data-tikv-tikv-a moves from VolumeAttributesClass silver to gold")
        );
        assert!(
            report
                .entry("pvcs")
                .unwrap()
                .message()
                .ends_with("moving data-tikv-tikv-a to VolumeAttributesClass gold online")
        );
        // While the driver works, and once it refused: reported, nothing written.
        set_status(json!({"currentVolumeAttributesClassName": "silver",
            "modifyVolumeStatus": {"status": "InProgress", "targetVolumeAttributesClassName": "gold"}}))
        .await;
        let grown = tikv;
        let (s, report) = pass(grown.clone()).await;
        assert_eq!(env.writes(), 0, "{report}");
        assert_eq!(
            (s.pass.unsynced[0].reason, s.pass.unsynced[0].message.as_str()),
            (
                reasons::VOLUME_MODIFYING,
                "PVC data-tikv-tikv-a moves from VolumeAttributesClass silver to gold: the storage driver is modifying \
                 the volume"
            )
        );
        set_status(json!({"currentVolumeAttributesClassName": "silver",
            "modifyVolumeStatus": {"status": "Infeasible", "targetVolumeAttributesClassName": "gold"},
            "conditions": [{"type": "ModifyVolumeError", "status": "True",
                "message": "ModifyVolume failed with error: rpc error: code = InvalidArgument desc = bad iops. Waiting for retry."}]}))
        .await;
        let runner_with_conditions = Runner::new("t", [pvcs::<TikvState>(), crate::tikv::tasks::conditions()]);
        env.synced().await;
        env.sim.requests().reset();
        let mut s = TikvState::new(env.ctx.clone(), "default", "tikv-a");
        s.pass = s.pass.with_object(grown.clone()).with_cluster(sample_cluster("basic"));
        env.run(&runner_with_conditions, "k", &mut s).await;
        assert_eq!(env.writes(), 0);
        let synced = find_condition(&s.pass.status.common.conditions, types::SYNCED).unwrap();
        assert_eq!(synced.reason, reasons::VOLUME_MODIFY_INFEASIBLE);
        assert!(synced.message.contains("desc = bad iops"), "{}", synced.message);
        let warnings =
            env.events().await.into_iter().filter(|(t, r, _)| t == "Warning" && r == "VolumeModifyInfeasible");
        assert_eq!(warnings.count(), 1);

        // Applied: in sync.
        set_status(json!({"currentVolumeAttributesClassName": "gold"})).await;
        let (s, report) = pass(grown).await;
        assert_eq!(env.writes(), 0, "{report}");
        assert_eq!(s.pass.unsynced, vec![], "{report}");
    }
}
