//! What every reconcile pass gets: the client, the PD registry, events, metrics, the
//! operator's configuration and a clock.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::cache::Caches;
use crate::metrics::Metrics;
use crate::pd_registry::{PdRegistry, PdWaits};
use crate::updater::Expectations;

/// The time tasks compare against (minReadySeconds, condition transitions).
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    pub fn new(at: Timestamp) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.checked_add(by).unwrap_or(*now);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
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

/// The operator's own image, this build's: TiKV pods run its pod-side tools (their
/// preStop hook) from it.
pub const DEFAULT_TOOLS_IMAGE: &str = concat!("ghcr.io/tikv/tikv-operator:v", env!("CARGO_PKG_VERSION"));

/// The operator's settings.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Watch only this namespace; `None` watches all.
    pub namespace: Option<String>,
    pub concurrency: Concurrency,
    /// PD poll interval while some task waits on PD.
    pub pd_poll_fast: Duration,
    /// PD poll interval otherwise.
    pub pd_poll_slow: Duration,
    /// A PD view older than this is not trusted for destructive steps.
    pub pd_fresh_for: Duration,
    /// HTTP proxy for PD requests; `None` follows the environment (`HTTP_PROXY`), as
    /// any in-cluster HTTP client does.
    pub pd_proxy: Option<String>,
    /// The image TiKV pods copy the operator binary from, for their preStop hook: the
    /// operator's own (see [`DEFAULT_TOOLS_IMAGE`]).
    pub tools_image: String,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            concurrency: Concurrency::default(),
            pd_poll_fast: Duration::from_secs(1),
            pd_poll_slow: Duration::from_secs(30),
            pd_fresh_for: Duration::from_secs(5),
            pd_proxy: None,
            tools_image: DEFAULT_TOOLS_IMAGE.to_owned(),
        }
    }
}

/// Shared by every pass of every controller, passed by `Arc`.
pub struct Context {
    pub client: Client,
    pub pd: PdRegistry,
    /// Waits on PD held across passes (fast polling while any is held).
    pub pd_waits: PdWaits,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub config: OperatorConfig,
    pub clock: Arc<dyn Clock>,
    /// Instances created by group controllers and not yet seen in a list.
    pub expectations: Expectations,
    /// What tasks read the objects they own from (writes go to the API server).
    pub caches: Caches,
}

impl Context {
    pub fn new(client: Client, config: OperatorConfig, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter { controller: tikv_operator_api::names::FIELD_MANAGER.into(), instance: None };
        let pd = PdRegistry::new(tikv_operator_pd::CacheConfig {
            fast_interval: config.pd_poll_fast,
            slow_interval: config.pd_poll_slow,
            fresh_for: config.pd_fresh_for,
            ..tikv_operator_pd::CacheConfig::default()
        })
        .with_proxy(config.pd_proxy.clone());
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            caches: Caches::new(&client, config.namespace.as_deref()),
            client,
            pd,
            pd_waits: PdWaits::default(),
            metrics,
            config,
            clock,
            expectations: Expectations::default(),
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

    /// Records a Kubernetes Event about `object`. Only called when something was done,
    /// so a pass with nothing to do emits none. A failure to record is logged, never
    /// fails the pass.
    pub async fn event(&self, object: &ObjectReference, reason: &str, action: &str, note: String) {
        self.publish(object, EventType::Normal, reason, action, note).await;
    }

    /// Records a Warning Event: something the user must fix. Callers emit it only when
    /// the problem is new, so a pass that finds the same problem again emits none.
    pub async fn warning(&self, object: &ObjectReference, reason: &str, action: &str, note: String) {
        self.publish(object, EventType::Warning, reason, action, note).await;
    }

    async fn publish(&self, object: &ObjectReference, type_: EventType, reason: &str, action: &str, note: String) {
        let event = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
        if let Err(error) = self.recorder.publish(&event, object).await {
            tracing::debug!(%error, reason, "cannot record an event");
        }
    }
}
