//! `pvcs`: creates the instance's missing PVCs. Writes: PVCs (create only; resizing
//! comes with volume resize). A live PVC whose storage class or size differs from the
//! spec is reported (Synced=False VolumeMismatch) and left as it is. Complete;
//! InvalidSpec + Wait on a bad PVC overlay; Fail.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{Api, ResourceExt};
use tikv_operator_api::condition::reasons;
use tikv_operator_task::{Node, Outcome, task};

use crate::apply::post_params;
use crate::common::instance::InstanceState;
use crate::common::volume_check::pvc_mismatch;
use crate::common::{Instance, render};
use crate::error::is_already_exists;

pub fn pvcs<S: InstanceState>() -> Node<S> {
    task("pvcs", |s: &mut S| {
        Box::pin(async move {
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
            let mut created = Vec::new();
            for pvc in desired {
                if let Some(existing) = live.iter().find(|l| l.name_any() == pvc.name_any()) {
                    if let Some(mismatch) = pvc_mismatch(&pvc, existing) {
                        s.pass_mut().not_synced(reasons::VOLUME_MISMATCH, mismatch);
                    }
                    continue;
                }
                match api.create(&post_params(), &pvc).await {
                    Ok(_) => created.push(pvc.name_any()),
                    Err(error) if is_already_exists(&error) => {}
                    Err(error) => return Outcome::fail(error),
                }
            }
            s.parts_mut().pvcs_ready = true;
            if created.is_empty() {
                Outcome::complete("all present")
            } else {
                s.pass().event("CreatedPVC", "Create", format!("created {}", created.join(", "))).await;
                Outcome::complete(format!("created {}", created.join(", ")))
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_cluster, sample_tikv};
    use crate::tikv::state::TikvState;
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
        assert_eq!((synced.status.as_str(), synced.reason.as_str()), ("False", reasons::VOLUME_MISMATCH));
        assert!(synced.message.contains("storage class standard, the spec asks for fast"), "{}", synced.message);

        let mut s = state(before);
        env.run(&runner, "k", &mut s).await;
        let synced = find_condition(&s.pass.status.common.conditions, types::SYNCED).unwrap();
        assert_eq!(synced.status, "True", "{synced:?}");
    }
}
