//! Group revisions: a stable hash of what instances are made from, kept as
//! ControllerRevisions `<group>-<component>-<hash>` (history bounded by the Cluster's
//! `revisionHistoryLimit`), stamped on instances as a label.

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, ObjectMeta};
use kube::{Api, ResourceExt};

use crate::apply::{post_params, short_hash};
use crate::common::Group;
use crate::common::render::{controller_ref, group_selector};
use crate::context::Context;
use crate::error::{is_already_exists, is_not_found};

/// The revision name of a group's current template.
pub fn revision_name<G: Group>(group: &G) -> String {
    format!("{}-{}-{}", group.name_any(), G::COMPONENT, short_hash(&group.revision_data(), 10))
}

/// What [`ensure_revision`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RevisionSync {
    pub created: bool,
    pub deleted: Vec<String>,
}

/// Makes sure the ControllerRevision of the group's current template exists and at most
/// `history_limit` others remain (never deleting one named in `keep`). Reads the
/// revisions from the watch cache (they carry the managed-by label); a revision created
/// but not yet cached is created again and answered 409, which is fine.
pub async fn ensure_revision<G: Group>(
    ctx: &Context,
    group: &G,
    history_limit: i32,
    keep: &[&str],
) -> Result<RevisionSync, kube::Error> {
    let namespace = group.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &namespace);
    let labels = group_selector(&group.cluster_name(), G::COMPONENT, &group.name_any());
    let mut existing: Vec<ControllerRevision> =
        ctx.caches.list(&namespace, &labels).iter().map(|r| ControllerRevision::clone(r)).collect();
    existing.sort_by_key(|r| r.revision);
    let name = revision_name(group);
    let mut sync = RevisionSync::default();
    if !existing.iter().any(|r| r.name_any() == name) {
        let revision = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                labels: Some(labels),
                owner_references: Some(controller_ref(group)),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(group.revision_data())),
            revision: existing.last().map_or(1, |r| r.revision + 1),
        };
        match api.create(&post_params(), &revision).await {
            Ok(created) => {
                existing.push(created);
                sync.created = true;
            }
            Err(error) if is_already_exists(&error) => {}
            Err(error) => return Err(error),
        }
    }
    let limit = usize::try_from(history_limit.max(0)).unwrap_or_default();
    let removable: Vec<&ControllerRevision> =
        existing.iter().filter(|r| r.name_any() != name && !keep.contains(&r.name_any().as_str())).collect();
    let excess = removable.len().saturating_sub(limit);
    for old in removable.into_iter().take(excess) {
        match api.delete(&old.name_any(), &DeleteParams::default()).await {
            Ok(_) => sync.deleted.push(old.name_any()),
            // Deleted by an earlier pass whose deletion the cache has not seen yet.
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(sync)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_tikv_group};

    #[test]
    fn the_revision_follows_the_template_only() {
        let a = sample_tikv_group("kv", 3);
        let mut b = sample_tikv_group("kv", 5);
        assert_eq!(revision_name(&a), revision_name(&b), "replicas are not part of the template");
        b.spec.template.spec.version = "v8.5.1".into();
        assert_ne!(revision_name(&a), revision_name(&b));
        assert!(revision_name(&a).starts_with("kv-tikv-"));
    }

    #[tokio::test]
    async fn revisions_are_created_once_and_history_is_bounded() {
        let env = TestEnv::start().await;
        let mut group = env.create(sample_tikv_group("kv", 3)).await;
        let first = ensure_revision(&env.ctx, &group, 1, &[]).await.unwrap();
        assert!(first.created);
        env.synced().await;
        env.sim.requests().reset();
        assert!(!ensure_revision(&env.ctx, &group, 1, &[]).await.unwrap().created);
        assert_eq!(env.requests(), Vec::<String>::new(), "an existing revision makes no request");

        for version in ["v8.5.1", "v8.5.2"] {
            group.spec.template.spec.version = version.into();
            ensure_revision(&env.ctx, &group, 1, &[]).await.unwrap();
            env.synced().await;
        }
        let left: Vec<ControllerRevision> = env.list().await;
        assert_eq!(left.len(), 2, "current plus one of history");
        assert_eq!(left.iter().map(|r| r.revision).max(), Some(3));
    }
}
