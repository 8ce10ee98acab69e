//! What the PD instance controller's tasks share during one pass.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use tikv_operator_api::names::ANNOTATION_MEMBER_REMOVAL;

use tikv_operator_api::{PD, PDGroup};

use crate::common::instance::{InstanceParts, InstanceState};
use crate::common::pd_view::Observed;
use crate::common::{Pass, PassState};
use crate::context::Context;
use crate::pd::render::{PeerUrls, peer_urls};

/// This member as PD reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: u64,
    pub healthy: Option<bool>,
    pub is_leader: bool,
    /// The peer URLs PD stores for the member.
    pub peer_urls: Vec<String>,
}

/// This instance's member as the pass found it in the PD cache, set by `member` and
/// read by every later task. Reporting may use any view; a destructive step must check
/// [`Observed::is_fresh`] (DESIGN.md section 5 item 2): a stale view never says "absent".
#[derive(Clone, Debug, Default, PartialEq)]
pub enum MemberView {
    /// Not looked at: the pass stopped before `member`.
    #[default]
    NotRead,
    /// The Cluster controller has not registered this cluster's PD with the operator yet.
    NotRegistered,
    /// PD has never answered a poll: nothing is known.
    Unavailable,
    /// PD's view has no member named like this instance's Pod.
    Absent(Observed),
    /// The member, by the name of this instance's Pod.
    Found(MemberInfo, Observed),
}

impl MemberView {
    /// The member, from any view (for reporting).
    pub fn member(&self) -> Option<&MemberInfo> {
        match self {
            MemberView::Found(member, _) => Some(member),
            _ => None,
        }
    }

    /// The view, only if it may back a destructive step: read after the operator's
    /// last write to PD, recent, and the latest poll good.
    pub fn fresh(&self) -> Option<&Observed> {
        match self {
            MemberView::Found(_, observed) | MemberView::Absent(observed) if observed.is_fresh() => Some(observed),
            _ => None,
        }
    }
}

pub struct PdState {
    pub pass: Pass<PD>,
    pub parts: InstanceParts,
    pub group: Option<PDGroup>,
    /// Every PD instance of the group, this one included.
    pub peers: Vec<PD>,
    /// The Pods of the group, read by `pod` only while this instance has none (they
    /// carry the `--initial-cluster` list the cluster formed with).
    pub peer_pods: Vec<Pod>,
    pub member: MemberView,
    /// Set by `leave`: PD no longer lists this instance's member (removed by its
    /// recorded ID as a fresh view shows, or it never joined).
    pub left: bool,
    /// Set by `remove_data`: neither the Pod nor a PVC of the instance is left.
    pub data_removed: bool,
}

impl PdState {
    pub fn new(ctx: Arc<Context>, namespace: &str, name: &str) -> Self {
        Self {
            pass: Pass::new(ctx, namespace, name),
            parts: InstanceParts::default(),
            group: None,
            peers: Vec::new(),
            peer_pods: Vec::new(),
            member: MemberView::NotRead,
            left: false,
            data_removed: false,
        }
    }

    /// The member ID recorded in status (the instance's identity in PD).
    pub fn recorded_id(&self) -> Option<u64> {
        let status = self.pass.object.as_ref()?.status.as_ref()?;
        status.id.as_deref()?.parse().ok()
    }

    /// The member ID whose removal the operator asked PD for (its annotation).
    pub fn removal_asked(&self) -> Option<u64> {
        self.pass.object.as_ref()?.annotations().get(ANNOTATION_MEMBER_REMOVAL)?.parse().ok()
    }

    /// Sets (or with `None` removes) an annotation of the instance ([`Pass::annotate`]).
    pub async fn annotate(&mut self, key: &str, value: Option<String>) -> Result<(), tikv_operator_task::Outcome> {
        self.pass.annotate(key, value).await
    }

    /// The peer URL PD stores for this member: from the pass's view of PD (any
    /// freshness: only etcd's MemberUpdate, which the operator makes, changes it), else
    /// as status last recorded it.
    pub fn stored_peer_url(&self) -> Option<&str> {
        match &self.member {
            MemberView::Found(member, _) if !member.peer_urls.is_empty() => {
                member.peer_urls.first().map(String::as_str)
            }
            _ => self.pass.object.as_ref()?.status.as_ref()?.peer_urls.first().map(String::as_str),
        }
    }

    /// This member's peer URLs under the TLS setting in force.
    pub fn peer_urls(&self) -> Option<PeerUrls> {
        let pd = self.pass.object.as_ref()?;
        Some(peer_urls(pd, self.pass.tls_enabled(), self.stored_peer_url()))
    }

    pub fn bootstrapped(&self) -> bool {
        self.group.as_ref().is_some_and(|g| g.spec.bootstrapped)
    }
}

impl PassState for PdState {
    type Object = PD;
    fn pass(&self) -> &Pass<PD> {
        &self.pass
    }
    fn pass_mut(&mut self) -> &mut Pass<PD> {
        &mut self.pass
    }
}

impl InstanceState for PdState {
    type I = PD;
    fn parts(&self) -> &InstanceParts {
        &self.parts
    }
    fn parts_mut(&mut self) -> &mut InstanceParts {
        &mut self.parts
    }
    /// The peer listeners: a change (a TLS switch's extra listener, then its removal)
    /// takes a restart.
    fn intent_extras(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut extras = serde_json::Map::new();
        if let Some(peer) = self.peer_urls() {
            extras.insert(PEER_LISTEN_INTENT.into(), serde_json::json!(peer.listen));
        }
        extras
    }
}

/// The key of the restart intent that records a PD Pod's peer listeners.
pub const PEER_LISTEN_INTENT: &str = "peerURLs";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePd, offline_context, sample_cluster, sample_pd};
    use std::collections::BTreeMap;

    const OLD: &str = "http://pd-pd-abc123.pd-pd-peer.default.svc:2380";

    /// A pass over `pd-abc123` of a cluster whose TLS setting in force is `tls`.
    fn state(tls: bool, status_urls: &[&str]) -> PdState {
        let mut cluster = sample_cluster("basic");
        let url = if tls { "https://pd-pd.default.svc:2379" } else { "http://pd-pd.default.svc:2379" };
        cluster.status.get_or_insert_default().pd = Some(url.into());
        let mut pd = sample_pd("pd-abc123", "pd");
        pd.status.get_or_insert_default().peer_urls = status_urls.iter().map(|u| u.to_string()).collect();
        let mut s = PdState::new(offline_context(), "default", "pd-abc123");
        s.pass = s.pass.with_object(pd).with_cluster(cluster);
        s
    }

    /// This member as a fresh view of a fake PD shows it, PD storing `urls` for it.
    async fn found(urls: &[&str]) -> MemberView {
        let pd = FakePd::bootstrapped().member("pd-pd-abc123", 1);
        pd.member_peer_urls("pd-pd-abc123", urls);
        let view = pd.fresh_handle().await.cache.snapshot().view.unwrap();
        let member = MemberInfo {
            id: 1,
            healthy: Some(true),
            is_leader: false,
            peer_urls: urls.iter().map(|u| u.to_string()).collect(),
        };
        MemberView::Found(member, Observed { view, freshness: crate::common::pd_view::ViewFreshness::Fresh })
    }

    #[tokio::test]
    async fn the_stored_peer_url_comes_from_pd_else_from_status() {
        let mut s = state(true, &[OLD]);
        assert_eq!(s.stored_peer_url(), Some(OLD), "PD not read: status");
        s.member = found(&["https://pd-pd-abc123.pd-pd-peer.default.svc:2381"]).await;
        assert_eq!(s.stored_peer_url(), Some("https://pd-pd-abc123.pd-pd-peer.default.svc:2381"), "PD wins");
        assert_eq!(state(true, &[]).stored_peer_url(), None);
    }

    #[tokio::test]
    async fn the_restart_intent_records_the_peer_listeners() {
        let mut s = state(true, &[]);
        s.member = found(&[OLD]).await;
        let extras: BTreeMap<String, serde_json::Value> = s.intent_extras().into_iter().collect();
        assert_eq!(
            extras,
            [(PEER_LISTEN_INTENT.to_string(), serde_json::json!(["http://0.0.0.0:2380", "https://0.0.0.0:2381"]))]
                .into()
        );
        s.member = found(&["https://pd-pd-abc123.pd-pd-peer.default.svc:2381"]).await;
        assert_eq!(s.intent_extras()[PEER_LISTEN_INTENT], serde_json::json!(["https://0.0.0.0:2381"]));
    }
}
