//! What every controller shares: the pass state every kind has ([`Pass`]), the traits
//! over the five kinds ([`traits`]), the guards ([`guards`]), the generic tasks, one per
//! file ([`tasks`]), the non-task halves of the instance and group controllers
//! ([`instance`], [`group`]), the PD view a pass read ([`pd_view`]) and the pure
//! rendering helpers both components use.

pub mod group;
pub mod guards;
pub mod hot_reload;
pub mod instance;
pub mod pd_view;
pub mod pod_status;
pub mod render;
pub mod replicas;
pub mod restart;
pub mod tasks;
pub mod traits;
pub mod volume_check;

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;

use tikv_operator_api::Cluster;
use tikv_operator_api::condition::{self, DesiredCondition, Status, reasons, types};

use crate::context::Context;
use crate::pd_registry::{ClusterKey, PdHandle};
pub use traits::{Group, Instance, Object};

/// Why the children of an object are not (yet) in their desired state; the Synced
/// condition reports the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub reason: &'static str,
    pub message: String,
}

/// What every pass of every controller has: the object as read, the status being
/// built, its Cluster, and what tasks found out of sync.
pub struct Pass<K: Object> {
    pub ctx: Arc<Context>,
    pub namespace: String,
    pub name: String,
    /// `None` until loaded, and when the object is gone.
    pub object: Option<K>,
    /// The status this pass will write: starts as the status read, written in `finally`
    /// only if it differs.
    pub status: K::Status,
    pub cluster: Option<Cluster>,
    pub unsynced: Vec<Finding>,
}

impl<K: Object> Pass<K> {
    pub fn new(ctx: Arc<Context>, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            ctx,
            namespace: namespace.into(),
            name: name.into(),
            object: None,
            status: K::Status::default(),
            cluster: None,
            unsynced: Vec::new(),
        }
    }

    /// Seeds the pass with an object as if it had been loaded (tests, and the Cluster
    /// controller, whose object is its own cluster).
    pub fn with_object(mut self, object: K) -> Self {
        self.status = object.status().cloned().unwrap_or_default();
        self.object = Some(object);
        self
    }

    pub fn with_cluster(mut self, cluster: Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    pub fn generation(&self) -> Option<i64> {
        self.object.as_ref().and_then(|o| o.meta().generation)
    }

    pub fn cluster_key(&self) -> ClusterKey {
        let name = self.object.as_ref().map(Object::cluster_name).unwrap_or_default();
        ClusterKey::new(self.namespace.clone(), name)
    }

    /// The cluster's PD, once the Cluster controller registered it.
    pub fn pd(&self) -> Option<PdHandle> {
        self.ctx.pd.get(&self.cluster_key())
    }

    /// Asks the cluster's PD cache for a complete, fresh view now (an idle cluster's
    /// polls are partial, and a stale view is not polled for by itself).
    pub fn want_fresh_view(&self) {
        if let Some(pd) = self.pd() {
            pd.cache.request_refresh();
        }
    }

    /// A step that needs a fresh PD view did not get one: a full poll is asked for,
    /// and the pass looks again shortly (the poll may bring no event).
    pub fn retry_for_fresh_view(&self, message: impl Into<String>) -> tikv_operator_task::Outcome {
        self.want_fresh_view();
        tikv_operator_task::Outcome::retry(self.ctx.timing().fresh_view_recheck, message)
    }

    pub fn paused(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.spec.paused)
    }

    /// `Cluster.spec.suspendAction.suspendCompute`: every Pod of the cluster is to be
    /// deleted (TiKV first, then PD), everything else kept, and nothing else changes
    /// until the Cluster is resumed.
    /// A pending change of `tlsCluster` counts as a suspension too: every Pod goes before
    /// any starts with the new setting, even if the Cluster was resumed early.
    pub fn suspended(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| {
            c.spec.suspend_action.as_ref().is_some_and(|a| a.suspend_compute) || c.tls_switch_pending()
        })
    }

    /// The TLS setting in force (see [`Cluster::tls_in_force`]): what ConfigMaps, Pods and
    /// PD URLs are rendered with. A changed `tlsCluster` reaches them only once every Pod
    /// of the cluster is gone.
    pub fn tls_enabled(&self) -> bool {
        self.cluster.as_ref().is_some_and(Cluster::tls_in_force)
    }

    /// Sets a condition of the status being built, observed at the object's generation.
    pub fn set_condition(&mut self, type_: &str, status: impl Into<Status>, reason: &str, message: impl Into<String>) {
        let desired = DesiredCondition::new(type_, status, reason, message).observed(self.generation());
        let now = self.ctx.now();
        condition::set_condition(K::conditions_mut(&mut self.status), desired, now);
    }

    /// Sets (or with `None` removes) an annotation of the object: one merge patch
    /// carrying the resourceVersion read, so a concurrent change fails it (Retry); the
    /// pass then holds the patched object.
    pub async fn annotate(&mut self, key: &str, value: Option<String>) -> Result<(), tikv_operator_task::Outcome> {
        use tikv_operator_task::Outcome;
        let Some(object) = &self.object else {
            return Err(Outcome::complete("no object"));
        };
        let patch = serde_json::json!({"metadata": {
            "annotations": {key: value},
            "resourceVersion": object.meta().resource_version,
        }});
        let api: kube::Api<K> = kube::Api::namespaced(self.ctx.client.clone(), &self.namespace);
        match api.patch(&self.name, &crate::apply::patch_params(), &kube::api::Patch::Merge(&patch)).await {
            Ok(patched) => {
                self.object = Some(patched);
                Ok(())
            }
            Err(error) if crate::error::is_conflict(&error) => {
                Err(Outcome::retry(std::time::Duration::from_secs(1), "the object changed since it was read; retrying"))
            }
            Err(error) => Err(Outcome::fail(error)),
        }
    }

    /// Removes a condition from the status being built.
    pub fn remove_condition(&mut self, type_: &str) {
        condition::remove_condition(K::conditions_mut(&mut self.status), type_);
    }

    pub fn not_synced(&mut self, reason: &'static str, message: impl Into<String>) {
        self.unsynced.push(Finding { reason, message: message.into() });
    }

    /// Synced from what the pass found: paused, the first finding, or in sync.
    pub fn set_synced(&mut self, synced_message: &str) {
        if self.paused() {
            self.set_condition(types::SYNCED, false, reasons::PAUSED, "the cluster is paused: changes are not applied");
        } else if let Some(first) = self.unsynced.first().cloned() {
            self.set_condition(types::SYNCED, false, first.reason, first.message);
        } else {
            self.set_condition(types::SYNCED, true, reasons::SYNCED, synced_message);
        }
    }

    pub fn object_ref(&self) -> Option<ObjectReference> {
        self.object.as_ref().map(|o| o.object_ref(&()))
    }

    /// Records an Event about the object (only call it after a write).
    pub async fn event(&self, reason: &str, action: &str, note: String) {
        if let Some(reference) = self.object_ref() {
            self.ctx.event(&reference, reason, action, note).await;
        }
    }

    /// Records a Warning Event about the object (only for a problem that is new).
    pub async fn warning(&self, reason: &str, action: &str, note: String) {
        if let Some(reference) = self.object_ref() {
            self.ctx.warning(&reference, reason, action, note).await;
        }
    }

    /// The reason of a condition in the status as read (what was announced before),
    /// whatever its status and message.
    pub fn reason_as_read(&self, type_: &str) -> Option<&str> {
        let read = self.object.as_ref().and_then(Object::status)?;
        condition::find_condition(K::conditions(read), type_).map(|c| c.reason.as_str())
    }

    /// Whether the status as read already shows this condition (same status, reason and
    /// message): what was reported before need not be announced again.
    pub fn reported(&self, type_: &str, status: bool, reason: &str, message: &str) -> bool {
        let Some(read) = self.object.as_ref().and_then(Object::status) else {
            return false;
        };
        condition::find_condition(K::conditions(read), type_)
            .is_some_and(|c| c.status == Status::from(status).as_str() && c.reason == reason && c.message == message)
    }

    pub fn deleting(&self) -> bool {
        self.object.as_ref().is_some_and(|o| o.meta().deletion_timestamp.is_some())
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn uid(&self) -> Option<String> {
        self.object.as_ref().and_then(|o| o.uid())
    }
}

/// A controller's state: it holds a [`Pass`] for its kind.
pub trait PassState: Send + 'static {
    type Object: Object;
    fn pass(&self) -> &Pass<Self::Object>;
    fn pass_mut(&mut self) -> &mut Pass<Self::Object>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{offline_context, sample_cluster};
    use tikv_operator_api::PD;
    use tikv_operator_api::cluster::{ClusterStatus, SuspendAction, TlsCluster};

    fn pass(wanted: bool, recorded: &str, suspended: bool) -> Pass<PD> {
        let mut cluster = sample_cluster("basic");
        cluster.spec.tls_cluster = Some(TlsCluster { enabled: wanted });
        cluster.spec.suspend_action = Some(SuspendAction { suspend_compute: suspended });
        cluster.status = Some(ClusterStatus { pd: Some(recorded.to_owned()), ..ClusterStatus::default() });
        Pass::new(offline_context(), "default", "pd-abc").with_cluster(cluster)
    }

    #[tokio::test]
    async fn a_pending_tls_switch_renders_the_old_setting_and_suspends() {
        // turned on while suspended, not switched yet: pods keep plain, and go
        let p = pass(true, "http://pd-pd.default.svc:2379", true);
        assert!(!p.tls_enabled() && p.suspended());
        // resumed early: still suspended until the switch
        let p = pass(true, "http://pd-pd.default.svc:2379", false);
        assert!(!p.tls_enabled() && p.suspended());
        // switched and resumed: TLS, running
        let p = pass(true, "https://pd-pd.default.svc:2379", false);
        assert!(p.tls_enabled() && !p.suspended());
        // turned off, not switched: TLS kept until every pod is gone
        let p = pass(false, "https://pd-pd.default.svc:2379", false);
        assert!(p.tls_enabled() && p.suspended());
    }
}
