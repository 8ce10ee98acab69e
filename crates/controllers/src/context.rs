//! What every reconcile pass gets: the client, the PD registry, events, metrics, the
//! operator's configuration and a clock.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;

use crate::recorder::{Deliveries, EventType, Recorder};

use crate::cache::Caches;
use crate::metrics::Metrics;
use crate::pd_registry::{PdRegistry, PdWaits};
use crate::updater::Expectations;

/// The operator's clock: the time tasks compare against (minReadySeconds, condition
/// transitions), and the time its timers run on (PD polls and view ages, requeue delays).
/// `run` uses the machine's; beside the simulators (playground, tests, benchmarks) it is
/// the simulators' clock, so that a 1 s PD poll is one simulated second at any speed.
///
/// Leader election ([`crate::leader`], [`crate::fence`]) does not use it: a Lease is
/// judged in the API server's real time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;

    /// Now, as a monotonic instant on this clock (for the PD caches' timers).
    fn instant(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }

    /// Resolves once [`Clock::instant`] reaches `deadline`.
    fn sleep_until(&self, deadline: tokio::time::Instant) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(deadline))
    }

    /// The real time that `duration` on this clock takes: what kube-runtime, which
    /// requeues in real time, is handed.
    fn real_duration(&self, duration: Duration) -> Duration {
        duration
    }
}

/// The operator's clock as the PD caches' timer.
pub(crate) struct CacheTimer(pub Arc<dyn Clock>);

impl tikv_operator_pd::CacheClock for CacheTimer {
    fn now(&self) -> tokio::time::Instant {
        self.0.instant()
    }

    fn sleep_until(&self, deadline: tokio::time::Instant) -> futures::future::BoxFuture<'static, ()> {
        self.0.sleep_until(deadline)
    }
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to (tests). Its instants are the runtime's, unless
/// [`FixedClock::advance_both`] moved them ahead too.
#[derive(Debug)]
pub struct FixedClock {
    at: Mutex<Timestamp>,
    /// How far this clock's instants run ahead of the runtime's.
    ahead: Mutex<Duration>,
}

impl FixedClock {
    pub fn new(at: Timestamp) -> Self {
        Self { at: Mutex::new(at), ahead: Mutex::new(Duration::ZERO) }
    }

    pub fn set(&self, at: Timestamp) {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.checked_add(by).unwrap_or(*now);
    }

    /// Advances the time and the instants (what the PD caches of this clock, and the
    /// age of a view read before, go by).
    pub fn advance_both(&self, by: Duration) {
        self.advance(by);
        *self.ahead.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    fn ahead(&self) -> Duration {
        *self.ahead.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn instant(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.ahead()
    }

    fn sleep_until(&self, deadline: tokio::time::Instant) -> futures::future::BoxFuture<'static, ()> {
        let real = deadline.checked_sub(self.ahead()).unwrap_or(deadline);
        Box::pin(tokio::time::sleep_until(real))
    }
}

/// Reconcile concurrency of each controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concurrency {
    pub cluster: u16,
    pub pd_group: u16,
    pub pd: u16,
    pub tikv_group: u16,
    pub tikv: u16,
}

impl Default for Concurrency {
    fn default() -> Self {
        Self { cluster: 2, pd_group: 2, pd: 4, tikv_group: 2, tikv: 4 }
    }
}

/// Every timing knob of the operator, on its clock. [`Timing::default`] is ours;
/// [`Timing::v2`] reproduces tidb-operator v2's, to measure both side by side
/// (`--timing-profile v2`; see docs/benchmarks.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// PD poll interval while some task waits on PD.
    pub pd_poll_fast: Duration,
    /// PD poll interval for `pd_idle_after` after the last write, wait or change.
    pub pd_poll_slow: Duration,
    /// PD poll interval of a cluster nobody waits on.
    pub pd_poll_idle: Duration,
    /// How long after the last activity the cache polls slowly before idling.
    pub pd_idle_after: Duration,
    /// A PD view older than this is not trusted for destructive steps.
    pub pd_fresh_for: Duration,
    /// Every poll reports every store and member as changed, so every instance is
    /// reconciled once per poll (v2's pollers: a new resourceVersion each time).
    pub pd_events_every_poll: bool,
    /// Every TiKV pass reads PD's evict-leader scheduler uncached (v2's
    /// `ContextInfoFromPD` lists the schedulers on every reconcile).
    pub schedulers_read_every_tikv_pass: bool,
    /// How soon a pass that needs a fresh PD view looks again.
    pub fresh_view_recheck: Duration,
    /// How often leader counts are looked at while leaders move (no event for counts).
    pub eviction_recheck: Duration,
    /// How often a held restart, or a restarted store coming back, is looked at again.
    pub restart_recheck: Duration,
    /// How long leaders may stop coming back before a restart is called done anyway.
    pub leaders_back_patience: Duration,
    /// A restarted TiKV counts as back once this share of its leaders returned (v2:
    /// any leader, and only for stores with 100 regions or more).
    pub leaders_back_share: LeadersBack,
    /// How long a TiKV Pod must have been Ready before the instance is (the group's
    /// `minReadySeconds` applies too, whichever is longer).
    pub tikv_ready_after: Duration,
}

/// When a restarted store's leaders count as back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadersBack {
    /// Half of the leaders it held before the restart.
    Half,
    /// One leader, where the store holds 100 regions or more (v2's `IsStoreReady`).
    AnyOnLargeStores,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            pd_poll_fast: Duration::from_secs(1),
            pd_poll_slow: Duration::from_secs(30),
            // Stores and members: 4 reads in 3 minutes, under the 2 a minute aimed at.
            pd_poll_idle: Duration::from_secs(180),
            pd_idle_after: Duration::from_secs(120),
            pd_fresh_for: Duration::from_secs(5),
            pd_events_every_poll: false,
            schedulers_read_every_tikv_pass: false,
            fresh_view_recheck: Duration::from_secs(2),
            eviction_recheck: Duration::from_secs(5),
            restart_recheck: Duration::from_secs(5),
            leaders_back_patience: Duration::from_secs(120),
            leaders_back_share: LeadersBack::Half,
            tikv_ready_after: Duration::ZERO,
        }
    }
}

impl Timing {
    /// tidb-operator v2's timings (reference/tidb-operator-v2.md, "Numbers", 1.4, 2.1,
    /// 2.6, 4.2): its PD pollers list stores, members and health every 30 s and report
    /// every object each time; it has no fast polling (a task forces a poll after its
    /// writes, as ours do); it acts on its last poll, so a view counts as fresh until
    /// one poll plus v2's 15 s margin (`RequeueAfterOnePoll` = 45 s) has passed; tasks
    /// wait by requeueing after `defaultTaskWaitDuration` = 5 s (eviction and restart
    /// included; no timeout on the restart path); a TiKV is Ready once its store serves
    /// a leader (stores of 100 regions or more) and its Pod has been Ready for 15 s; and
    /// every TiKV reconcile reads PD's schedulers uncached.
    pub fn v2() -> Self {
        let poll = Duration::from_secs(30);
        let wait = Duration::from_secs(5);
        Timing {
            pd_poll_fast: poll,
            pd_poll_slow: poll,
            pd_poll_idle: poll,
            pd_idle_after: Duration::from_secs(120),
            pd_fresh_for: Duration::from_secs(45),
            pd_events_every_poll: true,
            schedulers_read_every_tikv_pass: true,
            fresh_view_recheck: wait,
            eviction_recheck: wait,
            restart_recheck: wait,
            // v2 waits for that first leader without a timeout.
            leaders_back_patience: Duration::MAX,
            leaders_back_share: LeadersBack::AnyOnLargeStores,
            tikv_ready_after: Duration::from_secs(15),
        }
    }

    /// The PD cache's configuration for these timings.
    pub fn pd_cache(&self) -> tikv_operator_pd::CacheConfig {
        tikv_operator_pd::CacheConfig {
            fast_interval: self.pd_poll_fast,
            slow_interval: self.pd_poll_slow,
            idle_interval: self.pd_poll_idle,
            idle_after: self.pd_idle_after,
            fresh_for: self.pd_fresh_for,
            events_every_poll: self.pd_events_every_poll,
            ..tikv_operator_pd::CacheConfig::default()
        }
    }
}

/// The operator's own image, this build's: TiKV pods run its pod-side tools (their
/// preStop hook) from it.
pub const DEFAULT_TOOLS_IMAGE: &str = concat!("ghcr.io/tikv/tikv-operator:v", env!("CARGO_PKG_VERSION"));

/// The operator's settings.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Watch only this namespace; `None` watches all.
    pub namespace: Option<String>,
    pub concurrency: Concurrency,
    pub timing: Timing,
    /// HTTP proxy for PD requests; `None` follows the environment (`HTTP_PROXY`), as
    /// any in-cluster HTTP client does.
    pub pd_proxy: Option<String>,
    /// The image TiKV pods copy the operator binary from, for their preStop hook: the
    /// operator's own (see [`DEFAULT_TOOLS_IMAGE`]).
    pub tools_image: String,
    /// With `tlsCluster`: how often (on the operator's clock) the certificate each
    /// running instance serves is looked at (one TLS handshake).
    pub certificate_check_interval: Duration,
    /// With `tlsCluster`: how often the Cluster controller reads the client Secret again
    /// even when nothing else happens, so a rotated client certificate is used without a
    /// restart (a failing PD poll also makes it read the Secret at once).
    pub client_secret_recheck: Duration,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            concurrency: Concurrency::default(),
            timing: Timing::default(),
            pd_proxy: None,
            tools_image: DEFAULT_TOOLS_IMAGE.to_owned(),
            certificate_check_interval: Duration::from_secs(600),
            client_secret_recheck: Duration::from_secs(60),
        }
    }
}

/// Shared by every pass of every controller, passed by `Arc`.
pub struct Context {
    pub client: Client,
    pub pd: PdRegistry,
    /// Waits on PD held across passes (fast polling while any is held).
    pub pd_waits: PdWaits,
    pub recorder: Arc<Recorder>,
    /// Events handed over by passes, on their way to the API server.
    pub deliveries: Arc<Deliveries>,
    pub metrics: Arc<Metrics>,
    pub config: OperatorConfig,
    pub clock: Arc<dyn Clock>,
    /// Instances created by group controllers and not yet seen in a list.
    pub expectations: Expectations,
    /// What tasks read the objects they own from (writes go to the API server).
    pub caches: Caches,
    /// Namespaces being terminated, which get no Events.
    pub events_gate: Arc<EventsGate>,
    /// When each instance's serving certificate was last looked at.
    pub certificate_checks: crate::common::tasks::CertificateChecks,
}

impl Context {
    pub fn new(client: Client, config: OperatorConfig, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let pd = PdRegistry::new(config.timing.pd_cache())
            .with_clock(Arc::new(CacheTimer(clock.clone())))
            .with_proxy(config.pd_proxy.clone())
            .with_metrics(metrics.clone());
        Self {
            recorder: Arc::new(Recorder::new(client.clone(), tikv_operator_api::names::FIELD_MANAGER)),
            deliveries: Arc::default(),
            caches: Caches::new(&client, config.namespace.as_deref()),
            client,
            pd,
            pd_waits: PdWaits::default(),
            metrics,
            config,
            clock,
            expectations: Expectations::default(),
            events_gate: Arc::default(),
            certificate_checks: Default::default(),
        }
    }

    /// Puts every PD write behind `fence` (leader election); see [`crate::fence`].
    pub fn with_fence(mut self, fence: crate::fence::Fence) -> Self {
        self.pd.set_fence(fence);
        self
    }

    /// Sends PD requests with this User-Agent (a replica's identity in PD's logs).
    pub fn with_pd_user_agent(mut self, user_agent: String) -> Self {
        self.pd.set_user_agent(user_agent);
        self
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The operator's timings.
    pub fn timing(&self) -> &Timing {
        &self.config.timing
    }

    /// Records a Kubernetes Event about `object`, sent in the background (the pass does
    /// not wait for it). Only called when something was done, so a pass with nothing to
    /// do emits none. A failure to record is logged, never fails the pass.
    pub async fn event(&self, object: &ObjectReference, reason: &str, action: &str, note: String) {
        self.publish(object, EventType::Normal, reason, action, note).await;
    }

    /// Records a Warning Event: something the user must fix. Callers emit it only when
    /// the problem is new, so a pass that finds the same problem again emits none.
    pub async fn warning(&self, object: &ObjectReference, reason: &str, action: &str, note: String) {
        self.publish(object, EventType::Warning, reason, action, note).await;
    }

    async fn publish(&self, object: &ObjectReference, type_: EventType, reason: &str, action: &str, note: String) {
        let namespace = object.namespace.clone().unwrap_or_default();
        if self.events_gate.closed(&namespace) {
            return;
        }
        // The object as it is, not as it was at one resourceVersion.
        let object = ObjectReference { resource_version: None, field_path: None, ..object.clone() };
        let (recorder, metrics, gate) = (self.recorder.clone(), self.metrics.clone(), self.events_gate.clone());
        let (reason, action) = (reason.to_owned(), action.to_owned());
        // Wall time, as Kubernetes stamps Events; taken now, not when a worker sends it.
        let at = jiff::Timestamp::now();
        self.deliveries.send(move || async move {
            match recorder.publish(&object, type_, &reason, &action, &note, at).await {
                Ok(()) => metrics.event_recorded(type_.as_str(), &reason),
                Err(error) if namespace_terminating(&error) => gate.close(&namespace),
                Err(error) => tracing::debug!(%error, reason, "cannot record an event"),
            }
        });
    }

    /// Waits until the Events passes handed over have been sent.
    pub async fn flush_events(&self) {
        self.deliveries.flush().await;
    }
}

/// Whether the API server refused a create because the namespace is being deleted
/// (403 with cause `NamespaceTerminating`, as kube-apiserver's admission answers).
fn namespace_terminating(error: &kube::Error) -> bool {
    let kube::Error::Api(status) = error else { return false };
    status.code == 403
        && (status.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
            || status.message.contains("because it is being terminated"))
}

/// Namespaces no Event goes into for a while: those the API server said are being
/// terminated. Learned from the first refusal (one request, no RBAC beyond creating
/// Events), so Events never pile up retries into a dying namespace. A namespace of the
/// same name created again later gets Events once the hold has passed.
#[derive(Default)]
pub struct EventsGate {
    closed: Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// How long a terminating namespace gets no Event attempt.
const TERMINATING_HOLD: Duration = Duration::from_secs(600);

impl EventsGate {
    fn closed(&self, namespace: &str) -> bool {
        let mut closed = self.closed.lock().unwrap_or_else(PoisonError::into_inner);
        closed.retain(|_, since| since.elapsed() < TERMINATING_HOLD);
        closed.contains_key(namespace)
    }

    fn close(&self, namespace: &str) {
        tracing::debug!(namespace, "namespace is being terminated: no Events into it");
        self.closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(namespace.to_owned(), std::time::Instant::now());
    }
}

#[cfg(test)]
mod timing_tests {
    use super::*;

    #[test]
    fn the_v2_profile_has_tidb_operator_v2s_numbers() {
        let v2 = Timing::v2();
        let secs = Duration::from_secs;
        // PD pollers every 30 s, no fast mode, members with health, every object each poll.
        assert_eq!((v2.pd_poll_fast, v2.pd_poll_slow, v2.pd_poll_idle), (secs(30), secs(30), secs(30)));
        assert!(v2.pd_events_every_poll);
        // RequeueAfterOnePoll: one poll plus 15 s.
        assert_eq!(v2.pd_fresh_for, secs(45));
        // defaultTaskWaitDuration 5 s for every wait, eviction and restart included.
        assert_eq!((v2.fresh_view_recheck, v2.eviction_recheck, v2.restart_recheck), (secs(5), secs(5), secs(5)));
        // A TiKV Pod Ready for 15 s; one leader back on stores of 100 regions or more, no timeout.
        assert_eq!(v2.tikv_ready_after, secs(15));
        assert_eq!(v2.leaders_back_share, LeadersBack::AnyOnLargeStores);
        assert_eq!(v2.leaders_back_patience, Duration::MAX);
        // The uncached schedulers read of every TiKV reconcile.
        assert!(v2.schedulers_read_every_tikv_pass);
    }

    #[test]
    fn ours_polls_fast_only_while_waiting_and_idles_at_a_minute_and_a_half() {
        let ours = Timing::default();
        let cache = ours.pd_cache();
        assert_eq!(cache.fast_interval, Duration::from_secs(1));
        assert_eq!(
            cache.idle_interval,
            Duration::from_secs(180),
            "five reads (stores, members, health, schedulers, config) in 180 s"
        );
        assert_eq!(cache.fresh_for, Duration::from_secs(5));
        assert!(!cache.events_every_poll && !ours.schedulers_read_every_tikv_pass);
        assert_eq!(ours.tikv_ready_after, Duration::ZERO);
        let v2 = Timing::v2().pd_cache();
        assert_eq!((v2.fast_interval, v2.fresh_for), (Duration::from_secs(30), Duration::from_secs(45)));
        assert!(v2.events_every_poll);
    }

    #[test]
    fn the_system_clock_hands_kube_runtime_durations_unchanged() {
        assert_eq!(SystemClock.real_duration(Duration::from_secs(5)), Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use kube::Api;
    use kube::api::{DeleteParams, ListParams, PostParams};
    use kube::{Resource, ResourceExt};

    use crate::testing::{TestEnv, sample_tikv};

    fn event_creates(env: &TestEnv) -> usize {
        env.sim.requests().count(|r| r.verb == kube_sim::Verb::Create && r.resource == "events")
    }

    #[tokio::test]
    async fn a_repeated_event_is_counted_on_the_first_even_after_the_object_changed_and_a_new_note_is_new() {
        let env = TestEnv::start().await;
        let mut tikv = env.create(sample_tikv("tikv-aaaaaa", "tikv")).await;
        let first = tikv.object_ref(&());
        env.ctx.warning(&first, "EvictionStalled", "EvictLeaders", "no leader moved for 5m".into()).await;
        env.ctx.flush_events().await;
        // A status write later: another resourceVersion, the same object.
        tikv.metadata.resource_version = Some("999999".into());
        env.ctx
            .warning(&tikv.object_ref(&()), "EvictionStalled", "EvictLeaders", "no leader moved for 5m".into())
            .await;
        env.ctx.flush_events().await;
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "default");
        let events = api.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(events.len(), 1, "one Event, counted twice: {events:?}");
        assert_eq!(events[0].series.as_ref().map(|s| s.count), Some(2));
        assert_eq!(events[0].regarding.as_ref().and_then(|r| r.uid.clone()), tikv.uid(), "describe finds it by UID");
        assert_eq!(env.event_writes().await, 2, "a create, then a patch of the count");
        assert!(
            env.ctx
                .metrics
                .encode()
                .contains(r#"tikv_operator_events_total{type="Warning",reason="EvictionStalled"} 2"#)
        );
        env.ctx.warning(&first, "EvictionStalled", "EvictLeaders", "no leader moved for 10m".into()).await;
        env.ctx.flush_events().await;
        assert_eq!(api.list(&ListParams::default()).await.unwrap().items.len(), 2, "what it says changed");
    }

    #[tokio::test]
    async fn no_event_goes_into_a_namespace_being_terminated() {
        let env = TestEnv::start().await;
        let namespaces: Api<Namespace> = Api::all(env.client.clone());
        let mut ns = Namespace::default();
        ns.metadata.name = Some("doomed".into());
        namespaces.create(&PostParams::default(), &ns).await.unwrap();
        // A finalizer holds the namespace in Terminating.
        let mut held = ConfigMap::default();
        held.metadata.name = Some("held".into());
        held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        Api::<ConfigMap>::namespaced(env.client.clone(), "doomed").create(&PostParams::default(), &held).await.unwrap();
        namespaces.delete("doomed", &DeleteParams::default()).await.unwrap();
        let mut tikv = sample_tikv("tikv-aaaaaa", "tikv");
        tikv.metadata.namespace = Some("doomed".into());
        let reference = tikv.object_ref(&());
        env.sim.requests().reset();
        // Passes one after another (the Events of one pass go out together).
        for reason in ["OfflineStarted", "OfflineCompleted", "DeletedPod"] {
            env.ctx.event(&reference, reason, "Offline", "x".into()).await;
            env.ctx.flush_events().await;
        }
        assert_eq!(event_creates(&env), 1, "the first refusal closes the namespace to Events");
        assert!(!env.ctx.metrics.encode().contains("OfflineStarted"), "nothing was recorded");
        // Other namespaces still get theirs.
        let other = sample_tikv("tikv-bbbbbb", "tikv").object_ref(&());
        env.ctx.event(&other, "OfflineStarted", "Offline", "x".into()).await;
        env.ctx.flush_events().await;
        assert_eq!(event_creates(&env), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_does_not_wait_for_its_events() {
        use kube_sim::{FaultAction, FaultRule, Verb};
        let env = TestEnv::start().await;
        let reference = env.create(sample_tikv("tikv-aaaaaa", "tikv")).await.object_ref(&());
        // The API server does not answer Event creates (until it shuts down).
        env.sim.faults().inject(FaultRule::new(FaultAction::Timeout).verb(Verb::Create).resource("events"));
        let handed_over = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            env.ctx.event(&reference, "CreatedPod", "Create", "created pod p".into()),
        )
        .await;
        assert!(handed_over.is_ok(), "the event was handed over, not awaited");
        for n in 1..20 {
            env.ctx.event(&reference, "CreatedPod", "Create", format!("created pod p{n}")).await;
        }
        let hanging = || env.sim.requests().count(|r| r.resource == "events" && r.code == 504);
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while hanging() < crate::recorder::IN_FLIGHT {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the Events' requests reached the API server");
        // The workers wait on their requests; the other Events wait in the queue.
        assert_eq!(env.ctx.deliveries.queued(), 20 - crate::recorder::IN_FLIGHT);
        assert_eq!(hanging(), crate::recorder::IN_FLIGHT, "no more requests under way than workers");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_carry_the_time_they_were_handed_over_not_the_time_they_were_sent() {
        let env = TestEnv::start().await;
        let reference = env.create(sample_tikv("tikv-aaaaaa", "tikv")).await.object_ref(&());
        // Every worker busy: the Events handed over now wait in the queue.
        let (release, released) = tokio::sync::watch::channel(false);
        for _ in 0..crate::recorder::IN_FLIGHT {
            let mut released = released.clone();
            env.ctx.deliveries.send(move || async move {
                let _ = released.wait_for(|r| *r).await;
            });
        }
        let pause = std::time::Duration::from_millis(20);
        let start = jiff::Timestamp::now();
        env.ctx.event(&reference, "CreatedPod", "Create", "first".into()).await;
        tokio::time::sleep(pause).await;
        let between = jiff::Timestamp::now();
        env.ctx.event(&reference, "RestartingPod", "Restart", "second".into()).await;
        tokio::time::sleep(pause).await;
        let sent_from = jiff::Timestamp::now();
        let _ = release.send(true);
        env.ctx.flush_events().await;
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "default");
        // Events carry microseconds (MicroTime): compare at that precision.
        let (start, between, sent_from) =
            (start.as_microsecond(), between.as_microsecond(), sent_from.as_microsecond());
        let times: std::collections::BTreeMap<String, i64> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|e| (e.note.unwrap_or_default(), e.event_time.map_or(0, |t| t.0.as_microsecond())))
            .collect();
        assert!(start <= times["first"] && times["first"] < between, "{times:?}, handed over from {start}");
        assert!(between <= times["second"] && times["second"] < sent_from, "{times:?}, sent from {sent_from}");
    }

    #[tokio::test]
    async fn a_flush_waits_for_every_event_handed_over() {
        let env = TestEnv::start().await;
        let reference = env.create(sample_tikv("tikv-aaaaaa", "tikv")).await.object_ref(&());
        for n in 0..20 {
            env.ctx.event(&reference, "CreatedPod", "Create", format!("created pod p{n}")).await;
        }
        env.ctx.flush_events().await;
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "default");
        let notes: Vec<String> =
            api.list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|e| e.note).collect();
        assert_eq!(notes.len(), 20, "{notes:?}");
    }
}
