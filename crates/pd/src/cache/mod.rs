//! The per-cluster PD cache (DESIGN.md section 4).
//!
//! One [`PdCache`] per Cluster polls PD's stores (Tombstone included), members, health,
//! cluster ID, the stores under the evict-leader scheduler and the replication config,
//! keeps the last good [`PdView`], and broadcasts [`PdEvent`]s for what
//! changed. It polls fast while any [`WaitGuard`] is alive for the cluster and slowly
//! otherwise, and at once after the operator writes to PD.
//!
//! A failed poll never turns into "absent": the old view stays, the error is recorded,
//! and readers see [`Freshness::Stale`] (or [`Freshness::Unavailable`] before the first
//! good poll). A view is [`Freshness::Fresh`] only if it was read after the operator's
//! last write and is younger than [`CacheConfig::fresh_for`].
//!
//! Time is tokio time, so tests run on tokio's paused clock.

mod events;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;

use crate::client::{PdClient, WriteObserver};
use crate::error::{PdError, Result};
use crate::types::{MemberHealth, Members, ReplicationConfig, Store};

pub use events::{PdEvent, store_changes};
pub use view::{Freshness, NotFresh, PdMember, PdSnapshot, PdView, PollFailure, StaleReason};

/// What the cache reads from PD. [`PdClient`] implements it; tests use an in-memory fake.
pub trait PdApi: Send + Sync + 'static {
    fn cluster_id(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Every store, Tombstone included.
    fn all_stores(&self) -> impl Future<Output = Result<Vec<Store>>> + Send;
    fn members(&self) -> impl Future<Output = Result<Members>> + Send;
    fn health(&self) -> impl Future<Output = Result<Vec<MemberHealth>>> + Send;
    /// The stores in the evict-leader scheduler; empty when there is no such scheduler.
    fn evict_leader_stores(&self) -> impl Future<Output = Result<BTreeSet<u64>>> + Send;
    /// `max-replicas`, `location-labels`, placement rules on or off.
    fn replication_config(&self) -> impl Future<Output = Result<ReplicationConfig>> + Send;
}

impl PdApi for PdClient {
    fn cluster_id(&self) -> impl Future<Output = Result<u64>> + Send {
        PdClient::cluster_id(self)
    }

    fn all_stores(&self) -> impl Future<Output = Result<Vec<Store>>> + Send {
        PdClient::all_stores(self)
    }

    fn members(&self) -> impl Future<Output = Result<Members>> + Send {
        PdClient::members(self)
    }

    fn health(&self) -> impl Future<Output = Result<Vec<MemberHealth>>> + Send {
        PdClient::health(self)
    }

    async fn evict_leader_stores(&self) -> Result<BTreeSet<u64>> {
        Ok(PdClient::evict_leader_config(self).await?.map(|config| config.store_ids()).unwrap_or_default())
    }

    fn replication_config(&self) -> impl Future<Output = Result<ReplicationConfig>> + Send {
        PdClient::replication_config(self)
    }
}

/// Timing of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Poll interval while a wait is registered.
    pub fast_interval: Duration,
    /// Poll interval otherwise.
    pub slow_interval: Duration,
    /// A view older than this is stale.
    pub fresh_for: Duration,
    /// Events buffered per subscriber before it lags.
    pub event_capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            fast_interval: Duration::from_secs(1),
            slow_interval: Duration::from_secs(30),
            fresh_for: Duration::from_secs(5),
            // A poll yields at most one event per store and member; a lagging
            // subscriber is told so and looks at the whole cluster again. 1024 slots
            // cost about 156 KB per Cluster.
            event_capacity: 64,
        }
    }
}

#[derive(Default)]
struct State {
    view: Option<Arc<PdView>>,
    last_error: Option<PollFailure>,
    /// Writes the operator made to PD (through [`PdCache::note_write`]).
    write_epoch: u64,
    last_write_at: Option<Instant>,
    /// Refresh requests made, and the highest one a started poll covers.
    refresh_requested: u64,
    refresh_started: u64,
    last_poll_started: Option<Instant>,
    polls_completed: u64,
    waits: BTreeMap<u64, String>,
    next_wait_id: u64,
}

struct Shared {
    config: CacheConfig,
    state: Mutex<State>,
    wake: Notify,
    events: broadcast::Sender<PdEvent>,
    /// The highest refresh request covered by a completed poll. The sender lives in
    /// the poll task, so a dead task closes the channel instead of hanging `refresh`.
    refreshed: watch::Receiver<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request_refresh(&self) -> u64 {
        let target = {
            let mut state = self.lock();
            state.refresh_requested += 1;
            state.refresh_requested
        };
        self.wake.notify_one();
        target
    }

    fn note_write(&self) {
        {
            let mut state = self.lock();
            state.write_epoch += 1;
            state.last_write_at = Some(Instant::now());
            state.refresh_requested += 1;
        }
        self.wake.notify_one();
    }
}

struct TaskHandle {
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The PD cache of one cluster. Cheap to clone; polling stops when the last clone is dropped.
#[derive(Clone)]
pub struct PdCache {
    handle: Arc<TaskHandle>,
}

impl std::fmt::Debug for PdCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.snapshot();
        f.debug_struct("PdCache")
            .field("freshness", &snapshot.freshness)
            .field("cluster_id", &snapshot.view.as_ref().map(|v| v.cluster_id))
            .field("waits", &self.waits())
            .finish()
    }
}

/// While alive, the cache of its cluster polls fast. Made by [`PdCache::register_wait`].
#[must_use = "the cache polls fast only while the guard is alive"]
pub struct WaitGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.shared.lock().waits.remove(&self.id);
    }
}

impl std::fmt::Debug for WaitGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitGuard").field("id", &self.id).finish()
    }
}

/// Tells the cache about writes made through a [`PdClient`]; does nothing once the
/// cache is gone.
struct CacheWriteObserver(Weak<Shared>);

impl WriteObserver for CacheWriteObserver {
    fn write_sent(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.note_write();
        }
    }
}

impl PdCache {
    /// Starts polling through `api` on the current tokio runtime.
    pub fn spawn<A: PdApi>(api: A, config: CacheConfig) -> Self {
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        let (refreshed_tx, refreshed) = watch::channel(0);
        let shared =
            Arc::new(Shared { config, state: Mutex::new(State::default()), wake: Notify::new(), events, refreshed });
        let task = tokio::spawn(run(api, Arc::clone(&shared), refreshed_tx)).abort_handle();
        PdCache { handle: Arc::new(TaskHandle { shared, task }) }
    }

    /// Starts polling through `client`, and makes every write sent through it (and its
    /// clones) refresh the cache at once.
    pub fn for_client(client: PdClient, config: CacheConfig) -> Self {
        let cache = Self::spawn(client.clone(), config);
        client.set_write_observer(Some(cache.write_observer()));
        cache
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    pub fn config(&self) -> CacheConfig {
        self.shared().config
    }

    /// An observer to install on a [`PdClient`] (see [`PdCache::for_client`]).
    pub fn write_observer(&self) -> Arc<dyn WriteObserver> {
        Arc::new(CacheWriteObserver(Arc::downgrade(self.shared())))
    }

    /// Receives every [`PdEvent`] from now on. A receiver that lags
    /// (`RecvError::Lagged`) has missed events and should resync everything.
    pub fn subscribe(&self) -> broadcast::Receiver<PdEvent> {
        self.shared().events.subscribe()
    }

    /// The cache polls fast until the returned guard is dropped. `reason` is for
    /// diagnostics ([`PdCache::waits`]).
    pub fn register_wait(&self, reason: impl Into<String>) -> WaitGuard {
        let id = {
            let mut state = self.shared().lock();
            state.next_wait_id += 1;
            let id = state.next_wait_id;
            state.waits.insert(id, reason.into());
            id
        };
        // The poll loop recomputes its deadline with the fast interval.
        self.shared().wake.notify_one();
        WaitGuard { shared: Arc::clone(self.shared()), id }
    }

    /// Reasons of the waits registered now.
    pub fn waits(&self) -> Vec<String> {
        self.shared().lock().waits.values().cloned().collect()
    }

    /// Records that the operator wrote to PD: views read before now are stale, and a
    /// poll starts at once.
    pub fn note_write(&self) {
        self.shared().note_write();
    }

    /// When the operator last wrote to PD.
    pub fn last_write_at(&self) -> Option<Instant> {
        self.shared().lock().last_write_at
    }

    /// Asks for a poll now, without waiting for it.
    pub fn request_refresh(&self) {
        self.shared().request_refresh();
    }

    /// Polls now and waits for that poll: its view, or its error.
    pub async fn refresh(&self) -> std::result::Result<Arc<PdView>, PdError> {
        let target = self.shared().request_refresh();
        let mut refreshed = self.shared().refreshed.clone();
        if refreshed.wait_for(|done| *done >= target).await.is_err() {
            return Err(PdError::CacheStopped);
        }
        let state = self.shared().lock();
        match (&state.last_error, &state.view) {
            (Some(failure), _) => Err(failure.error.clone()),
            (None, Some(view)) => Ok(Arc::clone(view)),
            (None, None) => Err(PdError::CacheStopped),
        }
    }

    /// The last good view, its freshness and the latest error.
    pub fn snapshot(&self) -> PdSnapshot {
        let state = self.shared().lock();
        let freshness = freshness(&state, self.shared().config.fresh_for);
        PdSnapshot { view: state.view.clone(), freshness, last_error: state.last_error.clone() }
    }

    /// The view, if it is fresh (read after the operator's last write, younger than
    /// `fresh_for`, latest poll good). When it is merely old or predates a write, a poll
    /// is requested so a later reconcile finds a fresh one.
    pub fn fresh_view(&self) -> std::result::Result<Arc<PdView>, NotFresh> {
        let snapshot = self.snapshot();
        match (snapshot.freshness, snapshot.view) {
            (Freshness::Fresh, Some(view)) => Ok(view),
            (freshness, _) => {
                if matches!(freshness, Freshness::Stale(StaleReason::OlderThanLastWrite | StaleReason::TooOld { .. })) {
                    self.request_refresh();
                }
                Err(NotFresh { freshness, last_error: snapshot.last_error })
            }
        }
    }

    /// The cluster ID of the last good view.
    pub fn cluster_id(&self) -> Option<u64> {
        self.shared().lock().view.as_ref().map(|v| v.cluster_id)
    }

    /// Polls completed so far (good or failed).
    pub fn polls_completed(&self) -> u64 {
        self.shared().lock().polls_completed
    }
}

fn freshness(state: &State, fresh_for: Duration) -> Freshness {
    let Some(view) = &state.view else {
        return Freshness::Unavailable;
    };
    if state.last_error.is_some() {
        return Freshness::Stale(StaleReason::PollFailing);
    }
    if view.write_epoch < state.write_epoch {
        return Freshness::Stale(StaleReason::OlderThanLastWrite);
    }
    let age = view.age();
    if age > fresh_for {
        return Freshness::Stale(StaleReason::TooOld { age });
    }
    Freshness::Fresh
}

async fn run<A: PdApi>(api: A, shared: Arc<Shared>, refreshed: watch::Sender<u64>) {
    loop {
        let (due, refresh_wanted) = {
            let state = shared.lock();
            let interval =
                if state.waits.is_empty() { shared.config.slow_interval } else { shared.config.fast_interval };
            let due = state.last_poll_started.map(|at| at + interval);
            (due, state.refresh_requested > state.refresh_started)
        };
        let now = Instant::now();
        match due {
            Some(due) if !refresh_wanted && now < due => {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = shared.wake.notified() => {}
                }
            }
            _ => {
                let covers = poll_once(&api, &shared).await;
                refreshed.send_replace(covers);
            }
        }
    }
}

/// One poll; returns the highest refresh request it covers.
async fn poll_once<A: PdApi>(api: &A, shared: &Shared) -> u64 {
    let (started, write_epoch, covers) = {
        let mut state = shared.lock();
        let now = Instant::now();
        state.last_poll_started = Some(now);
        state.refresh_started = state.refresh_requested;
        (now, state.write_epoch, state.refresh_requested)
    };

    let stores = async {
        match api.all_stores().await {
            Ok(stores) => Ok(Some(stores)),
            // Before the first TiKV bootstraps, PD has no stores; that is an answer.
            Err(PdError::NotBootstrapped) => Ok(None),
            Err(error) => Err(error),
        }
    };
    let result = tokio::try_join!(
        api.cluster_id(),
        stores,
        api.members(),
        api.health(),
        api.evict_leader_stores(),
        api.replication_config()
    );

    let events = {
        let mut state = shared.lock();
        state.polls_completed += 1;
        match result {
            Ok((cluster_id, stores, members, health, evict_leader_stores, replication)) => {
                let read = view::Read { cluster_id, stores, members, health, evict_leader_stores, replication };
                let view = PdView::build(read, started, write_epoch, state.view.as_deref());
                let mut events = events::diff(state.view.as_deref(), &view);
                if state.last_error.take().is_some() {
                    tracing::info!(cluster_id, "PD polling recovered");
                    events.push(PdEvent::PollRecovered);
                }
                state.view = Some(Arc::new(view));
                events
            }
            Err(error) => {
                let consecutive = state.last_error.as_ref().map_or(1, |f| f.consecutive.saturating_add(1));
                let mut events = Vec::new();
                if consecutive == 1 {
                    tracing::warn!(%error, "PD poll failed; keeping the last view as stale");
                    events.push(PdEvent::PollFailing { error: error.clone() });
                }
                state.last_error = Some(PollFailure { error, at: started, consecutive });
                events
            }
        }
    };
    for event in events {
        // No subscriber is fine: nobody is interested yet.
        let _ = shared.events.send(event);
    }
    covers
}

#[cfg(test)]
mod tests;
