//! The per-cluster PD cache (DESIGN.md section 4).
//!
//! One [`PdCache`] per Cluster polls PD's stores (Tombstone included), members (whose
//! answer carries the cluster ID), health, the stores under the evict-leader scheduler
//! and the replication config — all of them in every poll; it keeps the last good
//! [`PdView`] and broadcasts [`PdEvent`]s for what changed. How often it polls is
//! [`schedule`]'s: fast while any [`WaitGuard`] is alive for the cluster, at once after
//! the operator writes to PD or a refresh is asked for, slowly and then (idle) rarely
//! otherwise.
//!
//! A failed poll never turns into "absent": the old view stays, the error is recorded,
//! and readers see [`Freshness::Stale`] (or [`Freshness::Unavailable`] before the first
//! good poll). A view is [`Freshness::Fresh`] only if it was read after the
//! operator's last write, and is younger than [`CacheConfig::fresh_for`].
//!
//! Time is a [`CacheClock`]'s: tokio's by default (tests run on its paused clock), the
//! simulators' clock where the operator runs beside them.

mod events;
mod schedule;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;

use crate::client::{PdClient, WriteObserver};
use crate::error::{PdError, Result};
use crate::types::{MemberHealth, Members, ReplicationConfig, Store};

pub use events::{PdEvent, store_changes};
pub use schedule::PollMode;
pub use view::{Freshness, NotFresh, PdMember, PdSnapshot, PdView, PollFailure, StaleReason};

/// The clock the cache's timers run on. Instants are tokio's type; a simulated clock
/// maps its own time onto them (and must then be the only source of instants handed
/// to the cache).
pub trait CacheClock: Send + Sync + 'static {
    fn now(&self) -> Instant;
    /// Resolves once [`CacheClock::now`] reaches `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;
}

/// tokio's clock: real time, or its paused clock in tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl CacheClock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(deadline))
    }
}

/// What the cache reads from PD. [`PdClient`] implements it; tests use an in-memory fake.
pub trait PdApi: Send + Sync + 'static {
    /// Asked only when `/members` left its header out (the cluster ID is in it).
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

/// Timing of the cache, on its clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Poll interval while a wait is registered.
    pub fast_interval: Duration,
    /// Poll interval for [`CacheConfig::idle_after`] after the last activity.
    pub slow_interval: Duration,
    /// Poll interval otherwise.
    pub idle_interval: Duration,
    /// How long after the last write, wait or change the cache still polls slowly.
    pub idle_after: Duration,
    /// A view older than this is stale.
    pub fresh_for: Duration,
    /// Report every store and member as changed after every poll, as tidb-operator v2's
    /// pollers do (their objects carry a new resourceVersion each time), so that every
    /// instance is looked at once per poll.
    pub events_every_poll: bool,
    /// Events buffered per subscriber before it lags.
    pub event_capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            fast_interval: Duration::from_secs(1),
            slow_interval: Duration::from_secs(30),
            idle_interval: Duration::from_secs(180),
            idle_after: Duration::from_secs(120),
            fresh_for: Duration::from_secs(5),
            events_every_poll: false,
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
    /// The last write, wait registered or released, or change seen.
    last_activity: Option<Instant>,
    polls_completed: u64,
    waits: BTreeMap<u64, String>,
    next_wait_id: u64,
}

struct Shared {
    config: CacheConfig,
    clock: Arc<dyn CacheClock>,
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
            let now = self.clock.now();
            let mut state = self.lock();
            state.write_epoch += 1;
            state.last_write_at = Some(now);
            state.last_activity = Some(now);
            state.refresh_requested += 1;
        }
        self.wake.notify_one();
    }

    fn schedule_inputs(&self, state: &State) -> schedule::Inputs {
        schedule::Inputs {
            waiting: !state.waits.is_empty(),
            refresh_wanted: state.refresh_requested > state.refresh_started,
            last_poll_started: state.last_poll_started,
            last_activity: state.last_activity,
        }
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
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        state.waits.remove(&self.id);
        state.last_activity = Some(now);
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
    /// Starts polling through `api` on the current tokio runtime, on tokio's clock.
    pub fn spawn<A: PdApi>(api: A, config: CacheConfig) -> Self {
        Self::spawn_on(api, config, Arc::new(TokioClock))
    }

    /// [`PdCache::spawn`] with its timers on `clock`.
    pub fn spawn_on<A: PdApi>(api: A, config: CacheConfig, clock: Arc<dyn CacheClock>) -> Self {
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        let (refreshed_tx, refreshed) = watch::channel(0);
        let state = Mutex::new(State::default());
        let shared = Arc::new(Shared { config, clock, state, wake: Notify::new(), events, refreshed });
        let task = tokio::spawn(run(api, Arc::clone(&shared), refreshed_tx)).abort_handle();
        PdCache { handle: Arc::new(TaskHandle { shared, task }) }
    }

    /// Starts polling through `client`, and makes every write sent through it (and its
    /// clones) refresh the cache at once.
    pub fn for_client(client: PdClient, config: CacheConfig) -> Self {
        Self::for_client_on(client, config, Arc::new(TokioClock))
    }

    /// [`PdCache::for_client`] with its timers on `clock`.
    pub fn for_client_on(client: PdClient, config: CacheConfig, clock: Arc<dyn CacheClock>) -> Self {
        let cache = Self::spawn_on(client.clone(), config, clock);
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
        let now = self.shared().clock.now();
        let id = {
            let mut state = self.shared().lock();
            state.last_activity = Some(now);
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

    /// How often the cache polls now.
    pub fn poll_mode(&self) -> PollMode {
        let state = self.shared().lock();
        schedule::mode(&self.shared().config, &self.shared().schedule_inputs(&state), self.shared().clock.now())
    }

    /// How old the last good view is, on the cache's clock.
    pub fn view_age(&self) -> Option<Duration> {
        let now = self.shared().clock.now();
        self.shared().lock().view.as_ref().map(|v| now.saturating_duration_since(v.observed_at))
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
        let now = self.shared().clock.now();
        let state = self.shared().lock();
        let freshness = freshness(&state, self.shared().config.fresh_for, now);
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

fn freshness(state: &State, fresh_for: Duration, now: Instant) -> Freshness {
    let Some(view) = &state.view else {
        return Freshness::Unavailable;
    };
    if state.last_error.is_some() {
        return Freshness::Stale(StaleReason::PollFailing);
    }
    if view.write_epoch < state.write_epoch {
        return Freshness::Stale(StaleReason::OlderThanLastWrite);
    }
    let age = now.saturating_duration_since(view.observed_at);
    if age > fresh_for {
        return Freshness::Stale(StaleReason::TooOld { age });
    }
    Freshness::Fresh
}

async fn run<A: PdApi>(api: A, shared: Arc<Shared>, refreshed: watch::Sender<u64>) {
    loop {
        // Registered before the state is read, so a wake-up in between is not lost.
        let woken = shared.wake.notified();
        let next = {
            let state = shared.lock();
            schedule::next(&shared.config, &shared.schedule_inputs(&state), shared.clock.now())
        };
        match next {
            schedule::Next::SleepUntil(due) => {
                tokio::select! {
                    () = shared.clock.sleep_until(due) => {}
                    () = woken => {}
                }
            }
            schedule::Next::Poll => {
                let covers = poll_once(&api, &shared).await;
                refreshed.send_replace(covers);
            }
        }
    }
}

/// Reads one whole view: stores and members (whose header carries the cluster ID),
/// health, the stores under the evict-leader scheduler and the replication config.
/// Every poll reads all of it, so no part of a view is ever carried over from an older
/// poll (a carried-over health or evict-leader entry misled guards that read the last
/// view). Returns the view and the events leading to it.
async fn read_view<A: PdApi>(
    api: &A,
    shared: &Shared,
    started: Instant,
    write_epoch: u64,
) -> Result<(PdView, Vec<PdEvent>)> {
    // One read after the other: over HTTP/1.1 concurrent reads each hold a connection of
    // their own, and a poll's five kept five idle connections per PD cluster open (430
    // for 100 clusters); in sequence one suffices, for a few milliseconds more per poll.
    let stores = match api.all_stores().await {
        Ok(stores) => Some(stores),
        // Before the first TiKV bootstraps, PD has no stores; that is an answer.
        Err(PdError::NotBootstrapped) => None,
        Err(error) => return Err(error),
    };
    let members = api.members().await?;
    let health = api.health().await?;
    let evict_leader_stores = api.evict_leader_stores().await?;
    let replication = api.replication_config().await?;
    let cluster_id = match members.cluster_id {
        0 => api.cluster_id().await?,
        id => id,
    };
    let previous = shared.lock().view.clone();
    let read = view::Read { cluster_id, stores, members, health, evict_leader_stores, replication };
    let view = PdView::build(read, started, write_epoch, previous.as_deref());
    let events = events::diff(previous.as_deref(), &view);
    Ok((view, events))
}

async fn poll_once<A: PdApi>(api: &A, shared: &Shared) -> u64 {
    let (started, write_epoch, covers) = {
        let now = shared.clock.now();
        let mut state = shared.lock();
        state.last_poll_started = Some(now);
        state.refresh_started = state.refresh_requested;
        (now, state.write_epoch, state.refresh_requested)
    };

    let result = read_view(api, shared, started, write_epoch).await;

    let events = {
        let mut state = shared.lock();
        state.polls_completed += 1;
        match result {
            Ok((view, mut events)) => {
                if !events.is_empty() {
                    state.last_activity = Some(started);
                }
                if shared.config.events_every_poll {
                    events.extend(every_object(&view, &events));
                }
                if state.last_error.take().is_some() {
                    tracing::info!(cluster_id = view.cluster_id, "PD polling recovered");
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

/// A "changed" event for every store and member that `events` does not already name
/// ([`CacheConfig::events_every_poll`]).
fn every_object(view: &PdView, events: &[PdEvent]) -> Vec<PdEvent> {
    let stores = view
        .stores
        .values()
        .filter(|s| !events.iter().any(|e| e.store_id() == Some(s.id)))
        .map(|s| PdEvent::StoreChanged { store_id: s.id, address: s.address.clone(), changes: vec!["polled"] });
    let members = view.members.iter().filter(|(name, _)| !events.iter().any(|e| e.member_name() == Some(name))).map(
        |(name, m)| PdEvent::MemberChanged {
            name: name.clone(),
            member_id: m.member.member_id,
            changes: vec!["polled"],
        },
    );
    stores.chain(members).collect()
}

#[cfg(test)]
mod tests;
