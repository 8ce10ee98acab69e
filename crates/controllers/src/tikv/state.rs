//! What the TiKV instance controller's tasks share during one pass.

use std::sync::Arc;

use tikv_operator_api::TiKV;
use tikv_operator_api::condition::reasons;
use tikv_operator_api::tikv::StoreState;
use tikv_operator_pd::{NodeState, PdView};

use kube::ResourceExt;
use tikv_operator_api::names::{ANNOTATION_RESTART, ANNOTATION_RESTART_INTENT};

use crate::common::Instance;
use crate::common::guards::destructive_allowed;
use crate::common::instance::{InstanceParts, InstanceState, pod_running, pod_terminating};
pub use crate::common::pd_view::{Observed, ViewFreshness};
use crate::common::restart::{PodDrift, drift, restart_intent};
use crate::common::{Pass, PassState};
use crate::context::Context;

/// The store as PD reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreInfo {
    pub id: u64,
    pub node_state: NodeState,
    /// Up with a recent heartbeat.
    pub up: bool,
}

/// This instance's store as the pass found it in the PD cache, set by `store` and read
/// by every later task. Reporting may use any view; a destructive step must check
/// [`StoreView::fresh`] (DESIGN.md section 5 item 2): a stale view never says "absent".
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StoreView {
    /// Not looked at: the pass stopped before `store`.
    #[default]
    NotRead,
    /// The Cluster controller has not registered this cluster's PD with the operator yet.
    NotRegistered,
    /// PD has never answered a poll: nothing is known.
    Unavailable,
    /// PD's view has no store for this instance: none with the recorded ID, or, before
    /// an ID is recorded, no live store on the advertise address.
    Absent(Observed),
    /// The store, by its recorded ID (or found by address, and now recorded).
    Found(StoreInfo, Observed),
}

impl StoreView {
    /// The store, from any view (for reporting).
    pub fn store(&self) -> Option<&StoreInfo> {
        match self {
            StoreView::Found(store, _) => Some(store),
            _ => None,
        }
    }

    /// The PD view the pass read, however old.
    pub fn observed(&self) -> Option<&Observed> {
        match self {
            StoreView::Absent(observed) | StoreView::Found(_, observed) => Some(observed),
            StoreView::NotRead | StoreView::NotRegistered | StoreView::Unavailable => None,
        }
    }

    /// The view, only if it may back a destructive step: read after the operator's
    /// last write to PD, recent, and the latest poll good.
    pub fn fresh(&self) -> Option<&Observed> {
        self.observed().filter(|observed| observed.is_fresh())
    }

    /// Absent from a fresh view: PD really has no store for this instance now. (Whether
    /// that means "removed" depends on what was seen before: DESIGN.md section 5 item 3.)
    pub fn absent_from_fresh_view(&self) -> bool {
        matches!(self, StoreView::Absent(observed) if observed.is_fresh())
    }
}

/// The store's leaders as `evict_leaders` found them this pass (read by `offline`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Leaders {
    /// Nobody needs them gone, or the pass could not tell.
    #[default]
    Stay,
    /// Moving off the store under eviction: this many left.
    Moving(u64),
    /// None left while the store is under eviction.
    Evicted,
    /// Eviction cannot work here (a single store, or `max-replicas` 1): whoever needs
    /// the leaders gone goes on without it.
    CannotMove,
    /// Not started: PD could not take the store offline now (too few other Up stores
    /// for max-replicas), so moving its leaders would only disturb the cluster.
    NotYet,
}

/// Why the leaders of store `id` should not be (or stay) under the operator's eviction
/// for an offline now, if so. At most (Up TiKV stores − max-replicas) stores can be
/// taken offline at a time, so at most that many may hold such an eviction; `others`
/// are the stores the operator evicts for the cluster's other instances (their
/// annotations). Starting, every such eviction counts; held (`ours`), only those of
/// lower store IDs — so evictions started together from one view settle on the lowest
/// IDs, every instance applying the same rule. Someone else's entries do not count.
pub fn eviction_room(view: &PdView, id: u64, others: &[u64], ours: bool) -> Option<String> {
    let max_replicas = view.replication.max_replicas;
    let up = up_stores(view);
    if !up.contains(&id) {
        // Already leaving (Removing): it holds its place.
        return None;
    }
    let allowance = (up.len() as u64).saturating_sub(max_replicas);
    let taken = others.iter().filter(|o| **o != id && up.contains(o) && (!ours || **o < id)).count() as u64;
    (taken >= allowance).then(|| {
        format!(
            "{} Up stores and max-replicas {max_replicas} let {allowance} leave at a time, and {taken} other leaving \
             stores hold that place",
            up.len()
        )
    })
}

/// Why PD would refuse to take store `id` offline now, if it would: the Up TiKV
/// stores left (Preparing or Serving, as PD counts them, Disconnected and Down
/// included) would be fewer than max-replicas.
pub fn offline_blocker(view: &PdView, id: u64) -> Option<String> {
    let max_replicas = view.replication.max_replicas;
    let up_after = up_stores(view).iter().filter(|s| **s != id).count() as u64;
    (up_after < max_replicas).then(|| {
        format!("{up_after} other Up stores would remain and max-replicas is {max_replicas}: waiting for more stores")
    })
}

/// The TiKV stores PD counts as Up when it judges an offline (Preparing or Serving,
/// Disconnected and Down included), by ID.
fn up_stores(view: &PdView) -> Vec<u64> {
    let up = |s: &&tikv_operator_pd::Store| matches!(s.node_state, NodeState::Preparing | NodeState::Serving);
    view.stores.values().filter(|s| !s.is_tiflash()).filter(up).map(|s| s.id).collect()
}

/// A restart under way, as recorded on the instance before its Pod was deleted (or when
/// it was seen deleted by someone else): `<old pod UID>/<leaders before>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartRecord {
    pub pod_uid: String,
    /// The store's leaders before they were moved away: half of them back ends it.
    pub leaders_before: u64,
}

impl RestartRecord {
    pub fn parse(text: &str) -> Option<Self> {
        let (uid, leaders) = text.split_once('/')?;
        Some(RestartRecord { pod_uid: uid.to_string(), leaders_before: leaders.trim().parse().ok()? })
    }
}

impl std::fmt::Display for RestartRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.pod_uid, self.leaders_before)
    }
}

/// TiKV's store heartbeat interval (`pd-store-heartbeat-tick-interval`).
pub const STORE_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);

/// Another store that is not Tombstone and not Up with a heartbeat at most two
/// intervals old, if any.
pub fn unhealthy_other_store(view: &PdView, id: u64, now: jiff::Timestamp) -> Option<String> {
    let limit = 2 * STORE_HEARTBEAT.as_secs();
    view.stores.values().filter(|st| st.id != id && !st.is_tiflash() && st.node_state != NodeState::Removed).find_map(
        |st| {
            if !matches!(st.node_state, NodeState::Preparing | NodeState::Serving | NodeState::Removing) {
                return Some(format!("store {} is {}", st.id, st.node_state.name()));
            }
            let age = st.last_heartbeat.map(|at| now.duration_since(at).as_secs().max(0).unsigned_abs());
            match age {
                Some(age) if age <= limit => None,
                Some(age) => Some(format!("store {}'s last heartbeat is {age}s old (more than {limit}s)", st.id)),
                None => Some(format!("store {} has not sent a heartbeat", st.id)),
            }
        },
    )
}

/// The Pod of another store of the cluster (found through its instance) that is not
/// Ready or is terminating, if any.
fn other_pod_not_ready(s: &TikvState, view: &PdView, id: u64) -> Option<String> {
    use crate::common::Instance;
    use crate::common::instance::pod_ready_since;
    use k8s_openapi::api::core::v1::Pod;
    let cluster = s.pass.object.as_ref()?.spec.cluster.name.clone();
    let selector = std::collections::BTreeMap::from([(tikv_operator_api::names::LABEL_CLUSTER.to_string(), cluster)]);
    let tikvs = s.pass.ctx.caches.list::<TiKV>(&s.pass.namespace, &selector);
    for tikv in tikvs.iter().filter(|t| t.metadata.name.as_deref() != Some(s.pass.name.as_str())) {
        let Some(other) = tikv.status.as_ref().and_then(|st| st.id.as_deref()).and_then(|i| i.parse::<u64>().ok())
        else {
            continue;
        };
        if other == id || view.store(other).is_none_or(|st| st.node_state == NodeState::Removed) {
            continue;
        }
        let pod_name = tikv.pod_name();
        let pod = s.pass.ctx.caches.get::<Pod>(&s.pass.namespace, &pod_name);
        match pod {
            None => return Some(format!("store {other}'s pod {pod_name} does not exist")),
            Some(pod) if pod_terminating(&pod) => {
                return Some(format!("store {other}'s pod {pod_name} is terminating"));
            }
            Some(pod) if pod_ready_since(&pod).is_none() => {
                return Some(format!("store {other}'s pod {pod_name} is not Ready"));
            }
            Some(_) => {}
        }
    }
    None
}

/// What the deletion tasks found still in place this pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    pub pod_gone: bool,
    pub pvcs_gone: bool,
    /// The store recorded, or PD read after the Pod was gone and no store at the
    /// instance's address (`confirm_unregistered`).
    pub pd_confirmed: bool,
}

/// Why a destructive step may not run now (DESIGN.md section 5 items 1–3), for the
/// condition that says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    /// How the refused task waits: a view that is only not fresh yet is polled for
    /// and looked at again shortly (the poll may bring no event); anything else waits
    /// for the event that changes it.
    pub fn outcome(pass: &Pass<TiKV>, reason: &str, message: String) -> tikv_operator_task::Outcome {
        if reason == reasons::PD_VIEW_NOT_FRESH {
            pass.retry_for_fresh_view(message)
        } else {
            tikv_operator_task::Outcome::wait(message)
        }
    }
}

pub struct TikvState {
    pub pass: Pass<TiKV>,
    pub parts: InstanceParts,
    pub store: StoreView,
    pub leaders: Leaders,
    pub cleanup: Cleanup,
    /// Set by `restart` while a restart it follows is under way: why the store is not
    /// Ready (overrides what the Pod says).
    pub restarting: Option<String>,
}

impl TikvState {
    pub fn new(ctx: Arc<Context>, namespace: &str, name: &str) -> Self {
        Self {
            pass: Pass::new(ctx, namespace, name),
            parts: InstanceParts::default(),
            store: StoreView::NotRead,
            leaders: Leaders::Stay,
            cleanup: Cleanup::default(),
            restarting: None,
        }
    }

    /// The store should leave PD: `spec.offline` is set, or the instance is deleted
    /// (a deletion is an offline that cannot be cancelled).
    pub fn leaving(&self) -> bool {
        self.pass.deleting() || self.pass.object.as_ref().is_some_and(|t| t.spec.offline)
    }

    /// Sets (or with `None` removes) an annotation of the instance ([`Pass::annotate`]).
    pub async fn annotate(&mut self, key: &str, value: Option<String>) -> Result<(), tikv_operator_task::Outcome> {
        self.pass.annotate(key, value).await
    }

    /// The restart recorded on the instance (`core.tikv.org/restart`), if one is under way.
    pub fn restart_record(&self) -> Option<RestartRecord> {
        let text = self.pass.object.as_ref()?.annotations().get(ANNOTATION_RESTART)?;
        RestartRecord::parse(text)
    }

    /// How the live Pod differs from the instance's intent (pure: the `pod` task
    /// computes the same and applies what is in place).
    pub fn pod_drift(&self) -> PodDrift {
        let (Some(pod), Some(tikv)) = (&self.parts.pod, &self.pass.object) else {
            return PodDrift::default();
        };
        let recorded = pod.annotations().get(ANNOTATION_RESTART_INTENT);
        drift(recorded.map(String::as_str), &restart_intent(tikv, self.pass.tls_enabled()), tikv.config_strategy())
    }

    /// The store's new process (after a recorded restart) runs in a new Pod and has
    /// reported to PD since that Pod started: the old process looks Up for a while
    /// after it died, so only a start time after the new Pod's counts.
    pub fn new_process_serving(&self) -> bool {
        let (Some(record), Some(pod)) = (self.restart_record(), &self.parts.pod) else {
            return false;
        };
        if pod.metadata.uid.as_deref() == Some(record.pod_uid.as_str()) || !pod_running(pod) {
            return false;
        }
        let started = pod.status.as_ref().and_then(|st| st.start_time.as_ref()).map(|t| t.0);
        let store = self.store_id().and_then(|id| self.store.observed().and_then(|o| o.view.store(id).cloned()));
        match (started, store.and_then(|st| st.start_time)) {
            // PD reports whole seconds.
            (Some(pod_start), Some(process_start)) => process_start.as_second() >= pod_start.as_second(),
            _ => false,
        }
    }

    /// A restart needs the store's leaders gone: its Pod must be recreated, is being
    /// deleted (by the operator or anyone), or a recorded restart's new process does
    /// not serve yet.
    pub fn restart_needs_leaders_gone(&self) -> bool {
        let Some(pod) = &self.parts.pod else {
            return self.restart_record().is_some();
        };
        if pod_terminating(pod) {
            // Once its process has stopped, a recorded restart still waits for the new one.
            return pod_running(pod) || self.restart_record().is_some();
        }
        match self.restart_record() {
            Some(record) if pod.metadata.uid.as_deref() == Some(record.pod_uid.as_str()) => true,
            Some(_) => !self.new_process_serving(),
            None => self.pod_drift().needs_restart(),
        }
    }

    /// Why the rest of the cluster could not spare store `id` now, if so (DESIGN.md
    /// section 5 item 4, the part this view and the caches tell): another store not Up
    /// with a recent heartbeat, or another store's Pod not Ready or terminating. Checked
    /// before a restart's eviction starts and again before the Pod goes.
    pub fn others_unhealthy(&self, view: &PdView, id: u64) -> Option<String> {
        unhealthy_other_store(view, id, self.pass.ctx.now()).or_else(|| other_pod_not_ready(self, view, id))
    }

    /// PD read now, in full (a step about to act on whose evict-leader entries PD holds
    /// must not go by an idle poll's carried-over ones); `None` when PD did not answer.
    pub async fn read_pd_now(&self) -> Option<Observed> {
        let pd = self.pass.pd()?;
        let view = pd.cache.refresh().await.ok()?;
        let freshness = ViewFreshness::of(pd.cache.snapshot().freshness)?;
        Some(Observed { view, freshness })
    }

    /// The store ID recorded in the status: the store's identity.
    pub fn store_id(&self) -> Option<u64> {
        self.pass.status.id.as_deref().and_then(|id| id.parse().ok())
    }

    /// The store with the recorded ID is gone for good (DESIGN.md section 5 item 3):
    /// PD says Removed (Tombstone) for it, or a fresh view no longer lists it after it
    /// was seen Removing or Removed. Absent without that history is unknown, not removed.
    pub fn store_removed(&self) -> bool {
        if self.store_id().is_none() {
            return false;
        }
        match &self.store {
            StoreView::Found(store, _) => store.node_state == NodeState::Removed,
            StoreView::Absent(observed) => {
                observed.is_fresh()
                    && matches!(self.pass.status.state, Some(StoreState::Removing) | Some(StoreState::Removed))
            }
            _ => false,
        }
    }

    /// No store ever registered for this instance: none recorded, and a fresh view has
    /// no live store on its address. Such an instance holds no data.
    pub fn never_registered(&self) -> bool {
        self.store_id().is_none() && self.store.absent_from_fresh_view()
    }

    /// Rules 1 and 2 of the safety contract, checked by every destructive step: the PD
    /// answering is the Cluster's, and this pass read a fresh view of it.
    pub fn destructive_allowed(&self) -> Result<&Observed, Refusal> {
        let Some(cluster) = &self.pass.cluster else {
            return Err(Refusal { reason: reasons::CLUSTER_NOT_FOUND, message: "the Cluster is not loaded".into() });
        };
        destructive_allowed(cluster, self.pass.pd().as_ref())
            .map_err(|message| Refusal { reason: reasons::CLUSTER_ID_MISMATCH, message })?;
        match (&self.store, self.store.fresh()) {
            (_, Some(observed)) => Ok(observed),
            (StoreView::NotRead | StoreView::NotRegistered | StoreView::Unavailable, None) => Err(Refusal {
                reason: reasons::PD_UNAVAILABLE,
                message: "PD has not answered: nothing is deleted until it does".into(),
            }),
            (StoreView::Absent(observed) | StoreView::Found(_, observed), None) => {
                self.pass.want_fresh_view();
                Err(Refusal {
                    reason: reasons::PD_VIEW_NOT_FRESH,
                    message: format!(
                        "the PD view is not fresh ({}): nothing is deleted until it is",
                        observed.freshness
                    ),
                })
            }
        }
    }
}

impl PassState for TikvState {
    type Object = TiKV;
    fn pass(&self) -> &Pass<TiKV> {
        &self.pass
    }
    fn pass_mut(&mut self) -> &mut Pass<TiKV> {
        &mut self.pass
    }
}

impl InstanceState for TikvState {
    type I = TiKV;
    fn parts(&self) -> &InstanceParts {
        &self.parts
    }
    fn parts_mut(&mut self) -> &mut InstanceParts {
        &mut self.parts
    }
}
