//! What every reconcile pass gets: the client, the PD registry, events, metrics, the
//! operator's configuration and a clock.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;

use crate::recorder::{EventType, Recorder};

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
            pd_poll_fast: Duration::from_secs(1),
            pd_poll_slow: Duration::from_secs(30),
            pd_fresh_for: Duration::from_secs(5),
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
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub config: OperatorConfig,
    pub clock: Arc<dyn Clock>,
    /// Instances created by group controllers and not yet seen in a list.
    pub expectations: Expectations,
    /// What tasks read the objects they own from (writes go to the API server).
    pub caches: Caches,
    /// Namespaces being terminated, which get no Events.
    pub events_gate: EventsGate,
    /// When each instance's serving certificate was last looked at.
    pub certificate_checks: crate::common::tasks::CertificateChecks,
}

impl Context {
    pub fn new(client: Client, config: OperatorConfig, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let pd = PdRegistry::new(tikv_operator_pd::CacheConfig {
            fast_interval: config.pd_poll_fast,
            slow_interval: config.pd_poll_slow,
            fresh_for: config.pd_fresh_for,
            ..tikv_operator_pd::CacheConfig::default()
        })
        .with_proxy(config.pd_proxy.clone())
        .with_metrics(metrics.clone());
        Self {
            recorder: Recorder::new(client.clone(), tikv_operator_api::names::FIELD_MANAGER),
            caches: Caches::new(&client, config.namespace.as_deref()),
            client,
            pd,
            pd_waits: PdWaits::default(),
            metrics,
            config,
            clock,
            expectations: Expectations::default(),
            events_gate: EventsGate::default(),
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
        let namespace = object.namespace.clone().unwrap_or_default();
        if self.events_gate.closed(&namespace) {
            return;
        }
        // The object as it is, not as it was at one resourceVersion.
        let object = ObjectReference { resource_version: None, field_path: None, ..object.clone() };
        match self.recorder.publish(&object, type_, reason, action, &note).await {
            Ok(()) => self.metrics.event_recorded(type_.as_str(), reason),
            Err(error) if namespace_terminating(&error) => self.events_gate.close(&namespace),
            Err(error) => tracing::debug!(%error, reason, "cannot record an event"),
        }
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
        // A status write later: another resourceVersion, the same object.
        tikv.metadata.resource_version = Some("999999".into());
        env.ctx
            .warning(&tikv.object_ref(&()), "EvictionStalled", "EvictLeaders", "no leader moved for 5m".into())
            .await;
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "default");
        let events = api.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(events.len(), 1, "one Event, counted twice: {events:?}");
        assert_eq!(events[0].series.as_ref().map(|s| s.count), Some(2));
        assert_eq!(events[0].regarding.as_ref().and_then(|r| r.uid.clone()), tikv.uid(), "describe finds it by UID");
        assert_eq!(env.event_writes(), 2, "a create, then a patch of the count");
        assert!(
            env.ctx
                .metrics
                .encode()
                .contains(r#"tikv_operator_events_total{type="Warning",reason="EvictionStalled"} 2"#)
        );
        env.ctx.warning(&first, "EvictionStalled", "EvictLeaders", "no leader moved for 10m".into()).await;
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
        for reason in ["OfflineStarted", "OfflineCompleted", "DeletedPod"] {
            env.ctx.event(&reference, reason, "Offline", "x".into()).await;
        }
        assert_eq!(event_creates(&env), 1, "the first refusal closes the namespace to Events");
        assert!(!env.ctx.metrics.encode().contains("OfflineStarted"), "nothing was recorded");
        // Other namespaces still get theirs.
        let other = sample_tikv("tikv-bbbbbb", "tikv").object_ref(&());
        env.ctx.event(&other, "OfflineStarted", "Offline", "x".into()).await;
        assert_eq!(event_creates(&env), 2);
    }
}
